/* SPDX-License-Identifier: BSD-3-Clause
 * tests/simhost/sh_gear.c - Gearman clients and workers on the simulated
 * members, and the ledger that checks what they see.
 *
 * A client submits background jobs on one node; the payload "s<k>" names
 * submission k, so a job handed out says which submission it came from.
 * A worker connection sends GRAB_JOB when it connects, when its node
 * applies a WAKE (the NOOP after PRE_SLEEP), after NO_JOB when its
 * PRE_SLEEP finds a runnable job on its node, and after each
 * WORK_COMPLETE. Each request becomes
 * the proposal node/gearman/request.c builds, and each answer is an
 * effect that the node's own apply produced for that connection
 * (addressed to this node and incarnation, as node/gearman/answer.c
 * filters them).
 *
 * The ledger checks, as the effects arrive:
 *   - JOB_CREATED reaches a client at most once per submission, and a
 *     submission has one job number however often it is forwarded;
 *   - a worker is answered only when it asked (a GRAB applied twice
 *     would answer it twice);
 *   - every job handed out carries a submission's payload and function
 *     (nothing that was never submitted);
 *   - a job is handed out again only after its previous worker was lost
 *     to the cluster (a NODE_GONE of its incarnation or a RELEASE of its
 *     connection applied) and never after it completed - judged in log
 *     order, from the first node to apply each entry (every node's
 *     apply gives the same effects), since a node that lags applies an
 *     old hand-out long after a newer one;
 *   - a live worker's WORK_COMPLETE is never refused;
 *   - at every applied index the state digest (store_digest) is the same
 *     on every node that reached it.
 * At the end of a seed, every acknowledged submission's job must be done.
 *
 * Not here: the members and the network (sh_node.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/gr.h"
#include "simhost.h"

/* ---------------------------------------------------------------------
 * Building proposals.
 */

static struct gr_proposal *proposal_new(void)
{
    struct gr_proposal *p = gr_proposal_new();

    if (p == NULL) {
        fprintf(stderr, "simhost: out of memory\n");
        abort();
    }
    return p;
}

/* Memory the proposal's command points into (freed with it). */
static uint8_t *owned(struct gr_proposal *p, size_t len)
{
    p->owned = gr_malloc(len > 0 ? len : 1);
    if (p->owned == NULL) {
        fprintf(stderr, "simhost: out of memory\n");
        abort();
    }
    return p->owned;
}

static struct store_conn_ref ref_of(const struct sh_node *n, uint64_t conn)
{
    struct store_conn_ref r;

    r.node_id = (uint64_t)n->id;
    r.incarnation = n->inc;
    r.conn_id = conn;
    return r;
}

static bool ref_eq(struct store_conn_ref a, struct store_conn_ref b)
{
    return a.node_id == b.node_id && a.incarnation == b.incarnation &&
           a.conn_id == b.conn_id;
}

/* ---------------------------------------------------------------------
 * Connections.
 */

static void wref_add(struct sh_world *w, struct store_conn_ref r)
{
    if (w->n_wrefs == w->cap_wrefs) {
        size_t cap = w->cap_wrefs == 0 ? 64 : w->cap_wrefs * 2;
        struct sh_wref *v = realloc(w->wrefs, cap * sizeof(*v));

        if (v == NULL) {
            abort();
        }
        w->wrefs = v;
        w->cap_wrefs = cap;
    }
    w->wrefs[w->n_wrefs].ref = r;
    w->wrefs[w->n_wrefs].released = false;
    w->n_wrefs++;
}

static struct sh_wref *wref_find(struct sh_world *w, struct store_conn_ref r)
{
    size_t i;

    for (i = 0; i < w->n_wrefs; i++) {
        if (ref_eq(w->wrefs[i].ref, r)) {
            return &w->wrefs[i];
        }
    }
    return NULL;
}

