/* SPDX-License-Identifier: BSD-3-Clause
 * storage/jobs.c - the queue tables: job records, their secondary
 * indexes (ready queue, unique keys, assignments, waiters, due times) and
 * function records, as primitives apply.c composes.
 *
 * Why it is shaped this way: every question apply or a query asks is one
 * key lookup or one short cursor range, never a scan of all jobs:
 *   jobs    u64be job -> job record (below)
 *   jdata   u64be job -> u32 crc32c | payload, for payloads over
 *           STORE__INLINE_MAX, so that rewriting a job's small record
 *           (grab, status, requeue) never copies a large payload again
 *   ready   fn NUL prio qseq job -> u64be when: only queued jobs; cursor
 *           order is priority then queue order, so a grab is one seek
 *   uniq    fn NUL ukey -> job (the only unique index since format 2)
 *   assign  worker ref | job; waits client ref | job (prefix ranges)
 *   due     when | job for queued epoch jobs (next_due is one seek)
 *   funcs   fn -> counts and maxqueue, so `status` reads no jobs
 * A job's number is the log index of the SUBMIT that created it, so its
 * handle "H:<cluster>:<number>" is the same on every node and after
 * restarts. qseq is the log index of the command that last queued it:
 * FIFO within a priority, and a requeued job goes to the tail.
 *
 * Job record, all integers big-endian:
 *   0 u32 crc32c of bytes 4..end   4 u8 version   5 u8 prio
 *   6 u8 zero   7 u8 zero   8 u32 flags   12 u32 retries
 *   16 u32 numerator   20 u32 denominator   24 u32 n_waiters
 *   28 u32 function_len   32 u32 unique_len   36 u32 reducer_len
 *   40 u64 data_len   48 u64 qseq   56 u64 when   64 worker ref (24)
 *   88 waiters (24 each), function, unique, reducer, inline data
 * Checklist: a new field means JOB_REC_VERSION + 1 and decode keeps
 * reading version 1; a key layout change is a STORE__FORMAT_VERSION bump.
 *
 * Not here: what commands do to jobs (apply.c), reads for node/
 * (query.c).
 */
#include "storage/internal.h"

#define JOB_REC_VERSION  1u
#define JOB_HDR          88u
#define FUNC_REC_VERSION 1u
#define FUNC_REC_LEN     52u

void store__job_init(struct store__job *j)
{
    memset(j, 0, sizeof(*j));
}

void store__job_close(struct store__job *j)
{
    store__free(j->waiters);
    store__free(j->mem);
    store__job_init(j);
}

static int ensure_waiters(struct store__job *j, uint32_t n)
{
    return STORE__ARRAY_RESERVE(j->waiters, j->waiters_cap, n);
}

int store__job_add_waiter(struct store__job *j,
                          const struct store_conn_ref *ref)
{
    int rv;

    if (j->n_waiters == UINT32_MAX) {
        return STORE_ENOMEM;
    }
    rv = ensure_waiters(j, j->n_waiters + 1);
    if (rv != 0) {
        return rv;
    }
    j->waiters[j->n_waiters++] = *ref;
    return 0;
}

/* Fills j from its record, already checked and copied to j->mem. */
static void decode_job(struct store__job *j, uint64_t num)
{
    const uint8_t *p = j->mem;
    const uint8_t *q = p + JOB_HDR;
    uint32_t i;

    j->num = num;
    j->flags = store__get32(p + 8);
    j->prio = (enum store_prio)p[5];
    j->retries = store__get32(p + 12);
    j->numerator = store__get32(p + 16);
    j->denominator = store__get32(p + 20);
    j->n_waiters = store__get32(p + 24);
    j->data_len = store__get64(p + 40);
    j->qseq = store__get64(p + 48);
    j->when = store__get64(p + 56);
    store__get_ref(p + 64, &j->worker);
    for (i = 0; i < j->n_waiters; i++) {
        store__get_ref(q, &j->waiters[i]);
        q += STORE__REF_LEN;
    }
    j->function.base = q;
    j->function.len = store__get32(p + 28);
    q += j->function.len;
    j->unique.base = q;
    j->unique.len = store__get32(p + 32);
    q += j->unique.len;
    j->reducer.base = q;
    j->reducer.len = store__get32(p + 36);
    q += j->reducer.len;
    j->data.base = q;
    j->data.len = (j->flags & STORE__JOB_DATA_EXT) ? 0 : (size_t)j->data_len;
}

