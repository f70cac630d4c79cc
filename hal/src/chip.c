/* The virtual chip: synapse cells, array read, interface circuits and LIF
 * neurons, all in integers. Executes the port operations the sequencer emits. */
#include <string.h>
#include "sb/chip.h"
#include "sb/errors.h"
#include "sb/rng.h"
#include "bits.h"
#include "rng_mix.h"
#include "neuron.h"

/* 2^(-i/64) in Q0.16, i = 0..64 */
static const uint16_t exp2_tab[65] = {
    65535, 64830, 64132, 63441, 62757, 62081, 61413, 60751, 60097, 59449, 58809, 58176, 57549,
    56929, 56316, 55709, 55109, 54515, 53928, 53347, 52773, 52204, 51642, 51085, 50535, 49991,
    49452, 48920, 48393, 47871, 47356, 46846, 46341, 45842, 45348, 44859, 44376, 43898, 43425,
    42958, 42495, 42037, 41584, 41136, 40693, 40255, 39821, 39392, 38968, 38548, 38133, 37722,
    37316, 36914, 36516, 36123, 35734, 35349, 34968, 34591, 34219, 33850, 33486, 33125, 32768};

uint32_t sb_exp_neg_q16(uint64_t num, uint64_t den) {
    if (den == 0) return 0;
    if (num / den >= 24) return 0;
    uint64_t x = (num << 16) / den;              /* Q16 */
    uint64_t y = (x * 94548u) >> 16;             /* x * log2(e), Q16 */
    uint32_t n = (uint32_t)(y >> 16);
    uint32_t f = (uint32_t)(y & 0xffffu);        /* fraction, Q16 */
    uint32_t i = f >> 10, r = f & 0x3ffu;        /* 64 segments, 10-bit remainder */
    uint32_t a = exp2_tab[i], b = exp2_tab[i + 1];
    uint32_t v = a - (((a - b) * r) >> 10);
    if (num == 0) return 65536;
    return n >= 17 ? 0 : (v >> n);
}

static uint32_t isqrt32(uint32_t x) {
    uint32_t r = 0, b = 1u << 30;
    while (b > x) b >>= 2;
    while (b) {
        if (x >= r + b) { x -= r + b; r = (r >> 1) + b; } else { r >>= 1; }
        b >>= 2;
    }
    return r;
}

/* The cell's as-made window and step scale: pure functions of (seed, cell). */
static void cell_nominal(const sb_params_t *p, uint16_t i, uint16_t *wmin, uint16_t *wmax, uint16_t *scale) {
    int32_t w0 = (int32_t)p->g_max - p->g_min;
    int32_t n = sb_rng_normal_q12(p->seed, SB_RNG_D2D_WIN, i, 0);
    int32_t w = w0 + (int32_t)(((int64_t)w0 * p->d2d_window_q16 * n) >> 28);
    if (w < w0 / 8) w = w0 / 8;
    if (w < 1) w = 1;
    if ((int32_t)p->g_min + w > 65535) w = 65535 - p->g_min;
    *wmin = p->g_min;
    *wmax = (uint16_t)(p->g_min + w);
    int32_t s = 16384 + (int32_t)(((int64_t)16384 * p->d2d_step_q16 * sb_rng_normal_q12(p->seed, SB_RNG_D2D_STEP, i, 0)) >> 28);
    if (s < 1638) s = 1638;
    if (s > 65535) s = 65535;
    *scale = (uint16_t)s;
}

int sb_chip_configure(sb_chip_t *c, const sb_params_t *p) {
    int rc = sb_params_check(p, NULL);
    if (rc) return rc;
    c->p = *p;
    c->ncells = (uint16_t)(p->rows * p->cols * p->layers);
    for (uint8_t l = 0; l < SB_MAX_LAYERS; l++) c->neurons[l] = l < p->layers ? sb_params_neurons(p, l) : 0;
    uint32_t t_min = p->stuck_min_q16, t_max = t_min + p->stuck_max_q16, t_open = t_max + p->stuck_open_q16;
    for (uint16_t i = 0; i < c->ncells; i++) {
        cell_nominal(p, i, &c->wmin[i], &c->wmax[i], &c->scale[i]);
        uint32_t h = sb_rng_u32(p->seed, SB_RNG_STUCK, i, 0) & 0xffffu;
        uint8_t st = h < t_min ? SB_CELL_STUCK_MIN : h < t_max ? SB_CELL_STUCK_MAX : h < t_open ? SB_CELL_OPEN : SB_CELL_OK;
        c->state[i] = st;
        c->g[i] = st == SB_CELL_STUCK_MAX ? c->wmax[i] : st == SB_CELL_OPEN ? 0 : c->wmin[i];
        c->pulses[i] = 0;
    }
    memset(c->acc, 0, sizeof c->acc);
    memset(c->rowsum, 0, sizeof c->rowsum);
    memset(c->v, 0, sizeof c->v);
    memset(c->refrac, 0, sizeof c->refrac);
    memset(c->fired, 0, sizeof c->fired);
    memset(c->sensed, 0, sizeof c->sensed);
    memset(c->nsample, 0, sizeof c->nsample);
    c->step = 0;
    c->disturb_events = 0;
    c->configured = 1;
    return SB_OK;
}

