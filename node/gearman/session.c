/* SPDX-License-Identifier: BSD-3-Clause
 * node/gearman/session.c - one Gearman connection, stepped by
 * gm_session_drive(), and the handlers of every binary request
 * (PROTOCOL.md "Packet types", GEARMAND.md 1.3 and 3).
 *
 * A request either changes queue state - then it becomes a proposal and
 * its reply comes from the effects of its commit (loop.c) - or it is
 * answered at once (ECHO, OPTION, GET_STATUS, PRE_SLEEP, admin reads). An
 * immediate answer must not overtake a reply still waiting for a commit,
 * so such a request waits in GM_SS_WAIT_COMMIT while proposals are in
 * flight; a proposal request that fails validation sends its error
 * through a local (nothing stored) proposal, in order, for the same
 * reason.
 *
 * Back-pressure (gm_session.h, GM_SESSION_OUT_HIGH): a connection whose
 * peer lets its replies pile up stops being read until they drain. The
 * pause is a flag beside the state, checked before each new frame is
 * parsed and after each write, so it composes with GM_SS_WAIT_COMMIT: a
 * held frame is still answered when its commit comes, and parsing picks
 * up again, from a deferred event, when the output is low again.
 *
 * Not here: the batch, effects and timers of the server (loop.c), admin
 * commands (admin.c).
 */
#include "node/gearman/session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "node/alone/ahead.h"
#include "node/alone/relay.h"
#include "node/gearman/admin.h"
#include "node/gearman/answer.h"
#include "node/loop.h"

#define READ_CHUNK (1024 * 1024)
#define READ_FIRST (16 * 1024) /* the first read of a turn asks for this */

static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);
static void on_timeout(evutil_socket_t fd, short what, void *arg);
static void on_resume(evutil_socket_t fd, short what, void *arg);

static bool reads_state(const struct gm_frame *f);

/* Every state change goes through here: the server counts the sessions
 * holding a read of queue state, which the next batch waits for
 * (readers_waiting) and which are resumed once no batch is written. */
static void set_state(struct gm_session *s, enum gm_session_state st)
{
    if (s->state == GM_SS_WAIT_COMMIT && s->held_reads) {
        s->srv->n_wait_readers--;
        s->held_reads = false;
    }
    if (st == GM_SS_WAIT_COMMIT) {
        s->held_reads = reads_state(&s->held);
        if (s->held_reads) {
            s->srv->n_wait_readers++;
        }
    }
    s->state = st;
}

/* Sleep flags; the server lists the sessions a wake-up may NOOP (asleep,
 * not woken yet), so that it need not walk every connection. */
static void set_sleep(struct gm_session *s, bool sleeping, bool noop_sent)
{
    struct gr_server *srv = s->srv;
    bool was = s->sleeping && !s->noop_sent;
    bool now = sleeping && !noop_sent;

    s->sleeping = sleeping;
    s->noop_sent = noop_sent;
    if (was == now) {
        return;
    }
    if (now) {
        s->sleep_prev = NULL;
        s->sleep_next = srv->sleepers;
        if (srv->sleepers != NULL) {
            srv->sleepers->sleep_prev = s;
        }
        srv->sleepers = s;
        return;
    }
    if (s->sleep_prev != NULL) {
        s->sleep_prev->sleep_next = s->sleep_next;
    } else {
        srv->sleepers = s->sleep_next;
    }
    if (s->sleep_next != NULL) {
        s->sleep_next->sleep_prev = s->sleep_prev;
    }
    s->sleep_next = s->sleep_prev = NULL;
}

int gm_session_new(struct gr_server *srv, int fd, const char *ip,
                   struct gm_session **out)
{
    struct gm_session *s;

    s = gr_calloc(1, sizeof(*s));
    if (s == NULL) {
        goto err_close_fd;
    }
    s->srv = srv;
    s->fd = fd;
    snprintf(s->ip, sizeof(s->ip), "%s", ip);
    s->client_id[0] = '\0';
    s->exceptions = srv->cfg->exceptions;
    s->state = GM_SS_READ; /* not WAIT_COMMIT: no count to keep */
    s->out_high = GM_SESSION_OUT_HIGH;
    s->out_low = GM_SESSION_OUT_LOW;
    s->in = evbuffer_new();
    s->out = evbuffer_new();
    s->read_ev = event_new(srv->base, fd, EV_READ | EV_PERSIST, on_read, s);
    s->write_ev = event_new(srv->base, fd, EV_WRITE | EV_PERSIST, on_write, s);
    s->timeout_ev = evtimer_new(srv->base, on_timeout, s);
    s->resume_ev = event_new(srv->base, -1, 0, on_resume, s);
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
    gr_session_register(srv, s);
    *out = s;
    return 0;

err_free_session:
    s->fd = -1;
    gm_session_free(s);
err_close_fd:
    close(fd);
    return GR_ENOMEM;
}

void gm_session_free(struct gm_session *s)
{
    struct gm_func *f;

    if (s == NULL) {
        return;
    }
    if (s->read_ev != NULL) {
        event_free(s->read_ev);
    }
    if (s->write_ev != NULL) {
        event_free(s->write_ev);
    }
    if (s->timeout_ev != NULL) {
        event_free(s->timeout_ev);
    }
    if (s->resume_ev != NULL) {
        event_free(s->resume_ev);
    }
    if (s->in != NULL) {
        evbuffer_free(s->in);
    }
    if (s->out != NULL) {
        evbuffer_free(s->out);
    }
    gm_frame_close(&s->held);
    gr_free(s->held_jobs);
    gr_free(s->big.body);
    while ((f = s->funcs) != NULL) {
        s->funcs = f->next;
        gr_free(f);
    }
    if (s->fd >= 0) {
        close(s->fd);
    }
    gr_free(s);
}

/* ---------------------------------------------------------------------
 * Output and back-pressure.
 */

size_t gm_session_out_backlog(const struct gm_session *s)
{
    return evbuffer_get_length(s->out) + s->local_len;
}

/* True while the session may read and parse requests at all. */
static bool is_open(const struct gm_session *s)
{
    return s->state == GM_SS_READ || s->state == GM_SS_PARSE ||
           s->state == GM_SS_WAIT_COMMIT;
}

