/* SPDX-License-Identifier: BSD-3-Clause
 * storage/replays.c - the replay table: which commands of each proposer
 * apply has done, so that copies are dropped and a proposer's commands
 * apply in the order it made them (the rules are below).
 *
 * Why a file of its own: it is one table with its own rules, consulted
 * by apply (storage/apply.c) before every command and by a member that
 * installed a snapshot (store_origin_applied).
 *
 * Not here: what the commands do (apply.c).
 */
#include "storage/internal.h"

/* ---------------------------------------------------------------------
 * Replays. A proposer (a node's process, one incarnation) numbers its
 * commands 1, 2, 3... (origin.seq) and may propose one again after a
 * leader change, so the log can hold two copies of a command, and copies
 * of later commands may commit before an earlier one. Apply keeps, per
 * (node, incarnation):
 *   - a mark row, key node|incarnation (16 bytes): every seq up to `mark`
 *     is done, and `n_seen` rows follow;
 *   - a seen row per seq above the mark that was applied, key
 *     node|incarnation|seq (24 bytes).
 * origin.low is the proposer's promise that it will never propose a seq
 * below it again: the mark moves up to low - 1 and the seen rows under
 * it go, so the table stays as small as what each proposer has in
 * flight. In the usual case - seqs applied in order - a command finds no
 * seen rows, moves the mark by one and writes nothing else.
 *
 * A proposer's commands apply in the order it made them: a command whose
 * seq is beyond the next one (mark + 1, or low when that is higher)
 * overtook a command still pending below it - a forward payload was
 * lost and a later one got through, and the earlier one is coming again
 * - and it changes nothing but the mark, with an OVERTAKEN effect that
 * tells its proposer to propose it again (node/pipeline/member.c). Why it
 * matters: a worker's GRAB overtaken by its RELEASE would hand a job to
 * a connection that is gone, for good. (Stores of older builds may hold
 * seen rows above the mark: a seq is next when the rows cover every seq
 * between.) The rule is part of apply: every member must run it, so a
 * cluster is upgraded past it all at once.
 *
 * A node's incarnations are never mixed: once a newer incarnation of a
 * node has a command applied, the older ones' rows go, and a command of
 * an older incarnation that commits later (sent by a process that has
 * since stopped) is dropped. Its process acknowledged nothing of it: it
 * would have had to apply it first.
 *
 * Checklist: the mark's value was 8 bytes (mark alone) in format 2; it is
 * read either way and written as 16 (STORE__FORMAT_VERSION 3). */

struct dedupe_key {
    uint64_t node_id;
    uint64_t incarnation;
};

/* Dedupe rows (mark or seen) of the node of *arg with an incarnation
 * older than its. */
static bool older_incarnation(const void *arg, const MDB_val *k)
{
    const struct dedupe_key *d = arg;

    return (k->mv_size == 16 || k->mv_size == 24) &&
           store__get64(k->mv_data) == d->node_id &&
           store__get64((uint8_t *)k->mv_data + 8) < d->incarnation;
}

/* Seen rows of *arg's (node, incarnation) whose seq is at most its mark:
 * the walk starts at the first of them. */
struct seen_upto {
    uint8_t prefix[16];
    uint64_t mark;
};

static bool seen_at_or_below(const void *arg, const MDB_val *k)
{
    const struct seen_upto *u = arg;

    return k->mv_size == 24 && store__key_has_prefix(k, u->prefix, 16) &&
           store__get64((uint8_t *)k->mv_data + 16) <= u->mark;
}

/* Stops the walk at the first dedupe row at or after its start: with
 * NEWER_FOUND if that row is of the node *arg, OTHER_NODE if not. */
#define NEWER_FOUND 1 /* STORE__WALK_STOP */
#define OTHER_NODE  2

static int same_node_first(void *arg, const MDB_val *k, const MDB_val *v)
{
    const uint64_t *node = arg;

    (void)v;
    return k->mv_size >= 8 && store__get64(k->mv_data) == *node ? NEWER_FOUND
                                                                : OTHER_NODE;
}

/* *newer true if a newer incarnation of o's node has had a command
 * applied: o's commands are stale then (apply drops them). */
static int newer_incarnation(struct store_txn *txn,
                             const struct store_origin *o, bool *newer)
{
    uint64_t node = o->node_id;
    uint8_t start[16];
    int rv;

    *newer = false;
    if (o->incarnation == UINT64_MAX) {
        return 0;
    }
    store__put64(start, o->node_id);
    store__put64(start + 8, o->incarnation + 1);
    rv = store__walk(txn, STORE__DB_DEDUPE, start, sizeof(start),
                     same_node_first, &node);
    if (rv < 0) {
        return rv;
    }
    *newer = rv == NEWER_FOUND;
    return 0;
}

