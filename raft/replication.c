/* SPDX-License-Identifier: BSD-3-Clause
 * raft/replication.c - AppendEntries, heartbeats and the commit rules.
 *
 * The leader replicates its log with AppendEntries (paper 5.3), pipelined
 * within a window bounded in messages and bytes per follower (progress.c),
 * each message bounded by max_msg_bytes.  A rejection carries a hint so
 * the leader skips a whole term per round trip.  Commitment follows paper
 * 5.4.2: only an entry of the current term is committed by counting
 * replicas, earlier ones follow by the Log Matching property.  The leader
 * counts itself only for what the host persisted (thesis 10.2.1).
 *
 * Heartbeats are separate messages without a log check so that they never
 * disturb a pipeline; they carry the commit index capped at the follower's
 * known match.
 *
 * Entries a follower needs that have left the core's window are read back
 * from the host (config.fetch, raft.h "Memory") into a copy the append
 * owns until its batch is acknowledged; the same flow control bounds them.
 * If the host no longer holds them, the follower gets a snapshot.
 *
 * Not here: snapshots (snapshot.c), reads (readindex.c).
 */
#include <string.h>

#include "raft/internal.h"

/* Most entries one fetch asks the host for. */
#define FETCH_MAX 64

/* Appends a leader entry of the current term. */
int raft__leader_append(struct raft *r, enum raft_entry_type type,
                        const struct raft_buf *data, raft_index *index)
{
    int rv = raft__log_append(&r->log, r->term, type, data);

    if (rv != 0) {
        return rv;
    }
    if (data != NULL) {
        r->uncommitted_bytes += data->len;
    }
    *index = raft__log_last(&r->log);
    return 0;
}

/* Queues an append of n entries after prev (entries: a fetched copy the
 * message takes ownership of, or NULL: resolved against the log in
 * raft_ready) and records it in the progress.  Returns whether it was
 * queued. */
static bool queue_append(struct raft *r, struct raft__progress *pr,
                         raft_index prev, raft_term prev_term, size_t n,
                         size_t bytes, struct raft_entry *entries)
{
    struct raft_msg m;

    raft__msg_init(r, &m, RAFT_MSG_APPEND, pr->id);
    m.u.append.prev_index = prev;
    m.u.append.prev_term = prev_term;
    m.u.append.commit = r->commit;
    m.u.append.ctx = r->read_seq;
    m.u.append.n_entries = n;
    m.u.append.entries = entries;
    if (!raft__send(r, &m)) {
        raft__msg_release(r, &m);
        return false;
    }
    if (pr->state == RAFT__REPLICATE) {
        /* Pipelining: assume success and move on (etcd's optimistic
         * update); a rejection goes back to match + 1 within the window
         * (progress.c), a stall falls back to PROBE. */
        raft__progress_infl_add(pr, prev, prev + n, bytes);
        pr->next = prev + n + 1;
    } else {
        pr->probe_sent = true;
    }
    return true;
}

/* Whether the host's answer to fetch(lo, hi) is a valid slice of the log:
 * entries lo, lo + 1, ... of terms that never go down, from at least
 * floor_term, up to the leader's term, agreeing with the window's edge. */
static bool fetched_is_valid(const struct raft *r, const struct raft_entry *e,
                             size_t n, raft_index lo, raft_term floor_term)
{
    for (size_t k = 0; k < n; k++) {
        if (e[k].index != lo + k || e[k].term < floor_term ||
            e[k].term > r->term || !raft__entry_is_valid(&e[k]) ||
            e[k].index > r->log.offset ||
            (e[k].index == r->log.offset && e[k].term != r->log.offset_term)) {
            return false;
        }
        floor_term = e[k].term;
    }
    return true;
}

/* The follower needs entries from prev + 1, before the window: read them
 * back from the host, from prev itself when its term is needed too.  The
 * copy goes with the message.  If the host no longer holds them (or the
 * core has no fetch), fall back to a snapshot (paper 7). */
