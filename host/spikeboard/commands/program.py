"""spikeboard program: write-verify a weight file onto the array, through
spikeboard.mapping (the one mapping and tolerance that NIR, torch and the
ex-situ apps use)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..chip import ChipSpec, compile_chip, open_chip
from ..errors import ConfigError
from ..mapping import ChipConfig, ProgramReport, layer_weights, program_codes, program_weights
from ._files import first_bad, read_npy
from ._options import Subparsers, add_command
from ._result import Record

LIMITS = {"layer": (0, 255), "tolerance": (0, 65535), "max_pulses": (1, 255)}


@dataclass(frozen=True)
class ProgramResult(Record):
    cells: int                      # cells of the array
    failed: int
    pulses: int
    rms_error_codes: float          # RMS |G - target| of the cells that did not fail
    tolerance: int
    failed_cells: list[int]
    layers: list[dict[str, Any]]    # mapping.LayerReport per programmed layer
    layout: dict[str, Any]          # chip.Layout.as_dict()
    text: str


def register(sub: Subparsers) -> argparse.ArgumentParser:
    p = add_command(sub, "program", help="write-verify a weight file onto the array",
                    description="Program conductances with write-verify. The file (.npy) holds either "
                                "conductance codes (unsigned integers, one per cell or shaped layers x rows x "
                                "cols) or float weights in [-1, 1] shaped (rows, neurons) for one layer. "
                                "A float weight w is the chip weight w x (the largest weight the layer "
                                "holds): 1 is G+ at the top of the usable window (Gmax less three sigma of "
                                "the window spread) with G- at Gmin on a differential pair, G - G_ref as "
                                "far above the reference on a single-ended layer; -1 the mirror image "
                                "(clipped at Gmin). A chip weight is neuron input per spike, in units of "
                                "the card's [neuron] threshold. Cells the file leaves out hold weight 0.")
    p.add_argument("weights", help=".npy file")
    p.add_argument("--layer", type=int, default=0, help="layer for float weights")
    p.add_argument("--tolerance", type=int, default=None,
                   help="accepted |G - target| in codes (default: 0.6 of the card's largest pulse step + 1, "
                        "the one write-verify tolerance)")
    p.add_argument("--max-pulses", type=int, default=255, help="most pulses per cell (1..255)")
    return p


def file_weights(w: np.ndarray, config: ChipConfig, layer: int, path: Any) -> np.ndarray:
    """A weight file's array, checked: integer codes of every cell (uint16,
    flat), or float weights in [-1, 1] converted to chip units (rows, neurons).
    Errors name the file and element."""
    c = config
    if w.dtype.kind == "b":
        raise ConfigError("dtype bool: need conductance codes (unsigned integers) or float weights in [-1, 1]",
                          file=path)
    if w.dtype.kind in "iu":
        if w.size != c.cells:
            raise ConfigError(f"{w.size} conductance codes (shape {w.shape}), the array has {c.cells} cells "
                              f"({c.layers}x{c.rows}x{c.cols})", file=path)
        bad = (w < 0) | (w > 65535)
        if bad.any():
            raise ConfigError(f"code {first_bad(bad)} = {w[tuple(np.argwhere(bad)[0])]}: conductance codes "
                              "must be within 0..65535", file=path)
        return w.ravel().astype(np.uint16)
    if not 0 <= layer < c.layers:
        raise ConfigError(f"the array has layers 0..{c.layers - 1}", field=f"--layer {layer}")
    w = w.astype(float)
    if w.ndim != 2 or w.shape[0] > c.rows or w.shape[1] > c.neurons(layer):
        raise ConfigError(f"float weights must be (rows <= {c.rows}, neurons <= {c.neurons(layer)}) for layer "
                          f"{layer}, got {w.shape}", file=path)
    bad = ~np.isfinite(w) | (np.abs(np.nan_to_num(w, nan=0.0)) > 1.0)
    if bad.any():
        raise ConfigError(f"weight {first_bad(bad)} = {float(w[tuple(np.argwhere(bad)[0])]):g}: float weights must be "
                          "finite and within [-1, 1]", file=path)
    chip = w * c.weight_max(layer)        # [-1, 1] -> chip units
    layer_weights(c, layer, chip)         # the mapping's own checks, before the chip is touched
    return chip


def run(args: argparse.Namespace) -> ProgramResult:
    path = Path(args.weights)
    w = read_npy(path, "weight file")
    spec = ChipSpec.from_args(args)
    # checked against the compiled card before the chip is touched
    weights = file_weights(w, ChipConfig.from_params(compile_chip(spec)[1]), args.layer, path)
    with open_chip(spec) as chip:
        kw: dict[str, Any] = {"tolerance": args.tolerance, "max_pulses": args.max_pulses}
        if weights.dtype == np.uint16:
            rep: ProgramReport = program_codes(chip.backend, weights, **kw)
        else:
            rep = program_weights(chip.backend, weights, layer=args.layer, **kw)
        cells = chip.backend.cells
    err = rep.codes.astype(np.int64) - rep.targets
    ok = np.ones(err.size, bool)
    ok[rep.failed_cells - rep.first] = False
    rms = float(np.sqrt(np.mean(err[ok] ** 2))) if ok.any() else float("nan")
    return ProgramResult(int(cells), rep.failed, rep.pulses, rms, rep.tolerance, rep.failed_cells.tolist(),
                         [r.as_dict() for r in rep.layers], chip.layout.as_dict(),
                         f"programmed {len(err)} of {cells} cells ({chip.layout.describe()}) with {rep.pulses} "
                         f"pulses; {rep.failed} failed (tolerance {rep.tolerance} codes), RMS error {rms:.1f} "
                         f"codes on the rest")
