/* SPDX-License-Identifier: BSD-3-Clause
 * storage/codec.c - struct store_cmd <-> bytes, through protobuf-c
 * (proto/commands.proto).
 *
 * Why it is shaped this way: this is the only file of storage/ that sees
 * the generated Gearraft__ types, so a change of wire format touches one
 * file. Decoding trusts nothing: protobuf-c rejects malformed encodings,
 * and every enum value, count and required sub-message is checked here,
 * so hostile bytes give STORE_EMALFORMED and never an assert. The decoded
 * command is one allocation (struct, function array, then every byte
 * string), so the unpacked protobuf message is freed before returning and
 * store_cmd_free is a single free.
 *
 * Not here: what commands mean (apply.c).
 */
#include "proto/commands.pb-c.h"
#include "storage/internal.h"

/* Version written in every Command. Checklist in proto/commands.proto:
 * bump when an existing field changes meaning; decode accepts versions
 * 1..STORE__CMD_VERSION. */
#define STORE__CMD_VERSION 1u

/* ---- encode ---- */

static ProtobufCBinaryData bin(struct store_buf b)
{
    ProtobufCBinaryData d;

    d.len = b.len;
    d.data = (uint8_t *)(uintptr_t)b.base; /* protobuf-c only reads it */
    return d;
}

static void ref_to_pb(Gearraft__ConnRef *pb, const struct store_conn_ref *r)
{
    gearraft__conn_ref__init(pb);
    pb->node_id = r->node_id;
    pb->incarnation = r->incarnation;
    pb->conn_id = r->conn_id;
}

/* A Command and every sub-message it may point to, so that building one
 * needs no allocation beyond the function array of a Grab. */
struct pb_cmd {
    Gearraft__Command pb;
    Gearraft__Origin origin;
    Gearraft__Noop noop;
    Gearraft__Submit submit;
    Gearraft__Grab grab;
    Gearraft__Work work;
    Gearraft__Release release;
    Gearraft__JobTimeout timeout;
    Gearraft__ClientGone gone;
    Gearraft__NodeGone node_gone;
    Gearraft__Admin admin;
    Gearraft__Member member;
    Gearraft__ConnRef ref;
    ProtobufCBinaryData *fns; /* owned: store__free */
    int32_t limits[STORE_PRIO_COUNT];
};

static int build_submit(struct pb_cmd *b, const struct store_submit *c)
{
    if ((unsigned)c->prio >= STORE_PRIO_COUNT) {
        return STORE_EINVAL;
    }
    gearraft__submit__init(&b->submit);
    b->submit.function = bin(c->function);
    b->submit.unique = bin(c->unique);
    b->submit.reducer = bin(c->reducer);
    b->submit.data = bin(c->data);
    b->submit.prio = (uint32_t)c->prio;
    b->submit.background = c->background;
    b->submit.when = c->when;
    ref_to_pb(&b->ref, &c->client);
    b->submit.client = &b->ref;
    b->pb.cmd_case = GEARRAFT__COMMAND__CMD_SUBMIT;
    b->pb.submit = &b->submit;
    return 0;
}

static int build_grab(struct pb_cmd *b, const struct store_grab *c)
{
    size_t i;

    gearraft__grab__init(&b->grab);
    ref_to_pb(&b->ref, &c->worker);
    b->grab.worker = &b->ref;
    if (c->n_functions > 0) {
        if (c->functions == NULL ||
            c->n_functions > SIZE_MAX / sizeof(*b->fns)) {
            return STORE_EINVAL;
        }
        b->fns = store__malloc(c->n_functions * sizeof(*b->fns));
        if (b->fns == NULL) {
            return STORE_ENOMEM;
        }
        for (i = 0; i < c->n_functions; i++) {
            b->fns[i] = bin(c->functions[i]);
        }
    }
    b->grab.n_functions = c->n_functions;
    b->grab.functions = b->fns;
    b->grab.job = c->job;
    b->grab.min_job = c->min_job;
    b->pb.cmd_case = GEARRAFT__COMMAND__CMD_GRAB;
    b->pb.grab = &b->grab;
    return 0;
}

