#include "events.h"

#include "board.h"
#include "fw_regs.h"
#include "ring.h"
#include "systick.h"

_Static_assert(FW_IS_POW2(FW_EVENTS_RING), "FW_EVENTS_RING must be a power of two");
_Static_assert(FW_IS_POW2(FW_EVENTS_LATCH), "FW_EVENTS_LATCH must be a power of two");
_Static_assert(sizeof(sb_event_t) == 16, "sb_event_t is 16 bytes on the wire");

typedef struct {
    uint32_t step;
    uint32_t mask;
    uint8_t layer;
} fw_latch_t;

/* Latch queue: producers = fw_events_latch (serialised by PRIMASK),
 * consumer = the event ISR. */
static fw_latch_t s_latch[FW_EVENTS_LATCH];
static volatile uint32_t s_latch_head, s_latch_tail;

/* Event ring: producer = the event ISR, consumer = fw_events_drain. */
static sb_event_t s_ring[FW_EVENTS_RING];
static volatile uint32_t s_head, s_tail;
static volatile uint32_t s_overflow;    /* total lost, written by producers only */
static uint32_t s_overflow_reported;    /* task side */
static volatile uint32_t s_counting;    /* aggregated readout: no event IRQ per fire */

void fw_events_init(void)
{
    s_latch_head = s_latch_tail = 0;
    s_head = s_tail = 0;
    s_overflow = 0;
    s_overflow_reported = 0;
    s_counting = 0;
    fw_nvic_prio(FW_EVENTS_IRQN, FW_PRIO_EVENTS);
    fw_nvic_enable(FW_EVENTS_IRQN);
}

void fw_events_count_mode(void *ctx, int on)
{
    (void)ctx;
    s_counting = (uint32_t)(on != 0);
}

void fw_events_latch(uint8_t layer, uint32_t step, uint32_t mask)
{
    if (s_counting) {
        /* the command server counts the fires it reads through the port
         * (SB_INFER_COUNTS): no latch, no interrupt per fire */
        return;
    }
    uint32_t m = fw_irq_save();
    uint32_t h = s_latch_head;
    if (h - s_latch_tail < FW_EVENTS_LATCH) {
        fw_latch_t *l = &s_latch[h & (FW_EVENTS_LATCH - 1u)];
        l->layer = layer;
        l->step = step;
        l->mask = mask;
        s_latch_head = h + 1u;
    } else {
        s_overflow = s_overflow + 1u;
    }
    fw_irq_restore(m);
    fw_nvic_pend(FW_EVENTS_IRQN);
    /* Thread mode: the IRQ is taken here, before returning. */
    fw_dsb();
    fw_isb();
}

/* The event IRQ: timestamp and push, nothing else. */
void EXTI0_IRQHandler(void)
{
    uint32_t now = fw_now_us();
    uint32_t t = s_latch_tail;
    while (t != s_latch_head) {
        const fw_latch_t *l = &s_latch[t & (FW_EVENTS_LATCH - 1u)];
        uint32_t h = s_head;
        if (h - s_tail < FW_EVENTS_RING) {
            sb_event_t *e = &s_ring[h & (FW_EVENTS_RING - 1u)];
            e->t_us = now;
            e->step = l->step;
            e->mask = l->mask;
            e->layer = l->layer;
            e->pad[0] = e->pad[1] = e->pad[2] = 0;
            fw_dmb();
            s_head = h + 1u;
        } else {
            s_overflow = s_overflow + 1u;
        }
        t++;
        s_latch_tail = t;
    }
}

size_t fw_events_drain(void *ctx, sb_event_t *ev, size_t max, uint32_t *overflow)
{
    (void)ctx;
    size_t n = 0;
    uint32_t t = s_tail;
    uint32_t h = s_head;
    fw_dmb();
    while (n < max && t != h) {
        ev[n++] = s_ring[t & (FW_EVENTS_RING - 1u)];
        t++;
    }
    fw_dmb();
    s_tail = t;
    if (overflow != NULL) {
        uint32_t total = s_overflow;
        *overflow = total - s_overflow_reported;
        s_overflow_reported = total;
    }
    return n;
}

size_t fw_events_pending(void)
{
    return s_head - s_tail;
}

uint32_t fw_events_overflow_total(void)
{
    return s_overflow;
}
