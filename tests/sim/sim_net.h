/* SPDX-License-Identifier: BSD-3-Clause
 * tests/sim/sim_net.h - the simulated network between nodes.
 *
 * A message either vanishes, arrives once or arrives twice, each copy
 * after its own delay; two messages on one link may overtake each other
 * (jitter, plus a rarer long "reorder" delay).  Links can be cut one way
 * or both ways: partitions, isolation of one node, and heal.  A link that
 * is cut when a message is sent, or when it would arrive, loses it.
 *
 * The network only decides fates; the caller owns the messages and the
 * event queue that carries them.
 */
#ifndef GR_SIM_NET_H
#define GR_SIM_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "sim_rng.h"

/* Node ids are 1..SIM_MAX_NODES (membership changes may add ids beyond
 * the initial cluster size). */
#define SIM_MAX_NODES 12

struct sim_net_cfg {
    unsigned drop_pm;     /* per-message loss, in 1/1000 */
    unsigned dup_pm;      /* per-message duplication, in 1/1000 */
    unsigned reorder_pm;  /* chance of a long extra delay, in 1/1000 */
    uint64_t delay_min;   /* ms */
    uint64_t delay_max;   /* ms */
    uint64_t reorder_max; /* ms, extra delay of a reordered message */
};

struct sim_net {
    struct sim_net_cfg cfg;
    bool cut[SIM_MAX_NODES + 1][SIM_MAX_NODES + 1]; /* [from][to] */
    /* A stalled link delivers nothing before this time; what arrives
     * earlier waits (a stuck TCP connection, a paused receiver). */
    uint64_t hold_until[SIM_MAX_NODES + 1][SIM_MAX_NODES + 1];
    uint64_t sent, dropped, duplicated;
};

/* A reliable network with delays in [1, 5] ms and no cuts. */
void sim_net_init(struct sim_net *n);

/* Decides the fate of one message from -> to.  Writes the delay of each
 * copy to delays[] and returns the number of copies (0, 1 or 2). */
int sim_net_route(struct sim_net *n, struct sim_rng *rng, int from, int to,
                  uint64_t delays[2]);

/* True if a message from -> to can currently pass. */
bool sim_net_link_up(const struct sim_net *n, int from, int to);

/* Cuts (or restores) the one-way link from -> to. */
void sim_net_set_link(struct sim_net *n, int from, int to, bool up);

/* Stalls the one-way link from -> to until time `until`: messages that
 * would arrive earlier arrive then, in order. */
void sim_net_hold(struct sim_net *n, int from, int to, uint64_t until);

/* The time before which from -> to delivers nothing (0: not stalled). */
uint64_t sim_net_held_until(const struct sim_net *n, int from, int to);

/* Cuts every link between the nodes in mask (bit i = node i) and those
 * outside it, both ways. */
void sim_net_partition(struct sim_net *n, unsigned mask);

/* Cuts every link to and from node id. */
void sim_net_isolate(struct sim_net *n, int id);

/* Restores every link (cuts and stalls). */
void sim_net_heal(struct sim_net *n);

/* True if any link is cut. */
bool sim_net_is_cut(const struct sim_net *n);

#endif /* GR_SIM_NET_H */
