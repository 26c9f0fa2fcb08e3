/* SPDX-License-Identifier: BSD-3-Clause
 * tests/sim/sim_cluster.h - a cluster of real Raft cores on a virtual
 * clock, a simulated network and simulated disks.
 *
 * Each node is a struct raft driven exactly as raft.h's HOST LOOP says:
 * msgs_now leave at once, the batch is written to the simulated disk, and
 * only when the write completes (some virtual ms later) do
 * msgs_after_persist leave, committed entries get applied and
 * raft_advance is called.  While its write is in flight a node is blocked,
 * as a single-threaded host waiting on fsync is: messages queue in its
 * inbox.  The state machine is a running hash of the applied entries.
 *
 * Every event (a delivery, a timer, a write completing, a fault, a client
 * request) is one step; after every step the invariants of sim_check.h are
 * checked.  Everything random comes from the cluster's one sim_rng, so a
 * seed replays exactly.
 *
 * The same driver serves three users: the randomized `sim` program
 * (swarm faults and client load), the scripted scenarios of
 * test_scenarios.c (faults called by hand), and the core benchmark.
 */
#ifndef GR_SIM_CLUSTER_H
#define GR_SIM_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "raft/raft.h"
#include "sim_check.h"
#include "sim_disk.h"
#include "sim_net.h"
#include "sim_queue.h"
#include "sim_rng.h"
#include "sim_swarm.h"
#include "sim_trace.h"

/* Bounds on one run, so that no seed runs for ever: crossing one fails
 * the run as a liveness failure.  0: no bound. */
struct sim_limits {
    uint64_t max_ms;    /* virtual time */
    uint64_t max_steps; /* events handled */
    uint64_t max_msgs;  /* messages sent (copies made by the network not
                           counted twice) */
    uint64_t max_bytes; /* memory: messages in flight or waiting in an
                           inbox, plus what the cores hold */
};

struct sim_setup {
    uint64_t seed;
    int n_nodes;           /* initial voters; 0 lets a swarm seed choose */
    bool swarm;            /* draw faults, rates and core settings from seed */
    bool faults;           /* schedule random faults (needs swarm) */
    bool client;           /* random client proposals and reads */
    size_t trace_cap;      /* trace records kept (0: 400) */
    FILE *trace_echo;      /* print every record as it happens, or NULL */
    bool trace_msgs;       /* also record every message delivery */
    uint64_t election_ms;  /* 0: 100 (or the swarm's choice) */
    uint64_t heartbeat_ms; /* 0: election / 5 */
    /* If not NULL, used as is instead of a drawn or calm configuration
     * (scenarios tune the core this way); borrowed for the call. */
    const struct sim_swarm *sw;
    /* Torn writes keep entries without their hard state (raft.h's order)
     * instead of the hard state without its entries. */
    bool tear_hs_last;
    /* No aimed crashes and no stale-leader reads: the swarm of earlier
     * versions, which replays the runs they made of a seed. */
    bool classic;
    struct sim_limits limits;
};

/* A proposal in flight from a client's point of view. */
struct sim_prop {
    uint64_t id;
    uint64_t index;
};

struct sim_cluster;

