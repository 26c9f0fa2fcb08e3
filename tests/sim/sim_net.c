/* SPDX-License-Identifier: BSD-3-Clause
 * tests/sim/sim_net.c - message fates and link cuts.
 */
#include "sim_net.h"

#include <string.h>

static bool valid(int id)
{
    return id >= 1 && id <= SIM_MAX_NODES;
}

void sim_net_init(struct sim_net *n)
{
    memset(n, 0, sizeof(*n));
    n->cfg.delay_min = 1;
    n->cfg.delay_max = 5;
    n->cfg.reorder_max = 50;
}

static uint64_t one_delay(struct sim_net *n, struct sim_rng *rng)
{
    uint64_t d = sim_rng_range(rng, n->cfg.delay_min, n->cfg.delay_max);

    if (sim_rng_chance(rng, n->cfg.reorder_pm)) {
        d += sim_rng_range(rng, 1, n->cfg.reorder_max);
    }
    return d;
}

int sim_net_route(struct sim_net *n, struct sim_rng *rng, int from, int to,
                  uint64_t delays[2])
{
    int copies = 1;

    n->sent++;
    if (!sim_net_link_up(n, from, to) || sim_rng_chance(rng, n->cfg.drop_pm)) {
        n->dropped++;
        return 0;
    }
    delays[0] = one_delay(n, rng);
    if (sim_rng_chance(rng, n->cfg.dup_pm)) {
        delays[1] = one_delay(n, rng);
        n->duplicated++;
        copies = 2;
    }
    return copies;
}

bool sim_net_link_up(const struct sim_net *n, int from, int to)
{
    if (!valid(from) || !valid(to)) {
        return false;
    }
    return !n->cut[from][to];
}

void sim_net_set_link(struct sim_net *n, int from, int to, bool up)
{
    if (valid(from) && valid(to)) {
        n->cut[from][to] = !up;
    }
}

void sim_net_partition(struct sim_net *n, unsigned mask)
{
    int a;
    int b;

    for (a = 1; a <= SIM_MAX_NODES; a++) {
        for (b = 1; b <= SIM_MAX_NODES; b++) {
            bool in_a = (mask >> a) & 1U;
            bool in_b = (mask >> b) & 1U;

            if (in_a != in_b) {
                n->cut[a][b] = true;
            }
        }
    }
}

void sim_net_isolate(struct sim_net *n, int id)
{
    int o;

    if (!valid(id)) {
        return;
    }
    for (o = 1; o <= SIM_MAX_NODES; o++) {
        if (o != id) {
            n->cut[id][o] = true;
            n->cut[o][id] = true;
        }
    }
}

void sim_net_heal(struct sim_net *n)
{
    memset(n->cut, 0, sizeof(n->cut));
    memset(n->hold_until, 0, sizeof(n->hold_until));
}

void sim_net_hold(struct sim_net *n, int from, int to, uint64_t until)
{
    if (valid(from) && valid(to)) {
        n->hold_until[from][to] = until;
    }
}

uint64_t sim_net_held_until(const struct sim_net *n, int from, int to)
{
    if (!valid(from) || !valid(to)) {
        return 0;
    }
    return n->hold_until[from][to];
}

bool sim_net_is_cut(const struct sim_net *n)
{
    int a;
    int b;

    for (a = 1; a <= SIM_MAX_NODES; a++) {
        for (b = 1; b <= SIM_MAX_NODES; b++) {
            if (n->cut[a][b]) {
                return true;
            }
        }
    }
    return false;
}
