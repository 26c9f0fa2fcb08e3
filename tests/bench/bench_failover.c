/* SPDX-License-Identifier: BSD-3-Clause
 * tests/bench/bench_failover.c - how long a cluster is unavailable when its
 * leader dies: the `failover` and `cluster-wait` cases of gr_bench.
 *
 * A feed thread per node keeps a light, paced load of background
 * submissions going over the raw protocol (one SUBMIT_JOB_BG every
 * --interval ms, not waiting for the answer, so a submission is sent
 * while the cluster has no leader too). The driver waits until the
 * cluster is whole (admin `cluster` on every node: one leader all agree
 * on, every link up, every node caught up), SIGKILLs the leader, and
 * takes the time from just before kill() to the first JOB_CREATED that
 * a survivor sends for a submission sent after the kill (CLOCK_MONOTONIC;
 * answers on one connection come in request order, so each answer is
 * matched with its submission's send time). Submissions sent before the
 * kill do not count: one of those may have committed before the leader
 * died. It then restarts the node on its own data directory (the
 * --restart program) and waits until the cluster is whole again before
 * the next kill.
 *
 * At the end the feeds stop, workers drain the queue through every node,
 * and every acknowledged submission must have run exactly once: none lost
 * by a kill. Submissions whose answer never came (the killed node's) may
 * or may not have run; they are counted, not judged.
 *
 * Every wait is bounded by --time-limit, every socket has timeouts, and
 * the number of kills and of submissions is fixed, so the case ends.
 *
 * Not here: starting the cluster (run.sh writes the program that starts a
 * node and the pid files it keeps).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

extern char **environ;

/* Packet types (docs/protocol.md, "Packets"). */
#define FO_JOB_CREATED 8
#define FO_SUBMIT_JOB_BG 18
#define FO_ERROR 19

/* Submissions one feed may have unanswered; more wait for answers. */
#define FO_WINDOW 4096

/* How long the feeds wait for their last answers once told to stop. */
#define FO_QUIESCE_S 15.0

/* What became of submission i. */
enum fo_state {
    FO_UNSENT = 0,
    FO_SENT = 1,    /* written, no answer yet */
    FO_ACKED = 2,   /* JOB_CREATED: it must run */
    FO_REFUSED = 3, /* ERROR: it must not have been queued, but may be */
    FO_UNKNOWN = 4, /* the connection broke before the answer */
};

/* One node's view of the cluster, from its admin `cluster` lines. */
struct fo_view {
    char self[40];
    char leader[40]; /* "-" when the node knows none */
    char role[16];
    unsigned long long term;
    unsigned long long commit;
    unsigned long long applied;
    unsigned n_members;
    bool all_reachable; /* every member line says yes or self */
};

struct fo_shared;

struct fo_feed {
    struct fo_shared *sh;
    unsigned node;
    pthread_t tid;
    bool started;
};

struct fo_shared {
    const struct bench_opts *opts;
    char fn[128];
    atomic_ulong next;      /* next submission index */
    _Atomic uint8_t *state; /* enum fo_state per index; owned */
    atomic_bool quiesce;    /* send nothing more, collect answers */
    atomic_bool stop;       /* leave now */
    atomic_ulong n_acked;
    atomic_ulong n_refused;
    atomic_ulong n_unknown;
    atomic_ulong n_reconnects;
    atomic_ulong n_proto; /* answers that made no sense */
    atomic_ulong acked_by[BENCH_MAX_SERVERS];
    /* The measurement of one kill, under mu. */
    pthread_mutex_t mu;
    double kill_at; /* monotonic; 0: not measuring */
    unsigned killed;
    double first_ack; /* 0 until a survivor answered a later submission */
    unsigned first_node;
    struct fo_feed feeds[BENCH_MAX_SERVERS];
};

