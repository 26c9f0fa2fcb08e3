/* SPDX-License-Identifier: BSD-3-Clause
 * storage/mem.c - the one allocation wrapper of storage/.
 *
 * Why it is shaped this way: every allocation goes through here so a test
 * can make the Nth one fail and check that the error path frees
 * everything (STYLE.md 4).
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

void store_free(void *p)
{
    store__free(p);
}
