/* SPDX-License-Identifier: BSD-3-Clause
 * node/pipeline/member.c - a cluster member's batches as Raft turns, and
 * the pending list (member.h says why).
 *
 * Not here: the turn's Raft and store work (node/cluster/turn.c).
 */
#include "node/pipeline/member.h"

#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "node/gr.h"

/* A forward payload is sent once it holds this much. */
#define FORWARD_BYTES (1024u * 1024u)
/* A proposal sent again to the same leader waits up to this many times
 * the resend time (offer()). */
#define RESEND_BACKOFF_MAX 8u

int gr_member_init(struct gr_member *m, uint64_t node_id, uint64_t incarnation,
                   uint64_t resend_ms)
{
    memset(m, 0, sizeof(*m));
    m->node_id = node_id;
    m->incarnation = incarnation;
    m->resend_ms = resend_ms;
    m->out_end = &m->out_head;
    if (pthread_mutex_init(&m->out_lock, NULL) != 0) {
        return GR_ENOMEM;
    }
    m->lock_init = true;
    return 0;
}

void gr_member_set_send_event(struct gr_member *m, struct event *send_ev)
{
    m->send_ev = send_ev;
}

void gr_member_set_early(struct gr_member *m, void (*fn)(void *arg),
                         void *arg)
{
    m->early_fn = fn;
    m->early_arg = arg;
}

void gr_member_close(struct gr_member *m)
{
    struct gr_proposal *p;

    while ((p = m->pend_head) != NULL) {
        m->pend_head = p->pend_next;
        gr_proposal_free(p);
    }
    m->pend_tail = NULL;
    m->n_pending = 0;
    gr_frames_free(m->out_head);
    m->out_head = NULL;
    m->out_end = &m->out_head;
    if (m->lock_init) {
        pthread_mutex_destroy(&m->out_lock);
        m->lock_init = false;
    }
}

struct gr_frame *gr_member_take_out(struct gr_member *m)
{
    struct gr_frame *f;

    pthread_mutex_lock(&m->out_lock);
    f = m->out_head;
    m->out_head = NULL;
    m->out_end = &m->out_head;
    pthread_mutex_unlock(&m->out_lock);
    return f;
}

/* Committer thread: frames for the loop to send at once. */
static void send_now(void *arg, struct gr_frame *frames)
{
    struct gr_member *m = arg;

    if (frames == NULL) {
        return;
    }
    pthread_mutex_lock(&m->out_lock);
    *m->out_end = frames;
    while (*m->out_end != NULL) {
        m->out_end = &(*m->out_end)->next;
    }
    pthread_mutex_unlock(&m->out_lock);
    if (m->send_ev != NULL) {
        event_active(m->send_ev, EV_WRITE, 0);
    }
}

/* ---- the pending list ---- */

static void pend_append(struct gr_member *m, struct gr_proposal *p)
{
    p->pend_next = NULL;
    p->pend_prev = m->pend_tail;
    if (m->pend_tail != NULL) {
        m->pend_tail->pend_next = p;
    } else {
        m->pend_head = p;
    }
    m->pend_tail = p;
    m->n_pending++;
}

static void pend_remove(struct gr_member *m, struct gr_proposal *p)
{
    if (p->pend_prev != NULL) {
        p->pend_prev->pend_next = p->pend_next;
    } else {
        m->pend_head = p->pend_next;
    }
    if (p->pend_next != NULL) {
        p->pend_next->pend_prev = p->pend_prev;
    } else {
        m->pend_tail = p->pend_prev;
    }
    p->pend_prev = NULL;
    p->pend_next = NULL;
    m->n_pending--;
}

size_t gr_member_drop_pending(struct gr_member *m)
{
    struct gr_proposal *p;
    size_t n = 0;

    while ((p = m->pend_head) != NULL) {
        pend_remove(m, p);
        gr_proposal_free(p);
        n++;
    }
    return n;
}

