/* SPDX-License-Identifier: BSD-3-Clause
 * node/cluster/peer_wire.h - the bytes on a peer link: the frame header
 * and the hello that opens every link.
 *
 * Why it is shaped this way: a link is a byte stream, so each message goes
 * in a frame that says its length (to find the next one) and carries a
 * CRC32C of its payload (TCP's 16-bit checksum lets corrupted segments
 * through at scale; a flipped bit in a log entry would be applied on every
 * node). The payload is opaque here: the host puts an encoded raft message
 * (node/peer_codec.c) or any other peer message in it. The hello is the
 * first frame in each direction of a link and names the node and the
 * cluster, so that two clusters, or a process that is not a gearraft peer,
 * never exchange a message.
 *
 * These are pure functions on buffers: no sockets, no allocation. That is
 * what lets tests pin the format byte by byte.
 *
 * Not here: links, queues, reconnects (peer.c).
 *
 * FRAME (every message, the hello included), all integers big-endian:
 *     u32 len   payload bytes, at most the receiver's frame limit
 *     u32 crc   CRC32C (Castagnoli) of the payload alone
 *     u8  payload[len]
 *
 * HELLO (the payload of the first frame each side sends):
 *     u32 magic    PEER_HELLO_MAGIC
 *     u16 version  PEER_WIRE_LINK_VERSION
 *     u16 name_len 1 .. PEER_CLUSTER_NAME_MAX
 *     u64 node_id  the sender's node id, never 0
 *     u64 to_id    the node the sender means to talk to, never 0
 *     u8  cluster[name_len]  the cluster name, no NUL
 *
 * The dialer's hello carries the id it dialed, so that a node whose
 * address list is wrong is refused by the node it reached instead of
 * replacing the good link of the node that node took it for; the
 * acceptor's answer carries the dialer's id back.
 *
 * Checklist when changing the frame or the hello:
 * - Any change to the frame header, to the hello layout, or to what a
 *   link carries after the hello: bump PEER_WIRE_LINK_VERSION. Nodes of
 *   different versions refuse each other at the hello and say so in the
 *   log, so a rolling upgrade must first teach the new version to accept
 *   the old one (decode both and answer in the lower) before any node
 *   sends the new one.
 * - Never change PEER_HELLO_MAGIC: it is how a node tells a gearraft peer
 *   from anything else that connects to its peer port.
 * - Keep the header at 8 bytes and the length first: the receiver checks
 *   the length against its limit before it reads or allocates anything.
 * - The payload's own format has its own version and checklist
 *   (proto/raft.proto, PEER_WIRE_VERSION in node/peer_codec.h); changing
 *   it does not touch this one.
 * - Update docs/peer-transport.md and tests/unit/node/test_peer.c, which
 *   builds frames and hellos by hand to pin these bytes.
 */
#ifndef GEARRAFT_NODE_CLUSTER_PEER_WIRE_H
#define GEARRAFT_NODE_CLUSTER_PEER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "node/gr.h"

#define PEER_FRAME_HEADER_LEN  8
#define PEER_HELLO_MAGIC       0x47524654u /* "GRFT" */
#define PEER_WIRE_LINK_VERSION 1
#define PEER_CLUSTER_NAME_MAX  64
#define PEER_HELLO_FIXED_LEN   24 /* the hello before the cluster name */
/* The largest hello; a link's first frame may not be longer, so a stranger
 * cannot make a node allocate before it said who it is. */
#define PEER_HELLO_MAX_LEN (PEER_HELLO_FIXED_LEN + PEER_CLUSTER_NAME_MAX)

/* A decoded hello. cluster is NUL-terminated. */
struct peer_hello {
    uint16_t version;
    uint64_t node_id;
    uint64_t to_id;
    char cluster[PEER_CLUSTER_NAME_MAX + 1];
};

/* Writes the header of a frame with a payload of len bytes whose CRC32C is
 * crc into hdr. Cannot fail. */
void peer_frame_header_encode(uint8_t hdr[PEER_FRAME_HEADER_LEN], uint32_t len,
                              uint32_t crc);

/* Reads a frame header from hdr into *len and *crc. Any 8 bytes are a
 * header: the caller checks *len against its limit. Cannot fail. */
void peer_frame_header_decode(const uint8_t hdr[PEER_FRAME_HEADER_LEN],
                              uint32_t *len, uint32_t *crc);

/* Encodes the hello of node node_id to node to_id in cluster `cluster` (a
 * NUL-terminated string, borrowed for the call) into out and stores its
 * length in *out_len. Returns 0, or GR_EINVAL when an id is 0 or the name
 * is empty or longer than PEER_CLUSTER_NAME_MAX (a configuration error:
 * say so and do not start). *out_len is written only on success. */
int peer_hello_encode(uint64_t node_id, uint64_t to_id, const char *cluster,
                      uint8_t out[PEER_HELLO_MAX_LEN], size_t *out_len);

/* Decodes the hello payload of len bytes at buf (untrusted input) into
 * *out. Returns 0, or GR_EPROTO when it is not a hello this node speaks:
 * too short or too long for its name, another magic, another version, a
 * name of 0 or more than PEER_CLUSTER_NAME_MAX bytes or with a NUL in it,
 * a node id 0. Then errmsg (errmsg_len bytes, always terminated) says which,
 * for the log line of the link that is closed for it. Checking the cluster
 * name and the ids against the node's own is the caller's business. *out is
 * written only on success. */
int peer_hello_decode(const uint8_t *buf, size_t len, struct peer_hello *out,
                      char *errmsg, size_t errmsg_len);

#endif /* GEARRAFT_NODE_CLUSTER_PEER_WIRE_H */
