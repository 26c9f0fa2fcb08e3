/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/raft/test_raft.c - raft/raft.c: the error table, config and
 * restore validation, message validation, the ready/advance contract.
 */
#include "unit/raft/cluster.h"

static void test_raft_errors_have_distinct_nonempty_messages(void **state)
{
    static const int codes[] = {
#define CODE(name, value, msg) name,
        RAFT_ERRORS(CODE)
#undef CODE
    };
    size_t n = sizeof(codes) / sizeof(codes[0]);

    (void)state;
    assert_true(n >= 5);
    for (size_t i = 0; i < n; i++) {
        const char *m = raft_strerror(codes[i]);

        assert_true(codes[i] < 0);
        assert_non_null(m);
        assert_true(strlen(m) > 0);
        assert_string_not_equal(m, raft_strerror(12345));
        for (size_t j = 0; j < i; j++) {
            assert_int_not_equal(codes[i], codes[j]);
            assert_string_not_equal(m, raft_strerror(codes[j]));
        }
    }
    assert_string_equal(raft_strerror(0), "success");
}

static void test_raft_names_cover_every_type(void **state)
{
    (void)state;
    for (int t = 1; t < RAFT_MSG_TYPE_COUNT; t++) {
        assert_string_not_equal(raft_msg_type_name(t), "UNKNOWN");
    }
    for (int t = 1; t < RAFT_TRACE_TYPE_COUNT; t++) {
        assert_string_not_equal(raft_trace_type_name(t), "UNKNOWN");
    }
    assert_string_equal(raft_msg_type_name(RAFT_MSG_TYPE_COUNT), "UNKNOWN");
    assert_string_equal(raft_trace_type_name(0), "UNKNOWN");
    assert_string_equal(raft_role_name(RAFT_LEADER), "LEADER");
    assert_string_equal(raft_role_name(99), "UNKNOWN");
}

static void test_raft_new_rejects_bad_config(void **state)
{
    struct raft_config c;
    struct raft *r = (struct raft *)0x1;

    (void)state;
    raft_config_default(&c, 1);
    c.heartbeat_ms = c.election_timeout_ms;
    assert_int_equal(raft_new(&c, NULL, 0, &r), RAFT_EINVAL);
    assert_ptr_equal(r, (struct raft *)0x1);
    raft_config_default(&c, 0);
    assert_int_equal(raft_new(&c, NULL, 0, &r), RAFT_EINVAL);
    raft_config_default(&c, 1);
    c.max_inflight_msgs = RAFT_MAX_INFLIGHT_MSGS + 1;
    assert_int_equal(raft_new(&c, NULL, 0, &r), RAFT_EINVAL);
    raft_config_default(&c, 1);
    c.initial_conf.n_members = 2;
    c.initial_conf.members[0] = (struct raft_member){1, true};
    c.initial_conf.members[1] = (struct raft_member){1, true};
    assert_int_equal(raft_new(&c, NULL, 0, &r), RAFT_EINVAL);
    raft_config_default(&c, 1);
    assert_int_equal(raft_new(&c, NULL, 0, &r), 0);
    raft_free(r);
    raft_free(NULL);
}

static int boot(const struct raft_restore *rs)
{
    struct raft_config c;
    struct raft *r = NULL;
    int rv;

    raft_config_default(&c, 1);
    c.initial_conf.n_members = 1;
    c.initial_conf.members[0] = (struct raft_member){1, true};
    rv = raft_new(&c, rs, 0, &r);
    raft_free(r);
    return rv;
}

