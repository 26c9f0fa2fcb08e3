/* SPDX-License-Identifier: BSD-3-Clause
 * node/gearman/handout.c - handing a job out at GRAB time (handout.h).
 *
 * The pick is the one apply would make, from the last committed state:
 * the worker's functions in its order (1.1.x takes the first of them that
 * has a runnable job), the best priority then queue order, passing over
 * the jobs handed out whose GRABs are not yet committed and those taken
 * or dropped by batches applied but not yet committed. That is exact
 * while nothing blind is in flight (node/alone/alone.h): submissions only
 * add jobs, WORK_* ends running ones. A job ahead of its commit
 * (node/alone/ahead.h) competes with the committed ones by priority. The
 * worker must have no earlier reply still to come (n_may_reply), so
 * replies keep their order. Like an early JOB_ASSIGN, the job is handed
 * out before the disk has the GRAB: if that commit fails, the job is
 * still queued and runs again (at-least-once).
 *
 * Not here: the ordinary GRAB (request.c), relays (relay.c).
 */
#include "node/gearman/handout.h"

#include <string.h>

#include <event2/buffer.h>

#include "node/alone/ahead.h"
#include "node/alone/alone.h"
#include "node/pipeline/pipeline.h"

struct hand_out_arg {
    struct gm_session *s;
    uint32_t type;
    uint64_t floor; /* gr_alone_pick_floor */
    uint64_t num;
    bool dry; /* only look (PRE_SLEEP): hand nothing out */
    /* the best job ahead of the function being looked at, if any */
    const struct gr_ahead_job *ahead;
};

static bool pass_over(void *arg, uint64_t num)
{
    const struct hand_out_arg *a = arg;

    return gr_alone_passes_over(a->s->alone, a->floor, num);
}

/* Writes the JOB_ASSIGN* gearmand would send for v to the worker s at
 * its GRAB (grab_type). Returns 0, or GR_ENOMEM (nothing written). */
static int assign(struct gm_session *s, uint32_t grab_type,
                  const struct store_job_view *v)
{
    uint32_t type = gm_assign_type(grab_type, v->reducer.len);
    struct store_buf a[5];
    size_t n = gm_assign_args(type, v, a);

    gm_session_assigned(s, v->function.base, v->function.len);
    if (gm_packet_write(s->out, type, a, n) != 0) {
        return GR_ENOMEM;
    }
    gm_session_job_assigned(s, v->function.base, v->function.len,
                            v->handle.base, v->handle.len);
    gm_session_want_flush(s);
    return 0;
}

/* Hands out v (the job ahead of submit, or a committed one if NULL),
 * unless a->dry; a job one foreground client waits on is held for its
 * relays (node/alone/hold.h). */
static int give(struct hand_out_arg *a, const struct store_job_view *v,
                struct gr_proposal *submit)
{
    struct gm_session *s = a->s;

    a->num = v->num;
    if (a->dry) {
        return 0;
    }
    if (gr_alone_hand(s->alone, v->num) != 0) {
        return STORE_ENOMEM;
    }
    if (assign(s, a->type, v) != 0) {
        gr_alone_unhand(s->alone, v->num);
        return STORE_ENOMEM;
    }
    if (v->n_waiters == 1 && v->waiter.node_id == s->hub->node_id &&
        v->waiter.incarnation == s->hub->incarnation) {
        gr_holds_add(&s->holds, s->conn_id, v->num, v->handle.base,
                     v->handle.len, v->waiter.conn_id, submit);
    }
    return 0;
}

/* Hands out the job ahead (a->ahead), built from its SUBMIT. */
static int give_ahead(struct hand_out_arg *a)
{
    char handle[STORE_HANDLE_MAX];
    struct store_job_view v;
    int rv;

    gr_ahead_view(a->s->alone, a->ahead, handle, &v);
    rv = give(a, &v, a->ahead->submit);
    if (rv == 0 && !a->dry) {
        a->s->alone->n_ahead++;
    }
    return rv;
}

/* The committed job v, unless the function's best job ahead comes
 * first: a better priority (within one, committed jobs are older). */
static int hand_out_one(void *arg, const struct store_job_view *v)
{
    struct hand_out_arg *a = arg;

    if (a->ahead != NULL && a->ahead->submit->cmd.u.submit.prio < v->prio) {
        return give_ahead(a);
    }
    return give(a, v, NULL);
}

/* What an ordinary GRAB of these functions would take, from the last
 * committed state and the jobs ahead of it, passing over what is taken
 * meanwhile: gives it (a) and sets *found. 1.1.x takes the first of the
 * worker's functions that has a runnable job. */
