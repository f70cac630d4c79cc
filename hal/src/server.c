/* The command server: decodes frames, runs each command on the device
 * controller, answers with a response or an error frame, and streams fire
 * events. A repeated sequence number gets the cached response, so a retried
 * request never runs twice (no training sample is applied twice). */
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
    uint8_t body[8 + sizeof s->ev];
    uint16_t n = s->nev;
    body[0] = (uint8_t)n; body[1] = (uint8_t)(n >> 8); body[2] = 0; body[3] = 0;
    memcpy(body + 4, &s->event_overflow, 4);
    memcpy(body + 8, s->ev, n * sizeof(sb_event_t));
    send(s, SB_CMD_EVENT, SB_F_EVENT, s->event_seq++, body, 8 + n * sizeof(sb_event_t), 0);
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

/* Unpack steps of input spikes into one level byte per row. */
/* Bytes of `steps` steps of input on the wire: a byte per row with
 * pulse-width levels, else the rows packed 8 per byte. */
static size_t input_len(const sb_server_t *s, uint16_t steps, int levels) {
    const uint8_t rows = s->dev.p.rows;
    return (levels ? rows : (size_t)(rows + 7) / 8) * steps;
}

/* The header of TRAIN_BATCH and INFER_BATCH: 1..SB_MAX_BATCH items. */
static int batch_header(const uint8_t *req, size_t n, sb_msg_batch_t *b, uint32_t *detail) {
    if (n < sizeof *b) return SB_ELEN;
    memcpy(b, req, sizeof *b);
    if (b->n == 0 || b->n > SB_MAX_BATCH) { *detail = b->n; return SB_EINVAL; }
    return SB_OK;
}

static int unpack_input(sb_server_t *s, const uint8_t *src, size_t n, uint16_t steps, int levels) {
    const uint8_t rows = s->dev.p.rows;
    if (steps == 0 || steps > SB_MAX_STEPS) return SB_EINVAL;
    const size_t per = input_len(s, 1, levels);
    if (n != input_len(s, steps, levels)) return SB_ELEN;
    if (levels) {
        for (size_t i = 0; i < (size_t)steps * rows; i++)
            if (src[i] > s->dev.p.pre_levels) return SB_EINVAL;
        memcpy(s->levels, src, (size_t)steps * rows);
        return SB_OK;
    }
    for (uint16_t t = 0; t < steps; t++)
        for (uint8_t r = 0; r < rows; r++)
            s->levels[t * rows + r] = (uint8_t)((src[t * per + r / 8] >> (r % 8)) & 1u);
    return SB_OK;
}

/* Runs one request; returns response length or a negative code
 * (*detail says which index or length was wrong). */
