/* Host build of hal/ under AddressSanitizer + UndefinedBehaviorSanitizer
 * (gcc -fsanitize=address,undefined -fno-sanitize-recover=all): the same C the
 * firmware and the cffi module run, driven two ways.
 *
 *   1. every file named on the command line goes through the fuzz harness's
 *      entry point (tests/fuzz/fuzz_server.c, linked in): the seed corpus and
 *      the regression inputs, i.e. every wire command in every board mode;
 *   2. the chip model through the device controller, on both parameter blocks
 *      of tests/fuzz/params.inc (spec 32x32 binary; rram 16x16x3 differential
 *      with pulse-width levels): write-verify programming of every cell,
 *      characterize-like pulse schemes (staircases up and down to saturation,
 *      per-cell update counts, reads after each), inference (single runs,
 *      batches, membrane read-out), training with every rule, retention,
 *      the device image (checkpoint and restore), energy and counters, and the
 *      argument checks at the edges (first+n past the end, zero lengths).
 *
 * Exit 0 and one summary line when clean; a sanitizer report aborts the run.
 * Built and run by tests/sanitize/run.py (and tests/test_hygiene.py). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb/chip.h"
#include "sb/dev.h"
#include "sb/errors.h"
#include "sb/learn.h"
#include "sb/params.h"
#include "params.inc"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern unsigned long fuzz_answers[256], fuzz_errors, fuzz_events, fuzz_frames_out;

static unsigned long checks;

#define CHECK(cond) do { checks++; if (!(cond)) { \
    fprintf(stderr, "sanitize driver: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); exit(2); } } while (0)

static uint32_t rng_state = 12345u;
static uint32_t rnd(void) {   /* xorshift32: the driver's own inputs, not the model's RNG */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return -1; }
    static uint8_t buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    /* a heap copy of exactly n bytes, so ASan sees any read past the input */
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy) return -1;
    memcpy(copy, buf, n);
    LLVMFuzzerTestOneInput(copy, n);
    free(copy);
    return 0;
}

static void spikes(const sb_params_t *p, uint16_t steps, uint8_t *in, unsigned density_pct) {
    for (size_t i = 0; i < (size_t)steps * p->rows; i++) {
        unsigned on = rnd() % 100u < density_pct;
        in[i] = on ? (uint8_t)(p->pre_levels > 1 ? 1u + rnd() % p->pre_levels : 1u) : 0u;
    }
}

