/* The post interface and the LIF neuron, one element at a time (internal).
 * Shared by the virtual chip's fused sample pass and by the neuron bank of a
 * tiled array (tile.c), so both compute the same bits. Branch-free (selects
 * with all-ones masks) so that loops over neurons vectorise. */
#ifndef SB_NEURON_H
#define SB_NEURON_H

#include "sb/params.h"

typedef struct {
    int32_t gain, shift, sat;            /* post interface */
    int32_t th, vmin, keep, refractory;  /* neuron; keep: all ones on subtract-reset */
} sb_nk_t;

static inline sb_nk_t sb_nk(const sb_params_t *p) {
    sb_nk_t k = {p->post_gain, p->post_shift, p->post_sat, p->v_th, p->v_min,
                 -(int32_t)(p->reset_mode == SB_RESET_SUBTRACT), p->refractory};
    return k;
}

/* Column current (conductance code x level, reference removed) to neuron
 * input: the sense amplifier saturates at +-SB_POST_IN_MAX, a 10-bit gain
 * scales it, and the output range clips it to +-post_sat (Q16.16). */
static inline int32_t sb_post_in(int32_t cur, const sb_nk_t k) {
    cur = cur > SB_POST_IN_MAX ? SB_POST_IN_MAX : cur < -SB_POST_IN_MAX ? -SB_POST_IN_MAX : cur;
    int32_t in = (cur * k.gain) >> k.shift;
    return in > k.sat ? k.sat : in < -k.sat ? -k.sat : in;
}

/* One neuron, one step (after the leak): integrate `in` unless resting,
 * floor at v_min, fire at v_th, reset to zero or subtract, rest. Returns 1
 * if it fired. */
static inline uint32_t sb_lif(int32_t *v, int32_t *rf, int32_t in, const sb_nk_t k) {
    int32_t vj = *v, rj = *rf;
    int32_t rest = -(int32_t)(rj != 0);
    int32_t x = vj + in;
    x = x < k.vmin ? k.vmin : x;
    int32_t f = -(int32_t)(x >= k.th) & ~rest;
    int32_t xr = (x - k.th) & k.keep;
    x = (xr & f) | (x & ~f);
    *v = (vj & rest) | (x & ~rest);
    *rf = ((rj - 1) & rest) | (k.refractory & f);
    return (uint32_t)f & 1u;
}

/* The membrane loses v*leak/65536 per step, before integration. */
static inline void sb_leak(int32_t *v, uint32_t n, int32_t leak) {
    for (uint32_t j = 0; j < n; j++) v[j] -= (int32_t)(((int64_t)v[j] * leak) >> 16);
}

#endif
