/* libFuzzer harness for the board's front door: the COBS/CRC frame decoder
 * and the command dispatcher of hal/ (sb_server_rx_buf) on a virtual chip.
 *
 * Input: one mode byte, then link bytes (see tests/fuzz/corpus.py):
 *   (mode & 3) % 3  0 unconfigured, 1 spec 32x32, 2 rram 16x16x3 with pulse-width levels
 *   mode & 4        an asynchronous readout path (io.drain) that hands out events
 *   mode & 8        structured: the rest is records [u16le len][cmd flags seq:u16le payload],
 *                   each framed here (CRC + COBS + delimiter) before it goes in, so that
 *                   mutations reach the dispatcher instead of dying at the CRC check;
 *                   without it the bytes go to the link as they are (framing layer)
 * Besides the sanitizers, every frame the server sends is checked: it must
 * decode (COBS, CRC), carry the response or event flag and fit the limits.
 *
 * Build (tests/fuzz/run.py does it):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Ihal/include -I<dir of params.inc> \
 *         tests/fuzz/fuzz_server.c hal/src/(*).c -o fuzz_server
 * The file has no main(): libFuzzer provides it here, and tests/sanitize/driver.c
 * links the same file with its own main() under gcc (ASan + UBSan). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb/chip.h"
#include "sb/errors.h"
#include "sb/params.h"
#include "sb/proto.h"
#include "sb/server.h"
#include "params.inc"

_Static_assert(sizeof fuzz_params_a == sizeof(sb_params_t), "params.inc is stale: rerun tests/fuzz/run.py");
_Static_assert(sizeof fuzz_params_b == sizeof(sb_params_t), "params.inc is stale: rerun tests/fuzz/run.py");

/* Counters the sanitizer driver prints: answers per command, errors. */
unsigned long fuzz_answers[256], fuzz_errors, fuzz_events, fuzz_reboots, fuzz_frames_out;

static sb_server_t server;
static sb_chip_t chip;
/* Snapshots of server+chip after init (and configure), restored per input:
 * the pointers inside point at `server` and `chip`, which never move. */
static sb_server_t snap_server[3];
static sb_chip_t snap_chip[3];
static int ready;
static uint32_t ev_budget, ev_step, clock_us;

static void fail(const char *what, const uint8_t *buf, size_t n) {
    fprintf(stderr, "fuzz_server: bad frame out of the server: %s (%zu bytes)\n", what, n);
    (void)buf;
    abort();
}

static void io_tx(void *ctx, const uint8_t *buf, size_t n) {
    (void)ctx;
    uint8_t cmd, flags;
    uint16_t seq;
    static uint8_t payload[SB_MAX_PAYLOAD];
    if (n < 2 || n > SB_MAX_FRAME) fail("length", buf, n);
    if (buf[n - 1] != 0 || memchr(buf, 0, n - 1)) fail("delimiter", buf, n);
    int len = sb_frame_decode(buf, n - 1, &cmd, &flags, &seq, payload, sizeof payload);
    if (len < 0) fail("does not decode", buf, n);
    if (!(flags & (SB_F_RESP | SB_F_EVENT))) fail("neither response nor event", buf, n);
    fuzz_frames_out++;
    if (cmd == SB_CMD_ERROR) {
        if (len != (int)sizeof(sb_msg_error_t)) fail("error body", buf, n);
        fuzz_errors++;
    } else if (cmd == SB_CMD_EVENT) {
        fuzz_events++;
    } else {
        fuzz_answers[cmd]++;
    }
}

static uint32_t io_now_us(void *ctx) {
    (void)ctx;
    return clock_us += 7;
}

/* An ISR ring with a few events waiting and, now and then, an overflow. */
static size_t io_drain(void *ctx, sb_event_t *ev, size_t max, uint32_t *overflow) {
    (void)ctx;
    size_t k = 0;
    while (k < max && ev_budget) {
        ev[k].t_us = clock_us += 3;
        ev[k].step = ev_step++;
        ev[k].mask = 0x5u << (ev_step % 8u);
        ev[k].layer = (uint8_t)(ev_step % 3u);
        memset(ev[k].pad, 0, sizeof ev[k].pad);
        k++;
        ev_budget--;
    }
    *overflow = (ev_step % 11u == 0u) ? 1u : 0u;
    return k;
}

