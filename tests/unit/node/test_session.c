/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/node/test_session.c - a session's state machine on a real
 * server loop and store (fresh mkdtemp directory), driven through a
 * socketpair: replies keep request order across commits, a read waits in
 * GM_SS_WAIT_COMMIT, malformed input closes only that connection, and a
 * peer that does not read its replies stops being read (back-pressure)
 * until they drain, in whatever state it was paused; the server lists
 * exactly the sleeping workers not yet woken, and counts the sessions
 * holding a read for the commit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "node/gearman/handout.h"
#include "node/gearman/session.h"
#include "node/loop.h"

struct fixture {
    char dir[64];
    struct gr_config cfg;
    struct event_base *base;
    struct gr_server srv;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    snprintf(f->dir, sizeof(f->dir), "/tmp/gr-sess-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        return -1;
    }
    gr_config_defaults(&f->cfg);
    f->cfg.port = 0;
    snprintf(f->cfg.listen, sizeof(f->cfg.listen), "127.0.0.1");
    snprintf(f->cfg.data_dir, sizeof(f->cfg.data_dir), "%s/data", f->dir);
    f->cfg.min_free_space = 0;
    gr_log_threshold = GR_LOG_FATAL;
    evthread_use_pthreads();
    f->base = event_base_new();
    if (f->base == NULL || gr_server_init(&f->srv, &f->cfg, f->base) != 0) {
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];

    gr_server_close(&f->srv);
    event_base_free(f->base);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0) {
        return -1;
    }
    free(f);
    return 0;
}

static struct gm_session *connect_session(struct fixture *f, int *peer)
{
    int sv[2];
    struct gm_session *s;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    evutil_make_socket_nonblocking(sv[0]);
    assert_int_equal(gm_session_new(&f->srv.gm, sv[0], "127.0.0.1", &s), 0);
    *peer = sv[1];
    return s;
}

static void send_pkt(int fd, uint32_t type, const char *a0, const char *a1,
                     const char *a2, size_t n)
{
    struct store_buf a[3] = {gm_str(a0 ? a0 : ""), gm_str(a1 ? a1 : ""),
                             gm_str(a2 ? a2 : "")};
    struct evbuffer *b = evbuffer_new();
    size_t len;
    uint8_t buf[512];

    assert_int_equal(gm_packet_write_magic(b, true, type, a, n), 0);
    len = evbuffer_get_length(b);
    evbuffer_remove(b, buf, len);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    evbuffer_free(b);
}

/* Runs the loop until `want` bytes arrived on fd (or gives up). */
static size_t pump(struct fixture *f, int fd, uint8_t *out, size_t want)
{
    size_t got = 0;
    int rounds;

    evutil_make_socket_nonblocking(fd);
    for (rounds = 0; rounds < 1000 && got < want; rounds++) {
        struct timeval tv = {0, 5000};
        ssize_t n;

        /* Run the loop for up to 5 ms: it wakes on socket events and on
         * the committer thread's "done", not on a sleep. */
        event_base_loopexit(f->base, &tv);
        event_base_dispatch(f->base);
        n = read(fd, out + got, want - got);
        if (n > 0) {
            got += (size_t)n;
        } else if (n == 0) {
            break; /* EOF: the server closed the connection */
        }
    }
    return got;
}

static uint32_t type_at(const uint8_t *p)
{
    return ((uint32_t)p[4] << 24) | ((uint32_t)p[5] << 16) |
           ((uint32_t)p[6] << 8) | p[7];
}

static uint32_t size_at(const uint8_t *p)
{
    return ((uint32_t)p[8] << 24) | ((uint32_t)p[9] << 16) |
           ((uint32_t)p[10] << 8) | p[11];
}

static void test_pipelined_submits_then_echo_reply_in_order(void **state)
{
    struct fixture *f = *state;
    int peer;
    struct gm_session *s = connect_session(f, &peer);
    uint8_t buf[1024];
    size_t pos = 0;
    size_t got;
    int i;

    (void)s;
    send_pkt(peer, GM_SUBMIT_JOB_BG, "f", "", "a", 3);
    send_pkt(peer, GM_SUBMIT_JOB_BG, "f", "", "b", 3);
    send_pkt(peer, GM_ECHO_REQ, "ping", NULL, NULL, 1);
    send_pkt(peer, GM_SUBMIT_JOB_BG, "f", "", "c", 3);
    /* Handles are H:<host>:<n>; read the three JOB_CREATED and the echo
     * packet by packet. */
    for (i = 0; i < 4; i++) {
        got = pump(f, peer, buf + pos, GM_HEADER_LEN);
        assert_int_equal(got, GM_HEADER_LEN);
        got = pump(f, peer, buf + pos + GM_HEADER_LEN, size_at(buf + pos));
        assert_int_equal(got, size_at(buf + pos));
        assert_int_equal(type_at(buf + pos),
                         i == 2 ? GM_ECHO_RES : GM_JOB_CREATED);
        pos += GM_HEADER_LEN + size_at(buf + pos);
    }
    close(peer);
}

