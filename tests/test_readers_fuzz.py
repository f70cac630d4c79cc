"""Structure-aware fuzzing of the host's readers (issue 21): device cards,
a lab's CSV and NPZ data files, NIR graphs and run folders. Every input ends
in a result or a one-line ConfigError (a SpikeboardError) naming the problem,
never another exception: Hypothesis builds inputs near the valid ones (a valid
card with one field changed, a CSV with odd cells, arrays of odd dtypes and
shapes, NIR graphs with odd parameters, run folders with one file changed).
Sizes are set for CI; HYPOTHESIS_PROFILE=long runs 20x more examples."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from spikeboard import cards
from spikeboard.apps.builtin import user_app
from spikeboard.errors import SpikeboardError

SCALE = 20 if os.environ.get("HYPOTHESIS_PROFILE") == "long" else 1
FUZZ = settings(max_examples=60 * SCALE, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                               HealthCheck.too_slow])
SPEC_TEXT = (Path(cards.CARD_DIR) / "spec.toml").read_text()

odd_values = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
                       st.text(max_size=12), st.booleans(), st.lists(st.floats(-1e3, 1e3), max_size=6))


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return {float("inf"): "inf", float("-inf"): "-inf"}.get(v, "nan" if v != v else repr(v))
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return str(v)


def _ends_well(fn):
    """Run a reader: a result or a SpikeboardError with a one-line message."""
    try:
        return fn()
    except SpikeboardError as e:
        assert str(e) and "\n" not in str(e).strip(), repr(e)
        return None


@FUZZ
@given(section=st.sampled_from(sorted(cards.SCHEMA)), key=st.data(), value=odd_values, drop=st.booleans())
def test_card_with_one_field_changed(tmp_path, section, key, value, drop):
    k = key.draw(st.sampled_from(sorted(cards.SCHEMA[section]) + ["unknown_key"]))
    lines, out, cur = SPEC_TEXT.splitlines(), [], None
    for ln in lines:
        s = ln.strip()
        if s.startswith("["):
            cur = s.strip("[]")
        elif cur == section and s.split("=")[0].strip() == k:
            continue                   # the field, replaced (or dropped) below
        out.append(ln)
        if s == f"[{section}]" and not drop:
            out.append(f"{k} = {_toml_value(value)}")
    f = tmp_path / "card.toml"
    f.write_text("\n".join(out) + "\n")
    card = _ends_well(lambda: cards.load(f))
    if card is not None:
        _ends_well(lambda: cards.compile_card(card))


@FUZZ
@given(raw=st.binary(max_size=400))
def test_card_from_raw_bytes(tmp_path, raw):
    f = tmp_path / "raw.toml"
    f.write_bytes(raw)
    _ends_well(lambda: cards.load(f))


cells = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-5, 5).map(str),
                  st.sampled_from(["", " ", "x", "1e400", "-0", "2e30", '"3"', "1,5"]))


@FUZZ
@given(header=st.lists(st.sampled_from(["a", "b", "label", "c", "", "label "]), min_size=1, max_size=4),
       rows=st.lists(st.lists(cells, min_size=0, max_size=5), min_size=0, max_size=12),
       bom=st.booleans(), good=st.integers(0, 30))
def test_csv_data_file(tmp_path, header, rows, bom, good):
    rng = np.random.default_rng(good)
    ok_rows = [f"{rng.normal():.3f},{rng.normal():.3f},{k % 2}" for k in range(good)]
    text = ",".join(header) + "\n" + "\n".join(ok_rows + [",".join(r) for r in rows]) + "\n"
    f = tmp_path / "data.csv"
    f.write_text(("\ufeff" if bom else "") + text, encoding="utf-8")
    _ends_well(lambda: user_app(f).load(0))


dtypes = st.sampled_from([np.float64, np.float32, np.int64, np.uint64, np.int8, np.bool_, np.complex64, "U3"])


@FUZZ
@given(xshape=st.lists(st.integers(0, 6), min_size=1, max_size=3), xdtype=dtypes, ydtype=dtypes,
       n=st.integers(0, 40), scale=st.sampled_from([1.0, 1e200, np.nan, -1.0]), lengths=st.booleans())
def test_npz_data_file(tmp_path, xshape, xdtype, ydtype, n, scale, lengths):
    rng = np.random.default_rng(n)
    X = (rng.normal(size=[n] + xshape[1:]) * scale)
    y = rng.integers(-1, 4, n)
    with np.errstate(all="ignore"):     # odd casts are the point (NaN or 1e200 into integers)
        arrays = {"X": X.astype(xdtype) if xdtype != "U3" else X.astype(str),
                  "y": y.astype(ydtype) if ydtype != "U3" else y.astype(str)}
    if lengths:
        arrays["lengths"] = rng.integers(0, 4, max(1, n // 2))
    f = tmp_path / "data.npz"
    np.savez(f, **arrays)
    _ends_well(lambda: user_app(f).load(0))


@FUZZ
@given(raw=st.binary(max_size=300), hdf5_head=st.booleans())
def test_nir_from_raw_bytes(tmp_path, raw, hdf5_head):
    from spikeboard import nir as sbnir

    f = tmp_path / "g.nir"
    f.write_bytes((b"\x89HDF\r\n\x1a\n" if hdf5_head else b"") + raw)
    _ends_well(lambda: sbnir.map_graph(f))


@FUZZ
@given(n_in=st.integers(0, 40), n_out=st.integers(0, 20), w=st.sampled_from([0.3, np.nan, np.inf, 1e30, 0.0]),
       tau=st.sampled_from([1e-3, 0.0, -1.0, np.nan, 1e-4]), th=st.sampled_from([1.0, 0.0, -1.0, np.inf]),
       kind=st.sampled_from(["LIF", "IF", "CubaLIF", "LI"]), dt=st.sampled_from([None, 1e-4, 0.0, -1.0]))
def test_nir_graph_parameters(n_in, n_out, w, tau, th, kind, dt):
    import nir

    from spikeboard import nir as sbnir

    W = np.full((n_out, n_in), w)
    one = np.ones(n_out)
    neuron = {"LIF": lambda: nir.LIF(tau=tau * one, r=one, v_leak=0 * one, v_threshold=th * one, v_reset=0 * one),
              "IF": lambda: nir.IF(r=one, v_threshold=th * one, v_reset=0 * one),
              "CubaLIF": lambda: nir.CubaLIF(tau_syn=tau * one, tau_mem=tau * one, r=one, v_leak=0 * one,
                                             v_threshold=th * one, v_reset=0 * one, w_in=one),
              "LI": lambda: nir.LI(tau=tau * one, r=one, v_leak=0 * one)}[kind]
    g = _ends_well(lambda: nir.NIRGraph.from_list(nir.Linear(weight=W), neuron()))
    if g is not None:
        _ends_well(lambda: sbnir.map_graph(g, dt=dt))


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    from spikeboard.session import Session, SessionConfig

    d = tmp_path_factory.mktemp("base") / "run"
    Session.create(SessionConfig.of(app="breast-cancer", train_limit=40, test_limit=10, epochs=1,
                                    checkpoint_every=15), d, quiet=True).run()
    return d


FILES = ("config.json", "journal.jsonl", "metrics.jsonl", "card.toml", "checkpoints/00000030.img")


@settings(max_examples=25 * SCALE, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(FILES), op=st.sampled_from(["flip", "cut", "append", "empty", "delete", "json"]),
       at=st.floats(0, 1), junk=st.binary(min_size=1, max_size=40))
def test_run_folder_with_one_file_changed(tmp_path, run_folder, which, op, at, junk):
    """A finished run folder, one file changed, then `train --resume`: a result (the
    change did not matter) or a one-line error naming the problem."""
    from spikeboard.session import Session

    d = Path(tempfile.mkdtemp(dir=tmp_path)) / "run"     # tmp_path is shared by every example
    shutil.copytree(run_folder, d)
    f = d / which
    data = f.read_bytes()
    k = int(at * max(0, len(data) - 1))
    if op == "flip" and data:
        data = data[:k] + bytes([data[k] ^ 0x24]) + data[k + 1:]
    elif op == "cut":
        data = data[:k]
    elif op == "append":
        data = data + junk
    elif op == "empty":
        data = b""
    elif op == "json" and which.endswith(".json"):
        doc = json.loads(data)
        doc["config"]["epochs"] = [-1, float("nan"), "x", None, 10**30][int(at * 4.99)]
        data = json.dumps(doc).encode()
    if op == "delete":
        f.unlink()
    else:
        f.write_bytes(data)
    _ends_well(lambda: Session.open(d, quiet=True).run(resume=True))