static void poll_later(struct sh_world *w, struct sh_node *n, int slot,
                       uint64_t lo, uint64_t hi)
{
    struct sim_event ev = {0};
    struct sh_worker *wk = &n->w[slot];

    if (wk->poll_set) {
        return;
    }
    wk->poll_set = true;
    ev.kind = SH_EV_POLL;
    ev.node = n->id;
    ev.arg = (uint64_t)slot | wk->life << 8;
    sim_queue_push(&w->q, sim_rng_range(&w->rng, lo, hi), ev);
}

void sh_gear_connect(struct sh_world *w, struct sh_node *n)
{
    int i;

    n->next_conn = 0;
    n->client_conn = ++n->next_conn;
    for (i = 0; i < w->sw.n_workers; i++) {
        struct sh_worker *wk = &n->w[i];

        wk->state = SH_W_IDLE;
        wk->conn_id = ++n->next_conn;
        wk->life++;
        wk->poll_set = false;
        wref_add(w, ref_of(n, wk->conn_id));
        poll_later(w, n, i, 0, 50);
    }
}

void sh_gear_disconnect(struct sh_world *w, struct sh_node *n)
{
    int i;

    (void)w;
    for (i = 0; i < SH_MAX_WORKERS; i++) {
        n->w[i].state = SH_W_GONE;
        n->w[i].life++;
        n->w[i].poll_set = false;
    }
}

/* ---------------------------------------------------------------------
 * Requests.
 */

void sh_gear_submit(struct sh_world *w, struct sh_node *n)
{
    struct gr_proposal *p = proposal_new();
    struct store_submit *sub = &p->cmd.u.submit;
    struct sh_sub *s;
    uint8_t *mem;
    int k;
    int len;

    if (w->n_subs == w->cap_subs) {
        size_t cap = w->cap_subs == 0 ? 256 : w->cap_subs * 2;
        struct sh_sub *v = realloc(w->subs, cap * sizeof(*v));

        if (v == NULL) {
            abort();
        }
        w->subs = v;
        w->cap_subs = cap;
    }
    k = (int)w->n_subs++;
    s = &w->subs[k];
    memset(s, 0, sizeof(*s));
    s->node = n->id;
    s->inc = n->inc;
    s->conn = n->client_conn;
    s->at = w->q.now;
    s->func = (int)sim_rng_range(&w->rng, 0, (uint64_t)w->sw.n_funcs - 1);
    mem = owned(p, 32);
    len = snprintf((char *)mem, 16, "f%d", s->func);
    sub->function.base = mem;
    sub->function.len = (size_t)len;
    len = snprintf((char *)mem + 16, 16, "s%d", k);
    sub->data.base = mem + 16;
    sub->data.len = (size_t)len;
    sub->prio = (enum store_prio)sim_rng_range(&w->rng, 0, 2);
    sub->background = true;
    sub->client = ref_of(n, n->client_conn);
    p->cmd.type = STORE_CMD_SUBMIT;
    p->conn_id = n->client_conn;
    sh_log(w, "n%d submit s%d f%d", n->id, k, s->func);
    sh_node_propose(w, n, p);
}

static void grab(struct sh_world *w, struct sh_node *n, int slot)
{
    struct gr_proposal *p = proposal_new();
    struct sh_worker *wk = &n->w[slot];
    struct store_buf *fv;
    uint8_t *names;
    int i;

    fv = (struct store_buf *)(void *)owned(
        p, SH_MAX_FUNCS * sizeof(*fv) + SH_MAX_FUNCS * 4);
    names = (uint8_t *)(fv + SH_MAX_FUNCS);
    for (i = 0; i < w->sw.n_funcs; i++) {
        int len = snprintf((char *)names + 4 * i, 4, "f%d", i);

        fv[i].base = names + 4 * i;
        fv[i].len = (size_t)len;
    }
    p->cmd.type = STORE_CMD_GRAB;
    p->cmd.u.grab.worker = ref_of(n, wk->conn_id);
    p->cmd.u.grab.functions = fv;
    p->cmd.u.grab.n_functions = (size_t)w->sw.n_funcs;
    p->conn_id = wk->conn_id;
    wk->state = SH_W_GRABBING;
    sh_node_propose(w, n, p);
}

