"""The MicroPython host client (host/micropython/spikeboard_mp.py).

1. Known-answer vectors from the C codec (through cffi): the client, run under
   the MicroPython webassembly port in Node, encodes every request and decodes
   every response byte-identically to hal/src/proto.c. The same vectors run
   under CPython too.
2. The client under CPython drives the C command server (in process, through
   cffi) and the real firmware in QEMU through train + infer, and gets the same
   results as the `model` backend.

The webassembly port is installed with
    npm install --prefix tools/mpy @micropython/micropython-webassembly-pyscript
(or `npm ci --prefix tools/mpy` from the committed lock file)."""
from __future__ import annotations

import importlib.util
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spikeboard import cards
from spikeboard._hal import ffi, lib
from spikeboard.backends.inproc import ServerTransport
from spikeboard.backends.model import ModelBackend
from spikeboard.protocol import encode_frame, pack

ROOT = Path(__file__).resolve().parents[1]
MP_DIR = ROOT / "host" / "micropython"
CLIENT = MP_DIR / "spikeboard_mp.py"
MPY_MJS = ROOT / "tools" / "mpy" / "node_modules" / "@micropython" / "micropython-webassembly-pyscript" / "micropython.mjs"
MPY_INSTALL = "npm ci --prefix tools/mpy  (or: npm install --prefix tools/mpy @micropython/micropython-webassembly-pyscript)"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


sbmp = _load("spikeboard_mp", CLIENT)


def spec_block() -> bytes:
    """The spec card with paired (differential) columns: 16 output neurons."""
    return cards.params_bytes(cards.compile_card(cards.load("spec"), "32x32", differential=True))


# ============================================================ constants
def test_constants_and_struct_layouts_match_c():
    for name in ("PROTO_VERSION", "HDR_LEN", "CRC_LEN", "MAX_PAYLOAD", "MAX_RAW", "MAX_FRAME", "MAX_STEPS",
                 "MAX_NEURONS", "F_RESP", "F_EVENT", "INFER_RESET", "INFER_EVENTS", "INFER_LEVELS",
                 "INFER_TRACE", "INFER_COUNTS", "COUNTERS_CLEAR", "RESET_NEURONS", "RESET_CHIP", "RESET_BOARD",
                 "RULE_SIGN", "RULE_STOCHASTIC", "RULE_STDP", "RULE_COMPENSATED", "HELLO_VIRTUAL"):
        assert getattr(sbmp, name) == getattr(lib, "SB_" + name), name
    for name in [n for n in dir(lib) if n.startswith("SB_CMD_")]:
        assert getattr(sbmp, name[3:]) == getattr(lib, name), name
    for code, text in sbmp.ERRORS.items():
        if code:
            name, meaning = text.split(": ", 1)
            assert code == getattr(lib, "SB_" + name), text
            assert meaning == ffi.string(lib.sb_strerror(code)).decode(), text     # hal's one table
    import struct
    sizes = {"FMT_HELLO": "sb_msg_hello_t", "FMT_PROGRAM": "sb_msg_program_t", "FMT_PROGRAM_RESP": "sb_msg_program_resp_t",
             "FMT_READ": "sb_msg_read_t", "FMT_INFER": "sb_msg_infer_t", "FMT_INFER_RESP": "sb_msg_infer_resp_t",
             "FMT_TRAIN": "sb_msg_train_t", "FMT_PULSE": "sb_msg_pulse_t", "FMT_IMAGE": "sb_msg_image_t", "FMT_ERROR": "sb_msg_error_t",
             "FMT_EVENT": "sb_event_t", "FMT_EVENT_HDR": "sb_msg_event_t", "FMT_COUNTS": "sb_msg_counts_t", "FMT_COUNTERS": "sb_counters_t", "FMT_STATS": "sb_msg_stats_t"}
    for fmt, ctype in sizes.items():
        assert struct.calcsize(getattr(sbmp, fmt)) == ffi.sizeof(ctype), fmt
    assert sbmp.TRAIN_RESP_LEN == ffi.sizeof("sb_msg_train_resp_t")
    assert sbmp.EVENT_HDR_LEN == ffi.sizeof("sb_msg_event_t") and sbmp.EVENT_LEN == ffi.sizeof("sb_event_t")
    assert ffi.offsetof("sb_msg_event_t", "overflow") == 4
    assert sbmp.COUNTS_LEN == ffi.sizeof("sb_msg_counts_t")
    assert sbmp.PARAMS_LEN == ffi.sizeof("sb_params_t")
    for attr, field in (("_P_ROWS", "rows"), ("_P_COLS", "cols"), ("_P_LAYERS", "layers"),
                        ("_P_DIFF", "diff_mask"), ("_P_LEVELS", "pre_levels")):
        assert getattr(sbmp, attr) == ffi.offsetof("sb_params_t", field), field
    assert sbmp.COUNTER_FIELDS == tuple(f for f, _ in ffi.typeof("sb_counters_t").fields)
    assert sbmp.STATS_FIELDS == tuple(f for f, _ in ffi.typeof("sb_msg_stats_t").fields)


# ============================================================ vectors from the C codec
def c_frame(cmd: int, flags: int, seq: int, payload: bytes = b"") -> bytes:
    return encode_frame(cmd, flags, seq, payload)


