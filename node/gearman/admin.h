/* SPDX-License-Identifier: BSD-3-Clause
 * node/gearman/admin.h - the text admin protocol (docs/protocol.md, "Admin
 * lines"), byte for byte as gearmand 1.1.20 answers it, including its mixed
 * line endings: lists and "OK <value>" end in LF, bare "OK" and "ERR ..." in
 * CRLF. Our own commands (`shutdown`, `cluster`) answer in the same
 * style.
 *
 * Split in two so that the bytes can be unit-tested without sockets:
 * admin_parse() turns a line into a struct admin_req, and the
 * admin_format_*() functions write exact reply bytes. admin_handle() (in
 * admin.c too) glues them to the server: read-only commands use a short
 * read transaction, state changes become proposals, and `cluster` reads
 * the pipeline's copy of raft/'s state.
 *
 * Not here: reading lines off the socket (codec.c, session.c).
 */
#ifndef GEARRAFT_ADMIN_H
#define GEARRAFT_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/gr.h"
#include "storage/store.h"

struct evbuffer;
struct gm_session;
struct gm_hub;
struct gr_cluster_config;
struct gr_raft_view;

enum admin_cmd {
    ADMIN_UNKNOWN = 1, /* ERR UNKNOWN_COMMAND Unknown+server+command<w> */
    ADMIN_STATUS = 2,
    ADMIN_PRIORITYSTATUS = 3,
    ADMIN_WORKERS = 4,
    ADMIN_MAXQUEUE = 5,
    ADMIN_SHOW_JOBS = 6,
    ADMIN_SHOW_UNIQUE_JOBS = 7,
    ADMIN_SHOW_BAD = 8, /* ERR UNKNOWN_SHOW_ARGUMENTS */
    ADMIN_CANCEL_JOB = 9,
    ADMIN_CREATE_FUNCTION = 10,
    ADMIN_DROP_FUNCTION = 11,
    ADMIN_INCOMPLETE = 12, /* ERR INVALID_ARGUMENTS ...<word> */
    ADMIN_GETPID = 13,
    ADMIN_VERBOSE = 14,
    ADMIN_VERSION = 15,
    ADMIN_SHUTDOWN = 16,
    ADMIN_SHUTDOWN_GRACEFUL = 17,
    ADMIN_CLUSTER = 18,
    ADMIN_MEMBER_ADD = 19,      /* add NAME HOST:PORT */
    ADMIN_MEMBER_PROMOTE = 20,  /* promote NAME */
    ADMIN_MEMBER_REMOVE = 21,   /* remove NAME */
    ADMIN_MEMBER_TRANSFER = 22, /* transfer [NAME] */
};

#define ADMIN_MAX_TOKENS 8

/* A parsed admin line. Strings point into the line given to
 * admin_parse() (borrowed until it is freed); they are NUL-terminated
 * because admin_parse() cuts the line at the separators. */
struct admin_req {
    enum admin_cmd cmd;
    const char *word;  /* the command word as sent (for ERR texts) */
    const char *arg;   /* MAXQUEUE/CANCEL/CREATE/DROP: function or handle;
                          MEMBER_*: the member's name (TRANSFER: or NULL) */
    const char *arg2;  /* MEMBER_ADD: its peer address HOST:PORT */
    int n_limits;      /* MAXQUEUE: 0, 1 or 3 numbers given */
    int32_t limits[3]; /* MAXQUEUE: high, normal, low (negative -> 0) */
};

/* Parses one line (without its line ending) in place: the separators are
 * overwritten with NULs. Never fails: unknown input gives ADMIN_UNKNOWN,
 * as gearmand answers it. */
void admin_parse(char *line, struct admin_req *out);

/* Exact reply bytes. Each returns 0 or GR_ENOMEM. */
int admin_format_ok(struct evbuffer *out);                      /* "OK\r\n" */
int admin_format_ok_value(struct evbuffer *out, const char *v); /* "OK v\n" */
int admin_format_err(struct evbuffer *out, const char *text); /* "ERR t\r\n" */
int admin_format_unknown(struct evbuffer *out, const char *word);
int admin_format_incomplete(struct evbuffer *out, const char *word);
int admin_format_end(struct evbuffer *out); /* ".\n" */
int admin_format_status_line(struct evbuffer *out, const uint8_t *name,
                             size_t name_len, uint64_t total, uint64_t running,
                             uint64_t workers);
int admin_format_prio_line(struct evbuffer *out, const uint8_t *name,
                           size_t name_len, const uint64_t queued[3],
                           uint64_t workers);
/* "FD IP ID :" then " f" per function, then LF; id NULL or "" -> "-". */
int admin_format_worker_line(struct evbuffer *out, int fd, const char *ip,
                             const char *id, const struct store_buf *funcs,
                             size_t n_funcs);
int admin_format_job_line(struct evbuffer *out, const uint8_t *handle,
                          size_t handle_len, uint32_t retries, bool ignore,
                          bool persisted);
int admin_format_unique_line(struct evbuffer *out, const uint8_t *unique,
                             size_t unique_len);

/* The name `cluster` gives a node that has none: the one-node default,
 * run without --node-id. */
#define ADMIN_LOCAL_NAME "local"

/* Workers connected to this node that can do the function name[0..len). */
uint64_t admin_workers_for(struct gm_hub *hub, const uint8_t *name,
                           size_t len);

/* The `cluster` reply (docs/protocol.md, "Admin lines"): the node as raft/
 * last showed it (v, the view copied out after a batch) and the members
 * of its configuration, named by k (what the node runs as), then ".\n".
 * Every line is space-separated KEY=VALUE tokens ending in LF:
 *
 *   self=NAME leader=NAME|- term=N commit=N applied=N last=N
 *       role=leader|follower|candidate|learner cluster=NAME
 *   name=NAME addr=HOST:PORT|- role=leader|follower|candidate|learner
 *       match=N|- reachable=yes|no|self          (one per member)
 *
 * Members come in name order; one k does not name comes last, as "#ID"
 * with address "-"; this node without a name shows as ADMIN_LOCAL_NAME.
 * match is the leader's knowledge and "-" unless this node leads.
 * reach[i] (n_members of v entries, or NULL: none) says whether this
 * node's links to v->members[i] are up; the entry of this node itself is
 * not read. New keys may be added at the end of a line; readers must
 * ignore keys they do not know. Returns 0 or GR_ENOMEM. */
int admin_format_cluster(struct evbuffer *out, const struct gr_raft_view *v,
                         const struct gr_cluster_config *k, const bool *reach);

/* Handles one admin line for session s (the line is modified). Replies go
 * to the session's ordered output; state changes become proposals. */
void admin_handle(struct gm_session *s, char *line);

#endif /* GEARRAFT_ADMIN_H */
