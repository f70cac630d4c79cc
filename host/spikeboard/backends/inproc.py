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
        self._chip = ffi.new("sb_chip_t *")
        self._server = ffi.new("sb_server_t *")
        self._board = ffi.new("char[]", board.encode())
        self._tx = ffi.callback("void(void *, const uint8_t *, size_t)", self._on_tx)
        io = ffi.new("sb_server_io_t *")
        io.tx = self._tx
        io.board = self._board
        port = lib.sb_chip_port(self._chip, ffi.NULL)
        lib.sb_server_init(self._server, io, port)
        self.timeout = 0.05
        self.closed = False

    def _on_tx(self, ctx, buf, n):
        self._out += ffi.buffer(buf, n)

    @property
    def server(self):
        return self._server

    @property
    def in_waiting(self) -> int:
        return len(self._out)

    def write(self, data: bytes) -> int:
        lib.sb_server_rx_buf(self._server, data, len(data))
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

    def __init__(self, *, timeout: float = 0.5, retries: int = 3, transport=None):
        self.transport = transport or ServerTransport()
        super().__init__("inproc://", link=Link("inproc://", timeout=timeout, retries=retries,
                                                transport=self.transport))
