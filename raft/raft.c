/* SPDX-License-Identifier: BSD-3-Clause
 * raft/raft.c - lifecycle, message dispatch and the ready batch.
 *
 * Every input goes through here: raft_step validates a message, applies
 * the term rules every server obeys (paper 5.1, with the lease exceptions
 * of thesis 4.2.3 and the pre-vote exceptions of thesis 9.6), then hands it
 * to the file owning its concept.  Output accumulates in r->out and in the
 * log, and raft_ready turns it into one batch; appends are resolved
 * against the log only then, so queued messages never hold pointers into
 * memory that may move (an append of fetched entries owns its copy
 * instead, until the batch is acknowledged).
 *
 * Not here: the algorithms themselves (election.c, replication.c, ...).
 */
#include <string.h>

#include "raft/internal.h"

/* ---- names and errors ------------------------------------------------- */

const char *raft_strerror(int rv)
{
    switch (rv) {
    case 0:
        return "success";
#define RAFT__ERR_CASE(name, value, msg)                                       \
    case (value):                                                              \
        return (msg);
        RAFT_ERRORS(RAFT__ERR_CASE)
#undef RAFT__ERR_CASE
    default:
        return "unknown raft error";
    }
}

const char *raft_msg_type_name(int type)
{
    static const char *const names[] = {
        "UNKNOWN",        "PREVOTE",  "PREVOTE_RESP",  "VOTE",
        "VOTE_RESP",      "APPEND",   "APPEND_RESP",   "HEARTBEAT",
        "HEARTBEAT_RESP", "SNAPSHOT", "SNAPSHOT_RESP", "TIMEOUT_NOW",
    };

    if (type < 1 || type >= RAFT_MSG_TYPE_COUNT) {
        return names[0];
    }
    return names[type];
}

const char *raft_trace_type_name(int type)
{
    static const char *const names[] = {
        "UNKNOWN",
        "BECOME_FOLLOWER",
        "BECOME_PRE_CANDIDATE",
        "BECOME_CANDIDATE",
        "BECOME_LEADER",
        "VOTE_GRANTED",
        "VOTE_REJECTED",
        "PREVOTE_GRANTED",
        "PREVOTE_REJECTED",
        "ELECTION_TIMEOUT",
        "TERM_BUMP",
        "COMMIT",
        "TRUNCATE",
        "APPEND_REJECT",
        "CHECK_QUORUM_LOST",
        "CONF_CHANGE",
        "SNAPSHOT_SEND",
        "SNAPSHOT_INSTALL",
        "SNAPSHOT_TAKEN",
        "TRANSFER_START",
        "TRANSFER_TIMEOUT_NOW",
        "TRANSFER_ABORT",
        "PROBE",
        "READ_CONFIRMED",
        "STEP_DOWN_REMOVED",
        "IGNORED_DISRUPTIVE",
        "RESEND",
    };

    if (type < 1 || type >= RAFT_TRACE_TYPE_COUNT) {
        return names[0];
    }
    return names[type];
}

const char *raft_role_name(int role)
{
    switch (role) {
    case RAFT_FOLLOWER:
        return "FOLLOWER";
    case RAFT_PRE_CANDIDATE:
        return "PRE_CANDIDATE";
    case RAFT_CANDIDATE:
        return "CANDIDATE";
    case RAFT_LEADER:
        return "LEADER";
    default:
        return "UNKNOWN";
    }
}

/* ---- small shared helpers --------------------------------------------- */

void raft__msg_init(const struct raft *r, struct raft_msg *m,
                    enum raft_msg_type type, raft_id to)
{
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->from = r->cfg.id;
    m->to = to;
    m->term = r->term;
}

/* Queues a message.  Without memory it is dropped, which Raft tolerates
 * like any network loss; returns whether it was queued. */
bool raft__send(struct raft *r, const struct raft_msg *m)
{
    if (r->n_out == r->cap_out) {
        size_t cap = r->cap_out == 0 ? 16 : r->cap_out * 2;
        struct raft_msg *p = raft__realloc(r->out, cap * sizeof(*p));

        if (p == NULL) {
            return false;
        }
        r->out = p;
        r->cap_out = cap;
    }
    r->out[r->n_out++] = *m;
    return true;
}

