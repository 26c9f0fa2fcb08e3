/* SPDX-License-Identifier: BSD-3-Clause
 * node/gearman/conn.c - one Gearman connection's output, back-pressure
 * and close, and the hub's registry of connections (conn.h).
 *
 * Back-pressure (GM_SESSION_OUT_HIGH): a connection whose peer lets its
 * replies pile up stops being read until they drain. The pause is a flag
 * beside the state, checked before each new frame is parsed and after
 * each write, so it composes with GM_SS_WAIT_COMMIT: a held frame is
 * still answered when its commit comes, and parsing picks up again, from
 * a deferred event, when the output is low again.
 *
 * An immediate answer must not overtake a reply still waiting for a
 * commit, so while a connection has proposals in flight its immediate
 * replies go into a local (nothing stored) proposal, delivered in order
 * with the batch.
 *
 * Not here: reading and the state machine (session.c), requests
 * (request.c, admin.c), answers from effects (answer.c).
 */
#include "node/gearman/conn.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "node/alone/alone.h"
#include "node/pipeline/pipeline.h"

#define N_BUCKETS 4096

/* ---------------------------------------------------------------------
 * The hub.
 */

static void on_reap(evutil_socket_t fd, short what, void *arg);

int gm_hub_init(struct gm_hub *hub, struct event_base *base,
                const struct gr_config *cfg, struct store *store,
                struct gr_pipeline *pipe, struct gr_alone *alone)
{
    memset(hub, 0, sizeof(*hub));
    hub->base = base;
    hub->cfg = cfg;
    hub->store = store;
    hub->node_id = store_node_id(store);
    hub->incarnation = store_incarnation(store);
    hub->pipe = pipe;
    hub->alone = alone;
    gr_space_init(&hub->space, store, cfg->min_free_space);
    hub->n_buckets = N_BUCKETS;
    hub->buckets = gr_calloc(N_BUCKETS, sizeof(*hub->buckets));
    hub->reap_ev = event_new(base, -1, 0, on_reap, hub);
    if (hub->buckets == NULL || hub->reap_ev == NULL) {
        return GR_ENOMEM;
    }
    event_priority_set(hub->reap_ev, 0);
    return 0;
}

void gm_hub_close(struct gm_hub *hub)
{
    if (hub->reap_ev != NULL) {
        event_free(hub->reap_ev);
        hub->reap_ev = NULL;
    }
    gr_free(hub->buckets);
    hub->buckets = NULL;
}

struct store_conn_ref gm_conn_ref(const struct gm_hub *hub, uint64_t conn_id)
{
    struct store_conn_ref r;

    r.node_id = hub->node_id;
    r.incarnation = hub->incarnation;
    r.conn_id = conn_id;
    return r;
}

static void propose(struct gm_hub *hub, struct gr_alone *alone,
                    struct gr_pipeline *pipe, struct gr_proposal *p)
{
    gr_alone_proposed(alone, p);
    gr_pipeline_propose(pipe, p);
    if (p->ahead) {
        /* Its job is certain (node/alone/ahead.h): the sleepers of its
         * function learn of it now, not when it is applied. */
        size_t budget = hub->cfg->worker_wakeup;

        gm_hub_wake(hub, &p->cmd.u.submit.function, budget > 0 ? &budget : NULL,
                    1);
    }
}

void gm_propose(struct gm_hub *hub, struct gr_proposal *p)
{
    propose(hub, hub->alone, hub->pipe, p);
}

static size_t bucket_of(const struct gm_hub *hub, uint64_t id)
{
    return (size_t)(id * 0x9E3779B97F4A7C15ull >> 40) % hub->n_buckets;
}

struct gm_session *gm_session_find(struct gm_hub *hub, uint64_t conn_id)
{
    struct gm_session *s = hub->buckets[bucket_of(hub, conn_id)];

    while (s != NULL && s->conn_id != conn_id) {
        s = s->hnext;
    }
    return s;
}

void gm_session_register(struct gm_hub *hub, struct gm_session *s)
{
    size_t b;

    s->conn_id = ++hub->next_conn_id;
    b = bucket_of(hub, s->conn_id);
    s->hnext = hub->buckets[b];
    hub->buckets[b] = s;
    s->prev = NULL;
    s->next = hub->sessions;
    if (hub->sessions != NULL) {
        hub->sessions->prev = s;
    }
    hub->sessions = s;
    hub->n_sessions++;
}

