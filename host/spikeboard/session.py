"""Training and inference sessions: a run folder per session, a journal that
makes a session resumable, checkpoints of the chip, energy and a report.
The chip comes through the one door (spikeboard.chip) and the training and
evaluation through the one loop (spikeboard.loop); a session adds only what is
its own around them.

Run folder:
  config.json      resolved configuration (with the chip spec), versions, card hash
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

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import numpy as np

from . import __version__, cards, loop
from ._hal import lib
from .apps import get_app
from .apps.base import App
from .backends import Backend, Counters, TrainResult
from .chip import ChipSpec, configure, open_backend_for
from .energy import energy_report
from .errors import ConfigError, LinkError, SpikeboardError
from .link import BoardReset

RUNS_DIR = Path("runs")
T = TypeVar("T")
_CHIP_FIELDS = tuple(f.name for f in dataclasses.fields(ChipSpec))


@dataclass(frozen=True)
class SessionConfig:
    mode: str = "train"                  # train | infer
    app: str | None = "digits"
    data: str | None = None              # a lab's own data file instead of --app
    chip: ChipSpec = field(default_factory=ChipSpec)
    epochs: int | None = None            # None: the app's default (loop.settings_for)
    rule: str | None = None
    target: int | None = None
    max_pulses: int | None = None
    threshold: float | None = None
    train_limit: int | None = None
    test_limit: int | None = None
    checkpoint_every: int = 100
    weights_run: str | None = None       # infer: the run whose weights to use
    max_recoveries: int = 50             # board resets / lost links survived before giving up

    @classmethod
    def of(cls, **kw: Any) -> "SessionConfig":
        """A config from flat keywords: ChipSpec's fields (backend, card, seed,
        faults, ...) go into `chip`, the rest are the session's."""
        chip = ChipSpec(**{k: kw.pop(k) for k in _CHIP_FIELDS if k in kw})
        return cls(chip=chip, **kw)

    @classmethod
    def from_args(cls, args: Any, mode: str) -> "SessionConfig":
        """A config from the CLI's chip and session option groups (commands/_options.py)."""
        faults = getattr(args, "faults", None)
        if faults:
            from .faults import FaultSpec

            if args.backend == "model":
                raise ConfigError("link faults need a link: use --backend emulator or serial", field="--faults")
            FaultSpec.parse(faults)          # a bad spec fails here, before a run folder exists
        return cls(mode=mode, app=args.app, data=args.data, chip=ChipSpec.from_args(args),
                   epochs=getattr(args, "epochs", None), rule=getattr(args, "rule", None),
                   target=getattr(args, "target", None), max_pulses=getattr(args, "max_pulses", None),
                   threshold=args.threshold, train_limit=args.train_limit, test_limit=args.test_limit,
                   checkpoint_every=getattr(args, "checkpoint_every", 100),
                   weights_run=getattr(args, "weights_run", None))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SessionConfig":
        """Read back as_dict(); a run folder written before the chip spec was
        nested (flat keys) reads the same."""
        d = dict(d)
        chip = d.pop("chip", None)
        if chip is not None:
            return cls(chip=ChipSpec(**chip), **d)
        return cls.of(**d)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def overrides(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "rule": self.rule, "target": self.target,
                "max_pulses": self.max_pulses, "threshold": self.threshold}


@dataclass(frozen=True)
class SessionResult:
    """What a session reports (result.json, `--json`)."""

    run: str
    mode: str
    app: str
    backend: str
    board: str
    firmware: str
    card: str
    geometry: str
    layout: dict[str, Any]
    seed: int
    settings: dict[str, Any]
    output_neurons: list[int]
    accuracy: float
    accuracy_per_epoch: list[float]
    baseline_accuracy: float | None
    test_samples: int
    train_samples_applied: int
    energy_fj: dict[str, float | None]
    energy_total_fj: float
    energy_per_inference_fj: dict[str, float | None]
    energy_per_training_sample_fj: dict[str, float | None] | None
    tops_per_w: dict[str, float | None]
    fj_per_op: dict[str, float | None]
    op_definitions: dict[str, str]
    counters: dict[str, int]
    link: dict[str, Any] | None
    board_resets: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def text(self) -> str:
        e = self.energy_per_inference_fj
        base = self.baseline_accuracy
        return "\n".join([
            f"{self.mode} {self.app} on {self.backend} ({self.card}, {self.geometry}): accuracy {self.accuracy:.4f}"
            + (f", float baseline {base:.4f}" if base is not None else ""),
            f"layout: {self.layout['text']}",
            "energy per inference (fJ): " + ", ".join(f"{k} {v:.1f}" for k, v in e.items() if v is not None),
            "TOPS/W: " + ", ".join(f"{k} {v:.1f}" if v else f"{k} n/a" for k, v in self.tops_per_w.items()),
            f"run folder: {self.run} (report.html)"])


