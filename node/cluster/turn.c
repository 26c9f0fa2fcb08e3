/* SPDX-License-Identifier: BSD-3-Clause
 * node/cluster/turn.c - a member's Raft turn (turn.h says why it is
 * shaped so).
 *
 * The order inside a write is raft/raft.h's: messages that may leave
 * before anything is persisted (a leader's appends) go out first, so
 * that followers write while the leader does; the transaction holds the
 * hard state, the entries and the apply of what is committed; only after
 * the commit and its sync do the answers that vouch for the write (votes,
 * acknowledgments) go out, and raft/ hears it with raft_advance.
 *
 * Not here: which local commands to propose or forward (the pipeline).
 */
#include "node/cluster/turn.h"

#include <stdio.h>
#include <string.h>

#include "node/cluster/peer_codec.h"
#include "node/gr.h"

struct gr_frame *gr_frame_new(uint64_t peer, size_t len)
{
    struct gr_frame *f = gr_malloc(sizeof(*f) + (len > 0 ? len : 1));

    if (f == NULL) {
        return NULL;
    }
    f->next = NULL;
    f->peer = peer;
    f->len = len;
    return f;
}

void gr_frames_free(struct gr_frame *f)
{
    while (f != NULL) {
        struct gr_frame *next = f->next;

        gr_free(f);
        f = next;
    }
}

static uint64_t raft_now(const struct gr_host *h, const struct gr_turn *t)
{
    (void)h;
    return t->mono_ms;
}

/* Proposes cmd (len bytes) with the extra fields in tail (the leader's
 * verdict, for a membership change) and the stamp. */
static int propose_bytes(struct gr_host *h, struct gr_turn *t,
                         const uint8_t *cmd, size_t len, const uint8_t *tail,
                         size_t tail_len, uint64_t *index)
{
    struct raft_buf data;
    uint8_t *buf;
    int rv;

    buf = gr_malloc(len + tail_len + STORE_CMD_STAMP_MAX);
    if (buf == NULL) {
        return GR_ENOMEM;
    }
    memcpy(buf, cmd, len);
    if (tail_len > 0) {
        memcpy(buf + len, tail, tail_len);
    }
    data.base = buf;
    data.len = len + tail_len;
    data.len += store_cmd_stamp(t->wall_ms, buf + data.len);
    rv = raft_propose(h->raft, &data, index);
    gr_free(buf);
    if (rv == RAFT_ENOMEM) {
        return GR_ENOMEM;
    }
    return rv == 0 ? 0 : GR_EINVAL;
}

/* raft/'s answer to a membership change as a verdict for apply; -1: not
 * now (a transfer is running, or this node no longer leads: the origin
 * sends the command again). */
static int verdict_of(int rv, enum store_member_op op)
{
    switch (rv) {
    case 0:
        return STORE_VERDICT_OK;
    case RAFT_EBUSY:
        return STORE_VERDICT_BUSY;
    case RAFT_ECATCHUP:
        return STORE_VERDICT_CATCHUP;
    case RAFT_ETOOMANY:
        return STORE_VERDICT_TOO_MANY;
    case RAFT_ENOTFOUND:
        return STORE_VERDICT_UNKNOWN;
    case RAFT_ETRANSFER:
    case RAFT_ENOTLEADER:
    case RAFT_ENOMEM:
        return -1;
    case RAFT_EINVAL:
        return op == STORE_MEMBER_REMOVE    ? STORE_VERDICT_LAST_VOTER
               : op == STORE_MEMBER_PROMOTE ? STORE_VERDICT_VOTER
                                            : STORE_VERDICT_EXISTS;
    default:
        return STORE_VERDICT_FAILED;
    }
}

/* A transfer's verdict, judged before anything is proposed: raft/ takes
 * no proposal once a transfer runs, so its entry goes first. */
static uint32_t transfer_verdict(const struct gr_host *h, uint64_t target)
{
    const struct raft_conf *c = raft_conf_current(h->raft);
    const struct raft_member *m;
    size_t voters = 0;
    size_t i;

    for (i = 0; i < c->n_members; i++) {
        voters += c->members[i].voter && c->members[i].id != h->cfg.node_id;
    }
    if (target == 0) {
        return voters > 0 ? STORE_VERDICT_OK : STORE_VERDICT_NO_VOTER;
    }
    if (target == h->cfg.node_id) {
        return STORE_VERDICT_SELF;
    }
    m = raft_conf_find(c, target);
    if (m == NULL) {
        return STORE_VERDICT_UNKNOWN;
    }
    return m->voter ? STORE_VERDICT_OK : STORE_VERDICT_NOT_VOTER;
}

