"""spikeboard info: what is connected."""
from __future__ import annotations

from dataclasses import asdict

from ..chip import ChipSpec, open_chip
from ..energy import energy_report, format_report


def register(sub, common):
    p = sub.add_parser("info", parents=[common["chip"], common["out"]],
                       help="what is connected: firmware, board, geometry, card, counters",
                       description="Connect to the backend, configure it with the card and show the "
                                   "firmware version, board, geometry, card hash and counters.")
    return p


def run(args):
    chip = open_chip(ChipSpec.from_args(args))
    b, card = chip.backend, chip.card
    with b:
        info = b.info()
        c = b.counters()
        e = energy_report(b.params, c)
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
    return {"info": asdict(info), "layout": chip.layout.as_dict(), "card": card.name, "counters": c.as_dict(), "text": text}
