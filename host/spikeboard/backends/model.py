"""The model backend: hal/'s device controller on the virtual chip, in
process through cffi. The firmware runs this same C on the board.

It drives either one array (the card's geometry: every layer and rule) or,
configured with a shape other than the array's, a one-layer chip laid over a
grid of tiles (spikeboard.tiles.TileGrid). Both sit behind one small core
interface, so every Backend method below serves both with logical indices."""
from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from .._hal import ffi, lib
from ..errors import ConfigError, check
from ..tiles import TileGrid, Tiling
from .base import Backend, BoardInfo, Counters, ProgramResult, RULES, TrainResult, masks_to_spikes

IMAGE_CHUNK = 60000   # bytes per sb_dev_image call (its length is a u16)


class Core(Protocol):
    """What ModelBackend needs of the virtual chips it drives."""

    chips: list[Any]
    devs: list[Any]
    words: int          # fire-mask words per step

    @property
    def tiling(self) -> Tiling | None: ...   # None: one array

    def configure(self, params: Any) -> None: ...
    def segments(self, first: int, n: int) -> list[tuple[Any, int, int, int]]: ...
    def reset_neurons(self) -> None: ...
    def run(self, x: np.ndarray, out: np.ndarray, v: np.ndarray) -> None: ...
    def run_batch(self, x: np.ndarray, out: Any, v: Any) -> None: ...
    def train(self, req: Any, x: np.ndarray) -> tuple[int, int, np.ndarray]: ...
    def state(self, layer: int) -> tuple[np.ndarray, np.ndarray]: ...
    def counters(self) -> Any: ...
    def clear_counters(self) -> None: ...
    def pack_image(self, tiles: list[bytes]) -> bytes: ...
    def unpack_image(self, image: bytes, tile_bytes: int) -> list[bytes]: ...


class OneArray:
    """One virtual chip behind its device controller."""

    words = 1
    tiling = None

    def __init__(self) -> None:
        self.chips = [ffi.new("sb_chip_t *")]
        self.devs = [ffi.new("sb_dev_t *")]
        lib.sb_dev_init(self.devs[0], lib.sb_chip_port(self.chips[0], ffi.NULL))
        self._dev = self.devs[0]

    def configure(self, params: Any) -> None:
        check(lib.sb_dev_configure(self._dev, params), "configure")

    def segments(self, first: int, n: int) -> list[tuple[Any, int, int, int]]:
        return [(self._dev, first, n, 0)]

    def reset_neurons(self) -> None:
        check(lib.sb_dev_reset_neurons(self._dev), "reset neurons")

    def run(self, x: np.ndarray, out: np.ndarray, v: np.ndarray) -> None:
        check(lib.sb_dev_run(self._dev, x.shape[0], ffi.from_buffer("uint8_t[]", x), ffi.from_buffer("uint32_t[]", out),
                             ffi.from_buffer("int32_t[]", v)), "infer")

    def run_batch(self, x: np.ndarray, out: Any, v: Any) -> None:
        B, T, _ = x.shape
        check(lib.sb_dev_run_batch(self._dev, B, T, ffi.from_buffer("uint8_t[]", x), out, v), "infer batch")

    def train(self, req: Any, x: np.ndarray) -> tuple[int, int, np.ndarray]:
        res = ffi.new("sb_train_result_t *")
        check(lib.sb_learn_train(self._dev, req, ffi.from_buffer("uint8_t[]", x), res), "train")
        return res.predicted, res.pulses, np.array(list(res.counts)[:res.neurons], dtype=np.uint16)

    def state(self, layer: int) -> tuple[np.ndarray, np.ndarray]:
        nn = self._dev.neurons[layer]
        v = np.zeros(lib.SB_MAX_NEURONS, dtype=np.int32)
        r = np.zeros(lib.SB_MAX_NEURONS, dtype=np.uint8)
        port = self._dev.port
        check(port.neurons(port.ctx, layer, ffi.from_buffer("int32_t[]", v), ffi.from_buffer("uint8_t[]", r)), "state")
        return v[:nn], r[:nn]

    def counters(self) -> Any:
        return self._dev.cnt

    def clear_counters(self) -> None:
        lib.sb_dev_clear_counters(self._dev)

    def pack_image(self, tiles: list[bytes]) -> bytes:
        return tiles[0]

    def unpack_image(self, image: bytes, tile_bytes: int) -> list[bytes]:
        if len(image) != tile_bytes:
            raise ConfigError(f"device image has {len(image)} bytes, this chip's has {tile_bytes}")
        return [image]


