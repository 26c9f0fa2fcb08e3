/* SPDX-License-Identifier: BSD-3-Clause
 * node/alone/alone.c - the fast path's ledger of proposals not yet
 * committed (alone.h says what it is for).
 *
 * Not here: the rule for jobs ahead (ahead.c), jobs held for relays
 * (hold.c).
 */
#include "node/alone/alone.h"

#include <string.h>

#include "node/alone/ahead.h"
#include "node/gr.h"
#include "node/pipeline/pipeline.h"

void gr_alone_init(struct gr_alone *a, struct store *store,
                   const struct gr_pipeline *pipe)
{
    memset(a, 0, sizeof(*a));
    a->decides_alone = true;
    a->store = store;
    a->pipe = pipe;
}

void gr_alone_close(struct gr_alone *a)
{
    gr_numset_free(&a->handed_out);
    gr_numset_free(&a->applied_out);
}

/* True if p may take or drop queued jobs in ways the loop does not know
 * before it is applied: what a GRAB not naming its job takes, which jobs
 * a release, timeout, cancel or departure requeues or drops. A
 * submission only adds or joins, WORK_* ends running jobs, and a GRAB
 * naming its job takes that one. */
static bool may_take_or_drop(const struct gr_proposal *p)
{
    if (p->cmd.type == 0) {
        return false; /* local replies only */
    }
    switch (p->cmd.type) {
    case STORE_CMD_NOOP:
    case STORE_CMD_SUBMIT:
    case STORE_CMD_WORK:
        return false;
    case STORE_CMD_GRAB:
        return p->cmd.u.grab.job == 0;
    default:
        return true;
    }
}

/* A GRAB limited to jobs from min_job on: what it may take is bounded
 * (gr_alone_pick_floor), so it does not blind the picks. */
static bool is_restricted(const struct gr_proposal *p)
{
    return p->cmd.type == STORE_CMD_GRAB && p->cmd.u.grab.min_job != 0;
}

/* True if p may requeue a running job (worker or node gone, timeout): a
 * job the loop cannot see as queued until the batch is committed, and
 * that a GRAB limited by min_job would pass over - so p stays blind
 * until then. */
static bool requeues(const struct gr_proposal *p)
{
    return p->cmd.type == STORE_CMD_RELEASE ||
           p->cmd.type == STORE_CMD_JOB_TIMEOUT ||
           p->cmd.type == STORE_CMD_NODE_GONE;
}

/* p's effect on queued jobs is known now (applied or committed). */
static void unmark(struct gr_alone *a, struct gr_proposal *p)
{
    if (p->blind) {
        p->blind = false;
        a->n_blind--;
    }
    if (p->restricted) {
        p->restricted = false;
        a->n_restricted--;
    }
}

void gr_alone_proposed(struct gr_alone *a, struct gr_proposal *p)
{
    p->restricted = is_restricted(p);
    p->blind = may_take_or_drop(p) && !p->restricted;
    a->n_blind += p->blind;
    a->n_restricted += p->restricted;
    gr_ahead_classify(a, p);
}

/* Adds to applied_out (add) or takes out of it the jobs that the
 * proposals of batch b that may take or drop one did take or drop (their
 * ASSIGN and JOB_DONE effects). Returns false if out of memory. */
static bool taken_or_dropped(struct gr_alone *a, const struct gr_batch *b,
                             bool add)
{
    const struct gr_proposal *p;
    size_t i;

    for (p = b->props; p != NULL; p = p->next) {
        for (i = p->fx_begin; may_take_or_drop(p) && i < p->fx_end; i++) {
            const struct store_effect *e = &b->fx.v[i];

            if (e->type != STORE_FX_ASSIGN && e->type != STORE_FX_JOB_DONE) {
                continue;
            }
            if (!add) {
                gr_numset_del(&a->applied_out, e->job);
            } else if (gr_numset_add(&a->applied_out, e->job) != 0) {
                return false;
            }
        }
    }
    return true;
}

void gr_alone_applied(struct gr_alone *a, const struct gr_batch *b)
{
    struct gr_proposal *p;

    /* gr_alone_settled takes out whatever went in */
    a->noted[b->gen % GR_BATCH_SLOTS] = true;
    if (!taken_or_dropped(a, b, true)) {
        return; /* out of memory: its proposals stay blind */
    }
    for (p = b->props; p != NULL; p = p->next) {
        if (!requeues(p)) {
            unmark(a, p);
        }
    }
}

void gr_alone_settled(struct gr_alone *a, const struct gr_batch *b)
{
    bool *noted = &a->noted[b->gen % GR_BATCH_SLOTS];
    struct gr_proposal *p;

    if (*noted) {
        (void)taken_or_dropped(a, b, false);
    }
    *noted = false;
    for (p = b->props; p != NULL; p = p->next) {
        unmark(a, p);
        if (p->unsure) {
            p->unsure = false;
            a->n_unsure--;
            a->n_limits -= p->cmd.type == STORE_CMD_MAXQUEUE;
        }
        if (p->cmd.type == STORE_CMD_GRAB && p->cmd.u.grab.job != 0) {
            gr_numset_del(&a->handed_out, p->cmd.u.grab.job);
        }
    }
}

uint64_t gr_alone_pick_floor(const struct gr_alone *a)
{
    struct gr_proposal *lists[2];
    const struct gr_proposal *p;
    int i;

    if (a->n_restricted == 0) {
        return UINT64_MAX;
    }
    /* min_job only grows with the committed state, so the oldest such
     * GRAB not yet applied has the lowest. */
    gr_pipeline_uncommitted(a->pipe, lists);
    for (i = 0; i < 2; i++) {
        for (p = lists[i]; p != NULL; p = p->next) {
            if (p->restricted) {
                return p->cmd.u.grab.min_job;
            }
        }
    }
    return UINT64_MAX;
}

bool gr_alone_passes_over(const struct gr_alone *a, uint64_t floor,
                          uint64_t num)
{
    return num >= floor || gr_numset_has(&a->handed_out, num) ||
           gr_numset_has(&a->applied_out, num);
}

bool gr_alone_is_handed(void *arg, uint64_t num)
{
    const struct gr_alone *a = arg;

    return gr_numset_has(&a->handed_out, num);
}

int gr_alone_hand(struct gr_alone *a, uint64_t num)
{
    return gr_numset_add(&a->handed_out, num);
}

void gr_alone_unhand(struct gr_alone *a, uint64_t num)
{
    gr_numset_del(&a->handed_out, num);
}
