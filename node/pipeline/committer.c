/* SPDX-License-Identifier: BSD-3-Clause
 * node/pipeline/committer.c - the committer and syncer threads, and the
 * one write transaction per batch (committer.h says why).
 *
 * A batch's transaction: for each proposal that stores something, encode
 * and append its command to the log at the next index and apply it,
 * collecting its effects; then compact the log behind the applied index
 * and commit. With one voter "appended" is "committed", so apply runs in
 * the same transaction as the append.
 *
 * Not here: which batch runs when, and in what order batches are
 * answered (pipeline.c).
 */
#include "node/pipeline/committer.h"

#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "node/gr.h"

/* A write or sync of the data file failed, and not for want of space:
 * the kernel may have dropped the pages it could not write, and no later
 * sync could tell (a commit after it could even point at them). So the
 * node stops at once, from whichever thread found it, as if it had
 * crashed: nothing written since is ever acknowledged, and a restart reads
 * what is really on disk, where every acknowledged job is. */
static void storage_failed(struct gr_committer *c, const char *what)
{
    GR_LOG(GR_LOG_CRIT, "loop",
           "%s failed (%s): stopping now, without acknowledging anything "
           "not yet durable; restart gearraftd once the disk is healthy",
           what, store_errmsg(c->store));
    _exit(1);
}

/* A commit failed with EIO. On a full file system LMDB's page writes come
 * up short, which it reports as EIO too: that failure comes before any
 * sync, nothing acknowledged is at risk, and the batch is refused as for a
 * full disk (STORE_ENOSPC) while the node goes on. Otherwise the node
 * stops. */
static int commit_failed(struct gr_committer *c)
{
    struct store_stat st;

    if (store_stat(c->store, &st) == 0 && st.disk_free < c->min_free_space) {
        return STORE_ENOSPC;
    }
    storage_failed(c, "committing a batch");
    return STORE_EIO;
}

/* Applies p's command at index, collecting its effects. */
static int apply_one(struct store_txn *txn, struct store_effects *fx,
                     struct gr_proposal *p, uint64_t index)
{
    int rv;

    p->fx_begin = fx->n;
    rv = store_apply(txn, index, p->cmd.time_ms, &p->cmd, fx);
    p->fx_end = fx->n;
    return rv;
}

/* Hands the batch's commands to raft/ (the host), each at the next
 * index. Returns 0 or GR_E*; *n gets how many were proposed. */
static int propose_all(struct gr_committer *c, struct gr_batch *b,
                       uint64_t now, size_t *n)
{
    struct gr_proposal *p;
    uint64_t expect = b->index;
    uint64_t index;
    int rv;

    *n = 0;
    gr_host_batch_begin(c->host);
    for (p = b->props; p != NULL; p = p->next) {
        if (p->cmd.type == 0) {
            continue;
        }
        rv = gr_host_propose(c->host, &p->cmd, now, &index);
        if (rv != 0) {
            return rv;
        }
        /* One voter: the log's order is the queue's, the index the one
         * the pipeline (and the fast path) counted on. */
        GR_ASSERT(index == expect);
        expect++;
        (*n)++;
    }
    return 0;
}

/* Says "applied": the loop may send the batch's early answers now. */
static void report_applied(struct gr_committer *c, bool threaded)
{
    if (!threaded) {
        c->applied = true;
        return;
    }
    pthread_mutex_lock(&c->lock);
    c->applied = true;
    pthread_mutex_unlock(&c->lock);
    event_active(c->applied_ev, EV_READ, 0);
}

/* A member's turn applied its committed entries and is about to commit
 * (node/pipeline/member.c): as for a lone node's batch, the loop may send
 * their early answers while the commit and sync run. */
static void member_applied(void *arg)
{
    report_applied(arg, true);
}

/* The batch's write transaction, on either thread: raft/ gets the
 * commands, the transaction gets what it asks to persist (hard state,
 * entries), and - one voter: an entry is committed once it is on this
 * disk - the commands are applied at their indexes in the same
 * transaction. Sets *index_end; returns the store code. */
