/* SPDX-License-Identifier: BSD-3-Clause
 * node/alone/ahead.c - the jobs submissions not yet committed will queue
 * (ahead.h says why).
 *
 * The rule. A SUBMIT is "certain" when the loop can tell, as it is read,
 * that its apply will queue a new job runnable at once: the committed
 * state says so (store_submit_queues_new: valid, not scheduled, no job
 * of its unique key, no queue limit for its function and priority), and
 * nothing queued before it can change that - no blind proposal, no
 * change of the queue limits not yet committed (n_limits) and no other
 * submission of the same unique key not yet committed. Its job's number
 * is the log index the SUBMIT will get: with one voter the pipeline
 * appends proposals in the order they are queued, one index each, from
 * its next_index on (the batch in flight first, then the queue). Every
 * other SUBMIT is "unsure" until committed (n_unsure), and so is every
 * SUBMIT read while GR_AHEAD_MAX proposals wait: that keeps the walks
 * short. Where the loop is not the one voter (decides_alone off), none is
 * certain.
 *
 * What it is used for: a GRAB may be handed a certain job
 * (node/gearman/handout.c) exactly as a committed one, with the same care - its
 * GRAB names the job and comes after the SUBMIT in the log. And when nothing is
 * unsure or blind, the loop knows every job there is and will be, so a GRAB or
 * PRE_SLEEP that finds nothing needs no batch: NO_JOB or sleep at once, as
 * gearmand answers, since every certain SUBMIT wakes the sleepers of its
 * function as it is read (and every other job wakes them when it is applied, as
 * before).
 *
 * If a batch fails, the numbers given to the jobs of its submissions and
 * of everything queued behind it are wrong (the next batch reuses the
 * indexes). Every worker that was handed such a job is then closed, as if
 * it had gone, and its GRAB neutralised; the jobs themselves are queued
 * again by the next batch, or refused with the batch.
 */
#include "node/alone/ahead.h"

#include <string.h>

#include "node/alone/alone.h"
#include "node/pipeline/pipeline.h"

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
static bool key_pending(const struct gr_alone *a,
                        const struct store_submit *sub)
{
    struct gr_proposal *lists[2];
    const struct gr_proposal *q;
    int i;

    /* (Called only while fewer than GR_AHEAD_MAX wait.) */
    gr_pipeline_uncommitted(a->pipe, lists);
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

static bool certain(const struct gr_alone *a, const struct store_submit *sub)
{
    struct store_txn *txn;
    bool queues = false;
    int rv;

    if (!a->decides_alone || a->n_blind > 0 || a->n_limits > 0 ||
        a->pipe->n_uncommitted >= GR_AHEAD_MAX) {
        return false;
    }
    if (sub->unique.len > 0 && key_pending(a, sub)) {
        return false;
    }
    if (store_txn_begin(a->store, false, &txn) != 0) {
        return false;
    }
    rv = store_submit_queues_new(txn, sub, &queues);
    store_txn_abort(txn);
    return rv == 0 && queues;
}

void gr_ahead_classify(struct gr_alone *a, struct gr_proposal *p)
{
    if (p->cmd.type == STORE_CMD_MAXQUEUE) {
        /* Until committed, the limit a submission meets is unknown. */
        p->unsure = true;
        a->n_unsure++;
        a->n_limits++;
        return;
    }
    if (p->cmd.type != STORE_CMD_SUBMIT) {
        return;
    }
    p->ahead = certain(a, &p->cmd.u.submit);
    p->unsure = !p->ahead;
    a->n_unsure += p->unsure;
}

bool gr_ahead_best(const struct gr_alone *a, struct store_buf fn,
                   store_skip_fn skip, void *skip_arg, struct gr_ahead_job *out)
{
    struct gr_proposal *lists[2];
    struct gr_proposal *q;
    uint64_t num = a->pipe->next_index;
    bool found = false;
    size_t seen = 0;
    int i;

    gr_pipeline_uncommitted(a->pipe, lists);
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

void gr_ahead_view(const struct gr_alone *a, const struct gr_ahead_job *j,
                   char *handle, struct store_job_view *v)
{
    const struct gr_proposal *submit = j->submit;
    const struct store_submit *sub = &submit->cmd.u.submit;

    memset(v, 0, sizeof(*v));
    v->num = j->num;
    v->handle.len =
        store_handle_format(a->store, v->num, handle, STORE_HANDLE_MAX);
    v->handle.base = (const uint8_t *)handle;
    v->function = sub->function;
    v->unique = sub->unique;
    v->reducer = sub->reducer;
    v->data = sub->data;
    v->prio = sub->prio;
    if (!sub->background) {
        v->n_waiters = 1;
        v->waiter.node_id = a->pipe->node_id;
        v->waiter.incarnation = a->pipe->incarnation;
        v->waiter.conn_id = submit->conn_id;
    }
}

bool gr_ahead_complete(const struct gr_alone *a)
{
    return a->n_unsure == 0 && a->n_blind == 0 && a->n_restricted == 0;
}

bool gr_ahead_void(struct gr_alone *a, struct gr_proposal *p, uint64_t start,
                   bool queued)
{
    if (p->cmd.type != STORE_CMD_GRAB || p->cmd.u.grab.job < start) {
        return false;
    }
    if (queued) {
        /* Its apply takes nothing now (below min_job is every job). */
        gr_numset_del(&a->handed_out, p->cmd.u.grab.job);
        p->cmd.u.grab.job = 0;
        p->cmd.u.grab.min_job = UINT64_MAX;
    }
    return true;
}