/* Frees the fetched entries an append owns (replication.c), if any. */
void raft__msg_release(struct raft *r, struct raft_msg *m)
{
    struct raft_entry *e = (struct raft_entry *)m->u.append.entries;

    if (m->type != RAFT_MSG_APPEND || e == NULL) {
        return;
    }
    for (size_t k = 0; k < m->u.append.n_entries; k++) {
        r->fetched_bytes -= e[k].data.len;
    }
    raft__free(e); /* one block: entries, then their data */
    m->u.append.entries = NULL;
}

void raft__trace(const struct raft *r, enum raft_trace_type type,
                 raft_term term, raft_index index, raft_id peer)
{
    struct raft_trace_event ev;

    if (r->cfg.trace == NULL) {
        return;
    }
    ev.type = type;
    ev.id = r->cfg.id;
    ev.term = term;
    ev.index = index;
    ev.peer = peer;
    ev.now = r->now;
    r->cfg.trace(r->cfg.trace_arg, &ev);
}

/* ---- configuration and start ------------------------------------------ */

void raft_config_default(struct raft_config *c, raft_id id)
{
    memset(c, 0, sizeof(*c));
    c->id = id;
    c->election_timeout_ms = 1000;
    c->heartbeat_ms = 100;
    c->seed = id;
    c->max_msg_bytes = 1024 * 1024;
    c->max_inflight_bytes = 8 * 1024 * 1024;
    c->max_inflight_msgs = RAFT_MAX_INFLIGHT_MSGS;
    c->max_uncommitted_bytes = 64 * 1024 * 1024;
    c->snapshot_trailing = 1024;
    c->window_entries = 1024;
    c->window_bytes = 4 * 1024 * 1024;
    c->pre_vote = true;
    c->check_quorum = true;
}

static bool config_is_valid(const struct raft_config *c)
{
    return c->id != 0 && c->election_timeout_ms > 0 && c->heartbeat_ms > 0 &&
           c->heartbeat_ms < c->election_timeout_ms && c->max_msg_bytes > 0 &&
           c->max_inflight_bytes > 0 && c->max_inflight_msgs > 0 &&
           c->max_inflight_msgs <= RAFT_MAX_INFLIGHT_MSGS &&
           c->max_uncommitted_bytes > 0 &&
           raft__conf_is_valid(&c->initial_conf);
}

bool raft__entry_is_valid(const struct raft_entry *e)
{
    struct raft_conf c;

    if (e->type < RAFT_ENTRY_NORMAL || e->type >= RAFT_ENTRY_TYPE_COUNT ||
        e->term == 0 || (e->data.len > 0 && e->data.base == NULL)) {
        return false;
    }
    if (e->type == RAFT_ENTRY_CONF &&
        raft_conf_decode(e->data.base, e->data.len, &c) != 0) {
        return false;
    }
    return true;
}

static int restore_check(const struct raft_restore *rs)
{
    const struct raft_hard_state *hs = &rs->hard_state;
    const struct raft_snapshot *snap = rs->snapshot;
    raft_index first;
    raft_index last;

    if (hs->vote != 0 && hs->term == 0) {
        return RAFT_ECORRUPT;
    }
    if (snap != NULL && (snap->meta.index == 0 || snap->meta.term == 0 ||
                         snap->meta.term > hs->term ||
                         !raft__conf_is_valid(&snap->meta.conf))) {
        return RAFT_ECORRUPT;
    }
    if (rs->n_entries > 0 && rs->entries == NULL) {
        return RAFT_ECORRUPT;
    }
    for (size_t k = 0; k < rs->n_entries; k++) {
        const struct raft_entry *e = &rs->entries[k];

        if (!raft__entry_is_valid(e) || e->term > hs->term ||
            e->index != rs->entries[0].index + k ||
            (k > 0 && e->term < rs->entries[k - 1].term)) {
            return RAFT_ECORRUPT;
        }
    }
    last = snap != NULL ? snap->meta.index : 0;
    if (rs->n_entries > 0) {
        first = rs->entries[0].index;
        if (first == 0 || first > last + 1) {
            return RAFT_ECORRUPT; /* a gap after the snapshot */
        }
        if (snap == NULL && first != 1) {
            return RAFT_ECORRUPT;
        }
        if (snap != NULL && snap->meta.index >= first &&
            snap->meta.index < first + rs->n_entries &&
            rs->entries[snap->meta.index - first].term != snap->meta.term) {
            return RAFT_ECORRUPT;
        }
        if (rs->entries[rs->n_entries - 1].index > last) {
            last = rs->entries[rs->n_entries - 1].index;
        }
    }
    if ((snap != NULL && rs->applied < snap->meta.index) ||
        rs->applied > last) {
        return RAFT_ECORRUPT;
    }
    return 0;
}

