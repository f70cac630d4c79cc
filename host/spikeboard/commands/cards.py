"""spikeboard cards: device cards: list, show, validate, fit.

Device cards describe one chip (TOML). list: the built-in cards; show: a
card's fields and its compiled parameter block; validate: check a card file
and name the first bad field; fit: a card from measured CSV files."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from .. import cards as cardlib
from ..fit import FitReport
from ._options import Subparsers, add_actions, add_command
from ._result import Record


@dataclass(frozen=True)
class CardList:
    cards: tuple[tuple[str, str], ...]      # (name, description) of each built-in card

    def as_dict(self) -> dict[str, Any]:
        return {"cards": [n for n, _ in self.cards]}

    @property
    def text(self) -> str:
        return "\n".join(f"{n:18s} {d}" for n, d in self.cards)


@dataclass(frozen=True)
class CardShow(Record):
    card: str
    data: dict[str, Any]                    # the card's sections as loaded (defaults filled)
    linearity: float                        # noise-free branch curves, docs/spec.md definitions
    symmetry: float
    text: str


@dataclass(frozen=True)
class CardsValid:
    valid: tuple[str, ...]                  # the files that loaded and compiled

    def as_dict(self) -> dict[str, Any]:
        return {"valid": list(self.valid)}

    @property
    def text(self) -> str:
        return "\n".join(f"{f}: valid" for f in self.valid)


def register(sub: Subparsers) -> argparse.ArgumentParser:
    p = add_command(sub, "cards", doc=__doc__, groups=())
    s = add_actions(p)
    out = ("out",)   # on each action, so --json also works after it
    add_command(s, "list", groups=out, help="built-in cards")
    sh = add_command(s, "show", groups=out, help="a card and its compiled parameters")
    sh.add_argument("card")
    sh.add_argument("--geometry", choices=tuple(cardlib.GEOMETRIES), default=None)
    v = add_command(s, "validate", groups=out, help="check card files")
    v.add_argument("card", nargs="+")
    f = add_command(s, "fit", groups=out, help="fit a card from measured CSV files (docs/csv-format.md)",
                    description="Fit a device card from pd.csv, retention.csv, endurance.csv and/or neuron.csv "
                                "in --data (format: docs/csv-format.md). Fields that no file measures come "
                                "from --base. Writes the card and a figure, prints the fit report.")
    f.add_argument("--data", required=True, help="directory of measured CSV files")
    f.add_argument("--mode", choices=("exponential", "table"), default="exponential")
    f.add_argument("--base", default="spec", help="card for unmeasured fields (default %(default)s)")
    f.add_argument("--name", default=None, help="card name (default fit-<data dir>)")
    f.add_argument("--output", "-o", default=None, help="card file to write (default DATA/<name>.toml)")
    return p


def show(name: str, geometry: str | None) -> CardShow:
    """A card's fields, its branch curves' linearity and symmetry and its compiled block."""
    from ..metrics import linearity, symmetry

    c = cardlib.load(name)
    p = cardlib.compile_card(c, geometry)
    up, down = c.branch_curves()
    lin = min(linearity(up, 0, 1), linearity(down, 0, 1))
    sym = symmetry(up, down, 0, 1)
    lines = [f"card {c.name}: {c['card']['description']}", f"  source: {c['card']['source']}",
             f"  file:   {c.path}"]
    for sec, kv in c.data.items():
        if sec == "card":
            continue
        lines.append(f"[{sec}]")
        lines += [f"  {k} = {v!r}" for k, v in kv.items() if not (isinstance(v, list) and not v)]
    lines.append(f"branch curves: linearity {100 * lin:.1f} %, symmetry {100 * sym:.1f} % (noise-free)")
    lines.append(f"compiled: {p.rows}x{p.cols}x{p.layers}, G codes {p.g_min}..{p.g_max}, "
                 f"post gain {p.post_gain}>>{p.post_shift}, v_th {p.v_th}")
    return CardShow(c.name, c.data, lin, sym, "\n".join(lines))


def run(args: argparse.Namespace) -> CardList | CardShow | CardsValid | FitReport:
    if args.action == "list":
        return CardList(tuple((n, cardlib.load(n)["card"]["description"]) for n in cardlib.list_cards()))
    if args.action == "show":
        return show(args.card, args.geometry)
    if args.action == "fit":
        from ..fit import fit_card

        return fit_card(args.data, base=args.base, mode=args.mode, name=args.name, out=args.output)
    for f in args.card:
        cardlib.compile_card(cardlib.load(f))
    return CardsValid(tuple(str(f) for f in args.card))
