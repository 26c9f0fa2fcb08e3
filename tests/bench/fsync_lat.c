/* SPDX-License-Identifier: BSD-3-Clause
 * tests/bench/fsync_lat.c - gr_fsync_lat: how long one write + fdatasync
 * takes on a directory's disk.
 *
 * A durable server cannot acknowledge a batch before its data is on disk,
 * so the latency of one synchronous write bounds its commit rate: with one
 * commit in flight, commits per second are at most 1 / latency, whatever
 * the batch size. An LMDB commit syncs twice (data pages, then the meta
 * page), so both patterns below matter: rewriting a block in place, and
 * appending a block (which also changes the file size, so the filesystem
 * journals metadata too).
 *
 *   gr_fsync_lat [DIR] [COUNT] [BYTES]     defaults: /tmp 1000 4096
 *   gr_fsync_lat --pages N [DIR] [COUNT]   defaults: /tmp 200
 *
 * The second form measures what one LMDB commit costs by the number of
 * pages it dirtied: N pages of 4 KiB written in place in a 64 MiB file,
 * then one fdatasync - once at N scattered offsets (what a B-tree commit
 * whose keys land all over the tree writes) and once as N contiguous
 * pages.
 *
 * Prints one RESULT line per pattern. Not a test: it measures.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

static int measure(int fd, const char *pattern, const uint8_t *buf, size_t len,
                   unsigned long count, double *lat)
{
    for (unsigned long i = 0; i < count; i++) {
        off_t off = strcmp(pattern, "append") == 0 ? (off_t)(i * len) : 0;
        double t0 = bench_now();
        ssize_t n = pwrite(fd, buf, len, off);
        if (n == -1 || (size_t)n != len) {
            fprintf(stderr, "pwrite: %s\n",
                    n == -1 ? strerror(errno) : "short write");
            return -1;
        }
        if (fdatasync(fd) == -1) {
            fprintf(stderr, "fdatasync: %s\n", strerror(errno));
            return -1;
        }
        lat[i] = bench_now() - t0;
    }
    return 0;
}

#define PAGE       4096u
#define FILE_PAGES 16384u /* 64 MiB */

static void report(const char *pattern, unsigned long pages,
                   unsigned long count, double *lat)
{
    double sum = 0;

    for (unsigned long i = 0; i < count; i++) {
        sum += lat[i];
    }
    bench_sort(lat, count);
    printf("RESULT case=fsync pattern=%s pages=%lu count=%lu mean_ms=%.3f "
           "p50_ms=%.3f p99_ms=%.3f ops_per_s=%.0f\n",
           pattern, pages, count, 1e3 * sum / (double)count,
           1e3 * bench_percentile(lat, count, 50),
           1e3 * bench_percentile(lat, count, 99), (double)count / sum);
}

/* N pages written in place, scattered or contiguous, then one sync. */
static int pages_case(const char *dir, unsigned long pages, unsigned long count)
{
    static uint8_t page[PAGE];
    char path[4096];
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    double *lat = calloc(count, sizeof(*lat));
    int rc = 1;
    int fd;

    if (lat == NULL) {
        return 1;
    }
    memset(page, 'g', sizeof(page));
    snprintf(path, sizeof(path), "%s/gr_fsync_lat.XXXXXX", dir);
    fd = mkstemp(path);
    if (fd == -1) {
        fprintf(stderr, "mkstemp in %s: %s\n", dir, strerror(errno));
        free(lat);
        return 1;
    }
    unlink(path);
    for (unsigned long pg = 0; pg < FILE_PAGES; pg++) {
        if (pwrite(fd, page, PAGE, (off_t)(pg * PAGE)) != (ssize_t)PAGE) {
            goto out;
        }
    }
    if (fsync(fd) == -1) {
        goto out;
    }
    for (int contiguous = 0; contiguous < 2; contiguous++) {
        for (unsigned long i = 0; i < count; i++) {
            unsigned long first;
            double t0 = bench_now();

            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            first = (unsigned long)(seed >> 33) % (FILE_PAGES - pages);
            for (unsigned long k = 0; k < pages; k++) {
                unsigned long pg = first + k;

                if (!contiguous) {
                    seed =
                        seed * 6364136223846793005ull + 1442695040888963407ull;
                    pg = (unsigned long)(seed >> 33) % FILE_PAGES;
                }
                if (pwrite(fd, page, PAGE, (off_t)(pg * PAGE)) !=
                    (ssize_t)PAGE) {
                    fprintf(stderr, "pwrite: %s\n", strerror(errno));
                    goto out;
                }
            }
            if (fdatasync(fd) == -1) {
                fprintf(stderr, "fdatasync: %s\n", strerror(errno));
                goto out;
            }
            lat[i] = bench_now() - t0;
        }
        report(contiguous ? "contiguous" : "scattered", pages, count, lat);
    }
    rc = 0;
out:
    close(fd);
    free(lat);
    return rc;
}

