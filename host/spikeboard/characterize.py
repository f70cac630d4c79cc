"""Device characterization on any Backend: the measurements a device lab runs.

Each scheme drives the chip only through the Backend interface (pulse, read,
program, age, infer, counters), so it runs the same on the model, the emulated
board and a real board. Each writes its data as CSV (in the format
`spikeboard cards fit` reads, docs/csv-format.md) plus a PNG figure into an
output directory and returns a frozen dataclass.

  pd         potentiation/hold/depression pulse scheme (pattern string):
             linearity and symmetry (docs/spec.md), exponential fit (A, NeuroSim NL)
             per branch, distinguishable levels, cycle-to-cycle spread
  retention  program levels, read over log-spaced (model) time, fit the
             relaxation, extrapolate to 1 and 10 years
  endurance  full P/D swings, window vs pulses, cycles to a window fraction,
             extrapolated (and said so) when the run is shorter than 1e8 pulses
  yield      every cell to min and max, map of failing cells by fault type
  neuron     f-I curve, highest sustained rate, energy per spike, voltage
  interface  rate and energy per operation of the pre and post circuits

Conductances are reported in uS when the card's g_full_us is known (codes
0..65535 span 0..g_full_us)."""
from __future__ import annotations

import csv
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .backends.base import Backend, Counters
from .errors import ConfigError
from .metrics import (distinguishable_levels, fit_exponential, fit_relaxation, linearity, symmetry)

SCHEMES = ("pd", "retention", "endurance", "yield", "neuron", "interface")
YEAR_S = 365.25 * 86400.0
ENDURANCE_TARGET = 1e8
CODE_MAX = 65535


def require_one_array(tiled: str | None) -> None:
    """The schemes measure one physical array; a tiled layer is a grid of arrays of
    the card's geometry, so it is characterized by characterizing that array."""
    if tiled:
        raise ConfigError("characterization measures one physical array (each tile is one array of the "
                          "card's geometry): drop --tiled", field=f"--tiled {tiled}")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@dataclass(frozen=True)
class SchemeResult:
    """Base of the schemes' frozen result dataclasses: their JSON form (non-finite floats as null)."""

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: _clean(v) for k, v in d.items()}


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, Path):
        return str(v)
    return v


# ---------------------------------------------------------------- pattern strings
_TOKEN = re.compile(r"\s*(?:(?P<op>[PDHpdh])\s*(?P<n>\d+)|(?P<open>\()|(?P<close>\))(?:\s*[xX*]\s*(?P<rep>\d+))?|(?P<sep>,))")


def parse_pattern(text: str) -> list[tuple[str, int]]:
    """'(P64 H16 D64)x3' -> [('P', 64), ('H', 16), ('D', 64), ...] expanded.

    Tokens: P<n> potentiation, D<n> depression, H<n> hold (reads only, no
    pulse), parentheses with an optional xN repeat; spaces or commas between."""
    pos = 0
    stack: list[list[tuple[str, int]]] = [[]]
    text = text.strip()
    if not text:
        raise ConfigError("pulse pattern: empty (e.g. 'P64 H16 D64' or '(P64 H16 D64)x3')")
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ConfigError(f"pulse pattern {text!r}: cannot read at column {pos + 1}: {text[pos:pos + 8]!r}")
        pos = m.end()
        if m.group("op"):
            n = int(m.group("n"))
            if n < 1 or n > 65535:
                raise ConfigError(f"pulse pattern {text!r}: count {n} out of 1..65535")
            stack[-1].append((m.group("op").upper(), n))
        elif m.group("open"):
            stack.append([])
        elif m.group("close"):
            if len(stack) == 1:
                raise ConfigError(f"pulse pattern {text!r}: unmatched ')' at column {pos}")
            body = stack.pop()
            stack[-1].extend(body * int(m.group("rep") or 1))
    if len(stack) != 1:
        raise ConfigError(f"pulse pattern {text!r}: unclosed '('")
    if not any(op in "PD" for op, _ in stack[0]):
        raise ConfigError(f"pulse pattern {text!r}: no P or D pulses")
    if sum(n for _, n in stack[0]) > 200000:
        raise ConfigError(f"pulse pattern {text!r}: more than 200000 pulses")
    return stack[0]


def parse_cells(text: str | None, ncells: int, default: Sequence[int]) -> list[int]:
    """'all', '0-15', '0,4,8-11' -> sorted unique cell indices."""
    if text is None or text == "":
        return list(default)
    if text == "all":
        return list(range(ncells))
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                a, b = (int(x) for x in part.split("-", 1))
                out.update(range(a, b + 1))
            else:
                out.add(int(part))
        except ValueError:
            raise ConfigError(f"cells {text!r}: cannot read {part!r} (use 'all', '0-15' or '0,4,8-11')") from None
    bad = [c for c in out if not 0 <= c < ncells]
    if bad or not out:
        raise ConfigError(f"cells {text!r}: outside the array 0..{ncells - 1}")
    return sorted(out)


def _runs(cells: Sequence[int]) -> list[tuple[int, int]]:
    """Contiguous runs (first, n) of sorted cell indices: one backend call each."""
    runs: list[tuple[int, int]] = []
    for c in cells:
        if runs and runs[-1][0] + runs[-1][1] == c:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((c, 1))
    return runs


