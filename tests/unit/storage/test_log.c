/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/storage/test_log.c - the Raft log and hard state on a real
 * LMDB: append, read back, bounds, truncate, compact, CRC checks against
 * a corrupted file, and durability across reopen.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "storage/internal.h"
#include "unit/storage/fixture.h"

static void append(struct fixture *f, uint64_t index, uint64_t term,
                   const char *data, int expect)
{
    struct store_txn *txn;
    struct store_entry e;

    memset(&e, 0, sizeof(e));
    e.index = index;
    e.term = term;
    e.leader_time_ms = 1000 + index;
    e.type = STORE_ENTRY_COMMAND;
    e.data = B(data);
    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    assert_int_equal(store_log_append(txn, &e), expect);
    if (expect == 0) {
        assert_int_equal(store_txn_commit(txn), 0);
    } else {
        store_txn_abort(txn);
    }
}

static void bounds(struct fixture *f, uint64_t first, uint64_t last)
{
    struct store_txn *txn;
    uint64_t a;
    uint64_t b;

    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_log_bounds(txn, &a, &b), 0);
    store_txn_abort(txn);
    assert_int_equal(a, first);
    assert_int_equal(b, last);
}

static void expect_entry(struct fixture *f, uint64_t index, uint64_t term,
                         const char *data)
{
    struct store_txn *txn;
    struct store_entry e;

    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_log_get(txn, index, &e), 0);
    assert_int_equal(e.index, index);
    assert_int_equal(e.term, term);
    assert_int_equal(e.leader_time_ms, 1000 + index);
    assert_int_equal(e.type, STORE_ENTRY_COMMAND);
    assert_true(buf_is(e.data, data));
    store_txn_abort(txn);
}

static int get_rv(struct fixture *f, uint64_t index)
{
    struct store_txn *txn;
    struct store_entry e;
    int rv;

    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    rv = store_log_get(txn, index, &e);
    store_txn_abort(txn);
    return rv;
}

static void test_log_append_get_and_bounds(void **state)
{
    struct fixture *f = *state;

    bounds(f, 0, 0);
    append(f, 1, 1, "one", 0);
    append(f, 2, 1, "", 0);
    append(f, 3, 2, "three", 0);
    bounds(f, 1, 3);
    expect_entry(f, 1, 1, "one");
    expect_entry(f, 2, 1, "");
    expect_entry(f, 3, 2, "three");
    assert_int_equal(get_rv(f, 4), STORE_ENOTFOUND);
    /* Out of order is refused. */
    append(f, 5, 2, "gap", STORE_EINVAL);
    append(f, 3, 2, "again", STORE_EINVAL);
    bounds(f, 1, 3);
}

/* A command appended by store_log_append_cmd is the same record as its
 * store_cmd_encode bytes appended by store_log_append: same bytes back,
 * same CRC check, and it decodes to the command; out of order it is
 * refused like any append. */
static void test_log_append_cmd_is_encode_then_append(void **state)
{
    struct fixture *f = *state;
    static uint8_t big[100000];
    struct store_txn *txn;
    struct store_entry e;
    struct store_entry got;
    struct store_cmd c;
    struct store_cmd *back = NULL;
    uint8_t *bytes = NULL;
    size_t len = 0;
    size_t i;

    for (i = 0; i < sizeof(big); i++) {
        big[i] = (uint8_t)(i * 7u + 1u);
    }
    c = fix_submit_cmd(f, S("fn", "u-1", "", STORE_PRIO_HIGH, false, 9));
    c.origin.seq = 5;
    c.u.submit.data.base = big;
    c.u.submit.data.len = sizeof(big);
    assert_int_equal(store_cmd_encode(&c, &bytes, &len), 0);

    memset(&e, 0, sizeof(e));
    e.index = 1;
    e.term = 2;
    e.leader_time_ms = 1001;
    e.type = STORE_ENTRY_NOOP; /* ignored: a command entry */
    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    assert_int_equal(store_log_append_cmd(txn, &e, &c), 0);
    assert_int_equal(store_txn_commit(txn), 0);

    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_log_get(txn, 1, &got), 0);
    assert_int_equal(got.term, 2);
    assert_int_equal(got.leader_time_ms, 1001);
    assert_int_equal(got.type, STORE_ENTRY_COMMAND);
    assert_int_equal(got.data.len, len);
    assert_memory_equal(got.data.base, bytes, len);
    assert_int_equal(store_cmd_decode(got.data.base, got.data.len, &back), 0);
    assert_int_equal(back->type, STORE_CMD_SUBMIT);
    assert_int_equal(back->origin.seq, 5);
    assert_int_equal(back->u.submit.data.len, sizeof(big));
    assert_memory_equal(back->u.submit.data.base, big, sizeof(big));
    store_cmd_free(back);
    store_txn_abort(txn);
    bounds(f, 1, 1);

    e.index = 3; /* not next */
    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    assert_int_equal(store_log_append_cmd(txn, &e, &c), STORE_EINVAL);
    store_txn_abort(txn);
    bounds(f, 1, 1);
    store_free(bytes);
}

