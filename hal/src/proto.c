/* Wire codec: CRC-32, COBS framing, frame headers. */
#include <string.h>
#include "sb/proto.h"
#include "sb/errors.h"

/* Nibble table: 64 bytes of flash instead of 1 KB. */
static const uint32_t crc_nib[16] = {
    0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu, 0x76dc4190u, 0x6b6b51f4u,
    0x4db26158u, 0x5005713cu, 0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu,
    0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu};

uint32_t sb_crc32(uint32_t crc, const uint8_t *buf, size_t n) {
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= buf[i];
        crc = (crc >> 4) ^ crc_nib[crc & 15u];
        crc = (crc >> 4) ^ crc_nib[crc & 15u];
    }
    return ~crc;
}

size_t sb_cobs_encode(const uint8_t *src, size_t n, uint8_t *dst) {
    size_t code_at = 0, out = 1;
    uint8_t code = 1;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == 0) {
            dst[code_at] = code;
            code_at = out++;
            code = 1;
        } else {
            dst[out++] = src[i];
            if (++code == 0xff) {
                dst[code_at] = code;
                code_at = out++;
                code = 1;
            }
        }
    }
    dst[code_at] = code;
    return out;
}

int sb_cobs_decode(const uint8_t *src, size_t n, uint8_t *dst) {
    size_t i = 0, out = 0;
    while (i < n) {
        uint8_t code = src[i++];
        if (code == 0) return SB_EFRAME;
        if (i + code - 1u > n) return SB_EFRAME;
        for (uint8_t k = 1; k < code; k++) {
            if (src[i] == 0) return SB_EFRAME;
            dst[out++] = src[i++];
        }
        if (code != 0xff && i < n) dst[out++] = 0;
    }
    return (int)out;
}

int sb_frame_encode(uint8_t cmd, uint8_t flags, uint16_t seq,
                    const uint8_t *payload, size_t n, uint8_t *out) {
    if (n > SB_MAX_PAYLOAD) return SB_EOVERSIZE;
    uint8_t raw[SB_MAX_RAW];
    raw[0] = cmd;
    raw[1] = flags;
    raw[2] = (uint8_t)(seq & 0xffu);
    raw[3] = (uint8_t)(seq >> 8);
    if (n) memcpy(raw + SB_HDR_LEN, payload, n);
    uint32_t crc = sb_crc32(0, raw, SB_HDR_LEN + n);
    for (int k = 0; k < 4; k++) raw[SB_HDR_LEN + n + (size_t)k] = (uint8_t)(crc >> (8 * k));
    size_t len = sb_cobs_encode(raw, SB_HDR_LEN + n + SB_CRC_LEN, out);
    out[len++] = 0;
    return (int)len;
}

int sb_frame_decode(const uint8_t *enc, size_t n, uint8_t *cmd, uint8_t *flags,
                    uint16_t *seq, uint8_t *payload, size_t cap) {
    uint8_t raw[SB_MAX_FRAME];   /* COBS never decodes longer than its input */
    if (n > SB_MAX_FRAME) return SB_EOVERSIZE;
    int len = sb_cobs_decode(enc, n, raw);
    if (len < 0) return len;
    if ((size_t)len > SB_MAX_RAW) return SB_EOVERSIZE;
    if (len < SB_HDR_LEN + SB_CRC_LEN) return SB_EFRAME;
    size_t body = (size_t)len - SB_CRC_LEN;
    uint32_t want = (uint32_t)raw[body] | ((uint32_t)raw[body + 1] << 8) |
                    ((uint32_t)raw[body + 2] << 16) | ((uint32_t)raw[body + 3] << 24);
    *cmd = raw[0];
    *flags = raw[1];
    *seq = (uint16_t)(raw[2] | (raw[3] << 8));
    if (sb_crc32(0, raw, body) != want) return SB_ECRC;
    size_t plen = body - SB_HDR_LEN;
    if (plen > cap) return SB_EOVERSIZE;
    if (plen) memcpy(payload, raw + SB_HDR_LEN, plen);
    return (int)plen;
}

void sb_cobs_rx_init(sb_cobs_rx_t *rx) {
    rx->len = 0;
    rx->overflow = 0;
}

int sb_cobs_rx_push(sb_cobs_rx_t *rx, uint8_t byte) {
    if (byte == 0) {
        if (rx->overflow) { rx->overflow = 0; rx->len = 0; return SB_EOVERSIZE; }
        return rx->len ? 1 : 0;   /* empty frames (repeated delimiters) are ignored */
    }
    if (rx->overflow) return 0;
    if (rx->len >= sizeof rx->buf) { rx->overflow = 1; return 0; }
    rx->buf[rx->len++] = byte;
    return 0;
}
