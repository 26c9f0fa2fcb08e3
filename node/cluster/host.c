/* SPDX-License-Identifier: BSD-3-Clause
 * node/cluster/host.c - the Raft host (host.h says why it is shaped so).
 *
 * Restoring: raft/ gets back the hard state, the snapshot meta (the point
 * the queue tables cover once the log was compacted behind them) and the
 * entries the log still holds. A data directory written before the node
 * ran raft/ holds a compacted log and no hard state: its queue tables
 * stand for a snapshot at the compaction point, taken in term 1 with this
 * node the only voter (those builds wrote every entry in term 1).
 *
 * Time: raft/ gets a monotonic clock. A lone voter has nobody to wait
 * for, so settling starts its election at once (raft_campaign) instead of
 * a second of silence after each start.
 *
 * Memory: raft/ keeps a window of the log (raft.h, "Memory"); a lone
 * voter's applied entries are in the tables, so its window keeps none of
 * them. No follower ever asks for old entries or a snapshot, so the host
 * gives raft/ no fetch and holds no snapshot file: the snapshot meta only
 * records the point the tables cover.
 *
 * Not here: the pipeline that calls it (node/pipeline/), peers.
 */
#include "node/cluster/host.h"

#include <stdio.h>
#include <string.h>

#include "node/gr.h"

#define SETTLE_ROUNDS 16

static enum store_entry_type store_type(enum raft_entry_type t)
{
    switch (t) {
    case RAFT_ENTRY_NOOP:
        return STORE_ENTRY_NOOP;
    case RAFT_ENTRY_CONF:
        return STORE_ENTRY_CONFIG;
    default:
        return STORE_ENTRY_COMMAND;
    }
}

static enum raft_entry_type raft_type(enum store_entry_type t)
{
    switch (t) {
    case STORE_ENTRY_NOOP:
        return RAFT_ENTRY_NOOP;
    case STORE_ENTRY_CONFIG:
        return RAFT_ENTRY_CONF;
    default:
        return RAFT_ENTRY_NORMAL;
    }
}

static int fail_store(struct gr_host *h, const char *what, int rv)
{
    snprintf(h->errmsg, sizeof(h->errmsg), "%s: %s (%s)", what,
             store_strerror(rv), store_errmsg(h->store));
    return GR_ESTORE;
}

/* What the store holds of Raft, read in one transaction: entries are
 * copied out (gr_free each data, then the array). */
struct restored {
    struct raft_restore rs;
    struct raft_snapshot snap;
    struct raft_entry *entries;
    size_t n_entries;
};

static void restored_free(struct restored *r)
{
    size_t i;

    for (i = 0; i < r->n_entries; i++) {
        gr_free(r->entries[i].data.base);
    }
    gr_free(r->entries);
    memset(r, 0, sizeof(*r));
}

static int read_entries(struct gr_host *h, struct store_txn *txn,
                        uint64_t first, uint64_t last, struct restored *out)
{
    uint64_t i;
    int rv;

    if (first == 0 || last < first) {
        return 0;
    }
    out->entries = gr_calloc((size_t)(last - first + 1), sizeof(*out->entries));
    if (out->entries == NULL) {
        return GR_ENOMEM;
    }
    for (i = first; i <= last; i++) {
        struct store_entry e;
        struct raft_entry *re = &out->entries[out->n_entries];

        rv = store_log_get(txn, i, &e);
        if (rv != 0) {
            return fail_store(h, "reading the log", rv);
        }
        re->index = e.index;
        re->term = e.term;
        re->type = raft_type(e.type);
        re->data.len = e.data.len;
        re->data.base = gr_malloc(e.data.len > 0 ? e.data.len : 1);
        if (re->data.base == NULL) {
            return GR_ENOMEM;
        }
        if (e.data.len > 0) {
            memcpy(re->data.base, e.data.base, e.data.len);
        }
        out->n_entries++;
    }
    return 0;
}

static void conf_alone(struct raft_conf *c, uint64_t id)
{
    memset(c, 0, sizeof(*c));
    c->n_members = 1;
    c->members[0].id = id;
    c->members[0].voter = true;
}

