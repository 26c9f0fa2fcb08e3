/* SPDX-License-Identifier: BSD-3-Clause
 * tests/sim/sim_trace.c - ring of raw trace records, formatted on demand.
 */
#include "sim_trace.h"

#include <stdlib.h>
#include <string.h>

void sim_trace_init(struct sim_trace *t, size_t cap)
{
    memset(t, 0, sizeof(*t));
    t->cap = cap == 0 ? 1 : cap;
    t->ring = calloc(t->cap, sizeof(*t->ring));
    if (t->ring == NULL) {
        fprintf(stderr, "sim: out of memory for the trace ring\n");
        abort();
    }
}

void sim_trace_close(struct sim_trace *t)
{
    free(t->ring);
    memset(t, 0, sizeof(*t));
}

void sim_trace_clear(struct sim_trace *t)
{
    t->total = 0;
}

void sim_trace_add(struct sim_trace *t, uint64_t at, int node, const char *fmt,
                   uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
    struct sim_trace_rec *r = &t->ring[t->total % t->cap];

    r->at = at;
    r->node = node;
    r->fmt = fmt;
    r->v[0] = a;
    r->v[1] = b;
    r->v[2] = c;
    r->v[3] = d;
    t->total++;
    if (t->echo != NULL) {
        char buf[256];

        fprintf(t->echo, "%s\n", sim_trace_format(r, buf, sizeof(buf)));
    }
}

/* Appends the text of r with each '%' replaced by the next number. */
static void expand(const struct sim_trace_rec *r, char *buf, size_t len,
                   size_t pos)
{
    const char *f;
    int next = 0;

    for (f = r->fmt; *f != '\0' && pos + 1 < len; f++) {
        if (*f == '%' && next < 4) {
            int n = snprintf(buf + pos, len - pos, "%llu",
                             (unsigned long long)r->v[next++]);

            if (n < 0) {
                break;
            }
            pos += (size_t)n;
            if (pos >= len) {
                pos = len - 1;
            }
        } else {
            buf[pos++] = *f;
        }
    }
    buf[pos < len ? pos : len - 1] = '\0';
}

char *sim_trace_format(const struct sim_trace_rec *r, char *buf, size_t len)
{
    int n;

    if (r->node > 0) {
        n = snprintf(buf, len, "t=%-7llu n%d ", (unsigned long long)r->at,
                     r->node);
    } else {
        n = snprintf(buf, len, "t=%-7llu -- ", (unsigned long long)r->at);
    }
    if (n < 0 || (size_t)n >= len) {
        return buf;
    }
    expand(r, buf, len, (size_t)n);
    return buf;
}

char *sim_trace_format_text(const struct sim_trace_rec *r, char *buf,
                            size_t len)
{
    int n;

    if (r->node > 0) {
        n = snprintf(buf, len, "n%d ", r->node);
    } else {
        n = snprintf(buf, len, "-- ");
    }
    if (n < 0 || (size_t)n >= len) {
        return buf;
    }
    expand(r, buf, len, (size_t)n);
    return buf;
}

size_t sim_trace_len(const struct sim_trace *t)
{
    return t->total < t->cap ? t->total : t->cap;
}

const struct sim_trace_rec *sim_trace_get(const struct sim_trace *t, size_t i)
{
    size_t first = t->total - sim_trace_len(t);

    return &t->ring[(first + i) % t->cap];
}

void sim_trace_dump(const struct sim_trace *t, FILE *out, size_t n)
{
    size_t len = sim_trace_len(t);
    size_t i = 0;
    char buf[256];

    if (n != 0 && n < len) {
        i = len - n;
    }
    for (; i < len; i++) {
        fprintf(out, "%s\n",
                sim_trace_format(sim_trace_get(t, i), buf, sizeof(buf)));
    }
}
