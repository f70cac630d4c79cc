"""The one door to a chip: a device card compiled for a geometry and a layout,
a backend opened and configured with it. Every command, session and report
reaches a chip through `open_chip` (or `compile_chip` to check the inputs
before anything is touched), so the same card, seed and layout give the same
chip whatever the path.

The layout is decided here, from the card, the caller's choice and the
outputs the application needs: `card` takes the card's [geometry].differential
flag, unless its last layer would hold fewer neurons than the app has classes
(then single-ended, and the layout says why); `differential` puts every weight
on a column pair (G+ - G-, cols/2 neurons a layer) and `single-ended` on one
column against the reference conductance (cols neurons).
The programme asks for >= 32 neurons with a >= 32x32 array (or >= 16 with
16x16x3): `Layout.meets_neuron_target` says whether a layout does.

A layer larger than one array (`tiled = "ROWSxCOLS"`, or "card" for the
card's [geometry].tiled) is the card compiled for one tile of its single-layer
preset, laid over a grid of tiles: the backend is configured with that logical
shape (the model backend runs it; a board refuses it)."""
from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any

from . import cards
from .backends import Backend, open_backend
from .errors import ConfigError

LAYOUTS = ("card", "differential", "single-ended")


def neuron_target(rows: int, cols: int, layers: int) -> int:
    """The programme's neuron count for an array: 32 with a >= 32x32 array, else 16 (16x16x3)."""
    return 32 if rows >= 32 and cols >= 32 else 16


@dataclass(frozen=True)
class Layout:
    """How the weights sit on the array: what every command and report states."""

    geometry: str                    # card preset: "32x32", "16x16x3"
    differential: tuple[bool, ...]   # per layer: column pairs (True) or single-ended (False)
    neurons: int                     # post-neurons of the last layer (the outputs)
    total_neurons: int               # post-neurons of every layer
    rows: int                        # input rows of the first layer
    shape: tuple[int, int] | None = None   # a tiled logical layer (rows, cols); None: the array itself
    grid: tuple[int, int] = (1, 1)         # tiles of the preset under it
    note: str = ""                         # why the layout differs from the card's, if it does

    @property
    def neuron_target(self) -> int:
        r, c, layers = cards.GEOMETRIES[self.geometry]
        return neuron_target(r, c, layers)

    @property
    def meets_neuron_target(self) -> bool:
        return self.total_neurons >= self.neuron_target

    def describe(self) -> str:
        kinds = {"differential" if d else "single-ended" for d in self.differential}
        kind = kinds.pop() if len(kinds) == 1 else "/".join("diff" if d else "single" for d in self.differential)
        note = "" if self.meets_neuron_target else \
            f"; FAILS the programme's >= {self.neuron_target} neurons row"
        where = self.geometry if self.shape is None else \
            f"{self.shape[0]}x{self.shape[1]} on {self.grid[0]}x{self.grid[1]} tiles of {self.geometry}"
        why = f" ({self.note})" if self.note else ""
        return f"{where} {kind}{why}, {self.neurons} output neurons ({self.total_neurons} in all){note}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "differential": list(self.differential),
                "shape": None if self.shape is None else list(self.shape), "grid": list(self.grid),
                "meets_neuron_target": self.meets_neuron_target, "text": self.describe()}


@dataclass(frozen=True)
class ChipSpec:
    """Which chip: backend, card, geometry, layout, seed. A session's config embeds it."""

    backend: str = "model"
    port: str | None = None
    board: str = "netduinoplus2"
    card: str | cards.Card = "spec"  # a built-in name, a TOML path, or a loaded Card
    geometry: str | None = None      # None: the card's preset
    seed: int = 0
    stuck: float = 0.0
    layout: str = "card"             # one of LAYOUTS
    faults: str | None = None        # link faults to inject (emulator, serial)
    tiled: str | None = None         # "ROWSxCOLS" (or "card": its [geometry].tiled): a layer over tiles

    @classmethod
    def from_args(cls, args: Any) -> "ChipSpec":
        return cls(args.backend, args.port, args.board, args.card, args.geometry, args.seed,
                   getattr(args, "stuck", 0.0) or 0.0, getattr(args, "layout", None) or "card",
                   getattr(args, "faults", None), getattr(args, "tiled", None))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_card(self) -> cards.Card:
        return self.card if isinstance(self.card, cards.Card) else cards.load(self.card)


