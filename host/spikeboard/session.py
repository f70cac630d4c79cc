"""Training and inference sessions: a run folder per session, a journal that
makes a session resumable, checkpoints of the chip, energy and a report.

Run folder:
  config.json      resolved configuration, versions, card hash
  card.toml        the device card as used
  journal.jsonl    one line per applied sample and per checkpoint (fsynced)
  metrics.jsonl    one line per epoch (accuracy, counters of each phase)
  checkpoints/     device images of a virtual chip (synapse state, counters)
  conductance.npy  final conductance read-back, (layers, rows, cols)
  counters.json, energy.json, result.json, log.txt, report.html, *.png

Resuming: the journal says which samples were applied. A real chip keeps its
synapses across a board reset, so its read-back is the state and journaled
samples are never applied again. A virtual chip (emulator, model) loses its
state with the board: the last checkpoint image is restored and the samples
journaled after it are applied again to that restored state, with the same
sample ids, so the end state equals an uninterrupted run's."""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__, cards
from ._hal import ffi, lib
from .apps import get_app, prepare
from .apps.base import App, Prepared
from .apps.run import decide, init_array, output_neurons
from .backends import Backend, Counters, open_backend
from .energy import energy_report
from .errors import ConfigError, DeviceError, LinkError, SpikeboardError
from .link import BoardReset

RUNS_DIR = Path("runs")


