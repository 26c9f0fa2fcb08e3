/* SPDX-License-Identifier: BSD-3-Clause
 * node/gearman/session.c - one Gearman connection's state machine
 * (session.h): reading the socket, taking frames off the stream, holding
 * a frame that must wait for a commit, and handing the rest to the
 * request handlers.
 *
 * A request either changes queue state - then it becomes a proposal and
 * its reply comes from the effects of its commit (answer.c) - or it is
 * answered at once (ECHO, OPTION, GET_STATUS, PRE_SLEEP, admin reads).
 *
 * Not here: output and back-pressure (conn.c), the requests themselves
 * (request.c, admin.c).
 */
#include "node/gearman/session.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "node/alone/alone.h"
#include "node/gearman/admin.h"
#include "node/gearman/handout.h"
#include "node/gearman/request.h"
#include "node/pipeline/pipeline.h"

#define READ_CHUNK (1024 * 1024)
#define READ_FIRST (16 * 1024) /* the first read of a turn asks for this */

static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);
static void on_timeout(evutil_socket_t fd, short what, void *arg);
static void on_resume(evutil_socket_t fd, short what, void *arg);
static void finish_eof(struct gm_session *s);

int gm_session_new(struct gm_hub *hub, int fd, const char *ip,
                   struct gm_session **out)
{
    struct gm_session *s;

    s = gr_calloc(1, sizeof(*s));
    if (s == NULL) {
        goto err_close_fd;
    }
    s->hub = hub;
    s->pipe = hub->pipe;
    s->alone = hub->alone;
    s->fd = fd;
    snprintf(s->ip, sizeof(s->ip), "%s", ip);
    s->client_id[0] = '\0';
    s->exceptions = hub->cfg->exceptions;
    s->state = GM_SS_READ; /* not WAIT_COMMIT: no count to keep */
    s->out_high = GM_SESSION_OUT_HIGH;
    s->out_low = GM_SESSION_OUT_LOW;
    s->in = evbuffer_new();
    s->out = evbuffer_new();
    s->read_ev = event_new(hub->base, fd, EV_READ | EV_PERSIST, on_read, s);
    s->write_ev = event_new(hub->base, fd, EV_WRITE | EV_PERSIST, on_write, s);
    s->timeout_ev = evtimer_new(hub->base, on_timeout, s);
    s->resume_ev = event_new(hub->base, -1, 0, on_resume, s);
    if (s->in == NULL || s->out == NULL || s->read_ev == NULL ||
        s->write_ev == NULL || s->timeout_ev == NULL || s->resume_ev == NULL) {
        goto err_free_session;
    }
    event_priority_set(s->read_ev, 0);
    event_priority_set(s->write_ev, 0);
    event_priority_set(s->timeout_ev, 0);
    event_priority_set(s->resume_ev, 0);
    if (event_add(s->read_ev, NULL) != 0) {
        goto err_free_session;
    }
    gm_session_register(hub, s);
    *out = s;
    return 0;

err_free_session:
    s->fd = -1;
    gm_session_free(s);
err_close_fd:
    close(fd);
    return GR_ENOMEM;
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    struct gm_session *s = arg;

    (void)fd;
    (void)what;
    gm_session_flush(s);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct gm_session *s = arg;
    struct gr_proposal *p;

    (void)fd;
    (void)what;
    if (s->timeout_handle_len == 0 || s->state == GM_SS_CLOSED) {
        return;
    }
    p = gr_proposal_new();
    if (p == NULL) {
        return;
    }
    p->owned = gr_malloc(s->timeout_handle_len);
    if (p->owned == NULL) {
        gr_proposal_free(p);
        return;
    }
    memcpy(p->owned, s->timeout_handle, s->timeout_handle_len);
    p->cmd.type = STORE_CMD_JOB_TIMEOUT;
    p->cmd.u.timeout.worker = gm_conn_ref(s->hub, s->conn_id);
    p->cmd.u.timeout.handle.base = p->owned;
    p->cmd.u.timeout.handle.len = s->timeout_handle_len;
    p->cmd.u.timeout.max_retries = s->hub->cfg->job_retries;
    p->retry = true;
    gr_holds_drop(&s->holds, s->timeout_handle, s->timeout_handle_len);
    s->timeout_handle_len = 0;
    GR_LOG(GR_LOG_INFO, "session", "conn=%llu job timed out: requeueing",
           (unsigned long long)s->conn_id);
    gm_propose(s->hub, p);
}

/* ---------------------------------------------------------------------
 * When a frame may be handled.
 */

/* Requests answered at once must not overtake replies still waiting. */
static bool answers_now(const struct gm_frame *f)
{
    if (f->kind == GM_FRAME_ADMIN) {
        return true;
    }
    switch (f->packet.type) {
    case GM_ECHO_REQ:
    case GM_GET_STATUS:
    case GM_GET_STATUS_UNIQUE:
    case GM_OPTION_REQ:
    case GM_PRE_SLEEP:
        return f->packet.is_request;
    default:
        return false;
    }
}

/* True for a read of queue state that shows jobs as queued or running
 * (status requests, admin): all of them but PRE_SLEEP. */
