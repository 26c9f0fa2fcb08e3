/* SPDX-License-Identifier: BSD-3-Clause
 * node/cluster/peer.c - the peer transport: dialed links that send,
 * accepted links that receive, each an explicit state stepped by its
 * socket's events.
 *
 * Why it is shaped this way:
 * - One struct peer_link serves both directions, because both read frames
 *   (the hello at least) and write them (the hello at least); only what a
 *   frame means after the hello depends on the direction.
 * - A link is never freed inside its own callbacks: link_close() closes
 *   its socket at once and moves it to a dead list that a deferred event
 *   frees (reap), so a callback that removes the peer it is being called
 *   for leaves nothing dangling behind it.
 * - Small frames are parsed out of an evbuffer; a frame of BIG_FRAME bytes
 *   or more is read straight into memory of its own size, with
 *   TCP_QUICKACK set before every read: Linux delays ACKs in its default
 *   mode, and on a long transfer that caps the sender's window growth.
 * - Writes go through sendmsg(MSG_NOSIGNAL), so a peer that vanished is
 *   an error code here, not a SIGPIPE for whoever embeds the transport.
 * - Redial delays double from backoff_min_ms to backoff_max_ms, each drawn
 *   at random in [delay/2, delay] from a generator seeded by the
 *   configuration (so nodes that lost a peer together do not redial in
 *   step); a link that stayed up for backoff_max_ms resets the delay.
 *
 * Not here: the byte layout of frames and hellos (peer_wire.c), what the
 * payloads mean (peer_codec.c and the host loop).
 */
#include "node/cluster/peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "storage/store.h"

#define READ_CHUNK     (64 * 1024)  /* bytes read per call into a buffer */
#define BIG_FRAME      (256 * 1024) /* from here on, read into own memory */
#define MAX_PENDING    32   /* accepted links still waiting for their hello */
#define WRITE_IOV      16   /* buffer chunks handed to one sendmsg */
#define WARN_WINDOW_MS 1000 /* warnings: at most WARN_BURST a window */
#define WARN_BURST     5
#define BACKLOG        64

enum peer_dir {
    PEER_DIR_OUT = 1, /* we dialed it; we send on it */
    PEER_DIR_IN = 2,  /* the peer dialed it; we receive on it */
};

enum peer_link_state {
    PEER_LINK_CONNECTING = 1, /* out: connect(2) in progress */
    PEER_LINK_HELLO = 2,      /* waiting for the other side's hello */
    PEER_LINK_UP = 3,         /* out: sends frames; in: delivers them */
    PEER_LINK_CLOSED = 4,     /* socket closed; freed by the next reap */
};

struct peer;

struct peer_link {
    struct peer_net *net;
    struct peer *peer; /* out: the peer dialed; in: NULL until its hello */
    enum peer_dir dir;
    enum peer_link_state state;
    int fd;
    struct event *rd_ev;
    struct event *wr_ev;
    struct event *timer_ev; /* the handshake deadline */
    struct evbuffer *in;
    struct evbuffer *out;
    bool have_hdr; /* frame_len and frame_crc describe the next frame */
    uint32_t frame_len;
    uint32_t frame_crc;
    uint8_t *big; /* a big frame's payload, read straight into here */
    size_t big_have;
    uint64_t up_ms;            /* when the hellos were done */
    char where[PEER_ADDR_MAX]; /* the other end, for log lines */
    struct peer_link *prev;    /* in net->links, or net->dead */
    struct peer_link *next;
};

struct peer {
    struct peer_net *net;
    uint64_t id;
    char addr[PEER_ADDR_MAX]; /* as configured */
    struct sockaddr_storage sa; /* what addr resolved to last */
    socklen_t sa_len;           /* 0: it has not resolved yet */
    struct peer_link *out;
    struct peer_link *in;
    struct event *dial_ev;
    uint64_t backoff_ms; /* the next redial delay, before jitter */
    bool literal; /* addr's host is an IP address: never looked up again */
    bool failing; /* a dial failed since the last link up: log at DEBUG */
    bool removed;
    struct peer_stats st;
    struct peer *next;
};

struct peer_net {
    struct event_base *base;
    struct peer_net_config cfg; /* cluster points at `cluster` below */
    char cluster[PEER_CLUSTER_NAME_MAX + 1];
    uint64_t rng;
    struct evconnlistener *listener;
    struct peer *peers;      /* in the order added */
    struct peer *dead_peers; /* removed, freed by the next reap */
    struct peer_link *links; /* open */
    struct peer_link *dead;  /* closed, freed by the next reap */
    size_t n_pending;        /* accepted links without a hello yet */
    struct event *reap_ev;
    int in_callback; /* depth of on_frame/on_link calls */
    uint64_t warn_window_end;
    unsigned warn_count;
    uint64_t warn_suppressed;
    struct peer_net_stats st;
};

static void link_close(struct peer_link *l, const char *why, bool bad);
static void flush(struct peer_link *l, bool may_close);

/* ---------------------------------------------------------------------
 * Small helpers: time, randomness, rate-limited warnings, sockets.
 */

static uint64_t now_ms(const struct peer_net *net)
{
    if (net->cfg.clock != NULL) {
        return net->cfg.clock(net->cfg.clock_arg);
    }
    return gr_mono_us() / 1000u;
}

