/* SPDX-License-Identifier: BSD-3-Clause
 * node/gearman/admin.c - the text admin protocol (docs/protocol.md, "Admin
 * lines").
 *
 * Replies are byte for byte gearmand 1.1.20's, checked against it on
 * loopback: lists and "OK <value>" end in LF, bare "OK" and "ERR" in CRLF;
 * words in error texts are joined with '+'. Read-only commands (status,
 * workers, show) read one short transaction; state changes (cancel,
 * maxqueue, create and drop function) are proposals whose reply comes
 * from apply's ADMIN_REPLY effect once durable.
 *
 * Ours, where gearmand 1.1.20 has nothing: `shutdown` answers OK and stops
 * the server like SIGTERM; `shutdown graceful` answers OK, stops accepting
 * connections and exits once no job is running. `status` lists functions
 * in name order (gearmand's order is its hash table's). `cluster` shows
 * the node's Raft state and the members as this node sees them, from the
 * view the loop copies out after every batch and the peer links (a hook
 * of the hub): it never touches raft/ nor waits for it.
 *
 * Not here: reading lines (codec.c, session.c).
 */
#include "node/gearman/admin.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "node/cluster/host.h"
#include "node/cluster/members.h"
#include "node/config.h"
#include "node/gearman/census.h"
#include "node/gearman/conn.h"
#include "node/gearman/funcs.h"
#include "node/pipeline/pipeline.h"
#include "node/pipeline/proposal.h"

#ifndef GR_VERSION
#define GR_VERSION "0.0.0"
#endif

/* ---------------------------------------------------------------------
 * Parsing.
 */

static int32_t limit_of(const char *s)
{
    long v = strtol(s, NULL, 10); /* junk reads as 0, as gearmand's atoi */

    if (v < 0) {
        return 0;
    }
    if (v > INT32_MAX) {
        return INT32_MAX;
    }
    return (int32_t)v;
}

/* Splits line in place at spaces into at most ADMIN_MAX_TOKENS tokens.
 * The first token runs to the first space: a line that starts with a
 * space has an empty command word, as in gearmand. */
static size_t tokenize(char *line, char **tok)
{
    size_t n = 0;
    char *p = line;

    tok[n++] = p;
    while (*p != '\0' && *p != ' ') {
        p++;
    }
    while (*p != '\0' && n < ADMIN_MAX_TOKENS) {
        *p++ = '\0';
        while (*p == ' ') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        tok[n++] = p;
        while (*p != '\0' && *p != ' ') {
            p++;
        }
    }
    if (*p == ' ') {
        *p = '\0';
    }
    return n;
}

