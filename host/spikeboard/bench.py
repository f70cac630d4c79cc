"""Benchmarks: speed is measured here, never asserted in a test.

`model`: the hot path of every session: a 32x32 array into 32 LIF neurons,
100 time steps per call, input spike probability 0.2; median ns per sample per
time step at batch 1, 32 and 1024, and ns per sample of a one-pulse-per-cell
sign update of the whole array. A plain numpy float32 step of the same
workload is timed beside it for scale."""
from __future__ import annotations

import statistics
import time

import numpy as np

from . import cards
from ._hal import ffi, lib
from .backends.model import ModelBackend

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


def bench_model(card: str = "spec", seed: int = 0, reps: int = 7, compare_numpy: bool = True) -> dict:
    b = ModelBackend()
    b.configure(cards.compile_card(cards.load(card), "32x32", differential=False, seed=seed))
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
           "card": card, "step_ns": step_ns, "update_ns": update_ns}
    if compare_numpy:
        out["numpy_float32_step_ns"] = {str(bs): round(numpy_step_ns(bs), 2) for bs in (1, 1024)}
    return out