static int write_batch(struct gr_committer *c, struct gr_batch *b,
                       uint64_t *index_end, bool threaded)
{
    struct gr_proposal *p;
    struct store_txn *txn;
    uint64_t index = b->index;
    uint64_t now = gr_now_ms();
    uint64_t t0 = gr_mono_us();
    uint64_t t1;
    size_t n = 0;
    int rv;

    *index_end = index;
    store_effects_reset(&b->fx);
    rv = propose_all(c, b, now, &n);
    if (rv != 0) {
        /* The store's message (in the loop's report) says nothing of it. */
        GR_LOG(GR_LOG_ERROR, "pipeline",
               "proposing the batch's command number %zu: %s", n + 1,
               c->host->errmsg);
        return rv == GR_ENOMEM ? STORE_ENOMEM : STORE_EINVAL;
    }
    rv = store_txn_begin(c->store, true, &txn);
    if (rv != 0) {
        return rv;
    }
    if (n > 0) {
        rv = gr_host_persist(c->host, txn);
    }
    for (p = b->props; p != NULL && rv == 0; p = p->next) {
        if (p->cmd.type == 0) {
            continue;
        }
        rv = apply_one(txn, &b->fx, p, index);
        index++;
    }
    /* Compact the log behind the applied index: with one voter nobody
     * needs an entry once it is applied, which is in this transaction. The
     * entries are deleted before the commit that wrote them, so LMDB never
     * writes their pages: the log adds no page writes to the batch. */
    if (rv == 0 && n > 0) {
        rv = gr_host_compact(c->host, txn, index - 1);
    }
    if (rv != 0) {
        store_txn_abort(txn);
        return rv;
    }
    *index_end = index;
    report_applied(c, threaded);
    t1 = gr_mono_us();
    rv = store_txn_commit(txn); /* releases txn whatever the result */
    if (rv == STORE_EIO) {
        rv = commit_failed(c);
    }
    c->apply_us += t1 - t0;
    c->commit_us += gr_mono_us() - t1;
    return rv;
}

/* write_batch, then raft/ hears how it went: on success it commits the
 * entries; on failure it starts over from the disk (the pipeline settles
 * the host again before the next batch). */
static int write_and_advance(struct gr_committer *c, struct gr_batch *b,
                             uint64_t *index_end, bool threaded)
{
    int rv;

    if (b->member) {
        /* A Raft turn: it writes, syncs and tells raft/ itself. */
        uint64_t t0 = gr_mono_us();

        *index_end = b->index;
        rv = gr_member_turn(c->member, c->host, b);
        gr_host_view(c->host, &b->view);
        b->view.fwd_sent = c->member->n_forwarded;
        b->view.fwd_resent = c->member->n_resent;
        b->view.overtaken = c->member->n_out_of_order;
        c->commit_us += gr_mono_us() - t0;
        if (rv == STORE_EIO) {
            rv = commit_failed(c);
        }
        return rv;
    }
    rv = write_batch(c, b, index_end, threaded);

    if (gr_host_advance(c->host, rv == 0, gr_mono_us() / 1000) != 0) {
        storage_failed(c, "reading the Raft state back after a failed batch");
    }
    gr_host_view(c->host, &b->view);
    return rv;
}

