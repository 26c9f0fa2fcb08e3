/* SPDX-License-Identifier: BSD-3-Clause
 * storage/env.c - opening and closing the LMDB environment: directory,
 * exclusive lock, map size, named databases, format version, node id,
 * cluster name and the incarnation bump; the meta table helpers.
 *
 * The first transaction of a fresh directory is its bootstrap: format,
 * node id, cluster name and, for a cluster member, the member table.
 * Every later open checks that the directory is of the node that opens
 * it (STORE_EIDENTITY): the same kind (one-node server or member), node
 * id and cluster name.
 *
 * Why it is shaped this way: LMDB itself lets several processes share an
 * environment, but two gearraftd on one data directory would both believe
 * they own the queue, so an flock on a file of our own refuses the second
 * one (STORE_ELOCKED). The incarnation is bumped and committed before
 * store_open returns, so every connection reference this process hands out
 * is distinguishable from those of the previous run. docs/DESIGN.md's LMDB
 * rules: never MDB_NOSYNC or MDB_WRITEMAP; MDB_NOTLS because node/ may
 * hold read transactions in any thread it likes; a large sparse map.
 *
 * Not here: transactions (txn.c), the log (log.c), the queue (jobs.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "storage/internal.h"

/* Names of the databases, in enum store__db order. Checklist: a name is
 * part of the on-disk format; renaming one is a STORE__FORMAT_VERSION
 * bump. */
static const char *const db_names[STORE__DB_COUNT] = {
    "meta",   "log",   "jobs", "jdata", "ready",  "uniq",    "uniqs",
    "assign", "waits", "due",  "funcs", "dedupe", "members",
};

#define META_FORMAT      "format"
#define META_NODE_ID     "node_id"
#define META_CLUSTER     "cluster"
#define META_INCARNATION "incarnation"
#define META_JOINER      "joiner"

static size_t default_map_size(void)
{
#if SIZE_MAX > 0xffffffffu
    return (size_t)64 << 30; /* sparse: costs nothing until used */
#else
    return (size_t)1 << 30;
#endif
}

/* ---- meta helpers: u64 values carry a CRC32C ---- */

int store__meta_get_u64(struct store_txn *txn, const char *key, uint64_t *out)
{
    MDB_val v;
    const uint8_t *p;
    int rv;

    rv = store__get(txn, STORE__DB_META, key, strlen(key), &v);
    if (rv != 0) {
        return rv;
    }
    p = v.mv_data;
    if (v.mv_size != 12 || store__crc32c(0, p + 4, 8) != store__get32(p)) {
        store__errmsgf(txn->s, "meta %s: bad record", key);
        return STORE_ECORRUPT;
    }
    *out = store__get64(p + 4);
    return 0;
}

int store__meta_put_u64(struct store_txn *txn, const char *key, uint64_t v)
{
    uint8_t buf[12];

    store__put64(buf + 4, v);
    store__put32(buf, store__crc32c(0, buf + 4, 8));
    return store__put(txn, STORE__DB_META, key, strlen(key), buf, sizeof(buf),
                      0);
}

/* Picks the cluster part of handles: the configured name; for a member
 * the one every founding node chooses alike; for a one-node server the
 * host's nodename, as gearmand does. */
static int choose_cluster(const struct store_config *cfg, char *out,
                          size_t *out_len)
{
    struct utsname u;
    const char *name = cfg->cluster;
    size_t len;

    if (name == NULL) {
        name = STORE_CLUSTER_DEFAULT;
        if (!cfg->member && uname(&u) == 0 && u.nodename[0] != '\0') {
            name = u.nodename;
        }
    }
    len = strlen(name);
    if (cfg->cluster == NULL && len > STORE_CLUSTER_MAX) {
        len = STORE_CLUSTER_MAX; /* a long hostname is cut, not refused */
    }
    if (len == 0 || len > STORE_CLUSTER_MAX || memchr(name, ':', len) != NULL) {
        return STORE_EINVAL;
    }
    memcpy(out, name, len);
    out[len] = '\0';
    *out_len = len;
    return 0;
}

/* An older format -> the current one, in the transaction that opens the
 * environment. 1 -> 2: the second unique index goes (its entries are all
 * in `uniq` too). 2 -> 3: nothing to rewrite (format 3 reads format 2's
 * dedupe marks); only older binaries must no longer open it. */
