/* SPDX-License-Identifier: BSD-3-Clause
 * node/cluster/fwdseen.h - the forwarded commands a leader appended in
 * its term, so that a copy its origin sends again is dropped instead of
 * appended a second time.
 *
 * Why: a follower forwards a proposal again when the leader has not
 * committed it within the resend time (node/pipeline/member.c). A large
 * payload takes longer than that to write and replicate, and every copy
 * appended is written and replicated in full (apply's replay check makes
 * the later copies change nothing, but only after they cost all that).
 * Within one term a leader never loses an entry it appended (a failed
 * write rebuilds raft/ as a follower: it leads again only in a later
 * term), so a copy of an origin's (node, incarnation, seq) that it
 * appended in the current term and has not applied yet is on its way to
 * commit. Once applied, copies go to the log again: apply may have found
 * the first overtaken (a later command of its node committed ahead of an
 * earlier one still missing), and then the copy its node sends after
 * learning so is the one that counts (storage/replays.c).
 *
 * A cache, not a record: a fixed table indexed by a hash of the origin,
 * where a newer command overwrites an older one. Forgetting only costs a
 * duplicate entry, which apply ignores.
 *
 * Not here: the resend policy (node/pipeline/member.c), apply's replay
 * check (storage/replays.c).
 */
#ifndef GEARRAFT_CLUSTER_FWDSEEN_H
#define GEARRAFT_CLUSTER_FWDSEEN_H

#include <stdbool.h>
#include <stdint.h>

#include "storage/store.h"

#define GR_FWDSEEN_SLOTS 1024 /* a power of two */

struct gr_fwdseen {
    struct {
        uint64_t node_id; /* 0: empty */
        uint64_t incarnation;
        uint64_t seq;
        uint64_t term;
        uint64_t index; /* where it was appended */
    } slot[GR_FWDSEEN_SLOTS];
};

/* True if o (seq not 0) was noted in term at an index above applied. */
bool gr_fwdseen_holds(const struct gr_fwdseen *s,
                      const struct store_origin *o, uint64_t term,
                      uint64_t applied);
/* Notes o as appended at index in term (no-op for seq 0). */
void gr_fwdseen_note(struct gr_fwdseen *s, const struct store_origin *o,
                     uint64_t term, uint64_t index);
/* Forgets everything (the log in memory was rebuilt from disk). */
void gr_fwdseen_clear(struct gr_fwdseen *s);

#endif /* GEARRAFT_CLUSTER_FWDSEEN_H */
