/* SPDX-License-Identifier: BSD-3-Clause
 * tests/simhost/sh_main.c - the `simhost` program: runs seeds of whole
 * members (simhost.h says what is real and what is simulated), each in
 * two phases, and reports the first seed that breaks a check with the
 * command that replays it.
 *
 *   fault phase     clients submit, workers work; nodes crash (one,
 *                   several, all) and restart from their disks, links
 *                   are cut (partitions, an isolated leader), worker
 *                   connections close;
 *   liveness phase  every node up, every link healed, no loss: every
 *                   acknowledged submission's job must be done and every
 *                   node must apply the same log, within a bound of
 *                   virtual time.
 *
 * A seed is one run: every random choice comes from one xoshiro256**
 * stream seeded by it, events run in (time, sequence) order, and the
 * only thread besides the loop (a snapshot dump) is waited for at once.
 *
 * Not here: the members (sh_node.c), the Gearman side and the checks
 * (sh_gear.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "node/gr.h"
#include "simhost.h"

struct opts {
    uint64_t first;
    uint64_t last;
    int nodes;          /* 0: the seed chooses */
    uint64_t fault_ms;  /* length of the fault phase */
    uint64_t live_ms;   /* bound of the liveness phase */
    size_t max_subs;    /* submissions per seed */
    size_t last_lines;  /* events printed on failure */
    bool trace;
    bool verbose;
    bool stop_on_fail;
    const char *root;
};

/* ---------------------------------------------------------------------
 * Logging.
 */

void sh_log(struct sh_world *w, const char *fmt, ...)
{
    char line[160];
    int len;
    va_list ap;

    len = snprintf(line, sizeof(line), "t=%-7llu ",
                   (unsigned long long)w->q.now);
    va_start(ap, fmt);
    vsnprintf(line + len, sizeof(line) - (size_t)len, fmt, ap);
    va_end(ap);
    if (w->trace) {
        printf("%s\n", line);
    }
    if (w->ring_len > 0) {
        memcpy(w->ring[w->ring_pos % w->ring_len], line, sizeof(line));
        w->ring_pos++;
    }
}

void sh_fail(struct sh_world *w, const char *fmt, ...)
{
    va_list ap;

    if (w->failed) {
        return;
    }
    w->failed = true;
    va_start(ap, fmt);
    vsnprintf(w->why, sizeof(w->why), fmt, ap);
    va_end(ap);
    sh_log(w, "FAIL %s", w->why);
}

/* ---------------------------------------------------------------------
 * The seed's configuration.
 */

static void draw_swarm(struct sh_world *w, const struct opts *o)
{
    struct sh_swarm *s = &w->sw;
    struct sim_rng *r = &w->rng;

    memset(s, 0, sizeof(*s));
    s->n_nodes = o->nodes > 0 ? o->nodes : sim_rng_chance(r, 250) ? 5 : 3;
    s->n_workers = (int)sim_rng_range(r, 1, SH_MAX_WORKERS);
    s->n_funcs = (int)sim_rng_range(r, 1, SH_MAX_FUNCS);
    s->election_ms = sim_rng_range(r, 100, 400);
    s->heartbeat_ms = s->election_ms / sim_rng_range(r, 4, 8);
    s->node_gone_ms = s->election_ms * sim_rng_range(r, 3, 8);
    s->snapshot_every = sim_rng_chance(r, 500) ? sim_rng_range(r, 20, 200)
                                               : 0;
    s->disk_ms = sim_rng_range(r, 0, 5);
    s->fifo = sim_rng_chance(r, 500);
    s->crash_pm = sim_rng_chance(r, 800) ? (unsigned)sim_rng_range(r, 50, 300)
                                         : 0;
    s->partition_pm = sim_rng_chance(r, 700)
                          ? (unsigned)sim_rng_range(r, 50, 300)
                          : 0;
    s->release_pm = sim_rng_chance(r, 600)
                        ? (unsigned)sim_rng_range(r, 50, 300)
                        : 0;
    s->fault_every_ms = sim_rng_range(r, 100, 800);
    s->submit_every_ms = sim_rng_range(r, 5, 60);
    s->work_max_ms = sim_rng_range(r, 5, 400);
    sim_net_init(&w->net);
    s->net.delay_min = sim_rng_range(r, 0, 3);
    s->net.delay_max = s->net.delay_min + sim_rng_range(r, 1, 30);
    s->net.drop_pm = sim_rng_chance(r, 500) ? (unsigned)sim_rng_range(r, 1, 80)
                                            : 0;
    s->net.dup_pm = sim_rng_chance(r, 300) ? (unsigned)sim_rng_range(r, 1, 50)
                                           : 0;
    s->net.reorder_pm = !s->fifo && sim_rng_chance(r, 500)
                            ? (unsigned)sim_rng_range(r, 1, 100)
                            : 0;
    s->net.reorder_max = sim_rng_range(r, 10, 200);
    w->net.cfg = s->net;
}