static bool send_fetched(struct raft *r, struct raft__progress *pr,
                         raft_index prev)
{
    struct raft_entry got[FETCH_MAX];
    struct raft_entry *copy;
    raft_term prev_term = 0;
    raft_index lo = prev;
    size_t max_bytes = r->cfg.max_msg_bytes;
    size_t n = 0;
    size_t skip = 1;
    size_t bytes = 0;
    uint8_t *p;
    int rv = -1;

    if (prev < r->log.first) {
        /* Only the snapshot's edge is known below the host's log. */
        if (prev + 1 != r->log.first ||
            !raft__term_known(r, prev, &prev_term)) {
            raft__snapshot_send(r, pr);
            return true;
        }
        lo = prev + 1;
        skip = 0;
    }
    if (pr->state == RAFT__REPLICATE &&
        r->cfg.max_inflight_bytes - pr->infl_bytes < max_bytes) {
        max_bytes = r->cfg.max_inflight_bytes - pr->infl_bytes;
    }
    if (r->cfg.fetch != NULL) {
        rv = r->cfg.fetch(r->cfg.fetch_arg, lo, r->log.offset, max_bytes, got,
                          FETCH_MAX, &n);
    }
    if (rv != 0 || n <= skip || n > FETCH_MAX ||
        !fetched_is_valid(r, got, n, lo, prev_term)) {
        /* The host's log is the authority: it lacks lo, so entries up to
         * lo can only travel in a snapshot from now on. */
        if (rv != 0 && lo + 1 > r->log.first) {
            r->log.first = lo + 1;
        }
        raft__snapshot_send(r, pr);
        return true;
    }
    if (skip == 1) {
        prev_term = got[0].term;
    }
    for (size_t k = skip; k < n; k++) {
        bytes += got[k].data.len;
    }
    copy = raft__malloc((n - skip) * sizeof(*copy) + bytes);
    if (copy == NULL) {
        return false; /* as if lost: the heartbeat timer tries again */
    }
    p = (uint8_t *)(copy + (n - skip));
    for (size_t k = skip; k < n; k++) {
        struct raft_entry *e = &copy[k - skip];

        *e = got[k];
        e->data.base = e->data.len > 0 ? p : NULL;
        if (e->data.len > 0) {
            memcpy(p, got[k].data.base, got[k].data.len);
        }
        p += e->data.len;
    }
    r->fetched_bytes += bytes;
    return queue_append(r, pr, prev, prev_term, n - skip, bytes, copy);
}

/* Sends the next append the progress state and flow control allow.
 * Returns whether a message (or a snapshot chunk) was queued. */
bool raft__send_append(struct raft *r, struct raft__progress *pr)
{
    raft_index last = raft__log_last(&r->log);
    raft_index prev;
    raft_term prev_term = 0;
    size_t n = 0;
    size_t bytes = 0;
    bool known;

    if (r->role != RAFT_LEADER || pr->id == r->cfg.id) {
        return false;
    }
    if (pr->next > last + 1) {
        pr->next = last + 1;
    }
    switch (pr->state) {
    case RAFT__SNAPSHOT:
        return false;
    case RAFT__PROBE:
        if (pr->probe_sent) {
            return false;
        }
        break;
    case RAFT__REPLICATE:
        if (raft__progress_infl_full(r, pr) || pr->next > last) {
            return false;
        }
        break;
    }
    prev = pr->next - 1;
    if (prev < r->log.offset) {
        return send_fetched(r, pr, prev);
    }
    known = raft__log_term(&r->log, prev, &prev_term);
    RAFT_ASSERT(known);
    for (raft_index i = pr->next; i <= last; i++) {
        size_t len = raft__log_get(&r->log, i)->data.len;

        if (n > 0 && bytes + len > r->cfg.max_msg_bytes) {
            break;
        }
        if (n > 0 && pr->state == RAFT__REPLICATE &&
            pr->infl_bytes + bytes + len > r->cfg.max_inflight_bytes) {
            break;
        }
        n++;
        bytes += len;
    }
    return queue_append(r, pr, prev, prev_term, n, bytes, NULL);
}