/* splitmix64: small, seedable, and good enough for jitter. */
static uint64_t next_random(struct peer_net *net)
{
    uint64_t z = (net->rng += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static struct timeval ms_to_tv(uint64_t ms)
{
    struct timeval tv;

    tv.tv_sec = (time_t)(ms / 1000u);
    tv.tv_usec = (suseconds_t)((ms % 1000u) * 1000u);
    return tv;
}

/* A warning that a stranger or a broken peer can repeat at will: at most
 * WARN_BURST lines a window, and the next line says how many were
 * suppressed. */
static void warn(struct peer_net *net, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void warn(struct peer_net *net, const char *fmt, ...)
{
    char line[512];
    uint64_t now;
    va_list ap;

    if ((int)gr_log_threshold < (int)GR_LOG_WARN) {
        return;
    }
    now = now_ms(net);
    if (now >= net->warn_window_end) {
        net->warn_window_end = now + WARN_WINDOW_MS;
        net->warn_count = 0;
    }
    if (net->warn_count >= WARN_BURST) {
        net->warn_suppressed++;
        return;
    }
    net->warn_count++;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (net->warn_suppressed > 0) {
        GR_LOG(GR_LOG_WARN, "peer",
               "node=%llu %s (%llu similar lines suppressed)",
               (unsigned long long)net->cfg.self_id, line,
               (unsigned long long)net->warn_suppressed);
        net->warn_suppressed = 0;
        return;
    }
    GR_LOG(GR_LOG_WARN, "peer", "node=%llu %s",
           (unsigned long long)net->cfg.self_id, line);
}

static void set_tcp_option(int fd, int option, int value, const char *name)
{
    if (setsockopt(fd, IPPROTO_TCP, option, &value, sizeof(value)) == -1) {
        GR_LOG(GR_LOG_DEBUG, "peer", "%s: %s", name, strerror(errno));
    }
}

/* "ip:port" of a socket address, for log lines. */
static void format_sockaddr(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;

        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;

        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
    }
    snprintf(buf, len, "%s:%u", ip, port);
}

/* Resolves "host:port" or "[v6]:port" (an empty host with `passive`: any
 * address) into *sa. Returns 0, GR_EINVAL with errmsg when addr is not
 * of that form, or GR_EAGAIN with errmsg when its host does not resolve
 * (now: a name may resolve later, as a container's does once it runs). */
static int resolve(const char *addr, bool passive, struct sockaddr_storage *sa,
                   socklen_t *sa_len, char *errmsg, size_t errmsg_len)
{
    char host[PEER_ADDR_MAX];
    const char *colon;
    const char *h = addr;
    size_t h_len;
    char *end;
    unsigned long port;
    struct addrinfo hints;
    struct addrinfo *res;
    int rv;

    if (addr == NULL || strnlen(addr, PEER_ADDR_MAX) >= PEER_ADDR_MAX ||
        (colon = strrchr(addr, ':')) == NULL) {
        snprintf(errmsg, errmsg_len, "peer address %.80s: expected host:port",
                 addr != NULL ? addr : "(none)");
        return GR_EINVAL;
    }
    h_len = (size_t)(colon - addr);
    if (addr[0] == '[') {
        if (h_len < 2 || colon[-1] != ']') {
            snprintf(errmsg, errmsg_len,
                     "peer address %.80s: expected [v6 address]:port", addr);
            return GR_EINVAL;
        }
        h = addr + 1;
        h_len -= 2;
    }
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || port > 65535) {
        snprintf(errmsg, errmsg_len, "peer address %.80s: bad port", addr);
        return GR_EINVAL;
    }
    memcpy(host, h, h_len);
    host[h_len] = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    rv = getaddrinfo(h_len > 0 ? host : NULL, colon + 1, &hints, &res);
    if (rv != 0) {
        snprintf(errmsg, errmsg_len, "peer address %.80s: %s", addr,
                 gai_strerror(rv));
        return GR_EAGAIN;
    }
    memcpy(sa, res->ai_addr, res->ai_addrlen);
    *sa_len = (socklen_t)res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* Whether the host of addr, which resolve() took, is an IP address. */
static bool is_literal(const char *addr)
{
    char host[PEER_ADDR_MAX];
    struct in6_addr a;
    const char *colon = strrchr(addr, ':');
    const char *h = addr;
    size_t len;

    if (colon == NULL) {
        return false;
    }
    len = (size_t)(colon - addr);
    if (addr[0] == '[' && len >= 2) {
        h++;
        len -= 2;
    }
    memcpy(host, h, len);
    host[len] = '\0';
    return inet_pton(AF_INET, host, &a) == 1 ||
           inet_pton(AF_INET6, host, &a) == 1;
}

static struct peer *find_peer(const struct peer_net *net, uint64_t id)
{
    struct peer *p;

    for (p = net->peers; p != NULL; p = p->next) {
        if (p->id == id) {
            return p;
        }
    }
    return NULL;
}

static void schedule_reap(struct peer_net *net)
{
    event_active(net->reap_ev, EV_TIMEOUT, 0);
}

/* ---------------------------------------------------------------------
 * Links: creation, closing, freeing.
 */

static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);
static void on_handshake_timeout(evutil_socket_t fd, short what, void *arg);

static void list_push(struct peer_link **head, struct peer_link *l)
{
    l->prev = NULL;
    l->next = *head;
    if (*head != NULL) {
        (*head)->prev = l;
    }
    *head = l;
}

static void list_unlink(struct peer_link **head, struct peer_link *l)
{
    if (l->prev != NULL) {
        l->prev->next = l->next;
    } else {
        *head = l->next;
    }
    if (l->next != NULL) {
        l->next->prev = l->prev;
    }
    l->prev = NULL;
    l->next = NULL;
}

static void free_event(struct event *ev)
{
    if (ev != NULL) {
        event_free(ev);
    }
}

static void free_evbuffer(struct evbuffer *b)
{
    if (b != NULL) {
        evbuffer_free(b);
    }
}

/* Frees a link that is on no list. Closes its socket if still open. */
static void link_free(struct peer_link *l)
{
    free_event(l->rd_ev);
    free_event(l->wr_ev);
    free_event(l->timer_ev);
    if (l->fd != -1) {
        close(l->fd);
    }
    free_evbuffer(l->in);
    free_evbuffer(l->out);
    gr_free(l->big);
    gr_free(l);
}

/* A new open link on fd (which it takes ownership of only on success),
 * in net->links, its events not yet added. NULL when out of memory. */
static struct peer_link *link_new(struct peer_net *net, enum peer_dir dir,
                                  int fd, enum peer_link_state state)
{
    struct peer_link *l = gr_calloc(1, sizeof(*l));

    if (l == NULL) {
        return NULL;
    }
    l->net = net;
    l->dir = dir;
    l->state = state;
    l->fd = fd;
    l->in = evbuffer_new();
    l->out = evbuffer_new();
    l->rd_ev = event_new(net->base, fd, EV_READ | EV_PERSIST, on_read, l);
    l->wr_ev = event_new(net->base, fd, EV_WRITE | EV_PERSIST, on_write, l);
    l->timer_ev = evtimer_new(net->base, on_handshake_timeout, l);
    if (l->in == NULL || l->out == NULL || l->rd_ev == NULL ||
        l->wr_ev == NULL || l->timer_ev == NULL) {
        l->fd = -1; /* the caller still owns fd */
        link_free(l);
        return NULL;
    }
    list_push(&net->links, l);
    return l;
}

/* Starts the clock on l's hellos (on_handshake_timeout). */
static void arm_handshake(struct peer_link *l)
{
    struct timeval tv = ms_to_tv(l->net->cfg.handshake_timeout_ms);

    evtimer_add(l->timer_ev, &tv);
}

static void notify_link(struct peer_net *net, struct peer *p, bool up)
{
    if (net->cfg.on_link == NULL) {
        return;
    }
    net->in_callback++;
    net->cfg.on_link(net->cfg.cb_arg, p->id, up);
    net->in_callback--;
}

/* Arms the redial of p after a failed dial or a lost link, and returns the
 * delay. A link that stayed up for backoff_max_ms starts over from
 * backoff_min_ms. */
static uint64_t schedule_dial(struct peer *p, uint64_t up_for)
{
    struct peer_net *net = p->net;
    uint64_t base;
    uint64_t delay;
    struct timeval tv;

    if (up_for >= net->cfg.backoff_max_ms) {
        p->backoff_ms = net->cfg.backoff_min_ms;
    }
    base = p->backoff_ms;
    delay = base - base / 2 + next_random(net) % (base / 2 + 1);
    p->backoff_ms =
        base > net->cfg.backoff_max_ms / 2 ? net->cfg.backoff_max_ms : base * 2;
    tv = ms_to_tv(delay);
    evtimer_add(p->dial_ev, &tv);
    return delay;
}

/* The link to p is gone or never came up: say so once (a peer that stays
 * unreachable is logged at DEBUG after the first line) and redial. */
static void out_down(struct peer *p, const char *why, bool was_up,
                     uint64_t up_for, bool bad)
{
    struct peer_net *net = p->net;
    uint64_t delay = schedule_dial(p, up_for);
    unsigned long long self = (unsigned long long)net->cfg.self_id;

    if (bad || was_up) {
        warn(net, "link to node %llu (%s) %s: %s; redialing in %llu ms",
             (unsigned long long)p->id, p->addr, was_up ? "lost" : "refused",
             why, (unsigned long long)delay);
    } else if (!p->failing) {
        GR_LOG(GR_LOG_INFO, "peer",
               "node=%llu cannot reach node %llu at %s: %s; retrying with "
               "backoff up to %llu ms",
               self, (unsigned long long)p->id, p->addr, why,
               (unsigned long long)net->cfg.backoff_max_ms);
    } else {
        GR_LOG(GR_LOG_DEBUG, "peer",
               "node=%llu dial of node %llu failed: %s; next in %llu ms", self,
               (unsigned long long)p->id, why, (unsigned long long)delay);
    }
    p->failing = true;
    if (was_up) {
        notify_link(net, p, false);
    }
}

/* Closes l's socket now and frees l from a later loop turn (so that every
 * caller up the stack may still look at it: its state is then CLOSED).
 * why says what happened, for the log line; bad: the other side broke the
 * protocol (counted, and logged as a warning). */
static void link_close(struct peer_link *l, const char *why, bool bad)
{
    struct peer_net *net = l->net;
    struct peer *p = l->peer;
    bool was_up = l->state == PEER_LINK_UP;
    uint64_t up_for = was_up ? now_ms(net) - l->up_ms : 0;

    if (l->state == PEER_LINK_CLOSED) {
        return;
    }
    l->state = PEER_LINK_CLOSED;
    event_del(l->rd_ev);
    event_del(l->wr_ev);
    event_del(l->timer_ev);
    close(l->fd);
    l->fd = -1;
    list_unlink(&net->links, l);
    list_push(&net->dead, l);
    schedule_reap(net);
    if (p == NULL) { /* an accepted link that never said who it is */
        net->n_pending--;
        net->st.refused++;
        warn(net, "closed the link from %s before its hello: %s", l->where,
             why);
        return;
    }
    if (bad) {
        p->st.bad_frames++;
    }
    if (l->dir == PEER_DIR_IN) {
        if (p->in == l) {
            p->in = NULL;
        }
        if (bad) {
            warn(net,
                 "closed the link from node %llu (%s): %s; it will "
                 "redial",
                 (unsigned long long)p->id, l->where, why);
        } else {
            GR_LOG(GR_LOG_INFO, "peer",
                   "node=%llu link from node %llu (%s) "
                   "closed: %s",
                   (unsigned long long)net->cfg.self_id,
                   (unsigned long long)p->id, l->where, why);
        }
        return;
    }
    p->out = NULL;
    if (was_up) {
        p->st.bytes_discarded += evbuffer_get_length(l->out);
    }
    if (p->removed) {
        return;
    }
    out_down(p, why, was_up, up_for, bad);
}

/* link_close with a reason built from fmt, for a protocol breach. */
static void link_reject(struct peer_link *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void link_reject(struct peer_link *l, const char *fmt, ...)
{
    char why[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    link_close(l, why, true);
}

static void free_links(struct peer_link **head)
{
    while (*head != NULL) {
        struct peer_link *l = *head;

        list_unlink(head, l);
        link_free(l);
    }
}

static void free_peer(struct peer *p)
{
    free_event(p->dial_ev);
    gr_free(p);
}

static void free_peers(struct peer **head)
{
    while (*head != NULL) {
        struct peer *p = *head;

        *head = p->next;
        free_peer(p);
    }
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    struct peer_net *net = arg;

    (void)fd;
    (void)what;
    free_links(&net->dead);
    free_peers(&net->dead_peers);
}

/* ---------------------------------------------------------------------
 * Writing.
 */

/* Writes what the socket takes of l->out; keeps the write event armed
 * while bytes remain. A write error closes the link if may_close, else
 * leaves it to the write event (so that peer_send never calls back into
 * its caller). */
static void flush(struct peer_link *l, bool may_close)
{
    while (evbuffer_get_length(l->out) > 0) {
        struct evbuffer_iovec v[WRITE_IOV];
        struct msghdr mh;
        int n = evbuffer_peek(l->out, -1, NULL, v, WRITE_IOV);
        ssize_t w;

        memset(&mh, 0, sizeof(mh));
        mh.msg_iov = v;
        mh.msg_iovlen = (size_t)(n < WRITE_IOV ? n : WRITE_IOV);
        w = sendmsg(l->fd, &mh, MSG_NOSIGNAL);
        if (w == -1) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK || !may_close) {
                break;
            }
            link_close(l, strerror(errno), false);
            return;
        }
        evbuffer_drain(l->out, (size_t)w);
    }
    if (evbuffer_get_length(l->out) > 0) {
        event_add(l->wr_ev, NULL);
    } else {
        event_del(l->wr_ev);
    }
}

/* Queues this node's hello to node to_id on l. Returns 0 or GR_ENOMEM. */
static int queue_hello(struct peer_link *l, uint64_t to_id)
{
    struct peer_net *net = l->net;
    uint8_t frame[PEER_FRAME_HEADER_LEN + PEER_HELLO_MAX_LEN];
    uint8_t *hello = frame + PEER_FRAME_HEADER_LEN;
    size_t n;
    int rv;

    rv = peer_hello_encode(net->cfg.self_id, to_id, net->cluster, hello, &n);
    GR_ASSERT(rv == 0); /* the ids and the name were checked on the way in */
    peer_frame_header_encode(frame, (uint32_t)n, store_crc32c(0, hello, n));
    if (evbuffer_add(l->out, frame, PEER_FRAME_HEADER_LEN + n) != 0) {
        return GR_ENOMEM;
    }
    return 0;
}

/* The hellos are done on l: it carries frames from now on. */
static void link_up(struct peer_link *l)
{
    struct peer_net *net = l->net;
    struct peer *p = l->peer;
    bool out = l->dir == PEER_DIR_OUT;

    l->state = PEER_LINK_UP;
    l->up_ms = now_ms(net);
    event_del(l->timer_ev);
    GR_LOG(GR_LOG_INFO, "peer", "node=%llu link %s node %llu (%s) up",
           (unsigned long long)net->cfg.self_id, out ? "to" : "from",
           (unsigned long long)p->id, l->where);
    flush(l, true);
    if (out && l->state == PEER_LINK_UP) {
        p->st.connects++;
        p->failing = false;
        notify_link(net, p, true);
    }
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    struct peer_link *l = arg;
    int err = 0;
    socklen_t len = sizeof(err);

    (void)what;
    if (l->state != PEER_LINK_CONNECTING) {
        flush(l, true);
        return;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1) {
        err = errno;
    }
    if (err != 0) {
        link_close(l, strerror(err), false);
        return;
    }
    l->state = PEER_LINK_HELLO;
    event_add(l->rd_ev, NULL);
    flush(l, true); /* our hello */
}

static void on_handshake_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct peer_link *l = arg;
    char why[96];

    (void)fd;
    (void)what;
    snprintf(why, sizeof(why), "no %s within %llu ms",
             l->state == PEER_LINK_CONNECTING ? "connection" : "hello",
             (unsigned long long)l->net->cfg.handshake_timeout_ms);
    link_close(l, why, false);
}

