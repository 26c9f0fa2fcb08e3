/* SPDX-License-Identifier: BSD-3-Clause
 * node/cluster/peer_codec.h - struct raft_msg <-> bytes on the peer connections.
 *
 * The wire format is proto/raft.proto (protobuf-c).  peer_codec.c and
 * storage/codec.c are the only users of the generated types; this header
 * speaks raft/raft.h structs only, so the rest of node/ never sees them.
 * Framing (length prefixes) belongs to the peer transport, not here.
 *
 * Not here: sockets, framing, retries (node/peer.c).
 */
#ifndef GEARRAFT_PEER_CODEC_H
#define GEARRAFT_PEER_CODEC_H

#include <stddef.h>

#include "node/gr.h"
#include "raft/raft.h"

/* Version carried in every message; see the checklist in raft.proto. */
#define PEER_WIRE_VERSION 1

/* Encodes msg (as handed out by raft_ready, or built by a test) into
 * out->base (allocated with gr_malloc; caller frees with gr_free) and
 * out->len.  msg is borrowed for the call.  Returns 0, or
 *   GR_EINVAL  msg is not encodable: unknown message or entry type, more
 *              than RAFT_MAX_MEMBERS members, NULL data with a length;
 *   GR_ENOMEM.
 * out is written only on success. */
int peer_msg_encode(const struct raft_msg *msg, struct raft_buf *out);

/* Decodes len bytes from buf into *out.  Input is untrusted: anything
 * that is not a well-formed message of this version is an error, never a
 * crash.  On success *out owns copies of the entries and chunk data; the
 * caller releases them with peer_msg_free(out) after raft_step.  Returns
 * 0, or
 *   GR_EPROTO  not a valid message: unparsable protobuf, other version,
 *              unknown message or entry type, body missing or not matching
 *              the type, a snapshot without meta, too many members;
 *              close the peer connection;
 *   GR_ENOMEM.
 * Semantic checks (entries contiguous, terms, chunk bounds) are
 * raft_step's: it returns RAFT_EMALFORMED for those.  *out is written only
 * on success. */
int peer_msg_decode(const void *buf, size_t len, struct raft_msg *out);

/* Frees what peer_msg_decode allocated in msg and clears those pointers.
 * NULL and messages without allocations are fine. */
void peer_msg_free(struct raft_msg *msg);

#endif /* GEARRAFT_PEER_CODEC_H */
