/* SPDX-License-Identifier: BSD-3-Clause
 * raft/readindex.c - linearizable reads without log writes (thesis 6.4).
 *
 * The leader records its commit index as the read index (or its no-op's
 * index if that is not committed yet: every entry committed before the
 * read started is below it, by Leader Completeness), then confirms it is
 * still leader by a round of heartbeats: every append and heartbeat
 * carries a round number (ctx) that followers echo.  Once a majority
 * echoed a round at or after the read's, and the commit index reached the
 * read index, the read is released; the host serves it once applied
 * reaches the index.
 *
 * Not here: follower reads (the host forwards them to the leader).
 */
#include <string.h>

#include "raft/internal.h"

/* Room for every pending read to finish (or fail) without allocating, so
 * releasing reads never fails. */
static int reserve_done(struct raft *r, size_t want)
{
    struct raft_read *p;

    if (want <= r->cap_done_reads) {
        return 0;
    }
    p = raft__realloc(r->done_reads, want * sizeof(*p));
    if (p == NULL) {
        return RAFT_ENOMEM;
    }
    r->done_reads = p;
    r->cap_done_reads = want;
    return 0;
}

int raft_read_index(struct raft *r, uint64_t ctx)
{
    struct raft__pending_read *rd;
    size_t cap;

    if (r->batch.active) {
        r->errmsg = "read index: ready batch not acknowledged";
        return RAFT_EINVAL;
    }
    if (r->role != RAFT_LEADER) {
        r->errmsg = "read index: not the leader";
        return RAFT_ENOTLEADER;
    }
    if (reserve_done(r, r->n_done_reads + r->n_reads + 1) != 0) {
        r->errmsg = "read index: out of memory";
        return RAFT_ENOMEM;
    }
    if (r->n_reads == r->cap_reads) {
        cap = r->cap_reads == 0 ? 8 : r->cap_reads * 2;
        rd = raft__realloc(r->reads, cap * sizeof(*rd));
        if (rd == NULL) {
            r->errmsg = "read index: out of memory";
            return RAFT_ENOMEM;
        }
        r->reads = rd;
        r->cap_reads = cap;
    }
    r->read_seq++;
    rd = &r->reads[r->n_reads++];
    rd->ctx = ctx;
    rd->seq = r->read_seq;
    rd->index = r->commit > r->noop_index ? r->commit : r->noop_index;
    /* One heartbeat round, sent from raft_ready, confirms every read of
     * the host's turn at once. */
    r->hb_pending = true;
    raft__reads_check(r);
    return 0;
}

static void push_done(struct raft *r, uint64_t ctx, raft_index index,
                      int status)
{
    struct raft_read *d;

    RAFT_ASSERT(r->n_done_reads < r->cap_done_reads);
    d = &r->done_reads[r->n_done_reads++];
    d->ctx = ctx;
    d->index = index;
    d->status = status;
}

void raft__reads_check(struct raft *r)
{
    uint64_t acked;
    size_t k = 0;

    if (r->role != RAFT_LEADER || r->n_reads == 0) {
        return;
    }
    acked = raft__quorum_read_ack(r);
    while (k < r->n_reads && r->reads[k].seq <= acked &&
           r->reads[k].index <= r->commit) {
        push_done(r, r->reads[k].ctx, r->reads[k].index, 0);
        raft__trace(r, RAFT_TRACE_READ_CONFIRMED, r->term, r->reads[k].index,
                    0);
        k++;
    }
    memmove(r->reads, &r->reads[k], (r->n_reads - k) * sizeof(*r->reads));
    r->n_reads -= k;
}

/* A deposed leader cannot confirm anything: fail what is pending. */
void raft__reads_fail_all(struct raft *r)
{
    for (size_t k = 0; k < r->n_reads; k++) {
        push_done(r, r->reads[k].ctx, 0, RAFT_ENOTLEADER);
    }
    r->n_reads = 0;
}

void raft__reads_close(struct raft *r)
{
    raft__free(r->reads);
    raft__free(r->done_reads);
    r->reads = NULL;
    r->done_reads = NULL;
    r->n_reads = 0;
    r->n_done_reads = 0;
    r->cap_reads = 0;
    r->cap_done_reads = 0;
}
