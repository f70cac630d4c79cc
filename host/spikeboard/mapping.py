"""The one mapping of weights to conductances and back, and the one
write-verify tolerance. `program`, NIR import, torch deploy and the ex-situ
apps all program trained weights through this module.

The unit of weight is the chip's own: 1.0 is one unit of neuron input, the
unit of `[neuron] threshold` (Q16.16 1.0 out of the post interface). One spike
at level 1 on a row adds its weight to the neuron; a weight of 1.0 is
``codes_per_unit`` conductance codes of column current (about one full window).
Each caller converts its own representation in one line: NIR's scaled weights
already are in it, a `program` file's [-1, 1] is times ``weight_max(layer)``,
torch's layer weights are in it (transposed), ex-situ fits are scaled to
``weight_max``.

A layer's weights are (inputs, outputs), rows down, as the array holds them:
- differential layer: weight = (G+ - G-) / codes_per_unit, the idle side at
  Gmin (column pair 2j, 2j+1 is neuron j);
- single-ended layer: weight = (G - g_ref) / codes_per_unit (column j is neuron j).
Conductances stop at ``g_hi`` (Gmax less three sigma of the device-to-device
window spread, so that nearly every cell reaches it); weights beyond the usable
range clip. Outputs sit on the neurons given (``neurons``, e.g. from a yield
scan), an optional bias goes on the layer's last row (an input the caller
drives at level 1 every step), every other cell holds weight 0.

A tiled logical layer (a backend configured with ``shape=(rows, cols)``) is
one layer of its logical shape: the mapping does not see the tiles.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from . import cards
from ._hal import ffi, lib
from .errors import ConfigError

if TYPE_CHECKING:
    from .backends.base import Backend, ProgramResult

__all__ = ["ChipConfig", "write_tolerance", "tile_codes", "decode_codes", "layer_weights", "tiled_shape", "configure",
           "program_weights", "program_codes", "pulse_counts", "ProgramReport", "LayerReport"]


# ---------------------------------------------------------------------------
# the one write-verify tolerance
# ---------------------------------------------------------------------------
def _steps(p: Any) -> list[int]:
    """Single-pulse steps of a compiled block's branch tables (Q16 of the window)."""
    q = p.params if isinstance(p, ChipConfig) else p
    return [int(s) for s in q.step_p] + [int(s) for s in q.step_d]


def max_step(p: Any) -> int:
    """Largest single-pulse conductance step of a compiled block, in codes."""
    return max(1, (max(_steps(p)) * (int(p.g_max) - int(p.g_min))) >> 16)


def write_tolerance(p: Any) -> int:
    """The write-verify tolerance (codes) of every path that programs weights:
    0.6 of the device's mean single-pulse step, rounded up, plus one. A target
    between two levels of typical spacing is missed by half a step; the rest is
    margin for cycle-to-cycle noise. The largest step (the steep end of a
    nonlinear branch) would make it needlessly coarse everywhere else: on
    rram-nonlinear 2564 codes instead of 1019, and ex-situ digits fell from
    90.7 to 82.2 % with it. A target on a steeper part than that can be missed:
    write-verify reports such a cell as failed.
    p: a compiled sb_params_t or a ChipConfig."""
    steps = _steps(p)
    mean = sum(steps) / len(steps) * (int(p.g_max) - int(p.g_min)) / 65536
    return int(math.ceil(mean * 0.6)) + 1


