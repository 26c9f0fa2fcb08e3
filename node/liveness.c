/* SPDX-License-Identifier: BSD-3-Clause
 * node/liveness.c - who is alive: a member's keep-alives while large
 * payloads hold raft/'s messages up, and its judgments of lost nodes
 * (NODE_GONE of a silent member, of its own old incarnation).
 *
 * Why a file of its own: these are the loop's policies about time and
 * silence, each small, all reading the same few facts (when a peer was
 * last heard from, the last turn's status), and each with guards that
 * matter more than its code (docs/DESIGN.md, "Lost nodes" and
 * "Keep-alives while a large payload holds things up").
 *
 * Not here: the links and their statistics (node/cluster/peer.c), what
 * raft/ makes of a keep-alive (raft_peer_alive), voiding a judgment that
 * went stale (node/pipeline/member.c), applying NODE_GONE
 * (storage/apply.c).
 */
#include "node/liveness.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include "node/cluster/peer.h"
#include "node/cluster/turn.h"
#include "node/gearman/conn.h"
#include "node/gr.h"
#include "storage/store.h"

/* A peer whose large frame is still arriving (bytes came within a
 * heartbeat interval, none of its frames is whole since) is alive: its
 * heartbeats wait behind that frame on the same link. Said to raft/ as
 * if that peer had sent GR_PEER_ALIVE in this node's term; raft/ makes
 * something of it only for its leader (a follower) or a member (a
 * leader). And this node tells that peer it is alive: it will answer
 * nothing before the frame is whole (a leader's append of tens of MiB
 * to a follower, the follower's answers), and that peer's CheckQuorum,
 * or its election timer, would take the silence for a loss. */
static int alive_if_arriving(void *arg, const struct peer_stats *ps)
{
    struct gr_server *srv = arg;
    uint64_t now = gr_mono_us() / 1000;
    uint8_t p[GR_PEER_ALIVE_LEN];

    if (ps->last_part_ms > ps->last_recv_ms &&
        now - ps->last_part_ms < srv->cluster.heartbeat_ms) {
        gr_turn_alive_frame(p, srv->pipe.status.term);
        (void)gr_pipeline_receive(&srv->pipe, ps->id, p, sizeof(p));
        (void)peer_send(srv->peers, ps->id, p, sizeof(p));
    }
    return 0;
}

/* Every heartbeat interval, what stands in for raft/'s heartbeats while
 * large payloads hold things up:
 *   - while this node's turn in flight has run for a heartbeat interval
 *     or more - a write and sync of tens of MiB - raft/ sends nothing,
 *     and without word from it the others would call an election (were
 *     it the leader) or take it for stalled and send it its entries
 *     again (a follower). Its loop is free meanwhile: it tells them it
 *     is alive in its term (GR_PEER_ALIVE; a leader every member, a
 *     follower its leader), as of the last turn collected;
 *   - a peer's large frame still arriving counts as word from it
 *     (alive_if_arriving). */
void gr_liveness_tick(struct gr_server *srv)
{
    const struct gr_member_status *st = &srv->pipe.status;
    const struct gr_cluster_config *k = &srv->cluster;
    uint8_t p[GR_PEER_ALIVE_LEN];
    size_t i;

    if (srv->peers == NULL || st->term == 0) {
        return;
    }
    (void)peer_stats_walk(srv->peers, alive_if_arriving, srv);
    if (gr_pipeline_busy_ms(&srv->pipe, gr_mono_us() / 1000) <
        k->heartbeat_ms) {
        return;
    }
    gr_turn_alive_frame(p, st->term);
    srv->counters.keepalives++;
    if (!st->leader) {
        if (st->leader_id != 0) {
            (void)peer_send(srv->peers, st->leader_id, p, sizeof(p));
        }
        return;
    }
    for (i = 0; i < k->n_members; i++) {
        if (k->members[i].id != k->self_id) {
            (void)peer_send(srv->peers, k->members[i].id, p, sizeof(p));
        }
    }
}

/* Proposes NODE_GONE for incarnation `inc` of node `node_id`: its
 * workers' jobs go back to the queue (counting a retry), its clients are
 * detached. judged_term: the term of a leader's judgment of another
 * node's silence (node/pipeline/member.c voids it after that term), 0
 * for this node's own old incarnation. Errors: GR_ENOMEM. */
static int propose_gone(struct gr_server *srv, uint64_t node_id, uint64_t inc,
                        uint64_t judged_term)
{
    struct gr_proposal *p = gr_proposal_new();

    if (p == NULL) {
        return GR_ENOMEM;
    }
    p->cmd.type = STORE_CMD_NODE_GONE;
    p->cmd.u.node_gone.node_id = node_id;
    p->cmd.u.node_gone.incarnation = inc;
    p->cmd.u.node_gone.max_retries = srv->cfg->job_retries;
    p->judged_term = judged_term;
    gm_propose(&srv->gm, p);
    return 0;
}

/* Proposes NODE_GONE for this node's incarnation `old`, under its
 * current one. Once applied, the old incarnation's commands that commit
 * later are stale (storage/apply.c drops a node's older incarnations
 * once a newer one has a command applied), and whatever the old one did
 * since an earlier NODE_GONE - a GRAB that committed after it, say - is
 * undone: its workers' jobs go back to the queue. */
int gr_liveness_propose_gone_self(struct gr_server *srv, uint64_t old)
{
    return propose_gone(srv, store_node_id(srv->store), old, 0);
}

