/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/node/test_host.c - node/cluster/host.c with a real store: a
 * lone voter elects itself at once, writes each batch in one transaction
 * (entries, hard state, apply, compaction), comes back from the disk
 * after a restart or a failed batch, and reads a data directory written
 * before raft/ ran.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "node/cluster/host.h"
#include "node/gr.h"
#include "storage/store.h"

struct fx {
    char dir[64];
    struct store *s;
    struct gr_host h;
    bool host_open;
    uint64_t now; /* the monotonic clock handed to the host */
};

static void open_store(struct fx *f)
{
    struct store_config cfg;
    char err[256];

    memset(&cfg, 0, sizeof(cfg));
    cfg.dir = f->dir;
    cfg.node_id = 1;
    cfg.cluster = "test";
    cfg.nometasync = true;
    assert_int_equal(store_open(&cfg, &f->s, err, sizeof(err)), 0);
}

static void open_host(struct fx *f)
{
    struct gr_host_config hc;
    char err[256];

    memset(&hc, 0, sizeof(hc));
    hc.node_id = 1;
    assert_int_equal(gr_host_open(&f->h, f->s, &hc, f->now, err, sizeof(err)),
                     0);
    f->host_open = true;
}

static void close_all(struct fx *f)
{
    if (f->host_open) {
        gr_host_close(&f->h);
        f->host_open = false;
    }
    store_close(f->s);
    f->s = NULL;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/gr-host-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->now = 1000;
    open_store(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];

    close_all(f);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static struct store_cmd submit_cmd(const char *fn)
{
    struct store_cmd c;

    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_SUBMIT;
    c.u.submit.function.base = (const uint8_t *)fn;
    c.u.submit.function.len = strlen(fn);
    c.u.submit.data.base = (const uint8_t *)"x";
    c.u.submit.data.len = 1;
    c.u.submit.prio = STORE_PRIO_NORMAL;
    c.u.submit.background = true;
    return c;
}

/* One batch of n background submissions, as the committer writes it;
 * returns the transaction's result (ok false: aborted instead of
 * committed, as a failed commit leaves it). */
static void batch(struct fx *f, size_t n, bool ok)
{
    struct store_cmd c[8];
    uint64_t idx[8];
    struct store_txn *txn;
    struct store_effects fx;
    size_t i;

    assert_true(n <= 8);
    store_effects_init(&fx);
    gr_host_batch_begin(&f->h);
    for (i = 0; i < n; i++) {
        c[i] = submit_cmd("fn");
        assert_int_equal(gr_host_propose(&f->h, &c[i], 1764950400000ull, &idx[i]),
                         0);
        if (i > 0) {
            assert_int_equal(idx[i], idx[i - 1] + 1);
        }
    }
    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    assert_int_equal(gr_host_persist(&f->h, txn), 0);
    for (i = 0; i < n; i++) {
        assert_int_equal(store_apply(txn, idx[i], c[i].time_ms, &c[i], &fx), 0);
    }
    assert_int_equal(gr_host_compact(&f->h, txn, idx[n - 1]), 0);
    if (ok) {
        assert_int_equal(store_txn_commit(txn), 0);
    } else {
        store_txn_abort(txn);
    }
    assert_int_equal(gr_host_advance(&f->h, ok, f->now), 0);
    store_effects_close(&fx);
}

static uint64_t queued(struct fx *f)
{
    struct store_txn *txn;
    struct store_job_status st;
    uint64_t n = 0;
    uint64_t i;
    char h[STORE_HANDLE_MAX];

    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    for (i = 1; i < 64; i++) {
        struct store_buf b;

        b.base = (const uint8_t *)h;
        b.len = store_handle_format(f->s, i, h, sizeof(h));
        assert_int_equal(store_job_status(txn, b, &st), 0);
        n += st.known;
    }
    store_txn_abort(txn);
    return n;
}

static void log_bounds(struct fx *f, uint64_t *first, uint64_t *last)
{
    struct store_txn *txn;

    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_log_bounds(txn, first, last), 0);
    store_txn_abort(txn);
}