static void pause_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000u),
                          (long)(ms % 1000u) * 1000000L};

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* Copies the value of `key=` in the space-separated line into out. */
static bool token(const char *line, const char *key, char *out, size_t size)
{
    size_t kl = strlen(key);
    const char *p = line;

    while (*p != 0) {
        size_t wl = strcspn(p, " ");
        if (wl > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t vl = wl - kl - 1;
            if (vl >= size) {
                return false;
            }
            memcpy(out, p + kl + 1, vl);
            out[vl] = 0;
            return true;
        }
        p += wl;
        p += strspn(p, " ");
    }
    return false;
}

static bool token_ull(const char *line, const char *key,
                      unsigned long long *out)
{
    char buf[32];
    char *end;

    if (!token(line, key, buf, sizeof(buf))) {
        return false;
    }
    errno = 0;
    *out = strtoull(buf, &end, 10);
    return errno == 0 && end != buf && *end == 0;
}

/* Reads server s's view. Returns 0, or -1 when it does not answer or the
 * reply is not what docs/protocol.md ("Admin lines") describes. */
static int view_read(const struct bench_opts *opts, unsigned s,
                     struct fo_view *v)
{
    char buf[8192];
    char *line;
    char *eol;
    char val[16];

    if (bench_admin_query(bench_host(opts, s), bench_port(opts, s),
                          "cluster\n", buf, sizeof(buf), true) != 0) {
        return -1;
    }
    memset(v, 0, sizeof(*v));
    eol = strchr(buf, '\n');
    if (eol == NULL) {
        return -1;
    }
    *eol = 0;
    if (!token(buf, "self", v->self, sizeof(v->self)) ||
        !token(buf, "leader", v->leader, sizeof(v->leader)) ||
        !token(buf, "role", v->role, sizeof(v->role)) ||
        !token_ull(buf, "term", &v->term) ||
        !token_ull(buf, "commit", &v->commit) ||
        !token_ull(buf, "applied", &v->applied)) {
        return -1;
    }
    v->all_reachable = true;
    for (line = eol + 1; *line != 0 && strcmp(line, ".\n") != 0;) {
        eol = strchr(line, '\n');
        if (eol == NULL) {
            return -1;
        }
        *eol = 0;
        if (!token(line, "reachable", val, sizeof(val))) {
            return -1;
        }
        if (strcmp(val, "yes") != 0 && strcmp(val, "self") != 0) {
            v->all_reachable = false;
        }
        v->n_members++;
        line = eol + 1;
    }
    return 0;
}

/* Whether the cluster is whole: every node answers, exactly one calls
 * itself leader and every other follows it in the same term, every link
 * is up, and every node has applied as far as the leader had committed.
 * On true writes the leader's server index. Prints why not when `why`. */
static bool cluster_whole(const struct bench_opts *opts, unsigned *leader,
                          bool why)
{
    struct fo_view v[BENCH_MAX_SERVERS];
    unsigned n = opts->n_servers;
    unsigned lead = n;

    for (unsigned s = 0; s < n; s++) {
        if (view_read(opts, s, &v[s]) != 0) {
            if (why) {
                fprintf(stderr, "cluster: node %u does not answer\n", s + 1);
            }
            return false;
        }
        if (strcmp(v[s].role, "leader") == 0) {
            if (lead != n) {
                if (why) {
                    fprintf(stderr, "cluster: two nodes lead\n");
                }
                return false;
            }
            lead = s;
        }
    }
    if (lead == n) {
        if (why) {
            fprintf(stderr, "cluster: no leader\n");
        }
        return false;
    }
    for (unsigned s = 0; s < n; s++) {
        if (strcmp(v[s].leader, v[lead].self) != 0 ||
            v[s].term != v[lead].term || !v[s].all_reachable ||
            v[s].n_members != n) {
            if (why) {
                fprintf(stderr,
                        "cluster: %s sees leader %s in term %llu, %u "
                        "members, %s reachable\n",
                        v[s].self, v[s].leader, v[s].term, v[s].n_members,
                        v[s].all_reachable ? "all" : "not all");
            }
            return false;
        }
    }
    /* Caught up: read the followers again, after the leader. */
    for (unsigned s = 0; s < n; s++) {
        struct fo_view again;
        if (s == lead) {
            continue;
        }
        if (view_read(opts, s, &again) != 0 ||
            again.applied < v[lead].commit) {
            if (why) {
                fprintf(stderr, "cluster: %s has not applied up to %llu\n",
                        v[s].self, v[lead].commit);
            }
            return false;
        }
    }
    *leader = lead;
    return true;
}

