/* SPDX-License-Identifier: BSD-3-Clause
 * tests/bench/bench_cases.c - the libgearman cases of gr_bench: background
 * submit rate, foreground round trips, and the deep queue (memory and
 * drain).
 *
 * Each case names its function after the run's tag, so leftovers of an
 * earlier run on a durable server can never be counted, and checks both
 * its own ledger (every job ran exactly once with the right bytes) and the
 * server's admin `status` counts (queued after the fill, nothing left after
 * the drain).
 *
 * Not here: the raw-protocol cases (bench_raw.c).
 */
#include <libgearman/gearman.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

/* Waits until the server reports function fn with `queued` jobs queued
 * and none running. Returns true if it did before the deadline. */
static bool wait_counts(const struct bench_opts *opts, const char *fn,
                        unsigned long queued, double deadline)
{
    const struct timespec step = {0, 5000000};
    unsigned long q = 0;
    unsigned long r = 0;
    unsigned long a = 0;

    for (;;) {
        if (bench_admin_status(opts->host, opts->port, fn, &q, &r, &a) != 0) {
            fprintf(stderr, "admin status failed\n");
            return false;
        }
        if (q == queued && r == 0) {
            return true;
        }
        if (bench_now() >= deadline) {
            fprintf(stderr,
                    "status of %s: %lu queued, %lu running; "
                    "expected %lu queued, 0 running\n",
                    fn, q, r, queued);
            return false;
        }
        /* The last WORK_COMPLETE may still be on its way to the server. */
        nanosleep(&step, NULL);
    }
}

static void print_memory(const struct bench_opts *opts, const char *when)
{
    unsigned long long app = 0;
    unsigned long long alloc = 0;

    if (opts->server_pid > 0) {
        printf("RESULT case=deep_mem when=%s rss_kb=%ld anon_kb=%ld "
               "file_kb=%ld hwm_kb=%ld\n",
               when, bench_proc_kb(opts->server_pid, "VmRSS"),
               bench_proc_kb(opts->server_pid, "RssAnon"),
               bench_proc_kb(opts->server_pid, "RssFile"),
               bench_proc_kb(opts->server_pid, "VmHWM"));
    }
    if (opts->du_path != NULL && bench_du(opts->du_path, &app, &alloc) == 0) {
        printf("RESULT case=deep_disk when=%s apparent_b=%llu "
               "allocated_b=%llu\n",
               when, app, alloc);
    }
    fflush(stdout);
}

/* Queues n background jobs, then drains them with the worker pool. `name`
 * is the case name in the RESULT lines; memory is read around the fill
 * when `mem` is set. */
static int fill_and_drain(const struct bench_opts *opts, const char *name,
                          bool mem)
{
    struct bench_ledger ledger;
    struct bench_pool *pool;
    char fn[128];
    double fill_s;
    double t0;
    double drain_s;
    unsigned long errors;
    bool stuck;
    bool ok;

    snprintf(fn, sizeof(fn), "bench_%s_%s", name, opts->tag);
    if (bench_ledger_init(&ledger, opts->n_jobs, opts->size) != 0) {
        fprintf(stderr, "%s: out of memory\n", name);
        return 1;
    }
    if (mem) {
        print_memory(opts, "empty");
    }
    if (bench_submit_bg(opts, fn, opts->n_jobs, &fill_s) != 0) {
        goto fail;
    }
    fprintf(stderr, "%s: %lu background jobs acknowledged in %.3f s\n", name,
            opts->n_jobs, fill_s);
    if (!wait_counts(opts, fn, opts->n_jobs, bench_now() + opts->time_limit)) {
        goto fail;
    }
    printf("RESULT case=%s jobs=%lu size=%zu threads=%u pipeline=%u "
           "secs=%.3f rate=%.1f\n",
           name, opts->n_jobs, opts->size, opts->n_threads, opts->pipeline,
           fill_s, (double)opts->n_jobs / fill_s);
    fflush(stdout);
    if (mem) {
        print_memory(opts, "full");
    }

    t0 = bench_now();
    pool = bench_pool_start(opts, fn, &ledger, false, opts->n_workers);
    if (pool == NULL) {
        goto fail;
    }
    ok = bench_pool_wait(pool, opts->n_jobs, t0 + opts->time_limit);
    drain_s = bench_now() - t0;
    if (!ok) {
        fprintf(stderr, "%s: drain did not finish within %.0f s\n", name,
                opts->time_limit);
    }
    ok = wait_counts(opts, fn, 0, bench_now() + 30.0) && ok;
    /* Every job is counted now; check before stopping the workers, whose
     * stop can take a while. */
    ok = bench_ledger_verify(&ledger, name) && ok;
    if (ok) {
        printf("RESULT case=%s_drain jobs=%lu workers=%u secs=%.3f "
               "rate=%.1f\n",
               name, opts->n_jobs, opts->n_workers, drain_s,
               (double)opts->n_jobs / drain_s);
        if (mem) {
            print_memory(opts, "drained");
        }
    }
    errors = bench_pool_free(pool, &stuck);
    if (errors != 0) {
        fprintf(stderr, "%s: workers saw %lu errors\n", name, errors);
        ok = false;
    }
    if (stuck) {
        return ok ? 0 : 1; /* the stuck threads still use the ledger */
    }
    bench_ledger_close(&ledger);
    return ok ? 0 : 1;

fail:
    bench_ledger_close(&ledger);
    return 1;
}