/* Change of G for one pulse at the cell's present position on its branch,
 * before noise: the branch table is in Q0.16 of the cell's window. */
static int32_t branch_step(const sb_chip_t *c, uint16_t i, int8_t pol) {
    int32_t w = (int32_t)c->wmax[i] - c->wmin[i];
    if (w <= 0) return 0;
    uint32_t u = (uint32_t)(((int32_t)c->g[i] - c->wmin[i]) * SB_CURVE_BINS) / (uint32_t)(w + 1);
    uint32_t s = pol > 0 ? c->p.step_p[u] : c->p.step_d[u];
    int32_t d = (int32_t)(((int64_t)s * w) >> 16);
    return (int32_t)(((int64_t)d * c->scale[i]) >> 14);
}

static void set_clamped(sb_chip_t *c, uint16_t i, int32_t g) {
    if (g < c->wmin[i]) g = c->wmin[i];
    if (g > c->wmax[i]) g = c->wmax[i];
    c->g[i] = (uint16_t)g;
}

/* Past its endurance limit a cell's window closes around its middle, or it sticks. */
static void wear(sb_chip_t *c, uint16_t i) {
    const sb_params_t *p = &c->p;
    uint32_t extra = c->pulses[i] - p->endurance_pulses;
    if (p->endurance_mode == SB_ENDURANCE_STICK) { c->state[i] = SB_CELL_WORN; return; }
    uint64_t lost = ((uint64_t)extra * p->endurance_shrink_q16) / p->endurance_pulses; /* Q16 */
    if (lost >= 57344u) { c->state[i] = SB_CELL_WORN; return; }             /* 7/8 of the window gone */
    uint16_t w0min, w0max, sc;
    cell_nominal(p, i, &w0min, &w0max, &sc);
    int32_t mid = ((int32_t)w0min + w0max) / 2, half = ((int32_t)w0max - w0min) / 2;
    int32_t keep = (int32_t)((half * (int64_t)(65536u - lost)) >> 16);
    c->wmin[i] = (uint16_t)(mid - keep);
    c->wmax[i] = (uint16_t)(mid + keep);
    set_clamped(c, i, c->g[i]);
}

int sb_chip_pulse(sb_chip_t *c, uint16_t i, int8_t pol) {
    if (!c->configured) return SB_ECONFIG;
    if (i >= c->ncells) return SB_ERANGE;
    if (pol == 0) return SB_OK;
    if (c->state[i] != SB_CELL_OK) { c->pulses[i]++; return SB_OK; }
    int32_t d = branch_step(c, i, pol);
    if (c->p.c2c_q16) {
        int32_t w = (int32_t)c->wmax[i] - c->wmin[i];
        d += (int32_t)(((int64_t)w * c->p.c2c_q16 * sb_rng_normal_q12(c->p.seed, SB_RNG_C2C, i, c->pulses[i])) >> 28);
    }
    set_clamped(c, i, (int32_t)c->g[i] + (pol > 0 ? d : -d));
    c->pulses[i]++;
    if (c->p.endurance_pulses && c->pulses[i] > c->p.endurance_pulses) wear(c, i);
    return SB_OK;
}

/* V/2 on the selected cell's row and column nudges the half-selected cells. */
static void disturb(sb_chip_t *c, uint8_t l, uint8_t r, uint8_t col, int8_t pol, uint16_t count) {
    const sb_params_t *p = &c->p;
    uint16_t base = (uint16_t)(l * p->rows * p->cols);
    for (uint16_t k = 0; k < (uint16_t)(p->rows + p->cols); k++) {
        uint16_t i;
        if (k < p->cols) { if (k == col) continue; i = (uint16_t)(base + r * p->cols + k); }
        else { uint16_t rr = (uint16_t)(k - p->cols); if (rr == r) continue; i = (uint16_t)(base + rr * p->cols + col); }
        if (c->state[i] != SB_CELL_OK) continue;
        int32_t d = (int32_t)(((int64_t)branch_step(c, i, pol) * p->disturb_q16 * count) >> 16);
        set_clamped(c, i, (int32_t)c->g[i] + (pol > 0 ? d : -d));
        c->disturb_events++;
    }
}