def _pulse(b: Backend, runs, pol: int, count: int) -> np.ndarray:
    out = []
    for first, n in runs:
        left = count
        g = None
        while True:  # count is 16-bit on the wire
            k = min(left, 65535)
            g = b.pulse(first, n, pol, k)
            left -= k
            if left <= 0:
                break
        out.append(np.asarray(g, dtype=np.int64))
    return np.concatenate(out)


def _read(b: Backend, runs) -> np.ndarray:
    return np.concatenate([np.asarray(b.read_conductance(f, n), dtype=np.int64) for f, n in runs])


@dataclass(frozen=True)
class Scale:
    """Code <-> uS, and the nominal window in codes from the compiled block."""

    g_full_us: float
    g_min: int
    g_max: int

    @classmethod
    def of(cls, b: Backend, card=None) -> "Scale":
        p = b._p()
        full = float(card["synapse"]["g_full_us"]) if card is not None else float(CODE_MAX)
        return cls(full, int(p.g_min), int(p.g_max))

    def us(self, code):
        return np.asarray(code, dtype=float) * self.g_full_us / CODE_MAX

    @property
    def window(self) -> int:
        return self.g_max - self.g_min


def _energy_aj(p, c: Counters) -> dict[str, int]:
    return {"fire": c.fires * p.e_fire_aj, "update": c.updates * p.e_update_aj, "read": c.reads * p.e_read_aj,
            "pot": c.pot * p.e_pot_aj, "dep": c.dep * p.e_dep_aj, "pre": c.pre * p.e_pre_aj,
            "post": c.post * p.e_post_aj}


def _write_csv(path: Path, header: Sequence[str], rows, comments: Sequence[str] = ()) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        for c in comments:
            f.write(f"# {c}\n")
        w = csv.writer(f)
        w.writerow(header)
        for r in rows:
            w.writerow([(f"{x:.6g}" if isinstance(x, (float, np.floating)) else x) for x in r])


# ---------------------------------------------------------------- pd
@dataclass(frozen=True)
class BranchFit(SchemeResult):
    kind: str               # "P" or "D"
    pulses: int
    linearity: float        # of the mean normalised branch
    a_pulses: float         # A of G = Gmin + B (1 - exp(-p/A)); inf for a straight line
    a_over_pmax: float
    nl_label: float         # NeuroSim's label (+ potentiation, - depression)
    rms: float              # fit residual, fraction of the range


@dataclass(frozen=True)
class PDResult(SchemeResult):
    pattern: str
    cells: int
    cycles: int
    linearity: float                 # worse branch of the mean normalised curves (SPEC definition)
    symmetry: float
    linearity_cells_median: float    # per cell and cycle, noise included
    linearity_cells_worst: float
    symmetry_cells_median: float
    symmetry_cells_worst: float
    branches: tuple[BranchFit, ...]
    levels: int                      # distinguishable levels along the potentiation branch
    c2c_spread: float | None         # std over cycles of G at the same pulse, fraction of range (needs >= 2 cycles)
    c2c_step: float | None           # std over cycles of one pulse's step, fraction of range
    hold_drift: float                # largest move during holds, fraction of range
    g_min_us: float
    g_max_us: float
    e_pot_fj: float | None           # energy per potentiation / depression pulse (counters x energies)
    e_dep_fj: float | None
    csv: str
    trace_csv: str
    png: str
    method: str


def _branches(ops: list[tuple[str, int]]) -> tuple[list[tuple[str, int, int, int]], list[str]]:
    """Positions of the P and D branches in the trace: (kind, start, stop, cycle);
    trace index 0 is the state before the pattern, index k after step k."""
    out: list[tuple[str, int, int, int]] = []
    cycle, start = -1, 0
    cur: str | None = None
    flat = [op for op, n in ops for _ in range(n)]
    for k, op in enumerate(flat + ["END"]):
        if op != cur:
            if cur == "P" or cur == "D":
                out.append((cur, start, k, max(cycle, 0)))
            if op == "P":
                cycle += 1
            cur, start = op, k
    return out, flat


