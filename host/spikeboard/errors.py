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

    return {getattr(lib, n): n for n in dir(lib) if n.startswith("SB_E") and n != "SB_ECOUNT"}


_MEANING = {
    "SB_EINVAL": "argument out of its range",
    "SB_ERANGE": "index out of the array",
    "SB_ECONFIG": "parameter block invalid or chip not configured",
    "SB_ECRC": "frame CRC mismatch",
    "SB_EFRAME": "malformed frame",
    "SB_EOVERSIZE": "frame too long",
    "SB_ECMD": "unknown or unsupported command",
    "SB_ELEN": "payload length wrong for the command",
    "SB_EOVERFLOW": "event ring overflowed",
    "SB_EVERIFY": "write-verify failed",
    "SB_ESTATE": "command not allowed in this state",
    "SB_EPROTO": "protocol version mismatch",
}


def code_name(code: int) -> str:
    return _code_names().get(code, f"error {code}")


def describe(code: int) -> str:
    name = code_name(code)
    return f"{name} ({_MEANING.get(name, 'unknown error')})"


def check(rc: int, what: str, detail: int = 0) -> int:
    """Turn a negative C return code into a DeviceError naming the operation."""
    if rc < 0:
        extra = f", detail {detail}" if detail else ""
        raise DeviceError(f"{what}: {describe(rc)}{extra}", rc, detail)
    return rc
