# train_from_file: stream samples from a file into a spikeboard, train it on the
# board (on-device learning: the host only sends spikes and labels), then
# measure accuracy with inference. Runs on a MicroPython board next to the chip
# board (edit the UART settings below) and on CPython:
#
#   python train_from_file.py --port socket://127.0.0.1:4000 --card card.bin samples.sbs
#   python train_from_file.py --make-demo samples.sbs        # a synthetic data set
#
# Sample file format (".sbs", little-endian, fixed-size records so a small board
# reads each sample into one preallocated buffer):
#   header, 16 bytes:
#     0  4s   magic b"SBS1"
#     4  u16  rows         input rows (pre-neurons) per step
#     6  u16  steps        time steps per sample
#     8  u32  count        samples in the file
#    12  u8   classes      labels are 0..classes-1
#    13  u8   pre_levels   1: binary spikes, bit-packed ceil(rows/8) bytes per step,
#                          one bit per row, LSB first (row 0 = bit 0 of byte 0);
#                          >1: one byte per row per step, the pulse-width level
#    14  u16  reserved     0
#   then `count` records of 1 + steps * per bytes:
#     u8 label, then the steps of spikes exactly as they go on the wire.
#
# The card file is the 380-byte parameter block (sb_params_t) the host compiles
# from a device card; see host/micropython/README.md.

import struct

import spikeboard_mp as sb

MAGIC = b"SBS1"
HEADER = "<4sHHIBBH"
HEADER_LEN = 16

# -- MicroPython board settings (used when run on a device) -------------------
UART_ID = 1
UART_BAUD = 115200
UART_TX = None        # e.g. 4 on a Pico (GP4); None: the port's default pins
UART_RX = None
CARD_FILE = "card.bin"
DATA_FILE = "samples.sbs"
EPOCHS = 2
RULE = sb.RULE_SIGN
TARGET = 8            # wanted fires of the label neuron per sample
MAX_PULSES = 1        # per synapse per sample


class SampleFile:
    """Reads fixed-size records into one buffer: next() returns the label and
    leaves the sample's spikes in self.spikes (a memoryview, reused)."""

    def __init__(self, path):
        self.f = open(path, "rb")
        head = self.f.read(HEADER_LEN)
        if len(head) != HEADER_LEN:
            raise ValueError("%s: short header" % path)
        magic, self.rows, self.steps, self.count, self.classes, self.pre_levels, _ = struct.unpack(HEADER, head)
        if magic != MAGIC:
            raise ValueError("%s: not a sample file (magic %r)" % (path, magic))
        self.per = self.rows if self.pre_levels > 1 else (self.rows + 7) // 8
        self.rec = bytearray(1 + self.steps * self.per)
        mv = memoryview(self.rec)
        self.spikes = mv[1:]
        self.index = 0

    def rewind(self):
        self.f.seek(HEADER_LEN)
        self.index = 0

    def next(self):
        """Label of the next sample, or -1 at the end of the file."""
        if self.index >= self.count:
            return -1
        n = self.f.readinto(self.rec)
        if n != len(self.rec):
            return -1
        self.index += 1
        return self.rec[0]

    def close(self):
        self.f.close()


def write_samples(path, rows, steps, classes, samples, pre_levels=1):
    """Write (label, spikes) pairs; spikes: per-step row bitmasks (ints) or
    per-step bytes exactly as on the wire. Returns the number written."""
    per = rows if pre_levels > 1 else (rows + 7) // 8
    body = bytearray()
    count = 0
    for label, spikes in samples:
        if len(spikes) != steps:
            raise ValueError("sample %d has %d steps, want %d" % (count, len(spikes), steps))
        body.append(label)
        for s in spikes:
            if isinstance(s, int):
                for k in range(per):
                    body.append((s >> (8 * k)) & 0xFF)
            else:
                if len(s) != per:
                    raise ValueError("sample %d: step of %d bytes, want %d" % (count, len(s), per))
                body.extend(s)
        count += 1
    with open(path, "wb") as f:
        f.write(struct.pack(HEADER, MAGIC, rows, steps, count, classes, pre_levels, 0))
        f.write(body)
    return count


