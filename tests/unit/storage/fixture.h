/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/storage/fixture.h - a fresh LMDB environment per test in a
 * mkdtemp directory, and helpers that drive store_apply() the way node/
 * does: encode the command, append it to the log, decode it back, apply,
 * commit, then look at the effects.
 *
 * Not here: assertions about behaviour (the test files).
 */
#ifndef GEARRAFT_TEST_STORAGE_FIXTURE_H
#define GEARRAFT_TEST_STORAGE_FIXTURE_H

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/store.h"

struct fixture {
    char dir[64];
    struct store *s;
    struct store_effects fx;
    uint64_t index;  /* last log index used */
    uint64_t now_ms; /* leader time stamped on the next command */
    uint64_t seq;    /* origin seq for the next command */
    size_t map_size;
};

static inline void fx_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];

    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static inline void fix_open(struct fixture *f)
{
    struct store_config cfg;
    char err[256];
    int rv;

    memset(&cfg, 0, sizeof(cfg));
    cfg.dir = f->dir;
    cfg.map_size = f->map_size;
    cfg.node_id = 1;
    cfg.cluster = "test";
    rv = store_open(&cfg, &f->s, err, sizeof(err));
    if (rv != 0) {
        fail_msg("store_open: %s (%s)", store_strerror(rv), err);
    }
}

/* store_open of cfg over a 64 MiB map (*out on success); a failure must
 * say why. Returns store_open's result. */
static inline int fix_try_open(struct store_config *cfg, struct store **out)
{
    char err[256];
    int rv;

    cfg->map_size = (size_t)64 << 20;
    err[0] = '\0';
    rv = store_open(cfg, out, err, sizeof(err));
    if (rv != 0) {
        assert_true(strlen(err) > 0);
    }
    return rv;
}

static inline void fix_reopen(struct fixture *f)
{
    store_close(f->s);
    f->s = NULL;
    fix_open(f);
}

static inline int fix_setup_sized(void **state, size_t map_size)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/gr-storage-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->map_size = map_size;
    f->now_ms = 1000000000000ull; /* 2001-09-09, in ms */
    fix_open(f);
    store_effects_init(&f->fx);
    *state = f;
    return 0;
}

static inline int fix_setup(void **state)
{
    return fix_setup_sized(state, (size_t)256 << 20);
}

static inline int fix_teardown(void **state)
{
    struct fixture *f = *state;

    store_effects_close(&f->fx);
    store_close(f->s);
    fx_rmdir(f->dir);
    free(f);
    return 0;
}

/* Appends log entries first..last to txn, each carrying the same payload
 * (big payloads for the space and file-size tests). */
static inline void fix_append_blobs(struct store_txn *txn, uint64_t first,
                                    uint64_t last, const uint8_t *data,
                                    size_t len)
{
    struct store_entry e;

    for (uint64_t i = first; i <= last; i++) {
        memset(&e, 0, sizeof(e));
        e.index = i;
        e.type = STORE_ENTRY_COMMAND;
        e.data.base = data;
        e.data.len = len;
        assert_int_equal(store_log_append(txn, &e), 0);
    }
}

/* Encodes cmd, appends it at the next index, decodes the entry read back
 * and applies that, all in one write txn, and commits. Effects are in
 * f->fx until the next call. Returns the first error. */
static inline int fix_apply(struct fixture *f, struct store_cmd *cmd)
{
    struct store_txn *txn;
    struct store_entry e;
    struct store_entry got;
    struct store_cmd *dec;
    uint8_t *bytes;
    size_t len;
    int rv;

    store_effects_reset(&f->fx);
    if (cmd->origin.seq == 0 && cmd->origin.node_id == 0) {
        cmd->origin.node_id = 1;
        cmd->origin.incarnation = store_incarnation(f->s);
        cmd->origin.seq = ++f->seq;
    }
    rv = store_cmd_encode(cmd, &bytes, &len);
    assert_int_equal(rv, 0);
    rv = store_txn_begin(f->s, true, &txn);
    assert_int_equal(rv, 0);
    memset(&e, 0, sizeof(e));
    e.index = f->index + 1;
    e.term = 1;
    e.leader_time_ms = f->now_ms;
    e.type = STORE_ENTRY_COMMAND;
    e.data.base = bytes;
    e.data.len = len;
    rv = store_log_append(txn, &e);
    if (rv == 0) {
        rv = store_log_get(txn, e.index, &got);
    }
    if (rv == 0) {
        rv = store_cmd_decode(got.data.base, got.data.len, &dec);
        if (rv == 0) {
            rv = store_apply(txn, got.index, got.leader_time_ms, dec, &f->fx);
            store_cmd_free(dec);
        }
    }
    store_free(bytes);
    if (rv != 0) {
        store_txn_abort(txn);
        return rv;
    }
    rv = store_txn_commit(txn);
    if (rv == 0) {
        f->index++;
    }
    return rv;
}

