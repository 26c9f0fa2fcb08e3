/* SPDX-License-Identifier: BSD-3-Clause
 * tests/bench/bench.h - shared pieces of gr_bench, the side-by-side
 * benchmark that measures stock gearmand and gearraftd with one client.
 *
 * The tool runs one case per invocation (run.sh strings them together, so
 * that it can start and stop servers and read their memory between cases).
 * Every case verifies what it measured: each job carries its own index in a
 * self-describing payload, the workers check the bytes and count each index,
 * and a case fails (exit status 1) unless every job ran exactly once with the
 * right bytes and the server's own counts agree.
 *
 * Results go to stdout as one "RESULT case=<name> key=value ..." line per
 * measurement, for run.sh to parse; everything else goes to stderr.
 *
 * Not here: starting servers (run.sh), the Raft core benchmark
 * (raft_core_bench.c, owned by someone else).
 */
#ifndef GR_BENCH_H
#define GR_BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Servers one run may spread its connections over (--servers). */
#define BENCH_MAX_SERVERS 16

/* Options of one run, filled from the command line by bench_main.c. */
struct bench_opts {
    const char *host;     /* server address, loopback in practice */
    unsigned port;        /* server port */
    /* The servers, in --servers order; without --servers one, host:port.
     * Thread, client or worker number i of a case uses server
     * i % n_servers (bench_host, bench_port), so a cluster's nodes share
     * the load round-robin; admin reads go to server 0. */
    unsigned n_servers;
    const char *hosts[BENCH_MAX_SERVERS];
    unsigned ports[BENCH_MAX_SERVERS];
    const char *tag;      /* makes function names unique per run */
    unsigned long n_jobs; /* jobs in the case */
    size_t size;          /* payload bytes per job */
    unsigned n_threads;   /* submitting client threads (submit, deep) */
    unsigned pipeline;    /* background tasks in flight per thread */
    unsigned n_clients;   /* foreground client threads (roundtrip) */
    unsigned n_workers;   /* worker threads */
    unsigned repeat;      /* repetitions (big) */
    double time_limit;    /* seconds any one phase may take */
    long server_pid;      /* for VmRSS, 0 if unknown */
    const char *du_path;  /* file or directory whose size to report */
    /* The failover case (bench_failover.c). */
    unsigned n_kills;       /* leaders to kill */
    unsigned interval_ms;   /* one submission per node every this long */
    const char *pid_files;  /* comma list, one per server */
    const char *restart;    /* program run as `restart K` to start node K */
};

/* Server i % n_servers of the run. */
const char *bench_host(const struct bench_opts *opts, unsigned i);
unsigned bench_port(const struct bench_opts *opts, unsigned i);

/* Monotonic seconds. */
double bench_now(void);

/* Fills buf (size bytes, size >= BENCH_HDR) with the payload of job index:
 * a 12-digit decimal index, '|', then filler derived from the index. */
#define BENCH_HDR 13
void bench_payload_fill(uint8_t *buf, size_t size, unsigned long index);

/* Checks a payload made by bench_payload_fill() of any index. Returns true
 * and writes *index when the bytes are exactly what that index carries.
 * A truncated payload still passes: callers compare the size themselves. */
bool bench_payload_check(const uint8_t *buf, size_t size, unsigned long *index);

/* Counts executions per job index, so that "exactly once" can be checked.
 * Counters saturate at 255. */
struct bench_ledger {
    unsigned long n;       /* job indexes 0 .. n-1 */
    size_t size;           /* payload size every job must have */
    _Atomic uint8_t *seen; /* executions per index; owned */
    atomic_ulong n_done;   /* executions of valid payloads */
    atomic_ulong n_dup;    /* executions of an index already seen */
    atomic_ulong n_bad;    /* payloads that failed the check */
};

/* Returns 0, or -1 when out of memory. */
int bench_ledger_init(struct bench_ledger *l, unsigned long n, size_t size);
void bench_ledger_close(struct bench_ledger *l);

/* Records one execution of payload data; returns false if it was bad or a
 * duplicate. Thread-safe. */
bool bench_ledger_record(struct bench_ledger *l, const uint8_t *data,
                         size_t len);

/* Returns true if every index ran exactly once; otherwise prints why. */
bool bench_ledger_verify(struct bench_ledger *l, const char *what);

/* A pool of libgearman workers (bench_worker.c). Each thread owns one
 * gearman_worker_st, registers function fn and, for every job, records the
 * payload in the ledger; echo makes it return the payload as the result.
 * The pool stops when the ledger has counted n jobs or on bench_pool_stop. */
struct bench_pool;

/* Starts n worker threads, worker i on server i (round-robin over the
 * run's servers). Returns NULL on failure (message on stderr).
 * The pool borrows opts, fn and ledger until bench_pool_free(). */
