/* SPDX-License-Identifier: BSD-3-Clause
 * node/pipeline/pipeline.c - the queue, the batches' slots and the order
 * in which finished batches go back to the loop (pipeline.h).
 *
 * When a batch is done, the loop hands over the next one FIRST and only
 * then answers what is durable: the replies (hundreds of socket writes
 * under load) overlap the next apply and sync instead of delaying them.
 * Replies keep their order per connection because batches are answered
 * in order; the Gearman side keeps a connection's early replies behind
 * its late ones (node/gearman/answer.c).
 *
 * Not here: the threads and the write transaction (committer.c).
 */
#include "node/pipeline/pipeline.h"

#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "node/gr.h"

static int init(struct gr_pipeline *pl, struct store *store,
                uint64_t min_free_space, const struct gr_host_config *cluster,
                char *errmsg, size_t errmsg_len)
{
    struct gr_host_config hc;
    int rv;
    int i;

    memset(pl, 0, sizeof(*pl));
    pl->inbox_end = &pl->inbox;
    pl->read_next = 1;
    pl->store = store;
    pl->node_id = store_node_id(store);
    pl->incarnation = store_incarnation(store);
    pl->gen_next = 1;
    for (i = 0; i < GR_BATCH_SLOTS; i++) {
        store_effects_init(&pl->slots[i].fx);
    }
    if (cluster != NULL) {
        hc = *cluster;
    } else {
        memset(&hc, 0, sizeof(hc));
        hc.node_id = pl->node_id;
    }
    rv = gr_host_open(&pl->host, store, &hc, gr_mono_us() / 1000, errmsg,
                      errmsg_len);
    if (rv != 0) {
        return rv;
    }
    pl->host_open = true;
    gr_committer_init(&pl->c, store, &pl->host, min_free_space);
    if (cluster != NULL) {
        pl->is_member = true;
        pl->c.member = &pl->member;
        /* Forward again what a leader has not committed in twice the
         * election timeout (it may have lost it). */
        rv = gr_member_init(&pl->member, pl->node_id, pl->incarnation,
                            2 * (hc.election_ms > 0 ? hc.election_ms : 1000));
        if (rv != 0) {
            snprintf(errmsg, errmsg_len, "out of memory");
            return rv;
        }
        pl->want_turn = true;
        gr_host_view(&pl->host, &pl->view);
        return 0;
    }
    rv = gr_host_settle(&pl->host, gr_mono_us() / 1000, gr_now_ms());
    if (rv != 0) {
        snprintf(errmsg, errmsg_len, "%s", pl->host.errmsg);
        return rv;
    }
    pl->next_index = gr_host_next_index(&pl->host);
    gr_host_view(&pl->host, &pl->view);
    return 0;
}

int gr_pipeline_init(struct gr_pipeline *pl, struct store *store,
                     uint64_t min_free_space, char *errmsg, size_t errmsg_len)
{
    return init(pl, store, min_free_space, NULL, errmsg, errmsg_len);
}

int gr_pipeline_init_member(struct gr_pipeline *pl, struct store *store,
                            uint64_t min_free_space,
                            const struct gr_host_config *cluster, char *errmsg,
                            size_t errmsg_len)
{
    return init(pl, store, min_free_space, cluster, errmsg, errmsg_len);
}

/* Makes the commit event active unless a batch is in flight (its end
 * starts the next one) or it is already. */
static void kick(struct gr_pipeline *pl)
{
    if (pl->commit_ev != NULL && pl->inflight == NULL &&
        !event_pending(pl->commit_ev, EV_TIMEOUT, NULL)) {
        event_active(pl->commit_ev, EV_TIMEOUT, 0);
    }
}

int gr_pipeline_receive(struct gr_pipeline *pl, uint64_t from,
                        const void *data, size_t len)
{
    struct gr_frame *f = gr_frame_new(from, len);

    if (f == NULL) {
        return GR_ENOMEM;
    }
    memcpy(f->data, data, len);
    *pl->inbox_end = f;
    pl->inbox_end = &f->next;
    kick(pl);
    return 0;
}

void gr_pipeline_want_turn(struct gr_pipeline *pl)
{
    pl->want_turn = true;
    kick(pl);
}

