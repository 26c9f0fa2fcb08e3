/* SPDX-License-Identifier: BSD-3-Clause
 * storage/effects.h - building effect lists (internal to storage/).
 *
 * Not here: the public effect types (store.h).
 */
#ifndef GEARRAFT_STORAGE_EFFECTS_H
#define GEARRAFT_STORAGE_EFFECTS_H

#include "storage/internal.h"

/* Arena memory owned by fx until store_effects_reset; NULL when out of
 * memory. */
void *store__fx_alloc(struct store_effects *fx, size_t n);
/* Copies src into the arena. Errors: STORE_ENOMEM. */
int store__fx_copy(struct store_effects *fx, struct store_buf src,
                   struct store_buf *dst);
/* Appends a zeroed effect of `type` to `to` (NULL: no addressee); *out is
 * valid until the next push. Errors: STORE_ENOMEM. */
int store__fx_push(struct store_effects *fx, enum store_effect_type type,
                   const struct store_conn_ref *to, struct store_effect **out);
/* Removes the last effect (after a failure while filling it). */
void store__fx_pop(struct store_effects *fx);

#endif /* GEARRAFT_STORAGE_EFFECTS_H */
