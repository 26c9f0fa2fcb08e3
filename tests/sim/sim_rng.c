/* SPDX-License-Identifier: BSD-3-Clause
 * tests/sim/sim_rng.c - xoshiro256** seeded by splitmix64.
 *
 * Both algorithms are public-domain designs by Blackman and Vigna; this is
 * a plain implementation of their published recurrences.
 */
#include "sim_rng.h"

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z;

    *x += 0x9e3779b97f4a7c15ULL;
    z = *x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void sim_rng_init(struct sim_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    int i;

    for (i = 0; i < 4; i++) {
        r->s[i] = splitmix(&x);
    }
}

uint64_t sim_rng_next(struct sim_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t sim_rng_range(struct sim_rng *r, uint64_t lo, uint64_t hi)
{
    uint64_t span;

    if (hi <= lo) {
        return lo;
    }
    span = hi - lo + 1;
    if (span == 0) {
        return sim_rng_next(r); /* the full 64-bit range */
    }
    /* The modulo bias is below 2^-40 for the spans the simulator uses. */
    return lo + sim_rng_next(r) % span;
}

bool sim_rng_chance(struct sim_rng *r, unsigned permille)
{
    if (permille == 0) {
        return false;
    }
    if (permille >= 1000) {
        return true;
    }
    return sim_rng_next(r) % 1000 < permille;
}
