/* The command server: decodes frames, looks each request up in the command
 * table (one handler per command, at the end of this file), runs it on the
 * device controller, answers with a response or an error frame, and streams
 * fire events. A repeated sequence number gets the cached response, so a
 * retried request never runs twice (no training sample is applied twice). */
#include <string.h>
#include "sb/server.h"
#include "sb/errors.h"
#include "sb/learn.h"
#include "bits.h"

static void send(sb_server_t *s, uint8_t cmd, uint8_t flags, uint16_t seq, const uint8_t *p, size_t n, int cache) {
    uint8_t frame[SB_MAX_FRAME];
    int len = sb_frame_encode(cmd, flags, seq, p, n, cache ? s->resp : frame);
    if (len < 0) return;
    if (cache) {
        s->resp_len = (size_t)len;
        s->last_seq = seq;
        s->have_last = 1;
        s->io.tx(s->io.ctx, s->resp, s->resp_len);
    } else {
        s->io.tx(s->io.ctx, frame, (size_t)len);
    }
}

static void send_events(sb_server_t *s) {
    uint8_t body[sizeof(sb_msg_event_t) + sizeof s->ev];
    const sb_msg_event_t h = {s->nev, 0, s->event_overflow};
    const size_t n = s->nev * sizeof(sb_event_t);
    memcpy(body, &h, sizeof h);
    memcpy(body + sizeof h, s->ev, n);
    send(s, SB_CMD_EVENT, SB_F_EVENT, s->event_seq++, body, sizeof h + n, 0);
    s->nev = 0;
}

static void send_error(sb_server_t *s, uint8_t cmd, uint16_t seq, int code, uint32_t detail, int cache) {
    sb_msg_error_t e = {(int16_t)code, cmd, 0, detail};
    send(s, SB_CMD_ERROR, SB_F_RESP, seq, (const uint8_t *)&e, sizeof e, cache);
}

/* Take what the asynchronous readout path gathered and, when the request
 * asked for events, send it as event frames; otherwise the events are dropped
 * here (the fires are in the response) and the ring never fills up. Events
 * are aggregated: during a request only full frames go out (final = 0), the
 * rest at its end (final = 1), so a frame carries many steps' events. */
static void flush_events(sb_server_t *s, int final) {
    if (s->io.drain) {
        for (;;) {
            uint32_t ov = 0;
            size_t room = SB_EVENTS_PER_FRAME - s->nev;
            size_t got = s->io.drain(s->io.ctx, &s->ev[s->nev], room, &ov);
            if (s->streaming) s->event_overflow += ov;
            if (!s->streaming) { s->nev = 0; if (!got) return; continue; }
            s->nev = (uint16_t)(s->nev + got);
            if (s->nev < SB_EVENTS_PER_FRAME) break;
            send_events(s);
        }
    }
    if (final && s->streaming && s->nev) send_events(s);
}

/* Aggregated readout: add one fire mask to the layer's bit-sliced counters,
 * a ripple-carry add of the mask over the planes. No branch per neuron: the
 * cost depends on the carry chain (about two planes on average), not on how
 * many of the 32 neurons fired. */
static inline void count_fires(uint32_t *plane, uint32_t carry) {
    uint32_t *end = plane + SB_COUNT_PLANES;
    do {
        uint32_t c = *plane & carry;
        *plane++ ^= carry;
        carry = c;
    } while (carry && plane != end);
}

/* Send the window's counts as one SB_CMD_COUNTS frame and start a new window. */
static void send_counts(sb_server_t *s) {
    uint8_t body[sizeof(sb_msg_counts_t) + 2 * SB_MAX_LAYERS * SB_MAX_NEURONS];
    const sb_dev_t *d = &s->dev;
    sb_msg_counts_t h;
    memset(&h, 0, sizeof h);
    h.step0 = s->win_step0;
    h.steps = s->win_steps;
    h.layers = d->p.layers;
    size_t n = sizeof h;
    for (uint8_t l = 0; l < d->p.layers; l++) {
        const uint8_t nn = d->neurons[l];
        uint16_t cnt[SB_MAX_NEURONS];
        h.neurons[l] = nn;
        memset(cnt, 0, sizeof cnt);
        /* transpose the planes: work per set bit only */
        for (uint32_t k = 0; k < SB_COUNT_PLANES; k++)
            for (uint32_t m = s->planes[l][k]; m; m &= m - 1u) cnt[sb_ctz32(m)] |= (uint16_t)(1u << k);
        memcpy(body + n, cnt, 2u * nn);
        n += 2u * nn;
    }
    memcpy(body, &h, sizeof h);
    send(s, SB_CMD_COUNTS, SB_F_EVENT, s->event_seq++, body, n, 0);
    memset(s->planes, 0, sizeof s->planes);
    s->win_step0 += s->win_steps;
    s->win_steps = 0;
}

