/* Counter-based hash PRNG (lowbias32 finaliser, Wellons): stateless, so a
 * value depends only on its coordinates, never on visiting order. */
#include "sb/rng.h"

static uint32_t mix(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

uint32_t sb_rng_u32(uint32_t seed, uint32_t stream, uint32_t index, uint32_t counter) {
    uint32_t h = mix(seed + 0x9e3779b9U * (stream + 1U));
    h = mix(h ^ index);
    h = mix(h + counter * 0x85ebca6bU);
    return h;
}

int32_t sb_rng_normal_q12(uint32_t seed, uint32_t stream, uint32_t index, uint32_t counter) {
    /* Irwin-Hall: the sum of four 16-bit uniforms has mean 131070 and
     * sigma 65536/sqrt(3) = 37837.2; scale to Q4.12. */
    uint32_t a = sb_rng_u32(seed, stream, index, counter * 2U);
    uint32_t b = sb_rng_u32(seed, stream, index, counter * 2U + 1U);
    int32_t s = (int32_t)(a & 0xffffU) + (int32_t)(a >> 16) + (int32_t)(b & 0xffffU) + (int32_t)(b >> 16);
    return (int32_t)(((int64_t)(s - 131070) * 4096) / 37837);
}
