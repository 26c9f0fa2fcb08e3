/* SPDX-License-Identifier: BSD-3-Clause
 * node/cluster/peer_codec.c - struct raft_msg <-> proto/raft.proto bytes.
 *
 * Encoding builds the protobuf-c structs on the stack (entries in one
 * temporary array) and packs them into one gr_malloc buffer.  Decoding
 * unpacks with node/'s allocator, checks every number that becomes a C
 * enum or an array bound, copies what the message carries into one block
 * owned by the caller, and frees the unpacked message in the same
 * function, so no Gearraft__ pointer ever escapes this file.
 *
 * Not here: framing and transport (peer.c); semantic validation of the
 * message (raft_step does it, RAFT_EMALFORMED).
 */
#include "node/cluster/peer_codec.h"

#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "proto/raft.pb-c.h"

static void *pb_alloc(void *data, size_t size)
{
    (void)data;
    return gr_malloc(size == 0 ? 1 : size);
}

static void pb_free(void *data, void *p)
{
    (void)data;
    gr_free(p);
}

static ProtobufCAllocator pb_allocator = {pb_alloc, pb_free, NULL};

/* ---- encode ----------------------------------------------------------- */

/* Everything a message may point to while it is packed. */
struct enc {
    Gearraft__RaftVote vote;
    Gearraft__RaftVoteResp vote_resp;
    Gearraft__RaftAppend append;
    Gearraft__RaftAppendResp append_resp;
    Gearraft__RaftHeartbeat heartbeat;
    Gearraft__RaftHeartbeatResp hb_resp;
    Gearraft__RaftSnapshotChunk chunk;
    Gearraft__RaftSnapshotMeta meta;
    Gearraft__RaftConf conf;
    Gearraft__RaftMember members[RAFT_MAX_MEMBERS];
    Gearraft__RaftMember *member_ptrs[RAFT_MAX_MEMBERS];
    Gearraft__RaftSnapshotResp snap_resp;
    Gearraft__RaftTimeoutNow timeout_now;
    Gearraft__RaftEntry *entries;     /* gr_malloc'd */
    Gearraft__RaftEntry **entry_ptrs; /* gr_malloc'd */
};

static int enc_conf(struct enc *e, const struct raft_conf *conf)
{
    if (conf->n_members > RAFT_MAX_MEMBERS) {
        return GR_EINVAL;
    }
    gearraft__raft_conf__init(&e->conf);
    for (size_t i = 0; i < conf->n_members; i++) {
        gearraft__raft_member__init(&e->members[i]);
        e->members[i].id = conf->members[i].id;
        e->members[i].voter = conf->members[i].voter;
        e->member_ptrs[i] = &e->members[i];
    }
    e->conf.n_members = conf->n_members;
    e->conf.members = e->member_ptrs;
    return 0;
}

static int enc_append(struct enc *e, const struct raft_append *a)
{
    size_t n = a->n_entries;

    gearraft__raft_append__init(&e->append);
    e->append.prev_index = a->prev_index;
    e->append.prev_term = a->prev_term;
    e->append.commit = a->commit;
    e->append.ctx = a->ctx;
    if (n == 0) {
        return 0;
    }
    if (a->entries == NULL || n > SIZE_MAX / sizeof(*e->entries)) {
        return GR_EINVAL;
    }
    e->entries = gr_malloc(n * sizeof(*e->entries));
    e->entry_ptrs = gr_malloc(n * sizeof(*e->entry_ptrs));
    if (e->entries == NULL || e->entry_ptrs == NULL) {
        return GR_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const struct raft_entry *src = &a->entries[i];
        Gearraft__RaftEntry *dst = &e->entries[i];

        if (src->type < RAFT_ENTRY_NORMAL ||
            src->type >= RAFT_ENTRY_TYPE_COUNT ||
            (src->data.len > 0 && src->data.base == NULL)) {
            return GR_EINVAL;
        }
        gearraft__raft_entry__init(dst);
        dst->term = src->term;
        dst->index = src->index;
        dst->type = (uint32_t)src->type;
        dst->data.data = src->data.base;
        dst->data.len = src->data.len;
        e->entry_ptrs[i] = dst;
    }
    e->append.n_entries = n;
    e->append.entries = e->entry_ptrs;
    return 0;
}

