"""One chip, one way (issue 14): the same card, app, rule and seed give the
same chip and the same bits whichever command runs them.

- `spikeboard train` and the matching row of `spikeboard apps report` reach
  identical accuracy, conductances and counters (both go through the one door,
  spikeboard.chip, and the one loop, spikeboard.loop);
- the layout is decided in one place and stated: the spec card's own layout
  meets the programme's neuron-count row, a differential 16-neuron 32x32 chip
  says plainly that it fails it."""
from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from spikeboard._hal import ffi
from spikeboard.chip import ChipSpec, compile_chip, open_chip
from spikeboard.cli import main
from spikeboard.errors import ConfigError

CASES = [  # app, card, layout, rule, seed
    ("digits", "spec", "card", "compensated", 3),
    ("breast-cancer", "rram-nonlinear", "card", "sign", 1),
    ("digits", "spec", "differential", "stochastic", 0),
]


def _json(capsys, *argv: str) -> dict:
    assert main([*argv, "--json", "-q"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("app,card,layout,rule,seed", CASES)
def test_train_and_apps_report_give_the_same_bits(tmp_path, capsys, app, card, layout, rule, seed):
    lim = ["--train-limit", "120", "--test-limit", "40", "--epochs", "2"]
    t = _json(capsys, "train", "--app", app, "--card", card, "--layout", layout, "--rule", rule,
              "--seed", str(seed), "--out", str(tmp_path / "run"), *lim)
    r = _json(capsys, "apps", "report", "--apps", app, "--cards", card, "--geometries", "32x32",
              "--layout", layout, "--rule", rule, "--seeds", str(seed), "--stuck", "0", "-o", "-", *lim)
    row = r["results"][0]
    cell = row["seeds"][0]
    assert cell["accuracy"] == t["accuracy"] and cell["accuracy_per_epoch"] == t["accuracy_per_epoch"]
    assert row["layout"] == t["layout"] and row["rule"] == t["settings"]["rule"] == rule
    metrics = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train_counters = {k: sum(m["train_counters"][k] for m in metrics) for k in metrics[0]["train_counters"]}
    assert cell["train_counters"] == train_counters
    assert cell["infer_counters"] == metrics[-1]["eval_counters"]
    assert cell["output_neurons"] == t["output_neurons"]
    g = np.load(tmp_path / "run" / "conductance.npy")
    assert cell["conductance_crc32"] == zlib.crc32(np.ascontiguousarray(g, dtype=np.uint16).tobytes())


def test_layout_decided_once_and_stated(capsys):
    _card, p, layout = compile_chip(ChipSpec(card="spec"))
    assert layout.differential == (False,) and layout.neurons == 32 and layout.meets_neuron_target
    _card, p, diff = compile_chip(ChipSpec(card="spec", layout="differential"))
    assert diff.differential == (True,) and diff.neurons == 16 and not diff.meets_neuron_target
    assert "FAILS" in diff.describe() and ">= 32 neurons" in diff.describe()
    assert p.diff_mask == 1
    deep = compile_chip(ChipSpec(card="rram-nonlinear", geometry="16x16x3", layout="single-ended"))[2]
    assert deep.differential == (False,) * 3 and deep.meets_neuron_target and deep.neurons == 16
    # the `card` layout follows the app: a differential 16x16x3 last layer holds 8 outputs, not 10
    _card, _p, fit = compile_chip(ChipSpec(card="rram-nonlinear", geometry="16x16x3"), outputs=10)
    assert fit.differential == (False,) * 3 and "holds 8 outputs, not 10" in fit.describe()
    assert compile_chip(ChipSpec(card="rram-nonlinear", geometry="16x16x3"), outputs=8)[2].differential == (True,) * 3
    assert compile_chip(ChipSpec(card="rram-nonlinear", geometry="16x16x3", layout="differential"),
                        outputs=10)[2].neurons == 8          # asked for explicitly: kept (prepare then refuses)
    info = _json(capsys, "info", "--layout", "differential")
    assert info["layout"]["neurons"] == 16 and info["layout"]["meets_neuron_target"] is False
    with pytest.raises(ConfigError, match="layout"):
        compile_chip(ChipSpec(layout="diagonal"))


def test_open_chip_configures_what_it_compiled():
    with open_chip(ChipSpec(card="rram-nonlinear", seed=4)) as chip:
        assert chip.backend.params is not None and chip.layout.neurons == chip.backend.neurons() == 16
        info = chip.backend.info()
        assert info.configured and info.card_hash == zlib.crc32(bytes(ffi.buffer(chip.params)))


def test_session_on_a_tiled_layer(tmp_path, capsys):
    """A session reaches a layer larger than one array through the same door and
    loop: 64 features + bias row on a 65x20 layer over 3 tiles of 32x32."""
    t = _json(capsys, "train", "--app", "digits", "--tiled", "65x20", "--train-limit", "150", "--test-limit", "40",
              "--epochs", "1", "--out", str(tmp_path / "run"))
    assert t["layout"]["shape"] == [65, 20] and t["layout"]["grid"] == [3, 1] and t["layout"]["neurons"] == 20
    assert t["geometry"] == "65x20x1" and t["accuracy"] > 0.5
    assert np.load(tmp_path / "run" / "conductance.npy").shape == (1, 65, 20)
    assert main(["train", "--app", "digits", "--tiled", "65x21", "--layout", "differential",
                 "--out", str(tmp_path / "bad")]) == 1
    assert "65x21" in capsys.readouterr().err and not (tmp_path / "bad").exists()
