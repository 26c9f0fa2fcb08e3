/* SPDX-License-Identifier: BSD-3-Clause
 * raft/snapshot.c - snapshots: taking, sending in chunks, installing.
 *
 * Paper 7: each server compacts its log behind a snapshot of its state
 * machine; a leader whose follower needs compacted entries sends its
 * snapshot instead (InstallSnapshot), in chunks.  The host produces the
 * snapshot (raft_snapshot_done) and the core keeps a copy of the latest one
 * to stream; chunks are sent one at a time, each acknowledged with the
 * byte count received, and resent when a heartbeat round passes without
 * an answer.  A follower assembles the chunks in memory and hands the
 * whole snapshot to the host in a ready batch.
 *
 * Not here: the state machine's serialization (the host's business).
 */
#include <string.h>

#include "raft/internal.h"

void raft__snap_rx_clear(struct raft *r)
{
    raft__free(r->rx.buf);
    memset(&r->rx, 0, sizeof(r->rx));
}

static void send_chunk(struct raft *r, struct raft__progress *pr)
{
    uint64_t total = r->snap.data.len;
    uint64_t offset = pr->snap_offset < total ? pr->snap_offset : total;
    uint64_t len = total - offset;
    struct raft_msg m;

    if (len > r->cfg.max_msg_bytes) {
        len = r->cfg.max_msg_bytes;
    }
    raft__msg_init(r, &m, RAFT_MSG_SNAPSHOT, pr->id);
    m.u.snapshot.meta = r->snap.meta;
    m.u.snapshot.total_len = total;
    m.u.snapshot.offset = offset;
    m.u.snapshot.last = offset + len == total;
    m.u.snapshot.data.base = NULL; /* resolved against r->snap in ready */
    m.u.snapshot.data.len = (size_t)len;
    raft__send(r, &m);
}

/* Starts streaming the latest snapshot to a follower that needs entries
 * the log no longer has. */
void raft__snapshot_send(struct raft *r, struct raft__progress *pr)
{
    if (!r->has_snap) {
        return; /* cannot happen: only a snapshot moves the log offset */
    }
    pr->state = RAFT__SNAPSHOT;
    pr->probe_sent = false;
    raft__progress_infl_clear(pr);
    pr->snap_index = r->snap.meta.index;
    pr->snap_offset = 0;
    pr->snap_beats = 0;
    raft__trace(r, RAFT_TRACE_SNAPSHOT_SEND, r->term, pr->snap_index, pr->id);
    send_chunk(r, pr);
}

/* Retransmission: no answer for two heartbeats resends the chunk. */
void raft__snapshot_tick(struct raft *r, struct raft__progress *pr)
{
    pr->snap_beats++;
    if (pr->snap_beats < 2) {
        return;
    }
    pr->snap_beats = 0;
    if (pr->snap_index != r->snap.meta.index) {
        raft__snapshot_send(r, pr);
    } else {
        send_chunk(r, pr);
    }
}

void raft__recv_snapshot_resp(struct raft *r, const struct raft_msg *m)
{
    const struct raft_snapshot_resp *sr = &m->u.snap_resp;
    struct raft__progress *pr = raft__progress_find(r, m->from);
    raft_index last = raft__log_last(&r->log);

    if (pr == NULL || pr->id == r->cfg.id) {
        return;
    }
    pr->recent_active = true;
    if (pr->state != RAFT__SNAPSHOT) {
        return;
    }
    pr->snap_beats = 0;
    if (sr->done) {
        raft_index idx = sr->index <= last ? sr->index : last;

        if (idx > pr->match) {
            pr->match = idx;
        }
        raft__progress_become_probe(r, pr);
        (void)raft__maybe_commit(r);
        raft__transfer_check(r, pr);
        while (raft__send_append(r, pr)) {
        }
        return;
    }
    if (sr->index != pr->snap_index) {
        return; /* about an older snapshot */
    }
    if (pr->snap_index != r->snap.meta.index) {
        raft__snapshot_send(r, pr); /* we have a newer one now */
        return;
    }
    if (sr->reject) {
        pr->snap_offset = sr->offset;
        send_chunk(r, pr);
    } else if (sr->offset > pr->snap_offset && sr->offset <= r->snap.data.len) {
        pr->snap_offset = sr->offset;
        send_chunk(r, pr);
    }
}

static void reply(struct raft *r, const struct raft_msg *m, uint64_t offset,
                  bool done, bool reject)
{
    struct raft_msg resp;

    raft__msg_init(r, &resp, RAFT_MSG_SNAPSHOT_RESP, m->from);
    resp.u.snap_resp.index = m->u.snapshot.meta.index;
    resp.u.snap_resp.offset = offset;
    resp.u.snap_resp.done = done;
    resp.u.snap_resp.reject = reject;
    raft__send(r, &resp);
}

