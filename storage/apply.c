/* SPDX-License-Identifier: BSD-3-Clause
 * storage/apply.c - the deterministic state machine: a committed command
 * changes the queue tables and yields effects for node/.
 *
 * Why it is shaped this way: every node applies the same log, so nothing
 * here reads a clock, a random number or anything local: "now" is the
 * leader's stamp, limits travel in the commands, and ordering ties are
 * broken by job number. Semantics are gearmand 1.1.20's (docs/protocol.md,
 * "Job semantics"), with two fixes (README.md, "What differs from gearmand
 * 1.1.20"):
 *
 * - Coalescing: a job that a background submission created or
 *   joined is flagged STORE__JOB_BG and is never dropped because its
 *   foreground clients went away. gearmand marks such a job "ignore" and
 *   loses it; we keep it.
 * - Abandoned and cancelled jobs ("Disconnects"; "Cancel, drop and max
 *   queue"): gearmand flags a queued job
 *   "ignore" and throws it away at the next GRAB/PRE_SLEEP, so `status`
 *   counts it until then. We remove a queued job at once (CLIENT_GONE of
 *   its last foreground client, or CANCEL), so `status` drops it at once;
 *   a worker can never be handed it, exactly as in gearmand. A running
 *   job in that situation keeps running (it is counted as running, as in
 *   gearmand) with STORE__JOB_IGNORE set: its WORK_* packets are accepted
 *   and go nowhere, and if its worker is lost it is dropped rather than
 *   requeued (nobody wants the result).
 *
 * Retries ("Retries and CAN_DO_TIMEOUT"): a lost worker or timeout requeues the
 * job at the tail of its priority (its queue order becomes the index of the
 * command that requeued it), counts a retry, clears numerator/denominator, and
 * with a limit N (carried in the command: the proposer's --job-retries,
 * 0 = unlimited) sends WORK_FAIL and ends the job once retries reach N.
 *
 * Not here: table layouts (jobs.c), encoding (codec.c), anything about
 * sockets (node/).
 */
#include "storage/effects.h"

#define META_APPLIED "applied"

struct ctx {
    struct store_txn *txn;
    struct store *s;
    uint64_t index;
    uint64_t now_ms;
    struct store_effects *fx;
};

/* (ref, job number) pairs collected from a prefix range before changing
 * the tables they came from. */
struct refvec {
    struct store_conn_ref *refs;
    uint64_t *nums;
    size_t n;
    size_t refs_cap;
    size_t nums_cap;
};

static void refvec_free(struct refvec *v)
{
    store__free(v->refs);
    store__free(v->nums);
}

static int refvec_push(struct refvec *v, const struct store_conn_ref *r,
                       uint64_t num)
{
    if (STORE__ARRAY_RESERVE(v->refs, v->refs_cap, v->n + 1) != 0 ||
        STORE__ARRAY_RESERVE(v->nums, v->nums_cap, v->n + 1) != 0) {
        return STORE_ENOMEM;
    }
    v->refs[v->n] = *r;
    v->nums[v->n] = num;
    v->n++;
    return 0;
}

struct collect_arg {
    const uint8_t *prefix;
    size_t prefix_len;
    uint64_t max_inc;
    struct refvec *out;
};

static int collect_one(void *arg, const MDB_val *k, const MDB_val *v)
{
    struct collect_arg *a = arg;
    struct store_conn_ref r;

    (void)v;
    if (!store__key_has_prefix(k, a->prefix, a->prefix_len)) {
        return STORE__WALK_STOP;
    }
    if (k->mv_size != STORE__REF_KEY_LEN) {
        return STORE_ECORRUPT;
    }
    store__get_ref(k->mv_data, &r);
    if (r.incarnation > a->max_inc) {
        return 0;
    }
    return refvec_push(a->out, &r,
                       store__get64((uint8_t *)k->mv_data + STORE__REF_LEN));
}

/* Collects every key "ref | num" of db starting with prefix whose ref has
 * an incarnation <= max_inc. */
static int collect(struct ctx *c, enum store__db db, const uint8_t *prefix,
                   size_t prefix_len, uint64_t max_inc, struct refvec *out)
{
    struct collect_arg a = {prefix, prefix_len, max_inc, out};
    int rv;

    rv = store__walk(c->txn, db, prefix, prefix_len, collect_one, &a);
    return rv == STORE__WALK_STOP ? 0 : rv;
}

/* ---- effects ---- */

static int fx_handle(struct ctx *c, uint64_t num, struct store_buf *out)
{
    char h[STORE_HANDLE_MAX];
    struct store_buf b;

    b.len = store__handle_format(c->s, num, h, sizeof(h));
    b.base = (const uint8_t *)h;
    return store__fx_copy(c->fx, b, out);
}

static struct store_buf cbuf(const char *text)
{
    struct store_buf b;

    b.base = (const uint8_t *)text;
    b.len = strlen(text);
    return b;
}

/* REFUSED to `to`: error_code and text are static strings. */
static int fx_refused(struct ctx *c, const struct store_conn_ref *to,
                      const char *code, const char *text)
{
    struct store_effect *e;
    int rv;

    rv = store__fx_push(c->fx, STORE_FX_REFUSED, to, &e);
    if (rv != 0) {
        return rv;
    }
    e->code = 1;
    e->error_code = cbuf(code);
    e->text = cbuf(text);
    return 0;
}

/* ADMIN_REPLY: text NULL means "OK". */
static int fx_admin(struct ctx *c, const struct store_conn_ref *to,
                    const char *text)
{
    struct store_effect *e;
    int rv;

    rv = store__fx_push(c->fx, STORE_FX_ADMIN_REPLY, to, &e);
    if (rv != 0) {
        return rv;
    }
    if (text != NULL) {
        e->code = 1;
        e->text = cbuf(text);
    }
    return 0;
}

static int fx_wake(struct ctx *c, struct store_buf function)
{
    struct store_effect *e;
    int rv;

    rv = store__fx_push(c->fx, STORE_FX_WAKE, NULL, &e);
    if (rv != 0) {
        return rv;
    }
    return store__fx_copy(c->fx, function, &e->function);
}

