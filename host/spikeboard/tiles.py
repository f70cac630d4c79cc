"""Tiled layers on the model: a one-layer chip larger than one physical array
runs as a grid of tiles (hal/ sb_tiled_t, see hal/include/sb/tile.h). It is
reached through the backend interface like any chip:

    b = open_backend("model")
    b.configure(params, shape=(785, 20))     # params: one tile, e.g. 32x32

Each tile is a virtual chip with the card's geometry (one layer, e.g. 32x32)
and a seed of its own; the tiles' post interfaces hand partial neuron inputs
to a neuron bank that adds them per neuron and runs the chip's LIF
arithmetic. Programming, reading and updating go through each tile's own
device controller, so counters and energy are the chip's, summed.

Logical cells are indexed row-major over the logical layer (row * cols +
col), as on a single chip; on differential tiles neuron j is the column pair
(2j, 2j+1). This module holds the grid (TileGrid, what ModelBackend drives
when configured with such a shape), its cell mapping (Tiling) and the card
compiled for one tile (tile_card)."""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import cards as cardlib
from ._hal import ffi, lib
from .errors import ConfigError, check


@dataclass(frozen=True)
class Tiling:
    """A rows x cols logical layer on a grid of tile_rows x tile_cols tiles."""

    rows: int
    cols: int
    tile_rows: int
    tile_cols: int
    grid: tuple[int, int]
    neurons: int

    @classmethod
    def of(cls, p: Any, rows: int, cols: int) -> "Tiling":
        """The tiling of a layer on tiles of p's geometry; ConfigError naming what does not fit."""
        if p.layers != 1:
            raise ConfigError(f"tiled layer: the tile geometry must have one layer, the card block has {p.layers}")
        try:
            gr, gc, neurons = cardlib.tile_grid(rows, cols, p.rows, p.cols, bool(p.diff_mask & 1))
        except ConfigError as e:
            raise ConfigError(f"tiled layer: {e}") from None
        return cls(rows, cols, p.rows, p.cols, (gr, gc), neurons)

    @property
    def tiles(self) -> int:
        return self.grid[0] * self.grid[1]

    def segments(self, first: int, n: int) -> list[tuple[int, int, int, int]]:
        """Logical cells first..first+n as runs (tile, first cell in the tile,
        count, offset in the range), in logical order: a run is a piece of
        one logical row inside one tile, contiguous in that tile."""
        if n <= 0:
            return []
        r, c = np.divmod(np.arange(first, first + n), self.cols)
        tile = (r // self.tile_rows) * self.grid[1] + c // self.tile_cols
        cell = (r % self.tile_rows) * self.tile_cols + c % self.tile_cols
        cut = np.flatnonzero((np.diff(tile) != 0) | (np.diff(cell) != 1)) + 1
        starts, ends = np.concatenate([[0], cut]), np.concatenate([cut, [n]])
        return [(int(tile[s]), int(cell[s]), int(e - s), int(s)) for s, e in zip(starts, ends)]


# A tiled layer's device image: this header, the neuron bank's counters, then
# every tile's device image in grid order.
IMAGE_MAGIC = b"SBTL"
IMAGE_HEAD = struct.Struct("<4sHHBBI")   # magic, rows, cols, grid rows, grid cols, bytes per tile image


class TileGrid:
    """The virtual chips of a tiled layer and the neuron bank that joins them:
    what ModelBackend drives when configured with a shape other than its array's."""

    def __init__(self, params: Any, rows: int, cols: int):
        self.tiling = Tiling.of(params[0], rows, cols)
        self.chips = [ffi.new("sb_chip_t *") for _ in range(self.tiling.tiles)]
        self.devs = [ffi.new("sb_dev_t *") for _ in range(self.tiling.tiles)]
        for chip, dev in zip(self.chips, self.devs):
            lib.sb_dev_init(dev, lib.sb_chip_port(chip, ffi.NULL))
        self.words = (self.tiling.neurons + 31) // 32   # fire-mask words per step
        self._t = ffi.new("sb_tiled_t *")
        self.configure(params)

    def configure(self, params: Any) -> None:
        """(Re)configure every tile with its own seed; the bank starts at rest."""
        check(lib.sb_tiled_configure(self._t, ffi.new("sb_dev_t *[]", self.devs), len(self.devs), params,
                                     self.tiling.rows, self.tiling.cols), "configure tiled layer")

    def tile_of(self, row: int, col: int) -> tuple[int, int]:
        """(tile, cell in the tile) of a logical cell, from the C mapping."""
        t, c = ffi.new("uint16_t *"), ffi.new("uint16_t *")
        check(lib.sb_tiled_cell(self._t, row, col, t, c), f"cell ({row}, {col})")
        return int(t[0]), int(c[0])

    def segments(self, first: int, n: int) -> list[tuple[Any, int, int, int]]:
        return [(self.devs[k], cell, m, at) for k, cell, m, at in self.tiling.segments(first, n)]

    # -- the neuron bank -----------------------------------------------------------
    def reset_neurons(self) -> None:
        check(lib.sb_tiled_reset_neurons(self._t), "reset neurons")

    def run(self, x: np.ndarray, out: np.ndarray, v: np.ndarray) -> None:
        """x.shape[0] steps from the neurons' present state; fire words into out, final membranes into v."""
        ob = ffi.from_buffer("uint32_t[]", out)
        for s in range(x.shape[0]):
            check(lib.sb_tiled_step(self._t, ffi.from_buffer("uint8_t[]", x[s]), ob + s * self.words), "infer")
        v[:] = self.state(0)[0]

    def run_batch(self, x: np.ndarray, out: Any, v: Any) -> None:
        B, T, _ = x.shape
        check(lib.sb_tiled_run_batch(self._t, B, T, ffi.from_buffer("uint8_t[]", x), out, v), "infer batch")

    def state(self, layer: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The bank's membranes (Q16.16) and refractory counters (a tiled layer is one layer)."""
        nn = self.tiling.neurons
        v = np.frombuffer(ffi.buffer(self._t.v, 4 * nn), np.int32).copy()
        return v, np.frombuffer(ffi.buffer(self._t.refrac, 4 * nn), np.int32).astype(np.uint8)

    def train(self, req: Any, x: np.ndarray) -> tuple[int, int, np.ndarray]:
        """sb_learn_train_tiled: forward pass on the tiles, softmax error of the
        bank, each tile's share of the update through its own controller."""
        res = ffi.new("sb_tiled_train_result_t *")
        check(lib.sb_learn_train_tiled(self._t, req, ffi.from_buffer("uint8_t[]", x), res), "tiled train")
        counts = np.frombuffer(ffi.buffer(self._t.fires, 2 * res.neurons), np.uint16).copy()
        return 255 if res.predicted == 0xFFFF else int(res.predicted), int(res.pulses), counts

    # -- counters and image --------------------------------------------------------
    def counters(self) -> Any:
        c = ffi.new("sb_counters_t *")
        lib.sb_tiled_counters(self._t, c)
        return c[0]

    def clear_counters(self) -> None:
        lib.sb_tiled_clear_counters(self._t)

    def _head(self, tile_bytes: int) -> bytes:
        t = self.tiling
        return IMAGE_HEAD.pack(IMAGE_MAGIC, t.rows, t.cols, t.grid[0], t.grid[1], tile_bytes)

    @staticmethod
    def _describe(head: bytes) -> str:
        _, rows, cols, gr, gc, _ = IMAGE_HEAD.unpack(head)
        return f"a {rows}x{cols} layer on {gr} x {gc} tiles"

    def pack_image(self, tiles: list[bytes]) -> bytes:
        bank = bytes(ffi.buffer(ffi.addressof(self._t[0], "cnt")))
        return self._head(len(tiles[0])) + bank + b"".join(tiles)

    def unpack_image(self, image: bytes, tile_bytes: int) -> list[bytes]:
        """The tiles' images of a tiled layer's image (the bank's counters restored);
        ConfigError when the image is of another layer."""
        bank = ffi.buffer(ffi.addressof(self._t[0], "cnt"))
        head, n = self._head(tile_bytes), len(bank)
        size = len(head) + n + tile_bytes * len(self.devs)
        if image[:len(IMAGE_MAGIC)] != IMAGE_MAGIC or len(image) < len(head):
            raise ConfigError("device image: not a tiled layer's image (it has no tiled-layer header)")
        if image[:len(head)] != head:
            raise ConfigError(f"device image: of {self._describe(image[:len(head)])}, this is {self._describe(head)}")
        if len(image) != size:
            raise ConfigError(f"device image of {self._describe(head)}: {len(image)} bytes, need {size}")
        bank[:] = image[len(head):len(head) + n]
        at = len(head) + n
        return [image[at + k * tile_bytes:at + (k + 1) * tile_bytes] for k in range(len(self.devs))]