/* True if the record's CRC, version, priority and lengths hold. */
static bool job_record_ok(const uint8_t *p, size_t size)
{
    uint64_t need;
    uint64_t dl;

    if (size < JOB_HDR ||
        store__crc32c(0, p + 4, size - 4) != store__get32(p) ||
        p[4] != JOB_REC_VERSION || p[5] >= STORE_PRIO_COUNT) {
        return false;
    }
    dl = (store__get32(p + 8) & STORE__JOB_DATA_EXT) ? 0 : store__get64(p + 40);
    need = (uint64_t)JOB_HDR + (uint64_t)store__get32(p + 24) * STORE__REF_LEN +
           store__get32(p + 28) + store__get32(p + 32) + store__get32(p + 36) +
           dl;
    return need == size;
}

int store__job_load(struct store_txn *txn, uint64_t num, struct store__job *j)
{
    uint8_t key[8];
    MDB_val v;
    int rv;

    store__put64(key, num);
    rv = store__get(txn, STORE__DB_JOBS, key, sizeof(key), &v);
    if (rv != 0) {
        return rv;
    }
    if (!job_record_ok(v.mv_data, v.mv_size)) {
        store__errmsgf(txn->s, "job %llu: checksum or layout mismatch",
                       (unsigned long long)num);
        return STORE_ECORRUPT;
    }
    /* Copy out: later puts in this txn may move the LMDB page. */
    if (STORE__ARRAY_RESERVE(j->mem, j->mem_cap, v.mv_size) != 0) {
        return STORE_ENOMEM;
    }
    memcpy(j->mem, v.mv_data, v.mv_size);
    rv = ensure_waiters(j, store__get32(j->mem + 24));
    if (rv != 0) {
        return rv;
    }
    decode_job(j, num);
    return 0;
}

static uint8_t *put_bytes(uint8_t *q, struct store_buf b)
{
    if (b.len > 0) {
        memcpy(q, b.base, b.len);
    }
    return q + b.len;
}

int store__job_store(struct store_txn *txn, const struct store__job *j)
{
    uint8_t key[8];
    size_t inline_len = (j->flags & STORE__JOB_DATA_EXT) ? 0 : j->data.len;
    size_t len;
    uint8_t *p;
    uint8_t *q;
    uint32_t i;
    int rv;

    if ((uint64_t)j->function.len > UINT32_MAX ||
        (uint64_t)j->unique.len > UINT32_MAX ||
        (uint64_t)j->reducer.len > UINT32_MAX) {
        return STORE_EINVAL;
    }
    len = JOB_HDR + (size_t)j->n_waiters * STORE__REF_LEN;
    if (j->function.len + j->unique.len + j->reducer.len > SIZE_MAX - len ||
        inline_len >
            SIZE_MAX - len - j->function.len - j->unique.len - j->reducer.len) {
        return STORE_EINVAL;
    }
    len += j->function.len + j->unique.len + j->reducer.len + inline_len;
    rv = store__scratch(txn, len);
    if (rv != 0) {
        return rv;
    }
    p = txn->scratch;
    memset(p, 0, JOB_HDR);
    p[4] = JOB_REC_VERSION;
    p[5] = (uint8_t)j->prio;
    store__put32(p + 8, j->flags);
    store__put32(p + 12, j->retries);
    store__put32(p + 16, j->numerator);
    store__put32(p + 20, j->denominator);
    store__put32(p + 24, j->n_waiters);
    store__put32(p + 28, (uint32_t)j->function.len);
    store__put32(p + 32, (uint32_t)j->unique.len);
    store__put32(p + 36, (uint32_t)j->reducer.len);
    store__put64(p + 40,
                 (j->flags & STORE__JOB_DATA_EXT) ? j->data_len : inline_len);
    store__put64(p + 48, j->qseq);
    store__put64(p + 56, j->when);
    store__put_ref(p + 64, &j->worker);
    q = p + JOB_HDR;
    for (i = 0; i < j->n_waiters; i++) {
        store__put_ref(q, &j->waiters[i]);
        q += STORE__REF_LEN;
    }
    q = put_bytes(q, j->function);
    q = put_bytes(q, j->unique);
    q = put_bytes(q, j->reducer);
    if (inline_len > 0) {
        q = put_bytes(q, j->data);
    }
    STORE_ASSERT((size_t)(q - p) == len);
    store__put32(p, store__crc32c(0, p + 4, len - 4));
    store__put64(key, j->num);
    return store__put(txn, STORE__DB_JOBS, key, sizeof(key), p, len, 0);
}