/* The lowest sequence still pending: what this node may still propose
 * (or forward) again. */
static uint64_t lowest_pending(const struct gr_member *m)
{
    const struct gr_proposal *p;

    for (p = m->pend_head; p != NULL; p = p->pend_next) {
        if (p->cmd.type != 0) {
            return p->cmd.origin.seq;
        }
    }
    return 0;
}

/* ---- one turn ---- */

/* What a turn collects: the entries applied, in log order. */
struct turn_ctx {
    struct gr_member *m;
    struct gr_batch *b;
    bool published; /* the applied list went to the loop before the commit */
    struct gr_proposal *head;
    struct gr_proposal **end;
    size_t n_local;
    bool declared_gone; /* a NODE_GONE for this incarnation applied */
    bool members_changed; /* a membership change applied */
    const struct store_effects *fx; /* the turn's effects */
};

static void applied_add(struct turn_ctx *x, struct gr_proposal *p)
{
    p->next = NULL;
    *x->end = p;
    x->end = &p->next;
}

/* Local replies at the head of the pending list: every proposal before
 * them has applied, so they may go. */
static void release_replies(struct turn_ctx *x)
{
    struct gr_proposal *p;

    while ((p = x->m->pend_head) != NULL && p->cmd.type == 0) {
        pend_remove(x->m, p);
        applied_add(x, p);
        x->n_local++;
    }
}

static struct gr_proposal *find_pending(struct gr_member *m, uint64_t seq)
{
    struct gr_proposal *p;

    for (p = m->pend_head; p != NULL; p = p->pend_next) {
        if (p->cmd.type != 0 && p->cmd.origin.seq == seq) {
            return p;
        }
    }
    return NULL;
}

/* True if apply found the command ahead of an earlier one of ours
 * (storage/replays.c). */
static bool was_overtaken(const struct store_effects *fx, size_t begin,
                          size_t end)
{
    size_t i;

    for (i = begin; i < end && i < fx->n; i++) {
        if (fx->v[i].type == STORE_FX_OVERTAKEN) {
            return true;
        }
    }
    return false;
}

/* Pending proposals up to p are offered again at the next turn. */
static void offer_again_upto(struct gr_member *m, struct gr_proposal *p)
{
    struct gr_proposal *q;

    for (q = m->pend_head; q != NULL; q = q->pend_next) {
        q->proposed_term = 0;
        q->sent_to = 0;
        if (q == p) {
            break;
        }
    }
}

static int on_applied(void *arg, uint64_t index, struct store_cmd *cmd,
                      size_t fx_begin, size_t fx_end)
{
    struct turn_ctx *x = arg;
    struct gr_member *m = x->m;
    struct gr_proposal *p = NULL;

    if (cmd == NULL) {
        return 0; /* a no-op or a configuration: no effects */
    }
    if (cmd->type == STORE_CMD_MEMBER) {
        x->members_changed = true;
    }
    if (cmd->type == STORE_CMD_NODE_GONE &&
        cmd->u.node_gone.node_id == m->node_id &&
        cmd->u.node_gone.incarnation >= m->incarnation) {
        x->declared_gone = true; /* the cluster gave up on this process */
    }
    if (cmd->origin.node_id == m->node_id &&
        cmd->origin.incarnation == m->incarnation && cmd->origin.seq != 0) {
        p = find_pending(m, cmd->origin.seq);
    }
    if (p != NULL && was_overtaken(x->fx, fx_begin, fx_end)) {
        /* Apply kept it for later: an earlier proposal of ours was lost
         * on its way. They all go again, in order, from the oldest. */
        m->n_out_of_order++;
        offer_again_upto(m, p);
        store_cmd_free(cmd);
        return 0;
    }
    if (p != NULL && p->cmd.type != cmd->type) {
        /* A judgment voided here (void_stale_judgment) whose first copy
         * committed after all: the entry, not the no-op, is what
         * applied (by a stand-in below). */
        pend_remove(m, p);
        gr_proposal_free(p);
        p = NULL;
        x->n_local++; /* it left the pending list all the same */
    }
    if (p != NULL) {
        pend_remove(m, p);
        store_cmd_free(cmd);
        x->n_local++;
    } else {
        /* Another node's entry, or a second copy of one of ours (whose
         * apply did nothing): a stand-in carries its effects. */
        p = gr_proposal_new();
        if (p == NULL) {
            store_cmd_free(cmd);
            return GR_ENOMEM;
        }
        p->cmd = *cmd;
        p->decoded = cmd;
    }
    p->fx_begin = fx_begin;
    p->fx_end = fx_end;
    p->index = index;
    applied_add(x, p);
    release_replies(x);
    return 0;
}