static void print_swarm(const struct sh_world *w)
{
    const struct sh_swarm *s = &w->sw;

    printf("swarm: nodes=%d workers=%d funcs=%d election=%llu heartbeat=%llu "
           "node_gone=%llu snapshot_every=%llu disk=%llu fifo=%d crash=%u "
           "partition=%u release=%u fault_every=%llu submit_every=%llu "
           "work_max=%llu delay=%llu..%llu drop=%u dup=%u reorder=%u/%llu\n",
           s->n_nodes, s->n_workers, s->n_funcs,
           (unsigned long long)s->election_ms,
           (unsigned long long)s->heartbeat_ms,
           (unsigned long long)s->node_gone_ms,
           (unsigned long long)s->snapshot_every,
           (unsigned long long)s->disk_ms, s->fifo, s->crash_pm,
           s->partition_pm, s->release_pm,
           (unsigned long long)s->fault_every_ms,
           (unsigned long long)s->submit_every_ms,
           (unsigned long long)s->work_max_ms,
           (unsigned long long)s->net.delay_min,
           (unsigned long long)s->net.delay_max, s->net.drop_pm,
           s->net.dup_pm, s->net.reorder_pm,
           (unsigned long long)s->net.reorder_max);
}

/* ---------------------------------------------------------------------
 * Faults.
 */

static struct sh_node *random_node(struct sh_world *w, bool up)
{
    int k;
    int tries;

    for (tries = 0; tries < 16; tries++) {
        k = (int)sim_rng_range(&w->rng, 1, (uint64_t)w->sw.n_nodes);
        if (w->n[k].up == up) {
            return &w->n[k];
        }
    }
    return NULL;
}

static void restart_later(struct sh_world *w, struct sh_node *n)
{
    struct sim_event ev = {0};

    ev.kind = SH_EV_RESTART;
    ev.node = n->id;
    ev.arg = n->life;
    sim_queue_push(&w->q, sim_rng_range(&w->rng, 10, 4 * w->sw.node_gone_ms),
                   ev);
}

static void crash(struct sh_world *w)
{
    struct sh_node *n;
    int k;

    if (sim_rng_chance(&w->rng, 100)) {
        /* Every node at once: what was acknowledged is on a majority's
         * disks, and comes back with them. */
        sh_log(w, "crash every node");
        for (k = 1; k <= w->sw.n_nodes; k++) {
            if (w->n[k].up) {
                sh_node_crash(w, &w->n[k]);
                restart_later(w, &w->n[k]);
            }
        }
        return;
    }
    n = NULL;
    if (sim_rng_chance(&w->rng, 400)) {
        for (k = 1; k <= w->sw.n_nodes; k++) {
            if (w->n[k].up && w->n[k].leader) {
                n = &w->n[k];
            }
        }
    }
    if (n == NULL) {
        n = random_node(w, true);
    }
    if (n != NULL) {
        sh_node_crash(w, n);
        restart_later(w, n);
    }
}

