/* SPDX-License-Identifier: BSD-3-Clause
 * node/gr.h - what every file of node/ shares: the error table, the
 * allocation wrapper, GR_ASSERT and GR_LOG.
 *
 * Kept tiny on purpose: anything with more than one concept in it gets its
 * own header (config.h, space.h, numset.h, and the folders' own).
 *
 * Not here: Gearman wire constants (gearman/codec.h), flags (config.h).
 */
#ifndef GEARRAFT_GR_H
#define GEARRAFT_GR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "storage/store.h"

/* ---------------------------------------------------------------------
 * Errors of node/. One table generates the enum and gr_strerror().
 */
#define GR_ERRORS(X)                                                           \
    X(GR_ENOMEM, -1, "out of memory")                                          \
    X(GR_EPROTO, -2, "malformed Gearman packet")                               \
    X(GR_EAGAIN, -3, "more bytes needed")                                      \
    X(GR_EINVAL, -4, "invalid argument")                                       \
    X(GR_EIO, -5, "input/output error")                                        \
    X(GR_ETOOBIG, -6, "packet larger than --max-packet-size")                  \
    X(GR_ESTORE, -7, "storage failure")                                        \
    X(GR_EUSAGE, -8, "bad command line")                                       \
    X(GR_EDROPPED, -9, "frame dropped: peer link down or send queue full")

enum gr_error {
#define GR__ERR_ENUM(name, value, text) name = (value),
    GR_ERRORS(GR__ERR_ENUM)
#undef GR__ERR_ENUM
};

/* Returns a static, non-empty message for a GR_E* code (or for 0). */
const char *gr_strerror(int rv);

/* ---------------------------------------------------------------------
 * Allocation. Every allocation of node/ goes through these so that tests
 * can make the Nth one fail (gr_alloc_fail_after).
 */
void *gr_malloc(size_t n);
void *gr_calloc(size_t n, size_t size);
void *gr_realloc(void *p, size_t n);
void gr_free(void *p);
/* Copies len bytes and appends a NUL; caller frees with gr_free(). */
char *gr_strndup(const void *p, size_t len);
/* Tests only: the next n allocations succeed, the following ones fail
 * until gr_alloc_fail_after(-1) turns failure injection off again. */
void gr_alloc_fail_after(long n);

/* Room for n elements in the array v of room cap: 0, or GR_ENOMEM with
 * v and cap unchanged (storage's store_array_grow, the one growable
 * array of the project, through this module's allocator). */
#define GR_ARRAY_RESERVE(v, cap, n)                                            \
    ((n) <= (cap) ? 0                                                          \
     : store_array_grow(&(v), &(cap), (n), sizeof(*(v)), gr_realloc) == 0      \
         ? 0                                                                   \
         : GR_ENOMEM)

/* ---------------------------------------------------------------------
 * Asserts: always compiled in, for invariants whose violation means
 * corrupt state. Never for bad input.
 */
#define GR_ASSERT(expr)                                                        \
    do {                                                                       \
        if (!(expr)) {                                                         \
            gr_assert_fail(__FILE__, __LINE__, #expr);                         \
        }                                                                      \
    } while (0)
void gr_assert_fail(const char *file, int line, const char *expr)
    __attribute__((noreturn));

/* ---------------------------------------------------------------------
 * Logging: one line per event, "<iso-time> <L> <module> <message>".
 * Levels follow gearmand's --verbose names.
 */
enum gr_log_level {
    GR_LOG_FATAL = 0,
    GR_LOG_ALERT = 1,
    GR_LOG_CRIT = 2,
    GR_LOG_ERROR = 3,
    GR_LOG_WARN = 4,
    GR_LOG_NOTICE = 5,
    GR_LOG_INFO = 6,
    GR_LOG_DEBUG = 7,
    GR_LOG_LEVEL_COUNT = 8, /* number of levels, not a level */
};

extern enum gr_log_level gr_log_threshold;

/* The level is tested before the arguments are evaluated. */
#define GR_LOG(level, module, ...)                                             \
    do {                                                                       \
        if ((int)(level) <= (int)gr_log_threshold) {                           \
            gr_log_write((level), (module), __VA_ARGS__);                      \
        }                                                                      \
    } while (0)

void gr_log_write(enum gr_log_level level, const char *module, const char *fmt,
                  ...) __attribute__((format(printf, 3, 4)));

/* Directs log lines to a file opened for append, to "stderr" or to
 * "none". Errors: GR_EIO (the file could not be opened; errmsg says why). */
int gr_log_open(const char *where, char *errmsg, size_t errmsg_len);
void gr_log_close(void);
/* The name every line carries from now on (NULL or "": "-"). */
void gr_log_set_node(const char *name);
/* Level names as gearmand's --verbose spells them ("ERROR", "INFO"...). */
const char *gr_log_level_name(enum gr_log_level level);
/* Parses a level name (case-insensitive) or a digit; GR_EINVAL if unknown. */
int gr_log_level_parse(const char *s, enum gr_log_level *out);

/* Wall-clock time in milliseconds since the epoch. */
uint64_t gr_now_ms(void);
/* Monotonic time in microseconds from an arbitrary origin (durations). */
uint64_t gr_mono_us(void);

#endif /* GEARRAFT_GR_H */
