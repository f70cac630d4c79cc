"""A tiled layer behind the backend interface: open_backend("model") configured
with a shape larger than its array gives the bits the former
spikeboard.tiles.TiledArray gave (recorded below), keeps the Backend contract
with logical indices, and names what it cannot do."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from spikeboard import cards
from spikeboard.backends import open_backend
from spikeboard.backends.base import COUNTER_FIELDS, Counters
from spikeboard.errors import ConfigError

from .conftest import ideal_card


def digest(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    return hashlib.sha256(a.dtype.str.encode() + str(a.shape).encode() + a.tobytes()).hexdigest()[:16]


def counters(*values: int) -> Counters:
    return Counters(*values, 0)


# Recorded with TiledArray(p, 80, 40) at 3501a41, before it was folded into the
# model backend: program, update (+3 on cells 1000..1099, -2 on 2500..2532),
# age 3600 s, infer_batch of 5 samples x 30 steps, 8 samples trained with the
# compensated rule (target 1, 32 pulses); counters in COUNTER_FIELDS order.
REFERENCE = {   # quantity: (spec card on single-ended tiles, rram-nonlinear on differential tiles)
    "program": (("fcf6888937c4f696", "fd8c4e7d4e4c9314"), ("79d21fd8725431ff", "508634e8da866156")),
    "c_program": (counters(0, 0, 98620, 95420, 0, 194040, 194040, 9702000000, 0, 0),
                  counters(0, 0, 73397, 69283, 914, 143594, 143594, 14359400000, 0, 0)),
    "c_pulse": (counters(0, 0, 0, 300, 66, 366, 366, 18300000, 0, 0),
                counters(0, 0, 0, 300, 66, 366, 366, 36600000, 0, 0)),
    "infer": (("f54a1384dd477940", "f74af00ebd2bf92e", 594), ("b8fd46ad7f7de587", "2a99bccc6d153b65", 1012)),
    "bank_v": ("d0d015ad38809b89", "2207921d44664fa0"),
    "c_infer": (counters(594, 6000, 236480, 300, 66, 7756, 29166, 93300000, 150, 0),
                counters(1012, 3000, 236480, 300, 66, 7756, 29166, 186600000, 150, 0)),
    "train": ([(27, 2, "d8dfdc050c6bfb78"), (27, 36, "d273cb21d6dde909"), (12, 3, "47f930358ce59fa0"),
               (34, 7, "6902e0ff795da733"), (34, 32, "717c88d4fadb7574"), (34, 123, "8ae05ba781075631"),
               (27, 53, "cc7ef1101ed16680"), (12, 114, "3d53cdd79bc9a1f6")],
              [(12, 19, "c27eb2bb705a4440"), (12, 160, "c5f57a7b129c593a"), (19, 29, "5c9760a5066496be"),
               (6, 14, "6e6bc655729c1203"), (16, 110, "0438a73f24bab843"), (19, 56, "85d9ae19446cf7a7"),
               (15, 23, "e4eac1196699ee03"), (19, 42, "9e9959aa80abdad2")]),
    "c_train": (counters(1511, 15600, 613871, 312, 424, 20523, 76239, 262950000, 390, 8),
                counters(2603, 7800, 614031, 526, 293, 20766, 76482, 550200000, 390, 8)),
    "g": ("29541b41151028c9", "5448c7157b2b6378"),
}
CARDS = {"spec": False, "rram-nonlinear": True}     # card -> differential tiles


def tile_params(card: str, **kw):
    return cards.compile_card(cards.load(card), "32x32", seed=3, differential=CARDS[card], **kw)


def layer(card: str = "spec", shape: tuple[int, int] = (80, 40)):
    b = open_backend("model")
    b.configure(tile_params(card), shape=shape)
    return b


def plus_reads(c: Counters, n: int, t_read_ps: int) -> Counters:
    """c with n more cell reads (Backend.pulse reads the cells back; TiledArray.update did not)."""
    d = c.as_dict()
    for f in ("reads", "pre", "post"):
        d[f] += n
    d["time_ps"] += n * t_read_ps
    return Counters(*(d[f] for f in COUNTER_FIELDS))


@pytest.mark.parametrize("k,card", list(enumerate(CARDS)))
def test_tiled_layer_through_the_backend_gives_tiledarrays_bits(k, card):
    ref = {quantity: values[k] for quantity, values in REFERENCE.items()}
    b = layer(card)
    p = b.params
    rng = np.random.default_rng(11)
    pr = b.program(rng.integers(p.g_min, p.g_max, 80 * 40), tolerance=(p.g_max - p.g_min) // 40)
    assert (digest(pr.pulses), digest(pr.failed)) == ref["program"]
    assert b.counters(clear=True) == ref["c_program"]
    b.pulse(1000, 100, +1, 3)
    b.pulse(2500, 33, -1, 2)
    b.age(3600)
    extra = 133                                    # the cells pulse() read back
    assert b.counters() == plus_reads(ref["c_pulse"], extra, p.t_read_ps)
    x = (rng.random((5, 30, 80)) < 0.3).astype(np.uint8)
    fires, v = b.infer_batch(x)
    assert (digest(fires), digest(v), int(fires.sum())) == ref["infer"]
    assert digest(b.state()[0]) == ref["bank_v"]
    assert (b.state()[0] == v[-1]).all()
    assert b.counters() == plus_reads(ref["c_infer"], extra, p.t_read_ps)
    got = [b.train(x[i % 5], i % b.neurons(), rule="compensated", target=1, max_pulses=32, sample_id=i)
           for i in range(8)]
    assert [(r.predicted, r.pulses, digest(r.counts)) for r in got] == ref["train"]
    assert [r.sample_id for r in got] == list(range(8))
    assert b.counters() == plus_reads(ref["c_train"], extra, p.t_read_ps)
    assert digest(b.read_conductance()) == ref["g"]


@pytest.mark.parametrize("card,neurons", [("spec", 40), ("rram-nonlinear", 20)])
def test_contract_properties_state_the_logical_layer(card, neurons):
    b = layer(card)
    assert (b.rows, b.layer_shape, b.cells, b.neurons(), b.grid) == (80, (80, 40), 3200, neurons, (3, 2))
    assert (b.params.rows, b.params.cols, b.params.layers) == (32, 32, 1)      # one tile's block
    assert len(b.chips) == 6
    i = b.info()
    assert (i.rows, i.cols, i.layers, i.configured) == (80, 40, 1, True)
    # the array's own shape, or none, is the plain chip: every rule, grid (1, 1)
    p = tile_params(card)
    for shape in (None, (32, 32)):
        b.configure(p, shape=shape)
        assert (b.rows, b.layer_shape, b.cells, b.grid, len(b.chips)) == (32, (32, 32), 1024, (1, 1), 1)
        b.train(np.ones((4, 32), np.uint8), 0, rule="sign")
    # a smaller layer still runs on a tile, its spare rows silent
    b.configure(p, shape=(20, 10))
    assert (b.rows, b.cells, b.neurons(), b.grid) == (20, 200, 5 if CARDS[card] else 10, (1, 1))
    assert b.infer(np.ones((3, 20), np.uint8))[0].shape == (3, 5 if CARDS[card] else 10)


def test_segments_follow_the_c_cell_mapping():
    b = layer("spec", (70, 45))
    rows, cols = b.layer_shape
    g = b.read_conductance()
    # every logical cell reaches the tile and cell hal's sb_tiled_cell names
    want = [b.tile_of(r, c) for r in range(rows) for c in range(cols)]
    got = [(k, cell + j) for k, cell, m, _ in b._tiling.segments(0, b.cells) for j in range(m)]
    assert got == want
    # partial ranges read, program and pulse the same cells as the whole layer
    for first, n in [(0, 1), (44, 3), (1000, 777), (b.cells - 5, 5)]:
        assert (b.read_conductance(first, n) == g[first:first + n]).all()
    p = b.params
    t = np.full(90, p.g_min + (p.g_max - p.g_min) // 2)
    b.program(t, first=1300, tolerance=(p.g_max - p.g_min) // 50)
    after = b.read_conductance()
    assert (after[:1300] == g[:1300]).all() and (after[1390:] == g[1390:]).all()
    assert (np.abs(after[1300:1390].astype(int) - t) <= (p.g_max - p.g_min) // 50).all()
    g2 = b.pulse(2000, 100, +1, 2)
    assert (g2 == b.read_conductance(2000, 100)).all() and (g2 != after[2000:2100]).any()


def test_infer_paths_agree_on_a_tiled_layer():
    card = ideal_card().with_overrides(neuron={"leak": 0.05, "refractory_steps": 1})
    b = open_backend("model")
    b.configure(cards.compile_card(card, "32x32", seed=2, differential=True, neuron={"threshold": 1.0}),
                shape=(50, 40))
    p = b.params
    rng = np.random.default_rng(4)
    b.program(rng.integers(p.g_min, p.g_max, b.cells), tolerance=(p.g_max - p.g_min) // 50)
    x = (rng.random((3, 20, 50)) < 0.35).astype(np.uint8)
    fb, vb = b.infer_batch(x)
    assert fb.sum() > 0 and (fb == 0).sum() > 0
    for k in range(3):
        f, v = b.infer(x[k])
        assert (f == fb[k]).all() and (v == vb[k]).all()
        ft, vt = b.infer(x[k], trace=True)
        assert (ft == fb[k]).all() and (vt[-1] == vb[k]).all() and vt.shape == (20, 20)
    # reset=False continues from the state: 10 + 10 steps are the 20
    b.infer(x[0][:10])
    f2, v2 = b.infer(x[0][10:], reset=False)
    assert (f2 == fb[0][10:]).all() and (v2 == vb[0]).all()
    b.reset()
    assert (b.state()[0] == 0).all()
    assert b.run_masks(x).shape == (3, 20, 1)


def test_train_batch_is_train_in_order():
    """One path: train is a batch of one (one array and tiled layer alike)."""
    x = (np.random.default_rng(6).random((6, 24, 80)) < 0.3).astype(np.uint8)
    for shape, rule, rows, target, most in [((80, 40), "compensated", 80, 1, 32), (None, "stochastic", 32, 2, 8)]:
        a, b = layer("rram-nonlinear", shape), layer("rram-nonlinear", shape)
        p = a.params
        for chip in (a, b):                       # weights away from zero, so that the rules move them
            chip.program(np.random.default_rng(1).integers(p.g_min, p.g_max, a.cells), tolerance=2000)
        xs = x[:, :, :rows]
        one = [a.train(xs[i], i % 7, rule=rule, target=target, max_pulses=most, sample_id=100 + i) for i in range(6)]
        many = b.train_batch(xs, [i % 7 for i in range(6)], range(100, 106), rule=rule, target=target,
                             max_pulses=most)
        assert [(r.sample_id, r.predicted, r.pulses, r.counts.tolist()) for r in one] == \
               [(r.sample_id, r.predicted, r.pulses, r.counts.tolist()) for r in many]
        assert sum(r.pulses for r in one) > 0
        assert (a.read_conductance() == b.read_conductance()).all() and a.counters() == b.counters()


def test_image_round_trip_and_reset_of_a_tiled_layer():
    b = layer("rram-nonlinear")
    x = (np.random.default_rng(8).random((10, 24, 80)) < 0.3).astype(np.uint8)
    b.train_batch(x[:5], range(5), range(5), rule="compensated", target=1, max_pulses=16)
    image, g, c = b.read_image(), b.read_conductance(), b.counters()
    one = open_backend("model")
    one.configure(tile_params("rram-nonlinear"))
    assert len(image) > 6 * len(one.read_image())            # header, bank counters, six tile images
    later = b.train_batch(x[5:], range(5), range(5, 10), rule="compensated", target=1, max_pulses=16)
    assert not (b.read_conductance() == g).all()
    b.write_image(image)
    assert (b.read_conductance() == g).all()
    c2 = b.counters()
    assert c2 == c                                             # the counters came back with the image
    again = b.train_batch(x[5:], range(5), range(5, 10), rule="compensated", target=1, max_pulses=16)
    assert [(r.predicted, r.pulses) for r in again] == [(r.predicted, r.pulses) for r in later]
    with pytest.raises(ConfigError, match="80x40 layer on 3 x 2 tiles: 118925 bytes, need 118926"):
        b.write_image(image[:-1])
    with pytest.raises(ConfigError, match="of a 80x40 layer on 3 x 2 tiles, this is a 80x64 layer on 3 x 2"):
        layer("rram-nonlinear", (80, 64)).write_image(image)
    with pytest.raises(ConfigError, match="not a tiled layer's image"):
        b.write_image(one.read_image())
    b.reset(chip=True)
    fresh = layer("rram-nonlinear")
    assert (b.read_conductance() == fresh.read_conductance()).all()


def test_what_a_tiled_layer_cannot_do_is_named():
    b = layer("spec")
    x = np.zeros((5, 80), np.uint8)
    with pytest.raises(ConfigError, match="rule 'compensated'.*not 'sign'"):
        b.train(x, 1, rule="sign")
    with pytest.raises(ConfigError, match="compensated"):
        b.train_batch([x], [1], [0], rule="stdp")
    with pytest.raises(ConfigError, match="label 40 out of range 0..39"):
        b.train(x, 40, rule="compensated")
    with pytest.raises(ConfigError, match=r"expected shape \(steps, 80\)"):
        b.infer(np.zeros((5, 32), np.uint8))
    with pytest.raises(ConfigError, match=r"expected shape \(batch, steps, 80\)"):
        b.infer_batch(np.zeros((2, 5, 40), np.uint8))
    with pytest.raises(ConfigError, match=r"cells 3199..3200 out of the layer \(0..3199\)"):
        b.read_conductance(3199, 2)
    with pytest.raises(ConfigError, match="one layer"):
        b.configure(cards.compile_card(cards.load("spec"), "16x16x3"), shape=(16, 16))
    with pytest.raises(ConfigError, match="even"):
        b.configure(tile_params("rram-nonlinear"), shape=(64, 33))
    with pytest.raises(ConfigError, match="at most 64"):
        b.configure(tile_params("spec"), shape=(32 * 65, 2))
    assert (b.layer_shape, b.grid, len(b.chips)) == ((80, 40), (3, 2), 6)   # failed configures left it as it was
    with pytest.raises(ConfigError, match="not a tiled layer"):
        layer("spec", (32, 32)).tile_of(0, 0)
