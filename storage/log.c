/* SPDX-License-Identifier: BSD-3-Clause
 * storage/log.c - the Raft log inside LMDB.
 *
 * Keys are big-endian indexes so MDB_APPEND works and cursor order is log
 * order. Each record is
 *
 *     u32 crc32c | u8 version | u8 type | u16 zero | u64 term |
 *     u64 leader_time_ms | data
 *
 * with the CRC over everything after it, checked on every read (LMDB has
 * no checksums). Checklist for this record: a new field goes at the end
 * of the header with LOG_REC_VERSION bumped and the old version still
 * read; the key encoding never changes without STORE__FORMAT_VERSION.
 *
 * An empty log still knows where it ends: the compaction point is kept in
 * meta, so last_index survives compaction of every entry.
 *
 * Not here: hard state (hardstate.c), applying entries (apply.c).
 */
#include "storage/internal.h"

#define LOG_REC_VERSION 1u
#define LOG_HDR         24u
#define META_COMPACTED  "log_compacted"

static void key_of(uint8_t *k, uint64_t index)
{
    store__put64(k, index);
}

static int compacted(struct store_txn *txn, uint64_t *out)
{
    int rv = store__meta_get_u64(txn, META_COMPACTED, out);

    if (rv == STORE_ENOTFOUND) {
        *out = 0;
        return 0;
    }
    return rv;
}

static int edge(struct store_txn *txn, MDB_cursor_op op, uint64_t *out)
{
    MDB_cursor *cur;
    MDB_val k;
    MDB_val v;
    int rc;

    rc = mdb_cursor_open(txn->txn, store__dbi(txn, STORE__DB_LOG), &cur);
    if (rc != 0) {
        return store__mdb_err(rc);
    }
    rc = mdb_cursor_get(cur, &k, &v, op);
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND) {
        *out = 0;
        return 0;
    }
    if (rc != 0) {
        return store__mdb_err(rc);
    }
    if (k.mv_size != 8) {
        return STORE_ECORRUPT;
    }
    *out = store__get64(k.mv_data);
    return 0;
}

int store_log_bounds(struct store_txn *txn, uint64_t *first, uint64_t *last)
{
    uint64_t f = 0;
    uint64_t l = 0;
    int rv;

    rv = edge(txn, MDB_FIRST, &f);
    if (rv == 0) {
        rv = edge(txn, MDB_LAST, &l);
    }
    if (rv == 0 && f == 0) {
        rv = compacted(txn, &l);
    }
    if (rv != 0) {
        return rv;
    }
    *first = f;
    *last = l;
    return 0;
}

/* Checks that index may come next and reserves its record of
 * LOG_HDR + data_len bytes inside LMDB (MDB_RESERVE: the caller writes
 * the data in place, saving a copy of possibly large payloads). */
static int log_reserve(struct store_txn *txn, uint64_t index, size_t data_len,
                       uint8_t **rec)
{
    uint64_t first;
    uint64_t last;
    uint8_t key[8];
    MDB_val k;
    MDB_val v;
    int rc;
    int rv;

    if (!txn->write || index == 0 || data_len > SIZE_MAX - LOG_HDR) {
        return STORE_EINVAL;
    }
    if (txn->log_last_known) {
        first = 1; /* not empty: the last append made it so */
        last = txn->log_last;
    } else {
        rv = store_log_bounds(txn, &first, &last);
        if (rv != 0) {
            return rv;
        }
    }
    if (first != 0 && index != last + 1) {
        store__errmsgf(txn->s, "log append %llu: last is %llu",
                       (unsigned long long)index, (unsigned long long)last);
        return STORE_EINVAL;
    }
    if (first == 0 && index <= last) {
        /* Below the compaction point: those indexes are gone for good. */
        return STORE_EINVAL;
    }
    key_of(key, index);
    k.mv_data = key;
    k.mv_size = sizeof(key);
    v.mv_data = NULL;
    v.mv_size = LOG_HDR + data_len;
    rc = mdb_put(txn->txn, store__dbi(txn, STORE__DB_LOG), &k, &v,
                 MDB_APPEND | MDB_RESERVE);
    if (rc != 0) {
        store__errmsgf(txn->s, "log append %llu: %s", (unsigned long long)index,
                       mdb_strerror(rc));
        return store__mdb_err(rc);
    }
    *rec = v.mv_data;
    return 0;
}

