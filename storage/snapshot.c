/* SPDX-License-Identifier: BSD-3-Clause
 * storage/snapshot.c - the queue tables as one byte stream: dumped from
 * one read transaction, loaded into one write transaction.
 *
 * Why it is shaped this way: a follower that is too far behind, or was
 * wiped, gets the leader's state instead of the log (docs/DESIGN.md,
 * "Storage"). LMDB's MVCC gives a consistent view from one short read
 * transaction while writes go on. The stream copies records byte for byte,
 * so each job and log record keeps its own CRC32C, and the whole stream
 * carries one more CRC32C at its end: a damaged or truncated transfer is
 * refused before the loading transaction commits. Stream layout:
 *
 *     "GRSNAP\0\0" | u32 version | u32 cluster_len | u64 applied index |
 *     cluster | records... | u8 0xff | u32 crc32c of everything before
 *     record = u8 table | u32 key_len | u32 val_len | key | val
 *
 * Tables come in enum store__db order and keys in LMDB order, so loading
 * appends (MDB_APPEND). Checklist: a new table or field is a SNAP_VERSION
 * bump; old versions stay readable or are refused with STORE_EVERSION.
 *   1: the queue tables and the replay table.
 *   2: the member table too (members.c), so that a node that joins by a
 *      snapshot learns every member's name and address. A version 1
 *      stream still loads and leaves the member table as it was.
 *
 * Not here: sending the stream in chunks (node/), the Raft snapshot
 * metadata (raft/).
 */
#include "storage/internal.h"

#define SNAP_MAGIC   "GRSNAP\0\0"
#define SNAP_VERSION 2u
#define SNAP_END     0xffu
#define SNAP_HDR     24u

/* The tables a snapshot carries, and the stream version that brought
 * each: the queue state, the replay table and the member table, not the
 * log, the hard state or this node's id - nor `uniqs`, empty since
 * on-disk format 2 (a stream never held records of it, and one that does
 * is refused). */
static const struct {
    enum store__db db;
    uint32_t since;
} snap_dbs[] = {
    {STORE__DB_JOBS, 1},    {STORE__DB_JDATA, 1},  {STORE__DB_READY, 1},
    {STORE__DB_UNIQ, 1},    {STORE__DB_ASSIGN, 1}, {STORE__DB_WAITS, 1},
    {STORE__DB_DUE, 1},     {STORE__DB_FUNCS, 1},  {STORE__DB_DEDUPE, 1},
    {STORE__DB_MEMBERS, 2},
};
#define N_SNAP_DBS (sizeof(snap_dbs) / sizeof(snap_dbs[0]))

/* True if a stream of `version` carries table db. */
static bool is_snap_db(unsigned db, uint32_t version)
{
    size_t i;

    for (i = 0; i < N_SNAP_DBS; i++) {
        if ((unsigned)snap_dbs[i].db == db) {
            return snap_dbs[i].since <= version;
        }
    }
    return false;
}

struct out {
    store_snap_write_fn fn;
    void *arg;
    uint32_t crc;
};

static int emit(struct out *o, const void *buf, size_t len)
{
    o->crc = store__crc32c(o->crc, buf, len);
    return o->fn(o->arg, buf, len);
}

struct dump_arg {
    enum store__db db;
    struct out *o;
};

/* One record: db (1 byte), key and value lengths (4 bytes each, big
 * endian), key, value. */
static int dump_one(void *arg, const MDB_val *k, const MDB_val *v)
{
    struct dump_arg *a = arg;
    uint8_t rec[9];
    int rv;

    if (v->mv_size > UINT32_MAX) {
        return STORE_ECORRUPT;
    }
    rec[0] = (uint8_t)a->db;
    store__put32(rec + 1, (uint32_t)k->mv_size);
    store__put32(rec + 5, (uint32_t)v->mv_size);
    rv = emit(a->o, rec, sizeof(rec));
    if (rv == 0) {
        rv = emit(a->o, k->mv_data, k->mv_size);
    }
    if (rv == 0 && v->mv_size > 0) {
        rv = emit(a->o, v->mv_data, v->mv_size);
    }
    return rv;
}

