"""PyTorch bridge: train in PyTorch, run on the chip.

Three pieces (PyTorch is the optional ``torch`` extra):

* :class:`ArrayLayer` and :class:`LIF` are ``nn.Module`` s that simulate one
  physical layer of the chip. In training mode they are differentiable: float
  weights are mapped to conductance codes (differential pairs or single-ended
  around ``g_ref``), quantised to the card's levels with a straight-through
  estimator, stuck cells are forced to their stuck value, read noise is added,
  and the neuron's firing uses a surrogate gradient. In evaluation mode they
  compute in int64 exactly what hal/src/chip.c computes (column currents,
  post interface, leak, refractory, fire, reset, and the read noise from the
  chip's counter-based generator), so the output equals the model backend bit
  for bit on the same conductances and inputs.
* :func:`deploy` maps a :class:`ChipNet` onto the chip through
  spikeboard.mapping (the one weights -> codes mapping, write-verify with the
  one tolerance, partner compensation of differential pairs), reads back and
  reports the programming error per layer. The read-back codes are loaded
  into the modules, so evaluation mode then mirrors the chip exactly.
* :class:`HardwareLoop`: hardware-in-the-loop training. Forward on any backend
  (model, emulator, serial), backward through the simulated layers, updates
  re-programmed with write-verify or applied as pulses on the chip.

Units: the chip's, as in spikeboard.mapping: a weight is the neuron input (in
units of the card's threshold scale, the same units as ``[neuron] threshold``)
that one spike at level 1 on its row adds; a full conductance window is worth
about 1.0. A layer's ``weight`` is (out, in); the mapping takes (in, out).

Tiles: a one-layer net larger than one array (``ChipNet.from_card(...,
tiles=True)``, or a :class:`ChipConfig` with ``shape=``) runs on a tiled
logical layer; evaluation mode then computes what hal/src/tile.c computes
(each tile's post interface and read noise, the neuron bank's sum).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence, cast

import numpy as np
import torch
from torch import nn

from . import cards
from ._hal import lib
from .errors import ConfigError
from .mapping import (ChipConfig, LayerReport, ProgramReport, check_backend, decode_codes, layer_weights,
                      program_weights, pulse_counts, tile_codes, tiled_shape)
from .mapping import configure as configure_chip

__all__ = ["ChipConfig", "ArrayLayer", "LIF", "ChipNet", "deploy", "DeployReport", "LayerReport",
           "HardwareLoop", "spike_fn", "count_loss"]

DeployReport = ProgramReport     # what deploy returns: mapping.program_weights' report

_M32 = 0xFFFFFFFF


# ---------------------------------------------------------------------------
# the chip's counter-based random numbers (hal/src/rng.c), vectorised
# ---------------------------------------------------------------------------
def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """(x * c) mod 2^32 for 0 <= x < 2^32, without int64 overflow."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & _M32


def _mix(x: torch.Tensor) -> torch.Tensor:
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def _rng_u32(seed: int, stream: int, index: torch.Tensor, counter: torch.Tensor) -> torch.Tensor:
    h0 = _mix(torch.tensor((seed + 0x9E3779B9 * (stream + 1)) & _M32, dtype=torch.int64))
    h = _mix(h0 ^ index)
    return _mix((h + _mul32(counter & _M32, 0x85EBCA6B)) & _M32)


def _rng_normal_q12(seed: int, stream: int, index: torch.Tensor, counter: torch.Tensor) -> torch.Tensor:
    a = _rng_u32(seed, stream, index, (counter * 2) & _M32)
    b = _rng_u32(seed, stream, index, (counter * 2 + 1) & _M32)
    s = (a & 0xFFFF) + (a >> 16) + (b & 0xFFFF) + (b >> 16)
    return torch.div((s - 131070) * 4096, 37837, rounding_mode="trunc")


# ---------------------------------------------------------------------------
# surrogate spike
# ---------------------------------------------------------------------------
class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, slope: float):
        ctx.save_for_backward(x)
        ctx.slope = slope
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        (x,) = ctx.saved_tensors
        return g / (1.0 + ctx.slope * x.abs()) ** 2, None


