/* SPDX-License-Identifier: BSD-3-Clause
 * node/alone/ahead.c - the jobs submissions not yet committed will queue
 * (ahead.h says why).
 *
 * The rule. A SUBMIT is "certain" when the loop can tell, as it is read,
 * that its apply will queue a new job runnable at once: the committed
 * state says so (store_submit_queues_new: valid, not scheduled, no job
 * of its unique key, no queue limit for its function and priority), and
 * nothing queued before it can change that - no blind proposal, no
 * change of the queue limits not yet committed (srv->n_limits) and no
 * other submission of the same unique key not yet committed. Its job's number
 * is the log index the SUBMIT will get: with one voter the loop appends its
 * proposals in the order they are queued, one index each, from srv->next_index
 * on (the batch in flight first, then the queue). Every other SUBMIT is
 * "unsure" until committed (srv->n_unsure), and so is every SUBMIT read while
 * GR_AHEAD_MAX proposals wait: that keeps the walks short. Where the loop
 * is not the one voter (srv->decides_alone off), none is certain.
 *
 * What it is used for: a GRAB may be handed a certain job (gm_session.c,
 * hand_out) exactly as a committed one, with the same care - its GRAB
 * names the job and comes after the SUBMIT in the log. And when nothing
 * is unsure or blind, the loop knows every job there is and will be, so
 * a GRAB or PRE_SLEEP that finds nothing needs no batch: NO_JOB or sleep
 * at once, as gearmand answers, since every certain SUBMIT wakes the
 * sleepers of its function as it is read (and every other job wakes them
 * when it is applied, as before).
 *
 * If a batch fails, the numbers given to the jobs of its submissions and
 * of everything queued behind it are wrong (the next batch reuses the
 * indexes). Every worker that was handed such a job is then closed, as if
 * it had gone, and its GRAB neutralised; the jobs themselves are queued
 * again by the next batch, or refused with the batch.
 */
#include "node/alone/ahead.h"

#include <string.h>

#include <event2/buffer.h>

#include "node/gearman/session.h"
#include "node/loop.h"

static bool same_key(const struct store_submit *a, const struct store_submit *b)
{
    return a->function.len == b->function.len &&
           memcmp(a->function.base, b->function.base, a->function.len) == 0 &&
           a->unique.len == b->unique.len &&
           memcmp(a->unique.base, b->unique.base, a->unique.len) == 0;
}

/* True if a submission not yet committed has sub's unique key: whether
 * sub joins that job or queues its own depends on what happens to it
 * meanwhile. */
static bool key_pending(const struct gr_server *srv,
                        const struct store_submit *sub)
{
    struct gr_proposal *lists[2];
    const struct gr_proposal *q;
    int i;

    /* (Called only while fewer than GR_AHEAD_MAX wait.) */
    gr_pipeline_uncommitted(&srv->pipe, lists);
    for (i = 0; i < 2; i++) {
        for (q = lists[i]; q != NULL; q = q->next) {
            if (q->cmd.type == STORE_CMD_SUBMIT &&
                same_key(&q->cmd.u.submit, sub)) {
                return true;
            }
        }
    }
    return false;
}

static bool certain(struct gr_server *srv, const struct store_submit *sub)
{
    struct store_txn *txn;
    bool queues = false;
    int rv;

    if (!srv->decides_alone || srv->n_blind > 0 || srv->n_limits > 0 ||
        srv->pipe.n_uncommitted >= GR_AHEAD_MAX) {
        return false;
    }
    if (sub->unique.len > 0 && key_pending(srv, sub)) {
        return false;
    }
    if (store_txn_begin(srv->store, false, &txn) != 0) {
        return false;
    }
    rv = store_submit_queues_new(txn, sub, &queues);
    store_txn_abort(txn);
    return rv == 0 && queues;
}

void gr_ahead_classify(struct gr_server *srv, struct gr_proposal *p)
{
    const struct store_submit *sub = &p->cmd.u.submit;

    if (p->cmd.type == STORE_CMD_MAXQUEUE) {
        /* Until committed, the limit a submission meets is unknown. */
        p->unsure = true;
        srv->n_unsure++;
        srv->n_limits++;
        return;
    }
    if (p->cmd.type != STORE_CMD_SUBMIT) {
        return;
    }
    p->ahead = certain(srv, sub);
    p->unsure = !p->ahead;
    srv->n_unsure += p->unsure;
    if (p->ahead) {
        size_t budget = srv->cfg->worker_wakeup;

        gr_server_wake(srv, &sub->function, budget > 0 ? &budget : NULL, 1);
    }
}

bool gr_ahead_best(const struct gr_server *srv, struct store_buf fn,
                   store_skip_fn skip, void *skip_arg, struct gr_ahead_job *out)
{
    struct gr_proposal *lists[2];
    struct gr_proposal *q;
    uint64_t num = srv->pipe.next_index;
    bool found = false;
    size_t seen = 0;
    int i;

    gr_pipeline_uncommitted(&srv->pipe, lists);
    /* Every certain SUBMIT is among the first GR_AHEAD_MAX. */
    for (i = 0; i < 2; i++) {
        for (q = lists[i]; q != NULL && seen < GR_AHEAD_MAX;
             q = q->next, seen++) {
            const struct store_submit *sub = &q->cmd.u.submit;

            if (q->cmd.type == 0) {
                continue; /* a local reply: no log entry */
            }
            num++;
            if (!q->ahead || sub->function.len != fn.len ||
                memcmp(sub->function.base, fn.base, fn.len) != 0 ||
                skip(skip_arg, num - 1)) {
                continue;
            }
            if (!found || sub->prio < out->submit->cmd.u.submit.prio) {
                out->num = num - 1;
                out->submit = q;
                found = true;
            }
        }
    }
    return found;
}

bool gr_ahead_complete(const struct gr_server *srv)
{
    return srv->n_unsure == 0 && srv->n_blind == 0 && srv->n_restricted == 0;
}

/* A GRAB of the batch that failed or queued behind it, handed a job
 * numbered from start on: its worker goes. */
static void drop_hand_out(struct gr_server *srv, struct gr_proposal *p,
                          uint64_t start, bool queued)
{
    struct gm_session *w;

    if (p->cmd.type != STORE_CMD_GRAB || p->cmd.u.grab.job < start) {
        return;
    }
    if (queued) {
        /* Its apply takes nothing now (below min_job is every job). */
        gr_numset_del(&srv->handed_out, p->cmd.u.grab.job);
        p->cmd.u.grab.job = 0;
        p->cmd.u.grab.min_job = UINT64_MAX;
    }
    w = gr_session_find(srv, p->conn_id);
    if (w != NULL) {
        GR_LOG(GR_LOG_WARN, "ahead",
               "conn=%llu: a batch failed after this worker was handed a "
               "job it held: closing it",
               (unsigned long long)w->conn_id);
        gm_session_close(w, false);
    }
}

void gr_ahead_failed(struct gr_server *srv, struct gr_proposal *batch,
                     uint64_t start)
{
    struct gr_proposal *p;

    for (p = batch; p != NULL; p = p->next) {
        drop_hand_out(srv, p, start, false);
    }
    for (p = srv->pipe.head; p != NULL; p = p->next) {
        drop_hand_out(srv, p, start, true);
        if (p->after != NULL) {
            evbuffer_free(p->after);
            p->after = NULL;
        }
    }
}
