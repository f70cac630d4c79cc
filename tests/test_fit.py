"""Cards fitted from CSV: recover the card that generated the data; reject
malformed files naming file, line and column."""
from __future__ import annotations

import pytest

from spikeboard import cards, characterize as ch
from spikeboard.backends.model import ModelBackend
from spikeboard.errors import ConfigError
from spikeboard.fit import fit_card


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Data from a known card (RRAM with NeuroSim's labels, moderate noise), as characterize writes it."""
    card = cards.load("rram-nonlinear").with_overrides(synapse={"c2c": 0.01, "d2d_step": 0.02, "d2d_window": 0.05})
    d = tmp_path_factory.mktemp("data")
    b = ModelBackend()
    b.configure(cards.compile_card(card, "32x32"))
    ch.run_pd(b, d, pattern="(P64 H4 D64)x4", cells=range(32), card=card)
    ch.run_retention(b, d, first=512, t_max_s=1e8, card=card)
    b.reset(chip=True)
    ch.run_endurance(b, d, cells=[1000, 1001], max_pulses=2.2e7, checkpoints=40, card=card)
    b.reset(chip=True)
    ch.run_neuron(b, d, card=card)
    return card, d


def test_fit_recovers_the_card(generated, tmp_path):
    card, d = generated
    r = fit_card(d, base="spec", out=tmp_path / "fitted.toml")
    got = cards.load(r.card_path)
    s, g = card["synapse"], got["synapse"]
    # bounds: NL labels within 0.3 / 0.5 (noise and clamping at the rails bend
    # the mean branch), window ends within 0.75 uS of 34.5 uS, the rest within
    # the relative bounds below
    assert g["nl_p"] == pytest.approx(s["nl_p"], abs=0.3)
    assert g["nl_d"] == pytest.approx(s["nl_d"], abs=0.5)
    assert g["g_min_us"] == pytest.approx(s["g_min_us"], abs=0.75)
    assert g["g_max_us"] == pytest.approx(s["g_max_us"], abs=0.75)
    assert g["pulses"] == s["pulses"]
    assert g["c2c"] == pytest.approx(s["c2c"], rel=0.25)
    assert g["d2d_window"] == pytest.approx(s["d2d_window"], abs=0.03)
    assert g["retention_tau_s"] == pytest.approx(s["retention_tau_s"], rel=0.1)
    assert g["relax_frac"] == pytest.approx(s["relax_frac"], abs=0.05)
    assert g["endurance_pulses"] == pytest.approx(s["endurance_pulses"], rel=0.35)
    assert got["neuron"]["threshold"] == pytest.approx(card["neuron"]["threshold"], rel=0.05)
    assert {x.data.split()[0] for x in r.residuals} >= {"pd", "retention", "endurance", "neuron"}
    assert (tmp_path / "fitted.png").exists()
    assert "synapse.nl_p" in r.fitted and "energy.fire_fj" not in r.fitted


def test_table_mode_keeps_the_measured_shape(generated, tmp_path):
    from spikeboard.metrics import linearity

    card, d = generated
    r = fit_card(d, mode="table", out=tmp_path / "t.toml")
    got = cards.load(r.card_path)
    assert got["synapse"]["model"] == "table"
    up, down = got.branch_curves()
    up0, _ = card.branch_curves()
    assert linearity(up, 0, 1) == pytest.approx(linearity(up0, 0, 1), abs=0.1)
    cards.compile_card(got)


def _write(d, name, text):
    d.mkdir(exist_ok=True)
    (d / name).write_text(text)
    return d


@pytest.mark.parametrize("name,text,where", [
    ("pd.csv", "cell,cycle,branch,pulse,g_us\n0,0,P,0,1.0\n0,0,P,1,abc\n", ("line 3", "column 5", "g_us")),
    ("pd.csv", "# c\ncell,cycle,branch,pulse,g_us\n0,0,P,0,1.0\n0,0,X,1,2.0\n", ("line 4", "column 3", "branch")),
    ("pd.csv", "cell,cycle,branch,pulse,g_us\n0,0,P,0,1.0\n0,0,P,1\n", ("line 3", "column 5")),
    ("pd.csv", "cell,cycle,branch,g_us\n0,0,P,1.0\n", ("line 1", "pulse")),
    ("retention.csv", "level,time_s,g_us\n0,0,1.0\n0,-5,1.0\n", ("line 3", "column 2", "time_s")),
    ("neuron.csv", "input,rate_hz\n1,nan\n", ("line 2", "column 2", "rate_hz")),
])
def test_malformed_csv_names_file_line_column(tmp_path, name, text, where):
    d = _write(tmp_path / "bad", name, text)
    with pytest.raises(ConfigError) as e:
        fit_card(d, out=tmp_path / "x.toml")
    msg = str(e.value)
    assert str(d / name) in msg
    for w in where:
        assert w in msg, msg


def test_empty_dir_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no data files"):
        fit_card(tmp_path)
