/* SPDX-License-Identifier: BSD-3-Clause
 * tests/sim/sim_cluster.c - real Raft cores, a virtual clock, a lossy
 * network and crashing disks, checked after every step.
 *
 * The host loop here follows raft.h's THE HOST LOOP to the letter, because
 * node/loop.c must too: a difference between the two would let the
 * simulator pass a core that the daemon drives into a bug.
 *
 * Not here: choosing fault rates (sim_swarm.c), the invariants' bookkeeping
 * (sim_check.c), the command line (sim_main.c).
 */
#include "sim_cluster.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum {
    EV_DELIVER = 1, /* payload: struct raft_msg * (owned clone) */
    EV_TICK,        /* arg: incarnation */
    EV_WRITE_DONE,  /* arg: incarnation */
    EV_RESTART,     /* arg: incarnation that crashed */
    EV_FAULT,
    EV_CLIENT,
    EV_DECOMMISSION, /* node removed by a committed configuration */
    EV_AIM_CRASH     /* arg: incarnation to crash (sim_swarm aim_*) */
};

/* Proposals carry their id in the first 8 bytes, then filler. */
#define PROP_HDR 8
/* Snapshots carry the state and chain hashes, then padding. */
#define SNAP_HDR  16
#define READS_MAX 64

static void oom(void)
{
    fprintf(stderr, "sim: out of memory\n");
    abort();
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);

    if (p == NULL) {
        oom();
    }
    return p;
}

/* ---------------------------------------------------------------------
 * What the cores hold: raft/'s allocator, counted (sim_limits.max_bytes)
 */

/* Every block starts with a header that keeps the block's alignment: its
 * size, the node whose core allocated it, and whether that happened while
 * the core stepped a SNAPSHOT chunk.  Each core's memory is counted apart
 * (check_memory): whoever calls into a core goes through core(), which
 * names the node. */
#define HEAP_HDR alignof(max_align_t)

struct heap_tag {
    uint32_t owner; /* node id */
    uint32_t snap;  /* 1: allocated while stepping a SNAPSHOT chunk */
};

static size_t core_bytes;                        /* every core's */
static size_t node_bytes[SIM_MAX_NODES + 1];     /* each core's */
static size_t node_rx_bytes[SIM_MAX_NODES + 1];  /* ... of heap_tag.snap */
static size_t node_rx_blocks[SIM_MAX_NODES + 1]; /* ... how many */
static struct heap_tag heap_now;                 /* who allocates now */

_Static_assert(HEAP_HDR >= sizeof(size_t) + sizeof(struct heap_tag),
               "the heap header holds size and tag");

static void heap_count(const unsigned char *hdr, bool add)
{
    size_t size;
    struct heap_tag tag;

    memcpy(&size, hdr, sizeof(size));
    memcpy(&tag, hdr + sizeof(size), sizeof(tag));
    if (add) {
        core_bytes += size;
        node_bytes[tag.owner] += size;
        node_rx_bytes[tag.owner] += tag.snap ? size : 0;
        node_rx_blocks[tag.owner] += tag.snap;
    } else {
        core_bytes -= size;
        node_bytes[tag.owner] -= size;
        node_rx_bytes[tag.owner] -= tag.snap ? size : 0;
        node_rx_blocks[tag.owner] -= tag.snap;
    }
}

static void *heap_malloc(void *data, size_t size)
{
    unsigned char *p;

    (void)data;
    if (size > SIZE_MAX - HEAP_HDR) {
        return NULL;
    }
    p = malloc(HEAP_HDR + size);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, &size, sizeof(size));
    memcpy(p + sizeof(size), &heap_now, sizeof(heap_now));
    heap_count(p, true);
    return p + HEAP_HDR;
}

static void *heap_calloc(void *data, size_t nmemb, size_t size)
{
    void *p;

    if (size != 0 && nmemb > SIZE_MAX / size) {
        return NULL;
    }
    p = heap_malloc(data, nmemb * size);
    if (p != NULL) {
        memset(p, 0, nmemb * size);
    }
    return p;
}

static void heap_free(void *data, void *ptr)
{
    unsigned char *p = ptr;

    (void)data;
    if (p == NULL) {
        return;
    }
    p -= HEAP_HDR;
    heap_count(p, false);
    free(p);
}

static void *heap_realloc(void *data, void *ptr, size_t size)
{
    unsigned char *p = ptr;
    unsigned char *q;

    if (p == NULL) {
        return heap_malloc(data, size);
    }
    if (size > SIZE_MAX - HEAP_HDR) {
        return NULL;
    }
    p -= HEAP_HDR;
    heap_count(p, false);
    q = realloc(p, HEAP_HDR + size);
    if (q == NULL) {
        heap_count(p, true);
        return NULL;
    }
    memcpy(q, &size, sizeof(size)); /* the tag stays the first one's */
    heap_count(q, true);
    return q + HEAP_HDR;
}

/* The core of node n, about to be called: what it allocates is n's. */
static struct raft *core(struct sim_node *n)
{
    heap_now.owner = (uint32_t)n->id;
    heap_now.snap = 0;
    return n->r;
}

static void heap_count_cores(void)
{
    static const struct raft_heap counting = {NULL, heap_malloc, heap_calloc,
                                              heap_realloc, heap_free};

    raft_heap_set(&counting);
}

/* ---------------------------------------------------------------------
 * Encoding of little records (proposal ids, snapshot hashes)
 */

