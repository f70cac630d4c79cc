"""spikeboard cards: list, show and validate device cards."""
from __future__ import annotations

from .. import cards as cardlib


def register(sub, common):
    p = sub.add_parser("cards", help="device cards: list, show, validate",
                       description="Device cards describe one chip (TOML). list: the built-in cards; "
                                   "show: a card's fields and its compiled parameter block; validate: "
                                   "check a card file and name the first bad field.")
    s = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    out = [common["out"]]   # so --json also works after the action
    s.add_parser("list", help="built-in cards", parents=out)
    sh = s.add_parser("show", help="a card and its compiled parameters", parents=out)
    sh.add_argument("card")
    sh.add_argument("--geometry", choices=tuple(cardlib.GEOMETRIES), default=None)
    v = s.add_parser("validate", help="check card files", parents=out)
    v.add_argument("card", nargs="+")
    f = s.add_parser("fit", help="fit a card from measured CSV files (docs/csv-format.md)", parents=out,
                     description="Fit a device card from pd.csv, retention.csv, endurance.csv and/or neuron.csv "
                                 "in --data (format: docs/csv-format.md). Fields that no file measures come "
                                 "from --base. Writes the card and a figure, prints the fit report.")
    f.add_argument("--data", required=True, help="directory of measured CSV files")
    f.add_argument("--mode", choices=("exponential", "table"), default="exponential")
    f.add_argument("--base", default="spec", help="card for unmeasured fields (default %(default)s)")
    f.add_argument("--name", default=None, help="card name (default fit-<data dir>)")
    f.add_argument("--output", "-o", default=None, help="card file to write (default DATA/<name>.toml)")
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
    if args.action == "fit":
        from ..fit import fit_card

        r = fit_card(args.data, base=args.base, mode=args.mode, name=args.name, out=args.output)
        return {**r.as_dict(), "text": r.text()}
    ok = []
    for f in args.card:
        c = cardlib.load(f)
        cardlib.compile_card(c)
        ok.append(str(f))
    return {"valid": ok, "text": "\n".join(f"{f}: valid" for f in ok)}