static int read_restore(struct gr_host *h, struct restored *out)
{
    struct store_txn *txn;
    struct store_snap_meta sm;
    uint64_t first;
    uint64_t last;
    int rv;

    memset(out, 0, sizeof(*out));
    rv = store_txn_begin(h->store, false, &txn);
    if (rv != 0) {
        return fail_store(h, "reading the Raft state", rv);
    }
    rv = store_hs_get(txn, (struct store_hard_state *)&out->rs.hard_state);
    if (rv == 0) {
        rv = store_log_bounds(txn, &first, &last);
    }
    if (rv == 0) {
        rv = store_applied_index(txn, &h->applied);
    }
    if (rv != 0) {
        store_txn_abort(txn);
        return fail_store(h, "reading the Raft state", rv);
    }
    rv = store_snap_meta_get(txn, &sm);
    if (rv == 0) {
        out->snap.meta.index = sm.index;
        out->snap.meta.term = sm.term;
        if (h->snaps_open) {
            int64_t len = gr_snaps_size(&h->snaps, sm.index, sm.term);

            out->snap.len = len > 0 ? (uint64_t)len : 0;
        }
        if (raft_conf_decode(sm.conf.base, sm.conf.len, &out->snap.meta.conf) !=
            0) {
            store_txn_abort(txn);
            snprintf(h->errmsg, sizeof(h->errmsg),
                     "the snapshot meta's membership does not decode");
            return GR_ESTORE;
        }
        out->rs.snapshot = &out->snap;
    } else if (rv == STORE_ENOTFOUND) {
        /* Before Raft: the tables stand for a snapshot at the point the
         * log was compacted to (entries before `first` are gone). */
        uint64_t point = first != 0 ? first - 1 : last;

        if (point > 0) {
            out->snap.meta.index = point;
            out->snap.meta.term = 1;
            conf_alone(&out->snap.meta.conf, h->cfg.node_id);
            out->rs.snapshot = &out->snap;
        }
        if ((point > 0 || first != 0) && out->rs.hard_state.term < 1) {
            out->rs.hard_state.term = 1; /* those builds' one term */
        }
    } else {
        store_txn_abort(txn);
        return fail_store(h, "reading the snapshot meta", rv);
    }
    rv = read_entries(h, txn, first, last, out);
    store_txn_abort(txn);
    if (rv != 0) {
        return rv;
    }
    out->rs.entries = out->entries;
    out->rs.n_entries = out->n_entries;
    out->rs.applied = h->applied;
    return 0;
}

void gr_host_fetch_done(struct gr_host *h)
{
    if (h->fetch_txn != NULL) {
        store_txn_abort(h->fetch_txn);
        h->fetch_txn = NULL;
    }
}

/* raft/'s fetch (raft.h, raft_fetch_fn): entries lo.. from the store's
 * log, borrowed from the transaction until the next call. */
static int fetch(void *arg, raft_index lo, raft_index hi, size_t max_bytes,
                 struct raft_entry *out, size_t max_n, size_t *n)
{
    struct gr_host *h = arg;
    struct store_txn *txn = h->write_txn;
    size_t bytes = 0;
    size_t k = 0;
    raft_index i;

    gr_host_fetch_done(h);
    if (txn == NULL) {
        if (store_txn_begin(h->store, false, &h->fetch_txn) != 0) {
            return -1;
        }
        txn = h->fetch_txn;
    }
    for (i = lo; i <= hi && k < max_n; i++) {
        struct store_entry e;

        if (store_log_get(txn, i, &e) != 0) {
            if (k == 0) {
                return -1; /* compacted: raft/ sends a snapshot */
            }
            break;
        }
        if (k >= 1 && !(k == 1 && hi > lo) && bytes + e.data.len > max_bytes) {
            break;
        }
        if (k >= 1) {
            bytes += e.data.len;
        }
        out[k].index = e.index;
        out[k].term = e.term;
        out[k].type = raft_type(e.type);
        out[k].data.base = (void *)(uintptr_t)e.data.base;
        out[k].data.len = e.data.len;
        k++;
    }
    *n = k;
    return 0;
}

/* Counts the leader's falls back to resending a follower's log (a lost
 * append, or one it judged lost), for the metrics. */
static void on_trace(void *arg, const struct raft_trace_event *ev)
{
    struct gr_host *h = arg;

    if (ev->type == RAFT_TRACE_PROBE || ev->type == RAFT_TRACE_RESEND) {
        h->n_resends++;
        GR_LOG(GR_LOG_DEBUG, "cluster",
               "term %llu: resending node %llu the log from %llu (%s)",
               (unsigned long long)ev->term, (unsigned long long)ev->peer,
               (unsigned long long)ev->index,
               raft_trace_type_name((int)ev->type));
    }
}