/* ---------------------------------------------------------------------
 * Reading.
 */

/* The hello on l is good so far (checksum); check who sent it. */
static void take_hello(struct peer_link *l, const uint8_t *payload, size_t len)
{
    struct peer_net *net = l->net;
    struct peer_hello h;
    struct peer *p;
    struct peer_link *old;
    char why[160];

    if (peer_hello_decode(payload, len, &h, why, sizeof(why)) != 0) {
        link_reject(l, "%s", why);
        return;
    }
    if (strcmp(h.cluster, net->cluster) != 0) {
        link_reject(l, "node %llu belongs to cluster \"%s\", not \"%s\"",
                    (unsigned long long)h.node_id, h.cluster, net->cluster);
        return;
    }
    if (h.to_id != net->cfg.self_id) {
        link_reject(l,
                    "node %llu meant to reach node %llu, this is node %llu: "
                    "the peer address it has for node %llu is wrong",
                    (unsigned long long)h.node_id, (unsigned long long)h.to_id,
                    (unsigned long long)net->cfg.self_id,
                    (unsigned long long)h.to_id);
        return;
    }
    if (l->dir == PEER_DIR_OUT) {
        if (h.node_id != l->peer->id) {
            link_reject(l, "the address answers as node %llu",
                        (unsigned long long)h.node_id);
            return;
        }
        link_up(l);
        return;
    }
    p = find_peer(net, h.node_id);
    if (p == NULL) {
        link_reject(l, "node %llu is not a peer of this node",
                    (unsigned long long)h.node_id);
        return;
    }
    if (queue_hello(l, p->id) != 0) {
        link_close(l, "out of memory for the hello", false);
        return;
    }
    net->n_pending--;
    l->peer = p;
    old = p->in;
    p->in = l;
    if (old != NULL) {
        link_close(old, "replaced by a newer link from the same node", false);
    }
    link_up(l);
}