/* The commands with arguments: maxqueue, show, cancel, create, drop. */
static void parse_with_args(char **tok, size_t n, struct admin_req *out)
{
    if (strcasecmp(tok[0], "maxqueue") == 0) {
        if (n < 2) {
            out->cmd = ADMIN_INCOMPLETE;
            return;
        }
        out->cmd = ADMIN_MAXQUEUE;
        out->arg = tok[1];
        if (n >= 5) {
            out->n_limits = 3;
            out->limits[0] = limit_of(tok[2]);
            out->limits[1] = limit_of(tok[3]);
            out->limits[2] = limit_of(tok[4]);
        } else if (n >= 3) {
            out->n_limits = 1;
            out->limits[0] = out->limits[1] = out->limits[2] = limit_of(tok[2]);
        }
    } else if (strcasecmp(tok[0], "show") == 0) {
        if (n < 2) {
            out->cmd = ADMIN_UNKNOWN;
        } else if (n == 2 && strcasecmp(tok[1], "jobs") == 0) {
            out->cmd = ADMIN_SHOW_JOBS;
        } else if (n == 3 && strcasecmp(tok[1], "unique") == 0 &&
                   strcasecmp(tok[2], "jobs") == 0) {
            out->cmd = ADMIN_SHOW_UNIQUE_JOBS;
        } else {
            out->cmd = ADMIN_SHOW_BAD;
        }
    } else if (strcasecmp(tok[0], "cancel") == 0) {
        if (n >= 3 && strcasecmp(tok[1], "job") == 0) {
            out->cmd = ADMIN_CANCEL_JOB;
            out->arg = tok[2];
        }
    } else if (strcasecmp(tok[0], "add") == 0) {
        out->cmd = n >= 3 ? ADMIN_MEMBER_ADD : ADMIN_INCOMPLETE;
        out->arg = n >= 3 ? tok[1] : NULL;
        out->arg2 = n >= 3 ? tok[2] : NULL;
    } else if (strcasecmp(tok[0], "promote") == 0 ||
               strcasecmp(tok[0], "remove") == 0) {
        out->cmd = n < 2 ? ADMIN_INCOMPLETE
                   : strcasecmp(tok[0], "promote") == 0 ? ADMIN_MEMBER_PROMOTE
                                                        : ADMIN_MEMBER_REMOVE;
        out->arg = n >= 2 ? tok[1] : NULL;
    } else if (strcasecmp(tok[0], "transfer") == 0) {
        out->cmd = ADMIN_MEMBER_TRANSFER;
        out->arg = n >= 2 ? tok[1] : NULL;
    } else if (strcasecmp(tok[0], "create") == 0 ||
               strcasecmp(tok[0], "drop") == 0) {
        if (n >= 3 && strcasecmp(tok[1], "function") == 0) {
            out->cmd = strcasecmp(tok[0], "create") == 0 ? ADMIN_CREATE_FUNCTION
                                                         : ADMIN_DROP_FUNCTION;
            out->arg = tok[2];
        } else {
            out->cmd = ADMIN_INCOMPLETE;
        }
    }
}

void admin_parse(char *line, struct admin_req *out)
{
    static const struct {
        const char *word;
        enum admin_cmd cmd;
    } plain[] = {
        {"status", ADMIN_STATUS},   {"prioritystatus", ADMIN_PRIORITYSTATUS},
        {"workers", ADMIN_WORKERS}, {"getpid", ADMIN_GETPID},
        {"verbose", ADMIN_VERBOSE}, {"version", ADMIN_VERSION},
        {"cluster", ADMIN_CLUSTER},
    };
    char *tok[ADMIN_MAX_TOKENS];
    size_t n;
    size_t i;

    memset(out, 0, sizeof(*out));
    n = tokenize(line, tok);
    out->word = tok[0];
    out->cmd = ADMIN_UNKNOWN;
    for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        if (strcasecmp(tok[0], plain[i].word) == 0) {
            out->cmd = plain[i].cmd;
            return;
        }
    }
    if (strcasecmp(tok[0], "shutdown") == 0) {
        out->cmd = n >= 2 && strcasecmp(tok[1], "graceful") == 0
                       ? ADMIN_SHUTDOWN_GRACEFUL
                       : ADMIN_SHUTDOWN;
        return;
    }
    parse_with_args(tok, n, out);
}

/* ---------------------------------------------------------------------
 * Formatting.
 */

static int add(struct evbuffer *out, const void *p, size_t n)
{
    if (n == 0) {
        return 0;
    }
    return evbuffer_add(out, p, n) == 0 ? 0 : GR_ENOMEM;
}

