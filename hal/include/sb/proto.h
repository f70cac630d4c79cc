/* Wire protocol: one definition for the firmware and the host.
 *
 * Frame on the wire:  COBS( header | payload | crc32 ) 0x00
 *   header  = cmd:u8 flags:u8 seq:u16le
 *   crc32   = CRC-32/ISO-HDLC (zlib's) over header and payload, little-endian
 * Requests carry the host's sequence number; the response echoes it with
 * SB_F_RESP set. Event frames (SB_CMD_EVENT) are unsolicited and numbered by
 * the board. A request that fails is answered by SB_CMD_ERROR with the code. */
#ifndef SB_PROTO_H
#define SB_PROTO_H

#include "sb/config.h"

#define SB_PROTO_VERSION 1
#define SB_HDR_LEN 4
#define SB_CRC_LEN 4
#define SB_MAX_RAW (SB_HDR_LEN + SB_MAX_PAYLOAD + SB_CRC_LEN)
#define SB_MAX_FRAME (SB_MAX_RAW + SB_MAX_RAW / 254 + 2)   /* COBS overhead + delimiter */

enum sb_cmd {
    SB_CMD_HELLO     = 0x01, /* -> sb_msg_hello_t */
    SB_CMD_CONFIGURE = 0x02, /* sb_params_t -> u32 card hash */
    SB_CMD_PROGRAM   = 0x03, /* write-verify a run of cells */
    SB_CMD_READ_G    = 0x04, /* read back a run of cells */
    SB_CMD_INFER     = 0x05, /* run time steps on streamed input spikes */
    SB_CMD_TRAIN     = 0x06, /* one training sample: forward, error, pulses */
    SB_CMD_PULSE     = 0x07, /* raw pulse scheme on a run of cells */
    SB_CMD_COUNTERS  = 0x08, /* read (and optionally clear) the counters */
    SB_CMD_RESET     = 0x09, /* reset neurons / chip state / board */
    SB_CMD_AGE       = 0x0A, /* let model time pass (retention), seconds */
    SB_CMD_STATE     = 0x0B, /* membrane potentials and refractory counters */
    SB_CMD_IMAGE     = 0x0C, /* read/write the device image (virtual chip state, counters) */
    SB_CMD_TRAIN_BATCH = 0x0D, /* several training samples back to back, one request */
    SB_CMD_INFER_BATCH = 0x0E, /* several inference samples back to back, one request */
    SB_CMD_ERROR     = 0x7F, /* i16 code, u8 cmd that failed */
    SB_CMD_EVENT     = 0x40, /* unsolicited: batched fire events (AER) */
    SB_CMD_COUNTS    = 0x41, /* unsolicited: per-neuron fire counts of one window */
};

#define SB_F_RESP  0x01
#define SB_F_EVENT 0x02

/* ---- message bodies: little-endian, packed by construction ---- */

typedef struct {
    uint8_t proto;            /* SB_PROTO_VERSION */
    uint8_t fw_major, fw_minor, fw_patch;
    uint8_t rows, cols, layers, configured;
    uint32_t card_hash;       /* CRC-32 of the configured parameter block, 0 if none */
    uint16_t max_payload;
    uint8_t reset_reason;     /* SB_RESET_REASON_*: why the board last started */
    uint8_t flags;            /* SB_HELLO_* */
    uint32_t hal_id;          /* SB_HAL_ID: CRC-32 of the hal/ sources built in */
    char board[16];           /* NUL-padded */
} sb_msg_hello_t;
_Static_assert(sizeof(sb_msg_hello_t) == 36, "wire struct");

#define SB_HELLO_VIRTUAL 0x01  /* virtual chip: synapse state is lost when the board resets */

/* Why the board last started (sb_msg_hello_t.reset_reason): wire values. The
 * firmware maps the cause it latched at boot (RCC_CSR) onto these; a cause
 * without a code of its own (brownout, low-power) reports POWER_ON. */
