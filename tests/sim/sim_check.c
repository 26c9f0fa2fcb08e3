/* SPDX-License-Identifier: BSD-3-Clause
 * tests/sim/sim_check.c - election safety, log matching, state machine
 * safety, as comparisons of hashes.
 */
#include "sim_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    size_t n = *cap == 0 ? 64 : *cap;
    unsigned char *q;

    while (n <= need) {
        n *= 2;
    }
    q = realloc(p, n * elem);
    if (q == NULL) {
        fprintf(stderr, "sim: out of memory in the checker\n");
        abort();
    }
    memset(q + *cap * elem, 0, (n - *cap) * elem);
    *cap = n;
    return q;
}

uint64_t sim_hash_mix(uint64_t a, uint64_t b)
{
    uint64_t z = a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t sim_hash_bytes(const void *p, size_t len)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return sim_hash_mix(h, len);
}

void sim_check_init(struct sim_check *c)
{
    memset(c, 0, sizeof(*c));
}

void sim_check_close(struct sim_check *c)
{
    free(c->leader_of);
    free(c->ek_index);
    free(c->ek_term);
    free(c->ek_chain);
    free(c->committed);
    free(c->ct_term);
    free(c->ct_index);
    memset(c, 0, sizeof(*c));
}

bool sim_check_fail(struct sim_check *c, const char *fmt, ...)
{
    va_list ap;

    if (!c->failed) {
        c->failed = true;
        va_start(ap, fmt);
        vsnprintf(c->why, sizeof(c->why), fmt, ap);
        va_end(ap);
    }
    return false;
}

bool sim_check_leader(struct sim_check *c, uint64_t term, int id)
{
    if (term >= c->leader_cap) {
        c->leader_of = grow(c->leader_of, &c->leader_cap, (size_t)term,
                            sizeof(*c->leader_of));
    }
    if (c->leader_of[term] == 0) {
        c->leader_of[term] = id;
        return true;
    }
    if (c->leader_of[term] != id) {
        return sim_check_fail(c,
                              "election safety: nodes %d and %d both led "
                              "term %llu",
                              c->leader_of[term], id, (unsigned long long)term);
    }
    return true;
}

static size_t slot(uint64_t index, uint64_t term, size_t cap)
{
    return (size_t)(sim_hash_mix(index, term) & (cap - 1));
}

static void ek_rehash(struct sim_check *c)
{
    size_t old_cap = c->ek_cap;
    uint64_t *oi = c->ek_index;
    uint64_t *ot = c->ek_term;
    uint64_t *oc = c->ek_chain;
    size_t i;

    c->ek_cap = old_cap == 0 ? 1024 : old_cap * 2;
    c->ek_index = calloc(c->ek_cap, sizeof(uint64_t));
    c->ek_term = calloc(c->ek_cap, sizeof(uint64_t));
    c->ek_chain = calloc(c->ek_cap, sizeof(uint64_t));
    if (c->ek_index == NULL || c->ek_term == NULL || c->ek_chain == NULL) {
        fprintf(stderr, "sim: out of memory in the checker\n");
        abort();
    }
    for (i = 0; i < old_cap; i++) {
        size_t s;

        if (oi[i] == 0) {
            continue;
        }
        s = slot(oi[i], ot[i], c->ek_cap);
        while (c->ek_index[s] != 0) {
            s = (s + 1) & (c->ek_cap - 1);
        }
        c->ek_index[s] = oi[i];
        c->ek_term[s] = ot[i];
        c->ek_chain[s] = oc[i];
    }
    free(oi);
    free(ot);
    free(oc);
}

