/* SPDX-License-Identifier: BSD-3-Clause
 * raft/transfer.c - leadership transfer (thesis 3.10).
 *
 * The leader stops accepting proposals, brings the target's log up to
 * date, then sends it TimeoutNow; the target campaigns at once (no
 * pre-vote) and its vote requests carry a flag that lets voters ignore
 * their leader lease.  If the target does not take over within an
 * election timeout the leader gives up and accepts proposals again.
 *
 * Not here: the campaign itself (election.c).
 */
#include "raft/internal.h"

void raft__transfer_clear(struct raft *r)
{
    r->transfer_target = 0;
}

/* Sends TimeoutNow once the target holds every entry of ours. */
void raft__transfer_check(struct raft *r, struct raft__progress *pr)
{
    struct raft_msg m;

    if (r->role != RAFT_LEADER || r->transfer_target == 0 ||
        pr->id != r->transfer_target || pr->match != raft__log_last(&r->log)) {
        return;
    }
    raft__msg_init(r, &m, RAFT_MSG_TIMEOUT_NOW, pr->id);
    raft__send(r, &m);
    raft__trace(r, RAFT_TRACE_TRANSFER_TIMEOUT_NOW, r->term, pr->match, pr->id);
}

void raft__transfer_tick(struct raft *r)
{
    if (r->role != RAFT_LEADER || r->transfer_target == 0 ||
        r->now < r->transfer_deadline) {
        return;
    }
    raft__trace(r, RAFT_TRACE_TRANSFER_ABORT, r->term, 0, r->transfer_target);
    raft__transfer_clear(r);
}

int raft_transfer_leadership(struct raft *r, raft_id target)
{
    struct raft__progress *pr;

    if (r->batch.active) {
        r->errmsg = "transfer: ready batch not acknowledged";
        return RAFT_EINVAL;
    }
    if (r->role != RAFT_LEADER) {
        r->errmsg = "transfer: not the leader";
        return RAFT_ENOTLEADER;
    }
    if (r->transfer_target != 0) {
        r->errmsg = "transfer: already in progress";
        return RAFT_ETRANSFER;
    }
    if (target == 0) {
        /* The most up-to-date voter needs the least catching up. */
        raft_index best = 0;

        for (size_t i = 0; i < r->n_prs; i++) {
            const struct raft__progress *p = &r->prs[i];

            if (p->voter && p->id != r->cfg.id &&
                (target == 0 || p->match > best)) {
                target = p->id;
                best = p->match;
            }
        }
    }
    if (target == 0 || target == r->cfg.id || !raft__is_voter(r, target)) {
        r->errmsg = "transfer: target is not another voter";
        return RAFT_EINVAL;
    }
    pr = raft__progress_find(r, target);
    RAFT_ASSERT(pr != NULL);
    r->transfer_target = target;
    r->transfer_deadline = r->now + r->cfg.election_timeout_ms;
    raft__trace(r, RAFT_TRACE_TRANSFER_START, r->term, 0, target);
    raft__transfer_check(r, pr);
    while (raft__send_append(r, pr)) {
    }
    return 0;
}