static int addf(struct evbuffer *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int addf(struct evbuffer *out, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = evbuffer_add_vprintf(out, fmt, ap);
    va_end(ap);
    return n < 0 ? GR_ENOMEM : 0;
}

int admin_format_ok(struct evbuffer *out)
{
    return add(out, "OK\r\n", 4);
}

int admin_format_ok_value(struct evbuffer *out, const char *v)
{
    return addf(out, "OK %s\n", v);
}

int admin_format_err(struct evbuffer *out, const char *text)
{
    return addf(out, "ERR %s\r\n", text);
}

int admin_format_unknown(struct evbuffer *out, const char *word)
{
    return addf(out, "ERR UNKNOWN_COMMAND Unknown+server+command%s\r\n", word);
}

int admin_format_incomplete(struct evbuffer *out, const char *word)
{
    return addf(out,
                "ERR INVALID_ARGUMENTS "
                "An+incomplete+set+of+arguments+was+sent+to+this+command+%s"
                "\r\n",
                word);
}

int admin_format_end(struct evbuffer *out)
{
    return add(out, ".\n", 2);
}

int admin_format_status_line(struct evbuffer *out, const uint8_t *name,
                             size_t name_len, uint64_t total, uint64_t running,
                             uint64_t workers)
{
    int rv = add(out, name, name_len);

    if (rv != 0) {
        return rv;
    }
    return addf(out, "\t%llu\t%llu\t%llu\n", (unsigned long long)total,
                (unsigned long long)running, (unsigned long long)workers);
}

int admin_format_prio_line(struct evbuffer *out, const uint8_t *name,
                           size_t name_len, const uint64_t queued[3],
                           uint64_t workers)
{
    int rv = add(out, name, name_len);

    if (rv != 0) {
        return rv;
    }
    return addf(out, "\t%llu\t%llu\t%llu\t%llu\n",
                (unsigned long long)queued[0], (unsigned long long)queued[1],
                (unsigned long long)queued[2], (unsigned long long)workers);
}

int admin_format_worker_line(struct evbuffer *out, int fd, const char *ip,
                             const char *id, const struct store_buf *funcs,
                             size_t n_funcs)
{
    size_t i;
    int rv;

    rv =
        addf(out, "%d %s %s :", fd, ip, id == NULL || id[0] == '\0' ? "-" : id);
    for (i = 0; rv == 0 && i < n_funcs; i++) {
        rv = add(out, " ", 1);
        if (rv == 0) {
            rv = add(out, funcs[i].base, funcs[i].len);
        }
    }
    if (rv == 0) {
        rv = add(out, "\n", 1);
    }
    return rv;
}

int admin_format_job_line(struct evbuffer *out, const uint8_t *handle,
                          size_t handle_len, uint32_t retries, bool ignore,
                          bool persisted)
{
    int rv = add(out, handle, handle_len);

    if (rv != 0) {
        return rv;
    }
    return addf(out, "\t%u\t%d\t%d\n", (unsigned)retries, ignore ? 1 : 0,
                persisted ? 1 : 0);
}

int admin_format_unique_line(struct evbuffer *out, const uint8_t *unique,
                             size_t unique_len)
{
    int rv = add(out, unique, unique_len);

    if (rv != 0) {
        return rv;
    }
    return add(out, "\n", 1);
}

/* The name of member id: k's, this node's own (ADMIN_LOCAL_NAME when it
 * has none), or "#ID" for a member k does not know. */
static void member_name(const struct gr_cluster_config *k, uint64_t id,
                        char *out, size_t len)
{
    const struct store_member *m =
        gr_members_find(k->members, k->n_members, id);

    if (m != NULL) {
        snprintf(out, len, "%s", m->name);
    } else if (id == k->self_id) {
        snprintf(out, len, "%s",
                 k->self_name[0] != '\0' ? k->self_name : ADMIN_LOCAL_NAME);
    } else {
        snprintf(out, len, "#%llu", (unsigned long long)id);
    }
}

/* Where member id's peers dial it: k's member table, or this node's
 * --peer-listen; "-" when neither knows (the one-node default). */
static void member_addr(const struct gr_cluster_config *k, uint64_t id,
                        char *out, size_t len)
{
    const struct store_member *m =
        gr_members_find(k->members, k->n_members, id);

    if (m != NULL) {
        gr_peer_addr_format(m->host, m->port, out, len);
    } else if (id == k->self_id && k->member) {
        gr_peer_addr_format(k->peer_host, k->peer_port, out, len);
    } else {
        snprintf(out, len, "-");
    }
}

static const char *role_word(int role, bool voter)
{
    if (!voter) {
        return "learner";
    }
    switch (role) {
    case RAFT_LEADER:
        return "leader";
    case RAFT_CANDIDATE:
    case RAFT_PRE_CANDIDATE:
        return "candidate";
    default:
        return "follower";
    }
}

/* Whether this node is a voter of v (a node outside its configuration,
 * or a learner, is not). */
static bool self_votes(const struct gr_raft_view *v, uint64_t self_id)
{
    size_t i;

    for (i = 0; i < v->n_members; i++) {
        if (v->members[i].id == self_id) {
            return v->members[i].voter;
        }
    }
    return false;
}

/* The members of v in name order, those k does not name last (in v's
 * order): writes n_members of v indexes into v to order. */
static void member_order(const struct gr_raft_view *v,
                         const struct gr_cluster_config *k, size_t *order)
{
    const char *name[RAFT_MAX_MEMBERS];
    size_t i;
    size_t j;

    for (i = 0; i < v->n_members; i++) {
        const struct store_member *m =
            gr_members_find(k->members, k->n_members, v->members[i].id);

        name[i] = m != NULL ? m->name : NULL;
        /* Insertion sort: at most RAFT_MAX_MEMBERS of them. */
        for (j = i; j > 0; j--) {
            const char *prev = name[order[j - 1]];

            if (name[i] == NULL ||
                (prev != NULL && strcmp(prev, name[i]) <= 0)) {
                break;
            }
            order[j] = order[j - 1];
        }
        order[j] = i;
    }
}

/* One member line: member i of v. */
static int member_line(struct evbuffer *out, const struct gr_raft_view *v,
                       const struct gr_cluster_config *k, size_t i,
                       bool reachable)
{
    uint64_t id = v->members[i].id;
    bool self = id == k->self_id;
    char name[STORE_NODE_NAME_MAX + 24];
    char addr[GR_PEER_ADDR_MAX + 1];
    char match[24] = "-";
    int role = RAFT_FOLLOWER;

    /* This node knows its own role; of the others it knows the leader. */
    if (self) {
        role = v->role;
    } else if (id == v->leader_id) {
        role = RAFT_LEADER;
    }
    /* Only the leader tracks how far each member's log matches its own. */
    if (v->role == RAFT_LEADER) {
        snprintf(match, sizeof(match), "%llu",
                 (unsigned long long)v->members[i].match);
    }
    member_name(k, id, name, sizeof(name));
    member_addr(k, id, addr, sizeof(addr));
    return addf(out, "name=%s addr=%s role=%s match=%s reachable=%s\n", name,
                addr, role_word(role, v->members[i].voter), match,
                self        ? "self"
                : reachable ? "yes"
                            : "no");
}

int admin_format_cluster(struct evbuffer *out, const struct gr_raft_view *v,
                         const struct gr_cluster_config *k, const bool *reach)
{
    char name[STORE_NODE_NAME_MAX + 24];
    char leader[STORE_NODE_NAME_MAX + 24] = "-";
    size_t order[RAFT_MAX_MEMBERS];
    size_t n;
    int rv;

    member_name(k, k->self_id, name, sizeof(name));
    if (v->leader_id != 0) {
        member_name(k, v->leader_id, leader, sizeof(leader));
    }
    rv = addf(out,
              "self=%s leader=%s term=%llu commit=%llu applied=%llu "
              "last=%llu role=%s cluster=%s\n",
              name, leader, (unsigned long long)v->term,
              (unsigned long long)v->commit, (unsigned long long)v->applied,
              (unsigned long long)v->last_index,
              role_word(v->role, self_votes(v, k->self_id)),
              k->cluster_name[0] != '\0' ? k->cluster_name : "-");
    member_order(v, k, order);
    for (n = 0; rv == 0 && n < v->n_members; n++) {
        rv = member_line(out, v, k, order[n], reach != NULL && reach[order[n]]);
    }
    return rv == 0 ? admin_format_end(out) : rv;
}

/* ---------------------------------------------------------------------
 * Commands against the server.
 */

uint64_t admin_workers_for(struct gm_hub *hub, const uint8_t *name, size_t len)
{
    struct gm_session *s;
    uint64_t n = 0;

    for (s = hub->sessions; s != NULL; s = s->next) {
        const struct gm_func *f;

        for (f = s->funcs; f != NULL; f = f->next) {
            if (f->len == len && memcmp(f->name, name, len) == 0) {
                n++;
            }
        }
    }
    return n;
}

struct walk_ctx {
    struct gm_hub *hub;
    struct evbuffer *out;
    bool prio;
};

/* `status` counts the cluster's workers: this node's, and what the other
 * members last told (census.h). */
static int status_cb(void *arg, const struct store_func_info *f)
{
    struct walk_ctx *c = arg;
    uint64_t workers =
        admin_workers_for(c->hub, f->name.base, f->name.len) +
        gm_census_workers(c->hub, f->name.base, f->name.len,
                          gr_mono_us() / 1000);

    if (c->prio) {
        return admin_format_prio_line(c->out, f->name.base, f->name.len,
                                      f->queued, workers);
    }
    return admin_format_status_line(c->out, f->name.base, f->name.len,
                                    f->queued[0] + f->queued[1] + f->queued[2] +
                                        f->running,
                                    f->running, workers);
}

static int jobs_cb(void *arg, const struct store_job_info *j)
{
    struct walk_ctx *c = arg;

    return admin_format_job_line(c->out, j->handle.base, j->handle.len,
                                 j->retries, j->ignore, true);
}

static int unique_cb(void *arg, const struct store_job_info *j)
{
    struct walk_ctx *c = arg;

    return admin_format_unique_line(c->out, j->unique.base, j->unique.len);
}

static int list_workers(struct gm_hub *hub, struct evbuffer *out)
{
    struct gm_session *s;
    struct store_buf *fv = NULL;
    size_t cap = 0;
    int rv = 0;

    for (s = hub->sessions; s != NULL && rv == 0; s = s->next) {
        struct gm_func *f;
        size_t i = 0;

        rv = GR_ARRAY_RESERVE(fv, cap, s->n_funcs);
        if (rv != 0) {
            break;
        }
        for (f = s->funcs; f != NULL; f = f->next) {
            fv[i].base = f->name;
            fv[i].len = f->len;
            i++;
        }
        rv = admin_format_worker_line(out, s->fd, s->ip, s->client_id, fv, i);
    }
    gr_free(fv);
    return rv;
}

/* `cluster`: the view the loop copied out after the last batch, and this
 * node's links to each member through the loop's hook. */
static int admin_cluster(struct gm_hub *hub, struct evbuffer *out)
{
    const struct gr_raft_view *v = &hub->pipe->view;
    bool reach[RAFT_MAX_MEMBERS];
    size_t i;

    if (hub->cluster == NULL) {
        return admin_format_err(out, "NOT_AVAILABLE No+cluster+state");
    }
    for (i = 0; i < v->n_members && i < RAFT_MAX_MEMBERS; i++) {
        reach[i] = hub->reachable != NULL &&
                   v->members[i].id != hub->cluster->self_id &&
                   hub->reachable(hub->reachable_arg, v->members[i].id);
    }
    return admin_format_cluster(out, v, hub->cluster, reach);
}

static int admin_read(struct gm_session *s, const struct admin_req *req,
                      struct evbuffer *out)
{
    struct walk_ctx c = {s->hub, out, false};
    struct store_txn *txn;
    int rv;

    if (req->cmd == ADMIN_WORKERS) {
        rv = list_workers(s->hub, out);
        return rv == 0 ? admin_format_end(out) : rv;
    }
    rv = store_txn_begin(s->hub->store, false, &txn);
    if (rv != 0) {
        return admin_format_err(out, "QUEUE_ERROR Storage+read+failed");
    }
    switch (req->cmd) {
    case ADMIN_STATUS:
        rv = store_funcs_walk(txn, status_cb, &c);
        break;
    case ADMIN_PRIORITYSTATUS:
        c.prio = true;
        rv = store_funcs_walk(txn, status_cb, &c);
        break;
    case ADMIN_SHOW_JOBS:
        rv = store_jobs_walk(txn, jobs_cb, &c);
        break;
    default:
        rv = store_jobs_walk(txn, unique_cb, &c);
        break;
    }
    store_txn_abort(txn);
    if (rv != 0) {
        GR_LOG(GR_LOG_ERROR, "admin", "reading the queue failed: %s",
               store_strerror(rv));
    }
    return admin_format_end(out);
}

static void admin_propose(struct gm_session *s, const struct admin_req *req)
{
    struct gr_proposal *p = gr_proposal_new();
    size_t len = strlen(req->arg);
    struct store_buf arg;

    if (p == NULL || (p->owned = gr_strndup(req->arg, len)) == NULL) {
        gr_proposal_free(p);
        gm_session_close(s, false);
        return;
    }
    arg.base = p->owned;
    arg.len = len;
    p->conn_id = s->conn_id;
    p->admin = true;
    p->cmd.u.admin.admin = gm_conn_ref(s->hub, s->conn_id);
    switch (req->cmd) {
    case ADMIN_CANCEL_JOB:
        p->cmd.type = STORE_CMD_CANCEL;
        p->cmd.u.admin.handle = arg;
        break;
    case ADMIN_MAXQUEUE:
        p->cmd.type = STORE_CMD_MAXQUEUE;
        p->cmd.u.admin.maxqueue.function = arg;
        memcpy(p->cmd.u.admin.maxqueue.limit, req->limits, sizeof(req->limits));
        break;
    case ADMIN_CREATE_FUNCTION:
        p->cmd.type = STORE_CMD_FUNC_CREATE;
        p->cmd.u.admin.function = arg;
        break;
    default:
        p->cmd.type = STORE_CMD_FUNC_DROP;
        p->cmd.u.admin.function = arg;
        gm_known_remove(s->hub, arg.base, arg.len);
        break;
    }
    gm_session_propose(s, p);
}

/* add, promote, remove, transfer: checked here as far as this node can
 * (a cluster member, a valid name and address), then proposed like any
 * admin command; the leader tries the change on raft/ when it proposes
 * it and its verdict comes back through apply as the reply
 * (node/cluster/turn.c). Returns 0 or GR_ENOMEM (close). */
static int admin_member(struct gm_session *s, const struct admin_req *req)
{
    const struct gr_cluster_config *k = s->hub->cluster;
    struct store_member_change *m;
    struct gr_proposal *p;
    const char *why = NULL;
    char host[STORE_HOST_MAX + 1];
    uint16_t port = 0;

    if (k == NULL || !k->member) {
        return admin_format_err(
            s->out, "NOT_A_CLUSTER Membership+changes+need+a+cluster+member");
    }
    if (req->arg != NULL && !gr_name_is_valid(req->arg)) {
        return admin_format_err(
            s->out, "INVALID_ARGUMENTS A+name+is+1-32+of+A-Z+a-z+0-9+._-");
    }
    if (req->cmd == ADMIN_MEMBER_ADD &&
        gr_peer_addr_parse(req->arg2, host, &port, &why) != 0) {
        return admin_format_err(
            s->out, "INVALID_ARGUMENTS The+address+is+HOST:PORT+(IPv4,+[IPv6]+"
                    "or+a+host+name)");
    }
    p = gr_proposal_new();
    if (p == NULL) {
        return GR_ENOMEM;
    }
    p->conn_id = s->conn_id;
    p->admin = true;
    p->cmd.type = STORE_CMD_MEMBER;
    m = &p->cmd.u.member;
    m->admin = gm_conn_ref(s->hub, s->conn_id);
    m->op = req->cmd == ADMIN_MEMBER_ADD       ? STORE_MEMBER_ADD
            : req->cmd == ADMIN_MEMBER_PROMOTE ? STORE_MEMBER_PROMOTE
            : req->cmd == ADMIN_MEMBER_REMOVE  ? STORE_MEMBER_REMOVE
                                               : STORE_MEMBER_TRANSFER;
    if (req->arg != NULL) {
        m->member.id = gr_member_id(req->arg);
        snprintf(m->member.name, sizeof(m->member.name), "%s", req->arg);
    }
    if (req->cmd == ADMIN_MEMBER_ADD) {
        snprintf(m->member.host, sizeof(m->member.host), "%s", host);
        m->member.port = port;
    }
    GR_LOG(GR_LOG_NOTICE, "admin",
           "membership change asked by conn=%llu: %s %s",
           (unsigned long long)s->conn_id, req->word,
           req->arg != NULL ? req->arg : "(any voter)");
    gm_session_propose(s, p);
    return 0;
}

void admin_handle(struct gm_session *s, char *line)
{
    struct admin_req req;
    struct evbuffer *out = s->out;
    char pid[32];
    int rv = 0;

    admin_parse(line, &req);
    gm_session_want_flush(s);
    switch (req.cmd) {
    case ADMIN_STATUS:
    case ADMIN_PRIORITYSTATUS:
    case ADMIN_WORKERS:
    case ADMIN_SHOW_JOBS:
    case ADMIN_SHOW_UNIQUE_JOBS:
        rv = admin_read(s, &req, out);
        break;
    case ADMIN_SHOW_BAD:
        rv = admin_format_err(out, "UNKNOWN_SHOW_ARGUMENTS");
        break;
    case ADMIN_INCOMPLETE:
        rv = admin_format_incomplete(out, req.word);
        break;
    case ADMIN_UNKNOWN:
        rv = admin_format_unknown(out, req.word);
        break;
    case ADMIN_GETPID:
        snprintf(pid, sizeof(pid), "%ld", (long)getpid());
        rv = admin_format_ok_value(out, pid);
        break;
    case ADMIN_VERBOSE:
        rv = admin_format_ok_value(out, gr_log_level_name(gr_log_threshold));
        break;
    case ADMIN_VERSION:
        rv = admin_format_ok_value(out, GR_VERSION);
        break;
    case ADMIN_CLUSTER:
        rv = admin_cluster(s->hub, out);
        break;
    case ADMIN_SHUTDOWN:
    case ADMIN_SHUTDOWN_GRACEFUL:
        rv = admin_format_ok(out);
        gm_session_flush(s);
        GR_LOG(GR_LOG_NOTICE, "admin", "%s requested by conn=%llu",
               req.cmd == ADMIN_SHUTDOWN ? "shutdown" : "graceful shutdown",
               (unsigned long long)s->conn_id);
        s->hub->shutdown(s->hub->shutdown_arg,
                         req.cmd == ADMIN_SHUTDOWN_GRACEFUL);
        break;
    case ADMIN_DROP_FUNCTION:
        if (admin_workers_for(s->hub, (const uint8_t *)req.arg, strlen(req.arg)) >
            0) {
            rv = admin_format_err(
                out, "there are still connected workers or executing clients");
            break;
        }
        admin_propose(s, &req);
        break;
    case ADMIN_CANCEL_JOB:
    case ADMIN_MAXQUEUE:
    case ADMIN_CREATE_FUNCTION:
        admin_propose(s, &req);
        break;
    case ADMIN_MEMBER_ADD:
    case ADMIN_MEMBER_PROMOTE:
    case ADMIN_MEMBER_REMOVE:
    case ADMIN_MEMBER_TRANSFER:
        rv = admin_member(s, &req);
        break;
    }
    if (rv != 0) {
        gm_session_close(s, false);
    }
}
