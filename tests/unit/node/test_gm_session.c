/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/node/test_gm_session.c - a session's state machine on a real
 * server loop and store (fresh mkdtemp directory), driven through a
 * socketpair: replies keep request order across commits, a read waits in
 * GM_SS_WAIT_COMMIT, and malformed input closes only that connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "node/gm_session.h"
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
    assert_int_equal(gm_session_new(&f->srv, sv[0], "127.0.0.1", &s), 0);
    *peer = sv[1];
    return s;
}

static void send_pkt(int fd, uint32_t type, const char *a0, const char *a1,
                     const char *a2, size_t n)
{
    struct gr_buf a[3] = {gm_str(a0 ? a0 : ""), gm_str(a1 ? a1 : ""),
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
    }
    assert_int_equal(pump(f, peer, buf, GM_HEADER_LEN), GM_HEADER_LEN);
    assert_int_equal(type_at(buf), GM_JOB_CREATED);
    assert_int_equal(pump(f, peer, buf, size_at(buf)), size_at(buf));
    /* status then lists the queued job: "g\t1\t0\t0\n.\n" */
    assert_int_equal(pump(f, peer, buf, 10), 10);
    assert_memory_equal(buf, "g\t1\t0\t0\n.\n", 10);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_pipelined_submits_then_echo_reply_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_status_waits_for_the_pending_submission, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_magic_closes_only_that_session,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
