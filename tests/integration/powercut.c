/* SPDX-License-Identifier: BSD-3-Clause
 * tests/integration/powercut.c - an LD_PRELOAD library that keeps, beside
 * the server's LMDB file, the image a power cut would leave: the file as of
 * its last completed sync.
 *
 * SIGKILL alone cannot show that an acknowledgment waited for the disk: the
 * killed process's writes are still in the page cache and reach the file
 * anyway. With GR_POWERCUT_SHADOW=<path> set, this library watches every
 * file named data.mdb the process opens. Each write to it is recorded (its
 * offset and a copy of its bytes); when an fdatasync or fsync of the file
 * returns, the writes recorded before that sync began are copied into the
 * shadow file, in order. A write through a descriptor opened O_DSYNC or
 * O_SYNC is copied at once (it is durable when it returns). Writes that were
 * never covered by a completed sync are treated as lost, which is the worst
 * case for acknowledged data. The test SIGKILLs the server, puts the shadow
 * in place of data.mdb and restarts: every acknowledged job must be there.
 *
 * GR_POWERCUT_SLOW_SYNC_US=<n> makes every watched sync take n microseconds
 * longer (a slow disk), which widens the window in which a commit is
 * written but not yet durable, so a test sees early acknowledgments.
 *
 * GR_POWERCUT_SYNC_FIFO=<path>: each watched sync writes one byte to this
 * FIFO as it begins (never blocking; lost if nobody reads), so that a test
 * can wait for "a commit is being synced now" instead of sleeping.
 *
 * GR_POWERCUT_FAIL_FILE=<path>: while that file exists, every sync of the
 * data file fails with EIO and the writes it would have covered are lost
 * from the shadow, as Linux may drop pages it could not write back.
 *
 * The shadow starts as a copy of data.mdb at the first open. Only what
 * liblmdb calls is covered: open, write, writev (at lseek's position),
 * pwrite, fdatasync, fsync, close.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FDS 1024

struct rec {
    struct rec *next;
    off_t off;
    size_t len;
    unsigned char bytes[];
};

/* The writes between two sync starts, applied when a sync covering them
 * returns. */
struct span {
    struct span *next;
    uint64_t seq;
    struct rec *head;
    struct rec **tail;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static signed char watched[MAX_FDS]; /* 1: data.mdb, 2: ... opened O_DSYNC */
static int shadow_fd = -1;
static struct span *cur;    /* writes since the last sync began */
static struct span *synced; /* oldest first: begun, not yet returned */
static struct span **synced_tail = &synced;
static uint64_t seq;
static useconds_t slow_us;
static const char *fail_file;
static const char *sync_fifo;
static int sync_fifo_fd = -1;

static int (*real_open)(const char *, int, ...);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static int (*real_fdatasync)(int);
static int (*real_fsync)(int);
static int (*real_close)(int);

static void die(const char *what)
{
    fprintf(stderr, "powercut: %s: %s\n", what, strerror(errno));
    abort();
}

static void resolve(void)
{
    real_open = dlsym(RTLD_NEXT, "open");
    real_write = dlsym(RTLD_NEXT, "write");
    real_writev = dlsym(RTLD_NEXT, "writev");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_close = dlsym(RTLD_NEXT, "close");
    if (!real_open || !real_write || !real_writev || !real_pwrite ||
        !real_fdatasync || !real_fsync || !real_close) {
        die("dlsym");
    }
    fail_file = getenv("GR_POWERCUT_FAIL_FILE");
    sync_fifo = getenv("GR_POWERCUT_SYNC_FIFO");
    if (getenv("GR_POWERCUT_SLOW_SYNC_US") != NULL) {
        slow_us = (useconds_t)atoi(getenv("GR_POWERCUT_SLOW_SYNC_US"));
    }
}

static void init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, resolve);
}

static struct span *span_new(void)
{
    struct span *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        die("calloc");
    }
    s->tail = &s->head;
    return s;
}

static void shadow_put(const void *buf, size_t len, off_t off)
{
    const unsigned char *p = buf;

    while (len > 0) {
        ssize_t n = real_pwrite(shadow_fd, p, len, off);

        if (n <= 0) {
            die("writing the shadow");
        }
        p += n;
        len -= (size_t)n;
        off += n;
    }
}

/* Called with mu held: the first open of data.mdb copies it. */
static void shadow_open(int fd)
{
    const char *path = getenv("GR_POWERCUT_SHADOW");
    unsigned char buf[65536];
    off_t off = 0;
    ssize_t n;

    shadow_fd = real_open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (shadow_fd < 0) {
        die(path);
    }
    while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
        shadow_put(buf, (size_t)n, off);
        off += n;
    }
    cur = span_new();
}

static bool is_data_file(const char *path)
{
    size_t n = strlen(path);

    return n >= 8 && strcmp(path + n - 8, "data.mdb") == 0 &&
           (n == 8 || path[n - 9] == '/');
}

int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    int fd;

    init();
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;

        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    fd = real_open(path, flags, mode);
    if (fd >= 0 && fd < MAX_FDS && getenv("GR_POWERCUT_SHADOW") != NULL &&
        is_data_file(path)) {
        pthread_mutex_lock(&mu);
        if (shadow_fd < 0) {
            shadow_open(fd);
        }
        watched[fd] = (flags & (O_DSYNC | O_SYNC)) ? 2 : 1;
        pthread_mutex_unlock(&mu);
    }
    return fd;
}

