/* SPDX-License-Identifier: BSD-3-Clause
 * node/pipeline/proposal.c - allocating and freeing a proposal.
 *
 * Not here: what its fields mean (proposal.h).
 */
#include "node/pipeline/proposal.h"

#include <event2/buffer.h>

#include "node/gr.h"

struct gr_proposal *gr_proposal_new(void)
{
    return gr_calloc(1, sizeof(struct gr_proposal));
}

void gr_proposal_free(struct gr_proposal *p)
{
    if (p == NULL) {
        return;
    }
    gr_free(p->body);
    gr_free(p->owned);
    if (p->local != NULL) {
        evbuffer_free(p->local);
    }
    if (p->after != NULL) {
        evbuffer_free(p->after);
    }
    store_free(p->wire);
    store_cmd_free(p->decoded);
    gr_free(p);
}
