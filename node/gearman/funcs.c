/* SPDX-License-Identifier: BSD-3-Clause
 * node/gearman/funcs.c - the function names seen in CAN_DO (funcs.h).
 *
 * A short list: names are few, and each is looked up once per CAN_DO.
 *
 * Not here: a worker's own functions (conn.c).
 */
#include "node/gearman/funcs.h"

#include <string.h>

#include "node/gearman/conn.h"
#include "node/pipeline/proposal.h"

struct gm_known {
    struct gm_known *next;
    size_t len;
    uint8_t name[];
};

int gm_known_add(struct gm_hub *hub, const uint8_t *name, size_t len)
{
    struct gm_known *k;
    struct gr_proposal *p;

    for (k = hub->known; k != NULL; k = k->next) {
        if (k->len == len && memcmp(k->name, name, len) == 0) {
            return 0;
        }
    }
    k = gr_malloc(sizeof(*k) + len);
    p = gr_proposal_new();
    if (k == NULL || p == NULL || (p->owned = gr_malloc(len + 1)) == NULL) {
        gr_free(k);
        gr_proposal_free(p);
        return GR_ENOMEM;
    }
    k->len = len;
    if (len > 0) {
        memcpy(k->name, name, len);
        memcpy(p->owned, name, len);
    }
    k->next = hub->known;
    hub->known = k;
    /* gearmand creates a function on CAN_DO (status lists it at 0 0 N); so
     * do we, durably, once per name and process. Nobody waits for the
     * reply: the admin ref names no connection. */
    p->cmd.type = STORE_CMD_FUNC_CREATE;
    p->cmd.u.admin.admin = gm_conn_ref(hub, 0);
    p->cmd.u.admin.function.base = p->owned;
    p->cmd.u.admin.function.len = len;
    p->retry = true;
    gm_propose(hub, p);
    return 0;
}

void gm_known_remove(struct gm_hub *hub, const uint8_t *name, size_t len)
{
    struct gm_known **pp = &hub->known;

    while (*pp != NULL) {
        if ((*pp)->len == len && memcmp((*pp)->name, name, len) == 0) {
            struct gm_known *k = *pp;

            *pp = k->next;
            gr_free(k);
            return;
        }
        pp = &(*pp)->next;
    }
}

void gm_known_free(struct gm_hub *hub)
{
    struct gm_known *k;

    while ((k = hub->known) != NULL) {
        hub->known = k->next;
        gr_free(k);
    }
}
