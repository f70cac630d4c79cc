/* Register-level fake of the STM32F446 peripherals the silicon port uses,
 * for host tests (tests/test_silicon_port.py): silicon.c is compiled with
 * -D SIL_HOST_FAKE so every register access calls sil_rd/sil_wr here.
 * Registers are a small address -> value table; every access is logged.
 * Behaviour modelled: TIM1 one-pulse (CEN reads back cleared: the pulse is
 * over), SPI TXE set / BSY clear / RXNE set, SPI3 DR and ADC DR and I2C DR
 * reads pop from queues the test fills, I2C SR1 flags always ready, and
 * EXTI_PR write-1-to-clear. Also the firmware services silicon.c calls:
 * fw_events_latch (recorded) and fw_now_us (a settable clock). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "silicon.h"

#define NREG 256
static uint32_t reg_addr[NREG], reg_val[NREG];
static int nreg;

#define LOGN 65536
typedef struct { char op; uint32_t addr, val; } fake_log_t;
fake_log_t fake_log[LOGN];
int fake_nlog;

#define QN 4096
typedef struct { uint32_t v[QN]; int head, tail; } fake_q_t;
fake_q_t fake_adc, fake_spi3, fake_i2c;
void fake_push(fake_q_t *q, uint32_t v) { q->v[q->tail++ % QN] = v; }
static uint32_t pop(fake_q_t *q) { return q->head == q->tail ? 0u : q->v[q->head++ % QN]; }

uint32_t fake_time_us;
uint32_t fw_now_us(void) { return fake_time_us; }

typedef struct { uint8_t layer; uint32_t step, mask; } fake_event_t;
fake_event_t fake_events[256];
int fake_nevents;
void fw_events_latch(uint8_t layer, uint32_t step, uint32_t mask)
{
    fake_events[fake_nevents++ & 255] = (fake_event_t){layer, step, mask};
}

static uint32_t *slot(uint32_t addr)
{
    for (int i = 0; i < nreg; i++) {
        if (reg_addr[i] == addr) return &reg_val[i];
    }
    reg_addr[nreg] = addr;
    reg_val[nreg] = 0;
    return &reg_val[nreg++];
}

void fake_set(uint32_t addr, uint32_t v) { *slot(addr) = v; }
uint32_t fake_get(uint32_t addr) { return *slot(addr); }
void fake_reset(void) { nreg = 0; fake_nlog = 0; fake_nevents = 0; memset(&fake_adc, 0, sizeof fake_adc);
                        memset(&fake_spi3, 0, sizeof fake_spi3); memset(&fake_i2c, 0, sizeof fake_i2c); }

static void logit(char op, uint32_t a, uint32_t v)
{
    if (fake_nlog < LOGN) fake_log[fake_nlog++] = (fake_log_t){op, a, v};
}

uint32_t sil_rd(uint32_t a)
{
    uint32_t v;
    if (a == SIL_TIM1 + SIL_TIM_CR1) v = *slot(a) & ~SIL_TIM_CR1_CEN;          /* one pulse: done */
    else if (a == SIL_SPI2 + SIL_SPI_SR) v = SIL_SPI_SR_TXE;
    else if (a == SIL_SPI3 + SIL_SPI_SR) v = SIL_SPI_SR_TXE | SIL_SPI_SR_RXNE;
    else if (a == SIL_SPI3 + SIL_SPI_DR) v = pop(&fake_spi3);
    else if (a == SIL_ADC1 + SIL_ADC_SR) v = SIL_ADC_SR_EOC;
    else if (a == SIL_ADC1 + SIL_ADC_DR) v = pop(&fake_adc);
    else if (a == SIL_I2C1 + SIL_I2C_SR1) v = SIL_I2C_SR1_SB | SIL_I2C_SR1_ADDR | SIL_I2C_SR1_BTF |
                                              SIL_I2C_SR1_TXE | SIL_I2C_SR1_RXNE;
    else if (a == SIL_I2C1 + SIL_I2C_DR) v = pop(&fake_i2c);
    else v = *slot(a);
    logit('R', a, v);
    return v;
}

void sil_wr(uint32_t a, uint32_t v)
{
    logit('W', a, v);
    if (a == SIL_EXTI_PR) { *slot(a) &= ~v; return; }                          /* write 1 to clear */
    *slot(a) = v;
}
