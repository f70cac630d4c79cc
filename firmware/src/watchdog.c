#include "watchdog.h"

#include "board.h"
#include "fw_regs.h"
#include "sb/proto.h"

#define IWDG_KEY_RELOAD 0xAAAAu
#define IWDG_KEY_ENABLE 0x5555u
#define IWDG_KEY_START  0xCCCCu
#define FW_LSI_HZ       32000u
#define FW_SPIN_LIMIT   100000u   /* bounded waits: never hang on a missing model */

static uint32_t s_csr;
static uint8_t s_read;

static void fw_reset_latch(void)
{
    if (s_read) {
        return;
    }
    s_csr = RCC_CSR;
    RCC_CSR |= RCC_CSR_RMVF;    /* clear, so the next reset reports its own cause */
    s_read = 1;
}

void fw_watchdog_init(uint32_t timeout_ms)
{
    fw_reset_latch();
    if (timeout_ms < 1u) {
        timeout_ms = 1u;
    }
    if (timeout_ms > 32768u) {
        timeout_ms = 32768u;
    }
#if !FW_HAS_EMULATOR
    /* Freeze the IWDG while a debugger halts the core (real hardware only:
     * DBGMCU is not mapped in QEMU and a write there would BusFault). */
    DBGMCU_APB1_FZ |= DBGMCU_APB1_FZ_IWDG;
#endif
    /* Prescaler /256 -> 125 Hz at 32 kHz LSI: 8 ms per count, 12-bit reload. */
    uint32_t reload = (timeout_ms * (FW_LSI_HZ / 256u)) / 1000u;
    if (reload < 1u) {
        reload = 1u;
    }
    if (reload > 0xFFFu) {
        reload = 0xFFFu;
    }
    IWDG_KR = IWDG_KEY_START;
    IWDG_KR = IWDG_KEY_ENABLE;
    IWDG_PR = 6u;                /* /256 */
    IWDG_RLR = reload;
    for (uint32_t i = 0; i < FW_SPIN_LIMIT && (IWDG_SR & 0x3u) != 0u; i++) {
    }
    IWDG_KR = IWDG_KEY_RELOAD;
}

void fw_watchdog_kick(void)
{
    IWDG_KR = IWDG_KEY_RELOAD;
}

uint32_t fw_reset_flags(void)
{
    fw_reset_latch();
    return s_csr;
}

fw_reset_reason_t fw_reset_reason(void)
{
    uint32_t f = fw_reset_flags();
    /* Most specific first: a POR also sets PIN and BOR. */
    if (f & RCC_CSR_IWDGRSTF) return FW_RESET_IWDG;
    if (f & RCC_CSR_WWDGRSTF) return FW_RESET_WWDG;
    if (f & RCC_CSR_LPWRRSTF) return FW_RESET_LOW_POWER;
    if (f & RCC_CSR_SFTRSTF) return FW_RESET_SOFTWARE;
    if (f & RCC_CSR_PORRSTF) return FW_RESET_POWER_ON;
    if (f & RCC_CSR_BORRSTF) return FW_RESET_BROWNOUT;
    if (f & RCC_CSR_PINRSTF) return FW_RESET_PIN;
    return FW_RESET_UNKNOWN;
}

const char *fw_reset_reason_name(fw_reset_reason_t r)
{
    switch (r) {
    case FW_RESET_POWER_ON: return "power-on";
    case FW_RESET_PIN: return "pin";
    case FW_RESET_BROWNOUT: return "brownout";
    case FW_RESET_SOFTWARE: return "software";
    case FW_RESET_IWDG: return "watchdog";
    case FW_RESET_WWDG: return "window-watchdog";
    case FW_RESET_LOW_POWER: return "low-power";
    case FW_RESET_UNKNOWN:
    default: return "unknown";
    }
}

uint8_t fw_reset_reason_wire(fw_reset_reason_t r)
{
    switch (r) {
    case FW_RESET_IWDG:
    case FW_RESET_WWDG: return SB_RESET_REASON_WATCHDOG;
    case FW_RESET_SOFTWARE: return SB_RESET_REASON_SOFTWARE;
    case FW_RESET_PIN: return SB_RESET_REASON_PIN;
    case FW_RESET_UNKNOWN:
    case FW_RESET_POWER_ON:
    case FW_RESET_BROWNOUT:
    case FW_RESET_LOW_POWER:
    default: return SB_RESET_REASON_POWER_ON;
    }
}

void fw_system_reset(void)
{
    fw_dsb();
    SCB_AIRCR = SCB_AIRCR_RESET;
    fw_dsb();
    for (;;) {
    }
}
