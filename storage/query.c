/* SPDX-License-Identifier: BSD-3-Clause
 * storage/query.c - read-only questions node/ asks: job status by handle
 * or unique, runnable and due checks for worker wake-ups, the walks behind
 * the admin protocol, and space statistics.
 *
 * Why it is shaped this way: these run on every GET_STATUS and PRE_SLEEP,
 * so each is one key lookup or one short cursor range (the indexes of
 * jobs.c); only the admin walks visit every function or job, and they do
 * so in key order from one read transaction.
 *
 * Not here: anything that changes state (apply.c).
 */
#include <sys/statvfs.h>

#include "storage/internal.h"

static void status_of(const struct store__job *j, struct store_job_status *out)
{
    out->known = true;
    out->running = (j->flags & STORE__JOB_RUNNING) != 0;
    out->numerator = j->numerator;
    out->denominator = j->denominator;
    out->n_waiting = j->n_waiters;
}

int store_job_status(struct store_txn *txn, struct store_buf handle,
                     struct store_job_status *out)
{
    struct store__job j;
    uint64_t num;
    int rv;

    memset(out, 0, sizeof(*out));
    if (!store__handle_parse(txn->s, handle, &num)) {
        return 0;
    }
    store__job_init(&j);
    rv = store__job_load(txn, num, &j);
    if (rv == 0) {
        status_of(&j, out);
    } else if (rv == STORE_ENOTFOUND) {
        rv = 0;
    }
    store__job_close(&j);
    return rv;
}

int store_job_status_unique(struct store_txn *txn, struct store_buf unique,
                            struct store_job_status *out)
{
    uint8_t prefix[STORE_UNIQUE_MAX + 1];
    struct store__job j;
    MDB_cursor *cur;
    MDB_val k;
    MDB_val v;
    uint64_t num = 0;
    int rc;
    int rv;

    memset(out, 0, sizeof(*out));
    if (unique.len == 0 || unique.len > STORE_UNIQUE_MAX) {
        return 0;
    }
    memcpy(prefix, unique.base, unique.len);
    prefix[unique.len] = 0;
    rc = mdb_cursor_open(txn->txn, store__dbi(txn, STORE__DB_UNIQS), &cur);
    if (rc != 0) {
        return store__mdb_err(rc);
    }
    k.mv_data = prefix;
    k.mv_size = unique.len + 1;
    /* The first function in key order with a job of this unique; with
     * one such job (the usual case) it is the one. */
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && k.mv_size > unique.len + 1 &&
        memcmp(k.mv_data, prefix, unique.len + 1) == 0 && v.mv_size == 8) {
        num = store__get64(v.mv_data);
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return store__mdb_err(rc);
    }
    if (num == 0) {
        return 0;
    }
    store__job_init(&j);
    rv = store__job_load(txn, num, &j);
    if (rv == 0) {
        status_of(&j, out);
    } else if (rv == STORE_ENOTFOUND) {
        rv = STORE_ECORRUPT; /* the index points at no job */
    }
    store__job_close(&j);
    return rv;
}

int store_has_runnable(struct store_txn *txn, const struct store_buf *functions,
                       size_t n_functions, uint64_t now_ms, bool *out)
{
    uint64_t num = 0;
    size_t i;
    int rv;

    for (i = 0; i < n_functions && num == 0; i++) {
        rv = store__find_runnable(txn, functions[i], now_ms, &num);
        if (rv != 0) {
            return rv;
        }
    }
    *out = num != 0;
    return 0;
}

int store_next_due(struct store_txn *txn, uint64_t now_ms, uint64_t *out)
{
    uint8_t start[16];
    MDB_cursor *cur;
    MDB_val k;
    MDB_val v;
    uint64_t when;
    int rc;

    /* Due at `when` seconds means runnable once now_ms / 1000 >= when. */
    store__put64(start, now_ms / 1000u + 1u);
    store__put64(start + 8, 0);
    rc = mdb_cursor_open(txn->txn, store__dbi(txn, STORE__DB_DUE), &cur);
    if (rc != 0) {
        return store__mdb_err(rc);
    }
    k.mv_data = start;
    k.mv_size = sizeof(start);
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && k.mv_size != 16) {
        mdb_cursor_close(cur);
        return STORE_ECORRUPT;
    }
    when = rc == 0 ? store__get64(k.mv_data) : 0;
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return store__mdb_err(rc);
    }
    *out = when > UINT64_MAX / 1000u ? UINT64_MAX : when * 1000u;
    return 0;
}

