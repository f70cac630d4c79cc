/* nucleo_f446re silicon port: an sb_port_t that drives a real chip through
 * the interface in boards/nucleo_f446re/pins.md (row/column/layer address on
 * GPIO, pulse amplitude from an SPI DAC, pulse width from TIM1 in one-pulse
 * mode, post-neuron spikes on EXTI1 with a 32-bit latch read over SPI3, cell
 * read through ADC1, chip supply power from an INA226 on I2C1).
 *
 * Selected by the build: env nucleo_f446re_silicon (-D SB_SILICON); the
 * default nucleo_f446re env runs the virtual chip. Every register access goes
 * through SIL_RD/SIL_WR so that tests/test_silicon_port.py can compile this
 * file on the host against a register-level fake (-D SIL_HOST_FAKE). */
#ifndef FW_SILICON_H
#define FW_SILICON_H

#include <stdint.h>

#include "sb/params.h"
#include "sb/port.h"

#ifdef SIL_HOST_FAKE
uint32_t sil_rd(uint32_t addr);
void sil_wr(uint32_t addr, uint32_t v);
#define SIL_RD(a) sil_rd(a)
#define SIL_WR(a, v) sil_wr((a), (v))
#else
#define SIL_RD(a) (*(volatile uint32_t *)(uintptr_t)(a))
#define SIL_WR(a, v) (*(volatile uint32_t *)(uintptr_t)(a) = (v))
#endif

/* ---- STM32F446 registers used (RM0390) ---- */
#define SIL_RCC_AHB1ENR 0x40023830u
#define SIL_RCC_APB1ENR 0x40023840u
#define SIL_RCC_APB2ENR 0x40023844u

#define SIL_GPIOA 0x40020000u
#define SIL_GPIOB 0x40020400u
#define SIL_GPIOC 0x40020800u
#define SIL_GPIO_MODER 0x00u
#define SIL_GPIO_OSPEEDR 0x08u
#define SIL_GPIO_IDR 0x10u
#define SIL_GPIO_BSRR 0x18u
#define SIL_GPIO_AFRL 0x20u
#define SIL_GPIO_AFRH 0x24u

#define SIL_SPI2 0x40003800u          /* pulse amplitude DAC */
#define SIL_SPI3 0x40003C00u          /* spike latch (4x 74HC165) */
#define SIL_SPI_CR1 0x00u
#define SIL_SPI_SR 0x08u
#define SIL_SPI_DR 0x0Cu
#define SIL_SPI_SR_RXNE (1u << 0)
#define SIL_SPI_SR_TXE (1u << 1)
#define SIL_SPI_SR_BSY (1u << 7)

#define SIL_TIM1 0x40010000u          /* pulse width, one-pulse mode, CH1 on PA8 */
#define SIL_TIM_CR1 0x00u
#define SIL_TIM_SR 0x10u
#define SIL_TIM_EGR 0x14u
#define SIL_TIM_CCMR1 0x18u
#define SIL_TIM_CCER 0x20u
#define SIL_TIM_PSC 0x28u
#define SIL_TIM_ARR 0x2Cu
#define SIL_TIM_CCR1 0x34u
#define SIL_TIM_BDTR 0x44u
#define SIL_TIM_CR1_CEN (1u << 0)
#define SIL_TIM_CR1_OPM (1u << 3)

#define SIL_ADC1 0x40012000u          /* COL_SENSE = IN0 (PA0), VREF_SENSE = IN1 (PA1) */
#define SIL_ADC_SR 0x00u
#define SIL_ADC_CR2 0x08u
#define SIL_ADC_SMPR2 0x10u
#define SIL_ADC_SQR1 0x2Cu
#define SIL_ADC_SQR3 0x34u
#define SIL_ADC_DR 0x4Cu
#define SIL_ADC_SR_EOC (1u << 1)
#define SIL_ADC_CR2_ADON (1u << 0)
#define SIL_ADC_CR2_SWSTART (1u << 30)

#define SIL_I2C1 0x40005400u          /* INA226 power monitor */
#define SIL_I2C_CR1 0x00u
#define SIL_I2C_CR2 0x04u
#define SIL_I2C_DR 0x10u
#define SIL_I2C_SR1 0x14u
#define SIL_I2C_SR2 0x18u
#define SIL_I2C_CCR 0x1Cu
#define SIL_I2C_TRISE 0x20u
#define SIL_I2C_CR1_PE (1u << 0)
#define SIL_I2C_CR1_START (1u << 8)
#define SIL_I2C_CR1_STOP (1u << 9)
#define SIL_I2C_CR1_ACK (1u << 10)
#define SIL_I2C_SR1_SB (1u << 0)
#define SIL_I2C_SR1_ADDR (1u << 1)
#define SIL_I2C_SR1_BTF (1u << 2)
#define SIL_I2C_SR1_RXNE (1u << 6)
#define SIL_I2C_SR1_TXE (1u << 7)
#define SIL_I2C_SR1_AF (1u << 10)