static int enc_chunk(struct enc *e, const struct raft_snapshot_chunk *c)
{
    int rv = enc_conf(e, &c->meta.conf);

    if (rv != 0) {
        return rv;
    }
    if (c->data.len > 0 && c->data.base == NULL) {
        return GR_EINVAL;
    }
    gearraft__raft_snapshot_meta__init(&e->meta);
    e->meta.index = c->meta.index;
    e->meta.term = c->meta.term;
    e->meta.conf = &e->conf;
    gearraft__raft_snapshot_chunk__init(&e->chunk);
    e->chunk.meta = &e->meta;
    e->chunk.total_len = c->total_len;
    e->chunk.offset = c->offset;
    e->chunk.last = c->last;
    e->chunk.data.data = c->data.base;
    e->chunk.data.len = c->data.len;
    return 0;
}

/* Points pm's body at the right part of e.  Returns 0 or GR_EINVAL. */
static int enc_body(struct enc *e, const struct raft_msg *m,
                    Gearraft__RaftMessage *pm)
{
    int rv = 0;

    switch (m->type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE:
        gearraft__raft_vote__init(&e->vote);
        e->vote.last_index = m->u.vote.last_index;
        e->vote.last_term = m->u.vote.last_term;
        e->vote.transfer = m->u.vote.transfer;
        pm->body_case = GEARRAFT__RAFT_MESSAGE__BODY_VOTE;
        pm->vote = &e->vote;
        break;
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP:
        gearraft__raft_vote_resp__init(&e->vote_resp);
        e->vote_resp.granted = m->u.vote_resp.granted;
        pm->body_case = GEARRAFT__RAFT_MESSAGE__BODY_VOTE_RESP;
        pm->vote_resp = &e->vote_resp;
        break;
    case RAFT_MSG_APPEND:
        rv = enc_append(e, &m->u.append);
        pm->body_case = GEARRAFT__RAFT_MESSAGE__BODY_APPEND;
        pm->append = &e->append;
        break;
    case RAFT_MSG_APPEND_RESP:
        gearraft__raft_append_resp__init(&e->append_resp);
        e->append_resp.reject = m->u.append_resp.reject;
        e->append_resp.index = m->u.append_resp.index;
        e->append_resp.hint_index = m->u.append_resp.hint_index;
        e->append_resp.hint_term = m->u.append_resp.hint_term;
        e->append_resp.ctx = m->u.append_resp.ctx;
        pm->body_case = GEARRAFT__RAFT_MESSAGE__BODY_APPEND_RESP;
        pm->append_resp = &e->append_resp;
        break;
    case RAFT_MSG_HEARTBEAT:
        gearraft__raft_heartbeat__init(&e->heartbeat);
        e->heartbeat.commit = m->u.heartbeat.commit;
        e->heartbeat.ctx = m->u.heartbeat.ctx;
        pm->body_case = GEARRAFT__RAFT_MESSAGE__BODY_HEARTBEAT;
        pm->heartbeat = &e->heartbeat;
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
        gearraft__raft_heartbeat_resp__init(&e->hb_resp);
        e->hb_resp.ctx = m->u.hb_resp.ctx;
        pm->body_case = GEARRAFT__RAFT_MESSAGE__BODY_HB_RESP;
        pm->hb_resp = &e->hb_resp;
        break;
    case RAFT_MSG_SNAPSHOT:
        rv = enc_chunk(e, &m->u.snapshot);
        pm->body_case = GEARRAFT__RAFT_MESSAGE__BODY_SNAPSHOT;
        pm->snapshot = &e->chunk;
        break;
    case RAFT_MSG_SNAPSHOT_RESP:
        gearraft__raft_snapshot_resp__init(&e->snap_resp);
        e->snap_resp.index = m->u.snap_resp.index;
        e->snap_resp.offset = m->u.snap_resp.offset;
        e->snap_resp.done = m->u.snap_resp.done;
        e->snap_resp.reject = m->u.snap_resp.reject;
        pm->body_case = GEARRAFT__RAFT_MESSAGE__BODY_SNAP_RESP;
        pm->snap_resp = &e->snap_resp;
        break;
    case RAFT_MSG_TIMEOUT_NOW:
        gearraft__raft_timeout_now__init(&e->timeout_now);
        pm->body_case = GEARRAFT__RAFT_MESSAGE__BODY_TIMEOUT_NOW;
        pm->timeout_now = &e->timeout_now;
        break;
    default:
        rv = GR_EINVAL;
        break;
    }
    return rv;
}