def c_request(cmd: int, seq: int, payload: bytes = b"") -> str:
    return (b"\x00" + c_frame(cmd, 0, seq, payload)).hex()


def c_resp(cmd: int, seq: int, payload: bytes = b"") -> bytes:
    return c_frame(cmd, lib.SB_F_RESP, seq, payload)


def c_crc(data: bytes) -> int:
    return lib.sb_crc32(0, data, len(data))


def c_cobs(data: bytes) -> bytes:
    out = ffi.new("uint8_t[]", len(data) + len(data) // 254 + 2)
    n = lib.sb_cobs_encode(data, len(data), out)
    return bytes(ffi.buffer(out, n))


def pack_masks(masks, rows: int) -> bytes:
    per = (rows + 7) // 8
    return b"".join(int(m).to_bytes(per, "little") for m in masks)


def codec_payloads(rng: random.Random) -> list[bytes]:
    out = [b"", b"\x00", b"\x00\x00", b"\x01", bytes(range(1, 255)), bytes(range(1, 256)),
           bytes([7] * 253), bytes([7] * 254), bytes([7] * 255), bytes([7] * 508) + b"\x00" + bytes([9] * 300),
           bytes(1024), bytes([0xFF] * 1024)]
    for n in (3, 17, 200, 253, 254, 255, 256, 509, 777, 1023, 1024):
        out.append(bytes(rng.choice((0, 0, rng.randrange(256))) for _ in range(n)))
        out.append(bytes(rng.randrange(1, 256) for _ in range(n)))
    return out


def make_vectors(seed: int = 2024) -> dict:
    rng = random.Random(seed)
    vec: dict = {"crc": [], "cobs": [], "frames": [], "cases": []}
    for p in codec_payloads(rng):
        vec["crc"].append([p.hex(), c_crc(p)])
        vec["cobs"].append([p.hex(), c_cobs(p).hex()])
    for p in codec_payloads(rng)[::2]:
        cmd, flags, seq = rng.randrange(256), rng.randrange(256), rng.randrange(0x10000)
        if len(p) <= lib.SB_MAX_PAYLOAD:
            vec["frames"].append([cmd, flags, seq, p.hex(), c_frame(cmd, flags, seq, p).hex()])
    for seq in (0, 1, 0xFFFE, 0xFFFF, 0x1234):   # header bytes that encode to 0 and 0xff
        vec["frames"].append([0, 0, seq, "", c_frame(0, 0, seq, b"").hex()])

    cases = vec["cases"]

    def case(name, call, args, seq, replies, requests, result, geometry=None, kwargs=None, timeout_ms=200,
             retries=3, extra=None):
        cases.append({"name": name, "call": call, "args": args, "kwargs": kwargs or {}, "seq": seq,
                      "replies": [r.hex() for r in replies], "requests": requests, "result": result,
                      "geometry": geometry, "timeout_ms": timeout_ms, "retries": retries, "extra": extra or {}})

    # HELLO
    hello = pack("sb_msg_hello_t", proto=1, fw_major=0, fw_minor=1, fw_patch=0, rows=32, cols=32, layers=1,
                 configured=1, card_hash=0xF6A92098, max_payload=1024, reset_reason=1, flags=lib.SB_HELLO_VIRTUAL,
                 hal_id=0x1234ABCD, board=b"netduinoplus2")
    case("hello", "info", [], 0x0100, [c_resp(lib.SB_CMD_HELLO, 0x0100, hello)],
         [c_request(lib.SB_CMD_HELLO, 0x0100)],
         {"proto": 1, "firmware": "0.1.0", "rows": 32, "cols": 32, "layers": 1, "configured": True,
          "card_hash": 0xF6A92098, "max_payload": 1024, "reset_reason": 1, "virtual": True,
          "hal_id": 0x1234ABCD, "board": "netduinoplus2"})
    # CONFIGURE: the spec card's real block
    block = spec_block()
    case("configure", "configure", [block.hex()], 0x0101,
         [c_resp(lib.SB_CMD_CONFIGURE, 0x0101, (0xF6A92098).to_bytes(4, "little"))],
         [c_request(lib.SB_CMD_CONFIGURE, 0x0101, block)], 0xF6A92098,
         extra={"geometry_after": [32, 32, 1, 16, 1]})
    g32 = [32, 32, 1, 1, 1]      # rows, cols, layers, diff_mask, pre_levels: 16 output neurons
    nn = 16

    def infer_resp(seq, masks, v, step0=0):
        body = pack("sb_msg_infer_resp_t", steps=len(masks), neurons=len(v), layer=0, step0=step0)
        body += b"".join(int(m).to_bytes(4, "little") for m in masks)
        body += b"".join(int(x).to_bytes(4, "little", signed=True) for x in v)
        return c_resp(lib.SB_CMD_INFER, seq, body)

    def rand_masks(k, bits=32):
        return [rng.getrandbits(bits) | (1 << (bits - 1) if rng.random() < 0.3 else 0) for _ in range(k)]

    def rand_v(k):
        return [rng.randrange(-2**31, 2**31) for _ in range(k - 2)] + [-2**31, 2**31 - 1]

    # INFER: int row masks (bit 31 set on some steps), reset
    x = rand_masks(20)
    out_m, out_v = [rng.getrandbits(16) for _ in range(20)], rand_v(nn)
    case("infer_ints", "infer", [x], 0x0200, [infer_resp(0x0200, out_m, out_v)],
         [c_request(lib.SB_CMD_INFER, 0x0200, pack("sb_msg_infer_t", steps=20, flags=lib.SB_INFER_RESET) + pack_masks(x, 32))],
         [out_m, out_v], geometry=g32)
    # INFER: per-step bytes, no reset, with events
    xb = [bytes(rng.randrange(256) for _ in range(4)) for _ in range(7)]
    out_m, out_v = [rng.getrandbits(16) for _ in range(7)], rand_v(nn)
    case("infer_bytes_events", "infer", [[b.hex() for b in xb]], 0x0201, [infer_resp(0x0201, out_m, out_v, 99)],
         [c_request(lib.SB_CMD_INFER, 0x0201, pack("sb_msg_infer_t", steps=7, flags=lib.SB_INFER_EVENTS) + b"".join(xb))],
         [out_m, out_v], geometry=g32, kwargs={"reset": False, "events": True}, extra={"steps_as": "bytes"})
    # INFER: one flat bytes-like of 300 steps -> two requests (238 + 62 steps)
    x = rand_masks(300)
    flat = pack_masks(x, 32)
    m1, m2 = [rng.getrandbits(16) for _ in range(238)], [rng.getrandbits(16) for _ in range(62)]
    v2 = rand_v(nn)
    case("infer_flat_chunked", "infer", [flat.hex()], 0x0202,
         [infer_resp(0x0202, m1, [0] * nn), infer_resp(0x0203, m2, v2)],
         [c_request(lib.SB_CMD_INFER, 0x0202, pack("sb_msg_infer_t", steps=238, flags=lib.SB_INFER_RESET) + flat[:238 * 4]),
          c_request(lib.SB_CMD_INFER, 0x0203, pack("sb_msg_infer_t", steps=62, flags=0) + flat[238 * 4:])],
         [m1 + m2, v2], geometry=g32, extra={"steps_as": "flat"})
    # INFER with pulse-width levels: 12 rows, 3 levels, 4 neurons
    xl = [bytes(rng.randrange(4) for _ in range(12)) for _ in range(5)]
    out_m, out_v = [rng.getrandbits(4) for _ in range(5)], rand_v(4)
    case("infer_levels", "infer", [[b.hex() for b in xl]], 0x0204, [infer_resp(0x0204, out_m, out_v)],
         [c_request(lib.SB_CMD_INFER, 0x0204, pack("sb_msg_infer_t", steps=5, flags=lib.SB_INFER_RESET | lib.SB_INFER_LEVELS) + b"".join(xl))],
         [out_m, out_v], geometry=[12, 4, 1, 0, 3], extra={"steps_as": "bytes"})
    # INFER on 12 binary rows: 2 packed bytes per step
    x = [rng.getrandbits(12) for _ in range(9)]
    out_m, out_v = [rng.getrandbits(12) for _ in range(9)], rand_v(12)
    case("infer_12rows", "infer", [x], 0x0205, [infer_resp(0x0205, out_m, out_v)],
         [c_request(lib.SB_CMD_INFER, 0x0205, pack("sb_msg_infer_t", steps=9, flags=lib.SB_INFER_RESET) + pack_masks(x, 12))],
         [out_m, out_v], geometry=[12, 12, 1, 0, 1])

    # TRAIN
    def train_resp(seq, sid, pred, pulses, counts):
        r = ffi.new("sb_msg_train_resp_t *")
        r.sample_id, r.predicted, r.neurons, r.pulses = sid, pred, len(counts), pulses
        for j, c in enumerate(counts):
            r.counts[j] = c
        return c_resp(lib.SB_CMD_TRAIN, seq, bytes(ffi.buffer(r)))

    x = rand_masks(25)
    counts = [rng.randrange(65536) for _ in range(nn)]
    case("train", "train", [x, 5], 0x0300, [train_resp(0x0300, 0xDEADBEEF, 5, 513, counts)],
         [c_request(lib.SB_CMD_TRAIN, 0x0300, pack("sb_msg_train_t", steps=25, label=5, rule=lib.SB_RULE_STOCHASTIC,
                                                      target=300, max_pulses=3, flags=0, sample_id=0xDEADBEEF)
                    + pack_masks(x, 32))],
         [5, 513, counts + [0] * (32 - nn)], geometry=g32,
         kwargs={"rule": 1, "target": 300, "max_pulses": 3, "sample_id": 0xDEADBEEF})
    case("train_no_fire", "train", [x[:3], 0], 0x0301, [train_resp(0x0301, 7, 255, 0, [0] * nn)],
         [c_request(lib.SB_CMD_TRAIN, 0x0301, pack("sb_msg_train_t", steps=3, label=0, rule=0, target=8, max_pulses=1,
                                                      sample_id=7) + pack_masks(x[:3], 32))],
         [255, 0, [0] * 32], geometry=g32, kwargs={"sample_id": 7})
    # COUNTERS (+ server statistics)
    cnt = ffi.new("sb_counters_t *")
    vals = [rng.getrandbits(64) for _ in sbmp.COUNTER_FIELDS]
    for f, v in zip(sbmp.COUNTER_FIELDS, vals):
        setattr(cnt, f, v)
    svals = [rng.getrandbits(32) for _ in sbmp.STATS_FIELDS]
    stats = pack("sb_msg_stats_t", **dict(zip(sbmp.STATS_FIELDS, svals)))
    case("counters", "counters", [], 0x0400, [c_resp(lib.SB_CMD_COUNTERS, 0x0400, bytes(ffi.buffer(cnt)) + stats)],
         [c_request(lib.SB_CMD_COUNTERS, 0x0400, bytes([lib.SB_COUNTERS_CLEAR]))],
         [dict(zip(sbmp.COUNTER_FIELDS, vals)), dict(zip(sbmp.STATS_FIELDS, svals))], kwargs={"clear": True})
    # READ_G, PULSE, PROGRAM, RESET, AGE, STATE
    g = [rng.randrange(65536) for _ in range(5)]
    u16 = lambda xs: b"".join(int(v).to_bytes(2, "little") for v in xs)  # noqa: E731
    case("read_g", "read_g", [1000, 5], 0x0500, [c_resp(lib.SB_CMD_READ_G, 0x0500, u16(g))],
         [c_request(lib.SB_CMD_READ_G, 0x0500, pack("sb_msg_read_t", first=1000, n=5))], g)
    case("pulse", "pulse", [3, 5, -1, 700], 0x0501, [c_resp(lib.SB_CMD_PULSE, 0x0501, u16(g))],
         [c_request(lib.SB_CMD_PULSE, 0x0501, pack("sb_msg_pulse_t", first=3, n=5, count=700, polarity=-1))], g)
    targets = [rng.randrange(65536) for _ in range(11)]
    used = [rng.randrange(256) for _ in range(11)]
    failed = [1, 8, 10]
    bitmap = bytearray(2)
    for j in failed:
        bitmap[j // 8] |= 1 << (j % 8)
    case("program", "program", [40, targets], 0x0502,
         [c_resp(lib.SB_CMD_PROGRAM, 0x0502, pack("sb_msg_program_resp_t", n=11, failed=3, pulses=70000) + bytes(used) + bytes(bitmap))],
         [c_request(lib.SB_CMD_PROGRAM, 0x0502, pack("sb_msg_program_t", first=40, n=11, tolerance=9, max_pulses=33) + u16(targets))],
         [70000, used, failed], kwargs={"tolerance": 9, "max_pulses": 33})
    case("reset", "reset", [], 0x0503, [c_resp(lib.SB_CMD_RESET, 0x0503)],
         [c_request(lib.SB_CMD_RESET, 0x0503, bytes([lib.SB_RESET_NEURONS | lib.SB_RESET_CHIP]))], None,
         kwargs={"neurons": True, "chip": True})
    case("age", "age", [3 * 10**9], 0x0504, [c_resp(lib.SB_CMD_AGE, 0x0504)],
         [c_request(lib.SB_CMD_AGE, 0x0504, (3 * 10**9).to_bytes(4, "little"))], None)
    sv, rf = rand_v(6), [rng.randrange(256) for _ in range(6)]
    case("state", "state", [2], 0x0505,
         [c_resp(lib.SB_CMD_STATE, 0x0505, bytes([6]) + b"".join(int(x).to_bytes(4, "little", signed=True) for x in sv) + bytes(rf))],
         [c_request(lib.SB_CMD_STATE, 0x0505, bytes([2]))], [sv, rf])

    # IMAGE: size query, read, write
    img = bytes(rng.randrange(256) for _ in range(1000))
    case("image_size", "image_size", [], 0x0506, [c_resp(lib.SB_CMD_IMAGE, 0x0506, (123456).to_bytes(4, "little"))],
         [c_request(lib.SB_CMD_IMAGE, 0x0506, pack("sb_msg_image_t", offset=0, n=0, write=0))], 123456)
    case("read_image", "read_image", [70000, 1000], 0x0507,
         [c_resp(lib.SB_CMD_IMAGE, 0x0507, (123456).to_bytes(4, "little") + img)],
         [c_request(lib.SB_CMD_IMAGE, 0x0507, pack("sb_msg_image_t", offset=70000, n=1000, write=0))], img.hex())
    case("write_image", "write_image", [9, img[:600].hex()], 0x0508,
         [c_resp(lib.SB_CMD_IMAGE, 0x0508, (123456).to_bytes(4, "little"))],
         [c_request(lib.SB_CMD_IMAGE, 0x0508, pack("sb_msg_image_t", offset=9, n=600, write=1) + img[:600])], None,
         extra={"hex_args": [1]})

    # ERROR frames -> DeviceError with code, cmd and detail
    err = pack("sb_msg_error_t", code=lib.SB_ELEN, cmd=lib.SB_CMD_INFER, detail=123456)
    x = rand_masks(4)
    case("error_frame", "infer", [x], 0x0600, [c_frame(lib.SB_CMD_ERROR, lib.SB_F_RESP, 0x0600, err)],
         [c_request(lib.SB_CMD_INFER, 0x0600, pack("sb_msg_infer_t", steps=4, flags=lib.SB_INFER_RESET) + pack_masks(x, 32))],
         {"error": "DeviceError", "code": lib.SB_ELEN, "cmd": lib.SB_CMD_INFER, "detail": 123456}, geometry=g32)
    # EVENT frames before the answer: skipped and handed to on_event
    evs = [(rng.getrandbits(32), rng.getrandbits(32), rng.getrandbits(32), rng.randrange(3)) for _ in range(5)]
    body = (3).to_bytes(2, "little") + b"\0\0" + (17).to_bytes(4, "little")
    body += b"".join(pack("sb_event_t", t_us=t, step=s, mask=m, layer=la) for t, s, m, la in evs[:3])
    body2 = (2).to_bytes(2, "little") + b"\0\0" + (18).to_bytes(4, "little")
    body2 += b"".join(pack("sb_event_t", t_us=t, step=s, mask=m, layer=la) for t, s, m, la in evs[3:])
    x = rand_masks(3)
    out_m, out_v = [1, 2, 3], rand_v(nn)
    case("events", "infer", [x], 0x0700,
         [c_frame(lib.SB_CMD_EVENT, lib.SB_F_EVENT, 0x0003, body) + c_frame(lib.SB_CMD_EVENT, lib.SB_F_EVENT, 0x0004, body2)
          + infer_resp(0x0700, out_m, out_v)],
         [c_request(lib.SB_CMD_INFER, 0x0700, pack("sb_msg_infer_t", steps=3, flags=lib.SB_INFER_RESET | lib.SB_INFER_EVENTS) + pack_masks(x, 32))],
         [out_m, out_v], geometry=g32, kwargs={"events": True},
         extra={"events": [[t, s, la, m] for t, s, m, la in evs], "event_overflow": 18})
    # COUNTS frames (aggregated readout) before the answer: handed to on_counts
    cw = [(40, 3, [[rng.randrange(4) for _ in range(nn)]]), (43, 2, [[rng.randrange(3) for _ in range(nn)]])]
    cframes = b""
    for k, (s0, st, per_layer) in enumerate(cw):
        cb = pack("sb_msg_counts_t", step0=s0, steps=st, layers=1, neurons=[nn, 0, 0, 0])
        cb += b"".join(int(c).to_bytes(2, "little") for c in per_layer[0])
        cframes += c_frame(lib.SB_CMD_COUNTS, lib.SB_F_EVENT, 0x0005 + k, cb)
    x = rand_masks(5)
    out_m, out_v = [rng.getrandbits(16) for _ in range(5)], rand_v(nn)
    case("counts", "infer", [x], 0x0701, [cframes + infer_resp(0x0701, out_m, out_v, 40)],
         [c_request(lib.SB_CMD_INFER, 0x0701, pack("sb_msg_infer_t", steps=5, flags=lib.SB_INFER_RESET | lib.SB_INFER_COUNTS,
                                                   window=3) + pack_masks(x, 32))],
         [out_m, out_v], geometry=g32, kwargs={"counts": 3},
         extra={"counts": [[s0, st, pl] for s0, st, pl in cw]})
    # a stale answer (old seq) and a corrupted frame before the real one
    bad = bytearray(c_resp(lib.SB_CMD_HELLO, 0x0800, hello))
    bad[5] ^= 0x40
    case("stale_and_bad", "info", [], 0x0800,
         [c_resp(lib.SB_CMD_HELLO, 0x07FF, hello) + b"\x00\x00" + bytes(bad) + b"\x13\x37" * 3 + b"\x00"
          + c_resp(lib.SB_CMD_HELLO, 0x0800, hello)],
         [c_request(lib.SB_CMD_HELLO, 0x0800)], cases[0]["result"], extra={"stats": {"stale": 1, "bad_frames": 2}})
    # no answer -> resent with the same sequence number
    case("retry_same_seq", "read_g", [0, 2], 0x0900, [b"", c_resp(lib.SB_CMD_READ_G, 0x0900, u16([5, 6]))],
         [c_request(lib.SB_CMD_READ_G, 0x0900, pack("sb_msg_read_t", first=0, n=2))] * 2, [5, 6],
         timeout_ms=40, extra={"stats": {"retries": 1, "timeouts": 1}})
    # the board saw a corrupted frame (error with seq 0xffff) -> resend at once
    case("resync", "read_g", [0, 1], 0x0901,
         [c_frame(lib.SB_CMD_ERROR, lib.SB_F_RESP, 0xFFFF, pack("sb_msg_error_t", code=lib.SB_ECRC)),
          c_resp(lib.SB_CMD_READ_G, 0x0901, u16([9]))],
         [c_request(lib.SB_CMD_READ_G, 0x0901, pack("sb_msg_read_t", first=0, n=1))] * 2, [9],
         extra={"stats": {"retries": 1, "resyncs": 1, "timeouts": 0}})
    # never an answer -> LinkError after retries + 1 tries
    case("no_answer", "read_g", [0, 1], 0x0902, [b"", b""],
         [c_request(lib.SB_CMD_READ_G, 0x0902, pack("sb_msg_read_t", first=0, n=1))] * 2,
         {"error": "LinkError"}, timeout_ms=20, retries=1)
    # sequence numbers wrap past 0xfffe to 0 (0xffff is reserved)
    case("seq_wraps", "read_g", [0, 1], 0xFFFF, [c_resp(lib.SB_CMD_READ_G, 0, u16([4]))],
         [c_request(lib.SB_CMD_READ_G, 0, pack("sb_msg_read_t", first=0, n=1))], [4])
    return vec


# The driver runs on MicroPython and on CPython: it replays each case against
# fake ports (UART-like with any()/readinto(), and plain read()) and prints
# what the client wrote and returned, one JSON line per case.
DRIVER = r'''
import json
import binascii

def unhex(s):
    return binascii.unhexlify(s)

def hexs(b):
    return binascii.hexlify(b).decode()

class ReadPort:
    def __init__(self, replies):
        self.replies = list(replies)
        self.buf = b""
        self.written = []
    def write(self, b):
        self.written.append(hexs(bytes(b)))
        if self.replies:
            self.buf += self.replies.pop(0)
        return len(b)
    def read(self, n):
        d = self.buf[:n]
        self.buf = self.buf[n:]
        return d

class UartPort(ReadPort):
    def any(self):
        return len(self.buf)
    def readinto(self, mv):
        n = len(mv)
        if n > len(self.buf):
            n = len(self.buf)
        if n == 0:
            return None
        mv[:n] = self.buf[:n]
        self.buf = self.buf[n:]
        return n

def norm(x):
    if isinstance(x, (list, tuple)):
        return [norm(e) for e in x]
    if isinstance(x, dict):
        return dict((k, norm(v)) for k, v in x.items())
    if isinstance(x, (bytes, bytearray)):
        return hexs(x)
    return x

def run_codec(sb, V, tag):
    out = {"crc": [], "crc_py": [], "cobs": [], "uncobs": [], "frames": [], "decoded": []}
    for p, _ in V["crc"]:
        b = unhex(p)
        out["crc"].append(sb.crc32(b))
        out["crc_py"].append(sb.crc32_py(b))
    for p, _ in V["cobs"]:
        b = unhex(p)
        dst = bytearray(len(b) + len(b) // 254 + 2)
        n = sb.cobs_encode(b, len(b), dst)
        out["cobs"].append(hexs(dst[:n]))
        back = bytearray(n)
        m = sb.cobs_decode(dst, n, back)
        out["uncobs"].append(hexs(back[:m]))
    for cmd, flags, seq, p, enc in V["frames"]:
        out["frames"].append(hexs(sb.encode_frame(cmd, flags, seq, unhex(p))))
        e = unhex(enc)
        c, f, s, pl = sb.decode_frame(e[:-1])
        out["decoded"].append([c, f, s, hexs(pl)])
    print("CODEC " + tag + " " + json.dumps(out))

def run_cases(sb, V, Port, tag):
    for c in V["cases"]:
        port = Port([unhex(r) for r in c["replies"]])
        got_events = []
        got_counts = []
        b = sb.Board(port, timeout_ms=c["timeout_ms"], retries=c["retries"],
                     on_event=lambda t, s, l, m: got_events.append([t, s, l, m]), seq=(c["seq"] - 1) & 0xFFFF,
                     on_counts=lambda s0, st, cn: got_counts.append([s0, st, cn]))
        if c["geometry"]:
            b.set_geometry(*c["geometry"])
        args = list(c["args"])
        kw = dict(c["kwargs"])
        call = c["call"]
        how = c["extra"].get("steps_as")
        for i in c["extra"].get("hex_args", []):
            args[i] = unhex(args[i])
        if call == "configure":
            args[0] = unhex(args[0])
        elif call == "infer" and how == "flat":
            args[0] = unhex(args[0])
        elif call == "infer" and how == "bytes":
            args[0] = [unhex(s) for s in args[0]]
        try:
            res = getattr(b, call)(*args, **kw)
            if call == "counters":
                res = [res, b.board_stats]
        except sb.DeviceError as e:
            res = {"error": "DeviceError", "code": e.code, "cmd": e.cmd, "detail": e.detail}
        except sb.LinkError as e:
            res = {"error": "LinkError"}
        rec = {"name": c["name"], "written": port.written, "result": norm(res), "stats": b.stats,
               "events": got_events, "event_overflow": b.event_overflow, "counts": got_counts,
               "geometry_after": [b.rows, b.cols, b.layers, b.neurons, b.pre_levels]}
        print("CASE " + tag + " " + json.dumps(rec))

def main(sb, V):
    import sys
    print("IMPL " + sys.implementation.name)
    run_codec(sb, V, "default")
    saved = sb.crc32
    sb.crc32 = sb.crc32_py          # the table-less path, as on a port without binascii.crc32
    run_codec(sb, V, "crc_py")
    run_cases(sb, V, UartPort, "uart")
    sb.crc32 = saved
    run_cases(sb, V, ReadPort, "read")
    print("DONE")
'''


def check_output(text: str, vec: dict) -> None:
    lines = [ln for ln in text.splitlines() if ln.startswith(("CODEC ", "CASE ", "DONE"))]
    assert lines and lines[-1] == "DONE", f"driver did not finish; output:\n{text[-3000:]}"
    codec = {}
    cases: dict[str, dict] = {}
    for ln in lines[:-1]:
        kind, tag, body = ln.split(" ", 2)
        if kind == "CODEC":
            codec[tag] = json.loads(body)
        else:
            rec = json.loads(body)
            cases.setdefault(tag, {})[rec["name"]] = rec
    assert set(codec) == {"default", "crc_py"} and set(cases) == {"uart", "read"}
    for tag, out in codec.items():
        assert out["crc"] == [c for _, c in vec["crc"]], tag
        assert out["crc_py"] == [c for _, c in vec["crc"]], tag
        assert out["cobs"] == [e for _, e in vec["cobs"]], tag
        assert out["uncobs"] == [p for p, _ in vec["cobs"]], tag
        assert out["frames"] == [f[4] for f in vec["frames"]], tag
        assert out["decoded"] == [[f[0], f[1], f[2], f[3]] for f in vec["frames"]], tag
    for tag, got in cases.items():
        assert list(got) == [c["name"] for c in vec["cases"]], tag
        for c in vec["cases"]:
            rec = got[c["name"]]
            where = f"{tag}/{c['name']}"
            assert rec["written"] == c["requests"], where
            assert rec["result"] == c["result"], where
            for k, v in c["extra"].get("stats", {}).items():
                assert rec["stats"][k] == v, (where, k, rec["stats"])
            if "events" in c["extra"]:
                assert rec["events"] == c["extra"]["events"], where
                assert rec["event_overflow"] == c["extra"]["event_overflow"], where
            if "counts" in c["extra"]:
                assert rec["counts"] == c["extra"]["counts"], where
            if "geometry_after" in c["extra"]:
                assert rec["geometry_after"] == c["extra"]["geometry_after"], where


def driver_script(vec: dict) -> str:
    return DRIVER + "\nV = json.loads(" + repr(json.dumps(vec)) + ")\n"


def test_vectors_under_cpython(capsys):
    vec = make_vectors()
    ns: dict = {}
    exec(compile(driver_script(vec), "driver", "exec"), ns)
    ns["main"](sbmp, ns["V"])
    check_output(capsys.readouterr().out, vec)


# Node entry point: loads the webassembly port as a library, puts the client in
# its in-memory file system so the driver imports it as a module (as on a
# board), and exits non-zero on an uncaught Python exception (the package's own
# CLI exits 0 even then).
RUNNER = r"""
import fs from "fs";
import { pathToFileURL } from "url";
const [mjs, driver, ...modules] = process.argv.slice(2);
const { loadMicroPython } = await import(pathToFileURL(mjs).href);
const mp = await loadMicroPython({
    heapsize: 32 * 1024 * 1024,
    stdout: (line) => process.stdout.write(line + "\n"),
    stderr: (line) => process.stderr.write(line + "\n"),
});
for (const m of modules) mp.FS.writeFile("/" + m.split("/").pop(), fs.readFileSync(m, "utf8"));
try {
    mp.runPython(fs.readFileSync(driver, "utf8"));
} catch (e) {
    process.stderr.write("PYTHON ERROR " + (e.type || e.name) + ": " + e.message + "\n");
    process.exit(3);
}
"""


def run_micropython(tmp_path: Path, script: str, timeout: float = 300) -> subprocess.CompletedProcess:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node not found (apt-get install nodejs); then " + MPY_INSTALL)
    if not MPY_MJS.is_file():
        pytest.skip(f"MicroPython webassembly port missing ({MPY_MJS.relative_to(ROOT)}); install it with: {MPY_INSTALL}")
    runner = _write(tmp_path / "run_mpy.mjs", RUNNER)
    drv = _write(tmp_path / "driver.py", script)
    mods = [str(CLIENT), str(MP_DIR / "train_from_file.py")]
    return subprocess.run([node, str(runner), str(MPY_MJS), str(drv), *mods], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, cwd=tmp_path)


def test_vectors_under_micropython_webassembly(tmp_path):
    vec = make_vectors()
    proc = run_micropython(tmp_path, "import spikeboard_mp as sb\n"
                           + driver_script(vec) + "\nmain(sb, V)\n")
    out = proc.stdout
    if "DONE" not in out:   # the webassembly port reports a Python exception on stderr
        pytest.fail(f"MicroPython run failed (exit {proc.returncode}):\n{out[-2000:]}\n{proc.stderr[-2000:]}")
    assert "IMPL micropython" in out
    check_output(out, vec)


def test_example_script_parses_under_micropython(tmp_path):
    """train_from_file.py imports on MicroPython and its file format round-trips there."""
    script = (
        "from train_from_file import write_samples, demo_samples, SampleFile\n"
        "write_samples('/s.sbs', 32, 4, 4, demo_samples(6, steps=4, seed=5))\n"
        "f = SampleFile('/s.sbs')\n"
        "out = []\n"
        "while True:\n"
        "    lab = f.next()\n"
        "    if lab < 0: break\n"
        "    out.append([lab, bytes(f.spikes).hex()])\n"
        "import json\nprint('SAMPLES ' + json.dumps(out))\n"
    )
    proc = run_micropython(tmp_path, script, timeout=120)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("SAMPLES ")]
    assert line, f"MicroPython run failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    tff = _load("train_from_file", MP_DIR / "train_from_file.py")
    want = [[lab, pack_masks(x, 32).hex()] for lab, x in tff.demo_samples(6, steps=4, seed=5)]
    assert json.loads(line[0][8:]) == want


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ============================================================ against a board
def dataset(n_train: int, n_test: int, steps: int):
    tff = _load("train_from_file", MP_DIR / "train_from_file.py")
    data = tff.demo_samples(n_train + n_test, rows=32, steps=steps, classes=4, seed=7)
    return data[:n_train], data[n_train:]


def masks_to_bits(masks, nn):
    return np.array([[(m >> j) & 1 for j in range(nn)] for m in masks], dtype=np.uint8)


def bits_of(spikes_ints, rows=32):
    return np.array([[(m >> r) & 1 for r in range(rows)] for m in spikes_ints], dtype=np.uint8)


def drive_and_compare(port, n_train: int, n_test: int, steps: int, hint: str = "") -> dict:
    """Train + infer on the board through the client, the same on the model; assert equal."""
    block = spec_block()
    params = cards.compile_card(cards.load("spec"), "32x32", differential=True)
    model = ModelBackend()
    model_hash = model.configure(params)
    board = sbmp.Board(port, timeout_ms=5000, retries=3)
    info = board.info()
    assert info["proto"] == sbmp.PROTO_VERSION
    assert board.configure(block) == model_hash
    assert board.neurons == model.neurons() == 16
    train, test = dataset(n_train, n_test, steps)
    for i, (label, x) in enumerate(train):
        pred, pulses, counts = board.train(x, label, sbmp.RULE_SIGN, 8, 1, i)
        r = model.train(bits_of(x), label, rule="sign", target=8, max_pulses=1, sample_id=i)
        assert (pred, pulses, list(counts[:16])) == (r.predicted, r.pulses, r.counts.tolist()), f"train sample {i}{hint}"
    preds_b, preds_m = [], []
    for label, x in test:
        masks, v = board.infer(x)
        o, mv = model.infer(bits_of(x))
        assert np.array_equal(masks_to_bits(masks, 16), o), hint
        assert list(v) == mv.tolist(), hint
        preds_b.append(sbmp.predict(masks, 16))
        counts = o.sum(axis=0)
        preds_m.append(int(np.argmax(counts)) if counts.max() > 0 else 255)
    assert preds_b == preds_m, hint
    assert board.counters() == model.counters().as_dict(), hint
    return {"preds": preds_b, "labels": [lab for lab, _ in test], "stats": board.stats, "board": board}


def test_client_drives_c_server_like_model_backend():
    port = ServerTransport()
    res = drive_and_compare(port, n_train=60, n_test=20, steps=16)
    # training worked: the comparison is not between two silent chips
    assert sum(p == lab for p, lab in zip(res["preds"], res["labels"])) >= 10   # chance: 5 of 20
    assert res["stats"]["retries"] == 0
    # a lost answer: the retry carries the same seq, the server answers from its cache
    board = res["board"]
    before = board.counters()["samples"]
    real_read = port.read
    dropped = []

    def lossy_read(n):
        d = real_read(n)
        if not dropped and d:
            dropped.append(d + real_read(10**6))   # lose the whole first answer
            return b""
        return d

    port.read = lossy_read
    label, x = dataset(1, 0, 16)[0][0]
    board.timeout_ms = 50
    board.train(x, label, sbmp.RULE_SIGN, 8, 1, 999)
    port.read = real_read
    assert dropped and board.stats["retries"] == 1
    assert board.counters()["samples"] == before + 1      # applied once, not twice
    assert board.board_stats["dups"] == 1


def test_train_from_file_example(tmp_path):
    tff = _load("train_from_file", MP_DIR / "train_from_file.py")
    path = tmp_path / "samples.sbs"
    assert tff.write_samples(str(path), 32, 16, 4, tff.demo_samples(40, seed=3)) == 40
    assert path.stat().st_size == 16 + 40 * (1 + 16 * 4)
    board = sbmp.Board(ServerTransport(), timeout_ms=1000)
    board.configure(spec_block())
    lines = []
    train_acc, acc = tff.run(board, str(path), epochs=2, log=lines.append)
    assert len(lines) == 3 and lines[-1].startswith("inference accuracy")
    assert acc >= 0.75, lines


@pytest.mark.emulator
def test_client_drives_emulated_firmware_like_model_backend():
    serial = pytest.importorskip("serial")
    from spikeboard.emulator import Emulator, EmulatorError, find_firmware
    try:
        elf = find_firmware()
    except EmulatorError as e:
        pytest.skip(str(e))
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm not found")
    newer = sorted(str(p.relative_to(ROOT)) for p in [*(ROOT / "hal" / "src").glob("*.c"), *(ROOT / "hal" / "include").rglob("*.h")]
                   if p.stat().st_mtime > elf.stat().st_mtime)
    hint = (f"\n(the firmware ELF is older than {', '.join(newer[:4])}: a stale build runs different chip code than "
            f"the model; rebuild it with `.venv/bin/pio run -e netduinoplus2`)" if newer else "")
    with Emulator(elf) as emu:
        port = serial.serial_for_url(emu.url, timeout=0.05)
        try:
            # short: the emulated UART takes ~12 KB/s host->board (this run is ~5 KB, about 2 s)
            res = drive_and_compare(port, n_train=24, n_test=8, steps=16, hint=hint)
        finally:
            port.close()
    assert res["stats"]["retries"] == 0 and res["stats"]["bad_frames"] == 0