static void build_work(struct pb_cmd *b, const struct store_work *c)
{
    gearraft__work__init(&b->work);
    ref_to_pb(&b->ref, &c->worker);
    b->work.worker = &b->ref;
    b->work.kind = (uint32_t)c->kind;
    b->work.handle = bin(c->handle);
    b->work.data = bin(c->data);
    b->work.numerator = bin(c->numerator);
    b->work.denominator = bin(c->denominator);
    b->pb.cmd_case = GEARRAFT__COMMAND__CMD_WORK;
    b->pb.work = &b->work;
}

static void build_admin(struct pb_cmd *b, enum store_cmd_type type,
                        const struct store_admin *c)
{
    size_t i;

    gearraft__admin__init(&b->admin);
    ref_to_pb(&b->ref, &c->admin);
    b->admin.admin = &b->ref;
    if (type == STORE_CMD_CANCEL) {
        b->admin.handle = bin(c->handle);
        b->pb.cmd_case = GEARRAFT__COMMAND__CMD_CANCEL;
        b->pb.cancel = &b->admin;
    } else if (type == STORE_CMD_MAXQUEUE) {
        b->admin.function = bin(c->maxqueue.function);
        for (i = 0; i < STORE_PRIO_COUNT; i++) {
            b->limits[i] = c->maxqueue.limit[i];
        }
        b->admin.n_limit = STORE_PRIO_COUNT;
        b->admin.limit = b->limits;
        b->pb.cmd_case = GEARRAFT__COMMAND__CMD_MAXQUEUE;
        b->pb.maxqueue = &b->admin;
    } else if (type == STORE_CMD_FUNC_CREATE) {
        b->admin.function = bin(c->function);
        b->pb.cmd_case = GEARRAFT__COMMAND__CMD_FUNC_CREATE;
        b->pb.func_create = &b->admin;
    } else {
        b->admin.function = bin(c->function);
        b->pb.cmd_case = GEARRAFT__COMMAND__CMD_FUNC_DROP;
        b->pb.func_drop = &b->admin;
    }
}

static int build_member(struct pb_cmd *b, const struct store_member_change *c)
{
    struct store_buf name = {(const uint8_t *)c->member.name,
                             strnlen(c->member.name, sizeof(c->member.name))};
    struct store_buf host = {(const uint8_t *)c->member.host,
                             strnlen(c->member.host, sizeof(c->member.host))};

    if (c->op < STORE_MEMBER_ADD || c->op > STORE_MEMBER_TRANSFER) {
        return STORE_EINVAL;
    }
    gearraft__member__init(&b->member);
    ref_to_pb(&b->ref, &c->admin);
    b->member.admin = &b->ref;
    b->member.op = (uint32_t)c->op;
    b->member.id = c->member.id;
    b->member.name = bin(name);
    b->member.host = bin(host);
    b->member.port = c->member.port;
    b->pb.verdict = c->verdict;
    b->pb.cmd_case = GEARRAFT__COMMAND__CMD_MEMBER;
    b->pb.member = &b->member;
    return 0;
}

/* The commands without byte strings of their own. */
static void build_small(struct pb_cmd *b, const struct store_cmd *cmd)
{
    switch (cmd->type) {
    case STORE_CMD_RELEASE:
        gearraft__release__init(&b->release);
        ref_to_pb(&b->ref, &cmd->u.release.worker);
        b->release.worker = &b->ref;
        b->release.function = bin(cmd->u.release.function);
        b->release.max_retries = cmd->u.release.max_retries;
        b->pb.cmd_case = GEARRAFT__COMMAND__CMD_RELEASE;
        b->pb.release = &b->release;
        break;
    case STORE_CMD_JOB_TIMEOUT:
        gearraft__job_timeout__init(&b->timeout);
        ref_to_pb(&b->ref, &cmd->u.timeout.worker);
        b->timeout.worker = &b->ref;
        b->timeout.handle = bin(cmd->u.timeout.handle);
        b->timeout.max_retries = cmd->u.timeout.max_retries;
        b->pb.cmd_case = GEARRAFT__COMMAND__CMD_JOB_TIMEOUT;
        b->pb.job_timeout = &b->timeout;
        break;
    case STORE_CMD_CLIENT_GONE:
        gearraft__client_gone__init(&b->gone);
        ref_to_pb(&b->ref, &cmd->u.client_gone);
        b->gone.client = &b->ref;
        b->pb.cmd_case = GEARRAFT__COMMAND__CMD_CLIENT_GONE;
        b->pb.client_gone = &b->gone;
        break;
    case STORE_CMD_NODE_GONE:
        gearraft__node_gone__init(&b->node_gone);
        b->node_gone.node_id = cmd->u.node_gone.node_id;
        b->node_gone.incarnation = cmd->u.node_gone.incarnation;
        b->node_gone.max_retries = cmd->u.node_gone.max_retries;
        b->pb.cmd_case = GEARRAFT__COMMAND__CMD_NODE_GONE;
        b->pb.node_gone = &b->node_gone;
        break;
    default: /* STORE_CMD_NOOP */
        gearraft__noop__init(&b->noop);
        b->pb.cmd_case = GEARRAFT__COMMAND__CMD_NOOP;
        b->pb.noop = &b->noop;
        break;
    }
}

