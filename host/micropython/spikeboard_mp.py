# spikeboard_mp: a single-file client for the spikeboard wire protocol that runs
# unchanged on MicroPython (a Pico, an ESP32 next to the chip board) and on
# CPython (a PC with pyserial or a socket).
#
# Wire format (hal/include/sb/proto.h is the one definition; this file mirrors it
# and tests/test_micropython.py holds it byte-identical to the C codec):
#   frame   = COBS( header | payload | crc32 ) 0x00
#   header  = cmd:u8 flags:u8 seq:u16le
#   crc32   = CRC-32/ISO-HDLC (zlib's) over header and payload, little-endian
# The board echoes the request's sequence number with SB_F_RESP set, answers a
# repeated number from its cache (a retried TRAIN never runs twice), answers a
# failed request with an ERROR frame and sends unsolicited EVENT frames.
#
# No cffi, no numpy, no zlib: `struct`, bytearrays and memoryviews only. All
# frame buffers are allocated once per Board; the per-sample path (infer/train)
# writes into them in place.
#
#   import spikeboard_mp as sb
#   b = sb.Board(machine.UART(1, 115200, timeout=50))     # or a pyserial port
#   print(b.info())
#   b.configure(open("card.bin", "rb").read())            # 380-byte sb_params_t
#   masks, v = b.infer([0x0000ffff] * 20)                  # one row bitmask per step
#   pred, pulses, counts = b.train(x, label=3, target=8, max_pulses=1, sample_id=7)

import struct

try:
    import time
    _ticks_ms = time.ticks_ms
    _ticks_diff = time.ticks_diff
    _ticks_add = time.ticks_add
    _sleep_ms = time.sleep_ms
except AttributeError:  # CPython
    import time

    def _ticks_ms():
        return int(time.monotonic() * 1000)

    def _ticks_diff(a, b):
        return a - b

    def _ticks_add(a, b):
        return a + b

    def _sleep_ms(ms):
        time.sleep(ms / 1000)

try:
    from binascii import crc32 as _bcrc32
except ImportError:  # a MicroPython build without binascii.crc32
    _bcrc32 = None

__version__ = "0.1.0"

# ---- constants (hal/include/sb/*.h; the test compares each with the C value) ----
PROTO_VERSION = 1
HDR_LEN = 4
CRC_LEN = 4
MAX_PAYLOAD = 1024
MAX_RAW = HDR_LEN + MAX_PAYLOAD + CRC_LEN
MAX_FRAME = MAX_RAW + MAX_RAW // 254 + 2
MAX_STEPS = 256
MAX_NEURONS = 32
PARAMS_LEN = 380          # sizeof(sb_params_t)

CMD_HELLO = 0x01
CMD_CONFIGURE = 0x02
CMD_PROGRAM = 0x03
CMD_READ_G = 0x04
CMD_INFER = 0x05
CMD_TRAIN = 0x06
CMD_PULSE = 0x07
CMD_COUNTERS = 0x08
CMD_RESET = 0x09
CMD_AGE = 0x0A
CMD_STATE = 0x0B
CMD_IMAGE = 0x0C
CMD_TRAIN_BATCH = 0x0D      # several TRAIN bodies in one request (not used by this client)
CMD_INFER_BATCH = 0x0E      # several INFER bodies in one request (not used by this client)
CMD_ERROR = 0x7F
CMD_EVENT = 0x40
CMD_COUNTS = 0x41

F_RESP = 0x01
F_EVENT = 0x02

HELLO_VIRTUAL = 0x01      # sb_msg_hello_t.flags: virtual chip, synapse state lost on reset

INFER_RESET = 0x01
INFER_EVENTS = 0x02
INFER_LEVELS = 0x04
INFER_TRACE = 0x08
INFER_COUNTS = 0x10

COUNTERS_CLEAR = 0x01
RESET_NEURONS = 0x01
RESET_CHIP = 0x02
RESET_BOARD = 0x04

RULE_SIGN = 0
RULE_STOCHASTIC = 1
RULE_STDP = 2
RULE_COMPENSATED = 3

# byte offsets of the geometry fields inside sb_params_t
_P_ROWS = 368
_P_COLS = 369
_P_LAYERS = 370
_P_DIFF = 371
_P_LEVELS = 376

