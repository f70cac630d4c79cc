"""spikeboard info: what is connected: firmware, board, geometry, layout, card, counters.

Connect to the backend, configure it with the card and show the firmware
version, board, geometry, layout, card hash and counters."""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from typing import Any

from ..chip import ChipSpec, open_chip
from ..energy import energy_report, format_report
from ._options import Subparsers, add_command
from ._result import Record


@dataclass(frozen=True)
class InfoResult(Record):
    info: dict[str, Any]            # the backend's BoardInfo
    layout: dict[str, Any]          # chip.Layout.as_dict()
    card: str
    counters: dict[str, int]
    text: str


def register(sub: Subparsers) -> argparse.ArgumentParser:
    return add_command(sub, "info", doc=__doc__)


def run(args: argparse.Namespace) -> InfoResult:
    with open_chip(ChipSpec.from_args(args)) as chip:
        b, card = chip.backend, chip.card
        info = b.info()
        c = b.counters()
        e = energy_report(chip.params, c)
    text = "\n".join([
        f"backend   {info.backend}",
        f"board     {info.board}",
        f"firmware  {info.firmware} (protocol {info.proto})",
        f"geometry  {info.rows}x{info.cols}x{info.layers}",
        f"layout    {chip.layout.describe()}",
        f"card      {card.name} ({card.path}), parameter block CRC-32 {info.card_hash:08x}",
        f"counters  {c.as_dict()}",
        format_report(e),
    ])
    return InfoResult(asdict(info), chip.layout.as_dict(), card.name, c.as_dict(), text)