/* All rows of a binary spike vector at once: event-driven, one pass per
 * active row. The common widths get constant trip counts so they vectorise. */
static inline void rows_accum(uint32_t *acc, const uint16_t *base, uint32_t mask, const uint8_t cols) {
    while (mask) {
        const uint16_t *g = base + sb_ctz32(mask) * cols;
        mask &= mask - 1u;
        for (uint8_t k = 0; k < cols; k++) acc[k] += g[k];
    }
}

static void rows_read(sb_chip_t *c, uint8_t l, uint32_t mask) {
    const uint8_t cols = c->p.cols;
    uint32_t *acc = c->acc[l];
    const uint16_t *base = &c->g[l * c->p.rows * cols];
    c->rowsum[l] += sb_popcount32(mask);
    if (cols == 32) rows_accum(acc, base, mask, 32);
    else if (cols == 16) rows_accum(acc, base, mask, 16);
    else rows_accum(acc, base, mask, cols);
}

static void row_read(sb_chip_t *c, uint8_t l, uint8_t r, uint8_t level) {
    const uint8_t cols = c->p.cols;
    const uint16_t *g = &c->g[(l * c->p.rows + r) * cols];
    uint32_t *acc = c->acc[l];
    if (level == 1) {
        for (uint8_t k = 0; k < cols; k++) acc[k] += g[k];
    } else {
        for (uint8_t k = 0; k < cols; k++) acc[k] += (uint32_t)g[k] * level;
    }
    c->rowsum[l] += level;
}

/* Neuron position j's column current: its pair's difference on a
 * differential layer, its column less the reference otherwise. */
static inline int32_t column_cur(const uint32_t *acc, uint8_t j, const int diff, int32_t ref) {
    return diff ? (int32_t)acc[2 * j] - (int32_t)acc[2 * j + 1] : (int32_t)acc[j] - ref;
}

/* Read noise of each neuron position, drawn before the neuron pass (the
 * hash inlined, so this loop vectorises too). */
static inline void read_noise(const sb_chip_t *c, uint8_t l, const uint8_t nn, int32_t *noise) {
    const sb_params_t *p = &c->p;
    const int32_t amp = (int32_t)((((int64_t)p->g_max - p->g_min) * p->read_noise_q16 * isqrt32(c->rowsum[l])) >> 16);
    const uint32_t key = sb_rng_key(p->seed, SB_RNG_READ), idx0 = (uint32_t)l * SB_MAX_NEURONS, ctr = c->nsample[l];
    for (uint8_t j = 0; j < nn; j++)
        noise[j] = (int32_t)(((int64_t)amp * sb_rng_normal_q12_key(key, idx0 + j, ctr)) >> 12);
}

/* Post interface then the layer's neurons: integrate, leak, fire, reset, rest.
 * The leak first (a pass of its own, only when the card has one), then one
 * fused branch-free pass per neuron that vectorises; nn, diff and noisy are
 * constants in the specialised calls below. */
static inline uint32_t neurons_step(sb_chip_t *c, uint8_t l, const uint8_t nn, const int diff, const int noisy) {
    const sb_params_t *p = &c->p;
    const int32_t ref = diff ? 0 : (int32_t)((uint32_t)p->g_ref * c->rowsum[l]);
    const sb_nk_t k = sb_nk(p);
    const uint32_t *acc = c->acc[l];
    int32_t *v = c->v[l];
    int32_t *rf = c->refrac[l];
    int32_t noise[SB_MAX_NEURONS];

    if (noisy) read_noise(c, l, nn, noise);
    if (p->leak_q16) sb_leak(v, nn, p->leak_q16);
    uint32_t mask = 0;
    for (uint8_t j = 0; j < nn; j++) {
        int32_t cur = column_cur(acc, j, diff, ref);
        if (noisy) cur += noise[j];
        mask |= sb_lif(&v[j], &rf[j], sb_post_in(cur, k), k) << j;
    }
    return mask;
}

