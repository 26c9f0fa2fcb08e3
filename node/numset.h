/* SPDX-License-Identifier: BSD-3-Clause
 * node/numset.h - a set of non-zero 64-bit numbers (job numbers), open
 * addressing with linear probing, for the loop's "handed out, GRAB not yet
 * committed" jobs: one lookup per ready-queue entry a pick passes.
 *
 * Not here: what the numbers mean (node/alone/alone.h).
 */
#ifndef GEARRAFT_NODE_NUMSET_H
#define GEARRAFT_NODE_NUMSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gr_numset {
    uint64_t *slots; /* 0 = empty; a power of two of them */
    size_t cap;
    size_t n;
};

/* Adds num (not 0). Returns 0, or GR_ENOMEM (the set is unchanged). */
int gr_numset_add(struct gr_numset *set, uint64_t num);
/* Removes num if present. */
void gr_numset_del(struct gr_numset *set, uint64_t num);
bool gr_numset_has(const struct gr_numset *set, uint64_t num);
void gr_numset_free(struct gr_numset *set);

#endif /* GEARRAFT_NODE_NUMSET_H */