static void test_raft_restore_detects_inconsistent_state(void **state)
{
    struct raft_entry e[3] = {
        {1, 1, RAFT_ENTRY_NOOP, {NULL, 0}},
        {1, 2, RAFT_ENTRY_NORMAL, {"a", 1}},
        {2, 3, RAFT_ENTRY_NORMAL, {"b", 1}},
    };
    struct raft_snapshot snap;
    struct raft_restore rs;

    (void)state;
    memset(&rs, 0, sizeof(rs));
    memset(&snap, 0, sizeof(snap));
    rs.hard_state.term = 2;
    rs.entries = e;
    rs.n_entries = 3;
    rs.applied = 3;
    assert_int_equal(boot(&rs), 0);
    rs.applied = 4; /* applied beyond the log */
    assert_int_equal(boot(&rs), RAFT_ECORRUPT);
    rs.applied = 0;
    rs.hard_state.term = 1; /* entry term above the hard state */
    assert_int_equal(boot(&rs), RAFT_ECORRUPT);
    rs.hard_state.term = 2;
    e[2].index = 4; /* a gap */
    assert_int_equal(boot(&rs), RAFT_ECORRUPT);
    e[2].index = 3;
    e[1].term = 2; /* terms go down */
    e[2].term = 1;
    assert_int_equal(boot(&rs), RAFT_ECORRUPT);
    e[1].term = 1;
    e[2].term = 2;
    e[1].type = RAFT_ENTRY_CONF; /* undecodable configuration */
    assert_int_equal(boot(&rs), RAFT_ECORRUPT);
    e[1].type = RAFT_ENTRY_NORMAL;
    rs.entries = &e[1]; /* log starts at 2 without a snapshot */
    rs.n_entries = 2;
    assert_int_equal(boot(&rs), RAFT_ECORRUPT);
    snap.meta.index = 1;
    snap.meta.term = 1;
    rs.snapshot = &snap;
    rs.applied = 1;
    assert_int_equal(boot(&rs), 0);
    snap.meta.index = 2;
    snap.meta.term = 2; /* disagrees with the entry at index 2 */
    rs.applied = 2;
    assert_int_equal(boot(&rs), RAFT_ECORRUPT);
    snap.meta.term = 1;
    rs.applied = 1; /* applied below the snapshot */
    assert_int_equal(boot(&rs), RAFT_ECORRUPT);
    rs.applied = 2;
    assert_int_equal(boot(&rs), 0);
    rs.hard_state.vote = 3;
    rs.hard_state.term = 0;
    assert_int_equal(boot(&rs), RAFT_ECORRUPT);
}

static void test_raft_step_rejects_malformed_messages(void **state)
{
    struct solo s;
    struct raft_msg m;
    struct raft_entry e[2] = {
        {1, 1, RAFT_ENTRY_NORMAL, {"a", 1}},
        {1, 3, RAFT_ENTRY_NORMAL, {"b", 1}},
    };

    (void)state;
    solo_start(&s, 1, 3, NULL);
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_HEARTBEAT;
    m.from = 2;
    m.to = 1;
    m.term = 1;
    assert_int_equal(raft_step(s.r, 0, NULL), RAFT_EMALFORMED);
    m.to = 3;
    assert_int_equal(raft_step(s.r, 0, &m), RAFT_EMALFORMED);
    m.to = 1;
    m.from = 1;
    assert_int_equal(raft_step(s.r, 0, &m), RAFT_EMALFORMED);
    m.from = 0;
    assert_int_equal(raft_step(s.r, 0, &m), RAFT_EMALFORMED);
    m.from = 2;
    m.type = 0;
    assert_int_equal(raft_step(s.r, 0, &m), RAFT_EMALFORMED);
    m.type = RAFT_MSG_TYPE_COUNT;
    assert_int_equal(raft_step(s.r, 0, &m), RAFT_EMALFORMED);
    m.type = RAFT_MSG_APPEND;
    m.u.append.n_entries = 2;
    m.u.append.entries = e; /* indexes 1, 3 */
    assert_int_equal(raft_step(s.r, 0, &m), RAFT_EMALFORMED);
    e[1].index = 2;
    e[1].term = 2; /* above the message term */
    assert_int_equal(raft_step(s.r, 0, &m), RAFT_EMALFORMED);
    e[1].term = 1;
    e[1].type = 7;
    assert_int_equal(raft_step(s.r, 0, &m), RAFT_EMALFORMED);
    e[1].type = RAFT_ENTRY_NORMAL;
    m.u.append.entries = NULL;
    assert_int_equal(raft_step(s.r, 0, &m), RAFT_EMALFORMED);
    m.u.append.prev_index = UINT64_MAX;
    m.u.append.entries = e;
    assert_int_equal(raft_step(s.r, 0, &m), RAFT_EMALFORMED);
    /* Nothing changed through all of that. */
    assert_int_equal(raft_current_term(s.r), 0);
    assert_int_equal(raft_last_index(s.r), 0);
    assert_false(raft_has_ready(s.r));
    m.u.append.prev_index = 0;
    assert_int_equal(raft_step(s.r, 0, &m), 0);
    assert_int_equal(raft_last_index(s.r), 2);
    assert_true(strlen(raft_errmsg(s.r)) > 0);
    solo_stop(&s);
}

