"""NIR (the Neuromorphic Intermediate Representation, package ``nir``) in and
out of the chip. Weights reach conductances through spikeboard.mapping, as
every other path does.

``load(graph, backend)`` maps a chain ``Input -> (Affine|Linear -> LIF|CubaLIF|IF)
x L -> Output`` onto a chip of L physical layers (32x32: one, 16x16x3: three),
programs it with write-verify and returns a :class:`ChipMapping`; with
``tiles=True`` a one-layer graph larger than one array (more inputs than rows,
more outputs than neurons) goes onto a tiled logical layer of whole tiles, the
backend configured with that shape;
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
from .errors import ConfigError
from .mapping import ChipConfig, configure, decode_codes, layer_weights, program_weights, tile_codes, tiled_shape

__all__ = ["ChipMapping", "NirLayer", "map_graph", "load", "export", "run_nir_file", "DEFAULT_DT"]

DEFAULT_DT = 1e-4   # snnTorch's export time step

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
    chip_weights: tuple[np.ndarray, ...] = field(default=(), repr=False)   # (n_in, n_out) per layer, chip units
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


def _arr(node, name: str, where: str | None = None) -> np.ndarray:
    """A node's parameter as finite float64 numbers (where: the node's name, for the error)."""
    try:
        a = np.asarray(getattr(node, name), dtype=np.float64)
    except (TypeError, ValueError, AttributeError) as e:
        raise ConfigError(f"NIR node {where!r}: {name} is not an array of numbers ({e})") from None
    if not np.all(np.isfinite(a)):
        raise ConfigError(f"NIR node {where!r}: {name} holds NaN or infinity")
    return a


def read_graph(path: str | Path) -> Any:
    """A NIR file read with the nir package; a file that is not one is named."""
    try:
        return _nir().read(str(path))
    except (OSError, KeyError, ValueError, TypeError, AssertionError, AttributeError, IndexError) as e:
        raise ConfigError(f"not a readable NIR file ({type(e).__name__}: {e})", file=path) from None


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
    params = {f: _arr(node, f, name).reshape(-1) for f in _NEURON_FIELDS[kind]}
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
              differential: bool | list[bool] | None = None, dt: float | None = None,
              seed: int | None = None, tiles: bool = False) -> ChipMapping:
    """Map a NIR graph onto a chip: parameter block and target codes (no backend).
    seed: the chip's (default the card's); tiles: a one-layer graph larger than
    one array goes onto a tiled logical layer."""
    if isinstance(graph, (str, Path)):
        graph = read_graph(graph)
    card = card if isinstance(card, cards.Card) else cards.load(card)
    meta = getattr(graph, "metadata", None) or {}
    try:
        dt = float(dt if dt is not None else meta.get("dt", DEFAULT_DT))
    except (TypeError, ValueError):
        raise ConfigError(f"NIR graph: dt {meta.get('dt')!r} is not a number") from None
    if not (math.isfinite(dt) and dt > 0):
        raise ConfigError(f"NIR graph: time step dt = {dt:g} must be a finite number > 0")
    in_name, chain, out_name = _chain(graph)
    pairs = _pairs(chain)
    geometry = _geometry_for(len(pairs), geometry)
    rows, cols, nlayers = cards.GEOMETRIES[geometry]
    tiled = tiles and nlayers == 1
    hint = " (tiles=True, or --tiled on the command line, lays a one-layer graph over tiles)" if nlayers == 1 and not tiles else ""
    prev_out, terms, leaks = None, [], []
    for l, (wn, w, nn_, n) in enumerate(pairs):
        W = _arr(w, "weight", wn)
        if W.ndim != 2:
            raise ConfigError(f"NIR node {wn!r}: weight must be 2-D (out, in), got shape {W.shape}")
        if W.size == 0:
            raise ConfigError(f"NIR node {wn!r}: weight of shape {W.shape} has no {'outputs' if not len(W) else 'inputs'}")
        bias = None
        if type(w).__name__ == "Affine":
            bias = _arr(w, "bias", wn)
            if np.any(bias != 0):
                raise ConfigError(f"NIR node {wn!r}: nonzero bias; the chip has no bias input")
        n_out, n_in = W.shape
        if prev_out is not None and n_in != prev_out:
            raise ConfigError(f"NIR node {wn!r}: takes {n_in} inputs but the layer before has {prev_out} neurons")
        if n_in > rows and not tiled:
            raise ConfigError(f"NIR node {wn!r}: {n_in} inputs do not fit the {rows} rows of a {geometry} chip{hint}")
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
        if W.shape[0] > nn_max and not tiled:
            raise ConfigError(f"NIR node {pairs[l][0]!r}: {W.shape[0]} outputs do not fit the {nn_max} "
                              f"{'differential' if diff[l] else 'single-ended'} neurons of a {geometry} layer{hint}")
        if l + 1 < nlayers and W.shape[0] > rows:
            raise ConfigError(f"NIR node {pairs[l][0]!r}: {W.shape[0]} neurons do not fit the next layer's {rows} rows")
    shape = tiled_shape(rows, cols, terms[0][0].shape[1], terms[0][0].shape[0], diff[0]) if tiled else None
    neuron = {"leak": leaks[0], "reset": "zero", "refractory_steps": 0, "v_min": -30000.0}
    compile_kw: dict[str, Any] = {"differential": diff, "seed": seed, "shape": shape}
    base = ChipConfig.from_card(card, geometry, neuron=neuron, **compile_kw)
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
    cfg = ChipConfig.from_card(card, geometry, neuron={**neuron, "threshold": th_chip}, **compile_kw)
    TH = cfg.threshold      # as quantised in Q16.16
    layers, weights = [], []
    for l, ((wn, w, nn_, n), (W, gain, th, params, bias)) in enumerate(zip(pairs, terms)):
        scale = gain / th * TH
        weights.append((W * scale[:, None]).T)     # chip units, (n_in, n_out)
        layers.append(NirLayer(wn, type(w).__name__, nn_, type(n).__name__, W.shape[1], W.shape[0], scale, params, bias))
    targets = np.concatenate([tile_codes(cfg, l, layer_weights(cfg, l, u)).ravel() for l, u in enumerate(weights)])
    return ChipMapping(cfg, geometry, tuple(layers), dt, in_name, out_name, targets, tuple(weights))


def load(graph, backend=None, *, card: str | cards.Card = "spec", geometry: str | None = None,
         differential: bool | list[bool] | None = None, dt: float | None = None, seed: int | None = None,
         tiles: bool = False, tolerance: int | None = None, max_pulses: int = 255,
         compensate: bool = True) -> ChipMapping:
    """Map a NIR graph (object or file path) onto the chip and, with a backend,
    configure it, program the conductances with write-verify (mapping.program_weights:
    the one tolerance unless given, partner compensation of differential pairs)
    and read them back. Returns the mapping with the read-back codes and the
    per-layer error report (weight_max_error in the graph's own units)."""
    m = map_graph(graph, card=card, geometry=geometry, differential=differential, dt=dt, seed=seed, tiles=tiles)
    if backend is None:
        return m
    configure(backend, m.config)
    rep = program_weights(backend, list(m.chip_weights), config=m.config, tolerance=tolerance,
                          max_pulses=max_pulses, compensate=compensate)
    want_w, have_w = m.weights(m.targets), m.weights(rep.codes)
    report = tuple({**r.as_dict(), "node": nl.weight_name, "tolerance": rep.tolerance,
                    "weight_max_error": float(np.abs(have_w[l] - want_w[l]).max())}
                   for l, (r, nl) in enumerate(zip(rep.layers, m.layers)))
    return ChipMapping(m.config, m.geometry, m.layers, m.dt, m.input_name, m.output_name, m.targets,
                       m.chip_weights, rep.codes, report)


def export(backend, mapping: ChipMapping | None = None, *, dt: float | None = None):
    """What is on the chip, as a NIR graph: the read-back conductances as
    weights and the chip's neurons. With the mapping load() returned, node names,
    kinds and per-neuron parameters are those of the source graph (so a graph
    round-trips); without one, every layer is Linear + LIF (IF without leak) over
    all rows and neurons, in the chip's units (threshold = the card's)."""
    nir = _nir()
    if backend.params is None:
        raise ConfigError(f"{backend.name} backend: not configured, nothing to export")
    cfg = ChipConfig.of_backend(backend)
    codes = backend.read_conductance()
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
                 geometry: str | None = None, dt: float | None = None, seed: int | None = None) -> np.ndarray:
    """Load a NIR file onto the backend's chip and run inputs through it.
    inputs: (T, n_in) or (B, T, n_in) spike levels. seed: the chip's (None: the card's).
    Returns fires (..., T, n_out) uint8."""
    m = load(str(path), backend, card=card, geometry=geometry, dt=dt, seed=seed)
    x = m.pad_input(inputs)
    if x.ndim == 2:
        fires, _ = backend.infer(x)
    elif x.ndim == 3:
        fires, _ = backend.infer_batch(x)
    else:
        raise ConfigError(f"NIR inputs: expected (steps, {m.n_in}) or (batch, steps, {m.n_in}), got {x.shape}")
    return fires[..., : m.n_out]
