/* On-device learning, run by the MCU after each sample's forward pass.
 *
 * SB_RULE_SIGN, _STOCHASTIC and _STDP are the textbook pulse rules (open
 * loop: they pick a pulse count and fire it). SB_RULE_COMPENSATED and
 * SB_RULE_DFA are the rules that use what the MCU knows about the chip:
 *  - the error is the softmax (cross-entropy) error of the last layer's
 *    analogue output y_j = fires_j + v_j / v_th, formed in integers on the
 *    MCU, so the update is error-proportional (the float baseline's
 *    gradient), and samples already classified with margin cost nothing;
 *  - mixed precision: each synapse's wanted change accumulates on the MCU
 *    (d->learn_acc, in 1/256 of a conductance quantum, 1/SB_LEARN_QUANTA of
 *    the window); whole quanta go to the array, the fraction waits, so small
 *    gradients are neither lost nor rounded into noise;
 *  - a quantum is applied closed loop: the MCU reads G, pulses, reads again
 *    and stops when the device has moved by the quantum (within half a
 *    quantum) or overshot; the accumulator is charged with what the device
 *    really took. The branch nonlinearity (steps that shrink towards
 *    saturation) and cycle-to-cycle noise are thereby equalised;
 *  - on a differential pair the device with more room in the wanted
 *    direction is moved; a device that does not move under LEARN_STALL
 *    pulses (stuck, or at the end of its own window) is marked blocked in
 *    that direction (d->learn_blocked, the yield map found on the fly) and
 *    the pair's other device takes the change; blocked devices cost no
 *    pulses until they have moved the other way.
 *  - SB_RULE_DFA also trains the hidden layers by direct feedback alignment:
 *    hidden neuron j gets the error projected through a fixed random +-1
 *    matrix (from the RNG, never stored), gated by its activity.
 * Integer only, no heap; the state (accumulators, blocked map) lives in the
 * controller and travels in the device image, so a resumed session continues
 * exactly. */
#include <string.h>
#include "sb/learn.h"
#include "sb/tile.h"
#include "sb/errors.h"
#include "sb/rng.h"

#define LEARN_MAX_QUANTA 4u         /* per synapse per sample */
#define LEARN_STALL 2               /* pulses without any movement: the device is stuck */
#define LEARN_SKIP_Q16 62259u       /* p(label) >= 0.95: classified with margin, no update */
#define LEARN_LR_OUT_Q8 16          /* quanta per input spike per unit error, Q8 (last layer) */
#define LEARN_LR_HID_Q8 4           /* same, hidden layers (DFA) */
#define ACC_FRAC 8                  /* accumulator: quanta in Q8 */
#define ACC_ONE (1 << ACC_FRAC)
#define ACC_MAX (8 * ACC_ONE)       /* at most 8 quanta owed per synapse */

/* 2^(-i/16), Q16, i = 0..16 */
static const uint32_t exp2_frac[17] = {
    65536, 62757, 60097, 57549, 55109, 52773, 50535, 48393, 46341,
    44376, 42495, 40693, 38968, 37316, 35734, 34219, 32768};

/* exp(-x) for x >= 0 in Q8, result Q16 */
static uint32_t exp_neg_q8(uint32_t x) {
    uint32_t y = (x * 369u) >> 8;           /* x * log2(e), Q8 */
    uint32_t n = y >> 8, f = y & 0xffu;
    if (n >= 17) return 0;
    uint32_t i = f >> 4, r = f & 0xfu;
    uint32_t a = exp2_frac[i], b = exp2_frac[i + 1];
    return (a - (((a - b) * r) >> 4)) >> n;
}

static int pair_cells(const sb_dev_t *d, uint8_t l, uint8_t r, uint8_t j, uint16_t *ip, uint16_t *im) {
    int diff = (d->p.diff_mask >> l) & 1u;
    if (diff) {
        *ip = (uint16_t)sb_dev_cell_index(d, l, r, (uint8_t)(2 * j));
        *im = (uint16_t)(*ip + 1);
    } else {
        *ip = (uint16_t)sb_dev_cell_index(d, l, r, j);
        *im = 0xffff;
    }
    return diff;
}

