#!/usr/bin/env python3
"""Build hal/ for the host under ASan + UBSan with gcc and run tests/sanitize/driver.c.

    .venv/bin/python tests/sanitize/run.py

Compiles hal/src/*.c, tests/fuzz/fuzz_server.c (its entry point, no libFuzzer)
and tests/sanitize/driver.c with
    gcc -std=c99 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all
into build/sanitize/sb_sanitize, then runs it over the seed corpus
(tests/fuzz/corpus.py) and tests/fuzz/regressions/, plus the chip-model
sessions of the driver. Exit status: the driver's (0 clean)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BUILD = ROOT / "build" / "sanitize"
FUZZ = ROOT / "tests" / "fuzz"

CFLAGS = ["-std=c99", "-g", "-O1", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
          "-fno-sanitize-recover=all", "-Wall", "-Wextra", "-Werror"]


def build() -> Path:
    sys.path.insert(0, str(FUZZ))
    import corpus  # noqa: E402  (needs the spikeboard package: run with the project's venv)

    corpus.prepare(BUILD)
    exe = BUILD / "sb_sanitize"
    srcs = [HERE / "driver.c", FUZZ / "fuzz_server.c", *sorted((ROOT / "hal" / "src").glob("*.c"))]
    cmd = ["gcc", *CFLAGS, f"-I{ROOT / 'hal' / 'include'}", f"-I{BUILD}", *map(str, srcs), "-o", str(exe)]
    print("[sanitize] " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return exe


def inputs() -> list[Path]:
    regs = FUZZ / "regressions"
    files = sorted((BUILD / "seeds").iterdir())
    if regs.is_dir():
        files += sorted(f for f in regs.iterdir() if f.is_file() and not f.name.startswith("README"))
    return files


def run(exe: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:"
                                        "detect_stack_use_after_return=1:check_initialization_order=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    return subprocess.run([str(exe), *map(str, inputs())], capture_output=True, text=True, env=env, timeout=600)


def main() -> int:
    try:
        exe = build()
    except subprocess.CalledProcessError:
        return 1
    r = run(exe)
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
