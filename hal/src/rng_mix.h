/* The counter-based hash of rng.c as inline functions (internal), so that the
 * chip's per-neuron read noise loop can inline and vectorise it. rng.c's
 * public functions are these same functions: one definition, two uses. */
#ifndef SB_RNG_MIX_H
#define SB_RNG_MIX_H

#include <stdint.h>

/* lowbias32 finaliser (Wellons) */
static inline uint32_t sb_rng_mix(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

/* The part of sb_rng_u32 that depends only on (seed, stream). */
static inline uint32_t sb_rng_key(uint32_t seed, uint32_t stream) {
    return sb_rng_mix(seed + 0x9e3779b9U * (stream + 1U));
}

static inline uint32_t sb_rng_u32_key(uint32_t key, uint32_t index, uint32_t counter) {
    uint32_t h = sb_rng_mix(key ^ index);
    return sb_rng_mix(h + counter * 0x85ebca6bU);
}

/* Irwin-Hall: the sum of four 16-bit uniforms has mean 131070 and
 * sigma 65536/sqrt(3) = 37837.2; scale to Q4.12. (s - 131070) * 4096 lies
 * within +-2^29, so the division is done in 32 bits (same quotient as in 64:
 * both truncate toward zero). */
static inline int32_t sb_rng_normal_q12_key(uint32_t key, uint32_t index, uint32_t counter) {
    uint32_t a = sb_rng_u32_key(key, index, counter * 2U);
    uint32_t b = sb_rng_u32_key(key, index, counter * 2U + 1U);
    int32_t s = (int32_t)(a & 0xffffU) + (int32_t)(a >> 16) + (int32_t)(b & 0xffffU) + (int32_t)(b >> 16);
    return ((s - 131070) * 4096) / 37837;
}

#endif
