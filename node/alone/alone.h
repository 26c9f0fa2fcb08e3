/* SPDX-License-Identifier: BSD-3-Clause
 * node/alone/alone.h - the single-voter fast path: what the loop may
 * decide from its own view of the log, and the ledger it decides from.
 *
 * One switch, decides_alone: this loop alone decides the log's order and
 * when an entry commits - one voter (always, until the cluster). Only
 * then may the node hand out jobs at GRAB time (node/gearman/handout.c),
 * number and hand out submissions ahead of their commit (ahead.h),
 * answer NO_JOB and PRE_SLEEP from what it has seen, and relay results
 * as read (hold.h, node/gearman/relay.c): each decides from the loop's
 * view of the log. A cluster member turns it off and goes the ordinary
 * way: every JOB_ASSIGN from an applied GRAB, every WORK_* forwarded by
 * apply.
 *
 * The ledger is what those decisions need to know of the proposals not
 * yet committed, kept up as proposals are queued (gr_alone_proposed),
 * applied and committed: which of them may take or drop queued jobs in a
 * way the loop cannot tell before they are applied ("blind": ordinary
 * GRABs, cancels, clients gone until applied; releases, timeouts, nodes
 * gone until committed), the jobs handed out whose GRAB is not yet
 * committed, and the jobs taken or dropped by batches applied but not yet
 * committed. A hand-out picks as apply would, from the last committed
 * state, passing over those; that is exact while nothing blind is in
 * flight.
 *
 * This unit decides and keeps books; it never touches a session. The
 * Gearman side acts on its answers (node/gearman/handout.c, relay.c).
 *
 * Not here: jobs ahead (ahead.h), jobs held for relays (hold.h).
 */
#ifndef GEARRAFT_ALONE_ALONE_H
#define GEARRAFT_ALONE_ALONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/numset.h"
#include "node/pipeline/batch.h"
#include "node/pipeline/proposal.h"
#include "storage/store.h"

struct gr_pipeline;

struct gr_alone {
    bool decides_alone; /* the switch (above) */
    struct store *store;
    const struct gr_pipeline *pipe; /* what is queued and in flight */
    uint64_t n_blind;
    uint64_t n_restricted; /* GRABs with min_job not yet applied */
    uint64_t n_unsure;     /* SUBMITs (and MAXQUEUEs) not yet committed whose
                            * outcome the loop cannot tell (ahead.h) */
    uint64_t n_limits;     /* MAXQUEUEs not yet committed */
    struct gr_numset handed_out;  /* handed out, GRAB not yet committed */
    struct gr_numset applied_out; /* taken or dropped by applied batches */
    bool noted[GR_BATCH_SLOTS];   /* a slot's batch is in applied_out */
    uint64_t n_ahead;  /* jobs handed out ahead of their commit (stats) */
    uint64_t n_relays; /* WORK_* relayed when read (stats) */
};

/* Sets a up, on (decides_alone), over the store the hand-outs read and
 * the pipeline whose queue it walks. */
void gr_alone_init(struct gr_alone *a, struct store *store,
                   const struct gr_pipeline *pipe);
void gr_alone_close(struct gr_alone *a);

/* p is about to be queued: counts it if it is blind or a GRAB limited by
 * min_job, and tells a submission's job ahead (ahead.h; the caller wakes
 * the sleepers of a certain one, p->ahead). */
void gr_alone_proposed(struct gr_alone *a, struct gr_proposal *p);
/* Batch b is applied (not yet committed): the jobs it took or dropped
 * are known now, which is all its blind proposals could do to queued jobs
 * but requeue them; until it is committed, picks pass over them. */
void gr_alone_applied(struct gr_alone *a, const struct gr_batch *b);
/* Batch b committed or failed: what it handed out, took or dropped is
 * now in the state the loop reads. */
void gr_alone_settled(struct gr_alone *a, const struct gr_batch *b);

/* Jobs numbered this or more may be taken by a GRAB with min_job not yet
 * applied: a hand-out passes over them. UINT64_MAX when there is none. */
uint64_t gr_alone_pick_floor(const struct gr_alone *a);
/* True if a hand-out picking with floor (gr_alone_pick_floor) must pass
 * over job num: handed out or taken by GRABs not yet committed, dropped
 * by batches not yet committed, or maybe taken by a GRAB with min_job. */
bool gr_alone_passes_over(const struct gr_alone *a, uint64_t floor,
                          uint64_t num);
/* A store_skip_fn (arg: the struct gr_alone): job num is handed out. */
bool gr_alone_is_handed(void *arg, uint64_t num);
/* Job num was handed out at GRAB time (gr_alone_unhand takes it back
 * when the hand-out could not be written). Returns 0 or GR_ENOMEM. */
int gr_alone_hand(struct gr_alone *a, uint64_t num);
void gr_alone_unhand(struct gr_alone *a, uint64_t num);

#endif /* GEARRAFT_ALONE_ALONE_H */
