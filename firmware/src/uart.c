#include "uart.h"

#include <string.h>

#include "board.h"
#include "fw_regs.h"
#include "ring.h"

_Static_assert(FW_IS_POW2(FW_UART_RX_SIZE), "FW_UART_RX_SIZE must be a power of two");
_Static_assert(FW_IS_POW2(FW_UART_TX_SIZE), "FW_UART_TX_SIZE must be a power of two");

#define U FW_UART_BASE

static uint8_t s_rx_buf[FW_UART_RX_SIZE];
static uint8_t s_tx_buf[FW_UART_TX_SIZE];
static fw_ring_t s_rx;
static fw_ring_t s_tx;
static volatile fw_uart_stats_t s_stats;

void fw_uart_init(uint32_t pclk_hz, uint32_t baud)
{
    fw_ring_init(&s_rx, s_rx_buf, FW_UART_RX_SIZE);
    fw_ring_init(&s_tx, s_tx_buf, FW_UART_TX_SIZE);
    USART_CR1(U) = 0;
    USART_CR2(U) = 0;           /* 1 stop bit */
    USART_CR3(U) = 0;           /* no flow control */
    /* OVER8 = 0: BRR = pclk / baud, rounded (mantissa.fraction/16). */
    USART_BRR(U) = (pclk_hz + baud / 2u) / baud;
    (void)USART_SR(U);
    (void)USART_DR(U);
    USART_CR1(U) = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE | USART_CR1_RXNEIE;
    fw_nvic_prio(FW_UART_IRQN, FW_PRIO_UART);
    fw_nvic_enable(FW_UART_IRQN);
}

/* Move one byte from the TX ring to the data register if it is free.
 * Returns 0 when the ring is empty. */
static int fw_uart_tx_step(void)
{
    if (!(USART_SR(U) & USART_SR_TXE)) {
        return 1;
    }
    int b = fw_ring_get(&s_tx);
    if (b < 0) {
        return 0;
    }
    USART_DR(U) = (uint32_t)b;
    s_stats.tx_bytes++;
    return 1;
}

static void fw_uart_isr(void)
{
    uint32_t sr = USART_SR(U);
    while (sr & (USART_SR_RXNE | USART_SR_ORE)) {
        uint8_t b = (uint8_t)USART_DR(U);   /* SR then DR read also clears ORE */
        if (sr & USART_SR_ORE) {
            s_stats.rx_overrun++;
        }
        if (sr & USART_SR_RXNE) {
            if (fw_ring_put(&s_rx, b)) {
                s_stats.rx_bytes++;
            } else {
                s_stats.rx_overflow++;
            }
        }
        sr = USART_SR(U);
    }
    if ((USART_CR1(U) & USART_CR1_TXEIE) && (sr & USART_SR_TXE)) {
        if (!fw_uart_tx_step()) {
            USART_CR1(U) &= ~USART_CR1_TXEIE;   /* ring drained */
        }
    }
}

#if defined(BOARD_NETDUINOPLUS2)
void USART1_IRQHandler(void) { fw_uart_isr(); }
#elif defined(BOARD_NUCLEO_F446RE)
void USART2_IRQHandler(void) { fw_uart_isr(); }
#endif

int fw_uart_getc(void)
{
    return fw_ring_get(&s_rx);
}

size_t fw_uart_read(uint8_t *buf, size_t max)
{
    size_t n = 0;
    int b;
    while (n < max && (b = fw_ring_get(&s_rx)) >= 0) {
        buf[n++] = (uint8_t)b;
    }
    return n;
}

size_t fw_uart_rx_available(void)
{
    return fw_ring_used(&s_rx);
}

/* Move bytes from the TX ring into the data register while it is free,
 * up to FW_UART_PUMP_BURST bytes per short critical section (the ISR is the
 * other consumer). On silicon this moves one byte (TXE clears) and the TXE
 * interrupt does the rest. QEMU 7.2's stm32f2xx-usart never raises the TXE
 * interrupt but sends synchronously with TXE always set, so there this loop
 * drains the ring. */
#define FW_UART_PUMP_BURST 64u
static void fw_uart_tx_pump(void)
{
    const uint8_t *buf = s_tx.buf;
    const uint32_t mask = s_tx.mask;
    for (;;) {
        uint32_t m = fw_irq_save();
        uint32_t t = s_tx.tail;
        const uint32_t t0 = t;
        uint32_t used = s_tx.head - t;
        const uint32_t end = t + (used < FW_UART_PUMP_BURST ? used : FW_UART_PUMP_BURST);
        while (t != end && (USART_SR(U) & USART_SR_TXE)) {
            USART_DR(U) = buf[t & mask];
            t++;
        }
        __asm volatile("" ::: "memory");
        s_tx.tail = t;
        s_stats.tx_bytes += t - t0;
        fw_irq_restore(m);
        if (t - t0 < FW_UART_PUMP_BURST) {
            break;
        }
    }
}

static void fw_uart_tx_kick(void)
{
    fw_uart_tx_pump();
    uint32_t m = fw_irq_save();
    if (!fw_ring_empty(&s_tx)) {
        USART_CR1(U) |= USART_CR1_TXEIE;
    }
    fw_irq_restore(m);
}

/* Copies as much as fits into the ring at once (one index update per
 * chunk), then starts the transmitter; a full ring waits for the shifter. */
void fw_uart_write(const uint8_t *buf, size_t n)
{
    while (n > 0u) {
        uint32_t h = s_tx.head;
        uint32_t room = fw_ring_free(&s_tx);
        uint32_t m = n < room ? (uint32_t)n : room;
        if (m == 0u) {
            fw_uart_tx_kick();      /* ring full: wait for the shifter */
            continue;
        }
        /* at most two contiguous pieces: up to the end of the buffer, then from its start */
        uint32_t at = h & s_tx.mask;
        uint32_t first = s_tx.mask + 1u - at;
        if (first > m) {
            first = m;
        }
        memcpy(&s_tx.buf[at], buf, first);
        if (m > first) {
            memcpy(s_tx.buf, buf + first, m - first);
        }
        __asm volatile("" ::: "memory");   /* data before index (single core) */
        s_tx.head = h + m;
        buf += m;
        n -= m;
    }
    fw_uart_tx_kick();
}

void fw_uart_puts(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    fw_uart_write((const uint8_t *)s, n);
}

size_t fw_uart_tx_pending(void)
{
    return fw_ring_used(&s_tx);
}

void fw_uart_flush(void)
{
    while (!fw_ring_empty(&s_tx)) {
        fw_uart_tx_kick();
    }
    for (uint32_t i = 0; i < 1000000u && !(USART_SR(U) & USART_SR_TC); i++) {
    }
}

void fw_uart_stats(fw_uart_stats_t *out)
{
    uint32_t m = fw_irq_save();
    out->rx_bytes = s_stats.rx_bytes;
    out->tx_bytes = s_stats.tx_bytes;
    out->rx_overflow = s_stats.rx_overflow;
    out->rx_overrun = s_stats.rx_overrun;
    fw_irq_restore(m);
}

void fw_uart_idle_wait(void)
{
    /* Interrupts masked between the check and WFI: a byte arriving in
     * between leaves its IRQ pending, which wakes WFI at once. */
    fw_irq_disable();
    if (fw_ring_empty(&s_rx)) {
        fw_wfi();
    }
    fw_irq_enable();
}
