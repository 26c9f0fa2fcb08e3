/* SPDX-License-Identifier: BSD-3-Clause
 * node/pipeline/pipeline.h - the commit pipeline: proposals queue up,
 * become one write batch per loop turn, are written by the committer
 * thread, and come back to the loop as finished batches, in order.
 *
 * The loop drives it and routes what comes back; the pipeline itself
 * never calls up into sessions, answers or the fast path:
 *
 *   gr_pipeline_propose     a session's command joins the queue, and the
 *                           loop's commit event is made active
 *   gr_pipeline_start       (the commit event, after every ready socket
 *                           of the turn was read) the queue becomes the
 *                           next batch and goes to the committer
 *   gr_pipeline_applied     (the applied event) the batch in flight is
 *                           applied: its early answers may leave
 *   gr_pipeline_collect     (the done event) it committed or failed
 *   gr_pipeline_answer_next (the done and durable events) the oldest
 *                           batch whose answers may leave now
 *
 * So one fsync covers every request read in a turn (group commit), and no
 * reply that acknowledges state leaves before the commit that makes it
 * true. The shape is Raft's with one voter: proposing queues, the batch
 * persists the entries and applies them, and the loop turns the effects
 * into packets. In the cluster the batch is what raft_ready asks to
 * persist and apply, and the same hand-back serves (docs/DESIGN.md).
 *
 * Not here: the threads and the write transaction (committer.h), what a
 * proposal carries (proposal.h), routing effects to sessions (the loop
 * and node/gearman/answer.c).
 */
#ifndef GEARRAFT_PIPELINE_PIPELINE_H
#define GEARRAFT_PIPELINE_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/cluster/host.h"
#include "node/pipeline/batch.h"
#include "node/pipeline/committer.h"
#include "node/pipeline/member.h"
#include "node/pipeline/proposal.h"
#include "storage/store.h"

struct event;

struct gr_pipeline {
    struct store *store;
    uint64_t node_id; /* stamped into every command's origin */
    uint64_t incarnation;
    struct event *commit_ev; /* the loop's: starts the next batch */

    /* The queue: proposals not yet in a batch, oldest first. The fast
     * path reads it (and the batch in flight) but never changes it. */
    struct gr_proposal *head;
    struct gr_proposal *tail;
    size_t n_queued;
    uint64_t seq;           /* origin sequence of the last command */
    uint64_t n_uncommitted; /* proposals queued or in flight */
    uint64_t next_index;    /* the log index of the next command */

    /* Batches from their start until answered (batch.h). */
    struct gr_batch slots[GR_BATCH_SLOTS];
    uint64_t gen_next;         /* the number of the next batch to start */
    uint64_t gen_answered;     /* every batch up to this one is answered */
    struct gr_batch *inflight; /* being written; NULL when none */
    uint64_t inflight_since_ms; /* ... since then (monotonic) */
    bool early_sent;           /* ... its applied stage was handed back */
    bool inflight_synced;      /* ... written here, not by the thread */
    struct gr_committer c;
    struct gr_host host; /* raft/: the committer's during a batch, the
                          * loop's between batches */
    bool host_open;
    /* A cluster member (member.h): its batches are Raft turns, started
     * also by what the peers send and by raft/'s timer. */
    bool is_member;
    struct gr_member member;
    struct gr_frame *inbox; /* received since the last turn began */
    struct gr_frame **inbox_end;
    bool want_turn;
    bool transfer_wanted; /* the next turn hands leadership on */
    /* Linearizable reads on a member: a read waits for a round that
     * began after it did (gr_pipeline_read_begin), then for the node to
     * apply the round's index. Rounds are numbered from 1. */
    bool read_wanted;
    uint64_t read_next;      /* the number of the next round to start */
    uint64_t read_running;   /* the round in flight; 0: none */
    uint64_t read_started_ms;
    uint64_t read_done;      /* the last round that finished */
    uint64_t read_done_index;
    struct gr_member_status status; /* after the last turn collected */
    struct gr_raft_view view;       /* raft/ after the last batch collected */

    uint64_t n_batches; /* statistics, logged at shutdown */
    uint64_t n_batched;
};

struct gr_pipeline_stats {
    uint64_t n_batches;
    uint64_t n_batched;
    uint64_t n_syncs;
    uint64_t apply_us;
    uint64_t commit_us;
    uint64_t idle_us;
    struct gr_histo commit_lat; /* per batch (a member: per turn) */
    struct gr_histo sync_lat;   /* per sync of the data file */
};

/* Sets pl up over an open store: the next log index from the log and the
 * applied index, and the node's identity for origins. Errors: GR_ESTORE,
 * errmsg says what failed; gr_pipeline_close releases pl either way. */
int gr_pipeline_init(struct gr_pipeline *pl, struct store *store,
                     uint64_t min_free_space, char *errmsg, size_t errmsg_len);
/* The same for a member of a cluster of several voters (cluster: this
 * node's id, the founding voters, the timeouts). Errors as above. */
int gr_pipeline_init_member(struct gr_pipeline *pl, struct store *store,
                            uint64_t min_free_space,
                            const struct gr_host_config *cluster, char *errmsg,
                            size_t errmsg_len);
/* Loop thread, member: a payload a peer sent (copied); the next turn
 * steps it. Errors: GR_ENOMEM (the payload is dropped, as if lost). */
int gr_pipeline_receive(struct gr_pipeline *pl, uint64_t from,
                        const void *data, size_t len);
/* Loop thread, member: raft/'s timer is due; run a turn. */
void gr_pipeline_want_turn(struct gr_pipeline *pl);
/* Loop thread: a read of queue state arrived. Returns the read round it
 * must wait for (0 on a lone node, which needs none); a member starts
 * that round with its next turn. */
