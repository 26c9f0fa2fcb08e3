/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/raft/test_replication.c - raft/replication.c: AppendEntries,
 * pipelining and flow control, fast backtracking, commit rules,
 * heartbeats and CheckQuorum (paper 5.3, 5.4.2; thesis 6.2, 10.2.1).
 */
#include "unit/raft/cluster.h"

/* An APPEND from leader 1 to follower 2 in term `term` whose entries
 * follow (prev_index, prev_term); entries and commit are the caller's. */
static struct raft_msg append_to_2(raft_term term, raft_index prev_index,
                                   raft_term prev_term)
{
    struct raft_msg m;

    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_APPEND;
    m.from = 1;
    m.to = 2;
    m.term = term;
    m.u.append.prev_index = prev_index;
    m.u.append.prev_term = prev_term;
    return m;
}

static struct raft_msg append_resp(raft_id from, raft_term term,
                                   raft_index index)
{
    struct raft_msg m;

    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_APPEND_RESP;
    m.from = from;
    m.to = 1;
    m.term = term;
    m.u.append_resp.index = index;
    return m;
}

static uint64_t val(const struct cl *c, raft_id id, size_t i)
{
    return c->nodes[id].st.sm[i];
}

static void test_replication_commits_and_applies_in_order(void **state)
{
    struct cl *c = *state;
    raft_id l;

    l = cl_start_leader(c);
    for (uint64_t v = 1; v <= 50; v++) {
        raft_index idx;

        assert_int_equal(cl_propose(c, l, v, &idx), 0);
        if (v % 7 == 0) {
            cl_run(c, 3);
        }
    }
    cl_run(c, 100);
    for (raft_id id = 1; id <= 3; id++) {
        assert_int_equal(c->nodes[id].st.n_sm, 50);
        for (size_t i = 0; i < 50; i++) {
            assert_int_equal(val(c, id, i), i + 1);
        }
    }
}

static void test_replication_follower_propose_is_refused_with_hint(void **state)
{
    struct cl *c = *state;
    raft_id l;
    raft_id f;

    l = cl_start_leader(c);
    cl_run(c, 20);
    f = l == 1 ? 2 : 1;
    assert_int_equal(cl_propose(c, f, 1, NULL), RAFT_ENOTLEADER);
    assert_int_equal(raft_leader(c->nodes[f].r), l);
}

static void test_replication_leader_counts_itself_only_when_persisted(void **s_)
{
    struct solo s;
    struct raft_buf b = {"12345678", 8};
    raft_index idx;
    struct raft_msg m;
    struct raft_ready rd;

    (void)s_;
    solo_start(&s, 1, 3, NULL);
    solo_make_leader(&s);
    m = append_resp(2, raft_current_term(s.r), 1);
    solo_step(&s, &m); /* noop acknowledged by 2: committed */
    assert_int_equal(raft_commit_index(s.r), 1);

    assert_int_equal(raft_propose(s.r, &b, &idx), 0);
    assert_int_equal(idx, 2);
    /* The append may leave before the leader's own write (10.2.1). */
    assert_int_equal(raft_ready(s.r, &rd), 0);
    assert_int_equal(rd.n_entries, 1);
    /* 2 replicates (3 still has its probe outstanding). */
    assert_int_equal(rd.n_msgs_now, 1);
    assert_int_equal(rd.msgs_now[0].type, RAFT_MSG_APPEND);
    assert_int_equal(rd.msgs_now[0].to, 2);
    assert_int_equal(rd.msgs_now[0].u.append.n_entries, 1);
    assert_memory_equal(rd.msgs_now[0].u.append.entries[0].data.base,
                        "12345678", 8);
    /* Pretend the host's write is slow: we cannot step until advance, so
     * check the rule with a fresh batch below. */
    raft_advance(s.r, &rd);
    solo_stop(&s);

    /* Now: follower acknowledges before the leader persisted. */
    solo_start(&s, 1, 3, NULL);
    solo_make_leader(&s);
    m = append_resp(2, raft_current_term(s.r), 1);
    solo_step(&s, &m);
    assert_int_equal(raft_propose(s.r, &b, &idx), 0);
    m = append_resp(2, raft_current_term(s.r), 2);
    assert_int_equal(raft_step(s.r, s.now, &m), 0);
    /* 2 of 3 hold entry 2, but one of them is the leader's memory only. */
    assert_int_equal(raft_commit_index(s.r), 1);
    solo_flush(&s); /* the host persists; the leader counts itself */
    assert_int_equal(raft_commit_index(s.r), 2);
    solo_stop(&s);
}