/* The device's fire hook during SB_INFER_COUNTS: count, nothing else. */
static void on_fire_count(void *ctx, uint8_t layer, uint32_t step, uint32_t mask) {
    (void)step;
    count_fires(((sb_server_t *)ctx)->planes[layer], mask);
}

/* Synchronous event capture, used when the system has no asynchronous readout. */
static void on_fire(void *ctx, uint8_t layer, uint32_t step, uint32_t mask) {
    sb_server_t *s = ctx;
    if (!s->streaming || s->io.drain) return;
    if (s->nev == SB_EVENTS_PER_FRAME) flush_events(s, 1);
    sb_event_t *e = &s->ev[s->nev++];
    e->t_us = s->io.now_us ? s->io.now_us(s->io.ctx) : 0;
    e->step = step;
    e->mask = mask;
    e->layer = layer;
    e->pad[0] = e->pad[1] = e->pad[2] = 0;
}

static void set_counting(sb_server_t *s, int on) {
    s->counting = (uint8_t)on;
    s->dev.on_fire = on ? on_fire_count : on_fire;
    if (s->io.count_mode) s->io.count_mode(s->io.ctx, on);
}

void sb_server_init(sb_server_t *s, const sb_server_io_t *io, sb_port_t *port) {
    memset(s, 0, sizeof *s);
    s->io = *io;
    sb_dev_init(&s->dev, port);
    s->dev.on_fire = on_fire;
    s->dev.ev_ctx = s;
    sb_cobs_rx_init(&s->rx);
}

/* ---- shared by the handlers ---------------------------------------------- */

/* Bytes of `steps` steps of input on the wire: a byte per row with
 * pulse-width levels, else the rows packed 8 per byte. */
static size_t input_len(const sb_server_t *s, uint16_t steps, int levels) {
    const uint8_t rows = s->dev.p.rows;
    return (levels ? rows : (size_t)(rows + 7) / 8) * steps;
}

/* Check n bytes of `steps` steps of input spikes at src and unpack them into
 * one level byte per row at dst. */
static int unpack_input(const sb_server_t *s, const uint8_t *src, size_t n, uint16_t steps, int levels,
                        uint8_t *dst) {
    const uint8_t rows = s->dev.p.rows;
    if (steps == 0 || steps > SB_MAX_STEPS) return SB_EINVAL;
    const size_t per = input_len(s, 1, levels);
    if (n != input_len(s, steps, levels)) return SB_ELEN;
    if (levels) {
        for (size_t i = 0; i < (size_t)steps * rows; i++)
            if (src[i] > s->dev.p.pre_levels) return SB_EINVAL;
        memcpy(dst, src, (size_t)steps * rows);
        return SB_OK;
    }
    for (uint16_t t = 0; t < steps; t++)
        for (uint8_t r = 0; r < rows; r++)
            dst[t * rows + r] = (uint8_t)((src[t * per + r / 8] >> (r % 8)) & 1u);
    return SB_OK;
}

/* Cells first..first+n-1: SB_ERANGE (detail first + n) past the array's end. */
static int check_cells(const sb_server_t *s, uint16_t first, uint16_t n, uint32_t *detail) {
    if ((uint32_t)first + n <= sb_dev_cells(&s->dev)) return SB_OK;
    *detail = (uint32_t)first + n;
    return SB_ERANGE;
}

/* A run of cells answered with u16 g[n] (READ_G, PULSE): in the array, and
 * the answer within a frame (SB_ELEN, detail n). */
static int check_g_run(const sb_server_t *s, uint16_t first, uint16_t n, uint32_t *detail) {
    int rc = check_cells(s, first, n, detail);
    if (rc) return rc;
    if (2u * n <= SB_MAX_PAYLOAD) return SB_OK;
    *detail = n;
    return SB_ELEN;
}

