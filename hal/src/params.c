/* The parameter block: range checks and wire encoding. */
#include <string.h>
#include "sb/params.h"
#include "sb/errors.h"

#define CHECK(cond, name) do { if (!(cond)) { if (field) *field = name; return SB_ECONFIG; } } while (0)

int sb_params_check(const sb_params_t *p, const char **field) {
    CHECK(p->magic == SB_PARAMS_MAGIC, "magic");
    CHECK(p->layers >= 1 && p->layers <= SB_MAX_LAYERS, "layers");
    CHECK(p->rows >= 1 && p->rows <= SB_MAX_ROWS, "rows");
    CHECK(p->cols >= 1 && p->cols <= SB_MAX_COLS, "cols");
    CHECK((uint32_t)p->rows * p->cols * p->layers <= SB_MAX_CELLS, "rows*cols*layers");
    CHECK((p->diff_mask >> p->layers) == 0, "diff_mask");
    for (uint8_t l = 0; l < p->layers; l++) {
        if (p->diff_mask & (1u << l)) CHECK((p->cols & 1u) == 0, "cols (odd on a differential layer)");
    }
    CHECK(p->g_min < p->g_max, "g_min/g_max");
    CHECK(p->g_ref <= p->g_max, "g_ref");
    CHECK(p->g_relax >= p->g_min && p->g_relax <= p->g_max, "g_relax");
    for (int i = 0; i < SB_CURVE_BINS; i++) {
        CHECK(p->step_p[i] > 0, "step_p");
        CHECK(p->step_d[i] > 0, "step_d");
    }
    CHECK(p->v_th > 0, "v_th");
    CHECK(p->v_min <= 0, "v_min");
    CHECK(p->post_sat > 0, "post_sat");
    CHECK(p->post_gain > 0 && p->post_gain <= SB_POST_GAIN_MAX, "post_gain");
    /* membrane arithmetic stays in 32 bits: v < v_th + 2 * post_sat */
    CHECK((int64_t)p->v_th + 2 * (int64_t)p->post_sat < INT32_MAX, "v_th + 2*post_sat");
    CHECK((int64_t)p->v_min - 2 * (int64_t)p->post_sat > INT32_MIN, "v_min - 2*post_sat");
    CHECK(p->post_shift <= 31, "post_shift");
    CHECK(p->reset_mode <= SB_RESET_SUBTRACT, "reset_mode");
    CHECK(p->endurance_mode <= SB_ENDURANCE_STICK, "endurance_mode");
    CHECK(p->pre_levels >= 1 && p->pre_levels <= 15, "pre_levels");
    CHECK((uint32_t)p->stuck_min_q16 + p->stuck_max_q16 + p->stuck_open_q16 <= 65535u, "stuck fractions");
    CHECK(p->t_step_ps > 0, "t_step_ps");
    return SB_OK;
}

uint8_t sb_params_neurons(const sb_params_t *p, uint8_t layer) {
    return (p->diff_mask & (1u << layer)) ? (uint8_t)(p->cols / 2u) : p->cols;
}

/* Both ends of the wire are little-endian (Cortex-M, x86-64, aarch64 hosts);
 * the host side checks its byte order before sending. */
int sb_params_decode(sb_params_t *p, const uint8_t *buf, size_t n) {
    if (n != sizeof(sb_params_t)) return SB_ELEN;
    memcpy(p, buf, sizeof *p);
    return SB_OK;
}

void sb_params_encode(const sb_params_t *p, uint8_t *buf) {
    memcpy(buf, p, sizeof *p);
}
