/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/raft/test_transfer.c - raft/transfer.c: leadership transfer
 * with TimeoutNow (thesis 3.10).
 */
#include "unit/raft/cluster.h"

static void test_transfer_hands_leadership_to_target(void **state)
{
    struct cl *c = *state;
    raft_id l;
    raft_id t;
    raft_term term;

    l = cl_start_leader(c);
    cl_run(c, 20);
    term = raft_current_term(c->nodes[l].r);
    t = l == 3 ? 1 : 3;
    assert_int_equal(raft_transfer_leadership(c->nodes[l].r, t), 0);
    assert_int_equal(cl_propose(c, l, 1, NULL), RAFT_ETRANSFER);
    assert_int_equal(raft_transfer_leadership(c->nodes[l].r, t),
                     RAFT_ETRANSFER);
    cl_flush(c, l);
    cl_run(c, 30);
    assert_int_equal(cl_leader(c), t);
    assert_int_equal(raft_current_term(c->nodes[t].r), term + 1);
    assert_int_equal(cl_trace_count(c, RAFT_TRACE_TRANSFER_TIMEOUT_NOW, l), 1);
    assert_int_equal(raft_leader(c->nodes[l].r), t);
    assert_int_equal(cl_propose(c, t, 2, NULL), 0);
    cl_run(c, 20);
    assert_int_equal(c->nodes[l].st.n_sm, 1);
}

static void test_transfer_catches_target_up_first(void **state)
{
    struct cl *c = *state;
    raft_id l;
    raft_id t;

    l = cl_start_leader(c);
    t = l == 3 ? 1 : 3;
    cl_run(c, 20);
    cl_cut(c, l, t, true);
    for (uint64_t v = 1; v <= 10; v++) {
        assert_int_equal(cl_propose(c, l, v, NULL), 0);
    }
    cl_run(c, 20);
    assert_true(raft_last_index(c->nodes[t].r) <
                raft_last_index(c->nodes[l].r));
    assert_int_equal(raft_transfer_leadership(c->nodes[l].r, t), 0);
    cl_flush(c, l);
    cl_run(c, 5);
    /* Behind: no TimeoutNow yet. */
    assert_int_equal(cl_trace_count(c, RAFT_TRACE_TRANSFER_TIMEOUT_NOW, l), 0);
    cl_cut(c, l, t, false);
    cl_run(c, 60);
    assert_int_equal(cl_leader(c), t);
    assert_int_equal(c->nodes[t].st.n_sm, 10);
}

static void test_transfer_is_abandoned_after_election_timeout(void **state)
{
    struct cl *c = *state;
    raft_id l;
    raft_id t;

    for (raft_id id = 1; id <= 3; id++) {
        c->nodes[id].cfg.check_quorum = false;
    }
    l = cl_start_leader(c);
    t = l == 3 ? 1 : 3;
    cl_run(c, 20);
    cl_isolate(c, t, true);
    assert_int_equal(raft_transfer_leadership(c->nodes[l].r, t), 0);
    cl_flush(c, l);
    cl_run(c, 99);
    assert_int_equal(cl_propose(c, l, 1, NULL), RAFT_ETRANSFER);
    cl_run(c, 2);
    assert_int_equal(cl_trace_count(c, RAFT_TRACE_TRANSFER_ABORT, l), 1);
    assert_int_equal(cl_leader(c), l);
    assert_int_equal(cl_propose(c, l, 1, NULL), 0);
}

static void test_transfer_rejects_bad_targets(void **state)
{
    struct cl *c = *state;
    raft_id l;
    raft_id f;

    l = cl_start_leader(c);
    f = l == 1 ? 2 : 1;
    cl_run(c, 20);
    assert_int_equal(raft_transfer_leadership(c->nodes[l].r, l), RAFT_EINVAL);
    assert_int_equal(raft_transfer_leadership(c->nodes[l].r, 9), RAFT_EINVAL);
    assert_int_equal(raft_transfer_leadership(c->nodes[f].r, l),
                     RAFT_ENOTLEADER);
    /* 0 picks the most up-to-date voter. */
    assert_int_equal(raft_transfer_leadership(c->nodes[l].r, 0), 0);
    cl_flush(c, l);
    cl_run(c, 30);
    assert_int_not_equal(cl_leader(c), l);
    assert_int_not_equal(cl_leader(c), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_transfer_hands_leadership_to_target, cl_fixture3,
            cl_fixture_free),
        cmocka_unit_test_setup_teardown(test_transfer_catches_target_up_first,
                                        cl_fixture3, cl_fixture_free),
        cmocka_unit_test_setup_teardown(
            test_transfer_is_abandoned_after_election_timeout, cl_fixture3,
            cl_fixture_free),
        cmocka_unit_test_setup_teardown(test_transfer_rejects_bad_targets,
                                        cl_fixture3, cl_fixture_free),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
