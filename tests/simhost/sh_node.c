/* SPDX-License-Identifier: BSD-3-Clause
 * tests/simhost/sh_node.c - cluster members in one process: each a real
 * store in a directory of its own, a real host (node/cluster/host.c) and
 * a member's pending list (node/pipeline/member.c), whose turns run on
 * the virtual clock and whose frames travel the simulated network.
 *
 * A turn is what gearraftd's committer thread runs for one batch
 * (gr_member_turn_at): the frames received since the last turn, the
 * proposals made since, one write transaction. It takes no virtual time;
 * its write is on disk `disk_ms` later, and until then the node starts no
 * other turn and the frames that vouch for the write (votes,
 * acknowledgments: out_after) wait, while the leader's appends (sent
 * through the member's send_now) leave at once - the order node/loop.c
 * keeps.
 *
 * The rest of node/loop.c's and node/liveness.c's cluster work is
 * repeated here in a few lines each, from the same public calls: a
 * restarted node declares its previous incarnation gone
 * (requeue_previous), a leader declares a member it has not heard from
 * for node_gone_ms gone (gr_liveness_after_turn), and a node that
 * applies its own NODE_GONE goes on as a new incarnation and declares
 * the old one gone again (gr_liveness_declared_gone).
 *
 * Not here: the clients and workers (sh_gear.c), the seed's schedule
 * (sh_main.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "node/gr.h"
#include "simhost.h"

static uint64_t mix(uint64_t a, uint64_t b)
{
    uint64_t z = a * 0x9e3779b97f4a7c15ULL + b;

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return z != 0 ? z : 1;
}

/* ---------------------------------------------------------------------
 * The network.
 */

static struct gr_frame *frame_copy(const struct gr_frame *f, uint64_t from)
{
    struct gr_frame *c = gr_frame_new(from, f->len);

    if (c == NULL) {
        fprintf(stderr, "simhost: out of memory copying a frame\n");
        abort();
    }
    memcpy(c->data, f->data, f->len);
    return c;
}

/* Sends a list of frames from node `from`, leaving `after` ms from now;
 * frees the list. Each copy that the network lets through arrives as an
 * event for its receiver's current life. */
static void route(struct sh_world *w, int from, struct gr_frame *list,
                  uint64_t after)
{
    while (list != NULL) {
        struct gr_frame *f = list;
        int to = (int)f->peer;
        uint64_t delays[2];
        int copies;
        int k;

        list = f->next;
        f->next = NULL;
        if (to < 1 || to > w->sw.n_nodes || to == from) {
            gr_free(f);
            continue;
        }
        w->n_frames++;
        copies = sim_net_route(&w->net, &w->rng, from, to, delays);
        for (k = 0; k < copies; k++) {
            struct sim_event ev = {0};
            uint64_t at = w->q.now + after + delays[k];

            if (w->sw.fifo) {
                /* A TCP-like link: nothing overtakes what left before. */
                if (at < w->fifo_at[from][to]) {
                    at = w->fifo_at[from][to];
                }
                w->fifo_at[from][to] = at;
            }
            ev.kind = SH_EV_DELIVER;
            ev.node = to;
            ev.arg = w->n[to].life;
            ev.payload = frame_copy(f, (uint64_t)from);
            sim_queue_push(&w->q, at - w->q.now, ev);
        }
        gr_free(f);
    }
}

void sh_node_deliver(struct sh_world *w, struct sh_node *n,
                     struct gr_frame *f)
{
    uint64_t from = f->peer;

    if (!n->up) {
        gr_free(f);
        return;
    }
    if (from >= 1 && from <= SH_MAX_NODES) {
        n->heard[from] = w->q.now;
        n->heard_any[from] = true;
    }
    f->next = NULL;
    *n->inbox_end = f;
    n->inbox_end = &f->next;
    sh_node_schedule(w, n, w->q.now);
}