static void test_raft_ready_batch_must_be_acknowledged(void **state)
{
    struct solo s;
    struct raft_ready rd;
    struct raft_ready rd2;
    struct raft_msg m;

    (void)state;
    solo_start(&s, 1, 1, NULL);
    assert_false(raft_has_ready(s.r));
    assert_int_equal(raft_tick(s.r, 500), 0);
    assert_true(raft_has_ready(s.r));
    assert_int_equal(raft_ready(s.r, &rd), 0);
    /* A single voter is a candidate until its vote for itself is
     * durable: the first batch is that hard state alone. */
    assert_true(rd.has_hard_state);
    assert_int_equal(rd.n_entries, 0);
    assert_int_equal(raft_role(s.r), RAFT_CANDIDATE);
    raft_advance(s.r, &rd);
    assert_int_equal(raft_role(s.r), RAFT_LEADER);
    assert_true(raft_has_ready(s.r));
    assert_int_equal(raft_ready(s.r, &rd), 0);
    assert_int_equal(rd.n_entries, 1);   /* the leader's no-op */
    assert_int_equal(rd.n_committed, 0); /* not persisted yet */
    assert_false(raft_has_ready(s.r));
    assert_int_equal(raft_ready(s.r, &rd2), RAFT_EINVAL);
    assert_int_equal(raft_tick(s.r, 501), RAFT_EINVAL);
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_HEARTBEAT;
    m.from = 2;
    m.to = 1;
    assert_int_equal(raft_step(s.r, 501, &m), RAFT_EINVAL);
    raft_advance(s.r, &rd);
    raft_advance(s.r, &rd); /* harmless */
    assert_true(raft_has_ready(s.r));
    assert_int_equal(raft_ready(s.r, &rd), 0);
    assert_int_equal(rd.n_committed, 1);
    assert_int_equal(rd.committed[0].index, 1);
    assert_int_equal(rd.n_entries, 0);
    raft_advance(s.r, &rd);
    assert_false(raft_has_ready(s.r));
    assert_true(raft_next_wakeup(s.r) > 500);
    solo_stop(&s);
}

static void test_raft_restart_rehands_unapplied_committed(void **state)
{
    struct raft_entry e[2] = {
        {1, 1, RAFT_ENTRY_NOOP, {NULL, 0}},
        {1, 2, RAFT_ENTRY_NORMAL, {"a", 1}},
    };
    struct raft_restore rs;
    struct solo s;

    (void)state;
    rs = cl_restore(e, 2, 1, 2, 1);
    solo_start(&s, 1, 3, &rs);
    assert_int_equal(raft_commit_index(s.r), 2);
    solo_flush(&s);
    assert_int_equal(s.n_committed, 1);
    assert_int_equal(s.committed[0].index, 2);
    solo_stop(&s);
}

/* ---- randomized faults: the invariants of paper figure 3 ---------------- */

static uint64_t chaos_rng;

static uint64_t chaos_next(void)
{
    chaos_rng ^= chaos_rng << 13;
    chaos_rng ^= chaos_rng >> 7;
    chaos_rng ^= chaos_rng << 17;
    return chaos_rng;
}

static unsigned chaos_drop_pct;

static bool chaos_filter(struct cl *c, const struct raft_msg *m)
{
    (void)c;
    (void)m;
    return chaos_next() % 100 >= chaos_drop_pct;
}

/* Election Safety: at most one leader per term, over the whole run. */
static void assert_one_leader_per_term(const struct cl *c)
{
    for (size_t i = 0; i < c->n_traces; i++) {
        const struct raft_trace_event *a = &c->traces[i];

        if (a->type != RAFT_TRACE_BECOME_LEADER) {
            continue;
        }
        for (size_t j = i + 1; j < c->n_traces; j++) {
            const struct raft_trace_event *b = &c->traces[j];

            if (b->type == RAFT_TRACE_BECOME_LEADER && b->term == a->term) {
                assert_int_equal(a->id, b->id);
            }
        }
    }
}

