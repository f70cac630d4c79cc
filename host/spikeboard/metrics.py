"""Figures of merit from measured or modelled data, with SPEC.md's definitions."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .cards import nl_of_r


def linearity(branch: np.ndarray, g_min: float, g_max: float) -> float:
    """1 - max |G(p) - G_lin(p)| / (Gmax - Gmin); G_lin joins the branch's end points."""
    g = np.asarray(branch, dtype=float)
    lin = np.linspace(g[0], g[-1], len(g))
    return 1.0 - float(np.max(np.abs(g - lin))) / (g_max - g_min)


def symmetry(pot: np.ndarray, dep: np.ndarray, g_min: float, g_max: float) -> float:
    """1 - max_p |G_P(p) - G_D(P - p)| / (Gmax - Gmin); dep[q] is G after q depression pulses."""
    gp = np.asarray(pot, dtype=float)
    gd = np.asarray(dep, dtype=float)
    P = min(len(gp), len(gd)) - 1
    return 1.0 - float(np.max(np.abs(gp[:P + 1] - gd[P::-1][:P + 1]))) / (g_max - g_min)


@dataclass(frozen=True)
class ExpFit:
    a_pulses: float       # A of G(p) = G0 + B (1 - exp(-p/A)); inf for a straight line
    b: float
    nl_label: float       # NeuroSim's nonlinearity label (sign: + potentiation, - depression)
    rms: float


def fit_exponential(branch: np.ndarray, depression: bool = False) -> ExpFit:
    """Fit G(p) = G0 + B (1 - exp(-p/A)) (NeuroSim / aihwkit SoftBoundsPmax form)
    to one branch; a depression branch is mirrored first."""
    g = np.asarray(branch, dtype=float)
    if depression:
        g = g[0] - g   # rises from 0
    else:
        g = g - g[0]
    P = len(g) - 1
    p = np.arange(P + 1, dtype=float)
    best = (math.inf, math.inf, 0.0)
    # golden search over r = P/A on the residual of the closed-form B
    def resid(r: float) -> tuple[float, float]:
        basis = p / P if r < 1e-6 else 1.0 - np.exp(-r * p / P)
        b = float(basis @ g / (basis @ basis))
        return float(np.sqrt(np.mean((b * basis - g) ** 2))), b
    lo, hi = 1e-6, 60.0
    for _ in range(120):
        m1, m2 = lo + (hi - lo) * 0.382, lo + (hi - lo) * 0.618
        if resid(m1)[0] < resid(m2)[0]:
            hi = m2
        else:
            lo = m1
    r = 0.5 * (lo + hi)
    rms, b = resid(r)
    if r < 1e-3:
        return ExpFit(math.inf, b, 0.0, rms)
    nl = nl_of_r(r)
    return ExpFit(P / r, b, -nl if depression else nl, rms)


def distinguishable_levels(branch: np.ndarray, sigma: float) -> int:
    """Levels along a branch separated by more than 2 sigma of read/c2c spread."""
    g = np.sort(np.asarray(branch, dtype=float))
    if sigma <= 0:
        return int(len(np.unique(g)))
    levels, last = 1, g[0]
    for x in g[1:]:
        if x - last > 2 * sigma:
            levels += 1
            last = x
    return levels
