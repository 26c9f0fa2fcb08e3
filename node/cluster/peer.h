/* SPDX-License-Identifier: BSD-3-Clause
 * node/cluster/peer.h - the peer transport: every link between this node
 * and the other nodes of its cluster, on the node's event loop.
 *
 * Why it is shaped this way: for each peer, this node DIALS one TCP
 * connection and only ever sends on it; what the peer sends arrives on the
 * connection the peer dialed to us. Each direction therefore has exactly
 * one owner, and two nodes dialing each other at once never race over
 * which connection survives. A link opens with a hello in each direction
 * (peer_wire.h): the dialer names itself, the node it means to reach and
 * its cluster; the acceptor checks all three and answers in kind, and the
 * dialer checks that answer. Only then do frames flow, and a node with a
 * wrong address for a peer is refused instead of disturbing the link of
 * the node it reached by mistake.
 *
 * Delivery is best effort, which is what Raft asks of its network (raft.h:
 * "a message may be dropped, duplicated or reordered"): frames to a peer
 * whose link is down, or whose send queue is over its limit, are dropped
 * and counted, never queued without bound. Within one link frames arrive
 * in order, each exactly once. A frame that fails its checks closes its
 * link, one log line says why, the dialer redials with backoff, and every
 * other link goes on.
 *
 * Not here: what the payloads mean (node/peer_codec.c encodes raft
 * messages), which peers exist (the membership code calls peer_add and
 * peer_remove), the frame and hello bytes (peer_wire.h).
 */
#ifndef GEARRAFT_NODE_CLUSTER_PEER_H
#define GEARRAFT_NODE_CLUSTER_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/cluster/peer_wire.h"
#include "node/gr.h"

struct event_base;
struct evbuffer;
struct peer_net;

/* Longest "host:port" accepted for a peer or the listen address. */
#define PEER_ADDR_MAX 256

/* Called for every good frame received from peer from_id, in the order
 * that peer sent them. payload is borrowed for the call (do not keep the
 * pointer; copy what must outlive it). The callback may call peer_send,
 * peer_add and peer_remove (even of from_id: no frame of a removed peer is
 * delivered after the call that removed it), never peer_net_free. */
typedef void (*peer_frame_fn)(void *arg, uint64_t from_id,
                              const uint8_t *payload, size_t len);

/* Called when the link this node sends to peer_id comes up (the hellos
 * were exchanged: peer_send will queue) or goes down (peer_send drops).
 * The link the peer sends on is not reported here (see peer_stats). The
 * same calls are allowed as in peer_frame_fn. */
typedef void (*peer_link_fn)(void *arg, uint64_t peer_id, bool up);

/* Milliseconds from any origin that never goes backwards. */
typedef uint64_t (*peer_clock_fn)(void *arg);

/* A member of the cluster: its node id and where it listens. */
struct peer_addr {
    uint64_t id;
    const char *addr; /* "host:port", "[v6]:port"; borrowed for the call */
};

struct peer_net_config {
    uint64_t self_id; /* this node, != 0 */
    /* The cluster's name, 1 .. PEER_CLUSTER_NAME_MAX bytes; both sides of
     * a link must have the same one. Borrowed for peer_net_new (copied). */
    const char *cluster;
    /* "host:port" to accept peers' links on (port 0: any, see
     * peer_net_port), or NULL for a node that only dials (tests). */
    const char *listen;
    const struct peer_addr *peers; /* the initial peers, n_peers of them */
    size_t n_peers;
    size_t max_frame_bytes;  /* largest payload sent or accepted, <= 4 GiB-1 */
    size_t max_queue_bytes;  /* a peer's send queue: past this, drop */
    uint64_t backoff_min_ms; /* first redial delay, > 0 */
    uint64_t backoff_max_ms; /* the delay doubles up to this */
    /* A link that has not finished its hellos after this long is closed
     * (a peer that accepts but never answers, a connect into a black
     * hole). */
    uint64_t handshake_timeout_ms;
    /* TCP_USER_TIMEOUT of the dialed links: a peer that acknowledges none
     * of our bytes for this long is down (a powered-off host sends no
     * reset). 0 leaves the kernel default of many minutes. */
    uint64_t dead_after_ms;
    uint64_t seed; /* backoff jitter; runs with one seed jitter alike */
    peer_frame_fn on_frame; /* required */
    peer_link_fn on_link;   /* may be NULL */
    void *cb_arg;
    peer_clock_fn clock; /* NULL: CLOCK_MONOTONIC */
    void *clock_arg;
};

/* Fills *c with defaults for node self_id of cluster `cluster` (the
 * pointer is stored, not copied): no listen address and no peers, 64 MiB
 * frames, 64 MiB send queues, backoff 20 ms .. 1 s, a 3 s handshake, dead
 * after 10 s, seed = self_id, no callbacks, CLOCK_MONOTONIC. Cannot fail. */
void peer_net_config_default(struct peer_net_config *c, uint64_t self_id,
                             const char *cluster);

