"""The programme's spec check (docs/spec.md): per row the target, the measured
or modelled value, PASS/FAIL and how it was obtained; the system's energy
efficiency under neuron-op, synaptic-op and MAC conventions with the breakdown
by block; and the inverse question: which per-event energies would reach
1,000 TOPS/W (1 fJ per OP) and which block dominates now.

Device rows come from the characterization schemes (characterize.py) run on a
chip opened through the one door (chip.open_chip: the card compiled for its
geometry and layout, the model backend unless told otherwise); the neuron-count
row applies chip.neuron_target to that layout and states it. The
efficiency comes from an application workload: a session run's counters
(`--run RUN`: RUN/counters.json, RUN/card.toml, RUN/config.json) or, without a
run, the built-in workload: rate-coded random input (p = 0.2, 100 steps,
4 samples) through random weights programmed into the array.

Rows that are capabilities of the whole system rather than figures (on-device
training joined to a DL framework, an asynchronous host, > 3 applications) are
listed as not evaluated here, with where they are shown."""
from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import cards as cardlib
from . import characterize as ch
from .backends.base import COUNTER_FIELDS, Backend, Counters
from .chip import ChipSpec, Layout, open_chip
from .energy import BLOCKS, OP_DEFINITIONS, EnergyReport, energy_report
from .errors import ConfigError

TARGET_TOPS_PER_W = 1000.0
PROGRAMME_CONVENTION = "neuron"   # docs/spec.md: 1 OP = one neuron firing or one membrane-potential update
EVENTS = {  # event -> (counter, params field, block)
    "fire": ("fires", "e_fire_aj", "neuron"),
    "update": ("updates", "e_update_aj", "neuron"),
    "read": ("reads", "e_read_aj", "synapse_read"),
    "pot": ("pot", "e_pot_aj", "synapse_potentiation"),
    "dep": ("dep", "e_dep_aj", "synapse_depression"),
    "pre": ("pre", "e_pre_aj", "interface"),
    "post": ("post", "e_post_aj", "interface"),
}
NOT_EVALUATED = (
    ("system_training", "on-device training and inference joined to a DL framework",
     "shown by training sessions and the PyTorch bridge, not by a figure here"),
    ("system_host", "host: independent system running asynchronously from the PC",
     "shown by the firmware on the board/emulator (autonomous training loop)"),
    ("system_applications", "> 3 different neural-network applications validated on the hardware",
     "shown by application session runs"),
)


@dataclass(frozen=True)
class Row:
    block: str
    name: str
    figure: str
    op: str          # ">", "<", ">="
    threshold: float
    value: float | None
    unit: str
    method: str
    note: str = ""

    @property
    def passed(self) -> bool:
        v = self.value
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return False
        return bool({">": v > self.threshold, "<": v < self.threshold, ">=": v >= self.threshold}[self.op])

    @property
    def target(self) -> str:
        return f"{self.op} {self.threshold:g}"

    def as_dict(self) -> dict[str, Any]:
        v: float | str | None = None if self.value is None else float(self.value)
        if isinstance(v, float) and not math.isfinite(v):
            v = None if math.isnan(v) else ("inf" if v > 0 else "-inf")
        return {"name": self.name, "block": self.block, "figure": self.figure, "target": self.target,
                "compare": self.op, "threshold": self.threshold, "value": v, "unit": self.unit,
                "pass": self.passed, "method": self.method, "note": self.note}


