/* SPDX-License-Identifier: BSD-3-Clause
 * node/cluster/snap.c - a member's snapshot files (snap.h says why).
 *
 * Names in the snapshot directory:
 *   snap-<index>-<term>   a complete snapshot, synced; the newest is kept
 *   dump.tmp              a dump in progress (removed at start)
 *   recv.partial          a snapshot being received from the leader
 *
 * Not here: the format of a snapshot (storage/snapshot.c).
 */
#include "node/cluster/snap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node/gr.h"

#define DUMP_TMP "dump.tmp"
#define RECV     "recv.partial"

static void path_of(const struct gr_snaps *s, const char *name, char *out,
                    size_t len)
{
    snprintf(out, len, "%s/%s", s->dir, name);
}

static void snap_path(const struct gr_snaps *s, uint64_t index, uint64_t term,
                      char *out, size_t len)
{
    snprintf(out, len, "%s/snap-%llu-%llu", s->dir, (unsigned long long)index,
             (unsigned long long)term);
}

static int sync_dir(const struct gr_snaps *s)
{
    int fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc;

    if (fd == -1) {
        return GR_EIO;
    }
    rc = fsync(fd);
    close(fd);
    return rc == -1 ? GR_EIO : 0;
}

int gr_snaps_init(struct gr_snaps *s, const char *dir, struct store *store)
{
    char p[1400];

    memset(s, 0, sizeof(*s));
    s->rx_fd = -1;
    s->store = store;
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
        snprintf(s->errmsg, sizeof(s->errmsg), "creating %.150s: %s", dir,
                 strerror(errno));
        return GR_EIO;
    }
    path_of(s, DUMP_TMP, p, sizeof(p));
    (void)unlink(p);
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        snprintf(s->errmsg, sizeof(s->errmsg), "cannot create a lock");
        return GR_EIO;
    }
    s->lock_init = true;
    return 0;
}

void gr_snaps_close(struct gr_snaps *s)
{
    gr_snaps_dump_wait(s);
    s->started = false;
    if (s->rx_fd != -1) {
        close(s->rx_fd);
        s->rx_fd = -1;
    }
    if (s->lock_init) {
        pthread_mutex_destroy(&s->lock);
        s->lock_init = false;
    }
}

int64_t gr_snaps_size(const struct gr_snaps *s, uint64_t index, uint64_t term)
{
    char p[1400];
    struct stat st;

    snap_path(s, index, term, p, sizeof(p));
    if (stat(p, &st) == -1) {
        return -1;
    }
    return (int64_t)st.st_size;
}

int gr_snaps_read(const struct gr_snaps *s, uint64_t index, uint64_t term,
                  uint64_t offset, void *buf, size_t len)
{
    char p[1400];
    size_t got = 0;
    int fd;

    snap_path(s, index, term, p, sizeof(p));
    fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return GR_EIO;
    }
    while (got < len) {
        ssize_t n = pread(fd, (uint8_t *)buf + got, len - got,
                          (off_t)(offset + got));

        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            close(fd);
            return GR_EIO;
        }
        got += (size_t)n;
    }
    close(fd);
    return 0;
}