#define SIL_SYSCFG_EXTICR1 0x40013808u
#define SIL_EXTI_IMR 0x40013C00u
#define SIL_EXTI_RTSR 0x40013C08u
#define SIL_EXTI_PR 0x40013C14u
#define SIL_NVIC_ISER0 0xE000E100u
#define SIL_NVIC_IPR_EXTI1 0xE000E404u   /* IPR1: byte 3 = IRQ 7 */
#define SIL_EXTI1_IRQN 7u

/* ---- pins (boards/nucleo_f446re/pins.md) ---- */
#define SIL_PIN_ROW0 0u               /* PC0..PC4 */
#define SIL_PIN_COL0 5u               /* PC5..PC9 */
#define SIL_ADDR_MASK 0x3FFu          /* PC0..PC9 */
#define SIL_PIN_LAYER0 11u            /* PA11, PA12 */
#define SIL_PIN_SPK_LOAD 15u          /* PA15, active low */
#define SIL_PIN_PULSE 8u              /* PA8 = TIM1_CH1, AF1 */
#define SIL_PIN_ROW_EN 0u             /* PB0 */
#define SIL_PIN_SPIKE_ANY 1u          /* PB1 = EXTI1 */
#define SIL_PIN_POL 4u                /* PB4 */
#define SIL_PIN_HALF_SEL 5u           /* PB5 */
#define SIL_PIN_CHIP_RST_N 6u         /* PB6 */
#define SIL_PIN_DAC_CS 12u            /* PB12 */
#define SIL_PIN_DAC_LDAC 14u          /* PB14 */

/* ---- board constants (the analogue front end; documented in docs/firmware.md) ---- */
#define SIL_TIM_HZ 180000000u         /* TIM1 kernel clock (APB2 x2) */
#define SIL_DAC_FULL_MV 2500u         /* DAC8552 reference: code 65535 = 2.5 V */
#define SIL_DAC_CMD_A 0x10u           /* DAC8552 control byte: write and load channel A */
#define SIL_READ_MV_DIV 5u            /* read amplitude = operating voltage / 5 (non-disturbing) */
#define SIL_ADC_FULL 4095u            /* 12-bit ADC */
#define SIL_ADC_HEADROOM_PCT 80u      /* TIA gain: g_max reads at 80 % of full scale */
#define SIL_INA226_ADDR 0x40u         /* 7-bit */
#define SIL_INA226_CONFIG 0x4207u     /* AVG 4, 140 us conversions, shunt+bus continuous */
#define SIL_INA226_CAL 51200u         /* 0.00512 / (1 uA x 0.1 ohm): current LSB 1 uA */
#define SIL_INA226_POWER_LSB_PW 25000000u   /* power LSB = 25 x current LSB = 25 uW, in pW */
#define SIL_PM_PERIOD_US 1120u      /* INA226 conversion: AVG 4 x (140 + 140) us */
#define SIL_SPIN 100000u              /* bound of every busy wait */

/* The port, configured by sb_dev_configure through it. */
sb_port_t *fw_silicon_port(void);
/* Set the bus clocks, pins and peripherals up (called once at boot). */
void fw_silicon_init(void);
/* Chip supply energy measured since the last call, attojoules (INA226
 * power integrated over time, trapezoid rule, sampled at each op batch). */
uint64_t fw_silicon_energy_aj(void);
/* The EXTI1 handler (SPIKE_ANY): reads the spike latch, pushes the event. */
void EXTI1_IRQHandler(void);

/* Internal state, visible for the host test. */
typedef struct {
    uint8_t configured;
    uint8_t rows, cols, layers;
    uint8_t cur_layer;                /* layer being driven (events are attributed to it) */
    uint8_t layer_lines;              /* value on LAYER_A0..1, 0xFF: unknown */
    uint8_t pm_ok;                    /* INA226 answered at init */
    uint16_t dac_prog, dac_read, dac_last;
    uint16_t arr_prog, arr_read, arr_last;
    uint32_t adc_to_g_q8;             /* conductance code per ADC count, Q8 */
    volatile uint32_t fired_acc;      /* fires latched by EXTI1 since the last SAMPLE */
    uint32_t fired[SB_MAX_LAYERS];
    uint32_t step[SB_MAX_LAYERS];
    uint32_t pm_last_us;
    uint16_t pm_last_raw;
    uint64_t energy_aj;
    uint32_t hw_timeouts;             /* busy waits that hit SIL_SPIN */
} fw_silicon_t;
extern fw_silicon_t fw_silicon;

#endif
