/* SPDX-License-Identifier: BSD-3-Clause
 * node/cluster/turn.h - one Raft turn of a cluster member: what the peers
 * sent goes to raft/, raft/'s ready batch is written into the store in
 * one transaction, and what it says is committed is applied.
 *
 * Why it is shaped this way: the struct raft belongs to whoever runs the
 * turn (the committer thread, or a test), so a turn takes everything it
 * needs as input and hands everything out through its struct: received
 * payloads in, payloads to send out (those that may leave before the
 * write through a callback, at once; the others after it), and every
 * applied entry through a callback, with its decoded command and the
 * range of its effects. Nothing here knows sockets or sessions.
 *
 * Payloads between members start with one byte saying what follows:
 *   GR_PEER_RAFT     a raft message (node/cluster/peer_codec.c);
 *   GR_PEER_FORWARD  commands a follower hands to the leader: a u32
 *                    big-endian length and the encoded command, again and
 *                    again. The leader stamps each with its clock and
 *                    proposes it; a follower drops them (the origin sends
 *                    them again to the leader it learns of).
 *   GR_PEER_READ, GR_PEER_READ_RESP  a follower's linearizable read: the
 *                    leader runs raft/'s ReadIndex round for it and
 *                    answers with the index to apply before reading
 *                    (ok 0: it lost leadership first; ask again). All
 *                    numbers big-endian.
 *   GR_PEER_ALIVE    a u64 term: the sender's loop says it is alive in
 *                    that term while its turn in flight runs long (a
 *                    write of tens of MiB); the next turn hands it to
 *                    raft/ (raft_peer_alive), which only restarts timers.
 *                    An older node drops it, and is no worse off than
 *                    before it existed.
 * Checklist: a new kind gets a new number; an old node drops kinds it
 * does not know (logged), so add a kind only with a way for the sender to
 * do without an answer.
 *
 * Not here: which local proposals to send or propose when (the pipeline),
 * the lone voter's batches (host.h).
 */
#ifndef GEARRAFT_CLUSTER_TURN_H
#define GEARRAFT_CLUSTER_TURN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/cluster/host.h"
#include "storage/store.h"

enum gr_peer_kind {
    GR_PEER_RAFT = 1,
    GR_PEER_FORWARD = 2,
    GR_PEER_READ = 3,      /* u64 ctx: a follower asks for a read index */
    GR_PEER_READ_RESP = 4, /* u64 ctx, u64 index, u8 ok: the answer */
    GR_PEER_CENSUS = 5,    /* a member's workers per function: the loop's
                            * (node/gearman/census.h), never a turn's */
    GR_PEER_ALIVE = 6,     /* u64 term: the sender is alive in that term,
                            * its turns held up by a long write (the
                            * loop's keep-alive; raft_peer_alive) */
};

/* Read indexes a leader owes to followers (GR_PEER_READ), matched to
 * raft/'s answers by raft_ctx. */
#define GR_TURN_READS_MAX 64

/* A payload to or from a peer; data follows the struct. */
struct gr_frame {
    struct gr_frame *next;
    uint64_t peer; /* to (outbound) or from (inbound) */
    size_t len;
    uint8_t data[];
};

/* A frame of len bytes (uninitialised), or NULL when out of memory.
 * Freed with gr_frame_free (one frame) or gr_frames_free (a list). */
struct gr_frame *gr_frame_new(uint64_t peer, size_t len);
void gr_frames_free(struct gr_frame *f);

/* Takes ownership of a list of frames to send now. */
typedef void (*gr_turn_send_fn)(void *arg, struct gr_frame *frames);
/* An entry was applied at index: cmd is its decoded command (NULL for a
 * no-op or configuration; the callee takes ownership: store_cmd_free),
 * its effects are fx[fx_begin, fx_end). Returns 0, or nonzero (out of
 * memory) to fail the turn's write. */
typedef int (*gr_turn_applied_fn)(void *arg, uint64_t index,
                                  struct store_cmd *cmd, size_t fx_begin,
                                  size_t fx_end);

