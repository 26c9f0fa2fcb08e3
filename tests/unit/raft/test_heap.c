/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/raft/test_heap.c - raft/heap.c: every allocation can fail.
 *
 * A replaced allocator fails allocations on a schedule; the core must
 * return RAFT_ENOMEM (or treat the loss like a lost message), never crash,
 * never leak (AddressSanitizer's leak check runs at exit), and keep the
 * cluster's state machines consistent.
 */
#include "unit/raft/cluster.h"

static unsigned long n_allocs;
static unsigned long fail_every; /* 0: never */
static unsigned long fail_at;    /* 0: never */

static bool should_fail(void)
{
    n_allocs++;
    return (fail_every != 0 && n_allocs % fail_every == 0) ||
           (fail_at != 0 && n_allocs == fail_at);
}

static void *t_malloc(void *d, size_t size)
{
    (void)d;
    return should_fail() ? NULL : malloc(size);
}

static void *t_calloc(void *d, size_t n, size_t size)
{
    (void)d;
    return should_fail() ? NULL : calloc(n, size);
}

static void *t_realloc(void *d, void *p, size_t size)
{
    (void)d;
    return should_fail() ? NULL : realloc(p, size);
}

static void t_free(void *d, void *p)
{
    (void)d;
    free(p);
}

static const struct raft_heap faulty = {NULL, t_malloc, t_calloc, t_realloc,
                                        t_free};

static int teardown(void **state)
{
    (void)state;
    raft_heap_set(NULL);
    fail_every = 0;
    fail_at = 0;
    return 0;
}

static void test_heap_raft_new_fails_cleanly_at_every_allocation(void **st)
{
    struct raft_entry e[3] = {
        {1, 1, RAFT_ENTRY_NOOP, {NULL, 0}},
        {1, 2, RAFT_ENTRY_NORMAL, {"a", 1}},
        {1, 3, RAFT_ENTRY_NORMAL, {"b", 1}},
    };
    struct raft_snapshot snap;
    struct raft_restore rs;
    struct raft_config cfg;
    struct raft *r = NULL;
    int rv = RAFT_ENOMEM;

    (void)st;
    memset(&snap, 0, sizeof(snap));
    snap.meta.index = 1;
    snap.meta.term = 1;
    snap.len = 5;
    memset(&rs, 0, sizeof(rs));
    rs.hard_state.term = 1;
    rs.snapshot = &snap;
    rs.entries = e;
    rs.n_entries = 3;
    rs.applied = 1;
    raft_config_default(&cfg, 1);
    raft_heap_set(&faulty);
    for (unsigned long k = 1; k < 50 && rv == RAFT_ENOMEM; k++) {
        n_allocs = 0;
        fail_at = k;
        rv = raft_new(&cfg, &rs, 0, &r);
        if (rv == RAFT_ENOMEM) {
            assert_null(r);
        }
    }
    assert_int_equal(rv, 0);
    assert_int_equal(raft_last_index(r), 3);
    raft_free(r);
}

static void test_heap_propose_without_memory_reports_enomem(void **st)
{
    struct solo s;
    struct raft_buf b = {"abc", 3};
    raft_index last;

    (void)st;
    solo_start(&s, 1, 1, NULL);
    solo_tick_to(&s, 250);
    last = raft_last_index(s.r);
    raft_heap_set(&faulty);
    n_allocs = 0;
    fail_at = 1;
    assert_int_equal(raft_propose(s.r, &b, NULL), RAFT_ENOMEM);
    assert_int_equal(raft_last_index(s.r), last);
    raft_heap_set(NULL);
    assert_int_equal(raft_propose(s.r, &b, NULL), 0);
    solo_flush(&s);
    solo_stop(&s);
}

static void test_heap_cluster_survives_failing_allocations(void **st)
{
    (void)st;
    for (unsigned long every = 5; every <= 29; every += 6) {
        struct cl *c = cl_new(3, 3);
        raft_id l;
        uint64_t v = 1;

        cl_start(c);
        c->tolerate_enomem = true;
        n_allocs = 0;
        fail_every = every;
        raft_heap_set(&faulty);
        for (int i = 0; i < 200; i++) {
            l = cl_leader(c);
            if (l != 0 && cl_propose(c, l, v, NULL) == 0) {
                v++;
            }
            cl_run(c, 5);
            cl_assert_sm_consistent(c);
        }
        raft_heap_set(NULL);
        fail_every = 0;
        cl_run(c, 1000);
        l = cl_leader(c);
        assert_int_not_equal(l, 0);
        assert_int_equal(cl_propose(c, l, v, NULL), 0);
        cl_run(c, 100);
        for (raft_id id = 1; id <= 3; id++) {
            assert_int_equal(c->nodes[id].st.sm[c->nodes[id].st.n_sm - 1], v);
        }
        cl_assert_sm_consistent(c);
        cl_free(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(
            test_heap_raft_new_fails_cleanly_at_every_allocation, teardown),
        cmocka_unit_test_teardown(
            test_heap_propose_without_memory_reports_enomem, teardown),
        cmocka_unit_test_teardown(
            test_heap_cluster_survives_failing_allocations, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
