/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/raft/test_election.c - raft/election.c: timers, PreVote,
 * votes, roles (paper 5.2, 5.4.1; thesis 4.2.3, 9.6).
 */
#include "unit/raft/cluster.h"

static struct raft_msg vote_req(enum raft_msg_type type, raft_id from,
                                raft_id to, raft_term term,
                                raft_index last_index, raft_term last_term)
{
    struct raft_msg m;

    memset(&m, 0, sizeof(m));
    m.type = type;
    m.from = from;
    m.to = to;
    m.term = term;
    m.u.vote.last_index = last_index;
    m.u.vote.last_term = last_term;
    return m;
}

static void test_election_single_voter_leads_after_timeout(void **state)
{
    struct solo s;

    (void)state;
    solo_start(&s, 1, 1, NULL);
    solo_tick_to(&s, 99);
    assert_int_equal(raft_role(s.r), RAFT_FOLLOWER);
    solo_tick_to(&s, 200);
    assert_int_equal(raft_role(s.r), RAFT_LEADER);
    assert_int_equal(raft_current_term(s.r), 1);
    assert_int_equal(raft_voted_for(s.r), 1);
    /* Thesis 6.4: the new leader's first entry is a no-op of its term,
     * committed once the host persisted it. */
    assert_int_equal(raft_last_index(s.r), 1);
    assert_int_equal(raft_term_at(s.r, 1), 1);
    assert_int_equal(raft_commit_index(s.r), 1);
    assert_int_equal(s.n_committed, 1);
    assert_int_equal(s.committed[0].type, RAFT_ENTRY_NOOP);
    solo_stop(&s);
}

static void test_election_timeout_is_randomized_in_t_2t(void **state)
{
    uint64_t first = 0;
    bool differ = false;

    (void)state;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        struct raft_config cfg;
        struct raft *r;
        uint64_t t = 0;

        raft_config_default(&cfg, 1);
        cfg.election_timeout_ms = 100;
        cfg.heartbeat_ms = 10;
        cfg.seed = seed;
        cfg.initial_conf.n_members = 3;
        for (size_t j = 0; j < 3; j++) {
            cfg.initial_conf.members[j].id = j + 1;
            cfg.initial_conf.members[j].voter = true;
        }
        assert_int_equal(raft_new(&cfg, NULL, 0, &r), 0);
        while (raft_role(r) == RAFT_FOLLOWER && t < 1000) {
            t++;
            assert_int_equal(raft_tick(r, t), 0);
        }
        assert_true(t >= 100 && t < 200);
        if (first == 0) {
            first = t;
        } else if (t != first) {
            differ = true;
        }
        raft_free(r);
    }
    assert_true(differ);
}

static void test_election_prevote_keeps_term_and_vote(void **state)
{
    struct solo s;
    struct raft_ready rd;
    const struct raft_msg *pv;

    (void)state;
    solo_start(&s, 1, 3, NULL);
    while (raft_role(s.r) == RAFT_FOLLOWER) {
        s.now++;
        assert_int_equal(raft_tick(s.r, s.now), 0);
    }
    assert_int_equal(raft_role(s.r), RAFT_PRE_CANDIDATE);
    assert_int_equal(raft_current_term(s.r), 0);
    assert_int_equal(raft_voted_for(s.r), 0);
    assert_int_equal(raft_ready(s.r, &rd), 0);
    assert_false(rd.has_hard_state);
    /* Pre-votes change no state, so they may leave at once. */
    assert_int_equal(rd.n_msgs_now, 2);
    assert_int_equal(rd.n_msgs_after_persist, 0);
    raft_advance(s.r, &rd);
    solo_stop(&s);

    solo_start(&s, 1, 3, NULL);
    solo_tick_to(&s, 250);
    pv = solo_find(&s, RAFT_MSG_PREVOTE, 2);
    assert_non_null(pv);
    assert_int_equal(pv->term, 1);
    solo_stop(&s);
}

