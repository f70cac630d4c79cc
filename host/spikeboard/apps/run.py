"""Running an application on a chip: set the array up for a geometry, train
in situ (on-device rule) or ex situ (float training, then write-verify),
evaluate, and measure energy from counter deltas. Used by `spikeboard apps
report` and the tests; any Backend works (model, emulator, serial)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import cards as cardlib
from .base import App, Prepared


def geometry_layout(geometry: str) -> tuple[int, list[bool]]:
    """Inputs per sample and the differential flag per layer. 32x32: one
    differential layer (16 signed neurons). 16x16x3: single-ended layers
    (weight = G - g_ref) so that the last layer keeps 16 neurons for 10 classes."""
    rows, _, layers = cardlib.GEOMETRIES[geometry]
    return rows, ([True] if layers == 1 else [False] * layers)


def make_params(card: str, geometry: str, *, seed: int, stuck: float = 0.0, threshold: float = 4.0,
                v_min: float | None = None):
    """The compiled block of a card for an application: its geometry layout,
    the app's neuron threshold and, where the app sets one, membrane floor."""
    _, diff = geometry_layout(geometry)
    neuron = {"threshold": threshold} if v_min is None else {"threshold": threshold, "v_min": v_min}
    return cardlib.compile_card(cardlib.load(card), geometry, seed=seed, stuck=stuck,
                                differential=diff, neuron=neuron)


