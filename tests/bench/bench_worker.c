/* SPDX-License-Identifier: BSD-3-Clause
 * tests/bench/bench_worker.c - a pool of libgearman workers for gr_bench.
 *
 * Each thread owns one gearman_worker_st (libgearman objects are not shared
 * between threads) and one connection. For each job the worker checks the
 * payload and counts it in the ledger; in echo mode it returns the payload
 * as the result. gearman_worker_work() is given a short timeout so that a
 * thread notices the stop flag soon after the last job.
 *
 * Not here: the clients (bench_submit.c, bench_cases.c).
 */
#include <libgearman/gearman.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

/* Milliseconds a worker waits for a job before it checks the stop flag. */
#define POOL_WORK_TIMEOUT_MS 100

/* Seconds bench_pool_free() waits for the threads to notice the flag. */
#define POOL_STOP_GRACE_S 10.0

struct pool_thread {
    struct bench_pool *pool;
    unsigned index; /* worker i uses server i (bench_host) */
    pthread_t tid;
    bool started;
    atomic_bool finished; /* set as the thread's last act */
};

struct bench_pool {
    const struct bench_opts *opts;
    const char *fn;
    struct bench_ledger *ledger;
    bool echo;
    atomic_bool stop;
    atomic_ulong n_errors;
    /* A worker's time from returning one job's result to being handed the
     * next, summed over every worker (microseconds) and counted. */
    atomic_ulong gap_us;
    atomic_ulong n_gaps;
    unsigned n;
    struct pool_thread *threads; /* owned */
};

/* When this worker thread returned its last result (0: none yet). */
static _Thread_local double last_done;

static void *on_job(gearman_job_st *job, void *context, size_t *result_size,
                    gearman_return_t *ret_ptr)
{
    struct bench_pool *p = context;
    double start = bench_now();
    const uint8_t *data = gearman_job_workload(job);
    size_t len = gearman_job_workload_size(job);
    void *result = NULL;

    bench_ledger_record(p->ledger, data, len);
    *result_size = 0;
    if (p->echo && len > 0) {
        /* libgearman frees the result with free() after sending it. */
        result = malloc(len);
        if (result == NULL) {
            *ret_ptr = GEARMAN_WORK_FAIL;
            return NULL;
        }
        memcpy(result, data, len);
        *result_size = len;
    }
    *ret_ptr = GEARMAN_SUCCESS;
    if (last_done > 0.0) {
        atomic_fetch_add(&p->gap_us,
                         (unsigned long)((start - last_done) * 1e6));
        atomic_fetch_add(&p->n_gaps, 1);
    }
    last_done = bench_now();
    return result;
}

static void run_worker(struct bench_pool *p, unsigned index)
{
    gearman_worker_st *w;
    gearman_return_t rc;

    w = gearman_worker_create(NULL);
    if (w == NULL) {
        atomic_fetch_add(&p->n_errors, 1);
        return;
    }
    /* Without TIMEOUT_RETURN, gearman_worker_work() swallows its own
     * timeout and loops (GRAB_JOB, NO_JOB, PRE_SLEEP, wait) until a job
     * comes, so the thread would never see the stop flag. */
    gearman_worker_add_options(w, GEARMAN_WORKER_TIMEOUT_RETURN);
    gearman_worker_set_timeout(w, POOL_WORK_TIMEOUT_MS);
    rc = gearman_worker_add_server(w, bench_host(p->opts, index),
                                   (in_port_t)bench_port(p->opts, index));
    if (rc == GEARMAN_SUCCESS) {
        rc = gearman_worker_add_function(w, p->fn, 0, on_job, p);
    }
    if (rc != GEARMAN_SUCCESS) {
        fprintf(stderr, "worker setup: %s\n", gearman_worker_error(w));
        atomic_fetch_add(&p->n_errors, 1);
        gearman_worker_free(w);
        return;
    }
    while (!atomic_load(&p->stop)) {
        rc = gearman_worker_work(w);
        if (rc == GEARMAN_SUCCESS || rc == GEARMAN_TIMEOUT ||
            rc == GEARMAN_NO_JOBS || rc == GEARMAN_IO_WAIT ||
            rc == GEARMAN_NO_ACTIVE_FDS) {
            continue;
        }
        if (atomic_fetch_add(&p->n_errors, 1) < 5) {
            fprintf(stderr, "worker: %s\n", gearman_worker_error(w));
        }
        if (rc == GEARMAN_COULD_NOT_CONNECT || rc == GEARMAN_LOST_CONNECTION) {
            /* Do not spin on a dead server. */
            const struct timespec pause = {0, 50000000};
            nanosleep(&pause, NULL);
        }
    }
    gearman_worker_free(w);
}

