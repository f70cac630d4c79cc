"""spikeboard.nir: NIR graphs onto the chip and back, behaviour against a
reference simulation of the same graph written here, clear refusals."""
from __future__ import annotations

import numpy as np
import pytest

nir = pytest.importorskip("nir")

from spikeboard import nir as sbnir  # noqa: E402
from spikeboard.backends.model import ModelBackend  # noqa: E402
from spikeboard.errors import ConfigError  # noqa: E402

DT = 1e-4
TAU = 16 * DT            # leak 1/16 per step: exact in the chip's Q0.16


def lif(n, rng, tau=TAU):
    return nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / DT), v_leak=np.zeros(n),
                   v_threshold=rng.uniform(0.8, 1.2, n), v_reset=np.zeros(n))


def one_layer_graph(seed=0, n_in=32, n_out=10):
    rng = np.random.default_rng(seed)
    return nir.NIRGraph.from_list(nir.Affine(weight=rng.normal(0, 0.35, (n_out, n_in)), bias=np.zeros(n_out)),
                                  lif(n_out, rng))


def three_layer_graph(seed=1):
    rng = np.random.default_rng(seed)
    g = nir.NIRGraph.from_list(
        nir.Linear(weight=rng.normal(0, 0.5, (12, 16))), lif(12, rng),
        nir.Linear(weight=rng.normal(0.1, 0.6, (8, 12))),
        nir.CubaLIF(tau_syn=np.full(8, DT), tau_mem=np.full(8, TAU), r=np.full(8, TAU / DT), v_leak=np.zeros(8),
                    v_threshold=rng.uniform(0.6, 1.0, 8), v_reset=np.zeros(8), w_in=np.full(8, 1.5)),
        nir.Affine(weight=rng.normal(0.1, 0.8, (5, 8)), bias=np.zeros(5)), lif(5, rng))
    return g


def reference(graph, x, dt=DT):
    """Forward-Euler simulation of a chain graph, float64, zero-delay layers."""
    nxt = dict(graph.edges)
    k = next(n for n, node in graph.nodes.items() if isinstance(node, nir.Input))
    s = x.astype(np.float64)
    while not isinstance(graph.nodes[k], nir.Output):
        k = nxt[k]
        node = graph.nodes[k]
        if isinstance(node, (nir.Affine, nir.Linear)):
            s = s @ np.asarray(node.weight).T + (np.asarray(node.bias) if isinstance(node, nir.Affine) else 0)
        elif isinstance(node, (nir.LIF, nir.CubaLIF, nir.IF)):
            B, T, n = s.shape
            v, cur, out = np.zeros((B, n)), np.zeros((B, n)), np.zeros((B, T, n))
            for t in range(T):
                if isinstance(node, nir.IF):
                    v = v + node.r * s[:, t]
                else:
                    i_t = s[:, t]
                    if isinstance(node, nir.CubaLIF):
                        cur = cur + dt / node.tau_syn * (-cur + node.w_in * s[:, t])
                        i_t, tau = cur, node.tau_mem
                    else:
                        tau = node.tau
                    v = v + dt / tau * (node.v_leak - v + node.r * i_t)
                z = v >= node.v_threshold          # the chip's convention (NIR: >)
                v = np.where(z, node.v_reset, v)
                out[:, t] = z
            s = out
    return s.astype(np.uint8)


def spikes(rng, b, t, n, p=0.3):
    return (rng.random((b, t, n)) < p).astype(np.uint8)


def run(mapping, backend, x):
    fires, _ = backend.infer_batch(mapping.pad_input(x))
    return fires[..., : mapping.n_out]


