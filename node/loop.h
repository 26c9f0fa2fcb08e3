/* SPDX-License-Identifier: BSD-3-Clause
 * node/loop.h - the server: the listener, the sessions, and the ONE write
 * path that drives storage.
 *
 * Every change of queue state is a struct store_cmd queued as a proposal
 * (gr_propose). Once per event-loop turn - from a low-priority event, so
 * after every ready socket of that turn was read - the batch becomes one
 * LMDB write transaction, on the committer thread: each proposal is
 * encoded, appended to the log, and applied; then the transaction commits.
 * Replies that acknowledge state (JOB_CREATED, admin) leave only once the
 * batch is durable; node/answer.c turns the effects into packets. A single
 * node is a one-voter cluster: "appended" is "committed". raft/ will later
 * sit between gr_propose() and the answers without reshaping either.
 *
 * Not here: packet handling (gm_session.c), admin (admin.c).
 */
#ifndef GEARRAFT_LOOP_H
#define GEARRAFT_LOOP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/config.h"
#include "node/gearman/codec.h"
#include "node/gr.h"
#include "node/numset.h"
#include "storage/store.h"

struct event;
struct event_base;
struct evconnlistener;
struct gm_session;

/* A proposal: one command waiting for the next batch. */
struct gr_proposal {
    struct gr_proposal *next;
    struct store_cmd cmd;   /* type 0: a local reply only, nothing stored */
    uint64_t conn_id;       /* the session to answer; 0 = internal */
    uint32_t reply_type;    /* GRAB: GM_GRAB_JOB, _UNIQ or _ALL */
    struct gm_packet pkt;   /* owns the bytes cmd's bufs point into */
    void *owned;            /* other memory cmd points into (gr_free) */
    struct evbuffer *local; /* type 0: bytes to send in order */
    bool retry;             /* internal: repropose if the batch fails */
    bool admin;             /* answer failures as admin text, not ERROR */
    bool answered;          /* its reply left before the commit */
    bool blind;             /* counted in srv->n_blind */
    bool restricted;        /* a GRAB with min_job: in srv->n_restricted */
    bool may_reply;         /* counted in its session's n_may_reply */
    bool ahead;             /* SUBMIT: its job is certain (node/ahead.c) */
    bool unsure;            /* SUBMIT: it is not; in srv->n_unsure */
    /* SUBMIT handed out ahead (relay.c): the worker holding its job, and
     * that worker's WORK_* to send right after its JOB_CREATED. */
    uint64_t handed_to;
    struct evbuffer *after;
    uint64_t relayed_to; /* WORK_*: the client it went to when read */
    bool relay_matched;  /* ... and apply's FORWARD there was skipped */
    size_t fx_begin;     /* this command's effects in its batch's set */
    size_t fx_end;
};

struct gr_known_func; /* function names seen through CAN_DO */

/* One write batch from its start until it is answered: its proposals,
 * their effects, and which effects left before the commit. Batches are
 * numbered (gen) from 1 and answered in that order; batch g lives in
 * fxs[g % GR_FXSETS]. At once there may be one batch on the committer
 * thread, one committed whose meta page is not yet synced, and one being
 * answered: the loop answers batch k while the committer writes k+1. */
#define GR_FXSETS 4
struct gr_fxset {
    struct store_effects fx;
    bool *sent; /* fx.v[i] already left before the commit */
    size_t sent_cap;
    bool sent_valid;
    /* The batch's wake-ups, built once for the wake before and the wake
     * after the commit: the distinct functions of its WAKE effects and,
     * with --worker-wakeup, the NOOPs left per function, which both
     * share. */
    struct store_buf *wake_funcs; /* into fx's arena */
    size_t wake_funcs_cap;
    size_t *wake_budget;
    size_t wake_budget_cap;
    size_t wake_n;
    bool wake_set;
    bool noted;   /* its taken and dropped jobs are in srv->applied_out */
    uint64_t gen; /* the batch's number */
    struct gr_proposal *batch; /* NULL once answered */
    bool epoch;                /* it queued an epoch job */
    bool done;                 /* its commit returned (rv) */
    bool durable;              /* nothing to wait for: synced by the
                                * loop, or it stores nothing */
    int rv;
};

struct gr_server {
    struct event_base *base;
    const struct gr_config *cfg;
    struct store *store;
    uint64_t node_id;
    uint64_t incarnation;
    struct evconnlistener *listener;
    struct event *commit_ev; /* priority 1: runs the batch */
    struct event *reap_ev;   /* frees closed sessions */
    struct event *due_ev;    /* an epoch job falls due */
    struct event *retry_ev;  /* reproposes internal commands after failure */
    struct event *sig_ev[2]; /* SIGTERM, SIGINT */