/* The last chunk arrived: the snapshot replaces our state. */
static void install(struct raft *r)
{
    const struct raft_snapshot_meta *meta = &r->rx.meta;
    raft_term t = 0;

    if (raft__log_term(&r->log, meta->index, &t) && t == meta->term) {
        /* Paper 7: "If existing log entry has same index and term as
         * snapshot's last included entry, retain log entries following
         * it": our log already holds it all, so just commit. */
        r->commit = meta->index;
        raft__trace(r, RAFT_TRACE_COMMIT, r->term, r->commit, 0);
        raft__snap_rx_clear(r);
        return;
    }
    /* Paper 7: "Discard the entire log ... Reset state machine using
     * snapshot contents."  The host does the latter from the batch. */
    raft__free(r->snap.data.base);
    r->snap.meta = *meta;
    r->snap.data.base = r->rx.buf; /* ownership moves to r->snap */
    r->snap.data.len = r->rx.len;
    r->rx.buf = NULL;
    r->has_snap = true;
    r->snap_pending = true;
    raft__snap_rx_clear(r);
    raft__log_reset(&r->log, r->snap.meta.index, r->snap.meta.term);
    r->commit = r->snap.meta.index;
    r->handed = r->snap.meta.index;
    r->applied = r->snap.meta.index;
    raft__conf_recompute(r);
    raft__trace(r, RAFT_TRACE_SNAPSHOT_INSTALL, r->term, r->snap.meta.index,
                r->leader);
}

static int rx_append(struct raft *r, const struct raft_buf *data)
{
    size_t want;

    if (data->len == 0) {
        return 0;
    }
    if (data->len > SIZE_MAX - r->rx.len) {
        return RAFT_ENOMEM;
    }
    want = r->rx.len + data->len;
    if (want > r->rx.cap) {
        size_t cap = r->rx.cap * 2 > want ? r->rx.cap * 2 : want;
        uint8_t *p = raft__realloc(r->rx.buf, cap);

        if (p == NULL) {
            return RAFT_ENOMEM;
        }
        r->rx.buf = p;
        r->rx.cap = cap;
    }
    memcpy(r->rx.buf + r->rx.len, data->base, data->len);
    r->rx.len = want;
    return 0;
}

/* Follower side of InstallSnapshot (paper 7, figure 13).  raft.c made us
 * a follower of m->from in m->term and validated the chunk. */
void raft__recv_snapshot(struct raft *r, const struct raft_msg *m)
{
    const struct raft_snapshot_chunk *c = &m->u.snapshot;

    r->last_leader_contact = r->now;
    raft__election_reset(r);
    if (c->meta.index <= r->commit) {
        /* We have it all committed already. */
        raft__snap_rx_clear(r);
        reply(r, m, c->total_len, true, false);
        return;
    }
    if (!r->rx.active || r->rx.meta.index != c->meta.index ||
        r->rx.meta.term != c->meta.term || r->rx.total_len != c->total_len) {
        raft__snap_rx_clear(r);
        if (c->offset != 0) {
            reply(r, m, 0, false, true);
            return;
        }
        r->rx.active = true;
        r->rx.meta = c->meta;
        r->rx.total_len = c->total_len;
    }
    if (c->offset < r->rx.len) {
        reply(r, m, r->rx.len, false, false); /* a duplicate */
        return;
    }
    if (c->offset > r->rx.len) {
        reply(r, m, r->rx.len, false, true); /* a gap: resend from here */
        return;
    }
    if (rx_append(r, &c->data) != 0) {
        return; /* dropped as if lost; the leader resends */
    }
    if (!c->last) {
        reply(r, m, r->rx.len, false, false);
        return;
    }
    install(r);
    reply(r, m, c->total_len, true, false);
}

int raft_snapshot_done(struct raft *r, raft_index index,
                       const struct raft_buf *data)
{
    struct raft_conf conf;
    raft_term term = 0;
    void *copy = NULL;
    raft_index upto;

    if (r->batch.active) {
        r->errmsg = "snapshot done: ready batch not acknowledged";
        return RAFT_EINVAL;
    }
    if (index == 0 || index > r->handed ||
        (r->has_snap && index <= r->snap.meta.index) ||
        !raft__log_term(&r->log, index, &term)) {
        r->errmsg = "snapshot done: index not applied or not newer";
        return RAFT_EINVAL;
    }
    if (data != NULL && data->len > 0) {
        copy = raft__malloc(data->len);
        if (copy == NULL) {
            r->errmsg = "snapshot done: out of memory copying data";
            return RAFT_ENOMEM;
        }
        memcpy(copy, data->base, data->len);
    }
    (void)raft__conf_at(r, index, &conf);
    raft__free(r->snap.data.base);
    r->snap.meta.index = index;
    r->snap.meta.term = term;
    r->snap.meta.conf = conf;
    r->snap.data.base = copy;
    r->snap.data.len = copy == NULL ? 0 : data->len;
    r->has_snap = true;
    /* Keep some entries behind the snapshot so that a follower slightly
     * behind gets entries rather than a whole snapshot. */
    upto = index > r->cfg.snapshot_trailing
               ? index - (raft_index)r->cfg.snapshot_trailing
               : 0;
    if (upto > r->log.offset) {
        raft__log_compact(&r->log, upto);
    }
    raft__trace(r, RAFT_TRACE_SNAPSHOT_TAKEN, r->term, index, 0);
    return 0;
}
