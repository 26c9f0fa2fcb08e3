/* SPDX-License-Identifier: BSD-3-Clause
 * raft/progress.c - the leader's view of each member, and quorums.
 *
 * Paper 5.3 keeps nextIndex and matchIndex per follower.  Like etcd we add
 * a state: PROBE sends one append per heartbeat until the follower's match
 * is found, REPLICATE pipelines appends optimistically within a window
 * bounded in messages and bytes (flow control), SNAPSHOT pauses appends
 * while a snapshot is streamed.
 *
 * The window counts the appends sent in REPLICATE that no answer has
 * covered yet, and only answers make room: an acknowledgment frees the
 * appends it covers, a rejection at most the one append it names.  No
 * answer empties the window; only the stall timer does (replication.c),
 * at most once per two heartbeats.  Going back to resend from match + 1
 * happens at most once per move of match.  So whatever the network does
 * to the answers (reorder, duplicate, delay them), the appends on their
 * way to a follower grow by at most a window per stall period or per
 * entry the follower gains, never by a window per answer.  (Before, any
 * rejection emptied the window and returned to PROBE, and the next
 * acknowledgment sent a fresh window while the old appends still
 * travelled; over a reordering network every old append could start
 * another window, and the messages to one follower grew exponentially:
 * tests/sim seeds 5163247 and 5240183.)
 *
 * Quorums count voters of the configuration in effect only (thesis 4.1);
 * the leader counts itself for what the host reported persisted, never for
 * entries only in memory (thesis 10.2.1).
 *
 * Not here: what is sent (replication.c, snapshot.c).
 */
#include <string.h>

#include "raft/internal.h"

struct raft__progress *raft__progress_find(struct raft *r, raft_id id)
{
    for (size_t i = 0; i < r->n_prs; i++) {
        if (r->prs[i].id == id) {
            return &r->prs[i];
        }
    }
    return NULL;
}

/* A fresh view of a member: nothing known, probe from the end of our log
 * (paper 5.3: nextIndex starts just after the leader's last entry). */
void raft__progress_reset(struct raft *r, struct raft__progress *pr)
{
    raft_id id = pr->id;
    bool voter = pr->voter;

    memset(pr, 0, sizeof(*pr));
    pr->id = id;
    pr->voter = voter;
    pr->state = RAFT__PROBE;
    pr->next = raft__log_last(&r->log) + 1;
}

/* Makes prs mirror r->conf: members keep their progress, new members
 * start fresh, removed members are dropped. */
void raft__progress_sync(struct raft *r)
{
    struct raft__progress old[RAFT_MAX_MEMBERS];
    size_t n_old = r->n_prs;

    memcpy(old, r->prs, sizeof(old));
    r->n_prs = 0;
    for (size_t i = 0; i < r->conf.n_members; i++) {
        const struct raft_member *m = &r->conf.members[i];
        struct raft__progress *pr = &r->prs[r->n_prs++];
        bool found = false;

        for (size_t j = 0; j < n_old; j++) {
            if (old[j].id == m->id) {
                *pr = old[j];
                found = true;
                break;
            }
        }
        if (!found) {
            pr->id = m->id;
            raft__progress_reset(r, pr);
        }
        pr->voter = m->voter;
    }
}

void raft__progress_infl_clear(struct raft__progress *pr)
{
    pr->infl_n = 0;
    pr->infl_bytes = 0;
    pr->rewound = false;
}

void raft__progress_become_probe(struct raft *r, struct raft__progress *pr)
{
    pr->state = RAFT__PROBE;
    pr->probe_sent = false;
    pr->next = pr->match + 1;
    raft__progress_infl_clear(pr);
    raft__trace(r, RAFT_TRACE_PROBE, r->term, pr->next, pr->id);
}

void raft__progress_become_replicate(struct raft__progress *pr)
{
    pr->state = RAFT__REPLICATE;
    pr->probe_sent = false;
    pr->next = pr->match + 1;
    raft__progress_infl_clear(pr);
    pr->stall_match = pr->match;
    pr->stall_beats = 0;
}

/* Flow control: the window is full in messages or in bytes. */
bool raft__progress_infl_full(const struct raft *r,
                              const struct raft__progress *pr)
{
    return pr->infl_n >= r->cfg.max_inflight_msgs ||
           pr->infl_bytes >= r->cfg.max_inflight_bytes;
}

void raft__progress_infl_add(struct raft__progress *pr, raft_index prev,
                             raft_index last, size_t bytes)
{
    struct raft__inflight *in;

    RAFT_ASSERT(pr->infl_n < RAFT_MAX_INFLIGHT_MSGS);
    in = &pr->infl[pr->infl_n++];
    in->prev = prev;
    in->last = last;
    in->bytes = bytes;
    in->superseded = false;
    in->rejected = false;
    pr->infl_bytes += bytes;
}

/* Removes slot i of the window, keeping the order of the others. */
static void infl_drop(struct raft__progress *pr, size_t i)
{
    pr->infl_bytes -= pr->infl[i].bytes;
    memmove(&pr->infl[i], &pr->infl[i + 1],
            (pr->infl_n - i - 1) * sizeof(pr->infl[0]));
    pr->infl_n--;
}

/* An acknowledgment up to `last` frees every append it covers, wherever
 * it is in the window (after a rewind, later appends may carry lower
 * indexes than earlier ones). */
void raft__progress_infl_free_to(struct raft__progress *pr, raft_index last)
{
    size_t i = 0;

    while (i < pr->infl_n) {
        if (pr->infl[i].last <= last) {
            infl_drop(pr, i);
        } else {
            i++;
        }
    }
}

/* Goes back to match + 1, where the follower's log is known to agree
 * (go-back-N).  The appends in the window stay counted until answered:
 * their ranges go out again as room allows. */
