/* SPDX-License-Identifier: BSD-3-Clause
 * storage/hardstate.c - the Raft hard state (term, vote, commit).
 *
 * Why it is shaped this way: it is one small record in meta, written in
 * the same transaction as the entries it covers, so a crash can never
 * leave a vote without its log. Record: u32 crc32c | u8 version | 3 zero
 * bytes | u64 term | u64 vote | u64 commit. Checklist: a new field goes at
 * the end with HS_VERSION bumped; older records stay readable.
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
