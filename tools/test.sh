#!/usr/bin/env bash
# Every test of the project, after installing what they need (tools/setup.sh).
# .ci/run calls exactly this. Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
tools/setup.sh
export PLATFORMIO_SETTING_ENABLE_TELEMETRY=No
echo "[test] on-target unit tests in QEMU (pio test -e netduinoplus2)"
.venv/bin/pio test -e netduinoplus2
# pio test leaves its test image in the env's build folder: put the firmware back
.venv/bin/pio run -s -e netduinoplus2
echo "[test] pytest"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