int store__job_data(struct store_txn *txn, const struct store__job *j,
                    struct store_buf *out)
{
    uint8_t key[8];
    MDB_val v;
    const uint8_t *p;
    int rv;

    if ((j->flags & STORE__JOB_DATA_EXT) == 0) {
        *out = j->data;
        return 0;
    }
    store__put64(key, j->num);
    rv = store__get(txn, STORE__DB_JDATA, key, sizeof(key), &v);
    if (rv == STORE_ENOTFOUND) {
        rv = STORE_ECORRUPT;
    }
    if (rv != 0) {
        return rv;
    }
    p = v.mv_data;
    if (v.mv_size < 4 || v.mv_size - 4 != j->data_len ||
        store__crc32c(0, p + 4, v.mv_size - 4) != store__get32(p)) {
        store__errmsgf(txn->s, "job %llu: payload checksum mismatch",
                       (unsigned long long)j->num);
        return STORE_ECORRUPT;
    }
    out->base = p + 4;
    out->len = v.mv_size - 4;
    return 0;
}

int store__job_data_put(struct store_txn *txn, uint64_t num,
                        struct store_buf data)
{
    uint8_t key[8];
    MDB_val k;
    MDB_val v;
    uint8_t *p;
    int rc;

    if (data.len > SIZE_MAX - 4) {
        return STORE_EINVAL;
    }
    store__put64(key, num);
    k.mv_data = key;
    k.mv_size = sizeof(key);
    v.mv_data = NULL;
    v.mv_size = data.len + 4;
    rc = mdb_put(txn->txn, store__dbi(txn, STORE__DB_JDATA), &k, &v,
                 MDB_RESERVE);
    if (rc != 0) {
        store__errmsgf(txn->s, "job %llu payload: %s", (unsigned long long)num,
                       mdb_strerror(rc));
        return store__mdb_err(rc);
    }
    p = v.mv_data;
    memcpy(p + 4, data.base, data.len);
    store__put32(p, store__crc32c(0, p + 4, data.len));
    return 0;
}

/* ---- handles ---- */

size_t store__handle_format(const struct store *s, uint64_t num, char *out,
                            size_t out_len)
{
    char digits[20];
    size_t nd = 0;
    size_t n;

    /* By hand: this runs for every created, assigned and finished job,
     * and snprintf showed in profiles. */
    do {
        digits[nd++] = (char)('0' + num % 10u);
        num /= 10u;
    } while (num != 0);
    n = 2 + s->cluster_len + 1 + nd;
    STORE_ASSERT(n < out_len);
    out[0] = 'H';
    out[1] = ':';
    memcpy(out + 2, s->cluster, s->cluster_len);
    out[2 + s->cluster_len] = ':';
    for (n = 3 + s->cluster_len; nd > 0; n++) {
        out[n] = digits[--nd];
    }
    out[n] = '\0';
    return n;
}

