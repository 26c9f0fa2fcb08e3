/* SPDX-License-Identifier: BSD-3-Clause
 * node/loop.c - the server's event loop: it owns the parts (loop.h),
 * drives the commit pipeline and routes every batch it hands back.
 *
 * Proposals queue up while the loop reads sockets. A low-priority event
 * (priority 1 of 2) starts the batch once per turn, after every ready I/O
 * callback of that turn (libevent runs only the best priority that has
 * active events), so one fsync covers every job that arrived in the turn
 * (group commit, redis's beforeSleep). The pipeline writes it on its own
 * thread and hands it back three times, and the loop routes each:
 *
 *   applied  the fast path notes what the batch took or dropped; its
 *            early answers leave (node/gearman/answer.c)
 *   done     the fast path settles it; a failed batch voids the jobs
 *            handed out ahead of it; the next batch starts
 *   durable  its late answers leave, in batch order; its proposals are
 *            freed (internal ones of a failed batch are retried)
 *
 * No reply that acknowledges state leaves before the commit that makes
 * it true.
 *
 * Not here: the write itself (node/pipeline/), request handling
 * (node/gearman/), what the fast path decides (node/alone/).
 */
#include "node/loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "node/cluster/members.h"
#include "node/cluster/peer.h"
#include "node/gearman/answer.h"
#include "node/gearman/census.h"
#include "node/gearman/conn.h"
#include "node/gearman/funcs.h"
#include "node/gearman/handout.h"
#include "node/gearman/relay.h"
#include "node/gearman/session.h"
#include "node/liveness.h"

#define RETRY_MS 1000

static void run_batch(struct gr_server *srv);

/* ---------------------------------------------------------------------
 * The epoch timer and retries.
 */

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
    gm_hub_wake(&srv->gm, NULL, NULL, 0);
    gm_hub_flush(&srv->gm);
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
        gm_propose(&srv->gm, p);
    }
}

/* ---------------------------------------------------------------------
 * Routing what the pipeline hands back.
 */

/* Frees an answered batch's proposals (ok: committed, not failed);
 * internal commands of a failed batch (worker or client gone, timeouts)
 * must still happen, so they move to the retry list instead. Returns
 * true if the batch queued an epoch job. */