/* Fills b from cmd; b->fns must be freed whatever the result. */
static int build(struct pb_cmd *b, const struct store_cmd *cmd)
{
    b->fns = NULL;
    gearraft__command__init(&b->pb);
    gearraft__origin__init(&b->origin);
    b->pb.version = STORE__CMD_VERSION;
    b->origin.node_id = cmd->origin.node_id;
    b->origin.incarnation = cmd->origin.incarnation;
    b->origin.seq = cmd->origin.seq;
    b->origin.low = cmd->origin.low;
    b->pb.origin = &b->origin;
    b->pb.time_ms = cmd->time_ms;

    switch (cmd->type) {
    case STORE_CMD_SUBMIT:
        return build_submit(b, &cmd->u.submit);
    case STORE_CMD_GRAB:
        return build_grab(b, &cmd->u.grab);
    case STORE_CMD_WORK:
        build_work(b, &cmd->u.work);
        return 0;
    case STORE_CMD_CANCEL:
    case STORE_CMD_MAXQUEUE:
    case STORE_CMD_FUNC_CREATE:
    case STORE_CMD_FUNC_DROP:
        build_admin(b, cmd->type, &cmd->u.admin);
        return 0;
    case STORE_CMD_MEMBER:
        return build_member(b, &cmd->u.member);
    case STORE_CMD_NOOP:
    case STORE_CMD_RELEASE:
    case STORE_CMD_JOB_TIMEOUT:
    case STORE_CMD_CLIENT_GONE:
    case STORE_CMD_NODE_GONE:
        build_small(b, cmd);
        return 0;
    default:
        return STORE_EINVAL;
    }
}

int store__cmd_encode_to(const struct store_cmd *cmd, store__reserve_fn reserve,
                         void *arg)
{
    struct pb_cmd b;
    uint8_t *buf;
    size_t len;
    int rv;

    rv = build(&b, cmd);
    if (rv == 0) {
        len = gearraft__command__get_packed_size(&b.pb);
        buf = reserve(arg, len, &rv);
        if (buf != NULL && gearraft__command__pack(&b.pb, buf) != len) {
            rv = STORE_EINVAL;
        }
    }
    store__free(b.fns);
    return rv;
}

struct malloc_out {
    uint8_t *buf;
    size_t len;
};

static uint8_t *reserve_malloc(void *arg, size_t len, int *rv)
{
    struct malloc_out *o = arg;

    o->buf = store__malloc(len > 0 ? len : 1);
    o->len = len;
    if (o->buf == NULL) {
        *rv = STORE_ENOMEM;
    }
    return o->buf;
}

int store_cmd_encode(const struct store_cmd *cmd, uint8_t **out,
                     size_t *out_len)
{
    struct malloc_out o = {NULL, 0};
    int rv = store__cmd_encode_to(cmd, reserve_malloc, &o);

    if (rv != 0) {
        store__free(o.buf);
        STORE_ASSERT(rv == STORE_ENOMEM || rv == STORE_EINVAL);
        return rv;
    }
    *out = o.buf;
    *out_len = o.len;
    return 0;
}

/* ---- decode ---- */

/* Bytes still to copy into the single allocation of a decoded command. */
struct plan {
    size_t bytes;
    bool overflow;
};

static void plan_add(struct plan *p, size_t n)
{
    if (p->bytes > SIZE_MAX - n) {
        p->overflow = true;
        return;
    }
    p->bytes += n;
}

static void plan_bin(struct plan *p, ProtobufCBinaryData d)
{
    plan_add(p, d.len);
}

/* Copies d into the tail of the allocation. */
static struct store_buf take(uint8_t **tail, ProtobufCBinaryData d)
{
    struct store_buf b;