/* Polls cluster_whole() every 20 ms until the deadline. Returns 0 and
 * writes the leader, or -1 (saying why) when the deadline passed. */
static int wait_whole(const struct bench_opts *opts, double deadline,
                      unsigned *leader)
{
    while (!cluster_whole(opts, leader, false)) {
        if (bench_now() >= deadline) {
            (void)cluster_whole(opts, leader, true);
            return -1;
        }
        pause_ms(20);
    }
    return 0;
}

int bench_case_cluster_wait(const struct bench_opts *opts)
{
    struct fo_view v;
    unsigned lead;

    if (wait_whole(opts, bench_now() + opts->time_limit, &lead) != 0) {
        fprintf(stderr, "cluster-wait: the cluster was not whole within %.0f "
                        "s\n",
                opts->time_limit);
        return 1;
    }
    if (view_read(opts, lead, &v) != 0) {
        return 1;
    }
    printf("%s\n", v.self);
    return 0;
}

/* The feeds. */

struct fo_pending {
    unsigned long index;
    double sent_at;
};

/* Builds the SUBMIT_JOB_BG of submission idx into pkt. Returns its size. */
static size_t build_submit(const struct fo_shared *sh, unsigned long idx,
                           uint8_t *pkt, size_t cap)
{
    char uniq[64];
    size_t fl = strlen(sh->fn) + 1;
    size_t ul;
    size_t body;

    snprintf(uniq, sizeof(uniq), "%s-%lu", sh->opts->tag, idx);
    ul = strlen(uniq) + 1;
    body = fl + ul + sh->opts->size;
    if (12 + body > cap) {
        return 0;
    }
    memcpy(pkt, "\0REQ", 4);
    pkt[4] = 0;
    pkt[5] = 0;
    pkt[6] = 0;
    pkt[7] = FO_SUBMIT_JOB_BG;
    pkt[8] = (uint8_t)(body >> 24);
    pkt[9] = (uint8_t)(body >> 16);
    pkt[10] = (uint8_t)(body >> 8);
    pkt[11] = (uint8_t)body;
    memcpy(pkt + 12, sh->fn, fl);
    memcpy(pkt + 12 + fl, uniq, ul);
    bench_payload_fill(pkt + 12 + fl + ul, sh->opts->size, idx);
    return 12 + body;
}

/* Counts one answer of node k to the oldest unanswered submission. */
static void on_answer(struct fo_shared *sh, unsigned k, uint32_t type,
                      const struct fo_pending *p, double at)
{
    if (type == FO_JOB_CREATED) {
        atomic_store(&sh->state[p->index], FO_ACKED);
        atomic_fetch_add(&sh->n_acked, 1);
        atomic_fetch_add(&sh->acked_by[k], 1);
        pthread_mutex_lock(&sh->mu);
        if (sh->kill_at > 0.0 && sh->first_ack == 0.0 && k != sh->killed &&
            p->sent_at > sh->kill_at) {
            sh->first_ack = at;
            sh->first_node = k;
        }
        pthread_mutex_unlock(&sh->mu);
    } else {
        atomic_store(&sh->state[p->index], FO_REFUSED);
        if (atomic_fetch_add(&sh->n_refused, 1) < 5) {
            fprintf(stderr, "failover: node %u refused submission %lu\n",
                    k + 1, p->index);
        }
    }
}