/* A first command of (node, incarnation): sets *stale if a newer
 * incarnation of the node was seen, else forgets the older ones. */
static int new_incarnation(struct store_txn *txn, const struct store_origin *o,
                           bool *stale)
{
    struct dedupe_key d = {o->node_id, o->incarnation};
    uint8_t start[16];
    int rv = newer_incarnation(txn, o, stale);

    if (rv != 0 || *stale) {
        return rv;
    }
    store__put64(start, o->node_id);
    store__put64(start + 8, 0);
    return store__del_while(txn, STORE__DB_DEDUPE, start, sizeof(start),
                            older_incarnation, &d);
}

/* Reads the mark row into *mark and *n_seen; *found false if none. */
static int mark_get(struct store_txn *txn, const uint8_t key[16], uint64_t *mark,
                    uint64_t *n_seen, bool *found)
{
    MDB_val v;
    int rv = store__get(txn, STORE__DB_DEDUPE, key, 16, &v);

    *found = rv == 0;
    *mark = 0;
    *n_seen = 0;
    if (rv == STORE_ENOTFOUND) {
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    if (v.mv_size != 8 && v.mv_size != 16) {
        return STORE_ECORRUPT;
    }
    *mark = store__get64(v.mv_data);
    if (v.mv_size == 16) {
        *n_seen = store__get64((uint8_t *)v.mv_data + 8);
    }
    return 0;
}

/* Counts the seen rows under the 16-byte prefix of key (a walk that
 * visits at most what the proposer has in flight). */
struct seen_count {
    const uint8_t *prefix;
    uint64_t n;
};

static int count_one(void *arg, const MDB_val *k, const MDB_val *v)
{
    struct seen_count *sc = arg;

    (void)v;
    if (k->mv_size != 24 || !store__key_has_prefix(k, sc->prefix, 16)) {
        return STORE__WALK_STOP;
    }
    sc->n++;
    return 0;
}

static int count_seen(struct store_txn *txn, const uint8_t key[24], uint64_t *n)
{
    struct seen_count sc = {key, 0};
    uint8_t start[24];
    int rv;

    memcpy(start, key, 16);
    store__put64(start + 16, 0);
    rv = store__walk(txn, STORE__DB_DEDUPE, start, sizeof(start),
                     count_one, &sc);
    if (rv < 0) {
        return rv;
    }
    *n = sc.n;
    return 0;
}

/* Counts the seen rows of key's (node, incarnation) with a seq in
 * (after, before): older builds applied seqs out of order and left such
 * rows; this build leaves none above the mark. */
struct seen_between {
    const uint8_t *prefix;
    uint64_t before;
    uint64_t n;
};

static int count_between(void *arg, const MDB_val *k, const MDB_val *v)
{
    struct seen_between *sb = arg;

    (void)v;
    if (k->mv_size != 24 || !store__key_has_prefix(k, sb->prefix, 16) ||
        store__get64((uint8_t *)k->mv_data + 16) >= sb->before) {
        return STORE__WALK_STOP;
    }
    sb->n++;
    return 0;
}

/* True (*over) if a seq of the proposer in (to, seq) has not been
 * applied: this command overtook one proposed before it. A command
 * without a promise (low 0: from a build before it) claims no order. */
static int overtakes(struct store_txn *txn, const uint8_t key[24], uint64_t to,
                     const struct store_origin *o, uint64_t n_seen,
                     bool *over)
{
    uint64_t seq = o->seq;
    struct seen_between sb = {key, seq, 0};
    uint8_t start[24];
    int rv;

    *over = o->low != 0 && seq > to + 1;
    if (!*over || n_seen == 0) {
        return 0;
    }
    memcpy(start, key, 16);
    store__put64(start + 16, to + 1);
    rv = store__walk(txn, STORE__DB_DEDUPE, start, sizeof(start),
                     count_between, &sb);
    if (rv < 0) {
        return rv;
    }
    *over = sb.n < seq - to - 1;
    return 0;
}

/* Replay check: *dup true if this origin's seq was applied already (or
 * its incarnation is stale); *over true if it overtook a command its
 * proposer made before it and still has pending (that one must apply
 * first: a worker's GRAB before its RELEASE). Records the seq when it
 * is neither. */
/* The row key of one command: node, incarnation, seq. */
static void origin_key(uint8_t key[24], const struct store_origin *o)
{
    store__put64(key, o->node_id);
    store__put64(key + 8, o->incarnation);
    store__put64(key + 16, o->seq);
}

/* *seen: seq was applied before, by the mark of its incarnation's row
 * (mark, n_seen from mark_get) or by a row of its own (key). */
static int seq_seen(struct store_txn *txn, const uint8_t key[24], uint64_t seq,
                    uint64_t mark, uint64_t n_seen, bool *seen)
{
    MDB_val v;
    int rv;

    *seen = seq <= mark;
    if (*seen || n_seen == 0) {
        return 0;
    }
    rv = store__get(txn, STORE__DB_DEDUPE, key, 24, &v);
    *seen = rv == 0;
    return rv == STORE_ENOTFOUND ? 0 : rv;
}

int store__dedupe(struct store_txn *txn, const struct store_origin *o,
                   bool *dup, bool *over)
{
    struct seen_upto u;
    uint8_t key[24];
    uint8_t val[16];
    uint64_t mark;
    uint64_t n_seen;
    uint64_t to;
    bool found;
    int rv;

    *dup = false;
    *over = false;
    if (o->seq == 0) {
        return 0;
    }
    origin_key(key, o);
    rv = mark_get(txn, key, &mark, &n_seen, &found);
    if (rv != 0) {
        return rv;
    }
    if (!found) {
        rv = new_incarnation(txn, o, dup);
        if (rv != 0 || *dup) {
            return rv;
        }
    }
    rv = seq_seen(txn, key, o->seq, mark, n_seen, dup);
    if (rv != 0 || *dup) {
        return rv;
    }
    /* The mark moves to low - 1, and on through this seq if it is next;
     * a seq further on overtook one still pending below it. */
    to = o->low > mark + 1 ? o->low - 1 : mark;
    rv = overtakes(txn, key, to, o, n_seen, over);
    if (rv != 0) {
        return rv;
    }
    if (o->seq == to + 1) {
        to = o->seq;
    }
    if (to > mark && n_seen > 0) {
        memcpy(u.prefix, key, 16);
        u.mark = to;
        store__put64(key + 16, mark + 1);
        rv = store__del_while(txn, STORE__DB_DEDUPE, key, 24,
                              seen_at_or_below, &u);
        if (rv != 0) {
            return rv;
        }
        rv = count_seen(txn, key, &n_seen);
        if (rv != 0) {
            return rv;
        }
        store__put64(key + 16, o->seq);
    }
    if (o->seq > to && !*over) {
        rv = store__put(txn, STORE__DB_DEDUPE, key, 24, NULL, 0, 0);
        if (rv != 0) {
            return rv;
        }
        n_seen++;
    }
    store__put64(val, to);
    store__put64(val + 8, n_seen);
    return store__put(txn, STORE__DB_DEDUPE, key, 16, val, sizeof(val), 0);
}

int store_origin_applied(struct store_txn *txn, const struct store_origin *o,
                         bool *out)
{
    uint8_t key[24];
    uint64_t mark;
    uint64_t n_seen;
    bool found;
    int rv;

    *out = false;
    if (o->seq == 0) {
        return 0;
    }
    origin_key(key, o);
    rv = mark_get(txn, key, &mark, &n_seen, &found);
    if (rv != 0) {
        return rv;
    }
    if (!found) {
        /* Never seen: applied only in the sense that a newer incarnation
         * makes it stale (apply would drop it). */
        return newer_incarnation(txn, o, out);
    }
    return seq_seen(txn, key, o->seq, mark, n_seen, out);
}

/* The mark rows of a node sort by incarnation: keeps the last one's. */
struct newest {
    uint64_t node;
    uint64_t inc;
};

static int newest_one(void *arg, const MDB_val *k, const MDB_val *v)
{
    struct newest *n = arg;

    (void)v;
    if (k->mv_size < 16 || store__get64(k->mv_data) != n->node) {
        return STORE__WALK_STOP;
    }
    n->inc = store__get64((uint8_t *)k->mv_data + 8);
    return 0;
}

int store_node_incarnation(struct store_txn *txn, uint64_t node_id,
                           uint64_t *out)
{
    struct newest n = {node_id, 0};
    uint8_t start[16];
    int rv;

    store__put64(start, node_id);
    store__put64(start + 8, 0);
    rv = store__walk(txn, STORE__DB_DEDUPE, start, sizeof(start), newest_one,
                     &n);
    if (rv < 0) {
        return rv;
    }
    *out = n.inc;
    return 0;
}

