/* SPDX-License-Identifier: BSD-3-Clause
 * node/alone/hold.c - a worker's held jobs, and when its WORK_* for one
 * may be relayed as read (hold.h says why).
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
 *     (n_blind) and H not among the jobs dropped by batches applied and
 *     not yet committed (applied_out).
 *   - Every earlier WORK_* of w for H was relayed too, so they reach c in
 *     order; once one goes the ordinary way, all later ones do.
 *   - The payload is small (large ones leave from the batch without a
 *     copy).
 * Clients that join H later (a SUBMIT of the same unique key) get the
 * WORK_* from the batch as before; apply's FORWARD skips only c
 * (p->relayed_to). A hold in w's list is the first condition;
 * gr_alone_may_relay checks the other three (h->relaying is the third),
 * and node/gearman/relay.c the client.
 *
 * Order. c's JOB_CREATED for H leaves only once the SUBMIT is durable; a
 * WORK_* for a job ahead read before that waits in the SUBMIT's `after`
 * buffer and leaves right behind the JOB_CREATED
 * (node/gearman/answer.c). For a
 * committed job the relay needs c to have nothing unanswered (so its
 * JOB_CREATED, maybe for a submission that joined H, has left); else
 * the WORK_* goes with its batch. If that batch fails, c gets an
 * error instead and `after` is dropped with the SUBMIT; w is then closed
 * (ahead.c, gr_ahead_void). A client a relay reached holds its reads of
 * queue state (GET_STATUS, admin) until the WORK_* is answered, so it
 * never sees its job running after its result.
 */
#include "node/alone/hold.h"

#include <string.h>

#include "node/alone/alone.h"
#include "node/gr.h"
#include "node/pipeline/proposal.h"

void gr_holds_free(struct gr_holds *hs)
{
    gr_free(hs->v);
    hs->v = NULL;
    hs->n = 0;
}

struct gr_held *gr_holds_find(struct gr_holds *hs, const uint8_t *handle,
                              size_t len)
{
    size_t i;

    for (i = 0; i < hs->n; i++) {
        if (hs->v[i].len == len && memcmp(hs->v[i].handle, handle, len) == 0) {
            return &hs->v[i];
        }
    }
    return NULL;
}

void gr_holds_end(struct gr_holds *hs, struct gr_held *h)
{
    *h = hs->v[--hs->n];
}

void gr_holds_add(struct gr_holds *hs, uint64_t worker, uint64_t job,
                  const uint8_t *handle, size_t len, uint64_t client,
                  struct gr_proposal *submit)
{
    struct gr_held *h;

    if (len == 0 || len > GR_HELD_HANDLE_MAX || hs->n == GR_HELD_MAX ||
        (submit != NULL && submit->handed_to != 0) ||
        gr_holds_find(hs, handle, len) != NULL) {
        return;
    }
    if (hs->v == NULL) {
        hs->v = gr_calloc(GR_HELD_MAX, sizeof(*hs->v));
        if (hs->v == NULL) {
            return; /* its WORK_* go the ordinary way */
        }
    }
    h = &hs->v[hs->n++];
    memcpy(h->handle, handle, len);
    h->len = len;
    h->job = job;
    h->client = client;
    h->submit = submit;
    h->created = false;
    h->relaying = true;
    if (submit != NULL) {
        submit->handed_to = worker;
    }
}

void gr_holds_drop(struct gr_holds *hs, const uint8_t *handle, size_t len)
{
    struct gr_held *h = gr_holds_find(hs, handle, len);

    if (h != NULL) {
        gr_holds_end(hs, h);
    }
}

void gr_holds_clear(struct gr_holds *hs)
{
    hs->n = 0;
}

void gr_holds_submit_done(struct gr_holds *hs, const struct gr_proposal *submit,
                          bool created)
{
    size_t i;

    for (i = 0; i < hs->n; i++) {
        struct gr_held *h = &hs->v[i];

        if (h->submit != submit) {
            continue;
        }
        if (!created) {
            gr_holds_end(hs, h); /* no job: nothing of it to relay */
            return;
        }
        h->submit = NULL;
        h->created = true;
    }
}

bool gr_alone_may_relay(const struct gr_alone *a, const struct gr_held *h,
                        size_t data_len)
{
    return h->relaying && a->n_blind == 0 &&
           !gr_numset_has(&a->applied_out, h->job) &&
           data_len < STORE_EFFECT_OWN_BLOCK;
}
