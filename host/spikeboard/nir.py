"""NIR (the Neuromorphic Intermediate Representation, package ``nir``) in and
out of the chip, and the torch-free weight -> conductance mapping that
spikeboard.torch shares.

``load(graph, backend)`` maps a chain ``Input -> (Affine|Linear -> LIF|CubaLIF|IF)
x L -> Output`` onto a chip of L physical layers (32x32: one, 16x16x3: three),
programs it with write-verify and returns a :class:`ChipMapping`;
``export(backend, mapping)`` reads the conductances back and writes what is on
the chip as a NIR graph; ``run_nir_file(path, backend, inputs)`` runs a NIR file.

How a NIR neuron becomes the chip's neuron (time step dt, forward Euler, the
discretisation snnTorch/Norse use when they export):

    LIF      v <- v (1 - dt/tau) + (dt/tau) r W x      fire: v >= v_threshold, v <- 0
    IF       v <- v + r W x
    CubaLIF  as LIF with I = w_in W x; needs tau_syn == dt (no synaptic memory:
             the chip has no synaptic current filter)

The chip has one leak and one threshold for every neuron, resets to zero
(reset = "zero"), and has no bias input. Per-neuron thresholds and input
scales are folded into the weights: neuron j's incoming weights become
(dt/tau) r_j W_ij / v_threshold_j * TH, with one chip threshold TH chosen so that
the largest weight uses the usable conductance window. Graphs that need what
the chip lacks (v_leak != 0, v_reset != 0, per-neuron tau, a bias, tau_syn > dt,
branches, other node types) or that do not fit (more inputs than rows, more
outputs than neurons, a layer count no geometry has) raise ConfigError naming
the node. NIR fires on v > threshold, the chip on v >= threshold; they differ only
when v lands exactly on the threshold.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import cards
from ._hal import ffi, lib
from .errors import ConfigError

__all__ = ["ChipConfig", "tile_codes", "decode_codes", "ChipMapping", "NirLayer", "load", "export",
           "run_nir_file", "DEFAULT_DT"]

DEFAULT_DT = 1e-4   # snnTorch's export time step

# ---------------------------------------------------------------------------
# the compiled parameter block, as plain Python values
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ChipConfig:
    """The parts of a compiled parameter block (sb_params_t) the bridge needs."""

    rows: int
    cols: int
    layers: int
    diff: tuple[bool, ...]
    g_min: int
    g_max: int
    g_ref: int
    post_gain: int
    post_shift: int
    post_sat: int
    v_th: int
    v_min: int
    leak_q16: int
    refractory: int
    reset_subtract: bool
    pre_levels: int
    read_noise_q16: int
    seed: int
    stuck_min_q16: int
    stuck_max_q16: int
    stuck_open_q16: int
    d2d_window_q16: int
    levels: int                      # programmable levels across the window (card pulses + 1)
    max_step: int                    # largest single-pulse step, conductance codes
    params: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def from_params(cls, p, levels: int | None = None) -> "ChipConfig":
        if isinstance(p, ChipConfig):
            return p
        w = int(p.g_max) - int(p.g_min)
        steps = [int(s) for s in p.step_p] + [int(s) for s in p.step_d]
        max_step = max(1, (max(steps) * w) >> 16)
        if levels is None:
            levels = max(2, int(round(65536 / max(1, float(np.mean(steps))))) + 1)
        keep = ffi.new("sb_params_t *", p[0])
        return cls(rows=int(p.rows), cols=int(p.cols), layers=int(p.layers),
                   diff=tuple(bool((p.diff_mask >> l) & 1) for l in range(p.layers)),
                   g_min=int(p.g_min), g_max=int(p.g_max), g_ref=int(p.g_ref),
                   post_gain=int(p.post_gain), post_shift=int(p.post_shift), post_sat=int(p.post_sat),
                   v_th=int(p.v_th), v_min=int(p.v_min), leak_q16=int(p.leak_q16),
                   refractory=int(p.refractory), reset_subtract=int(p.reset_mode) == lib.SB_RESET_SUBTRACT,
                   pre_levels=int(p.pre_levels), read_noise_q16=int(p.read_noise_q16), seed=int(p.seed),
                   stuck_min_q16=int(p.stuck_min_q16), stuck_max_q16=int(p.stuck_max_q16),
                   stuck_open_q16=int(p.stuck_open_q16), d2d_window_q16=int(p.d2d_window_q16), levels=int(levels), max_step=int(max_step),
                   params=keep)

    @classmethod
    def from_card(cls, card: str | cards.Card = "spec", geometry: str | None = None, **kw) -> "ChipConfig":
        """Compile a device card (name, path or Card) for a geometry; kw go to
        cards.compile_card (differential=, stuck=, neuron=, seed=)."""
        c = card if isinstance(card, cards.Card) else cards.load(card)
        return cls.from_params(cards.compile_card(c, geometry, **kw), levels=c["synapse"]["pulses"] + 1)

    # -- derived --------------------------------------------------------------
    @property
    def window(self) -> int:
        return self.g_max - self.g_min

    def neurons(self, layer: int) -> int:
        return self.cols // 2 if self.diff[layer] else self.cols

    @property
    def g_hi(self) -> int:
        """Highest code deploy maps to: Gmax less three sigma of the device-to-device
        window variation, so that nearly every cell can reach it."""
        return self.g_min + int(self.window * (1.0 - 3.0 * self.d2d_window_q16 / 65536.0))

    @property
    def codes_per_unit(self) -> float:
        """Conductance codes that make one unit of neuron input (~ the window)."""
        return 65536.0 * (1 << self.post_shift) / self.post_gain

    @property
    def level_step(self) -> float:
        """The card's level quantisation, in conductance codes."""
        return self.window / (self.levels - 1)

    def weight_range(self, layer: int) -> tuple[float, float]:
        k = self.codes_per_unit
        if self.diff[layer]:
            return -(self.g_hi - self.g_min) / k, (self.g_hi - self.g_min) / k
        return (self.g_min - self.g_ref) / k, (self.g_hi - self.g_ref) / k

    @property
    def threshold(self) -> float:
        return self.v_th / 65536.0

    @property
    def tolerance(self) -> int:
        """Write-verify tolerance (codes) that the largest pulse step can always meet."""
        return int(math.ceil(self.max_step * 0.6)) + 1

    @property
    def cells(self) -> int:
        return self.rows * self.cols * self.layers



