/* SPDX-License-Identifier: BSD-3-Clause
 * tests/sim/test_scenarios.c - the classic hard cases of Raft, scripted.
 *
 * Each test builds a calm simulated cluster (reliable network, no random
 * faults), drives it into one known-hard situation by hand (partitions,
 * crashes, membership calls) and asserts on the trace the cores emit, in
 * order, plus the outcome.  The simulator's invariant checks (election
 * safety, log matching, leader completeness, state machine safety) run
 * after every step here too, so a scenario also fails if any of them
 * breaks on the way.
 *
 * Traces are matched as text lines "n<id> <EVENT> term=T index=I peer=P"
 * (sim_trace_format_text); patterns are substrings, so a test names only
 * the fields it cares about.  Ids and terms are read from the cluster as
 * the scenario unfolds rather than hard-coded: which node wins an election
 * depends on the randomized timeouts, the property under test does not.
 * Set SIM_TRACE=1 in the environment to print every event.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim_cluster.h"

/* ---------------------------------------------------------------------
 * The fixture: cluster of N, step until, partition, crash, trace asserts
 */

struct fx {
    struct sim_cluster c;
    bool live;
};

typedef void (*fx_tweak_fn)(struct sim_swarm *sw);

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;

    if (f->live) {
        sim_cluster_close(&f->c);
    }
    free(f);
    return 0;
}

/* Starts n voters with calm settings, adjusted by tweak (may be NULL). */
static struct sim_cluster *fx_start(struct fx *f, int n, fx_tweak_fn tweak)
{
    struct sim_swarm sw;
    struct sim_setup setup;

    sim_swarm_calm(&sw, n);
    sw.election_ms = 100;
    sw.heartbeat_ms = 20;
    sw.snap_pad = 300; /* several chunks at small message sizes */
    if (tweak != NULL) {
        tweak(&sw);
    }
    memset(&setup, 0, sizeof(setup));
    setup.seed = 7;
    setup.sw = &sw;
    setup.trace_cap = 1 << 20;
    setup.trace_echo = getenv("SIM_TRACE") != NULL ? stderr : NULL;
    assert_int_equal(sim_cluster_init(&f->c, &setup), 0);
    f->live = true;
    return &f->c;
}

static void fx_ok(struct sim_cluster *c)
{
    if (c->check.failed) {
        sim_trace_dump(&c->trace, stderr, 80);
        fail_msg("invariant broken: %s", c->check.why);
    }
}

/* Mark: the trace position from which later assertions search. */
static size_t fx_mark(const struct sim_cluster *c)
{
    return sim_trace_len(&c->trace);
}

/* True if line contains pattern, where '*' in pattern matches any run
 * of characters ("n1 VOTE_REJECTED * peer=3"). */
static bool match(const char *line, const char *pattern)
{
    char seg[128];
    const char *at = line;

    while (*pattern != '\0') {
        const char *star = strchr(pattern, '*');
        size_t len = star != NULL ? (size_t)(star - pattern) : strlen(pattern);

        assert_true(len < sizeof(seg));
        memcpy(seg, pattern, len);
        seg[len] = '\0';
        if (len > 0) {
            const char *hit = strstr(at, seg);

            if (hit == NULL) {
                return false;
            }
            at = hit + len;
        }
        pattern += len;
        if (*pattern == '*') {
            pattern++;
        }
    }
    return true;
}

/* Position of the first line at or after from matching pattern, or
 * (size_t)-1. */
static size_t fx_find(const struct sim_cluster *c, size_t from,
                      const char *pattern)
{
    size_t len = sim_trace_len(&c->trace);
    char buf[256];
    size_t i;

    for (i = from; i < len; i++) {
        sim_trace_format_text(sim_trace_get(&c->trace, i), buf, sizeof(buf));
        if (match(buf, pattern)) {
            return i;
        }
    }
    return (size_t)-1;
}

static size_t fx_count(const struct sim_cluster *c, size_t from,
                       const char *pattern)
{
    size_t n = 0;
    size_t i = from;

    for (;;) {
        i = fx_find(c, i, pattern);
        if (i == (size_t)-1) {
            return n;
        }
        n++;
        i++;
    }
}

