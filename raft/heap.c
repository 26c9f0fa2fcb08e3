/* SPDX-License-Identifier: BSD-3-Clause
 * raft/heap.c - the allocator and assert hooks of raft/.
 *
 * Every allocation in raft/ goes through raft__malloc and friends so that
 * tests can fail the Nth one (cowsql heap faults, curl torture) and prove
 * that a failed allocation leaves the core consistent.  RAFT_ASSERT reports
 * through a hook because raft/ has no stdio.
 *
 * Not here: any policy; a NULL hook means plain libc.
 */
#include <stdlib.h>

#include "raft/internal.h"

static struct raft_heap heap_hook;
static bool heap_hook_set;
static raft_assert_fn assert_hook;

void raft_heap_set(const struct raft_heap *heap)
{
    if (heap == NULL) {
        heap_hook_set = false;
        return;
    }
    heap_hook = *heap;
    heap_hook_set = true;
}

void *raft__malloc(size_t size)
{
    if (heap_hook_set) {
        return heap_hook.malloc_fn(heap_hook.data, size);
    }
    return malloc(size);
}

void *raft__calloc(size_t nmemb, size_t size)
{
    if (heap_hook_set) {
        return heap_hook.calloc_fn(heap_hook.data, nmemb, size);
    }
    return calloc(nmemb, size);
}

void *raft__realloc(void *ptr, size_t size)
{
    if (heap_hook_set) {
        return heap_hook.realloc_fn(heap_hook.data, ptr, size);
    }
    return realloc(ptr, size);
}

void raft__free(void *ptr)
{
    if (heap_hook_set) {
        heap_hook.free_fn(heap_hook.data, ptr);
        return;
    }
    free(ptr);
}

void raft_assert_hook_set(raft_assert_fn fn)
{
    assert_hook = fn;
}

_Noreturn void raft__assert_fail(const char *file, int line, const char *expr)
{
    if (assert_hook != NULL) {
        assert_hook(file, line, expr);
    }
    abort();
}