void sh_node_schedule(struct sh_world *w, struct sh_node *n, uint64_t at)
{
    struct sim_event ev = {0};

    if (!n->up) {
        return;
    }
    if (at < w->q.now) {
        at = w->q.now;
    }
    if (at < n->busy_until) {
        at = n->busy_until;
    }
    if (at >= n->turn_at) {
        return;
    }
    n->turn_at = at;
    ev.kind = SH_EV_TURN;
    ev.node = n->id;
    ev.arg = at;
    sim_queue_push(&w->q, at - w->q.now, ev);
}

/* ---------------------------------------------------------------------
 * Proposals.
 */

void sh_node_propose(struct sh_world *w, struct sh_node *n,
                     struct gr_proposal *p)
{
    /* As gr_pipeline_propose stamps it; the member's pending list sets
     * `low` to the lowest sequence still pending. */
    p->next = NULL;
    p->cmd.origin.node_id = (uint64_t)n->id;
    p->cmd.origin.incarnation = n->inc;
    p->cmd.origin.seq = ++n->seq;
    p->cmd.origin.low = p->cmd.origin.seq;
    *n->new_end = p;
    n->new_end = &p->next;
    /* A batch gathers what arrives within the same millisecond. */
    sh_node_schedule(w, n, w->q.now + 1);
}

/* judged_term: the leader's term when it judges another node gone (0
 * for a node's own old incarnation), as node/liveness.c sets it. */
static void propose_gone(struct sh_world *w, struct sh_node *n,
                         uint64_t node_id, uint64_t inc, uint64_t judged_term)
{
    struct gr_proposal *p = gr_proposal_new();

    if (p == NULL) {
        fprintf(stderr, "simhost: out of memory\n");
        abort();
    }
    p->cmd.type = STORE_CMD_NODE_GONE;
    p->cmd.u.node_gone.node_id = node_id;
    p->cmd.u.node_gone.incarnation = inc;
    p->cmd.u.node_gone.max_retries = 0;
    p->judged_term = judged_term;
    sh_log(w, "n%d propose NODE_GONE n%llu inc %llu", n->id,
           (unsigned long long)node_id, (unsigned long long)inc);
    sh_node_propose(w, n, p);
    if (judged_term != 0) {
        struct sh_judgment j = {(uint64_t)n->id, n->inc, p->cmd.origin.seq,
                                judged_term};

        if (w->n_judged == w->cap_judged) {
            size_t cap = w->cap_judged ? 2 * w->cap_judged : 64;
            struct sh_judgment *v = realloc(w->judged, cap * sizeof(*v));

            if (v == NULL) {
                fprintf(stderr, "simhost: out of memory\n");
                abort();
            }
            w->judged = v;
            w->cap_judged = cap;
        }
        w->judged[w->n_judged++] = j;
    }
}

static void free_new(struct sh_node *n)
{
    struct gr_proposal *p;

    while ((p = n->new_head) != NULL) {
        n->new_head = p->next;
        gr_proposal_free(p);
    }
    n->new_end = &n->new_head;
}

/* ---------------------------------------------------------------------
 * Start, crash.
 */

static int open_store(struct sh_world *w, struct sh_node *n)
{
    struct store_member mem[SH_MAX_NODES];
    struct store_config sc;
    char err[256];
    int k;
    int rv;

    memset(mem, 0, sizeof(mem));
    for (k = 0; k < w->sw.n_nodes; k++) {
        mem[k].id = (uint64_t)k + 1;
        snprintf(mem[k].name, sizeof(mem[k].name), "n%d", k + 1);
        snprintf(mem[k].host, sizeof(mem[k].host), "127.0.0.1");
        mem[k].port = (uint16_t)(4731 + k);
    }
    memset(&sc, 0, sizeof(sc));
    sc.dir = n->dir;
    sc.map_size = (size_t)64 << 20;
    sc.nometasync = true; /* as gearraftd; each turn syncs */
    sc.node_id = (uint64_t)n->id;
    sc.cluster = "sim";
    sc.member = true;
    sc.members = mem;
    sc.n_members = (size_t)w->sw.n_nodes;
    rv = store_open(&sc, &n->s, err, sizeof(err));
    if (rv != 0) {
        sh_fail(w, "n%d: opening its store: %s", n->id, err);
    }
    return rv;
}