static void test_log_truncate_then_append_reuses_index(void **state)
{
    struct fixture *f = *state;
    struct store_txn *txn;
    uint64_t i;

    for (i = 1; i <= 6; i++) {
        append(f, i, 1, "old", 0);
    }
    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    assert_int_equal(store_log_truncate(txn, 4), 0);
    assert_int_equal(store_txn_commit(txn), 0);
    bounds(f, 1, 3);
    assert_int_equal(get_rv(f, 4), STORE_ENOTFOUND);
    append(f, 4, 2, "new", 0);
    expect_entry(f, 4, 2, "new");
    expect_entry(f, 3, 1, "old");
    bounds(f, 1, 4);
}

static void test_log_compact_keeps_last_index(void **state)
{
    struct fixture *f = *state;
    struct store_txn *txn;
    uint64_t i;

    for (i = 1; i <= 5; i++) {
        append(f, i, 1, "e", 0);
    }
    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    assert_int_equal(store_log_compact(txn, 3), 0);
    assert_int_equal(store_txn_commit(txn), 0);
    bounds(f, 4, 5);
    assert_int_equal(get_rv(f, 3), STORE_ENOTFOUND);
    expect_entry(f, 4, 1, "e");
    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    assert_int_equal(store_log_compact(txn, 5), 0);
    assert_int_equal(store_txn_commit(txn), 0);
    bounds(f, 0, 5);
    /* An empty log continues after its compaction point, across a
     * restart too. */
    fix_reopen(f);
    bounds(f, 0, 5);
    append(f, 5, 1, "below", STORE_EINVAL);
    append(f, 6, 1, "next", 0);
    bounds(f, 6, 6);
}

static void test_log_survives_reopen(void **state)
{
    struct fixture *f = *state;

    append(f, 1, 3, "durable", 0);
    fix_reopen(f);
    expect_entry(f, 1, 3, "durable");
}

/* Flips one byte of the only copy of `needle` in the data file. */
static void corrupt_file(const char *dir, const char *needle)
{
    char path[256];
    struct stat st;
    uint8_t *buf;
    size_t n = strlen(needle);
    size_t i;
    size_t hits = 0;
    int fd;

    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    buf = malloc((size_t)st.st_size);
    assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
    for (i = 0; i + n <= (size_t)st.st_size; i++) {
        if (memcmp(buf + i, needle, n) == 0) {
            uint8_t b = (uint8_t)(buf[i] ^ 0x20);
            assert_int_equal(pwrite(fd, &b, 1, (off_t)i), 1);
            hits++;
        }
    }
    free(buf);
    close(fd);
    assert_true(hits >= 1);
}

static void test_log_crc_mismatch_is_corrupt(void **state)
{
    struct fixture *f = *state;

    append(f, 1, 1, "intact-entry", 0);
    append(f, 2, 1, "entry-to-damage", 0);
    store_close(f->s);
    f->s = NULL;
    corrupt_file(f->dir, "entry-to-damage");
    fix_open(f);
    expect_entry(f, 1, 1, "intact-entry");
    assert_int_equal(get_rv(f, 2), STORE_ECORRUPT);
}

