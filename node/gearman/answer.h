/* SPDX-License-Identifier: BSD-3-Clause
 * node/gearman/answer.h - turning the effects of a write batch into
 * packets.
 *
 * Why it is separate: the loop decides WHEN a batch's answers may leave
 * (early, while the disk syncs, or after the commit); this module decides
 * WHAT leaves and to whom, from the effects store_apply() returned for
 * the batch. It keeps what it needs per batch in the hub's marks.
 *
 * Not here: batches and the committer thread (node/pipeline/), request
 * parsing (session.c, request.c).
 */
#ifndef GEARRAFT_GEARMAN_ANSWER_H
#define GEARRAFT_GEARMAN_ANSWER_H

#include "node/gearman/hub.h"
#include "node/pipeline/batch.h"

/* Batch b starts: the marks of its slot are forgotten. */
void gm_answer_begin(struct gm_hub *hub, const struct gr_batch *b);
void gm_marks_free(struct gm_marks *m);

/* Before the commit: sends what may leave early (a job handed to a worker,
 * NO_JOB, a result forwarded to a waiting client, an error answering a
 * WORK_* or GRAB) and the wake-ups, and marks them sent so that
 * gm_answer_committed does not send them again. Replies keep their
 * order per connection: an early reply never overtakes a late one of an
 * earlier proposal of the same connection. */
void gm_answer_early(struct gm_hub *hub, struct gr_batch *b);

/* After the commit: sends every effect not sent early (JOB_CREATED, admin
 * replies, ...), then tells each proposer's session its proposal is done
 * (the session may parse and propose again). */
void gm_answer_committed(struct gm_hub *hub, struct gr_batch *b);

/* The batch failed to commit (b->rv, a STORE_E* code): every proposer
 * still waiting for an answer gets a QUEUE_ERROR (admin connections as
 * text); then each session is told its proposal is done. */
void gm_answer_failed(struct gm_hub *hub, struct gr_batch *b);

/* Wakes (NOOP) the sleeping workers of every function that got a runnable
 * job in batch b. */
void gm_answer_wake(struct gm_hub *hub, struct gr_batch *b);

#endif /* GEARRAFT_GEARMAN_ANSWER_H */
