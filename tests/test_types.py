"""The type checker over the host package: mypy, configured in pyproject.toml."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_passes_over_host_package():
    r = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary", "--config-file",
                        str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, f"mypy found type errors:\n{r.stdout}{r.stderr}"