/* A read this node started (gr_turn_read) has its index: reads may run
 * once the node applied `index` (ok), or leadership was lost first (!ok:
 * start another). */
struct gr_turn_read {
    uint64_t ctx;
    uint64_t index;
    bool ok;
    bool done;
};

struct gr_turn {
    /* In. */
    uint64_t mono_ms; /* monotonic clock */
    uint64_t wall_ms; /* the leader's stamp for what it proposes */
    struct gr_frame *inbox; /* received; the turn frees it */
    struct store_effects *fx;
    gr_turn_send_fn send_now; /* messages that may leave before the write */
    gr_turn_applied_fn applied;
    /* Optional: called once the turn applied committed entries, before
     * its transaction commits (not after a snapshot install). Whatever it
     * publishes of the applied entries must not be undone: a turn that
     * fails after it was called cannot take those entries back. */
    void (*applied_all)(void *arg);
    void *arg;
    /* Out. */
    struct gr_frame *out_after; /* to send once the turn returned */
    bool leader;
    uint64_t leader_id;
    uint64_t term;
    uint64_t commit;
    uint64_t applied_index;
    uint64_t next_wakeup_ms; /* run a turn by then */
    struct gr_turn_read read; /* this node's read, when it finished */
    bool more;               /* raft/ has more ready: run another turn */
    bool installed;          /* a received snapshot replaced the state */
    int store_rv;            /* the store's code when a write failed */
    size_t n_forwarded;      /* commands proposed for other nodes */
    size_t n_bad;            /* payloads dropped as malformed */
};

/* Steps the inbox: raft messages go to raft_step, forwarded commands are
 * proposed (when leading) in the order received, stopping at the first
 * that raft/ refuses (so a sender's commands never commit out of order);
 * then the clock ticks. Frees the inbox. Errors: GR_ENOMEM. */
int gr_turn_input(struct gr_host *h, struct gr_turn *t);

/* Proposes an encoded command (bytes from store_cmd_encode) stamped with
 * t->wall_ms. Sets *index. Errors: GR_EINVAL (not the leader, or raft/
 * refuses for now: a transfer, too much uncommitted; try again in a later
 * turn), GR_ENOMEM. */
int gr_turn_propose(struct gr_host *h, struct gr_turn *t, const uint8_t *cmd,
                    size_t len, uint64_t *index);

/* Starts a linearizable read numbered ctx (!= 0): the leader confirms it
 * still leads (raft/'s ReadIndex round) and says which index to apply
 * first; its answer comes in t->read, in this turn or a later one. Not
 * leading and no leader known: t->read says !ok at once. Errors:
 * GR_ENOMEM. */
int gr_turn_read(struct gr_host *h, struct gr_turn *t, uint64_t ctx);

/* A GR_PEER_ALIVE payload for `term` (the loop's keep-alive, sent outside
 * the turns; gr_turn_input hands one received to raft_peer_alive). */
#define GR_PEER_ALIVE_LEN 9
void gr_turn_alive_frame(uint8_t p[GR_PEER_ALIVE_LEN], uint64_t term);

/* A payload forwarding commands: appends one command to the frame being
 * built in *f (NULL: a new one, to `leader`). Errors: GR_ENOMEM. */
int gr_turn_forward_add(struct gr_frame **f, uint64_t leader,
                        const uint8_t *cmd, size_t len);

/* Writes what raft/ has ready (one ready batch; t->more says whether it
 * has another): messages that may leave now go to send_now; the hard
 * state, a truncation and the new entries go into one write transaction
 * with the apply of every newly committed entry (each reported to
 * `applied`); the transaction commits and is synced; then the messages
 * that vouch for it go to out_after and raft/ is told. Fills the status
 * fields. Errors: GR_ESTORE (the store failed, or memory ran out: nothing
 * of the transaction was kept, and the host restarted raft/ from the
 * disk; h->errmsg says what). */
int gr_turn_write(struct gr_host *h, struct gr_turn *t);

#endif /* GEARRAFT_CLUSTER_TURN_H */