/* A whole frame arrived on l: check it and hand it on. */
static void take_frame(struct peer_link *l, const uint8_t *payload,
                       uint32_t len)
{
    struct peer_net *net = l->net;
    struct peer *p = l->peer;
    uint32_t crc = store_crc32c(0, payload, len);

    if (crc != l->frame_crc) {
        link_reject(l,
                    "checksum mismatch on a frame of %u bytes (0x%08x, the "
                    "header says 0x%08x)",
                    (unsigned)len, (unsigned)crc, (unsigned)l->frame_crc);
        return;
    }
    if (l->state == PEER_LINK_HELLO) {
        take_hello(l, payload, len);
        return;
    }
    if (l->dir == PEER_DIR_OUT) {
        link_reject(l, "a frame on the link this node sends on");
        return;
    }
    p->st.frames_recv++;
    p->st.bytes_recv += len;
    p->st.last_recv_ms = now_ms(net);
    net->in_callback++;
    net->cfg.on_frame(net->cfg.cb_arg, p->id, payload, len);
    net->in_callback--;
}

/* Takes every whole frame buffered in l->in; starts a big frame's own
 * memory when one is only partly there. */
static void parse(struct peer_link *l)
{
    static const uint8_t empty[1];
    struct peer_net *net = l->net;

    while (l->state == PEER_LINK_HELLO || l->state == PEER_LINK_UP) {
        size_t have = evbuffer_get_length(l->in);
        const uint8_t *payload;

        if (!l->have_hdr) {
            uint8_t hdr[PEER_FRAME_HEADER_LEN];
            size_t limit = l->state == PEER_LINK_HELLO
                               ? PEER_HELLO_MAX_LEN
                               : net->cfg.max_frame_bytes;

            if (have < sizeof(hdr)) {
                return;
            }
            evbuffer_remove(l->in, hdr, sizeof(hdr));
            have -= sizeof(hdr);
            peer_frame_header_decode(hdr, &l->frame_len, &l->frame_crc);
            if (l->frame_len > limit) {
                link_reject(l, "%s of %u bytes is over the limit of %zu",
                            l->state == PEER_LINK_HELLO ? "hello" : "frame",
                            (unsigned)l->frame_len, limit);
                return;
            }
            l->have_hdr = true;
        }
        if (have < l->frame_len) {
            if (l->frame_len >= BIG_FRAME) {
                l->big = gr_malloc(l->frame_len);
                if (l->big == NULL) {
                    link_close(l, "out of memory for a frame", false);
                    return;
                }
                evbuffer_remove(l->in, l->big, have);
                l->big_have = have;
            }
            return;
        }
        payload =
            l->frame_len == 0 ? empty : evbuffer_pullup(l->in, l->frame_len);
        if (payload == NULL) {
            link_close(l, "out of memory for a frame", false);
            return;
        }
        l->have_hdr = false;
        take_frame(l, payload, l->frame_len);
        evbuffer_drain(l->in, l->frame_len);
    }
}

