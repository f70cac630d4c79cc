"""spikeboard report: render a run's report again.

Re-render report.html and the figures of a run folder from its files."""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ._options import Subparsers, add_command


@dataclass(frozen=True)
class ReportResult:
    result: dict[str, Any]          # the run's result.json
    report: str                     # the report.html written

    def as_dict(self) -> dict[str, Any]:
        return {**self.result, "report": self.report}

    @property
    def text(self) -> str:
        return self.report


def register(sub: Subparsers) -> argparse.ArgumentParser:
    p = add_command(sub, "report", doc=__doc__, groups=("out",))
    p.add_argument("run", help="run folder")
    return p


def run(args: argparse.Namespace) -> ReportResult:
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
    return ReportResult(result, str(render(run)))
