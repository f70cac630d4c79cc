"""Board resets in the middle of a training session: the session notices
(the board lost its configuration, its frame count went back, or the link
died), reconnects, restores the last checkpoint, replays the journaled
samples after it, and ends bit-identical to an uninterrupted run. A
watchdog reset is reported as such.

QEMU cannot make the STM32 IWDG bite (its netduinoplus2 has no IWDG model,
and RCC_CSR reads back without reset flags), so the watchdog path is tested
on the in-process board: the same C command server, rebooted with the reset
reason the firmware would latch (io.reset_reason = SB_RESET_REASON_WATCHDOG, as
fw_reset_reason_wire() in firmware/src/watchdog.c maps RCC_CSR.IWDGRSTF) and reports in HELLO."""
from __future__ import annotations

import json

import numpy as np
import pytest

from spikeboard.session import Session, SessionConfig

from .backends import emulator_backend

KW = dict(app="digits", seed=0, train_limit=60, test_limit=12, epochs=2, checkpoint_every=25)


def _run(tmp_path, name, backend, faults=None, hooks=None, **kw):
    cfg = SessionConfig.of(backend=backend, faults=faults, **{**KW, **kw})
    s = Session.create(cfg, tmp_path / name, quiet=True, hooks=hooks)
    return s, s.run().as_dict()


def _journal_once(run):
    ids = [json.loads(l)["sample_id"] for l in (run / "journal.jsonl").read_text().splitlines()
           if json.loads(l)["type"] == "sample"]
    assert ids == sorted(set(ids)), "a sample was journaled twice"
    return ids


def _same(a, b):
    for f in ("conductance.npy", "final.img", "counters.json", "energy.json", "predictions.npy"):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    strip = lambda p: [{k: v for k, v in json.loads(l).items() if k != "link"}
                       for l in (p / "metrics.jsonl").read_text().splitlines()]
    assert strip(a) == strip(b)
    assert _journal_once(a) == _journal_once(b)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref")
    _, r = _run(d, "ref", "model")
    return d / "ref", r


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_resets_mid_stream_inproc(tmp_path, reference, seed):
    """Resets at random byte positions of the stream (mid-request, mid-answer,
    during checkpoints and evaluation), one of them a watchdog bite."""
    rng = np.random.default_rng(seed)
    at = sorted(int(x) for x in rng.integers(2_000, 100_000, 4))
    reason = 1 if seed == 1 else 0
    faults = f"reset={':'.join(map(str, at))},reason={reason},seed={seed}"
    s, r = _run(tmp_path, "run", "inproc", faults)
    ref_dir, ref = reference
    _same(ref_dir, tmp_path / "run")
    fired = r["link"]["injected"]["resets"]
    assert fired == len(at) and r["board_resets"]["count"] == fired
    log = (tmp_path / "run" / "log.txt").read_text()
    if reason == 1:
        assert "board reset by watchdog" in log
        assert all(e["reason"] == "watchdog" for e in r["board_resets"]["events"])
    page = (tmp_path / "run" / "report.html").read_text()
    assert "Board resets survived: <b>%d</b>" % fired in page
    print(f"\nseed {seed}: resets at stream bytes {at}: {fired} survived; "
          f"events {[(e['applied'], e['reason']) for e in r['board_resets']['events']]}")


def test_resets_and_noise_together_inproc(tmp_path, reference):
    s, r = _run(tmp_path, "run", "inproc", "corrupt=0.01,drop=0.005,reset=40000:150000,seed=9")
    _same(reference[0], tmp_path / "run")
    # a reset that hits while the session is rebuilding the board is absorbed by that rebuild
    assert r["link"]["injected"]["resets"] == 2 and 1 <= r["board_resets"]["count"] <= 2
    assert r["link"]["stats"]["retries"] > 100


def test_watchdog_reported_at_start(tmp_path):
    """A board whose last reset was its watchdog: the session says so."""
    from spikeboard.backends import inproc

    class Bitten(inproc.InprocBackend):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.transport.reboot(1)

    orig = inproc.InprocBackend
    inproc.InprocBackend = Bitten
    try:
        _, r = _run(tmp_path, "run", "inproc", train_limit=8, test_limit=2, epochs=1)
    finally:
        inproc.InprocBackend = orig
    assert r["board_resets"]["reset_reason_at_start"] == "watchdog"
    assert "board reset by watchdog" in (tmp_path / "run" / "log.txt").read_text()


def test_emulator_power_cycles(tmp_path):
    """The real firmware in QEMU, power-cycled at random points (samples of
    two seeds, and once mid-request through the stream), resumes bit-exact."""
    emulator_backend().close()
    kw = dict(train_limit=10, test_limit=2, epochs=1, checkpoint_every=4)
    _, ref = _run(tmp_path, "ref", "model", **kw)
    for seed in (1, 2):
        points = set(np.random.default_rng(seed).choice(np.arange(2, 10), 2, replace=False).tolist())
        hooks = {"after_sample": lambda s, applied: applied in points and s.backend.restart_board()}
        _, r = _run(tmp_path, f"emu{seed}", "emulator", hooks=hooks, **kw)
        _same(tmp_path / "ref", tmp_path / f"emu{seed}")
        assert r["board_resets"]["count"] == 2, r["board_resets"]
    _, r = _run(tmp_path, "emu-cut", "emulator", "reset=20000,seed=0", **kw)
    _same(tmp_path / "ref", tmp_path / "emu-cut")
    assert r["board_resets"]["count"] == 1 and r["link"]["stats"]["reconnects"] >= 1
