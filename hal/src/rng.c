/* Counter-based hash PRNG (lowbias32 finaliser, Wellons): stateless, so a
 * value depends only on its coordinates, never on visiting order.
 * The hash itself is in rng_mix.h (inline, shared with the chip's read noise). */
#include "sb/rng.h"
#include "rng_mix.h"

uint32_t sb_rng_u32(uint32_t seed, uint32_t stream, uint32_t index, uint32_t counter) {
    return sb_rng_u32_key(sb_rng_key(seed, stream), index, counter);
}

int32_t sb_rng_normal_q12(uint32_t seed, uint32_t stream, uint32_t index, uint32_t counter) {
    return sb_rng_normal_q12_key(sb_rng_key(seed, stream), index, counter);
}