struct bench_pool *bench_pool_start(const struct bench_opts *opts,
                                    const char *fn, struct bench_ledger *ledger,
                                    bool echo, unsigned n);

/* Waits until the ledger has counted `target` executions or the deadline
 * (monotonic seconds) passes. Returns true if the target was reached. */
bool bench_pool_wait(struct bench_pool *p, unsigned long target,
                     double deadline);

/* The mean time a worker spent between returning a result and being
 * handed its next job (ms): GRAB_JOB and the server's answer, with the
 * scheduling of the worker thread. Idle time when the queue ran empty
 * counts too. 0 before any worker did two jobs. */
double bench_pool_gap_ms(struct bench_pool *p);

/* Stops the threads (they exit within one worker timeout) and frees the
 * pool. Returns the number of libgearman errors the workers saw. A thread
 * still blocked inside libgearman after 10 s is left running: then *stuck
 * is set, the pool is not freed, and the caller must not free the ledger
 * either (the process should end instead). */
unsigned long bench_pool_free(struct bench_pool *p, bool *stuck);

/* Submits opts->n_jobs background jobs of function fn from opts->n_threads
 * threads, each keeping opts->pipeline tasks in flight (bench_submit.c).
 * Returns 0 and writes the elapsed seconds, or -1 if any submission failed
 * or the time limit passed. */
int bench_submit_bg(const struct bench_opts *opts, const char *fn,
                    unsigned long n_jobs, double *secs);

/* Raw protocol helpers (bench_raw.c). */

/* Writes or reads exactly len bytes. Returns 0, or -1 (message on
 * stderr) on an error, a timeout or, reading, the end of the stream. */
int bench_raw_write_all(int fd, const void *buf, size_t len);
int bench_raw_read_all(int fd, void *buf, size_t len);

/* Sends one admin line (ending in LF) and reads the reply up to its
 * closing "." line into buf (NUL-terminated). Returns 0, or -1 (message
 * on stderr unless quiet) on I/O failure or a reply too long for buf. */
int bench_admin_query(const char *host, unsigned port, const char *line,
                      char *buf, size_t size, bool quiet);

/* Connects with send and receive timeouts of timeout_s seconds. Returns the
 * socket or -1 (message on stderr unless quiet). */
int bench_raw_connect(const char *host, unsigned port, double timeout_s,
                      bool quiet);

/* Sends an ECHO_REQ and checks the ECHO_RES. Returns true on success. */
bool bench_raw_ping(int fd);

/* Asks the admin protocol for `status` and returns the counts of function
 * fn (all zero if the function is not listed). Returns 0, or -1 on I/O or
 * parse failure. */
int bench_admin_status(const char *host, unsigned port, const char *fn,
                       unsigned long *queued, unsigned long *running,
                       unsigned long *avail);

/* Polls the admin status (every 5 ms) until fn has `avail` workers, or the
 * deadline passes. Returns true if it got there. */
bool bench_admin_wait_workers(const char *host, unsigned port, const char *fn,
                              unsigned long avail, double deadline);

/* The cases. Each returns 0 when the run was measured and verified, and 1
 * otherwise. */
/* Checks that the payload check and the ledger catch corruption, missing
 * and duplicate jobs (bench_util.c); needs no server. */
int bench_case_selftest(void);
int bench_case_ping(const struct bench_opts *opts);
int bench_case_submit(const struct bench_opts *opts);
int bench_case_roundtrip(const struct bench_opts *opts);
int bench_case_deep(const struct bench_opts *opts);
int bench_case_big(const struct bench_opts *opts);
/* A cluster's leader killed again and again (bench_failover.c). */
int bench_case_failover(const struct bench_opts *opts);
/* Waits until every server of a cluster answers and agrees on one leader
 * (bench_failover.c); prints the leader's name on stdout. */
int bench_case_cluster_wait(const struct bench_opts *opts);

/* Waits until every server has the workers of function fn that a pool of
 * n_workers spread round-robin put there (each node counts only its own
 * workers), or the deadline passes. Returns true if they all did. */
bool bench_admin_wait_pool(const struct bench_opts *opts, const char *fn,
                           unsigned n_workers, double deadline);

/* Sorts n doubles in ascending order. */
void bench_sort(double *v, size_t n);

/* Percentile p (0..100) of n sorted values (nearest rank). */
double bench_percentile(const double *sorted, size_t n, double p);

/* A "<field>: <n> kB" line of /proc/<pid>/status (VmRSS, RssAnon,
 * RssFile, VmHWM), in kB, or -1. */
long bench_proc_kb(long pid, const char *field);

/* Apparent and allocated bytes of a file, or of the files in a directory
 * (not recursive). Returns 0 or -1. */
int bench_du(const char *path, unsigned long long *apparent,
             unsigned long long *allocated);

#endif /* GR_BENCH_H */
