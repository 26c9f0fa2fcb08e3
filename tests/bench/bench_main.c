/* SPDX-License-Identifier: BSD-3-Clause
 * tests/bench/bench_main.c - command line of gr_bench.
 *
 *   gr_bench CASE [--host A] [--port P | --servers A:P,...] [--jobs N] ...
 *
 * One case per invocation, so run.sh can start servers and read their
 * memory in between. Every count and size is a flag, so the same cases run
 * in seconds for CTest (smoke) and in minutes for the real measurement.
 *
 * Not here: the cases themselves (bench_cases.c, bench_raw.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gr_bench CASE [options]\n"
            "\n"
            "Cases (each verifies every job it runs):\n"
            "  ping       wait until the server answers ECHO (readiness)\n"
            "  submit     background submit rate, then drain and verify\n"
            "  roundtrip  foreground round trips: rate, p50/p99 latency, the\n"
            "             workers' mean wait between jobs\n"
            "  deep       queue --jobs background jobs, report server memory\n"
            "             (--server-pid) and disk (--du), then time the drain\n"
            "  big        --size payload round trip over the raw protocol\n"
            "             (with --servers: client on the first, worker on\n"
            "             the second)\n"
            "  failover   a cluster's leader SIGKILLed --kills times under a\n"
            "             light submit load: time from each kill to the first\n"
            "             JOB_CREATED through a survivor, then no\n"
            "             acknowledged job lost (needs --servers, --pid-files,\n"
            "             --restart)\n"
            "  cluster-wait  wait until every --servers node answers and all\n"
            "             agree on one leader; print its name\n"
            "  free-port  print a free loopback TCP port and exit\n"
            "  selftest   check that the verification catches bad runs\n"
            "\n"
            "Options:\n"
            "  --host ADDR        server IPv4 address (127.0.0.1)\n"
            "  --port N           server port (4730)\n"
            "  --servers LIST     HOST:PORT,... (up to 16): thread, client or\n"
            "                     worker i uses server i %% n (round-robin);\n"
            "                     admin reads use the first; replaces\n"
            "                     --host and --port\n"
            "  --jobs N           jobs in the case (submit and roundtrip\n"
            "                     100000, deep 1000000, big 1)\n"
            "  --size BYTES       payload per job, K/M/G suffixes allowed\n"
            "                     (100; big: 64M)\n"
            "  --threads N        submitting threads (4)\n"
            "  --pipeline N       background tasks in flight per thread (16)\n"
            "  --clients N        foreground clients, one thread each (64)\n"
            "  --workers N        worker threads (16)\n"
            "  --repeat N         round trips in the big case (3)\n"
            "  --time-limit SECS  limit of any one phase (600)\n"
            "  --server-pid PID   read the server's /proc status (deep)\n"
            "  --du PATH          report this file's or directory's size\n"
            "  --tag WORD         names this run's functions (pid-based)\n"
            "\n"
            "Failover options:\n"
            "  --kills N          leaders to kill (100)\n"
            "  --interval MS      each node gets one background submission\n"
            "                     every MS milliseconds (20)\n"
            "  --pid-files LIST   comma list, one file per server holding\n"
            "                     that node's current process id\n"
            "  --restart PROG     run as `PROG K` (K = 1..n, the server's\n"
            "                     place in --servers) to start node K again;\n"
            "                     it must exec the node in the foreground\n"
            "                     and write its pid file\n"
            "  --jobs N           most submissions in the whole run (1000000)\n"
            "  --time-limit SECS  limit of each wait: for a leader, for the\n"
            "                     first JOB_CREATED after a kill, for the\n"
            "                     restarted node to catch up\n");
}

static int parse_ulong(const char *s, unsigned long *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != 0 || s[0] == '-') {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_size(const char *s, size_t *out)
{
    char *end;
    unsigned long long v;
    unsigned long long mul = 1;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || s[0] == '-') {
        return -1;
    }
    if (*end == 'K' || *end == 'k') {
        mul = 1024ull;
        end++;
    } else if (*end == 'M' || *end == 'm') {
        mul = 1024ull * 1024ull;
        end++;
    } else if (*end == 'G' || *end == 'g') {
        mul = 1024ull * 1024ull * 1024ull;
        end++;
    }
    if (*end != 0 || v > (unsigned long long)SIZE_MAX / mul) {
        return -1;
    }
    *out = (size_t)(v * mul);
    return 0;
}

/* Parses --servers "HOST:PORT,..." into o (the list is copied into buf,
 * which must outlive o). Returns 0, or -1 on a malformed list. */