static int open_host(struct sh_world *w, struct sh_node *n)
{
    struct gr_host_config hc;
    char err[256];
    int k;
    int rv;

    memset(&hc, 0, sizeof(hc));
    hc.member = true;
    hc.node_id = (uint64_t)n->id;
    snprintf(n->snaps, sizeof(n->snaps), "%s/snapshots", n->dir);
    hc.snap_dir = n->snaps;
    hc.snapshot_every = w->sw.snapshot_every;
    hc.election_ms = w->sw.election_ms;
    hc.heartbeat_ms = w->sw.heartbeat_ms;
    hc.seed = mix(mix(w->seed, (uint64_t)n->id), n->inc);
    hc.initial_conf.n_members = (size_t)w->sw.n_nodes;
    for (k = 0; k < w->sw.n_nodes; k++) {
        hc.initial_conf.members[k].id = (uint64_t)k + 1;
        hc.initial_conf.members[k].voter = true;
    }
    rv = gr_host_open(&n->h, n->s, &hc, w->q.now, err, sizeof(err));
    if (rv != 0) {
        sh_fail(w, "n%d: opening its host: %s", n->id, err);
    }
    return rv;
}

/* The turn's early publication (gr_member_set_early): noted, and checked
 * against what the turn returns. */
static void early_seen(void *arg)
{
    struct sh_node *n = arg;

    n->early_seen = true;
    n->early_props = n->b.props;
    n->n_early++;
}

int sh_node_start(struct sh_world *w, struct sh_node *n)
{
    int rv;

    if (mkdir(n->dir, 0700) != 0 && errno != EEXIST) {
        sh_fail(w, "n%d: mkdir %s: %s", n->id, n->dir, strerror(errno));
        return -1;
    }
    rv = open_store(w, n);
    if (rv != 0) {
        return rv;
    }
    n->inc = store_incarnation(n->s);
    rv = open_host(w, n);
    if (rv != 0) {
        gr_host_close(&n->h);
        store_close(n->s);
        return rv;
    }
    rv = gr_member_init(&n->m, (uint64_t)n->id, n->inc,
                        2 * w->sw.election_ms);
    if (rv != 0) {
        sh_fail(w, "n%d: gr_member_init failed", n->id);
        gr_host_close(&n->h);
        store_close(n->s);
        return rv;
    }
    /* As gearraftd's committer: the entries applied may be answered before
     * the commit (early_seen checks the turn keeps to what it handed). */
    gr_member_set_early(&n->m, early_seen, n);
    memset(&n->b, 0, sizeof(n->b));
    n->b.member = true;
    store_effects_init(&n->b.fx);
    n->up = true;
    n->new_head = NULL;
    n->new_end = &n->new_head;
    n->inbox = NULL;
    n->inbox_end = &n->inbox;
    n->turn_at = UINT64_MAX;
    n->busy_until = w->q.now;
    n->was_leader = false;
    n->leader = false;
    n->leader_id = 0;
    n->applied = 0;
    n->rx_index = n->h.rx_index;
    memset(n->heard, 0, sizeof(n->heard));
    memset(n->heard_any, 0, sizeof(n->heard_any));
    memset(n->gone_sent, 0, sizeof(n->gone_sent));
    sh_log(w, "n%d start inc %llu", n->id, (unsigned long long)n->inc);
    sh_gear_connect(w, n);
    if (n->inc > 1) {
        /* requeue_previous: the last run's workers' jobs go back. */
        propose_gone(w, n, (uint64_t)n->id, n->inc - 1, 0);
    }
    sh_node_schedule(w, n, w->q.now);
    return 0;
}