@dataclass(frozen=True)
class SessionConfig:
    mode: str = "train"                  # train | infer
    app: str | None = "digits"
    data: str | None = None              # a lab's own data file instead of --app
    backend: str = "model"
    port: str | None = None
    board: str = "netduinoplus2"
    card: str = "spec"
    geometry: str | None = None
    seed: int = 0
    stuck: float = 0.0
    epochs: int | None = None            # None: the app's default
    rule: str | None = None
    target: int | None = None
    max_pulses: int | None = None
    threshold: float | None = None
    train_limit: int | None = None
    test_limit: int | None = None
    checkpoint_every: int = 100
    weights_run: str | None = None       # infer: the run whose weights to use
    faults: str | None = None            # inject link faults, e.g. "corrupt=0.01,drop=0.005,seed=1"
    max_recoveries: int = 50             # board resets / lost links survived before giving up

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Progress:
    """A bar on a terminal, plain periodic lines otherwise (CI logs)."""

    total: int
    label: str
    quiet: bool = False
    t0: float = field(default_factory=time.monotonic)
    done: int = 0
    last_line: float = 0.0

    def update(self, n: int = 1, **info) -> None:
        self.done += n
        if self.quiet:
            return
        now = time.monotonic()
        rate = self.done / max(now - self.t0, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else 0
        extra = " ".join(f"{k} {v}" for k, v in info.items())
        if sys.stderr.isatty():
            w = 30
            fill = int(w * self.done / max(self.total, 1))
            sys.stderr.write(f"\r{self.label} [{'#' * fill}{'.' * (w - fill)}] {self.done}/{self.total} "
                             f"{rate:6.1f}/s ETA {eta:5.0f}s {extra}   ")
            if self.done >= self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()
        elif now - self.last_line > 5 or self.done >= self.total:
            self.last_line = now
            print(f"{self.label}: {self.done}/{self.total} ({rate:.1f}/s, ETA {eta:.0f}s) {extra}",
                  file=sys.stderr, flush=True)


class Session:
    def __init__(self, cfg: SessionConfig, run_dir: Path, *, quiet: bool = False, hooks=None):
        self.cfg = cfg
        self.dir = Path(run_dir)
        self.quiet = quiet
        self.hooks = hooks or {}
        self.backend: Backend | None = None
        self._log = None
        self.resets: list[dict] = []       # board resets the session recovered from
        self.recoveries = 0
        self._virtual = True

    # ------------------------------------------------------------------ set-up
    @classmethod
    def create(cls, cfg: SessionConfig, run_dir: str | Path | None = None, **kw) -> "Session":
        if cfg.app is None and cfg.data is None:
            raise ConfigError("give --app NAME or --data FILE")
        if run_dir is None:
            name = f"{time.strftime('%Y%m%d-%H%M%S')}-{cfg.mode}-{cfg.app or Path(cfg.data).stem}-{cfg.backend}"
            run_dir = RUNS_DIR / name
        run_dir = Path(run_dir)
        if run_dir.exists() and any(run_dir.iterdir()):
            raise ConfigError(f"{run_dir}: run folder exists and is not empty (use --resume {run_dir})")
        run_dir.mkdir(parents=True, exist_ok=True)
        card = cards.load(cfg.card)
        (run_dir / "card.toml").write_text(card.text)
        (run_dir / "config.json").write_text(json.dumps({"config": cfg.as_dict(), "versions": {
            "spikeboard": __version__, "python": sys.version.split()[0], "numpy": np.__version__},
            "card": {"name": card.name, "sha256_16": card.hash}}, indent=2))
        return cls(cfg, run_dir, **kw)

    @classmethod
    def open(cls, run_dir: str | Path, **kw) -> "Session":
        run_dir = Path(run_dir)
        cfg_file = run_dir / "config.json"
        if not cfg_file.exists():
            raise ConfigError(f"{run_dir}: not a run folder (no config.json)")
        try:
            c = json.loads(cfg_file.read_text())["config"]
            c["card"] = str(run_dir / "card.toml")
            cfg = SessionConfig(**c)
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"{cfg_file}: unreadable ({e})") from None
        return cls(cfg, run_dir, **kw)

    def app(self) -> App:
        if self.cfg.data:
            from .apps.builtin import user_app

            return user_app(self.cfg.data)
        return get_app(self.cfg.app)

    def log(self, msg: str) -> None:
        with open(self.dir / "log.txt", "a") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {msg}\n")
        if not self.quiet:
            print(msg, file=sys.stderr, flush=True)

    def _settings(self, app: App) -> dict:
        c = self.cfg
        return {"epochs": c.epochs if c.epochs is not None else app.epochs,
                "rule": c.rule or app.rule,
                "target": c.target if c.target is not None else app.target,
                "max_pulses": c.max_pulses if c.max_pulses is not None else app.max_pulses,
                "threshold": c.threshold if c.threshold is not None else app.threshold}

    def _params(self, app: App):
        card = cards.load(self.cfg.card)
        neuron = {"threshold": self._settings(app)["threshold"]}
        if app.v_min is not None:
            neuron["v_min"] = app.v_min
        return cards.compile_card(card, self.cfg.geometry, seed=self.cfg.seed, stuck=self.cfg.stuck, neuron=neuron)

    def _prepare(self, app: App, params) -> Prepared:
        neurons = lib.sb_params_neurons(params, params.layers - 1)
        return prepare(app, params.rows, self.cfg.seed, train_limit=self.cfg.train_limit,
                       test_limit=self.cfg.test_limit, neurons=neurons)

    # ------------------------------------------------------------------ journal
    def _journal(self) -> list[dict]:
        f = self.dir / "journal.jsonl"
        if not f.exists():
            return []
        out = []
        for ln, line in enumerate(f.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                # a line cut by a crash mid-write is the last one: drop it
                if ln == len(f.read_text().splitlines()):
                    break
                raise ConfigError(f"{f}: line {ln}: corrupted journal") from None
        return out

    def _append(self, name: str, rec: dict) -> None:
        with open(self.dir / name, "a") as f:
            f.write(json.dumps(rec) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _checkpoint(self, applied: int, metrics: dict | None = None) -> None:
        extra = {"metrics": metrics} if metrics is not None else {}
        if self._virtual:
            self._counters(applied)       # the image must be this session's state
        img = self.backend.read_image()
        if img is None:
            self._append("journal.jsonl", {"type": "checkpoint", "applied": applied, "image": None, **extra})
            return
        d = self.dir / "checkpoints"
        d.mkdir(exist_ok=True)
        path = d / f"{applied:08d}.img"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(img)
        os.replace(tmp, path)
        self._append("journal.jsonl", {"type": "checkpoint", "applied": applied, "image": path.name, **extra})

    # ------------------------------------------------------------------ run
    def run(self, *, resume: bool = False) -> dict:
        app = self.app()
        params = self._params(app)
        st = self._settings(app)
        self.log(f"session {self.dir.name}: {self.cfg.mode} {app.name} on {self.cfg.backend}, card "
                 f"{Path(self.cfg.card).stem}, {params.rows}x{params.cols}x{params.layers}, seed {self.cfg.seed}")
        data = self._prepare(app, params)
        self.log(f"data: {len(data.y_train)} train / {len(data.y_test)} test samples, {data.feature_info}; "
                 f"float baseline {data.baseline_accuracy if data.baseline_accuracy is not None else 'n/a'}")
        self.backend = open_backend(self.cfg.backend, port=self.cfg.port, board=self.cfg.board,
                                    faults=self.cfg.faults)
        if self.cfg.faults:
            self.log(f"link faults injected: {self.backend.faults.spec}")
        self._params, self._data, self._st = params, data, st
        self.neurons = self._output_map(data.classes, resume)
        try:
            info = self._connect(params, resume)
            if self.cfg.mode == "train":
                result = self._train(app, data, params, st, info, resume)
            else:
                result = self._infer(app, data, params, info)
            return result
        finally:
            self.backend.close()

    def _output_map(self, classes: int, resume: bool) -> np.ndarray:
        """Output neuron of each class: a resumed run's from its journal, an
        inference's from the run it takes weights from, else 0..classes-1
        until the training's yield scan picks them (_init_phase)."""
        found = None
        if resume:
            found = next((r["neurons"] for r in reversed(self._journal()) if r.get("type") == "neurons"), None)
        elif self.cfg.mode != "train" and self.cfg.weights_run:
            res = Path(self.cfg.weights_run) / "result.json"
            if res.exists():
                try:
                    found = json.loads(res.read_text()).get("output_neurons")
                except ValueError:
                    raise ConfigError(f"{res}: not valid JSON") from None
        n = np.arange(classes) if found is None else np.asarray(found, dtype=np.int64)
        if len(n) != classes:
            raise ConfigError(f"output neuron map has {len(n)} entries for {classes} classes "
                              f"(run folder of another application?)")
        return n

    def _connect(self, params, resume: bool):
        b = self.backend
        journal = self._journal() if resume else []
        applied = sum(1 for r in journal if r.get("type") == "sample")
        info = b.info()
        self._virtual = info.virtual
        if info.reset_reason == 1:
            self.log("warning: board reset by watchdog before this session (its last reset)")
        intact = resume and self._intact(info, applied)
        if not intact:
            if resume and applied:
                self._rebuild()
            else:
                b.configure(params)
            info = b.info()
        elif resume:
            self.log(f"resume: board still holds the session ({applied} samples applied)")
        return info

    def _intact(self, info, applied: int) -> bool:
        """Does the board still hold this session's state (configuration, and
        on a virtual chip the count of applied samples)?"""
        want_hash = zlib.crc32(cards.params_bytes(self._params))
        if not (info.configured and info.card_hash == want_hash):
            return False
        self.backend.params = ffi.new("sb_params_t *", self._params[0])
        return not self._virtual or self.backend.counters().samples == applied

    def _rebuild(self) -> None:
        """The board lost the session: configure it again; a virtual chip gets
        the last checkpoint back and the samples journaled after it are applied
        again, with their sample ids, so the state equals an uninterrupted run's.
        A real chip kept its synapses: nothing is applied twice."""
        b, st, data = self.backend, self._st, self._data
        b.configure(self._params)
        journal = self._journal()
        samples = [r for r in journal if r.get("type") == "sample"]
        if not self._virtual:
            self.log(f"resume: real chip keeps its synapses; {len(samples)} samples already applied")
            return
        ck = [r for r in journal if r.get("type") == "checkpoint" and r.get("image")]
        start = 0
        if ck:
            last = ck[-1]
            b.write_image((self.dir / "checkpoints" / last["image"]).read_bytes())
            start = last["applied"]
            self.log(f"resume: restored checkpoint after {start} samples")
        elif samples:
            self.log("resume: no checkpoint, replaying from the start")
        # replayed as the session sent them: with their labels (journaled output neuron) and ids,
        # as many per request as the link carries (the same bits as one by one)
        todo = samples[start:]
        b.train_batch([data.x_train[r["index"]] for r in todo],
                      [int(self.neurons[data.y_train[r["index"]]]) for r in todo],
                      [r["sample_id"] for r in todo], rule=st["rule"], target=st["target"],
                      max_pulses=st["max_pulses"])
        if samples[start:]:
            self.log(f"resume: re-applied {len(samples) - start} journaled samples to the restored chip")

    # ------------------------------------------------------------------ recovery
    def _guard(self, fn, *args):
        """Run one step of the session against the board; if the board resets
        or the link is lost meanwhile, recover (reconnect, restore, replay) and
        run the step again. A step is a single sample, a checkpoint, or a whole
        evaluation: nothing in it is journaled until it has completed."""
        while True:
            try:
                return fn(*args)
            except (BoardReset, LinkError) as e:
                self._recover(e)

    def _recover(self, err: Exception) -> None:
        b = self.backend
        while True:
            self.recoveries += 1
            if self.recoveries > self.cfg.max_recoveries:
                raise LinkError(f"gave up after {self.cfg.max_recoveries} recoveries; last: {err}") from None
            self.log(f"board or link fault: {err}; recovering")
            try:
                for k in range(6):
                    try:
                        b.reconnect()
                        info = b.info()
                        break
                    except LinkError as e:
                        err = e
                        time.sleep(0.1 * (k + 1))
                else:
                    raise err
                applied = sum(1 for r in self._journal() if r.get("type") == "sample")
                if self._intact(info, applied):
                    self.log("recovered: the board kept the session (link fault only)")
                    return
                reason = info.reset_reason_name
                self.resets.append({"applied": applied, "reason": reason, "error": str(err)})
                self.log(f"board reset by {reason} (reset {len(self.resets)} of this session) after "
                         f"{applied} applied samples: restoring")
                self._rebuild()
                return
            except (BoardReset, LinkError) as e:
                err = e

    def _counters(self, applied: int) -> Counters:
        """Counters, checked against the journal: a virtual chip that counts
        other than `applied` samples is not this session's any more."""
        c = self.backend.counters()
        if self._virtual and c.samples != applied:
            raise BoardReset(f"the board counts {c.samples} applied samples, the journal {applied}")
        return c

    def _link_stats(self) -> dict | None:
        link = getattr(self.backend, "link", None)
        return link.stats.as_dict() if link is not None else None

    def _train(self, app: App, data: Prepared, params, st: dict, info, resume: bool) -> dict:
        b = self.backend
        journal = self._journal() if resume else []
        done = {(r["epoch"], r["pos"]) for r in journal if r.get("type") == "sample"}
        samples = [r for r in journal if r.get("type") == "sample"]
        N = len(data.y_train)
        epochs = st["epochs"]
        metrics = [json.loads(l) for l in (self.dir / "metrics.jsonl").read_text().splitlines()] \
            if resume and (self.dir / "metrics.jsonl").exists() else []
        # an epoch's record rides with its end checkpoint: one cut between the two is made good here
        for r in journal:
            m = r.get("metrics")
            if r.get("type") == "checkpoint" and m and not any(x["epoch"] == m["epoch"] for x in metrics):
                metrics.append(m)
                self._append("metrics.jsonl", m)
        prog = Progress(N * epochs, "train", self.quiet)
        prog.done = len(done)
        applied = len(samples)
        if not resume or not any(r.get("type") == "checkpoint" for r in journal):
            self._guard(self._init_phase, params)
        for epoch in range(epochs):
            order = np.random.default_rng([self.cfg.seed, epoch, 0x7A]).permutation(N)
            if all((epoch, k) in done for k in range(N)) and any(m["epoch"] == epoch for m in metrics):
                continue
            l0 = self._link_stats()
            c0 = self._guard(self._counters, applied)
            correct = seen = 0
            pos = 0
            while pos < N:
                if (epoch, pos) in done:
                    pos += 1
                    continue
                # a chunk: the next samples, as many as one request carries on this link, never
                # across a checkpoint or the epoch's end. An after_sample hook acts between
                # samples on the board (tests reset it there), so with one each goes alone.
                limit = 1 if self.hooks.get("after_sample") else max(1, b.train_chunk(
                    int(data.x_train[int(order[pos])].shape[0]), st["rule"], st["max_pulses"]))
                chunk = []
                while pos < N and len(chunk) < limit and (epoch, pos) not in done:
                    chunk.append(pos)
                    pos += 1
                    if (applied + len(chunk)) % self.cfg.checkpoint_every == 0:
                        break
                idx = [int(order[q]) for q in chunk]
                rs = self._guard(lambda: self.backend.train_batch(
                    [data.x_train[i] for i in idx], [int(self.neurons[data.y_train[i]]) for i in idx],
                    [epoch * N + q for q in chunk], rule=st["rule"], target=st["target"],
                    max_pulses=st["max_pulses"]))
                for q, i, r in zip(chunk, idx, rs):
                    self._append("journal.jsonl", {"type": "sample", "epoch": epoch, "pos": q, "index": i,
                                                   "sample_id": epoch * N + q, "label": int(data.y_train[i]),
                                                   "predicted": int(r.predicted), "pulses": int(r.pulses)})
                    applied += 1
                    seen += 1
                    correct += int(r.predicted == self.neurons[data.y_train[i]])
                    if self.hooks.get("after_sample"):
                        self.hooks["after_sample"](self, applied)
                    prog.update(1, acc=f"{correct / seen:.3f}")
                if applied % self.cfg.checkpoint_every == 0:
                    self._guard(self._checkpoint, applied)

            def epoch_end():
                c1 = self._counters(applied)
                acc, c2 = self._evaluate(data, "epoch %d" % epoch)
                rec = {"epoch": epoch, "train_running_accuracy": correct / seen if seen else None,
                       "test_accuracy": acc, "train_counters": (c1 - c0).as_dict(),
                       "eval_counters": (c2 - c1).as_dict(), "train_samples": seen}
                self._checkpoint(applied, metrics=rec)
                return rec

            rec = self._guard(epoch_end)
            l1 = self._link_stats()
            if l1 is not None:   # how the link fared this epoch (the only field a noisy line changes)
                rec = {**rec, "link": {k: l1[k] - l0[k] for k in l1}}
            metrics.append(rec)
            self._append("metrics.jsonl", rec)
            self.log(f"epoch {epoch}: test accuracy {rec['test_accuracy']:.4f}")
        return self._guard(self._finish, app, data, params, st, metrics, info)

    def _init_phase(self, params) -> None:
        """Yield scan and class -> output neuron map (journaled, so a resumed
        run keeps it), then the array's starting weights, then checkpoint 0."""
        self.neurons = output_neurons(self.backend, self._data.classes)
        self._append("journal.jsonl", {"type": "neurons", "neurons": self.neurons.tolist()})
        self.log(f"yield scan: classes on output neurons {self.neurons.tolist()}")
        init_array(self.backend, self.cfg.seed)
        self._checkpoint(0)

    def _evaluate(self, data: Prepared, label: str) -> tuple[float, Counters]:
        b = self.backend
        # as many samples per request as the backend takes (INFER_BATCH over a link,
        # a C loop on the model): the same bits as one INFER each; the progress
        # display moves one chunk at a time
        n = len(data.y_test)
        pred = np.zeros(n, np.int64)
        prog = Progress(n, f"test ({label})", self.quiet)
        k = 0
        while k < n:
            m = min(n - k, max(1, b.infer_chunk(int(data.x_test.shape[1]))))
            f, v = b.infer_batch(data.x_test[k:k + m])
            pred[k:k + m] = decide(f, v, self.neurons, b.params.v_th)
            prog.update(m)
            k += m
        np.save(self.dir / "predictions.npy", pred)
        return float((pred == data.y_test).mean()), b.counters()

    def _infer(self, app: App, data: Prepared, params, info) -> dict:
        b = self.backend
        if self.cfg.weights_run:
            src = Path(self.cfg.weights_run)
            img = src / "final.img"
            g = src / "conductance.npy"
            if info.virtual and img.exists():
                b.write_image(img.read_bytes())
                b.counters(clear=True)
                self.log(f"weights: device image of {src}")
            elif g.exists():
                t = np.load(g).ravel()
                r = b.program(t, tolerance=max(1, (params.g_max - params.g_min) // 200), max_pulses=255)
                self.log(f"weights: programmed {src}/conductance.npy with write-verify, "
                         f"{int(r.failed.sum())} cells failed")
                b.counters(clear=True)
            else:
                raise ConfigError(f"{src}: no final.img or conductance.npy to take weights from")
        c0 = b.counters()
        acc, c1 = self._evaluate(data, "infer")
        rec = {"epoch": None, "test_accuracy": acc, "eval_counters": (c1 - c0).as_dict(), "train_counters": None}
        self._append("metrics.jsonl", rec)
        return self._finish(app, data, params, self._settings(app), [rec], info)

    def _link_report(self) -> dict | None:
        """Link statistics of the whole session (the last process's, on resume)
        and what a fault plan injected."""
        st = self._link_stats()
        if st is None:
            return None
        inj = getattr(self.backend, "faults", None)
        return {"stats": st, "faults": str(inj.spec) if inj is not None else None,
                "injected": inj.stats.as_dict() if inj is not None else None}

    def _finish(self, app: App, data: Prepared, params, st: dict, metrics: list[dict], info) -> dict:
        b = self.backend
        g = b.read_conductance().reshape(params.layers, params.rows, params.cols)
        np.save(self.dir / "conductance.npy", g)
        img = b.read_image()
        if img is not None:
            (self.dir / "final.img").write_bytes(img)
        total = b.counters()
        (self.dir / "counters.json").write_text(json.dumps(total.as_dict(), indent=2))
        train_c = _sum_counters([m["train_counters"] for m in metrics if m.get("train_counters")])
        eval_c = Counters(**metrics[-1]["eval_counters"])
        e_total = energy_report(params, total)
        e_infer = energy_report(params, eval_c)
        e_train = energy_report(params, train_c) if train_c else None
        n_test = len(data.y_test)
        n_train = sum(m.get("train_samples", 0) for m in metrics if m.get("train_counters"))
        result = {
            "run": str(self.dir),
            "mode": self.cfg.mode,
            "app": app.name,
            "backend": self.cfg.backend,
            "board": info.board,
            "firmware": info.firmware,
            "card": Path(self.cfg.card).stem,
            "geometry": f"{params.rows}x{params.cols}x{params.layers}",
            "settings": st,
            "output_neurons": self.neurons.tolist(),
            "accuracy": metrics[-1]["test_accuracy"],
            "accuracy_per_epoch": [m["test_accuracy"] for m in metrics],
            "baseline_accuracy": data.baseline_accuracy,
            "test_samples": n_test,
            "train_samples_applied": n_train,
            "energy_fj": e_total.energy_fj,
            "energy_total_fj": e_total.total_fj,
            "energy_per_inference_fj": {k: (v / n_test if v is not None else None)
                                        for k, v in e_infer.energy_fj.items()},
            "energy_per_training_sample_fj": ({k: (v / n_train if v is not None else None)
                                               for k, v in e_train.energy_fj.items()} if e_train and n_train else None),
            "tops_per_w": e_infer.tops_per_w,
            "fj_per_op": e_infer.fj_per_op,
            "op_definitions": e_infer.op_definitions,
            "counters": total.as_dict(),
            "link": self._link_report(),
            "board_resets": {"count": len(self.resets), "events": self.resets,
                             "reset_reason_at_start": info.reset_reason_name},
        }
        (self.dir / "energy.json").write_text(json.dumps({"total": e_total.as_dict(), "inference": e_infer.as_dict(),
                                                          "training": e_train.as_dict() if e_train else None}, indent=2))
        (self.dir / "result.json").write_text(json.dumps(result, indent=2))
        try:
            from .report import render

            render(self.dir, data=data, backend=b)
        except SpikeboardError:
            raise
        except ImportError as e:  # matplotlib missing: the run is complete without figures
            self.log(f"report: figures skipped ({e})")
        self.log(f"done: accuracy {result['accuracy']:.4f} (float baseline "
                 f"{data.baseline_accuracy if data.baseline_accuracy is not None else 'n/a'}); run folder {self.dir}")
        return result


def _sum_counters(dicts: list[dict]) -> Counters | None:
    if not dicts:
        return None
    keys = dicts[0].keys()
    return Counters(**{k: sum(d[k] for d in dicts) for k in keys})
