/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/storage/test_snapshot.c - store_snap_write/read: a node
 * loaded from another's snapshot answers exactly as the source does and
 * learns its members, a stream of the version before the member table
 * still loads, and a damaged or truncated stream is refused with nothing
 * kept.
 */
#include "storage/internal.h"
#include "unit/storage/fixture.h"

struct mem {
    uint8_t *buf;
    size_t len;
    size_t cap;
    size_t pos;
};

static int mem_write(void *arg, const void *buf, size_t len)
{
    struct mem *m = arg;

    if (m->len + len > m->cap) {
        m->cap = (m->len + len) * 2;
        m->buf = realloc(m->buf, m->cap);
        assert_non_null(m->buf);
    }
    memcpy(m->buf + m->len, buf, len);
    m->len += len;
    return 0;
}

static int mem_read(void *arg, void *buf, size_t len)
{
    struct mem *m = arg;

    if (m->len - m->pos < len) {
        return STORE_EMALFORMED;
    }
    memcpy(buf, m->buf + m->pos, len);
    m->pos += len;
    return 0;
}

/* A second store to load into, with another cluster name. */
struct other {
    char dir[64];
    struct store *s;
};

static void other_open(struct other *o)
{
    struct store_config cfg;
    char err[256];

    snprintf(o->dir, sizeof(o->dir), "/tmp/gr-storage-XXXXXX");
    assert_non_null(mkdtemp(o->dir));
    memset(&cfg, 0, sizeof(cfg));
    cfg.dir = o->dir;
    cfg.map_size = (size_t)64 << 20;
    cfg.node_id = 2;
    cfg.cluster = "other";
    assert_int_equal(store_open(&cfg, &o->s, err, sizeof(err)), 0);
}

static void other_close(struct other *o)
{
    store_close(o->s);
    fx_rmdir(o->dir);
}

static int load(struct store *s, struct mem *m, uint64_t *index)
{
    struct store_txn *txn;
    int rv;

    m->pos = 0;
    assert_int_equal(store_txn_begin(s, true, &txn), 0);
    rv = store_snap_read(txn, mem_read, m, index);
    if (rv != 0) {
        store_txn_abort(txn);
        return rv;
    }
    return store_txn_commit(txn);
}

static void test_snapshot_round_trip_gives_same_state(void **state)
{
    struct fixture *f = *state;
    struct other o;
    struct mem m = {NULL, 0, 0, 0};
    char a[64], b[64], c[64], g[64];
    static char big[10000];
    struct store_txn *txn;
    struct store_job_status st;
    uint64_t index = 0;
    uint64_t applied = 0;

    memset(big, 'b', sizeof(big) - 1);
    fix_submit(f, S("fn", "ua", "a", STORE_PRIO_NORMAL, true, 1), a, sizeof(a));
    fix_submit(f, S("fn", "", big, STORE_PRIO_NORMAL, false, 2), b, sizeof(b));
    fix_submit(f, S("fn2", "uc", "c", STORE_PRIO_NORMAL, false, 3), c,
               sizeof(c));
    fix_grab(f, 9, g, sizeof(g), "fn", NULL);
    assert_int_equal(store_snap_write(f->s, mem_write, &m, &index), 0);
    assert_int_equal(index, f->index);

    other_open(&o);
    assert_int_equal(load(o.s, &m, &applied), 0);
    assert_int_equal(applied, f->index);
    assert_int_equal(store_txn_begin(o.s, false, &txn), 0);
    assert_int_equal(store_applied_index(txn, &applied), 0);
    assert_int_equal(applied, f->index);
    /* Handles keep the source's cluster name. */
    assert_int_equal(store_job_status(txn, B(a), &st), 0);
    assert_true(st.known);
    assert_true(st.running);
    assert_int_equal(store_job_status(txn, B(c), &st), 0);
    assert_true(st.known);
    assert_int_equal(st.n_waiting, 1);
    assert_int_equal(store_job_status_unique(txn, B("uc"), &st), 0);
    assert_true(st.known);
    store_txn_abort(txn);

    /* The loaded node hands out the next job just like the source. */
    {
        struct store_effects fx;
        struct store_cmd cmd;
        struct store_buf fns[1] = {B("fn")};

        store_effects_init(&fx);
        memset(&cmd, 0, sizeof(cmd));
        cmd.type = STORE_CMD_GRAB;
        cmd.u.grab.worker = REF(2, 1, 5);
        cmd.u.grab.functions = fns;
        cmd.u.grab.n_functions = 1;
        assert_int_equal(store_txn_begin(o.s, true, &txn), 0);
        assert_int_equal(store_apply(txn, f->index + 1, f->now_ms, &cmd, &fx),
                         0);
        assert_int_equal(store_txn_commit(txn), 0);
        assert_int_equal(fx.v[0].type, STORE_FX_ASSIGN);
        assert_true(buf_is(fx.v[0].handle, b));
        assert_int_equal(fx.v[0].data.len, strlen(big));
        store_effects_close(&fx);
    }
    other_close(&o);
    free(m.buf);
}

