/* SPDX-License-Identifier: BSD-3-Clause
 * tests/sim/sim_queue.h - virtual clock and the queue of future events.
 *
 * The simulator never reads a real clock.  Time is a counter of virtual
 * milliseconds that jumps to the next queued event.  Events with the same
 * time run in the order they were queued (a sequence number breaks ties),
 * so the order never depends on heap layout or addresses.
 *
 * Not here: what an event means (sim_cluster.c decides that).
 */
#ifndef GR_SIM_QUEUE_H
#define GR_SIM_QUEUE_H

#include <stddef.h>
#include <stdint.h>

struct sim_event {
    uint64_t at;   /* virtual ms at which it fires */
    uint64_t seq;  /* queue order, breaks ties */
    int kind;      /* meaning chosen by the user of the queue */
    int node;      /* node it concerns, or -1 */
    uint64_t arg;  /* kind-specific: incarnation, write id, ... */
    void *payload; /* kind-specific; the queue never touches it */
};

struct sim_queue {
    uint64_t now;
    uint64_t next_seq;
    struct sim_event *heap;
    size_t len;
    size_t cap;
};

void sim_queue_init(struct sim_queue *q);

/* Frees the heap array; payloads of events still queued are the caller's
 * to free first (see sim_queue_pop). */
void sim_queue_close(struct sim_queue *q);

/* Queues ev to fire delay ms from now; ev->at and ev->seq are set here.
 * Aborts on out-of-memory (a test harness has nowhere to report it). */
void sim_queue_push(struct sim_queue *q, uint64_t delay, struct sim_event ev);

/* Removes the earliest event into *out and moves the clock to its time.
 * Returns 0, or -1 if the queue is empty. */
int sim_queue_pop(struct sim_queue *q, struct sim_event *out);

/* The time of the earliest event, or UINT64_MAX if none. */
uint64_t sim_queue_peek_at(const struct sim_queue *q);

#endif /* GR_SIM_QUEUE_H */
