/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/raft/test_membership.c - raft/membership.c: configurations
 * and single-server changes with learners (thesis 4.1, 4.2).
 */
#include "unit/raft/cluster.h"

static void test_membership_conf_round_trips(void **state)
{
    struct raft_conf c;
    struct raft_conf d;
    uint8_t buf[256];

    (void)state;
    memset(&c, 0, sizeof(c));
    c.n_members = 3;
    c.members[0] = (struct raft_member){7, true};
    c.members[1] = (struct raft_member){UINT64_MAX, false};
    c.members[2] = (struct raft_member){0x0102030405060708ULL, true};
    assert_int_equal(raft_conf_encoded_len(&c), 2 + 3 * 9);
    raft_conf_encode(&c, buf);
    assert_int_equal(raft_conf_decode(buf, 29, &d), 0);
    assert_int_equal(d.n_members, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(d.members[i].id, c.members[i].id);
        assert_int_equal(d.members[i].voter, c.members[i].voter);
    }
    assert_non_null(raft_conf_find(&d, 7));
    assert_null(raft_conf_find(&d, 8));
}

static void test_membership_conf_decode_rejects_garbage(void **state)
{
    struct raft_conf c;
    struct raft_conf d;
    uint8_t buf[256];

    (void)state;
    memset(&c, 0, sizeof(c));
    c.n_members = 2;
    c.members[0] = (struct raft_member){1, true};
    c.members[1] = (struct raft_member){2, false};
    raft_conf_encode(&c, buf);
    d.n_members = 99;
    assert_int_equal(raft_conf_decode(buf, 19, &d), RAFT_EMALFORMED);
    assert_int_equal(d.n_members, 99); /* untouched on failure */
    assert_int_equal(raft_conf_decode(buf, 21, &d), RAFT_EMALFORMED);
    assert_int_equal(raft_conf_decode(NULL, 0, &d), RAFT_EMALFORMED);
    buf[0] = 2; /* unknown version */
    assert_int_equal(raft_conf_decode(buf, 20, &d), RAFT_EMALFORMED);
    buf[0] = 1;
    buf[19] = 2; /* voter flag */
    assert_int_equal(raft_conf_decode(buf, 20, &d), RAFT_EMALFORMED);
    buf[19] = 0;
    buf[17] = 1; /* second id becomes 1: duplicate */
    buf[18] = 1;
    buf[18] = 1;
    memcpy(&buf[11], &buf[2], 8);
    assert_int_equal(raft_conf_decode(buf, 20, &d), RAFT_EMALFORMED);
    memset(&buf[2], 0, 8); /* id 0 */
    buf[11 + 7] = 5;
    assert_int_equal(raft_conf_decode(buf, 20, &d), RAFT_EMALFORMED);
    buf[1] = RAFT_MAX_MEMBERS + 1;
    assert_int_equal(raft_conf_decode(buf, 2 + (RAFT_MAX_MEMBERS + 1) * 9, &d),
                     RAFT_EMALFORMED);
}

static void test_membership_one_change_at_a_time(void **state)
{
    struct solo s;
    raft_index idx = 0;

    (void)state;
    solo_start(&s, 1, 3, NULL);
    solo_make_leader(&s);
    /* No entry of this term committed yet (the no-op): refuse. */
    assert_int_equal(raft_add_learner(s.r, 4, NULL), RAFT_EBUSY);
    solo_ack(&s, 2, 1);
    assert_int_equal(raft_add_learner(s.r, 4, &idx), 0);
    assert_int_equal(idx, 2);
    /* Thesis 4.1: in effect on append, before commit. */
    assert_non_null(raft_conf_find(raft_conf_current(s.r), 4));
    assert_false(raft_conf_find(raft_conf_current(s.r), 4)->voter);
    assert_int_equal(raft_conf_index(s.r), 2);
    assert_int_equal(raft_add_learner(s.r, 5, NULL), RAFT_EBUSY);
    solo_ack(&s, 2, 2);
    assert_int_equal(raft_add_learner(s.r, 5, NULL), 0);
    solo_ack(&s, 3, 3);
    assert_int_equal(raft_add_learner(s.r, 4, NULL), RAFT_EINVAL);
    assert_int_equal(raft_add_learner(s.r, 0, NULL), RAFT_EINVAL);
    assert_int_equal(raft_promote(s.r, 9, NULL), RAFT_ENOTFOUND);
    assert_int_equal(raft_promote(s.r, 2, NULL), RAFT_EINVAL);
    assert_int_equal(raft_remove(s.r, 9, NULL), RAFT_ENOTFOUND);
    /* 4 has not acknowledged anything. */
    assert_int_equal(raft_promote(s.r, 4, NULL), RAFT_ECATCHUP);
    solo_stop(&s);
}

