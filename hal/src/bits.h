/* Bit helpers shared by hal/src (internal). */
#ifndef SB_BITS_H
#define SB_BITS_H

#include <stdint.h>

/* Bit trick rather than __builtin_popcount: without a popcount instruction
 * (Cortex-M4, baseline x86-64) the builtin is a library call. */
static inline uint32_t sb_popcount32(uint32_t x) {
    x = x - ((x >> 1) & 0x55555555u);
    x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
    return (((x + (x >> 4)) & 0x0f0f0f0fu) * 0x01010101u) >> 24;
}

static inline uint8_t sb_ctz32(uint32_t x) {
#if defined(__GNUC__)
    return (uint8_t)__builtin_ctz(x);
#else
    uint8_t n = 0;
    while (!(x & 1u)) { x >>= 1; n++; }
    return n;
#endif
}

#endif