static void chaos_run(uint64_t seed, size_t n)
{
    struct cl *c;
    uint64_t next_value = 1;
    size_t max_applied = 0;
    raft_id l;

    chaos_rng = seed * 0x9e3779b97f4a7c15ULL + 1;
    /* Odd seeds: the last node starts outside the configuration, and the
     * run adds, promotes and removes members. */
    c = cl_new(n, (seed & 8) != 0 ? n - 1 : n);
    for (raft_id id = 1; id <= n; id++) {
        c->nodes[id].cfg.seed = seed * 31 + id;
        c->nodes[id].cfg.max_msg_bytes = 32;
        c->nodes[id].cfg.max_inflight_bytes = 96;
        c->nodes[id].cfg.snapshot_trailing = 3;
        c->nodes[id].cfg.pre_vote = (seed & 1) == 0;
        c->nodes[id].cfg.check_quorum = (seed & 2) == 0;
    }
    cl_start(c);
    c->filter = chaos_filter;
    c->chaos_seed = (seed & 4) == 0 ? seed : 0;
    for (int step = 0; step < 300; step++) {
        uint64_t r = chaos_next() % 100;
        raft_id who = (raft_id)(chaos_next() % n) + 1;

        chaos_drop_pct = (unsigned)(chaos_next() % 30);
        l = cl_leader(c);
        if (r < 40 && l != 0) {
            for (int k = 0; k < 3; k++) {
                if (cl_propose(c, l, next_value, NULL) == 0) {
                    next_value++;
                }
            }
        } else if (r < 50) {
            cl_isolate(c, who, !c->cut[who][who == 1 ? 2 : 1]);
        } else if (r < 55 && c->nodes[who].up) {
            cl_crash(c, who);
        } else if (r < 65 && !c->nodes[who].up) {
            cl_restart(c, who);
        } else if (r < 70 && c->nodes[who].up) {
            (void)cl_snapshot(c, who);
        } else if (r < 72 && l != 0) {
            (void)raft_transfer_leadership(c->nodes[l].r, 0);
            cl_flush(c, l);
        } else if (r < 74 && l != 0) {
            (void)raft_read_index(c->nodes[l].r, (uint64_t)step);
            cl_flush(c, l);
        } else if (r < 80 && l != 0 && (seed & 8) != 0) {
            const struct raft_member *mb =
                raft_conf_find(raft_conf_current(c->nodes[l].r), who);

            if (mb == NULL) {
                (void)raft_add_learner(c->nodes[l].r, who, NULL);
            } else if (!mb->voter) {
                (void)raft_promote(c->nodes[l].r, who, NULL);
            } else if (chaos_next() % 4 == 0) {
                (void)raft_remove(c->nodes[l].r, who, NULL);
            }
            cl_flush(c, l);
        }
        cl_run(c, 1 + chaos_next() % 40);
        cl_assert_sm_consistent(c);
        for (raft_id id = 1; id <= n; id++) {
            if (c->nodes[id].st.n_sm > max_applied) {
                max_applied = c->nodes[id].st.n_sm;
            }
        }
    }
    /* Heal everything: the cluster must converge and make progress. */
    c->filter = NULL;
    c->chaos_seed = 0;
    for (raft_id id = 1; id <= n; id++) {
        cl_isolate(c, id, false);
        if (!c->nodes[id].up) {
            cl_restart(c, id);
        }
    }
    /* Liveness once healed: within a few election timeouts some leader
     * commits a new entry on every node. */
    {
        bool done = false;

        for (int attempt = 0; attempt < 20 && !done; attempt++) {
            cl_run(c, 300);
            l = cl_leader(c);
            if (l == 0 || cl_propose(c, l, next_value, NULL) != 0) {
                continue;
            }
            cl_run(c, 300);
            done = true;
            for (raft_id id = 1; id <= n; id++) {
                const struct cl_store *st = &c->nodes[id].st;

                if (raft_conf_find(raft_conf_current(c->nodes[l].r), id) ==
                    NULL) {
                    continue; /* removed: it may never hear of it */
                }
                done =
                    done && st->n_sm > 0 && st->sm[st->n_sm - 1] == next_value;
            }
            next_value++;
        }
        if (!done || getenv("CHAOS_VERBOSE") != NULL) {
            for (raft_id id = 1; id <= n; id++) {
                struct raft *r = c->nodes[id].r;

                print_message("node %lu: %s term %lu leader %lu last %lu/%lu "
                              "commit %lu applied %zu\n",
                              (unsigned long)id, raft_role_name(raft_role(r)),
                              (unsigned long)raft_current_term(r),
                              (unsigned long)raft_leader(r),
                              (unsigned long)raft_last_index(r),
                              (unsigned long)raft_last_term(r),
                              (unsigned long)raft_commit_index(r),
                              c->nodes[id].st.n_sm);
            }
        }
        assert_true(done);
    }
    for (raft_id id = 1; id <= n; id++) {
        /* Leader Completeness / State Machine Safety: nothing applied
         * anywhere was lost. */
        if (raft_conf_find(raft_conf_current(c->nodes[l].r), id) != NULL) {
            assert_true(c->nodes[id].st.n_sm > max_applied);
        }
    }
    cl_assert_sm_consistent(c);
    assert_one_leader_per_term(c);
    if (getenv("CHAOS_VERBOSE") != NULL) {
        print_message(
            "seed %lu: %lu proposed, %zu applied, %zu leaders, "
            "%zu installs, %zu confs, %zu traces\n",
            (unsigned long)seed, (unsigned long)next_value, max_applied,
            cl_trace_count(c, RAFT_TRACE_BECOME_LEADER, 0),
            cl_trace_count(c, RAFT_TRACE_SNAPSHOT_INSTALL, 0),
            cl_trace_count(c, RAFT_TRACE_CONF_CHANGE, 0), c->n_traces);
    }
    cl_free(c);
}