static void partition(struct sh_world *w)
{
    unsigned mask = 0;
    int k;

    sim_net_heal(&w->net);
    if (sim_rng_chance(&w->rng, 300)) {
        sh_log(w, "heal");
        return;
    }
    if (sim_rng_chance(&w->rng, 400)) {
        for (k = 1; k <= w->sw.n_nodes; k++) {
            if (w->n[k].up && w->n[k].leader) {
                sh_log(w, "isolate the leader n%d", k);
                sim_net_isolate(&w->net, k);
                return;
            }
        }
    }
    for (k = 1; k <= w->sw.n_nodes; k++) {
        if (sim_rng_chance(&w->rng, 500)) {
            mask |= 1u << k;
        }
    }
    sh_log(w, "partition mask %#x", mask);
    sim_net_partition(&w->net, mask);
}

static void release(struct sh_world *w)
{
    struct sh_node *n = random_node(w, true);
    uint64_t last = (uint64_t)w->sw.n_workers - 1;

    if (n != NULL) {
        sh_gear_release(w, n, (int)sim_rng_range(&w->rng, 0, last));
    }
}

static void fault(struct sh_world *w)
{
    struct sim_event ev = {0};

    if (!w->faults_on) {
        return;
    }
    if (sim_rng_chance(&w->rng, w->sw.crash_pm)) {
        crash(w);
    }
    if (sim_rng_chance(&w->rng, w->sw.partition_pm)) {
        partition(w);
    }
    if (sim_rng_chance(&w->rng, w->sw.release_pm)) {
        release(w);
    }
    ev.kind = SH_EV_FAULT;
    sim_queue_push(&w->q,
                   sim_rng_range(&w->rng, w->sw.fault_every_ms / 2,
                                 w->sw.fault_every_ms * 3 / 2),
                   ev);
}

static void client(struct sh_world *w, const struct opts *o)
{
    struct sim_event ev = {0};
    struct sh_node *n;

    if (!w->submits_on || w->n_subs >= o->max_subs) {
        return;
    }
    n = random_node(w, true);
    if (n != NULL) {
        sh_gear_submit(w, n);
    }
    ev.kind = SH_EV_CLIENT;
    sim_queue_push(&w->q, sim_rng_range(&w->rng, 1, 2 * w->sw.submit_every_ms),
                   ev);
}

/* ---------------------------------------------------------------------
 * Running a seed.
 */

static void handle(struct sh_world *w, const struct opts *o,
                   const struct sim_event *ev)
{
    struct sh_node *n = ev->node >= 1 && ev->node <= SH_MAX_NODES
                            ? &w->n[ev->node]
                            : NULL;

    switch (ev->kind) {
    case SH_EV_TURN:
        if (n->up && ev->arg == n->turn_at) {
            n->turn_at = UINT64_MAX;
            sh_node_turn(w, n);
        }
        break;
    case SH_EV_DELIVER:
        if (ev->arg != n->life) {
            gr_free(ev->payload); /* sent to a process that died */
        } else {
            sh_node_deliver(w, n, ev->payload);
        }
        break;
    case SH_EV_CLIENT:
        client(w, o);
        break;
    case SH_EV_WORKER:
    case SH_EV_POLL:
        sh_gear_worker_event(w, n, ev->kind, ev->arg);
        break;
    case SH_EV_FAULT:
        fault(w);
        break;
    case SH_EV_RESTART:
        if (!n->up && ev->arg == n->life) {
            (void)sh_node_start(w, n);
        }
        break;
    default:
        break;
    }
}

/* Runs events until virtual time `until` or a failure; stop (may be
 * NULL) ends it early when it returns true. */
static void run_until(struct sh_world *w, const struct opts *o, uint64_t until,
                      bool (*stop)(struct sh_world *w))
{
    struct sim_event ev;

    while (!w->failed && sim_queue_peek_at(&w->q) <= until) {
        if (sim_queue_pop(&w->q, &ev) != 0) {
            break;
        }
        handle(w, o, &ev);
        if (stop != NULL && ev.kind == SH_EV_TURN && stop(w)) {
            return;
        }
    }
    if (w->q.now < until && sim_queue_peek_at(&w->q) > until) {
        w->q.now = until;
    }
}