static void test_job_crc_mismatch_is_corrupt(void **state)
{
    struct fixture *f = *state;
    struct store_cmd c;
    struct store_txn *txn;
    struct store_job_status st;

    c = fix_submit_cmd(
        f, S("fn", NULL, "job-payload-to-damage", STORE_PRIO_NORMAL, true, 0));
    assert_int_equal(fix_apply(f, &c), 0);
    /* Compact the log so the payload's only copy is the job record. */
    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    assert_int_equal(store_log_compact(txn, f->index), 0);
    assert_int_equal(store_txn_commit(txn), 0);
    store_close(f->s);
    f->s = NULL;
    corrupt_file(f->dir, "job-payload-to-damage");
    fix_open(f);
    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_job_status(txn, B("H:test:1"), &st), STORE_ECORRUPT);
    store_txn_abort(txn);
}

static void test_hard_state_defaults_and_persists(void **state)
{
    struct fixture *f = *state;
    struct store_txn *txn;
    struct store_hard_state hs;
    struct store_hard_state set = {7, 2, 40};

    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_hs_get(txn, &hs), 0);
    store_txn_abort(txn);
    assert_int_equal(hs.term, 0);
    assert_int_equal(hs.vote, 0);
    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    assert_int_equal(store_hs_set(txn, &set), 0);
    assert_int_equal(store_txn_commit(txn), 0);
    fix_reopen(f);
    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_hs_get(txn, &hs), 0);
    store_txn_abort(txn);
    assert_int_equal(hs.term, 7);
    assert_int_equal(hs.vote, 2);
    assert_int_equal(hs.commit, 40);
}

static void test_snap_meta_persists_and_checks_its_crc(void **state)
{
    struct fixture *f = *state;
    struct store_txn *txn;
    struct store_snap_meta m;
    struct store_snap_meta set = {90, 4, {(const uint8_t *)"conf-bytes", 10}};
    MDB_val k = {9, (void *)"snap_meta"};
    MDB_val v;
    uint8_t copy[64];

    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_snap_meta_get(txn, &m), STORE_ENOTFOUND);
    store_txn_abort(txn);
    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_snap_meta_set(txn, &set), STORE_EINVAL);
    store_txn_abort(txn);
    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    assert_int_equal(store_snap_meta_set(txn, &set), 0);
    assert_int_equal(store_txn_commit(txn), 0);
    fix_reopen(f);
    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_snap_meta_get(txn, &m), 0);
    assert_int_equal(m.index, 90);
    assert_int_equal(m.term, 4);
    assert_int_equal(m.conf.len, 10);
    assert_memory_equal(m.conf.base, "conf-bytes", 10);
    store_txn_abort(txn);
    /* One flipped byte of the conf: refused, never handed out. */
    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    assert_int_equal(mdb_get(txn->txn, txn->s->dbi[STORE__DB_META], &k, &v), 0);
    assert_true(v.mv_size <= sizeof(copy));
    memcpy(copy, v.mv_data, v.mv_size);
    copy[v.mv_size - 1] ^= 1;
    v.mv_data = copy;
    assert_int_equal(mdb_put(txn->txn, txn->s->dbi[STORE__DB_META], &k, &v, 0),
                     0);
    assert_int_equal(store_snap_meta_get(txn, &m), STORE_ECORRUPT);
    store_txn_abort(txn);
}

static int setup_tiny(void **state)
{
    return fix_setup_sized(state, (size_t)1 << 20); /* 1 MiB */
}

static void test_map_full_is_enospc_and_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    struct store_txn *txn;
    struct store_entry e;
    struct store_stat st;
    static uint8_t chunk[64 * 1024];
    uint64_t i;
    int rv = 0;

    memset(chunk, 'x', sizeof(chunk));
    append(f, 1, 1, "kept", 0);
    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    for (i = 2; i < 100 && rv == 0; i++) {
        memset(&e, 0, sizeof(e));
        e.index = i;
        e.term = 1;
        e.type = STORE_ENTRY_COMMAND;
        e.data.base = chunk;
        e.data.len = sizeof(chunk);
        rv = store_log_append(txn, &e);
    }
    assert_int_equal(rv, STORE_ENOSPC);
    store_txn_abort(txn);
    bounds(f, 1, 1);
    expect_entry(f, 1, 1, "kept");
    /* The store still works for small writes afterwards. */
    append(f, 2, 1, "after", 0);
    assert_int_equal(store_stat(f->s, &st), 0);
    assert_int_equal(st.map_size, (size_t)1 << 20);
    assert_true(st.map_used > 0 && st.map_used <= st.map_size);
    assert_int_equal(st.last_index, 2);
    assert_true(st.disk_free > 0);
}

