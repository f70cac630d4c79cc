/* nucleo_f446re silicon port: see silicon.h for the interface and
 * boards/nucleo_f446re/pins.md for the pins. Built only with -D SB_SILICON
 * (env nucleo_f446re_silicon) or on the host with -D SIL_HOST_FAKE.
 *
 * Pulses are a precomputed program: configure turns the card's timing and
 * operating voltage into DAC codes and timer reloads once; an op then costs
 * one BSRR write for the whole row/column address, one for the layer, one
 * for polarity and half-select, and a timer start per pulse. The DAC and the
 * timer are rewritten only when the amplitude or the width changes. */
#if defined(SB_SILICON) || defined(SIL_HOST_FAKE)

#include "silicon.h"

#include <string.h>

#include "events.h"
#include "sb/errors.h"
#include "sb/params.h"
#include "systick.h"

#ifdef SIL_HOST_FAKE
static inline uint32_t sil_irq_save(void) { return 0; }
static inline void sil_irq_restore(uint32_t m) { (void)m; }
#else
#include "fw_regs.h"
#define sil_irq_save fw_irq_save
#define sil_irq_restore fw_irq_restore
#endif

fw_silicon_t fw_silicon;
static sb_port_t s_port;
#define S fw_silicon

#define BIT(n) (1u << (n))
#define BSRR_SET(n) BIT(n)
#define BSRR_RESET(n) BIT((n) + 16u)

/* Spin until (reg & mask) == want; counts a timeout instead of hanging. */
static int sil_wait(uint32_t reg, uint32_t mask, uint32_t want)
{
    for (uint32_t i = 0; i < SIL_SPIN; i++) {
        if ((SIL_RD(reg) & mask) == want) {
            return 1;
        }
    }
    S.hw_timeouts++;
    return 0;
}

/* ---------------- pulse amplitude: DAC8552 on SPI2 ---------------- */
static void sil_dac_write(uint16_t code)
{
    SIL_WR(SIL_GPIOB + SIL_GPIO_BSRR, BSRR_RESET(SIL_PIN_DAC_CS));
    const uint8_t bytes[3] = {SIL_DAC_CMD_A, (uint8_t)(code >> 8), (uint8_t)code};
    for (int k = 0; k < 3; k++) {
        sil_wait(SIL_SPI2 + SIL_SPI_SR, SIL_SPI_SR_TXE, SIL_SPI_SR_TXE);
        SIL_WR(SIL_SPI2 + SIL_SPI_DR, bytes[k]);
    }
    sil_wait(SIL_SPI2 + SIL_SPI_SR, SIL_SPI_SR_TXE | SIL_SPI_SR_BSY, SIL_SPI_SR_TXE);
    SIL_WR(SIL_GPIOB + SIL_GPIO_BSRR, BSRR_SET(SIL_PIN_DAC_CS));
    /* LDAC pulse: the new amplitude appears on the pulse driver */
    SIL_WR(SIL_GPIOB + SIL_GPIO_BSRR, BSRR_RESET(SIL_PIN_DAC_LDAC));
    SIL_WR(SIL_GPIOB + SIL_GPIO_BSRR, BSRR_SET(SIL_PIN_DAC_LDAC));
    S.dac_last = code;
}

static inline void sil_amplitude(uint16_t code)
{
    if (code != S.dac_last) {
        sil_dac_write(code);
    }
}

/* ---------------- pulse width: TIM1 one-pulse on CH1 (PA8) ---------------- */
static inline void sil_width(uint16_t arr)
{
    if (arr != S.arr_last) {
        SIL_WR(SIL_TIM1 + SIL_TIM_ARR, arr);
        SIL_WR(SIL_TIM1 + SIL_TIM_CCR1, 1u);    /* PWM2: output high from 1 to ARR */
        SIL_WR(SIL_TIM1 + SIL_TIM_EGR, 1u);     /* UG: load the shadow registers */
        S.arr_last = arr;
    }
}