/* Everything unanswered on a broken connection: its fate is unknown. */
static void forget_pending(struct fo_shared *sh, struct fo_pending *ring,
                           unsigned long *head, unsigned long tail)
{
    for (; *head < tail; (*head)++) {
        atomic_store(&sh->state[ring[*head % FO_WINDOW].index], FO_UNKNOWN);
        atomic_fetch_add(&sh->n_unknown, 1);
    }
}

static void *feed_main(void *arg)
{
    struct fo_feed *f = arg;
    struct fo_shared *sh = f->sh;
    const struct bench_opts *opts = sh->opts;
    size_t cap = 12 + sizeof(sh->fn) + 64 + opts->size;
    uint8_t *pkt = malloc(cap);
    size_t rcap = 65536;
    uint8_t *rbuf = malloc(rcap);
    struct fo_pending *ring = calloc(FO_WINDOW, sizeof(*ring));
    unsigned long head = 0; /* oldest unanswered */
    unsigned long tail = 0; /* next free */
    size_t rlen = 0;
    double interval = (double)opts->interval_ms / 1e3;
    double next_send = bench_now();
    double quiesce_end = 0.0;
    int fd = -1;

    if (pkt == NULL || rbuf == NULL || ring == NULL) {
        fprintf(stderr, "failover: out of memory\n");
        atomic_fetch_add(&sh->n_proto, 1);
        goto out;
    }
    while (!atomic_load(&sh->stop)) {
        bool quiet = atomic_load(&sh->quiesce);
        double now = bench_now();
        struct pollfd pfd;
        int wait_ms;

        if (quiet) {
            if (quiesce_end == 0.0) {
                quiesce_end = now + FO_QUIESCE_S;
            }
            if (head == tail || now >= quiesce_end || fd == -1) {
                break;
            }
        }
        if (fd == -1) {
            /* The node is down (killed, or not back yet): try again. */
            fd = bench_raw_connect(bench_host(opts, f->node),
                                   bench_port(opts, f->node), 5.0, true);
            if (fd == -1) {
                pause_ms(20);
                continue;
            }
            atomic_fetch_add(&sh->n_reconnects, 1);
            rlen = 0;
            next_send = bench_now();
            continue;
        }
        if (!quiet && now >= next_send && tail - head < FO_WINDOW) {
            unsigned long idx = atomic_fetch_add(&sh->next, 1);
            size_t len;

            if (idx >= opts->n_jobs) {
                atomic_store(&sh->next, opts->n_jobs);
                fprintf(stderr, "failover: all %lu submissions used up\n",
                        opts->n_jobs);
                atomic_store(&sh->quiesce, true);
                continue;
            }
            len = build_submit(sh, idx, pkt, cap);
            atomic_store(&sh->state[idx], FO_SENT);
            ring[tail % FO_WINDOW].index = idx;
            ring[tail % FO_WINDOW].sent_at = bench_now();
            tail++;
            if (len == 0 || bench_raw_write_all(fd, pkt, len) != 0) {
                forget_pending(sh, ring, &head, tail);
                close(fd);
                fd = -1;
                continue;
            }
            next_send += interval;
            if (next_send < now - interval) {
                next_send = now; /* after a stall, no burst */
            }
        }
        now = bench_now();
        if (quiet || tail - head >= FO_WINDOW) {
            wait_ms = 50; /* only answers to wait for */
        } else if (next_send <= now) {
            wait_ms = 0;
        } else {
            wait_ms = (int)((next_send - now) * 1e3) + 1;
            wait_ms = wait_ms > 50 ? 50 : wait_ms;
        }
        pfd.fd = fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (poll(&pfd, 1, wait_ms) == -1) {
            if (errno == EINTR) {
                continue;
            }
            fprintf(stderr, "failover: poll: %s\n", strerror(errno));
            atomic_fetch_add(&sh->n_proto, 1);
            break;
        }
        if (pfd.revents == 0) {
            continue;
        }
        {
            ssize_t n = read(fd, rbuf + rlen, rcap - rlen);
            double at = bench_now();
            size_t off = 0;

            if (n <= 0) {
                if (n == -1 && (errno == EINTR || errno == EAGAIN)) {
                    continue;
                }
                /* Killed, or the node closed: answers lost with it. */
                forget_pending(sh, ring, &head, tail);
                close(fd);
                fd = -1;
                continue;
            }
            rlen += (size_t)n;
            while (rlen - off >= 12) {
                const uint8_t *h = rbuf + off;
                uint32_t type = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 |
                                (uint32_t)h[6] << 8 | (uint32_t)h[7];
                uint32_t size = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 |
                                (uint32_t)h[10] << 8 | (uint32_t)h[11];

                if (memcmp(h, "\0RES", 4) != 0 || size > rcap - 12 ||
                    (type != FO_JOB_CREATED && type != FO_ERROR) ||
                    head == tail) {
                    fprintf(stderr,
                            "failover: node %u sent packet %u of %u bytes "
                            "with %lu submissions unanswered\n",
                            f->node + 1, type, size, tail - head);
                    atomic_fetch_add(&sh->n_proto, 1);
                    forget_pending(sh, ring, &head, tail);
                    close(fd);
                    fd = -1;
                    break;
                }
                if (rlen - off < 12 + (size_t)size) {
                    break;
                }
                on_answer(sh, f->node, type, &ring[head % FO_WINDOW], at);
                head++;
                off += 12 + (size_t)size;
            }
            if (fd != -1 && off > 0) {
                memmove(rbuf, rbuf + off, rlen - off);
                rlen -= off;
            }
        }
    }
out:
    if (fd != -1) {
        forget_pending(sh, ring, &head, tail);
        close(fd);
    }
    free(ring);
    free(rbuf);
    free(pkt);
    return NULL;
}

