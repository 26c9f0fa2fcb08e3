/* SPDX-License-Identifier: BSD-3-Clause
 * storage/txn.c - transactions, and the get/put/del helpers every table
 * uses.
 *
 * Why it is shaped this way: one place maps LMDB codes and keeps the
 * scratch buffer records are built in, so the table code stays about
 * records. A failed put poisons the LMDB transaction (MDB_TXN_ERROR); the
 * caller must abort, and the contracts in store.h say so.
 *
 * Not here: opening the environment (env.c).
 */
#include "storage/internal.h"

int store_txn_begin(struct store *s, bool write, struct store_txn **out)
{
    struct store_txn *txn;
    int rc;

    txn = store__malloc(sizeof(*txn));
    if (txn == NULL) {
        return STORE_ENOMEM;
    }
    memset(txn, 0, sizeof(*txn));
    txn->s = s;
    txn->write = write;
    rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &txn->txn);
    if (rc != 0) {
        store__errmsgf(s, "begin %s transaction: %s", write ? "write" : "read",
                       mdb_strerror(rc));
        store__free(txn);
        rc = store__mdb_err(rc);
        return rc == STORE_ENOMEM ? rc : STORE_EIO;
    }
    *out = txn;
    return 0;
}

static void txn_free(struct store_txn *txn)
{
    store__free(txn->scratch);
    store__free(txn);
}

int store_txn_commit(struct store_txn *txn)
{
    struct store *s = txn->s;
    int rc;
    int rv;

    rc = mdb_txn_commit(txn->txn);
    if (rc == 0 && txn->new_cluster_len > 0) {
        memcpy(s->cluster, txn->new_cluster, txn->new_cluster_len + 1);
        s->cluster_len = txn->new_cluster_len;
    }
    txn_free(txn);
    if (rc == 0) {
        return 0;
    }
    store__errmsgf(s, "commit: %s", mdb_strerror(rc));
    rv = store__mdb_err(rc);
    return rv == STORE_ENOSPC || rv == STORE_ENOMEM ? rv : STORE_EIO;
}

void store_txn_abort(struct store_txn *txn)
{
    if (txn == NULL) {
        return;
    }
    mdb_txn_abort(txn->txn);
    txn_free(txn);
}

MDB_dbi store__dbi(struct store_txn *txn, enum store__db db)
{
    return txn->s->dbi[db];
}

int store__scratch(struct store_txn *txn, size_t n)
{
    return STORE__ARRAY_RESERVE(txn->scratch, txn->scratch_cap, n);
}

int store__get(struct store_txn *txn, enum store__db db, const void *key,
               size_t key_len, MDB_val *val)
{
    MDB_val k;
    int rc;

    k.mv_data = (void *)(uintptr_t)key;
    k.mv_size = key_len;
    rc = mdb_get(txn->txn, txn->s->dbi[db], &k, val);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        store__errmsgf(txn->s, "get: %s", mdb_strerror(rc));
    }
    return store__mdb_err(rc);
}

int store__put(struct store_txn *txn, enum store__db db, const void *key,
               size_t key_len, const void *val, size_t val_len, unsigned flags)
{
    MDB_val k;
    MDB_val v;
    int rc;

    k.mv_data = (void *)(uintptr_t)key;
    k.mv_size = key_len;
    v.mv_data = (void *)(uintptr_t)val;
    v.mv_size = val_len;
    rc = mdb_put(txn->txn, txn->s->dbi[db], &k, &v, flags);
    if (rc != 0) {
        store__errmsgf(txn->s, "put: %s", mdb_strerror(rc));
    }
    return store__mdb_err(rc);
}

/* Opens a cursor on db and puts it on the first key >= start (start
 * NULL: the first record). Returns 0 with *cur open (the caller closes
 * it) and *rc the LMDB code of that first get, or the mapped failure to
 * open. */
static int cursor_at(struct store_txn *txn, enum store__db db,
                     const void *start, size_t start_len, MDB_cursor **cur,
                     MDB_val *k, MDB_val *v, int *rc)
{
    int oc;

    oc = mdb_cursor_open(txn->txn, store__dbi(txn, db), cur);
    if (oc != 0) {
        return store__mdb_err(oc);
    }
    k->mv_data = (void *)(uintptr_t)start;
    k->mv_size = start_len;
    *rc = mdb_cursor_get(*cur, k, v, start == NULL ? MDB_FIRST : MDB_SET_RANGE);
    return 0;
}

int store__walk(struct store_txn *txn, enum store__db db, const void *start,
                size_t start_len, store__walk_fn fn, void *arg)
{
    MDB_cursor *cur;
    MDB_val k;
    MDB_val v;
    int rc = MDB_NOTFOUND;
    int rv;

    rv = cursor_at(txn, db, start, start_len, &cur, &k, &v, &rc);
    if (rv != 0) {
        return rv;
    }
    while (rc == 0) {
        rv = fn(arg, &k, &v);
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

int store__del_while(struct store_txn *txn, enum store__db db,
                     const void *start, size_t start_len,
                     store__key_pred_fn doomed, const void *arg)
{
    MDB_cursor *cur;
    MDB_val k;
    MDB_val v;
    int rc = MDB_NOTFOUND;
    int rv;

    rv = cursor_at(txn, db, start, start_len, &cur, &k, &v, &rc);
    if (rv != 0) {
        return rv;
    }
    while (rc == 0 && doomed(arg, &k)) {
        rc = mdb_cursor_del(cur, 0);
        if (rc == 0) {
            /* After a delete LMDB's cursor already sits on the next item
             * and MDB_NEXT returns that item. */
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
    }
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : store__mdb_err(rc);
}

int store__del(struct store_txn *txn, enum store__db db, const void *key,
               size_t key_len)
{
    MDB_val k;
    int rc;

    k.mv_data = (void *)(uintptr_t)key;
    k.mv_size = key_len;
    rc = mdb_del(txn->txn, txn->s->dbi[db], &k, NULL);
    if (rc == MDB_NOTFOUND) {
        return 0;
    }
    if (rc != 0) {
        store__errmsgf(txn->s, "del: %s", mdb_strerror(rc));
    }
    return store__mdb_err(rc);
}