# agreement with the source graph is limited by write-verify (one pulse step,
# ~1.5 % of the window) and compounds through stacked layers; agreement with the
# exported graph (the conductances as programmed) is exact but for rounding
@pytest.mark.parametrize("make,agree", [(one_layer_graph, 0.97), (three_layer_graph, 0.9)])
def test_round_trip_and_behaviour(make, agree):
    g = make()
    be = ModelBackend()
    m = sbnir.load(g, be)
    assert all(r["failed"] == 0 for r in m.report)
    back = sbnir.export(be, m)
    # structure unchanged
    assert set(back.nodes) == set(g.nodes)
    assert sorted(back.edges) == sorted(g.edges)
    for k, node in g.nodes.items():
        assert type(back.nodes[k]) is type(node)
    # neuron parameters unchanged; weights within the card's level quantisation
    step = m.config.level_step / m.config.codes_per_unit
    for nl in m.layers:
        src, out = g.nodes[nl.neuron_name], back.nodes[nl.neuron_name]
        for f in sbnir._NEURON_FIELDS[nl.neuron_kind]:
            assert np.array_equal(np.asarray(getattr(out, f)), np.asarray(getattr(src, f))), f
        w0, w1 = np.asarray(g.nodes[nl.weight_name].weight), np.asarray(back.nodes[nl.weight_name].weight)
        assert w1.shape == w0.shape
        assert np.all(np.abs(w1 - w0) <= step / nl.scale[:, None] + 1e-12)
        if nl.weight_kind == "Affine":
            assert np.array_equal(back.nodes[nl.weight_name].bias, g.nodes[nl.weight_name].bias)
    # behaviour: the chip against the reference simulation of the source graph,
    # and (tighter) of the exported graph, which holds the conductances as programmed
    x = spikes(np.random.default_rng(3), 8, 60, m.n_in)
    chip = run(m, be, x)
    ref, ref_back = reference(g, x), reference(back, x)
    assert chip.sum() > 20
    assert np.mean(chip == ref) > agree
    assert np.mean(chip == ref_back) > 0.995
    assert abs(int(chip.sum()) - int(ref.sum())) <= 0.1 * ref.sum()


def test_exported_graph_reloads_unchanged(tmp_path):
    g = one_layer_graph(2)
    be = ModelBackend()
    m = sbnir.load(g, be)
    back = sbnir.export(be, m)
    path = tmp_path / "net.nir"
    nir.write(path, back)
    again = nir.read(path)
    assert set(again.nodes) == set(back.nodes)
    np.testing.assert_array_equal(again.nodes["affine"].weight, back.nodes["affine"].weight)
    # loading the exported graph puts the same conductances back, to within the tolerance
    be2 = ModelBackend()
    m2 = sbnir.load(again, be2)
    assert np.max(np.abs(m2.codes.astype(int) - m.codes.astype(int))) <= 2 * m.config.tolerance
    # run_nir_file: the path the CLI uses
    x = spikes(np.random.default_rng(5), 4, 40, 32)
    fires = sbnir.run_nir_file(path, ModelBackend(), x)
    assert fires.shape == (4, 40, 10)
    assert np.mean(fires == reference(again, x)) > 0.99
    one = sbnir.run_nir_file(path, ModelBackend(), x[0])
    assert one.shape == (40, 10)


def test_export_without_mapping_is_the_chip_in_its_own_units():
    g = one_layer_graph(4)
    be = ModelBackend()
    m = sbnir.load(g, be)
    back = sbnir.export(be)
    assert [type(n).__name__ for n in back.nodes.values()] == ["Input", "Linear", "LIF", "Output"]
    assert back.nodes["linear_0"].weight.shape == (m.config.neurons(0), 32)
    x = spikes(np.random.default_rng(6), 4, 40, 32)
    fires, _ = be.infer_batch(x)
    assert np.mean(reference(back, x) == fires) > 0.995


def _err(graph, match, **kw):
    with pytest.raises(ConfigError, match=match):
        sbnir.map_graph(graph, **kw)