int main(int argc, char **argv)
{
    static const char *patterns[] = {"overwrite", "append"};
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    unsigned long count = 1000;
    unsigned long len = 4096;
    char path[4096];
    uint8_t *buf;
    double *lat;
    int rc = 1;

    if (argc > 2 && strcmp(argv[1], "--pages") == 0) {
        unsigned long pages = strtoul(argv[2], NULL, 10);

        count = argc > 4 ? strtoul(argv[4], NULL, 10) : 200;
        if (pages == 0 || pages > 1024 || count == 0 || count > 100000) {
            fprintf(stderr, "usage: gr_fsync_lat --pages N [DIR] [COUNT]\n");
            return 2;
        }
        return pages_case(argc > 3 ? argv[3] : "/tmp", pages, count);
    }
    if (argc > 2) {
        count = strtoul(argv[2], NULL, 10);
    }
    if (argc > 3) {
        len = strtoul(argv[3], NULL, 10);
    }
    if (count == 0 || count > 10000000ul || len == 0 || len > (1ul << 26)) {
        fprintf(stderr, "usage: gr_fsync_lat [DIR] [COUNT] [BYTES]\n");
        return 2;
    }
    buf = malloc(len);
    lat = calloc(count, sizeof(*lat));
    if (buf == NULL || lat == NULL) {
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    memset(buf, 'g', len);
    for (size_t p = 0; p < sizeof(patterns) / sizeof(patterns[0]); p++) {
        double sum = 0;
        int fd;

        snprintf(path, sizeof(path), "%s/gr_fsync_lat.XXXXXX", dir);
        fd = mkstemp(path);
        if (fd == -1) {
            fprintf(stderr, "mkstemp in %s: %s\n", dir, strerror(errno));
            goto out;
        }
        unlink(path);
        /* The overwrite pattern starts from an allocated, synced block. */
        if (pwrite(fd, buf, len, 0) != (ssize_t)len || fsync(fd) == -1) {
            fprintf(stderr, "prepare: %s\n", strerror(errno));
            close(fd);
            goto out;
        }
        if (strcmp(patterns[p], "append") == 0 && ftruncate(fd, 0) == -1) {
            close(fd);
            goto out;
        }
        if (measure(fd, patterns[p], buf, len, count, lat) != 0) {
            close(fd);
            goto out;
        }
        close(fd);
        for (unsigned long i = 0; i < count; i++) {
            sum += lat[i];
        }
        bench_sort(lat, count);
        printf("RESULT case=fsync pattern=%s bytes=%lu count=%lu "
               "mean_ms=%.3f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f "
               "ops_per_s=%.0f\n",
               patterns[p], len, count, 1e3 * sum / (double)count,
               1e3 * bench_percentile(lat, count, 50),
               1e3 * bench_percentile(lat, count, 99), 1e3 * lat[count - 1],
               (double)count / sum);
    }
    rc = 0;
out:
    free(buf);
    free(lat);
    return rc;
}