static int migrate(struct store_txn *txn, uint64_t format)
{
    if (format == 1) {
        int rc = mdb_drop(txn->txn, store__dbi(txn, STORE__DB_UNIQS), 0);

        if (rc != 0) {
            return store__mdb_err(rc);
        }
    }
    return store__meta_put_u64(txn, META_FORMAT, STORE__FORMAT_VERSION);
}

/* A member's bootstrap list: it names this node, and the table takes it
 * (store_members_set checks the rest). */
static int check_bootstrap(struct store *s, const struct store_config *cfg)
{
    size_t i;

    if (!cfg->member) {
        if (cfg->n_members == 0) {
            return 0;
        }
        store__errmsgf(s, "open %s: members given to a one-node server",
                       s->dir);
        return STORE_EINVAL;
    }
    if (cfg->n_members == 0) {
        store__errmsgf(s,
                       "open %s: the data directory is fresh, and a "
                       "cluster member is bootstrapped only with the "
                       "cluster's initial members",
                       s->dir);
        return STORE_EIDENTITY;
    }
    for (i = 0; i < cfg->n_members; i++) {
        if (cfg->members[i].id == cfg->node_id && cfg->node_id != 0) {
            return 0;
        }
    }
    store__errmsgf(s, "open %s: node id %llu is not among the members", s->dir,
                   (unsigned long long)cfg->node_id);
    return STORE_EINVAL;
}

/* A new directory, in one transaction: format, node id, cluster name,
 * incarnation 0 and, for a member, the member table (the bootstrap). */
static int create_meta(struct store *s, struct store_txn *txn,
                       const struct store_config *cfg)
{
    int rv = check_bootstrap(s, cfg);

    if (rv != 0) {
        return rv;
    }
    rv = choose_cluster(cfg, s->cluster, &s->cluster_len);
    if (rv != 0) {
        store__errmsgf(s,
                       "open %s: cluster name must be 1-%d bytes "
                       "without ':'",
                       s->dir, STORE_CLUSTER_MAX);
        return rv;
    }
    rv = store__meta_put_u64(txn, META_FORMAT, STORE__FORMAT_VERSION);
    if (rv == 0) {
        rv = store__meta_put_u64(txn, META_NODE_ID, cfg->node_id);
    }
    if (rv == 0) {
        rv = store__put(txn, STORE__DB_META, META_CLUSTER, strlen(META_CLUSTER),
                        s->cluster, s->cluster_len, 0);
    }
    if (rv == 0) {
        rv = store__meta_put_u64(txn, META_INCARNATION, 0);
    }
    if (rv == 0) {
        rv = store_members_set(txn, cfg->members, cfg->n_members);
    }
    if (rv == 0 && cfg->member && cfg->joiner) {
        rv = store__meta_put_u64(txn, META_JOINER, 1);
    }
    if (rv != 0) {
        store__errmsgf(s, "open %s: writing meta: %s", s->dir,
                       store_strerror(rv));
        return rv;
    }
    s->is_new = true;
    return 0;
}

/* An existing directory of `format`: converted if older, refused if
 * newer; its cluster name must be the configured one, if any. */
static int check_meta(struct store *s, struct store_txn *txn,
                      const struct store_config *cfg, uint64_t format)
{
    MDB_val cv;
    int rv;

    if (format >= 1 && format < STORE__FORMAT_VERSION &&
        (rv = migrate(txn, format)) != 0) {
        store__errmsgf(s, "open %s: converting format %llu: %s", s->dir,
                       (unsigned long long)format, store_strerror(rv));
        return rv;
    }
    if (format < 1 || format > STORE__FORMAT_VERSION) {
        store__errmsgf(s, "open %s: format version %llu, this build reads %u",
                       s->dir, (unsigned long long)format,
                       STORE__FORMAT_VERSION);
        return STORE_EVERSION;
    }
    rv = store__get(txn, STORE__DB_META, META_CLUSTER, strlen(META_CLUSTER),
                    &cv);
    if (rv != 0 || cv.mv_size == 0 || cv.mv_size > STORE_CLUSTER_MAX) {
        store__errmsgf(s, "open %s: cluster name missing or bad", s->dir);
        return STORE_ECORRUPT;
    }
    memcpy(s->cluster, cv.mv_data, cv.mv_size);
    s->cluster[cv.mv_size] = '\0';
    s->cluster_len = cv.mv_size;
    if (cfg->cluster != NULL && strcmp(cfg->cluster, s->cluster) != 0) {
        store__errmsgf(s,
                       "open %s: cluster is '%s', not '%s' (handles "
                       "would change)",
                       s->dir, s->cluster, cfg->cluster);
        return STORE_EIDENTITY;
    }
    return 0;
}

