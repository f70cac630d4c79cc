"""Device cards: TOML descriptions of one chip, validated on load and
compiled into the fixed-point parameter block (sb_params_t) the firmware
receives at configure time, so one firmware serves every chip.

Conductances on the chip are 16-bit codes spanning [0, g_full_us]. A branch
(potentiation or depression) is either the exponential model
G(p) = Gmin + B (1 - exp(-p/A)) given by A (in pulses) or by NeuroSim's
nonlinearity label NL, or a measured table of G per pulse; either way the host
compiles it to a step table indexed by the position in the window."""
from __future__ import annotations

import hashlib
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import ConfigError

CARD_DIR = Path(__file__).resolve().parent / "cards"
GEOMETRIES = {"32x32": (32, 32, 1), "16x16x3": (16, 16, 3)}

# section -> key -> (type, min, max, default); default None means required
_INF = float("inf")
SCHEMA: dict[str, dict[str, tuple[type, float, float, Any]]] = {
    "card": {
        "name": (str, 0, 0, None),
        "description": (str, 0, 0, ""),
        "source": (str, 0, 0, ""),
    },
    "geometry": {
        "preset": (str, 0, 0, "32x32"),
        "tiled": (str, 0, 0, ""),   # "ROWSxCOLS": a larger layer on a grid of preset tiles (docs/tiles.md)
        "differential": (bool, 0, 0, True),
        "seed": (int, 0, 2**32 - 1, 1),
    },
    "synapse": {
        "g_full_us": (float, 1e-6, 1e6, None),
        "g_min_us": (float, 0.0, 1e6, None),
        "g_max_us": (float, 0.0, 1e6, None),
        "g_ref_us": (float, -1.0, 1e6, -1.0),   # -1: the middle of the window
        "model": (str, 0, 0, "exponential"),
        "pulses": (int, 2, 65535, 64),
        "nl_p": (float, 0.0, 9.0, None),
        "nl_d": (float, -9.0, 0.0, None),
        "table_p": (list, 0, 0, []),
        "table_d": (list, 0, 0, []),
        "d2d_step": (float, 0.0, 1.0, 0.0),
        "d2d_window": (float, 0.0, 1.0, 0.0),
        "c2c": (float, 0.0, 0.5, 0.0),
        "read_noise": (float, 0.0, 0.5, 0.0),
        "retention_tau_s": (float, 0.0, 4.2e9, 0.0),
        "relax_frac": (float, 0.0, 1.0, 0.5),
        "endurance_pulses": (float, 0.0, 4.2e9, 0.0),
        "endurance_mode": (str, 0, 0, "shrink"),
        "endurance_shrink": (float, 0.0, 0.99, 0.5),
        "stuck_min": (float, 0.0, 1.0, 0.0),
        "stuck_max": (float, 0.0, 1.0, 0.0),
        "stuck_open": (float, 0.0, 1.0, 0.0),
        "disturb": (float, 0.0, 0.5, 0.0),
    },
    "neuron": {
        "threshold": (float, 0.01, 30000.0, 4.0),
        "v_min": (float, -30000.0, 0.0, -4.0),
        "leak": (float, 0.0, 0.99, 0.0),
        "reset": (str, 0, 0, "subtract"),
        "refractory_steps": (int, 0, 255, 0),
        "voltage_v": (float, 0.0, 10.0, 1.0),
    },
    "interface": {
        "saturation": (float, 0.01, 30000.0, 32.0),
        "pre_levels": (int, 1, 15, 1),
    },
    # per event, fJ, 0..4e6, every one required (a card states its energies)
    "energy": {**dict.fromkeys(("fire_fj", "update_fj", "read_fj", "pot_fj", "dep_fj", "pre_fj", "post_fj"),
                               (float, 0.0, 4e6, None)),
               "mcu_pj_per_instruction": (float, 0.0, 1e6, 0.0)},
    # durations, ns, up to 4e6 (a time step at least 1 ps): name -> default
    "timing": {k: (float, 0.001 if k == "step_ns" else 0.0, 4e6, default) for k, default in
               {"step_ns": 1000.0, "read_ns": 100.0, "prog_ns": 100.0, "pre_ns": 10.0, "post_ns": 10.0,
                "refractory_ns": 100.0}.items()},
}
_CHOICES = {
    ("synapse", "model"): ("exponential", "table"),
    ("synapse", "endurance_mode"): ("shrink", "stick"),
    ("neuron", "reset"): ("zero", "subtract"),
    ("geometry", "preset"): tuple(GEOMETRIES),
}