    b.len = d.len;
    b.base = d.len > 0 ? *tail : NULL;
    if (d.len > 0) {
        memcpy(*tail, d.data, d.len);
        *tail += d.len;
    }
    return b;
}

static bool ref_from_pb(const Gearraft__ConnRef *pb, struct store_conn_ref *r)
{
    if (pb == NULL) {
        return false;
    }
    r->node_id = pb->node_id;
    r->incarnation = pb->incarnation;
    r->conn_id = pb->conn_id;
    return true;
}

/* Sizes every byte string of the message; false if a required part is
 * missing. */
static bool plan_cmd(const Gearraft__Command *pb, struct plan *p)
{
    size_t i;

    switch (pb->cmd_case) {
    case GEARRAFT__COMMAND__CMD_NOOP:
        return pb->noop != NULL;
    case GEARRAFT__COMMAND__CMD_SUBMIT:
        if (pb->submit == NULL || pb->submit->client == NULL ||
            pb->submit->prio >= STORE_PRIO_COUNT) {
            return false;
        }
        plan_bin(p, pb->submit->function);
        plan_bin(p, pb->submit->unique);
        plan_bin(p, pb->submit->reducer);
        plan_bin(p, pb->submit->data);
        return true;
    case GEARRAFT__COMMAND__CMD_GRAB:
        if (pb->grab == NULL || pb->grab->worker == NULL ||
            pb->grab->n_functions > SIZE_MAX / sizeof(struct store_buf)) {
            return false;
        }
        plan_add(p, pb->grab->n_functions * sizeof(struct store_buf));
        for (i = 0; i < pb->grab->n_functions; i++) {
            plan_bin(p, pb->grab->functions[i]);
        }
        return true;
    case GEARRAFT__COMMAND__CMD_WORK:
        if (pb->work == NULL || pb->work->worker == NULL ||
            pb->work->kind < STORE_WORK_STATUS ||
            pb->work->kind > STORE_WORK_EXCEPTION) {
            return false;
        }
        plan_bin(p, pb->work->handle);
        plan_bin(p, pb->work->data);
        plan_bin(p, pb->work->numerator);
        plan_bin(p, pb->work->denominator);
        return true;
    case GEARRAFT__COMMAND__CMD_RELEASE:
        if (pb->release == NULL || pb->release->worker == NULL) {
            return false;
        }
        plan_bin(p, pb->release->function);
        return true;
    case GEARRAFT__COMMAND__CMD_JOB_TIMEOUT:
        if (pb->job_timeout == NULL || pb->job_timeout->worker == NULL) {
            return false;
        }
        plan_bin(p, pb->job_timeout->handle);
        return true;
    case GEARRAFT__COMMAND__CMD_CLIENT_GONE:
        return pb->client_gone != NULL && pb->client_gone->client != NULL;
    case GEARRAFT__COMMAND__CMD_NODE_GONE:
        return pb->node_gone != NULL;
    case GEARRAFT__COMMAND__CMD_CANCEL:
    case GEARRAFT__COMMAND__CMD_MAXQUEUE:
    case GEARRAFT__COMMAND__CMD_FUNC_CREATE:
    case GEARRAFT__COMMAND__CMD_FUNC_DROP: {
        const Gearraft__Admin *a =
            pb->cmd_case == GEARRAFT__COMMAND__CMD_CANCEL     ? pb->cancel
            : pb->cmd_case == GEARRAFT__COMMAND__CMD_MAXQUEUE ? pb->maxqueue
            : pb->cmd_case == GEARRAFT__COMMAND__CMD_FUNC_CREATE
                ? pb->func_create
                : pb->func_drop;
        if (a == NULL || a->admin == NULL) {
            return false;
        }
        if (pb->cmd_case == GEARRAFT__COMMAND__CMD_MAXQUEUE &&
            a->n_limit != STORE_PRIO_COUNT) {
            return false;
        }
        plan_bin(p, a->function);
        plan_bin(p, a->handle);
        return true;
    }
    case GEARRAFT__COMMAND__CMD_MEMBER: {
        const Gearraft__Member *m = pb->member;

        /* Name and host are copied into the struct's own arrays. */
        return m != NULL && m->admin != NULL && m->op >= STORE_MEMBER_ADD &&
               m->op <= STORE_MEMBER_TRANSFER &&
               m->name.len <= STORE_NODE_NAME_MAX &&
               m->host.len <= STORE_HOST_MAX && m->port <= UINT16_MAX &&
               (m->name.len == 0 ||
                memchr(m->name.data, '\0', m->name.len) == NULL) &&
               (m->host.len == 0 ||
                memchr(m->host.data, '\0', m->host.len) == NULL);
    }
    default:
        return false;
    }
}