void sh_node_crash(struct sh_world *w, struct sh_node *n)
{
    if (!n->up) {
        return;
    }
    sh_log(w, "n%d crash (inc %llu, term %llu, applied %llu)", n->id,
           (unsigned long long)n->inc, (unsigned long long)n->term,
           (unsigned long long)n->applied);
    w->n_crashes++;
    sh_gear_disconnect(w, n);
    n->up = false;
    n->life++;
    n->leader = false;
    n->turn_at = UINT64_MAX;
    free_new(n);
    gr_frames_free(n->inbox);
    n->inbox = NULL;
    n->inbox_end = &n->inbox;
    gr_member_close(&n->m);
    w->n_fwd_dropped += n->h.n_fwd_dropped;
    gr_host_close(&n->h);
    store_effects_close(&n->b.fx);
    store_close(n->s);
    n->s = NULL;
}

void sh_node_close_all(struct sh_world *w)
{
    int k;

    for (k = 1; k <= w->sw.n_nodes; k++) {
        if (w->n[k].up) {
            sh_node_crash(w, &w->n[k]);
        }
    }
}

/* ---------------------------------------------------------------------
 * node/loop.c's part of a turn.
 */

/* gr_liveness_declared_gone: the cluster applied a NODE_GONE for this
 * process. Its connections close, it records a new incarnation and
 * declares the old one gone again from the new one. */
static void declared_gone(struct sh_world *w, struct sh_node *n)
{
    uint64_t old = n->inc;

    sh_log(w, "n%d declared gone: inc %llu -> %llu", n->id,
           (unsigned long long)old, (unsigned long long)old + 1);
    sh_gear_disconnect(w, n);
    if (store_incarnation_bump(n->s) != 0) {
        sh_fail(w, "n%d: cannot record a new incarnation: %s", n->id,
                store_errmsg(n->s));
        return;
    }
    n->inc = store_incarnation(n->s);
    (void)gr_member_drop_pending(&n->m);
    free_new(n);
    n->m.incarnation = n->inc;
    sh_gear_connect(w, n);
    propose_gone(w, n, (uint64_t)n->id, old, 0);
}

/* hears_majority: this node heard, within an election timeout, from
 * enough members to make a majority with itself. */
static bool hears_majority(const struct sh_world *w, const struct sh_node *n)
{
    int heard = 1;
    int k;

    for (k = 1; k <= w->sw.n_nodes; k++) {
        heard += k != n->id && n->heard_any[k] &&
                 n->heard[k] + w->sw.election_ms > w->q.now;
    }
    return heard > w->sw.n_nodes / 2;
}

/* gr_liveness_after_turn: the leader declares gone a member it has not
 * heard from for node_gone_ms (counted from when it began to lead), once
 * per silence, naming the newest incarnation the replicated state
 * knows; only while it hears from a majority, and as a judgment of its
 * term (the member voids it once it no longer leads in that term). The
 * loop's third guard, silences counted afresh after the leader's own
 * turns stopped for an election timeout, never fires here: a node's
 * turns are never held up that long. */
static void declare_silent(struct sh_world *w, struct sh_node *n)
{
    uint64_t now = w->q.now;
    int k;

    if (!hears_majority(w, n)) {
        return;
    }
    for (k = 1; k <= w->sw.n_nodes; k++) {
        struct store_txn *txn;
        uint64_t heard;
        uint64_t inc = 0;

        if (k == n->id) {
            continue;
        }
        heard = n->heard_any[k] && n->heard[k] > n->lead_since
                    ? n->heard[k]
                    : n->lead_since;
        if (now - heard < w->sw.node_gone_ms || n->gone_sent[k] == heard) {
            continue;
        }
        n->gone_sent[k] = heard;
        if (store_txn_begin(n->s, false, &txn) == 0) {
            (void)store_node_incarnation(txn, (uint64_t)k, &inc);
            store_txn_abort(txn);
        }
        if (inc == 0) {
            continue;
        }
        propose_gone(w, n, (uint64_t)k, inc, n->term);
    }
}