static int parse_servers(struct bench_opts *o, const char *list, char *buf,
                         size_t size)
{
    char *p = buf;

    if (strlen(list) >= size) {
        return -1;
    }
    memcpy(buf, list, strlen(list) + 1);
    o->n_servers = 0;
    while (*p != 0) {
        char *comma = strchr(p, ',');
        char *colon;
        unsigned long v;

        if (comma != NULL) {
            *comma = 0;
        }
        colon = strrchr(p, ':');
        if (colon == NULL || colon == p || o->n_servers == BENCH_MAX_SERVERS) {
            return -1;
        }
        *colon = 0;
        if (parse_ulong(colon + 1, &v) != 0 || v == 0 || v > 65535) {
            return -1;
        }
        o->hosts[o->n_servers] = p;
        o->ports[o->n_servers] = (unsigned)v;
        o->n_servers++;
        if (comma == NULL) {
            break;
        }
        p = comma + 1;
    }
    if (o->n_servers == 0) {
        return -1;
    }
    o->host = o->hosts[0];
    o->port = o->ports[0];
    return 0;
}

static int case_free_port(void)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd == -1) {
        perror("socket");
        return 1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) == -1) {
        perror("bind");
        close(fd);
        return 1;
    }
    printf("%u\n", (unsigned)ntohs(sa.sin_port));
    close(fd);
    return 0;
}