static void unregister(struct gm_hub *hub, struct gm_session *s)
{
    struct gm_session **pp = &hub->buckets[bucket_of(hub, s->conn_id)];

    while (*pp != NULL && *pp != s) {
        pp = &(*pp)->hnext;
    }
    if (*pp == s) {
        *pp = s->hnext;
    }
    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else if (hub->sessions == s) {
        hub->sessions = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    }
    s->next = NULL;
    s->prev = NULL;
    hub->n_sessions--;
}

void gm_session_want_flush(struct gm_session *s)
{
    struct gm_hub *hub = s->hub;

    if (s->in_flush || s->state == GM_SS_CLOSED) {
        return;
    }
    s->in_flush = true;
    s->flush_next = hub->flush_list;
    hub->flush_list = s;
}

void gm_hub_flush(struct gm_hub *hub)
{
    struct gm_session *s;

    while ((s = hub->flush_list) != NULL) {
        hub->flush_list = s->flush_next;
        s->flush_next = NULL;
        s->in_flush = false;
        gm_session_flush(s);
    }
}

static void reap_later(struct gm_session *s)
{
    struct gm_hub *hub = s->hub;

    s->dead_next = hub->dead;
    hub->dead = s;
    event_active(hub->reap_ev, EV_TIMEOUT, 0);
}

void gm_hub_reap(struct gm_hub *hub)
{
    struct gm_session *s;
    struct gm_session **pp;

    /* A dead session may still sit on the flush list. */
    pp = &hub->flush_list;
    while (*pp != NULL) {
        if ((*pp)->state == GM_SS_CLOSED) {
            (*pp)->in_flush = false;
            *pp = (*pp)->flush_next;
        } else {
            pp = &(*pp)->flush_next;
        }
    }
    while ((s = hub->dead) != NULL) {
        hub->dead = s->dead_next;
        gm_session_free(s);
    }
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gm_hub_reap(arg);
}

void gm_hub_stop_reading(struct gm_hub *hub)
{
    struct gm_session *s;

    for (s = hub->sessions; s != NULL; s = s->next) {
        event_del(s->read_ev);
    }
}

void gm_hub_close_all(struct gm_hub *hub)
{
    struct gm_session *s;

    hub->closing_all = true;
    while ((s = hub->sessions) != NULL) {
        gm_session_flush(s);
        gm_session_close(s, false);
    }
    gm_hub_reap(hub);
}

void gm_hub_wake(struct gm_hub *hub, const struct store_buf *funcs,
                 size_t *budget, size_t n)
{
    struct gm_session *s;
    struct gm_session *next;
    size_t i;

    /* gm_session_wake() takes a session off the list: keep `next`. */
    for (s = hub->sleepers; s != NULL; s = next) {
        next = s->sleep_next;
        if (funcs == NULL) {
            gm_session_wake(s);
            continue;
        }
        for (i = 0; i < n; i++) {
            if ((budget == NULL || budget[i] > 0) &&
                gm_session_can_do(s, funcs[i].base, funcs[i].len)) {
                gm_session_wake(s);
                if (budget != NULL) {
                    budget[i]--;
                }
                break;
            }
        }
    }
}

/* ---------------------------------------------------------------------
 * State, sleep and wake-up.
 */

/* Requests that read queue state wait while a batch is in flight: its
 * early replies (JOB_ASSIGN, forwarded WORK_STATUS) may already be out,
 * and a reader must not see a state older than what it was told (a
 * PRE_SLEEP would get a NOOP for a job just handed to another worker). */
bool gm_frame_reads_state(const struct gm_frame *f)
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

/* True if the admin line starts with `word` (any case) and a blank or
 * its end follows. */
static bool admin_word(const struct gm_frame *f, const char *word)
{
    size_t n = strlen(word);
    const char *l = f->line;

    while (*l == ' ' || *l == '\t') {
        l++;
    }
    return strncasecmp(l, word, n) == 0 &&
           (l[n] == '\0' || l[n] == ' ' || l[n] == '\t');
}

bool gm_frame_is_linear_read(const struct gm_frame *f)
{
    if (f->kind == GM_FRAME_ADMIN) {
        /* The admin lines that show jobs and queues; the others (version,
         * cluster, ...) answer from this node at once, even without a
         * leader. */
        return admin_word(f, "status") || admin_word(f, "prioritystatus") ||
               admin_word(f, "workers") || admin_word(f, "show");
    }
    return gm_frame_reads_state(f) && f->packet.type != GM_PRE_SLEEP;
}