static void fill_member(const Gearraft__Command *pb,
                        struct store_member_change *c)
{
    const Gearraft__Member *m = pb->member;

    (void)ref_from_pb(m->admin, &c->admin);
    c->op = (enum store_member_op)m->op;
    c->member.id = m->id;
    if (m->name.len > 0) {
        memcpy(c->member.name, m->name.data, m->name.len);
    }
    if (m->host.len > 0) {
        memcpy(c->member.host, m->host.data, m->host.len);
    }
    c->member.port = (uint16_t)m->port;
    c->verdict = pb->verdict;
}

static void fill_submit(const Gearraft__Submit *m, struct store_submit *s,
                        uint8_t **tail)
{
    s->function = take(tail, m->function);
    s->unique = take(tail, m->unique);
    s->reducer = take(tail, m->reducer);
    s->data = take(tail, m->data);
    s->prio = (enum store_prio)m->prio;
    s->background = m->background != 0;
    s->when = m->when;
    (void)ref_from_pb(m->client, &s->client);
}

static void fill_grab(const Gearraft__Grab *m, struct store_grab *g,
                      uint8_t **tail)
{
    struct store_buf *fns = (struct store_buf *)(void *)*tail;
    size_t i;

    (void)ref_from_pb(m->worker, &g->worker);
    *tail += m->n_functions * sizeof(struct store_buf);
    for (i = 0; i < m->n_functions; i++) {
        fns[i] = take(tail, m->functions[i]);
    }
    g->functions = m->n_functions > 0 ? fns : NULL;
    g->n_functions = m->n_functions;
    g->job = m->job;
    g->min_job = m->min_job;
}

static void fill_work(const Gearraft__Work *m, struct store_work *w,
                      uint8_t **tail)
{
    (void)ref_from_pb(m->worker, &w->worker);
    w->kind = (enum store_work_kind)m->kind;
    w->handle = take(tail, m->handle);
    w->data = take(tail, m->data);
    w->numerator = take(tail, m->numerator);
    w->denominator = take(tail, m->denominator);
}

/* CANCEL, MAXQUEUE, FUNC_CREATE and FUNC_DROP share the Admin message. */
static void fill_admin(const Gearraft__Admin *m, enum store_cmd_type type,
                       struct store_admin *a, uint8_t **tail)
{
    size_t i;

    (void)ref_from_pb(m->admin, &a->admin);
    if (type == STORE_CMD_MAXQUEUE) {
        a->maxqueue.function = take(tail, m->function);
        for (i = 0; i < STORE_PRIO_COUNT; i++) {
            a->maxqueue.limit[i] = m->limit[i];
        }
    } else {
        a->function = take(tail, m->function);
    }
    a->handle = take(tail, m->handle);
}