/* An existing directory is of the kind cfg asks for (a one-node server's
 * or a member's) and of its node id. The members cfg brings are not
 * looked at: the table holds the cluster's own. */
static int check_identity(struct store *s, struct store_txn *txn,
                          const struct store_config *cfg, uint64_t node_id)
{
    struct store_member m[STORE_MEMBERS_MAX];
    const char *name = "?";
    size_t n;
    size_t i;
    int rv = store_members_get(txn, m, &n);

    if (rv != 0) {
        return rv;
    }
    for (i = 0; i < n; i++) {
        if (m[i].id == node_id) {
            name = m[i].name;
        }
    }
    if (cfg->member && n == 0) {
        store__errmsgf(s,
                       "open %s: the data is a one-node server's (node "
                       "%llu), and a cluster member needs a fresh data "
                       "directory",
                       s->dir, (unsigned long long)node_id);
        return STORE_EIDENTITY;
    }
    if (!cfg->member && n > 0) {
        store__errmsgf(s,
                       "open %s: the data is member '%s' (node id %llu) of "
                       "cluster '%s', not a one-node server's",
                       s->dir, name, (unsigned long long)node_id, s->cluster);
        return STORE_EIDENTITY;
    }
    if (cfg->node_id != 0 && node_id != cfg->node_id) {
        if (n > 0) {
            store__errmsgf(s,
                           "open %s: the data is member '%s' (node id %llu) "
                           "of cluster '%s', not node id %llu",
                           s->dir, name, (unsigned long long)node_id,
                           s->cluster, (unsigned long long)cfg->node_id);
        } else {
            store__errmsgf(s, "open %s: data belongs to node %llu, not %llu",
                           s->dir, (unsigned long long)node_id,
                           (unsigned long long)cfg->node_id);
        }
        return STORE_EIDENTITY;
    }
    return 0;
}

/* The directory must be of the configured node; the incarnation goes up
 * by one on every open. */
static int next_incarnation(struct store *s, struct store_txn *txn,
                            const struct store_config *cfg)
{
    uint64_t v;
    int rv = store__meta_get_u64(txn, META_NODE_ID, &v);

    if (rv == 0 && !s->is_new) {
        rv = check_identity(s, txn, cfg, v);
    }
    if (rv != 0) {
        return rv;
    }
    s->node_id = v;
    rv = store__meta_get_u64(txn, META_JOINER, &v);
    if (rv != 0 && rv != STORE_ENOTFOUND) {
        return rv;
    }
    s->joiner = rv == 0 && v == 1;
    rv = store__meta_get_u64(txn, META_INCARNATION, &v);
    if (rv != 0) {
        return rv;
    }
    s->incarnation = v + 1;
    return store__meta_put_u64(txn, META_INCARNATION, s->incarnation);
}

/* First open: write the format, node id and cluster name. Later opens:
 * check them (converting an older format). Then bump the incarnation. */
static int init_meta(struct store *s, const struct store_config *cfg)
{
    struct store_txn *txn;
    uint64_t format;
    int rv;

    rv = store_txn_begin(s, true, &txn);
    if (rv != 0) {
        return rv;
    }
    rv = store__meta_get_u64(txn, META_FORMAT, &format);
    if (rv == STORE_ENOTFOUND) {
        rv = create_meta(s, txn, cfg);
    } else if (rv == 0) {
        rv = check_meta(s, txn, cfg, format);
    }
    if (rv == 0) {
        rv = next_incarnation(s, txn, cfg);
    }
    if (rv != 0) {
        store_txn_abort(txn);
        return rv;
    }
    rv = store_txn_commit(txn);
    if (rv != 0) {
        store__errmsgf(s, "open %s: committing incarnation: %s", s->dir,
                       store_strerror(rv));
    }
    return rv;
}

static int open_dbs(struct store *s)
{
    MDB_txn *txn;
    int rc;
    int i;

    rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != 0) {
        goto err;
    }
    for (i = 0; i < STORE__DB_COUNT; i++) {
        rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &s->dbi[i]);
        if (rc != 0) {
            mdb_txn_abort(txn);
            goto err;
        }
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0) {
        goto err;
    }
    return 0;

err:
    store__errmsgf(s, "open %s: databases: %s", s->dir, mdb_strerror(rc));
    return store__mdb_err(rc);
}

