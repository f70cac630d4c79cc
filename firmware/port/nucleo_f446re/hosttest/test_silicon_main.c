/* Host driver of the silicon port against fake_regs.c; run by
 * tests/test_silicon_port.py, which checks the printed register traces.
 * usage: test_silicon <params.bin> <scenario>
 * Output lines: "W addr value" / "R addr value" (the trace of the scenario),
 * then scenario results "<key> <values...>". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb/dev.h"
#include "sb/errors.h"
#include "silicon.h"

typedef struct { char op; uint32_t addr, val; } fake_log_t;
typedef struct { uint32_t v[4096]; int head, tail; } fake_q_t;
typedef struct { uint8_t layer; uint32_t step, mask; } fake_event_t;
extern fake_log_t fake_log[];
extern int fake_nlog;
extern fake_q_t fake_adc, fake_spi3, fake_i2c;
extern uint32_t fake_time_us;
extern fake_event_t fake_events[];
extern int fake_nevents;
void fake_push(fake_q_t *q, uint32_t v);
void fake_set(uint32_t addr, uint32_t v);
uint32_t fake_get(uint32_t addr);
void fake_reset(void);
uint64_t fw_silicon_energy_from_samples(uint16_t p0, uint16_t p1, uint32_t dt_us);

static void dump_log(void)
{
    for (int i = 0; i < fake_nlog; i++)
        printf("%c %08x %x\n", fake_log[i].op, (unsigned)fake_log[i].addr, (unsigned)fake_log[i].val);
    fake_nlog = 0;
}

static void ina_power(uint16_t raw) { fake_push(&fake_i2c, raw >> 8); fake_push(&fake_i2c, raw & 0xFF); }

int main(int argc, char **argv)
{
    if (argc < 3) return 2;
    static uint8_t buf[4096];
    FILE *f = fopen(argv[1], "rb");
    if (!f) return 2;
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    sb_params_t p;
    if (sb_params_decode(&p, buf, n)) return 3;
    const char *sc = argv[2];

    fake_reset();
    fake_time_us = 1000;
    ina_power(0);                       /* the first power sample at init */
    fw_silicon_init();
    if (!strcmp(sc, "init")) {
        dump_log();
        printf("pm_ok %u\n", fw_silicon.pm_ok);
        return 0;
    }
    static sb_dev_t dev;
    sb_dev_init(&dev, fw_silicon_port());
    int rc = sb_dev_configure(&dev, &p);
    printf("configure %d\n", rc);
    printf("precomputed %u %u %u %u %u\n", fw_silicon.dac_prog, fw_silicon.dac_read, fw_silicon.arr_prog,
           fw_silicon.arr_read, (unsigned)fw_silicon.adc_to_g_q8);
    fake_nlog = 0;
    if (!strcmp(sc, "program")) {
        /* two potentiation pulses on (layer 0, row 3, col 7), then one depression on col 8 */
        int cell = sb_dev_cell_index(&dev, 0, 3, 7);
        rc = sb_dev_pulse(&dev, (uint16_t)cell, 1, +1, 2);
        printf("---\n");
        int rc2 = sb_dev_pulse(&dev, (uint16_t)(cell + 1), 1, -1, 1);
        dump_log();
        printf("rc %d %d\n", rc, rc2);
        printf("counters %llu %llu\n", (unsigned long long)dev.cnt.pot, (unsigned long long)dev.cnt.dep);
    } else if (!strcmp(sc, "read_row")) {
        /* read back the conductances of row 5: column then reference, per cell */
        for (int c = 0; c < p.cols; c++) { fake_push(&fake_adc, 1000u + 90u * (uint32_t)c); fake_push(&fake_adc, 100u); }
        uint16_t g[64];
        int first = sb_dev_cell_index(&dev, 0, 5, 0);
        rc = sb_dev_read(&dev, (uint16_t)first, p.cols, g);
        dump_log();
        printf("rc %d\n", rc);
        printf("g");
        for (int c = 0; c < p.cols; c++) printf(" %u", g[c]);
        printf("\n");
    } else if (!strcmp(sc, "spikes")) {
        /* an inference step: the spike vector's rows pulse, SPIKE_ANY rises during it,
         * EXTI1 reads the latch and pushes the event; SAMPLE closes the window */
        fake_set(SIL_EXTI_PR, 1u << 1);
        fake_push(&fake_spi3, 0x01); fake_push(&fake_spi3, 0x00); fake_push(&fake_spi3, 0x80); fake_push(&fake_spi3, 0x00);
        EXTI1_IRQHandler();
        printf("pr_after %u\n", (unsigned)fake_get(SIL_EXTI_PR));
        EXTI1_IRQHandler();             /* not pending: nothing happens */
        uint8_t in[32] = {0};
        in[2] = 1; in[9] = 1;
        uint32_t out[3];
        rc = sb_dev_step(&dev, in, out);
        dump_log();
        printf("rc %d\n", rc);
        printf("events %d", fake_nevents);
        for (int i = 0; i < fake_nevents; i++) printf(" %u:%u:%u", fake_events[i].layer, (unsigned)fake_events[i].step, (unsigned)fake_events[i].mask);
        printf("\n");
        printf("fired %u\n", (unsigned)out[0]);
        printf("fired_after %u\n", (unsigned)fw_silicon.fired_acc);
    } else if (!strcmp(sc, "energy")) {
        printf("trapezoid %llu\n", (unsigned long long)fw_silicon_energy_from_samples(400, 600, 1000));
        /* power samples at each op batch and at the end of the window */
        fw_silicon.pm_last_raw = 400;
        fw_silicon.pm_last_us = 2000;
        fake_time_us = 4000;            /* exec: sample 600 at t=4000 */
        ina_power(600);
        int cell = sb_dev_cell_index(&dev, 0, 0, 0);
        rc = sb_dev_pulse(&dev, (uint16_t)cell, 1, +1, 1);
        fake_nlog = 0;
        fake_time_us = 4500;            /* within one conversion period: no I2C */
        int rc2 = sb_dev_pulse(&dev, (uint16_t)cell, 1, +1, 1);
        int i2c = 0;
        for (int i = 0; i < fake_nlog; i++) i2c += (fake_log[i].addr & 0xFFFFFC00u) == SIL_I2C1;
        printf("i2c_within_period %d %d\n", i2c, rc2);
        fake_time_us = 5000;            /* window end: sample 200 at t=5000 */
        ina_power(200);
        uint64_t e = fw_silicon_energy_aj();
        printf("rc %d\n", rc);
        printf("window %llu\n", (unsigned long long)e);
        printf("again %llu\n", (unsigned long long)fw_silicon_energy_aj());
    }
    return 0;
}