static void test_damaged_or_truncated_snapshot_is_refused(void **state)
{
    struct fixture *f = *state;
    struct other o;
    struct mem m = {NULL, 0, 0, 0};
    char a[64], kept[64];
    struct store_job_status st;
    struct store_txn *txn;
    size_t full;
    size_t i;

    fix_submit(f, S("fn", "", "payload", STORE_PRIO_NORMAL, true, 1), a,
               sizeof(a));
    assert_int_equal(store_snap_write(f->s, mem_write, &m, NULL), 0);
    full = m.len;

    other_open(&o);
    /* The target has a job of its own, which must survive every failed
     * load. */
    {
        struct store_effects fx;
        struct store_cmd cmd;

        store_effects_init(&fx);
        memset(&cmd, 0, sizeof(cmd));
        cmd.type = STORE_CMD_SUBMIT;
        cmd.u.submit.function = B("mine");
        cmd.u.submit.prio = STORE_PRIO_NORMAL;
        cmd.u.submit.background = true;
        assert_int_equal(store_txn_begin(o.s, true, &txn), 0);
        assert_int_equal(store_apply(txn, 500, 0, &cmd, &fx), 0);
        assert_int_equal(store_txn_commit(txn), 0);
        handle_copy(fx.v[0].handle, kept, sizeof(kept));
        store_effects_close(&fx);
    }
    for (i = 0; i < full; i += 7) {
        m.len = i; /* truncated */
        assert_int_not_equal(load(o.s, &m, NULL), 0);
    }
    m.len = full;
    for (i = 0; i < full; i += 5) {
        m.buf[i] ^= 0x10; /* one flipped byte */
        assert_int_not_equal(load(o.s, &m, NULL), 0);
        m.buf[i] ^= 0x10;
    }
    assert_int_equal(store_txn_begin(o.s, false, &txn), 0);
    assert_int_equal(store_job_status(txn, B(kept), &st), 0);
    assert_true(st.known);
    assert_int_equal(store_job_status(txn, B(a), &st), 0);
    assert_false(st.known);
    store_txn_abort(txn);
    /* A well-formed record of the `uniqs` table (empty since on-disk
     * format 2; no stream carries it), in table order and under a good
     * CRC, is refused too. */
    {
        struct mem u = {NULL, 0, 0, 0};
        uint8_t rec[18] = {STORE__DB_UNIQS};        /* key "u", 8-byte value */
        size_t pos = 24 + store__get32(m.buf + 12); /* header, cluster */
        uint8_t crc[4];

        store__put32(rec + 1, 1);
        store__put32(rec + 5, 8);
        rec[9] = 'u';
        rec[17] = 1;

        while (m.buf[pos] != 0xff && m.buf[pos] < STORE__DB_UNIQS) {
            pos += 9 + store__get32(m.buf + pos + 1) +
                   store__get32(m.buf + pos + 5);
        }
        mem_write(&u, m.buf, pos);
        mem_write(&u, rec, sizeof(rec));
        mem_write(&u, m.buf + pos, full - 4 - pos);
        store__put32(crc, store__crc32c(0, u.buf, u.len));
        mem_write(&u, crc, sizeof(crc));
        assert_int_equal(load(o.s, &u, NULL), STORE_EMALFORMED);
        free(u.buf);
    }
    /* The intact stream still loads. */
    assert_int_equal(load(o.s, &m, NULL), 0);
    other_close(&o);
    free(m.buf);
}

static struct store_member member(uint64_t id, const char *name, uint16_t port)
{
    struct store_member m;

    memset(&m, 0, sizeof(m));
    m.id = id;
    snprintf(m.name, sizeof(m.name), "%s", name);
    snprintf(m.host, sizeof(m.host), "10.0.0.%u", (unsigned)id);
    m.port = port;
    return m;
}

static void set_members(struct store *s, const struct store_member *v, size_t n)
{
    struct store_txn *txn;

    assert_int_equal(store_txn_begin(s, true, &txn), 0);
    assert_int_equal(store_members_set(txn, v, n), 0);
    assert_int_equal(store_txn_commit(txn), 0);
}