/* Answer u16 g[n] of the cells from `first`. */
static int answer_g(sb_server_t *s, uint16_t first, uint16_t n) {
    uint16_t g[SB_MAX_PAYLOAD / 2];
    int rc = sb_dev_read(&s->dev, first, n, g);
    if (rc) return rc;
    memcpy(s->out, g, 2u * n);
    return 2 * n;
}

/* Run `steps` time steps of unpacked input: the fire mask of each step to
 * masks (u32 each), the last layer's membranes (i32 each) to vs after every
 * step (trace) or after the last one only. Count windows and full event
 * frames go out meanwhile, as the request asked. */
static int run_steps(sb_server_t *s, const uint8_t *in, uint16_t steps, int trace, uint8_t *masks, uint8_t *vs) {
    sb_dev_t *d = &s->dev;
    const size_t vlen = 4u * d->neurons[d->p.layers - 1];
    for (uint16_t t = 0; t < steps; t++) {
        const int keep = trace || t + 1 == steps;
        uint32_t mk;
        int32_t v[SB_MAX_NEURONS];
        int rc = sb_dev_run(d, 1, in + (size_t)t * d->p.rows, &mk, keep ? v : NULL);
        if (rc) return rc;
        memcpy(masks + 4u * t, &mk, 4);
        if (keep) memcpy(vs + (trace ? vlen * t : 0u), v, vlen);
        if (s->counting && ++s->win_steps == s->win_len) send_counts(s);
        if (s->io.drain) flush_events(s, 0);
    }
    return SB_OK;
}

/* One TRAIN body's sample, its input unpacked at `in`. Training fires are not
 * streamed: the ring is emptied after it. */
static int train_sample(sb_server_t *s, const sb_msg_train_t *m, const uint8_t *in, sb_train_result_t *res) {
    const sb_train_req_t tr = {m->steps, m->label, m->rule, m->target, m->max_pulses, 1, m->sample_id};
    int rc = sb_learn_train(&s->dev, &tr, in, res);
    flush_events(s, 1);
    return rc;
}

/* The header of TRAIN_BATCH and INFER_BATCH: 1..SB_MAX_BATCH items. */
static int batch_header(sb_server_req_t *r, sb_msg_batch_t *b) {
    memcpy(b, r->body, sizeof *b);
    if (b->n != 0 && b->n <= SB_MAX_BATCH) return SB_OK;
    r->detail = b->n;
    return SB_EINVAL;
}

/* Where a walk over the items of a batch body is. */
typedef struct {
    size_t at;                /* where the next item starts */
    uint32_t steps;           /* steps of the items before it */
    uint16_t off[SB_MAX_BATCH]; /* where each item's header is */
} batch_walk_t;

/* Item k of a batch: its header of hdr bytes copied to m (SB_ELEN: the body
 * ends first). From here r->detail is k. */
static int batch_item(sb_server_req_t *r, const batch_walk_t *w, uint8_t k, void *m, size_t hdr) {
    r->detail = k;
    if (r->n - w->at < hdr) return SB_ELEN;
    memcpy(m, r->body + w->at, hdr);
    return SB_OK;
}

/* The input of the item whose header says `steps` steps: steps in
 * 1..SB_MAX_STEPS (SB_EINVAL), and *len bytes of it left in the body (SB_ELEN). */
static int item_input(const sb_server_t *s, const sb_server_req_t *r, const batch_walk_t *w, size_t hdr,
                      uint16_t steps, int levels, size_t *len) {
    *len = input_len(s, steps, levels);
    if (steps == 0 || steps > SB_MAX_STEPS) return SB_EINVAL;
    return r->n - w->at - hdr < *len ? SB_ELEN : SB_OK;
}

/* Take item k, checked: at most SB_MAX_STEPS steps in the whole batch
 * (SB_EINVAL), its input unpacked into s->levels after the items before it
 * (they all fit); then on to the next item. */
static int batch_take(sb_server_t *s, const sb_server_req_t *r, batch_walk_t *w, uint8_t k, size_t hdr,
                      uint16_t steps, int levels, size_t len) {
    if (w->steps + steps > SB_MAX_STEPS) return SB_EINVAL;
    int rc = unpack_input(s, r->body + w->at + hdr, len, steps, levels, s->levels + w->steps * s->dev.p.rows);
    if (rc) return rc;
    w->steps += steps;
    w->off[k] = (uint16_t)w->at;
    w->at += hdr + len;
    return SB_OK;
}