static void finish_eof(struct gm_session *s);

static void pause_reading(struct gm_session *s)
{
    if (s->out_paused) {
        return;
    }
    s->out_paused = true;
    event_del(s->read_ev);
    GR_LOG(GR_LOG_DEBUG, "session",
           "conn=%llu %zu bytes of output or %zu requests waiting: not "
           "reading requests",
           (unsigned long long)s->conn_id, gm_session_out_backlog(s),
           s->n_pending);
}

/* Reads again. Frames already buffered are parsed from resume_ev, not
 * here: this runs inside gm_session_flush(), whose callers (loop.c's
 * flush_all, on_write) do not expect the session to handle requests. */
static void resume_reading(struct gm_session *s)
{
    s->out_paused = false;
    GR_LOG(GR_LOG_DEBUG, "session", "conn=%llu output drained: reading again",
           (unsigned long long)s->conn_id);
    if (!s->read_eof) {
        event_add(s->read_ev, NULL);
    }
    if (s->state == GM_SS_PARSE || s->read_eof) {
        event_active(s->resume_ev, EV_TIMEOUT, 0);
    }
}

static void check_backlog(struct gm_session *s);

/* Too much waits for this connection: replies it has not read, or
 * requests of its still waiting for the disk (by count or by bytes: a
 * worker streaming large WORK_DATA must not queue gigabytes of them). */
static bool over_marks(const struct gm_session *s)
{
    return gm_session_out_backlog(s) > s->out_high ||
           s->n_pending >= GM_SESSION_MAX_PENDING ||
           s->pending_bytes > GM_SESSION_PENDING_BYTES;
}

void gm_session_propose(struct gm_session *s, struct gr_proposal *p)
{
    /* WORK_* is answered only when refused; a GRAB that named its job was
     * answered already. */
    p->may_reply = p->cmd.type != STORE_CMD_WORK &&
                   !(p->cmd.type == STORE_CMD_GRAB && p->cmd.u.grab.job != 0);
    s->n_may_reply += p->may_reply;
    s->n_pending++;
    s->pending_bytes += p->body_len;
    gr_propose(s->srv, p);
}

/* Client c drained (or is closing): the workers paused on it read again,
 * unless something else keeps them paused. */
static void release_blocked(struct gm_session *c)
{
    struct gm_session *w;

    if (c->n_blocked == 0) {
        return;
    }
    c->n_blocked = 0;
    for (w = c->srv->sessions; w != NULL; w = w->next) {
        if (w->blocked_on == c->conn_id) {
            w->blocked_on = 0;
            check_backlog(w);
        }
    }
}

void gm_session_block_on(struct gm_session *w, struct gm_session *c)
{
    if (w == c || !is_open(w) || w->blocked_on != 0) {
        return;
    }
    w->blocked_on = c->conn_id;
    c->n_blocked++;
    pause_reading(w);
}

/* Pauses above the high mark, resumes below the low one. */
static void check_backlog(struct gm_session *s)
{
    size_t backlog;

    if (!is_open(s)) {
        return;
    }
    backlog = gm_session_out_backlog(s);
    if (s->n_blocked > 0 && backlog < s->out_low) {
        release_blocked(s);
    }
    if (!s->out_paused && over_marks(s)) {
        pause_reading(s);
    } else if (s->out_paused && backlog < s->out_low &&
               s->n_pending <= GM_SESSION_MAX_PENDING / 2 &&
               s->pending_bytes <= GM_SESSION_PENDING_BYTES / 2 &&
               s->blocked_on == 0) {
        resume_reading(s);
    }
}

void gm_session_flush(struct gm_session *s)
{
    if (s->state == GM_SS_CLOSED) {
        return;
    }
    while (evbuffer_get_length(s->out) > 0) {
        int n = evbuffer_write(s->out, s->fd);

        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            GR_LOG(GR_LOG_INFO, "session", "conn=%llu write failed: %s",
                   (unsigned long long)s->conn_id, strerror(errno));
            gm_session_close(s, false);
            return;
        }
        if (n == 0) {
            break;
        }
    }
    if (evbuffer_get_length(s->out) > 0) {
        event_add(s->write_ev, NULL);
    } else {
        event_del(s->write_ev);
        if (s->state == GM_SS_CLOSING) {
            gm_session_close(s, false);
            return;
        }
    }
    /* Output put here by other connections (forwarded results, NOOP)
     * pauses this one's reading too: it cannot be refused, but what the
     * peer asks for next can wait. */
    check_backlog(s);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    struct gm_session *s = arg;

    (void)fd;
    (void)what;
    gm_session_flush(s);
}

/* Where an immediate reply goes: straight out when nothing is in flight,
 * else into a local proposal that the batch sends after the replies it
 * must follow. NULL when out of memory (the reply is dropped and the
 * connection closed). */
static struct evbuffer *reply_buf(struct gm_session *s)
{
    struct gr_proposal *p;

    if (s->n_pending == 0) {
        gr_session_want_flush(s->srv, s);
        return s->out;
    }
    p = gr_proposal_new();
    if (p == NULL) {
        return NULL;
    }
    p->local = evbuffer_new();
    if (p->local == NULL) {
        gr_proposal_free(p);
        return NULL;
    }
    p->conn_id = s->conn_id;
    gm_session_propose(s, p);
    return p->local;
}

/* Counts a reply written into a local proposal's buffer against the
 * back-pressure mark. Each such buffer holds exactly one reply. The count
 * is only cleared when no proposal of the session is in flight any more
 * (gm_session_proposal_done), so it may overstate the backlog for a while;
 * then the session pauses until its batch is answered, never longer. */
static void count_local(struct gm_session *s, struct evbuffer *out)
{
    if (out != s->out) {
        s->local_len += evbuffer_get_length(out);
    }
}

static void reply(struct gm_session *s, uint32_t type,
                  const struct store_buf *args, size_t n)
{
    struct evbuffer *out = reply_buf(s);

    if (out == NULL || gm_packet_write(out, type, args, n) != 0) {
        gm_session_close(s, false);
        return;
    }
    count_local(s, out);
}

