/* SPDX-License-Identifier: BSD-3-Clause
 * tests/bench/bench_raw.c - raw Gearman protocol for gr_bench: the
 * readiness ping, the admin `status` reader, and the 64 MiB round trip.
 *
 * libgearman copies and re-scans a large payload many times (a few MiB take
 * seconds), which would measure the client rather than the server, so the
 * large-payload case speaks the binary protocol directly: one write of the
 * packet, one read into a buffer of the announced size. The same client and
 * worker run against every server.
 *
 * Every socket has send and receive timeouts, so no case can hang.
 *
 * Not here: the libgearman cases (bench_submit.c, bench_worker.c,
 * bench_cases.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "bench.h"

/* Packet types used here (docs/protocol.md, "Packets"). */
enum raw_type {
    RAW_CAN_DO = 1,
    RAW_PRE_SLEEP = 4,
    RAW_NOOP = 6,
    RAW_SUBMIT_JOB = 7,
    RAW_JOB_CREATED = 8,
    RAW_GRAB_JOB = 9,
    RAW_NO_JOB = 10,
    RAW_JOB_ASSIGN = 11,
    RAW_WORK_COMPLETE = 13,
    RAW_WORK_FAIL = 14,
    RAW_ECHO_REQ = 16,
    RAW_ECHO_RES = 17,
    RAW_ERROR = 19,
    RAW_WORK_EXCEPTION = 25,
};

#define RAW_MAX_PACKET (1024ul * 1024ul * 1024ul)

int bench_raw_connect(const char *host, unsigned port, double timeout_s,
                      bool quiet)
{
    struct sockaddr_in sa;
    struct timeval tv;
    int one = 1;
    int fd;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "bad IPv4 address %s\n", host);
        return -1;
    }
    /* Close-on-exec: a node the failover case starts must not hold our
     * connections open. */
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        fprintf(stderr, "socket: %s\n", strerror(errno));
        return -1;
    }
    tv.tv_sec = (time_t)timeout_s;
    tv.tv_usec = (suseconds_t)((timeout_s - (double)tv.tv_sec) * 1e6);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1) {
        fprintf(stderr, "setsockopt: %s\n", strerror(errno));
        close(fd);
        return -1;
    }
    while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
        if (errno == EINTR) {
            continue;
        }
        if (!quiet) {
            fprintf(stderr, "connect %s:%u: %s\n", host, port, strerror(errno));
        }
        close(fd);
        return -1;
    }
    return fd;
}

