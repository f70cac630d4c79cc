/* On-device learning, run by the MCU after each sample's forward pass.
 * Only the last layer learns here; pulses go out through the sequencer. */
#include <string.h>
#include "sb/learn.h"
#include "sb/errors.h"
#include "sb/rng.h"

/* Change the signed weight of (row, neuron j) in direction s (+1/-1) by n pulses.
 * Differential pair: pulse whichever device of the pair has more room in the
 * wanted direction (G+ up or G- down to raise the weight), so the pair never
 * saturates one-sidedly. Single-ended: pulse the cell itself. */
static int nudge(sb_dev_t *d, uint8_t l, uint8_t r, uint8_t j, int8_t s, uint8_t n, const uint8_t comp, uint16_t *applied) {
    const sb_params_t *p = &d->p;
    int diff = (p->diff_mask >> l) & 1u;
    uint16_t ip, im, gp, gm;
    uint16_t cell;
    int8_t pol;
    int rc;
    if (diff) {
        ip = (uint16_t)sb_dev_cell_index(d, l, r, (uint8_t)(2 * j));
        im = (uint16_t)(ip + 1);
        if ((rc = sb_dev_read(d, ip, 1, &gp))) return rc;
        if ((rc = sb_dev_read(d, im, 1, &gm))) return rc;
        /* room to raise: G+ up (g_max - gp) or G- down (gm - g_min) */
        int32_t up_room = s > 0 ? (int32_t)p->g_max - gp : (int32_t)gp - p->g_min;
        int32_t dn_room = s > 0 ? (int32_t)gm - p->g_min : (int32_t)p->g_max - gm;
        if (up_room >= dn_room) { cell = ip; pol = s; }
        else { cell = im; pol = (int8_t)-s; }
    } else {
        cell = (uint16_t)sb_dev_cell_index(d, l, r, j);
        pol = s;
    }
    if (comp) {
        /* The MCU knows the branch tables: where the step is small (near the
         * branch's saturation) give more pulses, so each update moves the
         * weight by about the same amount as the mean step. */
        uint16_t g;
        if ((rc = sb_dev_read(d, cell, 1, &g))) return rc;
        int32_t w = (int32_t)p->g_max - p->g_min;
        int32_t pos = (int32_t)g - p->g_min;
        if (pos < 0) pos = 0;
        if (pos > w) pos = w;
        uint32_t u = (uint32_t)(pos * SB_CURVE_BINS) / (uint32_t)(w + 1);
        const uint16_t *tab = pol > 0 ? p->step_p : p->step_d;
        uint32_t mean = 0;
        for (int b = 0; b < SB_CURVE_BINS; b++) mean += tab[b];
        mean /= SB_CURVE_BINS;
        uint32_t k = (mean * n + tab[u] / 2) / tab[u];
        if (k < 1) k = 1;
        if (k > 255) k = 255;
        n = (uint8_t)k;
    }
    if ((rc = sb_dev_pulse(d, cell, 1, pol, n))) return rc;
    *applied = (uint16_t)(*applied + n);
    return SB_OK;
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

    uint16_t act[SB_MAX_ROWS];                 /* input activity of the last layer's rows */
    uint16_t cnt[SB_MAX_NEURONS];
    int16_t stdp[SB_MAX_ROWS][SB_MAX_NEURONS]; /* net STDP pulses */
    uint8_t pre_tr[SB_MAX_ROWS], post_tr[SB_MAX_NEURONS];
    uint32_t masks[SB_MAX_LAYERS];
    memset(act, 0, sizeof act);
    memset(cnt, 0, sizeof cnt);
    memset(stdp, 0, sizeof stdp);
    memset(pre_tr, 0, sizeof pre_tr);
    memset(post_tr, 0, sizeof post_tr);
    const uint16_t teach_every = req->target ? (uint16_t)(req->steps / req->target) : 0;

    int rc = sb_dev_reset_neurons(d);
    if (rc) return rc;
    for (uint16_t t = 0; t < req->steps; t++) {
        const uint8_t *x = in + (size_t)t * p->rows;
        rc = sb_dev_step(d, x, masks);
        if (rc) return rc;
        uint32_t m = masks[last];
        uint32_t pre_mask = 0;
        for (uint8_t r = 0; r < p->rows; r++) {
            uint8_t a = last == 0 ? x[r] : (uint8_t)((masks[last - 1] >> r) & 1u);
            act[r] = (uint16_t)(act[r] + a);
            if (a) pre_mask |= 1u << r;
        }
        for (uint8_t j = 0; j < nn; j++) cnt[j] = (uint16_t)(cnt[j] + ((m >> j) & 1u));
        if (req->rule == SB_RULE_STDP) {
            /* traces halve each step; a teacher spike drives the label neuron,
             * and fires of other neurons count as anti-Hebbian */
            uint32_t post = m;
            if (teach_every && (t % teach_every) == teach_every - 1) post |= 1u << req->label;
            for (uint8_t r = 0; r < p->rows; r++) pre_tr[r] = (uint8_t)((pre_tr[r] >> 1) | (((pre_mask >> r) & 1u) << 7));
            for (uint8_t j = 0; j < nn; j++) {
                if (!((post >> j) & 1u)) continue;
                int8_t sgn = j == req->label ? 1 : -1;
                for (uint8_t r = 0; r < p->rows; r++)
                    if (pre_tr[r] >= 32) stdp[r][j] = (int16_t)(stdp[r][j] + sgn);
            }
            for (uint8_t j = 0; j < nn; j++) {
                /* depression: a pre spike shortly after a post spike */
                for (uint8_t r = 0; r < p->rows; r++)
                    if (((pre_mask >> r) & 1u) && post_tr[j] >= 64 && j == req->label) stdp[r][j]--;
                post_tr[j] = (uint8_t)((post_tr[j] >> 1) | (((post >> j) & 1u) << 7));
            }
        }
    }

    uint8_t pred = 0xff;
    uint16_t best = 0;
    for (uint8_t j = 0; j < nn; j++) if (cnt[j] > best) { best = cnt[j]; pred = j; }

    uint32_t act_sum = 0;
    for (uint8_t r = 0; r < p->rows; r++) act_sum += act[r];
    uint16_t applied = 0;
    uint16_t rival = 0;                 /* most fires of a wrong neuron */
    for (uint8_t j = 0; j < nn; j++) if (j != req->label && cnt[j] > rival) rival = cnt[j];
    const uint16_t lab = cnt[req->label];
    for (uint8_t j = 0; j < nn; j++) {
        int32_t err = (j == req->label ? (int32_t)req->target : 0) - cnt[j];
        /* sign rules learn from mistakes only: the label neuron when it is
         * short of its target or not ahead, a wrong neuron when it ties or
         * beats the label neuron */
        int32_t mistake = j == req->label ? (lab < req->target || lab <= rival)
                                          : (cnt[j] > 0 && cnt[j] >= lab);
        for (uint8_t r = 0; r < p->rows; r++) {
            int32_t pulses = 0;
            switch (req->rule) {
            case SB_RULE_SIGN:
            case SB_RULE_COMPENSATED:
                /* Manhattan rule on the input centred on this sample's mean
                 * activity: rows busier than average move with the error,
                 * quieter rows against it (sign of x_centred * error). */
                if (mistake && (uint32_t)act[r] * p->rows != act_sum) {
                    int32_t sx = (uint32_t)act[r] * p->rows > act_sum ? 1 : -1;
                    pulses = (j == req->label ? 1 : -1) * sx;
                }
                break;
            case SB_RULE_STOCHASTIC: {
                /* aihwkit pulsed SGD: BL trials, row fires with p = activity,
                 * column with q = |error| / target; a coincidence is a pulse */
                if (!act[r] || !err) break;
                uint32_t pr = ((uint32_t)act[r] << 16) / ((uint32_t)req->steps * p->pre_levels);
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
            }
            if (!pulses) continue;
            int8_t s = pulses > 0 ? 1 : -1;
            int32_t n = pulses > 0 ? pulses : -pulses;
            if (n > req->max_pulses) n = req->max_pulses;
            rc = nudge(d, last, r, j, s, (uint8_t)n, req->rule == SB_RULE_COMPENSATED, &applied);
            if (rc) return rc;
        }
    }
    d->cnt.samples++;
    res->predicted = pred;
    res->neurons = nn;
    res->pulses = applied;
    memcpy(res->counts, cnt, sizeof(uint16_t) * nn);
    for (uint8_t j = nn; j < SB_MAX_NEURONS; j++) res->counts[j] = 0;
    return SB_OK;
}
