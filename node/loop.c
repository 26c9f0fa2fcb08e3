/* SPDX-License-Identifier: BSD-3-Clause
 * node/loop.c - the server's event loop and its ONE write path.
 *
 * Proposals queue up while the loop reads sockets. A low-priority event
 * (priority 1 of 2) runs the batch once per turn, after every ready I/O
 * callback of that turn (libevent runs only the best priority that has
 * active events). The batch is one LMDB write transaction: encode, append
 * to the log, apply - for each proposal - then commit, which syncs. So one
 * fsync covers every job that arrived in the turn (group commit, redis's
 * beforeSleep), and no reply leaves before the commit that makes it true.
 *
 * The shape is Raft's, with one voter: propose() queues; the batch
 * "persists" the entries; gr_answer_committed() applies them and turns effects
 * into packets. raft/ will sit between the two without changing either
 * side's contract.
 *
 * Not here: request handling (gm_session.c), admin commands (admin.c).
 */
#include "node/loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "node/ahead.h"
#include "node/answer.h"
#include "node/gm_session.h"
#include "node/relay.h"

#define N_BUCKETS      4096
#define SPACE_CHECK_MS 200
#define RETRY_MS       1000
#define TERM           1 /* one voter: a single term until raft/ arrives */

struct gr_known_func {
    struct gr_known_func *next;
    size_t len;
    uint8_t name[];
};

static void run_batch(struct gr_server *srv);

/* ---------------------------------------------------------------------
 * Proposals.
 */

struct gr_proposal *gr_proposal_new(void)
{
    return gr_calloc(1, sizeof(struct gr_proposal));
}

void gr_proposal_free(struct gr_proposal *p)
{
    if (p == NULL) {
        return;
    }
    gm_packet_close(&p->pkt);
    gr_free(p->owned);
    if (p->local != NULL) {
        evbuffer_free(p->local);
    }
    if (p->after != NULL) {
        evbuffer_free(p->after);
    }
    gr_free(p);
}

struct store_conn_ref gr_conn_ref(const struct gr_server *srv, uint64_t conn_id)
{
    struct store_conn_ref r;

    r.node_id = srv->node_id;
    r.incarnation = srv->incarnation;
    r.conn_id = conn_id;
    return r;
}

/* True if p may take or drop queued jobs in ways the loop does not know
 * before it is applied: what a GRAB not naming its job takes, which jobs
 * a release, timeout, cancel or departure requeues or drops. A
 * submission only adds or joins, WORK_* ends running jobs, and a GRAB
 * naming its job takes that one. */
static bool may_take_or_drop(const struct gr_proposal *p)
{
    if (p->cmd.type == 0) {
        return false; /* local replies only */
    }
    switch (p->cmd.type) {
    case STORE_CMD_NOOP:
    case STORE_CMD_SUBMIT:
    case STORE_CMD_WORK:
        return false;
    case STORE_CMD_GRAB:
        return p->cmd.u.grab.job == 0;
    default:
        return true;
    }
}

/* A GRAB limited to jobs from min_job on: what it may take is bounded
 * (gr_pick_floor), so it does not blind the picks. */
static bool is_restricted(const struct gr_proposal *p)
{
    return p->cmd.type == STORE_CMD_GRAB && p->cmd.u.grab.min_job != 0;
}

/* p's effect on queued jobs is known now (applied or committed). */
static void unmark(struct gr_server *srv, struct gr_proposal *p)
{
    if (p->blind) {
        p->blind = false;
        srv->n_blind--;
    }
    if (p->restricted) {
        p->restricted = false;
        srv->n_restricted--;
    }
}

uint64_t gr_pick_floor(const struct gr_server *srv)
{
    const struct gr_proposal *p = srv->inflight;

    if (srv->n_restricted == 0) {
        return UINT64_MAX;
    }
    /* min_job only grows with the committed state, so the oldest such
     * GRAB not yet applied has the lowest. */
    for (; p != NULL; p = p->next) {
        if (p->restricted) {
            return p->cmd.u.grab.min_job;
        }
    }
    for (p = srv->head; p != NULL; p = p->next) {
        if (p->restricted) {
            return p->cmd.u.grab.min_job;
        }
    }
    return UINT64_MAX;
}

/* True if p may requeue a running job (worker or node gone, timeout): a
 * job the loop cannot see as queued until the batch is committed, and
 * that a GRAB limited by min_job would pass over - so p stays blind
 * until then. */
static bool requeues(const struct gr_proposal *p)
{
    return p->cmd.type == STORE_CMD_RELEASE ||
           p->cmd.type == STORE_CMD_JOB_TIMEOUT ||
           p->cmd.type == STORE_CMD_NODE_GONE;
}

/* Adds to srv->applied_out (add) or takes out of it the jobs that the
 * proposals of batch that may take or drop one did take or drop (their
 * ASSIGN and JOB_DONE effects in set). Returns false if out of memory. */
static bool taken_or_dropped(struct gr_server *srv, const struct gr_fxset *set,
                             const struct gr_proposal *batch, bool add)
{
    const struct gr_proposal *p;
    size_t i;

    for (p = batch; p != NULL; p = p->next) {
        for (i = p->fx_begin; may_take_or_drop(p) && i < p->fx_end; i++) {
            const struct store_effect *e = &set->fx.v[i];

            if (e->type != STORE_FX_ASSIGN && e->type != STORE_FX_JOB_DONE) {
                continue;
            }
            if (!add) {
                gr_numset_del(&srv->applied_out, e->job);
            } else if (gr_numset_add(&srv->applied_out, e->job) != 0) {
                return false;
            }
        }
    }
    return true;
}

/* The batch in set is applied: the jobs it took or dropped are known
 * now (ASSIGN, JOB_DONE), which is all its blind proposals could do to
 * queued jobs but requeue them (requeues); until it is committed, picks
 * pass over them. */
static void note_applied(struct gr_server *srv, struct gr_fxset *set,
                         struct gr_proposal *batch)
{
    struct gr_proposal *p;

    set->noted = true; /* settle_batch takes out whatever went in */
    if (!taken_or_dropped(srv, set, batch, true)) {
        return; /* out of memory: its proposals stay blind */
    }
    for (p = batch; p != NULL; p = p->next) {
        if (!requeues(p)) {
            unmark(srv, p);
        }
    }
}

/* The batch in set is committed (or failed): what it handed out, took or
 * dropped is now in the state the loop reads. */
static void settle_batch(struct gr_server *srv, struct gr_fxset *set,
                         struct gr_proposal *batch)
{
    struct gr_proposal *p;

