/* SPDX-License-Identifier: BSD-3-Clause
 * node/alone/ahead.h - the jobs that submissions not yet committed will
 * queue, as the loop can tell them in advance, so that a worker is handed
 * such a job when it asks instead of a batch later.
 *
 * Why: a job otherwise becomes visible to hand-outs only once the batch
 * that applies its SUBMIT has committed - on a busy node 1-2 ms after it
 * was read, while the workers find the queue empty and go to sleep.
 * gearmand queues a job the moment it reads it; so does this, for the
 * submissions whose outcome is certain (ahead.c says which).
 *
 * Part of the single-voter fast path (alone.h): with other voters the log
 * order is not decided here, and decides_alone is off.
 *
 * Not here: handing such a job out (node/gearman/handout.c), relaying a
 * worker's WORK_* to its client (hold.h, node/gearman/relay.c).
 */
#ifndef GEARRAFT_ALONE_AHEAD_H
#define GEARRAFT_ALONE_AHEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/store.h"

struct gr_alone;
struct gr_proposal;

/* Submissions are told ahead only while fewer proposals than this are
 * queued or in flight (the pipeline's n_uncommitted): every walk of them
 * stays that short under a flood, which keeps the workers busy anyway. */
#define GR_AHEAD_MAX 512

/* A job a submission not yet committed will queue: its number (the log
 * index the SUBMIT will get) and that SUBMIT. */
struct gr_ahead_job {
    uint64_t num;
    struct gr_proposal *submit;
};

/* p, a proposal about to be queued: if it is a SUBMIT, decides whether
 * its job is certain (p->ahead: the caller wakes the sleeping workers of
 * its function at once) or the loop cannot tell (p->unsure, counted in
 * n_unsure until committed). A change of queue limits is unsure too, and
 * counted in n_limits as well. */
void gr_ahead_classify(struct gr_alone *a, struct gr_proposal *p);

/* The best job of function fn that a certain submission not yet
 * committed will queue and skip does not pass over: the best priority,
 * then the lowest number. False if there is none. */
bool gr_ahead_best(const struct gr_alone *a, struct store_buf fn,
                   store_skip_fn skip, void *skip_arg,
                   struct gr_ahead_job *out);

/* The job j as a hand-out shows it, built from its SUBMIT; its handle is
 * written into handle (STORE_HANDLE_MAX bytes). v borrows from j's SUBMIT
 * and from handle. */
void gr_ahead_view(const struct gr_alone *a, const struct gr_ahead_job *j,
                   char *handle, struct store_job_view *v);

/* True when everything a job could come from is known to the loop: no
 * submission it cannot tell, nothing blind (the pick floor's GRABs
 * included). Then a GRAB or PRE_SLEEP that finds nothing can be answered
 * at once: every later job wakes the worker as it is read. */
bool gr_ahead_complete(const struct gr_alone *a);

/* A batch whose entries start at index `start` failed: the numbers the
 * loop gave the jobs of its submissions and of those queued behind it
 * were wrong. p is a proposal of that batch or (queued) of the queue
 * behind it. True if p is a GRAB that was handed such a job: its worker
 * must go (as if it had gone: nothing it did for the job counts); a
 * queued one is neutralised here so that its apply takes nothing. */
bool gr_ahead_void(struct gr_alone *a, struct gr_proposal *p, uint64_t start,
                   bool queued);

#endif /* GEARRAFT_ALONE_AHEAD_H */
