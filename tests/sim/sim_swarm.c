/* SPDX-License-Identifier: BSD-3-Clause
 * tests/sim/sim_swarm.c - per-seed fault selection.
 */
#include "sim_swarm.h"

#include <string.h>

void sim_swarm_calm(struct sim_swarm *s, int n_nodes)
{
    memset(s, 0, sizeof(*s));
    s->n_nodes = n_nodes;
    s->net.delay_min = 1;
    s->net.delay_max = 3;
    s->net.reorder_max = 20;
    s->disk_min = 1;
    s->disk_max = 2;
    s->fault_every = 200;
    s->propose_pm = 500;
    s->batch_max = 4;
    s->election_ms = 100;
    s->heartbeat_ms = 20;
    s->pre_vote = true;
    s->check_quorum = true;
    s->max_msg_bytes = 4096;
    s->max_inflight_bytes = 1 << 20;
    s->max_inflight_msgs = 16;
    s->max_uncommitted_bytes = 1 << 20;
    s->snapshot_trailing = 8;
    s->snap_pad = 64;
    s->window_entries = 1024;
    s->window_bytes = 4 << 20;
    s->compact_eager = false;
}

/* Half the time the fault is off; otherwise a weight in [1, 10]. */
static unsigned weight(struct sim_rng *rng)
{
    if (sim_rng_chance(rng, 500)) {
        return 0;
    }
    return (unsigned)sim_rng_range(rng, 1, 10);
}

void sim_swarm_choose(struct sim_swarm *s, struct sim_rng *rng, int n_nodes)
{
    static const int sizes[] = {1, 3, 3, 5, 5};

    sim_swarm_calm(s, n_nodes);
    if (n_nodes <= 0) {
        s->n_nodes = sizes[sim_rng_range(rng, 0, 4)];
    }
    s->net.drop_pm =
        sim_rng_chance(rng, 500) ? (unsigned)sim_rng_range(rng, 1, 300) : 0;
    s->net.dup_pm =
        sim_rng_chance(rng, 500) ? (unsigned)sim_rng_range(rng, 1, 200) : 0;
    s->net.reorder_pm =
        sim_rng_chance(rng, 500) ? (unsigned)sim_rng_range(rng, 1, 300) : 0;
    s->net.delay_min = sim_rng_range(rng, 0, 5);
    s->net.delay_max = s->net.delay_min + sim_rng_range(rng, 0, 30);
    s->net.reorder_max = sim_rng_range(rng, 10, 300);
    s->slow_net = sim_rng_chance(rng, 250);
    s->disk_min = sim_rng_range(rng, 0, 5);
    s->disk_max = s->disk_min + sim_rng_range(rng, 0, 20);
    s->fault_every = sim_rng_range(rng, 50, 1500);
    s->propose_pm = (unsigned)sim_rng_range(rng, 100, 900);
    s->batch_max = sim_rng_range(rng, 1, 16);
    s->w_crash = weight(rng);
    s->w_crash_all = weight(rng) / 3;
    s->w_partition = weight(rng);
    s->w_oneway = weight(rng);
    s->w_isolate_leader = weight(rng);
    s->w_crash_leader = weight(rng);
    s->w_stall = weight(rng);
    s->w_heal = (unsigned)sim_rng_range(rng, 1, 10);
    s->w_member = weight(rng);
    s->w_transfer = weight(rng);
    s->w_snapshot = weight(rng);
    s->tear = sim_rng_chance(rng, 500);
    s->durable_apply = sim_rng_chance(rng, 500);
    s->group_steps = sim_rng_chance(rng, 500);
    s->snapshot_every =
        sim_rng_chance(rng, 500) ? sim_rng_range(rng, 3, 60) : 0;
    /* Drawn here, where the network's draws used to be relative to it,
     * so that "slow" networks are slow compared with the timers. */
    s->election_ms = sim_rng_range(rng, 50, 400);
    s->heartbeat_ms = s->election_ms / sim_rng_range(rng, 3, 10);
    if (s->slow_net) {
        /* Delays close to the election timeout: elections overlap, split
         * and time out, and answers arrive in later terms. */
        s->net.delay_max =
            s->net.delay_min +
            sim_rng_range(rng, s->election_ms / 4, s->election_ms);
        s->net.reorder_max =
            sim_rng_range(rng, s->election_ms, 3 * s->election_ms);
    }
    if (s->heartbeat_ms == 0) {
        s->heartbeat_ms = 1;
    }
    s->pre_vote = sim_rng_chance(rng, 700);
    s->check_quorum = sim_rng_chance(rng, 700);
    s->max_msg_bytes = (size_t)sim_rng_range(rng, 16, 2048);
    s->max_inflight_bytes = (size_t)sim_rng_range(rng, 64, 1 << 16);
    s->max_inflight_msgs = (size_t)sim_rng_range(rng, 1, 64);
    s->max_uncommitted_bytes = (size_t)sim_rng_range(rng, 64, 1 << 16);
    s->snapshot_trailing = (size_t)sim_rng_range(rng, 0, 20);
    s->snap_pad = (size_t)sim_rng_range(rng, 16, 4096);
}

