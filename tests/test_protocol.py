"""The wire protocol: C codec properties, the C server reached from Python
byte for byte, bad frames answered with the right error and the server
still serving."""
from __future__ import annotations

import re
import zlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from spikeboard import cards
from spikeboard._hal import ffi, lib
from spikeboard.backends.inproc import InprocBackend, ServerTransport
from spikeboard.backends.model import ModelBackend
from spikeboard.errors import ConfigError, DeviceError, LinkError, code_name, describe, meaning
from spikeboard.protocol import (RESET_REASONS, constants, decode_events, decode_frame, decode_infer, encode_frame,
                                 infer_request, pack, program_request, read_request, reset_reason_name, unpack)


def cobs(data: bytes) -> bytes:
    out = ffi.new("uint8_t[]", len(data) + len(data) // 254 + 2)
    n = lib.sb_cobs_encode(data, len(data), out)
    return bytes(ffi.buffer(out, n))


def uncobs(enc: bytes) -> bytes | None:
    out = ffi.new("uint8_t[]", max(1, len(enc)))
    n = lib.sb_cobs_decode(enc, len(enc), out)
    return None if n < 0 else bytes(ffi.buffer(out, n))


def py_cobs(data: bytes) -> bytes:
    """Reference COBS written from the definition, to check the C codec against."""
    out, block = bytearray(), bytearray()
    for b in data:
        if b == 0:
            out += bytes([len(block) + 1]) + block
            block = bytearray()
        else:
            block.append(b)
            if len(block) == 254:
                out += b"\xff" + block
                block = bytearray()
    out += bytes([len(block) + 1]) + block
    return bytes(out)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1100))
def test_cobs_matches_reference_and_round_trips(data):
    enc = cobs(data)
    assert 0 not in enc
    assert enc == py_cobs(data)
    assert uncobs(enc) == data


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_crc32_is_zlib_crc32(data):
    assert lib.sb_crc32(0, data, len(data)) == zlib.crc32(data)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 0xFFFF), st.binary(max_size=1024))
def test_frame_round_trip(cmd, flags, seq, payload):
    f = encode_frame(cmd, flags, seq, payload)
    assert f[-1] == 0 and 0 not in f[:-1]
    assert decode_frame(f[:-1]) == (cmd, flags, seq, payload)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=300), st.data())
def test_any_single_corruption_is_detected(payload, data):
    f = bytearray(encode_frame(lib.SB_CMD_READ_G, 0, 7, payload)[:-1])
    i = data.draw(st.integers(0, len(f) - 1))
    x = data.draw(st.integers(1, 255))
    f[i] ^= x
    if 0 in f:
        return  # a delimiter splits the frame: the receiver sees two broken frames
    with pytest.raises(LinkError):
        decode_frame(bytes(f))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=1200))
def test_decoder_survives_arbitrary_bytes(junk):
    try:
        decode_frame(junk)
    except LinkError:
        pass


# ------------------------------------------------------------------ C server from Python
def configured_pair(card="rram-nonlinear", geometry="32x32"):
    p = cards.compile_card(cards.load(card), geometry)
    m, r = ModelBackend(), InprocBackend()
    assert m.configure(p) == r.configure(p)
    return m, r


def test_every_message_type_round_trips_bit_exact(rng):
    m, r = configured_pair()
    assert r.info().configured and r.info().card_hash == m.info().card_hash
    x = (rng.random((40, 32)) < 0.25).astype(np.uint8)
    for i in range(6):
        a, b = m.train(x, i, target=4, sample_id=100 + i), r.train(x, i, target=4, sample_id=100 + i)
        assert (a.predicted, a.pulses, a.counts.tolist()) == (b.predicted, b.pulses, b.counts.tolist())
    sm, vm = m.infer(x, trace=True)
    sr, vr = r.infer(x, trace=True)
    assert np.array_equal(sm, sr) and np.array_equal(vm, vr)
    t = rng.integers(m.params.g_min, m.params.g_max, 300).astype(np.uint16)
    pm, pr = m.program(t, first=10, tolerance=800), r.program(t, first=10, tolerance=800)
    assert np.array_equal(pm.pulses, pr.pulses) and np.array_equal(pm.failed, pr.failed)
    assert np.array_equal(m.pulse(5, 40, -1, 3), r.pulse(5, 40, -1, 3))
    m.age(3600), r.age(3600)
    assert np.array_equal(m.read_conductance(), r.read_conductance())
    assert all(np.array_equal(a, b) for a, b in zip(m.state(), r.state()))
    assert m.counters() == r.counters()
    m.reset(chip=True), r.reset(chip=True)
    assert np.array_equal(m.read_conductance(), r.read_conductance())


