/* SPDX-License-Identifier: BSD-3-Clause
 * tests/sim/sim_main.c - the `sim` program: randomized runs by seed.
 *
 *   sim --seeds 1..2000          a batch; prints each failing seed
 *   sim --seed 42 --trace        one seed, every event printed
 *
 * Each seed builds a cluster whose size, fault mix and core settings come
 * from the seed (swarm testing), runs a chaos phase of --steps events with
 * every invariant checked after each, then stops the faults and requires
 * progress (the liveness phase).  A failure prints the seed, what broke,
 * the seed's configuration and the last events; rerunning the seed gives
 * the same run, event for event.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_cluster.h"

struct opts {
    uint64_t first;
    uint64_t last;
    int nodes;
    uint64_t steps;
    size_t last_n;
    bool trace;
    bool verbose;
    bool tear_hs_last;
    bool stop_on_fail;
    bool classic;
    struct sim_limits limits;
};

/* Every seed's bounds (sim_limits).  Far above what any passing seed
 * needs with the default --steps (docs/simulator.md has the measured
 * maxima), low enough that a run that never ends is stopped in seconds
 * of CPU and well within the machine's memory. */
#define DEFAULT_MAX_MS    (6 * 3600 * 1000ULL)
#define DEFAULT_MAX_STEPS 5000000ULL
#define DEFAULT_MAX_MSGS  5000000ULL
#define DEFAULT_MAX_MIB   256ULL

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: sim [--seeds A..B | --seed S] [--trace] [--nodes N]\n"
        "           [--steps N] [--last N] [--verbose] [--tear-hs-last]\n"
        "           [--stop-on-fail] [--classic] [--max-ms N] [--max-steps N]\n"
        "           [--max-msgs N] [--max-mib N]\n"
        "  --seeds A..B  run seeds A to B inclusive (default 1..100)\n"
        "  --seed S      run one seed\n"
        "  --trace       print every event of the run as it happens\n"
        "  --nodes N     initial voters (1, 3 or 5; default: the seed "
        "picks)\n"
        "  --steps N     events in the fault phase (default 4000)\n"
        "  --last N      trace events printed on failure (default 200)\n"
        "  --verbose     one summary line per seed\n"
        "  --stop-on-fail  stop at the first failing seed\n"
        "  --tear-hs-last  model a host that breaks raft.h: torn writes keep\n"
        "                the entries but lose the hard state after them\n"
        "  --classic     no aimed crashes, no reads at stale leaders: the\n"
        "                run earlier simulators made of each seed\n"
        "  --max-ms N, --max-steps N, --max-msgs N, --max-mib N\n"
        "                a seed past any of these fails (liveness); 0: no\n"
        "                limit (defaults %llu ms, %llu steps, %llu messages,\n"
        "                %llu MiB)\n",
        (unsigned long long)DEFAULT_MAX_MS,
        (unsigned long long)DEFAULT_MAX_STEPS,
        (unsigned long long)DEFAULT_MAX_MSGS,
        (unsigned long long)DEFAULT_MAX_MIB);
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (s == NULL || *s == '\0' || *s == '-') {
        return false;
    }
    v = strtoull(s, &end, 10);
    if (*end != '\0') {
        return false;
    }
    *out = v;
    return true;
}

static bool parse_range(const char *s, uint64_t *a, uint64_t *b)
{
    const char *dots = strstr(s, "..");
    char left[32];
    size_t len;

    if (dots == NULL) {
        return false;
    }
    len = (size_t)(dots - s);
    if (len == 0 || len >= sizeof(left)) {
        return false;
    }
    memcpy(left, s, len);
    left[len] = '\0';
    return parse_u64(left, a) && parse_u64(dots + 2, b) && *a <= *b;
}

static int parse(int argc, char **argv, struct opts *o)
{
    int i;

    memset(o, 0, sizeof(*o));
    o->first = 1;
    o->last = 100;
    o->steps = 4000;
    o->last_n = 200;
    o->limits.max_ms = DEFAULT_MAX_MS;
    o->limits.max_steps = DEFAULT_MAX_STEPS;
    o->limits.max_msgs = DEFAULT_MAX_MSGS;
    o->limits.max_bytes = DEFAULT_MAX_MIB << 20;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;

        if (strcmp(a, "--seeds") == 0 && v != NULL &&
            parse_range(v, &o->first, &o->last)) {
            i++;
        } else if (strcmp(a, "--seed") == 0 && parse_u64(v, &n)) {
            o->first = o->last = n;
            i++;
        } else if (strcmp(a, "--nodes") == 0 && parse_u64(v, &n) &&
                   (n == 1 || n == 3 || n == 5)) {
            o->nodes = (int)n;
            i++;
        } else if (strcmp(a, "--steps") == 0 && parse_u64(v, &n)) {
            o->steps = n;
            i++;
        } else if (strcmp(a, "--last") == 0 && parse_u64(v, &n)) {
            o->last_n = (size_t)n;
            i++;
        } else if (strcmp(a, "--max-ms") == 0 && parse_u64(v, &n)) {
            o->limits.max_ms = n;
            i++;
        } else if (strcmp(a, "--max-steps") == 0 && parse_u64(v, &n)) {
            o->limits.max_steps = n;
            i++;
        } else if (strcmp(a, "--max-msgs") == 0 && parse_u64(v, &n)) {
            o->limits.max_msgs = n;
            i++;
        } else if (strcmp(a, "--max-mib") == 0 && parse_u64(v, &n) &&
                   n < (1ULL << 40)) {
            o->limits.max_bytes = n << 20;
            i++;
        } else if (strcmp(a, "--classic") == 0) {
            o->classic = true;
        } else if (strcmp(a, "--trace") == 0) {
            o->trace = true;
        } else if (strcmp(a, "--stop-on-fail") == 0) {
            o->stop_on_fail = true;
        } else if (strcmp(a, "--tear-hs-last") == 0) {
            o->tear_hs_last = true;
        } else if (strcmp(a, "--verbose") == 0) {
            o->verbose = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else {
            fprintf(stderr, "sim: bad argument '%s'\n", a);
            usage(stderr);
            return -1;
        }
    }
    return 0;
}

