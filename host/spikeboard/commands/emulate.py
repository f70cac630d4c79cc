"""spikeboard emulate: start the emulated board (QEMU) and print its serial URL.

Start the firmware in QEMU with its UART on a loopback TCP port; print the
socket:// URL and keep running until Ctrl-C. Other commands reach it with
--backend emulator --port URL."""
from __future__ import annotations

import argparse
import signal
import sys
import time

from ..emulator import Emulator, find_firmware
from ._options import Subparsers, add_command


def register(sub: Subparsers) -> argparse.ArgumentParser:
    p = add_command(sub, "emulate", doc=__doc__, groups=("out",))
    p.add_argument("--board", default="netduinoplus2")
    p.add_argument("--icount", type=int, default=None, help="QEMU -icount shift (deterministic instruction time)")
    p.add_argument("--for", dest="duration", type=float, default=None, help="stop after this many seconds")
    return p


def run(args: argparse.Namespace) -> None:
    """Runs until Ctrl-C or --for; the URL is the output, printed as soon as it is known."""
    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt          # SIGTERM ends the wait like Ctrl-C: QEMU is stopped below

    signal.signal(signal.SIGTERM, stop)
    emu = Emulator(find_firmware(args.board), icount=args.icount)
    url = emu.start()
    print(url, flush=True)
    try:
        t0 = time.monotonic()
        while emu.alive() and (args.duration is None or time.monotonic() - t0 < args.duration):
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
    print("emulator stopped", file=sys.stderr)
