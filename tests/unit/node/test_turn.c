/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/node/test_turn.c - node/cluster/turn.c: three members, each
 * a real store and a host, exchanging payloads through in-memory queues
 * on a shared clock. They elect a leader, commit what the leader
 * proposes and what a follower forwards, apply the same entries in the
 * same order, survive the loss of the leader, and a member that was down
 * catches up when it comes back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "node/cluster/turn.h"
#include "node/gr.h"
#include "storage/store.h"

#define N        3
#define MAX_LOG  4096
#define STEP_MS  5

struct member {
    int k;
    bool up;
    char dir[64];
    char snaps[80];
    struct store *s;
    struct gr_host h;
    struct gr_frame *inbox;
    struct store_effects fx;
    /* What it applied: (index, origin seq), in order. */
    uint64_t idx[MAX_LOG];
    uint64_t seq[MAX_LOG];
    size_t n;
    bool leader;
    uint64_t leader_id;
    size_t n_installed; /* turns that installed a received snapshot */
    uint32_t verdict;   /* of the last membership change applied */
    bool has_verdict;
};

struct cluster {
    struct member m[N];
    uint64_t now;
    uint64_t next_seq;
    uint64_t snapshot_every; /* 0: none taken */
};

static uint64_t id_of(int k)
{
    return (uint64_t)k + 1;
}

static void deliver(struct cluster *c, struct gr_frame *f, uint64_t from)
{
    while (f != NULL) {
        struct gr_frame *next = f->next;
        int to = (int)f->peer - 1;

        f->next = NULL;
        if (to < 0 || to >= N || !c->m[to].up) {
            gr_free(f); /* lost, as to a node that is down */
        } else {
            struct gr_frame **end = &c->m[to].inbox;

            f->peer = from;
            while (*end != NULL) {
                end = &(*end)->next;
            }
            *end = f;
        }
        f = next;
    }
}

struct send_ctx {
    struct cluster *c;
    struct member *m;
};

static void send_now(void *arg, struct gr_frame *frames)
{
    struct send_ctx *x = arg;

    deliver(x->c, frames, id_of(x->m->k));
}

static int applied(void *arg, uint64_t index, struct store_cmd *cmd,
                   size_t fx_begin, size_t fx_end)
{
    struct send_ctx *x = arg;
    struct member *m = x->m;

    (void)fx_begin;
    (void)fx_end;
    assert_true(m->n < MAX_LOG);
    m->idx[m->n] = index;
    m->seq[m->n] = cmd != NULL ? cmd->origin.seq : 0;
    m->n++;
    if (cmd != NULL && cmd->type == STORE_CMD_MEMBER) {
        m->verdict = cmd->u.member.verdict;
        m->has_verdict = true;
    }
    store_cmd_free(cmd);
    return 0;
}

static void member_open(struct cluster *c, struct member *m)
{
    struct store_config sc;
    struct gr_host_config hc;
    char err[256];
    int i;

    memset(&sc, 0, sizeof(sc));
    sc.dir = m->dir;
    sc.node_id = id_of(m->k);
    sc.cluster = "t";
    assert_int_equal(store_open(&sc, &m->s, err, sizeof(err)), 0);
    memset(&hc, 0, sizeof(hc));
    hc.member = true;
    hc.node_id = id_of(m->k);
    if (c->snapshot_every > 0) {
        snprintf(m->snaps, sizeof(m->snaps), "%s/snaps", m->dir);
        hc.snap_dir = m->snaps;
        hc.snapshot_every = c->snapshot_every;
    }
    hc.election_ms = 100;
    hc.heartbeat_ms = 20;
    hc.initial_conf.n_members = N;
    for (i = 0; i < N; i++) {
        hc.initial_conf.members[i].id = id_of(i);
        hc.initial_conf.members[i].voter = true;
    }
    assert_int_equal(gr_host_open(&m->h, m->s, &hc, c->now, err, sizeof(err)),
                     0);
    store_effects_init(&m->fx);
    m->n = 0;
    m->up = true;
}

static void member_crash(struct member *m)
{
    gr_host_close(&m->h);
    store_close(m->s);
    store_effects_close(&m->fx);
    gr_frames_free(m->inbox);
    m->inbox = NULL;
    m->up = false;
    m->leader = false;
}

