/* The device controller: sequences requests into port operations and counts
 * every block's events. Counting here, from the operations actually sent,
 * makes the counters the same for the virtual chip and for silicon. */
#include <string.h>
#include "sb/dev.h"
#include "sb/errors.h"
#include "sb/proto.h"
#include "bits.h"


void sb_dev_init(sb_dev_t *d, sb_port_t *port) {
    memset(d, 0, sizeof *d);
    d->port = port;
}

int sb_dev_configure(sb_dev_t *d, const sb_params_t *p) {
    int rc = sb_params_check(p, NULL);
    if (rc) return rc;
    rc = d->port->configure(d->port->ctx, p);
    if (rc) return rc;
    d->p = *p;
    uint8_t buf[sizeof(sb_params_t)];
    sb_params_encode(p, buf);
    d->card_hash = sb_crc32(0, buf, sizeof buf);
    for (uint8_t l = 0; l < SB_MAX_LAYERS; l++) d->neurons[l] = l < p->layers ? sb_params_neurons(p, l) : 0;
    d->step = 0;
    memset(&d->cnt, 0, sizeof d->cnt);
    memset(d->learn_acc, 0, sizeof d->learn_acc);
    memset(d->learn_blocked, 0, sizeof d->learn_blocked);
    d->configured = 1;
    return SB_OK;
}

uint16_t sb_dev_cells(const sb_dev_t *d) {
    return d->configured ? (uint16_t)(d->p.rows * d->p.cols * d->p.layers) : 0;
}

int sb_dev_cell_index(const sb_dev_t *d, uint8_t layer, uint8_t row, uint8_t col) {
    if (!d->configured) return SB_ECONFIG;
    if (layer >= d->p.layers || row >= d->p.rows || col >= d->p.cols) return SB_ERANGE;
    return (layer * d->p.rows + row) * d->p.cols + col;
}

/* Levels of n rows (n a multiple of 8) to a row mask, 8 rows per 64-bit word;
 * returns 0 if some level is above 1 (not a binary spike vector). */
static inline int binary_mask(const uint8_t *lvl, const uint8_t n, uint32_t *mask) {
    uint64_t any = 0, w[SB_MAX_ROWS / 8];
    for (uint8_t k = 0; k < n / 8u; k++) {
        memcpy(&w[k], lvl + 8u * k, 8);
        any |= w[k];
    }
    if (any & 0xfefefefefefefefeull) return 0;
    uint32_t m = 0;
    for (uint8_t k = 0; k < n / 8u; k++) m |= (uint32_t)((w[k] * 0x0102040810204080ull) >> 56) << (8u * k);
    *mask = m;
    return 1;
}

/* One layer's read step: read pulses on the active rows (one op for a binary
 * spike vector, one per row for pulse-width levels), then `finish`: a SAMPLE
 * (the chip's neurons integrate; *out gets the fire mask) or a SENSE (the
 * neuron inputs are latched for neurons off the chip; out is unused). */
static int layer_step(sb_dev_t *d, uint8_t l, const uint8_t *lvl, uint32_t in_mask, uint8_t finish, uint32_t *out) {
    const sb_params_t *p = &d->p;
    sb_op_t *ops = d->ops;
    size_t n = 0;
    uint32_t active;
    uint8_t multi = 0;
    if (lvl) {
        uint32_t m = 0;
        uint8_t r = 0;
        /* every level 0 or 1 (binary spikes): eight rows at a time */
        if (p->rows == 32 && binary_mask(lvl, 32, &m)) r = 32;
        else if (p->rows == 16 && binary_mask(lvl, 16, &m)) r = 16;
        for (; r < p->rows; r++) {
            if (lvl[r] > p->pre_levels) return SB_EINVAL;
            multi |= (uint8_t)(lvl[r] > 1);
            m |= (uint32_t)(lvl[r] != 0) << r;
        }
        in_mask = m;
    } else if (p->rows < 32) {
        in_mask &= (1u << p->rows) - 1u;   /* fires of neurons beyond this layer's rows go nowhere */
    }
    active = sb_popcount32(in_mask);
    if (multi) {
        for (uint32_t m = in_mask; m; m &= m - 1u) {
            uint8_t row = sb_ctz32(m);
            ops[n++] = (sb_op_t){SB_OP_ROW_READ, l, row, 0, lvl[row], 0, 0, 0};
        }
    } else if (in_mask) {
        ops[n++] = (sb_op_t){SB_OP_READ_ROWS, l, 0, 0, 0, 0, 0, in_mask};
    }
    ops[n++] = (sb_op_t){finish, l, 0, 0, 0, 0, 0, 0};
    int rc = d->port->exec(d->port->ctx, ops, n);
    if (rc) return rc;
    d->cnt.pre += active;
    d->cnt.reads += active * p->cols;
    d->cnt.post += p->cols;
    if (finish == SB_OP_SAMPLE) {
        uint32_t m = d->port->fired(d->port->ctx, l);
        d->cnt.updates += d->neurons[l];
        d->cnt.fires += sb_popcount32(m);
        *out = m;
    }
    return SB_OK;
}