static void reply_error(struct gm_session *s, const char *code,
                        const char *text)
{
    struct evbuffer *out = reply_buf(s);

    if (out == NULL || gm_error_write(out, code, text) != 0) {
        gm_session_close(s, false);
        return;
    }
    count_local(s, out);
}

/* ---------------------------------------------------------------------
 * Closing.
 */

static void propose_gone(struct gm_session *s)
{
    struct gr_server *srv = s->srv;
    struct store_conn_ref ref = gr_conn_ref(srv, s->conn_id);
    struct gr_proposal *p;

    if (s->grabbed) {
        p = gr_proposal_new();
        if (p != NULL) {
            p->cmd.type = STORE_CMD_RELEASE;
            p->cmd.u.release.worker = ref;
            p->cmd.u.release.max_retries = srv->cfg->job_retries;
            p->retry = true;
            gr_propose(srv, p);
        }
    }
    if (s->submitted_fg) {
        p = gr_proposal_new();
        if (p != NULL) {
            p->cmd.type = STORE_CMD_CLIENT_GONE;
            p->cmd.u.client_gone = ref;
            p->retry = true;
            gr_propose(srv, p);
        }
    }
}

void gm_session_close(struct gm_session *s, bool flush)
{
    if (s->state == GM_SS_CLOSED) {
        return;
    }
    if (flush && evbuffer_get_length(s->out) > 0) {
        set_state(s, GM_SS_CLOSING);
        event_del(s->read_ev);
        gm_session_flush(s);
        return;
    }
    release_blocked(s);
    set_sleep(s, false, false);
    set_state(s, GM_SS_CLOSED);
    event_del(s->read_ev);
    event_del(s->write_ev);
    event_del(s->timeout_ev);
    event_del(s->resume_ev);
    close(s->fd);
    s->fd = -1;
    gr_session_unregister(s->srv, s);
    /* At shutdown the next start's NODE_GONE requeues what this process's
     * workers held, and foreground jobs stay for clients to come back to
     * (as after a crash): no goodbyes then. */
    if (!s->srv->closing_all) {
        propose_gone(s);
    }
    gr_session_reap_later(s->srv, s);
}

/* ---------------------------------------------------------------------
 * Worker functions.
 */

static struct gm_func *func_find(const struct gm_session *s,
                                 const uint8_t *name, size_t len,
                                 struct gm_func ***link)
{
    struct gm_func **pp = (struct gm_func **)&s->funcs;

    while (*pp != NULL) {
        if ((*pp)->len == len && memcmp((*pp)->name, name, len) == 0) {
            if (link != NULL) {
                *link = pp;
            }
            return *pp;
        }
        pp = &(*pp)->next;
    }
    return NULL;
}

void gm_session_assigned(struct gm_session *s, const uint8_t *name, size_t len)
{
    struct gm_func **pp = NULL;
    struct gm_func *f;

    if (!s->srv->cfg->round_robin) {
        return;
    }
    f = func_find(s, name, len, &pp);
    if (f == NULL || f->next == NULL) {
        return; /* not registered (any more), or already last */
    }
    *pp = f->next;
    while (*pp != NULL) {
        pp = &(*pp)->next;
    }
    f->next = NULL;
    *pp = f;
}

bool gm_session_can_do(const struct gm_session *s, const uint8_t *name,
                       size_t len)
{
    return func_find(s, name, len, NULL) != NULL;
}

static int func_add(struct gm_session *s, const struct store_buf *name,
                    uint32_t timeout_ms)
{
    struct gm_func *f;

    /* gearmand keeps a second entry for a function registered twice: it
     * shows twice in `workers` and counts twice in `status`. */
    f = gr_malloc(sizeof(*f) + name->len);
    if (f == NULL) {
        return GR_ENOMEM;
    }
    f->len = name->len;
    f->timeout_ms = timeout_ms;
    if (name->len > 0) {
        memcpy(f->name, name->base, name->len);
    }
    f->next = s->funcs;
    s->funcs = f;
    s->n_funcs++;
    return gr_known_func_add(s->srv, name->base, name->len);
}

static void propose_release(struct gm_session *s, const struct store_buf *name)
{
    struct gr_proposal *p;

    if (!s->grabbed) {
        return;
    }
    gr_relay_clear(s);
    p = gr_proposal_new();
    if (p == NULL) {
        gm_session_close(s, false);
        return;
    }
    p->cmd.type = STORE_CMD_RELEASE;
    p->cmd.u.release.worker = gr_conn_ref(s->srv, s->conn_id);
    p->cmd.u.release.max_retries = s->srv->cfg->job_retries;
    p->retry = true;
    if (name != NULL && name->len > 0) {
        p->owned = gr_malloc(name->len);
        if (p->owned == NULL) {
            gr_proposal_free(p);
            gm_session_close(s, false);
            return;
        }
        memcpy(p->owned, name->base, name->len);
        p->cmd.u.release.function.base = p->owned;
        p->cmd.u.release.function.len = name->len;
    }
    gr_propose(s->srv, p);
}

/* CANT_DO removes every registration of the function (gearmand). */
static void func_remove(struct gm_session *s, const struct store_buf *name)
{
    struct gm_func **link;
    struct gm_func *f;
    bool found = false;

    while ((f = func_find(s, name->base, name->len, &link)) != NULL) {
        *link = f->next;
        gr_free(f);
        s->n_funcs--;
        found = true;
    }
    if (found) {
        propose_release(s, name);
    }
}

static void funcs_reset(struct gm_session *s)
{
    struct gm_func *f;

    while ((f = s->funcs) != NULL) {
        s->funcs = f->next;
        gr_free(f);
    }
    s->n_funcs = 0;
    propose_release(s, NULL);
}

/* ---------------------------------------------------------------------
 * Timers: CAN_DO_TIMEOUT (GEARMAND.md 3.6).
 */

