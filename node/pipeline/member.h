/* SPDX-License-Identifier: BSD-3-Clause
 * node/pipeline/member.h - a cluster member's batches: each is one Raft
 * turn (node/cluster/turn.h), and the node's own proposals wait in a
 * pending list from their batch until their entries apply.
 *
 * Why a pending list: on a member a proposal's entry applies a turn or
 * more after its batch - after the leader (maybe another node) appended
 * it and a majority stored it - and maybe after a change of leader that
 * lost it. So each proposal keeps its encoded command and what was done
 * with it: proposed in this term (leading), or forwarded to this leader
 * at this time (following). A turn proposes or forwards what is not yet
 * proposed to or at the current leader, and forwards again what waits
 * longer than the resend time; apply drops every copy after the first
 * (storage/replays.c), and each command carries the lowest
 * sequence still pending, so the replay table stays small.
 *
 * Order: the node's proposals are proposed or forwarded in the order they
 * were made, and a leader proposes a forwarded payload's commands in
 * order, stopping at the first it refuses. A payload lost on the way
 * while a later one gets through would still let a later command commit
 * first; apply then leaves it undone and says so (OVERTAKEN,
 * storage/replays.c), and the turn offers every pending proposal
 * up to it again, oldest first. So they apply in the order they were
 * made.
 * A local reply (a proposal that stores nothing) leaves once every
 * proposal before it has applied, so a connection's replies keep the
 * order of its requests.
 *
 * A turn's batch then carries the entries applied in it: the node's
 * proposals and stand-ins for other nodes' entries, in log order, with
 * their effects; the Gearman side answers them as it answers a lone
 * node's batch.
 *
 * Not here: the turn itself (node/cluster/turn.c), the threads
 * (committer.c).
 */
#ifndef GEARRAFT_PIPELINE_MEMBER_H
#define GEARRAFT_PIPELINE_MEMBER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/cluster/host.h"
#include "node/cluster/turn.h"
#include "node/pipeline/batch.h"

struct event;

struct gr_member {
    uint64_t node_id;
    uint64_t incarnation;
    uint64_t resend_ms; /* forward again what waits longer than this */
    /* The pending list, oldest first: the committer's while a batch is
     * written, the loop's between batches. */
    struct gr_proposal *pend_head;
    struct gr_proposal *pend_tail;
    size_t n_pending;
    /* Payloads the committer hands to the loop to send at once. */
    pthread_mutex_t out_lock;
    bool lock_init;
    struct gr_frame *out_head;
    struct gr_frame **out_end;
    struct event *send_ev; /* the loop's: drains them */
    /* Called on the committer thread when a turn's applied entries may be
     * answered before its commit (gr_member_set_early); NULL: they are
     * answered when the turn returns. */
    void (*early_fn)(void *arg);
    void *early_arg;
    /* Statistics. */
    uint64_t n_forwarded; /* commands forwarded to a leader */
    uint64_t n_resent;    /* ... of them again */
    uint64_t n_out_of_order; /* applied ahead of an earlier one: again */
};

/* Sets m up. Errors: GR_ENOMEM. */
int gr_member_init(struct gr_member *m, uint64_t node_id, uint64_t incarnation,
                   uint64_t resend_ms);
/* The loop's event that sends what gr_member_take_out returns. */
void gr_member_set_send_event(struct gr_member *m, struct event *send_ev);
/* Early answers: from now on a turn that applied committed entries sets
 * b->props and b->n_props to them and calls fn(arg) before its write
 * commits, so that the loop may send their effects while it commits and
 * syncs (the entries are on a majority's disks; docs/DESIGN.md, "The
 * cluster"). The turn touches the list no more after that, and a turn
 * that fails after it stops the process (its answers cannot be taken
 * back). fn NULL turns it off. Call it with no turn running. */
void gr_member_set_early(struct gr_member *m, void (*fn)(void *arg),
                         void *arg);
/* Frees the pending proposals and unsent payloads. No turn may run. */
void gr_member_close(struct gr_member *m);

/* Committer thread: runs batch b as a Raft turn of h (b->props: the
 * proposals new since the last turn, which join the pending list; on
 * return b->props holds the entries applied, b->n_props how many of them
 * are this node's, b->out_after and b->status are set). Returns 0 or a
 * STORE_E* code; on failure nothing was applied, every proposal is
 * pending again, and raft/ started over from the disk - unless the
 * turn's entries had been published early (gr_member_set_early): then
 * a failure stops the process. */
int gr_member_turn(struct gr_member *m, struct gr_host *h, struct gr_batch *b);

/* The same turn on a clock the caller gives: mono_ms for raft/'s timers,
 * wall_ms for the leader's stamp on what it proposes. gr_member_turn
 * passes the process's clocks; tests/simhost passes virtual ones, so a
 * seed replays the same turns. */
int gr_member_turn_at(struct gr_member *m, struct gr_host *h,
                      struct gr_batch *b, uint64_t mono_ms, uint64_t wall_ms);

/* Loop thread, no turn running: frees every pending proposal (their
 * connections are gone) and returns how many there were. */
size_t gr_member_drop_pending(struct gr_member *m);

/* Loop thread: the payloads to send now (caller frees them). */
struct gr_frame *gr_member_take_out(struct gr_member *m);

#endif /* GEARRAFT_PIPELINE_MEMBER_H */
