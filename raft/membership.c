/* SPDX-License-Identifier: BSD-3-Clause
 * raft/membership.c - configurations and single-server changes.
 *
 * Thesis 4.1: membership changes one server at a time, so any majority of
 * the old configuration overlaps any majority of the new one and no joint
 * consensus is needed.  A configuration takes effect as soon as its entry
 * is in a server's log, committed or not; truncating the entry reverts it.
 * New servers join as learners (thesis 4.2.1) and are promoted to voters
 * only once their log caught up, so availability does not suffer.
 *
 * Not here: how a CONF entry travels (replication.c, snapshot.c).
 */
#include <string.h>

#include "raft/internal.h"

#define CONF_VERSION  1
#define CONF_HEADER   2 /* version, n_members */
#define CONF_PER_MEMB 9 /* u64 id, u8 voter */

size_t raft_conf_encoded_len(const struct raft_conf *conf)
{
    size_t n =
        conf->n_members < RAFT_MAX_MEMBERS ? conf->n_members : RAFT_MAX_MEMBERS;

    return CONF_HEADER + n * CONF_PER_MEMB;
}

void raft_conf_encode(const struct raft_conf *conf, void *buf)
{
    uint8_t *p = buf;
    size_t n =
        conf->n_members < RAFT_MAX_MEMBERS ? conf->n_members : RAFT_MAX_MEMBERS;

    *p++ = CONF_VERSION;
    *p++ = (uint8_t)n;
    for (size_t i = 0; i < n; i++) {
        uint64_t id = conf->members[i].id;

        for (int s = 56; s >= 0; s -= 8) {
            *p++ = (uint8_t)(id >> s);
        }
        *p++ = conf->members[i].voter ? 1 : 0;
    }
}

bool raft__conf_is_valid(const struct raft_conf *conf)
{
    if (conf->n_members > RAFT_MAX_MEMBERS) {
        return false;
    }
    for (size_t i = 0; i < conf->n_members; i++) {
        if (conf->members[i].id == 0) {
            return false;
        }
        for (size_t j = 0; j < i; j++) {
            if (conf->members[j].id == conf->members[i].id) {
                return false;
            }
        }
    }
    return true;
}

int raft_conf_decode(const void *buf, size_t len, struct raft_conf *out)
{
    const uint8_t *p = buf;
    struct raft_conf c;
    size_t n;

    if (buf == NULL || len < CONF_HEADER || p[0] != CONF_VERSION) {
        return RAFT_EMALFORMED;
    }
    n = p[1];
    if (n > RAFT_MAX_MEMBERS || len != CONF_HEADER + n * CONF_PER_MEMB) {
        return RAFT_EMALFORMED;
    }
    memset(&c, 0, sizeof(c));
    c.n_members = n;
    p += CONF_HEADER;
    for (size_t i = 0; i < n; i++) {
        uint64_t id = 0;

        for (int b = 0; b < 8; b++) {
            id = (id << 8) | *p++;
        }
        if (*p > 1) {
            return RAFT_EMALFORMED;
        }
        c.members[i].id = id;
        c.members[i].voter = *p++ == 1;
    }
    if (!raft__conf_is_valid(&c)) {
        return RAFT_EMALFORMED;
    }
    *out = c;
    return 0;
}

const struct raft_member *raft_conf_find(const struct raft_conf *conf,
                                         raft_id id)
{
    for (size_t i = 0; i < conf->n_members && i < RAFT_MAX_MEMBERS; i++) {
        if (conf->members[i].id == id) {
            return &conf->members[i];
        }
    }
    return NULL;
}

/* The configuration as of `index` (at or above the window's edge): the
 * latest CONF entry at or below it that is newer than the snapshot, in
 * memory or the last one dropped from memory (raft__log_trim), else the
 * snapshot's, else the initial one.  Returns the index it came from. */
