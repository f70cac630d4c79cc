"""spikeboard cards: list, show and validate device cards."""
from __future__ import annotations

from .. import cards as cardlib


def register(sub, common):
    p = sub.add_parser("cards", parents=[common["out"]], help="device cards: list, show, validate",
                       description="Device cards describe one chip (TOML). list: the built-in cards; "
                                   "show: a card's fields and its compiled parameter block; validate: "
                                   "check a card file and name the first bad field.")
    s = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    s.add_parser("list", help="built-in cards")
    sh = s.add_parser("show", help="a card and its compiled parameters")
    sh.add_argument("card")
    sh.add_argument("--geometry", choices=tuple(cardlib.GEOMETRIES), default=None)
    v = s.add_parser("validate", help="check card files")
    v.add_argument("card", nargs="+")
    return p


def run(args):
    if args.action == "list":
        rows = [(n, cardlib.load(n)["card"]["description"]) for n in cardlib.list_cards()]
        return {"cards": [n for n, _ in rows], "text": "\n".join(f"{n:18s} {d}" for n, d in rows)}
    if args.action == "show":
        c = cardlib.load(args.card)
        p = cardlib.compile_card(c, args.geometry)
        from ..metrics import linearity, symmetry

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
        return {"card": c.name, "data": c.data, "linearity": lin, "symmetry": sym, "text": "\n".join(lines)}
    ok = []
    for f in args.card:
        c = cardlib.load(f)
        cardlib.compile_card(c)
        ok.append(str(f))
    return {"valid": ok, "text": "\n".join(f"{f}: valid" for f in ok)}
