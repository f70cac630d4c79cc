"""Known answers, invariants and determinism of the hal/ chip model (through cffi)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from spikeboard import cards
from spikeboard._hal import ffi, lib
from spikeboard.backends.model import ModelBackend
from spikeboard.metrics import linearity, symmetry

from .conftest import ideal_card, make_model


def model_of(card, geometry="32x32", **kw):
    b = ModelBackend()
    b.configure(cards.compile_card(card, geometry, **kw))
    return b


# ---------------------------------------------------------------- synapse
def test_linear_pulse_step_known_answer():
    b = model_of(ideal_card(nl_p=0.0, nl_d=0.0))
    p = b.params
    w = p.g_max - p.g_min
    assert p.step_p[0] == round(65536 / 64)            # linear branch: 1/64 of the window
    g0 = b.read_conductance(5, 1)[0]
    assert g0 == p.g_min                                # fresh cells sit at Gmin
    g1 = b.pulse(5, 1, +1, 1)[0]
    assert g1 - g0 == (1024 * w) >> 16                  # step * window, unit scale (Q2.14 = 16384)
    g2 = b.pulse(5, 1, -1, 1)[0]
    assert g2 == g0


def test_exponential_branch_follows_card_curve():
    card = ideal_card(nl_p=2.4, nl_d=-4.88)
    b = model_of(card)
    p = b.params
    w = p.g_max - p.g_min
    trace = b.pulse(0, 1, +1, 0).tolist()
    for _ in range(64):
        trace.append(int(b.pulse(0, 1, +1, 1)[0]))
    up, _ = card.branch_curves()
    got = (np.array(trace) - p.g_min) / w
    # the table is sampled on 64 bins, so the trace follows the curve within a few per cent
    assert np.max(np.abs(got - up)) < 0.04


def test_conductance_stays_in_window_and_holds_do_not_move(rng):
    b = make_model("rram-nonlinear")
    p = b.params
    for _ in range(40):
        first = int(rng.integers(0, 1000))
        n = int(rng.integers(1, 24))
        pol = int(rng.choice([-1, 1]))
        g = b.pulse(first, n, pol, int(rng.integers(1, 20)))
        assert g.min() >= 0 and g.max() <= 65535
    c = b.chip
    for i in range(b.cells):
        assert c.wmin[i] <= c.g[i] <= c.wmax[i] or c.state[i] == lib.SB_CELL_OPEN
    before = b.read_conductance()
    b.pulse(0, b.cells, 0, 50)                          # holds
    assert np.array_equal(before, b.read_conductance())


def test_stuck_cells_never_move():
    b = make_model("spec", stuck=0.2)
    st = np.array([b.chip.state[i] for i in range(b.cells)])
    stuck = st != lib.SB_CELL_OK
    assert 0.1 < stuck.mean() < 0.3                     # about the fraction asked
    g0 = b.read_conductance()
    b.pulse(0, b.cells, +1, 10)
    b.pulse(0, b.cells, -1, 3)
    g1 = b.read_conductance()
    assert np.array_equal(g0[stuck], g1[stuck])
    assert np.all(g1[~stuck] > g0[~stuck])
    assert np.all(g0[st == lib.SB_CELL_STUCK_MAX] == np.array([b.chip.wmax[i] for i in np.flatnonzero(st == lib.SB_CELL_STUCK_MAX)]))


def test_endurance_counts_pulses_and_wears():
    card = ideal_card(endurance_pulses=1000, endurance_shrink=0.5)
    b = model_of(card)
    b.pulse(3, 1, +1, 700)
    b.pulse(3, 1, -1, 300)
    assert b.chip.pulses[3] == 1000
    w_before = b.chip.wmax[3] - b.chip.wmin[3]
    b.pulse(3, 1, +1, 1000)                             # 1000 past the limit: half of 0.5 lost... shrink 50 %
    assert b.chip.pulses[3] == 2000
    w_after = b.chip.wmax[3] - b.chip.wmin[3]
    assert abs(w_after / w_before - 0.5) < 0.01


def test_retention_relaxes_exponentially():
    card = ideal_card(retention_tau_s=1000.0, relax_frac=0.25)
    b = model_of(card)
    p = b.params
    g0 = int(b.pulse(0, 1, +1, 60)[0])
    rel = p.g_relax
    b.age(1000)                                         # one time constant
    g1 = int(b.read_conductance(0, 1)[0])
    expect = rel + (g0 - rel) * math.exp(-1.0)
    assert abs(g1 - expect) <= 2 + 1e-4 * abs(g0 - rel)
    b.age(10**6)
    assert abs(int(b.read_conductance(0, 1)[0]) - rel) <= 1


def test_exp_neg_q16_known_values():
    for x in (0.0, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0):
        got = lib.sb_exp_neg_q16(int(x * 1000), 1000) / 65536
        assert abs(got - math.exp(-x)) < 2e-4


# ---------------------------------------------------------------- neuron / array / counters
def test_read_step_known_answer_and_counters():
    card = ideal_card()
    b = model_of(card, differential=False, neuron={"threshold": 1000.0, "leak": 0.0})
    p = b.params
    c = b.chip
    # hand-set conductances of rows 2 and 7
    for col in range(32):
        c.g[2 * 32 + col] = 1000 + col
        c.g[7 * 32 + col] = 3000
    x = np.zeros((1, 32), np.uint8)
    x[0, [2, 7]] = 1
    before = b.counters()
    _, v = b.infer(x)
    d = b.counters() - before
    for j in (0, 5, 31):
        current = (1000 + j) + 3000 - 2 * p.g_ref       # single-ended: minus the reference per active row
        want = (current * p.post_gain) >> p.post_shift
        assert v[j] == want
    k = 2
    assert d.reads == 32 * k and d.updates == 32 and d.pre == k and d.post == 32 and d.steps == 1
    assert d.time_ps == p.t_step_ps


def test_lif_integrate_leak_fire_reset_refractory():
    card = ideal_card()
    b = model_of(card, differential=False, neuron={"threshold": 2.0, "leak": 0.25, "reset": "subtract",
                                                   "refractory_steps": 1})
    p = b.params
    c = b.chip
    for col in range(32):
        c.g[col] = p.g_ref + (p.g_max - p.g_ref) // 2 * (col % 3)   # reference, +half, +full headroom
    x = np.zeros((6, 32), np.uint8)
    x[:, 0] = 1
    s, v = b.infer(x, trace=True)
    # hand simulation in Python integers, same order: leak, refractory, integrate, fire
    for j in (1, 2):
        inp = (((c.g[j] - p.g_ref)) * p.post_gain) >> p.post_shift
        vv, rf, fired, vs = 0, 0, [], []
        for _ in range(6):
            vv -= (vv * p.leak_q16) >> 16               # the membrane leaks, resting or not
            if rf:
                rf -= 1
                fired.append(0)
                vs.append(vv)
                continue
            vv += inp
            f = vv >= p.v_th
            if f:
                vv -= p.v_th
                rf = p.refractory
            fired.append(int(f))
            vs.append(vv)
        assert s[:, j].tolist() == fired
        assert v[:, j].tolist() == vs
    assert s[:, 0].sum() == 0


def test_energy_is_counts_times_card_energies(rng):
    b = make_model("rram-nonlinear")
    x = (rng.random((50, 32)) < 0.2).astype(np.uint8)
    b.train(x, 3, target=5)
    b.infer(x)
    c = b.counters()
    e = ffi.new("sb_energy_t *")
    lib.sb_dev_energy(b._dev, e)
    p = b.params
    assert e.read_aj == c.reads * p.e_read_aj
    assert e.neuron_aj == c.fires * p.e_fire_aj + c.updates * p.e_update_aj
    assert e.iface_aj == c.pre * p.e_pre_aj + c.post * p.e_post_aj
    assert e.total_aj == e.neuron_aj + e.read_aj + c.pot * p.e_pot_aj + c.dep * p.e_dep_aj + e.iface_aj


# ---------------------------------------------------------------- determinism
def test_same_seed_same_bits_whatever_batch_or_order(rng):
    a, b = make_model("rram-nonlinear"), make_model("rram-nonlinear")
    cells = np.arange(0, 300)
    for i in cells:
        a.pulse(int(i), 1, +1, 5)
    for i in cells[::-1]:
        b.pulse(int(i), 1, +1, 5)
    assert np.array_equal(a.read_conductance(), b.read_conductance())
    x = (rng.random((8, 40, 32)) < 0.2).astype(np.uint8)
    sb, vb = a.infer_batch(x)
    for k in range(8):
        s1, v1 = b.infer(x[k])
        assert np.array_equal(s1, sb[k]) and np.array_equal(v1, vb[k])
    c = make_model("rram-nonlinear", seed=99)
    c.pulse(0, 300, +1, 5)
    assert not np.array_equal(c.read_conductance(0, 300), a.read_conductance(0, 300))


# ---------------------------------------------------------------- SPEC linearity / symmetry
def pd_trace(b, cell=0, pulses=64, hold=16):
    g = [int(b.read_conductance(cell, 1)[0])]
    for _ in range(pulses):
        g.append(int(b.pulse(cell, 1, +1, 1)[0]))
    top = g[-1]
    for _ in range(hold):
        assert int(b.pulse(cell, 1, 0, 1)[0]) == top
    d = [top]
    for _ in range(pulses):
        d.append(int(b.pulse(cell, 1, -1, 1)[0]))
    return np.array(g), np.array(d)


@pytest.mark.parametrize("card,above", [("spec", True), ("rram-nonlinear", False)])
def test_linearity_and_symmetry_against_spec(card, above):
    b = make_model(card)
    p = b.params
    lins, syms = [], []
    for cell in range(0, 64, 8):
        up, down = pd_trace(b, cell)
        lo, hi = b.chip.wmin[cell], b.chip.wmax[cell]
        lins.append(min(linearity(up, lo, hi), linearity(down, lo, hi)))
        syms.append(symmetry(up, down, lo, hi))
    lin, sym = float(np.median(lins)), float(np.median(syms))
    if above:
        assert lin > 0.90 and sym > 0.90, (lin, sym)
    else:
        assert lin < 0.90 and sym < 0.90, (lin, sym)


# ------------------------------------------- fast read path vs a naive reference
def _naive_rng_normal_q12(seed, stream, index, counter):
    """sb_rng_normal_q12 written out in Python (64-bit arithmetic, as first specified)."""
    M = 0xFFFFFFFF

    def mix(x):
        x ^= x >> 16
        x = (x * 0x7FEB352D) & M
        x ^= x >> 15
        x = (x * 0x846CA68B) & M
        return x ^ (x >> 16)

    def u32(ctr):
        h = mix((seed + 0x9E3779B9 * (stream + 1)) & M)
        h = mix(h ^ index)
        return mix((h + ctr * 0x85EBCA6B) & M)

    a, b = u32((counter * 2) & M), u32((counter * 2 + 1) & M)
    s = (a & 0xFFFF) + (a >> 16) + (b & 0xFFFF) + (b >> 16)
    return int(math.trunc((s - 131070) * 4096 / 37837))


def _naive_run(p, g, x, nsample0):
    """The read step of chip.c as first written: one row, one neuron at a time.
    g: (layers, rows, cols) codes; x: (steps, rows) levels. Returns the last
    layer's fire masks and all layers' membranes and refractory counters."""
    L, R, C = p.layers, p.rows, p.cols
    diff = [(p.diff_mask >> l) & 1 for l in range(L)]
    nn = [C // 2 if d else C for d in diff]
    v = [[0] * nn[l] for l in range(L)]
    rf = [[0] * nn[l] for l in range(L)]
    ns = list(nsample0)
    clamp = lambda a, lo, hi: lo if a < lo else hi if a > hi else a   # noqa: E731
    out = []
    for t in range(x.shape[0]):
        lv = [int(a) for a in x[t]]
        for l in range(L):
            acc, rowsum = [0] * C, 0
            for r in range(R):
                if lv[r]:
                    rowsum += lv[r]
                    for k in range(C):
                        acc[k] += int(g[l, r, k]) * lv[r]
            ref = 0 if diff[l] else p.g_ref * rowsum
            inp = [acc[2 * j] - acc[2 * j + 1] if diff[l] else acc[j] - ref for j in range(nn[l])]
            if p.read_noise_q16 and rowsum:
                amp = ((p.g_max - p.g_min) * p.read_noise_q16 * math.isqrt(rowsum)) >> 16
                for j in range(nn[l]):
                    inp[j] += (amp * _naive_rng_normal_q12(p.seed, lib.SB_RNG_READ, l * lib.SB_MAX_NEURONS + j, ns[l])) >> 12
            mask = 0
            for j in range(nn[l]):
                cur = clamp(inp[j], -lib.SB_POST_IN_MAX, lib.SB_POST_IN_MAX)
                i = clamp((cur * p.post_gain) >> p.post_shift, -p.post_sat, p.post_sat)
                vj = v[l][j] - ((v[l][j] * p.leak_q16) >> 16)
                if rf[l][j]:
                    v[l][j], rf[l][j] = vj, rf[l][j] - 1
                    continue
                a = max(vj + i, p.v_min)
                if a >= p.v_th:
                    mask |= 1 << j
                    a = a - p.v_th if p.reset_mode == lib.SB_RESET_SUBTRACT else 0
                    rf[l][j] = p.refractory
                v[l][j] = a
            ns[l] += 1
            lv = [(mask >> r) & 1 for r in range(R)]
        out.append(mask)
    return np.array(out, np.uint32), v, rf


@pytest.mark.parametrize("card,geometry,diff,synapse,neuron,levels", [
    ("spec", "32x32", False, {}, {}, 1),
    ("spec", "32x32", False, {}, {"leak": 0.1, "refractory_steps": 2, "reset": "zero", "threshold": 1.0}, 1),
    ("rram-nonlinear", "32x32", True, {"read_noise": 0.1}, {"refractory_steps": 1, "v_min": -0.5}, 1),
    ("rram-nonlinear", "16x16x3", True, {"read_noise": 0.2}, {"leak": 0.05, "threshold": 0.5}, 1),
    ("spec", "16x16x3", False, {"read_noise": 0.05}, {"threshold": 0.5}, 3),
    ("ecram-linear", "32x32", False, {}, {"reset": "zero"}, 7),
])
def test_read_step_matches_naive_reference(card, geometry, diff, synapse, neuron, levels):
    """Guards the vectorised read path (binary row mask, fused neuron pass,
    inlined read-noise hash): bit-identical to the model as first written."""
    c = cards.load(card)
    ov = {"interface": {"pre_levels": levels}}
    if synapse:
        ov["synapse"] = synapse
    b = ModelBackend()
    b.configure(cards.compile_card(c.with_overrides(**ov), geometry, differential=diff, seed=3, neuron=neuron or None))
    p = b.params
    rng = np.random.default_rng(11)
    lo = p.g_min if diff else (p.g_min + 3 * p.g_max) // 4    # single-ended: above g_ref, so neurons fire
    b.program(rng.integers(lo, p.g_max, b.cells), tolerance=1500, max_pulses=255)
    g = b.read_conductance().reshape(p.layers, p.rows, p.cols)
    nsample = [int(b.chip.nsample[l]) for l in range(p.layers)]
    fired = 0
    for prob in (0.1, 0.4, 0.9):
        x = (rng.random((24, p.rows)) < prob).astype(np.uint8)
        if levels > 1 and prob < 0.5:
            x = x * rng.integers(1, levels + 1, x.shape).astype(np.uint8)
        s, v_last = b.infer(x)
        want, v, rf = _naive_run(p, g, x, nsample)
        got_masks = np.packbits(s.astype(np.uint8)[:, ::-1], axis=1, bitorder="big")
        got = np.array([int.from_bytes(r.tobytes(), "big") for r in got_masks], np.uint32) if s.shape[1] % 8 == 0 else None
        if got is not None:
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(s, [[(m >> j) & 1 for j in range(s.shape[1])] for m in want])
        for l in range(p.layers):
            vs, rs = b.state(l)
            assert list(vs) == v[l] and list(rs) == rf[l], (prob, l)
        nsample = [n + x.shape[0] for n in nsample]
        fired += int(s.sum())
    assert fired, "workload fired nothing: the test would be vacuous"