/* One FORWARD per waiting client; the bytes are copied once and shared. */
static int fx_forward(struct ctx *c, const struct store__job *j,
                      enum store_work_kind kind, struct store_buf data,
                      struct store_buf numerator, struct store_buf denominator)
{
    struct store_buf h;
    struct store_buf d;
    struct store_buf n;
    struct store_buf dn;
    struct store_effect *e;
    uint32_t i;
    int rv;

    if (j->n_waiters == 0) {
        return 0;
    }
    rv = fx_handle(c, j->num, &h);
    if (rv == 0) {
        rv = store__fx_copy(c->fx, data, &d);
    }
    if (rv == 0) {
        rv = store__fx_copy(c->fx, numerator, &n);
    }
    if (rv == 0) {
        rv = store__fx_copy(c->fx, denominator, &dn);
    }
    for (i = 0; rv == 0 && i < j->n_waiters; i++) {
        rv = store__fx_push(c->fx, STORE_FX_FORWARD, &j->waiters[i], &e);
        if (rv == 0) {
            e->work_kind = kind;
            e->handle = h;
            e->data = d;
            e->numerator = n;
            e->denominator = dn;
        }
    }
    return rv;
}

static int fx_job_done(struct ctx *c, uint64_t num)
{
    struct store_effect *e;
    int rv;

    rv = store__fx_push(c->fx, STORE_FX_JOB_DONE, NULL, &e);
    if (rv != 0) {
        return rv;
    }
    e->job = num;
    return fx_handle(c, num, &e->handle);
}

/* ---- function counts ---- */

/* Adds dq to queued[prio] (when dq != 0) and dr to running. */
static int func_adjust(struct ctx *c, struct store_buf fn, enum store_prio prio,
                       int dq, int dr)
{
    struct store__func f;
    int rv;

    rv = store__func_get(c->txn, fn, &f);
    if (rv == STORE_ENOTFOUND) {
        rv = STORE_ECORRUPT; /* a job of an unknown function */
    }
    if (rv != 0) {
        return rv;
    }
    if ((dq < 0 && f.queued[prio] < (uint64_t)-dq) ||
        (dr < 0 && f.running < (uint64_t)-dr)) {
        store__errmsgf(c->s, "function counts below zero");
        return STORE_ECORRUPT;
    }
    f.queued[prio] =
        dq < 0 ? f.queued[prio] - (uint64_t)-dq : f.queued[prio] + (uint64_t)dq;
    f.running = dr < 0 ? f.running - (uint64_t)-dr : f.running + (uint64_t)dr;
    return store__func_put(c->txn, fn, &f);
}

/* ---- job life cycle ---- */

/* Loads job num, which an index of ours names: a missing job means the
 * tables disagree (STORE_ECORRUPT). */
static int load_indexed(struct ctx *c, uint64_t num, struct store__job *j)
{
    int rv = store__job_load(c->txn, num, j);

    return rv == STORE_ENOTFOUND ? STORE_ECORRUPT : rv;
}

/* Records that client ref waits for job num. */
static int waits_put(struct ctx *c, const struct store_conn_ref *ref,
                     uint64_t num)
{
    uint8_t key[STORE__REF_KEY_LEN];

    store__ref_key(key, ref, num);
    return store__put(c->txn, STORE__DB_WAITS, key, sizeof(key), "", 0, 0);
}

/* Deletes the waits entries of every waiter of j (j itself keeps them). */
static int waits_del_all(struct ctx *c, const struct store__job *j)
{
    uint8_t key[STORE__REF_KEY_LEN];
    uint32_t i;
    int rv = 0;

    for (i = 0; rv == 0 && i < j->n_waiters; i++) {
        store__ref_key(key, &j->waiters[i], j->num);
        rv = store__del(c->txn, STORE__DB_WAITS, key, sizeof(key));
    }
    return rv;
}

/* All queued and running jobs of a function. */
static uint64_t func_total(const struct store__func *f)
{
    uint64_t total = f->running;
    int i;

    for (i = 0; i < STORE_PRIO_COUNT; i++) {
        total += f->queued[i];
    }
    return total;
}

static bool is_runnable(const struct ctx *c, uint64_t when)
{
    return when == 0 || when <= c->now_ms / 1000u;
}

/* Deletes job j and every index entry of it; JOB_DONE. */
static int job_end(struct ctx *c, struct store__job *j)
{
    uint8_t key[STORE__REF_KEY_LEN];
    struct store_buf data = {NULL, 0};
    int rv;

    if ((j->flags & (STORE__JOB_UNIQ | STORE__JOB_DASH)) ==
        (STORE__JOB_UNIQ | STORE__JOB_DASH)) {
        rv = store__job_data(c->txn, j, &data);
        if (rv != 0) {
            return rv;
        }
    }
    rv = store__job_uniq_del(c->txn, j, data);
    if (rv != 0) {
        return rv;
    }
    if (j->flags & STORE__JOB_RUNNING) {
        store__ref_key(key, &j->worker, j->num);
        rv = store__del(c->txn, STORE__DB_ASSIGN, key, sizeof(key));
        if (rv == 0) {
            rv = func_adjust(c, j->function, j->prio, 0, -1);
        }
    } else {
        rv = store__job_unqueue(c->txn, j);
        if (rv == 0) {
            rv = func_adjust(c, j->function, j->prio, -1, 0);
        }
    }
    if (rv == 0) {
        rv = waits_del_all(c, j);
    }
    if (rv == 0 && (j->flags & STORE__JOB_DATA_EXT)) {
        store__put64(key, j->num);
        rv = store__del(c->txn, STORE__DB_JDATA, key, 8);
    }
    if (rv == 0) {
        store__put64(key, j->num);
        rv = store__del(c->txn, STORE__DB_JOBS, key, 8);
    }
    if (rv != 0) {
        return rv;
    }
    return fx_job_done(c, j->num);
}