/* The board's watchdog (2 s) as a work budget: a single well-formed PULSE may
 * ask for 1024 cells x 65535 pulses, which no board finishes before its
 * watchdog bites (a finding of this fuzzer, see docs/robustness.md). The
 * harness stops such a request with an error once an input has spent
 * FUZZ_PULSE_BUDGET pulses, so slow inputs do not eat the run. */
#define FUZZ_PULSE_BUDGET (1u << 16)
unsigned long fuzz_budget_hits;
static uint64_t pulse_work;
static int (*chip_exec)(void *ctx, const sb_op_t *ops, size_t n);

static int budget_exec(void *ctx, const sb_op_t *ops, size_t n) {
    for (size_t k = 0; k < n; k++) {
        if (ops[k].kind == SB_OP_PROGRAM || ops[k].kind == SB_OP_HOLD) pulse_work += ops[k].count;
    }
    if (pulse_work > FUZZ_PULSE_BUDGET) {
        fuzz_budget_hits++;
        return SB_ESTATE;
    }
    return chip_exec(ctx, ops, n);
}

static void io_reboot(void *ctx) {
    (void)ctx;
    fuzz_reboots++;
}

static void setup(int mode, int drain) {
    sb_server_io_t io;
    memset(&io, 0, sizeof io);
    io.tx = io_tx;
    io.now_us = io_now_us;
    io.drain = drain ? io_drain : NULL;
    io.board = "fuzz-board-name-longer-than-16";
    io.reboot = io_reboot;
    io.reset_reason = (uint8_t)mode;
    sb_server_init(&server, &io, sb_chip_port(&chip, NULL));
    chip_exec = chip.port.exec;
    chip.port.exec = budget_exec;
    if (mode) {
        sb_params_t p;
        memcpy(&p, mode == 1 ? fuzz_params_a : fuzz_params_b, sizeof p);
        if (sb_dev_configure(&server.dev, &p) != SB_OK) {
            fprintf(stderr, "fuzz_server: params.inc does not configure\n");
            abort();
        }
    }
}

static void init_once(void) {
    for (int mode = 0; mode < 3; mode++) {
        setup(mode, 0);
        snap_server[mode] = server;
        snap_chip[mode] = chip;
    }
    ready = 1;
}

/* Structured inputs: frame each record with the codec and feed it whole. */
static void feed_records(const uint8_t *p, size_t n) {
    static uint8_t frame[SB_MAX_FRAME];
    while (n >= 2) {
        size_t len = (size_t)p[0] | ((size_t)p[1] << 8);
        p += 2; n -= 2;
        if (len > n) len = n;
        if (len >= SB_HDR_LEN) {
            const uint16_t seq = (uint16_t)(p[2] | (p[3] << 8));
            int k = sb_frame_encode(p[0], p[1], seq, p + SB_HDR_LEN, len - SB_HDR_LEN, frame);
            if (k > 0) sb_server_rx_buf(&server, frame, (size_t)k);
        }
        p += len; n -= len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!ready) init_once();
    if (size < 1) return 0;
    const int mode = (data[0] & 3) % 3, drain = (data[0] & 4) != 0, structured = (data[0] & 8) != 0;
    server = snap_server[mode];
    chip = snap_chip[mode];
    server.io.drain = drain ? io_drain : NULL;
    ev_budget = drain ? 40u : 0u;
    ev_step = 0;
    pulse_work = 0;
    if (structured) feed_records(data + 1, size - 1);
    else sb_server_rx_buf(&server, data + 1, size - 1);
    /* the server must still answer after whatever came before */
    uint8_t hello[32];
    int n = sb_frame_encode(SB_CMD_HELLO, 0, 0x1234, NULL, 0, hello);
    /* the delimiter first ends whatever frame the input left open (it may be
     * a HELLO itself), so count the answers only after it */
    uint8_t delim = 0;
    sb_server_rx_buf(&server, &delim, 1);
    unsigned long before = fuzz_answers[SB_CMD_HELLO];
    sb_server_rx_buf(&server, hello, (size_t)n);
    if (fuzz_answers[SB_CMD_HELLO] != before + 1) {
        fprintf(stderr, "fuzz_server: no HELLO answer after the input\n");
        abort();
    }
    return 0;
}