void raft__bcast_append(struct raft *r)
{
    for (size_t i = 0; i < r->n_prs && r->role == RAFT_LEADER; i++) {
        while (raft__send_append(r, &r->prs[i])) {
        }
    }
}

static void send_heartbeat(struct raft *r, const struct raft__progress *pr)
{
    struct raft_msg m;

    raft__msg_init(r, &m, RAFT_MSG_HEARTBEAT, pr->id);
    m.u.heartbeat.commit = pr->match < r->commit ? pr->match : r->commit;
    m.u.heartbeat.ctx = r->read_seq;
    raft__send(r, &m);
}

/* Paper 5.2: leaders send periodic heartbeats to maintain authority. */
void raft__bcast_heartbeat(struct raft *r)
{
    for (size_t i = 0; i < r->n_prs && r->role == RAFT_LEADER; i++) {
        if (r->prs[i].id != r->cfg.id) {
            send_heartbeat(r, &r->prs[i]);
        }
    }
}

/* Tells every follower about a new commit index: with the next append
 * where one can go, else with a heartbeat. */
static void bcast_commit(struct raft *r)
{
    for (size_t i = 0; i < r->n_prs && r->role == RAFT_LEADER; i++) {
        struct raft__progress *pr = &r->prs[i];
        bool sent = false;

        if (pr->id == r->cfg.id) {
            continue;
        }
        while (raft__send_append(r, pr)) {
            sent = true;
        }
        if (!sent) {
            send_heartbeat(r, pr);
        }
    }
}

static void commit_to(struct raft *r, raft_index index)
{
    RAFT_ASSERT(index >= r->commit);
    RAFT_ASSERT(index <= raft__log_last(&r->log));
    if (r->role == RAFT_LEADER) {
        for (raft_index i = r->commit + 1; i <= index; i++) {
            size_t len = raft__log_get(&r->log, i)->data.len;

            r->uncommitted_bytes -=
                len < r->uncommitted_bytes ? len : r->uncommitted_bytes;
        }
    }
    r->commit = index;
    raft__trace(r, RAFT_TRACE_COMMIT, r->term, index, 0);
}

/* Paper 5.3/5.4.2: "If there exists an N such that N > commitIndex, a
 * majority of matchIndex[i] >= N, and log[N].term == currentTerm: set
 * commitIndex = N."  Returns whether the commit index moved. */
bool raft__maybe_commit(struct raft *r)
{
    raft_index n;
    raft_term t;

    if (r->role != RAFT_LEADER) {
        return false;
    }
    n = raft__quorum_match(r);
    if (n <= r->commit || !raft__log_term(&r->log, n, &t) || t != r->term) {
        return false;
    }
    commit_to(r, n);
    raft__conf_after_commit(r);
    if (r->role == RAFT_LEADER) {
        bcast_commit(r);
    }
    raft__reads_check(r);
    return true;
}

/* Thesis 6.2: a leader that did not hear from a majority within an
 * election timeout steps down, so clients find the real leader and reads
 * cannot be served by a deposed one. */
void raft__check_quorum(struct raft *r)
{
    size_t active = 0;

    for (size_t i = 0; i < r->n_prs; i++) {
        struct raft__progress *pr = &r->prs[i];

        if (pr->voter && (pr->id == r->cfg.id || pr->recent_active)) {
            active++;
        }
        pr->recent_active = pr->id == r->cfg.id;
    }
    r->quorum_deadline = r->now + r->cfg.election_timeout_ms;
    if (active < raft__quorum(r)) {
        raft__trace(r, RAFT_TRACE_CHECK_QUORUM_LOST, r->term, 0, 0);
        raft__become_follower(r, r->term, 0);
    }
}