/* Writes the header and the CRC of a record whose data is in place. */
static void log_seal(struct store_txn *txn, const struct store_entry *e,
                     uint8_t *p, size_t data_len)
{
    p[4] = LOG_REC_VERSION;
    p[5] = (uint8_t)e->type;
    p[6] = 0;
    p[7] = 0;
    store__put64(p + 8, e->term);
    store__put64(p + 16, e->leader_time_ms);
    store__put32(p, store__crc32c(0, p + 4, LOG_HDR - 4 + data_len));
    txn->log_last_known = true;
    txn->log_last = e->index;
}

int store_log_append(struct store_txn *txn, const struct store_entry *e)
{
    uint8_t *p;
    int rv;

    if (e->data.len > 0 && e->data.base == NULL) {
        return STORE_EINVAL;
    }
    rv = log_reserve(txn, e->index, e->data.len, &p);
    if (rv != 0) {
        return rv;
    }
    if (e->data.len > 0) {
        memcpy(p + LOG_HDR, e->data.base, e->data.len);
    }
    log_seal(txn, e, p, e->data.len);
    return 0;
}

struct cmd_slot {
    struct store_txn *txn;
    uint64_t index;
    uint8_t *rec;
    size_t len;
};

static uint8_t *reserve_in_log(void *arg, size_t len, int *rv)
{
    struct cmd_slot *slot = arg;

    *rv = log_reserve(slot->txn, slot->index, len, &slot->rec);
    if (*rv != 0) {
        return NULL;
    }
    slot->len = len;
    return slot->rec + LOG_HDR;
}

int store_log_append_cmd(struct store_txn *txn, const struct store_entry *e,
                         const struct store_cmd *cmd)
{
    struct cmd_slot slot = {txn, e->index, NULL, 0};
    struct store_entry hdr = *e;
    int rv;

    rv = store__cmd_encode_to(cmd, reserve_in_log, &slot);
    if (rv != 0) {
        return rv;
    }
    hdr.type = STORE_ENTRY_COMMAND;
    log_seal(txn, &hdr, slot.rec, slot.len);
    return 0;
}

int store_log_get(struct store_txn *txn, uint64_t index,
                  struct store_entry *out)
{
    uint8_t key[8];
    MDB_val v;
    const uint8_t *p;
    int rv;

    key_of(key, index);
    rv = store__get(txn, STORE__DB_LOG, key, sizeof(key), &v);
    if (rv != 0) {
        return rv;
    }
    p = v.mv_data;
    if (v.mv_size < LOG_HDR ||
        store__crc32c(0, p + 4, v.mv_size - 4) != store__get32(p) ||
        p[4] != LOG_REC_VERSION || p[5] < STORE_ENTRY_COMMAND ||
        p[5] > STORE_ENTRY_CONFIG) {
        store__errmsgf(txn->s, "log entry %llu: checksum or header mismatch",
                       (unsigned long long)index);
        return STORE_ECORRUPT;
    }
    out->index = index;
    out->type = (enum store_entry_type)p[5];
    out->term = store__get64(p + 8);
    out->leader_time_ms = store__get64(p + 16);
    out->data.base = p + LOG_HDR;
    out->data.len = v.mv_size - LOG_HDR;
    return 0;
}

static bool any_key(const void *arg, const MDB_val *k)
{
    (void)arg;
    (void)k;
    return true;
}

int store_log_truncate(struct store_txn *txn, uint64_t from)
{
    uint8_t key[8];

    if (!txn->write) {
        return STORE_EINVAL;
    }
    txn->log_last_known = false;
    key_of(key, from);
    return store__del_while(txn, STORE__DB_LOG, key, sizeof(key), any_key,
                            NULL);
}

/* Index keys up to *arg; a malformed key stops the deletion. */
static bool key_upto(const void *arg, const MDB_val *k)
{
    const uint64_t *upto = arg;

    return k->mv_size == 8 && store__get64(k->mv_data) <= *upto;
}

int store_log_compact(struct store_txn *txn, uint64_t upto)
{
    uint64_t old;
    int rv;

    if (!txn->write) {
        return STORE_EINVAL;
    }
    txn->log_last_known = false;
    rv = compacted(txn, &old);
    if (rv != 0) {
        return rv;
    }
    if (upto <= old) {
        return 0;
    }
    rv = store__del_while(txn, STORE__DB_LOG, NULL, 0, key_upto, &upto);
    if (rv != 0) {
        return rv;
    }
    return store__meta_put_u64(txn, META_COMPACTED, upto);
}
