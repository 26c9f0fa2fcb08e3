/* SPDX-License-Identifier: BSD-3-Clause
 * node/gearman/answer.c - the effects of a write batch, as packets to
 * sessions.
 *
 * store_apply() returns effects addressed to connections anywhere in the
 * cluster ((node, incarnation, connection)); the ones for this process's
 * sessions become Gearman packets here. Which may leave before the commit
 * is decided by may_send_early(); the rest leave in gm_answer_committed.
 *
 * Not here: when a batch is applied, committed or durable (the loop and
 * node/pipeline/), parsing (session.c, request.c).
 */
#include "node/gearman/answer.h"

#include <string.h>

#include <event2/buffer.h>

#include "node/gearman/relay.h"
#include "node/gearman/session.h"
#include "node/pipeline/pipeline.h"

static void unhold(const void *data, size_t len, void *token)
{
    (void)data;
    (void)len;
    store_effects_unhold(token);
}

/* One pass over a batch's effects: before its commit (early) or after. */
struct round {
    struct gm_hub *hub;
    struct gr_batch *b;
    struct gm_marks *m;    /* b's slot's */
    uint64_t gen_answered; /* batches up to this one are answered */
    bool early;
};

static struct gm_marks *marks_of(struct gm_hub *hub, const struct gr_batch *b)
{
    return &hub->marks[b->gen % GR_BATCH_SLOTS];
}

static void round_init(struct round *r, struct gm_hub *hub, struct gr_batch *b,
                       bool early)
{
    r->hub = hub;
    r->b = b;
    r->m = marks_of(hub, b);
    r->gen_answered = gr_pipeline_answered(hub->pipe);
    r->early = early;
}

/* Writes a packet whose last argument is e->data; a payload in a block
 * of its own leaves from there (store_effects_hold) instead of being
 * copied into the session's output. */
static int write_with_data(const struct round *r, struct gm_session *s,
                           uint32_t type, const struct store_buf *args,
                           size_t n, const struct store_effect *e)
{
    void *token = NULL;

    if (n > 0 && e->data.len >= STORE_EFFECT_OWN_BLOCK &&
        args[n - 1].base == e->data.base) {
        token = store_effects_hold(&r->b->fx, e->data.base);
    }
    if (token == NULL) {
        return gm_packet_write(s->out, type, args, n);
    }
    return gm_packet_write_ref(s->out, type, args, n, unhold, token);
}

static struct gm_session *target(struct gm_hub *hub,
                                 const struct store_conn_ref *to)
{
    if (to->node_id != hub->node_id || to->incarnation != hub->incarnation) {
        return NULL;
    }
    return gm_session_find(hub, to->conn_id);
}

static void send_assign(const struct round *r, struct gm_session *s,
                        const struct gr_proposal *p,
                        const struct store_effect *e)
{
    struct store_job_view v;
    struct store_buf a[5];
    uint32_t type = GM_JOB_ASSIGN;
    size_t n;

    memset(&v, 0, sizeof(v));
    v.handle = e->handle;
    v.function = e->function;
    v.unique = e->unique;
    v.reducer = e->reducer;
    v.data = e->data;
    if (p != NULL && p->cmd.type == STORE_CMD_GRAB &&
        p->conn_id == s->conn_id) {
        type = gm_assign_type(p->reply_type, e->reducer.len);
    }
    gm_session_assigned(s, e->function.base, e->function.len);
    n = gm_assign_args(type, &v, a);
    if (write_with_data(r, s, type, a, n, e) != 0) {
        gm_session_close(s, false);
        return;
    }
    gm_session_job_assigned(s, e->function.base, e->function.len,
                            e->handle.base, e->handle.len);
}

static void send_forward(const struct round *r, struct gm_session *s,
                         const struct store_effect *e)
{
    struct store_buf a[3];
    size_t n;
    uint32_t type =
        gm_forward_args(e->work_kind, s->exceptions, e->handle, e->data,
                        e->numerator, e->denominator, a, &n);

    if (write_with_data(r, s, type, a, n, e) != 0) {
        gm_session_close(s, false);
    }
}

static void send_admin_reply(struct gm_session *s, const struct store_effect *e)
{
    int rv;

    if (e->code == 0) {
        rv = evbuffer_add(s->out, "OK\r\n", 4);
    } else {
        rv = evbuffer_add_printf(s->out, "ERR %.*s\r\n", (int)e->text.len,
                                 (const char *)e->text.base) < 0
                 ? -1
                 : 0;
    }
    if (rv != 0) {
        gm_session_close(s, false);
    }
}

