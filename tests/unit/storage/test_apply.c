/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/storage/test_apply.c - store_apply() on a real LMDB: every
 * command and the gearmand 1.1.20 job semantics of docs/protocol.md ("Job
 * semantics").
 *
 * Each test drives the store as node/ would (encode, append, decode,
 * apply, commit) and checks what a Gearman user would see: handles,
 * assignment order, forwarded packets, admin counts.
 */
#include "storage/internal.h"
#include "unit/storage/fixture.h"

#define H 64

static void test_submit_creates_job_and_wakes(void **state)
{
    struct fixture *f = *state;
    char h[H];
    const struct store_effect *e;
    struct store_job_status st;
    struct fcounts fc;

    fix_submit(f, S("reverse", "", "hello", STORE_PRIO_NORMAL, false, 7), h, H);
    assert_string_equal(h, "H:test:1");
    e = fx_find(f, STORE_FX_CREATED, 0);
    assert_false(e->coalesced);
    assert_false(e->background);
    e = fx_find(f, STORE_FX_WAKE, 0);
    assert_non_null(e);
    assert_true(buf_is(e->function, "reverse"));
    st = fix_status(f, h);
    assert_true(st.known);
    assert_false(st.running);
    assert_int_equal(st.n_waiting, 1);
    fc = fix_func(f, "reverse");
    assert_true(fc.found);
    assert_int_equal(fc.info.queued[STORE_PRIO_NORMAL], 1);
    assert_int_equal(fc.info.running, 0);
}

static void test_grab_gives_priority_then_fifo(void **state)
{
    struct fixture *f = *state;
    char low[H], n1[H], high[H], n2[H], g[H];

    fix_submit(f, S("A", "", "low", STORE_PRIO_LOW, true, 1), low, H);
    fix_submit(f, S("A", "", "n1", STORE_PRIO_NORMAL, true, 1), n1, H);
    fix_submit(f, S("A", "", "high", STORE_PRIO_HIGH, true, 1), high, H);
    fix_submit(f, S("A", "", "n2", STORE_PRIO_NORMAL, true, 1), n2, H);
    fix_grab(f, 9, g, H, "A", NULL);
    assert_string_equal(g, high);
    fix_grab(f, 9, g, H, "A", NULL);
    assert_string_equal(g, n1);
    fix_grab(f, 9, g, H, "A", NULL);
    assert_string_equal(g, n2);
    fix_grab(f, 9, g, H, "A", NULL);
    assert_string_equal(g, low);
    fix_grab(f, 9, g, H, "A", NULL);
    assert_string_equal(g, "");
}

/* docs/protocol.md, "Priorities and order", checked against gearmand: a
 * worker registered pB then pA (so walks pA first); jobs A-low, B-high,
 * A-normal. */
static void test_grab_walks_functions_in_given_order(void **state)
{
    struct fixture *f = *state;
    char al[H], bh[H], an[H], g[H];

    fix_submit(f, S("pA", "", "a-low", STORE_PRIO_LOW, true, 1), al, H);
    fix_submit(f, S("pB", "", "b-high", STORE_PRIO_HIGH, true, 1), bh, H);
    fix_submit(f, S("pA", "", "a-normal", STORE_PRIO_NORMAL, true, 1), an, H);
    fix_grab(f, 9, g, H, "pA", "pB", NULL);
    assert_string_equal(g, an);
    fix_grab(f, 9, g, H, "pA", "pB", NULL);
    assert_string_equal(g, al);
    fix_grab(f, 9, g, H, "pA", "pB", NULL);
    assert_string_equal(g, bh);
}

static void test_assign_carries_job_fields_and_large_payload(void **state)
{
    struct fixture *f = *state;
    struct store_cmd c;
    const struct store_effect *e;
    char h[H];
    char g[H];
    size_t big = 200000;
    uint8_t *data = malloc(big);
    struct fcounts fc;
    size_t i;

    for (i = 0; i < big; i++) {
        data[i] = (uint8_t)(i * 7);
    }
    c = fix_submit_cmd(f, S("fn", "u-1", NULL, STORE_PRIO_NORMAL, false, 3));
    c.u.submit.reducer = B("red");
    c.u.submit.data.base = data;
    c.u.submit.data.len = big;
    assert_int_equal(fix_apply(f, &c), 0);
    fix_created(f, h, H);
    fix_grab(f, 9, g, H, "fn", NULL);
    assert_string_equal(g, h);
    e = fx_find(f, STORE_FX_ASSIGN, 0);
    assert_true(ref_eq(e->to, CONN(f, 9)));
    assert_true(buf_is(e->function, "fn"));
    assert_true(buf_is(e->unique, "u-1"));
    assert_true(buf_is(e->reducer, "red"));
    assert_int_equal(e->data.len, big);
    assert_memory_equal(e->data.base, data, big);
    assert_true(fix_status(f, h).running);
    fc = fix_func(f, "fn");
    assert_int_equal(fc.info.queued[STORE_PRIO_NORMAL], 0);
    assert_int_equal(fc.info.running, 1);
    /* Completing deletes the large payload with the job. */
    fix_work(f, 9, STORE_WORK_COMPLETE, h, "r");
    assert_false(fix_status(f, h).known);
    free(data);
}

static void test_coalesced_foreground_clients_all_get_result(void **state)
{
    struct fixture *f = *state;
    char h1[H], h2[H], g[H];
    const struct store_effect *e;

    fix_submit(f, S("fn", "same", "d", STORE_PRIO_NORMAL, false, 1), h1, H);
    fix_submit(f, S("fn", "same", "d", STORE_PRIO_NORMAL, false, 2), h2, H);
    assert_string_equal(h1, h2);
    assert_true(fx_find(f, STORE_FX_CREATED, 0)->coalesced);
    assert_int_equal(fix_status(f, h1).n_waiting, 2);
    fix_grab(f, 9, g, H, "fn", NULL);
    fix_work(f, 9, STORE_WORK_DATA, g, "part");
    assert_int_equal(fx_count(f, STORE_FX_FORWARD), 2);
    fix_work(f, 9, STORE_WORK_COMPLETE, g, "result");
    assert_int_equal(fx_count(f, STORE_FX_FORWARD), 2);
    e = fx_find(f, STORE_FX_FORWARD, 0);
    assert_int_equal(e->work_kind, STORE_WORK_COMPLETE);
    assert_true(ref_eq(e->to, CONN(f, 1)));
    assert_true(buf_is(e->data, "result"));
    assert_true(buf_is(e->handle, h1));
    assert_true(ref_eq(fx_find(f, STORE_FX_FORWARD, 1)->to, CONN(f, 2)));
    assert_non_null(fx_find(f, STORE_FX_JOB_DONE, 0));
    assert_false(fix_status(f, h1).known);
}

static void test_first_submission_fixes_priority_and_payload(void **state)
{
    struct fixture *f = *state;
    char h1[H], h2[H], g[H];
    struct fcounts fc;

    fix_submit(f, S("fn", "k", "first", STORE_PRIO_NORMAL, true, 1), h1, H);
    fix_submit(f, S("fn", "k", "second", STORE_PRIO_HIGH, false, 2), h2, H);
    assert_string_equal(h1, h2);
    fc = fix_func(f, "fn");
    assert_int_equal(fc.info.queued[STORE_PRIO_NORMAL], 1);
    assert_int_equal(fc.info.queued[STORE_PRIO_HIGH], 0);
    fix_grab(f, 9, g, H, "fn", NULL);
    assert_true(buf_is(fx_find(f, STORE_FX_ASSIGN, 0)->data, "first"));
}

static void test_empty_unique_never_coalesces_dash_uses_payload(void **state)
{
    struct fixture *f = *state;
    char a[H], b[H], c[H], d[H], e[H];

    fix_submit(f, S("fn", "", "x", STORE_PRIO_NORMAL, true, 1), a, H);
    fix_submit(f, S("fn", "", "x", STORE_PRIO_NORMAL, true, 1), b, H);
    assert_string_not_equal(a, b);
    fix_submit(f, S("fn", "-", "payload", STORE_PRIO_NORMAL, true, 1), c, H);
    fix_submit(f, S("fn", "-", "payload", STORE_PRIO_NORMAL, false, 2), d, H);
    assert_string_equal(c, d);
    fix_submit(f, S("fn", "-", "other", STORE_PRIO_NORMAL, true, 1), e, H);
    assert_string_not_equal(c, e);
    /* Another function never coalesces with these. */
    fix_submit(f, S("fn2", "-", "payload", STORE_PRIO_NORMAL, true, 1), e, H);
    assert_string_not_equal(c, e);
}

static void test_coalesces_with_running_job(void **state)
{
    struct fixture *f = *state;
    char h1[H], h2[H], g[H];

    fix_submit(f, S("fn", "u", "d", STORE_PRIO_NORMAL, false, 1), h1, H);
    fix_grab(f, 9, g, H, "fn", NULL);
    fix_submit(f, S("fn", "u", "d", STORE_PRIO_NORMAL, false, 2), h2, H);
    assert_string_equal(h1, h2);
    assert_null(fx_find(f, STORE_FX_WAKE, 0));
    fix_work(f, 9, STORE_WORK_COMPLETE, g, "r");
    assert_int_equal(fx_count(f, STORE_FX_FORWARD), 2);
    /* After the end, the same unique makes a new job. */
    fix_submit(f, S("fn", "u", "d", STORE_PRIO_NORMAL, false, 2), h2, H);
    assert_string_not_equal(h1, h2);
}

static void test_client_gone_drops_queued_foreground_job(void **state)
{
    struct fixture *f = *state;
    char h[H], g[H];
    struct fcounts fc;

    fix_submit(f, S("fn", "", "d", STORE_PRIO_NORMAL, false, 5), h, H);
    fix_client_gone(f, 5);
    assert_true(buf_is(fx_find(f, STORE_FX_JOB_DONE, 0)->handle, h));
    assert_false(fix_status(f, h).known);
    fc = fix_func(f, "fn");
    assert_int_equal(fc.info.queued[STORE_PRIO_NORMAL], 0);
    fix_grab(f, 9, g, H, "fn", NULL);
    assert_string_equal(g, "");
}

static void
test_client_gone_keeps_job_a_background_submission_holds(void **state)
{
    struct fixture *f = *state;
    char h1[H], h2[H], g[H];

    /* Foreground first, background joins (gearmand loses this job). */
    fix_submit(f, S("fn", "k1", "d", STORE_PRIO_NORMAL, false, 5), h1, H);
    fix_submit(f, S("fn", "k1", "d", STORE_PRIO_NORMAL, true, 6), h2, H);
    assert_string_equal(h1, h2);
    fix_client_gone(f, 5);
    assert_null(fx_find(f, STORE_FX_JOB_DONE, 0));
    assert_true(fix_status(f, h1).known);
    /* Background first, foreground joins. */
    fix_submit(f, S("fn", "k2", "d", STORE_PRIO_NORMAL, true, 6), h2, H);
    fix_submit(f, S("fn", "k2", "d", STORE_PRIO_NORMAL, false, 7), h2, H);
    fix_client_gone(f, 7);
    assert_true(fix_status(f, h2).known);
    assert_int_equal(fix_status(f, h2).n_waiting, 0);
    fix_grab(f, 9, g, H, "fn", NULL);
    assert_string_equal(g, h1);
    fix_grab(f, 9, g, H, "fn", NULL);
    assert_string_equal(g, h2);
}

static void
test_client_gone_running_job_continues_result_goes_nowhere(void **state)
{
    struct fixture *f = *state;
    char h[H], g[H];

    fix_submit(f, S("fn", "", "d", STORE_PRIO_NORMAL, false, 5), h, H);
    fix_grab(f, 9, g, H, "fn", NULL);
    fix_client_gone(f, 5);
    assert_null(fx_find(f, STORE_FX_JOB_DONE, 0));
    assert_true(fix_status(f, h).running);
    fix_work(f, 9, STORE_WORK_COMPLETE, h, "r");
    assert_null(fx_find(f, STORE_FX_REFUSED, 0));
    assert_int_equal(fx_count(f, STORE_FX_FORWARD), 0);
    assert_non_null(fx_find(f, STORE_FX_JOB_DONE, 0));

    /* Same situation, but the worker is lost: nobody wants the result,
     * so the job is dropped rather than requeued. */
    fix_submit(f, S("fn", "", "d", STORE_PRIO_NORMAL, false, 5), h, H);
    fix_grab(f, 9, g, H, "fn", NULL);
    fix_client_gone(f, 5);
    fix_release(f, 9, "", 0);
    assert_non_null(fx_find(f, STORE_FX_JOB_DONE, 0));
    assert_false(fix_status(f, h).known);
    assert_int_equal(fix_func(f, "fn").info.running, 0);
}

static void test_work_from_other_worker_is_refused(void **state)
{
    struct fixture *f = *state;
    char h[H], g[H];
    const struct store_effect *e;

    fix_submit(f, S("fn", "", "d", STORE_PRIO_NORMAL, false, 1), h, H);
    fix_work(f, 9, STORE_WORK_COMPLETE, h, "r"); /* not assigned yet */
    e = fx_find(f, STORE_FX_REFUSED, 0);
    assert_non_null(e);
    assert_true(buf_is(e->error_code, "JOB_NOT_FOUND"));
    assert_true(buf_is(e->text, "Job given in work result not found"));
    fix_grab(f, 9, g, H, "fn", NULL);
    fix_work(f, 8, STORE_WORK_COMPLETE, h, "r");
    e = fx_find(f, STORE_FX_REFUSED, 0);
    assert_true(ref_eq(e->to, CONN(f, 8)));
    assert_true(fix_status(f, h).running);
    fix_work(f, 9, STORE_WORK_COMPLETE, "H:test:999", "r");
    assert_non_null(fx_find(f, STORE_FX_REFUSED, 0));
    fix_work(f, 9, STORE_WORK_COMPLETE, "H:other:1", "r");
    assert_non_null(fx_find(f, STORE_FX_REFUSED, 0));
}

static void test_work_status_is_stored_and_forwarded(void **state)
{
    struct fixture *f = *state;
    struct store_cmd c;
    const struct store_effect *e;
    struct store_job_status st;
    char h[H], g[H];

    fix_submit(f, S("fn", "", "d", STORE_PRIO_NORMAL, false, 1), h, H);
    fix_grab(f, 9, g, H, "fn", NULL);
    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_WORK;
    c.u.work.worker = CONN(f, 9);
    c.u.work.kind = STORE_WORK_STATUS;
    c.u.work.handle = B(h);
    c.u.work.numerator = B("3x");
    c.u.work.denominator = B("10");
    assert_int_equal(fix_apply(f, &c), 0);
    e = fx_find(f, STORE_FX_FORWARD, 0);
    assert_int_equal(e->work_kind, STORE_WORK_STATUS);
    assert_true(buf_is(e->numerator, "3x"));
    assert_true(buf_is(e->denominator, "10"));
    st = fix_status(f, h);
    assert_int_equal(st.numerator, 3);
    assert_int_equal(st.denominator, 10);
    fix_work(f, 9, STORE_WORK_WARNING, h, "careful");
    assert_int_equal(fx_find(f, STORE_FX_FORWARD, 0)->work_kind,
                     STORE_WORK_WARNING);
    assert_true(fix_status(f, h).known); /* not an end */
    fix_work(f, 9, STORE_WORK_EXCEPTION, h, "boom");
    assert_int_equal(fx_find(f, STORE_FX_FORWARD, 0)->work_kind,
                     STORE_WORK_EXCEPTION);
    assert_false(fix_status(f, h).known);
}

struct jobs_seen {
    char handle[8][H];
    uint32_t retries[8];
    bool ignore[8];
    size_t n;
};

static int jobs_cb(void *arg, const struct store_job_info *j)
{
    struct jobs_seen *s = arg;

    if (s->n < 8) {
        handle_copy(j->handle, s->handle[s->n], H);
        s->retries[s->n] = j->retries;
        s->ignore[s->n] = j->ignore;
        s->n++;
    }
    return 0;
}

static struct jobs_seen fix_jobs(struct fixture *f)
{
    struct jobs_seen s;
    struct store_txn *txn;

    memset(&s, 0, sizeof(s));
    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_jobs_walk(txn, jobs_cb, &s), 0);
    store_txn_abort(txn);
    return s;
}