static void test_raft_random_faults_keep_state_machines_consistent(void **st)
{
    const char *env = getenv("RAFT_CHAOS_SEEDS");
    uint64_t first = 1;
    uint64_t n = 12;

    (void)st;
    /* RAFT_CHAOS_SEEDS=first:count runs more (or other) seeds. */
    if (env != NULL) {
        char *end;

        first = strtoull(env, &end, 10);
        n = *end == ':' ? strtoull(end + 1, NULL, 10) : 1;
    }
    for (uint64_t seed = first; seed < first + n; seed++) {
        print_message("chaos seed %lu\n", (unsigned long)seed);
        chaos_run(seed, seed % 3 == 0 ? 5 : 3);
    }
}

/* ---- hostile peers: random messages never trip an assert ---------------- */

static uint64_t fuzz_small(uint64_t max)
{
    return chaos_next() % (max + 1);
}

static void fuzz_msg(struct raft_msg *m, struct raft_entry *ents, size_t cap,
                     raft_id self)
{
    memset(m, 0, sizeof(*m));
    m->type = (enum raft_msg_type)(1 + fuzz_small(RAFT_MSG_TYPE_COUNT - 2));
    m->from = 1 + fuzz_small(4);
    if (m->from == self) {
        m->from = self + 1;
    }
    m->to = self;
    m->term = fuzz_small(6);
    switch (m->type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE:
        m->u.vote.last_index = fuzz_small(30);
        m->u.vote.last_term = fuzz_small(m->term);
        m->u.vote.transfer = fuzz_small(1) == 1;
        break;
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP:
        m->u.vote_resp.granted = fuzz_small(1) == 1;
        break;
    case RAFT_MSG_APPEND: {
        size_t n = (size_t)fuzz_small(cap);
        raft_term t;

        m->u.append.prev_index = fuzz_small(25);
        m->u.append.prev_term = fuzz_small(m->term);
        m->u.append.commit = fuzz_small(40);
        m->u.append.ctx = fuzz_small(5);
        t = m->u.append.prev_term;
        for (size_t k = 0; k < n; k++) {
            if (t < m->term && fuzz_small(3) == 0) {
                t++;
            }
            ents[k].term = t == 0 ? 1 : t;
            ents[k].index = m->u.append.prev_index + 1 + k;
            ents[k].type = RAFT_ENTRY_NORMAL;
            ents[k].data.base = "fuzz";
            ents[k].data.len = (size_t)fuzz_small(4);
        }
        m->u.append.n_entries = n;
        m->u.append.entries = ents;
        break;
    }
    case RAFT_MSG_APPEND_RESP:
        m->u.append_resp.reject = fuzz_small(1) == 1;
        m->u.append_resp.index =
            fuzz_small(3) == 0 ? UINT64_MAX - fuzz_small(2) : fuzz_small(40);
        m->u.append_resp.hint_index =
            fuzz_small(3) == 0 ? UINT64_MAX : fuzz_small(40);
        m->u.append_resp.hint_term = fuzz_small(6);
        m->u.append_resp.ctx = fuzz_small(10);
        break;
    case RAFT_MSG_HEARTBEAT:
        m->u.heartbeat.commit = fuzz_small(40);
        m->u.heartbeat.ctx = fuzz_small(10);
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
        m->u.hb_resp.ctx = fuzz_small(10);
        break;
    case RAFT_MSG_SNAPSHOT: {
        struct raft_snapshot_chunk *c = &m->u.snapshot;

        c->meta.index = 1 + fuzz_small(30);
        c->meta.term = 1 + fuzz_small(m->term);
        c->meta.conf.n_members = 3;
        for (size_t i = 0; i < 3; i++) {
            c->meta.conf.members[i] = (struct raft_member){i + 1, true};
        }
        c->total_len = fuzz_small(8);
        c->offset = fuzz_small(c->total_len);
        c->data.base = "abcdefgh";
        c->data.len = (size_t)fuzz_small(c->total_len - c->offset);
        c->last = c->offset + c->data.len == c->total_len;
        break;
    }
    case RAFT_MSG_SNAPSHOT_RESP:
        m->u.snap_resp.index = fuzz_small(30);
        m->u.snap_resp.offset =
            fuzz_small(3) == 0 ? UINT64_MAX : fuzz_small(10);
        m->u.snap_resp.done = fuzz_small(1) == 1;
        m->u.snap_resp.reject = fuzz_small(1) == 1;
        break;
    default:
        break;
    }
}