static int setup(void **state)
{
    struct cluster *c = calloc(1, sizeof(*c));
    int k;

    assert_non_null(c);
    c->now = 10000;
    for (k = 0; k < N; k++) {
        c->m[k].k = k;
        snprintf(c->m[k].dir, sizeof(c->m[k].dir), "/tmp/gr-turn-XXXXXX");
        assert_non_null(mkdtemp(c->m[k].dir));
        member_open(c, &c->m[k]);
    }
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct cluster *c = *state;
    char cmd[128];
    int k;

    for (k = 0; k < N; k++) {
        if (c->m[k].up) {
            member_crash(&c->m[k]);
        }
        snprintf(cmd, sizeof(cmd), "rm -rf %s", c->m[k].dir);
        assert_int_equal(system(cmd), 0);
    }
    free(c);
    return 0;
}

/* One turn of member m; frames to propose or forward go in first. */
static void turn(struct cluster *c, struct member *m, struct gr_frame *extra)
{
    struct send_ctx x = {c, m};
    struct gr_turn t;

    memset(&t, 0, sizeof(t));
    t.mono_ms = c->now;
    t.wall_ms = 1764950400000ull + c->now;
    t.inbox = m->inbox;
    m->inbox = NULL;
    t.fx = &m->fx;
    t.send_now = send_now;
    t.applied = applied;
    t.arg = &x;
    store_effects_reset(&m->fx);
    assert_int_equal(gr_turn_input(&m->h, &t), 0);
    if (extra != NULL) {
        deliver(c, extra, id_of(m->k));
    }
    do {
        t.more = false;
        assert_int_equal(gr_turn_write(&m->h, &t), 0);
    } while (t.more);
    deliver(c, t.out_after, id_of(m->k));
    m->n_installed += t.installed;
    m->leader = t.leader;
    m->leader_id = t.leader_id;
}

static void step(struct cluster *c)
{
    int k;

    for (k = 0; k < N; k++) {
        if (c->m[k].up) {
            turn(c, &c->m[k], NULL);
        }
    }
    c->now += STEP_MS;
}

/* The one leader among the members up, after running until there is
 * one that the others follow (bounded). */
static struct member *leader(struct cluster *c)
{
    int i;
    int k;

    for (i = 0; i < 2000; i++) {
        struct member *l = NULL;
        bool agreed = true;

        for (k = 0; k < N; k++) {
            if (c->m[k].up && c->m[k].leader) {
                l = &c->m[k];
            }
        }
        for (k = 0; l != NULL && k < N; k++) {
            agreed &= !c->m[k].up || c->m[k].leader_id == id_of(l->k);
        }
        if (l != NULL && agreed) {
            return l;
        }
        step(c);
    }
    fail_msg("no leader within %d steps", i);
    return NULL;
}

static void encoded_submit(struct cluster *c, struct member *m, uint8_t **buf,
                           size_t *len)
{
    struct store_cmd cmd;

    memset(&cmd, 0, sizeof(cmd));
    cmd.type = STORE_CMD_SUBMIT;
    cmd.origin.node_id = id_of(m->k);
    cmd.origin.incarnation = 1;
    cmd.origin.seq = ++c->next_seq;
    cmd.u.submit.function.base = (const uint8_t *)"fn";
    cmd.u.submit.function.len = 2;
    cmd.u.submit.data.base = (const uint8_t *)"x";
    cmd.u.submit.data.len = 1;
    cmd.u.submit.prio = STORE_PRIO_NORMAL;
    cmd.u.submit.background = true;
    assert_int_equal(store_cmd_encode(&cmd, buf, len), 0);
}

/* Proposes n submissions on the leader (in a turn of its own). */
static void propose_on(struct cluster *c, struct member *l, int n)
{
    struct send_ctx x = {c, l};
    struct gr_turn t;
    uint64_t index;
    int i;

    memset(&t, 0, sizeof(t));
    t.mono_ms = c->now;
    t.wall_ms = 1764950400000ull + c->now;
    t.fx = &l->fx;
    t.send_now = send_now;
    t.applied = applied;
    t.arg = &x;
    for (i = 0; i < n; i++) {
        uint8_t *buf;
        size_t len;

        encoded_submit(c, l, &buf, &len);
        assert_int_equal(gr_turn_propose(&l->h, &t, buf, len, &index), 0);
        store_free(buf);
    }
    store_effects_reset(&l->fx);
    do {
        assert_int_equal(gr_turn_write(&l->h, &t), 0);
    } while (t.more);
    deliver(c, t.out_after, id_of(l->k));
}

/* Runs until every member up has applied `seqs` commands, then checks
 * that they applied the same entries in the same order. */