/* ---------------------------------------------------------------------
 * A turn.
 */

static void take_status(struct sh_node *n, const struct gr_member_status *st)
{
    n->leader = st->leader;
    n->leader_id = st->leader_id;
    n->term = st->term;
    n->commit = st->commit;
    n->applied = st->applied;
}

static void free_applied(struct gr_batch *b)
{
    struct gr_proposal *p;

    while ((p = b->props) != NULL) {
        b->props = p->next;
        gr_proposal_free(p);
    }
    b->n_props = 0;
}

static void after_turn(struct sh_world *w, struct sh_node *n,
                       uint64_t applied_before)
{
    struct gr_batch *b = &n->b;
    uint64_t next;

    if (n->leader != n->was_leader || n->n_turns == 1) {
        sh_log(w, "n%d %s term %llu commit %llu applied %llu", n->id,
               n->leader ? "leads" : "follows", (unsigned long long)n->term,
               (unsigned long long)n->commit, (unsigned long long)n->applied);
    }
    if (n->h.rx_index != n->rx_index) {
        n->rx_index = n->h.rx_index;
        w->n_installs++;
        sh_log(w, "n%d installed a snapshot at %llu", n->id,
               (unsigned long long)n->rx_index);
    }
    sh_gear_applied(w, n, b);
    free_applied(b);
    if (n->applied != applied_before) {
        sh_gear_digest(w, n);
    }
    if (n->h.snaps_open && gr_snaps_dumping(&n->h.snaps)) {
        /* gearraftd dumps on a thread while turns go on; here the dump
         * ends before the next turn, so that a seed replays exactly. */
        gr_snaps_dump_wait(&n->h.snaps);
    }
    if (b->status.declared_gone) {
        declared_gone(w, n);
    }
    if (n->leader && !n->was_leader) {
        n->lead_since = w->q.now;
    }
    n->was_leader = n->leader;
    if (n->leader) {
        declare_silent(w, n);
    }
    next = b->status.more ? w->q.now : b->status.next_wakeup_ms;
    if (next == 0 || next > w->q.now + w->sw.heartbeat_ms) {
        next = w->q.now + w->sw.heartbeat_ms;
    }
    if (n->new_head != NULL && next > w->q.now + 1) {
        next = w->q.now + 1;
    }
    sh_node_schedule(w, n, next);
}

void sh_node_turn(struct sh_world *w, struct sh_node *n)
{
    struct gr_batch *b = &n->b;
    uint64_t applied_before = n->applied;
    uint64_t now = w->q.now;
    int rv;

    if (!n->up) {
        return;
    }
    b->props = n->new_head;
    b->n_props = 0;
    n->new_head = NULL;
    n->new_end = &n->new_head;
    b->inbox = n->inbox;
    n->inbox = NULL;
    n->inbox_end = &n->inbox;
    b->out_after = NULL;
    b->transfer = false;
    b->read_ctx = 0;
    n->early_seen = false;
    rv = gr_member_turn_at(&n->m, &n->h, b, now, SH_WALL_BASE + now);
    n->n_turns++;
    if (rv == 0 && n->early_seen && b->props != n->early_props) {
        sh_fail(w, "n%d: a turn returned other entries than it published "
                   "early", n->id);
    }
    route(w, n->id, gr_member_take_out(&n->m), 0);
    route(w, n->id, b->out_after, w->sw.disk_ms);
    b->out_after = NULL;
    n->busy_until = now + w->sw.disk_ms;
    if (rv != 0) {
        sh_fail(w, "n%d: a turn failed: %s (%s)", n->id, store_strerror(rv),
                n->h.errmsg);
        free_applied(b);
        return;
    }
    take_status(n, &b->status);
    after_turn(w, n, applied_before);
}