static void complete(struct sh_world *w, struct sh_node *n, int slot)
{
    struct gr_proposal *p = proposal_new();
    struct sh_worker *wk = &n->w[slot];
    struct store_work *wo = &p->cmd.u.work;
    uint8_t *mem = owned(p, STORE_HANDLE_MAX + 8);
    size_t len = store_handle_format(n->s, wk->job, (char *)mem,
                                     STORE_HANDLE_MAX);

    p->cmd.type = STORE_CMD_WORK;
    wo->worker = ref_of(n, wk->conn_id);
    wo->kind = STORE_WORK_COMPLETE;
    wo->handle.base = mem;
    wo->handle.len = len;
    memcpy(mem + STORE_HANDLE_MAX, "ok", 2);
    wo->data.base = mem + STORE_HANDLE_MAX;
    wo->data.len = 2;
    p->conn_id = wk->conn_id;
    sh_log(w, "n%d w%d complete s%d job %llu", n->id, slot, wk->sub,
           (unsigned long long)wk->job);
    sh_node_propose(w, n, p);
}

void sh_gear_release(struct sh_world *w, struct sh_node *n, int slot)
{
    struct gr_proposal *p;
    struct sh_worker *wk = &n->w[slot];

    if (!n->up || wk->state == SH_W_GONE) {
        return;
    }
    /* The connection closes: its node proposes RELEASE for it
     * (node/gearman/conn.c), and the worker connects again. */
    p = proposal_new();
    p->cmd.type = STORE_CMD_RELEASE;
    p->cmd.u.release.worker = ref_of(n, wk->conn_id);
    p->cmd.u.release.max_retries = 0;
    sh_log(w, "n%d w%d disconnects (conn %llu, %s)", n->id, slot,
           (unsigned long long)wk->conn_id,
           wk->state == SH_W_WORKING ? "holding a job" : "idle");
    sh_node_propose(w, n, p);
    wk->conn_id = ++n->next_conn;
    wk->state = SH_W_IDLE;
    wk->life++;
    wk->poll_set = false;
    wref_add(w, ref_of(n, wk->conn_id));
    poll_later(w, n, slot, 0, 50);
}

void sh_gear_worker_event(struct sh_world *w, struct sh_node *n, int kind,
                          uint64_t arg)
{
    int slot = (int)(arg & 0xff);
    struct sh_worker *wk = &n->w[slot];

    if (!n->up || wk->life != arg >> 8) {
        return; /* a timer of a connection that is gone */
    }
    if (kind == SH_EV_POLL) {
        wk->poll_set = false;
        if (wk->state == SH_W_IDLE) {
            grab(w, n, slot);
        }
        return;
    }
    if (wk->state == SH_W_WORKING) {
        complete(w, n, slot);
        grab(w, n, slot); /* a worker's loop asks for the next at once */
    }
}

/* ---------------------------------------------------------------------
 * The ledger.
 */

static int job_sub(const struct sh_world *w, uint64_t job)
{
    size_t i;

    for (i = 0; i < w->n_subs; i++) {
        if (w->subs[i].job == job) {
            return (int)i;
        }
    }
    return -1;
}

static uint64_t handle_num(struct store_buf h)
{
    uint64_t v = 0;
    size_t i = h.len;

    while (i > 0 && h.base[i - 1] != ':') {
        i--;
    }
    for (; i < h.len; i++) {
        if (h.base[i] < '0' || h.base[i] > '9') {
            return 0;
        }
        v = v * 10 + (uint64_t)(h.base[i] - '0');
    }
    return v;
}

/* The submission a payload names, or -1. */
static int payload_sub(const struct sh_world *w, struct store_buf d)
{
    uint64_t k = 0;
    size_t i;

    if (d.len < 2 || d.len > 12 || d.base[0] != 's') {
        return -1;
    }
    for (i = 1; i < d.len; i++) {
        if (d.base[i] < '0' || d.base[i] > '9') {
            return -1;
        }
        k = k * 10 + (uint64_t)(d.base[i] - '0');
    }
    return k < w->n_subs ? (int)k : -1;
}

