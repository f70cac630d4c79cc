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
               steps=32, target=6, why=digits.__doc__.split("Encoder: ")[1].strip())


def user_app(path: str | Path, *, label: str = "label", steps: int = 32, encoder: str = "rate") -> App:
    """A lab's own data file as an application: NPZ with arrays X (samples,
    features) and y, or a CSV with a header row and a label column."""
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
    return App(path.stem, f"user data {path.name}", load, encoder=encoder, steps=steps,
               why="rate coding of the file's features (default for static feature tables)")
