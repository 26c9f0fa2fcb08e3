/* SPDX-License-Identifier: BSD-3-Clause
 * node/gearman/answer.h - turning the effects of a write batch into packets.
 *
 * Why it is separate: the loop decides WHEN a batch's answers may leave
 * (early, while the disk syncs, or after the commit); this module decides
 * WHAT leaves and to whom, from the effects store_apply() returned for
 * the batch.
 *
 * Not here: batches and the committer thread (node/pipeline/), request
 * parsing (session.c).
 */
#ifndef GEARRAFT_ANSWER_H
#define GEARRAFT_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/pipeline/batch.h"
#include "storage/store.h"

struct evbuffer;
struct gm_session;
struct gr_server;

/* What the answerer keeps per batch slot (GR_BATCH_SLOTS of them), so
 * that nothing is allocated per batch: which effects left before the
 * commit, and the batch's wake-ups, built once for the wake before the
 * commit and the wake after it - the distinct functions of its WAKE
 * effects and, with --worker-wakeup, the NOOPs left per function. */
struct gr_answer_marks {
    bool *sent; /* fx.v[i] already left before the commit */
    size_t sent_cap;
    bool sent_valid;
    struct store_buf *wake_funcs; /* into the batch's effects */
    size_t wake_funcs_cap;
    size_t *wake_budget;
    size_t wake_budget_cap;
    size_t wake_n;
    bool wake_set;
};

/* Batch b starts: its slot's marks are forgotten. */
void gr_answer_begin(struct gr_server *srv, const struct gr_batch *b);
void gr_answer_marks_free(struct gr_answer_marks *m);

/* Before the commit: sends what may leave early (a job handed to a worker,
 * NO_JOB, a result forwarded to a waiting client, an error answering a
 * WORK_* or GRAB) and the wake-ups, and marks them sent so that
 * gr_answer_committed does not send them again. Replies keep their
 * order per connection: an early reply never overtakes a late one of an
 * earlier proposal of the same connection. */
void gr_answer_early(struct gr_server *srv, struct gr_batch *b);

/* After the commit: sends every effect not sent early (JOB_CREATED, admin
 * replies, ...), then tells each proposer's session its proposal is done
 * (the session may parse and propose again). */
void gr_answer_committed(struct gr_server *srv, struct gr_batch *b);

/* The batch failed to commit (b->rv, a STORE_E* code): every proposer still
 * waiting for an answer gets a QUEUE_ERROR (admin connections as text);
 * then each session is told its proposal is done. */
void gr_answer_failed(struct gr_server *srv, struct gr_batch *b);

/* Hands job v to the worker s at its GRAB (grab_type) before the GRAB is
 * applied: writes the JOB_ASSIGN* gearmand would send. Returns 0, or
 * GR_ENOMEM (nothing written). */
int gr_answer_hand_out(struct gm_session *s, uint32_t grab_type,
                       const struct store_job_view *v);

/* Writes to out the packet that forwards the WORK_* wk to a client (with
 * or without the exceptions option), as apply's FORWARD would. Returns 0
 * or GR_ENOMEM. */
int gr_answer_relay(struct evbuffer *out, bool exceptions,
                    const struct store_work *wk);

/* Wakes (NOOP) the sleeping workers of every function that got a runnable
 * job in batch b. */
void gr_answer_wake(struct gr_server *srv, struct gr_batch *b);

#endif /* GEARRAFT_ANSWER_H */