int bench_raw_write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            fprintf(stderr, "write: %s\n",
                    errno == EAGAIN ? "timed out" : strerror(errno));
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int bench_raw_read_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            fprintf(stderr, "read: %s\n",
                    errno == EAGAIN ? "timed out" : strerror(errno));
            return -1;
        }
        if (n == 0) {
            fprintf(stderr, "read: server closed the connection\n");
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

/* Sends one request: n_args NUL-terminated arguments, then data. */
static int raw_send(int fd, uint32_t type, const char *const *args,
                    size_t n_args, const uint8_t *data, size_t data_len)
{
    uint8_t head[12 + 1024];
    size_t off = 12;
    size_t total;

    for (size_t i = 0; i < n_args; i++) {
        size_t l = strlen(args[i]) + 1;
        if (off + l > sizeof(head)) {
            fprintf(stderr, "raw_send: arguments too long\n");
            return -1;
        }
        memcpy(head + off, args[i], l);
        off += l;
    }
    total = off - 12 + data_len;
    if (total > UINT32_MAX) {
        fprintf(stderr, "raw_send: packet over 4 GiB\n");
        return -1;
    }
    memcpy(head, "\0REQ", 4);
    put_u32(head + 4, type);
    put_u32(head + 8, (uint32_t)total);
    if (bench_raw_write_all(fd, head, off) != 0) {
        return -1;
    }
    if (data_len > 0 && bench_raw_write_all(fd, data, data_len) != 0) {
        return -1;
    }
    return 0;
}

/* Receives one response. *data (caller frees with free()) holds len bytes
 * plus a NUL so the arguments can be read as strings. */
static int raw_recv(int fd, uint32_t *type, uint8_t **data, size_t *len)
{
    uint8_t head[12];
    uint32_t size;
    uint8_t *buf;

    if (bench_raw_read_all(fd, head, sizeof(head)) != 0) {
        return -1;
    }
    if (memcmp(head, "\0RES", 4) != 0) {
        fprintf(stderr, "raw_recv: bad magic\n");
        return -1;
    }
    size = get_u32(head + 8);
    if (size > RAW_MAX_PACKET) {
        fprintf(stderr, "raw_recv: packet of %u bytes is too large\n", size);
        return -1;
    }
    buf = malloc((size_t)size + 1);
    if (buf == NULL) {
        fprintf(stderr, "raw_recv: out of memory\n");
        return -1;
    }
    if (bench_raw_read_all(fd, buf, size) != 0) {
        free(buf);
        return -1;
    }
    buf[size] = 0;
    *type = get_u32(head + 4);
    *data = buf;
    *len = size;
    return 0;
}

bool bench_raw_ping(int fd)
{
    static const uint8_t msg[] = "gr_bench ping";
    uint32_t type;
    uint8_t *data;
    size_t len;
    bool ok;

    if (raw_send(fd, RAW_ECHO_REQ, NULL, 0, msg, sizeof(msg) - 1) != 0 ||
        raw_recv(fd, &type, &data, &len) != 0) {
        return false;
    }
    ok = type == RAW_ECHO_RES && len == sizeof(msg) - 1 &&
         memcmp(data, msg, len) == 0;
    free(data);
    return ok;
}

int bench_admin_query(const char *host, unsigned port, const char *line,
                      char *buf, size_t size, bool quiet)
{
    size_t used = 0;
    int fd;

    fd = bench_raw_connect(host, port, 10.0, quiet);
    if (fd == -1) {
        return -1;
    }
    if (bench_raw_write_all(fd, line, strlen(line)) != 0) {
        close(fd);
        return -1;
    }
    for (;;) {
        ssize_t n = read(fd, buf + used, size - 1 - used);
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            if (!quiet) {
                fprintf(stderr, "admin %.*s: %s\n", (int)strcspn(line, "\n"),
                        line, n == 0 ? "connection closed" : strerror(errno));
            }
            close(fd);
            return -1;
        }
        used += (size_t)n;
        buf[used] = 0;
        if ((used >= 2 && strcmp(buf, ".\n") == 0) ||
            (used >= 3 && strcmp(buf + used - 3, "\n.\n") == 0)) {
            break;
        }
        if (used == size - 1) {
            if (!quiet) {
                fprintf(stderr, "admin: reply too long\n");
            }
            close(fd);
            return -1;
        }
    }
    close(fd);
    return 0;
}

int bench_admin_status(const char *host, unsigned port, const char *fn,
                       unsigned long *queued, unsigned long *running,
                       unsigned long *avail)
{
    char buf[65536];
    size_t fn_len = strlen(fn);
    char *line;

    if (bench_admin_query(host, port, "status\n", buf, sizeof(buf), false) !=
        0) {
        return -1;
    }
    *queued = 0;
    *running = 0;
    *avail = 0;
    for (line = buf; *line != 0;) {
        char *eol = strchr(line, '\n');
        if (eol == NULL) {
            break;
        }
        *eol = 0;
        if (strncmp(line, fn, fn_len) == 0 && line[fn_len] == '\t') {
            char *p = line + fn_len + 1;
            char *end;
            *queued = strtoul(p, &end, 10);
            if (*end != '\t') {
                return -1;
            }
            *running = strtoul(end + 1, &end, 10);
            if (*end != '\t') {
                return -1;
            }
            *avail = strtoul(end + 1, &end, 10);
            if (*end != 0 && *end != '\r') {
                return -1;
            }
        }
        line = eol + 1;
    }
    return 0;
}

bool bench_admin_wait_workers(const char *host, unsigned port, const char *fn,
                              unsigned long avail, double deadline)
{
    unsigned long q;
    unsigned long r;
    unsigned long a = 0;
    const struct timespec step = {0, 5000000};

    while (bench_now() < deadline) {
        if (bench_admin_status(host, port, fn, &q, &r, &a) != 0) {
            return false;
        }
        if (a >= avail) {
            return true;
        }
        /* Polling the server's own count: there is no event to wait on. */
        nanosleep(&step, NULL);
    }
    fprintf(stderr, "only %lu of %lu workers registered for %s in time\n", a,
            avail, fn);
    return false;
}