static void test_replication_follower_ack_waits_for_persist(void **state)
{
    struct solo s;
    struct raft_msg m;
    struct raft_entry e = {1, 1, RAFT_ENTRY_NORMAL, {"abcdefgh", 8}};
    struct raft_ready rd;

    (void)state;
    solo_start(&s, 2, 3, NULL);
    m = append_to_2(1, 0, 0);
    m.u.append.n_entries = 1;
    m.u.append.entries = &e;
    assert_int_equal(raft_step(s.r, 0, &m), 0);
    assert_int_equal(raft_ready(s.r, &rd), 0);
    assert_int_equal(rd.n_entries, 1);
    assert_memory_equal(rd.entries[0].data.base, "abcdefgh", 8);
    assert_int_equal(rd.n_msgs_now, 0);
    assert_int_equal(rd.n_msgs_after_persist, 1);
    assert_int_equal(rd.msgs_after_persist[0].type, RAFT_MSG_APPEND_RESP);
    assert_false(rd.msgs_after_persist[0].u.append_resp.reject);
    assert_int_equal(rd.msgs_after_persist[0].u.append_resp.index, 1);
    raft_advance(s.r, &rd);
    solo_stop(&s);
}

static void test_replication_conflicting_suffix_is_truncated(void **state)
{
    struct solo s;
    struct raft_entry log[4] = {
        {1, 1, RAFT_ENTRY_NOOP, {NULL, 0}},
        {1, 2, RAFT_ENTRY_NORMAL, {"a", 1}},
        {2, 3, RAFT_ENTRY_NORMAL, {"b", 1}},
        {2, 4, RAFT_ENTRY_NORMAL, {"c", 1}},
    };
    struct raft_entry e = {3, 3, RAFT_ENTRY_NORMAL, {"x", 1}};
    struct raft_restore rs;
    struct raft_msg m;
    struct raft_ready rd;

    (void)state;
    rs = cl_restore(log, 4, 2, 2, 2);
    solo_start(&s, 2, 3, &rs);
    m = append_to_2(3, 2, 1);
    m.u.append.n_entries = 1;
    m.u.append.entries = &e;
    m.u.append.commit = 3;
    assert_int_equal(raft_step(s.r, 0, &m), 0);
    assert_int_equal(raft_last_index(s.r), 3);
    assert_int_equal(raft_term_at(s.r, 3), 3);
    assert_int_equal(raft_ready(s.r, &rd), 0);
    assert_int_equal(rd.truncate_from, 3);
    assert_int_equal(rd.n_entries, 1);
    assert_int_equal(rd.entries[0].index, 3);
    assert_int_equal(rd.n_committed, 1);
    assert_memory_equal(rd.committed[0].data.base, "x", 1);
    raft_advance(s.r, &rd);

    /* An append that contradicts a committed entry is malformed. */
    e.term = 2;
    m.u.append.prev_index = 1;
    m.u.append.prev_term = 1;
    e.index = 2;
    assert_int_equal(raft_step(s.r, 0, &m), 0); /* prev < commit: ack */
    solo_stop(&s);
}

static void test_replication_reject_hint_skips_a_whole_term(void **state)
{
    struct solo s;
    struct raft_entry log[7];
    struct raft_restore rs;
    struct raft_msg m;
    const struct raft_msg *resp;

    (void)state;
    for (size_t i = 0; i < 7; i++) {
        log[i] = (struct raft_entry){
            i < 3 ? 1 : 2, i + 1, RAFT_ENTRY_NOOP, {NULL, 0}};
    }
    rs = cl_restore(log, 7, 2, 0, 0);
    solo_start(&s, 2, 3, &rs);
    m = append_to_2(4, 10, 3);
    solo_step(&s, &m);
    resp = solo_find(&s, RAFT_MSG_APPEND_RESP, 1);
    assert_true(resp->u.append_resp.reject);
    assert_int_equal(resp->u.append_resp.index, 10);
    assert_int_equal(resp->u.append_resp.hint_index, 7);
    assert_int_equal(resp->u.append_resp.hint_term, 2);
    /* Leader's prev term 1 at index 6: skip all of term 2. */
    m.u.append.prev_index = 6;
    m.u.append.prev_term = 1;
    solo_step(&s, &m);
    resp = solo_find(&s, RAFT_MSG_APPEND_RESP, 1);
    assert_true(resp->u.append_resp.reject);
    assert_int_equal(resp->u.append_resp.hint_index, 3);
    assert_int_equal(resp->u.append_resp.hint_term, 1);
    solo_stop(&s);
}

/* Runs until a node other than `other` leads; returns it (0: none within
 * two seconds). */
static raft_id leader_other_than(struct cl *c, raft_id other)
{
    for (int i = 0; i < 2000; i++) {
        cl_run(c, 1);
        for (raft_id id = 1; id <= 3; id++) {
            if (id != other && c->nodes[id].up &&
                raft_role(c->nodes[id].r) == RAFT_LEADER) {
                return id;
            }
        }
    }
    return 0;
}

/* A deposed leader with 30 entries nobody else has rejoins a leader 40
 * entries on, which restarted meanwhile and so probes it from the end of
 * its log: backtracking goes by term (paper 5.3, end), a handful of
 * rejections rather than one per entry. */
