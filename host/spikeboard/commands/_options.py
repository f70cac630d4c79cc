"""The CLI's shared option groups and the one way a command registers its parser.

Groups: `chip` (backend, port, board, card, geometry, layout, seed: what
`chip.ChipSpec.from_args` reads), `out` (--json, -v, -q, --debug) and the
session options of `train` / `infer` (`add_session_options`). Their choices
come from where each idea lives (backends.NAMES, cards.GEOMETRIES,
chip.LAYOUTS, backends.base.RULES), never retyped here. Numeric ranges are
dicts of dest -> (low, high) that `cli.check_options` applies after parsing."""
from __future__ import annotations

import argparse
import sys
from functools import cache
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from .. import cards
from ..backends import NAMES as BACKENDS
from ..backends.base import RULES
from ..chip import LAYOUTS

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Subparsers = Any

#: a range per numeric option: dest -> (low, high), None for no bound
Limits = Mapping[str, tuple[float | None, float | None]]

#: ranges of the chip group's numbers (every command)
CHIP_LIMITS: Limits = {"seed": (0, 2**32 - 1)}

#: ranges of the session options (train, infer)
SESSION_LIMITS: Limits = {"stuck": (0.0, 1.0), "train_limit": (1, None), "test_limit": (1, None),
                          "epochs": (1, None), "max_pulses": (1, 255), "target": (0, 65535),
                          "checkpoint_every": (1, None), "threshold": (0.01, 30000.0)}


def _chip_group() -> argparse.ArgumentParser:
    chip = argparse.ArgumentParser(add_help=False)
    g = chip.add_argument_group("chip and backend")
    g.add_argument("--backend", choices=BACKENDS, default=BACKENDS[0],
                   help="model: C chip model in-process; emulator: firmware in QEMU; serial: a real board")
    g.add_argument("--port", help="serial URL of the board (/dev/ttyACM0, socket://127.0.0.1:PORT); "
                                  "with --backend emulator, a running `spikeboard emulate`")
    g.add_argument("--board", default="netduinoplus2", help="board for the emulator and flash (default %(default)s)")
    g.add_argument("--card", default="spec", help="device card: built-in name or TOML path (default %(default)s)")
    g.add_argument("--geometry", choices=tuple(cards.GEOMETRIES), default=None,
                   help="array geometry (default: the card's preset)")
    g.add_argument("--layout", choices=LAYOUTS, default=LAYOUTS[0],
                   help="card: the card's [geometry].differential; differential: column pairs G+ - G- "
                        "(cols/2 neurons a layer); single-ended: one column per neuron against the "
                        "reference (default %(default)s)")
    g.add_argument("--tiled", metavar="ROWSxCOLS",
                   help="a one-layer chip larger than one array, laid over a grid of tiles of the geometry "
                        "(model backend); 'card': the card's [geometry].tiled; with infer --nir, any value "
                        "(e.g. auto): the graph's own shape in whole tiles")
    g.add_argument("--seed", type=int, default=0, help="seed of device variation, data splits, encoders")
    return chip


def _out_group() -> argparse.ArgumentParser:
    out = argparse.ArgumentParser(add_help=False)
    o = out.add_argument_group("output")
    o.add_argument("--json", action="store_true", help="print one machine-readable JSON result")
    o.add_argument("-v", "--verbose", action="count", default=0, help="more output")
    o.add_argument("-q", "--quiet", action="store_true", help="only errors and the result")
    o.add_argument("--debug", action="store_true", help="show tracebacks")
    return out


@cache
def shared_groups() -> dict[str, argparse.ArgumentParser]:
    """The shared groups by name, built once (argparse copies a parent's options into each parser)."""
    return {"chip": _chip_group(), "out": _out_group()}


def add_command(sub: Subparsers, name: str, *, doc: str | None = None, help: str | None = None,
                description: str | None = None, groups: Iterable[str] = ("chip", "out")) -> argparse.ArgumentParser:
    """A (sub)command's parser with the named shared groups: the one way commands register.

    doc: a command module's docstring, "spikeboard NAME: HELP." then the
    paragraphs --help shows as the description (help= and description= win)."""
    if doc is not None:
        title, _, body = doc.strip().partition("\n\n")
        help = help or " ".join(title.split()).split(": ", 1)[-1].rstrip(".")
        description = description or " ".join(body.split()) or None
    shared = shared_groups()
    return sub.add_parser(name, parents=[shared[g] for g in groups], help=help, description=description)


def add_actions(p: argparse.ArgumentParser) -> Subparsers:
    """The ACTION subcommands of a command such as `cards list` (each added with add_command)."""
    return p.add_subparsers(dest="action", metavar="ACTION", required=True)


def add_session_options(p: argparse.ArgumentParser, mode: str) -> None:
    """The session group of `train` (mode "train") and `infer` (mode "infer"); ranges in SESSION_LIMITS."""
    g = p.add_argument_group("session")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--app", help="built-in application (spikeboard apps list)")
    src.add_argument("--data", help="your own data set: NPZ (X, y) or CSV with a 'label' column")
    g.add_argument("--stuck", type=float, default=0.0, help="add this fraction of stuck cells (half at Gmin, half at Gmax)")
    g.add_argument("--train-limit", type=int, help="use only the first N training samples")
    g.add_argument("--test-limit", type=int, help="use only the first N test samples")
    g.add_argument("--threshold", type=float, help="neuron threshold in full conductance windows (default: the app's)")
    g.add_argument("--out", help="run folder (default runs/<time>-<mode>-<app>-<backend>)")
    g.add_argument("--faults", metavar="SPEC",
                   help="inject link faults to test a set-up, e.g. corrupt=0.01,drop=0.005,seed=1 "
                        "(also dup, delay, delay_ms, dir=both|tx|rx); emulator and serial backends")
    if mode == "train":
        g.add_argument("--epochs", type=int, help="epochs (default: the app's)")
        g.add_argument("--rule", choices=tuple(RULES), help="learning rule (dfa: every layer, for 16x16x3)")
        g.add_argument("--target", type=int, help="fires wanted from the label neuron per sample")
        g.add_argument("--max-pulses", type=int, help="most pulses per synapse per sample")
        g.add_argument("--checkpoint-every", type=int, default=100, help="samples between chip checkpoints")
        g.add_argument("--resume", metavar="RUN", help="resume an interrupted session from its run folder")
    else:
        g.add_argument("--run", dest="weights_run", help="take the weights from this training run")


def log(args: argparse.Namespace, *msg: object) -> None:
    """Progress lines: to stderr, silenced by -q."""
    if not getattr(args, "quiet", False):
        print(*msg, file=sys.stderr, flush=True)
