/* spikeboard firmware: the command loop.
 * UART bytes -> sb_server (hal/) -> frames back over the UART. The chip is
 * the virtual chip (hal/ chip model) whose fires go through the asynchronous
 * readout path (events.c: latch -> IRQ -> ring -> io.drain). */
#ifndef PIO_UNIT_TESTING   /* `pio test` links its own main() */

#include <stddef.h>
#include <stdint.h>

#include "board.h"
#include "events.h"
#include "sb/chip.h"
#include "sb/server.h"
#include "systick.h"
#include "uart.h"
#include "watchdog.h"
#ifdef SB_SILICON
#include "silicon.h"
#endif

#define FW_WATCHDOG_MS 2000u

static sb_server_t server;
#ifndef SB_SILICON
static sb_chip_t chip;
#endif

static void fw_io_tx(void *ctx, const uint8_t *buf, size_t n)
{
    (void)ctx;
    fw_uart_write(buf, n);
}

static uint32_t fw_io_now_us(void *ctx)
{
    (void)ctx;
    return fw_now_us();
}

/* Virtual chip -> asynchronous readout path. */
static void fw_chip_fire(void *ctx, uint8_t layer, uint32_t step, uint32_t mask)
{
    (void)ctx;
    fw_events_latch(layer, step, mask);
}

/* ASSUMPTION (hal/include/sb/chip.h not written yet): the hook table is
 * sb_chip_hooks_t { void *ctx; void (*fire)(void *, uint8_t, uint32_t, uint32_t); }
 * and sb_chip_port(sb_chip_t *, const sb_chip_hooks_t *) returns sb_port_t *. */
static const sb_chip_hooks_t fw_chip_hooks = {
    .ctx = NULL,
    .fire = fw_chip_fire,
};

/* Aggregated readout (SB_INFER_COUNTS) on/off. The server counts the fire
 * masks it reads through the port at each SAMPLE, so no interrupt per fire is
 * needed: the virtual chip's spike line (its fire hook) is detached meanwhile.
 * On silicon EXTI1 still latches the spikes that fired() returns. */
static void fw_io_count_mode(void *ctx, int on)
{
#ifndef SB_SILICON
    chip.hooks.fire = on ? NULL : fw_chip_fire;
#endif
    fw_events_count_mode(ctx, on);
}

static void fw_io_reboot(void *ctx)
{
    (void)ctx;
    fw_uart_flush();
    fw_system_reset();
}

static sb_server_io_t io = {
    .ctx = NULL,
    .tx = fw_io_tx,
    .now_us = fw_io_now_us,
    .drain = fw_events_drain,
    .count_mode = fw_io_count_mode,
    .board = SB_BOARD_NAME,
    .reboot = fw_io_reboot,
};

int main(void)
{
    fw_board_init();
    fw_systick_init(fw_board_sysclk_hz());
    fw_uart_init(fw_board_uart_pclk_hz(), FW_UART_BAUD);
    /* A lone frame delimiter: the host's COBS decoder starts clean, and the
     * emulator launcher (host/spikeboard/emulator.py) learns that the UART
     * receives (QEMU drops bytes that arrive before UE|RE are set). */
    static const uint8_t delimiter = 0x00;
    fw_uart_write(&delimiter, 1);
    fw_watchdog_init(FW_WATCHDOG_MS);
    io.reset_reason = fw_reset_reason_wire(fw_reset_reason());   /* the cause latched from RCC_CSR */
    fw_events_init();

#ifdef SB_SILICON
    /* a real chip on the pins of boards/<board>/pins.md (firmware/port/<board>/silicon.c) */
    (void)fw_chip_hooks;
    fw_silicon_init();
    sb_port_t *port = fw_silicon_port();
#else
    sb_port_t *port = sb_chip_port(&chip, &fw_chip_hooks);
#endif
    sb_server_init(&server, &io, port);

    for (;;) {
        fw_watchdog_kick();
        int b;
        while ((b = fw_uart_getc()) >= 0) {
            sb_server_rx(&server, (uint8_t)b);
        }
#ifndef FW_NO_WFI
        fw_uart_idle_wait();    /* WFI; RX, SysTick (1 ms) and events wake it */
#endif
    }
}

#endif /* PIO_UNIT_TESTING */