/* Reads up to READ_CHUNK bytes into in. Returns as read(2) does. */
static ssize_t read_some(struct evbuffer *in, int fd)
{
    struct evbuffer_iovec v;
    ssize_t n;

    if (evbuffer_reserve_space(in, READ_CHUNK, &v, 1) != 1) {
        errno = ENOMEM;
        return -1;
    }
    n = read(fd, v.iov_base, v.iov_len);
    v.iov_len = n > 0 ? (size_t)n : 0;
    evbuffer_commit_space(in, &v, 1);
    return n;
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    struct peer_link *l = arg;
    ssize_t n;

    (void)what;
    if (l->big != NULL) {
#ifdef TCP_QUICKACK
        /* Not sticky: the kernel may drop back to delayed ACKs at any
         * time, so ask again before each read of a long frame. */
        set_tcp_option(fd, TCP_QUICKACK, 1, "TCP_QUICKACK");
#endif
        n = read(fd, l->big + l->big_have, l->frame_len - l->big_have);
    } else {
        n = read_some(l->in, fd);
    }
    if (n == -1) {
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
            link_close(l, strerror(errno), false);
        }
        return;
    }
    if (n == 0) {
        link_close(l, "closed by the other side", false);
        return;
    }
    if (l->big != NULL) {
        l->big_have += (size_t)n;
        if (l->big_have < l->frame_len) {
            if (l->peer != NULL && l->state == PEER_LINK_UP) {
                l->peer->st.last_part_ms = now_ms(l->net);
            }
            return;
        }
        l->have_hdr = false;
        take_frame(l, l->big, l->frame_len);
        /* The link may be closed now, but it is still ours until reaped,
         * and link_close leaves big alone for the callback's sake. */
        gr_free(l->big);
        l->big = NULL;
        l->big_have = 0;
    }
    parse(l);
}

/* ---------------------------------------------------------------------
 * Dialing and accepting.
 */

/* Looks p's address up again before a dial: a peer named by host name
 * may not resolve yet (its container is not started), or may have moved
 * to another address since the last dial (its container was recreated).
 * An IP literal resolved once is not looked up again. getaddrinfo blocks
 * the loop for as long as the name server takes (peer.h says so). Returns
 * 0 when p->sa is the address to dial, or -1 after scheduling a redial. */