enum opt_id {
    OPT_HOST = 256,
    OPT_PORT,
    OPT_JOBS,
    OPT_SIZE,
    OPT_THREADS,
    OPT_PIPELINE,
    OPT_CLIENTS,
    OPT_WORKERS,
    OPT_REPEAT,
    OPT_TIME_LIMIT,
    OPT_SERVER_PID,
    OPT_DU,
    OPT_TAG,
    OPT_SERVERS,
    OPT_KILLS,
    OPT_INTERVAL,
    OPT_PID_FILES,
    OPT_RESTART,
    OPT_HELP,
};

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"host", required_argument, NULL, OPT_HOST},
        {"port", required_argument, NULL, OPT_PORT},
        {"jobs", required_argument, NULL, OPT_JOBS},
        {"size", required_argument, NULL, OPT_SIZE},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"pipeline", required_argument, NULL, OPT_PIPELINE},
        {"clients", required_argument, NULL, OPT_CLIENTS},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"repeat", required_argument, NULL, OPT_REPEAT},
        {"time-limit", required_argument, NULL, OPT_TIME_LIMIT},
        {"server-pid", required_argument, NULL, OPT_SERVER_PID},
        {"du", required_argument, NULL, OPT_DU},
        {"tag", required_argument, NULL, OPT_TAG},
        {"servers", required_argument, NULL, OPT_SERVERS},
        {"kills", required_argument, NULL, OPT_KILLS},
        {"interval", required_argument, NULL, OPT_INTERVAL},
        {"pid-files", required_argument, NULL, OPT_PID_FILES},
        {"restart", required_argument, NULL, OPT_RESTART},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    struct bench_opts o;
    char tag[32];
    char servers[2048];
    const char *servers_arg = NULL;
    const char *cname;
    bool jobs_set = false;
    bool size_set = false;
    int c;

    memset(&o, 0, sizeof(o));
    o.host = "127.0.0.1";
    o.port = 4730;
    o.n_threads = 4;
    o.pipeline = 16;
    o.n_clients = 64;
    o.n_workers = 16;
    o.repeat = 3;
    o.time_limit = 600.0;
    o.n_kills = 100;
    o.interval_ms = 20;
    snprintf(tag, sizeof(tag), "%ld", (long)getpid());
    o.tag = tag;

    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        unsigned long v = 0;
        int bad = 0;

        switch (c) {
        case OPT_HOST:
            o.host = optarg;
            break;
        case OPT_PORT:
            bad = parse_ulong(optarg, &v) != 0 || v == 0 || v > 65535;
            o.port = (unsigned)v;
            break;
        case OPT_JOBS:
            bad = parse_ulong(optarg, &v) != 0 || v == 0 || v > 999999999999ul;
            o.n_jobs = v;
            jobs_set = true;
            break;
        case OPT_SIZE:
            bad = parse_size(optarg, &o.size) != 0 || o.size > 0xfff00000ul ||
                  o.size < BENCH_HDR;
            size_set = true;
            break;
        case OPT_THREADS:
        case OPT_PIPELINE:
        case OPT_CLIENTS:
        case OPT_WORKERS:
        case OPT_REPEAT:
            bad = parse_ulong(optarg, &v) != 0 || v == 0 || v > 4096;
            if (c == OPT_THREADS) {
                o.n_threads = (unsigned)v;
            } else if (c == OPT_PIPELINE) {
                o.pipeline = (unsigned)v;
            } else if (c == OPT_CLIENTS) {
                o.n_clients = (unsigned)v;
            } else if (c == OPT_WORKERS) {
                o.n_workers = (unsigned)v;
            } else {
                o.repeat = (unsigned)v;
            }
            break;
        case OPT_TIME_LIMIT:
            bad = parse_ulong(optarg, &v) != 0 || v == 0 || v > 86400;
            o.time_limit = (double)v;
            break;
        case OPT_SERVER_PID:
            bad = parse_ulong(optarg, &v) != 0 || v == 0 || v > 0x7fffffff;
            o.server_pid = (long)v;
            break;
        case OPT_DU:
            o.du_path = optarg;
            break;
        case OPT_TAG:
            o.tag = optarg;
            bad = strlen(optarg) == 0 || strlen(optarg) > 32;
            break;
        case OPT_SERVERS:
            servers_arg = optarg;
            bad = parse_servers(&o, optarg, servers, sizeof(servers)) != 0;
            break;
        case OPT_KILLS:
            bad = parse_ulong(optarg, &v) != 0 || v == 0 || v > 100000;
            o.n_kills = (unsigned)v;
            break;
        case OPT_INTERVAL:
            bad = parse_ulong(optarg, &v) != 0 || v == 0 || v > 60000;
            o.interval_ms = (unsigned)v;
            break;
        case OPT_PID_FILES:
            o.pid_files = optarg;
            break;
        case OPT_RESTART:
            o.restart = optarg;
            break;
        case OPT_HELP:
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "gr_bench: bad value '%s' for an option\n", optarg);
            return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    cname = argv[optind];
    if (servers_arg == NULL) {
        /* --host and --port, given before or after: one server. */
        o.n_servers = 1;
        o.hosts[0] = o.host;
        o.ports[0] = o.port;
    } else {
        /* --servers wins over a --host or --port given after it. */
        o.host = o.hosts[0];
        o.port = o.ports[0];
    }
    if (!size_set) {
        o.size = strcmp(cname, "big") == 0 ? 64u * 1024u * 1024u : 100u;
    }
    if (!jobs_set) {
        o.n_jobs = strcmp(cname, "deep") == 0 || strcmp(cname, "failover") == 0
                       ? 1000000ul
                       : 100000ul;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(cname, "ping") == 0) {
        return bench_case_ping(&o);
    }
    if (strcmp(cname, "submit") == 0) {
        return bench_case_submit(&o);
    }
    if (strcmp(cname, "roundtrip") == 0) {
        return bench_case_roundtrip(&o);
    }
    if (strcmp(cname, "deep") == 0) {
        return bench_case_deep(&o);
    }
    if (strcmp(cname, "big") == 0) {
        return bench_case_big(&o);
    }
    if (strcmp(cname, "failover") == 0) {
        return bench_case_failover(&o);
    }
    if (strcmp(cname, "cluster-wait") == 0) {
        return bench_case_cluster_wait(&o);
    }
    if (strcmp(cname, "selftest") == 0) {
        return bench_case_selftest();
    }
    if (strcmp(cname, "free-port") == 0) {
        return case_free_port();
    }
    fprintf(stderr, "gr_bench: unknown case '%s'\n", cname);
    usage(stderr);
    return 2;
}
