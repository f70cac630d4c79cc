/* Console UART (USART1 on netduinoplus2, USART2 on nucleo_f446re, chosen by
 * board.h): interrupt-driven, static RX and TX rings. */
#ifndef FW_UART_H
#define FW_UART_H

#include <stddef.h>
#include <stdint.h>

#ifndef FW_UART_RX_SIZE
#define FW_UART_RX_SIZE 2048u   /* power of two: > one max frame (SB_MAX_FRAME) */
#endif
#ifndef FW_UART_TX_SIZE
#define FW_UART_TX_SIZE 2048u
#endif

typedef struct {
    uint32_t rx_bytes, tx_bytes;
    uint32_t rx_overflow;       /* bytes dropped: RX ring full */
    uint32_t rx_overrun;        /* hardware ORE seen (byte lost before the ISR) */
} fw_uart_stats_t;

/* pclk_hz: bus clock of the UART (QEMU ignores baud; no clock wait). */
void fw_uart_init(uint32_t pclk_hz, uint32_t baud);
/* Next received byte, or -1 if none. */
int fw_uart_getc(void);
size_t fw_uart_read(uint8_t *buf, size_t max);
size_t fw_uart_rx_available(void);
/* Queue bytes for sending; blocks while the TX ring is full. Callable from
 * thread mode or an ISR (from an ISR or with interrupts masked it polls). */
void fw_uart_write(const uint8_t *buf, size_t n);
void fw_uart_puts(const char *s);
/* Wait until the TX ring is empty and the last byte has left the shifter. */
void fw_uart_flush(void);
size_t fw_uart_tx_pending(void);
void fw_uart_stats(fw_uart_stats_t *out);
/* Sleep until an interrupt if no received byte is waiting (race-free WFI). */
void fw_uart_idle_wait(void);

#endif
