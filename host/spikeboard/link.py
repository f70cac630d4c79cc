"""The link to a board over any pyserial URL (/dev/ttyACM0, socket://host:port,
loop://): framed requests with timeouts, retries and duplicate suppression.

A request keeps its sequence number across retries; the board answers a
repeated number from its cache without running the command again, so a
retried TRAIN is never applied twice. Event frames that arrive between
responses are handed to `on_event`.

On a noisy line the link resends at once whenever it sees evidence of a
lost or damaged frame (a frame failing its CRC, the board's "bad frame"
error, a partial frame followed by silence): each resend carries the same
sequence number, so the board either runs the request (it never arrived
whole) or answers from its cache (the answer was lost). Only silence counts
against `retries`; resends on evidence of a live but noisy line are bounded
by `max_resends`. Every frame goes out between two delimiters and ends with
a doubled one, so one lost delimiter never glues two requests together."""
from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass
from typing import Callable

import serial

from ._hal import lib
from .errors import DeviceError, LinkError, describe
from .protocol import CMD_NAMES, decode_frame, encode_frame, unpack


class BoardReset(LinkError):
    """The board lost its state under the host: it was reset (power cycle,
    watchdog, reset pin) or the link to it was lost and reopened."""


@dataclass
class LinkStats:
    requests: int = 0
    retries: int = 0       # resends of a request (same sequence number)
    timeouts: int = 0      # waits for an answer that ended in silence
    bad_frames: int = 0    # received frames that failed COBS/CRC
    resyncs: int = 0       # times the link dropped a damaged/partial frame or the board reported one
    stale: int = 0         # answers to an earlier request or attempt (duplicates), ignored
    events: int = 0
    events_lost: int = 0   # event frames missing from the sequence (damaged on the line)
    bytes_tx: int = 0
    bytes_rx: int = 0
    reconnects: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def __sub__(self, other: "LinkStats") -> "LinkStats":
        a, b = self.as_dict(), other.as_dict()
        return LinkStats(**{k: a[k] - b[k] for k in a})

    def __add__(self, other: "LinkStats") -> "LinkStats":
        a, b = self.as_dict(), other.as_dict()
        return LinkStats(**{k: a[k] + b[k] for k in a})


class Link:
    def __init__(self, url: str, *, timeout: float = 2.0, retries: int = 6, baudrate: int = 115200,
                 on_event: Callable[[bytes, int], None] | None = None, transport=None, faults=None,
                 idle_gap: float = 0.1, max_resends: int = 2000, stats: LinkStats | None = None):
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.max_resends = max_resends
        self.idle_gap = idle_gap      # silence after part of a frame: its delimiter was lost
        self.on_event = on_event
        self.stats = stats if stats is not None else LinkStats()
        self._seq = random.randrange(0x10000 - 1)
        self._buf = bytearray()
        self._last_rx = time.monotonic()
        self._ev_seq: int | None = None
        self.loss = 0.0               # running estimate of the line's loss per byte (ln scale)
        self.clean_run = 0            # requests in a row that went through at the first try
        if transport is not None:
            self.port = transport
        else:
            try:
                self.port = serial.serial_for_url(url, baudrate=baudrate, timeout=0.05)
            except (serial.SerialException, OSError, ValueError) as e:
                raise LinkError(f"cannot open {url}: {e}") from None
        self.faults = None
        if faults is not None:
            from .faults import FaultInjector, FaultSpec, FaultyTransport

            spec = None if isinstance(faults, FaultInjector) else FaultSpec.parse(faults)
            inj = faults if isinstance(faults, FaultInjector) else spec.injector() if spec else None
            if inj is not None:              # (an empty spec: no faults)
                self.port = FaultyTransport(self.port, inj)
                self.faults = inj

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
        """The next frame's bytes; None on timeout; b"" for a partial frame
        that went silent (its delimiter was lost)."""
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
            now = time.monotonic()
            if chunk:
                self.stats.bytes_rx += len(chunk)
                self._last_rx = now
                self._buf += chunk
                if len(self._buf) > 4 * lib.SB_MAX_FRAME and 0 not in self._buf:
                    self._buf.clear()  # noise with no delimiter: drop it and resynchronise
                    self.stats.resyncs += 1
            elif self._buf and now - self._last_rx > self.idle_gap:
                self._buf.clear()      # part of a frame, then silence: the delimiter was lost
                self.stats.resyncs += 1
                return b""

    def _write(self, data: bytes) -> None:
        try:
            self.port.write(data)
            self.port.flush()
            self.stats.bytes_tx += len(data)
        except (serial.SerialException, OSError) as e:
            raise LinkError(f"{self.url}: write failed: {e}") from None

    def best_chunk(self, largest: int, smallest: int = 32) -> int:
        """Payload size that carries the most data per byte sent on this line:
        about 1 / (loss per byte), a power of two within [smallest, largest];
        at most 256 bytes until the line has shown itself clean (a 1 KB frame
        on a line losing 1.5 % of its bytes would almost never get through,
        and a request is never cut short: it may not be idempotent)."""
        best = largest if self.clean_run >= 8 else min(largest, 256)
        if self.loss > 0:
            best = min(best, 1 << max(0, int(math.log2(1.0 / self.loss))))
        return max(smallest, best)

    def request(self, cmd: int, payload: bytes = b"", *, timeout: float | None = None,
                max_resends: int | None = None) -> bytes:
        """Send one request and return its response payload."""
        seq = self._next_seq()
        # a leading delimiter ends any partial frame the board holds; a doubled
        # trailing one survives the loss of one delimiter byte
        frame = b"\x00" + encode_frame(cmd, 0, seq, payload) + b"\x00"
        name = CMD_NAMES.get(cmd, hex(cmd))
        timeout = self.timeout if timeout is None else timeout
        self.stats.requests += 1
        silent = resends = 0
        attempt = 0
        max_resends = self.max_resends if max_resends is None else max_resends
        while True:
            if attempt:
                self.stats.retries += 1
            attempt += 1
            self._write(frame)
            deadline = time.monotonic() + timeout
            resend = False
            while not resend:
                enc = self._read_frame(deadline)
                if enc is None:
                    self.stats.timeouts += 1
                    silent += 1
                    break
                if not enc:            # partial frame gone silent: ask again
                    resend = True
                    continue
                try:
                    rcmd, flags, rseq, body = decode_frame(enc)
                except LinkError:
                    # a damaged frame, most likely our answer: ask again (the
                    # board answers a repeated sequence number from its cache)
                    self.stats.bad_frames += 1
                    self.stats.resyncs += 1
                    resend = True
                    continue
                if flags & lib.SB_F_EVENT:
                    self.stats.events += 1
                    if self._ev_seq is not None and rseq != (self._ev_seq + 1) & 0xFFFF:
                        self.stats.events_lost += (rseq - self._ev_seq - 1) & 0xFFFF
                    self._ev_seq = rseq
                    if self.on_event:
                        self.on_event(body, rcmd)
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
                if not silent:
                    sample = math.log(attempt) / (len(frame) + len(enc) + 1)
                    self.loss += 0.1 * (sample - self.loss)
                    self.clean_run = self.clean_run + 1 if attempt == 1 else 0
                return body
            if resend:
                resends += 1
            if silent > self.retries or resends > max_resends:
                raise LinkError(f"{self.url}: no answer to {name} after {attempt} tries "
                                f"({silent} timeouts, {resends} resends on damaged frames; link totals: "
                                f"{self.stats.timeouts} timeouts, {self.stats.bad_frames} bad frames)")
