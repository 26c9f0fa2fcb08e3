/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/storage/test_env.c - opening the environment: exclusive
 * lock, format version, node id and cluster checks, incarnation bumps,
 * handle names; CRC32C against its reference vector; allocation failures
 * inside apply leave nothing behind.
 */
#include <sys/stat.h>
#include <sys/utsname.h>

#include "storage/effects.h"
#include "storage/internal.h"
#include "unit/storage/fixture.h"

static int open_rv(const char *dir, uint64_t node_id, const char *cluster)
{
    struct store_config cfg;
    struct store *s = NULL;
    int rv;

    memset(&cfg, 0, sizeof(cfg));
    cfg.dir = dir;
    cfg.node_id = node_id;
    cfg.cluster = cluster;
    rv = fix_try_open(&cfg, &s);
    store_close(s);
    return rv;
}

static void test_second_open_is_locked(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(open_rv(f->dir, 1, "test"), STORE_ELOCKED);
}

static void test_open_checks_node_id_and_cluster(void **state)
{
    struct fixture *f = *state;

    store_close(f->s);
    f->s = NULL;
    assert_int_equal(open_rv(f->dir, 2, "test"), STORE_EIDENTITY);
    assert_int_equal(open_rv(f->dir, 1, "other"), STORE_EIDENTITY);
    assert_int_equal(open_rv(f->dir, 0, NULL), 0); /* keep what is stored */
    fix_open(f);
}

static void test_open_refuses_other_format_version(void **state)
{
    struct fixture *f = *state;
    struct store_txn *txn;

    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    assert_int_equal(store__meta_put_u64(txn, "format", 999), 0);
    assert_int_equal(store_txn_commit(txn), 0);
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(open_rv(f->dir, 1, "test"), STORE_EVERSION);
    /* Start over in an empty directory so teardown has a store. */
    fx_rmdir(f->dir);
    assert_int_equal(mkdir(f->dir, 0700), 0);
    fix_open(f);
}

/* A format 1 directory (two unique indexes) opens in today's format: the second
 * index is emptied, the jobs and their unique keys stay, and
 * GET_STATUS_UNIQUE finds them through the one index left. */
static void test_format_1_is_converted_on_open(void **state)
{
    struct fixture *f = *state;
    struct store_txn *txn;
    struct store_job_status st;
    MDB_stat ms;
    uint64_t format = 0;
    char h[64];

    fix_submit(f, S("conv", "u-1", "payload", STORE_PRIO_NORMAL, true, 1), h,
               sizeof(h));
    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    assert_int_equal(store__meta_put_u64(txn, "format", 1), 0);
    /* What format 1 kept besides: unique NUL function -> job. */
    assert_int_equal(store__put(txn, STORE__DB_UNIQS, "u-1\0conv", 8,
                                "\0\0\0\0\0\0\0\1", 8, 0),
                     0);
    assert_int_equal(store_txn_commit(txn), 0);
    fix_reopen(f);
    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store__meta_get_u64(txn, "format", &format), 0);
    assert_int_equal(format, STORE__FORMAT_VERSION);
    assert_int_equal(mdb_stat(txn->txn, txn->s->dbi[STORE__DB_UNIQS], &ms), 0);
    assert_int_equal(ms.ms_entries, 0);
    assert_int_equal(store_job_status_unique(txn, B("u-1"), &st), 0);
    assert_true(st.known);
    assert_int_equal(store_job_status_unique(txn, B("u-2"), &st), 0);
    assert_false(st.known);
    store_txn_abort(txn);
}

static void test_incarnation_bumps_on_every_open(void **state)
{
    struct fixture *f = *state;
    uint64_t a = store_incarnation(f->s);

    assert_true(a >= 1);
    fix_reopen(f);
    assert_int_equal(store_incarnation(f->s), a + 1);
    fix_reopen(f);
    assert_int_equal(store_incarnation(f->s), a + 2);
}

static void test_default_cluster_is_nodename(void **state)
{
    char dir[64];
    struct store_config cfg;
    struct store *s;
    struct store_cmd c;
    struct store_effects fx;
    struct store_txn *txn;
    struct utsname u;
    char want[128];
    char err[256];

    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/gr-storage-XXXXXX");
    assert_non_null(mkdtemp(dir));
    memset(&cfg, 0, sizeof(cfg));
    cfg.dir = dir;
    cfg.map_size = (size_t)64 << 20;
    cfg.node_id = 1;
    assert_int_equal(store_open(&cfg, &s, err, sizeof(err)), 0);
    assert_int_equal(uname(&u), 0);
    snprintf(want, sizeof(want), "H:%.*s:1", STORE_CLUSTER_MAX, u.nodename);
    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_SUBMIT;
    c.u.submit.function = B("fn");
    c.u.submit.prio = STORE_PRIO_NORMAL;
    c.u.submit.background = true;
    store_effects_init(&fx);
    assert_int_equal(store_txn_begin(s, true, &txn), 0);
    assert_int_equal(store_apply(txn, 1, 0, &c, &fx), 0);
    assert_int_equal(store_txn_commit(txn), 0);
    assert_int_equal(fx.v[0].type, STORE_FX_CREATED);
    assert_true(buf_is(fx.v[0].handle, want));
    store_effects_close(&fx);
    store_close(s);
    fx_rmdir(dir);
}

