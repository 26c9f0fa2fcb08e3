/* SPDX-License-Identifier: BSD-3-Clause
 * node/pipeline/batch.h - one write batch: the proposals of one loop turn,
 * written as one LMDB transaction, and what came of it.
 *
 * Batches are numbered (gen) from 1 and answered in that order; batch g
 * lives in slot g % GR_BATCH_SLOTS of the pipeline. Up to that many are
 * between their start and their answer at once: one on the committer
 * thread, one committed whose meta page is not yet synced, and the ones
 * being answered - the loop answers batch k while the committer writes
 * k+1. What others keep per batch beside it (the answerer's marks, the
 * fast path's notes) they keep per slot, so that nothing is allocated per
 * batch.
 *
 * Not here: starting, writing and collecting batches (pipeline.h,
 * committer.h).
 */
#ifndef GEARRAFT_PIPELINE_BATCH_H
#define GEARRAFT_PIPELINE_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/cluster/turn.h"
#include "node/pipeline/proposal.h"
#include "storage/store.h"

#define GR_BATCH_SLOTS 4

struct gr_batch {
    uint64_t gen;              /* its number, from 1 */
    struct gr_proposal *props; /* in log order; NULL once answered */
    size_t n_props;
    uint64_t index;          /* the log index of its first command */
    struct store_effects fx; /* what applying it yielded; each proposal's
                              * fx_begin..fx_end index into it */
    int rv;                  /* once done: 0 or the STORE_E* code */
    bool done;               /* its commit returned (or failed) */
    bool durable;            /* nothing to wait for: synced, or it
                              * stores nothing of its own */

    /* A cluster member's batch is a Raft turn (node/pipeline/member.c).
     * In: the proposals new this turn (props, until the turn replaces
     * them with the entries it applied: this node's proposals and
     * stand-ins for other nodes' entries, in log order) and what the
     * peers sent. Out: what to send once the turn is done, and raft/'s
     * state after it. */
    bool member;
    bool transfer; /* hand leadership to another voter (shutdown) */
    uint64_t read_ctx; /* start this read round (0: none) */
    struct gr_frame *inbox;
    struct gr_frame *out_after;
    struct gr_member_status {
        bool leader;
        uint64_t leader_id;
        uint64_t term;
        uint64_t commit;
        uint64_t applied;
        uint64_t next_wakeup_ms; /* monotonic; 0: none */
        bool more;               /* run another turn at once */
        struct gr_turn_read read; /* a read round that finished */
        bool declared_gone;       /* this incarnation was declared gone */
        /* The member table may have changed: a membership change or a
         * snapshot applied (the loop reads it again). */
        bool members_changed;
    } status;
    struct gr_raft_view view; /* raft/ after the batch (every batch) */
};

#endif /* GEARRAFT_PIPELINE_BATCH_H */