/* A pipeline that made no progress for two heartbeats lost a message:
 * fall back to probing from the last known match. */
static void stall_check(struct raft *r, struct raft__progress *pr)
{
    if (pr->infl_n == 0 || pr->match != pr->stall_match) {
        pr->stall_match = pr->match;
        pr->stall_beats = 0;
        return;
    }
    pr->stall_beats++;
    if (pr->stall_beats >= 2) {
        raft__progress_become_probe(r, pr);
    }
}

void raft__leader_tick(struct raft *r)
{
    if (r->role != RAFT_LEADER) {
        return;
    }
    if (r->now >= r->heartbeat_deadline) {
        r->heartbeat_deadline = r->now + r->cfg.heartbeat_ms;
        for (size_t i = 0; i < r->n_prs; i++) {
            struct raft__progress *pr = &r->prs[i];

            if (pr->id == r->cfg.id) {
                continue;
            }
            switch (pr->state) {
            case RAFT__PROBE:
                pr->probe_sent = false;
                break;
            case RAFT__REPLICATE:
                stall_check(r, pr);
                break;
            case RAFT__SNAPSHOT:
                raft__snapshot_tick(r, pr);
                break;
            }
        }
        raft__bcast_heartbeat(r);
    }
    if (r->cfg.check_quorum && r->now >= r->quorum_deadline) {
        raft__check_quorum(r);
    }
    raft__transfer_tick(r);
}

static void reply_append(struct raft *r, const struct raft_msg *m,
                         struct raft_msg *resp)
{
    resp->u.append_resp.ctx = m->u.append.ctx;
    raft__send(r, resp);
}

/* Receiver rules 3 and 4 (paper figure 2): an existing entry that
 * conflicts with a new one (same index, different term) is deleted with
 * all that follow it; new entries not already in the log are appended.
 * The entries follow prev_index, which matched. */
static int merge_entries(struct raft *r, const struct raft_msg *m)
{
    const struct raft_append *a = &m->u.append;
    raft_index last = raft__log_last(&r->log);
    raft_term t = 0;
    size_t k;
    bool conf_touched = false;
    int rv = 0;

    for (k = 0; k < a->n_entries; k++) {
        const struct raft_entry *e = &a->entries[k];

        if (e->index > last) {
            break;
        }
        (void)raft__log_term(&r->log, e->index, &t);
        if (t != e->term) {
            if (e->index <= r->commit) {
                r->errmsg = "append: conflicts with a committed entry";
                return RAFT_EMALFORMED;
            }
            raft__trace(r, RAFT_TRACE_TRUNCATE, r->term, e->index, m->from);
            raft__log_truncate(&r->log, e->index);
            conf_touched = true;
            break;
        }
    }
    if (k < a->n_entries) {
        rv = raft__log_reserve(&r->log, a->n_entries - k);
    }
    for (; rv == 0 && k < a->n_entries; k++) {
        const struct raft_entry *e = &a->entries[k];

        rv = raft__log_append(&r->log, e->term, e->type, &e->data);
        if (rv == 0 && e->type == RAFT_ENTRY_CONF) {
            conf_touched = true;
        }
    }
    if (conf_touched) {
        /* Thesis 4.1: a server uses the latest configuration in its log,
         * committed or not, so both truncation and append may change it. */
        raft__conf_recompute(r);
    }
    if (rv != 0) {
        r->errmsg = "append: out of memory copying entries";
    }
    return rv;
}

/* Follower side of AppendEntries (paper 5.3, figure 2 receiver rules 2-5).
 * raft.c made us a follower of m->from in m->term. */