/* True when the replicated state knows commands of node id: a name is
 * used once. A node that comes back with a fresh directory would start
 * its incarnations from 1 again, and the replay table would take every
 * command of it for a stale one (storage/apply.c, "Replays"). */
static bool name_used(struct gr_host *h, uint64_t id)
{
    struct store_txn *txn;
    uint64_t inc = 0;

    if (store_txn_begin(h->store, false, &txn) != 0) {
        return false;
    }
    (void)store_node_incarnation(txn, id, &inc);
    store_txn_abort(txn);
    return inc > 0;
}

/* A membership change (STORE_CMD_MEMBER) reaching the leader: tried on
 * raft/ (its CONF entry goes first), then proposed with the verdict, so
 * that every node's apply answers the admin connection and records the
 * member table's side. A transfer's entry goes first, then the
 * transfer starts. */
static int propose_member(struct gr_host *h, struct gr_turn *t,
                          const uint8_t *cmd, size_t len, uint64_t *index)
{
    struct store_cmd *c;
    uint8_t tail[STORE_CMD_STAMP_MAX];
    enum store_member_op op;
    uint64_t id;
    int verdict;
    int rv;

    rv = store_cmd_decode(cmd, len, &c);
    if (rv == STORE_ENOMEM) {
        return GR_ENOMEM;
    }
    if (rv != 0) {
        GR_LOG(GR_LOG_WARN, "cluster",
               "a membership change does not decode: dropped");
        return 0;
    }
    id = c->u.member.member.id;
    op = c->u.member.op;
    store_cmd_free(c);
    switch (op) {
    case STORE_MEMBER_ADD:
        if (raft_conf_find(raft_conf_current(h->raft), id) == NULL &&
            name_used(h, id)) {
            verdict = STORE_VERDICT_USED;
            break;
        }
        verdict = verdict_of(raft_add_learner(h->raft, id, NULL),
                             STORE_MEMBER_ADD);
        break;
    case STORE_MEMBER_PROMOTE:
        verdict = verdict_of(raft_promote(h->raft, id, NULL),
                             STORE_MEMBER_PROMOTE);
        break;
    case STORE_MEMBER_REMOVE:
        verdict = verdict_of(raft_remove(h->raft, id, NULL),
                             STORE_MEMBER_REMOVE);
        break;
    default:
        verdict = (int)transfer_verdict(h, id);
        break;
    }
    if (verdict < 0) {
        return GR_EINVAL;
    }
    if (verdict != STORE_VERDICT_OK) {
        GR_LOG(GR_LOG_NOTICE, "cluster", "membership change refused: %s",
               store_member_verdict_text((uint32_t)verdict));
    }
    rv = propose_bytes(h, t, cmd, len, tail,
                       store_cmd_verdict((uint32_t)verdict, tail), index);
    if (rv != 0 && verdict == STORE_VERDICT_OK &&
        op != STORE_MEMBER_TRANSFER) {
        /* raft/ took the change but not its record (too much uncommitted,
         * or memory): the retry finds the change made and is refused. */
        GR_LOG(GR_LOG_WARN, "cluster",
               "membership change of node %llu made, its record not "
               "proposed: the asker gets a refusal; `cluster` shows the "
               "configuration",
               (unsigned long long)id);
    }
    if (rv == 0 && verdict == STORE_VERDICT_OK &&
        op == STORE_MEMBER_TRANSFER) {
        (void)raft_transfer_leadership(h->raft, id);
    }
    return rv;
}

