#!/usr/bin/env python3
"""Build and run the libFuzzer harness of the board's front door.

    .venv/bin/python tests/fuzz/run.py --runs 500000 --jobs 2 --seed 1   # what the test suite runs
    .venv/bin/python tests/fuzz/run.py --time 3600 --jobs 2       # a long run (README)
    .venv/bin/python tests/fuzz/run.py --reproduce CRASH_FILE     # replay one input
    .venv/bin/python tests/fuzz/run.py --replay                   # every seed and regression once

Builds build/fuzz/fuzz_server with clang -fsanitize=fuzzer,address,undefined
from hal/src/*.c and tests/fuzz/fuzz_server.c, writes the seed corpus made with
the host codec (tests/fuzz/corpus.py) to build/fuzz/seeds, and fuzzes a scratch
copy of it (the seeds and tests/fuzz/regressions/ stay as they are). A crash
lands in build/fuzz/crashes/; copy it into tests/fuzz/regressions/ once fixed.
Exit status: 0 clean, 1 crash or build failure, 77 clang/libFuzzer missing."""
from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BUILD = ROOT / "build" / "fuzz"
REGRESSIONS = HERE / "regressions"
SKIP = 77


def find_clang() -> str | None:
    for name in ("clang", "clang-19", "clang-18", "clang-17", "clang-16", "clang-15", "clang-14"):
        exe = shutil.which(name)
        if exe:
            return exe
    return None


def libfuzzer_works(clang: str) -> bool:
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "t.c"
        src.write_text("#include <stdint.h>\n#include <stddef.h>\n"
                       "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n")
        r = subprocess.run([clang, "-fsanitize=fuzzer,address,undefined", str(src), "-o", str(Path(d) / "t")],
                           capture_output=True)
        return r.returncode == 0


def sources() -> list[Path]:
    return [HERE / "fuzz_server.c"] + sorted(Path(p) for p in glob.glob(str(ROOT / "hal" / "src" / "*.c")))


def build(clang: str, quiet: bool = False) -> Path:
    sys.path.insert(0, str(HERE))
    import corpus  # noqa: E402  (needs the spikeboard package: run with the project's venv)

    inc, seeds, n = corpus.prepare(BUILD)
    exe = BUILD / "fuzz_server"
    deps = sources() + [inc] + sorted((ROOT / "hal" / "include" / "sb").glob("*.h")) + sorted((ROOT / "hal" / "src").glob("*.h"))
    if not exe.exists() or any(p.stat().st_mtime > exe.stat().st_mtime for p in deps):
        cmd = [clang, "-std=c99", "-g", "-O1", "-fno-omit-frame-pointer",
               "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=undefined",
               "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'hal' / 'include'}", f"-I{BUILD}",
               *map(str, sources()), "-o", str(exe)]
        if not quiet:
            print("[fuzz] " + " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    if not quiet:
        print(f"[fuzz] {n} seeds in {seeds}", flush=True)
    return exe


def run(exe: Path, *, runs: int | None, seconds: int | None, seed: int, jobs: int, max_len: int) -> tuple[int, str]:
    work = Path(tempfile.mkdtemp(prefix="sb-fuzz-"))
    try:
        corpus_dir = work / "corpus"
        shutil.copytree(BUILD / "seeds", corpus_dir)
        for f in regression_files():
            shutil.copy(f, corpus_dir / f"regression-{f.name}")
        crashes = BUILD / "crashes"
        crashes.mkdir(exist_ok=True)
        cmd = [str(exe), str(corpus_dir), f"-seed={seed}", f"-max_len={max_len}", "-timeout=20",
               "-rss_limit_mb=2048", f"-artifact_prefix={crashes}/", "-print_final_stats=1"]
        if runs is not None:
            cmd.append(f"-runs={runs}")
        if seconds is not None:
            cmd.append(f"-max_total_time={seconds}")
        if jobs > 1:
            cmd += [f"-jobs={jobs}", f"-workers={jobs}"]
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work)
        log = r.stdout + r.stderr
        if jobs > 1:    # the parent echoes each job's output too: the jobs' own logs hold it once
            jobs_log = "".join(p.read_text(errors="replace") for p in sorted(work.glob("fuzz-*.log")))
            exits = [ln for ln in log.splitlines() if re.match(r"=+ Job \d+ exited with exit code", ln)]
            bad = [int(m) for m in re.findall(r"exit code (-?\d+)", "".join(exits)) if int(m) != 0]
            return (r.returncode or (bad[0] if bad else 0)), "".join(ln + "\n" for ln in exits) + jobs_log
        return r.returncode, log
    finally:
        shutil.rmtree(work, ignore_errors=True)


def regression_files() -> list[Path]:
    if not REGRESSIONS.is_dir():
        return []
    return sorted(f for f in REGRESSIONS.iterdir() if f.is_file() and not f.name.startswith("README"))


def replay(exe: Path) -> int:
    """Each seed and regression input through the harness, one process per file
    list (libFuzzer runs the files it is given once each and stops at the first crash)."""
    files = sorted((BUILD / "seeds").iterdir()) + regression_files()
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1", UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    r = subprocess.run([str(exe), *map(str, files)], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        print((r.stdout + r.stderr)[-6000:], file=sys.stderr)
        print(f"[fuzz] replay FAILED (exit {r.returncode})", file=sys.stderr)
        return 1
    print(f"[fuzz] replayed {len(files)} inputs ({len(regression_files())} regressions): clean", flush=True)
    return 0


def stats(log: str) -> dict:
    out = {}
    for k in ("number_of_executed_units", "average_exec_per_sec", "new_units_added", "peak_rss_mb"):
        vals = [int(v) for v in re.findall(rf"stat::{k}:\s+(\d+)", log)]
        if vals:
            out[k] = sum(vals) if k in ("number_of_executed_units", "new_units_added") else max(vals)
    m = re.findall(r"cov: (\d+) ft: (\d+)", log)
    if m:
        out["coverage_edges"], out["features"] = map(int, m[-1])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, help="inputs to execute (default 200000 unless --time)")
    ap.add_argument("--time", type=int, help="seconds to fuzz")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--max-len", type=int, default=4096)
    ap.add_argument("--reproduce", type=Path, help="run one input through the harness and exit")
    ap.add_argument("--replay", action="store_true",
                    help="run every seed and every file of tests/fuzz/regressions/ once, no fuzzing")
    a = ap.parse_args(argv)
    clang = find_clang()
    if clang is None or not libfuzzer_works(clang):
        print("[fuzz] clang with libFuzzer not found: apt-get install clang-14 libclang-rt-14-dev "
              "(tools/setup.sh installs them)", file=sys.stderr)
        return SKIP
    try:
        exe = build(clang)
    except subprocess.CalledProcessError:
        return 1
    if a.reproduce:
        return subprocess.run([str(exe), str(a.reproduce)]).returncode
    if a.replay:
        return replay(exe)
    runs = a.runs if a.runs is not None or a.time else 200000
    rc, log = run(exe, runs=runs, seconds=a.time, seed=a.seed, jobs=a.jobs, max_len=a.max_len)
    st = stats(log)
    print("[fuzz] " + " ".join(f"{k}={v}" for k, v in st.items()), flush=True)
    if rc != 0:
        print(log[-6000:], file=sys.stderr)
        print(f"[fuzz] FAILED (exit {rc}); the input is in {BUILD / 'crashes'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
