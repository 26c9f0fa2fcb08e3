/* SPDX-License-Identifier: BSD-3-Clause
 * node/histo.c - see histo.h.
 */
#include "node/histo.h"

const uint64_t gr_histo_bound_us[GR_HISTO_BOUNDS] = {
    50,    100,    250,    500,    1000,    2500,    5000,   10000,
    25000, 50000, 100000, 250000, 500000, 1000000, 2000000,
};

void gr_histo_add(struct gr_histo *h, uint64_t us)
{
    size_t i = 0;

    while (i < GR_HISTO_BOUNDS && us > gr_histo_bound_us[i]) {
        i++;
    }
    h->bucket[i]++;
    h->n++;
    h->sum_us += us;
}

void gr_histo_merge(struct gr_histo *into, const struct gr_histo *from)
{
    size_t i;

    for (i = 0; i <= GR_HISTO_BOUNDS; i++) {
        into->bucket[i] += from->bucket[i];
    }
    into->n += from->n;
    into->sum_us += from->sum_us;
}