def run_pd(b: Backend, out: Path, *, pattern: str = "(P64 H16 D64)x3", cells: Sequence[int] | None = None,
           card=None, start: str = "min") -> PDResult:
    """Apply the pattern to the cells one pulse at a time, reading G after each."""
    ops = parse_pattern(pattern)
    sc = Scale.of(b, card)
    cells = list(cells) if cells is not None else list(range(min(16, b.cells)))
    runs = _runs(cells)
    longest = max(n for op, n in ops if op in "PD")
    if start in ("min", "max"):
        _pulse(b, runs, -1 if start == "min" else 1, 4 * longest)
    c0 = b.counters()
    trace = [_read(b, runs)]
    for op, n in ops:
        pol = {"P": 1, "D": -1, "H": 0}[op]
        for _ in range(n):
            trace.append(_pulse(b, runs, pol, 1))
    dc = b.counters() - c0
    G = np.stack(trace).astype(float)            # (steps+1, cells) codes
    branches, flat = _branches(ops)

    # hold drift
    hold = 0.0
    rng_all = max(float(G.max() - G.min()), 1.0)
    for k, op in enumerate(flat):
        if op == "H":
            hold = max(hold, float(np.max(np.abs(G[k + 1] - G[k]))) / rng_all)

    # per cell, per cycle: normalised branches
    P = [(s, e, cy) for kind, s, e, cy in branches if kind == "P"]
    D = [(s, e, cy) for kind, s, e, cy in branches if kind == "D"]
    lin_cells, sym_cells = [], []
    normP, normD = [], []
    rawP: dict[int, list[np.ndarray]] = {}
    rawD: dict[int, list[np.ndarray]] = {}
    for j in range(len(cells)):
        for cy in sorted({c for _, _, c in P} | {c for _, _, c in D}):
            bp = [G[s:e + 1, j] for s, e, c in P if c == cy]
            bd = [G[s:e + 1, j] for s, e, c in D if c == cy]
            seg = np.concatenate(bp + bd) if (bp or bd) else None
            if seg is None:
                continue
            lo, hi = float(seg.min()), float(seg.max())
            if hi - lo < 1:
                continue
            for x in bp:
                lin_cells.append(linearity(x, lo, hi))
                normP.append((x - lo) / (hi - lo))
                rawP.setdefault(j, []).append(x)
            for x in bd:
                lin_cells.append(linearity(x, lo, hi))
                normD.append((x - lo) / (hi - lo))
                rawD.setdefault(j, []).append(x)
            if bp and bd:
                sym_cells.append(symmetry(bp[0], bd[0], lo, hi))

    def mean_curve(curves):
        if not curves:
            return None
        n = min(len(c) for c in curves)
        return np.mean([c[:n] for c in curves], axis=0)

    mp, md = mean_curve(normP), mean_curve(normD)
    fits = []
    lins = []
    for kind, m in (("P", mp), ("D", md)):
        if m is None or len(m) < 3:
            continue
        lo, hi = float(m.min()), float(m.max())
        rng = max(hi - lo, 1e-12)
        lin = linearity(m, lo, hi)
        lins.append(lin)
        f = fit_exponential(m, depression=(kind == "D"))
        n = len(m) - 1
        fits.append(BranchFit(kind, n, lin, f.a_pulses, f.a_pulses / n if math.isfinite(f.a_pulses) else math.inf,
                              f.nl_label, f.rms / rng))
    if not lins:
        raise ConfigError(f"pulse pattern {pattern!r}: no branch long enough to measure (need >= 2 pulses)")
    lin = min(lins)
    if mp is not None and md is not None:
        lo = min(mp.min(), md.min())
        hi = max(mp.max(), md.max())
        sym = symmetry(mp, md, lo, hi)
    else:
        sym = math.nan

    # cycle-to-cycle spread: same cell, same branch, several cycles
    spreads, steps_sd = [], []
    for raws in (rawP, rawD):
        for j, xs in raws.items():
            if len(xs) < 2:
                continue
            n = min(len(x) for x in xs)
            a = np.array([x[:n] for x in xs])
            r = max(float(a.max() - a.min()), 1.0)
            spreads.append(float(np.mean(np.std(a, axis=0, ddof=1))) / r)
            steps_sd.append(float(np.mean(np.std(np.diff(a, axis=1), axis=0, ddof=1))) / r)
    c2c = float(np.mean(spreads)) if spreads else None
    c2c_step = float(np.mean(steps_sd)) if steps_sd else None
    levels = 0
    if mp is not None:
        levels = distinguishable_levels(mp, c2c or 0.0)

    p = b._p()
    e_pot = dc.pot * p.e_pot_aj / dc.pot / 1000.0 if dc.pot else None
    e_dep = dc.dep * p.e_dep_aj / dc.dep / 1000.0 if dc.dep else None
    gmin_us = float(np.mean([sc.us(x[0]) for xs in rawP.values() for x in xs])) if rawP else float(sc.us(G.min()))
    gmax_us = float(np.mean([sc.us(x[-1]) for xs in rawP.values() for x in xs])) if rawP else float(sc.us(G.max()))

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, trace_path, png = out / "pd.csv", out / "pd_trace.csv", out / "pd.png"
    rows = []
    for kind, s, e, cy in branches:
        for j, c in enumerate(cells):
            for q in range(e - s + 1):
                rows.append((c, cy, kind, q, float(sc.us(G[s + q, j]))))
    for k, op in enumerate(flat):
        if op == "H":
            for j, c in enumerate(cells):
                rows.append((c, -1, "H", k + 1, float(sc.us(G[k + 1, j]))))
    _write_csv(csv_path, ("cell", "cycle", "branch", "pulse", "g_us"), rows,
               [f"spikeboard characterize pd: pattern {pattern}", f"backend {b.name}",
                f"g_full_us = {sc.g_full_us}"])
    _write_csv(trace_path, ["step", "op"] + [f"cell{c}" for c in cells],
               [[k, "start" if k == 0 else flat[k - 1]] + list(sc.us(G[k])) for k in range(len(G))])

    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    steps_x = np.arange(len(G))
    for j in range(len(cells)):
        ax[0].plot(steps_x, sc.us(G[:, j]), lw=0.6, alpha=0.6)
    ax[0].set_xlabel("pulse / hold step")
    ax[0].set_ylabel("G (uS)" if card is not None else "G (code)")
    ax[0].set_title(f"{pattern} on {len(cells)} cells")
    for kind, m, col in (("P", mp, "tab:red"), ("D", md, "tab:blue")):
        if m is None:
            continue
        pulse = np.arange(len(m))
        ax[1].plot(pulse, m, col, lw=2, label=f"{kind} mean")
        ax[1].plot(pulse, np.linspace(m[0], m[-1], len(m)), col, ls=":", lw=1)
        bf = next((bf for bf in fits if bf.kind == kind), None)
        if bf is not None and math.isfinite(bf.a_pulses):
            base = 1 - np.exp(-pulse / bf.a_pulses)
            bb = (m[-1] - m[0]) / base[-1]
            ax[1].plot(pulse, m[0] + bb * base, col, ls="--", lw=1,
                       label=f"{kind} fit A={bf.a_pulses:.1f}, NL={bf.nl_label:+.2f}")
    ax[1].set_xlabel("pulse in branch")
    ax[1].set_ylabel("G (normalised)")
    ax[1].set_title(f"linearity {100 * lin:.1f} %, symmetry {100 * sym:.1f} %")
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)

    med = lambda v: float(np.median(v)) if v else math.nan  # noqa: E731
    return PDResult(pattern, len(cells), max((cy for _, _, _, cy in branches), default=0) + 1, lin, sym,
                    med(lin_cells), float(min(lin_cells)) if lin_cells else math.nan,
                    med(sym_cells), float(min(sym_cells)) if sym_cells else math.nan,
                    tuple(fits), levels, c2c, c2c_step, hold, gmin_us, gmax_us, e_pot, e_dep,
                    str(csv_path), str(trace_path), str(png),
                    f"pd scheme on {b.name} backend: mean branch of {len(cells)} cells, each cycle scaled to its range")