static void test_release_requeues_at_tail_with_retry(void **state)
{
    struct fixture *f = *state;
    struct store_cmd c;
    char x[H], y[H], g[H];
    struct jobs_seen js;

    fix_submit(f, S("fn", "", "x", STORE_PRIO_NORMAL, true, 1), x, H);
    fix_submit(f, S("fn", "", "y", STORE_PRIO_NORMAL, true, 1), y, H);
    fix_grab(f, 9, g, H, "fn", NULL);
    assert_string_equal(g, x);
    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_WORK;
    c.u.work.worker = CONN(f, 9);
    c.u.work.kind = STORE_WORK_STATUS;
    c.u.work.handle = B(x);
    c.u.work.numerator = B("1");
    c.u.work.denominator = B("2");
    assert_int_equal(fix_apply(f, &c), 0);
    fix_release(f, 9, "", 0);
    assert_true(buf_is(fx_find(f, STORE_FX_WAKE, 0)->function, "fn"));
    assert_int_equal(fx_count(f, STORE_FX_FORWARD), 0); /* clients not told */
    assert_false(fix_status(f, x).running);
    assert_int_equal(fix_status(f, x).numerator, 0);
    js = fix_jobs(f);
    assert_int_equal(js.n, 2);
    assert_string_equal(js.handle[0], x);
    assert_int_equal(js.retries[0], 1);
    fix_grab(f, 8, g, H, "fn", NULL);
    assert_string_equal(g, y);
    fix_grab(f, 8, g, H, "fn", NULL);
    assert_string_equal(g, x);
}