/* The limits that differ from the defaults, as options. */
static void print_limits(const struct sim_limits *l)
{
    if (l->max_ms != DEFAULT_MAX_MS) {
        printf(" --max-ms %llu", (unsigned long long)l->max_ms);
    }
    if (l->max_steps != DEFAULT_MAX_STEPS) {
        printf(" --max-steps %llu", (unsigned long long)l->max_steps);
    }
    if (l->max_msgs != DEFAULT_MAX_MSGS) {
        printf(" --max-msgs %llu", (unsigned long long)l->max_msgs);
    }
    if (l->max_bytes != DEFAULT_MAX_MIB << 20) {
        printf(" --max-mib %llu", (unsigned long long)(l->max_bytes >> 20));
    }
}

/* Runs one seed.  Returns true if every check held. */
static bool run_seed(uint64_t seed, const struct opts *o)
{
    struct sim_cluster c;
    struct sim_setup setup;
    uint64_t i;
    bool ok;

    memset(&setup, 0, sizeof(setup));
    setup.seed = seed;
    setup.n_nodes = o->nodes;
    setup.swarm = true;
    setup.faults = true;
    setup.client = true;
    setup.trace_cap = o->last_n == 0 ? 1 : o->last_n;
    setup.trace_echo = o->trace ? stdout : NULL;
    setup.trace_msgs = true;
    setup.tear_hs_last = o->tear_hs_last;
    setup.classic = o->classic;
    setup.limits = o->limits;
    if (o->trace) {
        printf("seed %llu\n", (unsigned long long)seed);
    }
    ok = sim_cluster_init(&c, &setup) == 0;
    if (o->trace) {
        sim_swarm_print(&c.sw, stdout);
    }
    for (i = 0; ok && i < o->steps; i++) {
        ok = sim_cluster_step(&c);
        if (!ok && !c.check.failed) {
            ok = true; /* the queue ran dry: nothing left to do */
            break;
        }
    }
    if (ok) {
        ok = sim_cluster_liveness(&c);
    }
    if (!ok) {
        printf("FAIL seed=%llu: %s\n", (unsigned long long)seed, c.check.why);
        sim_swarm_print(&c.sw, stdout);
        sim_cluster_summary(&c, stdout);
        sim_cluster_dump_nodes(&c, stdout);
        if (!o->trace) {
            printf("last %zu events:\n", sim_trace_len(&c.trace));
            sim_trace_dump(&c.trace, stdout, 0);
        }
        printf("reproduce: sim --seed %llu --steps %llu",
               (unsigned long long)seed, (unsigned long long)o->steps);
        if (o->nodes != 0) {
            printf(" --nodes %d", o->nodes);
        }
        if (o->tear_hs_last) {
            printf(" --tear-hs-last");
        }
        if (o->classic) {
            printf(" --classic");
        }
        print_limits(&o->limits);
        printf(" --trace\n");
    } else if (o->verbose || o->trace) {
        printf("ok seed=%llu ", (unsigned long long)seed);
        sim_cluster_summary(&c, stdout);
    }
    sim_cluster_close(&c);
    return ok;
}

int main(int argc, char **argv)
{
    struct opts o;
    uint64_t seed;
    uint64_t failed = 0;
    uint64_t total = 0;

    if (parse(argc, argv, &o) != 0) {
        return 2;
    }
    for (seed = o.first;; seed++) {
        total++;
        if (!run_seed(seed, &o)) {
            failed++;
        }
        fflush(stdout);
        if (seed == o.last || (failed > 0 && o.stop_on_fail)) {
            break;
        }
    }
    printf("%llu seeds (%llu..%llu), %llu failed\n", (unsigned long long)total,
           (unsigned long long)o.first, (unsigned long long)seed,
           (unsigned long long)failed);
    return failed == 0 ? 0 : 1;
}