static int new_raft(struct gr_host *h, uint64_t now_ms)
{
    struct raft_config rc;
    struct restored r;
    int rv;

    rv = read_restore(h, &r);
    if (rv != 0) {
        restored_free(&r);
        return rv;
    }
    raft_config_default(&rc, h->cfg.node_id);
    if (h->cfg.joiner) {
        memset(&rc.initial_conf, 0, sizeof(rc.initial_conf));
    } else if (h->cfg.initial_conf.n_members > 0) {
        rc.initial_conf = h->cfg.initial_conf;
    } else {
        conf_alone(&rc.initial_conf, h->cfg.node_id);
    }
    if (h->cfg.election_ms > 0) {
        rc.election_timeout_ms = h->cfg.election_ms;
    }
    if (h->cfg.heartbeat_ms > 0) {
        rc.heartbeat_ms = h->cfg.heartbeat_ms;
    }
    if (h->cfg.seed != 0) {
        rc.seed = h->cfg.seed;
    }
    if (rc.max_uncommitted_bytes < h->cfg.max_entry_bytes) {
        rc.max_uncommitted_bytes = h->cfg.max_entry_bytes;
    }
    if (h->cfg.member) {
        /* A window of the log in memory; older entries come back from
         * the store, which keeps up to half a snapshot interval (at most
         * 1,024) behind the latest snapshot, so that a follower slightly
         * behind gets entries rather than a whole snapshot. */
        uint64_t every = h->cfg.snapshot_every > 0 ? h->cfg.snapshot_every
                                                   : 10000;

        rc.fetch = fetch;
        rc.fetch_arg = h;
        rc.trace = on_trace;
        rc.trace_arg = h;
        rc.snapshot_trailing = every / 2 < 1024 ? (size_t)(every / 2) : 1024;
    } else {
        /* Applied entries are in the tables: keep none in memory. */
        rc.snapshot_trailing = 0;
        rc.window_entries = 0;
        rc.window_bytes = 0;
    }
    rv = raft_new(&rc, &r.rs, now_ms, &h->raft);
    restored_free(&r);
    if (rv != 0) {
        snprintf(h->errmsg, sizeof(h->errmsg),
                 "restoring the Raft state from the data directory: %s",
                 raft_strerror(rv));
        return rv == RAFT_ENOMEM ? GR_ENOMEM : GR_ESTORE;
    }
    h->committed_out = h->applied;
    return 0;
}

int gr_host_open(struct gr_host *h, struct store *store,
                 const struct gr_host_config *cfg, uint64_t now_ms,
                 char *errmsg, size_t errmsg_len)
{
    int rv;

    memset(h, 0, sizeof(*h));
    h->store = store;
    h->cfg = *cfg;
    if (cfg->member && cfg->snap_dir != NULL) {
        rv = gr_snaps_init(&h->snaps, cfg->snap_dir, store);
        if (rv != 0) {
            snprintf(errmsg, errmsg_len, "%s", h->snaps.errmsg);
            return rv;
        }
        h->snaps_open = true;
    }
    rv = new_raft(h, now_ms);
    if (rv != 0) {
        snprintf(errmsg, errmsg_len, "%s", h->errmsg);
    }
    return rv;
}

void gr_host_close(struct gr_host *h)
{
    gr_host_fetch_done(h);
    if (h->snaps_open) {
        gr_snaps_close(&h->snaps);
        h->snaps_open = false;
    }
    raft_free(h->raft);
    h->raft = NULL;
}

/* True if id is the only voter of the configuration in force. */
static bool only_voter(const struct gr_host *h)
{
    const struct raft_conf *c = raft_conf_current(h->raft);
    size_t voters = 0;
    size_t i;
    bool self = false;

    for (i = 0; i < c->n_members; i++) {
        if (c->members[i].voter) {
            voters++;
            self |= c->members[i].id == h->cfg.node_id;
        }
    }
    return voters == 1 && self;
}

bool gr_host_decides_alone(const struct gr_host *h)
{
    return h->raft != NULL && !h->needs_settle && only_voter(h) &&
           raft_role(h->raft) == RAFT_LEADER;
}

uint64_t gr_host_next_index(const struct gr_host *h)
{
    return raft_last_index(h->raft) + 1;
}

/* Applies committed entries the caller did not apply itself (a no-op,
 * a configuration, commands of a restore), in order, skipping what the
 * tables have. Effects go to fx (NULL: dropped). */