static int restore_log(struct raft *r, const struct raft_restore *rs)
{
    const struct raft_snapshot *snap = rs->snapshot;
    size_t k = 0;
    int rv;

    if (snap == NULL) {
        raft__log_init(&r->log, 0, 0);
    } else if (rs->n_entries > 0 && rs->entries[0].index <= snap->meta.index) {
        /* Trailing entries behind the snapshot: the first one only
         * provides the term at the window's edge. */
        raft__log_init(&r->log, rs->entries[0].index, rs->entries[0].term);
        k = 1;
    } else {
        raft__log_init(&r->log, snap->meta.index, snap->meta.term);
    }
    if (rs->n_entries > 0) {
        r->log.first = rs->entries[0].index;
    }
    /* Only the window is copied: what the host applied leaves memory as
     * soon as it is past the window's tail (raft__log_trim). */
    for (; k < rs->n_entries; k++) {
        const struct raft_entry *e = &rs->entries[k];

        if (e->index > rs->applied) {
            break;
        }
        rv = raft__log_append(&r->log, e->term, e->type, &e->data);
        if (rv != 0) {
            return rv;
        }
        if (r->log.n > 2 * r->cfg.window_entries + 64 ||
            r->log.bytes / 2 > r->cfg.window_bytes) {
            r->log.persisted = e->index;
            r->handed = e->index;
            raft__log_trim(r);
        }
    }
    rv = raft__log_reserve(&r->log, rs->n_entries - k);
    for (; rv == 0 && k < rs->n_entries; k++) {
        const struct raft_entry *e = &rs->entries[k];

        rv = raft__log_append(&r->log, e->term, e->type, &e->data);
    }
    r->log.persisted = raft__log_last(&r->log);
    return rv;
}

int raft_new(const struct raft_config *config,
             const struct raft_restore *restore, uint64_t now,
             struct raft **out)
{
    static const struct raft_restore empty;
    const struct raft_restore *rs = restore != NULL ? restore : &empty;
    struct raft *r;
    raft_index c;
    int rv;

    if (config == NULL || out == NULL || !config_is_valid(config)) {
        return RAFT_EINVAL;
    }
    rv = restore_check(rs);
    if (rv != 0) {
        return rv;
    }
    r = raft__calloc(1, sizeof(*r));
    if (r == NULL) {
        rv = RAFT_ENOMEM;
        goto err;
    }
    r->cfg = *config;
    r->now = now;
    r->rng = config->seed ^ (config->id * 0x9e3779b97f4a7c15ULL);
    r->term = rs->hard_state.term;
    r->vote = rs->hard_state.vote;
    r->persisted_hs = rs->hard_state;
    r->errmsg = "";
    if (rs->snapshot != NULL) {
        r->snap = *rs->snapshot;
        r->has_snap = true;
    }
    r->handed = r->has_snap ? r->snap.meta.index : 0;
    rv = restore_log(r, rs);
    if (rv != 0) {
        goto err_close_log;
    }
    /* Everything applied was committed; the persisted commit index is a
     * hint that may save a round trip. */
    c = rs->hard_state.commit;
    if (c < rs->applied) {
        c = rs->applied;
    }
    if (r->has_snap && c < r->snap.meta.index) {
        c = r->snap.meta.index;
    }
    if (c > raft__log_last(&r->log)) {
        c = raft__log_last(&r->log);
    }
    r->commit = c;
    r->handed = rs->applied;
    r->applied = rs->applied;
    r->role = RAFT_FOLLOWER;
    raft__log_trim(r);
    raft__conf_recompute(r);
    raft__election_reset(r);
    *out = r;
    return 0;

err_close_log:
    raft__log_close(&r->log);
    raft__free(r);
err:
    RAFT_ASSERT(rv == RAFT_ENOMEM);
    return rv;
}

