"""No emulator outlives what started it (issue 21, point 7): a SIGKILL of the
process that started QEMU takes QEMU with it (the kernel's parent-death
signal), and `spikeboard emulate` stops QEMU on SIGTERM."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.backends import emulator_backend

START = ("import sys\n"
         "from spikeboard.emulator import Emulator, find_firmware\n"
         "e = Emulator(find_firmware('netduinoplus2'))\n"
         "e.start()\n"
         "print(e._proc.pid, flush=True)\n"
         "sys.stdin.read()\n")


def _gone(pid: int, seconds: float = 5.0) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:            # a zombie of ours would still answer kill(0): reap it if it is one
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    return False


@pytest.fixture
def emulator_ready():
    emulator_backend().close()      # skips with the reason when QEMU or the firmware is missing


def test_qemu_dies_with_a_killed_parent(emulator_ready):
    p = subprocess.Popen([sys.executable, "-c", START], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    qemu = int(p.stdout.readline())
    os.kill(qemu, 0)                               # running
    p.kill()
    p.wait(10)
    assert _gone(qemu), f"qemu-system-arm {qemu} survived the SIGKILL of its parent"


def test_emulate_stops_qemu_on_sigterm(emulator_ready):
    p = subprocess.Popen([sys.executable, "-m", "spikeboard.cli", "emulate"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    url = p.stdout.readline().strip()
    assert url.startswith("socket://")
    port = int(url.rsplit(":", 1)[1])
    found = subprocess.run(["pgrep", "-f", f"tcp:127.0.0.1:{port}"], capture_output=True, text=True).stdout.split()
    assert found, "no qemu-system-arm found listening on the URL's port"
    p.send_signal(signal.SIGTERM)
    assert p.wait(10) == 0 and "emulator stopped" in p.stderr.read()
    assert all(_gone(int(pid)) for pid in found)