static void repair_divergent_leader(struct cl *c)
{
    raft_id old;
    raft_id l;

    old = cl_start_leader(c);
    cl_run(c, 20);
    cl_isolate(c, old, true);
    /* The deposed leader takes 30 proposals nobody else sees. */
    for (uint64_t v = 0; v < 30; v++) {
        assert_int_equal(cl_propose(c, old, 1000 + v, NULL), 0);
    }
    l = leader_other_than(c, old);
    assert_int_not_equal(l, 0);
    for (uint64_t v = 0; v < 40; v++) {
        assert_int_equal(cl_propose(c, l, v, NULL), 0);
        cl_run(c, 1);
    }
    cl_crash(c, l);
    cl_restart(c, l);
    l = leader_other_than(c, old);
    assert_int_not_equal(l, 0);
    cl_run(c, 20);
    c->n_traces = 0;
    cl_isolate(c, old, false);
    cl_run(c, 300);
    assert_int_equal(raft_leader(c->nodes[old].r), l);
    assert_int_equal(raft_last_index(c->nodes[old].r),
                     raft_last_index(c->nodes[l].r));
    /* Backtracking by term: a handful of rejections, not one per entry. */
    assert_true(cl_trace_count(c, RAFT_TRACE_APPEND_REJECT, old) >= 1);
    assert_true(cl_trace_count(c, RAFT_TRACE_APPEND_REJECT, old) <= 3);
    assert_int_equal(cl_trace_count(c, RAFT_TRACE_TRUNCATE, old), 1);
    assert_int_equal(c->nodes[old].st.n_sm, 40);
    cl_assert_sm_consistent(c);
}

static void test_replication_divergent_leader_is_repaired_fast(void **state)
{
    repair_divergent_leader(*state);
}

/* The same when the point where the logs part has left the leader's
 * window: it looks the terms up in its host's log (a binary search over
 * fetches) instead of walking back one entry per round trip. */
static void
test_replication_divergent_leader_repaired_behind_window(void **state)
{
    struct cl *c = *state;

    for (raft_id id = 1; id <= 3; id++) {
        c->nodes[id].cfg.window_entries = 2;
    }
    repair_divergent_leader(c);
}

static void test_replication_commits_only_current_term_by_count(void **s_)
{
    struct solo s;
    struct raft_entry log[1] = {{1, 1, RAFT_ENTRY_NORMAL, {"o", 1}}};
    struct raft_restore rs;
    struct raft_msg m;

    (void)s_;
    rs = cl_restore(log, 1, 1, 0, 0);
    solo_start(&s, 1, 3, &rs);
    solo_make_leader(&s);
    assert_int_equal(raft_current_term(s.r), 2);
    assert_int_equal(raft_last_index(s.r), 2); /* the no-op */
    /* Paper 5.4.2 / figure 8: a majority holding the term-1 entry is not
     * enough to commit it. */
    m = append_resp(2, 2, 1);
    solo_step(&s, &m);
    assert_int_equal(raft_commit_index(s.r), 0);
    m = append_resp(2, 2, 2);
    solo_step(&s, &m);
    assert_int_equal(raft_commit_index(s.r), 2);
    assert_int_equal(s.n_committed, 2);
    solo_stop(&s);
}

static size_t inflight_bytes_to(const struct solo *s, raft_id to,
                                size_t *max_msg)
{
    size_t sum = 0;

    *max_msg = 0;
    for (size_t i = 0; i < s->n_out; i++) {
        const struct raft_msg *m = &s->out[i];

        if (m->type == RAFT_MSG_APPEND && m->to == to) {
            size_t b = m->u.append.n_entries * 8;

            sum += b;
            *max_msg = b > *max_msg ? b : *max_msg;
        }
    }
    return sum;
}

static void test_replication_flow_control_bounds_bytes(void **state)
{
    struct solo s;
    struct raft_msg m;
    size_t max_msg;
    size_t sum;

    (void)state;
    solo_start(&s, 1, 3, NULL);
    raft_free(s.r);
    s.cfg.max_msg_bytes = 24;
    s.cfg.max_inflight_bytes = 64;
    s.cfg.max_uncommitted_bytes = 1 << 20;
    assert_int_equal(raft_new(&s.cfg, NULL, 0, &s.r), 0);
    solo_make_leader(&s);
    m = append_resp(2, raft_current_term(s.r), 1);
    solo_step(&s, &m); /* 2 is now in REPLICATE */
    s.n_out = 0;
    for (uint64_t v = 0; v < 40; v++) {
        struct raft_buf b = {&v, 8};

        assert_int_equal(raft_propose(s.r, &b, NULL), 0);
        solo_flush(&s);
    }
    sum = inflight_bytes_to(&s, 2, &max_msg);
    assert_true(max_msg <= 24);
    assert_true(sum >= 64 && sum <= 64 + 8);
    /* An acknowledgment opens the window again. */
    m = append_resp(2, raft_current_term(s.r), 1 + sum / 8);
    s.n_out = 0;
    solo_step(&s, &m);
    sum = inflight_bytes_to(&s, 2, &max_msg);
    assert_true(sum >= 64 && sum <= 64 + 8);
    solo_stop(&s);
}

