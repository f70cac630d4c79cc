"""spikeboard program: write-verify a weight file onto the array."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..chipctl import ChipSpec, open_chip
from ..errors import ConfigError


def register(sub, common):
    p = sub.add_parser("program", parents=[common["chip"], common["out"]],
                       help="write-verify a weight file onto the array",
                       description="Program conductances with write-verify. The file (.npy) holds either "
                                   "conductance codes (uint16, one per cell or shaped layers x rows x cols) "
                                   "or float weights in [-1, 1] shaped (rows, neurons) for one layer, mapped "
                                   "to differential pairs (G+ - G-) or to G - G_ref on a single-ended layer.")
    p.add_argument("weights", help=".npy file")
    p.add_argument("--layer", type=int, default=0, help="layer for float weights")
    p.add_argument("--tolerance", type=int, default=None, help="accepted |G - target| in codes (default 1 %% of window)")
    p.add_argument("--max-pulses", type=int, default=255, help="most pulses per cell (1..255)")
    return p


def weights_to_targets(w: np.ndarray, params, layer: int) -> np.ndarray:
    """Float weights (rows, neurons) in [-1, 1] -> conductance targets of the whole array."""
    from .._hal import lib

    nn = lib.sb_params_neurons(params, layer)
    if w.ndim != 2 or w.shape[0] > params.rows or w.shape[1] > nn:
        raise ConfigError(f"float weights must be (rows <= {params.rows}, neurons <= {nn}) for layer {layer}, "
                          f"got {w.shape}")
    if not np.all(np.isfinite(w)) or np.abs(w).max() > 1.0:
        raise ConfigError("float weights must be finite and within [-1, 1]")
    g = np.full((params.layers, params.rows, params.cols), params.g_min, dtype=np.int64)
    span = params.g_max - params.g_min
    if (params.diff_mask >> layer) & 1:
        g[layer, :w.shape[0], 0:2 * w.shape[1]:2] = params.g_min + np.round(np.clip(w, 0, 1) * span)
        g[layer, :w.shape[0], 1:2 * w.shape[1]:2] = params.g_min + np.round(np.clip(-w, 0, 1) * span)
    else:
        ref = params.g_ref
        g[layer, :w.shape[0], :w.shape[1]] = np.clip(ref + np.round(w * (params.g_max - ref)), params.g_min, params.g_max)
    return g.ravel().astype(np.uint16)


def default_tolerance(p) -> int:
    """1 % of the window, but never below 0.6 of the largest single pulse step
    (a target between two levels cannot be hit closer than half a step)."""
    span = p.g_max - p.g_min
    step = max(max(p.step_p), max(p.step_d)) * span / 65536
    return max(1, int(span // 100), int(0.6 * step + 1))


def run(args):
    path = Path(args.weights)
    if not path.exists():
        raise ConfigError(f"{path}: weight file not found")
    try:
        w = np.load(path, allow_pickle=False)
    except Exception as e:
        raise ConfigError(f"{path}: not a readable .npy file ({e})") from None
    b, card = open_chip(ChipSpec.from_args(args))
    with b:
        p = b.params
        if np.issubdtype(w.dtype, np.integer):
            t = w.ravel()
            if t.size != b.cells:
                raise ConfigError(f"{path}: {t.size} conductance codes, the array has {b.cells} cells")
            if t.min() < 0 or t.max() > 65535:
                raise ConfigError(f"{path}: conductance codes must be within 0..65535")
            t = t.astype(np.uint16)
        else:
            t = weights_to_targets(w.astype(float), p, args.layer)
        tol = args.tolerance if args.tolerance is not None else default_tolerance(p)
        r = b.program(t, tolerance=tol, max_pulses=args.max_pulses)
        g = b.read_conductance()
        err = g.astype(np.int64) - t
        ok = ~r.failed
        rms = float(np.sqrt(np.mean(err[ok] ** 2))) if ok.any() else float("nan")
        res = {"cells": int(b.cells), "failed": int(r.failed.sum()), "pulses": int(r.pulses.sum()),
               "rms_error_codes": rms, "tolerance": tol, "failed_cells": np.flatnonzero(r.failed).tolist()}
    res["text"] = (f"programmed {res['cells']} cells with {res['pulses']} pulses; {res['failed']} failed "
                   f"(tolerance {tol} codes), RMS error {rms:.1f} codes on the rest")
    return res
