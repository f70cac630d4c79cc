/* The virtual chip: synapse array, interface circuits and neurons in
 * fixed point. It is what the emulated board and a board without silicon
 * run, and the host's reference model. Reached only through its port. */
#ifndef SB_CHIP_H
#define SB_CHIP_H

#include "sb/config.h"
#include "sb/params.h"
#include "sb/port.h"

enum { SB_CELL_OK = 0, SB_CELL_STUCK_MIN = 1, SB_CELL_STUCK_MAX = 2, SB_CELL_OPEN = 3, SB_CELL_WORN = 4 };

/* Hooks into the system the chip sits in. */
typedef struct sb_chip_hooks {
    void *ctx;
    /* Called when neurons of `layer` fire in a SAMPLE: on the board this
     * raises the spike interrupt (the ISR timestamps and rings the event). */
    void (*fire)(void *ctx, uint8_t layer, uint32_t step, uint32_t mask);
} sb_chip_hooks_t;

typedef struct sb_chip {
    sb_params_t p;
    uint8_t configured;
    uint8_t neurons[SB_MAX_LAYERS];
    uint16_t ncells;
    /* synapse state, flat index (layer*rows + row)*cols + col */
    uint16_t g[SB_MAX_CELLS];        /* conductance code */
    uint16_t wmin[SB_MAX_CELLS];     /* this cell's window (variation, wear) */
    uint16_t wmax[SB_MAX_CELLS];
    uint16_t scale[SB_MAX_CELLS];    /* device-to-device step scale, Q2.14 */
    uint32_t pulses[SB_MAX_CELLS];   /* endurance: pulses taken */
    uint8_t state[SB_MAX_CELLS];     /* SB_CELL_* */
    /* interface and neurons */
    uint32_t acc[SB_MAX_LAYERS][SB_MAX_COLS];   /* column current, code * level */
    uint32_t rowsum[SB_MAX_LAYERS];             /* sum of levels read (for g_ref) */
    int32_t v[SB_MAX_LAYERS][SB_MAX_NEURONS];   /* membrane, Q16.16 */
    int32_t refrac[SB_MAX_LAYERS][SB_MAX_NEURONS];   /* steps left to rest; int32 so the neuron loop vectorises */
    uint32_t fired[SB_MAX_LAYERS];
    int32_t sensed[SB_MAX_LAYERS][SB_MAX_NEURONS];  /* post-interface outputs of the last SENSE */
    uint32_t step;                               /* SAMPLEs of the last layer, for noise and events */
    uint32_t nsample[SB_MAX_LAYERS];
    uint32_t disturb_events;
    sb_chip_hooks_t hooks;
    sb_port_t port;
} sb_chip_t;

/* Initialise (unconfigured) and return the chip's port. hooks may be NULL. */
sb_port_t *sb_chip_port(sb_chip_t *c, const sb_chip_hooks_t *hooks);
int sb_chip_configure(sb_chip_t *c, const sb_params_t *p);

/* Single pulses and reads used by the port and by the tests. */
int sb_chip_pulse(sb_chip_t *c, uint16_t cell, int8_t polarity);
int sb_chip_age(sb_chip_t *c, uint32_t seconds);

/* exp(-num/den) in Q0.16, integer only (for retention). */
uint32_t sb_exp_neg_q16(uint64_t num, uint64_t den);

#endif
