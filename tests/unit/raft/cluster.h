/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/raft/cluster.h - a tiny in-process cluster for raft/ tests.
 *
 * Each node is a raft core plus a fake host: a "disk" (hard state,
 * snapshot file, entries, the file of a snapshot being received) written
 * when the batch says so, a state machine that is the list of applied
 * 8-byte values, and a FIFO network with cuts.  The host serves the
 * core's fetches from its entries and fills the snapshot chunks the core
 * sends from its snapshot file.  The host loop follows raft.h exactly, so
 * these tests also check that the contract is usable.  Time is virtual
 * (1 ms steps).
 *
 * Everything is static inline so that each test executable takes only
 * what it uses.  tests/sim holds the randomized, lossy version.
 */
#ifndef GR_TESTS_UNIT_RAFT_CLUSTER_H
#define GR_TESTS_UNIT_RAFT_CLUSTER_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "raft/raft.h"

#define CL_MAX    7
#define CL_TRACES 65536

struct cl_store {
    struct raft_hard_state hs;
    struct raft_snapshot snap;         /* meta.index 0: none */
    uint8_t *snap_data;                /* its file: snap.len bytes, malloc'd */
    struct raft_snapshot_meta rx_meta; /* the file being received */
    uint8_t *rx_data;
    size_t rx_len;
    struct raft_entry *entries; /* contiguous, data malloc'd */
    size_t n;
    size_t n_fetch;      /* fetches served */
    size_t n_fetch_fail; /* fetches refused: entries compacted */
    raft_index applied;
    uint64_t *sm; /* applied NORMAL values in order */
    size_t n_sm;
};

struct cl_node {
    struct raft *r;
    struct raft_config cfg;
    bool up;
    struct cl_store st;
    struct raft_read reads[64];
    size_t n_reads;
    size_t n_now_msgs; /* counters over the node's life */
    size_t n_after_msgs;
    size_t n_want_snapshot; /* batches with want_snapshot */
};

struct cl {
    size_t n;
    struct cl_node nodes[CL_MAX + 1]; /* index = id, 0 unused */
    uint64_t now;
    struct raft_msg *q;
    size_t nq;
    size_t capq;
    bool cut[CL_MAX + 1][CL_MAX + 1];
    bool drop_all;
    struct raft_trace_event traces[CL_TRACES];
    size_t n_traces;
    size_t n_delivered[RAFT_MSG_TYPE_COUNT];
    /* Nonzero: deliveries are shuffled and some duplicated, from this
     * seed (a reordering, duplicating network). */
    uint64_t chaos_seed;
    /* Fault-injection tests: accept RAFT_ENOMEM from the core. */
    bool tolerate_enomem;
    /* Optional filter: return false to drop a message in flight. */
    bool (*filter)(struct cl *c, const struct raft_msg *m);
    size_t max_core_entries; /* most entries any core held in memory */
    bool snapshot_on_want;   /* take a snapshot when a batch wants one */
};

static inline int cl_snapshot(struct cl *c, raft_id id);

static inline void *cl_dup(const void *p, size_t len)
{
    void *q;

    if (len == 0) {
        return NULL;
    }
    q = malloc(len);
    assert_non_null(q);
    memcpy(q, p, len);
    return q;
}

/* config.fetch: entries lo.. from the node's store (raft.h's contract). */
static inline int cl_fetch(void *arg, raft_index lo, raft_index hi,
                           size_t max_bytes, struct raft_entry *out,
                           size_t max_n, size_t *n)
{
    struct cl_store *st = arg;
    size_t bytes = 0;
    size_t k = 0;

    if (st->n == 0 || lo < st->entries[0].index ||
        lo > st->entries[st->n - 1].index) {
        st->n_fetch_fail++;
        return -1;
    }
    for (raft_index i = lo; i <= hi && k < max_n; i++, k++) {
        const struct raft_entry *e = &st->entries[i - st->entries[0].index];

        if (i > st->entries[st->n - 1].index) {
            break;
        }
        if (k >= 2 && bytes + e->data.len > max_bytes) {
            break;
        }
        if (k >= 1) {
            bytes += e->data.len;
        }
        out[k] = *e;
    }
    *n = k;
    st->n_fetch++;
    return 0;
}