def nl_of_r(r: float) -> float:
    """NeuroSim's nonlinearity label of an exponential branch with P/A = r."""
    if r < 1e-9:
        return 0.0
    # g(x) = (1 - e^{-rx}) / (1 - e^{-r}); max of g(x) - x where g'(x) = 1
    x = math.log(r / (1.0 - math.exp(-r))) / r
    g = (1.0 - math.exp(-r * x)) / (1.0 - math.exp(-r))
    return (g - x) / (0.07 * math.sqrt(2.0))


def r_of_nl(nl: float) -> float:
    """Inverse of nl_of_r by bisection: P/A for a nonlinearity label |nl|."""
    nl = abs(nl)
    if nl < 1e-9:
        return 0.0
    lo, hi = 1e-9, 200.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if nl_of_r(mid) < nl:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def exp_branch(pulses: int, nl: float) -> np.ndarray:
    """Normalised exponential branch G(p)/window, p = 0..pulses, 0 -> 1."""
    p = np.arange(pulses + 1, dtype=float)
    r = r_of_nl(nl)
    if r == 0.0:
        return p / pulses
    return (1.0 - np.exp(-r * p / pulses)) / (1.0 - np.exp(-r))


def step_table(curve: np.ndarray, bins: int) -> np.ndarray:
    """Step per pulse (fraction of window) as a function of the position in
    the window, from a monotone rising normalised curve G(p) in [0, 1]."""
    curve = np.asarray(curve, dtype=float)
    steps = np.diff(curve)
    if np.any(steps <= 0):
        raise ConfigError("branch curve must rise strictly with pulse number")
    centres = (np.arange(bins) + 0.5) / bins
    # position of each pulse interval's start; the step at x is the step of
    # the interval containing x (linear interpolation between intervals)
    mids = curve[:-1] + steps / 2
    return np.interp(centres, mids, steps)


@dataclass(frozen=True)
class Card:
    """A validated device card."""

    name: str
    path: Path | None
    data: dict[str, dict[str, Any]] = field(repr=False)
    text: str = field(repr=False, default="")

    def __getitem__(self, key: str) -> dict[str, Any]:
        return self.data[key]

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    def branch_curves(self) -> tuple[np.ndarray, np.ndarray]:
        """Normalised potentiation curve (0 -> 1) and depression curve (1 -> 0)."""
        s = self.data["synapse"]
        if s["model"] == "table":
            gp = np.asarray(s["table_p"], float)
            gd = np.asarray(s["table_d"], float)
            lo, hi = s["g_min_us"], s["g_max_us"]
            return (gp - lo) / (hi - lo), (gd - lo) / (hi - lo)
        up = exp_branch(s["pulses"], s["nl_p"])
        return up, 1.0 - exp_branch(s["pulses"], s["nl_d"])

    def with_overrides(self, **sections: dict[str, Any]) -> "Card":
        data = {k: dict(v) for k, v in self.data.items()}
        for sec, kv in sections.items():
            data.setdefault(sec, {}).update(kv)
        return Card(self.name, self.path, validate(data, self.path or Path(self.name)), self.text + repr(sections))


def _fail(src: Path | str, where: str, msg: str) -> ConfigError:
    return ConfigError(msg, file=src, field=f"[{where}]")