int sb_dev_sense(sb_dev_t *d, const uint8_t *in, int32_t *out) {
    if (!d->configured) return SB_ECONFIG;
    if (!d->port->sensed) return SB_ECMD;
    int rc = layer_step(d, 0, in, 0, SB_OP_SENSE, NULL);
    return rc ? rc : d->port->sensed(d->port->ctx, 0, out);
}

int sb_dev_step(sb_dev_t *d, const uint8_t *in, uint32_t *out_mask) {
    if (!d->configured) return SB_ECONFIG;
    uint32_t m = 0;
    for (uint8_t l = 0; l < d->p.layers; l++) {
        int rc = layer_step(d, l, l == 0 ? in : NULL, m, SB_OP_SAMPLE, &m);
        if (rc) return rc;
        if (out_mask) out_mask[l] = m;
        if (m && d->on_fire) d->on_fire(d->ev_ctx, l, d->step, m);
    }
    d->cnt.steps++;
    d->cnt.time_ps += d->p.t_step_ps;
    d->step++;
    return SB_OK;
}

int sb_dev_reset_neurons(sb_dev_t *d) {
    if (!d->configured) return SB_ECONFIG;
    for (uint8_t l = 0; l < d->p.layers; l++) {
        sb_op_t o = {SB_OP_NEURON_RESET, l, 0, 0, 0, 0, 0, 0};
        int rc = d->port->exec(d->port->ctx, &o, 1);
        if (rc) return rc;
    }
    return SB_OK;
}

int sb_dev_run(sb_dev_t *d, uint16_t steps, const uint8_t *in, uint32_t *out, int32_t *v_out) {
    if (!d->configured) return SB_ECONFIG;
    uint32_t masks[SB_MAX_LAYERS];
    const uint8_t last = (uint8_t)(d->p.layers - 1);
    for (uint16_t t = 0; t < steps; t++) {
        int rc = sb_dev_step(d, in + (size_t)t * d->p.rows, masks);
        if (rc) return rc;
        if (out) out[t] = masks[last];
    }
    if (v_out) {
        int rc = d->port->neurons(d->port->ctx, last, v_out, NULL);
        if (rc) return rc;
    }
    return SB_OK;
}

int sb_dev_run_batch(sb_dev_t *d, uint32_t batch, uint16_t steps, const uint8_t *in,
                     uint32_t *out, int32_t *v_out) {
    if (!d->configured) return SB_ECONFIG;
    const uint8_t nn = d->neurons[d->p.layers - 1];
    for (uint32_t b = 0; b < batch; b++) {
        int rc = sb_dev_reset_neurons(d);
        if (rc) return rc;
        rc = sb_dev_run(d, steps, in + (size_t)b * steps * d->p.rows,
                        out ? out + (size_t)b * steps : NULL, v_out ? v_out + (size_t)b * nn : NULL);
        if (rc) return rc;
    }
    return SB_OK;
}

static int cell_coords(const sb_dev_t *d, uint16_t i, sb_op_t *o) {
    if (i >= sb_dev_cells(d)) return SB_ERANGE;
    uint16_t per_layer = (uint16_t)(d->p.rows * d->p.cols);
    o->layer = (uint8_t)(i / per_layer);
    o->row = (uint8_t)((i % per_layer) / d->p.cols);
    o->col = (uint8_t)(i % d->p.cols);
    return SB_OK;
}

