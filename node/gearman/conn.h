/* SPDX-License-Identifier: BSD-3-Clause
 * node/gearman/conn.h - one Gearman connection: its struct, its output
 * with back-pressure, its close, and the hub's registry of connections.
 *
 * A connection has no fixed role: the packets it sends make it a client,
 * a worker, an admin console or all three. Its requests are stepped by
 * the state machine of session.h; this file is what everything else of
 * the Gearman side (requests, answers, hand-outs, relays, admin) writes
 * to and looks up, so it calls none of them. Every request that changes
 * queue state becomes a proposal (gm_propose); its reply is sent only
 * once the proposal is durable.
 *
 * Sessions are freed from a deferred event, never inside their own
 * callback chain; proposals name their session by connection id, not by
 * pointer, so a proposal may outlive its session.
 *
 * Not here: reading and the state machine (session.h), what requests
 * mean (request.h, admin.h), framing (codec.h).
 */
#ifndef GEARRAFT_GEARMAN_CONN_H
#define GEARRAFT_GEARMAN_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/alone/hold.h"
#include "node/gearman/codec.h"
#include "node/gearman/hub.h"
#include "node/gr.h"

struct event;
struct evbuffer;
struct gr_proposal;

/* Back-pressure on a connection's output. When what is queued for the
 * peer (s->out plus immediate replies still held in local proposals) goes
 * above GM_SESSION_OUT_HIGH, the session stops reading and parsing
 * requests from that connection; when it drains below GM_SESSION_OUT_LOW
 * it reads again and first parses what is already buffered. A pause
 * refuses nothing and never splits a reply: it only defers the NEXT
 * request. So the marks need not exceed --max-packet-size (1 GiB by
 * default, which would make a mark derived from it useless), and a peer
 * that reads its replies never notices them; only a peer that stops
 * reading more than 32 MiB of replies behind waits, and then waits for
 * itself. What one connection can make the server hold for it is thus
 * about GM_SESSION_OUT_HIGH + its largest single reply + one read chunk
 * of requests (plus a partial frame of at most --max-packet-size).
 *
 * Output caused by OTHER connections (results and WORK_* forwarded to a
 * waiting client, NOOP wake-ups, admin replies after a commit) cannot be
 * refused: it still grows s->out past the mark, but then this connection's
 * own requests are not read, which bounds what the peer itself can cause.
 * The low mark is half the high one so a pipelining peer that reads
 * slowly is not paused and resumed once per reply. */
#define GM_SESSION_OUT_HIGH ((size_t)32 * 1024 * 1024)
#define GM_SESSION_OUT_LOW  (GM_SESSION_OUT_HIGH / 2)

/* The same pause bounds the requests of one connection that wait for the
 * disk: past GM_SESSION_MAX_PENDING proposals in flight (a client that
 * pipelines submissions faster than they commit) the session stops
 * reading until half of them are answered. 4096 is far above what any
 * client library pipelines, and keeps one connection's share of a batch
 * (and of the server's memory) bounded. */
#define GM_SESSION_MAX_PENDING 4096u
/* ... and past this many bytes of those requests (a worker streaming
 * large WORK_DATA, a client pipelining big payloads). */
#define GM_SESSION_PENDING_BYTES ((size_t)32 * 1024 * 1024)

/* A request body of this size or more is read from the socket straight
 * into memory of its own (gm_frame_take_big), not through s->in: one
 * copy of a large payload fewer, and it is never held twice. */
#define GM_SESSION_BIG_BODY ((size_t)1024 * 1024)

enum gm_session_state {
    GM_SS_READ = 1,        /* everything buffered is handled; wait for bytes */
    GM_SS_PARSE = 2,       /* bytes are buffered: take the next frame */
    GM_SS_WAIT_COMMIT = 3, /* `held` must wait for this session's proposals */
    GM_SS_CLOSING = 4,     /* flush what is queued, then close */
    GM_SS_CLOSED = 5,      /* socket closed; freed by the deferred reaper */
};

/* A function this connection can do, most recently registered first. */
struct gm_func {
    struct gm_func *next;
    uint32_t timeout_ms; /* CAN_DO_TIMEOUT, 0 = none */
    size_t len;
    uint8_t name[]; /* not NUL-terminated */
};

struct gm_session {
    struct gm_hub *hub;       /* what all sessions share */
    struct gr_pipeline *pipe; /* = hub->pipe, one pointer less per packet */
    struct gr_alone *alone;   /* = hub->alone */
    uint64_t conn_id;
    int fd;
    char ip[64];
    enum gm_session_state state;
    struct event *read_ev;
    struct event *write_ev;
    struct evbuffer *in;
    struct evbuffer *out;
    struct gm_frame held;   /* GM_SS_WAIT_COMMIT: the frame that waits */
    bool held_reads;        /* ... and it reads queue state */
    uint64_t read_round;    /* ... after this read round (pipeline.h) */
    struct gm_big_body big; /* a large body being read (GM_SESSION_BIG_BODY) */
    size_t n_pending;       /* proposals in flight from this connection */
    size_t n_may_reply;     /* ... of which may still answer it */
    size_t pending_bytes;   /* their packet bytes (GM_SESSION_PENDING_BYTES) */