static void test_release_by_function_only_releases_that_function(void **state)
{
    struct fixture *f = *state;
    char a[H], b[H], g[H];

    fix_submit(f, S("fa", "", "a", STORE_PRIO_NORMAL, true, 1), a, H);
    fix_submit(f, S("fb", "", "b", STORE_PRIO_NORMAL, true, 1), b, H);
    fix_grab(f, 9, g, H, "fa", NULL);
    fix_grab(f, 9, g, H, "fb", NULL);
    fix_release(f, 9, "fa", 0);
    assert_false(fix_status(f, a).running);
    assert_true(fix_status(f, b).running);
    fix_work(f, 9, STORE_WORK_COMPLETE, b, "");
    assert_null(fx_find(f, STORE_FX_REFUSED, 0));
}

static void test_retry_limit_fails_job(void **state)
{
    struct fixture *f = *state;
    char h[H], g[H];
    const struct store_effect *e;

    fix_submit(f, S("fn", "", "d", STORE_PRIO_NORMAL, false, 1), h, H);
    fix_grab(f, 9, g, H, "fn", NULL);
    fix_release(f, 9, "", 2);
    assert_true(fix_status(f, h).known);
    fix_grab(f, 9, g, H, "fn", NULL);
    assert_string_equal(g, h);
    fix_release(f, 9, "", 2);
    e = fx_find(f, STORE_FX_FORWARD, 0);
    assert_non_null(e);
    assert_int_equal(e->work_kind, STORE_WORK_FAIL);
    assert_true(ref_eq(e->to, CONN(f, 1)));
    assert_non_null(fx_find(f, STORE_FX_JOB_DONE, 0));
    assert_false(fix_status(f, h).known);
    assert_int_equal(fix_func(f, "fn").info.running, 0);
}

static void test_job_timeout_requeues_only_for_holder(void **state)
{
    struct fixture *f = *state;
    char h[H], g[H];

    fix_submit(f, S("fn", "", "d", STORE_PRIO_NORMAL, true, 1), h, H);
    fix_grab(f, 9, g, H, "fn", NULL);
    fix_job_timeout(f, 8, h);
    assert_true(fix_status(f, h).running);
    fix_job_timeout(f, 9, h);
    assert_false(fix_status(f, h).running);
    assert_int_equal(fix_jobs(f).retries[0], 1);
    /* The worker's late result is refused, as gearmand does. */
    fix_work(f, 9, STORE_WORK_COMPLETE, h, "late");
    assert_non_null(fx_find(f, STORE_FX_REFUSED, 0));
}

static void test_node_gone_requeues_and_detaches_without_dropping(void **state)
{
    struct fixture *f = *state;
    struct store_cmd c;
    char held[H], waited[H], other[H];
    struct store_buf fns[1] = {B("fn")};

    /* Node 2 incarnation 1: a client waiting on a foreground job and a
     * worker holding another; node 2 incarnation 2 holds a third. */
    c = fix_submit_cmd(f, S("fn", NULL, "w", STORE_PRIO_NORMAL, false, 0));
    c.u.submit.client = REF(2, 1, 1);
    assert_int_equal(fix_apply(f, &c), 0);
    fix_created(f, waited, H);
    fix_submit(f, S("fn", "", "h", STORE_PRIO_HIGH, true, 1), held, H);
    fix_submit(f, S("fn", "", "o", STORE_PRIO_HIGH, true, 1), other, H);
    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_GRAB;
    c.u.grab.worker = REF(2, 1, 50);
    c.u.grab.functions = fns;
    c.u.grab.n_functions = 1;
    assert_int_equal(fix_apply(f, &c), 0);
    c.u.grab.worker = REF(2, 2, 50);
    memset(&c.origin, 0, sizeof(c.origin)); /* a new proposal */
    assert_int_equal(fix_apply(f, &c), 0);
    assert_true(fix_status(f, held).running);
    assert_true(fix_status(f, other).running);

    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_NODE_GONE;
    c.u.node_gone.node_id = 2;
    c.u.node_gone.incarnation = 1;
    assert_int_equal(fix_apply(f, &c), 0);
    assert_false(fix_status(f, held).running);
    assert_true(fix_status(f, other).running);
    assert_true(fix_status(f, waited).known);
    assert_int_equal(fix_status(f, waited).n_waiting, 0);
    assert_null(fx_find(f, STORE_FX_JOB_DONE, 0));
}