/* Every state change goes through here: the server counts the sessions
 * holding a read of queue state, which the next batch waits for
 * (readers_waiting) and which are resumed once no batch is written. */
void gm__set_state(struct gm_session *s, enum gm_session_state st)
{
    if (s->state == GM_SS_WAIT_COMMIT && s->held_reads) {
        s->hub->n_wait_readers--;
        s->held_reads = false;
        s->read_round = 0;
    }
    if (st == GM_SS_WAIT_COMMIT) {
        s->held_reads = gm_frame_reads_state(&s->held);
        if (s->held_reads) {
            s->hub->n_wait_readers++;
            if (gm_frame_is_linear_read(&s->held)) {
                s->read_round = gr_pipeline_read_begin(s->pipe);
            }
        }
    }
    s->state = st;
}

/* Sleep flags; the server lists the sessions a wake-up may NOOP (asleep,
 * not woken yet), so that it need not walk every connection. */
void gm__set_sleep(struct gm_session *s, bool sleeping, bool noop_sent)
{
    struct gm_hub *hub = s->hub;
    bool was = s->sleeping && !s->noop_sent;
    bool now = sleeping && !noop_sent;

    s->sleeping = sleeping;
    s->noop_sent = noop_sent;
    if (was == now) {
        return;
    }
    if (now) {
        s->sleep_prev = NULL;
        s->sleep_next = hub->sleepers;
        if (hub->sleepers != NULL) {
            hub->sleepers->sleep_prev = s;
        }
        hub->sleepers = s;
        return;
    }
    if (s->sleep_prev != NULL) {
        s->sleep_prev->sleep_next = s->sleep_next;
    } else {
        hub->sleepers = s->sleep_next;
    }
    if (s->sleep_next != NULL) {
        s->sleep_next->sleep_prev = s->sleep_prev;
    }
    s->sleep_next = s->sleep_prev = NULL;
}

void gm_session_wake(struct gm_session *s)
{
    static const struct store_buf none = {NULL, 0};

    if (!s->sleeping || s->noop_sent || s->state == GM_SS_CLOSED ||
        s->state == GM_SS_CLOSING) {
        return;
    }
    gm__set_sleep(s, true, true);
    if (gm_packet_write(s->out, GM_NOOP, &none, 0) != 0) {
        gm_session_close(s, false);
        return;
    }
    gm_session_want_flush(s);
}

/* ---------------------------------------------------------------------
 * Output and back-pressure.
 */

size_t gm_session_out_backlog(const struct gm_session *s)
{
    return evbuffer_get_length(s->out) + s->local_len;
}

/* True while the session may read and parse requests at all. */
bool gm_session_is_open(const struct gm_session *s)
{
    return s->state == GM_SS_READ || s->state == GM_SS_PARSE ||
           s->state == GM_SS_WAIT_COMMIT;
}

void gm__pause_reading(struct gm_session *s)
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
 * here: this runs inside gm_session_flush(), whose callers (gm_hub_flush,
 * on_write) do not expect the session to handle requests. */
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

/* Too much waits for this connection: replies it has not read, or
 * requests of its still waiting for the disk (by count or by bytes: a
 * worker streaming large WORK_DATA must not queue gigabytes of them). */
bool gm__over_marks(const struct gm_session *s)
{
    return gm_session_out_backlog(s) > s->out_high ||
           s->n_pending >= GM_SESSION_MAX_PENDING ||
           s->pending_bytes > GM_SESSION_PENDING_BYTES;
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
    for (w = c->hub->sessions; w != NULL; w = w->next) {
        if (w->blocked_on == c->conn_id) {
            w->blocked_on = 0;
            gm__check_backlog(w);
        }
    }
}

void gm_session_block_on(struct gm_session *w, struct gm_session *c)
{
    if (w == c || !gm_session_is_open(w) || w->blocked_on != 0) {
        return;
    }
    w->blocked_on = c->conn_id;
    c->n_blocked++;
    gm__pause_reading(w);
}

