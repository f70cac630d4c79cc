/* The board's command server: bytes from the link in, frames out.
 * Owns one device controller (sb_dev_t) and runs every wire command on it.
 * Used by the firmware's command loop and, through cffi, by the host's tests
 * and fuzz harness, so both sides run the same dispatcher. */
#ifndef SB_SERVER_H
#define SB_SERVER_H

#include "sb/config.h"
#include "sb/dev.h"
#include "sb/proto.h"

/* What the server needs from its host system (firmware or a test harness). */
typedef struct sb_server_io {
    void *ctx;
    /* Send bytes of an encoded frame towards the host PC. */
    void (*tx)(void *ctx, const uint8_t *buf, size_t n);
    /* Free-running timestamp in microseconds (SysTick on the board). */
    uint32_t (*now_us)(void *ctx);
    /* Move up to max fire events gathered by the asynchronous readout path
     * (ISR -> ring) into ev; returns how many; *overflow gets events lost
     * since the last call (counted, never silent). NULL: the server records
     * events itself, synchronously. */
    size_t (*drain)(void *ctx, sb_event_t *ev, size_t max, uint32_t *overflow);
    /* Aggregated readout (SB_INFER_COUNTS): on = 1 while the server counts
     * fires itself, so the system may stop raising one event interrupt per
     * fire; on = 0 restores the AER path. NULL: nothing to switch. */
    void (*count_mode)(void *ctx, int on);
    /* Board identity reported by HELLO. */
    const char *board;
    /* Reboot the MCU (RESET with SB_RESET_BOARD); NULL: not supported. */
    void (*reboot)(void *ctx);
    /* Why the board last started: SB_RESET_REASON_* (proto.h), reported by HELLO. */
    uint8_t reset_reason;
} sb_server_io_t;

#define SB_COUNT_PLANES 9                   /* counts up to 511 >= SB_MAX_STEPS */
_Static_assert(SB_MAX_STEPS < (1 << SB_COUNT_PLANES), "SB_COUNT_PLANES");

typedef struct sb_server {
    sb_dev_t dev;
    sb_server_io_t io;
    sb_cobs_rx_t rx;                        /* frame being received */
    uint8_t resp[SB_MAX_FRAME];             /* last response, resent on a duplicate seq */
    size_t resp_len;
    uint16_t last_seq;
    uint8_t have_last;
    uint8_t reboot;                         /* RESET(board) answered: reboot once the answer is out */
    uint32_t frames_ok, frames_bad, dups, event_overflow;
    uint16_t event_seq;
    uint16_t nev;                           /* events waiting to go out */
    sb_event_t ev[SB_EVENTS_PER_FRAME];
    uint8_t streaming;                      /* current request asked for event frames */
    uint8_t counting;                       /* current request asked for counts frames */
    uint16_t win_len, win_steps;            /* counts window: length and steps so far */
    uint32_t win_step0;                     /* step counter at the window's first step */
    /* per-neuron fire counts of the window, bit-sliced: bit j of plane k is
     * bit k of neuron j's count (a window has at most SB_MAX_STEPS fires) */
    uint32_t planes[SB_MAX_LAYERS][SB_COUNT_PLANES];
    uint8_t req[SB_MAX_PAYLOAD];            /* decoded request payload */
    uint8_t out[SB_MAX_PAYLOAD];            /* response payload being built */
    uint8_t levels[SB_MAX_STEPS * SB_MAX_ROWS]; /* unpacked input spikes */
} sb_server_t;

/* Server statistics sent after the counters in a COUNTERS response. */
typedef struct {
    uint32_t frames_ok, frames_bad, dups, event_overflow, step;
} sb_msg_stats_t;
_Static_assert(sizeof(sb_msg_stats_t) == 20, "wire struct");

/* A request as its command's handler sees it. */
typedef struct {
    uint8_t *body;            /* payload (IMAGE writes from it in place) */
    size_t n;                 /* its length, checked against the command's table entry */
    uint32_t detail;          /* set by a failing handler: the index or length that was wrong */
} sb_server_req_t;

/* The server's command table (hal/src/server.c), one entry per request
 * command. The dispatcher does what every command shares: it refuses a
 * command the chip is not configured for (SB_ECONFIG) and a body of the wrong
 * length (SB_ELEN); then the handler writes its answer into s->out and
 * returns the answer's length or a negative code, and the dispatcher frames
 * either (a response, or SB_CMD_ERROR with the code and r->detail). */
#define SB_SERVE_CONFIGURED  0x01  /* refused with SB_ECONFIG until the chip is configured */
#define SB_SERVE_EXACT       0x02  /* the body is exactly len bytes (else at least len) */
#define SB_SERVE_KEEP_WINDOW 0x04  /* reads the counters: its supply energy joins the next command's */
typedef struct {
    uint8_t cmd;              /* SB_CMD_* */
    uint8_t flags;            /* SB_SERVE_* */
    uint16_t len;             /* body bytes: exactly (SB_SERVE_EXACT) or at least */
    int (*handler)(sb_server_t *s, sb_server_req_t *r);
} sb_server_cmd_t;

/* The table entry of a request command; NULL for a code the server does not serve. */
const sb_server_cmd_t *sb_server_cmd(uint8_t cmd);

void sb_server_init(sb_server_t *s, const sb_server_io_t *io, sb_port_t *port);
/* Feed one received byte; a completed frame is dispatched and answered at once. */
void sb_server_rx(sb_server_t *s, uint8_t byte);
/* Feed a whole buffer (convenience for hosts and fuzzers). */
void sb_server_rx_buf(sb_server_t *s, const uint8_t *buf, size_t n);

#endif