static void test_membership_learner_catches_up_then_promoted(void **state)
{
    struct cl *c = cl_new(4, 3);
    raft_id l;
    raft_index idx;

    (void)state;
    l = cl_start_leader(c);
    for (uint64_t v = 1; v <= 20; v++) {
        assert_int_equal(cl_propose(c, l, v, NULL), 0);
    }
    cl_run(c, 50);
    cl_isolate(c, 4, true);
    assert_int_equal(raft_add_learner(c->nodes[l].r, 4, &idx), 0);
    cl_flush(c, l);
    cl_run(c, 50);
    /* A learner does not count: the change commits without it. */
    assert_true(raft_commit_index(c->nodes[l].r) >= idx);
    assert_int_equal(raft_promote(c->nodes[l].r, 4, NULL), RAFT_ECATCHUP);
    cl_isolate(c, 4, false);
    cl_run(c, 200);
    assert_int_equal(c->nodes[4].st.n_sm, 20);
    assert_false(raft_conf_find(raft_conf_current(c->nodes[4].r), 4)->voter);
    assert_int_equal(raft_promote(c->nodes[l].r, 4, &idx), 0);
    cl_flush(c, l);
    cl_run(c, 100);
    for (raft_id id = 1; id <= 4; id++) {
        const struct raft_member *m =
            raft_conf_find(raft_conf_current(c->nodes[id].r), 4);

        assert_non_null(m);
        assert_true(m->voter);
        assert_true(raft_commit_index(c->nodes[id].r) >= idx);
    }
    /* Four voters: two nodes down stop commitment (quorum is 3). */
    {
        raft_id a = l == 1 ? 2 : 1;
        raft_id b = l == 3 ? 2 : 3;
        raft_index before;

        if (a == b) {
            b = 4;
        }
        cl_isolate(c, a, true);
        cl_isolate(c, b, true);
        before = raft_commit_index(c->nodes[l].r);
        (void)cl_propose(c, l, 99, NULL);
        cl_run(c, 50);
        assert_int_equal(raft_commit_index(c->nodes[l].r), before);
    }
    cl_free(c);
}

static void test_membership_removed_leader_steps_down(void **state)
{
    struct cl *c = *state;
    raft_id l;
    raft_id l2;

    l = cl_start_leader(c);
    cl_run(c, 30);
    assert_int_equal(raft_remove(c->nodes[l].r, l, NULL), 0);
    cl_flush(c, l);
    cl_run(c, 30);
    assert_int_not_equal(raft_role(c->nodes[l].r), RAFT_LEADER);
    assert_int_equal(cl_trace_count(c, RAFT_TRACE_STEP_DOWN_REMOVED, l), 1);
    c->n_traces = 0;
    l2 = cl_run_until_leader(c, 1000);
    assert_int_not_equal(l2, 0);
    assert_int_not_equal(l2, l);
    assert_int_equal(raft_conf_current(c->nodes[l2].r)->n_members, 2);
    assert_int_equal(cl_propose(c, l2, 5, NULL), 0);
    cl_run(c, 500);
    /* The removed server never campaigns again. */
    assert_int_equal(cl_trace_count(c, RAFT_TRACE_BECOME_PRE_CANDIDATE, l), 0);
    for (raft_id id = 1; id <= 3; id++) {
        if (id != l) {
            assert_int_equal(c->nodes[id].st.n_sm, 1);
        }
    }
}