uint64_t gr_pipeline_read_begin(struct gr_pipeline *pl)
{
    if (!pl->is_member) {
        return 0;
    }
    pl->read_wanted = true;
    gr_pipeline_want_turn(pl);
    return pl->read_next;
}

bool gr_pipeline_read_ok(const struct gr_pipeline *pl, uint64_t round)
{
    if (gr_pipeline_writing(pl)) {
        return false;
    }
    if (!pl->is_member || round == GR_READ_LOCAL) {
        return true;
    }
    return round != 0 && pl->read_done >= round &&
           pl->view.applied >= pl->read_done_index;
}

/* A member's read round that ended: done, or to be run again (lost
 * leadership, no leader, or no answer in the resend time). */
static void read_collected(struct gr_pipeline *pl, const struct gr_batch *b)
{
    const struct gr_turn_read *r = &b->status.read;
    uint64_t now = gr_mono_us() / 1000;

    if (pl->read_running == 0) {
        return;
    }
    if (r->done && r->ctx == pl->read_running) {
        if (r->ok) {
            pl->read_done = pl->read_running;
            pl->read_done_index = r->index;
        } else {
            pl->read_wanted = true; /* readers wait for the next round */
        }
        pl->read_running = 0;
    } else if (now - pl->read_started_ms > pl->member.resend_ms) {
        pl->read_running = 0;
        pl->read_wanted = true;
    }
}

void gr_pipeline_reincarnate(struct gr_pipeline *pl, uint64_t inc)
{
    struct gr_proposal *p;
    size_t n = gr_member_drop_pending(&pl->member);

    while ((p = pl->head) != NULL) {
        pl->head = p->next;
        gr_proposal_free(p);
        n++;
    }
    pl->tail = NULL;
    pl->n_queued = 0;
    pl->n_uncommitted -= n < pl->n_uncommitted ? n : pl->n_uncommitted;
    pl->incarnation = inc;
    pl->member.incarnation = inc;
}

void gr_pipeline_transfer(struct gr_pipeline *pl)
{
    pl->transfer_wanted = true;
    gr_pipeline_want_turn(pl);
}

void gr_pipeline_set_events(struct gr_pipeline *pl, struct event *commit_ev,
                            struct event *applied_ev, struct event *done_ev,
                            struct event *durable_ev)
{
    pl->commit_ev = commit_ev;
    gr_committer_set_events(&pl->c, applied_ev, done_ev, durable_ev);
}

void gr_pipeline_close(struct gr_pipeline *pl)
{
    struct gr_proposal *p;
    int i;

    while ((p = pl->head) != NULL) {
        pl->head = p->next;
        gr_proposal_free(p);
    }
    pl->tail = NULL;
    pl->n_queued = 0;
    for (i = 0; i < GR_BATCH_SLOTS; i++) {
        store_effects_close(&pl->slots[i].fx);
    }
    if (pl->is_member) {
        gr_member_close(&pl->member);
        pl->is_member = false;
    }
    gr_frames_free(pl->inbox);
    pl->inbox = NULL;
    pl->inbox_end = &pl->inbox;
    if (pl->host_open) {
        gr_host_close(&pl->host);
        pl->host_open = false;
    }
}

int gr_pipeline_start_threads(struct gr_pipeline *pl, char *errmsg,
                              size_t errmsg_len)
{
    return gr_committer_start(&pl->c, errmsg, errmsg_len);
}

void gr_pipeline_stop_threads(struct gr_pipeline *pl)
{
    gr_committer_stop(&pl->c);
}

bool gr_pipeline_threaded(const struct gr_pipeline *pl)
{
    return gr_committer_running(&pl->c);
}

void gr_pipeline_propose(struct gr_pipeline *pl, struct gr_proposal *p)
{
    p->next = NULL;
    pl->n_uncommitted++;
    if (p->cmd.type != 0) {
        p->cmd.origin.node_id = pl->node_id;
        p->cmd.origin.incarnation = pl->incarnation;
        p->cmd.origin.seq = ++pl->seq;
        /* With one voter the log holds proposals in the order they are
         * queued: by the time this one applies, every lower seq has
         * applied or failed with its batch (and was queued again under a
         * new seq). */
        p->cmd.origin.low = p->cmd.origin.seq;
    }
    if (pl->tail == NULL) {
        pl->head = p;
    } else {
        pl->tail->next = p;
    }
    pl->tail = p;
    pl->n_queued++;
    kick(pl);
}