# ---------------------------------------------------------------- retention
@dataclass(frozen=True)
class RetentionResult(SchemeResult):
    levels: int
    cells_per_level: int
    t_max_s: float
    tau_s: float                     # fitted relaxation time constant (inf: no drift seen)
    g_relax_us: float | None
    g0_us: tuple[float, ...]         # level means after programming
    g_1y_us: tuple[float, ...]       # extrapolated
    g_10y_us: tuple[float, ...]
    distinguishable_1y: bool
    distinguishable_10y: bool
    retention_s: float               # time until a level drifts half-way to its neighbour (inf: never)
    retention_years: float
    extrapolated: bool
    program_failed: int
    rms_us: float
    csv: str
    png: str
    method: str


def run_retention(b: Backend, out: Path, *, levels: int = 8, cells_per_level: int = 4, t_min_s: float = 10.0,
                  t_max_s: float = 1e7, points: int = 13, card=None, first: int = 0) -> RetentionResult:
    if levels < 2:
        raise ConfigError("retention: need at least 2 levels")
    sc = Scale.of(b, card)
    n = levels * cells_per_level
    if first + n > b.cells:
        raise ConfigError(f"retention: {levels} levels x {cells_per_level} cells need {n} cells, array has {b.cells}")
    targets_lv = np.linspace(sc.g_min + 0.06 * sc.window, sc.g_max - 0.06 * sc.window, levels)
    targets = np.repeat(targets_lv, cells_per_level).round().astype(np.uint16)
    tol = max(1, int(sc.window / (4 * levels)))
    pr = b.program(targets, first=first, tolerance=tol, max_pulses=255)
    ok = ~np.asarray(pr.failed, dtype=bool)
    times = np.unique(np.concatenate([[0.0], np.geomspace(t_min_s, t_max_s, points)]).round())
    reads = []
    now = 0
    for t in times:
        dt = int(t) - now
        if dt > 0:
            b.age(dt)
            now += dt
        reads.append(np.asarray(b.read_conductance(first, n), dtype=float))
    R = np.stack(reads)                         # (times, cells)
    lv = np.repeat(np.arange(levels), cells_per_level)
    means = np.array([[R[k, (lv == i) & ok].mean() if np.any((lv == i) & ok) else np.nan
                       for i in range(levels)] for k in range(len(times))])
    use = ~np.isnan(means[0])
    fit = fit_relaxation(times, means[:, use])
    g0 = fit.g0
    def at(t):
        return fit.predict(t)
    g1, g10 = at(YEAR_S), at(10 * YEAR_S)
    order = np.argsort(g0)
    g0s = g0[order]
    half = np.array([min(g0s[i] - g0s[i - 1] if i > 0 else np.inf, g0s[i + 1] - g0s[i] if i + 1 < len(g0s) else np.inf)
                     for i in range(len(g0s))]) / 2
    half_by = np.empty_like(half)
    half_by[order] = half

    def disting(gt):
        return bool(np.all(np.abs(gt - g0) < half_by))

    if not math.isfinite(fit.tau):
        ret = math.inf
    else:
        ts = []
        for i in range(len(g0)):
            amp = abs(g0[i] - fit.g_inf)
            ts.append(math.inf if half_by[i] >= amp else -fit.tau * math.log(1 - half_by[i] / amp))
        ret = min(ts)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, png = out / "retention.csv", out / "retention.png"
    rows = []
    for k, t in enumerate(times):
        for j in range(n):
            if ok[j]:
                rows.append((first + j, int(lv[j]), float(t), float(sc.us(R[k, j]))))
    _write_csv(csv_path, ("cell", "level", "time_s", "g_us"), rows,
               [f"spikeboard characterize retention on {b.name}", f"g_full_us = {sc.g_full_us}"])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    tt = np.geomspace(max(t_min_s, 1.0), 20 * YEAR_S, 200)
    for i in range(means.shape[1]):
        if not use[i]:
            continue
        ax.semilogx(times[1:], sc.us(means[1:, i]), "o", ms=3)
    for i in range(len(g0)):
        ax.semilogx(tt, sc.us(fit.predict(tt)[i]), "k-", lw=0.6)
    for x, lab in ((YEAR_S, "1 y"), (10 * YEAR_S, "10 y")):
        ax.axvline(x, color="grey", ls=":")
        ax.text(x, ax.get_ylim()[1], lab, fontsize=7, va="top")
    ax.axvline(t_max_s, color="tab:orange", ls="--", lw=0.8)
    ax.set_xlabel("time (s); dashed: end of measurement, beyond: extrapolated")
    ax.set_ylabel("G (uS)" if card is not None else "G (code)")
    ax.set_title(f"retention: {len(g0)} levels, tau {fit.tau:.3g} s, levels last {ret / YEAR_S:.3g} y")
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return RetentionResult(levels, cells_per_level, float(t_max_s), fit.tau,
                           float(sc.us(fit.g_inf)) if math.isfinite(fit.g_inf) else None,
                           tuple(float(x) for x in sc.us(g0)), tuple(float(x) for x in sc.us(g1)),
                           tuple(float(x) for x in sc.us(g10)), disting(g1), disting(g10), ret, ret / YEAR_S,
                           ret > t_max_s, int((~ok).sum()), float(sc.us(fit.rms)), str(csv_path), str(png),
                           f"retention scheme on {b.name}: {levels} levels read to {t_max_s:.3g} s, "
                           f"relaxation fit extrapolated")


