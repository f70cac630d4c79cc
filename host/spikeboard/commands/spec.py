"""spikeboard spec: check a card or a session run against the programme's targets (docs/spec.md).

Run every characterization scheme on the chip configured with the card, then
an application workload (a session run's counters with --run, or the built-in
random rate-coded inference), and print the table of docs/spec.md (the
programme's targets): target, value, PASS/FAIL and method per row, the chip's
layout stated with the neuron-count row; energy per OP and TOPS/W under
neuron-op, synaptic-op and MAC conventions with the breakdown by block; and
which per-event energies would reach 1,000 TOPS/W. Writes an HTML page with
figures into --out-dir. Exit status 0 even when rows fail."""
from __future__ import annotations

import argparse

from .. import spec as speclib
from ..chip import ChipSpec
from ._options import Subparsers, add_command, log


def register(sub: Subparsers) -> argparse.ArgumentParser:
    p = add_command(sub, "spec", doc=__doc__)
    p.add_argument("--run", default=None, help="session run directory (counters.json, card.toml, config.json); "
                                                "its geometry and layout are used")
    p.add_argument("--out-dir", default=None, help="directory for the HTML page and data (default runs/spec-<card>)")
    p.add_argument("--endurance-pulses", type=float, default=3e7, help="endurance run length per cell")
    return p


def run(args: argparse.Namespace) -> speclib.SpecReport:
    return speclib.spec_check(ChipSpec.from_args(args), run=args.run, out_dir=args.out_dir,
                              endurance_pulses=args.endurance_pulses, log=lambda m: log(args, f"spec: {m}"))