int gr_turn_propose(struct gr_host *h, struct gr_turn *t, const uint8_t *cmd,
                    size_t len, uint64_t *index)
{
    if (raft_role(h->raft) != RAFT_LEADER) {
        return GR_EINVAL;
    }
    if (store_cmd_is_member(cmd, len)) {
        return propose_member(h, t, cmd, len, index);
    }
    return propose_bytes(h, t, cmd, len, NULL, 0, index);
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

static void put64(uint8_t *p, uint64_t v)
{
    int i;

    for (i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

void gr_turn_alive_frame(uint8_t p[GR_PEER_ALIVE_LEN], uint64_t term)
{
    p[0] = GR_PEER_ALIVE;
    put64(p + 1, term);
}

static void send_one(struct gr_turn *t, struct gr_frame *f)
{
    f->next = NULL;
    t->send_now(t->arg, f);
}

/* A read answer for node `to` (its ctx). */
static int answer_read(struct gr_turn *t, uint64_t to, uint64_t ctx,
                       uint64_t index, bool ok)
{
    struct gr_frame *f = gr_frame_new(to, 18);

    if (f == NULL) {
        return GR_ENOMEM;
    }
    f->data[0] = GR_PEER_READ_RESP;
    put64(f->data + 1, ctx);
    put64(f->data + 9, index);
    f->data[17] = ok ? 1 : 0;
    send_one(t, f);
    return 0;
}

/* Hands a read to raft/ (this node leads) for `from` (0: this node). */
static int lead_read(struct gr_host *h, struct gr_turn *t, uint64_t from,
                     uint64_t ctx)
{
    uint64_t raft_ctx;

    if (h->n_reads == GR_TURN_READS_MAX) {
        return from == 0 ? 0 : answer_read(t, from, ctx, 0, false);
    }
    raft_ctx = ++h->read_seq;
    if (raft_read_index(h->raft, raft_ctx) != 0) {
        if (from == 0) {
            t->read.ctx = ctx;
            t->read.ok = false;
            t->read.done = true;
            return 0;
        }
        return answer_read(t, from, ctx, 0, false);
    }
    h->reads[h->n_reads].raft_ctx = raft_ctx;
    h->reads[h->n_reads].from = from;
    h->reads[h->n_reads].ctx = ctx;
    h->n_reads++;
    return 0;
}

int gr_turn_read(struct gr_host *h, struct gr_turn *t, uint64_t ctx)
{
    uint64_t leader = raft_leader(h->raft);
    struct gr_frame *f;

    if (raft_role(h->raft) == RAFT_LEADER) {
        return lead_read(h, t, 0, ctx);
    }
    if (leader == 0 || leader == h->cfg.node_id) {
        t->read.ctx = ctx;
        t->read.ok = false;
        t->read.done = true;
        return 0;
    }
    f = gr_frame_new(leader, 9);
    if (f == NULL) {
        return GR_ENOMEM;
    }
    f->data[0] = GR_PEER_READ;
    put64(f->data + 1, ctx);
    send_one(t, f);
    return 0;
}

/* raft/'s answers to the reads it was handed, to whoever asked. */
static int reads_done(struct gr_host *h, struct gr_turn *t,
                      const struct raft_read *v, size_t n)
{
    size_t i;
    size_t k;
    int rv = 0;

    for (i = 0; i < n; i++) {
        for (k = 0; k < h->n_reads; k++) {
            if (h->reads[k].raft_ctx == v[i].ctx) {
                break;
            }
        }
        if (k == h->n_reads) {
            continue;
        }
        if (h->reads[k].from == 0) {
            t->read.ctx = h->reads[k].ctx;
            t->read.index = v[i].index;
            t->read.ok = v[i].status == 0;
            t->read.done = true;
        } else if (rv == 0) {
            rv = answer_read(t, h->reads[k].from, h->reads[k].ctx, v[i].index,
                             v[i].status == 0);
        }
        h->reads[k] = h->reads[--h->n_reads];
    }
    return rv;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

int gr_turn_forward_add(struct gr_frame **f, uint64_t leader,
                        const uint8_t *cmd, size_t len)
{
    struct gr_frame *old = *f;
    size_t have = old != NULL ? old->len : 1;
    struct gr_frame *n;
    uint8_t *p;

    if (len > UINT32_MAX) {
        return GR_EINVAL;
    }
    n = gr_frame_new(leader, have + 4 + len);
    if (n == NULL) {
        return GR_ENOMEM;
    }
    if (old != NULL) {
        memcpy(n->data, old->data, old->len);
        gr_free(old);
    } else {
        n->data[0] = GR_PEER_FORWARD;
    }
    p = n->data + have;
    p[0] = (uint8_t)(len >> 24);
    p[1] = (uint8_t)(len >> 16);
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
    memcpy(p + 4, cmd, len);
    *f = n;
    return 0;
}

/* Proposes the commands of a forward payload, in order, until raft/
 * refuses one (the rest would commit out of order). A malformed payload
 * counts as bad; what was proposed of it stays. */
static int take_forward(struct gr_host *h, struct gr_turn *t,
                        const struct gr_frame *f)
{
    size_t pos = 1;
    uint64_t index;
    uint64_t term;
    struct store_origin o;
    const uint8_t *cmd;
    bool has_origin;
    int rv;

    if (raft_role(h->raft) != RAFT_LEADER) {
        return 0; /* its origin sends them again to the leader */
    }
    while (pos < f->len) {
        uint32_t len;

        if (f->len - pos < 4 || f->len - pos - 4 < (len = get32(f->data + pos))) {
            t->n_bad++;
            GR_LOG(GR_LOG_WARN, "cluster",
                   "node %llu sent a malformed forward payload: dropped",
                   (unsigned long long)f->peer);
            return 0;
        }
        cmd = f->data + pos + 4;
        pos += 4 + len;
        /* A copy sent again while the first is on its way to commit
         * (cluster/fwdseen.h). */
        has_origin = store_cmd_origin(cmd, len, &o);
        term = raft_current_term(h->raft);
        if (has_origin &&
            gr_fwdseen_holds(&h->fwd_seen, &o, term, h->applied)) {
            h->n_fwd_dropped++;
            continue;
        }
        rv = gr_turn_propose(h, t, cmd, len, &index);
        if (rv == GR_ENOMEM) {
            return rv;
        }
        if (rv != 0) {
            return 0; /* not now: its origin sends it again */
        }
        if (has_origin) {
            gr_fwdseen_note(&h->fwd_seen, &o, term, index);
        }
        t->n_forwarded++;
    }
    return 0;
}

static int take_raft(struct gr_host *h, struct gr_turn *t,
                     const struct gr_frame *f)
{
    struct raft_msg m;
    int rv;

    rv = peer_msg_decode(f->data + 1, f->len - 1, &m);
    if (rv == GR_ENOMEM) {
        return rv;
    }
    if (rv != 0 || m.from != f->peer) {
        if (rv == 0) {
            peer_msg_free(&m);
        }
        t->n_bad++;
        GR_LOG(GR_LOG_WARN, "cluster",
               "node %llu sent a raft message that does not decode or names "
               "another sender: dropped",
               (unsigned long long)f->peer);
        return 0;
    }
    rv = raft_step(h->raft, raft_now(h, t), &m);
    peer_msg_free(&m);
    if (rv == RAFT_EMALFORMED) {
        t->n_bad++;
        GR_LOG(GR_LOG_WARN, "cluster", "node %llu: %s: dropped",
               (unsigned long long)f->peer, raft_errmsg(h->raft));
    }
    return rv == RAFT_ENOMEM ? GR_ENOMEM : 0;
}

int gr_turn_input(struct gr_host *h, struct gr_turn *t)
{
    struct gr_frame *f;
    int rv = 0;

    for (f = t->inbox; f != NULL && rv == 0; f = f->next) {
        if (f->len == 0) {
            t->n_bad++;
            continue;
        }
        switch (f->data[0]) {
        case GR_PEER_RAFT:
            rv = take_raft(h, t, f);
            break;
        case GR_PEER_FORWARD:
            rv = take_forward(h, t, f);
            break;
        case GR_PEER_READ:
            if (f->len != 9) {
                t->n_bad++;
            } else if (raft_role(h->raft) == RAFT_LEADER) {
                rv = lead_read(h, t, f->peer, get64(f->data + 1));
            } else {
                rv = answer_read(t, f->peer, get64(f->data + 1), 0, false);
            }
            break;
        case GR_PEER_ALIVE:
            if (f->len != GR_PEER_ALIVE_LEN) {
                t->n_bad++;
            } else {
                (void)raft_peer_alive(h->raft, raft_now(h, t), f->peer,
                                      get64(f->data + 1));
            }
            break;
        case GR_PEER_READ_RESP:
            if (f->len != 18) {
                t->n_bad++;
                break;
            }
            t->read.ctx = get64(f->data + 1);
            t->read.index = get64(f->data + 9);
            t->read.ok = f->data[17] == 1;
            t->read.done = true;
            break;
        default:
            t->n_bad++;
            GR_LOG(GR_LOG_WARN, "cluster",
                   "node %llu sent a payload of unknown kind %u: dropped",
                   (unsigned long long)f->peer, (unsigned)f->data[0]);
        }
    }
    gr_frames_free(t->inbox);
    t->inbox = NULL;
    if (rv == 0) {
        (void)raft_tick(h->raft, raft_now(h, t));
    }
    gr_host_fetch_done(h);
    return rv;
}

/* Encodes one message; a snapshot chunk gets its bytes from this node's
 * file (raft/ names the snapshot and the range). Returns 0, GR_EAGAIN
 * (no such file: the message is dropped, raft/ sends it again or asks
 * for a newer snapshot), or GR_ENOMEM. */
static int encode_one(const struct gr_host *h, const struct raft_msg *m,
                      struct raft_buf *b)
{
    struct raft_msg copy;
    void *bytes;
    int rv;

    if (m->type != RAFT_MSG_SNAPSHOT || m->u.snapshot.data.base != NULL ||
        m->u.snapshot.data.len == 0) {
        return peer_msg_encode(m, b);
    }
    if (!h->snaps_open) {
        return GR_EAGAIN;
    }
    bytes = gr_malloc(m->u.snapshot.data.len);
    if (bytes == NULL) {
        return GR_ENOMEM;
    }
    if (gr_snaps_read(&h->snaps, m->u.snapshot.meta.index,
                      m->u.snapshot.meta.term, m->u.snapshot.offset, bytes,
                      m->u.snapshot.data.len) != 0) {
        gr_free(bytes);
        return GR_EAGAIN;
    }
    copy = *m;
    copy.u.snapshot.data.base = bytes;
    rv = peer_msg_encode(&copy, b);
    gr_free(bytes);
    return rv;
}

/* Encodes msgs into raft payloads, appended to *list. */
static int encode_msgs(const struct gr_host *h, const struct raft_msg *msgs,
                       size_t n, struct gr_frame **list)
{
    size_t i;

    for (i = 0; i < n; i++) {
        struct raft_buf b;
        struct gr_frame *f;
        int rv = encode_one(h, &msgs[i], &b);

        if (rv == GR_EAGAIN) {
            continue;
        }
        if (rv != 0) {
            return rv;
        }
        f = gr_frame_new(msgs[i].to, b.len + 1);
        if (f == NULL) {
            gr_free(b.base);
            return GR_ENOMEM;
        }
        f->data[0] = GR_PEER_RAFT;
        memcpy(f->data + 1, b.base, b.len);
        gr_free(b.base);
        f->next = *list;
        *list = f;
    }
    return 0;
}

/* Reverses a list built by prepending, so frames leave in raft/'s order. */
static struct gr_frame *in_order(struct gr_frame *f)
{
    struct gr_frame *r = NULL;

    while (f != NULL) {
        struct gr_frame *next = f->next;

        f->next = r;
        r = f;
        f = next;
    }
    return r;
}

static void fill_status(const struct gr_host *h, struct gr_turn *t)
{
    uint64_t wake = raft_next_wakeup(h->raft);

    t->leader = raft_role(h->raft) == RAFT_LEADER;
    t->leader_id = raft_leader(h->raft);
    t->term = raft_current_term(h->raft);
    t->commit = raft_commit_index(h->raft);
    t->applied_index = h->applied;
    t->next_wakeup_ms = wake;
}

/* Applies the ready's committed entries in txn, reporting each. */
static int apply_ready(struct gr_host *h, struct gr_turn *t,
                       struct store_txn *txn)
{
    size_t i;
    int rv;

    for (i = 0; i < h->rd.n_committed; i++) {
        const struct raft_entry *e = &h->rd.committed[i];
        size_t begin = t->fx->n;
        struct store_cmd *cmd;

        if (e->index <= h->applied) {
            continue;
        }
        rv = gr_host_apply_entry(h, txn, e, t->fx, &cmd);
        if (rv != 0) {
            return rv;
        }
        if (t->applied(t->arg, e->index, cmd, begin, t->fx->n) != 0) {
            return STORE_ENOMEM;
        }
    }
    return 0;
}

/* The log compacted behind the latest snapshot, and its meta, in the
 * turn's transaction. */
static int record_compaction(struct gr_host *h, struct store_txn *txn)
{
    struct store_snap_meta sm;
    int rv = 0;

    if (h->compact_upto > 0) {
        rv = store_log_compact(txn, h->compact_upto);
    }
    if (rv != 0) {
        return rv;
    }
    sm.index = h->compact_index;
    sm.term = h->compact_term;
    sm.conf.base = h->compact_conf;
    sm.conf.len = h->compact_conf_len;
    return store_snap_meta_set(txn, &sm);
}

/* One ready: send what may leave, write, sync, then the answers. */
static int write_one(struct gr_host *h, struct gr_turn *t)
{
    struct gr_frame *now = NULL;
    struct gr_frame *after = NULL;
    struct store_txn *txn;
    uint64_t applied_before = h->applied;
    int rv;

    gr_host_fetch_done(h); /* what raft/ read back is copied by now */
    rv = store_txn_begin(h->store, true, &txn);
    if (rv != 0) {
        snprintf(h->errmsg, sizeof(h->errmsg), "starting a write: %s",
                 store_strerror(rv));
        return GR_ESTORE;
    }
    h->write_txn = txn; /* raft/ may read entries back through it */
    rv = gr_host_persist_ready(h, txn);
    h->write_txn = NULL;
    if (rv == 0) {
        rv = encode_msgs(h, h->rd.msgs_now, h->rd.n_msgs_now, &now);
        if (rv == 0 && now != NULL) {
            t->send_now(t->arg, in_order(now));
            now = NULL;
        }
        rv = rv != 0 ? STORE_ENOMEM : 0;
    }
    if (rv == 0) {
        rv = apply_ready(h, t, txn);
    }
    if (rv == 0 && h->compact_pending) {
        rv = record_compaction(h, txn);
    }
    if (rv == 0) {
        rv = encode_msgs(h, h->rd.msgs_after_persist,
                         h->rd.n_msgs_after_persist, &after);
        rv = rv != 0 ? STORE_ENOMEM : 0;
    }
    if (rv != 0) {
        store_txn_abort(txn);
        gr_frames_free(now);
        gr_frames_free(after);
        goto failed;
    }
    if (h->rd.want_snapshot) {
        h->want_snapshot = true; /* a follower needs a newer one */
    }
    if (t->applied_all != NULL && h->applied != applied_before &&
        !h->rx_installed) {
        /* Committed entries are on a majority's disks: their effects may
         * leave while this transaction commits and syncs. */
        t->applied_all(t->arg);
    }
    if (!h->rd.has_hard_state && h->rd.n_entries == 0 &&
        h->rd.truncate_from == 0 && h->applied == applied_before &&
        !h->compact_pending && h->rd.snapshot_chunk == NULL) {
        /* Nothing to persist (a heartbeat round): no commit, no sync. */
        store_txn_abort(txn);
    } else {
        rv = store_txn_commit(txn);
        if (rv == 0) {
            uint64_t t0 = gr_mono_us();

            rv = store_sync(h->store);
            gr_histo_add(&h->sync_lat, gr_mono_us() - t0);
        }
    }
    if (rv != 0) {
        gr_frames_free(after);
        goto failed;
    }
    h->compact_pending = false;
    if (h->rx_installed) {
        h->rx_installed = false;
        t->installed = true;
        GR_LOG(GR_LOG_NOTICE, "cluster",
               "installed the leader's snapshot at %llu (term %llu): the "
               "log goes on from there",
               (unsigned long long)h->rx_index,
               (unsigned long long)h->rx_term);
        if (gr_snaps_rx_keep(&h->snaps, h->rx_index, h->rx_term) != 0) {
            GR_LOG(GR_LOG_WARN, "cluster", "%s: it is sent again if needed",
                   h->snaps.errmsg);
        }
    }
    /* Durable: the answers may leave, and raft/ may count on it. The
     * reads it confirmed go to whoever asked (a read index is the
     * leader's commit index, already durable). */
    rv = reads_done(h, t, h->rd.reads, h->rd.n_reads);
    if (rv != 0) {
        gr_frames_free(after);
        rv = STORE_ENOMEM;
        goto failed_after_commit;
    }
    if (after != NULL) {
        struct gr_frame **end = &t->out_after;

        while (*end != NULL) {
            end = &(*end)->next;
        }
        *end = in_order(after);
    }
    return gr_host_advance(h, true, t->mono_ms);

failed_after_commit:
failed:
    t->store_rv = rv;
    snprintf(h->errmsg, sizeof(h->errmsg), "writing a raft batch: %s (%s)",
             store_strerror(rv), store_errmsg(h->store));
    (void)gr_host_advance(h, false, t->mono_ms);
    return GR_ESTORE;
}

/* The term of entry index, from raft/'s window or the store's log. */
static uint64_t term_of(struct gr_host *h, uint64_t index)
{
    struct store_txn *txn;
    struct store_entry e;
    uint64_t term = raft_term_at(h->raft, index);

    if (term != 0 || store_txn_begin(h->store, false, &txn) != 0) {
        return term;
    }
    if (store_log_get(txn, index, &e) == 0) {
        term = e.term;
    }
    store_txn_abort(txn);
    return term;
}

/* A dump finished: it becomes the latest snapshot - kept as a file,
 * handed to raft/, and the log is compacted behind it in the next
 * transaction. */
static void snapshot_taken(struct gr_host *h, uint64_t index, uint64_t len)
{
    struct raft_snapshot snap;
    const struct raft_conf *conf = raft_conf_current(h->raft);

    memset(&snap, 0, sizeof(snap));
    snap.meta.index = index;
    snap.meta.term = term_of(h, index);
    snap.meta.conf = *conf;
    snap.len = len;
    if (snap.meta.term == 0 ||
        gr_snaps_keep_dump(&h->snaps, index, snap.meta.term) != 0 ||
        raft_snapshot_done(h->raft, &snap) != 0) {
        GR_LOG(GR_LOG_WARN, "cluster",
               "snapshot at %llu not kept (%s%s): the next one is taken later",
               (unsigned long long)index, h->snaps.errmsg,
               raft_errmsg(h->raft));
        return;
    }
    h->compact_pending = true;
    h->compact_upto = raft_first_index(h->raft) > 0
                          ? raft_first_index(h->raft) - 1
                          : 0;
    h->compact_index = index;
    h->compact_term = snap.meta.term;
    raft_conf_encode(conf, h->compact_conf);
    h->compact_conf_len = raft_conf_encoded_len(conf);
    GR_LOG(GR_LOG_INFO, "cluster",
           "snapshot at %llu (term %llu, %llu bytes) taken; the log is "
           "compacted up to %llu",
           (unsigned long long)index, (unsigned long long)snap.meta.term,
           (unsigned long long)len, (unsigned long long)h->compact_upto);
}

/* Takes a snapshot when raft/ asked for one or enough was applied since
 * the last; finishes one whose dump is done. */
static void snapshots(struct gr_host *h)
{
    uint64_t index;
    uint64_t len;
    uint64_t every = h->cfg.snapshot_every > 0 ? h->cfg.snapshot_every
                                               : 10000;
    uint64_t last = raft_snapshot_index(h->raft);
    int rv;

    if (!h->snaps_open) {
        return;
    }
    if (gr_snaps_dump_done(&h->snaps, &index, &len, &rv)) {
        if (rv == 0 && index > last) {
            snapshot_taken(h, index, len);
        } else if (rv != 0) {
            GR_LOG(GR_LOG_WARN, "cluster",
                   "taking a snapshot failed (%s): tried again later",
                   store_strerror(rv));
        }
        last = raft_snapshot_index(h->raft);
    }
    if (!gr_snaps_dumping(&h->snaps) && !h->compact_pending &&
        h->applied > last && (h->want_snapshot || h->applied - last >= every)) {
        h->want_snapshot = false;
        (void)gr_snaps_dump_start(&h->snaps);
    }
}

int gr_turn_write(struct gr_host *h, struct gr_turn *t)
{
    int rv = 0;

    snapshots(h);
    if (raft_has_ready(h->raft)) {
        rv = write_one(h, t);
    }
    fill_status(h, t);
    t->more = rv == 0 && raft_has_ready(h->raft);
    gr_host_fetch_done(h);
    return rv;
}