static void test_replication_uncommitted_bytes_limit_busy(void **state)
{
    struct solo s;
    struct raft_msg m;
    raft_index idx = 0;

    (void)state;
    solo_start(&s, 1, 3, NULL);
    raft_free(s.r);
    s.cfg.max_uncommitted_bytes = 32;
    assert_int_equal(raft_new(&s.cfg, NULL, 0, &s.r), 0);
    solo_make_leader(&s);
    for (uint64_t v = 0; v < 4; v++) {
        struct raft_buf b = {&v, 8};

        assert_int_equal(raft_propose(s.r, &b, &idx), 0);
        solo_flush(&s);
    }
    {
        uint64_t v = 9;
        struct raft_buf b = {&v, 8};

        assert_int_equal(raft_propose(s.r, &b, NULL), RAFT_EBUSY);
        m = append_resp(2, raft_current_term(s.r), idx);
        solo_step(&s, &m);
        assert_int_equal(raft_commit_index(s.r), idx);
        assert_int_equal(raft_propose(s.r, &b, NULL), 0);
    }
    solo_stop(&s);
}

/* The only voter waits on nobody: a host's batch of proposals over the
 * limit is taken whole (gearraftd's one-node server put a 64 MiB
 * WORK_COMPLETE and the worker's next GRAB in one batch, and the GRAB's
 * refusal failed both). */
static void test_replication_single_voter_not_limited(void **state)
{
    struct solo s;
    raft_index idx = 0;

    (void)state;
    solo_start(&s, 1, 1, NULL);
    raft_free(s.r);
    s.cfg.max_uncommitted_bytes = 32;
    assert_int_equal(raft_new(&s.cfg, NULL, 0, &s.r), 0);
    solo_tick_to(&s, 300);
    assert_int_equal(raft_role(s.r), RAFT_LEADER);
    for (uint64_t v = 0; v < 6; v++) {
        uint64_t w[2] = {v, v};
        struct raft_buf b = {w, sizeof(w)};

        assert_int_equal(raft_propose(s.r, &b, &idx), 0);
    }
    solo_flush(&s);
    assert_int_equal(raft_commit_index(s.r), idx);
    solo_stop(&s);
}

static size_t appends_to(const struct solo *s, raft_id to)
{
    size_t n = 0;

    for (size_t i = 0; i < s->n_out; i++) {
        n += s->out[i].type == RAFT_MSG_APPEND && s->out[i].to == to ? 1 : 0;
    }
    return n;
}

static void test_replication_probe_waits_for_an_answer(void **s_)
{
    struct solo s;
    struct raft_msg m;

    (void)s_;
    solo_start(&s, 1, 3, NULL);
    solo_make_leader(&s);
    assert_int_equal(appends_to(&s, 3), 1);
    s.n_out = 0;
    solo_tick_to(&s, s.now + 55); /* five heartbeats, no answers */
    /* A silent follower costs heartbeats only, not repeated appends. */
    assert_int_equal(appends_to(&s, 3), 0);
    assert_true(solo_count(&s, RAFT_MSG_HEARTBEAT) >= 10);
    /* Its heartbeat answer shows it is back: probe again, once. */
    m = solo_msg(&s, RAFT_MSG_HEARTBEAT_RESP, 3);
    solo_step(&s, &m);
    solo_step(&s, &m);
    assert_int_equal(appends_to(&s, 3), 1);
    solo_stop(&s);
}

/* What follower 2 answers to an APPEND (without entries: the solo core
 * keeps only headers) when its log ends at *flog with no stale entries:
 * appends that continue its log are taken, others rejected (paper 5.3,
 * figure 2 rule 2), so out of order deliveries are rejected. */
static struct raft_msg follower_answer(const struct raft_msg *a,
                                       raft_index *flog)
{
    raft_index prev = a->u.append.prev_index;
    raft_index last = prev + a->u.append.n_entries;
    struct raft_msg m = append_resp(2, a->term, last);

    if (prev > *flog) {
        m.u.append_resp.reject = true;
        m.u.append_resp.index = prev;
        m.u.append_resp.hint_index = *flog;
        m.u.append_resp.hint_term = a->term;
        return m;
    }
    if (last > *flog) {
        *flog = last;
    }
    return m;
}

/* The pattern of tests/sim seeds 5163247 and 5240183 (a follower catching
 * up over a slow network that reorders everything): each round the
 * follower gets the appends in flight in reverse order, so it takes at
 * most one and rejects the rest; the leader sees every answer twice, the
 * rejections first, and the previous round's answers again, late.  An
 * old leader flipped to PROBE on each rejection and back to a fresh
 * window on each acknowledgment, and the appends per round grew without
 * bound.  Now no round sends more than two windows (room freed by an
 * answer is used again in the same round), and the follower still gains
 * at least an entry a round. */
