"""Characterization: docs/spec.md figures on curves known in closed form, and each
scheme on the model."""
from __future__ import annotations

import math

import numpy as np
import pytest

from spikeboard import cards, characterize as ch
from spikeboard.errors import ConfigError
from spikeboard.metrics import fit_exponential, fit_relaxation, linearity, symmetry

from .conftest import make_model


def exp_curve(P: int, r: float) -> np.ndarray:
    x = np.arange(P + 1) / P
    return (1 - np.exp(-r * x)) / (1 - np.exp(-r))


def test_straight_line_is_100_percent():
    up = np.linspace(2.0, 10.0, 65)
    down = up[::-1].copy()
    assert linearity(up, 2.0, 10.0) == pytest.approx(1.0, abs=1e-12)
    assert linearity(down, 2.0, 10.0) == pytest.approx(1.0, abs=1e-12)
    assert symmetry(up, down, 2.0, 10.0) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("r", [0.5, 2.0, 5.0])
def test_exponential_linearity_and_symmetry_closed_form(r):
    P = 64
    g = exp_curve(P, r)
    # linearity: 1 - max (g(x) - x), at g'(x) = 1: x* = ln(r / (1 - e^-r)) / r
    xs = math.log(r / (1 - math.exp(-r))) / r
    expect_lin = 1 - ((1 - math.exp(-r * xs)) / (1 - math.exp(-r)) - xs)
    assert linearity(g, 0.0, 1.0) == pytest.approx(expect_lin, abs=2e-4)
    # depression mirrored in pulse number: G_D(q) = 1 - g(q / P); asymmetry peaks at
    # x = 1/2 where g(1/2) = 1 / (1 + e^{-r/2}): symmetry = 1 - tanh(r / 4)
    d = 1 - g
    assert symmetry(g, d, 0.0, 1.0) == pytest.approx(1 - math.tanh(r / 4), abs=1e-12)


@pytest.mark.parametrize("nl,a", [(2.4, 15.47), (4.88, 6.21)])
def test_neurosim_labels_from_spec(nl, a):
    P = 31
    f = fit_exponential(cards.exp_branch(P, nl))
    assert f.a_pulses == pytest.approx(a, abs=0.05)
    assert f.nl_label == pytest.approx(nl, abs=0.01)
    fd = fit_exponential(1 - cards.exp_branch(P, nl), depression=True)
    assert fd.nl_label == pytest.approx(-nl, abs=0.01)


def test_relaxation_fit_recovers_tau_and_point():
    t = np.concatenate([[0], np.geomspace(10, 1e7, 12)])
    g0 = np.array([10.0, 20.0, 30.0, 40.0])
    tau, ginf = 2e8, 22.0
    G = ginf + np.outer(np.exp(-t / tau), g0 - ginf)
    f = fit_relaxation(t, G)
    assert f.tau == pytest.approx(tau, rel=1e-3)
    assert f.g_inf == pytest.approx(ginf, abs=1e-3)
    flat = fit_relaxation(t, np.tile(g0, (len(t), 1)))
    assert math.isinf(flat.tau)


def test_pattern_strings():
    a = ch.parse_pattern("(P64 H16 D64)x3")
    assert a == [("P", 64), ("H", 16), ("D", 64)] * 3
    assert ch.parse_pattern("P64 H16 D64 P64 H16 D64") == a[:6]
    assert ch.parse_pattern("P2,(D1 (H1)x2)x2") == [("P", 2), ("D", 1), ("H", 1), ("H", 1), ("D", 1), ("H", 1), ("H", 1)]
    for bad in ("", "Q3", "(P3", "P3)", "H4", "P0"):
        with pytest.raises(ConfigError):
            ch.parse_pattern(bad)
    assert ch.parse_cells("0-3,8", 1024, []) == [0, 1, 2, 3, 8]
    with pytest.raises(ConfigError):
        ch.parse_cells("1020-1030", 1024, [])


def test_pd_on_the_model(tmp_path):
    spec_card = cards.load("spec")
    r = ch.run_pd(make_model("spec"), tmp_path / "s", pattern="(P64 H4 D64)x2", card=spec_card)
    assert r.linearity > 0.9 and r.symmetry > 0.9
    assert r.cycles == 2 and r.c2c_spread is not None and r.levels >= 8
    assert r.hold_drift == 0.0
    assert {b.kind for b in r.branches} == {"P", "D"}
    for f in (r.csv, r.trace_csv, r.png):
        assert (tmp_path / "s" / f.split("/")[-1]).stat().st_size > 0
    rr = ch.run_pd(make_model("rram-nonlinear"), tmp_path / "r", pattern="P64 H4 D64",
                   card=cards.load("rram-nonlinear"))
    assert rr.linearity < 0.9 and rr.symmetry < 0.9
    assert rr.c2c_spread is None          # one cycle: no cycle-to-cycle figure
    p = next(b for b in rr.branches if b.kind == "P")
    assert p.nl_label > 1.5


def test_ideal_linear_device_reads_near_100_percent(tmp_path):
    from .conftest import ideal_card
    from spikeboard.backends.model import ModelBackend

    card = ideal_card(nl_p=0.0, nl_d=0.0)
    b = ModelBackend()
    b.configure(cards.compile_card(card, "32x32"))
    r = ch.run_pd(b, tmp_path, pattern="P64 D64", cells=range(4), card=card)
    assert r.linearity > 0.99 and r.symmetry > 0.99


def test_retention_endurance_yield_neuron_interface(tmp_path):
    card = cards.load("rram-nonlinear")
    b = make_model("rram-nonlinear")
    rt = ch.run_retention(b, tmp_path, card=card)
    assert rt.tau_s == pytest.approx(card["synapse"]["retention_tau_s"], rel=0.2)
    assert rt.extrapolated and len(rt.g_10y_us) == rt.levels - rt.program_failed or len(rt.g_10y_us) <= rt.levels
    b.reset(chip=True)
    en = ch.run_endurance(b, tmp_path, max_pulses=2e5, swing=64, card=card)
    assert en.extrapolated and "extrapolated" in en.note and en.run_pulses < 1e8
    y = ch.run_yield(make_model("spec", stuck=0.2), tmp_path, card=cards.load("spec"))
    assert 0.75 < y.yield_frac < 0.85
    assert y.faults["stuck_min"] > 50 and y.faults["stuck_max"] > 50
    nr = ch.run_neuron(make_model("spec"), tmp_path, card=cards.load("spec"))
    assert nr.max_rate_hz == pytest.approx(2e6)        # one fire per 500 ns step
    assert nr.threshold_fit == pytest.approx(2.0, rel=0.05)
    assert nr.energy_per_spike_fj < 25
    it = ch.run_interface(make_model("spec"), tmp_path, card=cards.load("spec"))
    assert it.pre_rate_hz == pytest.approx(1e8) and it.pre_ops > 0 and it.post_ops > 0
    for f in ("retention", "endurance", "yield", "neuron", "interface"):
        assert (tmp_path / f"{f}.csv").exists() and (tmp_path / f"{f}.png").exists()