static void sample(sb_chip_t *c, uint8_t l) {
    const uint8_t nn = c->neurons[l];
    const int diff = (c->p.diff_mask >> l) & 1u;
    uint32_t mask;
    if (c->p.read_noise_q16 && c->rowsum[l]) {
        if (nn == 32 && !diff) mask = neurons_step(c, l, 32, 0, 1);
        else if (nn == 16 && diff) mask = neurons_step(c, l, 16, 1, 1);
        else mask = neurons_step(c, l, nn, diff, 1);
    } else {
        if (nn == 32 && !diff) mask = neurons_step(c, l, 32, 0, 0);
        else if (nn == 16 && diff) mask = neurons_step(c, l, 16, 1, 0);
        else if (nn == 16) mask = neurons_step(c, l, 16, 0, 0);
        else if (nn == 8 && diff) mask = neurons_step(c, l, 8, 1, 0);
        else mask = neurons_step(c, l, nn, diff, 0);
    }
    memset(c->acc[l], 0, sizeof c->acc[l]);
    c->rowsum[l] = 0;
    c->fired[l] = mask;
    if (mask && c->hooks.fire) c->hooks.fire(c->hooks.ctx, l, c->nsample[l], mask);
    c->nsample[l]++;
}

/* The post interface alone: neuron inputs latched for neurons off the chip
 * (a tiled array's neuron bank); the same noise draw as a SAMPLE. */
static void sense(sb_chip_t *c, uint8_t l) {
    const uint8_t nn = c->neurons[l];
    const int diff = (c->p.diff_mask >> l) & 1u;
    const int32_t ref = diff ? 0 : (int32_t)((uint32_t)c->p.g_ref * c->rowsum[l]);
    const sb_nk_t k = sb_nk(&c->p);
    const int noisy = c->p.read_noise_q16 && c->rowsum[l];
    int32_t noise[SB_MAX_NEURONS];
    if (noisy) read_noise(c, l, nn, noise);
    for (uint8_t j = 0; j < nn; j++)
        c->sensed[l][j] = sb_post_in(column_cur(c->acc[l], j, diff, ref) + (noisy ? noise[j] : 0), k);
    memset(c->acc[l], 0, sizeof c->acc[l]);
    c->rowsum[l] = 0;
    c->nsample[l]++;
}

int sb_chip_age(sb_chip_t *c, uint32_t seconds) {
    if (!c->configured) return SB_ECONFIG;
    if (!c->p.retention_tau_s || !seconds) return SB_OK;
    int64_t f = sb_exp_neg_q16(seconds, c->p.retention_tau_s);
    for (uint16_t i = 0; i < c->ncells; i++) {
        if (c->state[i] != SB_CELL_OK) continue;
        int32_t rel = c->p.g_relax;
        if (rel < c->wmin[i]) rel = c->wmin[i];
        if (rel > c->wmax[i]) rel = c->wmax[i];
        int64_t d = ((int64_t)c->g[i] - rel) * f / 65536;   /* truncates toward zero: symmetric */
        set_clamped(c, i, (int32_t)(rel + d));
    }
    return SB_OK;
}

static int op_exec(sb_chip_t *c, const sb_op_t *op) {
    const sb_params_t *p = &c->p;
    if (op->layer >= p->layers) return SB_ERANGE;
    switch (op->kind) {
    case SB_OP_ROW_READ:
        if (op->row >= p->rows) return SB_ERANGE;
        if (op->level == 0 || op->level > p->pre_levels) return SB_EINVAL;
        row_read(c, op->layer, op->row, op->level);
        return SB_OK;
    case SB_OP_READ_ROWS:
        if (p->rows < 32 && (op->mask >> p->rows)) return SB_ERANGE;
        rows_read(c, op->layer, op->mask);
        return SB_OK;
    case SB_OP_SAMPLE:
        sample(c, op->layer);
        return SB_OK;
    case SB_OP_SENSE:
        sense(c, op->layer);
        return SB_OK;
    case SB_OP_PROGRAM: {
        if (op->row >= p->rows || op->col >= p->cols) return SB_ERANGE;
        if (op->polarity != 1 && op->polarity != -1) return SB_EINVAL;
        uint16_t i = (uint16_t)((op->layer * p->rows + op->row) * p->cols + op->col);
        for (uint16_t k = 0; k < op->count; k++) sb_chip_pulse(c, i, op->polarity);
        if (p->disturb_q16) disturb(c, op->layer, op->row, op->col, op->polarity, op->count);
        return SB_OK;
    }
    case SB_OP_HOLD:
        return SB_OK;
    case SB_OP_NEURON_RESET:
        memset(c->v[op->layer], 0, sizeof c->v[op->layer]);
        memset(c->refrac[op->layer], 0, sizeof c->refrac[op->layer]);
        memset(c->acc[op->layer], 0, sizeof c->acc[op->layer]);
        c->rowsum[op->layer] = 0;
        return SB_OK;
    default:
        return SB_EINVAL;
    }
}