static void admin(struct fixture *f, enum store_cmd_type type, const char *fn,
                  const char *handle, const char *expect)
{
    struct store_cmd c;
    const struct store_effect *e;

    memset(&c, 0, sizeof(c));
    c.type = type;
    c.u.admin.admin = CONN(f, 77);
    c.u.admin.function = B(fn);
    c.u.admin.handle = B(handle);
    c.u.admin.maxqueue.function = B(fn);
    assert_int_equal(fix_apply(f, &c), 0);
    e = fx_find(f, STORE_FX_ADMIN_REPLY, 0);
    assert_non_null(e);
    assert_true(ref_eq(e->to, CONN(f, 77)));
    if (expect == NULL) {
        assert_int_equal(e->code, 0);
    } else {
        assert_int_not_equal(e->code, 0);
        assert_true(buf_is(e->text, expect));
    }
}

static void test_cancel_queued_running_and_unknown(void **state)
{
    struct fixture *f = *state;
    char q[H], r[H], g[H], again[H];
    const struct store_effect *e;
    struct jobs_seen js;

    admin(f, STORE_CMD_CANCEL, NULL, "H:test:42", "UNKNOWN_JOB");
    fix_submit(f, S("fn", "", "q", STORE_PRIO_NORMAL, false, 1), q, H);
    admin(f, STORE_CMD_CANCEL, NULL, q, NULL);
    e = fx_find(f, STORE_FX_FORWARD, 0);
    assert_int_equal(e->work_kind, STORE_WORK_FAIL);
    assert_non_null(fx_find(f, STORE_FX_JOB_DONE, 0));
    assert_false(fix_status(f, q).known);

    fix_submit(f, S("fn", "uu", "r", STORE_PRIO_NORMAL, false, 2), r, H);
    fix_grab(f, 9, g, H, "fn", NULL);
    admin(f, STORE_CMD_CANCEL, NULL, r, NULL);
    assert_int_equal(fx_find(f, STORE_FX_FORWARD, 0)->work_kind,
                     STORE_WORK_FAIL);
    js = fix_jobs(f);
    assert_int_equal(js.n, 1);
    assert_true(js.ignore[0]);
    /* A new submission of the same unique does not join the cancelled
     * job. */
    fix_submit(f, S("fn", "uu", "r", STORE_PRIO_NORMAL, false, 3), again, H);
    assert_string_not_equal(again, r);
    /* The worker's result is accepted and goes nowhere. */
    fix_work(f, 9, STORE_WORK_COMPLETE, r, "x");
    assert_null(fx_find(f, STORE_FX_REFUSED, 0));
    assert_int_equal(fx_count(f, STORE_FX_FORWARD), 0);
}

static void test_maxqueue_limits_total_of_function(void **state)
{
    struct fixture *f = *state;
    struct store_cmd c;
    char h[H], g[H];
    const struct store_effect *e;

    /* Unknown function: OK, nothing changes. */
    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_MAXQUEUE;
    c.u.admin.admin = CONN(f, 77);
    c.u.admin.maxqueue.function = B("fn");
    c.u.admin.maxqueue.limit[0] = 2;
    c.u.admin.maxqueue.limit[1] = 2;
    c.u.admin.maxqueue.limit[2] = 2;
    assert_int_equal(fix_apply(f, &c), 0);
    assert_int_equal(fx_find(f, STORE_FX_ADMIN_REPLY, 0)->code, 0);
    assert_false(fix_func(f, "fn").found);

    fix_submit(f, S("fn", "", "1", STORE_PRIO_NORMAL, true, 1), h, H);
    c.u.admin.maxqueue.limit[STORE_PRIO_HIGH] = -5; /* negative = 0 */
    c.origin.seq = 0;
    c.origin.node_id = 0;
    assert_int_equal(fix_apply(f, &c), 0);
    assert_int_equal(fix_func(f, "fn").info.maxqueue[STORE_PRIO_NORMAL], 2);
    assert_int_equal(fix_func(f, "fn").info.maxqueue[STORE_PRIO_HIGH], 0);
    fix_submit(f, S("fn", "", "2", STORE_PRIO_NORMAL, true, 1), h, H);
    fix_grab(f, 9, g, H, "fn", NULL); /* running jobs count too */
    fix_submit(f, S("fn", "", "3", STORE_PRIO_NORMAL, true, 1), h, H);
    assert_string_equal(h, "");
    e = fx_find(f, STORE_FX_REFUSED, 0);
    assert_true(buf_is(e->error_code, "QUEUE_ERROR"));
    assert_true(buf_is(e->text, "Job queue is full"));
    /* High is unlimited. Coalescing onto a job is not refused either. */
    fix_submit(f, S("fn", "", "4", STORE_PRIO_HIGH, true, 1), h, H);
    assert_string_not_equal(h, "");
}

static void test_function_create_and_drop(void **state)
{
    struct fixture *f = *state;
    char h[H], g[H];

    admin(f, STORE_CMD_FUNC_DROP, "nope", NULL, "function not found");
    admin(f, STORE_CMD_FUNC_CREATE, "made", NULL, NULL);
    assert_true(fix_func(f, "made").found);
    assert_int_equal(fix_func(f, "made").info.running, 0);
    fix_submit(f, S("made", "", "d", STORE_PRIO_NORMAL, true, 1), h, H);
    fix_grab(f, 9, g, H, "made", NULL);
    admin(f, STORE_CMD_FUNC_DROP, "made", NULL,
          "there are still connected workers or executing clients");
    fix_work(f, 9, STORE_WORK_COMPLETE, h, "");
    admin(f, STORE_CMD_FUNC_DROP, "made", NULL, NULL);
    assert_false(fix_func(f, "made").found);
}

/* One membership change applied with the leader's verdict; the reply. */
static void member(struct fixture *f, enum store_member_op op,
                   const char *name, uint64_t id, uint32_t verdict,
                   const char *expect)
{
    struct store_cmd c;
    const struct store_effect *e;

    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_MEMBER;
    c.u.member.admin = CONN(f, 78);
    c.u.member.op = op;
    c.u.member.member.id = id;
    snprintf(c.u.member.member.name, sizeof(c.u.member.member.name), "%s",
             name);
    snprintf(c.u.member.member.host, sizeof(c.u.member.member.host),
             "10.0.0.4");
    c.u.member.member.port = 4731;
    c.u.member.verdict = verdict;
    assert_int_equal(fix_apply(f, &c), 0);
    e = fx_find(f, STORE_FX_ADMIN_REPLY, 0);
    assert_non_null(e);
    assert_true(ref_eq(e->to, CONN(f, 78)));
    if (expect == NULL) {
        assert_int_equal(e->code, 0);
    } else {
        assert_int_not_equal(e->code, 0);
        assert_true(e->text.len >= strlen(expect) &&
                    memcmp(e->text.base, expect, strlen(expect)) == 0);
    }
}