bool store__handle_parse(const struct store *s, struct store_buf h,
                         uint64_t *num)
{
    size_t pre = 2 + s->cluster_len + 1;
    uint64_t v = 0;
    size_t i;

    if (h.len <= pre || h.len > pre + 20 || h.base[0] != 'H' ||
        h.base[1] != ':' || memcmp(h.base + 2, s->cluster, s->cluster_len) ||
        h.base[pre - 1] != ':' || h.base[pre] == '0') {
        return false;
    }
    for (i = pre; i < h.len; i++) {
        unsigned d = (unsigned)h.base[i] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *num = v;
    return true;
}

/* ---- keys ---- */

size_t store__ready_key(uint8_t *out, struct store_buf fn, enum store_prio prio,
                        uint64_t qseq, uint64_t num)
{
    memcpy(out, fn.base, fn.len);
    out[fn.len] = 0;
    out[fn.len + 1] = (uint8_t)prio;
    store__put64(out + fn.len + 2, qseq);
    store__put64(out + fn.len + 10, num);
    return fn.len + 18;
}

size_t store__uniq_key(uint8_t *out, struct store_buf fn,
                       struct store_buf unique, struct store_buf data,
                       bool dash)
{
    size_t n = fn.len + 1;

    memcpy(out, fn.base, fn.len);
    out[fn.len] = 0;
    if (dash) {
        /* A real unique never holds a NUL (it is a NUL-terminated
         * argument), so "\0-" cannot collide with one. */
        out[n++] = 0;
        out[n++] = '-';
        store__put64(out + n, store_fnv1a64(data.base, data.len));
        return n + 8;
    }
    memcpy(out + n, unique.base, unique.len);
    return n + unique.len;
}

size_t store__ref_key(uint8_t *out, const struct store_conn_ref *ref,
                      uint64_t num)
{
    store__put_ref(out, ref);
    store__put64(out + STORE__REF_LEN, num);
    return STORE__REF_LEN + 8;
}

/* ---- index maintenance for one job ---- */

int store__job_queue(struct store_txn *txn, const struct store__job *j)
{
    uint8_t key[STORE__READY_KEY_MAX];
    uint8_t val[8];
    uint8_t due[16];
    size_t n;
    int rv;

    n = store__ready_key(key, j->function, j->prio, j->qseq, j->num);
    store__put64(val, j->when);
    rv = store__put(txn, STORE__DB_READY, key, n, val, sizeof(val), 0);
    if (rv == 0 && j->when != 0) {
        store__put64(due, j->when);
        store__put64(due + 8, j->num);
        rv = store__put(txn, STORE__DB_DUE, due, sizeof(due), "", 0, 0);
    }
    return rv;
}

int store__job_unqueue(struct store_txn *txn, const struct store__job *j)
{
    uint8_t key[STORE__READY_KEY_MAX];
    uint8_t due[16];
    size_t n;
    int rv;

    n = store__ready_key(key, j->function, j->prio, j->qseq, j->num);
    rv = store__del(txn, STORE__DB_READY, key, n);
    if (rv == 0 && j->when != 0) {
        store__put64(due, j->when);
        store__put64(due + 8, j->num);
        rv = store__del(txn, STORE__DB_DUE, due, sizeof(due));
    }
    return rv;
}

int store__job_uniq_del(struct store_txn *txn, const struct store__job *j,
                        struct store_buf data)
{
    uint8_t key[STORE_FUNCTION_MAX + 1 + STORE__UKEY_MAX];
    size_t n;

    if ((j->flags & STORE__JOB_UNIQ) == 0) {
        return 0;
    }
    n = store__uniq_key(key, j->function, j->unique, data,
                        (j->flags & STORE__JOB_DASH) != 0);
    return store__del(txn, STORE__DB_UNIQ, key, n);
}

/* ---- function records ---- */

int store__func_decode(const MDB_val *v, struct store__func *out)
{
    const uint8_t *p = v->mv_data;
    int i;

    if (v->mv_size != FUNC_REC_LEN || p[4] != FUNC_REC_VERSION ||
        store__crc32c(0, p + 4, FUNC_REC_LEN - 4) != store__get32(p)) {
        return STORE_ECORRUPT;
    }
    for (i = 0; i < STORE_PRIO_COUNT; i++) {
        out->queued[i] = store__get64(p + 8 + 8 * i);
        out->maxqueue[i] = (int32_t)store__get32(p + 40 + 4 * i);
    }
    out->running = store__get64(p + 32);
    return 0;
}

int store__func_get(struct store_txn *txn, struct store_buf name,
                    struct store__func *out)
{
    MDB_val v;
    int rv;

    if (name.len == 0) {
        /* LMDB keys cannot be empty; an empty name is never stored. */
        return STORE_ENOTFOUND;
    }
    rv = store__get(txn, STORE__DB_FUNCS, name.base, name.len, &v);
    if (rv != 0) {
        return rv;
    }
    rv = store__func_decode(&v, out);
    if (rv != 0) {
        store__errmsgf(txn->s, "function %.*s: checksum mismatch",
                       (int)(name.len > 64 ? 64 : name.len),
                       (const char *)name.base);
    }
    return rv;
}

int store__func_put(struct store_txn *txn, struct store_buf name,
                    const struct store__func *f)
{
    uint8_t p[FUNC_REC_LEN];
    int i;

    memset(p, 0, sizeof(p));
    p[4] = FUNC_REC_VERSION;
    for (i = 0; i < STORE_PRIO_COUNT; i++) {
        store__put64(p + 8 + 8 * i, f->queued[i]);
        store__put32(p + 40 + 4 * i, (uint32_t)f->maxqueue[i]);
    }
    store__put64(p + 32, f->running);
    store__put32(p, store__crc32c(0, p + 4, FUNC_REC_LEN - 4));
    return store__put(txn, STORE__DB_FUNCS, name.base, name.len, p, sizeof(p),
                      0);
}
