"""A faulty link, on purpose: a wrapper around any pyserial-like port object
(read/write/flush/close, optional in_waiting) that corrupts, drops,
duplicates and delays bytes at given rates, in both directions, from a seed,
and can reset the board at given points of the byte stream.

    spec = FaultSpec.parse("corrupt=0.01,drop=0.005,seed=1")
    link = Link(url, faults=spec)          # or FaultyTransport(port, spec.injector())

Every byte draws its fate from its own direction's generator in stream
order, so a seed gives the same faults at the same byte positions whatever
sizes the reads and writes come in. A delay stalls the stream before a byte
(order is kept, as on a real UART with a slow USB bridge). Resets: `reset_at`
lists byte positions of the whole stream (written + read bytes) at which the
injector calls `on_reset` (set by the backend: reboot the in-process server,
or power off the emulator); the bytes of that chunk after the position are
lost with the board."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields
from typing import Callable

import numpy as np

from ._hal import lib
from .errors import ConfigError


@dataclass(frozen=True)
class FaultSpec:
    corrupt: float = 0.0      # per byte: replaced by another byte value
    drop: float = 0.0         # per byte: lost
    duplicate: float = 0.0    # per byte: sent twice
    delay: float = 0.0        # per byte: the stream stalls `delay_ms` before it
    delay_ms: float = 5.0
    seed: int = 0
    direction: str = "both"   # both | tx (host -> board) | rx (board -> host)
    reset_at: tuple[int, ...] = ()   # stream byte positions at which the board resets
    reset_reason: int = lib.SB_RESET_REASON_POWER_ON   # SB_RESET_REASON_* the rebooted in-process board reports

    _RATES = ("corrupt", "drop", "duplicate", "delay")

    def __post_init__(self):
        for k in self._RATES:
            v = getattr(self, k)
            if not 0.0 <= v < 1.0:
                raise ConfigError(f"fault rate {k}={v}: must be in [0, 1)", field="--faults")
        if getattr(self, "drop") + getattr(self, "corrupt") + getattr(self, "duplicate") >= 1.0:
            raise ConfigError("fault rates corrupt + drop + duplicate must stay below 1", field="--faults")
        if self.direction not in ("both", "tx", "rx"):
            raise ConfigError(f"fault direction {self.direction!r}: both, tx or rx", field="--faults")
        if self.delay_ms < 0:
            raise ConfigError(f"delay_ms={self.delay_ms}: must be >= 0", field="--faults")

    @classmethod
    def parse(cls, text: str | None) -> "FaultSpec | None":
        """'corrupt=0.01,drop=0.005,dup=0.001,delay=0.001,delay_ms=5,seed=1,dir=both' -> FaultSpec.
        reason: a reset reason's code or name (protocol.RESET_REASONS: power-on, watchdog, ...)."""
        if text is None or isinstance(text, FaultSpec):
            return text
        text = text.strip()
        if not text:
            return None
        alias = {"dup": "duplicate", "dir": "direction", "reset": "reset_at", "reason": "reset_reason"}
        names = {f.name for f in fields(cls)}
        kw: dict = {}
        for part in text.split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise ConfigError(f"{part!r}: expected name=value (e.g. corrupt=0.01,drop=0.005,seed=1)",
                                  field="--faults")
            k, v = (s.strip() for s in part.split("=", 1))
            k = alias.get(k, k)
            if k not in names:
                raise ConfigError(f"unknown fault {k!r} (corrupt, drop, dup, delay, delay_ms, seed, dir, "
                                  f"reset, reason)", field="--faults")
            try:
                if k == "direction":
                    kw[k] = v
                elif k == "reset_at":
                    kw[k] = tuple(int(x) for x in v.split(":") if x)
                elif k == "reset_reason":
                    kw[k] = _reset_reason(v)
                elif k == "seed":
                    kw[k] = int(v)
                else:
                    kw[k] = float(v)
            except ValueError:
                raise ConfigError(f"{k}={v!r}: not a number", field="--faults") from None
        return cls(**kw)

    def __str__(self) -> str:
        d = self.as_dict()
        out = [f"{k}={d[k]}" for k in self._RATES if d[k]]
        if self.delay:
            out.append(f"delay_ms={self.delay_ms:g}")
        if self.direction != "both":
            out.append(f"dir={self.direction}")
        if self.reset_at:
            out.append("reset=" + ":".join(str(x) for x in self.reset_at))
        out.append(f"seed={self.seed}")
        return ",".join(out)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["reset_at"] = list(self.reset_at)
        return d

    def injector(self) -> "FaultInjector":
        return FaultInjector(self)


