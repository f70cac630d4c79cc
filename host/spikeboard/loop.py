"""The one training loop and the one evaluation loop.

Every path that trains or evaluates an application on a chip comes here:
`spikeboard train` / `infer` (sessions, which add the run folder, journal,
checkpoints and recovery by overriding the hooks of `TrainingLoop`),
`spikeboard apps report`, tiled layers and the tests. The same chip spec, app,
settings and seed therefore give the same bits whichever command runs them.

What is fixed here, once:
- the settings of an app on a geometry (`settings_for`: the app's defaults,
  deep geometries train every layer with DFA, the user's overrides on top);
- the array's set-up for learning (`setup_array`: yield scan -> class to
  output-neuron map, then the starting weights);
- the order of the training samples of each epoch and their sample ids
  (`epoch_order`, `sample_id`), which seed the on-chip stochastic rules;
- the prediction rule (`decide`) and the test-set pass (`evaluate`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, TypeVar

import numpy as np

from . import cards
from .apps.base import App, Dataset, Prepared, prepare
from .backends import Backend, Counters, TrainResult
from .chip import ChipSpec, Layout, compile_chip

T = TypeVar("T")

#: geometries of several layers: every layer trains on the chip (direct feedback
#: alignment); the single-ended hidden layers need a lower threshold to fire
DEEP_RULE = "dfa"
DEEP_THRESHOLD = 1.5
#: salt of the per-epoch sample order (numpy Generator seeded [seed, epoch, salt])
ORDER_SALT = 0x7A


@dataclass(frozen=True)
class Settings:
    """How an app trains: what a session's config and a report row state."""

    epochs: int
    rule: str
    target: int
    max_pulses: int
    threshold: float            # neuron threshold, in full conductance windows
    v_min: float | None = None  # membrane floor in full windows (None: the card's)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def neuron(self) -> dict[str, float]:
        """The [neuron] overrides the card is compiled with."""
        return {"threshold": self.threshold} if self.v_min is None else \
            {"threshold": self.threshold, "v_min": self.v_min}


def settings_for(app: App, layers: int, *, epochs: int | None = None, rule: str | None = None,
                 target: int | None = None, max_pulses: int | None = None,
                 threshold: float | None = None) -> Settings:
    """The app's defaults on a chip of `layers` layers, with overrides (None: default)."""
    deep = layers > 1
    s = Settings(app.epochs, DEEP_RULE if deep else app.rule, app.target, app.max_pulses,
                 DEEP_THRESHOLD if deep else app.threshold, app.v_min)
    given: dict[str, Any] = {"epochs": epochs, "rule": rule, "target": target, "max_pulses": max_pulses,
                             "threshold": threshold}
    return replace(s, **{k: v for k, v in given.items() if v is not None})


