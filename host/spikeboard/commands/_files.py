"""Reading the array files named on the command line (.npy), strictly: every
problem is a ConfigError naming the file (and the element when one is bad)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError

_MAGIC = b"\x93NUMPY"


def read_npy(path: str | Path, what: str) -> np.ndarray:
    """One array from a .npy file; `what` names it in messages ("weight file")."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{what} not found", file=p)
    if p.is_dir():
        raise ConfigError(f"is a directory, not a {what} (.npy)", file=p)
    try:
        with open(p, "rb") as f:
            head = f.read(len(_MAGIC))
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}", file=p) from None
    if head[:2] == b"PK":
        raise ConfigError(f"is an .npz archive; the {what} must be one array saved with numpy.save (.npy)", file=p)
    if head != _MAGIC:
        raise ConfigError(f"not a .npy file (no NumPy header); save the {what} with numpy.save", file=p)
    try:
        a = np.load(p, allow_pickle=False)
    except Exception as e:   # truncated data, object arrays, bad header
        raise ConfigError(f"not a readable .npy file ({e})", file=p) from None
    if a.dtype.kind not in "biuf":
        raise ConfigError(f"dtype {a.dtype} not supported: need numbers", file=p)
    if a.size == 0:
        raise ConfigError(f"empty array, shape {a.shape}", file=p)
    return a


def first_bad(mask: np.ndarray) -> str:
    """The index of the first True of mask, as '[i, j]'."""
    idx = np.argwhere(mask)[0]
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def check_spikes(x: np.ndarray, path: str | Path, *, inputs: int, max_level: int = 255, max_steps: int | None = None) -> np.ndarray:
    """Input spikes (steps, inputs) or (batch, steps, inputs): whole numbers in 0..max_level."""
    p = Path(path)
    if x.ndim not in (2, 3):
        raise ConfigError(f"shape {x.shape}: need (steps, inputs) or (batch, steps, inputs)", file=p)
    if x.shape[-1] != inputs:
        raise ConfigError(f"shape {x.shape}: last axis has {x.shape[-1]} inputs, the graph has {inputs}", file=p)
    if max_steps is not None and x.shape[-2] > max_steps:
        raise ConfigError(f"shape {x.shape}: {x.shape[-2]} steps, at most {max_steps}", file=p)
    xf = x.astype(float)
    bad = ~np.isfinite(xf) | (xf != np.round(xf)) | (xf < 0) | (xf > max_level)
    if bad.any():
        at = first_bad(bad)
        raise ConfigError(f"element {at} = {float(xf[tuple(np.argwhere(bad)[0])]):g}: spikes must be whole numbers "
                          f"in 0..{max_level}", file=p)
    return x.astype(np.uint8)