static bool shows_jobs(const struct gm_frame *f)
{
    return f->kind == GM_FRAME_ADMIN || f->packet.type != GM_PRE_SLEEP;
}

static bool must_wait(const struct gm_session *s, const struct gm_frame *f)
{
    if (!answers_now(f)) {
        return false;
    }
    /* No batch to wait for while the loop knows every job, and no reply
     * of this worker's may still come before the NOOP. */
    if (f->kind == GM_FRAME_PACKET && f->packet.type == GM_PRE_SLEEP &&
        gm_sleep_now(s)) {
        return false;
    }
    /* A read of queue state waits for every batch being written, for
     * the WORK_* relayed to this client (so that its job does not show
     * after its result) and, when it shows jobs, for the GRABs of the
     * jobs already handed out (so that a job a worker has shows as
     * running). */
    return s->n_pending > 0 ||
           (gm_frame_reads_state(f) &&
            (!gr_pipeline_read_ok(s->pipe, gm_frame_is_linear_read(f)
                                               ? s->read_round
                                               : GR_READ_LOCAL) ||
             s->n_relayed > 0 ||
             (shows_jobs(f) && s->alone->handed_out.n > 0)));
}

static void handle_frame(struct gm_session *s, struct gm_frame *f)
{
    if (f->kind == GM_FRAME_ADMIN) {
        admin_handle(s, f->line);
    } else {
        gm_request_handle(s, &f->packet);
    }
    gm_frame_close(f);
}

/* ---------------------------------------------------------------------
 * The state machine.
 */

/* The next whole frame: a large body read whole, or what s->in holds.
 * A large body not yet whole leaves s->in for memory of its own, where
 * on_read puts the rest. */
static int next_frame(struct gm_session *s, struct gm_frame *frame,
                      uint32_t *type)
{
    int rv;

    if (s->big.body != NULL) {
        if (s->big.have < s->big.len) {
            return GR_EAGAIN;
        }
        gm_frame_of_big(&s->big, frame);
        *type = frame->packet.type;
        return 0;
    }
    rv = gm_frame_parse(s->in, (size_t)s->hub->cfg->max_packet_size, frame,
                        type);
    if (rv == GR_EAGAIN) {
        rv = gm_frame_take_big(s->in, GM_SESSION_BIG_BODY, &s->big);
        if (rv == 0) {
            rv = GR_EAGAIN; /* whole, it would have been parsed */
        }
    }
    return rv;
}

void gm_session_drive(struct gm_session *s)
{
    struct gm_frame frame;
    uint32_t type = 0;
    int rv;

    for (;;) {
        switch (s->state) {
        case GM_SS_READ:
            gm_session_want_flush(s);
            return;
        case GM_SS_PARSE:
            /* Too much output waiting for the peer: the next request waits
             * in s->in (and the socket) until it drains. */
            if (s->out_paused || gm__over_marks(s)) {
                gm__pause_reading(s);
                gm_session_want_flush(s);
                return;
            }
            memset(&frame, 0, sizeof(frame));
            rv = next_frame(s, &frame, &type);
            if (rv == GR_EAGAIN) {
                gm__set_state(s, GM_SS_READ);
                break;
            }
            if (rv == GR_ETOOBIG) {
                GR_LOG(GR_LOG_INFO, "session",
                       "conn=%llu packet over --max-packet-size: closing",
                       (unsigned long long)s->conn_id);
                gm_reply_error(s, "ARGUMENT_TOO_LARGE",
                               "Packet larger than the server's "
                               "--max-packet-size");
                gm_session_close(s, true);
                break;
            }
            if (rv != 0) {
                /* Bad magic or type: gearmand closes without a word. */
                GR_LOG(GR_LOG_INFO, "session",
                       "conn=%llu malformed input (%s): closing",
                       (unsigned long long)s->conn_id, gr_strerror(rv));
                gm_session_close(s, false);
                break;
            }
            if (must_wait(s, &frame)) {
                s->held = frame;
                gm__set_state(s, GM_SS_WAIT_COMMIT);
                break;
            }
            handle_frame(s, &frame);
            break;
        case GM_SS_WAIT_COMMIT:
            if (must_wait(s, &s->held)) {
                gm_session_want_flush(s);
                return;
            }
            frame = s->held;
            memset(&s->held, 0, sizeof(s->held));
            gm__set_state(s, GM_SS_PARSE);
            handle_frame(s, &frame);
            break;
        case GM_SS_CLOSING:
        case GM_SS_CLOSED:
            return;
        }
    }
}

void gm_session_proposal_done(struct gm_session *s, const struct gr_proposal *p)
{
    size_t bytes = p->body_len;

    GR_ASSERT(s->n_pending > 0);
    s->n_pending--;
    s->n_may_reply -= p->may_reply;
    s->pending_bytes -= bytes < s->pending_bytes ? bytes : s->pending_bytes;
    if (s->n_pending == 0) {
        /* Every local proposal of this session was delivered (or dropped
         * with its batch): its bytes are in s->out now, if anywhere. */
        s->local_len = 0;
    }
    gm__check_backlog(s);
    gm_session_resume(s);
    finish_eof(s);
}

