/* SPDX-License-Identifier: BSD-3-Clause
 * node/cluster/members.h - who the members of a cluster are: their names,
 * their Raft ids and the addresses their peers dial.
 *
 * A member is named by the operator (--node-id NAME) and known to raft/
 * by a 64-bit id; the id is a fixed function of the name, so every node
 * derives the same ids from the same --initial-cluster list without
 * asking anyone, and a name cannot change its id between runs. The id is
 * the 64-bit FNV-1a hash of the name's bytes (store_fnv1a64), or, for the
 * name whose hash would be 0 (raft/'s "none"), the hash of the empty name
 * instead, which no member has. Two names of one id are refused.
 *
 * Pure code (libc only, no libevent, no I/O): the flags are parsed with
 * it, so tests/meta/layers.sh ranks this file with node/'s base, below
 * config.c, although it lives with the cluster it describes.
 *
 * Not here: where the member table is kept (storage/members.c), the flags
 * themselves (config.c), dialling the addresses (peer.c).
 */
#ifndef GEARRAFT_CLUSTER_MEMBERS_H
#define GEARRAFT_CLUSTER_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/gr.h"
#include "storage/store.h"

/* The longest "HOST:PORT" text, NUL excluded: what the peer transport
 * takes (PEER_ADDR_MAX in peer.h counts the NUL). */
#define GR_PEER_ADDR_MAX 255

/* The Raft id of the member named `name` (NUL-terminated); never 0. */
uint64_t gr_member_id(const char *name);

/* True if s is a valid member or cluster name: 1 to STORE_NODE_NAME_MAX
 * bytes of A-Z, a-z, 0-9, '.', '_' and '-'. */
bool gr_name_is_valid(const char *s);

/* Parses "HOST:PORT", at most GR_PEER_ADDR_MAX bytes: HOST an IPv4
 * address, an IPv6 address in brackets or a host name (labels of A-Z,
 * a-z, 0-9, '_' and '-' joined by dots), PORT 1-65535. On success writes
 * the host without brackets into host (room for STORE_HOST_MAX + 1
 * bytes) and the port.
 * Errors: GR_EINVAL, with *why set to a static text saying what is
 * wrong. */
int gr_peer_addr_parse(const char *s, char *host, uint16_t *port,
                       const char **why);

/* Writes "host:port" ("[host]:port" for an IPv6 host) and a NUL to out;
 * returns the length it needs, as snprintf does (at most
 * GR_PEER_ADDR_MAX for what gr_peer_addr_parse gave). */
size_t gr_peer_addr_format(const char *host, uint16_t port, char *out,
                           size_t out_len);

/* Parses an --initial-cluster list, "NAME=HOST:PORT,...", into v (room
 * for STORE_MEMBERS_MAX members), each with its id, in the order given;
 * *n is their number. 1 to STORE_MEMBERS_MAX members; names valid
 * (gr_name_is_valid) and distinct, and so are their ids
 * (gr_members_check). Errors: GR_EINVAL, errmsg saying which member and
 * why; v and *n are then unspecified. */
int gr_members_parse(const char *list, struct store_member *v, size_t *n,
                     char *errmsg, size_t errmsg_len);

/* Checks that no two of the n members of v share a name or an id.
 * Errors: GR_EINVAL, errmsg naming the two. */
int gr_members_check(const struct store_member *v, size_t n, char *errmsg,
                     size_t errmsg_len);

/* Writes the list back as gr_members_parse reads it, and a NUL, to out;
 * returns the length it needs, as snprintf does. */
size_t gr_members_format(const struct store_member *v, size_t n, char *out,
                         size_t out_len);

/* The member of v with this id, or NULL; borrowed from v. */
const struct store_member *gr_members_find(const struct store_member *v,
                                           size_t n, uint64_t id);

#endif /* GEARRAFT_CLUSTER_MEMBERS_H */
