"""The application path: data set -> features (fitted on the training split
only) -> spikes, plus the float baseline on the same features."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Union

import numpy as np

from ..errors import ConfigError
from . import encoders


#: a data set's samples: (samples, features) floats for table data, a list of
#: (time, channels) arrays for series data
Samples = Union[np.ndarray, list[np.ndarray]]


@dataclass(frozen=True)
class Dataset:
    """A split data set. Table data: x_* are (samples, features) floats.
    Series data: x_* are lists of (time, channels) arrays."""

    name: str
    x_train: Samples
    y_train: np.ndarray
    x_test: Samples
    y_test: np.ndarray
    classes: int
    kind: str = "table"          # "table" | "series" | "frames"
    source: str = ""


@dataclass(frozen=True)
class App:
    name: str
    description: str
    load: Callable[[int], Dataset]
    encoder: str = "rate"        # rate | poisson | latency | delta | frames
    steps: int = 32
    target: int = 6              # fires wanted from the label neuron per sample
    why: str = ""                # why this encoder (shown in reports)
    p_max: float = 0.5
    delta_threshold: float = 0.5
    # on-device training defaults (a session's options override them)
    rule: str = "sign"
    max_pulses: int = 1
    threshold: float = 2.0       # neuron threshold, in full conductance windows
    epochs: int = 3
    segments: int = 1            # frames: the stream's time segments, each on its own rows
    v_min: float | None = None   # membrane floor in full windows (None: the card's)


@dataclass(frozen=True)
class Prepared:
    app: App
    rows: int
    x_train: np.ndarray          # spikes (N, steps, rows) uint8
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    f_train: np.ndarray = field(repr=False)   # features the baseline sees
    f_test: np.ndarray = field(repr=False)
    classes: int = 10
    baseline_accuracy: float | None = None
    feature_info: str = ""


_REGISTRY: dict[str, Callable[[], App]] = {}


def register(name: str):
    def deco(fn: Callable[[], App]):
        _REGISTRY[name] = fn
        return fn
    return deco


def list_apps() -> list[str]:
    from . import builtin  # noqa: F401  (registers the built-in applications)

    return sorted(_REGISTRY)


def get_app(name: str) -> App:
    list_apps()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown application {name!r} (one of {', '.join(sorted(_REGISTRY))}; "
                          "or --data FILE for your own data)")
    return _REGISTRY[name]()


def table_features(x_train: np.ndarray, x_test: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Standardise, PCA to rows - 1 when there are more features, and scale
    to [0, 1] with the training split's 1st/99th percentiles. Every statistic
    comes from the training split only (no test leakage). The last row is a
    bias row, always at full rate: the crossbar has no bias term of its own,
    and rate-coded features are all positive, so without it every neuron's
    offset has to be carried by the feature weights."""
    xtr = np.asarray(x_train, dtype=float)
    xte = np.asarray(x_test, dtype=float)
    mu = xtr.mean(axis=0)
    sd = xtr.std(axis=0)
    sd[sd == 0] = 1.0
    ztr, zte = (xtr - mu) / sd, (xte - mu) / sd
    info = f"{xtr.shape[1]} features, standardised"
    rows -= 1                      # the bias row
    if xtr.shape[1] > rows:
        # PCA by SVD of the training split
        _, _, vt = np.linalg.svd(ztr - ztr.mean(axis=0), full_matrices=False)
        comp = vt[:rows]
        ztr, zte = ztr @ comp.T, zte @ comp.T
        info += f", PCA to {rows} components (fitted on the training split)"
    lo = np.percentile(ztr, 1, axis=0)
    hi = np.percentile(ztr, 99, axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    ftr = np.clip((ztr - lo) / span, 0, 1)
    fte = np.clip((zte - lo) / span, 0, 1)
    if ftr.shape[1] < rows:
        pad = rows - ftr.shape[1]
        ftr = np.pad(ftr, ((0, 0), (0, pad)))
        fte = np.pad(fte, ((0, 0), (0, pad)))
        info += f", {pad} rows unused"
    ftr = np.hstack([ftr, np.ones((len(ftr), 1))])
    fte = np.hstack([fte, np.ones((len(fte), 1))])
    return ftr, fte, info + ", scaled to [0, 1], plus a bias row"


def baseline(f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray, y_test: np.ndarray) -> float | None:
    """Float logistic regression on the same features the chip sees."""
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:  # the apps extra is missing: no baseline, said in the report
        return None
    if len(np.unique(y_train)) < 2:
        return None
    clf = LogisticRegression(max_iter=3000)
    clf.fit(f_train.reshape(len(f_train), -1), y_train)
    return float(clf.score(f_test.reshape(len(f_test), -1), y_test))


#: the largest feature magnitude: its square still fits a float64 with room for the sums
MAX_FEATURE = 1e150


def check_features(x, where: str, field: str = "X") -> np.ndarray:
    """A feature table (samples, features) of finite numbers; errors name where and field."""
    x = np.asarray(x)
    if x.dtype.kind not in "iuf":
        raise ConfigError(f"dtype {x.dtype}: need numbers (integers or floats)", file=where, field=field)
    if x.ndim != 2:
        raise ConfigError(f"shape {x.shape}: need (samples, features)", file=where, field=field)
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ConfigError(f"shape {x.shape}: no {'samples' if x.shape[0] == 0 else 'features'}",
                          file=where, field=field)
    x = x.astype(float)
    if not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ConfigError(f"NaN or infinity at sample {bad[0]}, feature {bad[1]}", file=where, field=field)
    big = np.abs(x) > MAX_FEATURE
    if big.any():       # their squares overflow in the standardisation, and every feature would read 0
        bad = np.argwhere(big)[0]
        raise ConfigError(f"value {x[bad[0], bad[1]]:g} at sample {bad[0]}, feature {bad[1]} is too large "
                          f"(|x| <= {MAX_FEATURE:g}; rescale the data)", file=where, field=field)
    return x


#: the largest label a data set may carry: far more classes than any chip has
#: output neurons, and small enough to be exact in every integer and float type
MAX_LABEL = 2**31 - 1


def check_labels(y: Any, where: str, field: str = "y", samples: int | None = None) -> np.ndarray:
    """Labels: one column of whole numbers 0..MAX_LABEL, one per sample, at least
    two classes with at least two samples each (one for each split). Checked in
    the labels' own type before any conversion, so nothing wraps or rounds."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ConfigError(f"labels must be one column, got shape {y.shape}", file=where, field=field)
    if y.size == 0:
        raise ConfigError("no samples", file=where, field=field)
    if samples is not None and y.size != samples:
        raise ConfigError(f"{y.size} labels for {samples} samples", file=where, field=field)
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise ConfigError(f"labels must be whole numbers 0..classes-1 (dtype {y.dtype})", file=where, field=field)
    if np.issubdtype(y.dtype, np.floating):
        whole = np.isfinite(y) & (y == np.round(np.nan_to_num(y)))
        if not whole.all():
            bad = int(np.flatnonzero(~whole)[0])
            raise ConfigError(f"labels must be whole numbers 0..classes-1 (dtype {y.dtype}; "
                              f"sample {bad} is {float(y[bad])!r})", file=where, field=field)
    if y.min() < 0:
        raise ConfigError(f"negative label {y.min()} at sample {int(np.argmin(y))}", file=where, field=field)
    if y.max() > MAX_LABEL:
        raise ConfigError(f"label {y.max()} at sample {int(np.argmax(y))} is out of range (labels are "
                          f"0..classes-1, at most {MAX_LABEL})", file=where, field=field)
    y = y.astype(np.int64)
    present, counts = np.unique(y, return_counts=True)
    if len(present) < 2:
        raise ConfigError(f"only one class (label {present[0]}): need at least 2", file=where, field=field)
    if counts.min() < 2:
        lone = present[counts < 2]
        raise ConfigError(f"label(s) {', '.join(map(str, lone[:5]))} have a single sample: each class needs "
                          "at least 2 (one for the training split, one for the test split)", file=where, field=field)
    return y


def prepare(app: App, rows: int, seed: int, *, train_limit: int | None = None,
            test_limit: int | None = None, neurons: int | None = None, dataset: Dataset | None = None) -> Prepared:
    ds = dataset if dataset is not None else app.load(seed)
    if neurons is not None and ds.classes > neurons:
        raise ConfigError(f"labels 0..{ds.classes - 1} need {ds.classes} output neurons, "
                          f"the array's last layer has {neurons}", file=ds.name, field="y")
    ytr, yte = ds.y_train, ds.y_test
    ftr: Any    # an array (table, frames) or a list of series, as the encoder below takes it
    fte: Any
    if ds.kind == "table":
        ftr, fte, info = table_features(np.asarray(ds.x_train), np.asarray(ds.x_test), rows)
    elif ds.kind == "frames":
        ftr, fte, info = frame_features(ds.x_train, ds.x_test, rows, app.steps, app.segments)
    else:
        ftr, fte, info = ds.x_train, ds.x_test, "multichannel series, standardised per channel"
    if train_limit:
        ftr, ytr = _take(ftr, train_limit), ytr[:train_limit]
        if len(np.unique(ytr)) < 2:
            raise ConfigError(f"the first {len(ytr)} training samples hold only label {ytr[0]}: "
                              "raise the limit", field=f"--train-limit {train_limit}")
    if test_limit:
        fte, yte = _take(fte, test_limit), yte[:test_limit]
    ids_tr = np.arange(len(ytr))
    ids_te = 1_000_000 + np.arange(len(yte))
    if app.encoder in ("rate", "poisson"):
        enc = getattr(encoders, app.encoder)
        xtr = enc(ftr, app.steps, seed=seed, ids=ids_tr, p_max=app.p_max)
        xte = enc(fte, app.steps, seed=seed, ids=ids_te, p_max=app.p_max)
    elif app.encoder == "latency":
        xtr, xte = encoders.latency(ftr, app.steps), encoders.latency(fte, app.steps)
    elif app.encoder == "frames":
        xtr = encoders.frames(ftr, rows, seed=seed, ids=ids_tr, p_max=app.p_max)
        xte = encoders.frames(fte, rows, seed=seed, ids=ids_te, p_max=app.p_max)
    elif app.encoder == "delta":
        xtr = encoders.delta(ftr, app.steps, rows, threshold=app.delta_threshold)
        xte = encoders.delta(fte, app.steps, rows, threshold=app.delta_threshold)
    else:
        raise ConfigError(f"{app.name}: unknown encoder {app.encoder!r}")
    btr, bte = _baseline_features(ds.kind, ftr, fte, xtr, xte)
    return Prepared(app, rows, xtr, ytr, xte, yte, btr, bte, ds.classes,
                    baseline(btr, ytr, bte, yte), info)


def frame_features(x_train, x_test, rows: int, steps: int, segments: int = 1):
    """Frame sequences resampled to `steps`, PCA over the training split's
    frames when they have more coefficients than rows allow, scaled per
    coefficient to [0, 1] (training split's 1st/99th percentiles). With
    segments > 1 the stream is cut into that many parts in time and each part
    drives its own block of rows (row = segment x coefficient): the neurons
    integrate every part separately, so the order of the sounds counts. The
    last row is a bias row at full rate, as for tables."""
    def resample(s):
        s = np.asarray(s, float)
        idx = np.linspace(0, len(s) - 1, steps)
        return np.stack([np.interp(idx, np.arange(len(s)), s[:, c]) for c in range(s.shape[1])], axis=1)
    tr = np.stack([resample(s) for s in x_train])
    te = np.stack([resample(s) for s in x_test])
    per = (rows - 1) // segments          # coefficients per segment; one row is the bias
    if per < 1:
        raise ConfigError(f"{segments} segments do not fit {rows} rows")
    info = ""
    if tr.shape[2] > per:
        # more coefficients than rows: PCA over the training split's frames
        flat = tr.reshape(-1, tr.shape[2])
        mu, sd = flat.mean(0), flat.std(0)
        sd[sd == 0] = 1.0
        _, _, vt = np.linalg.svd((flat - mu) / sd, full_matrices=False)
        proj = lambda a: (((a - mu) / sd) @ vt[:per].T)  # noqa: E731
        tr, te = proj(tr), proj(te)
        info = f", PCA to {per} (fitted on the training split's frames)"
    lo = np.percentile(tr.reshape(-1, tr.shape[2]), 1, axis=0)
    hi = np.percentile(tr.reshape(-1, tr.shape[2]), 99, axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    tr, te = np.clip((tr - lo) / span, 0, 1), np.clip((te - lo) / span, 0, 1)
    c = tr.shape[2]
    if segments > 1:
        part = np.arange(steps) * segments // steps          # segment of each step

        def spread(a):
            out = np.zeros(a.shape[:2] + (segments * c,))
            for k in range(segments):
                out[:, part == k, k * c:(k + 1) * c] = a[:, part == k]
            return out
        tr, te = spread(tr), spread(te)
        info += f", {segments} time segments on their own rows"
    tr = np.concatenate([tr, np.ones(tr.shape[:2] + (1,))], axis=2)
    te = np.concatenate([te, np.ones(te.shape[:2] + (1,))], axis=2)
    return tr, te, f"{c} coefficients per frame{info}, {steps} frames, scaled to [0, 1], plus a bias row"


def _take(x, n):
    return x[:n] if isinstance(x, np.ndarray) else list(x)[:n]


def _baseline_features(kind, ftr, fte, xtr, xte):
    """What the float baseline sees: the features for tables; for streams, the
    same spike-count summary the chip integrates (rate per row) plus the frame
    means, so the comparison is on the same information."""
    if kind == "table":
        return ftr, fte
    return xtr.mean(axis=1), xte.mean(axis=1)