class ModelBackend(Backend):
    name = "model"

    def __init__(self) -> None:
        self._core: Core = OneArray()
        self.params = None

    @property
    def chip(self) -> Any:
        """The virtual chip's C state (read-only use: tests and reports); tile 0 of a tiled layer."""
        return self._core.chips[0]

    @property
    def chips(self) -> tuple[Any, ...]:
        """Every virtual chip: one, or the tiles of a tiled layer in grid order."""
        return tuple(self._core.chips)

    @property
    def _dev(self) -> Any:
        return self._core.devs[0]

    def configure(self, params: Any, *, shape: tuple[int, int] | None = None) -> int:
        """A failed configure leaves the chip as it was."""
        p = params[0]
        if shape is not None and (p.layers != 1 or tuple(shape) != (p.rows, p.cols)):
            return self.configure_tiles(params, shape)
        core = self._core if isinstance(self._core, OneArray) else OneArray()
        core.configure(params)
        return self._configured(core, params)

    def configure_tiles(self, params: Any, shape: tuple[int, int]) -> int:
        """Lay a one-layer chip of logical shape (rows, cols) over tiles of the
        params' geometry, even when it fits one array (configure does this for
        any shape but the array's own; one tile is the plain chip, bit for bit)."""
        return self._configured(TileGrid(params, *shape), params)

    def _configured(self, core: Core, params: Any) -> int:
        self._core = core
        self._tiling = core.tiling
        self.params = ffi.new("sb_params_t *", params[0])
        return int(self._dev.card_hash)

    def tile_of(self, row: int, col: int) -> tuple[int, int]:
        """(tile, cell in the tile) of a logical cell of a tiled layer."""
        if not isinstance(self._core, TileGrid):
            raise ConfigError("tile_of: not a tiled layer (configure with a shape other than the array's)")
        return self._core.tile_of(row, col)

    def info(self) -> BoardInfo:
        p = self.params
        rows, cols = self.layer_shape if p else (0, 0)
        return BoardInfo("model", lib.SB_PROTO_VERSION,
                         f"{lib.SB_VERSION_MAJOR}.{lib.SB_VERSION_MINOR}.{lib.SB_VERSION_PATCH}",
                         "virtual-chip (host)", rows, cols, p.layers if p else 0,
                         p is not None, int(self._dev.card_hash) if p else 0, lib.SB_MAX_PAYLOAD, 0, True,
                         lib.SB_HAL_ID)

    # -- inference -----------------------------------------------------------------
    def _spikes(self, words: np.ndarray) -> np.ndarray:
        """Fire-mask words (..., words) -> (..., neurons) uint8."""
        return masks_to_spikes(words, 32).reshape(*words.shape[:-1], -1)[..., :self.neurons()]

    def infer(self, spikes: np.ndarray, *, reset: bool = True, trace: bool = False) -> tuple[np.ndarray, np.ndarray]:
        x = self._check_spikes(spikes)
        T, nn = x.shape[0], self.neurons()
        if reset:
            self._core.reset_neurons()
        words = np.zeros((T, self._core.words), dtype=np.uint32)
        v = np.zeros((T if trace else 1, max(nn, 1)), dtype=np.int32)
        if trace:
            for t in range(T):
                self._core.run(x[t:t + 1], words[t:t + 1], v[t])
        else:
            self._core.run(x, words, v[0])
        return self._spikes(words), v[:, :nn] if trace else v[0, :nn]

    def _run_batch(self, x: np.ndarray, membranes: bool) -> tuple[np.ndarray, np.ndarray]:
        B, T, _ = x.shape
        words = np.zeros((B, T, self._core.words), dtype=np.uint32)
        v = np.zeros((B, max(self.neurons(), 1)), dtype=np.int32)
        self._core.run_batch(x, ffi.from_buffer("uint32_t[]", words),
                             ffi.from_buffer("int32_t[]", v) if membranes else ffi.NULL)
        return words, v

    def infer_batch(self, spikes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        words, v = self._run_batch(self._check_batch(spikes), True)
        return self._spikes(words), v[:, :self.neurons()]

    def infer_chunk(self, steps: int) -> int:
        """Samples per infer_batch call: the batch loops in C, so only the
        progress display sets the size."""
        return 256

    def run_masks(self, spikes: np.ndarray) -> np.ndarray:
        """Batched inference returning raw u32 fire-mask words (B, T, words), unchecked: the benchmark's path."""
        return self._run_batch(np.ascontiguousarray(spikes, dtype=np.uint8), False)[0]

    # -- training ------------------------------------------------------------------
    def _check_train(self, spikes: Any, label: int, rule: str) -> np.ndarray:
        if self._tiling is not None and rule != "compensated":
            raise ConfigError(f"tiled layers learn with rule 'compensated' (one layer, closed loop), not {rule!r}")
        return super()._check_train(spikes, label, rule)

    def train(self, spikes: Any, label: int, *, rule: str = "sign", target: int = 8, max_pulses: int = 1,
              sample_id: int = 0) -> TrainResult:
        return self.train_batch([spikes], [label], [sample_id], rule=rule, target=target, max_pulses=max_pulses)[0]

    def train_batch(self, samples: Any, labels: Any, sample_ids: Any, *, rule: str = "sign", target: int = 8,
                    max_pulses: int = 1) -> list[TrainResult]:
        """The board's TRAIN_BATCH: every sample checked, then trained in order
        (sb_learn_train, or sb_learn_train_tiled on a tiled layer)."""
        out = []
        for x, y, i in self._check_train_batch(samples, labels, sample_ids, rule):
            req = ffi.new("sb_train_req_t *", {"steps": x.shape[0], "label": y, "rule": RULES[rule],
                                               "target": target, "max_pulses": max_pulses, "levels": 1,
                                               "sample_id": i & 0xFFFFFFFF})
            out.append(TrainResult(i, *self._core.train(req, x)))
        return out

    # -- synapses ------------------------------------------------------------------
    def read_conductance(self, first: int = 0, n: int | None = None) -> np.ndarray:
        n = self.cells - first if n is None else n
        self._check_cells(first, n)
        g = np.zeros(n, dtype=np.uint16)
        gb = ffi.from_buffer("uint16_t[]", g)
        for dev, cell, m, at in self._core.segments(first, n):
            check(lib.sb_dev_read(dev, cell, m, gb + at), "read conductance")
        return g

    def program(self, targets: Any, *, first: int = 0, tolerance: int = 0, max_pulses: int = 64) -> ProgramResult:
        t = np.ascontiguousarray(targets, dtype=np.uint16).ravel()
        self._check_cells(first, len(t))
        used = np.zeros(len(t), dtype=np.uint8)
        failed = np.zeros(len(t), dtype=bool)
        tb, ub = ffi.from_buffer("uint16_t[]", t), ffi.from_buffer("uint8_t[]", used)
        for dev, cell, m, at in self._core.segments(first, len(t)):
            for k in range(at, at + m):   # per cell, as the board does, so counters match
                rc = check(lib.sb_dev_program(dev, cell + k - at, 1, tb + k, tolerance, max_pulses, ub + k, ffi.NULL),
                           "program")
                failed[k] = rc > 0
        return ProgramResult(used, failed)

    def pulse(self, first: int, n: int, polarity: int, count: int) -> np.ndarray:
        self._check_cells(first, n)
        if polarity not in (-1, 0, 1):
            raise ConfigError(f"polarity must be -1, 0 or +1, got {polarity}")
        for dev, cell, m, _ in self._core.segments(first, n):
            check(lib.sb_dev_pulse(dev, cell, m, polarity, count), "pulse")
        return self.read_conductance(first, n)

    def age(self, seconds: int) -> None:
        for dev in self._core.devs:
            check(lib.sb_dev_age(dev, int(seconds)), "age")

    # -- checkpoints ---------------------------------------------------------------
    def _image_bytes(self) -> int:
        return int(lib.sb_dev_image_size(self._dev))

    def read_image(self) -> bytes:
        """The chip's device image; a tiled layer's: a header, the neuron bank's
        counters, then every tile's image (spikeboard.tiles)."""
        n = self._image_bytes()
        return self._core.pack_image([_dev_image(dev, n, bytearray(max(1, n)), 0) for dev in self._core.devs])

    def write_image(self, image: bytes) -> None:
        n = self._image_bytes()
        for dev, part in zip(self._core.devs, self._core.unpack_image(bytes(image), n)):
            _dev_image(dev, n, bytearray(part), 1)

    # -- state ---------------------------------------------------------------------
    def counters(self, clear: bool = False) -> Counters:
        c = Counters.from_c(self._core.counters())
        if clear:
            self._core.clear_counters()
        return c

    def reset(self, neurons: bool = True, chip: bool = False) -> None:
        if chip and self.params is not None:
            self._core.configure(self.params)
        if neurons and self.params is not None:
            self._core.reset_neurons()

    def state(self, layer: int = -1) -> tuple[np.ndarray, np.ndarray]:
        return self._core.state(layer % self._p().layers)


def _dev_image(dev: Any, n: int, buf: bytearray, write: int) -> bytes:
    """Read (write=0) or write (1) one device's n-byte image through buf, in chunks."""
    b = ffi.from_buffer("uint8_t[]", buf)
    for off in range(0, n, IMAGE_CHUNK):
        check(lib.sb_dev_image(dev, off, b + off, min(IMAGE_CHUNK, n - off), write),
              "write image" if write else "read image")
    return bytes(buf[:n])

