/* SPDX-License-Identifier: BSD-3-Clause
 * node/gearman/relay.h - a worker's WORK_* for a job handed out at GRAB
 * time, sent on to the job's client as soon as it is read: at once if
 * the client surely has its JOB_CREATED, right behind it for a job ahead,
 * else (rarely) with the batch as before. The Gearman side of the
 * single-voter fast path: node/alone/hold.h keeps the held jobs and says
 * when a relay is safe; this file finds the client and writes.
 *
 * Not here: the FORWARD effects of apply, which then skip the client
 * reached (answer.c); parsing WORK_* (request.c).
 */
#ifndef GEARRAFT_GEARMAN_RELAY_H
#define GEARRAFT_GEARMAN_RELAY_H

#include <stdbool.h>

#include "node/gearman/conn.h"

struct gr_proposal;

/* p, a WORK_* of worker w about to be proposed: relays it if it can and
 * records the client in p->relayed_to; a final one (COMPLETE, FAIL,
 * EXCEPTION) ends w's hold on the job. */
void gm_relay_work(struct gm_session *w, struct gr_proposal *p);
/* submit (handed_to set) was answered - with JOB_CREATED if created,
 * else its batch failed and the worker holding its job forgets it - and
 * is about to be freed. */
void gm_relay_submit_done(struct gm_hub *hub, struct gr_proposal *submit,
                          bool created);
/* p, a WORK_*, was answered or failed: its relay no longer holds back
 * the client's reads of queue state. */
void gm_relay_work_done(struct gm_hub *hub, const struct gr_proposal *p);

#endif /* GEARRAFT_GEARMAN_RELAY_H */
