"""spikeboard spec: the SPEC.md table, PASS/FAIL per row, and TOPS/W by convention."""
from __future__ import annotations

from .. import spec as speclib
from ..cli import log


def register(sub, common):
    p = sub.add_parser("spec", parents=[common["chip"], common["out"]],
                       help="check a card or a session run against the programme's targets (SPEC.md)",
                       description="Run every characterization scheme on the chip configured with the card, "
                                   "then an application workload (a session run's counters with --run, or "
                                   "the built-in random rate-coded inference), and print the SPEC.md table: "
                                   "target, value, PASS/FAIL and method per row; energy per OP and TOPS/W "
                                   "under neuron-op, synaptic-op and MAC conventions with the breakdown by "
                                   "block; and which per-event energies would reach 1,000 TOPS/W. Writes an "
                                   "HTML page with figures into --out-dir. Exit status 0 even when rows fail.")
    p.add_argument("--run", default=None, help="session run directory (counters.json, card.toml, config.json)")
    p.add_argument("--out-dir", default=None, help="directory for the HTML page and data (default runs/spec-<card>)")
    p.add_argument("--single-ended", action="store_true", help="compile the card single-ended (one column per neuron)")
    p.add_argument("--endurance-pulses", type=float, default=3e7, help="endurance run length per cell")
    return p


def run(args):
    rep = speclib.spec_check(args.card, geometry=args.geometry, seed=args.seed, run=args.run, backend=args.backend,
                             port=args.port, board=args.board, differential=False if args.single_ended else None,
                             out_dir=args.out_dir, endurance_pulses=args.endurance_pulses,
                             log=lambda m: log(args, f"spec: {m}"))
    return {**rep.as_dict(), "text": speclib.format_text(rep)}