enum sb_reset_reason {
    SB_RESET_REASON_POWER_ON = 0, /* power-on, or no cause latched (QEMU models none) */
    SB_RESET_REASON_WATCHDOG = 1, /* the independent or the window watchdog bit */
    SB_RESET_REASON_SOFTWARE = 2, /* SYSRESETREQ: RESET with SB_RESET_BOARD */
    SB_RESET_REASON_PIN = 3,      /* the reset pin: NRST, the debugger or the button */
    SB_RESET_REASON_COUNT
};

/* IMAGE request: header, then (write) the bytes. Response: u32 image size,
 * then (read) the bytes. */
typedef struct {
    uint32_t offset;
    uint16_t n;
    uint8_t write;
    uint8_t reserved;
} sb_msg_image_t;
_Static_assert(sizeof(sb_msg_image_t) == 8, "wire struct");

/* PROGRAM request: header then u16 target[n]. Response: sb_msg_program_resp_t
 * then u8 pulses_used[n] then a bitmap of failed cells, (n+7)/8 bytes. */
typedef struct {
    uint16_t first;           /* flat cell index: (layer*rows + row)*cols + col */
    uint16_t n;
    uint16_t tolerance;       /* |G - target| accepted, conductance codes */
    uint8_t max_pulses;       /* per cell */
    uint8_t reserved;
} sb_msg_program_t;
_Static_assert(sizeof(sb_msg_program_t) == 8, "wire struct");

typedef struct {
    uint16_t n;
    uint16_t failed;          /* cells that did not reach tolerance */
    uint32_t pulses;          /* total pulses applied */
} sb_msg_program_resp_t;
_Static_assert(sizeof(sb_msg_program_resp_t) == 8, "wire struct");

/* READ_G request; response: u16 g[n] */
typedef struct {
    uint16_t first;
    uint16_t n;
} sb_msg_read_t;
_Static_assert(sizeof(sb_msg_read_t) == 4, "wire struct");

/* INFER request: header then input spikes, steps x ceil(rows/8) bytes, one bit
 * per row (binary spikes) or, when levels > 1, steps x rows bytes of pulse
 * width levels. Response: sb_msg_infer_resp_t then, per step, the fire mask of
 * the last layer (u32 each), then i32 v[neurons] of the last layer at the end.
 * With SB_INFER_EVENTS the fires of every layer also go out as event frames
 * through the asynchronous readout path. With SB_INFER_COUNTS (the aggregated
 * readout, for high firing rates) the fires are only counted per neuron, and
 * one SB_CMD_COUNTS frame goes out per `window` steps (the last window of the
 * request may be shorter); window 0 = the whole request. SB_INFER_EVENTS and
 * SB_INFER_COUNTS together are refused (SB_EINVAL). */
#define SB_INFER_RESET   0x01 /* reset neurons before the first step */
#define SB_INFER_EVENTS  0x02 /* stream AER event frames */
#define SB_INFER_LEVELS  0x04 /* one byte per row: pulse-width level */
#define SB_INFER_TRACE   0x08 /* membranes of every step, not only the last */
#define SB_INFER_COUNTS  0x10 /* stream per-neuron fire counts, one frame per window */
typedef struct {
    uint16_t steps;
    uint8_t flags;
    uint8_t window;           /* SB_INFER_COUNTS: steps per counts window, 0 = the whole request */
} sb_msg_infer_t;
_Static_assert(sizeof(sb_msg_infer_t) == 4, "wire struct");

typedef struct {
    uint16_t steps;
    uint8_t neurons;
    uint8_t layer;            /* the layer reported (last) */
    uint32_t step0;           /* board step counter before the first step */
} sb_msg_infer_resp_t;
_Static_assert(sizeof(sb_msg_infer_resp_t) == 8, "wire struct");

/* TRAIN request: header then input spikes as in INFER. */
typedef struct {
    uint16_t steps;
    uint8_t label;
    uint8_t rule;             /* SB_RULE_* in learn.h */
    uint16_t target;          /* wanted fires of the label neuron over the sample */
    uint8_t max_pulses;       /* per synapse per sample */
    uint8_t flags;            /* SB_INFER_LEVELS */
    uint32_t sample_id;       /* journal: echoed back, lets the host prove no sample ran twice */
} sb_msg_train_t;
_Static_assert(sizeof(sb_msg_train_t) == 12, "wire struct");