/* One pulse: start the timer, wait until one-pulse mode stops it. */
static inline int sil_fire(void)
{
    SIL_WR(SIL_TIM1 + SIL_TIM_CR1, SIL_TIM_CR1_OPM | SIL_TIM_CR1_CEN);
    return sil_wait(SIL_TIM1 + SIL_TIM_CR1, SIL_TIM_CR1_CEN, 0);
}

/* ---------------- addressing ---------------- */
static inline void sil_address(uint8_t layer, uint8_t row, uint8_t col)
{
    uint32_t a = ((uint32_t)row << SIL_PIN_ROW0) | ((uint32_t)col << SIL_PIN_COL0);
    SIL_WR(SIL_GPIOC + SIL_GPIO_BSRR, a | ((~a & SIL_ADDR_MASK) << 16));
    if (layer != S.layer_lines) {
        uint32_t l = (uint32_t)layer << SIL_PIN_LAYER0;
        SIL_WR(SIL_GPIOA + SIL_GPIO_BSRR, l | ((~l & (3u << SIL_PIN_LAYER0)) << 16));
        S.layer_lines = layer;
    }
    S.cur_layer = layer;
}

/* ---------------- power monitor: INA226 on I2C1 ---------------- */
static int sil_i2c_start(uint8_t addr_rw)
{
    SIL_WR(SIL_I2C1 + SIL_I2C_CR1, SIL_I2C_CR1_PE | SIL_I2C_CR1_ACK | SIL_I2C_CR1_START);
    if (!sil_wait(SIL_I2C1 + SIL_I2C_SR1, SIL_I2C_SR1_SB, SIL_I2C_SR1_SB)) {
        return 0;
    }
    SIL_WR(SIL_I2C1 + SIL_I2C_DR, addr_rw);
    if (!sil_wait(SIL_I2C1 + SIL_I2C_SR1, SIL_I2C_SR1_ADDR, SIL_I2C_SR1_ADDR)) {
        return 0;
    }
    (void)SIL_RD(SIL_I2C1 + SIL_I2C_SR2);       /* SR1 then SR2 read clears ADDR */
    return 1;
}

static void sil_i2c_stop(void)
{
    SIL_WR(SIL_I2C1 + SIL_I2C_CR1, SIL_I2C_CR1_PE | SIL_I2C_CR1_STOP);
}

static int sil_ina_write(uint8_t reg, uint16_t v)
{
    int ok = sil_i2c_start((uint8_t)(SIL_INA226_ADDR << 1));
    const uint8_t b[3] = {reg, (uint8_t)(v >> 8), (uint8_t)v};
    for (int k = 0; ok && k < 3; k++) {
        SIL_WR(SIL_I2C1 + SIL_I2C_DR, b[k]);
        ok = sil_wait(SIL_I2C1 + SIL_I2C_SR1, SIL_I2C_SR1_TXE, SIL_I2C_SR1_TXE);
    }
    ok = ok && sil_wait(SIL_I2C1 + SIL_I2C_SR1, SIL_I2C_SR1_BTF, SIL_I2C_SR1_BTF);
    sil_i2c_stop();
    return ok;
}

static int sil_ina_read(uint8_t reg, uint16_t *v)
{
    int ok = sil_i2c_start((uint8_t)(SIL_INA226_ADDR << 1));
    if (ok) {
        SIL_WR(SIL_I2C1 + SIL_I2C_DR, reg);
        ok = sil_wait(SIL_I2C1 + SIL_I2C_SR1, SIL_I2C_SR1_BTF, SIL_I2C_SR1_BTF);
    }
    ok = ok && sil_i2c_start((uint8_t)((SIL_INA226_ADDR << 1) | 1u));
    uint8_t hi = 0, lo = 0;
    if (ok) {
        ok = sil_wait(SIL_I2C1 + SIL_I2C_SR1, SIL_I2C_SR1_RXNE, SIL_I2C_SR1_RXNE);
        hi = (uint8_t)SIL_RD(SIL_I2C1 + SIL_I2C_DR);
        SIL_WR(SIL_I2C1 + SIL_I2C_CR1, SIL_I2C_CR1_PE | SIL_I2C_CR1_STOP);   /* NACK the last byte */
        ok = ok && sil_wait(SIL_I2C1 + SIL_I2C_SR1, SIL_I2C_SR1_RXNE, SIL_I2C_SR1_RXNE);
        lo = (uint8_t)SIL_RD(SIL_I2C1 + SIL_I2C_DR);
    } else {
        sil_i2c_stop();
    }
    *v = (uint16_t)((hi << 8) | lo);
    return ok;
}

