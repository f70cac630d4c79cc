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
    out = render(run)
    result = json.loads((run / "result.json").read_text())
    return {**result, "report": str(out), "text": f"{out}"}