void gm_session_job_assigned(struct gm_session *s, const uint8_t *function,
                             size_t function_len, const uint8_t *handle,
                             size_t handle_len)
{
    struct gm_func *f = func_find(s, function, function_len, NULL);
    struct timeval tv;

    s->grabbed = true;
    if (f == NULL || f->timeout_ms == 0 ||
        handle_len > sizeof(s->timeout_handle)) {
        return;
    }
    memcpy(s->timeout_handle, handle, handle_len);
    s->timeout_handle_len = handle_len;
    tv.tv_sec = f->timeout_ms / 1000;
    tv.tv_usec = (suseconds_t)(f->timeout_ms % 1000) * 1000;
    evtimer_add(s->timeout_ev, &tv);
}

void gm_session_job_ended(struct gm_session *s, const uint8_t *handle,
                          size_t handle_len)
{
    if (s->timeout_handle_len == handle_len &&
        memcmp(s->timeout_handle, handle, handle_len) == 0) {
        evtimer_del(s->timeout_ev);
        s->timeout_handle_len = 0;
    }
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
    p->cmd.u.timeout.worker = gr_conn_ref(s->srv, s->conn_id);
    p->cmd.u.timeout.handle.base = p->owned;
    p->cmd.u.timeout.handle.len = s->timeout_handle_len;
    p->cmd.u.timeout.max_retries = s->srv->cfg->job_retries;
    p->retry = true;
    gr_relay_drop(s, s->timeout_handle, s->timeout_handle_len);
    s->timeout_handle_len = 0;
    GR_LOG(GR_LOG_INFO, "session", "conn=%llu job timed out: requeueing",
           (unsigned long long)s->conn_id);
    gr_propose(s->srv, p);
}

void gm_session_wake(struct gm_session *s)
{
    static const struct store_buf none = {NULL, 0};

    if (!s->sleeping || s->noop_sent || s->state == GM_SS_CLOSED ||
        s->state == GM_SS_CLOSING) {
        return;
    }
    set_sleep(s, true, true);
    if (gm_packet_write(s->out, GM_NOOP, &none, 0) != 0) {
        gm_session_close(s, false);
        return;
    }
    gr_session_want_flush(s->srv, s);
}

/* ---------------------------------------------------------------------
 * Binary requests.
 */

static bool is_background(uint32_t type)
{
    return type == GM_SUBMIT_JOB_BG || type == GM_SUBMIT_JOB_HIGH_BG ||
           type == GM_SUBMIT_JOB_LOW_BG || type == GM_SUBMIT_JOB_EPOCH ||
           type == GM_SUBMIT_REDUCE_JOB_BACKGROUND;
}

static enum store_prio prio_of(uint32_t type)
{
    if (type == GM_SUBMIT_JOB_HIGH || type == GM_SUBMIT_JOB_HIGH_BG) {
        return STORE_PRIO_HIGH;
    }
    if (type == GM_SUBMIT_JOB_LOW || type == GM_SUBMIT_JOB_LOW_BG) {
        return STORE_PRIO_LOW;
    }
    return STORE_PRIO_NORMAL;
}

static uint64_t parse_dec(struct store_buf b)
{
    uint64_t v = 0;
    size_t i;

    for (i = 0; i < b.len && b.base[i] >= '0' && b.base[i] <= '9'; i++) {
        if (v > (UINT64_MAX - 9) / 10) {
            return UINT64_MAX;
        }
        v = v * 10 + (uint64_t)(b.base[i] - '0');
    }
    return v;
}

static void handle_submit(struct gm_session *s, struct gm_packet *pkt)
{
    struct gr_server *srv = s->srv;
    struct gr_proposal *p;
    struct store_submit *sub;
    struct store_buf unique = pkt->args[1];

    if (unique.len > STORE_UNIQUE_MAX) {
        reply_error(s, "ARGUMENT_TOO_LARGE", "Unique value too large");
        return;
    }
    if (unique.len == STORE_UNIQUE_MAX) {
        unique.len--; /* gearmand keeps 63 bytes of a 64-byte unique */
    }
    if (pkt->args[0].len > STORE_FUNCTION_MAX) {
        reply_error(s, "ARGUMENT_TOO_LARGE", "Function name too large");
        return;
    }
    if (!gr_server_has_space(srv, pkt->len)) {
        reply_error(s, "QUEUE_ERROR",
                    "Job queue is full: the server is out of storage space");
        return;
    }
    p = gr_proposal_new();
    if (p == NULL) {
        reply_error(s, "QUEUE_ERROR", "Job queue is full: out of memory");
        return;
    }
    gm_packet_take_body(pkt, &p->body, &p->body_len); /* args stay valid */
    p->conn_id = s->conn_id;
    p->cmd.type = STORE_CMD_SUBMIT;
    sub = &p->cmd.u.submit;
    sub->function = pkt->args[0];
    sub->unique = unique;
    sub->prio = prio_of(pkt->type);
    sub->background = is_background(pkt->type);
    sub->client = gr_conn_ref(srv, s->conn_id);
    switch (pkt->type) {
    case GM_SUBMIT_JOB_EPOCH:
        sub->when = parse_dec(pkt->args[2]);
        sub->data = pkt->args[3];
        break;
    case GM_SUBMIT_REDUCE_JOB:
    case GM_SUBMIT_REDUCE_JOB_BACKGROUND:
        sub->reducer = pkt->args[2];
        sub->data = pkt->args[4];
        break;
    default:
        sub->data = pkt->args[2];
        break;
    }
    if (!sub->background) {
        s->submitted_fg = true;
    }
    gm_session_propose(s, p);
}

/* s's function names, in its order, as an array the caller frees (NULL
 * when out of memory or s has none); they point into s->funcs. */
static struct store_buf *func_bufs(const struct gm_session *s)
{
    struct store_buf *fv = gr_calloc(s->n_funcs, sizeof(*fv));
    const struct gm_func *f;
    size_t i = 0;

    if (fv == NULL) {
        return NULL;
    }
    for (f = s->funcs; f != NULL; f = f->next) {
        fv[i].base = f->name;
        fv[i].len = f->len;
        i++;
    }
    return fv;
}

