"""An application on a chip, as `spikeboard apps report` and `apps tiled` run
it: the chip through the one door (spikeboard.chip), training and evaluation
through the one loop (spikeboard.loop), ex-situ weights through the one
mapping (spikeboard.mapping). A `run_app` cell is the same computation as a
`spikeboard train` session of the same card, app, settings and seed, without
the run folder: the two give the same bits (tests/test_one_way.py)."""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import cards as cardlib
from .. import loop
from ..backends import Backend, Counters
from ..chip import ChipSpec, Layout, configure, open_backend_for, open_chip
from ..errors import ConfigError
from .base import App, Prepared, prepare


@dataclass(frozen=True)
class AppRun:
    """One app trained on one chip (one seed): what a report row is made of."""

    app: str
    spec: ChipSpec
    layout: Layout
    settings: loop.Settings
    accuracy: float
    epoch_accuracy: tuple[float, ...]
    train_counters: Counters        # summed over the epochs' training phases
    infer_counters: Counters        # the last test pass
    train_samples: int
    test_samples: int
    baseline: float | None
    output_neurons: tuple[int, ...]
    conductance_crc32: int          # of the final read-back (uint16 codes), to compare with a session's
    params: Any = field(repr=False, compare=False, default=None)
    prepared: Prepared | None = field(repr=False, compare=False, default=None)   # the data the chip saw


def conductance_crc32(g: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(g, dtype=np.uint16).tobytes())


def run_app(app: App, spec: ChipSpec, *, train_limit: int | None = None, test_limit: int | None = None,
            **overrides: Any) -> AppRun:
    """On-device training of an app, exactly as a `train` session runs it: the
    card compiled for the app's settings, the array set up (yield scan, starting
    weights), the one training loop, the test set after every epoch."""
    ac = loop.app_chip(spec, app, **overrides)
    params, layout, st = ac.params, ac.layout, ac.settings
    P = loop.prepare_app(app, ac, spec.seed, train_limit=train_limit, test_limit=test_limit)
    with open_backend_for(spec) as b:
        configure(b, params, layout)
        neurons = loop.setup_array(b, P.classes, spec.seed)
        records = loop.TrainingLoop(b, P, neurons, st, spec.seed).run()
        g = b.read_conductance()
    train_c = loop.sum_counters([r.train_counters for r in records])
    assert train_c is not None
    return AppRun(app.name, spec, layout, st, records[-1].test_accuracy, tuple(r.test_accuracy for r in records),
                  train_c, records[-1].eval_counters, sum(r.train_samples for r in records), len(P.y_test),
                  P.baseline_accuracy, tuple(int(n) for n in neurons), conductance_crc32(g), params, P)


def exsitu_weights(P: Prepared) -> np.ndarray:
    """Float training for the ex-situ path: a logistic regression without
    intercept on the spike counts the chip integrates (the bias row carries the
    offset), one column per class, scaled so that the largest |w| is 1."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=3000, fit_intercept=False).fit(P.x_train.mean(1), P.y_train)
    W = clf.coef_ if clf.coef_.shape[0] > 1 else np.vstack([-clf.coef_, clf.coef_])
    return np.asarray((W / np.abs(W).max()).T)       # (rows, classes)


def train_exsitu(backend: Backend, P: Prepared, neurons: np.ndarray | None = None) -> float | None:
    """Ex situ: float training (exsitu_weights), then the weights programmed
    by write-verify through the one mapping onto the class neurons, stuck-aware
    (spikeboard.mapping.program_weights). One-layer chips only (None otherwise);
    a tiled layer works the same way over its logical shape."""
    from ..mapping import ChipConfig, program_weights

    if backend.params.layers != 1:
        return None
    nmap = np.arange(P.classes) if neurons is None else np.asarray(neurons)
    c = ChipConfig.of_backend(backend)
    program_weights(backend, exsitu_weights(P) * c.weight_max(0), neurons=[int(n) for n in nmap], config=c)
    return float((loop.predict(backend, P.x_test, nmap) == P.y_test).mean())


@dataclass(frozen=True)
class TiledResult:
    accuracy: float
    mode: str                   # "ex situ" | "in situ"
    baseline: float | None
    rows: int
    cols: int
    grid: tuple[int, int]
    features: str
    infer_counters: Counters    # the measured test pass
    test_samples: int
    macs_per_step: int
    params: Any                 # one tile's sb_params_t


def run_tiled(app: App, card: str, *, rows: int | None = None, seed: int = 0, stuck: float = 0.0,
              insitu: bool = False, epochs: int | None = None, train_limit: int | None = None,
              test_limit: int | None = None) -> TiledResult:
    """A table app on a tiled layer (the model backend configured with a
    logical shape larger than one array): rows=None gives every feature a row
    of its own plus the bias row, so no PCA is needed however many features
    the data has; the classes sit on differential pairs. Ex situ: train_exsitu.
    In situ: the one training loop with the compensated rule, every tile
    learning its part. The test set then runs once more with the counters read
    around it, for energy per inference."""
    ds = app.load(seed)
    if ds.kind != "table":
        raise ConfigError(f"{app.name}: tiled runs take table apps (this one is {ds.kind!r})", field="--app")
    rows = np.asarray(ds.x_train).shape[1] + 1 if rows is None else rows
    if rows < 2:
        raise ConfigError(f"need at least 2 rows (features + bias), got {rows}", field="--rows")
    P = prepare(app, rows, seed, train_limit=train_limit, test_limit=test_limit, dataset=ds)
    st = loop.settings_for(app, 1, epochs=epochs, rule="compensated")
    # whole tiles of columns, as the one-chip apps use all 16 neurons of a
    # 32x32 layer: the spare neurons stay in the on-chip rule's softmax, which
    # its learning rate was tuned with (exactly 10 neurons train far worse)
    c = cardlib.load(card)
    tile_cols = cardlib.GEOMETRIES[c["geometry"]["preset"]][1]
    cols = -(-2 * P.classes // tile_cols) * tile_cols
    spec = ChipSpec(card=card, seed=seed + 1, stuck=stuck, layout="differential", tiled=f"{rows}x{cols}")
    with open_chip(spec, neuron=st.neuron) as chip:
        b = chip.backend
        neurons = np.arange(P.classes)
        if insitu:
            loop.TrainingLoop(b, P, neurons, st, seed).run()
        else:
            train_exsitu(b, P, neurons)
        ev = loop.evaluate(b, P, neurons)
    return TiledResult(ev.accuracy, "in situ" if insitu else "ex situ", P.baseline_accuracy, rows, cols,
                       chip.layout.grid, P.feature_info, ev.counters, len(P.y_test), rows * chip.layout.neurons,
                       chip.params)