/* Worker lost the running job j: requeue at the tail with a retry
 * counted, or end it (retry limit reached, or nobody wants it). */
static int job_requeue(struct ctx *c, struct store__job *j,
                       uint32_t max_retries)
{
    static const struct store_buf none = {NULL, 0};
    uint8_t key[STORE__REF_KEY_LEN];
    int rv;

    if ((j->flags & STORE__JOB_RUNNING) == 0) {
        /* An assignment entry for a job that is not running. */
        store__errmsgf(c->s, "job %llu: assigned but not running",
                       (unsigned long long)j->num);
        return STORE_ECORRUPT;
    }
    if (j->flags & STORE__JOB_IGNORE) {
        return job_end(c, j);
    }
    if (j->retries < UINT32_MAX) {
        j->retries++;
    }
    if (max_retries != 0 && j->retries >= max_retries) {
        rv = fx_forward(c, j, STORE_WORK_FAIL, none, none, none);
        if (rv != 0) {
            return rv;
        }
        return job_end(c, j);
    }
    store__ref_key(key, &j->worker, j->num);
    rv = store__del(c->txn, STORE__DB_ASSIGN, key, sizeof(key));
    if (rv != 0) {
        return rv;
    }
    j->flags &= ~(uint32_t)STORE__JOB_RUNNING;
    memset(&j->worker, 0, sizeof(j->worker));
    j->numerator = 0;
    j->denominator = 0;
    j->qseq = c->index;
    rv = store__job_store(c->txn, j);
    if (rv == 0) {
        rv = store__job_queue(c->txn, j);
    }
    if (rv == 0) {
        rv = func_adjust(c, j->function, j->prio, 1, -1);
    }
    if (rv == 0 && is_runnable(c, j->when)) {
        rv = fx_wake(c, j->function);
    }
    return rv;
}

/* Loads the job named by handle; *found false if there is none. */
static int load_handle(struct ctx *c, struct store_buf handle,
                       struct store__job *j, bool *found)
{
    uint64_t num;
    int rv;

    *found = false;
    if (!store__handle_parse(c->s, handle, &num)) {
        return 0;
    }
    rv = store__job_load(c->txn, num, j);
    if (rv == STORE_ENOTFOUND) {
        return 0;
    }
    if (rv == 0) {
        *found = true;
    }
    return rv;
}

/* Removes every occurrence of ref from j's waiters. */
static void drop_waiter(struct store__job *j, const struct store_conn_ref *ref)
{
    uint32_t i;
    uint32_t n = 0;

    for (i = 0; i < j->n_waiters; i++) {
        if (!store__ref_eq(&j->waiters[i], ref)) {
            j->waiters[n++] = j->waiters[i];
        }
    }
    j->n_waiters = n;
}

/* ---- commands ---- */

static bool has_nul(struct store_buf b)
{
    return b.len > 0 && memchr(b.base, 0, b.len) != NULL;
}

/* Coalescing (docs/protocol.md, "Coalescing"): the queued or running job that
 * the unique index maps ukey to gains this submission (a waiter, or the
 * background flag), and the client gets CREATED for it; the first
 * submission fixed its priority and payload. *joined says whether there
 * was such a job. With a "-" unique (dash) whose data differs from that
 * job's, the key is a hash collision: *collision is set instead, and the
 * new job must stay out of the index so nobody can join it. */
static int submit_join(struct ctx *c, const struct store_submit *sub,
                       const uint8_t *ukey, size_t ukey_len, bool dash,
                       bool *joined, bool *collision)
{
    struct store__job j;
    struct store_effect *e;
    struct store_buf d;
    MDB_val v;
    int rv;

    *joined = false;
    *collision = false;
    rv = store__get(c->txn, STORE__DB_UNIQ, ukey, ukey_len, &v);
    if (rv != 0) {
        return rv == STORE_ENOTFOUND ? 0 : rv;
    }
    if (v.mv_size != 8) {
        return STORE_ECORRUPT;
    }
    store__job_init(&j);
    rv = load_indexed(c, store__get64(v.mv_data), &j);
    if (rv == 0 && dash) {
        rv = store__job_data(c->txn, &j, &d);
        if (rv == 0 && !store__buf_eq(d, sub->data)) {
            *collision = true;
            goto out;
        }
    }
    if (rv != 0) {
        goto out;
    }
    /* Someone wants the result again. */
    j.flags &= ~(uint32_t)STORE__JOB_IGNORE;
    if (sub->background) {
        j.flags |= STORE__JOB_BG;
    } else {
        rv = store__job_add_waiter(&j, &sub->client);
        if (rv == 0) {
            rv = waits_put(c, &sub->client, j.num);
        }
    }
    if (rv == 0) {
        rv = store__job_store(c->txn, &j);
    }
    if (rv == 0) {
        rv = store__fx_push(c->fx, STORE_FX_CREATED, &sub->client, &e);
    }
    if (rv == 0) {
        e->coalesced = true;
        e->background = sub->background;
        rv = fx_handle(c, j.num, &e->handle);
    }
    *joined = rv == 0;
out:
    store__job_close(&j);
    return rv;
}

/* A new job for sub, queued at this command's index (ukey and dash as
 * for submit_join; index_unique false keeps it out of the unique index);
 * f holds the function's counts, which it updates. CREATED, and WAKE if
 * the job is runnable now. */