int raft__recv_append(struct raft *r, const struct raft_msg *m)
{
    const struct raft_append *a = &m->u.append;
    raft_index last = raft__log_last(&r->log);
    raft_index last_new;
    raft_index c;
    struct raft_msg resp;
    raft_term t = 0;
    int rv;

    r->last_leader_contact = r->now;
    raft__election_reset(r);
    raft__msg_init(r, &resp, RAFT_MSG_APPEND_RESP, m->from);

    if (a->prev_index < r->commit) {
        /* Everything up to our commit index matches the leader already
         * (Leader Completeness); tell it where to continue. */
        resp.u.append_resp.index = r->commit;
        reply_append(r, m, &resp);
        return 0;
    }
    if (!raft__log_term(&r->log, a->prev_index, &t) || t != a->prev_term) {
        /* Rule 2: reply false if the log has no entry at prevLogIndex
         * whose term matches prevLogTerm; hint where our log could match
         * (paper 5.3, last paragraphs). */
        raft_index hint = a->prev_index < last ? a->prev_index : last;

        hint = raft__log_conflict_by_term(&r->log, hint, a->prev_term);
        t = 0;
        (void)raft__log_term(&r->log, hint, &t);
        resp.u.append_resp.reject = true;
        resp.u.append_resp.index = a->prev_index;
        resp.u.append_resp.hint_index = hint;
        resp.u.append_resp.hint_term = t;
        raft__trace(r, RAFT_TRACE_APPEND_REJECT, r->term, a->prev_index,
                    m->from);
        reply_append(r, m, &resp);
        return 0;
    }
    rv = merge_entries(r, m);
    if (rv != 0) {
        return rv;
    }
    /* Rule 5: commitIndex = min(leaderCommit, index of last new entry). */
    last_new = a->prev_index + (raft_index)a->n_entries;
    c = a->commit < last_new ? a->commit : last_new;
    if (c > r->commit) {
        commit_to(r, c);
    }
    resp.u.append_resp.index = last_new;
    reply_append(r, m, &resp);
    return 0;
}

/* raft__log_conflict_by_term below the window: the largest index <= index
 * in the host's log whose term is <= term.  Terms never go down along a
 * log, so a binary search reads a few entries back one at a time instead
 * of walking back one round trip per entry.  Without an answer (a fetch
 * failed) index stays as it is: the probe then walks back. */
