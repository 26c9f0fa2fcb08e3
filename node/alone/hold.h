/* SPDX-License-Identifier: BSD-3-Clause
 * node/alone/hold.h - the jobs a worker holds since it was handed them at
 * GRAB time, kept so that its WORK_* for one of them can be relayed to
 * the job's client as soon as it is read (node/gearman/relay.c) - and
 * the rule for when that is safe.
 *
 * Why: the result otherwise waits for the batch that applies the
 * WORK_COMPLETE, and that batch for the one before it - on a busy node a
 * third of a client's round trip. gearmand forwards at once.
 *
 * Part of the single-voter fast path (alone.h). A worker's holds live in
 * its session (struct gr_holds), but only these functions touch them.
 *
 * Not here: writing the relayed packet and finding the client
 * (node/gearman/relay.c), the FORWARD effects of apply, which then skip
 * the client reached (node/gearman/answer.c).
 */
#ifndef GEARRAFT_ALONE_HOLD_H
#define GEARRAFT_ALONE_HOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gr_alone;
struct gr_proposal;

/* Jobs handed out that one worker is tracked as holding; past that, its
 * further ones go the ordinary way. */
#define GR_HELD_MAX        16
#define GR_HELD_HANDLE_MAX 64

/* A job handed out at GRAB time and not ended. */
struct gr_held {
    uint8_t handle[GR_HELD_HANDLE_MAX];
    size_t len;
    uint64_t job;               /* its number */
    uint64_t client;            /* the one foreground client waiting */
    struct gr_proposal *submit; /* ahead: its SUBMIT until answered */
    bool created;               /* ... answered with JOB_CREATED */
    bool relaying;              /* every WORK_* for it so far was relayed */
};

/* One worker's holds (embedded in its session; zeroed is empty). */
struct gr_holds {
    struct gr_held *v; /* GR_HELD_MAX of them once the first is held */
    size_t n;
};

void gr_holds_free(struct gr_holds *hs);

/* The worker of connection `worker` was sent JOB_ASSIGN* (handle) for
 * job, which one foreground client waits on: the client of submit, a
 * SUBMIT not yet answered (a job ahead), or with submit NULL the
 * connection `client` the committed state lists. Nothing is held when
 * the list is full, the handle too long, the job held already or memory
 * short: its WORK_* then go the ordinary way. */
void gr_holds_add(struct gr_holds *hs, uint64_t worker, uint64_t job,
                  const uint8_t *handle, size_t len, uint64_t client,
                  struct gr_proposal *submit);
/* The hold of this handle, or NULL. */
struct gr_held *gr_holds_find(struct gr_holds *hs, const uint8_t *handle,
                              size_t len);
/* The worker no longer holds h's job (ended, failed). */
void gr_holds_end(struct gr_holds *hs, struct gr_held *h);
/* ... the job of this handle (timed out). */
void gr_holds_drop(struct gr_holds *hs, const uint8_t *handle, size_t len);
/* ... any job (CANT_DO, RESET_ABILITIES). */
void gr_holds_clear(struct gr_holds *hs);
/* submit (handed_to this worker) was answered - with JOB_CREATED if
 * created, else its batch failed and the worker forgets the job - and is
 * about to be freed. */
void gr_holds_submit_done(struct gr_holds *hs, const struct gr_proposal *submit,
                          bool created);

/* True if a WORK_* of data_len bytes for h's job may be relayed as read,
 * as far as the loop's view of the log goes (hold.c says when); the
 * Gearman side then checks the client. */
bool gr_alone_may_relay(const struct gr_alone *a, const struct gr_held *h,
                        size_t data_len);

#endif /* GEARRAFT_ALONE_HOLD_H */