static int submit_new(struct ctx *c, const struct store_submit *sub,
                      struct store__func *f, const uint8_t *ukey,
                      size_t ukey_len, bool dash, bool index_unique)
{
    uint8_t key[8];
    struct store__job nj;
    struct store_effect *e;
    struct store_conn_ref waiter = sub->client;
    int rv;

    store__job_init(&nj);
    nj.num = c->index;
    nj.qseq = c->index;
    nj.when = sub->when;
    nj.prio = sub->prio;
    nj.function = sub->function;
    nj.unique = sub->unique;
    nj.reducer = sub->reducer;
    nj.data_len = sub->data.len;
    if (sub->background) {
        nj.flags |= STORE__JOB_BG;
    } else {
        nj.waiters = &waiter; /* borrowed; nj is never closed */
        nj.n_waiters = 1;
    }
    if (index_unique) {
        nj.flags |= STORE__JOB_UNIQ | (dash ? STORE__JOB_DASH : 0u);
    }
    if (sub->data.len > STORE__INLINE_MAX) {
        nj.flags |= STORE__JOB_DATA_EXT;
        rv = store__job_data_put(c->txn, nj.num, sub->data);
        if (rv != 0) {
            return rv;
        }
    } else {
        nj.data = sub->data;
    }
    rv = store__job_store(c->txn, &nj);
    if (rv == 0) {
        rv = store__job_queue(c->txn, &nj);
    }
    if (rv == 0 && index_unique) {
        store__put64(key, nj.num);
        rv = store__put(c->txn, STORE__DB_UNIQ, ukey, ukey_len, key, 8, 0);
    }
    if (rv == 0 && !sub->background) {
        rv = waits_put(c, &sub->client, nj.num);
    }
    if (rv == 0) {
        f->queued[sub->prio]++;
        rv = store__func_put(c->txn, sub->function, f);
    }
    if (rv == 0) {
        rv = store__fx_push(c->fx, STORE_FX_CREATED, &sub->client, &e);
    }
    if (rv == 0) {
        e->background = sub->background;
        rv = fx_handle(c, nj.num, &e->handle);
    }
    if (rv == 0 && is_runnable(c, nj.when)) {
        rv = fx_wake(c, sub->function);
    }
    return rv;
}

/* A unique key of "-" stands for the payload (docs/protocol.md,
 * "Coalescing"). */
static bool unique_is_dash(const struct store_submit *sub)
{
    return sub->unique.len == 1 && sub->unique.base[0] == '-';
}

/* Why apply refuses sub whatever the state (its error code, and *text),
 * or NULL. */
static const char *submit_refusal(const struct store_submit *sub,
                                  const char **text)
{
    if (sub->function.len == 0 || has_nul(sub->function)) {
        *text = "Function name is empty or invalid";
        return "INVALID_FUNCTION_NAME";
    }
    if (sub->function.len > STORE_FUNCTION_MAX) {
        *text = "Function name too large";
        return "ARGUMENT_TOO_LARGE";
    }
    if (sub->unique.len > STORE_UNIQUE_MAX) {
        *text = "Unique value too large";
        return "ARGUMENT_TOO_LARGE";
    }
    if ((unsigned)sub->prio >= STORE_PRIO_COUNT) {
        *text = "Invalid priority";
        return "INVALID_ARGUMENT";
    }
    return NULL;
}

int store_submit_queues_new(struct store_txn *txn,
                            const struct store_submit *sub, bool *out)
{
    uint8_t ukey[STORE__UNIQ_KEY_MAX];
    struct store__func f;
    const char *text;
    MDB_val v;
    int rv;

    *out = false;
    if (submit_refusal(sub, &text) != NULL || sub->when != 0) {
        return 0;
    }
    if (sub->unique.len > 0) {
        size_t n = store__uniq_key(ukey, sub->function, sub->unique, sub->data,
                                   unique_is_dash(sub));

        rv = store__get(txn, STORE__DB_UNIQ, ukey, n, &v);
        if (rv != STORE_ENOTFOUND) {
            return rv; /* 0: there is such a job, which it would join */
        }
    }
    rv = store__func_get(txn, sub->function, &f);
    if (rv == STORE_ENOTFOUND) {
        *out = true;
        return 0;
    }
    if (rv == 0) {
        *out = f.maxqueue[sub->prio] <= 0;
    }
    return rv;
}

static int do_submit(struct ctx *c, const struct store_submit *sub)
{
    uint8_t ukey[STORE__UNIQ_KEY_MAX];
    struct store__func f;
    bool dash;
    bool index_unique;
    size_t ukey_len = 0;
    const char *text;
    const char *code = submit_refusal(sub, &text);
    int rv;

    if (code != NULL) {
        return fx_refused(c, &sub->client, code, text);
    }
    dash = unique_is_dash(sub);
    index_unique = sub->unique.len > 0;

    /* Coalescing (docs/protocol.md, "Coalescing"). */
    if (index_unique) {
        bool joined;
        bool collision;

        ukey_len =
            store__uniq_key(ukey, sub->function, sub->unique, sub->data, dash);
        rv = submit_join(c, sub, ukey, ukey_len, dash, &joined, &collision);
        if (rv != 0 || joined) {
            return rv;
        }
        index_unique = !collision;
    }

    rv = store__func_get(c->txn, sub->function, &f);
    if (rv == STORE_ENOTFOUND) {
        memset(&f, 0, sizeof(f));
        rv = 0;
    }
    if (rv != 0) {
        return rv;
    }
    /* Max queue (docs/protocol.md, "Cancel, drop and max queue"): all queued
     * and running jobs of the function against the limit of the submitted
     * priority. */
    if (f.maxqueue[sub->prio] > 0 &&
        func_total(&f) >= (uint64_t)f.maxqueue[sub->prio]) {
        return fx_refused(c, &sub->client, "QUEUE_ERROR", "Job queue is full");
    }
    return submit_new(c, sub, &f, ukey, ukey_len, dash, index_unique);
}

struct runnable_arg {
    const uint8_t *prefix; /* the function name and its NUL */
    size_t fn_len;
    uint64_t now_s;
    store_skip_fn skip; /* NULL: none passed over */
    void *skip_arg;
    uint64_t *num;
};

static int runnable_one(void *arg, const MDB_val *k, const MDB_val *v)
{
    struct runnable_arg *a = arg;
    uint64_t when;

    if (!store__key_has_prefix(k, a->prefix, a->fn_len + 1)) {
        return STORE__WALK_STOP;
    }
    if (k->mv_size != a->fn_len + 18 || v->mv_size != 8) {
        return STORE_ECORRUPT;
    }
    when = store__get64(v->mv_data);
    /* Epoch jobs not yet due keep their place (docs/protocol.md,
     * "Scheduled (epoch) jobs"). */
    if (when == 0 || when <= a->now_s) {
        uint64_t num = store__get64((uint8_t *)k->mv_data + a->fn_len + 10);

        if (a->skip != NULL && a->skip(a->skip_arg, num)) {
            return 0;
        }
        *a->num = num;
        return STORE__WALK_STOP;
    }
    return 0;
}

