/* SPDX-License-Identifier: BSD-3-Clause
 * node/alone/relay.h - a worker's WORK_* for a job handed out at GRAB time
 * (gm_session.c; ahead of its commit too, ahead.h), sent on to the job's
 * client as soon as it is read: at once if the client surely has its
 * JOB_CREATED, right behind it for a job ahead, else (rarely) with the
 * batch as before.
 *
 * Why: the result otherwise waits for the batch that applies the
 * WORK_COMPLETE, and that batch for the one before it - on a busy node a
 * third of a client's round trip. gearmand forwards at once.
 *
 * Not here: the FORWARD effects of apply, which then skip the client
 * reached (answer.c); parsing WORK_* (gm_session.c).
 */
#ifndef GEARRAFT_NODE_RELAY_H
#define GEARRAFT_NODE_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gm_session;
struct gr_proposal;
struct gr_server;

/* Jobs handed out that one worker is tracked as holding; past that, its
 * further ones go the ordinary way. */
#define GR_HELD_MAX        16
#define GR_HELD_HANDLE_MAX 64

/* A job handed out at GRAB time (gm_session.c) and not ended. */
struct gr_held {
    uint8_t handle[GR_HELD_HANDLE_MAX];
    size_t len;
    uint64_t job;               /* its number */
    uint64_t client;            /* the one foreground client waiting */
    struct gr_proposal *submit; /* ahead: its SUBMIT until answered */
    bool created;               /* ... answered with JOB_CREATED */
    bool relaying;              /* every WORK_* for it so far was relayed */
};

/* Worker w was sent JOB_ASSIGN* (handle) for job, which one foreground
 * client waits on: the client of submit, a SUBMIT not yet answered (a
 * job ahead, node/ahead.c), or with submit NULL the connection `client`
 * the committed state lists. */
void gr_relay_handed(struct gm_session *w, uint64_t job, const uint8_t *handle,
                     size_t len, uint64_t client, struct gr_proposal *submit);
/* p, a WORK_* of worker w about to be proposed: relays it if it can and
 * records the client in p->relayed_to; a final one (COMPLETE, FAIL,
 * EXCEPTION) ends w's hold on the job. */
void gr_relay_work(struct gm_session *w, struct gr_proposal *p);
/* w no longer holds the job of this handle (timed out). */
void gr_relay_drop(struct gm_session *w, const uint8_t *handle, size_t len);
/* w gave its jobs back (CANT_DO, RESET_ABILITIES). */
void gr_relay_clear(struct gm_session *w);
/* submit (handed_to set) was answered - with JOB_CREATED if created,
 * else its batch failed and the worker holding its job forgets it - and
 * is about to be freed. */
void gr_relay_submit_done(struct gr_server *srv, struct gr_proposal *submit,
                          bool created);
/* p, a WORK_*, was answered or failed: its relay no longer holds back
 * the client's reads of queue state. */
void gr_relay_work_done(struct gr_server *srv, const struct gr_proposal *p);

#endif /* GEARRAFT_NODE_RELAY_H */