typedef struct {
    uint32_t sample_id;
    uint8_t predicted;        /* neuron with most fires (lowest index wins ties) */
    uint8_t neurons;
    uint16_t pulses;          /* pulses applied for this sample */
    uint16_t counts[SB_MAX_NEURONS]; /* fires per neuron of the last layer */
} sb_msg_train_resp_t;
_Static_assert(sizeof(sb_msg_train_resp_t) == 8 + 2 * SB_MAX_NEURONS, "wire struct");

/* TRAIN_BATCH request: sb_msg_batch_t, then n items, each exactly a
 * TRAIN request body (sb_msg_train_t, then its input spikes). The board checks
 * every item first, then trains them in order with sb_learn_train, as n TRAIN
 * requests would, and answers once: sb_msg_batch_resp_t, then n x
 * (sb_msg_train_item_t, then u16 counts[neurons]). One request, one sequence
 * number: a retried batch is answered from the duplicate cache, so no sample
 * runs twice. Refused before any sample runs: n = 0 or n > SB_MAX_BATCH
 * (SB_EINVAL, detail n); a malformed item (SB_ELEN/SB_EINVAL/SB_ERANGE, detail
 * its index); an answer longer than SB_MAX_PAYLOAD (SB_ELEN, detail the bytes
 * it would need); more than SB_MAX_STEPS steps or SB_MAX_PULSE_WORK
 * cell-pulses in all (SB_EINVAL, detail the index of the item over the
 * budget: a batch does at most the work of one TRAIN, inside the watchdog). */
#define SB_MAX_BATCH 64
/* Header of a TRAIN_BATCH or INFER_BATCH request. */
typedef struct {
    uint8_t n;                /* samples in the batch */
    uint8_t reserved[3];
} sb_msg_batch_t;
_Static_assert(sizeof(sb_msg_batch_t) == 4, "wire struct");

/* Header of a TRAIN_BATCH or INFER_BATCH answer. */
typedef struct {
    uint8_t n;
    uint8_t neurons;          /* counts (TRAIN_BATCH) or membranes (INFER_BATCH) per item */
    uint16_t reserved;
} sb_msg_batch_resp_t;
_Static_assert(sizeof(sb_msg_batch_resp_t) == 4, "wire struct");

typedef struct {
    uint32_t sample_id;
    uint8_t predicted;
    uint8_t reserved;
    uint16_t pulses;
} sb_msg_train_item_t;           /* then u16 counts[neurons] */
_Static_assert(sizeof(sb_msg_train_item_t) == 8, "wire struct");

/* INFER_BATCH request: sb_msg_batch_t, then n items, each exactly an
 * INFER request body (sb_msg_infer_t, then its input spikes). Only
 * SB_INFER_LEVELS and SB_INFER_RESET may be set in an item's flags (no events,
 * counts or trace); the neurons are reset before every item either way. The
 * board checks every item first, then runs them in order, as n INFER requests
 * with SB_INFER_RESET would, and answers once: sb_msg_batch_resp_t, then
 * per item exactly an INFER answer (sb_msg_infer_resp_t, u32 masks[steps],
 * i32 v[neurons] after the last step). One request, one sequence number: a
 * retried batch is answered from the duplicate cache. Refused before any
 * sample runs: n = 0 or n > SB_MAX_BATCH (SB_EINVAL, detail n); a malformed
 * item or one with other flags (SB_ELEN/SB_EINVAL, detail its index); more
 * than SB_MAX_STEPS steps in all (SB_EINVAL, detail the index of the item over
 * the budget: a batch does at most the work of one INFER, inside the
 * watchdog); an answer longer than SB_MAX_PAYLOAD (SB_ELEN, detail the bytes
 * it would need). */
#define SB_INFER_BATCH_FLAGS (SB_INFER_RESET | SB_INFER_LEVELS)

/* PULSE request: apply `count` pulses of `polarity` (+1 P, -1 D, 0 hold) to
 * each of n cells starting at `first`. Response: u16 g[n] afterwards. */
typedef struct {
    uint16_t first;
    uint16_t n;
    uint16_t count;
    int8_t polarity;
    uint8_t reserved;
} sb_msg_pulse_t;
_Static_assert(sizeof(sb_msg_pulse_t) == 8, "wire struct");