static void release_batch_msgs(struct raft *r);

void raft_free(struct raft *r)
{
    if (r == NULL) {
        return;
    }
    raft__log_close(&r->log);
    raft__free(r->rx.chunk.data.base);
    raft__free(r->batch.chunk.data.base);
    for (size_t i = 0; i < r->n_out; i++) {
        raft__msg_release(r, &r->out[i]);
    }
    raft__free(r->out);
    release_batch_msgs(r);
    raft__reads_close(r);
    raft__free(r);
}

/* Frees the batch's messages and the fetched entries they carry. */
static void release_batch_msgs(struct raft *r)
{
    for (size_t i = 0; i < r->batch.n_msgs; i++) {
        if (r->batch.owned[i]) {
            raft__msg_release(r, &r->batch.msgs[i]);
        }
    }
    raft__free(r->batch.msgs); /* and owned, in the same block */
    r->batch.msgs = NULL;
    r->batch.owned = NULL;
    r->batch.n_msgs = 0;
}

/* ---- inputs ----------------------------------------------------------- */

static void clock_to(struct raft *r, uint64_t now)
{
    if (now > r->now) {
        r->now = now;
    }
}

int raft_tick(struct raft *r, uint64_t now)
{
    if (r->batch.active) {
        r->errmsg = "tick: ready batch not acknowledged";
        return RAFT_EINVAL;
    }
    clock_to(r, now);
    raft__election_tick(r);
    raft__leader_tick(r);
    return 0;
}

static bool append_is_valid(const struct raft_msg *m)
{
    const struct raft_append *a = &m->u.append;
    raft_term prev_term = a->prev_term;

    if (a->prev_term > m->term || (a->n_entries > 0 && a->entries == NULL) ||
        a->prev_index > UINT64_MAX - a->n_entries) {
        return false;
    }
    for (size_t k = 0; k < a->n_entries; k++) {
        const struct raft_entry *e = &a->entries[k];

        if (e->index != a->prev_index + 1 + k || e->term < prev_term ||
            e->term > m->term || !raft__entry_is_valid(e)) {
            return false;
        }
        prev_term = e->term;
    }
    return true;
}

static bool chunk_is_valid(const struct raft_msg *m)
{
    const struct raft_snapshot_chunk *c = &m->u.snapshot;

    return c->meta.index > 0 && c->meta.term > 0 && c->meta.term <= m->term &&
           raft__conf_is_valid(&c->meta.conf) && c->offset <= c->total_len &&
           c->data.len <= c->total_len - c->offset &&
           (c->data.len == 0 || c->data.base != NULL) &&
           c->last == (c->offset + c->data.len == c->total_len);
}

static bool msg_is_valid(const struct raft *r, const struct raft_msg *m)
{
    if (m->to != r->cfg.id || m->from == 0 || m->from == r->cfg.id ||
        m->type < RAFT_MSG_PREVOTE || m->type >= RAFT_MSG_TYPE_COUNT) {
        return false;
    }
    switch (m->type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE:
        return m->u.vote.last_term <= m->term;
    case RAFT_MSG_APPEND:
        return append_is_valid(m);
    case RAFT_MSG_SNAPSHOT:
        return chunk_is_valid(m);
    default:
        return true;
    }
}

/* A message from an older term.  Paper 5.1: "If a server receives a
 * request with a stale term number, it rejects the request."  The reply
 * carries our term so a deposed leader or candidate learns it. */
static void reply_stale(struct raft *r, const struct raft_msg *m)
{
    struct raft_msg resp;

    switch (m->type) {
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_SNAPSHOT:
        raft__msg_init(r, &resp, RAFT_MSG_HEARTBEAT_RESP, m->from);
        break;
    case RAFT_MSG_PREVOTE:
        raft__msg_init(r, &resp, RAFT_MSG_PREVOTE_RESP, m->from);
        break;
    case RAFT_MSG_VOTE:
        raft__msg_init(r, &resp, RAFT_MSG_VOTE_RESP, m->from);
        break;
    default:
        return; /* a stale answer: ignore */
    }
    raft__send(r, &resp);
}

/* Paper 5.1 term rules.  Returns false when the message is fully handled
 * (ignored or answered) and must not be dispatched further. */