# ---------------------------------------------------------------- endurance
@dataclass(frozen=True)
class EnduranceResult(SchemeResult):
    cells: int
    swing_pulses: int
    run_pulses: int                  # pulses per cell in the run
    window0_us: float
    window_end_us: float
    fraction: float                  # failure: window below this fraction of the initial
    endurance_pulses: float          # measured or extrapolated pulses to failure (inf: unbounded)
    endurance_cycles: float
    endurance_lower_pulses: float    # conservative (2-sigma slope) extrapolation
    extrapolated: bool
    note: str
    csv: str
    png: str
    method: str


def run_endurance(b: Backend, out: Path, *, cells: Sequence[int] | None = None, swing: int = 64,
                  max_pulses: float = 3e7, checkpoints: int = 24, fraction: float = 0.5,
                  max_calls: int = 4000, card=None) -> EnduranceResult:
    sc = Scale.of(b, card)
    cells = list(cells) if cells is not None else list(range(min(4, b.cells)))
    runs = _runs(cells)
    max_pulses = int(max_pulses)
    marks = np.unique(np.geomspace(8 * swing, max(max_pulses, 16 * swing), checkpoints).astype(np.int64))
    burst = int(min(65535, max(swing, math.ceil(max_pulses / max(1, max_calls) / 2))))
    done = 0
    rows, ns, ws = [], [], []
    for m in marks:
        if m < done + 4 * swing:
            continue
        # stress: alternating P/D bursts (full swings) up to the checkpoint
        while done + 2 * burst + 4 * swing <= m:
            _pulse(b, runs, 1, burst)
            _pulse(b, runs, -1, burst)
            done += 2 * burst
        # measure: saturating P then D, read each rail
        hi = _pulse(b, runs, 1, 2 * swing)
        lo = _pulse(b, runs, -1, 2 * swing)
        done += 4 * swing
        w = float(np.mean(hi - lo))
        ns.append(done)
        ws.append(w)
        for j, c in enumerate(cells):
            rows.append((c, done, float(sc.us(hi[j])), float(sc.us(lo[j]))))
    ns_a, ws_a = np.array(ns, float), np.array(ws, float)
    w0 = float(np.mean(ws_a[:3]))
    thr = fraction * w0
    below = np.nonzero(ws_a < thr)[0]
    note = ""
    lower = math.inf
    if len(below):
        k = below[0]
        if k == 0:
            est = float(ns_a[0])
        else:  # interpolate between the last good and the first bad checkpoint
            n1, n2, w1, w2 = ns_a[k - 1], ns_a[k], ws_a[k - 1], ws_a[k]
            est = float(n1 + (w1 - thr) * (n2 - n1) / max(w1 - w2, 1e-9))
        lower = est
        extrap = False
        note = f"measured: window fell below {fraction:.0%} within the run"
    else:
        extrap = True
        noise = float(np.std(ws_a[:3], ddof=1)) if len(ws_a) >= 3 else 0.0
        tol = max(3 * noise, 0.01 * w0)
        deg = np.nonzero(ws_a < w0 - tol)[0]
        if len(deg) >= 2:
            x, y = ns_a[deg[0] - 1:] if deg[0] > 0 else ns_a[deg], ws_a[deg[0] - 1:] if deg[0] > 0 else ws_a[deg]
            k, c = np.polyfit(x, y, 1)
            est = float((thr - c) / k) if k < 0 else math.inf
            resid = y - (k * x + c)
            se = float(np.sqrt(np.sum(resid ** 2) / max(len(x) - 2, 1) / np.sum((x - x.mean()) ** 2))) if len(x) > 2 else 0.0
            kk = k - 2 * se
            lower = float((thr - c) / kk) if kk < 0 else math.inf
            note = (f"extrapolated: run of {done:.3g} pulses per cell is shorter than the failure point; "
                    f"linear trend of the degrading window")
        else:
            x, y = ns_a, ws_a
            k, c = np.polyfit(x, y, 1)
            resid = y - (k * x + c)
            se = float(np.sqrt(np.sum(resid ** 2) / max(len(x) - 2, 1) / np.sum((x - x.mean()) ** 2)))
            est = math.inf
            kk = k - 2 * se
            lower = float(ns_a[-1] + (ws_a[-1] - thr) / -kk) if kk < 0 else math.inf
            lower = max(lower, float(ns_a[-1]))
            note = (f"extrapolated: no window loss seen in {done:.3g} pulses per cell; the bound assumes the "
                    f"steepest loss the data allow (2 sigma)" + ("" if done >= ENDURANCE_TARGET else
                                                                 f"; the run is shorter than {ENDURANCE_TARGET:.0e}"))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, png = out / "endurance.csv", out / "endurance.png"
    _write_csv(csv_path, ("cell", "pulses", "g_high_us", "g_low_us"), rows,
               [f"spikeboard characterize endurance on {b.name}: swing {swing}, stress bursts {burst}",
                f"g_full_us = {sc.g_full_us}"])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.semilogx(ns_a, sc.us(ws_a), "o-", ms=3, label="window (mean of cells)")
    ax.axhline(float(sc.us(thr)), color="tab:red", ls=":", label=f"{fraction:.0%} of initial")
    ax.axvline(ENDURANCE_TARGET, color="grey", ls="--", label="1e8 pulses (target)")
    if math.isfinite(est):
        ax.axvline(est, color="tab:orange", ls="-.", label=f"{'extrapolated' if extrap else 'measured'} {est:.3g}")
    ax.set_xlabel("pulses per cell")
    ax.set_ylabel("window (uS)" if card is not None else "window (code)")
    ax.set_title("endurance" + (" (extrapolated)" if extrap else ""))
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return EnduranceResult(len(cells), swing, int(done), float(sc.us(w0)), float(sc.us(ws_a[-1])), fraction,
                           est, est / (2 * swing), lower, extrap, note, str(csv_path), str(png),
                           f"endurance scheme on {b.name}: {len(cells)} cells, window every checkpoint, "
                           + ("extrapolated" if extrap else "measured"))