static inline struct store_buf B(const char *s) {
    struct store_buf b;

    b.base = (const uint8_t *)s;
    b.len = s == NULL ? 0 : strlen(s);
    return b;
}

static inline struct store_conn_ref
REF(uint64_t node, uint64_t inc, uint64_t conn) {
    struct store_conn_ref r;

    r.node_id = node;
    r.incarnation = inc;
    r.conn_id = conn;
    return r;
}

/* A connection of this node's current incarnation. */
static inline struct store_conn_ref
CONN(struct fixture *f, uint64_t conn) {
    return REF(1, store_incarnation(f->s), conn);
}

static inline bool
ref_eq(struct store_conn_ref a, struct store_conn_ref b)
{
    return a.node_id == b.node_id && a.incarnation == b.incarnation &&
           a.conn_id == b.conn_id;
}

static inline bool buf_is(struct store_buf b, const char *s)
{
    return b.len == strlen(s) && memcmp(b.base, s, b.len) == 0;
}

/* The i-th effect of `type` of the last apply, or NULL. */
static inline const struct store_effect *
fx_find(struct fixture *f, enum store_effect_type type, size_t i)
{
    size_t k;

    for (k = 0; k < f->fx.n; k++) {
        if (f->fx.v[k].type == type) {
            if (i == 0) {
                return &f->fx.v[k];
            }
            i--;
        }
    }
    return NULL;
}

static inline size_t fx_count(struct fixture *f, enum store_effect_type type)
{
    size_t k;
    size_t n = 0;

    for (k = 0; k < f->fx.n; k++) {
        n += f->fx.v[k].type == type;
    }
    return n;
}

/* Copies a handle out of an effect into out (NUL-terminated). */
static inline void handle_copy(struct store_buf h, char *out, size_t out_len)
{
    assert_true(h.len < out_len);
    memcpy(out, h.base, h.len);
    out[h.len] = '\0';
}

struct submit_opts {
    const char *fn;
    const char *unique;
    const char *data;
    enum store_prio prio;
    bool bg;
    uint64_t when;
    uint64_t client;
};

/* Submission options with no epoch time; NULL strings are empty. */
static inline struct submit_opts S(const char *fn, const char *unique,
                                   const char *data, enum store_prio prio,
                                   bool bg, uint64_t client) {
    struct submit_opts o;

    memset(&o, 0, sizeof(o));
    o.fn = fn;
    o.unique = unique;
    o.data = data;
    o.prio = prio;
    o.bg = bg;
    o.client = client;
    return o;
}

/* The SUBMIT command for o, from connection CONN(f, o.client); tests that
 * need more (a reducer, binary data, an origin) set it before applying. */
static inline struct store_cmd
fix_submit_cmd(struct fixture *f, struct submit_opts o)
{
    struct store_cmd c;

    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_SUBMIT;
    c.u.submit.function = B(o.fn);
    c.u.submit.unique = B(o.unique);
    c.u.submit.data = B(o.data);
    c.u.submit.prio = o.prio;
    c.u.submit.background = o.bg;
    c.u.submit.when = o.when;
    c.u.submit.client = CONN(f, o.client);
    return c;
}

/* The handle of the CREATED effect of the last apply, into out. */
static inline void fix_created(struct fixture *f, char *out, size_t out_len)
{
    const struct store_effect *e = fx_find(f, STORE_FX_CREATED, 0);

    assert_non_null(e);
    handle_copy(e->handle, out, out_len);
}