static bool term_rules(struct raft *r, const struct raft_msg *m)
{
    if (m->term < r->term) {
        reply_stale(r, m);
        return false;
    }
    if (m->term == r->term) {
        return true;
    }
    if (m->type == RAFT_MSG_VOTE && r->cfg.check_quorum &&
        !m->u.vote.transfer && raft__in_lease(r)) {
        /* Thesis 4.2.3: within the minimum election timeout of hearing
         * from a leader, a server neither updates its term nor grants
         * its vote; removed or partitioned servers cannot disrupt. */
        raft__trace(r, RAFT_TRACE_IGNORED_DISRUPTIVE, m->term, 0, m->from);
        return false;
    }
    if (m->type == RAFT_MSG_PREVOTE) {
        return true; /* thesis 9.6: a pre-vote changes no state */
    }
    if (m->type == RAFT_MSG_PREVOTE_RESP && m->u.vote_resp.granted) {
        return true; /* carries the term we would run in */
    }
    raft__trace(r, RAFT_TRACE_TERM_BUMP, m->term, 0, m->from);
    if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
        m->type == RAFT_MSG_SNAPSHOT) {
        raft__become_follower(r, m->term, m->from);
    } else {
        raft__become_follower(r, m->term, 0);
    }
    return true;
}

int raft_peer_alive(struct raft *r, uint64_t now, raft_id from,
                    raft_term term)
{
    if (r->batch.active) {
        r->errmsg = "peer alive: ready batch not acknowledged";
        return RAFT_EINVAL;
    }
    clock_to(r, now);
    if (term == r->term && from != 0 && from != r->cfg.id) {
        raft__peer_alive(r, from);
    }
    return 0;
}

int raft_step(struct raft *r, uint64_t now, const struct raft_msg *m)
{
    if (r->batch.active) {
        r->errmsg = "step: ready batch not acknowledged";
        return RAFT_EINVAL;
    }
    if (m == NULL || !msg_is_valid(r, m)) {
        r->errmsg = "step: malformed message";
        return RAFT_EMALFORMED;
    }
    clock_to(r, now);
    if (!term_rules(r, m)) {
        return 0;
    }
    switch (m->type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE:
        raft__recv_vote(r, m);
        return 0;
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP:
        raft__recv_vote_resp(r, m);
        return 0;
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_SNAPSHOT:
        if (r->role == RAFT_LEADER) {
            /* Election Safety (paper 5.2) allows one leader per term. */
            r->errmsg = "step: a second leader in this term";
            return RAFT_EMALFORMED;
        }
        if (r->role != RAFT_FOLLOWER || r->leader != m->from) {
            /* Paper 5.2: a candidate that hears from the leader of its
             * term returns to follower. */
            raft__become_follower(r, r->term, m->from);
        }
        if (m->type == RAFT_MSG_APPEND) {
            return raft__recv_append(r, m);
        }
        if (m->type == RAFT_MSG_HEARTBEAT) {
            raft__recv_heartbeat(r, m);
        } else {
            raft__recv_snapshot(r, m);
        }
        return 0;
    case RAFT_MSG_APPEND_RESP:
    case RAFT_MSG_HEARTBEAT_RESP:
    case RAFT_MSG_SNAPSHOT_RESP:
        if (r->role != RAFT_LEADER) {
            return 0;
        }
        if (m->type == RAFT_MSG_APPEND_RESP) {
            raft__recv_append_resp(r, m);
        } else if (m->type == RAFT_MSG_HEARTBEAT_RESP) {
            raft__recv_heartbeat_resp(r, m);
        } else {
            raft__recv_snapshot_resp(r, m);
        }
        return 0;
    case RAFT_MSG_TIMEOUT_NOW:
        raft__recv_timeout_now(r, m);
        return 0;
    default:
        return RAFT_EMALFORMED; /* excluded by msg_is_valid */
    }
}