static void test_replication_reordered_answers_stay_within_window(void **st)
{
    enum { W = 8, N = 40, ROUNDS = 200 };
    struct solo s;
    struct raft_msg in_flight[256];
    struct raft_msg answers[512];
    struct raft_msg late[512];
    size_t n_late = 0;
    raft_index flog = 1;
    int round;

    (void)st;
    solo_start(&s, 1, 3, NULL);
    raft_free(s.r);
    s.cfg.max_msg_bytes = 8; /* one entry per append */
    s.cfg.max_inflight_msgs = W;
    s.cfg.max_uncommitted_bytes = 1 << 20;
    assert_int_equal(raft_new(&s.cfg, NULL, 0, &s.r), 0);
    solo_make_leader(&s);
    solo_ack(&s, 2, 1); /* 2 holds the no-op: REPLICATE */
    for (uint64_t v = 0; v < N; v++) {
        struct raft_buf b = {&v, 8};

        assert_int_equal(raft_propose(s.r, &b, NULL), 0);
    }
    s.n_out = 0;
    solo_flush(&s);
    for (round = 0; round < ROUNDS && flog < 1 + N; round++) {
        size_t n = 0;
        size_t n_ans = 0;

        for (size_t i = 0; i < s.n_out; i++) {
            if (s.out[i].type == RAFT_MSG_APPEND && s.out[i].to == 2) {
                in_flight[n++] = s.out[i];
            }
        }
        assert_true(s.n_out < 256);
        assert_true(n <= 2 * W);
        s.n_out = 0;
        for (size_t i = n; i > 0; i--) {
            answers[n_ans++] = follower_answer(&in_flight[i - 1], &flog);
        }
        for (size_t i = 0; i < n_ans; i++) { /* rejections first */
            if (answers[i].u.append_resp.reject) {
                solo_step(&s, &answers[i]);
                solo_step(&s, &answers[i]);
            }
        }
        for (size_t i = 0; i < n_ans; i++) {
            if (!answers[i].u.append_resp.reject) {
                solo_step(&s, &answers[i]);
                solo_step(&s, &answers[i]);
            }
        }
        for (size_t i = 0; i < n_late; i++) {
            solo_step(&s, &late[i]);
        }
        memcpy(late, answers, n_ans * sizeof(answers[0]));
        n_late = n_ans;
    }
    assert_int_equal(flog, 1 + N);
    assert_true(round <= N);
    solo_stop(&s);
}

static unsigned drop_counter;

static bool drop_some_appends(struct cl *c, const struct raft_msg *m)
{
    (void)c;
    if (m->type != RAFT_MSG_APPEND && m->type != RAFT_MSG_APPEND_RESP) {
        return true;
    }
    drop_counter++;
    return drop_counter % 3 != 0;
}

static void test_replication_recovers_from_lost_appends(void **state)
{
    struct cl *c = *state;
    raft_id l;

    for (raft_id id = 1; id <= 3; id++) {
        c->nodes[id].cfg.max_msg_bytes = 16;
    }
    l = cl_start_leader(c);
    cl_run(c, 20);
    c->filter = drop_some_appends;
    for (uint64_t v = 1; v <= 60; v++) {
        if (cl_leader(c) == l) {
            (void)cl_propose(c, l, v, NULL);
        }
        cl_run(c, 1);
    }
    c->filter = NULL;
    cl_run(c, 500);
    l = cl_leader(c);
    assert_int_not_equal(l, 0);
    for (raft_id id = 1; id <= 3; id++) {
        assert_int_equal(raft_last_index(c->nodes[id].r),
                         raft_last_index(c->nodes[l].r));
        assert_int_equal(raft_commit_index(c->nodes[id].r),
                         raft_commit_index(c->nodes[l].r));
    }
    cl_assert_sm_consistent(c);
}

static void test_replication_check_quorum_deposes_isolated_leader(void **s_)
{
    struct cl *c = *s_;
    raft_id l;

    l = cl_start_leader(c);
    cl_isolate(c, l, true);
    cl_run(c, 250); /* two CheckQuorum rounds at most */
    assert_int_not_equal(raft_role(c->nodes[l].r), RAFT_LEADER);
    assert_int_equal(cl_trace_count(c, RAFT_TRACE_CHECK_QUORUM_LOST, l), 1);
}

static void test_replication_without_check_quorum_leader_stays(void **s_)
{
    struct cl *c = *s_;
    raft_id l;

    for (raft_id id = 1; id <= 3; id++) {
        c->nodes[id].cfg.check_quorum = false;
    }
    l = cl_start_leader(c);
    cl_isolate(c, l, true);
    cl_run(c, 500);
    assert_int_equal(raft_role(c->nodes[l].r), RAFT_LEADER);
    /* It learns the new term when the partition heals. */
    cl_isolate(c, l, false);
    cl_run(c, 100);
    assert_int_not_equal(raft_role(c->nodes[l].r), RAFT_LEADER);
}

static void test_replication_full_restart_keeps_committed(void **state)
{
    struct cl *c = *state;
    raft_id l;

    l = cl_start_leader(c);
    for (uint64_t v = 1; v <= 10; v++) {
        assert_int_equal(cl_propose(c, l, v, NULL), 0);
    }
    cl_run(c, 50);
    for (raft_id id = 1; id <= 3; id++) {
        assert_int_equal(c->nodes[id].st.n_sm, 10);
        cl_crash(c, id);
    }
    for (raft_id id = 1; id <= 3; id++) {
        cl_restart(c, id);
    }
    l = cl_run_until_leader(c, 2000);
    assert_int_not_equal(l, 0);
    assert_int_equal(cl_propose(c, l, 11, NULL), 0);
    cl_run(c, 50);
    for (raft_id id = 1; id <= 3; id++) {
        assert_int_equal(c->nodes[id].st.n_sm, 11);
        assert_int_equal(val(c, id, 10), 11);
    }
    cl_assert_sm_consistent(c);
}