def tile_codes(config: ChipConfig, layer: int, w_tile: np.ndarray) -> np.ndarray:
    """Conductance codes (rows, cols) uint16 for tile weights (rows, neurons):
    a differential pair holds a weight as G+ - G- with the idle side at Gmin;
    a single-ended cell holds it as G - g_ref. Weights beyond the usable window clip."""
    c = config
    lo, hi = c.weight_range(layer)
    g = np.clip(np.asarray(w_tile, dtype=np.float64), lo, hi) * c.codes_per_unit
    if c.diff[layer]:
        codes = np.stack([c.g_min + np.maximum(g, 0), c.g_min + np.maximum(-g, 0)], axis=-1).reshape(c.rows, c.cols)
    else:
        codes = np.clip(c.g_ref + g, c.g_min, c.g_hi)
    return np.clip(np.rint(codes), 0, 65535).astype(np.uint16)


def decode_codes(config: ChipConfig, layer: int, codes: np.ndarray) -> np.ndarray:
    """Tile weights (rows, neurons) that conductance codes (rows*cols) encode."""
    c = config
    g = np.asarray(codes, dtype=np.float64).reshape(c.rows, c.cols)
    d = g[:, 0::2] - g[:, 1::2] if c.diff[layer] else g - c.g_ref
    return d / c.codes_per_unit