static bool runnable_now(struct gm_session *s)
{
    struct store_txn *txn;
    struct store_buf *fv;
    bool any = true; /* on doubt, let the write path decide */

    if (s->n_funcs == 0) {
        return false;
    }
    fv = func_bufs(s);
    if (fv == NULL) {
        return true;
    }
    if (store_txn_begin(s->srv->store, false, &txn) == 0) {
        if (store_has_runnable(txn, fv, s->n_funcs, gr_now_ms(), &any) != 0) {
            any = true;
        }
        store_txn_abort(txn);
    }
    gr_free(fv);
    return any;
}

/* ---------------------------------------------------------------------
 * Handing a job out at GRAB time.
 *
 * An ordinary GRAB waits for the next write batch to pick its job. When
 * the loop can tell which job that would be, it hands it out at once and
 * proposes a GRAB naming the job, which the batch then assigns. It picks,
 * as apply would, from the last committed state, passing over the jobs
 * it handed out whose GRABs are not yet committed (srv->handed_out). That
 * is exact while nothing else in flight may take, drop or requeue a job
 * (srv->n_blind == 0: no ordinary GRAB, cancel, client gone or admin
 * change not yet applied, no release, timeout or node gone not yet
 * committed - loop.c, note_applied): submissions only add jobs, WORK_*
 * ends running ones. A job submitted but not yet committed is not seen - its
 * JOB_CREATED has not left either, so the GRAB is simply ordered first.
 * The worker must have no earlier reply still to come (n_may_reply), so
 * replies keep their order. Like an early JOB_ASSIGN today, the job is
 * handed out before the disk has the GRAB: if that commit fails, the job
 * is still queued and runs again (at-least-once). This holds for one
 * node only (all there is today): with other voters, their GRABs are not
 * known here, and the cluster must not hand out this way.
 */

struct hand_out_arg {
    struct gm_session *s;
    uint32_t type;
    uint64_t floor; /* gr_pick_floor */
    uint64_t num;
    bool dry; /* only look (PRE_SLEEP): hand nothing out */
    /* the best job ahead of the function being looked at, if any */
    const struct gr_ahead_job *ahead;
};

/* Jobs a hand-out passes over: handed out or taken by GRABs not yet
 * committed, dropped by batches not yet committed, or maybe taken by a
 * GRAB with min_job not yet applied. */
static bool pass_over(void *arg, uint64_t num)
{
    const struct hand_out_arg *a = arg;
    const struct gr_server *srv = a->s->srv;

    return num >= a->floor || gr_numset_has(&srv->handed_out, num) ||
           gr_numset_has(&srv->applied_out, num);
}

/* Hands out v (the job ahead of submit, or a committed one if NULL),
 * unless a->dry; a job one foreground client waits on is held for its
 * relays (relay.c). */
static int give(struct hand_out_arg *a, const struct store_job_view *v,
                struct gr_proposal *submit)
{
    struct gr_server *srv = a->s->srv;

    a->num = v->num;
    if (a->dry) {
        return 0;
    }
    if (gr_numset_add(&srv->handed_out, v->num) != 0) {
        return STORE_ENOMEM;
    }
    if (gr_answer_hand_out(a->s, a->type, v) != 0) {
        gr_numset_del(&srv->handed_out, v->num);
        return STORE_ENOMEM;
    }
    if (v->n_waiters == 1 && v->waiter.node_id == srv->node_id &&
        v->waiter.incarnation == srv->incarnation) {
        gr_relay_handed(a->s, v->num, v->handle.base, v->handle.len,
                        v->waiter.conn_id, submit);
    }
    return 0;
}

/* Hands out the job ahead (a->ahead), built from its SUBMIT. */
static int give_ahead(struct hand_out_arg *a)
{
    struct gr_proposal *submit = a->ahead->submit;
    const struct store_submit *sub = &submit->cmd.u.submit;
    char handle[STORE_HANDLE_MAX];
    struct store_job_view v;
    int rv;

    memset(&v, 0, sizeof(v));
    v.num = a->ahead->num;
    v.handle.len =
        store_handle_format(a->s->srv->store, v.num, handle, sizeof(handle));
    v.handle.base = (const uint8_t *)handle;
    v.function = sub->function;
    v.unique = sub->unique;
    v.reducer = sub->reducer;
    v.data = sub->data;
    v.prio = sub->prio;
    if (!sub->background) {
        v.n_waiters = 1;
        v.waiter = gr_conn_ref(a->s->srv, submit->conn_id);
    }
    rv = give(a, &v, submit);
    if (rv == 0 && !a->dry) {
        a->s->srv->n_ahead++;
    }
    return rv;
}

/* The committed job v, unless the function's best job ahead comes
 * first: a better priority (within one, committed jobs are older). */
static int hand_out_one(void *arg, const struct store_job_view *v)
{
    struct hand_out_arg *a = arg;

    if (a->ahead != NULL && a->ahead->submit->cmd.u.submit.prio < v->prio) {
        return give_ahead(a);
    }
    return give(a, v, NULL);
}

/* What an ordinary GRAB of these functions would take, from the last
 * committed state and the jobs ahead of it (ahead.c), passing over what
 * is taken meanwhile: gives it (a) and sets *found. 1.1.x takes the
 * first of the worker's functions that has a runnable job. */
static int pick(struct hand_out_arg *a, struct store_txn *txn,
                const struct store_buf *functions, size_t n, bool *found)
{
    uint64_t now = gr_now_ms();
    struct gr_ahead_job best;
    size_t i;
    int rv = 0;

    *found = false;
    for (i = 0; i < n && rv == 0 && !*found; i++) {
        a->ahead = gr_ahead_best(a->s->srv, functions[i], pass_over, a, &best)
                       ? &best
                       : NULL;
        rv = store_pick_job(txn, &functions[i], 1, now, pass_over, a,
                            hand_out_one, a, found);
        if (rv == 0 && !*found && a->ahead != NULL) {
            rv = give_ahead(a);
            *found = rv == 0;
        }
    }
    a->ahead = NULL;
    return rv;
}

/* True if the loop can tell which job a GRAB of s would get (the rule
 * above hand_out). */
