/* SPDX-License-Identifier: BSD-3-Clause
 * tests/sim/sim_trace.h - the readable record of a simulated run.
 *
 * Events are stored raw (time, node, a static format, up to four numbers)
 * in a ring and only formatted when someone reads them: a run that passes
 * never pays for printing.  A failing seed prints the last events of the
 * ring; --trace echoes every event as it happens; scenario tests read the
 * whole ring back as lines and compare them with a golden trace.
 *
 * Formats are static strings in which each '%' stands for the next number,
 * printed in decimal ("elected term=% votes=%").
 */
#ifndef GR_SIM_TRACE_H
#define GR_SIM_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct sim_trace_rec {
    uint64_t at;
    int node;        /* 1-based node id, 0 for the simulator itself */
    const char *fmt; /* static; borrowed for the life of the program */
    uint64_t v[4];
};

struct sim_trace {
    struct sim_trace_rec *ring;
    size_t cap;   /* ring capacity */
    size_t total; /* records ever added; ring holds the last min(total,cap) */
    FILE *echo;   /* if not NULL, every record is printed here at once */
};

/* Sets up a ring holding the last cap records (cap >= 1).  Aborts on
 * out-of-memory. */
void sim_trace_init(struct sim_trace *t, size_t cap);
void sim_trace_close(struct sim_trace *t);

/* Forgets every record (the ring keeps its capacity). */
void sim_trace_clear(struct sim_trace *t);

/* Adds one record.  fmt must be a string literal or otherwise outlive t. */
void sim_trace_add(struct sim_trace *t, uint64_t at, int node, const char *fmt,
                   uint64_t a, uint64_t b, uint64_t c, uint64_t d);

/* Formats record r as "t=<ms> n<node> <text>" into buf (always
 * terminated).  Returns buf. */
char *sim_trace_format(const struct sim_trace_rec *r, char *buf, size_t len);

/* Formats only the text of r (no time, with "n<node> " prefix) into buf:
 * the form golden traces in scenario tests compare against. */
char *sim_trace_format_text(const struct sim_trace_rec *r, char *buf,
                            size_t len);

/* Number of records still held, and the i-th oldest of them. */
size_t sim_trace_len(const struct sim_trace *t);
const struct sim_trace_rec *sim_trace_get(const struct sim_trace *t, size_t i);

/* Prints the last n held records (all if n == 0) to out. */
void sim_trace_dump(const struct sim_trace *t, FILE *out, size_t n);

#endif /* GR_SIM_TRACE_H */
