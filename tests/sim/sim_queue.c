/* SPDX-License-Identifier: BSD-3-Clause
 * tests/sim/sim_queue.c - a binary min-heap ordered by (time, sequence).
 */
#include "sim_queue.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool before(const struct sim_event *a, const struct sim_event *b)
{
    if (a->at != b->at) {
        return a->at < b->at;
    }
    return a->seq < b->seq;
}

void sim_queue_init(struct sim_queue *q)
{
    memset(q, 0, sizeof(*q));
}

void sim_queue_close(struct sim_queue *q)
{
    free(q->heap);
    memset(q, 0, sizeof(*q));
}

void sim_queue_push(struct sim_queue *q, uint64_t delay, struct sim_event ev)
{
    size_t i;

    if (q->len == q->cap) {
        size_t cap = q->cap == 0 ? 256 : q->cap * 2;
        struct sim_event *h = realloc(q->heap, cap * sizeof(*h));

        if (h == NULL) {
            fprintf(stderr, "sim: out of memory growing the event queue\n");
            abort();
        }
        q->heap = h;
        q->cap = cap;
    }
    ev.at = q->now + delay;
    ev.seq = q->next_seq++;
    i = q->len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (!before(&ev, &q->heap[parent])) {
            break;
        }
        q->heap[i] = q->heap[parent];
        i = parent;
    }
    q->heap[i] = ev;
}

int sim_queue_pop(struct sim_queue *q, struct sim_event *out)
{
    struct sim_event last;
    size_t i = 0;

    if (q->len == 0) {
        return -1;
    }
    *out = q->heap[0];
    last = q->heap[--q->len];
    for (;;) {
        size_t l = 2 * i + 1;
        size_t m = i;

        if (l < q->len && before(&q->heap[l], &last)) {
            m = l;
        }
        if (l + 1 < q->len &&
            before(&q->heap[l + 1], m == i ? &last : &q->heap[l])) {
            m = l + 1;
        }
        if (m == i) {
            break;
        }
        q->heap[i] = q->heap[m];
        i = m;
    }
    if (q->len > 0) {
        q->heap[i] = last;
    }
    if (out->at > q->now) {
        q->now = out->at;
    }
    return 0;
}

uint64_t sim_queue_peek_at(const struct sim_queue *q)
{
    return q->len == 0 ? UINT64_MAX : q->heap[0].at;
}
