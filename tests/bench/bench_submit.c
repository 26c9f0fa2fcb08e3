/* SPDX-License-Identifier: BSD-3-Clause
 * tests/bench/bench_submit.c - background submissions from many threads,
 * each keeping a window of tasks in flight, through libgearman.
 *
 * A thread adds `pipeline` background tasks to its client and runs them
 * together: libgearman writes all the SUBMIT_JOB_BG packets, then collects
 * the JOB_CREATED answers. So `threads x pipeline` submissions are in
 * flight at the start of each round. Each job has its own unique key
 * (gearmand's persistent queues key their rows by it, and an empty key
 * would make jobs overwrite each other there) and a payload naming its
 * index, which the drain checks later.
 *
 * Not here: the workers (bench_worker.c).
 */
#include <libgearman/gearman.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

struct submit_shared {
    const struct bench_opts *opts;
    const char *fn;
    unsigned long n_jobs;
    atomic_uint next_thread; /* numbers the threads: thread i, server i */
    atomic_ulong next;       /* next job index to hand out */
    atomic_ulong n_ok;     /* JOB_CREATED received */
    atomic_ulong n_failed; /* submissions that did not succeed */
    double deadline;
};

static void *submit_thread(void *arg)
{
    struct submit_shared *sh = arg;
    const struct bench_opts *opts = sh->opts;
    unsigned pl = opts->pipeline > 0 ? opts->pipeline : 1;
    gearman_client_st *c;
    gearman_task_st **tasks;
    uint8_t *payloads;
    char(*uniqs)[48];
    unsigned me = atomic_fetch_add(&sh->next_thread, 1);

    tasks = calloc(pl, sizeof(*tasks));
    payloads = malloc((size_t)pl * opts->size);
    uniqs = calloc(pl, sizeof(*uniqs));
    c = gearman_client_create(NULL);
    if (tasks == NULL || payloads == NULL || uniqs == NULL || c == NULL ||
        gearman_client_add_server(c, bench_host(opts, me),
                                  (in_port_t)bench_port(opts, me)) !=
            GEARMAN_SUCCESS) {
        fprintf(stderr, "submit: client setup failed\n");
        atomic_fetch_add(&sh->n_failed, 1);
        goto out;
    }
    gearman_client_set_timeout(c, (int)(opts->time_limit * 1000.0));
    for (;;) {
        unsigned n = 0;
        gearman_return_t rc;

        if (bench_now() > sh->deadline) {
            atomic_fetch_add(&sh->n_failed, 1);
            fprintf(stderr, "submit: time limit passed\n");
            break;
        }
        while (n < pl) {
            unsigned long idx = atomic_fetch_add(&sh->next, 1);
            uint8_t *p = payloads + (size_t)n * opts->size;
            if (idx >= sh->n_jobs) {
                break;
            }
            bench_payload_fill(p, opts->size, idx);
            snprintf(uniqs[n], sizeof(uniqs[n]), "%s-%lu", opts->tag, idx);
            tasks[n] = gearman_client_add_task_background(
                c, NULL, NULL, sh->fn, uniqs[n], p, opts->size, &rc);
            if (tasks[n] == NULL || rc != GEARMAN_SUCCESS) {
                fprintf(stderr, "submit: add task: %s\n",
                        gearman_client_error(c));
                atomic_fetch_add(&sh->n_failed, 1);
                if (tasks[n] != NULL) {
                    gearman_task_free(tasks[n]);
                }
                continue;
            }
            n++;
        }
        if (n == 0) {
            break;
        }
        rc = gearman_client_run_tasks(c);
        if (rc != GEARMAN_SUCCESS && atomic_load(&sh->n_failed) < 5) {
            fprintf(stderr, "submit: run tasks: %s\n", gearman_client_error(c));
        }
        for (unsigned i = 0; i < n; i++) {
            const char *h = gearman_task_job_handle(tasks[i]);
            if (gearman_task_return(tasks[i]) == GEARMAN_SUCCESS && h != NULL &&
                h[0] != 0) {
                atomic_fetch_add(&sh->n_ok, 1);
            } else {
                atomic_fetch_add(&sh->n_failed, 1);
            }
            gearman_task_free(tasks[i]);
        }
        if (rc != GEARMAN_SUCCESS) {
            break;
        }
    }
out:
    if (c != NULL) {
        gearman_client_free(c);
    }
    free(uniqs);
    free(payloads);
    free(tasks);
    return NULL;
}

int bench_submit_bg(const struct bench_opts *opts, const char *fn,
                    unsigned long n_jobs, double *secs)
{
    struct submit_shared sh;
    pthread_t *tids;
    unsigned nt = opts->n_threads > 0 ? opts->n_threads : 1;
    unsigned started = 0;
    double t0;
    double t1;

    if (opts->size < BENCH_HDR) {
        fprintf(stderr, "submit: --size must be at least %d\n", BENCH_HDR);
        return -1;
    }
    tids = calloc(nt, sizeof(*tids));
    if (tids == NULL) {
        return -1;
    }
    memset(&sh, 0, sizeof(sh));
    sh.opts = opts;
    sh.fn = fn;
    sh.n_jobs = n_jobs;
    atomic_init(&sh.next_thread, 0);
    atomic_init(&sh.next, 0);
    atomic_init(&sh.n_ok, 0);
    atomic_init(&sh.n_failed, 0);
    t0 = bench_now();
    sh.deadline = t0 + opts->time_limit;
    for (unsigned i = 0; i < nt; i++) {
        if (pthread_create(&tids[i], NULL, submit_thread, &sh) != 0) {
            fprintf(stderr, "submit: pthread_create failed\n");
            atomic_fetch_add(&sh.n_failed, 1);
            atomic_store(&sh.next, n_jobs); /* stop the others */
            break;
        }
        started++;
    }
    for (unsigned i = 0; i < started; i++) {
        pthread_join(tids[i], NULL);
    }
    t1 = bench_now();
    free(tids);
    if (atomic_load(&sh.n_failed) != 0 || atomic_load(&sh.n_ok) != n_jobs) {
        fprintf(stderr, "submit: %lu of %lu acknowledged, %lu failed\n",
                atomic_load(&sh.n_ok), n_jobs, atomic_load(&sh.n_failed));
        return -1;
    }
    *secs = t1 - t0;
    return 0;
}