@pytest.mark.parametrize("geometry,window", [("32x32", 0), ("32x32", 9), ("16x16x3", 4)])
def test_counts_readout_equals_aer_events_and_model(rng, geometry, window):
    """INFER with SB_INFER_COUNTS: the per-neuron counts of every layer equal
    the fires the AER event frames carry for the same inference on an
    identical board, and, for the last layer, the model backend's fires."""
    p = cards.compile_card(cards.load("rram-nonlinear"), geometry, differential=False, neuron={"threshold": 1.0})
    m, aer, cnt = ModelBackend(), InprocBackend(), InprocBackend()
    for b in (m, aer, cnt):
        b.configure(p)
    t = rng.integers(p.g_min, p.g_max, m.cells).astype(np.uint16)
    for b in (m, aer, cnt):
        b.program(t, tolerance=1500)
    x = (rng.random((70, p.rows)) < 0.3).astype(np.uint8)
    sm, vm = m.infer(x)
    sa, va = aer.infer(x, events=True)
    sc, vc = cnt.infer(x, counts=window)
    assert np.array_equal(sm, sa) and np.array_equal(sm, sc) and np.array_equal(vm, vc)
    assert not cnt.events and not aer.count_windows
    per_layer = [np.zeros(m.neurons(l), np.int64) for l in range(p.layers)]
    for _, _, layer, mask in aer.events:
        per_layer[layer] += [(mask >> j) & 1 for j in range(len(per_layer[layer]))]
    assert per_layer[-1].sum() > 10
    w = cnt.count_windows
    assert sum(c.steps for c in w) == 70 and len(w) == (1 if window == 0 else -(-70 // window))
    for l in range(p.layers):
        assert np.array_equal(sum(c.counts[l].astype(np.int64) for c in w), per_layer[l]), l
    assert np.array_equal(per_layer[-1], sm.sum(axis=0))
    assert m.counters() == aer.counters() == cnt.counters()


def test_counts_and_events_together_are_refused():
    _, r = configured_pair()
    body = pack("sb_msg_infer_t", steps=2, flags=lib.SB_INFER_EVENTS | lib.SB_INFER_COUNTS) + bytes(8)
    with pytest.raises(DeviceError) as e:
        r._req(lib.SB_CMD_INFER, body)
    assert e.value.code == lib.SB_EINVAL
    assert r.infer(np.zeros((3, 32), np.uint8))[0].shape == (3, r.neurons())   # still serving


def test_image_checkpoint_restores_exact_state(rng):
    _, r = configured_pair()
    x = (rng.random((30, 32)) < 0.25).astype(np.uint8)
    r.train(x, 2, target=4)
    img = r.read_image()
    g0, c0 = r.read_conductance(), r.counters()
    r.train(x, 3, target=4)
    assert not np.array_equal(g0, r.read_conductance())
    r.write_image(img)
    assert np.array_equal(g0, r.read_conductance())
    assert r.counters().pot == c0.pot


def raw(t: ServerTransport, frame: bytes) -> tuple[int, int, int, bytes]:
    t.write(frame)
    out = t.read(1 << 16)
    frames = [f for f in out.split(b"\x00") if f]
    assert len(frames) == 1, frames
    return decode_frame(frames[0])


@pytest.mark.parametrize("case", ["crc", "truncated", "oversize", "unknown", "range", "length", "unconfigured"])
def test_bad_frames_get_the_right_error_and_server_keeps_serving(case):
    t = ServerTransport()
    p = cards.compile_card(cards.load("spec"), "32x32")
    if case != "unconfigured":
        cmd, _, _, body = raw(t, encode_frame(lib.SB_CMD_CONFIGURE, 0, 1, cards.params_bytes(p)))
        assert cmd == lib.SB_CMD_CONFIGURE
    good = encode_frame(lib.SB_CMD_READ_G, 0, 50, pack("sb_msg_read_t", first=0, n=4))
    if case == "crc":
        f = bytearray(good)
        f[3] ^= 0x01 if f[3] != 1 else 0x02
        bad, code, seq = bytes(f), lib.SB_ECRC, 0xFFFF
    elif case == "truncated":
        bad, code, seq = good[:3] + b"\x00", lib.SB_EFRAME, 0xFFFF
    elif case == "oversize":
        bad, code, seq = b"\x01" * (lib.SB_MAX_FRAME + 10) + b"\x00", lib.SB_EOVERSIZE, 0xFFFF
    elif case == "unknown":
        bad, code, seq = encode_frame(0x33, 0, 9, b""), lib.SB_ECMD, 9
    elif case == "range":
        bad, code, seq = encode_frame(lib.SB_CMD_READ_G, 0, 10, pack("sb_msg_read_t", first=1000, n=100)), lib.SB_ERANGE, 10
    elif case == "length":
        bad, code, seq = encode_frame(lib.SB_CMD_PULSE, 0, 11, b"\x01\x02\x03"), lib.SB_ELEN, 11
    else:
        bad, code, seq = good, lib.SB_ECONFIG, 50
    cmd, flags, rseq, body = raw(t, bad)
    assert cmd == lib.SB_CMD_ERROR and rseq == seq
    assert unpack("sb_msg_error_t", body).code == code
    if case != "unconfigured":
        cmd, _, rseq, body = raw(t, encode_frame(lib.SB_CMD_READ_G, 0, 51, pack("sb_msg_read_t", first=0, n=4)))
        assert cmd == lib.SB_CMD_READ_G and rseq == 51 and len(body) == 8


def test_duplicate_sequence_number_is_answered_from_cache_not_rerun(rng):
    t = ServerTransport()
    p = cards.compile_card(cards.load("spec"), "32x32")
    raw(t, encode_frame(lib.SB_CMD_CONFIGURE, 0, 1, cards.params_bytes(p)))
    x = np.packbits((rng.random((20, 32)) < 0.3).astype(np.uint8), axis=1, bitorder="little").tobytes()
    req = encode_frame(lib.SB_CMD_TRAIN, 0, 77, pack("sb_msg_train_t", steps=20, label=1, rule=0, target=4,
                                                         max_pulses=1, sample_id=5) + x)
    first = raw(t, req)
    again = raw(t, req)
    assert first == again
    c = unpack("sb_counters_t", raw(t, encode_frame(lib.SB_CMD_COUNTERS, 0, 78, b"\x00"))[3])
    assert c.samples == 1
    assert t.server.dups == 1


def test_errors_surface_as_device_errors():
    _, r = configured_pair()
    with pytest.raises(DeviceError, match="SB_ERANGE"):
        r._req(lib.SB_CMD_READ_G, pack("sb_msg_read_t", first=1020, n=10))


def test_pulse_work_is_bounded_and_the_host_splits_it():
    """A PULSE over SB_MAX_PULSE_WORK cell-pulses (a board would sit in it past
    its watchdog) is refused with SB_EINVAL; the host splits such a request
    into parts and ends with the same conductances as the model in one call."""
    t = ServerTransport()
    p = cards.compile_card(cards.load("rram-nonlinear"), "32x32")
    raw(t, encode_frame(lib.SB_CMD_CONFIGURE, 0, 1, cards.params_bytes(p)))
    cells, count = 512, lib.SB_MAX_PULSE_WORK // 512 + 1
    cmd, _, _, body = raw(t, encode_frame(lib.SB_CMD_PULSE, 0, 2, pack("sb_msg_pulse_t", first=0, n=cells,
                                                                         count=count, polarity=1)))
    assert cmd == lib.SB_CMD_ERROR and unpack("sb_msg_error_t", body).code == lib.SB_EINVAL
    c = unpack("sb_counters_t", raw(t, encode_frame(lib.SB_CMD_COUNTERS, 0, 3, b"\x00"))[3])
    assert c.pot == 0                                   # refused before any pulse
    m, r = configured_pair("rram-nonlinear")
    for pol, n in ((1, 1024), (-1, 300), (1, 65535)):
        assert np.array_equal(m.pulse(0, 1024, pol, n), r.pulse(0, 1024, pol, n))
    assert m.counters() == r.counters()


# ---------------------------------------------------------------- TRAIN_BATCH
def _item(x: np.ndarray, label: int, sid: int, **kw) -> bytes:
    """One TRAIN_BATCH item: exactly a TRAIN body."""
    m = dict(steps=len(x), label=label, rule=lib.SB_RULE_SIGN, target=4, max_pulses=1, sample_id=sid)
    m.update(kw)
    return pack("sb_msg_train_t", **m) + np.packbits(x, axis=1, bitorder="little").tobytes()


def _batch(items: list[bytes]) -> bytes:
    return pack("sb_msg_batch_t", n=len(items)) + b"".join(items)


def test_train_batch_equals_single_trains_and_the_model(rng):
    """TRAIN_BATCH over the in-process server: the same results, conductances and
    counters as single TRAINs and as the model backend, in fewer requests."""
    p = cards.compile_card(cards.load("rram-nonlinear"), "32x32")
    x = (rng.random((30, 24, 32)) < 0.25).astype(np.uint8)
    y = rng.integers(0, 10, 30)
    got = []
    for mode in ("model", "single", "batch", "model-batch"):
        b = ModelBackend() if mode.startswith("model") else InprocBackend()
        b.configure(p)
        if mode in ("single", "model"):
            rs = [b.train(x[i], int(y[i]), target=4, sample_id=1000 + i) for i in range(30)]
        else:
            rs = b.train_batch(x, y, range(1000, 1030), target=4)
        got.append(([(r.sample_id, r.predicted, r.pulses, r.counts.tolist()) for r in rs],
                    b.read_conductance(), b.counters(), getattr(getattr(b, "link", None), "stats", None)))
    (r0, g0, c0, _), *rest = got
    assert c0.pot + c0.dep > 0 and c0.samples == 30
    for r, g, c, _ in rest:
        assert r == r0 and np.array_equal(g, g0) and c == c0
    single, batch = got[1][3], got[2][3]
    assert batch.requests < single.requests / 2, (batch.requests, single.requests)


def test_train_batch_chunk_fits_both_directions():
    _, r = configured_pair("spec")
    nn = r.neurons()
    r.link.clean_run = 100                       # a clean line: the whole payload
    k = r.train_chunk(32)
    assert k > 1
    req = ffi.sizeof("sb_msg_batch_t") + k * (ffi.sizeof("sb_msg_train_t") + 32 * 4)
    resp = ffi.sizeof("sb_msg_batch_resp_t") + k * (ffi.sizeof("sb_msg_train_item_t") + 2 * nn)
    assert req <= lib.SB_MAX_PAYLOAD and resp <= lib.SB_MAX_PAYLOAD
    assert ffi.sizeof("sb_msg_batch_t") + (k + 1) * (ffi.sizeof("sb_msg_train_t") + 32 * 4) > lib.SB_MAX_PAYLOAD \
        or k * 32 + 32 > lib.SB_MAX_STEPS


@pytest.mark.parametrize("case", ["answer", "zero", "label", "steps", "length", "levels"])
def test_train_batch_refused_before_any_sample_runs(rng, case):
    """A batch the board cannot take whole is refused with the reason and runs nothing:
    an answer that would not fit SB_MAX_PAYLOAD (detail: the bytes it needs), no items,
    a bad item (detail: its index), more steps than one TRAIN may have in all."""
    t = ServerTransport()
    p = cards.compile_card(cards.load("spec"), "16x16x3" if case == "steps" else "32x32")
    raw(t, encode_frame(lib.SB_CMD_CONFIGURE, 0, 1, cards.params_bytes(p)))
    nn = lib.sb_params_neurons(p, p.layers - 1)
    one = (rng.random((1, p.rows)) < 0.5).astype(np.uint8)
    per = ffi.sizeof("sb_msg_train_item_t") + 2 * nn
    fit = (lib.SB_MAX_PAYLOAD - ffi.sizeof("sb_msg_batch_resp_t")) // per
    if case == "answer":
        body, code, detail = _batch([_item(one, 1, k) for k in range(fit + 1)]), lib.SB_ELEN, 4 + (fit + 1) * per
        assert len(body) <= lib.SB_MAX_PAYLOAD and fit + 1 <= lib.SB_MAX_BATCH
    elif case == "zero":
        body, code, detail = pack("sb_msg_batch_t", n=0), lib.SB_EINVAL, 0
    elif case == "label":
        body, code, detail = _batch([_item(one, 1, 0), _item(one, 1, 1), _item(one, nn, 2)]), lib.SB_ERANGE, 2
    elif case == "steps":
        x = (rng.random((100, 16)) < 0.2).astype(np.uint8)      # 16 rows: 2 bytes a step
        body, code, detail = _batch([_item(x, 1, 0), _item(x, 2, 1), _item(x[:57], 3, 2)]), lib.SB_EINVAL, 2
    elif case == "length":
        body, code, detail = _batch([_item(one, 1, 0), _item(one, 1, 1)])[:-1], lib.SB_ELEN, 1
    else:
        lv = _item(one, 1, 1, flags=lib.SB_INFER_LEVELS)[:12] + bytes([p.pre_levels + 1]) * p.rows
        body, code, detail = _batch([_item(one, 1, 0), lv]), lib.SB_EINVAL, 1
    cmd, _, seq, resp = raw(t, encode_frame(lib.SB_CMD_TRAIN_BATCH, 0, 9, body))
    e = unpack("sb_msg_error_t", resp)
    assert cmd == lib.SB_CMD_ERROR and seq == 9 and (e.code, e.cmd, e.detail) == (code, lib.SB_CMD_TRAIN_BATCH, detail)
    c = unpack("sb_counters_t", raw(t, encode_frame(lib.SB_CMD_COUNTERS, 0, 10, b"\x00"))[3])
    assert c.samples == 0 and c.steps == 0 and c.pot + c.dep == 0
    ok = _batch([_item(one, 1, k) for k in range(fit)])
    cmd, _, _, resp = raw(t, encode_frame(lib.SB_CMD_TRAIN_BATCH, 0, 11, ok))   # the largest that fits runs
    assert cmd == lib.SB_CMD_TRAIN_BATCH and len(resp) == 4 + fit * per


def test_duplicate_train_batch_is_answered_from_cache_not_rerun(rng):
    t = ServerTransport()
    p = cards.compile_card(cards.load("spec"), "32x32")
    raw(t, encode_frame(lib.SB_CMD_CONFIGURE, 0, 1, cards.params_bytes(p)))
    x = (rng.random((5, 20, 32)) < 0.3).astype(np.uint8)
    req = encode_frame(lib.SB_CMD_TRAIN_BATCH, 0, 77, _batch([_item(x[k], k, 40 + k) for k in range(5)]))
    first = raw(t, req)
    again = raw(t, req)
    assert first == again and first[0] == lib.SB_CMD_TRAIN_BATCH
    h = unpack("sb_msg_batch_resp_t", first[3])
    assert h.n == 5
    ids = [unpack("sb_msg_train_item_t", first[3], 4 + k * (8 + 2 * h.neurons)).sample_id for k in range(5)]
    assert ids == [40, 41, 42, 43, 44]
    c = unpack("sb_counters_t", raw(t, encode_frame(lib.SB_CMD_COUNTERS, 0, 78, b"\x00"))[3])
    assert c.samples == 5
    assert t.server.dups == 1


def test_train_batch_over_a_noisy_link_is_bit_exact(rng):
    """Lost answers to a batch are resent from the board's cache: no sample runs twice."""
    p = cards.compile_card(cards.load("spec"), "32x32")
    x = (rng.random((40, 12, 32)) < 0.4).astype(np.uint8)     # short samples: several fit a 256-byte frame
    y = rng.integers(0, 10, 40)
    out = []
    for faults in (None, "corrupt=0.002,drop=0.001,seed=4"):
        b = InprocBackend(faults=faults, timeout=0.05, retries=8)
        b.configure(p)
        r0, t0 = b.link.stats.requests, b.link.stats.retries
        rs = b.train_batch(x, y, range(40))        # the chunk follows the line's loss estimate
        sent, resent = b.link.stats.requests - r0, b.link.stats.retries - t0
        out.append(([(r.predicted, r.pulses, r.counts.tolist()) for r in rs], b.read_image(), b.counters()))
        st = b.link.stats
    assert out[0] == out[1] and out[0][2].samples == 40
    assert resent > 0 and sent < 40, (sent, resent)          # batches, and some of them resent


def test_session_trains_in_chunks_bit_exact(tmp_path):
    """A training session over the in-process board sends its samples in
    TRAIN_BATCH chunks, checkpoints at the same sample counts, and ends
    bit-identical to the model backend's session (one sample per call)."""
    import json

    from spikeboard.session import Session, SessionConfig

    kw = dict(app="digits", seed=0, train_limit=40, test_limit=6, epochs=2, checkpoint_every=9)
    runs = {}
    for backend in ("model", "inproc"):
        s = Session.create(SessionConfig.of(backend=backend, **kw), tmp_path / backend, quiet=True)
        seen = []
        if backend == "inproc":
            orig = InprocBackend.train_batch

            def spy(self, samples, *a, **k):
                seen.append(len(samples))
                return orig(self, samples, *a, **k)
            InprocBackend.train_batch = spy
        try:
            runs[backend] = (s.run(), seen)
        finally:
            if backend == "inproc":
                InprocBackend.train_batch = orig
    a, b = tmp_path / "model", tmp_path / "inproc"
    for f in ("conductance.npy", "final.img", "counters.json", "predictions.npy"):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    journal = lambda d: [json.loads(l) for l in (d / "journal.jsonl").read_text().splitlines()]
    strip = lambda j: [{k: v for k, v in r.items() if k != "image"} for r in j]
    assert strip(journal(a)) == strip(journal(b))
    ck = [r["applied"] for r in journal(b) if r["type"] == "checkpoint"]
    assert ck == [0, 9, 18, 27, 36, 40, 45, 54, 63, 72, 80]
    seen = runs["inproc"][1]
    assert sum(seen) == 80 and max(seen) > 1


# ---------------------------------------------------------------- INFER_BATCH
def _iitem(x: np.ndarray, flags: int = lib.SB_INFER_RESET) -> bytes:
    """One INFER_BATCH item: exactly an INFER body."""
    return pack("sb_msg_infer_t", steps=len(x), flags=flags) + np.packbits(x, axis=1, bitorder="little").tobytes()


def _ibatch(items: list[bytes]) -> bytes:
    return pack("sb_msg_batch_t", n=len(items)) + b"".join(items)


def _firing(b, seed=5):
    """Random conductances that make the output layer fire."""
    rng = np.random.default_rng(seed)
    t = rng.integers(b.params.g_min, b.params.g_max, b.cells).astype(np.uint16)
    b.program(t, tolerance=1500)


def test_infer_batch_equals_single_infers_and_the_model(rng):
    """INFER_BATCH over the in-process server: the same fires, membranes and
    counters as single INFERs (reset before each) and as the model backend, in
    fewer requests."""
    p = cards.compile_card(cards.load("rram-nonlinear"), "32x32", differential=False, neuron={"threshold": 1.0})
    x = (rng.random((30, 24, 32)) < 0.25).astype(np.uint8)
    got = []
    for mode in ("model", "single", "batch", "model-batch"):
        b = ModelBackend() if mode.startswith("model") else InprocBackend()
        b.configure(p)
        _firing(b)
        r0 = b.link.stats.requests if hasattr(b, "link") else 0
        if mode in ("single", "model"):
            fs, vs = zip(*(b.infer(s) for s in x))
            f, v = np.stack(fs), np.stack(vs)
        else:
            f, v = b.infer_batch(x)
        got.append((f, v, b.counters(), b.link.stats.requests - r0 if hasattr(b, "link") else None))
    f0, v0, c0, _ = got[0]
    assert f0.sum() > 50 and c0.steps == 30 * 24
    for f, v, c, _ in got[1:]:
        assert f.dtype == f0.dtype and np.array_equal(f, f0) and np.array_equal(v, v0) and c == c0
    single, batch = got[1][3], got[2][3]
    assert batch < single / 2, (batch, single)


def test_infer_batch_chunk_fits_both_directions():
    _, r = configured_pair("spec")
    nn = r.neurons()
    r.link.clean_run = 100                       # a clean line: the whole payload
    k = r.infer_chunk(20)
    assert k > 1
    req = ffi.sizeof("sb_msg_batch_t") + k * (ffi.sizeof("sb_msg_infer_t") + 20 * 4)
    resp = ffi.sizeof("sb_msg_batch_resp_t") + k * (ffi.sizeof("sb_msg_infer_resp_t") + 20 * 4 + 4 * nn)
    assert req <= lib.SB_MAX_PAYLOAD and resp <= lib.SB_MAX_PAYLOAD
    assert ffi.sizeof("sb_msg_batch_resp_t") + (k + 1) * (8 + 20 * 4 + 4 * nn) > lib.SB_MAX_PAYLOAD
    assert r.infer_chunk(300) == 1               # longer than one request: INFER, split over requests


def test_infer_batch_with_long_samples_falls_back_to_infer(rng):
    m, r = configured_pair("spec")
    x = (rng.random((3, 300, 32)) < 0.3).astype(np.uint8)
    fm, vm = m.infer_batch(x)
    fr, vr = r.infer_batch(x)
    assert np.array_equal(fm, fr) and np.array_equal(vm, vr) and m.counters() == r.counters()


@pytest.mark.parametrize("case", ["answer", "zero", "over", "trace", "events", "counts", "steps", "length",
                                  "levels"])
def test_infer_batch_refused_before_any_sample_runs(rng, case):
    """A batch the board cannot take whole is refused with the reason and runs
    nothing: an answer that would not fit SB_MAX_PAYLOAD (detail: the bytes it
    needs), no items or too many, an item with trace/events/counts or malformed
    (detail: its index), more steps than one INFER may have in all."""
    t = ServerTransport()
    p = cards.compile_card(cards.load("spec"), "16x16x3" if case == "steps" else "32x32")
    raw(t, encode_frame(lib.SB_CMD_CONFIGURE, 0, 1, cards.params_bytes(p)))
    nn = lib.sb_params_neurons(p, p.layers - 1)
    one = (rng.random((1, p.rows)) < 0.5).astype(np.uint8)
    per = ffi.sizeof("sb_msg_infer_resp_t") + 4 + 4 * nn
    fit = (lib.SB_MAX_PAYLOAD - ffi.sizeof("sb_msg_batch_resp_t")) // per
    if case == "answer":
        body, code, detail = _ibatch([_iitem(one)] * (fit + 1)), lib.SB_ELEN, 4 + (fit + 1) * per
        assert len(body) <= lib.SB_MAX_PAYLOAD and fit + 1 <= lib.SB_MAX_BATCH
    elif case == "zero":
        body, code, detail = pack("sb_msg_batch_t", n=0), lib.SB_EINVAL, 0
    elif case == "over":
        body, code, detail = _ibatch([_iitem(one)] * (lib.SB_MAX_BATCH + 1)), lib.SB_EINVAL, lib.SB_MAX_BATCH + 1
    elif case in ("trace", "events", "counts"):
        f = {"trace": lib.SB_INFER_TRACE, "events": lib.SB_INFER_EVENTS, "counts": lib.SB_INFER_COUNTS}[case]
        body, code, detail = _ibatch([_iitem(one), _iitem(one, lib.SB_INFER_RESET | f)]), lib.SB_EINVAL, 1
    elif case == "steps":
        x = (rng.random((100, 16)) < 0.2).astype(np.uint8)      # 16 rows: 2 bytes a step
        body, code, detail = _ibatch([_iitem(x), _iitem(x), _iitem(x[:57])]), lib.SB_EINVAL, 2
    elif case == "length":
        body, code, detail = _ibatch([_iitem(one), _iitem(one)])[:-1], lib.SB_ELEN, 1
    else:
        lv = pack("sb_msg_infer_t", steps=1, flags=lib.SB_INFER_LEVELS) + bytes([p.pre_levels + 1]) * p.rows
        body, code, detail = _ibatch([_iitem(one), lv]), lib.SB_EINVAL, 1
    cmd, _, seq, resp = raw(t, encode_frame(lib.SB_CMD_INFER_BATCH, 0, 9, body))
    e = unpack("sb_msg_error_t", resp)
    assert cmd == lib.SB_CMD_ERROR and seq == 9 and (e.code, e.cmd, e.detail) == (code, lib.SB_CMD_INFER_BATCH, detail)
    c = unpack("sb_counters_t", raw(t, encode_frame(lib.SB_CMD_COUNTERS, 0, 10, b"\x00"))[3])
    assert c.steps == 0
    ok = _ibatch([_iitem(one)] * fit)
    cmd, _, _, resp = raw(t, encode_frame(lib.SB_CMD_INFER_BATCH, 0, 11, ok))   # the largest that fits runs
    assert cmd == lib.SB_CMD_INFER_BATCH and len(resp) == 4 + fit * per


def test_duplicate_infer_batch_is_answered_from_cache_not_rerun(rng):
    t = ServerTransport()
    p = cards.compile_card(cards.load("spec"), "32x32")
    raw(t, encode_frame(lib.SB_CMD_CONFIGURE, 0, 1, cards.params_bytes(p)))
    x = (rng.random((5, 20, 32)) < 0.3).astype(np.uint8)
    req = encode_frame(lib.SB_CMD_INFER_BATCH, 0, 77, _ibatch([_iitem(x[k]) for k in range(4)]))
    first = raw(t, req)
    again = raw(t, req)
    assert first == again and first[0] == lib.SB_CMD_INFER_BATCH
    h = unpack("sb_msg_batch_resp_t", first[3])
    assert h.n == 4
    per = 8 + 4 * 20 + 4 * h.neurons
    items = [unpack("sb_msg_infer_resp_t", first[3], 4 + k * per) for k in range(4)]
    assert [(i.steps, i.neurons) for i in items] == [(20, h.neurons)] * 4
    assert [i.step0 for i in items] == [items[0].step0 + 20 * k for k in range(4)]
    c = unpack("sb_counters_t", raw(t, encode_frame(lib.SB_CMD_COUNTERS, 0, 78, b"\x00"))[3])
    assert c.steps == 80
    assert t.server.dups == 1


def test_infer_batch_over_a_noisy_link_is_bit_exact(rng):
    """Lost answers to a batch are resent from the board's cache: no sample runs twice."""
    p = cards.compile_card(cards.load("spec"), "16x16x3")     # small answers: several fit a 256-byte frame
    x = (rng.random((40, 4, 16)) < 0.4).astype(np.uint8)
    out = []
    for faults in (None, "corrupt=0.002,drop=0.001,seed=4"):
        b = InprocBackend(faults=faults, timeout=0.05, retries=8)
        b.configure(p)
        _firing(b)
        r0, t0 = b.link.stats.requests, b.link.stats.retries
        f, v = b.infer_batch(x)
        sent, resent = b.link.stats.requests - r0, b.link.stats.retries - t0
        out.append((f, v, b.counters()))
    assert np.array_equal(out[0][0], out[1][0]) and np.array_equal(out[0][1], out[1][1]) and out[0][2] == out[1][2]
    assert resent > 0 and sent < 40, (sent, resent)


def test_session_evaluates_in_chunks_bit_exact(tmp_path):
    """A session's test set goes to the in-process board in INFER_BATCH chunks,
    with the same predictions and counters as the model backend's session."""
    from spikeboard.session import Session, SessionConfig

    kw = dict(app="digits", seed=0, train_limit=10, test_limit=30, epochs=1, checkpoint_every=5)
    seen = []
    orig = InprocBackend.infer_batch

    def spy(self, x):
        seen.append(len(x))
        return orig(self, x)
    for backend in ("model", "inproc"):
        s = Session.create(SessionConfig.of(backend=backend, **kw), tmp_path / backend, quiet=True)
        InprocBackend.infer_batch = spy
        try:
            s.run()
        finally:
            InprocBackend.infer_batch = orig
    a, b = tmp_path / "model", tmp_path / "inproc"
    for f in ("predictions.npy", "counters.json", "final.img"):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    assert sum(seen) == 30 and max(seen) > 1


# ---------------------------------------------------------------- one definition, in C
def _frames(t: ServerTransport, frame: bytes) -> list[tuple[int, int, int, bytes]]:
    t.write(frame)
    return [decode_frame(f) for f in t.read(1 << 20).split(b"\x00") if f]


def test_event_frame_header_round_trips_c_python_byte_exact(rng):
    """server.c fills sb_msg_event_t; protocol.decode_events reads it through
    cffi, and packing what it read gives the C bytes back. The fires the event
    frames carry are the fires of the INFER answer."""
    assert ffi.sizeof("sb_msg_event_t") == 8
    assert [(n, f.offset) for n, f in ffi.typeof("sb_msg_event_t").fields] == [("n", 0), ("reserved", 2),
                                                                                ("overflow", 4)]
    assert lib.SB_EVENTS_PER_FRAME == (lib.SB_MAX_PAYLOAD - 8) // ffi.sizeof("sb_event_t")
    t = ServerTransport()
    p = cards.compile_card(cards.load("rram-nonlinear"), "32x32", differential=False, neuron={"threshold": 1.0})
    raw(t, encode_frame(lib.SB_CMD_CONFIGURE, 0, 1, cards.params_bytes(p)))
    g = rng.integers(p.g_min, p.g_max, 1024).astype(np.uint16)
    for k in range(0, 1024, 256):
        raw(t, encode_frame(lib.SB_CMD_PROGRAM, 0, 2 + k, program_request(k, g[k:k + 256], 1500, 64)))
    x = (rng.random((200, 32)) < 0.3).astype(np.uint8)
    out = _frames(t, encode_frame(lib.SB_CMD_INFER, 0, 9, infer_request(x, False, lib.SB_INFER_RESET
                                                                        | lib.SB_INFER_EVENTS)))
    events = [(f, body) for cmd, f, _, body in out if cmd == lib.SB_CMD_EVENT]
    assert len(events) >= 2 and all(f == lib.SB_F_EVENT for f, _ in events)
    got = []
    for _, body in events:
        ev, overflow = decode_events(body)
        h = unpack("sb_msg_event_t", body)
        assert (h.n, h.reserved, h.overflow) == (len(ev), 0, overflow) and h.n <= lib.SB_EVENTS_PER_FRAME
        assert pack("sb_msg_event_t", n=len(ev), overflow=overflow) + ev.tobytes() == body
        assert b"".join(pack("sb_event_t", t_us=int(e["t_us"]), step=int(e["step"]), mask=int(e["mask"]),
                             layer=int(e["layer"])) for e in ev) == body[8:]
        got.append(ev)
    ev = np.concatenate(got)
    answer = decode_infer(out[-1][3])
    assert out[-1][0] == lib.SB_CMD_INFER and answer.steps == 200
    fired = {int(s): int(m) for s, m in zip(answer.step0 + np.arange(200), answer.masks) if m}
    assert {int(e["step"]): int(e["mask"]) for e in ev} == fired and len(ev) == len(fired) > 20
    body = pack("sb_msg_event_t", n=1, overflow=7) + pack("sb_event_t", t_us=5, step=6, mask=0x80000001, layer=2)
    ev, overflow = decode_events(body)
    assert overflow == 7 and [(int(e["t_us"]), int(e["step"]), int(e["mask"]), int(e["layer"])) for e in ev] \
        == [(5, 6, 0x80000001, 2)]
    with pytest.raises(LinkError):
        decode_events(body[:-1])


def test_reset_reason_names_come_from_c():
    assert RESET_REASONS == {lib.SB_RESET_REASON_POWER_ON: "power-on", lib.SB_RESET_REASON_WATCHDOG: "watchdog",
                             lib.SB_RESET_REASON_SOFTWARE: "software", lib.SB_RESET_REASON_PIN: "pin"}
    assert len(RESET_REASONS) == lib.SB_RESET_REASON_COUNT
    assert reset_reason_name(lib.SB_RESET_REASON_COUNT + 5) == f"reason {lib.SB_RESET_REASON_COUNT + 5}"
    b = InprocBackend()
    assert b.info().reset_reason_name == "power-on"
    b.restart_board(lib.SB_RESET_REASON_WATCHDOG)
    assert b.info().reset_reason == lib.SB_RESET_REASON_WATCHDOG and b.info().reset_reason_name == "watchdog"
    b.reboot()                              # RESET(board): the board comes back from a software reset
    assert b.info().reset_reason_name == "software"
    from spikeboard.faults import FaultSpec

    assert FaultSpec.parse("reason=watchdog").reset_reason == FaultSpec.parse("reason=1").reset_reason == 1


def test_error_strings_come_from_c():
    codes = {v: n for n in dir(lib) if n.startswith("SB_E") and (v := getattr(lib, n)) < 0}
    assert sorted(codes) == list(range(-lib.SB_ECOUNT + 1, 0)) and code_name(lib.SB_EVERIFY) == "SB_EVERIFY"
    for code, name in codes.items():
        text = ffi.string(lib.sb_strerror(code)).decode()
        assert text != "unknown error" and meaning(code) == text and describe(code) == f"{name} ({text})"
    assert len({meaning(c) for c in codes}) == len(codes)
    for bad in (1, 7, -lib.SB_ECOUNT, -1000, -(2 ** 31)):
        assert meaning(bad) == "unknown error"
    _, r = configured_pair()
    with pytest.raises(DeviceError, match=re.escape(f"SB_ERANGE ({meaning(lib.SB_ERANGE)})")):
        r._req(lib.SB_CMD_READ_G, read_request(1020, 10))


def _requests() -> dict[int, str]:
    return {c: n for c, n in constants("SB_CMD_", ("ERROR", "EVENT", "COUNTS")).items()}


def test_server_table_covers_every_command():
    """Every request command has its entry in server.c's table (and nothing else
    does); the dispatcher's shared checks answer for all of them: SB_ECONFIG
    before configure where the entry says so, SB_ELEN for a body of the wrong
    length, SB_ECMD (detail: the code) for a code without an entry."""
    requests = _requests()
    assert len(requests) == 14
    for code in range(256):
        c = lib.sb_server_cmd(code)
        assert (c != ffi.NULL) == (code in requests), hex(code)
        if c != ffi.NULL:
            assert c.cmd == code and c.handler != ffi.NULL
    t = ServerTransport()
    seq = 100
    for code, name in requests.items():
        c = lib.sb_server_cmd(code)
        body = bytes(c.len)
        cmd, _, _, resp = raw(t, encode_frame(code, 0, seq := seq + 1, body))
        if c.flags & lib.SB_SERVE_CONFIGURED:
            assert cmd == lib.SB_CMD_ERROR and unpack("sb_msg_error_t", resp).code == lib.SB_ECONFIG, name
    raw(t, encode_frame(lib.SB_CMD_CONFIGURE, 0, seq := seq + 1,
                        cards.params_bytes(cards.compile_card(cards.load("spec"), "32x32"))))
    for code, name in requests.items():
        c = lib.sb_server_cmd(code)
        wrong = [c.len + 1, c.len - 1] if c.flags & lib.SB_SERVE_EXACT else [c.len - 1]
        for n in wrong:
            if n < 0:
                continue
            cmd, _, _, resp = raw(t, encode_frame(code, 0, seq := seq + 1, bytes(n)))
            e = unpack("sb_msg_error_t", resp)
            assert cmd == lib.SB_CMD_ERROR and (e.code, e.cmd) == (lib.SB_ELEN, code), (name, n)
    for code in (0x00, 0x0F, 0x33, lib.SB_CMD_ERROR, lib.SB_CMD_EVENT, lib.SB_CMD_COUNTS):
        cmd, _, _, resp = raw(t, encode_frame(code, 0, seq := seq + 1, b""))
        e = unpack("sb_msg_error_t", resp)
        assert cmd == lib.SB_CMD_ERROR and (e.code, e.detail) == (lib.SB_ECMD, code)


def test_counters_and_rules_are_read_from_c():
    from dataclasses import fields

    from spikeboard.backends.base import COUNTER_FIELDS, RULES, Counters

    assert COUNTER_FIELDS == tuple(f for f, _ in ffi.typeof("sb_counters_t").fields)
    assert tuple(f.name for f in fields(Counters)) == COUNTER_FIELDS
    assert RULES == {"sign": lib.SB_RULE_SIGN, "stochastic": lib.SB_RULE_STOCHASTIC, "stdp": lib.SB_RULE_STDP,
                     "compensated": lib.SB_RULE_COMPENSATED, "dfa": lib.SB_RULE_DFA}
    assert len(RULES) == lib.SB_RULE_COUNT


def test_board_runs_one_array_only():
    p = cards.compile_card(cards.load("spec"), "32x32")
    b = InprocBackend()
    h = b.configure(p)
    assert b.configure(p, shape=None) == b.configure(p, shape=(32, 32)) == h
    with pytest.raises(ConfigError, match=r"one 32x32 array.*--backend model"):
        b.configure(p, shape=(64, 100))
    deep = cards.compile_card(cards.load("rram-nonlinear"), "16x16x3")
    with pytest.raises(ConfigError, match="model backend"):
        b.configure(deep, shape=(16, 16))
