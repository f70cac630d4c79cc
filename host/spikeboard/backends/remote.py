"""Backends that reach a board over the link: `serial` (a real board on a
port) and `emulator` (the real firmware in QEMU on a socket UART)."""
from __future__ import annotations

import numpy as np

from .._hal import ffi, lib
from ..cards import params_bytes
from ..errors import ConfigError, DeviceError, LinkError
from ..link import BoardReset, Link
from ..protocol import (IMAGE_READ_MAX, IMAGE_WRITE_MAX, CountWindow, age_request, batch_fit, batch_request,
                        counters_request, decode_counters, decode_events, decode_g, decode_hello, decode_image,
                        decode_infer, decode_infer_batch, decode_program, decode_state, decode_train,
                        decode_train_batch, decode_u32, image_request, infer_batch_fit, infer_request,
                        infer_steps_fit, program_request, pulse_request, read_request, reset_request, state_request,
                        train_item_len, train_request)
from .base import Backend, BoardInfo, Counters, ProgramResult, RULES, TrainResult, masks_to_spikes

__all__ = ["CountWindow", "RemoteBackend", "sum_counts"]

_PAYLOAD = lib.SB_MAX_PAYLOAD
_MIN_CHUNK = 32          # smallest bulk payload the adaptive chunking goes down to


def sum_counts(windows: list[CountWindow], layer: int = -1) -> np.ndarray:
    """Fires per neuron of `layer` summed over count windows."""
    return np.sum([w.counts[layer].astype(np.int64) for w in windows], axis=0)