# wire structs (little-endian, packed)
FMT_HELLO = "<8BIHBBI16s"        # sb_msg_hello_t, 36
FMT_PROGRAM = "<HHHBB"           # sb_msg_program_t, 8
FMT_PROGRAM_RESP = "<HHI"        # sb_msg_program_resp_t, 8
FMT_READ = "<HH"                 # sb_msg_read_t, 4
FMT_INFER = "<HBB"               # sb_msg_infer_t, 4
FMT_INFER_RESP = "<HBBI"         # sb_msg_infer_resp_t, 8
FMT_TRAIN = "<HBBHBBI"           # sb_msg_train_t, 12
FMT_TRAIN_RESP = "<IBBH"         # sb_msg_train_resp_t head, then u16 counts[MAX_NEURONS]
TRAIN_RESP_LEN = 8 + 2 * MAX_NEURONS
FMT_PULSE = "<HHHbB"             # sb_msg_pulse_t, 8
FMT_IMAGE = "<IHBB"              # sb_msg_image_t, 8
FMT_ERROR = "<hBBI"              # sb_msg_error_t, 8
FMT_EVENT = "<IIIB3x"            # sb_event_t, 16
EVENT_LEN = 16
FMT_EVENT_HDR = "<HHI"           # sb_msg_event_t: n, reserved, overflow (since boot), 8
EVENT_HDR_LEN = 8
FMT_COUNTS = "<IHBB4B"           # sb_msg_counts_t, 12, then u16 counts per neuron of each layer
COUNTS_LEN = 12
COUNTER_FIELDS = ("fires", "updates", "reads", "pot", "dep", "pre", "post", "time_ps", "steps", "samples",
                  "measured_aj")
FMT_COUNTERS = "<11Q"            # sb_counters_t, 88
COUNTERS_LEN = 88
STATS_FIELDS = ("frames_ok", "frames_bad", "dups", "event_overflow", "step")
FMT_STATS = "<5I"                # sb_msg_stats_t, 20

ERRORS = {    # hal/src/errors.c's table (sb_strerror), checked by tests/test_micropython.py
    0: "ok", -1: "EINVAL: argument out of its range",
    -2: "ERANGE: index (row, column, layer, cell) out of the array",
    -3: "ECONFIG: parameter block invalid or chip not configured", -4: "ECRC: frame CRC mismatch",
    -5: "EFRAME: malformed frame (COBS, truncated, bad header)",
    -6: "EOVERSIZE: frame longer than the largest payload", -7: "ECMD: unknown or unsupported command",
    -8: "ELEN: payload length wrong for the command", -9: "EOVERFLOW: event ring overflowed",
    -10: "EVERIFY: write-verify failed on some cells", -11: "ESTATE: command not allowed in this state",
    -12: "EPROTO: protocol version mismatch",
}
CMD_NAMES = {
    CMD_HELLO: "hello", CMD_CONFIGURE: "configure", CMD_PROGRAM: "program", CMD_READ_G: "read_g",
    CMD_INFER: "infer", CMD_TRAIN: "train", CMD_PULSE: "pulse", CMD_COUNTERS: "counters",
    CMD_RESET: "reset", CMD_AGE: "age", CMD_STATE: "state", CMD_IMAGE: "image", CMD_ERROR: "error", CMD_EVENT: "event",
    CMD_COUNTS: "counts",
}


# ---- exceptions: the same tree as the CPython package ----
class SpikeboardError(Exception):
    pass


class LinkError(SpikeboardError):
    """No (valid) answer: timeout, link lost, malformed answer."""


class DeviceError(SpikeboardError):
    """The board answered with an ERROR frame."""

    def __init__(self, msg, code=0, cmd=0, detail=0):
        super().__init__(msg)
        self.code = code
        self.cmd = cmd
        self.detail = detail


class ConfigError(SpikeboardError):
    """A request the client refuses before sending (bad argument, not configured)."""


# ---- CRC-32 (zlib's) ----
# Nibble table split in 16-bit halves: the fallback never makes a big int, so it
# allocates nothing even on ports whose small ints are 31 bits wide.
_CRC_LO = (0x0000, 0x1064, 0x20c8, 0x30ac, 0x4190, 0x51f4, 0x6158, 0x713c,
           0x8320, 0x9344, 0xa3e8, 0xb38c, 0xc2b0, 0xd2d4, 0xe278, 0xf21c)
_CRC_HI = (0x0000, 0x1db7, 0x3b6e, 0x26d9, 0x76dc, 0x6b6b, 0x4db2, 0x5005,
           0xedb8, 0xf00f, 0xd6d6, 0xcb61, 0x9b64, 0x86d3, 0xa00a, 0xbdbd)


def crc32_py(buf, crc=0):
    """CRC-32/ISO-HDLC of buf, table-less apart from 64 bytes; continues `crc`."""
    lo = (crc & 0xFFFF) ^ 0xFFFF
    hi = ((crc >> 16) & 0xFFFF) ^ 0xFFFF
    tl = _CRC_LO
    th = _CRC_HI
    for b in buf:
        lo ^= b
        i = lo & 15
        lo = ((lo >> 4) | ((hi & 15) << 12)) ^ tl[i]
        hi = (hi >> 4) ^ th[i]
        i = lo & 15
        lo = ((lo >> 4) | ((hi & 15) << 12)) ^ tl[i]
        hi = (hi >> 4) ^ th[i]
    return ((hi ^ 0xFFFF) << 16) | (lo ^ 0xFFFF)


