# PlatformIO pre: script (platformio.ini extra_scripts). For `pio test` only:
# the on-target firmware tests link the firmware modules (firmware/src minus
# main.c, firmware/port/<board>) but not hal/src; hal/ is unit-tested on the
# host through cffi, and `pio run` still compiles it for the target with the
# same flags. A normal build is left untouched.
Import("env")  # noqa: F821  (SCons injects Import)

if "test" in env.GetBuildType():  # noqa: F821
    flt = env.get("SRC_FILTER") or []  # noqa: F821
    if isinstance(flt, str):
        flt = [flt]
    env.Replace(SRC_FILTER=list(flt) + ["-<hal/src/>", "-<firmware/src/main.c>"])  # noqa: F821

# Every build: the hal/ source identity, reported by HELLO (see tools/hal_id.py).
import os, sys  # noqa: E401,E402
sys.path.insert(0, os.path.join(env.subst("$PROJECT_DIR"), "tools"))  # noqa: F821
from hal_id import hal_id  # noqa: E402
from pathlib import Path  # noqa: E402

env.Append(CPPDEFINES=[("SB_HAL_ID", "0x%08xu" % hal_id(Path(env.subst("$PROJECT_DIR")) / "hal"))])  # noqa: F821