/* Energy from two power samples p0, p1 (INA226 power register, LSB
 * SIL_INA226_POWER_LSB_PW) dt_us apart: trapezoid, attojoules
 * (1 pW x 1 us = 1 aJ). */
uint64_t fw_silicon_energy_from_samples(uint16_t p0, uint16_t p1, uint32_t dt_us);
uint64_t fw_silicon_energy_from_samples(uint16_t p0, uint16_t p1, uint32_t dt_us)
{
    return ((uint64_t)p0 + p1) * (SIL_INA226_POWER_LSB_PW / 2u) * dt_us;
}

/* Take a power sample and add the energy since the previous one. Between
 * op batches only once per INA226 conversion period (a read costs ~100 us of
 * I2C); force: at the end of a command window. */
static void sil_pm_sample(int force)
{
    if (!S.pm_ok || (!force && fw_now_us() - S.pm_last_us < SIL_PM_PERIOD_US)) {
        return;
    }
    uint16_t raw;
    if (!sil_ina_read(0x03, &raw)) {        /* POWER */
        return;
    }
    uint32_t now = fw_now_us();
    S.energy_aj += fw_silicon_energy_from_samples(S.pm_last_raw, raw, now - S.pm_last_us);
    S.pm_last_raw = raw;
    S.pm_last_us = now;
}

uint64_t fw_silicon_energy_aj(void)
{
    sil_pm_sample(1);                       /* close the window at its end */
    uint64_t e = S.energy_aj;
    S.energy_aj = 0;
    return e;
}

static uint64_t sil_energy(void *ctx)
{
    (void)ctx;
    return fw_silicon_energy_aj();
}

/* ---------------- post-neuron spikes: EXTI1 + spike latch on SPI3 ---------------- */
static uint32_t sil_spike_latch(void)
{
    SIL_WR(SIL_GPIOA + SIL_GPIO_BSRR, BSRR_RESET(SIL_PIN_SPK_LOAD));   /* parallel load */
    SIL_WR(SIL_GPIOA + SIL_GPIO_BSRR, BSRR_SET(SIL_PIN_SPK_LOAD));
    uint32_t m = 0;
    for (uint32_t k = 0; k < 4u; k++) {
        SIL_WR(SIL_SPI3 + SIL_SPI_DR, 0u);                     /* clock 8 bits in */
        sil_wait(SIL_SPI3 + SIL_SPI_SR, SIL_SPI_SR_RXNE, SIL_SPI_SR_RXNE);
        m |= (SIL_RD(SIL_SPI3 + SIL_SPI_DR) & 0xFFu) << (8u * k);
    }
    return m;
}

/* SPIKE_ANY rose: timestamping and ringing are fw_events_latch's job (it
 * pends the event IRQ, whose handler stamps and pushes); here only the latch
 * is read and attributed to the layer being driven. */
void EXTI1_IRQHandler(void)
{
    if (!(SIL_RD(SIL_EXTI_PR) & BIT(SIL_PIN_SPIKE_ANY))) {
        return;
    }
    SIL_WR(SIL_EXTI_PR, BIT(SIL_PIN_SPIKE_ANY));       /* write 1 to clear */
    uint32_t m = sil_spike_latch();
    if (m) {
        S.fired_acc |= m;
        fw_events_latch(S.cur_layer, S.step[S.cur_layer], m);
    }
}

/* ---------------- the port ---------------- */
static int sil_program(const sb_op_t *op)
{
    sil_address(op->layer, op->row, op->col);
    SIL_WR(SIL_GPIOB + SIL_GPIO_BSRR, (op->polarity > 0 ? BSRR_SET(SIL_PIN_POL) : BSRR_RESET(SIL_PIN_POL)) |
                                          BSRR_SET(SIL_PIN_HALF_SEL));
    sil_amplitude(S.dac_prog);
    sil_width(S.arr_prog);
    int ok = 1;
    for (uint16_t k = 0; k < op->count && ok; k++) {
        ok = sil_fire();
    }
    SIL_WR(SIL_GPIOB + SIL_GPIO_BSRR, BSRR_RESET(SIL_PIN_HALF_SEL));
    return ok ? SB_OK : SB_ESTATE;
}