static void test_stat_used_goes_down_after_compaction(void **state)
{
    struct fixture *f = *state;
    static uint8_t chunk[64 * 1024];
    struct store_txn *txn;
    struct store_stat full;
    struct store_stat after;

    memset(chunk, 'z', sizeof(chunk));
    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    fix_append_blobs(txn, 1, 64, chunk, sizeof(chunk));
    assert_int_equal(store_txn_commit(txn), 0);
    assert_int_equal(store_stat(f->s, &full), 0);
    assert_true(full.map_used >= 64u * sizeof(chunk));
    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    assert_int_equal(store_log_compact(txn, 64), 0);
    assert_int_equal(store_txn_commit(txn), 0);
    assert_int_equal(store_stat(f->s, &after), 0);
    assert_true(after.map_used + 32u * sizeof(chunk) < full.map_used);
    assert_int_equal(after.first_index, 0);
    assert_int_equal(after.last_index, 64);
}

static uint64_t data_file_size(const struct fixture *f)
{
    char path[128];
    struct stat st;

    snprintf(path, sizeof(path), "%s/data.mdb", f->dir);
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

/* What a one-voter batch does: entries appended and compacted in the
 * same transaction. Nothing of them stays, in the map or in the file
 * (LMDB does not write pages freed before the commit), and the log goes
 * on after the compaction point. */
static void test_log_compacted_in_its_own_txn_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    static uint8_t chunk[64 * 1024];
    struct store_txn *txn;
    struct store_stat before;
    struct store_stat after;
    uint64_t size_before;

    append(f, 1, 1, "first", 0);
    assert_int_equal(store_stat(f->s, &before), 0);
    size_before = data_file_size(f);
    memset(chunk, 'q', sizeof(chunk));
    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    fix_append_blobs(txn, 2, 65, chunk, sizeof(chunk));
    assert_int_equal(store_log_compact(txn, 65), 0);
    assert_int_equal(store_txn_commit(txn), 0);
    assert_int_equal(store_stat(f->s, &after), 0);
    assert_true(after.map_used < before.map_used + 4u * sizeof(chunk));
    assert_true(data_file_size(f) < size_before + 4u * sizeof(chunk));
    bounds(f, 0, 65);
    fix_reopen(f);
    bounds(f, 0, 65);
    append(f, 66, 1, "next", 0);
    bounds(f, 66, 66);
}

static void test_apply_on_full_map_is_enospc_and_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    struct store_cmd c;
    static uint8_t big[600 * 1024];
    struct fcounts fc;

    memset(big, 'y', sizeof(big));
    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_SUBMIT;
    c.u.submit.function = B("fn");
    c.u.submit.data.base = big;
    c.u.submit.data.len = sizeof(big);
    c.u.submit.prio = STORE_PRIO_NORMAL;
    c.u.submit.background = true;
    assert_int_equal(fix_apply(f, &c), STORE_ENOSPC);
    assert_false(fix_status(f, "H:test:1").known);
    fc = fix_func(f, "fn");
    assert_false(fc.found);
    bounds(f, 0, 0);
    /* A small job still fits afterwards. */
    c.u.submit.data.len = 10;
    memset(&c.origin, 0, sizeof(c.origin));
    assert_int_equal(fix_apply(f, &c), 0);
    assert_true(fix_status(f, "H:test:1").known);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, fix_setup, fix_teardown)
        T(test_log_append_get_and_bounds),
        T(test_log_append_cmd_is_encode_then_append),
        T(test_log_truncate_then_append_reuses_index),
        T(test_log_compact_keeps_last_index),
        T(test_log_survives_reopen),
        T(test_log_crc_mismatch_is_corrupt),
        T(test_job_crc_mismatch_is_corrupt),
        T(test_hard_state_defaults_and_persists),
        T(test_snap_meta_persists_and_checks_its_crc),
        T(test_stat_used_goes_down_after_compaction),
        T(test_log_compacted_in_its_own_txn_leaves_nothing),
        cmocka_unit_test_setup_teardown(
            test_map_full_is_enospc_and_leaves_nothing, setup_tiny,
            fix_teardown),
        cmocka_unit_test_setup_teardown(
            test_apply_on_full_map_is_enospc_and_leaves_nothing, setup_tiny,
            fix_teardown),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