static size_t members_now(struct fixture *f, struct store_member *v)
{
    struct store_txn *txn;
    size_t n = 0;

    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_members_get(txn, v, &n), 0);
    store_txn_abort(txn);
    return n;
}

static void test_member_changes_keep_the_member_table(void **state)
{
    struct fixture *f = *state;
    struct store_member v[STORE_MEMBERS_MAX];

    assert_int_equal(members_now(f, v), 0);
    /* A refusal answers and changes nothing. */
    member(f, STORE_MEMBER_ADD, "n4", 44, STORE_VERDICT_BUSY,
           "CHANGE_IN_PROGRESS");
    member(f, STORE_MEMBER_ADD, "n4", 44, STORE_VERDICT_NONE, "NOT_JUDGED");
    assert_int_equal(members_now(f, v), 0);
    /* The proposer of these commands (the fixture's node 1) first: once
     * the table is not empty, only its members' commands are applied. */
    member(f, STORE_MEMBER_ADD, "n1", 1, STORE_VERDICT_OK, NULL);
    /* An accepted add puts the row; promote and transfer change none. */
    member(f, STORE_MEMBER_ADD, "n4", 44, STORE_VERDICT_OK, NULL);
    assert_int_equal(members_now(f, v), 2);
    assert_true(v[1].id == 44);
    assert_string_equal(v[1].name, "n4");
    assert_string_equal(v[1].host, "10.0.0.4");
    assert_int_equal(v[1].port, 4731);
    member(f, STORE_MEMBER_PROMOTE, "n4", 44, STORE_VERDICT_OK, NULL);
    member(f, STORE_MEMBER_TRANSFER, "n4", 44, STORE_VERDICT_OK, NULL);
    member(f, STORE_MEMBER_REMOVE, "n4", 44, STORE_VERDICT_LAST_VOTER,
           "LAST_VOTER");
    assert_int_equal(members_now(f, v), 2);
    /* An accepted removal deletes it; an add under the name again puts
     * it back. */
    member(f, STORE_MEMBER_REMOVE, "n4", 44, STORE_VERDICT_OK, NULL);
    assert_int_equal(members_now(f, v), 1);
    member(f, STORE_MEMBER_ADD, "n4", 44, STORE_VERDICT_OK, NULL);
    assert_int_equal(members_now(f, v), 2);
}

static void test_command_of_a_removed_node_changes_nothing(void **state)
{
    struct fixture *f = *state;
    struct store_buf fns[1] = {B("fn")};
    struct store_cmd c;
    char job[H], got[H];

    member(f, STORE_MEMBER_ADD, "n1", 1, STORE_VERDICT_OK, NULL);
    member(f, STORE_MEMBER_ADD, "n4", 44, STORE_VERDICT_OK, NULL);
    fix_submit(f, S("fn", "", "x", STORE_PRIO_NORMAL, true, 1), job, H);
    member(f, STORE_MEMBER_REMOVE, "n4", 44, STORE_VERDICT_OK, NULL);

    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_GRAB;
    c.u.grab.worker = REF(44, 1, 50);
    c.u.grab.functions = fns;
    c.u.grab.n_functions = 1;
    c.origin.node_id = 44;
    c.origin.incarnation = 1;
    c.origin.seq = 1;
    assert_int_equal(fix_apply(f, &c), 0);
    assert_null(fx_find(f, STORE_FX_ASSIGN, 0));
    assert_null(fx_find(f, STORE_FX_NO_JOB, 0));
    assert_false(fix_status(f, job).running);

    fix_grab(f, 7, got, H, "fn", NULL);
    assert_string_equal(got, job);
    assert_true(fix_status(f, job).running);
}

static void test_epoch_job_waits_for_its_time(void **state)
{
    struct fixture *f = *state;
    struct submit_opts o = S("fn", "", "later", STORE_PRIO_NORMAL, true, 1);
    struct store_txn *txn;
    struct store_buf fns[1] = {B("fn")};
    uint64_t due;
    bool runnable;
    char e[H], n[H], g[H];
    uint64_t now_s = f->now_ms / 1000;

    o.when = now_s + 60;
    fix_submit(f, o, e, H);
    assert_null(fx_find(f, STORE_FX_WAKE, 0));
    fix_grab(f, 9, g, H, "fn", NULL);
    assert_string_equal(g, "");
    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_next_due(txn, f->now_ms, &due), 0);
    assert_int_equal(due, (now_s + 60) * 1000);
    assert_int_equal(store_has_runnable(txn, fns, 1, f->now_ms, &runnable), 0);
    assert_false(runnable);
    assert_int_equal(store_has_runnable(txn, fns, 1, due, &runnable), 0);
    assert_true(runnable);
    store_txn_abort(txn);
    /* A later normal job is not blocked by the future one. */
    fix_submit(f, S("fn", "", "now", STORE_PRIO_NORMAL, true, 1), n, H);
    fix_grab(f, 9, g, H, "fn", NULL);
    assert_string_equal(g, n);
    /* An epoch time in the past is runnable at once. */
    f->now_ms = due;
    fix_grab(f, 9, g, H, "fn", NULL);
    assert_string_equal(g, e);
    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_next_due(txn, 0, &due), 0);
    assert_int_equal(due, 0);
    store_txn_abort(txn);
}

/* Applies a background SUBMIT from origin (node 3, inc, seq, low) and
 * returns the number of effects (2 when applied: CREATED, WAKE; 0 when
 * dropped as a replay). */
static size_t apply_from(struct fixture *f, uint64_t inc, uint64_t seq,
                         uint64_t low)
{
    struct store_cmd c =
        fix_submit_cmd(f, S("fn", NULL, "d", STORE_PRIO_NORMAL, true, 0));

    c.origin.node_id = 3;
    c.origin.incarnation = inc;
    c.origin.seq = seq;
    c.origin.low = low;
    assert_int_equal(fix_apply(f, &c), 0);
    return f->fx.n;
}

static uint64_t queued_fn(struct fixture *f)
{
    return fix_func(f, "fn").info.queued[STORE_PRIO_NORMAL];
}

/* Rows in the dedupe table. */
static size_t dedupe_rows(struct fixture *f)
{
    struct store_txn *txn;
    MDB_stat ms;

    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(mdb_stat(txn->txn, txn->s->dbi[STORE__DB_DEDUPE], &ms),
                     0);
    store_txn_abort(txn);
    return ms.ms_entries;
}

static void test_replayed_origin_seq_is_dropped(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(apply_from(f, 1, 5, 0), 2);
    assert_int_equal(apply_from(f, 1, 5, 0), 0); /* same seq: a replay */
    assert_int_equal(apply_from(f, 1, 6, 0), 2);
    assert_int_equal(apply_from(f, 1, 6, 0), 0);
    assert_int_equal(apply_from(f, 2, 1, 0), 2); /* a restarted proposer */
    assert_int_equal(queued_fn(f), 3);
}

/* True if the last apply's only effect was OVERTAKEN to proposer 3. */
static bool was_overtaken(struct fixture *f)
{
    return f->fx.n == 1 && f->fx.v[0].type == STORE_FX_OVERTAKEN &&
           f->fx.v[0].to.node_id == 3 && f->fx.v[0].to.conn_id == 0;
}

/* A follower's forward payload is lost and a later one gets through:
 * the later command commits before the earlier one. It changes nothing
 * (OVERTAKEN tells its proposer to send it again); every command applies
 * once, in the order its proposer made them; copies are dropped. */