/* The answer's header of a batch; returns where its items go. */
static uint8_t *batch_answer(sb_server_t *s, uint8_t n, uint8_t neurons) {
    const sb_msg_batch_resp_t h = {n, neurons, 0};
    memcpy(s->out, &h, sizeof h);
    return s->out + sizeof h;
}

/* ---- one handler per command ------------------------------------------------
 * Called by dispatch() with the body's length checked against the table: a
 * handler writes its answer into s->out and returns its length, or a negative
 * code with r->detail saying which index or length was wrong. */

static int cmd_hello(sb_server_t *s, sb_server_req_t *r) {
    const sb_dev_t *d = &s->dev;
    sb_msg_hello_t h;
    (void)r;
    memset(&h, 0, sizeof h);
    h.proto = SB_PROTO_VERSION;
    h.fw_major = SB_VERSION_MAJOR; h.fw_minor = SB_VERSION_MINOR; h.fw_patch = SB_VERSION_PATCH;
    h.rows = d->p.rows; h.cols = d->p.cols; h.layers = d->p.layers; h.configured = d->configured;
    h.card_hash = d->configured ? d->card_hash : 0;
    h.max_payload = SB_MAX_PAYLOAD;
    h.reset_reason = s->io.reset_reason;
    h.flags = d->port->image ? SB_HELLO_VIRTUAL : 0;
    h.hal_id = SB_HAL_ID;
    if (s->io.board) {
        size_t bl = strlen(s->io.board);
        memcpy(h.board, s->io.board, bl < sizeof h.board ? bl : sizeof h.board);  /* NUL-padded, not terminated */
    }
    memcpy(s->out, &h, sizeof h);
    return sizeof h;
}

static int cmd_configure(sb_server_t *s, sb_server_req_t *r) {
    sb_params_t p;
    int rc = sb_params_decode(&p, r->body, r->n);
    if (rc) { r->detail = (uint32_t)r->n; return rc; }
    if ((rc = sb_dev_configure(&s->dev, &p))) return rc;
    memcpy(s->out, &s->dev.card_hash, 4);
    return 4;
}

static int cmd_program(sb_server_t *s, sb_server_req_t *r) {
    sb_msg_program_t m;
    memcpy(&m, r->body, sizeof m);
    if (r->n != sizeof m + 2u * m.n) { r->detail = (uint32_t)r->n; return SB_ELEN; }
    int rc = check_cells(s, m.first, m.n, &r->detail);
    if (rc) return rc;
    const size_t bitmap = ((size_t)m.n + 7) / 8;
    if (sizeof(sb_msg_program_resp_t) + m.n + bitmap > SB_MAX_PAYLOAD) return SB_ELEN;
    uint16_t target[SB_MAX_PAYLOAD / 2];
    memcpy(target, r->body + sizeof m, 2u * m.n);
    uint8_t *used = s->out + sizeof(sb_msg_program_resp_t);
    uint8_t *bits = used + m.n;
    uint32_t total = 0;
    int failed = 0;
    memset(bits, 0, bitmap);
    for (uint16_t k = 0; k < m.n; k++) {
        rc = sb_dev_program(&s->dev, (uint16_t)(m.first + k), 1, &target[k], m.tolerance, m.max_pulses, &used[k],
                            NULL);
        if (rc < 0) return rc;
        if (rc) { bits[k / 8] |= (uint8_t)(1u << (k % 8)); failed++; }
        total += used[k];
    }
    const sb_msg_program_resp_t h = {m.n, (uint16_t)failed, total};
    memcpy(s->out, &h, sizeof h);
    return (int)(sizeof h + m.n + bitmap);
}

static int cmd_read_g(sb_server_t *s, sb_server_req_t *r) {
    sb_msg_read_t m;
    memcpy(&m, r->body, sizeof m);
    int rc = check_g_run(s, m.first, m.n, &r->detail);
    return rc ? rc : answer_g(s, m.first, m.n);
}