/* Pauses above the high mark, resumes below the low one. */
void gm__check_backlog(struct gm_session *s)
{
    size_t backlog;

    if (!gm_session_is_open(s)) {
        return;
    }
    backlog = gm_session_out_backlog(s);
    if (s->n_blocked > 0 && backlog < s->out_low) {
        release_blocked(s);
    }
    if (!s->out_paused && gm__over_marks(s)) {
        gm__pause_reading(s);
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
    gm__check_backlog(s);
}

/* ---------------------------------------------------------------------
 * Proposals and replies.
 */

void gm_session_propose(struct gm_session *s, struct gr_proposal *p)
{
    /* WORK_* is answered only when refused; a GRAB that named its job was
     * answered already. */
    p->may_reply = p->cmd.type != STORE_CMD_WORK &&
                   !(p->cmd.type == STORE_CMD_GRAB && p->cmd.u.grab.job != 0);
    s->n_may_reply += p->may_reply;
    s->n_pending++;
    s->pending_bytes += p->body_len;
    propose(s->hub, s->alone, s->pipe, p);
}

void gm_session_answered(struct gm_session *s, struct gr_proposal *p)
{
    if (p->may_reply) {
        p->may_reply = false;
        s->n_may_reply--;
    }
}

/* Where an immediate reply goes: straight out when nothing is in flight,
 * else into a local proposal that the batch sends after the replies it
 * must follow. NULL when out of memory (the reply is dropped and the
 * connection closed). */
static struct evbuffer *reply_buf(struct gm_session *s)
{
    struct gr_proposal *p;

    if (s->n_pending == 0) {
        gm_session_want_flush(s);
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

void gm_reply(struct gm_session *s, uint32_t type, const struct store_buf *args,
              size_t n)
{
    struct evbuffer *out = reply_buf(s);

    if (out == NULL || gm_packet_write(out, type, args, n) != 0) {
        gm_session_close(s, false);
        return;
    }
    count_local(s, out);
}

void gm_reply_error(struct gm_session *s, const char *code, const char *text)
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
    struct gm_hub *hub = s->hub;
    struct store_conn_ref ref = gm_conn_ref(hub, s->conn_id);
    struct gr_proposal *p;

    if (s->grabbed) {
        p = gr_proposal_new();
        if (p != NULL) {
            p->cmd.type = STORE_CMD_RELEASE;
            p->cmd.u.release.worker = ref;
            p->cmd.u.release.max_retries = hub->cfg->job_retries;
            p->retry = true;
            gm_propose(hub, p);
        }
    }
    if (s->submitted_fg) {
        p = gr_proposal_new();
        if (p != NULL) {
            p->cmd.type = STORE_CMD_CLIENT_GONE;
            p->cmd.u.client_gone = ref;
            p->retry = true;
            gm_propose(hub, p);
        }
    }
}

void gm_session_close(struct gm_session *s, bool flush)
{
    if (s->state == GM_SS_CLOSED) {
        return;
    }
    if (flush && evbuffer_get_length(s->out) > 0) {
        gm__set_state(s, GM_SS_CLOSING);
        event_del(s->read_ev);
        gm_session_flush(s);
        return;
    }
    release_blocked(s);
    gm__set_sleep(s, false, false);
    gm__set_state(s, GM_SS_CLOSED);
    event_del(s->read_ev);
    event_del(s->write_ev);
    event_del(s->timeout_ev);
    event_del(s->resume_ev);
    close(s->fd);
    s->fd = -1;
    unregister(s->hub, s);
    /* At shutdown the next start's NODE_GONE requeues what this process's
     * workers held, and foreground jobs stay for clients to come back to
     * (as after a crash): no goodbyes then. */
    if (!s->hub->closing_all) {
        propose_gone(s);
    }
    reap_later(s);
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
    gr_holds_free(&s->holds);
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
 * A worker's functions and the job it runs.
 */

struct gm_func *gm_session_func(const struct gm_session *s, const uint8_t *name,
                                size_t len, struct gm_func ***link)
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

bool gm_session_can_do(const struct gm_session *s, const uint8_t *name,
                       size_t len)
{
    return gm_session_func(s, name, len, NULL) != NULL;
}

void gm_session_assigned(struct gm_session *s, const uint8_t *name, size_t len)
{
    struct gm_func **pp = NULL;
    struct gm_func *f;

    if (!s->hub->cfg->round_robin) {
        return;
    }
    f = gm_session_func(s, name, len, &pp);
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

void gm_session_job_assigned(struct gm_session *s, const uint8_t *function,
                             size_t function_len, const uint8_t *handle,
                             size_t handle_len)
{
    struct gm_func *f = gm_session_func(s, function, function_len, NULL);
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

/* s's function names, in its order, as an array the caller frees (NULL
 * when out of memory or s has none); they point into s->funcs. */
struct store_buf *gm_session_func_names(const struct gm_session *s)
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