def _reset_reason(v: str) -> int:
    """A reset reason by name or code."""
    from .protocol import RESET_REASONS

    codes = {name: code for code, name in RESET_REASONS.items()}
    if v in codes:
        return codes[v]
    try:
        return int(v)
    except ValueError:
        raise ConfigError(f"reason={v!r}: a reset reason ({', '.join(codes)}) or its code",
                          field="--faults") from None


@dataclass
class FaultStats:
    """What the injector did, per direction: tx = host -> board, rx = board -> host."""

    bytes_tx: int = 0
    bytes_rx: int = 0
    corrupted_tx: int = 0
    corrupted_rx: int = 0
    dropped_tx: int = 0
    dropped_rx: int = 0
    duplicated_tx: int = 0
    duplicated_rx: int = 0
    delayed_tx: int = 0
    delayed_rx: int = 0
    resets: int = 0

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def faults(self) -> int:
        return sum(getattr(self, f"{k}_{d}") for k in ("corrupted", "dropped", "duplicated", "delayed")
                   for d in ("tx", "rx"))


class FaultInjector:
    """The seeded state of a fault plan; outlives reconnects (a restarted
    emulator gets a new port, the stream positions and generators go on)."""

    def __init__(self, spec: FaultSpec):
        self.spec = spec
        self.stats = FaultStats()
        self._rng = {"tx": np.random.default_rng([spec.seed, 1]), "rx": np.random.default_rng([spec.seed, 2])}
        self._resets = sorted(spec.reset_at)
        self.pos = 0                      # stream position, both directions
        self.on_reset: Callable[[int], None] | None = None

    def _apply(self, d: str, data: bytes) -> list[tuple[float, bytes]]:
        """Faults for one direction: [(stall seconds before, bytes), ...]."""
        s = self.spec
        n = len(data)
        setattr(self.stats, f"bytes_{d}", getattr(self.stats, f"bytes_{d}") + n)
        if n == 0:
            return []
        if s.direction not in ("both", d) or not any(getattr(s, k) for k in s._RATES):
            return [(0.0, bytes(data))]
        rng = self._rng[d]
        u = rng.random((n, 2))               # per byte: fate, stall
        flip = rng.integers(1, 256, n, dtype=np.uint16).astype(np.uint8)
        src = np.frombuffer(bytes(data), dtype=np.uint8)
        drop = u[:, 0] < s.drop
        corrupt = (u[:, 0] >= s.drop) & (u[:, 0] < s.drop + s.corrupt)
        dup = (u[:, 0] >= s.drop + s.corrupt) & (u[:, 0] < s.drop + s.corrupt + s.duplicate)
        stall = u[:, 1] < s.delay
        st = self.stats
        setattr(st, f"dropped_{d}", getattr(st, f"dropped_{d}") + int(drop.sum()))
        setattr(st, f"corrupted_{d}", getattr(st, f"corrupted_{d}") + int(corrupt.sum()))
        setattr(st, f"duplicated_{d}", getattr(st, f"duplicated_{d}") + int(dup.sum()))
        setattr(st, f"delayed_{d}", getattr(st, f"delayed_{d}") + int(stall.sum()))
        out = np.where(corrupt, src ^ flip, src)
        reps = np.where(drop, 0, np.where(dup, 2, 1))
        segs: list[tuple[float, bytes]] = []
        cutset = set(np.flatnonzero(stall).tolist())
        starts = sorted(cutset | {0})
        for i, a in enumerate(starts):
            b = starts[i + 1] if i + 1 < len(starts) else n
            segs.append((s.delay_ms / 1000.0 if a in cutset else 0.0, np.repeat(out[a:b], reps[a:b]).tobytes()))
        return segs

    def _reset_cut(self, n: int) -> int | None:
        """If a reset position falls in the next n stream bytes: its offset."""
        if self._resets and self._resets[0] < self.pos + n:
            at = max(0, self._resets.pop(0) - self.pos)
            return at
        return None

    def _fire_reset(self) -> None:
        self.stats.resets += 1
        if self.on_reset is not None:
            self.on_reset(self.spec.reset_reason)