/* Effects that may leave before the commit: a job handed to a worker, a
 * NO_JOB, a WORK_* result forwarded to a client, an error answering a
 * WORK_* or GRAB. If the commit then fails, nothing acknowledged is lost -
 * the job is still queued and runs again (at-least-once) - and meanwhile
 * the worker runs the job while the disk syncs. JOB_CREATED and admin
 * replies acknowledge durable state and wait for the commit - on a lone
 * node; a cluster member's JOB_CREATED may go early, since a member
 * applies only entries a majority has on disk. A reply to
 * the proposer goes early only if no earlier proposal of the same
 * connection in this batch waits for a late reply, so replies keep their
 * order per connection. */
static bool may_send_early(const struct round *r, const struct gr_proposal *p,
                           const struct store_effect *e,
                           const struct gm_session *s)
{
    bool own = e->to.conn_id == p->conn_id;

    if (own && s->late_gen > r->gen_answered) {
        return false;
    }
    switch (e->type) {
    case STORE_FX_FORWARD:
        /* A client waiting for replies (JOB_CREATED of a coalescing
         * submission) gets its WORK_* in order, after them. */
        return s->n_pending == 0;
    case STORE_FX_ASSIGN:
    case STORE_FX_NO_JOB:
        return own;
    case STORE_FX_CREATED:
        /* A member applies only committed entries: on a majority's disks
         * already, so acknowledged. A lone node's JOB_CREATED waits for
         * its own sync. */
        return own && r->b->member;
    case STORE_FX_REFUSED:
        return own &&
               (p->cmd.type == STORE_CMD_WORK || p->cmd.type == STORE_CMD_GRAB);
    default:
        return false;
    }
}

/* Sends effect e of proposal p if it belongs to this round (early:
 * before the commit). Returns true if it was sent in this call. */
static bool dispatch_effect(const struct round *r, struct gr_proposal *p,
                            const struct store_effect *e)
{
    struct gm_hub *hub = r->hub;
    size_t i = (size_t)(e - r->b->fx.v); /* its place in the marks */
    static const struct store_buf none = {NULL, 0};
    struct gm_session *s;
    struct store_buf a[2];

    if (e->type == STORE_FX_WAKE || e->type == STORE_FX_JOB_DONE) {
        return false; /* handled per batch (wake) or not needed (done) */
    }
    if (p->cmd.type == STORE_CMD_GRAB && p->cmd.u.grab.job != 0 &&
        e->to.conn_id == p->conn_id) {
        /* The worker has the job since its GRAB (handout.c). */
        if (e->type == STORE_FX_NO_JOB && r->early) {
            GR_LOG(GR_LOG_ERROR, "answer",
                   "conn=%llu: job %llu handed out went before its GRAB "
                   "was applied",
                   (unsigned long long)p->conn_id,
                   (unsigned long long)p->cmd.u.grab.job);
        }
        return false;
    }
    s = target(hub, &e->to);
    if (s == NULL || s->state == GM_SS_CLOSED) {
        return false;
    }
    if (e->type == STORE_FX_FORWARD && p->relayed_to == s->conn_id &&
        !p->relay_matched) {
        /* One copy went when the worker's packet was read (relay.c); a
         * client that joined the job twice gets the second from here. */
        p->relay_matched = true;
        if (r->early) {
            r->m->sent[i] = true;
        }
        return false;
    }
    if (r->early) {
        if (!may_send_early(r, p, e, s)) {
            return false;
        }
        r->m->sent[i] = true;
        if (e->type != STORE_FX_FORWARD && e->to.conn_id == p->conn_id) {
            p->answered = true;
            gm_session_answered(s, p);
        }
    } else if (r->m->sent_valid && r->m->sent[i]) {
        return false; /* went out before the commit */
    }
    switch (e->type) {
    case STORE_FX_CREATED:
        a[0] = e->handle;
        if (gm_packet_write(s->out, GM_JOB_CREATED, a, 1) != 0) {
            gm_session_close(s, false);
        } else if (p->after != NULL && e->to.conn_id == p->conn_id) {
            /* The worker's WORK_* relayed ahead of this (relay.c). */
            evbuffer_add_buffer(s->out, p->after);
        }
        break;
    case STORE_FX_REFUSED:
        a[0] = e->error_code;
        a[1] = e->text;
        if (gm_packet_write(s->out, GM_ERROR, a, 2) != 0) {
            gm_session_close(s, false);
        }
        break;
    case STORE_FX_ASSIGN:
        send_assign(r, s, p, e);
        break;
    case STORE_FX_NO_JOB:
        if (gm_packet_write(s->out, GM_NO_JOB, &none, 0) != 0) {
            gm_session_close(s, false);
        }
        break;
    case STORE_FX_FORWARD:
        send_forward(r, s, e);
        if (p->conn_id != 0 && p->conn_id != s->conn_id &&
            gm_session_out_backlog(s) > s->out_high) {
            struct gm_session *w = gm_session_find(hub, p->conn_id);

            if (w != NULL) {
                gm_session_block_on(w, s); /* until the client reads */
            }
        }
        break;
    case STORE_FX_ADMIN_REPLY:
        send_admin_reply(s, e);
        break;
    default:
        return false;
    }
    gm_session_want_flush(s);
    return true;
}