bool sim_check_entry(struct sim_check *c, int id, uint64_t index, uint64_t term,
                     uint64_t chain)
{
    size_t s;

    if (index == 0) {
        return true;
    }
    if (2 * (c->ek_len + 1) > c->ek_cap) {
        ek_rehash(c);
    }
    s = slot(index, term, c->ek_cap);
    while (c->ek_index[s] != 0) {
        if (c->ek_index[s] == index && c->ek_term[s] == term) {
            if (c->ek_chain[s] != chain) {
                return sim_check_fail(c,
                                      "log matching: node %d holds entry "
                                      "(index %llu, term %llu) with a log "
                                      "prefix that differs from another "
                                      "node's",
                                      id, (unsigned long long)index,
                                      (unsigned long long)term);
            }
            return true;
        }
        s = (s + 1) & (c->ek_cap - 1);
    }
    c->ek_index[s] = index;
    c->ek_term[s] = term;
    c->ek_chain[s] = chain;
    c->ek_len++;
    return true;
}

static struct sim_commit_rec *commit_rec(struct sim_check *c, uint64_t index)
{
    if (index >= c->committed_cap) {
        c->committed = grow(c->committed, &c->committed_cap, (size_t)index,
                            sizeof(*c->committed));
    }
    return &c->committed[index];
}

bool sim_check_committed(struct sim_check *c, int id, uint64_t index,
                         uint64_t term, uint64_t chain)
{
    struct sim_commit_rec *r = commit_rec(c, index);

    if (!r->known) {
        r->known = true;
        r->term = term;
        r->chain = chain;
        if (index > c->commit_max) {
            c->commit_max = index;
        }
        return true;
    }
    if (r->chain != chain || r->term != term) {
        return sim_check_fail(
            c,
            "state machine safety: node %d committed "
            "index %llu as term %llu, but index %llu was "
            "already committed as term %llu with a "
            "different log",
            id, (unsigned long long)index, (unsigned long long)term,
            (unsigned long long)index, (unsigned long long)r->term);
    }
    return true;
}

bool sim_check_applied(struct sim_check *c, int id, uint64_t index,
                       uint64_t state)
{
    struct sim_commit_rec *r = commit_rec(c, index);

    if (r->state == 0) {
        r->state = state;
        return true;
    }
    if (r->state != state) {
        return sim_check_fail(c,
                              "applied prefixes differ: node %d's state "
                              "after applying index %llu is not another "
                              "node's",
                              id, (unsigned long long)index);
    }
    return true;
}

const struct sim_commit_rec *sim_check_commit_at(const struct sim_check *c,
                                                 uint64_t index)
{
    if (index >= c->committed_cap || !c->committed[index].known) {
        return NULL;
    }
    return &c->committed[index];
}

void sim_check_leader_commit(struct sim_check *c, uint64_t term, uint64_t index)
{
    size_t k;

    if (index > c->leader_commit_max) {
        c->leader_commit_max = index;
    }
    for (k = c->ct_len; k > 0; k--) {
        if (c->ct_term[k - 1] == term) {
            if (index > c->ct_index[k - 1]) {
                c->ct_index[k - 1] = index;
            }
            return;
        }
    }
    if (c->ct_len == c->ct_cap) {
        size_t cap = c->ct_cap == 0 ? 32 : c->ct_cap * 2;
        uint64_t *t = realloc(c->ct_term, cap * sizeof(*t));
        uint64_t *i;

        if (t == NULL) {
            fprintf(stderr, "sim: out of memory in the checker\n");
            abort();
        }
        c->ct_term = t;
        i = realloc(c->ct_index, cap * sizeof(*i));
        if (i == NULL) {
            fprintf(stderr, "sim: out of memory in the checker\n");
            abort();
        }
        c->ct_index = i;
        c->ct_cap = cap;
    }
    c->ct_term[c->ct_len] = term;
    c->ct_index[c->ct_len] = index;
    c->ct_len++;
}

uint64_t sim_check_committed_before(const struct sim_check *c, uint64_t term)
{
    uint64_t best = 0;
    size_t k;

    for (k = 0; k < c->ct_len; k++) {
        if (c->ct_term[k] < term && c->ct_index[k] > best) {
            best = c->ct_index[k];
        }
    }
    return best;
}
