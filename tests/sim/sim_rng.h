/* SPDX-License-Identifier: BSD-3-Clause
 * tests/sim/sim_rng.h - the simulator's one pseudo-random generator.
 *
 * Every random choice of a simulated run (which faults are on, message
 * delays, crash times, each core's own seed) is drawn from one stream that
 * is seeded from the run's seed, so a seed names a run exactly.  The
 * generator is xoshiro256** seeded through splitmix64: small, fast, and the
 * same on every platform.
 *
 * Not here: anything that reads the wall clock or libc's rand().
 */
#ifndef GR_SIM_RNG_H
#define GR_SIM_RNG_H

#include <stdbool.h>
#include <stdint.h>

struct sim_rng {
    uint64_t s[4];
};

/* Seeds the generator.  Any seed, including 0, gives a usable stream. */
void sim_rng_init(struct sim_rng *r, uint64_t seed);

/* Returns the next 64 random bits. */
uint64_t sim_rng_next(struct sim_rng *r);

/* Returns a value uniformly drawn from [lo, hi]; returns lo if hi <= lo. */
uint64_t sim_rng_range(struct sim_rng *r, uint64_t lo, uint64_t hi);

/* Returns true with probability permille / 1000 (0 never, >= 1000 always).
 * Draws nothing when permille is 0, so a fault that is switched off does
 * not shift the stream of the faults that are on. */
bool sim_rng_chance(struct sim_rng *r, unsigned permille);

#endif /* GR_SIM_RNG_H */