static int apply_committed(struct gr_host *h, struct store_txn *txn,
                           const struct raft_entry *v, size_t n,
                           struct store_effects *fx)
{
    struct store_effects scratch;
    struct store_effects *out = fx;
    size_t i;
    int rv = 0;

    if (out == NULL) {
        store_effects_init(&scratch);
        out = &scratch;
    }
    for (i = 0; i < n && rv == 0; i++) {
        const struct raft_entry *e = &v[i];
        struct store_cmd noop;
        struct store_cmd *cmd = &noop;

        if (e->index <= h->applied) {
            continue;
        }
        memset(&noop, 0, sizeof(noop));
        noop.type = STORE_CMD_NOOP;
        if (e->type == RAFT_ENTRY_NORMAL) {
            rv = store_cmd_decode(e->data.base, e->data.len, &cmd);
            if (rv != 0) {
                break;
            }
        }
        rv = store_apply(txn, e->index, cmd->time_ms, cmd, out);
        if (cmd != &noop) {
            store_cmd_free(cmd);
        }
        if (rv == 0) {
            h->applied = e->index;
        }
    }
    if (out == &scratch) {
        store_effects_close(&scratch);
    }
    return rv;
}

/* The snapshot received in chunks replaces the queue tables; every log
 * entry goes (the log now ends at the snapshot); its meta is recorded.
 * The file is kept as this node's latest once the transaction commits. */
static int install_snapshot(struct gr_host *h, struct store_txn *txn,
                            const struct raft_snapshot *snap)
{
    uint8_t conf[2 + RAFT_MAX_MEMBERS * 9];
    struct store_snap_meta sm;
    uint64_t index = 0;
    int rv;

    rv = gr_snaps_rx_install(&h->snaps, txn, &index);
    if (rv == 0 && index != snap->meta.index) {
        rv = STORE_EMALFORMED; /* not the snapshot it claims to be */
    }
    if (rv == 0) {
        rv = store_log_compact(txn, snap->meta.index);
    }
    if (rv == 0) {
        rv = store_log_truncate(txn, snap->meta.index + 1);
    }
    if (rv != 0) {
        return rv;
    }
    raft_conf_encode(&snap->meta.conf, conf);
    sm.index = snap->meta.index;
    sm.term = snap->meta.term;
    sm.conf.base = conf;
    sm.conf.len = raft_conf_encoded_len(&snap->meta.conf);
    rv = store_snap_meta_set(txn, &sm);
    if (rv != 0) {
        return rv;
    }
    h->applied = snap->meta.index;
    h->rx_installed = true;
    h->rx_index = snap->meta.index;
    h->rx_term = snap->meta.term;
    return 0;
}

int gr_host_persist_ready(struct gr_host *h, struct store_txn *txn)
{
    struct raft_ready *rd = &h->rd;
    size_t i;
    int rv;

    if (h->has_ready) {
        return STORE_EINVAL;
    }
    rv = raft_ready(h->raft, rd);
    if (rv != 0) {
        return STORE_ENOMEM;
    }
    h->has_ready = true;
    if ((rd->snapshot != NULL || rd->snapshot_chunk != NULL) &&
        !h->snaps_open) {
        return STORE_EINVAL; /* a lone voter receives no snapshot */
    }
    if (rd->has_hard_state) {
        struct store_hard_state hs = {rd->hard_state.term, rd->hard_state.vote,
                                      rd->hard_state.commit};

        rv = store_hs_set(txn, &hs);
        if (rv != 0) {
            return rv;
        }
    }
    if (rd->snapshot_chunk != NULL) {
        const struct raft_snapshot_chunk *ck = rd->snapshot_chunk;

        if (gr_snaps_rx_write(&h->snaps, ck->offset, ck->data.base,
                              ck->data.len) != 0) {
            return STORE_EIO;
        }
    }
    if (rd->snapshot != NULL) {
        rv = install_snapshot(h, txn, rd->snapshot);
        if (rv != 0) {
            return rv;
        }
    }
    if (rd->truncate_from != 0) {
        rv = store_log_truncate(txn, rd->truncate_from);
        if (rv != 0) {
            return rv;
        }
    }
    for (i = 0; i < rd->n_entries; i++) {
        const struct raft_entry *re = &rd->entries[i];
        struct store_entry e;

        memset(&e, 0, sizeof(e));
        e.index = re->index;
        e.term = re->term;
        e.type = store_type(re->type);
        e.data.base = re->data.base;
        e.data.len = re->data.len;
        rv = store_log_append(txn, &e);
        if (rv != 0) {
            return rv;
        }
    }
    for (i = 0; i < rd->n_committed; i++) {
        if (rd->committed[i].index > h->committed_out) {
            h->committed_out = rd->committed[i].index;
        }
    }
    return 0;
}

