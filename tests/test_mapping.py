"""spikeboard.mapping: the one weights <-> conductances mapping and the one
write-verify tolerance. The same chip weights programmed through `program`,
NIR import, torch deploy and the ex-situ path give the same conductances;
the mapping's own rules; layers wider than one array on tiles."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from spikeboard import cards, mapping
from spikeboard.backends.model import ModelBackend
from spikeboard.cli import main
from spikeboard.commands import program as program_cmd
from spikeboard.errors import ConfigError
from spikeboard.mapping import ChipConfig, decode_codes, layer_weights, program_weights, tile_codes

SEED = 0
LAYOUTS = {"differential": True, "single-ended": False}


def _config(differential: bool, **kw) -> ChipConfig:
    return ChipConfig.from_card("spec", "32x32", differential=differential, seed=SEED, **kw)


def _file_weights(cfg: ChipConfig, n_out: int = 10) -> np.ndarray:
    """[-1, 1] weights (rows, outputs) whose codes sit a quarter code off an
    integer, so float32 (torch) or a scale of 1 +- 1 ulp (NIR) round alike;
    the largest is exactly 1 (NIR scales its graph to the window by it)."""
    rng = np.random.default_rng(11)
    top = round(cfg.weight_max(0) * cfg.codes_per_unit)          # codes of weight 1
    k = rng.integers(-top + 1, top - 1, size=(cfg.rows, n_out))
    f = (k + np.where(k >= 0, 0.25, -0.25)) / top
    f[0, 0] = 1.0
    return f


def _via_program(tmp_path, monkeypatch, layout: str, f: np.ndarray) -> np.ndarray:
    chips = []
    real = program_cmd.open_chip

    def keep(spec, **kw):
        chips.append(real(spec, **kw))
        return chips[-1]

    monkeypatch.setattr(program_cmd, "open_chip", keep)
    np.save(tmp_path / "w.npy", f)
    assert main(["program", str(tmp_path / "w.npy"), "--geometry", "32x32", "--layout", layout,
                 "--seed", str(SEED), "-q"]) == 0
    return chips[0].backend.read_conductance()


def _via_nir(cfg: ChipConfig, w: np.ndarray, differential: bool) -> np.ndarray:
    nir = pytest.importorskip("nir")
    from spikeboard import nir as sbnir

    n = w.shape[1]
    # IF with r = 1 and threshold 1: the chip weight is the graph weight once
    # the largest fills the window (map_graph's threshold comes out at 1.0)
    g = nir.NIRGraph.from_list(nir.Linear(weight=w.T.copy()),
                               nir.IF(r=np.ones(n), v_threshold=np.ones(n), v_reset=np.zeros(n)))
    be = ModelBackend()
    m = sbnir.load(g, be, geometry="32x32", differential=differential, seed=SEED)
    assert m.config.threshold == 1.0
    return be.read_conductance()


def _via_torch(cfg: ChipConfig, w: np.ndarray) -> np.ndarray:
    torch = pytest.importorskip("torch")
    from spikeboard.torch import ChipNet, deploy

    net = ChipNet(cfg, [cfg.rows, w.shape[1]])
    with torch.no_grad():
        net.arrays[0].weight.copy_(torch.as_tensor(w.T))
    be = ModelBackend()
    deploy(net, be)
    return be.read_conductance()


def _via_exsitu(cfg: ChipConfig, fitted: np.ndarray) -> np.ndarray:
    """As apps.run.train_exsitu programs a fit (rows, classes, largest |w| 1):
    times the layer's largest weight, classes on their neurons, compensated."""
    be = ModelBackend()
    be.configure(cfg.params)
    c = ChipConfig.of_backend(be)
    nmap = np.arange(fitted.shape[1])
    program_weights(be, fitted * c.weight_max(0), neurons=[int(n) for n in nmap], config=c)
    return be.read_conductance()


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_program_nir_torch_and_exsitu_give_identical_conductances(tmp_path, monkeypatch, layout):
    cfg = _config(LAYOUTS[layout])
    f = _file_weights(cfg)
    w = f * cfg.weight_max(0)                       # the chip weights the four paths are given
    g_program = _via_program(tmp_path, monkeypatch, layout, f)
    g_nir = _via_nir(cfg, w, LAYOUTS[layout])
    g_torch = _via_torch(cfg, w)
    g_exsitu = _via_exsitu(cfg, f)
    want = tile_codes(cfg, 0, layer_weights(cfg, 0, w)).ravel()
    assert np.abs(g_program.astype(int) - want).max() <= 2 * cfg.tolerance + cfg.max_step
    assert len(np.unique(g_program)) > 100           # a real spread of weights, not an idle array
    np.testing.assert_array_equal(g_nir, g_program)
    np.testing.assert_array_equal(g_torch, g_program)
    np.testing.assert_array_equal(g_exsitu, g_program)