static bool func_is(struct store_buf f, int func)
{
    char want[16];
    int len = snprintf(want, sizeof(want), "f%d", func);

    return f.len == (size_t)len && memcmp(f.base, want, f.len) == 0;
}

/* A job number learnt for submission k: it must be the only one. */
static void learn_job(struct sh_world *w, int k, uint64_t job,
                      const char *how)
{
    struct sh_sub *s = &w->subs[k];

    if (s->job == 0) {
        s->job = job;
    } else if (s->job != job) {
        sh_fail(w, "submission s%d became two jobs: %llu and %llu (%s)", k,
                (unsigned long long)s->job, (unsigned long long)job, how);
    }
}

static bool holder_lost(const struct sh_world *w, struct store_conn_ref h)
{
    const struct sh_wref *r;

    if (h.node_id < 1 || h.node_id > SH_MAX_NODES) {
        return false;
    }
    if (w->gone_inc[h.node_id] >= h.incarnation) {
        return true;
    }
    r = wref_find((struct sh_world *)w, h);
    return r != NULL && r->released;
}

/* ---- facts of the replicated state, taken in log order ---- */

/* A job handed out in the replicated state (an ASSIGN effect, whoever
 * it is for): its payload must be a submission's, and a job goes out
 * again only after its previous worker was lost and never once done. */
static void log_assign(struct sh_world *w, const struct store_effect *e,
                       uint64_t index)
{
    int k = payload_sub(w, e->data);
    struct sh_sub *s;

    if (k < 0 || !func_is(e->function, w->subs[k].func)) {
        sh_fail(w, "index %llu hands out job %llu that was never submitted "
                   "(payload %.*s, function %.*s)",
                (unsigned long long)index, (unsigned long long)e->job,
                (int)e->data.len, (const char *)e->data.base,
                (int)e->function.len, (const char *)e->function.base);
        return;
    }
    s = &w->subs[k];
    learn_job(w, k, e->job, "handed out");
    if (s->n_handed > 0) {
        if (s->done) {
            sh_fail(w,
                    "index %llu hands out s%d (job %llu) again after it "
                    "completed",
                    (unsigned long long)index, k, (unsigned long long)e->job);
        } else if (!holder_lost(w, s->holder)) {
            sh_fail(w,
                    "index %llu hands out s%d (job %llu) again, to node %llu "
                    "inc %llu conn %llu, while its worker (node %llu inc %llu "
                    "conn %llu) was not lost",
                    (unsigned long long)index, k, (unsigned long long)e->job,
                    (unsigned long long)e->to.node_id,
                    (unsigned long long)e->to.incarnation,
                    (unsigned long long)e->to.conn_id,
                    (unsigned long long)s->holder.node_id,
                    (unsigned long long)s->holder.incarnation,
                    (unsigned long long)s->holder.conn_id);
        }
        w->n_redo++;
    }
    s->n_handed++;
    s->holder = e->to;
    sh_log(w, "index %llu: s%d job %llu to n%llu inc %llu conn %llu",
           (unsigned long long)index, k, (unsigned long long)e->job,
           (unsigned long long)e->to.node_id,
           (unsigned long long)e->to.incarnation,
           (unsigned long long)e->to.conn_id);
}

/* A NODE_GONE of another node is a leader's judgment in its term: it
 * must commit in an entry of that term, never through a later leader
 * (node/pipeline/member.c voids it once its judge no longer leads). */
static void check_judgment(struct sh_world *w, const struct sh_node *n,
                           const struct store_cmd *c, uint64_t index)
{
    uint64_t term = raft_term_at(n->h.raft, index);
    size_t i;

    if (c->type != STORE_CMD_NODE_GONE ||
        c->u.node_gone.node_id == c->origin.node_id || term == 0) {
        return;
    }
    for (i = 0; i < w->n_judged; i++) {
        const struct sh_judgment *j = &w->judged[i];

        if (j->node == c->origin.node_id && j->inc == c->origin.incarnation &&
            j->seq == c->origin.seq && j->term != term) {
            sh_fail(w, "index %llu: n%llu's NODE_GONE of n%llu, judged in "
                       "term %llu, committed in term %llu",
                    (unsigned long long)index,
                    (unsigned long long)c->origin.node_id,
                    (unsigned long long)c->u.node_gone.node_id,
                    (unsigned long long)j->term, (unsigned long long)term);
        }
    }
}

