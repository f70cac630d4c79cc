#!/usr/bin/env bash
# Offline PlatformIO set-up for the spikeboard firmware. Idempotent.
#   tools/setup-pio.sh          venv + PlatformIO core dir (.pio-core) links
#   tools/setup-pio.sh --apt    also apt-get the ARM toolchain and QEMU if missing
# Afterwards (from the repo root):
#   .venv/bin/pio run -e netduinoplus2 -e nucleo_f446re
#   .venv/bin/pio test -e netduinoplus2
# Nothing is downloaded by PlatformIO: the dev platform is tools/pio-platform
# (symlink://), the compiler is arm-none-eabi-gcc from PATH, and tool-scons is
# a shim (tools/pio-platform/tool-scons) over the pip-installed SCons, linked
# into .pio-core/packages through a .pio-link with owner "platformio" (without
# the owner PlatformIO would not match it and would try to download it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
CORE="$ROOT/.pio-core"      # = [platformio] core_dir in platformio.ini
PIO_VERSION=6.2.0
SCONS_VERSION=4.11.1
export PLATFORMIO_SETTING_ENABLE_TELEMETRY=No

if [[ "${1:-}" == "--apt" ]]; then
    need=()
    command -v arm-none-eabi-gcc >/dev/null || need+=(gcc-arm-none-eabi libnewlib-arm-none-eabi)
    command -v qemu-system-arm >/dev/null || need+=(qemu-system-arm)
    if ((${#need[@]})); then
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
    fi
fi

# 1. venv with PlatformIO, SCons and pyserial (pinned).
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
fi
have() { "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('$1') != '$2')" 2>/dev/null; }
if ! have platformio "$PIO_VERSION" || ! have scons "$SCONS_VERSION" || ! have pyserial "$("$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('pyserial'))" 2>/dev/null || echo none)"; then
    "$VENV/bin/pip" install -q "platformio==$PIO_VERSION" "scons==$SCONS_VERSION" pyserial
fi

# 2. tool-scons: link the local shim into the core dir.
mkdir -p "$CORE/packages" "$CORE/platforms"
"$VENV/bin/python" - "$CORE/packages/tool-scons.pio-link" "$ROOT/tools/pio-platform/tool-scons" <<'PY'
import json, sys
link, target = sys.argv[1], sys.argv[2]
data = {
    "cwd": target,
    "spec": {"owner": "platformio", "id": None, "name": "tool-scons",
             "requirements": None, "uri": "symlink://" + target},
}
try:
    with open(link) as fp:
        if json.load(fp) == data:
            sys.exit(0)
except (OSError, ValueError):
    pass
with open(link, "w") as fp:
    json.dump(data, fp)
print("linked tool-scons ->", target)
PY

# 3. Settings: no telemetry, no upgrade checks (offline).
"$VENV/bin/pio" settings set enable_telemetry No >/dev/null
"$VENV/bin/pio" settings set check_platformio_interval 36500 >/dev/null

# 4. Toolchain and emulator are system packages.
missing=0
for tool in arm-none-eabi-gcc qemu-system-arm; do
    if ! command -v "$tool" >/dev/null; then
        echo "missing: $tool (run tools/setup-pio.sh --apt, or apt-get install -y --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)" >&2
        missing=1
    fi
done
echo "PlatformIO ready: core dir $CORE"
exit $missing