    struct gm_session *sessions; /* newest first */
    struct gm_session *sleepers; /* workers asleep and not woken yet */
    size_t n_wait_readers;       /* sessions holding a read of queue state */
    struct gm_session **buckets;
    size_t n_buckets;
    size_t n_sessions;
    uint64_t next_conn_id;
    struct gm_session *flush_list;
    struct gm_session *dead;

    struct gr_proposal *head;
    struct gr_proposal *tail;
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
    uint64_t n_blind;
    uint64_t n_restricted;  /* GRABs with min_job not yet applied */
    uint64_t n_unsure;      /* SUBMITs (and MAXQUEUEs) not yet committed whose
                             * outcome the loop cannot tell (node/ahead.c) */
    uint64_t n_limits;      /* MAXQUEUEs not yet committed */
    uint64_t n_uncommitted; /* proposals queued or in flight */
    uint64_t n_ahead;       /* jobs handed out ahead of their commit (stats) */
    uint64_t n_relays;      /* WORK_* relayed when read (stats, relay.c) */
    struct gr_proposal *retry_head;
    uint64_t next_index;
    uint64_t seq;
    struct gr_fxset fxs[GR_FXSETS];
    struct gr_fxset *fxd;  /* loop thread: the set being answered */
    uint64_t gen_next;     /* the number of the next batch to start */
    uint64_t gen_answered; /* every batch up to this one is answered */

    struct gr_known_func *known; /* names from CAN_DO, sorted on output */

    bool space_ok; /* map and disk above --min-free-space */
    uint64_t space_checked_ms;
    uint64_t space_admitted; /* submitted bytes since that check */
    uint64_t space_recheck;  /* ... past which the next one checks again */
    bool epoch_pending;      /* a batch queued an epoch job: recheck due */
    bool stopping;           /* no longer accepting */
    bool graceful;           /* waiting for running jobs to finish */
    /* The committer thread writes one batch at a time (begin, append,
     * apply, commit) while the loop goes on. c_* are shared with it under
     * c_lock; `inflight` and its set c_fxs belong to it until
     * "applied". */
    struct event *done_ev;    /* priority 0: the batch in flight ended */
    struct event *applied_ev; /* priority 0: ... is applied, not synced */
    struct event *durable_ev; /* priority 0: the syncer synced */
    struct gr_proposal *inflight;
    bool early_sent;
    struct gr_fxset *c_fxs; /* the set the batch in flight applies into */
    pthread_t c_thread;
    pthread_mutex_t c_lock;
    pthread_cond_t c_cond;
    struct gr_proposal *c_batch; /* handed to the thread */
    uint64_t c_index;            /* its first log index */
    uint64_t c_index_end;
    int c_rv;
    bool c_applied;
    bool c_done;
    bool c_quit;
    bool c_started;
    /* The commit of a batch syncs its pages but not the meta page that
     * makes it current (MDB_NOMETASYNC): it is durable once the next
     * commit returns, or the syncer thread's sync does - whichever comes
     * first. Its late replies (JOB_CREATED, admin) wait for that, while
     * the next batch is already being written. */
    uint64_t c_gen;           /* the batch handed to the committer */
    uint64_t c_committed_gen; /* the last batch committed */
    uint64_t c_durable_gen;   /* every commit up to this batch is durable */
    pthread_cond_t s_cond;    /* wakes the syncer */
    pthread_t s_thread;
    bool s_started;
    uint64_t n_syncs; /* statistics: syncs the syncer made */
    bool c_sync_init;
    uint64_t n_batches; /* statistics, logged at shutdown */
    uint64_t n_batched;
    uint64_t apply_us;  /* begin, append and apply, summed */
    uint64_t commit_us; /* mdb commit with its syncs, summed */
    uint64_t idle_us;   /* the committer waiting for a batch, summed */
    bool closing_all;   /* gr_server_close: sessions go without goodbyes */
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
/* A zeroed proposal, or NULL when out of memory. */
struct gr_proposal *gr_proposal_new(void);
void gr_proposal_free(struct gr_proposal *p);

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
/* Walks the known names (unsorted). */
typedef void (*gr_known_fn)(void *arg, const uint8_t *name, size_t len);
void gr_known_func_walk(struct gr_server *srv, gr_known_fn fn, void *arg);

/* Wakes every sleeping worker that can do one of the functions (NULL:
 * every sleeping worker). With budget (n counters, one per function), at
 * most budget[i] workers are woken for funcs[i], and budget[i] is
 * decremented for each (gearmand's --worker-wakeup). */
void gr_server_wake(struct gr_server *srv, const struct store_buf *funcs,
                    size_t *budget, size_t n);

#endif /* GEARRAFT_LOOP_H */
