/* On-target unit tests, run in QEMU by `pio test -e netduinoplus2`. */
#include <stdint.h>
#include <string.h>

#include "../fw_test.h"
#include "board.h"
#include "events.h"
#include "ring.h"
#include "systick.h"
#include "uart.h"
#include "watchdog.h"

static void test_ring_put_get(void)
{
    uint8_t buf[8];
    fw_ring_t r;
    fw_ring_init(&r, buf, sizeof buf);
    FW_CHECK(fw_ring_empty(&r));
    FW_CHECK_EQ(fw_ring_get(&r), -1);
    for (int i = 0; i < 8; i++) {
        FW_CHECK(fw_ring_put(&r, (uint8_t)(i + 1)));
    }
    FW_CHECK(!fw_ring_put(&r, 99));             /* full */
    FW_CHECK_EQ(fw_ring_used(&r), 8);
    FW_CHECK_EQ(fw_ring_free(&r), 0);
    for (int i = 0; i < 8; i++) {
        FW_CHECK_EQ(fw_ring_get(&r), i + 1);
    }
    FW_CHECK_EQ(fw_ring_get(&r), -1);
}

static void test_ring_index_wrap(void)
{
    uint8_t buf[16];
    fw_ring_t r;
    fw_ring_init(&r, buf, sizeof buf);
    r.head = r.tail = 0xFFFFFFF0u;              /* free-running indices wrap */
    for (unsigned i = 0; i < 100; i++) {
        FW_CHECK(fw_ring_put(&r, (uint8_t)i));
        FW_CHECK(fw_ring_put(&r, (uint8_t)(i ^ 0xA5u)));
        FW_CHECK_EQ(fw_ring_used(&r), 2);
        FW_CHECK_EQ(fw_ring_get(&r), (uint8_t)i);
        FW_CHECK_EQ(fw_ring_get(&r), (uint8_t)(i ^ 0xA5u));
    }
    FW_CHECK(fw_ring_empty(&r));
}

static void test_systick_advances(void)
{
    uint32_t t0 = fw_now_us(), k0 = fw_ticks();
    uint32_t prev = t0, kprev = k0;
    for (volatile uint32_t i = 0; i < 200000u; i++) {
        uint32_t t = fw_now_us();
        FW_CHECK((int32_t)(t - prev) >= 0);     /* monotonic */
        uint32_t k = fw_ticks();
        FW_CHECK((int32_t)(k - kprev) >= 0);
        kprev = k;
        prev = t;
    }
    FW_CHECK(fw_now_us() != t0);
    FW_CHECK(fw_ticks() != k0);
    FW_CHECK_EQ(fw_ticks_hz(), fw_board_sysclk_hz());
}

static void test_events_in_order(void)
{
    sb_event_t ev[8];
    uint32_t overflow = 123;
    (void)fw_events_drain(NULL, ev, 8, &overflow);      /* empty it */
    for (uint32_t i = 0; i < 5; i++) {
        fw_events_latch((uint8_t)(i % 3u), 100u + i, 1u << i);
        /* thread mode: the pended IRQ ran before fw_events_latch returned */
        FW_CHECK_EQ(fw_events_pending(), i + 1u);
    }
    size_t n = fw_events_drain(NULL, ev, 8, &overflow);
    FW_CHECK_EQ(n, 5);
    FW_CHECK_EQ(overflow, 0);
    for (uint32_t i = 0; i < 5; i++) {
        FW_CHECK_EQ(ev[i].layer, i % 3u);
        FW_CHECK_EQ(ev[i].step, 100u + i);
        FW_CHECK_EQ(ev[i].mask, 1u << i);
        FW_CHECK_EQ(ev[i].pad[0] | ev[i].pad[1] | ev[i].pad[2], 0);
        if (i > 0) {
            FW_CHECK((int32_t)(ev[i].t_us - ev[i - 1].t_us) >= 0);
        }
    }
    FW_CHECK_EQ(fw_events_pending(), 0);
}

static void test_events_partial_drain(void)
{
    sb_event_t ev[4];
    for (uint32_t i = 0; i < 7; i++) {
        fw_events_latch(1, i, 0xFFFFFFFFu);
    }
    FW_CHECK_EQ(fw_events_drain(NULL, ev, 4, NULL), 4);
    FW_CHECK_EQ(ev[3].step, 3);
    FW_CHECK_EQ(fw_events_drain(NULL, ev, 4, NULL), 3);
    FW_CHECK_EQ(ev[0].step, 4);
    FW_CHECK_EQ(ev[2].step, 6);
    FW_CHECK_EQ(fw_events_drain(NULL, ev, 4, NULL), 0);
}

