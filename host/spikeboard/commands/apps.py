"""spikeboard apps: list the applications; report in-situ / ex-situ accuracy
and energy per application x geometry x card (docs/applications.md)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..apps.base import App
from ..apps.run import AppRun
from ..backends.base import RULES
from ..chip import LAYOUTS, ChipSpec
from ._options import Subparsers, add_actions, add_command
from ._result import Record

REPORT_CMD = "spikeboard apps report"
GEOMS = ("32x32", "16x16x3")
CARDS = ("spec", "rram-nonlinear", "ecram-linear")
APPS = ("digits", "spoken-digits", "activity", "breast-cancer")
SEEDS = (0, 1, 2)


def register(sub: Subparsers) -> argparse.ArgumentParser:
    p = add_command(sub, "apps", groups=(), help="applications: list, report, tiled",
                    description="Built-in applications (data that ships inside packages) and the "
                                "results table: in-situ and ex-situ accuracy, float baseline, energy "
                                "and TOPS/W per application x geometry x card.")
    s = add_actions(p)
    out = ("out",)   # on each action, so --json also works after it
    add_command(s, "list", groups=out, help="the applications, their encoders and why")
    r = add_command(s, "report", groups=out, help="run every application and write docs/applications.md")
    r.add_argument("--quick", action="store_true", help="1 seed, subsets of the data, fewer epochs (a smoke run)")
    r.add_argument("--apps", default=",".join(APPS), help="comma-separated (default %(default)s)")
    r.add_argument("--cards", default=",".join(CARDS))
    r.add_argument("--geometries", default=",".join(GEOMS))
    r.add_argument("--stuck", type=float, default=0.10, help="extra rows with this stuck fraction (0: none)")
    r.add_argument("--output", "-o", default="docs/applications.md", help="markdown file ('-': none)")
    r.add_argument("--seeds", default=None, help="comma-separated seeds (default 0,1,2; --quick: 0)")
    r.add_argument("--layout", choices=LAYOUTS, default="card",
                   help="weights on column pairs or single-ended columns (default: the card's)")
    r.add_argument("--train-limit", type=int, default=None, help="use only the first N training samples")
    r.add_argument("--test-limit", type=int, default=None, help="use only the first N test samples")
    r.add_argument("--epochs", type=int, default=None, help="epochs (default: the app's)")
    r.add_argument("--rule", choices=tuple(RULES), default=None, help="learning rule (default: the app's on the geometry)")
    t = add_command(s, "tiled", groups=out, help="a table app at full input width on a tiled layer, beside one tile",
                    description="Map a table app (ex situ, or learned on the chip with --insitu) onto a layer "
                                 "larger than one array: every feature on "
                                 "its own row (plus a bias row), the layer laid over a grid of tiles whose "
                                 "partial neuron inputs add up in the neuron bank. With --compare, the same "
                                 "app on one tile (features PCA-reduced to its rows) beside it.")
    t.add_argument("--app", default="mnist5k", help="a table app (default %(default)s)")
    t.add_argument("--card", default="spec")
    t.add_argument("--rows", type=int, default=None, help="layer rows (default: features + bias row)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--stuck", type=float, default=0.0, help="extra stuck-cell fraction")
    t.add_argument("--test-limit", type=int, default=None)
    t.add_argument("--compare", action="store_true", help="also run the app on one 32-row tile")
    t.add_argument("--insitu", action="store_true",
                   help="train on the chip (compensated rule, every tile learning its part) instead of ex situ")
    t.add_argument("--epochs", type=int, default=None, help="in-situ epochs (default: the app's)")
    return p


@dataclass(frozen=True)
class AppsList(Record):
    apps: list[dict[str, Any]]
    text: str


@dataclass(frozen=True)
class TiledReport(Record):
    app: str
    card: str
    seed: int
    runs: list[dict[str, Any]]
    text: str


@dataclass(frozen=True)
class AppsReport(Record):
    results: list[dict[str, Any]]
    firmware: dict[str, Any]
    text: str


def run(args: argparse.Namespace) -> Record:
    from ..apps import get_app, list_apps

    if args.action == "list":
        rows = []
        for n in list_apps():
            a = get_app(n)
            rows.append({"name": n, "description": a.description, "encoder": a.encoder, "steps": a.steps,
                         "rule": a.rule, "why": a.why})
        return AppsList(rows, "\n".join(f"{r['name']:15s} {r['encoder']:8s} {r['description']}" for r in rows))
    if args.action == "tiled":
        return tiled(args)
    return report(args)


def tiled(args: argparse.Namespace) -> TiledReport:
    from ..apps import get_app
    from ..apps.run import run_tiled
    from ..energy import energy_report

    app = get_app(args.app)
    kw: dict[str, Any] = dict(seed=args.seed, stuck=args.stuck, test_limit=args.test_limit, insitu=args.insitu,
                              epochs=args.epochs)
    runs = [run_tiled(app, args.card, rows=args.rows, **kw)]
    if args.compare:
        runs.append(run_tiled(app, args.card, rows=32, **kw))
    how = "in situ (compensated rule on the chip)" if args.insitu else "ex situ (write-verify)"
    out, lines = [], [f"{app.name} on card {args.card}, {how}, seed {args.seed}",
                      f"{'layer':>10s} {'tiles':>6s} {'accuracy %':>10s} {'baseline %':>10s} "
                      f"{'pJ/inference':>12s} {'TOPS/W mac':>10s}  features"]
    for r in runs:
        e = energy_report(r.params, r.infer_counters, macs_per_step=r.macs_per_step)
        pj = e.total_fj / r.test_samples / 1000
        d = {"mode": r.mode, "rows": r.rows, "cols": r.cols, "grid": list(r.grid), "tiles": r.grid[0] * r.grid[1],
             "accuracy": r.accuracy, "baseline": r.baseline, "test_samples": r.test_samples,
             "pj_per_inference": pj, "tops_per_w": e.tops_per_w, "features": r.features}
        out.append(d)
        base = "-" if r.baseline is None else f"{100 * r.baseline:.1f}"
        tops = e.tops_per_w["mac"]
        lines.append(f"{r.rows:>5d}x{r.cols:<4d} {d['tiles']:>6d} {100 * r.accuracy:>10.1f} {base:>10s} "
                     f"{pj:>12.2f} {('%.1f' % tops) if tops else '-':>10s}  {r.features}")
    return TiledReport(app.name, args.card, args.seed, out, "\n".join(lines))


def _cell(app: App, geom: str, card: str, seed: int, stuck: float, args: argparse.Namespace,
          exsitu: bool) -> tuple[AppRun, float | None]:
    """One report cell on one seed: in situ exactly as `spikeboard train` runs
    it (apps.run.run_app), and with exsitu=True, on a one-layer chip, the
    ex-situ path on a fresh chip of the same spec."""
    from ..apps.run import run_app, train_exsitu
    from ..chip import configure, open_backend_for
    from ..loop import output_neurons

    spec = ChipSpec(card=card, geometry=geom, seed=seed, stuck=stuck, layout=args.layout)
    lim: dict[str, int] = dict(train_limit=300, test_limit=150) if args.quick else {}
    lim = {**lim, **{k: getattr(args, k) for k in ("train_limit", "test_limit") if getattr(args, k) is not None}}
    epochs = args.epochs or (max(1, app.epochs // 2) if args.quick else None)
    r = run_app(app, spec, epochs=epochs, rule=args.rule, **lim)
    ex = None
    if exsitu and r.params.layers == 1:
        assert r.prepared is not None
        with open_backend_for(spec) as b:       # a fresh chip of the same block, the same data
            configure(b, r.params, r.layout)
            ex = train_exsitu(b, r.prepared, output_neurons(b, r.prepared.classes))
    return r, ex


def report(args: argparse.Namespace) -> AppsReport:
    from ..apps import get_app
    from ..energy import energy_report

    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else (SEEDS[:1] if args.quick else SEEDS)
    combos = [(a, g, c, 0.0) for a in args.apps.split(",") for g in args.geometries.split(",")
              for c in args.cards.split(",")]
    if args.stuck:
        combos += [(a, "32x32", "rram-nonlinear", args.stuck) for a in args.apps.split(",")]
    results = []
    t0 = time.time()
    for name, geom, card, stuck in combos:
        app = get_app(name)
        runs, ex, info = [], None, {}
        for seed in seeds:
            r, e = _cell(app, geom, card, seed, stuck, args, exsitu=seed == seeds[0])
            runs.append(r)
            if seed == seeds[0]:
                ex = e
                et = energy_report(r.params, r.train_counters)
                ei = energy_report(r.params, r.infer_counters)
                info = dict(baseline=r.baseline, rule=r.settings.rule, epochs=r.settings.epochs,
                            layout=r.layout.as_dict(),
                            train_fj={k: v / r.train_samples for k, v in et.energy_fj.items() if v is not None},
                            infer_fj={k: v / r.test_samples for k, v in ei.energy_fj.items() if v is not None},
                            tops_per_w=ei.tops_per_w,
                            pulses_per_sample=(r.train_counters.pot + r.train_counters.dep) / r.train_samples,
                            n_train=r.train_samples // r.settings.epochs, n_test=r.test_samples)
        accs = [r.accuracy for r in runs]
        per_seed = [{"seed": r.spec.seed, "accuracy": r.accuracy, "accuracy_per_epoch": list(r.epoch_accuracy),
                     "train_counters": r.train_counters.as_dict(), "infer_counters": r.infer_counters.as_dict(),
                     "output_neurons": list(r.output_neurons), "conductance_crc32": r.conductance_crc32}
                    for r in runs]
        results.append(dict(app=name, geometry=geom, card=card, stuck=stuck, insitu_mean=float(np.mean(accs)),
                            insitu_std=float(np.std(accs)), insitu=accs, exsitu=ex, seeds=per_seed, **info))
    fw = firmware_instructions()
    md = to_markdown(results, args, time.time() - t0, fw)
    if args.output != "-":
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(md)
    return AppsReport(results, fw, md)


def firmware_instructions() -> dict[str, Any]:
    """The MCU's share per sample: instructions of one TRAIN and one INFER of
    digits size, counted on the firmware in QEMU (`spikeboard bench firmware`).
    Where QEMU or the toolchain is missing, the reason is reported instead."""
    try:
        from ..bench import bench_firmware

        return bench_firmware()
    except Exception as e:  # no emulator here: say so in the table, do not estimate
        return {"error": f"{type(e).__name__}: {e}"}


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def to_markdown(results: list[dict[str, Any]], args: Any, seconds: float, fw: dict[str, Any] | None = None) -> str:
    from ..loop import DEEP_RULE, DEEP_THRESHOLD

    cmd = REPORT_CMD + (" --quick" if args.quick else "") + (f" --layout {args.layout}" if args.layout != "card" else "")
    n_seeds = len(results[0]["insitu"]) if results else 0
    L = ["# Applications on the chip", "",
         f"Generated by `{cmd}` (model backend, {seconds:.0f} s). Regenerate with that command.", "",
         "In situ: on-device training (forward on the chip, error and rule on the MCU, pulses by the "
         "sequencer), exactly as `spikeboard train` runs it for the same card, app, rule and seed; test accuracy "
         f"mean ± spread (std) over {n_seeds} seed(s) (data split, encoder phase and chip instance all follow "
         "the seed). Baseline: float logistic regression on the same features (first seed). Ex situ: float "
         "logistic regression on the spike counts (no intercept), programmed by write-verify through the one "
         "mapping (one-layer geometries, first seed). Layout: the card's (`--layout` overrides), stated per row "
         "with the programme's neuron-count row. One-layer chips learn with rule `compensated` (softmax error on "
         "the MCU, mixed-precision accumulators, read-verify conductance quanta, a blocked-device map that "
         "routes updates around stuck cells; table apps use 31 inputs plus a bias row). 16x16x3: hidden layers "
         f"start from a seeded random projection and ALL layers train on the chip with rule `{DEEP_RULE}` (direct "
         f"feedback alignment on the MCU), threshold {DEEP_THRESHOLD}. Classes sit on the output neurons "
         "with the fewest faulty cells found by a yield scan (in situ and ex situ), and the prediction is the "
         "class neuron with the most integrated charge (fires x threshold + final membrane). "
         "Stuck: --stuck adds that fraction of stuck cells, half at Gmin and half at Gmax.", "",
         "| app | geometry | layout | card | stuck | rule | epochs | baseline % | in situ % | ex situ % | train pulses/sample |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        L.append(f"| {r['app']} | {r['geometry']} | {r['layout']['text']} | {r['card']} | {r['stuck']:.2f} | {r['rule']} | "
                 f"{r['epochs']} | {_pct(r['baseline'])} | {_pct(r['insitu_mean'])} ± {100 * r['insitu_std']:.1f} | "
                 f"{_pct(r['exsitu'])} | {r['pulses_per_sample']:.0f} |")
    L += ["", "## Energy per sample by block (fJ, seed 0) and TOPS/W of inference", "",
          "OP conventions: neuron = one fire or one membrane update (programme definition); synaptic = one "
          "synapse read (event-driven); mac = dense rows x neurons x steps. The MCU's share is given "
          "in instructions, not joules (no MCU power model): "
          + _fw_text(fw), "",
          "| app | geometry | card | stuck | inference: neuron / read / interface / total | training: neuron / read / pot / dep / interface / total | TOPS/W neuron / synaptic / mac |",
          "|---|---|---|---|---|---|---|"]
    for r in results:
        i, t, w = r["infer_fj"], r["train_fj"], r["tops_per_w"]
        fmt = lambda d, ks: " / ".join(f"{d.get(k, 0):.3g}" for k in ks)  # noqa: E731
        tw = " / ".join("—" if w[k] is None else f"{w[k]:.3g}" for k in ("neuron", "synaptic", "mac"))
        L.append(f"| {r['app']} | {r['geometry']} | {r['card']} | {r['stuck']:.2f} | "
                 f"{fmt(i, ('neuron', 'synapse_read', 'interface'))} / {sum(i.values()):.3g} | "
                 f"{fmt(t, ('neuron', 'synapse_read', 'synapse_potentiation', 'synapse_depression', 'interface'))} / {sum(t.values()):.3g} | {tw} |")
    return "\n".join(L) + "\n"


def _fw_text(fw: dict[str, Any] | None) -> str:
    if not fw or "error" in fw:
        return f"firmware instructions per sample not measured here ({(fw or {}).get('error', 'not run')})."
    b = fw["bytes_per_sample"]
    return (f"{fw['instructions_per_train_sample']:,} instructions per training sample and "
            f"{fw['instructions_per_infer_sample']:,} per inference sample (digits size, 32x32, spec card; "
            f"{b['train']} and {b['infer']} bytes on the wire), counted on the firmware in QEMU by "
            "`spikeboard bench firmware`.")