int raft_propose(struct raft *r, const struct raft_buf *data, raft_index *index)
{
    raft_index idx = 0;
    int rv;

    if (r->batch.active || data == NULL ||
        (data->len > 0 && data->base == NULL)) {
        r->errmsg = "propose: bad arguments or batch not acknowledged";
        return RAFT_EINVAL;
    }
    if (r->role != RAFT_LEADER) {
        r->errmsg = "propose: not the leader";
        return RAFT_ENOTLEADER;
    }
    if (r->transfer_target != 0) {
        r->errmsg = "propose: leadership transfer in progress";
        return RAFT_ETRANSFER;
    }
    /* Flow control at the source: the leader holds at most
     * max_uncommitted_bytes of entries that are not committed yet, for
     * its followers' sake. The only voter commits what it persists, so
     * it waits on nobody: a host's batch of proposals is never cut. */
    if (r->uncommitted_bytes > 0 && raft__quorum(r) > 1 &&
        (data->len > r->cfg.max_uncommitted_bytes ||
         r->uncommitted_bytes > r->cfg.max_uncommitted_bytes - data->len)) {
        r->errmsg = "propose: too many uncommitted bytes";
        return RAFT_EBUSY;
    }
    rv = raft__leader_append(r, RAFT_ENTRY_NORMAL, data, &idx);
    if (rv != 0) {
        r->errmsg = "propose: out of memory";
        return rv;
    }
    /* Group commit: the appends go out in raft_ready, so every proposal
     * of the host's turn shares the same messages (and the same window
     * slots) instead of one message per proposal. */
    r->bcast_pending = true;
    if (index != NULL) {
        *index = idx;
    }
    return 0;
}

void raft_applied(struct raft *r, raft_index index)
{
    if (index > r->applied) {
        r->applied = index;
    }
}

/* ---- output ----------------------------------------------------------- */

static raft_index committed_upto(const struct raft *r)
{
    raft_index last = raft__log_last(&r->log);

    return r->commit < last ? r->commit : last;
}

static bool hs_changed(const struct raft *r)
{
    return r->persisted_hs.term != r->term || r->persisted_hs.vote != r->vote ||
           r->persisted_hs.commit != r->commit;
}

bool raft_has_ready(const struct raft *r)
{
    if (r->batch.active) {
        return false;
    }
    return hs_changed(r) || r->snap_pending || r->log.truncate_from != 0 ||
           r->bcast_pending || r->hb_pending ||
           raft__log_last(&r->log) > r->log.persisted || r->n_out > 0 ||
           committed_upto(r) > r->handed || r->n_done_reads > 0 ||
           r->rx.has_chunk || r->want_snapshot;
}

uint64_t raft_next_wakeup(const struct raft *r)
{
    uint64_t w;

    if (r->role != RAFT_LEADER) {
        return r->election_deadline;
    }
    w = r->heartbeat_deadline;
    if (r->cfg.check_quorum && r->quorum_deadline < w) {
        w = r->quorum_deadline;
    }
    if (r->transfer_target != 0 && r->transfer_deadline < w) {
        w = r->transfer_deadline;
    }
    return w;
}

/* Points a queued message at the data it carries.  Returns false when the
 * data is gone (compacted, or no longer ours to send): drop the message,
 * as the network might have.  Snapshot chunks carry no data: the host
 * fills them in (raft.h, THE HOST LOOP, step a). */
static bool resolve(const struct raft *r, struct raft_msg *m)
{
    switch (m->type) {
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_APPEND_RESP:
    case RAFT_MSG_HEARTBEAT_RESP:
    case RAFT_MSG_SNAPSHOT_RESP:
        /* An answer from a term we have left vouches for a log or vote
         * the batch may no longer persist (a newer leader truncated what
         * an older one sent in the same turn): never send it. */
        if (m->term != r->term) {
            return false;
        }
        break;
    default:
        break;
    }
    if (m->type == RAFT_MSG_APPEND && m->u.append.n_entries > 0) {
        const struct raft_append *a = &m->u.append;

        if (r->role != RAFT_LEADER || m->term != r->term) {
            return false;
        }
        if (a->entries != NULL) {
            return true; /* fetched: it owns its copy */
        }
        if (a->prev_index < r->log.offset ||
            a->prev_index + a->n_entries > raft__log_last(&r->log)) {
            return false;
        }
        m->u.append.entries = raft__log_get(&r->log, a->prev_index + 1);
        return true;
    }
    if (m->type == RAFT_MSG_SNAPSHOT) {
        struct raft_snapshot_chunk *c = &m->u.snapshot;

        if (!r->has_snap || c->meta.index != r->snap.meta.index ||
            c->meta.term != r->snap.meta.term || c->offset > r->snap.len ||
            c->data.len > r->snap.len - c->offset) {
            return false;
        }
        return true;
    }
    return true;
}