/* True if e, an effect of p, wakes the sleepers: WAKE, except for a job
 * whose SUBMIT woke them already when it was read (node/alone/ahead.h). */
static bool wakes(const struct gr_proposal *p, const struct store_effect *e)
{
    return e->type == STORE_FX_WAKE && !p->ahead;
}

/* Builds b's wake list once per batch (in m): one WAKE effect per job
 * that became runnable gives the distinct functions, in effect order, and
 * with --worker-wakeup per_job NOOPs per job for its function. Returns 0
 * or GR_ENOMEM. */
static int wake_list(const struct gr_batch *b, struct gm_marks *set,
                     uint32_t per_job)
{
    const struct store_effects *fx = &b->fx;
    const struct gr_proposal *p;
    size_t n = 0;
    size_t i;
    size_t j;

    for (i = 0; i < fx->n; i++) {
        n += fx->v[i].type == STORE_FX_WAKE;
    }
    if (GR_ARRAY_RESERVE(set->wake_funcs, set->wake_funcs_cap, n) != 0 ||
        GR_ARRAY_RESERVE(set->wake_budget, set->wake_budget_cap, n) != 0) {
        return GR_ENOMEM;
    }
    n = 0;
    for (p = b->props; p != NULL; p = p->next) {
        for (i = p->fx_begin; p->cmd.type != 0 && i < p->fx_end; i++) {
            const struct store_effect *e = &fx->v[i];

            if (!wakes(p, e)) {
                continue;
            }
            for (j = 0; j < n; j++) {
                if (set->wake_funcs[j].len == e->function.len &&
                    memcmp(set->wake_funcs[j].base, e->function.base,
                           e->function.len) == 0) {
                    break;
                }
            }
            if (j == n) {
                set->wake_funcs[n++] = e->function;
                set->wake_budget[j] = 0;
            }
            set->wake_budget[j] += per_job;
        }
    }
    set->wake_n = n;
    set->wake_set = true;
    return 0;
}

void gm_answer_wake(struct gm_hub *hub, struct gr_batch *b)
{
    struct gm_marks *set = marks_of(hub, b);
    uint32_t per_job = hub->cfg->worker_wakeup;

    if (!set->wake_set && wake_list(b, set, per_job) != 0) {
        gm_hub_wake(hub, NULL, NULL, 0); /* everyone rather than no one */
        return;
    }
    if (set->wake_n > 0) {
        gm_hub_wake(hub, set->wake_funcs, per_job > 0 ? set->wake_budget : NULL,
                    set->wake_n);
    }
}

/* Proposal p is finished: tell its session, which may resume parsing. */
static void finish(struct gm_hub *hub, struct gr_proposal *p)
{
    struct gm_session *s;

    gm_relay_work_done(hub, p);
    if (p->conn_id == 0) {
        return;
    }
    s = gm_session_find(hub, p->conn_id);
    if (s != NULL && s->state != GM_SS_CLOSED) {
        gm_session_proposal_done(s, p);
    }
}

static void deliver_local(struct gm_hub *hub, struct gr_proposal *p)
{
    struct gm_session *s = gm_session_find(hub, p->conn_id);

    if (s != NULL && s->state != GM_SS_CLOSED) {
        evbuffer_add_buffer(s->out, p->local);
        gm_session_want_flush(s);
    }
}

void gm_answer_begin(struct gm_hub *hub, const struct gr_batch *b)
{
    struct gm_marks *m = marks_of(hub, b);

    m->sent_valid = false;
    m->wake_set = false;
}

void gm_marks_free(struct gm_marks *m)
{
    gr_free(m->sent);
    gr_free(m->wake_funcs);
    gr_free(m->wake_budget);
    memset(m, 0, sizeof(*m));
}