uint64_t gr_pipeline_read_begin(struct gr_pipeline *pl);
/* True when a read that waits for round `round` may run now: nothing is
 * being written, and (on a member) the round finished and the node has
 * applied its index. GR_READ_LOCAL: a read that needs no round (it may
 * see this node's state as it is, like a worker's PRE_SLEEP). */
#define GR_READ_LOCAL UINT64_MAX
bool gr_pipeline_read_ok(const struct gr_pipeline *pl, uint64_t round);

/* Loop thread, member, no batch in flight: the node continues as
 * incarnation `inc` (it was declared gone): what it had queued or pending
 * is dropped (its connections are closed), and its commands carry the new
 * incarnation. */
void gr_pipeline_reincarnate(struct gr_pipeline *pl, uint64_t inc);

/* Loop thread, member: the next turn hands leadership to the most
 * up-to-date other voter, if this node leads (thesis 3.10). */
void gr_pipeline_transfer(struct gr_pipeline *pl);
/* The loop's four events, which stay the loop's: commit (start the next
 * batch; its priority comes after every socket's), and applied, done and
 * durable (made active by the committer and syncer threads). Before the
 * threads start. */
void gr_pipeline_set_events(struct gr_pipeline *pl, struct event *commit_ev,
                            struct event *applied_ev, struct event *done_ev,
                            struct event *durable_ev);
/* Frees what is queued and the batches' effect sets. The threads must be
 * stopped and no batch unanswered. */
void gr_pipeline_close(struct gr_pipeline *pl);

/* Starts the committer and syncer threads. Until then, and after
 * gr_pipeline_stop_threads, gr_pipeline_start writes a batch on the
 * calling thread. Errors: GR_ENOMEM (errmsg). */
int gr_pipeline_start_threads(struct gr_pipeline *pl, char *errmsg,
                              size_t errmsg_len);
void gr_pipeline_stop_threads(struct gr_pipeline *pl);
/* True while the threads run. */
bool gr_pipeline_threaded(const struct gr_pipeline *pl);

/* Queues p (takes ownership): stamps its command's origin (node,
 * incarnation, sequence) and makes the commit event active unless a batch
 * is in flight (its end starts the next one). */
void gr_pipeline_propose(struct gr_pipeline *pl, struct gr_proposal *p);

/* How long the batch (a member: the turn) in flight has run at `now_ms`
 * (monotonic), 0 when none runs. */
uint64_t gr_pipeline_busy_ms(const struct gr_pipeline *pl, uint64_t now_ms);

/* Takes the queue as the next batch and hands it to the committer.
 * Returns it, or NULL when none was started: nothing queued, a batch in
 * flight, or every slot holding a batch not yet answered (it starts when
 * the one in flight ends or one is answered). Without the threads the
 * batch is written, committed and synced before this returns; collect it
 * at once. */
struct gr_batch *gr_pipeline_start(struct gr_pipeline *pl);

/* The batch in flight, once, when it is applied and its commit has not
 * been collected: its effects are final and its early answers may leave.
 * NULL otherwise. */
struct gr_batch *gr_pipeline_applied(struct gr_pipeline *pl);

/* The batch in flight, once its commit returned (rv 0) or failed: sets
 * rv, done and durable, counts it, and moves the next index past it if
 * it committed. *early is true when its applied stage was not handed back
 * by gr_pipeline_applied (its early answers have not left). NULL when
 * none has ended. */
struct gr_batch *gr_pipeline_collect(struct gr_pipeline *pl, bool *early);

/* The last batch whose commit is known durable (read once per round of
 * gr_pipeline_answer_next). */
uint64_t gr_pipeline_durable(struct gr_pipeline *pl);
/* The oldest batch not yet answered, if it may be answered now: its
 * commit returned, and it failed, stores nothing of its own, or is at or
 * below `durable`. It then counts as answered (gen_answered); the caller
 * answers it and sets its props to NULL once freed. NULL otherwise. */
struct gr_batch *gr_pipeline_answer_next(struct gr_pipeline *pl,
                                         uint64_t durable);

/* Every batch up to this one is answered (the one being answered
 * included, from gr_pipeline_answer_next on). */
uint64_t gr_pipeline_answered(const struct gr_pipeline *pl);

/* Blocks until a batch can be collected or answered (close only). */
void gr_pipeline_wait(struct gr_pipeline *pl);

/* True while a batch is being written or waits to be answered: reads of
 * queue state that answer a client wait until it is false. */
bool gr_pipeline_writing(const struct gr_pipeline *pl);
/* True while a batch is being written (on the committer thread). */
bool gr_pipeline_in_flight(const struct gr_pipeline *pl);
/* The proposals not yet committed, in log order: lists[0] those of the
 * batch in flight (NULL when none), lists[1] the queue. The fast path
 * walks them; nobody outside the pipeline changes them. */
static inline void gr_pipeline_uncommitted(const struct gr_pipeline *pl,
                                           struct gr_proposal *lists[2])
{
    lists[0] = pl->inflight != NULL ? pl->inflight->props : NULL;
    lists[1] = pl->head;
}
/* True on a member of a cluster of several voters. */
static inline bool gr_pipeline_is_member(const struct gr_pipeline *pl)
{
    return pl->is_member;
}
/* True when nothing is queued and no batch is being written. */
bool gr_pipeline_is_empty(const struct gr_pipeline *pl);
/* True when proposals wait for the next batch. */
bool gr_pipeline_has_queued(const struct gr_pipeline *pl);

/* Loop thread: the statistics so far (the latencies read under the
 * committer's lock). */
void gr_pipeline_stats(struct gr_pipeline *pl, struct gr_pipeline_stats *out);

#endif /* GEARRAFT_PIPELINE_PIPELINE_H */
