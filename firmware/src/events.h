/* Asynchronous spike readout: port -> latch -> software-pended IRQ (EXTI0)
 * -> timestamp -> static ring -> task (fw_events_drain, the server's io.drain).
 * The ISR only timestamps and pushes; a full ring is counted, never silent. */
#ifndef FW_EVENTS_H
#define FW_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "sb/proto.h"     /* sb_event_t */

#ifndef FW_EVENTS_RING
#define FW_EVENTS_RING 512u     /* events; power of two */
#endif
#ifndef FW_EVENTS_LATCH
#define FW_EVENTS_LATCH 16u     /* latched fires waiting for the ISR; power of two */
#endif

void fw_events_init(void);
/* Called by the port (virtual chip hook, or a real-chip pin ISR) when
 * neurons of `layer` fired at time step `step`; `mask` has one bit per
 * neuron. Stores the latch and pends the event IRQ. Any context. */
void fw_events_latch(uint8_t layer, uint32_t step, uint32_t mask);
/* Aggregated readout on/off (the server's io.count_mode): while on, a fire
 * is only counted by the command server from the port's fire mask, and
 * fw_events_latch neither latches nor raises the event IRQ. */
void fw_events_count_mode(void *ctx, int on);
/* Move up to max events into ev (oldest first); *overflow (if not NULL) gets
 * the events lost since the previous call. For the task (one consumer). */
size_t fw_events_drain(void *ctx, sb_event_t *ev, size_t max, uint32_t *overflow);
/* Events waiting in the ring. */
size_t fw_events_pending(void);
/* Events lost since boot (ring or latch full). */
uint32_t fw_events_overflow_total(void);

#endif