static int pick(struct hand_out_arg *a, struct store_txn *txn,
                const struct store_buf *functions, size_t n, bool *found)
{
    uint64_t now = gr_now_ms();
    struct gr_ahead_job best;
    size_t i;
    int rv = 0;

    *found = false;
    for (i = 0; i < n && rv == 0 && !*found; i++) {
        a->ahead = gr_ahead_best(a->s->alone, functions[i], pass_over, a, &best)
                       ? &best
                       : NULL;
        rv = store_pick_job(txn, &functions[i], 1, now, pass_over, a,
                            hand_out_one, a, found);
        if (rv == 0 && !*found && a->ahead != NULL) {
            rv = give_ahead(a);
            *found = rv == 0;
        }
    }
    a->ahead = NULL;
    return rv;
}

bool gm_may_hand_out(const struct gm_session *s)
{
    /* Only where the loop decides the log's order (decides_alone); not
     * while a read of queue state waits: it waits for the GRABs of the
     * jobs handed out, which must not keep coming (session.c,
     * must_wait). */
    return s->alone->decides_alone && s->alone->n_blind == 0 &&
           s->hub->n_wait_readers == 0 && s->n_may_reply == 0 && s->n_funcs > 0;
}

void gm_hand_out(struct gm_session *s, uint32_t type, struct store_grab *g)
{
    struct hand_out_arg a = {s, type,  gr_alone_pick_floor(s->alone),
                             0, false, NULL};
    struct store_txn *txn;
    uint64_t applied = 0;
    bool found = false;
    int rv;

    if (!gm_may_hand_out(s) || g->n_functions == 0) {
        return;
    }
    if (store_txn_begin(s->hub->store, false, &txn) != 0) {
        return;
    }
    rv = pick(&a, txn, g->functions, g->n_functions, &found);
    if (rv == 0 && !found) {
        rv = store_applied_index(txn, &applied);
    }
    store_txn_abort(txn);
    if (rv == 0 && found) {
        g->job = a.num;
    } else if (rv == 0) {
        /* Passed over from the floor on, too: a GRAB in flight may take
         * those, and so may this one. */
        g->min_job = a.floor < applied + 1 ? a.floor : applied + 1;
    }
}

bool gm_sleep_now(const struct gm_session *s)
{
    return gr_ahead_complete(s->alone) && s->n_may_reply == 0;
}

bool gm_job_for(struct gm_session *s)
{
    struct hand_out_arg a = {s, 0,    gr_alone_pick_floor(s->alone),
                             0, true, NULL};
    struct store_buf *fv = s->n_funcs > 0 ? gm_session_func_names(s) : NULL;
    struct store_txn *txn;
    bool found = true; /* on doubt, a NOOP: the GRAB then decides */

    if (fv == NULL) {
        return s->n_funcs > 0; /* no function, or out of memory */
    }
    if (store_txn_begin(s->hub->store, false, &txn) == 0) {
        if (pick(&a, txn, fv, s->n_funcs, &found) != 0) {
            found = true;
        }
        store_txn_abort(txn);
    }
    gr_free(fv);
    return found;
}

bool gm_ahead_for(struct gm_session *s)
{
    struct gr_ahead_job j;
    struct gm_func *f;

    for (f = s->funcs; f != NULL; f = f->next) {
        struct store_buf fn = {f->name, f->len};

        if (gr_ahead_best(s->alone, fn, gr_alone_is_handed, s->alone, &j)) {
            return true;
        }
    }
    return false;
}

/* p, of the failed batch or queued behind it: if it is a GRAB that was
 * handed a job numbered from start on, its worker goes. */
static void drop_hand_out(struct gm_hub *hub, struct gr_proposal *p,
                          uint64_t start, bool queued)
{
    struct gm_session *w;

    if (!gr_ahead_void(hub->alone, p, start, queued)) {
        return;
    }
    w = gm_session_find(hub, p->conn_id);
    if (w != NULL) {
        GR_LOG(GR_LOG_WARN, "ahead",
               "conn=%llu: a batch failed after this worker was handed a "
               "job it held: closing it",
               (unsigned long long)w->conn_id);
        gm_session_close(w, false);
    }
}

void gm_handout_failed(struct gm_hub *hub, struct gr_proposal *batch,
                       uint64_t start)
{
    struct gr_proposal *lists[2];
    struct gr_proposal *p;

    for (p = batch; p != NULL; p = p->next) {
        drop_hand_out(hub, p, start, false);
    }
    gr_pipeline_uncommitted(hub->pipe, lists);
    for (p = lists[1]; p != NULL; p = p->next) {
        drop_hand_out(hub, p, start, true);
        if (p->after != NULL) {
            evbuffer_free(p->after);
            p->after = NULL;
        }
    }
}
