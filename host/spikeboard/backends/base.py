"""The one interface every host feature talks to. Three backends implement
it: `model` (the C chip model in-process), `emulator` (the real firmware in
QEMU) and `serial` (a real board). The contract suite holds them to
bit-identical results."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from .._hal import ffi, lib
from ..errors import ConfigError
from ..protocol import constants, reset_reason_name

if TYPE_CHECKING:
    from ..tiles import Tiling


@dataclass(frozen=True)
class BoardInfo:
    backend: str
    proto: int
    firmware: str
    board: str
    rows: int
    cols: int
    layers: int
    configured: bool
    card_hash: int
    max_payload: int
    reset_reason: int       # SB_RESET_REASON_* (lib): why the board last started
    virtual: bool = True    # virtual chip: synapse state is lost when the board resets
    hal_id: int = 0         # CRC-32 of the hal/ sources the board was built from

    @property
    def reset_reason_name(self) -> str:
        """Why the board last started, by name (protocol.RESET_REASONS; "reason N"
        for a code this host does not know)."""
        return reset_reason_name(self.reset_reason)


# the fields of sb_counters_t (dev.h), in the struct's order
COUNTER_FIELDS = tuple(name for name, _ in ffi.typeof("sb_counters_t").fields)


@dataclass(frozen=True)
class Counters:
    fires: int
    updates: int
    reads: int
    pot: int
    dep: int
    pre: int
    post: int
    time_ps: int
    steps: int
    samples: int
    measured_aj: int = 0    # chip supply energy measured by the board (power monitor); 0: not measured

    @classmethod
    def from_c(cls, c) -> "Counters":
        return cls(*(int(getattr(c, f)) for f in COUNTER_FIELDS))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __sub__(self, other: "Counters") -> "Counters":
        return Counters(*(getattr(self, f) - getattr(other, f) for f in COUNTER_FIELDS))


assert tuple(f.name for f in fields(Counters)) == COUNTER_FIELDS, "Counters must list sb_counters_t's fields in order"


@dataclass(frozen=True)
class TrainResult:
    sample_id: int
    predicted: int          # 255: no output neuron fired
    pulses: int
    counts: np.ndarray      # fires per output neuron


@dataclass(frozen=True)
class ProgramResult:
    pulses: np.ndarray      # pulses used per cell
    failed: np.ndarray      # bool per cell


# learning rules by name: lib's SB_RULE_* (learn.h), in code order ("sign", "stochastic", ...)
RULES = {name.lower(): code for code, name in constants("SB_RULE_", ("COUNT",)).items()}


class Backend(ABC):
    """A chip behind a controller. Arrays in, arrays out; no per-step Python."""

    name = "abstract"
    params: Any = None  # the configured sb_params_t (a cffi struct): a tiled layer's is one tile's
    _tiling: Tiling | None = None   # the layer's tiles when configured with a larger shape (model backend)

    # -- configuration ---------------------------------------------------
    @abstractmethod
    def configure(self, params, *, shape: tuple[int, int] | None = None) -> int:
        """Send a compiled parameter block; returns the card hash (CRC-32).
        shape: the logical (rows, cols) of a one-layer chip, None: the array
        itself; the model lays a larger shape over a grid of tiles."""

    def adopt(self, params) -> None:
        """The board already holds this block (its card hash matched, e.g. after
        a reconnect): take it as the configuration without sending it again."""
        self.params = ffi.new("sb_params_t *", params[0])

    @abstractmethod
    def info(self) -> BoardInfo: ...

    @property
    def rows(self) -> int:
        """Logical inputs (pre-neurons of the first layer)."""
        return self.layer_shape[0]

    @property
    def cells(self) -> int:
        """Logical cells: row-major over a tiled layer, layer after layer on one array."""
        p, t = self._p(), self._tiling
        return t.rows * t.cols if t else p.rows * p.cols * p.layers

    @property
    def layer_shape(self) -> tuple[int, int]:
        """Logical (rows, cols) of the last layer: what a one-layer mapping programs."""
        p, t = self._p(), self._tiling
        return (t.rows, t.cols) if t else (p.rows, p.cols)

    @property
    def grid(self) -> tuple[int, int]:
        """Tiles down and across the layer: (1, 1) for one array."""
        self._p()
        return self._tiling.grid if self._tiling else (1, 1)

    def neurons(self, layer: int = -1) -> int:
        """Logical neurons of a layer (of the last by default)."""
        p, t = self._p(), self._tiling
        return t.neurons if t else lib.sb_params_neurons(p, layer % p.layers)

    def _p(self):
        if self.params is None:
            raise ConfigError(f"{self.name} backend: not configured (send a device card first)")
        return self.params

    # -- inference and training ------------------------------------------
    @abstractmethod
    def infer(self, spikes: np.ndarray, *, reset: bool = True, trace: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Run T time steps. spikes: (T, rows) levels. Returns the last layer's
        fires (T, neurons) as uint8 and its membranes: (neurons,) after the last
        step, or (T, neurons) with trace=True."""

    def infer_batch(self, spikes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, T, rows) -> fires (B, T, neurons), final membranes (B, neurons)."""
        outs, vs = [], []
        for x in self._check_batch(spikes):
            o, v = self.infer(x, reset=True)
            outs.append(o)
            vs.append(v)
        return np.stack(outs), np.stack(vs)

    def infer_chunk(self, steps: int) -> int:
        """Samples of `steps` time steps one request carries (1: no batching)."""
        return 1

    @abstractmethod
    def train(self, spikes: np.ndarray, label: int, *, rule: str = "sign", target: int = 8,
              max_pulses: int = 1, sample_id: int = 0) -> TrainResult: ...

    def train_batch(self, samples, labels, sample_ids, *, rule: str = "sign", target: int = 8,
                    max_pulses: int = 1) -> list[TrainResult]:
        """Train samples in order, as many train() calls would (the same bits);
        a backend over a link sends as many per request as the link carries."""
        items = self._check_train_batch(samples, labels, sample_ids, rule)
        return [self.train(x, y, rule=rule, target=target, max_pulses=max_pulses, sample_id=i) for x, y, i in items]

    def train_chunk(self, steps: int, rule: str = "sign", max_pulses: int = 1) -> int:
        """Samples of `steps` time steps one request carries (1: no batching)."""
        return 1

    # -- synapses ------------------------------------------------------------
    @abstractmethod
    def read_conductance(self, first: int = 0, n: int | None = None) -> np.ndarray: ...

    @abstractmethod
    def program(self, targets: np.ndarray, *, first: int = 0, tolerance: int = 0,
                max_pulses: int = 64) -> ProgramResult: ...

    @abstractmethod
    def pulse(self, first: int, n: int, polarity: int, count: int) -> np.ndarray:
        """count pulses of polarity (+1 P, -1 D, 0 hold) on cells first..first+n; returns G after."""

    @abstractmethod
    def age(self, seconds: int) -> None: ...

    # -- checkpoints ---------------------------------------------------------
    @abstractmethod
    def read_image(self) -> bytes | None:
        """The device image (counters, then the virtual chip's synapse state);
        None on silicon, whose synapses keep their state by themselves."""

    @abstractmethod
    def write_image(self, image: bytes) -> None: ...

    # -- state -------------------------------------------------------------
    @abstractmethod
    def counters(self, clear: bool = False) -> Counters: ...

    @abstractmethod
    def reset(self, neurons: bool = True, chip: bool = False) -> None: ...

    @abstractmethod
    def state(self, layer: int = -1) -> tuple[np.ndarray, np.ndarray]:
        """Membranes (Q16.16) and refractory counters of a layer."""

    def close(self) -> None:
        pass

    def reconnect(self) -> None:
        """Reopen the link to the board after a fault; in process there is none to reopen."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- shared checks ---------------------------------------------------------
    def _check_spikes(self, spikes) -> np.ndarray:
        p = self._p()
        x = np.asarray(spikes)
        if x.ndim != 2 or x.shape[1] != self.rows:
            raise ConfigError(f"input spikes: expected shape (steps, {self.rows}), got {x.shape}")
        if x.shape[0] < 1 or x.shape[0] > 65535:
            raise ConfigError(f"input spikes: {x.shape[0]} steps, need 1..65535")
        if x.size and (x.min() < 0 or x.max() > p.pre_levels):
            raise ConfigError(f"input spikes: levels must be 0..{p.pre_levels}, got {x.min()}..{x.max()}")
        return np.ascontiguousarray(x, dtype=np.uint8)

    def _check_train(self, spikes, label: int, rule: str) -> np.ndarray:
        x = self._check_spikes(spikes)
        if rule not in RULES:
            raise ConfigError(f"unknown learning rule {rule!r} (one of {', '.join(RULES)})")
        if not 0 <= label < self.neurons():
            raise ConfigError(f"label {label} out of range 0..{self.neurons() - 1}")
        if x.shape[0] > lib.SB_MAX_STEPS:
            raise ConfigError(f"training sample has {x.shape[0]} steps, at most {lib.SB_MAX_STEPS}")
        return x

    def _check_train_batch(self, samples, labels, sample_ids, rule: str) -> list[tuple[np.ndarray, int, int]]:
        """Every sample of a batch checked before any is trained (the board does the same)."""
        samples, labels, sample_ids = list(samples), [int(y) for y in labels], [int(i) for i in sample_ids]
        if not len(samples) == len(labels) == len(sample_ids):
            raise ConfigError(f"train batch: {len(samples)} samples, {len(labels)} labels, {len(sample_ids)} ids")
        return [(self._check_train(x, y, rule), y, i) for x, y, i in zip(samples, labels, sample_ids)]

    def _check_batch(self, spikes) -> np.ndarray:
        p = self._p()
        x = np.asarray(spikes)
        if x.ndim != 3 or x.shape[2] != self.rows:
            raise ConfigError(f"input batch: expected shape (batch, steps, {self.rows}), got {x.shape}")
        for i in range(min(1, len(x))):
            self._check_spikes(x[i])
        if x.size and (x.min() < 0 or x.max() > p.pre_levels):
            raise ConfigError(f"input batch: levels must be 0..{p.pre_levels}")
        return np.ascontiguousarray(x, dtype=np.uint8)

    def _check_cells(self, first: int, n: int) -> None:
        if first < 0 or n < 0 or first + n > self.cells:
            raise ConfigError(f"cells {first}..{first + n - 1} out of the "
                              f"{'layer' if self._tiling else 'array'} (0..{self.cells - 1})")


def masks_to_spikes(masks: np.ndarray, neurons: int) -> np.ndarray:
    """u32 fire masks -> (…, neurons) uint8."""
    m = np.asarray(masks, dtype=np.uint32)
    return ((m[..., None] >> np.arange(neurons, dtype=np.uint32)) & 1).astype(np.uint8)
