"""The link to a board over any pyserial URL (/dev/ttyACM0, socket://host:port,
loop://): framed requests with timeouts, retries and duplicate suppression.

A request keeps its sequence number across retries; the board answers a
repeated number from its cache without running the command again, so a
retried TRAIN is never applied twice. Event frames that arrive between
responses are handed to `on_event`."""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable

import serial

from ._hal import lib
from .errors import DeviceError, LinkError, describe
from .protocol import CMD_NAMES, decode_frame, encode_frame, unpack


@dataclass
class LinkStats:
    requests: int = 0
    retries: int = 0
    timeouts: int = 0
    bad_frames: int = 0
    resyncs: int = 0
    stale: int = 0
    events: int = 0


class Link:
    def __init__(self, url: str, *, timeout: float = 2.0, retries: int = 6, baudrate: int = 115200,
                 on_event: Callable[[bytes], None] | None = None, transport=None):
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.on_event = on_event
        self.stats = LinkStats()
        self._seq = random.randrange(0x10000 - 1)
        self._buf = bytearray()
        if transport is not None:
            self.port = transport
        else:
            try:
                self.port = serial.serial_for_url(url, baudrate=baudrate, timeout=0.05)
            except (serial.SerialException, OSError, ValueError) as e:
                raise LinkError(f"cannot open {url}: {e}") from None

    def close(self) -> None:
        try:
            self.port.close()
        except Exception:  # closing a dead port must not mask the real error
            pass

    def __enter__(self) -> "Link":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFF
        if self._seq == 0xFFFF:  # reserved for answers to frames whose header was unreadable
            self._seq = 0
        return self._seq

    def _read_frame(self, deadline: float) -> bytes | None:
        while True:
            i = self._buf.find(0)
            if i >= 0:
                frame = bytes(self._buf[:i])
                del self._buf[:i + 1]
                if frame:
                    return frame
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                chunk = self.port.read(max(1, getattr(self.port, "in_waiting", 0) or 1))
            except (serial.SerialException, OSError) as e:
                raise LinkError(f"{self.url}: link lost: {e}") from None
            if chunk:
                self._buf += chunk
                if len(self._buf) > 4 * lib.SB_MAX_FRAME and 0 not in self._buf:
                    self._buf.clear()  # noise with no delimiter: drop it and resynchronise
                    self.stats.resyncs += 1

    def _write(self, data: bytes) -> None:
        try:
            self.port.write(data)
            self.port.flush()
        except (serial.SerialException, OSError) as e:
            raise LinkError(f"{self.url}: write failed: {e}") from None

    def request(self, cmd: int, payload: bytes = b"", *, timeout: float | None = None) -> bytes:
        """Send one request and return its response payload."""
        seq = self._next_seq()
        # a leading delimiter ends any partial frame the board holds
        frame = b"\x00" + encode_frame(cmd, 0, seq, payload)
        name = CMD_NAMES.get(cmd, hex(cmd))
        timeout = self.timeout if timeout is None else timeout
        self.stats.requests += 1
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
            self._write(frame)
            deadline = time.monotonic() + timeout
            resend = False
            while not resend:
                enc = self._read_frame(deadline)
                if enc is None:
                    self.stats.timeouts += 1
                    break
                try:
                    rcmd, flags, rseq, body = decode_frame(enc)
                except LinkError:
                    self.stats.bad_frames += 1
                    continue
                if flags & lib.SB_F_EVENT:
                    self.stats.events += 1
                    if self.on_event:
                        self.on_event(body)
                    continue
                if rcmd == lib.SB_CMD_ERROR and rseq == 0xFFFF:
                    # the board saw a corrupted frame: ours, most likely
                    self.stats.resyncs += 1
                    resend = True
                    continue
                if rseq != seq:
                    self.stats.stale += 1
                    continue
                if rcmd == lib.SB_CMD_ERROR:
                    e = unpack("sb_msg_error_t", body)
                    raise DeviceError(f"board refused {name}: {describe(e.code)}"
                                      + (f", detail {e.detail}" if e.detail else ""), e.code, e.detail)
                if rcmd != cmd:
                    self.stats.stale += 1
                    continue
                return body
        raise LinkError(f"{self.url}: no answer to {name} after {self.retries + 1} tries "
                        f"({self.stats.timeouts} timeouts, {self.stats.bad_frames} bad frames)")
