/* SPDX-License-Identifier: BSD-3-Clause
 * node/util.c - node/'s error table, allocation wrapper, assert and clock.
 *
 * The allocation wrapper exists so that tests can fail the Nth allocation
 * (docs/DESIGN.md, "Conventions"); it adds one counter test per call and
 * nothing else.
 *
 * Not here: logging (log.c).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/gr.h"

const char *gr_strerror(int rv)
{
    switch (rv) {
    case 0:
        return "success";
#define GR__ERR_CASE(name, value, text)                                        \
    case (value):                                                              \
        return (text);
        GR_ERRORS(GR__ERR_CASE)
#undef GR__ERR_CASE
    default:
        return "unknown error";
    }
}

static long fail_after = -1;

static bool alloc_allowed(void)
{
    if (fail_after < 0) {
        return true;
    }
    if (fail_after == 0) {
        return false;
    }
    fail_after--;
    return true;
}

void gr_alloc_fail_after(long n)
{
    fail_after = n;
}

void *gr_malloc(size_t n)
{
    if (!alloc_allowed()) {
        return NULL;
    }
    return malloc(n == 0 ? 1 : n);
}

void *gr_calloc(size_t n, size_t size)
{
    if (!alloc_allowed()) {
        return NULL;
    }
    return calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);
}

void *gr_realloc(void *p, size_t n)
{
    if (!alloc_allowed()) {
        return NULL;
    }
    return realloc(p, n == 0 ? 1 : n);
}

void gr_free(void *p)
{
    free(p);
}

char *gr_strndup(const void *p, size_t len)
{
    char *s;

    if (len == SIZE_MAX) {
        return NULL;
    }
    s = gr_malloc(len + 1);
    if (s == NULL) {
        return NULL;
    }
    if (len > 0) {
        memcpy(s, p, len);
    }
    s[len] = '\0';
    return s;
}

void gr_assert_fail(const char *file, int line, const char *expr)
{
    fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, expr);
    fflush(stderr);
    abort();
}

uint64_t gr_now_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) == -1) {
        return 0;
    }
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t gr_mono_us(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1) {
        return 0;
    }
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
