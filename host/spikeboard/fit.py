"""Device cards fitted from measured CSV data (format: docs/csv-format.md).

A data directory holds any of pd.csv (conductance vs pulse per branch, several
cycles), retention.csv (conductance vs time per level), endurance.csv (window
rails vs pulses) and neuron.csv (firing rate vs input). `fit_card` reads them
strictly (a malformed file is a ConfigError naming file, line and column),
fits each, fills every field it cannot measure from a base card, and writes a
card plus a fit report (residuals per data set, one figure).

Modes: "exponential" fits G(p) = Gmin + B (1 - exp(-p/A)) per branch and
stores NeuroSim's NL labels; "table" stores the mean measured branches."""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import cards as cardlib
from .errors import ConfigError
from .metrics import fit_exponential, fit_relaxation

FILES = {
    # file: (required numeric columns, optional columns, text columns)
    "pd.csv": (("pulse", "g_us"), ("cell", "cycle"), ("branch",)),
    "retention.csv": (("level", "time_s", "g_us"), ("cell",), ()),
    "endurance.csv": (("pulses", "g_high_us", "g_low_us"), ("cell",), ()),
    "neuron.csv": (("input", "rate_hz"), ("neuron",), ()),
}
#: file: (column, grouping columns): the column must not decrease down the file
#: within a group (a clock or a pulse counter that goes back is a broken log)
ORDER = {
    "retention.csv": ("time_s", ("cell", "level")),
    "endurance.csv": ("pulses", ("cell",)),
}
#: file: (column, grouping columns): the column must not repeat within a group
UNIQUE = {
    "pd.csv": ("pulse", ("cell", "cycle", "branch")),
}


@dataclass(frozen=True)
class Table:
    path: Path
    meta: dict[str, str]
    cols: dict[str, np.ndarray]
    lines: np.ndarray            # file line number of each row


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def read_csv(path: Path) -> Table:
    """Read one data file; errors name the file, line and column."""
    path = Path(path)
    req, opt, text = FILES[path.name]
    meta: dict[str, str] = {}
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        f = open(path, newline="")
    except OSError as e:
        raise ConfigError(f"{path}: cannot open: {e.strerror}") from None
    with f:
        try:
            text_lines = list(f)
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}); need a CSV file") from None
        except OSError as e:
            raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
        for ln, raw in enumerate(text_lines, start=1):
            s = raw.strip()
            if not s:
                continue
            if s.startswith("#"):
                body = s[1:].strip()
                if "=" in body:
                    k, v = body.split("=", 1)
                    meta[k.strip()] = v.strip()
                continue
            fields = next(csv.reader([s]))
            if header is None:
                header = [h.strip() for h in fields]
                num = [i for i, h in enumerate(header) if _is_number(h)]
                if num:
                    raise ConfigError(f"{path}: line {ln}, column {num[0] + 1}: header line missing or wrong: "
                                      f"{header[num[0]]!r} is a number, the first line that is not a comment "
                                      f"must name the columns "
                                      f"(needs {', '.join(req + text)}; optional {', '.join(opt)})")
                for i, h in enumerate(header):
                    if header.index(h) != i:
                        raise ConfigError(f"{path}: line {ln}, column {i + 1}: duplicate column {h!r}")
                missing = [c for c in req + text if c not in header]
                if missing:
                    raise ConfigError(f"{path}: line {ln}: header lacks column(s) {', '.join(missing)} "
                                      f"(needs {', '.join(req + text)}; optional {', '.join(opt)})")
                continue
            if len(fields) != len(header):
                raise ConfigError(f"{path}: line {ln}, column {min(len(fields), len(header)) + 1}: "
                                  f"{len(fields)} fields, the header has {len(header)}")
            rows.append(fields)
            lines.append(ln)
    if header is None:
        raise ConfigError(f"{path}: line 1, column 1: no header line" + ("" if text_lines else " (empty file)"))
    if not rows:
        raise ConfigError(f"{path}: line {len(lines) + 2}, column 1: no data rows")
    cols: dict[str, np.ndarray] = {}
    for ci, h in enumerate(header):
        if h in text:
            vals = []
            for r, ln in zip(rows, lines):
                v = r[ci].strip().upper()
                if h == "branch" and v not in ("P", "D", "H"):
                    raise ConfigError(f"{path}: line {ln}, column {ci + 1} ({h}): {r[ci]!r} is not P, D or H")
                vals.append(v)
            cols[h] = np.array(vals)
        elif h in req or h in opt:
            nums: list[float] = []
            for r, ln in zip(rows, lines):
                try:
                    x = float(r[ci])
                except ValueError:
                    raise ConfigError(f"{path}: line {ln}, column {ci + 1} ({h}): {r[ci]!r} is not a number") from None
                if not math.isfinite(x):
                    raise ConfigError(f"{path}: line {ln}, column {ci + 1} ({h}): {r[ci]!r} is not finite")
                if h in ("time_s", "pulses", "pulse", "rate_hz", "g_us", "g_high_us", "g_low_us") and x < 0:
                    raise ConfigError(f"{path}: line {ln}, column {ci + 1} ({h}): {x:g} is negative")
                nums.append(x)
            cols[h] = np.array(nums)
    _check_order(path, header, cols, lines)
    return Table(path, meta, cols, np.array(lines))