def test_clear_errors():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(10, 32))
    _err(nir.NIRGraph.from_list(nir.Linear(weight=W), nir.LI(tau=np.ones(10), r=np.ones(10), v_leak=np.zeros(10))),
         "'li': LI is not supported")
    _err(nir.NIRGraph.from_list(nir.Affine(weight=W, bias=np.ones(10)), lif(10, rng)), "nonzero bias")
    _err(nir.NIRGraph.from_list(nir.Linear(weight=rng.normal(size=(40, 32))), lif(40, rng)), "40 outputs do not fit")
    _err(nir.NIRGraph.from_list(nir.Linear(weight=rng.normal(size=(10, 40))), lif(10, rng)), "40 inputs do not fit")
    _err(nir.NIRGraph.from_list(nir.Linear(weight=W), lif(10, rng), nir.Linear(weight=rng.normal(size=(5, 10))), lif(5, rng)),
         "2 weight\\+neuron layer\\(s\\): does not fit")
    _err(nir.NIRGraph.from_list(nir.Linear(weight=W[:, :16]), lif(10, rng), nir.Linear(weight=rng.normal(size=(5, 10))),
                                lif(5, rng, tau=8 * DT), nir.Linear(weight=rng.normal(size=(5, 5))), lif(5, rng)),
         "leak differently")
    bad = lif(10, rng)
    bad.v_leak = np.full(10, 0.1)
    _err(nir.NIRGraph.from_list(nir.Linear(weight=W), bad), "v_leak must be 0")
    cuba = nir.CubaLIF(tau_syn=np.full(10, 5 * DT), tau_mem=np.full(10, TAU), r=np.ones(10), v_leak=np.zeros(10),
                       v_threshold=np.ones(10))
    _err(nir.NIRGraph.from_list(nir.Linear(weight=W), cuba), "no synaptic current filter")
    _err(nir.NIRGraph.from_list(lif(32, rng), nir.Linear(weight=W)), "expected a weight node")
    _err(one_layer_graph(), "geometry 16x16x3 has 3", geometry="16x16x3")


def test_cli_infer_nir_file(tmp_path):
    """`spikeboard infer --nir FILE` maps, programs and runs a graph: an app's
    test set (accuracy) or a spike file (counts equal to the library path)."""
    import json
    import subprocess
    import sys

    path = tmp_path / "net.nir"
    nir.write(path, one_layer_graph(seed=3))
    base = [sys.executable, "-m", "spikeboard.cli", "infer", "--json", "--nir", str(path)]
    r = subprocess.run(base + ["--app", "digits", "--test-limit", "40"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["inputs"] == 32 and out["outputs"] == 10 and 0.0 <= out["accuracy"] <= 1.0
    assert all(rep["failed"] == 0 for rep in out["programming"])
    x = (np.random.default_rng(4).random((30, 32)) < 0.3).astype(np.uint8)
    np.save(tmp_path / "x.npy", x)
    r = subprocess.run(base + ["--input", str(tmp_path / "x.npy")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    counts = json.loads(r.stdout)["spike_counts"]
    fires = sbnir.run_nir_file(path, ModelBackend(), x, seed=0)       # the CLI's --seed (default 0)
    assert counts == fires.sum(axis=0).tolist()
    r = subprocess.run(base[:-1] + [str(tmp_path / "missing.nir")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "NIR file not found" in r.stderr


def _with(node, **changes):
    kw = {k: getattr(node, k) for k in node.__dataclass_fields__ if k not in ("input_type", "output_type", "metadata")}
    return type(node)(**{**kw, **changes})


def test_nan_inf_and_malformed_graphs_are_refused_naming_the_node(tmp_path):
    """Issue 21, point 5: NaN weights, NaN/inf thresholds, NaN r and dt = 0 ran with
    spike counts of zero; malformed files ended in internal errors."""
    rng = np.random.default_rng(0)
    good = one_layer_graph()
    fc, neuron = next(n for n in good.nodes.values() if isinstance(n, nir.Affine)), \
        next(n for n in good.nodes.values() if isinstance(n, nir.LIF))
    w = np.array(fc.weight, dtype=float)
    w[2, 3] = np.nan
    cases = [
        (nir.NIRGraph.from_list(_with(fc, weight=w), neuron), r"node '\w+': weight holds NaN or infinity"),
        (nir.NIRGraph.from_list(fc, _with(neuron, v_threshold=np.full(10, np.inf))), r"v_threshold holds NaN"),
        (nir.NIRGraph.from_list(fc, _with(neuron, r=np.full(10, np.nan))), r": r holds NaN or infinity"),
    ]
    for g, msg in cases:
        with pytest.raises(ConfigError, match=msg):
            sbnir.map_graph(g)
    with pytest.raises(ConfigError, match=r"dt = 0 must be a finite number > 0"):
        sbnir.map_graph(good, dt=0.0)
    bad = tmp_path / "not.nir"
    bad.write_bytes(rng.bytes(300))
    with pytest.raises(ConfigError, match=r"not\.nir: not a readable NIR file"):
        sbnir.map_graph(bad)
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "spikeboard.cli", "infer", "--nir", str(bad), "--app", "digits"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "not.nir: not a readable NIR file" in r.stderr and "internal error" not in r.stderr