static raft_index conf_lookup(const struct raft *r, raft_index index,
                              struct raft_conf *out)
{
    raft_index snap = r->has_snap ? r->snap.meta.index : 0;
    raft_index floor = snap;
    raft_index last = raft__log_last(&r->log);
    raft_index i = index < last ? index : last;

    if (floor < r->log.offset) {
        floor = r->log.offset;
    }
    for (; i > floor; i--) {
        const struct raft_entry *e = raft__log_get(&r->log, i);

        if (e->type == RAFT_ENTRY_CONF &&
            raft_conf_decode(e->data.base, e->data.len, out) == 0) {
            return i;
        }
    }
    if (r->conf_below_index > snap && r->conf_below_index <= index) {
        *out = r->conf_below;
        return r->conf_below_index;
    }
    if (r->has_snap) {
        *out = r->snap.meta.conf;
        return r->snap.meta.index;
    }
    *out = r->cfg.initial_conf;
    return 0;
}

/* Whether two configurations hold the same members with the same roles,
 * in any order. */
bool raft__conf_equal(const struct raft_conf *a, const struct raft_conf *b)
{
    if (a->n_members != b->n_members) {
        return false;
    }
    for (size_t i = 0; i < a->n_members && i < RAFT_MAX_MEMBERS; i++) {
        const struct raft_member *m = raft_conf_find(b, a->members[i].id);

        if (m == NULL || m->voter != a->members[i].voter) {
            return false;
        }
    }
    return true;
}

int raft__conf_at(const struct raft *r, raft_index index, struct raft_conf *out)
{
    (void)conf_lookup(r, index, out);
    return 0;
}

/* Thesis 4.1: the latest configuration in the log is in effect. */
void raft__conf_recompute(struct raft *r)
{
    r->conf_index = conf_lookup(r, raft__log_last(&r->log), &r->conf);
    raft__progress_sync(r);
}

/* Whether this server runs for election.  Thesis 4.2.2: "a server that is
 * not part of its own latest configuration should still start new
 * elections, as it might still be needed until the Cnew entry is
 * committed ... It does not count its own vote in elections unless it is
 * part of its latest configuration."  Without this, a leader that appended
 * its own removal and then lost leadership could leave the others unable
 * to elect anyone: they need its vote, and its longer log refuses theirs. */
bool raft__may_campaign(const struct raft *r)
{
    struct raft_conf prev;
    const struct raft_member *m;

    if (raft__is_voter(r, r->cfg.id)) {
        return true;
    }
    if (r->conf_index == 0 || r->conf_index <= r->commit) {
        return false;
    }
    (void)conf_lookup(r, r->conf_index - 1, &prev);
    m = raft_conf_find(&prev, r->cfg.id);
    return m != NULL && m->voter;
}

/* Thesis 4.2.2: a leader that is not part of the new configuration steps
 * down once the entry that removed it is committed. */
void raft__conf_after_commit(struct raft *r)
{
    if (r->role == RAFT_LEADER && r->conf_index <= r->commit &&
        !raft__is_voter(r, r->cfg.id)) {
        raft__trace(r, RAFT_TRACE_STEP_DOWN_REMOVED, r->term, r->conf_index, 0);
        raft__become_follower(r, r->term, 0);
    }
}

/* Shared preconditions of a change. */
static int change_check(struct raft *r)
{
    if (r->batch.active) {
        r->errmsg = "membership change: ready batch not acknowledged";
        return RAFT_EINVAL;
    }
    if (r->role != RAFT_LEADER) {
        r->errmsg = "membership change: not the leader";
        return RAFT_ENOTLEADER;
    }
    if (r->transfer_target != 0) {
        r->errmsg = "membership change: leadership transfer in progress";
        return RAFT_ETRANSFER;
    }
    /* Thesis 4.1: one change at a time, the next only once the previous
     * one is committed. */
    if (r->conf_index > r->commit) {
        r->errmsg = "membership change: previous change not committed";
        return RAFT_EBUSY;
    }
    /* Ongaro, raft-dev 2015 ("bug in single-server membership changes"):
     * a leader may not append a configuration before it committed an
     * entry of its own term. */
    if (r->commit < r->noop_index) {
        r->errmsg = "membership change: no entry of this term committed";
        return RAFT_EBUSY;
    }
    return 0;
}