    if (set->noted) {
        (void)taken_or_dropped(srv, set, batch, false);
    }
    set->noted = false;
    for (p = batch; p != NULL; p = p->next) {
        unmark(srv, p);
        srv->n_uncommitted--;
        if (p->unsure) {
            p->unsure = false;
            srv->n_unsure--;
            srv->n_limits -= p->cmd.type == STORE_CMD_MAXQUEUE;
        }
        if (p->cmd.type == STORE_CMD_GRAB && p->cmd.u.grab.job != 0) {
            gr_numset_del(&srv->handed_out, p->cmd.u.grab.job);
        }
    }
}

void gr_propose(struct gr_server *srv, struct gr_proposal *p)
{
    p->next = NULL;
    p->restricted = is_restricted(p);
    p->blind = may_take_or_drop(p) && !p->restricted;
    srv->n_blind += p->blind;
    srv->n_restricted += p->restricted;
    gr_ahead_classify(srv, p);
    srv->n_uncommitted++;
    if (p->cmd.type != 0) {
        p->cmd.origin.node_id = srv->node_id;
        p->cmd.origin.incarnation = srv->incarnation;
        p->cmd.origin.seq = ++srv->seq;
        /* With one voter the log holds proposals in the order they are
         * queued: by the time this one applies, every lower seq has
         * applied or failed with its batch (and was queued again under a
         * new seq). */
        p->cmd.origin.low = p->cmd.origin.seq;
    }
    if (srv->tail == NULL) {
        srv->head = p;
    } else {
        srv->tail->next = p;
    }
    srv->tail = p;
    if (srv->commit_ev != NULL && srv->inflight == NULL &&
        !event_pending(srv->commit_ev, EV_TIMEOUT, NULL)) {
        event_active(srv->commit_ev, EV_TIMEOUT, 0);
    }
}

/* ---------------------------------------------------------------------
 * Sessions by id.
 */

static size_t bucket_of(const struct gr_server *srv, uint64_t id)
{
    return (size_t)(id * 0x9E3779B97F4A7C15ull >> 40) % srv->n_buckets;
}

struct gm_session *gr_session_find(struct gr_server *srv, uint64_t conn_id)
{
    struct gm_session *s = srv->buckets[bucket_of(srv, conn_id)];

    while (s != NULL && s->conn_id != conn_id) {
        s = s->hnext;
    }
    return s;
}

void gr_session_register(struct gr_server *srv, struct gm_session *s)
{
    size_t b;

    s->conn_id = ++srv->next_conn_id;
    b = bucket_of(srv, s->conn_id);
    s->hnext = srv->buckets[b];
    srv->buckets[b] = s;
    s->prev = NULL;
    s->next = srv->sessions;
    if (srv->sessions != NULL) {
        srv->sessions->prev = s;
    }
    srv->sessions = s;
    srv->n_sessions++;
}

void gr_session_unregister(struct gr_server *srv, struct gm_session *s)
{
    struct gm_session **pp = &srv->buckets[bucket_of(srv, s->conn_id)];

    while (*pp != NULL && *pp != s) {
        pp = &(*pp)->hnext;
    }
    if (*pp == s) {
        *pp = s->hnext;
    }
    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else if (srv->sessions == s) {
        srv->sessions = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    }
    s->next = NULL;
    s->prev = NULL;
    srv->n_sessions--;
}

void gr_session_want_flush(struct gr_server *srv, struct gm_session *s)
{
    if (s->in_flush || s->state == GM_SS_CLOSED) {
        return;
    }
    s->in_flush = true;
    s->flush_next = srv->flush_list;
    srv->flush_list = s;
}

void gr_sessions_flush(struct gr_server *srv)
{
    struct gm_session *s;

    while ((s = srv->flush_list) != NULL) {
        srv->flush_list = s->flush_next;
        s->flush_next = NULL;
        s->in_flush = false;
        gm_session_flush(s);
    }
}

void gr_session_reap_later(struct gr_server *srv, struct gm_session *s)
{
    s->dead_next = srv->dead;
    srv->dead = s;
    event_active(srv->reap_ev, EV_TIMEOUT, 0);
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    struct gr_server *srv = arg;
    struct gm_session *s;
    struct gm_session **pp;

    (void)fd;
    (void)what;
    /* A dead session may still sit on the flush list. */
    pp = &srv->flush_list;
    while (*pp != NULL) {
        if ((*pp)->state == GM_SS_CLOSED) {
            (*pp)->in_flush = false;
            *pp = (*pp)->flush_next;
        } else {
            pp = &(*pp)->flush_next;
        }
    }
    while ((s = srv->dead) != NULL) {
        srv->dead = s->dead_next;
        gm_session_free(s);
    }
}

/* ---------------------------------------------------------------------
 * Known functions (CAN_DO), for admin status.
 */

int gr_known_func_add(struct gr_server *srv, const uint8_t *name, size_t len)
{
    struct gr_known_func *k;
    struct gr_proposal *p;

    for (k = srv->known; k != NULL; k = k->next) {
        if (k->len == len && memcmp(k->name, name, len) == 0) {
            return 0;
        }
    }
    k = gr_malloc(sizeof(*k) + len);
    p = gr_proposal_new();
    if (k == NULL || p == NULL || (p->owned = gr_malloc(len + 1)) == NULL) {
        gr_free(k);
        gr_proposal_free(p);
        return GR_ENOMEM;
    }
    k->len = len;
    if (len > 0) {
        memcpy(k->name, name, len);
        memcpy(p->owned, name, len);
    }
    k->next = srv->known;
    srv->known = k;
    /* gearmand creates a function on CAN_DO (status lists it at 0 0 N); so
     * do we, durably, once per name and process. Nobody waits for the
     * reply: the admin ref names no connection. */
    p->cmd.type = STORE_CMD_FUNC_CREATE;
    p->cmd.u.admin.admin = gr_conn_ref(srv, 0);
    p->cmd.u.admin.function.base = p->owned;
    p->cmd.u.admin.function.len = len;
    p->retry = true;
    gr_propose(srv, p);
    return 0;
}

void gr_known_func_remove(struct gr_server *srv, const uint8_t *name,
                          size_t len)
{
    struct gr_known_func **pp = &srv->known;

    while (*pp != NULL) {
        if ((*pp)->len == len && memcmp((*pp)->name, name, len) == 0) {
            struct gr_known_func *k = *pp;

            *pp = k->next;
            gr_free(k);
            return;
        }
        pp = &(*pp)->next;
    }
}

void gr_known_func_walk(struct gr_server *srv, gr_known_fn fn, void *arg)
{
    struct gr_known_func *k;

    for (k = srv->known; k != NULL; k = k->next) {
        fn(arg, k->name, k->len);
    }
}