static void test_origin_seq_ahead_of_a_pending_one_is_overtaken(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(apply_from(f, 1, 1, 1), 2);
    assert_int_equal(apply_from(f, 1, 4, 1), 1); /* 2 and 3 to come */
    assert_true(was_overtaken(f));
    assert_int_equal(apply_from(f, 1, 2, 1), 2);
    assert_int_equal(apply_from(f, 1, 4, 1), 1); /* 3 to come */
    assert_true(was_overtaken(f));
    assert_int_equal(apply_from(f, 1, 3, 2), 2);
    assert_int_equal(apply_from(f, 1, 4, 2), 2);
    assert_int_equal(apply_from(f, 1, 2, 2), 0);
    assert_int_equal(apply_from(f, 1, 3, 2), 0);
    assert_int_equal(apply_from(f, 1, 1, 2), 0);
    assert_int_equal(queued_fn(f), 4);
}

/* origin.low lets apply forget: a seq below it is dropped even if it was
 * never seen (the proposer gave it up), and the next one after it is in
 * order. In order, one row per proposer is all there is. */
static void test_origin_low_bounds_what_apply_remembers(void **state)
{
    struct fixture *f = *state;
    uint64_t seq;

    for (seq = 1; seq <= 50; seq++) {
        assert_int_equal(apply_from(f, 1, seq, seq), 2);
    }
    assert_int_equal(dedupe_rows(f), 1);
    /* 52..60 while 51 is lost in flight: each waits for it. */
    for (seq = 60; seq >= 52; seq--) {
        assert_int_equal(apply_from(f, 1, seq, 51), 1);
        assert_true(was_overtaken(f));
    }
    assert_int_equal(dedupe_rows(f), 1);
    /* The proposer gives 51 up: 61 is next. */
    assert_int_equal(apply_from(f, 1, 61, 61), 2);
    assert_int_equal(dedupe_rows(f), 1);
    assert_int_equal(apply_from(f, 1, 51, 61), 0);
    assert_int_equal(apply_from(f, 1, 58, 61), 0);
    assert_int_equal(queued_fn(f), 51);
}

/* Commands without a promise (low 0, as builds before it wrote them)
 * apply in any order and leave seen rows above the mark; a later command
 * counts those seqs as applied. */
static void test_seen_rows_of_older_builds_count_as_applied(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(apply_from(f, 1, 1, 0), 2);
    assert_int_equal(apply_from(f, 1, 3, 0), 2); /* a seen row above 1 */
    assert_int_equal(apply_from(f, 1, 2, 1), 2);
    assert_int_equal(apply_from(f, 1, 4, 2), 2); /* 3 is seen: in order */
    assert_int_equal(apply_from(f, 1, 6, 2), 1); /* 5 is not */
    assert_true(was_overtaken(f));
    assert_int_equal(queued_fn(f), 4);
}

/* store_origin_applied: what a member asks after installing a snapshot,
 * for each proposal of its own still pending. */
static bool origin_applied(struct fixture *f, uint64_t inc, uint64_t seq)
{
    struct store_origin o = {3, inc, seq, 0};
    struct store_txn *txn;
    bool done = false;

    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_origin_applied(txn, &o, &done), 0);
    store_txn_abort(txn);
    return done;
}

static void test_origin_applied_says_what_apply_is_done_with(void **state)
{
    struct fixture *f = *state;

    assert_false(origin_applied(f, 1, 1)); /* nothing of node 3 yet */
    assert_int_equal(apply_from(f, 1, 1, 1), 2);
    assert_int_equal(apply_from(f, 1, 2, 1), 2);
    assert_true(origin_applied(f, 1, 1));
    assert_true(origin_applied(f, 1, 2));
    assert_false(origin_applied(f, 1, 3));
    assert_int_equal(apply_from(f, 1, 1, 0), 0);
    assert_int_equal(apply_from(f, 1, 5, 0), 2); /* no promise: a seen row */
    assert_true(origin_applied(f, 1, 5));
    assert_false(origin_applied(f, 1, 4));
    /* A newer incarnation applied: the older one's commands are done
     * with, applied or not. */
    assert_int_equal(apply_from(f, 2, 1, 1), 2);
    assert_true(origin_applied(f, 1, 9));
    assert_false(origin_applied(f, 2, 2));
}

/* A command of an older incarnation that commits after a newer one's is
 * dropped: its process has stopped and acknowledged nothing of it. */
static void test_older_incarnation_after_newer_is_dropped(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(apply_from(f, 1, 1, 1), 2);
    assert_int_equal(apply_from(f, 2, 1, 1), 2);
    assert_int_equal(apply_from(f, 1, 2, 1), 0);
    assert_int_equal(apply_from(f, 2, 2, 1), 2);
    assert_int_equal(dedupe_rows(f), 1); /* incarnation 1 forgotten */
    assert_int_equal(queued_fn(f), 3);
}

/* The newest incarnation of a node with a command applied: what a leader
 * declares gone. */
static void test_node_incarnation_is_the_newest_applied(void **state)
{
    struct fixture *f = *state;
    struct store_txn *txn;
    uint64_t inc = 99;

    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_node_incarnation(txn, 3, &inc), 0);
    store_txn_abort(txn);
    assert_int_equal(inc, 0);
    assert_int_equal(apply_from(f, 4, 1, 1), 2);
    assert_int_equal(apply_from(f, 5, 1, 1), 2);
    assert_int_equal(apply_from(f, 5, 2, 2), 2);
    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_node_incarnation(txn, 3, &inc), 0);
    assert_int_equal(inc, 5);
    assert_int_equal(store_node_incarnation(txn, 4, &inc), 0);
    assert_int_equal(inc, 0);
    store_txn_abort(txn);
}

/* A format 2 mark (8 bytes: every seq up to it was applied) is read as
 * it is. */
static void test_format_2_dedupe_mark_is_honoured(void **state)
{
    struct fixture *f = *state;
    struct store_txn *txn;
    uint8_t key[16];
    uint8_t val[8];

    store__put64(key, 3);
    store__put64(key + 8, 1);
    store__put64(val, 7);
    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    assert_int_equal(
        store__put(txn, STORE__DB_DEDUPE, key, sizeof(key), val, 8, 0), 0);
    assert_int_equal(store_txn_commit(txn), 0);
    assert_int_equal(apply_from(f, 1, 7, 0), 0);
    assert_int_equal(apply_from(f, 1, 8, 0), 2);
    assert_int_equal(apply_from(f, 1, 8, 0), 0);
}

static void test_status_unique_finds_job_by_unique_alone(void **state)
{
    struct fixture *f = *state;
    struct store_txn *txn;
    struct store_job_status st;
    char h[H];

    fix_submit(f, S("fn", "the-key", "d", STORE_PRIO_NORMAL, false, 1), h, H);
    fix_submit(f, S("fn", "the-key", "d", STORE_PRIO_NORMAL, false, 2), h, H);
    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_job_status_unique(txn, B("the-key"), &st), 0);
    assert_true(st.known);
    assert_int_equal(st.n_waiting, 2);
    assert_int_equal(store_job_status_unique(txn, B("the-ke"), &st), 0);
    assert_false(st.known);
    assert_int_equal(store_job_status_unique(txn, B("nope"), &st), 0);
    assert_false(st.known);
    store_txn_abort(txn);
}