static void test_host_lone_voter_leads_at_once(void **state)
{
    struct fx *f = *state;

    open_host(f);
    assert_false(gr_host_decides_alone(&f->h));
    assert_int_equal(gr_host_settle(&f->h, f->now, 0), 0);
    assert_true(gr_host_decides_alone(&f->h));
    assert_int_equal(gr_host_term(&f->h), 1);
    /* Its no-op took index 1 and is applied. */
    assert_int_equal(gr_host_applied(&f->h), 1);
    assert_int_equal(gr_host_next_index(&f->h), 2);
}

static void test_host_batches_apply_and_compact(void **state)
{
    struct fx *f = *state;
    uint64_t first;
    uint64_t last;

    open_host(f);
    assert_int_equal(gr_host_settle(&f->h, f->now, 0), 0);
    batch(f, 3, true);
    batch(f, 2, true);
    assert_int_equal(gr_host_next_index(&f->h), 7);
    assert_int_equal(gr_host_applied(&f->h), 6);
    assert_int_equal(queued(f), 5);
    /* Nothing stays in the log: it was applied in the transaction that
     * wrote it. */
    log_bounds(f, &first, &last);
    assert_int_equal(first, 0);
    assert_int_equal(last, 6);
}

static void test_host_restart_continues_from_disk(void **state)
{
    struct fx *f = *state;

    open_host(f);
    assert_int_equal(gr_host_settle(&f->h, f->now, 0), 0);
    batch(f, 4, true);
    close_all(f);
    open_store(f);
    open_host(f);
    assert_int_equal(gr_host_applied(&f->h), 5);
    assert_int_equal(gr_host_settle(&f->h, f->now, 0), 0);
    /* A new term, and its no-op after what was there. */
    assert_int_equal(gr_host_term(&f->h), 2);
    assert_int_equal(gr_host_next_index(&f->h), 7);
    batch(f, 1, true);
    assert_int_equal(queued(f), 5);
}

static void test_host_failed_batch_starts_over_from_disk(void **state)
{
    struct fx *f = *state;

    open_host(f);
    assert_int_equal(gr_host_settle(&f->h, f->now, 0), 0);
    batch(f, 2, true);
    batch(f, 3, false); /* indexes 4-6, never committed */
    assert_true(gr_host_needs_settle(&f->h));
    assert_false(gr_host_decides_alone(&f->h));
    assert_int_equal(gr_host_settle(&f->h, f->now, 0), 0);
    assert_true(gr_host_decides_alone(&f->h));
    /* The new term's no-op took index 4. */
    assert_int_equal(gr_host_next_index(&f->h), 5);
    assert_int_equal(queued(f), 2);
    batch(f, 1, true);
    assert_int_equal(queued(f), 3);
}

/* A data directory of a build before raft/: entries in term 1 applied and
 * compacted in the transaction that wrote them, no hard state, no
 * snapshot meta. */
static void test_host_reads_a_directory_from_before_raft(void **state)
{
    struct fx *f = *state;
    struct store_txn *txn;
    struct store_effects fx;
    uint64_t i;

    store_effects_init(&fx);
    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    for (i = 1; i <= 3; i++) {
        struct store_cmd c = submit_cmd("old");
        struct store_entry e;

        memset(&e, 0, sizeof(e));
        e.index = i;
        e.term = 1;
        assert_int_equal(store_log_append_cmd(txn, &e, &c), 0);
        assert_int_equal(store_apply(txn, i, 0, &c, &fx), 0);
    }
    assert_int_equal(store_log_compact(txn, 3), 0);
    assert_int_equal(store_txn_commit(txn), 0);
    store_effects_close(&fx);
    open_host(f);
    assert_int_equal(gr_host_settle(&f->h, f->now, 0), 0);
    assert_int_equal(gr_host_term(&f->h), 2);
    assert_int_equal(gr_host_next_index(&f->h), 5);
    batch(f, 1, true);
    assert_int_equal(queued(f), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
        T(test_host_lone_voter_leads_at_once),
        T(test_host_batches_apply_and_compact),
        T(test_host_restart_continues_from_disk),
        T(test_host_failed_batch_starts_over_from_disk),
        T(test_host_reads_a_directory_from_before_raft),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