/* ---------------------------------------------------------------------
 * Space, wake-ups and the epoch timer.
 */

static void check_space(struct gr_server *srv, bool force)
{
    struct store_stat st;
    uint64_t now = gr_now_ms();
    uint64_t map_need;
    bool ok;

    if (!force && now - srv->space_checked_ms < SPACE_CHECK_MS) {
        return;
    }
    srv->space_checked_ms = now;
    srv->space_admitted = 0;
    if (store_stat(srv->store, &st) != 0) {
        return;
    }
    /* A map smaller than 8x the threshold (tests) keeps 1/8 free. */
    map_need = srv->cfg->min_free_space;
    if (map_need > st.map_size / 8) {
        map_need = st.map_size / 8;
    }
    /* Look again before a quarter of the headroom can have been
     * admitted since this look, however fast submissions come. */
    srv->space_recheck = map_need / 4;
    ok =
        st.map_size - (st.map_used < st.map_size ? st.map_used : st.map_size) >=
            map_need &&
        st.disk_free >= srv->cfg->min_free_space;
    if (ok != srv->space_ok) {
        if (ok) {
            GR_LOG(GR_LOG_WARN, "loop",
                   "storage headroom is back: accepting submissions");
        } else {
            GR_LOG(GR_LOG_ERROR, "loop",
                   "storage nearly full (map %llu of %llu bytes used, disk "
                   "%llu bytes free): refusing submissions",
                   (unsigned long long)st.map_used,
                   (unsigned long long)st.map_size,
                   (unsigned long long)st.disk_free);
        }
    }
    srv->space_ok = ok;
}

bool gr_server_has_space(struct gr_server *srv, size_t bytes)
{
    check_space(srv, srv->space_admitted >= srv->space_recheck);
    srv->space_admitted += bytes;
    return srv->space_ok;
}

void gr_server_wake(struct gr_server *srv, const struct store_buf *funcs,
                    size_t *budget, size_t n)
{
    struct gm_session *s;
    struct gm_session *next;
    size_t i;

    /* gm_session_wake() takes a session off the list: keep `next`. */
    for (s = srv->sleepers; s != NULL; s = next) {
        next = s->sleep_next;
        if (funcs == NULL) {
            gm_session_wake(s);
            continue;
        }
        for (i = 0; i < n; i++) {
            if ((budget == NULL || budget[i] > 0) &&
                gm_session_can_do(s, funcs[i].base, funcs[i].len)) {
                gm_session_wake(s);
                if (budget != NULL) {
                    budget[i]--;
                }
                break;
            }
        }
    }
}

static void arm_due_timer(struct gr_server *srv)
{
    struct store_txn *txn;
    uint64_t now = gr_now_ms();
    uint64_t due = 0;
    struct timeval tv;

    if (store_txn_begin(srv->store, false, &txn) != 0) {
        return;
    }
    if (store_next_due(txn, now, &due) != 0) {
        due = 0;
    }
    store_txn_abort(txn);
    if (due == 0) {
        return;
    }
    due = due > now ? due - now : 0;
    /* Fire a little after the due second so the job is runnable. */
    due += 5;
    tv.tv_sec = (time_t)(due / 1000);
    tv.tv_usec = (suseconds_t)(due % 1000) * 1000;
    evtimer_add(srv->due_ev, &tv);
}

/* 1.1.x never woke a sleeping worker when an epoch job fell due (#101);
 * gearraftd does. */
static void on_due(evutil_socket_t fd, short what, void *arg)
{
    struct gr_server *srv = arg;

    (void)fd;
    (void)what;
    gr_server_wake(srv, NULL, NULL, 0);
    gr_sessions_flush(srv);
    arm_due_timer(srv);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct gr_server *srv = arg;
    struct gr_proposal *p;

    (void)fd;
    (void)what;
    while ((p = srv->retry_head) != NULL) {
        srv->retry_head = p->next;
        p->retry = true;
        gr_propose(srv, p);
    }
}

/* ---------------------------------------------------------------------
 * The batch: one write transaction per turn.
 */

static int append_and_apply(struct store_txn *txn, struct store_effects *fx,
                            struct gr_proposal *p, uint64_t index, uint64_t now)
{
    struct store_entry e;
    int rv;

    memset(&e, 0, sizeof(e));
    e.index = index;
    e.term = TERM;
    e.leader_time_ms = now;
    e.type = STORE_ENTRY_COMMAND;
    rv = store_log_append_cmd(txn, &e, &p->cmd);
    if (rv != 0) {
        return rv;
    }
    p->fx_begin = fx->n;
    rv = store_apply(txn, index, now, &p->cmd, fx);
    p->fx_end = fx->n;
    return rv;
}

/* Frees a dispatched batch (ok: committed, not failed); internal
 * commands of a failed batch (worker or client gone, timeouts) must
 * still happen, so they move to the retry list instead. */
static void free_batch(struct gr_server *srv, struct gr_proposal *batch,
                       bool ok)
{
    struct gr_proposal *p;
    struct timeval tv = {RETRY_MS / 1000, 0};
    bool retry = false;

    while ((p = batch) != NULL) {
        batch = p->next;
        if (p->handed_to != 0) {
            gr_relay_submit_done(srv, p, ok);
        }
        if (p->retry) {
            p->next = srv->retry_head;
            srv->retry_head = p;
            retry = true;
            continue;
        }
        gr_proposal_free(p);
    }
    if (retry && srv->retry_ev != NULL) {
        evtimer_add(srv->retry_ev, &tv);
    }
}

/* Sessions that wait to read state until no batch is in flight. (A
 * session that holds a frame only behind its own proposals is resumed
 * when they are answered, gm_session_proposal_done.) */
static void resume_readers(struct gr_server *srv)
{
    struct gm_session *s;
    struct gm_session *next;

    for (s = srv->sessions; s != NULL && srv->n_wait_readers > 0; s = next) {
        next = s->next;
        if (s->state == GM_SS_WAIT_COMMIT && s->held_reads) {
            gm_session_resume(s);
        }
    }
    gr_sessions_flush(srv);
}

/* Bookkeeping of a batch that ended, done before the next one may start:
 * the next batch's first index. */
static void account_batch(struct gr_server *srv, uint64_t index, int rv)
{
    srv->n_batches++;
    srv->n_batched += index - srv->next_index;
    if (rv != 0) {
        return; /* nothing of it was kept: the next batch reuses its indexes */
    }
    srv->next_index = index;
}

