/* Single-producer single-consumer byte ring over a static power-of-two
 * buffer. Indices run free (uint32_t) and are masked on access, so
 * head - tail is the fill level even across wrap-around. One side may be an
 * ISR: each index is written by one side only. */
#ifndef FW_RING_H
#define FW_RING_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *buf;
    uint32_t mask;              /* size - 1, size a power of two */
    volatile uint32_t head;     /* written by the producer */
    volatile uint32_t tail;     /* written by the consumer */
} fw_ring_t;

#define FW_IS_POW2(n) ((n) != 0u && ((n) & ((n) - 1u)) == 0u)

static inline void fw_ring_init(fw_ring_t *r, uint8_t *buf, uint32_t size)
{
    r->buf = buf;
    r->mask = size - 1u;
    r->head = 0;
    r->tail = 0;
}
static inline uint32_t fw_ring_used(const fw_ring_t *r) { return r->head - r->tail; }
static inline uint32_t fw_ring_free(const fw_ring_t *r) { return r->mask + 1u - (r->head - r->tail); }
static inline int fw_ring_empty(const fw_ring_t *r) { return r->head == r->tail; }

/* Returns 1 if stored, 0 if full. */
static inline int fw_ring_put(fw_ring_t *r, uint8_t b)
{
    uint32_t h = r->head;
    if (h - r->tail > r->mask) {
        return 0;
    }
    r->buf[h & r->mask] = b;
    __asm volatile("" ::: "memory");   /* data before index (single core) */
    r->head = h + 1u;
    return 1;
}

/* Returns the byte (0..255) or -1 if empty. */
static inline int fw_ring_get(fw_ring_t *r)
{
    uint32_t t = r->tail;
    if (t == r->head) {
        return -1;
    }
    uint8_t b = r->buf[t & r->mask];
    __asm volatile("" ::: "memory");
    r->tail = t + 1u;
    return b;
}

#endif