/* A request of a connection still open that has had no answer: a
 * submission of a client of the current incarnation not acknowledged,
 * a worker whose GRAB is unanswered. Describes the first in why. */
static bool unanswered(const struct sh_world *w, char *why, size_t len)
{
    size_t i;
    int k;
    int j;

    for (i = 0; i < w->n_subs; i++) {
        const struct sh_sub *s = &w->subs[i];
        const struct sh_node *n = &w->n[s->node];

        if (!s->acked && n->up && n->inc == s->inc &&
            n->client_conn == s->conn) {
            snprintf(why, len,
                     "s%zu, submitted on n%d at t=%llu, never got its "
                     "JOB_CREATED",
                     i, s->node, (unsigned long long)s->at);
            return true;
        }
    }
    for (k = 1; k <= w->sw.n_nodes; k++) {
        for (j = 0; j < w->sw.n_workers; j++) {
            if (w->n[k].up && w->n[k].w[j].state == SH_W_GRABBING) {
                snprintf(why, len, "n%d w%d never got an answer to its GRAB",
                         k, j);
                return true;
            }
        }
    }
    return false;
}

/* The end of the liveness phase: every acknowledged job done, every
 * request of an open connection answered, every node up and at the same
 * applied index, nothing pending anywhere. */
static bool settled(struct sh_world *w)
{
    size_t missing;
    uint64_t applied = w->n[1].applied;
    char why[160];
    int k;

    if (!sh_gear_all_done(w, &missing) || unanswered(w, why, sizeof(why))) {
        return false;
    }
    for (k = 1; k <= w->sw.n_nodes; k++) {
        const struct sh_node *n = &w->n[k];

        if (!n->up || n->applied != applied || n->commit != applied ||
            n->m.n_pending > 0 || n->new_head != NULL) {
            return false;
        }
    }
    return true;
}

static void liveness(struct sh_world *w, const struct opts *o)
{
    uint64_t until = w->q.now + o->live_ms;
    size_t missing;
    size_t i;
    int k;

    w->faults_on = false;
    w->submits_on = false;
    sim_net_heal(&w->net);
    w->net.cfg.drop_pm = 0;
    w->net.cfg.dup_pm = 0;
    sh_log(w, "liveness: heal, restart every node, no loss");
    for (k = 1; k <= w->sw.n_nodes; k++) {
        if (!w->n[k].up && sh_node_start(w, &w->n[k]) != 0) {
            return;
        }
    }
    run_until(w, o, until, settled);
    if (w->failed || settled(w)) {
        return;
    }
    (void)sh_gear_all_done(w, &missing);
    for (i = 0; i < w->n_subs; i++) {
        const struct sh_sub *s = &w->subs[i];

        if (s->acked && !s->done) {
            sh_fail(w,
                    "liveness: %zu acknowledged jobs not done %llu ms after "
                    "the faults stopped; the first, s%zu (job %llu, from n%d "
                    "at t=%llu), was handed out %d times",
                    missing, (unsigned long long)o->live_ms, i,
                    (unsigned long long)s->job, s->node,
                    (unsigned long long)s->at, s->n_handed);
            return;
        }
    }
    {
        char why[160];

        if (unanswered(w, why, sizeof(why))) {
            sh_fail(w, "liveness: %s (%llu ms after the faults stopped)", why,
                    (unsigned long long)o->live_ms);
            return;
        }
    }
    sh_fail(w, "liveness: the nodes did not converge within %llu ms",
            (unsigned long long)o->live_ms);
}

/* Copies of forwarded commands the leaders dropped, the crashed nodes'
 * hosts and the live ones'. */
static uint64_t fwd_dropped(const struct sh_world *w)
{
    uint64_t n = w->n_fwd_dropped;
    int k;

    for (k = 1; k <= w->sw.n_nodes; k++) {
        if (w->n[k].up) {
            n += w->n[k].h.n_fwd_dropped;
        }
    }
    return n;
}