    /* Back-pressure (GM_SESSION_OUT_HIGH). A pause is orthogonal to the
     * state: a session in READ, PARSE or WAIT_COMMIT may be paused; it
     * then neither reads nor parses a new frame (a held frame still runs
     * when its commit comes, and the next frame waits). */
    size_t out_high;         /* GM_SESSION_OUT_HIGH (tests lower it) */
    size_t out_low;          /* GM_SESSION_OUT_LOW */
    bool out_paused;         /* read_ev removed until s->out drains */
    bool read_eof;           /* the peer closed (or shut down) its side */
    size_t local_len;        /* reply bytes in local proposals in flight */
    uint64_t blocked_on;     /* worker: paused until this client drains */
    size_t n_blocked;        /* client: workers paused on its backlog */
    struct event *resume_ev; /* deferred: parse what is buffered */

    /* client side */
    bool exceptions;   /* OPTION_REQ exceptions, or --exceptions */
    bool submitted_fg; /* may be waiting on a job: CLIENT_GONE on close */

    /* worker side */
    char client_id[128]; /* SET_CLIENT_ID, truncated to 127 bytes */
    struct gm_func *funcs;
    size_t n_funcs;
    bool sleeping;            /* sent PRE_SLEEP and has not grabbed since */
    bool noop_sent;           /* woken once already since it slept */
    bool grabbed;             /* was ever assigned a job: RELEASE on close */
    struct event *timeout_ev; /* CAN_DO_TIMEOUT of the job it runs */
    uint8_t timeout_handle[64];
    size_t timeout_handle_len;

    /* the hub's lists */
    struct gm_session *next; /* all sessions, newest first */
    struct gm_session *prev;
    struct gm_session *hnext; /* conn_id hash chain */
    struct gm_session *flush_next;
    bool in_flush;
    struct gm_session *dead_next;
    struct gm_session *sleep_next; /* hub->sleepers: asleep, not woken */
    struct gm_session *sleep_prev;
    uint64_t late_gen; /* the last batch with a late reply to it: until that
                        * batch is answered, no reply leaves early */
    /* The fast path (node/alone/hold.h, relay.c): worker - the jobs handed
     * to it at GRAB time that one client waits on; client - WORK_*
     * relayed to it whose commands are not yet answered (its reads of
     * queue state wait). */
    struct gr_holds holds;
    size_t n_relayed;
};

/* ---------------------------------------------------------------------
 * The hub: its registry of sessions and the lists the loop walks.
 */

/* Sets hub up over the parts the sessions talk to (no session yet).
 * Errors: GR_ENOMEM. gm_hub_close releases it either way. */
int gm_hub_init(struct gm_hub *hub, struct event_base *base,
                const struct gr_config *cfg, struct store *store,
                struct gr_pipeline *pipe, struct gr_alone *alone);
/* Frees what the hub holds once every session is gone. */
void gm_hub_close(struct gm_hub *hub);

/* The session with this id, or NULL (closed or unknown). */
struct gm_session *gm_session_find(struct gm_hub *hub, uint64_t conn_id);
/* Gives s its connection id and lists it. */
void gm_session_register(struct gm_hub *hub, struct gm_session *s);
/* s asks to be written out by the next gm_hub_flush. */
void gm_session_want_flush(struct gm_session *s);
/* Writes out every session that asked for a flush since the last call. */
void gm_hub_flush(struct gm_hub *hub);
/* Frees the sessions closed since the last call (the reaper's event). */
void gm_hub_reap(struct gm_hub *hub);

/* Stops reading every session's requests (a shutdown). */
void gm_hub_stop_reading(struct gm_hub *hub);
/* Closes every session without goodbyes (at close: the next start's
 * NODE_GONE requeues what this process's workers held) and frees them. */
void gm_hub_close_all(struct gm_hub *hub);

/* Wakes every sleeping worker that can do one of the functions (NULL:
 * every sleeping worker). With budget (n counters, one per function), at
 * most budget[i] workers are woken for funcs[i], and budget[i] is
 * decremented for each (gearmand's --worker-wakeup). */
void gm_hub_wake(struct gm_hub *hub, const struct store_buf *funcs,
                 size_t *budget, size_t n);

/* The connection ref of a local session, as commands name it. */
struct store_conn_ref gm_conn_ref(const struct gm_hub *hub, uint64_t conn_id);

/* Queues p for the log (takes ownership): the fast path notes it, the
 * pipeline queues it, and a submission whose job is certain ahead wakes
 * the sleepers of its function now. Every proposal goes through here. */
