"""Python face of the wire protocol. Every struct, constant and the frame
codec come from hal/ through cffi, so the host cannot drift from the firmware."""
from __future__ import annotations

from ._hal import ffi, lib
from .errors import DeviceError, LinkError, describe

CMD_NAMES = {getattr(lib, n): n[len("SB_CMD_"):].lower() for n in dir(lib) if n.startswith("SB_CMD_")}


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


def train_item_len(steps: int, rows: int, levels: bool) -> int:
    """Request bytes of one TRAIN body (sb_msg_train_t and its input spikes):
    a TRAIN_BATCH item is exactly one."""
    per = rows if levels else (rows + 7) // 8
    return ffi.sizeof("sb_msg_train_t") + steps * per


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
    per = rows if levels else (rows + 7) // 8
    return ffi.sizeof("sb_msg_infer_t") + steps * per


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