# ---------------------------------------------------------------------------
# the array before learning
# ---------------------------------------------------------------------------
def output_neurons(backend: Backend, classes: int, *, pulses: int = 256, min_window_frac: float = 0.5) -> np.ndarray:
    """Map around faulty cells: a yield scan (every cell to its minimum and
    maximum, as `characterize yield` does) finds the cells whose window is
    under min_window_frac of the card's, and the classes go to the output
    neurons of the last layer with the fewest such cells (a differential
    neuron counts both devices of its pairs), in neuron order. Returns the
    neuron of each class. Leaves every cell at its minimum, so it runs before
    the array is initialised. With no faults this is neurons 0..classes-1."""
    from .characterize import scan_window

    p = backend.params
    rows, cols = backend.layer_shape
    lo, hi = scan_window(backend, pulses)
    bad = (hi - lo) < min_window_frac * (p.g_max - p.g_min)
    last = bad.reshape(-1, rows, cols)[-1]
    diff = bool((p.diff_mask >> (p.layers - 1)) & 1)
    per_neuron = (last.reshape(rows, cols // 2, 2).sum((0, 2)) if diff else last.sum(0))
    if classes > len(per_neuron):
        from .errors import ConfigError

        raise ConfigError(f"{classes} classes need {classes} output neurons, the last layer has {len(per_neuron)}")
    return np.sort(np.argsort(per_neuron, kind="stable")[:classes])


def init_array(backend: Backend, seed: int) -> None:
    """Starting weights: differential layers start at w = 0 (both devices at
    Gmin, as configured). Otherwise the last layer is written to w = 0 and
    hidden layers to a fixed random projection (seeded), through the one
    mapping and its write-verify tolerance (spikeboard.mapping)."""
    from .mapping import ChipConfig, program_weights

    c = ChipConfig.of_backend(backend)
    if c.layers == 1 and c.diff[0]:
        return
    rng = np.random.default_rng([seed, 0x1A7])
    k = c.window / c.codes_per_unit            # one full window, chip units
    program_weights(backend, [np.zeros((c.rows, c.neurons(l))) if l == c.layers - 1 else
                              rng.uniform(-0.25, 0.5, (c.rows, c.neurons(l))) * k   # biased positive so hidden neurons fire
                              for l in range(c.layers)], config=c, compensate=False)


def setup_array(backend: Backend, classes: int, seed: int) -> np.ndarray:
    """Yield scan, then the starting weights; returns the class -> neuron map."""
    neurons = output_neurons(backend, classes)
    init_array(backend, seed)
    return neurons


# ---------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------
def decide(fires: np.ndarray, v: np.ndarray, neurons: np.ndarray, v_th: int) -> np.ndarray:
    """The prediction rule. fires (..., steps, neurons), v (..., neurons) the
    final membranes; class k is read from output neuron neurons[k]. Score =
    fires x v_th + v, the charge the neuron integrated (reset by subtraction
    keeps the remainder in v): the same output y = fires + v / v_th that the
    on-chip rules form their error on. On silicon, whose membranes cannot be
    read (v = 0), this is the fire count. Ties go to the lower class."""
    sel = np.asarray(neurons)
    counts = fires[..., sel].sum(axis=-2).astype(np.int64)
    return np.asarray((counts * int(v_th) + v[..., sel].astype(np.int64)).argmax(axis=-1))


def predict(backend: Backend, x: np.ndarray, neurons: np.ndarray,
            progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Predictions for samples (N, steps, rows) on any backend, as many per
    request as the backend takes (INFER_BATCH over a link, a C loop on the
    model): the same bits as one inference each."""
    n = len(x)
    pred = np.zeros(n, np.int64)
    k = 0
    while k < n:
        m = min(n - k, max(1, backend.infer_chunk(int(x.shape[1]))))
        f, v = backend.infer_batch(x[k:k + m])
        pred[k:k + m] = decide(f, v, neurons, backend.params.v_th)
        if progress is not None:
            progress(m)
        k += m
    return pred


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    predictions: np.ndarray = field(repr=False)
    counters: Counters          # what the test pass cost


def evaluate(backend: Backend, data: Prepared, neurons: np.ndarray,
             progress: Callable[[int], None] | None = None) -> Evaluation:
    """The test set through the chip: accuracy, predictions and the pass's counters."""
    c0 = backend.counters()
    pred = predict(backend, data.x_test, neurons, progress)
    return Evaluation(float((pred == data.y_test).mean()), pred, backend.counters() - c0)


# ---------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------
def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of the training samples in an epoch."""
    return np.random.default_rng([seed, epoch, ORDER_SALT]).permutation(n)


def sample_id(epoch: int, n: int, pos: int) -> int:
    """The id of the pos-th sample of an epoch: it seeds the stochastic rules on the chip."""
    return epoch * n + pos


@dataclass(frozen=True)
class EpochRecord:
    """One epoch: what metrics.jsonl holds a line of."""

    epoch: int
    train_running_accuracy: float | None
    test_accuracy: float
    train_counters: Counters
    eval_counters: Counters
    train_samples: int

    def as_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "train_running_accuracy": self.train_running_accuracy,
                "test_accuracy": self.test_accuracy, "train_counters": self.train_counters.as_dict(),
                "eval_counters": self.eval_counters.as_dict(), "train_samples": self.train_samples}


class TrainingLoop:
    """On-device training of prepared data on a chip: epochs of samples in
    `epoch_order`, each sent with its `sample_id` and the label's output
    neuron, as many per request as the link carries (never across a
    checkpoint or an epoch's end), then the test set after every epoch.

    The hooks below do nothing here; a session overrides them to journal each
    sample, skip what a resumed run applied, checkpoint and recover."""

    def __init__(self, backend: Backend, data: Prepared, neurons: np.ndarray, settings: Settings, seed: int):
        self.backend, self.data, self.neurons, self.settings, self.seed = backend, data, neurons, settings, seed
        self.applied = 0            # samples applied to the chip so far (all epochs)
        self.seen = self.correct = 0   # this epoch's samples and right predictions so far

    # -- hooks ---------------------------------------------------------------
    def guard(self, fn: Callable[[], T]) -> T:
        """Run one step against the board (a session recovers from resets here)."""
        return fn()

    def done(self, epoch: int, pos: int) -> bool:
        """Was this sample applied already (a resumed session)?"""
        return False

    def epoch_done(self, epoch: int) -> bool:
        return False

    def epoch_start(self, epoch: int) -> Counters:
        """The counters the epoch's training counts from; resets its running totals
        (a resumed session restores both as they were when the epoch began)."""
        self.seen = self.correct = 0
        return self.counters()

    def chunk_limit(self, steps: int) -> int:
        return max(1, self.backend.train_chunk(steps, self.settings.rule, self.settings.max_pulses))

    def checkpoint_due(self, applied: int) -> bool:
        return False

    def checkpoint(self, applied: int, record: EpochRecord | None = None) -> None:
        pass

    def counters(self) -> Counters:
        return self.backend.counters()

    def on_sample(self, epoch: int, pos: int, index: int, result: TrainResult) -> None:
        pass

    def on_epoch(self, record: EpochRecord) -> EpochRecord:
        return record

    def evaluation(self, epoch: int) -> Evaluation:
        return evaluate(self.backend, self.data, self.neurons)

    # -- the loop ------------------------------------------------------------
    def run(self) -> list[EpochRecord]:
        records = []
        for epoch in range(self.settings.epochs):
            if not self.epoch_done(epoch):
                records.append(self.on_epoch(self.run_epoch(epoch)))
        return records

    def run_epoch(self, epoch: int) -> EpochRecord:
        d, st = self.data, self.settings
        n = len(d.y_train)
        order = epoch_order(self.seed, epoch, n)
        c0 = self.guard(lambda: self.epoch_start(epoch))
        pos = 0
        while pos < n:
            if self.done(epoch, pos):
                pos += 1
                continue
            limit = self.chunk_limit(int(d.x_train[int(order[pos])].shape[0]))
            chunk: list[int] = []
            while pos < n and len(chunk) < limit and not self.done(epoch, pos):
                chunk.append(pos)
                pos += 1
                if self.checkpoint_due(self.applied + len(chunk)):
                    break
            idx = [int(order[q]) for q in chunk]
            rs = self.guard(lambda: self.backend.train_batch(
                [d.x_train[i] for i in idx], [int(self.neurons[d.y_train[i]]) for i in idx],
                [sample_id(epoch, n, q) for q in chunk], rule=st.rule, target=st.target, max_pulses=st.max_pulses))
            for q, i, r in zip(chunk, idx, rs):
                self.applied += 1
                self.seen += 1
                self.correct += int(r.predicted == self.neurons[d.y_train[i]])
                self.on_sample(epoch, q, i, r)
            if self.checkpoint_due(self.applied):
                self.guard(lambda: self.checkpoint(self.applied))

        def end() -> EpochRecord:
            c1 = self.counters()
            ev = self.evaluation(epoch)
            rec = EpochRecord(epoch, self.correct / self.seen if self.seen else None, ev.accuracy, c1 - c0,
                              ev.counters, self.seen)
            self.checkpoint(self.applied, rec)
            return rec

        return self.guard(end)


def sum_counters(cs: list[Counters]) -> Counters | None:
    if not cs:
        return None
    return Counters(**{k: sum(c.as_dict()[k] for c in cs) for k in cs[0].as_dict()})


# ---------------------------------------------------------------------------
# an app on a chip
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class AppChip:
    """An app's chip, compiled: the card, its block, the layout, the settings,
    and the app's data set (loaded once: its classes set the layout)."""

    card: cards.Card
    params: Any
    layout: Layout
    settings: Settings
    dataset: Dataset


def app_chip(spec: ChipSpec, app: App, **overrides: Any) -> AppChip:
    """The card compiled for an app: its settings on the spec's geometry (the
    neuron threshold and floor they set go into the block) and the layout,
    whose output neurons must hold the app's classes."""
    card = spec.load_card()
    geometry = spec.geometry or card["geometry"]["preset"]
    layers = cards.GEOMETRIES[geometry][2] if geometry in cards.GEOMETRIES else 1
    st = settings_for(app, layers, **overrides)
    ds = app.load(spec.seed)
    card, params, layout = compile_chip(spec, neuron=st.neuron, outputs=ds.classes)
    return AppChip(card, params, layout, st, ds)


def prepare_app(app: App, chip: AppChip, seed: int, *, train_limit: int | None = None,
                test_limit: int | None = None) -> Prepared:
    """The app's data for its chip: features for the layout's input rows,
    classes checked against its output neurons."""
    return prepare(app, chip.layout.rows, seed, train_limit=train_limit, test_limit=test_limit,
                   neurons=chip.layout.neurons, dataset=chip.dataset)