/* Processes. */

/* Reads the process id in path, or returns 0. */
static pid_t read_pid(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = 0;

    if (f == NULL) {
        return 0;
    }
    if (fscanf(f, "%ld", &v) != 1 || v <= 1) {
        v = 0;
    }
    fclose(f);
    return (pid_t)v;
}

/* Whether pid is gone: reaped (our child) or a zombie or absent (someone
 * else's, whose parent reaps it when it will). */
static bool is_dead(pid_t pid, bool ours)
{
    char path[64];
    char buf[512];
    FILE *f;
    size_t n;
    char *paren;

    if (ours) {
        pid_t r = waitpid(pid, NULL, WNOHANG);
        return r == pid || (r == -1 && errno == ECHILD);
    }
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return true;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    paren = strrchr(buf, ')');
    return paren == NULL || paren[1] == 0 || paren[2] == 'Z' ||
           paren[2] == 'X';
}

struct fo_proc {
    char pid_file[512];
    pid_t child; /* a node this run started (reaped by us), or 0 */
};

/* Splits the comma list of pid files over n nodes. Returns 0 or -1. */
static int split_pid_files(const char *list, struct fo_proc *procs,
                           unsigned n)
{
    const char *p = list;

    for (unsigned k = 0; k < n; k++) {
        size_t l = strcspn(p, ",");
        if (l == 0 || l >= sizeof(procs[k].pid_file)) {
            return -1;
        }
        memcpy(procs[k].pid_file, p, l);
        procs[k].pid_file[l] = 0;
        procs[k].child = 0;
        p += l;
        if (k + 1 < n) {
            if (*p != ',') {
                return -1;
            }
            p++;
        }
    }
    return *p == 0 ? 0 : -1;
}

/* Starts node k again: `restart k+1` as our child. Returns 0 or -1. */
static int restart_node(const struct bench_opts *opts, struct fo_proc *proc,
                        unsigned k)
{
    char num[16];
    char *argv[3];
    pid_t pid;
    int rv;

    snprintf(num, sizeof(num), "%u", k + 1);
    argv[0] = (char *)(uintptr_t)opts->restart;
    argv[1] = num;
    argv[2] = NULL;
    rv = posix_spawn(&pid, opts->restart, NULL, NULL, argv, environ);
    if (rv != 0) {
        fprintf(stderr, "failover: cannot run %s: %s\n", opts->restart,
                strerror(rv));
        return -1;
    }
    proc->child = pid;
    return 0;
}