static bool may_hand_out(const struct gm_session *s)
{
    /* Only where the loop decides the log's order (decides_alone); not
     * while a read of queue state waits: it waits for the GRABs of the
     * jobs handed out, which must not keep coming (must_wait). */
    return s->srv->decides_alone && s->srv->n_blind == 0 &&
           s->srv->n_wait_readers == 0 && s->n_may_reply == 0 && s->n_funcs > 0;
}

/* Hands s the job its GRAB g (of type) would get, if the loop can tell
 * which (above), and names it in g->job. When it can tell that no job it
 * sees is left, g->min_job limits the GRAB to the jobs it cannot see, so
 * that the GRAB does not make every later one blind. Otherwise g goes the
 * ordinary way. */
static void hand_out(struct gm_session *s, uint32_t type, struct store_grab *g)
{
    struct gr_server *srv = s->srv;
    struct hand_out_arg a = {s, type, gr_pick_floor(srv), 0, false, NULL};
    struct store_txn *txn;
    uint64_t applied = 0;
    bool found = false;
    int rv;

    if (!may_hand_out(s) || g->n_functions == 0) {
        return;
    }
    if (store_txn_begin(srv->store, false, &txn) != 0) {
        return;
    }
    rv = pick(&a, txn, g->functions, g->n_functions, &found);
    if (rv == 0 && !found) {
        rv = store_applied_index(txn, &applied);
    }
    store_txn_abort(txn);
    if (rv == 0 && found) {
        g->job = a.num;
    } else if (rv == 0) {
        /* Passed over from the floor on, too: a GRAB in flight may take
         * those, and so may this one. */
        g->min_job = a.floor < applied + 1 ? a.floor : applied + 1;
    }
}

/* For PRE_SLEEP while the loop knows every job (gr_ahead_complete): true
 * if a GRAB of s would get one now. */
static bool job_for(struct gm_session *s)
{
    struct hand_out_arg a = {s, 0, gr_pick_floor(s->srv), 0, true, NULL};
    struct store_buf *fv = s->n_funcs > 0 ? func_bufs(s) : NULL;
    struct store_txn *txn;
    bool found = true; /* on doubt, a NOOP: the GRAB then decides */

    if (fv == NULL) {
        return s->n_funcs > 0; /* no function, or out of memory */
    }
    if (store_txn_begin(s->srv->store, false, &txn) == 0) {
        if (pick(&a, txn, fv, s->n_funcs, &found) != 0) {
            found = true;
        }
        store_txn_abort(txn);
    }
    gr_free(fv);
    return found;
}

static void handle_grab(struct gm_session *s, uint32_t type)
{
    static const struct store_buf none = {NULL, 0};
    struct gr_proposal *p;
    struct store_buf *fv;
    struct gm_func *f;
    size_t total = 0;
    size_t i = 0;
    uint8_t *names;

    set_sleep(s, false, false);
    /* Nothing to do for this worker and nothing queued or being written
     * that could change that: answer without a write. */
    if (!may_hand_out(s) && gr_pipeline_is_empty(&s->srv->pipe) &&
        !runnable_now(s)) {
        reply(s, GM_NO_JOB, &none, 0);
        return;
    }
    for (f = s->funcs; f != NULL; f = f->next) {
        total += f->len;
    }
    p = gr_proposal_new();
    if (p == NULL) {
        gm_session_close(s, false);
        return;
    }
    p->owned = gr_malloc(s->n_funcs * sizeof(*fv) + total);
    if (p->owned == NULL) {
        gr_proposal_free(p);
        gm_session_close(s, false);
        return;
    }
    fv = p->owned;
    names = (uint8_t *)(fv + s->n_funcs);
    for (f = s->funcs; f != NULL; f = f->next) {
        if (f->len > 0) {
            memcpy(names, f->name, f->len);
        }
        fv[i].base = names;
        fv[i].len = f->len;
        names += f->len;
        i++;
    }
    p->conn_id = s->conn_id;
    p->reply_type = type;
    p->cmd.type = STORE_CMD_GRAB;
    p->cmd.u.grab.worker = gr_conn_ref(s->srv, s->conn_id);
    p->cmd.u.grab.functions = fv;
    p->cmd.u.grab.n_functions = i;
    hand_out(s, type, &p->cmd.u.grab);
    if (p->cmd.u.grab.job == 0 && p->cmd.u.grab.min_job != 0 &&
        gr_ahead_complete(s->srv)) {
        /* Nothing for it, and the loop knows every job there is: no
         * batch needed. Each later one wakes it (node/ahead.c). */
        gr_proposal_free(p);
        reply(s, GM_NO_JOB, &none, 0);
        return;
    }
    p->answered = p->cmd.u.grab.job != 0;
    gm_session_propose(s, p);
}

static void handle_work(struct gm_session *s, struct gm_packet *pkt)
{
    struct gr_proposal *p;
    struct store_work *w;

    p = gr_proposal_new();
    if (p == NULL) {
        gm_session_close(s, false);
        return;
    }
    gm_packet_take_body(pkt, &p->body, &p->body_len); /* args stay valid */
    p->conn_id = s->conn_id;
    p->cmd.type = STORE_CMD_WORK;
    w = &p->cmd.u.work;
    w->worker = gr_conn_ref(s->srv, s->conn_id);
    w->handle = pkt->args[0];
    switch (pkt->type) {
    case GM_WORK_STATUS:
        w->kind = STORE_WORK_STATUS;
        w->numerator = pkt->args[1];
        w->denominator = pkt->args[2];
        break;
    case GM_WORK_DATA:
        w->kind = STORE_WORK_DATA;
        w->data = pkt->args[1];
        break;
    case GM_WORK_WARNING:
        w->kind = STORE_WORK_WARNING;
        w->data = pkt->args[1];
        break;
    case GM_WORK_COMPLETE:
        w->kind = STORE_WORK_COMPLETE;
        w->data = pkt->args[1];
        break;
    case GM_WORK_FAIL:
        w->kind = STORE_WORK_FAIL;
        break;
    default:
        w->kind = STORE_WORK_EXCEPTION;
        w->data = pkt->args[1];
        break;
    }
    if (w->kind == STORE_WORK_COMPLETE || w->kind == STORE_WORK_FAIL ||
        w->kind == STORE_WORK_EXCEPTION) {
        gm_session_job_ended(s, w->handle.base, w->handle.len);
    }
    gr_relay_work(s, p);
    gm_session_propose(s, p);
}

