#!/usr/bin/env bash
# The demo: install what is needed (tools/setup.sh), then a short on-device
# training session of the digits application on the emulated board (the real
# firmware in QEMU), its inference accuracy, energy report and plots.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
tools/setup.sh
RUN="runs/demo-$(date +%Y%m%d-%H%M%S)"
echo "[demo] training digits on the emulated board -> $RUN"
.venv/bin/spikeboard train --app digits --backend emulator --epochs 2 --train-limit 400 --test-limit 150 \
    --out "$RUN" "$@"
echo "[demo] inference with the trained weights on a fresh emulated board"
.venv/bin/spikeboard infer --app digits --backend emulator --test-limit 150 --run "$RUN" --out "$RUN-infer"
echo "[demo] report: $ROOT/$RUN/report.html (figures: accuracy.png raster.png conductance.png energy.png)"
