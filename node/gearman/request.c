/* SPDX-License-Identifier: BSD-3-Clause
 * node/gearman/request.c - the binary requests: what each packet a
 * client or worker sends does (docs/protocol.md, "Packets").
 *
 * A request that changes queue state becomes a proposal and is answered
 * from the effects of its commit (answer.c); one that fails validation
 * is answered with an ERROR in order (gm_reply_error). The rest are
 * answered at once: ECHO, OPTION, GET_STATUS, PRE_SLEEP.
 *
 * Not here: when a request may run (session.c), admin lines (admin.c),
 * hand-outs at GRAB time (handout.c), relays (relay.c).
 */
#include "node/gearman/request.h"

#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "node/alone/ahead.h"
#include "node/gearman/funcs.h"
#include "node/gearman/handout.h"
#include "node/gearman/relay.h"
#include "node/pipeline/pipeline.h"

/* ---------------------------------------------------------------------
 * Worker functions.
 */

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
    return gm_known_add(s->hub, name->base, name->len);
}

static void propose_release(struct gm_session *s, const struct store_buf *name)
{
    struct gr_proposal *p;

    if (!s->grabbed) {
        return;
    }
    gr_holds_clear(&s->holds);
    p = gr_proposal_new();
    if (p == NULL) {
        gm_session_close(s, false);
        return;
    }
    p->cmd.type = STORE_CMD_RELEASE;
    p->cmd.u.release.worker = gm_conn_ref(s->hub, s->conn_id);
    p->cmd.u.release.max_retries = s->hub->cfg->job_retries;
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
    gm_propose(s->hub, p);
}

/* CANT_DO removes every registration of the function (gearmand). */
static void func_remove(struct gm_session *s, const struct store_buf *name)
{
    struct gm_func **link;
    struct gm_func *f;
    bool found = false;

    while ((f = gm_session_func(s, name->base, name->len, &link)) != NULL) {
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
 * Submissions, grabs, results.
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
    struct gm_hub *hub = s->hub;
    struct gr_proposal *p;
    struct store_submit *sub;
    struct store_buf unique = pkt->args[1];

    if (unique.len > STORE_UNIQUE_MAX) {
        gm_reply_error(s, "ARGUMENT_TOO_LARGE", "Unique value too large");
        return;
    }
    if (unique.len == STORE_UNIQUE_MAX) {
        unique.len--; /* gearmand keeps 63 bytes of a 64-byte unique */
    }
    if (pkt->args[0].len > STORE_FUNCTION_MAX) {
        gm_reply_error(s, "ARGUMENT_TOO_LARGE", "Function name too large");
        return;
    }
    if (!gr_space_admit(&hub->space, pkt->len)) {
        gm_reply_error(s, "QUEUE_ERROR",
                       hub->space.ok
                           ? "Job queue is full: a cluster member is out of "
                             "storage space"
                           : "Job queue is full: the server is out of storage "
                             "space");
        return;
    }
    p = gr_proposal_new();
    if (p == NULL) {
        gm_reply_error(s, "QUEUE_ERROR", "Job queue is full: out of memory");
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
    sub->client = gm_conn_ref(hub, s->conn_id);
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

static bool runnable_now(struct gm_session *s)
{
    struct store_txn *txn;
    struct store_buf *fv;
    bool any = true; /* on doubt, let the write path decide */

    if (s->n_funcs == 0) {
        return false;
    }
    fv = gm_session_func_names(s);
    if (fv == NULL) {
        return true;
    }
    if (store_txn_begin(s->hub->store, false, &txn) == 0) {
        if (store_has_runnable(txn, fv, s->n_funcs, gr_now_ms(), &any) != 0) {
            any = true;
        }
        store_txn_abort(txn);
    }
    gr_free(fv);
    return any;
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

    gm__set_sleep(s, false, false);
    /* Nothing to do for this worker and nothing queued or being written
     * that could change that: answer without a write. Not on a cluster
     * member: its applied state may lag a job already acknowledged on
     * another node, so its GRAB goes through the log like any. */
    if (!gr_pipeline_is_member(s->pipe) && !gm_may_hand_out(s) &&
        gr_pipeline_is_empty(s->pipe) && !runnable_now(s)) {
        gm_reply(s, GM_NO_JOB, &none, 0);
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
    p->cmd.u.grab.worker = gm_conn_ref(s->hub, s->conn_id);
    p->cmd.u.grab.functions = fv;
    p->cmd.u.grab.n_functions = i;
    gm_hand_out(s, type, &p->cmd.u.grab);
    if (p->cmd.u.grab.job == 0 && p->cmd.u.grab.min_job != 0 &&
        gr_ahead_complete(s->alone)) {
        /* Nothing for it, and the loop knows every job there is: no
         * batch needed. Each later one wakes it (node/alone/ahead.h). */
        gr_proposal_free(p);
        gm_reply(s, GM_NO_JOB, &none, 0);
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
    w->worker = gm_conn_ref(s->hub, s->conn_id);
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
    gm_relay_work(s, p);
    gm_session_propose(s, p);
}

static void handle_pre_sleep(struct gm_session *s)
{
    static const struct store_buf none = {NULL, 0};

    evtimer_del(s->timeout_ev);
    s->timeout_handle_len = 0;
    if (gm_sleep_now(s) ? gm_job_for(s)
                        : (runnable_now(s) || gm_ahead_for(s))) {
        gm__set_sleep(s, true, true);
        gm_reply(s, GM_NOOP, &none, 0);
        return;
    }
    gm__set_sleep(s, true, false);
}

/* ---------------------------------------------------------------------
 * Requests answered at once.
 */

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
    gm_reply(s, type, a, n);
}

static void handle_get_status(struct gm_session *s, struct gm_packet *pkt)
{
    struct store_job_status st;
    struct store_txn *txn;
    int rv;

    memset(&st, 0, sizeof(st));
    rv = store_txn_begin(s->hub->store, false, &txn);
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
        gm_reply(s, GM_OPTION_RES, &name, 1);
        return;
    }
    gm_reply_error(s, "UNKNOWN_OPTION",
                   "Server does not recognize given option");
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
void gm_request_handle(struct gm_session *s, struct gm_packet *pkt)
{
    static const struct store_buf none = {NULL, 0};
    const struct gm_cmd_info *info = gm_cmd_info(pkt->type);

    if (!pkt->is_request) {
        gm_reply_error(s, "INVALID_MAGIC", "Request magic expected");
        return;
    }
    if (info == NULL || info->role != GM_ROLE_REQUEST) {
        gm_reply_error(s, "INVALID_COMMAND", "Command not expected");
        return;
    }
    if (!pkt->args_ok) {
        /* gearmand waits forever for the missing NULs; we refuse. */
        gm_reply_error(s, "INVALID_PACKET", "Packet has too few arguments");
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
        gm_reply(s, GM_ECHO_RES, &pkt->args[0], 1);
        break;
    case GM_GET_STATUS:
    case GM_GET_STATUS_UNIQUE:
        handle_get_status(s, pkt);
        break;
    case GM_OPTION_REQ:
        handle_option(s, pkt);
        break;
    default:
        gm_reply(s, GM_NO_JOB, &none, 0); /* unreachable: table says request */
        break;
    }
}