/* Change the signed weight of (row, neuron j) in direction s (+1/-1) by n pulses.
 * Differential pair: pulse whichever device of the pair has more room in the
 * wanted direction (G+ up or G- down to raise the weight), so the pair never
 * saturates one-sidedly. Single-ended: pulse the cell itself. */
static int nudge(sb_dev_t *d, uint8_t l, uint8_t r, uint8_t j, int8_t s, uint8_t n, uint32_t *applied) {
    const sb_params_t *p = &d->p;
    uint16_t ip, im, gp, gm, cell;
    int8_t pol;
    int rc;
    if (pair_cells(d, l, r, j, &ip, &im)) {
        if ((rc = sb_dev_read(d, ip, 1, &gp))) return rc;
        if ((rc = sb_dev_read(d, im, 1, &gm))) return rc;
        int32_t up_room = s > 0 ? (int32_t)p->g_max - gp : (int32_t)gp - p->g_min;
        int32_t dn_room = s > 0 ? (int32_t)gm - p->g_min : (int32_t)p->g_max - gm;
        if (up_room >= dn_room) { cell = ip; pol = s; }
        else { cell = im; pol = (int8_t)-s; }
    } else {
        cell = ip;
        pol = s;
    }
    if ((rc = sb_dev_pulse(d, cell, 1, pol, n))) return rc;
    *applied += n;
    return SB_OK;
}

/* Closed loop: move one device from g towards target (within tol), at most
 * *budget pulses, stopping at the first overshoot (the accumulator carries
 * the difference). Returns the final conductance in *g. A device that does
 * not move under LEARN_STALL pulses is marked blocked in that direction and
 * not pulsed that way again until it has moved the other way. */
static int verify_move(sb_dev_t *d, uint16_t cell, uint16_t *g, int32_t target, int32_t tol,
                       uint8_t *budget, uint32_t *applied) {
    int32_t err = target - (int32_t)*g;
    if (err <= tol && -err <= tol) return SB_OK;
    const int up = err > 0;
    uint32_t *blk = d->learn_blocked[up ? 0 : 1];
    const uint32_t bit = 1u << (cell & 31u);
    if (blk[cell >> 5] & bit) return SB_OK;
    uint8_t stall = 0;
    while (*budget) {
        err = target - (int32_t)*g;
        if ((err <= tol && -err <= tol) || (err > 0) != up) break;
        uint16_t g1;
        int rc = sb_dev_pulse(d, cell, 1, up ? 1 : -1, 1);
        if (rc) return rc;
        if ((rc = sb_dev_read(d, cell, 1, &g1))) return rc;
        (*budget)--;
        (*applied)++;
        if (g1 == *g) {
            if (++stall >= LEARN_STALL) {
                blk[cell >> 5] |= bit;
                break;
            }
        } else {
            stall = 0;
            d->learn_blocked[up ? 1 : 0][cell >> 5] &= ~bit;
        }
        *g = g1;
    }
    return SB_OK;
}

/* Move the weight of (layer l, row r, neuron j) by k quanta (signed), closed loop. */
static int step_weight(sb_dev_t *d, uint8_t l, uint8_t r, uint8_t j, int32_t k, uint8_t budget, uint32_t *applied,
                       int32_t *dw) {
    const sb_params_t *p = &d->p;
    const int32_t win = (int32_t)p->g_max - p->g_min;
    const int32_t q = win / SB_LEARN_QUANTA > 0 ? win / SB_LEARN_QUANTA : 1;
    const int32_t tol = q / 2;
    const int8_t s = k > 0 ? 1 : -1;
    const int32_t want = (k > 0 ? k : -k) * q;     /* conductance change wanted */
    uint16_t ip, im, gp, gm = 0;
    int rc;
    int diff = pair_cells(d, l, r, j, &ip, &im);
    if ((rc = sb_dev_read(d, ip, 1, &gp))) return rc;
    if (!diff) {
        const int32_t g0 = gp;
        int32_t t = (int32_t)gp + s * want;
        rc = verify_move(d, ip, &gp, t, tol, &budget, applied);
        *dw = (int32_t)gp - g0;
        return rc;
    }
    if ((rc = sb_dev_read(d, im, 1, &gm))) return rc;
    /* the device with more room in the wanted direction goes first */
    int32_t room_p = s > 0 ? (int32_t)p->g_max - gp : (int32_t)gp - p->g_min;
    int32_t room_m = s > 0 ? (int32_t)gm - p->g_min : (int32_t)p->g_max - gm;
    int first_p = room_p >= room_m;
    const int32_t w0 = (int32_t)gp - gm;
    for (int pass = 0; pass < 2 && budget; pass++) {
        int use_p = pass == 0 ? first_p : !first_p;
        int32_t left = w0 + s * want - ((int32_t)gp - gm);   /* weight change still to do */
        if (left <= tol && -left <= tol) break;
        if (use_p) {
            int32_t t = (int32_t)gp + left;
            rc = verify_move(d, ip, &gp, t, tol, &budget, applied);
        } else {
            int32_t t = (int32_t)gm - left;
            rc = verify_move(d, im, &gm, t, tol, &budget, applied);
        }
        if (rc) return rc;
    }
    *dw = (int32_t)gp - gm - w0;
    return SB_OK;
}