static void print_nodes(const struct sh_world *w)
{
    int k;

    for (k = 1; k <= w->sw.n_nodes; k++) {
        const struct sh_node *n = &w->n[k];

        printf("  n%d %s inc=%llu term=%llu leader=%llu commit=%llu "
               "applied=%llu pending=%zu turns=%llu\n",
               k, n->up ? (n->leader ? "LEADER" : "up") : "DOWN",
               (unsigned long long)n->inc, (unsigned long long)n->term,
               (unsigned long long)n->leader_id,
               (unsigned long long)n->commit, (unsigned long long)n->applied,
               n->up ? n->m.n_pending : 0, (unsigned long long)n->n_turns);
    }
}

static void print_last(const struct sh_world *w, size_t want)
{
    size_t have = w->ring_pos < w->ring_len ? w->ring_pos : w->ring_len;
    size_t i;

    if (want > have) {
        want = have;
    }
    printf("last %zu events:\n", want);
    for (i = w->ring_pos - want; i < w->ring_pos; i++) {
        printf("%s\n", w->ring[i % w->ring_len]);
    }
}

static void drain_queue(struct sh_world *w)
{
    struct sim_event ev;

    while (sim_queue_pop(&w->q, &ev) == 0) {
        if (ev.kind == SH_EV_DELIVER) {
            gr_free(ev.payload);
        }
    }
    sim_queue_close(&w->q);
}

static void remove_tree(const char *root)
{
    char cmd[256];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    if (system(cmd) != 0) {
        fprintf(stderr, "simhost: could not remove %s\n", root);
    }
}

/* Runs one seed; returns true if it passed. */
static bool run_seed(uint64_t seed, const struct opts *o, char (*ring)[160],
                     size_t ring_len)
{
    struct sh_world *w = calloc(1, sizeof(*w));
    struct sim_event ev = {0};
    bool ok;
    int k;

    if (w == NULL) {
        abort();
    }
    w->seed = seed;
    w->trace = o->trace;
    w->ring = ring;
    w->ring_len = ring_len;
    sim_rng_init(&w->rng, seed);
    sim_queue_init(&w->q);
    draw_swarm(w, o);
    snprintf(w->root, sizeof(w->root), "%s/gr-simhost-XXXXXX", o->root);
    if (mkdtemp(w->root) == NULL) {
        fprintf(stderr, "simhost: mkdtemp %s: %s\n", w->root, strerror(errno));
        exit(2);
    }
    for (k = 1; k <= w->sw.n_nodes; k++) {
        w->n[k].id = k;
        snprintf(w->n[k].dir, sizeof(w->n[k].dir), "%s/n%d", w->root, k);
    }
    for (k = 1; k <= w->sw.n_nodes && !w->failed; k++) {
        (void)sh_node_start(w, &w->n[k]);
    }
    w->faults_on = true;
    w->submits_on = true;
    ev.kind = SH_EV_CLIENT;
    sim_queue_push(&w->q, 50, ev);
    ev.kind = SH_EV_FAULT;
    sim_queue_push(&w->q, w->sw.fault_every_ms, ev);
    run_until(w, o, o->fault_ms, NULL);
    if (!w->failed) {
        liveness(w, o);
    }
    ok = !w->failed;
    if (!ok || o->verbose) {
        printf("%s seed=%llu%s%s\n", ok ? "ok" : "FAIL",
               (unsigned long long)seed, ok ? "" : ": ", ok ? "" : w->why);
    }
    if (!ok) {
        print_swarm(w);
        print_nodes(w);
        print_last(w, o->last_lines);
        printf("reproduce: simhost --seed %llu --fault-ms %llu --trace\n",
               (unsigned long long)seed, (unsigned long long)o->fault_ms);
    } else if (o->verbose) {
        printf("  t=%llu subs=%zu frames=%llu crashes=%llu gone=%llu "
               "redo=%llu releases=%llu installs=%llu lost=%llu "
               "compared=%llu fwd_dropped=%llu\n",
               (unsigned long long)w->q.now, w->n_subs,
               (unsigned long long)w->n_frames,
               (unsigned long long)w->n_crashes,
               (unsigned long long)w->n_gone, (unsigned long long)w->n_redo,
               (unsigned long long)w->n_releases,
               (unsigned long long)w->n_installs,
               (unsigned long long)w->n_lost,
               (unsigned long long)w->n_digests_compared,
               (unsigned long long)fwd_dropped(w));
    }
    fflush(stdout);
    sh_node_close_all(w);
    drain_queue(w);
    sh_gear_free(w);
    remove_tree(w->root);
    free(w);
    return ok;
}

