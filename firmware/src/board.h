/* Board selection: one BOARD_<NAME> define per PlatformIO env (platformio.ini).
 * Values mirror boards/<name>/board.yaml. */
#ifndef FW_BOARD_H
#define FW_BOARD_H

#include <stdint.h>

#if defined(BOARD_NETDUINOPLUS2)
#define FW_UART_BASE     0x40011000u    /* USART1 */
#define FW_UART_IRQN     37u
#define FW_SYSCLK_HZ     168000000u     /* QEMU has no RCC: nominal clock */
#define FW_HAS_EMULATOR  1
#elif defined(BOARD_NUCLEO_F446RE)
#define FW_UART_BASE     0x40004400u    /* USART2 -> ST-LINK VCP (PA2/PA3) */
#define FW_UART_IRQN     38u
#define FW_SYSCLK_HZ     180000000u     /* HSI 16 MHz -> PLL, see port/nucleo_f446re */
#define FW_HAS_EMULATOR  0
#else
#error "define one BOARD_<NAME> (see platformio.ini)"
#endif

#ifndef SB_BOARD_NAME
#error "SB_BOARD_NAME must be defined by the build (platformio.ini)"
#endif

#define FW_UART_BAUD     115200u
#define FW_EVENTS_IRQN   6u             /* EXTI0, pended in software only */

/* NVIC priorities: SysTick preempts everything so fw_now_us() stays exact,
 * the spike event IRQ preempts the UART. */
#define FW_PRIO_SYSTICK  0u
#define FW_PRIO_EVENTS   1u
#define FW_PRIO_UART     2u

/* Implemented by firmware/port/<board>/board.c. */
void fw_board_init(void);               /* clocks, pins, peripheral clocks */
uint32_t fw_board_sysclk_hz(void);      /* core clock actually running */
uint32_t fw_board_uart_pclk_hz(void);   /* bus clock of the console UART */

#endif