static int lookup(struct peer *p)
{
    struct sockaddr_storage sa;
    socklen_t sa_len;
    char err[PEER_ADDR_MAX + 64];
    char was[INET6_ADDRSTRLEN + 8];
    char now[INET6_ADDRSTRLEN + 8];

    if (p->sa_len > 0 && p->literal) {
        return 0;
    }
    if (resolve(p->addr, false, &sa, &sa_len, err, sizeof(err)) != 0) {
        /* Said once, at WARN (a mistyped name looks like this); later
         * failures log as any failed dial does. */
        if (p->sa_len == 0 && !p->failing) {
            GR_LOG(GR_LOG_WARN, "peer",
                   "node=%llu cannot resolve node %llu's address: %s; "
                   "retrying with backoff up to %llu ms",
                   (unsigned long long)p->net->cfg.self_id,
                   (unsigned long long)p->id, err,
                   (unsigned long long)p->net->cfg.backoff_max_ms);
            p->failing = true;
        }
        out_down(p, err, false, 0, false);
        return -1;
    }
    if (p->sa_len > 0 &&
        (p->sa_len != sa_len || memcmp(&p->sa, &sa, sa_len) != 0)) {
        format_sockaddr((const struct sockaddr *)&p->sa, was, sizeof(was));
        format_sockaddr((const struct sockaddr *)&sa, now, sizeof(now));
        GR_LOG(GR_LOG_NOTICE, "peer",
               "node=%llu node %llu (%s) moved from %s to %s",
               (unsigned long long)p->net->cfg.self_id,
               (unsigned long long)p->id, p->addr, was, now);
    }
    memcpy(&p->sa, &sa, sa_len);
    p->sa_len = sa_len;
    return 0;
}

static void on_dial(evutil_socket_t unused, short what, void *arg)
{
    struct peer *p = arg;
    struct peer_net *net = p->net;
    struct peer_link *l;
    int fd;

    (void)unused;
    (void)what;
    p->st.dials++;
    if (lookup(p) != 0) {
        return;
    }
    fd = socket(p->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        out_down(p, strerror(errno), false, 0, false);
        return;
    }
    l = link_new(net, PEER_DIR_OUT, fd, PEER_LINK_CONNECTING);
    if (l == NULL) {
        close(fd);
        out_down(p, "out of memory", false, 0, false);
        return;
    }
    l->peer = p;
    p->out = l;
    snprintf(l->where, sizeof(l->where), "%s", p->addr);
    set_tcp_option(fd, TCP_NODELAY, 1, "TCP_NODELAY");
#ifdef TCP_USER_TIMEOUT
    if (net->cfg.dead_after_ms > 0) {
        set_tcp_option(fd, TCP_USER_TIMEOUT,
                       net->cfg.dead_after_ms > INT32_MAX
                           ? INT32_MAX
                           : (int)net->cfg.dead_after_ms,
                       "TCP_USER_TIMEOUT");
    }
#endif
    arm_handshake(l);
    if (queue_hello(l, p->id) != 0) {
        link_close(l, "out of memory for the hello", false);
        return;
    }
    if (connect(fd, (const struct sockaddr *)&p->sa, p->sa_len) == 0) {
        l->state = PEER_LINK_HELLO;
        event_add(l->rd_ev, NULL);
        flush(l, true);
        return;
    }
    if (errno == EINPROGRESS || errno == EINTR) {
        event_add(l->wr_ev, NULL); /* on_write sees the outcome */
        return;
    }
    link_close(l, strerror(errno), false);
}

static void on_accept(struct evconnlistener *lis, evutil_socket_t fd,
                      struct sockaddr *sa, int socklen, void *arg)
{
    struct peer_net *net = arg;
    struct peer_link *l;
    char where[PEER_ADDR_MAX];

    (void)lis;
    (void)socklen;
    net->st.accepted++;
    format_sockaddr(sa, where, sizeof(where));
    if (net->n_pending >= MAX_PENDING) {
        net->st.refused++;
        warn(net,
             "closed the link from %s: %d links are waiting for their "
             "hello already",
             where, MAX_PENDING);
        close(fd);
        return;
    }
    l = link_new(net, PEER_DIR_IN, fd, PEER_LINK_HELLO);
    if (l == NULL) {
        net->st.refused++;
        warn(net, "closed the link from %s: out of memory", where);
        close(fd);
        return;
    }
    net->n_pending++;
    memcpy(l->where, where, sizeof(where));
    set_tcp_option(fd, TCP_NODELAY, 1, "TCP_NODELAY");
    event_add(l->rd_ev, NULL);
    arm_handshake(l);
}

static void on_accept_error(struct evconnlistener *lis, void *arg)
{
    (void)lis;
    warn(arg, "accepting a peer link: %s; still listening", strerror(errno));
}

static int open_listener(struct peer_net *net, const char *addr, char *errmsg,
                         size_t errmsg_len)
{
    struct sockaddr_storage sa;
    socklen_t sa_len;
    int rv;

    rv = resolve(addr, true, &sa, &sa_len, errmsg, errmsg_len);
    if (rv != 0) {
        return GR_EINVAL;
    }
    net->listener = evconnlistener_new_bind(
        net->base, on_accept, net,
        LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
        BACKLOG, (struct sockaddr *)&sa, (int)sa_len);
    if (net->listener == NULL) {
        snprintf(errmsg, errmsg_len, "listening for peers on %.80s: %s", addr,
                 strerror(errno));
        return GR_EIO;
    }
    evconnlistener_set_error_cb(net->listener, on_accept_error);
    return 0;
}

/* ---------------------------------------------------------------------
 * The API.
 */

void peer_net_config_default(struct peer_net_config *c, uint64_t self_id,
                             const char *cluster)
{
    memset(c, 0, sizeof(*c));
    c->self_id = self_id;
    c->cluster = cluster;
    c->max_frame_bytes = 64u << 20;
    c->max_queue_bytes = 64u << 20;
    c->backoff_min_ms = 20;
    c->backoff_max_ms = 1000;
    c->handshake_timeout_ms = 3000;
    c->dead_after_ms = 10000;
    c->seed = self_id;
}

