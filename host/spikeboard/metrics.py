"""Figures of merit from measured or modelled data, with the definitions of docs/spec.md."""
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


@dataclass(frozen=True)
class RelaxFit:
    """Joint fit of several levels relaxing to one point:
    G_i(t) = G_inf + (G0_i - G_inf) exp(-t / tau). tau = inf: no drift seen."""

    tau: float
    g_inf: float
    g0: np.ndarray
    rms: float

    def predict(self, t) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        e = np.ones_like(t) if not math.isfinite(self.tau) else np.exp(-t / self.tau)
        g_inf = self.g_inf if math.isfinite(self.g_inf) else 0.0
        return g_inf + np.multiply.outer(self.g0 - g_inf, e) if math.isfinite(self.tau) else \
            np.multiply.outer(self.g0, e)


def fit_relaxation(times: np.ndarray, g: np.ndarray, tau_max: float = 1e13) -> RelaxFit:
    """times (T,), g (T, L) mean G of L levels. Least squares over log tau (golden
    search), with G_inf and the G0_i solved in closed form for each tau. With
    two or more levels the relaxation point is found from how the drift rate
    depends on the level, even when the run is much shorter than tau."""
    t = np.asarray(times, dtype=float)
    G = np.asarray(g, dtype=float)
    T, L = G.shape
    y = G.T.ravel()

    def solve(tau: float):
        e = np.exp(-t / tau)
        A = np.zeros((L * T, L + 1))
        for i in range(L):
            A[i * T:(i + 1) * T, 0] = 1.0 - e
            A[i * T:(i + 1) * T, 1 + i] = e
        sol, *_ = np.linalg.lstsq(A, y, rcond=None)
        r = A @ sol - y
        return float(np.sqrt(np.mean(r ** 2))), sol

    flat = float(np.sqrt(np.mean((G - G.mean(axis=0)) ** 2)))
    span = float(np.ptp(G)) if G.size else 0.0
    if L < 2 or flat <= 1e-9 * max(span, 1.0):
        return RelaxFit(math.inf, math.nan, G[0].copy() if T else np.zeros(L), flat)
    lo, hi = math.log(max(t[t > 0].min() / 10, 1e-3)), math.log(tau_max)
    grid = np.linspace(lo, hi, 60)
    errs = [solve(math.exp(x))[0] for x in grid]
    k = int(np.argmin(errs))
    a, b = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    for _ in range(60):
        m1, m2 = a + 0.382 * (b - a), a + 0.618 * (b - a)
        if solve(math.exp(m1))[0] < solve(math.exp(m2))[0]:
            b = m2
        else:
            a = m1
    tau = math.exp(0.5 * (a + b))
    rms, sol = solve(tau)
    if tau >= 0.5 * tau_max:
        return RelaxFit(math.inf, math.nan, G[0].copy(), flat)
    return RelaxFit(tau, float(sol[0]), np.asarray(sol[1:], dtype=float), rms)