static int sil_row_pulse(uint8_t layer, uint8_t row, uint8_t level)
{
    sil_address(layer, row, 0);
    sil_amplitude(S.dac_read);
    sil_width((uint16_t)(S.arr_read * level));
    SIL_WR(SIL_GPIOB + SIL_GPIO_BSRR, BSRR_SET(SIL_PIN_ROW_EN));
    int ok = sil_fire();
    SIL_WR(SIL_GPIOB + SIL_GPIO_BSRR, BSRR_RESET(SIL_PIN_ROW_EN));
    return ok ? SB_OK : SB_ESTATE;
}

static int sil_exec(void *ctx, const sb_op_t *ops, size_t n)
{
    (void)ctx;
    if (!S.configured) {
        return SB_ECONFIG;
    }
    int rc = SB_OK;
    for (size_t k = 0; k < n && rc == SB_OK; k++) {
        const sb_op_t *op = &ops[k];
        if (op->layer >= S.layers) {
            return SB_ERANGE;
        }
        switch (op->kind) {
        case SB_OP_PROGRAM:
            if (op->row >= S.rows || op->col >= S.cols) {
                return SB_ERANGE;
            }
            if (op->polarity != 1 && op->polarity != -1) {
                return SB_EINVAL;
            }
            rc = sil_program(op);
            break;
        case SB_OP_HOLD:
            /* count pulse periods with the output gate off */
            SIL_WR(SIL_TIM1 + SIL_TIM_CCER, 0u);
            sil_width(S.arr_prog);
            for (uint16_t i = 0; i < op->count && rc == SB_OK; i++) {
                rc = sil_fire() ? SB_OK : SB_ESTATE;
            }
            SIL_WR(SIL_TIM1 + SIL_TIM_CCER, 1u);
            break;
        case SB_OP_ROW_READ:
            if (op->row >= S.rows || op->level == 0) {
                return op->row >= S.rows ? SB_ERANGE : SB_EINVAL;
            }
            rc = sil_row_pulse(op->layer, op->row, op->level);
            break;
        case SB_OP_READ_ROWS:
            /* one row driver: the rows of the spike vector go one after the
             * other; the post-neurons integrate their charge */
            if (S.rows < 32u && (op->mask >> S.rows)) {
                return SB_ERANGE;
            }
            for (uint32_t m = op->mask; m && rc == SB_OK; m &= m - 1u) {
                rc = sil_row_pulse(op->layer, (uint8_t)__builtin_ctz(m), 1u);
            }
            break;
        case SB_OP_SAMPLE: {
            /* the window closes: what EXTI1 latched since the last sample */
            uint32_t msk = sil_irq_save();
            S.fired[op->layer] = S.fired_acc;
            S.fired_acc = 0;
            sil_irq_restore(msk);
            S.step[op->layer]++;
            break;
        }
        case SB_OP_NEURON_RESET:
            /* CHIP_RST_N resets membranes and refractory state (the
             * synapses are non-volatile and keep their conductance) */
            SIL_WR(SIL_GPIOB + SIL_GPIO_BSRR, BSRR_RESET(SIL_PIN_CHIP_RST_N));
            SIL_WR(SIL_GPIOB + SIL_GPIO_BSRR, BSRR_SET(SIL_PIN_CHIP_RST_N));
            S.fired[op->layer] = 0;
            break;
        default:
            return SB_EINVAL;
        }
    }
    sil_pm_sample(0);
    return rc;
}

static uint32_t sil_fired(void *ctx, uint8_t layer)
{
    (void)ctx;
    return layer < SB_MAX_LAYERS ? S.fired[layer] : 0u;
}