static void chip_session(const uint8_t *block, const char *name) {
    static sb_chip_t chip;
    static sb_dev_t dev;
    sb_params_t p;
    memcpy(&p, block, sizeof p);
    memset(&chip, 0, sizeof chip);
    sb_dev_init(&dev, sb_chip_port(&chip, NULL));
    CHECK(sb_dev_configure(&dev, &p) == SB_OK);
    const uint16_t cells = sb_dev_cells(&dev);
    CHECK(cells == (uint16_t)(p.rows * p.cols * p.layers));
    static uint16_t g[SB_MAX_CELLS], target[SB_MAX_CELLS];
    static uint8_t used[SB_MAX_CELLS];
    static int8_t counts[SB_MAX_CELLS];
    static uint8_t in[SB_MAX_STEPS * SB_MAX_ROWS * 4];
    static uint32_t masks[SB_MAX_STEPS * 4];
    int32_t v[SB_MAX_NEURONS * 4];

    /* read-back and the argument checks at the edges */
    CHECK(sb_dev_read(&dev, 0, cells, g) == SB_OK);
    CHECK(sb_dev_read(&dev, (uint16_t)(cells - 1), 2, g) < 0);
    CHECK(sb_dev_read(&dev, cells, 1, g) < 0);
    CHECK(sb_dev_pulse(&dev, (uint16_t)(cells - 2), 3, 1, 1) < 0);
    CHECK(sb_dev_cell_index(&dev, p.layers, 0, 0) < 0);
    CHECK(sb_dev_cell_index(&dev, 0, p.rows, 0) < 0);
    CHECK(sb_dev_cell_index(&dev, 0, 0, p.cols) < 0);
    CHECK(sb_dev_cell_index(&dev, (uint8_t)(p.layers - 1), (uint8_t)(p.rows - 1), (uint8_t)(p.cols - 1)) == cells - 1);

    /* write-verify programming: every cell, random targets, then the extremes */
    for (uint16_t i = 0; i < cells; i++) target[i] = (uint16_t)rnd();
    uint32_t total = 0;
    CHECK(sb_dev_program(&dev, 0, cells, target, 400, 30, used, &total) >= 0);
    for (uint16_t i = 0; i < cells; i++) target[i] = (i & 1) ? 0xffffu : 0u;
    CHECK(sb_dev_program(&dev, 0, cells, target, 0, 255, NULL, NULL) >= 0);
    CHECK(sb_dev_program(&dev, (uint16_t)(cells - 1), 2, target, 0, 1, NULL, NULL) < 0);

    /* characterize-like pulse schemes: staircases to saturation both ways */
    for (int8_t pol = 1; pol >= -1; pol -= 2) {
        for (uint16_t k = 0; k < 12; k++) {
            CHECK(sb_dev_pulse(&dev, 0, cells, pol, (uint16_t)(1u << (k % 8))) == SB_OK);
            CHECK(sb_dev_read(&dev, 0, cells, g) == SB_OK);
        }
    }
    CHECK(sb_dev_pulse(&dev, 0, cells, 0, 5) == SB_OK);          /* hold */
    CHECK(sb_dev_pulse(&dev, 3, 1, 1, 0xffffu) == SB_OK);        /* a long train on one cell */
    for (uint16_t i = 0; i < cells; i++) counts[i] = (int8_t)(rnd() % 255u - 127);
    CHECK(sb_dev_update(&dev, 0, cells, counts) == SB_OK);
    CHECK(sb_dev_update(&dev, cells, 1, counts) < 0);
    for (uint16_t i = 0; i < cells; i += 7) CHECK(sb_chip_pulse(&chip, i, (int8_t)((i & 2) ? 1 : -1)) == SB_OK);

    /* inference: single runs of 1..SB_MAX_STEPS steps, a batch, membranes */
    const uint16_t lens[] = {1, 2, 17, SB_MAX_STEPS};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        spikes(&p, lens[k], in, 10u + 20u * (unsigned)k);
        CHECK(sb_dev_reset_neurons(&dev) == SB_OK);
        CHECK(sb_dev_run(&dev, lens[k], in, masks, v) == SB_OK);
        uint32_t step_mask[SB_MAX_LAYERS];
        CHECK(sb_dev_step(&dev, in, step_mask) == SB_OK);
    }
    spikes(&p, 16, in, 50);
    CHECK(sb_dev_run_batch(&dev, 4, 4, in, masks, v) == SB_OK);
    CHECK(dev.port->neurons(dev.port->ctx, (uint8_t)(p.layers - 1), v, NULL) == SB_OK);

    /* training: every rule, labels over every neuron and one past */
    const uint8_t nn = dev.neurons[p.layers - 1];
    sb_train_result_t res;
    for (uint8_t rule = 0; rule < SB_RULE_COUNT; rule++) {
        for (uint32_t sample = 0; sample < 6; sample++) {
            sb_train_req_t tr = {(uint16_t)(4 + sample * 5), (uint8_t)(rnd() % nn), rule,
                                 (uint16_t)(sample % 3), (uint8_t)(1 + sample), 1, 1000u * rule + sample};
            spikes(&p, tr.steps, in, 30);
            CHECK(sb_learn_train(&dev, &tr, in, &res) == SB_OK);
            CHECK(res.neurons == nn);
        }
        sb_train_req_t bad = {4, nn, rule, 1, 1, 1, 1};
        spikes(&p, 4, in, 30);
        CHECK(sb_learn_train(&dev, &bad, in, &res) < 0);
    }
    sb_train_req_t badrule = {4, 0, SB_RULE_COUNT, 1, 1, 1, 1};
    CHECK(sb_learn_train(&dev, &badrule, in, &res) < 0);

    /* retention, the device image (checkpoint, scribble, restore), energy */
    CHECK(sb_dev_age(&dev, 0) == SB_OK);
    CHECK(sb_dev_age(&dev, 3600) == SB_OK);
    CHECK(sb_dev_age(&dev, 0xffffffffu) == SB_OK);
    const uint32_t isz = sb_dev_image_size(&dev);
    CHECK(isz > 0);
    uint8_t *img = malloc(isz), *junk = malloc(isz);
    CHECK(img && junk);
    for (uint32_t off = 0; off < isz; off += 1000) {
        uint16_t n = (uint16_t)(isz - off < 1000 ? isz - off : 1000);
        CHECK(sb_dev_image(&dev, off, img + off, n, 0) == SB_OK);
    }
    CHECK(sb_dev_image(&dev, isz - 1, img, 2, 0) < 0);
    CHECK(sb_dev_image(&dev, isz, img, 1, 0) < 0);
    CHECK(sb_dev_image(&dev, 0xfffffff0u, img, 100, 0) < 0);
    for (uint32_t i = 0; i < isz; i++) junk[i] = (uint8_t)rnd();
    (void)sb_dev_image(&dev, 0, junk, (uint16_t)(isz < 1000 ? isz : 1000), 1);   /* may be refused: no crash */
    for (uint32_t off = 0; off < isz; off += 1000) {
        uint16_t n = (uint16_t)(isz - off < 1000 ? isz - off : 1000);
        CHECK(sb_dev_image(&dev, off, img + off, n, 1) == SB_OK);
    }
    for (uint32_t off = 0; off < isz; off += 1000) {
        uint16_t n = (uint16_t)(isz - off < 1000 ? isz - off : 1000);
        CHECK(sb_dev_image(&dev, off, junk + off, n, 0) == SB_OK);
    }
    CHECK(memcmp(img, junk, isz) == 0);
    free(img);
    free(junk);
    sb_energy_t e;
    sb_dev_energy(&dev, &e);
    CHECK(e.total_aj >= e.read_aj);
    sb_dev_clear_counters(&dev);
    CHECK(dev.cnt.reads == 0);
    CHECK(sb_exp_neg_q16(0, 1) == 65536u && sb_exp_neg_q16(1, 0) == 0u && sb_exp_neg_q16(~0ull, 1) == 0u);
    printf("[sanitize] %s: %u cells, image %u bytes, energy %llu aJ\n", name, (unsigned)cells, (unsigned)isz,
           (unsigned long long)e.total_aj);
}

int main(int argc, char **argv) {
    int files = 0;
    for (int i = 1; i < argc; i++) {
        if (run_file(argv[i])) return 2;
        files++;
    }
    chip_session(fuzz_params_a, "spec 32x32");
    chip_session(fuzz_params_b, "rram 16x16x3 levels");
    unsigned long answers = 0;
    for (int c = 0; c < 256; c++) answers += fuzz_answers[c];
    printf("[sanitize] clean: %d wire inputs (%lu frames out: %lu answers, %lu errors, %lu events), %lu checks\n",
           files, fuzz_frames_out, answers, fuzz_errors, fuzz_events, checks);
    return 0;
}