/* Creates the transport of one node on base, which must outlive it:
 * listens on c->listen (if any) and starts dialing every peer of c->peers
 * from the next loop turn on. c and what it points to are borrowed for the
 * call. On success stores the transport in *out (caller frees with
 * peer_net_free) and returns 0. Errors, with errmsg (errmsg_len bytes)
 * saying what and why; nothing is left behind:
 *   GR_EINVAL  a bad configuration: self_id 0, no on_frame, a cluster name
 *              empty or too long, a limit 0 or out of range, a bad or
 *              unresolvable address, a peer id that is 0, this node's or
 *              given twice; fix the configuration;
 *   GR_EIO     the listen address could not be bound (in use, not ours);
 *   GR_ENOMEM. */
int peer_net_new(struct event_base *base, const struct peer_net_config *c,
                 struct peer_net **out, char *errmsg, size_t errmsg_len);

/* Closes every link and socket, cancels every timer and frees net. Queued
 * frames are discarded; no callback is called. NULL is a no-op. Not from
 * inside a peer_frame_fn or peer_link_fn (asserted). */
void peer_net_free(struct peer_net *net);

/* The port the transport listens on (useful with port 0), or 0 if it does
 * not listen. */
uint16_t peer_net_port(const struct peer_net *net);

/* Adds peer id, listening at addr ("host:port"), and starts dialing it in
 * the next loop turn. An IP address is taken once; a host name is looked
 * up again before every dial, so a name that does not resolve yet (a
 * container not started) is retried with the dial backoff, and a peer
 * whose name moves to another address is found there. getaddrinfo blocks
 * the loop while the name server answers: pass IP addresses where the
 * name server may be slow. Returns 0, or GR_EINVAL (id 0, this node's,
 * already a peer, or an address not of the form host:port; errmsg says
 * which) or GR_ENOMEM. */
int peer_add(struct peer_net *net, uint64_t id, const char *addr, char *errmsg,
             size_t errmsg_len);

/* Removes peer id: closes both its links, discards its queue and refuses
 * its links from now on. No callback is called. Returns 0, or GR_EINVAL
 * if id is not a peer. */
int peer_remove(struct peer_net *net, uint64_t id);

/* Queues a frame with a copy of len bytes at payload (borrowed for the
 * call; NULL if len is 0) for peer id, and writes what the socket takes at
 * once. Returns 0 when queued (it is then sent in order, unless the link closes
 * first), or: GR_EDROPPED  the link to id is not up, or its queue already holds
 *                max_queue_bytes or more; counted in frames_dropped.
 *                Nothing to do for Raft, which resends; other senders
 *                may retry after on_link reports the link up;
 *   GR_ETOOBIG   len is over max_frame_bytes: the peer would close the
 *                link for it. A caller bug (its own size limits must be
 *                smaller); nothing was queued;
 *   GR_EINVAL    id is not a peer;
 *   GR_ENOMEM. */
int peer_send(struct peer_net *net, uint64_t id, const void *payload,
              size_t len);

/* The same as peer_send, but the payload is all the bytes in `payload`,
 * which are moved, not copied: on success `payload` is left empty (the
 * evbuffer itself stays the caller's). Build it with
 * evbuffer_add_reference to send large log entries without a copy; their
 * cleanup functions run once the bytes are written or discarded. On any
 * error `payload` is left as it was. Same errors as peer_send. */
int peer_send_evbuffer(struct peer_net *net, uint64_t id,
                       struct evbuffer *payload);

/* What happened on the links of one peer, for the admin `cluster` command
 * and metrics. Counters only grow. */
struct peer_stats {
    uint64_t id;
    bool out_up;              /* our link to it passed its hellos */
    bool in_up;               /* its link to us passed its hellos */
    uint64_t last_recv_ms;    /* clock time of its last good frame; 0 none */
    uint64_t last_part_ms;    /* ... of bytes of a large frame still
                               * arriving (its sender is alive though no
                               * frame is whole yet); 0 none */
    uint64_t dials;           /* connects started to it */
    uint64_t connects;        /* of which completed their hellos */
    uint64_t frames_sent;     /* frames queued by peer_send */
    uint64_t bytes_sent;      /* their payload bytes */
    uint64_t frames_recv;     /* good frames delivered to on_frame */
    uint64_t bytes_recv;      /* their payload bytes */
    uint64_t frames_dropped;  /* refused by peer_send: down or queue full */
    uint64_t bytes_discarded; /* queued bytes thrown away at a link close */
    uint64_t bad_frames;      /* its links closed for a bad frame */
    size_t queued_bytes;      /* in our send queue now, headers included */
};

/* Copies the figures of peer id into *out. Returns 0, or GR_EINVAL if id
 * is not a peer (*out untouched). */
int peer_stats(const struct peer_net *net, uint64_t id, struct peer_stats *out);

/* Calls fn for every peer in the order they were added; the stats are
 * borrowed for the call, and fn must not add or remove peers. A non-zero
 * return from fn stops the walk and is returned. */
typedef int (*peer_stats_fn)(void *arg, const struct peer_stats *st);
int peer_stats_walk(const struct peer_net *net, peer_stats_fn fn, void *arg);

/* Links no peer can be blamed for: accepted, then closed before a valid
 * hello named a known node of this cluster. */
struct peer_net_stats {
    uint64_t accepted; /* links accepted on the listen address */
    uint64_t refused;  /* of which closed at or before the hello */
};

/* Copies the transport's own figures into *out. Cannot fail. */
void peer_net_stats(const struct peer_net *net, struct peer_net_stats *out);

#endif /* GEARRAFT_NODE_CLUSTER_PEER_H */
