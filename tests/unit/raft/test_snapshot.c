/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/raft/test_snapshot.c - raft/snapshot.c: taking snapshots,
 * compaction, chunked InstallSnapshot, restart from a snapshot (paper 7).
 */
#include "unit/raft/cluster.h"

static void test_snapshot_done_compacts_keeping_trailing(void **state)
{
    struct cl *c = cl_new(1, 1);
    raft_id l;
    raft_index applied;
    struct raft_snapshot b;

    (void)state;
    l = cl_start_leader(c);
    for (uint64_t v = 1; v <= 20; v++) {
        assert_int_equal(cl_propose(c, l, v, NULL), 0);
        cl_run(c, 1);
    }
    applied = c->nodes[l].st.applied;
    assert_int_equal(applied, 21);
    b.meta = cl_meta_at(&c->nodes[l], applied);
    b.meta.index = applied + 1;
    b.len = 1;
    assert_int_equal(raft_snapshot_done(c->nodes[l].r, &b), RAFT_EINVAL);
    assert_int_equal(cl_snapshot(c, l), 0);
    assert_int_equal(raft_snapshot_index(c->nodes[l].r), 21);
    assert_int_equal(raft_first_index(c->nodes[l].r), 21 - 4 + 1);
    b.meta.index = 21;
    assert_int_equal(raft_snapshot_done(c->nodes[l].r, &b), RAFT_EINVAL);
    assert_int_equal(cl_trace_count(c, RAFT_TRACE_SNAPSHOT_TAKEN, l), 1);
    /* The log goes on after compaction, and a restart restores it. */
    assert_int_equal(cl_propose(c, l, 21, NULL), 0);
    cl_run(c, 5);
    cl_crash(c, l);
    cl_restart(c, l);
    assert_int_equal(raft_snapshot_index(c->nodes[l].r), 21);
    assert_int_equal(raft_last_index(c->nodes[l].r), 22);
    assert_int_equal(raft_commit_index(c->nodes[l].r), 22);
    l = cl_run_until_leader(c, 1000);
    assert_int_equal(cl_propose(c, l, 22, NULL), 0);
    cl_run(c, 5);
    assert_int_equal(c->nodes[l].st.n_sm, 22);
    cl_free(c);
}

/* With 16-byte messages, elects a leader, runs settle_ms, cuts a follower
 * off, commits values 1..n_values without it and snapshots the leader, so
 * the follower can catch up only by InstallSnapshot (still cut off).
 * Returns the follower; *l is the leader. */
static raft_id leave_follower_behind(struct cl *c, uint64_t settle_ms,
                                     uint64_t n_values, raft_id *l)
{
    raft_id lag;

    for (raft_id id = 1; id <= 3; id++) {
        c->nodes[id].cfg.max_msg_bytes = 16;
        c->nodes[id].cfg.window_entries = 2; /* entries come from the host */
    }
    *l = cl_start_leader(c);
    lag = *l == 3 ? 2 : 3;
    cl_run(c, settle_ms);
    cl_isolate(c, lag, true);
    for (uint64_t v = 1; v <= n_values; v++) {
        assert_int_equal(cl_propose(c, *l, v, NULL), 0);
        cl_run(c, 2);
    }
    assert_int_equal(c->nodes[*l].st.n_sm, n_values);
    assert_int_equal(cl_snapshot(c, *l), 0);
    return lag;
}

static void test_snapshot_lagging_follower_installs_in_chunks(void **state)
{
    struct cl *c = *state;
    raft_id l;
    raft_id lag;

    lag = leave_follower_behind(c, 20, 30, &l);
    assert_true(raft_first_index(c->nodes[l].r) >
                raft_last_index(c->nodes[lag].r) + 1);
    c->n_traces = 0;
    cl_isolate(c, lag, false);
    cl_run(c, 300);
    assert_int_equal(cl_trace_count(c, RAFT_TRACE_SNAPSHOT_SEND, l), 1);
    assert_int_equal(cl_trace_count(c, RAFT_TRACE_SNAPSHOT_INSTALL, lag), 1);
    /* 240 bytes in 16-byte chunks. */
    assert_true(c->n_delivered[RAFT_MSG_SNAPSHOT] >= 15);
    assert_int_equal(c->nodes[lag].st.n_sm, 30);
    assert_int_equal(raft_snapshot_index(c->nodes[lag].r),
                     raft_snapshot_index(c->nodes[l].r));
    /* Replication continues after the snapshot... */
    assert_int_equal(cl_propose(c, l, 31, NULL), 0);
    cl_run(c, 20);
    assert_int_equal(c->nodes[lag].st.n_sm, 31);
    cl_assert_sm_consistent(c);
    /* ...and survives a restart from the installed snapshot. */
    cl_crash(c, lag);
    cl_restart(c, lag);
    assert_int_equal(cl_propose(c, l, 32, NULL), 0);
    cl_run(c, 100);
    assert_int_equal(c->nodes[lag].st.n_sm, 32);
    cl_assert_sm_consistent(c);
}