void gm_session_resume(struct gm_session *s)
{
    if (s->state == GM_SS_WAIT_COMMIT && !must_wait(s, &s->held)) {
        gm_session_drive(s);
        finish_eof(s);
    }
}

void gm_hub_resume_readers(struct gm_hub *hub)
{
    struct gm_session *s;
    struct gm_session *next;

    for (s = hub->sessions; s != NULL && hub->n_wait_readers > 0; s = next) {
        next = s->next;
        if (s->state == GM_SS_WAIT_COMMIT && s->held_reads) {
            gm_session_resume(s);
        }
    }
    gm_hub_flush(hub);
}

/* After the peer's EOF: closes (flushing) once every request it sent is
 * answered - nothing buffered behind a pause, no proposal waiting for
 * the disk, no frame held for a commit. Until then the session stays. */
static void finish_eof(struct gm_session *s)
{
    if (!s->read_eof || !gm_session_is_open(s)) {
        return;
    }
    if (s->out_paused || s->n_pending > 0 || s->state != GM_SS_READ) {
        return;
    }
    gm_session_close(s, true);
}

/* Reads what the socket has into `in`, up to READ_CHUNK. libevent's
 * evbuffer_read asks the kernel first how much is waiting, one ioctl per
 * read (5% of the loop thread's time under load); this reads into space
 * reserved in the buffer instead - READ_FIRST bytes, twice as much again
 * while a read fills all it was given. Returns as read(2) does: bytes
 * read, 0 at EOF, -1 with errno (the bytes of earlier rounds win over an
 * error or EOF, which the next call reports). */
static ssize_t read_some(struct evbuffer *in, int fd)
{
    size_t want = READ_FIRST;
    size_t total = 0;

    for (;;) {
        struct evbuffer_iovec v[2];
        struct iovec io[2];
        size_t room = 0;
        size_t left;
        ssize_t n;
        int nv = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2);
        int used = 0;

        if (nv <= 0) {
            errno = ENOMEM;
            return total > 0 ? (ssize_t)total : -1;
        }
        for (int i = 0; i < nv; i++) {
            io[i].iov_base = v[i].iov_base;
            io[i].iov_len = v[i].iov_len;
            room += v[i].iov_len;
        }
        n = readv(fd, io, nv);
        if (n <= 0) {
            evbuffer_commit_space(in, v, 0);
            return total > 0 ? (ssize_t)total : n;
        }
        for (left = (size_t)n; left > 0; used++) {
            if (v[used].iov_len > left) {
                v[used].iov_len = left;
            }
            left -= v[used].iov_len;
        }
        evbuffer_commit_space(in, v, used);
        total += (size_t)n;
        if ((size_t)n < room || total >= READ_CHUNK) {
            return (ssize_t)total;
        }
        want = want * 2 < READ_CHUNK - total ? want * 2 : READ_CHUNK - total;
    }
}

/* Reads the rest of a large body into its own memory, as much as the
 * socket has. Returns as read(2) does. */
static ssize_t read_big(struct gm_big_body *big, int fd)
{
    ssize_t n = read(fd, big->body + big->have, big->len - big->have);

    if (n > 0) {
        big->have += (size_t)n;
    }
    return n;
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    struct gm_session *s = arg;
    ssize_t n;

    (void)what;
    if (s->big.body != NULL && s->big.have < s->big.len) {
        n = read_big(&s->big, fd);
    } else {
        n = read_some(s->in, fd);
    }
    if (n == -1) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        }
        gm_session_close(s, false);
        return;
    }
    if (n == 0) {
        /* EOF (the peer may only have shut down its sending side, as
         * `echo status | nc` does): answer every request already sent,
         * as gearmand does, then close. */
        event_del(s->read_ev);
        s->read_eof = true;
        if (s->state == GM_SS_READ) {
            gm__set_state(s, GM_SS_PARSE);
        }
        gm_session_drive(s);
        if (gm_session_is_open(s)) {
            gm_session_flush(s);
        }
        finish_eof(s);
        return;
    }
    if (s->state == GM_SS_READ) {
        gm__set_state(s, GM_SS_PARSE);
        gm_session_drive(s);
    }
    /* Replies written meanwhile (a job handed out at GRAB, immediate
     * answers) leave now; the rest come with their commits. */
    if (s->state != GM_SS_CLOSED &&
        (s->n_pending == 0 || evbuffer_get_length(s->out) > 0)) {
        gm_session_flush(s);
    }
    gm__check_backlog(s);
}

/* The output drained below s->out_low: parse what was buffered
 * while paused, as on_read would have. */
static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct gm_session *s = arg;

    (void)fd;
    (void)what;
    if (!gm_session_is_open(s) || s->out_paused) {
        return;
    }
    if (s->state == GM_SS_PARSE) {
        gm_session_drive(s);
    }
    if (s->read_eof) {
        finish_eof(s); /* or, paused again, the next drain comes back */
        return;
    }
    if (s->state != GM_SS_CLOSED && s->n_pending == 0) {
        gm_session_flush(s);
    }
    gm__check_backlog(s);
}