/* The error-proportional update of one layer: neuron j's error e[j] (Q16),
 * row r's activity act[r] (spikes). */
static int update_layer(sb_dev_t *d, uint8_t l, const uint16_t *act, const int32_t *e, uint8_t nn,
                        int32_t lr_q8, uint8_t budget, uint32_t *applied) {
    const int32_t win = (int32_t)d->p.g_max - d->p.g_min;
    const int32_t q = win / SB_LEARN_QUANTA > 0 ? win / SB_LEARN_QUANTA : 1;
    for (uint8_t r = 0; r < d->p.rows; r++) {
        if (!act[r]) continue;                  /* zero input: zero gradient */
        for (uint8_t j = 0; j < nn; j++) {
            if (!e[j]) continue;
            int64_t v = ((int64_t)e[j] * act[r] * lr_q8) / 256;
            uint32_t syn = ((uint32_t)l * SB_MAX_ROWS + r) * SB_MAX_NEURONS + j;
            int32_t a = d->learn_acc[syn] + (int32_t)(v >> (16 - ACC_FRAC));
            if (a > ACC_MAX) a = ACC_MAX;
            if (a < -ACC_MAX) a = -ACC_MAX;
            int32_t k = a / ACC_ONE;
            if (k > (int32_t)LEARN_MAX_QUANTA) k = LEARN_MAX_QUANTA;
            if (k < -(int32_t)LEARN_MAX_QUANTA) k = -(int32_t)LEARN_MAX_QUANTA;
            if (k) {
                int32_t dw = 0;
                int rc = step_weight(d, l, r, j, k, budget, applied, &dw);
                if (rc) return rc;
                a -= (dw * ACC_ONE) / q;        /* what the devices really took */
                if (a > ACC_MAX) a = ACC_MAX;
                if (a < -ACC_MAX) a = -ACC_MAX;
            }
            d->learn_acc[syn] = (int16_t)a;
        }
    }
    return SB_OK;
}

/* Softmax error of the output neurons: e[j] = onehot - p_j, Q16, from
 * y_j = fires + v / v_th. Returns p(label), Q16. Works in e[] alone (y, then
 * exp, then the error), so it needs no stack for wide tiled layers. */
static uint32_t softmax_error(int32_t v_th, uint16_t nn, const uint16_t *cnt, const int32_t *v,
                              uint16_t label, uint16_t temp, int32_t *e) {
    int32_t ymax = INT32_MIN;
    for (uint16_t j = 0; j < nn; j++) {        /* y, Q8 */
        int64_t fr = ((int64_t)v[j] * 256) / v_th;
        e[j] = (int32_t)cnt[j] * 256 + (int32_t)fr;
        if (e[j] > ymax) ymax = e[j];
    }
    uint32_t sum = 0;
    const uint32_t t = temp ? temp : 1;
    for (uint16_t j = 0; j < nn; j++) {        /* exp(y - ymax), Q16 */
        e[j] = (int32_t)exp_neg_q8((uint32_t)(((uint64_t)(uint32_t)(ymax - e[j]) << 8) / t));
        sum += (uint32_t)e[j];
    }
    uint32_t pl = 0;
    for (uint16_t j = 0; j < nn; j++) {
        uint32_t pj = (uint32_t)(((uint64_t)(uint32_t)e[j] << 16) / sum);
        if (j == label) pl = pj;
        e[j] = (j == label ? 65536 : 0) - (int32_t)pj;
    }
    return pl;
}