static int change_append(struct raft *r, const struct raft_conf *conf,
                         raft_id who, raft_index *index)
{
    uint8_t buf[CONF_HEADER + RAFT_MAX_MEMBERS * CONF_PER_MEMB];
    struct raft_buf data = {buf, raft_conf_encoded_len(conf)};
    raft_index idx = 0;
    int rv;

    raft_conf_encode(conf, buf);
    rv = raft__leader_append(r, RAFT_ENTRY_CONF, &data, &idx);
    if (rv != 0) {
        r->errmsg = "membership change: out of memory";
        return rv;
    }
    r->conf = *conf;
    r->conf_index = idx;
    raft__progress_sync(r);
    raft__trace(r, RAFT_TRACE_CONF_CHANGE, r->term, idx, who);
    if (index != NULL) {
        *index = idx;
    }
    raft__bcast_append(r);
    /* A smaller quorum may commit what was waiting. */
    (void)raft__maybe_commit(r);
    return 0;
}

int raft_add_learner(struct raft *r, raft_id id, raft_index *index)
{
    struct raft_conf c;
    int rv = change_check(r);

    if (rv != 0) {
        return rv;
    }
    if (id == 0 || raft_conf_find(&r->conf, id) != NULL) {
        r->errmsg = "add learner: id 0 or already a member";
        return RAFT_EINVAL;
    }
    if (r->conf.n_members >= RAFT_MAX_MEMBERS) {
        r->errmsg = "add learner: configuration full";
        return RAFT_ETOOMANY;
    }
    c = r->conf;
    c.members[c.n_members].id = id;
    c.members[c.n_members].voter = false;
    c.n_members++;
    return change_append(r, &c, id, index);
}

int raft_promote(struct raft *r, raft_id id, raft_index *index)
{
    struct raft_conf c;
    const struct raft_member *m;
    struct raft__progress *pr;
    int rv = change_check(r);

    if (rv != 0) {
        return rv;
    }
    m = raft_conf_find(&r->conf, id);
    if (m == NULL) {
        r->errmsg = "promote: not a member";
        return RAFT_ENOTFOUND;
    }
    if (m->voter) {
        r->errmsg = "promote: already a voter";
        return RAFT_EINVAL;
    }
    /* Thesis 4.2.1: a new server joins the quorum only once its log has
     * caught up, else the cluster could stall waiting for it. */
    pr = raft__progress_find(r, id);
    if (pr == NULL || pr->match < r->commit) {
        r->errmsg = "promote: learner has not caught up";
        return RAFT_ECATCHUP;
    }
    c = r->conf;
    for (size_t i = 0; i < c.n_members; i++) {
        if (c.members[i].id == id) {
            c.members[i].voter = true;
        }
    }
    return change_append(r, &c, id, index);
}

int raft_remove(struct raft *r, raft_id id, raft_index *index)
{
    struct raft_conf c;
    const struct raft_member *m;
    size_t voters = 0;
    size_t j = 0;
    int rv = change_check(r);

    if (rv != 0) {
        return rv;
    }
    m = raft_conf_find(&r->conf, id);
    if (m == NULL) {
        r->errmsg = "remove: not a member";
        return RAFT_ENOTFOUND;
    }
    for (size_t i = 0; i < r->conf.n_members; i++) {
        voters += r->conf.members[i].voter ? 1 : 0;
    }
    if (m->voter && voters == 1) {
        r->errmsg = "remove: would leave no voter";
        return RAFT_EINVAL;
    }
    memset(&c, 0, sizeof(c));
    for (size_t i = 0; i < r->conf.n_members; i++) {
        if (r->conf.members[i].id != id) {
            c.members[j++] = r->conf.members[i];
        }
    }
    c.n_members = j;
    return change_append(r, &c, id, index);
}