def _group(groups, cols, g) -> str:
    names = [n for n in groups if n in cols]
    return (" for " + ", ".join(f"{n} {x:g}" if isinstance(x, float) else f"{n} {x}" for n, x in zip(names, g))) if g else ""


def _check_order(path: Path, header: list[str], cols: dict[str, np.ndarray], lines: list[int]) -> None:
    """ORDER and UNIQUE of one file, errors at the offending line."""
    for rules, kind in ((ORDER, "order"), (UNIQUE, "unique")):
        if path.name not in rules:
            continue
        col, groups = rules[path.name]
        keys = [cols[g] for g in groups if g in cols]
        ci = header.index(col) + 1
        last: dict[tuple, tuple[float, int]] = {}
        seen: dict[tuple, int] = {}
        for i, ln in enumerate(lines):
            g = tuple(k[i] for k in keys)
            v = cols[col][i]
            if kind == "order":
                if g in last and v < last[g][0]:
                    p, pl = last[g]
                    raise ConfigError(f"{path}: line {ln}, column {ci} ({col}): {v:g} goes back from {p:g} on line "
                                      f"{pl}" + _group(groups, cols, g)
                                      + f" ({col} must not decrease down the file)")
                last[g] = (v, ln)
            else:
                if "branch" in cols and cols["branch"][i] == "H":   # holds are not fitted
                    continue
                if (g, v) in seen:
                    raise ConfigError(f"{path}: line {ln}, column {ci} ({col}): {v:g} repeats line {seen[(g, v)]}"
                                      + _group(groups, cols, g))
                seen[(g, v)] = ln


# ---------------------------------------------------------------- fits per data set
@dataclass(frozen=True)
class Residual:
    data: str
    rms: float
    max: float
    unit: str
    points: int


@dataclass
class _Acc:
    synapse: dict[str, Any] = field(default_factory=dict)
    neuron: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)
    source: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    residuals: list[Residual] = field(default_factory=list)
    plots: dict[str, Any] = field(default_factory=dict)


def _monotone(y: np.ndarray, rising: bool) -> np.ndarray:
    """Pool-adjacent-violators, then a tiny ramp so the table rises/falls strictly."""
    v = np.asarray(y, float) if rising else -np.asarray(y, float)
    blocks = [[x, 1] for x in v]
    out: list[list[float]] = []
    for b in blocks:
        out.append(b)
        while len(out) > 1 and out[-2][0] / out[-2][1] > out[-1][0] / out[-1][1]:
            s, n = out.pop()
            out[-1][0] += s
            out[-1][1] += n
    res = np.concatenate([np.full(int(n), s / n) for s, n in out])
    span = max(float(np.ptp(res)), 1e-6)
    res = res + np.arange(len(res)) * span * 1e-6
    for i in range(1, len(res)):
        if res[i] <= res[i - 1]:
            res[i] = res[i - 1] + span * 1e-6
    return res if rising else -res