static void test_election_vote_sent_only_after_persist(void **state)
{
    struct solo s;
    struct raft_ready rd;
    struct raft_msg m = vote_req(RAFT_MSG_VOTE, 2, 1, 1, 0, 0);

    (void)state;
    solo_start(&s, 1, 3, NULL);
    assert_int_equal(raft_step(s.r, 0, &m), 0);
    assert_int_equal(raft_ready(s.r, &rd), 0);
    assert_true(rd.has_hard_state);
    assert_int_equal(rd.hard_state.term, 1);
    assert_int_equal(rd.hard_state.vote, 2);
    assert_int_equal(rd.n_msgs_now, 0);
    assert_int_equal(rd.n_msgs_after_persist, 1);
    assert_int_equal(rd.msgs_after_persist[0].type, RAFT_MSG_VOTE_RESP);
    assert_true(rd.msgs_after_persist[0].u.vote_resp.granted);
    raft_advance(s.r, &rd);
    solo_stop(&s);
}

static void test_election_one_vote_per_term(void **state)
{
    struct solo s;
    struct raft_msg a = vote_req(RAFT_MSG_VOTE, 2, 1, 1, 0, 0);
    struct raft_msg b = vote_req(RAFT_MSG_VOTE, 3, 1, 1, 0, 0);
    const struct raft_msg *resp;

    (void)state;
    solo_start(&s, 1, 3, NULL);
    solo_step(&s, &a);
    solo_step(&s, &b);
    resp = solo_find(&s, RAFT_MSG_VOTE_RESP, 3);
    assert_non_null(resp);
    assert_false(resp->u.vote_resp.granted);
    /* A repeated request from the one we voted for is granted again. */
    solo_step(&s, &a);
    resp = solo_find(&s, RAFT_MSG_VOTE_RESP, 2);
    assert_true(resp->u.vote_resp.granted);
    assert_int_equal(raft_voted_for(s.r), 2);
    solo_stop(&s);
}

static void test_election_vote_rejected_for_less_up_to_date_log(void **state)
{
    struct solo s;
    struct raft_entry e[2];
    struct raft_restore rs;
    struct raft_msg m;
    const struct raft_msg *resp;

    (void)state;
    memset(e, 0, sizeof(e));
    e[0] = (struct raft_entry){1, 1, RAFT_ENTRY_NOOP, {NULL, 0}};
    e[1] = (struct raft_entry){2, 2, RAFT_ENTRY_NOOP, {NULL, 0}};
    rs = cl_restore(e, 2, 2, 0, 0);
    solo_start(&s, 1, 3, &rs);
    /* Higher term but older last term: paper 5.4.1 says no. */
    m = vote_req(RAFT_MSG_VOTE, 2, 1, 3, 5, 1);
    solo_step(&s, &m);
    resp = solo_find(&s, RAFT_MSG_VOTE_RESP, 2);
    assert_false(resp->u.vote_resp.granted);
    assert_int_equal(raft_current_term(s.r), 3);
    assert_int_equal(raft_voted_for(s.r), 0);
    /* Same last term, shorter log: no. */
    m = vote_req(RAFT_MSG_VOTE, 3, 1, 3, 1, 2);
    solo_step(&s, &m);
    resp = solo_find(&s, RAFT_MSG_VOTE_RESP, 3);
    assert_false(resp->u.vote_resp.granted);
    /* Same last term, same length: yes. */
    m = vote_req(RAFT_MSG_VOTE, 3, 1, 3, 2, 2);
    solo_step(&s, &m);
    resp = solo_find(&s, RAFT_MSG_VOTE_RESP, 3);
    assert_true(resp->u.vote_resp.granted);
    solo_stop(&s);
}

