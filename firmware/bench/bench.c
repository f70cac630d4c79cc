/* Firmware benchmark (PlatformIO env `bench`, netduinoplus2 in QEMU with
 * -icount): counts the instructions the firmware spends on its hot paths.
 *
 * Under `qemu-system-arm -icount shift=0` every guest instruction advances
 * virtual time by 1 ns and SysTick (core clock, 168 MHz nominal on this
 * machine) counts virtual time, so fw_ticks() differences are instructions x
 * 0.168. The ratio is not assumed: a calibration loop of a known number of
 * instructions measures it first, and every figure is divided by it.
 *
 * The host (host/spikeboard/bench.py) writes a script file `bench.in` into
 * QEMU's working directory, read here through semihosting: records
 *   u8 op, u16 len (little-endian), len bytes
 * op 1: wire frame bytes (COBS, with the 0x00 delimiter), fed byte by byte
 *       to the command server exactly as the UART loop does;
 * op 2: detach the virtual chip's fire hook (no readout path at all);
 * op 3: attach it again.
 * Responses and event frames go out through the real UART driver (QEMU
 * -serial file:...), where the host decodes them. Each frame reports
 *   FRAME <index> <cmd> <rx bytes> <tx bytes> <ticks>
 * on the semihosting console. Then the pulse micro-benchmarks run on the
 * last configured device:
 *   PULSE <port> <kind> <pulses> <ticks>
 * and the run ends with `END` and SYS_EXIT_EXTENDED(0). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "events.h"
#include "sb/chip.h"
#include "sb/errors.h"
#include "sb/server.h"
#include "semihost.h"
#include "systick.h"
#include "uart.h"


#define BENCH_IN_MAX (40u * 1024u)

static sb_server_t server;
static sb_chip_t chip;
static uint8_t script[BENCH_IN_MAX];
static uint32_t tx_bytes;

/* ---- semihosting file input ---- */
static int sh_call(int op, void *arg)
{
    register int r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static int32_t read_script(void)
{
    static char name[] = "bench.in";
    uint32_t open_args[3] = {(uint32_t)(uintptr_t)name, 1u /* "rb" */, sizeof name - 1u};
    int h = sh_call(0x01 /* SYS_OPEN */, open_args);
    if (h < 0) {
        return -1;
    }
    uint32_t flen_args[1] = {(uint32_t)h};
    int len = sh_call(0x0C /* SYS_FLEN */, flen_args);
    if (len < 0 || (uint32_t)len > sizeof script) {
        return -2;
    }
    uint32_t read_args[3] = {(uint32_t)h, (uint32_t)(uintptr_t)script, (uint32_t)len};
    int left = sh_call(0x06 /* SYS_READ */, read_args);
    uint32_t close_args[1] = {(uint32_t)h};
    (void)sh_call(0x02 /* SYS_CLOSE */, close_args);
    return left == 0 ? len : -3;
}

static void out(const char *s) { fw_semihost_write0(s); }
static void out_u(uint32_t v)
{
    out(" ");
    fw_semihost_write_u32(v);
}

/* ---- server glue: the same as main.c ---- */
static void io_tx(void *ctx, const uint8_t *buf, size_t n)
{
    (void)ctx;
    tx_bytes += (uint32_t)n;
    fw_uart_write(buf, n);
}

static uint32_t io_now_us(void *ctx)
{
    (void)ctx;
    return fw_now_us();
}

static void chip_fire(void *ctx, uint8_t layer, uint32_t step, uint32_t mask)
{
    (void)ctx;
    fw_events_latch(layer, step, mask);
}

/* as main.c: counting needs no interrupt per fire, the spike line is detached */
static void io_count_mode(void *ctx, int on)
{
    chip.hooks.fire = on ? NULL : chip_fire;
    fw_events_count_mode(ctx, on);
}

static const sb_server_io_t io = {
    .ctx = NULL,
    .tx = io_tx,
    .now_us = io_now_us,
    .drain = fw_events_drain,
    .count_mode = io_count_mode,
    .board = SB_BOARD_NAME,
    .reboot = NULL,
};

/* ---- calibration: a loop of exactly 2 instructions per turn ---- */
__attribute__((noinline)) static void spin(uint32_t n)
{
    __asm volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n)::"cc");
}

static uint32_t ticks_of_spin(uint32_t n)
{
    uint32_t t0 = fw_ticks();
    spin(n);
    return fw_ticks() - t0;
}

