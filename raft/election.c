/* SPDX-License-Identifier: BSD-3-Clause
 * raft/election.c - election timers, PreVote, votes and roles.
 *
 * Paper 5.2: a follower that hears nothing for a randomized election
 * timeout becomes a candidate, votes for itself and asks the others; a
 * majority makes it leader.  Thesis 9.6 adds a pre-vote round that changes
 * no state, so a server that was partitioned away cannot force a term bump
 * on its return.  Randomness comes only from the configured seed.
 *
 * Not here: the term rules every message goes through (raft.c), leader
 * duties (replication.c).
 */
#include "raft/internal.h"

/* splitmix64: small, fast, and fully determined by the seed. */
uint64_t raft__rand(struct raft *r)
{
    uint64_t z = (r->rng += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Paper 5.2: "election timeouts are chosen randomly from a fixed interval"
 * so that split votes are rare; ours is [T, 2T). */
void raft__election_reset(struct raft *r)
{
    uint64_t t = r->cfg.election_timeout_ms;

    r->election_deadline = r->now + t + raft__rand(r) % t;
}

/* Whether this server believes a leader is alive: it is the leader, or it
 * heard from one less than an election timeout ago (thesis 4.2.3, 9.6). */
bool raft__in_lease(const struct raft *r)
{
    if (r->role == RAFT_LEADER) {
        return true;
    }
    return r->leader != 0 &&
           r->now < r->last_leader_contact + r->cfg.election_timeout_ms;
}

/* Paper 5.1: "If a server discovers that its current term is out of date,
 * it updates its term to the larger value ... and reverts to follower." */
void raft__become_follower(struct raft *r, raft_term term, raft_id leader)
{
    bool changed =
        r->role != RAFT_FOLLOWER || term != r->term || leader != r->leader;

    if (r->role == RAFT_LEADER) {
        raft__reads_fail_all(r);
        raft__transfer_clear(r);
    }
    if (term > r->term) {
        r->term = term;
        r->vote = 0;
    }
    r->role = RAFT_FOLLOWER;
    r->leader = leader;
    if (leader != 0) {
        r->last_leader_contact = r->now;
    }
    r->n_votes = 0;
    raft__election_reset(r);
    if (changed) {
        raft__trace(r, RAFT_TRACE_BECOME_FOLLOWER, r->term, 0, leader);
    }
}

void raft__become_leader(struct raft *r)
{
    raft_index noop = 0;
    int rv;

    r->role = RAFT_LEADER;
    r->leader = r->cfg.id;
    r->n_votes = 0;
    r->transfer_target = 0;
    raft__progress_sync(r);
    for (size_t i = 0; i < r->n_prs; i++) {
        raft__progress_reset(r, &r->prs[i]);
        r->prs[i].recent_active = r->prs[i].id == r->cfg.id;
    }
    r->uncommitted_bytes = 0;
    for (raft_index i = r->commit + 1; i <= raft__log_last(&r->log); i++) {
        const struct raft_entry *e = raft__log_get(&r->log, i);

        if (e != NULL) {
            r->uncommitted_bytes += e->data.len;
        }
    }
    r->heartbeat_deadline = r->now + r->cfg.heartbeat_ms;
    r->quorum_deadline = r->now + r->cfg.election_timeout_ms;

    /* Thesis 6.4 (and 8): a new leader commits a blank no-op entry of its
     * own term at once; only then does it know which entries are committed
     * (paper 5.4.2 forbids counting replicas of older terms). */
    rv = raft__leader_append(r, RAFT_ENTRY_NOOP, NULL, &noop);
    if (rv != 0) {
        /* Without its no-op this leader could never commit safely; give
         * the term up and let the timer retry. */
        raft__become_follower(r, r->term, 0);
        return;
    }
    r->noop_index = noop;
    raft__trace(r, RAFT_TRACE_BECOME_LEADER, r->term, noop, 0);
    raft__bcast_append(r);
}

/* Counts the answers of voters: *granted and *rejected. */
static void tally(const struct raft *r, size_t *granted, size_t *rejected)
{
    *granted = 0;
    *rejected = 0;
    for (size_t i = 0; i < r->n_votes; i++) {
        if (!raft__is_voter(r, r->votes[i].id)) {
            continue;
        }
        if (r->votes[i].granted) {
            (*granted)++;
        } else {
            (*rejected)++;
        }
    }
}

static void record_vote(struct raft *r, raft_id id, bool granted)
{
    for (size_t i = 0; i < r->n_votes; i++) {
        if (r->votes[i].id == id) {
            return; /* the first answer counts */
        }
    }
    if (r->n_votes < RAFT_MAX_MEMBERS) {
        r->votes[r->n_votes].id = id;
        r->votes[r->n_votes].granted = granted;
        r->n_votes++;
    }
}

/* Decides the election once a majority answered either way. */
static void settle(struct raft *r)
{
    size_t granted;
    size_t rejected;
    size_t q = raft__quorum(r);

    tally(r, &granted, &rejected);
    if (granted >= q) {
        if (r->role == RAFT_PRE_CANDIDATE) {
            raft__campaign(r, false, false);
        } else {
            raft__become_leader(r);
        }
    } else if (rejected >= q) {
        raft__become_follower(r, r->term, 0);
    }
}

/* Paper 5.2: "To begin an election, a follower increments its current term
 * and transitions to candidate state.  It then votes for itself and issues
 * RequestVote RPCs in parallel to each of the other servers."  With pre
 * set, thesis 9.6: first ask whether it could win, without a term bump.
 * transfer marks a campaign started by TimeoutNow (thesis 3.10). */
void raft__campaign(struct raft *r, bool pre, bool transfer)
{
    raft_term term;

    if (!raft__may_campaign(r)) {
        raft__election_reset(r);
        return;
    }
    if (r->role == RAFT_LEADER) {
        return;
    }
    r->n_votes = 0;
    r->leader = 0;
    if (pre) {
        r->role = RAFT_PRE_CANDIDATE;
        term = r->term + 1;
        raft__trace(r, RAFT_TRACE_BECOME_PRE_CANDIDATE, term, 0, 0);
    } else {
        r->term++;
        r->vote = r->cfg.id;
        r->role = RAFT_CANDIDATE;
        term = r->term;
        raft__trace(r, RAFT_TRACE_BECOME_CANDIDATE, term, 0, 0);
    }
    raft__election_reset(r);
    if (pre) {
        /* A pre-vote changes no hard state: our own counts at once. */
        record_vote(r, r->cfg.id, true);
    }
    /* A real vote for ourselves counts only once the hard state that
     * records it is durable (raft__self_vote_persisted): a single voter
     * that led term T and crashed before persisting T could otherwise
     * vote again in T after its restart and let a second leader of T in
     * (found by tests/sim, seed 714294). */
    for (size_t i = 0; i < r->conf.n_members; i++) {
        const struct raft_member *mb = &r->conf.members[i];
        struct raft_msg m;

        if (!mb->voter || mb->id == r->cfg.id) {
            continue;
        }
        raft__msg_init(r, &m, pre ? RAFT_MSG_PREVOTE : RAFT_MSG_VOTE, mb->id);
        m.term = term;
        m.u.vote.last_index = raft__log_last(&r->log);
        m.u.vote.last_term = raft__log_last_term(&r->log);
        m.u.vote.transfer = transfer;
        raft__send(r, &m);
    }
    if (pre) {
        settle(r); /* a single voter goes on to the real vote at once */
    }
}

/* Called by raft_advance once a batch is durable: if that made our vote
 * for ourselves in the current term durable, count it (a single voter
 * wins here). */
void raft__self_vote_persisted(struct raft *r)
{
    if (r->role != RAFT_CANDIDATE || r->persisted_hs.term != r->term ||
        r->persisted_hs.vote != r->cfg.id) {
        return;
    }
    record_vote(r, r->cfg.id, true);
    settle(r);
}

void raft__election_tick(struct raft *r)
{
    if (r->role == RAFT_LEADER || r->now < r->election_deadline) {
        return;
    }
    if (!raft__may_campaign(r)) {
        /* Learners and servers outside the configuration never run. */
        raft__election_reset(r);
        return;
    }
    raft__trace(r, RAFT_TRACE_ELECTION_TIMEOUT, r->term, 0, 0);
    raft__campaign(r, r->cfg.pre_vote, false);
}

/* A vote or pre-vote request.  raft.c has applied the term rules: for VOTE
 * m->term == r->term here; for PREVOTE m->term >= r->term. */
void raft__recv_vote(struct raft *r, const struct raft_msg *m)
{
    struct raft_msg resp;
    bool up = raft__log_up_to_date(&r->log, m->u.vote.last_index,
                                   m->u.vote.last_term);
    bool grant;

    if (m->type == RAFT_MSG_PREVOTE) {
        /* Thesis 9.6: grant a pre-vote only to a log at least as
         * up-to-date as ours, for a term above ours, and only if we have
         * not heard from a leader within an election timeout. */
        grant = m->term > r->term && up &&
                (m->u.vote.transfer || !raft__in_lease(r));
        raft__msg_init(r, &resp, RAFT_MSG_PREVOTE_RESP, m->from);
        resp.term = grant ? m->term : r->term;
        resp.u.vote_resp.granted = grant;
        raft__trace(
            r, grant ? RAFT_TRACE_PREVOTE_GRANTED : RAFT_TRACE_PREVOTE_REJECTED,
            m->term, 0, m->from);
        raft__send(r, &resp);
        return;
    }

    /* Paper 5.2: at most one vote per term, first come first served;
     * paper 5.4.1: only for a log at least as up-to-date as ours. */
    grant = (r->vote == m->from || (r->vote == 0 && r->leader == 0)) && up;
    if (grant) {
        r->vote = m->from;
        raft__election_reset(r);
    }
    raft__msg_init(r, &resp, RAFT_MSG_VOTE_RESP, m->from);
    resp.u.vote_resp.granted = grant;
    raft__trace(r, grant ? RAFT_TRACE_VOTE_GRANTED : RAFT_TRACE_VOTE_REJECTED,
                r->term, 0, m->from);
    raft__send(r, &resp);
}

void raft__recv_vote_resp(struct raft *r, const struct raft_msg *m)
{
    if (m->type == RAFT_MSG_PREVOTE_RESP) {
        if (r->role != RAFT_PRE_CANDIDATE) {
            return;
        }
        if (m->u.vote_resp.granted ? m->term != r->term + 1
                                   : m->term != r->term) {
            return; /* an answer to an older round */
        }
    } else if (r->role != RAFT_CANDIDATE || m->term != r->term) {
        return;
    }
    record_vote(r, m->from, m->u.vote_resp.granted);
    settle(r);
}

/* Thesis 3.10: TimeoutNow makes the target start an election at once,
 * without waiting for its timer and without a pre-vote round. */
void raft__recv_timeout_now(struct raft *r, const struct raft_msg *m)
{
    if (r->role != RAFT_FOLLOWER || !raft__may_campaign(r)) {
        return;
    }
    raft__trace(r, RAFT_TRACE_ELECTION_TIMEOUT, r->term, 0, m->from);
    raft__campaign(r, false, true);
}

/* Paper 5.2: when and why an election starts is only a matter of
 * liveness, so starting one now is as safe as when the timer fires; a
 * lone voter need not sit out a timeout nobody else can interrupt. */
int raft_campaign(struct raft *r)
{
    if (r->batch.active || r->role == RAFT_LEADER) {
        r->errmsg = "campaign: already leader or batch not acknowledged";
        return RAFT_EINVAL;
    }
    if (!raft__may_campaign(r)) {
        return 0; /* learners and servers outside the configuration */
    }
    raft__trace(r, RAFT_TRACE_ELECTION_TIMEOUT, r->term, 0, 0);
    raft__campaign(r, r->cfg.pre_vote, false);
    return 0;
}