static size_t get_members(struct store *s, struct store_member *v)
{
    struct store_txn *txn;
    size_t n;

    assert_int_equal(store_txn_begin(s, false, &txn), 0);
    assert_int_equal(store_members_get(txn, v, &n), 0);
    store_txn_abort(txn);
    return n;
}

static void test_snapshot_carries_the_member_table(void **state)
{
    struct fixture *f = *state;
    struct store_member v[3] = {member(1, "a", 7001), member(2, "b", 7002),
                                member(3, "c", 7003)};
    struct store_member got[STORE_MEMBERS_MAX];
    struct mem m = {NULL, 0, 0, 0};
    struct other o;
    char a[64];

    set_members(f->s, v, 3);
    fix_submit(f, S("fn", "", "a", STORE_PRIO_NORMAL, true, 1), a, sizeof(a));
    assert_int_equal(store_snap_write(f->s, mem_write, &m, NULL), 0);
    assert_int_equal(store__get32(m.buf + 8), 2); /* the stream version */
    other_open(&o);
    set_members(o.s, &v[2], 1);
    assert_int_equal(load(o.s, &m, NULL), 0);
    assert_int_equal(get_members(o.s, got), 3);
    assert_memory_equal(got, v, sizeof(v));
    other_close(&o);
    free(m.buf);
}

/* A version 1 stream (before the member table) loads, and leaves the
 * loading node's members as they are. */
static void test_version_1_stream_keeps_the_members(void **state)
{
    struct fixture *f = *state;
    struct store_member v[1] = {member(9, "z", 7009)};
    struct store_member got[STORE_MEMBERS_MAX];
    struct mem m = {NULL, 0, 0, 0};
    struct store_job_status st;
    struct store_txn *txn;
    struct other o;
    char a[64];

    fix_submit(f, S("fn", "", "a", STORE_PRIO_NORMAL, true, 1), a, sizeof(a));
    assert_int_equal(store_snap_write(f->s, mem_write, &m, NULL), 0);
    /* No member records in it (the source has none): only the version
     * and the checksum tell it from a version 1 stream. */
    store__put32(m.buf + 8, 1);
    store__put32(m.buf + m.len - 4, store__crc32c(0, m.buf, m.len - 4));
    other_open(&o);
    set_members(o.s, v, 1);
    assert_int_equal(load(o.s, &m, NULL), 0);
    assert_int_equal(get_members(o.s, got), 1);
    assert_string_equal(got[0].name, "z");
    assert_int_equal(store_txn_begin(o.s, false, &txn), 0);
    assert_int_equal(store_job_status(txn, B(a), &st), 0);
    assert_true(st.known);
    store_txn_abort(txn);
    /* A version after this build's is refused. */
    store__put32(m.buf + 8, 3);
    store__put32(m.buf + m.len - 4, store__crc32c(0, m.buf, m.len - 4));
    assert_int_equal(load(o.s, &m, NULL), STORE_EVERSION);
    other_close(&o);
    free(m.buf);
}

/* store_digest: a store loaded from another's snapshot has its digest;
 * one more command changes it; the same state gives the same number
 * again. */
static void test_digest_follows_the_state(void **state)
{
    struct fixture *f = *state;
    struct other o;
    struct mem m = {NULL, 0, 0, 0};
    char a[64];
    uint64_t d1;
    uint64_t d2;
    uint64_t again;
    uint64_t copy;
    uint64_t index;
    uint64_t applied;

    fix_submit(f, S("fn", "", "one", STORE_PRIO_NORMAL, true, 1), a,
               sizeof(a));
    assert_int_equal(store_digest(f->s, &index, &d1), 0);
    assert_int_equal(index, f->index);
    assert_int_equal(store_digest(f->s, NULL, &again), 0);
    assert_true(d1 == again);

    assert_int_equal(store_snap_write(f->s, mem_write, &m, NULL), 0);
    other_open(&o);
    assert_int_equal(load(o.s, &m, &applied), 0);
    assert_int_equal(store_digest(o.s, &index, &copy), 0);
    assert_int_equal(index, applied);
    assert_true(copy == d1);

    fix_submit(f, S("fn", "", "two", STORE_PRIO_NORMAL, true, 1), a,
               sizeof(a));
    assert_int_equal(store_digest(f->s, NULL, &d2), 0);
    assert_true(d2 != d1);
    other_close(&o);
    free(m.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_snapshot_round_trip_gives_same_state, fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(
            test_damaged_or_truncated_snapshot_is_refused, fix_setup,
            fix_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_carries_the_member_table,
                                        fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_version_1_stream_keeps_the_members,
                                        fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_digest_follows_the_state,
                                        fix_setup, fix_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