static void test_election_stale_vote_request_gets_our_term(void **state)
{
    struct solo s;
    struct raft_msg m = vote_req(RAFT_MSG_VOTE, 2, 1, 5, 0, 0);
    const struct raft_msg *resp;

    (void)state;
    solo_start(&s, 1, 3, NULL);
    solo_step(&s, &m);
    m = vote_req(RAFT_MSG_VOTE, 3, 1, 4, 0, 0);
    solo_step(&s, &m);
    resp = solo_find(&s, RAFT_MSG_VOTE_RESP, 3);
    assert_false(resp->u.vote_resp.granted);
    assert_int_equal(resp->term, 5);
    solo_stop(&s);
}

static void test_election_prevote_denied_while_leader_is_heard(void **state)
{
    struct solo s;
    struct raft_msg hb;
    struct raft_msg pv = vote_req(RAFT_MSG_PREVOTE, 3, 1, 2, 0, 0);
    const struct raft_msg *resp;

    (void)state;
    solo_start(&s, 1, 3, NULL);
    memset(&hb, 0, sizeof(hb));
    hb.type = RAFT_MSG_HEARTBEAT;
    hb.from = 2;
    hb.to = 1;
    hb.term = 1;
    solo_step(&s, &hb);
    s.now = 50;
    solo_step(&s, &pv);
    resp = solo_find(&s, RAFT_MSG_PREVOTE_RESP, 3);
    assert_false(resp->u.vote_resp.granted);
    assert_int_equal(resp->term, 1);
    assert_int_equal(raft_current_term(s.r), 1);
    /* Once the leader has been silent for an election timeout, yes; and
     * the pre-vote still changes nothing. */
    s.now = 151;
    solo_step(&s, &pv);
    resp = solo_find(&s, RAFT_MSG_PREVOTE_RESP, 3);
    assert_true(resp->u.vote_resp.granted);
    assert_int_equal(resp->term, 2);
    assert_int_equal(raft_current_term(s.r), 1);
    assert_int_equal(raft_voted_for(s.r), 0);
    solo_stop(&s);
}

static void test_election_lease_ignores_disruptive_vote(void **state)
{
    struct solo s;
    struct raft_msg hb;
    struct raft_msg v = vote_req(RAFT_MSG_VOTE, 3, 1, 7, 10, 7);
    struct cl tr;

    (void)state;
    memset(&tr, 0, sizeof(tr));
    solo_start(&s, 1, 3, NULL);
    raft_free(s.r);
    s.cfg.trace = cl_trace_cb;
    s.cfg.trace_arg = &tr;
    assert_int_equal(raft_new(&s.cfg, NULL, 0, &s.r), 0);
    memset(&hb, 0, sizeof(hb));
    hb.type = RAFT_MSG_HEARTBEAT;
    hb.from = 2;
    hb.to = 1;
    hb.term = 1;
    solo_step(&s, &hb);
    s.now = 20;
    solo_step(&s, &v);
    /* Thesis 4.2.3: no term update, no vote, no answer. */
    assert_int_equal(raft_current_term(s.r), 1);
    assert_null(solo_find(&s, RAFT_MSG_VOTE_RESP, 3));
    assert_int_equal(cl_trace_count(&tr, RAFT_TRACE_IGNORED_DISRUPTIVE, 1), 1);
    /* A vote sent on TimeoutNow is not disruptive. */
    v.u.vote.transfer = true;
    solo_step(&s, &v);
    assert_int_equal(raft_current_term(s.r), 7);
    assert_true(solo_find(&s, RAFT_MSG_VOTE_RESP, 3)->u.vote_resp.granted);
    solo_stop(&s);
}

static void test_election_candidate_yields_to_leader_of_its_term(void **state)
{
    struct solo s;
    struct raft_msg hb;

    (void)state;
    solo_start(&s, 1, 3, NULL);
    s.cfg.pre_vote = false;
    raft_free(s.r);
    assert_int_equal(raft_new(&s.cfg, NULL, 0, &s.r), 0);
    solo_tick_to(&s, 250);
    assert_int_equal(raft_role(s.r), RAFT_CANDIDATE);
    hb = solo_msg(&s, RAFT_MSG_HEARTBEAT, 2);
    solo_step(&s, &hb);
    assert_int_equal(raft_role(s.r), RAFT_FOLLOWER);
    assert_int_equal(raft_leader(s.r), 2);
    solo_stop(&s);
}

