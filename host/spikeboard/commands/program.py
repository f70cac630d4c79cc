"""spikeboard program: write-verify a weight file onto the array."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import cards
from ..chip import ChipSpec, compile_chip, open_chip
from ..errors import ConfigError
from ._files import first_bad, read_npy

LIMITS = {"layer": (0, 255), "tolerance": (0, 65535), "max_pulses": (1, 255)}


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


def file_targets(w: np.ndarray, params, layer: int, path) -> np.ndarray:
    """A weight file's array -> conductance targets of the whole array, checked:
    integer codes (one per cell) or float weights; errors name the file and element."""
    cells = params.rows * params.cols * params.layers
    if w.dtype.kind == "b":
        raise ConfigError("dtype bool: need conductance codes (unsigned integers) or float weights in [-1, 1]",
                          file=path)
    if w.dtype.kind in "iu":
        t = w.ravel()
        if t.size != cells:
            raise ConfigError(f"{t.size} conductance codes (shape {w.shape}), the array has {cells} cells "
                              f"({params.layers}x{params.rows}x{params.cols})", file=path)
        bad = (w < 0) | (w > 65535)
        if bad.any():
            raise ConfigError(f"code {first_bad(bad)} = {w[tuple(np.argwhere(bad)[0])]}: conductance codes "
                              "must be within 0..65535", file=path)
        return t.astype(np.uint16)
    return weights_to_targets(w.astype(float), params, layer, path)


def weights_to_targets(w: np.ndarray, params, layer: int, path="weights") -> np.ndarray:
    """Float weights (rows, neurons) in [-1, 1] -> conductance targets of the whole array."""
    from .._hal import lib

    if not 0 <= layer < params.layers:
        raise ConfigError(f"the array has layers 0..{params.layers - 1}", field=f"--layer {layer}")
    nn = lib.sb_params_neurons(params, layer)
    if w.ndim != 2 or w.shape[0] > params.rows or w.shape[1] > nn:
        raise ConfigError(f"float weights must be (rows <= {params.rows}, neurons <= {nn}) for layer {layer}, "
                          f"got {w.shape}", file=path)
    bad = ~np.isfinite(w) | (np.abs(np.nan_to_num(w, nan=0.0)) > 1.0)
    if bad.any():
        raise ConfigError(f"weight {first_bad(bad)} = {float(w[tuple(np.argwhere(bad)[0])]):g}: float weights must be "
                          "finite and within [-1, 1]", file=path)
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
    w = read_npy(path, "weight file")
    spec = ChipSpec.from_args(args)
    # checked against the compiled card before the chip is touched
    t = file_targets(w, compile_chip(spec)[1], args.layer, path)
    b = open_chip(spec).backend
    with b:
        p = b.params
        if t.size != b.cells:
            raise ConfigError(f"{t.size} targets, the connected array has {b.cells} cells", file=path)
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