def _fit_pd(t: Table, mode: str, acc: _Acc) -> None:
    c = t.cols
    cell = c.get("cell", np.zeros(len(t.lines)))
    cyc = c.get("cycle", np.zeros(len(t.lines)))
    br = c["branch"]
    curves: dict[tuple, dict[int, float]] = {}
    for i in range(len(t.lines)):
        if br[i] == "H":
            continue
        p = c["pulse"][i]
        if p != int(p):
            raise ConfigError(f"{t.path}: line {t.lines[i]}, column pulse: {p:g} is not a whole pulse number")
        curves.setdefault((cell[i], cyc[i], br[i]), {})[int(p)] = c["g_us"][i]
    P: dict[tuple, np.ndarray] = {}
    D: dict[tuple, np.ndarray] = {}
    for (ce, cy, b), d in curves.items():
        n = max(d) + 1
        if sorted(d) != list(range(n)) or n < 3:
            raise ConfigError(f"{t.path}: column pulse: cell {ce:g} cycle {cy:g} branch {b}: pulses must run 0..N "
                              f"without gaps, N >= 2 (got {len(d)} pulse numbers, highest {n - 1})")
        (P if b == "P" else D)[(ce, cy)] = np.array([d[k] for k in range(n)])
    if not P or not D:
        raise ConfigError(f"{t.path}: column branch: needs both P and D branches (has {', '.join(sorted(set(br))) or 'none'})")
    nP, nD = min(len(v) for v in P.values()), min(len(v) for v in D.values())
    normP, normD, ranges, lows, highs = [], [], [], [], []
    cell_win: dict[float, list[float]] = {}
    cell_slope: dict[float, list[float]] = {}
    steps: dict[tuple, list[np.ndarray]] = {}
    for key in set(P) | set(D):
        seg = np.concatenate([x for x in (P.get(key), D.get(key)) if x is not None])
        lo, hi = float(seg.min()), float(seg.max())
        if hi - lo <= 0:
            continue
        ranges.append(hi - lo)
        if key in P:
            x = P[key][:nP]
            normP.append((x - lo) / (hi - lo))
            lows.append(x[0])
            highs.append(x[-1])
            cell_win.setdefault(key[0], []).append(x[-1] - x[0])
            k = max(2, nP // 4)
            cell_slope.setdefault(key[0], []).append((x[k] - x[0]) / k)
            steps.setdefault((key[0], "P"), []).append(np.diff(x))
        if key in D:
            x = D[key][:nD]
            normD.append((x - lo) / (hi - lo))
            highs.append(x[0])
            lows.append(x[-1])
            steps.setdefault((key[0], "D"), []).append(np.diff(x))
    if not normP or not normD:
        raise ConfigError(f"{t.path}: column g_us: the conductance never changes within a cycle: no window to fit")
    mp, md = np.mean(normP, axis=0), np.mean(normD, axis=0)
    gmin, gmax = float(np.mean(lows)), float(np.mean(highs))
    W = gmax - gmin
    s = acc.synapse
    s["g_min_us"], s["g_max_us"] = round(gmin, 6), round(gmax, 6)
    s["pulses"] = int(nP - 1)
    acc.source.update({"synapse.g_min_us": "pd.csv", "synapse.g_max_us": "pd.csv", "synapse.pulses": "pd.csv"})
    fp, fd = fit_exponential(mp), fit_exponential(md, depression=True)
    # residuals of the model in uS (the mean curve scaled to the window)
    for kind, m, f, n in (("P", mp, fp, nP), ("D", md, fd, nD)):
        q = np.arange(n)
        if math.isfinite(f.a_pulses):
            base = 1 - np.exp(-q / f.a_pulses)
            model = m[0] + (m[-1] - m[0]) * base / base[-1] if kind == "P" else m[0] - (m[0] - m[-1]) * base / base[-1]
        else:
            model = np.linspace(m[0], m[-1], n)
        if mode == "table":
            model = m
        r = (m - model) * W
        acc.residuals.append(Residual(f"pd {kind} branch ({mode})", float(np.sqrt(np.mean(r ** 2))),
                                      float(np.max(np.abs(r))), "uS", n))
        acc.plots[f"pd_{kind}"] = (q, gmin + m * W, gmin + model * W, f)
    if mode == "table":
        s["model"] = "table"
        s["table_p"] = [round(float(x), 6) for x in _monotone(gmin + mp * W, True)]
        s["table_d"] = [round(float(x), 6) for x in _monotone(gmin + md * W, False)]
        acc.source.update({"synapse.table_p": "pd.csv (mean P branch)", "synapse.table_d": "pd.csv (mean D branch)"})
    else:
        s["model"] = "exponential"
        s["nl_p"] = round(min(9.0, max(0.0, fp.nl_label)), 4)
        s["nl_d"] = round(max(-9.0, min(0.0, fd.nl_label)), 4)
        acc.source.update({"synapse.nl_p": f"pd.csv (A = {fp.a_pulses:.3g} pulses)",
                           "synapse.nl_d": f"pd.csv (A = {fd.a_pulses:.3g} pulses)"})
        if nP != nD:
            acc.notes.append(f"P branch has {nP - 1} pulses, D branch {nD - 1}: card uses {nP - 1} for both")
    # cycle-to-cycle: the same cell's step at the same pulse over cycles
    sds = []
    for xs in steps.values():
        if len(xs) >= 2:
            a = np.array(xs)
            sds.append(np.mean(np.std(a, axis=0, ddof=1)))
    if sds:
        s["c2c"] = round(min(0.5, float(np.mean(sds)) / W), 5)
        acc.source["synapse.c2c"] = "pd.csv (step spread over cycles)"
    else:
        acc.notes.append("one cycle per cell: c2c not fitted (needs >= 2 cycles)")
    if len(cell_win) >= 4:
        w = np.array([np.mean(v) for v in cell_win.values()])
        sl = np.array([np.mean(v) for v in cell_slope.values()])
        s["d2d_window"] = round(min(1.0, float(np.std(w, ddof=1) / np.mean(w))), 5)
        s["d2d_step"] = round(min(1.0, float(np.std(sl / w, ddof=1) / np.mean(sl / w))), 5)
        acc.source["synapse.d2d_window"] = f"pd.csv ({len(w)} cells)"
        acc.source["synapse.d2d_step"] = f"pd.csv ({len(w)} cells)"


def _fit_retention(t: Table, acc: _Acc, gmin: float, gmax: float) -> None:
    c = t.cols
    levels = np.unique(c["level"])
    times = np.unique(c["time_s"])
    if len(times) < 3:
        raise ConfigError(f"{t.path}: column time_s: needs at least 3 distinct times, has {len(times)}")
    G = np.full((len(times), len(levels)), np.nan)
    for j, lv in enumerate(levels):
        for k, tt in enumerate(times):
            m = (c["level"] == lv) & (c["time_s"] == tt)
            if np.any(m):
                G[k, j] = c["g_us"][m].mean()
    keep = ~np.any(np.isnan(G), axis=0)
    if keep.sum() < 2:
        raise ConfigError(f"{t.path}: column level: needs at least 2 levels read at every time")
    G = G[:, keep]
    f = fit_relaxation(times, G)
    s = acc.synapse
    if not math.isfinite(f.tau):
        s["retention_tau_s"] = 0.0
        acc.notes.append("retention: no drift seen; retention_tau_s = 0 (no drift)")
    else:
        tau = f.tau
        if tau > 4.2e9:
            acc.notes.append(f"retention: fitted tau {tau:.3g} s clipped to 4.2e9 s (card range)")
            tau = 4.2e9
        s["retention_tau_s"] = float(f"{tau:.4g}")
        s["relax_frac"] = round(min(1.0, max(0.0, (f.g_inf - gmin) / (gmax - gmin))), 4)
        acc.source["synapse.relax_frac"] = "retention.csv"
    acc.source["synapse.retention_tau_s"] = "retention.csv"
    pred = f.predict(times).T
    r = (G - pred)
    acc.residuals.append(Residual("retention", float(np.sqrt(np.mean(r ** 2))), float(np.max(np.abs(r))), "uS", G.size))
    acc.plots["retention"] = (times, G, f)


def _fit_endurance(t: Table, acc: _Acc, base_endurance: float) -> None:
    c = t.cols
    ns = np.unique(c["pulses"])
    W = np.array([np.mean((c["g_high_us"] - c["g_low_us"])[c["pulses"] == n]) for n in ns])
    if len(ns) < 3:
        raise ConfigError(f"{t.path}: column pulses: needs at least 3 checkpoints, has {len(ns)}")
    w0 = float(np.mean(W[:3]))
    noise = float(np.std(W[:3], ddof=1))
    tol = max(3 * noise, 0.02 * w0)
    s = acc.synapse
    if not np.any(W < w0 - tol):
        e = max(base_endurance, float(ns[-1])) if base_endurance else 0.0
        s["endurance_pulses"] = float(f"{e:.4g}")
        acc.notes.append(f"endurance: no window loss up to {ns[-1]:.3g} pulses; endurance_pulses "
                         + ("kept from the base card" if e == base_endurance else f"set to the run length {e:.3g}"))
        model = np.full_like(W, w0)
    else:
        best = (math.inf, 0.0, 0.0)
        use = W > 0.2 * w0     # a worn-out cell no longer follows the shrink law
        for ne in np.geomspace(ns[0], ns[-1], 400):
            x = np.maximum(ns[use] - ne, 0) / ne
            y = W[use] - w0
            den = float(x @ x)
            if den == 0:
                continue
            k = max(0.0, -float(x @ y) / den / w0)   # W = w0 (1 - k x)
            err = float(np.sum((w0 * (1 - k * x) - W[use]) ** 2))
            if err < best[0]:
                best = (err, ne, k)
        _, ne, k = best
        s["endurance_pulses"] = float(f"{ne:.4g}")
        s["endurance_mode"] = "shrink"
        s["endurance_shrink"] = round(min(0.99, k), 4)
        acc.source["synapse.endurance_shrink"] = "endurance.csv"
        model = w0 * (1 - k * np.maximum(ns - ne, 0) / ne)
    acc.source["synapse.endurance_pulses"] = "endurance.csv"
    r = (W - model)[W > 0.2 * w0]
    acc.residuals.append(Residual("endurance window", float(np.sqrt(np.mean(r ** 2))) if len(r) else 0.0,
                                  float(np.max(np.abs(r))) if len(r) else 0.0, "uS", len(ns)))
    acc.plots["endurance"] = (ns, W, model)


def _fit_neuron(t: Table, acc: _Acc, base_step_ns: float) -> None:
    c = t.cols
    xs = np.unique(c["input"])
    rs = np.array([c["rate_hz"][c["input"] == x].mean() for x in xs])
    if "step_ns" in t.meta:
        try:
            step_ns = float(t.meta["step_ns"])
        except ValueError:
            raise ConfigError(f"{t.path}: metadata step_ns = {t.meta['step_ns']!r} is not a number") from None
        if not (math.isfinite(step_ns) and step_ns > 0):
            raise ConfigError(f"{t.path}: metadata step_ns = {t.meta['step_ns']!r} must be a positive number")
        acc.timing["step_ns"] = step_ns
        acc.source["timing.step_ns"] = "neuron.csv (# step_ns)"
    else:
        top = rs.max()
        if top > 0 and np.sum(rs >= 0.99 * top) >= 2:
            step_ns = 1e9 / top
            acc.timing["step_ns"] = float(f"{step_ns:.6g}")
            acc.source["timing.step_ns"] = "neuron.csv (saturated rate = 1 / step)"
        else:
            step_ns = base_step_ns
    top = rs.max()
    lin = (rs > 0) & (rs < 0.9 * top)
    if np.sum(lin) < 2:
        acc.notes.append("neuron: fewer than 2 points below saturation: threshold not fitted")
        return
    k = float(np.sum(xs[lin] * rs[lin]) / np.sum(xs[lin] ** 2))   # rate = input / (th * t_step)
    th = 1.0 / (k * step_ns * 1e-9)
    acc.neuron["threshold"] = round(min(30000.0, max(0.01, th)), 5)
    acc.source["neuron.threshold"] = "neuron.csv (f-I slope, non-leaky LIF)"
    model = np.minimum(xs / (th * step_ns * 1e-9), top)
    r = rs - model
    acc.residuals.append(Residual("neuron f-I", float(np.sqrt(np.mean(r ** 2))), float(np.max(np.abs(r))), "Hz", len(xs)))
    acc.plots["neuron"] = (xs, rs, model)


# ---------------------------------------------------------------- the card and the report
@dataclass(frozen=True)
class FitReport:
    card: str
    card_path: str
    mode: str
    base: str
    fitted: dict[str, str]           # "section.field" -> data it came from
    values: dict[str, Any]
    residuals: tuple[Residual, ...]
    notes: tuple[str, ...]
    png: str
    files: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"card": self.card, "card_path": self.card_path, "mode": self.mode, "base": self.base,
                "fitted": self.fitted, "values": self.values,
                "residuals": [r.__dict__ for r in self.residuals], "notes": list(self.notes),
                "png": self.png, "files": list(self.files)}

    @property
    def text(self) -> str:
        lines = [f"card {self.card} fitted ({self.mode} mode) from {', '.join(self.files)}; other fields from {self.base}",
                 f"  written to {self.card_path}; figure {self.png}"]
        for k, src in self.fitted.items():
            lines.append(f"  {k:28s} = {self.values[k]!r:>14s}   from {src}" if not isinstance(self.values[k], list)
                         else f"  {k:28s} = [{len(self.values[k])} values]   from {src}")
        lines.append("residuals:")
        for r in self.residuals:
            lines.append(f"  {r.data:28s} rms {r.rms:.4g} {r.unit}, max {r.max:.4g} {r.unit} ({r.points} points)")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int,)):
        return str(v)
    if isinstance(v, float):
        r = repr(float(v))
        return r if ("." in r or "e" in r or "inf" in r or "nan" in r) else r + ".0"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(type(v))