/* Batches started and not yet answered (each holds a slot). */
static uint64_t unanswered(const struct gr_pipeline *pl)
{
    return pl->gen_next - 1 - pl->gen_answered;
}

/* The oldest of them (meaningful while unanswered() > 0). */
static struct gr_batch *oldest_unanswered(struct gr_pipeline *pl)
{
    return &pl->slots[(pl->gen_answered + 1) % GR_BATCH_SLOTS];
}

/* True when batch b may be answered: its commit returned, and it failed
 * (nothing to wait for), stores nothing of its own, or every commit up to
 * `durable_gen` is durable and it is one of them. */
static bool answerable(const struct gr_batch *b, uint64_t durable_gen)
{
    return b->done && (b->rv != 0 || b->durable || b->gen <= durable_gen);
}

uint64_t gr_pipeline_busy_ms(const struct gr_pipeline *pl, uint64_t now_ms)
{
    if (pl->inflight == NULL || now_ms < pl->inflight_since_ms) {
        return 0;
    }
    return now_ms - pl->inflight_since_ms;
}

struct gr_batch *gr_pipeline_start(struct gr_pipeline *pl)
{
    struct gr_batch *b;

    if (!gr_pipeline_has_queued(pl) || pl->inflight != NULL ||
        unanswered(pl) >= GR_BATCH_SLOTS) {
        return NULL;
    }
    b = &pl->slots[pl->gen_next % GR_BATCH_SLOTS];
    b->gen = pl->gen_next++;
    b->props = pl->head;
    b->n_props = pl->n_queued;
    b->index = pl->next_index;
    b->rv = 0;
    b->done = false;
    b->durable = false;
    b->member = pl->is_member;
    b->transfer = pl->transfer_wanted;
    pl->transfer_wanted = false;
    b->read_ctx = 0;
    if (pl->read_wanted && pl->read_running == 0) {
        /* Every reader waiting now arrived before this round starts. */
        b->read_ctx = pl->read_next++;
        pl->read_running = b->read_ctx;
        pl->read_started_ms = gr_mono_us() / 1000;
        pl->read_wanted = false;
    }
    b->inbox = pl->inbox;
    b->out_after = NULL;
    pl->inbox = NULL;
    pl->inbox_end = &pl->inbox;
    pl->want_turn = false;
    pl->head = NULL;
    pl->tail = NULL;
    pl->n_queued = 0;
    pl->inflight = b;
    pl->inflight_since_ms = gr_mono_us() / 1000;
    pl->early_sent = false;
    pl->inflight_synced = !gr_committer_running(&pl->c);
    if (pl->inflight_synced) {
        /* No committer thread (start and close): write and sync here. */
        gr_committer_write(&pl->c, b);
    } else {
        gr_committer_hand(&pl->c, b);
    }
    return b;
}

/* The shared fields exist under a lock only while the threads may run. */
static void lock(struct gr_pipeline *pl)
{
    if (pl->c.sync_init) {
        gr_committer_lock(&pl->c);
    }
}

static void unlock(struct gr_pipeline *pl)
{
    if (pl->c.sync_init) {
        gr_committer_unlock(&pl->c);
    }
}

struct gr_batch *gr_pipeline_applied(struct gr_pipeline *pl)
{
    bool go;

    lock(pl);
    go = pl->inflight != NULL && pl->c.applied && !pl->early_sent;
    if (go) {
        pl->early_sent = true;
    }
    unlock(pl);
    return go ? pl->inflight : NULL;
}

struct gr_batch *gr_pipeline_collect(struct gr_pipeline *pl, bool *early)
{
    struct gr_batch *b = pl->inflight;
    uint64_t end;
    int rv;