void sim_swarm_choose_aims(struct sim_swarm *s, struct sim_rng *rng)
{
    s->aim_write =
        sim_rng_chance(rng, 500) ? (unsigned)sim_rng_range(rng, 1, 30) : 0;
    s->aim_sync =
        sim_rng_chance(rng, 500) ? (unsigned)sim_rng_range(rng, 1, 30) : 0;
    s->aim_member =
        sim_rng_chance(rng, 500) ? (unsigned)sim_rng_range(rng, 200, 1000) : 0;
    s->stale_reads = sim_rng_chance(rng, 500);
}

void sim_swarm_choose_window(struct sim_swarm *s, struct sim_rng *rng)
{
    if (sim_rng_chance(rng, 750)) {
        s->window_entries = (size_t)sim_rng_range(rng, 0, 32);
        s->window_bytes = (size_t)sim_rng_range(rng, 0, 2048);
    }
    s->compact_eager = sim_rng_chance(rng, 250);
    if (s->max_msg_bytes >= 1024 && sim_rng_chance(rng, 250)) {
        s->snap_pad = (size_t)sim_rng_range(rng, 128 << 10, 256 << 10);
    }
}

void sim_swarm_print(const struct sim_swarm *s, FILE *out)
{
    fprintf(
        out,
        "swarm: nodes=%d drop=%u dup=%u reorder=%u delay=%llu..%llu "
        "disk=%llu..%llu fault_every=%llu crash=%u crash_all=%u "
        "partition=%u oneway=%u isolate_leader=%u heal=%u member=%u "
        "crash_leader=%u stall=%u transfer=%u snapshot=%u "
        "aim_write=%u aim_sync=%u aim_member=%u stale_reads=%d tear=%d "
        "durable_apply=%d "
        "group=%d slow_net=%d "
        "snapshot_every=%llu election=%llu heartbeat=%llu pre_vote=%d "
        "check_quorum=%d msg_bytes=%zu inflight=%zu/%zu "
        "uncommitted=%zu trailing=%zu snap_bytes=%zu window=%zu/%zu "
        "compact_eager=%d\n",
        s->n_nodes, s->net.drop_pm, s->net.dup_pm, s->net.reorder_pm,
        (unsigned long long)s->net.delay_min,
        (unsigned long long)s->net.delay_max, (unsigned long long)s->disk_min,
        (unsigned long long)s->disk_max, (unsigned long long)s->fault_every,
        s->w_crash, s->w_crash_all, s->w_partition, s->w_oneway,
        s->w_isolate_leader, s->w_heal, s->w_member, s->w_crash_leader,
        s->w_stall, s->w_transfer, s->w_snapshot, s->aim_write, s->aim_sync,
        s->aim_member, s->stale_reads, s->tear, s->durable_apply,
        s->group_steps, s->slow_net, (unsigned long long)s->snapshot_every,
        (unsigned long long)s->election_ms, (unsigned long long)s->heartbeat_ms,
        s->pre_vote, s->check_quorum, s->max_msg_bytes, s->max_inflight_msgs,
        s->max_inflight_bytes, s->max_uncommitted_bytes, s->snapshot_trailing,
        s->snap_pad, s->window_entries, s->window_bytes, s->compact_eager);
}