/* The drain that checks that nothing acknowledged was lost. */
static bool drain_and_check(struct fo_shared *sh, unsigned long n_sent)
{
    const struct bench_opts *opts = sh->opts;
    struct bench_ledger ledger;
    struct bench_pool *pool;
    unsigned long lost = 0;
    unsigned long first_lost = 0;
    unsigned long ran_unacked = 0;
    unsigned long dup = 0;
    unsigned long acked = atomic_load(&sh->n_acked);
    unsigned long q = 0;
    unsigned long r = 0;
    unsigned long a = 0;
    double t0 = bench_now();
    double deadline = t0 + opts->time_limit;
    bool stuck = false;
    bool ok = true;

    if (bench_ledger_init(&ledger, n_sent > 0 ? n_sent : 1, opts->size) !=
        0) {
        fprintf(stderr, "failover: out of memory\n");
        return false;
    }
    pool = bench_pool_start(opts, sh->fn, &ledger, false, opts->n_workers);
    if (pool == NULL) {
        bench_ledger_close(&ledger);
        return false;
    }
    /* Every acknowledged job counted, and the queue empty with nothing
     * running (a read every node agrees on: it goes through the leader). */
    for (;;) {
        if (atomic_load(&ledger.n_done) >= acked &&
            bench_admin_status(opts->host, opts->port, sh->fn, &q, &r, &a) ==
                0 &&
            q == 0 && r == 0) {
            break;
        }
        if (bench_now() >= deadline) {
            fprintf(stderr,
                    "failover: drain unfinished after %.0f s: %lu ran, "
                    "%lu queued, %lu running\n",
                    opts->time_limit, atomic_load(&ledger.n_done), q, r);
            ok = false;
            break;
        }
        pause_ms(20);
    }
    fprintf(stderr, "failover: drained %lu jobs in %.1f s\n",
            atomic_load(&ledger.n_done), bench_now() - t0);
    if (bench_pool_free(pool, &stuck) != 0) {
        fprintf(stderr, "failover: the drain's workers saw errors\n");
    }
    for (unsigned long i = 0; i < n_sent; i++) {
        uint8_t seen = atomic_load(&ledger.seen[i]);
        uint8_t st = atomic_load(&sh->state[i]);
        if (seen > 1) {
            dup++;
        }
        if (st == FO_ACKED && seen == 0) {
            if (lost == 0) {
                first_lost = i;
            }
            lost++;
        } else if (st != FO_ACKED && seen > 0) {
            ran_unacked++;
        }
    }
    if (atomic_load(&ledger.n_bad) != 0 || dup != 0 || lost != 0) {
        fprintf(stderr,
                "verify failover: FAILED: %lu acknowledged jobs lost "
                "(first %lu), %lu ran more than once, %lu bad payloads\n",
                lost, first_lost, dup, atomic_load(&ledger.n_bad));
        ok = false;
    } else {
        fprintf(stderr,
                "verify failover: all %lu acknowledged jobs ran exactly "
                "once (and %lu of the %lu unanswered or refused ones)\n",
                acked, ran_unacked, n_sent - acked);
    }
    printf("RESULT case=failover_check sent=%lu acked=%lu lost=%lu dup=%lu "
           "ran_unacked=%lu\n",
           n_sent, acked, lost, dup, ran_unacked);
    if (!stuck) {
        bench_ledger_close(&ledger);
    }
    return ok;
}

/* Kills the leader once and measures. Returns the milliseconds from the
 * kill to the first JOB_CREATED through a survivor, or a negative value
 * on failure (said on stderr). */
