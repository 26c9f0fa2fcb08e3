/* SPDX-License-Identifier: BSD-3-Clause
 * tests/sim/sim_check.h - the safety properties every step must keep.
 *
 * The checker sees the cluster as hashes, never as raw logs, so each check
 * is O(1) per event and a run can afford to check after every step:
 *
 *   chain(i)  = mix(chain(i-1), term(i), hash(entry i))   per node log
 *   state(i)  = mix(state(i-1), hash(entry i))            per applied prefix
 *
 * Two logs agree on every entry up to i exactly when their chain(i) are
 * equal, which turns log matching, leader completeness and state machine
 * safety (Raft paper, figure 3) into comparisons of 64-bit values.  Hash
 * collisions would hide a bug, never invent one.
 *
 * Not here: the liveness phase (sim_cluster.c drives that).
 */
#ifndef GR_SIM_CHECK_H
#define GR_SIM_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sim_commit_rec {
    uint64_t term;
    uint64_t chain;
    uint64_t state;
    bool known;
};

struct sim_check {
    bool failed;
    char why[512];

    /* leader_of[t] is the node that led term t (0: none seen). */
    int *leader_of;
    size_t leader_cap;

    /* (index, term) -> chain of every entry any node ever held. */
    uint64_t *ek_index;
    uint64_t *ek_term;
    uint64_t *ek_chain;
    size_t ek_cap;
    size_t ek_len;

    /* committed[i]: what index i is, once any node reported it committed
     * or applied it. */
    struct sim_commit_rec *committed;
    size_t committed_cap;
    uint64_t commit_max; /* highest index known committed */

    /* (term, index): the highest index a leader of that term committed,
     * in order of term; "committed in term T" of the paper's 5.4. */
    uint64_t *ct_term;
    uint64_t *ct_index;
    size_t ct_len;
    size_t ct_cap;
    uint64_t leader_commit_max; /* highest index any leader committed */
};

/* 64-bit mixing helpers shared with the cluster driver. */
uint64_t sim_hash_bytes(const void *p, size_t len);
uint64_t sim_hash_mix(uint64_t a, uint64_t b);

void sim_check_init(struct sim_check *c);
void sim_check_close(struct sim_check *c);

/* Records a failure (first one wins) and returns false.  Printf-style. */
bool sim_check_fail(struct sim_check *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Election safety: node id is leader in term. */
bool sim_check_leader(struct sim_check *c, uint64_t term, int id);

/* Log matching: node id holds an entry (index, term) whose log prefix
 * hashes to chain. */
bool sim_check_entry(struct sim_check *c, int id, uint64_t index, uint64_t term,
                     uint64_t chain);

/* State machine safety: node id reports index committed with this chain
 * and, if applied, this state hash (state 0 = not applied yet). */
bool sim_check_committed(struct sim_check *c, int id, uint64_t index,
                         uint64_t term, uint64_t chain);
bool sim_check_applied(struct sim_check *c, int id, uint64_t index,
                       uint64_t state);

/* The leader of term moved its commit index to index. */
void sim_check_leader_commit(struct sim_check *c, uint64_t term,
                             uint64_t index);

/* The highest index committed by a leader of a term before term (0 if
 * none): what leader completeness requires a leader of term to hold. */
uint64_t sim_check_committed_before(const struct sim_check *c, uint64_t term);

/* The committed record for index, or NULL if none is known. */
const struct sim_commit_rec *sim_check_commit_at(const struct sim_check *c,
                                                 uint64_t index);

#endif /* GR_SIM_CHECK_H */