static void test_raft_hostile_messages_never_crash(void **st)
{
    struct raft_entry ents[8];

    (void)st;
    chaos_rng = 0x1234567;
    for (int round = 0; round < 20; round++) {
        struct solo s;
        struct raft_buf b = {"p", 1};
        struct raft_snapshot snap;

        solo_start(&s, 1, 3, NULL);
        raft_free(s.r);
        s.cfg.max_msg_bytes = 3;
        s.cfg.snapshot_trailing = 1;
        assert_int_equal(raft_new(&s.cfg, NULL, 0, &s.r), 0);
        if (round % 2 == 0) {
            solo_make_leader(&s);
        }
        for (int i = 0; i < 3000; i++) {
            struct raft_msg m;
            int rv;

            fuzz_msg(&m, ents, 8, 1);
            rv = raft_step(s.r, s.now, &m);
            assert_true(rv == 0 || rv == RAFT_EMALFORMED);
            s.n_out = 0;
            s.n_committed = 0;
            solo_flush(&s);
            if (i % 50 == 0) {
                solo_tick_to(&s, s.now + fuzz_small(150));
                (void)raft_propose(s.r, &b, NULL);
                (void)raft_read_index(s.r, (uint64_t)i);
                solo_flush(&s);
                snap.meta.index = raft_commit_index(s.r);
                snap.meta.term = raft_term_at(s.r, snap.meta.index);
                snap.meta.conf = *raft_conf_current(s.r);
                snap.len = 1;
                (void)raft_snapshot_done(s.r, &snap);
                s.n_out = 0;
                s.n_committed = 0;
            }
        }
        solo_stop(&s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft_errors_have_distinct_nonempty_messages),
        cmocka_unit_test(test_raft_names_cover_every_type),
        cmocka_unit_test(test_raft_new_rejects_bad_config),
        cmocka_unit_test(test_raft_restore_detects_inconsistent_state),
        cmocka_unit_test(test_raft_step_rejects_malformed_messages),
        cmocka_unit_test(test_raft_ready_batch_must_be_acknowledged),
        cmocka_unit_test(test_raft_restart_rehands_unapplied_committed),
        cmocka_unit_test(
            test_raft_random_faults_keep_state_machines_consistent),
        cmocka_unit_test(test_raft_hostile_messages_never_crash),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