/* The cluster applied a NODE_GONE for this process: its workers' jobs
 * are requeued and its clients detached elsewhere. Its connections close
 * (their clients and workers reconnect, here or anywhere), and the node
 * goes on as a new incarnation, whose connections the cluster knows
 * afresh. */
void gr_liveness_declared_gone(struct gr_server *srv)
{
    uint64_t old = store_incarnation(srv->store);

    GR_LOG(GR_LOG_WARN, "cluster",
           "the cluster declared this node (incarnation %llu) gone: closing "
           "its Gearman connections and going on as incarnation %llu",
           (unsigned long long)old, (unsigned long long)old + 1);
    gm_hub_close_all(&srv->gm);
    srv->gm.closing_all = false;
    if (store_incarnation_bump(srv->store) != 0) {
        GR_LOG(GR_LOG_CRIT, "cluster",
               "cannot record a new incarnation (%s): stopping now",
               store_errmsg(srv->store));
        _exit(1);
    }
    srv->gm.incarnation = store_incarnation(srv->store);
    gr_pipeline_reincarnate(&srv->pipe, store_incarnation(srv->store));
    /* The NODE_GONE applied may have come before a command of the old
     * incarnation that commits later (a GRAB still in the leader's log):
     * declaring it again from the new one closes that gap. */
    if (gr_liveness_propose_gone_self(srv, old) != 0) {
        GR_LOG(GR_LOG_CRIT, "cluster",
               "out of memory declaring incarnation %llu gone: stopping now",
               (unsigned long long)old);
        _exit(1);
    }
}

/* When this node last heard from a peer: a whole frame, or bytes of a
 * large one still arriving. 0: never. */
static uint64_t last_heard(const struct peer_stats *ps)
{
    return ps->last_part_ms > ps->last_recv_ms ? ps->last_part_ms
                                               : ps->last_recv_ms;
}

/* True when this node heard, within an election timeout, from enough
 * members to make a majority with itself. */
static bool hears_majority(struct gr_server *srv, uint64_t now)
{
    const struct gr_cluster_config *k = &srv->cluster;
    size_t heard = 1; /* itself */
    size_t i;

    for (i = 0; i < k->n_members && i < STORE_MEMBERS_MAX; i++) {
        struct peer_stats ps;

        if (k->members[i].id != k->self_id &&
            peer_stats(srv->peers, k->members[i].id, &ps) == 0 &&
            last_heard(&ps) != 0 && last_heard(&ps) + k->election_ms > now) {
            heard++;
        }
    }
    return heard > k->n_members / 2;
}

/* The leader declares gone a member it has not heard from for
 * --node-gone-timeout (counted from when it began to lead, at the
 * earliest): NODE_GONE for the newest incarnation of that node that the
 * replicated state knows. Once per silence: a member heard from again and
 * silent again is declared again.
 *
 * A leader that was paused (SIGSTOP, a stalled VM) or cut off in a
 * minority has heard from nobody, yet believes it leads until a message
 * says otherwise; its judgment of the others is worthless. Three guards:
 *   - it judges only while it hears from a majority;
 *   - a leader whose own turns stopped for an election timeout (it was
 *     paused) counts silences afresh from now, as if it had just begun
 *     to lead: on waking, the frames of the leader elected meanwhile
 *     arrive before raft/ has read them, and would pass for a majority;
 *   - the judgment carries its term (judged_term): should it not commit
 *     under this leader in that term, it is never proposed or forwarded
 *     again (node/pipeline/member.c), so it cannot commit later through
 *     another leader, requeueing the jobs of a healthy node's workers
 *     and closing its connections. */
static void judge_silent(struct gr_server *srv, uint64_t now, uint64_t term)
{
    const struct gr_cluster_config *k = &srv->cluster;
    size_t i;

    if (!hears_majority(srv, now)) {
        return;
    }
    for (i = 0; i < k->n_members && i < STORE_MEMBERS_MAX; i++) {
        struct peer_stats ps;
        struct store_txn *txn;
        uint64_t heard;
        uint64_t inc = 0;

        if (k->members[i].id == k->self_id ||
            peer_stats(srv->peers, k->members[i].id, &ps) != 0) {
            continue;
        }
        heard = last_heard(&ps) > srv->lead_since_ms ? last_heard(&ps)
                                                     : srv->lead_since_ms;
        if (now - heard < k->node_gone_ms || srv->gone_sent[i] == heard) {
            continue;
        }
        srv->gone_sent[i] = heard;
        if (store_txn_begin(srv->store, false, &txn) == 0) {
            (void)store_node_incarnation(txn, k->members[i].id, &inc);
            store_txn_abort(txn);
        }
        if (inc == 0) {
            continue; /* it never ran a command: nothing to requeue */
        }
        GR_LOG(GR_LOG_NOTICE, "cluster",
               "node %s not heard from for %llu ms: declaring its incarnation "
               "%llu gone (its workers' jobs go back to the queue)",
               k->members[i].name, (unsigned long long)(now - heard),
               (unsigned long long)inc);
        (void)propose_gone(srv, k->members[i].id, inc, term);
    }
}

void gr_liveness_after_turn(struct gr_server *srv,
                            const struct gr_member_status *st, uint64_t now)
{
    if (st->leader && (!srv->was_leader ||
                       now - srv->last_turn_ms >= srv->cluster.election_ms)) {
        srv->lead_since_ms = now; /* began to lead, or woke from a pause */
    }
    srv->was_leader = st->leader;
    srv->last_turn_ms = now;
    if (st->leader) {
        judge_silent(srv, now, st->term);
    }
}
