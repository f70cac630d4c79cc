"""spikeboard infer: inference with trained or programmed weights, or a NIR graph."""
from __future__ import annotations

from ..errors import ConfigError
from ..session import Session
from .train import _cfg, _summary, add_session_options


def register(sub, common):
    p = sub.add_parser("infer", parents=[common["chip"], common["out"]],
                       help="inference of an application with trained or programmed weights",
                       description="Run an application's test set on the chip. --run RUN takes the weights of "
                                   "a training run (its device image on a virtual chip, else its conductances "
                                   "programmed with write-verify). --nir FILE runs a NIR graph instead.")
    add_session_options(p, "infer")
    p.add_argument("--nir", help="a NIR graph file (.nir / HDF5) to map onto the chip and run")
    return p


def run(args):
    if args.nir:
        from ..chipctl import ChipSpec
        try:
            from ..nir_bridge import run_nir_cli
        except ImportError as e:
            raise ConfigError(f"--nir needs the nir extra: {e}") from None
        r = run_nir_cli(args.nir, ChipSpec.from_args(args), app=args.app, data=args.data,
                        test_limit=args.test_limit)
        return r
    if not args.app and not args.data:
        raise ConfigError("give --app NAME or --data FILE (or --nir FILE)")
    s = Session.create(_cfg(args, "infer"), args.out, quiet=args.quiet)
    result = s.run()
    return {**result, "text": _summary(result)}