struct sim_node {
    struct sim_cluster *c;
    raft_id id;
    bool started; /* has a disk (was ever started) */
    bool up;      /* running */
    bool removed; /* removed from the configuration and shut down */
    bool member;  /* in the latest committed configuration */
    uint64_t incarnation;
    struct raft_conf initial_conf; /* raft_config.initial_conf */
    struct raft *r;
    struct sim_disk disk;
    /* state machine */
    uint64_t applied;
    uint64_t state;
    uint64_t applied_chain;
    struct raft_conf conf; /* configuration as of applied */
    /* host loop */
    bool busy; /* a batch is being written */
    struct raft_ready rd;
    bool installing;         /* rd installs the received snapshot ... */
    struct sim_snap install; /* ... read back from its file */
    bool want_snapshot;      /* the core asked for a snapshot */
    uint64_t keep_from;      /* entries after this the core must hold:
                                min(persisted, applied) at the last
                                raft_advance */
    struct raft_msg **inbox;
    size_t n_inbox;
    size_t cap_inbox;
    uint64_t wake_at; /* time of the queued tick, UINT64_MAX: none */
    /* checks */
    uint64_t last_term;
    uint64_t last_commit;
    bool became_leader;     /* leader completeness still to check */
    bool check_votes;       /* the election's quorum still to check */
    bool leading;           /* leader, as its traces tell */
    uint64_t led_commit;    /* highest commit it made while leading */
    uint64_t led_checked;   /* ... already checked durable on a majority */
    uint64_t snap_acked;    /* snapshot bytes it acknowledged, in all */
    uint64_t snap_last_off; /* offset of its last snapshot answer */
    /* client proposals waiting for their apply on this node */
    struct sim_prop *props;
    size_t n_props;
    size_t cap_props;
};

/* A linearizable read in flight: the index it returns must be at least
 * min, the highest index acknowledged before it started. */
struct sim_read {
    uint64_t ctx;
    uint64_t min;
    raft_id node; /* where it was started */
};

/* A vote granted, as the voter's trace reported it. */
struct sim_vote {
    uint64_t term;
    raft_id voter;
    raft_id candidate;
};

/* Proposals the liveness phase needs committed. */
#define SIM_LIVE_PROPS 5
/* Virtual time a liveness step may take, progress or not (1 hour). */
#define SIM_LIVE_MAX_MS 3600000u

struct sim_stats {
    uint64_t steps;
    uint64_t proposed;
    uint64_t acked;
    uint64_t lost; /* proposals overwritten before commit (allowed) */
    uint64_t reads;
    uint64_t elections;
    uint64_t crashes;
    uint64_t restarts;
    uint64_t snapshots;
    uint64_t installs;
    uint64_t conf_changes;
    uint64_t transfers;
    uint64_t partitions;
    uint64_t aimed;       /* crashes aimed at a persist window or a change */
    uint64_t fetches;     /* entries read back for a core (config.fetch) */
    uint64_t fetch_fails; /* ... refused: the host compacted them */
    uint64_t chunks;      /* snapshot chunks written by receivers */
    uint64_t campaigns;   /* raft_campaign calls */
    uint64_t peak_bytes;  /* most memory in use (sim_limits.max_bytes) */
};

struct sim_cluster {
    struct sim_setup setup;
    struct sim_rng rng;
    struct sim_rng aim; /* aimed crashes and stale reads draw from here */
    struct sim_queue q;
    struct sim_net net;
    struct sim_trace trace;
    struct sim_check check;
    struct sim_swarm sw;
    struct raft_config cfg;  /* template for every node */
    bool durable_apply;      /* the state machine survives crashes */
    uint64_t snapshot_every; /* take a snapshot every N applies (0: off) */
    size_t snap_pad;         /* bytes of every snapshot */
    bool faults_on;
    bool client_on;
    struct sim_node nodes[SIM_MAX_NODES + 1];
    int next_id; /* id for the next added server */
    uint64_t next_prop_id;
    uint64_t ack_max;       /* highest index acknowledged to a client */
    struct sim_prop *acked; /* (id, index) with index's chain below */
    uint64_t *acked_chain;
    size_t n_acked;
    size_t cap_acked;
    uint64_t conf_index;   /* latest committed CONF entry seen applied */
    struct raft_conf conf; /* ... and its configuration */
    struct sim_read reads[64];
    size_t n_reads;
    uint64_t next_read;
    struct sim_prop live[SIM_LIVE_PROPS];
    uint64_t live_sent[SIM_LIVE_PROPS];
    uint64_t live_term[SIM_LIVE_PROPS]; /* leader's term when proposed */
    bool live_acked[SIM_LIVE_PROPS];
    uint64_t live_target; /* index every member must apply */
    uint64_t torn;        /* crashes that kept part of a write */
    struct sim_vote *votes;
    size_t n_votes;
    size_t cap_votes;
    uint64_t msg_bytes; /* bytes of messages queued or in an inbox */
    struct sim_stats stats;
};