static inline void cl_trace_cb(void *arg, const struct raft_trace_event *ev)
{
    struct cl *c = arg;

    if (c->n_traces < CL_TRACES) {
        c->traces[c->n_traces++] = *ev;
    }
}

static inline size_t cl_trace_count(const struct cl *c,
                                    enum raft_trace_type type, raft_id id)
{
    size_t n = 0;

    for (size_t i = 0; i < c->n_traces; i++) {
        if (c->traces[i].type == type && (id == 0 || c->traces[i].id == id)) {
            n++;
        }
    }
    return n;
}

/* n nodes, the first n_voters of them voters of the initial config; the
 * others start with an empty config (to be added as learners).  Configs
 * can be edited in c->nodes[i].cfg before cl_start. */
static inline void cl_setup(struct cl *c, size_t n, size_t n_voters)
{
    memset(c, 0, sizeof(*c));
    c->n = n;
    for (size_t i = 1; i <= n; i++) {
        struct raft_config *cfg = &c->nodes[i].cfg;

        raft_config_default(cfg, i);
        cfg->election_timeout_ms = 100;
        cfg->heartbeat_ms = 10;
        cfg->seed = 1000 + i;
        cfg->trace = cl_trace_cb;
        cfg->trace_arg = c;
        cfg->snapshot_trailing = 4;
        cfg->fetch = cl_fetch;
        cfg->fetch_arg = &c->nodes[i].st;
        if (i <= n_voters) {
            for (size_t j = 1; j <= n_voters; j++) {
                cfg->initial_conf.members[j - 1].id = j;
                cfg->initial_conf.members[j - 1].voter = true;
            }
            cfg->initial_conf.n_members = n_voters;
        }
    }
}

static inline void cl_msg_free(struct raft_msg *m)
{
    if (m->type == RAFT_MSG_APPEND) {
        struct raft_entry *e = (struct raft_entry *)m->u.append.entries;

        for (size_t k = 0; k < m->u.append.n_entries; k++) {
            free(e[k].data.base);
        }
        free(e);
    } else if (m->type == RAFT_MSG_SNAPSHOT) {
        free(m->u.snapshot.data.base);
    }
}

static inline void cl_enqueue(struct cl *c, const struct raft_msg *m)
{
    struct raft_msg copy = *m;
    const struct cl_store *from = &c->nodes[m->from].st;

    if (m->type == RAFT_MSG_SNAPSHOT && m->u.snapshot.data.base == NULL &&
        m->u.snapshot.data.len > 0) {
        /* The core names the bytes; the host fills them from its file. */
        if (from->snap.meta.index != m->u.snapshot.meta.index ||
            from->snap.meta.term != m->u.snapshot.meta.term) {
            return; /* no such file: dropped */
        }
        assert_true(m->u.snapshot.offset + m->u.snapshot.data.len <=
                    from->snap.len);
        copy.u.snapshot.data.base = from->snap_data + m->u.snapshot.offset;
    }

    if (c->nq == c->capq) {
        c->capq = c->capq == 0 ? 64 : c->capq * 2;
        c->q = realloc(c->q, c->capq * sizeof(*c->q));
        assert_non_null(c->q);
    }
    if (m->type == RAFT_MSG_APPEND && m->u.append.n_entries > 0) {
        size_t n = m->u.append.n_entries;
        struct raft_entry *e = malloc(n * sizeof(*e));

        assert_non_null(e);
        for (size_t k = 0; k < n; k++) {
            e[k] = m->u.append.entries[k];
            e[k].data.base = cl_dup(e[k].data.base, e[k].data.len);
        }
        copy.u.append.entries = e;
    }
    if (m->type == RAFT_MSG_SNAPSHOT) {
        copy.u.snapshot.data.base =
            cl_dup(copy.u.snapshot.data.base, copy.u.snapshot.data.len);
    }
    c->q[c->nq++] = copy;
}