/* What an applied command tells the ledger, whoever proposed it. */
static void log_command(struct sh_world *w, const struct store_cmd *c)
{
    if (c->type == STORE_CMD_NODE_GONE && c->u.node_gone.node_id >= 1 &&
        c->u.node_gone.node_id <= SH_MAX_NODES) {
        uint64_t *g = &w->gone_inc[c->u.node_gone.node_id];

        if (c->u.node_gone.incarnation > *g) {
            *g = c->u.node_gone.incarnation;
            w->n_gone++;
        }
    } else if (c->type == STORE_CMD_RELEASE &&
               c->u.release.function.len == 0) {
        struct sh_wref *r = wref_find(w, c->u.release.worker);

        if (r != NULL && !r->released) {
            r->released = true;
            w->n_releases++;
        }
        sh_log(w, "RELEASE of n%llu inc %llu conn %llu applied (seq %llu)",
               (unsigned long long)c->u.release.worker.node_id,
               (unsigned long long)c->u.release.worker.incarnation,
               (unsigned long long)c->u.release.worker.conn_id,
               (unsigned long long)c->origin.seq);
    }
}

/* The first node to apply an entry tells the ledger what it did: every
 * node's apply gives the same effects, and taking them in log order is
 * what makes "handed out again only after a loss" checkable. */
static void log_entry(struct sh_world *w, const struct gr_proposal *p,
                      const struct store_effects *fx)
{
    size_t i;

    log_command(w, &p->cmd);
    for (i = p->fx_begin; i < p->fx_end && i < fx->n; i++) {
        const struct store_effect *e = &fx->v[i];
        int k;

        if (e->type == STORE_FX_ASSIGN) {
            log_assign(w, e, p->index);
        } else if (e->type == STORE_FX_JOB_DONE) {
            k = job_sub(w, e->job);
            if (k >= 0) {
                w->subs[k].done = true;
            }
        } else if (e->type == STORE_FX_CREATED &&
                   p->cmd.type == STORE_CMD_SUBMIT &&
                   (k = payload_sub(w, p->cmd.u.submit.data)) >= 0) {
            learn_job(w, k, handle_num(e->handle), "created");
        }
    }
}

/* ---- what reaches this node's clients and workers ---- */

static void on_created(struct sh_world *w, struct sh_node *n,
                       const struct gr_proposal *p,
                       const struct store_effect *e)
{
    int k = p->cmd.type == STORE_CMD_SUBMIT
                ? payload_sub(w, p->cmd.u.submit.data)
                : -1;

    if (k < 0 || e->to.conn_id != n->client_conn) {
        sh_fail(w, "n%d: JOB_CREATED for no submission of its client",
                n->id);
        return;
    }
    w->subs[k].n_created++;
    if (w->subs[k].n_created > 1) {
        sh_fail(w, "s%d: JOB_CREATED %d times", k, w->subs[k].n_created);
    }
    w->subs[k].acked = true;
    sh_log(w, "n%d s%d acked: job %llu", n->id, k,
           (unsigned long long)handle_num(e->handle));
}

static int worker_slot(const struct sh_world *w, const struct sh_node *n,
                       uint64_t conn)
{
    int i;

    for (i = 0; i < w->sw.n_workers; i++) {
        if (n->w[i].state != SH_W_GONE && n->w[i].conn_id == conn) {
            return i;
        }
    }
    return -1;
}

static void on_assign(struct sh_world *w, struct sh_node *n, int slot,
                      const struct store_effect *e)
{
    struct sh_worker *wk = &n->w[slot];
    struct sim_event ev = {0};
    int k = payload_sub(w, e->data);

    if (k < 0) {
        return; /* log_assign failed the seed */
    }
    wk->state = SH_W_WORKING;
    wk->job = e->job;
    wk->sub = k;
    sh_log(w, "n%d w%d assigned s%d job %llu%s", n->id, slot, k,
           (unsigned long long)e->job,
           w->subs[k].n_handed > 1 ? " (again)" : "");
    ev.kind = SH_EV_WORKER;
    ev.node = n->id;
    ev.arg = (uint64_t)slot | wk->life << 8;
    sim_queue_push(&w->q, sim_rng_range(&w->rng, 1, w->sw.work_max_ms), ev);
}

