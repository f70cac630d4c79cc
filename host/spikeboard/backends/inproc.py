"""The board's command server (hal/src/server.c) running in this process on
the virtual chip, behind a serial-like transport. A RemoteBackend over it
exercises the whole wire protocol without an emulator: the protocol tests,
the faulty-link tests and the fuzz harness use it."""
from __future__ import annotations

from .._hal import ffi, lib
from ..link import Link
from .remote import RemoteBackend


class ServerTransport:
    """read/write/flush/close like a pyserial port; bytes written go into the
    C server, frames it sends come back from read()."""

    def __init__(self, board: str = "inproc"):
        self._out = bytearray()
        self._board = ffi.new("char[]", board.encode())
        self._tx = ffi.callback("void(void *, const uint8_t *, size_t)", self._on_tx)
        self._reboot_cb = ffi.callback("void(void *)", self._on_reboot)
        self._pending_reboot = False
        self.boots = 0
        self.timeout = 0.05
        self.closed = False
        self.reboot(lib.SB_RESET_REASON_POWER_ON)

    def reboot(self, reason: int = lib.SB_RESET_REASON_POWER_ON) -> None:
        """Reset the board: a fresh server on a fresh virtual chip (state lost),
        reporting `reason` (SB_RESET_REASON_*) in HELLO, as the firmware reports
        the reset cause it latched from RCC_CSR (firmware/src/watchdog.c)."""
        self._out.clear()
        self._chip = ffi.new("sb_chip_t *")
        self._server = ffi.new("sb_server_t *")
        self._io = ffi.new("sb_server_io_t *")
        self._io.tx = self._tx
        self._io.board = self._board
        self._io.reboot = self._reboot_cb
        self._io.reset_reason = reason
        port = lib.sb_chip_port(self._chip, ffi.NULL)
        lib.sb_server_init(self._server, self._io, port)
        self.boots += 1

    def _on_reboot(self, ctx):
        self._pending_reboot = True     # RESET(board) asked: reboot once the response is out

    def _on_tx(self, ctx, buf, n):
        self._out += ffi.buffer(buf, n)

    @property
    def server(self):
        return self._server

    @property
    def in_waiting(self) -> int:
        return len(self._out)

    def write(self, data: bytes) -> int:
        data = bytes(data)
        for i in range(len(data)):
            lib.sb_server_rx(self._server, data[i])
            if self._pending_reboot:          # the bytes after a RESET(board) hit a booting board
                self._pending_reboot = False
                out = bytes(self._out)
                self.reboot(lib.SB_RESET_REASON_SOFTWARE)
                self._out += out
        return len(data)

    def read(self, n: int = 1) -> bytes:
        chunk = bytes(self._out[:n])
        del self._out[:n]
        return chunk

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class InprocBackend(RemoteBackend):
    """The protocol path end to end, in process."""

    name = "inproc"
    slow_timeout = 0.0       # the in-process board answers at once: silence means a lost frame

    def __init__(self, *, timeout: float = 0.5, retries: int = 3, transport=None, faults=None):
        self.transport = transport or ServerTransport()
        link = Link("inproc://", timeout=timeout, retries=retries, transport=self.transport, faults=faults,
                    idle_gap=min(0.1, timeout / 2))
        super().__init__("inproc://", link=link)
        if link.faults is not None:
            link.faults.on_reset = self.transport.reboot

    def restart_board(self, reason: int = lib.SB_RESET_REASON_POWER_ON) -> None:
        """Reset the in-process board (state lost), e.g. with lib.SB_RESET_REASON_WATCHDOG
        for a watchdog bite."""
        self.transport.reboot(reason)

    def reconnect(self) -> None:
        old = self.link
        self.link = Link("inproc://", timeout=old.timeout, retries=old.retries, transport=self.transport,
                         on_event=self._on_event, idle_gap=old.idle_gap, max_resends=old.max_resends,
                         stats=old.stats)
        if old.faults is not None:       # keep the fault plan going on the same stream
            from ..faults import FaultyTransport

            self.link.port = FaultyTransport(self.transport, old.faults)
            self.link.faults = old.faults
        self.link.stats.reconnects += 1
        self._frames_seen = None