static bool free_batch(struct gr_server *srv, struct gr_proposal *batch,
                       bool ok)
{
    struct gr_proposal *p;
    struct timeval tv = {RETRY_MS / 1000, 0};
    bool retry = false;
    bool epoch = false;

    while ((p = batch) != NULL) {
        batch = p->next;
        epoch |= p->cmd.type == STORE_CMD_SUBMIT && p->cmd.u.submit.when != 0;
        if (p->handed_to != 0) {
            gm_relay_submit_done(&srv->gm, p, ok);
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
    return epoch;
}

/* The metrics' counts of what a batch applied (every node applies every
 * entry, so a member counts the whole cluster's). */
static void count_applied(struct ops_counters *n, const struct store_cmd *cmd)
{
    switch (cmd->type) {
    case STORE_CMD_SUBMIT:
        n->submits++;
        break;
    case STORE_CMD_WORK:
        n->completions += cmd->u.work.kind == STORE_WORK_COMPLETE ||
                          cmd->u.work.kind == STORE_WORK_FAIL ||
                          cmd->u.work.kind == STORE_WORK_EXCEPTION;
        break;
    case STORE_CMD_NODE_GONE:
        n->node_gone++;
        break;
    default:
        break;
    }
}

/* Batch b's commit returned (or failed) and it is durable: answer it,
 * free it, and start the next batch if proposals queued up meanwhile
 * (unless it started already). */
static void finish_batch(struct gr_server *srv, struct gr_batch *b)
{
    struct gr_proposal *p;
    bool epoch;

    if (b->rv != 0) {
        GR_LOG(GR_LOG_ERROR, "loop",
               "write batch failed (%s: %s): refusing its %s requests",
               store_strerror(b->rv), store_errmsg(srv->store),
               b->rv == STORE_ENOSPC ? "storage-full" : "failed");
        if (b->rv == STORE_ENOSPC) {
            gr_space_exhausted(&srv->gm.space);
        }
        for (p = b->props; p != NULL; p = p->next) {
            p->retry = p->retry && p->conn_id == 0 && p->cmd.type != 0;
        }
        gm_answer_failed(&srv->gm, b);
        (void)free_batch(srv, b->props, false);
        gm_hub_flush(&srv->gm);
        goto next;
    }
    for (p = b->props; p != NULL; p = p->next) {
        p->retry = false;
        count_applied(&srv->counters, &p->cmd);
    }
    gm_answer_committed(&srv->gm, b);
    /* Workers that went to sleep while the commit ran read the state
     * without this batch: wake them now (at most one NOOP each). */
    gm_answer_wake(&srv->gm, b);
    epoch = free_batch(srv, b->props, true);
    /* A member stores what other nodes submit too, which it never
     * admitted itself: it looks after every batch, and tells the others
     * at once when its headroom changes (they refuse submissions then). */
    gr_space_check(&srv->gm.space, srv->cluster.member);
    if (srv->census_ev != NULL && srv->gm.space.ok == srv->told_short) {
        event_active(srv->census_ev, EV_TIMEOUT, 0);
    }
    if (epoch) {
        arm_due_timer(srv);
    }
    gm_hub_flush(&srv->gm);
next:
    if (!gr_pipeline_writing(&srv->pipe)) {
        gm_hub_resume_readers(&srv->gm);
    }
    if (gr_pipeline_in_flight(&srv->pipe)) {
        /* The next batch is on its way already; it ends in on_done. */
    } else if (gr_pipeline_has_queued(&srv->pipe)) {
        event_active(srv->commit_ev, EV_TIMEOUT, 0);
    } else if (srv->stopping && !srv->graceful &&
               !gr_pipeline_writing(&srv->pipe)) {
        event_base_loopexit(srv->base, NULL);
    }
}

/* Answers, in order, every batch whose commit returned and is durable
 * (or failed: nothing to wait for). */
static void answer_durable(struct gr_server *srv)
{
    uint64_t durable = gr_pipeline_durable(&srv->pipe);
    struct gr_batch *b;

    while ((b = gr_pipeline_answer_next(&srv->pipe, durable)) != NULL) {
        finish_batch(srv, b);
        b->props = NULL; /* freed */
    }
}

/* The batch in flight is applied; its early effects (and wake-ups) may
 * leave now, while the committer syncs. */
static void on_applied(evutil_socket_t fd, short what, void *arg)
{
    struct gr_server *srv = arg;
    struct gr_batch *b = gr_pipeline_applied(&srv->pipe);

    (void)fd;
    (void)what;
    if (b != NULL) {
        if (!b->member) {
            gr_alone_applied(&srv->alone, b); /* a member decides nothing */
        }
        gm_answer_early(&srv->gm, b);
    }
}

/* ---------------------------------------------------------------------
 * A cluster member: payloads to and from the peers, and raft/'s timer.
 */

static void send_frames(struct gr_server *srv, struct gr_frame *f)
{
    while (f != NULL) {
        struct gr_frame *next = f->next;

        /* Dropped when the link is down or full (or the peers are gone,
         * at close): raft/ sends again, and forwarded commands are
         * forwarded again. */
        if (srv->peers != NULL) {
            (void)peer_send(srv->peers, f->peer, f->data, f->len);
        }
        gr_free(f);
        f = next;
    }
}

/* Every heartbeat interval: keep-alives (node/liveness.h). */
static void on_alive(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gr_liveness_tick(arg);
}

/* What the committer hands over mid-turn: a leader's appends, forwarded
 * commands - they leave while it writes. */
static void on_send(evutil_socket_t fd, short what, void *arg)
{
    struct gr_server *srv = arg;

    (void)fd;
    (void)what;
    send_frames(srv, gr_member_take_out(&srv->pipe.member));
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct gr_server *srv = arg;

    (void)fd;
    (void)what;
    gr_pipeline_want_turn(&srv->pipe);
}

/* Whether another member said it is short of space: then this node
 * refuses submissions too (node/space.h), and says so when that
 * changes. */
static void peers_space(struct gr_server *srv)
{
    bool low = gm_census_any_short(&srv->gm, gr_mono_us() / 1000);

    if (low != srv->gm.space.peers_low) {
        GR_LOG(low ? GR_LOG_WARN : GR_LOG_NOTICE, "cluster",
               low ? "a member is short of storage space: refusing new "
                     "submissions until it has room"
                   : "every member has storage room again: accepting "
                     "submissions");
    }
    srv->gm.space.peers_low = low;
}

/* Every GM_CENSUS_EVERY_MS a member tells the others how many workers
 * each function has here (node/gearman/census.h). */
static void on_census(evutil_socket_t fd, short what, void *arg)
{
    struct gr_server *srv = arg;
    const struct gr_cluster_config *k = &srv->cluster;
    uint8_t *p = NULL;
    size_t len = 0;
    size_t i;

    (void)fd;
    (void)what;
    peers_space(srv); /* a member that stopped telling counts no more */
    if (srv->peers == NULL ||
        gm_census_encode(&srv->gm, GR_PEER_CENSUS, &p, &len) != 0) {
        srv->told_short = !srv->gm.space.ok; /* retried at the next tick */
        return; /* out of memory: the next round tells */
    }
    for (i = 0; i < k->n_members; i++) {
        if (k->members[i].id != k->self_id) {
            (void)peer_send(srv->peers, k->members[i].id, p, len);
        }
    }
    srv->told_short = !srv->gm.space.ok;
    gr_free(p);
}

static void on_peer_frame(void *arg, uint64_t from, const uint8_t *payload,
                          size_t len)
{
    struct gr_server *srv = arg;

    if (len > 0 && payload[0] == GR_PEER_CENSUS) {
        if (gm_census_receive(&srv->gm, from, payload + 1, len - 1,
                              gr_mono_us() / 1000) != 0) {
            GR_LOG(GR_LOG_WARN, "cluster",
                   "worker counts from node %llu not kept (malformed or "
                   "out of memory)",
                   (unsigned long long)from);
        }
        peers_space(srv);
        return;
    }
    if (gr_pipeline_receive(&srv->pipe, from, payload, len) != 0) {
        GR_LOG(GR_LOG_WARN, "cluster",
               "out of memory: a payload from node %llu dropped",
               (unsigned long long)from);
    }
}

static void on_peer_link(void *arg, uint64_t peer, bool up)
{
    struct gr_server *srv = arg;

    if (!up) {
        gm_census_forget(&srv->gm, peer); /* its workers count no more */
        peers_space(srv);
    }
    GR_LOG(GR_LOG_NOTICE, "cluster", "link to node %llu %s",
           (unsigned long long)peer, up ? "up" : "down");
    if (up) {
        /* A peer that comes back may need what it missed now. */
        gr_pipeline_want_turn(&srv->pipe);
    }
}

/* The member table again, after a membership change or a snapshot
 * applied (the table follows the log). */
static void members_reload(struct gr_server *srv)
{
    struct gr_cluster_config *k = &srv->cluster;
    struct store_member v[STORE_MEMBERS_MAX];
    struct store_txn *txn;
    size_t n = 0;
    int rv;

    rv = store_txn_begin(srv->store, false, &txn);
    if (rv == 0) {
        rv = store_members_get(txn, v, &n);
        store_txn_abort(txn);
    }
    if (rv != 0) {
        GR_LOG(GR_LOG_WARN, "cluster",
               "reading the member table failed (%s): the old one stays",
               store_errmsg(srv->store));
        return;
    }
    memcpy(k->members, v, n * sizeof(v[0]));
    k->n_members = n;
    memset(srv->gone_sent, 0, sizeof(srv->gone_sent));
}

static bool in_view(const struct gr_raft_view *v, uint64_t id)
{
    size_t i;

    for (i = 0; i < v->n_members; i++) {
        if (v->members[i].id == id) {
            return true;
        }
    }
    return false;
}

struct peer_ids {
    uint64_t id[STORE_MEMBERS_MAX + RAFT_MAX_MEMBERS];
    size_t n;
};

static int collect_peer(void *arg, const struct peer_stats *st)
{
    struct peer_ids *p = arg;

    if (p->n < sizeof(p->id) / sizeof(p->id[0])) {
        p->id[p->n++] = st->id;
    }
    return 0;
}

/* The peers follow the configuration raft/ has in force and the member
 * table: a member of either is dialled at the address the table gives
 * (one the table does not name yet is added once its row applies), and
 * a peer in neither is dropped. */
static void peers_follow(struct gr_server *srv, const struct gr_raft_view *v)
{
    const struct gr_cluster_config *k = &srv->cluster;
    struct peer_ids have = {{0}, 0};
    struct peer_stats st;
    char addr[GR_PEER_ADDR_MAX + 1];
    char why[160];
    size_t i;

    if (srv->peers == NULL) {
        return;
    }
    (void)peer_stats_walk(srv->peers, collect_peer, &have);
    for (i = 0; i < have.n; i++) {
        if (!in_view(v, have.id[i]) &&
            gr_members_find(k->members, k->n_members, have.id[i]) == NULL) {
            GR_LOG(GR_LOG_NOTICE, "cluster",
                   "node %llu left the configuration: its links close",
                   (unsigned long long)have.id[i]);
            (void)peer_remove(srv->peers, have.id[i]);
        }
    }
    for (i = 0; i < k->n_members; i++) {
        const struct store_member *m = &k->members[i];

        if (m->id == k->self_id || peer_stats(srv->peers, m->id, &st) == 0) {
            continue;
        }
        (void)gr_peer_addr_format(m->host, m->port, addr, sizeof(addr));
        if (peer_add(srv->peers, m->id, addr, why, sizeof(why)) == 0) {
            GR_LOG(GR_LOG_NOTICE, "cluster", "member %s joins the peers at %s",
                   m->name, addr);
            gr_pipeline_want_turn(&srv->pipe);
        } else {
            GR_LOG(GR_LOG_WARN, "cluster", "member %s at %s: %s", m->name,
                   addr, why);
        }
    }
}

/* A turn ended: what vouches for its write leaves, raft/'s timer is armed
 * for its next wake-up, and a change of leader or term is logged. */
static void member_collected(struct gr_server *srv, struct gr_batch *b)
{
    const struct gr_member_status *st = &b->status;
    uint64_t now = gr_mono_us() / 1000;
    uint64_t in;
    struct timeval tv;

    if (st->members_changed) {
        members_reload(srv);
    }
    peers_follow(srv, &b->view);
    send_frames(srv, b->out_after);
    b->out_after = NULL;
    if (st->declared_gone) {
        gr_liveness_declared_gone(srv);
    }
    gr_liveness_after_turn(srv, st, now);
    if (srv->handing_over && !st->leader) {
        GR_LOG(GR_LOG_NOTICE, "cluster",
               "leadership handed over: stopping now");
        event_base_loopexit(srv->base, NULL);
    }
    if (st->term != srv->seen_term || st->leader_id != srv->seen_leader) {
        GR_LOG(GR_LOG_NOTICE, "cluster", "term %llu: %s",
               (unsigned long long)st->term,
               st->leader ? "this node leads"
               : st->leader_id != 0 ? "following a leader"
                                    : "no leader known");
        srv->counters.leader_changes += st->leader_id != 0;
        srv->seen_term = st->term;
        srv->seen_leader = st->leader_id;
    }
    if (st->next_wakeup_ms != 0 && srv->tick_ev != NULL) {
        in = st->next_wakeup_ms > now ? st->next_wakeup_ms - now : 0;
        tv.tv_sec = (time_t)(in / 1000);
        tv.tv_usec = (suseconds_t)(in % 1000) * 1000;
        evtimer_add(srv->tick_ev, &tv);
    }
}

/* The largest payload between members this node must carry: a command
 * holding a packet of --max-packet-size, with room for its framing. */
static size_t member_frame_bytes(const struct gr_config *cfg)
{
    uint64_t n = cfg->max_packet_size + (1u << 20);

    return n > UINT32_MAX ? UINT32_MAX : (size_t)n;
}

/* A member's seed for raft/'s election timeouts and the peer links'
 * backoff jitter: the node id mixed with this start's incarnation
 * (splitmix64's finaliser), so every start of a node draws other
 * timeouts while a start stays reproducible. Never 0. */
static uint64_t start_seed(uint64_t node_id, uint64_t incarnation)
{
    uint64_t z = node_id ^ (incarnation * 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return z != 0 ? z : 1;
}

static int member_start(struct gr_server *srv)
{
    const struct gr_cluster_config *k = &srv->cluster;
    struct peer_addr peers[STORE_MEMBERS_MAX];
    char addrs[STORE_MEMBERS_MAX][STORE_HOST_MAX + 16];
    char listen[STORE_HOST_MAX + 16];
    struct peer_net_config pc;
    size_t n = 0;
    size_t i;
    int rv;

    srv->send_ev = event_new(srv->base, -1, 0, on_send, srv);
    srv->tick_ev = evtimer_new(srv->base, on_tick, srv);
    srv->census_ev = event_new(srv->base, -1, EV_PERSIST, on_census, srv);
    srv->alive_ev = event_new(srv->base, -1, EV_PERSIST, on_alive, srv);
    if (srv->send_ev == NULL || srv->tick_ev == NULL ||
        srv->census_ev == NULL || srv->alive_ev == NULL) {
        snprintf(srv->errmsg, sizeof(srv->errmsg), "out of memory");
        return GR_ENOMEM;
    }
    event_priority_set(srv->send_ev, 0);
    gr_member_set_send_event(&srv->pipe.member, srv->send_ev);
    for (i = 0; i < k->n_members; i++) {
        if (k->members[i].id != k->self_id) {
            (void)gr_peer_addr_format(k->members[i].host, k->members[i].port,
                                      addrs[n], sizeof(addrs[n]));
            peers[n].id = k->members[i].id;
            peers[n].addr = addrs[n];
            n++;
        }
    }
    (void)gr_peer_addr_format(k->peer_host, k->peer_port, listen,
                              sizeof(listen));
    peer_net_config_default(&pc, k->self_id, k->cluster_name);
    pc.seed = start_seed(k->self_id, store_incarnation(srv->store));
    /* A frame carries a whole command: one as large as the largest packet
     * accepted (a SUBMIT of --max-packet-size) must fit. The send queue
     * keeps its bound: a frame is queued while the queue is under it, so
     * one large frame still goes, and a slow peer costs no more memory
     * than the bound and that frame. */
    if (member_frame_bytes(srv->cfg) > pc.max_frame_bytes) {
        pc.max_frame_bytes = member_frame_bytes(srv->cfg);
    }
    pc.listen = listen;
    pc.peers = peers;
    pc.n_peers = n;
    pc.on_frame = on_peer_frame;
    pc.on_link = on_peer_link;
    pc.cb_arg = srv;
    rv = peer_net_new(srv->base, &pc, &srv->peers, srv->errmsg,
                      sizeof(srv->errmsg));
    if (rv != 0) {
        return rv;
    }
    {
        struct timeval every = {GM_CENSUS_EVERY_MS / 1000,
                                (GM_CENSUS_EVERY_MS % 1000) * 1000};

        event_add(srv->census_ev, &every);
    }
    {
        struct timeval every = {k->heartbeat_ms / 1000,
                                (k->heartbeat_ms % 1000) * 1000};

        event_add(srv->alive_ev, &every);
    }
    gr_pipeline_want_turn(&srv->pipe);
    return 0;
}

/* The batch in flight has committed (or failed). */
static void collect(struct gr_server *srv)
{
    struct gr_batch *b;
    bool early = false;

    b = gr_pipeline_collect(&srv->pipe, &early);
    if (b == NULL) {
        return;
    }
    if (b->member) {
        member_collected(srv, b);
    }
    gr_alone_settled(&srv->alone, b);
    if (b->rv != 0) {
        gm_handout_failed(&srv->gm, b->props, b->index);
    }
    /* A session holding a read of queue state: such reads run only while
     * no batch is being written, so the next batch waits for them rather
     * than starving them under load. */
    if (gr_pipeline_threaded(&srv->pipe) &&
        gr_pipeline_has_queued(&srv->pipe) && !srv->gm.closing_all &&
        srv->gm.n_wait_readers == 0) {
        run_batch(srv); /* the next batch overlaps the answers below */
    }
    if (early) {
        gm_answer_early(&srv->gm, b);
    }
    answer_durable(srv);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    collect(arg);
}

static void on_durable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    answer_durable(arg);
}

/* Waits until no batch is written or waits to be durable, answering
 * each. */
static void wait_inflight(struct gr_server *srv)
{
    while (gr_pipeline_writing(&srv->pipe)) {
        gr_pipeline_wait(&srv->pipe);
        collect(srv);
        answer_durable(srv);
    }
}

static void run_batch(struct gr_server *srv)
{
    struct gr_batch *b = gr_pipeline_start(&srv->pipe);

    if (b == NULL) {
        return; /* it starts when the one in flight ends or is answered */
    }
    gm_answer_begin(&srv->gm, b);
    if (!gr_pipeline_threaded(&srv->pipe)) {
        collect(srv); /* start and close: written and synced already */
    }
}

static void on_commit(evutil_socket_t fd, short what, void *arg)
{
    struct gr_server *srv = arg;

    (void)fd;
    (void)what;
    run_batch(srv);
    if (srv->stopping && !srv->graceful &&
        !gr_pipeline_has_queued(&srv->pipe) &&
        !gr_pipeline_writing(&srv->pipe)) {
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
    if (srv->stopping || srv->gm.n_sessions >= srv->cfg->max_connections) {
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
    if (gm_session_new(&srv->gm, fd, ip, &s) != 0) {
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

static void on_handover_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct gr_server *srv = arg;

    (void)fd;
    (void)what;
    GR_LOG(GR_LOG_WARN, "cluster",
           "no other voter took over leadership in time: stopping anyway "
           "(the others elect a leader after their election timeout)");
    event_base_loopexit(srv->base, NULL);
}

/* A member stops: a leader first hands leadership to the most up-to-date
 * voter, so the cluster goes on without waiting for an election timeout,
 * and stops once it no longer leads - or after two election timeouts.
 * A follower stops at once. */
static void member_shutdown(struct gr_server *srv)
{
    uint64_t ms = 2 * (uint64_t)srv->cluster.election_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

    if (srv->pipe.view.role != RAFT_LEADER || srv->handing_over) {
        if (!srv->handing_over) {
            event_base_loopexit(srv->base, NULL);
        }
        return;
    }
    srv->handing_over = true;
    srv->handover_ev = evtimer_new(srv->base, on_handover_timeout, srv);
    if (srv->handover_ev == NULL) {
        event_base_loopexit(srv->base, NULL);
        return;
    }
    evtimer_add(srv->handover_ev, &tv);
    gr_pipeline_transfer(&srv->pipe);
}

static uint64_t running_jobs(struct gr_server *srv);

static void on_graceful_check(evutil_socket_t fd, short what, void *arg)
{
    struct gr_server *srv = arg;

    (void)fd;
    (void)what;
    if (running_jobs(srv) == 0 && !gr_pipeline_has_queued(&srv->pipe) &&
        !gr_pipeline_writing(&srv->pipe)) {
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
    gm_hub_stop_reading(&srv->gm);
    if (srv->cluster.member) {
        member_shutdown(srv);
        return;
    }
    if (gr_pipeline_has_queued(&srv->pipe) || gr_pipeline_writing(&srv->pipe)) {
        event_active(srv->commit_ev, EV_TIMEOUT, 0);
    } else {
        event_base_loopexit(srv->base, NULL);
    }
}

/* The admin `shutdown` (the hub's hook). */
static void admin_shutdown(void *arg, bool graceful)
{
    gr_server_shutdown(arg, graceful);
}

/* The admin `cluster` (the hub's hook): both links with peer id passed
 * their hellos, so each side can send to the other now. */
static bool admin_reachable(void *arg, uint64_t id)
{
    struct gr_server *srv = arg;
    struct peer_stats st;

    return srv->peers != NULL && peer_stats(srv->peers, id, &st) == 0 &&
           st.out_up && st.in_up;
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

/* The server's own events. Errors: GR_ENOMEM. */
static int new_events(struct gr_server *srv)
{
    struct event_base *base = srv->base;

    srv->commit_ev = event_new(base, -1, 0, on_commit, srv);
    srv->done_ev = event_new(base, -1, 0, on_done, srv);
    srv->applied_ev = event_new(base, -1, 0, on_applied, srv);
    srv->durable_ev = event_new(base, -1, 0, on_durable, srv);
    srv->due_ev = evtimer_new(base, on_due, srv);
    srv->retry_ev = evtimer_new(base, on_retry, srv);
    srv->sig_ev[0] = evsignal_new(base, SIGTERM, on_signal, srv);
    srv->sig_ev[1] = evsignal_new(base, SIGINT, on_signal, srv);
    if (srv->commit_ev == NULL || srv->done_ev == NULL ||
        srv->applied_ev == NULL || srv->durable_ev == NULL ||
        srv->due_ev == NULL || srv->retry_ev == NULL ||
        srv->sig_ev[0] == NULL || srv->sig_ev[1] == NULL) {
        snprintf(srv->errmsg, sizeof(srv->errmsg), "out of memory");
        return GR_ENOMEM;
    }
    event_priority_set(srv->commit_ev, 1);
    event_priority_set(srv->done_ev, 0);
    event_priority_set(srv->applied_ev, 0);
    event_priority_set(srv->durable_ev, 0);
    event_add(srv->sig_ev[0], NULL);
    event_add(srv->sig_ev[1], NULL);
    gr_pipeline_set_events(&srv->pipe, srv->commit_ev, srv->applied_ev,
                           srv->done_ev, srv->durable_ev);
    return 0;
}

/* Jobs held by the previous run's workers go back to the queue before
 * anyone is served; their handles stay the same. Errors: GR_ENOMEM,
 * GR_ESTORE. */
static int requeue_previous(struct gr_server *srv)
{
    uint64_t incarnation = store_incarnation(srv->store);
    int rv;

    if (incarnation <= 1) {
        return 0;
    }
    rv = gr_liveness_propose_gone_self(srv, incarnation - 1);
    if (rv != 0 || srv->cluster.member) {
        return rv; /* a member's commits once the cluster has a leader */
    }
    run_batch(srv);
    if (srv->retry_head != NULL) {
        snprintf(srv->errmsg, sizeof(srv->errmsg),
                 "requeueing the previous run's jobs failed: %s",
                 store_errmsg(srv->store));
        return GR_ESTORE;
    }
    return 0;
}

/* What the node runs as: the flags, with the cluster name and member
 * table the data directory holds (the bootstrap's, or an earlier run's:
 * --initial-cluster counts for a fresh directory only). Errors:
 * GR_ESTORE. */
static int load_identity(struct gr_server *srv)
{
    struct gr_cluster_config *k = &srv->cluster;
    char list[STORE_MEMBERS_MAX * (STORE_NODE_NAME_MAX + 2 + GR_PEER_ADDR_MAX)];
    struct store_txn *txn;
    int rv;

    *k = srv->cfg->cluster;
    store_cluster_name(srv->store, k->cluster_name);
    rv = store_txn_begin(srv->store, false, &txn);
    if (rv == 0) {
        rv = store_members_get(txn, k->members, &k->n_members);
        store_txn_abort(txn);
    }
    if (rv != 0) {
        snprintf(srv->errmsg, sizeof(srv->errmsg),
                 "reading the member table: %s (%s)", store_strerror(rv),
                 store_errmsg(srv->store));
        return GR_ESTORE;
    }
    if (!k->member) {
        return 0;
    }
    if (srv->cfg->cluster.n_members > 0 && !store_is_new(srv->store)) {
        GR_LOG(GR_LOG_NOTICE, "loop",
               "%s holds cluster %s already: --%s ignored",
               srv->cfg->data_dir, k->cluster_name,
               k->joining ? "join" : "initial-cluster");
    }
    if (store_is_joiner(srv->store) && store_is_new(srv->store)) {
        GR_LOG(GR_LOG_NOTICE, "loop",
               "node %s waits to be added to cluster %s (gearraft add %s "
               "HOST:PORT on any member)",
               k->self_name, k->cluster_name, k->self_name);
    }
    gr_members_format(k->members, k->n_members, list, sizeof(list));
    GR_LOG(GR_LOG_NOTICE, "loop", "%s node %s (id %llu) of cluster %s: %s",
           store_is_new(srv->store) ? "bootstrapped" : "restarting",
           k->self_name, (unsigned long long)k->self_id, k->cluster_name, list);
    return 0;
}

/* Opens the store as the node the flags name (its first transaction
 * bootstraps a fresh directory) and settles what the node runs as.
 * Errors: GR_EUSAGE (the directory is another node's), GR_ESTORE. */
static int open_store(struct gr_server *srv)
{
    const struct gr_cluster_config *k = &srv->cfg->cluster;
    struct store_config sc;
    char why[sizeof(srv->errmsg)];
    int rv;

    memset(&sc, 0, sizeof(sc));
    sc.dir = srv->cfg->data_dir;
    sc.map_size = (size_t)srv->cfg->map_size;
    sc.nometasync = true; /* the syncer thread syncs the meta page */
    sc.node_id = k->self_id;
    sc.cluster = k->cluster_name[0] != '\0' ? k->cluster_name : NULL;
    sc.member = k->member;
    sc.members = k->members;
    sc.n_members = k->n_members;
    sc.joiner = k->joining;
    rv = store_open(&sc, &srv->store, why, sizeof(why));
    if (rv == STORE_EIDENTITY && k->member) {
        snprintf(srv->errmsg, sizeof(srv->errmsg), "%.180s (--node-id %s)", why,
                 k->self_name);
    } else if (rv != 0) {
        snprintf(srv->errmsg, sizeof(srv->errmsg), "%s", why);
    }
    if (rv != 0) {
        return rv == STORE_EIDENTITY ? GR_EUSAGE : GR_ESTORE;
    }
    rv = load_identity(srv);
    if (rv != 0) {
        store_close(srv->store);
        srv->store = NULL;
    }
    return rv;
}

/* The operators' endpoint, when --http-listen asks for one. Errors:
 * GR_EIO (errmsg says why). */
static int open_http(struct gr_server *srv)
{
    const struct gr_config *cfg = srv->cfg;
    struct ops_sources *o = &srv->ops_src;

    if (cfg->http_port == 0) {
        return 0;
    }
    o->store = srv->store;
    o->gm = &srv->gm;
    o->pipe = &srv->pipe;
    o->cluster = &srv->cluster;
    o->peers = srv->peers;
    o->counters = &srv->counters;
    o->stopping = &srv->stopping;
    srv->http = ops_http_start(srv->base, cfg->http_host, cfg->http_port, o,
                               srv->errmsg, sizeof(srv->errmsg));
    if (srv->http == NULL) {
        return GR_EIO;
    }
    GR_LOG(GR_LOG_NOTICE, "loop", "metrics and health over HTTP on %s:%u",
           cfg->http_host, (unsigned)cfg->http_port);
    return 0;
}

int gr_server_init(struct gr_server *srv, const struct gr_config *cfg,
                   struct event_base *base)
{
    int rv;

    memset(srv, 0, sizeof(*srv));
    srv->base = base;
    srv->cfg = cfg;
    if (event_base_priority_init(base, 2) != 0) {
        snprintf(srv->errmsg, sizeof(srv->errmsg),
                 "event_base_priority_init failed");
        return GR_EIO;
    }
    rv = open_store(srv);
    if (rv != 0) {
        return rv;
    }
    if (srv->cluster.member) {
        const struct gr_cluster_config *k = &srv->cluster;
        struct gr_host_config hc;
        size_t i;

        memset(&hc, 0, sizeof(hc));
        hc.member = true;
        hc.node_id = k->self_id;
        snprintf(srv->snap_dir, sizeof(srv->snap_dir), "%s/snapshots",
                 cfg->data_dir);
        hc.snap_dir = srv->snap_dir;
        hc.snapshot_every = k->snapshot_every;
        hc.election_ms = k->election_ms;
        hc.heartbeat_ms = k->heartbeat_ms;
        hc.joiner = store_is_joiner(srv->store);
        /* Only the simulator needs timeouts that repeat; a daemon's
         * differ per start (the incarnation is bumped by every open). */
        hc.seed = start_seed(k->self_id, store_incarnation(srv->store));
        hc.max_entry_bytes = member_frame_bytes(cfg);
        hc.initial_conf.n_members = k->n_members;
        for (i = 0; i < k->n_members && i < RAFT_MAX_MEMBERS; i++) {
            hc.initial_conf.members[i].id = k->members[i].id;
            hc.initial_conf.members[i].voter = true;
        }
        rv = gr_pipeline_init_member(&srv->pipe, srv->store,
                                     cfg->min_free_space, &hc, srv->errmsg,
                                     sizeof(srv->errmsg));
    } else {
        rv = gr_pipeline_init(&srv->pipe, srv->store, cfg->min_free_space,
                              srv->errmsg, sizeof(srv->errmsg));
    }
    if (rv != 0) {
        goto err_close_store;
    }
    gr_alone_init(&srv->alone, srv->store, &srv->pipe);
    /* Other voters decide the log's order too: no fast path. */
    srv->alone.decides_alone = !srv->cluster.member;
    rv = gm_hub_init(&srv->gm, base, cfg, srv->store, &srv->pipe, &srv->alone);
    if (rv != 0) {
        snprintf(srv->errmsg, sizeof(srv->errmsg), "out of memory");
        goto err_close_hub;
    }
    srv->gm.shutdown = admin_shutdown;
    srv->gm.shutdown_arg = srv;
    srv->gm.cluster = &srv->cluster;
    srv->gm.reachable = admin_reachable;
    srv->gm.reachable_arg = srv;
    rv = new_events(srv);
    if (rv == 0 && srv->cluster.member) {
        rv = member_start(srv);
    }
    if (rv == 0) {
        rv = requeue_previous(srv);
    }
    if (rv != 0) {
        goto err_free_events;
    }
    gr_space_check(&srv->gm.space, true);
    arm_due_timer(srv);
    rv = open_listener(srv);
    if (rv == 0) {
        rv = open_http(srv);
    }
    if (rv == 0) {
        rv = gr_pipeline_start_threads(&srv->pipe, srv->errmsg,
                                       sizeof(srv->errmsg));
    }
    if (rv != 0) {
        goto err_free_events;
    }
    GR_LOG(GR_LOG_NOTICE, "loop",
           "serving on %s:%u, data in %s, node %llu incarnation %llu, "
           "next log index %llu",
           cfg->listen, (unsigned)cfg->port, cfg->data_dir,
           (unsigned long long)store_node_id(srv->store),
           (unsigned long long)store_incarnation(srv->store),
           (unsigned long long)srv->pipe.next_index);
    return 0;

err_free_events:
    gr_server_close(srv);
    return rv;
err_close_hub:
    gm_hub_close(&srv->gm);
    gr_alone_close(&srv->alone);
err_close_store:
    gr_pipeline_close(&srv->pipe);
    store_close(srv->store);
    srv->store = NULL;
    return rv;
}

int gr_server_run(struct gr_server *srv)
{
    if (event_base_dispatch(srv->base) == -1) {
        return GR_EIO;
    }
    return 0;
}

static double per_batch_ms(const struct gr_pipeline_stats *st, uint64_t us)
{
    return st->n_batches ? (double)us / 1000.0 / (double)st->n_batches : 0.0;
}

static void log_batch_stats(struct gr_server *srv)
{
    struct gr_pipeline_stats st;

    gr_pipeline_stats(&srv->pipe, &st);
    GR_LOG(GR_LOG_NOTICE, "loop",
           "%llu write batches, %llu commands, %.1f per batch, %.2f ms to "
           "apply and %.2f ms to commit (sync) a batch, %.2f ms idle "
           "between batches, %llu syncs of meta pages besides; %llu jobs "
           "handed out before their submission was committed, %llu results "
           "relayed as read",
           (unsigned long long)st.n_batches, (unsigned long long)st.n_batched,
           st.n_batches ? (double)st.n_batched / (double)st.n_batches : 0.0,
           per_batch_ms(&st, st.apply_us), per_batch_ms(&st, st.commit_us),
           per_batch_ms(&st, st.idle_us), (unsigned long long)st.n_syncs,
           (unsigned long long)srv->alone.n_ahead,
           (unsigned long long)srv->alone.n_relays);
}

static void free_event(struct event **ev)
{
    if (*ev != NULL) {
        event_free(*ev);
        *ev = NULL;
    }
}

/* Frees what is left once the sessions are gone: queued proposals,
 * known names, the parts, events. */
static void free_state(struct gr_server *srv)
{
    struct gr_proposal *p;
    int i;

    gr_pipeline_close(&srv->pipe);
    while ((p = srv->retry_head) != NULL) {
        srv->retry_head = p->next;
        gr_proposal_free(p);
    }
    gm_known_free(&srv->gm);
    for (i = 0; i < GR_BATCH_SLOTS; i++) {
        gm_marks_free(&srv->gm.marks[i]);
    }
    gm_hub_close(&srv->gm);
    gr_alone_close(&srv->alone);
    free_event(&srv->commit_ev);
    free_event(&srv->done_ev);
    free_event(&srv->applied_ev);
    free_event(&srv->durable_ev);
    free_event(&srv->due_ev);
    free_event(&srv->retry_ev);
    free_event(&srv->sig_ev[0]);
    free_event(&srv->sig_ev[1]);
    free_event(&srv->send_ev);
    free_event(&srv->tick_ev);
    free_event(&srv->handover_ev);
    free_event(&srv->census_ev);
    free_event(&srv->alive_ev);
    gm_census_free(&srv->gm);
}

void gr_server_close(struct gr_server *srv)
{
    if (srv->listener != NULL) {
        evconnlistener_free(srv->listener);
        srv->listener = NULL;
    }
    ops_http_stop(srv->http);
    srv->http = NULL;
    wait_inflight(srv);
    gr_pipeline_stop_threads(&srv->pipe);
    if (srv->peers != NULL) {
        /* Without peers a member's last turns commit nothing new; what
         * they would forward is not acknowledged to anyone. */
        peer_net_free(srv->peers);
        srv->peers = NULL;
    }
    /* Flush the current batch so nothing queued is dropped silently. */
    if (srv->store != NULL && gr_pipeline_has_queued(&srv->pipe)) {
        run_batch(srv);
    }
    log_batch_stats(srv);
    gm_hub_close_all(&srv->gm);
    /* Sessions closing just now proposed their goodbyes: persist them. */
    if (srv->store != NULL && gr_pipeline_has_queued(&srv->pipe)) {
        run_batch(srv);
    }
    free_state(srv);
    if (srv->store != NULL) {
        store_close(srv->store);
        srv->store = NULL;
    }
}