static void *pool_thread_main(void *arg)
{
    struct pool_thread *t = arg;

    last_done = 0.0;
    run_worker(t->pool, t->index);
    atomic_store(&t->finished, true);
    return NULL;
}

struct bench_pool *bench_pool_start(const struct bench_opts *opts,
                                    const char *fn, struct bench_ledger *ledger,
                                    bool echo, unsigned n)
{
    struct bench_pool *p = calloc(1, sizeof(*p));

    if (p == NULL) {
        return NULL;
    }
    p->threads = calloc(n > 0 ? n : 1, sizeof(*p->threads));
    if (p->threads == NULL) {
        free(p);
        return NULL;
    }
    p->opts = opts;
    p->fn = fn;
    p->ledger = ledger;
    p->echo = echo;
    p->n = n;
    atomic_init(&p->stop, false);
    atomic_init(&p->n_errors, 0);
    for (unsigned i = 0; i < n; i++) {
        p->threads[i].pool = p;
        p->threads[i].index = i;
        atomic_init(&p->threads[i].finished, false);
        if (pthread_create(&p->threads[i].tid, NULL, pool_thread_main,
                           &p->threads[i]) != 0) {
            bool stuck;
            fprintf(stderr, "worker pool: pthread_create failed\n");
            bench_pool_free(p, &stuck);
            return NULL;
        }
        p->threads[i].started = true;
    }
    return p;
}

bool bench_pool_wait(struct bench_pool *p, unsigned long target,
                     double deadline)
{
    const struct timespec step = {0, 1000000};

    /* The workers count into the ledger; checking it each millisecond adds
     * at most 1 ms to a drain that takes seconds. */
    while (atomic_load(&p->ledger->n_done) + atomic_load(&p->ledger->n_dup) <
           target) {
        if (bench_now() >= deadline) {
            return false;
        }
        nanosleep(&step, NULL);
    }
    return true;
}

double bench_pool_gap_ms(struct bench_pool *p)
{
    unsigned long n = atomic_load(&p->n_gaps);

    return n > 0 ? (double)atomic_load(&p->gap_us) / 1e3 / (double)n : 0.0;
}

unsigned long bench_pool_free(struct bench_pool *p, bool *stuck)
{
    const struct timespec step = {0, 2000000};
    double deadline = bench_now() + POOL_STOP_GRACE_S;
    unsigned long errors;
    unsigned n_stuck = 0;

    *stuck = false;
    if (p == NULL) {
        return 0;
    }
    atomic_store(&p->stop, true);
    for (unsigned i = 0; i < p->n; i++) {
        if (!p->threads[i].started) {
            continue;
        }
        /* libgearman's sends block without a timeout; a worker whose
         * server stopped reading never returns. Bound the wait. */
        while (!atomic_load(&p->threads[i].finished) &&
               bench_now() < deadline) {
            nanosleep(&step, NULL);
        }
        if (atomic_load(&p->threads[i].finished)) {
            pthread_join(p->threads[i].tid, NULL);
        } else {
            n_stuck++;
        }
    }
    errors = atomic_load(&p->n_errors);
    if (n_stuck > 0) {
        fprintf(stderr,
                "warning: %u worker threads still blocked inside libgearman "
                "%.0f s after stop; leaving them (the process exits soon)\n",
                n_stuck, POOL_STOP_GRACE_S);
        /* The stuck threads still use the pool and its ledger: do not
         * free them. The process ends after the case. */
        *stuck = true;
        return errors;
    }
    free(p->threads);
    free(p);
    return errors;
}