static int check_config(const struct peer_net_config *c, char *errmsg,
                        size_t errmsg_len)
{
    const char *bad = NULL;

    if (c->self_id == 0) {
        bad = "self_id is 0";
    } else if (c->cluster == NULL || c->cluster[0] == '\0' ||
               strnlen(c->cluster, PEER_CLUSTER_NAME_MAX + 1) >
                   PEER_CLUSTER_NAME_MAX) {
        bad = "the cluster name must have 1 to 64 bytes";
    } else if (c->on_frame == NULL) {
        bad = "no on_frame callback";
    } else if (c->max_frame_bytes == 0 || c->max_frame_bytes > UINT32_MAX) {
        bad = "max_frame_bytes is not in 1 .. 4 GiB-1";
    } else if (c->max_queue_bytes == 0) {
        bad = "max_queue_bytes is 0";
    } else if (c->backoff_min_ms == 0 ||
               c->backoff_max_ms < c->backoff_min_ms) {
        bad = "backoff_min_ms is 0 or over backoff_max_ms";
    } else if (c->handshake_timeout_ms == 0) {
        bad = "handshake_timeout_ms is 0";
    }
    if (bad != NULL) {
        snprintf(errmsg, errmsg_len, "peer transport: %s", bad);
        return GR_EINVAL;
    }
    return 0;
}

int peer_net_new(struct event_base *base, const struct peer_net_config *c,
                 struct peer_net **out, char *errmsg, size_t errmsg_len)
{
    struct peer_net *net;
    size_t i;
    int rv;

    rv = check_config(c, errmsg, errmsg_len);
    if (rv != 0) {
        goto err;
    }
    net = gr_calloc(1, sizeof(*net));
    if (net == NULL) {
        rv = GR_ENOMEM;
        goto err;
    }
    net->base = base;
    net->cfg = *c;
    net->cfg.listen = NULL;
    net->cfg.peers = NULL;
    net->cfg.n_peers = 0;
    net->rng = c->seed;
    snprintf(net->cluster, sizeof(net->cluster), "%s", c->cluster);
    net->cfg.cluster = net->cluster;
    net->reap_ev = event_new(base, -1, 0, on_reap, net);
    if (net->reap_ev == NULL) {
        rv = GR_ENOMEM;
        goto err_free_net;
    }
    if (c->listen != NULL) {
        rv = open_listener(net, c->listen, errmsg, errmsg_len);
        if (rv != 0) {
            goto err_free_net;
        }
    }
    for (i = 0; i < c->n_peers; i++) {
        rv =
            peer_add(net, c->peers[i].id, c->peers[i].addr, errmsg, errmsg_len);
        if (rv != 0) {
            goto err_free_net;
        }
    }
    *out = net;
    return 0;

err_free_net:
    peer_net_free(net);
err:
    if (rv == GR_ENOMEM) {
        snprintf(errmsg, errmsg_len, "peer transport: out of memory");
    }
    GR_ASSERT(rv == GR_EINVAL || rv == GR_EIO || rv == GR_ENOMEM);
    return rv;
}

void peer_net_free(struct peer_net *net)
{
    if (net == NULL) {
        return;
    }
    GR_ASSERT(net->in_callback == 0);
    free_links(&net->links);
    free_links(&net->dead);
    free_peers(&net->peers);
    free_peers(&net->dead_peers);
    free_event(net->reap_ev);
    if (net->listener != NULL) {
        evconnlistener_free(net->listener);
    }
    gr_free(net);
}

uint16_t peer_net_port(const struct peer_net *net)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof(sa);

    if (net->listener == NULL ||
        getsockname(evconnlistener_get_fd(net->listener),
                    (struct sockaddr *)&sa, &len) == -1) {
        return 0;
    }
    if (sa.ss_family == AF_INET) {
        return ntohs(((struct sockaddr_in *)&sa)->sin_port);
    }
    if (sa.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
    }
    return 0;
}

int peer_add(struct peer_net *net, uint64_t id, const char *addr, char *errmsg,
             size_t errmsg_len)
{
    struct peer *p;
    struct peer **tail;
    struct timeval at_once = {0, 0};
    int rv;

    if (id == 0 || id == net->cfg.self_id || find_peer(net, id) != NULL) {
        snprintf(errmsg, errmsg_len, "peer id %llu is %s",
                 (unsigned long long)id,
                 id == 0                  ? "0"
                 : id == net->cfg.self_id ? "this node's own"
                                          : "a peer already");
        rv = GR_EINVAL;
        goto err;
    }
    p = gr_calloc(1, sizeof(*p));
    if (p == NULL) {
        rv = GR_ENOMEM;
        goto err;
    }
    /* A name that does not resolve yet is looked up again at each dial. */
    rv = resolve(addr, false, &p->sa, &p->sa_len, errmsg, errmsg_len);
    if (rv == GR_EAGAIN) {
        p->sa_len = 0;
    } else if (rv != 0) {
        goto err_free_peer;
    }
    p->literal = is_literal(addr);
    p->dial_ev = evtimer_new(net->base, on_dial, p);
    if (p->dial_ev == NULL) {
        rv = GR_ENOMEM;
        goto err_free_peer;
    }
    p->net = net;
    p->id = id;
    p->st.id = id;
    p->backoff_ms = net->cfg.backoff_min_ms;
    snprintf(p->addr, sizeof(p->addr), "%s", addr);
    for (tail = &net->peers; *tail != NULL; tail = &(*tail)->next) {
    }
    *tail = p;
    evtimer_add(p->dial_ev, &at_once);
    return 0;

err_free_peer:
    free_peer(p);
err:
    if (rv == GR_ENOMEM) {
        snprintf(errmsg, errmsg_len, "adding peer %llu: out of memory",
                 (unsigned long long)id);
    }
    GR_ASSERT(rv == GR_EINVAL || rv == GR_ENOMEM);
    return rv;
}

