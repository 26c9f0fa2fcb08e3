/* SPDX-License-Identifier: BSD-3-Clause
 * node/gearman/handout.h - a GRAB answered at once with the job the loop
 * can tell it would get, and a PRE_SLEEP answered from what the loop
 * knows: the Gearman side of the single-voter fast path.
 *
 * An ordinary GRAB waits for the next write batch to pick its job. When
 * the loop can tell which job that would be, it hands it out at once and
 * proposes a GRAB naming the job, which the batch then assigns. The rules
 * - when the loop can tell, what a pick passes over, which submissions'
 * jobs count before they are committed - are node/alone/'s; this file
 * writes the JOB_ASSIGN and records what the relays need.
 *
 * Not here: relaying the worker's WORK_* (relay.h), the ordinary GRAB
 * (request.c).
 */
#ifndef GEARRAFT_GEARMAN_HANDOUT_H
#define GEARRAFT_GEARMAN_HANDOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "node/gearman/conn.h"
#include "storage/store.h"

struct gr_proposal;

/* Hands s the job its GRAB g (of type) would get, if the loop can tell
 * which (node/alone/alone.h), and names it in g->job. When it can tell
 * that no job it sees is left, g->min_job limits the GRAB to the jobs it
 * cannot see, so that the GRAB does not make every later one blind.
 * Otherwise g goes the ordinary way. */
void gm_hand_out(struct gm_session *s, uint32_t type, struct store_grab *g);
/* True if the loop can tell which job a GRAB of s would get. */
bool gm_may_hand_out(const struct gm_session *s);

/* True when a PRE_SLEEP of s can be answered from what the loop knows,
 * without waiting for the batches being written. */
bool gm_sleep_now(const struct gm_session *s);
/* For such a PRE_SLEEP: true if a GRAB of s would get a job now. */
bool gm_job_for(struct gm_session *s);
/* True if a job ahead for one of s's functions is not yet handed out:
 * its SUBMIT woke the sleepers when it was read, and its apply does not
 * wake them again, so s must not sleep past it. */
bool gm_ahead_for(struct gm_session *s);

/* The batch batch (a proposal list) whose entries start at index `start`
 * failed, and with it the numbers given to the jobs ahead of it and
 * behind it: every worker handed such a job by a GRAB of that batch or
 * of the queue is closed, and the queued GRABs are neutralised; the
 * relayed WORK_* waiting behind the queued submissions go too. */
void gm_handout_failed(struct gm_hub *hub, struct gr_proposal *batch,
                       uint64_t start);

#endif /* GEARRAFT_GEARMAN_HANDOUT_H */