static raft_index host_conflict_by_term(struct raft *r, raft_index index,
                                        raft_term term)
{
    struct raft_entry got[2];
    raft_index lo = r->log.first;
    raft_index hi = index;
    raft_index found = r->log.first - 1; /* none: the snapshot's edge */
    size_t n = 0;

    if (r->cfg.fetch == NULL || index < lo) {
        return index;
    }
    while (lo <= hi) {
        raft_index mid = lo + (hi - lo) / 2;

        if (r->cfg.fetch(r->cfg.fetch_arg, mid, mid, 0, got, 2, &n) != 0 ||
            n < 1 || got[0].index != mid) {
            return index;
        }
        if (got[0].term <= term) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return found;
}

/* Leader side of a rejection.  In PROBE, move nextIndex back by term
 * (etcd's MaybeDecrTo with the follower's hint) and probe again; only the
 * answer to the latest probe counts.  In REPLICATE the follower's log is
 * known to match up to match, so the window goes back there
 * (raft__progress_rejected); a rejection at or below match is stale. */
static void handle_reject(struct raft *r, struct raft__progress *pr,
                          const struct raft_append_resp *ar)
{
    raft_index hint = ar->hint_index;
    raft_index next;

    if (pr->state == RAFT__REPLICATE) {
        if (ar->index > pr->match) {
            raft__progress_rejected(r, pr, ar->index);
        }
        return;
    }
    if (pr->state != RAFT__PROBE || ar->index != pr->next - 1) {
        return; /* an answer to an older probe, or about to snapshot */
    }
    if (ar->hint_term > 0) {
        hint = raft__log_conflict_by_term(&r->log, hint, ar->hint_term);
        if (hint < r->log.offset) {
            hint = host_conflict_by_term(r, hint, ar->hint_term);
        }
    }
    next = hint + 1 < ar->index ? hint + 1 : ar->index;
    if (next < pr->match + 1) {
        next = pr->match + 1;
    }
    pr->next = next;
    pr->probe_sent = false;
}

void raft__recv_append_resp(struct raft *r, const struct raft_msg *m)
{
    const struct raft_append_resp *ar = &m->u.append_resp;
    struct raft__progress *pr = raft__progress_find(r, m->from);
    raft_index last = raft__log_last(&r->log);
    bool updated = false;

    if (pr == NULL || pr->id == r->cfg.id) {
        return;
    }
    pr->recent_active = true;
    if (ar->ctx > pr->read_ack && ar->ctx <= r->read_seq) {
        pr->read_ack = ar->ctx;
    }
    if (ar->reject) {
        handle_reject(r, pr, ar);
    } else {
        raft_index idx = ar->index <= last ? ar->index : last;

        if (idx > pr->match) {
            pr->match = idx;
            updated = true;
        }
        if (pr->next < idx + 1) {
            pr->next = idx + 1;
        }
        switch (pr->state) {
        case RAFT__PROBE:
            /* An answer older than what we know tells nothing new: keep
             * probing rather than start a window on its account. */
            if (idx >= pr->match) {
                raft__progress_become_replicate(pr);
            }
            break;
        case RAFT__REPLICATE:
            raft__progress_acked(r, pr, updated);
            break;
        case RAFT__SNAPSHOT:
            if (pr->match >= pr->snap_index) {
                raft__progress_become_probe(r, pr);
            }
            break;
        }
        if (updated) {
            raft__maybe_commit(r);
        }
        raft__transfer_check(r, pr);
    }
    raft__reads_check(r);
    while (raft__send_append(r, pr)) {
    }
}

/* raft_peer_alive for this term: liveness only, never a commit or a
 * reply. */
void raft__peer_alive(struct raft *r, raft_id from)
{
    struct raft__progress *pr;

    if (r->role == RAFT_FOLLOWER && r->leader == from) {
        r->last_leader_contact = r->now;
        raft__election_reset(r);
    } else if (r->role == RAFT_LEADER &&
               (pr = raft__progress_find(r, from)) != NULL) {
        pr->recent_active = true;
        pr->stall_beats = 0;
    }
}

/* A heartbeat: the leader is alive; commit what it says is safe for us. */
void raft__recv_heartbeat(struct raft *r, const struct raft_msg *m)
{
    raft_index last = raft__log_last(&r->log);
    raft_index c = m->u.heartbeat.commit < last ? m->u.heartbeat.commit : last;
    struct raft_msg resp;

    r->last_leader_contact = r->now;
    raft__election_reset(r);
    if (c > r->commit) {
        commit_to(r, c);
    }
    raft__msg_init(r, &resp, RAFT_MSG_HEARTBEAT_RESP, m->from);
    resp.u.hb_resp.ctx = m->u.heartbeat.ctx;
    raft__send(r, &resp);
}

void raft__recv_heartbeat_resp(struct raft *r, const struct raft_msg *m)
{
    struct raft__progress *pr = raft__progress_find(r, m->from);

    if (pr == NULL || pr->id == r->cfg.id) {
        return;
    }
    pr->recent_active = true;
    if (m->u.hb_resp.ctx > pr->read_ack && m->u.hb_resp.ctx <= r->read_seq) {
        pr->read_ack = m->u.hb_resp.ctx;
    }
    raft__reads_check(r);
    raft__transfer_check(r, pr);
    /* The follower is reachable: probe again if the heartbeat tick
     * allowed it (at most one probe per heartbeat interval). */
    if (pr->match < raft__log_last(&r->log)) {
        while (raft__send_append(r, pr)) {
        }
    }
}
