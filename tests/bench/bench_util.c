/* SPDX-License-Identifier: BSD-3-Clause
 * tests/bench/bench_util.c - payloads, the exactly-once ledger, clocks,
 * percentiles and the /proc and stat readings of gr_bench.
 *
 * A payload describes itself (its index and a filler derived from it), so a
 * worker can check the bytes of any job without a shared table, and the
 * ledger only has to count one byte per job: a million jobs cost 1 MB.
 *
 * Not here: anything that talks to a server.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bench.h"

double bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *bench_host(const struct bench_opts *opts, unsigned i)
{
    return opts->n_servers > 0 ? opts->hosts[i % opts->n_servers] : opts->host;
}

unsigned bench_port(const struct bench_opts *opts, unsigned i)
{
    return opts->n_servers > 0 ? opts->ports[i % opts->n_servers] : opts->port;
}

static uint8_t filler(unsigned long index, size_t k)
{
    /* Printable, and different for neighbouring indexes and offsets, so a
     * payload shifted or swapped with another job's fails the check. */
    return (uint8_t)('a' + (index * 7u + k * 13u + (k >> 8)) % 26u);
}

void bench_payload_fill(uint8_t *buf, size_t size, unsigned long index)
{
    char hdr[BENCH_HDR + 1];

    snprintf(hdr, sizeof(hdr), "%012lu|", index % 1000000000000ul);
    memcpy(buf, hdr, BENCH_HDR);
    for (size_t k = BENCH_HDR; k < size; k++) {
        buf[k] = filler(index, k);
    }
}

bool bench_payload_check(const uint8_t *buf, size_t size, unsigned long *index)
{
    unsigned long v = 0;

    if (size < BENCH_HDR || buf[BENCH_HDR - 1] != '|') {
        return false;
    }
    for (size_t k = 0; k < BENCH_HDR - 1; k++) {
        if (buf[k] < '0' || buf[k] > '9') {
            return false;
        }
        v = v * 10u + (unsigned long)(buf[k] - '0');
    }
    for (size_t k = BENCH_HDR; k < size; k++) {
        if (buf[k] != filler(v, k)) {
            return false;
        }
    }
    *index = v;
    return true;
}

int bench_ledger_init(struct bench_ledger *l, unsigned long n, size_t size)
{
    l->n = n;
    l->size = size;
    l->seen = calloc(n > 0 ? n : 1, sizeof(*l->seen));
    if (l->seen == NULL) {
        return -1;
    }
    atomic_init(&l->n_done, 0);
    atomic_init(&l->n_dup, 0);
    atomic_init(&l->n_bad, 0);
    return 0;
}

void bench_ledger_close(struct bench_ledger *l)
{
    free((void *)l->seen);
    l->seen = NULL;
}

bool bench_ledger_record(struct bench_ledger *l, const uint8_t *data,
                         size_t len)
{
    unsigned long index;
    uint8_t before;

    if (len != l->size || !bench_payload_check(data, len, &index) ||
        index >= l->n) {
        atomic_fetch_add(&l->n_bad, 1);
        return false;
    }
    before = atomic_fetch_add(&l->seen[index], 1);
    if (before == 255) {
        atomic_store(&l->seen[index], 255); /* saturate */
    }
    if (before != 0) {
        atomic_fetch_add(&l->n_dup, 1);
        return false;
    }
    atomic_fetch_add(&l->n_done, 1);
    return true;
}

bool bench_ledger_verify(struct bench_ledger *l, const char *what)
{
    unsigned long missing = 0;
    unsigned long first_missing = 0;
    unsigned long dup = atomic_load(&l->n_dup);
    unsigned long bad = atomic_load(&l->n_bad);

    for (unsigned long i = 0; i < l->n; i++) {
        if (atomic_load(&l->seen[i]) == 0) {
            if (missing == 0) {
                first_missing = i;
            }
            missing++;
        }
    }
    if (missing == 0 && dup == 0 && bad == 0) {
        fprintf(stderr,
                "verify %s: all %lu jobs ran exactly once with the "
                "right bytes\n",
                what, l->n);
        return true;
    }
    fprintf(stderr,
            "verify %s: FAILED: %lu of %lu never ran (first index %lu), "
            "%lu duplicate executions, %lu bad payloads\n",
            what, missing, l->n, first_missing, dup, bad);
    return false;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return (x > y) - (x < y);
}