static void test_election_majority_of_rejections_ends_candidacy(void **state)
{
    struct solo s;
    struct raft_msg m;

    (void)state;
    solo_start(&s, 1, 3, NULL);
    solo_tick_to(&s, 250);
    assert_int_equal(raft_role(s.r), RAFT_PRE_CANDIDATE);
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_PREVOTE_RESP;
    m.to = 1;
    m.term = 0;
    m.from = 2;
    solo_step(&s, &m);
    assert_int_equal(raft_role(s.r), RAFT_PRE_CANDIDATE);
    m.from = 3;
    solo_step(&s, &m);
    assert_int_equal(raft_role(s.r), RAFT_FOLLOWER);
    assert_int_equal(raft_current_term(s.r), 0);
    solo_stop(&s);
}

static void test_election_three_nodes_agree_on_one_leader(void **state)
{
    struct cl *c = *state;
    raft_id l;
    raft_term t;

    l = cl_start_leader(c);
    cl_run(c, 300);
    assert_int_equal(cl_leader(c), l);
    t = raft_current_term(c->nodes[l].r);
    for (raft_id id = 1; id <= 3; id++) {
        assert_int_equal(raft_current_term(c->nodes[id].r), t);
        assert_int_equal(raft_leader(c->nodes[id].r), l);
        if (id != l) {
            assert_int_equal(raft_role(c->nodes[id].r), RAFT_FOLLOWER);
        }
        /* Every node has the leader's no-op, committed. */
        assert_int_equal(raft_commit_index(c->nodes[id].r),
                         raft_last_index(c->nodes[l].r));
    }
}

/* Elects a leader, then cuts one follower off for twenty election
 * timeouts and returns it; *l and *t are the leader and its term from
 * before the cut. */
static raft_id partition_a_follower(struct cl *c, raft_id *l, raft_term *t)
{
    raft_id lone;

    *l = cl_start_leader(c);
    *t = raft_current_term(c->nodes[*l].r);
    lone = *l == 3 ? 2 : 3;
    cl_isolate(c, lone, true);
    cl_run(c, 2000);
    return lone;
}

static void test_election_prevote_stops_partitioned_term_inflation(void **state)
{
    struct cl *c = *state;
    raft_id l;
    raft_id lone;
    raft_term t;

    lone = partition_a_follower(c, &l, &t);
    /* Thesis 9.6: pre-votes fail, so the term never moves. */
    assert_int_equal(raft_current_term(c->nodes[lone].r), t);
    assert_true(cl_trace_count(c, RAFT_TRACE_BECOME_PRE_CANDIDATE, lone) > 3);
    assert_int_equal(cl_trace_count(c, RAFT_TRACE_BECOME_CANDIDATE, lone), 0);
    cl_isolate(c, lone, false);
    cl_run(c, 500);
    /* It rejoins without deposing the leader. */
    assert_int_equal(cl_leader(c), l);
    assert_int_equal(raft_current_term(c->nodes[l].r), t);
    assert_int_equal(raft_leader(c->nodes[lone].r), l);
}

static void test_election_without_prevote_partition_inflates_term(void **state)
{
    struct cl *c = *state;
    raft_id l;
    raft_id lone;
    raft_term t;

    for (raft_id id = 1; id <= 3; id++) {
        c->nodes[id].cfg.pre_vote = false;
    }
    lone = partition_a_follower(c, &l, &t);
    assert_true(raft_current_term(c->nodes[lone].r) > t + 3);
}

static void test_election_learner_never_campaigns(void **state)
{
    struct cl *c = cl_new(2, 1); /* node 2 knows no configuration */

    (void)state;
    cl_start(c);
    cl_isolate(c, 2, true);
    cl_run(c, 1000);
    assert_int_equal(raft_role(c->nodes[2].r), RAFT_FOLLOWER);
    assert_int_equal(raft_current_term(c->nodes[2].r), 0);
    assert_int_equal(cl_trace_count(c, RAFT_TRACE_BECOME_PRE_CANDIDATE, 2), 0);
    cl_free(c);
}