int sb_learn_train(sb_dev_t *d, const sb_train_req_t *req, const uint8_t *in, sb_train_result_t *res) {
    if (!d->configured) return SB_ECONFIG;
    const sb_params_t *p = &d->p;
    const uint8_t last = (uint8_t)(p->layers - 1);
    const uint8_t nn = d->neurons[last];
    if (req->label >= nn) return SB_ERANGE;
    if (req->rule >= SB_RULE_COUNT) return SB_EINVAL;
    if (req->steps == 0 || req->steps > SB_MAX_STEPS) return SB_EINVAL;
    if (req->max_pulses == 0) return SB_EINVAL;
    const int closed = req->rule == SB_RULE_COMPENSATED || req->rule == SB_RULE_DFA;
    const uint8_t first = req->rule == SB_RULE_DFA ? 0 : last;   /* first layer that learns */

    uint16_t act[SB_MAX_LAYERS][SB_MAX_ROWS];   /* input activity of each layer's rows */
    uint16_t cnt[SB_MAX_LAYERS][SB_MAX_NEURONS];
    int8_t stdp[SB_MAX_ROWS][SB_MAX_NEURONS];   /* net STDP pulses, saturating */
    uint8_t pre_tr[SB_MAX_ROWS], post_tr[SB_MAX_NEURONS];
    uint32_t masks[SB_MAX_LAYERS];
    memset(act, 0, sizeof act);
    memset(cnt, 0, sizeof cnt);
    if (req->rule == SB_RULE_STDP) {
        memset(stdp, 0, sizeof stdp);
        memset(pre_tr, 0, sizeof pre_tr);
        memset(post_tr, 0, sizeof post_tr);
    }
    const uint16_t teach_every = req->target ? (uint16_t)(req->steps / req->target) : 0;

    int rc = sb_dev_reset_neurons(d);
    if (rc) return rc;
    for (uint16_t t = 0; t < req->steps; t++) {
        const uint8_t *x = in + (size_t)t * p->rows;
        rc = sb_dev_step(d, x, masks);
        if (rc) return rc;
        for (uint8_t l = first; l <= last; l++) {
            for (uint8_t r = 0; r < p->rows; r++) {
                uint8_t a = l == 0 ? x[r] : (uint8_t)((masks[l - 1] >> r) & 1u);
                act[l][r] = (uint16_t)(act[l][r] + a);
            }
            for (uint8_t j = 0; j < d->neurons[l]; j++) cnt[l][j] = (uint16_t)(cnt[l][j] + ((masks[l] >> j) & 1u));
        }
        if (req->rule == SB_RULE_STDP) {
            /* traces halve each step; a teacher spike drives the label neuron,
             * and fires of other neurons count as anti-Hebbian */
            uint32_t post = masks[last];
            if (teach_every && (t % teach_every) == teach_every - 1) post |= 1u << req->label;
            for (uint8_t r = 0; r < p->rows; r++) {
                uint8_t a = last == 0 ? x[r] : (uint8_t)((masks[last - 1] >> r) & 1u);
                pre_tr[r] = (uint8_t)((pre_tr[r] >> 1) | ((a ? 1u : 0u) << 7));
            }
            for (uint8_t j = 0; j < nn; j++) {
                if (!((post >> j) & 1u)) continue;
                int8_t sgn = j == req->label ? 1 : -1;
                for (uint8_t r = 0; r < p->rows; r++)
                    if (pre_tr[r] >= 32 && stdp[r][j] > -127 && stdp[r][j] < 127) stdp[r][j] = (int8_t)(stdp[r][j] + sgn);
            }
            for (uint8_t j = 0; j < nn; j++) {
                /* depression: a pre spike shortly after a post spike */
                for (uint8_t r = 0; r < p->rows; r++)
                    if ((pre_tr[r] & 0x80u) && post_tr[j] >= 64 && j == req->label && stdp[r][j] > -127) stdp[r][j]--;
                post_tr[j] = (uint8_t)((post_tr[j] >> 1) | (((post >> j) & 1u) << 7));
            }
        }
    }

    uint8_t pred = 0xff;
    uint16_t best = 0;
    for (uint8_t j = 0; j < nn; j++) if (cnt[last][j] > best) { best = cnt[last][j]; pred = j; }
    uint32_t applied = 0;

    if (closed) {
        int32_t v[SB_MAX_NEURONS], e[SB_MAX_NEURONS], eh[SB_MAX_NEURONS];
        if ((rc = d->port->neurons(d->port->ctx, last, v, NULL))) return rc;
        uint32_t pl = softmax_error(p->v_th, nn, cnt[last], v, req->label, (uint16_t)(req->target * 256u), e);
        if (pl < LEARN_SKIP_Q16) {
            /* hidden layers first (DFA), from the forward pass's activity */
            for (uint8_t l = first; l < last; l++) {
                const uint8_t nh = d->neurons[l];
                if ((rc = d->port->neurons(d->port->ctx, l, v, NULL))) return rc;
                for (uint8_t j = 0; j < nh; j++) {
                    int32_t s = 0;
                    if (cnt[l][j] || v[j] > 0) {       /* gate: the neuron was active */
                        for (uint8_t k = 0; k < nn; k++) {
                            uint32_t b = sb_rng_u32(p->seed, SB_RNG_LEARN, 0x80000000u | ((uint32_t)l << 16) | ((uint32_t)j << 8) | k, 0xdfau);
                            s += (b & 1u) ? e[k] : -e[k];
                        }
                    }
                    eh[j] = s;
                }
                if ((rc = update_layer(d, l, act[l], eh, nh, LEARN_LR_HID_Q8, req->max_pulses, &applied))) return rc;
            }
            if ((rc = update_layer(d, last, act[last], e, nn, LEARN_LR_OUT_Q8, req->max_pulses, &applied))) return rc;
        }
    } else {
        uint32_t act_sum = 0;
        for (uint8_t r = 0; r < p->rows; r++) act_sum += act[last][r];
        uint16_t rival = 0;                 /* most fires of a wrong neuron */
        for (uint8_t j = 0; j < nn; j++) if (j != req->label && cnt[last][j] > rival) rival = cnt[last][j];
        const uint16_t lab = cnt[last][req->label];
        for (uint8_t j = 0; j < nn; j++) {
            int32_t err = (j == req->label ? (int32_t)req->target : 0) - cnt[last][j];
            /* sign rules learn from mistakes only: the label neuron when it is
             * short of its target or not ahead, a wrong neuron when it ties or
             * beats the label neuron */
            int32_t mistake = j == req->label ? (lab < req->target || lab <= rival)
                                              : (cnt[last][j] > 0 && cnt[last][j] >= lab);
            for (uint8_t r = 0; r < p->rows; r++) {
                int32_t pulses = 0;
                switch (req->rule) {
                case SB_RULE_SIGN:
                    /* Manhattan rule on the input centred on this sample's mean
                     * activity: rows busier than average move with the error,
                     * quieter rows against it (sign of x_centred * error). */
                    if (mistake && (uint32_t)act[last][r] * p->rows != act_sum) {
                        int32_t sx = (uint32_t)act[last][r] * p->rows > act_sum ? 1 : -1;
                        pulses = (j == req->label ? 1 : -1) * sx;
                    }
                    break;
                case SB_RULE_STOCHASTIC: {
                    /* aihwkit pulsed SGD: BL trials, row fires with p = activity,
                     * column with q = |error| / target; a coincidence is a pulse */
                    if (!act[last][r] || !err) break;
                    uint32_t pr = ((uint32_t)act[last][r] << 16) / ((uint32_t)req->steps * p->pre_levels);
                    uint32_t den = req->target ? req->target : 1;
                    uint32_t q = ((uint32_t)(err > 0 ? err : -err) << 16) / den;
                    if (q > 65536) q = 65536;
                    int32_t k = 0;
                    uint32_t idx = (uint32_t)r * SB_MAX_NEURONS + j;
                    for (uint8_t b = 0; b < req->max_pulses; b++) {
                        uint32_t h = sb_rng_u32(p->seed, SB_RNG_LEARN, idx, req->sample_id * 256u + b);
                        if ((h & 0xffffu) < pr && (h >> 16) < q) k++;
                    }
                    pulses = err > 0 ? k : -k;
                    break;
                }
                case SB_RULE_STDP:
                    pulses = stdp[r][j];
                    break;
                default:
                    break;
                }
                if (!pulses) continue;
                int8_t s = pulses > 0 ? 1 : -1;
                int32_t n = pulses > 0 ? pulses : -pulses;
                if (n > req->max_pulses) n = req->max_pulses;
                rc = nudge(d, last, r, j, s, (uint8_t)n, &applied);
                if (rc) return rc;
            }
        }
    }
    d->cnt.samples++;
    res->predicted = pred;
    res->neurons = nn;
    res->pulses = (uint16_t)(applied > 0xffffu ? 0xffffu : applied);
    memcpy(res->counts, cnt[last], sizeof(uint16_t) * nn);
    for (uint8_t j = nn; j < SB_MAX_NEURONS; j++) res->counts[j] = 0;
    return SB_OK;
}