def card_toml(data: dict[str, dict[str, Any]], comment: str = "") -> str:
    out = [f"# {line}" for line in comment.splitlines()] if comment else []
    for sec, kv in data.items():
        out.append(f"\n[{sec}]")
        for k, v in kv.items():
            if v is None or (isinstance(v, list) and not v):
                continue
            out.append(f"{k} = {_toml_value(v)}")
    return "\n".join(out) + "\n"


def fit_card(data_dir: str | Path, *, base: str | Path = "spec", mode: str = "exponential", name: str | None = None,
             out: str | Path | None = None) -> FitReport:
    """Fit a card from the CSV files in data_dir; write it (and fit.png beside it)."""
    if mode not in ("exponential", "table"):
        raise ConfigError(f"fit mode {mode!r} not one of exponential, table")
    d = Path(data_dir)
    if not d.is_dir():
        raise ConfigError(f"{d}: not a directory")
    present = [f for f in FILES if (d / f).exists()]
    if not present:
        raise ConfigError(f"{d}: no data files (expected any of {', '.join(FILES)}; see docs/csv-format.md)")
    tables = {f: read_csv(d / f) for f in present}
    base_card = cardlib.load(base)
    acc = _Acc()
    if "pd.csv" in tables:
        _fit_pd(tables["pd.csv"], mode, acc)
    gmin = acc.synapse.get("g_min_us", base_card["synapse"]["g_min_us"])
    gmax = acc.synapse.get("g_max_us", base_card["synapse"]["g_max_us"])
    if "retention.csv" in tables:
        _fit_retention(tables["retention.csv"], acc, gmin, gmax)
    if "endurance.csv" in tables:
        _fit_endurance(tables["endurance.csv"], acc, base_card["synapse"]["endurance_pulses"])
    if "neuron.csv" in tables:
        _fit_neuron(tables["neuron.csv"], acc, base_card["timing"]["step_ns"])
    data = {k: dict(v) for k, v in base_card.data.items()}
    name = name or f"fit-{d.resolve().name}"
    data["card"] = {"name": name, "description": f"fitted from {', '.join(present)} in {d}",
                    "source": f"spikeboard cards fit ({mode}); unmeasured fields from card {base_card.name}"}
    data["synapse"].update(acc.synapse)
    data["neuron"].update(acc.neuron)
    data["timing"].update(acc.timing)
    if data["synapse"]["model"] == "table":
        data["synapse"]["nl_p"] = data["synapse"]["nl_d"] = None
    else:
        data["synapse"]["table_p"] = data["synapse"]["table_d"] = []
    s = data["synapse"]
    if s["g_full_us"] < s["g_max_us"]:
        s["g_full_us"] = float(f"{s['g_max_us'] * 1.1:.4g}")
        acc.source["synapse.g_full_us"] = "g_max_us x 1.1 (base card's full scale was below the measured window)"
    text = card_toml(data, f"Device card fitted by `spikeboard cards fit --mode {mode}` from {d}.\n"
                           f"Fields not listed below as fitted come from card {base_card.name}.\n"
                     + "\n".join(f"fitted {k}: {v}" for k, v in acc.source.items()))
    out_path = Path(out) if out is not None else d / f"{name}.toml"
    if out_path.is_dir():
        raise ConfigError("is a directory; give the card file to write", field=f"--output {out_path}")
    # validate and compile before anything is written, then replace atomically:
    # a failed fit never clobbers a card already at out_path
    try:
        card = cardlib.Card(name, out_path, cardlib.validate(cardlib.tomllib.loads(text), out_path), text)
        cardlib.compile_card(card)
    except ConfigError as e:
        raise ConfigError(f"{d}: the data give an invalid card, nothing written: {e}") from None
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, out_path)
    png = out_path.with_suffix(".png")
    _figure(acc, png)
    values = {}
    for k in acc.source:
        sec, f = k.split(".", 1)
        values[k] = card.data[sec][f]
    return FitReport(name, str(out_path), mode, base_card.name, dict(acc.source), values, tuple(acc.residuals),
                     tuple(acc.notes), str(png), tuple(present))