def init_array(backend, seed: int) -> None:
    """Initial weights: differential layers start at w = 0 (both devices at
    Gmin, as configured). Single-ended layers are written to w = 0 (G = g_ref)
    for the last layer and to a fixed random projection (seeded, write-verify)
    for hidden layers."""
    p = backend.params
    if p.layers == 1 and p.diff_mask & 1:
        return
    per = p.rows * p.cols
    win = p.g_max - p.g_min
    rng = np.random.default_rng([seed, 0x1A7])
    t = np.empty(per * p.layers, dtype=np.int64)
    for l in range(p.layers):
        if l == p.layers - 1:
            t[l * per:(l + 1) * per] = p.g_ref
        else:
            w = rng.uniform(-0.25, 0.5, per)   # biased positive so hidden neurons fire
            t[l * per:(l + 1) * per] = p.g_ref + np.round(w * win)
    backend.program(np.clip(t, p.g_min, p.g_max).astype(np.uint16), tolerance=max(1, win // 64), max_pulses=255)


def output_neurons(backend, classes: int, *, pulses: int = 256, min_window_frac: float = 0.5) -> np.ndarray:
    """Map around faulty cells: a yield scan (every cell to its minimum and
    maximum, as `characterize yield` does) finds the cells whose window is
    under min_window_frac of the card's, and the classes go to the output
    neurons of the last layer with the fewest such cells (a differential
    neuron counts both devices of its pairs), in neuron order. Returns the
    neuron of each class. Leaves every cell at its minimum, so it runs before
    the array is initialised. With no faults this is neurons 0..classes-1."""
    from ..characterize import scan_window

    p = backend.params
    lo, hi = scan_window(backend, pulses)
    bad = (hi - lo) < min_window_frac * (p.g_max - p.g_min)
    last = bad.reshape(p.layers, p.rows, p.cols)[p.layers - 1]
    diff = bool((p.diff_mask >> (p.layers - 1)) & 1)
    per_neuron = (last.reshape(p.rows, p.cols // 2, 2).sum((0, 2)) if diff else last.sum(0))
    if classes > len(per_neuron):
        raise ValueError(f"{classes} classes need {classes} output neurons, the last layer has {len(per_neuron)}")
    return np.sort(np.argsort(per_neuron, kind="stable")[:classes])


def decide(fires: np.ndarray, v: np.ndarray, neurons: np.ndarray, v_th: int) -> np.ndarray:
    """The prediction rule. fires (..., steps, neurons), v (..., neurons) the
    final membranes; class k is read from output neuron neurons[k]. Score =
    fires x v_th + v, the charge the neuron integrated (reset by subtraction
    keeps the remainder in v): the same output y = fires + v / v_th that the
    on-chip rules form their error on. On silicon, whose membranes cannot be
    read (v = 0), this is the fire count. Ties go to the lower class."""
    sel = np.asarray(neurons)
    counts = fires[..., sel].sum(axis=-2).astype(np.int64)
    return (counts * int(v_th) + v[..., sel].astype(np.int64)).argmax(axis=-1)


def predict(backend, x: np.ndarray, classes: int, batch: int = 256, neurons: np.ndarray | None = None) -> np.ndarray:
    """Predictions for a batch of samples on any backend (see decide)."""
    sel = np.arange(classes) if neurons is None else np.asarray(neurons)
    out = []
    for k in range(0, len(x), batch):
        s, v = backend.infer_batch(x[k:k + batch])
        out.append(decide(s, v, sel, backend.params.v_th))
    return np.concatenate(out)


@dataclass(frozen=True)
class RunResult:
    accuracy: float
    epoch_accuracy: tuple[float, ...]
    train_counters: object      # Counters delta over training
    infer_counters: object      # Counters delta over the test inference
    train_samples: int
    test_samples: int


def train_insitu(backend, P: Prepared, *, epochs: int, rule: str, target: int, max_pulses: int,
                 seed: int = 0, eval_each: bool = False, neurons: np.ndarray | None = None) -> RunResult:
    """On-device training; class k is taught to output neuron neurons[k]
    (default k, see output_neurons)."""
    nmap = np.arange(P.classes) if neurons is None else np.asarray(neurons)
    c0 = backend.counters()
    accs = []
    n = len(P.y_train)
    for ep in range(epochs):
        order = np.random.default_rng([seed, ep, 0x7A1]).permutation(n)
        for i in order:
            backend.train(P.x_train[i], int(nmap[P.y_train[i]]), rule=rule, target=target, max_pulses=max_pulses,
                          sample_id=(ep << 20) | int(i))
        if eval_each and ep < epochs - 1:
            accs.append(float((predict(backend, P.x_test, P.classes, neurons=nmap) == P.y_test).mean()))
    c1 = backend.counters()
    pred = predict(backend, P.x_test, P.classes, neurons=nmap)
    c2 = backend.counters()
    acc = float((pred == P.y_test).mean())
    return RunResult(acc, tuple(accs + [acc]), c1 - c0, c2 - c1, n * epochs, len(P.y_test))


def train_exsitu(backend, P: Prepared, neurons: np.ndarray | None = None) -> float | None:
    """Float training then write-verify: a logistic regression without
    intercept on the spike counts the chip integrates, its weights scaled to
    the window (largest |w| = one full window) and programmed onto the
    differential pairs of the class neurons (`neurons`, see output_neurons).
    Stuck-aware: after the first pass the pairs are read back, and where one
    device missed its target (stuck, or out of its own window) its partner is
    programmed again so that the pair's difference is the wanted weight.
    Single-layer differential arrays only (None otherwise); a tiled layer
    (spikeboard.tiles.TiledArray) works the same way over its logical shape."""
    p = backend.params
    if p.layers != 1 or not p.diff_mask & 1:
        return None
    rows, cols = backend.layer_shape
    from sklearn.linear_model import LogisticRegression

    nmap = np.arange(P.classes) if neurons is None else np.asarray(neurons)
    clf = LogisticRegression(max_iter=3000, fit_intercept=False).fit(P.x_train.mean(1), P.y_train)
    W = clf.coef_ if clf.coef_.shape[0] > 1 else np.vstack([-clf.coef_, clf.coef_])
    W = W / np.abs(W).max()
    win = p.g_max - p.g_min
    tol = max(1, win // 100)
    t = np.full((rows, cols), p.g_min, np.int64)
    want = np.zeros((rows, cols // 2), np.int64)
    for j, n in enumerate(nmap):
        want[:, n] = np.round(W[j] * win)
        t[:, 2 * n] = p.g_min + np.clip(want[:, n], 0, win)
        t[:, 2 * n + 1] = p.g_min + np.clip(-want[:, n], 0, win)
    backend.program(t.ravel().astype(np.uint16), tolerance=tol, max_pulses=200)
    g = backend.read_conductance().astype(np.int64).reshape(rows, cols)
    gp, gm = g[:, 0::2], g[:, 1::2]
    miss_p = np.abs(gp - t[:, 0::2]) > 2 * tol
    miss_m = np.abs(gm - t[:, 1::2]) > 2 * tol
    t2 = t.copy()
    t2[:, 1::2] = np.where(miss_p & ~miss_m, np.clip(gp - want, p.g_min, p.g_max), t[:, 1::2])
    t2[:, 0::2] = np.where(miss_m & ~miss_p, np.clip(gm + want, p.g_min, p.g_max), t[:, 0::2])
    if (t2 != t).any():
        backend.program(t2.ravel().astype(np.uint16), tolerance=tol, max_pulses=200)
    return float((predict(backend, P.x_test, P.classes, neurons=nmap) == P.y_test).mean())


@dataclass(frozen=True)
class TiledResult:
    accuracy: float
    mode: str                   # "ex situ" | "in situ"
    baseline: float | None
    rows: int
    cols: int
    grid: tuple[int, int]
    features: str
    infer_counters: object      # Counters of the measured test pass
    test_samples: int
    macs_per_step: int
    params: object              # one tile's sb_params_t


def run_tiled(app, card: str, *, rows: int | None = None, seed: int = 0, stuck: float = 0.0, insitu: bool = False,
              epochs: int | None = None, train_limit: int | None = None, test_limit: int | None = None) -> TiledResult:
    """A table app on a tiled layer (spikeboard.tiles): rows=None gives every
    feature a row of its own plus the bias row, so no PCA is needed however
    many features the data has; the classes sit on differential pairs.
    Ex situ: train_exsitu (float training, write-verify). In situ: on-chip
    learning with the compensated rule, every tile learning its part
    (train_insitu, the app's target and pulse budget). The test set then runs
    once more with the counters read around it, for energy per inference."""
    from ..errors import ConfigError
    from ..tiles import TiledArray
    from .base import prepare

    ds = app.load(seed)
    if ds.kind != "table":
        raise ConfigError(f"{app.name}: tiled runs take table apps (this one is {ds.kind!r})", field="--app")
    rows = ds.x_train.shape[1] + 1 if rows is None else rows
    if rows < 2:
        raise ConfigError(f"need at least 2 rows (features + bias), got {rows}", field="--rows")
    P = prepare(app, rows, seed, train_limit=train_limit, test_limit=test_limit, dataset=ds)
    neuron = {"threshold": app.threshold} if app.v_min is None else {"threshold": app.threshold, "v_min": app.v_min}
    # whole tiles of columns, as the one-chip apps use all 16 neurons of a
    # 32x32 layer: the spare neurons stay in the on-chip rule's softmax, which
    # its learning rate was tuned with (exactly 10 neurons train far worse)
    c = cardlib.load(card)
    tile_cols = cardlib.GEOMETRIES[c["geometry"]["preset"]][1]
    cols = -(-2 * P.classes // tile_cols) * tile_cols
    t = TiledArray.from_card(c, rows, cols, differential=True, seed=seed + 1, stuck=stuck, neuron=neuron)
    if insitu:
        train_insitu(t, P, epochs=epochs or app.epochs, rule="compensated", target=app.target,
                     max_pulses=app.max_pulses, seed=seed)
    else:
        train_exsitu(t, P)
    c0 = t.counters()
    pred = predict(t, P.x_test, P.classes)
    c1 = t.counters()
    return TiledResult(float((pred == P.y_test).mean()), "in situ" if insitu else "ex situ", P.baseline_accuracy,
                       rows, cols, t.grid, P.feature_info, c1 - c0, len(P.y_test), rows * t.neurons, t.params)