int sb_learn_train_tiled(sb_tiled_t *t, const sb_train_req_t *req, const uint8_t *in, sb_tiled_train_result_t *res) {
    if (!t->configured) return SB_ECONFIG;
    const uint16_t nn = t->neurons, rows = t->rows, R = t->p.rows, tn = t->tile_neurons;
    if (req->label >= nn) return SB_ERANGE;
    if (req->rule != SB_RULE_COMPENSATED) return SB_EINVAL;   /* one layer: the closed-loop rule */
    if (req->steps == 0 || req->steps > SB_MAX_STEPS) return SB_EINVAL;
    if (req->max_pulses == 0) return SB_EINVAL;
    uint32_t words[SB_TILED_MAX_NEURONS / 32];
    memset(t->act, 0, sizeof(uint16_t) * rows);
    memset(t->fires, 0, sizeof(uint16_t) * nn);
    int rc = sb_tiled_reset_neurons(t);
    if (rc) return rc;
    for (uint16_t s = 0; s < req->steps; s++) {
        const uint8_t *x = in + (size_t)s * rows;
        if ((rc = sb_tiled_step(t, x, words))) return rc;
        for (uint16_t r = 0; r < rows; r++) t->act[r] = (uint16_t)(t->act[r] + x[r]);
        for (uint16_t j = 0; j < nn; j++) t->fires[j] = (uint16_t)(t->fires[j] + ((words[j >> 5] >> (j & 31u)) & 1u));
    }
    uint16_t pred = 0xffff, best = 0;
    for (uint16_t j = 0; j < nn; j++) if (t->fires[j] > best) { best = t->fires[j]; pred = j; }
    uint32_t applied = 0;
    uint32_t pl = softmax_error(t->p.v_th, nn, t->fires, t->v, req->label, (uint16_t)(req->target * 256u), t->err);
    if (pl < LEARN_SKIP_Q16) {
        /* each tile learns its part of the layer: its band of rows' activity,
         * its neurons' errors, its own accumulators and blocked map */
        uint16_t act[SB_MAX_ROWS];
        for (uint8_t i = 0; i < t->grid_rows; i++) {
            for (uint16_t r = 0; r < R; r++) act[r] = i * R + r < rows ? t->act[i * R + r] : 0;
            for (uint8_t j = 0; j < t->grid_cols; j++) {
                uint16_t j0 = (uint16_t)(j * tn), n = (uint16_t)(nn - j0 < tn ? nn - j0 : tn);
                rc = update_layer(t->tile[i * t->grid_cols + j], 0, act, t->err + j0, (uint8_t)n,
                                  LEARN_LR_OUT_Q8, req->max_pulses, &applied);
                if (rc) return rc;
            }
        }
    }
    t->cnt.samples++;
    res->predicted = pred;
    res->neurons = nn;
    res->pulses = applied;
    return SB_OK;
}