int peer_msg_encode(const struct raft_msg *msg, struct raft_buf *out)
{
    Gearraft__RaftMessage pm = GEARRAFT__RAFT_MESSAGE__INIT;
    struct enc e;
    uint8_t *buf;
    size_t size;
    int rv;

    memset(&e, 0, sizeof(e));
    pm.version = PEER_WIRE_VERSION;
    pm.type = (uint32_t)msg->type;
    pm.from = msg->from;
    pm.to = msg->to;
    pm.term = msg->term;
    rv = enc_body(&e, msg, &pm);
    if (rv != 0) {
        goto err_free_entries;
    }
    size = gearraft__raft_message__get_packed_size(&pm);
    buf = gr_malloc(size == 0 ? 1 : size);
    if (buf == NULL) {
        rv = GR_ENOMEM;
        goto err_free_entries;
    }
    (void)gearraft__raft_message__pack(&pm, buf);
    gr_free(e.entry_ptrs);
    gr_free(e.entries);
    out->base = buf;
    out->len = size;
    return 0;

err_free_entries:
    gr_free(e.entry_ptrs);
    gr_free(e.entries);
    GR_ASSERT(rv == GR_EINVAL || rv == GR_ENOMEM);
    return rv;
}

/* ---- decode ----------------------------------------------------------- */

/* The body case each message type must carry. */
static Gearraft__RaftMessage__BodyCase body_for(uint32_t type)
{
    switch (type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE:
        return GEARRAFT__RAFT_MESSAGE__BODY_VOTE;
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP:
        return GEARRAFT__RAFT_MESSAGE__BODY_VOTE_RESP;
    case RAFT_MSG_APPEND:
        return GEARRAFT__RAFT_MESSAGE__BODY_APPEND;
    case RAFT_MSG_APPEND_RESP:
        return GEARRAFT__RAFT_MESSAGE__BODY_APPEND_RESP;
    case RAFT_MSG_HEARTBEAT:
        return GEARRAFT__RAFT_MESSAGE__BODY_HEARTBEAT;
    case RAFT_MSG_HEARTBEAT_RESP:
        return GEARRAFT__RAFT_MESSAGE__BODY_HB_RESP;
    case RAFT_MSG_SNAPSHOT:
        return GEARRAFT__RAFT_MESSAGE__BODY_SNAPSHOT;
    case RAFT_MSG_SNAPSHOT_RESP:
        return GEARRAFT__RAFT_MESSAGE__BODY_SNAP_RESP;
    case RAFT_MSG_TIMEOUT_NOW:
        return GEARRAFT__RAFT_MESSAGE__BODY_TIMEOUT_NOW;
    default:
        return GEARRAFT__RAFT_MESSAGE__BODY__NOT_SET;
    }
}

/* Copies the entries into one block: the array, then every data. */
static int dec_append(const Gearraft__RaftAppend *pa, struct raft_append *a)
{
    size_t n = pa->n_entries;
    size_t total;
    struct raft_entry *ents;
    uint8_t *data;

    a->prev_index = pa->prev_index;
    a->prev_term = pa->prev_term;
    a->commit = pa->commit;
    a->ctx = pa->ctx;
    a->n_entries = 0;
    a->entries = NULL;
    if (n == 0) {
        return 0;
    }
    if (n > SIZE_MAX / sizeof(*ents)) {
        return GR_EPROTO;
    }
    total = n * sizeof(*ents);
    for (size_t i = 0; i < n; i++) {
        const Gearraft__RaftEntry *pe = pa->entries[i];

        if (pe == NULL || pe->type < RAFT_ENTRY_NORMAL ||
            pe->type >= RAFT_ENTRY_TYPE_COUNT ||
            pe->data.len > SIZE_MAX - total) {
            return GR_EPROTO;
        }
        total += pe->data.len;
    }
    ents = gr_malloc(total);
    if (ents == NULL) {
        return GR_ENOMEM;
    }
    data = (uint8_t *)(ents + n);
    for (size_t i = 0; i < n; i++) {
        const Gearraft__RaftEntry *pe = pa->entries[i];

        ents[i].term = pe->term;
        ents[i].index = pe->index;
        ents[i].type = (enum raft_entry_type)pe->type;
        ents[i].data.len = pe->data.len;
        ents[i].data.base = pe->data.len > 0 ? data : NULL;
        if (pe->data.len > 0) {
            memcpy(data, pe->data.data, pe->data.len);
            data += pe->data.len;
        }
    }
    a->n_entries = n;
    a->entries = ents;
    return 0;
}

static int dec_chunk(const Gearraft__RaftSnapshotChunk *pc,
                     struct raft_snapshot_chunk *c)
{
    const Gearraft__RaftConf *pconf;

