/* SPDX-License-Identifier: BSD-3-Clause
 * tests/simhost/simhost.h - a deterministic simulator of whole cluster
 * members: the real host loop (node/pipeline/member.c over
 * node/cluster/turn.c and host.c) with real LMDB stores and the real
 * apply, on a virtual clock and a simulated network, with Gearman-level
 * clients and workers on every node (docs/simulator.md, "The host
 * simulator").
 *
 * Why it is shaped this way: tests/sim proves the Raft core on its own;
 * what it cannot see is the host around it - the one write transaction
 * per turn, forwarding and resending proposals, the replay table,
 * snapshots of the queue tables, node loss and new incarnations. Here
 * every byte a node stores or sends is what gearraftd would store or
 * send, and only three things are simulated: time (one event queue), the
 * network between members (frames delayed, lost, duplicated, reordered,
 * cut) and the sessions (a client or a worker is a few fields, and a
 * request becomes the proposal node/gearman/request.c would build).
 *
 * The parts of node/loop.c a member needs besides its turns - requeueing
 * a previous incarnation at start, declaring a silent member gone,
 * going on as a new incarnation when declared gone - are small policies
 * on top of public calls; sh_node.c repeats them (loop.c is tied to
 * libevent and sockets).
 *
 * Files: sh_node.c (members, turns, network), sh_gear.c (clients,
 * workers, the ledger and its checks), sh_main.c (seeds, swarm, faults,
 * phases, reports).
 *
 * Not here: the Raft core's own properties (tests/sim), the Gearman wire
 * codec and sessions (tests/unit/node, tests/integration).
 */
#ifndef GR_SIMHOST_H
#define GR_SIMHOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/cluster/host.h"
#include "node/cluster/turn.h"
#include "node/pipeline/batch.h"
#include "node/pipeline/member.h"
#include "sim_net.h"
#include "sim_queue.h"
#include "sim_rng.h"
#include "storage/store.h"

#define SH_MAX_NODES   5
#define SH_MAX_WORKERS 4 /* per node */
#define SH_MAX_FUNCS   3
#define SH_WALL_BASE   1764950400000ull /* the leader's stamp at t=0 */

/* Event kinds of the queue. */
enum sh_event_kind {
    SH_EV_TURN = 1,    /* node: run a turn (arg: the time it was set for) */
    SH_EV_DELIVER = 2, /* node: a frame arrives (payload) */
    SH_EV_CLIENT = 3,  /* a client submits somewhere */
    SH_EV_WORKER = 4,  /* node, arg worker slot | life << 8: work done */
    SH_EV_POLL = 5,    /* node, arg worker slot | life << 8: grab again */
    SH_EV_FAULT = 6,   /* the next fault */
    SH_EV_RESTART = 7, /* node: comes back */
};

/* What a seed draws before it runs (swarm testing: each fault on or
 * off, with its own rate). Printed on failure. */
struct sh_swarm {
    int n_nodes;
    int n_workers; /* per node */
    int n_funcs;
    uint64_t election_ms;
    uint64_t heartbeat_ms;
    uint64_t node_gone_ms;
    uint64_t snapshot_every; /* 0: the default (10,000: never here) */
    uint64_t disk_ms;        /* a write's latency */
    bool fifo;               /* links keep their order (TCP-like) */
    unsigned crash_pm;       /* per fault event, in 1/1000 */
    unsigned partition_pm;
    unsigned release_pm; /* a worker disconnects */
    uint64_t fault_every_ms;
    uint64_t submit_every_ms;
    uint64_t work_max_ms;
    struct sim_net_cfg net;
};

/* One worker connection slot of a node. */
enum sh_worker_state {
    SH_W_GONE = 0,     /* no connection (its node is down) */
    SH_W_IDLE = 1,     /* connected, nothing asked */
    SH_W_GRABBING = 2, /* a GRAB proposed, its answer not seen */
    SH_W_WORKING = 3,  /* holds a job */
};

struct sh_worker {
    enum sh_worker_state state;
    uint64_t conn_id;
    uint64_t life; /* bumped at each new connection: stale timers */
    uint64_t job;  /* WORKING: the job number */
    int sub;       /* WORKING: the submission it carries */
    bool poll_set; /* a poll timer is pending */
};

struct sh_node {
    int id; /* 1..n: Raft id, network address */
    bool up;
    char dir[128];
    char snaps[160];
    struct store *s;
    struct gr_host h;
    struct gr_member m;
    struct gr_batch b;
    bool b_init;
    uint64_t inc;  /* the incarnation this process runs as */
    uint64_t seq;  /* its proposals' origin seq */
    uint64_t life; /* bumped at each crash: stale events */
    struct gr_proposal *new_head; /* proposals since the last turn */
    struct gr_proposal **new_end;
    struct gr_frame *inbox;
    struct gr_frame **inbox_end;
    uint64_t turn_at;     /* the next turn, UINT64_MAX: none set */
    uint64_t busy_until;  /* its last write is on disk then */
    uint64_t next_conn;   /* connection ids of this incarnation */
    uint64_t client_conn; /* the client connection */
    struct sh_worker w[SH_MAX_WORKERS];
    /* node/loop.c's and node/liveness.c's state for declaring silent members
     * gone. */
    bool was_leader;
    uint64_t lead_since;
    uint64_t heard[SH_MAX_NODES + 1];
    uint64_t gone_sent[SH_MAX_NODES + 1];
    bool heard_any[SH_MAX_NODES + 1];
    /* Status after the last turn. */
    bool leader;
    uint64_t leader_id;
    uint64_t term;
    uint64_t commit;
    uint64_t applied;
    uint64_t n_turns;
    uint64_t n_early; /* turns that published their entries early */
    /* What the last early publication handed over (b.props then). */
    struct gr_proposal *early_props;
    bool early_seen;
    uint64_t rx_index; /* the last snapshot it installed */
};

