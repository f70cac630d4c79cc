"""What a command returns: a frozen dataclass whose `as_dict()` is its one JSON
form (`spikeboard CMD --json` prints it after `schema_version` and `command`)
and whose `text` is the plain output."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Result(Protocol):
    """Anything cli.main can print: the JSON fields and the plain text."""

    @property
    def text(self) -> str: ...

    def as_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Record:
    """Base of a command's result whose JSON form is its fields in order, but
    `text` (a field or property: cli.emit adds it). Values that are not JSON
    themselves go through cli's encoder (numpy arrays and numbers, objects
    with as_dict)."""

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "text"}
