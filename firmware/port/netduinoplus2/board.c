/* netduinoplus2 (STM32F405RG) under QEMU: QEMU models no RCC, PLL or GPIO
 * (all "unimplemented devices": writes ignored, reads 0), so nothing may
 * wait on a ready flag here. The peripheral clock enables and the USART1
 * pin set-up are still written so the same image would talk on a real
 * Netduino Plus 2 (at the reset clock: then baud is off; use the real
 * PLL set-up of nucleo_f446re as a model if that board ever matters). */
#include "board.h"
#include "fw_regs.h"

void fw_board_init(void)
{
    RCC_AHB1ENR |= (1u << 0);               /* GPIOA */
    RCC_APB2ENR |= (1u << 4);               /* USART1 */
    /* PA9 = TX, PA10 = RX: alternate function 7. */
    GPIO_MODER(GPIOA_BASE) = (GPIO_MODER(GPIOA_BASE) & ~((3u << 18) | (3u << 20))) |
                             (2u << 18) | (2u << 20);
    GPIO_AFRH(GPIOA_BASE) = (GPIO_AFRH(GPIOA_BASE) & ~((0xFu << 4) | (0xFu << 8))) |
                            (7u << 4) | (7u << 8);
}

uint32_t fw_board_sysclk_hz(void)
{
    return FW_SYSCLK_HZ;
}

uint32_t fw_board_uart_pclk_hz(void)
{
    return FW_SYSCLK_HZ / 2u;               /* APB2 */
}
