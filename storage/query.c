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

/* Fills *out (zeroed by the caller) from job num; when there is no such
 * job, returns missing_rv and leaves *out "unknown". */
static int status_load(struct store_txn *txn, uint64_t num, int missing_rv,
                       struct store_job_status *out)
{
    struct store__job j;
    int rv;

    store__job_init(&j);
    rv = store__job_load(txn, num, &j);
    if (rv == 0) {
        status_of(&j, out);
    } else if (rv == STORE_ENOTFOUND) {
        rv = missing_rv;
    }
    store__job_close(&j);
    return rv;
}

int store_job_status(struct store_txn *txn, struct store_buf handle,
                     struct store_job_status *out)
{
    uint64_t num;

    memset(out, 0, sizeof(*out));
    if (!store__handle_parse(txn->s, handle, &num)) {
        return 0;
    }
    return status_load(txn, num, 0, out);
}

struct unique_arg {
    struct store_txn *txn;
    struct store_buf unique;
    uint64_t num;
};

/* For one function (a key of the function table): the job of this unique,
 * if any, stops the walk. */
static int unique_in_function(void *arg, const MDB_val *k, const MDB_val *v)
{
    struct unique_arg *a = arg;
    uint8_t ukey[STORE__UNIQ_KEY_MAX];
    struct store_buf fn;
    struct store_buf none = {NULL, 0};
    MDB_val found;
    size_t n;
    int rv;

    (void)v;
    if (k->mv_size == 0 || k->mv_size > STORE_FUNCTION_MAX) {
        return STORE_ECORRUPT;
    }
    fn.base = k->mv_data;
    fn.len = k->mv_size;
    n = store__uniq_key(ukey, fn, a->unique, none, false);
    rv = store__get(a->txn, STORE__DB_UNIQ, ukey, n, &found);
    if (rv == STORE_ENOTFOUND) {
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    if (found.mv_size != 8) {
        return STORE_ECORRUPT;
    }
    a->num = store__get64(found.mv_data);
    return STORE__WALK_STOP;
}

int store_job_status_unique(struct store_txn *txn, struct store_buf unique,
                            struct store_job_status *out)
{
    struct unique_arg a;
    int rv;

    memset(out, 0, sizeof(*out));
    if (unique.len == 0 || unique.len > STORE_UNIQUE_MAX) {
        return 0;
    }
    a.txn = txn;
    a.unique = unique;
    a.num = 0;
    /* The first function in name order with a job of this unique (with
     * one such job, the usual case, it is the one): one lookup in the
     * unique index per function, which keeps that index to one entry per
     * job - a second index by unique cost every submission a B-tree path
     * more to write (docs/benchmarks.md). */
    rv = store__walk(txn, STORE__DB_FUNCS, NULL, 0, unique_in_function, &a);
    if (rv != STORE__WALK_STOP) {
        return rv; /* 0: no function has it */
    }
    /* The index points at no job: STORE_ECORRUPT. */
    return status_load(txn, a.num, STORE_ECORRUPT, out);
}

int store_has_runnable(struct store_txn *txn, const struct store_buf *functions,
                       size_t n_functions, uint64_t now_ms, bool *out)
{
    uint64_t num = 0;
    int rv = store__pick_runnable(txn, functions, n_functions, now_ms, NULL,
                                  NULL, &num);

    *out = num != 0;
    return rv;
}

size_t store_handle_format(const struct store *s, uint64_t num, char *out,
                           size_t out_len)
{
    return store__handle_format(s, num, out, out_len);
}

int store_pick_job(struct store_txn *txn, const struct store_buf *functions,
                   size_t n_functions, uint64_t now_ms, store_skip_fn skip,
                   void *skip_arg, store_view_fn fn, void *arg, bool *found)
{
    char handle[STORE_HANDLE_MAX];
    struct store_job_view v;
    struct store__job j;
    uint64_t num = 0;
    int rv;

    *found = false;
    rv = store__pick_runnable(txn, functions, n_functions, now_ms, skip,
                              skip_arg, &num);
    if (rv != 0 || num == 0) {
        return rv;
    }
    store__job_init(&j);
    rv = store__job_load(txn, num, &j);
    if (rv == STORE_ENOTFOUND) {
        rv = STORE_ECORRUPT; /* the ready queue points at no job */
    }
    if (rv == 0) {
        rv = store__job_data(txn, &j, &v.data);
    }
    if (rv == 0) {
        v.num = num;
        v.prio = j.prio;
        v.n_waiters = j.n_waiters;
        if (j.n_waiters > 0) {
            v.waiter = j.waiters[0];
        } else {
            memset(&v.waiter, 0, sizeof(v.waiter));
        }
        v.handle.len =
            store__handle_format(txn->s, num, handle, sizeof(handle));
        v.handle.base = (const uint8_t *)handle;
        v.function = j.function;
        v.unique = j.unique;
        v.reducer = j.reducer;
        *found = true;
        rv = fn(arg, &v);
    }
    store__job_close(&j);
    return rv;
}

/* The first key of the due table is "when | job": takes its when. */
static int due_first(void *arg, const MDB_val *k, const MDB_val *v)
{
    uint64_t *when = arg;

    (void)v;
    if (k->mv_size != 16) {
        return STORE_ECORRUPT;
    }
    *when = store__get64(k->mv_data);
    return STORE__WALK_STOP;
}

int store_next_due(struct store_txn *txn, uint64_t now_ms, uint64_t *out)
{
    uint8_t start[16];
    uint64_t when = 0;
    int rv;

    /* Due at `when` seconds means runnable once now_ms / 1000 >= when. */
    store__put64(start, now_ms / 1000u + 1u);
    store__put64(start + 8, 0);
    rv =
        store__walk(txn, STORE__DB_DUE, start, sizeof(start), due_first, &when);
    if (rv != 0 && rv != STORE__WALK_STOP) {
        return rv;
    }
    *out = when > UINT64_MAX / 1000u ? UINT64_MAX : when * 1000u;
    return 0;
}

struct funcs_arg {
    store_func_fn fn;
    void *arg;
};

static int funcs_one(void *arg, const MDB_val *k, const MDB_val *v)
{
    struct funcs_arg *a = arg;
    struct store_func_info info;
    struct store__func f;
    int rv;
    int i;

    rv = store__func_decode(v, &f);
    if (rv != 0) {
        return rv;
    }
    info.name.base = k->mv_data;
    info.name.len = k->mv_size;
    for (i = 0; i < STORE_PRIO_COUNT; i++) {
        info.queued[i] = f.queued[i];
        info.maxqueue[i] = f.maxqueue[i];
    }
    info.running = f.running;
    return a->fn(a->arg, &info);
}

int store_funcs_walk(struct store_txn *txn, store_func_fn fn, void *arg)
{
    struct funcs_arg a = {fn, arg};

    return store__walk(txn, STORE__DB_FUNCS, NULL, 0, funcs_one, &a);
}

struct jobs_arg {
    struct store_txn *txn;
    struct store__job j; /* reused for every job of the walk */
    store_job_fn fn;
    void *arg;
};

static int jobs_one(void *arg, const MDB_val *k, const MDB_val *v)
{
    struct jobs_arg *a = arg;
    char h[STORE_HANDLE_MAX];
    struct store_job_info info;
    int rv;

    (void)v;
    if (k->mv_size != 8) {
        return STORE_ECORRUPT;
    }
    /* A second lookup of the same key: it reuses the decoder and its
     * CRC check; the walk is for admin commands, not a hot path. */
    rv = store__job_load(a->txn, store__get64(k->mv_data), &a->j);
    if (rv != 0) {
        return rv;
    }
    info.handle.len = store__handle_format(a->txn->s, a->j.num, h, sizeof(h));
    info.handle.base = (const uint8_t *)h;
    info.function = a->j.function;
    info.unique = a->j.unique;
    info.retries = a->j.retries;
    info.running = (a->j.flags & STORE__JOB_RUNNING) != 0;
    info.background = (a->j.flags & STORE__JOB_BG) != 0;
    info.ignore = (a->j.flags & STORE__JOB_IGNORE) != 0;
    info.prio = a->j.prio;
    return a->fn(a->arg, &info);
}

int store_jobs_walk(struct store_txn *txn, store_job_fn fn, void *arg)
{
    struct jobs_arg a;
    int rv;

    a.txn = txn;
    a.fn = fn;
    a.arg = arg;
    store__job_init(&a.j);
    rv = store__walk(txn, STORE__DB_JOBS, NULL, 0, jobs_one, &a);
    store__job_close(&a.j);
    return rv;
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