int gr_host_persist(struct gr_host *h, struct store_txn *txn)
{
    int rv = gr_host_persist_ready(h, txn);

    if (rv != 0) {
        return rv;
    }
    return apply_committed(h, txn, h->rd.committed, h->rd.n_committed, NULL);
}

int gr_host_apply_entry(struct gr_host *h, struct store_txn *txn,
                        const struct raft_entry *e, struct store_effects *fx,
                        struct store_cmd **cmd_out)
{
    struct store_cmd noop;
    struct store_cmd *cmd = NULL;
    int rv;

    *cmd_out = NULL;
    if (e->index <= h->applied) {
        return 0;
    }
    if (e->type == RAFT_ENTRY_NORMAL) {
        rv = store_cmd_decode(e->data.base, e->data.len, &cmd);
        if (rv != 0) {
            return rv;
        }
        rv = store_apply(txn, e->index, cmd->time_ms, cmd, fx);
    } else {
        memset(&noop, 0, sizeof(noop));
        noop.type = STORE_CMD_NOOP;
        rv = store_apply(txn, e->index, 0, &noop, fx);
    }
    if (rv != 0) {
        store_cmd_free(cmd);
        return rv;
    }
    h->applied = e->index;
    *cmd_out = cmd;
    return 0;
}

int gr_host_propose(struct gr_host *h, struct store_cmd *cmd, uint64_t wall_ms,
                    uint64_t *index)
{
    struct raft_buf data;
    uint8_t *buf;
    size_t len;
    int rv;

    if (h->has_ready || !gr_host_decides_alone(h)) {
        snprintf(h->errmsg, sizeof(h->errmsg),
                 "propose: this node does not decide alone now");
        return GR_EINVAL;
    }
    cmd->time_ms = wall_ms;
    rv = store_cmd_encode(cmd, &buf, &len);
    if (rv != 0) {
        snprintf(h->errmsg, sizeof(h->errmsg), "encoding a command: %s",
                 store_strerror(rv));
        return rv == STORE_ENOMEM ? GR_ENOMEM : GR_EINVAL;
    }
    data.base = buf;
    data.len = len;
    rv = raft_propose(h->raft, &data, index);
    store_free(buf);
    if (rv != 0) {
        snprintf(h->errmsg, sizeof(h->errmsg), "%s", raft_errmsg(h->raft));
        return rv == RAFT_ENOMEM ? GR_ENOMEM : GR_EINVAL;
    }
    return 0;
}

int gr_host_compact(struct gr_host *h, struct store_txn *txn, uint64_t applied)
{
    const struct raft_conf *conf = raft_conf_current(h->raft);
    uint8_t buf[2 + RAFT_MAX_MEMBERS * 9];
    struct store_snap_meta sm;
    int rv;

    if (applied > h->applied) {
        h->applied = applied;
    }
    if (h->applied == 0) {
        return 0;
    }
    rv = store_log_compact(txn, h->applied);
    if (rv != 0) {
        return rv;
    }
    raft_conf_encode(conf, buf);
    sm.index = h->applied;
    sm.term = raft_term_at(h->raft, h->applied);
    if (sm.term == 0) {
        sm.term = raft_current_term(h->raft);
    }
    sm.conf.base = buf;
    sm.conf.len = raft_conf_encoded_len(conf);
    return store_snap_meta_set(txn, &sm);
}

int gr_host_advance(struct gr_host *h, bool ok, uint64_t now_ms)
{
    int rv;

    if (h->has_ready) {
        if (ok) {
            raft_advance(h->raft, &h->rd);
        }
        h->has_ready = false;
    }
    if (ok) {
        raft_applied(h->raft, h->applied);
        return 0;
    }
    /* Nothing of the batch is on disk: start over from what is. Reads in
     * the old core's hands are forgotten; their askers ask again. */
    h->n_reads = 0;
    gr_fwdseen_clear(&h->fwd_seen);
    raft_free(h->raft);
    h->raft = NULL;
    h->needs_settle = true;
    rv = new_raft(h, now_ms);
    return rv;
}

bool gr_host_needs_settle(const struct gr_host *h)
{
    return h->needs_settle;
}