/* COUNTERS response: sb_counters_t (see dev.h) then server statistics. */
#define SB_COUNTERS_CLEAR 0x01

/* RESET request: u8 what */
#define SB_RESET_NEURONS 0x01
#define SB_RESET_CHIP    0x02  /* re-apply configuration: fresh cells */
#define SB_RESET_BOARD   0x04  /* reboot the MCU (firmware only) */

/* AGE request: u32 seconds */

/* EVENT frame body (SB_CMD_EVENT, SB_F_EVENT, numbered with the counts
 * frames): sb_msg_event_t, then n x sb_event_t. */
typedef struct {
    uint16_t n;               /* events in this frame */
    uint16_t reserved;        /* 0 */
    uint32_t overflow;        /* events lost since the board started (a running total) */
} sb_msg_event_t;
_Static_assert(sizeof(sb_msg_event_t) == 8, "wire struct");

typedef struct {
    uint32_t t_us;            /* board time when the ISR took the event */
    uint32_t step;            /* time step counter */
    uint32_t mask;            /* neurons of `layer` that fired in that step */
    uint8_t layer;
    uint8_t pad[3];
} sb_event_t;
_Static_assert(sizeof(sb_event_t) == 16, "wire struct");
#define SB_EVENTS_PER_FRAME ((SB_MAX_PAYLOAD - sizeof(sb_msg_event_t)) / sizeof(sb_event_t))

/* COUNTS frame body (SB_CMD_COUNTS, SB_F_EVENT, numbered with the event
 * frames): sb_msg_counts_t, then for each layer l < layers, neurons[l] x
 * u16 fire counts (neuron 0 first) over the window's steps. */
typedef struct {
    uint32_t step0;           /* board step counter at the window's first step */
    uint16_t steps;           /* steps in this window */
    uint8_t layers;
    uint8_t reserved;
    uint8_t neurons[4];       /* neurons of each layer (0 beyond `layers`) */
} sb_msg_counts_t;
_Static_assert(sizeof(sb_msg_counts_t) == 12, "wire struct");
_Static_assert(SB_MAX_LAYERS <= 4, "sb_msg_counts_t.neurons");

/* ERROR body */
typedef struct {
    int16_t code;
    uint8_t cmd;
    uint8_t reserved;
    uint32_t detail;          /* e.g. offending index or length */
} sb_msg_error_t;
_Static_assert(sizeof(sb_msg_error_t) == 8, "wire struct");

/* ---- codec ---- */
uint32_t sb_crc32(uint32_t crc, const uint8_t *buf, size_t n);
/* COBS-encode src into dst (room: n + n/254 + 1); returns encoded length, no delimiter. */
size_t sb_cobs_encode(const uint8_t *src, size_t n, uint8_t *dst);
/* Decode in place-safe to dst; returns decoded length or SB_EFRAME. */
int sb_cobs_decode(const uint8_t *src, size_t n, uint8_t *dst);

/* Build a complete wire frame (COBS + trailing 0x00) into out (>= SB_MAX_FRAME);
 * returns its length or a negative code. */
int sb_frame_encode(uint8_t cmd, uint8_t flags, uint16_t seq,
                    const uint8_t *payload, size_t n, uint8_t *out);

/* Parse one frame's COBS bytes (without the delimiter). On success fills the
 * header fields and copies the payload; returns payload length. */
int sb_frame_decode(const uint8_t *enc, size_t n, uint8_t *cmd, uint8_t *flags,
                    uint16_t *seq, uint8_t *payload, size_t cap);

/* Byte-at-a-time receiver: collects bytes up to the 0x00 delimiter. */
typedef struct {
    uint8_t buf[SB_MAX_FRAME];
    size_t len;
    uint8_t overflow;        /* frame too long: discard until the next delimiter */
} sb_cobs_rx_t;
void sb_cobs_rx_init(sb_cobs_rx_t *rx);
/* Returns 1 when buf[0..len) holds a complete encoded frame, 0 to go on,
 * SB_EOVERSIZE once when a frame was dropped for length. */
int sb_cobs_rx_push(sb_cobs_rx_t *rx, uint8_t byte);

#endif
