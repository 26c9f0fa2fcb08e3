/* SPDX-License-Identifier: BSD-3-Clause
 * node/alone/ahead.h - the jobs that submissions not yet committed will queue,
 * as the loop can tell them in advance, so that a worker is handed such
 * a job when it asks instead of a batch later.
 *
 * Why: a job otherwise becomes visible to hand-outs only once the batch
 * that applies its SUBMIT has committed - on a busy node 1-2 ms after it
 * was read, while the workers find the queue empty and go to sleep.
 * gearmand queues a job the moment it reads it; so does this, for the
 * submissions whose outcome is certain (ahead.c says which).
 *
 * Holds for one node only, like hand-outs (gm_session.c): with other
 * voters the log order is not decided here, and the cluster must turn it
 * off.
 *
 * Not here: handing out (gm_session.c), relaying a worker's WORK_* to the
 * client of such a job (relay.c).
 */
#ifndef GEARRAFT_NODE_AHEAD_H
#define GEARRAFT_NODE_AHEAD_H

#include <stdbool.h>
#include <stdint.h>

#include "storage/store.h"

struct gr_proposal;
struct gr_server;

/* Submissions are told ahead only while fewer proposals than this are
 * queued or in flight (srv->n_uncommitted): every walk of them stays
 * that short under a flood, which keeps the workers busy anyway. */
#define GR_AHEAD_MAX 512

/* A job a submission not yet committed will queue: its number (the log
 * index the SUBMIT will get) and that SUBMIT. */
struct gr_ahead_job {
    uint64_t num;
    struct gr_proposal *submit;
};

/* p, a proposal about to be queued: if it is a SUBMIT, decides whether
 * its job is certain (p->ahead) or the loop cannot tell (p->unsure,
 * counted in srv->n_unsure until committed), and wakes the sleeping
 * workers for a certain one at once. A change of queue limits is unsure
 * too, and counted in srv->n_limits as well. */
void gr_ahead_classify(struct gr_server *srv, struct gr_proposal *p);

/* The best job of function fn that a certain submission not yet
 * committed will queue and skip does not pass over: the best priority,
 * then the lowest number. False if there is none. */
bool gr_ahead_best(const struct gr_server *srv, struct store_buf fn,
                   store_skip_fn skip, void *skip_arg,
                   struct gr_ahead_job *out);

/* True when everything a job could come from is known to the loop: no
 * submission it cannot tell, nothing blind (gr_pick_floor's GRABs
 * included). Then a GRAB or PRE_SLEEP that finds nothing can be answered
 * at once: every later job wakes the worker as it is read. */
bool gr_ahead_complete(const struct gr_server *srv);

/* batch, whose entries start at index `start`, failed: the numbers the
 * loop gave the jobs of its submissions and of those queued behind it
 * were wrong. Closes every worker that was handed such a job (as if it
 * had gone: nothing it did for the job counts) and neutralises its GRABs
 * still queued. */
void gr_ahead_failed(struct gr_server *srv, struct gr_proposal *batch,
                     uint64_t start);

#endif /* GEARRAFT_NODE_AHEAD_H */