/* Asserts the patterns occur in this order (other lines may come
 * between) from position from on; returns the position after the last.
 * The pattern list ends with NULL. */
static size_t fx_expect_seq(const struct sim_cluster *c, size_t from, ...)
{
    va_list ap;
    const char *p;
    size_t at = from;

    va_start(ap, from);
    while ((p = va_arg(ap, const char *)) != NULL) {
        size_t i = fx_find(c, at, p);

        if (i == (size_t)-1) {
            va_end(ap);
            sim_trace_dump(&c->trace, stderr, 120);
            fail_msg("trace lacks \"%s\" (in order) after position %zu", p, at);
        }
        at = i + 1;
    }
    va_end(ap);
    return at;
}

static void fx_expect_none(const struct sim_cluster *c, size_t from,
                           const char *pattern)
{
    size_t i = fx_find(c, from, pattern);

    if (i != (size_t)-1) {
        char buf[256];

        sim_trace_dump(&c->trace, stderr, 120);
        fail_msg("trace has \"%s\" at %zu, and must not",
                 sim_trace_format_text(sim_trace_get(&c->trace, i), buf,
                                       sizeof(buf)),
                 i);
    }
}

/* Formats a pattern (the fixture's tiny printf). */
static const char *pat(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static const char *pat(const char *fmt, ...)
{
    static char bufs[8][128];
    static int next;
    char *b = bufs[next++ % 8];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(b, sizeof(bufs[0]), fmt, ap);
    va_end(ap);
    return b;
}

/* Predicates for sim_cluster_run_until. */

struct fx_arg {
    raft_id id;
    uint64_t v;
    raft_id other;
};

static bool p_ready_leader(struct sim_cluster *c, void *arg)
{
    raft_id id = sim_cluster_leader(c);
    const struct fx_arg *a = arg;
    struct sim_node *n;

    if (id == 0 || (a != NULL && a->id != 0 && a->id != id)) {
        return false;
    }
    n = &c->nodes[id];
    return !n->busy && raft_term_at(n->r, raft_commit_index(n->r)) ==
                           raft_current_term(n->r);
}

static bool p_applied(struct sim_cluster *c, void *arg)
{
    const struct fx_arg *a = arg;

    return c->nodes[a->id].up && c->nodes[a->id].applied >= a->v;
}

static bool p_acked(struct sim_cluster *c, void *arg)
{
    const struct fx_arg *a = arg;

    return c->stats.acked >= a->v;
}

static bool p_last_index(struct sim_cluster *c, void *arg)
{
    const struct fx_arg *a = arg;
    struct sim_node *n = &c->nodes[a->id];

    return n->up && !n->busy && raft_last_index(n->r) >= a->v;
}

static bool p_leader_not(struct sim_cluster *c, void *arg)
{
    const struct fx_arg *a = arg;
    raft_id id = sim_cluster_leader(c);

    return id != 0 && id != a->id && id != a->other;
}

static bool p_not_leader(struct sim_cluster *c, void *arg)
{
    const struct fx_arg *a = arg;
    struct sim_node *n = &c->nodes[a->id];

    return !n->up || raft_role(n->r) != RAFT_LEADER;
}

static bool p_idle(struct sim_cluster *c, void *arg)
{
    const struct fx_arg *a = arg;

    return !c->nodes[a->id].busy;
}

/* Runs until node id has no batch in flight, so the core may be called. */
static void fx_idle(struct sim_cluster *c, raft_id id)
{
    struct fx_arg a = {id, 0, 0};

    assert_true(sim_cluster_run_until(c, p_idle, &a, 2000));
    fx_ok(c);
}

/* Runs until a leader (any if want == 0) has committed an entry of its
 * term; returns it. */
static raft_id fx_leader(struct sim_cluster *c, raft_id want, uint64_t ms)
{
    struct fx_arg a = {want, 0, 0};
    bool ok = sim_cluster_run_until(c, p_ready_leader, &a, ms);

    fx_ok(c);
    if (!ok) {
        sim_cluster_dump_nodes(c, stderr);
        fail_msg("no leader%s within %llu ms",
                 want ? " (the expected one)" : "", (unsigned long long)ms);
    }
    return sim_cluster_leader(c);
}

/* Proposes n entries at id and waits until all are acknowledged. */
static void fx_commit(struct sim_cluster *c, raft_id id, int n)
{
    struct fx_arg a = {id, c->stats.acked + (uint64_t)n, 0};
    int i;

    for (i = 0; i < n; i++) {
        fx_idle(c, id);
        assert_int_equal(sim_cluster_propose(c, id, NULL), 0);
    }
    assert_true(sim_cluster_run_until(c, p_acked, &a, 5000));
    fx_ok(c);
}

static void fx_wait_applied(struct sim_cluster *c, raft_id id, uint64_t index)
{
    struct fx_arg a = {id, index, 0};

    if (!sim_cluster_run_until(c, p_applied, &a, 10000)) {
        fx_ok(c);
        sim_cluster_dump_nodes(c, stderr);
        fail_msg("node %llu did not apply index %llu", (unsigned long long)id,
                 (unsigned long long)index);
    }
    fx_ok(c);
}

/* Every started, up member applied the leader's commit index. */
static void fx_converge(struct sim_cluster *c)
{
    raft_id l = fx_leader(c, 0, 10000);
    uint64_t commit = raft_commit_index(c->nodes[l].r);
    int i;

    for (i = 1; i <= SIM_MAX_NODES; i++) {
        if (c->nodes[i].up && c->nodes[i].member) {
            fx_wait_applied(c, (raft_id)i, commit);
        }
    }
}

static raft_id other_than(const struct sim_cluster *c, raft_id a, raft_id b)
{
    int i;

    for (i = 1; i <= c->sw.n_nodes; i++) {
        if ((raft_id)i != a && (raft_id)i != b) {
            return (raft_id)i;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------
 * Scenarios
 */

/* Paper 5.4 and thesis 6.2: a leader cut off with a minority keeps
 * accepting proposals but commits none of them; with CheckQuorum it
 * steps down.  The majority elects a new leader in a higher term.  After
 * the heal the old leader's uncommitted tail is truncated and replaced. */
static void test_leader_isolated_in_minority(void **state)
{
    struct sim_cluster *c = fx_start(*state, 5, NULL);
    raft_id old = fx_leader(c, 0, 5000);
    raft_id buddy = other_than(c, old, 0);
    uint64_t old_term = raft_current_term(c->nodes[old].r);
    uint64_t commit_before;
    struct fx_arg a = {old, 0, buddy};
    raft_id nl;
    size_t m;
    int i;

    fx_commit(c, old, 3);
    commit_before = raft_commit_index(c->nodes[old].r);
    m = fx_mark(c);
    sim_cluster_partition(c, (1U << old) | (1U << buddy));
    for (i = 0; i < 3; i++) {
        fx_idle(c, old);
        assert_int_equal(sim_cluster_propose(c, old, NULL), 0);
    }
    assert_true(sim_cluster_run_until(c, p_leader_not, &a, 5000));
    nl = fx_leader(c, 0, 5000);
    assert_true(nl != old && nl != buddy);
    assert_true(raft_current_term(c->nodes[nl].r) > old_term);
    fx_commit(c, nl, 3);
    a.id = old;
    assert_true(sim_cluster_run_until(c, p_not_leader, &a, 5000));
    /* The minority never committed what it accepted. */
    assert_int_equal(raft_commit_index(c->nodes[old].r), commit_before);
    fx_expect_seq(c, m,
                  pat("n%llu CHECK_QUORUM_LOST term=%llu",
                      (unsigned long long)old, (unsigned long long)old_term),
                  NULL);
    fx_expect_seq(c, m, pat("n%llu BECOME_LEADER", (unsigned long long)nl),
                  NULL);
    m = fx_mark(c);
    sim_cluster_heal(c);
    fx_converge(c);
    fx_expect_seq(c, m,
                  pat("n%llu TRUNCATE term=%llu index=%llu",
                      (unsigned long long)old,
                      (unsigned long long)raft_current_term(c->nodes[nl].r),
                      (unsigned long long)commit_before + 1),
                  NULL);
    assert_int_equal(c->stats.lost, 3); /* the minority's proposals */
    fx_ok(c);
}

static void tweak_compaction(struct sim_swarm *sw)
{
    sw->snapshot_trailing = 2;
    sw->max_msg_bytes = 64; /* the 300-byte snapshot goes in 5 chunks */
    sw->window_entries = 2; /* memory holds little of the log */
    sw->window_bytes = 256;
}

/* raft.h, "Memory": a follower that fell behind the leader's window but
 * not its host's log gets the entries read back from the host (fetch),
 * no snapshot; the leader's memory stays within its window. */
static void test_follower_lagging_behind_window(void **state)
{
    struct sim_cluster *c = fx_start(*state, 3, tweak_compaction);
    raft_id l = fx_leader(c, 0, 5000);
    raft_id f = other_than(c, l, 0);
    uint64_t fetched;
    size_t m;

    fx_commit(c, l, 2);
    sim_cluster_crash(c, f);
    fx_commit(c, l, 30);
    m = fx_mark(c);
    fetched = c->stats.fetches;
    assert_int_equal(sim_cluster_restart(c, f), 0);
    fx_commit(c, l, 1);
    fx_converge(c);
    assert_true(c->stats.fetches >= fetched + 30);
    assert_int_equal(c->stats.fetch_fails, 0);
    fx_expect_none(c, m, "* SNAPSHOT_SEND *");
    fx_ok(c);
}

/* Paper section 7: a follower that fell behind the leader's compacted
 * log can only catch up from a snapshot, sent in chunks, then the log. */
static void test_follower_lagging_past_compaction(void **state)
{
    struct sim_cluster *c = fx_start(*state, 3, tweak_compaction);
    raft_id l = fx_leader(c, 0, 5000);
    raft_id f = other_than(c, l, 0);
    raft_id g = other_than(c, l, f);
    size_t m;

    fx_commit(c, l, 2);
    sim_cluster_crash(c, f);
    fx_commit(c, l, 30);
    assert_int_equal(sim_cluster_snapshot(c, l), 0);
    fx_wait_applied(c, g, c->nodes[l].applied);
    assert_int_equal(sim_cluster_snapshot(c, g), 0);
    assert_true(raft_first_index(c->nodes[l].r) >
                c->nodes[f].disk.durable.first +
                    c->nodes[f].disk.durable.n_ents);
    m = fx_mark(c);
    assert_int_equal(sim_cluster_restart(c, f), 0);
    fx_commit(c, l, 1);
    fx_converge(c);
    fx_expect_seq(c, m, pat("n%llu SNAPSHOT_SEND", (unsigned long long)l),
                  pat("n%llu SNAPSHOT_INSTALL", (unsigned long long)f), NULL);
    /* One snapshot transfer, installed once. */
    assert_int_equal(
        fx_count(c, m, pat("n%llu SNAPSHOT_INSTALL", (unsigned long long)f)),
        1);
    fx_ok(c);
}

/* Thesis 9.6: with PreVote, a follower cut off from the cluster keeps
 * failing pre-votes without raising its term, so when the partition heals
 * its vote requests do not depose the healthy leader. */
static void test_prevote_partition_heal_keeps_leader(void **state)
{
    struct sim_cluster *c = fx_start(*state, 3, NULL);
    raft_id l = fx_leader(c, 0, 5000);
    raft_id f = other_than(c, l, 0);
    uint64_t term = raft_current_term(c->nodes[l].r);
    size_t m;

    fx_commit(c, l, 2);
    m = fx_mark(c);
    sim_cluster_isolate(c, f);
    assert_true(sim_cluster_run_for(c, 2000));
    fx_ok(c);
    assert_int_equal(raft_current_term(c->nodes[f].r), term);
    fx_expect_seq(
        c, m, pat("n%llu BECOME_PRE_CANDIDATE", (unsigned long long)f), NULL);
    sim_cluster_heal(c);
    assert_true(sim_cluster_run_for(c, 2000));
    fx_ok(c);
    assert_int_equal(sim_cluster_leader(c), l);
    assert_int_equal(raft_current_term(c->nodes[l].r), term);
    fx_expect_none(c, m, pat("n%llu BECOME_CANDIDATE", (unsigned long long)f));
    fx_expect_none(c, m, "TERM_BUMP");
    fx_converge(c);
}

static void tweak_no_prevote(struct sim_swarm *sw)
{
    sw->pre_vote = false;
    sw->check_quorum = false;
}

/* Paper 5.2 and 5.4.1: without PreVote, the partitioned follower's term
 * runs ahead; its vote requests after the heal force the leader to step
 * down, but its log is behind, so it cannot win: a node holding every
 * committed entry is elected in a higher term. */
static void test_vote_during_partition_heal(void **state)
{
    struct sim_cluster *c = fx_start(*state, 3, tweak_no_prevote);
    raft_id l = fx_leader(c, 0, 5000);
    raft_id f = other_than(c, l, 0);
    uint64_t term = raft_current_term(c->nodes[l].r);
    uint64_t fterm;
    raft_id nl;
    size_t m;

    sim_cluster_isolate(c, f);
    fx_commit(c, l, 3);
    assert_true(sim_cluster_run_for(c, 1500));
    fx_ok(c);
    fterm = raft_current_term(c->nodes[f].r);
    assert_true(fterm > term + 1);
    m = fx_mark(c);
    sim_cluster_heal(c);
    assert_true(sim_cluster_run_for(c, 1000));
    nl = fx_leader(c, 0, 5000);
    assert_true(nl != f);
    assert_true(raft_current_term(c->nodes[nl].r) > fterm);
    fx_expect_seq(c, m,
                  pat("n%llu TERM_BUMP * peer=%llu", (unsigned long long)l,
                      (unsigned long long)f),
                  pat("n%llu VOTE_REJECTED * peer=%llu", (unsigned long long)l,
                      (unsigned long long)f),
                  NULL);
    fx_expect_none(c, m, pat("n%llu BECOME_LEADER", (unsigned long long)f));
    fx_converge(c);
}

/* Thesis 4.2.2: a leader asked to remove itself keeps leading until the
 * change commits (not counting itself), then steps down; the remaining
 * servers elect a leader and carry on. */
static void test_remove_leader(void **state)
{
    struct sim_cluster *c = fx_start(*state, 3, NULL);
    raft_id l = fx_leader(c, 0, 5000);
    struct fx_arg a = {l, 0, 0};
    raft_index idx = 0;
    raft_id nl;
    size_t m;

    fx_commit(c, l, 2);
    fx_idle(c, l);
    m = fx_mark(c);
    assert_int_equal(raft_remove(sim_cluster_core(c, l), l, &idx), 0);
    assert_true(idx > 0);
    sim_cluster_kick(c, l);
    assert_true(sim_cluster_run_until(c, p_leader_not, &a, 5000));
    nl = fx_leader(c, 0, 5000);
    assert_true(nl != l);
    fx_expect_seq(c, m, pat("n%llu CONF_CHANGE", (unsigned long long)l),
                  pat("n%llu STEP_DOWN_REMOVED", (unsigned long long)l),
                  pat("n%llu BECOME_LEADER", (unsigned long long)nl), NULL);
    assert_null(raft_conf_find(raft_conf_current(c->nodes[nl].r), l));
    fx_commit(c, nl, 3);
    assert_true(sim_cluster_run_for(c, 1000)); /* decommission happens */
    assert_true(c->nodes[l].removed);
    fx_converge(c);
}

/* Thesis 3.10: leadership handed to a follower that is behind.  The
 * leader stops taking proposals, catches the target up, then sends
 * TimeoutNow; the target wins at once and has every committed entry. */
static void test_transfer_to_lagging_node(void **state)
{
    struct sim_cluster *c = fx_start(*state, 3, NULL);
    raft_id l = fx_leader(c, 0, 5000);
    raft_id f = other_than(c, l, 0);
    uint64_t commit;
    uint64_t term;
    uint64_t last;
    size_t m;

    sim_cluster_isolate(c, f);
    fx_commit(c, l, 10);
    commit = raft_commit_index(c->nodes[l].r);
    assert_true(raft_last_index(c->nodes[f].r) < commit);
    sim_cluster_heal(c);
    fx_idle(c, l);
    m = fx_mark(c);
    term = raft_current_term(c->nodes[l].r);
    last = raft_last_index(c->nodes[l].r);
    assert_int_equal(raft_transfer_leadership(sim_cluster_core(c, l), f), 0);
    assert_int_equal(sim_cluster_propose(c, l, NULL), RAFT_ETRANSFER);
    sim_cluster_kick(c, l);
    fx_leader(c, f, 5000);
    fx_expect_seq(c, m, pat("n%llu TRANSFER_START", (unsigned long long)l),
                  pat("n%llu TRANSFER_TIMEOUT_NOW term=%llu index=%llu "
                      "peer=%llu",
                      (unsigned long long)l, (unsigned long long)term,
                      (unsigned long long)last, (unsigned long long)f),
                  pat("n%llu BECOME_CANDIDATE", (unsigned long long)f),
                  pat("n%llu BECOME_LEADER", (unsigned long long)f), NULL);
    fx_expect_none(c, m, "TRANSFER_ABORT");
    assert_true(raft_commit_index(c->nodes[f].r) >= commit);
    fx_commit(c, f, 2);
    fx_converge(c);
}

/* Paper 5.4.1: a server that restarts with an older log cannot win an
 * election against one holding newer committed entries; the voter with
 * the newer log refuses it, wins itself, and brings the old one up to
 * date. */
static void test_restart_with_older_log(void **state)
{
    struct sim_cluster *c = fx_start(*state, 3, NULL);
    raft_id l = fx_leader(c, 0, 5000);
    raft_id old = other_than(c, l, 0);
    raft_id fresh = other_than(c, l, old);
    uint64_t commit;
    raft_id nl;
    size_t m;

    fx_commit(c, l, 2);
    sim_cluster_crash(c, old);
    fx_commit(c, l, 5);
    commit = raft_commit_index(c->nodes[l].r);
    fx_wait_applied(c, fresh, commit);
    sim_cluster_crash(c, l);
    m = fx_mark(c);
    /* Keep the two apart long enough for the old log to campaign. */
    sim_cluster_isolate(c, fresh);
    assert_int_equal(sim_cluster_restart(c, old), 0);
    assert_true(raft_last_index(c->nodes[old].r) < commit);
    assert_true(sim_cluster_run_for(c, 1000));
    sim_cluster_heal(c);
    nl = fx_leader(c, 0, 5000);
    assert_int_equal(nl, fresh);
    fx_expect_seq(
        c, m, pat("n%llu BECOME_PRE_CANDIDATE", (unsigned long long)old), NULL);
    fx_expect_none(c, m, pat("n%llu BECOME_LEADER", (unsigned long long)old));
    fx_expect_none(c, m,
                   pat("n%llu PREVOTE_GRANTED * peer=%llu",
                       (unsigned long long)fresh, (unsigned long long)old));
    fx_wait_applied(c, old, commit);
    assert_int_equal(sim_cluster_restart(c, l), 0);
    fx_converge(c);
}

static bool p_vote_granted(struct sim_cluster *c, void *arg)
{
    const struct fx_arg *a = arg; /* v = number of votes seen before */

    return c->n_votes > a->v;
}

/* Paper 5.2 and figure 2: a candidate counts only votes granted in its
 * current term.  A grant delayed past the candidate's next election
 * timeout arrives when it campaigns in a later term; it must be ignored,
 * or the candidate could lead a term in which nobody voted for it. */
static void test_stale_vote_grant_not_counted(void **state)
{
    struct sim_cluster *c = fx_start(*state, 3, tweak_no_prevote);
    raft_id l = fx_leader(c, 0, 5000);
    struct fx_arg a = {0, 0, 0};
    raft_id x;
    raft_id y;
    uint64_t t;
    size_t m;

    fx_commit(c, l, 2);
    sim_cluster_crash(c, l);
    m = fx_mark(c);
    a.v = c->n_votes;
    assert_true(sim_cluster_run_until(c, p_vote_granted, &a, 5000));
    /* y just granted x's vote in term t; the answer is not sent yet (it
     * waits for y's disk).  Hold it for a second, and let x's later vote
     * requests never reach y. */
    x = c->votes[c->n_votes - 1].candidate;
    y = c->votes[c->n_votes - 1].voter;
    t = c->votes[c->n_votes - 1].term;
    sim_net_hold(&c->net, (int)y, (int)x, c->q.now + 1000);
    sim_net_set_link(&c->net, (int)x, (int)y, false);
    assert_true(sim_cluster_run_for(c, 1500));
    fx_ok(c);
    assert_true(raft_current_term(c->nodes[x].r) > t);
    fx_expect_seq(c, m,
                  pat("n%llu VOTE_GRANTED term=%llu * peer=%llu",
                      (unsigned long long)y, (unsigned long long)t,
                      (unsigned long long)x),
                  pat("n%llu BECOME_CANDIDATE term=%llu", (unsigned long long)x,
                      (unsigned long long)t + 1),
                  NULL);
    fx_expect_none(c, m, pat("n%llu BECOME_LEADER", (unsigned long long)x));
    sim_cluster_heal(c);
    assert_int_equal(sim_cluster_restart(c, l), 0);
    fx_converge(c);
}

static void tweak_figure8(struct sim_swarm *sw)
{
    sw->max_msg_bytes = 1;     /* one entry per APPEND */
    sw->max_inflight_msgs = 1; /* the next only after the ack */
    sw->check_quorum = false;  /* no leases: votes decide alone */
}

static void cut_both(struct sim_cluster *c, raft_id a, raft_id b)
{
    sim_net_set_link(&c->net, (int)a, (int)b, false);
    sim_net_set_link(&c->net, (int)b, (int)a, false);
}

static bool p_fig8_replicated(struct sim_cluster *c, void *arg)
{
    const struct fx_arg *a = arg; /* id = leader, other = follower */
    struct sim_node *n = &c->nodes[a->id];

    return n->up && (raft_match_index(n->r, a->other) >= a->v ||
                     raft_commit_index(n->r) >= a->v);
}

/* The paper's figure 8: an entry from an earlier term that sits on a
 * majority is not committed by counting replicas, because a server with
 * a later last term can still be elected and overwrite it.  Only once an
 * entry of the leader's own term is on a majority is the prefix safe
 * (paper 5.4.2).  The trap is built step by step: one entry per message,
 * one message in flight, links cut at the exact steps.  A core that counts
 * replicas commits index I in (c), and (d) then commits another entry
 * there: the checker's state machine safety check fails. */
static void test_figure8(void **state)
{
    struct sim_cluster *c = fx_start(*state, 5, tweak_figure8);
    raft_id s1 = fx_leader(c, 0, 5000);
    raft_id s2;
    raft_id s5;
    raft_id x;
    raft_id y;
    raft_id cc = 0;
    raft_id dd = 0;
    uint64_t idx;
    uint64_t t5;
    struct fx_arg a;
    size_t m;
    int i;

    fx_commit(c, s1, 1);
    fx_converge(c);
    /* (a) s1 replicates entry idx to s2 only. */
    s2 = other_than(c, s1, 0);
    for (i = 1; i <= 5; i++) {
        if ((raft_id)i != s1 && (raft_id)i != s2) {
            cut_both(c, s1, (raft_id)i);
        }
    }
    fx_idle(c, s1);
    assert_int_equal(sim_cluster_propose(c, s1, &idx), 0);
    a = (struct fx_arg){s2, idx, 0};
    assert_true(sim_cluster_run_until(c, p_last_index, &a, 2000));
    fx_ok(c);
    /* (b) s1 crashes; one of the other three wins, appends its no-op at
     * idx and crashes before it reaches anyone. */
    sim_cluster_crash(c, s1);
    sim_cluster_heal(c);
    sim_cluster_isolate(c, s2);
    a = (struct fx_arg){s1, 0, s2};
    assert_true(sim_cluster_run_until(c, p_leader_not, &a, 5000));
    s5 = sim_cluster_leader(c);
    for (i = 1; i <= 5; i++) {
        sim_net_set_link(&c->net, (int)s5, i, false);
    }
    a = (struct fx_arg){s5, 0, 0};
    assert_true(sim_cluster_run_until(c, p_idle, &a, 2000));
    t5 = raft_current_term(c->nodes[s5].r);
    assert_int_equal(raft_last_index(c->nodes[s5].r), idx);
    assert_int_equal(raft_term_at(c->nodes[s5].r, idx), t5);
    sim_cluster_crash(c, s5);
    /* Let what s5 sent before crashing die on the cut links: a packet of
     * a crashed server can still arrive once the links are back. */
    assert_true(sim_cluster_run_for(c, 20));
    for (i = 1; i <= 5; i++) {
        if ((raft_id)i != s1 && (raft_id)i != s2 && (raft_id)i != s5) {
            if (cc == 0) {
                cc = (raft_id)i;
            } else {
                dd = (raft_id)i;
            }
        }
    }
    /* (c) s1 restarts and s1 or s2 (both hold idx of the old term) wins a
     * later term; it replicates idx to cc, so idx sits on a majority,
     * and crashes before its own no-op gets past the two of them. */
    sim_cluster_heal(c);
    assert_int_equal(sim_cluster_restart(c, s1), 0);
    m = fx_mark(c);
    a = (struct fx_arg){s5, 0, 0};
    assert_true(sim_cluster_run_until(c, p_leader_not, &a, 5000));
    x = sim_cluster_leader(c);
    assert_true(x == s1 || x == s2);
    y = x == s1 ? s2 : s1;
    assert_true(raft_current_term(c->nodes[x].r) > t5);
    cut_both(c, x, dd);
    a = (struct fx_arg){x, idx, cc};
    assert_true(sim_cluster_run_until(c, p_fig8_replicated, &a, 5000));
    sim_net_set_link(&c->net, (int)x, (int)cc, false);
    a = (struct fx_arg){x, 0, 0};
    assert_true(sim_cluster_run_until(c, p_idle, &a, 2000));
    fx_ok(c);
    /* The old-term entry is on x, y and cc, a majority of five, and
     * still not committed. */
    assert_true(raft_commit_index(c->nodes[x].r) < idx);
    fx_expect_none(c, m,
                   pat("n%llu COMMIT term=%llu index=%llu",
                       (unsigned long long)x,
                       (unsigned long long)raft_current_term(c->nodes[x].r),
                       (unsigned long long)idx));
    /* (d) x crashes; s5 comes back and, with a later last term than cc
     * and dd, wins their votes and overwrites idx on cc. */
    sim_cluster_crash(c, x);
    sim_cluster_isolate(c, y);
    assert_true(sim_cluster_run_for(c, 20)); /* x's last packets die */
    sim_cluster_heal(c);
    sim_cluster_isolate(c, y);
    assert_int_equal(sim_cluster_restart(c, s5), 0);
    m = fx_mark(c);
    fx_leader(c, s5, 5000);
    fx_wait_applied(c, cc, idx + 1);
    fx_expect_seq(c, m, pat("n%llu BECOME_LEADER", (unsigned long long)s5),
                  pat("n%llu TRUNCATE", (unsigned long long)cc), NULL);
    assert_int_equal(raft_term_at(c->nodes[s5].r, idx), t5);
    /* Everyone back: they all converge on s5's entry at idx. */
    sim_cluster_heal(c);
    assert_int_equal(sim_cluster_restart(c, x), 0);
    fx_converge(c);
    assert_non_null(sim_check_commit_at(&c->check, idx));
    assert_int_equal(sim_check_commit_at(&c->check, idx)->term, t5);
    fx_ok(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_leader_isolated_in_minority,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_follower_lagging_past_compaction,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_follower_lagging_behind_window,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(
            test_prevote_partition_heal_keeps_leader, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_vote_during_partition_heal,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_remove_leader, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_transfer_to_lagging_node, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_restart_with_older_log, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_stale_vote_grant_not_counted,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_figure8, fx_setup, fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