static void test_crc32c_matches_reference(void **state)
{
    static const char check[] = "123456789";
    uint8_t buf[100];
    uint32_t whole;
    uint32_t parts;
    size_t i;

    (void)state;
    assert_int_equal(store__crc32c(0, check, 9), 0xE3069283u);
    assert_int_equal(store__crc32c(0, "", 0), 0);
    for (i = 0; i < sizeof(buf); i++) {
        buf[i] = (uint8_t)(i * 31u + 7u);
    }
    /* Unaligned starts and split updates give the same value. */
    whole = store__crc32c(0, buf + 3, 90);
    parts = store__crc32c(store__crc32c(0, buf + 3, 41), buf + 44, 49);
    assert_int_equal(whole, parts);
    assert_int_equal(store__crc32c_sw(0, check, 9), 0xE3069283u);
}

/* The CPU's instruction (when store__crc32c uses it) and the software
 * tables agree at every start alignment, every short length and across
 * split updates; a record written by one is read by the other after a
 * move to another machine. */
static void test_crc32c_hardware_and_software_agree(void **state)
{
    enum { N = 1 << 16 };
    uint8_t *buf = malloc(N + 8);
    uint32_t x = 2463534242u;
    size_t off;
    size_t len;

    (void)state;
    assert_non_null(buf);
    for (len = 0; len < N + 8; len++) {
        x ^= x << 13; /* xorshift32: any fixed bytes would do */
        x ^= x >> 17;
        x ^= x << 5;
        buf[len] = (uint8_t)x;
    }
    for (off = 0; off < 8; off++) {
        for (len = 0; len <= 80; len++) {
            assert_int_equal(store__crc32c(0, buf + off, len),
                             store__crc32c_sw(0, buf + off, len));
        }
        assert_int_equal(store__crc32c(0, buf + off, N),
                         store__crc32c_sw(0, buf + off, N));
        assert_int_equal(store__crc32c(store__crc32c(0, buf + off, 13 + off),
                                       buf + 13 + 2 * off, N - 13 - off),
                         store__crc32c_sw(0, buf + off, N));
    }
    print_message("crc32c: %s\n",
                  store__crc32c_hw() ? "CPU instruction" : "software only");
    free(buf);
}

/* A payload copied into an effect list can be held past the list's
 * reset and close (the node sends it from there); small copies cannot.
 * Under the sanitizers a use after free or a leak fails the test. */
static void test_large_effect_bytes_can_be_held(void **state)
{
    enum { BIG = 200 * 1024 };
    struct store_effects fx;
    struct store_buf small = B("handle");
    struct store_buf big;
    struct store_buf small_copy;
    struct store_buf big_copy;
    struct store_buf other;
    uint8_t *src = malloc(BIG);
    void *token;
    void *second;
    size_t i;

    (void)state;
    assert_non_null(src);
    for (i = 0; i < BIG; i++) {
        src[i] = (uint8_t)(i % 251u);
    }
    big.base = src;
    big.len = BIG;
    store_effects_init(&fx);
    assert_int_equal(store__fx_copy(&fx, small, &small_copy), 0);
    assert_int_equal(store__fx_copy(&fx, big, &big_copy), 0);
    assert_int_equal(store__fx_copy(&fx, big, &other), 0);
    assert_null(store_effects_hold(&fx, small_copy.base));
    assert_null(store_effects_hold(&fx, big_copy.base + 1));
    assert_null(store_effects_hold(&fx, src)); /* not the list's */
    token = store_effects_hold(&fx, big_copy.base);
    second = store_effects_hold(&fx, big_copy.base);
    assert_non_null(token);
    assert_ptr_equal(token, second);
    store_effects_reset(&fx); /* the list reuses its memory... */
    assert_int_equal(store__fx_copy(&fx, small, &small_copy), 0);
    assert_memory_equal(big_copy.base, src, BIG); /* ...the held bytes stay */
    store_effects_unhold(second);
    store_effects_close(&fx);
    assert_memory_equal(big_copy.base, src, BIG);
    store_effects_unhold(token); /* the last reference frees the block */
    store_effects_unhold(NULL);
    free(src);
}