# ---------------------------------------------------------------- the mapping's rules
@pytest.mark.parametrize("differential", [True, False])
def test_round_trip_within_the_level_step(differential):
    cfg = _config(differential)
    lo, hi = cfg.weight_range(0)
    w = np.random.default_rng(1).uniform(0.95 * lo, 0.95 * hi, (cfg.rows, cfg.neurons(0)))
    codes = tile_codes(cfg, 0, w)
    assert codes.shape == (cfg.rows, cfg.cols) and codes.dtype == np.uint16
    # the codes alone: rounding to a code
    assert np.abs(decode_codes(cfg, 0, codes) - w).max() <= 0.5 / cfg.codes_per_unit + 1e-12
    # programmed and read back: within the card's level step
    be = ModelBackend()
    mapping.configure(be, cfg)
    rep = program_weights(be, w)
    step = cfg.level_step / cfg.codes_per_unit
    ok = np.ones(cfg.cells, bool)
    ok[rep.failed_cells] = False
    have = rep.weights(0)
    cell_ok = ok.reshape(cfg.rows, -1, 2).all(-1) if differential else ok.reshape(cfg.rows, cfg.cols)
    assert np.abs(have - w)[cell_ok].max() <= step
    assert rep.layers[0].weight_max <= step or rep.failed
    assert rep.tolerance == cfg.tolerance and rep.layers[0].clipped == 0


def test_clipping_and_the_idle_cells():
    d, s = _config(True), _config(False)
    big = np.array([[5.0, -5.0, 0.0]])
    cd = tile_codes(d, 0, layer_weights(d, 0, big))
    assert cd[0, :6].tolist() == [d.g_hi, d.g_min, d.g_min, d.g_hi, d.g_min, d.g_min]
    assert (cd[1:] == d.g_min).all()                  # weight 0 on a pair: both devices at Gmin
    cs = tile_codes(s, 0, layer_weights(s, 0, big))
    assert cs[0, :3].tolist() == [s.g_hi, s.g_min, s.g_ref]
    assert (cs[1:] == s.g_ref).all()                  # weight 0 single-ended: G = g_ref
    be = ModelBackend()
    be.configure(d.params)
    assert program_weights(be, big).layers[0].clipped == 2


def test_neuron_placement_and_bias_row():
    cfg = _config(True)
    w = np.full((4, 3), 0.25)
    tile = layer_weights(cfg, 0, w, neurons=[7, 2, 12], bias=np.array([0.1, -0.2, 0.3]))
    assert tile.shape == (32, 16)
    assert (tile[:4, [7, 2, 12]] == 0.25).all() and tile[31, [7, 2, 12]].tolist() == [0.1, -0.2, 0.3]
    others = np.ones_like(tile, bool)
    others[:4, [7, 2, 12]] = others[31, [7, 2, 12]] = False
    assert (tile[others] == 0).all()
    with pytest.raises(ConfigError, match="distinct neurons"):
        layer_weights(cfg, 0, w, neurons=[1, 1, 2])
    with pytest.raises(ConfigError, match="distinct neurons"):
        layer_weights(cfg, 0, w, neurons=[1, 2, 16])
    with pytest.raises(ConfigError, match="rows <= 31 with the bias row"):
        layer_weights(cfg, 0, np.zeros((32, 3)), bias=np.zeros(3))
    with pytest.raises(ConfigError, match="outputs <= 16"):
        layer_weights(cfg, 0, np.zeros((32, 17)))
    # on the chip: only the placed neurons' pairs move
    be = ModelBackend()
    be.configure(cfg.params)
    rep = program_weights(be, w, neurons=[7, 2, 12])
    have = rep.weights(0)
    assert np.abs(have[:4, [7, 2, 12]] - 0.25).max() <= cfg.level_step / cfg.codes_per_unit
    assert np.abs(np.delete(have, [7, 2, 12], axis=1)).max() <= cfg.tolerance / cfg.codes_per_unit


