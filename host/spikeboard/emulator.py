"""Launch the spikeboard firmware in an emulator: the one place QEMU is started.

The firmware's console UART becomes a loopback TCP server that pyserial opens
as ``socket://127.0.0.1:PORT``::

    with Emulator(find_firmware("netduinoplus2")) as emu:
        link = serial.serial_for_url(emu.url)
        ...

QEMU (tested): ``qemu-system-arm -M netduinoplus2`` (STM32F405, USART1 on the
socket, semihosting on so the firmware can end the run with an exit code).
Renode (``kind="renode"``): same idea through boards/<board>/renode.resc;
untested on the development machine.
"""

from __future__ import annotations

from .errors import LinkError

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

__all__ = ["Emulator", "EmulatorError", "find_firmware", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parents[2]

#: QEMU's seccomp sandbox: the firmware's semihosting cannot spawn a host
#: process (SYS_SYSTEM), raise privileges, use obsolete system calls or change
#: resource limits. QEMU has no switch that keeps semihosting to exit codes and
#: the console: its file calls stay open (docs/robustness.md).
QEMU_SANDBOX = ("-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny")

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0


def _die_with_parent() -> None:
    """In the emulator's child process, before exec: the kernel kills it when
    the process that started it dies, however that dies (SIGKILL included), so
    no emulator is left running and listening (Linux prctl PR_SET_PDEATHSIG;
    elsewhere stop() and the session's close are the only way)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)   # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


class EmulatorError(LinkError):
    """The emulator could not be found, started or stopped."""


def find_firmware(board: str = "netduinoplus2", root: Optional[Path] = None) -> Path:
    """Path of the built firmware ELF for ``board`` (the PlatformIO env name)."""
    root = Path(root) if root is not None else REPO_ROOT
    elf = root / ".pio" / "build" / board / "firmware.elf"
    if not elf.is_file():
        raise EmulatorError(
            f"firmware not built: {elf} is missing; build it with "
            f"`tools/setup-pio.sh && .venv/bin/pio run -e {board}` in {root}"
        )
    return elf


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    """True if a socket listens on loopback ``port``.

    Reads /proc/net/tcp instead of connecting: QEMU's ``server=on,wait=on``
    serial takes the first connection as its one client, so a probe
    connection would steal the UART."""
    found = False
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as fp:
                next(fp, None)
                for line in fp:
                    parts = line.split()
                    if len(parts) > 3 and parts[3] == "0A":  # TCP_LISTEN
                        if int(parts[1].rsplit(":", 1)[1], 16) == port:
                            found = True
        except OSError:
            continue
    return found


class Emulator:
    """One emulated board whose UART is a TCP socket on the loopback."""

    def __init__(
        self,
        firmware: Path,
        machine: str = "netduinoplus2",
        icount: Optional[int] = None,
        extra_args: Sequence[str] = (),
        kind: str = "qemu",
        board: str = "netduinoplus2",
        ready_byte: Optional[bytes] = b"\x00",
    ) -> None:
        if kind not in ("qemu", "renode"):
            raise EmulatorError(f"unknown emulator kind {kind!r} (qemu or renode)")
        self.firmware = Path(firmware)
        self.machine = machine
        self.icount = icount
        self.extra_args = tuple(extra_args)
        self.kind = kind
        self.board = board
        self.ready_byte = ready_byte
        self.port: Optional[int] = None
        self.url: Optional[str] = None
        self.exit_code: Optional[int] = None
        self._proc: Optional[subprocess.Popen] = None
        self._log: Optional[Path] = None
        self._log_is_temp = False

    # -- command lines -------------------------------------------------------
    def command(self, port: int) -> list:
        if self.kind == "qemu":
            return self._qemu_command(port)
        return self._renode_command(port)

    def _qemu_command(self, port: int) -> list:
        exe = shutil.which("qemu-system-arm")
        if exe is None:
            raise EmulatorError(
                "qemu-system-arm not found on PATH; install it with "
                "`apt-get install -y --no-install-recommends qemu-system-arm`"
            )
        cmd = [
            exe, "-M", self.machine, "-nographic", "-monitor", "none",
            "-kernel", str(self.firmware),
            "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on",
            "-semihosting-config", "enable=on,target=native", *QEMU_SANDBOX,
        ]
        if self.icount is not None:
            cmd += ["-icount", f"shift={int(self.icount)}"]
        return cmd + list(self.extra_args)

    def _renode_command(self, port: int) -> list:  # untested here
        exe = shutil.which("renode")
        if exe is None:
            raise EmulatorError(
                "renode not found on PATH; install Renode or use kind='qemu'"
            )
        resc = REPO_ROOT / "boards" / self.board / "renode.resc"
        if not resc.is_file():
            raise EmulatorError(f"no Renode script for board {self.board}: {resc} is missing")
        script = f"$bin=@{self.firmware}; $port={port}; include @{resc}"
        return [exe, "--disable-xwt", "--console", "-e", script] + list(self.extra_args)

    # -- life cycle ----------------------------------------------------------
    def start(self) -> str:
        """Launch the emulator; return the pyserial URL of its UART."""
        if self.alive():
            raise EmulatorError("emulator already running")
        if not self.firmware.is_file():
            raise EmulatorError(f"firmware not found: {self.firmware}")
        port = _free_port()
        cmd = self.command(port)
        self.exit_code = None
        # stdout (semihosting prints) and stderr go to a log file, never to a
        # pipe nobody reads (a full pipe would stall the emulator).
        self._drop_temp_log()
        log = os.environ.get("SPIKEBOARD_EMULATOR_LOG")
        self._log_is_temp = not log
        if log:
            self._log = Path(log)
        else:
            fd, name = tempfile.mkstemp(prefix="spikeboard-emu-", suffix=".log")
            os.close(fd)
            self._log = Path(name)
        with open(self._log, "ab") as out:
            try:
                self._proc = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    cwd=str(REPO_ROOT), start_new_session=True, preexec_fn=_die_with_parent,
                )
            except OSError as exc:
                raise EmulatorError(f"cannot start {cmd[0]}: {exc}") from exc
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not _listening(port):
            if self._proc.poll() is not None:
                self.exit_code = self._proc.returncode
                self._proc = None
                raise EmulatorError(
                    f"{self.kind} exited with code {self.exit_code} before listening: "
                    f"{self.output().strip()[-2000:]}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise EmulatorError(
                    f"{self.kind} did not listen on 127.0.0.1:{port} within "
                    f"{_START_TIMEOUT_S:.0f} s: {self.output().strip()[-2000:]}"
                )
            time.sleep(0.02)
        if self.kind == "qemu" and self.ready_byte is not None:
            self._await_ready(port)
        self.port = port
        self.url = f"socket://127.0.0.1:{port}"
        return self.url

    def _await_ready(self, port: int) -> None:
        """Connect once, wait for the firmware's boot byte, disconnect.

        QEMU's USART model drops every byte that arrives before the firmware
        has enabled the receiver, and with ``server=on,wait=on`` the guest
        only starts when a client connects: a client that writes at once
        would lose its first bytes. The firmware sends one 0x00 (a COBS frame
        delimiter) right after its UART is up; after this probe the socket
        listens again for the real client, with the firmware ready."""
        ready = self.ready_byte
        if ready is None:          # a machine that announces nothing: nothing to wait for
            return
        deadline = time.monotonic() + _START_TIMEOUT_S
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=_START_TIMEOUT_S) as s:
                got = b""
                while not got.endswith(ready):
                    s.settimeout(max(0.01, deadline - time.monotonic()))
                    chunk = s.recv(64)
                    if not chunk:
                        break
                    got += chunk
        except OSError as exc:
            self.stop()
            raise EmulatorError(
                f"firmware did not announce its UART (byte {self.ready_byte!r}) on "
                f"127.0.0.1:{port}: {exc}; output: {self.output().strip()[-2000:]}"
            ) from exc
        if not got.endswith(ready):
            self.stop()
            raise EmulatorError(
                f"emulator closed the UART before the firmware's ready byte; "
                f"output: {self.output().strip()[-2000:]}"
            )
        # QEMU re-listens after the probe disconnects.
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not _listening(port):
            if not self.alive() or time.monotonic() > deadline:
                self.stop()
                raise EmulatorError("emulator stopped listening after the ready probe")
            time.sleep(0.01)

    def alive(self) -> bool:
        if self._proc is None:
            return False
        rc = self._proc.poll()
        if rc is not None:
            self.exit_code = rc
            return False
        return True

    def wait(self, timeout: Optional[float] = None) -> int:
        """Wait for the firmware to end the run (semihosting exit); its code."""
        if self._proc is None:
            if self.exit_code is None:
                raise EmulatorError("emulator not started")
            return self.exit_code
        try:
            self.exit_code = self._proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise EmulatorError(f"emulator still running after {timeout} s") from exc
        return self.exit_code

    def stop(self) -> Optional[int]:
        """Terminate (then kill) the emulator; idempotent. Returns its exit code."""
        proc, self._proc = self._proc, None
        if proc is None:
            return self.exit_code
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                try:
                    proc.wait(_STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired as exc:
                    raise EmulatorError(f"emulator pid {proc.pid} did not die") from exc
        self.exit_code = proc.returncode
        self.port = None
        self.url = None
        return self.exit_code

    def _drop_temp_log(self) -> None:
        if self._log is not None and self._log_is_temp:
            try:
                self._log.unlink()
            except OSError:
                pass
        self._log = None

    def output(self) -> str:
        """What the emulator printed so far (semihosting output, QEMU errors)."""
        if self._log is None:
            return ""
        try:
            return self._log.read_text(errors="replace")
        except OSError:
            return ""

    def restart(self) -> str:
        self.stop()
        return self.start()

    def __enter__(self) -> "Emulator":
        if not self.alive():
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        self._drop_temp_log()

    def __repr__(self) -> str:
        state = f"running at {self.url}" if self.alive() else f"stopped (exit {self.exit_code})"
        return f"Emulator({self.kind}, {self.machine}, {self.firmware.name}, {state})"
