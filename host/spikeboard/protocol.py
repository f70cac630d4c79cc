"""Python face of the wire protocol: every message the host sends is packed,
and every answer and event frame it reads is unpacked, here and nowhere
else. Every struct, constant and error text and the frame codec come from
hal/ through cffi, so the host cannot drift from the firmware."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._hal import ffi, lib
from .errors import DeviceError, LinkError, describe


def constants(prefix: str, skip: tuple[str, ...] = ()) -> dict[int, str]:
    """lib's constants PREFIX_NAME as {value: NAME}, by value (skip: NAMEs left out)."""
    found = {getattr(lib, n): n[len(prefix):] for n in dir(lib) if n.startswith(prefix) and n[len(prefix):] not in skip}
    return dict(sorted(found.items()))


CMD_NAMES = {code: name.lower() for code, name in constants("SB_CMD_").items()}

# HELLO's reset_reason (enum sb_reset_reason in proto.h): code -> "power-on", "watchdog", "software", "pin"
RESET_REASONS = {code: name.lower().replace("_", "-")
                 for code, name in constants("SB_RESET_REASON_", ("COUNT",)).items()}


def reset_reason_name(code: int) -> str:
    """Why the board last started, by name ("reason N" for a code this host does not know)."""
    return RESET_REASONS.get(code, f"reason {code}")


def pack(ctype: str, **fields) -> bytes:
    """Fill a wire struct (e.g. 'sb_msg_read_t') and return its bytes."""
    obj = ffi.new(ctype + " *")
    for k, v in fields.items():
        setattr(obj, k, v)
    return bytes(ffi.buffer(obj))


def unpack(ctype: str, data: bytes, offset: int = 0):
    """View bytes as a wire struct (a copy; fields read like attributes)."""
    size = ffi.sizeof(ctype)
    if len(data) - offset < size:
        raise LinkError(f"{ctype}: need {size} bytes, frame has {len(data) - offset}")
    obj = ffi.new(ctype + " *")
    ffi.memmove(obj, data[offset:offset + size], size)
    return obj


def encode_frame(cmd: int, flags: int, seq: int, payload: bytes = b"") -> bytes:
    out = ffi.new("uint8_t[]", lib.SB_MAX_FRAME)
    n = lib.sb_frame_encode(cmd, flags, seq & 0xFFFF, payload, len(payload), out)
    if n < 0:
        raise DeviceError(f"encode {CMD_NAMES.get(cmd, cmd)}: {describe(n)}", n)
    return bytes(ffi.buffer(out, n))


def decode_frame(enc: bytes) -> tuple[int, int, int, bytes]:
    """Decode one frame's COBS bytes (no delimiter) -> (cmd, flags, seq, payload).
    Raises LinkError naming what was wrong."""
    cmd, flags, seq = ffi.new("uint8_t *"), ffi.new("uint8_t *"), ffi.new("uint16_t *")
    buf = ffi.new("uint8_t[]", lib.SB_MAX_PAYLOAD)
    n = lib.sb_frame_decode(enc, len(enc), cmd, flags, seq, buf, lib.SB_MAX_PAYLOAD)
    if n < 0:
        raise LinkError(f"bad frame: {describe(n)}")
    return cmd[0], flags[0], seq[0], bytes(ffi.buffer(buf, n))