static void test_membership_uncommitted_self_removal_still_campaigns(void **st)
{
    struct cl *c = cl_new(2, 2);
    raft_id l;
    raft_id other;
    raft_id l2;

    (void)st;
    l = cl_start_leader(c);
    other = l == 1 ? 2 : 1;
    cl_run(c, 20);
    /* The leader appends its own removal but nobody receives it. */
    cl_isolate(c, l, true);
    assert_int_equal(raft_remove(c->nodes[l].r, l, NULL), 0);
    cl_flush(c, l);
    cl_run(c, 300); /* CheckQuorum deposes it */
    assert_int_not_equal(raft_role(c->nodes[l].r), RAFT_LEADER);
    assert_null(raft_conf_find(raft_conf_current(c->nodes[l].r), l));
    cl_isolate(c, l, false);
    /* Thesis 4.2.2: it must still run (its longer log blocks the other),
     * win with the other's vote alone, commit the removal, step down. */
    l2 = 0;
    for (int i = 0; i < 3000 && l2 != other; i++) {
        cl_run(c, 1);
        l2 = cl_leader(c);
    }
    assert_int_equal(l2, other);
    assert_int_equal(raft_conf_current(c->nodes[other].r)->n_members, 1);
    assert_int_equal(cl_propose(c, other, 9, NULL), 0);
    cl_run(c, 50);
    assert_int_equal(c->nodes[other].st.sm[c->nodes[other].st.n_sm - 1], 9);
    cl_free(c);
}

static void test_membership_truncated_conf_entry_reverts(void **state)
{
    struct solo s;
    struct raft_conf c;
    uint8_t buf[64];
    struct raft_entry e1 = {1, 1, RAFT_ENTRY_NOOP, {NULL, 0}};
    struct raft_entry e2 = {1, 2, RAFT_ENTRY_CONF, {buf, 0}};
    struct raft_entry e3 = {2, 2, RAFT_ENTRY_NOOP, {NULL, 0}};
    struct raft_msg m;

    (void)state;
    solo_start(&s, 2, 3, NULL);
    c = *raft_conf_current(s.r);
    c.members[c.n_members++] = (struct raft_member){4, false};
    raft_conf_encode(&c, buf);
    e2.data.len = raft_conf_encoded_len(&c);
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_APPEND;
    m.from = 1;
    m.to = 2;
    m.term = 1;
    m.u.append.n_entries = 1;
    m.u.append.entries = &e1;
    solo_step(&s, &m);
    m.u.append.prev_index = 1;
    m.u.append.prev_term = 1;
    m.u.append.entries = &e2;
    solo_step(&s, &m);
    assert_int_equal(raft_conf_current(s.r)->n_members, 4);
    assert_int_equal(raft_conf_index(s.r), 2);
    m.from = 3;
    m.term = 2;
    m.u.append.entries = &e3;
    solo_step(&s, &m);
    assert_int_equal(raft_conf_current(s.r)->n_members, 3);
    assert_int_equal(raft_conf_index(s.r), 0);
    solo_stop(&s);
}

static void test_membership_cannot_remove_last_voter(void **state)
{
    struct solo s;

    (void)state;
    solo_start(&s, 1, 1, NULL);
    solo_tick_to(&s, 250);
    assert_int_equal(raft_role(s.r), RAFT_LEADER);
    assert_int_equal(raft_remove(s.r, 1, NULL), RAFT_EINVAL);
    assert_int_equal(raft_add_learner(s.r, 2, NULL), 0);
    solo_stop(&s);
}

static void test_membership_follower_refuses_changes(void **state)
{
    struct solo s;

    (void)state;
    solo_start(&s, 1, 3, NULL);
    assert_int_equal(raft_add_learner(s.r, 4, NULL), RAFT_ENOTLEADER);
    assert_int_equal(raft_promote(s.r, 4, NULL), RAFT_ENOTLEADER);
    assert_int_equal(raft_remove(s.r, 2, NULL), RAFT_ENOTLEADER);
    solo_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_membership_conf_round_trips),
        cmocka_unit_test(test_membership_conf_decode_rejects_garbage),
        cmocka_unit_test(test_membership_one_change_at_a_time),
        cmocka_unit_test(test_membership_learner_catches_up_then_promoted),
        cmocka_unit_test_setup_teardown(
            test_membership_removed_leader_steps_down, cl_fixture3,
            cl_fixture_free),
        cmocka_unit_test(
            test_membership_uncommitted_self_removal_still_campaigns),
        cmocka_unit_test(test_membership_truncated_conf_entry_reverts),
        cmocka_unit_test(test_membership_cannot_remove_last_voter),
        cmocka_unit_test(test_membership_follower_refuses_changes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
