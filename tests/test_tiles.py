"""Tiled arrays (hal/ tile.c through the model backend, configured with a
shape larger than its array): larger logical layers on a grid of physical
tiles, bit-exact against a numpy reference of the documented arithmetic,
equal to the plain chip on one tile."""
from __future__ import annotations

import numpy as np
import pytest

from spikeboard import cards
from spikeboard._hal import ffi, lib
from spikeboard.backends import open_backend
from spikeboard.backends.model import ModelBackend
from spikeboard.energy import energy_report
from spikeboard.errors import ConfigError, DeviceError
from spikeboard.chip import ChipSpec, open_chip

from .conftest import ideal_card


def params(card="rram-nonlinear", *, differential=True, seed=7, neuron=None, card_obj=None):
    c = card_obj if card_obj is not None else cards.load(card)
    return cards.compile_card(c, "32x32", seed=seed, differential=differential, neuron=neuron)


def tiled(p, rows, cols):
    """A rows x cols layer through the backend interface."""
    b = open_backend("model")
    b.configure(p, shape=(rows, cols))
    return b


def one_tile(p):
    """The tile machinery on one tile, where configure would take the plain array."""
    b = ModelBackend()
    b.configure_tiles(p, (p.rows, p.cols))
    assert b.tile_of(0, 0) == (0, 0) and b.grid == (1, 1)       # the tiled path, not the plain chip
    return b


def reference(p, g, x, rows, cols):
    """The tiled layer's documented arithmetic in numpy (noiseless card):
    per tile, column current = sum of level x G over its rows (reference
    removed on single-ended tiles), the post interface saturates it, scales by
    gain >> shift and clips to +-post_sat; the bank adds the partial inputs of
    a grid column, clips to +-post_sat and runs leak / integrate / floor /
    fire / reset / refractory."""
    R, C = p.rows, p.cols
    diff = bool(p.diff_mask & 1)
    G = g.reshape(rows, cols).astype(np.int64)
    nn = cols // 2 if diff else cols
    B, T, _ = x.shape
    fires = np.zeros((B, T, nn), np.uint8)
    vs = np.zeros((B, nn), np.int64)
    for b in range(B):
        v = np.zeros(nn, np.int64)
        rf = np.zeros(nn, np.int64)
        for t in range(T):
            total = np.zeros(nn, np.int64)
            for r0 in range(0, rows, R):
                lv = x[b, t, r0:r0 + R].astype(np.int64)
                for c0 in range(0, cols, C):
                    acc = lv @ G[r0:r0 + R, c0:c0 + C]
                    cur = acc[0::2] - acc[1::2] if diff else acc - p.g_ref * lv.sum()
                    cur = np.clip(cur, -lib.SB_POST_IN_MAX, lib.SB_POST_IN_MAX)
                    part = np.clip((cur * p.post_gain) >> p.post_shift, -p.post_sat, p.post_sat)
                    j0 = c0 // 2 if diff else c0
                    total[j0:j0 + len(part)] += part
            inp = np.clip(total, -p.post_sat, p.post_sat)
            v = v - ((v * p.leak_q16) >> 16)
            resting = rf != 0
            y = np.maximum(v + inp, p.v_min)
            f = (y >= p.v_th) & ~resting
            y = np.where(f, (y - p.v_th) if p.reset_mode == lib.SB_RESET_SUBTRACT else 0, y)
            v = np.where(resting, v, y)
            rf = np.where(resting, rf - 1, np.where(f, p.refractory, 0))
            fires[b, t] = f
        vs[b] = v
    return fires, vs