static int cmd_infer(sb_server_t *s, sb_server_req_t *r) {
    sb_dev_t *d = &s->dev;
    sb_msg_infer_t m;
    memcpy(&m, r->body, sizeof m);
    const uint8_t last = (uint8_t)(d->p.layers - 1), nn = d->neurons[last];
    const int trace = (m.flags & SB_INFER_TRACE) != 0;
    const int counting = (m.flags & SB_INFER_COUNTS) != 0;
    const size_t need = sizeof(sb_msg_infer_resp_t) + 4u * m.steps + 4u * nn * (trace ? m.steps : 1u);
    int rc;
    if (need > SB_MAX_PAYLOAD) { r->detail = m.steps; return SB_ELEN; }
    rc = unpack_input(s, r->body + sizeof m, r->n - sizeof m, m.steps, m.flags & SB_INFER_LEVELS, s->levels);
    if (rc) { r->detail = (uint32_t)r->n; return rc; }
    if (counting && (m.flags & SB_INFER_EVENTS)) { r->detail = m.flags; return SB_EINVAL; }
    if ((m.flags & SB_INFER_RESET) && (rc = sb_dev_reset_neurons(d))) return rc;
    const sb_msg_infer_resp_t h = {m.steps, nn, last, d->step};
    memcpy(s->out, &h, sizeof h);
    s->streaming = (m.flags & SB_INFER_EVENTS) != 0;
    if (counting) {
        memset(s->planes, 0, sizeof s->planes);
        s->win_len = m.window ? m.window : m.steps;
        s->win_steps = 0;
        s->win_step0 = d->step;
        set_counting(s, 1);
    }
    uint8_t *masks = s->out + sizeof h;
    rc = run_steps(s, s->levels, m.steps, trace, masks, masks + 4u * m.steps);
    if (!rc && counting && s->win_steps) send_counts(s);
    if (counting) set_counting(s, 0);
    if (!rc) flush_events(s, 1);
    s->streaming = 0;
    return rc ? rc : (int)need;
}

static int cmd_train(sb_server_t *s, sb_server_req_t *r) {
    sb_msg_train_t m;
    sb_train_result_t res;
    memcpy(&m, r->body, sizeof m);
    int rc = unpack_input(s, r->body + sizeof m, r->n - sizeof m, m.steps, m.flags & SB_INFER_LEVELS, s->levels);
    if (rc) { r->detail = (uint32_t)r->n; return rc; }
    if ((rc = train_sample(s, &m, s->levels, &res))) { r->detail = m.label; return rc; }
    sb_msg_train_resp_t a;
    a.sample_id = m.sample_id;
    a.predicted = res.predicted;
    a.neurons = res.neurons;
    a.pulses = res.pulses;
    memcpy(a.counts, res.counts, sizeof a.counts);
    memcpy(s->out, &a, sizeof a);
    return sizeof a;
}

/* Several TRAIN bodies back to back: all checked (and their inputs unpacked
 * one after the other into s->levels: a batch has at most SB_MAX_STEPS steps
 * in all) before the first is trained. */
static int cmd_train_batch(sb_server_t *s, sb_server_req_t *r) {
    sb_dev_t *d = &s->dev;
    sb_msg_batch_t b;
    int rc = batch_header(r, &b);
    if (rc) return rc;
    const uint8_t nn = d->neurons[d->p.layers - 1], rows = d->p.rows;
    const size_t item_out = sizeof(sb_msg_train_item_t) + 2u * nn;
    const size_t need = sizeof(sb_msg_batch_resp_t) + (size_t)b.n * item_out;
    if (need > SB_MAX_PAYLOAD) { r->detail = (uint32_t)need; return SB_ELEN; }
    batch_walk_t w = {sizeof b, 0, {0}};
    uint32_t work = 0;
    for (uint8_t k = 0; k < b.n; k++) {
        sb_msg_train_t m;
        size_t len;
        if ((rc = batch_item(r, &w, k, &m, sizeof m))) return rc;
        const int levels = m.flags & SB_INFER_LEVELS;
        if ((rc = item_input(s, r, &w, sizeof m, m.steps, levels, &len))) return rc;
        if (m.label >= nn) return SB_ERANGE;
        if (m.rule >= SB_RULE_COUNT || m.max_pulses == 0) return SB_EINVAL;
        work += (uint32_t)sb_dev_cells(d) * m.max_pulses;
        if (work > SB_MAX_PULSE_WORK) return SB_EINVAL;
        if ((rc = batch_take(s, r, &w, k, sizeof m, m.steps, levels, len))) return rc;
    }
    if (w.at != r->n) { r->detail = (uint32_t)r->n; return SB_ELEN; }
    uint8_t *o = batch_answer(s, b.n, nn);
    const uint8_t *in = s->levels;
    for (uint8_t k = 0; k < b.n; k++) {
        sb_msg_train_t m;
        sb_train_result_t res;
        memcpy(&m, r->body + w.off[k], sizeof m);
        if ((rc = train_sample(s, &m, in, &res))) { r->detail = k; return rc; }
        const sb_msg_train_item_t it = {m.sample_id, res.predicted, 0, res.pulses};
        memcpy(o, &it, sizeof it);
        memcpy(o + sizeof it, res.counts, 2u * nn);
        o += item_out;
        in += (size_t)m.steps * rows;
    }
    return (int)need;
}

