"""A run's report: PNG figures and report.html, rendered from the run folder
alone (so `spikeboard report RUN` can redo it later)."""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from .energy import BLOCKS
from .errors import ConfigError


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt



def _seed(result: dict[str, Any], cfg: dict[str, Any]) -> Any:
    """The run's seed: in its result, or (runs written before results carried it) in its config."""
    c = cfg.get("config", {})
    return result.get("seed", c.get("chip", c).get("seed", "?"))

def render(run: str | Path, *, data=None, backend=None) -> Path:
    """Write figures and report.html into the run folder; returns the HTML path.
    With data and backend (a live session) a spike raster of one test sample is
    recorded too; otherwise a raster saved earlier is reused."""
    run = Path(run)
    try:
        result = json.loads((run / "result.json").read_text())
        energy = json.loads((run / "energy.json").read_text())
    except FileNotFoundError as e:
        raise ConfigError(f"{run}: not a finished run ({Path(e.filename).name} missing)") from None
    metrics = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if l.strip()]
    plt = _plt()
    figs = []

    # accuracy per epoch
    fig, ax = plt.subplots(figsize=(5, 3.2))
    acc = [m["test_accuracy"] for m in metrics]
    ax.plot(range(1, len(acc) + 1), acc, "o-", label="test, on chip")
    run_acc = [m.get("train_running_accuracy") for m in metrics]
    if any(a is not None for a in run_acc):
        ax.plot(range(1, len(acc) + 1), [a if a is not None else np.nan for a in run_acc], "s--",
                label="train, running (on chip)")
    if result.get("baseline_accuracy") is not None:
        ax.axhline(result["baseline_accuracy"], color="gray", ls=":", label="float baseline")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"{result['app']} on {result['backend']} ({result['card']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(run / "accuracy.png", dpi=110)
    plt.close(fig)
    figs.append(("accuracy.png", "Test accuracy per epoch"))

    # spike raster of one sample
    raster = run / "raster.npz"
    if data is not None and backend is not None and len(data.y_test):
        fires, _ = backend.infer(data.x_test[0])
        np.savez(raster, inputs=data.x_test[0], fires=fires, label=int(data.y_test[0]))
    if raster.exists():
        z = np.load(raster)
        fig, (a1, a2) = plt.subplots(2, 1, figsize=(5, 4), sharex=True,
                                     gridspec_kw={"height_ratios": [z["inputs"].shape[1], max(z["fires"].shape[1], 1)]})
        t, r = np.nonzero(z["inputs"])
        a1.scatter(t, r, s=4, marker="|", color="k")
        a1.set_ylabel("input row")
        t, n = np.nonzero(z["fires"])
        a2.scatter(t, n, s=10, marker="|", color="C3")
        a2.set_ylabel("output neuron")
        a2.set_xlabel("time step")
        a1.set_title(f"spikes of one test sample (label {int(z['label'])})", fontsize=9)
        fig.tight_layout()
        fig.savefig(run / "raster.png", dpi=110)
        plt.close(fig)
        figs.append(("raster.png", "Input and output spikes of one test sample"))

    # conductance map
    g = np.load(run / "conductance.npy")
    fig, axes = plt.subplots(1, g.shape[0], figsize=(3.2 * g.shape[0] + 0.8, 3.2), squeeze=False)
    for l in range(g.shape[0]):
        im = axes[0, l].imshow(g[l], cmap="viridis", aspect="auto", interpolation="nearest")
        axes[0, l].set_title(f"layer {l}", fontsize=9)
        axes[0, l].set_xlabel("column")
        axes[0, l].set_ylabel("row")
    fig.colorbar(im, ax=axes[0, -1], label="conductance code")
    fig.tight_layout()
    fig.savefig(run / "conductance.png", dpi=110)
    plt.close(fig)
    figs.append(("conductance.png", "Conductance read back from the array at the end"))

    # energy by block
    tot = energy["total"]
    vals = [(k, tot["energy_fj"].get(k)) for k in BLOCKS]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    names = [k for k, v in vals if v is not None]
    ax.barh(names, [v for k, v in vals if v is not None], color="C0")
    ax.set_xscale("symlog")
    ax.set_xlabel("energy (fJ), whole session")
    ax.set_title("energy by block", fontsize=9)
    fig.tight_layout()
    fig.savefig(run / "energy.png", dpi=110)
    plt.close(fig)
    figs.append(("energy.png", "Energy by block over the whole session"))

    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{('%.1f' % v) if v is not None else 'not measured'}</td></tr>"
                   for k, v in vals)
    inf = energy["inference"]
    ops = "".join(f"<tr><td>{k}</td><td>{inf['ops'][k]}</td><td>{_f(inf['fj_per_op'][k])}</td>"
                  f"<td>{_f(inf['tops_per_w'][k])}</td><td>{html.escape(inf['op_definitions'][k])}</td></tr>"
                  for k in ("neuron", "synaptic", "mac"))
    cfg = json.loads((run / "config.json").read_text())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>spikeboard run {html.escape(run.name)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}td,th{{padding:2px 8px;border-bottom:1px solid #ddd}}
img{{max-width:48%;margin:4px}}</style></head><body>
<h1>{html.escape(result['mode'])}: {html.escape(result['app'])}</h1>
<p>backend <b>{html.escape(result['backend'])}</b> (board {html.escape(str(result['board']))}, firmware {html.escape(str(result['firmware']))}),
card <b>{html.escape(result['card'])}</b>, geometry {html.escape(result['geometry'])}, seed {html.escape(str(_seed(result, cfg)))}.</p>
<p>Test accuracy <b>{result['accuracy']:.4f}</b> on {result['test_samples']} samples
(float baseline on the same features: {_f(result.get('baseline_accuracy'))}).
Settings: {html.escape(json.dumps(result['settings']))}.</p>
<h2>Energy by block (whole session, fJ)</h2><table>{rows}<tr><th>total</th><th>{tot['total_fj']:.1f}</th></tr></table>
<p>Source: {html.escape(tot['source'])}. Host/MCU energy is not part of the model figures.</p>
<h2>Efficiency during inference, by OP convention</h2>
<table><tr><th>convention</th><th>OPs</th><th>fJ/OP</th><th>TOPS/W</th><th>definition</th></tr>{ops}</table>
<h2>Figures</h2>{''.join(f'<figure style="display:inline-block;width:48%"><img style="max-width:100%" src="{f}"><figcaption>{html.escape(c)}</figcaption></figure>' for f, c in figs)}
{_link_html(result)}
<h2>Counters (whole session)</h2><pre>{html.escape(json.dumps(result['counters'], indent=1))}</pre>
<p>Versions: {html.escape(json.dumps(cfg['versions']))}</p></body></html>"""
    out = run / "report.html"
    out.write_text(page)
    return out


def _link_html(result: dict) -> str:
    """The link's retries and resynchronisations, injected faults, and the
    board resets the session recovered from."""
    link, resets = result.get("link"), result.get("board_resets")
    if not link and not resets:
        return ""
    out = ["<h2>Link and board resets</h2>"]
    if link:
        st = link["stats"]
        out.append("<p>" + ", ".join(f"{html.escape(k.replace('_', ' '))} <b>{v}</b>" for k, v in st.items()) + "</p>")
        if link.get("faults"):
            inj = link.get("injected") or {}
            out.append(f"<p>Faults injected on purpose ({html.escape(link['faults'])}): "
                       + ", ".join(f"{html.escape(k.replace('_', ' '))} {v}" for k, v in inj.items()) + "</p>")
    if resets:
        out.append(f"<p>Board resets survived: <b>{resets['count']}</b>; reset reason reported at the start: "
                   f"{html.escape(str(resets.get('reset_reason_at_start')))}.</p>")
        if resets.get("events"):
            out.append("<table><tr><th>after sample</th><th>board reset by</th><th>seen as</th></tr>"
                       + "".join(f"<tr><td>{e['applied']}</td><td>{html.escape(e['reason'])}</td>"
                                 f"<td>{html.escape(e['error'][:120])}</td></tr>" for e in resets["events"])
                       + "</table>")
    return "\n".join(out)


def _f(x) -> str:
    return "n/a" if x is None else (f"{x:.4g}")
