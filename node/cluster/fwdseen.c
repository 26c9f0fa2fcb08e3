/* SPDX-License-Identifier: BSD-3-Clause
 * node/cluster/fwdseen.c - see fwdseen.h. */
#include "node/cluster/fwdseen.h"

#include <string.h>

static size_t slot_of(const struct store_origin *o)
{
    uint64_t h = o->node_id ^ (o->incarnation * 0x9e3779b97f4a7c15ull) ^
                 (o->seq * 0xc2b2ae3d27d4eb4full);

    h ^= h >> 29;
    return (size_t)(h & (GR_FWDSEEN_SLOTS - 1));
}

bool gr_fwdseen_holds(const struct gr_fwdseen *s,
                      const struct store_origin *o, uint64_t term,
                      uint64_t applied)
{
    size_t i;

    if (o->seq == 0 || o->node_id == 0) {
        return false;
    }
    i = slot_of(o);
    return s->slot[i].node_id == o->node_id &&
           s->slot[i].incarnation == o->incarnation &&
           s->slot[i].seq == o->seq && s->slot[i].term == term &&
           s->slot[i].index > applied;
}

void gr_fwdseen_note(struct gr_fwdseen *s, const struct store_origin *o,
                     uint64_t term, uint64_t index)
{
    size_t i;

    if (o->seq == 0 || o->node_id == 0) {
        return;
    }
    i = slot_of(o);
    s->slot[i].node_id = o->node_id;
    s->slot[i].incarnation = o->incarnation;
    s->slot[i].seq = o->seq;
    s->slot[i].term = term;
    s->slot[i].index = index;
}

void gr_fwdseen_clear(struct gr_fwdseen *s)
{
    memset(s, 0, sizeof(*s));
}