@pytest.mark.parametrize("card", ["spec", "ecram-linear", "rram-nonlinear"])
def test_one_tolerance_rule_that_write_verify_meets(card):
    c = cards.load(card).with_overrides(synapse={"stuck_min": 0.0, "stuck_max": 0.0, "stuck_open": 0.0})
    cfg = ChipConfig.from_card(c, "32x32", differential=False, seed=3)
    p = cfg.params
    steps = list(p.step_p) + list(p.step_d)
    mean = sum(steps) / len(steps) * cfg.window / 65536      # the device's mean single-pulse step, codes
    assert mapping.write_tolerance(p) == math.ceil(0.6 * mean) + 1 == cfg.tolerance
    assert cfg.tolerance <= math.ceil(0.6 * cfg.max_step) + 1
    be = ModelBackend()
    be.configure(p)
    lo, hi = cfg.weight_range(0)
    w = np.random.default_rng(2).uniform(0.9 * lo, 0.9 * hi, (cfg.rows, cfg.cols))
    rep = program_weights(be, w)
    assert rep.tolerance == cfg.tolerance and rep.failed == 0
    assert rep.layers[0].code_max <= rep.tolerance


def test_partner_compensation_of_stuck_pairs():
    cfg = ChipConfig.from_card("spec", "32x32", differential=True, seed=4, stuck=0.2)
    w = np.random.default_rng(5).uniform(-0.6, 0.6, (32, 16))
    errs = {}
    for comp in (False, True):
        be = ModelBackend()
        be.configure(cfg.params)
        rep = program_weights(be, w, compensate=comp)
        errs[comp] = (np.abs(rep.weights(0) - w), rep)
    off, on = errs[False][1], errs[True][1]
    assert off.layers[0].compensated == 0 and on.layers[0].compensated > 10
    assert on.pulses > off.pulses
    # where compensation re-targeted a partner, the pair now holds the weight better
    moved = (on.targets.astype(int) != off.targets.astype(int)).reshape(32, 16, 2).any(-1)
    assert errs[True][0][moved].mean() < 0.5 * errs[False][0][moved].mean()
    assert on.layers[0].weight_rmse < off.layers[0].weight_rmse
    # single-ended cells have no partner: nothing to compensate
    s = ChipConfig.from_card("spec", "32x32", differential=False, seed=4, stuck=0.2)
    be = ModelBackend()
    be.configure(s.params)
    assert program_weights(be, np.zeros((32, 32)), compensate=True).layers[0].compensated == 0


def test_pulse_counts_pick_the_cell_of_a_pair():
    cfg = _config(True)
    codes = np.full((32, 32), cfg.g_min)
    codes[0, 1] = cfg.g_min + 10 * cfg.max_step     # neuron 0's minus side has room to come down
    dw = np.zeros((32, 16))
    step = cfg.level_step / cfg.codes_per_unit
    dw[0, 0], dw[0, 1], dw[1, 0] = 3 * step, 2 * step, -1 * step
    n = mapping.pulse_counts(cfg, 0, codes, dw, 4)
    assert n[0, :4].tolist() == [0, -3, 2, 0]        # depress G- / potentiate G+ (G- at Gmin)
    assert n[1, :2].tolist() == [0, 1]               # a negative change potentiates G-
    assert np.count_nonzero(n) == 3
    s = _config(False)
    assert mapping.pulse_counts(s, 0, np.full((32, 32), s.g_ref), np.full((32, 32), -9 * step), 4).min() == -4


def test_program_codes_checks_and_one_layer():
    cfg = ChipConfig.from_card("spec", "16x16x3", differential=False, seed=SEED)
    be = ModelBackend()
    be.configure(cfg.params)
    t = np.full(256, cfg.g_ref + 1000, np.uint16)
    rep = mapping.program_codes(be, t, layer=1)
    assert rep.first == 256 and [r.layer for r in rep.layers] == [1]
    g = be.read_conductance()
    assert np.abs(g[256:512].astype(int) - t).max() <= cfg.tolerance
    assert (g[:256] == g[512:]).all()                # the other layers untouched
    with pytest.raises(ConfigError, match="100 conductance codes"):
        mapping.program_codes(be, np.zeros(100))
    with pytest.raises(ConfigError, match="one per layer"):
        program_weights(be, [np.zeros((16, 16))])
    with pytest.raises(ConfigError, match="configured as 16x16x3, the mapping needs 32x32x1"):
        program_weights(be, np.zeros((4, 4)), config=_config(True))


