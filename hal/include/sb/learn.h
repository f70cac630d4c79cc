/* On-device learning rules, in integers, run by the MCU. A rule turns what
 * the forward pass saw (input activity per row, fires per output neuron, the
 * label) into pulses per synapse, which the sequencer applies. */
#ifndef SB_LEARN_H
#define SB_LEARN_H

#include "sb/dev.h"

enum {
    SB_RULE_SIGN = 0,        /* sign / Manhattan: one pulse per synapse where input and error agree */
    SB_RULE_STOCHASTIC = 1,  /* pulsed SGD as aihwkit: coincidence of stochastic row and column pulse trains */
    SB_RULE_STDP = 2,        /* pair-based STDP with a teacher spike on the label neuron */
    SB_RULE_COMPENSATED = 3, /* sign rule that uses the branch tables to equalise the step */
    SB_RULE_COUNT
};

typedef struct {
    uint16_t steps;
    uint8_t label;
    uint8_t rule;
    uint16_t target;         /* wanted fires of the label neuron */
    uint8_t max_pulses;
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
 * in: steps x rows levels. Trains the last layer. */
int sb_learn_train(sb_dev_t *d, const sb_train_req_t *req, const uint8_t *in, sb_train_result_t *res);

#endif