def tile_grid(rows: int, cols: int, tile_rows: int, tile_cols: int, differential: bool) -> tuple[int, int, int]:
    """(grid rows, grid cols, neurons) of a rows x cols layer on tiles of
    tile_rows x tile_cols, within hal's limits (SB_MAX_TILES,
    SB_TILED_MAX_NEURONS); ConfigError naming the problem otherwise."""
    from ._hal import lib

    if rows < 1 or cols < 1:
        raise ConfigError(f"{rows}x{cols}: rows and cols must be >= 1")
    if differential and cols % 2:
        raise ConfigError(f"{cols} columns on differential tiles: need an even count")
    gr, gc = -(-rows // tile_rows), -(-cols // tile_cols)
    if gr * gc > lib.SB_MAX_TILES:
        raise ConfigError(f"{rows}x{cols} needs {gr} x {gc} = {gr * gc} tiles of {tile_rows}x{tile_cols}, "
                          f"at most {lib.SB_MAX_TILES}")
    neurons = cols // 2 if differential else cols
    if neurons > lib.SB_TILED_MAX_NEURONS:
        raise ConfigError(f"{cols} columns give {neurons} neurons, at most {lib.SB_TILED_MAX_NEURONS} neurons")
    return gr, gc, neurons


def tiled_shape(geometry: dict[str, Any], src: Path | str = "card") -> tuple[int, int]:
    """(rows, cols) of [geometry].tiled, checked against the preset's tiles."""
    m = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", geometry["tiled"])
    if not m:
        raise _fail(src, "geometry.tiled", f"{geometry['tiled']!r}: need ROWSxCOLS, e.g. \"785x20\"")
    rows, cols = int(m.group(1)), int(m.group(2))
    R, C, layers = GEOMETRIES[geometry["preset"]]
    if layers != 1:
        raise _fail(src, "geometry.tiled", f"tiles need a single-layer preset, {geometry['preset']} has {layers} layers")
    try:
        tile_grid(rows, cols, R, C, geometry["differential"])
    except ConfigError as e:
        raise _fail(src, "geometry.tiled", str(e)) from None
    return rows, cols


def validate(raw: dict[str, Any], src: Path | str) -> dict[str, dict[str, Any]]:
    """Check types and ranges; fill defaults. Errors name the file and field."""
    if not isinstance(raw, dict):
        raise _fail(src, "-", "card must be a TOML table")
    out: dict[str, dict[str, Any]] = {}
    for sec in raw:
        if sec not in SCHEMA:
            raise _fail(src, sec, f"unknown section (allowed: {', '.join(SCHEMA)})")
    for sec, keys in SCHEMA.items():
        given = raw.get(sec, {})
        if not isinstance(given, dict):
            raise _fail(src, sec, "must be a table")
        for k in given:
            if k not in keys:
                raise _fail(src, f"{sec}.{k}", f"unknown field (allowed: {', '.join(keys)})")
        vals: dict[str, Any] = {}
        for k, (typ, lo, hi, default) in keys.items():
            where = f"{sec}.{k}"
            if k not in given:
                if default is None and not (sec == "synapse" and k in ("nl_p", "nl_d")):
                    raise _fail(src, where, "missing required field")
                vals[k] = default
                continue
            v = given[k]
            if typ is float and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)
            if typ is int and isinstance(v, float) and v.is_integer():
                v = int(v)
            if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
                raise _fail(src, where, f"must be {typ.__name__}, got {type(v).__name__} {v!r}")
            if isinstance(v, (int, float)) and not isinstance(v, bool):     # bool fields have no range
                if isinstance(v, float) and not math.isfinite(v):
                    raise _fail(src, where, f"must be finite, got {v}")
                if not (lo <= v <= hi):
                    raise _fail(src, where, f"{v} out of range [{lo}, {hi}]")
            if (sec, k) in _CHOICES and v not in _CHOICES[(sec, k)]:
                raise _fail(src, where, f"{v!r} not one of {', '.join(_CHOICES[(sec, k)])}")
            vals[k] = v
        out[sec] = vals
    if out["geometry"]["tiled"]:
        tiled_shape(out["geometry"], src)
    s = out["synapse"]
    if not (s["g_min_us"] < s["g_max_us"] <= s["g_full_us"]):
        raise _fail(src, "synapse.g_min_us/g_max_us", "need g_min_us < g_max_us <= g_full_us")
    if s["model"] == "exponential":
        for k in ("nl_p", "nl_d"):
            if s[k] is None:
                raise _fail(src, f"synapse.{k}", "missing required field for model = exponential")
    else:
        for k in ("table_p", "table_d"):
            t = s[k]
            if len(t) < 3:
                raise _fail(src, f"synapse.{k}", f"needs at least 3 numbers (G in uS per pulse), got {len(t)}")
            for j, x in enumerate(t):
                if not isinstance(x, (int, float)) or isinstance(x, bool) or not math.isfinite(x):
                    raise _fail(src, f"synapse.{k}", f"item {j} is {x!r}, need a finite number (G in uS)")
        tp, td = np.asarray(s["table_p"], float), np.asarray(s["table_d"], float)
        if np.any(np.diff(tp) <= 0):
            raise _fail(src, "synapse.table_p", "must rise strictly")
        if np.any(np.diff(td) >= 0):
            raise _fail(src, "synapse.table_d", "must fall strictly")
    if s["g_ref_us"] != -1.0 and not s["g_min_us"] <= s["g_ref_us"] <= s["g_max_us"]:
        raise _fail(src, "synapse.g_ref_us", f"{s['g_ref_us']} outside [g_min_us, g_max_us] = "
                                             f"[{s['g_min_us']}, {s['g_max_us']}] (or -1: the middle)")
    if s["stuck_min"] + s["stuck_max"] + s["stuck_open"] > 1.0:
        raise _fail(src, "synapse.stuck_*", "fractions add up to more than 1")
    return out


