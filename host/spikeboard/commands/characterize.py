"""spikeboard characterize: measure the chip: pd, retention, endurance, yield, neuron, interface.

Run a characterization scheme on the backend and write its data (CSV, readable
by `cards fit`) and a figure (PNG) into --out-dir. pd: a
potentiation/hold/depression pattern such as '(P64 H16 D64)x3' -> linearity,
symmetry (docs/spec.md), exponential A and NeuroSim NL per branch, levels,
cycle-to-cycle spread. retention: levels read over log-spaced model time,
extrapolated to 1 and 10 years. endurance: P/D swings, window vs pulses,
extrapolated (and said so) below 1e8 pulses. yield: fault map. neuron: f-I
curve, max sustained rate, energy per spike. interface: rate and energy per
operation of the pre/post circuits."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import characterize as ch
from ..chip import ChipSpec, open_chip
from ..errors import ConfigError
from ._options import Subparsers, add_command, log
from ._result import Record

LIMITS = {"levels": (2, 1024), "t_max": (1e-6, 1e12), "max_pulses": (1, 1e12), "fraction": (0.0, 1.0),
          "steps": (1, 65535)}


@dataclass(frozen=True)
class CharacterizeResult(Record):
    card: str
    backend: str
    layout: dict[str, Any]          # chip.Layout.as_dict() of the chip measured
    results: dict[str, Any]         # scheme -> its result's as_dict()
    text: str


def register(sub: Subparsers) -> argparse.ArgumentParser:
    p = add_command(sub, "characterize", doc=__doc__)
    p.add_argument("--scheme", required=True, choices=ch.SCHEMES + ("all",))
    p.add_argument("--out-dir", default="runs/characterize", help="directory for CSV and PNG (default %(default)s)")
    p.add_argument("--pattern", default=None, help="pd: pulse pattern (default '(P<pulses> H16 D<pulses>)x3')")
    p.add_argument("--cells", default=None, help="pd/endurance: 'all', '0-15' or '0,4,8-11' (default: 16 / 4 cells)")
    p.add_argument("--start", choices=("min", "max", "as-is"), default="min", help="pd: state before the pattern")
    p.add_argument("--levels", type=int, default=8, help="retention: programmed levels")
    p.add_argument("--t-max", type=float, default=1e7, help="retention: last read, seconds of (model) time")
    p.add_argument("--max-pulses", type=float, default=None,
                   help="endurance: pulses per cell (default 3e7 on the model, 2e4 on a board)")
    p.add_argument("--fraction", type=float, default=0.5, help="endurance: failure when the window falls below this")
    p.add_argument("--steps", type=int, default=100, help="neuron/interface: time steps per input level")
    return p


def _cells(args: argparse.Namespace, ncells: int, default: int) -> list[int]:
    try:
        return ch.parse_cells(args.cells, ncells, range(min(default, ncells)))
    except ConfigError as e:
        raise ConfigError(str(e), field="--cells") from None


def run(args: argparse.Namespace) -> CharacterizeResult:
    out = Path(args.out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError("exists and is not a folder", field=f"--out-dir {out}")
    if args.pattern is not None:
        try:
            ch.parse_pattern(args.pattern)
        except ConfigError as e:
            raise ConfigError(str(e), field="--pattern") from None
    spec = ChipSpec.from_args(args)
    ch.require_one_array(spec.tiled)
    schemes = ch.SCHEMES if args.scheme == "all" else (args.scheme,)
    results: dict[str, Any] = {}
    texts = []
    with open_chip(spec) as chip:
        b, card = chip.backend, chip.card
        pulses = card["synapse"]["pulses"]
        for s in schemes:
            log(args, f"characterize {s} on {b.name} ({chip.layout.describe()}) ...")
            r: ch.SchemeResult
            if s == "pd":
                r = ch.run_pd(b, out, pattern=args.pattern or f"(P{pulses} H16 D{pulses})x3",
                              cells=_cells(args, b.cells, 16), card=card, start=args.start)
            elif s == "retention":
                r = ch.run_retention(b, out, levels=args.levels, t_max_s=args.t_max, card=card)
            elif s == "endurance":
                mp = args.max_pulses or (3e7 if b.name == "model" else 2e4)
                r = ch.run_endurance(b, out, cells=_cells(args, b.cells, 4), swing=pulses, max_pulses=mp,
                                     fraction=args.fraction, card=card)
            elif s == "yield":
                r = ch.run_yield(b, out, card=card)
            elif s == "neuron":
                r = ch.run_neuron(b, out, steps=args.steps, card=card)
            else:
                r = ch.run_interface(b, out, steps=args.steps, card=card)
            if len(schemes) > 1:
                b.reset(chip=True)
            results[s] = r.as_dict()
            texts.append(f"{s} ({card.name}, {b.name}):\n{ch.format_result(r)}")
        return CharacterizeResult(card.name, b.name, chip.layout.as_dict(), results, "\n".join(texts))
