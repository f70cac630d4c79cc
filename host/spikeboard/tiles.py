"""Tiled arrays on the model: a logical layer larger than one physical array
runs as a grid of tiles (hal/ sb_tiled_t, see hal/include/sb/tile.h).

Each tile is a virtual chip with the card's geometry (one layer, e.g. 32x32)
and a seed of its own; the tiles' post interfaces hand partial neuron inputs
to a neuron bank that adds them per neuron and runs the chip's LIF
arithmetic. Programming, reading and updating go through each tile's own
device controller, so counters and energy are the chip's, summed.

Logical cells are indexed row-major over the logical layer (row * cols +
col), as on a single chip; on differential tiles neuron j is the column pair
(2j, 2j+1)."""
from __future__ import annotations

import numpy as np

from . import cards as cardlib
from ._hal import ffi, lib
from .backends.base import RULES, Counters, ProgramResult, TrainResult, masks_to_spikes
from .errors import ConfigError, check


class TiledArray:
    """A rows x cols logical layer on ceil(rows/R) x ceil(cols/C) tiles."""

    name = "model-tiled"

    def __init__(self, params, rows: int, cols: int):
        p = params[0] if hasattr(params, "__getitem__") else params
        if p.layers != 1:
            raise ConfigError(f"tiled layer: the tile geometry must have one layer, the card block has {p.layers}")
        try:
            gr, gc, _ = cardlib.tile_grid(rows, cols, p.rows, p.cols, bool(p.diff_mask & 1))
        except ConfigError as e:
            raise ConfigError(f"tiled layer: {e}") from None
        self.params = ffi.new("sb_params_t *", p)
        self.rows, self.cols, self.grid = rows, cols, (gr, gc)
        self._chips = [ffi.new("sb_chip_t *") for _ in range(gr * gc)]
        self._devs = [ffi.new("sb_dev_t *") for _ in range(gr * gc)]
        for chip, dev in zip(self._chips, self._devs):
            lib.sb_dev_init(dev, lib.sb_chip_port(chip, ffi.NULL))
        self._tiles = ffi.new("sb_dev_t *[]", self._devs)
        self._t = ffi.new("sb_tiled_t *")
        check(lib.sb_tiled_configure(self._t, self._tiles, len(self._devs), self.params, rows, cols),
              "configure tiled layer")
        self.neurons = int(self._t.neurons)
        self.words = (self.neurons + 31) // 32
        # tile and in-tile cell of every logical cell, row-major
        r, c = np.divmod(np.arange(rows * cols), cols)
        self._tile = (r // p.rows) * gc + c // p.cols
        self._cell = (r % p.rows) * p.cols + c % p.cols

    @classmethod
    def from_card(cls, card: "str | cardlib.Card", rows: int | None = None, cols: int | None = None, *,
                  geometry: str | None = None, differential: bool | None = None, seed: int | None = None,
                  **compile_kw) -> "TiledArray":
        """A card compiled for one tile (its single-layer preset) and laid over
        rows x cols; without them, over the card's [geometry].tiled."""
        c = cardlib.load(card) if isinstance(card, str) else card
        g = dict(c["geometry"])
        if geometry is not None:
            g["preset"] = geometry
        if differential is not None:
            g["differential"] = differential
        if rows is None or cols is None:
            if not g["tiled"]:
                raise ConfigError(f"card {c.name}: no [geometry].tiled layer; give rows and cols")
            rows, cols = cardlib.tiled_shape(g, c.path or c.name)
        if cardlib.GEOMETRIES.get(g["preset"], (0, 0, 0))[2] != 1:
            raise ConfigError(f"tile geometry {g['preset']!r}: need a single-layer preset "
                              f"({', '.join(k for k, v in cardlib.GEOMETRIES.items() if v[2] == 1)})")
        p = cardlib.compile_card(c, g["preset"], seed=seed, differential=g["differential"], **compile_kw)
        return cls(p, rows, cols)

    @property
    def tiles(self) -> int:
        return len(self._devs)

    @property
    def cells(self) -> int:
        return self.rows * self.cols

    @property
    def layer_shape(self) -> tuple[int, int]:
        return self.rows, self.cols

    def tile_of(self, row: int, col: int) -> tuple[int, int]:
        """(tile, cell in the tile) of a logical cell, from the C mapping."""
        t, c = ffi.new("uint16_t *"), ffi.new("uint16_t *")
        check(lib.sb_tiled_cell(self._t, row, col, t, c), f"cell ({row}, {col})")
        return int(t[0]), int(c[0])

    # -- inference ---------------------------------------------------------------
    def _check_batch(self, spikes) -> np.ndarray:
        x = np.asarray(spikes)
        if x.ndim != 3 or x.shape[2] != self.rows:
            raise ConfigError(f"input batch: expected shape (batch, steps, {self.rows}), got {x.shape}")
        if x.shape[1] < 1 or x.shape[1] > 65535:
            raise ConfigError(f"input batch: {x.shape[1]} steps, need 1..65535")
        if x.size and (x.min() < 0 or x.max() > self.params.pre_levels):
            raise ConfigError(f"input batch: levels must be 0..{self.params.pre_levels}, got {x.min()}..{x.max()}")
        return np.ascontiguousarray(x, dtype=np.uint8)

    def run_masks(self, spikes) -> tuple[np.ndarray, np.ndarray]:
        """(B, T, rows) levels -> fire-mask words (B, T, words) u32, final membranes (B, neurons)."""
        x = self._check_batch(spikes)
        B, T, _ = x.shape
        masks = np.zeros((B, T, self.words), dtype=np.uint32)
        v = np.zeros((B, self.neurons), dtype=np.int32)
        check(lib.sb_tiled_run_batch(self._t, B, T, ffi.from_buffer("uint8_t[]", x),
                                     ffi.from_buffer("uint32_t[]", masks), ffi.from_buffer("int32_t[]", v)),
              "tiled inference")
        return masks, v

    def infer_batch(self, spikes) -> tuple[np.ndarray, np.ndarray]:
        """(B, T, rows) -> fires (B, T, neurons) uint8, final membranes (B, neurons)."""
        masks, v = self.run_masks(spikes)
        return masks_to_spikes(masks, 32).reshape(*masks.shape[:2], -1)[..., :self.neurons], v

    # -- on-chip learning --------------------------------------------------------
    def train(self, spikes, label: int, *, rule: str = "compensated", target: int = 1, max_pulses: int = 32,
              sample_id: int = 0) -> TrainResult:
        """One training sample (sb_learn_train_tiled): forward pass on the tiles,
        softmax error of the neuron bank, each tile's share of the update
        applied closed loop through its own controller. Rule: compensated."""
        if rule != "compensated":
            raise ConfigError(f"tiled layers learn with rule 'compensated' (one layer, closed loop), not {rule!r}")
        x = self._check_batch(np.asarray(spikes)[None])[0]
        if x.shape[0] > lib.SB_MAX_STEPS:
            raise ConfigError(f"training sample has {x.shape[0]} steps, at most {lib.SB_MAX_STEPS}")
        if not 0 <= label < self.neurons:
            raise ConfigError(f"label {label} out of range 0..{self.neurons - 1}")
        if not 1 <= max_pulses <= 255 or not 0 <= target <= 255:
            raise ConfigError(f"max_pulses must be 1..255 and target 0..255, got {max_pulses} and {target}")
        req = ffi.new("sb_train_req_t *", {"steps": x.shape[0], "label": label, "rule": RULES[rule],
                                           "target": target, "max_pulses": max_pulses, "levels": 1,
                                           "sample_id": sample_id & 0xFFFFFFFF})
        res = ffi.new("sb_tiled_train_result_t *")
        check(lib.sb_learn_train_tiled(self._t, req, ffi.from_buffer("uint8_t[]", x), res), "tiled train")
        counts = np.frombuffer(ffi.buffer(self._t.fires, 2 * self.neurons), np.uint16).copy()
        return TrainResult(sample_id, 255 if res.predicted == 0xFFFF else int(res.predicted), int(res.pulses), counts)

    # -- synapses ----------------------------------------------------------------
    def _check_logical(self, a, what: str, dtype) -> np.ndarray:
        a = np.asarray(a)
        if a.size != self.cells:
            raise ConfigError(f"{what}: expected {self.rows} x {self.cols} = {self.cells} values, got shape {a.shape}")
        return a.reshape(-1).astype(dtype)

    def read_conductance(self) -> np.ndarray:
        """Conductance codes of every logical cell, row-major (rows * cols,)."""
        per = self.params.rows * self.params.cols
        g = np.zeros((self.tiles, per), dtype=np.uint16)
        for k, dev in enumerate(self._devs):
            check(lib.sb_dev_read(dev, 0, per, ffi.from_buffer("uint16_t[]", g[k])), f"read tile {k}")
        return g[self._tile, self._cell]

    def program(self, targets, *, tolerance: int = 0, max_pulses: int = 64) -> ProgramResult:
        """Write-verify every logical cell to its target code, one cell per
        call as ModelBackend.program does, so counters match the board."""
        t = self._check_logical(targets, "program targets", np.int64)
        if t.size and (t.min() < 0 or t.max() > 65535):
            raise ConfigError(f"program targets: codes must be 0..65535, got {t.min()}..{t.max()}")
        t = t.astype(np.uint16)
        used = np.zeros(self.cells, dtype=np.uint8)
        failed = np.zeros(self.cells, dtype=bool)
        tb, ub = ffi.from_buffer("uint16_t[]", t), ffi.from_buffer("uint8_t[]", used)
        for i, (k, cell) in enumerate(zip(self._tile.tolist(), self._cell.tolist())):
            rc = check(lib.sb_dev_program(self._devs[k], cell, 1, tb + i, tolerance, max_pulses, ub + i, ffi.NULL),
                       f"program tile {k}")
            failed[i] = rc > 0
        return ProgramResult(used, failed)

    def update(self, counts) -> None:
        """Per-cell pulses (sign: polarity, magnitude: count, |count| <= 127), one update per tile."""
        c = self._check_logical(counts, "update counts", np.int64)
        if c.size and (c.min() < -127 or c.max() > 127):
            raise ConfigError(f"update counts: need -127..127 pulses per cell, got {c.min()}..{c.max()}")
        per = self.params.rows * self.params.cols
        buf = np.zeros((self.tiles, per), dtype=np.int8)
        buf[self._tile, self._cell] = c
        for k, dev in enumerate(self._devs):
            check(lib.sb_dev_update(dev, 0, per, ffi.from_buffer("int8_t[]", buf[k])), f"update tile {k}")

    def age(self, seconds: int) -> None:
        for k, dev in enumerate(self._devs):
            check(lib.sb_dev_age(dev, int(seconds)), f"age tile {k}")

    # -- counters -------------------------------------------------------
    def counters(self, clear: bool = False) -> Counters:
        c = ffi.new("sb_counters_t *")
        lib.sb_tiled_counters(self._t, c)
        if clear:
            lib.sb_tiled_clear_counters(self._t)
        return Counters.from_c(c[0])