/* Thesis 10.2.1: the leader may send AppendEntries before its own disk
 * write; so may anything that vouches for no persisted state.  Everything
 * else waits for the batch to be durable.  Whatever is sent in a batch
 * that changes the term or vote waits too: the term must be durable
 * before anyone sees it used. */
static bool may_send_now(const struct raft *r, const struct raft_msg *m)
{
    if (r->persisted_hs.term != r->term || r->persisted_hs.vote != r->vote) {
        return false;
    }
    switch (m->type) {
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_SNAPSHOT:
    case RAFT_MSG_TIMEOUT_NOW:
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_PREVOTE_RESP:
        return true;
    default:
        return false;
    }
}

int raft_ready(struct raft *r, struct raft_ready *rd)
{
    struct raft_msg *msgs = NULL;
    bool *owned = NULL;
    bool *out_owned;
    size_t n_now = 0;
    size_t n_after = 0;
    raft_index last = raft__log_last(&r->log);
    raft_index upto = committed_upto(r);

    if (r->batch.active) {
        r->errmsg = "ready: previous batch not acknowledged";
        return RAFT_EINVAL;
    }
    if (r->bcast_pending) {
        r->bcast_pending = false;
        raft__bcast_append(r);
    }
    if (r->hb_pending) {
        r->hb_pending = false;
        raft__bcast_heartbeat(r);
    }
    if (r->n_out > 0) {
        /* The messages, which of them own fetched entries, and the same
         * for the queue they come from. */
        msgs = raft__malloc(r->n_out * (sizeof(*msgs) + 2 * sizeof(bool)));
        if (msgs == NULL) {
            r->errmsg = "ready: out of memory for messages";
            return RAFT_ENOMEM;
        }
        owned = (bool *)(void *)(msgs + r->n_out);
        out_owned = owned + r->n_out;
        for (size_t i = 0; i < r->n_out; i++) {
            struct raft_msg *m = &r->out[i];

            out_owned[i] =
                m->type == RAFT_MSG_APPEND && m->u.append.entries != NULL;
            if (!resolve(r, m)) {
                raft__msg_release(r, m);
                m->type = 0; /* dropped */
            }
        }
        for (int pass = 0; pass < 2; pass++) {
            for (size_t i = 0; i < r->n_out; i++) {
                struct raft_msg *m = &r->out[i];

                if (m->type == 0 || may_send_now(r, m) != (pass == 0)) {
                    continue;
                }
                msgs[n_now + n_after] = *m;
                owned[n_now + n_after] = out_owned[i];
                if (pass == 0) {
                    n_now++;
                } else {
                    n_after++;
                }
            }
        }
        r->n_out = 0;
    }
    memset(rd, 0, sizeof(*rd));
    rd->has_hard_state = hs_changed(r);
    rd->hard_state.term = r->term;
    rd->hard_state.vote = r->vote;
    rd->hard_state.commit = r->commit;
    rd->snapshot = r->snap_pending ? &r->snap : NULL;
    if (r->rx.has_chunk) {
        /* The chunk moves to the batch, which frees it in raft_advance. */
        r->batch.chunk = r->rx.chunk;
        r->batch.has_chunk = true;
        r->rx.chunk.data.base = NULL;
        r->rx.has_chunk = false;
        rd->snapshot_chunk = &r->batch.chunk;
    }
    rd->want_snapshot = r->want_snapshot;
    r->want_snapshot = false;
    rd->truncate_from = r->snap_pending ? 0 : r->log.truncate_from;
    RAFT_ASSERT(r->log.persisted >= r->log.offset);
    if (last > r->log.persisted) {
        rd->entries = raft__log_get(&r->log, r->log.persisted + 1);
        rd->n_entries = (size_t)(last - r->log.persisted);
    }
    rd->msgs_now = msgs;
    rd->n_msgs_now = n_now;
    rd->msgs_after_persist = msgs + n_now;
    rd->n_msgs_after_persist = n_after;
    if (upto > r->handed) {
        RAFT_ASSERT(r->handed >= r->log.offset);
        rd->committed = raft__log_get(&r->log, r->handed + 1);
        rd->n_committed = (size_t)(upto - r->handed);
    }
    rd->reads = r->done_reads;
    rd->n_reads = r->n_done_reads;
    rd->next_wakeup = raft_next_wakeup(r);

    r->batch.active = true;
    r->batch.hs = rd->hard_state;
    r->batch.last_entry = rd->n_entries > 0 ? last : 0;
    r->batch.snapshot = rd->snapshot != NULL;
    r->batch.committed_to = upto > r->handed ? upto : r->handed;
    r->batch.msgs = msgs;
    r->batch.owned = owned;
    r->batch.n_msgs = n_now + n_after;
    return 0;
}

