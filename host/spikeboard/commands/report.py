"""spikeboard report: render a run's report again."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError


def register(sub, common):
    p = sub.add_parser("report", parents=[common["out"]], help="render a run's report again",
                       description="Re-render report.html and the figures of a run folder from its files.")
    p.add_argument("run", help="run folder")
    return p


def run(args):
    from ..report import render

    run = Path(args.run)
    if not run.is_dir():
        raise ConfigError(f"{run}: no such run folder")
    rj = run / "result.json"
    if not rj.is_file():
        raise ConfigError(f"{run}: not a finished run (result.json missing)")
    try:
        result = json.loads(rj.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"not valid JSON ({e})", file=rj) from None
    if not isinstance(result, dict):
        raise ConfigError(f"must hold a JSON object, got {type(result).__name__}", file=rj)
    out = render(run)
    return {**result, "report": str(out), "text": f"{out}"}
