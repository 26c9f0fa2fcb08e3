/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/raft/test_readindex.c - raft/readindex.c: linearizable reads
 * confirmed by a heartbeat quorum (thesis 6.4).
 */
#include "unit/raft/cluster.h"

static struct raft_msg hb_resp(struct solo *s, raft_id from, uint64_t ctx)
{
    struct raft_msg m = solo_msg(s, RAFT_MSG_HEARTBEAT_RESP, from);

    m.u.hb_resp.ctx = ctx;
    return m;
}

/* Runs the host loop and returns how many read results came out. */
static size_t take_reads(struct solo *s, struct raft_read *out, size_t max)
{
    size_t n = 0;

    solo_flush(s);
    for (size_t i = 0; i < s->n_reads && n < max; i++) {
        out[n++] = s->reads[i];
    }
    s->n_reads = 0;
    return n;
}

/* Answers the last read-index heartbeat sent to peer `from`, so that peer
 * counts toward the quorum of that round. */
static void answer_heartbeat(struct solo *s, raft_id from)
{
    const struct raft_msg *hb = solo_find(s, RAFT_MSG_HEARTBEAT, from);
    struct raft_msg m;

    assert_non_null(hb);
    assert_true(hb->u.heartbeat.ctx > 0);
    m = hb_resp(s, from, hb->u.heartbeat.ctx);
    assert_int_equal(raft_step(s->r, 0, &m), 0);
}

static void test_readindex_needs_heartbeat_quorum_after_request(void **st)
{
    struct solo s;
    struct raft_read rd[4];
    struct raft_msg m;

    (void)st;
    solo_start(&s, 1, 3, NULL);
    solo_make_leader(&s);
    solo_ack(&s, 2, 1);
    assert_int_equal(raft_commit_index(s.r), 1);
    /* An acknowledgment from before the read does not count. */
    m = hb_resp(&s, 2, 0);
    s.n_out = 0;
    assert_int_equal(raft_read_index(s.r, 42), 0);
    assert_int_equal(take_reads(&s, rd, 4), 0);
    assert_int_equal(raft_step(s.r, 0, &m), 0);
    assert_int_equal(take_reads(&s, rd, 4), 0);
    answer_heartbeat(&s, 3);
    assert_int_equal(take_reads(&s, rd, 4), 1);
    assert_int_equal(rd[0].ctx, 42);
    assert_int_equal(rd[0].status, 0);
    assert_int_equal(rd[0].index, 1);
    solo_stop(&s);
}

static void test_readindex_waits_for_noop_commit(void **st)
{
    struct solo s;
    struct raft_read rd[4];

    (void)st;
    solo_start(&s, 1, 3, NULL);
    solo_make_leader(&s);
    assert_int_equal(raft_read_index(s.r, 7), 0);
    solo_flush(&s);
    answer_heartbeat(&s, 2);
    /* Confirmed leader, but its no-op is not committed: wait. */
    assert_int_equal(take_reads(&s, rd, 4), 0);
    solo_ack(&s, 2, 1);
    assert_int_equal(take_reads(&s, rd, 4), 1);
    assert_int_equal(rd[0].ctx, 7);
    assert_int_equal(rd[0].index, 1);
    solo_stop(&s);
}

static void test_readindex_fails_when_leadership_is_lost(void **st)
{
    struct solo s;
    struct raft_read rd[4];
    struct raft_msg m;

    (void)st;
    solo_start(&s, 1, 3, NULL);
    solo_make_leader(&s);
    assert_int_equal(raft_read_index(s.r, 5), 0);
    assert_int_equal(take_reads(&s, rd, 4), 0);
    m = solo_msg(&s, RAFT_MSG_HEARTBEAT, 3);
    m.term++; /* a leader of a newer term */
    assert_int_equal(raft_step(s.r, 0, &m), 0);
    assert_int_equal(take_reads(&s, rd, 4), 1);
    assert_int_equal(rd[0].ctx, 5);
    assert_int_equal(rd[0].status, RAFT_ENOTLEADER);
    assert_int_equal(raft_read_index(s.r, 6), RAFT_ENOTLEADER);
    solo_stop(&s);
}

static void test_readindex_single_voter_confirms_alone(void **st)
{
    struct cl *c = cl_new(1, 1);
    raft_id l;

    (void)st;
    l = cl_start_leader(c);
    cl_run(c, 2);
    assert_int_equal(raft_read_index(c->nodes[l].r, 99), 0);
    cl_flush(c, l);
    assert_int_equal(c->nodes[l].n_reads, 1);
    assert_int_equal(c->nodes[l].reads[0].ctx, 99);
    assert_int_equal(c->nodes[l].reads[0].status, 0);
    assert_true(c->nodes[l].reads[0].index <= c->nodes[l].st.applied);
    cl_free(c);
}

static void test_readindex_in_cluster_sees_committed_writes(void **st)
{
    struct cl *c = *st;
    raft_id l;
    raft_index idx;

    l = cl_start_leader(c);
    assert_int_equal(cl_propose(c, l, 77, &idx), 0);
    cl_run(c, 10);
    assert_int_equal(raft_read_index(c->nodes[l].r, 1), 0);
    cl_flush(c, l);
    cl_deliver(c);
    assert_int_equal(c->nodes[l].n_reads, 1);
    assert_true(c->nodes[l].reads[0].index >= idx);
}

static void test_readindex_reads_of_a_turn_share_one_round(void **st)
{
    struct solo s;
    struct raft_read rd[8];

    (void)st;
    solo_start(&s, 1, 3, NULL);
    solo_make_leader(&s);
    solo_ack(&s, 2, 1);
    s.n_out = 0;
    for (uint64_t ctx = 1; ctx <= 5; ctx++) {
        assert_int_equal(raft_read_index(s.r, ctx), 0);
    }
    assert_int_equal(take_reads(&s, rd, 8), 0);
    assert_int_equal(solo_count(&s, RAFT_MSG_HEARTBEAT), 2);
    answer_heartbeat(&s, 3);
    assert_int_equal(take_reads(&s, rd, 8), 5);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(rd[i].ctx, i + 1);
        assert_int_equal(rd[i].status, 0);
    }
    solo_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readindex_needs_heartbeat_quorum_after_request),
        cmocka_unit_test(test_readindex_waits_for_noop_commit),
        cmocka_unit_test(test_readindex_fails_when_leadership_is_lost),
        cmocka_unit_test(test_readindex_single_voter_confirms_alone),
        cmocka_unit_test_setup_teardown(
            test_readindex_in_cluster_sees_committed_writes, cl_fixture3,
            cl_fixture_free),
        cmocka_unit_test(test_readindex_reads_of_a_turn_share_one_round),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