/* Finds the first runnable job of fn that skip (if not NULL) does not
 * name: best priority, then queue order (docs/protocol.md, "Priorities
 * and order"). *num = 0 when
 * there is none. */
static int find_runnable(struct store_txn *txn, struct store_buf fn,
                         uint64_t now_s, store_skip_fn skip, void *skip_arg,
                         uint64_t *num)
{
    uint8_t prefix[STORE_FUNCTION_MAX + 1];
    struct runnable_arg a = {prefix, fn.len, now_s, skip, skip_arg, num};
    int rv;

    *num = 0;
    if (fn.len == 0 || fn.len > STORE_FUNCTION_MAX) {
        return 0;
    }
    memcpy(prefix, fn.base, fn.len);
    prefix[fn.len] = 0;
    rv =
        store__walk(txn, STORE__DB_READY, prefix, fn.len + 1, runnable_one, &a);
    return rv == STORE__WALK_STOP ? 0 : rv;
}

/* The job an ordinary GRAB takes: 1.1.x gives the first of the worker's
 * functions that has a runnable job, whatever the priorities of the
 * others (docs/protocol.md, "Priorities and order"). */
int store__pick_runnable(struct store_txn *txn,
                         const struct store_buf *functions, size_t n_functions,
                         uint64_t now_ms, store_skip_fn skip, void *skip_arg,
                         uint64_t *num)
{
    size_t i;
    int rv = 0;

    *num = 0;
    for (i = 0; i < n_functions && *num == 0 && rv == 0; i++) {
        rv = find_runnable(txn, functions[i], now_ms / 1000u, skip, skip_arg,
                           num);
    }
    return rv;
}

static bool below_min(void *arg, uint64_t num)
{
    return num < *(const uint64_t *)arg;
}

/* True if job j may be handed to the worker of a GRAB that names it: it
 * is queued, and of one of the worker's functions. */
static bool grab_may_take(const struct store_grab *g,
                          const struct store__job *j)
{
    size_t i;

    if (j->flags & STORE__JOB_RUNNING) {
        return false;
    }
    for (i = 0; i < g->n_functions; i++) {
        if (store__buf_eq(g->functions[i], j->function)) {
            return true;
        }
    }
    return false;
}

/* ASSIGN of j to the worker: the effect with the job's bytes. */
static int fx_assign(struct ctx *c, const struct store_conn_ref *worker,
                     struct store__job *j)
{
    struct store_effect *e;
    struct store_buf data;
    int rv;

    rv = store__fx_push(c->fx, STORE_FX_ASSIGN, worker, &e);
    if (rv == 0) {
        e->job = j->num;
        rv = fx_handle(c, j->num, &e->handle);
    }
    if (rv == 0) {
        rv = store__fx_copy(c->fx, j->function, &e->function);
    }
    if (rv == 0) {
        rv = store__fx_copy(c->fx, j->unique, &e->unique);
    }
    if (rv == 0) {
        rv = store__fx_copy(c->fx, j->reducer, &e->reducer);
    }
    if (rv == 0) {
        rv = store__job_data(c->txn, j, &data);
    }
    if (rv == 0) {
        rv = store__fx_copy(c->fx, data, &e->data);
    }
    return rv;
}

static int do_grab(struct ctx *c, const struct store_grab *g)
{
    uint8_t key[STORE__REF_KEY_LEN];
    struct store__job j;
    struct store_effect *e;
    uint64_t num = g->job;
    int rv = 0;

    if (num == 0) {
        uint64_t min = g->min_job; /* with it, jobs from min on only */

        rv = store__pick_runnable(c->txn, g->functions, g->n_functions,
                                  c->now_ms, min > 0 ? below_min : NULL, &min,
                                  &num);
        if (rv != 0) {
            return rv;
        }
    }
    if (num == 0) {
        return store__fx_push(c->fx, STORE_FX_NO_JOB, &g->worker, &e);
    }
    store__job_init(&j);
    rv = store__job_load(c->txn, num, &j);
    if (g->job != 0 &&
        (rv == STORE_ENOTFOUND || (rv == 0 && !grab_may_take(g, &j)))) {
        /* The named job went meanwhile: its node promised not to let that
         * happen (node/gm_session.c), so this is its bug, reported. */
        rv = store__fx_push(c->fx, STORE_FX_NO_JOB, &g->worker, &e);
        goto out;
    }
    if (rv == STORE_ENOTFOUND || (rv == 0 && (j.flags & STORE__JOB_RUNNING))) {
        rv = STORE_ECORRUPT; /* the ready queue points at no queued job */
    }
    if (rv == 0) {
        rv = fx_assign(c, &g->worker, &j);
    }
    if (rv == 0) {
        rv = store__job_unqueue(c->txn, &j);
    }
    if (rv == 0) {
        j.flags |= STORE__JOB_RUNNING;
        j.worker = g->worker;
        rv = store__job_store(c->txn, &j);
    }
    if (rv == 0) {
        store__ref_key(key, &g->worker, j.num);
        rv = store__put(c->txn, STORE__DB_ASSIGN, key, sizeof(key), "", 0, 0);
    }
    if (rv == 0) {
        rv = func_adjust(c, j.function, j.prio, -1, 1);
    }
out:
    store__job_close(&j);
    return rv;
}

/* atoi-like and deterministic: optional blanks and sign, then leading
 * decimal digits, wrapping modulo 2^32 as gearmand's int-to-uint32 does
 * for values in range. */