@pytest.mark.parametrize("differential,rows,cols", [(True, 70, 40), (False, 45, 50)])
def test_tiled_layer_matches_reference_arithmetic(differential, rows, cols):
    card = ideal_card().with_overrides(neuron={"leak": 0.05, "refractory_steps": 1})
    p = params(card_obj=card, differential=differential, neuron={"threshold": 1.0})
    t = tiled(p, rows, cols)
    assert t.grid == (-(-rows // 32), -(-cols // 32)) and len(t.chips) == t.grid[0] * t.grid[1]
    rng = np.random.default_rng(5)
    pp = t.params
    t.program(rng.integers(pp.g_min, pp.g_max, rows * cols), tolerance=(pp.g_max - pp.g_min) // 50)
    g = t.read_conductance()
    x = (rng.random((3, 25, rows)) < 0.35).astype(np.uint8)
    fires, v = t.infer_batch(x)
    ef, ev = reference(pp, g, x, rows, cols)
    assert fires.sum() > 0 and (fires == 0).sum() > 0      # the test sees both outcomes
    assert (fires == ef).all()
    assert (v == ev).all()


def test_partial_sums_cross_row_tiles():
    """Rows of the second band reach the neurons only through the bank's adder:
    driving them alone moves the membranes that tile 1's conductances say."""
    p = params(card_obj=ideal_card(), neuron={"threshold": 100.0})
    t = tiled(p, 64, 4)
    pp = t.params
    target = np.full((64, 4), pp.g_min, np.int64)
    target[32:, 0] = pp.g_min + (pp.g_max - pp.g_min) // 2       # neuron 0, + device, tile 1 only
    t.program(target, tolerance=(pp.g_max - pp.g_min) // 100)
    x = np.zeros((1, 1, 64), np.uint8)
    x[0, 0, 40:44] = 1
    _, v = t.infer_batch(x)
    g = t.read_conductance().reshape(64, 4).astype(np.int64)
    cur = g[40:44, 0].sum() - g[40:44, 1].sum()
    assert v[0, 0] == min((cur * pp.post_gain) >> pp.post_shift, pp.post_sat) > 0
    x[0, 0, 40:44] = 0
    x[0, 0, 0:4] = 1                                             # the same rows of tile 0: no weight there
    _, v = t.infer_batch(x)
    assert abs(int(v[0, 0])) < abs(int((cur * pp.post_gain) >> pp.post_shift)) // 4


@pytest.mark.parametrize("card", ["spec", "rram-nonlinear"])
def test_one_tile_is_the_plain_chip(card):
    p = params(card)
    t = one_tile(p)
    m = ModelBackend()
    m.configure(p)
    rng = np.random.default_rng(2)
    tg = rng.integers(p.g_min, p.g_max, 1024)
    t.program(tg, tolerance=400)
    m.program(tg, tolerance=400)
    assert (t.read_conductance() == m.read_conductance()).all()
    x = (rng.random((4, 30, 32)) < 0.3).astype(np.uint8)
    s1, v1 = t.infer_batch(x)
    s2, v2 = m.infer_batch(x)
    assert s1.sum() > 0
    assert (s1 == s2).all() and (v1 == v2).all()
    assert t.counters() == m.counters()


def test_tiles_have_their_own_seed_and_same_seed_same_bits():
    p = params("rram-nonlinear")
    a, b = tiled(p, 64, 64), tiled(p, 64, 64)
    assert lib.sb_tile_seed(p.seed, 0) == p.seed
    seeds = {lib.sb_tile_seed(p.seed, k) for k in range(4)}
    assert len(seeds) == 4
    # device-to-device variation differs between tiles (own seed), is the same for the same seed
    wmax = [np.frombuffer(ffi.buffer(c.wmax, 2 * 1024), np.uint16) for c in a.chips]
    assert not (wmax[0] == wmax[1]).all()
    assert (wmax[3] == np.frombuffer(ffi.buffer(b.chips[3].wmax, 2 * 1024), np.uint16)).all()
    rng = np.random.default_rng(3)
    tg = rng.integers(p.g_min, p.g_max, 64 * 64)
    a.program(tg, tolerance=600)
    b.program(tg, tolerance=600)
    x = (rng.random((6, 20, 64)) < 0.25).astype(np.uint8)
    s_all, v_all = a.infer_batch(x)                 # one batch of 6 ...
    parts = [b.infer_batch(x[:2]), b.infer_batch(x[2:3]), b.infer_batch(x[3:])]   # ... or 2 + 1 + 3
    assert (s_all == np.concatenate([s for s, _ in parts])).all()
    assert (v_all == np.concatenate([v for _, v in parts])).all()
    c = tiled(params("rram-nonlinear", seed=8), 64, 64)
    c.program(tg, tolerance=600)
    assert not (c.read_conductance() == a.read_conductance()).all()


def test_step_counters_and_energy():
    p = params("spec", differential=False)
    t = tiled(p, 80, 40)                          # 3 x 2 tiles, the last band has 16 rows
    assert t.grid == (3, 2) and t.neurons() == 40
    t.counters(clear=True)
    x = np.zeros((1, 1, 80), np.uint8)
    x[0, 0, [1, 5, 33, 70, 79]] = 1               # 2 rows in band 0, 1 in band 1, 2 in band 2
    fires, _ = t.infer_batch(x)
    c = t.counters()
    assert c.reads == 5 * 32 * 2                  # each active row reads every column of its 2 tiles
    assert c.pre == 5 * 2
    assert c.post == 6 * 32                       # every tile senses its columns
    assert c.updates == 40 and c.steps == 1 and c.fires == fires.sum()
    assert c.time_ps == p.t_step_ps               # tiles read in parallel
    e = energy_report(t.params, c, macs_per_step=80 * 40)
    assert e.energy_fj["synapse_read"] * 1000 == c.reads * p.e_read_aj
    assert e.energy_fj["interface"] * 1000 == c.pre * p.e_pre_aj + c.post * p.e_post_aj
    assert e.ops["mac"] == 80 * 40 and e.ops["synaptic"] == c.reads


def test_update_moves_the_mapped_cells_only():
    p = params(card_obj=ideal_card())
    t = tiled(p, 40, 34)
    g0 = t.read_conductance().reshape(40, 34)
    t.pulse(35 * 34 + 33, 1, +1, 3)               # tile (1, 1)
    t.pulse(0, 1, +1, 2)                          # tile (0, 0)
    g1 = t.read_conductance().reshape(40, 34)
    moved = g1 != g0
    assert moved[35, 33] and moved[0, 0] and moved.sum() == 2
    assert t.tile_of(35, 33) == (3, 3 * 32 + 1)
    assert t.counters().pot == 5


def test_bad_input_is_named():
    p = params("spec")
    with pytest.raises(ConfigError, match="even"):
        tiled(p, 64, 33)
    with pytest.raises(ConfigError, match="tiles"):
        tiled(p, 32 * 65, 2)
    with pytest.raises(ConfigError, match="one layer"):
        tiled(cards.compile_card(cards.load("spec"), "16x16x3"), 64, 64)
    t = tiled(p, 40, 20)
    with pytest.raises(ConfigError, match=r"\(batch, steps, 40\)"):
        t.infer_batch(np.zeros((2, 5, 32), np.uint8))
    with pytest.raises(ConfigError, match="levels"):
        t.infer_batch(np.full((1, 5, 40), 9, np.uint8))
    with pytest.raises(ConfigError, match=r"out of the layer \(0..799\)"):
        t.program(np.zeros(801))
    with pytest.raises(ConfigError, match="polarity"):
        t.pulse(0, 800, 2, 1)
    with pytest.raises(DeviceError, match="out of the array"):
        t.tile_of(40, 0)


def test_learning_on_one_tile_is_the_chips_rule():
    """sb_learn_train_tiled on a one-tile layer applies exactly the pulses
    sb_learn_train does on the plain chip (same error, same accumulators,
    same closed-loop steps), sample after sample."""
    from spikeboard.apps import get_app, prepare

    app = get_app("digits")
    P = prepare(app, 32, 0, train_limit=150)
    p = params("rram-nonlinear", seed=1, neuron={"threshold": app.threshold})    # one differential 32x32 layer
    m = ModelBackend()
    m.configure(p)
    t = one_tile(p)
    pulses = 0
    for i in range(len(P.y_train)):
        a = m.train(P.x_train[i], int(P.y_train[i]), rule="compensated", target=1, max_pulses=32, sample_id=i)
        b = t.train(P.x_train[i], int(P.y_train[i]), rule="compensated", target=1, max_pulses=32, sample_id=i)
        assert (a.predicted, a.pulses) == (b.predicted, b.pulses) and (a.counts == b.counts).all()
        pulses += a.pulses
    assert pulses > 100
    assert (m.read_conductance() == t.read_conductance()).all()
    assert m.counters() == t.counters()


def test_every_tile_learns_its_part():
    """On a 3 x 1 grid each tile's cells move with its own band's inputs: a
    sample whose spikes sit in one band only moves cells of that tile."""
    p = params(card_obj=ideal_card(), neuron={"threshold": 2.0})
    t = tiled(p, 80, 32)
    x = np.zeros((32, 80), np.uint8)
    x[::2, 40:50] = 1                                # band 1 (rows 32..63) only
    before = t.read_conductance().reshape(80, 32)
    for k in range(6):
        t.train(x, 3, rule="compensated", target=1, max_pulses=32, sample_id=k)
    moved = t.read_conductance().reshape(80, 32) != before
    assert moved[40:50].any()
    assert not moved[:32].any() and not moved[64:].any() and not moved[32:40].any() and not moved[50:64].any()
    w = t.read_conductance().reshape(80, 32).astype(int)
    assert (w[40:50, 6] - w[40:50, 7]).mean() > 0        # the label neuron's weights rose
    with pytest.raises(ConfigError, match="compensated"):
        t.train(x, 3, rule="sign")
    with pytest.raises(ConfigError, match="label 16"):
        t.train(x, 16, rule="compensated")


def test_tiled_app_at_full_width_beats_the_pca_tile():
    """digits: 64 pixels + bias on 3 tiles against 31 PCA components on one."""
    from spikeboard.apps import get_app
    from spikeboard.apps.run import run_tiled

    app = get_app("digits")
    full = run_tiled(app, "spec", seed=0)
    one = run_tiled(app, "spec", rows=32, seed=0)
    assert full.grid == (3, 1) and full.rows == 65 and one.grid == (1, 1)
    assert full.accuracy > 0.9 and full.accuracy >= one.accuracy
    assert full.baseline is not None and full.accuracy > full.baseline - 0.03
    c = full.infer_counters
    assert c.steps == full.test_samples * app.steps
    assert c.updates == c.steps * 16                  # the bank's 16 neurons (10 classes), every step
    insitu = run_tiled(app, "spec", seed=0, insitu=True, epochs=4)
    assert insitu.mode == "in situ" and insitu.accuracy > 0.9


def test_mnist5k_loads_labels_from_the_last_column():
    from spikeboard.apps import get_app

    ds = get_app("mnist5k").load(0)
    assert ds.x_train.shape[1] == 784
    assert set(np.unique(np.concatenate([ds.y_train, ds.y_test]))) == set(range(10))


def test_card_geometry_tiled_sets_the_layer_and_is_validated():
    card = cards.load("spec").with_overrides(geometry={"tiled": "65x20", "differential": True})
    t = open_chip(ChipSpec(card=card, seed=1, tiled="card")).backend
    assert (t.layer_shape, t.grid, t.neurons()) == ((65, 20), (3, 1), 10)
    for bad, msg in [("65by20", "ROWSxCOLS"), ("4000x32", "tiles"), ("64x33", "even"), ("32x600", "256 neurons")]:
        with pytest.raises(ConfigError, match=r"\[geometry\.tiled\].*" + msg):
            cards.load("spec").with_overrides(geometry={"tiled": bad, "differential": True})
    with pytest.raises(ConfigError, match="single-layer"):
        cards.load("spec").with_overrides(geometry={"tiled": "64x64", "preset": "16x16x3"})
    with pytest.raises(ConfigError, match="no \\[geometry\\].tiled"):
        open_chip(ChipSpec(card="spec", tiled="card"))
