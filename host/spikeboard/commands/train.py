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
    return p


def run(args: argparse.Namespace) -> SessionResult:
    if args.resume:
        return Session.open(args.resume, quiet=args.quiet).run(resume=True)
    if not args.app and not args.data:
        raise ConfigError("give --app NAME or --data FILE (or --resume RUN)")
    cfg = SessionConfig.from_args(args, "train")
    Session.check(cfg, args.out)
    return Session.create(cfg, args.out, quiet=args.quiet).run()