/* ---------------------------------------------------------------------
 * Options.
 */

static int parse_range(const char *s, uint64_t *a, uint64_t *b)
{
    char *end;

    *a = strtoull(s, &end, 10);
    if (end[0] == '.' && end[1] == '.') {
        *b = strtoull(end + 2, &end, 10);
    } else {
        *b = *a;
    }
    return *end == '\0' && *a <= *b ? 0 : -1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: simhost [--seeds A..B | --seed S] [--nodes 3|5] "
            "[--fault-ms MS] [--live-ms MS] [--subs N] [--trace] "
            "[--verbose] [--last N] [--stop-on-fail] [--root DIR]\n");
    exit(2);
}

static void parse(int argc, char **argv, struct opts *o)
{
    int i;

    memset(o, 0, sizeof(*o));
    o->first = 1;
    o->last = 20;
    o->fault_ms = 10000;
    o->live_ms = 120000;
    o->max_subs = 300;
    o->last_lines = 60;
    o->root = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--trace") == 0) {
            o->trace = true;
        } else if (strcmp(a, "--verbose") == 0) {
            o->verbose = true;
        } else if (strcmp(a, "--stop-on-fail") == 0) {
            o->stop_on_fail = true;
        } else if (v == NULL) {
            usage();
        } else if (strcmp(a, "--seeds") == 0 || strcmp(a, "--seed") == 0) {
            if (parse_range(v, &o->first, &o->last) != 0) {
                usage();
            }
            i++;
        } else if (strcmp(a, "--nodes") == 0) {
            o->nodes = (int)strtol(v, NULL, 10);
            if (o->nodes != 3 && o->nodes != 5) {
                usage();
            }
            i++;
        } else if (strcmp(a, "--fault-ms") == 0) {
            o->fault_ms = strtoull(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--live-ms") == 0) {
            o->live_ms = strtoull(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--subs") == 0) {
            o->max_subs = (size_t)strtoull(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--last") == 0) {
            o->last_lines = (size_t)strtoull(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--root") == 0) {
            o->root = v;
            i++;
        } else {
            usage();
        }
    }
}

int main(int argc, char **argv)
{
    struct opts o;
    char(*ring)[160];
    size_t ring_len;
    uint64_t seed;
    uint64_t n_fail = 0;
    uint64_t n_run = 0;
    struct timespec t0;
    struct timespec t1;

    parse(argc, argv, &o);
    gr_log_threshold = o.trace ? GR_LOG_WARN : GR_LOG_FATAL;
    ring_len = o.last_lines > 0 ? o.last_lines : 1;
    ring = calloc(ring_len, sizeof(*ring));
    if (ring == NULL) {
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (seed = o.first; seed <= o.last; seed++) {
        n_run++;
        if (!run_seed(seed, &o, ring, ring_len)) {
            n_fail++;
            if (o.stop_on_fail) {
                break;
            }
        }
        if (seed == UINT64_MAX) {
            break;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("simhost: %llu seeds, %llu failed (%.1f s)\n",
           (unsigned long long)n_run, (unsigned long long)n_fail,
           (double)(t1.tv_sec - t0.tv_sec) +
               (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    free(ring);
    return n_fail == 0 ? 0 : 1;
}