static unsigned snap_drop;

static bool drop_every_other_chunk(struct cl *c, const struct raft_msg *m)
{
    (void)c;
    if (m->type != RAFT_MSG_SNAPSHOT) {
        return true;
    }
    return snap_drop++ % 2 == 0;
}

static void test_snapshot_lost_chunks_are_resent(void **state)
{
    struct cl *c = *state;
    raft_id l;
    raft_id lag;

    lag = leave_follower_behind(c, 0, 12, &l);
    c->filter = drop_every_other_chunk;
    cl_isolate(c, lag, false);
    cl_run(c, 1000);
    assert_int_equal(c->nodes[lag].st.n_sm, 12);
    cl_assert_sm_consistent(c);
}

static struct raft_msg chunk(raft_index index, uint64_t total, uint64_t off,
                             const char *data, size_t len)
{
    struct raft_msg m;

    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_SNAPSHOT;
    m.from = 1;
    m.to = 2;
    m.term = 3;
    m.u.snapshot.meta.index = index;
    m.u.snapshot.meta.term = 2;
    m.u.snapshot.meta.conf.n_members = 3;
    for (size_t i = 0; i < 3; i++) {
        m.u.snapshot.meta.conf.members[i] = (struct raft_member){i + 1, true};
    }
    m.u.snapshot.total_len = total;
    m.u.snapshot.offset = off;
    m.u.snapshot.data.base = (void *)data;
    m.u.snapshot.data.len = len;
    m.u.snapshot.last = off + len == total;
    return m;
}

/* The batch rd hands out the last chunk (at offset off, with data) and
 * asks to install snapshot index of len bytes; acknowledges it and
 * checks the follower's log now starts after the snapshot. */
static void expect_install(struct solo *s, struct raft_ready *rd, uint64_t off,
                           const char *data, raft_index index, uint64_t len)
{
    assert_non_null(rd->snapshot_chunk);
    assert_int_equal(rd->snapshot_chunk->offset, off);
    assert_memory_equal(rd->snapshot_chunk->data.base, data, strlen(data));
    assert_non_null(rd->snapshot);
    assert_int_equal(rd->snapshot->meta.index, index);
    assert_int_equal(rd->snapshot->len, len);
    raft_advance(s->r, rd);
    assert_int_equal(raft_commit_index(s->r), index);
    assert_int_equal(raft_last_index(s->r), index);
    assert_int_equal(raft_snapshot_index(s->r), index);
}

static void test_snapshot_follower_checks_chunk_order(void **state)
{
    struct solo s;
    struct raft_msg m;
    const struct raft_msg *resp;
    struct raft_ready rd;

    (void)state;
    solo_start(&s, 2, 3, NULL);
    /* A chunk past total_len is malformed. */
    m = chunk(10, 8, 4, "abcdefgh", 8);
    m.u.snapshot.last = true;
    assert_int_equal(raft_step(s.r, 0, &m), RAFT_EMALFORMED);
    /* Middle chunk first: ask for offset 0. */
    m = chunk(10, 8, 4, "efgh", 4);
    solo_step(&s, &m);
    resp = solo_find(&s, RAFT_MSG_SNAPSHOT_RESP, 1);
    assert_true(resp->u.snap_resp.reject);
    assert_int_equal(resp->u.snap_resp.offset, 0);
    m = chunk(10, 8, 0, "abcd", 4);
    solo_step(&s, &m);
    resp = solo_find(&s, RAFT_MSG_SNAPSHOT_RESP, 1);
    assert_false(resp->u.snap_resp.reject);
    assert_false(resp->u.snap_resp.done);
    assert_int_equal(resp->u.snap_resp.offset, 4);
    /* A duplicate is acknowledged, not appended twice. */
    solo_step(&s, &m);
    resp = solo_find(&s, RAFT_MSG_SNAPSHOT_RESP, 1);
    assert_int_equal(resp->u.snap_resp.offset, 4);
    m = chunk(10, 8, 4, "efgh", 4);
    assert_int_equal(raft_step(s.r, 0, &m), 0);
    assert_int_equal(raft_ready(s.r, &rd), 0);
    assert_int_equal(rd.n_committed, 0);
    assert_int_equal(rd.n_msgs_after_persist, 1);
    assert_true(rd.msgs_after_persist[0].u.snap_resp.done);
    expect_install(&s, &rd, 4, "efgh", 10, 8);
    solo_stop(&s);
}

