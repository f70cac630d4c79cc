/* Independent watchdog (IWDG, LSI ~32 kHz), kicked from the main loop, and
 * the reason of the last reset read from RCC_CSR at boot.
 * QEMU 7.2 models neither (IWDG and RCC are "unimplemented devices": writes
 * are ignored, reads are 0), so there the watchdog never bites and the
 * reason is FW_RESET_UNKNOWN. */
#ifndef FW_WATCHDOG_H
#define FW_WATCHDOG_H

#include <stdint.h>

typedef enum {
    FW_RESET_UNKNOWN = 0,   /* no flag set (emulator) */
    FW_RESET_POWER_ON,
    FW_RESET_PIN,           /* NRST, e.g. the ST-LINK or the reset button */
    FW_RESET_BROWNOUT,
    FW_RESET_SOFTWARE,      /* SYSRESETREQ, fw_system_reset() */
    FW_RESET_IWDG,          /* independent watchdog bit */
    FW_RESET_WWDG,
    FW_RESET_LOW_POWER,
} fw_reset_reason_t;

/* Latch the reset flags (and clear them in RCC), then start the IWDG with
 * about timeout_ms (clamped to 1..32768 ms). Once started it cannot stop. */
void fw_watchdog_init(uint32_t timeout_ms);
void fw_watchdog_kick(void);
fw_reset_reason_t fw_reset_reason(void);
const char *fw_reset_reason_name(fw_reset_reason_t r);
/* The cause as the wire reports it in HELLO: SB_RESET_REASON_* (sb/proto.h). */
uint8_t fw_reset_reason_wire(fw_reset_reason_t r);
/* Raw RCC_CSR as read at boot (0 under QEMU). */
uint32_t fw_reset_flags(void);
/* Software reset through SCB AIRCR (SYSRESETREQ). */
__attribute__((noreturn)) void fw_system_reset(void);

#endif
