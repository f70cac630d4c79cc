"""spikeboard bench: benchmarks: model speed, firmware instruction counts.

Speed figures, never pass/fail. model: ns per sample-step of the C chip model
at batch 1/32/1024 and of a whole-array sign update. firmware: instructions
per pulse, per event and per inference step of the firmware in QEMU (-icount)."""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

from ._options import Subparsers, add_command


@dataclass(frozen=True)
class BenchResult:
    target: str                  # "model" or "firmware"
    figures: dict[str, Any]      # what bench_model / bench_firmware measured

    def as_dict(self) -> dict[str, Any]:
        return dict(self.figures)

    @property
    def text(self) -> str:
        return json.dumps(self.figures, indent=2)


def register(sub: Subparsers) -> argparse.ArgumentParser:
    p = add_command(sub, "bench", doc=__doc__, groups=("out",))
    p.add_argument("target", choices=("model", "firmware"))
    p.add_argument("--card", default="spec")
    p.add_argument("--board", default="netduinoplus2")
    return p


def run(args: argparse.Namespace) -> BenchResult:
    if args.target == "model":
        from ..bench import bench_model

        return BenchResult("model", bench_model(args.card))
    from ..bench import bench_firmware

    return BenchResult("firmware", bench_firmware(args.board))
