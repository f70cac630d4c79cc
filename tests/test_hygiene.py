"""Firmware hygiene (issue 7, part 5).

  - cppcheck over hal/ and firmware/ for each board configuration; findings
    that are not defects are listed, with the reason, in
    tests/cppcheck-suppressions.txt;
  - stack: tools/stack_usage.py builds the netduinoplus2 firmware into
    build/stack with -fstack-usage and -fcallgraph-info=su and bounds the worst
    call path (main thread plus every interrupt handler nested) below the stack
    the board's linker script guarantees; the per-function report is printed;
  - hal/ built for the host under ASan + UBSan (tests/sanitize/run.py): the seed
    corpus and regression inputs through the command server, and chip-model
    sessions (programming, pulse schemes, inference, training, image);
  - warnings as errors: hal/src/*.c with -std=c99 -Wall -Wextra -Werror -pedantic
    at the optimisation levels the cffi module and the firmware use, and the
    firmware's -Werror kept in platformio.ini.

Every tool used here is installed by tools/setup.sh: a missing one fails.
"""
from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUPPRESSIONS = ROOT / "tests" / "cppcheck-suppressions.txt"
BOARDS = {"netduinoplus2": "BOARD_NETDUINOPLUS2", "nucleo_f446re": "BOARD_NUCLEO_F446RE"}


def _tool(name: str) -> str:
    exe = shutil.which(name)
    assert exe, f"{name} not found: tools/setup.sh installs it"
    return exe


# ---- (a) static check -------------------------------------------------------------------------------

@pytest.mark.parametrize("board", sorted(BOARDS))
def test_cppcheck(board):
    cmd = [_tool("cppcheck"), "--enable=warning,style,performance,portability", "--std=c99",
           "--inline-suppr", f"--suppressions-list={SUPPRESSIONS.relative_to(ROOT)}", "--error-exitcode=1",
           "--quiet", "--template={file}:{line}: {severity} ({id}): {message}",
           "-I", "hal/include", "-I", "firmware/src", f"-D{BOARDS[board]}", f'-DSB_BOARD_NAME="{board}"',
           "-DSB_HAL_ID=0u", "hal/src", "firmware"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    findings = [ln for ln in r.stderr.splitlines() if re.match(r"^\S+:\d+: ", ln)]
    assert r.returncode == 0 and not findings, (
        "cppcheck findings (fix them, or suppress with a reason in tests/cppcheck-suppressions.txt):\n"
        + (r.stderr or r.stdout))


# ---- (b) stack usage --------------------------------------------------------------------------------

def test_stack_worst_path_fits():
    _tool("arm-none-eabi-objdump")
    tool = ROOT / "tools" / "stack_usage.py"
    r = subprocess.run([sys.executable, str(tool), "--board", "netduinoplus2"], cwd=ROOT, capture_output=True,
                       text=True, timeout=900)
    print("\n" + r.stdout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    j = subprocess.run([sys.executable, str(tool), "--board", "netduinoplus2", "--no-build", "--json"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    rep = json.loads(j.stdout)
    limit = rep["limits"]["min_stack"]
    assert limit and limit <= rep["limits"]["room_after_bss"]
    assert rep["total"] < limit, f"worst case {rep['total']} bytes >= {limit} bytes of stack"
    assert not rep["problems"], rep["problems"]
    # the graph reaches the whole command path, or the bound means nothing
    names = {f["function"].split(":")[-1].split(".")[0] for f in rep["functions"] if f["reached"]}
    for fn in ("main", "sb_server_rx", "handle_frame", "dispatch", "sb_learn_train", "sb_frame_encode",
               "sb_frame_decode", "sb_dev_program", "port_exec"):
        assert fn in names, f"{fn} not reached from the vector table"
    # every indirect call was matched to the functions stored in that pointer field
    assert not rep["unresolved_indirect"], rep["unresolved_indirect"]


# ---- (c) ASan / UBSan ---------------------------------------------------------------------------------

def test_hal_under_asan_ubsan():
    _tool("gcc")
    r = subprocess.run([sys.executable, str(ROOT / "tests" / "sanitize" / "run.py")], cwd=ROOT,
                       capture_output=True, text=True, timeout=900)
    print("\n" + r.stdout)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-8000:]}"
    assert "runtime error" not in r.stderr and "ERROR: AddressSanitizer" not in r.stderr, r.stderr[-8000:]
    m = re.search(r"clean: (\d+) wire inputs", r.stdout)
    assert m and int(m.group(1)) > 60, r.stdout


# ---- (d) warnings as errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("opt", ["-O0", "-O2", "-O3"])
def test_hal_builds_without_warnings(opt, tmp_path):
    """The cffi module compiles hal/src with -O3 and the firmware with -O2;
    some warnings only show at one level."""
    gcc = _tool("gcc")
    failures = []
    for src in sorted((ROOT / "hal" / "src").glob("*.c")):
        cmd = [gcc, "-std=c99", opt, "-Wall", "-Wextra", "-Werror", "-pedantic", "-DSB_HAL_ID=0x12345678u",
               f"-I{ROOT / 'hal' / 'include'}", "-c", str(src), "-o", str(tmp_path / (src.stem + ".o"))]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            failures.append(f"{src.relative_to(ROOT)}:\n{r.stderr}")
    assert not failures, "\n".join(failures)


def test_firmware_warnings_are_errors():
    ini = configparser.ConfigParser(interpolation=None, strict=False)
    ini.read(ROOT / "platformio.ini")
    flags = ini.get("common", "build_flags").split()
    for f in ("-Wall", "-Wextra", "-Werror", "-fstack-usage"):
        assert f in flags, f"platformio.ini [common] build_flags lost {f}"
