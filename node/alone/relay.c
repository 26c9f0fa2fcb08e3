/* SPDX-License-Identifier: BSD-3-Clause
 * node/alone/relay.c - a worker's WORK_* for a job handed out ahead, sent on to
 * the job's client when it is read (relay.h says why).
 *
 * The rule. Worker w's WORK_* for job H goes to H's client c at once when
 * apply, running it later, will surely forward it there:
 *   - H was handed to w at GRAB time, with c its one waiting client: as
 *     a job ahead of its commit (ahead.c) for c's foreground SUBMIT, or
 *     as a committed job that lists c alone; and w has not ended it,
 *     timed out on it or given its jobs back (w's held list). w's GRAB
 *     naming H and this WORK_* follow H's SUBMIT in the log, so apply
 *     assigns H to w first.
 *   - Nothing queued may cancel or requeue H meanwhile: no blind proposal
 *     (srv->n_blind) and H not among the jobs dropped by batches applied
 *     and not yet committed (srv->applied_out).
 *   - Every earlier WORK_* of w for H was relayed too, so they reach c in
 *     order; once one goes the ordinary way, all later ones do.
 *   - The payload is small (large ones leave from the batch without a
 *     copy).
 * Clients that join H later (a SUBMIT of the same unique key) get the
 * WORK_* from the batch as before; apply's FORWARD skips only c
 * (p->relayed_to).
 *
 * Order. c's JOB_CREATED for H leaves only once the SUBMIT is durable; a
 * WORK_* for a job ahead read before that waits in the SUBMIT's `after`
 * buffer and leaves right behind the JOB_CREATED (answer.c). For a
 * committed job the relay needs c to have nothing unanswered (so its
 * JOB_CREATED, maybe for a submission that joined H, has left); else
 * the WORK_* goes with its batch. If that batch fails, c gets an
 * error instead and `after` is dropped with the SUBMIT; w is then closed
 * (ahead.c, gr_ahead_failed). A client a relay reached holds its reads of
 * queue state (GET_STATUS, admin) until the WORK_* is answered, so it
 * never sees its job running after its result.
 */
#include "node/alone/relay.h"

#include <string.h>

#include <event2/buffer.h>

#include "node/gearman/answer.h"
#include "node/gearman/session.h"
#include "node/loop.h"

static struct gr_held *held_find(struct gm_session *w, const uint8_t *handle,
                                 size_t len)
{
    size_t i;

    for (i = 0; i < w->n_held; i++) {
        if (w->held_jobs[i].len == len &&
            memcmp(w->held_jobs[i].handle, handle, len) == 0) {
            return &w->held_jobs[i];
        }
    }
    return NULL;
}

static void held_remove(struct gm_session *w, struct gr_held *h)
{
    *h = w->held_jobs[--w->n_held];
}

void gr_relay_handed(struct gm_session *w, uint64_t job, const uint8_t *handle,
                     size_t len, uint64_t client, struct gr_proposal *submit)
{
    struct gr_held *h;

    if (len == 0 || len > GR_HELD_HANDLE_MAX || w->n_held == GR_HELD_MAX ||
        (submit != NULL && submit->handed_to != 0) ||
        held_find(w, handle, len) != NULL) {
        return;
    }
    if (w->held_jobs == NULL) {
        w->held_jobs = gr_calloc(GR_HELD_MAX, sizeof(*w->held_jobs));
        if (w->held_jobs == NULL) {
            return; /* its WORK_* go the ordinary way */
        }
    }
    h = &w->held_jobs[w->n_held++];
    memcpy(h->handle, handle, len);
    h->len = len;
    h->job = job;
    h->client = client;
    h->submit = submit;
    h->created = false;
    h->relaying = true;
    if (submit != NULL) {
        submit->handed_to = w->conn_id;
    }
}

/* Where p's relay to h's client goes: the client's output, or the
 * SUBMIT's `after` buffer while its JOB_CREATED has not left. NULL when
 * it cannot be relayed. */
static struct evbuffer *relay_out(struct gm_session *w, struct gr_held *h,
                                  const struct gr_proposal *p,
                                  struct gm_session **client)
{
    struct gr_server *srv = w->srv;
    const struct store_work *wk = &p->cmd.u.work;
    struct gm_session *c;

    if (!h->relaying || srv->n_blind > 0 ||
        gr_numset_has(&srv->applied_out, h->job) ||
        wk->data.len >= STORE_EFFECT_OWN_BLOCK) {
        return NULL;
    }
    c = gr_session_find(srv, h->client);
    if (c == NULL || c->state == GM_SS_CLOSED || c->state == GM_SS_CLOSING) {
        return NULL;
    }
    *client = c;
    if (h->submit != NULL) {
        if (h->submit->after == NULL) {
            h->submit->after = evbuffer_new();
        }
        return h->submit->after;
    }
    /* A committed job's client has its JOB_CREATED for sure once nothing
     * of its own waits for an answer. */
    return h->created || c->n_pending == 0 ? c->out : NULL;
}

void gr_relay_work(struct gm_session *w, struct gr_proposal *p)
{
    const struct store_work *wk = &p->cmd.u.work;
    struct gm_session *c = NULL;
    struct evbuffer *out;
    struct gr_held *h;

    h = held_find(w, wk->handle.base, wk->handle.len);
    if (h == NULL) {
        return;
    }
    out = relay_out(w, h, p, &c);
    if (out == NULL || gr_answer_relay(out, c->exceptions, wk) != 0) {
        h->relaying = false;
    } else {
        p->relayed_to = c->conn_id;
        c->n_relayed++;
        w->srv->n_relays++;
        if (out == c->out) {
            gr_session_want_flush(w->srv, c);
            if (gm_session_out_backlog(c) > c->out_high) {
                gm_session_block_on(w, c); /* until the client reads */
            }
        }
    }
    if (wk->kind == STORE_WORK_COMPLETE || wk->kind == STORE_WORK_FAIL ||
        wk->kind == STORE_WORK_EXCEPTION) {
        held_remove(w, h);
    }
}

void gr_relay_drop(struct gm_session *w, const uint8_t *handle, size_t len)
{
    struct gr_held *h = held_find(w, handle, len);

    if (h != NULL) {
        held_remove(w, h);
    }
}

void gr_relay_clear(struct gm_session *w)
{
    w->n_held = 0;
}

void gr_relay_submit_done(struct gr_server *srv, struct gr_proposal *submit,
                          bool created)
{
    struct gm_session *w = gr_session_find(srv, submit->handed_to);
    size_t i;

    if (w == NULL) {
        return;
    }
    for (i = 0; i < w->n_held; i++) {
        struct gr_held *h = &w->held_jobs[i];

        if (h->submit != submit) {
            continue;
        }
        if (!created) {
            held_remove(w, h); /* no job: nothing of it to relay */
            return;
        }
        h->submit = NULL;
        h->created = true;
    }
}

void gr_relay_work_done(struct gr_server *srv, const struct gr_proposal *p)
{
    struct gm_session *c;

    if (p->relayed_to == 0) {
        return;
    }
    c = gr_session_find(srv, p->relayed_to);
    if (c != NULL && c->n_relayed > 0) {
        c->n_relayed--;
    }
}