double bench_percentile(const double *sorted, size_t n, double p)
{
    size_t rank;

    if (n == 0) {
        return 0.0;
    }
    /* Nearest rank: the smallest value with at least p% at or below it. */
    rank = (size_t)((p / 100.0) * (double)n + 0.999999);
    if (rank == 0) {
        rank = 1;
    }
    if (rank > n) {
        rank = n;
    }
    return sorted[rank - 1];
}

void bench_sort(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
}

long bench_proc_kb(long pid, const char *field)
{
    size_t fl = strlen(field);
    char path[64];
    char line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            char *end;
            kb = strtol(line + fl + 1, &end, 10);
            if (end == line + fl + 1) {
                kb = -1;
            }
            break;
        }
    }
    fclose(f);
    return kb;
}

static void add_stat(const struct stat *st, unsigned long long *apparent,
                     unsigned long long *allocated)
{
    *apparent += (unsigned long long)st->st_size;
    *allocated += (unsigned long long)st->st_blocks * 512ull;
}

int bench_du(const char *path, unsigned long long *apparent,
             unsigned long long *allocated)
{
    struct stat st;
    struct dirent *de;
    DIR *d;

    *apparent = 0;
    *allocated = 0;
    if (stat(path, &st) == -1) {
        fprintf(stderr, "stat %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        add_stat(&st, apparent, allocated);
        return 0;
    }
    d = opendir(path);
    if (d == NULL) {
        fprintf(stderr, "opendir %s: %s\n", path, strerror(errno));
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        char full[4096];
        int n = snprintf(full, sizeof(full), "%s/%s", path, de->d_name);
        if (n < 0 || (size_t)n >= sizeof(full)) {
            continue;
        }
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
            add_stat(&st, apparent, allocated);
        }
    }
    closedir(d);
    return 0;
}

int bench_case_selftest(void)
{
    uint8_t a[100];
    uint8_t b[100];
    unsigned long index = 0;
    struct bench_ledger l;
    int failures = 0;

    /* The checks the cases rely on must be able to fail. */
    bench_payload_fill(a, sizeof(a), 42);
    bench_payload_fill(b, sizeof(b), 43);
    failures += !(bench_payload_check(a, sizeof(a), &index) && index == 42);
    a[70] ^= 1;
    failures += bench_payload_check(a, sizeof(a), &index);
    a[70] ^= 1;
    memcpy(b, a, BENCH_HDR); /* index 42's header on 43's filler */
    failures += bench_payload_check(b, sizeof(b), &index);

    if (bench_ledger_init(&l, 3, sizeof(a)) != 0) {
        return 1;
    }
    for (unsigned long i = 0; i < 2; i++) {
        bench_payload_fill(a, sizeof(a), i);
        failures += !bench_ledger_record(&l, a, sizeof(a));
    }
    failures += bench_ledger_verify(&l, "selftest (one job missing)");
    bench_payload_fill(a, sizeof(a), 2);
    failures += !bench_ledger_record(&l, a, sizeof(a));
    failures += !bench_ledger_verify(&l, "selftest (complete)");
    failures += bench_ledger_record(&l, a, sizeof(a));
    failures += bench_ledger_verify(&l, "selftest (one duplicate)");
    bench_ledger_close(&l);

    if (bench_ledger_init(&l, 3, sizeof(a)) != 0) {
        return 1;
    }
    bench_payload_fill(a, sizeof(a), 3); /* outside 0 .. n-1 */
    failures += bench_ledger_record(&l, a, sizeof(a));
    failures += bench_ledger_record(&l, a, sizeof(a) - 1);
    failures += atomic_load(&l.n_bad) != 2;
    bench_ledger_close(&l);

    fprintf(stderr, "selftest: %s\n", failures == 0 ? "ok" : "FAILED");
    return failures == 0 ? 0 : 1;
}