int bench_case_submit(const struct bench_opts *opts)
{
    return fill_and_drain(opts, "submit", false);
}

int bench_case_deep(const struct bench_opts *opts)
{
    return fill_and_drain(opts, "deep", true);
}

/* Foreground round trips: n_clients threads, one connection and one job in
 * flight each, against n_workers echo workers. */

struct rt_shared {
    const struct bench_opts *opts;
    const char *fn;
    pthread_barrier_t start;
    atomic_uint next_client; /* numbers the clients: client i, server i */
    atomic_ulong next;
    atomic_ulong n_ok;
    atomic_ulong n_bad;
    double *lat; /* seconds per job index; owned by the case */
    double deadline;
};

/* Says what came back instead of job idx's payload: nothing, another job's
 * payload (cross-talk), or damaged bytes. */
static void describe_mismatch(unsigned long idx, gearman_return_t rc,
                              const void *result, size_t rsize, size_t size)
{
    const uint8_t *r = result;
    unsigned long other;

    if (rc != GEARMAN_SUCCESS || result == NULL) {
        fprintf(stderr, "roundtrip: job %lu: %s, no result\n", idx,
                gearman_strerror(rc));
    } else if (rsize == size && bench_payload_check(r, rsize, &other)) {
        fprintf(stderr, "roundtrip: job %lu: got job %lu's payload\n", idx,
                other);
    } else {
        size_t k = 0;
        uint8_t *expect = malloc(size);
        if (expect != NULL) {
            bench_payload_fill(expect, size, idx);
            while (k < size && k < rsize && r[k] == expect[k]) {
                k++;
            }
            free(expect);
        }
        fprintf(stderr,
                "roundtrip: job %lu: %zu bytes back, first %zu "
                "right; starts \"%.*s\"\n",
                idx, rsize, k, (int)(rsize < 40 ? rsize : 40), (const char *)r);
    }
}

static void *rt_client(void *arg)
{
    struct rt_shared *sh = arg;
    const struct bench_opts *opts = sh->opts;
    gearman_client_st *c = gearman_client_create(NULL);
    uint8_t *payload = malloc(opts->size);
    char uniq[32];
    unsigned me = atomic_fetch_add(&sh->next_client, 1);
    bool ready = false;

    if (c != NULL && payload != NULL &&
        gearman_client_add_server(c, bench_host(opts, me),
                                  (in_port_t)bench_port(opts, me)) ==
            GEARMAN_SUCCESS) {
        gearman_client_set_timeout(c, (int)(opts->time_limit * 1000.0));
        /* Connect before the clock starts. */
        ready = gearman_client_echo(c, "x", 1) == GEARMAN_SUCCESS;
    }
    if (!ready) {
        fprintf(stderr, "roundtrip: client setup failed\n");
        atomic_fetch_add(&sh->n_bad, 1);
    }
    pthread_barrier_wait(&sh->start);
    while (ready) {
        unsigned long idx = atomic_fetch_add(&sh->next, 1);
        gearman_return_t rc;
        size_t rsize = 0;
        void *result;
        double t0;

        if (idx >= opts->n_jobs) {
            break;
        }
        if (bench_now() > sh->deadline) {
            fprintf(stderr, "roundtrip: time limit passed\n");
            atomic_fetch_add(&sh->n_bad, 1);
            break;
        }
        bench_payload_fill(payload, opts->size, idx);
        /* Our own unique key: libgearman's generated one is a time-based
         * UUID, and without uuidd or libuuid's clock file each thread has
         * its own random clock sequence, so two of 64 threads share one
         * about once in eight runs and then repeat each other's UUIDs now
         * and then. Both servers coalesce foreground jobs of equal unique
         * keys (as they must), and the run saw another job's result. */
        snprintf(uniq, sizeof(uniq), "rt-%lu", idx); /* per function */
        t0 = bench_now();
        result = gearman_client_do(c, sh->fn, uniq, payload, opts->size, &rsize,
                                   &rc);
        sh->lat[idx] = bench_now() - t0;
        if (rc == GEARMAN_SUCCESS && result != NULL && rsize == opts->size &&
            memcmp(result, payload, rsize) == 0) {
            atomic_fetch_add(&sh->n_ok, 1);
        } else {
            if (atomic_fetch_add(&sh->n_bad, 1) < 5) {
                describe_mismatch(idx, rc, result, rsize, opts->size);
            }
        }
        free(result);
    }
    if (c != NULL) {
        gearman_client_free(c);
    }
    free(payload);
    return NULL;
}

