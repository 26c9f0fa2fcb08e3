/* SPDX-License-Identifier: BSD-3-Clause
 * node/gearman/census.h - how many workers each function has on the
 * other members, so that `status` counts the cluster's workers, as a
 * client of one gearmand expects, not only this node's.
 *
 * Why not in the log: workers come and go with their connections, which
 * are each node's own; replicating every CAN_DO would cost a commit per
 * worker start for a figure that only informs. Instead every member
 * tells the others its counts about once a second (node/loop.c sends
 * them as GR_PEER_CENSUS payloads), and a count is believed while it is
 * fresh: a member whose link goes down, or who has not told for a few
 * seconds, counts for nothing.
 *
 * It carries one more fact every member needs from the others: whether
 * the sender is short of storage space (node/space.h), so that no member
 * accepts a submission that member could not store.
 *
 * Payload after its kind byte: a flags byte (bit 0: short of space), a
 * u32 count of functions, then for each a u16 name length, the name and
 * a u32 worker count, all big-endian. A
 * node with more functions than fit in GM_CENSUS_MAX_BYTES sends the
 * first ones in name order.
 *
 * Not here: the sending and the timer (node/loop.c), a worker's own
 * functions (conn.h).
 */
#ifndef GEARRAFT_GEARMAN_CENSUS_H
#define GEARRAFT_GEARMAN_CENSUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gm_hub;

#define GM_CENSUS_EVERY_MS  1000 /* how often a member tells */
#define GM_CENSUS_MAX_BYTES (256u * 1024)
#define GM_CENSUS_FRESH_MS  3500 /* a member's counts count this long */

/* This node's counts and headroom (short: hub->space says no room) as a
 * payload starting with the byte kind, in *out (gr_free) of *len bytes.
 * Errors: GR_ENOMEM. */
int gm_census_encode(struct gm_hub *hub, uint8_t kind, uint8_t **out,
                     size_t *len);
/* Keeps member from's counts (p: the payload after its kind byte),
 * replacing what it told before, as of now_ms. Errors: GR_ENOMEM,
 * GR_EINVAL (malformed: its earlier counts are forgotten). */
int gm_census_receive(struct gm_hub *hub, uint64_t from, const uint8_t *p,
                      size_t len, uint64_t now_ms);
/* True if a member told within GM_CENSUS_FRESH_MS of now_ms that it is
 * short of space. */
bool gm_census_any_short(const struct gm_hub *hub, uint64_t now_ms);
/* Forgets member from's counts (its link went down). */
void gm_census_forget(struct gm_hub *hub, uint64_t from);
/* Workers of function name[0..len) on the other members, as they told
 * within GM_CENSUS_FRESH_MS of now_ms. */
uint64_t gm_census_workers(const struct gm_hub *hub, const uint8_t *name,
                           size_t len, uint64_t now_ms);
/* Frees every member's counts. */
void gm_census_free(struct gm_hub *hub);

#endif /* GEARRAFT_GEARMAN_CENSUS_H */
