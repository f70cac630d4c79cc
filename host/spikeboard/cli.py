"""The `spikeboard` command. Each subcommand lives in spikeboard/commands/<name>.py
with `register(subparsers) -> parser` (built with commands._options.add_command)
and `run(args) -> Result | None` (commands._result: a frozen dataclass with
as_dict() and text); this module only finds them, parses, range-checks the
options, prints the result and turns errors into one line and exit status 1."""
from __future__ import annotations

import argparse
import importlib
import json
import math
import pkgutil
import sys
import traceback
from types import ModuleType
from typing import Any, Iterator, NoReturn

from . import __version__
from .commands._options import CHIP_LIMITS, Limits
from .errors import ConfigError, SpikeboardError

SCHEMA_VERSION = 1

#: URL schemes pyserial opens (serial_for_url); anything else is a typo
PORT_SCHEMES = ("socket", "rfc2217", "loop", "spy", "hwgrep", "alt")


class UsageError(SpikeboardError):
    """A command line argparse rejects (unknown option, bad choice, not a number)."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 1 like every other bad input."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def _bounds(lo: float | None, hi: float | None) -> str:
    def f(v: float) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)
    if lo is not None and hi is not None:
        return f"in [{f(lo)}, {f(hi)}]"
    if lo is not None:
        return f">= {f(lo)}"
    return f"<= {f(hi)}" if hi is not None else "a number"


def check_options(args: argparse.Namespace, limits: Limits | None = None) -> None:
    """Range-check numeric options (the chip group's, then the command's LIMITS,
    which win) and the form of --port; ConfigError names the option."""
    for dest, (lo, hi) in {**CHIP_LIMITS, **(limits or {})}.items():
        v = getattr(args, dest, None)
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        opt = f"--{dest.replace('_', '-')} {v:g}" if isinstance(v, float) else f"--{dest.replace('_', '-')} {v}"
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError("must be a finite number", field=opt)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ConfigError(f"must be {_bounds(lo, hi)}", field=opt)
    port = getattr(args, "port", None)
    if port is not None:
        check_port(port)


def check_port(port: str) -> None:
    """A serial device path or a pyserial URL; socket:// needs HOST:PORT."""
    where = f"--port {port}"
    if not port.strip():
        raise ConfigError("empty (give /dev/ttyACM0 or socket://HOST:PORT)", field="--port")
    if "://" not in port:
        return                      # a device path: the link reports when it cannot open it
    scheme, rest = port.split("://", 1)
    if scheme not in PORT_SCHEMES:
        raise ConfigError(f"unknown URL scheme {scheme!r} (use a device path such as /dev/ttyACM0, "
                          f"or one of {', '.join(s + '://' for s in PORT_SCHEMES)})", field=where)
    if scheme in ("socket", "rfc2217"):
        host, _, num = rest.split("?", 1)[0].rpartition(":")
        if not host or not num.isdigit() or not 1 <= int(num) <= 65535:
            raise ConfigError(f"need {scheme}://HOST:PORT with PORT in 1..65535", field=where)


def _commands() -> Iterator[ModuleType]:
    from . import commands

    for m in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not m.name.startswith("_"):
            yield importlib.import_module(f"{commands.__name__}.{m.name}")


def _command_names() -> set[str]:
    from . import commands

    return {m.name for m in pkgutil.iter_modules(commands.__path__)}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="spikeboard",
        description="Drive, model and measure an integrated neuromorphic chip: firmware, "
                    "bit-exact chip model, on-chip learning and per-op energy.")
    parser.add_argument("--version", action="version", version=f"spikeboard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for mod in _commands():
        p = mod.register(sub)
        p.set_defaults(_run=mod.run, _limits=getattr(mod, "LIMITS", {}))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as e:
        argv = sys.argv[1:] if argv is None else argv
        debug = "--debug" in argv
        if debug:
            traceback.print_exc()
        cmd = next((a for a in argv if not a.startswith("-")), None)
        print(f"spikeboard{' ' + cmd if cmd in _command_names() else ''}: error: {e}", file=sys.stderr)
        return 1
    try:
        check_options(args, args._limits)
        result = args._run(args)
    except SpikeboardError as e:
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"spikeboard {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"spikeboard {args.command}: interrupted", file=sys.stderr)
        return 1
    except OSError as e:  # a file or device the user named cannot be read or written
        if getattr(args, "debug", False):
            traceback.print_exc()
        where = f"{e.filename}: " if e.filename else ""
        print(f"spikeboard {args.command}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    except Exception as e:  # a bug: one line unless --debug
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"spikeboard {args.command}: internal error: {type(e).__name__}: {e} (rerun with --debug)",
              file=sys.stderr)
        return 1
    emit(args, result)
    return 0


def emit(args: argparse.Namespace, result: Any) -> None:
    """Print a command's result: with --json its as_dict() after schema_version
    and command (and its text), else its text. None prints nothing."""
    if result is None:
        return
    fields, text = result.as_dict(), result.text
    if getattr(args, "json", False):
        doc = {"schema_version": SCHEMA_VERSION, "command": args.command, **fields}
        if text is not None:
            doc["text"] = text
        print(json.dumps(doc, default=_jsonable))
    elif text is not None:
        print(text)


def _jsonable(o: Any) -> Any:
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