static void test_snapshot_meta_has_conf_as_of_its_index(void **state)
{
    struct solo s;
    struct raft_snapshot b;
    const struct raft_snapshot_meta *meta;
    raft_index applied;

    (void)state;
    solo_start(&s, 1, 1, NULL);
    solo_tick_to(&s, 250);
    applied = s.n_committed;
    assert_int_equal(applied, 1);
    assert_null(raft_snapshot_meta(s.r));
    /* A configuration appended after the snapshot index... */
    assert_int_equal(raft_add_learner(s.r, 2, NULL), 0);
    assert_int_equal(raft_conf_current(s.r)->n_members, 2);
    /* ...is not part of the snapshot's: the core refuses it... */
    memset(&b, 0, sizeof(b));
    b.meta.index = applied;
    b.meta.term = 1;
    b.meta.conf = *raft_conf_current(s.r);
    b.len = 2;
    assert_int_equal(raft_snapshot_done(s.r, &b), RAFT_EINVAL);
    /* ...and a term that is not the entry's... */
    b.meta.conf = s.cfg.initial_conf;
    b.meta.term = 2;
    assert_int_equal(raft_snapshot_done(s.r, &b), RAFT_EINVAL);
    b.meta.term = 1;
    assert_int_equal(raft_snapshot_done(s.r, &b), 0);
    meta = raft_snapshot_meta(s.r);
    assert_int_equal(meta->index, 1);
    assert_int_equal(meta->term, 1);
    assert_int_equal(meta->conf.n_members, 1);
    solo_flush(&s);
    solo_stop(&s);
}

/* Steps m into the solo core and takes the batch it makes (the caller
 * checks it, then calls raft_advance). */
static void step_ready(struct solo *s, const struct raft_msg *m,
                       struct raft_ready *rd)
{
    assert_int_equal(raft_step(s->r, s->now, m), 0);
    assert_int_equal(raft_ready(s->r, rd), 0);
}

/* The host holds the snapshot: the leader's chunks name the bytes (meta,
 * offset, length) and carry none; the host fills them in. */
static void test_snapshot_leader_names_chunks_for_the_host_to_fill(void **state)
{
    struct solo s;
    struct raft_snapshot snap;
    struct raft_restore rs;
    struct raft_msg m;
    const struct raft_msg *c;
    struct raft_memory mem;

    (void)state;
    memset(&snap, 0, sizeof(snap));
    snap.meta.index = 10;
    snap.meta.term = 1;
    snap.meta.conf.n_members = 3;
    for (size_t i = 0; i < 3; i++) {
        snap.meta.conf.members[i] = (struct raft_member){i + 1, true};
    }
    snap.len = 40;
    memset(&rs, 0, sizeof(rs));
    rs.hard_state.term = 1;
    rs.snapshot = &snap;
    rs.applied = 10;
    solo_start(&s, 1, 3, &rs);
    raft_free(s.r);
    s.cfg.max_msg_bytes = 16;
    assert_int_equal(raft_new(&s.cfg, &rs, 0, &s.r), 0);
    solo_make_leader(&s);
    /* Follower 2 has nothing: its answer sends the leader to the start. */
    m = solo_msg(&s, RAFT_MSG_APPEND_RESP, 2);
    m.u.append_resp.reject = true;
    m.u.append_resp.index = 10;
    solo_step(&s, &m);
    for (uint64_t off = 0; off < 40; off += 16) {
        c = solo_find(&s, RAFT_MSG_SNAPSHOT, 2);
        assert_non_null(c);
        assert_null(c->u.snapshot.data.base);
        assert_int_equal(c->u.snapshot.offset, off);
        assert_int_equal(c->u.snapshot.data.len, off < 32 ? 16 : 8);
        assert_int_equal(c->u.snapshot.total_len, 40);
        assert_int_equal(c->u.snapshot.meta.index, 10);
        assert_int_equal(c->u.snapshot.meta.term, 1);
        assert_int_equal(c->u.snapshot.last, off == 32);
        m = solo_msg(&s, RAFT_MSG_SNAPSHOT_RESP, 2);
        m.u.snap_resp.index = 10;
        m.u.snap_resp.offset = off + c->u.snapshot.data.len;
        m.u.snap_resp.done = off == 32;
        s.n_out = 0;
        solo_step(&s, &m);
    }
    /* Done: back to appends after the snapshot. */
    assert_int_equal(raft_match_index(s.r, 2), 10);
    assert_non_null(solo_find(&s, RAFT_MSG_APPEND, 2));
    raft_memory(s.r, &mem);
    assert_int_equal(mem.snapshot_bytes, 0);
    solo_stop(&s);
}

/* The follower hands each chunk to the host in a batch of its own and
 * acknowledges it only after that batch; a chunk of another snapshot at
 * offset 0 starts over (the host discards its partial file), one of the
 * abandoned snapshot is refused, and the last one comes with the meta to
 * install. */