static uint32_t parse_u32(struct store_buf b)
{
    size_t i = 0;
    uint32_t v = 0;
    bool neg = false;

    while (i < b.len &&
           (b.base[i] == ' ' || b.base[i] == '\t' || b.base[i] == '\n' ||
            b.base[i] == '\r' || b.base[i] == '\v' || b.base[i] == '\f')) {
        i++;
    }
    if (i < b.len && (b.base[i] == '+' || b.base[i] == '-')) {
        neg = b.base[i] == '-';
        i++;
    }
    for (; i < b.len && b.base[i] >= '0' && b.base[i] <= '9'; i++) {
        v = v * 10u + (uint32_t)(b.base[i] - '0');
    }
    return neg ? (uint32_t)(0u - v) : v;
}

static int do_work(struct ctx *c, const struct store_work *w)
{
    struct store__job j;
    bool found;
    int rv;

    store__job_init(&j);
    rv = load_handle(c, w->handle, &j, &found);
    if (rv != 0) {
        goto out;
    }
    /* Only the connection holding the job may report on it
     * (docs/protocol.md, "Results"). */
    if (!found || (j.flags & STORE__JOB_RUNNING) == 0 ||
        !store__ref_eq(&j.worker, &w->worker)) {
        rv = fx_refused(c, &w->worker, "JOB_NOT_FOUND",
                        "Job given in work result not found");
        goto out;
    }
    switch (w->kind) {
    case STORE_WORK_STATUS:
        j.numerator = parse_u32(w->numerator);
        j.denominator = parse_u32(w->denominator);
        rv = store__job_store(c->txn, &j);
        if (rv == 0) {
            rv = fx_forward(c, &j, w->kind, w->data, w->numerator,
                            w->denominator);
        }
        break;
    case STORE_WORK_DATA:
    case STORE_WORK_WARNING:
        rv = fx_forward(c, &j, w->kind, w->data, w->numerator, w->denominator);
        break;
    case STORE_WORK_COMPLETE:
    case STORE_WORK_FAIL:
    case STORE_WORK_EXCEPTION:
        rv = fx_forward(c, &j, w->kind, w->data, w->numerator, w->denominator);
        if (rv == 0) {
            rv = job_end(c, &j);
        }
        break;
    default:
        rv = fx_refused(c, &w->worker, "INVALID_COMMAND",
                        "Command not expected");
        break;
    }
out:
    store__job_close(&j);
    return rv;
}

/* Requeues (or ends) the held jobs of a lost worker (job_requeue); with
 * a non-empty function, only that function's jobs. */
static int requeue_held(struct ctx *c, const struct refvec *held,
                        struct store_buf function, uint32_t max_retries)
{
    struct store__job j;
    size_t i;
    int rv = 0;

    store__job_init(&j);
    for (i = 0; rv == 0 && i < held->n; i++) {
        rv = load_indexed(c, held->nums[i], &j);
        if (rv != 0) {
            break;
        }
        if (function.len > 0 && !store__buf_eq(function, j.function)) {
            continue;
        }
        rv = job_requeue(c, &j, max_retries);
    }
    store__job_close(&j);
    return rv;
}

static int do_release(struct ctx *c, const struct store_release *r)
{
    uint8_t prefix[STORE__REF_LEN];
    struct refvec held = {NULL, NULL, 0, 0, 0};
    int rv;

    store__put_ref(prefix, &r->worker);
    rv =
        collect(c, STORE__DB_ASSIGN, prefix, sizeof(prefix), UINT64_MAX, &held);
    if (rv == 0) {
        rv = requeue_held(c, &held, r->function, r->max_retries);
    }
    refvec_free(&held);
    return rv;
}

static int do_timeout(struct ctx *c, const struct store_job_timeout *t)
{
    struct store__job j;
    bool found;
    int rv;

    store__job_init(&j);
    rv = load_handle(c, t->handle, &j, &found);
    if (rv == 0 && found && (j.flags & STORE__JOB_RUNNING) &&
        store__ref_eq(&j.worker, &t->worker)) {
        rv = job_requeue(c, &j, t->max_retries);
    }
    store__job_close(&j);
    return rv;
}

/* Detaches waiters (ref, job) and deletes their waits entries. With
 * may_drop, a job left without waiters and never background-held is
 * dropped if queued, or flagged ignore if running (docs/protocol.md,
 * "Disconnects", with the coalescing fix above). */
static int detach(struct ctx *c, const struct refvec *w, bool may_drop)
{
    uint8_t key[STORE__REF_KEY_LEN];
    struct store__job j;
    size_t i;
    int rv = 0;

    store__job_init(&j);
    for (i = 0; rv == 0 && i < w->n; i++) {
        store__ref_key(key, &w->refs[i], w->nums[i]);
        rv = store__del(c->txn, STORE__DB_WAITS, key, sizeof(key));
        if (rv != 0) {
            break;
        }
        rv = load_indexed(c, w->nums[i], &j);
        if (rv != 0) {
            break;
        }
        drop_waiter(&j, &w->refs[i]);
        if (may_drop && j.n_waiters == 0 && (j.flags & STORE__JOB_BG) == 0) {
            if ((j.flags & STORE__JOB_RUNNING) == 0) {
                rv = job_end(c, &j);
                continue;
            }
            j.flags |= STORE__JOB_IGNORE;
        }
        rv = store__job_store(c->txn, &j);
    }
    store__job_close(&j);
    return rv;
}

static int do_client_gone(struct ctx *c, const struct store_conn_ref *client)
{
    uint8_t prefix[STORE__REF_LEN];
    struct refvec w = {NULL, NULL, 0, 0, 0};
    int rv;

    store__put_ref(prefix, client);
    rv = collect(c, STORE__DB_WAITS, prefix, sizeof(prefix), UINT64_MAX, &w);
    if (rv == 0) {
        rv = detach(c, &w, true);
    }
    refvec_free(&w);
    return rv;
}