static double kill_once(struct fo_shared *sh, struct fo_proc *procs,
                        unsigned lead, unsigned round)
{
    const struct bench_opts *opts = sh->opts;
    struct fo_view v;
    pid_t pid = read_pid(procs[lead].pid_file);
    bool ours = pid != 0 && pid == procs[lead].child;
    double deadline;
    double ms;
    unsigned via;

    if (pid == 0 || is_dead(pid, ours)) {
        fprintf(stderr, "failover: no live process in %s\n",
                procs[lead].pid_file);
        return -1.0;
    }
    pthread_mutex_lock(&sh->mu);
    sh->first_ack = 0.0;
    sh->killed = lead;
    sh->kill_at = bench_now();
    pthread_mutex_unlock(&sh->mu);
    if (kill(pid, SIGKILL) == -1) {
        fprintf(stderr, "failover: kill %ld: %s\n", (long)pid, strerror(errno));
        return -1.0;
    }
    deadline = bench_now() + opts->time_limit;
    for (;;) {
        bool done;
        pthread_mutex_lock(&sh->mu);
        done = sh->first_ack > 0.0;
        pthread_mutex_unlock(&sh->mu);
        if (done) {
            break;
        }
        if (bench_now() >= deadline) {
            fprintf(stderr,
                    "failover: kill %u: no JOB_CREATED through a survivor "
                    "within %.0f s\n",
                    round, opts->time_limit);
            return -1.0;
        }
        pause_ms(1);
    }
    pthread_mutex_lock(&sh->mu);
    ms = (sh->first_ack - sh->kill_at) * 1e3;
    via = sh->first_node;
    sh->kill_at = 0.0;
    pthread_mutex_unlock(&sh->mu);
    /* The killed process must be gone before it starts again on its
     * data directory. */
    while (!is_dead(pid, ours)) {
        if (bench_now() >= deadline) {
            fprintf(stderr, "failover: node %u (pid %ld) outlived SIGKILL\n",
                    lead + 1, (long)pid);
            return -1.0;
        }
        pause_ms(1);
    }
    procs[lead].child = 0;
    if (view_read(opts, via, &v) == 0) {
        fprintf(stderr,
                "failover: kill %u: node %u (leader) killed; first "
                "JOB_CREATED %.1f ms later via node %u; leader now %s, "
                "term %llu\n",
                round, lead + 1, ms, via + 1, v.leader, v.term);
    }
    return ms;
}