def list_cards() -> list[str]:
    return sorted(p.stem for p in CARD_DIR.glob("*.toml"))


def load(name_or_path: str | Path | Card) -> Card:
    """Load a built-in card by name or a card file by path; a Card already
    loaded is returned as it is (so callers holding either need no test)."""
    if isinstance(name_or_path, Card):
        return name_or_path
    p = Path(name_or_path)
    if not p.suffix and not p.exists():
        p = CARD_DIR / f"{name_or_path}.toml"
        if not p.exists():
            raise ConfigError(f"no device card named {name_or_path!r} (built-in: {', '.join(list_cards())})")
    if not p.exists():
        raise ConfigError("device card file not found", file=p)
    if p.is_dir():
        raise ConfigError("is a directory, not a device card file", file=p)
    if not p.is_file():     # a device or a FIFO would never end (or never start) a read
        raise ConfigError("is not a regular file (a device, FIFO or socket), not a device card file", file=p)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"broken TOML: not UTF-8 text (byte {e.start})", file=p) from None
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}", file=p) from None
    try:
        raw = tomllib.loads(text)
    except RecursionError:
        raise ConfigError("broken TOML: nested too deeply to be a device card", file=p) from None
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        src = text.splitlines()[int(m.group(1)) - 1].strip() if m and 0 < int(m.group(1)) <= len(text.splitlines()) else ""
        raise ConfigError(f"broken TOML: {e}" + (f": {src[:60]!r}" if src else ""), file=p) from None
    data = validate(raw, p)
    return Card(data["card"]["name"], p, data, text)


def _q16(x: float) -> int:
    return max(0, min(65535, int(round(x * 65536))))


