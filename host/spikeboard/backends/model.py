"""The model backend: hal/'s device controller on the virtual chip, in
process through cffi. The firmware runs this same C on the board."""
from __future__ import annotations

import numpy as np

from .._hal import ffi, lib
from ..errors import ConfigError, check
from .base import Backend, BoardInfo, Counters, ProgramResult, RULES, TrainResult, masks_to_spikes


class ModelBackend(Backend):
    name = "model"

    def __init__(self):
        self._chip = ffi.new("sb_chip_t *")
        self._dev = ffi.new("sb_dev_t *")
        port = lib.sb_chip_port(self._chip, ffi.NULL)
        lib.sb_dev_init(self._dev, port)
        self.params = None

    @property
    def chip(self):
        """The virtual chip's C state (read-only use: tests and reports)."""
        return self._chip

    def configure(self, params) -> int:
        check(lib.sb_dev_configure(self._dev, params), "configure")
        self.params = ffi.new("sb_params_t *", params[0])
        return int(self._dev.card_hash)

    def info(self) -> BoardInfo:
        p = self.params
        return BoardInfo("model", lib.SB_PROTO_VERSION,
                         f"{lib.SB_VERSION_MAJOR}.{lib.SB_VERSION_MINOR}.{lib.SB_VERSION_PATCH}",
                         "virtual-chip (host)", p.rows if p else 0, p.cols if p else 0, p.layers if p else 0,
                         p is not None, int(self._dev.card_hash) if p else 0, lib.SB_MAX_PAYLOAD, 0, True,
                         lib.SB_HAL_ID)

    def infer(self, spikes, *, reset: bool = True, trace: bool = False):
        x = self._check_spikes(spikes)
        T = x.shape[0]
        nn = self.neurons()
        if reset:
            check(lib.sb_dev_reset_neurons(self._dev), "reset neurons")
        masks = np.zeros(T, dtype=np.uint32)
        if trace:
            v = np.zeros((T, nn), dtype=np.int32)
            for t in range(T):
                check(lib.sb_dev_run(self._dev, 1, ffi.from_buffer("uint8_t[]", x[t]), ffi.from_buffer("uint32_t[]", masks[t:t + 1]),
                                     ffi.from_buffer("int32_t[]", v[t])), "infer")
        else:
            v = np.zeros(max(nn, 1), dtype=np.int32)
            check(lib.sb_dev_run(self._dev, T, ffi.from_buffer("uint8_t[]", x), ffi.from_buffer("uint32_t[]", masks),
                                 ffi.from_buffer("int32_t[]", v)), "infer")
            v = v[:nn]
        return masks_to_spikes(masks, nn), v

    def infer_batch(self, spikes):
        x = self._check_batch(spikes)
        B, T, _ = x.shape
        nn = self.neurons()
        masks = np.zeros((B, T), dtype=np.uint32)
        v = np.zeros((B, max(nn, 1)), dtype=np.int32)
        check(lib.sb_dev_run_batch(self._dev, B, T, ffi.from_buffer("uint8_t[]", x), ffi.from_buffer("uint32_t[]", masks),
                                   ffi.from_buffer("int32_t[]", v)), "infer batch")
        return masks_to_spikes(masks, nn), v[:, :nn]

    def infer_chunk(self, steps: int) -> int:
        """Samples per infer_batch call: the batch loops in C, so only the
        progress display sets the size."""
        return 256

    def run_masks(self, spikes: np.ndarray) -> np.ndarray:
        """Batched inference returning raw u32 fire masks (B, T): the benchmark's path."""
        x = np.ascontiguousarray(spikes, dtype=np.uint8)
        B, T, _ = x.shape
        masks = np.zeros((B, T), dtype=np.uint32)
        check(lib.sb_dev_run_batch(self._dev, B, T, ffi.from_buffer("uint8_t[]", x), ffi.from_buffer("uint32_t[]", masks), ffi.NULL),
              "infer batch")
        return masks

    def train(self, spikes, label, *, rule="sign", target=8, max_pulses=1, sample_id=0) -> TrainResult:
        x = self._check_train(spikes, label, rule)
        req = ffi.new("sb_train_req_t *", {"steps": x.shape[0], "label": label, "rule": RULES[rule],
                                           "target": target, "max_pulses": max_pulses, "levels": 1,
                                           "sample_id": sample_id & 0xFFFFFFFF})
        res = ffi.new("sb_train_result_t *")
        check(lib.sb_learn_train(self._dev, req, ffi.from_buffer("uint8_t[]", x), res), "train")
        return TrainResult(sample_id, res.predicted, res.pulses,
                           np.array(list(res.counts)[:res.neurons], dtype=np.uint16))

    def train_batch(self, samples, labels, sample_ids, *, rule="sign", target=8, max_pulses=1):
        """The board's TRAIN_BATCH: every sample checked, then sb_learn_train on each in order."""
        out = []
        for x, y, i in self._check_train_batch(samples, labels, sample_ids, rule):
            req = ffi.new("sb_train_req_t *", {"steps": x.shape[0], "label": y, "rule": RULES[rule],
                                               "target": target, "max_pulses": max_pulses, "levels": 1,
                                               "sample_id": i & 0xFFFFFFFF})
            res = ffi.new("sb_train_result_t *")
            check(lib.sb_learn_train(self._dev, req, ffi.from_buffer("uint8_t[]", x), res), "train")
            out.append(TrainResult(i, res.predicted, res.pulses, np.array(list(res.counts)[:res.neurons], dtype=np.uint16)))
        return out

    def read_conductance(self, first=0, n=None):
        n = self.cells - first if n is None else n
        self._check_cells(first, n)
        g = np.zeros(n, dtype=np.uint16)
        check(lib.sb_dev_read(self._dev, first, n, ffi.from_buffer("uint16_t[]", g)), "read conductance")
        return g

    def program(self, targets, *, first=0, tolerance=0, max_pulses=64):
        t = np.ascontiguousarray(targets, dtype=np.uint16).ravel()
        self._check_cells(first, len(t))
        used = np.zeros(len(t), dtype=np.uint8)
        failed = np.zeros(len(t), dtype=bool)
        for k in range(len(t)):  # per cell, as the board does, so counters match
            rc = check(lib.sb_dev_program(self._dev, first + k, 1, ffi.from_buffer("uint16_t[]", t[k:k + 1]), tolerance,
                                          max_pulses, ffi.from_buffer("uint8_t[]", used[k:k + 1]), ffi.NULL), "program")
            failed[k] = rc > 0
        return ProgramResult(used, failed)

    def pulse(self, first, n, polarity, count):
        self._check_cells(first, n)
        if polarity not in (-1, 0, 1):
            raise ConfigError(f"polarity must be -1, 0 or +1, got {polarity}")
        check(lib.sb_dev_pulse(self._dev, first, n, polarity, count), "pulse")
        return self.read_conductance(first, n)

    def age(self, seconds):
        check(lib.sb_dev_age(self._dev, int(seconds)), "age")

    def read_image(self):
        n = lib.sb_dev_image_size(self._dev)
        buf = ffi.new("uint8_t[]", max(1, n))
        for off in range(0, n, 60000):
            check(lib.sb_dev_image(self._dev, off, buf + off, min(60000, n - off), 0), "read image")
        return bytes(ffi.buffer(buf, n))

    def write_image(self, image):
        n = lib.sb_dev_image_size(self._dev)
        if len(image) != n:
            raise ConfigError(f"device image has {len(image)} bytes, this chip's has {n}")
        buf = ffi.from_buffer("uint8_t[]", bytearray(image))
        for off in range(0, n, 60000):
            check(lib.sb_dev_image(self._dev, off, buf + off, min(60000, n - off), 1), "write image")

    def counters(self, clear=False):
        c = Counters.from_c(self._dev.cnt)
        if clear:
            lib.sb_dev_clear_counters(self._dev)
        return c

    def reset(self, neurons=True, chip=False):
        if chip and self.params is not None:
            check(lib.sb_dev_configure(self._dev, self.params), "reset chip")
        if neurons and self.params is not None:
            check(lib.sb_dev_reset_neurons(self._dev), "reset neurons")

    def state(self, layer=-1):
        p = self._p()
        layer = layer % p.layers
        nn = self.neurons(layer)
        v = np.zeros(SBN, dtype=np.int32)
        r = np.zeros(SBN, dtype=np.uint8)
        port = self._dev.port
        check(port.neurons(port.ctx, layer, ffi.from_buffer("int32_t[]", v), ffi.from_buffer("uint8_t[]", r)), "state")
        return v[:nn], r[:nn]


SBN = lib.SB_MAX_NEURONS
