/* The port boundary: the lowest layer, the one that touches pins.
 * The sequencer (seq.h) turns every request into an ordered list of port
 * operations; a port executes them. Implemented by the virtual chip
 * (chip.h) and by firmware/port/<mcu> for silicon on real pins. */
#ifndef SB_PORT_H
#define SB_PORT_H

#include "sb/config.h"

typedef enum {
    SB_OP_ROW_READ = 1,  /* read pulse of width `level` on `row` of `layer` (V_read) */
    SB_OP_SAMPLE   = 2,  /* post interface samples the columns of `layer`; neurons integrate, leak, fire */
    SB_OP_PROGRAM  = 3,  /* `count` pulses of `polarity` on cell (layer,row,col), V on it, V/2 on its row and column */
    SB_OP_HOLD     = 4,  /* `count` pulse periods with no pulse */
    SB_OP_NEURON_RESET = 5, /* membranes and refractory counters of `layer` to zero */
    SB_OP_READ_ROWS = 6, /* read pulses of width 1 on every row of `mask` at once (binary spikes) */
    SB_OP_SENSE    = 7,  /* post interface samples the columns of `layer` and latches the neuron
                            inputs, for neurons off the chip (tiled arrays); on-chip neurons idle */
} sb_op_kind_t;

typedef struct {
    uint8_t kind;        /* sb_op_kind_t */
    uint8_t layer;
    uint8_t row;
    uint8_t col;
    uint8_t level;       /* read pulse width level, 1..pre_levels */
    int8_t polarity;     /* +1 potentiation, -1 depression */
    uint16_t count;      /* pulses (PROGRAM, HOLD) */
    uint32_t mask;       /* rows (READ_ROWS) */
} sb_op_t;
_Static_assert(sizeof(sb_op_t) == 12, "port op is 12 bytes");

typedef struct sb_port sb_port_t;
struct sb_port {
    void *ctx;
    /* Execute ops in order. Returns 0 or a negative code. */
    int (*exec)(void *ctx, const sb_op_t *ops, size_t n);
    /* Fire mask of `layer` latched by its last SAMPLE (bit j: neuron j). */
    uint32_t (*fired)(void *ctx, uint8_t layer);
    /* Conductance of one cell, in conductance codes (ADC on silicon). */
    int (*read_cell)(void *ctx, uint8_t layer, uint8_t row, uint8_t col, uint16_t *g);
    /* Membrane potentials and refractory counters of `layer`; silicon ports
     * that cannot observe them return SB_ECMD. */
    int (*neurons)(void *ctx, uint8_t layer, int32_t *v, uint8_t *refrac);
    /* Neuron inputs (Q16.16) of `layer` latched by its last SENSE. NULL on
     * chips whose post interface cannot export them (no tiling there). */
    int (*sensed)(void *ctx, uint8_t layer, int32_t *in);
    /* Let `seconds` pass unpowered (retention). */
    int (*age)(void *ctx, uint32_t seconds);
    /* Apply a new configuration: fresh cells, variation and stuck map from the seed. */
    int (*configure)(void *ctx, const struct sb_params *p);
    /* Virtual chip only (NULL on silicon, whose synapses keep their state by
     * themselves): read or write bytes of the synapse state image, so that a
     * session can carry the virtual chip's non-volatile state across a reset. */
    int (*image)(void *ctx, uint32_t offset, uint8_t *buf, uint16_t n, int write);
    uint32_t (*image_size)(void *ctx);
    /* Silicon with a supply power monitor: chip energy measured since the
     * previous call, attojoules (added to sb_counters_t.measured_aj after
     * every command). NULL without a monitor (virtual chip). */
    uint64_t (*energy_aj)(void *ctx);
};

#endif