int bench_case_roundtrip(const struct bench_opts *opts)
{
    struct bench_ledger ledger;
    struct bench_pool *pool = NULL;
    struct rt_shared sh;
    pthread_t *tids = NULL;
    unsigned nc = opts->n_clients > 0 ? opts->n_clients : 1;
    unsigned started = 0;
    char fn[128];
    double t0;
    double secs;
    double gap_ms;
    unsigned long errors;
    bool stuck = false;
    bool leak_ledger = false;
    bool ok;
    int rc = 1;

    if (opts->size < BENCH_HDR) {
        fprintf(stderr, "roundtrip: --size must be at least %d\n", BENCH_HDR);
        return 1;
    }
    snprintf(fn, sizeof(fn), "bench_fg_%s", opts->tag);
    if (bench_ledger_init(&ledger, opts->n_jobs, opts->size) != 0) {
        return 1;
    }
    memset(&sh, 0, sizeof(sh));
    sh.opts = opts;
    sh.fn = fn;
    atomic_init(&sh.next_client, 0);
    atomic_init(&sh.next, 0);
    atomic_init(&sh.n_ok, 0);
    atomic_init(&sh.n_bad, 0);
    sh.lat = calloc(opts->n_jobs > 0 ? opts->n_jobs : 1, sizeof(*sh.lat));
    tids = calloc(nc, sizeof(*tids));
    if (sh.lat == NULL || tids == NULL) {
        fprintf(stderr, "roundtrip: out of memory\n");
        goto out;
    }
    pool = bench_pool_start(opts, fn, &ledger, true, opts->n_workers);
    if (pool == NULL ||
        !bench_admin_wait_pool(opts, fn, opts->n_workers, bench_now() + 30.0)) {
        goto out;
    }
    /* One party per client plus this thread, which starts the clock. */
    if (pthread_barrier_init(&sh.start, NULL, nc + 1) != 0) {
        goto out;
    }
    sh.deadline = bench_now() + opts->time_limit;
    for (unsigned i = 0; i < nc; i++) {
        if (pthread_create(&tids[i], NULL, rt_client, &sh) != 0) {
            /* The barrier cannot be released without every party. */
            fprintf(stderr, "roundtrip: pthread_create failed\n");
            abort();
        }
        started++;
    }
    pthread_barrier_wait(&sh.start);
    t0 = bench_now();
    for (unsigned i = 0; i < started; i++) {
        pthread_join(tids[i], NULL);
    }
    secs = bench_now() - t0;
    pthread_barrier_destroy(&sh.start);
    ok = atomic_load(&sh.n_bad) == 0 && atomic_load(&sh.n_ok) == opts->n_jobs;
    if (!ok) {
        fprintf(stderr,
                "verify roundtrip: FAILED: %lu of %lu results came "
                "back right, %lu failures\n",
                atomic_load(&sh.n_ok), opts->n_jobs, atomic_load(&sh.n_bad));
    }
    /* Go on checking after a failure: the worker's ledger and the server's
     * counts tell where a wrong result came from. */
    ok = wait_counts(opts, fn, 0, bench_now() + 30.0) && ok;
    gap_ms = bench_pool_gap_ms(pool);
    errors = bench_pool_free(pool, &stuck);
    pool = NULL;
    if (stuck) {
        leak_ledger = true; /* the stuck threads still use it */
    }
    if (errors != 0) {
        fprintf(stderr, "roundtrip: workers saw %lu errors\n", errors);
        ok = false;
    }
    ok = bench_ledger_verify(&ledger, "roundtrip") && ok;
    if (ok) {
        fprintf(stderr,
                "verify roundtrip: all %lu results equal their "
                "payloads\n",
                opts->n_jobs);
    }
    /* The measurement is printed either way, marked when unverified. */
    bench_sort(sh.lat, opts->n_jobs);
    printf("RESULT case=roundtrip jobs=%lu size=%zu clients=%u workers=%u "
           "secs=%.3f rate=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f "
           "worker_gap_ms=%.3f verified=%d wrong=%lu\n",
           opts->n_jobs, opts->size, nc, opts->n_workers, secs,
           (double)opts->n_jobs / secs,
           1e3 * bench_percentile(sh.lat, opts->n_jobs, 50),
           1e3 * bench_percentile(sh.lat, opts->n_jobs, 99),
           1e3 * sh.lat[opts->n_jobs - 1], gap_ms, ok ? 1 : 0,
           atomic_load(&sh.n_bad));
    if (!ok) {
        goto out;
    }
    rc = 0;

out:
    bench_pool_free(pool, &stuck);
    free(tids);
    free(sh.lat);
    if (!stuck && !leak_ledger) {
        bench_ledger_close(&ledger);
    }
    return rc;
}