def differential_flags(card: cards.Card, geometry: str, layout: str, outputs: int | None = None,
                       cols: int | None = None) -> tuple[list[bool], str]:
    """The differential flag of each layer for a layout choice, and the note
    saying why it is not the card's. outputs: the classes the last layer must
    hold; cols: the last layer's columns (default the geometry's; a tiled layer's)."""
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown layout {layout!r} (one of {', '.join(LAYOUTS)})", field="--layout")
    _, gcols, layers = cards.GEOMETRIES[geometry]
    if layout != "card":
        return [layout == "differential"] * layers, ""
    diff = bool(card["geometry"]["differential"])
    pairs = (cols or gcols) // 2
    if diff and outputs is not None and outputs > pairs:
        return [False] * layers, f"the card's differential layout holds {pairs} outputs, not {outputs}"
    return [diff] * layers, ""


def layout_of(params: Any, shape: tuple[int, int] | None = None) -> Layout:
    """The layout a compiled parameter block carries, laid over `shape` when tiled."""
    from ._hal import lib

    geometry = next((g for g, s in cards.GEOMETRIES.items() if s == (params.rows, params.cols, params.layers)),
                    f"{params.rows}x{params.cols}x{params.layers}")
    diff = tuple(bool((params.diff_mask >> l) & 1) for l in range(params.layers))
    if shape is not None:
        gr, gc, n = cards.tile_grid(shape[0], shape[1], params.rows, params.cols, diff[0])
        return Layout(geometry, diff, n, n, shape[0], (shape[0], shape[1]), (gr, gc))
    neurons = [int(lib.sb_params_neurons(params, l)) for l in range(params.layers)]
    return Layout(geometry, diff, neurons[-1], sum(neurons), int(params.rows))


def compile_chip(spec: ChipSpec, *, neuron: dict[str, Any] | None = None,
                 outputs: int | None = None) -> tuple[cards.Card, Any, Layout]:
    """Load and compile the card for the spec's geometry and layout (nothing is
    opened): (card, sb_params_t, layout). neuron overrides [neuron] fields;
    outputs: the classes the last layer must hold (the `card` layout follows it)."""
    card = spec.load_card()
    geometry = spec.geometry or card["geometry"]["preset"]
    if geometry not in cards.GEOMETRIES:
        raise ConfigError(f"geometry {geometry!r} not one of {', '.join(cards.GEOMETRIES)}", field="--geometry")
    # the tiled shape's columns set how many outputs a differential layer holds; the shape is
    # checked again below, against the layout's pairs
    shape = tiled_shape(card, geometry, False, spec.tiled)
    diff, note = differential_flags(card, geometry, spec.layout, outputs, shape[1] if shape else None)
    params = cards.compile_card(card, geometry, seed=spec.seed, stuck=spec.stuck, differential=diff, neuron=neuron)
    layout = layout_of(params, tiled_shape(card, geometry, diff[0], spec.tiled))
    return card, params, dataclasses.replace(layout, note=note) if note else layout


def tiled_shape(card: cards.Card, geometry: str, differential: bool, tiled: str | None) -> tuple[int, int] | None:
    """The logical shape of a tiled layer (None: not tiled), checked against the preset's tiles."""
    if tiled is None:
        return None
    g = {**card["geometry"], "preset": geometry, "differential": differential}
    if tiled != "card":
        g["tiled"] = tiled
    elif not g["tiled"]:
        raise ConfigError(f"card {card.name}: no [geometry].tiled layer", field="--tiled card")
    try:
        return cards.tiled_shape(g, card.path or card.name)
    except ConfigError as e:
        raise ConfigError(str(e), field=f"--tiled {tiled}") from None


def configure(backend: Backend, params: Any, layout: Layout) -> int:
    """Configure a backend with a compiled block for its layout (tiled or not)."""
    return backend.configure(params, shape=layout.shape)


@dataclass
class Chip:
    """An open, configured chip: the backend, the card it was configured from,
    the compiled block and its layout. Closing it closes the backend."""

    backend: Backend
    card: cards.Card
    params: Any
    layout: Layout
    spec: ChipSpec

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> "Chip":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def open_backend_for(spec: ChipSpec) -> Backend:
    """The spec's backend, opened but not configured (a session configures it
    itself when it resumes)."""
    return open_backend(spec.backend, port=spec.port, board=spec.board, faults=spec.faults)


def open_chip(spec: ChipSpec, *, neuron: dict[str, Any] | None = None, outputs: int | None = None) -> Chip:
    """Compile the card, open the backend and configure it: the one door."""
    card, params, layout = compile_chip(spec, neuron=neuron, outputs=outputs)
    b = open_backend_for(spec)
    try:
        configure(b, params, layout)
    except Exception:
        b.close()
        raise
    return Chip(b, card, params, layout, spec)
