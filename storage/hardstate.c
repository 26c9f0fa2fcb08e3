/* SPDX-License-Identifier: BSD-3-Clause
 * storage/hardstate.c - the Raft hard state (term, vote, commit).
 *
 * Why it is shaped this way: it is one small record in meta, written in
 * the same transaction as the entries it covers, so a crash can never
 * leave a vote without its log. Record: u32 crc32c | u8 version | 3 zero
 * bytes | u64 term | u64 vote | u64 commit. Checklist: a new field goes at
 * the end with HS_VERSION bumped; older records stay readable.
 *
 * The snapshot meta (index, term and membership the queue tables cover
 * once the log was compacted behind them) is a second record beside it:
 * u32 crc32c | u8 version | 3 zero bytes | u64 index | u64 term | conf.
 * Same checklist.
 *
 * Not here: the log (log.c).
 */
#include "storage/internal.h"

#define HS_KEY     "hard_state"
#define HS_VERSION 1u
#define HS_LEN     32u

int store_hs_get(struct store_txn *txn, struct store_hard_state *out)
{
    MDB_val v;
    const uint8_t *p;
    int rv;

    rv = store__get(txn, STORE__DB_META, HS_KEY, strlen(HS_KEY), &v);
    if (rv == STORE_ENOTFOUND) {
        memset(out, 0, sizeof(*out)); /* a new node: term 0, no vote */
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    p = v.mv_data;
    if (v.mv_size != HS_LEN || p[4] != HS_VERSION ||
        store__crc32c(0, p + 4, HS_LEN - 4) != store__get32(p)) {
        store__errmsgf(txn->s, "hard state: checksum or version mismatch");
        return STORE_ECORRUPT;
    }
    out->term = store__get64(p + 8);
    out->vote = store__get64(p + 16);
    out->commit = store__get64(p + 24);
    return 0;
}

int store_hs_set(struct store_txn *txn, const struct store_hard_state *hs)
{
    uint8_t buf[HS_LEN];

    if (!txn->write) {
        return STORE_EINVAL;
    }
    memset(buf, 0, sizeof(buf));
    buf[4] = HS_VERSION;
    store__put64(buf + 8, hs->term);
    store__put64(buf + 16, hs->vote);
    store__put64(buf + 24, hs->commit);
    store__put32(buf, store__crc32c(0, buf + 4, HS_LEN - 4));
    return store__put(txn, STORE__DB_META, HS_KEY, strlen(HS_KEY), buf,
                      sizeof(buf), 0);
}

#define SM_KEY      "snap_meta"
#define SM_VERSION  1u
#define SM_HDR      24u
#define SM_CONF_MAX 4096u

int store_snap_meta_get(struct store_txn *txn, struct store_snap_meta *out)
{
    MDB_val v;
    const uint8_t *p;
    int rv;

    rv = store__get(txn, STORE__DB_META, SM_KEY, strlen(SM_KEY), &v);
    if (rv != 0) {
        return rv;
    }
    p = v.mv_data;
    if (v.mv_size < SM_HDR || p[4] != SM_VERSION ||
        store__crc32c(0, p + 4, v.mv_size - 4) != store__get32(p)) {
        store__errmsgf(txn->s, "snapshot meta: checksum or version mismatch");
        return STORE_ECORRUPT;
    }
    out->index = store__get64(p + 8);
    out->term = store__get64(p + 16);
    out->conf.base = p + SM_HDR;
    out->conf.len = v.mv_size - SM_HDR;
    return 0;
}

int store_snap_meta_set(struct store_txn *txn, const struct store_snap_meta *m)
{
    uint8_t buf[SM_HDR + SM_CONF_MAX];
    size_t len = SM_HDR + m->conf.len;

    if (!txn->write || m->conf.len > SM_CONF_MAX) {
        return STORE_EINVAL;
    }
    memset(buf, 0, SM_HDR);
    buf[4] = SM_VERSION;
    store__put64(buf + 8, m->index);
    store__put64(buf + 16, m->term);
    if (m->conf.len > 0) {
        memcpy(buf + SM_HDR, m->conf.base, m->conf.len);
    }
    store__put32(buf, store__crc32c(0, buf + 4, len - 4));
    return store__put(txn, STORE__DB_META, SM_KEY, strlen(SM_KEY), buf, len,
                      0);
}
