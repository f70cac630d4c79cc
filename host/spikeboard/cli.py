"""The `spikeboard` command. Each subcommand lives in spikeboard/commands/<name>.py
with `register(subparsers, common) -> parser` and `run(args) -> dict | None`;
this module only finds them, shares the option groups and turns errors into
one line and exit status 1."""
from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import traceback

from . import __version__
from .errors import SpikeboardError

SCHEMA_VERSION = 1


def common_parents() -> dict[str, argparse.ArgumentParser]:
    """Shared option groups: `chip` (backend, port, card, geometry, seed) and `out`."""
    chip = argparse.ArgumentParser(add_help=False)
    g = chip.add_argument_group("chip and backend")
    g.add_argument("--backend", choices=("model", "emulator", "serial"), default="model",
                   help="model: C chip model in-process; emulator: firmware in QEMU; serial: a real board")
    g.add_argument("--port", help="serial URL of the board (/dev/ttyACM0, socket://127.0.0.1:PORT); "
                                  "with --backend emulator, a running `spikeboard emulate`")
    g.add_argument("--board", default="netduinoplus2", help="board for the emulator and flash (default %(default)s)")
    g.add_argument("--card", default="spec", help="device card: built-in name or TOML path (default %(default)s)")
    g.add_argument("--geometry", choices=("32x32", "16x16x3"), default=None,
                   help="array geometry (default: the card's preset)")
    g.add_argument("--seed", type=int, default=0, help="seed of device variation, data splits, encoders")
    out = argparse.ArgumentParser(add_help=False)
    o = out.add_argument_group("output")
    o.add_argument("--json", action="store_true", help="print one machine-readable JSON result")
    o.add_argument("-v", "--verbose", action="count", default=0, help="more output")
    o.add_argument("-q", "--quiet", action="store_true", help="only errors and the result")
    o.add_argument("--debug", action="store_true", help="show tracebacks")
    return {"chip": chip, "out": out}


def _commands():
    from . import commands

    for m in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not m.name.startswith("_"):
            yield importlib.import_module(f"{commands.__name__}.{m.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spikeboard",
        description="Drive, model and measure an integrated neuromorphic chip: firmware, "
                    "bit-exact chip model, on-chip learning and per-op energy.")
    parser.add_argument("--version", action="version", version=f"spikeboard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = common_parents()
    for mod in _commands():
        p = mod.register(sub, common)
        p.set_defaults(_run=mod.run)
    return parser


def log(args, *msg) -> None:
    """Progress lines: to stderr, silenced by -q."""
    if not getattr(args, "quiet", False):
        print(*msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args._run(args)
    except SpikeboardError as e:
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"spikeboard {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"spikeboard {args.command}: interrupted", file=sys.stderr)
        return 1
    except Exception as e:  # a bug: one line unless --debug
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"spikeboard {args.command}: internal error: {type(e).__name__}: {e} (rerun with --debug)",
              file=sys.stderr)
        return 1
    if result is not None:
        if getattr(args, "json", False):
            print(json.dumps({"schema_version": SCHEMA_VERSION, "command": args.command, **result},
                             default=_jsonable))
        elif "text" in result:
            print(result["text"])
    return 0


def _jsonable(o):
    import numpy as np

    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if hasattr(o, "as_dict"):
        return o.as_dict()
    return str(o)


if __name__ == "__main__":
    sys.exit(main())