/* Tells raft/ the tables are a snapshot up to what they applied (the
 * core frees those entries itself; this moves raft_first_index on with
 * the store's compaction). Skipped while the term of that entry has left
 * raft/'s memory: the next batch catches up. */
static void drop_applied(struct gr_host *h)
{
    struct raft_snapshot snap;
    uint64_t upto = h->committed_out < h->applied ? h->committed_out
                                                  : h->applied;

    memset(&snap, 0, sizeof(snap));
    snap.meta.index = upto;
    snap.meta.term = raft_term_at(h->raft, upto);
    snap.meta.conf = *raft_conf_current(h->raft);
    if (upto > raft_snapshot_index(h->raft) && snap.meta.term != 0) {
        (void)raft_snapshot_done(h->raft, &snap);
    }
}

/* One round of a lone voter's start: tick, then write what raft/ asks in
 * a transaction of its own, synced. */
static int settle_round(struct gr_host *h, uint64_t now_ms)
{
    struct store_txn *txn;
    int rv;

    (void)raft_tick(h->raft, now_ms);
    if (!raft_has_ready(h->raft)) {
        return 0;
    }
    rv = store_txn_begin(h->store, true, &txn);
    if (rv != 0) {
        return fail_store(h, "starting as the lone voter", rv);
    }
    rv = gr_host_persist(h, txn);
    if (rv == 0 && only_voter(h) && raft_role(h->raft) == RAFT_LEADER) {
        rv = gr_host_compact(h, txn, h->applied);
    }
    if (rv != 0) {
        store_txn_abort(txn);
        (void)gr_host_advance(h, false, now_ms);
        return fail_store(h, "starting as the lone voter", rv);
    }
    rv = store_txn_commit(txn);
    if (rv == 0) {
        rv = store_sync(h->store);
    }
    if (rv != 0) {
        (void)gr_host_advance(h, false, now_ms);
        return fail_store(h, "starting as the lone voter", rv);
    }
    return gr_host_advance(h, true, now_ms);
}

int gr_host_settle(struct gr_host *h, uint64_t now_ms, uint64_t wall_ms)
{
    int i;
    int rv;

    (void)wall_ms;
    if (!only_voter(h)) {
        snprintf(h->errmsg, sizeof(h->errmsg),
                 "this node is not the only voter of its configuration");
        return GR_EINVAL;
    }
    /* Nobody else to hear from: start the election now rather than
     * after a timeout. */
    if (raft_role(h->raft) != RAFT_LEADER) {
        (void)raft_campaign(h->raft);
    }
    for (i = 0; i < SETTLE_ROUNDS; i++) {
        if (raft_role(h->raft) == RAFT_LEADER &&
            h->applied == raft_last_index(h->raft)) {
            drop_applied(h);
            h->needs_settle = false;
            return 0;
        }
        rv = settle_round(h, now_ms);
        if (rv != 0) {
            return rv;
        }
    }
    snprintf(h->errmsg, sizeof(h->errmsg),
             "the lone voter did not become leader in %d rounds",
             SETTLE_ROUNDS);
    return GR_ESTORE;
}

void gr_host_batch_begin(struct gr_host *h)
{
    drop_applied(h);
}

uint64_t gr_host_term(const struct gr_host *h)
{
    return raft_current_term(h->raft);
}

uint64_t gr_host_commit(const struct gr_host *h)
{
    return raft_commit_index(h->raft);
}

uint64_t gr_host_applied(const struct gr_host *h)
{
    return h->applied;
}

void gr_host_view(const struct gr_host *h, struct gr_raft_view *out)
{
    const struct raft_conf *c = raft_conf_current(h->raft);
    size_t i;

    memset(out, 0, sizeof(*out));
    out->role = (int)raft_role(h->raft);
    out->leader_id = raft_leader(h->raft);
    out->term = raft_current_term(h->raft);
    out->commit = raft_commit_index(h->raft);
    out->applied = h->applied;
    out->last_index = raft_last_index(h->raft);
    out->fwd_dropped = h->n_fwd_dropped;
    out->resends = h->n_resends;
    for (i = 0; i < c->n_members && i < RAFT_MAX_MEMBERS; i++) {
        out->members[i].id = c->members[i].id;
        out->members[i].voter = c->members[i].voter;
        out->members[i].match =
            c->members[i].id == h->cfg.node_id
                ? raft_last_index(h->raft)
                : raft_match_index(h->raft, c->members[i].id);
    }
    out->n_members = i;
}