/* A snapshot was installed: pending proposals whose entries it holds
 * were applied where this node could not see their effects. They leave
 * the pending list as applied entries marked lost (no effects), so that
 * their sessions hear of it (node/gearman/answer.c closes them). */
static int take_lost(struct turn_ctx *x, struct gr_host *h)
{
    struct gr_member *m = x->m;
    struct gr_proposal *p;
    struct gr_proposal *next;
    struct store_txn *txn;
    int rv;

    rv = store_txn_begin(h->store, false, &txn);
    if (rv != 0) {
        return rv;
    }
    for (p = m->pend_head; p != NULL && rv == 0; p = next) {
        bool done = false;

        next = p->pend_next;
        if (p->cmd.type == 0) {
            continue;
        }
        rv = store_origin_applied(txn, &p->cmd.origin, &done);
        if (rv == 0 && done) {
            pend_remove(m, p);
            p->lost = true;
            p->fx_begin = 0;
            p->fx_end = 0;
            applied_add(x, p);
            x->n_local++;
        }
    }
    store_txn_abort(txn);
    release_replies(x);
    return rv;
}

/* New proposals join the pending list with their commands encoded. */
static int take_new(struct gr_member *m, struct gr_proposal *list)
{
    struct gr_proposal *p;
    struct gr_proposal *next;
    int rv = 0;

    for (p = list; p != NULL; p = next) {
        next = p->next;
        p->next = NULL;
        pend_append(m, p);
        if (p->cmd.type == 0 || rv != 0) {
            continue;
        }
        p->cmd.origin.low = lowest_pending(m);
        if (store_cmd_encode(&p->cmd, &p->wire, &p->wire_len) != 0) {
            rv = GR_ENOMEM;
        }
    }
    return rv;
}

/* A NODE_GONE this node judged as leader in one term (node/liveness.c,
 * gr_liveness_after_turn) is void once it no longer leads in that term: it
 * becomes a no-op under the same origin, so that its sequence number
 * still applies in order and the commands after it are not held back.
 * Forwarded to another leader, or proposed again in a later term, it
 * would declare gone a node that the judge could not see only because
 * it had itself been paused or cut off. */
static int void_stale_judgment(struct gr_member *m, struct gr_proposal *p,
                               bool leading, uint64_t term)
{
    if (p->cmd.type != STORE_CMD_NODE_GONE || p->judged_term == 0 ||
        (leading && p->judged_term == term)) {
        return 0;
    }
    GR_LOG(GR_LOG_NOTICE, "cluster",
           "node=%llu dropping its term %llu judgment that node %llu is "
           "gone: it no longer leads in that term",
           (unsigned long long)m->node_id, (unsigned long long)p->judged_term,
           (unsigned long long)p->cmd.u.node_gone.node_id);
    p->cmd.type = STORE_CMD_NOOP;
    p->judged_term = 0;
    store_free(p->wire);
    p->wire = NULL;
    p->wire_len = 0;
    if (store_cmd_encode(&p->cmd, &p->wire, &p->wire_len) != 0) {
        return GR_ENOMEM;
    }
    return 0;
}

/* Hands what waits to the leader: proposes it when this node leads,
 * forwards it when another does. */