static int dump_db(struct store_txn *txn, enum store__db db, struct out *o)
{
    struct dump_arg a = {db, o};

    return store__walk(txn, db, NULL, 0, dump_one, &a);
}

int store_snap_write(struct store *s, store_snap_write_fn fn, void *arg,
                     uint64_t *index)
{
    struct store_txn *txn;
    struct out o = {fn, arg, 0};
    uint8_t hdr[SNAP_HDR];
    uint8_t tail[5];
    uint64_t applied;
    size_t i;
    int rv;

    rv = store_txn_begin(s, false, &txn);
    if (rv != 0) {
        return rv;
    }
    rv = store_applied_index(txn, &applied);
    if (rv != 0) {
        goto out;
    }
    memcpy(hdr, SNAP_MAGIC, 8);
    store__put32(hdr + 8, SNAP_VERSION);
    store__put32(hdr + 12, (uint32_t)s->cluster_len);
    store__put64(hdr + 16, applied);
    rv = emit(&o, hdr, sizeof(hdr));
    if (rv == 0) {
        rv = emit(&o, s->cluster, s->cluster_len);
    }
    for (i = 0; rv == 0 && i < N_SNAP_DBS; i++) {
        rv = dump_db(txn, snap_dbs[i].db, &o);
    }
    if (rv == 0) {
        tail[0] = SNAP_END;
        o.crc = store__crc32c(o.crc, tail, 1);
        store__put32(tail + 1, o.crc);
        rv = fn(arg, tail, sizeof(tail));
    }
    if (rv == 0 && index != NULL) {
        *index = applied;
    }
out:
    store_txn_abort(txn);
    return rv;
}

/* FNV-1a 64, continued over each piece of the stream. */
static int digest_more(void *arg, const void *buf, size_t len)
{
    uint64_t *h = arg;
    const uint8_t *p = buf;
    size_t i;

    for (i = 0; i < len; i++) {
        *h ^= p[i];
        *h *= 0x100000001b3u;
    }
    return 0;
}

int store_digest(struct store *s, uint64_t *index, uint64_t *digest)
{
    uint64_t h = 0xcbf29ce484222325u;
    int rv = store_snap_write(s, digest_more, &h, index);

    if (rv == 0) {
        *digest = h;
    }
    return rv;
}

struct in {
    store_snap_read_fn fn;
    void *arg;
    uint32_t crc;
    uint32_t version; /* the stream's */
};

static int take(struct in *in, void *buf, size_t len)
{
    int rv;

    if (len == 0) {
        return 0;
    }
    rv = in->fn(in->arg, buf, len);
    if (rv != 0) {
        return rv;
    }
    in->crc = store__crc32c(in->crc, buf, len);
    return 0;
}

static int load_record(struct store_txn *txn, struct in *in, unsigned db,
                       uint32_t klen, uint32_t vlen)
{
    uint8_t key[512];
    MDB_val k;
    MDB_val v;
    int rc;
    int rv;

    if (!is_snap_db(db, in->version) || klen == 0 || klen > sizeof(key) ||
        (int)klen > mdb_env_get_maxkeysize(txn->s->env)) {
        return STORE_EMALFORMED;
    }
    rv = take(in, key, klen);
    if (rv != 0) {
        return rv;
    }
    k.mv_data = key;
    k.mv_size = klen;
    v.mv_data = NULL;
    v.mv_size = vlen;
    /* Reserve the value and read straight into it: a large payload is
     * never held twice in memory. */
    rc = mdb_put(txn->txn, store__dbi(txn, (enum store__db)db), &k, &v,
                 MDB_APPEND | MDB_RESERVE);
    if (rc == MDB_KEYEXIST) {
        return STORE_EMALFORMED; /* out of order or repeated */
    }
    if (rc != 0) {
        store__errmsgf(txn->s, "snapshot load: %s", mdb_strerror(rc));
        return store__mdb_err(rc);
    }
    return take(in, v.mv_data, vlen);
}