static int dispatch(sb_server_t *s, uint8_t cmd, const uint8_t *req, size_t n, uint32_t *detail) {
    sb_dev_t *d = &s->dev;
    uint8_t *out = s->out;
    int rc;
    if (cmd != SB_CMD_HELLO && cmd != SB_CMD_CONFIGURE && cmd != SB_CMD_RESET && cmd != SB_CMD_COUNTERS &&
        cmd <= SB_CMD_INFER_BATCH && !d->configured)
        return SB_ECONFIG;
    switch (cmd) {
    case SB_CMD_HELLO: {
        if (n != 0) return SB_ELEN;
        sb_msg_hello_t h;
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
        memcpy(out, &h, sizeof h);
        return sizeof h;
    }
    case SB_CMD_CONFIGURE: {
        sb_params_t p;
        if ((rc = sb_params_decode(&p, req, n))) { *detail = (uint32_t)n; return rc; }
        if ((rc = sb_dev_configure(d, &p))) return rc;
        memcpy(out, &d->card_hash, 4);
        return 4;
    }
    case SB_CMD_PROGRAM: {
        sb_msg_program_t m;
        if (n < sizeof m) return SB_ELEN;
        memcpy(&m, req, sizeof m);
        if (n != sizeof m + 2u * m.n) { *detail = (uint32_t)n; return SB_ELEN; }
        if ((uint32_t)m.first + m.n > sb_dev_cells(d)) { *detail = (uint32_t)m.first + m.n; return SB_ERANGE; }
        size_t bitmap = ((size_t)m.n + 7) / 8;
        if (sizeof(sb_msg_program_resp_t) + m.n + bitmap > SB_MAX_PAYLOAD) return SB_ELEN;
        uint16_t target[SB_MAX_PAYLOAD / 2];
        memcpy(target, req + sizeof m, 2u * m.n);
        uint8_t *used = out + sizeof(sb_msg_program_resp_t);
        uint8_t *bits = used + m.n;
        uint32_t total = 0;
        memset(bits, 0, bitmap);
        int failed = 0;
        for (uint16_t k = 0; k < m.n; k++) {
            rc = sb_dev_program(d, (uint16_t)(m.first + k), 1, &target[k], m.tolerance, m.max_pulses, &used[k], NULL);
            if (rc < 0) return rc;
            if (rc) { bits[k / 8] |= (uint8_t)(1u << (k % 8)); failed++; }
            total += used[k];
        }
        sb_msg_program_resp_t r = {m.n, (uint16_t)failed, total};
        memcpy(out, &r, sizeof r);
        return (int)(sizeof r + m.n + bitmap);
    }
    case SB_CMD_READ_G: {
        sb_msg_read_t m;
        if (n != sizeof m) return SB_ELEN;
        memcpy(&m, req, sizeof m);
        if ((uint32_t)m.first + m.n > sb_dev_cells(d)) { *detail = (uint32_t)m.first + m.n; return SB_ERANGE; }
        if (2u * m.n > SB_MAX_PAYLOAD) { *detail = m.n; return SB_ELEN; }
        uint16_t g[SB_MAX_PAYLOAD / 2];
        if ((rc = sb_dev_read(d, m.first, m.n, g))) return rc;
        memcpy(out, g, 2u * m.n);
        return 2 * m.n;
    }
    case SB_CMD_INFER: {
        sb_msg_infer_t m;
        if (n < sizeof m) return SB_ELEN;
        memcpy(&m, req, sizeof m);
        const uint8_t last = (uint8_t)(d->p.layers - 1), nn = d->neurons[last];
        const int trace = (m.flags & SB_INFER_TRACE) != 0;
        size_t need = sizeof(sb_msg_infer_resp_t) + 4u * m.steps + 4u * nn * (trace ? m.steps : 1u);
        if (need > SB_MAX_PAYLOAD) { *detail = m.steps; return SB_ELEN; }
        if ((rc = unpack_input(s, req + sizeof m, n - sizeof m, m.steps, m.flags & SB_INFER_LEVELS))) {
            *detail = (uint32_t)n; return rc;
        }
        const int counting = (m.flags & SB_INFER_COUNTS) != 0;
        if (counting && (m.flags & SB_INFER_EVENTS)) { *detail = m.flags; return SB_EINVAL; }
        if ((m.flags & SB_INFER_RESET) && (rc = sb_dev_reset_neurons(d))) return rc;
        sb_msg_infer_resp_t r = {m.steps, nn, last, d->step};
        uint8_t *masks = out + sizeof r;
        uint8_t *vs = masks + 4u * m.steps;
        s->streaming = (m.flags & SB_INFER_EVENTS) != 0;
        if (counting) {
            memset(s->planes, 0, sizeof s->planes);
            s->win_len = m.window ? m.window : m.steps;
            s->win_steps = 0;
            s->win_step0 = d->step;
            set_counting(s, 1);
        }
        for (uint16_t t = 0; t < m.steps; t++) {
            uint32_t mk;
            int32_t v[SB_MAX_NEURONS];
            rc = sb_dev_run(d, 1, &s->levels[(size_t)t * d->p.rows], &mk, (trace || t + 1 == m.steps) ? v : NULL);
            if (rc) {
                s->streaming = 0;
                if (counting) set_counting(s, 0);
                return rc;
            }
            memcpy(masks + 4u * t, &mk, 4);
            if (trace) memcpy(vs + 4u * nn * t, v, 4u * nn);
            else if (t + 1 == m.steps) memcpy(vs, v, 4u * nn);
            if (counting && ++s->win_steps == s->win_len) send_counts(s);
            if (s->io.drain) flush_events(s, 0);
        }
        if (counting) {
            if (s->win_steps) send_counts(s);
            set_counting(s, 0);
        }
        flush_events(s, 1);
        s->streaming = 0;
        memcpy(out, &r, sizeof r);
        return (int)need;
    }
    case SB_CMD_TRAIN: {
        sb_msg_train_t m;
        if (n < sizeof m) return SB_ELEN;
        memcpy(&m, req, sizeof m);
        if ((rc = unpack_input(s, req + sizeof m, n - sizeof m, m.steps, m.flags & SB_INFER_LEVELS))) {
            *detail = (uint32_t)n; return rc;
        }
        sb_train_req_t tr = {m.steps, m.label, m.rule, m.target, m.max_pulses, 1, m.sample_id};
        sb_train_result_t res;
        rc = sb_learn_train(d, &tr, s->levels, &res);
        flush_events(s, 1);   /* training fires are not streamed: empty the ring */
        if (rc) { *detail = m.label; return rc; }
        sb_msg_train_resp_t r;
        r.sample_id = m.sample_id;
        r.predicted = res.predicted;
        r.neurons = res.neurons;
        r.pulses = res.pulses;
        memcpy(r.counts, res.counts, sizeof r.counts);
        memcpy(out, &r, sizeof r);
        return sizeof r;
    }
    case SB_CMD_TRAIN_BATCH: {
        /* several TRAIN bodies back to back: all checked first, then trained in order */
        sb_msg_batch_t b;
        if ((rc = batch_header(req, n, &b, detail))) return rc;
        const uint8_t nn = d->neurons[d->p.layers - 1];
        const size_t item_out = sizeof(sb_msg_train_item_t) + 2u * nn;
        const size_t need = sizeof(sb_msg_batch_resp_t) + (size_t)b.n * item_out;
        if (need > SB_MAX_PAYLOAD) { *detail = (uint32_t)need; return SB_ELEN; }
        uint16_t off[SB_MAX_BATCH];
        uint32_t steps = 0, work = 0;
        size_t at = sizeof b;
        for (uint8_t k = 0; k < b.n; k++) {
            sb_msg_train_t m;
            *detail = k;
            if (n - at < sizeof m) return SB_ELEN;
            memcpy(&m, req + at, sizeof m);
            const size_t len = input_len(s, m.steps, m.flags & SB_INFER_LEVELS);
            if (m.steps == 0 || m.steps > SB_MAX_STEPS) return SB_EINVAL;
            if (n - at - sizeof m < len) return SB_ELEN;
            if (m.label >= nn) return SB_ERANGE;
            if (m.rule >= SB_RULE_COUNT || m.max_pulses == 0) return SB_EINVAL;
            steps += m.steps;
            work += (uint32_t)sb_dev_cells(d) * m.max_pulses;
            if (steps > SB_MAX_STEPS || work > SB_MAX_PULSE_WORK) return SB_EINVAL;
            if ((rc = unpack_input(s, req + at + sizeof m, len, m.steps, m.flags & SB_INFER_LEVELS)))
                return rc;
            off[k] = (uint16_t)at;
            at += sizeof m + len;
        }
        if (at != n) { *detail = (uint32_t)n; return SB_ELEN; }
        sb_msg_batch_resp_t r = {b.n, nn, 0};
        memcpy(out, &r, sizeof r);
        uint8_t *o = out + sizeof r;
        for (uint8_t k = 0; k < b.n; k++) {
            sb_msg_train_t m;
            memcpy(&m, req + off[k], sizeof m);
            const size_t len = input_len(s, m.steps, m.flags & SB_INFER_LEVELS);
            unpack_input(s, req + off[k] + sizeof m, len, m.steps, m.flags & SB_INFER_LEVELS);
            sb_train_req_t tr = {m.steps, m.label, m.rule, m.target, m.max_pulses, 1, m.sample_id};
            sb_train_result_t res;
            rc = sb_learn_train(d, &tr, s->levels, &res);
            flush_events(s, 1);
            if (rc) { *detail = k; return rc; }
            sb_msg_train_item_t it = {m.sample_id, res.predicted, 0, res.pulses};
            memcpy(o, &it, sizeof it);
            memcpy(o + sizeof it, res.counts, 2u * nn);
            o += item_out;
        }
        return (int)need;
    }
    case SB_CMD_INFER_BATCH: {
        /* several INFER bodies back to back: all checked first, then run in order,
         * the neurons reset before each; per item exactly the INFER answer */
        sb_msg_batch_t b;
        if ((rc = batch_header(req, n, &b, detail))) return rc;
        const uint8_t last = (uint8_t)(d->p.layers - 1), nn = d->neurons[last];
        const uint8_t rows = d->p.rows;
        uint16_t off[SB_MAX_BATCH];
        uint32_t steps = 0;
        size_t need = sizeof(sb_msg_batch_resp_t);
        size_t at = sizeof b;
        for (uint8_t k = 0; k < b.n; k++) {
            sb_msg_infer_t m;
            *detail = k;
            if (n - at < sizeof m) return SB_ELEN;
            memcpy(&m, req + at, sizeof m);
            const size_t len = input_len(s, m.steps, m.flags & SB_INFER_LEVELS);
            if (m.flags & ~SB_INFER_BATCH_FLAGS) return SB_EINVAL;
            if (m.steps == 0 || m.steps > SB_MAX_STEPS) return SB_EINVAL;
            if (n - at - sizeof m < len) return SB_ELEN;
            steps += m.steps;
            if (steps > SB_MAX_STEPS) return SB_EINVAL;
            if ((rc = unpack_input(s, req + at + sizeof m, len, m.steps, m.flags & SB_INFER_LEVELS)))
                return rc;
            need += sizeof(sb_msg_infer_resp_t) + 4u * m.steps + 4u * nn;
            off[k] = (uint16_t)at;
            at += sizeof m + len;
        }
        if (at != n) { *detail = (uint32_t)n; return SB_ELEN; }
        if (need > SB_MAX_PAYLOAD) { *detail = (uint32_t)need; return SB_ELEN; }
        sb_msg_batch_resp_t r = {b.n, nn, 0};
        memcpy(out, &r, sizeof r);
        uint8_t *o = out + sizeof r;
        for (uint8_t k = 0; k < b.n; k++) {
            sb_msg_infer_t m;
            memcpy(&m, req + off[k], sizeof m);
            const size_t len = input_len(s, m.steps, m.flags & SB_INFER_LEVELS);
            unpack_input(s, req + off[k] + sizeof m, len, m.steps, m.flags & SB_INFER_LEVELS);
            *detail = k;
            if ((rc = sb_dev_reset_neurons(d))) return rc;
            sb_msg_infer_resp_t ir = {m.steps, nn, last, d->step};
            memcpy(o, &ir, sizeof ir);
            uint8_t *masks = o + sizeof ir;
            int32_t v[SB_MAX_NEURONS] = {0};   /* written by the last step (steps >= 1 checked above) */
            for (uint16_t t = 0; t < m.steps; t++) {
                uint32_t mk;
                rc = sb_dev_run(d, 1, &s->levels[(size_t)t * rows], &mk, t + 1 == m.steps ? v : NULL);
                if (rc) { flush_events(s, 1); return rc; }
                memcpy(masks + 4u * t, &mk, 4);
                if (s->io.drain) flush_events(s, 0);
            }
            memcpy(masks + 4u * m.steps, v, 4u * nn);
            o = masks + 4u * m.steps + 4u * nn;
        }
        flush_events(s, 1);   /* batch fires are not streamed: empty the ring */
        return (int)need;
    }
    case SB_CMD_PULSE: {
        sb_msg_pulse_t m;
        if (n != sizeof m) return SB_ELEN;
        memcpy(&m, req, sizeof m);
        if ((uint32_t)m.first + m.n > sb_dev_cells(d)) { *detail = (uint32_t)m.first + m.n; return SB_ERANGE; }
        if (2u * m.n > SB_MAX_PAYLOAD) { *detail = m.n; return SB_ELEN; }
        if ((uint32_t)m.n * m.count > SB_MAX_PULSE_WORK) { *detail = (uint32_t)m.n * m.count; return SB_EINVAL; }
        if ((rc = sb_dev_pulse(d, m.first, m.n, m.polarity, m.count))) return rc;
        uint16_t g[SB_MAX_PAYLOAD / 2];
        if ((rc = sb_dev_read(d, m.first, m.n, g))) return rc;
        memcpy(out, g, 2u * m.n);
        return 2 * m.n;
    }
    case SB_CMD_COUNTERS: {
        if (n != 1) return SB_ELEN;
        sb_msg_stats_t st = {s->frames_ok, s->frames_bad, s->dups, s->event_overflow, d->step};
        memcpy(out, &d->cnt, sizeof d->cnt);
        memcpy(out + sizeof d->cnt, &st, sizeof st);
        if (req[0] & SB_COUNTERS_CLEAR) sb_dev_clear_counters(d);
        return (int)(sizeof d->cnt + sizeof st);
    }
    case SB_CMD_RESET: {
        if (n != 1) return SB_ELEN;
        if (req[0] & SB_RESET_BOARD) {
            if (!s->io.reboot) return SB_ECMD;
            return 0;   /* reboots after the response is sent */
        }
        if ((req[0] & SB_RESET_CHIP) && d->configured) {
            sb_params_t p = d->p;
            if ((rc = sb_dev_configure(d, &p))) return rc;
        }
        if ((req[0] & SB_RESET_NEURONS) && d->configured && (rc = sb_dev_reset_neurons(d))) return rc;
        return 0;
    }
    case SB_CMD_AGE: {
        if (n != 4) return SB_ELEN;
        uint32_t sec;
        memcpy(&sec, req, 4);
        if ((rc = sb_dev_age(d, sec))) return rc;
        return 0;
    }
    case SB_CMD_STATE: {
        if (n != 1) return SB_ELEN;
        if (req[0] >= d->p.layers) { *detail = req[0]; return SB_ERANGE; }
        uint8_t nn = d->neurons[req[0]];
        int32_t v[SB_MAX_NEURONS];
        uint8_t rf[SB_MAX_NEURONS];
        if ((rc = d->port->neurons(d->port->ctx, req[0], v, rf))) return rc;
        out[0] = nn;
        memcpy(out + 1, v, 4u * nn);
        memcpy(out + 1 + 4u * nn, rf, nn);
        return 1 + 5 * nn;
    }
    case SB_CMD_IMAGE: {
        sb_msg_image_t m;
        if (n < sizeof m) return SB_ELEN;
        memcpy(&m, req, sizeof m);
        if (m.n > SB_MAX_PAYLOAD - 4u) { *detail = m.n; return SB_ELEN; }
        if (n != sizeof m + (m.write ? m.n : 0u)) { *detail = (uint32_t)n; return SB_ELEN; }
        uint32_t size = sb_dev_image_size(d);
        memcpy(out, &size, 4);
        if (m.n == 0) return 4;   /* size query: 0 on silicon */
        uint8_t *dst = m.write ? (uint8_t *)req + sizeof m : out + 4;
        if ((rc = sb_dev_image(d, m.offset, dst, m.n, m.write))) { *detail = m.offset; return rc; }
        return m.write ? 4 : 4 + m.n;
    }
    default:
        *detail = cmd;
        return SB_ECMD;
    }
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
    uint32_t detail = 0;
    int len = dispatch(s, cmd, s->req, (size_t)n, &detail);
    /* the command window closes: measured supply energy joins the counters */
    if (s->dev.port->energy_aj && cmd != SB_CMD_COUNTERS) s->dev.cnt.measured_aj += s->dev.port->energy_aj(s->dev.port->ctx);
    if (len < 0) {
        send_error(s, cmd, seq, len, detail, 1);
        return;
    }
    send(s, cmd, SB_F_RESP, seq, s->out, (size_t)len, 1);
    if (cmd == SB_CMD_RESET && (s->req[0] & SB_RESET_BOARD) && s->io.reboot) s->io.reboot(s->io.ctx);
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
