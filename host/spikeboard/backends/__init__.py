"""Backends: one interface (base.Backend), three ways to reach a chip."""
from __future__ import annotations

from ..errors import ConfigError
from .base import Backend, BoardInfo, Counters, ProgramResult, TrainResult

NAMES = ("model", "emulator", "serial")


def open_backend(name: str, *, port: str | None = None, board: str = "netduinoplus2", **kw) -> Backend:
    """Open a backend by name. serial needs a port URL; emulator starts QEMU
    unless a port URL of a running emulator is given."""
    faults = kw.pop("faults", None)
    if faults and name == "model":
        links = " or ".join(n for n in NAMES if n != "model")   # the CLI's choices (inproc is for tests)
        raise ConfigError(f"--faults needs a link: use --backend {links}")
    if faults:
        kw["faults"] = faults
    if name == "model":
        from .model import ModelBackend

        return ModelBackend()
    if name == "inproc":   # the firmware's command server in process, over the whole wire protocol
        from .inproc import InprocBackend

        return InprocBackend(timeout=0.05, retries=5, **kw)
    if name == "serial":
        if not port:
            raise ConfigError("--backend serial needs --port (e.g. /dev/ttyACM0 or socket://host:port)")
        from .remote import RemoteBackend

        return RemoteBackend(port, **kw)
    if name == "emulator":
        from .emulated import EmulatorBackend

        return EmulatorBackend(board=board, url=port, **kw)
    raise ConfigError(f"unknown backend {name!r} (one of {', '.join(NAMES)})")


__all__ = ["Backend", "BoardInfo", "Counters", "ProgramResult", "TrainResult", "open_backend", "NAMES"]