static inline void cl_sm_apply(struct cl_store *st, const struct raft_entry *e)
{
    uint64_t v = 0;

    assert_int_equal(e->index, st->applied + 1);
    st->applied = e->index;
    if (e->type != RAFT_ENTRY_NORMAL) {
        return;
    }
    if (e->data.len >= sizeof(v)) {
        memcpy(&v, e->data.base, sizeof(v));
    }
    st->sm = realloc(st->sm, (st->n_sm + 1) * sizeof(*st->sm));
    assert_non_null(st->sm);
    st->sm[st->n_sm++] = v;
}

static inline void cl_store_truncate(struct cl_store *st, raft_index from)
{
    while (st->n > 0 && st->entries[st->n - 1].index >= from) {
        free(st->entries[st->n - 1].data.base);
        st->n--;
    }
}

static inline void cl_store_append(struct cl_store *st,
                                   const struct raft_entry *e)
{
    if (st->n > 0) {
        assert_int_equal(e->index, st->entries[st->n - 1].index + 1);
    } else {
        assert_int_equal(e->index, st->snap.meta.index + 1);
    }
    st->entries = realloc(st->entries, (st->n + 1) * sizeof(*st->entries));
    assert_non_null(st->entries);
    st->entries[st->n] = *e;
    st->entries[st->n].data.base = cl_dup(e->data.base, e->data.len);
    st->n++;
}

/* A chunk of the snapshot being received goes into its file. */
static inline void cl_store_chunk(struct cl_store *st,
                                  const struct raft_snapshot_chunk *ch)
{
    if (ch->offset == 0) {
        free(st->rx_data);
        st->rx_data = NULL;
        st->rx_len = 0;
        st->rx_meta = ch->meta;
    }
    assert_int_equal(ch->offset, st->rx_len);
    assert_int_equal(st->rx_meta.index, ch->meta.index);
    st->rx_data = realloc(st->rx_data, st->rx_len + ch->data.len + 1);
    assert_non_null(st->rx_data);
    if (ch->data.len > 0) {
        memcpy(st->rx_data + st->rx_len, ch->data.base, ch->data.len);
    }
    st->rx_len += ch->data.len;
}

/* The received file becomes the snapshot and the state machine. */
static inline void cl_store_install(struct cl_store *st,
                                    const struct raft_snapshot *s)
{
    assert_int_equal(st->rx_meta.index, s->meta.index);
    assert_int_equal(st->rx_len, s->len);
    free(st->snap_data);
    st->snap = *s;
    st->snap_data = st->rx_data; /* the file moves */
    st->rx_data = NULL;
    st->rx_len = 0;
    cl_store_truncate(st, 0);
    free(st->sm);
    st->n_sm = (size_t)s->len / sizeof(uint64_t);
    st->sm = cl_dup(st->snap_data, (size_t)s->len);
    st->applied = s->meta.index;
}

/* One host-loop iteration for node id: handle every ready batch. */
static inline void cl_flush(struct cl *c, raft_id id)
{
    struct cl_node *nd = &c->nodes[id];
    struct raft_ready rd;
    struct raft_memory mem;

    while (nd->up && raft_has_ready(nd->r)) {
        int rv = raft_ready(nd->r, &rd);

        if (rv == RAFT_ENOMEM && c->tolerate_enomem) {
            return; /* the next turn retries */
        }
        assert_int_equal(rv, 0);
        for (size_t i = 0; i < rd.n_msgs_now; i++) {
            cl_enqueue(c, &rd.msgs_now[i]);
        }
        nd->n_now_msgs += rd.n_msgs_now;
        if (rd.snapshot_chunk != NULL) {
            cl_store_chunk(&nd->st, rd.snapshot_chunk);
        }
        if (rd.snapshot != NULL) {
            cl_store_install(&nd->st, rd.snapshot);
        }
        if (rd.truncate_from != 0) {
            cl_store_truncate(&nd->st, rd.truncate_from);
        }
        for (size_t i = 0; i < rd.n_entries; i++) {
            cl_store_append(&nd->st, &rd.entries[i]);
        }
        if (rd.has_hard_state) {
            nd->st.hs = rd.hard_state;
        }
        for (size_t i = 0; i < rd.n_msgs_after_persist; i++) {
            cl_enqueue(c, &rd.msgs_after_persist[i]);
        }
        nd->n_after_msgs += rd.n_msgs_after_persist;
        for (size_t i = 0; i < rd.n_committed; i++) {
            cl_sm_apply(&nd->st, &rd.committed[i]);
        }
        for (size_t i = 0; i < rd.n_reads && nd->n_reads < 64; i++) {
            nd->reads[nd->n_reads++] = rd.reads[i];
        }
        raft_advance(nd->r, &rd);
        raft_applied(nd->r, nd->st.applied);
        if (rd.want_snapshot) {
            nd->n_want_snapshot++;
            if (c->snapshot_on_want) {
                (void)cl_snapshot(c, id);
            }
        }
        raft_memory(nd->r, &mem);
        if (mem.n_entries > c->max_core_entries) {
            c->max_core_entries = mem.n_entries;
        }
    }
}

