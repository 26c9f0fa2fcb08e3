/* SPDX-License-Identifier: BSD-3-Clause
 * node/pipeline/committer.h - the two threads that write batches: the
 * committer (begin, append, apply, commit) and the syncer (the meta page).
 *
 * Why threads: LMDB wants a write transaction begun, used and committed
 * by one thread, so the whole write of a batch - begin, append, apply,
 * commit (fsync) - runs on the committer thread while the loop goes on
 * reading sockets and queueing the next batch. Read transactions on the
 * loop thread see the last committed state (MVCC; the environment is
 * opened MDB_NOTLS). The loop hands over one batch at a time and touches
 * neither its proposals' commands nor its effects until the thread says
 * "applied" (early answers may then leave while the disk syncs) and
 * "done".
 *
 * A commit syncs the batch's pages and writes, without syncing, the meta
 * page that makes the batch current (MDB_NOMETASYNC): after a crash
 * before that page reaches the disk, the file is the previous batch's,
 * intact. The batch is durable once the syncer thread's next sync
 * returns or the next commit (whose sync covers that page) does,
 * whichever comes first; only then may its late replies (JOB_CREATED,
 * admin) leave. So the meta page's sync overlaps the next batch instead
 * of lengthening every commit.
 *
 * The threads report through three events of the loop's, made active from
 * the thread (the event base is thread-aware): applied, done, durable.
 * What the loop then does is pipeline.h's business; this file never
 * calls up.
 *
 * A write or sync that fails for any other reason than a full disk stops
 * the process at once (see committer.c): the kernel may have dropped the
 * pages, and nothing written since may ever be acknowledged.
 *
 * Not here: the queue, the order of answers (pipeline.h).
 */
#ifndef GEARRAFT_PIPELINE_COMMITTER_H
#define GEARRAFT_PIPELINE_COMMITTER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/cluster/host.h"
#include "node/histo.h"
#include "node/pipeline/batch.h"
#include "node/pipeline/member.h"
#include "storage/store.h"

struct event;

struct gr_committer {
    struct store *store;
    struct gr_host *host;     /* raft/; the committer's while a batch is */
    struct gr_member *member; /* a cluster member's turns; NULL: lone */
    uint64_t min_free_space;  /* a failed commit below it: out of space */
    struct event *applied_ev; /* the loop's: the batch is applied */
    struct event *done_ev;    /* the loop's: its commit returned */
    struct event *durable_ev; /* the loop's: the syncer synced */
    pthread_t c_thread;
    pthread_t s_thread;
    bool c_started;
    bool s_started;
    bool sync_init; /* lock and conditions exist */
    pthread_mutex_t lock;
    pthread_cond_t c_cond; /* the committer, and waiters for progress */
    pthread_cond_t s_cond; /* the syncer */
    /* Under lock. */
    struct gr_batch *batch; /* handed to the committer thread */
    bool quit;
    bool applied; /* the batch in flight is applied, not committed */
    bool done;    /* ... its commit returned: rv, index_end */
    int rv;
    uint64_t index_end;     /* one past its last log index */
    uint64_t gen;           /* the batch handed over last */
    uint64_t committed_gen; /* the last batch committed */
    uint64_t durable_gen;   /* every commit up to this batch is durable */
    /* Statistics, logged at shutdown. */
    uint64_t n_syncs;   /* syncs the syncer made */
    uint64_t apply_us;  /* begin, append and apply, summed */
    uint64_t commit_us; /* mdb commit with its syncs, summed */
    uint64_t idle_us;   /* the committer waiting for a batch, summed */
    /* Latencies for the metrics, under lock: a batch's write and commit
     * (a member: its turn), the syncer's syncs, and a copy of the
     * host's syncs inside turns taken after each turn. */
    struct gr_histo commit_lat;
    struct gr_histo sync_lat;
    struct gr_histo turn_sync_lat;
};

/* Sets c up (no thread yet) to write into store through host. */
void gr_committer_init(struct gr_committer *c, struct store *store,
                       struct gr_host *host, uint64_t min_free_space);
/* The loop's three events the threads report through (they stay the
 * loop's). Before gr_committer_start. */
void gr_committer_set_events(struct gr_committer *c, struct event *applied_ev,
                             struct event *done_ev, struct event *durable_ev);

/* Starts the syncer and the committer. Errors: GR_ENOMEM (errmsg says
 * which could not be made); what was started is stopped by
 * gr_committer_stop, which the caller must call either way. */
int gr_committer_start(struct gr_committer *c, char *errmsg, size_t errmsg_len);
/* Tells both threads to quit and joins them; the syncer first syncs what
 * the committer committed last. No batch may be in flight. Safe to call
 * when nothing was started. */
void gr_committer_stop(struct gr_committer *c);
/* True between a successful gr_committer_start and gr_committer_stop. */
bool gr_committer_running(const struct gr_committer *c);

/* Loop thread, threads running, no batch in flight: hands b (its
 * proposals, index and empty effect set) to the committer thread. Until
 * `applied` the loop must not touch b's commands or effects. */
void gr_committer_hand(struct gr_committer *c, struct gr_batch *b);
/* Without the threads (start-up and close): writes, commits and syncs b
 * on the calling thread, and leaves the outcome where the committer
 * thread would (applied, done, rv, index_end). */
void gr_committer_write(struct gr_committer *c, struct gr_batch *b);

/* The lock the shared fields above are read and written under, and a
 * wait for the threads' next progress (with the lock held). */
void gr_committer_lock(struct gr_committer *c);
void gr_committer_unlock(struct gr_committer *c);
void gr_committer_wait(struct gr_committer *c);

#endif /* GEARRAFT_PIPELINE_COMMITTER_H */