def _figure(acc: _Acc, png: Path) -> None:
    from .characterize import _plt

    plt = _plt()
    fig, ax = plt.subplots(2, 2, figsize=(10, 7))
    a = ax[0, 0]
    for kind, col in (("P", "tab:red"), ("D", "tab:blue")):
        if f"pd_{kind}" in acc.plots:
            q, m, model, f = acc.plots[f"pd_{kind}"]
            a.plot(q, m, "o", ms=2, color=col, label=f"{kind} mean data")
            a.plot(q, model, "-", color=col, label=f"{kind} model (NL {f.nl_label:+.2f})")
    a.set_xlabel("pulse")
    a.set_ylabel("G (uS)")
    a.set_title("update branches")
    a.legend(fontsize=7)
    a = ax[0, 1]
    if "retention" in acc.plots:
        t, G, f = acc.plots["retention"]
        tt = np.geomspace(max(t[t > 0].min(), 1.0), 3.2e8, 100)
        for j in range(G.shape[1]):
            a.semilogx(t[1:], G[1:, j], "o", ms=3)
        for row in f.predict(tt):
            a.semilogx(tt, row, "k-", lw=0.6)
    a.set_title("retention (to 10 years)")
    a.set_xlabel("time (s)")
    a = ax[1, 0]
    if "endurance" in acc.plots:
        n, W, model = acc.plots["endurance"]
        a.semilogx(n, W, "o", ms=3, label="window")
        a.semilogx(n, model, "-", label="fit")
        a.legend(fontsize=7)
    a.set_title("endurance")
    a.set_xlabel("pulses")
    a = ax[1, 1]
    if "neuron" in acc.plots:
        x, r, model = acc.plots["neuron"]
        a.plot(x, r / 1e6, "o", ms=3, label="data")
        a.plot(x, model / 1e6, "-", label="LIF fit")
        a.legend(fontsize=7)
    a.set_title("neuron f-I")
    a.set_xlabel("input (windows / step)")
    a.set_ylabel("MHz")
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)