@dataclass
class Progress:
    """A bar on a terminal, plain periodic lines otherwise (CI logs)."""

    total: int
    label: str
    quiet: bool = False
    t0: float = field(default_factory=time.monotonic)
    done: int = 0
    last_line: float = 0.0

    def update(self, n: int = 1, **info: Any) -> None:
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


def _app_of(cfg: SessionConfig) -> App:
    """The session's application: a built-in one, or a lab's own data file."""
    if cfg.data:
        from .apps.builtin import user_app

        return user_app(cfg.data)
    return get_app(cfg.app or "")


class _SessionLoop(loop.TrainingLoop):
    """The one training loop with the session's hooks: journal every applied
    sample, skip what a resumed run applied, checkpoint, recover."""

    def __init__(self, s: "Session", journal: list[dict[str, Any]], metrics: list[dict[str, Any]]):
        super().__init__(s.b, s.data, s.neurons, s.settings, s.cfg.chip.seed)
        self.s = s
        samples = [r for r in journal if r.get("type") == "sample"]
        self._done = {(r["epoch"], r["pos"]) for r in samples}
        self.applied = len(samples)
        self.metrics = metrics
        self.prog = Progress(len(s.data.y_train) * s.settings.epochs, "train", s.quiet)
        self.prog.done = len(self._done)
        self._samples = samples
        self._starts = {r["epoch"]: Counters(**r["counters"]) for r in journal if r.get("type") == "epoch"}
        self._link0: dict[str, int] | None = None

    def guard(self, fn: Callable[[], T]) -> T:
        return self.s._guard(fn)

    def done(self, epoch: int, pos: int) -> bool:
        return (epoch, pos) in self._done

    def epoch_done(self, epoch: int) -> bool:
        n = len(self.data.y_train)
        if all((epoch, k) in self._done for k in range(n)) and any(m["epoch"] == epoch for m in self.metrics):
            return True
        self._link0 = self.s._link_stats()
        return False

    def epoch_start(self, epoch: int) -> Counters:
        """A fresh epoch journals its starting counters; a resumed one counts from
        them and from its journaled samples, so its record equals an uninterrupted run's."""
        c0 = self._starts.get(epoch)
        if c0 is None:
            c0 = super().epoch_start(epoch)
            self._starts[epoch] = c0
            self.s._append("journal.jsonl", {"type": "epoch", "epoch": epoch, "counters": c0.as_dict()})
            return c0
        mine = [r for r in self._samples if r["epoch"] == epoch]
        self.seen = len(mine)
        self.correct = sum(int(r["predicted"] == self.neurons[r["label"]]) for r in mine)
        return c0

    def chunk_limit(self, steps: int) -> int:
        # an after_sample hook acts between samples on the board (tests reset it there): one per request
        return 1 if self.s.hooks.get("after_sample") else super().chunk_limit(steps)

    def checkpoint_due(self, applied: int) -> bool:
        return applied % self.s.cfg.checkpoint_every == 0

    def checkpoint(self, applied: int, record: loop.EpochRecord | None = None) -> None:
        self.s._checkpoint(applied, record.as_dict() if record is not None else None)

    def counters(self) -> Counters:
        return self.s._counters(self.applied)

    def on_sample(self, epoch: int, pos: int, index: int, result: TrainResult) -> None:
        d = self.data
        self.s._append("journal.jsonl", {"type": "sample", "epoch": epoch, "pos": pos, "index": index,
                                         "sample_id": loop.sample_id(epoch, len(d.y_train), pos),
                                         "label": int(d.y_train[index]), "predicted": int(result.predicted),
                                         "pulses": int(result.pulses)})
        if self.s.hooks.get("after_sample"):
            self.s.hooks["after_sample"](self.s, self.applied)
        self.prog.update(1, acc=f"{self.correct / self.seen:.3f}")

    def evaluation(self, epoch: int) -> loop.Evaluation:
        return self.s._evaluate(f"epoch {epoch}")

    def on_epoch(self, record: loop.EpochRecord) -> loop.EpochRecord:
        rec = record.as_dict()
        l1 = self.s._link_stats()
        if l1 is not None and self._link0 is not None:   # how the link fared (the only field a noisy line changes)
            rec["link"] = {k: l1[k] - self._link0[k] for k in l1}
        self.metrics.append(rec)
        self.s._append("metrics.jsonl", rec)
        self.s.log(f"epoch {record.epoch}: test accuracy {record.test_accuracy:.4f}")
        return record