/* The stream's header and cluster name (NUL-terminated into cluster). */
static int read_header(struct in *in, char *cluster, uint32_t *cluster_len,
                       uint64_t *applied)
{
    uint8_t hdr[SNAP_HDR];
    int rv = take(in, hdr, sizeof(hdr));

    if (rv != 0) {
        return rv;
    }
    if (memcmp(hdr, SNAP_MAGIC, 8) != 0) {
        return STORE_EMALFORMED;
    }
    in->version = store__get32(hdr + 8);
    if (in->version < 1 || in->version > SNAP_VERSION) {
        return STORE_EVERSION;
    }
    *cluster_len = store__get32(hdr + 12);
    *applied = store__get64(hdr + 16);
    if (*cluster_len == 0 || *cluster_len > STORE_CLUSTER_MAX) {
        return STORE_EMALFORMED;
    }
    rv = take(in, cluster, *cluster_len);
    if (rv != 0) {
        return rv;
    }
    cluster[*cluster_len] = '\0';
    if (memchr(cluster, ':', *cluster_len) != NULL ||
        memchr(cluster, '\0', *cluster_len) != NULL) {
        return STORE_EMALFORMED;
    }
    return 0;
}

/* Empties the tables the stream carries, then loads its records up to
 * the end mark. */
static int read_records(struct store_txn *txn, struct in *in)
{
    uint8_t rec[9];
    size_t i;
    int rc;
    int rv;

    for (i = 0; i < N_SNAP_DBS; i++) {
        if (!is_snap_db(snap_dbs[i].db, in->version)) {
            continue;
        }
        rc = mdb_drop(txn->txn, store__dbi(txn, snap_dbs[i].db), 0);
        if (rc != 0) {
            return store__mdb_err(rc);
        }
    }
    for (;;) {
        rv = take(in, rec, 1);
        if (rv != 0 || rec[0] == SNAP_END) {
            return rv;
        }
        rv = take(in, rec + 1, 8);
        if (rv == 0) {
            rv = load_record(txn, in, rec[0], store__get32(rec + 1),
                             store__get32(rec + 5));
        }
        if (rv != 0) {
            return rv;
        }
    }
}

int store_snap_read(struct store_txn *txn, store_snap_read_fn fn, void *arg,
                    uint64_t *index)
{
    struct in in = {fn, arg, 0, 0};
    uint8_t crc[4];
    char cluster[STORE_CLUSTER_MAX + 1];
    uint32_t cluster_len;
    uint64_t applied;
    int rv;

    if (!txn->write) {
        return STORE_EINVAL;
    }
    rv = read_header(&in, cluster, &cluster_len, &applied);
    if (rv == 0) {
        rv = read_records(txn, &in);
    }
    if (rv == 0) {
        rv = fn(arg, crc, sizeof(crc));
    }
    if (rv != 0) {
        return rv;
    }
    if (store__get32(crc) != in.crc) {
        store__errmsgf(txn->s, "snapshot load: checksum mismatch");
        return STORE_EMALFORMED;
    }
    /* The cluster name is cluster-wide state: handles must read the same
     * on every node, so the loading node adopts it. */
    rv = store__put(txn, STORE__DB_META, "cluster", 7, cluster, cluster_len, 0);
    if (rv == 0) {
        rv = store__meta_put_u64(txn, "applied", applied);
    }
    if (rv != 0) {
        return rv;
    }
    txn->applied_known = true;
    txn->applied = applied;
    /* Takes effect in memory when the txn commits (txn.c). */
    memcpy(txn->new_cluster, cluster, cluster_len + 1);
    txn->new_cluster_len = cluster_len;
    if (index != NULL) {
        *index = applied;
    }
    return 0;
}
