"""Backends: one interface (base.Backend), three ways to reach a chip."""
from __future__ import annotations

from ..errors import ConfigError
from .base import Backend, BoardInfo, Counters, ProgramResult, TrainResult

NAMES = ("model", "emulator", "serial")


def open_backend(name: str, *, port: str | None = None, board: str = "netduinoplus2", **kw) -> Backend:
    """Open a backend by name. serial needs a port URL; emulator starts QEMU
    unless a port URL of a running emulator is given."""
    if name == "model":
        from .model import ModelBackend

        return ModelBackend()
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