bool bench_admin_wait_pool(const struct bench_opts *opts, const char *fn,
                           unsigned n_workers, double deadline)
{
    unsigned n = opts->n_servers > 0 ? opts->n_servers : 1;

    for (unsigned s = 0; s < n && s < n_workers; s++) {
        /* Workers s, s + n, s + 2n, ... went to server s. */
        unsigned long mine = (n_workers - s + n - 1) / n;
        if (!bench_admin_wait_workers(bench_host(opts, s), bench_port(opts, s),
                                      fn, mine, deadline)) {
            return false;
        }
    }
    return true;
}

int bench_case_ping(const struct bench_opts *opts)
{
    double deadline = bench_now() + opts->time_limit;
    const struct timespec step = {0, 20000000};
    unsigned n = opts->n_servers > 0 ? opts->n_servers : 1;

    /* Readiness probe for run.sh: retry until every server accepts and
     * answers an ECHO, or the deadline passes. */
    for (unsigned s = 0; s < n; s++) {
        const char *host = bench_host(opts, s);
        unsigned port = bench_port(opts, s);

        for (;;) {
            int fd = bench_raw_connect(host, port, 5.0, true);
            if (fd != -1) {
                bool ok = bench_raw_ping(fd);
                close(fd);
                if (ok) {
                    break;
                }
            }
            if (bench_now() >= deadline) {
                fprintf(stderr, "no server answering on %s:%u\n", host, port);
                return 1;
            }
            nanosleep(&step, NULL);
        }
    }
    return 0;
}

/* The large-payload case: one raw worker thread, one raw client. */

struct big_worker {
    const struct bench_opts *opts;
    const char *fn;
    unsigned n_jobs;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool asleep; /* registered and sent PRE_SLEEP */
    int failed;
};

