/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/raft/test_progress.c - raft/progress.c: quorum arithmetic and
 * the in-flight window.
 */
#include "raft/internal.h"
#include "unit/raft/cluster.h"

static void test_progress_window_frees_on_ack(void **state)
{
    struct solo s;
    struct raft__progress pr;

    (void)state;
    solo_start(&s, 1, 3, NULL);
    memset(&pr, 0, sizeof(pr));
    s.r->cfg.max_inflight_msgs = 3;
    s.r->cfg.max_inflight_bytes = 100;
    raft__progress_infl_add(&pr, 0, 5, 10);
    raft__progress_infl_add(&pr, 5, 9, 10);
    assert_false(raft__progress_infl_full(s.r, &pr));
    raft__progress_infl_add(&pr, 9, 12, 10);
    assert_true(raft__progress_infl_full(s.r, &pr));
    raft__progress_infl_free_to(&pr, 8);
    assert_int_equal(pr.infl_n, 2);
    assert_int_equal(pr.infl_bytes, 20);
    raft__progress_infl_add(&pr, 12, 20, 90);
    assert_true(raft__progress_infl_full(s.r, &pr)); /* by bytes */
    raft__progress_infl_free_to(&pr, 20);
    assert_int_equal(pr.infl_n, 0);
    assert_int_equal(pr.infl_bytes, 0);
    /* A window used for ever never grows. */
    for (raft_index i = 1; i <= 3 * RAFT_MAX_INFLIGHT_MSGS; i++) {
        raft__progress_infl_add(&pr, i - 1, i, 1);
        raft__progress_infl_free_to(&pr, i - 1);
        assert_int_equal(pr.infl_n, 1);
    }
    raft__progress_infl_free_to(&pr, 3 * RAFT_MAX_INFLIGHT_MSGS);
    assert_int_equal(pr.infl_n, 0);
    /* After a rewind, later appends carry lower indexes: an
     * acknowledgment frees what it covers wherever it sits. */
    raft__progress_infl_add(&pr, 400, 410, 1);
    raft__progress_infl_add(&pr, 200, 210, 1);
    raft__progress_infl_free_to(&pr, 300);
    assert_int_equal(pr.infl_n, 1);
    assert_int_equal(pr.infl[0].last, 410);
    solo_stop(&s);
}

/* A rejection goes back to match + 1 once, and frees the room of exactly
 * the append it rejects: its duplicate, or a rejection of nothing in the
 * window, frees nothing. */
static void test_progress_rejection_frees_one_append(void **state)
{
    struct solo s;
    struct raft__progress pr;

    (void)state;
    solo_start(&s, 1, 3, NULL);
    memset(&pr, 0, sizeof(pr));
    pr.state = RAFT__REPLICATE;
    pr.match = 10;
    pr.next = 41;
    for (raft_index p = 10; p < 40; p += 10) {
        raft__progress_infl_add(&pr, p, p + 10, 8);
    }
    raft__progress_rejected(s.r, &pr, 30);
    assert_int_equal(pr.next, 11);
    assert_true(pr.rewound);
    assert_int_equal(pr.infl_n, 2);
    assert_int_equal(pr.infl_bytes, 16);
    /* The same rejection again (a duplicate): nothing more. */
    raft__progress_rejected(s.r, &pr, 30);
    assert_int_equal(pr.infl_n, 2);
    /* The range resent after the rewind: a rejection of an older append
     * frees that older one, never a second rewind. */
    pr.next = 21;
    raft__progress_infl_add(&pr, 10, 20, 8);
    raft__progress_rejected(s.r, &pr, 20);
    assert_int_equal(pr.next, 21);
    assert_int_equal(pr.infl_n, 2);
    assert_true(pr.infl[0].superseded);
    assert_int_equal(pr.infl[1].prev, 10);
    assert_false(pr.infl[1].superseded);
    solo_stop(&s);
}

static void test_progress_quorum_counts_voters_only(void **state)
{
    struct solo s;
    struct raft_msg m;

    (void)state;
    solo_start(&s, 1, 5, NULL);
    assert_int_equal(raft__quorum(s.r), 3);
    solo_tick_to(&s, 250);
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_PREVOTE_RESP;
    m.to = 1;
    m.term = 1;
    m.u.vote_resp.granted = true;
    m.from = 2;
    solo_step(&s, &m);
    m.from = 3;
    solo_step(&s, &m);
    m.type = RAFT_MSG_VOTE_RESP;
    m.from = 2;
    solo_step(&s, &m);
    m.from = 3;
    solo_step(&s, &m);
    assert_int_equal(raft_role(s.r), RAFT_LEADER);
    /* Self (persisted no-op at 1) and 2: two of five, not enough. */
    raft__progress_find(s.r, 2)->match = 1;
    assert_int_equal(raft__quorum_match(s.r), 0);
    raft__progress_find(s.r, 3)->match = 5;
    assert_int_equal(raft__quorum_match(s.r), 1);
    raft__progress_find(s.r, 4)->match = 5;
    raft__progress_find(s.r, 5)->match = 4;
    assert_int_equal(raft__quorum_match(s.r), 4);
    solo_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_progress_window_frees_on_ack),
        cmocka_unit_test(test_progress_rejection_frees_one_append),
        cmocka_unit_test(test_progress_quorum_counts_voters_only),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
