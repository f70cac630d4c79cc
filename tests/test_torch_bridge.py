"""spikeboard.torch: the simulated layers against the chip model, bit for bit;
gradients; deploy and read-back; hardware-in-the-loop training."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from spikeboard import cards  # noqa: E402
from spikeboard.backends.model import ModelBackend  # noqa: E402
from spikeboard.errors import ConfigError  # noqa: E402
from spikeboard.torch import (ArrayLayer, ChipConfig, ChipNet, HardwareLoop, LIF, _rng_normal_q12,  # noqa: E402
                              count_loss, deploy)
from spikeboard._hal import lib  # noqa: E402

# (geometry, differential, synapse overrides, neuron overrides, interface overrides)
CASES = {
    "32x32-diff": ("32x32", True, {}, None, {}),
    "32x32-single-leak-refrac-zero": ("32x32", False, {}, {"leak": 0.1, "refractory_steps": 2, "reset": "zero"}, {}),
    "16x16x3-single-noise": ("16x16x3", False, {"read_noise": 0.05}, {"threshold": 0.5}, {}),
    "16x16x3-diff-noise-stuck": ("16x16x3", True, {"read_noise": 0.02, "stuck_min": 0.05, "stuck_max": 0.03},
                                 {"threshold": 0.5, "leak": 0.05}, {}),
    "32x32-levels": ("32x32", True, {}, {"v_min": -1.0}, {"pre_levels": 3}),
}


def _config(case: str) -> ChipConfig:
    geom, diff, syn, neuron, iface = CASES[case]
    card = cards.load("spec")
    if syn or iface:
        card = card.with_overrides(synapse=syn, interface=iface)
    return ChipConfig.from_card(card, geom, differential=diff, neuron=neuron)


def _full_net(cfg: ChipConfig) -> ChipNet:
    sizes = [cfg.rows] + [cfg.neurons(l) for l in range(cfg.layers)]
    return ChipNet(cfg, sizes, init_scale=1.0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_eval_matches_model_backend_bit_for_bit(case):
    cfg = _config(case)
    net = _full_net(cfg)
    be = ModelBackend()
    deploy(net, be)
    rng = np.random.default_rng(7)
    x = rng.integers(0, cfg.pre_levels + 1, size=(6, 30, cfg.rows)) * (rng.random((6, 30, cfg.rows)) < 0.35)
    x = x.astype(np.uint8)
    net.eval()
    for _ in range(2):   # twice: the read-noise sample counters must stay aligned
        fires, v = be.infer_batch(x)
        with torch.no_grad():
            out = net(torch.as_tensor(x))
        assert np.array_equal(out.numpy().astype(np.uint8), fires)
        assert np.array_equal(net.v.numpy(), v)
    assert fires.sum() > 0


def test_lif_alone_matches_chip_with_a_known_current():
    # one row at a time drives a chosen column pair: the LIF module alone
    cfg = _config("32x32-single-leak-refrac-zero")
    layer = ArrayLayer(cfg, 32, 32)
    be = ModelBackend()
    be.configure(cfg.params)
    targets = np.random.default_rng(3).integers(cfg.g_min, cfg.g_max, size=cfg.cells).astype(np.uint16)
    be.program(targets, tolerance=cfg.tolerance, max_pulses=255)
    layer.load_codes(be.read_conductance())
    layer.eval()
    lif = LIF(cfg).eval()
    x = (np.random.default_rng(4).random((50, 32)) < 0.5).astype(np.uint8)
    fires, v = be.infer(x)
    with torch.no_grad():
        s = lif(layer(torch.as_tensor(x)))
    assert np.array_equal(s.numpy().astype(np.uint8), fires)
    assert np.array_equal(lif.v.numpy(), v)


def test_rng_matches_c():
    idx = torch.arange(40, dtype=torch.int64)
    ctr = torch.arange(40, dtype=torch.int64) * 977 + 3
    got = _rng_normal_q12(12345, lib.SB_RNG_READ, idx, ctr)
    want = [lib.sb_rng_normal_q12(12345, lib.SB_RNG_READ, int(i), int(c)) for i, c in zip(idx, ctr)]
    assert got.tolist() == want


def test_training_step_lowers_the_loss():
    cfg = ChipConfig.from_card("spec", "32x32", differential=True)
    torch.manual_seed(0)
    net = ChipNet(cfg, [32, 10])
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(32, 20, 32, generator=gen) < 0.3).float()
    y = torch.randint(0, 10, (32,), generator=gen)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    losses = []
    for _ in range(6):
        loss = count_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        assert net.arrays[0].weight.grad is not None and net.arrays[0].weight.grad.abs().sum() > 0
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]


def test_gradients_reach_every_layer_of_the_stack():
    cfg = ChipConfig.from_card("spec", "16x16x3", differential=False, neuron={"threshold": 1.0})
    net = ChipNet(cfg, [16, 12, 12, 4], init_scale=1.5)
    x = (torch.rand(8, 16, 16, generator=torch.Generator().manual_seed(2)) < 0.5).float()
    loss = count_loss(net(x), torch.arange(8) % 4)
    loss.backward()
    for a in net.arrays:
        assert a.weight.grad is not None and torch.isfinite(a.weight.grad).all()
    assert net.arrays[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("geom,diff", [("32x32", True), ("32x32", False), ("16x16x3", False), ("16x16x3", True)])
def test_deploy_read_back_within_level_quantisation(geom, diff):
    cfg = ChipConfig.from_card("spec", geom, differential=diff)
    sizes = [cfg.rows] + [cfg.neurons(l) - 1 for l in range(cfg.layers)]
    sizes[1:-1] = [min(s, cfg.rows) for s in sizes[1:-1]]
    net = ChipNet(cfg, sizes, init_scale=2.0)
    be = ModelBackend()
    rep = deploy(net, be)
    assert rep.failed == 0
    step = cfg.level_step / cfg.codes_per_unit
    for l, a in enumerate(net.arrays):
        lo, hi = cfg.weight_range(l)
        want = a.weight.detach().clamp(lo, hi)
        have = a.decode(rep.codes[l * cfg.rows * cfg.cols:(l + 1) * cfg.rows * cfg.cols])[: a.in_features, : a.out_features].t()
        assert (have - want).abs().max() <= step
        assert rep.layers[l].weight_max <= step
        # the unused columns hold zero weight
        pad = a.decode(rep.codes[l * cfg.rows * cfg.cols:(l + 1) * cfg.rows * cfg.cols])[:, a.out_features:]
        assert pad.abs().max() <= step
    assert "layer 0" in str(rep)


def test_networks_that_do_not_fit_are_refused():
    cfg = ChipConfig.from_card("spec", "32x32", differential=True)
    with pytest.raises(ConfigError, match="do not fit 16 neurons"):
        ChipNet(cfg, [32, 20])
    with pytest.raises(ConfigError, match="do not fit 32 rows"):
        ChipNet(cfg, [40, 10])
    with pytest.raises(ConfigError, match="2-layer network on a 1-layer chip"):
        ChipNet(cfg, [32, 16, 10])


@pytest.mark.parametrize("mode", ["reprogram", "pulse"])
def test_hardware_in_the_loop_trains_the_array(mode):
    cfg = ChipConfig.from_card("spec", "32x32", differential=True)
    torch.manual_seed(0)
    net = ChipNet(cfg, [32, 4], init_scale=0.3)
    gen = torch.Generator().manual_seed(5)
    # four classes, each a fixed group of eight rows firing often
    y = torch.arange(32) % 4
    rate = torch.full((32, 32), 0.05)
    for i in range(32):
        rate[i, 8 * y[i]: 8 * y[i] + 8] = 0.6
    x = (torch.rand(32, 16, 32, generator=gen) < rate[:, None, :]).float()
    be = ModelBackend()
    loop = HardwareLoop(net, be, torch.optim.Adam(net.parameters(), lr=0.05), mode=mode)

    def hw_loss():
        with torch.no_grad():
            return float(count_loss(loop.forward_hw(x), y))

    first = hw_loss()
    for _ in range(8):
        loop.step(x, y)
    assert hw_loss() < first
    assert be.counters().pot + be.counters().dep > 0