/* ---- a port that only takes the ops: the sequencer's own cost ---- */
static uint32_t null_ops;
static int null_exec(void *ctx, const sb_op_t *ops, size_t n)
{
    (void)ctx;
    (void)ops;
    null_ops += (uint32_t)n;
    return SB_OK;
}
static uint32_t null_fired(void *ctx, uint8_t layer)
{
    (void)ctx;
    (void)layer;
    return 0;
}
static int null_read_cell(void *ctx, uint8_t l, uint8_t r, uint8_t c, uint16_t *g)
{
    (void)ctx;
    (void)l;
    (void)r;
    (void)c;
    *g = 0;
    return SB_OK;
}

static int8_t signs[SB_MAX_CELLS];
static uint16_t gbuf[SB_MAX_CELLS];

static void bench_pulses(const char *name, sb_port_t *port)
{
    sb_dev_t *d = &server.dev;
    sb_port_t *saved = d->port;
    uint16_t n = sb_dev_cells(d);
    d->port = port;
    for (uint16_t i = 0; i < n; i++) {
        signs[i] = (int8_t)((i * 7u + (i >> 3)) & 1u ? 1 : -1);
    }
    uint32_t t0 = fw_ticks();
    int rc = sb_dev_update(d, 0, n, signs);
    uint32_t t1 = fw_ticks();
    out("PULSE ");
    out(name);
    out(" program");
    out_u(n);
    out_u(t1 - t0);
    out_u((uint32_t)-rc);
    out("\n");
    t0 = fw_ticks();
    rc = sb_dev_read(d, 0, n, gbuf);
    t1 = fw_ticks();
    out("PULSE ");
    out(name);
    out(" read");
    out_u(n);
    out_u(t1 - t0);
    out_u((uint32_t)-rc);
    out("\n");
    d->port = saved;
}

int main(void)
{
    fw_board_init();
    fw_systick_init(fw_board_sysclk_hz());
    fw_uart_init(fw_board_uart_pclk_hz(), FW_UART_BAUD);
    fw_events_init();

    static const sb_chip_hooks_t hooks = {.ctx = NULL, .fire = chip_fire};
    sb_port_t *port = sb_chip_port(&chip, &hooks);
    sb_server_init(&server, &io, port);

    out("BENCH board " SB_BOARD_NAME "\n");
    out("CLOCK");
    out_u(fw_ticks_hz());
    out("\n");
    /* two lengths: the difference removes the call and the fw_ticks() reads */
    uint32_t a = ticks_of_spin(100000u), b = ticks_of_spin(1100000u);
    out("CALIB");
    out_u(2000000u);
    out_u(b - a);
    out("\n");
    out("EMPTY");
    out_u(ticks_of_spin(1u));
    out("\n");

    int32_t len = read_script();
    if (len < 0) {
        out("ERROR script ");
        fw_semihost_write_u32((unsigned long)-len);
        out("\n");
        fw_semihost_exit(2);
    }
    uint32_t pos = 0, frame = 0;
    while (pos + 3u <= (uint32_t)len) {
        uint8_t op = script[pos];
        uint32_t n = (uint32_t)script[pos + 1] | ((uint32_t)script[pos + 2] << 8);
        const uint8_t *p = &script[pos + 3];
        pos += 3u + n;
        if (pos > (uint32_t)len) {
            break;
        }
        if (op == 2) {
            chip.hooks.fire = NULL;
            continue;
        }
        if (op == 3) {
            chip.hooks.fire = chip_fire;
            continue;
        }
        uint32_t tx0 = tx_bytes;
        uint32_t t0 = fw_ticks();
        for (uint32_t k = 0; k < n; k++) {
            sb_server_rx(&server, p[k]);
        }
        uint32_t t1 = fw_ticks();
        out("FRAME");
        out_u(frame++);
        out_u(n > 1 ? p[1] : 0);    /* first COBS data byte: the command, unless it was 0 */
        out_u(n);
        out_u(tx_bytes - tx0);
        out_u(t1 - t0);
        out("\n");
    }
    fw_uart_flush();

    if (server.dev.configured) {
        static sb_port_t null_port = {
            .ctx = NULL, .exec = null_exec, .fired = null_fired, .read_cell = null_read_cell,
        };
        bench_pulses("sequencer", &null_port);
        bench_pulses("virtual", port);
    }
    out("END\n");
    fw_semihost_exit(0);
}