/* Pulse programs are streamed: the ops of a run of cells are built in
 * batches of SB_MAX_OPS, the cell coordinates stepped rather than divided
 * out per cell, and each batch goes to the port in one exec call; counters
 * are summed per batch. The port sees the same ops in the same order as one
 * call per cell, so the chip ends in the same state. */
typedef struct {
    size_t n;
    uint32_t pot, dep, hold;
} dev_batch_t;

static int batch_flush(sb_dev_t *d, dev_batch_t *b) {
    if (!b->n) return SB_OK;
    int rc = d->port->exec(d->port->ctx, d->ops, b->n);
    if (rc) return rc;
    uint32_t moved = b->pot + b->dep;
    d->cnt.pot += b->pot;
    d->cnt.dep += b->dep;
    d->cnt.pre += moved;
    d->cnt.post += moved;
    d->cnt.time_ps += (uint64_t)(moved + b->hold) * d->p.t_prog_ps;
    b->n = 0; b->pot = b->dep = b->hold = 0;
    return SB_OK;
}

static inline void coords_next(const sb_dev_t *d, sb_op_t *o) {
    if (++o->col == d->p.cols) {
        o->col = 0;
        if (++o->row == d->p.rows) { o->row = 0; o->layer++; }
    }
}

/* Add one cell's op (count > 0); flushes a full batch. */
static inline int batch_add(sb_dev_t *d, dev_batch_t *b, const sb_op_t *at, int8_t polarity, uint16_t count) {
    sb_op_t *q = &d->ops[b->n++];
    *q = *at;
    q->kind = polarity ? SB_OP_PROGRAM : SB_OP_HOLD;
    q->polarity = polarity;
    q->count = count;
    if (polarity > 0) b->pot += count;
    else if (polarity < 0) b->dep += count;
    else b->hold += count;
    return b->n == SB_MAX_OPS ? batch_flush(d, b) : SB_OK;
}

int sb_dev_pulse(sb_dev_t *d, uint16_t first, uint16_t n, int8_t polarity, uint16_t count) {
    if (!d->configured) return SB_ECONFIG;
    if ((uint32_t)first + n > sb_dev_cells(d)) return SB_ERANGE;
    if (polarity < -1 || polarity > 1) return SB_EINVAL;
    if (count == 0 || n == 0) return SB_OK;
    sb_op_t o = {0};
    cell_coords(d, first, &o);
    dev_batch_t b = {0, 0, 0, 0};
    for (uint16_t k = 0; k < n; k++) {
        int rc = batch_add(d, &b, &o, polarity, count);
        if (rc) return rc;
        coords_next(d, &o);
    }
    return batch_flush(d, &b);
}

int sb_dev_update(sb_dev_t *d, uint16_t first, uint16_t n, const int8_t *count) {
    if (!d->configured) return SB_ECONFIG;
    if ((uint32_t)first + n > sb_dev_cells(d)) return SB_ERANGE;
    if (n == 0) return SB_OK;
    sb_op_t o = {0};
    cell_coords(d, first, &o);
    dev_batch_t b = {0, 0, 0, 0};
    for (uint16_t k = 0; k < n; k++) {
        int8_t c = count[k];
        if (c) {
            if (c == -128) {
                int rc = batch_flush(d, &b);    /* the cells before it were applied */
                return rc ? rc : SB_EINVAL;
            }
            int rc = c > 0 ? batch_add(d, &b, &o, 1, (uint16_t)c) : batch_add(d, &b, &o, -1, (uint16_t)-c);
            if (rc) return rc;
        }
        coords_next(d, &o);
    }
    return batch_flush(d, &b);
}

int sb_dev_read(sb_dev_t *d, uint16_t first, uint16_t n, uint16_t *g) {
    if (!d->configured) return SB_ECONFIG;
    if ((uint32_t)first + n > sb_dev_cells(d)) return SB_ERANGE;
    sb_op_t o = {0};
    if (n) cell_coords(d, first, &o);
    for (uint16_t k = 0; k < n; k++) {
        int rc = d->port->read_cell(d->port->ctx, o.layer, o.row, o.col, &g[k]);
        if (rc) return rc;
        coords_next(d, &o);
    }
    d->cnt.reads += n;
    d->cnt.pre += n;
    d->cnt.post += n;
    d->cnt.time_ps += (uint64_t)n * d->p.t_read_ps;
    return SB_OK;
}

