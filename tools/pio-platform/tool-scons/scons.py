# Shim for PlatformIO's tool-scons package. PlatformIO runs
#   <python> <tool-scons>/scons.py --sconstruct .../builder/main.py ...
# with the venv's python; SCons itself comes from pip (scons==4.11.1).
import sys

try:
    import SCons.Script
except ImportError:  # pragma: no cover - set-up error
    sys.stderr.write(
        "tool-scons shim: SCons is not importable from %s; run tools/setup-pio.sh\n"
        % sys.executable
    )
    sys.exit(2)

if __name__ == "__main__":
    SCons.Script.main()