# ---------------------------------------------------------------------------
# NIR
# ---------------------------------------------------------------------------
def _nir():
    try:
        import nir  # the package, not this module: absolute import
    except ImportError:  # pragma: no cover
        raise ConfigError("NIR support needs the nir package: pip install 'spikeboard[nir]'") from None
    return nir


WEIGHT_KINDS = ("Affine", "Linear")
NEURON_KINDS = ("LIF", "CubaLIF", "IF")
_NEURON_FIELDS = {"LIF": ("tau", "r", "v_leak", "v_threshold", "v_reset"),
                  "CubaLIF": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
                  "IF": ("r", "v_threshold", "v_reset")}


@dataclass(frozen=True)
class NirLayer:
    """One (weight node, neuron node) pair on one physical layer."""

    weight_name: str
    weight_kind: str
    neuron_name: str
    neuron_kind: str
    n_in: int
    n_out: int
    scale: np.ndarray = field(repr=False)          # chip weight per NIR weight unit, per output neuron
    neuron: dict[str, np.ndarray] = field(repr=False)   # the neuron node's own parameters
    bias: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ChipMapping:
    """A NIR graph placed on a chip: parameter block, per-layer scales, targets."""

    config: ChipConfig
    geometry: str
    layers: tuple[NirLayer, ...]
    dt: float
    input_name: str
    output_name: str
    targets: np.ndarray = field(repr=False)         # codes for every cell
    codes: np.ndarray | None = field(default=None, repr=False)   # read back after programming
    report: tuple[dict[str, Any], ...] = ()          # programming error per layer

    @property
    def n_in(self) -> int:
        return self.layers[0].n_in

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out

    def weights(self, codes: np.ndarray | None = None) -> list[np.ndarray]:
        """NIR weights (n_out, n_in) per layer that the codes (default: read-back) encode."""
        codes = self.codes if codes is None else codes
        if codes is None:
            codes = self.targets
        c, per = self.config, self.config.rows * self.config.cols
        out = []
        for l, nl in enumerate(self.layers):
            u = decode_codes(c, l, codes[l * per:(l + 1) * per])[: nl.n_in, : nl.n_out].T
            out.append(u / nl.scale[:, None])
        return out

    def pad_input(self, inputs) -> np.ndarray:
        x = np.asarray(inputs)
        if x.shape[-1] != self.n_in:
            raise ConfigError(f"NIR input: expected {self.n_in} channels in the last axis, got shape {x.shape}")
        pad = [(0, 0)] * (x.ndim - 1) + [(0, self.config.rows - self.n_in)]
        return np.pad(x, pad).astype(np.uint8)


def _arr(node, name: str) -> np.ndarray:
    return np.asarray(getattr(node, name), dtype=np.float64).reshape(-1)


def _chain(graph) -> tuple[str, list[tuple[str, Any]], str]:
    nir = _nir()
    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ConfigError(f"NIR graph: need exactly one Input and one Output node, got {len(inputs)} and {len(outputs)}")
    succ: dict[str, list[str]] = {}
    pred: dict[str, list[str]] = {}
    for a, b in graph.edges:
        succ.setdefault(a, []).append(b)
        pred.setdefault(b, []).append(a)
    chain, k, seen = [], inputs[0], set()
    while k != outputs[0]:
        nxt = succ.get(k, [])
        if len(nxt) != 1:
            raise ConfigError(f"NIR graph: node {k!r} has {len(nxt)} successors; the chip runs a feed-forward chain")
        k = nxt[0]
        if k in seen:
            raise ConfigError(f"NIR graph: cycle through node {k!r} (recurrent graphs are not supported)")
        seen.add(k)
        if len(pred.get(k, [])) != 1:
            raise ConfigError(f"NIR graph: node {k!r} has {len(pred.get(k, []))} inputs; the chip runs a feed-forward chain")
        if k != outputs[0]:
            chain.append((k, graph.nodes[k]))
    if len(seen) + 1 != len(graph.nodes):
        extra = sorted(set(graph.nodes) - seen - {inputs[0]})
        raise ConfigError(f"NIR graph: nodes {extra} are off the Input -> Output chain")
    return inputs[0], chain, outputs[0]