# ---------------------------------------------------------------------------
# the compiled parameter block, as plain Python values
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ChipConfig:
    """The parts of a compiled parameter block (sb_params_t) the mapping needs,
    over the layer shape a backend presents: rows x cols per layer (a tiled
    layer: its logical shape, on tiles of tile_rows x tile_cols)."""

    rows: int
    cols: int
    layers: int
    diff: tuple[bool, ...]
    g_min: int
    g_max: int
    g_ref: int
    post_gain: int
    post_shift: int
    post_sat: int
    v_th: int
    v_min: int
    leak_q16: int
    refractory: int
    reset_subtract: bool
    pre_levels: int
    read_noise_q16: int
    seed: int
    stuck_min_q16: int
    stuck_max_q16: int
    stuck_open_q16: int
    d2d_window_q16: int
    levels: int                      # programmable levels across the window (card pulses + 1)
    max_step: int                    # largest single-pulse step, conductance codes
    tile_rows: int = 0               # the physical array (0: rows, cols)
    tile_cols: int = 0
    params: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.tile_rows:
            object.__setattr__(self, "tile_rows", self.rows)
            object.__setattr__(self, "tile_cols", self.cols)

    @classmethod
    def from_params(cls, p: Any, levels: int | None = None, shape: tuple[int, int] | None = None) -> "ChipConfig":
        """From a compiled block; shape=(rows, cols) lays a one-layer block over a
        tiled logical layer of that shape."""
        if isinstance(p, ChipConfig):
            return p
        if levels is None:
            steps = [int(s) for s in p.step_p] + [int(s) for s in p.step_d]
            levels = max(2, int(round(65536 / max(1, float(np.mean(steps))))) + 1)
        rows, cols = int(p.rows), int(p.cols)
        if shape is not None and tuple(shape) != (rows, cols):
            if p.layers != 1:
                raise ConfigError(f"tiled layer {shape[0]}x{shape[1]}: the tile geometry must have one layer, "
                                  f"the block has {p.layers}")
            cards.tile_grid(int(shape[0]), int(shape[1]), rows, cols, bool(p.diff_mask & 1))
            rows, cols = int(shape[0]), int(shape[1])
        keep = ffi.new("sb_params_t *", p[0] if hasattr(p, "__getitem__") else p)
        return cls(rows=rows, cols=cols, layers=int(p.layers),
                   diff=tuple(bool((p.diff_mask >> l) & 1) for l in range(p.layers)),
                   g_min=int(p.g_min), g_max=int(p.g_max), g_ref=int(p.g_ref),
                   post_gain=int(p.post_gain), post_shift=int(p.post_shift), post_sat=int(p.post_sat),
                   v_th=int(p.v_th), v_min=int(p.v_min), leak_q16=int(p.leak_q16),
                   refractory=int(p.refractory), reset_subtract=int(p.reset_mode) == lib.SB_RESET_SUBTRACT,
                   pre_levels=int(p.pre_levels), read_noise_q16=int(p.read_noise_q16), seed=int(p.seed),
                   stuck_min_q16=int(p.stuck_min_q16), stuck_max_q16=int(p.stuck_max_q16),
                   stuck_open_q16=int(p.stuck_open_q16), d2d_window_q16=int(p.d2d_window_q16),
                   levels=int(levels), max_step=max_step(p), tile_rows=int(p.rows), tile_cols=int(p.cols),
                   params=keep)

    @classmethod
    def from_card(cls, card: str | cards.Card = "spec", geometry: str | None = None, *,
                  shape: tuple[int, int] | None = None, **kw: Any) -> "ChipConfig":
        """Compile a device card (name, path or Card) for a geometry; kw go to
        cards.compile_card (differential=, stuck=, neuron=, seed=). shape: a
        tiled logical layer (rows, cols) on tiles of that (one-layer) geometry."""
        c = card if isinstance(card, cards.Card) else cards.load(card)
        return cls.from_params(cards.compile_card(c, geometry, **kw), levels=c["synapse"]["pulses"] + 1, shape=shape)

    @classmethod
    def of_backend(cls, backend: "Backend") -> "ChipConfig":
        """What a configured backend holds, over the layer shape it presents."""
        p = backend._p()
        return cls.from_params(p, shape=backend.layer_shape if p.layers == 1 else None)

    # -- derived --------------------------------------------------------------
    @property
    def tiled(self) -> bool:
        return (self.rows, self.cols) != (self.tile_rows, self.tile_cols)

    @property
    def grid(self) -> tuple[int, int]:
        """Tiles down and across (1, 1 on one array)."""
        return -(-self.rows // self.tile_rows), -(-self.cols // self.tile_cols)

    @property
    def window(self) -> int:
        return self.g_max - self.g_min

    def neurons(self, layer: int) -> int:
        return self.cols // 2 if self.diff[layer] else self.cols

    @property
    def g_hi(self) -> int:
        """Highest code the mapping uses: Gmax less three sigma of the device-to-device
        window variation, so that nearly every cell can reach it."""
        return self.g_min + int(self.window * (1.0 - 3.0 * self.d2d_window_q16 / 65536.0))

    @property
    def codes_per_unit(self) -> float:
        """Conductance codes that make one unit of neuron input (~ the window)."""
        return 65536.0 * (1 << self.post_shift) / self.post_gain

    @property
    def level_step(self) -> float:
        """The card's level quantisation, in conductance codes."""
        return self.window / (self.levels - 1)

    def weight_range(self, layer: int) -> tuple[float, float]:
        """(lowest, highest) weight a layer holds, chip units."""
        k = self.codes_per_unit
        if self.diff[layer]:
            return -(self.g_hi - self.g_min) / k, (self.g_hi - self.g_min) / k
        return (self.g_min - self.g_ref) / k, (self.g_hi - self.g_ref) / k

    def weight_max(self, layer: int) -> float:
        """The largest weight a layer holds (G at g_hi): what [-1, 1] file weights
        and ex-situ fits scale to."""
        return self.weight_range(layer)[1]

    @property
    def threshold(self) -> float:
        return self.v_th / 65536.0

    @property
    def tolerance(self) -> int:
        """The write-verify tolerance (write_tolerance)."""
        return write_tolerance(self)

    @property
    def cells(self) -> int:
        return self.rows * self.cols * self.layers


def tiled_shape(tile_rows: int, tile_cols: int, inputs: int, outputs: int, differential: bool) -> tuple[int, int] | None:
    """The logical layer, in whole tiles, that holds `inputs` rows and `outputs`
    neurons; None when one array holds them (no tiles needed)."""
    cols = outputs * (2 if differential else 1)
    if inputs <= tile_rows and cols <= tile_cols:
        return None
    return -(-inputs // tile_rows) * tile_rows, -(-cols // tile_cols) * tile_cols


def configure(backend: Backend, config: ChipConfig) -> None:
    """Configure a backend with the config's block, over its tiled logical layer if it has one."""
    if config.params is None:
        raise ConfigError("chip config has no parameter block to configure a backend with")
    if config.tiled:
        backend.configure(config.params, shape=(config.rows, config.cols))
    else:
        backend.configure(config.params)


def check_backend(config: ChipConfig, backend: Backend) -> None:
    """The backend holds the config's geometry (ConfigError naming both otherwise)."""
    p = getattr(backend, "params", None)
    have = None if p is None else ChipConfig.of_backend(backend)
    if have is None or (have.rows, have.cols, have.layers) != (config.rows, config.cols, config.layers):
        got = "nothing" if have is None else f"{have.rows}x{have.cols}x{have.layers}"
        raise ConfigError(f"backend {backend.name}: configured as {got}, the mapping needs "
                          f"{config.rows}x{config.cols}x{config.layers}")


# ---------------------------------------------------------------------------
# weights <-> codes of one layer
# ---------------------------------------------------------------------------
def tile_codes(config: ChipConfig, layer: int, w_tile: np.ndarray) -> np.ndarray:
    """Conductance codes (rows, cols) uint16 for a layer's whole weight tile
    (rows, neurons), chip units. Weights beyond the usable window clip."""
    c = config
    lo, hi = c.weight_range(layer)
    w = np.asarray(w_tile, dtype=np.float64)
    g = np.clip(w, lo, hi) * c.codes_per_unit
    if c.diff[layer]:
        codes = np.stack([c.g_min + np.maximum(g, 0), c.g_min + np.maximum(-g, 0)], axis=-1).reshape(w.shape[0], -1)
    else:
        codes = np.clip(c.g_ref + g, c.g_min, c.g_hi)
    return np.clip(np.rint(codes), 0, 65535).astype(np.uint16)


def decode_codes(config: ChipConfig, layer: int, codes: np.ndarray) -> np.ndarray:
    """A layer's weight tile (rows, neurons), chip units, that its codes (rows*cols) encode."""
    c = config
    g = np.asarray(codes, dtype=np.float64).reshape(c.rows, c.cols)
    d = g[:, 0::2] - g[:, 1::2] if c.diff[layer] else g - c.g_ref
    return d / c.codes_per_unit


def layer_weights(config: ChipConfig, layer: int, weights: np.ndarray, *, neurons: Sequence[int] | None = None,
                  bias: np.ndarray | None = None) -> np.ndarray:
    """The layer's whole weight tile (rows, neurons), chip units: weights
    (inputs, outputs) from row 0, output k on neuron neurons[k] (default k),
    bias (outputs,) on the last row, weight 0 everywhere else."""
    c = config
    if not -c.layers <= layer < c.layers:
        raise ConfigError(f"layer {layer}: the chip has layers 0..{c.layers - 1}")
    nn_ = c.neurons(layer)
    w = np.asarray(weights, dtype=np.float64)
    rows = c.rows - (bias is not None)
    if w.ndim != 2 or w.shape[0] > rows or w.shape[1] > nn_:
        what = f"rows <= {rows}" + (" with the bias row" if bias is not None else "")
        raise ConfigError(f"weights must be (inputs: {what}, outputs <= {nn_} neurons) for layer {layer}, got {w.shape}")
    if not np.isfinite(w).all():
        raise ConfigError(f"weight {tuple(int(i) for i in np.argwhere(~np.isfinite(w))[0])} is not finite")
    sel = np.arange(w.shape[1]) if neurons is None else np.asarray(neurons, dtype=np.int64).ravel()
    if sel.size != w.shape[1] or len(set(sel.tolist())) != sel.size or (sel.size and (sel.min() < 0 or sel.max() >= nn_)):
        raise ConfigError(f"neurons {sel.tolist()}: need {w.shape[1]} distinct neurons of layer {layer} (0..{nn_ - 1})")
    tile = np.zeros((c.rows, nn_))
    tile[: w.shape[0], sel] = w
    if bias is not None:
        b = np.asarray(bias, dtype=np.float64).ravel()
        if b.size != w.shape[1] or not np.isfinite(b).all():
            raise ConfigError(f"bias: need {w.shape[1]} finite values (one per output), got {b.size}")
        tile[c.rows - 1, sel] = b
    return tile


def pulse_counts(config: ChipConfig, layer: int, codes: np.ndarray, dw: np.ndarray, max_pulses: int) -> np.ndarray:
    """Signed pulse counts per cell (rows, cols) that move a layer by weight
    changes dw (rows, neurons), chip units, one level step a pulse, at most
    max_pulses. On a pair, one device is kept near Gmin: a change depresses the
    other side while it has room, else potentiates this side."""
    c = config
    n = np.clip(np.rint(np.asarray(dw) / (c.level_step / c.codes_per_unit)), -max_pulses, max_pulses).astype(np.int64)
    if not c.diff[layer]:
        return n
    g = np.asarray(codes, dtype=np.int64).reshape(c.rows, c.neurons(layer), 2)
    up = np.where(n > 0, 0, 1)                     # the side a positive change potentiates
    down_g = np.take_along_axis(g, (1 - up)[..., None], axis=-1)[..., 0]
    use_down = down_g > c.g_min + c.max_step
    out = np.zeros_like(g)
    side = np.where(use_down, 1 - up, up)
    sign = np.where(use_down, -1, 1) * np.abs(n)
    np.put_along_axis(out, side[..., None], sign[..., None], axis=-1)
    return out.reshape(c.rows, c.cols)


# ---------------------------------------------------------------------------
# programming with write-verify
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerReport:
    """Programming error of one layer."""

    layer: int
    cells: int               # cells of the layer
    failed: int              # cells write-verify could not bring within tolerance
    pulses: int              # programming pulses used (both passes)
    compensated: int         # cells re-targeted by partner compensation
    clipped: int             # weights beyond the layer's usable range (clipped)
    code_mae: float          # mean |G - target|, codes
    code_max: int            # max |G - target|, codes
    weight_rmse: float       # RMS error of the weights the layer now holds against the wanted ones, chip units
    weight_max: float
    level_step: float        # the card's level quantisation, chip units

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ProgramReport:
    """What programming did: targets and read-back codes of the cells
    programmed (from cell `first`), failed cells (indices over the whole
    array), pulses, per-layer error."""

    tolerance: int
    first: int
    targets: np.ndarray = field(repr=False)      # final targets (after compensation)
    codes: np.ndarray = field(repr=False)        # read back
    failed_cells: np.ndarray = field(repr=False)
    layers: tuple[LayerReport, ...]
    config: ChipConfig = field(repr=False, compare=False)

    @property
    def failed(self) -> int:
        return int(self.failed_cells.size)

    @property
    def pulses(self) -> int:
        return sum(r.pulses for r in self.layers)

    def weights(self, layer: int) -> np.ndarray:
        """The weight tile (rows, neurons), chip units, that a programmed layer's read-back holds."""
        per = self.config.rows * self.config.cols
        k = next(i for i, r in enumerate(self.layers) if r.layer == layer)
        return decode_codes(self.config, layer, self.codes[k * per:(k + 1) * per])

    def as_dict(self) -> dict[str, Any]:
        return {"tolerance": self.tolerance, "failed": self.failed, "pulses": self.pulses,
                "layers": [r.as_dict() for r in self.layers]}

    def __str__(self) -> str:
        lines = [f"programmed with write-verify tolerance {self.tolerance} codes: {self.pulses} pulses, "
                 f"{self.failed} cells failed"]
        for r in self.layers:
            lines.append(f"  layer {r.layer}: code error mean {r.code_mae:.1f} max {r.code_max}; weight error "
                         f"rms {r.weight_rmse:.4f} max {r.weight_max:.4f} (level step {r.level_step:.4f}); "
                         f"{r.failed}/{r.cells} failed, {r.pulses} pulses"
                         + (f", {r.compensated} compensated" if r.compensated else "")
                         + (f", {r.clipped} weights clipped" if r.clipped else ""))
        return "\n".join(lines)


def _compensate(c: ChipConfig, layer: int, t: np.ndarray, g: np.ndarray, tol: int) -> np.ndarray:
    """Partner compensation of a differential layer: where one device of a pair
    missed its target by more than twice the tolerance (stuck, or out of its own
    window) and its partner did not, the partner's new target makes the pair's
    difference the wanted weight. A single-ended cell has no partner (g_ref is
    a constant of the post interface), so nothing is done there."""
    if not c.diff[layer]:
        return t
    t2 = t.reshape(c.rows, -1, 2).copy()
    gp, gm = g.reshape(c.rows, -1, 2)[..., 0], g.reshape(c.rows, -1, 2)[..., 1]
    tp, tm = t2[..., 0], t2[..., 1]
    want = tp - tm
    miss_p, miss_m = np.abs(gp - tp) > 2 * tol, np.abs(gm - tm) > 2 * tol
    t2[..., 1] = np.where(miss_p & ~miss_m, np.clip(gp - want, c.g_min, c.g_max), tm)
    t2[..., 0] = np.where(miss_m & ~miss_p, np.clip(gm + want, c.g_min, c.g_max), tp)
    return t2.reshape(-1)


def _write(backend: Backend, first: int, t: np.ndarray, tol: int, max_pulses: int) -> tuple[np.ndarray, ProgramResult]:
    """Program cells first.. with write-verify and read them back."""
    r = backend.program(t.astype(np.uint16), first=first, tolerance=tol, max_pulses=max_pulses)
    return np.asarray(backend.read_conductance(first, t.size), dtype=np.int64), r


def _program(backend: Backend, c: ChipConfig, layers: Sequence[int], targets: np.ndarray, *, tolerance: int | None,
             max_pulses: int, compensate: bool, clipped: Sequence[int]) -> ProgramReport:
    check_backend(c, backend)
    per = c.rows * c.cols
    first = layers[0] * per
    tol = c.tolerance if tolerance is None else int(tolerance)
    t = np.asarray(targets, dtype=np.int64).ravel()
    g, r = _write(backend, first, t, tol, max_pulses)
    pulses = np.asarray(r.pulses, dtype=np.int64).copy()
    failed = np.asarray(r.failed, dtype=bool)
    t2 = t
    if compensate:
        t2 = np.concatenate([_compensate(c, l, t[k * per:(k + 1) * per], g[k * per:(k + 1) * per], tol)
                             for k, l in enumerate(layers)])
        if (t2 != t).any():
            g, r = _write(backend, first, t2, tol, max_pulses)
            pulses += np.asarray(r.pulses, dtype=np.int64)
            failed = np.asarray(r.failed, dtype=bool)
    reports = []
    for k, l in enumerate(layers):
        sl = slice(k * per, (k + 1) * per)
        err = np.abs(g[sl] - t2[sl])
        werr = np.abs(decode_codes(c, l, g[sl]) - decode_codes(c, l, t[sl]))   # against the wanted weights
        reports.append(LayerReport(l, per, int(np.count_nonzero(failed[sl])), int(pulses[sl].sum()),
                                   int(np.count_nonzero(t2[sl] != t[sl])), int(clipped[k]), float(err.mean()),
                                   int(err.max()), float(np.sqrt(np.mean(werr ** 2))), float(werr.max()),
                                   c.level_step / c.codes_per_unit))
    return ProgramReport(tol, first, t2.astype(np.uint16), g.astype(np.uint16), first + np.flatnonzero(failed),
                         tuple(reports), c)


def program_weights(backend: Backend, weights: np.ndarray | Sequence[np.ndarray], *, layer: int = -1,
                    neurons: Sequence[int] | None = None, bias: np.ndarray | None = None, compensate: bool = True,
                    max_pulses: int = 255, tolerance: int | None = None, config: ChipConfig | None = None) -> ProgramReport:
    """Map weights (chip units) to codes and program them with write-verify.

    weights: one layer's (inputs, outputs) array, for `layer` (default the
    last), with its outputs on `neurons` and an optional `bias` row; or a list
    with one such array per layer (every layer, outputs from neuron 0).
    compensate: partner compensation of differential pairs after the first
    pass (see _compensate). tolerance: default write_tolerance. config: the
    mapping's ChipConfig (default: what the backend holds; NIR and torch give
    theirs). Works unchanged on a tiled logical layer."""
    c = ChipConfig.of_backend(backend) if config is None else config
    if isinstance(weights, np.ndarray):
        layers, per_layer = [layer % c.layers], [weights]
        tiles = [layer_weights(c, layers[0], weights, neurons=neurons, bias=bias)]
    else:
        if neurons is not None or bias is not None:
            raise ConfigError("neurons and bias place one layer's outputs: give one layer's weights with them")
        if len(weights) != c.layers:
            raise ConfigError(f"{len(weights)} weight arrays for a {c.layers}-layer chip: give one per layer")
        layers, per_layer = list(range(c.layers)), list(weights)
        tiles = [layer_weights(c, l, w) for l, w in enumerate(per_layer)]
    clipped = []
    for l, w in zip(layers, tiles):
        lo, hi = c.weight_range(l)
        clipped.append(int(np.count_nonzero((w < lo - 1e-12) | (w > hi + 1e-12))))
    targets = np.concatenate([tile_codes(c, l, w).ravel() for l, w in zip(layers, tiles)])
    return _program(backend, c, layers, targets, tolerance=tolerance, max_pulses=max_pulses,
                    compensate=compensate, clipped=clipped)


def program_codes(backend: Backend, codes: np.ndarray, *, layer: int = 0, compensate: bool = False,
                  max_pulses: int = 255, tolerance: int | None = None, config: ChipConfig | None = None) -> ProgramReport:
    """Program conductance codes with write-verify: every cell of the array
    (layer 0 on), or one layer's rows*cols codes (layer). compensate: as for
    program_weights (off: the codes are what each cell was asked to hold)."""
    c = ChipConfig.of_backend(backend) if config is None else config
    t = np.asarray(codes).ravel()
    per = c.rows * c.cols
    if t.size % per or not 0 <= layer < c.layers or layer * per + t.size > c.cells:
        raise ConfigError(f"{t.size} conductance codes from layer {layer}: the array has {c.layers} layer(s) "
                          f"of {c.rows}x{c.cols} cells ({c.cells} in all)")
    if t.size and (t.min() < 0 or t.max() > 65535):
        raise ConfigError(f"conductance codes must be within 0..65535, got {t.min()}..{t.max()}")
    layers = list(range(layer, layer + t.size // per))
    return _program(backend, c, layers, t, tolerance=tolerance, max_pulses=max_pulses, compensate=compensate,
                    clipped=[0] * len(layers))