static bool handed(void *arg, uint64_t num)
{
    const struct gr_server *srv = arg;

    return gr_numset_has(&srv->handed_out, num);
}

/* True if a job ahead (node/ahead.c) for one of s's functions is not yet
 * handed out: its SUBMIT woke the sleepers when it was read, and its
 * apply does not wake them again, so s must not sleep past it. */
static bool ahead_for(struct gm_session *s)
{
    struct gr_ahead_job j;
    struct gm_func *f;

    for (f = s->funcs; f != NULL; f = f->next) {
        struct store_buf fn = {f->name, f->len};

        if (gr_ahead_best(s->srv, fn, handed, s->srv, &j)) {
            return true;
        }
    }
    return false;
}

/* True when a PRE_SLEEP of s can be answered from what the loop knows
 * (gr_ahead_complete), without waiting for the batches being written. */
static bool sleep_now(const struct gm_session *s)
{
    return gr_ahead_complete(s->srv) && s->n_may_reply == 0;
}

static void handle_pre_sleep(struct gm_session *s)
{
    static const struct store_buf none = {NULL, 0};

    evtimer_del(s->timeout_ev);
    s->timeout_handle_len = 0;
    if (sleep_now(s) ? job_for(s) : (runnable_now(s) || ahead_for(s))) {
        set_sleep(s, true, true);
        reply(s, GM_NOOP, &none, 0);
        return;
    }
    set_sleep(s, true, false);
}

static void write_status(struct gm_session *s, uint32_t type,
                         struct store_buf key,
                         const struct store_job_status *st)
{
    char num[4][24];
    struct store_buf a[6];
    size_t n = 5;

    snprintf(num[0], sizeof(num[0]), "%d", st->known ? 1 : 0);
    snprintf(num[1], sizeof(num[1]), "%d", st->running ? 1 : 0);
    snprintf(num[2], sizeof(num[2]), "%u", (unsigned)st->numerator);
    snprintf(num[3], sizeof(num[3]), "%u", (unsigned)st->denominator);
    a[0] = key;
    a[1] = gm_str(num[0]);
    a[2] = gm_str(num[1]);
    a[3] = gm_str(num[2]);
    a[4] = gm_str(num[3]);
    if (type == GM_STATUS_RES_UNIQUE) {
        static char waiting[24];

        snprintf(waiting, sizeof(waiting), "%u", (unsigned)st->n_waiting);
        a[5] = gm_str(waiting);
        n = 6;
    }
    reply(s, type, a, n);
}

static void handle_get_status(struct gm_session *s, struct gm_packet *pkt)
{
    struct store_job_status st;
    struct store_txn *txn;
    int rv;

    memset(&st, 0, sizeof(st));
    rv = store_txn_begin(s->srv->store, false, &txn);
    if (rv == 0) {
        if (pkt->type == GM_GET_STATUS) {
            rv = store_job_status(txn, pkt->args[0], &st);
        } else {
            rv = store_job_status_unique(txn, pkt->args[0], &st);
        }
        store_txn_abort(txn);
    }
    if (rv != 0 && rv != STORE_ENOTFOUND) {
        GR_LOG(GR_LOG_ERROR, "session", "status lookup failed: %s",
               store_strerror(rv));
        memset(&st, 0, sizeof(st));
    }
    if (rv == STORE_ENOTFOUND) {
        memset(&st, 0, sizeof(st));
    }
    write_status(
        s, pkt->type == GM_GET_STATUS ? GM_STATUS_RES : GM_STATUS_RES_UNIQUE,
        pkt->args[0], &st);
}

static void handle_option(struct gm_session *s, struct gm_packet *pkt)
{
    struct store_buf name = pkt->args[0];

    if (name.len == strlen("exceptions") &&
        strncasecmp((const char *)name.base, "exceptions", name.len) == 0) {
        s->exceptions = true;
        reply(s, GM_OPTION_RES, &name, 1);
        return;
    }
    reply_error(s, "UNKNOWN_OPTION", "Server does not recognize given option");
}

static uint32_t parse_timeout(struct store_buf b)
{
    uint64_t v = parse_dec(b);

    if (v < 1000) {
        return 1000; /* gearmand raises smaller values to 1000 ms */
    }
    if (v > UINT32_MAX) {
        return UINT32_MAX;
    }
    return (uint32_t)v;
}

/* CAN_DO and CAN_DO_TIMEOUT. */
static void handle_can_do(struct gm_session *s, const struct gm_packet *pkt)
{
    uint32_t timeout =
        pkt->type == GM_CAN_DO_TIMEOUT ? parse_timeout(pkt->args[1]) : 0;

    if (func_add(s, &pkt->args[0], timeout) != 0) {
        gm_session_close(s, false);
    }
}

/* SET_CLIENT_ID: kept for `workers`, cut to what fits. */
static void set_client_id(struct gm_session *s, struct store_buf id)
{
    size_t n =
        id.len < sizeof(s->client_id) - 1 ? id.len : sizeof(s->client_id) - 1;

    if (n > 0) {
        memcpy(s->client_id, id.base, n);
    }
    s->client_id[n] = '\0';
}