static int do_node_gone(struct ctx *c, const struct store_node_gone *ng)
{
    static const struct store_buf all = {NULL, 0}; /* every function */
    uint8_t prefix[8];
    struct refvec w = {NULL, NULL, 0, 0, 0};
    struct refvec held = {NULL, NULL, 0, 0, 0};
    int rv;

    store__put64(prefix, ng->node_id);
    /* Clients of a lost node may reconnect elsewhere and re-attach by
     * resubmitting the same unique: detach, never drop. */
    rv = collect(c, STORE__DB_WAITS, prefix, sizeof(prefix), ng->incarnation,
                 &w);
    if (rv == 0) {
        rv = detach(c, &w, false);
    }
    if (rv == 0) {
        rv = collect(c, STORE__DB_ASSIGN, prefix, sizeof(prefix),
                     ng->incarnation, &held);
    }
    if (rv == 0) {
        rv = requeue_held(c, &held, all, ng->max_retries);
    }
    refvec_free(&held);
    refvec_free(&w);
    return rv;
}

static int do_cancel(struct ctx *c, const struct store_admin *a)
{
    static const struct store_buf none = {NULL, 0};
    struct store_buf data = {NULL, 0};
    struct store__job j;
    bool found;
    int rv;

    store__job_init(&j);
    rv = load_handle(c, a->handle, &j, &found);
    if (rv != 0) {
        goto out;
    }
    if (!found) {
        rv = fx_admin(c, &a->admin, "UNKNOWN_JOB");
        goto out;
    }
    /* Clients get WORK_FAIL; a running job's worker is not told
     * (docs/protocol.md, "Cancel, drop and max queue"). */
    rv = fx_forward(c, &j, STORE_WORK_FAIL, none, none, none);
    if (rv == 0 && (j.flags & STORE__JOB_RUNNING) == 0) {
        rv = job_end(c, &j);
    } else if (rv == 0) {
        rv = waits_del_all(c, &j);
        if (rv == 0 && (j.flags & STORE__JOB_DASH)) {
            rv = store__job_data(c->txn, &j, &data);
        }
        if (rv == 0) {
            /* A new submission of the same unique must not join it. */
            rv = store__job_uniq_del(c->txn, &j, data);
        }
        if (rv == 0) {
            j.n_waiters = 0;
            j.flags &=
                ~(uint32_t)(STORE__JOB_UNIQ | STORE__JOB_DASH | STORE__JOB_BG);
            j.flags |= STORE__JOB_IGNORE;
            rv = store__job_store(c->txn, &j);
        }
    }
    if (rv == 0) {
        rv = fx_admin(c, &a->admin, NULL);
    }
out:
    store__job_close(&j);
    return rv;
}

static bool fn_ok(struct store_buf fn)
{
    return fn.len > 0 && fn.len <= STORE_FUNCTION_MAX && !has_nul(fn);
}

const char *store_member_verdict_text(uint32_t verdict)
{
    static const char *const text[STORE_VERDICT_COUNT] = {
        [STORE_VERDICT_NONE] = "NOT_JUDGED No+leader+judged+the+change",
        [STORE_VERDICT_OK] = "OK",
        [STORE_VERDICT_BUSY] =
            "CHANGE_IN_PROGRESS Another+membership+change+is+not+committed+"
            "yet:+try+again",
        [STORE_VERDICT_CATCHUP] =
            "NOT_CAUGHT_UP The+learner+is+behind+the+log:+try+again+later",
        [STORE_VERDICT_LAST_VOTER] =
            "LAST_VOTER Removing+the+only+voter+would+leave+no+cluster",
        [STORE_VERDICT_UNKNOWN] = "UNKNOWN_MEMBER No+such+member",
        [STORE_VERDICT_EXISTS] = "ALREADY_MEMBER The+name+is+a+member+already",
        [STORE_VERDICT_TOO_MANY] =
            "TOO_MANY_MEMBERS The+configuration+is+full",
        [STORE_VERDICT_NOT_VOTER] =
            "NOT_A_VOTER Leadership+goes+to+voters+only:+promote+it+first",
        [STORE_VERDICT_SELF] = "ALREADY_LEADER That+member+leads+already",
        [STORE_VERDICT_NO_VOTER] =
            "NO_OTHER_VOTER No+other+voter+to+hand+leadership+to",
        [STORE_VERDICT_FAILED] = "CHANGE_FAILED The+leader+refused+the+change",
        [STORE_VERDICT_VOTER] = "ALREADY_VOTER The+member+votes+already",
        [STORE_VERDICT_USED] =
            "NAME_USED The+name+was+a+member's+before:+a+node+comes+back+"
            "under+a+new+name",
    };

    return verdict < STORE_VERDICT_COUNT ? text[verdict]
                                         : text[STORE_VERDICT_FAILED];
}

/* A membership change the leader judged: the member table's side of an
 * accepted one (raft/'s configuration holds ids only), and the answer. */
static int do_member(struct ctx *c, const struct store_member_change *m)
{
    int rv = 0;

    if (m->verdict != STORE_VERDICT_OK) {
        return fx_admin(c, &m->admin, store_member_verdict_text(m->verdict));
    }
    if (m->op == STORE_MEMBER_ADD) {
        rv = store_member_put(c->txn, &m->member);
        if (rv == STORE_EINVAL) {
            return fx_admin(c, &m->admin, "INVALID_ARGUMENTS Bad+member");
        }
    } else if (m->op == STORE_MEMBER_REMOVE) {
        struct store_node_gone g = {m->member.id, 0, 0};

        rv = store_member_del(c->txn, m->member.id);
        /* A node out of the configuration has no command applied any
         * more (store_apply): its workers' jobs go back to the queue and
         * its clients are detached now (no retry limit applies to a
         * removal). */
        if (rv == 0) {
            rv = store_node_incarnation(c->txn, m->member.id, &g.incarnation);
        }
        if (rv == 0 && g.incarnation > 0) {
            rv = do_node_gone(c, &g);
        }
    }
    return rv != 0 ? rv : fx_admin(c, &m->admin, NULL);
}