static inline int cl_boot(struct cl *c, raft_id id)
{
    struct cl_node *nd = &c->nodes[id];
    struct raft_restore rs;
    int rv;

    memset(&rs, 0, sizeof(rs));
    rs.hard_state = nd->st.hs;
    rs.snapshot = nd->st.snap.meta.index > 0 ? &nd->st.snap : NULL;
    rs.entries = nd->st.entries;
    rs.n_entries = nd->st.n;
    rs.applied = nd->st.applied;
    rv = raft_new(&nd->cfg, &rs, c->now, &nd->r);
    if (rv == 0) {
        nd->up = true;
    }
    return rv;
}

static inline void cl_start(struct cl *c)
{
    for (raft_id id = 1; id <= c->n; id++) {
        assert_int_equal(cl_boot(c, id), 0);
    }
}

static inline void cl_crash(struct cl *c, raft_id id)
{
    raft_free(c->nodes[id].r);
    c->nodes[id].r = NULL;
    c->nodes[id].up = false;
}

static inline void cl_restart(struct cl *c, raft_id id)
{
    assert_int_equal(cl_boot(c, id), 0);
}

static inline void cl_store_close(struct cl_store *st)
{
    cl_store_truncate(st, 0);
    free(st->entries);
    free(st->snap_data);
    free(st->rx_data);
    free(st->sm);
    memset(st, 0, sizeof(*st));
}

static inline void cl_teardown(struct cl *c)
{
    for (raft_id id = 1; id <= c->n; id++) {
        raft_free(c->nodes[id].r);
        cl_store_close(&c->nodes[id].st);
    }
    for (size_t i = 0; i < c->nq; i++) {
        cl_msg_free(&c->q[i]);
    }
    free(c->q);
    memset(c, 0, sizeof(*c));
}

static inline void cl_cut(struct cl *c, raft_id a, raft_id b, bool cut)
{
    c->cut[a][b] = cut;
    c->cut[b][a] = cut;
}

/* Isolates id from everyone (or heals it). */
static inline void cl_isolate(struct cl *c, raft_id id, bool cut)
{
    for (raft_id j = 1; j <= c->n; j++) {
        if (j != id) {
            cl_cut(c, id, j, cut);
        }
    }
}

/* Delivers everything queued, including what deliveries produce. */
static inline void cl_deliver(struct cl *c)
{
    for (int round = 0; round < 1000 && c->nq > 0; round++) {
        struct raft_msg *batch = c->q;
        size_t n = c->nq;

        c->q = NULL;
        c->nq = 0;
        c->capq = 0;
        for (size_t i = n; c->chaos_seed != 0 && i > 1; i--) {
            size_t j;
            struct raft_msg tmp;

            c->chaos_seed =
                c->chaos_seed * 6364136223846793005ULL + 1442695040888963407ULL;
            j = (size_t)((c->chaos_seed >> 33) % i);
            tmp = batch[i - 1];
            batch[i - 1] = batch[j];
            batch[j] = tmp;
        }
        for (size_t i = 0; i < n; i++) {
            struct raft_msg *m = &batch[i];
            struct cl_node *to = m->to <= c->n ? &c->nodes[m->to] : NULL;

            if (to != NULL && to->up && !c->drop_all &&
                !c->cut[m->from][m->to] &&
                (c->filter == NULL || c->filter(c, m))) {
                int rv = raft_step(to->r, c->now, m);

                c->n_delivered[m->type]++;
                if (!(rv == RAFT_ENOMEM && c->tolerate_enomem)) {
                    assert_int_equal(rv, 0);
                }
                if (c->chaos_seed != 0 && (c->chaos_seed >> 40) % 20 == 0) {
                    cl_enqueue(c, m); /* delivered again later */
                }
                cl_flush(c, m->to);
            }
            cl_msg_free(m);
        }
        free(batch);
    }
}

