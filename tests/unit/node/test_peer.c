/* SPDX-License-Identifier: BSD-3-Clause
 * tests/unit/node/test_peer.c - node/cluster/peer.c on real sockets on
 * 127.0.0.1 (ephemeral ports), several transports on one event_base.
 *
 * Frames go both ways, in order and intact, 10 MiB ones included; a peer
 * that starts late, or is stopped and started again, is reached; a bad
 * checksum, an oversize length or a bad hello closes only that link (and
 * is logged); another cluster is refused; a receiver that does not read
 * makes frames drop at the queue bound instead of growing memory; the
 * stats count all of it. The loop is driven with EVLOOP_ONCE until a
 * condition holds or a deadline passes, never a sleep: a 5 ms ticker only
 * keeps a turn from blocking past the deadline.
 */
#include <errno.h>
#include <netinet/in.h>
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

#include "node/cluster/peer.h"
#include "storage/store.h"

#define MAX_NODES 4
#define MAX_ID    16
#define BIG_LEN   (10u << 20)
#define DEADLINE  5000 /* ms; every wait ends far sooner when all is well */
#define CLUSTER   "test-cluster"

struct fixture;

struct node {
    struct fixture *f;
    uint64_t id;
    uint16_t port;
    struct peer_net *net;
    uint64_t next_seq[MAX_ID]; /* by sender: the seq expected next */
    uint64_t n_rx[MAX_ID];     /* good frames by sender */
    uint64_t n_wrong;          /* out of order or damaged */
    uint64_t n_big;            /* intact frames of BIG_LEN */
    uint64_t n_empty;          /* frames of no bytes */
    int ups[MAX_ID];
    int downs[MAX_ID];
    uint64_t remove_at; /* after this many frames from remove_id ... */
    uint64_t remove_id; /* ... on_frame removes that peer */
};

struct fixture {
    struct event_base *base;
    struct event *ticker;
    struct node nodes[MAX_NODES];
    uint64_t fake_ms; /* the clock of nodes that use fake_clock */
};

/* ---------------------------------------------------------------------
 * Payloads: an 8-byte sequence number, then bytes that depend on it, so
 * that order, loss and damage all show.
 */

static uint8_t pattern(uint64_t seq, size_t i)
{
    return (uint8_t)(seq * 31u + i * 7u + (i >> 13));
}

static void fill(uint8_t *buf, uint64_t seq, size_t len)
{
    size_t i;

    memcpy(buf, &seq, sizeof(seq));
    for (i = sizeof(seq); i < len; i++) {
        buf[i] = pattern(seq, i);
    }
}

static bool intact(const uint8_t *buf, uint64_t seq, size_t len)
{
    size_t i;

    for (i = sizeof(seq); i < len; i++) {
        if (buf[i] != pattern(seq, i)) {
            return false;
        }
    }
    return true;
}

static void on_frame(void *arg, uint64_t from, const uint8_t *payload,
                     size_t len)
{
    struct node *n = arg;
    uint64_t seq;

    assert_true(from > 0 && from < MAX_ID);
    if (len == 0) {
        n->n_empty++;
        return;
    }
    assert_true(len >= sizeof(seq));
    memcpy(&seq, payload, sizeof(seq));
    if (seq != n->next_seq[from] || !intact(payload, seq, len)) {
        n->n_wrong++;
    }
    n->next_seq[from] = seq + 1;
    n->n_rx[from]++;
    if (len == BIG_LEN) {
        n->n_big++;
    }
    if (from == n->remove_id && n->n_rx[from] == n->remove_at) {
        assert_int_equal(peer_remove(n->net, from), 0);
    }
}

static void on_link(void *arg, uint64_t peer_id, bool up)
{
    struct node *n = arg;

    assert_true(peer_id > 0 && peer_id < MAX_ID);
    if (up) {
        n->ups[peer_id]++;
    } else {
        n->downs[peer_id]++;
    }
}

static uint64_t fake_clock(void *arg)
{
    return ((struct fixture *)arg)->fake_ms;
}

/* ---------------------------------------------------------------------
 * The fixture and the loop.
 */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct timeval tv = {0, 5000};

    gr_log_threshold = GR_LOG_FATAL;
    f->base = event_base_new();
    f->ticker = event_new(f->base, -1, EV_PERSIST, on_tick, NULL);
    if (f->base == NULL || f->ticker == NULL ||
        event_add(f->ticker, &tv) != 0) {
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int i;

    for (i = 0; i < MAX_NODES; i++) {
        peer_net_free(f->nodes[i].net);
    }
    event_free(f->ticker);
    event_base_free(f->base);
    free(f);
    gr_log_threshold = GR_LOG_FATAL;
    return 0;
}

static uint64_t mono_ms(void)
{
    return gr_mono_us() / 1000u;
}

typedef bool (*cond_fn)(struct fixture *f, void *arg);

/* Runs loop turns until cond holds; false if ms passed first. */
static bool run_until(struct fixture *f, cond_fn cond, void *arg, uint64_t ms)
{
    uint64_t end = mono_ms() + ms;

    while (!cond(f, arg)) {
        if (mono_ms() > end) {
            return false;
        }
        event_base_loop(f->base, EVLOOP_ONCE);
    }
    return true;
}

static bool never(struct fixture *f, void *arg)
{
    (void)f;
    (void)arg;
    return false;
}

/* A configuration for node index i with id i + 1, listening on port
 * (0: any), fast backoff. */