static uint16_t sil_adc(uint32_t channel)
{
    SIL_WR(SIL_ADC1 + SIL_ADC_SQR3, channel);
    SIL_WR(SIL_ADC1 + SIL_ADC_CR2, SIL_ADC_CR2_ADON | SIL_ADC_CR2_SWSTART);
    sil_wait(SIL_ADC1 + SIL_ADC_SR, SIL_ADC_SR_EOC, SIL_ADC_SR_EOC);
    return (uint16_t)(SIL_RD(SIL_ADC1 + SIL_ADC_DR) & 0xFFFu);     /* DR read clears EOC */
}

/* Read one cell: read amplitude on its row, its column on the sense mux,
 * the column current (TIA) and the TIA reference through the ADC during
 * the read pulse. */
static int sil_read_cell(void *ctx, uint8_t l, uint8_t r, uint8_t c, uint16_t *g)
{
    (void)ctx;
    if (!S.configured) {
        return SB_ECONFIG;
    }
    if (l >= S.layers || r >= S.rows || c >= S.cols) {
        return SB_ERANGE;
    }
    sil_address(l, r, c);
    sil_amplitude(S.dac_read);
    SIL_WR(SIL_GPIOB + SIL_GPIO_BSRR, BSRR_SET(SIL_PIN_ROW_EN));
    uint16_t col = sil_adc(0u);
    uint16_t ref = sil_adc(1u);
    SIL_WR(SIL_GPIOB + SIL_GPIO_BSRR, BSRR_RESET(SIL_PIN_ROW_EN));
    int32_t counts = (int32_t)col - (int32_t)ref;
    uint32_t v = counts > 0 ? ((uint32_t)counts * S.adc_to_g_q8) >> 8 : 0u;
    *g = (uint16_t)(v > 65535u ? 65535u : v);
    return SB_OK;
}

static int sil_neurons(void *ctx, uint8_t layer, int32_t *v, uint8_t *refrac)
{
    (void)ctx;
    (void)layer;
    (void)v;
    (void)refrac;
    return SB_ECMD;     /* membranes are not observable on this chip */
}

static int sil_age(void *ctx, uint32_t seconds)
{
    (void)ctx;
    (void)seconds;
    return SB_ECMD;     /* real synapses age in real time only */
}

static uint16_t sil_ticks(uint32_t ps)
{
    uint64_t t = ((uint64_t)ps * (SIL_TIM_HZ / 1000000u) + 999999u) / 1000000u;
    return (uint16_t)(t < 2u ? 2u : t > 65535u ? 65535u : t);
}

static uint16_t sil_dac_code(uint32_t mv)
{
    uint32_t c = mv * 65535u / SIL_DAC_FULL_MV;
    return (uint16_t)(c > 65535u ? 65535u : c);
}

/* Precompute the pulse program: amplitudes and widths from the card. */
static int sil_configure(void *ctx, const sb_params_t *p)
{
    (void)ctx;
    int rc = sb_params_check(p, NULL);
    if (rc) {
        return rc;
    }
    S.rows = p->rows;
    S.cols = p->cols;
    S.layers = p->layers;
    uint32_t v_op_mv = (uint32_t)p->v_op_mv_div10 * 10u;
    S.dac_prog = sil_dac_code(v_op_mv);
    S.dac_read = sil_dac_code(v_op_mv / SIL_READ_MV_DIV);
    S.arr_prog = sil_ticks(p->t_prog_ps);
    S.arr_read = sil_ticks(p->t_read_ps);
    uint32_t g_full = (uint32_t)p->g_max * 100u / SIL_ADC_HEADROOM_PCT;
    S.adc_to_g_q8 = (g_full << 8) / SIL_ADC_FULL;
    S.dac_last = 0xFFFFu;       /* force the first writes */
    S.arr_last = 0;
    memset(S.fired, 0, sizeof S.fired);
    memset(S.step, 0, sizeof S.step);
    S.fired_acc = 0;
    S.cur_layer = 0;
    S.layer_lines = 0xFF;       /* force the first layer write */
    S.configured = 1;
    sil_dac_write(0);           /* amplitude 0 while idle */
    return SB_OK;
}