static void test_allocation_failures_in_apply_leave_nothing(void **state)
{
    struct fixture *f = *state;
    struct store_cmd c;
    struct store_txn *txn;
    struct store_buf fns[1] = {B("fn")};
    unsigned n;
    int rv;
    int ok = 0;

    for (n = 1; n < 40; n++) {
        memset(&c, 0, sizeof(c));
        c.type = STORE_CMD_SUBMIT;
        c.u.submit.function = B("fn");
        c.u.submit.unique = B("u");
        c.u.submit.data = B("d");
        c.u.submit.prio = STORE_PRIO_NORMAL;
        c.u.submit.client = CONN(f, 1);
        store_effects_reset(&f->fx);
        assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
        store__fail_alloc_nth = n;
        rv = store_apply(txn, f->index + 1, f->now_ms, &c, &f->fx);
        if (rv == 0) {
            c.type = STORE_CMD_GRAB;
            c.u.grab.worker = CONN(f, 9);
            c.u.grab.functions = fns;
            c.u.grab.n_functions = 1;
            rv = store_apply(txn, f->index + 2, f->now_ms, &c, &f->fx);
        }
        store__fail_alloc_nth = 0;
        assert_true(rv == 0 || rv == STORE_ENOMEM);
        if (rv != 0) {
            store_txn_abort(txn);
            assert_false(fix_status(f, "H:test:1").known);
            continue;
        }
        /* No failure happened: the pair applied; undo it for the next
         * round by aborting as well, and count it. */
        store_txn_abort(txn);
        ok++;
    }
    assert_true(ok > 0); /* the loop reached a count with no failure */
}

static void file_size(const struct fixture *f, uint64_t *size,
                      uint64_t *allocated)
{
    char path[128];
    struct stat st;

    snprintf(path, sizeof(path), "%s/data.mdb", f->dir);
    assert_int_equal(stat(path, &st), 0);
    *size = (uint64_t)st.st_size;
    *allocated = (uint64_t)st.st_blocks * 512u;
}

static uint64_t high_water(const struct fixture *f)
{
    MDB_envinfo info;

    assert_int_equal(mdb_env_info(f->s->env, &info), 0);
    return ((uint64_t)info.me_last_pgno + 1u) * 4096u;
}

/* Grows until 8 MiB past the last page, 1 MiB per call; returns the calls
 * that grew the file. */
static int grow_fully(struct fixture *f)
{
    uint64_t size;
    uint64_t prev;
    uint64_t allocated;
    int grew = 0;

    file_size(f, &prev, &allocated);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(store_grow_ahead(f->s), 0);
        file_size(f, &size, &allocated);
        if (size == prev) {
            break;
        }
        assert_true(size - prev <= (1u << 20));
        /* Written zeros, not a hole: later commits overwrite blocks. */
        assert_true(allocated >= size);
        prev = size;
        grew++;
    }
    assert_true(size >= high_water(f) + (8u << 20));
    assert_true(size <= high_water(f) + (9u << 20));
    return grew;
}

/* The file is kept 8 MiB ahead of LMDB's last page; what LMDB writes into
 * that space reads back after a reopen. */
static void test_grow_ahead_keeps_zeroed_space_past_the_last_page(void **state)
{
    struct fixture *f = *state;
    static uint8_t chunk[512 * 1024];
    struct store_txn *txn;
    struct store_entry e;
    uint64_t i;

    assert_true(grow_fully(f) >= 8);
    assert_int_equal(grow_fully(f), 0); /* nothing more to do */
    memset(chunk, 'g', sizeof(chunk));
    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    fix_append_blobs(txn, 1, 8, chunk, sizeof(chunk));
    assert_int_equal(store_txn_commit(txn), 0);
    assert_true(grow_fully(f) >= 4); /* LMDB used 4 MiB of it */
    fix_reopen(f);
    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    for (i = 1; i <= 8; i++) {
        assert_int_equal(store_log_get(txn, i, &e), 0);
        assert_int_equal(e.data.len, sizeof(chunk));
        assert_memory_equal(e.data.base, chunk, sizeof(chunk));
    }
    store_txn_abort(txn);
}

/* Never past the map: LMDB could not use it. */
static void test_grow_ahead_stops_at_the_map_size(void **state)
{
    struct fixture *f = *state;
    uint64_t size;
    uint64_t allocated;

    for (int i = 0; i < 20; i++) {
        assert_int_equal(store_grow_ahead(f->s), 0);
    }
    file_size(f, &size, &allocated);
    assert_int_equal(size, 4u << 20);
}

static int setup_4mib(void **state)
{
    return fix_setup_sized(state, (size_t)4 << 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, fix_setup, fix_teardown)
        T(test_second_open_is_locked),
        T(test_open_checks_node_id_and_cluster),
        T(test_open_refuses_other_format_version),
        T(test_format_1_is_converted_on_open),
        T(test_incarnation_bumps_on_every_open),
        cmocka_unit_test(test_default_cluster_is_nodename),
        cmocka_unit_test(test_crc32c_matches_reference),
        cmocka_unit_test(test_crc32c_hardware_and_software_agree),
        T(test_allocation_failures_in_apply_leave_nothing),
        cmocka_unit_test(test_large_effect_bytes_can_be_held),
        T(test_grow_ahead_keeps_zeroed_space_past_the_last_page),
        cmocka_unit_test_setup_teardown(test_grow_ahead_stops_at_the_map_size,
                                        setup_4mib, fix_teardown),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