/* Batches started and not yet answered (each holds an effect set). */
static uint64_t unanswered(const struct gr_server *srv)
{
    return srv->gen_next - 1 - srv->gen_answered;
}

/* The oldest of them (meaningful while unanswered() > 0). */
static struct gr_fxset *oldest_unanswered(struct gr_server *srv)
{
    return &srv->fxs[(srv->gen_answered + 1) % GR_FXSETS];
}

bool gr_server_writing(const struct gr_server *srv)
{
    return srv->inflight != NULL || unanswered(srv) > 0;
}

/* After the commit (or its failure) of a batch already accounted for,
 * once it is durable: answer from srv->fxd, free, and start the next
 * batch if proposals queued up meanwhile (unless it started already). */
static void finish_batch(struct gr_server *srv, struct gr_proposal *batch,
                         bool epoch, int rv)
{
    struct gr_proposal *p;

    if (rv != 0) {
        for (p = batch; p != NULL; p = p->next) {
            p->retry = p->retry && p->conn_id == 0 && p->cmd.type != 0;
        }
        gr_answer_failed(srv, batch, rv);
        free_batch(srv, batch, false);
        gr_sessions_flush(srv);
        goto next;
    }
    for (p = batch; p != NULL; p = p->next) {
        p->retry = false;
    }
    gr_answer_committed(srv, batch);
    /* Workers that went to sleep while the commit ran read the state
     * without this batch: wake them now (at most one NOOP each). */
    gr_answer_wake(srv);
    free_batch(srv, batch, true);
    check_space(srv, false);
    if (epoch) {
        arm_due_timer(srv);
    }
    gr_sessions_flush(srv);
next:
    if (!gr_server_writing(srv)) {
        resume_readers(srv);
    }
    if (srv->inflight != NULL) {
        /* The next batch is on its way already; it ends in on_done. */
    } else if (srv->head != NULL) {
        event_active(srv->commit_ev, EV_TIMEOUT, 0);
    } else if (srv->stopping && !srv->graceful && !gr_server_writing(srv)) {
        event_base_loopexit(srv->base, NULL);
    }
}

/* True when batch `set` may be answered: its commit returned, and it
 * failed (nothing to wait for), stores nothing of its own, or every commit
 * up to `durable_gen` is durable and it is one of them. */
static bool answerable(const struct gr_fxset *set, uint64_t durable_gen)
{
    return set->done &&
           (set->rv != 0 || set->durable || set->gen <= durable_gen);
}

/* Loop thread: answers, in order, every batch whose commit returned and
 * is durable (or failed: nothing to wait for). */
static void answer_durable(struct gr_server *srv)
{
    uint64_t durable = 0;

    if (srv->c_sync_init) {
        pthread_mutex_lock(&srv->c_lock);
        durable = srv->c_durable_gen;
        pthread_mutex_unlock(&srv->c_lock);
    }
    while (unanswered(srv) > 0) {
        struct gr_fxset *set = oldest_unanswered(srv);

        if (!answerable(set, durable)) {
            break;
        }
        srv->gen_answered = set->gen;
        srv->fxd = set;
        finish_batch(srv, set->batch, set->epoch, set->rv);
        set->batch = NULL;
    }
}

/* ---------------------------------------------------------------------
 * The batch worker. LMDB wants a write transaction begun, used and
 * committed by one thread, so the whole write - begin, append, apply,
 * commit (fsync) - runs on the committer thread while the loop goes on
 * reading sockets and queueing the next batch. Read transactions on the
 * loop thread see the last committed state (MVCC; the environment is
 * opened MDB_NOTLS). The loop hands over one batch at a time and touches
 * neither the batch nor its effect set until the thread says "applied"
 * (early effects may then leave while the disk syncs) and "done".
 *
 * A commit syncs the batch's pages and writes, without syncing, the meta
 * page that makes the batch current (MDB_NOMETASYNC, as DESIGN.md allows):
 * after a crash before that page reaches the disk, the file is the
 * previous batch's, intact. The batch is durable once the syncer thread's
 * next sync returns or the next commit (whose sync covers that page) does,
 * whichever comes first; only then do its late replies (JOB_CREATED,
 * admin) leave. So the meta page's sync overlaps the next batch instead of
 * lengthening every commit.
 *
 * When a batch is done, the loop hands over the next one FIRST and only
 * then answers what is durable: the replies (hundreds of socket writes
 * under load) overlap the next apply and sync instead of delaying them.
 * Replies keep their order per connection: batches are answered in order,
 * and a session with a late reply still unanswered gets no early one (its
 * late_gen is past gen_answered).
 */

/* A write or sync of the data file failed, and not for want of space:
 * the kernel may have dropped the pages it could not write, and no later
 * sync could tell (a commit after it could even point at them). So the
 * node stops at once, from whichever thread found it, as if it had
 * crashed: nothing written since is ever acknowledged, and a restart reads
 * what is really on disk, where every acknowledged job is. */
static void storage_failed(struct gr_server *srv, const char *what)
{
    GR_LOG(GR_LOG_CRIT, "loop",
           "%s failed (%s): stopping now, without acknowledging anything "
           "not yet durable; restart gearraftd once the disk is healthy",
           what, store_errmsg(srv->store));
    _exit(1);
}

/* A commit failed with EIO. On a full file system LMDB's page writes come
 * up short, which it reports as EIO too: that failure comes before any
 * sync, nothing acknowledged is at risk, and the batch is refused as for a
 * full disk (STORE_ENOSPC) while the node goes on. Otherwise the node
 * stops. */
static int commit_failed(struct gr_server *srv)
{
    struct store_stat st;

    if (store_stat(srv->store, &st) == 0 &&
        st.disk_free < srv->cfg->min_free_space) {
        return STORE_ENOSPC;
    }
    storage_failed(srv, "committing a batch");
    return STORE_EIO;
}

