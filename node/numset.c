/* SPDX-License-Identifier: BSD-3-Clause
 * node/numset.c - the set of node/numset.h. Kept at most half full;
 * deletion shifts the following run back instead of leaving tombstones,
 * so lookups stay short however many adds and deletes pass.
 */
#include "node/numset.h"

#include "node/gr.h"

#define MIN_CAP 64

static size_t slot_of(uint64_t num, size_t cap)
{
    /* Fibonacci hashing: job numbers are consecutive log indexes. */
    return (size_t)((num * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (cap - 1);
}

static void place(uint64_t *slots, size_t cap, uint64_t num)
{
    size_t i = slot_of(num, cap);

    while (slots[i] != 0) {
        i = (i + 1) & (cap - 1);
    }
    slots[i] = num;
}

static int grow(struct gr_numset *set)
{
    size_t cap = set->cap == 0 ? MIN_CAP : set->cap * 2;
    uint64_t *slots = gr_calloc(cap, sizeof(*slots));
    size_t i;

    if (slots == NULL) {
        return GR_ENOMEM;
    }
    for (i = 0; i < set->cap; i++) {
        if (set->slots[i] != 0) {
            place(slots, cap, set->slots[i]);
        }
    }
    gr_free(set->slots);
    set->slots = slots;
    set->cap = cap;
    return 0;
}

int gr_numset_add(struct gr_numset *set, uint64_t num)
{
    GR_ASSERT(num != 0);
    if (gr_numset_has(set, num)) {
        return 0;
    }
    if ((set->n + 1) * 2 > set->cap && grow(set) != 0) {
        return GR_ENOMEM;
    }
    place(set->slots, set->cap, num);
    set->n++;
    return 0;
}

bool gr_numset_has(const struct gr_numset *set, uint64_t num)
{
    size_t i;

    if (set->n == 0 || num == 0) {
        return false;
    }
    for (i = slot_of(num, set->cap); set->slots[i] != 0;
         i = (i + 1) & (set->cap - 1)) {
        if (set->slots[i] == num) {
            return true;
        }
    }
    return false;
}

void gr_numset_del(struct gr_numset *set, uint64_t num)
{
    size_t mask = set->cap - 1;
    size_t i;
    size_t j;

    if (!gr_numset_has(set, num)) {
        return;
    }
    for (i = slot_of(num, set->cap); set->slots[i] != num; i = (i + 1) & mask) {
    }
    /* Backward shift: move each later entry of the run whose home slot
     * does not lie cyclically in (i, j] into the hole. */
    for (j = (i + 1) & mask; set->slots[j] != 0; j = (j + 1) & mask) {
        size_t home = slot_of(set->slots[j], set->cap);
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);

        if (!stays) {
            set->slots[i] = set->slots[j];
            i = j;
        }
    }
    set->slots[i] = 0;
    set->n--;
}

void gr_numset_free(struct gr_numset *set)
{
    gr_free(set->slots);
    set->slots = NULL;
    set->cap = 0;
    set->n = 0;
}