void raft_advance(struct raft *r, const struct raft_ready *rd)
{
    (void)rd;
    if (!r->batch.active) {
        return;
    }
    r->persisted_hs = r->batch.hs;
    if (r->batch.snapshot) {
        r->snap_pending = false;
    }
    if (r->batch.last_entry > r->log.persisted) {
        r->log.persisted = r->batch.last_entry;
    }
    r->log.truncate_from = 0;
    r->handed = r->batch.committed_to;
    release_batch_msgs(r);
    raft__free(r->batch.chunk.data.base);
    r->batch.chunk.data.base = NULL;
    r->batch.has_chunk = false;
    r->n_done_reads = 0;
    r->batch.active = false;
    raft__log_trim(r);
    /* Our own vote may count now (a single voter becomes leader here). */
    raft__self_vote_persisted(r);
    /* Our own durable match moved: thesis 10.2.1 lets it count now. */
    if (r->role == RAFT_LEADER) {
        (void)raft__maybe_commit(r);
        raft__reads_check(r);
    }
}

/* ---- queries ---------------------------------------------------------- */

raft_id raft_self(const struct raft *r)
{
    return r->cfg.id;
}

enum raft_role raft_role(const struct raft *r)
{
    return r->role;
}

raft_id raft_leader(const struct raft *r)
{
    return r->leader;
}

raft_term raft_current_term(const struct raft *r)
{
    return r->term;
}

raft_id raft_voted_for(const struct raft *r)
{
    return r->vote;
}

raft_index raft_commit_index(const struct raft *r)
{
    return r->commit;
}

raft_index raft_last_index(const struct raft *r)
{
    return raft__log_last(&r->log);
}

raft_term raft_last_term(const struct raft *r)
{
    return raft__log_last_term(&r->log);
}

raft_index raft_first_index(const struct raft *r)
{
    return r->log.first;
}

raft_index raft_snapshot_index(const struct raft *r)
{
    return r->has_snap ? r->snap.meta.index : 0;
}

const struct raft_snapshot_meta *raft_snapshot_meta(const struct raft *r)
{
    return r->has_snap ? &r->snap.meta : NULL;
}

raft_index raft_applied_index(const struct raft *r)
{
    return r->applied;
}

const struct raft_conf *raft_conf_current(const struct raft *r)
{
    return &r->conf;
}

raft_index raft_conf_index(const struct raft *r)
{
    return r->conf_index;
}

raft_index raft_match_index(const struct raft *r, raft_id peer)
{
    if (r->role != RAFT_LEADER) {
        return 0;
    }
    if (peer == r->cfg.id) {
        return raft__self_match(r);
    }
    for (size_t i = 0; i < r->n_prs; i++) {
        if (r->prs[i].id == peer) {
            return r->prs[i].match;
        }
    }
    return 0;
}

raft_term raft_term_at(const struct raft *r, raft_index index)
{
    raft_term t = 0;

    (void)raft__log_term(&r->log, index, &t);
    return t;
}

void raft_memory(const struct raft *r, struct raft_memory *out)
{
    out->n_entries = r->log.n;
    out->entry_bytes = r->log.bytes;
    out->fetched_bytes = r->fetched_bytes;
    out->snapshot_bytes = (r->rx.has_chunk ? r->rx.chunk.data.len : 0) +
                          (r->batch.has_chunk ? r->batch.chunk.data.len : 0);
}

const char *raft_errmsg(const struct raft *r)
{
    return r->errmsg;
}