static void converge(struct cluster *c, size_t seqs)
{
    int i;
    int k;

    for (i = 0; i < 2000; i++) {
        bool all = true;

        for (k = 0; k < N; k++) {
            size_t got = 0;
            size_t j;

            for (j = 0; j < c->m[k].n; j++) {
                got += c->m[k].seq[j] != 0;
            }
            all &= !c->m[k].up || got >= seqs;
        }
        if (all) {
            break;
        }
        step(c);
    }
    /* The same commands at the same indexes, in the same order. */
    for (k = 1; k < N; k++) {
        const struct member *a = &c->m[0];
        const struct member *b = &c->m[k];
        size_t ja = 0;
        size_t jb = 0;

        if (!a->up || !b->up) {
            continue;
        }
        for (;;) {
            while (ja < a->n && a->seq[ja] == 0) {
                ja++;
            }
            while (jb < b->n && b->seq[jb] == 0) {
                jb++;
            }
            if (ja == a->n || jb == b->n) {
                break;
            }
            assert_int_equal(a->idx[ja], b->idx[jb]);
            assert_int_equal(a->seq[ja], b->seq[jb]);
            ja++;
            jb++;
        }
    }
    for (k = 0; k < N; k++) {
        size_t got = 0;
        size_t j;

        for (j = 0; j < c->m[k].n; j++) {
            got += c->m[k].seq[j] != 0;
        }
        if (c->m[k].up) {
            assert_int_equal(got, seqs);
        }
    }
}

static void forget_applied(struct cluster *c)
{
    int k;

    for (k = 0; k < N; k++) {
        c->m[k].n = 0;
    }
}

/* Proposes a membership change on the leader as a command, runs until
 * the leader applied it, and returns the verdict it gave. */
static uint32_t change_on(struct cluster *c, struct member *l,
                          enum store_member_op op, uint64_t id)
{
    struct send_ctx x = {c, l};
    struct store_cmd cmd;
    struct gr_turn t;
    uint64_t index;
    uint8_t *buf;
    size_t len;
    int i;

    memset(&cmd, 0, sizeof(cmd));
    cmd.type = STORE_CMD_MEMBER;
    cmd.origin.node_id = id_of(l->k);
    cmd.origin.incarnation = 1;
    cmd.origin.seq = ++c->next_seq;
    cmd.u.member.op = op;
    cmd.u.member.member.id = id;
    snprintf(cmd.u.member.member.name, sizeof(cmd.u.member.member.name),
             "m%llu", (unsigned long long)id);
    assert_int_equal(store_cmd_encode(&cmd, &buf, &len), 0);
    memset(&t, 0, sizeof(t));
    t.mono_ms = c->now;
    t.wall_ms = 1764950400000ull + c->now;
    t.fx = &l->fx;
    t.send_now = send_now;
    t.applied = applied;
    t.arg = &x;
    l->has_verdict = false;
    assert_int_equal(gr_turn_propose(&l->h, &t, buf, len, &index), 0);
    store_free(buf);
    store_effects_reset(&l->fx);
    do {
        assert_int_equal(gr_turn_write(&l->h, &t), 0);
    } while (t.more);
    deliver(c, t.out_after, id_of(l->k));
    for (i = 0; i < 500 && !l->has_verdict; i++) {
        step(c);
    }
    assert_true(l->has_verdict);
    return l->verdict;
}

static size_t voters_of(const struct member *m)
{
    const struct raft_conf *conf = raft_conf_current(m->h.raft);
    size_t n = 0;
    size_t i;

    for (i = 0; i < conf->n_members; i++) {
        n += conf->members[i].voter;
    }
    return n;
}

