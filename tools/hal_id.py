"""The hal/ source identity: CRC-32 over hal/include/sb/*.h and hal/src/*.{c,h}
in name order. Compiled into the firmware (PlatformIO pre-script) and into the
host extension (cffi builder) as SB_HAL_ID, so the host can tell a firmware
built from other hal/ sources (whose bits would differ) before it is used."""
from __future__ import annotations

import zlib
from pathlib import Path


def hal_id(hal: Path) -> int:
    files = sorted(list((hal / "include" / "sb").glob("*.h")) + list((hal / "src").glob("*.[ch]")),
                   key=lambda p: p.relative_to(hal).as_posix())
    crc = 0
    for f in files:
        crc = zlib.crc32(f.relative_to(hal).as_posix().encode(), crc)
        crc = zlib.crc32(f.read_bytes().replace(b"\r\n", b"\n"), crc)
    return crc


if __name__ == "__main__":
    print(f"0x{hal_id(Path(__file__).resolve().parents[1] / 'hal'):08x}")
