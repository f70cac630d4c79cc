/* Timebase: SysTick on the core clock, 1 ms interrupt, read to the tick.
 * Under QEMU `-icount shift=N` the SysTick counts virtual time that advances
 * 2^N ns per instruction, so fw_ticks() differences count instructions. */
#ifndef FW_SYSTICK_H
#define FW_SYSTICK_H

#include <stdint.h>

void fw_systick_init(uint32_t core_hz);
/* Microseconds since fw_systick_init (wraps after ~71 minutes). */
uint32_t fw_now_us(void);
/* Milliseconds since fw_systick_init. */
uint32_t fw_now_ms(void);
/* Raw core-clock ticks since init (wraps; subtract as uint32_t). */
uint32_t fw_ticks(void);
/* Ticks per second of fw_ticks(). */
uint32_t fw_ticks_hz(void);

#endif