class RemoteBackend(Backend):
    name = "serial"
    slow_timeout = 30.0      # PROGRAM / PULSE of many cells may take this long on a real board

    def __init__(self, url: str, *, timeout: float = 2.0, retries: int = 6, link: Link | None = None,
                 faults=None):
        self.url = url
        self.events: list[tuple[int, int, int, int]] = []   # (t_us, step, layer, mask)
        self.event_overflow = 0
        # aggregated readout (infer(counts=...)): one CountWindow per COUNTS frame
        self.count_windows: list[CountWindow] = []
        self.link = link or Link(url, timeout=timeout, retries=retries, on_event=self._on_event, faults=faults)
        if link is not None:
            link.on_event = self._on_event
        self.params = None
        self.stats = None
        self._frames_seen: int | None = None   # the board's good-frame count: drops only when it reboots

    @property
    def faults(self):
        """The fault injector on this backend's link (tests, noisy-link drills), or None."""
        return self.link.faults

    def reconnect(self) -> None:
        """Reopen the link to the same board (after it was lost or the board reset);
        statistics and any fault plan carry over."""
        old = self.link
        old.close()
        self.link = Link(self.url, timeout=old.timeout, retries=old.retries, on_event=self._on_event,
                         faults=old.faults, idle_gap=old.idle_gap, max_resends=old.max_resends, stats=old.stats)
        self.link.stats.reconnects += 1
        self._frames_seen = None

    # -- plumbing ----------------------------------------------------------------
    def _on_event(self, body: bytes, cmd: int = lib.SB_CMD_EVENT) -> None:
        if cmd == lib.SB_CMD_COUNTS:
            self.count_windows.append(CountWindow.decode(body))
            return
        ev, self.event_overflow = decode_events(body)
        self.events += zip(ev["t_us"].tolist(), ev["step"].tolist(), ev["layer"].tolist(), ev["mask"].tolist())

    def _req(self, cmd: int, payload: bytes = b"", timeout: float | None = None) -> bytes:
        try:
            return self.link.request(cmd, payload, timeout=timeout)
        except DeviceError as e:
            if e.code == lib.SB_ECONFIG and self.params is not None and cmd != lib.SB_CMD_CONFIGURE:
                # we configured this board; now it says it is not: it was reset under us
                raise BoardReset(f"{self.url}: the board lost its configuration (it was reset): {e}") from None
            raise

    def _bulk_req(self, cmd: int, payload: bytes = b"", timeout: float | None = None) -> bytes:
        """A request of a bulk transfer. Chunk sizes follow the line: the link's
        loss estimate picks the next one (Link.best_chunk). A request is never
        cut short and sent again smaller: even a read counts on the chip (its
        read energy), so it goes on with its sequence number until it is
        through. Chunking never changes what the chip does."""
        return self._req(cmd, payload, timeout)

    @property
    def _chunk(self) -> int:
        """Bulk payload bytes per request: up to 1 KB on a clean line, less on a noisy one."""
        return self.link.best_chunk(_PAYLOAD, _MIN_CHUNK)

    def close(self) -> None:
        self.link.close()

    # -- configuration -------------------------------------------------------------
    def configure(self, params, *, shape: tuple[int, int] | None = None) -> int:
        """A board runs the one array of its card: shape may only be None or that
        array's own (rows, cols)."""
        p = params[0]
        if shape is not None and (p.layers != 1 or tuple(shape) != (p.rows, p.cols)):
            rows, cols = shape
            raise ConfigError(f"layer {rows}x{cols}: a board runs one {p.rows}x{p.cols} array"
                              f"{f' of {p.layers} layers' if p.layers != 1 else ''}; layers larger than one "
                              f"array run on the model backend (--backend model)", field="shape")
        body = self._req(lib.SB_CMD_CONFIGURE, params_bytes(params), timeout=max(self.link.timeout, 5.0))
        self.params = ffi.new("sb_params_t *", p)
        self._frames_seen = None
        return decode_u32(body, "configure answer")

    def info(self) -> BoardInfo:
        info = BoardInfo(self.name, **decode_hello(self._req(lib.SB_CMD_HELLO)))
        if info.proto != lib.SB_PROTO_VERSION:
            raise LinkError(f"{self.url}: board speaks protocol {info.proto}, host {lib.SB_PROTO_VERSION}")
        return info

    def check_build(self) -> None:
        """Refuse a board whose firmware was built from other hal/ sources than
        this host's model: its bits would differ from the reference."""
        info = self.info()
        if info.hal_id != lib.SB_HAL_ID:
            raise LinkError(f"{self.url}: firmware built from other hal/ sources (board {info.hal_id:08x}, "
                            f"host {lib.SB_HAL_ID:08x}): rebuild and flash it (tools/setup.sh, "
                            f"spikeboard flash --board {info.board})")

    # -- inference and training -------------------------------------------------------
    @property
    def _levels(self) -> bool:
        """Input goes as pulse-width levels, a byte per row (else binary spikes, 8 rows a byte)."""
        return self._p().pre_levels > 1

    def _steps_per_frame(self, trace: bool) -> int:
        return infer_steps_fit(self._p().rows, self._levels, self.neurons(), trace, self._chunk)

    def infer(self, spikes, *, reset=True, trace=False, events=False, counts=None):
        """events: stream AER event frames (self.events). counts: the aggregated
        readout instead, per-neuron fire counts in windows of `counts` time steps
        (0: one window per request; a long inference is sent as several
        requests, and a window never spans two) into self.count_windows."""
        x = self._check_spikes(spikes)
        nn = self.neurons()
        masks, vs = [], []
        v = np.zeros(nn, dtype=np.int32)
        if counts is not None and not 0 <= int(counts) <= 255:
            raise ConfigError(f"counts window {counts}: 0..255 time steps (0 = the whole request)")
        if counts is not None and events:
            raise ConfigError("infer: events (AER) and counts (aggregated) readouts are exclusive")
        flags = (lib.SB_INFER_TRACE if trace else 0) | (lib.SB_INFER_EVENTS if events else 0) \
            | (lib.SB_INFER_COUNTS if counts is not None else 0)
        window = int(counts or 0)
        t0 = 0
        while t0 < x.shape[0]:
            part = x[t0:t0 + self._steps_per_frame(trace)]
            f = flags | (lib.SB_INFER_RESET if reset and t0 == 0 else 0)
            a = decode_infer(self._bulk_req(lib.SB_CMD_INFER, infer_request(part, self._levels, f, window)),
                             trace=trace)
            if a.steps != len(part) or a.neurons != nn:
                raise LinkError(f"{self.url}: infer answer for {a.steps} steps x {a.neurons} neurons, "
                                f"asked {len(part)} x {nn}")
            masks.append(a.masks)
            if trace:
                vs.append(a.v)
            else:
                v = a.v
            t0 += len(part)
        out = masks_to_spikes(np.concatenate(masks), nn)
        return out, (np.concatenate(vs) if trace else v)

    def infer_chunk(self, steps: int) -> int:
        """Samples of `steps` time steps that one INFER_BATCH request carries on this
        link now (request and answer within the payload the line affords)."""
        return infer_batch_fit([steps] * lib.SB_MAX_BATCH, self._p().rows, self._levels, self.neurons(), self._chunk)

    def infer_batch(self, spikes):
        """(B, T, rows) -> fires (B, T, neurons), final membranes (B, neurons): each
        sample from reset neurons, as many per request as fit the link both ways
        (INFER_BATCH; a sample too long for a batch goes as INFER). The same bits as
        one infer() per sample. One request, one sequence number: a retried request
        is answered from the board's cache."""
        x = self._check_batch(spikes)
        B, T = x.shape[0], x.shape[1]
        nn = self.neurons()
        fires = np.zeros((B, T, nn), dtype=np.uint8)
        v = np.zeros((B, nn), dtype=np.int32)
        a = 0
        while a < B:
            k = min(self.infer_chunk(T), B - a)
            if k == 1:
                fires[a], v[a] = self.infer(x[a], reset=True)
                a += 1
                continue
            payload = batch_request([infer_request(s, self._levels, lib.SB_INFER_RESET) for s in x[a:a + k]])
            items = decode_infer_batch(self._bulk_req(lib.SB_CMD_INFER_BATCH, payload))
            got = sorted({(r.steps, r.neurons) for r in items})
            if len(items) != k or got != [(T, nn)]:
                raise LinkError(f"{self.url}: infer batch answer for {len(items)} samples of (steps, neurons) "
                                f"{got}, sent {k} of {T} x {nn}")
            for j, r in enumerate(items, start=a):
                fires[j], v[j] = masks_to_spikes(r.masks, nn), r.v
            a += k
        return fires, v

    def train(self, spikes, label, *, rule="sign", target=8, max_pulses=1, sample_id=0) -> TrainResult:
        x = self._check_train(spikes, label, rule)
        r = decode_train(self._req(lib.SB_CMD_TRAIN, train_request(x, self._levels, label=label, rule=RULES[rule],
                                                                   target=target, max_pulses=max_pulses,
                                                                   sample_id=sample_id)))
        if r.sample_id != sample_id & 0xFFFFFFFF:
            raise LinkError(f"{self.url}: train answer is for sample {r.sample_id}, sent {sample_id}")
        return TrainResult(sample_id, r.predicted, r.pulses, r.counts)

    def _train_fit(self, steps: list[int], rule: str, max_pulses: int) -> int:
        lens = [train_item_len(t, self._p().rows, self._levels) for t in steps]
        return batch_fit(lens, self.neurons(), self.cells, max_pulses, steps, self._chunk)

    def train_chunk(self, steps: int, rule: str = "sign", max_pulses: int = 1) -> int:
        """Samples of `steps` time steps that one TRAIN_BATCH request carries on this
        link now (request and answer within the payload the line affords)."""
        return self._train_fit([steps] * lib.SB_MAX_BATCH, rule, max_pulses)

    def train_batch(self, samples, labels, sample_ids, *, rule="sign", target=8, max_pulses=1):
        """Train samples in order, as many per request as fit the link (TRAIN_BATCH;
        a lone sample goes as TRAIN). One request, one sequence number: a retried
        request is answered from the board's cache, so no sample runs twice."""
        items = self._check_train_batch(samples, labels, sample_ids, rule)
        nn = self.neurons()
        out: list[TrainResult] = []
        a = 0
        while a < len(items):
            k = self._train_fit([x.shape[0] for x, _, _ in items[a:a + lib.SB_MAX_BATCH]], rule, max_pulses)
            part = items[a:a + k]
            if k == 1:
                x, y, i = part[0]
                out.append(self.train(x, y, rule=rule, target=target, max_pulses=max_pulses, sample_id=i))
                a += 1
                continue
            payload = batch_request([train_request(x, self._levels, label=y, rule=RULES[rule], target=target,
                                                   max_pulses=max_pulses, sample_id=i) for x, y, i in part])
            res = decode_train_batch(self._req(lib.SB_CMD_TRAIN_BATCH, payload))
            if len(res) != k or any(len(r.counts) != nn for r in res):
                raise LinkError(f"{self.url}: train batch answer for {len(res)} samples x "
                                f"{len(res[0].counts) if res else 0} neurons, sent {k} x {nn}")
            for (x, y, i), r in zip(part, res):
                if r.sample_id != i & 0xFFFFFFFF:
                    raise LinkError(f"{self.url}: train batch answer is for sample {r.sample_id}, sent {i}")
                out.append(TrainResult(i, r.predicted, r.pulses, r.counts))
            a += k
        return out

    # -- synapses ---------------------------------------------------------------------
    def read_conductance(self, first=0, n=None):
        n = self.cells - first if n is None else n
        self._check_cells(first, n)
        out = []
        a = first
        while a < first + n:
            k = min(self._chunk // 2, first + n - a)
            out.append(decode_g(self._bulk_req(lib.SB_CMD_READ_G, read_request(a, k)), k))
            a += k
        return np.concatenate(out) if out else np.zeros(0, np.uint16)

    def program(self, targets, *, first=0, tolerance=0, max_pulses=64):
        t = np.ascontiguousarray(targets, dtype="<u2").ravel()
        self._check_cells(first, len(t))
        used, failed = [], []
        a = 0
        while a < len(t):
            part = t[a:a + min(256, self._chunk // 2)]
            body = self._bulk_req(lib.SB_CMD_PROGRAM, program_request(first + a, part, tolerance, max_pulses),
                                  timeout=max(self.link.timeout, self.slow_timeout))
            u, f = decode_program(body, len(part))
            used.append(u)
            failed.append(f)
            a += len(part)
        return ProgramResult(np.concatenate(used), np.concatenate(failed))

    def pulse(self, first, n, polarity, count):
        self._check_cells(first, n)
        if polarity not in (-1, 0, 1):
            raise ConfigError(f"polarity must be -1, 0 or +1, got {polarity}")
        # a request holds at most SB_MAX_PULSE_WORK cell-pulses (the board answers inside its
        # watchdog period): fewer cells per request, and long counts in parts; every cell still
        # gets its own pulses in the same order, so the result is the same bits
        work = lib.SB_MAX_PULSE_WORK
        per = max(1, min(count, work))
        out = []
        a = first
        while a < first + n:
            k = min(self._chunk // 2, first + n - a, max(1, work // per))
            left = count
            while True:
                c = min(left, per)
                body = self._bulk_req(lib.SB_CMD_PULSE, pulse_request(a, k, polarity, c),
                                      timeout=max(self.link.timeout, self.slow_timeout))
                left -= c
                if left <= 0:
                    break
            out.append(decode_g(body, k))
            a += k
        return np.concatenate(out)

    def age(self, seconds):
        self._req(lib.SB_CMD_AGE, age_request(seconds))

    # -- checkpoints -------------------------------------------------------------------------
    def _image_size(self) -> int:
        return decode_image(self._req(lib.SB_CMD_IMAGE, image_request()))[0]

    def read_image(self):
        size = self._image_size()
        if size == 0:
            return None
        parts = []
        off = 0
        while off < size:
            k = min(self._chunk, IMAGE_READ_MAX, size - off)
            parts.append(decode_image(self._bulk_req(lib.SB_CMD_IMAGE, image_request(off, k)))[1][:k])
            off += k
        return b"".join(parts)

    def write_image(self, image):
        size = self._image_size()
        if len(image) != size:
            raise ConfigError(f"device image has {len(image)} bytes, the board's has {size}")
        off = 0
        while off < size:
            part = image[off:off + min(IMAGE_WRITE_MAX, self._chunk)]
            self._bulk_req(lib.SB_CMD_IMAGE, image_request(off, data=part))
            off += len(part)

    # -- state -----------------------------------------------------------------------------
    def counters(self, clear=False):
        c, self.stats = decode_counters(self._req(lib.SB_CMD_COUNTERS, counters_request(clear)))
        # the board's count of good frames only grows while it runs: a smaller one
        # means it rebooted since we last asked, and its counters are not ours
        if self._frames_seen is not None and self.stats.frames_ok < self._frames_seen:
            self._frames_seen = None
            raise BoardReset(f"{self.url}: the board rebooted (its frame count went back to "
                             f"{self.stats.frames_ok})")
        self._frames_seen = int(self.stats.frames_ok)
        return Counters.from_c(c)

    def reset(self, neurons=True, chip=False):
        self._req(lib.SB_CMD_RESET, reset_request(neurons=neurons, chip=chip))

    def reboot(self) -> None:
        """Reset the MCU; the board loses its configuration (synapses keep their state on silicon)."""
        self._req(lib.SB_CMD_RESET, reset_request(board=True))

    def state(self, layer=-1):
        return decode_state(self._req(lib.SB_CMD_STATE, state_request(layer % self._p().layers)))