    if (pc->meta == NULL) {
        return GR_EPROTO;
    }
    memset(c, 0, sizeof(*c));
    c->meta.index = pc->meta->index;
    c->meta.term = pc->meta->term;
    pconf = pc->meta->conf;
    if (pconf != NULL) {
        if (pconf->n_members > RAFT_MAX_MEMBERS) {
            return GR_EPROTO;
        }
        for (size_t i = 0; i < pconf->n_members; i++) {
            if (pconf->members[i] == NULL) {
                return GR_EPROTO;
            }
            c->meta.conf.members[i].id = pconf->members[i]->id;
            c->meta.conf.members[i].voter = pconf->members[i]->voter;
        }
        c->meta.conf.n_members = pconf->n_members;
    }
    c->total_len = pc->total_len;
    c->offset = pc->offset;
    c->last = pc->last;
    if (pc->data.len > 0) {
        c->data.base = gr_malloc(pc->data.len);
        if (c->data.base == NULL) {
            return GR_ENOMEM;
        }
        memcpy(c->data.base, pc->data.data, pc->data.len);
        c->data.len = pc->data.len;
    }
    return 0;
}

static int dec_body(const Gearraft__RaftMessage *pm, struct raft_msg *m)
{
    switch (pm->type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE:
        m->u.vote.last_index = pm->vote->last_index;
        m->u.vote.last_term = pm->vote->last_term;
        m->u.vote.transfer = pm->vote->transfer;
        return 0;
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP:
        m->u.vote_resp.granted = pm->vote_resp->granted;
        return 0;
    case RAFT_MSG_APPEND:
        return dec_append(pm->append, &m->u.append);
    case RAFT_MSG_APPEND_RESP:
        m->u.append_resp.reject = pm->append_resp->reject;
        m->u.append_resp.index = pm->append_resp->index;
        m->u.append_resp.hint_index = pm->append_resp->hint_index;
        m->u.append_resp.hint_term = pm->append_resp->hint_term;
        m->u.append_resp.ctx = pm->append_resp->ctx;
        return 0;
    case RAFT_MSG_HEARTBEAT:
        m->u.heartbeat.commit = pm->heartbeat->commit;
        m->u.heartbeat.ctx = pm->heartbeat->ctx;
        return 0;
    case RAFT_MSG_HEARTBEAT_RESP:
        m->u.hb_resp.ctx = pm->hb_resp->ctx;
        return 0;
    case RAFT_MSG_SNAPSHOT:
        return dec_chunk(pm->snapshot, &m->u.snapshot);
    case RAFT_MSG_SNAPSHOT_RESP:
        m->u.snap_resp.index = pm->snap_resp->index;
        m->u.snap_resp.offset = pm->snap_resp->offset;
        m->u.snap_resp.done = pm->snap_resp->done;
        m->u.snap_resp.reject = pm->snap_resp->reject;
        return 0;
    case RAFT_MSG_TIMEOUT_NOW:
        return 0;
    default:
        return GR_EPROTO;
    }
}

int peer_msg_decode(const void *buf, size_t len, struct raft_msg *out)
{
    Gearraft__RaftMessage *pm;
    struct raft_msg m;
    Gearraft__RaftMessage__BodyCase want;
    int rv;

    if (buf == NULL && len > 0) {
        return GR_EPROTO;
    }
    /* protobuf-c cannot tell a parse error from a failed allocation. */
    pm = gearraft__raft_message__unpack(&pb_allocator, len, buf);
    if (pm == NULL) {
        rv = GR_EPROTO;
        goto err;
    }
    want = body_for(pm->type);
    if (pm->version != PEER_WIRE_VERSION ||
        want == GEARRAFT__RAFT_MESSAGE__BODY__NOT_SET ||
        pm->body_case != want || pm->vote == NULL) {
        /* pm->vote aliases every body pointer of the oneof union. */
        rv = GR_EPROTO;
        goto err_free_unpacked;
    }
    memset(&m, 0, sizeof(m));
    m.type = (enum raft_msg_type)pm->type;
    m.from = pm->from;
    m.to = pm->to;
    m.term = pm->term;
    rv = dec_body(pm, &m);
    if (rv != 0) {
        peer_msg_free(&m);
        goto err_free_unpacked;
    }
    gearraft__raft_message__free_unpacked(pm, &pb_allocator);
    *out = m;
    return 0;

err_free_unpacked:
    gearraft__raft_message__free_unpacked(pm, &pb_allocator);
err:
    GR_ASSERT(rv == GR_EPROTO || rv == GR_ENOMEM);
    return rv;
}

void peer_msg_free(struct raft_msg *msg)
{
    if (msg == NULL) {
        return;
    }
    if (msg->type == RAFT_MSG_APPEND) {
        /* One block: the entry array followed by their data. */
        gr_free((void *)msg->u.append.entries);
        msg->u.append.entries = NULL;
        msg->u.append.n_entries = 0;
    } else if (msg->type == RAFT_MSG_SNAPSHOT) {
        gr_free(msg->u.snapshot.data.base);
        msg->u.snapshot.data.base = NULL;
        msg->u.snapshot.data.len = 0;
    }
}
