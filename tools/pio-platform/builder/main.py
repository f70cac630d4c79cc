# Builder of the local "spikeboard-arm" platform: bare-metal Cortex-M4F with
# the arm-none-eabi-gcc found on PATH. Project flags (warnings, -std, defines,
# sources) live in platformio.ini; this file only sets the toolchain, the
# machine flags that every object must share, the link and the upload.
import shutil
import sys
from os.path import join

from SCons.Script import (  # pylint: disable=import-error
    COMMAND_LINE_TARGETS,
    AlwaysBuild,
    Builder,
    Default,
    DefaultEnvironment,
)

env = DefaultEnvironment()
board = env.BoardConfig()

# The platform has no uploader package, so PlatformIO treats it as "native"
# and would name the program "program": name it firmware.elf/.bin.
if env.get("PROGNAME", "program") == "program":
    env.Replace(PROGNAME="firmware")

PREFIX = "arm-none-eabi-"
if not shutil.which(PREFIX + "gcc"):
    sys.stderr.write(
        "Error: %sgcc not found on PATH. Install it with:\n"
        "  apt-get install -y --no-install-recommends gcc-arm-none-eabi "
        "libnewlib-arm-none-eabi\n" % PREFIX
    )
    env.Exit(1)

env.Replace(
    AR=PREFIX + "gcc-ar",
    AS=PREFIX + "as",
    CC=PREFIX + "gcc",
    CXX=PREFIX + "g++",
    GDB="gdb-multiarch",
    OBJCOPY=PREFIX + "objcopy",
    RANLIB=PREFIX + "gcc-ranlib",
    SIZETOOL=PREFIX + "size",
    ARFLAGS=["rc"],
    SIZEPROGREGEXP=r"^(?:\.isr_vector|\.text|\.data|\.rodata|\.ARM\.exidx|\.init_array)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss|\.noinit)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
    PROGSUFFIX=".elf",
)

# Machine flags: identical for compile, assemble and link (hard-float ABI).
MACHINE = [
    "-mcpu=%s" % board.get("build.cpu", "cortex-m4"),
    "-mthumb",
    "-mfloat-abi=hard",
    "-mfpu=fpv4-sp-d16",
]

env.Append(
    ASFLAGS=MACHINE,
    ASPPFLAGS=MACHINE + ["-x", "assembler-with-cpp"],
    CCFLAGS=MACHINE + ["-ffunction-sections", "-fdata-sections", "-g"],
    LINKFLAGS=MACHINE
    + [
        "-nostartfiles",  # firmware/src/startup.c owns the vector table and reset
        "--specs=nano.specs",
        "-Wl,--gc-sections",
        "-Wl,-Map,${BUILD_DIR}/firmware.map",
        "-Wl,--print-memory-usage",
    ],
    LIBS=["c_nano", "gcc", "nosys"],
    BUILDERS=dict(
        ElfToBin=Builder(
            action=env.VerboseAction(
                " ".join(["$OBJCOPY", "-O", "binary", "$SOURCES", "$TARGET"]),
                "Building $TARGET",
            ),
            suffix=".bin",
        ),
        ElfToHex=Builder(
            action=env.VerboseAction(
                " ".join(["$OBJCOPY", "-O", "ihex", "$SOURCES", "$TARGET"]),
                "Building $TARGET",
            ),
            suffix=".hex",
        ),
    ),
)

# The linker script path comes from board_build.ldscript (platformio.ini).

target_elf = None
if "nobuild" in COMMAND_LINE_TARGETS:
    target_elf = join("$BUILD_DIR", "${PROGNAME}.elf")
    target_firm = join("$BUILD_DIR", "${PROGNAME}.bin")
else:
    target_elf = env.BuildProgram()
    target_firm = env.ElfToBin(join("$BUILD_DIR", "${PROGNAME}"), target_elf)
    env.Depends(target_firm, "checkprogsize")

AlwaysBuild(env.Alias("nobuild", target_firm))
target_buildprog = env.Alias("buildprog", target_firm, target_firm)

target_size = env.Alias(
    "size", target_elf, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE")
)
AlwaysBuild(target_size)

# Upload. openocd (default for the lab board) or st-flash (stlink).
upload_protocol = env.subst("$UPLOAD_PROTOCOL") or board.get("upload.protocol", "none")
if upload_protocol == "openocd":
    openocd_target = board.get("upload.openocd_target", "stm32f4x")
    env.Replace(
        UPLOADER="openocd",
        UPLOADERFLAGS=[
            "-f", "interface/stlink.cfg",
            "-f", "target/%s.cfg" % openocd_target,
            "-c", "program {$SOURCE} verify reset exit",
        ],
        UPLOADCMD="$UPLOADER $UPLOADERFLAGS",
    )
    upload_source = target_elf
elif upload_protocol == "stlink":
    env.Replace(
        UPLOADER="st-flash",
        UPLOADERFLAGS=["--reset", "write"],
        UPLOADCMD="$UPLOADER $UPLOADERFLAGS $SOURCE 0x08000000",
    )
    upload_source = target_firm
else:
    env.Replace(
        UPLOADCMD='echo "$PIOENV is an emulator board: nothing to upload. '
        'Run it with host/spikeboard/emulator.py (QEMU)."'
    )
    upload_source = target_elf


def _check_uploader(target, source, env):  # pylint: disable=unused-argument
    tool = env.subst("$UPLOADER")
    if tool and not shutil.which(tool):
        sys.stderr.write(
            "Error: upload tool '%s' not found on PATH (apt-get install %s)\n"
            % (tool, "openocd" if tool == "openocd" else "stlink-tools")
        )
        env.Exit(1)


AlwaysBuild(
    env.Alias(
        "upload",
        upload_source,
        [
            env.VerboseAction(_check_uploader, "Looking for $UPLOADER"),
            env.VerboseAction("$UPLOADCMD", "Uploading $SOURCE"),
        ],
    )
)

Default([target_buildprog, target_size])