/* Sets up and starts a cluster (every node up, no leader yet).  Aborts on
 * out-of-memory; returns 0, or a raft error if a core refuses to start. */
int sim_cluster_init(struct sim_cluster *c, const struct sim_setup *setup);
void sim_cluster_close(struct sim_cluster *c);

/* Processes the next event and checks the invariants.  Returns false if
 * a check failed (c->check.why says which) or nothing is left to do. */
bool sim_cluster_step(struct sim_cluster *c);

/* Steps until virtual time passes now + ms, or a check fails.  Returns
 * false on failure. */
bool sim_cluster_run_for(struct sim_cluster *c, uint64_t ms);

typedef bool (*sim_pred_fn)(struct sim_cluster *c, void *arg);

/* Steps until pred holds (checked before each step), at most ms of
 * virtual time.  Returns true if pred held. */
bool sim_cluster_run_until(struct sim_cluster *c, sim_pred_fn pred, void *arg,
                           uint64_t ms);

/* The up node that is leader with the highest term, or 0. */
raft_id sim_cluster_leader(const struct sim_cluster *c);

/* Faults and operations, for scenarios and the fault scheduler. */
void sim_cluster_crash(struct sim_cluster *c, raft_id id);
int sim_cluster_restart(struct sim_cluster *c, raft_id id);
void sim_cluster_isolate(struct sim_cluster *c, raft_id id);
void sim_cluster_partition(struct sim_cluster *c, unsigned mask);
void sim_cluster_heal(struct sim_cluster *c);
/* Proposes a client entry at node id; on success *index is its index. */
int sim_cluster_propose(struct sim_cluster *c, raft_id id, uint64_t *index);
/* Proposes up to n entries at node id in one turn of its host loop, so
 * they share one disk write (group commit).  *accepted (may be NULL) gets
 * how many the core took.  Returns 0 if it took any, else its error. */
int sim_cluster_propose_n(struct sim_cluster *c, raft_id id, uint64_t n,
                          uint64_t *accepted);
/* Takes a snapshot of node id's state machine at its applied index. */
int sim_cluster_snapshot(struct sim_cluster *c, raft_id id);
/* Adds a fresh server as learner through leader `via`; *new_id is its
 * id.  The new server starts empty. */
int sim_cluster_add_learner(struct sim_cluster *c, raft_id via,
                            raft_id *new_id);

/* Node id's core, for a test that calls it directly (what it allocates
 * then is counted as node id's). */
struct raft *sim_cluster_core(struct sim_cluster *c, raft_id id);

/* Runs node id's host loop now: after a test called the core directly
 * (raft_remove, raft_transfer_leadership, ...), this hands out the work it
 * queued. */
void sim_cluster_kick(struct sim_cluster *c, raft_id id);

/* Stops every fault: heals links, makes the network reliable, restarts
 * every crashed node, stops scheduling faults. */
void sim_cluster_calm(struct sim_cluster *c);

/* The liveness phase: with faults stopped, a leader must appear and a
 * fresh batch of proposals must commit and be applied by every member,
 * all within bounded virtual time.  Then checks every acknowledged entry
 * is in place.  Returns false (with c->check.why) on failure. */
bool sim_cluster_liveness(struct sim_cluster *c);

/* Prints a one-line summary of the run (stats) to out. */
void sim_cluster_summary(const struct sim_cluster *c, FILE *out);

/* Prints each started node's role, term, log, commit and configuration. */
void sim_cluster_dump_nodes(const struct sim_cluster *c, FILE *out);

#endif /* GR_SIM_CLUSTER_H */
