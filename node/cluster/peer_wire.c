/* SPDX-License-Identifier: BSD-3-Clause
 * node/cluster/peer_wire.c - frame headers and hellos to and from bytes.
 *
 * Big-endian by hand, byte by byte, so that the code reads the same on any
 * host and needs no alignment. The format and its checklist are in
 * peer_wire.h.
 *
 * Not here: reading or writing sockets (peer.c).
 */
#include "node/cluster/peer_wire.h"

#include <string.h>

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    put_u16(p, (uint16_t)(v >> 16));
    put_u16(p + 2, (uint16_t)v);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p + 4, (uint32_t)v);
}

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)get_u16(p) << 16 | get_u16(p + 2);
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

void peer_frame_header_encode(uint8_t hdr[PEER_FRAME_HEADER_LEN], uint32_t len,
                              uint32_t crc)
{
    put_u32(hdr, len);
    put_u32(hdr + 4, crc);
}

void peer_frame_header_decode(const uint8_t hdr[PEER_FRAME_HEADER_LEN],
                              uint32_t *len, uint32_t *crc)
{
    *len = get_u32(hdr);
    *crc = get_u32(hdr + 4);
}

int peer_hello_encode(uint64_t node_id, uint64_t to_id, const char *cluster,
                      uint8_t out[PEER_HELLO_MAX_LEN], size_t *out_len)
{
    size_t n = strnlen(cluster, PEER_CLUSTER_NAME_MAX + 1);

    if (node_id == 0 || to_id == 0 || n == 0 || n > PEER_CLUSTER_NAME_MAX) {
        return GR_EINVAL;
    }
    put_u32(out, PEER_HELLO_MAGIC);
    put_u16(out + 4, PEER_WIRE_LINK_VERSION);
    put_u16(out + 6, (uint16_t)n);
    put_u64(out + 8, node_id);
    put_u64(out + 16, to_id);
    memcpy(out + PEER_HELLO_FIXED_LEN, cluster, n);
    *out_len = PEER_HELLO_FIXED_LEN + n;
    return 0;
}

int peer_hello_decode(const uint8_t *buf, size_t len, struct peer_hello *out,
                      char *errmsg, size_t errmsg_len)
{
    uint32_t magic;
    uint16_t version;
    size_t name_len;
    uint64_t id;
    uint64_t to;

    if (len < 8) {
        snprintf(errmsg, errmsg_len, "hello of %zu bytes is too short", len);
        return GR_EPROTO;
    }
    magic = get_u32(buf);
    version = get_u16(buf + 4);
    if (magic != PEER_HELLO_MAGIC) {
        snprintf(errmsg, errmsg_len, "not a gearraft peer (magic 0x%08x)",
                 (unsigned)magic);
        return GR_EPROTO;
    }
    if (version != PEER_WIRE_LINK_VERSION) {
        snprintf(errmsg, errmsg_len,
                 "speaks link version %u, this node speaks %u",
                 (unsigned)version, (unsigned)PEER_WIRE_LINK_VERSION);
        return GR_EPROTO;
    }
    name_len = get_u16(buf + 6);
    if (name_len == 0 || name_len > PEER_CLUSTER_NAME_MAX ||
        len != PEER_HELLO_FIXED_LEN + name_len) {
        snprintf(errmsg, errmsg_len,
                 "hello of %zu bytes with a cluster name of %zu", len,
                 name_len);
        return GR_EPROTO;
    }
    if (memchr(buf + PEER_HELLO_FIXED_LEN, '\0', name_len) != NULL) {
        snprintf(errmsg, errmsg_len, "cluster name contains a NUL byte");
        return GR_EPROTO;
    }
    id = get_u64(buf + 8);
    to = get_u64(buf + 16);
    if (id == 0 || to == 0) {
        snprintf(errmsg, errmsg_len, "hello %s node id 0",
                 id == 0 ? "from" : "to");
        return GR_EPROTO;
    }
    out->version = version;
    out->node_id = id;
    out->to_id = to;
    memcpy(out->cluster, buf + PEER_HELLO_FIXED_LEN, name_len);
    out->cluster[name_len] = '\0';
    return 0;
}
