"""The nucleo_f446re silicon port (firmware/port/nucleo_f446re/silicon.c)
against a register-level fake, on the host: the port's C file is compiled
with gcc and -D SIL_HOST_FAKE, so every register access goes to
firmware/port/nucleo_f446re/hosttest/fake_regs.c, which logs it; the hal
device controller (dev.c) drives the port as the firmware does. Nothing here
needs a board: the traces are checked against the pin map
(boards/nucleo_f446re/pins.md) and the STM32F446 register layout."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PORT = ROOT / "firmware" / "port" / "nucleo_f446re"

GPIOA, GPIOB, GPIOC = 0x40020000, 0x40020400, 0x40020800
BSRR = 0x18
SPI2_DR, SPI3_DR = 0x4000380C, 0x40003C0C
TIM1_CR1, TIM1_ARR = 0x40010000, 0x4001002C
ADC_CR2, ADC_SQR3 = 0x40012008, 0x40012034
I2C1_DR = 0x40005410
EXTI_PR, EXTI_IMR, EXTI_RTSR, SYSCFG_EXTICR1, NVIC_ISER0 = 0x40013C14, 0x40013C00, 0x40013C08, 0x40013808, 0xE000E100

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    from spikeboard.cards import compile_card, load, params_bytes

    d = tmp_path_factory.mktemp("silicon")
    exe = d / "test_silicon"
    srcs = [PORT / "silicon.c", *sorted((PORT / "hosttest").glob("*.c")),
            *(ROOT / "hal" / "src" / f for f in ("dev.c", "params.c", "proto.c"))]
    cmd = ["gcc", "-std=c99", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-DSIL_HOST_FAKE",
           f"-I{ROOT / 'hal' / 'include'}", f"-I{ROOT / 'hal' / 'src'}", f"-I{PORT}", f"-I{ROOT / 'firmware' / 'src'}",
           *map(str, srcs), "-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    p = compile_card(load("spec"), "32x32", differential=False, seed=0)
    pf = d / "params.bin"
    pf.write_bytes(params_bytes(p))

    def run(scenario: str):
        r = subprocess.run([str(exe), str(pf), scenario], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        trace, info = [], {}
        for line in r.stdout.splitlines():
            parts = line.split()
            if parts and parts[0] in ("R", "W"):
                trace.append((parts[0], int(parts[1], 16), int(parts[2], 16)))
            elif parts:
                info[parts[0]] = parts[1:]
        return trace, info
    return run, p


def writes(trace, addr=None):
    return [(a, v) for op, a, v in trace if op == "W" and (addr is None or a == addr)]


def addr_word(row, col):
    a = row | (col << 5)
    return a | ((~a & 0x3FF) << 16)


def expected_codes(p):
    v_op = p.v_op_mv_div10 * 10
    dac_prog = min(65535, v_op * 65535 // 2500)
    dac_read = min(65535, (v_op // 5) * 65535 // 2500)

    def ticks(ps):
        t = (ps * 180 + 999999) // 1000000
        return max(2, min(65535, t))
    adc_to_g_q8 = ((p.g_max * 100 // 80) << 8) // 4095
    return dac_prog, dac_read, ticks(p.t_prog_ps), ticks(p.t_read_ps), adc_to_g_q8


def test_init_sets_up_pins_exti_and_power_monitor(harness):
    run, _ = harness
    trace, info = run("init")
    assert info["pm_ok"] == ["1"]
    w = writes(trace)
    # SPIKE_ANY: PB1 -> EXTI1, rising edge, unmasked, NVIC IRQ 7 enabled
    assert (SYSCFG_EXTICR1, 0x10) in w
    assert any(a == EXTI_RTSR and v & 2 for a, v in w) and any(a == EXTI_IMR and v & 2 for a, v in w)
    assert (NVIC_ISER0, 1 << 7) in w
    # INA226 at 0x40: CONFIG (0x00) = 0x4207, CALIBRATION (0x05) = 51200
    i2c = [v for a, v in w if a == I2C1_DR]
    assert i2c[:8] == [0x80, 0x00, 0x42, 0x07, 0x80, 0x05, 0xC8, 0x00]
    # address bus PC0..PC9 as outputs
    moder_c = [v for a, v in w if a == GPIOC][-1]
    assert all((moder_c >> (2 * k)) & 3 == 1 for k in range(10))


def test_program_pulse_gpio_dac_timer(harness):
    run, p = harness
    trace, info = run("program")
    dac_prog, _, arr_prog, _, _ = expected_codes(p)
    assert info["precomputed"][:3] == [str(dac_prog), str(expected_codes(p)[1]), str(arr_prog)]
    assert info["rc"] == ["0", "0"] and info["counters"] == ["2", "1"]
    w = [(a, v) for a, v in writes(trace) if a != I2C1_DR and (a & 0xFFFFFC00) != 0x40005400]
    seq = [
        (GPIOC + BSRR, addr_word(3, 7)),           # row 3, column 7 in one write
        (GPIOA + BSRR, (3 << 11) << 16),           # layer 0
        (GPIOB + BSRR, (1 << 4) | (1 << 5)),       # polarity +, half-select on
        (GPIOB + BSRR, 1 << (12 + 16)),            # DAC CS low
        (SPI2_DR, 0x10), (SPI2_DR, dac_prog >> 8), (SPI2_DR, dac_prog & 0xFF),
        (GPIOB + BSRR, 1 << 12),                   # CS high
        (GPIOB + BSRR, 1 << (14 + 16)), (GPIOB + BSRR, 1 << 14),   # LDAC pulse
        (TIM1_ARR, arr_prog),
        (TIM1_CR1, 0x9), (TIM1_CR1, 0x9),          # two one-pulse starts (OPM | CEN)
        (GPIOB + BSRR, 1 << (5 + 16)),             # half-select off
        # second op: depression on column 8; amplitude and width unchanged: no SPI, no ARR
        (GPIOC + BSRR, addr_word(3, 8)),
        (GPIOB + BSRR, (1 << (4 + 16)) | (1 << 5)),
        (TIM1_CR1, 0x9),
        (GPIOB + BSRR, 1 << (5 + 16)),
    ]
    it = iter(w)
    for want in seq:   # in order, other writes (CCR1, EGR) may sit in between
        assert any(got == want for got in it), f"missing {want[0]:#x} <- {want[1]:#x}"
    second = w[w.index((GPIOC + BSRR, addr_word(3, 8))):]
    assert not any(a in (SPI2_DR, TIM1_ARR) for a, _ in second)


def test_row_read_through_adc(harness):
    run, p = harness
    trace, info = run("read_row")
    _, dac_read, _, _, q8 = expected_codes(p)
    assert info["rc"] == ["0"]
    g = [int(x) for x in info["g"]]
    want = [min(65535, ((900 + 90 * c) * q8) >> 8) for c in range(p.cols)]
    assert g == want
    w = writes(trace)
    # each cell: its column on the mux, COL_SENSE (IN0) then VREF_SENSE (IN1) converted
    addrs = [v for a, v in w if a == GPIOC + BSRR]
    assert addrs == [addr_word(5, c) for c in range(p.cols)]
    sqr = [v for a, v in w if a == ADC_SQR3]
    assert sqr == [0, 1] * p.cols
    assert sum(1 for a, v in w if a == ADC_CR2 and v & (1 << 30)) == 2 * p.cols
    spi = [v for a, v in w if a == SPI2_DR]
    assert spi == [0x10, dac_read >> 8, dac_read & 0xFF]     # read amplitude set once
    reads = [v for op, a, v in trace if op == "R" and a == 0x4001204C]
    assert len(reads) == 2 * p.cols


def test_exti_spikes_into_the_event_path(harness):
    run, _ = harness
    trace, info = run("spikes")
    mask = 0x00800001                      # latch bytes 01 00 80 00, LSB first
    assert info["pr_after"] == ["0"]       # pending bit cleared (write 1)
    assert info["events"] == ["1", f"0:0:{mask}"]   # one event, layer 0, step 0; second call not pending
    assert info["fired"] == [str(mask)] and info["fired_after"] == ["0"]
    assert info["rc"] == ["0"]
    w = writes(trace)
    # latch read: SPK_LOAD low then high, four SPI3 bytes
    assert w[:3] == [(EXTI_PR, 2), (GPIOA + BSRR, 1 << 31), (GPIOA + BSRR, 1 << 15)]
    assert [a for a, _ in w[3:7]] == [SPI3_DR] * 4
    # the step's spike vector (rows 2 and 9): one gated read pulse per row
    rows = [v for a, v in w if a == GPIOC + BSRR]
    assert rows == [addr_word(2, 0), addr_word(9, 0)]
    assert sum(1 for a, v in w if a == TIM1_CR1 and v == 9) == 2
    assert sum(1 for a, v in w if a == GPIOB + BSRR and v == 1) == 2     # ROW_EN on per row


def test_ina226_energy(harness):
    run, _ = harness
    _, info = run("energy")
    # (400 + 600) / 2 x 25 uW x 1 ms = 12.5 nJ = 1.25e13 aJ
    assert info["trapezoid"] == [str(12_500_000_000_000)]
    # window: 400 -> 600 over 2 ms, then 600 -> 200 over 1 ms
    assert int(info["window"][0]) == 1000 * 12_500_000 * 2000 + 800 * 12_500_000 * 1000
    assert info["again"] == ["0"]
    assert info["i2c_within_period"] == ["0", "0"]      # no I2C read within one conversion period
    assert info["rc"] == ["0"]


def test_silicon_env_builds():
    """The silicon image builds (pio run -e nucleo_f446re_silicon)."""
    import os
    import sys

    pio = Path(sys.executable).with_name("pio")
    if not pio.exists() or shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("needs PlatformIO in the venv and arm-none-eabi-gcc")
    r = subprocess.run([str(pio), "run", "-s", "-e", "nucleo_f446re_silicon"], cwd=ROOT, capture_output=True,
                       text=True, env=dict(os.environ, PLATFORMIO_SETTING_ENABLE_TELEMETRY="No"), timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert (ROOT / ".pio" / "build" / "nucleo_f446re_silicon" / "firmware.elf").is_file()


def test_measured_energy_reported_beside_model():
    """A counters frame with measured supply energy shows it beside the model."""
    from spikeboard.backends.base import Counters
    from spikeboard.cards import compile_card, load
    from spikeboard.energy import energy_report, format_report

    p = compile_card(load("spec"), "32x32", differential=False, seed=0)
    c = Counters(fires=10, updates=3200, reads=20480, pot=0, dep=0, pre=640, post=3200, time_ps=0, steps=100,
                 samples=0, measured_aj=5_000_000)
    r = energy_report(p, c)
    assert r.measured_fj == 5000.0 and "measured" in r.source
    assert r.measured_fj_per_op["neuron"] == pytest.approx(5000.0 / 3210)
    text = format_report(r)
    assert "measured (supply)" in text
    r0 = energy_report(p, Counters(*([1] * 10)))
    assert r0.measured_fj is None and "measured (supply)" not in format_report(r0)