def _chain(prev: str, rec: dict[str, Any]) -> str:
    """A journal record's link: the hash of the one before and of its own content."""
    body = json.dumps({k: v for k, v in rec.items() if k != "h"}, sort_keys=True)
    return hashlib.sha256((prev + body).encode()).hexdigest()[:16]


def _config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


class Session:
    def __init__(self, cfg: SessionConfig, run_dir: Path, *, quiet: bool = False,
                 hooks: dict[str, Callable[..., Any]] | None = None):
        self.cfg = cfg
        self.dir = Path(run_dir)
        self.quiet = quiet
        self.hooks = hooks or {}
        self.backend: Backend | None = None
        self.resets: list[dict[str, Any]] = []       # board resets the session recovered from
        self.recoveries = 0
        self._virtual = True
        self._jh = ""           # the journal's last link (see _chain)
        self._ac: loop.AppChip | None = None   # compiled and loaded by create's check; a resume compiles anew

    # ------------------------------------------------------------------ set-up
    @classmethod
    def create(cls, cfg: SessionConfig, run_dir: str | Path | None = None, **kw: Any) -> "Session":
        if cfg.app is None and cfg.data is None:
            raise ConfigError("give --app NAME or --data FILE")
        if run_dir is None:
            what = cfg.app or Path(cfg.data or "data").stem
            run_dir = RUNS_DIR / f"{time.strftime('%Y%m%d-%H%M%S')}-{cfg.mode}-{what}-{cfg.chip.backend}"
        run_dir = Path(run_dir)
        ac = cls.check(cfg, run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        card = ac.card
        (run_dir / "card.toml").write_text(card.text)
        config = cfg.as_dict()
        (run_dir / "config.json").write_text(json.dumps({"config": config, "config_sha256_16": _config_hash(config),
            "versions": {"spikeboard": __version__, "python": sys.version.split()[0], "numpy": np.__version__},
            "card": {"name": card.name, "sha256_16": card.hash}}, indent=2))
        s = cls(cfg, run_dir, **kw)
        s._ac = ac          # the run takes the chip and data set the check compiled and loaded
        return s

    @staticmethod
    def check(cfg: SessionConfig, out: str | Path | None) -> loop.AppChip:
        """Every input of a new session checked before its run folder is created
        (create calls it; it returns the compiled chip and the loaded data set),
        so bad input leaves nothing behind (and a rerun with the same --out works):
        the run folder, the card compiled for the app on the geometry and layout,
        the application or data file (loaded and validated; classes against the
        layout's output neurons) and, for infer --run, the folder the weights
        come from."""
        if out is not None:
            o = Path(out)
            if o.exists() and not o.is_dir():
                raise ConfigError("exists and is not a folder", field=f"--out {o}")
            if o.is_dir() and any(o.iterdir()):
                raise ConfigError(f"run folder exists and is not empty (use --resume {o})", file=o)
        if cfg.weights_run is not None:
            w = Path(cfg.weights_run)
            if not w.is_dir():
                raise ConfigError("no such run folder", field=f"--run {w}")
            if not (w / "final.img").exists() and not (w / "conductance.npy").exists():
                raise ConfigError("no final.img or conductance.npy to take weights from", file=w)
        app = _app_of(cfg)
        ac = loop.app_chip(cfg.chip, app, **cfg.overrides())   # loads the data set: a lab's file is read now
        ds, layout = ac.dataset, ac.layout
        if ds.classes > layout.neurons:
            raise ConfigError(f"labels 0..{ds.classes - 1} need {ds.classes} output neurons, the array's "
                              f"last layer has {layout.neurons} ({layout.describe()})", file=cfg.data or cfg.app,
                              field="y")
        return ac

    @classmethod
    def open(cls, run_dir: str | Path, *, port: str | None = None, faults: str | None = None,
             **kw: Any) -> "Session":
        """A run folder's session, to resume. port, faults: the link anew (the
        rest of the configuration is the one the session began with)."""
        run_dir = Path(run_dir)
        cfg_file = run_dir / "config.json"
        if not cfg_file.exists():
            raise ConfigError(f"{run_dir}: not a run folder (no config.json)")
        try:
            doc = json.loads(cfg_file.read_text())
            cfg = SessionConfig.from_dict(doc["config"])
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ConfigError(f"{cfg_file}: unreadable ({e})") from None
        if "config_sha256_16" in doc and doc["config_sha256_16"] != _config_hash(doc["config"]):
            raise ConfigError("the configuration differs from the one the session began with "
                              "(its recorded hash does not match)", file=cfg_file)
        # the card as the session used it (its own copy), under its own name, unchanged since
        card = cards.load(run_dir / "card.toml")
        want = doc.get("card", {}).get("sha256_16") if isinstance(doc.get("card"), dict) else None
        if want is not None and card.hash != want:
            raise ConfigError(f"changed since the session began (sha256 {card.hash}, config.json records {want})",
                              file=run_dir / "card.toml")
        chip = dataclasses.replace(cfg.chip, card=card, port=port or cfg.chip.port,
                                   faults=faults if faults is not None else cfg.chip.faults)
        return cls(dataclasses.replace(cfg, chip=chip), run_dir, **kw)

    def app(self) -> App:
        return _app_of(self.cfg)

    def log(self, msg: str) -> None:
        with open(self.dir / "log.txt", "a") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {msg}\n")
        if not self.quiet:
            print(msg, file=sys.stderr, flush=True)

    @property
    def b(self) -> Backend:
        if self.backend is None:
            raise SpikeboardError("session: no backend open (run() opens it)")
        return self.backend

    # ------------------------------------------------------------------ journal
    def _journal(self) -> list[dict[str, Any]]:
        """The journal's records, each checked against the hash chain: a line
        edited, duplicated or deleted breaks it and is named."""
        f = self.dir / "journal.jsonl"
        if not f.exists():
            return []
        lines = f.read_text().splitlines()
        out = []
        prev = ""
        for ln, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                if ln == len(lines):    # a line cut by a crash mid-write is the last one: drop it
                    break
                raise ConfigError(f"line {ln}: corrupted journal", file=f) from None
            if not isinstance(rec, dict) or ("h" in rec or prev) and rec.get("h") != _chain(prev, rec):
                raise ConfigError(f"line {ln}: the record does not follow the one before it (a line edited, "
                                  "duplicated or deleted)", file=f)
            prev = rec.get("h", "")
            out.append(rec)
        self._jh = prev
        return out

    def _append(self, name: str, rec: dict[str, Any]) -> None:
        if name == "journal.jsonl":     # chained to the record before it
            rec = {**rec, "h": _chain(self._jh, rec)}
            self._jh = rec["h"]
        with open(self.dir / name, "a") as f:
            f.write(json.dumps(rec) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _checkpoint(self, applied: int, metrics: dict[str, Any] | None = None) -> None:
        extra = {"metrics": metrics} if metrics is not None else {}
        if self._virtual:
            self._counters(applied)       # the image must be this session's state
        img = self.b.read_image()
        if img is None:
            self._append("journal.jsonl", {"type": "checkpoint", "applied": applied, "image": None, **extra})
            return
        d = self.dir / "checkpoints"
        d.mkdir(exist_ok=True)
        path = d / f"{applied:08d}.img"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(img)
        os.replace(tmp, path)
        self._append("journal.jsonl", {"type": "checkpoint", "applied": applied, "image": path.name,
                                       "sha256": hashlib.sha256(img).hexdigest(), **extra})

    # ------------------------------------------------------------------ run
    def run(self, *, resume: bool = False) -> SessionResult:
        """Run (or resume) the session, holding the run folder's lock throughout."""
        with self._lock():
            if resume:
                for name in ("journal.jsonl", "metrics.jsonl"):
                    self._repair_tail(name)
            return self._run(resume)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """One writer per run folder: a second process (or a second session in
        this one) is refused with the pid of the holder."""
        f = open(self.dir / ".lock", "a+")
        try:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.seek(0)
                holder = f.read().strip() or "unknown"
                raise ConfigError(f"run folder is in use by another spikeboard session (pid {holder})",
                                  file=self.dir) from None
            f.seek(0)
            f.truncate()
            f.write(str(os.getpid()))
            f.flush()
            yield
        finally:
            f.close()            # closing releases the lock

    def _repair_tail(self, name: str) -> None:
        """A line cut by a crash mid-write is the file's last: cut it off, so the
        next record starts on a line of its own."""
        f = self.dir / name
        if not f.exists():
            return
        data = f.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data[:data.rfind(b"\n") + 1]
            with open(f, "r+b") as fh:
                fh.truncate(len(keep))
                fh.flush()
                os.fsync(fh.fileno())
            self.log(f"resume: {name}: cut off a partial last line ({len(data) - len(keep)} bytes)")

    def _run(self, resume: bool) -> SessionResult:
        app = self.app()
        ac = self._ac or loop.app_chip(self.cfg.chip, app, **self.cfg.overrides())
        self.card, self.params, self.layout, self.settings = ac.card, ac.params, ac.layout, ac.settings
        self.log(f"session {self.dir.name}: {self.cfg.mode} {app.name} on {self.cfg.chip.backend}, card "
                 f"{self.card.name}, {self.layout.describe()}, seed {self.cfg.chip.seed}")
        data = loop.prepare_app(app, ac, self.cfg.chip.seed, train_limit=self.cfg.train_limit,
                                test_limit=self.cfg.test_limit)
        self.data = data
        self.log(f"data: {len(data.y_train)} train / {len(data.y_test)} test samples, {data.feature_info}; "
                 f"float baseline {data.baseline_accuracy if data.baseline_accuracy is not None else 'n/a'}")
        self.backend = open_backend_for(self.cfg.chip)
        if self.cfg.chip.faults:
            self.log(f"link faults injected: {getattr(self.backend, 'faults').spec}")
        self.neurons = self._output_map(data.classes, resume)
        try:
            info = self._connect(resume)
            if self.cfg.mode == "train":
                return self._train(app, info, resume)
            return self._infer(app, info)
        finally:
            self.b.close()

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

    def _connect(self, resume: bool) -> Any:
        b = self.b
        journal = self._journal() if resume else []
        applied = sum(1 for r in journal if r.get("type") == "sample")
        info = b.info()
        self._virtual = info.virtual
        if info.reset_reason == lib.SB_RESET_REASON_WATCHDOG:
            self.log("warning: board reset by watchdog before this session (its last reset)")
        intact = resume and self._intact(info, applied)
        if not intact:
            if resume and applied:
                self._rebuild()
            else:
                configure(b, self.params, self.layout)
            info = b.info()
        elif resume:
            self.log(f"resume: board still holds the session ({applied} samples applied)")
        return info

    def _intact(self, info: Any, applied: int) -> bool:
        """Does the board still hold this session's state (configuration, and
        on a virtual chip the count of applied samples)?"""
        want_hash = zlib.crc32(cards.params_bytes(self.params))
        if not (info.configured and info.card_hash == want_hash):
            return False
        self.b.adopt(self.params)
        return not self._virtual or self.b.counters().samples == applied

    def _rebuild(self) -> None:
        """The board lost the session: configure it again; a virtual chip gets
        the last checkpoint back and the samples journaled after it are applied
        again, with their sample ids, so the state equals an uninterrupted run's.
        A real chip kept its synapses: nothing is applied twice."""
        b, st, data = self.b, self.settings, self.data
        configure(b, self.params, self.layout)
        journal = self._journal()
        samples = [r for r in journal if r.get("type") == "sample"]
        if not self._virtual:
            self.log(f"resume: real chip keeps its synapses; {len(samples)} samples already applied")
            return
        ck = [r for r in journal if r.get("type") == "checkpoint" and r.get("image")]
        start = 0
        if ck:
            last = ck[-1]
            img = self.dir / "checkpoints" / last["image"]
            image = img.read_bytes()
            if "sha256" in last and hashlib.sha256(image).hexdigest() != last["sha256"]:
                raise ConfigError("the image differs from the one the journal recorded (changed or damaged)", file=img)
            b.write_image(image)
            start = last["applied"]
            held = b.counters().samples
            if held != start:      # the journal and its checkpoint disagree: nothing can be trusted
                raise ConfigError(f"holds the chip after {held} samples, the journal says {start}", file=img)
            self.log(f"resume: restored checkpoint after {start} samples")
        elif samples:
            self.log("resume: no checkpoint, replaying from the start")
        # replayed as the session sent them: with their labels (journaled output neuron) and ids,
        # as many per request as the link carries (the same bits as one by one)
        todo = samples[start:]
        b.train_batch([data.x_train[r["index"]] for r in todo],
                      [int(self.neurons[data.y_train[r["index"]]]) for r in todo],
                      [r["sample_id"] for r in todo], rule=st.rule, target=st.target, max_pulses=st.max_pulses)
        if todo:
            self.log(f"resume: re-applied {len(todo)} journaled samples to the restored chip")

    # ------------------------------------------------------------------ recovery
    def _guard(self, fn: Callable[[], T]) -> T:
        """Run one step of the session against the board; if the board resets
        or the link is lost meanwhile, recover (reconnect, restore, replay) and
        run the step again. A step is a single sample, a checkpoint, or a whole
        evaluation: nothing in it is journaled until it has completed."""
        while True:
            try:
                return fn()
            except (BoardReset, LinkError) as e:
                self._recover(e)

    def _recover(self, err: Exception) -> None:
        b = self.b
        if getattr(b, "link", None) is None:    # in process: no board to lose, so the run folder disagrees
            raise ConfigError(f"the chip does not hold the state the journal describes ({err})", file=self.dir)
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
        c = self.b.counters()
        if self._virtual and c.samples != applied:
            raise BoardReset(f"the board counts {c.samples} applied samples, the journal {applied}")
        return c

    def _link_stats(self) -> dict[str, Any] | None:
        link = getattr(self.backend, "link", None)
        return link.stats.as_dict() if link is not None else None

    def _train(self, app: App, info: Any, resume: bool) -> SessionResult:
        journal = self._journal() if resume else []
        metrics = self._resumed_metrics(journal) if resume else []
        if not resume or not any(r.get("type") == "checkpoint" for r in journal):
            self._guard(self._init_phase)
        _SessionLoop(self, journal, metrics).run()
        return self._guard(lambda: self._finish(app, metrics, info))

    def _resumed_metrics(self, journal: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The finished epochs' records. Each rides in the journal with its end
        checkpoint (chained, so it can be trusted); metrics.jsonl is rewritten
        from them, keeping a line's link statistics where the line still
        matches its record. A cut, damaged or missing file is made good."""
        recs = [r["metrics"] for r in journal if r.get("type") == "checkpoint" and r.get("metrics")]
        f = self.dir / "metrics.jsonl"
        old: dict[int, dict[str, Any]] = {}
        for ln in (f.read_text(errors="replace").splitlines() if f.exists() else []):
            try:
                m = json.loads(ln)
            except ValueError:
                continue
            if isinstance(m, dict) and isinstance(m.get("epoch"), int):
                old[m["epoch"]] = m
        out = []
        for r in recs:
            m = old.get(r["epoch"], {})
            same = {k: v for k, v in m.items() if k != "link"} == r and "link" in m
            out.append({**r, "link": m["link"]} if same else r)
        text = "".join(json.dumps(m) + "\n" for m in out)
        if not f.exists() or f.read_text(errors="replace") != text:
            tmp = f.with_suffix(".tmp")
            tmp.write_text(text)
            os.replace(tmp, f)
            self.log("resume: metrics.jsonl rebuilt from the journal's epoch records")
        return out

    def _init_phase(self) -> None:
        """Yield scan and class -> output neuron map (journaled, so a resumed
        run keeps it), then the array's starting weights, then checkpoint 0."""
        self.neurons = loop.output_neurons(self.b, self.data.classes)
        self._append("journal.jsonl", {"type": "neurons", "neurons": self.neurons.tolist()})
        self.log(f"yield scan: classes on output neurons {self.neurons.tolist()}")
        loop.init_array(self.b, self.cfg.chip.seed)
        self._checkpoint(0)

    def _evaluate(self, label: str) -> loop.Evaluation:
        prog = Progress(len(self.data.y_test), f"test ({label})", self.quiet)
        ev = loop.evaluate(self.b, self.data, self.neurons, prog.update)
        np.save(self.dir / "predictions.npy", ev.predictions)
        return ev

    def _infer(self, app: App, info: Any) -> SessionResult:
        b = self.b
        if self.cfg.weights_run:
            src = Path(self.cfg.weights_run)
            img = src / "final.img"
            g = src / "conductance.npy"
            if info.virtual and img.exists():
                b.write_image(img.read_bytes())
                self.log(f"weights: device image of {src}")
            elif g.exists():
                from .mapping import program_codes

                r = program_codes(b, np.load(g).ravel())
                self.log(f"weights: programmed {src}/conductance.npy with write-verify, {r.failed} cells failed")
            else:
                raise ConfigError(f"{src}: no final.img or conductance.npy to take weights from")
            b.counters(clear=True)
        ev = self._evaluate("infer")
        rec = {"epoch": None, "test_accuracy": ev.accuracy, "eval_counters": ev.counters.as_dict(),
               "train_counters": None}
        self._append("metrics.jsonl", rec)
        return self._finish(app, [rec], info)

    def _link_report(self) -> dict[str, Any] | None:
        """Link statistics of the whole session (the last process's, on resume)
        and what a fault plan injected."""
        st = self._link_stats()
        if st is None:
            return None
        inj = getattr(self.backend, "faults", None)
        return {"stats": st, "faults": str(inj.spec) if inj is not None else None,
                "injected": inj.stats.as_dict() if inj is not None else None}

    def _finish(self, app: App, metrics: list[dict[str, Any]], info: Any) -> SessionResult:
        b, data, params = self.b, self.data, self.params
        g = b.read_conductance().reshape(params.layers, *b.layer_shape)
        np.save(self.dir / "conductance.npy", g)
        img = b.read_image()
        if img is not None:
            (self.dir / "final.img").write_bytes(img)
        total = b.counters()
        (self.dir / "counters.json").write_text(json.dumps(total.as_dict(), indent=2))
        train_c = loop.sum_counters([Counters(**m["train_counters"]) for m in metrics if m.get("train_counters")])
        eval_c = Counters(**metrics[-1]["eval_counters"])
        e_total = energy_report(params, total)
        e_infer = energy_report(params, eval_c)
        e_train = energy_report(params, train_c) if train_c else None
        n_test = len(data.y_test)
        n_train = sum(m.get("train_samples", 0) for m in metrics if m.get("train_counters"))
        result = SessionResult(
            run=str(self.dir), mode=self.cfg.mode, app=app.name, backend=self.cfg.chip.backend, board=info.board,
            firmware=info.firmware, card=self.card.name,
            geometry="x".join(map(str, (*b.layer_shape, params.layers))),
            layout=self.layout.as_dict(), seed=self.cfg.chip.seed, settings=self.settings.as_dict(),
            output_neurons=self.neurons.tolist(), accuracy=metrics[-1]["test_accuracy"],
            accuracy_per_epoch=[m["test_accuracy"] for m in metrics], baseline_accuracy=data.baseline_accuracy,
            test_samples=n_test, train_samples_applied=n_train, energy_fj=e_total.energy_fj,
            energy_total_fj=e_total.total_fj,
            energy_per_inference_fj={k: (v / n_test if v is not None else None) for k, v in e_infer.energy_fj.items()},
            energy_per_training_sample_fj=({k: (v / n_train if v is not None else None)
                                            for k, v in e_train.energy_fj.items()} if e_train and n_train else None),
            tops_per_w=e_infer.tops_per_w, fj_per_op=e_infer.fj_per_op, op_definitions=e_infer.op_definitions,
            counters=total.as_dict(), link=self._link_report(),
            board_resets={"count": len(self.resets), "events": self.resets,
                          "reset_reason_at_start": info.reset_reason_name})
        (self.dir / "energy.json").write_text(json.dumps({"total": e_total.as_dict(), "inference": e_infer.as_dict(),
                                                          "training": e_train.as_dict() if e_train else None}, indent=2))
        (self.dir / "result.json").write_text(json.dumps(result.as_dict(), indent=2))
        try:
            from .report import render

            render(self.dir, data=data, backend=b)
        except SpikeboardError:
            raise
        except ImportError as e:  # matplotlib missing: the run is complete without figures
            self.log(f"report: figures skipped ({e})")
        self.log(f"done: accuracy {result.accuracy:.4f} (float baseline "
                 f"{data.baseline_accuracy if data.baseline_accuracy is not None else 'n/a'}); run folder {self.dir}")
        return result
