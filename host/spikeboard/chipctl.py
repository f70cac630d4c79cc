"""Opening a configured chip from CLI-style options: backend + card + geometry."""
from __future__ import annotations

from dataclasses import dataclass

from . import cards
from .backends import Backend, open_backend


@dataclass(frozen=True)
class ChipSpec:
    backend: str = "model"
    port: str | None = None
    board: str = "netduinoplus2"
    card: str = "spec"
    geometry: str | None = None
    seed: int = 0
    stuck: float = 0.0

    @classmethod
    def from_args(cls, args) -> "ChipSpec":
        return cls(args.backend, args.port, args.board, args.card, args.geometry, args.seed,
                   getattr(args, "stuck", 0.0) or 0.0)


def open_chip(spec: ChipSpec, *, differential=None, neuron: dict | None = None) -> tuple[Backend, cards.Card]:
    """Open the backend and configure it from the card; returns (backend, card)."""
    card = cards.load(spec.card)
    params = cards.compile_card(card, spec.geometry, seed=spec.seed, stuck=spec.stuck,
                                differential=differential, neuron=neuron)
    b = open_backend(spec.backend, port=spec.port, board=spec.board)
    try:
        b.configure(params)
    except Exception:
        b.close()
        raise
    return b, card