static struct peer_net_config node_config(struct fixture *f, int i, char *laddr,
                                          size_t laddr_len, uint16_t port)
{
    struct peer_net_config c;
    struct node *n = &f->nodes[i];

    n->f = f;
    n->id = (uint64_t)i + 1;
    snprintf(laddr, laddr_len, "127.0.0.1:%u", (unsigned)port);
    peer_net_config_default(&c, n->id, CLUSTER);
    c.listen = laddr;
    c.backoff_min_ms = 2;
    c.backoff_max_ms = 40;
    c.on_frame = on_frame;
    c.on_link = on_link;
    c.cb_arg = n;
    if (f->fake_ms != 0) {
        c.clock = fake_clock;
        c.clock_arg = f;
    }
    return c;
}

static void node_open(struct fixture *f, int i, const struct peer_net_config *c)
{
    struct node *n = &f->nodes[i];
    char err[256] = "";

    assert_null(n->net);
    if (peer_net_new(f->base, c, &n->net, err, sizeof(err)) != 0) {
        fail_msg("peer_net_new: %s", err);
    }
    n->port = peer_net_port(n->net);
    assert_true(c->listen == NULL || n->port != 0);
}

static void node_start(struct fixture *f, int i, uint16_t port)
{
    char laddr[64];
    struct peer_net_config c = node_config(f, i, laddr, sizeof(laddr), port);

    node_open(f, i, &c);
}

static void node_stop(struct fixture *f, int i)
{
    peer_net_free(f->nodes[i].net);
    f->nodes[i].net = NULL;
}

static void add_peer(struct fixture *f, int i, uint64_t id, uint16_t port)
{
    char addr[64];
    char err[256] = "";

    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)port);
    if (peer_add(f->nodes[i].net, id, addr, err, sizeof(err)) != 0) {
        fail_msg("peer_add: %s", err);
    }
}

/* Nodes 0 .. n-1, each a peer of every other. */
static void start_mesh(struct fixture *f, int n)
{
    int i;
    int j;

    for (i = 0; i < n; i++) {
        node_start(f, i, 0);
    }
    for (i = 0; i < n; i++) {
        for (j = 0; j < n; j++) {
            if (i != j) {
                add_peer(f, i, f->nodes[j].id, f->nodes[j].port);
            }
        }
    }
}

static struct peer_stats stats_of(struct fixture *f, int i, uint64_t id)
{
    struct peer_stats st;

    assert_int_equal(peer_stats(f->nodes[i].net, id, &st), 0);
    return st;
}

static bool link_is_up(struct fixture *f, int i, uint64_t id)
{
    return f->nodes[i].net != NULL && stats_of(f, i, id).out_up &&
           stats_of(f, i, id).in_up;
}

/* Every pair among nodes 0 .. n-1 has both links up. */
static bool mesh_up(struct fixture *f, void *arg)
{
    int n = *(int *)arg;
    int i;
    int j;

    for (i = 0; i < n; i++) {
        for (j = 0; j < n; j++) {
            if (i != j && !link_is_up(f, i, f->nodes[j].id)) {
                return false;
            }
        }
    }
    return true;
}

static void wait_mesh(struct fixture *f, int n)
{
    assert_true(run_until(f, mesh_up, &n, DEADLINE));
}

/* Sends frame seq of len bytes from node i to id; returns peer_send's. */
static int send_seq(struct fixture *f, int i, uint64_t id, uint64_t seq,
                    size_t len)
{
    uint8_t *buf = malloc(len);
    int rv;

    fill(buf, seq, len);
    rv = peer_send(f->nodes[i].net, id, buf, len);
    free(buf);
    return rv;
}

struct want_rx {
    int node;
    uint64_t from;
    uint64_t n;
};

static bool got_frames(struct fixture *f, void *arg)
{
    const struct want_rx *w = arg;

    for (; w->n != 0; w++) {
        if (f->nodes[w->node].n_rx[w->from] < w->n) {
            return false;
        }
    }
    return true;
}

/* Sends `count` frames from every node of 0 .. n-1 to every other and
 * waits until each arrived; `first` is the first sequence number. */
static void exchange(struct fixture *f, int n, uint64_t first, uint64_t count)
{
    struct want_rx want[MAX_NODES * MAX_NODES + 1];
    size_t k = 0;
    uint64_t s;
    int i;
    int j;

    memset(want, 0, sizeof(want));
    for (s = first; s < first + count; s++) {
        for (i = 0; i < n; i++) {
            for (j = 0; j < n; j++) {
                if (i != j) {
                    assert_int_equal(send_seq(f, i, f->nodes[j].id, s,
                                              8 + (size_t)(s * 997 % 70000)),
                                     0);
                }
            }
        }
    }
    for (i = 0; i < n; i++) {
        for (j = 0; j < n; j++) {
            if (i != j) {
                want[k].node = j;
                want[k].from = f->nodes[i].id;
                want[k].n = first + count;
                k++;
            }
        }
    }
    assert_true(run_until(f, got_frames, want, DEADLINE));
    for (i = 0; i < n; i++) {
        assert_int_equal(f->nodes[i].n_wrong, 0);
    }
}

/* ---------------------------------------------------------------------
 * Raw sockets that play a peer, or a stranger, by hand.
 */

