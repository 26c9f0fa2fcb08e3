/* SPDX-License-Identifier: BSD-3-Clause
 * node/gearman/request.h - what a binary request does.
 *
 * Not here: when it may run (session.h), admin lines (admin.h).
 */
#ifndef GEARRAFT_GEARMAN_REQUEST_H
#define GEARRAFT_GEARMAN_REQUEST_H

#include "node/gearman/codec.h"
#include "node/gearman/conn.h"

/* Handles one binary packet of session s: proposes what changes queue
 * state, answers the rest, refuses what is malformed or not a request
 * (ERROR, and for missing arguments a close). May take the packet's
 * body; the caller closes the packet. */
void gm_request_handle(struct gm_session *s, struct gm_packet *pkt);

#endif /* GEARRAFT_GEARMAN_REQUEST_H */
