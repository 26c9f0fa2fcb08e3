/* SPDX-License-Identifier: BSD-3-Clause
 * storage/mem.c - the one allocation wrapper of storage/.
 *
 * Why it is shaped this way: every allocation goes through here so a test
 * can make the Nth one fail and check that the error path frees
 * everything (docs/DESIGN.md, "Conventions").
 *
 * Not here: the effects arena (effects.c), which allocates through this.
 */
#include "storage/internal.h"

unsigned store__fail_alloc_nth;

static bool fail_now(void)
{
    if (store__fail_alloc_nth == 0) {
        return false;
    }
    store__fail_alloc_nth--;
    return store__fail_alloc_nth == 0;
}

void *store__malloc(size_t n)
{
    if (fail_now()) {
        return NULL;
    }
    return malloc(n == 0 ? 1 : n);
}

void *store__realloc(void *p, size_t n)
{
    if (fail_now()) {
        return NULL;
    }
    return realloc(p, n == 0 ? 1 : n);
}

void store__free(void *p)
{
    free(p);
}

int store_array_grow(void *base, size_t *cap, size_t n, size_t size,
                     store_realloc_fn realloc_fn)
{
    size_t room = *cap == 0 ? 16 : *cap;
    void *v;

    while (room < n) {
        room = room > SIZE_MAX / 2 ? n : room * 2;
    }
    if (size > 0 && room > SIZE_MAX / size) {
        return STORE_ENOMEM;
    }
    /* The array's pointer is read and written as bytes: `base` may be the
     * address of a pointer to any object type. */
    memcpy(&v, base, sizeof(v));
    v = realloc_fn(v, room * size);
    if (v == NULL) {
        return STORE_ENOMEM;
    }
    memcpy(base, &v, sizeof(v));
    *cap = room;
    return 0;
}

void store_free(void *p)
{
    store__free(p);
}