static void test_turn_leader_judges_membership_changes(void **state)
{
    struct cluster *c = *state;
    struct member *l = leader(c);
    struct member *f = &c->m[(l->k + 1) % N];
    struct member *g = &c->m[(l->k + 2) % N];
    int i;

    propose_on(c, l, 2);
    converge(c, 2);
    assert_int_equal(change_on(c, l, STORE_MEMBER_REMOVE, 99),
                     STORE_VERDICT_UNKNOWN);
    assert_int_equal(change_on(c, l, STORE_MEMBER_TRANSFER, id_of(l->k)),
                     STORE_VERDICT_SELF);
    assert_int_equal(change_on(c, l, STORE_MEMBER_PROMOTE, id_of(g->k)),
                     STORE_VERDICT_VOTER);
    assert_int_equal(change_on(c, l, STORE_MEMBER_ADD, id_of(g->k)),
                     STORE_VERDICT_EXISTS);
    /* A removal: the configuration loses the member on the leader and on
     * the follower that stays. */
    assert_int_equal(change_on(c, l, STORE_MEMBER_REMOVE, id_of(f->k)),
                     STORE_VERDICT_OK);
    member_crash(f); /* the operator stops the node removed */
    assert_int_equal(voters_of(l), 2);
    propose_on(c, l, 1);
    for (i = 0; i < 200 && voters_of(g) != 2; i++) {
        step(c);
    }
    assert_int_equal(voters_of(g), 2);
    assert_null(raft_conf_find(raft_conf_current(g->h.raft), id_of(f->k)));
    /* A learner added under a new id, which never answers, is never
     * caught up: its promotion is refused. */
    assert_int_equal(change_on(c, l, STORE_MEMBER_ADD, 77),
                     STORE_VERDICT_OK);
    assert_int_equal(change_on(c, l, STORE_MEMBER_PROMOTE, 77),
                     STORE_VERDICT_CATCHUP);
}

static void test_turn_members_elect_and_commit(void **state)
{
    struct cluster *c = *state;
    struct member *l = leader(c);

    propose_on(c, l, 5);
    converge(c, 5);
}

static void test_turn_follower_forwards_to_the_leader(void **state)
{
    struct cluster *c = *state;
    struct member *l = leader(c);
    struct member *f = &c->m[(l->k + 1) % N];
    struct gr_frame *fw = NULL;
    int i;

    for (i = 0; i < 3; i++) {
        uint8_t *buf;
        size_t len;

        encoded_submit(c, f, &buf, &len);
        assert_int_equal(gr_turn_forward_add(&fw, id_of(l->k), buf, len), 0);
        store_free(buf);
    }
    turn(c, f, fw);
    converge(c, 3);
}

/* Entries m applied whose origin seq is seq. */
static size_t applied_with_seq(const struct member *m, uint64_t seq)
{
    size_t got = 0;
    size_t j;

    for (j = 0; j < m->n; j++) {
        got += m->seq[j] == seq;
    }
    return got;
}

/* A follower sends a command again while the leader holds it (its resend
 * time ran out before the commit, as with a large payload): the leader
 * appends it once while it holds it unapplied, and counts the copies it
 * dropped. A new leader, in a later term, takes a copy again (the old
 * term's entry may be gone). */
static void test_turn_leader_appends_a_forwarded_copy_once(void **state)
{
    struct cluster *c = *state;
    struct member *l = leader(c);
    struct member *f = &c->m[(l->k + 1) % N];
    struct member *l2;
    struct gr_frame *fw = NULL;
    uint64_t seq;
    uint8_t *buf;
    size_t len;
    int k;

    encoded_submit(c, f, &buf, &len);
    seq = c->next_seq;
    assert_int_equal(gr_turn_forward_add(&fw, id_of(l->k), buf, len), 0);
    assert_int_equal(gr_turn_forward_add(&fw, id_of(l->k), buf, len), 0);
    turn(c, f, fw);
    fw = NULL;
    assert_int_equal(gr_turn_forward_add(&fw, id_of(l->k), buf, len), 0);
    turn(c, f, fw);
    converge(c, 1);
    assert_true(l->h.n_fwd_dropped == 2);
    for (k = 0; k < N; k++) {
        assert_int_equal(applied_with_seq(&c->m[k], seq), 1);
    }
    /* Once applied, a late copy goes to the log again (apply may have
     * found the first overtaken); apply's replay check ignores it. */
    fw = NULL;
    assert_int_equal(gr_turn_forward_add(&fw, id_of(l->k), buf, len), 0);
    turn(c, f, fw);
    for (k = 0; k < 50; k++) {
        step(c);
    }
    assert_true(l->h.n_fwd_dropped == 2);
    assert_int_equal(applied_with_seq(l, seq), 2);

    /* The leader lost: the new one, in its term, appends the copy. */
    member_crash(l);
    l2 = leader(c);
    fw = NULL;
    assert_int_equal(gr_turn_forward_add(&fw, id_of(l2->k), buf, len), 0);
    turn(c, f == l2 ? &c->m[(l2->k + 1) % N] : f, fw);
    for (k = 0; k < 50; k++) {
        step(c);
    }
    assert_true(l2->h.n_fwd_dropped == 0);
    assert_int_equal(applied_with_seq(l2, seq), 3);
    store_free(buf);
}

