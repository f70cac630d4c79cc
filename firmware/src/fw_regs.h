/* Minimal STM32F4 / Cortex-M4 register map: only what the firmware touches.
 * No CMSIS: the Debian toolchain ships none, and the firmware needs little. */
#ifndef FW_REGS_H
#define FW_REGS_H

#include <stdint.h>

#define FW_REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* --- System control block, SysTick, NVIC (Cortex-M4) --- */
#define SCB_ICSR     FW_REG(0xE000ED04u)
#define SCB_VTOR     FW_REG(0xE000ED08u)
#define SCB_AIRCR    FW_REG(0xE000ED0Cu)
#define SCB_SHPR3    FW_REG(0xE000ED20u)
#define SCB_CPACR    FW_REG(0xE000ED88u)
#define SCB_ICSR_PENDSTSET (1u << 26)
#define SCB_AIRCR_RESET    0x05FA0004u          /* VECTKEY | SYSRESETREQ */

#define SYST_CSR     FW_REG(0xE000E010u)
#define SYST_RVR     FW_REG(0xE000E014u)
#define SYST_CVR     FW_REG(0xE000E018u)
#define SYST_CSR_ENABLE    (1u << 0)
#define SYST_CSR_TICKINT   (1u << 1)
#define SYST_CSR_CLKSOURCE (1u << 2)            /* 1 = core clock */

#define NVIC_ISER(n) FW_REG(0xE000E100u + 4u * (n))
#define NVIC_ICER(n) FW_REG(0xE000E180u + 4u * (n))
#define NVIC_ISPR(n) FW_REG(0xE000E200u + 4u * (n))
#define NVIC_ICPR(n) FW_REG(0xE000E280u + 4u * (n))
#define NVIC_IPR8(n) (*(volatile uint8_t *)(uintptr_t)(0xE000E400u + (n)))
#define FW_NVIC_PRIO_BITS 4u                   /* STM32F4: 16 levels */

#define DBGMCU_APB1_FZ FW_REG(0xE0042008u)     /* not mapped in QEMU: real hw only */
#define DBGMCU_APB1_FZ_IWDG (1u << 12)

/* --- RCC, PWR, FLASH --- */
#define RCC_BASE      0x40023800u
#define RCC_CR        FW_REG(RCC_BASE + 0x00u)
#define RCC_PLLCFGR   FW_REG(RCC_BASE + 0x04u)
#define RCC_CFGR      FW_REG(RCC_BASE + 0x08u)
#define RCC_AHB1ENR   FW_REG(RCC_BASE + 0x30u)
#define RCC_APB1ENR   FW_REG(RCC_BASE + 0x40u)
#define RCC_APB2ENR   FW_REG(RCC_BASE + 0x44u)
#define RCC_CSR       FW_REG(RCC_BASE + 0x74u)
#define RCC_CR_HSION     (1u << 0)
#define RCC_CR_HSIRDY    (1u << 1)
#define RCC_CR_PLLON     (1u << 24)
#define RCC_CR_PLLRDY    (1u << 25)
#define RCC_CSR_LSION    (1u << 0)
#define RCC_CSR_RMVF     (1u << 24)
#define RCC_CSR_BORRSTF  (1u << 25)
#define RCC_CSR_PINRSTF  (1u << 26)
#define RCC_CSR_PORRSTF  (1u << 27)
#define RCC_CSR_SFTRSTF  (1u << 28)
#define RCC_CSR_IWDGRSTF (1u << 29)
#define RCC_CSR_WWDGRSTF (1u << 30)
#define RCC_CSR_LPWRRSTF (1u << 31)

#define PWR_CR        FW_REG(0x40007000u)
#define PWR_CSR       FW_REG(0x40007004u)
#define FLASH_ACR     FW_REG(0x40023C00u)

/* --- GPIO --- */
#define GPIOA_BASE    0x40020000u
#define GPIO_MODER(b)   FW_REG((b) + 0x00u)
#define GPIO_OSPEEDR(b) FW_REG((b) + 0x08u)
#define GPIO_PUPDR(b)   FW_REG((b) + 0x0Cu)
#define GPIO_AFRL(b)    FW_REG((b) + 0x20u)
#define GPIO_AFRH(b)    FW_REG((b) + 0x24u)

/* --- USART (F2/F4 layout, as modelled by QEMU's stm32f2xx-usart) --- */
#define USART_SR(b)   FW_REG((b) + 0x00u)
#define USART_DR(b)   FW_REG((b) + 0x04u)
#define USART_BRR(b)  FW_REG((b) + 0x08u)
#define USART_CR1(b)  FW_REG((b) + 0x0Cu)
#define USART_CR2(b)  FW_REG((b) + 0x10u)
#define USART_CR3(b)  FW_REG((b) + 0x14u)
#define USART_SR_ORE    (1u << 3)
#define USART_SR_RXNE   (1u << 5)
#define USART_SR_TC     (1u << 6)
#define USART_SR_TXE    (1u << 7)
#define USART_CR1_RE     (1u << 2)
#define USART_CR1_TE     (1u << 3)
#define USART_CR1_RXNEIE (1u << 5)
#define USART_CR1_TXEIE  (1u << 7)
#define USART_CR1_UE     (1u << 13)

/* --- IWDG --- */
#define IWDG_KR       FW_REG(0x40003000u)
#define IWDG_PR       FW_REG(0x40003004u)
#define IWDG_RLR      FW_REG(0x40003008u)
#define IWDG_SR       FW_REG(0x4000300Cu)

/* --- core intrinsics --- */
static inline void fw_irq_disable(void) { __asm volatile("cpsid i" ::: "memory"); }
static inline void fw_irq_enable(void) { __asm volatile("cpsie i" ::: "memory"); }
static inline uint32_t fw_primask(void)
{
    uint32_t r;
    __asm volatile("mrs %0, primask" : "=r"(r));
    return r;
}
static inline void fw_primask_set(uint32_t m) { __asm volatile("msr primask, %0" ::"r"(m) : "memory"); }
static inline uint32_t fw_ipsr(void)
{
    uint32_t r;
    __asm volatile("mrs %0, ipsr" : "=r"(r));
    return r;
}
/* Save PRIMASK and disable interrupts; restore with fw_irq_restore(). */
static inline uint32_t fw_irq_save(void)
{
    uint32_t m = fw_primask();
    fw_irq_disable();
    return m;
}
static inline void fw_irq_restore(uint32_t m) { fw_primask_set(m); }
static inline void fw_dmb(void) { __asm volatile("dmb" ::: "memory"); }
static inline void fw_dsb(void) { __asm volatile("dsb" ::: "memory"); }
static inline void fw_isb(void) { __asm volatile("isb" ::: "memory"); }
static inline void fw_wfi(void) { __asm volatile("wfi" ::: "memory"); }

static inline void fw_nvic_enable(unsigned irq) { NVIC_ISER(irq >> 5) = 1u << (irq & 31u); }
static inline void fw_nvic_disable(unsigned irq) { NVIC_ICER(irq >> 5) = 1u << (irq & 31u); }
static inline void fw_nvic_pend(unsigned irq) { NVIC_ISPR(irq >> 5) = 1u << (irq & 31u); }
/* prio 0 (highest) .. 15 (lowest) */
static inline void fw_nvic_prio(unsigned irq, unsigned prio)
{
    NVIC_IPR8(irq) = (uint8_t)(prio << (8u - FW_NVIC_PRIO_BITS));
}

#endif
