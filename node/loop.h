/* SPDX-License-Identifier: BSD-3-Clause
 * node/loop.h - the server: the listener, the sessions, the commit
 * pipeline it drives and the fast path's ledger.
 *
 * Every change of queue state is a struct store_cmd queued as a proposal
 * (gr_propose). Once per event-loop turn the queue becomes one write
 * batch on the committer thread (node/pipeline/); replies that
 * acknowledge state (JOB_CREATED, admin) leave only once the batch is
 * durable, and node/gearman/answer.c turns its effects into packets. A
 * single node is a one-voter cluster: "appended" is "committed".
 *
 * Not here: the write (node/pipeline/), packet handling
 * (node/gearman/session.c), admin (node/gearman/admin.c).
 */
#ifndef GEARRAFT_LOOP_H
#define GEARRAFT_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/config.h"
#include "node/gearman/answer.h"
#include "node/gearman/codec.h"
#include "node/gr.h"
#include "node/numset.h"
#include "node/pipeline/pipeline.h"
#include "storage/store.h"

struct event;
struct event_base;
struct evconnlistener;
struct gm_session;

struct gr_known_func; /* function names seen through CAN_DO */

struct gr_server {
    struct event_base *base;
    const struct gr_config *cfg;
    struct store *store;
    uint64_t node_id;
    uint64_t incarnation;
    struct evconnlistener *listener;
    struct event *commit_ev;  /* priority 1: runs the batch */
    struct event *applied_ev; /* priority 0: the batch in flight applied */
    struct event *done_ev;    /* priority 0: ... its commit returned */
    struct event *durable_ev; /* priority 0: the syncer synced */
    struct event *reap_ev;    /* frees closed sessions */
    struct event *due_ev;     /* an epoch job falls due */
    struct event *retry_ev;   /* reproposes internal commands after failure */
    struct event *sig_ev[2];  /* SIGTERM, SIGINT */

    struct gm_session *sessions; /* newest first */
    struct gm_session *sleepers; /* workers asleep and not woken yet */
    size_t n_wait_readers;       /* sessions holding a read of queue state */
    struct gm_session **buckets;
    size_t n_buckets;
    size_t n_sessions;
    uint64_t next_conn_id;
    struct gm_session *flush_list;
    struct gm_session *dead;

    struct gr_pipeline pipe;
    struct gr_answer_marks marks[GR_BATCH_SLOTS]; /* gearman/answer.c */

    /* This loop alone decides the log's order and when an entry commits:
     * one voter (always, until the cluster). Only then may it hand out
     * jobs at GRAB time, number and hand out submissions ahead of their
     * commit, answer NO_JOB and PRE_SLEEP from what it has seen, and relay
     * results as read - each decides from this loop's view of the log.
     * A cluster member turns it off and goes the ordinary way: every
     * JOB_ASSIGN from an applied GRAB, every WORK_* forwarded by apply. */
    bool decides_alone;
    /* Handing jobs out at GRAB time (gm_session.c, hand_out): the jobs
     * handed out whose GRAB is not yet committed, and the proposals whose
     * effect on queued jobs the loop cannot tell yet (ordinary GRABs,
     * cancels, clients gone until applied; releases, timeouts, nodes
     * gone until committed). */
    struct gr_numset handed_out;
    struct gr_numset applied_out; /* taken or dropped by applied batches */
    bool noted[GR_BATCH_SLOTS];   /* a slot's batch is in applied_out */
    uint64_t n_blind;
    uint64_t n_restricted; /* GRABs with min_job not yet applied */
    uint64_t n_unsure;     /* SUBMITs (and MAXQUEUEs) not yet committed whose
                            * outcome the loop cannot tell (node/ahead.c) */
    uint64_t n_limits;     /* MAXQUEUEs not yet committed */
    uint64_t n_ahead;      /* jobs handed out ahead of their commit (stats) */
    uint64_t n_relays;     /* WORK_* relayed when read (stats, relay.c) */
    struct gr_proposal *retry_head;

    struct gr_known_func *known; /* names from CAN_DO, sorted on output */

    bool space_ok; /* map and disk above --min-free-space */
    uint64_t space_checked_ms;
    uint64_t space_admitted; /* submitted bytes since that check */
    uint64_t space_recheck;  /* ... past which the next one checks again */
    bool stopping;           /* no longer accepting */
    bool graceful;           /* waiting for running jobs to finish */
    bool closing_all;        /* gr_server_close: sessions go without goodbyes */
    char errmsg[256];
};

/* Opens the store, proposes NODE_GONE for the previous incarnation and
 * commits it, and starts listening. Errors: GR_ESTORE, GR_EIO, GR_ENOMEM;
 * errmsg says what failed. On failure everything is released. */
int gr_server_init(struct gr_server *srv, const struct gr_config *cfg,
                   struct event_base *base);
/* Runs the loop until shutdown. */
int gr_server_run(struct gr_server *srv);
/* Flushes the current batch, closes sessions and the store. */
void gr_server_close(struct gr_server *srv);

/* Begins a shutdown: stop accepting; when graceful, wait until no job is
 * running before the loop ends. */
void gr_server_shutdown(struct gr_server *srv, bool graceful);

/* Jobs numbered this or more may be taken by a GRAB with min_job not yet
 * applied: a hand-out passes over them. UINT64_MAX when there is none. */
uint64_t gr_pick_floor(const struct gr_server *srv);

/* Queues a proposal; takes ownership of p (and of what it owns). */
void gr_propose(struct gr_server *srv, struct gr_proposal *p);

/* The conn ref of a local session. */
struct store_conn_ref gr_conn_ref(const struct gr_server *srv,
                                  uint64_t conn_id);

/* The session with this id, or NULL (closed or unknown). */
struct gm_session *gr_session_find(struct gr_server *srv, uint64_t conn_id);
void gr_session_register(struct gr_server *srv, struct gm_session *s);
void gr_session_unregister(struct gr_server *srv, struct gm_session *s);
void gr_session_want_flush(struct gr_server *srv, struct gm_session *s);
/* Writes out every session that asked for a flush since the last call. */
void gr_sessions_flush(struct gr_server *srv);
void gr_session_reap_later(struct gr_server *srv, struct gm_session *s);

/* True while a batch is being written or waits to be durable: reads of
 * queue state that answer a client wait until it is false. */
bool gr_server_writing(const struct gr_server *srv);

/* True when a new submission of about `bytes` may be accepted (map and
 * disk headroom). The headroom is looked at every SPACE_CHECK_MS, and
 * sooner once submissions of a quarter of it came in since the last
 * look, so a fast flood cannot fill the map past it before it is
 * refused: workers must still be able to take and finish the jobs. */
bool gr_server_has_space(struct gr_server *srv, size_t bytes);

/* Remembers a function name registered by CAN_DO; the first time a name
 * is seen it proposes FUNC_CREATE, so that admin status lists it as
 * gearmand does. Returns 0 or GR_ENOMEM. */
int gr_known_func_add(struct gr_server *srv, const uint8_t *name, size_t len);
void gr_known_func_remove(struct gr_server *srv, const uint8_t *name,
                          size_t len);

/* Wakes every sleeping worker that can do one of the functions (NULL:
 * every sleeping worker). With budget (n counters, one per function), at
 * most budget[i] workers are woken for funcs[i], and budget[i] is
 * decremented for each (gearmand's --worker-wakeup). */
void gr_server_wake(struct gr_server *srv, const struct store_buf *funcs,
                    size_t *budget, size_t n);

#endif /* GEARRAFT_LOOP_H */