static void *committer_main(void *arg)
{
    struct gr_committer *c = arg;
    struct gr_batch *b;
    uint64_t end = 0;
    int rv;

    pthread_mutex_lock(&c->lock);
    for (;;) {
        uint64_t t0 = gr_mono_us();

        while (c->batch == NULL && !c->quit) {
            pthread_cond_wait(&c->c_cond, &c->lock);
        }
        if (c->batch == NULL) {
            break;
        }
        c->idle_us += gr_mono_us() - t0;
        b = c->batch;
        pthread_mutex_unlock(&c->lock);
        /* Between write transactions, on the one thread that runs them:
         * no error of its own to act on (the commit grows the file then,
         * and reports what the disk says). */
        (void)store_grow_ahead(c->store);
        t0 = gr_mono_us();
        rv = write_and_advance(c, b, &end, true);
        t0 = gr_mono_us() - t0;
        pthread_mutex_lock(&c->lock);
        gr_histo_add(&c->commit_lat, t0);
        if (b->member) {
            c->turn_sync_lat = c->host->sync_lat;
        }
        if (rv == 0 && end > b->index) {
            /* This commit synced the file after the previous commit had
             * written its meta page: that one is durable now. (A batch
             * of local replies only appends nothing, and LMDB commits an
             * unchanged transaction without a sync: no claim then.) */
            if (c->committed_gen > c->durable_gen) {
                c->durable_gen = c->committed_gen;
            }
            c->committed_gen = c->gen;
            pthread_cond_signal(&c->s_cond);
        }
        c->batch = NULL;
        c->rv = rv;
        c->index_end = end;
        c->done = true;
        pthread_cond_broadcast(&c->c_cond);
        event_active(c->done_ev, EV_READ, 0);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* The syncer thread: after each commit, syncs the file so that the
 * commit's meta page is durable - while the committer already writes the
 * next batch - and tells the loop. */
static void *syncer_main(void *arg)
{
    struct gr_committer *c = arg;
    uint64_t target;
    uint64_t t0;

    pthread_mutex_lock(&c->lock);
    for (;;) {
        while (c->committed_gen <= c->durable_gen && !c->quit) {
            pthread_cond_wait(&c->s_cond, &c->lock);
        }
        if (c->committed_gen <= c->durable_gen) {
            break;
        }
        target = c->committed_gen;
        pthread_mutex_unlock(&c->lock);
        t0 = gr_mono_us();
        if (store_sync(c->store) != 0) {
            storage_failed(c, "syncing the data file");
        }
        t0 = gr_mono_us() - t0;
        pthread_mutex_lock(&c->lock);
        gr_histo_add(&c->sync_lat, t0);
        c->n_syncs++;
        if (target > c->durable_gen) {
            c->durable_gen = target;
        }
        pthread_cond_broadcast(&c->c_cond);
        event_active(c->durable_ev, EV_READ, 0);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

void gr_committer_init(struct gr_committer *c, struct store *store,
                       struct gr_host *host, uint64_t min_free_space)
{
    memset(c, 0, sizeof(*c));
    c->store = store;
    c->host = host;
    c->min_free_space = min_free_space;
}

void gr_committer_set_events(struct gr_committer *c, struct event *applied_ev,
                             struct event *done_ev, struct event *durable_ev)
{
    c->applied_ev = applied_ev;
    c->done_ev = done_ev;
    c->durable_ev = durable_ev;
}

static int start_thread(struct gr_committer *c, pthread_t *tid,
                        void *(*fn)(void *), const char *name, char *errmsg,
                        size_t errmsg_len)
{
    if (pthread_create(tid, NULL, fn, c) != 0) {
        snprintf(errmsg, errmsg_len, "cannot start the %s thread", name);
        return GR_ENOMEM;
    }
    return 0;
}

int gr_committer_start(struct gr_committer *c, char *errmsg, size_t errmsg_len)
{
    int rv;

    if (pthread_mutex_init(&c->lock, NULL) != 0 ||
        pthread_cond_init(&c->c_cond, NULL) != 0 ||
        pthread_cond_init(&c->s_cond, NULL) != 0) {
        snprintf(errmsg, errmsg_len, "cannot create locks");
        return GR_ENOMEM;
    }
    c->sync_init = true;
    rv = start_thread(c, &c->s_thread, syncer_main, "syncer", errmsg,
                      errmsg_len);
    if (rv != 0) {
        return rv;
    }
    c->s_started = true;
    rv = start_thread(c, &c->c_thread, committer_main, "committer", errmsg,
                      errmsg_len);
    if (rv != 0) {
        return rv;
    }
    c->c_started = true;
    if (c->member != NULL) {
        /* Only while the threads run: a turn written on the loop thread
         * (start-up, close) is answered when it returns. */
        gr_member_set_early(c->member, member_applied, c);
    }
    return 0;
}

void gr_committer_stop(struct gr_committer *c)
{
    if (c->c_started || c->s_started) {
        pthread_mutex_lock(&c->lock);
        c->quit = true;
        pthread_cond_broadcast(&c->c_cond);
        pthread_cond_broadcast(&c->s_cond);
        pthread_mutex_unlock(&c->lock);
    }
    if (c->c_started) {
        pthread_join(c->c_thread, NULL);
        c->c_started = false;
    }
    if (c->member != NULL) {
        gr_member_set_early(c->member, NULL, NULL);
    }
    if (c->s_started) {
        pthread_join(c->s_thread, NULL);
        c->s_started = false;
    }
    if (c->sync_init) {
        pthread_mutex_destroy(&c->lock);
        pthread_cond_destroy(&c->c_cond);
        pthread_cond_destroy(&c->s_cond);
        c->sync_init = false;
    }
}

bool gr_committer_running(const struct gr_committer *c)
{
    return c->c_started;
}

void gr_committer_hand(struct gr_committer *c, struct gr_batch *b)
{
    pthread_mutex_lock(&c->lock);
    c->applied = false;
    c->done = false;
    c->gen = b->gen;
    c->batch = b;
    pthread_cond_signal(&c->c_cond);
    pthread_mutex_unlock(&c->lock);
}

void gr_committer_write(struct gr_committer *c, struct gr_batch *b)
{
    uint64_t end = b->index;
    int rv;

    c->applied = false;
    rv = write_and_advance(c, b, &end, false);
    if (rv == 0 && store_sync(c->store) != 0) {
        storage_failed(c, "syncing the data file");
    }
    c->rv = rv;
    c->index_end = end;
    c->done = true;
}

void gr_committer_lock(struct gr_committer *c)
{
    pthread_mutex_lock(&c->lock);
}

void gr_committer_unlock(struct gr_committer *c)
{
    pthread_mutex_unlock(&c->lock);
}

void gr_committer_wait(struct gr_committer *c)
{
    pthread_cond_wait(&c->c_cond, &c->lock);
}
