/* The fixed-point parameter block: what the host compiles from a device card
 * and sends at configure time, so one firmware serves every chip.
 * Wire layout: little-endian, exactly this struct, no padding. */
#ifndef SB_PARAMS_H
#define SB_PARAMS_H

#include "sb/config.h"

#define SB_PARAMS_MAGIC 0x53425031u   /* "SBP1" */
#define SB_POST_IN_MAX 0x1fffff       /* sense amplifier input range, conductance code x level */
#define SB_POST_GAIN_MAX 1023         /* 10-bit gain: (I * gain) fits 32 bits */

enum { SB_RESET_ZERO = 0, SB_RESET_SUBTRACT = 1 };
enum { SB_ENDURANCE_SHRINK = 0, SB_ENDURANCE_STICK = 1 };

typedef struct sb_params {
    uint32_t magic;              /* SB_PARAMS_MAGIC */
    uint32_t seed;               /* device variation, stuck map, noise */
    /* energy per event, attojoules */
    uint32_t e_fire_aj;          /* one integrate-and-fire event */
    uint32_t e_update_aj;        /* one membrane-potential update */
    uint32_t e_read_aj;          /* one synapse read (one cell, one read pulse) */
    uint32_t e_pot_aj;           /* one potentiation pulse */
    uint32_t e_dep_aj;           /* one depression pulse */
    uint32_t e_pre_aj;           /* one pre-interface (row driver) operation */
    uint32_t e_post_aj;          /* one post-interface (column sense) operation */
    /* timing, picoseconds */
    uint32_t t_step_ps;          /* one inference time step (read + integrate) */
    uint32_t t_read_ps;          /* one row read pulse */
    uint32_t t_prog_ps;          /* one programming pulse */
    uint32_t t_pre_ps;           /* pre-interface delay */
    uint32_t t_post_ps;          /* post-interface delay */
    uint32_t t_refrac_ps;        /* neuron refractory time (sets its max rate) */
    /* synapse lifetime */
    uint32_t retention_tau_s;    /* relaxation time constant, seconds; 0 = no drift */
    uint32_t endurance_pulses;   /* pulses a cell takes before it wears; 0 = unlimited */
    /* neuron, Q16.16 in units of post-interface output */
    int32_t  v_th;               /* threshold, > 0 */
    int32_t  v_min;              /* floor of the membrane potential, <= 0 */
    int32_t  post_sat;           /* post-interface saturation, |input| <= post_sat */
    /* synapse, conductance codes (0..65535 = 0..g_full_ns on the card) */
    uint16_t g_min;              /* nominal window */
    uint16_t g_max;
    uint16_t g_ref;              /* reference subtracted on single-ended layers, 0 = none */
    uint16_t g_relax;            /* retention: level G relaxes toward */
    uint16_t step_p[SB_CURVE_BINS]; /* potentiation step at window position, Q0.16 of window */
    uint16_t step_d[SB_CURVE_BINS]; /* depression step at window position, Q0.16 of window */
    uint16_t d2d_step_q16;       /* device-to-device sigma of the step scale, Q0.16 */
    uint16_t d2d_window_q16;     /* device-to-device sigma of the window, Q0.16 */
    uint16_t c2c_q16;            /* cycle-to-cycle sigma per pulse, Q0.16 of window */
    uint16_t read_noise_q16;     /* read noise sigma per column sample, Q0.16 of window */
    uint16_t endurance_shrink_q16; /* window lost per endurance_pulses past the limit, Q0.16 */
    uint16_t stuck_min_q16;      /* fraction of cells stuck at Gmin, Q0.16 */
    uint16_t stuck_max_q16;      /* fraction stuck at Gmax */
    uint16_t stuck_open_q16;     /* fraction open (read as 0) */
    uint16_t disturb_q16;        /* half-select (V/2) disturb, Q0.16 of a full step; 0 = off */
    uint16_t post_gain;          /* post interface: input = (I * post_gain) >> post_shift, gain < 1024 */
    uint16_t leak_q16;           /* membrane loses v*leak_q16/65536 per step */
    uint16_t card_id;            /* low 16 bits of the card hash, informative */
    /* geometry and modes */
    uint8_t  rows, cols, layers; /* per layer rows x cols; layers stacked */
    uint8_t  diff_mask;          /* bit l: layer l uses differential column pairs */
    uint8_t  post_shift;
    uint8_t  refractory;         /* steps a neuron rests after firing */
    uint8_t  reset_mode;         /* SB_RESET_* */
    uint8_t  endurance_mode;     /* SB_ENDURANCE_* */
    uint8_t  pre_levels;         /* read pulse width levels, 1 = binary spikes */
    uint8_t  v_op_mv_div10;      /* operating voltage / 10 mV (informative) */
    uint8_t  reserved[2];
} sb_params_t;

_Static_assert(sizeof(sb_params_t) == 17 * 4 + 3 * 4 + 4 * 2 + 2 * SB_CURVE_BINS * 2 + 12 * 2 + 12,
               "sb_params_t must have no padding: it is a wire struct");

/* Check every field against its allowed range. Returns 0 or SB_ECONFIG and,
 * if field is not NULL, the name of the first bad field. */
int sb_params_check(const sb_params_t *p, const char **field);
/* Neurons per layer: cols, or cols/2 on a differential layer. */
uint8_t sb_params_neurons(const sb_params_t *p, uint8_t layer);
/* Decode a little-endian block into p (any host endianness). */
int sb_params_decode(sb_params_t *p, const uint8_t *buf, size_t n);
void sb_params_encode(const sb_params_t *p, uint8_t *buf);

#endif