if _bcrc32 is not None:
    def crc32(buf, crc=0):
        return _bcrc32(buf, crc) & 0xFFFFFFFF
else:
    crc32 = crc32_py


# ---- COBS ----
def cobs_encode(src, n, dst, at=0):
    """COBS-encode src[0:n] into dst[at:]; returns the encoded length (no delimiter).
    dst needs n + n // 254 + 1 bytes of room."""
    code_at = at
    out = at + 1
    code = 1
    for i in range(n):
        b = src[i]
        if b == 0:
            dst[code_at] = code
            code_at = out
            out += 1
            code = 1
        else:
            dst[out] = b
            out += 1
            code += 1
            if code == 0xFF:
                dst[code_at] = code
                code_at = out
                out += 1
                code = 1
    dst[code_at] = code
    return out - at


def cobs_decode(src, n, dst):
    """Decode src[0:n] into dst (may be src itself); returns the decoded length or -1."""
    i = 0
    out = 0
    while i < n:
        code = src[i]
        i += 1
        if code == 0 or i + code - 1 > n:
            return -1
        for _ in range(code - 1):
            b = src[i]
            if b == 0:
                return -1
            dst[out] = b
            out += 1
            i += 1
        if code != 0xFF and i < n:
            dst[out] = 0
            out += 1
    return out


def encode_frame(cmd, flags, seq, payload=b""):
    """One complete wire frame (COBS + trailing 0x00) as bytes. Convenience for
    tests and tools; Board encodes into its own buffers instead."""
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise ConfigError("payload of %d bytes, at most %d" % (n, MAX_PAYLOAD))
    raw = bytearray(HDR_LEN + n + CRC_LEN)
    raw[0] = cmd
    raw[1] = flags
    raw[2] = seq & 0xFF
    raw[3] = (seq >> 8) & 0xFF
    raw[HDR_LEN:HDR_LEN + n] = payload
    struct.pack_into("<I", raw, HDR_LEN + n, crc32(memoryview(raw)[:HDR_LEN + n]))
    out = bytearray(len(raw) + len(raw) // 254 + 2)
    k = cobs_encode(raw, len(raw), out)
    out[k] = 0
    return bytes(out[:k + 1])


def decode_frame(enc):
    """COBS bytes of one frame (without the delimiter) -> (cmd, flags, seq, payload).
    Raises LinkError naming what was wrong."""
    buf = bytearray(len(enc))
    n = cobs_decode(enc, len(enc), buf)
    if n < 0:
        raise LinkError("bad frame: COBS")
    if n > MAX_RAW:
        raise LinkError("bad frame: oversize")
    if n < HDR_LEN + CRC_LEN:
        raise LinkError("bad frame: short")
    body = n - CRC_LEN
    if crc32(memoryview(buf)[:body]) != struct.unpack_from("<I", buf, body)[0]:
        raise LinkError("bad frame: CRC")
    return buf[0], buf[1], buf[2] | (buf[3] << 8), bytes(buf[HDR_LEN:body])


def predict(masks, neurons, steps=None):
    """Neuron with most fires over the per-step masks (lowest index wins ties),
    255 if none fired: the board's own rule for TRAIN's `predicted`."""
    best = 0
    pred = 255
    if steps is None:
        steps = len(masks)
    for j in range(neurons):
        c = 0
        for t in range(steps):
            if (masks[t] >> j) & 1:
                c += 1
        if c > best:
            best = c
            pred = j
    return pred


def describe(code):
    return ERRORS.get(code, "error %d" % code)


def _u16(b, o):
    return b[o] | (b[o + 1] << 8)


def _u32(b, o):
    return b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)


def _i32(b, o):
    v = b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | ((b[o + 3] & 0x7F) << 24)
    if b[o + 3] & 0x80:
        v -= 0x80000000
    return v


class SocketPort:
    """read(n)/write(b) over a CPython socket (MicroPython sockets already have both)."""

    def __init__(self, sock, timeout=0.05):
        self.sock = sock
        sock.settimeout(timeout)

    def read(self, n):
        try:
            return self.sock.recv(n)
        except OSError:  # socket.timeout is an OSError
            return b""

    def write(self, b):
        self.sock.sendall(b)
        return len(b)

    def close(self):
        self.sock.close()


_CHUNK = 64