static void put64(uint8_t *p, uint64_t v)
{
    int i;

    for (i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static uint64_t entry_hash(enum raft_entry_type type, const void *data,
                           size_t len)
{
    return sim_hash_mix(sim_hash_bytes(data, len), (uint64_t)type);
}

/* ---------------------------------------------------------------------
 * Trace formats: static strings with '%' for each number.
 */

static char trace_fmts[RAFT_TRACE_TYPE_COUNT + 1][64];
static bool trace_fmts_ready;

static void trace_fmts_init(void)
{
    int t;

    if (trace_fmts_ready) {
        return;
    }
    for (t = 0; t <= RAFT_TRACE_TYPE_COUNT; t++) {
        snprintf(trace_fmts[t], sizeof(trace_fmts[t]),
                 "%s term=%% index=%% peer=%%", raft_trace_type_name(t));
    }
    trace_fmts_ready = true;
}

static const char *recv_fmt(enum raft_msg_type t)
{
    switch (t) {
    case RAFT_MSG_PREVOTE:
        return "recv PREVOTE from=% term=% last_index=% last_term=%";
    case RAFT_MSG_PREVOTE_RESP:
        return "recv PREVOTE_RESP from=% term=% granted=%";
    case RAFT_MSG_VOTE:
        return "recv VOTE from=% term=% last_index=% last_term=%";
    case RAFT_MSG_VOTE_RESP:
        return "recv VOTE_RESP from=% term=% granted=%";
    case RAFT_MSG_APPEND:
        return "recv APPEND from=% term=% prev=% n=%";
    case RAFT_MSG_APPEND_RESP:
        return "recv APPEND_RESP from=% term=% index=% reject=%";
    case RAFT_MSG_HEARTBEAT:
        return "recv HEARTBEAT from=% term=% commit=%";
    case RAFT_MSG_HEARTBEAT_RESP:
        return "recv HEARTBEAT_RESP from=% term=%";
    case RAFT_MSG_SNAPSHOT:
        return "recv SNAPSHOT from=% term=% index=% offset=%";
    case RAFT_MSG_SNAPSHOT_RESP:
        return "recv SNAPSHOT_RESP from=% term=% offset=% done=%";
    case RAFT_MSG_TIMEOUT_NOW:
        return "recv TIMEOUT_NOW from=% term=%";
    default:
        return "recv ? from=% term=%";
    }
}

static void trace_recv(struct sim_cluster *c, const struct raft_msg *m)
{
    uint64_t a = 0;
    uint64_t b = 0;

    switch (m->type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE:
        a = m->u.vote.last_index;
        b = m->u.vote.last_term;
        break;
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP:
        a = m->u.vote_resp.granted;
        break;
    case RAFT_MSG_APPEND:
        a = m->u.append.prev_index;
        b = m->u.append.n_entries;
        break;
    case RAFT_MSG_APPEND_RESP:
        a = m->u.append_resp.index;
        b = m->u.append_resp.reject;
        break;
    case RAFT_MSG_HEARTBEAT:
        a = m->u.heartbeat.commit;
        break;
    case RAFT_MSG_SNAPSHOT:
        a = m->u.snapshot.meta.index;
        b = m->u.snapshot.offset;
        break;
    case RAFT_MSG_SNAPSHOT_RESP:
        a = m->u.snap_resp.offset;
        b = m->u.snap_resp.done;
        break;
    default:
        break;
    }
    sim_trace_add(&c->trace, c->q.now, (int)m->to, recv_fmt(m->type), m->from,
                  m->term, a, b);
}

static void trace_sim(struct sim_cluster *c, int node, const char *fmt,
                      uint64_t a, uint64_t b)
{
    sim_trace_add(&c->trace, c->q.now, node, fmt, a, b, 0, 0);
}

static void on_raft_trace(void *arg, const struct raft_trace_event *ev)
{
    struct sim_node *n = arg;
    struct sim_cluster *c = n->c;
    int t = (int)ev->type;

    if (t < 0 || t > RAFT_TRACE_TYPE_COUNT) {
        t = RAFT_TRACE_TYPE_COUNT;
    }
    sim_trace_add(&c->trace, c->q.now, (int)ev->id, trace_fmts[t], ev->term,
                  ev->index, ev->peer, 0);
    if (ev->type == RAFT_TRACE_BECOME_LEADER) {
        n->became_leader = true;
        n->check_votes = true;
        n->leading = true;
        c->stats.elections++;
    }
    if (ev->type == RAFT_TRACE_BECOME_FOLLOWER ||
        ev->type == RAFT_TRACE_BECOME_PRE_CANDIDATE ||
        ev->type == RAFT_TRACE_BECOME_CANDIDATE) {
        n->leading = false;
    }
    if (ev->type == RAFT_TRACE_COMMIT && n->leading &&
        ev->index > n->led_commit) {
        /* Checked in check_node, once the step is over: a leader that
         * committed its own removal has stepped down by then. */
        n->led_commit = ev->index;
    }
    if (ev->type == RAFT_TRACE_VOTE_GRANTED) {
        if (c->n_votes == c->cap_votes) {
            size_t cap = c->cap_votes == 0 ? 64 : c->cap_votes * 2;
            struct sim_vote *v = realloc(c->votes, cap * sizeof(*v));

            if (v == NULL) {
                oom();
            }
            c->votes = v;
            c->cap_votes = cap;
        }
        c->votes[c->n_votes].term = ev->term;
        c->votes[c->n_votes].voter = ev->id;
        c->votes[c->n_votes].candidate = ev->peer;
        c->n_votes++;
    }
}

/* ---------------------------------------------------------------------
 * Messages: deep copies travel through the event queue.
 */

static size_t align_up(size_t n)
{
    size_t a = alignof(max_align_t);

    return (n + a - 1) / a * a;
}

/* Bytes of a message's clone: the message, its entries, their data. */
static size_t msg_size(const struct raft_msg *m)
{
    size_t n_ent = 0;
    size_t bytes = 0;
    size_t k;

    if (m->type == RAFT_MSG_APPEND) {
        n_ent = m->u.append.n_entries;
        for (k = 0; k < n_ent; k++) {
            bytes += m->u.append.entries[k].data.len;
        }
    } else if (m->type == RAFT_MSG_SNAPSHOT) {
        bytes = m->u.snapshot.data.len;
    }
    return align_up(sizeof(*m)) + n_ent * sizeof(struct raft_entry) + bytes + 1;
}

/* One allocation holding the message, its entries and all their bytes;
 * caller frees with msg_free(). */
static struct raft_msg *msg_clone(struct sim_cluster *c,
                                  const struct raft_msg *m)
{
    size_t n_ent = m->type == RAFT_MSG_APPEND ? m->u.append.n_entries : 0;
    size_t size = msg_size(m);
    size_t k;
    size_t off = align_up(sizeof(*m));
    struct raft_msg *copy;
    struct raft_entry *ents;
    uint8_t *p;

    copy = malloc(size);
    if (copy == NULL) {
        oom();
    }
    c->msg_bytes += size;
    *copy = *m;
    ents = (struct raft_entry *)(void *)((uint8_t *)copy + off);
    p = (uint8_t *)(ents + n_ent);
    if (m->type == RAFT_MSG_APPEND) {
        for (k = 0; k < n_ent; k++) {
            const struct raft_entry *e = &m->u.append.entries[k];

            ents[k] = *e;
            ents[k].data.base = p;
            if (e->data.len > 0) {
                memcpy(p, e->data.base, e->data.len);
            }
            p += e->data.len;
        }
        copy->u.append.entries = n_ent > 0 ? ents : NULL;
    } else if (m->type == RAFT_MSG_SNAPSHOT) {
        if (m->u.snapshot.data.len > 0) {
            memcpy(p, m->u.snapshot.data.base, m->u.snapshot.data.len);
        }
        copy->u.snapshot.data.base = p;
    }
    return copy;
}

static void msg_free(struct sim_cluster *c, struct raft_msg *m)
{
    c->msg_bytes -= msg_size(m);
    free(m);
}

/* raft.h: an answer that vouches for persisted state (a granted vote, an
 * acknowledged append) leaves only once that state is durable, else a
 * crash could take back what the answer promised (a vote given twice in
 * one term, an entry counted for commit that no disk holds). */
static bool vouched_durable(struct sim_cluster *c, const struct sim_node *n,
                            const struct raft_msg *m)
{
    const struct sim_image *im = &n->disk.durable;

    if (m->type == RAFT_MSG_VOTE_RESP && m->u.vote_resp.granted &&
        (im->term != m->term || im->vote != m->to)) {
        return sim_check_fail(
            &c->check,
            "vote durability: node %llu sent its vote in "
            "term %llu for %llu before its disk held it "
            "(disk: term %llu vote %llu)",
            (unsigned long long)n->id, (unsigned long long)m->term,
            (unsigned long long)m->to, (unsigned long long)im->term,
            (unsigned long long)im->vote);
    }
    if (m->type == RAFT_MSG_APPEND_RESP && !m->u.append_resp.reject &&
        sim_image_last_index(im) < m->u.append_resp.index) {
        return sim_check_fail(&c->check,
                              "ack durability: node %llu acknowledged index "
                              "%llu before its disk held it (disk ends at "
                              "%llu)",
                              (unsigned long long)n->id,
                              (unsigned long long)m->u.append_resp.index,
                              (unsigned long long)sim_image_last_index(im));
    }
    return true;
}

/* A snapshot chunk leaves without bytes (raft.h, THE HOST LOOP, step a):
 * the host fills them from its snapshot file, which must be the one the
 * chunk names.  Returns false (a failed check) if it is not. */
static bool fill_chunk(struct sim_cluster *c, struct sim_node *n,
                       struct raft_msg *m, uint8_t **buf)
{
    struct raft_snapshot_chunk *ch = &m->u.snapshot;
    const struct sim_snap *have = &n->disk.cache.snap;

    if (ch->data.base != NULL || ch->meta.index != have->meta.index ||
        ch->meta.term != have->meta.term || ch->total_len != have->pad ||
        ch->offset + ch->data.len > have->pad) {
        return sim_check_fail(
            &c->check,
            "node %llu sends a chunk [%llu, +%zu) of snapshot %llu/%llu "
            "(%llu bytes, data %s) but holds snapshot %llu/%llu (%zu bytes)",
            (unsigned long long)n->id, (unsigned long long)ch->offset,
            ch->data.len, (unsigned long long)ch->meta.index,
            (unsigned long long)ch->meta.term,
            (unsigned long long)ch->total_len,
            ch->data.base != NULL ? "from the core" : "to fill",
            (unsigned long long)have->meta.index,
            (unsigned long long)have->meta.term, have->pad);
    }
    *buf = xcalloc(1, ch->data.len);
    sim_snap_encode(have, ch->offset, ch->data.len, *buf);
    ch->data.base = ch->data.len > 0 ? *buf : NULL;
    return true;
}

static void send_msgs(struct sim_cluster *c, struct sim_node *n,
                      const struct raft_msg *msgs, size_t n_msgs)
{
    size_t i;

    for (i = 0; i < n_msgs; i++) {
        struct raft_msg filled = msgs[i];
        const struct raft_msg *m = &filled;
        uint8_t *buf = NULL;
        uint64_t delays[2];
        int copies;
        int k;

        if (m->type == RAFT_MSG_SNAPSHOT && !fill_chunk(c, n, &filled, &buf)) {
            return;
        }

        if (m->from != n->id) {
            sim_check_fail(&c->check,
                           "node %llu sent a message claiming to be from "
                           "%llu",
                           (unsigned long long)n->id,
                           (unsigned long long)m->from);
            return;
        }
        if (!vouched_durable(c, n, m)) {
            free(buf);
            return;
        }
        copies =
            sim_net_route(&c->net, &c->rng, (int)m->from, (int)m->to, delays);
        for (k = 0; k < copies; k++) {
            struct sim_event ev = {0};

            ev.kind = EV_DELIVER;
            ev.node = (int)m->to;
            ev.payload = msg_clone(c, m);
            sim_queue_push(&c->q, delays[k], ev);
        }
        free(buf);
    }
}

/* ---------------------------------------------------------------------
 * Nodes
 */

static struct sim_node *node_get(struct sim_cluster *c, raft_id id)
{
    if (id < 1 || id > SIM_MAX_NODES) {
        return NULL;
    }
    return &c->nodes[id];
}

static void inbox_clear(struct sim_cluster *c, struct sim_node *n)
{
    size_t k;

    for (k = 0; k < n->n_inbox; k++) {
        msg_free(c, n->inbox[k]);
    }
    n->n_inbox = 0;
}

static void inbox_push(struct sim_node *n, struct raft_msg *m)
{
    if (n->n_inbox == n->cap_inbox) {
        size_t cap = n->cap_inbox == 0 ? 16 : n->cap_inbox * 2;
        struct raft_msg **p = realloc(n->inbox, cap * sizeof(*p));

        if (p == NULL) {
            oom();
        }
        n->inbox = p;
        n->cap_inbox = cap;
    }
    n->inbox[n->n_inbox++] = m;
}

static struct raft_msg *inbox_pop(struct sim_node *n)
{
    struct raft_msg *m = n->inbox[0];

    memmove(n->inbox, n->inbox + 1, (n->n_inbox - 1) * sizeof(*n->inbox));
    n->n_inbox--;
    return m;
}

static void schedule_wake(struct sim_cluster *c, struct sim_node *n)
{
    uint64_t w;
    struct sim_event ev = {0};

    if (!n->up || n->busy) {
        return; /* a blocked host sleeps on its disk, not its timers */
    }
    w = raft_next_wakeup(n->r);
    if (w < c->q.now) {
        w = c->q.now;
    }
    if (w == n->wake_at) {
        return;
    }
    n->wake_at = w;
    ev.kind = EV_TICK;
    ev.node = (int)n->id;
    ev.arg = n->incarnation;
    sim_queue_push(&c->q, w - c->q.now, ev);
}

/* config.fetch (raft.h): entries lo.. read back from the node's disk as
 * the running node sees it. */
static int sim_fetch(void *arg, raft_index lo, raft_index hi, size_t max_bytes,
                     struct raft_entry *out, size_t max_n, size_t *n)
{
    struct sim_node *nd = arg;
    size_t k = 0;
    size_t bytes = 0;

    for (raft_index i = lo; i <= hi && k < max_n; i++) {
        const struct sim_dentry *d = sim_image_entry(&nd->disk.cache, i);

        if (d == NULL || (k >= 2 && bytes + d->len > max_bytes)) {
            break;
        }
        bytes += k >= 1 ? d->len : 0;
        out[k].index = d->index;
        out[k].term = d->term;
        out[k].type = d->type;
        out[k].data.base = d->data;
        out[k].data.len = d->len;
        k++;
    }
    if (k == 0) {
        nd->c->stats.fetch_fails++;
        trace_sim(nd->c, (int)nd->id, "fetch failed lo=% hi=%", lo, hi);
        return -1;
    }
    nd->c->stats.fetches += k;
    *n = k;
    return 0;
}

static int node_start(struct sim_cluster *c, struct sim_node *n)
{
    const struct sim_image *im = &n->disk.durable;
    struct raft_config cfg = c->cfg;
    struct raft_restore rs;
    struct raft_snapshot snap;
    struct raft_entry *ents;
    size_t k;
    int rv;

    memset(&rs, 0, sizeof(rs));
    cfg.id = n->id;
    cfg.initial_conf = n->initial_conf;
    cfg.seed = sim_rng_next(&c->rng);
    cfg.trace = on_raft_trace;
    cfg.trace_arg = n;
    cfg.fetch = sim_fetch;
    cfg.fetch_arg = n;
    rs.hard_state.term = im->term;
    rs.hard_state.vote = im->vote;
    rs.hard_state.commit = im->commit;
    if (im->snap.meta.index > 0) {
        snap.meta = im->snap.meta;
        snap.len = im->snap.pad;
        rs.snapshot = &snap;
    }
    ents = xcalloc(im->n_ents, sizeof(*ents));
    for (k = 0; k < im->n_ents; k++) {
        ents[k].term = im->ents[k].term;
        ents[k].index = im->ents[k].index;
        ents[k].type = im->ents[k].type;
        ents[k].data.base = im->ents[k].data;
        ents[k].data.len = im->ents[k].len;
    }
    rs.entries = ents;
    rs.n_entries = im->n_ents;
    if (c->durable_apply && im->applied > im->snap.meta.index) {
        rs.applied = im->applied;
        n->applied = im->applied;
        n->state = im->applied_state;
        n->applied_chain = im->applied_chain;
        n->conf = im->applied_conf;
    } else {
        rs.applied = im->snap.meta.index;
        n->applied = im->snap.meta.index;
        n->state = im->snap.state;
        n->applied_chain = im->snap.chain;
        n->conf =
            im->snap.meta.index > 0 ? im->snap.meta.conf : n->initial_conf;
    }
    heap_now.owner = (uint32_t)n->id;
    heap_now.snap = 0;
    rv = raft_new(&cfg, &rs, c->q.now, &n->r);
    free(ents);
    if (rv != 0) {
        sim_check_fail(&c->check,
                       "node %llu failed to start: %s (disk: term=%llu "
                       "vote=%llu commit=%llu snapshot=%llu/%llu log=%llu.."
                       "%llu applied=%llu)",
                       (unsigned long long)n->id, raft_strerror(rv),
                       (unsigned long long)im->term,
                       (unsigned long long)im->vote,
                       (unsigned long long)im->commit,
                       (unsigned long long)im->snap.meta.index,
                       (unsigned long long)im->snap.meta.term,
                       (unsigned long long)(im->n_ents ? im->first : 0),
                       (unsigned long long)sim_image_last_index(im),
                       (unsigned long long)rs.applied);
        return rv;
    }
    n->started = true;
    n->up = true;
    n->busy = false;
    n->incarnation++;
    n->wake_at = UINT64_MAX;
    n->last_term = raft_current_term(n->r);
    n->last_commit = raft_commit_index(n->r);
    n->became_leader = false;
    n->leading = false;
    n->led_commit = 0;
    n->led_checked = 0;
    n->keep_from = rs.applied;
    n->installing = false;
    n->want_snapshot = false;
    schedule_wake(c, n);
    return 0;
}

static void node_stop(struct sim_cluster *c, struct sim_node *n, bool tear)
{
    uint64_t before;
    size_t k;

    if (!n->up) {
        return;
    }
    raft_free(core(n)); /* an unacknowledged batch dies with it */
    n->r = NULL;
    if (node_bytes[n->id] != 0) {
        sim_check_fail(&c->check,
                       "node %llu's core left %zu bytes allocated after "
                       "raft_free",
                       (unsigned long long)n->id, node_bytes[n->id]);
    }
    n->up = false;
    n->busy = false;
    inbox_clear(c, n);
    n->n_props = 0; /* its clients see the connection drop */
    for (k = c->n_reads; k > 0; k--) {
        if (c->reads[k - 1].node == n->id) { /* so do its readers */
            c->reads[k - 1] = c->reads[--c->n_reads];
        }
    }
    before = n->disk.n_torn;
    sim_disk_crash(&n->disk, &c->rng, tear);
    c->torn += n->disk.n_torn - before;
    n->wake_at = UINT64_MAX;
}

/* ---------------------------------------------------------------------
 * Applying committed entries (the simulated state machine)
 */

static bool conf_has(const struct raft_conf *conf, raft_id id)
{
    return raft_conf_find(conf, id) != NULL;
}

/* A configuration committed: nodes it no longer holds are shut down for
 * good a little later (an operator decommissions them; until then the
 * removed server runs on, as it would in production, and must not
 * disturb the cluster).  Their ids are never reused. */
static void conf_committed(struct sim_cluster *c, uint64_t index,
                           const struct raft_conf *conf)
{
    raft_id id;

    if (index <= c->conf_index) {
        return;
    }
    c->conf_index = index;
    c->conf = *conf;
    for (id = 1; id <= SIM_MAX_NODES; id++) {
        struct sim_node *n = &c->nodes[id];

        if (n->member && !conf_has(conf, id) && !n->removed) {
            struct sim_event ev = {0};

            ev.kind = EV_DECOMMISSION;
            ev.node = (int)id;
            sim_queue_push(
                &c->q, sim_rng_range(&c->rng, 0, 3 * c->sw.election_ms), ev);
        }
        n->member = conf_has(conf, id) && !n->removed;
    }
}

static void decommission(struct sim_cluster *c, struct sim_node *n)
{
    if (n->removed || conf_has(&c->conf, n->id)) {
        return;
    }
    trace_sim(c, (int)n->id, "decommissioned", 0, 0);
    node_stop(c, n, false);
    n->removed = true;
    sim_disk_close(&n->disk);
}

static void record_ack(struct sim_cluster *c, struct sim_node *n,
                       uint64_t prop_id, uint64_t index, uint64_t chain)
{
    size_t k;

    if (c->n_acked == c->cap_acked) {
        size_t cap = c->cap_acked == 0 ? 256 : c->cap_acked * 2;
        struct sim_prop *a = realloc(c->acked, cap * sizeof(*a));
        uint64_t *ch;

        if (a == NULL) {
            oom();
        }
        c->acked = a;
        ch = realloc(c->acked_chain, cap * sizeof(*ch));
        if (ch == NULL) {
            oom();
        }
        c->acked_chain = ch;
        c->cap_acked = cap;
    }
    c->acked[c->n_acked].id = prop_id;
    c->acked[c->n_acked].index = index;
    c->acked_chain[c->n_acked] = chain;
    c->n_acked++;
    c->stats.acked++;
    if (index > c->ack_max) {
        c->ack_max = index;
    }
    for (k = 0; k < SIM_LIVE_PROPS; k++) {
        if (c->live[k].id == prop_id) {
            c->live_acked[k] = true;
        }
    }
    trace_sim(c, (int)n->id, "ack prop=% index=%", prop_id, index);
}

static void resolve_props(struct sim_cluster *c, struct sim_node *n,
                          const struct raft_entry *e, uint64_t chain)
{
    size_t k = 0;

    while (k < n->n_props) {
        struct sim_prop *p = &n->props[k];

        if (p->index != e->index) {
            k++;
            continue;
        }
        if (e->type == RAFT_ENTRY_NORMAL && e->data.len >= PROP_HDR &&
            get64(e->data.base) == p->id) {
            record_ack(c, n, p->id, e->index, chain);
        } else {
            c->stats.lost++;
            trace_sim(c, (int)n->id, "lost prop=% index=%", p->id, e->index);
        }
        n->props[k] = n->props[--n->n_props];
    }
}

static bool apply_entry(struct sim_cluster *c, struct sim_node *n,
                        const struct raft_entry *e)
{
    const struct sim_dentry *d;
    uint64_t chain;

    if (e->index != n->applied + 1) {
        return sim_check_fail(&c->check,
                              "node %llu was handed index %llu to apply "
                              "after applying %llu",
                              (unsigned long long)n->id,
                              (unsigned long long)e->index,
                              (unsigned long long)n->applied);
    }
    d = sim_image_entry(&n->disk.cache, e->index);
    if (d == NULL || d->term != e->term) {
        return sim_check_fail(&c->check,
                              "node %llu applies index %llu term %llu "
                              "which its disk does not hold",
                              (unsigned long long)n->id,
                              (unsigned long long)e->index,
                              (unsigned long long)e->term);
    }
    chain = d->chain;
    if (!sim_check_committed(&c->check, (int)n->id, e->index, e->term, chain)) {
        return false;
    }
    n->state =
        sim_hash_mix(n->state, entry_hash(e->type, e->data.base, e->data.len));
    n->applied = e->index;
    n->applied_chain = chain;
    if (!sim_check_applied(&c->check, (int)n->id, e->index, n->state)) {
        return false;
    }
    if (e->type == RAFT_ENTRY_CONF) {
        struct raft_conf conf;

        if (raft_conf_decode(e->data.base, e->data.len, &conf) != 0) {
            return sim_check_fail(&c->check,
                                  "node %llu applies a CONF entry at %llu "
                                  "that does not decode",
                                  (unsigned long long)n->id,
                                  (unsigned long long)e->index);
        }
        n->conf = conf;
        c->stats.conf_changes += e->index > c->conf_index ? 1 : 0;
        conf_committed(c, e->index, &conf);
    }
    resolve_props(c, n, e, chain);
    if (c->durable_apply && n->up) {
        sim_disk_set_applied(&n->disk, n->applied, n->state, chain, &n->conf);
    }
    return true;
}

static bool install_snapshot(struct sim_cluster *c, struct sim_node *n,
                             const struct sim_snap *s)
{
    if (s->meta.index < n->applied) {
        return sim_check_fail(&c->check,
                              "node %llu installs snapshot %llu after "
                              "applying %llu: the state machine would go "
                              "back",
                              (unsigned long long)n->id,
                              (unsigned long long)s->meta.index,
                              (unsigned long long)n->applied);
    }
    if (!sim_check_entry(&c->check, (int)n->id, s->meta.index, s->meta.term,
                         s->chain) ||
        !sim_check_committed(&c->check, (int)n->id, s->meta.index, s->meta.term,
                             s->chain) ||
        !sim_check_applied(&c->check, (int)n->id, s->meta.index, s->state)) {
        return false;
    }
    n->applied = s->meta.index;
    n->state = s->state;
    n->applied_chain = s->chain;
    n->conf = s->meta.conf;
    n->n_props = 0; /* what they waited for is inside the snapshot */
    c->stats.installs++;
    conf_committed(c, s->meta.index, &s->meta.conf);
    return true;
}

/* ---------------------------------------------------------------------
 * The host loop
 */

static bool check_read(struct sim_cluster *c, struct sim_node *n,
                       const struct raft_read *rd)
{
    size_t k;

    for (k = 0; k < c->n_reads; k++) {
        if (c->reads[k].ctx == rd->ctx) {
            uint64_t min = c->reads[k].min;

            c->reads[k] = c->reads[--c->n_reads];
            if (rd->status == 0 && rd->index < min) {
                return sim_check_fail(
                    &c->check,
                    "read index: node %llu released read "
                    "%llu at index %llu, but index %llu "
                    "was acknowledged before it started",
                    (unsigned long long)n->id, (unsigned long long)rd->ctx,
                    (unsigned long long)rd->index, (unsigned long long)min);
            }
            if (rd->status == 0) {
                c->stats.reads++;
            }
            return true;
        }
    }
    return true; /* a read from before a restart, or a duplicate */
}

/* Steps b-e of THE HOST LOOP once the write of the batch completed. */
static void finish_batch(struct sim_cluster *c, struct sim_node *n)
{
    struct raft_ready *rd = &n->rd;
    size_t k;

    sim_disk_complete(&n->disk);
    if (n->installing) {
        n->installing = false;
        if (!install_snapshot(c, n, &n->install)) {
            return;
        }
    }
    send_msgs(c, n, rd->msgs_after_persist, rd->n_msgs_after_persist);
    for (k = 0; k < rd->n_committed; k++) {
        if (!apply_entry(c, n, &rd->committed[k])) {
            return;
        }
        if (!n->up) {
            return; /* it applied its own removal and was shut down */
        }
    }
    for (k = 0; k < rd->n_reads; k++) {
        if (!check_read(c, n, &rd->reads[k])) {
            return;
        }
    }
    n->want_snapshot |= rd->want_snapshot;
    raft_advance(core(n), rd);
    n->busy = false;
    n->keep_from = sim_image_last_index(&n->disk.cache);
    if (n->applied < n->keep_from) {
        n->keep_from = n->applied;
    }
    raft_applied(core(n), n->applied);
    if ((c->snapshot_every > 0 &&
         n->applied >= raft_snapshot_index(n->r) + c->snapshot_every) ||
        (n->want_snapshot && n->applied > raft_snapshot_index(n->r))) {
        sim_cluster_snapshot(c, n->id);
    }
}

/* The received snapshot file, read back whole for the install the batch
 * asks for: it must be complete and hold exactly the bytes of the
 * leader's snapshot it names (which the chunks carried). */
static bool read_received(struct sim_cluster *c, struct sim_node *n,
                          const struct raft_snapshot *want, struct sim_snap *s)
{
    const struct sim_rxfile *f = &n->disk.rx;
    uint8_t *expect;
    bool same;

    memset(s, 0, sizeof(*s));
    if (f->meta.index != want->meta.index || f->meta.term != want->meta.term ||
        f->len != want->len || f->len < SNAP_HDR) {
        return sim_check_fail(
            &c->check,
            "node %llu installs snapshot %llu/%llu (%llu "
            "bytes) but received %llu/%llu (%zu bytes)",
            (unsigned long long)n->id, (unsigned long long)want->meta.index,
            (unsigned long long)want->meta.term, (unsigned long long)want->len,
            (unsigned long long)f->meta.index, (unsigned long long)f->meta.term,
            f->len);
    }
    s->meta = want->meta;
    s->pad = f->len;
    s->state = get64(f->buf);
    s->chain = get64(f->buf + 8);
    expect = xcalloc(1, f->len);
    sim_snap_encode(s, 0, f->len, expect);
    same = memcmp(expect, f->buf, f->len) == 0;
    free(expect);
    if (!same) {
        return sim_check_fail(&c->check,
                              "node %llu received snapshot %llu with bytes "
                              "that are not the leader's",
                              (unsigned long long)n->id,
                              (unsigned long long)want->meta.index);
    }
    return true;
}

/* Turns the batch's persistence work into one disk write.  Returns false
 * if there is nothing to persist. */
static bool build_write(struct sim_cluster *c, struct sim_node *n,
                        struct sim_write *w)
{
    const struct raft_ready *rd = &n->rd;
    const struct sim_image *im = &n->disk.cache;
    uint64_t prev_chain = 0;
    size_t k;

    memset(w, 0, sizeof(*w));
    if (rd->snapshot_chunk != NULL) {
        if (!sim_disk_rx_write(&n->disk, rd->snapshot_chunk)) {
            sim_check_fail(&c->check,
                           "node %llu was handed chunk [%llu, +%zu) of "
                           "snapshot %llu, which does not continue its "
                           "file (%zu bytes of %llu)",
                           (unsigned long long)n->id,
                           (unsigned long long)rd->snapshot_chunk->offset,
                           rd->snapshot_chunk->data.len,
                           (unsigned long long)rd->snapshot_chunk->meta.index,
                           n->disk.rx.len,
                           (unsigned long long)n->disk.rx.meta.index);
            return false;
        }
        w->has_chunk = true;
        c->stats.chunks++;
    }
    if (rd->snapshot != NULL) {
        if (!read_received(c, n, rd->snapshot, &w->snap)) {
            return false;
        }
        w->has_snap = true;
        n->install = w->snap;
        n->installing = true;
    }
    w->truncate_from = rd->truncate_from;
    if (rd->n_entries > 0) {
        uint64_t first = rd->entries[0].index;

        if (w->has_snap) {
            if (first != w->snap.meta.index + 1) {
                sim_check_fail(&c->check,
                               "node %llu appends index %llu after "
                               "installing snapshot %llu",
                               (unsigned long long)n->id,
                               (unsigned long long)first,
                               (unsigned long long)w->snap.meta.index);
                return false;
            }
            prev_chain = w->snap.chain;
        } else {
            uint64_t last = sim_image_last_index(im);

            if (rd->truncate_from != 0 && rd->truncate_from <= last) {
                last = rd->truncate_from - 1;
            }
            if (first != last + 1 || !sim_image_chain(im, last, &prev_chain)) {
                sim_check_fail(&c->check,
                               "node %llu appends index %llu to a log "
                               "ending at %llu",
                               (unsigned long long)n->id,
                               (unsigned long long)first,
                               (unsigned long long)last);
                return false;
            }
        }
        w->ents = xcalloc(rd->n_entries, sizeof(*w->ents));
        w->n_ents = rd->n_entries;
        for (k = 0; k < rd->n_entries; k++) {
            const struct raft_entry *e = &rd->entries[k];
            struct sim_dentry *d = &w->ents[k];

            d->index = e->index;
            d->term = e->term;
            d->type = e->type;
            d->len = e->data.len;
            d->data = xcalloc(1, e->data.len);
            if (e->data.len > 0) {
                memcpy(d->data, e->data.base, e->data.len);
            }
            prev_chain =
                sim_hash_mix(sim_hash_mix(prev_chain, e->term),
                             entry_hash(e->type, e->data.base, e->data.len));
            d->chain = prev_chain;
            if (!sim_check_entry(&c->check, (int)n->id, e->index, e->term,
                                 d->chain)) {
                return false;
            }
        }
    }
    if (rd->has_hard_state) {
        w->has_hs = true;
        w->term = rd->hard_state.term;
        w->vote = rd->hard_state.vote;
        w->commit = rd->hard_state.commit;
    }
    return w->has_snap || w->has_chunk || w->truncate_from != 0 ||
           w->n_ents > 0 || w->has_hs;
}

/* ---------------------------------------------------------------------
 * Crashes aimed at the windows where durability matters (sim_swarm aim_*)
 */

static void schedule_restart(struct sim_cluster *c, struct sim_rng *rng,
                             raft_id id, uint64_t max_delay)
{
    struct sim_event ev = {0};

    ev.kind = EV_RESTART;
    ev.node = (int)id;
    ev.arg = c->nodes[id].incarnation;
    sim_queue_push(&c->q, sim_rng_range(rng, 1, max_delay), ev);
}

/* Crashes node n now and restarts it soon (a process that dies and is
 * started again at once: what it promised must be on its disk). */
static void aimed_crash(struct sim_cluster *c, struct sim_node *n,
                        const char *what)
{
    trace_sim(c, (int)n->id, what, 0, 0);
    node_stop(c, n, c->sw.tear);
    c->stats.crashes++;
    c->stats.aimed++;
    schedule_restart(c, &c->aim, n->id, c->sw.election_ms);
}

/* Queues a crash of node id (of its current incarnation) in `delay` ms. */
static void aim_crash_at(struct sim_cluster *c, raft_id id, uint64_t delay)
{
    struct sim_event ev = {0};

    ev.kind = EV_AIM_CRASH;
    ev.node = (int)id;
    ev.arg = c->nodes[id].incarnation;
    sim_queue_push(&c->q, delay, ev);
}

/* A write whose loss matters most: it records a new vote, or carries a
 * configuration. */
static bool write_is_vital(const struct sim_node *n, const struct sim_write *w)
{
    size_t k;

    if (w->has_hs && w->vote != 0 &&
        (w->term != n->disk.durable.term || w->vote != n->disk.durable.vote)) {
        return true;
    }
    if (w->has_chunk) {
        return true; /* a crash in the middle of a snapshot transfer */
    }
    for (k = 0; k < w->n_ents; k++) {
        if (w->ents[k].type == RAFT_ENTRY_CONF) {
            return true;
        }
    }
    return false;
}

/* Between a write and its sync: the node is blocked on a write that takes
 * `took` ms; perhaps crash it before it is durable (what left in msgs_now
 * has gone, the rest of the batch is lost or torn). */
static void aim_at_write(struct sim_cluster *c, struct sim_node *n,
                         uint64_t took, bool vital)
{
    unsigned pm = c->sw.aim_write * (vital ? 10 : 1);

    if (c->faults_on && pm > 0 && sim_rng_chance(&c->aim, pm)) {
        aim_crash_at(c, n->id, sim_rng_range(&c->aim, 0, took));
    }
}

/* Between the sync and what waited for it: the write is durable, but the
 * node crashes before sending msgs_after_persist, applying or calling
 * raft_advance.  Returns true if it crashed. */
static bool aim_at_sync(struct sim_cluster *c, struct sim_node *n)
{
    if (!c->faults_on || c->sw.aim_sync == 0 ||
        !sim_rng_chance(&c->aim, c->sw.aim_sync)) {
        return false;
    }
    sim_disk_complete(&n->disk);
    aimed_crash(c, n, "crash after sync (aimed)");
    return true;
}

/* In the middle of a membership change about `who`, just appended by
 * `leader`: crash the leader, the member, a random node or every node
 * while the change replicates. */
static void aim_at_change(struct sim_cluster *c, raft_id leader, raft_id who)
{
    uint64_t within = 2 * c->sw.net.delay_max + c->sw.disk_max + 1;
    uint64_t delay;
    raft_id id;

    if (c->sw.aim_member == 0 || !sim_rng_chance(&c->aim, c->sw.aim_member)) {
        return;
    }
    delay = sim_rng_range(&c->aim, 0, within);
    switch (sim_rng_range(&c->aim, 0, 3)) {
    case 0:
        aim_crash_at(c, leader, delay);
        break;
    case 1:
        aim_crash_at(c, who, delay);
        break;
    case 2:
        aim_crash_at(c, (raft_id)sim_rng_range(&c->aim, 1, SIM_MAX_NODES),
                     delay);
        break;
    default:
        for (id = 1; id <= SIM_MAX_NODES; id++) {
            aim_crash_at(c, id, delay);
        }
        break;
    }
}

/* Step 2 of THE HOST LOOP: take the batch, send msgs_now, issue the
 * write; the rest happens in finish_batch when the write completes. */
static void start_batch(struct sim_cluster *c, struct sim_node *n)
{
    struct sim_write w;
    int rv;

    rv = raft_ready(core(n), &n->rd);
    if (rv != 0) {
        sim_check_fail(&c->check, "node %llu: raft_ready failed: %s",
                       (unsigned long long)n->id, raft_strerror(rv));
        return;
    }
    n->busy = true;
    send_msgs(c, n, n->rd.msgs_now, n->rd.n_msgs_now);
    if (build_write(c, n, &w)) {
        struct sim_event ev = {0};
        uint64_t took = sim_rng_range(&c->rng, c->sw.disk_min, c->sw.disk_max);
        bool vital = write_is_vital(n, &w);

        sim_disk_write(&n->disk, &w);
        /* Queued first, so that at the same time the crash comes first. */
        aim_at_write(c, n, took, vital);
        ev.kind = EV_WRITE_DONE;
        ev.node = (int)n->id;
        ev.arg = n->incarnation;
        sim_queue_push(&c->q, took, ev);
        return;
    }
    sim_write_free(&w);
    if (c->check.failed) {
        return;
    }
    finish_batch(c, n);
}

static void check_node(struct sim_cluster *c, struct sim_node *n);

static void step_one(struct sim_cluster *c, struct sim_node *n)
{
    struct raft_msg *m = inbox_pop(n);
    struct raft *r = core(n);
    int rv;

    heap_now.snap = m->type == RAFT_MSG_SNAPSHOT;
    rv = raft_step(r, c->q.now, m);
    heap_now.snap = 0;

    if (rv == RAFT_EMALFORMED) {
        sim_check_fail(&c->check,
                       "node %llu rejected a %s from %llu as malformed: %s",
                       (unsigned long long)n->id, raft_msg_type_name(m->type),
                       (unsigned long long)m->from, raft_errmsg(n->r));
    }
    msg_free(c, m);
    check_node(c, n);
}

/* Runs the node until it waits for its disk or has nothing to do.  One
 * turn: the timer if due, then the queued messages (all of them with
 * group_steps, else one), then the ready batch. */
static void drive(struct sim_cluster *c, struct sim_node *n)
{
    bool ticked = false;

    while (n->up && !n->busy && !c->check.failed) {
        if (raft_has_ready(n->r)) {
            start_batch(c, n);
            continue;
        }
        if (!ticked && c->q.now >= raft_next_wakeup(n->r)) {
            raft_tick(core(n), c->q.now);
            ticked = true;
            if (raft_next_wakeup(n->r) <= c->q.now && !raft_has_ready(n->r)) {
                sim_check_fail(&c->check,
                               "node %llu: after raft_tick(%llu) the core "
                               "still asks to be woken at %llu (a busy "
                               "loop in a real host)",
                               (unsigned long long)n->id,
                               (unsigned long long)c->q.now,
                               (unsigned long long)raft_next_wakeup(n->r));
            }
            continue;
        }
        if (n->n_inbox > 0) {
            step_one(c, n);
            while (c->sw.group_steps && n->n_inbox > 0 && n->up &&
                   !c->check.failed) {
                step_one(c, n);
            }
            continue;
        }
        break;
    }
    if (n->up) {
        check_node(c, n);
        schedule_wake(c, n);
    }
}

/* ---------------------------------------------------------------------
 * Per-step invariants
 */

/* Paper 5.2: a candidate wins with votes from a majority of the voters,
 * cast in its term.  The votes are those the voters' traces reported. */
static bool vote_quorum(struct sim_cluster *c, struct sim_node *n,
                        uint64_t term)
{
    const struct raft_conf *conf = raft_conf_current(n->r);
    size_t voters = 0;
    size_t granted = 0;
    size_t k;
    size_t v;

    for (k = 0; k < conf->n_members; k++) {
        raft_id id = conf->members[k].id;

        if (!conf->members[k].voter) {
            continue;
        }
        voters++;
        if (id == n->id) {
            /* Its own vote counts once it is durable (seed 714294). */
            if (n->disk.durable.term == term && n->disk.durable.vote == n->id) {
                granted++;
            }
            continue;
        }
        for (v = c->n_votes; v > 0; v--) {
            const struct sim_vote *sv = &c->votes[v - 1];

            if (sv->term == term && sv->voter == id && sv->candidate == n->id) {
                granted++;
                break;
            }
        }
    }
    if (2 * granted <= voters) {
        return sim_check_fail(&c->check,
                              "vote quorum: node %llu became leader of term "
                              "%llu with %zu of %zu votes cast in that term "
                              "(its own counts once on its disk)",
                              (unsigned long long)n->id,
                              (unsigned long long)term, granted, voters);
    }
    return true;
}

/* Whether the entry (index, term) is on node n's disk, durably: in its
 * log, or under its snapshot. */
static bool durable_holds(const struct sim_node *n, uint64_t index,
                          uint64_t term)
{
    const struct sim_image *im = &n->disk.durable;
    const struct sim_dentry *d = sim_image_entry(im, index);

    if (d != NULL) {
        return d->term == term;
    }
    return im->snap.meta.index > index ||
           (im->snap.meta.index == index && im->snap.meta.term == term);
}

/* Committed means durable on a majority (paper 5.3; thesis 10.2.1 for the
 * leader's own disk): when leader n's commit index passed `index`, a
 * majority of the voters of its configuration (the latest in its log,
 * thesis 4.1) held that entry on disk.  A voter whose disk was discarded
 * (removed and decommissioned since) is given the benefit of the doubt. */
static bool commit_durable(struct sim_cluster *c, struct sim_node *n,
                           uint64_t index)
{
    const struct raft_conf *conf = raft_conf_current(n->r);
    uint64_t term = raft_term_at(n->r, index);
    size_t voters = 0;
    size_t held = 0;
    size_t k;

    if (term == 0) {
        return true; /* compacted away already: checked when it was not */
    }
    for (k = 0; k < conf->n_members; k++) {
        const struct sim_node *v = node_get(c, conf->members[k].id);

        if (!conf->members[k].voter) {
            continue;
        }
        voters++;
        if (v != NULL &&
            (v->removed || (v->started && durable_holds(v, index, term)))) {
            held++;
        }
    }
    if (2 * held <= voters) {
        return sim_check_fail(&c->check,
                              "commit durability: leader %llu committed "
                              "index %llu (term %llu), which only %zu of the "
                              "%zu voters of its configuration hold on disk",
                              (unsigned long long)n->id,
                              (unsigned long long)index,
                              (unsigned long long)term, held, voters);
    }
    return true;
}

/* What n committed while it led (n->led_commit, from its COMMIT traces)
 * was durable on a majority; and whatever any node commits, some leader
 * committed first. */
static bool check_commit(struct sim_cluster *c, struct sim_node *n,
                         uint64_t term, uint64_t commit)
{
    if (n->led_commit > n->led_checked) {
        n->led_checked = n->led_commit;
        if (!commit_durable(c, n, n->led_commit)) {
            return false;
        }
        sim_check_leader_commit(&c->check, term, n->led_commit);
    }
    if (commit > n->last_commit && commit > c->check.leader_commit_max) {
        return sim_check_fail(&c->check,
                              "commit: node %llu moved its commit index to "
                              "%llu, past anything a leader committed (%llu)",
                              (unsigned long long)n->id,
                              (unsigned long long)commit,
                              (unsigned long long)c->check.leader_commit_max);
    }
    return true;
}

/* The largest entry the simulator proposes: a CONF entry of a full
 * configuration (proposals are at most PROP_HDR + 40 bytes). */
#define MAX_ENTRY_BYTES (2 + 9 * RAFT_MAX_MEMBERS)
/* Memory a core may allocate while stepping snapshot chunks besides the
 * one chunk it keeps for the host: its queue of answers (one block, which
 * may grow). */
#define RX_SLACK  (64 * 1024)
#define RX_BLOCKS 2

/* raft.h, "Memory": a core keeps in memory the entries it still owes the
 * host (after keep_from) and a tail of at most the window; fetched copies
 * only for what is in flight (each follower's window of appends, which
 * answers within one turn may refill once, plus a probe); and of a
 * snapshot being received at most one chunk.  The last is measured
 * independently of the core's own account: what its allocations made
 * while stepping SNAPSHOT messages still hold, in blocks (the chunk and
 * the queue of answers) and in bytes (on seeds whose snapshots are far
 * larger, sim_swarm_choose_window, a core that kept them would show). */
static bool check_memory(struct sim_cluster *c, struct sim_node *n)
{
    struct raft_memory mem;
    uint64_t last = raft_last_index(n->r);
    uint64_t need = last > n->keep_from ? last - n->keep_from : 0;
    size_t members = raft_conf_current(n->r)->n_members;
    size_t fetch_max =
        members * (2 * c->cfg.max_inflight_bytes + 2 * c->cfg.max_msg_bytes +
                   2 * MAX_ENTRY_BYTES);

    raft_memory(n->r, &mem);
    if (mem.n_entries > c->cfg.window_entries + need ||
        mem.entry_bytes > c->cfg.window_bytes + need * MAX_ENTRY_BYTES) {
        return sim_check_fail(
            &c->check,
            "memory: node %llu holds %zu entries (%zu bytes) in memory, "
            "more than its window (%zu, %zu bytes) and the %llu entries "
            "after %llu it still owes the host",
            (unsigned long long)n->id, mem.n_entries, mem.entry_bytes,
            c->cfg.window_entries, c->cfg.window_bytes,
            (unsigned long long)need, (unsigned long long)n->keep_from);
    }
    if (mem.fetched_bytes > fetch_max) {
        return sim_check_fail(&c->check,
                              "memory: node %llu holds %zu bytes of fetched "
                              "entries, more than it may have in flight "
                              "(%zu)",
                              (unsigned long long)n->id, mem.fetched_bytes,
                              fetch_max);
    }
    if (mem.snapshot_bytes > c->cfg.max_msg_bytes ||
        node_rx_bytes[n->id] > c->cfg.max_msg_bytes + RX_SLACK ||
        node_rx_blocks[n->id] > RX_BLOCKS) {
        return sim_check_fail(&c->check,
                              "memory: node %llu holds %zu bytes of a "
                              "snapshot it receives (%zu bytes in %zu "
                              "blocks allocated while stepping chunks), "
                              "more than a chunk (%zu)",
                              (unsigned long long)n->id, mem.snapshot_bytes,
                              node_rx_bytes[n->id], node_rx_blocks[n->id],
                              c->cfg.max_msg_bytes);
    }
    return true;
}

static void check_node(struct sim_cluster *c, struct sim_node *n)
{
    uint64_t term;
    uint64_t commit;

    if (!n->up || c->check.failed) {
        return;
    }
    term = raft_current_term(n->r);
    commit = raft_commit_index(n->r);
    if (term < n->last_term) {
        sim_check_fail(&c->check,
                       "node %llu's term went back from %llu to "
                       "%llu",
                       (unsigned long long)n->id,
                       (unsigned long long)n->last_term,
                       (unsigned long long)term);
        return;
    }
    if (commit < n->last_commit) {
        sim_check_fail(&c->check,
                       "node %llu's commit index went back from %llu to "
                       "%llu",
                       (unsigned long long)n->id,
                       (unsigned long long)n->last_commit,
                       (unsigned long long)commit);
        return;
    }
    if (raft_role(n->r) == RAFT_LEADER && commit > n->last_commit &&
        raft_term_at(n->r, commit) != term) {
        /* Paper 5.4.2 (figure 2, rules for leaders): a leader moves its
         * commit index only to an entry of its own term; older entries
         * are committed indirectly, never by counting their replicas. */
        sim_check_fail(&c->check,
                       "commit rule: leader %llu of term %llu committed "
                       "index %llu, an entry of term %llu",
                       (unsigned long long)n->id, (unsigned long long)term,
                       (unsigned long long)commit,
                       (unsigned long long)raft_term_at(n->r, commit));
        return;
    }
    if (!check_commit(c, n, term, commit) || !check_memory(c, n)) {
        return;
    }
    n->last_term = term;
    n->last_commit = commit;
    if (raft_role(n->r) == RAFT_LEADER) {
        if (!sim_check_leader(&c->check, term, (int)n->id)) {
            return;
        }
    }
    if (n->check_votes) {
        n->check_votes = false;
        if (raft_role(n->r) == RAFT_LEADER && !vote_quorum(c, n, term)) {
            return;
        }
    }
    if (n->became_leader && !n->busy) {
        /* Leader completeness (paper 5.4): the new leader holds every
         * entry committed in an earlier term.  (A leader elected late by
         * delayed votes may lack what a later term committed.)  Checked
         * once its first batch is issued, when the cache image is its
         * whole log. */
        uint64_t cm = sim_check_committed_before(&c->check, term);
        const struct sim_commit_rec *rec = sim_check_commit_at(&c->check, cm);
        uint64_t chain;

        n->became_leader = false;
        /* Entries a snapshot of its own covers were checked when it
         * applied them. */
        if (rec != NULL && cm > n->disk.cache.snap.meta.index &&
            (!sim_image_chain(&n->disk.cache, cm, &chain) ||
             chain != rec->chain)) {
            sim_check_fail(&c->check,
                           "leader completeness: node %llu leads term %llu "
                           "without the committed entry at index %llu",
                           (unsigned long long)n->id, (unsigned long long)term,
                           (unsigned long long)cm);
        }
    }
}

/* ---------------------------------------------------------------------
 * Set-up
 */

static void conf_init(struct raft_conf *conf, int n_voters)
{
    int i;

    memset(conf, 0, sizeof(*conf));
    for (i = 1; i <= n_voters; i++) {
        conf->members[conf->n_members].id = (raft_id)i;
        conf->members[conf->n_members].voter = true;
        conf->n_members++;
    }
}

static void schedule(struct sim_cluster *c, int kind, uint64_t delay)
{
    struct sim_event ev = {0};

    ev.kind = kind;
    ev.node = -1;
    sim_queue_push(&c->q, delay, ev);
}

int sim_cluster_init(struct sim_cluster *c, const struct sim_setup *setup)
{
    struct raft_conf conf;
    int n_nodes;
    int i;

    trace_fmts_init();
    heap_count_cores();
    /* Each cluster counts its cores from zero: what an earlier one leaked
     * (never freed, so never subtracted) is not this one's. */
    memset(node_bytes, 0, sizeof(node_bytes));
    memset(node_rx_bytes, 0, sizeof(node_rx_bytes));
    memset(node_rx_blocks, 0, sizeof(node_rx_blocks));
    memset(c, 0, sizeof(*c));
    c->setup = *setup;
    sim_rng_init(&c->rng, setup->seed);
    sim_rng_init(&c->aim, setup->seed ^ 0xa1d5eed15a1d5eedULL);
    sim_queue_init(&c->q);
    sim_net_init(&c->net);
    sim_trace_init(&c->trace, setup->trace_cap == 0 ? 400 : setup->trace_cap);
    c->trace.echo = setup->trace_echo;
    sim_check_init(&c->check);
    if (setup->sw != NULL) {
        c->sw = *setup->sw;
    } else if (setup->swarm) {
        sim_swarm_choose(&c->sw, &c->rng, setup->n_nodes);
        if (!setup->classic) {
            sim_swarm_choose_aims(&c->sw, &c->aim);
        }
        sim_swarm_choose_window(&c->sw, &c->aim);
    } else {
        sim_swarm_calm(&c->sw, setup->n_nodes <= 0 ? 3 : setup->n_nodes);
    }
    if (setup->election_ms != 0) {
        c->sw.election_ms = setup->election_ms;
        c->sw.heartbeat_ms = setup->heartbeat_ms != 0 ? setup->heartbeat_ms
                                                      : setup->election_ms / 5;
    }
    n_nodes = c->sw.n_nodes;
    c->net.cfg = c->sw.net;
    c->durable_apply = c->sw.durable_apply;
    c->snapshot_every = c->sw.snapshot_every;
    c->snap_pad = c->sw.snap_pad < SNAP_HDR ? SNAP_HDR : c->sw.snap_pad;
    raft_config_default(&c->cfg, 1);
    c->cfg.election_timeout_ms = c->sw.election_ms;
    c->cfg.heartbeat_ms = c->sw.heartbeat_ms;
    c->cfg.pre_vote = c->sw.pre_vote;
    c->cfg.check_quorum = c->sw.check_quorum;
    c->cfg.max_msg_bytes = c->sw.max_msg_bytes;
    c->cfg.max_inflight_bytes = c->sw.max_inflight_bytes;
    c->cfg.max_inflight_msgs = c->sw.max_inflight_msgs;
    c->cfg.max_uncommitted_bytes = c->sw.max_uncommitted_bytes;
    c->cfg.snapshot_trailing = c->sw.snapshot_trailing;
    c->cfg.window_entries = c->sw.window_entries;
    c->cfg.window_bytes = c->sw.window_bytes;
    conf_init(&conf, n_nodes);
    c->conf = conf;
    for (i = 1; i <= SIM_MAX_NODES; i++) {
        c->nodes[i].id = (raft_id)i;
        c->nodes[i].c = c;
        c->nodes[i].wake_at = UINT64_MAX;
        sim_disk_init(&c->nodes[i].disk);
        c->nodes[i].disk.tear_hs_last = setup->tear_hs_last;
    }
    c->next_id = n_nodes + 1;
    for (i = 1; i <= n_nodes; i++) {
        int rv;

        c->nodes[i].initial_conf = conf;
        c->nodes[i].member = true;
        rv = node_start(c, &c->nodes[i]);
        if (rv != 0) {
            return rv;
        }
    }
    c->faults_on = setup->faults && setup->swarm;
    c->client_on = setup->client;
    if (c->faults_on) {
        schedule(c, EV_FAULT, sim_rng_range(&c->rng, 1, 2 * c->sw.fault_every));
    }
    if (c->client_on) {
        schedule(c, EV_CLIENT, sim_rng_range(&c->rng, 1, 20));
    }
    return 0;
}

void sim_cluster_close(struct sim_cluster *c)
{
    struct sim_event ev;
    int i;

    while (sim_queue_pop(&c->q, &ev) == 0) {
        if (ev.kind == EV_DELIVER) {
            msg_free(c, ev.payload);
        }
    }
    for (i = 1; i <= SIM_MAX_NODES; i++) {
        struct sim_node *n = &c->nodes[i];

        raft_free(core(n));
        inbox_clear(c, n);
        free(n->inbox);
        free(n->props);
        sim_disk_close(&n->disk);
    }
    free(c->acked);
    free(c->acked_chain);
    free(c->votes);
    sim_queue_close(&c->q);
    sim_trace_close(&c->trace);
    sim_check_close(&c->check);
}

/* ---------------------------------------------------------------------
 * Operations (scenarios call them; so does the fault scheduler)
 */

raft_id sim_cluster_leader(const struct sim_cluster *c)
{
    raft_id best = 0;
    uint64_t best_term = 0;
    int i;

    for (i = 1; i <= SIM_MAX_NODES; i++) {
        const struct sim_node *n = &c->nodes[i];

        if (n->up && raft_role(n->r) == RAFT_LEADER &&
            raft_current_term(n->r) >= best_term) {
            best = n->id;
            best_term = raft_current_term(n->r);
        }
    }
    return best;
}

void sim_cluster_crash(struct sim_cluster *c, raft_id id)
{
    struct sim_node *n = node_get(c, id);

    if (n == NULL || !n->up) {
        return;
    }
    trace_sim(c, (int)id, "crash", 0, 0);
    node_stop(c, n, c->sw.tear);
    c->stats.crashes++;
}

int sim_cluster_restart(struct sim_cluster *c, raft_id id)
{
    struct sim_node *n = node_get(c, id);

    if (n == NULL || n->up || n->removed || !n->started) {
        return 0;
    }
    trace_sim(c, (int)id, "restart", 0, 0);
    c->stats.restarts++;
    return node_start(c, n);
}

void sim_cluster_isolate(struct sim_cluster *c, raft_id id)
{
    trace_sim(c, (int)id, "isolate", 0, 0);
    sim_net_isolate(&c->net, (int)id);
    c->stats.partitions++;
}

void sim_cluster_partition(struct sim_cluster *c, unsigned mask)
{
    trace_sim(c, 0, "partition mask=%", mask, 0);
    sim_net_partition(&c->net, mask);
    c->stats.partitions++;
}

void sim_cluster_heal(struct sim_cluster *c)
{
    trace_sim(c, 0, "heal", 0, 0);
    sim_net_heal(&c->net);
}

static bool ready_for_call(const struct sim_node *n)
{
    return n != NULL && n->up && !n->busy;
}

/* Proposes one entry without running the host loop. */
static int propose_one(struct sim_cluster *c, struct sim_node *n,
                       uint64_t *index)
{
    uint8_t buf[PROP_HDR + 64];
    struct raft_buf data;
    raft_index idx;
    uint64_t prop_id;
    size_t len;
    size_t k;
    int rv;

    prop_id = c->next_prop_id + 1;
    len = PROP_HDR + (size_t)(prop_id % 41);
    put64(buf, prop_id);
    for (k = PROP_HDR; k < len; k++) {
        buf[k] = (uint8_t)(prop_id * 31 + k);
    }
    data.base = buf;
    data.len = len;
    rv = raft_propose(core(n), &data, &idx);
    if (rv != 0) {
        return rv;
    }
    c->next_prop_id = prop_id;
    if (n->n_props == n->cap_props) {
        size_t cap = n->cap_props == 0 ? 32 : n->cap_props * 2;
        struct sim_prop *p = realloc(n->props, cap * sizeof(*p));

        if (p == NULL) {
            oom();
        }
        n->props = p;
        n->cap_props = cap;
    }
    n->props[n->n_props].id = prop_id;
    n->props[n->n_props].index = idx;
    n->n_props++;
    c->stats.proposed++;
    if (c->setup.trace_msgs) {
        trace_sim(c, (int)n->id, "propose prop=% index=%", prop_id, idx);
    }
    if (index != NULL) {
        *index = idx;
    }
    return 0;
}

int sim_cluster_propose(struct sim_cluster *c, raft_id id, uint64_t *index)
{
    struct sim_node *n = node_get(c, id);
    int rv;

    if (!ready_for_call(n)) {
        return RAFT_ENOTLEADER;
    }
    rv = propose_one(c, n, index);
    if (rv == 0) {
        drive(c, n);
    }
    return rv;
}

int sim_cluster_propose_n(struct sim_cluster *c, raft_id id, uint64_t n,
                          uint64_t *accepted)
{
    struct sim_node *node = node_get(c, id);
    uint64_t k;
    int rv = 0;

    if (accepted != NULL) {
        *accepted = 0;
    }
    if (!ready_for_call(node)) {
        return RAFT_ENOTLEADER;
    }
    for (k = 0; k < n; k++) {
        rv = propose_one(c, node, NULL);
        if (rv != 0) {
            break;
        }
    }
    if (accepted != NULL) {
        *accepted = k;
    }
    if (k > 0) {
        drive(c, node); /* one batch for all of them: group commit */
    }
    return k > 0 ? 0 : rv;
}

static int read_index(struct sim_cluster *c, raft_id id)
{
    struct sim_node *n = node_get(c, id);
    uint64_t ctx;
    int rv;

    if (!ready_for_call(n) || c->n_reads == READS_MAX) {
        return RAFT_EBUSY;
    }
    ctx = ++c->next_read;
    rv = raft_read_index(core(n), ctx);
    if (rv != 0) {
        return rv;
    }
    c->reads[c->n_reads].ctx = ctx;
    c->reads[c->n_reads].min = c->ack_max;
    c->reads[c->n_reads].node = id;
    c->n_reads++;
    drive(c, n);
    return 0;
}

int sim_cluster_snapshot(struct sim_cluster *c, raft_id id)
{
    struct sim_node *n = node_get(c, id);
    struct sim_snap s;
    struct raft_snapshot snap;
    const struct sim_dentry *d;
    uint64_t first;
    int rv;

    if (!ready_for_call(n) || n->applied <= raft_snapshot_index(n->r)) {
        return RAFT_EINVAL;
    }
    d = sim_image_entry(&n->disk.cache, n->applied);
    if (d == NULL) {
        return RAFT_EINVAL;
    }
    memset(&s, 0, sizeof(s));
    s.meta.index = n->applied;
    s.meta.term = d->term;
    s.meta.conf = n->conf;
    s.chain = n->applied_chain;
    s.state = n->state;
    s.pad = c->snap_pad;
    snap.meta = s.meta;
    snap.len = s.pad;
    /* The snapshot file is written and synced first, then the core is
     * told (the previous file is deleted: the core names only the new
     * one from now on), then the log is compacted. */
    sim_disk_save_snapshot(&n->disk, &s);
    rv = raft_snapshot_done(core(n), &snap);
    if (rv != 0) {
        sim_check_fail(&c->check,
                       "node %llu: raft_snapshot_done(%llu) failed: %s",
                       (unsigned long long)id, (unsigned long long)n->applied,
                       raft_strerror(rv));
        return rv;
    }
    /* The host's log is the authority: compacting more than the core
     * allows only costs followers a snapshot (fetches fail). */
    first = c->sw.compact_eager ? s.meta.index + 1 : raft_first_index(n->r);
    sim_disk_compact(&n->disk, first);
    n->want_snapshot = false;
    c->stats.snapshots++;
    drive(c, n);
    return 0;
}

int sim_cluster_add_learner(struct sim_cluster *c, raft_id via, raft_id *new_id)
{
    struct sim_node *l = node_get(c, via);
    struct sim_node *n;
    raft_id id;
    int rv;

    if (!ready_for_call(l) || c->next_id > SIM_MAX_NODES) {
        return RAFT_EBUSY;
    }
    id = (raft_id)c->next_id;
    rv = raft_add_learner(core(l), id, NULL);
    if (rv != 0) {
        return rv;
    }
    c->next_id++;
    n = &c->nodes[id];
    memset(&n->initial_conf, 0, sizeof(n->initial_conf));
    trace_sim(c, (int)via, "add learner=%", id, 0);
    rv = node_start(c, n);
    if (rv != 0) {
        return rv;
    }
    if (new_id != NULL) {
        *new_id = id;
    }
    drive(c, l);
    return 0;
}

struct raft *sim_cluster_core(struct sim_cluster *c, raft_id id)
{
    return core(&c->nodes[id]);
}

void sim_cluster_kick(struct sim_cluster *c, raft_id id)
{
    struct sim_node *n = node_get(c, id);

    if (n != NULL && n->up) {
        drive(c, n);
    }
}

void sim_cluster_calm(struct sim_cluster *c)
{
    int i;

    c->faults_on = false;
    c->client_on = false;
    sim_net_heal(&c->net);
    c->net.cfg.drop_pm = 0;
    c->net.cfg.dup_pm = 0;
    c->net.cfg.reorder_pm = 0;
    trace_sim(c, 0, "faults stop", 0, 0);
    for (i = 1; i <= SIM_MAX_NODES; i++) {
        sim_cluster_restart(c, (raft_id)i);
    }
}

/* ---------------------------------------------------------------------
 * Random faults and client load
 */

/* A random up node that is not removed, or 0. */
static raft_id pick_up(struct sim_cluster *c)
{
    raft_id ids[SIM_MAX_NODES];
    size_t n = 0;
    int i;

    for (i = 1; i <= SIM_MAX_NODES; i++) {
        if (c->nodes[i].up) {
            ids[n++] = (raft_id)i;
        }
    }
    if (n == 0) {
        return 0;
    }
    return ids[sim_rng_range(&c->rng, 0, n - 1)];
}

static void fault_member(struct sim_cluster *c, raft_id leader)
{
    struct sim_node *l = &c->nodes[leader];
    const struct raft_conf *conf;
    raft_id learners[RAFT_MAX_MEMBERS];
    size_t n_learners = 0;
    size_t n_voters = 0;
    size_t k;
    uint64_t what;
    int rv;

    if (!ready_for_call(l)) {
        return;
    }
    conf = raft_conf_current(l->r);
    for (k = 0; k < conf->n_members; k++) {
        if (conf->members[k].voter) {
            n_voters++;
        } else {
            learners[n_learners++] = conf->members[k].id;
        }
    }
    what = sim_rng_range(&c->rng, 0, 2);
    if (what == 0 && c->next_id <= SIM_MAX_NODES && conf->n_members < 7) {
        raft_id id = 0;

        if (sim_cluster_add_learner(c, leader, &id) == 0) {
            aim_at_change(c, leader, id);
        }
        return;
    }
    if (what <= 1 && n_learners > 0) {
        raft_id id = learners[sim_rng_range(&c->rng, 0, n_learners - 1)];

        rv = raft_promote(core(l), id, NULL);
        trace_sim(c, (int)leader, "promote %=%", id, (uint64_t)-rv);
        drive(c, l);
        if (rv == 0) {
            aim_at_change(c, leader, id);
        }
        return;
    }
    if (conf->n_members > 1 &&
        (n_voters > 2 || n_learners > 0 || sim_rng_chance(&c->rng, 300))) {
        raft_id id =
            conf->members[sim_rng_range(&c->rng, 0, conf->n_members - 1)].id;

        rv = raft_remove(core(l), id, NULL);
        trace_sim(c, (int)leader, "remove %=%", id, (uint64_t)-rv);
        drive(c, l);
        if (rv == 0) {
            aim_at_change(c, leader, id);
        }
    }
}

/* Draws which fault to inject, by the seed's weights; -1 if none is on. */
static int fault_kind(struct sim_cluster *c)
{
    const struct sim_swarm *s = &c->sw;
    const unsigned w[] = {
        s->w_crash,          s->w_crash_all,    s->w_partition, s->w_oneway,
        s->w_isolate_leader, s->w_heal,         s->w_member,    s->w_transfer,
        s->w_snapshot,       s->w_crash_leader, s->w_stall};
    const int n = (int)(sizeof(w) / sizeof(w[0]));
    unsigned total = 0;
    uint64_t pick;
    int kind;

    for (kind = 0; kind < n; kind++) {
        total += w[kind];
    }
    if (total == 0) {
        return -1;
    }
    pick = sim_rng_range(&c->rng, 0, total - 1);
    for (kind = 0; kind < n; kind++) {
        if (pick < w[kind]) {
            return kind;
        }
        pick -= w[kind];
    }
    return -1;
}

static void fault_crash_all(struct sim_cluster *c)
{
    int i;

    trace_sim(c, 0, "crash all", 0, 0);
    for (i = 1; i <= SIM_MAX_NODES; i++) {
        if (c->nodes[i].up) {
            sim_cluster_crash(c, (raft_id)i);
            schedule_restart(c, &c->rng, (raft_id)i, 10 * c->sw.election_ms);
        }
    }
}

/* A random split of the ids used so far. */
static void fault_partition(struct sim_cluster *c)
{
    unsigned mask = 0;
    int i;

    for (i = 1; i < c->next_id; i++) {
        if (sim_rng_chance(&c->rng, 500)) {
            mask |= 1U << i;
        }
    }
    sim_cluster_partition(c, mask);
}

/* One direction of one link: cut (stall == false) or stalled. */
static void fault_link(struct sim_cluster *c, bool stall)
{
    int a = (int)sim_rng_range(&c->rng, 1, (uint64_t)c->next_id - 1);
    int b = (int)sim_rng_range(&c->rng, 1, (uint64_t)c->next_id - 1);

    if (a == b) {
        return;
    }
    if (stall) {
        uint64_t d = sim_rng_range(&c->rng, 1, 3 * c->sw.election_ms);

        trace_sim(c, 0, "stall link %->%", (uint64_t)a, (uint64_t)b);
        sim_net_hold(&c->net, a, b, c->q.now + d);
    } else {
        trace_sim(c, 0, "cut link %->%", (uint64_t)a, (uint64_t)b);
        sim_net_set_link(&c->net, a, b, false);
        c->stats.partitions++;
    }
}

/* raft_campaign: a node starts an election at once, as an operator or a
 * lone voter at start-up would (raft.h); safe whenever it happens. */
static void fault_campaign(struct sim_cluster *c)
{
    raft_id id = pick_up(c);
    int rv;

    if (id == 0 || !ready_for_call(&c->nodes[id])) {
        return;
    }
    rv = raft_campaign(core(&c->nodes[id]));
    trace_sim(c, (int)id, "campaign rv=%", (uint64_t)-rv, 0);
    c->stats.campaigns += rv == 0 ? 1 : 0;
    drive(c, &c->nodes[id]);
}

static void fault_transfer(struct sim_cluster *c, raft_id leader)
{
    int rv;

    if (sim_rng_chance(&c->aim, 250)) {
        fault_campaign(c);
        return;
    }
    if (leader == 0 || !ready_for_call(&c->nodes[leader])) {
        return;
    }
    rv = raft_transfer_leadership(core(&c->nodes[leader]), 0);
    trace_sim(c, (int)leader, "transfer leadership rv=%", (uint64_t)-rv, 0);
    if (rv == 0) {
        c->stats.transfers++;
    }
    drive(c, &c->nodes[leader]);
}

static void fault(struct sim_cluster *c)
{
    raft_id leader = sim_cluster_leader(c);
    raft_id id;

    switch (fault_kind(c)) {
    case 0:
        id = pick_up(c);
        if (id != 0) {
            sim_cluster_crash(c, id);
            schedule_restart(c, &c->rng, id, 20 * c->sw.election_ms);
        }
        break;
    case 1:
        fault_crash_all(c);
        break;
    case 2:
        fault_partition(c);
        break;
    case 3:
        fault_link(c, false);
        break;
    case 4:
        if (leader != 0) {
            sim_cluster_isolate(c, leader);
        }
        break;
    case 5:
        if (sim_net_is_cut(&c->net)) {
            sim_cluster_heal(c);
        }
        break;
    case 6:
        if (leader != 0) {
            fault_member(c, leader);
        }
        break;
    case 7:
        fault_transfer(c, leader);
        break;
    case 8:
        id = pick_up(c);
        if (id != 0) {
            sim_cluster_snapshot(c, id);
        }
        break;
    case 9:
        if (leader != 0) {
            sim_cluster_crash(c, leader);
            schedule_restart(c, &c->rng, leader, 10 * c->sw.election_ms);
        }
        break;
    case 10:
        fault_link(c, true);
        break;
    default:
        break;
    }
}

/* Reads at every other node that believes it leads: one deposed, or cut
 * off from the majority, must not answer from what it knows alone (thesis
 * 6.4).  A few pending reads a node at most, so that a leader cut off for
 * long does not take every read slot. */
static void stale_reads(struct sim_cluster *c, raft_id leader)
{
    raft_id id;
    size_t k;

    for (id = 1; id <= SIM_MAX_NODES; id++) {
        const struct sim_node *n = &c->nodes[id];
        size_t pending = 0;

        if (id == leader || !n->up || raft_role(n->r) != RAFT_LEADER) {
            continue;
        }
        for (k = 0; k < c->n_reads; k++) {
            pending += c->reads[k].node == id ? 1 : 0;
        }
        if (pending < 8 && sim_rng_chance(&c->aim, 300)) {
            read_index(c, id);
        }
    }
}

static void client(struct sim_cluster *c)
{
    raft_id leader = sim_cluster_leader(c);
    raft_id target;
    uint64_t n;

    if (sim_rng_chance(&c->rng, c->sw.propose_pm)) {
        target =
            leader != 0 && sim_rng_chance(&c->rng, 800) ? leader : pick_up(c);
        n = sim_rng_range(&c->rng, 1, c->sw.batch_max);
        if (target != 0) {
            sim_cluster_propose_n(c, target, n, NULL);
        }
    }
    if (leader != 0 && sim_rng_chance(&c->rng, 100)) {
        read_index(c, leader);
    }
    if (c->sw.stale_reads) {
        stale_reads(c, leader);
    }
}

/* ---------------------------------------------------------------------
 * The step
 */

static void handle(struct sim_cluster *c, const struct sim_event *ev)
{
    struct sim_node *n = ev->node > 0 ? node_get(c, (raft_id)ev->node) : NULL;

    switch (ev->kind) {
    case EV_DELIVER: {
        struct raft_msg *m = ev->payload;

        uint64_t held = sim_net_held_until(&c->net, (int)m->from, (int)m->to);

        if (held > c->q.now) {
            struct sim_event again = *ev;

            sim_queue_push(&c->q, held - c->q.now, again);
            return;
        }
        if (n == NULL || !n->up ||
            !sim_net_link_up(&c->net, (int)m->from, (int)m->to)) {
            msg_free(c, m);
            return;
        }
        if (c->setup.trace_msgs) {
            trace_recv(c, m);
        }
        if (m->type == RAFT_MSG_SNAPSHOT_RESP) {
            struct sim_node *f = node_get(c, m->from);

            /* Counts bytes acknowledged, across restarted transfers. */
            if (f != NULL && m->u.snap_resp.offset > f->snap_last_off) {
                f->snap_acked += m->u.snap_resp.offset - f->snap_last_off;
            }
            if (f != NULL) {
                f->snap_last_off = m->u.snap_resp.offset;
            }
        }
        inbox_push(n, m);
        drive(c, n);
        return;
    }
    case EV_TICK:
        if (n != NULL && n->up && ev->arg == n->incarnation &&
            ev->at == n->wake_at) {
            n->wake_at = UINT64_MAX;
            drive(c, n);
        }
        return;
    case EV_WRITE_DONE:
        if (n != NULL && n->up && ev->arg == n->incarnation && n->busy &&
            !aim_at_sync(c, n)) {
            finish_batch(c, n);
            drive(c, n);
        }
        return;
    case EV_AIM_CRASH:
        if (c->faults_on && n != NULL && n->up && ev->arg == n->incarnation) {
            aimed_crash(
                c, n, n->busy ? "crash before sync (aimed)" : "crash (aimed)");
        }
        return;
    case EV_RESTART:
        if (n != NULL && !n->up && ev->arg == n->incarnation) {
            sim_cluster_restart(c, n->id);
        }
        return;
    case EV_DECOMMISSION:
        if (n != NULL) {
            decommission(c, n);
        }
        return;
    case EV_FAULT:
        if (c->faults_on) {
            fault(c);
            schedule(c, EV_FAULT,
                     sim_rng_range(&c->rng, 1, 2 * c->sw.fault_every));
        }
        return;
    case EV_CLIENT:
        if (c->client_on) {
            client(c);
            schedule(c, EV_CLIENT, sim_rng_range(&c->rng, 2, 30));
        }
        return;
    default:
        return;
    }
}

/* sim_limits: a run past any of them fails as a liveness failure (a
 * cluster that makes no end), instead of running until the machine is out
 * of memory. */
static bool within_limits(struct sim_cluster *c)
{
    const struct sim_limits *l = &c->setup.limits;
    uint64_t bytes = (uint64_t)(core_bytes + c->msg_bytes);
    const char *what = NULL;
    uint64_t limit = 0;

    if (bytes > c->stats.peak_bytes) {
        c->stats.peak_bytes = bytes;
    }
    if (l->max_ms != 0 && c->q.now > l->max_ms) {
        what = "ms of virtual time";
        limit = l->max_ms;
    } else if (l->max_steps != 0 && c->stats.steps > l->max_steps) {
        what = "steps";
        limit = l->max_steps;
    } else if (l->max_msgs != 0 && c->net.sent > l->max_msgs) {
        what = "messages";
        limit = l->max_msgs;
    } else if (l->max_bytes != 0 && bytes > l->max_bytes) {
        what = "bytes of memory (messages on their way and the cores)";
        limit = l->max_bytes;
    }
    if (what == NULL) {
        return true;
    }
    return sim_check_fail(
        &c->check,
        "liveness: the run went past its limit of %llu %s "
        "(at t=%llums, step %llu, %llu messages, %llu "
        "bytes)",
        (unsigned long long)limit, what, (unsigned long long)c->q.now,
        (unsigned long long)c->stats.steps, (unsigned long long)c->net.sent,
        (unsigned long long)bytes);
}

bool sim_cluster_step(struct sim_cluster *c)
{
    struct sim_event ev;

    if (c->check.failed) {
        return false;
    }
    if (sim_queue_pop(&c->q, &ev) != 0) {
        return false;
    }
    c->stats.steps++;
    handle(c, &ev);
    return within_limits(c) && !c->check.failed;
}

bool sim_cluster_run_for(struct sim_cluster *c, uint64_t ms)
{
    uint64_t end = c->q.now + ms;

    while (sim_queue_peek_at(&c->q) <= end) {
        if (!sim_cluster_step(c)) {
            return !c->check.failed;
        }
    }
    if (c->q.now < end) {
        c->q.now = end;
    }
    return !c->check.failed;
}

bool sim_cluster_run_until(struct sim_cluster *c, sim_pred_fn pred, void *arg,
                           uint64_t ms)
{
    uint64_t end = c->q.now + ms;

    for (;;) {
        if (c->check.failed) {
            return false;
        }
        if (pred(c, arg)) {
            return true;
        }
        if (sim_queue_peek_at(&c->q) > end) {
            return false;
        }
        if (!sim_cluster_step(c)) {
            return false;
        }
    }
}

/* ---------------------------------------------------------------------
 * Liveness
 */

/* A leader that committed an entry of its own term, so it can serve. */
static bool has_ready_leader(struct sim_cluster *c, void *arg)
{
    raft_id id = sim_cluster_leader(c);
    struct sim_node *n;

    (void)arg;
    if (id == 0) {
        return false;
    }
    n = &c->nodes[id];
    return raft_term_at(n->r, raft_commit_index(n->r)) ==
           raft_current_term(n->r);
}

/* Keeps proposing the liveness batch at the leader until all of it is
 * acknowledged. A proposal is made again only when the term changed since
 * (a new leader may have dropped it), or after a long time: re-proposing
 * within one term could only lengthen the leader's backlog, and on a
 * slow configuration (one one-entry message in flight per follower) it
 * grew that backlog faster than it committed, for ever (seed 976559). */
static bool live_acked(struct sim_cluster *c, void *arg)
{
    raft_id leader = sim_cluster_leader(c);
    raft_term term = leader != 0 ? raft_current_term(c->nodes[leader].r) : 0;
    size_t k;
    bool all = true;

    (void)arg;
    for (k = 0; k < SIM_LIVE_PROPS; k++) {
        if (c->live_acked[k]) {
            continue;
        }
        all = false;
        if (leader != 0 &&
            (c->live[k].id == 0 || c->live_term[k] != term ||
             c->q.now >= c->live_sent[k] + 100 * c->sw.election_ms)) {
            uint64_t before = c->next_prop_id;

            if (sim_cluster_propose(c, leader, NULL) == 0) {
                c->live[k].id = before + 1;
                c->live_sent[k] = c->q.now;
                c->live_term[k] = term;
            }
        }
    }
    return all;
}

/* A measure of replication progress: every node's commit and applied
 * index, the bytes of snapshots it acknowledged, plus the leader's view
 * of every follower's log.  It only grows while the
 * cluster makes progress, even when a long backlog keeps the commit index
 * still (a new leader must first replicate its whole log). */
static uint64_t progress(const struct sim_cluster *c)
{
    raft_id leader = sim_cluster_leader(c);
    uint64_t sum = 0;
    int i;

    for (i = 1; i <= SIM_MAX_NODES; i++) {
        if (!c->nodes[i].up) {
            continue;
        }
        sum += raft_commit_index(c->nodes[i].r) + c->nodes[i].applied +
               c->nodes[i].snap_acked;
        if (leader != 0) {
            sum += raft_match_index(c->nodes[leader].r, (raft_id)i);
        }
    }
    return sum;
}

/* Steps until pred holds.  A backlog left by the fault phase may take
 * long to replicate on a slow network (one entry per round trip at
 * worst), so the bound is on stalls: failing only if progress() did not
 * move for `stall` ms. */
static bool run_until_progressing(struct sim_cluster *c, sim_pred_fn pred,
                                  uint64_t stall)
{
    uint64_t last = progress(c);
    uint64_t last_at = c->q.now;
    uint64_t give_up = c->q.now + SIM_LIVE_MAX_MS;

    while (!pred(c, NULL)) {
        uint64_t p = progress(c);

        if (p != last) {
            last = p;
            last_at = c->q.now;
        }
        /* Progress that never reaches the goal is a failure too, and the
         * bound keeps every seed finite in time and memory. */
        if (c->q.now - last_at > stall || c->q.now > give_up ||
            !sim_cluster_step(c)) {
            return false;
        }
    }
    return true;
}

static bool has_leader(struct sim_cluster *c, void *arg)
{
    (void)arg;
    return sim_cluster_leader(c) != 0;
}

/* Every member of the leader's configuration applied c->live_target. */
static bool all_applied(struct sim_cluster *c, void *arg)
{
    raft_id leader = sim_cluster_leader(c);
    const struct raft_conf *conf;
    size_t k;

    (void)arg;
    if (leader == 0 || c->nodes[leader].busy) {
        return false;
    }
    conf = raft_conf_current(c->nodes[leader].r);
    for (k = 0; k < conf->n_members; k++) {
        const struct sim_node *n = node_get(c, conf->members[k].id);

        if (n == NULL || !n->up || n->applied < c->live_target) {
            return false;
        }
    }
    return true;
}

bool sim_cluster_liveness(struct sim_cluster *c)
{
    uint64_t bound = 100 * c->sw.election_ms + 20 * c->sw.disk_max + 2000;
    uint64_t t0;
    uint64_t target;
    size_t k;

    if (c->check.failed) {
        return false;
    }
    sim_cluster_calm(c);
    t0 = c->q.now;
    if (!sim_cluster_run_until(c, has_leader, NULL, bound)) {
        return c->check.failed
                   ? false
                   : sim_check_fail(&c->check,
                                    "liveness: no leader within %llu ms "
                                    "after faults stopped",
                                    (unsigned long long)bound);
    }
    trace_sim(c, (int)sim_cluster_leader(c), "liveness: leader after % ms",
              c->q.now - t0, 0);
    if (!run_until_progressing(c, has_ready_leader, bound)) {
        return c->check.failed
                   ? false
                   : sim_check_fail(&c->check,
                                    "liveness: no leader committed an "
                                    "entry of its term (no progress for "
                                    "%llu ms, or over an hour)",
                                    (unsigned long long)bound);
    }
    memset(c->live, 0, sizeof(c->live));
    memset(c->live_acked, 0, sizeof(c->live_acked));
    memset(c->live_term, 0, sizeof(c->live_term));
    if (!run_until_progressing(c, live_acked, bound)) {
        return c->check.failed
                   ? false
                   : sim_check_fail(&c->check,
                                    "liveness: proposals not committed (no "
                                    "progress for %llu ms, or over an hour)",
                                    (unsigned long long)bound);
    }
    target = c->check.commit_max;
    c->live_target = target;
    if (!run_until_progressing(c, all_applied, bound)) {
        return c->check.failed
                   ? false
                   : sim_check_fail(&c->check,
                                    "liveness: members did not all apply "
                                    "index %llu (no progress for %llu ms, "
                                    "or over an hour)",
                                    (unsigned long long)target,
                                    (unsigned long long)bound);
    }
    /* No acknowledged entry lost: each is still the committed entry at
     * its index, and every member applied past it. */
    for (k = 0; k < c->n_acked; k++) {
        const struct sim_commit_rec *rec =
            sim_check_commit_at(&c->check, c->acked[k].index);

        if (rec == NULL || rec->chain != c->acked_chain[k]) {
            return sim_check_fail(&c->check,
                                  "acknowledged proposal %llu at index "
                                  "%llu was lost",
                                  (unsigned long long)c->acked[k].id,
                                  (unsigned long long)c->acked[k].index);
        }
    }
    trace_sim(c, 0, "liveness: ok, all members applied %", target, 0);
    return true;
}

void sim_cluster_summary(const struct sim_cluster *c, FILE *out)
{
    const struct sim_stats *s = &c->stats;

    fprintf(out,
            "nodes=%d t=%llums steps=%llu proposed=%llu acked=%llu "
            "lost=%llu reads=%llu elections=%llu crashes=%llu "
            "snapshots=%llu installs=%llu confs=%llu transfers=%llu "
            "cuts=%llu torn=%llu aimed=%llu fetched=%llu fetch_fails=%llu "
            "chunks=%llu campaigns=%llu msgs=%llu peak=%lluKiB\n",
            c->sw.n_nodes, (unsigned long long)c->q.now,
            (unsigned long long)s->steps, (unsigned long long)s->proposed,
            (unsigned long long)s->acked, (unsigned long long)s->lost,
            (unsigned long long)s->reads, (unsigned long long)s->elections,
            (unsigned long long)s->crashes, (unsigned long long)s->snapshots,
            (unsigned long long)s->installs,
            (unsigned long long)s->conf_changes,
            (unsigned long long)s->transfers, (unsigned long long)s->partitions,
            (unsigned long long)c->torn, (unsigned long long)s->aimed,
            (unsigned long long)s->fetches, (unsigned long long)s->fetch_fails,
            (unsigned long long)s->chunks, (unsigned long long)s->campaigns,
            (unsigned long long)c->net.sent,
            (unsigned long long)(s->peak_bytes / 1024));
}

void sim_cluster_dump_nodes(const struct sim_cluster *c, FILE *out)
{
    int i;

    for (i = 1; i <= SIM_MAX_NODES; i++) {
        const struct sim_node *n = &c->nodes[i];
        const struct raft_conf *conf;
        size_t k;

        if (!n->started) {
            continue;
        }
        if (!n->up) {
            fprintf(out, "  n%d %s applied=%llu\n", i,
                    n->removed ? "removed" : "down",
                    (unsigned long long)n->applied);
            continue;
        }
        conf = raft_conf_current(n->r);
        fprintf(out,
                "  n%d %s term=%llu vote=%llu leader=%llu last=%llu/%llu "
                "commit=%llu applied=%llu snap=%llu busy=%d conf={",
                i, raft_role_name(raft_role(n->r)),
                (unsigned long long)raft_current_term(n->r),
                (unsigned long long)raft_voted_for(n->r),
                (unsigned long long)raft_leader(n->r),
                (unsigned long long)raft_last_index(n->r),
                (unsigned long long)raft_last_term(n->r),
                (unsigned long long)raft_commit_index(n->r),
                (unsigned long long)n->applied,
                (unsigned long long)raft_snapshot_index(n->r), n->busy);
        for (k = 0; k < conf->n_members; k++) {
            fprintf(out, "%s%llu%s", k ? " " : "",
                    (unsigned long long)conf->members[k].id,
                    conf->members[k].voter ? "" : "(learner)");
        }
        fprintf(out, "}\n");
    }
}