static inline void cl_tick(struct cl *c)
{
    for (raft_id id = 1; id <= c->n; id++) {
        if (c->nodes[id].up) {
            assert_int_equal(raft_tick(c->nodes[id].r, c->now), 0);
            cl_flush(c, id);
        }
    }
}

/* Runs the cluster for ms milliseconds of virtual time. */
static inline void cl_run(struct cl *c, uint64_t ms)
{
    for (uint64_t t = 0; t < ms; t++) {
        c->now++;
        cl_tick(c);
        cl_deliver(c);
    }
}

/* A cluster set up by cl_setup on the heap (a failed allocation fails the
 * test). Caller frees with cl_free(). */
static inline struct cl *cl_new(size_t n, size_t n_voters)
{
    struct cl *c = malloc(sizeof(*c));

    assert_non_null(c);
    cl_setup(c, n, n_voters);
    return c;
}

/* Tears down and frees a cluster from cl_new; NULL is a no-op. */
static inline void cl_free(struct cl *c)
{
    if (c == NULL) {
        return;
    }
    cl_teardown(c);
    free(c);
}

/* cmocka fixture: *state becomes a cluster of three voters from cl_new,
 * set up but not started, so a test may edit c->nodes[i].cfg before
 * cl_start. Pair it with cl_fixture_free in cmocka_unit_test_setup_teardown
 * so the cluster is freed even when the test fails. */
static inline int cl_fixture3(void **state)
{
    *state = cl_new(3, 3);
    return 0;
}

static inline int cl_fixture_free(void **state)
{
    cl_free(*state);
    *state = NULL;
    return 0;
}

/* The leader of the highest term among live nodes, or 0. */
static inline raft_id cl_leader(const struct cl *c)
{
    raft_id best = 0;
    raft_term term = 0;

    for (raft_id id = 1; id <= c->n; id++) {
        const struct cl_node *nd = &c->nodes[id];

        if (nd->up && raft_role(nd->r) == RAFT_LEADER &&
            raft_current_term(nd->r) >= term) {
            best = id;
            term = raft_current_term(nd->r);
        }
    }
    return best;
}

/* Runs until some node leads (at most ms); returns it or 0. */
static inline raft_id cl_run_until_leader(struct cl *c, uint64_t ms)
{
    for (uint64_t t = 0; t < ms; t++) {
        raft_id l = cl_leader(c);

        if (l != 0) {
            return l;
        }
        cl_run(c, 1);
    }
    return cl_leader(c);
}

/* Boots every node and runs until one leads; fails the test if none does
 * within a second of virtual time. Returns the leader. */
static inline raft_id cl_start_leader(struct cl *c)
{
    raft_id l;

    cl_start(c);
    l = cl_run_until_leader(c, 1000);
    assert_int_not_equal(l, 0);
    return l;
}

static inline int cl_propose(struct cl *c, raft_id id, uint64_t value,
                             raft_index *index)
{
    struct raft_buf b = {&value, sizeof(value)};
    int rv = raft_propose(c->nodes[id].r, &b, index);

    cl_flush(c, id);
    return rv;
}

/* The meta of a snapshot of the store at index (applied, so held in its
 * entries or its snapshot): the entry's term, the latest configuration at
 * or below it. */
static inline struct raft_snapshot_meta cl_meta_at(const struct cl_node *nd,
                                                   raft_index index)
{
    const struct cl_store *st = &nd->st;
    struct raft_snapshot_meta meta;

    memset(&meta, 0, sizeof(meta));
    meta.index = index;
    meta.conf =
        st->snap.meta.index > 0 ? st->snap.meta.conf : nd->cfg.initial_conf;
    meta.term = index == st->snap.meta.index ? st->snap.meta.term : 0;
    for (size_t k = 0; k < st->n && st->entries[k].index <= index; k++) {
        const struct raft_entry *e = &st->entries[k];

        if (e->index == index) {
            meta.term = e->term;
        }
        if (e->type == RAFT_ENTRY_CONF && e->index > st->snap.meta.index) {
            assert_int_equal(
                raft_conf_decode(e->data.base, e->data.len, &meta.conf), 0);
        }
    }
    return meta;
}

