#include "systick.h"

#include "board.h"
#include "fw_regs.h"

static volatile uint32_t s_ms;          /* SysTick wraps counted by the ISR */
static uint32_t s_reload;               /* ticks per ms - 1 */
static uint32_t s_ticks_per_us;
static uint32_t s_hz;
static uint32_t s_last_us, s_last_ticks;    /* monotonic clamp, see below */

void fw_systick_init(uint32_t core_hz)
{
    s_hz = core_hz;
    s_reload = core_hz / 1000u - 1u;
    s_ticks_per_us = core_hz / 1000000u;
    if (s_ticks_per_us == 0u) {
        s_ticks_per_us = 1u;
    }
    s_ms = 0;
    s_last_us = 0;
    s_last_ticks = 0;
    SYST_CSR = 0;
    SYST_RVR = s_reload;
    SYST_CVR = 0;
    /* SysTick is exception 15: priority in SHPR3[31:24]. */
    SCB_SHPR3 = (SCB_SHPR3 & 0x00FFFFFFu) | ((FW_PRIO_SYSTICK << (8u - FW_NVIC_PRIO_BITS)) << 24);
    SYST_CSR = SYST_CSR_CLKSOURCE | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
}

void SysTick_Handler(void)
{
    s_ms = s_ms + 1u;
}

/* Consistent (ms, elapsed ticks in this ms) pair, from any context: the
 * retry loop covers preemption by SysTick, the PENDSTSET check covers a wrap
 * that the ISR has not counted yet (caller with interrupts masked or at
 * equal priority). */
static void fw_systick_read(uint32_t *ms, uint32_t *elapsed)
{
    uint32_t m1, m2, val;
    do {
        m1 = s_ms;
        val = SYST_CVR;
        if ((SCB_ICSR & SCB_ICSR_PENDSTSET) && val > (s_reload >> 1)) {
            m1 += 1u;                   /* wrapped, not yet counted */
            m2 = s_ms + 1u;
        } else {
            m2 = s_ms;
        }
    } while (m1 != m2);
    *ms = m1;
    *elapsed = s_reload - val;
}

/* Both readers are clamped to never go backwards. On silicon the read above
 * is already exact; QEMU's SysTick can show a reloaded CVR before it sets
 * PENDSTSET (the wrap callback runs later), which would step time back by up
 * to 1 ms. A flat spot is harmless to event timestamps, a step back is not. */
uint32_t fw_now_us(void)
{
    uint32_t m = fw_irq_save();
    uint32_t ms, el;
    fw_systick_read(&ms, &el);
    uint32_t us = ms * 1000u + el / s_ticks_per_us;
    if ((int32_t)(us - s_last_us) < 0) {
        us = s_last_us;
    } else {
        s_last_us = us;
    }
    fw_irq_restore(m);
    return us;
}

uint32_t fw_now_ms(void)
{
    return s_ms;
}

uint32_t fw_ticks(void)
{
    uint32_t m = fw_irq_save();
    uint32_t ms, el;
    fw_systick_read(&ms, &el);
    uint32_t t = ms * (s_reload + 1u) + el;
    if ((int32_t)(t - s_last_ticks) < 0) {
        t = s_last_ticks;
    } else {
        s_last_ticks = t;
    }
    fw_irq_restore(m);
    return t;
}

uint32_t fw_ticks_hz(void)
{
    return s_hz;
}