static void test_events_overflow_counted(void)
{
    static sb_event_t ev[FW_EVENTS_RING];
    uint32_t overflow = 0;
    (void)fw_events_drain(NULL, ev, FW_EVENTS_RING, &overflow);
    uint32_t before = fw_events_overflow_total();
    for (uint32_t i = 0; i < FW_EVENTS_RING + 10u; i++) {
        fw_events_latch(0, i, 1);
    }
    FW_CHECK_EQ(fw_events_overflow_total() - before, 10);
    size_t n = fw_events_drain(NULL, ev, FW_EVENTS_RING, &overflow);
    FW_CHECK_EQ(n, FW_EVENTS_RING);
    FW_CHECK_EQ(overflow, 10);
    FW_CHECK_EQ(ev[0].step, 0);                         /* oldest kept */
    FW_CHECK_EQ(ev[FW_EVENTS_RING - 1].step, FW_EVENTS_RING - 1u);
    FW_CHECK_EQ(fw_events_drain(NULL, ev, FW_EVENTS_RING, &overflow), 0);
    FW_CHECK_EQ(overflow, 0);                           /* reported once */
}

static void test_events_latch_with_irqs_masked(void)
{
    sb_event_t ev[4];
    (void)fw_events_drain(NULL, ev, 4, NULL);
    __asm volatile("cpsid i" ::: "memory");
    fw_events_latch(2, 7, 0x10);
    fw_events_latch(2, 8, 0x20);                        /* latch queue keeps both */
    FW_CHECK_EQ(fw_events_pending(), 0);                /* IRQ not run yet */
    __asm volatile("cpsie i" ::: "memory");
    __asm volatile("isb" ::: "memory");
    FW_CHECK_EQ(fw_events_drain(NULL, ev, 4, NULL), 2);
    FW_CHECK_EQ(ev[0].step, 7);
    FW_CHECK_EQ(ev[1].mask, 0x20);
}

static void test_uart_tx_beyond_ring(void)
{
    static uint8_t data[FW_UART_TX_SIZE * 2 + 17];
    fw_uart_stats_t s0, s1;
    for (size_t i = 0; i < sizeof data; i++) {
        data[i] = (uint8_t)i;
    }
    fw_uart_stats(&s0);
    fw_uart_write(data, sizeof data);                   /* blocks while full */
    fw_uart_flush();
    fw_uart_stats(&s1);
    FW_CHECK_EQ(s1.tx_bytes - s0.tx_bytes, sizeof data);
    FW_CHECK_EQ(fw_uart_tx_pending(), 0);
    FW_CHECK_EQ(fw_uart_rx_available(), 0);
    FW_CHECK_EQ(fw_uart_getc(), -1);
}

static void test_reset_reason_emulator(void)
{
    /* QEMU models no RCC: no reset flag, reason "unknown". */
    FW_CHECK_EQ(fw_reset_flags(), 0);
    FW_CHECK_EQ(fw_reset_reason(), FW_RESET_UNKNOWN);
    FW_CHECK(strcmp(fw_reset_reason_name(fw_reset_reason()), "unknown") == 0);
    FW_CHECK(strcmp(fw_reset_reason_name(FW_RESET_IWDG), "watchdog") == 0);
    fw_watchdog_kick();                                 /* harmless under QEMU */
}

static void test_fpu_enabled(void)
{
    volatile float a = 1.5f, b = 2.25f;
    float c = a * b + 0.125f;
    FW_CHECK(c > 3.49f && c < 3.51f);
}

int main(void)
{
    fw_board_init();
    fw_systick_init(fw_board_sysclk_hz());
    fw_uart_init(fw_board_uart_pclk_hz(), FW_UART_BAUD);
    fw_watchdog_init(2000);
    fw_events_init();

    FW_RUN(test_ring_put_get);
    FW_RUN(test_ring_index_wrap);
    FW_RUN(test_systick_advances);
    FW_RUN(test_events_in_order);
    FW_RUN(test_events_partial_drain);
    FW_RUN(test_events_overflow_counted);
    FW_RUN(test_events_latch_with_irqs_masked);
    FW_RUN(test_uart_tx_beyond_ring);
    FW_RUN(test_reset_reason_emulator);
    FW_RUN(test_fpu_enabled);
    FW_TESTS_END();
}