class FaultyTransport:
    """read/write/flush/close/in_waiting like a pyserial port, with faults."""

    def __init__(self, port, injector: FaultInjector | FaultSpec):
        self.port = port
        self.inj = injector if isinstance(injector, FaultInjector) else injector.injector()
        self._rx: list[tuple[float, bytes]] = []    # (release time, bytes), in order

    @property
    def stats(self) -> FaultStats:
        return self.inj.stats

    @property
    def timeout(self):
        return getattr(self.port, "timeout", None)

    # -- host -> board ---------------------------------------------------------------
    def write(self, data: bytes) -> int:
        data = bytes(data)
        cut = self.inj._reset_cut(len(data))
        part = data if cut is None else data[:cut]
        self.inj.pos += len(part)
        for stall, chunk in self.inj._apply("tx", part):
            if stall:
                self.port.flush()
                time.sleep(stall)
            if chunk:
                self.port.write(chunk)
        if cut is not None:
            self.port.flush()
            self.inj.pos += len(data) - len(part)
            self.inj._fire_reset()          # the rest of the frame goes nowhere
        return len(data)

    def flush(self) -> None:
        self.port.flush()

    # -- board -> host ---------------------------------------------------------------
    def _take(self, chunk: bytes) -> None:
        cut = self.inj._reset_cut(len(chunk))
        if cut is not None:
            self.inj.pos += len(chunk)
            chunk = chunk[:cut]
            self.inj._fire_reset()          # the board dies mid-answer: the rest is lost
        else:
            self.inj.pos += len(chunk)
        now = time.monotonic()
        last = self._rx[-1][0] if self._rx else now
        for stall, seg in self.inj._apply("rx", chunk):
            last = max(last, now) + stall
            if seg:
                self._rx.append((last, seg))

    def _ready(self, n: int) -> bytes:
        now = time.monotonic()
        out = bytearray()
        while self._rx and self._rx[0][0] <= now and len(out) < n:
            t, seg = self._rx[0]
            k = n - len(out)
            out += seg[:k]
            if k >= len(seg):
                self._rx.pop(0)
            else:
                self._rx[0] = (t, seg[k:])
        return bytes(out)

    @property
    def in_waiting(self) -> int:
        now = time.monotonic()
        ready = sum(len(s) for t, s in self._rx if t <= now)
        return ready or int(getattr(self.port, "in_waiting", 0) or 0)

    def read(self, n: int = 1) -> bytes:
        waiting = int(getattr(self.port, "in_waiting", 0) or 0)
        if waiting:
            self._take(self.port.read(waiting))
        out = self._ready(n)
        if out:
            return out
        if self._rx:                        # stalled bytes: wait for the first to be due
            time.sleep(max(0.0, min(0.01, self._rx[0][0] - time.monotonic())))
            return self._ready(n)
        chunk = self.port.read(max(1, n))   # blocks up to the port's timeout
        if chunk:
            self._take(chunk)
        return self._ready(n)

    def close(self) -> None:
        self.port.close()

    def __getattr__(self, name):            # baudrate, is_open, ... of the real port
        return getattr(self.port, name)