def compile_card(card: Card, geometry: str | None = None, *, seed: int | None = None,
                 differential: bool | list[bool] | None = None, stuck: float = 0.0,
                 neuron: dict[str, Any] | None = None):
    """Compile a card into an sb_params_t (a cffi struct) for one geometry.

    stuck adds that fraction of stuck cells, half at Gmin and half at Gmax.
    neuron overrides [neuron] fields for one session (threshold, leak, ...)."""
    from ._hal import ffi, lib

    d = card.data
    if neuron:
        card = card.with_overrides(neuron=neuron)
        d = card.data
    geometry = geometry or d["geometry"]["preset"]
    if geometry not in GEOMETRIES:
        raise ConfigError(f"geometry {geometry!r} not one of {', '.join(GEOMETRIES)}")
    rows, cols, layers = GEOMETRIES[geometry]
    s, n, i, e, t = d["synapse"], d["neuron"], d["interface"], d["energy"], d["timing"]
    full = s["g_full_us"]

    def code(us: float) -> int:
        return max(0, min(65535, int(round(us / full * 65535))))

    p = ffi.new("sb_params_t *")
    p.magic = lib.SB_PARAMS_MAGIC
    p.seed = (d["geometry"]["seed"] if seed is None else seed) & 0xFFFFFFFF
    for k, f in (("e_fire_aj", "fire_fj"), ("e_update_aj", "update_fj"), ("e_read_aj", "read_fj"),
                 ("e_pot_aj", "pot_fj"), ("e_dep_aj", "dep_fj"), ("e_pre_aj", "pre_fj"), ("e_post_aj", "post_fj")):
        setattr(p, k, int(round(e[f] * 1000)))
    for k, f in (("t_step_ps", "step_ns"), ("t_read_ps", "read_ns"), ("t_prog_ps", "prog_ns"),
                 ("t_pre_ps", "pre_ns"), ("t_post_ps", "post_ns"), ("t_refrac_ps", "refractory_ns")):
        setattr(p, k, int(round(t[f] * 1000)))
    p.retention_tau_s = int(round(s["retention_tau_s"]))
    p.endurance_pulses = int(round(s["endurance_pulses"]))
    p.g_min, p.g_max = code(s["g_min_us"]), code(s["g_max_us"])
    w = p.g_max - p.g_min
    p.g_ref = code(s["g_ref_us"]) if s["g_ref_us"] >= 0 else (p.g_min + p.g_max) // 2
    p.g_relax = p.g_min + int(round(s["relax_frac"] * w))
    up, down = card.branch_curves()
    bins = lib.SB_CURVE_BINS
    tp = step_table(up, bins)
    td = step_table(down[::-1], bins)  # depression walks the curve downwards: step at each position
    for b in range(bins):
        p.step_p[b] = max(1, _q16(tp[b]))
        p.step_d[b] = max(1, _q16(td[b]))
    p.d2d_step_q16 = _q16(s["d2d_step"])
    p.d2d_window_q16 = _q16(s["d2d_window"])
    p.c2c_q16 = _q16(s["c2c"])
    p.read_noise_q16 = _q16(s["read_noise"])
    p.endurance_shrink_q16 = _q16(s["endurance_shrink"])
    smin = s["stuck_min"] + stuck / 2
    smax = s["stuck_max"] + stuck / 2
    if smin + smax + s["stuck_open"] >= 1.0:
        raise ConfigError(f"card {card.name}'s stuck fractions ({s['stuck_min'] + s['stuck_max'] + s['stuck_open']:g}) "
                          f"plus {stuck:g} reach 1: no working cell would be left (need a sum below 1)",
                          field=f"--stuck {stuck:g}")
    p.stuck_min_q16, p.stuck_max_q16, p.stuck_open_q16 = _q16(smin), _q16(smax), _q16(s["stuck_open"])
    p.disturb_q16 = _q16(s["disturb"])
    # post interface: one full window of conductance -> 1.0 (Q16.16) of neuron
    # input, through a 10-bit gain (gain/2^shift = 65536/w, gain in [512, 1023])
    shift = max(0, int(math.floor(math.log2(lib.SB_POST_GAIN_MAX * w / 65536))))
    p.post_shift = shift
    p.post_gain = max(1, min(lib.SB_POST_GAIN_MAX, int(round(2 ** (16 + shift) / w))))
    p.post_sat = int(round(i["saturation"] * 65536))
    p.v_th = int(round(n["threshold"] * 65536))
    p.v_min = int(round(n["v_min"] * 65536))
    p.leak_q16 = _q16(n["leak"])
    p.refractory = n["refractory_steps"]
    p.reset_mode = lib.SB_RESET_SUBTRACT if n["reset"] == "subtract" else lib.SB_RESET_ZERO
    p.endurance_mode = lib.SB_ENDURANCE_STICK if s["endurance_mode"] == "stick" else lib.SB_ENDURANCE_SHRINK
    p.pre_levels = i["pre_levels"]
    p.v_op_mv_div10 = min(255, int(round(n["voltage_v"] * 100)))
    p.rows, p.cols, p.layers = rows, cols, layers
    diff = d["geometry"]["differential"] if differential is None else differential
    if isinstance(diff, bool):
        diff = [diff] * layers
    if len(diff) != layers:
        raise ConfigError(f"differential: need one flag per layer ({layers}), got {len(diff)}")
    p.diff_mask = sum(1 << l for l, f in enumerate(diff) if f)
    p.card_id = int(card.hash[:4], 16)
    field_ = ffi.new("char **")
    if lib.sb_params_check(p, ffi.cast("const char **", field_)) != 0:
        name = ffi.string(field_[0]).decode()
        fields = _COMPILED_FROM.get(name, "")
        raise ConfigError(f"compiled parameter {name} out of range" + (f" (from {fields})" if fields else "")
                          + f" for geometry {geometry}", file=card.path or card.name,
                          field=f"[{fields.split(',')[0]}]" if fields else None)
    return p


#: card fields each compiled parameter (sb_params_check's names) comes from
_COMPILED_FROM = {
    "g_min/g_max": "synapse.g_min_us, synapse.g_max_us, synapse.g_full_us",
    "g_ref": "synapse.g_ref_us",
    "g_relax": "synapse.relax_frac",
    "step_p": "synapse.nl_p, synapse.table_p, synapse.pulses",
    "step_d": "synapse.nl_d, synapse.table_d, synapse.pulses",
    "v_th": "neuron.threshold",
    "v_min": "neuron.v_min",
    "post_sat": "interface.saturation",
    "post_gain": "synapse.g_min_us, synapse.g_max_us, synapse.g_full_us",
    "post_shift": "synapse.g_min_us, synapse.g_max_us, synapse.g_full_us",
    "v_th + 2*post_sat": "neuron.threshold, interface.saturation",
    "v_min - 2*post_sat": "neuron.v_min, interface.saturation",
    "pre_levels": "interface.pre_levels",
    "stuck fractions": "synapse.stuck_min, synapse.stuck_max, synapse.stuck_open",
    "t_step_ps": "timing.step_ns",
    "cols (odd on a differential layer)": "geometry.differential",
    "diff_mask": "geometry.differential",
}


def params_bytes(p) -> bytes:
    from ._hal import ffi

    return bytes(ffi.buffer(p))