class Board:
    """A spikeboard over any port with read(n)/write(b) (and, when it has them,
    readinto() and any()/in_waiting for allocation-free, non-blocking reads).

    Requests carry sequence numbers; a request that gets no valid answer within
    `timeout_ms` is resent with the same number (the board answers a duplicate
    from its cache) up to `retries` times, then LinkError. An ERROR frame raises
    DeviceError. EVENT frames that arrive meanwhile go to `on_event(t_us, step,
    layer, mask)` when given, else are counted (`events`). COUNTS frames (the
    aggregated readout, infer(counts=window)) go to `on_counts(step0, steps,
    counts)`, counts a list per layer of per-neuron fire counts, else are
    counted (`count_frames`)."""

    def __init__(self, port, timeout_ms=2000, retries=6, on_event=None, seq=None, on_counts=None):
        self.port = port
        self.timeout_ms = timeout_ms
        self.retries = retries
        self.on_event = on_event
        self.on_counts = on_counts
        self.count_frames = 0         # COUNTS frames seen
        self.events = 0               # event records seen
        self.event_overflow = 0       # the board's count of events it could not send
        self.stats = {"requests": 0, "retries": 0, "timeouts": 0, "bad_frames": 0, "stale": 0, "resyncs": 0}
        if seq is None:
            try:
                import os
                r = os.urandom(2)
                seq = r[0] | (r[1] << 8)
            except Exception:
                seq = _ticks_ms()
        self._seq = seq & 0xFFFF
        # buffers, allocated once
        self._raw = bytearray(MAX_RAW)              # request: header | payload | crc
        self._rawmv = memoryview(self._raw)
        self._tx = bytearray(MAX_FRAME + 1)         # leading 0x00 + encoded frame + 0x00
        self._txmv = memoryview(self._tx)
        self._rx = bytearray(MAX_FRAME)             # encoded bytes of the frame being received
        self._rxmv = memoryview(self._rx)
        self._rxlen = 0
        self._rxover = False
        self._chunk = bytearray(_CHUNK)
        cm = memoryview(self._chunk)
        self._views = [cm[:k] for k in range(_CHUNK + 1)]
        self._cpos = 0
        self._cend = 0
        self._readinto = getattr(port, "readinto", None)
        any_ = getattr(port, "any", None)
        if any_ is None and hasattr(port, "in_waiting"):
            any_ = self._in_waiting
        self._any = any_
        self._copy_tx = False
        self.counts = [0] * MAX_NEURONS             # fires per neuron of the last TRAIN
        # geometry, known after configure() or info()
        self.rows = 0
        self.cols = 0
        self.layers = 0
        self.neurons = 0
        self.pre_levels = 1

    # ---- plumbing ---------------------------------------------------------
    def _write(self, frame):
        if self._copy_tx:
            self.port.write(bytes(frame))
            return
        try:
            self.port.write(frame)     # a memoryview of the frame buffer: no copy
        except TypeError:              # a port that only takes bytes
            self._copy_tx = True
            self.port.write(bytes(frame))

    def _in_waiting(self):
        return self.port.in_waiting

    def _next_seq(self):
        s = (self._seq + 1) & 0xFFFF
        if s == 0xFFFF:   # reserved for answers to frames whose header was unreadable
            s = 0
        self._seq = s
        return s

    def _fill(self):
        """Read what the port has (at least try one byte) into the chunk buffer."""
        n = 0
        if self._any is not None:
            n = self._any() or 0
        if n <= 0:
            n = 1
        elif n > _CHUNK:
            n = _CHUNK
        if self._readinto is not None:
            got = self._readinto(self._views[n])
            if not got:
                got = 0
        else:
            data = self.port.read(n)
            got = len(data) if data else 0
            if got:
                self._chunk[:got] = data
        self._cpos = 0
        self._cend = got
        return got

    def _poll(self, deadline):
        """Collect bytes up to the next delimiter; returns the decoded length of
        a frame now in self._rx (header | payload, CRC checked), or -1 on timeout."""
        rx = self._rx
        while True:
            while self._cpos < self._cend:
                b = self._chunk[self._cpos]
                self._cpos += 1
                if b == 0:
                    if self._rxover:
                        self._rxover = False
                        self._rxlen = 0
                        self.stats["bad_frames"] += 1
                        continue
                    n = self._rxlen
                    if n == 0:
                        continue   # repeated delimiters
                    self._rxlen = 0
                    n = cobs_decode(rx, n, rx)   # in place: the output never overtakes the input
                    if n < HDR_LEN + CRC_LEN or n > MAX_RAW:
                        self.stats["bad_frames"] += 1
                        continue
                    body = n - CRC_LEN
                    if crc32(self._rxmv[:body]) != _u32(rx, body):
                        self.stats["bad_frames"] += 1
                        continue
                    return body
                if self._rxover:
                    continue
                if self._rxlen >= MAX_FRAME:
                    self._rxover = True
                    continue
                rx[self._rxlen] = b
                self._rxlen += 1
            if _ticks_diff(deadline, _ticks_ms()) <= 0:
                return -1
            if not self._fill():
                _sleep_ms(1)

    def _event(self, n):
        """An EVENT frame's body is in self._rx[4:4+n]."""
        rx = self._rx
        if n < EVENT_HDR_LEN:
            return
        cnt = _u16(rx, HDR_LEN)
        self.event_overflow = _u32(rx, HDR_LEN + 4)
        o = HDR_LEN + EVENT_HDR_LEN
        for _ in range(cnt):
            if o + EVENT_LEN > HDR_LEN + n:
                break
            self.events += 1
            if self.on_event is not None:
                self.on_event(_u32(rx, o), _u32(rx, o + 4), rx[o + 12], _u32(rx, o + 8))
            o += EVENT_LEN

    def _counts(self, n):
        """A COUNTS frame's body is in self._rx[4:4+n]."""
        rx = self._rx
        if n < COUNTS_LEN:
            return
        self.count_frames += 1
        if self.on_counts is None:
            return
        step0 = _u32(rx, 4)
        steps = _u16(rx, 8)
        layers = rx[10]
        o = HDR_LEN + COUNTS_LEN
        out = []
        for la in range(layers if layers <= 4 else 4):
            nn = rx[12 + la]
            if o + 2 * nn > HDR_LEN + n:
                break
            out.append([_u16(rx, o + 2 * j) for j in range(nn)])
            o += 2 * nn
        self.on_counts(step0, steps, out)

    def request(self, cmd, n, timeout_ms=None):
        """Send the request whose payload the caller wrote to self._raw[4:4+n];
        returns the response payload length (the payload is self._rx[4:4+len],
        valid until the next request)."""
        raw = self._raw
        seq = self._next_seq()
        raw[0] = cmd
        raw[1] = 0
        raw[2] = seq & 0xFF
        raw[3] = seq >> 8
        crc = crc32(self._rawmv[:HDR_LEN + n])
        raw[HDR_LEN + n] = crc & 0xFF
        raw[HDR_LEN + n + 1] = (crc >> 8) & 0xFF
        raw[HDR_LEN + n + 2] = (crc >> 16) & 0xFF
        raw[HDR_LEN + n + 3] = (crc >> 24) & 0xFF
        tx = self._tx
        tx[0] = 0   # a leading delimiter ends any partial frame the board holds
        k = 1 + cobs_encode(raw, HDR_LEN + n + CRC_LEN, tx, 1)
        tx[k] = 0
        frame = self._txmv[:k + 1]
        if timeout_ms is None:
            timeout_ms = self.timeout_ms
        st = self.stats
        st["requests"] += 1
        rx = self._rx
        for attempt in range(self.retries + 1):
            if attempt:
                st["retries"] += 1
            self._write(frame)
            deadline = _ticks_add(_ticks_ms(), timeout_ms)
            while True:
                m = self._poll(deadline)
                if m < 0:
                    st["timeouts"] += 1
                    break
                rcmd = rx[0]
                flags = rx[1]
                rseq = rx[2] | (rx[3] << 8)
                plen = m - HDR_LEN
                if flags & F_EVENT:
                    if rcmd == CMD_COUNTS:
                        self._counts(plen)
                    else:
                        self._event(plen)
                    continue
                if rcmd == CMD_ERROR and rseq == 0xFFFF:
                    st["resyncs"] += 1   # the board saw a corrupted frame: ours, most likely
                    break
                if rseq != seq:
                    st["stale"] += 1
                    continue
                if rcmd == CMD_ERROR:
                    code = 0
                    ecmd = cmd
                    detail = 0
                    if plen >= 8:
                        code = rx[4] | (rx[5] << 8)
                        if code >= 0x8000:
                            code -= 0x10000
                        ecmd = rx[6]
                        detail = _u32(rx, 8)
                    raise DeviceError("board refused %s: %s%s" % (
                        CMD_NAMES.get(cmd, hex(cmd)), describe(code),
                        (", detail %d" % detail) if detail else ""), code, ecmd, detail)
                if rcmd != cmd:
                    st["stale"] += 1
                    continue
                return plen
        raise LinkError("no answer to %s after %d tries (%d timeouts, %d bad frames)" % (
            CMD_NAMES.get(cmd, hex(cmd)), self.retries + 1, st["timeouts"], st["bad_frames"]))

    def payload(self, n):
        """The last response's payload as bytes (a copy)."""
        return bytes(self._rxmv[HDR_LEN:HDR_LEN + n])

    # ---- commands ------------------------------------------------------------
    def info(self):
        n = self.request(CMD_HELLO, 0)
        if n < 36:
            raise LinkError("hello: %d bytes, want 36" % n)
        h = struct.unpack_from(FMT_HELLO, self._rx, HDR_LEN)
        name = h[13]
        z = name.find(b"\x00")
        if z >= 0:
            name = name[:z]
        d = {"proto": h[0], "firmware": "%d.%d.%d" % (h[1], h[2], h[3]), "rows": h[4], "cols": h[5],
             "layers": h[6], "configured": bool(h[7]), "card_hash": h[8], "max_payload": h[9],
             "reset_reason": h[10], "virtual": bool(h[11] & HELLO_VIRTUAL), "hal_id": h[12],
             "board": name.decode()}
        if h[0] != PROTO_VERSION:
            raise LinkError("board speaks protocol %d, client %d" % (h[0], PROTO_VERSION))
        return d

    def configure(self, block, timeout_ms=None):
        """Send a compiled parameter block (sb_params_t, 380 bytes); returns the card hash."""
        if len(block) != PARAMS_LEN:
            raise ConfigError("parameter block of %d bytes, want %d" % (len(block), PARAMS_LEN))
        self._raw[HDR_LEN:HDR_LEN + PARAMS_LEN] = block
        if timeout_ms is None:
            timeout_ms = max(self.timeout_ms, 5000)
        n = self.request(CMD_CONFIGURE, PARAMS_LEN, timeout_ms)
        if n < 4:
            raise LinkError("configure: %d bytes, want 4" % n)
        self.set_geometry(block[_P_ROWS], block[_P_COLS], block[_P_LAYERS], block[_P_DIFF], block[_P_LEVELS])
        return _u32(self._rx, HDR_LEN)

    def set_geometry(self, rows, cols, layers, diff_mask=0, pre_levels=1):
        """What infer/train need to pack spikes: set by configure(); call it yourself
        when the board was configured by someone else."""
        self.rows = rows
        self.cols = cols
        self.layers = layers
        self.neurons = cols // 2 if (diff_mask >> (layers - 1)) & 1 else cols
        self.pre_levels = pre_levels

    def _per_step(self, levels):
        if not self.rows:
            raise ConfigError("board geometry unknown: configure() first or set_geometry()")
        return self.rows if levels else (self.rows + 7) >> 3

    def _put_spikes(self, off, spikes, t0, steps, per, levels):
        """Write steps of input spikes into the request buffer at off."""
        raw = self._raw
        if isinstance(spikes, (bytes, bytearray, memoryview)):   # flat, already packed
            a = t0 * per
            raw[off:off + steps * per] = spikes[a:a + steps * per] if (a or len(spikes) != steps * per) else spikes
            return off + steps * per
        for t in range(t0, t0 + steps):
            s = spikes[t]
            if isinstance(s, int):
                if levels:
                    raise ConfigError("step %d: an int row mask, but the card uses pulse-width levels" % t)
                if s < 0 or s >> self.rows:
                    raise ConfigError("step %d: row mask 0x%x wider than %d rows" % (t, s, self.rows))
                for k in range(per):
                    raw[off] = s & 0xFF
                    s >>= 8
                    off += 1
            else:
                if len(s) != per:
                    raise ConfigError("step %d: %d bytes, want %d" % (t, len(s), per))
                raw[off:off + per] = s
                off += per
        return off

    def _steps_of(self, spikes, per):
        if isinstance(spikes, (bytes, bytearray, memoryview)):
            if len(spikes) % per:
                raise ConfigError("packed spikes: %d bytes is not a multiple of %d per step" % (len(spikes), per))
            return len(spikes) // per
        return len(spikes)

    def infer(self, spikes, reset=True, events=False, masks=None, v=None, counts=None):
        """Run time steps. spikes: a list of per-step row bitmasks (ints, LSB = row 0)
        or per-step bytes (ceil(rows/8) packed bytes, or `rows` level bytes when the
        card has pre_levels > 1), or one flat bytes-like of all steps.
        Returns (masks, v): the last layer's u32 fire mask per step and its i32
        membrane potentials after the last step. Pass preallocated `masks`
        (len >= steps) and `v` (len >= neurons) to reuse them.
        events=True streams AER event frames (on_event); counts=W (0..255) the
        aggregated readout instead: per-neuron fire counts of every W steps
        (0: of each request) to on_counts."""
        if counts is not None and (counts < 0 or counts > 255):
            raise ConfigError("counts window %d: 0..255 time steps" % counts)
        if counts is not None and events:
            raise ConfigError("events and counts readouts are exclusive")
        levels = self.pre_levels > 1
        per = self._per_step(levels)
        steps = self._steps_of(spikes, per)
        if steps < 1:
            raise ConfigError("no time steps")
        nn = self.neurons
        chunk = (MAX_PAYLOAD - 8 - 4 * nn) // 4
        cin = (MAX_PAYLOAD - 4) // per
        if cin < chunk:
            chunk = cin
        if chunk > MAX_STEPS:
            chunk = MAX_STEPS
        if masks is None:
            masks = [0] * steps
        if v is None:
            v = [0] * nn
        rx = self._rx
        flags = (INFER_LEVELS if levels else 0) | (INFER_EVENTS if events else 0) | \
            (INFER_COUNTS if counts is not None else 0)
        window = counts or 0
        t0 = 0
        while t0 < steps:
            k = steps - t0
            if k > chunk:
                k = chunk
            f = flags | (INFER_RESET if reset and t0 == 0 else 0)
            struct.pack_into(FMT_INFER, self._raw, HDR_LEN, k, f, window)
            end = self._put_spikes(HDR_LEN + 4, spikes, t0, k, per, levels)
            n = self.request(CMD_INFER, end - HDR_LEN)
            rsteps = _u16(rx, HDR_LEN)
            rnn = rx[HDR_LEN + 2]
            if rsteps != k or rnn != nn or n != 8 + 4 * k + 4 * nn:
                raise LinkError("infer answer for %d steps x %d neurons (%d bytes), asked %d x %d"
                                % (rsteps, rnn, n, k, nn))
            o = HDR_LEN + 8
            for t in range(k):
                masks[t0 + t] = _u32(rx, o)
                o += 4
            if t0 + k == steps:
                for j in range(nn):
                    v[j] = _i32(rx, o)
                    o += 4
            t0 += k
        return masks, v

    def predict(self, spikes, reset=True):
        """infer() and the neuron with most fires (255 if none)."""
        masks, _ = self.infer(spikes, reset)
        return predict(masks, self.neurons)

    def train(self, x, label, rule=RULE_SIGN, target=8, max_pulses=1, sample_id=0):
        """One on-device training sample (forward, error, pulses on the board).
        x: input spikes as for infer (at most MAX_STEPS steps, one frame).
        Returns (predicted, pulses, counts): predicted is the neuron with most
        fires (255: none), counts is self.counts (fires per neuron; reused)."""
        levels = self.pre_levels > 1
        per = self._per_step(levels)
        steps = self._steps_of(x, per)
        if steps < 1 or steps > MAX_STEPS or 12 + steps * per > MAX_PAYLOAD:
            raise ConfigError("training sample of %d steps does not fit one frame" % steps)
        if not 0 <= label < self.neurons:
            raise ConfigError("label %d out of range 0..%d" % (label, self.neurons - 1))
        sample_id &= 0xFFFFFFFF
        struct.pack_into(FMT_TRAIN, self._raw, HDR_LEN, steps, label, rule, target, max_pulses,
                         INFER_LEVELS if levels else 0, sample_id)
        end = self._put_spikes(HDR_LEN + 12, x, 0, steps, per, levels)
        n = self.request(CMD_TRAIN, end - HDR_LEN)
        rx = self._rx
        if n != TRAIN_RESP_LEN:
            raise LinkError("train answer of %d bytes, want %d" % (n, TRAIN_RESP_LEN))
        if _u32(rx, HDR_LEN) != sample_id:
            raise LinkError("train answer is for sample %d, sent %d" % (_u32(rx, HDR_LEN), sample_id))
        nn = rx[HDR_LEN + 5]
        c = self.counts
        o = HDR_LEN + 8
        for j in range(MAX_NEURONS):
            c[j] = _u16(rx, o) if j < nn else 0
            o += 2
        return rx[HDR_LEN + 4], _u16(rx, HDR_LEN + 6), c

    def counters(self, clear=False):
        """Counters per block (dict) and the board's server statistics in self.board_stats."""
        self._raw[HDR_LEN] = COUNTERS_CLEAR if clear else 0
        n = self.request(CMD_COUNTERS, 1)
        if n < COUNTERS_LEN + 20:
            raise LinkError("counters: %d bytes, want %d" % (n, COUNTERS_LEN + 20))
        c = struct.unpack_from(FMT_COUNTERS, self._rx, HDR_LEN)
        s = struct.unpack_from(FMT_STATS, self._rx, HDR_LEN + COUNTERS_LEN)
        self.board_stats = dict(zip(STATS_FIELDS, s))
        return dict(zip(COUNTER_FIELDS, c))

    def reset(self, neurons=True, chip=False):
        self._raw[HDR_LEN] = (RESET_NEURONS if neurons else 0) | (RESET_CHIP if chip else 0)
        self.request(CMD_RESET, 1)

    def reboot(self):
        """Reset the MCU (the board forgets its configuration)."""
        self._raw[HDR_LEN] = RESET_BOARD
        self.request(CMD_RESET, 1)

    def age(self, seconds):
        struct.pack_into("<I", self._raw, HDR_LEN, seconds)
        self.request(CMD_AGE, 4)

    def _u16s(self, n, count):
        if n < 2 * count:
            raise LinkError("answer of %d bytes, want %d" % (n, 2 * count))
        return [_u16(self._rx, HDR_LEN + 2 * k) for k in range(count)]

    def read_g(self, first, n):
        """Conductance codes of cells first..first+n-1 (one frame: n <= 512)."""
        struct.pack_into(FMT_READ, self._raw, HDR_LEN, first, n)
        return self._u16s(self.request(CMD_READ_G, 4), n)

    def pulse(self, first, n, polarity, count, timeout_ms=None):
        """count pulses of polarity (+1 P, -1 D, 0 hold) on each cell; returns G after."""
        struct.pack_into(FMT_PULSE, self._raw, HDR_LEN, first, n, count, polarity, 0)
        return self._u16s(self.request(CMD_PULSE, 8, timeout_ms or max(self.timeout_ms, 30000)), n)

    def program(self, first, targets, tolerance=0, max_pulses=64, timeout_ms=None):
        """Write-verify cells first.. to targets (u16 codes). Returns
        (pulses_total, pulses_used per cell, failed cell offsets)."""
        k = len(targets)
        if 8 + 2 * k > MAX_PAYLOAD:
            raise ConfigError("program: %d cells do not fit one frame" % k)
        struct.pack_into(FMT_PROGRAM, self._raw, HDR_LEN, first, k, tolerance, max_pulses, 0)
        o = HDR_LEN + 8
        for t in targets:
            struct.pack_into("<H", self._raw, o, t)
            o += 2
        n = self.request(CMD_PROGRAM, 8 + 2 * k, timeout_ms or max(self.timeout_ms, 30000))
        rx = self._rx
        if n != 8 + k + (k + 7) // 8:
            raise LinkError("program answer of %d bytes for %d cells" % (n, k))
        rn, failed, total = struct.unpack_from(FMT_PROGRAM_RESP, rx, HDR_LEN)
        used = list(rx[HDR_LEN + 8:HDR_LEN + 8 + k])
        bits = HDR_LEN + 8 + k
        bad = [j for j in range(k) if (rx[bits + (j >> 3)] >> (j & 7)) & 1]
        return total, used, bad

    def state(self, layer):
        """Membranes (i32, Q16.16) and refractory counters of a layer."""
        self._raw[HDR_LEN] = layer
        n = self.request(CMD_STATE, 1)
        rx = self._rx
        nn = rx[HDR_LEN]
        if n != 1 + 5 * nn:
            raise LinkError("state answer of %d bytes for %d neurons" % (n, nn))
        o = HDR_LEN + 1
        v = [_i32(rx, o + 4 * j) for j in range(nn)]
        rf = list(rx[o + 4 * nn:o + 5 * nn])
        return v, rf

    def image_size(self):
        """Size of the device image (counters, step counter, virtual chip state); 0 on silicon."""
        struct.pack_into(FMT_IMAGE, self._raw, HDR_LEN, 0, 0, 0, 0)
        n = self.request(CMD_IMAGE, 8)
        if n < 4:
            raise LinkError("image: %d bytes, want 4" % n)
        return _u32(self._rx, HDR_LEN)

    def read_image(self, offset, n):
        """n bytes of the device image from offset (n <= MAX_PAYLOAD - 4)."""
        if n > MAX_PAYLOAD - 4:
            raise ConfigError("image read of %d bytes, at most %d a frame" % (n, MAX_PAYLOAD - 4))
        struct.pack_into(FMT_IMAGE, self._raw, HDR_LEN, offset, n, 0, 0)
        m = self.request(CMD_IMAGE, 8)
        if m != 4 + n:
            raise LinkError("image answer of %d bytes, want %d" % (m, 4 + n))
        return bytes(self._rxmv[HDR_LEN + 4:HDR_LEN + 4 + n])

    def write_image(self, offset, data):
        """Restore part of the device image (checkpoint written back)."""
        n = len(data)
        if n > MAX_PAYLOAD - 8:
            raise ConfigError("image write of %d bytes, at most %d a frame" % (n, MAX_PAYLOAD - 8))
        struct.pack_into(FMT_IMAGE, self._raw, HDR_LEN, offset, n, 1, 0)
        self._raw[HDR_LEN + 8:HDR_LEN + 8 + n] = data
        self.request(CMD_IMAGE, 8 + n)
