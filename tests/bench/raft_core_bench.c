/* SPDX-License-Identifier: BSD-3-Clause
 * tests/bench/raft_core_bench.c - how fast the Raft core commits entries.
 *
 * A three-node cluster of real cores in the simulator (tests/sim): no
 * faults, 1 ms links, 1 ms disk writes, the client keeping the leader
 * busy with batches of proposals.  It prints two figures: entries
 * committed (acknowledged to the client) per second of this process's CPU
 * time, which is the cost of the core plus the simulator's own work
 * (copies, hashes, invariant checks), and entries per simulated second,
 * which shows how batching and pipelining fill a 1 ms network.
 *
 *   raft_core_bench [entries [batch]]      defaults: 200000 64
 *
 * Not a test: it asserts nothing about speed, only that every entry was
 * acknowledged and every invariant held.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim_cluster.h"

static double cpu_seconds(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) {
        return 0.0;
    }
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t arg_u64(const char *s, uint64_t dflt)
{
    char *end;
    unsigned long long v;

    if (s == NULL) {
        return dflt;
    }
    v = strtoull(s, &end, 10);
    if (*end != '\0' || v == 0) {
        fprintf(stderr, "raft_core_bench: bad number '%s'\n", s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    uint64_t want = arg_u64(argc > 1 ? argv[1] : NULL, 200000);
    uint64_t batch = arg_u64(argc > 2 ? argv[2] : NULL, 64);
    struct sim_cluster *c = calloc(1, sizeof(*c));
    struct sim_swarm sw;
    struct sim_setup setup;
    double t0;
    double t1;
    uint64_t v0;
    int rv;

    if (c == NULL) {
        fprintf(stderr, "raft_core_bench: out of memory\n");
        return 1;
    }
    sim_swarm_calm(&sw, 3);
    sw.net.delay_min = 1;
    sw.net.delay_max = 1;
    sw.disk_min = 1;
    sw.disk_max = 1;
    sw.election_ms = 1000;
    sw.heartbeat_ms = 100;
    sw.max_msg_bytes = 1 << 20;
    sw.max_inflight_msgs = 64;
    sw.max_inflight_bytes = 8 << 20;
    sw.max_uncommitted_bytes = 64 << 20;
    sw.snapshot_trailing = 1024;
    sw.group_steps = true; /* a host turn takes every queued message */
    memset(&setup, 0, sizeof(setup));
    setup.seed = 1;
    setup.sw = &sw;
    setup.trace_cap = 1;
    if (getenv("RAFT_BENCH_TRACE") != NULL) { /* every event, to stdout */
        setup.trace_echo = stdout;
        setup.trace_msgs = true;
    }
    rv = sim_cluster_init(c, &setup);
    if (rv != 0) {
        fprintf(stderr, "raft_core_bench: cluster start failed: %s\n",
                c->check.why);
        return 1;
    }
    /* Elect a leader first; the clock starts after. */
    while (sim_cluster_leader(c) == 0 && sim_cluster_step(c)) {
    }
    t0 = cpu_seconds();
    v0 = c->q.now;
    while (c->stats.acked < want && !c->check.failed) {
        raft_id l = sim_cluster_leader(c);

        /* Keep up to 8 batches in flight: proposals are accepted while the
         * previous batches are still being written and replicated. */
        if (l != 0 && !c->nodes[l].busy &&
            c->stats.proposed - c->stats.acked < 8 * batch &&
            c->stats.proposed < want) {
            uint64_t n = want - c->stats.proposed;

            sim_cluster_propose_n(c, l, n < batch ? n : batch, NULL);
        }
        if (!sim_cluster_step(c)) {
            break;
        }
    }
    t1 = cpu_seconds();
    if (c->check.failed || c->stats.acked < want) {
        fprintf(stderr, "raft_core_bench: run failed after %llu entries: %s\n",
                (unsigned long long)c->stats.acked, c->check.why);
        sim_cluster_close(c);
        free(c);
        return 1;
    }
    printf("raft core: %llu entries, batches of %llu, 3 nodes, 1 ms links "
           "and disk\n",
           (unsigned long long)want, (unsigned long long)batch);
    printf("  %.0f entries/s committed per CPU second (%.3f s CPU, %llu "
           "steps)\n",
           (double)want / (t1 - t0), t1 - t0,
           (unsigned long long)c->stats.steps);
    printf("  %.0f entries/s committed per simulated second (%llu ms "
           "simulated)\n",
           (double)want * 1000.0 / (double)(c->q.now - v0),
           (unsigned long long)(c->q.now - v0));
    sim_cluster_close(c);
    free(c);
    return 0;
}