/* Several INFER bodies back to back: all checked (their inputs unpacked as in
 * TRAIN_BATCH) before the first runs; the neurons reset before each; per item
 * exactly the INFER answer. */
static int cmd_infer_batch(sb_server_t *s, sb_server_req_t *r) {
    sb_dev_t *d = &s->dev;
    sb_msg_batch_t b;
    int rc = batch_header(r, &b);
    if (rc) return rc;
    const uint8_t last = (uint8_t)(d->p.layers - 1), nn = d->neurons[last], rows = d->p.rows;
    batch_walk_t w = {sizeof b, 0, {0}};
    size_t need = sizeof(sb_msg_batch_resp_t);
    for (uint8_t k = 0; k < b.n; k++) {
        sb_msg_infer_t m;
        size_t len;
        if ((rc = batch_item(r, &w, k, &m, sizeof m))) return rc;
        const int levels = m.flags & SB_INFER_LEVELS;
        if (m.flags & ~SB_INFER_BATCH_FLAGS) return SB_EINVAL;
        if ((rc = item_input(s, r, &w, sizeof m, m.steps, levels, &len))) return rc;
        if ((rc = batch_take(s, r, &w, k, sizeof m, m.steps, levels, len))) return rc;
        need += sizeof(sb_msg_infer_resp_t) + 4u * m.steps + 4u * nn;
    }
    if (w.at != r->n) { r->detail = (uint32_t)r->n; return SB_ELEN; }
    if (need > SB_MAX_PAYLOAD) { r->detail = (uint32_t)need; return SB_ELEN; }
    uint8_t *o = batch_answer(s, b.n, nn);
    const uint8_t *in = s->levels;
    for (uint8_t k = 0; k < b.n; k++) {
        sb_msg_infer_t m;
        memcpy(&m, r->body + w.off[k], sizeof m);
        r->detail = k;
        if ((rc = sb_dev_reset_neurons(d))) return rc;
        const sb_msg_infer_resp_t h = {m.steps, nn, last, d->step};
        memcpy(o, &h, sizeof h);
        uint8_t *masks = o + sizeof h;
        if ((rc = run_steps(s, in, m.steps, 0, masks, masks + 4u * m.steps))) { flush_events(s, 1); return rc; }
        o = masks + 4u * m.steps + 4u * nn;
        in += (size_t)m.steps * rows;
    }
    flush_events(s, 1);   /* batch fires are not streamed: empty the ring */
    return (int)need;
}

static int cmd_pulse(sb_server_t *s, sb_server_req_t *r) {
    sb_msg_pulse_t m;
    memcpy(&m, r->body, sizeof m);
    int rc = check_g_run(s, m.first, m.n, &r->detail);
    if (rc) return rc;
    if ((uint32_t)m.n * m.count > SB_MAX_PULSE_WORK) { r->detail = (uint32_t)m.n * m.count; return SB_EINVAL; }
    if ((rc = sb_dev_pulse(&s->dev, m.first, m.n, m.polarity, m.count))) return rc;
    return answer_g(s, m.first, m.n);
}

static int cmd_counters(sb_server_t *s, sb_server_req_t *r) {
    sb_dev_t *d = &s->dev;
    const sb_msg_stats_t st = {s->frames_ok, s->frames_bad, s->dups, s->event_overflow, d->step};
    memcpy(s->out, &d->cnt, sizeof d->cnt);
    memcpy(s->out + sizeof d->cnt, &st, sizeof st);
    if (r->body[0] & SB_COUNTERS_CLEAR) sb_dev_clear_counters(d);
    return (int)(sizeof d->cnt + sizeof st);
}

