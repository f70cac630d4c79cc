/* Tiled arrays: the grid's tiles sense, the neuron bank adds and fires. */
#include <string.h>
#include "sb/tile.h"
#include "sb/errors.h"
#include "sb/rng.h"
#include "bits.h"
#include "neuron.h"

uint32_t sb_tile_seed(uint32_t seed, uint16_t k) {
    return k ? sb_rng_u32(seed, SB_RNG_TILE, k, 0) : seed;
}

int sb_tiled_configure(sb_tiled_t *t, sb_dev_t *const *tiles, uint16_t ntiles, const sb_params_t *p,
                       uint16_t rows, uint16_t cols) {
    t->configured = 0;
    int rc = sb_params_check(p, NULL);
    if (rc) return rc;
    if (p->layers != 1 || rows == 0 || cols == 0) return SB_EINVAL;
    const int diff = p->diff_mask & 1u;
    if (diff && (cols & 1u)) return SB_EINVAL;
    uint32_t gr = (rows + p->rows - 1u) / p->rows, gc = (cols + p->cols - 1u) / p->cols;
    uint32_t neurons = diff ? cols / 2u : cols;
    if (gr * gc > SB_MAX_TILES || neurons > SB_TILED_MAX_NEURONS) return SB_ERANGE;
    if (ntiles < gr * gc) return SB_EINVAL;
    memset(t, 0, sizeof *t);
    t->p = *p;
    t->rows = rows;
    t->cols = cols;
    t->neurons = (uint16_t)neurons;
    t->grid_rows = (uint8_t)gr;
    t->grid_cols = (uint8_t)gc;
    t->tile_neurons = sb_params_neurons(p, 0);
    for (uint16_t k = 0; k < gr * gc; k++) {
        sb_params_t q = *p;
        q.seed = sb_tile_seed(p->seed, k);
        if (!tiles[k] || !tiles[k]->port->sensed) return SB_ECMD;
        rc = sb_dev_configure(tiles[k], &q);
        if (rc) return rc;
        t->tile[k] = tiles[k];
    }
    t->configured = 1;
    return SB_OK;
}

int sb_tiled_cell(const sb_tiled_t *t, uint16_t row, uint16_t col, uint16_t *tile, uint16_t *cell) {
    if (!t->configured) return SB_ECONFIG;
    if (row >= t->rows || col >= t->cols) return SB_ERANGE;
    *tile = (uint16_t)((row / t->p.rows) * t->grid_cols + col / t->p.cols);
    *cell = (uint16_t)((row % t->p.rows) * t->p.cols + col % t->p.cols);
    return SB_OK;
}

int sb_tiled_reset_neurons(sb_tiled_t *t) {
    if (!t->configured) return SB_ECONFIG;
    memset(t->v, 0, sizeof t->v);
    memset(t->refrac, 0, sizeof t->refrac);
    return SB_OK;
}

int sb_tiled_step(sb_tiled_t *t, const uint8_t *in, uint32_t *out) {
    if (!t->configured) return SB_ECONFIG;
    const uint16_t R = t->p.rows, nn = t->neurons, tn = t->tile_neurons;
    uint8_t pad[SB_MAX_ROWS];
    int32_t part[SB_MAX_NEURONS];
    memset(t->in, 0, sizeof(int32_t) * nn);
    for (uint8_t i = 0; i < t->grid_rows; i++) {
        const uint8_t *lvl = in + (size_t)i * R;
        uint16_t have = (uint16_t)(t->rows - i * R);
        if (have < R) {   /* the last band of rows: the tile's spare rows stay silent */
            memcpy(pad, lvl, have);
            memset(pad + have, 0, (size_t)(R - have));
            lvl = pad;
        }
        for (uint8_t j = 0; j < t->grid_cols; j++) {
            int rc = sb_dev_sense(t->tile[i * t->grid_cols + j], lvl, part);
            if (rc) return rc;
            uint16_t j0 = (uint16_t)(j * tn), n = (uint16_t)(nn - j0 < tn ? nn - j0 : tn);
            for (uint16_t k = 0; k < n; k++) t->in[j0 + k] += part[k];
        }
    }
    const sb_nk_t k = sb_nk(&t->p);
    if (t->p.leak_q16) sb_leak(t->v, nn, t->p.leak_q16);
    uint32_t fires = 0, m = 0;
    for (uint16_t j = 0; j < nn; j++) {
        /* the neuron's input range is the card's, whatever the tile count */
        int32_t x = t->in[j];
        x = x > k.sat ? k.sat : x < -k.sat ? -k.sat : x;
        m |= sb_lif(&t->v[j], &t->refrac[j], x, k) << (j & 31u);
        if ((j & 31u) == 31u || j + 1u == nn) {   /* a word of 32 neurons, or the last */
            if (out) out[j >> 5] = m;
            fires += sb_popcount32(m);
            m = 0;
        }
    }
    t->cnt.updates += nn;
    t->cnt.fires += fires;
    t->cnt.steps++;
    t->cnt.time_ps += t->p.t_step_ps;   /* the tiles read in parallel */
    return SB_OK;
}

int sb_tiled_run_batch(sb_tiled_t *t, uint32_t batch, uint16_t steps, const uint8_t *in,
                       uint32_t *out, int32_t *v_out) {
    if (!t->configured) return SB_ECONFIG;
    const size_t words = (t->neurons + 31u) / 32u;
    for (uint32_t b = 0; b < batch; b++) {
        sb_tiled_reset_neurons(t);
        for (uint16_t s = 0; s < steps; s++) {
            size_t at = (size_t)b * steps + s;
            int rc = sb_tiled_step(t, in + at * t->rows, out ? out + at * words : NULL);
            if (rc) return rc;
        }
        if (v_out) memcpy(v_out + (size_t)b * t->neurons, t->v, sizeof(int32_t) * t->neurons);
    }
    return SB_OK;
}

/* sb_counters_t is all u64 (a wire struct, no padding): summed field by field. */
_Static_assert(sizeof(sb_counters_t) % sizeof(uint64_t) == 0, "sb_counters_t is u64 fields");

void sb_tiled_counters(const sb_tiled_t *t, sb_counters_t *out) {
    *out = t->cnt;
    if (!t->configured) return;
    uint64_t *sum = (uint64_t *)out;
    for (uint16_t k = 0; k < (uint16_t)(t->grid_rows * t->grid_cols); k++) {
        const uint64_t *c = (const uint64_t *)&t->tile[k]->cnt;
        for (size_t f = 0; f < sizeof(sb_counters_t) / sizeof(uint64_t); f++) sum[f] += c[f];
    }
}

void sb_tiled_clear_counters(sb_tiled_t *t) {
    memset(&t->cnt, 0, sizeof t->cnt);
    if (!t->configured) return;
    for (uint16_t k = 0; k < (uint16_t)(t->grid_rows * t->grid_cols); k++) sb_dev_clear_counters(t->tile[k]);
}