int sb_dev_program(sb_dev_t *d, uint16_t first, uint16_t n, const uint16_t *target,
                   uint16_t tolerance, uint8_t max_pulses, uint8_t *pulses_used, uint32_t *total) {
    if (!d->configured) return SB_ECONFIG;
    if ((uint32_t)first + n > sb_dev_cells(d)) return SB_ERANGE;
    int failed = 0;
    uint32_t sum = 0;
    for (uint16_t k = 0; k < n; k++) {
        uint16_t i = (uint16_t)(first + k), g;
        uint8_t used = 0;
        int rc = sb_dev_read(d, i, 1, &g);
        if (rc) return rc;
        while (used < max_pulses) {
            int32_t err = (int32_t)target[k] - g;
            if (err <= tolerance && -err <= tolerance) break;
            rc = sb_dev_pulse(d, i, 1, err > 0 ? 1 : -1, 1);
            if (rc) return rc;
            used++;
            rc = sb_dev_read(d, i, 1, &g);
            if (rc) return rc;
        }
        int32_t err = (int32_t)target[k] - g;
        if (err > tolerance || -err > tolerance) failed++;
        if (pulses_used) pulses_used[k] = used;
        sum += used;
    }
    if (total) *total = sum;
    return failed;
}

int sb_dev_age(sb_dev_t *d, uint32_t seconds) {
    if (!d->configured) return SB_ECONFIG;
    return d->port->age(d->port->ctx, seconds);
}

/* The image's head: counters, step counter, the learning accumulators. */
#define DEV_IMAGE_HEAD (sizeof(sb_counters_t) + 4u + sizeof(((sb_dev_t *)0)->learn_acc) + \
                        sizeof(((sb_dev_t *)0)->learn_blocked))

uint32_t sb_dev_image_size(const sb_dev_t *d) {
    if (!d->configured || !d->port->image) return 0;
    return DEV_IMAGE_HEAD + d->port->image_size(d->port->ctx);
}

int sb_dev_image(sb_dev_t *d, uint32_t offset, uint8_t *buf, uint16_t n, int write) {
    if (!d->configured) return SB_ECONFIG;
    if (!d->port->image) return SB_ECMD;
    uint32_t total = sb_dev_image_size(d);
    if (offset > total || n > total - offset) return SB_ERANGE;
    struct { uint8_t *p; uint32_t n; } seg[4] = {
        {(uint8_t *)&d->cnt, sizeof d->cnt}, {(uint8_t *)&d->step, 4},
        {(uint8_t *)d->learn_acc, sizeof d->learn_acc}, {(uint8_t *)d->learn_blocked, sizeof d->learn_blocked}};
    for (int i = 0; i < 4 && n; i++) {
        if (offset >= seg[i].n) {
            offset -= seg[i].n;
            continue;
        }
        uint16_t m = (uint16_t)(seg[i].n - offset < n ? seg[i].n - offset : n);
        if (write) memcpy(seg[i].p + offset, buf, m);
        else memcpy(buf, seg[i].p + offset, m);
        buf += m;
        n = (uint16_t)(n - m);
        offset = 0;
    }
    if (!n) return SB_OK;
    return d->port->image(d->port->ctx, offset, buf, n, write);
}

void sb_dev_energy(const sb_dev_t *d, sb_energy_t *e) {
    const sb_params_t *p = &d->p;
    const sb_counters_t *c = &d->cnt;
    e->neuron_aj = c->fires * p->e_fire_aj + c->updates * p->e_update_aj;
    e->read_aj = c->reads * p->e_read_aj;
    e->pot_aj = c->pot * p->e_pot_aj;
    e->dep_aj = c->dep * p->e_dep_aj;
    e->iface_aj = c->pre * p->e_pre_aj + c->post * p->e_post_aj;
    e->total_aj = e->neuron_aj + e->read_aj + e->pot_aj + e->dep_aj + e->iface_aj;
}

void sb_dev_clear_counters(sb_dev_t *d) {
    memset(&d->cnt, 0, sizeof d->cnt);
}