static void big_worker_set_asleep(struct big_worker *w, bool failed)
{
    pthread_mutex_lock(&w->mu);
    w->asleep = true;
    w->failed |= failed;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void *big_worker_main(void *arg)
{
    struct big_worker *w = arg;
    uint32_t type;
    uint8_t *data;
    size_t len;
    unsigned done = 0;
    int fd;

    /* With several servers the worker uses the second: the payload and
     * its result then cross the cluster. */
    fd = bench_raw_connect(bench_host(w->opts, 1), bench_port(w->opts, 1),
                           w->opts->time_limit, false);
    if (fd == -1 || raw_send(fd, RAW_CAN_DO, NULL, 0, (const uint8_t *)w->fn,
                             strlen(w->fn)) != 0) {
        goto fail;
    }
    while (done < w->n_jobs) {
        if (raw_send(fd, RAW_GRAB_JOB, NULL, 0, NULL, 0) != 0 ||
            raw_recv(fd, &type, &data, &len) != 0) {
            goto fail;
        }
        if (type == RAW_NO_JOB) {
            free(data);
            if (raw_send(fd, RAW_PRE_SLEEP, NULL, 0, NULL, 0) != 0) {
                goto fail;
            }
            /* The NO_JOB proved CAN_DO was processed; the client may go. */
            big_worker_set_asleep(w, false);
            do {
                if (raw_recv(fd, &type, &data, &len) != 0) {
                    goto fail;
                }
                free(data);
            } while (type != RAW_NOOP);
            continue;
        }
        if (type != RAW_JOB_ASSIGN) {
            fprintf(stderr, "big worker: unexpected packet %u\n", type);
            free(data);
            goto fail;
        }
        {
            /* handle NUL function NUL payload */
            const char *handle = (const char *)data;
            size_t hl = strnlen(handle, len);
            size_t fl = hl < len ? strnlen(handle + hl + 1, len - hl - 1) : 0;
            size_t off = hl + 1 + fl + 1;
            const char *h_arg[1] = {handle};
            unsigned long index;
            bool ok;

            if (off > len) {
                fprintf(stderr, "big worker: malformed JOB_ASSIGN\n");
                free(data);
                goto fail;
            }
            /* Echo the payload back first and check it afterwards, so
             * the check is not part of the measured round trip. */
            if (raw_send(fd, RAW_WORK_COMPLETE, h_arg, 1, data + off,
                         len - off) != 0) {
                free(data);
                goto fail;
            }
            ok = len - off == w->opts->size &&
                 bench_payload_check(data + off, len - off, &index);
            if (!ok) {
                fprintf(stderr,
                        "big worker: payload of %zu bytes is not "
                        "what was sent\n",
                        len - off);
                free(data);
                goto fail;
            }
            free(data);
            done++;
        }
    }
    close(fd);
    return NULL;

fail:
    if (fd != -1) {
        close(fd);
    }
    big_worker_set_asleep(w, true);
    return NULL;
}

int bench_case_big(const struct bench_opts *opts)
{
    struct big_worker w;
    pthread_t tid;
    char fn[128];
    uint8_t *payload;
    double *secs;
    unsigned reps = opts->repeat > 0 ? opts->repeat : 1;
    int fd = -1;
    int rc = 1;

    if (opts->size < BENCH_HDR) {
        fprintf(stderr, "big: --size must be at least %d\n", BENCH_HDR);
        return 1;
    }
    snprintf(fn, sizeof(fn), "bench_big_%s", opts->tag);
    payload = malloc(opts->size);
    secs = calloc(reps, sizeof(*secs));
    if (payload == NULL || secs == NULL) {
        fprintf(stderr, "big: out of memory\n");
        free(payload);
        free(secs);
        return 1;
    }
    memset(&w, 0, sizeof(w));
    w.opts = opts;
    w.fn = fn;
    w.n_jobs = reps;
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    if (pthread_create(&tid, NULL, big_worker_main, &w) != 0) {
        fprintf(stderr, "big: pthread_create failed\n");
        goto out_free;
    }
    fd = bench_raw_connect(bench_host(opts, 0), bench_port(opts, 0),
                           opts->time_limit, false);
    for (unsigned r = 0; r < reps && fd != -1; r++) {
        char uniq[64];
        const char *args[2] = {fn, uniq};
        uint32_t type;
        uint8_t *data = NULL;
        size_t len = 0;
        double t0;

        /* Wait for the worker to be registered and asleep, so the time is
         * the server's: submit, wake, assign, complete, forward. */
        pthread_mutex_lock(&w.mu);
        while (!w.asleep && !w.failed) {
            pthread_cond_wait(&w.cv, &w.mu);
        }
        w.asleep = false;
        pthread_mutex_unlock(&w.mu);
        if (w.failed) {
            goto out_join;
        }
        bench_payload_fill(payload, opts->size, r);
        snprintf(uniq, sizeof(uniq), "big-%s-%u", opts->tag, r);
        t0 = bench_now();
        if (raw_send(fd, RAW_SUBMIT_JOB, args, 2, payload, opts->size) != 0) {
            goto out_join;
        }
        for (;;) {
            if (raw_recv(fd, &type, &data, &len) != 0) {
                goto out_join;
            }
            if (type == RAW_JOB_CREATED) {
                free(data);
                continue;
            }
            break;
        }
        secs[r] = bench_now() - t0;
        if (type != RAW_WORK_COMPLETE) {
            fprintf(stderr, "big: got packet %u instead of WORK_COMPLETE\n",
                    type);
            free(data);
            goto out_join;
        }
        {
            size_t hl = strnlen((const char *)data, len);
            unsigned long index;
            if (hl >= len || len - hl - 1 != opts->size ||
                !bench_payload_check(data + hl + 1, opts->size, &index) ||
                index != r) {
                fprintf(stderr, "big: the result is not the payload sent\n");
                free(data);
                goto out_join;
            }
        }
        free(data);
        fprintf(stderr, "big: round trip %u of %zu bytes: %.3f s\n", r + 1,
                opts->size, secs[r]);
    }
    if (fd != -1) {
        rc = 0;
    }

out_join:
    if (fd != -1) {
        close(fd);
    }
    if (rc != 0) {
        /* The worker may be blocked reading; its socket timeout bounds it. */
        fprintf(stderr, "big: failed; waiting for the worker to time out\n");
    }
    pthread_join(tid, NULL);
    if (rc == 0 && w.failed) {
        rc = 1;
    }
    if (rc == 0) {
        bench_sort(secs, reps);
        fprintf(stderr,
                "verify big: %u round trips of %zu bytes came back "
                "byte for byte\n",
                reps, opts->size);
        printf("RESULT case=big size=%zu reps=%u best_s=%.4f median_s=%.4f "
               "mib_per_s=%.1f\n",
               opts->size, reps, secs[0], bench_percentile(secs, reps, 50),
               (double)opts->size / (1024.0 * 1024.0) /
                   bench_percentile(secs, reps, 50));
    }
out_free:
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    free(payload);
    free(secs);
    return rc;
}