static void test_refuses_oversized_names(void **state)
{
    struct fixture *f = *state;
    char big[STORE_FUNCTION_MAX + 2];
    char h[H];

    memset(big, 'f', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    fix_submit(f, S(big, "", "d", STORE_PRIO_NORMAL, true, 1), h, H);
    assert_string_equal(h, "");
    assert_true(buf_is(fx_find(f, STORE_FX_REFUSED, 0)->error_code,
                       "ARGUMENT_TOO_LARGE"));
    big[STORE_UNIQUE_MAX + 1] = '\0';
    fix_submit(f, S("fn", big, "d", STORE_PRIO_NORMAL, true, 1), h, H);
    assert_true(buf_is(fx_find(f, STORE_FX_REFUSED, 0)->text,
                       "Unique value too large"));
    fix_submit(f, S("", "", "d", STORE_PRIO_NORMAL, true, 1), h, H);
    assert_non_null(fx_find(f, STORE_FX_REFUSED, 0));
}

static void test_apply_skips_already_applied_index(void **state)
{
    struct fixture *f = *state;
    struct store_txn *txn;
    struct store_cmd c;
    uint64_t applied;
    char h[H];

    fix_submit(f, S("fn", "", "d", STORE_PRIO_NORMAL, true, 1), h, H);
    c = fix_submit_cmd(f, S("fn", NULL, NULL, STORE_PRIO_NORMAL, true, 0));
    store_effects_reset(&f->fx);
    assert_int_equal(store_txn_begin(f->s, true, &txn), 0);
    assert_int_equal(store_apply(txn, f->index, f->now_ms, &c, &f->fx), 0);
    assert_int_equal(f->fx.n, 0);
    assert_int_equal(store_applied_index(txn, &applied), 0);
    assert_int_equal(applied, f->index);
    assert_int_equal(store_txn_commit(txn), 0);
    assert_int_equal(fix_func(f, "fn").info.queued[STORE_PRIO_NORMAL], 1);
}

static void test_noop_changes_nothing_but_applied_index(void **state)
{
    struct fixture *f = *state;
    struct store_cmd c;
    struct store_txn *txn;
    struct store_stat st;
    uint64_t applied;

    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_NOOP;
    assert_int_equal(fix_apply(f, &c), 0);
    assert_int_equal(f->fx.n, 0);
    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_applied_index(txn, &applied), 0);
    store_txn_abort(txn);
    assert_int_equal(applied, 1);
    assert_int_equal(store_stat(f->s, &st), 0);
    assert_int_equal(st.n_jobs, 0);
    assert_int_equal(st.applied_index, 1);
}

static void test_reopen_keeps_jobs_and_applied_index(void **state)
{
    struct fixture *f = *state;
    uint64_t inc = store_incarnation(f->s);
    struct store_txn *txn;
    uint64_t applied;
    char a[H], b[H], g[H];

    fix_submit(f, S("fn", "ua", "a", STORE_PRIO_NORMAL, true, 1), a, H);
    fix_submit(f, S("fn", "", "b", STORE_PRIO_HIGH, false, 2), b, H);
    fix_reopen(f);
    assert_int_equal(store_incarnation(f->s), inc + 1);
    assert_int_equal(store_node_id(f->s), 1);
    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_applied_index(txn, &applied), 0);
    assert_int_equal(applied, f->index);
    store_txn_abort(txn);
    assert_true(fix_status(f, a).known);
    fix_grab(f, 9, g, H, "fn", NULL);
    assert_string_equal(g, b);
    fix_grab(f, 9, g, H, "fn", NULL);
    assert_string_equal(g, a);
}

/* A GRAB as node/'s hand-out proposes it: naming its job (job), or
 * limited to jobs numbered min_job or more. Returns the ASSIGN handle in
 * out, or "" for NO_JOB. */
static void grab_named(struct fixture *f, uint64_t w, const char *fn,
                       uint64_t job, uint64_t min_job, char *out,
                       size_t out_len)
{
    struct store_buf fns[1] = {B(fn)};
    struct store_cmd c;
    const struct store_effect *e;

    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_GRAB;
    c.u.grab.worker = CONN(f, w);
    c.u.grab.functions = fns;
    c.u.grab.n_functions = 1;
    c.u.grab.job = job;
    c.u.grab.min_job = min_job;
    fix_grab_apply(f, &c, out, out_len);
    e = fx_find(f, STORE_FX_ASSIGN, 0);
    if (e != NULL && job != 0) {
        assert_int_equal(e->job, job);
    }
}

static void test_grab_naming_a_job_takes_that_job_only(void **state)
{
    struct fixture *f = *state;
    char j1[H], j2[H], other[H], g[H];
    struct fcounts fc;

    fix_submit(f, S("fn", "", "one", STORE_PRIO_NORMAL, true, 1), j1, H);
    fix_submit(f, S("fn", "", "two", STORE_PRIO_NORMAL, true, 1), j2, H);
    fix_submit(f, S("other", "", "x", STORE_PRIO_NORMAL, true, 1), other, H);
    assert_string_equal(j2, "H:test:2");
    /* The named job, though not first in line. */
    grab_named(f, 9, "fn", 2, 0, g, H);
    assert_string_equal(g, j2);
    assert_true(fix_status(f, j2).running);
    fc = fix_func(f, "fn");
    assert_int_equal(fc.info.queued[STORE_PRIO_NORMAL], 1);
    assert_int_equal(fc.info.running, 1);
    /* Running already, of a function the worker did not name, unknown:
     * nothing changes hands. */
    grab_named(f, 8, "fn", 2, 0, g, H);
    assert_string_equal(g, "");
    grab_named(f, 8, "fn", 3, 0, g, H);
    assert_string_equal(g, "");
    assert_false(fix_status(f, other).running);
    grab_named(f, 8, "fn", 77, 0, g, H);
    assert_string_equal(g, "");
    /* An ordinary GRAB still finds the first in line. */
    fix_grab(f, 8, g, H, "fn", NULL);
    assert_string_equal(g, j1);
}

static void test_grab_with_min_job_passes_over_older_jobs(void **state)
{
    struct fixture *f = *state;
    char j1[H], j2[H], j3[H], g[H];

    fix_submit(f, S("fn", "", "one", STORE_PRIO_HIGH, true, 1), j1, H);
    fix_submit(f, S("fn", "", "two", STORE_PRIO_NORMAL, true, 1), j2, H);
    fix_submit(f, S("fn", "", "three", STORE_PRIO_NORMAL, true, 1), j3, H);
    grab_named(f, 9, "fn", 0, 3, g, H);
    assert_string_equal(g, j3);
    grab_named(f, 9, "fn", 0, 4, g, H);
    assert_string_equal(g, "");
    /* Priority still orders the jobs it may take. */
    grab_named(f, 9, "fn", 0, 1, g, H);
    assert_string_equal(g, j1);
}

struct pick_seen {
    uint64_t skip;
    uint64_t num;
    char handle[H];
    char data[16];
};

static bool pick_skip(void *arg, uint64_t num)
{
    return num == ((struct pick_seen *)arg)->skip;
}

static int pick_take(void *arg, const struct store_job_view *v)
{
    struct pick_seen *p = arg;

    p->num = v->num;
    handle_copy(v->handle, p->handle, sizeof(p->handle));
    handle_copy(v->data, p->data, sizeof(p->data));
    return 0;
}