static void test_status_waits_for_the_pending_submission(void **state)
{
    struct fixture *f = *state;
    int peer;
    struct gm_session *s = connect_session(f, &peer);
    uint8_t buf[256];

    send_pkt(peer, GM_SUBMIT_JOB_BG, "g", "", "x", 3);
    assert_int_equal(write(peer, "status\n", 7), 7);
    /* One non-blocking turn reads both; the admin line must wait. */
    event_base_loop(f->base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
    if (s->n_pending > 0) {
        assert_int_equal(s->state, GM_SS_WAIT_COMMIT);
        assert_int_equal(f->srv.gm.n_wait_readers,
                         1); /* holds the next batch */
    }
    assert_int_equal(pump(f, peer, buf, GM_HEADER_LEN), GM_HEADER_LEN);
    assert_int_equal(type_at(buf), GM_JOB_CREATED);
    assert_int_equal(pump(f, peer, buf, size_at(buf)), size_at(buf));
    /* status then lists the queued job: "g\t1\t0\t0\n.\n" */
    assert_int_equal(pump(f, peer, buf, 10), 10);
    assert_memory_equal(buf, "g\t1\t0\t0\n.\n", 10);
    assert_int_not_equal(s->state, GM_SS_WAIT_COMMIT);
    assert_int_equal(f->srv.gm.n_wait_readers, 0);
    close(peer);
}

static void test_bad_magic_closes_only_that_session(void **state)
{
    struct fixture *f = *state;
    int bad_peer;
    int good_peer;
    struct gm_session *bad = connect_session(f, &bad_peer);
    uint8_t buf[64];

    (void)bad;
    (void)connect_session(f, &good_peer);
    assert_int_equal(write(bad_peer, "\0BAD\0\0\0\x10\0\0\0\0", 12), 12);
    assert_int_equal(pump(f, bad_peer, buf, 1), 0); /* EOF, no reply */
    send_pkt(good_peer, GM_ECHO_REQ, "ok", NULL, NULL, 1);
    assert_int_equal(pump(f, good_peer, buf, GM_HEADER_LEN + 2),
                     GM_HEADER_LEN + 2);
    assert_int_equal(type_at(buf), GM_ECHO_RES);
    close(bad_peer);
    close(good_peer);
}

/* ---------------------------------------------------------------------
 * Back-pressure. The marks are lowered on the session under test (1 MiB
 * and 512 KiB instead of 32 and 16 MiB) to keep the test small; the
 * integration test 13_backpressure.t uses the real ones. The peer writes
 * a request stream non-blockingly and reads replies packet by packet
 * while the loop runs.
 */

#define ECHO_LEN  ((size_t)64 * 1024)
#define N_ECHO    64 /* 4 MiB of echoes: far past the lowered mark */
#define TEST_HIGH ((size_t)1024 * 1024)

struct stream {
    uint8_t *data;
    size_t len;
    size_t off;
    size_t cap;
};

static void stream_add(struct stream *tx, uint32_t type, const uint8_t *a0,
                       size_t a0_len, const char *a1, const char *a2, size_t n)
{
    struct store_buf a[3] = {
        {(uint8_t *)a0, a0_len}, gm_str(a1 ? a1 : ""), gm_str(a2 ? a2 : "")};
    struct evbuffer *b = evbuffer_new();
    size_t len;

    assert_non_null(b);
    assert_int_equal(gm_packet_write_magic(b, true, type, a, n), 0);
    len = evbuffer_get_length(b);
    if (tx->len + len > tx->cap) {
        tx->cap = 2 * (tx->len + len);
        tx->data = realloc(tx->data, tx->cap);
        assert_non_null(tx->data);
    }
    evbuffer_remove(b, tx->data + tx->len, len);
    tx->len += len;
    evbuffer_free(b);
}

static void stream_str(struct stream *tx, uint32_t type, const char *a0,
                       const char *a1, const char *a2, size_t n)
{
    stream_add(tx, type, (const uint8_t *)a0, strlen(a0), a1, a2, n);
}

/* Echo i's payload: i in its first and last four bytes around a pattern
 * (filled in by the call for i == 0). */
static void echo_payload(uint8_t *p, uint32_t i)
{
    size_t k;

    if (i == 0) {
        for (k = 0; k < ECHO_LEN; k++) {
            p[k] = (uint8_t)((k * 131u) >> 3);
        }
    }
    for (k = 0; k < 4; k++) {
        p[k] = (uint8_t)(i >> (24 - 8 * k));
        p[ECHO_LEN - 4 + k] = p[k];
    }
}

/* Writes what the socket takes; true if it took something. */
static bool stream_write(struct stream *tx, int fd)
{
    bool progress = false;

    while (tx->off < tx->len) {
        ssize_t n = write(fd, tx->data + tx->off, tx->len - tx->off);

        if (n <= 0) {
            break;
        }
        tx->off += (size_t)n;
        progress = true;
    }
    return progress;
}

/* Runs one round of ready events, waiting at most 5 ms for one: it wakes
 * on socket events and on the committer thread's "done", not on a sleep.
 * (An exit timer left by an early return only ends a later round.) */
static void turn(struct fixture *f)
{
    struct timeval tv = {0, 5000};

    event_base_loopexit(f->base, &tv);
    event_base_loop(f->base, EVLOOP_ONCE);
}

/* Like pump(), while also writing the rest of tx. */
static size_t pump_io(struct fixture *f, int fd, struct stream *tx,
                      uint8_t *out, size_t want)
{
    size_t got = 0;
    int rounds;

    for (rounds = 0; rounds < 4000 && got < want; rounds++) {
        ssize_t n;

        stream_write(tx, fd);
        turn(f);
        while (got < want && (n = read(fd, out + got, want - got)) > 0) {
            got += (size_t)n;
        }
        if (got < want && n == 0) {
            break; /* EOF */
        }
    }
    return got;
}

/* Writes tx without reading until the session pauses and the socket
 * stays full for a few loop rounds. */
static void push_until_paused(struct fixture *f, struct gm_session *s, int fd,
                              struct stream *tx)
{
    int idle = 0;
    int rounds;

    for (rounds = 0; rounds < 4000 && idle < 5; rounds++) {
        bool progress = stream_write(tx, fd);

        turn(f);
        idle = (!progress && s->out_paused) ? idle + 1 : 0;
    }
}

/* Reads one reply and checks its type and (unless NULL) its body. */
static void expect_reply(struct fixture *f, int fd, struct stream *tx,
                         uint32_t type, const void *body, size_t body_len)
{
    uint8_t hdr[GM_HEADER_LEN];
    uint8_t *got;
    size_t len;

    assert_int_equal(pump_io(f, fd, tx, hdr, sizeof(hdr)), sizeof(hdr));
    assert_int_equal(type_at(hdr), type);
    len = size_at(hdr);
    got = malloc(len + 1);
    assert_non_null(got);
    assert_int_equal(pump_io(f, fd, tx, got, len), len);
    if (body != NULL) {
        assert_int_equal(len, body_len);
        assert_memory_equal(got, body, len);
    }
    free(got);
}

static struct gm_session *connect_small_marks(struct fixture *f, int *peer)
{
    struct gm_session *s = connect_session(f, peer);

    s->out_high = TEST_HIGH;
    s->out_low = TEST_HIGH / 2;
    evutil_make_socket_nonblocking(*peer);
    return s;
}

/* Fills the server-to-peer direction of the socket with junk written on
 * the server's side, so that what the session sends next stays queued in
 * s->out. Returns the junk length, to be read and skipped by the peer. */
static size_t fill_peer(struct gm_session *s)
{
    static const uint8_t junk[4096];
    size_t total = 0;
    ssize_t n;

    while ((n = write(s->fd, junk, sizeof(junk))) > 0) {
        total += (size_t)n;
    }
    return total;
}

static void skip_junk(struct fixture *f, int fd, struct stream *tx, size_t len)
{
    uint8_t *buf = malloc(len);

    assert_non_null(buf);
    assert_int_equal(pump_io(f, fd, tx, buf, len), len);
    free(buf);
}

/* ECHO x64, SUBMIT, ECHO: the session pauses while parsing the echoes and
 * the server stops taking bytes; once the peer reads, it resumes with
 * what it had buffered, the SUBMIT makes the last echo wait for the
 * commit again, and every reply arrives, in order. */
static void
test_peer_not_reading_pauses_session_then_all_replies_arrive(void **state)
{
    struct fixture *f = *state;
    int peer;
    struct gm_session *s = connect_small_marks(f, &peer);
    struct stream tx = {NULL, 0, 0, 0};
    uint8_t *payload = malloc(ECHO_LEN);
    uint32_t i;

    assert_non_null(payload);
    for (i = 0; i < N_ECHO; i++) {
        echo_payload(payload, i);
        stream_add(&tx, GM_ECHO_REQ, payload, ECHO_LEN, NULL, NULL, 1);
    }
    stream_str(&tx, GM_SUBMIT_JOB_BG, "bp", "", "b", 3);
    stream_str(&tx, GM_ECHO_REQ, "tail", NULL, NULL, 1);

    push_until_paused(f, s, peer, &tx);
    assert_true(s->out_paused);
    assert_true(tx.off < tx.len); /* the server stopped taking requests */
    /* Over the mark by at most one reply. */
    assert_true(gm_session_out_backlog(s) > TEST_HIGH);
    assert_true(gm_session_out_backlog(s) <=
                TEST_HIGH + GM_HEADER_LEN + ECHO_LEN);

    for (i = 0; i < N_ECHO; i++) {
        echo_payload(payload, i);
        expect_reply(f, peer, &tx, GM_ECHO_RES, payload, ECHO_LEN);
    }
    expect_reply(f, peer, &tx, GM_JOB_CREATED, NULL, 0);
    expect_reply(f, peer, &tx, GM_ECHO_RES, "tail", 4);
    assert_int_equal(tx.off, tx.len);
    assert_false(s->out_paused);
    assert_int_equal(s->state, GM_SS_READ);
    assert_int_equal(gm_session_out_backlog(s), 0);
    free(payload);
    free(tx.data);
    close(peer);
}

/* The commit's JOB_CREATED cannot leave (the peer's socket is full) while
 * an ECHO waits for it in GM_SS_WAIT_COMMIT: the session pauses with the
 * frame held, answers the held frame, and parses nothing further until
 * the output drains. */
static void test_pause_with_held_frame_resumes_after_drain(void **state)
{
    struct fixture *f = *state;
    int peer;
    struct gm_session *s = connect_small_marks(f, &peer);
    struct stream tx = {NULL, 0, 0, 0};
    size_t junk;
    size_t len;
    int rounds;

    s->out_high = 0; /* any byte that cannot leave pauses */
    s->out_low = 1;
    junk = fill_peer(s);
    stream_str(&tx, GM_SUBMIT_JOB_BG, "held", "", "x", 3);
    stream_str(&tx, GM_ECHO_REQ, "held", NULL, NULL, 1);
    stream_str(&tx, GM_ECHO_REQ, "next", NULL, NULL, 1);
    stream_write(&tx, peer);
    assert_int_equal(tx.off, tx.len);
    for (rounds = 0; rounds < 2000; rounds++) {
        turn(f);
        if (s->n_pending == 0 && s->state != GM_SS_READ) {
            break;
        }
    }
    assert_int_equal(s->n_pending, 0);
    assert_true(s->out_paused);
    /* The held ECHO was answered; "next" waits unparsed. */
    assert_int_equal(s->state, GM_SS_PARSE);
    len = evbuffer_get_length(s->out);
    assert_true(len >= GM_HEADER_LEN + 4);
    assert_memory_equal(evbuffer_pullup(s->out, -1) + len - 4, "held", 4);
    assert_true(evbuffer_get_length(s->in) > 0);

    skip_junk(f, peer, &tx, junk);
    expect_reply(f, peer, &tx, GM_JOB_CREATED, NULL, 0);
    expect_reply(f, peer, &tx, GM_ECHO_RES, "held", 4);
    expect_reply(f, peer, &tx, GM_ECHO_RES, "next", 4);
    assert_false(s->out_paused);
    assert_int_equal(s->state, GM_SS_READ);
    free(tx.data);
    close(peer);
}

/* Output caused by another connection (a NOOP wake-up) that cannot leave
 * pauses a worker idle in GM_SS_READ: its GRAB_JOB is not read until the
 * NOOP drains, then it gets the job. */
static void test_wakeup_to_full_socket_pauses_idle_worker(void **state)
{
    struct fixture *f = *state;
    int wpeer;
    int cpeer;
    struct gm_session *w = connect_small_marks(f, &wpeer);
    struct stream wtx = {NULL, 0, 0, 0};
    struct stream ctx = {NULL, 0, 0, 0};
    size_t junk;
    int rounds;

    (void)connect_session(f, &cpeer);
    evutil_make_socket_nonblocking(cpeer);
    w->out_high = 0;
    w->out_low = 1;
    stream_str(&wtx, GM_CAN_DO, "wk", NULL, NULL, 1);
    stream_str(&wtx, GM_PRE_SLEEP, "", NULL, NULL, 0);
    stream_str(&wtx, GM_ECHO_REQ, "asleep", NULL, NULL, 1);
    expect_reply(f, wpeer, &wtx, GM_ECHO_RES, "asleep", 6);
    assert_true(w->sleeping);
    assert_int_equal(w->state, GM_SS_READ);

    junk = fill_peer(w);
    stream_str(&ctx, GM_SUBMIT_JOB_BG, "wk", "", "job", 3);
    expect_reply(f, cpeer, &ctx, GM_JOB_CREATED, NULL, 0);
    for (rounds = 0; rounds < 200 && !w->out_paused; rounds++) {
        turn(f);
    }
    assert_true(w->out_paused);
    assert_int_equal(w->state, GM_SS_READ);

    /* Not read while paused: the GRAB_JOB stays in the socket. */
    wtx.len = wtx.off = 0;
    stream_str(&wtx, GM_GRAB_JOB, "", NULL, NULL, 0);
    stream_write(&wtx, wpeer);
    turn(f);
    assert_int_equal(evbuffer_get_length(w->in), 0);

    skip_junk(f, wpeer, &wtx, junk);
    expect_reply(f, wpeer, &wtx, GM_NOOP, NULL, 0);
    expect_reply(f, wpeer, &wtx, GM_JOB_ASSIGN, NULL, 0);
    assert_false(w->out_paused);
    free(wtx.data);
    free(ctx.data);
    close(wpeer);
    close(cpeer);
}

static size_t count_sleepers(const struct fixture *f)
{
    const struct gm_session *s;
    size_t n = 0;

    for (s = f->srv.gm.sleepers; s != NULL; s = s->sleep_next) {
        assert_true(s->sleeping && !s->noop_sent);
        assert_true(s->sleep_next == NULL || s->sleep_next->sleep_prev == s);
        n++;
    }
    return n;
}

/* A worker asleep on PRE_SLEEP (ECHO answered after it). */
static void sleeper(struct fixture *f, const char *fn, int *peer)
{
    struct stream tx = {NULL, 0, 0, 0};

    (void)connect_session(f, peer);
    evutil_make_socket_nonblocking(*peer);
    stream_str(&tx, GM_CAN_DO, fn, NULL, NULL, 1);
    stream_str(&tx, GM_PRE_SLEEP, "", NULL, NULL, 0);
    stream_str(&tx, GM_ECHO_REQ, "asleep", NULL, NULL, 1);
    expect_reply(f, *peer, &tx, GM_ECHO_RES, "asleep", 6);
    free(tx.data);
}

/* The server lists exactly the workers asleep and not yet woken: a
 * wake-up walks them, not every connection. */
static void test_sleepers_list_follows_sleep_wake_and_close(void **state)
{
    struct fixture *f = *state;
    struct stream ctx = {NULL, 0, 0, 0};
    struct stream wtx = {NULL, 0, 0, 0};
    int p[4];
    int cpeer;
    int rounds;

    sleeper(f, "sl", &p[0]);
    sleeper(f, "sl", &p[1]);
    sleeper(f, "sl", &p[2]);
    sleeper(f, "other", &p[3]);
    assert_int_equal(count_sleepers(f), 4);

    close(p[1]); /* a sleeper goes away */
    for (rounds = 0; rounds < 200 && count_sleepers(f) != 3; rounds++) {
        turn(f);
    }
    assert_int_equal(count_sleepers(f), 3);

    (void)connect_session(f, &cpeer);
    evutil_make_socket_nonblocking(cpeer);
    stream_str(&ctx, GM_SUBMIT_JOB_BG, "sl", "", "job", 3);
    expect_reply(f, cpeer, &ctx, GM_JOB_CREATED, NULL, 0);
    expect_reply(f, p[0], &wtx, GM_NOOP, NULL, 0);
    expect_reply(f, p[2], &wtx, GM_NOOP, NULL, 0);
    /* Woken once: off the list; the other function's sleeper stays. */
    assert_int_equal(count_sleepers(f), 1);
    assert_true(
        f->srv.gm.sleepers != NULL &&
        gm_session_can_do(f->srv.gm.sleepers, (const uint8_t *)"other", 5));
    free(ctx.data);
    close(p[0]);
    close(p[2]);
    close(p[3]);
    close(cpeer);
}

/* A worker pipelining GRAB_JOB and ECHO: the echo waits for the grab's
 * reply, but reads no queue state, so it holds no batch back (a held
 * status read or PRE_SLEEP would: test_status_waits_for_the_pending_
 * submission). */
static void test_echo_behind_a_grab_holds_no_batch(void **state)
{
    struct fixture *f = *state;
    struct stream ctx = {NULL, 0, 0, 0};
    struct stream wtx = {NULL, 0, 0, 0};
    struct gm_session *w;
    int cpeer;
    int wpeer;
    int rounds;

    (void)connect_session(f, &cpeer);
    evutil_make_socket_nonblocking(cpeer);
    stream_str(&ctx, GM_SUBMIT_JOB_BG, "eg", "", "one", 3);
    expect_reply(f, cpeer, &ctx, GM_JOB_CREATED, NULL, 0);

    w = connect_session(f, &wpeer);
    evutil_make_socket_nonblocking(wpeer);
    stream_str(&wtx, GM_CAN_DO, "eg", NULL, NULL, 1);
    stream_str(&wtx, GM_GRAB_JOB, "", NULL, NULL, 0);
    stream_str(&wtx, GM_ECHO_REQ, "after", NULL, NULL, 1);
    stream_write(&wtx, wpeer);
    for (rounds = 0;
         rounds < 200 && w->n_pending == 0 && w->state != GM_SS_WAIT_COMMIT;
         rounds++) {
        turn(f);
    }
    /* The turn that read the three packets proposed the grab; its answer
     * comes in a later turn, so the echo is held now. */
    assert_true(w->n_pending > 0);
    assert_int_equal(w->state, GM_SS_WAIT_COMMIT);
    assert_int_equal(f->srv.gm.n_wait_readers, 0);
    expect_reply(f, wpeer, &wtx, GM_JOB_ASSIGN, NULL, 0);
    expect_reply(f, wpeer, &wtx, GM_ECHO_RES, "after", 5);
    assert_int_not_equal(w->state, GM_SS_WAIT_COMMIT);
    free(ctx.data);
    free(wtx.data);
    close(cpeer);
    close(wpeer);
}

/* The peer half-closes while requests are still buffered: the session
 * pauses at EOF, answers the rest once the output drains, then closes. */
static void test_eof_while_paused_answers_the_rest_then_closes(void **state)
{
    struct fixture *f = *state;
    int peer;
    struct gm_session *s = connect_small_marks(f, &peer);
    struct stream tx = {NULL, 0, 0, 0};
    uint8_t *payload = malloc(ECHO_LEN);
    uint8_t byte;
    uint32_t i;

    assert_non_null(payload);
    /* As if the bytes had been read while the session waited for a
     * commit: buffered, not parsed. */
    for (i = 0; i < N_ECHO; i++) {
        echo_payload(payload, i);
        stream_add(&tx, GM_ECHO_REQ, payload, ECHO_LEN, NULL, NULL, 1);
    }
    stream_str(&tx, GM_ECHO_REQ, "last", NULL, NULL, 1);
    assert_int_equal(evbuffer_add(s->in, tx.data, tx.len), 0);
    tx.off = tx.len;
    assert_int_equal(shutdown(peer, SHUT_WR), 0);
    turn(f);
    assert_true(s->out_paused);
    assert_true(s->read_eof);
    assert_int_equal(s->state, GM_SS_PARSE);

    for (i = 0; i < N_ECHO; i++) {
        echo_payload(payload, i);
        expect_reply(f, peer, &tx, GM_ECHO_RES, payload, ECHO_LEN);
    }
    expect_reply(f, peer, &tx, GM_ECHO_RES, "last", 4);
    assert_int_equal(pump(f, peer, &byte, 1), 0); /* then EOF */
    free(payload);
    free(tx.data);
    close(peer);
}

/* A client that pipelines more submissions than GM_SESSION_MAX_PENDING in
 * one write: the session parses up to the cap, stops reading, goes on as
 * the batches commit, and every submission gets its JOB_CREATED, in
 * order, with distinct handles. (18-byte packets, so the cap falls inside
 * a read chunk rather than at its end.) */
static void test_pipelined_flood_is_capped_then_all_acknowledged(void **state)
{
    enum { N = GM_SESSION_MAX_PENDING + 904 };
    struct fixture *f = *state;
    struct stream tx = {0};
    size_t cap = (size_t)N * 64;
    uint8_t *rx = malloc(cap);
    size_t got = 0;
    size_t off = 0;
    size_t prev_off = 0;
    size_t prev_len = 0;
    size_t max_pending = 0;
    size_t parsed = 0;
    bool paused = false;
    int peer;
    struct gm_session *s = connect_session(f, &peer);
    int i;

    assert_non_null(rx);
    evutil_make_socket_nonblocking(peer);
    for (i = 0; i < N; i++) {
        stream_str(&tx, GM_SUBMIT_JOB_BG, "f", "", "xyz", 3);
    }
    /* Drive until every reply arrived, sampling the session. */
    for (i = 0; i < 20000 && parsed < (size_t)N; i++) {
        ssize_t n;

        stream_write(&tx, peer);
        n = read(peer, rx + got, cap - got);
        if (n > 0) {
            got += (size_t)n;
        } else {
            turn(f);
        }
        if (s->n_pending > max_pending) {
            max_pending = s->n_pending;
        }
        paused = paused || s->out_paused;
        while (got - off >= GM_HEADER_LEN &&
               got - off >= GM_HEADER_LEN + size_at(rx + off)) {
            size_t len = size_at(rx + off);

            assert_int_equal(type_at(rx + off), GM_JOB_CREATED);
            assert_true(len > 0);
            assert_false(len == prev_len &&
                         memcmp(rx + off + GM_HEADER_LEN,
                                rx + prev_off + GM_HEADER_LEN, len) == 0);
            prev_off = off;
            prev_len = len;
            off += GM_HEADER_LEN + len;
            parsed++;
        }
    }
    assert_int_equal(parsed, N);
    assert_true(paused);
    assert_int_equal(max_pending, GM_SESSION_MAX_PENDING);
    free(rx);
    free(tx.data);
    close(peer);
}

/* A body of GM_SESSION_BIG_BODY or more is read into memory of its own:
 * sent in pieces, with small requests before and after it in the same
 * stream, every reply comes back whole and in order; and half-way the
 * session holds the body outside s->in. Then EOF in the middle of a
 * second large body closes the session (as with any partial frame). */
static void test_large_body_is_read_straight_and_keeps_order(void **state)
{
    struct fixture *f = *state;
    const size_t big_len = 3 * GM_SESSION_BIG_BODY + 12345;
    struct stream tx = {NULL, 0, 0, 0};
    uint8_t *big = malloc(big_len);
    uint8_t *sink = malloc(big_len + GM_HEADER_LEN);
    int peer;
    struct gm_session *s = connect_session(f, &peer);
    size_t first;
    size_t k;
    int rounds;

    assert_non_null(big);
    assert_non_null(sink);
    evutil_make_socket_nonblocking(peer);
    for (k = 0; k < big_len; k++) {
        big[k] = (uint8_t)(k * 2654435761u >> 24);
    }
    stream_str(&tx, GM_ECHO_REQ, "before", NULL, NULL, 1);
    stream_add(&tx, GM_ECHO_REQ, big, big_len, NULL, NULL, 1);
    stream_str(&tx, GM_ECHO_REQ, "after", NULL, NULL, 1);
    /* The first small echo, the big header and a part of its body. */
    first = GM_HEADER_LEN + 6 + GM_HEADER_LEN + 100000;
    assert_int_equal(write(peer, tx.data, first), (ssize_t)first);
    tx.off = first;
    for (rounds = 0; rounds < 100 && s->big.body == NULL; rounds++) {
        turn(f);
    }
    assert_non_null(s->big.body);
    assert_int_equal(s->big.len, big_len);
    assert_int_equal(evbuffer_get_length(s->in), 0);
    expect_reply(f, peer, &tx, GM_ECHO_RES, "before", 6);
    expect_reply(f, peer, &tx, GM_ECHO_RES, big, big_len);
    expect_reply(f, peer, &tx, GM_ECHO_RES, "after", 5);
    assert_null(s->big.body);

    /* A second large body, cut short by EOF: the session closes. */
    tx.len = tx.off = 0;
    stream_add(&tx, GM_ECHO_REQ, big, big_len, NULL, NULL, 1);
    assert_int_equal(write(peer, tx.data, GM_HEADER_LEN + 5000),
                     (ssize_t)(GM_HEADER_LEN + 5000));
    shutdown(peer, SHUT_WR);
    for (rounds = 0; rounds < 200; rounds++) {
        ssize_t n = read(peer, sink, big_len);

        if (n == 0) {
            break; /* closed by the server */
        }
        turn(f);
    }
    assert_true(rounds < 200);
    free(tx.data);
    free(big);
    free(sink);
    close(peer);
}

/* Reads one reply: its type, and its body into body (at most cap bytes,
 * NUL-terminated); returns the body's length. */
static size_t read_reply(struct fixture *f, int fd, struct stream *tx,
                         uint32_t *type, char *body, size_t cap)
{
    uint8_t hdr[GM_HEADER_LEN];
    size_t len;

    assert_int_equal(pump_io(f, fd, tx, hdr, sizeof(hdr)), sizeof(hdr));
    *type = type_at(hdr);
    len = size_at(hdr);
    assert_true(len < cap);
    assert_int_equal(pump_io(f, fd, tx, (uint8_t *)body, len), len);
    body[len] = '\0';
    return len;
}

/* A worker that can do fn, with the function known to the store and no
 * batch left in flight. */
static struct gm_session *idle_worker(struct fixture *f, const char *fn,
                                      int *peer)
{
    struct stream tx = {NULL, 0, 0, 0};
    struct gm_session *w = connect_session(f, peer);
    int rounds;

    evutil_make_socket_nonblocking(*peer);
    stream_str(&tx, GM_CAN_DO, fn, NULL, NULL, 1);
    stream_str(&tx, GM_ECHO_REQ, "ready", NULL, NULL, 1);
    expect_reply(f, *peer, &tx, GM_ECHO_RES, "ready", 5);
    for (rounds = 0; rounds < 400 && (gr_pipeline_writing(&f->srv.pipe) ||
                                      f->srv.pipe.head != NULL);
         rounds++) {
        turn(f);
    }
    assert_false(gr_pipeline_writing(&f->srv.pipe));
    free(tx.data);
    return w;
}

/* A client connection: the peer's end, non-blocking. */
static int client_peer(struct fixture *f)
{
    int peer;

    (void)connect_session(f, &peer);
    evutil_make_socket_nonblocking(peer);
    return peer;
}

/* Nothing more is on its way to this client: an ECHO sent now comes
 * back next (a packet sent before it would arrive first). */
static void nothing_more(struct fixture *f, int fd, struct stream *tx)
{
    stream_str(tx, GM_ECHO_REQ, "end", NULL, NULL, 1);
    expect_reply(f, fd, tx, GM_ECHO_RES, "end", 3);
}

/* A client and an idle worker of one function, each with what it sent. */
struct duo {
    struct stream ctx;
    struct stream wtx;
    int cpeer;
    int wpeer;
};

static struct gm_session *duo_open(struct fixture *f, const char *fn,
                                   struct duo *d)
{
    struct gm_session *w;

    memset(d, 0, sizeof(*d));
    w = idle_worker(f, fn, &d->wpeer);
    d->cpeer = client_peer(f);
    return w;
}

/* Ends their conversation: frees what was sent and closes both ends. */
static void duo_close(struct duo *d)
{
    free(d->ctx.data);
    free(d->wtx.data);
    close(d->cpeer);
    close(d->wpeer);
}

/* The worker sends WORK_DATA "part" and WORK_COMPLETE "all" for the job
 * of this handle; the client gets both, in order (after its JOB_CREATED
 * for it first, when created_first). */
static void part_then_all(struct fixture *f, struct duo *d, const char *handle,
                          bool created_first)
{
    char got[256];
    uint32_t type;

    stream_str(&d->wtx, GM_WORK_DATA, handle, "part", NULL, 2);
    stream_str(&d->wtx, GM_WORK_COMPLETE, handle, "all", NULL, 2);
    stream_write(&d->wtx, d->wpeer);
    if (created_first) {
        (void)read_reply(f, d->cpeer, &d->ctx, &type, got, sizeof(got));
        assert_int_equal(type, GM_JOB_CREATED);
        assert_string_equal(got, handle);
    }
    (void)read_reply(f, d->cpeer, &d->ctx, &type, got, sizeof(got));
    assert_int_equal(type, GM_WORK_DATA);
    assert_string_equal(got, handle);
    assert_memory_equal(got + strlen(got) + 1, "part", 4);
    (void)read_reply(f, d->cpeer, &d->ctx, &type, got, sizeof(got));
    assert_int_equal(type, GM_WORK_COMPLETE);
    assert_string_equal(got, handle);
    assert_memory_equal(got + strlen(got) + 1, "all", 3);
}

/* node/ahead.c: a GRAB read in the same turn as a SUBMIT, before that
 * SUBMIT is committed, is handed its job at once; the client gets
 * JOB_CREATED for the same handle, then the worker's result - relayed
 * when it was read (node/relay.c) - once and in order. */
static void test_grab_is_handed_a_job_not_yet_committed(void **state)
{
    struct fixture *f = *state;
    struct duo d;
    char assign[256];
    char created[64];
    char got[256];
    uint32_t type;
    size_t len;

    (void)duo_open(f, "ahead", &d);
    /* Both requests are waiting when the loop next looks: it reads the
     * SUBMIT first (epoll reports sockets in the order they became
     * readable), then the GRAB, and only then runs the batch. */
    send_pkt(d.cpeer, GM_SUBMIT_JOB, "ahead", "u1", "payload", 3);
    send_pkt(d.wpeer, GM_GRAB_JOB, NULL, NULL, NULL, 0);
    len = read_reply(f, d.wpeer, &d.wtx, &type, assign, sizeof(assign));
    assert_int_equal(type, GM_JOB_ASSIGN);
    assert_int_equal(f->srv.alone.n_ahead, 1);
    /* handle \0 function \0 payload */
    assert_string_equal(assign + strlen(assign) + 1, "ahead");
    assert_int_equal(len, strlen(assign) + 1 + 6 + 7);
    assert_memory_equal(assign + len - 7, "payload", 7);

    /* The result, written before the client may have its JOB_CREATED. */
    stream_str(&d.wtx, GM_WORK_COMPLETE, assign, "result", NULL, 2);
    stream_write(&d.wtx, d.wpeer);
    (void)read_reply(f, d.cpeer, &d.ctx, &type, created, sizeof(created));
    assert_int_equal(type, GM_JOB_CREATED);
    assert_string_equal(created, assign);
    len = read_reply(f, d.cpeer, &d.ctx, &type, got, sizeof(got));
    assert_int_equal(type, GM_WORK_COMPLETE);
    assert_string_equal(got, assign);
    assert_memory_equal(got + strlen(got) + 1, "result", 6);
    assert_int_equal(f->srv.alone.n_relays, 1);
    /* Nothing more: the batch that applied WORK_COMPLETE sent no copy. */
    nothing_more(f, d.cpeer, &d.ctx);
    duo_close(&d);
}

/* When the loop knows every job (nothing unsure or blind), a GRAB that
 * finds none gets NO_JOB without a write, PRE_SLEEP sleeps without
 * waiting for one, and a submission wakes the sleeper as it is read. */
static void test_no_job_and_sleep_need_no_batch(void **state)
{
    struct fixture *f = *state;
    struct duo d;
    struct gm_session *w;
    uint64_t started;

    w = duo_open(f, "quiet", &d);
    started = f->srv.pipe.gen_next;
    stream_str(&d.wtx, GM_GRAB_JOB, "", NULL, NULL, 0);
    expect_reply(f, d.wpeer, &d.wtx, GM_NO_JOB, NULL, 0);
    stream_str(&d.wtx, GM_PRE_SLEEP, "", NULL, NULL, 0);
    stream_str(&d.wtx, GM_ECHO_REQ, "zz", NULL, NULL, 1);
    expect_reply(f, d.wpeer, &d.wtx, GM_ECHO_RES, "zz", 2);
    assert_true(w->sleeping);
    assert_int_equal(count_sleepers(f), 1);
    /* No batch started (a batch is counted in n_batches only once it has
     * committed), and nothing waits for one. */
    assert_int_equal(f->srv.pipe.gen_next, started);
    assert_null(f->srv.pipe.head);

    stream_str(&d.ctx, GM_SUBMIT_JOB_BG, "quiet", "", "job", 3);
    stream_write(&d.ctx, d.cpeer);
    expect_reply(f, d.wpeer, &d.wtx, GM_NOOP, NULL, 0);
    expect_reply(f, d.cpeer, &d.ctx, GM_JOB_CREATED, NULL, 0);
    stream_str(&d.wtx, GM_GRAB_JOB, "", NULL, NULL, 0);
    expect_reply(f, d.wpeer, &d.wtx, GM_JOB_ASSIGN, NULL, 0);
    duo_close(&d);
}

/* Two clients submit one unique key while a worker asks, all in one
 * turn: the first submission's job goes out ahead; the second cannot be
 * told ahead (it joins that job when applied). Both clients get the one
 * job's JOB_CREATED and its result exactly once - the first by relay,
 * the second from the batch. */
static void test_joined_job_handed_out_ahead_reaches_both(void **state)
{
    struct fixture *f = *state;
    struct stream tx[2] = {{NULL, 0, 0, 0}, {NULL, 0, 0, 0}};
    struct stream wtx = {NULL, 0, 0, 0};
    char assign[256];
    char got[256];
    uint32_t type;
    int cpeer[2];
    int wpeer;
    int i;

    (void)idle_worker(f, "join", &wpeer);
    for (i = 0; i < 2; i++) {
        cpeer[i] = client_peer(f);
    }
    send_pkt(cpeer[0], GM_SUBMIT_JOB, "join", "same", "first", 3);
    send_pkt(cpeer[1], GM_SUBMIT_JOB, "join", "same", "second", 3);
    send_pkt(wpeer, GM_GRAB_JOB, NULL, NULL, NULL, 0);
    (void)read_reply(f, wpeer, &wtx, &type, assign, sizeof(assign));
    assert_int_equal(type, GM_JOB_ASSIGN);
    assert_int_equal(f->srv.alone.n_ahead, 1);
    stream_str(&wtx, GM_WORK_COMPLETE, assign, "done", NULL, 2);
    stream_write(&wtx, wpeer);
    for (i = 0; i < 2; i++) {
        (void)read_reply(f, cpeer[i], &tx[i], &type, got, sizeof(got));
        assert_int_equal(type, GM_JOB_CREATED);
        assert_string_equal(got, assign);
        (void)read_reply(f, cpeer[i], &tx[i], &type, got, sizeof(got));
        assert_int_equal(type, GM_WORK_COMPLETE);
        assert_string_equal(got, assign);
        assert_memory_equal(got + strlen(got) + 1, "done", 4);
        nothing_more(f, cpeer[i], &tx[i]);
        free(tx[i].data);
        close(cpeer[i]);
    }
    assert_int_equal(f->srv.alone.n_relays, 1);
    free(wtx.data);
    close(wpeer);
}

/* A committed foreground job handed out at GRAB time: its one client has
 * its JOB_CREATED, so the worker's WORK_DATA and WORK_COMPLETE go to it
 * as they are read (node/relay.c), in order, and the batches that apply
 * them send no second copy. */
static void test_committed_job_results_are_relayed_once(void **state)
{
    struct fixture *f = *state;
    struct duo d;
    char created[64];
    char assign[256];
    uint32_t type;

    (void)duo_open(f, "later", &d);
    stream_str(&d.ctx, GM_SUBMIT_JOB, "later", "", "in", 3);
    (void)read_reply(f, d.cpeer, &d.ctx, &type, created, sizeof(created));
    assert_int_equal(type, GM_JOB_CREATED);
    stream_str(&d.wtx, GM_GRAB_JOB, "", NULL, NULL, 0);
    (void)read_reply(f, d.wpeer, &d.wtx, &type, assign, sizeof(assign));
    assert_int_equal(type, GM_JOB_ASSIGN);
    assert_string_equal(assign, created);
    assert_int_equal(f->srv.alone.n_ahead, 0);
    part_then_all(f, &d, assign, false);
    assert_int_equal(f->srv.alone.n_relays, 2);
    nothing_more(f, d.cpeer, &d.ctx);
    duo_close(&d);
}

/* One client submits one unique key twice (as Perl's task sets do) while
 * a worker asks: gearmand counts it as two waiters, so two JOB_CREATED
 * and two results reach it - one relayed, one from the batch - and no
 * third. */
static void test_client_joined_twice_gets_two_results(void **state)
{
    struct fixture *f = *state;
    struct duo d;
    char assign[256];
    char got[256];
    uint32_t type;
    int created = 0;
    int complete = 0;
    int i;

    (void)duo_open(f, "twice", &d);
    stream_str(&d.ctx, GM_SUBMIT_JOB, "twice", "one", "x", 3);
    stream_str(&d.ctx, GM_SUBMIT_JOB, "twice", "one", "x", 3);
    stream_write(&d.ctx, d.cpeer);
    send_pkt(d.wpeer, GM_GRAB_JOB, NULL, NULL, NULL, 0);
    (void)read_reply(f, d.wpeer, &d.wtx, &type, assign, sizeof(assign));
    assert_int_equal(type, GM_JOB_ASSIGN);
    stream_str(&d.wtx, GM_WORK_COMPLETE, assign, "r", NULL, 2);
    stream_write(&d.wtx, d.wpeer);
    for (i = 0; i < 4; i++) {
        (void)read_reply(f, d.cpeer, &d.ctx, &type, got, sizeof(got));
        assert_string_equal(got, assign);
        created += type == GM_JOB_CREATED;
        complete += type == GM_WORK_COMPLETE;
        /* each result follows a JOB_CREATED */
        assert_true(complete <= created);
    }
    assert_int_equal(created, 2);
    assert_int_equal(complete, 2);
    nothing_more(f, d.cpeer, &d.ctx);
    duo_close(&d);
}

/* A GET_STATUS read in the same turn as the GRAB that was handed the job
 * (its GRAB not yet committed) waits for that GRAB: it shows the job
 * running, as the worker has it. */
static void test_status_after_hand_out_shows_running(void **state)
{
    struct fixture *f = *state;
    struct duo d;
    char created[64];
    char got[256];
    uint32_t type;
    size_t len;

    (void)duo_open(f, "st", &d);
    stream_str(&d.ctx, GM_SUBMIT_JOB_BG, "st", "", "x", 3);
    (void)read_reply(f, d.cpeer, &d.ctx, &type, created, sizeof(created));
    assert_int_equal(type, GM_JOB_CREATED);
    send_pkt(d.wpeer, GM_GRAB_JOB, NULL, NULL, NULL, 0);
    send_pkt(d.cpeer, GM_GET_STATUS, created, NULL, NULL, 1);
    (void)read_reply(f, d.wpeer, &d.wtx, &type, got, sizeof(got));
    assert_int_equal(type, GM_JOB_ASSIGN);
    len = read_reply(f, d.cpeer, &d.ctx, &type, got, sizeof(got));
    assert_int_equal(type, GM_STATUS_RES);
    /* handle \0 known \0 running \0 numerator \0 denominator */
    assert_int_equal(len, strlen(created) + 1 + 2 + 2 + 2 + 1);
    assert_memory_equal(got + strlen(created) + 1,
                        "1\0"
                        "1\0"
                        "0\0"
                        "0",
                        7);
    duo_close(&d);
}

/* gm_handout_failed: after a batch fails, the jobs numbered from its first
 * index on were numbered wrongly. A worker handed one (by a GRAB of that
 * batch, or one still queued) is closed, the queued GRAB takes nothing
 * when applied, and a hand-out of a committed job stays as it was. */
static void test_failed_batch_closes_workers_handed_jobs_ahead(void **state)
{
    struct fixture *f = *state;
    struct gr_proposal *grab[3];
    struct gm_session *w[3];
    int peer[3];
    int i;

    for (i = 0; i < 3; i++) {
        w[i] = connect_session(f, &peer[i]);
        grab[i] = gr_proposal_new();
        assert_non_null(grab[i]);
        grab[i]->conn_id = w[i]->conn_id;
        grab[i]->cmd.type = STORE_CMD_GRAB;
        assert_int_equal(
            gr_numset_add(&f->srv.alone.handed_out, 7 + (uint64_t)i), 0);
    }
    grab[0]->cmd.u.grab.job = 7; /* committed before the failed batch */
    grab[1]->cmd.u.grab.job = 8; /* in the failed batch */
    grab[2]->cmd.u.grab.job = 9; /* queued behind it */
    grab[1]->next = NULL;
    grab[0]->next = grab[2];
    grab[2]->next = NULL;
    f->srv.pipe.head = grab[0];
    gm_handout_failed(&f->srv.gm, grab[1], 8);
    f->srv.pipe.head = NULL;

    assert_int_equal(grab[0]->cmd.u.grab.job, 7);
    assert_true(gr_numset_has(&f->srv.alone.handed_out, 7));
    assert_true(w[0]->state != GM_SS_CLOSING && w[0]->state != GM_SS_CLOSED);
    assert_int_equal(grab[1]->cmd.u.grab.job, 8); /* settled with its batch */
    assert_true(w[1]->state == GM_SS_CLOSING || w[1]->state == GM_SS_CLOSED);
    assert_int_equal(grab[2]->cmd.u.grab.job, 0);
    assert_int_equal(grab[2]->cmd.u.grab.min_job, UINT64_MAX);
    assert_false(gr_numset_has(&f->srv.alone.handed_out, 9));
    assert_true(w[2]->state == GM_SS_CLOSING || w[2]->state == GM_SS_CLOSED);
    for (i = 0; i < 3; i++) {
        gr_proposal_free(grab[i]);
        close(peer[i]);
    }
}

/* A node that does not decide the log's order alone (a cluster member,
 * srv.alone.decides_alone off) hands out no job at GRAB time and relays
 * nothing: the worker's JOB_ASSIGN comes from its applied GRAB, the
 * client's WORK_* from the batches that apply them, and a sleeping
 * worker is woken when a submission is applied. */
static void
test_not_deciding_alone_assigns_and_forwards_after_apply(void **state)
{
    struct fixture *f = *state;
    struct duo d;
    char assign[256];
    char got[256];
    uint32_t type;
    int round;

    f->srv.alone.decides_alone = false;
    (void)duo_open(f, "plain", &d);
    /* First a job submitted as the worker asks (it would go out ahead of
     * its commit), then one committed while the worker sleeps (it would
     * go out at GRAB time): each result would be relayed. */
    for (round = 0; round < 2; round++) {
        if (round == 0) {
            send_pkt(d.cpeer, GM_SUBMIT_JOB, "plain", "", "in", 3);
            send_pkt(d.wpeer, GM_GRAB_JOB, NULL, NULL, NULL, 0);
        } else {
            stream_str(&d.wtx, GM_GRAB_JOB, "", NULL, NULL, 0);
            expect_reply(f, d.wpeer, &d.wtx, GM_NO_JOB, NULL, 0);
            stream_str(&d.wtx, GM_PRE_SLEEP, "", NULL, NULL, 0);
            stream_str(&d.wtx, GM_ECHO_REQ, "zz", NULL, NULL, 1);
            expect_reply(f, d.wpeer, &d.wtx, GM_ECHO_RES, "zz", 2);
            stream_str(&d.ctx, GM_SUBMIT_JOB, "plain", "", "in", 3);
            stream_write(&d.ctx, d.cpeer);
            expect_reply(f, d.wpeer, &d.wtx, GM_NOOP, NULL, 0);
            (void)read_reply(f, d.cpeer, &d.ctx, &type, got, sizeof(got));
            assert_int_equal(type, GM_JOB_CREATED);
            stream_str(&d.wtx, GM_GRAB_JOB, "", NULL, NULL, 0);
        }
        (void)read_reply(f, d.wpeer, &d.wtx, &type, assign, sizeof(assign));
        assert_int_equal(type, GM_JOB_ASSIGN);
        part_then_all(f, &d, assign, round == 0);
        nothing_more(f, d.cpeer, &d.ctx);
    }
    assert_int_equal(f->srv.alone.n_ahead, 0);
    assert_int_equal(f->srv.alone.n_relays, 0);
    duo_close(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_pipelined_submits_then_echo_reply_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_status_waits_for_the_pending_submission, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_magic_closes_only_that_session,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_peer_not_reading_pauses_session_then_all_replies_arrive, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_pause_with_held_frame_resumes_after_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_wakeup_to_full_socket_pauses_idle_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_sleepers_list_follows_sleep_wake_and_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_echo_behind_a_grab_holds_no_batch,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_eof_while_paused_answers_the_rest_then_closes, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_pipelined_flood_is_capped_then_all_acknowledged, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_large_body_is_read_straight_and_keeps_order, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_grab_is_handed_a_job_not_yet_committed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_job_and_sleep_need_no_batch,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_joined_job_handed_out_ahead_reaches_both, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_committed_job_results_are_relayed_once, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_client_joined_twice_gets_two_results, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_status_after_hand_out_shows_running, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_failed_batch_closes_workers_handed_jobs_ahead, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_not_deciding_alone_assigns_and_forwards_after_apply, setup,
            teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
