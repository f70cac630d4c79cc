/* Vector table and reset for STM32F405 (netduinoplus2) and STM32F446
 * (nucleo_f446re): 16 core exceptions + 97 IRQs (the F446 count; the F405
 * uses the first 82). Every handler is a weak alias of Default_Handler, so
 * a module provides one by defining a function of the same name. */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "fw_regs.h"
#include "semihost.h"

#define FW_IRQ_COUNT 97

extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[], _estack[];
extern int main(void);

void Reset_Handler(void);
void Default_Handler(void);

#define FW_WEAK_DEFAULT __attribute__((weak, alias("Default_Handler")))
void NMI_Handler(void) FW_WEAK_DEFAULT;
void HardFault_Handler(void) FW_WEAK_DEFAULT;
void MemManage_Handler(void) FW_WEAK_DEFAULT;
void BusFault_Handler(void) FW_WEAK_DEFAULT;
void UsageFault_Handler(void) FW_WEAK_DEFAULT;
void SVC_Handler(void) FW_WEAK_DEFAULT;
void DebugMon_Handler(void) FW_WEAK_DEFAULT;
void PendSV_Handler(void) FW_WEAK_DEFAULT;
void SysTick_Handler(void) FW_WEAK_DEFAULT;
void WWDG_IRQHandler(void) FW_WEAK_DEFAULT;
void PVD_IRQHandler(void) FW_WEAK_DEFAULT;
void TAMP_STAMP_IRQHandler(void) FW_WEAK_DEFAULT;
void RTC_WKUP_IRQHandler(void) FW_WEAK_DEFAULT;
void FLASH_IRQHandler(void) FW_WEAK_DEFAULT;
void RCC_IRQHandler(void) FW_WEAK_DEFAULT;
void EXTI0_IRQHandler(void) FW_WEAK_DEFAULT;
void EXTI1_IRQHandler(void) FW_WEAK_DEFAULT;
void EXTI2_IRQHandler(void) FW_WEAK_DEFAULT;
void EXTI3_IRQHandler(void) FW_WEAK_DEFAULT;
void EXTI4_IRQHandler(void) FW_WEAK_DEFAULT;
void DMA1_Stream0_IRQHandler(void) FW_WEAK_DEFAULT;
void DMA1_Stream1_IRQHandler(void) FW_WEAK_DEFAULT;
void DMA1_Stream2_IRQHandler(void) FW_WEAK_DEFAULT;
void DMA1_Stream3_IRQHandler(void) FW_WEAK_DEFAULT;
void DMA1_Stream4_IRQHandler(void) FW_WEAK_DEFAULT;
void DMA1_Stream5_IRQHandler(void) FW_WEAK_DEFAULT;
void DMA1_Stream6_IRQHandler(void) FW_WEAK_DEFAULT;
void ADC_IRQHandler(void) FW_WEAK_DEFAULT;
void CAN1_TX_IRQHandler(void) FW_WEAK_DEFAULT;
void CAN1_RX0_IRQHandler(void) FW_WEAK_DEFAULT;
void CAN1_RX1_IRQHandler(void) FW_WEAK_DEFAULT;
void CAN1_SCE_IRQHandler(void) FW_WEAK_DEFAULT;
void EXTI9_5_IRQHandler(void) FW_WEAK_DEFAULT;
void TIM1_BRK_TIM9_IRQHandler(void) FW_WEAK_DEFAULT;
void TIM1_UP_TIM10_IRQHandler(void) FW_WEAK_DEFAULT;
void TIM1_TRG_COM_TIM11_IRQHandler(void) FW_WEAK_DEFAULT;
void TIM1_CC_IRQHandler(void) FW_WEAK_DEFAULT;
void TIM2_IRQHandler(void) FW_WEAK_DEFAULT;
void TIM3_IRQHandler(void) FW_WEAK_DEFAULT;
void TIM4_IRQHandler(void) FW_WEAK_DEFAULT;
void I2C1_EV_IRQHandler(void) FW_WEAK_DEFAULT;
void I2C1_ER_IRQHandler(void) FW_WEAK_DEFAULT;
void I2C2_EV_IRQHandler(void) FW_WEAK_DEFAULT;
void I2C2_ER_IRQHandler(void) FW_WEAK_DEFAULT;
void SPI1_IRQHandler(void) FW_WEAK_DEFAULT;
void SPI2_IRQHandler(void) FW_WEAK_DEFAULT;
void USART1_IRQHandler(void) FW_WEAK_DEFAULT;
void USART2_IRQHandler(void) FW_WEAK_DEFAULT;
void USART3_IRQHandler(void) FW_WEAK_DEFAULT;
void EXTI15_10_IRQHandler(void) FW_WEAK_DEFAULT;
void RTC_Alarm_IRQHandler(void) FW_WEAK_DEFAULT;
void OTG_FS_WKUP_IRQHandler(void) FW_WEAK_DEFAULT;
void TIM8_BRK_TIM12_IRQHandler(void) FW_WEAK_DEFAULT;
void TIM8_UP_TIM13_IRQHandler(void) FW_WEAK_DEFAULT;
void TIM8_TRG_COM_TIM14_IRQHandler(void) FW_WEAK_DEFAULT;
void TIM8_CC_IRQHandler(void) FW_WEAK_DEFAULT;
void DMA1_Stream7_IRQHandler(void) FW_WEAK_DEFAULT;
void FSMC_IRQHandler(void) FW_WEAK_DEFAULT;
void SDIO_IRQHandler(void) FW_WEAK_DEFAULT;
void TIM5_IRQHandler(void) FW_WEAK_DEFAULT;
void SPI3_IRQHandler(void) FW_WEAK_DEFAULT;
void UART4_IRQHandler(void) FW_WEAK_DEFAULT;
void UART5_IRQHandler(void) FW_WEAK_DEFAULT;
void TIM6_DAC_IRQHandler(void) FW_WEAK_DEFAULT;
void TIM7_IRQHandler(void) FW_WEAK_DEFAULT;
void DMA2_Stream0_IRQHandler(void) FW_WEAK_DEFAULT;
void DMA2_Stream1_IRQHandler(void) FW_WEAK_DEFAULT;
void DMA2_Stream2_IRQHandler(void) FW_WEAK_DEFAULT;
void DMA2_Stream3_IRQHandler(void) FW_WEAK_DEFAULT;
void DMA2_Stream4_IRQHandler(void) FW_WEAK_DEFAULT;
void ETH_IRQHandler(void) FW_WEAK_DEFAULT;
void ETH_WKUP_IRQHandler(void) FW_WEAK_DEFAULT;
void CAN2_TX_IRQHandler(void) FW_WEAK_DEFAULT;
void CAN2_RX0_IRQHandler(void) FW_WEAK_DEFAULT;
void CAN2_RX1_IRQHandler(void) FW_WEAK_DEFAULT;
void CAN2_SCE_IRQHandler(void) FW_WEAK_DEFAULT;
void OTG_FS_IRQHandler(void) FW_WEAK_DEFAULT;
void DMA2_Stream5_IRQHandler(void) FW_WEAK_DEFAULT;
void DMA2_Stream6_IRQHandler(void) FW_WEAK_DEFAULT;
void DMA2_Stream7_IRQHandler(void) FW_WEAK_DEFAULT;
void USART6_IRQHandler(void) FW_WEAK_DEFAULT;
void I2C3_EV_IRQHandler(void) FW_WEAK_DEFAULT;
void I2C3_ER_IRQHandler(void) FW_WEAK_DEFAULT;
void OTG_HS_EP1_OUT_IRQHandler(void) FW_WEAK_DEFAULT;
void OTG_HS_EP1_IN_IRQHandler(void) FW_WEAK_DEFAULT;
void OTG_HS_WKUP_IRQHandler(void) FW_WEAK_DEFAULT;
void OTG_HS_IRQHandler(void) FW_WEAK_DEFAULT;
void DCMI_IRQHandler(void) FW_WEAK_DEFAULT;
void CRYP_IRQHandler(void) FW_WEAK_DEFAULT;
void HASH_RNG_IRQHandler(void) FW_WEAK_DEFAULT;
void FPU_IRQHandler(void) FW_WEAK_DEFAULT;
void SPI4_IRQHandler(void) FW_WEAK_DEFAULT;
void SAI1_IRQHandler(void) FW_WEAK_DEFAULT;
void SAI2_IRQHandler(void) FW_WEAK_DEFAULT;
void QUADSPI_IRQHandler(void) FW_WEAK_DEFAULT;
void CEC_IRQHandler(void) FW_WEAK_DEFAULT;
void SPDIF_RX_IRQHandler(void) FW_WEAK_DEFAULT;
void FMPI2C1_EV_IRQHandler(void) FW_WEAK_DEFAULT;
void FMPI2C1_ER_IRQHandler(void) FW_WEAK_DEFAULT;