/* Before the commit: what may leave early, and the wake-ups (a NOOP is
 * only a hint), written to the sockets while the disk syncs. */
void gm_answer_early(struct gm_hub *hub, struct gr_batch *b)
{
    struct round r;
    struct gm_marks *set;
    struct gr_proposal *p;
    struct gm_session *s;
    size_t i;

    round_init(&r, hub, b, true);
    set = r.m;
    if (GR_ARRAY_RESERVE(set->sent, set->sent_cap, b->fx.n) != 0) {
        return; /* everything goes after the commit instead */
    }
    if (b->fx.n > 0) {
        memset(set->sent, 0, b->fx.n * sizeof(*set->sent));
    }
    set->sent_valid = true;
    for (p = b->props; p != NULL; p = p->next) {
        s = p->conn_id != 0 ? gm_session_find(hub, p->conn_id) : NULL;
        if (p->cmd.type != 0) {
            for (i = p->fx_begin; i < p->fx_end; i++) {
                dispatch_effect(&r, p, &b->fx.v[i]);
            }
        }
        /* A reply of p still to come blocks the connection's later early
         * replies in this batch. */
        if (s != NULL && (p->cmd.type == 0 || !p->answered) &&
            p->cmd.type != STORE_CMD_WORK) {
            s->late_gen = b->gen;
        }
    }
    gm_answer_wake(hub, b);
    gm_hub_flush(hub);
}

/* A member's proposal whose entry came inside a snapshot it installed
 * (p->lost): what it did is not known here. Its connection closes, as if
 * this node had restarted: a worker's jobs go back to the queue (it may
 * hold one its GRAB took), a client submits again elsewhere. A WORK_*
 * expects no answer and keeps its connection. */
static void close_lost(struct gm_hub *hub, const struct gr_proposal *p)
{
    struct gm_session *s;

    if (!p->lost || p->conn_id == 0 || p->cmd.type == STORE_CMD_WORK) {
        return;
    }
    s = gm_session_find(hub, p->conn_id);
    if (s == NULL || s->state == GM_SS_CLOSED) {
        return;
    }
    GR_LOG(GR_LOG_NOTICE, "answer",
           "conn=%llu: its request was applied inside a snapshot from the "
           "leader, its answer unknown here: closing the connection",
           (unsigned long long)p->conn_id);
    if (p->cmd.type == STORE_CMD_GRAB) {
        s->grabbed = true;
    }
    if (p->cmd.type == STORE_CMD_SUBMIT && !p->cmd.u.submit.background) {
        s->submitted_fg = true; /* the wait apply may have attached */
    }
    gm_session_close(s, true);
}

void gm_answer_committed(struct gm_hub *hub, struct gr_batch *b)
{
    struct round r;
    struct gr_proposal *p;
    size_t i;

    round_init(&r, hub, b, false);
    for (p = b->props; p != NULL; p = p->next) {
        close_lost(hub, p);
        if (p->cmd.type == 0) {
            deliver_local(hub, p);
        } else {
            for (i = p->fx_begin; i < p->fx_end; i++) {
                dispatch_effect(&r, p, &b->fx.v[i]);
            }
        }
    }
    /* Only now resume the sessions: they may propose again. */
    for (p = b->props; p != NULL; p = p->next) {
        finish(hub, p);
    }
}

void gm_answer_failed(struct gm_hub *hub, struct gr_batch *b)
{
    struct gr_proposal *p;
    struct gm_session *s;
    int rv = b->rv;

    for (p = b->props; p != NULL; p = p->next) {
        if (p->cmd.type == 0) {
            deliver_local(hub, p);
            continue;
        }
        if (p->conn_id == 0 || p->answered) {
            continue;
        }
        s = gm_session_find(hub, p->conn_id);
        if (s == NULL || s->state == GM_SS_CLOSED) {
            continue;
        }
        if (p->admin) {
            evbuffer_add_printf(s->out, "ERR QUEUE_ERROR %s\r\n",
                                rv == STORE_ENOSPC ? "Storage+is+full"
                                                   : "Storage+write+failed");
        } else {
            gm_error_write(s->out, "QUEUE_ERROR",
                           rv == STORE_ENOSPC
                               ? "Job queue is full: storage is full"
                               : "Job queue error: storage write failed");
        }
        gm_session_want_flush(s);
    }
    for (p = b->props; p != NULL; p = p->next) {
        finish(hub, p);
    }
}
