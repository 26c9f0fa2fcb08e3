/* SPDX-License-Identifier: BSD-3-Clause
 * storage/effects.c - the list of effects apply() returns, and the arena
 * that owns their bytes.
 *
 * Why it is shaped this way: effects are read after the transaction that
 * produced them has committed, when LMDB memory is gone, so every byte an
 * effect points to is copied into an arena owned by the list. One arena
 * per batch makes the copies cheap (bump allocation) and the release one
 * call (store_effects_reset).
 *
 * A copy larger than an arena block gets a block of its own, with a
 * reference count: the node may hold it (store_effects_hold) so that a
 * socket sends those bytes straight from here, after the list has been
 * reset and reused, instead of copying a payload of many megabytes once
 * more. The count is atomic: the committer thread resets lists while the
 * loop thread releases what it held.
 *
 * Not here: deciding which effects a command has (apply.c).
 */
#include "storage/effects.h"

#include <stdatomic.h>

#define ARENA_BLOCK (STORE_EFFECT_OWN_BLOCK - 1)

struct arena_block {
    struct arena_block *next;
    size_t used;
    size_t cap;
    atomic_uint refs; /* a block of its own: the list's + each hold */
    uint8_t data[];
};

static void block_unref(struct arena_block *b)
{
    if (atomic_fetch_sub(&b->refs, 1u) == 1u) {
        store__free(b);
    }
}

void store_effects_init(struct store_effects *fx)
{
    fx->v = NULL;
    fx->n = 0;
    fx->cap = 0;
    fx->arena = NULL;
}

static void arena_free(struct store_effects *fx, bool keep_small)
{
    struct arena_block *b = fx->arena;
    struct arena_block *keep = NULL;

    while (b != NULL) {
        struct arena_block *next = b->next;
        if (keep_small && keep == NULL && b->cap == ARENA_BLOCK) {
            keep = b;
            keep->used = 0;
            keep->next = NULL;
        } else {
            block_unref(b);
        }
        b = next;
    }
    fx->arena = keep;
}

void store_effects_reset(struct store_effects *fx)
{
    fx->n = 0;
    arena_free(fx, true);
}

void store_effects_close(struct store_effects *fx)
{
    arena_free(fx, false);
    store__free(fx->v);
    store_effects_init(fx);
}

void *store__fx_alloc(struct store_effects *fx, size_t n)
{
    struct arena_block *b = fx->arena;
    size_t need = (n + 7u) & ~(size_t)7u;
    size_t cap;
    void *p;

    if (need < n) {
        return NULL;
    }
    if (b != NULL && b->cap - b->used >= need) {
        p = b->data + b->used;
        b->used += need;
        return p;
    }
    cap = need > ARENA_BLOCK ? need : ARENA_BLOCK;
    if (cap > SIZE_MAX - sizeof(*b)) {
        return NULL;
    }
    b = store__malloc(sizeof(*b) + cap);
    if (b == NULL) {
        return NULL;
    }
    b->cap = cap;
    b->used = need;
    atomic_init(&b->refs, 1u);
    if (fx->arena != NULL && cap != ARENA_BLOCK) {
        /* A large one-off block goes behind the current small block so
         * that the small block keeps serving small copies. */
        b->next = ((struct arena_block *)fx->arena)->next;
        ((struct arena_block *)fx->arena)->next = b;
    } else {
        b->next = fx->arena;
        fx->arena = b;
    }
    return b->data;
}

int store__fx_copy(struct store_effects *fx, struct store_buf src,
                   struct store_buf *dst)
{
    uint8_t *p;

    if (src.len == 0) {
        dst->base = NULL;
        dst->len = 0;
        return 0;
    }
    p = store__fx_alloc(fx, src.len);
    if (p == NULL) {
        return STORE_ENOMEM;
    }
    memcpy(p, src.base, src.len);
    dst->base = p;
    dst->len = src.len;
    return 0;
}

int store__fx_push(struct store_effects *fx, enum store_effect_type type,
                   const struct store_conn_ref *to, struct store_effect **out)
{
    struct store_effect *e;

    if (STORE__ARRAY_RESERVE(fx->v, fx->cap, fx->n + 1) != 0) {
        return STORE_ENOMEM;
    }
    e = &fx->v[fx->n++];
    memset(e, 0, sizeof(*e));
    e->type = type;
    if (to != NULL) {
        e->to = *to;
    }
    *out = e;
    return 0;
}

void store__fx_pop(struct store_effects *fx)
{
    STORE_ASSERT(fx->n > 0);
    fx->n--;
}

void *store_effects_hold(struct store_effects *fx, const void *base)
{
    struct arena_block *b;

    for (b = fx->arena; b != NULL && base != NULL; b = b->next) {
        if (b->cap != ARENA_BLOCK && (const void *)b->data == base) {
            atomic_fetch_add(&b->refs, 1u);
            return b;
        }
    }
    return NULL;
}

void store_effects_unhold(void *token)
{
    if (token != NULL) {
        block_unref(token);
    }
}
