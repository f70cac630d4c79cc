# Local dev platform "spikeboard-arm". PlatformIO derives the class name from
# the platform name: "spikeboard-arm" -> "SpikeboardarmPlatform".
#
# No toolchain/uploader packages are declared: the compiler comes from PATH,
# so PlatformIO never tries to install anything. As a side effect PlatformIO
# treats the platform as "not embedded" (no uploader package), which is what
# `pio test` needs here: it builds, skips the upload stage and runs
# `test_testing_command` (QEMU) directly. `pio run -t upload` is still wired
# in builder/main.py (openocd / st-flash).
from platformio.public import PlatformBase


class SpikeboardarmPlatform(PlatformBase):
    pass