static int cmd_reset(sb_server_t *s, sb_server_req_t *r) {
    sb_dev_t *d = &s->dev;
    const uint8_t what = r->body[0];
    int rc;
    if (what & SB_RESET_BOARD) {
        if (!s->io.reboot) return SB_ECMD;
        s->reboot = 1;   /* once the response is out */
        return 0;
    }
    if ((what & SB_RESET_CHIP) && d->configured) {
        sb_params_t p = d->p;
        if ((rc = sb_dev_configure(d, &p))) return rc;
    }
    if ((what & SB_RESET_NEURONS) && d->configured && (rc = sb_dev_reset_neurons(d))) return rc;
    return 0;
}

static int cmd_age(sb_server_t *s, sb_server_req_t *r) {
    uint32_t sec;
    memcpy(&sec, r->body, sizeof sec);
    return sb_dev_age(&s->dev, sec);
}

static int cmd_state(sb_server_t *s, sb_server_req_t *r) {
    sb_dev_t *d = &s->dev;
    const uint8_t layer = r->body[0];
    if (layer >= d->p.layers) { r->detail = layer; return SB_ERANGE; }
    const uint8_t nn = d->neurons[layer];
    int32_t v[SB_MAX_NEURONS];
    uint8_t rf[SB_MAX_NEURONS];
    int rc = d->port->neurons(d->port->ctx, layer, v, rf);
    if (rc) return rc;
    s->out[0] = nn;
    memcpy(s->out + 1, v, 4u * nn);
    memcpy(s->out + 1 + 4u * nn, rf, nn);
    return 1 + 5 * nn;
}

static int cmd_image(sb_server_t *s, sb_server_req_t *r) {
    sb_msg_image_t m;
    memcpy(&m, r->body, sizeof m);
    if (m.n > SB_MAX_PAYLOAD - 4u) { r->detail = m.n; return SB_ELEN; }
    if (r->n != sizeof m + (m.write ? m.n : 0u)) { r->detail = (uint32_t)r->n; return SB_ELEN; }
    const uint32_t size = sb_dev_image_size(&s->dev);
    memcpy(s->out, &size, 4);
    if (m.n == 0) return 4;   /* size query: 0 on silicon */
    uint8_t *buf = m.write ? r->body + sizeof m : s->out + 4;
    int rc = sb_dev_image(&s->dev, m.offset, buf, m.n, m.write);
    if (rc) { r->detail = m.offset; return rc; }
    return m.write ? 4 : 4 + m.n;
}

/* The table. Designated initializers: tools/stack_usage.py finds the handlers
 * a call through .handler may reach by `.handler = name`. */
static const sb_server_cmd_t cmds[] = {
    {.cmd = SB_CMD_HELLO, .flags = SB_SERVE_EXACT, .len = 0, .handler = cmd_hello},
    /* sb_params_decode checks the length (detail: the length) */
    {.cmd = SB_CMD_CONFIGURE, .flags = 0, .len = 0, .handler = cmd_configure},
    {.cmd = SB_CMD_PROGRAM, .flags = SB_SERVE_CONFIGURED, .len = sizeof(sb_msg_program_t), .handler = cmd_program},
    {.cmd = SB_CMD_READ_G, .flags = SB_SERVE_CONFIGURED | SB_SERVE_EXACT, .len = sizeof(sb_msg_read_t),
     .handler = cmd_read_g},
    {.cmd = SB_CMD_INFER, .flags = SB_SERVE_CONFIGURED, .len = sizeof(sb_msg_infer_t), .handler = cmd_infer},
    {.cmd = SB_CMD_TRAIN, .flags = SB_SERVE_CONFIGURED, .len = sizeof(sb_msg_train_t), .handler = cmd_train},
    {.cmd = SB_CMD_PULSE, .flags = SB_SERVE_CONFIGURED | SB_SERVE_EXACT, .len = sizeof(sb_msg_pulse_t),
     .handler = cmd_pulse},
    {.cmd = SB_CMD_COUNTERS, .flags = SB_SERVE_EXACT | SB_SERVE_KEEP_WINDOW, .len = 1, .handler = cmd_counters},
    {.cmd = SB_CMD_RESET, .flags = SB_SERVE_EXACT, .len = 1, .handler = cmd_reset},
    {.cmd = SB_CMD_AGE, .flags = SB_SERVE_CONFIGURED | SB_SERVE_EXACT, .len = sizeof(uint32_t), .handler = cmd_age},
    {.cmd = SB_CMD_STATE, .flags = SB_SERVE_CONFIGURED | SB_SERVE_EXACT, .len = 1, .handler = cmd_state},
    {.cmd = SB_CMD_IMAGE, .flags = SB_SERVE_CONFIGURED, .len = sizeof(sb_msg_image_t), .handler = cmd_image},
    {.cmd = SB_CMD_TRAIN_BATCH, .flags = SB_SERVE_CONFIGURED, .len = sizeof(sb_msg_batch_t),
     .handler = cmd_train_batch},
    {.cmd = SB_CMD_INFER_BATCH, .flags = SB_SERVE_CONFIGURED, .len = sizeof(sb_msg_batch_t),
     .handler = cmd_infer_batch},
};

