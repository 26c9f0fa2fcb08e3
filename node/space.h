/* SPDX-License-Identifier: BSD-3-Clause
 * node/space.h - the storage headroom: whether a new submission may be
 * accepted while the LMDB map and the disk keep --min-free-space free.
 *
 * Why: workers must still be able to take and finish the jobs already
 * queued when storage runs short, and those commands need room too. So
 * submissions are refused (QUEUE_ERROR) before the map or the disk is
 * full, the node stays up, and nothing acknowledged is lost.
 *
 * Not here: refusing a submission (node/gearman/request.c), a batch that
 * failed for want of space (node/loop.c).
 */
#ifndef GEARRAFT_NODE_SPACE_H
#define GEARRAFT_NODE_SPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

struct gr_space {
    struct store *store;
    uint64_t min_free;   /* --min-free-space */
    bool ok;             /* map and disk above it at the last look */
    uint64_t checked_ms; /* when that look was */
    uint64_t admitted;   /* submitted bytes since then */
    uint64_t recheck;    /* ... past which the next submission looks again */
    /* A cluster member: another member said it is short of space
     * (node/gearman/census.h). Its commands would fail there, and a
     * node that cannot apply a committed entry stops, so no member
     * accepts a submission meanwhile. */
    bool peers_low;
};

/* Sets sp up, taking the headroom as enough until the first look. */
void gr_space_init(struct gr_space *sp, struct store *store, uint64_t min_free);

/* True when a new submission of about `bytes` may be accepted (and no
 * other member is short of space). The
 * headroom is looked at every GR_SPACE_CHECK_MS, and sooner once
 * submissions of a quarter of it came in since the last look, so a fast
 * flood cannot fill the map past it before it is refused. */
bool gr_space_admit(struct gr_space *sp, size_t bytes);

/* Looks at the headroom now (force), or if the last look is
 * GR_SPACE_CHECK_MS old (after each batch). */
void gr_space_check(struct gr_space *sp, bool force);

/* A batch failed for want of space: refuse submissions until the next
 * look says otherwise. */
void gr_space_exhausted(struct gr_space *sp);

#define GR_SPACE_CHECK_MS 200

#endif /* GEARRAFT_NODE_SPACE_H */