    lock(pl);
    if (b == NULL || !pl->c.done) {
        unlock(pl);
        return NULL;
    }
    rv = pl->c.rv;
    end = pl->c.index_end;
    *early = pl->c.applied && !pl->early_sent;
    pl->early_sent = true;
    pl->c.done = false;
    pl->c.applied = false;
    unlock(pl);
    b->rv = rv;
    b->done = true;
    /* Synced here; or nothing appended: nothing of its own to wait for
     * (its replies still follow the earlier batches'). A member's turn
     * synced what it wrote, and what it applied was committed on a
     * majority before. */
    b->durable = pl->inflight_synced || end == pl->next_index || b->member;
    pl->inflight = NULL;
    pl->view = b->view;
    pl->n_uncommitted -= b->n_props;
    if (b->member) {
        pl->status = b->status;
        read_collected(pl, b);
        if (b->status.more) {
            pl->want_turn = true;
        }
        if (rv != 0) {
            /* The failed turn's undone proposals wait for the next. */
            pl->want_turn = true;
        }
        return b;
    }
    pl->n_batches++;
    pl->n_batched += end - pl->next_index;
    if (rv == 0) {
        pl->next_index = end;
    } else if (gr_host_needs_settle(&pl->host)) {
        /* A failed batch kept nothing, and raft/ started over from the
         * disk: it leads again (a new term, its no-op taking the first
         * index the failed batch had) before the next batch is numbered.
         * The committer is idle: the host is the loop's until the next
         * batch is handed over. */
        if (gr_host_settle(&pl->host, gr_mono_us() / 1000, gr_now_ms()) != 0) {
            GR_LOG(GR_LOG_CRIT, "pipeline",
                   "%s: stopping now, with nothing acknowledged that is not "
                   "on disk",
                   pl->host.errmsg);
            _exit(1);
        }
        pl->next_index = gr_host_next_index(&pl->host);
    }
    return b;
}

uint64_t gr_pipeline_durable(struct gr_pipeline *pl)
{
    uint64_t durable;

    if (!pl->c.sync_init) {
        return 0;
    }
    gr_committer_lock(&pl->c);
    durable = pl->c.durable_gen;
    gr_committer_unlock(&pl->c);
    return durable;
}

struct gr_batch *gr_pipeline_answer_next(struct gr_pipeline *pl,
                                         uint64_t durable)
{
    struct gr_batch *b;

    if (unanswered(pl) == 0) {
        return NULL;
    }
    b = oldest_unanswered(pl);
    if (!answerable(b, durable)) {
        return NULL;
    }
    pl->gen_answered = b->gen;
    return b;
}

uint64_t gr_pipeline_answered(const struct gr_pipeline *pl)
{
    return pl->gen_answered;
}

/* True when the batch in flight can be collected or the oldest
 * unanswered one answered. Called with the lock held. */
static bool progress(struct gr_pipeline *pl)
{
    if (pl->inflight != NULL && pl->c.done) {
        return true;
    }
    return unanswered(pl) == 0 ||
           answerable(oldest_unanswered(pl), pl->c.durable_gen);
}

void gr_pipeline_wait(struct gr_pipeline *pl)
{
    if (!pl->c.sync_init) {
        return; /* without threads nothing is ever left waiting */
    }
    gr_committer_lock(&pl->c);
    while (!progress(pl)) {
        gr_committer_wait(&pl->c);
    }
    gr_committer_unlock(&pl->c);
}

bool gr_pipeline_writing(const struct gr_pipeline *pl)
{
    return pl->inflight != NULL || unanswered(pl) > 0;
}

bool gr_pipeline_in_flight(const struct gr_pipeline *pl)
{
    return pl->inflight != NULL;
}

bool gr_pipeline_is_empty(const struct gr_pipeline *pl)
{
    return pl->inflight == NULL && pl->head == NULL;
}

bool gr_pipeline_has_queued(const struct gr_pipeline *pl)
{
    return pl->head != NULL || pl->inbox != NULL || pl->want_turn;
}

void gr_pipeline_stats(struct gr_pipeline *pl,
                       struct gr_pipeline_stats *out)
{
    out->n_batches = pl->n_batches;
    out->n_batched = pl->n_batched;
    out->n_syncs = pl->c.n_syncs;
    out->apply_us = pl->c.apply_us;
    out->commit_us = pl->c.commit_us;
    out->idle_us = pl->c.idle_us;
    if (pl->c.sync_init) {
        pthread_mutex_lock(&pl->c.lock);
    }
    out->commit_lat = pl->c.commit_lat;
    out->sync_lat = pl->c.sync_lat;
    gr_histo_merge(&out->sync_lat, &pl->c.turn_sync_lat);
    if (pl->c.sync_init) {
        pthread_mutex_unlock(&pl->c.lock);
    }
}