@dataclass(frozen=True)
class SpecReport:
    card: str
    geometry: str
    backend: str
    layout: Layout               # how the weights sit on the array (the neuron-count row's input)
    workload: str
    rows: tuple[Row, ...]
    efficiency: EnergyReport
    inverse: dict[str, Any]
    schemes: dict[str, Any] = field(repr=False)
    html: str | None = None

    @property
    def all_pass(self) -> bool:
        return all(r.passed for r in self.rows)

    def row(self, name: str) -> Row:
        return next(r for r in self.rows if r.name == name)

    def as_dict(self) -> dict[str, Any]:
        e = self.efficiency
        return {"card": self.card, "geometry": self.geometry, "backend": self.backend,
                "layout": self.layout.as_dict(), "workload": self.workload,
                "rows": [r.as_dict() for r in self.rows], "all_pass": self.all_pass,
                "not_evaluated": [{"name": n, "figure": f, "note": w} for n, f, w in NOT_EVALUATED],
                "tops_per_w": e.tops_per_w, "fj_per_op": e.fj_per_op, "ops": e.ops,
                "op_definitions": e.op_definitions, "energy_fj": e.energy_fj, "total_fj": e.total_fj,
                "energy_source": e.source, "dominant_block": e.dominant_block(), "inverse": self.inverse,
                "schemes": self.schemes, "html": self.html}

    @property
    def text(self) -> str:
        return format_text(self)


# ---------------------------------------------------------------- efficiency and its inverse
def inverse_question(params: Any, counters: Counters, report: EnergyReport) -> dict[str, Any]:
    """For each OP convention: the energy budget at 1 fJ/OP, and per event type
    the energy per event that alone would meet it (others unchanged; None when
    even zero would not), plus the uniform scale of every energy that meets it."""
    c = counters.as_dict()
    total = report.total_fj
    per_event_fj = {k: getattr(params, f) / 1000.0 for k, (_, f, _) in EVENTS.items()}
    event_total = {k: c[cnt] * per_event_fj[k] for k, (cnt, _, _) in EVENTS.items()}
    out: dict[str, Any] = {"target_tops_per_w": TARGET_TOPS_PER_W, "dominant_block": report.dominant_block(),
                           "dominant_event": max(event_total, key=lambda k: event_total[k]) if total else None,
                           "energy_fj_per_event": per_event_fj, "conventions": {}}
    for conv, n in report.ops.items():
        budget = n * 1000.0 / TARGET_TOPS_PER_W     # fJ
        alone = {}
        for k, (cnt, _, _) in EVENTS.items():
            cnt_n = c[cnt]
            rest = total - event_total[k]
            if cnt_n == 0:
                alone[k] = None if rest > budget else per_event_fj[k]
            else:
                need = (budget - rest) / cnt_n
                alone[k] = need if need > 0 else None
        scale = budget / total if total else math.inf
        out["conventions"][conv] = {
            "ops": int(n), "budget_fj": float(budget), "energy_fj": float(total), "meets": bool(total <= budget),
            "uniform_scale": scale,
            "energy_fj_per_event_uniform": {k: v * min(1.0, scale) for k, v in per_event_fj.items()},
            "energy_fj_per_event_alone": alone,
        }
    return out