int store_funcs_walk(struct store_txn *txn, store_func_fn fn, void *arg)
{
    struct store_func_info info;
    struct store__func f;
    MDB_cursor *cur;
    MDB_val k;
    MDB_val v;
    int rc;
    int rv = 0;
    int i;

    rc = mdb_cursor_open(txn->txn, store__dbi(txn, STORE__DB_FUNCS), &cur);
    if (rc != 0) {
        return store__mdb_err(rc);
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
        rv = store__func_decode(&v, &f);
        if (rv != 0) {
            break;
        }
        info.name.base = k.mv_data;
        info.name.len = k.mv_size;
        for (i = 0; i < STORE_PRIO_COUNT; i++) {
            info.queued[i] = f.queued[i];
            info.maxqueue[i] = f.maxqueue[i];
        }
        info.running = f.running;
        rv = fn(arg, &info);
        if (rv != 0) {
            break;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rv != 0) {
        return rv;
    }
    return rc == MDB_NOTFOUND ? 0 : store__mdb_err(rc);
}

int store_jobs_walk(struct store_txn *txn, store_job_fn fn, void *arg)
{
    char h[STORE_HANDLE_MAX];
    struct store_job_info info;
    struct store__job j;
    MDB_cursor *cur;
    MDB_val k;
    MDB_val v;
    int rc;
    int rv = 0;

    rc = mdb_cursor_open(txn->txn, store__dbi(txn, STORE__DB_JOBS), &cur);
    if (rc != 0) {
        return store__mdb_err(rc);
    }
    store__job_init(&j);
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
        if (k.mv_size != 8) {
            rv = STORE_ECORRUPT;
            break;
        }
        /* A second lookup of the same key: it reuses the decoder and its
         * CRC check; the walk is for admin commands, not a hot path. */
        rv = store__job_load(txn, store__get64(k.mv_data), &j);
        if (rv != 0) {
            break;
        }
        info.handle.len = store__handle_format(txn->s, j.num, h, sizeof(h));
        info.handle.base = (const uint8_t *)h;
        info.function = j.function;
        info.unique = j.unique;
        info.retries = j.retries;
        info.running = (j.flags & STORE__JOB_RUNNING) != 0;
        info.background = (j.flags & STORE__JOB_BG) != 0;
        info.ignore = (j.flags & STORE__JOB_IGNORE) != 0;
        info.prio = j.prio;
        rv = fn(arg, &info);
        if (rv != 0) {
            break;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    store__job_close(&j);
    mdb_cursor_close(cur);
    if (rv != 0) {
        return rv;
    }
    return rc == MDB_NOTFOUND ? 0 : store__mdb_err(rc);
}

/* Pages on LMDB's free list (database 0): each record is a list of page
 * numbers whose first element is the count, as lmdb's mdb_stat -f reads
 * it. Those pages are reused before the map grows. */
static int free_pages(struct store_txn *txn, uint64_t *out)
{
    MDB_cursor *cur;
    MDB_val k;
    MDB_val v;
    size_t n;
    uint64_t total = 0;
    int rc;

    rc = mdb_cursor_open(txn->txn, 0, &cur);
    if (rc != 0) {
        return store__mdb_err(rc);
    }
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        if (v.mv_size >= sizeof(n)) {
            memcpy(&n, v.mv_data, sizeof(n));
            total += n;
        }
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) {
        return store__mdb_err(rc);
    }
    *out = total;
    return 0;
}

int store_stat(struct store *s, struct store_stat *st)
{
    uint64_t free_pgs = 0;
    struct store_txn *txn;
    struct statvfs vfs;
    MDB_envinfo info;
    MDB_stat ms;
    int rc;
    int rv;

    rc = mdb_env_info(s->env, &info);
    if (rc == 0) {
        rc = mdb_env_stat(s->env, &ms);
    }
    if (rc != 0) {
        store__errmsgf(s, "stat: %s", mdb_strerror(rc));
        return STORE_EIO;
    }
    memset(st, 0, sizeof(*st));
    st->map_size = info.me_mapsize;
    st->map_used = ((uint64_t)info.me_last_pgno + 1u) * ms.ms_psize;
    if (statvfs(s->dir, &vfs) == 0) {
        st->disk_free = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    }
    rv = store_txn_begin(s, false, &txn);
    if (rv != 0) {
        return rv;
    }
    rv = free_pages(txn, &free_pgs);
    if (rv == 0) {
        uint64_t free_bytes = free_pgs * ms.ms_psize;
        st->map_used -= free_bytes < st->map_used ? free_bytes : 0;
    }
    if (rv == 0) {
        rv = store_log_bounds(txn, &st->first_index, &st->last_index);
    }
    if (rv == 0) {
        rv = store_applied_index(txn, &st->applied_index);
    }
    if (rv == 0) {
        rc = mdb_stat(txn->txn, store__dbi(txn, STORE__DB_JOBS), &ms);
        if (rc != 0) {
            rv = store__mdb_err(rc);
        } else {
            st->n_jobs = ms.ms_entries;
        }
    }
    store_txn_abort(txn);
    return rv;
}
