/* SPDX-License-Identifier: BSD-3-Clause
 * node/liveness.h - who is alive: keep-alives and lost nodes, the loop's
 * policies about silence (node/liveness.c).
 *
 * Not here: the loop that calls them (node/loop.c).
 */
#ifndef GEARRAFT_NODE_LIVENESS_H
#define GEARRAFT_NODE_LIVENESS_H

#include <stdint.h>

#include "node/loop.h"

/* Every heartbeat interval on a member: keep-alives to the peers while
 * this node's turn runs long, and word from peers whose large frame is
 * still arriving handed to raft/. */
void gr_liveness_tick(struct gr_server *srv);

/* After each turn collected (st: its status): on a leader, NODE_GONE
 * for each member silent for --node-gone-timeout, within the guards
 * (counted from when it began to lead or woke from a pause). */
void gr_liveness_after_turn(struct gr_server *srv,
                            const struct gr_member_status *st, uint64_t now);

/* Proposes NODE_GONE for this node's incarnation `old`, under its
 * current one. Errors: GR_ENOMEM. */
int gr_liveness_propose_gone_self(struct gr_server *srv, uint64_t old);

/* The cluster applied a NODE_GONE for this process: its connections
 * close and it goes on as a new incarnation. */
void gr_liveness_declared_gone(struct gr_server *srv);

#endif /* GEARRAFT_NODE_LIVENESS_H */
