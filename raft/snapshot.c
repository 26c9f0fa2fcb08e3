/* SPDX-License-Identifier: BSD-3-Clause
 * raft/snapshot.c - snapshots: taking, sending in chunks, installing.
 *
 * Paper 7: each server compacts its log behind a snapshot of its state
 * machine; a leader whose follower needs compacted entries sends its
 * snapshot instead (InstallSnapshot), in chunks.  The host's state machine
 * is its own snapshot store, so the core never holds a snapshot's bytes:
 * it knows the latest one by its meta and length (raft_snapshot_done),
 * sends chunk messages that say which bytes to send and lets the host fill
 * them in from its file, one chunk at a time, each acknowledged with the
 * byte count received and resent when a heartbeat round passes without an
 * answer.  A follower hands each chunk that continues the transfer to the
 * host in a ready batch, acknowledges it once that batch is persisted, and
 * on the last one tells the host to install what it received.  The core
 * holds at most one chunk, between raft_step and the next batch.
 *
 * Not here: the state machine's serialization (the host's business).
 */
#include <string.h>

#include "raft/internal.h"

/* Forgets the transfer in progress and the chunk waiting for a batch,
 * unless that chunk is the last one of the snapshot installed since: the
 * host must write it before it installs. */
void raft__snap_rx_clear(struct raft *r)
{
    struct raft_snapshot_chunk chunk = r->rx.chunk;
    bool keep = r->rx.has_chunk && chunk.last && r->snap_pending &&
                chunk.meta.index == r->snap.meta.index &&
                chunk.meta.term == r->snap.meta.term;

    if (!keep) {
        raft__free(chunk.data.base);
    }
    memset(&r->rx, 0, sizeof(r->rx));
    if (keep) {
        r->rx.chunk = chunk;
        r->rx.has_chunk = true;
    }
}

/* The term of the entry at index if the core knows it without the host:
 * in memory, at the window's edge, or the latest snapshot's. */
bool raft__term_known(const struct raft *r, raft_index index, raft_term *term)
{
    if (raft__log_term(&r->log, index, term)) {
        return true;
    }
    if (r->has_snap && index == r->snap.meta.index) {
        *term = r->snap.meta.term;
        return true;
    }
    return false;
}

static void send_chunk(struct raft *r, struct raft__progress *pr)
{
    uint64_t total = r->snap.len;
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
    m.u.snapshot.data.base = NULL; /* the host fills it (raft.h) */
    m.u.snapshot.data.len = (size_t)len;
    raft__send(r, &m);
}

/* Starts streaming the latest snapshot to a follower that needs entries
 * the log no longer has.  If there is none, or the host's log does not
 * continue it (the follower would need entries the host no longer holds
 * next), the host is asked for a newer one; the heartbeat timer
 * (raft__snapshot_tick) then starts over with it.  A snapshot the
 * follower already has is not sent (it would only bring the follower
 * back here at the speed of the network): it needs a newer one too. */
void raft__snapshot_send(struct raft *r, struct raft__progress *pr)
{
    pr->state = RAFT__SNAPSHOT;
    pr->probe_sent = false;
    raft__progress_infl_clear(pr);
    pr->snap_offset = 0;
    pr->snap_beats = 0;
    if (!r->has_snap || r->snap.meta.index + 1 < r->log.first ||
        pr->match >= r->snap.meta.index) {
        r->want_snapshot = true;
    }
    if (!r->has_snap || pr->match >= r->snap.meta.index) {
        pr->snap_index = 0; /* the tick tries again */
        return;
    }
    pr->snap_index = r->snap.meta.index;
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
    if (!r->has_snap || pr->snap_index != r->snap.meta.index) {
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
    } else if (sr->offset > pr->snap_offset && sr->offset <= r->snap.len) {
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
     * snapshot contents."  The host does both from the batch, which
     * also carries the last chunk (still in r->rx.chunk). */
    r->snap.meta = *meta;
    r->snap.len = r->rx.total_len;
    r->has_snap = true;
    r->snap_pending = true;
    r->rx.active = false;
    r->rx.len = 0;
    r->conf_below_index = 0;
    raft__log_reset(&r->log, r->snap.meta.index, r->snap.meta.term);
    r->commit = r->snap.meta.index;
    r->handed = r->snap.meta.index;
    r->applied = r->snap.meta.index;
    raft__conf_recompute(r);
    raft__trace(r, RAFT_TRACE_SNAPSHOT_INSTALL, r->term, r->snap.meta.index,
                r->leader);
}

/* Keeps a copy of the chunk for the next batch (the message is borrowed
 * for raft_step only).  Returns false without memory. */
static bool rx_take(struct raft *r, const struct raft_snapshot_chunk *c)
{
    void *copy = NULL;

    if (c->data.len > 0) {
        copy = raft__malloc(c->data.len);
        if (copy == NULL) {
            return false;
        }
        memcpy(copy, c->data.base, c->data.len);
    }
    r->rx.chunk = *c;
    r->rx.chunk.data.base = copy;
    r->rx.has_chunk = true;
    r->rx.len += c->data.len;
    return true;
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
    if (r->rx.has_chunk || !rx_take(r, c)) {
        /* One chunk per batch, and only with memory for it: dropped as
         * if lost; the leader resends. */
        return;
    }
    if (!c->last) {
        reply(r, m, r->rx.len, false, false);
        return;
    }
    install(r);
    reply(r, m, c->total_len, true, false);
}

int raft_snapshot_done(struct raft *r, const struct raft_snapshot *snap)
{
    struct raft_conf conf;
    raft_term t = 0;
    raft_index index;
    raft_index trailing = (raft_index)r->cfg.snapshot_trailing;
    raft_index first;

    if (r->batch.active || snap == NULL) {
        r->errmsg = "snapshot done: no snapshot, or batch not acknowledged";
        return RAFT_EINVAL;
    }
    index = snap->meta.index;
    if (index == 0 || index > r->handed ||
        (r->has_snap && index <= r->snap.meta.index)) {
        r->errmsg = "snapshot done: index not applied or not newer";
        return RAFT_EINVAL;
    }
    if (snap->meta.term == 0 || snap->meta.term > r->term ||
        !raft__conf_is_valid(&snap->meta.conf) ||
        (raft__log_term(&r->log, index, &t) && t != snap->meta.term)) {
        r->errmsg = "snapshot done: the term contradicts the log";
        return RAFT_EINVAL;
    }
    /* Where the core can tell the configuration as of index, the host's
     * must be the same. */
    if (index >= r->log.offset) {
        (void)raft__conf_at(r, index, &conf);
        if (!raft__conf_equal(&conf, &snap->meta.conf)) {
            r->errmsg = "snapshot done: the configuration contradicts the log";
            return RAFT_EINVAL;
        }
    }
    r->snap = *snap;
    r->has_snap = true;
    r->want_snapshot = false;
    /* The host keeps some entries behind the snapshot so that a follower
     * slightly behind gets entries rather than a whole snapshot. */
    first = index >= trailing ? index - trailing + 1 : 1;
    if (first > r->log.first) {
        r->log.first = first;
    }
    raft__trace(r, RAFT_TRACE_SNAPSHOT_TAKEN, r->term, index, 0);
    return 0;
}