static int offer(struct gr_member *m, struct gr_host *h, struct gr_turn *t)
{
    struct gr_proposal *p;
    struct gr_frame *fw = NULL;
    uint64_t term = raft_current_term(h->raft);
    uint64_t leader = raft_leader(h->raft);
    uint64_t index;
    int rv;

    if (raft_role(h->raft) == RAFT_LEADER) {
        for (p = m->pend_head; p != NULL; p = p->pend_next) {
            rv = void_stale_judgment(m, p, true, term);
            if (rv != 0) {
                return rv;
            }
            if (p->cmd.type == 0 || p->proposed_term == term) {
                continue;
            }
            rv = gr_turn_propose(h, t, p->wire, p->wire_len, &index);
            if (rv == GR_ENOMEM) {
                return rv;
            }
            if (rv != 0) {
                break; /* not now; the rest waits behind it, in order */
            }
            p->proposed_term = term;
        }
        return 0;
    }
    if (leader == 0 || leader == m->node_id) {
        return 0; /* no leader known: wait for one */
    }
    for (p = m->pend_head; p != NULL; p = p->pend_next) {
        rv = void_stale_judgment(m, p, false, term);
        if (rv != 0) {
            gr_frames_free(fw);
            return rv;
        }
        if (p->cmd.type == 0 || p->wire == NULL ||
            (p->sent_to == leader &&
             t->mono_ms - p->sent_ms < p->resend_wait)) {
            continue;
        }
        if (p->sent_to != 0) {
            m->n_resent++;
        }
        /* To the same leader, each copy waits twice as long as the one
         * before, up to RESEND_BACKOFF_MAX times the resend time: what a
         * leader has not committed yet is more likely a large payload
         * still on its way than a loss, and the leader drops copies of
         * what it holds (node/cluster/fwdseen.h). A new leader gets it
         * at once. */
        if (p->sent_to != leader) {
            p->resend_wait = m->resend_ms;
        } else if (p->resend_wait < m->resend_ms * RESEND_BACKOFF_MAX) {
            p->resend_wait *= 2;
        }
        rv = gr_turn_forward_add(&fw, leader, p->wire, p->wire_len);
        if (rv != 0) {
            gr_frames_free(fw);
            return rv;
        }
        p->sent_to = leader;
        p->sent_ms = t->mono_ms;
        p->proposed_term = 0;
        m->n_forwarded++;
        if (fw->len >= FORWARD_BYTES) {
            send_now(m, fw);
            fw = NULL;
        }
    }
    send_now(m, fw);
    return 0;
}

/* A failed write: what it applied was not kept. This node's proposals go
 * back to the head of the pending list, in order, to be offered again;
 * stand-ins go. */
static void undo(struct turn_ctx *x)
{
    struct gr_member *m = x->m;
    struct gr_proposal *p;
    struct gr_proposal *next;
    struct gr_proposal *first = NULL;
    struct gr_proposal *last = NULL;

    for (p = x->head; p != NULL; p = next) {
        next = p->next;
        p->next = NULL;
        if (p->decoded != NULL) {
            gr_proposal_free(p);
            continue;
        }
        p->pend_prev = last;
        p->pend_next = NULL;
        if (last != NULL) {
            last->pend_next = p;
        } else {
            first = p;
        }
        last = p;
        m->n_pending++;
    }
    x->head = NULL;
    if (first != NULL) {
        last->pend_next = m->pend_head;
        if (m->pend_head != NULL) {
            m->pend_head->pend_prev = last;
        } else {
            m->pend_tail = last;
        }
        m->pend_head = first;
    }
    for (p = m->pend_head; p != NULL; p = p->pend_next) {
        p->proposed_term = 0;
        p->sent_to = 0;
    }
}

/* The turn applied what it will apply and is about to commit: the list
 * of applied entries goes to the loop now (gr_member_set_early). Local
 * replies that every earlier proposal now lets go join it first; after
 * this nothing is added to the list. */
