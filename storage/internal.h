/* SPDX-License-Identifier: BSD-3-Clause
 * storage/internal.h - what the files of storage/ share and nobody else
 * sees: the environment and transaction structs, the named databases, the
 * byte-order helpers, the allocation wrapper and the job record.
 *
 * Why it is shaped this way: store.h keeps every MDB_* type out of the
 * public contract; this header is where they live. Tests of storage/ may
 * include it to reach test hooks.
 *
 * Not here: anything node/ may call (store.h).
 */
#ifndef GEARRAFT_STORAGE_INTERNAL_H
#define GEARRAFT_STORAGE_INTERNAL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "storage/store.h"

/* Always compiled in: a violated invariant means corrupt state. */
#define STORE_ASSERT(expr)                                                     \
    do {                                                                       \
        if (!(expr)) {                                                         \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__,         \
                    __LINE__, #expr);                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* On-disk format of the whole environment. Checklist: bump when any
 * record layout (log, job, function, meta) or key encoding changes in a
 * way old binaries cannot read; store_open refuses other versions with
 * STORE_EVERSION, or converts them (env.c, migrate). Record-level
 * versions (first byte after the CRC) allow reading old records during a
 * migration.
 *   1: the first.
 *   2: no second unique index: `uniqs` stays empty (emptied when a
 *      format 1 directory is opened); GET_STATUS_UNIQUE looks a unique up
 *      in `uniq` once per function. Format 1 binaries must not open it:
 *      they would look for jobs in `uniqs` and fail to delete them there.
 *   3: the dedupe table's mark rows hold 16 bytes (mark, seen rows) and
 *      seen rows (24-byte keys) may follow them (replays.c);
 *      format 2 marks (8 bytes) are read as they are.
 * A new table that older binaries may ignore is no bump: `members`
 * (members.c) is empty in a one-node server's directory, which format 3
 * binaries before it open as ever, and a cluster member's directory is
 * refused by them anyway (its node id is not their fixed 1). */
#define STORE__FORMAT_VERSION 3u

/* The named databases of the environment. */
enum store__db {
    STORE__DB_META = 0,     /* string key -> value (+CRC) */
    STORE__DB_LOG = 1,      /* u64be index -> log record */
    STORE__DB_JOBS = 2,     /* u64be job number -> job record */
    STORE__DB_JDATA = 3,    /* u64be job number -> CRC + large payload */
    STORE__DB_READY = 4,    /* fn NUL prio u64be qseq u64be job -> u64be when */
    STORE__DB_UNIQ = 5,     /* fn NUL ukey -> u64be job */
    STORE__DB_UNIQS = 6,    /* format 1 only; empty since format 2 */
    STORE__DB_ASSIGN = 7,   /* worker ref (24) u64be job -> empty */
    STORE__DB_WAITS = 8,    /* client ref (24) u64be job -> empty */
    STORE__DB_DUE = 9,      /* u64be when u64be job -> empty (queued epoch) */
    STORE__DB_FUNCS = 10,   /* fn -> function record */
    STORE__DB_DEDUPE = 11,  /* node|incarnation[|seq] (u64be) -> apply.c */
    STORE__DB_MEMBERS = 12, /* u64be member id -> member record */
    STORE__DB_COUNT = 13,   /* number of databases, not a database */
};

struct store {
    MDB_env *env;
    MDB_dbi dbi[STORE__DB_COUNT];
    int lock_fd;
    uint64_t node_id;
    uint64_t incarnation;
    char cluster[STORE_CLUSTER_MAX + 1];
    size_t cluster_len;
    bool is_new; /* store_open created the directory's state */
    bool joiner; /* bootstrapped to join a running cluster */
    char *dir;
    char errmsg[256];
    uint64_t grown_to; /* file bytes known written, 0 = not looked yet */
};

struct store_txn {
    struct store *s;
    MDB_txn *txn;
    bool write;
    /* Scratch space for building records before mdb_put. */
    uint8_t *scratch;
    size_t scratch_cap;
    /* Cached within the txn (one batch appends and applies hundreds of
     * entries): the log's last index and the applied index. */
    bool log_last_known;
    uint64_t log_last;
    bool applied_known;
    uint64_t applied;
    /* A snapshot load's cluster name, adopted at commit (0: none). */
    char new_cluster[STORE_CLUSTER_MAX + 1];
    size_t new_cluster_len;
};

/* ---- allocation (one wrapper, so tests can make it fail) ---- */
void *store__malloc(size_t n);
void *store__realloc(void *p, size_t n);
void store__free(void *p);
/* Room for n elements in the array v of room cap (store_array_grow,
 * through this module's allocator): 0 or STORE_ENOMEM. */
#define STORE__ARRAY_RESERVE(v, cap, n)                                        \
    ((n) <= (cap)                                                              \
         ? 0                                                                   \
         : store_array_grow(&(v), &(cap), (n), sizeof(*(v)), store__realloc))
/* Test hook: when > 0, the Nth allocation from now fails. */
extern unsigned store__fail_alloc_nth;

/* ---- errors ---- */
/* Maps an LMDB or errno code to a STORE_E* code. */
int store__mdb_err(int rc);
void store__errmsgf(struct store *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- encoding commands in place, codec.c ---- */
/* Hands out len bytes to encode into, or NULL with *rv set. */
typedef uint8_t *(*store__reserve_fn)(void *arg, size_t len, int *rv);
/* Encodes cmd into the buffer reserve() returns (store_cmd_encode with
 * the caller's memory: the log reserves it inside LMDB). Errors:
 * STORE_EINVAL, STORE_ENOMEM, or what reserve set. */
int store__cmd_encode_to(const struct store_cmd *cmd, store__reserve_fn reserve,
                         void *arg);

/* ---- CRC32C (Castagnoli), crc32c.c ---- */
uint32_t store__crc32c(uint32_t crc, const void *buf, size_t len);
/* The software path alone, and whether store__crc32c uses the CPU's
 * instruction instead (tests compare the two). */
uint32_t store__crc32c_sw(uint32_t crc, const void *buf, size_t len);
bool store__crc32c_hw(void);

/* ---- byte order ---- */
static inline void store__put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t store__get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline void store__put64(uint8_t *p, uint64_t v)
{
    store__put32(p, (uint32_t)(v >> 32));
    store__put32(p + 4, (uint32_t)v);
}

static inline uint64_t store__get64(const uint8_t *p)
{
    return ((uint64_t)store__get32(p) << 32) | store__get32(p + 4);
}

#define STORE__REF_LEN 24
static inline void store__put_ref(uint8_t *p, const struct store_conn_ref *r)
{
    store__put64(p, r->node_id);
    store__put64(p + 8, r->incarnation);
    store__put64(p + 16, r->conn_id);
}

static inline void store__get_ref(const uint8_t *p, struct store_conn_ref *r)
{
    r->node_id = store__get64(p);
    r->incarnation = store__get64(p + 8);
    r->conn_id = store__get64(p + 16);
}

static inline bool store__ref_eq(const struct store_conn_ref *a,
                                 const struct store_conn_ref *b)
{
    return a->node_id == b->node_id && a->incarnation == b->incarnation &&
           a->conn_id == b->conn_id;
}

static inline bool store__buf_eq(struct store_buf a, struct store_buf b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0);
}

/* ---- members.c ---- */
/* *outside: the store is a cluster member's (its member table is not
 * empty) and node id is not in the table - removed, or never added.
 * Errors: STORE_EIO. */
int store__member_outside(struct store_txn *txn, uint64_t id, bool *outside);

/* ---- txn helpers, txn.c ---- */
MDB_dbi store__dbi(struct store_txn *txn, enum store__db db);
/* Makes txn->scratch at least n bytes. Errors: STORE_ENOMEM. */
int store__scratch(struct store_txn *txn, size_t n);
/* mdb_get/put/del with the code mapped; get returns STORE_ENOTFOUND. */
int store__get(struct store_txn *txn, enum store__db db, const void *key,
               size_t key_len, MDB_val *val);
int store__put(struct store_txn *txn, enum store__db db, const void *key,
               size_t key_len, const void *val, size_t val_len, unsigned flags);
/* Deleting a missing key is not an error. */
int store__del(struct store_txn *txn, enum store__db db, const void *key,
               size_t key_len);

/* What a walk callback returns to end a walk early without an error: a
 * positive value, so no store error code takes it. */
#define STORE__WALK_STOP 1

/* Called for each record of a walk; k and v are borrowed for the call.
 * Returns 0 to go on; anything else ends the walk. */
typedef int (*store__walk_fn)(void *arg, const MDB_val *k, const MDB_val *v);

/* Visits the records of db in key order from the first key >= start
 * (start NULL: from the first record) until fn returns nonzero or the
 * table ends. Returns 0 at the end of the table, fn's nonzero value as
 * is (so STORE__WALK_STOP when fn stopped it), or an LMDB failure mapped
 * by store__mdb_err. Writing to db from fn is not allowed. */
int store__walk(struct store_txn *txn, enum store__db db, const void *start,
                size_t start_len, store__walk_fn fn, void *arg);

/* Says whether the record with key k is to go. */
typedef bool (*store__key_pred_fn)(const void *arg, const MDB_val *k);

/* Deletes the records of db in key order from the first key >= start
 * (start NULL: from the first record) for as long as doomed(arg, key)
 * holds, stopping at the first record it rejects or at the end of the
 * table. Returns 0 or an LMDB failure mapped by store__mdb_err; what was
 * deleted before a failure stays deleted until the transaction aborts. */
int store__del_while(struct store_txn *txn, enum store__db db,
                     const void *start, size_t start_len,
                     store__key_pred_fn doomed, const void *arg);

/* True if key k starts with the n bytes at prefix. */
static inline bool store__key_has_prefix(const MDB_val *k, const void *prefix,
                                         size_t n)
{
    return k->mv_size >= n && memcmp(k->mv_data, prefix, n) == 0;
}

/* ---- meta, env.c ---- */
int store__meta_get_u64(struct store_txn *txn, const char *key, uint64_t *out);
int store__meta_put_u64(struct store_txn *txn, const char *key, uint64_t v);

/* ---- the job record, jobs.c ---- */
enum store__job_flag {
    STORE__JOB_RUNNING = 1,  /* assigned to `worker` */
    STORE__JOB_BG = 2,       /* a background submission created or joined */
    STORE__JOB_IGNORE = 4,   /* running, nobody wants the result */
    STORE__JOB_DATA_EXT = 8, /* payload in STORE__DB_JDATA */
    STORE__JOB_UNIQ = 16,    /* indexed in UNIQ */
    STORE__JOB_DASH = 32,    /* unique "-": keyed by a hash of the data */
};

/* A job decoded from its record. Every buf points into `mem`, which the
 * struct owns (the LMDB value is copied out at load, so later puts cannot
 * move it). Init once, load many times, close once. */
struct store__job {
    uint64_t num;  /* the job number: log index of its SUBMIT */
    uint64_t qseq; /* ready-queue order within (function, prio) */
    uint64_t when; /* epoch seconds, 0 = now */
    uint32_t retries;
    uint32_t numerator;
    uint32_t denominator;
    uint32_t flags;
    enum store_prio prio;
    struct store_conn_ref worker;
    struct store_buf function;
    struct store_buf unique;
    struct store_buf reducer;
    struct store_buf data; /* inline payload; empty when DATA_EXT */
    uint64_t data_len;     /* payload length, inline or external */
    struct store_conn_ref *waiters;
    uint32_t n_waiters;
    size_t waiters_cap;
    uint8_t *mem;
    size_t mem_cap;
};

void store__job_init(struct store__job *j);
void store__job_close(struct store__job *j);
/* Loads job `num`. Errors: STORE_ENOTFOUND, STORE_ECORRUPT, STORE_ENOMEM,
 * STORE_EIO. */
int store__job_load(struct store_txn *txn, uint64_t num, struct store__job *j);
/* Writes j's record (bufs may point anywhere but into txn->scratch). */
int store__job_store(struct store_txn *txn, const struct store__job *j);
/* Payload bytes of j (inline or external), borrowed until the next write
 * in txn. Errors: STORE_ECORRUPT, STORE_EIO. */
int store__job_data(struct store_txn *txn, const struct store__job *j,
                    struct store_buf *out);
int store__job_add_waiter(struct store__job *j,
                          const struct store_conn_ref *ref);
/* Size of inline payloads; larger ones go to STORE__DB_JDATA. */
#define STORE__INLINE_MAX 2048u

/* Handle text <-> job number. */
size_t store__handle_format(const struct store *s, uint64_t num, char *out,
                            size_t out_len);
bool store__handle_parse(const struct store *s, struct store_buf handle,
                         uint64_t *num);

/* Function record, jobs.c. */
struct store__func {
    uint64_t queued[STORE_PRIO_COUNT];
    uint64_t running;
    int32_t maxqueue[STORE_PRIO_COUNT];
};
int store__func_get(struct store_txn *txn, struct store_buf name,
                    struct store__func *out);
int store__func_put(struct store_txn *txn, struct store_buf name,
                    const struct store__func *f);
int store__func_decode(const MDB_val *v, struct store__func *out);

/* Ready-queue key: fn NUL prio qseq num. Returns its length. */
size_t store__ready_key(uint8_t *out, struct store_buf fn, enum store_prio prio,
                        uint64_t qseq, uint64_t num);
#define STORE__READY_KEY_MAX (STORE_FUNCTION_MAX + 1 + 1 + 16)
/* Unique-key key: fn NUL ukey, ukey = the unique, or for the unique "-"
 * (dash) NUL '-' and a 64-bit hash of the payload. */
#define STORE__UKEY_MAX     (STORE_UNIQUE_MAX + 10)
#define STORE__UNIQ_KEY_MAX (STORE_FUNCTION_MAX + 1 + STORE__UKEY_MAX)
size_t store__uniq_key(uint8_t *out, struct store_buf fn,
                       struct store_buf unique, struct store_buf data,
                       bool dash);
/* ref (24) | u64be num: keys of assign and waits. */
#define STORE__REF_KEY_LEN (STORE__REF_LEN + 8)
size_t store__ref_key(uint8_t *out, const struct store_conn_ref *ref,
                      uint64_t num);
/* Stores a large payload in jdata. */
int store__job_data_put(struct store_txn *txn, uint64_t num,
                        struct store_buf data);
/* Puts j (queued) into the ready queue, and the due index when it has a
 * time; unqueue removes both. */
int store__job_queue(struct store_txn *txn, const struct store__job *j);
int store__job_unqueue(struct store_txn *txn, const struct store__job *j);
/* Removes j's unique-key entries, if it has them. data is its payload
 * (needed for the dash key). */
int store__job_uniq_del(struct store_txn *txn, const struct store__job *j,
                        struct store_buf data);

/* apply.c: the job an ordinary GRAB of these functions takes at now_ms -
 * the first function's best (priority, then queue order) runnable job
 * that skip (if not NULL) does not name - or *num = 0. */
int store__pick_runnable(struct store_txn *txn,
                         const struct store_buf *functions, size_t n_functions,
                         uint64_t now_ms, store_skip_fn skip, void *skip_arg,
                         uint64_t *num);

/* The replay check of a command about to apply (storage/replays.c):
 * *dup if its origin's seq was applied already or its incarnation is
 * stale, *over if it overtook an earlier command of its proposer still
 * to come; records the seq when neither. Errors: STORE_E* (abort). */
int store__dedupe(struct store_txn *txn, const struct store_origin *o,
                  bool *dup, bool *over);

#endif /* GEARRAFT_STORAGE_INTERNAL_H */
