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

static int measure(int fd, const char *pattern, const uint8_t *buf,
                   size_t len, unsigned long count, double *lat)
{
    for (unsigned long i = 0; i < count; i++) {
        off_t off = strcmp(pattern, "append") == 0
                        ? (off_t)(i * len)
                        : 0;
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
               1e3 * bench_percentile(lat, count, 99),
               1e3 * lat[count - 1], (double)count / sum);
    }
    rc = 0;
out:
    free(buf);
    free(lat);
    return rc;
}
