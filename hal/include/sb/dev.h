/* The device controller: what the MCU does with a chip. It sequences every
 * request into port operations, counts each block's events and model time,
 * and runs inference, write-verify programming and on-device training.
 * The firmware runs it on its port; the host's model backend runs the same
 * code on the virtual chip, so both compute the same bits. */
#ifndef SB_DEV_H
#define SB_DEV_H

#include "sb/config.h"
#include "sb/params.h"
#include "sb/port.h"

/* Per-block event counts and model time. Energy = count x the card's
 * energy per event (attojoules), so totals are exact everywhere. */
typedef struct {
    uint64_t fires;          /* neuron: integrate-and-fire events */
    uint64_t updates;        /* neuron: membrane-potential updates */
    uint64_t reads;          /* synapse: cell reads (active row x column) */
    uint64_t pot;            /* synapse: potentiation pulses */
    uint64_t dep;            /* synapse: depression pulses */
    uint64_t pre;            /* interface: pre-neuron -> synapse driver operations */
    uint64_t post;           /* interface: synapse -> post-neuron sense operations */
    uint64_t time_ps;        /* model time */
    uint64_t steps;          /* inference time steps (all layers) */
    uint64_t samples;        /* training samples applied */
    uint64_t measured_aj;    /* chip supply energy measured by the board's power monitor over
                                the counted window, attojoules; 0 without one (virtual chip) */
} sb_counters_t;
_Static_assert(sizeof(sb_counters_t) == 88, "wire struct");

typedef struct {
    uint64_t neuron_aj, read_aj, pot_aj, dep_aj, iface_aj, total_aj;
} sb_energy_t;

#define SB_MAX_OPS (SB_MAX_ROWS + 4)   /* one read step of one layer */

typedef struct sb_dev {
    sb_port_t *port;
    sb_params_t p;
    uint8_t configured;
    uint8_t neurons[SB_MAX_LAYERS];
    uint32_t card_hash;
    uint32_t step;                       /* time steps run */
    sb_counters_t cnt;
    /* learning: each synapse's update still owed to the array, in
     * 1/SB_LEARN_ONE conductance quanta (mixed precision: the MCU keeps the
     * fraction the devices cannot take yet). Part of the device image. */
    int16_t learn_acc[SB_MAX_LAYERS * SB_MAX_ROWS * SB_MAX_NEURONS];
    /* learning: cells found unable to move up [0] / down [1] (stuck, or at
     * the end of their own window), one bit per cell; a cell that moves the
     * other way is freed again. The yield map the rules route around. */
    uint32_t learn_blocked[2][SB_MAX_CELLS / 32];
    sb_op_t ops[SB_MAX_OPS];
    /* hooks for the readout path: fired masks of each step */
    void *ev_ctx;
    void (*on_fire)(void *ctx, uint8_t layer, uint32_t step, uint32_t mask);
} sb_dev_t;

void sb_dev_init(sb_dev_t *d, sb_port_t *port);
int sb_dev_configure(sb_dev_t *d, const sb_params_t *p);
uint16_t sb_dev_cells(const sb_dev_t *d);
int sb_dev_cell_index(const sb_dev_t *d, uint8_t layer, uint8_t row, uint8_t col);

/* One time step through every layer. in: rows bytes of levels (0 = silent).
 * Layer l's fires drive layer l+1's first rows. out_mask[l] gets each layer's
 * fire mask (may be NULL). */
int sb_dev_step(sb_dev_t *d, const uint8_t *in, uint32_t *out_mask);
/* steps time steps; in: steps x rows levels; out: steps fire masks of the
 * last layer; v_out (may be NULL): last layer membranes after the last step. */
int sb_dev_run(sb_dev_t *d, uint16_t steps, const uint8_t *in, uint32_t *out, int32_t *v_out);
/* Batched inference: for each of batch samples, reset neurons, run steps.
 * in: batch x steps x rows; out: batch x steps masks; v_out: batch x neurons. */
int sb_dev_run_batch(sb_dev_t *d, uint32_t batch, uint16_t steps, const uint8_t *in,
                     uint32_t *out, int32_t *v_out);
int sb_dev_reset_neurons(sb_dev_t *d);
/* One read step of layer 0 whose neurons sit off this chip (a tile of a
 * tiled array): read pulses on the active rows, then a SENSE; out gets the
 * post-interface output (neuron input, Q16.16) of each neuron position.
 * Counts the reads and interface operations, not neuron events or time. */
int sb_dev_sense(sb_dev_t *d, const uint8_t *in, int32_t *out);

/* Move a run of cells: count pulses of polarity each (0 = hold). */
int sb_dev_pulse(sb_dev_t *d, uint16_t first, uint16_t n, int8_t polarity, uint16_t count);
/* Per-cell pulses: cell first+k gets |count[k]| pulses of the sign of count[k]
 * (0: none). The update step of hardware-in-the-loop and sign-rule training. */
int sb_dev_update(sb_dev_t *d, uint16_t first, uint16_t n, const int8_t *count);
int sb_dev_read(sb_dev_t *d, uint16_t first, uint16_t n, uint16_t *g);
/* Write-verify: pulse each cell towards target until within tolerance or
 * max_pulses; pulses_used per cell (may be NULL); returns cells failed (>=0). */
int sb_dev_program(sb_dev_t *d, uint16_t first, uint16_t n, const uint16_t *target,
                   uint16_t tolerance, uint8_t max_pulses, uint8_t *pulses_used, uint32_t *total);
int sb_dev_age(sb_dev_t *d, uint32_t seconds);

/* The device image: counters and step counter, then the port's synapse state
 * image (virtual chip only). Read to checkpoint a session, write to restore. */
uint32_t sb_dev_image_size(const sb_dev_t *d);
int sb_dev_image(sb_dev_t *d, uint32_t offset, uint8_t *buf, uint16_t n, int write);

void sb_dev_energy(const sb_dev_t *d, sb_energy_t *e);
void sb_dev_clear_counters(sb_dev_t *d);

#endif