static void test_replication_heartbeat_commit_capped_by_match(void **s_)
{
    struct solo s;
    const struct raft_msg *hb;
    struct raft_msg m;

    (void)s_;
    solo_start(&s, 1, 3, NULL);
    solo_make_leader(&s);
    m = append_resp(2, raft_current_term(s.r), 1);
    solo_step(&s, &m);
    assert_int_equal(raft_commit_index(s.r), 1);
    s.n_out = 0;
    solo_tick_to(&s, s.now + 11);
    hb = solo_find(&s, RAFT_MSG_HEARTBEAT, 2);
    assert_int_equal(hb->u.heartbeat.commit, 1);
    hb = solo_find(&s, RAFT_MSG_HEARTBEAT, 3);
    assert_int_equal(hb->u.heartbeat.commit, 0);
    solo_stop(&s);
}

static void test_replication_proposals_of_a_turn_share_appends(void **st)
{
    struct solo s;
    struct raft_msg m;
    struct raft_ready rd;
    size_t n_app = 0;

    (void)st;
    solo_start(&s, 1, 3, NULL);
    solo_make_leader(&s);
    m = append_resp(2, raft_current_term(s.r), 1);
    solo_step(&s, &m); /* 2 replicates, 3 is still probing */
    for (uint64_t v = 0; v < 10; v++) {
        struct raft_buf b = {&v, 8};

        assert_int_equal(raft_propose(s.r, &b, NULL), 0);
    }
    assert_true(raft_has_ready(s.r));
    assert_int_equal(raft_ready(s.r, &rd), 0);
    assert_int_equal(rd.n_entries, 10);
    for (size_t i = 0; i < rd.n_msgs_now; i++) {
        if (rd.msgs_now[i].type == RAFT_MSG_APPEND && rd.msgs_now[i].to == 2) {
            n_app++;
            assert_int_equal(rd.msgs_now[i].u.append.n_entries, 10);
            assert_int_equal(rd.msgs_now[i].u.append.prev_index, 1);
        }
    }
    assert_int_equal(n_app, 1);
    raft_advance(s.r, &rd);
    solo_stop(&s);
}

/* Cuts a follower off (lag) after the first entries, then commits
 * values 1..n at the leader with a window of 2 entries: the follower falls
 * behind the leader's memory but not its host's log.  Returns lag. */
static raft_id lag_behind_window(struct cl *c, uint64_t n, raft_id *l)
{
    raft_id lag;

    for (raft_id id = 1; id <= 3; id++) {
        c->nodes[id].cfg.window_entries = 2;
        c->nodes[id].cfg.window_bytes = 64;
        c->nodes[id].cfg.max_msg_bytes = 32; /* a few entries a message */
        c->nodes[id].cfg.snapshot_trailing = 1000;
    }
    *l = cl_start_leader(c);
    lag = *l == 3 ? 2 : 3;
    cl_isolate(c, lag, true);
    for (uint64_t v = 1; v <= n; v++) {
        assert_int_equal(cl_propose(c, *l, v, NULL), 0);
        cl_run(c, 2);
    }
    assert_int_equal(c->nodes[*l].st.n_sm, n);
    return lag;
}

/* raft.h, "Memory": the leader keeps only its window; a follower behind
 * it is served by entries read back from the host, not by a snapshot,
 * and the copies are gone once their batch is acknowledged. */
static void
test_replication_lagging_follower_served_by_fetched_entries(void **state)
{
    struct cl *c = *state;
    struct raft_memory mem;
    raft_id l;
    raft_id lag = lag_behind_window(c, 30, &l);

    raft_memory(c->nodes[l].r, &mem);
    assert_true(mem.n_entries <= 2);
    assert_true(mem.entry_bytes <= 64);
    assert_true(raft_last_index(c->nodes[l].r) > 30);
    c->n_traces = 0;
    cl_isolate(c, lag, false);
    cl_run(c, 300);
    assert_int_equal(c->nodes[lag].st.n_sm, 30);
    cl_assert_sm_consistent(c);
    assert_true(c->nodes[l].st.n_fetch >= 10); /* 30 entries, 4 a message */
    assert_int_equal(c->nodes[l].st.n_fetch_fail, 0);
    assert_int_equal(cl_trace_count(c, RAFT_TRACE_SNAPSHOT_SEND, 0), 0);
    /* Every core stayed within its window plus what it had not handed
     * out yet (a batch of a few entries here). */
    assert_true(c->max_core_entries <= 2 + 8);
    for (raft_id id = 1; id <= 3; id++) {
        raft_memory(c->nodes[id].r, &mem);
        assert_int_equal(mem.fetched_bytes, 0);
        assert_true(mem.n_entries <= 2);
    }
}