void gm_propose(struct gm_hub *hub, struct gr_proposal *p);

/* ---------------------------------------------------------------------
 * One session.
 */

/* True while the session may read and parse requests at all. */
bool gm_session_is_open(const struct gm_session *s);

/* Every state change goes through here: the hub counts the sessions
 * holding a read of queue state, which the next batch waits for. */
void gm__set_state(struct gm_session *s, enum gm_session_state st);
/* Requests that read queue state (status, admin, PRE_SLEEP) wait while a
 * batch is in flight: its early replies may already be out, and a reader
 * must not see a state older than what it was told. */
bool gm_frame_reads_state(const struct gm_frame *f);
/* True when f reads queue state a client may compare with what it was
 * told elsewhere (GET_STATUS, GET_STATUS_UNIQUE, the admin lines that
 * show jobs and queues: status, prioritystatus, workers, show): on a
 * cluster member it waits for a read round (linearizable). PRE_SLEEP
 * reads this node's state only: a job it has not applied yet wakes the
 * sleeper when it is; `cluster`, `version` and the like answer at once,
 * with or without a leader. */
bool gm_frame_is_linear_read(const struct gm_frame *f);

/* Queues p, a request of s that changes state, counted until
 * gm_session_proposal_done. */
void gm_session_propose(struct gm_session *s, struct gr_proposal *p);
/* p, a proposal of s, got its one reply before its commit. */
void gm_session_answered(struct gm_session *s, struct gr_proposal *p);

/* An immediate reply: straight to s->out when nothing of s is in flight,
 * else in order behind its replies still to come (a local proposal). On
 * failure s is closed. */
void gm_reply(struct gm_session *s, uint32_t type, const struct store_buf *args,
              size_t n);
void gm_reply_error(struct gm_session *s, const char *code, const char *text);

/* Writes queued output now; arms the write event for the rest. Pauses
 * reading when the output left is above s->out_high, and resumes it (from
 * a deferred event, never inside this call) once below s->out_low. */
void gm_session_flush(struct gm_session *s);
/* Pauses or resumes reading by the marks (gm_session_flush's check). */
void gm__check_backlog(struct gm_session *s);
/* Stops reading s (back-pressure); a no-op when paused already. */
void gm__pause_reading(struct gm_session *s);
/* Too much waits for s: replies it has not read, or requests of its
 * still waiting for the disk (by count or by bytes). */
bool gm__over_marks(const struct gm_session *s);

/* A result worker w produced for client c (a forwarded WORK_*) pushed c's
 * backlog over c->out_high: w is not read until c drains below c->out_low
 * or closes, so a worker cannot stream without bound into a client that
 * does not read. w == c, or w already blocked: nothing. */
void gm_session_block_on(struct gm_session *w, struct gm_session *c);

/* Bytes queued for the peer that count against s->out_high:
 * s->out plus immediate replies still held in local proposals. */
size_t gm_session_out_backlog(const struct gm_session *s);

/* Starts closing: flushes what is queued when `flush`, then closes the
 * socket, tells the write path (CLIENT_GONE, RELEASE) and hands the
 * session to the deferred reaper. Safe to call more than once. */
void gm_session_close(struct gm_session *s, bool flush);

/* Frees a closed session (the reaper's job only). */
void gm_session_free(struct gm_session *s);

/* Sleep flags; the hub lists the sessions a wake-up may NOOP (asleep,
 * not woken yet), so that it need not walk every connection. */
void gm__set_sleep(struct gm_session *s, bool sleeping, bool noop_sent);
/* Sends NOOP if the worker sleeps and was not woken yet. */
void gm_session_wake(struct gm_session *s);

/* The worker's registration of function name (its latest), or NULL;
 * *link (if not NULL) gets the pointer that points to it. */
struct gm_func *gm_session_func(const struct gm_session *s, const uint8_t *name,
                                size_t len, struct gm_func ***link);
/* s's function names, in its order, as an array the caller frees with
 * gr_free() (NULL when out of memory or s has none); they point into
 * s->funcs, borrowed until it changes. */
struct store_buf *gm_session_func_names(const struct gm_session *s);
/* True if the worker registered function name. */
bool gm_session_can_do(const struct gm_session *s, const uint8_t *name,
                       size_t len);
/* The worker was handed a job of this function: with -R/--round-robin the
 * function moves to the end of its list, so its others come first. */
void gm_session_assigned(struct gm_session *s, const uint8_t *name, size_t len);

/* Arms the CAN_DO_TIMEOUT timer after an assignment of `function`. */
void gm_session_job_assigned(struct gm_session *s, const uint8_t *function,
                             size_t function_len, const uint8_t *handle,
                             size_t handle_len);
/* Disarms it if it runs for `handle` (job done). */
void gm_session_job_ended(struct gm_session *s, const uint8_t *handle,
                          size_t handle_len);

#endif /* GEARRAFT_GEARMAN_CONN_H */