const sb_server_cmd_t *sb_server_cmd(uint8_t cmd) {
    for (size_t k = 0; k < sizeof cmds / sizeof cmds[0]; k++)
        if (cmds[k].cmd == cmd) return &cmds[k];
    return NULL;
}

/* Runs one request through its table entry c (NULL: not a command); returns
 * the answer's length or a negative code. Kept out of line: the stack bound
 * (tools/stack_usage.py, tests/test_hygiene.py) follows the command path
 * through it to the handlers. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int dispatch(sb_server_t *s, const sb_server_cmd_t *c, uint8_t cmd, sb_server_req_t *r) {
    if (!c) { r->detail = cmd; return SB_ECMD; }
    if ((c->flags & SB_SERVE_CONFIGURED) && !s->dev.configured) return SB_ECONFIG;
    if ((c->flags & SB_SERVE_EXACT) ? r->n != c->len : r->n < c->len) return SB_ELEN;
    return c->handler(s, r);
}

static void handle_frame(sb_server_t *s) {
    uint8_t cmd = 0, flags = 0;
    uint16_t seq = 0;
    int n = sb_frame_decode(s->rx.buf, s->rx.len, &cmd, &flags, &seq, s->req, sizeof s->req);
    s->rx.len = 0;
    if (n < 0) {
        s->frames_bad++;
        /* the header of a frame that failed its CRC cannot be trusted: answer seq 0xffff */
        send_error(s, n == SB_ECRC ? cmd : 0, 0xffffu, n, 0, 0);
        return;
    }
    if (flags & (SB_F_RESP | SB_F_EVENT)) {
        s->frames_bad++;
        send_error(s, cmd, seq, SB_EFRAME, flags, 0);
        return;
    }
    s->frames_ok++;
    if (s->have_last && seq == s->last_seq && cmd != SB_CMD_HELLO && s->resp_len) {
        s->dups++;
        s->io.tx(s->io.ctx, s->resp, s->resp_len);
        return;
    }
    const sb_server_cmd_t *c = sb_server_cmd(cmd);
    sb_server_req_t r = {s->req, (size_t)n, 0};
    int len = dispatch(s, c, cmd, &r);
    /* the command window closes: measured supply energy joins the counters */
    if (s->dev.port->energy_aj && !(c && (c->flags & SB_SERVE_KEEP_WINDOW)))
        s->dev.cnt.measured_aj += s->dev.port->energy_aj(s->dev.port->ctx);
    if (len < 0) {
        send_error(s, cmd, seq, len, r.detail, 1);
        return;
    }
    send(s, cmd, SB_F_RESP, seq, s->out, (size_t)len, 1);
    if (s->reboot) {
        s->reboot = 0;
        s->io.reboot(s->io.ctx);
    }
}

void sb_server_rx(sb_server_t *s, uint8_t byte) {
    int r = sb_cobs_rx_push(&s->rx, byte);
    if (r == 1) {
        handle_frame(s);
    } else if (r == SB_EOVERSIZE) {
        s->frames_bad++;
        send_error(s, 0, 0xffffu, SB_EOVERSIZE, 0, 0);
    }
}

void sb_server_rx_buf(sb_server_t *s, const uint8_t *buf, size_t n) {
    for (size_t i = 0; i < n; i++) sb_server_rx(s, buf[i]);
}
