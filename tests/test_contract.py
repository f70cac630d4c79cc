"""The contract suite: every available backend against the model, bit for bit.
Output spikes and membranes of 200 inference steps, conductance read-back
after training on 50 samples, write-verify results, events, all counters.
A backend that is absent is skipped with its reason."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from spikeboard import cards
from spikeboard.backends.model import ModelBackend
from spikeboard.emulator import find_firmware

from .backends import emulator_backend, serial_backend

OTHERS = ["inproc", "emulator", "serial"]


@pytest.fixture(scope="module", params=OTHERS)
def other(request):
    if request.param == "inproc":
        from spikeboard.backends.inproc import InprocBackend

        b = InprocBackend()
    elif request.param == "emulator":
        b = emulator_backend()
    else:
        b = serial_backend()
    yield b
    b.close()


def pair(other, card="rram-nonlinear", geometry="32x32", **kw):
    p = cards.compile_card(cards.load(card), geometry, **kw)
    m = ModelBackend()
    assert m.configure(p) == other.configure(p)
    return m


def samples(seed, n, steps=50, rows=32, p=0.2):
    rng = np.random.default_rng(seed)
    return (rng.random((n, steps, rows)) < p).astype(np.uint8), rng.integers(0, 10, n)


def test_inference_200_steps_spikes_and_membranes(other):
    m = pair(other, differential=False, neuron={"threshold": 1.0})
    x, _ = samples(1, 1, steps=200)
    rng = np.random.default_rng(2)
    t = rng.integers(m.params.g_min, m.params.g_max, m.cells).astype(np.uint16)
    assert np.array_equal(m.program(t, tolerance=1500).failed, other.program(t, tolerance=1500).failed)
    sm, vm = m.infer(x[0], trace=True)
    so, vo = other.infer(x[0], trace=True)
    assert sm.sum() > 20                        # the test exercises firing, not silence
    assert np.array_equal(sm, so) and np.array_equal(vm, vo)
    assert m.counters() == other.counters()


def test_training_50_samples_conductances_and_counters(other):
    m = pair(other)
    x, y = samples(3, 50, steps=40)
    for i in range(50):
        a = m.train(x[i], int(y[i]), rule="sign", target=4, sample_id=i)
        b = other.train(x[i], int(y[i]), rule="sign", target=4, sample_id=i)
        assert (a.predicted, a.pulses, a.counts.tolist()) == (b.predicted, b.pulses, b.counts.tolist())
    assert m.counters().pot + m.counters().dep > 0
    assert np.array_equal(m.read_conductance(), other.read_conductance())
    assert m.counters() == other.counters()


@pytest.mark.parametrize("rule", ["sign", "dfa"])
def test_batched_training_matches_single_samples(other, rule):
    """TRAIN_BATCH (as many samples per request as the link carries) against the
    model trained one sample at a time: results, conductances, counters."""
    m = pair(other)
    x, y = samples(7, 40, steps=30)
    if hasattr(other, "link"):
        other.link.clean_run = max(other.link.clean_run, 8)     # a clean line: full-size requests
        assert other.train_chunk(30, rule) > 1
    want = [m.train(x[i], int(y[i]), rule=rule, target=4, sample_id=500 + i) for i in range(40)]
    got = other.train_batch(x, y, range(500, 540), rule=rule, target=4)
    assert [(r.sample_id, r.predicted, r.pulses, r.counts.tolist()) for r in want] == \
        [(r.sample_id, r.predicted, r.pulses, r.counts.tolist()) for r in got]
    assert m.counters().pot + m.counters().dep > 0
    assert np.array_equal(m.read_conductance(), other.read_conductance())
    assert m.counters() == other.counters()


def test_batched_inference_matches_single_samples(other):
    """INFER_BATCH (as many samples per request as the link carries) against
    single INFERs and the model: fires, membranes, counters."""
    m = pair(other, differential=False, neuron={"threshold": 1.0})
    rng = np.random.default_rng(8)
    t = rng.integers(m.params.g_min, m.params.g_max, m.cells).astype(np.uint16)
    assert np.array_equal(m.program(t, tolerance=1500).failed, other.program(t, tolerance=1500).failed)
    x, _ = samples(9, 30, steps=20)
    if hasattr(other, "link"):
        other.link.clean_run = max(other.link.clean_run, 8)     # a clean line: full-size requests
        assert other.infer_chunk(20) > 1
    for b in (m, other):
        b.counters(clear=True)
    want = [m.infer(s) for s in x]
    single = [other.infer(s) for s in x]
    fm, vm = m.infer_batch(x)
    fo, vo = other.infer_batch(x)
    assert fm.sum() > 50
    for k in range(30):
        assert np.array_equal(want[k][0], single[k][0]) and np.array_equal(want[k][1], single[k][1])
        assert np.array_equal(want[k][0], fo[k]) and np.array_equal(want[k][1], vo[k])
    assert np.array_equal(fm, fo) and np.array_equal(vm, vo)
    assert m.counters() == other.counters()


@pytest.mark.parametrize("rule", ["stochastic", "stdp", "compensated"])
def test_every_learning_rule_matches(other, rule):
    m = pair(other)
    x, y = samples(4, 6, steps=40, p=0.3)
    for i in range(6):
        a = m.train(x[i], int(y[i]), rule=rule, target=4, max_pulses=3, sample_id=i)
        b = other.train(x[i], int(y[i]), rule=rule, target=4, max_pulses=3, sample_id=i)
        assert a.pulses == b.pulses
    assert np.array_equal(m.read_conductance(), other.read_conductance())


def test_stacked_16x16x3(other):
    m = pair(other, "spec", "16x16x3", differential=False, neuron={"threshold": 0.5})
    rng = np.random.default_rng(5)
    t = rng.integers(m.params.g_ref, m.params.g_max, m.cells).astype(np.uint16)
    m.program(t, tolerance=2000), other.program(t, tolerance=2000)
    x, _ = samples(6, 1, steps=60, rows=16, p=0.4)
    sm, vm = m.infer(x[0])
    so, vo = other.infer(x[0])
    assert np.array_equal(sm, so) and np.array_equal(vm, vo)
    assert m.counters() == other.counters()


def test_write_verify_and_retention(other):
    m = pair(other)
    t = np.linspace(m.params.g_min, m.params.g_max, 200).astype(np.uint16)
    a, b = m.program(t, first=100, tolerance=600, max_pulses=40), other.program(t, first=100, tolerance=600, max_pulses=40)
    assert np.array_equal(a.pulses, b.pulses) and np.array_equal(a.failed, b.failed)
    m.age(10**7), other.age(10**7)
    assert np.array_equal(m.read_conductance(), other.read_conductance())


@pytest.mark.parametrize("window", [0, 7])
def test_counts_readout_matches_the_fires(other, window):
    """The aggregated readout (INFER with SB_INFER_COUNTS): per-neuron counts per
    window add up to the fires of the same inference, and those are the
    model's fires, bit for bit."""
    m = pair(other, differential=False, neuron={"threshold": 1.0})
    x, _ = samples(5, 1, steps=120)
    rng = np.random.default_rng(6)
    t = rng.integers(m.params.g_min, m.params.g_max, m.cells).astype(np.uint16)
    assert np.array_equal(m.program(t, tolerance=1500).failed, other.program(t, tolerance=1500).failed)
    other.count_windows.clear()
    sm, vm = m.infer(x[0])
    so, vo = other.infer(x[0], counts=window)
    assert sm.sum() > 20
    assert np.array_equal(sm, so) and np.array_equal(vm, vo)
    w = other.count_windows
    want = window or 120
    assert [c.steps for c in w] == [min(want, 120 - k) for k in range(0, 120, want)]
    assert all(b.step0 == a.step0 + a.steps for a, b in zip(w, w[1:]))
    got = np.sum([c.counts[-1].astype(np.int64) for c in w], axis=0)
    assert np.array_equal(got, sm.sum(axis=0))
    # per window, too: the counts of steps [step0, step0 + steps) of this request
    s0 = w[0].step0
    for c in w:
        a = c.step0 - s0
        assert np.array_equal(c.counts[-1], sm[a:a + c.steps].sum(axis=0))
    assert m.counters() == other.counters()