int peer_remove(struct peer_net *net, uint64_t id)
{
    struct peer **pp;
    struct peer *p;

    for (pp = &net->peers; *pp != NULL && (*pp)->id != id; pp = &(*pp)->next) {
    }
    p = *pp;
    if (p == NULL) {
        return GR_EINVAL;
    }
    *pp = p->next;
    p->removed = true;
    GR_LOG(GR_LOG_INFO, "peer",
           "node=%llu removed peer %llu: closing its links",
           (unsigned long long)net->cfg.self_id, (unsigned long long)id);
    event_del(p->dial_ev);
    if (p->out != NULL) {
        link_close(p->out, "the node was removed from the cluster", false);
    }
    if (p->in != NULL) {
        link_close(p->in, "the node was removed from the cluster", false);
    }
    p->next = net->dead_peers;
    net->dead_peers = p;
    schedule_reap(net);
    return 0;
}

/* Finds the link a frame of len payload bytes to peer id goes on, or says
 * why it does not go. */
static int admit(struct peer_net *net, uint64_t id, size_t len,
                 struct peer_link **out)
{
    struct peer *p = find_peer(net, id);

    if (p == NULL) {
        return GR_EINVAL;
    }
    if (len > net->cfg.max_frame_bytes) {
        return GR_ETOOBIG;
    }
    if (p->out == NULL || p->out->state != PEER_LINK_UP ||
        evbuffer_get_length(p->out->out) >= net->cfg.max_queue_bytes) {
        p->st.frames_dropped++;
        return GR_EDROPPED;
    }
    *out = p->out;
    return 0;
}

/* A frame of len payload bytes went into l's queue. */
static void queued(struct peer_link *l, size_t len)
{
    l->peer->st.frames_sent++;
    l->peer->st.bytes_sent += len;
    flush(l, false);
}

int peer_send(struct peer_net *net, uint64_t id, const void *payload,
              size_t len)
{
    struct peer_link *l;
    uint8_t hdr[PEER_FRAME_HEADER_LEN];
    int rv;

    rv = admit(net, id, len, &l);
    if (rv != 0) {
        return rv;
    }
    peer_frame_header_encode(hdr, (uint32_t)len, store_crc32c(0, payload, len));
    /* Room first, so that a frame is queued whole or not at all. */
    if (evbuffer_expand(l->out, sizeof(hdr) + len) != 0 ||
        evbuffer_add(l->out, hdr, sizeof(hdr)) != 0) {
        return GR_ENOMEM;
    }
    if (len > 0 && evbuffer_add(l->out, payload, len) != 0) {
        /* Cannot happen after evbuffer_expand; if it does, the stream
         * holds half a frame and only a new link can fix it. */
        link_close(l, "out of memory in the middle of a frame", false);
        return GR_ENOMEM;
    }
    queued(l, len);
    return 0;
}

/* CRC32C of all the bytes in b, chunk by chunk. */
static int evbuffer_crc(struct evbuffer *b, uint32_t *out)
{
    int n = evbuffer_peek(b, -1, NULL, NULL, 0);
    struct evbuffer_iovec *v;
    uint32_t crc = 0;
    int i;

    if (n <= 0) {
        *out = 0;
        return 0;
    }
    v = gr_calloc((size_t)n, sizeof(*v));
    if (v == NULL) {
        return GR_ENOMEM;
    }
    n = evbuffer_peek(b, -1, NULL, v, n);
    for (i = 0; i < n; i++) {
        crc = store_crc32c(crc, v[i].iov_base, v[i].iov_len);
    }
    gr_free(v);
    *out = crc;
    return 0;
}

int peer_send_evbuffer(struct peer_net *net, uint64_t id,
                       struct evbuffer *payload)
{
    size_t len = evbuffer_get_length(payload);
    struct peer_link *l;
    uint8_t hdr[PEER_FRAME_HEADER_LEN];
    uint32_t crc;
    int rv;

    rv = admit(net, id, len, &l);
    if (rv != 0) {
        return rv;
    }
    rv = evbuffer_crc(payload, &crc);
    if (rv != 0) {
        return rv;
    }
    peer_frame_header_encode(hdr, (uint32_t)len, crc);
    if (evbuffer_add(l->out, hdr, sizeof(hdr)) != 0) {
        return GR_ENOMEM;
    }
    if (evbuffer_add_buffer(l->out, payload) != 0) {
        /* Moving chains allocates nothing; see peer_send. */
        link_close(l, "could not queue a frame's payload", false);
        return GR_ENOMEM;
    }
    queued(l, len);
    return 0;
}

static void fill_stats(const struct peer *p, struct peer_stats *out)
{
    *out = p->st;
    out->out_up = p->out != NULL && p->out->state == PEER_LINK_UP;
    out->in_up = p->in != NULL && p->in->state == PEER_LINK_UP;
    out->queued_bytes = p->out != NULL ? evbuffer_get_length(p->out->out) : 0;
}

int peer_stats(const struct peer_net *net, uint64_t id, struct peer_stats *out)
{
    const struct peer *p = find_peer(net, id);

    if (p == NULL) {
        return GR_EINVAL;
    }
    fill_stats(p, out);
    return 0;
}

int peer_stats_walk(const struct peer_net *net, peer_stats_fn fn, void *arg)
{
    const struct peer *p;
    struct peer_stats st;
    int rv;

    for (p = net->peers; p != NULL; p = p->next) {
        fill_stats(p, &st);
        rv = fn(arg, &st);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

void peer_net_stats(const struct peer_net *net, struct peer_net_stats *out)
{
    *out = net->st;
}
