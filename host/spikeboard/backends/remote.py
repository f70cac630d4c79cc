"""Backends that reach a board over the link: `serial` (a real board on a
port) and `emulator` (the real firmware in QEMU on a socket UART)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._hal import ffi, lib
from ..cards import params_bytes
from ..errors import ConfigError, DeviceError, LinkError
from ..link import BoardReset, Link
from ..protocol import (batch_fit, infer_batch_fit, infer_result_len, pack, train_item_len, train_result_len,
                        unpack)
from .base import Backend, BoardInfo, Counters, ProgramResult, RULES, TrainResult, masks_to_spikes

_PAYLOAD = lib.SB_MAX_PAYLOAD
_MIN_CHUNK = 32          # smallest bulk payload the adaptive chunking goes down to


@dataclass
class CountWindow:
    """One COUNTS frame of the aggregated readout: fires per neuron of every
    layer over `steps` time steps from the board's step counter `step0`."""
    step0: int
    steps: int
    counts: list[np.ndarray]     # per layer: uint16[neurons]

    @classmethod
    def decode(cls, body: bytes) -> "CountWindow":
        h = unpack("sb_msg_counts_t", body)
        off = ffi.sizeof("sb_msg_counts_t")
        counts = []
        for layer in range(h.layers):
            nn = h.neurons[layer]
            if off + 2 * nn > len(body):
                raise LinkError(f"counts frame: {len(body)} bytes, too short for layer {layer}")
            counts.append(np.frombuffer(body, dtype="<u2", count=nn, offset=off).copy())
            off += 2 * nn
        return cls(int(h.step0), int(h.steps), counts)


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
        n = body[0] | (body[1] << 8)
        self.event_overflow = int.from_bytes(body[4:8], "little")
        for k in range(n):
            e = unpack("sb_event_t", body, 8 + k * ffi.sizeof("sb_event_t"))
            self.events.append((e.t_us, e.step, e.layer, e.mask))

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
    def configure(self, params) -> int:
        body = self._req(lib.SB_CMD_CONFIGURE, params_bytes(params), timeout=max(self.link.timeout, 5.0))
        self.params = ffi.new("sb_params_t *", params[0])
        self._frames_seen = None
        return int.from_bytes(body[:4], "little")

    def info(self) -> BoardInfo:
        h = unpack("sb_msg_hello_t", self._req(lib.SB_CMD_HELLO))
        info = BoardInfo(self.name, h.proto, f"{h.fw_major}.{h.fw_minor}.{h.fw_patch}",
                         ffi.string(h.board).decode(errors="replace"), h.rows, h.cols, h.layers,
                         bool(h.configured), h.card_hash, h.max_payload, h.reset_reason,
                         bool(h.flags & lib.SB_HELLO_VIRTUAL), h.hal_id)
        if h.proto != lib.SB_PROTO_VERSION:
            raise LinkError(f"{self.url}: board speaks protocol {h.proto}, host {lib.SB_PROTO_VERSION}")
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
    def _pack_spikes(self, x: np.ndarray) -> bytes:
        if self._p().pre_levels > 1:
            return x.tobytes()
        return np.packbits(x, axis=1, bitorder="little").tobytes()

    def _steps_per_frame(self, trace: bool) -> int:
        p = self._p()
        nn = self.neurons()
        per_in = p.rows if p.pre_levels > 1 else (p.rows + 7) // 8
        budget = self._chunk
        room_out = max(budget, 4 * nn + 64) - ffi.sizeof("sb_msg_infer_resp_t") - (0 if trace else 4 * nn)
        out_per = 4 + (4 * nn if trace else 0)
        room_out = min(room_out, _PAYLOAD - ffi.sizeof("sb_msg_infer_resp_t") - (0 if trace else 4 * nn))
        return max(1, min(lib.SB_MAX_STEPS, room_out // out_per, (min(budget, _PAYLOAD) - 4) // per_in))

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
        flags = (lib.SB_INFER_LEVELS if self._p().pre_levels > 1 else 0) | (lib.SB_INFER_TRACE if trace else 0) \
            | (lib.SB_INFER_EVENTS if events else 0) | (lib.SB_INFER_COUNTS if counts is not None else 0)
        window = int(counts or 0)
        t0 = 0
        while t0 < x.shape[0]:
            part = x[t0:t0 + self._steps_per_frame(trace)]
            f = flags | (lib.SB_INFER_RESET if reset and t0 == 0 else 0)
            body = self._bulk_req(lib.SB_CMD_INFER, pack("sb_msg_infer_t", steps=len(part), flags=f, window=window)
                                  + self._pack_spikes(part))
            hdr = unpack("sb_msg_infer_resp_t", body)
            off = ffi.sizeof("sb_msg_infer_resp_t")
            if hdr.steps != len(part) or hdr.neurons != nn:
                raise LinkError(f"{self.url}: infer answer for {hdr.steps} steps x {hdr.neurons} neurons, "
                                f"asked {len(part)} x {nn}")
            masks.append(np.frombuffer(body, dtype="<u4", count=len(part), offset=off))
            off += 4 * len(part)
            if trace:
                vs.append(np.frombuffer(body, dtype="<i4", count=len(part) * nn, offset=off).reshape(len(part), nn))
            else:
                v = np.frombuffer(body, dtype="<i4", count=nn, offset=off).copy()
            t0 += len(part)
        out = masks_to_spikes(np.concatenate(masks), nn)
        return out, (np.concatenate(vs) if trace else v)

    def infer_chunk(self, steps: int) -> int:
        """Samples of `steps` time steps that one INFER_BATCH request carries on this
        link now (request and answer within the payload the line affords)."""
        p = self._p()
        return infer_batch_fit([steps] * lib.SB_MAX_BATCH, p.rows, p.pre_levels > 1, self.neurons(), self._chunk)

    def infer_batch(self, spikes):
        """(B, T, rows) -> fires (B, T, neurons), final membranes (B, neurons): each
        sample from reset neurons, as many per request as fit the link both ways
        (INFER_BATCH; a sample too long for a batch goes as INFER). The same bits as
        one infer() per sample. One request, one sequence number: a retried request
        is answered from the board's cache."""
        x = self._check_batch(spikes)
        B, T = x.shape[0], x.shape[1]
        p = self._p()
        nn = self.neurons()
        flags = (lib.SB_INFER_LEVELS if p.pre_levels > 1 else 0) | lib.SB_INFER_RESET
        fires = np.zeros((B, T, nn), dtype=np.uint8)
        v = np.zeros((B, nn), dtype=np.int32)
        hdr = ffi.sizeof("sb_msg_infer_resp_t")
        a = 0
        while a < B:
            k = min(self.infer_chunk(T), B - a)
            if k == 1:
                fires[a], v[a] = self.infer(x[a], reset=True)
                a += 1
                continue
            item = pack("sb_msg_infer_t", steps=T, flags=flags, window=0)
            payload = pack("sb_msg_batch_t", n=k) + b"".join(item + self._pack_spikes(s) for s in x[a:a + k])
            body = self._bulk_req(lib.SB_CMD_INFER_BATCH, payload)
            h = unpack("sb_msg_batch_resp_t", body)
            size = ffi.sizeof("sb_msg_batch_resp_t") + k * infer_result_len(T, nn)
            if h.n != k or h.neurons != nn or len(body) != size:
                raise LinkError(f"{self.url}: infer batch answer for {h.n} samples x {h.neurons} neurons "
                                f"({len(body)} bytes), sent {k} x {nn}")
            off = ffi.sizeof("sb_msg_batch_resp_t")
            for j in range(a, a + k):
                r = unpack("sb_msg_infer_resp_t", body, off)
                if r.steps != T or r.neurons != nn:
                    raise LinkError(f"{self.url}: infer batch item for {r.steps} steps x {r.neurons} neurons, "
                                    f"asked {T} x {nn}")
                fires[j] = masks_to_spikes(np.frombuffer(body, dtype="<u4", count=T, offset=off + hdr), nn)
                v[j] = np.frombuffer(body, dtype="<i4", count=nn, offset=off + hdr + 4 * T)
                off += infer_result_len(T, nn)
            a += k
        return fires, v

    def train(self, spikes, label, *, rule="sign", target=8, max_pulses=1, sample_id=0) -> TrainResult:
        x = self._check_train(spikes, label, rule)
        payload = pack("sb_msg_train_t", steps=x.shape[0], label=label, rule=RULES[rule], target=target,
                       max_pulses=max_pulses, flags=lib.SB_INFER_LEVELS if self._p().pre_levels > 1 else 0,
                       sample_id=sample_id & 0xFFFFFFFF) + self._pack_spikes(x)
        r = unpack("sb_msg_train_resp_t", self._req(lib.SB_CMD_TRAIN, payload))
        if r.sample_id != sample_id & 0xFFFFFFFF:
            raise LinkError(f"{self.url}: train answer is for sample {r.sample_id}, sent {sample_id}")
        return TrainResult(sample_id, r.predicted, r.pulses, np.array(list(r.counts)[:r.neurons], dtype=np.uint16))

    def _train_fit(self, steps: list[int], rule: str, max_pulses: int) -> int:
        p = self._p()
        levels = p.pre_levels > 1
        lens = [train_item_len(t, p.rows, levels) for t in steps]
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
        flags = lib.SB_INFER_LEVELS if self._p().pre_levels > 1 else 0
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
            payload = pack("sb_msg_batch_t", n=k) + b"".join(
                pack("sb_msg_train_t", steps=x.shape[0], label=y, rule=RULES[rule], target=target,
                     max_pulses=max_pulses, flags=flags, sample_id=i & 0xFFFFFFFF) + self._pack_spikes(x)
                for x, y, i in part)
            body = self._req(lib.SB_CMD_TRAIN_BATCH, payload)
            h = unpack("sb_msg_batch_resp_t", body)
            size = ffi.sizeof("sb_msg_batch_resp_t") + k * train_result_len(nn)
            if h.n != k or h.neurons != nn or len(body) != size:
                raise LinkError(f"{self.url}: train batch answer for {h.n} samples x {h.neurons} neurons "
                                f"({len(body)} bytes), sent {k} x {nn}")
            off = ffi.sizeof("sb_msg_batch_resp_t")
            for x, y, i in part:
                r = unpack("sb_msg_train_item_t", body, off)
                if r.sample_id != i & 0xFFFFFFFF:
                    raise LinkError(f"{self.url}: train batch answer is for sample {r.sample_id}, sent {i}")
                off += ffi.sizeof("sb_msg_train_item_t")
                out.append(TrainResult(i, r.predicted, r.pulses, np.frombuffer(body, dtype="<u2", count=nn,
                                                                               offset=off).copy()))
                off += 2 * nn
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
            body = self._bulk_req(lib.SB_CMD_READ_G, pack("sb_msg_read_t", first=a, n=k))
            out.append(np.frombuffer(body, dtype="<u2", count=k))
            a += k
        return np.concatenate(out) if out else np.zeros(0, np.uint16)

    def program(self, targets, *, first=0, tolerance=0, max_pulses=64):
        t = np.ascontiguousarray(targets, dtype="<u2").ravel()
        self._check_cells(first, len(t))
        used, failed = [], []
        a = 0
        while a < len(t):
            part = t[a:a + min(256, self._chunk // 2)]
            req = pack("sb_msg_program_t", first=first + a, n=len(part), tolerance=tolerance, max_pulses=max_pulses)
            body = self._bulk_req(lib.SB_CMD_PROGRAM, req + part.tobytes(), timeout=max(self.link.timeout, self.slow_timeout))
            a += len(part)
            off = ffi.sizeof("sb_msg_program_resp_t")
            used.append(np.frombuffer(body, dtype=np.uint8, count=len(part), offset=off))
            bits = np.frombuffer(body, dtype=np.uint8, offset=off + len(part))
            failed.append(np.unpackbits(bits, bitorder="little")[:len(part)].astype(bool))
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
                body = self._bulk_req(lib.SB_CMD_PULSE, pack("sb_msg_pulse_t", first=a, n=k, count=c,
                                                             polarity=polarity),
                                      timeout=max(self.link.timeout, self.slow_timeout))
                left -= c
                if left <= 0:
                    break
            out.append(np.frombuffer(body, dtype="<u2", count=k))
            a += k
        return np.concatenate(out)

    def age(self, seconds):
        self._req(lib.SB_CMD_AGE, int(seconds).to_bytes(4, "little"))

    # -- checkpoints -------------------------------------------------------------------------
    def read_image(self):
        body = self._req(lib.SB_CMD_IMAGE, pack("sb_msg_image_t", offset=0, n=0, write=0))
        size = int.from_bytes(body[:4], "little")
        if size == 0:
            return None
        parts = []
        off = 0
        while off < size:
            k = min(min(self._chunk, _PAYLOAD - 4), size - off)
            body = self._bulk_req(lib.SB_CMD_IMAGE, pack("sb_msg_image_t", offset=off, n=k, write=0))
            parts.append(body[4:4 + k])
            off += k
        return b"".join(parts)

    def write_image(self, image):
        per = _PAYLOAD - 16
        body = self._req(lib.SB_CMD_IMAGE, pack("sb_msg_image_t", offset=0, n=0, write=0))
        size = int.from_bytes(body[:4], "little")
        if len(image) != size:
            raise ConfigError(f"device image has {len(image)} bytes, the board's has {size}")
        off = 0
        while off < size:
            part = image[off:off + min(per, self._chunk)]
            self._bulk_req(lib.SB_CMD_IMAGE, pack("sb_msg_image_t", offset=off, n=len(part), write=1) + part)
            off += len(part)

    # -- state -----------------------------------------------------------------------------
    def counters(self, clear=False):
        body = self._req(lib.SB_CMD_COUNTERS, bytes([lib.SB_COUNTERS_CLEAR if clear else 0]))
        c = unpack("sb_counters_t", body)
        self.stats = unpack("sb_msg_stats_t", body, ffi.sizeof("sb_counters_t"))
        # the board's count of good frames only grows while it runs: a smaller one
        # means it rebooted since we last asked, and its counters are not ours
        if self._frames_seen is not None and self.stats.frames_ok < self._frames_seen:
            self._frames_seen = None
            raise BoardReset(f"{self.url}: the board rebooted (its frame count went back to "
                             f"{self.stats.frames_ok})")
        self._frames_seen = int(self.stats.frames_ok)
        return Counters.from_c(c)

    def reset(self, neurons=True, chip=False):
        what = (lib.SB_RESET_NEURONS if neurons else 0) | (lib.SB_RESET_CHIP if chip else 0)
        self._req(lib.SB_CMD_RESET, bytes([what]))

    def reboot(self) -> None:
        """Reset the MCU; the board loses its configuration (synapses keep their state on silicon)."""
        self._req(lib.SB_CMD_RESET, bytes([lib.SB_RESET_BOARD]))

    def state(self, layer=-1):
        p = self._p()
        layer = layer % p.layers
        body = self._req(lib.SB_CMD_STATE, bytes([layer]))
        nn = body[0]
        return (np.frombuffer(body, dtype="<i4", count=nn, offset=1).copy(),
                np.frombuffer(body, dtype=np.uint8, count=nn, offset=1 + 4 * nn).copy())
