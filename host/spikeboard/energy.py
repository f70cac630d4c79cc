"""Energy and TOPS/W from the chip's event counters.

Energy of a block = its event count x the card's energy per event (model), or
a power monitor's measured supply energy over the same window (a real board).
Every report states its OP definitions and gives TOPS/W under each, so no
figure is inflated by the choice of unit:
  neuron    1 OP = one neuron firing or one membrane-potential update (the
            programme's definition, docs/spec.md)
  synaptic  1 OP = one synapse read (an active input row x a column), i.e. a
            synaptic operation (SOP) actually performed, event-driven
  mac       1 OP = one multiply-accumulate of the same layer computed densely
            (every input row x every neuron, every time step), as a DNN
            accelerator would count it
TOPS/W = OPs / energy in joules / 1e12 = 1000 x OPs / energy in fJ."""
from __future__ import annotations

from dataclasses import dataclass

from ._hal import lib
from .backends.base import Counters

OP_DEFINITIONS = {
    "neuron": "1 OP = one neuron firing or one membrane-potential update (programme definition)",
    "synaptic": "1 OP = one synapse read: an active input row x one column (event-driven SOP)",
    "mac": "1 OP = one multiply-accumulate of the layer computed densely (rows x neurons x steps)",
}
BLOCKS = ("neuron", "synapse_read", "synapse_potentiation", "synapse_depression", "interface", "host_mcu")


@dataclass(frozen=True)
class EnergyReport:
    counters: dict[str, int]
    energy_fj: dict[str, float | None]    # per block; host_mcu None when not measured
    total_fj: float                       # chip blocks (+ host when measured)
    ops: dict[str, int]
    fj_per_op: dict[str, float | None]
    tops_per_w: dict[str, float | None]
    op_definitions: dict[str, str]
    source: str                           # "model: counts x card energies" or "measured"
    measured_fj: float | None = None      # board's power monitor over the same window (None: not measured)

    @property
    def measured_fj_per_op(self) -> dict[str, float | None]:
        if not self.measured_fj:
            return {k: None for k in self.ops}
        return {k: (self.measured_fj / n if n else None) for k, n in self.ops.items()}

    def as_dict(self) -> dict:
        return {"counters": self.counters, "energy_fj": self.energy_fj, "total_fj": self.total_fj,
                "ops": self.ops, "fj_per_op": self.fj_per_op, "tops_per_w": self.tops_per_w,
                "op_definitions": self.op_definitions, "source": self.source,
                "measured_fj": self.measured_fj, "measured_fj_per_op": self.measured_fj_per_op}

    def dominant_block(self) -> str:
        chip = {k: v for k, v in self.energy_fj.items() if v is not None}
        return max(chip, key=lambda k: chip[k]) if chip else "none"


def dense_macs(params, steps: int) -> int:
    per_step = sum(params.rows * lib.sb_params_neurons(params, l) for l in range(params.layers))
    return steps * per_step


def energy_report(params, counters: Counters, *, mcu_instructions: int | None = None,
                  mcu_pj_per_instruction: float = 0.0, macs_per_step: int | None = None) -> EnergyReport:
    """Model energy of a counter window; exact integer attojoules, shown in fJ.
    macs_per_step: dense MACs of one time step where params' geometry is not
    the layer's (a tiled layer: rows x neurons of the logical layer)."""
    c = counters
    aj = {
        "neuron": c.fires * params.e_fire_aj + c.updates * params.e_update_aj,
        "synapse_read": c.reads * params.e_read_aj,
        "synapse_potentiation": c.pot * params.e_pot_aj,
        "synapse_depression": c.dep * params.e_dep_aj,
        "interface": c.pre * params.e_pre_aj + c.post * params.e_post_aj,
    }
    energy: dict[str, float | None] = {k: v / 1000.0 for k, v in aj.items()}
    energy["host_mcu"] = (mcu_instructions * mcu_pj_per_instruction * 1000.0
                          if mcu_instructions is not None else None)
    total = sum(v for v in energy.values() if v is not None)
    ops = {"neuron": c.fires + c.updates, "synaptic": c.reads, "mac": c.steps * macs_per_step if macs_per_step is not None else dense_macs(params, c.steps)}
    fj_per_op = {k: (total / n if n else None) for k, n in ops.items()}
    tops = {k: (1000.0 * n / total if total and n else None) for k, n in ops.items()}
    measured = getattr(c, "measured_aj", 0)
    return EnergyReport(c.as_dict(), energy, total, ops, fj_per_op, tops, dict(OP_DEFINITIONS),
                        "model: event counts x card energy per event"
                        + ("; measured: board power monitor (chip supply)" if measured else ""),
                        measured / 1000.0 if measured else None)


def format_report(r: EnergyReport) -> str:
    lines = ["energy by block (fJ):"]
    for k in BLOCKS:
        v = r.energy_fj.get(k)
        share = f"{100 * v / r.total_fj:5.1f} %" if v is not None and r.total_fj else "     "
        lines.append(f"  {k:22s} {('%.1f' % v) if v is not None else 'not measured':>14s}  {share}")
    lines.append(f"  {'total':22s} {r.total_fj:14.1f}")
    if r.measured_fj:
        lines.append(f"  {'measured (supply)':22s} {r.measured_fj:14.1f}   board power monitor over the same window")
    lines.append("efficiency:")
    for k in ("neuron", "synaptic", "mac"):
        t = r.tops_per_w[k]
        f = r.fj_per_op[k]
        lines.append(f"  {k:9s} {r.ops[k]:>12d} OPs  {('%.3f fJ/OP' % f) if f else '-':>14s}  "
                     f"{('%.1f TOPS/W' % t) if t else '-':>14s}   [{r.op_definitions[k]}]")
        m = r.measured_fj_per_op[k]
        if m:
            lines.append(f"  {'':9s} {'measured':>16s}  {'%.3f fJ/OP' % m:>14s}  {'%.1f TOPS/W' % (1000.0 / m):>14s}")
    return "\n".join(lines)