/* NO_JOB: the worker sends PRE_SLEEP, which reads only its node's
 * state: a runnable job there wakes it at once (NOOP), else it sleeps
 * until its node applies a WAKE. */
static void pre_sleep(struct sh_world *w, struct sh_node *n, int slot)
{
    struct store_buf fv[SH_MAX_FUNCS];
    char names[SH_MAX_FUNCS][4];
    struct store_txn *txn;
    bool runnable = false;
    int i;

    for (i = 0; i < w->sw.n_funcs; i++) {
        int len = snprintf(names[i], sizeof(names[i]), "f%d", i);

        fv[i].base = (const uint8_t *)names[i];
        fv[i].len = (size_t)len;
    }
    if (store_txn_begin(n->s, false, &txn) == 0) {
        (void)store_has_runnable(txn, fv, (size_t)w->sw.n_funcs,
                                 SH_WALL_BASE + w->q.now, &runnable);
        store_txn_abort(txn);
    }
    if (runnable) {
        poll_later(w, n, slot, 1, 20);
    }
}

/* An effect addressed to a worker connection of n. */
static void to_worker(struct sh_world *w, struct sh_node *n,
                      const struct store_effect *e)
{
    int slot = worker_slot(w, n, e->to.conn_id);

    if (slot < 0) {
        return; /* a connection that was closed: its session is gone */
    }
    switch (e->type) {
    case STORE_FX_ASSIGN:
    case STORE_FX_NO_JOB:
        if (n->w[slot].state != SH_W_GRABBING) {
            sh_fail(w, "n%d w%d got %s without a GRAB waiting", n->id, slot,
                    e->type == STORE_FX_ASSIGN ? "JOB_ASSIGN" : "NO_JOB");
            return;
        }
        if (e->type == STORE_FX_ASSIGN) {
            on_assign(w, n, slot, e);
        } else {
            n->w[slot].state = SH_W_IDLE;
            pre_sleep(w, n, slot);
        }
        break;
    case STORE_FX_REFUSED:
        if (w->gone_inc[n->id] < n->inc) {
            sh_fail(w, "n%d w%d: a request of a live worker refused: %.*s",
                    n->id, slot, (int)e->text.len,
                    (const char *)e->text.base);
        }
        break;
    default:
        break;
    }
}

static void wake(struct sh_world *w, struct sh_node *n)
{
    int i;

    for (i = 0; i < w->sw.n_workers; i++) {
        if (n->w[i].state == SH_W_IDLE) {
            grab(w, n, i);
        }
    }
}

/* A request of n applied inside a snapshot n installed: its answer is
 * unknown there, and the node closes its connection
 * (node/gearman/answer.c): a worker's node proposes RELEASE and the
 * worker connects again; a client connects again. */
static void lost(struct sh_world *w, struct sh_node *n,
                 const struct gr_proposal *p)
{
    int slot;

    if (p->conn_id == 0 || p->cmd.type == STORE_CMD_WORK) {
        return;
    }
    w->n_lost++;
    if (p->conn_id == n->client_conn) {
        sh_log(w, "n%d client's request lost in a snapshot: reconnects",
               n->id);
        n->client_conn = ++n->next_conn;
        return;
    }
    slot = worker_slot(w, n, p->conn_id);
    if (slot >= 0) {
        sh_log(w, "n%d w%d's request lost in a snapshot: closed", n->id,
               slot);
        sh_gear_release(w, n, slot);
    }
}

/* The effects of one entry for n's own connections (node/gearman/
 * answer.c's filter: this node and this incarnation). */
