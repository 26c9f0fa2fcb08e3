/* SPDX-License-Identifier: BSD-3-Clause
 * node/histo.h - a latency histogram with fixed bounds, for the metrics
 * (node/ops/metrics.c): a count per bucket, the sum and the count.
 *
 * Why fixed bounds: every node and every scrape then shows the same
 * buckets, which Prometheus needs to add them up across nodes, and
 * adding a sample is a short scan with no allocation, cheap enough for
 * the committer thread.
 */
#ifndef GEARRAFT_HISTO_H
#define GEARRAFT_HISTO_H

#include <stddef.h>
#include <stdint.h>

/* Upper bounds in microseconds, from 50 us to 2 s; one more bucket holds
 * everything above the last. */
#define GR_HISTO_BOUNDS 15
extern const uint64_t gr_histo_bound_us[GR_HISTO_BOUNDS];

struct gr_histo {
    uint64_t bucket[GR_HISTO_BOUNDS + 1]; /* not cumulative */
    uint64_t n;
    uint64_t sum_us;
};

/* Counts one sample of us microseconds. */
void gr_histo_add(struct gr_histo *h, uint64_t us);
/* Adds every sample of from to into. */
void gr_histo_merge(struct gr_histo *into, const struct gr_histo *from);

#endif /* GEARRAFT_HISTO_H */