/* Submits; returns the CREATED handle in out (or "" when refused). */
static inline void fix_submit(struct fixture *f, struct submit_opts o,
                              char *out, size_t out_len)
{
    struct store_cmd c = fix_submit_cmd(f, o);
    const struct store_effect *e;

    assert_int_equal(fix_apply(f, &c), 0);
    e = fx_find(f, STORE_FX_CREATED, 0);
    out[0] = '\0';
    if (e != NULL) {
        assert_true(ref_eq(e->to, c.u.submit.client));
        handle_copy(e->handle, out, out_len);
    }
}

/* Applies the GRAB c; returns the assigned handle in out, or "" for
 * NO_JOB. */
static inline void fix_grab_apply(struct fixture *f, struct store_cmd *c,
                                  char *out, size_t out_len)
{
    const struct store_effect *e;

    assert_int_equal(fix_apply(f, c), 0);
    out[0] = '\0';
    e = fx_find(f, STORE_FX_ASSIGN, 0);
    if (e != NULL) {
        handle_copy(e->handle, out, out_len);
    } else {
        assert_non_null(fx_find(f, STORE_FX_NO_JOB, 0));
    }
}

/* Grabs for worker `w` over the NULL-terminated function list; returns
 * the assigned handle in out, or "" for NO_JOB. */
static inline void fix_grab(struct fixture *f, uint64_t w, char *out,
                            size_t out_len, ...)
{
    struct store_buf fns[8];
    struct store_cmd c;
    const char *fn;
    size_t n = 0;
    va_list ap;

    va_start(ap, out_len);
    while ((fn = va_arg(ap, const char *)) != NULL && n < 8) {
        fns[n++] = B(fn);
    }
    va_end(ap);
    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_GRAB;
    c.u.grab.worker = CONN(f, w);
    c.u.grab.functions = fns;
    c.u.grab.n_functions = n;
    fix_grab_apply(f, &c, out, out_len);
}

static inline void fix_work(struct fixture *f, uint64_t w,
                            enum store_work_kind kind, const char *handle,
                            const char *data)
{
    struct store_cmd c;

    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_WORK;
    c.u.work.worker = CONN(f, w);
    c.u.work.kind = kind;
    c.u.work.handle = B(handle);
    c.u.work.data = B(data);
    assert_int_equal(fix_apply(f, &c), 0);
}

static inline void fix_release(struct fixture *f, uint64_t w, const char *fn,
                               uint32_t max_retries)
{
    struct store_cmd c;

    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_RELEASE;
    c.u.release.worker = CONN(f, w);
    c.u.release.function = B(fn);
    c.u.release.max_retries = max_retries;
    assert_int_equal(fix_apply(f, &c), 0);
}

/* JOB_TIMEOUT of the job `handle` as seen by worker connection w. */
static inline void fix_job_timeout(struct fixture *f, uint64_t w,
                                   const char *handle)
{
    struct store_cmd c;

    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_JOB_TIMEOUT;
    c.u.timeout.worker = CONN(f, w);
    c.u.timeout.handle = B(handle);
    assert_int_equal(fix_apply(f, &c), 0);
}

static inline void fix_client_gone(struct fixture *f, uint64_t client)
{
    struct store_cmd c;

    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_CLIENT_GONE;
    c.u.client_gone = CONN(f, client);
    assert_int_equal(fix_apply(f, &c), 0);
}

static inline struct store_job_status fix_status(struct fixture *f,
                                                 const char *handle)
{
    struct store_job_status st;
    struct store_txn *txn;

    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_job_status(txn, B(handle), &st), 0);
    store_txn_abort(txn);
    return st;
}

struct fcounts {
    const char *name;
    bool found;
    struct store_func_info info;
};

static inline int fcounts_cb(void *arg, const struct store_func_info *fi)
{
    struct fcounts *c = arg;

    if (buf_is(fi->name, c->name)) {
        c->found = true;
        c->info = *fi;
        c->info.name.base = NULL; /* borrowed for the call only */
    }
    return 0;
}

static inline struct fcounts fix_func(struct fixture *f, const char *name)
{
    struct fcounts c;
    struct store_txn *txn;

    memset(&c, 0, sizeof(c));
    c.name = name;
    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_funcs_walk(txn, fcounts_cb, &c), 0);
    store_txn_abort(txn);
    return c;
}

#endif /* GEARRAFT_TEST_STORAGE_FIXTURE_H */
