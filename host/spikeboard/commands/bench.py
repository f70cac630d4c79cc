"""spikeboard bench: speed figures (never pass/fail)."""
from __future__ import annotations

import json


def register(sub, common):
    p = sub.add_parser("bench", parents=[common["out"]], help="benchmarks: model speed, firmware instruction counts",
                       description="model: ns per sample-step of the C chip model at batch 1/32/1024 and of a "
                                   "whole-array sign update. firmware: instructions per pulse, per event and "
                                   "per inference step of the firmware in QEMU (-icount).")
    p.add_argument("target", choices=("model", "firmware"))
    p.add_argument("--card", default="spec")
    p.add_argument("--board", default="netduinoplus2")
    return p


def run(args):
    if args.target == "model":
        from ..bench import bench_model

        r = bench_model(args.card)
    else:
        from ..bench import bench_firmware

        r = bench_firmware(args.board)
    return {**r, "text": json.dumps(r, indent=2)}