static void sil_gpio_out(uint32_t port, uint32_t pins)
{
    uint32_t moder = SIL_RD(port + SIL_GPIO_MODER);
    for (uint32_t k = 0; k < 16u; k++) {
        if (pins & BIT(k)) {
            moder = (moder & ~(3u << (2u * k))) | (1u << (2u * k));
        }
    }
    SIL_WR(port + SIL_GPIO_MODER, moder);
}

static void sil_gpio_af(uint32_t port, uint32_t pin, uint32_t af)
{
    uint32_t moder = SIL_RD(port + SIL_GPIO_MODER);
    SIL_WR(port + SIL_GPIO_MODER, (moder & ~(3u << (2u * pin))) | (2u << (2u * pin)));
    uint32_t reg = port + (pin < 8u ? SIL_GPIO_AFRL : SIL_GPIO_AFRH);
    uint32_t sh = 4u * (pin & 7u);
    SIL_WR(reg, (SIL_RD(reg) & ~(0xFu << sh)) | (af << sh));
}

void fw_silicon_init(void)
{
    memset(&S, 0, sizeof S);
    SIL_WR(SIL_RCC_AHB1ENR, SIL_RD(SIL_RCC_AHB1ENR) | 0x7u);                     /* GPIOA..C */
    SIL_WR(SIL_RCC_APB1ENR, SIL_RD(SIL_RCC_APB1ENR) | BIT(14) | BIT(15) | BIT(21)); /* SPI2, SPI3, I2C1 */
    SIL_WR(SIL_RCC_APB2ENR, SIL_RD(SIL_RCC_APB2ENR) | BIT(0) | BIT(8) | BIT(14));  /* TIM1, ADC1, SYSCFG */
    (void)SIL_RD(SIL_RCC_APB2ENR);
    /* outputs: idle levels first (CS, LDAC, SPK_LOAD, CHIP_RST_N high) */
    SIL_WR(SIL_GPIOB + SIL_GPIO_BSRR, BSRR_SET(SIL_PIN_DAC_CS) | BSRR_SET(SIL_PIN_DAC_LDAC) |
                                          BSRR_SET(SIL_PIN_CHIP_RST_N));
    SIL_WR(SIL_GPIOA + SIL_GPIO_BSRR, BSRR_SET(SIL_PIN_SPK_LOAD));
    sil_gpio_out(SIL_GPIOC, SIL_ADDR_MASK);
    sil_gpio_out(SIL_GPIOA, BIT(11) | BIT(12) | BIT(SIL_PIN_SPK_LOAD));
    sil_gpio_out(SIL_GPIOB, BIT(SIL_PIN_ROW_EN) | BIT(SIL_PIN_POL) | BIT(SIL_PIN_HALF_SEL) |
                                BIT(SIL_PIN_CHIP_RST_N) | BIT(SIL_PIN_DAC_CS) | BIT(SIL_PIN_DAC_LDAC));
    SIL_WR(SIL_GPIOC + SIL_GPIO_OSPEEDR, SIL_RD(SIL_GPIOC + SIL_GPIO_OSPEEDR) | 0xFFFFFu);   /* fast address bus */
    sil_gpio_af(SIL_GPIOA, SIL_PIN_PULSE, 1u);     /* TIM1_CH1 */
    sil_gpio_af(SIL_GPIOB, 13u, 5u);               /* SPI2_SCK */
    sil_gpio_af(SIL_GPIOB, 15u, 5u);               /* SPI2_MOSI */
    sil_gpio_af(SIL_GPIOC, 10u, 6u);               /* SPI3_SCK */
    sil_gpio_af(SIL_GPIOC, 11u, 6u);               /* SPI3_MISO */
    sil_gpio_af(SIL_GPIOB, 8u, 4u);                /* I2C1_SCL (open drain set below) */
    sil_gpio_af(SIL_GPIOB, 9u, 4u);                /* I2C1_SDA */
    SIL_WR(SIL_GPIOB + 0x04u, SIL_RD(SIL_GPIOB + 0x04u) | BIT(8) | BIT(9));   /* OTYPER */
    SIL_WR(SIL_GPIOA + SIL_GPIO_MODER, SIL_RD(SIL_GPIOA + SIL_GPIO_MODER) | 0xFu);  /* PA0, PA1 analog */
    /* SPI2: master, CPOL 0 CPHA 1 (DAC8552), /4 = 11.25 MHz, 8 bit, soft NSS */
    SIL_WR(SIL_SPI2 + SIL_SPI_CR1, BIT(0) | BIT(2) | (1u << 3) | BIT(8) | BIT(9) | BIT(6));
    /* SPI3: master, CPOL 0 CPHA 0 (74HC165), /8, 8 bit */
    SIL_WR(SIL_SPI3 + SIL_SPI_CR1, BIT(2) | (2u << 3) | BIT(8) | BIT(9) | BIT(6));
    /* TIM1: PWM mode 2 on CH1, one-pulse, main output enabled */
    SIL_WR(SIL_TIM1 + SIL_TIM_PSC, 0u);
    SIL_WR(SIL_TIM1 + SIL_TIM_CCMR1, (7u << 4) | BIT(3));   /* OC1M = PWM2, OC1PE */
    SIL_WR(SIL_TIM1 + SIL_TIM_CCER, 1u);                    /* CC1E */
    SIL_WR(SIL_TIM1 + SIL_TIM_BDTR, BIT(15));               /* MOE */
    /* ADC1: 12 bit, single conversion, 15-cycle sampling on IN0/IN1 */
    SIL_WR(SIL_ADC1 + SIL_ADC_SMPR2, (1u << 0) | (1u << 3));
    SIL_WR(SIL_ADC1 + SIL_ADC_SQR1, 0u);
    SIL_WR(SIL_ADC1 + SIL_ADC_CR2, SIL_ADC_CR2_ADON);
    /* SPIKE_ANY: PB1 rising edge on EXTI1 */
    SIL_WR(SIL_SYSCFG_EXTICR1, (SIL_RD(SIL_SYSCFG_EXTICR1) & ~(0xFu << 4)) | (1u << 4));
    SIL_WR(SIL_EXTI_RTSR, SIL_RD(SIL_EXTI_RTSR) | BIT(SIL_PIN_SPIKE_ANY));
    SIL_WR(SIL_EXTI_IMR, SIL_RD(SIL_EXTI_IMR) | BIT(SIL_PIN_SPIKE_ANY));
    SIL_WR(SIL_NVIC_IPR_EXTI1, (SIL_RD(SIL_NVIC_IPR_EXTI1) & 0x00FFFFFFu) | (0x10u << 24));  /* prio 1 */
    SIL_WR(SIL_NVIC_ISER0, BIT(SIL_EXTI1_IRQN));
    /* I2C1: APB1 45 MHz, 400 kHz fast mode, then the INA226 */
    SIL_WR(SIL_I2C1 + SIL_I2C_CR2, 45u);
    SIL_WR(SIL_I2C1 + SIL_I2C_CCR, BIT(15) | 38u);          /* F/S, duty 2: 45 MHz / (3 x 38) */
    SIL_WR(SIL_I2C1 + SIL_I2C_TRISE, 14u);
    SIL_WR(SIL_I2C1 + SIL_I2C_CR1, SIL_I2C_CR1_PE);
    S.pm_ok = (uint8_t)(sil_ina_write(0x00, SIL_INA226_CONFIG) && sil_ina_write(0x05, SIL_INA226_CAL));
    S.pm_last_us = fw_now_us();
    if (S.pm_ok) {
        uint16_t raw = 0;
        S.pm_ok = (uint8_t)sil_ina_read(0x03, &raw);
        S.pm_last_raw = raw;
    }
    S.cur_layer = 0;
    S.layer_lines = 0xFF;
}

sb_port_t *fw_silicon_port(void)
{
    s_port.ctx = &S;
    s_port.exec = sil_exec;
    s_port.fired = sil_fired;
    s_port.read_cell = sil_read_cell;
    s_port.neurons = sil_neurons;
    s_port.age = sil_age;
    s_port.configure = sil_configure;
    s_port.image = NULL;
    s_port.image_size = NULL;
    s_port.energy_aj = sil_energy;
    return &s_port;
}

#endif /* SB_SILICON || SIL_HOST_FAKE */