def _pairs(chain) -> list[tuple[str, Any, str, Any]]:
    supported = ", ".join(WEIGHT_KINDS + NEURON_KINDS)
    for name, node in chain:
        kind = type(node).__name__
        if kind not in WEIGHT_KINDS + NEURON_KINDS:
            raise ConfigError(f"NIR node {name!r}: {kind} is not supported on the chip (supported: {supported})")
    pairs = []
    for i in range(0, len(chain), 2):
        wn, w = chain[i]
        if type(w).__name__ not in WEIGHT_KINDS:
            raise ConfigError(f"NIR node {wn!r}: expected a weight node (Affine/Linear) before each neuron node, "
                              f"got {type(w).__name__}")
        if i + 1 >= len(chain):
            raise ConfigError(f"NIR node {wn!r}: a weight node must be followed by a neuron node (LIF/CubaLIF/IF)")
        nn_, n = chain[i + 1]
        if type(n).__name__ not in NEURON_KINDS:
            raise ConfigError(f"NIR node {nn_!r}: expected a neuron node (LIF/CubaLIF/IF) after {wn!r}, "
                              f"got {type(n).__name__}")
        pairs.append((wn, w, nn_, n))
    return pairs


def _neuron_terms(name: str, node, dt: float) -> tuple[np.ndarray, np.ndarray, float, dict[str, np.ndarray]]:
    """(input gain a_j, threshold th_j, leak per step, parameters) of a neuron node."""
    kind = type(node).__name__
    params = {f: _arr(node, f) for f in _NEURON_FIELDS[kind]}
    th = params["v_threshold"]
    if np.any(th <= 0):
        raise ConfigError(f"NIR node {name!r}: v_threshold must be > 0")
    if np.any(params["v_reset"] != 0):
        raise ConfigError(f"NIR node {name!r}: v_reset must be 0 (the chip resets to zero)")
    if "v_leak" in params and np.any(params["v_leak"] != 0):
        raise ConfigError(f"NIR node {name!r}: v_leak must be 0 (the chip leaks towards 0)")
    if kind == "IF":
        return params["r"], th, 0.0, params
    tau = params["tau"] if kind == "LIF" else params["tau_mem"]
    if np.any(tau <= 0):
        raise ConfigError(f"NIR node {name!r}: time constants must be > 0")
    if not np.allclose(tau, tau[0], rtol=1e-9, atol=0):
        raise ConfigError(f"NIR node {name!r}: membrane time constants differ between neurons; "
                          "the chip has one leak for every neuron")
    leak = float(dt / tau[0])
    gain = params["r"] * dt / tau
    if kind == "CubaLIF":
        if not np.allclose(params["tau_syn"], dt, rtol=1e-6):
            raise ConfigError(f"NIR node {name!r}: CubaLIF needs tau_syn == dt ({dt:g} s): the chip has no "
                              f"synaptic current filter (got tau_syn {params['tau_syn'].max():g} s)")
        gain = gain * params["w_in"]
    return gain, th, leak, params


def _geometry_for(layers: int, geometry: str | None) -> str:
    if geometry is not None:
        if geometry not in cards.GEOMETRIES:
            raise ConfigError(f"geometry {geometry!r} not one of {', '.join(cards.GEOMETRIES)}")
        if cards.GEOMETRIES[geometry][2] != layers:
            raise ConfigError(f"NIR graph has {layers} layer(s); geometry {geometry} has {cards.GEOMETRIES[geometry][2]}")
        return geometry
    for g, (_, _, nl) in cards.GEOMETRIES.items():
        if nl == layers:
            return g
    have = ", ".join(f"{g} ({nl} layer{'s' * (nl > 1)})" for g, (_, _, nl) in cards.GEOMETRIES.items())
    raise ConfigError(f"NIR graph has {layers} weight+neuron layer(s): does not fit; the chip geometries are {have}")