def builtin_workload(b: Backend, params: Any, *, p_spike: float = 0.2, steps: int = 100, samples: int = 4,
                     seed: int = 0) -> Counters:
    """Random weights into the array, then rate-coded random input: the counters of inference only."""
    rng = np.random.default_rng(seed)
    w = params.g_max - params.g_min
    targets = rng.integers(params.g_min, params.g_max + 1, size=b.cells).astype(np.uint16)
    b.program(targets, tolerance=max(1, w // 16), max_pulses=64)
    return ch.random_workload(b, p_spike=p_spike, steps=steps, samples=samples, seed=seed)


def load_run(run: Path) -> tuple[Counters, Path, dict[str, Any]]:
    """A session run's counters, card file and config (errors name the file)."""
    run = Path(run)
    for f in ("counters.json", "card.toml", "config.json"):
        if not (run / f).exists():
            raise ConfigError(f"run {run}: missing {f} (a session run writes counters.json, card.toml, config.json)")
    try:
        cnt = json.loads((run / "counters.json").read_text())
        cfg = json.loads((run / "config.json").read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"run {run}: broken JSON: {e}") from None
    cnt.setdefault("measured_aj", 0)      # runs from before boards measured energy
    missing = [k for k in COUNTER_FIELDS if k not in cnt]
    if missing:
        raise ConfigError(f"{run / 'counters.json'}: missing counters {', '.join(missing)}")
    return Counters(*(int(cnt[k]) for k in COUNTER_FIELDS)), run / "card.toml", cfg


def run_chip(spec: ChipSpec, run: Path, cfg: dict[str, Any]) -> ChipSpec:
    """The chip a run was made on: its card file, and its geometry and layout
    (config.json's `chip`, or the flat keys of older runs) unless spec names a geometry."""
    nested = cfg.get("chip")
    chip: dict[str, Any] = nested if isinstance(nested, dict) else cfg
    return replace(spec, card=str(run / "card.toml"), geometry=spec.geometry or chip.get("geometry"),
                   layout=chip.get("layout") or spec.layout)


# ---------------------------------------------------------------- the check
def spec_check(spec: ChipSpec = ChipSpec(), *, run: str | Path | None = None, out_dir: str | Path | None = None,
               endurance_pulses: float = 3e7, fast: bool = False,
               log: Callable[[str], None] | None = None) -> SpecReport:
    """Run every scheme on the chip, then the workload, and fill the rows of docs/spec.md."""
    ch.require_one_array(spec.tiled)
    cfg: dict[str, Any] = {}
    run_counters = None
    if run is not None:
        run_counters, _, cfg = load_run(Path(run))
        spec = run_chip(spec, Path(run), cfg)
    say = log or (lambda m: None)
    res: dict[str, Any] = {}
    with open_chip(spec) as chip:
        b, card_obj, params, layout = chip.backend, chip.card, chip.params, chip.layout
        out = Path(out_dir) if out_dir is not None else Path("runs") / f"spec-{card_obj.name}"
        out.mkdir(parents=True, exist_ok=True)
        pulses = card_obj["synapse"]["pulses"]
        pattern = f"(P{pulses} H16 D{pulses})x3"
        say(f"{layout.describe()}; pd {pattern}")
        res["pd"] = ch.run_pd(b, out / "pd", pattern=pattern, card=card_obj)
        say("retention")
        res["retention"] = ch.run_retention(b, out / "retention", first=b.cells // 2, card=card_obj)
        say("yield")
        b.reset(chip=True)
        res["yield"] = ch.run_yield(b, out / "yield", card=card_obj)
        say("endurance")
        res["endurance"] = ch.run_endurance(b, out / "endurance", cells=[b.cells - 2, b.cells - 1], swing=pulses,
                                            max_pulses=endurance_pulses if not fast else 2e5, card=card_obj)
        b.reset(chip=True)
        say("neuron")
        res["neuron"] = ch.run_neuron(b, out / "neuron", card=card_obj)
        b.reset(chip=True)
        say("interface")
        res["interface"] = ch.run_interface(b, out / "interface", card=card_obj)
        b.reset(chip=True)
        if run_counters is None:
            say("workload")
            counters = builtin_workload(b, params, seed=spec.seed)
            workload = ("built-in: random weights programmed into the array, rate-coded random input "
                        f"(p = 0.2, 100 steps, 4 samples) on the {spec.backend} backend; inference counters only")
            wmethod = f"built-in workload on {spec.backend}: counters x card energies"
        else:
            counters = run_counters
            what = cfg.get("command") or cfg.get("name")
            workload = f"session run {run}" + (f" ({what})" if what else "")
            wmethod = f"run {run}: session counters x card energies"
    eff = energy_report(params, counters)
    inv = inverse_question(params, counters, eff)

    pd, rt, en, yd, nr, itf = (res[k] for k in ("pd", "retention", "endurance", "yield", "neuron", "interface"))
    geometry = layout.geometry
    rows_, cols_, layers_ = cardlib.GEOMETRIES[geometry]
    size_ok = (rows_ >= 32 and cols_ >= 32) or (rows_ >= 16 and cols_ >= 16 and layers_ >= 3)
    reads = counters.reads
    e_read = params.e_read_aj / 1000.0
    en_val = en.endurance_pulses if not en.extrapolated or math.isfinite(en.endurance_pulses) else en.endurance_lower_pulses
    if en.extrapolated:
        en_val = min(en.endurance_pulses, en.endurance_lower_pulses)
    R = Row
    rows = [
        R("neuron", "neuron_rate", "sustained firing rate", ">", 1e6, nr.sustained_rate_hz, "Hz",
          nr.method, f"over {nr.steps} steps at the highest input; 1/t_refrac limit {nr.refractory_limit_hz:.3g} Hz"),
        R("neuron", "neuron_voltage", "operating voltage", "<", 1.5, nr.voltage_v, "V", "card [neuron] voltage_v"),
        R("neuron", "neuron_energy", "energy per integrate-and-fire event", "<", 25.0, nr.energy_per_spike_fj,
          "fJ/spike", nr.method, f"fire + membrane updates per spike; fire alone {nr.fire_energy_fj:g} fJ"),
        R("synapse", "synapse_retention", "retention", ">", 1.0, rt.retention_years, "years", rt.method,
          f"{rt.levels} levels stay distinguishable; fitted tau {rt.tau_s:.3g} s"
          + ("; extrapolated beyond the run" if rt.extrapolated else "")),
        R("synapse", "synapse_endurance", "endurance", ">", 1e8, en_val, "pulses", en.method, en.note),
        R("synapse", "synapse_linearity", "weight-update linearity", ">", 90.0, 100 * pd.linearity, "%", pd.method,
          f"pattern {pd.pattern}; per cell incl. noise: median {100 * pd.linearity_cells_median:.1f} %"),
        R("synapse", "synapse_symmetry", "weight-update symmetry", ">", 90.0, 100 * pd.symmetry, "%", pd.method,
          f"per cell incl. noise: median {100 * pd.symmetry_cells_median:.1f} %"),
        R("synapse", "synapse_read_energy", "read energy", "<", 1.0, (counters.reads * params.e_read_aj / 1000.0 / reads)
          if reads else e_read, "fJ/op", wmethod),
        R("synapse", "synapse_pot_energy", "potentiation energy", "<", 0.1, pd.e_pot_fj, "fJ/op", pd.method),
        R("synapse", "synapse_dep_energy", "depression energy", "<", 0.1, pd.e_dep_fj, "fJ/op", pd.method),
        R("array", "array_size", "array size (32x32, 16x16x3 or larger)", ">=", 1.0, 1.0 if size_ok else 0.0,
          "ok", f"geometry {geometry} ({rows_}x{cols_}x{layers_} = {rows_ * cols_ * layers_} cells)"),
        R("array", "array_yield", "yield (working cells)", ">", 90.0, 100 * yd.yield_frac, "%", yd.method,
          ", ".join(f"{k} {v}" for k, v in yd.faults.items() if k != "ok" and v) or "no faulty cells"),
        R("interface", "interface_speed", "pre/post circuit speed", ">", 1e6, min(itf.pre_rate_hz, itf.post_rate_hz),
          "Hz", itf.method, f"pre {itf.pre_rate_hz:.3g} Hz, post {itf.post_rate_hz:.3g} Hz"),
        R("interface", "interface_energy", "pre/post circuit energy", "<", 10.0,
          max(itf.pre_energy_fj, itf.post_energy_fj), "fJ/op", itf.method,
          f"pre {itf.pre_energy_fj:g}, post {itf.post_energy_fj:g} fJ/op"),
        R("system", "system_neurons", "integrate-and-fire neurons operating with the array", ">=",
          layout.neuron_target, float(layout.total_neurons), "neurons",
          f"card {card_obj.name}, layout {layout.describe()}",
          f"target {layout.neuron_target} for this geometry; post-neurons only (input rows are driven by the host)"),
        R("system", "system_tops_per_w", "energy efficiency running a network", ">=", TARGET_TOPS_PER_W,
          eff.tops_per_w[PROGRAMME_CONVENTION], "TOPS/W", wmethod,
          f"OP: {OP_DEFINITIONS[PROGRAMME_CONVENTION]}; synaptic {_f(eff.tops_per_w['synaptic'])}, "
          f"MAC {_f(eff.tops_per_w['mac'])} TOPS/W; host MCU energy not measured"),
    ]
    schemes = {k: v.as_dict() for k, v in res.items()}
    rep = SpecReport(card_obj.name, geometry, spec.backend, layout, workload, tuple(rows), eff, inv, schemes)
    return replace(rep, html=str(write_html(rep, out / "spec.html", out)))


def _f(x) -> str:
    return "-" if x is None else f"{x:.4g}"


# ---------------------------------------------------------------- text and HTML
def format_text(rep: SpecReport) -> str:
    lines = [f"spec check: card {rep.card}, geometry {rep.geometry}, backend {rep.backend}",
             f"layout: {rep.layout.describe()}",
             f"{'row':22s} {'target':>10s} {'value':>12s} {'unit':9s} result  method"]
    for r in rep.rows:
        v = r.value
        vs = "-" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
        lines.append(f"{r.name:22s} {r.target:>10s} {vs:>12s} {r.unit:9s} {'PASS' if r.passed else 'FAIL'}    "
                     f"{r.method}" + (f" [{r.note}]" if r.note else ""))
    for n, f, w in NOT_EVALUATED:
        lines.append(f"{n:22s} {'required':>10s} {'':>12s} {'':9s} n/a     {f}: {w}")
    e = rep.efficiency
    lines.append("")
    lines.append(f"system efficiency, workload: {rep.workload}")
    lines.append("energy by block (fJ):")
    for k in BLOCKS:
        v = e.energy_fj.get(k)
        share = f"{100 * v / e.total_fj:5.1f} %" if v is not None and e.total_fj else "      "
        lines.append(f"  {k:22s} {('%.2f' % v) if v is not None else 'not measured':>14s}  {share}")
    lines.append(f"  {'total':22s} {e.total_fj:14.2f}")
    for k in ("neuron", "synaptic", "mac"):
        lines.append(f"  {k:9s} {e.ops[k]:>10d} OPs  {_f(e.fj_per_op[k]):>10s} fJ/OP  {_f(e.tops_per_w[k]):>10s} TOPS/W"
                     f"   [{e.op_definitions[k]}]")
    inv = rep.inverse
    lines.append(f"dominant block: {inv['dominant_block']} (event: {inv['dominant_event']})")
    lines.append("to reach 1,000 TOPS/W (1 fJ/OP):")
    for conv, d in inv["conventions"].items():
        if d["meets"]:
            lines.append(f"  {conv:9s} met ({d['energy_fj']:.1f} fJ <= budget {d['budget_fj']:.1f} fJ)")
            continue
        alone = ", ".join(f"{k} {('%.3g' % v) if v is not None else 'impossible alone'}"
                          for k, v in d["energy_fj_per_event_alone"].items())
        lines.append(f"  {conv:9s} budget {d['budget_fj']:.1f} fJ vs {d['energy_fj']:.1f} fJ: scale every energy by "
                     f"{d['uniform_scale']:.3g}; or one event alone to (fJ/event): {alone}")
    npass = sum(r.passed for r in rep.rows)
    lines.append(f"{npass}/{len(rep.rows)} rows pass" + (f"; report: {rep.html}" if rep.html else ""))
    return "\n".join(lines)


def _img(path: Path) -> str:
    try:
        data = base64.b64encode(Path(path).read_bytes()).decode()
    except OSError:
        return ""
    return f'<img src="data:image/png;base64,{data}" style="max-width:48%;margin:4px">'


def write_html(rep: SpecReport, path: Path, out: Path) -> Path:
    from .characterize import _plt

    plt = _plt()
    e = rep.efficiency
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    ks = [k for k in BLOCKS if e.energy_fj.get(k) is not None]
    ax[0].barh(ks, [e.energy_fj[k] for k in ks])
    ax[0].set_xlabel("energy in the workload (fJ)")
    ax[0].set_title("energy by block")
    conv = ["neuron", "synaptic", "mac"]
    ax[1].bar(conv, [e.tops_per_w[c] or 0 for c in conv])
    ax[1].axhline(TARGET_TOPS_PER_W, color="tab:red", ls="--", label="1,000 TOPS/W")
    ax[1].set_yscale("log")
    ax[1].set_ylabel("TOPS/W")
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    eff_png = out / "efficiency.png"
    fig.savefig(eff_png, dpi=90)
    plt.close(fig)
    esc = html.escape
    rows = []
    for r in rep.rows:
        d = r.as_dict()
        v = d["value"]
        vs = "-" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
        col = "#d8f5d8" if r.passed else "#f8d0d0"
        rows.append(f"<tr style='background:{col}'><td>{esc(r.block)}</td><td>{esc(r.figure)}</td>"
                    f"<td>{esc(r.target)} {esc(r.unit)}</td><td>{esc(vs)} {esc(r.unit)}</td>"
                    f"<td><b>{'PASS' if r.passed else 'FAIL'}</b></td><td>{esc(r.method)}<br><small>{esc(r.note)}</small></td></tr>")
    for n, f, w in NOT_EVALUATED:
        rows.append(f"<tr><td>system</td><td>{esc(f)}</td><td>required</td><td></td><td>n/a</td><td>{esc(w)}</td></tr>")
    eff_rows = "".join(f"<tr><td>{k}</td><td>{e.ops[k]}</td><td>{_f(e.fj_per_op[k])}</td><td>{_f(e.tops_per_w[k])}</td>"
                       f"<td>{esc(e.op_definitions[k])}</td></tr>" for k in ("neuron", "synaptic", "mac"))
    blk = "".join(f"<tr><td>{k}</td><td>{_f(e.energy_fj.get(k))}</td></tr>" for k in BLOCKS)
    inv_rows = []
    for c, d in rep.inverse["conventions"].items():
        alone = "; ".join(f"{k}: {('%.3g' % v) if v is not None else 'impossible alone'}"
                          for k, v in d["energy_fj_per_event_alone"].items())
        inv_rows.append(f"<tr><td>{c}</td><td>{d['budget_fj']:.1f}</td><td>{d['energy_fj']:.1f}</td>"
                        f"<td>{'yes' if d['meets'] else 'no'}</td><td>{d['uniform_scale']:.3g}</td><td>{esc(alone)}</td></tr>")
    cur = ", ".join(f"{k} {v:g}" for k, v in rep.inverse["energy_fj_per_event"].items())
    imgs = "".join(_img(Path(s["png"])) for s in rep.schemes.values() if s.get("png"))
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>spikeboard spec: {esc(rep.card)}</title>
<style>body{{font-family:sans-serif;margin:20px}}table{{border-collapse:collapse;margin:8px 0}}
td,th{{border:1px solid #bbb;padding:3px 7px;font-size:13px;vertical-align:top}}</style></head><body>
<h1>Spec check (docs/spec.md): card {esc(rep.card)}</h1>
<p>geometry {esc(rep.geometry)}, backend {esc(rep.backend)}, layout {esc(rep.layout.describe())}; {sum(r.passed for r in rep.rows)}/{len(rep.rows)} rows pass.</p>
<table><tr><th>block</th><th>figure</th><th>target</th><th>value</th><th>result</th><th>method</th></tr>{''.join(rows)}</table>
<h2>System efficiency</h2><p>workload: {esc(rep.workload)}. Source: {esc(e.source)}. Host/MCU energy not measured.</p>
<table><tr><th>convention</th><th>OPs</th><th>fJ/OP</th><th>TOPS/W</th><th>OP definition</th></tr>{eff_rows}</table>
<table><tr><th>block</th><th>energy (fJ)</th></tr>{blk}<tr><td>total</td><td>{e.total_fj:.2f}</td></tr></table>
{_img(eff_png)}
<h2>What would reach 1,000 TOPS/W (1 fJ/OP)</h2>
<p>dominant block now: <b>{esc(rep.inverse['dominant_block'])}</b> (event {esc(str(rep.inverse['dominant_event']))}).
Energies per event now (fJ): {esc(cur)}.</p>
<table><tr><th>convention</th><th>budget (fJ)</th><th>now (fJ)</th><th>met</th><th>uniform scale</th>
<th>one event alone would need (fJ/event)</th></tr>{''.join(inv_rows)}</table>
<h2>Characterization</h2>{imgs}
</body></html>"""
    path.write_text(doc)
    return path
