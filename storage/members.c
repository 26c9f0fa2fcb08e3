/* SPDX-License-Identifier: BSD-3-Clause
 * storage/members.c - the member table: each member's Raft id, name and
 * peer address.
 *
 * Why it is shaped this way: a member's id is all raft/ knows of it, and
 * its configuration (the snapshot meta, config entries) holds ids only;
 * this table says whom an id names and where its peers dial it, so a
 * node that restarts without --initial-cluster, or joins by a snapshot,
 * still knows every member. One record per member keyed by its id (big
 * endian, so the table walks in id order) lets a membership change put
 * or delete one row, and lets the snapshot stream carry the table like
 * any other (snapshot.c). Record:
 *
 *     u32 crc32c of bytes 4.. | u8 version | u8 name_len | u8 host_len |
 *     u8 0 | u16 port | name | host
 *
 * Checklist: a new field goes after the host with RECORD_VERSION bumped,
 * and version 1 records stay readable; the snapshot stream copies the
 * records as they are, so a record older builds cannot read is a
 * snapshot version bump too (snapshot.c).
 *
 * Not here: choosing ids and parsing addresses (node/cluster/members.c),
 * the bootstrap that writes the table first (env.c).
 */
#include "storage/internal.h"

#define RECORD_VERSION 1u
#define RECORD_HDR     10u

static bool member_is_valid(const struct store_member *m)
{
    size_t name_len = strnlen(m->name, sizeof(m->name));
    size_t host_len = strnlen(m->host, sizeof(m->host));

    return m->id != 0 && name_len > 0 && name_len <= STORE_NODE_NAME_MAX &&
           host_len > 0 && host_len <= STORE_HOST_MAX && m->port != 0;
}

static int decode(const MDB_val *k, const MDB_val *v, struct store_member *out)
{
    const uint8_t *p = v->mv_data;
    size_t name_len;
    size_t host_len;

    if (k->mv_size != 8 || v->mv_size < RECORD_HDR ||
        store__crc32c(0, p + 4, v->mv_size - 4) != store__get32(p) ||
        p[4] != RECORD_VERSION) {
        return STORE_ECORRUPT;
    }
    name_len = p[5];
    host_len = p[6];
    if (v->mv_size != RECORD_HDR + name_len + host_len || name_len == 0 ||
        name_len > STORE_NODE_NAME_MAX || host_len == 0) {
        return STORE_ECORRUPT;
    }
    memset(out, 0, sizeof(*out));
    out->id = store__get64(k->mv_data);
    out->port = (uint16_t)((unsigned)p[8] << 8 | p[9]);
    memcpy(out->name, p + RECORD_HDR, name_len);
    memcpy(out->host, p + RECORD_HDR + name_len, host_len);
    if (out->id == 0 || out->port == 0 ||
        memchr(out->name, '\0', name_len) != NULL ||
        memchr(out->host, '\0', host_len) != NULL) {
        return STORE_ECORRUPT;
    }
    return 0;
}

struct get_arg {
    struct store_member *out;
    size_t n;
};

static int get_one(void *arg, const MDB_val *k, const MDB_val *v)
{
    struct get_arg *a = arg;

    if (a->n == STORE_MEMBERS_MAX) {
        return STORE_ECORRUPT; /* store_members_set never writes more */
    }
    if (decode(k, v, &a->out[a->n]) != 0) {
        return STORE_ECORRUPT;
    }
    a->n++;
    return 0;
}

int store_members_get(struct store_txn *txn, struct store_member *out,
                      size_t *n)
{
    struct store_member v[STORE_MEMBERS_MAX];
    struct get_arg a = {v, 0};
    int rv = store__walk(txn, STORE__DB_MEMBERS, NULL, 0, get_one, &a);

    if (rv == STORE_ECORRUPT) {
        store__errmsgf(txn->s, "member table: bad record");
    }
    if (rv != 0) {
        return rv;
    }
    memcpy(out, v, a.n * sizeof(v[0]));
    *n = a.n;
    return 0;
}

static int put_one(struct store_txn *txn, const struct store_member *m,
                   unsigned flags)
{
    uint8_t buf[RECORD_HDR + STORE_NODE_NAME_MAX + STORE_HOST_MAX];
    uint8_t key[8];
    size_t name_len = strlen(m->name);
    size_t host_len = strlen(m->host);
    size_t len = RECORD_HDR + name_len + host_len;

    store__put64(key, m->id);
    buf[4] = RECORD_VERSION;
    buf[5] = (uint8_t)name_len;
    buf[6] = (uint8_t)host_len;
    buf[7] = 0;
    buf[8] = (uint8_t)(m->port >> 8);
    buf[9] = (uint8_t)m->port;
    memcpy(buf + RECORD_HDR, m->name, name_len);
    memcpy(buf + RECORD_HDR + name_len, m->host, host_len);
    store__put32(buf, store__crc32c(0, buf + 4, len - 4));
    return store__put(txn, STORE__DB_MEMBERS, key, sizeof(key), buf, len,
                      flags);
}

int store_members_set(struct store_txn *txn, const struct store_member *v,
                      size_t n)
{
    size_t i;
    size_t j;
    int rc;
    int rv;

    if (!txn->write || n > STORE_MEMBERS_MAX) {
        return STORE_EINVAL;
    }
    for (i = 0; i < n; i++) {
        if (!member_is_valid(&v[i])) {
            return STORE_EINVAL;
        }
        for (j = 0; j < i; j++) {
            if (v[j].id == v[i].id) {
                return STORE_EINVAL;
            }
        }
    }
    rc = mdb_drop(txn->txn, store__dbi(txn, STORE__DB_MEMBERS), 0);
    if (rc != 0) {
        store__errmsgf(txn->s, "member table: %s", mdb_strerror(rc));
        return store__mdb_err(rc);
    }
    for (i = 0; i < n; i++) {
        rv = put_one(txn, &v[i], MDB_NOOVERWRITE);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

int store_member_put(struct store_txn *txn, const struct store_member *m)
{
    if (!txn->write || !member_is_valid(m)) {
        return STORE_EINVAL;
    }
    return put_one(txn, m, 0);
}

int store_member_del(struct store_txn *txn, uint64_t id)
{
    uint8_t key[8];
    int rv;

    if (!txn->write) {
        return STORE_EINVAL;
    }
    store__put64(key, id);
    rv = store__del(txn, STORE__DB_MEMBERS, key, sizeof(key));
    return rv == STORE_ENOTFOUND ? 0 : rv;
}

int store__member_outside(struct store_txn *txn, uint64_t id, bool *outside)
{
    MDB_stat ms;
    MDB_val v;
    uint8_t key[8];
    int rc;
    int rv;

    *outside = false;
    store__put64(key, id);
    rv = store__get(txn, STORE__DB_MEMBERS, key, sizeof(key), &v);
    if (rv != STORE_ENOTFOUND) {
        return rv;
    }
    rc = mdb_stat(txn->txn, store__dbi(txn, STORE__DB_MEMBERS), &ms);
    if (rc != 0) {
        store__errmsgf(txn->s, "member table: %s", mdb_strerror(rc));
        return store__mdb_err(rc);
    }
    *outside = ms.ms_entries > 0;
    return 0;
}
