"""Benchmarks: speed is measured here, never asserted in a test.

`model`: the hot path of every session: a 32x32 array into 32 LIF neurons,
100 time steps per call, input spike probability 0.2; median ns per sample per
time step at batch 1, 32 and 1024, and ns per sample of a one-pulse-per-cell
sign update of the whole array. A plain numpy float32 step of the same
workload is timed beside it for scale, and tiled layers (larger than one
array) beside that."""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from ._hal import ffi, lib
from .backends.model import ModelBackend
from .chip import ChipSpec, compile_chip, open_chip

STEPS = 100


def _median_ns(fn, reps: int) -> float:
    fn()  # warm
    out = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        fn()
        out.append(time.perf_counter_ns() - t0)
    return float(statistics.median(out))


def numpy_step_ns(batch: int, reps: int = 5, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    w = rng.random((32, 32), dtype=np.float32)
    x = (rng.random((batch, STEPS, 32)) < 0.2).astype(np.float32)

    def run():
        v = np.zeros((batch, 32), np.float32)
        for t in range(STEPS):
            v += x[:, t] @ w
            f = v >= 4.0
            v[f] -= 4.0
    return _median_ns(run, reps) / (batch * STEPS)


def _model(spec: ChipSpec) -> ModelBackend:
    """The model backend through the one door (run_masks: the model's raw timing path)."""
    b = open_chip(spec).backend
    assert isinstance(b, ModelBackend)
    return b


def bench_model(card: str = "spec", seed: int = 0, reps: int = 7, compare_numpy: bool = True) -> dict:
    b = _model(ChipSpec(card=card, geometry="32x32", layout="single-ended", seed=seed))
    rng = np.random.default_rng(seed)
    b.program(rng.integers(b.params.g_min, b.params.g_max, b.cells), tolerance=2000, max_pulses=64)
    step_ns = {}
    for batch in (1, 32, 1024):
        x = (rng.random((batch, STEPS, 32)) < 0.2).astype(np.uint8)
        r = reps if batch < 1024 else max(3, reps // 2)
        step_ns[str(batch)] = round(_median_ns(lambda: b.run_masks(x), r) / (batch * STEPS), 2)
    signs = rng.choice(np.array([-1, 1], np.int8), size=b.cells)
    sbuf = ffi.from_buffer("int8_t[]", signs)

    def update():
        lib.sb_dev_update(b._dev, 0, b.cells, sbuf)
    update_ns = round(_median_ns(update, reps * 3), 1)
    out = {"workload": "32x32 array -> 32 LIF neurons, 100 steps/call, p(spike)=0.2",
           "card": card, "step_ns": step_ns, "update_ns": update_ns,
           "tiled": bench_tiled(card, seed, reps)}
    if compare_numpy:
        out["numpy_float32_step_ns"] = {str(bs): round(numpy_step_ns(bs), 2) for bs in (1, 1024)}
    return out


TILED_LAYERS = ((785, 20), (256, 256))   # MNIST pixels + bias -> 10 differential classes; 8 x 8 tiles


def bench_tiled(card: str = "spec", seed: int = 0, reps: int = 7, batch: int = 32) -> dict:
    """ns per sample-step of tiled layers (spikeboard.tiles) at batch 32, same
    input statistics (p = 0.2, 100 steps), and per tile of the grid."""

    rng = np.random.default_rng(seed)
    out = {}
    for rows, cols in TILED_LAYERS:
        t = _model(ChipSpec(card=card, seed=seed, layout="differential" if cols <= 32 else "single-ended",
                            tiled=f"{rows}x{cols}"))
        p, tiles = t.params, t.grid[0] * t.grid[1]
        t.program(rng.integers(p.g_min, p.g_max, t.cells), tolerance=2000, max_pulses=64)
        x = (rng.random((batch, STEPS, rows)) < 0.2).astype(np.uint8)
        ns = _median_ns(lambda: t.run_masks(x), max(3, reps // 2)) / (batch * STEPS)
        out[f"{rows}x{cols}"] = {"tiles": tiles, "step_ns": round(ns, 1), "ns_per_tile": round(ns / tiles, 1)}
    return out


# ---------------------------------------------------------------------------
# firmware: instructions counted in QEMU with -icount
# ---------------------------------------------------------------------------
#
# The bench image (PlatformIO env `bench`: the netduinoplus2 firmware with
# firmware/bench/bench.c as main) runs in `qemu-system-arm -icount shift=0`,
# where each guest instruction advances virtual time by 1 ns and SysTick counts
# that virtual time at the board's nominal clock (168 MHz): 0.168 ticks per
# instruction. The image measures the ratio itself with a loop of known length
# (CALIB line) and every tick count below is divided by it.
#
# The workload is a script of real wire frames built here with the same codec
# as the link (protocol.encode_frame), fed by the image to its command server
# byte by byte; responses and event frames leave through the real UART driver
# into a file (-serial file:), decoded here. Three parts:
#  1. step / event: spec card, 32x32 single-ended, random weights written with
#     PROGRAM; INFER of 100 and of 200 steps at p(spike) = 0.2 -> instructions
#     per step from the difference (frame decode and response cancel out);
#     INFER 200 with event frames and the readout path on, against the same
#     INFER with the chip's fire hook detached (no readout at all) ->
#     instructions per post-neuron event (per fire, and per AER record).
#  2. samples: the digits app's settings (spec card, 32x32 differential,
#     threshold 4.0, 32 steps, compensated rule, target 1, max 32 pulses),
#     inputs rate coded at p = 0.2 (synthetic, seeded): TRAIN and INFER
#     request frames -> instructions and wire bytes per sample.
#  3. pulses, in the image after the script: one +-1 update pulse on every cell
#     (sb_dev_update) and one read of every cell (sb_dev_read) through
#     (a) a port that only takes the ops (the sequencer's own cost),
#     (b) the silicon port on a RAM register block, when built in, and
#     (c) the virtual chip (the chip model's physics included).

BENCH_ENV = "bench"
FW_SHIFT = 0
_TRAIN_SAMPLES = 8
_INFER_SAMPLES = 8
# SB_INFER_COUNTS windows of the aggregated-readout figure (0 = the whole 200-step request)
COUNT_WINDOWS = (0, 50, 10)


def _pio() -> str:
    import shutil
    import sys

    p = Path(sys.executable).with_name("pio")
    return str(p) if p.exists() else (shutil.which("pio") or "pio")


def build_bench_firmware(root=None) -> "Path":
    """Build (incrementally) the bench image; returns its ELF path."""
    import os
    import subprocess

    from .emulator import REPO_ROOT, EmulatorError, find_firmware

    root = root or REPO_ROOT
    env = dict(os.environ, PLATFORMIO_SETTING_ENABLE_TELEMETRY="No")
    r = subprocess.run([_pio(), "run", "-s", "-e", BENCH_ENV], cwd=root, env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise EmulatorError(f"bench firmware build failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return find_firmware(BENCH_ENV, root)


class _Script:
    """Records of the bench script (see firmware/bench/bench.c)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.frames: list[tuple[str, int, bytes]] = []   # (tag, cmd, encoded frame)
        self.seq = 0

    def _rec(self, op: int, data: bytes = b"") -> None:
        self.buf += bytes([op]) + len(data).to_bytes(2, "little") + data

    def frame(self, tag: str, cmd: int, payload: bytes) -> None:
        from .protocol import encode_frame

        self.seq += 1
        enc = encode_frame(cmd, 0, self.seq, payload)
        self._rec(1, enc)
        self.frames.append((tag, cmd, enc))

    def hook(self, on: bool) -> None:
        self._rec(3 if on else 2)


def _program_frames(s: _Script, targets, tolerance: int, max_pulses: int, tag: str) -> None:
    from ._hal import lib
    from .protocol import program_request

    for first in range(0, len(targets), 256):
        s.frame(tag, lib.SB_CMD_PROGRAM, program_request(first, targets[first:first + 256], tolerance, max_pulses))


def _spikes(rng, steps: int, rows: int, p: float = 0.2) -> np.ndarray:
    return (rng.random((steps, rows)) < p).astype(np.uint8)


def _build_script(card: str, seed: int):
    from ._hal import lib
    from .backends.base import RULES
    from .cards import params_bytes
    from .protocol import infer_request, train_request

    rng = np.random.default_rng(seed)
    s = _Script()
    # 1. step and event workload (binary spikes)
    p1 = compile_chip(ChipSpec(card=card, geometry="32x32", layout="single-ended", seed=seed))[1]
    s.frame("configure", lib.SB_CMD_CONFIGURE, params_bytes(p1))
    cells = p1.rows * p1.cols * p1.layers
    _program_frames(s, rng.integers(p1.g_min, p1.g_max, cells), 2000, 64, "program")
    infer, reset = lib.SB_CMD_INFER, lib.SB_INFER_RESET
    x100, x200 = _spikes(rng, 100, p1.rows), _spikes(rng, 200, p1.rows)
    s.frame("step100", infer, infer_request(x100, False, reset))
    s.frame("step200", infer, infer_request(x200, False, reset))
    s.hook(False)
    s.frame("noreadout200", infer, infer_request(x200, False, reset))
    s.hook(True)
    s.frame("events200", infer, infer_request(x200, False, reset | lib.SB_INFER_EVENTS))
    for w in COUNT_WINDOWS:
        s.frame(f"counts200w{w}", infer, infer_request(x200, False, reset | lib.SB_INFER_COUNTS, window=w))
    # 2. digits app settings
    p2 = compile_chip(ChipSpec(card=card, geometry="32x32", layout="differential", seed=seed),
                      neuron={"threshold": 4.0})[1]
    s.frame("configure", lib.SB_CMD_CONFIGURE, params_bytes(p2))
    steps = 32
    for k in range(_TRAIN_SAMPLES):
        label = int(rng.integers(0, 10))       # drawn before the sample's spikes
        s.frame("train", lib.SB_CMD_TRAIN, train_request(_spikes(rng, steps, p2.rows), False, label=label,
                                                         rule=RULES["compensated"], target=1, max_pulses=32,
                                                         sample_id=k))
    for _ in range(_INFER_SAMPLES):
        s.frame("infer", infer, infer_request(_spikes(rng, steps, p2.rows), False, reset))
    return s, (p1, p2)


def _split_frames(raw: bytes):
    from .protocol import decode_frame

    out = []
    for chunk in raw.split(b"\x00"):
        if chunk:
            out.append((decode_frame(chunk), len(chunk) + 1))
    return out


def run_bench_image(elf, script: bytes, shift: int = FW_SHIFT, timeout: float = 600.0):
    """Run the bench image on a script; returns (semihosting lines, UART bytes)."""
    import shutil
    import subprocess
    import tempfile

    from .emulator import QEMU_SANDBOX, EmulatorError

    exe = shutil.which("qemu-system-arm")
    if exe is None:
        raise EmulatorError("qemu-system-arm not found on PATH")
    with tempfile.TemporaryDirectory(prefix="sb-bench-") as td:
        (Path(td) / "bench.in").write_bytes(script)
        cmd = [exe, "-M", "netduinoplus2", "-nographic", "-monitor", "none",
               "-serial", "file:uart.bin", "-semihosting-config", "enable=on,target=native", *QEMU_SANDBOX,
               "-icount", f"shift={shift}", "-kernel", str(elf)]
        try:
            r = subprocess.run(cmd, cwd=td, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise EmulatorError(f"bench image did not finish in {timeout:.0f} s") from None
        uart = (Path(td) / "uart.bin").read_bytes() if (Path(td) / "uart.bin").exists() else b""
    # QEMU 7.2 writes the semihosting console to stderr
    lines = [l.strip() for l in (r.stdout + "\n" + r.stderr).splitlines()]
    if r.returncode != 0 or "END" not in lines:
        raise EmulatorError(f"bench image failed (exit {r.returncode}):\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return lines, uart


def bench_firmware(board: str = "netduinoplus2", card: str = "spec", seed: int = 0, build: bool = True) -> dict:
    """Instructions per pulse, per event, per step and per sample, and wire
    bytes per sample, of the firmware counted in QEMU (-icount)."""
    from ._hal import lib
    from .emulator import EmulatorError, find_firmware
    from .protocol import EVENT_DTYPE, CountWindow, decode_events, decode_infer

    if board != "netduinoplus2":
        raise EmulatorError(f"bench firmware runs on the emulated board only (netduinoplus2), not {board}")
    elf = build_bench_firmware() if build else find_firmware(BENCH_ENV)
    script, (p1, p2) = _build_script(card, seed)
    lines, uart = run_bench_image(elf, bytes(script.buf))

    calib = next(l.split() for l in lines if l.startswith("CALIB"))
    tpi = int(calib[2]) / int(calib[1])            # SysTick ticks per instruction

    def ins(ticks: float) -> float:
        return ticks / tpi

    frames = [l.split() for l in lines if l.startswith("FRAME")]
    if len(frames) != len(script.frames):
        raise EmulatorError(f"bench image ran {len(frames)} of {len(script.frames)} frames")
    rows = []
    for (tag, cmd, enc), f in zip(script.frames, frames):
        rows.append({"tag": tag, "cmd": cmd, "rx": int(f[3]), "tx": int(f[4]), "instructions": ins(int(f[5]))})
        if int(f[3]) != len(enc):
            raise EmulatorError(f"bench frame {f[1]}: image saw {f[3]} bytes, sent {len(enc)}")

    # what came back on the wire
    resp, events = {}, []
    counts_of: dict[int, list] = {}      # response seq -> the counts frames before it (body, size)
    pending: list = []
    for (cmd, flags, seq, body), size in _split_frames(uart):
        if cmd == lib.SB_CMD_ERROR:
            raise EmulatorError(f"bench frame seq {seq} failed: {body.hex()}")
        if flags & lib.SB_F_EVENT and cmd == lib.SB_CMD_COUNTS:
            pending.append((body, size))
        elif flags & lib.SB_F_EVENT:
            events.append(decode_events(body)[0])
        elif flags & lib.SB_F_RESP:
            resp[seq] = (body, size)
            counts_of[seq], pending = pending, []
    by: dict[str, list[tuple[int, dict]]] = {}
    for k, r in enumerate(rows):
        by.setdefault(r["tag"], []).append((k, r))

    def one(tag):
        return by[tag][0][1]

    def masks(seq_index: int, steps: int):
        a = decode_infer(resp[seq_index + 1][0])
        if a.steps != steps:
            raise EmulatorError(f"bench frame seq {seq_index + 1}: an answer for {a.steps} steps, sent {steps}")
        return a.masks

    per_step = (one("step200")["instructions"] - one("step100")["instructions"]) / 100.0
    ev = np.concatenate(events) if events else np.zeros(0, EVENT_DTYPE)
    records = len(ev)
    fires = int(sum(bin(int(m)).count("1") for m in ev["mask"]))
    k_ev = by["events200"][0][0]
    m200 = masks(k_ev, 200)
    if fires != int(sum(bin(int(m)).count("1") for m in m200)):
        raise EmulatorError("bench: event frames and the INFER response disagree on the fires")
    readout = one("events200")["instructions"] - one("noreadout200")["instructions"]
    # aggregated readout: per-neuron counts of each window must add up to the response's fire masks
    bits = np.unpackbits(m200.astype("<u4").view(np.uint8).reshape(-1, 4), axis=1, bitorder="little")
    want = bits.sum(axis=0)[:p1.cols].astype(np.int64)
    counts = {}
    for w in COUNT_WINDOWS:
        k_c = by[f"counts200w{w}"][0][0]
        if not np.array_equal(masks(k_c, 200), m200):
            raise EmulatorError(f"bench: counts run (window {w}) fired differently from the AER run")
        got = np.zeros(p1.cols, np.int64)
        frames_c = counts_of.get(k_c + 1, [])
        for body, _ in frames_c:
            got += CountWindow.decode(body).counts[0]
        if not np.array_equal(got, want):
            raise EmulatorError(f"bench: counts frames (window {w}) disagree with the INFER response's fires")
        extra = one(f"counts200w{w}")["instructions"] - one("noreadout200")["instructions"]
        counts[str(w or 200)] = {
            "instructions_per_event": round(extra / fires, 1) if fires else None,
            "frames": len(frames_c),
            "bytes_per_frame": int(round(np.mean([sz for _, sz in frames_c]))) if frames_c else 0,
        }
    main_w = str(COUNT_WINDOWS[0] or 200)
    ring = one("step200")["instructions"] - one("noreadout200")["instructions"]
    # PULSE <port> <kind> <pulses> <ticks> <rc>
    pulses: dict = {}
    for l in lines:
        if l.startswith("PULSE"):
            _, port, kind, n, ticks, rc = l.split()
            if int(rc):
                raise EmulatorError(f"bench pulses on {port}: error {rc}")
            pulses.setdefault(port, {})[kind] = round(ins(int(ticks)) / int(n), 1)
    main_port = "silicon" if "silicon" in pulses else "sequencer"

    def sample(tag):
        rs = [r for _, r in by[tag]]
        enc = [len(e) for t, _, e in script.frames if t == tag]
        return (float(np.mean([r["instructions"] for r in rs])),
                int(round(np.mean([r["rx"] + r["tx"] for r in rs]))),
                int(round(np.mean(enc))), int(round(np.mean([r["tx"] for r in rs]))))

    tr, tr_bytes, tr_req, tr_resp = sample("train")
    inf, inf_bytes, inf_req, inf_resp = sample("infer")
    return {
        "board": board,
        "method": f"qemu-system-arm -M netduinoplus2 -icount shift={FW_SHIFT}: instructions = SysTick ticks / "
                  "ticks per instruction (calibrated on a loop of known length)",
        "ticks_per_instruction": round(tpi, 6),
        "instructions_per_pulse": pulses[main_port]["program"],
        "instructions_per_read_pulse": pulses[main_port]["read"],
        "pulse_port": main_port,
        "instructions_per_pulse_by_port": pulses,
        # AER mode (SB_INFER_EVENTS): one 16-byte record per layer per step with a fire
        "instructions_per_event": round(readout / fires, 1) if fires else None,
        # aggregated mode (SB_INFER_COUNTS): per-neuron counts, one frame per window
        "instructions_per_event_counts": counts[main_w]["instructions_per_event"],
        "counts_window_steps": int(main_w),
        "counts_by_window": counts,
        "instructions_per_event_record": round(readout / records, 1) if records else None,
        # the part up to the task: fire hook -> ISR timestamp + ring push -> drain (no frames)
        "instructions_per_event_to_task": round(ring / fires, 1) if fires else None,
        "fires_per_record": round(fires / records, 2) if records else None,
        "instructions_per_step": round(per_step, 1),
        "fires_per_step": round(fires / 200.0, 2),
        "instructions_per_train_sample": round(tr),
        "instructions_per_infer_sample": round(inf),
        "bytes_per_sample": {"infer": inf_bytes, "train": tr_bytes},
        "bytes_detail": {"infer_request": inf_req, "infer_response": inf_resp,
                         "train_request": tr_req, "train_response": tr_resp},
        "workloads": {
            "pulse": "one +-1 update pulse on each of 1024 cells (sb_dev_update), one read of each cell "
                     "(sb_dev_read); per pulse, through the port named by pulse_port",
            "step": f"card {card}, 32x32 single-ended -> 32 LIF neurons, random weights, p(spike)=0.2; "
                    "INFER of 200 minus 100 steps, per step",
            "event_counts": "aggregated readout: the same INFER 200 steps with SB_INFER_COUNTS (the fires are "
                            "only counted per neuron, bit-sliced, no event interrupt; one COUNTS frame of u16 "
                            "counts per window goes out through the UART driver) minus the same INFER with the "
                            "fire hook detached; per post-neuron fire. instructions_per_event_counts: window = "
                            "the whole request (200 steps); counts_by_window: windows of 200, 50 and 10 steps",
            "event": "AER mode: INFER 200 steps with event frames and the readout path (fire hook -> EXTI0 ISR "
                     "timestamp + ring push -> drain -> AER event frame -> UART driver) minus the same "
                     "INFER with the fire hook detached; per post-neuron fire (and per AER record: one "
                     "layer's fire mask of one step)",
            "sample": f"digits app settings: card {card}, 32x32 differential (16 neurons), threshold 4.0, "
                      "32 steps, rule compensated, target 1, max 32 pulses; inputs rate coded at p=0.2 "
                      f"(seeded); means over {_TRAIN_SAMPLES} TRAIN and {_INFER_SAMPLES} INFER requests, "
                      "request frame in + response frame out",
        },
    }