static bool deliver_entry(struct sh_world *w, struct sh_node *n,
                          const struct gr_proposal *p,
                          const struct store_effects *fx)
{
    bool woken = false;
    size_t i;

    for (i = p->fx_begin; i < p->fx_end && i < fx->n; i++) {
        const struct store_effect *e = &fx->v[i];

        if (e->type == STORE_FX_WAKE) {
            woken = true;
        } else if (e->to.node_id != (uint64_t)n->id ||
                   e->to.incarnation != n->inc) {
            continue;
        } else if (e->type == STORE_FX_CREATED) {
            if (e->to.conn_id == n->client_conn) {
                on_created(w, n, p, e);
            } /* else its client's connection closed (lost): no session */
        } else if (e->to.conn_id == n->client_conn) {
            if (e->type == STORE_FX_REFUSED) {
                sh_log(w, "n%d client refused: %.*s", n->id,
                       (int)e->text.len, (const char *)e->text.base);
            }
        } else if (e->type != STORE_FX_JOB_DONE) {
            to_worker(w, n, e);
        }
    }
    return woken;
}

void sh_gear_applied(struct sh_world *w, struct sh_node *n,
                     const struct gr_batch *b)
{
    const struct gr_proposal *p;
    bool woken = false;

    for (p = b->props; p != NULL && !w->failed; p = p->next) {
        if (p->cmd.type == 0) {
            continue;
        }
        if (p->lost) {
            lost(w, n, p);
            continue;
        }
        if (p->index > w->log_seen) {
            check_judgment(w, n, &p->cmd, p->index);
            log_entry(w, p, &b->fx);
            w->log_seen = p->index;
        }
        woken |= deliver_entry(w, n, p, &b->fx);
    }
    if (woken) {
        wake(w, n);
    }
}

/* ---------------------------------------------------------------------
 * The digest of the replicated state, by applied index.
 */

static void digest_room(struct sh_world *w, uint64_t index)
{
    size_t cap = w->cap_digest;

    if (index < cap) {
        return;
    }
    while (cap <= index) {
        cap = cap == 0 ? 4096 : cap * 2;
    }
    w->digest = realloc(w->digest, cap * sizeof(*w->digest));
    w->digest_node = realloc(w->digest_node, cap * sizeof(*w->digest_node));
    if (w->digest == NULL || w->digest_node == NULL) {
        abort();
    }
    memset(w->digest + w->cap_digest, 0,
           (cap - w->cap_digest) * sizeof(*w->digest));
    memset(w->digest_node + w->cap_digest, 0,
           (cap - w->cap_digest) * sizeof(*w->digest_node));
    w->cap_digest = cap;
}

void sh_gear_digest(struct sh_world *w, struct sh_node *n)
{
    uint64_t index;
    uint64_t d;
    int rv = store_digest(n->s, &index, &d);

    if (rv != 0) {
        sh_fail(w, "n%d: store_digest: %s", n->id, store_strerror(rv));
        return;
    }
    digest_room(w, index);
    if (w->digest_node[index] == 0) {
        w->digest[index] = d;
        w->digest_node[index] = n->id;
        return;
    }
    w->n_digests_compared++;
    if (w->digest[index] != d) {
        sh_fail(w,
                "state differs at applied index %llu: n%d has digest "
                "%016" PRIx64 ", n%d has %016" PRIx64,
                (unsigned long long)index, w->digest_node[index],
                w->digest[index], n->id, d);
    }
}

bool sh_gear_all_done(const struct sh_world *w, size_t *missing)
{
    size_t i;
    size_t m = 0;

    for (i = 0; i < w->n_subs; i++) {
        m += w->subs[i].acked && !w->subs[i].done;
    }
    *missing = m;
    return m == 0;
}

void sh_gear_free(struct sh_world *w)
{
    free(w->subs);
    w->subs = NULL;
    w->n_subs = w->cap_subs = 0;
    free(w->wrefs);
    w->wrefs = NULL;
    w->n_wrefs = w->cap_wrefs = 0;
    free(w->judged);
    w->judged = NULL;
    w->n_judged = w->cap_judged = 0;
    free(w->digest);
    free(w->digest_node);
    w->digest = NULL;
    w->digest_node = NULL;
    w->cap_digest = 0;
}