int bench_case_failover(const struct bench_opts *opts)
{
    struct fo_shared *sh;
    struct fo_proc procs[BENCH_MAX_SERVERS];
    double *ms;
    unsigned n = opts->n_servers;
    unsigned done = 0;
    unsigned lead = 0;
    unsigned long n_sent;
    uint64_t jitter = (uint64_t)(bench_now() * 1e9);
    bool ok = true;
    int rc = 1;

    if (n < 3 || opts->pid_files == NULL || opts->restart == NULL ||
        split_pid_files(opts->pid_files, procs, n) != 0) {
        fprintf(stderr, "failover: needs --servers of at least 3 nodes, "
                        "--pid-files with one file each, and --restart\n");
        return 2;
    }
    sh = calloc(1, sizeof(*sh));
    ms = calloc(opts->n_kills, sizeof(*ms));
    if (sh == NULL || ms == NULL) {
        free(sh);
        free(ms);
        return 1;
    }
    sh->state = calloc(opts->n_jobs, sizeof(*sh->state));
    if (sh->state == NULL) {
        fprintf(stderr, "failover: out of memory\n");
        free(sh);
        free(ms);
        return 1;
    }
    sh->opts = opts;
    snprintf(sh->fn, sizeof(sh->fn), "bench_failover_%s", opts->tag);
    pthread_mutex_init(&sh->mu, NULL);
    if (wait_whole(opts, bench_now() + opts->time_limit, &lead) != 0) {
        fprintf(stderr, "failover: the cluster is not whole at the start\n");
        goto out;
    }
    for (unsigned k = 0; k < n; k++) {
        sh->feeds[k].sh = sh;
        sh->feeds[k].node = k;
        if (pthread_create(&sh->feeds[k].tid, NULL, feed_main,
                           &sh->feeds[k]) != 0) {
            fprintf(stderr, "failover: pthread_create failed\n");
            ok = false;
            break;
        }
        sh->feeds[k].started = true;
    }
    /* Every feed acknowledged once: the load is on before the first
     * kill. */
    for (double end = bench_now() + opts->time_limit; ok;) {
        unsigned k = 0;
        while (k < n && atomic_load(&sh->acked_by[k]) > 0) {
            k++;
        }
        if (k == n) {
            break;
        }
        if (bench_now() >= end) {
            fprintf(stderr, "failover: node %u acknowledged nothing\n", k + 1);
            ok = false;
        }
        pause_ms(5);
    }
    while (ok && done < opts->n_kills) {
        double t;
        if (atomic_load(&sh->quiesce)) {
            fprintf(stderr, "failover: out of submissions after %u kills "
                            "(raise --jobs)\n",
                    done);
            ok = false;
            break;
        }
        if (wait_whole(opts, bench_now() + opts->time_limit, &lead) != 0) {
            fprintf(stderr, "failover: not whole again before kill %u\n",
                    done + 1);
            ok = false;
            break;
        }
        /* Kill at a random point between two heartbeats (50 ms by
         * default), not always just after the leader's last one. */
        jitter ^= jitter << 13;
        jitter ^= jitter >> 7;
        jitter ^= jitter << 17;
        pause_ms((unsigned)(jitter % 100u));
        t = kill_once(sh, procs, lead, done + 1);
        if (t < 0.0) {
            ok = false;
            break;
        }
        ms[done++] = t;
        if (restart_node(opts, &procs[lead], lead) != 0) {
            ok = false;
            break;
        }
    }
    if (ok && wait_whole(opts, bench_now() + opts->time_limit, &lead) != 0) {
        ok = false;
    }
    atomic_store(&sh->quiesce, true);
    for (unsigned k = 0; k < n; k++) {
        if (sh->feeds[k].started) {
            pthread_join(sh->feeds[k].tid, NULL);
        }
    }
    n_sent = atomic_load(&sh->next);
    if (n_sent > opts->n_jobs) {
        n_sent = opts->n_jobs;
    }
    fprintf(stderr,
            "failover: %u kills; %lu submissions, %lu acknowledged, %lu "
            "refused, %lu unanswered; %lu reconnects\n",
            done, n_sent, atomic_load(&sh->n_acked),
            atomic_load(&sh->n_refused), atomic_load(&sh->n_unknown),
            atomic_load(&sh->n_reconnects));
    if (atomic_load(&sh->n_proto) != 0) {
        ok = false;
    }
    if (done > 0) {
        double sum = 0.0;
        for (unsigned i = 0; i < done; i++) {
            sum += ms[i];
        }
        bench_sort(ms, done);
        printf("RESULT case=failover kills=%u p50_ms=%.1f p90_ms=%.1f "
               "p99_ms=%.1f max_ms=%.1f min_ms=%.1f mean_ms=%.1f "
               "interval_ms=%u complete=%d\n",
               done, bench_percentile(ms, done, 50),
               bench_percentile(ms, done, 90), bench_percentile(ms, done, 99),
               ms[done - 1], ms[0], sum / done, opts->interval_ms,
               ok && done == opts->n_kills ? 1 : 0);
    }
    /* Nothing acknowledged may be lost, whatever happened above. */
    if (!drain_and_check(sh, n_sent)) {
        ok = false;
    }
    rc = ok && done == opts->n_kills ? 0 : 1;

out:
    atomic_store(&sh->stop, true);
    pthread_mutex_destroy(&sh->mu);
    free((void *)sh->state);
    free(sh);
    free(ms);
    return rc;
}
