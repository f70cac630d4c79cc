"""One exception tree for the whole package; C error codes map onto it."""
from __future__ import annotations


class SpikeboardError(Exception):
    """Base of every error spikeboard raises on purpose."""


class ConfigError(SpikeboardError):
    """A device card, parameter block, data file or argument is invalid.

    Bad input is reported on one line that names where the problem is:
    ConfigError(msg, file=path, field=where) reads "path: where: msg" (field is a
    card field such as [synapse.c2c], a data array such as X, a CSV position such
    as "line 7, column 3 (g_us)", or an option such as --geometry)."""

    def __init__(self, message: str, *, file=None, field: str | None = None):
        self.file = None if file is None else str(file)
        self.field = field
        prefix = "".join(f"{p}: " for p in (self.file, field) if p)
        super().__init__(prefix + message)


class LinkError(SpikeboardError):
    """The link to the board failed: timeout, broken frames, lost board."""


class DeviceError(SpikeboardError):
    """The board or chip model refused a request; carries the C error code."""

    def __init__(self, message: str, code: int = 0, detail: int = 0):
        super().__init__(message)
        self.code = code
        self.detail = detail


def _code_names() -> dict[int, str]:
    from ._hal import lib

    # the codes are the negative SB_E* constants (SB_ECOUNT, SB_EVENTS_PER_FRAME, ... are not codes)
    return {v: n for n in dir(lib) if n.startswith("SB_E") and (v := getattr(lib, n)) < 0} | {lib.SB_OK: "SB_OK"}


def code_name(code: int) -> str:
    return _code_names().get(code, f"error {code}")


def meaning(code: int) -> str:
    """What a C error code means, from hal's one table (sb_strerror, hal/src/errors.c)."""
    from ._hal import ffi, lib

    return ffi.string(lib.sb_strerror(code)).decode()


def describe(code: int) -> str:
    return f"{code_name(code)} ({meaning(code)})"


def check(rc: int, what: str, detail: int = 0) -> int:
    """Turn a negative C return code into a DeviceError naming the operation."""
    if rc < 0:
        extra = f", detail {detail}" if detail else ""
        raise DeviceError(f"{what}: {describe(rc)}{extra}", rc, detail)
    return rc