/* A submission (a client's SUBMIT_JOB): its payload is "s<k>". */
struct sh_sub {
    int node;
    uint64_t inc;
    uint64_t conn; /* its client's connection */
    uint64_t at;   /* virtual ms it was proposed */
    int func;
    bool acked;       /* JOB_CREATED seen by its client */
    int n_created;    /* JOB_CREATED effects seen for it */
    uint64_t job;     /* its job number (from CREATED or ASSIGN), 0 */
    int n_handed;     /* ASSIGNs applied (log order), to anyone */
    struct store_conn_ref holder; /* the latest worker handed it */
    bool done;        /* a JOB_DONE was applied for its job */
};

/* A worker connection ever made, and whether the cluster let it go: a
 * RELEASE of it applied (it disconnected). */
struct sh_wref {
    struct store_conn_ref ref;
    bool released;
};

struct sh_world {
    uint64_t seed;
    struct sh_swarm sw;
    struct sim_rng rng;
    struct sim_queue q;
    struct sim_net net;
    uint64_t fifo_at[SH_MAX_NODES + 1][SH_MAX_NODES + 1];
    struct sh_node n[SH_MAX_NODES + 1]; /* [1..n_nodes] */
    char root[96];
    bool faults_on;   /* the fault phase */
    bool submits_on;  /* clients still submit */
    /* The ledger. */
    struct sh_sub *subs;
    size_t n_subs;
    size_t cap_subs;
    struct sh_wref *wrefs;
    size_t n_wrefs;
    size_t cap_wrefs;
    uint64_t gone_inc[SH_MAX_NODES + 1]; /* NODE_GONE applied up to */
    /* A leader's NODE_GONE of another node: proposer (node, incarnation,
     * seq) and the term it judged in. Its entry must carry that term. */
    struct sh_judgment {
        uint64_t node, inc, seq, term;
    } *judged;
    size_t n_judged;
    size_t cap_judged;
    uint64_t log_seen; /* the ledger took entries up to this index */
    /* Digests of the replicated state by applied index (0: none yet). */
    uint64_t *digest;
    int *digest_node;
    size_t cap_digest;
    uint64_t n_digests_compared;
    /* Counters for the summary line. */
    uint64_t n_frames;
    uint64_t n_crashes;
    uint64_t n_gone;   /* NODE_GONE applied (first apply) */
    uint64_t n_redo;   /* jobs handed out again after a loss */
    uint64_t n_releases;
    uint64_t n_installs;
    uint64_t n_lost; /* requests applied inside a snapshot: closed */
    uint64_t n_fwd_dropped; /* forwarded copies leaders dropped (fwdseen) */
    /* The first failure, if any. */
    bool failed;
    char why[512];
    /* The last events, for a failure report. */
    bool trace;
    char (*ring)[160];
    size_t ring_len;
    size_t ring_pos;
};

/* Records a line of what happened (printed at once with --trace; the
 * last ones on failure). */
void sh_log(struct sh_world *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The seed fails with this reason (the first reason wins). */
void sh_fail(struct sh_world *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* sh_node.c */
int sh_node_start(struct sh_world *w, struct sh_node *n);
void sh_node_crash(struct sh_world *w, struct sh_node *n);
void sh_node_turn(struct sh_world *w, struct sh_node *n);
void sh_node_deliver(struct sh_world *w, struct sh_node *n,
                     struct gr_frame *f);
void sh_node_schedule(struct sh_world *w, struct sh_node *n, uint64_t at);
/* Queues a proposal on n (origin stamped as node/pipeline does) and asks
 * for a turn. Takes ownership of p. */
void sh_node_propose(struct sh_world *w, struct sh_node *n,
                     struct gr_proposal *p);
void sh_node_close_all(struct sh_world *w);

/* sh_gear.c */
void sh_gear_connect(struct sh_world *w, struct sh_node *n);
void sh_gear_disconnect(struct sh_world *w, struct sh_node *n);
void sh_gear_submit(struct sh_world *w, struct sh_node *n);
void sh_gear_worker_event(struct sh_world *w, struct sh_node *n, int kind,
                          uint64_t arg);
void sh_gear_release(struct sh_world *w, struct sh_node *n, int slot);
/* The entries a turn of n applied (b->props, with effects in b->fx):
 * the ledger learns what they did, and n's clients and workers get what
 * is addressed to them. */
void sh_gear_applied(struct sh_world *w, struct sh_node *n,
                     const struct gr_batch *b);
/* The state digest check after a turn that moved n's applied index. */
void sh_gear_digest(struct sh_world *w, struct sh_node *n);
/* True once every acknowledged submission's job is done. */
bool sh_gear_all_done(const struct sh_world *w, size_t *missing);
void sh_gear_free(struct sh_world *w);

#endif /* GR_SIMHOST_H */
