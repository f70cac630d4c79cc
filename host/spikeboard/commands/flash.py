"""spikeboard flash: build and upload the firmware (PlatformIO).

Build the firmware for a board with PlatformIO (offline, local platform) and
upload it (openocd or st-flash). --build-only skips the upload, which is what
works without a board attached."""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, DeviceError
from ._options import Subparsers, add_command
from ._result import Record

ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class FlashResult(Record):
    board: str
    elf: str
    uploaded: bool

    @property
    def text(self) -> str:
        return f"built {self.elf}" + (" and uploaded" if self.uploaded else "")


def register(sub: Subparsers) -> argparse.ArgumentParser:
    p = add_command(sub, "flash", doc=__doc__, groups=("out",))
    p.add_argument("--board", required=True, help="board folder under boards/ (e.g. nucleo_f446re)")
    p.add_argument("--build-only", action="store_true")
    return p


def run(args: argparse.Namespace) -> FlashResult:
    if not (ROOT / "boards" / args.board / "board.yaml").exists():
        boards = sorted(d.name for d in (ROOT / "boards").iterdir() if (d / "board.yaml").exists())
        raise ConfigError(f"no board {args.board!r} (boards/: {', '.join(boards)})")
    pio = shutil.which("pio", path=str(ROOT / ".venv" / "bin")) or shutil.which("pio")
    if not pio:
        raise ConfigError("PlatformIO (pio) not found: run tools/setup.sh")
    cmd = [pio, "run", "-e", args.board] + ([] if args.build_only else ["-t", "upload"])
    env = dict(os.environ, PLATFORMIO_SETTING_ENABLE_TELEMETRY="No")
    r = subprocess.run(cmd, cwd=ROOT, env=env, stdout=None if args.verbose else subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        tail = (r.stdout or "").strip().splitlines()[-5:]
        raise DeviceError(f"{' '.join(cmd[1:])} failed: " + " | ".join(tail))
    elf = ROOT / ".pio" / "build" / args.board / "firmware.elf"
    return FlashResult(args.board, str(elf), not args.build_only)
