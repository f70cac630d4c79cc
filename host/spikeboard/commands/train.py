"""spikeboard train: an on-device training session."""
from __future__ import annotations

from pathlib import Path

from ..session import Session, SessionConfig
from ..errors import ConfigError

#: ranges of the session options (checked by cli.check_options before anything runs)
LIMITS = {"stuck": (0.0, 1.0), "train_limit": (1, None), "test_limit": (1, None), "epochs": (1, None),
          "max_pulses": (1, 255), "target": (0, 65535), "checkpoint_every": (1, None),
          "threshold": (0.01, 30000.0)}


def add_session_options(p, mode: str) -> None:
    g = p.add_argument_group("session")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--app", help="built-in application (spikeboard apps list)")
    src.add_argument("--data", help="your own data set: NPZ (X, y) or CSV with a 'label' column")
    g.add_argument("--stuck", type=float, default=0.0, help="add this fraction of stuck cells (half at Gmin, half at Gmax)")
    g.add_argument("--train-limit", type=int, help="use only the first N training samples")
    g.add_argument("--test-limit", type=int, help="use only the first N test samples")
    g.add_argument("--threshold", type=float, help="neuron threshold in full conductance windows (default: the app's)")
    g.add_argument("--out", help="run folder (default runs/<time>-<mode>-<app>-<backend>)")
    g.add_argument("--faults", metavar="SPEC",
                   help="inject link faults to test a set-up, e.g. corrupt=0.01,drop=0.005,seed=1 "
                        "(also dup, delay, delay_ms, dir=both|tx|rx); emulator and serial backends")
    if mode == "train":
        g.add_argument("--epochs", type=int, help="epochs (default: the app's)")
        g.add_argument("--rule", choices=("sign", "stochastic", "stdp", "compensated", "dfa"),
                       help="learning rule (dfa: every layer, for 16x16x3)")
        g.add_argument("--target", type=int, help="fires wanted from the label neuron per sample")
        g.add_argument("--max-pulses", type=int, help="most pulses per synapse per sample")
        g.add_argument("--checkpoint-every", type=int, default=100, help="samples between chip checkpoints")
        g.add_argument("--resume", metavar="RUN", help="resume an interrupted session from its run folder")
    else:
        g.add_argument("--run", dest="weights_run", help="take the weights from this training run")


def register(sub, common):
    p = sub.add_parser("train", parents=[common["chip"], common["out"]],
                       help="on-device training session of an application",
                       description="Stream an application's training samples to the chip; the board runs "
                                   "the forward pass, forms the error and applies the learning rule's pulses "
                                   "itself. Writes a run folder with journal, checkpoints, metrics, energy, "
                                   "report.html and figures. --resume RUN continues an interrupted session.")
    add_session_options(p, "train")
    return p


def _cfg(args, mode: str) -> SessionConfig:
    return SessionConfig(mode=mode, app=args.app, data=args.data, backend=args.backend, port=args.port,
                         board=args.board, card=args.card, geometry=args.geometry, seed=args.seed,
                         stuck=args.stuck or 0.0, epochs=getattr(args, "epochs", None),
                         rule=getattr(args, "rule", None), target=getattr(args, "target", None),
                         max_pulses=getattr(args, "max_pulses", None), threshold=args.threshold,
                         train_limit=args.train_limit, test_limit=args.test_limit,
                         checkpoint_every=getattr(args, "checkpoint_every", 100),
                         weights_run=getattr(args, "weights_run", None), faults=_faults(args))


def _faults(args):
    if not getattr(args, "faults", None):
        return None
    from ..faults import FaultSpec

    if args.backend == "model":
        raise ConfigError("link faults need a link: use --backend emulator or serial", field="--faults")
    FaultSpec.parse(args.faults)          # a bad spec fails here, before a run folder exists
    return args.faults


def run(args):
    if args.resume:
        s = Session.open(args.resume, quiet=args.quiet)
        result = s.run(resume=True)
    else:
        if not args.app and not args.data:
            raise ConfigError("give --app NAME or --data FILE (or --resume RUN)")
        cfg = _cfg(args, "train")
        precheck(cfg, args.out)
        s = Session.create(cfg, args.out, quiet=args.quiet)
        result = s.run()
    return {**result, "text": _summary(result)}


def precheck(cfg: SessionConfig, out) -> None:
    """Every input of a new session checked before its run folder is created, so
    bad input leaves nothing behind (and a rerun with the same --out works):
    the run folder, the card compiled for the geometry, the application or data
    file (loaded and validated; classes against the array's output neurons) and,
    for infer --run, the folder the weights come from."""
    from .. import cards
    from .._hal import lib
    from ..apps import get_app

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
    if cfg.data is not None:
        from ..apps.builtin import user_app

        app = user_app(cfg.data)
    else:
        app = get_app(cfg.app)
    threshold = cfg.threshold if cfg.threshold is not None else app.threshold
    params = cards.compile_card(cards.load(cfg.card), cfg.geometry, seed=cfg.seed, stuck=cfg.stuck,
                                neuron={"threshold": threshold})
    if cfg.data is not None:    # built-in data sets are known good; a lab's file is read now
        ds = app.load(cfg.seed)
        neurons = lib.sb_params_neurons(params, params.layers - 1)
        if ds.classes > neurons:
            raise ConfigError(f"labels 0..{ds.classes - 1} need {ds.classes} output neurons, the array's "
                              f"last layer has {neurons}", file=cfg.data, field="y")


def _summary(r: dict) -> str:
    e = r["energy_per_inference_fj"]
    tops = r["tops_per_w"]
    base = r["baseline_accuracy"]
    lines = [f"{r['mode']} {r['app']} on {r['backend']} ({r['card']}, {r['geometry']}): accuracy {r['accuracy']:.4f}"
             + (f", float baseline {base:.4f}" if base is not None else ""),
             "energy per inference (fJ): " + ", ".join(f"{k} {v:.1f}" for k, v in e.items() if v is not None),
             "TOPS/W: " + ", ".join(f"{k} {v:.1f}" if v else f"{k} n/a" for k, v in tops.items()),
             f"run folder: {r['run']} (report.html)"]
    return "\n".join(lines)