/* The host's log is the authority: entries it deleted (beyond what
 * raft_first_index allowed) cannot be fetched, and the leader falls back
 * to its snapshot. */
static void test_replication_fetch_failure_falls_back_to_snapshot(void **state)
{
    struct cl *c = *state;
    struct cl_store *st;
    raft_id l;
    raft_id lag = lag_behind_window(c, 30, &l);

    assert_int_equal(cl_snapshot(c, l), 0);
    assert_int_equal(raft_first_index(c->nodes[l].r), 1); /* trailing */
    st = &c->nodes[l].st;
    while (st->n > 0 && st->entries[0].index <= 20) { /* compacted anyway */
        free(st->entries[0].data.base);
        memmove(st->entries, st->entries + 1,
                (st->n - 1) * sizeof(*st->entries));
        st->n--;
    }
    c->n_traces = 0;
    cl_isolate(c, lag, false);
    cl_run(c, 500);
    assert_true(st->n_fetch_fail >= 1);
    assert_true(raft_first_index(c->nodes[l].r) > 1); /* it learned */
    assert_int_equal(cl_trace_count(c, RAFT_TRACE_SNAPSHOT_INSTALL, lag), 1);
    assert_int_equal(c->nodes[lag].st.n_sm, 30);
    assert_int_equal(c->nodes[l].n_want_snapshot, 0); /* it bridged */
    cl_assert_sm_consistent(c);
}

/* A snapshot older than the entries the host lost does not bridge the
 * gap: the leader asks its host for a newer one (ready.want_snapshot). */
static void
test_replication_fetch_failure_asks_for_a_newer_snapshot(void **state)
{
    struct cl *c = *state;
    struct cl_store *st;
    raft_id l;
    raft_id lag;

    for (raft_id id = 1; id <= 3; id++) {
        c->nodes[id].cfg.window_entries = 2;
        c->nodes[id].cfg.snapshot_trailing = 1000;
    }
    l = cl_start_leader(c);
    lag = l == 3 ? 2 : 3;
    for (uint64_t v = 1; v <= 5; v++) {
        assert_int_equal(cl_propose(c, l, v, NULL), 0);
        cl_run(c, 2);
    }
    assert_int_equal(cl_snapshot(c, l), 0); /* at 6 */
    cl_run(c, 20);
    cl_isolate(c, lag, true);
    for (uint64_t v = 6; v <= 30; v++) {
        assert_int_equal(cl_propose(c, l, v, NULL), 0);
        cl_run(c, 2);
    }
    st = &c->nodes[l].st;
    while (st->n > 0 && st->entries[0].index <= 20) {
        free(st->entries[0].data.base);
        memmove(st->entries, st->entries + 1,
                (st->n - 1) * sizeof(*st->entries));
        st->n--;
    }
    c->snapshot_on_want = true;
    cl_isolate(c, lag, false);
    cl_run(c, 800);
    assert_true(st->n_fetch_fail >= 1);
    assert_true(c->nodes[l].n_want_snapshot >= 1);
    assert_true(raft_snapshot_index(c->nodes[l].r) > 20);
    assert_int_equal(c->nodes[lag].st.n_sm, 30);
    cl_assert_sm_consistent(c);
}

/* Every peer tells every other it is alive in its term, as the hosts'
 * keep-alives do while long writes hold up their turns. */
static void all_alive(struct cl *c, raft_term term)
{
    for (raft_id a = 1; a <= c->n; a++) {
        for (raft_id b = 1; b <= c->n; b++) {
            if (a != b && c->nodes[a].up) {
                assert_int_equal(raft_peer_alive(c->nodes[a].r, c->now, b,
                                                 term),
                                 0);
            }
        }
    }
}

/* Nothing gets through for a second (every node stuck in a long write,
 * as far as raft/ can tell), but the hosts' keep-alives of the leader's
 * term do: nobody campaigns and the leader keeps its quorum. Once they
 * stop, CheckQuorum deposes it; keep-alives of another term never
 * counted. */
static void test_replication_peer_alive_keeps_a_silent_leader(void **s_)
{
    struct cl *c = *s_;
    raft_id l = cl_start_leader(c);
    raft_term term = raft_current_term(c->nodes[l].r);

    c->drop_all = true;
    for (int i = 0; i < 100; i++) {
        cl_run(c, 10);
        all_alive(c, term);
    }
    assert_int_equal(cl_leader(c), l);
    for (raft_id id = 1; id <= 3; id++) {
        assert_int_equal(raft_current_term(c->nodes[id].r), term);
        assert_int_equal(raft_leader(c->nodes[id].r), l);
    }
    assert_int_equal(cl_trace_count(c, RAFT_TRACE_CHECK_QUORUM_LOST, l), 0);
    for (int i = 0; i < 30; i++) {
        cl_run(c, 10);
        all_alive(c, term + 1);
    }
    assert_int_not_equal(raft_role(c->nodes[l].r), RAFT_LEADER);
    assert_int_equal(cl_trace_count(c, RAFT_TRACE_CHECK_QUORUM_LOST, l), 1);
}