/* Runs on either thread. Sets *index_end; returns the store code. */
static int batch_work(struct gr_server *srv, struct gr_proposal *batch,
                      struct gr_fxset *set, uint64_t index, uint64_t *index_end,
                      bool threaded)
{
    struct gr_proposal *p;
    struct store_txn *txn;
    const uint64_t start = index;
    uint64_t now = gr_now_ms();
    uint64_t t0 = gr_mono_us();
    uint64_t t1;
    int rv;

    *index_end = index;
    store_effects_reset(&set->fx);
    set->sent_valid = false;
    set->wake_set = false;
    rv = store_txn_begin(srv->store, true, &txn);
    if (rv != 0) {
        return rv;
    }
    for (p = batch; p != NULL; p = p->next) {
        if (p->cmd.type == 0) {
            continue;
        }
        rv = append_and_apply(txn, &set->fx, p, index, now);
        if (rv != 0) {
            store_txn_abort(txn);
            return rv;
        }
        index++;
    }
    /* Compact the log behind the applied index: with one voter nobody
     * needs an entry once it is applied, which is in this transaction. The
     * entries are deleted before the commit that wrote them, so LMDB never
     * writes their pages: the log adds no page writes to the batch. */
    if (index > start) {
        rv = store_log_compact(txn, index - 1);
        if (rv != 0) {
            store_txn_abort(txn);
            return rv;
        }
    }
    *index_end = index;
    if (threaded) {
        pthread_mutex_lock(&srv->c_lock);
        srv->c_applied = true;
        pthread_mutex_unlock(&srv->c_lock);
        event_active(srv->applied_ev, EV_READ, 0);
    } else {
        srv->fxd = set;
        note_applied(srv, set, batch);
        gr_answer_early(srv, batch);
    }
    t1 = gr_mono_us();
    rv = store_txn_commit(txn); /* releases txn whatever the result */
    if (rv == STORE_EIO) {
        rv = commit_failed(srv);
    }
    srv->apply_us += t1 - t0;
    srv->commit_us += gr_mono_us() - t1;
    return rv;
}

static void *committer_main(void *arg)
{
    struct gr_server *srv = arg;
    struct gr_proposal *batch;
    struct gr_fxset *set;
    uint64_t start;
    uint64_t end = 0;
    int rv;

    pthread_mutex_lock(&srv->c_lock);
    for (;;) {
        uint64_t t0 = gr_mono_us();

        while (srv->c_batch == NULL && !srv->c_quit) {
            pthread_cond_wait(&srv->c_cond, &srv->c_lock);
        }
        if (srv->c_batch == NULL) {
            break;
        }
        srv->idle_us += gr_mono_us() - t0;
        batch = srv->c_batch;
        set = srv->c_fxs;
        start = srv->c_index;
        pthread_mutex_unlock(&srv->c_lock);
        /* Between write transactions, on the one thread that runs them:
         * no error of its own to act on (the commit grows the file then,
         * and reports what the disk says). */
        (void)store_grow_ahead(srv->store);
        rv = batch_work(srv, batch, set, start, &end, true);
        pthread_mutex_lock(&srv->c_lock);
        if (rv == 0 && end > start) {
            /* This commit synced the file after the previous commit had
             * written its meta page: that one is durable now. (A batch
             * of local replies only appends nothing, and LMDB commits an
             * unchanged transaction without a sync: no claim then.) */
            if (srv->c_committed_gen > srv->c_durable_gen) {
                srv->c_durable_gen = srv->c_committed_gen;
            }
            srv->c_committed_gen = srv->c_gen;
            pthread_cond_signal(&srv->s_cond);
        }
        srv->c_batch = NULL;
        srv->c_rv = rv;
        srv->c_index_end = end;
        srv->c_done = true;
        pthread_cond_broadcast(&srv->c_cond);
        event_active(srv->done_ev, EV_READ, 0);
    }
    pthread_mutex_unlock(&srv->c_lock);
    return NULL;
}

/* The syncer thread: after each commit, syncs the file so that the
 * commit's meta page is durable - while the committer already writes the
 * next batch - and tells the loop. */
static void *syncer_main(void *arg)
{
    struct gr_server *srv = arg;
    uint64_t target;

    pthread_mutex_lock(&srv->c_lock);
    for (;;) {
        while (srv->c_committed_gen <= srv->c_durable_gen && !srv->c_quit) {
            pthread_cond_wait(&srv->s_cond, &srv->c_lock);
        }
        if (srv->c_committed_gen <= srv->c_durable_gen) {
            break;
        }
        target = srv->c_committed_gen;
        pthread_mutex_unlock(&srv->c_lock);
        if (store_sync(srv->store) != 0) {
            storage_failed(srv, "syncing the data file");
        }
        pthread_mutex_lock(&srv->c_lock);
        srv->n_syncs++;
        if (target > srv->c_durable_gen) {
            srv->c_durable_gen = target;
        }
        pthread_cond_broadcast(&srv->c_cond);
        event_active(srv->durable_ev, EV_READ, 0);
    }
    pthread_mutex_unlock(&srv->c_lock);
    return NULL;
}

/* Loop thread: the batch in flight is applied; its early effects (and
 * wake-ups) may leave now, while the thread syncs. */
static void on_applied(evutil_socket_t fd, short what, void *arg)
{
    struct gr_server *srv = arg;
    bool go;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&srv->c_lock);
    go = srv->inflight != NULL && srv->c_applied && !srv->early_sent;
    if (go) {
        srv->early_sent = true;
    }
    pthread_mutex_unlock(&srv->c_lock);
    if (go) {
        srv->fxd = srv->c_fxs;
        note_applied(srv, srv->c_fxs, srv->inflight);
        gr_answer_early(srv, srv->inflight);
    }
}

/* True if a session holds a request that reads queue state: such reads
 * run only while no batch is being written, so the next batch waits for
 * them rather than starving them under load. */
static bool readers_waiting(const struct gr_server *srv)
{
    return srv->n_wait_readers > 0;
}

/* Loop thread: the batch in flight has committed (or failed). */
static void collect_inflight(struct gr_server *srv)
{
    struct gr_fxset *set;
    uint64_t end;
    bool early;
    int rv;

    pthread_mutex_lock(&srv->c_lock);
    if (srv->inflight == NULL || !srv->c_done) {
        pthread_mutex_unlock(&srv->c_lock);
        return;
    }
    rv = srv->c_rv;
    end = srv->c_index_end;
    early = srv->c_applied && !srv->early_sent;
    srv->early_sent = true;
    srv->c_done = false;
    srv->c_applied = false;
    pthread_mutex_unlock(&srv->c_lock);
    set = srv->c_fxs;
    set->rv = rv;
    set->done = true;
    /* Nothing appended: nothing of its own to wait for (its replies still
     * follow the earlier batches'). */
    set->durable = end == srv->next_index;
    srv->inflight = NULL;
    settle_batch(srv, set, set->batch);
    if (rv != 0) {
        gr_ahead_failed(srv, set->batch, srv->next_index);
    }
    account_batch(srv, end, rv);
    if (srv->head != NULL && !srv->closing_all && !readers_waiting(srv)) {
        run_batch(srv); /* the next batch overlaps the answers below */
    }
    if (early) {
        srv->fxd = set;
        gr_answer_early(srv, set->batch);
    }
    answer_durable(srv);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    collect_inflight(arg);
}