/* Takes a host snapshot of node id at its applied index: the file first,
 * then the core is told. */
static inline int cl_snapshot(struct cl *c, raft_id id)
{
    struct cl_node *nd = &c->nodes[id];
    struct raft_snapshot snap;
    raft_index first;
    int rv;

    snap.meta = cl_meta_at(nd, nd->st.applied);
    snap.len = nd->st.n_sm * sizeof(uint64_t);
    rv = raft_snapshot_done(nd->r, &snap);
    if (rv != 0) {
        return rv;
    }
    free(nd->st.snap_data);
    nd->st.snap = snap;
    assert_int_equal(raft_snapshot_meta(nd->r)->index, nd->st.applied);
    nd->st.snap_data = cl_dup(nd->st.sm, (size_t)snap.len);
    /* Delete what the core no longer needs. */
    first = raft_first_index(nd->r);
    while (nd->st.n > 0 && nd->st.entries[0].index < first) {
        free(nd->st.entries[0].data.base);
        memmove(nd->st.entries, nd->st.entries + 1,
                (nd->st.n - 1) * sizeof(*nd->st.entries));
        nd->st.n--;
    }
    return 0;
}

/* Asserts that every pair of live state machines agrees on their common
 * prefix (State Machine Safety, paper 5.4.3). */
static inline void cl_assert_sm_consistent(const struct cl *c)
{
    for (raft_id a = 1; a <= c->n; a++) {
        for (raft_id b = a + 1; b <= c->n; b++) {
            const struct cl_store *x = &c->nodes[a].st;
            const struct cl_store *y = &c->nodes[b].st;
            size_t n = x->n_sm < y->n_sm ? x->n_sm : y->n_sm;

            for (size_t i = 0; i < n; i++) {
                assert_int_equal(x->sm[i], y->sm[i]);
            }
        }
    }
}

/* What a host hands raft_new after a restart without a snapshot: the log
 * entries (borrowed until raft_new returns), the hard state's term and
 * commit index, and the index its state machine applied. */
static inline struct raft_restore cl_restore(const struct raft_entry *entries,
                                             size_t n_entries, raft_term term,
                                             raft_index commit,
                                             raft_index applied)
{
    struct raft_restore rs;

    memset(&rs, 0, sizeof(rs));
    rs.hard_state.term = term;
    rs.hard_state.commit = commit;
    rs.entries = entries;
    rs.n_entries = n_entries;
    rs.applied = applied;
    return rs;
}

/* A single core driven by hand: messages it emits are collected. */
struct solo {
    struct raft *r;
    struct raft_config cfg;
    struct raft_msg out[256];
    size_t n_out;
    struct raft_entry committed[256];
    size_t n_committed;
    size_t n_persisted;
    struct raft_read reads[64];
    size_t n_reads;
    uint64_t now;
    struct cl *traces; /* optional */
};

/* Runs the host loop once, keeping copies of messages (entries are not
 * copied: only their count and headers are kept) and counting the rest. */
static inline void solo_flush(struct solo *s)
{
    struct raft_ready rd;

    while (raft_has_ready(s->r)) {
        assert_int_equal(raft_ready(s->r, &rd), 0);
        for (size_t i = 0; i < rd.n_msgs_now && s->n_out < 256; i++) {
            s->out[s->n_out] = rd.msgs_now[i];
            if (s->out[s->n_out].type == RAFT_MSG_APPEND) {
                s->out[s->n_out].u.append.entries = NULL;
            }
            s->n_out++;
        }
        for (size_t i = 0; i < rd.n_msgs_after_persist && s->n_out < 256; i++) {
            s->out[s->n_out] = rd.msgs_after_persist[i];
            if (s->out[s->n_out].type == RAFT_MSG_APPEND) {
                s->out[s->n_out].u.append.entries = NULL;
            }
            s->n_out++;
        }
        s->n_persisted += rd.n_entries;
        for (size_t i = 0; i < rd.n_committed && s->n_committed < 256; i++) {
            s->committed[s->n_committed] = rd.committed[i];
            s->committed[s->n_committed].data.base = NULL;
            s->n_committed++;
        }
        for (size_t i = 0; i < rd.n_reads && s->n_reads < 64; i++) {
            s->reads[s->n_reads++] = rd.reads[i];
        }
        raft_advance(s->r, &rd);
    }
}