/* A leader's entry to follower 3, which answers nothing for 200 ms (it
 * is writing) and then answers its heartbeats and acknowledges the
 * entry; with alive, its host's keep-alives reach the leader meanwhile.
 * Returns the appends the leader sent to 3. */
static size_t appends_for_a_slow_write(bool alive)
{
    struct solo s;
    struct raft_msg m;
    raft_index idx;
    uint64_t v = 7;
    struct raft_buf b = {&v, 8};
    size_t n;

    solo_start(&s, 1, 3, NULL);
    solo_make_leader(&s);
    solo_ack(&s, 2, raft_last_index(s.r));
    solo_ack(&s, 3, raft_last_index(s.r));
    s.n_out = 0;
    assert_int_equal(raft_propose(s.r, &b, &idx), 0);
    solo_flush(&s);
    solo_ack(&s, 2, idx);
    assert_int_equal(raft_commit_index(s.r), idx);
    for (int i = 0; i < 20; i++) {
        solo_tick_to(&s, s.now + 10);
        m = solo_msg(&s, RAFT_MSG_HEARTBEAT_RESP, 2);
        solo_step(&s, &m);
        if (alive) {
            assert_int_equal(raft_peer_alive(s.r, s.now, 3,
                                             raft_current_term(s.r)),
                             0);
        }
    }
    m = solo_msg(&s, RAFT_MSG_HEARTBEAT_RESP, 3);
    solo_step(&s, &m);
    solo_ack(&s, 3, idx);
    assert_int_equal(raft_match_index(s.r, 3), idx);
    assert_int_equal(raft_role(s.r), RAFT_LEADER);
    n = appends_to(&s, 3);
    solo_stop(&s);
    return n;
}

/* A follower that says it is alive but has not answered yet (it is
 * still writing) is not taken for stalled: when it answers, the leader
 * has not gone back to probing it and does not send it the same entries
 * again - with entries of tens of MiB that would bury it. Without the
 * keep-alives it does. */
static void test_replication_peer_alive_is_not_stalled(void **s_)
{
    (void)s_;
    assert_int_equal(appends_for_a_slow_write(true), 1);
    assert_int_equal(appends_for_a_slow_write(false), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_replication_commits_and_applies_in_order, cl_fixture3,
            cl_fixture_free),
        cmocka_unit_test_setup_teardown(
            test_replication_follower_propose_is_refused_with_hint, cl_fixture3,
            cl_fixture_free),
        cmocka_unit_test(
            test_replication_leader_counts_itself_only_when_persisted),
        cmocka_unit_test(test_replication_follower_ack_waits_for_persist),
        cmocka_unit_test(test_replication_conflicting_suffix_is_truncated),
        cmocka_unit_test(test_replication_reject_hint_skips_a_whole_term),
        cmocka_unit_test_setup_teardown(
            test_replication_divergent_leader_is_repaired_fast, cl_fixture3,
            cl_fixture_free),
        cmocka_unit_test(test_replication_commits_only_current_term_by_count),
        cmocka_unit_test(test_replication_flow_control_bounds_bytes),
        cmocka_unit_test(test_replication_uncommitted_bytes_limit_busy),
        cmocka_unit_test(test_replication_single_voter_not_limited),
        cmocka_unit_test(test_replication_probe_waits_for_an_answer),
        cmocka_unit_test(test_replication_reordered_answers_stay_within_window),
        cmocka_unit_test_setup_teardown(
            test_replication_recovers_from_lost_appends, cl_fixture3,
            cl_fixture_free),
        cmocka_unit_test_setup_teardown(
            test_replication_check_quorum_deposes_isolated_leader, cl_fixture3,
            cl_fixture_free),
        cmocka_unit_test_setup_teardown(
            test_replication_without_check_quorum_leader_stays, cl_fixture3,
            cl_fixture_free),
        cmocka_unit_test_setup_teardown(
            test_replication_peer_alive_keeps_a_silent_leader, cl_fixture3,
            cl_fixture_free),
        cmocka_unit_test(test_replication_peer_alive_is_not_stalled),
        cmocka_unit_test_setup_teardown(
            test_replication_full_restart_keeps_committed, cl_fixture3,
            cl_fixture_free),
        cmocka_unit_test(test_replication_heartbeat_commit_capped_by_match),
        cmocka_unit_test(test_replication_proposals_of_a_turn_share_appends),
        cmocka_unit_test_setup_teardown(
            test_replication_divergent_leader_repaired_behind_window,
            cl_fixture3, cl_fixture_free),
        cmocka_unit_test_setup_teardown(
            test_replication_lagging_follower_served_by_fetched_entries,
            cl_fixture3, cl_fixture_free),
        cmocka_unit_test_setup_teardown(
            test_replication_fetch_failure_falls_back_to_snapshot, cl_fixture3,
            cl_fixture_free),
        cmocka_unit_test_setup_teardown(
            test_replication_fetch_failure_asks_for_a_newer_snapshot,
            cl_fixture3, cl_fixture_free),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