typedef void (*fw_vector_t)(void);

__attribute__((section(".isr_vector"), used))
const fw_vector_t fw_vectors[16 + FW_IRQ_COUNT] = {
    (fw_vector_t)(uintptr_t)_estack,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0, 0, 0, 0,
    SVC_Handler,
    DebugMon_Handler,
    0,
    PendSV_Handler,
    SysTick_Handler,
    /*  0 */ WWDG_IRQHandler,
    /*  1 */ PVD_IRQHandler,
    /*  2 */ TAMP_STAMP_IRQHandler,
    /*  3 */ RTC_WKUP_IRQHandler,
    /*  4 */ FLASH_IRQHandler,
    /*  5 */ RCC_IRQHandler,
    /*  6 */ EXTI0_IRQHandler,
    /*  7 */ EXTI1_IRQHandler,
    /*  8 */ EXTI2_IRQHandler,
    /*  9 */ EXTI3_IRQHandler,
    /* 10 */ EXTI4_IRQHandler,
    /* 11 */ DMA1_Stream0_IRQHandler,
    /* 12 */ DMA1_Stream1_IRQHandler,
    /* 13 */ DMA1_Stream2_IRQHandler,
    /* 14 */ DMA1_Stream3_IRQHandler,
    /* 15 */ DMA1_Stream4_IRQHandler,
    /* 16 */ DMA1_Stream5_IRQHandler,
    /* 17 */ DMA1_Stream6_IRQHandler,
    /* 18 */ ADC_IRQHandler,
    /* 19 */ CAN1_TX_IRQHandler,
    /* 20 */ CAN1_RX0_IRQHandler,
    /* 21 */ CAN1_RX1_IRQHandler,
    /* 22 */ CAN1_SCE_IRQHandler,
    /* 23 */ EXTI9_5_IRQHandler,
    /* 24 */ TIM1_BRK_TIM9_IRQHandler,
    /* 25 */ TIM1_UP_TIM10_IRQHandler,
    /* 26 */ TIM1_TRG_COM_TIM11_IRQHandler,
    /* 27 */ TIM1_CC_IRQHandler,
    /* 28 */ TIM2_IRQHandler,
    /* 29 */ TIM3_IRQHandler,
    /* 30 */ TIM4_IRQHandler,
    /* 31 */ I2C1_EV_IRQHandler,
    /* 32 */ I2C1_ER_IRQHandler,
    /* 33 */ I2C2_EV_IRQHandler,
    /* 34 */ I2C2_ER_IRQHandler,
    /* 35 */ SPI1_IRQHandler,
    /* 36 */ SPI2_IRQHandler,
    /* 37 */ USART1_IRQHandler,
    /* 38 */ USART2_IRQHandler,
    /* 39 */ USART3_IRQHandler,
    /* 40 */ EXTI15_10_IRQHandler,
    /* 41 */ RTC_Alarm_IRQHandler,
    /* 42 */ OTG_FS_WKUP_IRQHandler,
    /* 43 */ TIM8_BRK_TIM12_IRQHandler,
    /* 44 */ TIM8_UP_TIM13_IRQHandler,
    /* 45 */ TIM8_TRG_COM_TIM14_IRQHandler,
    /* 46 */ TIM8_CC_IRQHandler,
    /* 47 */ DMA1_Stream7_IRQHandler,
    /* 48 */ FSMC_IRQHandler,
    /* 49 */ SDIO_IRQHandler,
    /* 50 */ TIM5_IRQHandler,
    /* 51 */ SPI3_IRQHandler,
    /* 52 */ UART4_IRQHandler,
    /* 53 */ UART5_IRQHandler,
    /* 54 */ TIM6_DAC_IRQHandler,
    /* 55 */ TIM7_IRQHandler,
    /* 56 */ DMA2_Stream0_IRQHandler,
    /* 57 */ DMA2_Stream1_IRQHandler,
    /* 58 */ DMA2_Stream2_IRQHandler,
    /* 59 */ DMA2_Stream3_IRQHandler,
    /* 60 */ DMA2_Stream4_IRQHandler,
    /* 61 */ ETH_IRQHandler,
    /* 62 */ ETH_WKUP_IRQHandler,
    /* 63 */ CAN2_TX_IRQHandler,
    /* 64 */ CAN2_RX0_IRQHandler,
    /* 65 */ CAN2_RX1_IRQHandler,
    /* 66 */ CAN2_SCE_IRQHandler,
    /* 67 */ OTG_FS_IRQHandler,
    /* 68 */ DMA2_Stream5_IRQHandler,
    /* 69 */ DMA2_Stream6_IRQHandler,
    /* 70 */ DMA2_Stream7_IRQHandler,
    /* 71 */ USART6_IRQHandler,
    /* 72 */ I2C3_EV_IRQHandler,
    /* 73 */ I2C3_ER_IRQHandler,
    /* 74 */ OTG_HS_EP1_OUT_IRQHandler,
    /* 75 */ OTG_HS_EP1_IN_IRQHandler,
    /* 76 */ OTG_HS_WKUP_IRQHandler,
    /* 77 */ OTG_HS_IRQHandler,
    /* 78 */ DCMI_IRQHandler,
    /* 79 */ CRYP_IRQHandler,
    /* 80 */ HASH_RNG_IRQHandler,
    /* 81 */ FPU_IRQHandler,
    /* 82 */ 0, /* reserved */
    /* 83 */ 0, /* reserved */
    /* 84 */ SPI4_IRQHandler,
    /* 85 */ 0, /* reserved */
    /* 86 */ 0, /* reserved */
    /* 87 */ SAI1_IRQHandler,
    /* 88 */ 0, /* reserved */
    /* 89 */ 0, /* reserved */
    /* 90 */ 0, /* reserved */
    /* 91 */ SAI2_IRQHandler,
    /* 92 */ QUADSPI_IRQHandler,
    /* 93 */ CEC_IRQHandler,
    /* 94 */ SPDIF_RX_IRQHandler,
    /* 95 */ FMPI2C1_EV_IRQHandler,
    /* 96 */ FMPI2C1_ER_IRQHandler,
};

_Static_assert(sizeof(fw_vectors) == (16 + FW_IRQ_COUNT) * 4, "vector table size");

void Reset_Handler(void)
{
    /* .data from flash, .bss to zero. */
    uint32_t *src = _sidata;
    for (uint32_t *dst = _sdata; dst < _edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = _sbss; dst < _ebss;) {
        *dst++ = 0;
    }
    /* FPU: full access to CP10/CP11 before any floating-point instruction. */
    SCB_CPACR |= (0xFu << 20);
    fw_dsb();
    fw_isb();
    SCB_VTOR = (uint32_t)(uintptr_t)fw_vectors;
    (void)main();
    for (;;) {
        fw_wfi();
    }
}

/* Any unexpected exception. In the emulator it ends QEMU with exit code
 * 0x80 + exception number so a test run fails instead of hanging; on real
 * hardware it spins and the watchdog resets the board (reason: IWDG). */
void Default_Handler(void)
{
#if FW_HAS_EMULATOR
    fw_semihost_write0("fatal: unexpected exception\n");
    fw_semihost_exit(0x80 + (int)(fw_ipsr() & 0x1FFu));
#endif
    for (;;) {
    }
}
