"""spikeboard train: an on-device training session."""
from __future__ import annotations

import argparse

from ..errors import ConfigError
from ..session import Session, SessionConfig, SessionResult
from ._options import SESSION_LIMITS as LIMITS  # noqa: F401  (cli range-checks these)
from ._options import Subparsers, add_command, add_session_options


def register(sub: Subparsers) -> argparse.ArgumentParser:
    p = add_command(sub, "train", help="on-device training session of an application",
                    description="Stream an application's training samples to the chip; the board runs "
                                "the forward pass, forms the error and applies the learning rule's pulses "
                                "itself. Writes a run folder with journal, checkpoints, metrics, energy, "
                                "report.html and figures. --resume RUN continues an interrupted session.")
    add_session_options(p, "train")
    p.set_defaults(_defaults={a.dest: a.default for a in p._actions})
    return p


#: what a resumed session may be given anew: how to reach the board, how to print
RESUME_MAY_CHANGE = ("port", "faults", "json", "verbose", "quiet", "debug", "resume")


def run(args: argparse.Namespace) -> SessionResult:
    if args.resume:
        changed = [d for d, v in args._defaults.items()
                   if d not in RESUME_MAY_CHANGE and d != "help" and getattr(args, d, v) != v]
        if changed:
            raise ConfigError("a resumed session keeps the configuration it began with (config.json); only "
                              "--port and --faults may change, not " + ", ".join(f"--{d.replace('_', '-')}"
                                                                              for d in changed), field="--resume")
        s = Session.open(args.resume, quiet=args.quiet, port=args.port, faults=args.faults)
        return s.run(resume=True)
    if not args.app and not args.data:
        raise ConfigError("give --app NAME or --data FILE (or --resume RUN)")
    cfg = SessionConfig.from_args(args, "train")
    return Session.create(cfg, args.out, quiet=args.quiet).run()