/* Handles one binary packet; the handler may take its body. */
static void handle_packet(struct gm_session *s, struct gm_packet *pkt)
{
    static const struct store_buf none = {NULL, 0};
    const struct gm_cmd_info *info = gm_cmd_info(pkt->type);

    if (!pkt->is_request) {
        reply_error(s, "INVALID_MAGIC", "Request magic expected");
        return;
    }
    if (info == NULL || info->role != GM_ROLE_REQUEST) {
        reply_error(s, "INVALID_COMMAND", "Command not expected");
        return;
    }
    if (!pkt->args_ok) {
        /* gearmand waits forever for the missing NULs; we refuse. */
        reply_error(s, "INVALID_PACKET", "Packet has too few arguments");
        gm_session_close(s, true);
        return;
    }
    switch (pkt->type) {
    case GM_SUBMIT_JOB:
    case GM_SUBMIT_JOB_BG:
    case GM_SUBMIT_JOB_HIGH:
    case GM_SUBMIT_JOB_HIGH_BG:
    case GM_SUBMIT_JOB_LOW:
    case GM_SUBMIT_JOB_LOW_BG:
    case GM_SUBMIT_JOB_EPOCH:
    case GM_SUBMIT_REDUCE_JOB:
    case GM_SUBMIT_REDUCE_JOB_BACKGROUND:
        handle_submit(s, pkt);
        break;
    case GM_GRAB_JOB:
    case GM_GRAB_JOB_UNIQ:
    case GM_GRAB_JOB_ALL:
        handle_grab(s, pkt->type);
        break;
    case GM_WORK_STATUS:
    case GM_WORK_DATA:
    case GM_WORK_WARNING:
    case GM_WORK_COMPLETE:
    case GM_WORK_FAIL:
    case GM_WORK_EXCEPTION:
        handle_work(s, pkt);
        break;
    case GM_CAN_DO:
    case GM_CAN_DO_TIMEOUT:
        handle_can_do(s, pkt);
        break;
    case GM_CANT_DO:
        func_remove(s, &pkt->args[0]);
        break;
    case GM_RESET_ABILITIES:
        funcs_reset(s);
        break;
    case GM_PRE_SLEEP:
        handle_pre_sleep(s);
        break;
    case GM_SET_CLIENT_ID:
        set_client_id(s, pkt->args[0]);
        break;
    case GM_ECHO_REQ:
        reply(s, GM_ECHO_RES, &pkt->args[0], 1);
        break;
    case GM_GET_STATUS:
    case GM_GET_STATUS_UNIQUE:
        handle_get_status(s, pkt);
        break;
    case GM_OPTION_REQ:
        handle_option(s, pkt);
        break;
    default:
        reply(s, GM_NO_JOB, &none, 0); /* unreachable: table says request */
        break;
    }
}

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

/* Requests that read queue state wait while a batch is in flight: its
 * early replies (JOB_ASSIGN, forwarded WORK_STATUS) may already be out,
 * and a reader must not see a state older than what it was told (a
 * PRE_SLEEP would get a NOOP for a job just handed to another worker). */
static bool reads_state(const struct gm_frame *f)
{
    if (f->kind == GM_FRAME_ADMIN) {
        return true;
    }
    switch (f->packet.type) {
    case GM_GET_STATUS:
    case GM_GET_STATUS_UNIQUE:
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
        sleep_now(s)) {
        return false;
    }
    /* A read of queue state waits for every batch being written, for
     * the WORK_* relayed to this client (so that its job does not show
     * after its result) and, when it shows jobs, for the GRABs of the
     * jobs already handed out (so that a job a worker has shows as
     * running). */
    return s->n_pending > 0 ||
           (reads_state(f) && (gr_server_writing(s->srv) || s->n_relayed > 0 ||
                               (shows_jobs(f) && s->srv->handed_out.n > 0)));
}

static void handle_frame(struct gm_session *s, struct gm_frame *f)
{
    if (f->kind == GM_FRAME_ADMIN) {
        admin_handle(s, f->line);
    } else {
        handle_packet(s, &f->packet);
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
    rv = gm_frame_parse(s->in, (size_t)s->srv->cfg->max_packet_size, frame,
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
            gr_session_want_flush(s->srv, s);
            return;
        case GM_SS_PARSE:
            /* Too much output waiting for the peer: the next request waits
             * in s->in (and the socket) until it drains. */
            if (s->out_paused || over_marks(s)) {
                pause_reading(s);
                gr_session_want_flush(s->srv, s);
                return;
            }
            memset(&frame, 0, sizeof(frame));
            rv = next_frame(s, &frame, &type);
            if (rv == GR_EAGAIN) {
                set_state(s, GM_SS_READ);
                break;
            }
            if (rv == GR_ETOOBIG) {
                GR_LOG(GR_LOG_INFO, "session",
                       "conn=%llu packet over --max-packet-size: closing",
                       (unsigned long long)s->conn_id);
                reply_error(s, "ARGUMENT_TOO_LARGE",
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
                set_state(s, GM_SS_WAIT_COMMIT);
                break;
            }
            handle_frame(s, &frame);
            break;
        case GM_SS_WAIT_COMMIT:
            if (must_wait(s, &s->held)) {
                gr_session_want_flush(s->srv, s);
                return;
            }
            frame = s->held;
            memset(&s->held, 0, sizeof(s->held));
            set_state(s, GM_SS_PARSE);
            handle_frame(s, &frame);
            break;
        case GM_SS_CLOSING:
        case GM_SS_CLOSED:
            return;
        }
    }
}

void gm_session_answered(struct gm_session *s, struct gr_proposal *p)
{
    if (p->may_reply) {
        p->may_reply = false;
        s->n_may_reply--;
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
    check_backlog(s);
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

/* After the peer's EOF: closes (flushing) once every request it sent is
 * answered - nothing buffered behind a pause, no proposal waiting for
 * the disk, no frame held for a commit. Until then the session stays. */
static void finish_eof(struct gm_session *s)
{
    if (!s->read_eof || !is_open(s)) {
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
            set_state(s, GM_SS_PARSE);
        }
        gm_session_drive(s);
        if (is_open(s)) {
            gm_session_flush(s);
        }
        finish_eof(s);
        return;
    }
    if (s->state == GM_SS_READ) {
        set_state(s, GM_SS_PARSE);
        gm_session_drive(s);
    }
    /* Replies written meanwhile (a job handed out at GRAB, immediate
     * answers) leave now; the rest come with their commits. */
    if (s->state != GM_SS_CLOSED &&
        (s->n_pending == 0 || evbuffer_get_length(s->out) > 0)) {
        gm_session_flush(s);
    }
    check_backlog(s);
}

/* The output drained below s->out_low: parse what was buffered
 * while paused, as on_read would have. */
static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct gm_session *s = arg;

    (void)fd;
    (void)what;
    if (!is_open(s) || s->out_paused) {
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
    check_backlog(s);
}