static void fill_cmd(const Gearraft__Command *pb, struct store_cmd *c,
                     uint8_t *tail)
{
    switch (pb->cmd_case) {
    case GEARRAFT__COMMAND__CMD_NOOP:
        c->type = STORE_CMD_NOOP;
        break;
    case GEARRAFT__COMMAND__CMD_SUBMIT:
        c->type = STORE_CMD_SUBMIT;
        fill_submit(pb->submit, &c->u.submit, &tail);
        break;
    case GEARRAFT__COMMAND__CMD_GRAB:
        c->type = STORE_CMD_GRAB;
        fill_grab(pb->grab, &c->u.grab, &tail);
        break;
    case GEARRAFT__COMMAND__CMD_WORK:
        c->type = STORE_CMD_WORK;
        fill_work(pb->work, &c->u.work, &tail);
        break;
    case GEARRAFT__COMMAND__CMD_RELEASE:
        c->type = STORE_CMD_RELEASE;
        (void)ref_from_pb(pb->release->worker, &c->u.release.worker);
        c->u.release.function = take(&tail, pb->release->function);
        c->u.release.max_retries = pb->release->max_retries;
        break;
    case GEARRAFT__COMMAND__CMD_JOB_TIMEOUT:
        c->type = STORE_CMD_JOB_TIMEOUT;
        (void)ref_from_pb(pb->job_timeout->worker, &c->u.timeout.worker);
        c->u.timeout.handle = take(&tail, pb->job_timeout->handle);
        c->u.timeout.max_retries = pb->job_timeout->max_retries;
        break;
    case GEARRAFT__COMMAND__CMD_CLIENT_GONE:
        c->type = STORE_CMD_CLIENT_GONE;
        (void)ref_from_pb(pb->client_gone->client, &c->u.client_gone);
        break;
    case GEARRAFT__COMMAND__CMD_NODE_GONE:
        c->type = STORE_CMD_NODE_GONE;
        c->u.node_gone.node_id = pb->node_gone->node_id;
        c->u.node_gone.incarnation = pb->node_gone->incarnation;
        c->u.node_gone.max_retries = pb->node_gone->max_retries;
        break;
    case GEARRAFT__COMMAND__CMD_CANCEL:
        c->type = STORE_CMD_CANCEL;
        fill_admin(pb->cancel, c->type, &c->u.admin, &tail);
        break;
    case GEARRAFT__COMMAND__CMD_MAXQUEUE:
        c->type = STORE_CMD_MAXQUEUE;
        fill_admin(pb->maxqueue, c->type, &c->u.admin, &tail);
        break;
    case GEARRAFT__COMMAND__CMD_FUNC_CREATE:
        c->type = STORE_CMD_FUNC_CREATE;
        fill_admin(pb->func_create, c->type, &c->u.admin, &tail);
        break;
    case GEARRAFT__COMMAND__CMD_FUNC_DROP:
        c->type = STORE_CMD_FUNC_DROP;
        fill_admin(pb->func_drop, c->type, &c->u.admin, &tail);
        break;
    case GEARRAFT__COMMAND__CMD_MEMBER:
        c->type = STORE_CMD_MEMBER;
        fill_member(pb, &c->u.member);
        break;
    default:
        break;
    }
}

/* protobuf-c allocates through our wrapper, so tests that fail the Nth
 * allocation reach it too, and an unpack that failed for want of memory
 * is told apart from one that failed on bad bytes. */
static void *pb_alloc(void *data, size_t size)
{
    void *p = store__malloc(size);

    if (p == NULL) {
        *(bool *)data = true;
    }
    return p;
}

static void pb_free(void *data, void *p)
{
    (void)data;
    store__free(p);
}

int store_cmd_decode(const uint8_t *bytes, size_t len, struct store_cmd **out)
{
    Gearraft__Command *pb;
    struct plan plan = {0, false};
    struct store_cmd *cmd;
    bool oom = false;
    ProtobufCAllocator alloc = {pb_alloc, pb_free, &oom};
    size_t head;
    int rv;

    if (bytes == NULL && len > 0) {
        rv = STORE_EMALFORMED;
        goto err;
    }
    pb = gearraft__command__unpack(&alloc, len, bytes);
    if (pb == NULL) {
        rv = oom ? STORE_ENOMEM : STORE_EMALFORMED;
        goto err;
    }
    if (pb->version < 1 || pb->version > STORE__CMD_VERSION ||
        !plan_cmd(pb, &plan) || plan.overflow) {
        rv = STORE_EMALFORMED;
        goto err_free_pb;
    }
    /* The byte strings follow the struct, aligned for the function
     * array of a GRAB. */
    head = (sizeof(*cmd) + 15u) & ~(size_t)15u;
    if (plan.bytes > SIZE_MAX - head) {
        rv = STORE_EMALFORMED;
        goto err_free_pb;
    }
    cmd = store__malloc(head + plan.bytes);
    if (cmd == NULL) {
        rv = STORE_ENOMEM;
        goto err_free_pb;
    }
    memset(cmd, 0, sizeof(*cmd));
    if (pb->origin != NULL) {
        cmd->origin.node_id = pb->origin->node_id;
        cmd->origin.incarnation = pb->origin->incarnation;
        cmd->origin.seq = pb->origin->seq;
        cmd->origin.low = pb->origin->low;
    }
    cmd->time_ms = pb->time_ms;
    fill_cmd(pb, cmd, (uint8_t *)cmd + head);
    gearraft__command__free_unpacked(pb, &alloc);
    *out = cmd;
    return 0;

err_free_pb:
    gearraft__command__free_unpacked(pb, &alloc);
err:
    STORE_ASSERT(rv == STORE_EMALFORMED || rv == STORE_ENOMEM);
    return rv;
}

