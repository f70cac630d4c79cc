"""`spikeboard bench firmware`: the bench image builds, runs in QEMU with
-icount and returns sane instruction counts and wire sizes. Benchmarks are
never pass/fail on speed: only the shape of the result is checked, and that a
counted figure is deterministic (QEMU -icount is)."""
from __future__ import annotations

import shutil

import pytest

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                                reason="needs qemu-system-arm and arm-none-eabi-gcc")

KEYS = ("instructions_per_pulse", "instructions_per_read_pulse", "instructions_per_event",
        "instructions_per_event_record", "instructions_per_event_to_task", "instructions_per_step",
        "instructions_per_train_sample", "instructions_per_infer_sample")


@pytest.fixture(scope="module")
def results():
    from spikeboard.bench import bench_firmware

    first = bench_firmware()
    second = bench_firmware(build=False)
    return first, second


def test_keys_and_sane_values(results):
    r, _ = results
    for k in KEYS:
        assert isinstance(r[k], (int, float)) and r[k] > 0, k
    assert 0.1 < r["ticks_per_instruction"] < 10
    assert r["instructions_per_step"] > r["instructions_per_pulse"]
    assert r["instructions_per_infer_sample"] > r["instructions_per_step"]
    assert set(r["bytes_per_sample"]) == {"infer", "train"}
    d = r["bytes_detail"]
    assert r["bytes_per_sample"]["infer"] == d["infer_request"] + d["infer_response"]
    assert r["bytes_per_sample"]["train"] == d["train_request"] + d["train_response"]
    assert r["fires_per_record"] >= 1
    assert {"sequencer", "virtual"} <= set(r["instructions_per_pulse_by_port"])


def test_counts_are_deterministic(results):
    a, b = results
    for k in KEYS:
        assert a[k] == b[k], k
    assert a["bytes_per_sample"] == b["bytes_per_sample"]


def test_cli_json(results, capsys):
    from spikeboard.cli import main

    try:
        rc = main(["bench", "firmware", "--json"])
    except SystemExit as e:
        rc = e.code
    assert rc in (0, None)
    out = capsys.readouterr().out
    assert "instructions_per_event" in out