def map_graph(graph, *, card: str | cards.Card = "spec", geometry: str | None = None,
              differential: bool | list[bool] | None = None, dt: float | None = None) -> ChipMapping:
    """Map a NIR graph onto a chip: parameter block and target codes (no backend)."""
    if isinstance(graph, (str, Path)):
        graph = _nir().read(str(graph))
    card = card if isinstance(card, cards.Card) else cards.load(card)
    meta = getattr(graph, "metadata", None) or {}
    dt = float(dt if dt is not None else meta.get("dt", DEFAULT_DT))
    in_name, chain, out_name = _chain(graph)
    pairs = _pairs(chain)
    geometry = _geometry_for(len(pairs), geometry)
    rows, cols, nlayers = cards.GEOMETRIES[geometry]
    prev_out, terms, leaks = None, [], []
    for l, (wn, w, nn_, n) in enumerate(pairs):
        W = np.asarray(w.weight, dtype=np.float64)
        if W.ndim != 2:
            raise ConfigError(f"NIR node {wn!r}: weight must be 2-D (out, in), got shape {W.shape}")
        bias = None
        if type(w).__name__ == "Affine":
            bias = np.asarray(w.bias, dtype=np.float64)
            if np.any(bias != 0):
                raise ConfigError(f"NIR node {wn!r}: nonzero bias; the chip has no bias input")
        n_out, n_in = W.shape
        if prev_out is not None and n_in != prev_out:
            raise ConfigError(f"NIR node {wn!r}: takes {n_in} inputs but the layer before has {prev_out} neurons")
        if n_in > rows:
            raise ConfigError(f"NIR node {wn!r}: {n_in} inputs do not fit the {rows} rows of a {geometry} chip")
        gain, th, leak, params = _neuron_terms(nn_, n, dt)
        if gain.size != n_out or th.size != n_out:
            raise ConfigError(f"NIR node {nn_!r}: {th.size} neurons after {wn!r}'s {n_out} outputs")
        terms.append((W, gain, th, params, bias))
        leaks.append(leak)
        prev_out = n_out
    if not np.allclose(leaks, leaks[0], rtol=1e-9, atol=0):
        raise ConfigError(f"NIR graph: layers leak differently per step ({', '.join(f'{x:g}' for x in leaks)}); "
                          "the chip has one leak for every neuron")
    if not 0.0 <= leaks[0] <= 0.99:
        raise ConfigError(f"NIR graph: leak per step dt/tau = {leaks[0]:g} out of the chip's range 0..0.99")
    if differential is None:
        differential = [t[0].shape[0] <= cols // 2 for t in terms]
    diff = [differential] * nlayers if isinstance(differential, bool) else list(differential)
    for l, (W, *_rest) in enumerate(terms):
        nn_max = cols // 2 if diff[l] else cols
        if W.shape[0] > nn_max:
            raise ConfigError(f"NIR node {pairs[l][0]!r}: {W.shape[0]} outputs do not fit the {nn_max} "
                              f"{'differential' if diff[l] else 'single-ended'} neurons of a {geometry} layer")
        if l + 1 < nlayers and W.shape[0] > rows:
            raise ConfigError(f"NIR node {pairs[l][0]!r}: {W.shape[0]} neurons do not fit the next layer's {rows} rows")
    neuron = {"leak": leaks[0], "reset": "zero", "refractory_steps": 0, "v_min": -30000.0}
    base = ChipConfig.from_card(card, geometry, differential=diff, neuron=neuron)
    # threshold-normalised weights; one chip threshold TH for all
    norm = [W * (gain / th)[:, None] for W, gain, th, _p, _b in terms]
    th_chip = 30000.0
    for l, c in enumerate(norm):
        lo, hi = base.weight_range(l)
        m = float(np.abs(c).max()) if c.size else 0.0
        if m > 0:
            th_chip = min(th_chip, min(-lo, hi) / m)
    if th_chip < 0.01:
        raise ConfigError(f"NIR graph: weights too large for the conductance window (threshold would be {th_chip:g})")
    cfg = ChipConfig.from_card(card, geometry, differential=diff, neuron={**neuron, "threshold": th_chip})
    TH = cfg.threshold      # as quantised in Q16.16
    layers, targets = [], []
    for l, ((wn, w, nn_, n), (W, gain, th, params, bias)) in enumerate(zip(pairs, terms)):
        scale = gain / th * TH
        tile = np.zeros((rows, cfg.neurons(l)))
        tile[: W.shape[1], : W.shape[0]] = (W * scale[:, None]).T
        targets.append(tile_codes(cfg, l, tile).ravel())
        layers.append(NirLayer(wn, type(w).__name__, nn_, type(n).__name__, W.shape[1], W.shape[0], scale, params, bias))
    return ChipMapping(cfg, geometry, tuple(layers), dt, in_name, out_name, np.concatenate(targets))


def load(graph, backend=None, *, card: str | cards.Card = "spec", geometry: str | None = None,
         differential: bool | list[bool] | None = None, dt: float | None = None,
         tolerance: int | None = None, max_pulses: int = 255) -> ChipMapping:
    """Map a NIR graph (object or file path) onto the chip and, with a backend,
    configure it, program the conductances with write-verify and read them back.
    Returns the mapping with the read-back codes and the per-layer error report."""
    m = map_graph(graph, card=card, geometry=geometry, differential=differential, dt=dt)
    if backend is None:
        return m
    c = m.config
    backend.configure(c.params)
    tol = c.tolerance if tolerance is None else int(tolerance)
    res = backend.program(m.targets, tolerance=tol, max_pulses=max_pulses)
    got = backend.read_conductance(0, c.cells)
    per = c.rows * c.cols
    want_w = m.weights(m.targets)
    have_w = m.weights(got)
    report = []
    for l in range(len(m.layers)):
        sl = slice(l * per, (l + 1) * per)
        err = np.abs(got[sl].astype(np.int64) - m.targets[sl].astype(np.int64))
        report.append({"layer": l, "node": m.layers[l].weight_name, "failed": int(np.count_nonzero(res.failed[sl])),
                       "pulses": int(np.sum(res.pulses[sl], dtype=np.int64)), "code_mae": float(err.mean()),
                       "code_max": int(err.max()), "weight_max_error": float(np.abs(have_w[l] - want_w[l]).max()),
                       "tolerance": tol})
    return ChipMapping(m.config, m.geometry, m.layers, m.dt, m.input_name, m.output_name, m.targets, got, tuple(report))


def export(backend, mapping: ChipMapping | None = None, *, dt: float | None = None):
    """What is on the chip, as a NIR graph: the read-back conductances as
    weights and the chip's neurons. With the mapping load() returned, node names,
    kinds and per-neuron parameters are those of the source graph (so a graph
    round-trips); without one, every layer is Linear + LIF (IF without leak) over
    all rows and neurons, in the chip's units (threshold = the card's)."""
    nir = _nir()
    p = backend.params
    if p is None:
        raise ConfigError(f"{backend.name} backend: not configured, nothing to export")
    cfg = ChipConfig.from_params(p)
    codes = backend.read_conductance(0, cfg.cells)
    per = cfg.rows * cfg.cols
    leak = cfg.leak_q16 / 65536.0
    nodes: dict[str, Any] = {}
    edges = []
    if mapping is not None:
        if (mapping.config.rows, mapping.config.cols, mapping.config.layers) != (cfg.rows, cfg.cols, cfg.layers):
            raise ConfigError("export: the mapping was made for a different geometry than the backend's")
        dt = mapping.dt if dt is None else dt
        nodes[mapping.input_name] = nir.Input(input_type=np.array([mapping.n_in]))
        prev = mapping.input_name
        for l, (nl, W) in enumerate(zip(mapping.layers, mapping.weights(codes))):
            if nl.weight_kind == "Affine":
                wnode = nir.Affine(weight=W, bias=np.zeros(nl.n_out) if nl.bias is None else nl.bias.copy())
            else:
                wnode = nir.Linear(weight=W)
            prm = {k: v.copy() for k, v in nl.neuron.items()}
            if nl.neuron_kind == "LIF" and leak > 0:
                prm["tau"] = np.full(nl.n_out, dt / leak)
            if nl.neuron_kind == "CubaLIF" and leak > 0:
                prm["tau_mem"] = np.full(nl.n_out, dt / leak)
            nnode = getattr(nir, nl.neuron_kind)(**prm)
            nodes[nl.weight_name], nodes[nl.neuron_name] = wnode, nnode
            edges += [(prev, nl.weight_name), (nl.weight_name, nl.neuron_name)]
            prev = nl.neuron_name
        nodes[mapping.output_name] = nir.Output(output_type=np.array([mapping.n_out]))
        edges.append((prev, mapping.output_name))
        meta = {"dt": dt, "source": "spikeboard", "geometry": f"{cfg.rows}x{cfg.cols}x{cfg.layers}"}
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)
    dt = DEFAULT_DT if dt is None else dt
    th = cfg.threshold
    nodes["input"] = nir.Input(input_type=np.array([cfg.rows]))
    prev, n_prev = "input", cfg.rows
    for l in range(cfg.layers):
        W = decode_codes(cfg, l, codes[l * per:(l + 1) * per]).T       # (neurons, rows)
        if l > 0:
            W = W[:, : min(cfg.rows, n_prev)]     # rows beyond the layer before's neurons are never driven
        n_out = W.shape[0]
        ones = np.ones(n_out)
        if leak > 0:
            tau = dt / leak
            nnode = nir.LIF(tau=ones * tau, r=ones * tau / dt, v_leak=0 * ones, v_threshold=ones * th, v_reset=0 * ones)
            kind = "lif"
        else:
            nnode = nir.IF(r=ones, v_threshold=ones * th, v_reset=0 * ones)
            kind = "if"
        nodes[f"linear_{l}"], nodes[f"{kind}_{l}"] = nir.Linear(weight=W), nnode
        edges += [(prev, f"linear_{l}"), (f"linear_{l}", f"{kind}_{l}")]
        prev, n_prev = f"{kind}_{l}", n_out
    nodes["output"] = nir.Output(output_type=np.array([n_prev]))
    edges.append((prev, "output"))
    meta = {"dt": dt, "source": "spikeboard", "reset": "subtract" if cfg.reset_subtract else "zero",
            "refractory_steps": cfg.refractory, "v_min": cfg.v_min / 65536.0}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def run_nir_file(path: str | Path, backend, inputs, *, card: str | cards.Card = "spec",
                 geometry: str | None = None, dt: float | None = None) -> np.ndarray:
    """Load a NIR file onto the backend's chip and run inputs through it.
    inputs: (T, n_in) or (B, T, n_in) spike levels. Returns fires (..., T, n_out) uint8."""
    m = load(str(path), backend, card=card, geometry=geometry, dt=dt)
    x = m.pad_input(inputs)
    if x.ndim == 2:
        fires, _ = backend.infer(x)
    elif x.ndim == 3:
        fires, _ = backend.infer_batch(x)
    else:
        raise ConfigError(f"NIR inputs: expected (steps, {m.n_in}) or (batch, steps, {m.n_in}), got {x.shape}")
    return fires[..., : m.n_out]