static int port_exec(void *ctx, const sb_op_t *ops, size_t n) {
    sb_chip_t *c = ctx;
    if (!c->configured) return SB_ECONFIG;
    for (size_t k = 0; k < n; k++) {
        int rc = op_exec(c, &ops[k]);
        if (rc) return rc;
    }
    return SB_OK;
}

static uint32_t port_fired(void *ctx, uint8_t layer) {
    sb_chip_t *c = ctx;
    return layer < SB_MAX_LAYERS ? c->fired[layer] : 0;
}

static int port_read_cell(void *ctx, uint8_t l, uint8_t r, uint8_t col, uint16_t *g) {
    sb_chip_t *c = ctx;
    if (!c->configured) return SB_ECONFIG;
    if (l >= c->p.layers || r >= c->p.rows || col >= c->p.cols) return SB_ERANGE;
    *g = c->g[(l * c->p.rows + r) * c->p.cols + col];
    return SB_OK;
}

static int port_neurons(void *ctx, uint8_t l, int32_t *v, uint8_t *refrac) {
    sb_chip_t *c = ctx;
    if (!c->configured) return SB_ECONFIG;
    if (l >= c->p.layers) return SB_ERANGE;
    if (v) memcpy(v, c->v[l], sizeof(int32_t) * c->neurons[l]);
    if (refrac) for (uint8_t j = 0; j < c->neurons[l]; j++) refrac[j] = (uint8_t)c->refrac[l][j];
    return SB_OK;
}

static int port_sensed(void *ctx, uint8_t l, int32_t *in) {
    sb_chip_t *c = ctx;
    if (!c->configured) return SB_ECONFIG;
    if (l >= c->p.layers) return SB_ERANGE;
    memcpy(in, c->sensed[l], sizeof(int32_t) * c->neurons[l]);
    return SB_OK;
}

static int port_age(void *ctx, uint32_t seconds) { return sb_chip_age(ctx, seconds); }
static int port_configure(void *ctx, const sb_params_t *p) { return sb_chip_configure(ctx, p); }

/* The synapse state image: the per-cell arrays back to back. */
#define IMAGE_FIELDS 6
static uint32_t image_layout(const sb_chip_t *c, uint8_t **base, uint32_t *size) {
    uint32_t n = c->ncells, total = 0;
    uint8_t *b[IMAGE_FIELDS] = {(uint8_t *)c->g, (uint8_t *)c->wmin, (uint8_t *)c->wmax,
                                (uint8_t *)c->scale, (uint8_t *)c->pulses, (uint8_t *)c->state};
    uint32_t sz[IMAGE_FIELDS] = {2 * n, 2 * n, 2 * n, 2 * n, 4 * n, n};
    for (int k = 0; k < IMAGE_FIELDS; k++) { base[k] = b[k]; size[k] = sz[k]; total += sz[k]; }
    return total;
}

static uint32_t port_image_size(void *ctx) {
    uint8_t *b[IMAGE_FIELDS];
    uint32_t sz[IMAGE_FIELDS];
    return image_layout(ctx, b, sz);
}

static int port_image(void *ctx, uint32_t offset, uint8_t *buf, uint16_t n, int write) {
    sb_chip_t *c = ctx;
    if (!c->configured) return SB_ECONFIG;
    uint8_t *b[IMAGE_FIELDS];
    uint32_t sz[IMAGE_FIELDS];
    uint32_t total = image_layout(c, b, sz);
    if (offset > total || n > total - offset) return SB_ERANGE;
    for (int k = 0; k < IMAGE_FIELDS && n; k++) {
        if (offset >= sz[k]) { offset -= sz[k]; continue; }
        uint32_t m = sz[k] - offset;
        if (m > n) m = n;
        if (write) memcpy(b[k] + offset, buf, m);
        else memcpy(buf, b[k] + offset, m);
        buf += m;
        n = (uint16_t)(n - m);
        offset = 0;
    }
    if (write) {
        for (uint16_t i = 0; i < c->ncells; i++) {
            if (c->state[i] > SB_CELL_WORN || c->wmin[i] > c->wmax[i]) return SB_EINVAL;
        }
    }
    return SB_OK;
}

sb_port_t *sb_chip_port(sb_chip_t *c, const sb_chip_hooks_t *hooks) {
    memset(c, 0, sizeof *c);
    if (hooks) c->hooks = *hooks;
    c->port.ctx = c;
    c->port.exec = port_exec;
    c->port.fired = port_fired;
    c->port.read_cell = port_read_cell;
    c->port.neurons = port_neurons;
    c->port.sensed = port_sensed;
    c->port.age = port_age;
    c->port.configure = port_configure;
    c->port.image = port_image;
    c->port.image_size = port_image_size;
    return &c->port;
}