# ---------------------------------------------------------------- wider than one array: tiles
def test_nir_graph_wider_than_the_array_maps_onto_tiles():
    nir = pytest.importorskip("nir")
    torch = pytest.importorskip("torch")
    from spikeboard import nir as sbnir
    from spikeboard.torch import ChipNet

    rng = np.random.default_rng(8)
    n = 10
    g = nir.NIRGraph.from_list(nir.Linear(weight=rng.normal(0, 0.3, (n, 64))),
                               nir.LIF(tau=np.full(n, 16e-4), r=np.full(n, 16.0), v_leak=np.zeros(n),
                                       v_threshold=rng.uniform(0.8, 1.2, n), v_reset=np.zeros(n)))
    with pytest.raises(ConfigError, match="64 inputs do not fit the 32 rows.*tiles=True"):
        sbnir.map_graph(g)
    be = ModelBackend()
    m = sbnir.load(g, be, tiles=True)
    assert m.config.tiled and m.config.grid == (2, 1) and be.layer_shape == (64, 32)
    assert all(r["failed"] == 0 for r in m.report)
    x = (rng.random((6, 40, 64)) < 0.3).astype(np.uint8)
    fires, v = be.infer_batch(m.pad_input(x))
    # the mapping's own expectation: the chip's arithmetic over the read-back codes, per tile
    net = ChipNet(m.config, [64, m.config.neurons(0)])
    net.load_codes(m.codes)
    net.eval()
    with torch.no_grad():
        want = net(torch.as_tensor(x)).numpy().astype(np.uint8)
    assert fires.sum() > 20
    np.testing.assert_array_equal(fires, want)
    np.testing.assert_array_equal(v, net.v.numpy())
    # and close to the graph's own behaviour
    back = sbnir.export(be, m)
    np.testing.assert_allclose(back.nodes["linear"].weight, g.nodes["linear"].weight,
                               atol=2 * m.config.level_step / m.config.codes_per_unit / m.layers[0].scale.min())


@pytest.mark.parametrize("outputs,differential,noise", [(10, True, 0.0), (10, True, 0.03), (40, False, 0.02)])
def test_torch_layer_wider_than_the_array_on_tiles(outputs, differential, noise):
    torch = pytest.importorskip("torch")
    from spikeboard.torch import ChipNet, deploy

    card = cards.load("spec").with_overrides(synapse={"read_noise": noise})
    with pytest.raises(ConfigError, match="64 inputs do not fit 32 rows"):
        ChipNet.from_card([64, outputs], card, "32x32", differential=differential)
    net = ChipNet.from_card([64, outputs], card, "32x32", tiles=True, differential=differential,
                            layer_kw={"init_scale": 1.5})
    cfg = net.config
    assert cfg.tiled and cfg.rows == 64 and cfg.grid == ((2, 1) if outputs * (1 + differential) <= 32 else (2, 2))
    be = ModelBackend()
    rep = deploy(net, be)
    assert rep.failed == 0 and be.layer_shape == (cfg.rows, cfg.cols)
    x = (np.random.default_rng(9).random((5, 30, 64)) < 0.35).astype(np.uint8)
    net.eval()
    for _ in range(2):     # twice: the tiles' read-noise counters stay aligned
        fires, v = be.infer_batch(net.pad_input(x))
        with torch.no_grad():
            out = net(torch.as_tensor(x))
        np.testing.assert_array_equal(out.numpy().astype(np.uint8), fires[..., :outputs])
        np.testing.assert_array_equal(net.v.numpy(), v)
    assert fires.sum() > 0


def test_program_help_states_the_unit(capsys):
    with pytest.raises(SystemExit):
        main(["program", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "[-1, 1]" in out and "largest weight the layer holds" in out and "[neuron] threshold" in out
    assert json.dumps(mapping.__all__)


def test_hardware_in_the_loop_on_a_tiled_layer():
    torch = pytest.importorskip("torch")
    from spikeboard.torch import ChipNet, HardwareLoop, count_loss

    torch.manual_seed(0)
    net = ChipNet.from_card([64, 4], "spec", "32x32", tiles=True, differential=True, layer_kw={"init_scale": 0.3})
    y = torch.arange(32) % 4
    rate = torch.full((32, 64), 0.05)
    for i in range(32):
        rate[i, 16 * y[i]: 16 * y[i] + 16] = 0.6      # rows of both row tiles carry the class
    x = (torch.rand(32, 16, 64, generator=torch.Generator().manual_seed(5)) < rate[:, None, :]).float()
    be = ModelBackend()
    loop = HardwareLoop(net, be, torch.optim.Adam(net.parameters(), lr=0.05), mode="pulse")
    first = float(count_loss(loop.forward_hw(x), y))
    for _ in range(4):
        loop.step(x, y)
    assert float(count_loss(loop.forward_hw(x), y)) < 0.5 * first
    assert be.counters().pot + be.counters().dep > 0
