/* On-device learning rules, in integers, run by the MCU. A rule turns what
 * the forward pass saw (input activity per row, fires and membrane of each
 * output neuron, the label) into pulses per synapse, which the sequencer
 * applies. Deterministic: every random choice is the counter-based RNG keyed
 * on (card seed, SB_RNG_LEARN, synapse, sample_id) and all learning state is
 * in the controller, so the firmware and the host model apply the same pulses. */
#ifndef SB_LEARN_H
#define SB_LEARN_H

#include "sb/dev.h"
#include "sb/tile.h"

enum {
    SB_RULE_SIGN = 0,        /* sign / Manhattan: one pulse per synapse where input and error agree */
    SB_RULE_STOCHASTIC = 1,  /* pulsed SGD as aihwkit: coincidence of stochastic row and column pulse trains */
    SB_RULE_STDP = 2,        /* pair-based STDP with a teacher spike on the label neuron */
    SB_RULE_COMPENSATED = 3, /* softmax error, mixed-precision accumulation on the MCU, closed-loop
                                (read-verify) steps that equalise the change despite the branch
                                nonlinearity, stuck devices bypassed; last layer only */
    SB_RULE_DFA = 4,         /* SB_RULE_COMPENSATED on the last layer plus direct feedback
                                alignment into every hidden layer (all layers learn on the chip) */
    SB_RULE_COUNT
};

/* Conductance quantum of the compensated rules: 1/SB_LEARN_QUANTA of the window. */
#define SB_LEARN_QUANTA 32

typedef struct {
    uint16_t steps;
    uint8_t label;
    uint8_t rule;
    uint16_t target;         /* sign/stdp: wanted fires of the label neuron; compensated/dfa:
                                softmax temperature, fires per e-fold (0: 1) */
    uint8_t max_pulses;      /* pulses per synapse per sample (write-verify budget for compensated/dfa) */
    uint8_t levels;          /* 1: binary input spikes */
    uint32_t sample_id;
} sb_train_req_t;

typedef struct {
    uint8_t predicted;
    uint8_t neurons;
    uint16_t pulses;
    uint16_t counts[SB_MAX_NEURONS];
} sb_train_result_t;

/* One sample: forward pass on the chip, error on the MCU, pulses applied.
 * in: steps x rows levels. Trains the last layer (SB_RULE_DFA: every layer). */
int sb_learn_train(sb_dev_t *d, const sb_train_req_t *req, const uint8_t *in, sb_train_result_t *res);

typedef struct {
    uint16_t predicted;      /* most fires (first on a tie); 0xffff: no neuron fired */
    uint16_t neurons;
    uint32_t pulses;
} sb_tiled_train_result_t;

/* One sample on a tiled layer (SB_RULE_COMPENSATED only): forward pass on the
 * tiles, the softmax error of the neuron bank on the MCU, and each tile's
 * share of the update through that tile's controller (its accumulators,
 * read-verify and blocked map). in: steps x rows levels. The sample's fire
 * counts per neuron are left in t->fires. */
int sb_learn_train_tiled(sb_tiled_t *t, const sb_train_req_t *req, const uint8_t *in, sb_tiled_train_result_t *res);

#endif