static void note_write(int fd, const struct iovec *iov, int iovcnt, off_t off,
                       size_t done)
{
    pthread_mutex_lock(&mu);
    for (int i = 0; i < iovcnt && done > 0; i++) {
        size_t len = iov[i].iov_len < done ? iov[i].iov_len : done;

        if (watched[fd] == 2) {
            shadow_put(iov[i].iov_base, len, off);
        } else {
            struct rec *r = malloc(sizeof(*r) + len);

            if (r == NULL) {
                die("malloc");
            }
            r->next = NULL;
            r->off = off;
            r->len = len;
            memcpy(r->bytes, iov[i].iov_base, len);
            *cur->tail = r;
            cur->tail = &r->next;
        }
        off += (off_t)len;
        done -= len;
    }
    pthread_mutex_unlock(&mu);
}

static bool watching(int fd)
{
    return fd >= 0 && fd < MAX_FDS && watched[fd] != 0;
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
    ssize_t n;

    init();
    n = real_pwrite(fd, buf, len, off);
    if (n > 0 && watching(fd)) {
        struct iovec v = {(void *)(uintptr_t)buf, len};

        note_write(fd, &v, 1, off, (size_t)n);
    }
    return n;
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
    return pwrite(fd, buf, len, off);
}

/* write(2) and writev(2) on a watched fd write at the file position. */
static ssize_t watched_writev(int fd, const struct iovec *iov, int iovcnt)
{
    off_t off = lseek(fd, 0, SEEK_CUR);
    ssize_t n = real_writev(fd, iov, iovcnt);

    if (n > 0) {
        note_write(fd, iov, iovcnt, off, (size_t)n);
    }
    return n;
}

ssize_t write(int fd, const void *buf, size_t len)
{
    struct iovec v = {(void *)(uintptr_t)buf, len};

    init();
    return watching(fd) ? watched_writev(fd, &v, 1) : real_write(fd, buf, len);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    init();
    return watching(fd) ? watched_writev(fd, iov, iovcnt)
                        : real_writev(fd, iov, iovcnt);
}

/* A failed sync: its writes never reach the shadow. */
static void drop_span(struct span *mine)
{
    struct span **pp;
    struct rec *r;

    pthread_mutex_lock(&mu);
    for (pp = &synced; *pp != NULL && *pp != mine; pp = &(*pp)->next) {
    }
    if (*pp == mine) {
        *pp = mine->next;
        if (synced_tail == &mine->next) {
            synced_tail = pp;
        }
        while ((r = mine->head) != NULL) {
            mine->head = r->next;
            free(r);
        }
        free(mine);
    }
    pthread_mutex_unlock(&mu);
}

/* Tells the test a sync begins: one byte into GR_POWERCUT_SYNC_FIFO, if
 * someone holds its read end (else the FIFO cannot be opened: try again
 * next time). Called with mu held. */
static void announce_sync(void)
{
    static const char byte = 's';

    if (sync_fifo == NULL) {
        return;
    }
    if (sync_fifo_fd < 0) {
        sync_fifo_fd = real_open(sync_fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (sync_fifo_fd < 0) {
            return;
        }
    }
    (void)real_write(sync_fifo_fd, &byte, 1); /* full: the test drains */
}

/* A sync of a watched fd: the writes recorded before it began are durable
 * when it returns 0 - and so are those of every sync begun before it. */
static int synced_call(int fd, int (*fn)(int))
{
    struct span *mine;
    int rv;

    init();
    if (!watching(fd)) {
        return fn(fd);
    }
    pthread_mutex_lock(&mu);
    mine = cur;
    mine->seq = ++seq;
    *synced_tail = mine;
    synced_tail = &mine->next;
    cur = span_new();
    announce_sync();
    pthread_mutex_unlock(&mu);
    if (slow_us > 0) {
        usleep(slow_us);
    }
    if (fail_file != NULL && access(fail_file, F_OK) == 0) {
        drop_span(mine);
        errno = EIO;
        return -1;
    }
    rv = fn(fd);
    if (rv != 0) {
        return rv; /* nothing is known durable */
    }
    pthread_mutex_lock(&mu);
    while (synced != NULL && synced->seq <= mine->seq) {
        struct span *s = synced;
        struct rec *r;

        synced = s->next;
        if (synced == NULL) {
            synced_tail = &synced;
        }
        while ((r = s->head) != NULL) {
            s->head = r->next;
            shadow_put(r->bytes, r->len, r->off);
            free(r);
        }
        free(s);
    }
    pthread_mutex_unlock(&mu);
    return 0;
}

int fdatasync(int fd)
{
    init();
    return synced_call(fd, real_fdatasync);
}

int fsync(int fd)
{
    init();
    return synced_call(fd, real_fsync);
}

int close(int fd)
{
    init();
    if (watching(fd)) {
        pthread_mutex_lock(&mu);
        watched[fd] = 0;
        pthread_mutex_unlock(&mu);
    }
    return real_close(fd);
}