/* ---- the dump ---- */

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1) {
            return errno == ENOSPC ? STORE_ENOSPC : STORE_EIO;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The dump's records are small (a few to a hundred bytes each), so
 * they are gathered in a buffer and written DUMP_BUF bytes at a time:
 * one write per record cost a system call for every few bytes, hundreds
 * of thousands per dump of a busy queue, on the cores the turns need. */
#define DUMP_BUF (64u * 1024u)

struct dump_out {
    int fd;
    uint64_t len;
    size_t n_buf; /* bytes in buf not yet written */
    uint8_t buf[DUMP_BUF];
};

static int dump_flush(struct dump_out *o)
{
    int rv = write_all(o->fd, o->buf, o->n_buf);

    o->n_buf = 0;
    return rv;
}

static int dump_write(void *arg, const void *buf, size_t len)
{
    struct dump_out *o = arg;
    int rv;

    if (len > DUMP_BUF - o->n_buf) {
        rv = dump_flush(o);
        if (rv != 0) {
            return rv;
        }
    }
    if (len >= DUMP_BUF) {
        rv = write_all(o->fd, buf, len);
    } else {
        memcpy(o->buf + o->n_buf, buf, len);
        o->n_buf += len;
        rv = 0;
    }
    if (rv == 0) {
        o->len += len;
    }
    return rv;
}

static void *dump_main(void *arg)
{
    struct gr_snaps *s = arg;
    struct dump_out *o = gr_malloc(sizeof(*o));
    char p[1400];
    uint64_t index = 0;
    uint64_t len = 0;
    int rv;

    path_of(s, DUMP_TMP, p, sizeof(p));
    if (o == NULL) {
        rv = STORE_ENOMEM;
    } else if ((o->fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                             0600)) == -1) {
        rv = STORE_EIO;
    } else {
        o->len = 0;
        o->n_buf = 0;
        rv = store_snap_write(s->store, dump_write, o, &index);
        if (rv == 0) {
            rv = dump_flush(o);
        }
        if (rv == 0 && fsync(o->fd) == -1) {
            rv = STORE_EIO;
        }
        close(o->fd);
        len = o->len;
    }
    gr_free(o);
    pthread_mutex_lock(&s->lock);
    s->rv = rv;
    s->index = index;
    s->len = len;
    s->done = true;
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int gr_snaps_dump_start(struct gr_snaps *s)
{
    if (s->started) {
        return 0;
    }
    s->done = false;
    if (pthread_create(&s->thread, NULL, dump_main, s) != 0) {
        return GR_ENOMEM;
    }
    s->started = true;
    return 0;
}

bool gr_snaps_dumping(const struct gr_snaps *s)
{
    return s->started;
}

bool gr_snaps_dump_done(struct gr_snaps *s, uint64_t *index, uint64_t *len,
                        int *rv)
{
    bool done;

    if (!s->started) {
        return false;
    }
    pthread_mutex_lock(&s->lock);
    done = s->done;
    *index = s->index;
    *len = s->len;
    *rv = s->rv;
    pthread_mutex_unlock(&s->lock);
    if (done) {
        if (!s->joined) {
            pthread_join(s->thread, NULL);
        }
        s->started = false;
        s->joined = false;
    }
    return done;
}

void gr_snaps_dump_wait(struct gr_snaps *s)
{
    if (s->started && !s->joined) {
        pthread_join(s->thread, NULL);
        s->joined = true;
    }
}

/* Removes every snap-* file but (index, term)'s. */
static void remove_others(const struct gr_snaps *s, uint64_t index,
                          uint64_t term)
{
    char keep[64];
    char p[1400];
    DIR *d = opendir(s->dir);
    struct dirent *e;

    if (d == NULL) {
        return;
    }
    snprintf(keep, sizeof(keep), "snap-%llu-%llu", (unsigned long long)index,
             (unsigned long long)term);
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "snap-", 5) == 0 &&
            strcmp(e->d_name, keep) != 0) {
            path_of(s, e->d_name, p, sizeof(p));
            (void)unlink(p);
        }
    }
    closedir(d);
}

static int keep_as(struct gr_snaps *s, const char *name, uint64_t index,
                   uint64_t term)
{
    char from[1400];
    char to[1400];

    path_of(s, name, from, sizeof(from));
    snap_path(s, index, term, to, sizeof(to));
    if (rename(from, to) == -1 || sync_dir(s) != 0) {
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "keeping snapshot %llu-%llu in %.100s: %s",
                 (unsigned long long)index, (unsigned long long)term, s->dir,
                 strerror(errno));
        return GR_EIO;
    }
    remove_others(s, index, term);
    return 0;
}

int gr_snaps_keep_dump(struct gr_snaps *s, uint64_t index, uint64_t term)
{
    return keep_as(s, DUMP_TMP, index, term);
}

/* ---- receiving ---- */

int gr_snaps_rx_write(struct gr_snaps *s, uint64_t offset, const void *data,
                      size_t len)
{
    char p[1400];

    if (offset == 0 || s->rx_fd == -1) {
        if (s->rx_fd != -1) {
            close(s->rx_fd);
        }
        path_of(s, RECV, p, sizeof(p));
        s->rx_fd = open(p, O_RDWR | O_CREAT | (offset == 0 ? O_TRUNC : 0) |
                               O_CLOEXEC,
                        0600);
        if (s->rx_fd == -1) {
            return GR_EIO;
        }
    }
    while (len > 0) {
        ssize_t n = pwrite(s->rx_fd, data, len, (off_t)offset);

        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return GR_EIO;
        }
        data = (const uint8_t *)data + n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return fdatasync(s->rx_fd) == -1 ? GR_EIO : 0;
}

struct rx_in {
    int fd;
    uint64_t pos;
};

static int rx_read(void *arg, void *buf, size_t len)
{
    struct rx_in *in = arg;
    size_t got = 0;

    while (got < len) {
        ssize_t n = pread(in->fd, (uint8_t *)buf + got, len - got,
                          (off_t)(in->pos + got));

        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1) {
            return STORE_EIO;
        }
        if (n == 0) {
            return STORE_EMALFORMED; /* ends early */
        }
        got += (size_t)n;
    }
    in->pos += len;
    return 0;
}

int gr_snaps_rx_install(struct gr_snaps *s, struct store_txn *txn,
                        uint64_t *index)
{
    struct rx_in in = {s->rx_fd, 0};

    if (s->rx_fd == -1) {
        return STORE_EINVAL;
    }
    return store_snap_read(txn, rx_read, &in, index);
}

int gr_snaps_rx_keep(struct gr_snaps *s, uint64_t index, uint64_t term)
{
    if (s->rx_fd != -1) {
        close(s->rx_fd);
        s->rx_fd = -1;
    }
    return keep_as(s, RECV, index, term);
}