static int lock_dir(struct store *s)
{
    char path[4096];
    int fd;

    if ((size_t)snprintf(path, sizeof(path), "%s/gearraft.lock", s->dir) >=
        sizeof(path)) {
        store__errmsgf(s, "open %s: path too long", s->dir);
        return STORE_EINVAL;
    }
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd == -1) {
        store__errmsgf(s, "open %s: %s", path, strerror(errno));
        return STORE_EIO;
    }
    while (flock(fd, LOCK_EX | LOCK_NB) == -1) {
        if (errno == EINTR) {
            continue;
        }
        store__errmsgf(s, "open %s: %s", path,
                       errno == EWOULDBLOCK ? "locked by another process"
                                            : strerror(errno));
        close(fd);
        return errno == EWOULDBLOCK ? STORE_ELOCKED : STORE_EIO;
    }
    s->lock_fd = fd;
    return 0;
}

/* Sizes and opens the created environment s->env. */
static int open_env(struct store *s, const struct store_config *cfg)
{
    unsigned flags;
    int rc;
    int rv;

    rc = mdb_env_set_maxdbs(s->env, STORE__DB_COUNT);
    if (rc == 0) {
        rc = mdb_env_set_mapsize(
            s->env, cfg->map_size != 0 ? cfg->map_size : default_map_size());
    }
    if (rc != 0) {
        store__errmsgf(s, "open %s: %s", s->dir, mdb_strerror(rc));
        return store__mdb_err(rc);
    }
    /* Never MDB_NOSYNC or MDB_WRITEMAP (docs/DESIGN.md, "Storage"). */
    flags = MDB_NOTLS | (cfg->nometasync ? MDB_NOMETASYNC : 0u);
    rc = mdb_env_open(s->env, s->dir, flags, 0600);
    if (rc == 0) {
        return 0;
    }
    store__errmsgf(s, "open %s: %s", s->dir, mdb_strerror(rc));
    rv = store__mdb_err(rc);
    return (rv == STORE_EINVAL || rv == STORE_ENOTFOUND) ? STORE_EIO : rv;
}

int store_open(const struct store_config *cfg, struct store **out, char *errmsg,
               size_t errmsg_len)
{
    struct store *s;
    size_t dir_len;
    int rc;
    int rv;

    if (cfg == NULL || cfg->dir == NULL || cfg->dir[0] == '\0') {
        if (errmsg != NULL && errmsg_len > 0) {
            snprintf(errmsg, errmsg_len, "open: no data directory given");
        }
        return STORE_EINVAL;
    }
    s = store__malloc(sizeof(*s));
    if (s == NULL) {
        rv = STORE_ENOMEM;
        if (errmsg != NULL && errmsg_len > 0) {
            snprintf(errmsg, errmsg_len, "open %s: out of memory", cfg->dir);
        }
        return rv;
    }
    memset(s, 0, sizeof(*s));
    s->lock_fd = -1;
    dir_len = strlen(cfg->dir);
    s->dir = store__malloc(dir_len + 1);
    if (s->dir == NULL) {
        rv = STORE_ENOMEM;
        store__errmsgf(s, "open %s: out of memory", cfg->dir);
        goto err_free_s;
    }
    memcpy(s->dir, cfg->dir, dir_len + 1);

    if (mkdir(s->dir, 0700) == -1 && errno != EEXIST) {
        store__errmsgf(s, "open %s: mkdir: %s", s->dir, strerror(errno));
        rv = STORE_EIO;
        goto err_free_s;
    }
    rv = lock_dir(s);
    if (rv != 0) {
        goto err_free_s;
    }
    rc = mdb_env_create(&s->env);
    if (rc != 0) {
        store__errmsgf(s, "open %s: %s", s->dir, mdb_strerror(rc));
        rv = store__mdb_err(rc);
        goto err_unlock;
    }
    rv = open_env(s, cfg);
    if (rv == 0) {
        rv = open_dbs(s);
    }
    if (rv != 0) {
        goto err_close_env;
    }
    rv = init_meta(s, cfg);
    if (rv == 0 && cfg->nometasync) {
        rv = store_sync(s); /* the incarnation bump is durable on return */
    }
    if (rv != 0) {
        goto err_close_env;
    }
    *out = s;
    return 0;

err_close_env:
    mdb_env_close(s->env);
err_unlock:
    close(s->lock_fd);
err_free_s:
    if (errmsg != NULL && errmsg_len > 0) {
        snprintf(errmsg, errmsg_len, "%s", s->errmsg);
    }
    store__free(s->dir);
    store__free(s);
    return rv;
}