static void on_durable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    answer_durable(arg);
}

/* True when the oldest unanswered batch can be answered or the one in
 * flight collected. Called with c_lock held. */
static bool batch_progress(struct gr_server *srv)
{
    if (srv->inflight != NULL && srv->c_done) {
        return true;
    }
    return unanswered(srv) == 0 ||
           answerable(oldest_unanswered(srv), srv->c_durable_gen);
}

/* Waits until no batch is written or waits to be durable, answering
 * each. */
static void wait_inflight(struct gr_server *srv)
{
    while (gr_server_writing(srv)) {
        pthread_mutex_lock(&srv->c_lock);
        while (!batch_progress(srv)) {
            pthread_cond_wait(&srv->c_cond, &srv->c_lock);
        }
        pthread_mutex_unlock(&srv->c_lock);
        collect_inflight(srv);
        answer_durable(srv);
    }
}

static void run_batch(struct gr_server *srv)
{
    struct gr_proposal *batch = srv->head;
    uint64_t end = srv->next_index;
    struct gr_fxset *set;
    int rv;

    if (batch == NULL || srv->inflight != NULL ||
        unanswered(srv) >= GR_FXSETS) {
        return; /* it starts when the one in flight ends or is answered */
    }
    set = &srv->fxs[srv->gen_next % GR_FXSETS];
    set->gen = srv->gen_next++;
    set->batch = batch;
    set->epoch = srv->epoch_pending;
    set->done = false;
    set->durable = false;
    set->rv = 0;
    srv->head = NULL;
    srv->tail = NULL;
    srv->epoch_pending = false;
    if (srv->c_started && !srv->closing_all) {
        pthread_mutex_lock(&srv->c_lock);
        srv->inflight = batch;
        srv->early_sent = false;
        srv->c_applied = false;
        srv->c_done = false;
        srv->c_index = srv->next_index;
        srv->c_fxs = set;
        srv->c_gen = set->gen;
        srv->c_batch = batch;
        pthread_cond_signal(&srv->c_cond);
        pthread_mutex_unlock(&srv->c_lock);
        return;
    }
    /* No committer thread (start and close): write, sync, answer here. */
    rv = batch_work(srv, batch, set, srv->next_index, &end, false);
    settle_batch(srv, set, batch);
    if (rv != 0) {
        gr_ahead_failed(srv, batch, srv->next_index);
    }
    account_batch(srv, end, rv);
    if (rv == 0 && store_sync(srv->store) != 0) {
        storage_failed(srv, "syncing the data file");
    }
    set->rv = rv;
    set->done = true;
    set->durable = true;
    answer_durable(srv);
}

static void on_commit(evutil_socket_t fd, short what, void *arg)
{
    struct gr_server *srv = arg;

    (void)fd;
    (void)what;
    run_batch(srv);
    if (srv->stopping && !srv->graceful && srv->head == NULL &&
        !gr_server_writing(srv)) {
        event_base_loopexit(srv->base, NULL);
    }
}

/* ---------------------------------------------------------------------
 * Accepting, signals, start and stop.
 */

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
                      struct sockaddr *sa, int socklen, void *arg)
{
    struct gr_server *srv = arg;
    struct gm_session *s;
    char ip[64] = "-";
    int one = 1;

    (void)l;
    (void)socklen;
    if (srv->stopping || srv->n_sessions >= srv->cfg->max_connections) {
        GR_LOG(GR_LOG_WARN, "loop", "connection refused: %s",
               srv->stopping ? "shutting down" : "--max-connections reached");
        close(fd);
        return;
    }
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)sa)->sin_addr, ip,
                  sizeof(ip));
    } else if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)sa)->sin6_addr, ip,
                  sizeof(ip));
    }
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1) {
        GR_LOG(GR_LOG_DEBUG, "loop", "TCP_NODELAY: %s", strerror(errno));
    }
    if (gm_session_new(srv, fd, ip, &s) != 0) {
        GR_LOG(GR_LOG_ERROR, "loop", "out of memory: connection dropped");
        return;
    }
    GR_LOG(GR_LOG_DEBUG, "loop", "conn=%llu accepted from %s",
           (unsigned long long)s->conn_id, ip);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct gr_server *srv = arg;

    (void)what;
    GR_LOG(GR_LOG_NOTICE, "loop", "signal %d: shutting down", (int)sig);
    gr_server_shutdown(srv, false);
}

static uint64_t running_jobs(struct gr_server *srv);

static void on_graceful_check(evutil_socket_t fd, short what, void *arg)
{
    struct gr_server *srv = arg;

    (void)fd;
    (void)what;
    if (running_jobs(srv) == 0 && srv->head == NULL &&
        !gr_server_writing(srv)) {
        event_base_loopexit(srv->base, NULL);
        return;
    }
    {
        struct timeval tv = {0, 100000};

        evtimer_add(srv->retry_ev, &tv);
    }
}

static int count_running(void *arg, const struct store_func_info *f)
{
    *(uint64_t *)arg += f->running;
    return 0;
}

static uint64_t running_jobs(struct gr_server *srv)
{
    struct store_txn *txn;
    uint64_t n = 0;

    if (store_txn_begin(srv->store, false, &txn) != 0) {
        return 0;
    }
    if (store_funcs_walk(txn, count_running, &n) != 0) {
        n = 0;
    }
    store_txn_abort(txn);
    return n;
}

void gr_server_shutdown(struct gr_server *srv, bool graceful)
{
    struct timeval tv = {0, 0};
    struct gm_session *s;

    if (srv->listener != NULL) {
        evconnlistener_disable(srv->listener);
    }
    srv->stopping = true;
    srv->graceful = graceful;
    if (graceful) {
        /* Reuse the retry timer's slot for the periodic check. */
        event_free(srv->retry_ev);
        srv->retry_ev = evtimer_new(srv->base, on_graceful_check, srv);
        if (srv->retry_ev != NULL) {
            evtimer_add(srv->retry_ev, &tv);
        }
        return;
    }
    /* Stop reading requests, so that a steady stream of them cannot keep
     * the loop alive; the batch of this turn still commits, then the loop
     * ends. */
    for (s = srv->sessions; s != NULL; s = s->next) {
        event_del(s->read_ev);
    }
    if (srv->head != NULL || gr_server_writing(srv)) {
        event_active(srv->commit_ev, EV_TIMEOUT, 0);
    } else {
        event_base_loopexit(srv->base, NULL);
    }
}