static void turn_applied_all(void *arg)
{
    struct turn_ctx *x = arg;

    if (x->m->early_fn == NULL || x->head == NULL) {
        return;
    }
    release_replies(x);
    x->b->props = x->head;
    x->b->n_props = x->n_local;
    x->published = true;
    x->m->early_fn(x->m->early_arg);
}

static void turn_send(void *arg, struct gr_frame *frames)
{
    struct turn_ctx *x = arg;

    send_now(x->m, frames);
}

int gr_member_turn(struct gr_member *m, struct gr_host *h, struct gr_batch *b)
{
    return gr_member_turn_at(m, h, b, gr_mono_us() / 1000, gr_now_ms());
}

int gr_member_turn_at(struct gr_member *m, struct gr_host *h,
                      struct gr_batch *b, uint64_t mono_ms, uint64_t wall_ms)
{
    struct turn_ctx x;
    struct gr_turn t;
    int rv;

    memset(&x, 0, sizeof(x));
    x.m = m;
    x.b = b;
    x.end = &x.head;
    x.fx = &b->fx;
    memset(&t, 0, sizeof(t));
    t.mono_ms = mono_ms;
    t.wall_ms = wall_ms;
    t.inbox = b->inbox;
    b->inbox = NULL;
    t.fx = &b->fx;
    t.send_now = turn_send;
    t.applied = on_applied;
    t.applied_all = turn_applied_all;
    t.arg = &x;
    store_effects_reset(&b->fx);
    rv = take_new(m, b->props);
    b->props = NULL;
    if (rv == 0) {
        rv = gr_turn_input(h, &t);
    }
    if (rv == 0 && b->transfer && raft_role(h->raft) == RAFT_LEADER) {
        /* Shutting down: the most up-to-date voter takes over (proposals
         * wait until it does, then go to it). */
        (void)raft_transfer_leadership(h->raft, 0);
    }
    if (rv == 0 && b->read_ctx != 0) {
        rv = gr_turn_read(h, &t, b->read_ctx);
    }
    if (rv == 0) {
        rv = offer(m, h, &t);
    }
    if (rv == 0) {
        rv = gr_turn_write(h, &t);
    }
    if (rv != 0 && x.published) {
        /* The loop may be sending the applied entries' effects already:
         * they cannot be undone and applied again. Stop as after a failed
         * sync; a restart declares this incarnation gone, which releases
         * what its connections held. */
        GR_LOG(GR_LOG_CRIT, "cluster",
               "a turn failed after its answers had left (%s): stopping now",
               h->errmsg);
        _exit(1);
    }
    if (rv == 0 && t.installed && take_lost(&x, h) != 0) {
        /* Committed already: those not yet looked up stay pending
         * (their replies wait, as before) rather than fail the turn. */
        GR_LOG(GR_LOG_WARN, "cluster",
               "reading the replay table after a snapshot failed: pending "
               "proposals wait");
    }
    if (!x.published) {
        release_replies(&x); /* published: nothing more joins the list */
    }
    b->out_after = t.out_after;
    b->status.leader = t.leader;
    b->status.leader_id = t.leader_id;
    b->status.term = t.term;
    b->status.commit = t.commit;
    b->status.applied = t.applied_index;
    b->status.next_wakeup_ms = t.next_wakeup_ms;
    b->status.more = t.more;
    b->status.read = t.read;
    b->status.declared_gone = x.declared_gone;
    b->status.members_changed = x.members_changed || t.installed;
    if (rv != 0) {
        undo(&x);
        b->props = NULL;
        b->n_props = 0;
        if (t.store_rv != 0) {
            return t.store_rv;
        }
        return rv == GR_ENOMEM ? STORE_ENOMEM : STORE_EIO;
    }
    if (!x.published) {
        b->props = x.head;
        b->n_props = x.n_local;
    }
    return 0;
}
