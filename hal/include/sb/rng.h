/* Counter-based random numbers: a value is a pure function of
 * (seed, stream, index, counter), so a cell's noise does not depend on
 * the order in which cells are visited or on the batch size. */
#ifndef SB_RNG_H
#define SB_RNG_H

#include "sb/config.h"

enum {
    SB_RNG_STUCK = 1, SB_RNG_D2D_STEP = 2, SB_RNG_D2D_WIN = 3, SB_RNG_C2C = 4,
    SB_RNG_READ = 5, SB_RNG_DISTURB = 6, SB_RNG_LEARN = 7, SB_RNG_TILE = 8,
};

uint32_t sb_rng_u32(uint32_t seed, uint32_t stream, uint32_t index, uint32_t counter);
/* Approximately standard normal, Q4.12 (4096 = 1 sigma), range about +-3.46. */
int32_t sb_rng_normal_q12(uint32_t seed, uint32_t stream, uint32_t index, uint32_t counter);

#endif