/* store_submit_queues_new(o) against what applying o then does: true
 * only where apply queues a new job, runnable at once. */
static bool queues_new(struct fixture *f, struct submit_opts o)
{
    struct store_cmd c = fix_submit_cmd(f, o);
    struct store_txn *txn;
    bool out = false;

    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_submit_queues_new(txn, &c.u.submit, &out), 0);
    store_txn_abort(txn);
    return out;
}

static bool applied_new(struct fixture *f, struct submit_opts o)
{
    struct store_cmd c = fix_submit_cmd(f, o);
    const struct store_effect *e;

    assert_int_equal(fix_apply(f, &c), 0);
    e = fx_find(f, STORE_FX_CREATED, 0);
    return e != NULL && !e->coalesced && fx_find(f, STORE_FX_WAKE, 0) != NULL;
}

static void test_submit_queues_new_foretells_apply(void **state)
{
    struct fixture *f = *state;
    struct submit_opts o[10];
    bool expect[10] = {true,  true, false, false, false,
                       false, true, false, true,  false};
    char long_fn[STORE_FUNCTION_MAX + 2];
    struct store_cmd mq;
    size_t i;

    memset(long_fn, 'f', sizeof(long_fn) - 1);
    long_fn[sizeof(long_fn) - 1] = '\0';
    o[0] = S("fn", "", "a", STORE_PRIO_NORMAL, false, 1);  /* no key */
    o[1] = S("fn", "k1", "b", STORE_PRIO_HIGH, false, 2);  /* new key */
    o[2] = S("fn", "k1", "c", STORE_PRIO_NORMAL, true, 3); /* joins o[1] */
    o[3] = S("", "", "d", STORE_PRIO_NORMAL, false, 4);    /* refused */
    o[4] = S(long_fn, "", "e", STORE_PRIO_LOW, false, 5);  /* refused */
    o[5] = S("fn", "", "f", STORE_PRIO_NORMAL, false, 6);  /* scheduled */
    o[5].when = f->now_ms / 1000 + 60;
    o[6] = S("fn", "-", "a", STORE_PRIO_NORMAL, true, 7);  /* payload key */
    o[7] = S("fn", "-", "a", STORE_PRIO_NORMAL, true, 8);  /* joins o[6] */
    o[8] = S("other", "k1", "g", STORE_PRIO_LOW, true, 9); /* other fn */
    o[9] = S("lim", "", "h", STORE_PRIO_NORMAL, true, 10); /* limited */
    admin(f, STORE_CMD_FUNC_CREATE, "lim", NULL, NULL);
    memset(&mq, 0, sizeof(mq));
    mq.type = STORE_CMD_MAXQUEUE;
    mq.u.admin.admin = CONN(f, 77);
    mq.u.admin.maxqueue.function = B("lim");
    for (i = 0; i < STORE_PRIO_COUNT; i++) {
        mq.u.admin.maxqueue.limit[i] = 5;
    }
    assert_int_equal(fix_apply(f, &mq), 0);
    for (i = 0; i < 10; i++) {
        bool told = queues_new(f, o[i]);
        bool queued = applied_new(f, o[i]);

        assert_int_equal(told, expect[i]);
        if (told) {
            assert_true(queued);
        }
    }
}

/* store_pick_job names the job an ordinary GRAB would take, passing
 * over what skip names, and changes nothing. */
static void test_pick_job_matches_grab_and_skips(void **state)
{
    struct fixture *f = *state;
    char n1[H], hi[H], g[H];
    struct store_buf fns[1] = {B("fn")};
    struct pick_seen seen;
    struct store_txn *txn;
    bool found = false;

    fix_submit(f, S("fn", "", "n1", STORE_PRIO_NORMAL, true, 1), n1, H);
    fix_submit(f, S("fn", "", "hi", STORE_PRIO_HIGH, true, 1), hi, H);
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_pick_job(txn, fns, 1, f->now_ms, pick_skip, &seen,
                                    pick_take, &seen, &found),
                     0);
    assert_true(found);
    assert_string_equal(seen.handle, hi);
    assert_string_equal(seen.data, "hi");
    seen.skip = seen.num;
    assert_int_equal(store_pick_job(txn, fns, 1, f->now_ms, pick_skip, &seen,
                                    pick_take, &seen, &found),
                     0);
    assert_true(found);
    assert_string_equal(seen.handle, n1);
    store_txn_abort(txn);
    fix_grab(f, 9, g, H, "fn", NULL);
    assert_string_equal(g, hi);
    fix_grab(f, 9, g, H, "fn", NULL);
    fix_grab(f, 9, g, H, "fn", NULL);
    assert_string_equal(g, "");
    assert_int_equal(store_txn_begin(f->s, false, &txn), 0);
    assert_int_equal(store_pick_job(txn, fns, 1, f->now_ms, NULL, NULL,
                                    pick_take, &seen, &found),
                     0);
    assert_false(found);
    store_txn_abort(txn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, fix_setup, fix_teardown)
        T(test_submit_creates_job_and_wakes),
        T(test_grab_gives_priority_then_fifo),
        T(test_grab_walks_functions_in_given_order),
        T(test_grab_naming_a_job_takes_that_job_only),
        T(test_grab_with_min_job_passes_over_older_jobs),
        T(test_submit_queues_new_foretells_apply),
        T(test_pick_job_matches_grab_and_skips),
        T(test_assign_carries_job_fields_and_large_payload),
        T(test_coalesced_foreground_clients_all_get_result),
        T(test_first_submission_fixes_priority_and_payload),
        T(test_empty_unique_never_coalesces_dash_uses_payload),
        T(test_coalesces_with_running_job),
        T(test_client_gone_drops_queued_foreground_job),
        T(test_client_gone_keeps_job_a_background_submission_holds),
        T(test_client_gone_running_job_continues_result_goes_nowhere),
        T(test_work_from_other_worker_is_refused),
        T(test_work_status_is_stored_and_forwarded),
        T(test_release_requeues_at_tail_with_retry),
        T(test_release_by_function_only_releases_that_function),
        T(test_retry_limit_fails_job),
        T(test_job_timeout_requeues_only_for_holder),
        T(test_node_gone_requeues_and_detaches_without_dropping),
        T(test_cancel_queued_running_and_unknown),
        T(test_maxqueue_limits_total_of_function),
        T(test_function_create_and_drop),
        T(test_member_changes_keep_the_member_table),
        T(test_command_of_a_removed_node_changes_nothing),
        T(test_epoch_job_waits_for_its_time),
        T(test_replayed_origin_seq_is_dropped),
        T(test_origin_seq_ahead_of_a_pending_one_is_overtaken),
        T(test_origin_low_bounds_what_apply_remembers),
        T(test_seen_rows_of_older_builds_count_as_applied),
        T(test_origin_applied_says_what_apply_is_done_with),
        T(test_older_incarnation_after_newer_is_dropped),
        T(test_format_2_dedupe_mark_is_honoured),
        T(test_node_incarnation_is_the_newest_applied),
        T(test_status_unique_finds_job_by_unique_alone),
        T(test_refuses_oversized_names),
        T(test_apply_skips_already_applied_index),
        T(test_noop_changes_nothing_but_applied_index),
        T(test_reopen_keeps_jobs_and_applied_index),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