int store_sync(struct store *s)
{
    int rc = mdb_env_sync(s->env, 1);

    if (rc != 0) {
        store__errmsgf(s, "sync %s: %s", s->dir, mdb_strerror(rc));
        return STORE_EIO;
    }
    return 0;
}

/* ---- growing the data file ahead of LMDB ----
 *
 * LMDB writes a new page past the end of its file, which changes the
 * file's size and allocates a block: metadata that the commit's
 * fdatasync must write too, as separate synchronous I/O on ext4 (several
 * device round trips per commit while the queue grows). Zeroed, allocated
 * space kept ahead of LMDB's last page turns those writes into overwrites;
 * the metadata of the zeros is synced once per GROW_STEP by whichever
 * sync comes next. */

#define GROW_AHEAD ((uint64_t)8 << 20) /* kept allocated past the last page */
#define GROW_STEP  ((uint64_t)1 << 20) /* the most one call writes */

static uint8_t grow_zeros[256 * 1024]; /* never written: stays zero */

int store_grow_ahead(struct store *s)
{
    MDB_envinfo info;
    MDB_stat ms;
    uint64_t used;
    uint64_t end;
    uint64_t stop;
    int fd;

    if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &ms) != 0 ||
        mdb_env_get_fd(s->env, &fd) != 0) {
        return STORE_EIO;
    }
    if (s->grown_to == 0) {
        /* Once: a stat of the file on every call would make the kernel
         * stamp each later write with a fine-grained time (multigrain
         * timestamps), dirtying the inode for every commit's sync. */
        struct stat st;

        if (fstat(fd, &st) != 0) {
            return STORE_EIO;
        }
        s->grown_to = (uint64_t)st.st_size;
    }
    /* LMDB may have written past our zeros (a big transaction): never
     * below its last page. */
    used = ((uint64_t)info.me_last_pgno + 1u) * ms.ms_psize;
    end = s->grown_to > used ? s->grown_to : used;
    if (end >= used + GROW_AHEAD || end >= info.me_mapsize) {
        return 0;
    }
    stop = end + GROW_STEP;
    if (stop > info.me_mapsize) {
        stop = info.me_mapsize;
    }
    while (end < stop) {
        size_t n = stop - end < sizeof(grow_zeros) ? (size_t)(stop - end)
                                                   : sizeof(grow_zeros);
        ssize_t w = pwrite(fd, grow_zeros, n, (off_t)end);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0 && (errno == ENOSPC || errno == EDQUOT)) {
            return STORE_ENOSPC;
        }
        if (w <= 0) {
            return STORE_EIO;
        }
        end += (uint64_t)w;
        s->grown_to = end;
    }
    return 0;
}

void store_close(struct store *s)
{
    unsigned int flags = 0;

    if (s == NULL) {
        return;
    }
    if (mdb_env_get_flags(s->env, &flags) == 0 && (flags & MDB_NOMETASYNC)) {
        (void)mdb_env_sync(s->env, 1); /* the last commit's meta page */
    }
    mdb_env_close(s->env);
    if (s->lock_fd != -1) {
        close(s->lock_fd); /* releases the flock */
    }
    store__free(s->dir);
    store__free(s);
}

uint64_t store_incarnation(const struct store *s)
{
    return s->incarnation;
}

int store_incarnation_bump(struct store *s)
{
    struct store_txn *txn;
    int rv = store_txn_begin(s, true, &txn);

    if (rv != 0) {
        return rv;
    }
    rv = store__meta_put_u64(txn, META_INCARNATION, s->incarnation + 1);
    if (rv != 0) {
        store_txn_abort(txn);
        return rv;
    }
    rv = store_txn_commit(txn);
    if (rv == 0) {
        rv = store_sync(s);
    }
    if (rv == 0) {
        s->incarnation++;
    }
    return rv;
}

uint64_t store_node_id(const struct store *s)
{
    return s->node_id;
}

bool store_is_new(const struct store *s)
{
    return s->is_new;
}

bool store_is_joiner(const struct store *s)
{
    return s->joiner;
}

size_t store_cluster_name(const struct store *s, char *out)
{
    memcpy(out, s->cluster, s->cluster_len + 1);
    return s->cluster_len;
}
