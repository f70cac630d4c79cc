"""spikeboard infer: inference with trained or programmed weights, or a NIR graph."""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..session import Session, SessionConfig, SessionResult
from ._options import SESSION_LIMITS as LIMITS  # noqa: F401  (cli range-checks these)
from ._options import Subparsers, add_command, add_session_options
from ._result import Record


def register(sub: Subparsers) -> argparse.ArgumentParser:
    p = add_command(sub, "infer", help="inference of an application with trained or programmed weights",
                    description="Run an application's test set on the chip. --run RUN takes the weights of "
                                "a training run (its device image on a virtual chip, else its conductances "
                                "programmed with write-verify). --nir FILE runs a NIR graph instead.")
    add_session_options(p, "infer")
    p.add_argument("--nir", help="a NIR graph file (.nir / HDF5) to map onto the chip and run")
    p.add_argument("--input", help="with --nir: input spikes .npy, (steps, inputs) or (batch, steps, inputs)")
    return p


@dataclass(frozen=True)
class NirRun(Record):
    """A NIR graph on the chip: its programming report, and either the output
    spike counts of an input file or an app's accuracy."""

    nir: str
    inputs: int
    outputs: int
    programming: list[dict[str, Any]]
    text: str
    spike_counts: list[Any] | None = None
    app: str | None = None
    accuracy: float | None = None
    test_samples: int | None = None


def run_nir(args: argparse.Namespace) -> NirRun:
    """Map a NIR graph onto the chip, program it, run an app's test set or a spike file."""
    from .. import loop
    from .._hal import lib
    from ..apps import get_app, prepare
    from ..apps.builtin import user_app
    from ..chip import ChipSpec, open_backend_for
    from ._files import check_spikes, read_npy
    try:
        from .. import nir as nirlib
    except ImportError as e:
        raise ConfigError(f"--nir needs the nir extra (pip install nir): {e}") from None
    if not Path(args.nir).exists():
        raise ConfigError(f"{args.nir}: NIR file not found")
    x_in = read_npy(args.input, "input spike file") if args.input else None   # read before the chip is touched
    with open_backend_for(ChipSpec.from_args(args)) as b:
        # the chip's seed; --tiled lays a one-layer graph wider than the array over tiles (its shape: the graph's)
        m = nirlib.load(args.nir, b, card=args.card, geometry=args.geometry, seed=args.seed,
                        tiles=args.tiled is not None)
        head = dict(nir=args.nir, inputs=m.n_in, outputs=m.n_out, programming=list(m.report))
        if x_in is not None:
            x = check_spikes(x_in, args.input, inputs=m.n_in, max_steps=lib.SB_MAX_STEPS,
                             max_level=max(1, b.params.pre_levels))
            xp = m.pad_input(x)
            f, _ = b.infer(xp) if xp.ndim == 2 else b.infer_batch(xp)
            fires = f[..., :m.n_out]
            if args.out:
                Path(args.out).mkdir(parents=True, exist_ok=True)
                np.save(Path(args.out) / "nir_fires.npy", fires)
            counts = fires.sum(axis=-2).tolist()
            return NirRun(**head, spike_counts=counts, text=f"ran {args.nir} on {b.name}: output spike counts {counts}")
        if not (args.app or args.data):
            raise ConfigError("--nir needs --input FILE.npy or --app/--data to run")
        app = get_app(args.app) if args.app else user_app(args.data)
        data = prepare(app, m.n_in, args.seed, test_limit=args.test_limit)
        if data.classes > m.n_out:
            raise ConfigError(f"{data.classes} classes, the NIR graph has {m.n_out} outputs",
                              file=args.data or args.app, field="y" if args.data else None)
        ev = loop.evaluate(b, dataclasses.replace(data, x_test=m.pad_input(data.x_test)), np.arange(data.classes))
        return NirRun(**head, app=app.name, accuracy=ev.accuracy, test_samples=len(data.y_test),
                      text=f"{args.nir} on {b.name}: {app.name} accuracy {ev.accuracy:.4f} on {len(data.y_test)} samples")


def run(args: argparse.Namespace) -> NirRun | SessionResult:
    if args.nir:
        return run_nir(args)
    if not args.app and not args.data:
        raise ConfigError("give --app NAME or --data FILE (or --nir FILE)")
    cfg = SessionConfig.from_args(args, "infer")
    return Session.create(cfg, args.out, quiet=args.quiet).run()