def spike_fn(x: torch.Tensor, slope: float = 5.0) -> torch.Tensor:
    """Heaviside(x >= 0) forward, fast-sigmoid derivative backward."""
    return _Spike.apply(x, slope)


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, g):
        return g


# ---------------------------------------------------------------------------
# one physical layer: the array and the post interface
# ---------------------------------------------------------------------------
class ArrayLayer(nn.Module):
    """A logical fully connected layer (in_features -> out_features) placed on
    physical layer ``layer`` of the chip (a rows x cols tile), from row 0 and
    neuron 0. Training mode: float neuron input (B, T, out_features).
    Evaluation mode: the chip's post-interface output, Q16.16 int64, for every
    neuron of the tile (B, T, neurons)."""

    stuck_map: torch.Tensor
    codes: torch.Tensor

    def __init__(self, config: ChipConfig, in_features: int, out_features: int, layer: int = 0, *,
                 read_noise: bool = True, stuck: bool = True, init_scale: float = 0.5, seed: int | None = None):
        super().__init__()
        self.config = c = config
        if not 0 <= layer < c.layers:
            raise ConfigError(f"array layer {layer}: the chip has layers 0..{c.layers - 1}")
        nn_ = c.neurons(layer)
        if in_features > c.rows:
            raise ConfigError(f"layer {layer}: {in_features} inputs do not fit {c.rows} rows")
        if out_features > nn_:
            kind = "differential" if c.diff[layer] else "single-ended"
            raise ConfigError(f"layer {layer}: {out_features} outputs do not fit {nn_} neurons ({kind}, {c.cols} columns)")
        self.layer, self.in_features, self.out_features = layer, in_features, out_features
        self.read_noise, self.sim_stuck = read_noise, stuck
        lo, hi = c.weight_range(layer)
        gen = torch.Generator().manual_seed(c.seed * 131 + layer if seed is None else seed)
        bound = init_scale * min(-lo, hi) * math.sqrt(3.0 / max(1, in_features))
        self.weight = nn.Parameter((torch.rand(out_features, in_features, generator=gen) * 2 - 1) * bound)
        # a stuck-cell map with the card's fractions (hardware-aware training);
        # the real map shows in the read-back codes after deploy
        u = torch.rand(c.rows, c.cols, generator=gen) * 65536
        t1, t2 = c.stuck_min_q16, c.stuck_min_q16 + c.stuck_max_q16
        t3 = t2 + c.stuck_open_q16
        st = torch.zeros(c.rows, c.cols, dtype=torch.int8)
        st[u < t3] = 3
        st[u < t2] = 2
        st[u < t1] = 1
        self.register_buffer("stuck_map", st)
        self.register_buffer("codes", torch.zeros(0, dtype=torch.int64))   # read-back codes (rows, cols), if any
        self.sample_counter = 0   # the chip's per-layer SAMPLE count (read-noise coordinates)

    # -- mapping weights <-> conductance codes ----------------------------------
    def _tile_weight(self, w: torch.Tensor) -> torch.Tensor:
        """(out, in) -> (rows, neurons) weight of the whole tile, zero padded."""
        c = self.config
        t = w.new_zeros(c.rows, c.neurons(self.layer))
        return t.index_put((torch.arange(self.in_features)[:, None], torch.arange(self.out_features)[None, :]), w.t())

    def _codes_float(self, w: torch.Tensor, quantise: bool) -> torch.Tensor:
        """Differentiable conductance codes (rows, cols) for tile weights (rows,
        neurons): mapping.tile_codes' formula on tensors, so gradients flow."""
        c = self.config
        lo, hi = c.weight_range(self.layer)
        g = w.clamp(lo, hi) * c.codes_per_unit
        if c.diff[self.layer]:
            pos, neg = c.g_min + g.clamp(min=0), c.g_min + (-g).clamp(min=0)
            codes = torch.stack([pos, neg], dim=-1).reshape(c.rows, c.cols)
        else:
            codes = (c.g_ref + g).clamp(c.g_min, c.g_hi)
        if quantise:
            q = c.level_step
            codes = c.g_min + _RoundSTE.apply((codes - c.g_min) / q) * q
        return codes

    def chip_weights(self) -> np.ndarray:
        """The weights as the mapping takes them: (in, out) float64, chip units."""
        return self.weight.detach().double().numpy().T

    def target_codes(self) -> np.ndarray:
        """The codes deploy programs (before compensation): (rows, cols) uint16."""
        c, l = self.config, self.layer
        return tile_codes(c, l, layer_weights(c, l, self.chip_weights()))

    def load_codes(self, codes: np.ndarray | torch.Tensor | None, *, sync_weights: bool = False) -> None:
        """Use these conductance codes (rows, cols) in evaluation mode (None: ideal
        codes from the weights). sync_weights sets the float weights to what the
        codes encode (hardware-in-the-loop)."""
        c = self.config
        if codes is None:
            self.codes = torch.zeros(0, dtype=torch.int64)
            return
        t = torch.as_tensor(np.asarray(codes, dtype=np.int64)).reshape(c.rows, c.cols)
        self.codes = t
        if sync_weights:
            with torch.no_grad():
                self.weight.copy_(self.decode(t)[: self.in_features, : self.out_features].t())

    def decode(self, codes: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Tile weights (rows, neurons) that conductance codes encode."""
        return torch.as_tensor(decode_codes(self.config, self.layer, np.asarray(codes))).float()

    def effective_codes(self) -> torch.Tensor:
        """Integer codes used in evaluation mode."""
        if self.codes.numel():
            return self.codes
        return torch.as_tensor(self.target_codes().astype(np.int64))

    # -- forward -----------------------------------------------------------------
    def _fit_input(self, x: torch.Tensor, width: int) -> torch.Tensor:
        if x.shape[-1] > width:
            return x[..., :width]
        if x.shape[-1] < width:
            return nn.functional.pad(x, (0, width - x.shape[-1]))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self._forward_sim(self._fit_input(x, self.in_features).float())
        return self._forward_exact(self._fit_input(x, self.config.rows))

    def _forward_sim(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        codes = self._codes_float(self._tile_weight(self.weight), quantise=True)
        if self.sim_stuck:
            st = self.stuck_map
            wmax = torch.full_like(codes, float(c.g_max))
            codes = torch.where(st == 1, torch.full_like(codes, float(c.g_min)), codes)
            codes = torch.where(st == 2, wmax, codes)
            codes = torch.where(st == 3, torch.zeros_like(codes), codes)
        xr = self._fit_input(x, c.rows)
        acc = xr @ codes                                   # (B, T, cols), codes x level
        if c.diff[self.layer]:
            cur = acc[..., 0::2] - acc[..., 1::2]
        else:
            cur = acc - c.g_ref * xr.sum(-1, keepdim=True)
        if self.read_noise and c.read_noise_q16:
            sigma = c.window * c.read_noise_q16 / 65536.0 * xr.sum(-1, keepdim=True).sqrt()
            cur = cur + sigma * torch.randn_like(cur)
        cur = cur.clamp(-lib.SB_POST_IN_MAX, lib.SB_POST_IN_MAX)
        sat = c.post_sat / 65536.0
        out = (cur / c.codes_per_unit).clamp(-sat, sat)
        return out[..., : self.out_features]

    def _forward_exact(self, x: torch.Tensor) -> torch.Tensor:
        """hal/src/chip.c's post interface, per tile as hal/src/tile.c runs a
        tiled layer (one tile on one array): each tile's column currents, its
        read noise (the tile's seed), sense-amplifier clamp, gain and output
        clamp; the neuron bank adds a grid column's partial inputs and clamps."""
        c = self.config
        x = torch.as_tensor(x).round().to(torch.int64)
        if x.numel() and (x.min() < 0 or x.max() > c.pre_levels):
            raise ConfigError(f"input levels must be 0..{c.pre_levels}")
        g = self.effective_codes().to(torch.int64)
        diff = c.diff[self.layer]
        R, C = c.tile_rows, c.tile_cols
        grid_rows, grid_cols = c.grid
        tn = C // 2 if diff else C
        xb = x.reshape(-1, x.shape[-2], x.shape[-1])
        B, T = xb.shape[0], xb.shape[1]
        counter = self.sample_counter + torch.arange(B * T, dtype=torch.int64).reshape(B, T, 1)
        out = torch.zeros(B, T, c.neurons(self.layer), dtype=torch.int64)
        for i in range(grid_rows):
            xi = xb[..., i * R:(i + 1) * R]
            rowsum = xi.sum(-1, keepdim=True)
            for j in range(grid_cols):
                acc = xi @ g[i * R:(i + 1) * R, j * C:(j + 1) * C]       # (B, T, cols) int64, exact
                cur = acc[..., 0::2] - acc[..., 1::2] if diff else acc - c.g_ref * rowsum
                if c.read_noise_q16:
                    seed = int(lib.sb_tile_seed(c.seed, i * grid_cols + j))
                    index = self.layer * lib.SB_MAX_NEURONS + torch.arange(cur.shape[-1], dtype=torch.int64)
                    normal = _rng_normal_q12(seed, lib.SB_RNG_READ, index.reshape(1, 1, -1), counter)
                    amp = (c.window * c.read_noise_q16 * torch.floor(torch.sqrt(rowsum.double())).to(torch.int64)) >> 16
                    cur = torch.where(rowsum > 0, cur + ((amp * normal) >> 12), cur)
                cur = cur.clamp(-lib.SB_POST_IN_MAX, lib.SB_POST_IN_MAX)
                out[..., j * tn:j * tn + cur.shape[-1]] += ((cur * c.post_gain) >> c.post_shift).clamp(-c.post_sat, c.post_sat)
        self.sample_counter += B * T
        return out.clamp(-c.post_sat, c.post_sat).reshape(*x.shape[:-1], -1)

    def extra_repr(self) -> str:
        kind = "differential" if self.config.diff[self.layer] else "single-ended"
        return f"{self.in_features} -> {self.out_features}, physical layer {self.layer} ({kind})"


# ---------------------------------------------------------------------------
# the chip's neurons
# ---------------------------------------------------------------------------
class LIF(nn.Module):
    """The chip's leaky integrate-and-fire neurons over a sequence.

    Input (B, T, n): in training, float neuron input; in evaluation, the
    Q16.16 int64 post-interface output of :class:`ArrayLayer`. Returns spikes
    (B, T, n) float; the final membranes are kept in ``self.v`` (Q16.16 int64
    in evaluation, float threshold units in training)."""

    def __init__(self, config: ChipConfig, slope: float = 5.0):
        super().__init__()
        self.config = config
        self.slope = slope
        self.v: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward_sim(x.float()) if self.training else self._forward_exact(x)

    def _forward_exact(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        x = torch.as_tensor(x).to(torch.int64)
        squeeze = x.ndim == 2
        if squeeze:
            x = x[None]
        B, T, n = x.shape
        v = torch.zeros(B, n, dtype=torch.int64)
        rf = torch.zeros(B, n, dtype=torch.int64)
        out = torch.zeros(B, T, n, dtype=torch.float32)
        for t in range(T):
            if c.leak_q16:
                v = v - ((v * c.leak_q16) >> 16)
            rest = rf != 0
            y = (v + x[:, t]).clamp(min=c.v_min)
            fire = (y >= c.v_th) & ~rest
            y = torch.where(fire, (y - c.v_th) if c.reset_subtract else torch.zeros_like(y), y)
            v = torch.where(rest, v, y)
            rf = torch.where(rest, rf - 1, torch.where(fire, torch.full_like(rf, c.refractory), rf))
            out[:, t] = fire.float()
        self.v = v[0] if squeeze else v
        return out[0] if squeeze else out

    def _forward_sim(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        B, T, n = x.shape
        th, vmin, leak = c.v_th / 65536.0, c.v_min / 65536.0, c.leak_q16 / 65536.0
        v = x.new_zeros(B, n)
        rf = torch.zeros(B, n, dtype=torch.int64)
        out = []
        for t in range(T):
            v = v - v * leak
            rest = rf != 0
            y = torch.clamp(v + x[:, t], min=vmin)
            s = spike_fn((y - th) / th, self.slope) * (~rest).float()
            y = y - th * s if c.reset_subtract else y * (1.0 - s)
            v = torch.where(rest, v, y)
            fired = s.detach() > 0
            rf = torch.where(rest, rf - 1, torch.where(fired, torch.full_like(rf, c.refractory), rf))
            out.append(s)
        self.v = v
        return torch.stack(out, dim=1)


# ---------------------------------------------------------------------------
# a whole chip
# ---------------------------------------------------------------------------
class ChipNet(nn.Module):
    """A feed-forward spiking network with one (ArrayLayer, LIF) per physical
    layer: sizes = [inputs, hidden..., outputs] with len(sizes) - 1 ==
    config.layers. Input (B, T, inputs) spikes (levels), output (B, T, outputs)."""

    def __init__(self, config: ChipConfig, sizes: Sequence[int], **layer_kw):
        super().__init__()
        if len(sizes) - 1 != config.layers:
            raise ConfigError(f"a {len(sizes) - 1}-layer network on a {config.layers}-layer chip: "
                              f"give {config.layers + 1} sizes (inputs, one per physical layer)")
        for l in range(1, config.layers):
            if sizes[l] > config.rows:
                raise ConfigError(f"layer {l}: {sizes[l]} inputs (layer {l - 1}'s neurons) do not fit {config.rows} rows")
        self.config = config
        self.sizes = tuple(int(s) for s in sizes)
        self.arrays = nn.ModuleList(ArrayLayer(config, sizes[l], sizes[l + 1], l, **layer_kw) for l in range(config.layers))
        self.neurons = nn.ModuleList(LIF(config) for _ in range(config.layers))

    # typed views of the module lists (nn.ModuleList items are plain Modules to a type checker)
    @property
    def _arrays(self) -> list[ArrayLayer]:
        return [cast(ArrayLayer, a) for a in self.arrays]

    @property
    def _lifs(self) -> list[LIF]:
        return [cast(LIF, n) for n in self.neurons]

    @classmethod
    def from_card(cls, sizes: Sequence[int], card: str | cards.Card = "spec", geometry: str | None = None,
                  layer_kw: dict | None = None, *, tiles: bool = False, **card_kw) -> "ChipNet":
        """A net on a card compiled for a geometry (card_kw go to cards.compile_card).
        tiles=True: a one-layer net larger than one array goes onto a tiled
        logical layer of whole tiles (deploy configures the backend with its shape)."""
        cfg = ChipConfig.from_card(card, geometry, **card_kw)
        shape = tiled_shape(cfg.rows, cfg.cols, sizes[0], sizes[-1], cfg.diff[0]) if tiles and cfg.layers == 1 else None
        if shape is not None:
            cfg = ChipConfig.from_params(cfg.params, levels=cfg.levels, shape=shape)
        return cls(cfg, sizes, **(layer_kw or {}))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x
        for a, n in zip(self._arrays, self._lifs):
            s = n(a(s))
        return s[..., : self.sizes[-1]]

    @property
    def v(self) -> torch.Tensor | None:
        """Final membranes of the last layer (after the last forward)."""
        return self._lifs[-1].v

    def pad_input(self, x) -> np.ndarray:
        """(…, T, inputs) -> (…, T, rows) uint8 levels, as the backend takes them."""
        x = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x)
        pad = [(0, 0)] * (x.ndim - 1) + [(0, self.config.rows - x.shape[-1])]
        return np.pad(x, pad).astype(np.uint8)

    def chip_weights(self) -> list[np.ndarray]:
        """Every layer's weights as the mapping takes them, (in, out) chip units."""
        return [a.chip_weights() for a in self._arrays]

    def target_codes(self) -> np.ndarray:
        """Codes for every cell of the chip, flat index (layer*rows+row)*cols+col."""
        return np.concatenate([a.target_codes().ravel() for a in self._arrays])

    def load_codes(self, codes: np.ndarray | None, *, sync_weights: bool = False) -> None:
        per = self.config.rows * self.config.cols
        for l, a in enumerate(self._arrays):
            a.load_codes(None if codes is None else np.asarray(codes)[l * per:(l + 1) * per], sync_weights=sync_weights)

    def reset_counters(self, value: int = 0) -> None:
        """Align the read-noise sample counters with a freshly configured chip."""
        for a in self._arrays:
            a.sample_counter = value


def count_loss(fires: torch.Tensor, labels: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """Cross-entropy on spike counts over time (the usual rate readout)."""
    counts = fires.sum(1)
    scale = 8.0 / max(1, fires.shape[1]) if scale is None else scale
    return nn.functional.cross_entropy(counts * scale, labels)


# ---------------------------------------------------------------------------
# deployment
# ---------------------------------------------------------------------------
def deploy(model: ChipNet, backend, *, configure: bool = True, tolerance: int | None = None,
           max_pulses: int = 255, compensate: bool = True) -> DeployReport:
    """Map the model's weights to conductances and program them with
    write-verify (mapping.program_weights: the one tolerance unless given,
    partner compensation of differential pairs); read back, report the error per
    layer, and load the read-back codes into the model so that its evaluation
    mode mirrors the chip. configure=True first sends the model's
    parameter block (resets the chip; a tiled config sends its shape too)."""
    c = model.config
    if configure:
        configure_chip(backend, c)
        model.reset_counters(0)
    rep = program_weights(backend, model.chip_weights(), config=c, tolerance=tolerance, max_pulses=max_pulses,
                          compensate=compensate)
    model.load_codes(rep.codes)
    return rep


# ---------------------------------------------------------------------------
# hardware in the loop
# ---------------------------------------------------------------------------
class HardwareLoop:
    """Train the chip from a PyTorch loop. Each step runs the batch on the
    backend, uses the chip's output spikes in the loss (the simulated network
    supplies the gradient, straight through), steps the optimizer and writes the
    change to the chip:

    * mode="reprogram": the new float weights are re-programmed with write-verify;
    * mode="pulse": each cell gets the number of potentiation/depression pulses
      nearest to its weight change (at most max_pulses), as on-chip training does.

    After each update the weights are set to what the chip's read-back encodes,
    so the float model tracks the array."""

    def __init__(self, model: ChipNet, backend, optimizer: torch.optim.Optimizer, *,
                 loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = count_loss,
                 mode: str = "reprogram", max_pulses: int = 4, deploy_first: bool = True):
        if mode not in ("reprogram", "pulse"):
            raise ConfigError(f"hardware-in-the-loop mode {mode!r}: one of reprogram, pulse")
        self.model, self.backend, self.opt, self.loss_fn = model, backend, optimizer, loss_fn
        self.mode, self.max_pulses = mode, max_pulses
        if deploy_first:
            deploy(model, backend)
        else:
            check_backend(model.config, backend)
        self.sync()

    def sync(self) -> np.ndarray:
        g = self.backend.read_conductance()
        self.model.load_codes(g, sync_weights=True)
        return g

    def forward_hw(self, x: torch.Tensor) -> torch.Tensor:
        """Output spikes of the chip, (B, T, outputs) float."""
        fires, _ = self.backend.infer_batch(self.model.pad_input(x))
        return torch.as_tensor(fires[..., : self.model.sizes[-1]], dtype=torch.float32)

    def step(self, x: torch.Tensor, labels: torch.Tensor) -> float:
        m = self.model
        m.train()
        hw = self.forward_hw(x)
        sim = m(x.float())
        out = sim + (hw - sim).detach()          # chip values, simulated gradient
        loss = self.loss_fn(out, labels)
        self.opt.zero_grad()
        loss.backward()
        before = [a.weight.detach().clone() for a in m._arrays]
        self.opt.step()
        if self.mode == "reprogram":
            program_weights(self.backend, m.chip_weights(), config=m.config)
        else:
            self._pulse_update(before)
        self.sync()
        return float(loss.detach())

    def _pulse_update(self, before: list[torch.Tensor]) -> None:
        """Each cell's pulses for its weight change (mapping.pulse_counts), applied one cell at a time."""
        m, c = self.model, self.model.config
        g = self.backend.read_conductance().astype(np.int64)
        per = c.rows * c.cols
        for l, a in enumerate(m._arrays):
            dw = layer_weights(c, l, (a.weight.detach() - before[l]).double().numpy().T)
            n = pulse_counts(c, l, g[l * per:(l + 1) * per], dw, self.max_pulses).ravel()
            for cell in np.flatnonzero(n):
                self.backend.pulse(int(l * per + cell), 1, int(np.sign(n[cell])), int(abs(n[cell])))