static void rewind_to_match(struct raft *r, struct raft__progress *pr)
{
    pr->rewound = true;
    pr->next = pr->match + 1;
    for (size_t i = 0; i < pr->infl_n; i++) {
        pr->infl[i].superseded = true;
    }
    raft__trace(r, RAFT_TRACE_RESEND, r->term, pr->next, pr->id);
}

/* Whether an append that may still be accepted carries index i. */
static bool infl_covers(const struct raft__progress *pr, raft_index i)
{
    for (size_t k = 0; k < pr->infl_n; k++) {
        const struct raft__inflight *in = &pr->infl[k];

        if (!in->rejected && in->prev < i && i <= in->last) {
            return true;
        }
    }
    return false;
}

/* A rejection, in REPLICATE, of the append whose prev_index is `prev`
 * (above match): the follower lacked an earlier append (lost, or
 * overtaken by this one) or holds a stale entry there, and dropped this
 * one.  Paper 5.3: decrement nextIndex and retry; we go back to match + 1
 * at once.
 *
 * Only the first rejection after match moved goes back: the others are
 * about appends sent before that rewind, whose ranges are being sent
 * again anyway.  Such an append, found by its prev_index, has its room
 * freed.  A rejection naming an append sent after the rewind may be a
 * late or duplicated answer to an older copy while the newer one still
 * travels: it only marks that append, which keeps its room until an
 * acknowledgment covers its range (raft__progress_acked) or the stall
 * timer gives up (replication.c).  So no answer, stale or duplicated,
 * lets more than the window out, and the window is never emptied here. */
void raft__progress_rejected(struct raft *r, struct raft__progress *pr,
                             raft_index prev)
{
    RAFT_ASSERT(pr->state == RAFT__REPLICATE && prev > pr->match);
    if (!pr->rewound) {
        rewind_to_match(r, pr);
    }
    for (size_t i = 0; i < pr->infl_n; i++) {
        if (pr->infl[i].superseded && pr->infl[i].prev == prev) {
            infl_drop(pr, i);
            return;
        }
    }
    for (size_t i = 0; i < pr->infl_n; i++) {
        if (pr->infl[i].prev == prev && !pr->infl[i].rejected) {
            pr->infl[i].rejected = true;
            return;
        }
    }
}

/* An acknowledgment in REPLICATE; match already includes it (moved says
 * whether it moved).  Frees what it covers.  If the follower's log now
 * ends where no append in the window continues it (what would have, was
 * rejected), every append in the window will be rejected: go back now
 * rather than wait for the stall timer.  At most once per move of match,
 * so answers cannot make the leader go back more often than the follower
 * makes progress. */
void raft__progress_acked(struct raft *r, struct raft__progress *pr, bool moved)
{
    RAFT_ASSERT(pr->state == RAFT__REPLICATE);
    raft__progress_infl_free_to(pr, pr->match);
    if (!moved) {
        return;
    }
    pr->rewound = false;
    if (pr->next > pr->match + 1 && !infl_covers(pr, pr->match + 1)) {
        rewind_to_match(r, pr);
    }
}

bool raft__is_voter(const struct raft *r, raft_id id)
{
    const struct raft_member *m = raft_conf_find(&r->conf, id);

    return m != NULL && m->voter;
}

static size_t n_voters(const struct raft *r)
{
    size_t n = 0;

    for (size_t i = 0; i < r->conf.n_members; i++) {
        if (r->conf.members[i].voter) {
            n++;
        }
    }
    return n;
}

/* A majority of the voters (paper 5.2). */
size_t raft__quorum(const struct raft *r)
{
    return n_voters(r) / 2 + 1;
}

/* The leader's own match: what the host made durable.  While a snapshot
 * install waits for the host, nothing is durable yet. */
raft_index raft__self_match(const struct raft *r)
{
    if (r->snap_pending) {
        return 0;
    }
    return r->log.persisted;
}

/* The k-th largest of vals[0..n), k >= 1 (insertion sort: n <= 16). */
static uint64_t kth_largest(uint64_t *vals, size_t n, size_t k)
{
    for (size_t i = 1; i < n; i++) {
        uint64_t v = vals[i];
        size_t j = i;

        while (j > 0 && vals[j - 1] < v) {
            vals[j] = vals[j - 1];
            j--;
        }
        vals[j] = v;
    }
    return vals[k - 1];
}

/* What a majority of voters agree on, for one of two counters: with
 * read_ack false the log index each holds durably (the leader's own from
 * raft__self_match), with read_ack true the read-index round each
 * acknowledged (the leader acknowledges every round it starts). Both are
 * the quorum-th largest value over the voters (thesis 3.5, 6.4). */
static uint64_t quorum_value(const struct raft *r, bool read_ack)
{
    uint64_t vals[RAFT_MAX_MEMBERS];
    size_t n = 0;

    for (size_t i = 0; i < r->n_prs; i++) {
        const struct raft__progress *pr = &r->prs[i];

        if (!pr->voter) {
            continue;
        }
        if (pr->id == r->cfg.id) {
            vals[n++] = read_ack ? r->read_seq : raft__self_match(r);
        } else {
            vals[n++] = read_ack ? pr->read_ack : pr->match;
        }
    }
    if (n == 0) {
        return 0;
    }
    return kth_largest(vals, n, raft__quorum(r));
}

/* The highest index a majority of voters hold durably. */
raft_index raft__quorum_match(const struct raft *r)
{
    return quorum_value(r, false);
}

/* The highest read-index round a majority of voters acknowledged; the
 * leader acknowledges every round it starts. */
uint64_t raft__quorum_read_ack(const struct raft *r)
{
    return quorum_value(r, true);
}
