/* SPDX-License-Identifier: BSD-3-Clause
 * node/gearman/funcs.h - the function names this process has seen in
 * CAN_DO, so that each is created once in the queue tables.
 *
 * Why: gearmand creates a function when a worker first registers it
 * (`status` then lists it with 0 jobs); gearraftd does the same, durably,
 * by proposing FUNC_CREATE the first time a name is seen by this process.
 *
 * Not here: a worker's own list of functions (conn.h).
 */
#ifndef GEARRAFT_GEARMAN_FUNCS_H
#define GEARRAFT_GEARMAN_FUNCS_H

#include <stddef.h>
#include <stdint.h>

struct gm_hub;

/* Remembers a function name registered by CAN_DO; the first time a name
 * is seen it proposes FUNC_CREATE. Returns 0 or GR_ENOMEM. */
int gm_known_add(struct gm_hub *hub, const uint8_t *name, size_t len);
/* Forgets it (admin drop function). */
void gm_known_remove(struct gm_hub *hub, const uint8_t *name, size_t len);
/* Forgets every name (at close). */
void gm_known_free(struct gm_hub *hub);

#endif /* GEARRAFT_GEARMAN_FUNCS_H */