static int do_admin(struct ctx *c, enum store_cmd_type type,
                    const struct store_admin *a)
{
    struct store__func f;
    struct store_buf fn =
        type == STORE_CMD_MAXQUEUE ? a->maxqueue.function : a->function;
    int rv;
    int i;

    if (!fn_ok(fn)) {
        return fx_admin(c, &a->admin,
                        type == STORE_CMD_FUNC_DROP ? "function not found"
                                                    : "INVALID_ARGUMENTS");
    }
    rv = store__func_get(c->txn, fn, &f);
    if (rv != 0 && rv != STORE_ENOTFOUND) {
        return rv;
    }
    switch (type) {
    case STORE_CMD_MAXQUEUE:
        /* Existing functions only; unknown ones answer OK
         * (docs/protocol.md, "Cancel, drop and max queue"). */
        if (rv == 0) {
            for (i = 0; i < STORE_PRIO_COUNT; i++) {
                f.maxqueue[i] =
                    a->maxqueue.limit[i] < 0 ? 0 : a->maxqueue.limit[i];
            }
            rv = store__func_put(c->txn, fn, &f);
        } else {
            rv = 0;
        }
        return rv != 0 ? rv : fx_admin(c, &a->admin, NULL);
    case STORE_CMD_FUNC_CREATE:
        if (rv == STORE_ENOTFOUND) {
            memset(&f, 0, sizeof(f));
            rv = store__func_put(c->txn, fn, &f);
        }
        return rv != 0 ? rv : fx_admin(c, &a->admin, NULL);
    case STORE_CMD_FUNC_DROP:
        if (rv == STORE_ENOTFOUND) {
            return fx_admin(c, &a->admin, "function not found");
        }
        /* node/ refuses while workers are connected; here any job,
         * queued or running, keeps the function. */
        if (func_total(&f) > 0) {
            return fx_admin(c, &a->admin,
                            "there are still connected "
                            "workers or executing clients");
        }
        rv = store__del(c->txn, STORE__DB_FUNCS, fn.base, fn.len);
        return rv != 0 ? rv : fx_admin(c, &a->admin, NULL);
    default:
        return STORE_EINVAL;
    }
}

/* A command that overtook an earlier one of its proposer changes nothing;
 * its proposer hears so (OVERTAKEN) and proposes it again after the
 * earlier one. */
static int overtaken(struct ctx *c, const struct store_origin *o)
{
    struct store_conn_ref to = {o->node_id, o->incarnation, 0};
    struct store_effect *e;

    return store__fx_push(c->fx, STORE_FX_OVERTAKEN, &to, &e);
}

int store_apply(struct store_txn *txn, uint64_t index, uint64_t leader_time_ms,
                const struct store_cmd *cmd, struct store_effects *fx)
{
    struct ctx c;
    uint64_t applied;
    bool dup;
    bool over;
    int rv;

    if (!txn->write || index == 0) {
        return STORE_EINVAL;
    }
    c.txn = txn;
    c.s = txn->s;
    c.index = index;
    c.now_ms = leader_time_ms;
    c.fx = fx;
    rv = store_applied_index(txn, &applied);
    if (rv != 0) {
        return rv;
    }
    if (index <= applied) {
        return 0; /* applied before (a replay after restart) */
    }
    rv = store__dedupe(txn, &cmd->origin, &dup, &over);
    if (rv == 0 && over) {
        rv = overtaken(&c, &cmd->origin);
    }
    if (rv != 0 || dup || over) {
        goto done;
    }
    /* A command of a node out of the configuration - proposed before its
     * removal committed, and committed after it - changes nothing: what
     * it took (a job its worker grabbed, a client attached) would be
     * held by a node nobody will ever declare gone. Its proposer hears
     * nothing: it gets no entries any more. */
    if (cmd->origin.seq != 0) {
        bool outside;

        rv = store__member_outside(txn, cmd->origin.node_id, &outside);
        if (rv != 0 || outside) {
            goto done;
        }
    }
    switch (cmd->type) {
    case STORE_CMD_NOOP:
        break;
    case STORE_CMD_SUBMIT:
        rv = do_submit(&c, &cmd->u.submit);
        break;
    case STORE_CMD_GRAB:
        rv = do_grab(&c, &cmd->u.grab);
        break;
    case STORE_CMD_WORK:
        rv = do_work(&c, &cmd->u.work);
        break;
    case STORE_CMD_RELEASE:
        rv = do_release(&c, &cmd->u.release);
        break;
    case STORE_CMD_JOB_TIMEOUT:
        rv = do_timeout(&c, &cmd->u.timeout);
        break;
    case STORE_CMD_CLIENT_GONE:
        rv = do_client_gone(&c, &cmd->u.client_gone);
        break;
    case STORE_CMD_NODE_GONE:
        rv = do_node_gone(&c, &cmd->u.node_gone);
        break;
    case STORE_CMD_CANCEL:
        rv = do_cancel(&c, &cmd->u.admin);
        break;
    case STORE_CMD_MAXQUEUE:
    case STORE_CMD_FUNC_CREATE:
    case STORE_CMD_FUNC_DROP:
        rv = do_admin(&c, cmd->type, &cmd->u.admin);
        break;
    case STORE_CMD_MEMBER:
        rv = do_member(&c, &cmd->u.member);
        break;
    default:
        break; /* unknown to this version: changes nothing */
    }
done:
    if (rv == 0) {
        rv = store__meta_put_u64(txn, META_APPLIED, index);
    }
    if (rv == 0) {
        txn->applied_known = true;
        txn->applied = index;
    }
    if (rv == STORE_EINVAL || rv == STORE_ENOTFOUND || rv == STORE_EVERSION ||
        rv == STORE_ELOCKED || rv == STORE_EMALFORMED) {
        rv = STORE_EIO; /* never happens; keep the contract's codes */
    }
    return rv;
}

int store_applied_index(struct store_txn *txn, uint64_t *out)
{
    int rv;

    if (txn->applied_known) {
        *out = txn->applied;
        return 0;
    }
    rv = store__meta_get_u64(txn, META_APPLIED, out);
    if (rv == STORE_ENOTFOUND) {
        *out = 0;
        rv = 0;
    }
    if (rv == 0) {
        txn->applied_known = true;
        txn->applied = *out;
    }
    return rv;
}
