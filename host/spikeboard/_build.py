"""cffi builder: compiles hal/ (the same .c files as the firmware) into
spikeboard._hal in out-of-line API mode.

The cdef is generated from hal/include/sb/*.h so that no struct, constant or
prototype is retyped in Python: preprocessor lines and static assertions are
dropped, integer #defines are evaluated and substituted, and cffi reads every
constant's value back from the C compiler."""
from __future__ import annotations

import os
import re
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent


def _hal_root() -> Path:
    for cand in (HERE.parent.parent / "hal", HERE / "_hal_src"):
        if (cand / "include" / "sb").is_dir():
            return cand
    raise RuntimeError("hal/ sources not found next to the spikeboard package")


HAL = _hal_root()
HEADERS = ["config.h", "errors.h", "params.h", "port.h", "rng.h", "proto.h", "chip.h",
           "dev.h", "tile.h", "learn.h", "server.h"]

_DEFINE = re.compile(r"^\s*#\s*define\s+(SB_\w+)\s+(.+?)\s*(?:/\*.*)?$")


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _eval_int(expr: str, values: dict[str, int]) -> int | None:
    e = re.sub(r"\b(\d+)[uUlL]+\b", r"\1", expr)
    e = re.sub(r"\b(0x[0-9a-fA-F]+)[uUlL]+\b", r"\1", e)
    e = re.sub(r"\b(SB_\w+)\b", lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), e)
    if re.search(r"[A-Za-z_]", e.replace("0x", "")):
        return None
    try:
        v = eval(e.replace("/", "//"), {"__builtins__": {}})  # noqa: S307 - integer arithmetic only
    except Exception:
        return None
    return v if isinstance(v, int) else None


def make_cdef() -> str:
    values: dict[str, int] = {}
    opaque: set[str] = set()
    bodies = []
    for name in HEADERS:
        text = _strip_comments((HAL / "include" / "sb" / name).read_text())
        for line in text.splitlines():
            m = _DEFINE.match(line)
            if m and not m.group(1).endswith("_H"):
                v = _eval_int(m.group(2), values)
                if v is None:
                    if not m.group(2).startswith('"'):
                        opaque.add(m.group(1))
                else:
                    values[m.group(1)] = v
        body = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))
        body = re.sub(r"_Static_assert\s*\(.*?\)\s*;", "", body, flags=re.S)
        bodies.append(body)
    src = "\n".join(bodies)

    def subst(m: re.Match) -> str:
        n = m.group(1)
        if n in values:
            return str(values[n])
        if n in opaque:
            return "..."
        return n

    src = re.sub(r"\b(SB_[A-Z0-9_]+)\b(?!\s*=)", subst, src)
    # set by the build, so only cffi can know its value
    opaque |= {"SB_HAL_ID"}
    values.pop("SB_HAL_ID", None)
    defines = "\n".join(f"#define {n} {v}" if 0 <= v < 2**31 else f"#define {n} ..." for n, v in values.items())
    opaque_defs = "\n".join(f"#define {n} ..." for n in sorted(opaque))
    return defines + "\n" + opaque_defs + "\n" + src


# The extension is built on the machine that runs it (pip builds from source),
# so it may use that CPU's vector units; the arithmetic is integer, so the bits
# do not depend on it. SB_PORTABLE=1 builds for the baseline instruction set.
_ARCH = [] if os.environ.get("SB_PORTABLE") else ["-march=native"]

def _hal_id() -> int:
    import sys

    tools = HAL.parent / "tools"
    sys.path.insert(0, str(tools))
    try:
        from hal_id import hal_id
    finally:
        sys.path.remove(str(tools))
    return hal_id(HAL)


ffibuilder = FFI()
ffibuilder.cdef(make_cdef())
_sources = sorted(str(p.relative_to(Path.cwd())) if p.is_relative_to(Path.cwd()) else str(p)
                  for p in (HAL / "src").glob("*.c"))
ffibuilder.set_source(
    "spikeboard._hal",
    "\n".join(f'#include "sb/{h}"' for h in HEADERS),
    sources=_sources,
    include_dirs=[str(HAL / "include")],
    define_macros=[("SB_HAL_ID", f"0x{_hal_id():08x}u")],
    extra_compile_args=["-std=c99", "-O3", "-Wall", "-Wno-unused-function"] + _ARCH
    + (["-fsanitize=address,undefined", "-fno-omit-frame-pointer"] if os.environ.get("SB_SANITIZE") else []),
    extra_link_args=(["-fsanitize=address,undefined"] if os.environ.get("SB_SANITIZE") else []),
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