/* Starts a solo core, id `id`, voters 1..n_voters, optional restore. */
static inline void solo_start(struct solo *s, raft_id id, size_t n_voters,
                              const struct raft_restore *rs)
{
    memset(s, 0, sizeof(*s));
    raft_config_default(&s->cfg, id);
    s->cfg.election_timeout_ms = 100;
    s->cfg.heartbeat_ms = 10;
    for (size_t j = 1; j <= n_voters; j++) {
        s->cfg.initial_conf.members[j - 1].id = j;
        s->cfg.initial_conf.members[j - 1].voter = true;
    }
    s->cfg.initial_conf.n_members = n_voters;
    assert_int_equal(raft_new(&s->cfg, rs, 0, &s->r), 0);
}

static inline void solo_stop(struct solo *s)
{
    raft_free(s->r);
    s->r = NULL;
}

/* The last message of a type to a peer (0: any), or NULL. */
static inline const struct raft_msg *
solo_find(const struct solo *s, enum raft_msg_type type, raft_id to)
{
    for (size_t i = s->n_out; i > 0; i--) {
        const struct raft_msg *m = &s->out[i - 1];

        if (m->type == type && (to == 0 || m->to == to)) {
            return m;
        }
    }
    return NULL;
}

static inline size_t solo_count(const struct solo *s, enum raft_msg_type type)
{
    size_t n = 0;

    for (size_t i = 0; i < s->n_out; i++) {
        n += s->out[i].type == type ? 1 : 0;
    }
    return n;
}

static inline void solo_step(struct solo *s, const struct raft_msg *m)
{
    assert_int_equal(raft_step(s->r, s->now, m), 0);
    solo_flush(s);
}

static inline void solo_tick_to(struct solo *s, uint64_t now)
{
    while (s->now < now) {
        s->now++;
        assert_int_equal(raft_tick(s->r, s->now), 0);
        solo_flush(s);
    }
}

/* A message of the given type from peer `from` to the solo core, in the
 * core's current term; the body is zeroed for the caller to fill. */
static inline struct raft_msg solo_msg(const struct solo *s,
                                       enum raft_msg_type type, raft_id from)
{
    struct raft_msg m;

    memset(&m, 0, sizeof(m));
    m.type = type;
    m.from = from;
    m.to = raft_self(s->r);
    m.term = raft_current_term(s->r);
    return m;
}

/* Steps an APPEND_RESP from `from` saying it holds the log up to index. */
static inline void solo_ack(struct solo *s, raft_id from, raft_index index)
{
    struct raft_msg m = solo_msg(s, RAFT_MSG_APPEND_RESP, from);

    m.u.append_resp.index = index;
    solo_step(s, &m);
}

/* Makes a solo core the leader of a 3-voter cluster in term 1+ by
 * delivering granted votes (pre-vote then vote). */
static inline void solo_make_leader(struct solo *s)
{
    struct raft_msg m;

    solo_tick_to(s, s->now + 250);
    assert_int_equal(raft_role(s->r), RAFT_PRE_CANDIDATE);
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_PREVOTE_RESP;
    m.from = 2;
    m.to = raft_self(s->r);
    m.term = raft_current_term(s->r) + 1;
    m.u.vote_resp.granted = true;
    solo_step(s, &m);
    assert_int_equal(raft_role(s->r), RAFT_CANDIDATE);
    m.type = RAFT_MSG_VOTE_RESP;
    m.term = raft_current_term(s->r);
    solo_step(s, &m);
    assert_int_equal(raft_role(s->r), RAFT_LEADER);
}

#endif /* GR_TESTS_UNIT_RAFT_CLUSTER_H */
