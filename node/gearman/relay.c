/* SPDX-License-Identifier: BSD-3-Clause
 * node/gearman/relay.c - relaying a worker's WORK_* to the job's client
 * as it is read (relay.h; the rule is node/alone/hold.c's).
 *
 * Order. The client's JOB_CREATED for the job leaves only once the SUBMIT
 * is durable; a WORK_* for a job ahead read before that waits in the
 * SUBMIT's `after` buffer and leaves right behind the JOB_CREATED
 * (answer.c). For a committed job the relay needs the client to have
 * nothing unanswered (so its JOB_CREATED, maybe for a submission that
 * joined the job, has left); else the WORK_* goes with its batch. A
 * client a relay reached holds its reads of queue state (GET_STATUS,
 * admin) until the WORK_* is answered, so it never sees its job running
 * after its result.
 *
 * Not here: which jobs are held and when a relay is safe
 * (node/alone/hold.c).
 */
#include "node/gearman/relay.h"

#include <event2/buffer.h>

#include "node/alone/alone.h"
#include "node/pipeline/proposal.h"

/* Where p's relay to h's client goes: the client's output, or the
 * SUBMIT's `after` buffer while its JOB_CREATED has not left. NULL when
 * it cannot be relayed. */
static struct evbuffer *relay_out(struct gm_session *w, struct gr_held *h,
                                  const struct gr_proposal *p,
                                  struct gm_session **client)
{
    const struct store_work *wk = &p->cmd.u.work;
    struct gm_session *c;

    if (!gr_alone_may_relay(w->alone, h, wk->data.len)) {
        return NULL;
    }
    c = gm_session_find(w->hub, h->client);
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

void gm_relay_work(struct gm_session *w, struct gr_proposal *p)
{
    const struct store_work *wk = &p->cmd.u.work;
    struct gm_session *c = NULL;
    struct evbuffer *out;
    struct gr_held *h;

    h = gr_holds_find(&w->holds, wk->handle.base, wk->handle.len);
    if (h == NULL) {
        return;
    }
    out = relay_out(w, h, p, &c);
    if (out == NULL || gm_forward_write(out, c->exceptions, wk) != 0) {
        h->relaying = false;
    } else {
        p->relayed_to = c->conn_id;
        c->n_relayed++;
        w->alone->n_relays++;
        if (out == c->out) {
            gm_session_want_flush(c);
            if (gm_session_out_backlog(c) > c->out_high) {
                gm_session_block_on(w, c); /* until the client reads */
            }
        }
    }
    if (wk->kind == STORE_WORK_COMPLETE || wk->kind == STORE_WORK_FAIL ||
        wk->kind == STORE_WORK_EXCEPTION) {
        gr_holds_end(&w->holds, h);
    }
}

void gm_relay_submit_done(struct gm_hub *hub, struct gr_proposal *submit,
                          bool created)
{
    struct gm_session *w = gm_session_find(hub, submit->handed_to);

    if (w != NULL) {
        gr_holds_submit_done(&w->holds, submit, created);
    }
}

void gm_relay_work_done(struct gm_hub *hub, const struct gr_proposal *p)
{
    struct gm_session *c;

    if (p->relayed_to == 0) {
        return;
    }
    c = gm_session_find(hub, p->relayed_to);
    if (c != NULL && c->n_relayed > 0) {
        c->n_relayed--;
    }
}