static void test_snapshot_other_snapshot_restarts_the_transfer(void **state)
{
    struct solo s;
    struct raft_msg m;
    struct raft_ready rd;
    struct raft_memory mem;

    (void)state;
    solo_start(&s, 2, 3, NULL);
    m = chunk(10, 8, 0, "abcd", 4);
    step_ready(&s, &m, &rd);
    assert_non_null(rd.snapshot_chunk);
    assert_int_equal(rd.snapshot_chunk->meta.index, 10);
    assert_int_equal(rd.snapshot_chunk->offset, 0);
    assert_null(rd.snapshot);
    assert_int_equal(rd.n_msgs_now, 0); /* the answer waits for the write */
    assert_int_equal(rd.n_msgs_after_persist, 1);
    assert_int_equal(rd.msgs_after_persist[0].u.snap_resp.offset, 4);
    raft_memory(s.r, &mem);
    assert_int_equal(mem.snapshot_bytes, 4);
    raft_advance(s.r, &rd);
    raft_memory(s.r, &mem);
    assert_int_equal(mem.snapshot_bytes, 0);
    /* Another snapshot from the start: a new file. */
    m = chunk(12, 6, 0, "uvw", 3);
    step_ready(&s, &m, &rd);
    assert_non_null(rd.snapshot_chunk);
    assert_int_equal(rd.snapshot_chunk->meta.index, 12);
    assert_int_equal(rd.snapshot_chunk->offset, 0);
    raft_advance(s.r, &rd);
    /* A late chunk of the old one is refused with offset 0, and the
     * transfer starts over (the existing protocol: a chunk of another
     * snapshot restarts it)... */
    m = chunk(10, 8, 4, "efgh", 4);
    step_ready(&s, &m, &rd);
    assert_null(rd.snapshot_chunk);
    assert_int_equal(rd.n_msgs_after_persist, 1);
    assert_true(rd.msgs_after_persist[0].u.snap_resp.reject);
    assert_int_equal(rd.msgs_after_persist[0].u.snap_resp.offset, 0);
    raft_advance(s.r, &rd);
    m = chunk(12, 6, 3, "xyz", 3);
    step_ready(&s, &m, &rd);
    assert_null(rd.snapshot_chunk);
    assert_true(rd.msgs_after_persist[0].u.snap_resp.reject);
    raft_advance(s.r, &rd);
    /* ...so the leader sends the new one from offset 0 again. */
    m = chunk(12, 6, 0, "uvw", 3);
    step_ready(&s, &m, &rd);
    assert_int_equal(rd.snapshot_chunk->offset, 0);
    raft_advance(s.r, &rd);
    m = chunk(12, 6, 3, "xyz", 3);
    step_ready(&s, &m, &rd);
    expect_install(&s, &rd, 3, "xyz", 12, 6);
    solo_stop(&s);
}

/* One chunk per batch: a second chunk stepped before the batch took the
 * first is dropped as if lost (the leader resends it), so the core never
 * holds more than one. */
static void test_snapshot_follower_holds_one_chunk_at_most(void **state)
{
    struct solo s;
    struct raft_msg m;
    struct raft_ready rd;
    struct raft_memory mem;

    (void)state;
    solo_start(&s, 2, 3, NULL);
    m = chunk(10, 8, 0, "abcd", 4);
    assert_int_equal(raft_step(s.r, 0, &m), 0);
    m = chunk(10, 8, 4, "efgh", 4);
    assert_int_equal(raft_step(s.r, 0, &m), 0);
    raft_memory(s.r, &mem);
    assert_int_equal(mem.snapshot_bytes, 4);
    assert_int_equal(raft_ready(s.r, &rd), 0);
    assert_int_equal(rd.snapshot_chunk->offset, 0);
    assert_null(rd.snapshot);
    assert_int_equal(rd.n_msgs_after_persist, 1);
    raft_advance(s.r, &rd);
    solo_step(&s, &m); /* resent */
    assert_int_equal(raft_snapshot_index(s.r), 10);
    solo_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_done_compacts_keeping_trailing),
        cmocka_unit_test_setup_teardown(
            test_snapshot_lagging_follower_installs_in_chunks, cl_fixture3,
            cl_fixture_free),
        cmocka_unit_test_setup_teardown(test_snapshot_lost_chunks_are_resent,
                                        cl_fixture3, cl_fixture_free),
        cmocka_unit_test(test_snapshot_follower_checks_chunk_order),
        cmocka_unit_test(test_snapshot_meta_has_conf_as_of_its_index),
        cmocka_unit_test(
            test_snapshot_leader_names_chunks_for_the_host_to_fill),
        cmocka_unit_test(test_snapshot_other_snapshot_restarts_the_transfer),
        cmocka_unit_test(test_snapshot_follower_holds_one_chunk_at_most),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
