/* Tiled arrays: a logical layer larger than one physical array (rows x cols
 * of the card's geometry) runs as a grid of tiles, each a chip with its own
 * synapses, row drivers and post interface. Tile (i, j) takes logical rows
 * i*R.. and columns j*C..; its post interface turns its column currents into
 * partial neuron inputs, and the neuron bank adds the partial inputs of a
 * grid column before its LIF neurons integrate them (the neurons use the
 * same fixed-point arithmetic as the chip's own). Each tile is configured
 * with the card and a seed of its own (sb_tile_seed), so tiles differ in
 * variation, stuck map and noise as separate dies or macros do. */
#ifndef SB_TILE_H
#define SB_TILE_H

#include "sb/config.h"
#include "sb/params.h"
#include "sb/dev.h"

#define SB_MAX_TILES 64                          /* tiles of one tiled layer */
#define SB_TILED_MAX_NEURONS (8 * SB_MAX_NEURONS) /* neurons of one tiled layer */
#define SB_TILED_MAX_ROWS (SB_MAX_TILES * SB_MAX_ROWS)

typedef struct sb_tiled {
    sb_params_t p;                   /* one tile: the card, geometry rows x cols x 1 */
    uint16_t rows, cols;             /* the logical layer */
    uint16_t neurons;                /* cols, or cols/2 on differential tiles */
    uint8_t grid_rows, grid_cols;    /* tiles down and across */
    uint8_t tile_neurons;            /* neuron positions per tile */
    uint8_t configured;
    sb_dev_t *tile[SB_MAX_TILES];    /* row-major over the grid; each on its own port */
    sb_counters_t cnt;               /* the neuron bank's events, steps and model time */
    int32_t v[SB_TILED_MAX_NEURONS];      /* membranes, Q16.16 */
    int32_t refrac[SB_TILED_MAX_NEURONS]; /* steps left to rest */
    int32_t in[SB_TILED_MAX_NEURONS];     /* summed partial inputs of the step */
    /* learning (sb_learn_train_tiled): the last sample's input activity per
     * row, fires per neuron and error; here rather than on a stack */
    uint16_t act[SB_TILED_MAX_ROWS];
    uint16_t fires[SB_TILED_MAX_NEURONS];
    int32_t err[SB_TILED_MAX_NEURONS];
} sb_tiled_t;

/* Seed of tile k: the card's own seed for tile 0 (a one-tile layer is the
 * plain chip, bit for bit), a hash of (seed, k) for the others. */
uint32_t sb_tile_seed(uint32_t seed, uint16_t k);
/* Lay a rows x cols logical layer over tiles[0..ntiles) (at least
 * ceil(rows/R) * ceil(cols/C) of them, R x C from p, p->layers == 1) and
 * configure each tile. Tiles' ports must export sensed inputs. */
int sb_tiled_configure(sb_tiled_t *t, sb_dev_t *const *tiles, uint16_t ntiles, const sb_params_t *p,
                       uint16_t rows, uint16_t cols);
/* Grid position of a logical cell: tile index and the cell's index in it. */
int sb_tiled_cell(const sb_tiled_t *t, uint16_t row, uint16_t col, uint16_t *tile, uint16_t *cell);
int sb_tiled_reset_neurons(sb_tiled_t *t);
/* One time step. in: rows levels; out: ceil(neurons/32) fire-mask words
 * (bit j%32 of word j/32: neuron j). */
int sb_tiled_step(sb_tiled_t *t, const uint8_t *in, uint32_t *out);
/* For each of batch samples: reset neurons, run steps. in: batch x steps x
 * rows; out: batch x steps x words (may be NULL); v_out: batch x neurons. */
int sb_tiled_run_batch(sb_tiled_t *t, uint32_t batch, uint16_t steps, const uint8_t *in,
                       uint32_t *out, int32_t *v_out);
/* Counters of the whole layer: every tile's plus the neuron bank's. */
void sb_tiled_counters(const sb_tiled_t *t, sb_counters_t *out);
void sb_tiled_clear_counters(sb_tiled_t *t);

#endif
