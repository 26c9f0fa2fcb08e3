/* SPDX-License-Identifier: BSD-3-Clause
 * node/gearman/session.h - one Gearman connection's state machine,
 * stepped by gm_session_drive() (memcached's drive_machine): reading,
 * taking frames off the stream, and deciding when each may be handled.
 *
 * Replies leave in request order: a request that would be answered at
 * once waits (GM_SS_WAIT_COMMIT) while the connection still has
 * proposals in flight, so JOB_CREATED stays paired with its submission
 * as libgearman expects (docs/protocol.md, "Order of replies"). A
 * request that reads queue state also waits while any batch is being
 * written.
 *
 * Not here: the connection's output and close (conn.h), what a request
 * does (request.h, admin.h), framing (codec.h).
 */
#ifndef GEARRAFT_GEARMAN_SESSION_H
#define GEARRAFT_GEARMAN_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "node/gearman/conn.h"

struct gr_proposal;

/* Creates a session for an accepted socket (takes ownership of fd: it is
 * closed on failure too) and registers it with the hub. Errors:
 * GR_ENOMEM. */
int gm_session_new(struct gm_hub *hub, int fd, const char *ip,
                   struct gm_session **out);

/* Steps the state machine until it must wait (for bytes, for a commit, for
 * the socket to drain). May propose, queue output and close. */
void gm_session_drive(struct gm_session *s);

/* One of this session's proposals has been dispatched (committed or
 * failed): resumes a waiting session. */
void gm_session_proposal_done(struct gm_session *s,
                              const struct gr_proposal *p);

/* A batch ended: a session waiting to read state continues. */
void gm_session_resume(struct gm_session *s);

/* No batch is being written any more: every session that waits to read
 * queue state continues. (A session that holds a frame only behind its
 * own proposals is resumed when they are answered.) */
void gm_hub_resume_readers(struct gm_hub *hub);

#endif /* GEARRAFT_GEARMAN_SESSION_H */