static void test_turn_survives_the_leader_and_a_member_catches_up(
    void **state)
{
    struct cluster *c = *state;
    struct member *l = leader(c);
    struct member *l2;

    propose_on(c, l, 2);
    converge(c, 2);
    member_crash(l);
    l2 = leader(c);
    assert_ptr_not_equal(l2, l);
    forget_applied(c);
    propose_on(c, l2, 3);
    converge(c, 3);
    /* The old leader comes back from its disk and applies the three it
     * missed, at the same indexes as the others. */
    member_open(c, l);
    converge(c, 3);
}

/* A follower down while the others commit more than raft/'s window of
 * entries: back up, it is served entries read back from the leader's
 * store (raft/ holds only the window in memory). */
static void test_turn_follower_behind_the_window_catches_up(void **state)
{
    struct cluster *c = *state;
    struct member *l = leader(c);
    struct member *f = &c->m[(l->k + 1) % N];
    int i;

    member_crash(f);
    forget_applied(c);
    for (i = 0; i < 15; i++) {
        propose_on(c, l, 100);
        step(c);
    }
    converge(c, 1500);
    member_open(c, f);
    converge(c, 1500);
}

/* Jobs queued in fn on member m, and its applied index. */
static uint64_t queued_on(struct member *m, uint64_t *applied)
{
    struct store_txn *txn;
    struct store_stat st;

    assert_int_equal(store_stat(m->s, &st), 0);
    assert_int_equal(store_txn_begin(m->s, false, &txn), 0);
    assert_int_equal(store_applied_index(txn, applied), 0);
    store_txn_abort(txn);
    return st.n_jobs;
}

/* Members that take snapshots and compact their logs: a follower down
 * while the others committed far past their compaction point is sent the
 * leader's snapshot file in chunks, installs it, and ends with the same
 * queue at the same applied index. (A node whose data directory was
 * wiped is another matter: Raft counts on what a voter acknowledged
 * staying on its disk, so a wiped node must rejoin as a new member.) */
static void test_turn_follower_past_compaction_gets_the_snapshot(
    void **state)
{
    struct cluster *c = *state;
    struct member *l;
    struct member *f;
    uint64_t la;
    uint64_t fa;
    uint64_t first;
    uint64_t last;
    struct store_txn *txn;
    int i;
    int k;

    /* Reopen the members with snapshots every 50 entries. */
    for (k = 0; k < N; k++) {
        member_crash(&c->m[k]);
    }
    c->snapshot_every = 50;
    for (k = 0; k < N; k++) {
        member_open(c, &c->m[k]);
    }
    l = leader(c);
    f = &c->m[(l->k + 1) % N];
    member_crash(f);
    /* More than raft/'s window of 1,024 entries (THE HOST LOOP,
     * "Memory"), so the first entries the follower lacks are neither in
     * memory nor in the compacted log. */
    for (i = 0; i < 40; i++) {
        propose_on(c, l, 40);
        step(c);
    }
    /* Until the leader has taken a snapshot and compacted behind it (the
     * dump runs on a thread: wait for the turns to see it). */
    for (i = 0; i < 4000; i++) {
        assert_int_equal(store_txn_begin(l->s, false, &txn), 0);
        assert_int_equal(store_log_bounds(txn, &first, &last), 0);
        store_txn_abort(txn);
        if (first > 100) {
            break;
        }
        /* The dump runs on a thread: let it finish, then turns go on. */
        if (l->h.snaps_open) {
            gr_snaps_dump_wait(&l->h.snaps);
        }
        step(c);
    }
    assert_true(first > 100);
    member_open(c, f);
    f->n_installed = 0;
    for (i = 0; i < 4000; i++) {
        if (queued_on(f, &fa) == queued_on(l, &la) && fa == la) {
            break;
        }
        step(c);
    }
    assert_int_equal(queued_on(f, &fa), 1600);
    assert_int_equal(queued_on(l, &la), 1600);
    assert_int_equal(fa, la);
    /* The turn that installed it says so (a member settles its own
     * proposals the snapshot covered then: node/pipeline/member.c). */
    assert_true(f->n_installed >= 1);
    assert_int_equal(l->n_installed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
        T(test_turn_members_elect_and_commit),
        T(test_turn_leader_judges_membership_changes),
        T(test_turn_follower_forwards_to_the_leader),
        T(test_turn_leader_appends_a_forwarded_copy_once),
        T(test_turn_survives_the_leader_and_a_member_catches_up),
        T(test_turn_follower_behind_the_window_catches_up),
        T(test_turn_follower_past_compaction_gets_the_snapshot),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
