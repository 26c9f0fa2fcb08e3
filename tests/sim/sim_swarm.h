/* SPDX-License-Identifier: BSD-3-Clause
 * tests/sim/sim_swarm.h - which faults a seed turns on, and how often.
 *
 * Swarm testing (Groce et al., "Swarm Testing", ISSTA 2012): instead of
 * every run having every fault at a fixed rate, each seed switches each
 * kind of fault on or off and picks its own rates.  A run with only
 * duplication and crashes explores paths a run drowning in drops never
 * reaches.  The choice is the first thing drawn from the seed's stream.
 */
#ifndef GR_SIM_SWARM_H
#define GR_SIM_SWARM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sim_net.h"
#include "sim_rng.h"

struct sim_swarm {
    int n_nodes;            /* initial voters: 1, 3 or 5 */
    struct sim_net_cfg net; /* drop, dup, reorder, delays */
    uint64_t disk_min;      /* ms a write takes, range */
    uint64_t disk_max;
    uint64_t fault_every; /* mean ms between fault decisions */
    unsigned propose_pm;  /* per client tick, chance of a proposal */
    uint64_t batch_max;   /* proposals per client tick, at most */
    /* Weights of each fault kind at a fault decision (0 = off). */
    unsigned w_crash;          /* crash one node, restart later */
    unsigned w_crash_all;      /* every node crashes at once */
    unsigned w_partition;      /* symmetric split */
    unsigned w_oneway;         /* cut one direction of one link */
    unsigned w_isolate_leader; /* cut the leader off */
    unsigned w_crash_leader;   /* crash the leader, restart later */
    unsigned w_stall;          /* a link delivers late, all at once */
    unsigned w_heal;           /* restore every link */
    unsigned w_member;         /* add learner, promote, remove (a removed
                                  node is shut down and its disk wiped;
                                  new servers get fresh ids) */
    unsigned w_transfer;       /* leadership transfer */
    unsigned w_snapshot;       /* snapshot + compaction on one node */
    bool tear;                 /* crashes may keep torn writes */
    bool slow_net;             /* delays near the election timeout */
    bool durable_apply;        /* state machine survives a crash */
    bool group_steps;          /* a host turn steps every queued message
                                  before taking one ready batch (as
                                  node/loop.c does), instead of one batch
                                  per message */
    uint64_t snapshot_every;   /* automatic snapshot period (0: off) */
    /* Crashes aimed at the windows where durability matters, drawn from
     * their own stream (sim_swarm_choose_aims); per-mille rates. */
    unsigned aim_write;  /* of writes: crash before the write is durable
                            (10 times that for a write carrying a vote or
                            a CONF entry) */
    unsigned aim_sync;   /* of writes: crash once durable, before anything
                            that waited for it is sent or applied */
    unsigned aim_member; /* of membership changes: crash the leader, the
                            member concerned or everyone before it commits */
    bool stale_reads;    /* reads also go to every node that believes it
                            leads, deposed or cut off or not */
    /* Core settings (struct raft_config). */
    uint64_t election_ms;
    uint64_t heartbeat_ms;
    bool pre_vote;
    bool check_quorum;
    size_t max_msg_bytes;
    size_t max_inflight_bytes;
    size_t max_inflight_msgs;
    size_t max_uncommitted_bytes;
    size_t snapshot_trailing;
    size_t snap_pad; /* bytes of a snapshot */
    /* The core's window and the host's log (sim_swarm_choose_window). */
    size_t window_entries;
    size_t window_bytes;
    bool compact_eager; /* the host compacts its log up to each snapshot,
                           not to raft_first_index: fetches fail */
};

/* Draws a swarm configuration.  n_nodes 0 lets the seed pick 1, 3 or 5. */
void sim_swarm_choose(struct sim_swarm *s, struct sim_rng *rng, int n_nodes);

/* Draws the aimed crashes and stale-leader reads.  They come from a
 * stream of their own (not the one sim_swarm_choose drew from) so that a
 * seed run without them (sim --classic) is the same run earlier versions
 * of the simulator made of that seed.  Each is on for half the seeds. */
void sim_swarm_choose_aims(struct sim_swarm *s, struct sim_rng *rng);

/* Draws the core's memory window, the host's compaction and, for some
 * seeds, snapshots far larger than the core's own memory (so that a core
 * holding a whole one shows), from a stream of their own like the aims. */
void sim_swarm_choose_window(struct sim_swarm *s, struct sim_rng *rng);

/* A calm configuration: reliable network, no faults (benchmarks and
 * scripted scenarios start from this). */
void sim_swarm_calm(struct sim_swarm *s, int n_nodes);

/* Prints the configuration, one line, to out. */
void sim_swarm_print(const struct sim_swarm *s, FILE *out);

#endif /* GR_SIM_SWARM_H */