def demo_samples(n, rows=32, steps=16, classes=4, seed=1, p_on=60, p_off=5):
    """A synthetic, learnable data set: class c drives its own block of rows at
    p_on per cent per step, every other row at p_off per cent. A small LCG keeps
    it identical on MicroPython and CPython."""
    state = seed & 0x7FFFFFFF
    block = rows // classes
    out = []
    for i in range(n):
        label = i % classes
        spikes = []
        for _ in range(steps):
            m = 0
            for r in range(rows):
                state = (state * 1103515245 + 12345) & 0x7FFFFFFF
                p = p_on if r // block == label else p_off
                if (state >> 8) % 100 < p:
                    m |= 1 << r
            spikes.append(m)
        out.append((label, spikes))
    return out


def run(board, path, epochs=EPOCHS, rule=RULE, target=TARGET, max_pulses=MAX_PULSES, log=print):
    """Train on every sample of the file for `epochs` passes, then infer each
    once. Returns (last epoch's training accuracy, inference accuracy)."""
    data = SampleFile(path)
    try:
        if board.rows and board.rows != data.rows:
            raise ValueError("file has %d rows, the board %d" % (data.rows, board.rows))
        if data.classes > board.neurons:
            raise ValueError("file has %d classes, the board %d output neurons" % (data.classes, board.neurons))
        sample_id = 0
        train_acc = 0.0
        for ep in range(epochs):
            data.rewind()
            ok = 0
            n = 0
            while True:
                label = data.next()
                if label < 0:
                    break
                pred, _, _ = board.train(data.spikes, label, rule, target, max_pulses, sample_id)
                sample_id += 1
                n += 1
                if pred == label:
                    ok += 1
            train_acc = ok / n if n else 0.0
            log("epoch %d: training accuracy %d/%d = %.3f" % (ep + 1, ok, n, train_acc))
        data.rewind()
        masks = [0] * data.steps
        v = [0] * sb.MAX_NEURONS
        ok = 0
        n = 0
        while True:
            label = data.next()
            if label < 0:
                break
            board.infer(data.spikes, True, False, masks, v)
            if sb.predict(masks, board.neurons) == label:
                ok += 1
            n += 1
        acc = ok / n if n else 0.0
        log("inference accuracy %d/%d = %.3f" % (ok, n, acc))
        return train_acc, acc
    finally:
        data.close()


def _main_micropython():
    from machine import UART
    kw = {"baudrate": UART_BAUD, "timeout": 20, "rxbuf": 2048}
    if UART_TX is not None:
        kw["tx"] = UART_TX
        kw["rx"] = UART_RX
    board = sb.Board(UART(UART_ID, **kw))
    print(board.info())
    with open(CARD_FILE, "rb") as f:
        print("card hash %08x" % board.configure(f.read()))
    board.reset(True, True)
    run(board, DATA_FILE)
    print(board.counters())


def _main_cpython(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description="Train a spikeboard on samples from a file (see the header of this script).")
    ap.add_argument("data", help="sample file (.sbs)")
    ap.add_argument("--port", help="pyserial URL of the board: /dev/ttyACM0, socket://127.0.0.1:PORT")
    ap.add_argument("--baud", type=int, default=115200)
    ap.add_argument("--card", help="compiled parameter block (380 bytes) to configure the board with")
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--target", type=int, default=TARGET)
    ap.add_argument("--max-pulses", type=int, default=MAX_PULSES)
    ap.add_argument("--make-demo", type=int, metavar="N", help="write N synthetic samples to DATA and exit")
    a = ap.parse_args(argv)
    if a.make_demo:
        n = write_samples(a.data, 32, 16, 4, demo_samples(a.make_demo))
        print("wrote %d samples to %s" % (n, a.data))
        return 0
    if not a.port or not a.card:
        ap.error("--port and --card are required to train")
    import serial
    port = serial.serial_for_url(a.port, baudrate=a.baud, timeout=0.05)
    try:
        board = sb.Board(port)
        print(board.info())
        with open(a.card, "rb") as f:
            print("card hash %08x" % board.configure(f.read()))
        board.reset(True, True)   # fresh cells: training starts from the card's initial state
        run(board, a.data, a.epochs, RULE, a.target, a.max_pulses)
        print(board.counters())
    finally:
        port.close()
    return 0


if __name__ == "__main__":
    import sys
    if sys.implementation.name == "micropython":
        _main_micropython()
    else:
        sys.exit(_main_cpython())