# ---------------------------------------------------------------- yield
FAULTS = ("ok", "stuck_min", "stuck_max", "open", "narrow")


@dataclass(frozen=True)
class YieldResult(SchemeResult):
    cells: int
    working: int
    yield_frac: float
    faults: dict[str, int]
    min_window_frac: float
    csv: str
    png: str
    method: str


def scan_window(b: Backend, pulses: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The yield scan's measurement: every cell driven to its minimum, to its
    maximum and back to its minimum; returns (G at min, G at max) per cell.
    Every cell ends at its minimum."""
    runs = [(0, b.cells)]
    lo = _pulse(b, runs, -1, pulses)
    hi = _pulse(b, runs, 1, pulses)
    _pulse(b, runs, -1, pulses)
    return lo, hi


def run_yield(b: Backend, out: Path, *, pulses: int = 256, min_window_frac: float = 0.5, card=None) -> YieldResult:
    sc = Scale.of(b, card)
    p = b._p()
    n = b.cells
    lo, hi = scan_window(b, pulses)
    W = sc.window
    win = hi - lo
    cls = np.full(n, "ok", dtype=object)
    bad = win < min_window_frac * W
    opn = bad & (hi < max(sc.g_min * 0.5, 1))
    smax = bad & ~opn & (lo > sc.g_min + 0.5 * W)
    smin = bad & ~opn & ~smax & (hi < sc.g_min + 0.5 * W)
    cls[bad] = "narrow"
    cls[smin] = "stuck_min"
    cls[smax] = "stuck_max"
    cls[opn] = "open"
    faults = {f: int(np.sum(cls == f)) for f in FAULTS}
    working = faults["ok"]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, png = out / "yield.csv", out / "yield.png"
    rc = p.rows * p.cols
    rows = [(i, i // rc, (i % rc) // p.cols, i % p.cols, float(sc.us(lo[i])), float(sc.us(hi[i])), cls[i])
            for i in range(n)]
    _write_csv(csv_path, ("cell", "layer", "row", "col", "g_low_us", "g_high_us", "class"), rows,
               [f"spikeboard characterize yield on {b.name}", f"g_full_us = {sc.g_full_us}"])
    plt = _plt()
    from matplotlib.colors import ListedColormap

    code = np.array([FAULTS.index(c) for c in cls]).reshape(p.layers, p.rows, p.cols)
    fig, axes = plt.subplots(1, p.layers, figsize=(3.6 * p.layers + 1, 3.6), squeeze=False)
    cmap = ListedColormap(["#4caf50", "#1f3b99", "#d62728", "#000000", "#ff9800"])
    for l in range(p.layers):
        im = axes[0, l].imshow(code[l], cmap=cmap, vmin=-0.5, vmax=len(FAULTS) - 0.5)
        axes[0, l].set_title(f"layer {l}")
    cb = fig.colorbar(im, ax=axes[0, :].tolist(), ticks=range(len(FAULTS)))
    cb.ax.set_yticklabels(FAULTS)
    fig.suptitle(f"yield {100 * working / n:.1f} % ({working}/{n})")
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return YieldResult(n, working, working / n, faults, min_window_frac, str(csv_path), str(png),
                       f"yield scheme on {b.name}: every cell to min and max ({pulses} pulses), "
                       f"working if window >= {min_window_frac:.0%} of nominal")


# ---------------------------------------------------------------- neuron
@dataclass(frozen=True)
class NeuronResult(SchemeResult):
    neurons: int
    inputs: tuple[float, ...]        # mean input per step, units of one full synapse window
    rates_hz: tuple[float, ...]      # mean over neurons
    max_rate_hz: float               # measured at the highest input, sustained over `steps`
    refractory_limit_hz: float       # 1 / t_refrac of the card's timing
    sustained_rate_hz: float         # min of the two
    energy_per_spike_fj: float       # neuron-block energy (fire + membrane updates) / fires at max rate
    fire_energy_fj: float            # one integrate-and-fire event alone
    voltage_v: float
    threshold_fit: float | None      # threshold in window units from the f-I slope (no leak)
    steps: int
    csv: str
    png: str
    method: str


def _set_drive(b: Backend, rows_used: int, burst: int = 256) -> np.ndarray:
    """Layer-0 'positive' cells of rows_used rows to max, all else to min;
    returns the input each row gives each neuron (rows_used, neurons), window units."""
    p = b._p()
    sc = Scale.of(b)
    _pulse(b, [(0, b.cells)], -1, burst)
    cols = p.cols
    diff = bool(p.diff_mask & 1)
    nn = cols // 2 if diff else cols
    for r in range(rows_used):
        if diff:
            for j in range(nn):
                b.pulse(r * cols + 2 * j, 1, 1, burst)
        else:
            b.pulse(r * cols, cols, 1, burst)
    g = np.asarray(b.read_conductance(0, rows_used * cols), dtype=float).reshape(rows_used, cols)
    if diff:
        u = g[:, 0::2] - g[:, 1::2]
    else:
        u = g - p.g_ref
    return u / sc.window


def run_neuron(b: Backend, out: Path, *, levels: int = 12, steps: int = 100, rows_used: int = 8,
               card=None) -> NeuronResult:
    p = b._p()
    rows_used = max(1, min(rows_used, p.rows))
    u = _set_drive(b, rows_used)
    nn = u.shape[1]
    per_row = float(np.mean(u))
    if per_row <= 0:
        raise ConfigError("neuron: driving rows give no positive input (check the card's window / g_ref)")
    x_max = rows_used * per_row
    th = p.v_th / 65536.0
    grid = np.unique(np.concatenate([np.linspace(0, min(x_max, 2.5 * th), levels - 1), [x_max]]))
    inputs: list[float] = []
    rates: list[float] = []
    per_neuron: list[np.ndarray] = []
    t_step = p.t_step_ps * 1e-12
    e_last: tuple[Counters, dict[str, int]] | None = None
    for x in grid:
        spikes = np.zeros((steps, p.rows), dtype=np.uint8)
        acc = 0.0
        drive = np.zeros(nn)
        for t in range(steps):
            k = int(math.floor((t + 1) * x / per_row + 1e-9) - math.floor(t * x / per_row + 1e-9))
            k = min(k, rows_used)
            rows = [(t + i) % rows_used for i in range(k)]
            spikes[t, rows] = 1
            drive += u[rows].sum(axis=0)
            acc += k
        c0 = b.counters()
        fires, _ = b.infer(spikes, reset=True)
        dc = b.counters() - c0
        if p.layers == 1:
            r = fires.sum(axis=0) / (steps * t_step)
        else:  # deeper layers sit at their minimum: count the chip's fires
            r = np.full(nn, dc.fires / nn / (steps * t_step))
        inputs.append(float(np.mean(drive) / steps))
        rates.append(float(np.mean(r)))
        per_neuron.append(r)
        e_last = (dc, _energy_aj(p, dc))
    assert e_last is not None       # grid holds at least x_max
    max_rate = rates[-1]
    ref_lim = 1e12 / p.t_refrac_ps if p.t_refrac_ps else math.inf
    dc, e = e_last
    eps = (e["fire"] + e["update"]) / dc.fires / 1000.0 if dc.fires else math.inf
    xs, ys = np.array(inputs), np.array(rates)
    lin = (ys > 0) & (ys < 0.9 * max_rate) if max_rate > 0 else np.zeros(len(ys), bool)
    th_fit = None
    if np.sum(lin) >= 2:
        slope = float(np.sum(xs[lin] * ys[lin]) / np.sum(xs[lin] ** 2))
        th_fit = 1.0 / (slope * t_step) if slope > 0 else None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, png = out / "neuron.csv", out / "neuron.png"
    table = [(j, inputs[i], float(per_neuron[i][j])) for i in range(len(inputs)) for j in range(nn)]
    _write_csv(csv_path, ("neuron", "input", "rate_hz"), table,
               [f"spikeboard characterize neuron on {b.name}: input per time step in units of one full window",
                f"step_ns = {p.t_step_ps / 1000.0}"])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.plot(xs, ys / 1e6, "o-", label="mean of neurons")
    ax.axhline(1.0, color="grey", ls="--", label="1 MHz target")
    ax.set_xlabel("input per time step (full windows)")
    ax.set_ylabel("firing rate (MHz)")
    ax.set_title(f"f-I: max {max_rate / 1e6:.2f} MHz, {eps:.2f} fJ/spike, {p.v_op_mv_div10 / 100:.2f} V")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return NeuronResult(nn, tuple(inputs), tuple(rates), max_rate, ref_lim, min(max_rate, ref_lim), eps,
                        p.e_fire_aj / 1000.0, p.v_op_mv_div10 / 100.0, th_fit, steps, str(csv_path), str(png),
                        f"neuron scheme on {b.name}: f-I over {steps} steps per input; energies are counters x card")


# ---------------------------------------------------------------- interface
@dataclass(frozen=True)
class InterfaceResult(SchemeResult):
    pre_ops: int
    post_ops: int
    pre_energy_fj: float             # per operation
    post_energy_fj: float
    pre_rate_hz: float               # circuit speed, 1 / delay
    post_rate_hz: float
    achieved_ops_per_s: float        # pre+post operations per second of model time in the workload
    csv: str
    png: str
    method: str


def random_workload(b: Backend, *, p_spike: float = 0.2, steps: int = 100, samples: int = 4, seed: int = 0):
    """Rate-coded random input through the array as it stands: the built-in workload."""
    rng = np.random.default_rng(seed)
    p = b._p()
    x = (rng.random((samples, steps, p.rows)) < p_spike).astype(np.uint8)
    c0 = b.counters()
    for s in range(samples):
        b.infer(x[s], reset=True)
    return b.counters() - c0


def run_interface(b: Backend, out: Path, *, steps: int = 100, samples: int = 2, p_spike: float = 0.2,
                  seed: int = 0, card=None) -> InterfaceResult:
    p = b._p()
    dc = random_workload(b, p_spike=p_spike, steps=steps, samples=samples, seed=seed)
    e = _energy_aj(p, dc)
    pre_e = e["pre"] / dc.pre / 1000.0 if dc.pre else p.e_pre_aj / 1000.0
    post_e = e["post"] / dc.post / 1000.0 if dc.post else p.e_post_aj / 1000.0
    pre_r = 1e12 / p.t_pre_ps if p.t_pre_ps else math.inf
    post_r = 1e12 / p.t_post_ps if p.t_post_ps else math.inf
    ach = (dc.pre + dc.post) / (dc.time_ps * 1e-12) if dc.time_ps else 0.0
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, png = out / "interface.csv", out / "interface.png"
    _write_csv(csv_path, ("circuit", "ops", "energy_fj_per_op", "rate_hz"),
               [("pre", dc.pre, pre_e, pre_r), ("post", dc.post, post_e, post_r)],
               [f"spikeboard characterize interface on {b.name}: random input p={p_spike}, {steps} steps x {samples}"])
    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(8, 3.4))
    ax[0].bar(["pre", "post"], [pre_e, post_e], color=["tab:blue", "tab:green"])
    ax[0].axhline(10, color="tab:red", ls="--")
    ax[0].set_ylabel("fJ / operation (target < 10)")
    ax[1].bar(["pre", "post"], [pre_r / 1e6, post_r / 1e6], color=["tab:blue", "tab:green"])
    ax[1].axhline(1, color="tab:red", ls="--")
    ax[1].set_yscale("log")
    ax[1].set_ylabel("MHz (target > 1)")
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return InterfaceResult(int(dc.pre), int(dc.post), pre_e, post_e, pre_r, post_r, ach, str(csv_path), str(png),
                           f"interface scheme on {b.name}: ops from counters, energy = counts x card, "
                           f"speed = 1 / card delay")


RUNNERS = {"pd": run_pd, "retention": run_retention, "endurance": run_endurance, "yield": run_yield,
           "neuron": run_neuron, "interface": run_interface}


def format_result(r) -> str:
    """Human lines for any scheme result."""
    d = r.as_dict()
    lines = []
    for k, v in d.items():
        if k in ("branches",):
            for br in v:
                lines.append(f"  branch {br['kind']}: {br['pulses']} pulses, linearity {100 * br['linearity']:.1f} %, "
                             f"A = {br['a_pulses'] if br['a_pulses'] is None else round(br['a_pulses'], 2)} pulses "
                             f"(A/Pmax {br['a_over_pmax'] if br['a_over_pmax'] is None else round(br['a_over_pmax'], 4)}), "
                             f"NL {br['nl_label']:+.2f}")
            continue
        if isinstance(v, float):
            v = f"{v:.4g}"
        elif isinstance(v, (list, tuple)) and v and isinstance(v[0], float):
            v = "[" + ", ".join(f"{x:.4g}" for x in v) + "]"
        lines.append(f"  {k:24s} {v}")
    return "\n".join(lines)