static int open_listener(struct gr_server *srv)
{
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    char port[16];
    int rv;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%u", (unsigned)srv->cfg->port);
    rv = getaddrinfo(srv->cfg->listen, port, &hints, &res);
    if (rv != 0) {
        snprintf(srv->errmsg, sizeof(srv->errmsg), "resolving %.100s: %s",
                 srv->cfg->listen, gai_strerror(rv));
        return GR_EIO;
    }
    srv->listener = evconnlistener_new_bind(
        srv->base, on_accept, srv,
        LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
        srv->cfg->backlog, res->ai_addr, (int)res->ai_addrlen);
    freeaddrinfo(res);
    if (srv->listener == NULL) {
        snprintf(srv->errmsg, sizeof(srv->errmsg),
                 "listening on %.100s port %u: %s", srv->cfg->listen,
                 (unsigned)srv->cfg->port, strerror(errno));
        return GR_EIO;
    }
    return 0;
}

static int recover_index(struct gr_server *srv)
{
    struct store_txn *txn;
    uint64_t first = 0;
    uint64_t last = 0;
    uint64_t applied = 0;
    int rv;

    rv = store_txn_begin(srv->store, false, &txn);
    if (rv != 0) {
        return rv;
    }
    rv = store_log_bounds(txn, &first, &last);
    if (rv == 0) {
        rv = store_applied_index(txn, &applied);
    }
    store_txn_abort(txn);
    if (rv != 0) {
        return rv;
    }
    if (applied > last) {
        last = applied;
    }
    srv->next_index = last + 1;
    return 0;
}

static int start_thread(struct gr_server *srv, pthread_t *tid,
                        void *(*fn)(void *), const char *name)
{
    if (pthread_create(tid, NULL, fn, srv) != 0) {
        snprintf(srv->errmsg, sizeof(srv->errmsg), "cannot start the %s thread",
                 name);
        return GR_ENOMEM;
    }
    return 0;
}

/* The server's own events. Errors: GR_ENOMEM. */
static int new_events(struct gr_server *srv)
{
    struct event_base *base = srv->base;

    srv->commit_ev = event_new(base, -1, 0, on_commit, srv);
    srv->done_ev = event_new(base, -1, 0, on_done, srv);
    srv->applied_ev = event_new(base, -1, 0, on_applied, srv);
    srv->durable_ev = event_new(base, -1, 0, on_durable, srv);
    srv->reap_ev = event_new(base, -1, 0, on_reap, srv);
    srv->due_ev = evtimer_new(base, on_due, srv);
    srv->retry_ev = evtimer_new(base, on_retry, srv);
    srv->sig_ev[0] = evsignal_new(base, SIGTERM, on_signal, srv);
    srv->sig_ev[1] = evsignal_new(base, SIGINT, on_signal, srv);
    if (srv->commit_ev == NULL || srv->reap_ev == NULL ||
        srv->done_ev == NULL || srv->applied_ev == NULL ||
        srv->durable_ev == NULL || srv->due_ev == NULL ||
        srv->retry_ev == NULL || srv->sig_ev[0] == NULL ||
        srv->sig_ev[1] == NULL) {
        snprintf(srv->errmsg, sizeof(srv->errmsg), "out of memory");
        return GR_ENOMEM;
    }
    event_priority_set(srv->commit_ev, 1);
    event_priority_set(srv->reap_ev, 0);
    event_priority_set(srv->done_ev, 0);
    event_priority_set(srv->applied_ev, 0);
    event_priority_set(srv->durable_ev, 0);
    event_add(srv->sig_ev[0], NULL);
    event_add(srv->sig_ev[1], NULL);
    return 0;
}

/* Jobs held by the previous run's workers go back to the queue before
 * anyone is served; their handles stay the same. Errors: GR_ENOMEM,
 * GR_ESTORE. */
static int requeue_previous(struct gr_server *srv)
{
    struct gr_proposal *p;

    if (srv->incarnation <= 1) {
        return 0;
    }
    p = gr_proposal_new();
    if (p == NULL) {
        return GR_ENOMEM;
    }
    p->cmd.type = STORE_CMD_NODE_GONE;
    p->cmd.u.node_gone.node_id = srv->node_id;
    p->cmd.u.node_gone.incarnation = srv->incarnation - 1;
    p->cmd.u.node_gone.max_retries = srv->cfg->job_retries;
    gr_propose(srv, p);
    run_batch(srv);
    if (srv->retry_head != NULL) {
        snprintf(srv->errmsg, sizeof(srv->errmsg),
                 "requeueing the previous run's jobs failed: %s",
                 store_errmsg(srv->store));
        return GR_ESTORE;
    }
    return 0;
}

/* The syncer and the committer, and their locks. */
static int start_threads(struct gr_server *srv)
{
    int rv;

    if (pthread_mutex_init(&srv->c_lock, NULL) != 0 ||
        pthread_cond_init(&srv->c_cond, NULL) != 0 ||
        pthread_cond_init(&srv->s_cond, NULL) != 0) {
        snprintf(srv->errmsg, sizeof(srv->errmsg), "cannot create locks");
        return GR_ENOMEM;
    }
    srv->c_sync_init = true;
    rv = start_thread(srv, &srv->s_thread, syncer_main, "syncer");
    if (rv != 0) {
        return rv;
    }
    srv->s_started = true;
    rv = start_thread(srv, &srv->c_thread, committer_main, "committer");
    if (rv != 0) {
        return rv;
    }
    srv->c_started = true;
    return 0;
}

int gr_server_init(struct gr_server *srv, const struct gr_config *cfg,
                   struct event_base *base)
{
    struct store_config sc;
    int rv;

