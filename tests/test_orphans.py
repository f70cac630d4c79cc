"""The emulator as a host process (issue 21, points 7 and 10): a SIGKILL of the
process that started QEMU takes QEMU with it (the kernel's parent-death
signal), `spikeboard emulate` stops QEMU on SIGTERM, and QEMU runs in its seccomp
sandbox."""
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


def test_qemu_runs_in_its_seccomp_sandbox(emulator_ready):
    """Issue 21, point 10: the firmware's semihosting runs on the host, so QEMU is
    started under its seccomp sandbox (no spawned host process, no privilege change)."""
    from spikeboard.emulator import Emulator, find_firmware

    e = Emulator(find_firmware("netduinoplus2"))
    cmd = e.command(4321)
    opts = dict(kv.split("=") for kv in cmd[cmd.index("-sandbox") + 1].split(",")[1:])
    assert cmd[cmd.index("-sandbox") + 1].startswith("on,") and opts["spawn"] == "deny"
    assert opts["elevateprivileges"] == "deny"
    url = e.start()                                 # and the sandboxed board answers
    try:
        from spikeboard.backends.remote import RemoteBackend

        with RemoteBackend(url) as b:
            assert b.info().board == "netduinoplus2"
    finally:
        e.stop()