size_t store_cmd_stamp(uint64_t time_ms, uint8_t *out)
{
    size_t n = 0;

    out[n++] = (3u << 3) | 0u; /* field 3 (time_ms), varint */
    do {
        uint8_t b = (uint8_t)(time_ms & 0x7fu);

        time_ms >>= 7;
        out[n++] = (uint8_t)(b | (time_ms != 0 ? 0x80u : 0u));
    } while (time_ms != 0);
    return n;
}

size_t store_cmd_verdict(uint32_t verdict, uint8_t *out)
{
    size_t n = 0;

    out[n++] = (4u << 3) | 0u; /* field 4 (verdict), varint */
    do {
        uint8_t b = (uint8_t)(verdict & 0x7fu);

        verdict >>= 7;
        out[n++] = (uint8_t)(b | (verdict != 0 ? 0x80u : 0u));
    } while (verdict != 0);
    return n;
}

/* Reads a varint at *pos; false past the end or over 10 bytes. */
static bool varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v)
{
    unsigned shift = 0;

    *v = 0;
    while (*pos < len && shift < 64) {
        uint8_t b = p[(*pos)++];

        *v |= (uint64_t)(b & 0x7fu) << shift;
        if ((b & 0x80u) == 0) {
            return true;
        }
        shift += 7;
    }
    return false;
}

/* Steps *pos over the value of a field whose tag was just read; false
 * when the value runs past the end or the wire type is unknown. *v gets
 * a varint's value, or a length-delimited field's length (its bytes then
 * end at *pos). */
static bool skip_value(const uint8_t *p, size_t len, size_t *pos,
                       uint64_t tag, uint64_t *v)
{
    switch (tag & 7u) {
    case 0: /* varint */
        return varint(p, len, pos, v);
    case 1: /* fixed64 */
        if (len - *pos < 8) {
            return false;
        }
        *pos += 8;
        return true;
    case 2: /* length-delimited */
        if (!varint(p, len, pos, v) || *v > len - *pos) {
            return false;
        }
        *pos += (size_t)*v;
        return true;
    case 5: /* fixed32 */
        if (len - *pos < 4) {
            return false;
        }
        *pos += 4;
        return true;
    default:
        return false;
    }
}

bool store_cmd_is_member(const uint8_t *bytes, size_t len)
{
    size_t pos = 0;

    while (pos < len) {
        uint64_t tag;
        uint64_t v;

        if (!varint(bytes, len, &pos, &tag)) {
            return false;
        }
        if (tag >> 3 == GEARRAFT__COMMAND__CMD_MEMBER) {
            return true;
        }
        if (!skip_value(bytes, len, &pos, tag, &v)) {
            return false;
        }
    }
    return false;
}

/* The fields of an Origin message in bytes[from, to). */
static bool origin_fields(const uint8_t *bytes, size_t from, size_t to,
                          struct store_origin *out)
{
    size_t pos = from;

    while (pos < to) {
        uint64_t tag;
        uint64_t v = 0;

        if (!varint(bytes, to, &pos, &tag) ||
            !skip_value(bytes, to, &pos, tag, &v)) {
            return false;
        }
        if ((tag & 7u) != 0) {
            continue;
        }
        switch (tag >> 3) {
        case 1:
            out->node_id = v;
            break;
        case 2:
            out->incarnation = v;
            break;
        case 3:
            out->seq = v;
            break;
        case 4:
            out->low = v;
            break;
        default:
            break;
        }
    }
    return true;
}

bool store_cmd_origin(const uint8_t *bytes, size_t len,
                      struct store_origin *out)
{
    size_t pos = 0;
    bool found = false;

    memset(out, 0, sizeof(*out));
    while (pos < len) {
        uint64_t tag;
        uint64_t v;

        if (!varint(bytes, len, &pos, &tag) ||
            !skip_value(bytes, len, &pos, tag, &v)) {
            return false;
        }
        if (tag >> 3 != 2) {
            continue;
        }
        /* Field 2 (origin) once, length-delimited: a second copy would
         * merge into the first, which this walk does not do. */
        if ((tag & 7u) != 2 || found ||
            !origin_fields(bytes, pos - (size_t)v, pos, out)) {
            return false;
        }
        found = true;
    }
    return found;
}

void store_cmd_free(struct store_cmd *cmd)
{
    store__free(cmd);
}