    memset(srv, 0, sizeof(*srv));
    srv->base = base;
    srv->cfg = cfg;
    srv->space_ok = true;
    srv->decides_alone = true;
    for (int i = 0; i < GR_FXSETS; i++) {
        store_effects_init(&srv->fxs[i].fx);
    }
    srv->fxd = &srv->fxs[0];
    srv->gen_next = 1;
    srv->n_buckets = N_BUCKETS;
    srv->buckets = gr_calloc(N_BUCKETS, sizeof(*srv->buckets));
    if (srv->buckets == NULL) {
        snprintf(srv->errmsg, sizeof(srv->errmsg), "out of memory");
        return GR_ENOMEM;
    }
    if (event_base_priority_init(base, 2) != 0) {
        snprintf(srv->errmsg, sizeof(srv->errmsg),
                 "event_base_priority_init failed");
        rv = GR_EIO;
        goto err_free_buckets;
    }
    memset(&sc, 0, sizeof(sc));
    sc.dir = cfg->data_dir;
    sc.map_size = (size_t)cfg->map_size;
    sc.nometasync = true; /* the syncer thread syncs the meta page */
    sc.node_id = 1;
    rv = store_open(&sc, &srv->store, srv->errmsg, sizeof(srv->errmsg));
    if (rv != 0) {
        rv = GR_ESTORE;
        goto err_free_buckets;
    }
    srv->node_id = store_node_id(srv->store);
    srv->incarnation = store_incarnation(srv->store);
    rv = recover_index(srv);
    if (rv != 0) {
        snprintf(srv->errmsg, sizeof(srv->errmsg), "reading the log: %s",
                 store_strerror(rv));
        rv = GR_ESTORE;
        goto err_close_store;
    }
    rv = new_events(srv);
    if (rv == 0) {
        rv = requeue_previous(srv);
    }
    if (rv != 0) {
        goto err_free_events;
    }
    check_space(srv, true);
    arm_due_timer(srv);
    rv = open_listener(srv);
    if (rv == 0) {
        rv = start_threads(srv);
    }
    if (rv != 0) {
        goto err_free_events;
    }
    GR_LOG(GR_LOG_NOTICE, "loop",
           "serving on %s:%u, data in %s, node %llu incarnation %llu, "
           "next log index %llu",
           cfg->listen, (unsigned)cfg->port, cfg->data_dir,
           (unsigned long long)srv->node_id,
           (unsigned long long)srv->incarnation,
           (unsigned long long)srv->next_index);
    return 0;

err_free_events:
    gr_server_close(srv);
    return rv;
err_close_store:
    store_close(srv->store);
    srv->store = NULL;
err_free_buckets:
    for (int i = 0; i < GR_FXSETS; i++) {
        store_effects_close(&srv->fxs[i].fx);
    }
    gr_free(srv->buckets);
    srv->buckets = NULL;
    return rv;
}

int gr_server_run(struct gr_server *srv)
{
    if (event_base_dispatch(srv->base) == -1) {
        return GR_EIO;
    }
    return 0;
}

/* Tells both threads to quit and joins them; the syncer first syncs
 * what the committer committed last. */
static void stop_threads(struct gr_server *srv)
{
    if (srv->c_started || srv->s_started) {
        pthread_mutex_lock(&srv->c_lock);
        srv->c_quit = true;
        pthread_cond_broadcast(&srv->c_cond);
        pthread_cond_broadcast(&srv->s_cond);
        pthread_mutex_unlock(&srv->c_lock);
    }
    if (srv->c_started) {
        pthread_join(srv->c_thread, NULL);
        srv->c_started = false;
    }
    if (srv->s_started) {
        pthread_join(srv->s_thread, NULL);
        srv->s_started = false;
    }
    if (srv->c_sync_init) {
        pthread_mutex_destroy(&srv->c_lock);
        pthread_cond_destroy(&srv->c_cond);
        pthread_cond_destroy(&srv->s_cond);
        srv->c_sync_init = false;
    }
}

static double per_batch_ms(const struct gr_server *srv, uint64_t us)
{
    return srv->n_batches ? (double)us / 1000.0 / (double)srv->n_batches : 0.0;
}

static void log_batch_stats(const struct gr_server *srv)
{
    GR_LOG(
        GR_LOG_NOTICE, "loop",
        "%llu write batches, %llu commands, %.1f per batch, %.2f ms to "
        "apply and %.2f ms to commit (sync) a batch, %.2f ms idle "
        "between batches, %llu syncs of meta pages besides; %llu jobs "
        "handed out before their submission was committed, %llu results "
        "relayed as read",
        (unsigned long long)srv->n_batches, (unsigned long long)srv->n_batched,
        srv->n_batches ? (double)srv->n_batched / (double)srv->n_batches : 0.0,
        per_batch_ms(srv, srv->apply_us), per_batch_ms(srv, srv->commit_us),
        per_batch_ms(srv, srv->idle_us), (unsigned long long)srv->n_syncs,
        (unsigned long long)srv->n_ahead, (unsigned long long)srv->n_relays);
}

static void free_event(struct event **ev)
{
    if (*ev != NULL) {
        event_free(*ev);
        *ev = NULL;
    }
}

/* Frees what is left once the sessions are gone: queued proposals,
 * known names, events, effect sets. */
static void free_state(struct gr_server *srv)
{
    struct gr_proposal *p;
    struct gr_known_func *k;
    int i;

    while ((p = srv->head) != NULL) {
        srv->head = p->next;
        gr_proposal_free(p);
    }
    srv->tail = NULL;
    while ((p = srv->retry_head) != NULL) {
        srv->retry_head = p->next;
        gr_proposal_free(p);
    }
    while ((k = srv->known) != NULL) {
        srv->known = k->next;
        gr_free(k);
    }
    gr_numset_free(&srv->handed_out);
    gr_numset_free(&srv->applied_out);
    free_event(&srv->commit_ev);
    free_event(&srv->reap_ev);
    free_event(&srv->done_ev);
    free_event(&srv->applied_ev);
    free_event(&srv->durable_ev);
    free_event(&srv->due_ev);
    free_event(&srv->retry_ev);
    free_event(&srv->sig_ev[0]);
    free_event(&srv->sig_ev[1]);
    for (i = 0; i < GR_FXSETS; i++) {
        store_effects_close(&srv->fxs[i].fx);
        gr_free(srv->fxs[i].sent);
        srv->fxs[i].sent = NULL;
        srv->fxs[i].sent_cap = 0;
        gr_free(srv->fxs[i].wake_budget);
        gr_free(srv->fxs[i].wake_funcs);
        srv->fxs[i].wake_budget = NULL;
        srv->fxs[i].wake_funcs = NULL;
        srv->fxs[i].wake_cap = 0;
    }
}

void gr_server_close(struct gr_server *srv)
{
    struct gm_session *s;

    if (srv->listener != NULL) {
        evconnlistener_free(srv->listener);
        srv->listener = NULL;
    }
    wait_inflight(srv);
    stop_threads(srv);
    /* Flush the current batch so nothing queued is dropped silently. */
    if (srv->store != NULL && srv->head != NULL) {
        run_batch(srv);
    }
    log_batch_stats(srv);
    srv->closing_all = true;
    while ((s = srv->sessions) != NULL) {
        gm_session_flush(s);
        gm_session_close(s, false);
    }
    on_reap(-1, 0, srv);
    /* Sessions closing just now proposed their goodbyes: persist them. */
    if (srv->store != NULL && srv->head != NULL) {
        run_batch(srv);
    }
    free_state(srv);
    if (srv->store != NULL) {
        store_close(srv->store);
        srv->store = NULL;
    }
    gr_free(srv->buckets);
    srv->buckets = NULL;
}