static void test_election_survives_leader_crash(void **state)
{
    struct cl *c = cl_new(5, 5);
    raft_id l;
    raft_id l2;

    (void)state;
    l = cl_start_leader(c);
    cl_crash(c, l);
    l2 = 0;
    for (int i = 0; i < 1000 && (l2 == 0 || l2 == l); i++) {
        cl_run(c, 1);
        l2 = cl_leader(c);
    }
    assert_int_not_equal(l2, 0);
    assert_int_not_equal(l2, l);
    cl_restart(c, l);
    cl_run(c, 500);
    assert_int_equal(raft_leader(c->nodes[l].r), cl_leader(c));
    cl_free(c);
}

/* raft_campaign starts an election at once: a lone voter leads after the
 * batch that records its vote, with no time passing; a member of a
 * larger cluster starts its pre-vote round; a server outside the
 * configuration and a leader do nothing. */
static void test_election_campaign_starts_at_once(void **state)
{
    struct solo s;

    (void)state;
    solo_start(&s, 1, 1, NULL);
    assert_int_equal(raft_campaign(s.r), 0);
    assert_int_equal(raft_role(s.r), RAFT_CANDIDATE);
    solo_flush(&s);
    assert_int_equal(raft_role(s.r), RAFT_LEADER);
    assert_int_equal(s.now, 0);
    assert_int_equal(raft_campaign(s.r), RAFT_EINVAL);
    solo_stop(&s);

    solo_start(&s, 1, 3, NULL);
    assert_int_equal(raft_campaign(s.r), 0);
    solo_flush(&s);
    assert_int_equal(raft_role(s.r), RAFT_PRE_CANDIDATE);
    assert_non_null(solo_find(&s, RAFT_MSG_PREVOTE, 2));
    assert_non_null(solo_find(&s, RAFT_MSG_PREVOTE, 3));
    solo_stop(&s);

    solo_start(&s, 4, 3, NULL); /* not a member */
    assert_int_equal(raft_campaign(s.r), 0);
    solo_flush(&s);
    assert_int_equal(raft_role(s.r), RAFT_FOLLOWER);
    assert_int_equal(s.n_out, 0);
    solo_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_election_single_voter_leads_after_timeout),
        cmocka_unit_test(test_election_campaign_starts_at_once),
        cmocka_unit_test(test_election_timeout_is_randomized_in_t_2t),
        cmocka_unit_test(test_election_prevote_keeps_term_and_vote),
        cmocka_unit_test(test_election_vote_sent_only_after_persist),
        cmocka_unit_test(test_election_one_vote_per_term),
        cmocka_unit_test(test_election_vote_rejected_for_less_up_to_date_log),
        cmocka_unit_test(test_election_stale_vote_request_gets_our_term),
        cmocka_unit_test(test_election_prevote_denied_while_leader_is_heard),
        cmocka_unit_test(test_election_lease_ignores_disruptive_vote),
        cmocka_unit_test(test_election_candidate_yields_to_leader_of_its_term),
        cmocka_unit_test(test_election_majority_of_rejections_ends_candidacy),
        cmocka_unit_test_setup_teardown(
            test_election_three_nodes_agree_on_one_leader, cl_fixture3,
            cl_fixture_free),
        cmocka_unit_test_setup_teardown(
            test_election_prevote_stops_partitioned_term_inflation, cl_fixture3,
            cl_fixture_free),
        cmocka_unit_test_setup_teardown(
            test_election_without_prevote_partition_inflates_term, cl_fixture3,
            cl_fixture_free),
        cmocka_unit_test(test_election_learner_never_campaigns),
        cmocka_unit_test(test_election_survives_leader_crash),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