static int raw_connect(uint16_t port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void raw_write(int fd, const void *buf, size_t len)
{
    assert_int_equal(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Writes a frame: header with the given length and checksum, then body. */
static void raw_frame(int fd, uint32_t len, uint32_t crc, const void *body,
                      size_t body_len)
{
    uint8_t hdr[PEER_FRAME_HEADER_LEN];

    peer_frame_header_encode(hdr, len, crc);
    raw_write(fd, hdr, sizeof(hdr));
    if (body_len > 0) {
        raw_write(fd, body, body_len);
    }
}

static void raw_good_frame(int fd, const void *body, size_t len)
{
    raw_frame(fd, (uint32_t)len, store_crc32c(0, body, len), body, len);
}

/* Sends the hello of node `from` to node 1 (the node under test). */
static void raw_hello(int fd, uint64_t from, const char *cluster)
{
    uint8_t h[PEER_HELLO_MAX_LEN];
    size_t len;

    assert_int_equal(peer_hello_encode(from, 1, cluster, h, &len), 0);
    raw_good_frame(fd, h, len);
}

/* What a raw socket got so far, and whether it saw the end. */
struct raw_rx {
    int fd;
    uint8_t buf[256];
    size_t len;
    size_t want; /* bytes to wait for */
    bool eof;
};

static bool raw_poll(struct fixture *f, void *arg)
{
    struct raw_rx *r = arg;
    ssize_t n;

    (void)f;
    if (r->eof) {
        return true;
    }
    n = recv(r->fd, r->buf + r->len, sizeof(r->buf) - r->len, MSG_DONTWAIT);
    if (n > 0) {
        r->len += (size_t)n;
    } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
        r->eof = true;
    }
    return r->eof || (r->want > 0 && r->len >= r->want);
}

/* Waits for node 1's hello to node `to` in CLUSTER on the raw socket. */
static void raw_expect_hello(struct fixture *f, int fd, uint64_t to)
{
    struct raw_rx r = {.fd = fd};
    uint8_t h[PEER_HELLO_MAX_LEN];
    size_t len;

    assert_int_equal(peer_hello_encode(1, to, CLUSTER, h, &len), 0);
    r.want = PEER_FRAME_HEADER_LEN + len;
    assert_true(run_until(f, raw_poll, &r, DEADLINE));
    assert_false(r.eof);
    assert_int_equal(r.len, r.want);
    assert_memory_equal(r.buf + PEER_FRAME_HEADER_LEN, h, len);
}

/* Waits until the transport closed the raw socket. */
static void raw_expect_closed(struct fixture *f, int fd)
{
    struct raw_rx r = {.fd = fd};

    assert_true(run_until(f, raw_poll, &r, DEADLINE));
    assert_true(r.eof);
    close(fd);
}

/* A port where nothing listens (bound a moment ago, then released). */
static uint16_t dead_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* ---------------------------------------------------------------------
 * The tests.
 */

struct ref {
    uint8_t *buf;
    bool released;
};

static void release_ref(const void *data, size_t len, void *arg)
{
    struct ref *r = arg;

    (void)data;
    (void)len;
    free(r->buf);
    r->buf = NULL;
    r->released = true;
}

static void test_peer_two_nets_exchange_frames_both_ways_in_order(void **state)
{
    struct fixture *f = *state;
    struct want_rx want[] = {{1, 1, 106}, {0, 2, 103}, {0, 0, 0}};
    struct evbuffer *eb = evbuffer_new();
    struct ref ref = {malloc(BIG_LEN), false};
    struct peer_stats a;
    struct peer_stats b;

    start_mesh(f, 2);
    wait_mesh(f, 2);
    assert_int_equal(f->nodes[0].ups[2], 1);
    assert_int_equal(f->nodes[1].ups[1], 1);
    exchange(f, 2, 0, 100);
    /* 10 MiB each way: A hands over referenced memory (no copy), B a
     * plain buffer; small frames before and after keep their places. */
    fill(ref.buf, 101, BIG_LEN);
    assert_int_equal(
        evbuffer_add_reference(eb, ref.buf, BIG_LEN, release_ref, &ref), 0);
    assert_int_equal(send_seq(f, 0, 2, 100, 8), 0);
    assert_int_equal(peer_send_evbuffer(f->nodes[0].net, 2, eb), 0);
    assert_int_equal(evbuffer_get_length(eb), 0); /* moved, not copied */
    assert_int_equal(send_seq(f, 0, 2, 102, 40), 0);
    assert_int_equal(send_seq(f, 1, 1, 100, 8), 0);
    assert_int_equal(send_seq(f, 1, 1, 101, BIG_LEN), 0);
    assert_int_equal(send_seq(f, 1, 1, 102, 40), 0);
    /* An empty frame, then sizes around 256 KiB, where the receiver
     * switches to reading a frame into its own memory. */
    assert_int_equal(peer_send(f->nodes[0].net, 2, NULL, 0), 0);
    assert_int_equal(send_seq(f, 0, 2, 103, (256u << 10) - 1), 0);
    assert_int_equal(send_seq(f, 0, 2, 104, 256u << 10), 0);
    assert_int_equal(send_seq(f, 0, 2, 105, (256u << 10) + 1), 0);
    assert_true(run_until(f, got_frames, want, DEADLINE));
    assert_int_equal(f->nodes[1].n_empty, 1);
    assert_int_equal(f->nodes[0].n_wrong, 0);
    assert_int_equal(f->nodes[1].n_wrong, 0);
    assert_int_equal(f->nodes[0].n_big, 1);
    assert_int_equal(f->nodes[1].n_big, 1);
    assert_true(ref.released); /* written, then let go */
    evbuffer_free(eb);

    a = stats_of(f, 0, 2);
    b = stats_of(f, 1, 1);
    assert_int_equal(a.frames_sent, 107);
    assert_int_equal(b.frames_recv, 107);
    assert_int_equal(a.bytes_sent, b.bytes_recv);
    assert_int_equal(b.frames_sent, 103);
    assert_int_equal(a.frames_recv, 103);
    assert_int_equal(b.bytes_sent, a.bytes_recv);
    assert_int_equal(a.frames_dropped + b.frames_dropped, 0);
    assert_int_equal(a.bad_frames + b.bad_frames, 0);
    assert_int_equal(a.connects, 1);
    assert_int_equal(a.queued_bytes, 0);
    assert_true(a.last_recv_ms > 0);
}

static void test_peer_three_nets_exchange_frames_in_order(void **state)
{
    struct fixture *f = *state;
    int i;

    start_mesh(f, 3);
    wait_mesh(f, 3);
    exchange(f, 3, 0, 60);
    exchange(f, 3, 60, 5);
    for (i = 0; i < 3; i++) {
        struct peer_net_stats ns;

        peer_net_stats(f->nodes[i].net, &ns);
        assert_int_equal(ns.accepted, 2);
        assert_int_equal(ns.refused, 0);
    }
}

struct dials {
    int node;
    uint64_t id;
    uint64_t n;
};

static bool dialed(struct fixture *f, void *arg)
{
    struct dials *d = arg;

    return stats_of(f, d->node, d->id).dials >= d->n;
}

static void test_peer_reaches_a_peer_that_starts_later(void **state)
{
    struct fixture *f = *state;
    uint16_t port = dead_port();
    struct dials d = {0, 2, 3};

    node_start(f, 0, 0);
    add_peer(f, 0, 2, port);
    assert_true(run_until(f, dialed, &d, DEADLINE));
    assert_false(stats_of(f, 0, 2).out_up);
    assert_int_equal(send_seq(f, 0, 2, 0, 8), GR_EDROPPED);

    node_start(f, 1, port);
    add_peer(f, 1, 1, f->nodes[0].port);
    wait_mesh(f, 2);
    assert_int_equal(f->nodes[0].ups[2], 1);
    assert_int_equal(stats_of(f, 0, 2).connects, 1);
    assert_int_equal(stats_of(f, 0, 2).frames_dropped, 1);
    exchange(f, 2, 0, 3);
}

static bool is_down(struct fixture *f, void *arg)
{
    return f->nodes[0].downs[*(uint64_t *)arg] > 0;
}

static void test_peer_reconnects_to_a_restarted_peer(void **state)
{
    struct fixture *f = *state;
    uint64_t id = 2;
    uint16_t port;

    start_mesh(f, 2);
    wait_mesh(f, 2);
    exchange(f, 2, 0, 3);
    port = f->nodes[1].port;
    node_stop(f, 1);
    assert_true(run_until(f, is_down, &id, DEADLINE));
    assert_false(stats_of(f, 0, 2).out_up);

    memset(&f->nodes[1], 0, sizeof(f->nodes[1]));
    node_start(f, 1, port);
    add_peer(f, 1, 1, f->nodes[0].port);
    wait_mesh(f, 2);
    assert_int_equal(f->nodes[0].ups[2], 2);
    assert_int_equal(stats_of(f, 0, 2).connects, 2);
    /* node 0 goes on from seq 3; the new node 1 starts again at 0 */
    f->nodes[1].next_seq[1] = 3;
    f->nodes[1].n_rx[1] = 3;
    exchange(f, 2, 3, 3);
}

static void test_peer_bad_frames_close_only_their_link(void **state)
{
    struct fixture *f = *state;
    char path[] = "/tmp/gr-peer-log-XXXXXX";
    char err[256];
    char *log;
    uint8_t small[16] = {0};
    uint8_t bad_magic[PEER_HELLO_MAX_LEN];
    uint8_t other[PEER_HELLO_MAX_LEN];
    size_t len;
    struct peer_net_stats ns;
    FILE *fp;
    long size;
    int fd;

    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(gr_log_open(path, err, sizeof(err)), 0);
    gr_log_threshold = GR_LOG_WARN;
    f->fake_ms = 1000; /* warnings are rate-limited on the node's clock */
    start_mesh(f, 2);
    add_peer(f, 0, 3, dead_port()); /* node 3 exists only as raw sockets */
    wait_mesh(f, 2);

    /* A known peer, then a checksum that does not match. */
    fd = raw_connect(f->nodes[0].port);
    raw_hello(fd, 3, CLUSTER);
    raw_expect_hello(f, fd, 3);
    raw_frame(fd, sizeof(small), 0x12345678u, small, sizeof(small));
    raw_expect_closed(f, fd);
    assert_int_equal(stats_of(f, 0, 3).bad_frames, 1);

    /* A length over the limit: closed before any body is read. */
    fd = raw_connect(f->nodes[0].port);
    raw_hello(fd, 3, CLUSTER);
    raw_expect_hello(f, fd, 3);
    raw_frame(fd, (uint32_t)(64u << 20) + 1, 0, NULL, 0);
    raw_expect_closed(f, fd);
    assert_int_equal(stats_of(f, 0, 3).bad_frames, 2);

    /* Hellos: another magic, an oversize first frame, one meant for
     * another node, an unknown node, and a good one behind a bad
     * checksum. */
    assert_int_equal(peer_hello_encode(3, 1, CLUSTER, bad_magic, &len), 0);
    bad_magic[0] = 'X';
    fd = raw_connect(f->nodes[0].port);
    raw_good_frame(fd, bad_magic, len);
    raw_expect_closed(f, fd);
    fd = raw_connect(f->nodes[0].port);
    raw_frame(fd, PEER_HELLO_MAX_LEN + 1, 0, NULL, 0);
    raw_expect_closed(f, fd);
    assert_int_equal(peer_hello_encode(3, 5, CLUSTER, other, &len), 0);
    fd = raw_connect(f->nodes[0].port);
    raw_good_frame(fd, other, len);
    raw_expect_closed(f, fd);
    /* Five warnings in this second: the next ones are only counted. */
    fd = raw_connect(f->nodes[0].port);
    raw_hello(fd, 9, CLUSTER);
    raw_expect_closed(f, fd);
    fd = raw_connect(f->nodes[0].port);
    raw_frame(fd, (uint32_t)len, 0, other, len);
    raw_expect_closed(f, fd);
    f->fake_ms += 1000;
    fd = raw_connect(f->nodes[0].port);
    raw_good_frame(fd, bad_magic, len);
    raw_expect_closed(f, fd);
    peer_net_stats(f->nodes[0].net, &ns);
    assert_int_equal(ns.refused, 6);
    assert_int_equal(ns.accepted, 9); /* node 2 and eight raw sockets */

    /* The good links never noticed. */
    exchange(f, 2, 0, 5);
    assert_int_equal(stats_of(f, 0, 2).connects, 1);
    assert_int_equal(stats_of(f, 1, 1).connects, 1);
    assert_int_equal(stats_of(f, 0, 2).bad_frames, 0);

    /* One line each, saying what and from where. */
    gr_log_close();
    fp = fopen(path, "r");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    size = ftell(fp);
    rewind(fp);
    log = calloc(1, (size_t)size + 1);
    assert_int_equal(fread(log, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    unlink(path);
    assert_non_null(strstr(log, "closed the link from node 3"));
    assert_non_null(strstr(log, "checksum mismatch"));
    assert_non_null(strstr(log, "over the limit of 67108864"));
    assert_non_null(strstr(log, "not a gearraft peer"));
    assert_non_null(strstr(log, "meant to reach node 5, this is node 1"));
    assert_null(strstr(log, "node 9 is not a peer of this node"));
    assert_non_null(strstr(log, "(2 similar lines suppressed)"));
    free(log);
}

static void test_peer_newer_link_from_a_node_replaces_the_older(void **state)
{
    struct fixture *f = *state;
    uint8_t body[8];
    uint64_t seq = 0;
    int old_fd;
    int fd;

    node_start(f, 0, 0);
    add_peer(f, 0, 3, dead_port());
    old_fd = raw_connect(f->nodes[0].port);
    raw_hello(old_fd, 3, CLUSTER);
    raw_expect_hello(f, old_fd, 3);
    assert_true(stats_of(f, 0, 3).in_up);
    fd = raw_connect(f->nodes[0].port);
    raw_hello(fd, 3, CLUSTER);
    raw_expect_hello(f, fd, 3);
    raw_expect_closed(f, old_fd);
    memcpy(body, &seq, sizeof(seq));
    raw_good_frame(fd, body, sizeof(body));
    {
        struct want_rx want[] = {{0, 3, 1}, {0, 0, 0}};

        assert_true(run_until(f, got_frames, want, DEADLINE));
    }
    assert_true(stats_of(f, 0, 3).in_up);
    assert_int_equal(stats_of(f, 0, 3).bad_frames, 0);
    close(fd);
}

struct refused {
    int a;
    int b;
};

static bool both_refused(struct fixture *f, void *arg)
{
    struct refused *r = arg;
    struct peer_net_stats sa;
    struct peer_net_stats sb;

    peer_net_stats(f->nodes[r->a].net, &sa);
    peer_net_stats(f->nodes[r->b].net, &sb);
    return sa.refused >= 2 && sb.refused >= 2;
}

static void test_peer_other_cluster_is_refused(void **state)
{
    struct fixture *f = *state;
    char laddr[64];
    struct peer_net_config c;
    struct refused r = {0, 1};

    node_start(f, 0, 0);
    c = node_config(f, 1, laddr, sizeof(laddr), 0);
    c.cluster = "other-cluster";
    node_open(f, 1, &c);
    add_peer(f, 0, 2, f->nodes[1].port);
    add_peer(f, 1, 1, f->nodes[0].port);
    assert_true(run_until(f, both_refused, &r, DEADLINE));
    assert_false(stats_of(f, 0, 2).out_up);
    assert_false(stats_of(f, 0, 2).in_up);
    assert_false(stats_of(f, 1, 1).out_up);
    assert_int_equal(f->nodes[0].ups[2] + f->nodes[1].ups[1], 0);
    assert_int_equal(send_seq(f, 0, 2, 0, 8), GR_EDROPPED);
    assert_int_equal(f->nodes[0].n_rx[2] + f->nodes[1].n_rx[1], 0);
}

struct acceptor {
    int lfd;
    int fd;
};

static bool accepted(struct fixture *f, void *arg)
{
    struct acceptor *a = arg;

    (void)f;
    a->fd = accept(a->lfd, NULL, NULL);
    return a->fd >= 0;
}

/* A raw listening socket on 127.0.0.1 with a tiny receive buffer, for
 * playing a peer that accepts by hand. Returns its port. */
static uint16_t raw_listen(struct acceptor *a)
{
    struct sockaddr_in sa;
    socklen_t sa_len = sizeof(sa);
    int small = 4096;

    a->fd = -1;
    a->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(a->lfd >= 0);
    assert_int_equal(
        setsockopt(a->lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(a->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(a->lfd, 4), 0);
    assert_int_equal(getsockname(a->lfd, (struct sockaddr *)&sa, &sa_len), 0);
    return ntohs(sa.sin_port);
}

static bool refused_twice(struct fixture *f, void *arg)
{
    struct peer_net_stats ns;

    peer_net_stats(f->nodes[*(int *)arg].net, &ns);
    return ns.refused >= 2;
}

static void test_peer_a_wrong_peer_address_is_refused_at_both_ends(void **state)
{
    struct fixture *f = *state;
    struct acceptor a;
    uint8_t h[PEER_HELLO_MAX_LEN];
    size_t len;
    int node = 1;

    /* Node 1 thinks node 3 listens where node 2 does: node 2 refuses the
     * link (it was meant for node 3) and keeps node 1's real one. */
    start_mesh(f, 2);
    add_peer(f, 0, 3, f->nodes[1].port);
    wait_mesh(f, 2);
    assert_true(run_until(f, refused_twice, &node, DEADLINE));
    assert_false(stats_of(f, 0, 3).out_up);
    assert_int_equal(stats_of(f, 0, 3).connects, 0);
    assert_int_equal(f->nodes[0].ups[3], 0);
    assert_int_equal(send_seq(f, 0, 3, 0, 8), GR_EDROPPED);
    assert_int_equal(stats_of(f, 0, 2).connects, 1);
    assert_int_equal(stats_of(f, 1, 1).connects, 1);
    exchange(f, 2, 0, 2);

    /* The dialer checks the answer too: an acceptor that answers as
     * another node is refused and counted. */
    add_peer(f, 0, 4, raw_listen(&a));
    assert_true(run_until(f, accepted, &a, DEADLINE));
    raw_expect_hello(f, a.fd, 4);
    assert_int_equal(peer_hello_encode(5, 1, CLUSTER, h, &len), 0);
    raw_good_frame(a.fd, h, len);
    raw_expect_closed(f, a.fd);
    close(a.lfd);
    assert_int_equal(stats_of(f, 0, 4).bad_frames, 1);
    assert_int_equal(stats_of(f, 0, 4).connects, 0);
}

static bool out_is_up(struct fixture *f, void *arg)
{
    return stats_of(f, 0, *(uint64_t *)arg).out_up;
}

static bool out_is_down(struct fixture *f, void *arg)
{
    return !out_is_up(f, arg);
}

/* A peer named by a host name that does not resolve (yet) is kept and
 * redialed, each dial looking the name up again (a container's name
 * resolves only once it runs); a name that resolves is dialed. ".invalid"
 * never resolves (RFC 6761). */
static void test_peer_looks_a_name_up_at_every_dial(void **state)
{
    struct fixture *f = *state;
    struct dials d = {0, 2, 3};
    char laddr[64];
    char addr[64];
    char err[256] = "";
    struct peer_net_config c;
    uint16_t port = dead_port();

    node_start(f, 0, 0);
    assert_int_equal(peer_add(f->nodes[0].net, 2,
                              "gearraft-peer-test.invalid:4731", err,
                              sizeof(err)),
                     0);
    assert_true(run_until(f, dialed, &d, DEADLINE));
    assert_false(stats_of(f, 0, 2).out_up);
    assert_int_equal(stats_of(f, 0, 2).connects, 0);
    assert_int_equal(send_seq(f, 0, 2, 0, 8), GR_EDROPPED);
    assert_int_equal(peer_remove(f->nodes[0].net, 2), 0);

    /* Both ends by name: the listener and the dialer take the same first
     * address of "localhost", whichever family that is. */
    snprintf(addr, sizeof(addr), "localhost:%u", (unsigned)port);
    assert_int_equal(peer_add(f->nodes[0].net, 3, addr, err, sizeof(err)), 0);
    c = node_config(f, 2, laddr, sizeof(laddr), 0);
    c.listen = addr;
    node_open(f, 2, &c);
    add_peer(f, 2, 1, f->nodes[0].port);
    assert_true(run_until(f, out_is_up, &(uint64_t){3}, DEADLINE));
    assert_int_equal(f->nodes[0].ups[3], 1);
}

static void test_peer_send_queue_bound_drops_frames(void **state)
{
    struct fixture *f = *state;
    const size_t frame = 64 * 1024;
    const size_t limit = 1u << 20;
    struct acceptor a;
    char laddr[64];
    struct peer_net_config c;
    struct peer_stats st;
    uint64_t id = 2;
    uint64_t sent = 0;
    uint64_t dropped = 0;
    uint16_t port;
    int i;

    /* A listener that will take the link, answer the hello and then
     * never read. */
    port = raw_listen(&a);
    c = node_config(f, 0, laddr, sizeof(laddr), 0);
    c.max_queue_bytes = limit;
    c.max_frame_bytes = 1u << 20;
    node_open(f, 0, &c);
    add_peer(f, 0, 2, port);
    assert_true(run_until(f, accepted, &a, DEADLINE));
    raw_expect_hello(f, a.fd, 2);
    raw_hello(a.fd, 2, CLUSTER);
    assert_true(run_until(f, out_is_up, &id, DEADLINE));

    assert_int_equal(send_seq(f, 0, 2, 0, (1u << 20) + 1), GR_ETOOBIG);
    assert_int_equal(send_seq(f, 0, 7, 0, 8), GR_EINVAL);
    for (i = 0; i < 400; i++) { /* 25 MiB at a reader that reads nothing */
        int rv = send_seq(f, 0, 2, (uint64_t)i, frame);

        if (rv == 0) {
            sent++;
        } else {
            assert_int_equal(rv, GR_EDROPPED);
            dropped++;
        }
        st = stats_of(f, 0, 2);
        assert_true(st.queued_bytes <= limit + PEER_FRAME_HEADER_LEN + frame);
        event_base_loop(f->base, EVLOOP_NONBLOCK);
    }
    st = stats_of(f, 0, 2);
    assert_true(dropped > 0);
    assert_int_equal(st.frames_sent, sent);
    assert_int_equal(st.frames_dropped, dropped);
    assert_int_equal(st.bytes_sent, sent * frame);
    assert_true(st.queued_bytes >= limit);

    /* The reader goes away: what was queued is discarded and counted. */
    close(a.fd);
    close(a.lfd);
    assert_true(run_until(f, out_is_down, &id, DEADLINE));
    st = stats_of(f, 0, 2);
    assert_true(st.bytes_discarded >= limit);
    assert_int_equal(st.queued_bytes, 0);
    assert_int_equal(f->nodes[0].downs[2], 1);
}

static void test_peer_redials_with_growing_backoff(void **state)
{
    struct fixture *f = *state;
    char laddr[64];
    struct peer_net_config c = node_config(f, 0, laddr, sizeof(laddr), 0);
    uint64_t dials;

    /* 20 ms, then doubling, each delay drawn from [d/2, d]: dials at
     * 0, 10-20, 30-60, 70-140, 150-300 ms. */
    c.backoff_min_ms = 20;
    c.backoff_max_ms = 1000;
    c.listen = NULL;
    node_open(f, 0, &c);
    assert_int_equal(peer_net_port(f->nodes[0].net), 0);
    add_peer(f, 0, 2, dead_port());
    assert_false(run_until(f, never, NULL, 300));
    dials = stats_of(f, 0, 2).dials;
    assert_true(dials >= 3);
    assert_true(dials <= 5);
    assert_int_equal(stats_of(f, 0, 2).connects, 0);
}

static bool sender_saw_it_go(struct fixture *f, void *arg)
{
    struct peer_net_stats ns;

    (void)arg;
    peer_net_stats(f->nodes[0].net, &ns);
    return f->nodes[1].downs[1] > 0 && ns.refused > 0;
}

static void test_peer_removed_in_its_own_callback_delivers_no_more(void **state)
{
    struct fixture *f = *state;
    struct peer_stats st;
    uint64_t s;

    start_mesh(f, 2);
    wait_mesh(f, 2);
    f->nodes[0].remove_id = 2;
    f->nodes[0].remove_at = 3;
    for (s = 0; s < 10; s++) {
        assert_int_equal(send_seq(f, 1, 1, s, 8), 0);
    }
    /* Node 1 sees its link go down, redials, and is refused: node 2 is
     * no peer of node 0 any more. */
    assert_true(run_until(f, sender_saw_it_go, NULL, DEADLINE));
    assert_int_equal(f->nodes[0].n_rx[2], 3);
    assert_int_equal(f->nodes[0].n_wrong, 0);
    assert_int_equal(peer_stats(f->nodes[0].net, 2, &st), GR_EINVAL);
    assert_int_equal(peer_remove(f->nodes[0].net, 2), GR_EINVAL);
    assert_int_equal(send_seq(f, 0, 2, 0, 8), GR_EINVAL);
}

struct walk {
    uint64_t ids[MAX_ID];
    size_t n;
    size_t stop_at;
};

static int collect(void *arg, const struct peer_stats *st)
{
    struct walk *w = arg;

    w->ids[w->n++] = st->id;
    return w->n == w->stop_at ? 99 : 0;
}

static void test_peer_stats_use_the_given_clock_and_walk_in_order(void **state)
{
    struct fixture *f = *state;
    struct want_rx want[] = {{0, 2, 1}, {0, 0, 0}};
    struct walk all = {{0}, 0, 0};
    struct walk two = {{0}, 0, 2};

    f->fake_ms = 123456;
    node_start(f, 0, 0);
    node_start(f, 1, 0);
    add_peer(f, 0, 2, f->nodes[1].port);
    add_peer(f, 1, 1, f->nodes[0].port);
    add_peer(f, 0, 4, dead_port());
    add_peer(f, 0, 3, dead_port());
    wait_mesh(f, 2);
    assert_int_equal(send_seq(f, 1, 1, 0, 8), 0);
    assert_true(run_until(f, got_frames, want, DEADLINE));
    assert_int_equal(stats_of(f, 0, 2).last_recv_ms, 123456);
    assert_int_equal(stats_of(f, 0, 2).bytes_recv, 8);
    assert_int_equal(stats_of(f, 0, 3).last_recv_ms, 0);
    assert_int_equal(stats_of(f, 0, 3).frames_recv, 0);

    assert_int_equal(peer_stats_walk(f->nodes[0].net, collect, &all), 0);
    assert_int_equal(all.n, 3);
    assert_int_equal(all.ids[0], 2);
    assert_int_equal(all.ids[1], 4);
    assert_int_equal(all.ids[2], 3);
    assert_int_equal(peer_stats_walk(f->nodes[0].net, collect, &two), 99);
    assert_int_equal(two.n, 2);
}

/* peer_net_new refuses cfg with GR_EINVAL or GR_EIO (rv) and says why. */
static void expect_refused(struct fixture *f, const struct peer_net_config *c,
                           int rv, const char *why)
{
    struct peer_net *net = NULL;
    char err[256] = "";

    assert_int_equal(peer_net_new(f->base, c, &net, err, sizeof(err)), rv);
    assert_null(net);
    if (strstr(err, why) == NULL) {
        fail_msg("error \"%s\" does not say \"%s\"", err, why);
    }
}

static void test_peer_refuses_bad_configurations(void **state)
{
    struct fixture *f = *state;
    char laddr[64];
    char in_use[64];
    char long_name[PEER_CLUSTER_NAME_MAX + 2];
    struct peer_addr peers[2] = {{2, "127.0.0.1:1"}, {2, "127.0.0.1:2"}};
    struct peer_net_config good;
    struct peer_net_config c;
    char err[256];

    node_start(f, 1, 0);
    good = node_config(f, 0, laddr, sizeof(laddr), 0);
    c = good;
    c.self_id = 0;
    expect_refused(f, &c, GR_EINVAL, "self_id");
    c = good;
    c.on_frame = NULL;
    expect_refused(f, &c, GR_EINVAL, "on_frame");
    c = good;
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    c.cluster = long_name;
    expect_refused(f, &c, GR_EINVAL, "cluster name");
    c.cluster = "";
    expect_refused(f, &c, GR_EINVAL, "cluster name");
    c = good;
    c.backoff_min_ms = 50;
    c.backoff_max_ms = 10;
    expect_refused(f, &c, GR_EINVAL, "backoff");
    c = good;
    c.max_frame_bytes = (size_t)UINT32_MAX + 1;
    expect_refused(f, &c, GR_EINVAL, "max_frame_bytes");
    c = good;
    c.listen = "127.0.0.1";
    expect_refused(f, &c, GR_EINVAL, "expected host:port");
    c.listen = "127.0.0.1:65536";
    expect_refused(f, &c, GR_EINVAL, "bad port");
    c.listen = "[::1:5";
    expect_refused(f, &c, GR_EINVAL, "[v6 address]:port");
    snprintf(in_use, sizeof(in_use), "127.0.0.1:%u",
             (unsigned)f->nodes[1].port);
    c.listen = in_use;
    expect_refused(f, &c, GR_EIO, "listening for peers");
    c = good;
    c.peers = peers;
    c.n_peers = 2;
    expect_refused(f, &c, GR_EINVAL, "a peer already");
    peers[1].id = 1;
    expect_refused(f, &c, GR_EINVAL, "this node's own");
    peers[1].id = 3;
    peers[1].addr = "no-port";
    expect_refused(f, &c, GR_EINVAL, "expected host:port");

    /* Names resolve; the same errors come from peer_add later on. */
    peers[1].addr = "localhost:7";
    node_open(f, 0, &c);
    assert_int_equal(
        peer_add(f->nodes[0].net, 0, "127.0.0.1:1", err, sizeof(err)),
        GR_EINVAL);
    assert_int_equal(
        peer_add(f->nodes[0].net, 3, "127.0.0.1:1", err, sizeof(err)),
        GR_EINVAL);
    assert_non_null(strstr(err, "a peer already"));
    assert_int_equal(peer_remove(f->nodes[0].net, 9), GR_EINVAL);
}

static void test_peer_new_fails_cleanly_when_memory_runs_out(void **state)
{
    struct fixture *f = *state;
    struct peer_addr peers[2] = {{2, "127.0.0.1:1"}, {3, "127.0.0.1:2"}};
    char laddr[64];
    struct peer_net_config c = node_config(f, 0, laddr, sizeof(laddr), 0);
    struct peer_net *net;
    char err[256];
    long n;
    int rv = GR_ENOMEM;

    c.peers = peers;
    c.n_peers = 2;
    /* Fail the 1st, 2nd, ... allocation until none fails; ASan checks
     * that each failure leaves nothing behind. */
    for (n = 0; rv == GR_ENOMEM; n++) {
        net = NULL;
        gr_alloc_fail_after(n);
        rv = peer_net_new(f->base, &c, &net, err, sizeof(err));
        gr_alloc_fail_after(-1);
        if (rv == GR_ENOMEM) {
            assert_null(net);
            assert_non_null(strstr(err, "out of memory"));
        }
    }
    assert_int_equal(rv, 0);
    assert_true(n > 1);
    peer_net_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_peer_two_nets_exchange_frames_both_ways_in_order),
        T(test_peer_three_nets_exchange_frames_in_order),
        T(test_peer_reaches_a_peer_that_starts_later),
        T(test_peer_looks_a_name_up_at_every_dial),
        T(test_peer_reconnects_to_a_restarted_peer),
        T(test_peer_bad_frames_close_only_their_link),
        T(test_peer_newer_link_from_a_node_replaces_the_older),
        T(test_peer_other_cluster_is_refused),
        T(test_peer_a_wrong_peer_address_is_refused_at_both_ends),
        T(test_peer_send_queue_bound_drops_frames),
        T(test_peer_redials_with_growing_backoff),
        T(test_peer_removed_in_its_own_callback_delivers_no_more),
        T(test_peer_stats_use_the_given_clock_and_walk_in_order),
        T(test_peer_refuses_bad_configurations),
        T(test_peer_new_fails_cleanly_when_memory_runs_out),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
