/* nucleo_f446re (STM32F446RE): HSI 16 MHz -> PLL -> 180 MHz SYSCLK with
 * over-drive, AHB 180 MHz, APB1 45 MHz (/4), APB2 90 MHz (/2), flash 5 wait
 * states; USART2 on PA2/PA3 (AF7) to the ST-LINK virtual COM port.
 * Every wait is bounded: if the PLL does not lock the board stays on HSI
 * and reports 16 MHz, so the console still works at the right baud. */
#include "board.h"
#include "fw_regs.h"

#define SPIN 1000000u

static uint32_t s_sysclk = 16000000u;       /* HSI after reset */
static uint32_t s_apb1 = 16000000u;

static int fw_wait_set(volatile uint32_t *reg, uint32_t bits)
{
    for (uint32_t i = 0; i < SPIN; i++) {
        if ((*reg & bits) == bits) {
            return 1;
        }
    }
    return 0;
}

static void fw_clock_180mhz(void)
{
    RCC_CR |= RCC_CR_HSION;
    if (!fw_wait_set(&RCC_CR, RCC_CR_HSIRDY)) {
        return;
    }
    RCC_APB1ENR |= (1u << 28);              /* PWREN */
    PWR_CR |= (3u << 14);                   /* VOS scale 1 */
    /* PLLM=8 (2 MHz in), PLLN=180 (360 MHz VCO), PLLP=/2 (180 MHz),
     * PLLQ=7, PLLR=2, source HSI. */
    RCC_PLLCFGR = 8u | (180u << 6) | (0u << 16) | (0u << 22) | (7u << 24) | (2u << 28);
    RCC_CR |= RCC_CR_PLLON;
    if (!fw_wait_set(&RCC_CR, RCC_CR_PLLRDY)) {
        return;
    }
    PWR_CR |= (1u << 16);                   /* ODEN */
    if (!fw_wait_set(&PWR_CSR, 1u << 16)) { /* ODRDY */
        return;
    }
    PWR_CR |= (1u << 17);                   /* ODSWEN */
    if (!fw_wait_set(&PWR_CSR, 1u << 17)) { /* ODSWRDY */
        return;
    }
    /* 5 wait states at 180 MHz / 3.3 V, prefetch, I- and D-cache. */
    FLASH_ACR = 5u | (1u << 8) | (1u << 9) | (1u << 10);
    for (uint32_t i = 0; i < SPIN && (FLASH_ACR & 0xFu) != 5u; i++) {
    }
    /* HPRE /1, PPRE1 /4 (101), PPRE2 /2 (100), SW = PLL. */
    RCC_CFGR = (RCC_CFGR & ~0xFCF3u) | (5u << 10) | (4u << 13) | 2u;
    for (uint32_t i = 0; i < SPIN; i++) {
        if (((RCC_CFGR >> 2) & 3u) == 2u) {
            s_sysclk = 180000000u;
            s_apb1 = 45000000u;
            return;
        }
    }
}

void fw_board_init(void)
{
    fw_clock_180mhz();
    RCC_AHB1ENR |= (1u << 0);               /* GPIOA */
    RCC_APB1ENR |= (1u << 17);              /* USART2 */
    (void)RCC_APB1ENR;                      /* read back: clock is on before use */
    /* PA2 = TX, PA3 = RX: alternate function 7, RX pulled up. */
    GPIO_MODER(GPIOA_BASE) = (GPIO_MODER(GPIOA_BASE) & ~((3u << 4) | (3u << 6))) |
                             (2u << 4) | (2u << 6);
    GPIO_OSPEEDR(GPIOA_BASE) |= (2u << 4) | (2u << 6);
    GPIO_PUPDR(GPIOA_BASE) = (GPIO_PUPDR(GPIOA_BASE) & ~(3u << 6)) | (1u << 6);
    GPIO_AFRL(GPIOA_BASE) = (GPIO_AFRL(GPIOA_BASE) & ~((0xFu << 8) | (0xFu << 12))) |
                            (7u << 8) | (7u << 12);
}

uint32_t fw_board_sysclk_hz(void)
{
    return s_sysclk;
}

uint32_t fw_board_uart_pclk_hz(void)
{
    return s_apb1;
}
