"""Fuzzing the board's front door (issue 7, part 1).

The libFuzzer harness tests/fuzz/fuzz_server.c feeds raw link bytes to the
command server of hal/ (COBS framing, CRC, dispatcher, every command on a
virtual chip) under AddressSanitizer and UndefinedBehaviorSanitizer, and checks
every frame the server sends back. These tests

  - build the harness (clang + libFuzzer are installed by tools/setup.sh, so a
    missing compiler is a failure, not a skip; SB_SKIP_FUZZ=1 opts out
    explicitly, e.g. on a machine without clang);
  - replay every seed and every input kept in tests/fuzz/regressions/;
  - run a bounded fuzzing session of 1,000,000 inputs: two jobs of 500,000 on
    the two cores (about 4 minutes; the corpus grows, so later inputs are slower).

The long run is `.venv/bin/python tests/fuzz/run.py --time 3600 --jobs 2`.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "tests" / "fuzz" / "run.py"
REGRESSIONS = ROOT / "tests" / "fuzz" / "regressions"
BOUNDED_RUNS = 1_000_000
JOBS = 2

if os.environ.get("SB_SKIP_FUZZ") == "1":
    pytestmark = pytest.mark.skip(reason="SB_SKIP_FUZZ=1: fuzzing opted out explicitly")


def _run(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(RUN), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def _explain(r: subprocess.CompletedProcess) -> str:
    hint = ""
    if r.returncode == 77:
        hint = "clang with libFuzzer is missing: run tools/setup.sh (apt: clang libclang-rt-14-dev)\n"
    return f"{hint}exit {r.returncode}\n--- stdout\n{r.stdout[-4000:]}\n--- stderr\n{r.stderr[-8000:]}"


def test_regression_inputs_are_kept():
    files = [f for f in REGRESSIONS.iterdir() if f.is_file() and not f.name.startswith("README")]
    assert files, "tests/fuzz/regressions/ holds the inputs that once failed; it must not be empty"


def test_replay_seeds_and_regressions():
    """Builds the harness, then runs every seed (a valid frame of each message
    type in each board mode) and every regression input once."""
    r = _run("--replay", timeout=600)
    assert r.returncode == 0, _explain(r)
    m = re.search(r"replayed (\d+) inputs \((\d+) regressions\)", r.stdout)
    assert m, r.stdout
    n_regr = len([f for f in REGRESSIONS.iterdir() if f.is_file() and not f.name.startswith("README")])
    assert int(m.group(2)) == n_regr
    assert int(m.group(1)) > 60 + n_regr   # seeds of every command in three modes


def test_bounded_fuzz_run():
    """1,000,000 inputs from the seed corpus (two jobs): no sanitizer report, no
    bad frame out of the server, and the server still answers HELLO after every input."""
    t0 = time.monotonic()
    r = _run("--runs", str(BOUNDED_RUNS // JOBS), "--jobs", str(JOBS), "--seed", "1", timeout=1500)
    dt = time.monotonic() - t0
    assert r.returncode == 0, _explain(r)
    m = re.search(r"number_of_executed_units=(\d+)", r.stdout)
    assert m, r.stdout
    executed = int(m.group(1))
    print(f"\n[fuzz] {executed} inputs in {dt:.0f} s: {r.stdout.strip().splitlines()[-1]}")
    assert executed >= BOUNDED_RUNS