def input_len(steps: int, rows: int, levels: bool) -> int:
    """Bytes of `steps` steps of input spikes in a request: a byte per row of
    pulse-width levels, else the rows packed 8 per byte."""
    return steps * (rows if levels else (rows + 7) // 8)


def train_item_len(steps: int, rows: int, levels: bool) -> int:
    """Request bytes of one TRAIN body (sb_msg_train_t and its input spikes):
    a TRAIN_BATCH item is exactly one."""
    return ffi.sizeof("sb_msg_train_t") + input_len(steps, rows, levels)


def train_result_len(neurons: int) -> int:
    """Answer bytes of one TRAIN_BATCH item: sb_msg_train_item_t then u16 counts[neurons]."""
    return ffi.sizeof("sb_msg_train_item_t") + 2 * neurons


def batch_fit(item_lens: list[int], neurons: int, cells: int, max_pulses: int, steps: list[int],
              budget: int | None = None) -> int:
    """How many of these TRAIN items, from the first, one TRAIN_BATCH request
    holds: the request and its answer each within `budget` (<= SB_MAX_PAYLOAD) bytes,
    at most SB_MAX_BATCH items, SB_MAX_STEPS steps and SB_MAX_PULSE_WORK
    cell-pulses in all (the board refuses more). At least 1."""
    budget = lib.SB_MAX_PAYLOAD if budget is None else min(budget, lib.SB_MAX_PAYLOAD)
    req = ffi.sizeof("sb_msg_batch_t")
    resp = ffi.sizeof("sb_msg_batch_resp_t")
    out_item = train_result_len(neurons)
    k = t = w = 0
    for n, st in zip(item_lens, steps):
        if (k == lib.SB_MAX_BATCH or req + n > budget or resp + out_item > budget
                or t + st > lib.SB_MAX_STEPS or w + cells * max_pulses > lib.SB_MAX_PULSE_WORK):
            break
        k, req, resp, t, w = k + 1, req + n, resp + out_item, t + st, w + cells * max_pulses
    return max(k, 1)


def infer_item_len(steps: int, rows: int, levels: bool) -> int:
    """Request bytes of one INFER body (sb_msg_infer_t and its input spikes):
    an INFER_BATCH item is exactly one."""
    return ffi.sizeof("sb_msg_infer_t") + input_len(steps, rows, levels)


def infer_result_len(steps: int, neurons: int) -> int:
    """Answer bytes of one INFER_BATCH item: exactly an INFER answer
    (sb_msg_infer_resp_t, u32 masks[steps], i32 v[neurons])."""
    return ffi.sizeof("sb_msg_infer_resp_t") + 4 * steps + 4 * neurons


def infer_batch_fit(steps: list[int], rows: int, levels: bool, neurons: int, budget: int | None = None) -> int:
    """How many of these INFER items, from the first, one INFER_BATCH request
    holds: the request and its answer each within `budget` (<= SB_MAX_PAYLOAD)
    bytes, at most SB_MAX_BATCH items and SB_MAX_STEPS steps in all (the board
    refuses more). At least 1 (a lone sample goes as INFER)."""
    budget = lib.SB_MAX_PAYLOAD if budget is None else min(budget, lib.SB_MAX_PAYLOAD)
    req = ffi.sizeof("sb_msg_batch_t")
    resp = ffi.sizeof("sb_msg_batch_resp_t")
    k = t = 0
    for st in steps:
        a, b = infer_item_len(st, rows, levels), infer_result_len(st, neurons)
        if k == lib.SB_MAX_BATCH or req + a > budget or resp + b > budget or t + st > lib.SB_MAX_STEPS:
            break
        k, req, resp, t = k + 1, req + a, resp + b, t + st
    return max(k, 1)


# ---------------------------------------------------------------- requests
def spikes_bytes(x: np.ndarray, levels: bool) -> bytes:
    """Input spikes (steps, rows) as a request carries them: a byte per row of
    pulse-width levels, else the rows packed 8 per byte (row 0 in bit 0)."""
    x = np.ascontiguousarray(x, dtype=np.uint8)
    return x.tobytes() if levels else np.packbits(x, axis=1, bitorder="little").tobytes()


def infer_request(x: np.ndarray, levels: bool, flags: int = 0, window: int = 0) -> bytes:
    """An INFER body: sb_msg_infer_t (SB_INFER_* flags; SB_INFER_LEVELS added
    for pulse-width levels) and the input spikes. An INFER_BATCH item is exactly one."""
    flags |= lib.SB_INFER_LEVELS if levels else 0
    return pack("sb_msg_infer_t", steps=len(x), flags=flags, window=window) + spikes_bytes(x, levels)


def train_request(x: np.ndarray, levels: bool, *, label: int, rule: int, target: int, max_pulses: int,
                  sample_id: int) -> bytes:
    """A TRAIN body: sb_msg_train_t and the input spikes. A TRAIN_BATCH item is exactly one."""
    return pack("sb_msg_train_t", steps=len(x), label=label, rule=rule, target=target, max_pulses=max_pulses,
                flags=lib.SB_INFER_LEVELS if levels else 0, sample_id=sample_id & 0xFFFFFFFF) + spikes_bytes(x, levels)


def batch_request(items: list[bytes]) -> bytes:
    """A TRAIN_BATCH or INFER_BATCH body: sb_msg_batch_t, then the items (request bodies) back to back."""
    return pack("sb_msg_batch_t", n=len(items)) + b"".join(items)


def program_request(first: int, targets: np.ndarray, tolerance: int, max_pulses: int) -> bytes:
    """A PROGRAM body: sb_msg_program_t, then u16 target[n]."""
    t = np.ascontiguousarray(targets, dtype="<u2").ravel()
    return pack("sb_msg_program_t", first=first, n=len(t), tolerance=tolerance, max_pulses=max_pulses) + t.tobytes()


def read_request(first: int, n: int) -> bytes:
    return pack("sb_msg_read_t", first=first, n=n)


def pulse_request(first: int, n: int, polarity: int, count: int) -> bytes:
    return pack("sb_msg_pulse_t", first=first, n=n, count=count, polarity=polarity)


def age_request(seconds: int) -> bytes:
    """An AGE body: u32 seconds."""
    return bytes(ffi.buffer(ffi.new("uint32_t *", int(seconds))))


def image_request(offset: int = 0, n: int = 0, data: bytes | None = None) -> bytes:
    """An IMAGE body: read n bytes at offset (n = 0: the image size only), or write `data` there."""
    if data is None:
        return pack("sb_msg_image_t", offset=offset, n=n, write=0)
    return pack("sb_msg_image_t", offset=offset, n=len(data), write=1) + bytes(data)


# image bytes one IMAGE request reads (the answer holds u32 size first) or writes (after its header)
IMAGE_READ_MAX = lib.SB_MAX_PAYLOAD - ffi.sizeof("uint32_t")
IMAGE_WRITE_MAX = lib.SB_MAX_PAYLOAD - ffi.sizeof("sb_msg_image_t")


def counters_request(clear: bool = False) -> bytes:
    return bytes([lib.SB_COUNTERS_CLEAR if clear else 0])


def reset_request(*, neurons: bool = False, chip: bool = False, board: bool = False) -> bytes:
    """A RESET body: u8 SB_RESET_* bits."""
    return bytes([(lib.SB_RESET_NEURONS if neurons else 0) | (lib.SB_RESET_CHIP if chip else 0)
                  | (lib.SB_RESET_BOARD if board else 0)])


def state_request(layer: int) -> bytes:
    return bytes([layer])


def infer_steps_fit(rows: int, levels: bool, neurons: int, trace: bool, budget: int) -> int:
    """Time steps one INFER request carries with about `budget` payload bytes
    each way (at most SB_MAX_PAYLOAD and SB_MAX_STEPS; at least 1)."""
    fixed_out = ffi.sizeof("sb_msg_infer_resp_t") + (0 if trace else 4 * neurons)   # v[neurons] once
    per_out = 4 + (4 * neurons if trace else 0)                                      # a mask (and v) per step
    room_out = min(max(budget, 4 * neurons + 64), lib.SB_MAX_PAYLOAD) - fixed_out
    room_in = min(budget, lib.SB_MAX_PAYLOAD) - ffi.sizeof("sb_msg_infer_t")
    return max(1, min(lib.SB_MAX_STEPS, room_out // per_out, room_in // input_len(1, rows, levels)))


# ---------------------------------------------------------------- answers
def _array(data: bytes, dtype: str | np.dtype, count: int, offset: int, what: str) -> np.ndarray:
    """count items of dtype at offset, a copy; LinkError when the answer is shorter."""
    size = np.dtype(dtype).itemsize * count
    if offset + size > len(data):
        raise LinkError(f"{what}: need {offset + size} bytes, the answer has {len(data)}")
    return np.frombuffer(data, dtype=dtype, count=count, offset=offset).copy()


def decode_hello(body: bytes) -> dict:
    """A HELLO answer (sb_msg_hello_t) as BoardInfo's fields (all but `backend`)."""
    h = unpack("sb_msg_hello_t", body)
    return dict(proto=h.proto, firmware=f"{h.fw_major}.{h.fw_minor}.{h.fw_patch}",
                board=ffi.string(h.board).decode(errors="replace"), rows=h.rows, cols=h.cols,
                layers=h.layers, configured=bool(h.configured), card_hash=h.card_hash, max_payload=h.max_payload,
                reset_reason=h.reset_reason, virtual=bool(h.flags & lib.SB_HELLO_VIRTUAL), hal_id=h.hal_id)


def decode_u32(body: bytes, what: str = "answer") -> int:
    """The u32 a CONFIGURE answer (card hash) or an IMAGE answer (image size) starts with."""
    return int(_array(body, "<u4", 1, 0, what)[0])


@dataclass
class InferAnswer:
    """An INFER answer, or one item of an INFER_BATCH answer."""
    steps: int
    neurons: int
    layer: int              # the layer reported (the last)
    step0: int              # the board's step counter before the first step
    masks: np.ndarray       # uint32[steps]: fire mask of each step
    v: np.ndarray           # int32[neurons] after the last step, or [steps, neurons] (SB_INFER_TRACE)
    size: int               # bytes of the answer


def decode_infer(body: bytes, offset: int = 0, trace: bool = False) -> InferAnswer:
    """sb_msg_infer_resp_t, u32 masks[steps], i32 v[neurons] (x steps with trace) at offset."""
    h = unpack("sb_msg_infer_resp_t", body, offset)
    at = offset + ffi.sizeof("sb_msg_infer_resp_t")
    masks = _array(body, "<u4", h.steps, at, "infer answer")
    nv = h.neurons * (h.steps if trace else 1)
    v = _array(body, "<i4", nv, at + 4 * h.steps, "infer answer")
    size = at + 4 * h.steps + 4 * nv - offset
    return InferAnswer(h.steps, h.neurons, h.layer, h.step0, masks, v.reshape(h.steps, h.neurons) if trace else v,
                       size)


def _batch_answer(body: bytes) -> tuple[int, int, int]:
    """An answer's sb_msg_batch_resp_t -> (items, neurons, offset of the first item)."""
    h = unpack("sb_msg_batch_resp_t", body)
    return h.n, h.neurons, ffi.sizeof("sb_msg_batch_resp_t")


def decode_infer_batch(body: bytes) -> list[InferAnswer]:
    """An INFER_BATCH answer: sb_msg_batch_resp_t, then per item exactly an INFER answer."""
    n, neurons, off = _batch_answer(body)
    items = []
    for _ in range(n):
        items.append(decode_infer(body, off))
        off += items[-1].size
    if off != len(body) or any(a.neurons != neurons for a in items):
        raise LinkError(f"infer batch answer: {len(body)} bytes, not {n} items of {neurons} neurons")
    return items


@dataclass
class TrainAnswer:
    """A TRAIN answer, or one item of a TRAIN_BATCH answer."""
    sample_id: int
    predicted: int          # most fires (lowest index on a tie); 255: no output neuron fired
    pulses: int
    counts: np.ndarray      # uint16[neurons]: fires per output neuron


def decode_train(body: bytes) -> TrainAnswer:
    r = unpack("sb_msg_train_resp_t", body)
    return TrainAnswer(r.sample_id, r.predicted, r.pulses, np.array(list(r.counts)[:r.neurons], dtype=np.uint16))


def decode_train_batch(body: bytes) -> list[TrainAnswer]:
    """A TRAIN_BATCH answer: sb_msg_batch_resp_t, then n x (sb_msg_train_item_t, u16 counts[neurons])."""
    n, neurons, off = _batch_answer(body)
    if len(body) != off + n * train_result_len(neurons):
        raise LinkError(f"train batch answer: {len(body)} bytes, not {n} items of {neurons} neurons")
    out = []
    for _ in range(n):
        r = unpack("sb_msg_train_item_t", body, off)
        off += ffi.sizeof("sb_msg_train_item_t")
        out.append(TrainAnswer(r.sample_id, r.predicted, r.pulses, _array(body, "<u2", neurons, off, "train batch")))
        off += 2 * neurons
    return out


def decode_g(body: bytes, n: int) -> np.ndarray:
    """A READ_G or PULSE answer: u16 g[n]."""
    return _array(body, "<u2", n, 0, "conductance answer")


def decode_program(body: bytes, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A PROGRAM answer: sb_msg_program_resp_t, u8 pulses_used[n], a bitmap of
    the failed cells -> (pulses used, failed) per cell."""
    off = ffi.sizeof("sb_msg_program_resp_t")
    used = _array(body, "u1", n, off, "program answer")
    bits = _array(body, "u1", (n + 7) // 8, off + n, "program answer")
    return used, np.unpackbits(bits, bitorder="little")[:n].astype(bool)


def decode_image(body: bytes) -> tuple[int, bytes]:
    """An IMAGE answer: u32 image size, then (a read) the bytes -> (size, bytes)."""
    return decode_u32(body, "image answer"), body[ffi.sizeof("uint32_t"):]


def decode_counters(body: bytes):
    """A COUNTERS answer -> (sb_counters_t, sb_msg_stats_t), as cffi structs."""
    return unpack("sb_counters_t", body), unpack("sb_msg_stats_t", body, ffi.sizeof("sb_counters_t"))


def decode_state(body: bytes) -> tuple[np.ndarray, np.ndarray]:
    """A STATE answer: u8 neurons, i32 v[neurons], u8 refractory[neurons]."""
    nn = _array(body, "u1", 1, 0, "state answer")[0]
    return _array(body, "<i4", nn, 1, "state answer"), _array(body, "u1", nn, 1 + 4 * nn, "state answer")


def _dtype(ctype: str) -> np.dtype:
    """A numpy dtype with the fields, offsets and size of a wire struct of integer fields."""
    names, formats, offsets = [], [], []
    for name, f in ffi.typeof(ctype).fields:
        t, shape = (f.type.item, (f.type.length,)) if f.type.kind == "array" else (f.type, ())
        kind = "u" if t.cname.startswith("uint") or t.cname == "char" else "i"
        names.append(name)
        formats.append((f"<{kind}{ffi.sizeof(t)}", shape) if shape else f"<{kind}{ffi.sizeof(t)}")
        offsets.append(f.offset)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": ffi.sizeof(ctype)})


EVENT_DTYPE = _dtype("sb_event_t")     # t_us, step, mask, layer, pad


def decode_events(body: bytes) -> tuple[np.ndarray, int]:
    """An EVENT frame's body: sb_msg_event_t, then n x sb_event_t -> (the
    events as an EVENT_DTYPE array, events lost on the board so far)."""
    h = unpack("sb_msg_event_t", body)
    return _array(body, EVENT_DTYPE, h.n, ffi.sizeof("sb_msg_event_t"), "event frame"), int(h.overflow)


@dataclass
class CountWindow:
    """One COUNTS frame of the aggregated readout: fires per neuron of every
    layer over `steps` time steps from the board's step counter `step0`."""
    step0: int
    steps: int
    counts: list[np.ndarray]     # per layer: uint16[neurons]

    @classmethod
    def decode(cls, body: bytes) -> "CountWindow":
        """sb_msg_counts_t, then per layer u16 counts[neurons[layer]]."""
        h = unpack("sb_msg_counts_t", body)
        off = ffi.sizeof("sb_msg_counts_t")
        counts = []
        for layer in range(h.layers):
            counts.append(_array(body, "<u2", h.neurons[layer], off, f"counts frame, layer {layer}"))
            off += 2 * h.neurons[layer]
        return cls(int(h.step0), int(h.steps), counts)
