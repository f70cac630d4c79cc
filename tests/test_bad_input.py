"""Bad input everywhere (issue 7, part 4): device cards, data files, CLI
arguments, weight and spike files, measured CSVs. Each case drives the real CLI
(spikeboard.cli.main, model backend) and must exit 1 with ONE line on stderr
that names the file and the field (or the option), no traceback; and a bad
input must not leave files behind or damage files already written."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from spikeboard import cards
from spikeboard.cli import main

SPEC = (cards.CARD_DIR / "spec.toml").read_text()


def fails(capsys, *argv, must=()):
    """Run the CLI, expect exit 1 and one error line holding every string of `must`."""
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for m in must:
        assert str(m) in lines[0], f"{m!r} not in {lines[0]!r}"
    return lines[0]


# ---------------------------------------------------------------- device cards
def _card(tmp_path, text: str, name="card.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


CARDS = [
    ("missing field", lambda s: s.replace("g_full_us = 25.0\n", ""), "[synapse.g_full_us]", "missing required field"),
    ("missing nl", lambda s: s.replace("nl_p = 0.3 ", "#"), "[synapse.nl_p]", "missing"),
    ("out of range", lambda s: s.replace("c2c = 0.005", "c2c = 0.9"), "[synapse.c2c]", "out of range"),
    ("negative", lambda s: s.replace("fire_fj = 2.0", "fire_fj = -1.0"), "[energy.fire_fj]", "out of range"),
    ("int range", lambda s: s.replace("pulses = 64", "pulses = 1"), "[synapse.pulses]", "out of range"),
    ("not finite", lambda s: s.replace("c2c = 0.005", "c2c = nan"), "[synapse.c2c]", "finite"),
    ("inf", lambda s: s.replace("step_ns = 500.0", "step_ns = inf"), "[timing.step_ns]", "finite"),
    ("wrong type str", lambda s: s.replace("pulses = 64", 'pulses = "many"'), "[synapse.pulses]", "must be int"),
    ("wrong type bool", lambda s: s.replace("leak = 0.0", "leak = true"), "[neuron.leak]", "must be float"),
    ("wrong type table", lambda s: s.replace("differential = false", "differential = [false]"),
     "[geometry.differential]", "must be bool"),
    ("section not a table", lambda s: s + "\nfoo = 1\n", "[timing.foo]", "unknown field"),
    ("unknown key", lambda s: s.replace("leak = 0.0", "leak = 0.0\nleek = 1.0"), "[neuron.leek]", "unknown field"),
    ("unknown section", lambda s: s + "\n[extra]\na = 1\n", "[extra]", "unknown section"),
    ("bad choice", lambda s: s.replace('reset = "subtract"', 'reset = "sub"'), "[neuron.reset]", "not one of"),
    ("bad preset", lambda s: s.replace('preset = "32x32"', 'preset = "33x33"'), "[geometry.preset]", "not one of"),
    ("window order", lambda s: s.replace("g_min_us = 1.0", "g_min_us = 22.0"), "[synapse.g_min_us/g_max_us]", "g_min_us <"),
    ("g_ref outside", lambda s: s.replace("g_max_us = 21.0", "g_max_us = 21.0\ng_ref_us = 0.5"),
     "[synapse.g_ref_us]", "outside"),
    ("table too short", lambda s: s.replace('model = "exponential"', 'model = "table"\ntable_p = [1.0]\ntable_d = [3.0, 2.0, 1.0]'),
     "[synapse.table_p]", "at least 3"),
    ("table item", lambda s: s.replace('model = "exponential"', 'model = "table"\ntable_p = [1.0, 2.0, "x"]\ntable_d = [3.0, 2.0, 1.0]'),
     "[synapse.table_p]", "item 2"),
    ("table not monotone", lambda s: s.replace('model = "exponential"', 'model = "table"\ntable_p = [1.0, 3.0, 2.0]\ntable_d = [3.0, 2.0, 1.0]'),
     "[synapse.table_p]", "rise strictly"),
    ("stuck sum", lambda s: s.replace("disturb", "stuck_min = 0.6\nstuck_max = 0.6\ndisturb") if "disturb" in s
     else s.replace("endurance_shrink = 0.5", "endurance_shrink = 0.5\nstuck_min = 0.6\nstuck_max = 0.6"),
     "[synapse.stuck_*]", "more than 1"),
    ("compiled range", lambda s: s.replace("saturation = 32.0", "saturation = 30000.0"),
     "[neuron.threshold]", "interface.saturation"),
    ("broken TOML", lambda s: s.replace("[neuron]", "[neuron"), "broken TOML", "line"),
    ("duplicate key", lambda s: s.replace("leak = 0.0", "leak = 0.0\nleak = 0.1"), "broken TOML", "leak"),
    ("empty file", lambda s: "", "[card.name]", "missing required field"),
]


@pytest.mark.parametrize("name,edit,field,msg", CARDS, ids=[c[0] for c in CARDS])
def test_bad_card(tmp_path, capsys, name, edit, field, msg):
    p = _card(tmp_path, edit(SPEC))
    fails(capsys, "cards", "validate", p, must=(p, field, msg))


def test_bad_card_everywhere_a_card_is_read(tmp_path, capsys):
    p = _card(tmp_path, SPEC.replace("c2c = 0.005", "c2c = 0.9"))
    for argv in (["info", "--card", p], ["cards", "show", p],
                 ["train", "--app", "digits", "--card", p, "--out", tmp_path / "run"],
                 ["characterize", "--scheme", "yield", "--card", p, "--out-dir", tmp_path / "ch", "-q"],
                 ["cards", "fit", "--data", tmp_path, "--base", p]):
        if argv[0] == "cards" and argv[1] == "fit":
            (tmp_path / "neuron.csv").write_text("input,rate_hz\n0,0\n1,10\n2,20\n")
        fails(capsys, *argv, must=(p, "[synapse.c2c]"))
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_unreadable_card_files(tmp_path, capsys):
    b = tmp_path / "bin.toml"
    b.write_bytes(b"\xff\xfe\x00garbage")
    fails(capsys, "cards", "validate", b, must=(b, "not UTF-8"))
    fails(capsys, "cards", "validate", tmp_path, must=(tmp_path, "directory"))
    fails(capsys, "cards", "validate", tmp_path / "none.toml", must=(tmp_path / "none.toml", "not found"))
    fails(capsys, "info", "--card", "nosuchcard", must=("nosuchcard", "no device card"))


# ---------------------------------------------------------------- data files (--data)
X = np.random.default_rng(0).normal(size=(40, 5))
Y = np.arange(40) % 2


def _npz(**arrays):
    return lambda p: np.savez(p, **arrays)


def _text(t):
    return lambda p: p.write_text(t)


DATA = [
    ("X 3-D", ".npz", _npz(X=X.reshape(40, 5, 1), y=Y), "X", "shape (40, 5, 1)"),
    ("X 1-D", ".npz", _npz(X=X[:, 0], y=Y), "X", "need (samples, features)"),
    ("X strings", ".npz", _npz(X=X.astype(str), y=Y), "X", "dtype"),
    ("X bool", ".npz", _npz(X=X > 0, y=Y), "X", "dtype bool"),
    ("X complex", ".npz", _npz(X=X + 1j, y=Y), "X", "dtype complex"),
    ("X object", ".npz", lambda p: np.savez(p, X=np.array([{}] * 4, dtype=object), y=Y[:4]), "X", "cannot read"),
    ("X NaN", ".npz", _npz(X=np.where(X > 2, np.nan, X), y=Y), "X", "NaN or infinity at sample"),
    ("X inf", ".npz", _npz(X=np.where(X > 2, np.inf, X), y=Y), "X", "NaN or infinity"),
    ("empty", ".npz", _npz(X=np.zeros((0, 5)), y=np.zeros(0, int)), "X", "no samples"),
    ("no features", ".npz", _npz(X=np.zeros((40, 0)), y=Y), "X", "no features"),
    ("missing labels", ".npz", _npz(X=X), "missing array(s) y", "have X"),
    ("single class", ".npz", _npz(X=X, y=np.zeros(40, int)), "y", "only one class"),
    ("lone sample", ".npz", _npz(X=X, y=np.r_[np.zeros(39, int), 1]), "y", "single sample"),
    ("lengths differ", ".npz", _npz(X=X, y=Y[:30]), "y", "30 labels for 40 samples"),
    ("labels 2-D", ".npz", _npz(X=X, y=Y[:, None]), "y", "one column"),
    ("labels fractional", ".npz", _npz(X=X, y=Y + 0.5), "y", "whole numbers"),
    ("labels NaN", ".npz", _npz(X=X, y=np.where(Y == 1, np.nan, 0.0)), "y", "whole numbers"),
    ("labels strings", ".npz", _npz(X=X, y=Y.astype(str)), "y", "whole numbers"),
    ("labels negative", ".npz", _npz(X=X, y=Y - 1), "y", "negative label"),
    ("too many classes", ".npz", _npz(X=X, y=(np.arange(40) % 2) * 40), "y", "output neurons"),
    ("series lengths sum", ".npz", _npz(X=X, y=np.arange(4) % 2, lengths=np.array([10, 10, 10, 11])), "lengths", "sum to 41"),
    ("series lengths float", ".npz", _npz(X=X, y=np.arange(4) % 2, lengths=np.full(4, 10.0)), "lengths", "integers"),
    ("series too short", ".npz", _npz(X=X, y=np.arange(5) % 2, lengths=np.array([10, 10, 10, 10, 0])), "lengths", "at least 2 frames"),
    ("series labels", ".npz", _npz(X=X, y=np.arange(3) % 2, lengths=np.full(4, 10)), "y", "3 labels for 4 samples"),
    ("not an npz", ".npz", _text("not a zip"), "not an NPZ archive", "numpy.savez"),
    ("csv empty", ".csv", _text(""), "empty file", "header"),
    ("csv header only", ".csv", _text("a,b,label\n"), "no data rows", ""),
    ("csv no label column", ".csv", _text("a,b,c\n1,2,3\n"), "line 1", "no 'label' column"),
    ("csv not a number", ".csv", _text("a,b,label\n1,2,0\n3,x,1\n"), "line 3, column b", "not a number"),
    ("csv NaN", ".csv", _text("a,b,label\n1,nan,0\n2,3,1\n"), "line 2, column b", "not finite"),
    ("csv label text", ".csv", _text("a,b,label\n1,2,cat\n"), "line 2, column label", "not a number"),
    ("csv label fraction", ".csv", _text("a,b,label\n1,2,0.5\n"), "line 2, column label", "whole numbers"),
    ("csv short row", ".csv", _text("a,b,label\n1,2\n"), "line 2", "2 columns, the header has 3"),
    ("csv duplicate column", ".csv", _text("a,a,label\n1,2,0\n"), "line 1, column 2", "duplicate column"),
    ("csv single class", ".csv", _text("a,b,label\n" + "".join(f"{i},{i},0\n" for i in range(8))), "y", "only one class"),
    ("csv binary", ".csv", lambda p: p.write_bytes(b"\xff\xfe\x00\x01a,b\n"), "not UTF-8", ""),
    ("wrong type", ".txt", _text("hi"), "unsupported data file type '.txt'", ""),
    ("npy not npz", ".npy", lambda p: np.save(p, X), "unsupported data file type '.npy'", ""),
]


@pytest.mark.parametrize("name,ext,write,field,msg", DATA, ids=[d[0] for d in DATA])
def test_bad_data_file_leaves_no_run_folder(tmp_path, capsys, name, ext, write, field, msg):
    f = tmp_path / f"data{ext}"
    write(f)
    out = tmp_path / "run"
    fails(capsys, "train", "--data", f, "--out", out, "-q", must=(f, field, msg))
    assert not out.exists(), "bad input must be caught before the run folder is created"
    fails(capsys, "infer", "--data", f, "--out", out, "-q", must=(f, field))
    assert not out.exists()


def test_data_path_problems(tmp_path, capsys):
    fails(capsys, "train", "--data", tmp_path / "none.npz", "--out", tmp_path / "r", must=(tmp_path / "none.npz", "not found"))
    fails(capsys, "train", "--data", tmp_path, "--out", tmp_path / "r", must=(tmp_path, "directory"))
    ok = tmp_path / "ok.npz"
    np.savez(ok, X=X, y=Y)
    fails(capsys, "train", "--data", ok, "--train-limit", "1", "--out", tmp_path / "r", "-q",
          must=("--train-limit 1", "only label"))


# ---------------------------------------------------------------- CLI arguments
ARGS = [
    (["train", "--app", "nosuchapp"], ("nosuchapp", "unknown application")),
    (["train", "--app", "digits", "--geometry", "33x33"], ("--geometry", "33x33", "invalid choice")),
    (["info", "--geometry", "32"], ("--geometry", "invalid choice")),
    (["train", "--app", "digits", "--seed", "abc"], ("--seed", "abc")),
    (["train", "--app", "digits", "--seed", "-1"], ("--seed -1", "in [0, 4294967295]")),
    (["train", "--app", "digits", "--bogus"], ("unrecognized arguments", "--bogus")),
    (["nosuchcommand"], ("nosuchcommand", "invalid choice")),
    (["train", "--app", "digits", "--stuck", "1.5"], ("--stuck 1.5",)),
    (["train", "--app", "digits", "--stuck", "nan"], ("--stuck nan", "finite")),
    (["train", "--app", "digits", "--epochs", "0"], ("--epochs 0",)),
    (["train", "--app", "digits", "--max-pulses", "300"], ("--max-pulses 300", "[1, 255]")),
    (["train", "--app", "digits", "--threshold", "0"], ("--threshold 0",)),
    (["train", "--app", "digits", "--test-limit", "-3"], ("--test-limit -3",)),
    (["train", "--app", "digits", "--rule", "magic"], ("--rule", "invalid choice")),
    (["train", "--resume", "/nonexistent/run"], ("/nonexistent/run", "not a run folder")),
    (["info", "--backend", "serial"], ("--backend serial needs --port",)),
    (["info", "--backend", "serial", "--port", "foo://bar"], ("--port foo://bar", "unknown URL scheme")),
    (["info", "--backend", "serial", "--port", "socket://"], ("--port socket://", "HOST:PORT")),
    (["info", "--backend", "serial", "--port", "socket://localhost:99999"], ("--port socket://localhost:99999", "1..65535")),
    (["info", "--backend", "serial", "--port", "socket://localhost:http"], ("--port socket://localhost:http",)),
    (["info", "--backend", "serial", "--port", "/nonexistent/ttyACM9"], ("/nonexistent/ttyACM9", "cannot open")),
    (["report", "/nonexistent/run"], ("/nonexistent/run", "no such run folder")),
    (["characterize", "--scheme", "pd", "--pattern", "P64 X3", "-q"], ("--pattern", "P64 X3", "column 4")),
    (["characterize", "--scheme", "pd", "--pattern", "(P64 D64", "-q"], ("--pattern", "unclosed")),
    (["characterize", "--scheme", "pd", "--pattern", "P0 D4", "-q"], ("--pattern", "out of 1..65535")),
    (["characterize", "--scheme", "pd", "--pattern", "H16", "-q"], ("--pattern", "no P or D")),
    (["characterize", "--scheme", "pd", "--cells", "0-5000", "-q"], ("--cells", "outside the array")),
    (["characterize", "--scheme", "pd", "--cells", "a-b", "-q"], ("--cells", "cannot read")),
    (["characterize", "--scheme", "bogus"], ("--scheme", "invalid choice")),
    (["characterize", "--scheme", "retention", "--levels", "1", "-q"], ("--levels 1",)),
    (["characterize", "--scheme", "retention", "--t-max", "-1", "-q"], ("--t-max -1",)),
    (["characterize", "--scheme", "endurance", "--fraction", "2", "-q"], ("--fraction 2",)),
    (["characterize", "--scheme", "neuron", "--steps", "0", "-q"], ("--steps 0",)),
    (["cards", "show", "spec", "--geometry", "8x8"], ("--geometry", "invalid choice")),
    (["cards", "fit", "--data", "/nonexistent/dir"], ("/nonexistent/dir", "not a directory")),
    (["cards", "fit", "--data", ".", "--mode", "cubic"], ("--mode", "invalid choice")),
    (["program", "/nonexistent/w.npy"], ("/nonexistent/w.npy", "weight file not found")),
]


@pytest.mark.parametrize("argv,must", ARGS, ids=[" ".join(a) for a, _ in ARGS])
def test_bad_arguments(tmp_path, capsys, monkeypatch, argv, must):
    monkeypatch.chdir(tmp_path)       # anything a failed command wrote would land here
    fails(capsys, *argv, must=must)
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not leftovers, leftovers


def test_run_folders(tmp_path, capsys):
    notrun = tmp_path / "notrun"
    notrun.mkdir()
    fails(capsys, "report", notrun, must=(notrun, "result.json"))
    (notrun / "result.json").write_text("{broken")
    fails(capsys, "report", notrun, must=(notrun / "result.json", "not valid JSON"))
    f = tmp_path / "file"
    f.write_text("keep me")
    fails(capsys, "train", "--app", "digits", "--out", f, must=(f, "--out", "not a folder"))
    fails(capsys, "characterize", "--scheme", "yield", "--out-dir", f, "-q", must=(f, "--out-dir", "not a folder"))
    assert f.read_text() == "keep me"
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "result.json").write_text("precious")
    fails(capsys, "train", "--app", "digits", "--out", busy, must=(busy, "not empty"))
    assert (busy / "result.json").read_text() == "precious" and len(list(busy.iterdir())) == 1
    fails(capsys, "infer", "--app", "digits", "--run", notrun, "--out", tmp_path / "inf",
          must=(notrun, "final.img or conductance.npy"))
    fails(capsys, "infer", "--app", "digits", "--run", tmp_path / "none", "--out", tmp_path / "inf",
          must=(tmp_path / "none", "--run", "no such run folder"))
    assert not (tmp_path / "inf").exists()
    bad = tmp_path / "badcfg"
    bad.mkdir()
    (bad / "config.json").write_text('{"config": {"mode": "train", "nonsense": 1}}')
    fails(capsys, "train", "--resume", bad, must=(bad / "config.json", "unreadable"))


# ---------------------------------------------------------------- weight files (program)
WEIGHTS = [
    ("3-D floats", lambda p: np.save(p, np.full((2, 32, 16), 0.1)), "float weights must be (rows <= 32"),
    ("too many rows", lambda p: np.save(p, np.zeros((40, 10))), "float weights must be (rows <= 32"),
    ("NaN", lambda p: np.save(p, np.where(np.eye(32, 16) > 0, np.nan, 0.0)), "weight [0, 0] = nan"),
    ("out of [-1, 1]", lambda p: np.save(p, np.pad(np.full((1, 1), 2.0), ((3, 0), (4, 0)))), "weight [3, 4] = 2"),
    ("code count", lambda p: np.save(p, np.ones(10, np.uint16)), "10 conductance codes"),
    ("negative code", lambda p: np.save(p, np.r_[np.ones(1023, np.int32), -1]), "code [1023] = -1"),
    ("code too big", lambda p: np.save(p, np.full(1024, 70000, np.int64)), "code [0] = 70000"),
    ("bool", lambda p: np.save(p, np.ones((32, 16), bool)), "dtype bool"),
    ("strings", lambda p: np.save(p, np.array(["a", "b"])), "dtype <U1"),
    ("complex", lambda p: np.save(p, np.ones((32, 16), complex)), "dtype complex128"),
    ("empty", lambda p: np.save(p, np.zeros((0, 0))), "empty array"),
    ("object", lambda p: np.save(p, np.array([{}], dtype=object), allow_pickle=True), "not a readable .npy"),
    ("not npy", lambda p: p.write_text("junk"), "not a .npy file"),
    ("npz", lambda p: np.savez(p.with_suffix(""), w=np.zeros(3)) or p.with_suffix(".npz").rename(p), "is an .npz archive"),
    ("truncated", lambda p: (np.save(p, np.zeros((32, 16))), p.write_bytes(p.read_bytes()[:200])), "not a readable .npy"),
]


@pytest.mark.parametrize("name,write,msg", WEIGHTS, ids=[w[0] for w in WEIGHTS])
def test_bad_weight_file(tmp_path, capsys, name, write, msg):
    p = tmp_path / "w.npy"
    write(p)
    fails(capsys, "program", p, must=(p, msg))


def test_bad_program_options(tmp_path, capsys):
    p = tmp_path / "w.npy"
    np.save(p, np.zeros((32, 16)))
    fails(capsys, "program", p, "--layer", "5", must=("--layer 5", "layers 0..0"))
    fails(capsys, "program", p, "--max-pulses", "0", must=("--max-pulses 0", "[1, 255]"))
    fails(capsys, "program", p, "--tolerance", "-1", must=("--tolerance -1",))
    fails(capsys, "program", tmp_path, must=(tmp_path, "directory"))


# ---------------------------------------------------------------- --input spikes of infer --nir
@pytest.fixture(scope="module")
def nir_graph(tmp_path_factory):
    nir = pytest.importorskip("nir")
    d = tmp_path_factory.mktemp("nir")
    w = np.random.default_rng(1).uniform(-0.5, 0.5, (4, 8))
    g = nir.NIRGraph.from_list(nir.Affine(weight=w, bias=np.zeros(4)),
                               nir.IF(r=np.ones(4), v_threshold=np.ones(4)))
    path = d / "g.nir"
    try:
        nir.write(path, g)
    except Exception as e:   # pragma: no cover - nir's writer needs h5py
        pytest.skip(f"cannot write a NIR file: {e}")
    return path


SPIKES = [
    ("wrong inputs", lambda p: np.save(p, np.zeros((10, 5), np.uint8)), "last axis has 5 inputs"),
    ("1-D", lambda p: np.save(p, np.zeros(8, np.uint8)), "need (steps, inputs)"),
    ("NaN", lambda p: np.save(p, np.where(np.eye(10, 8) > 0, np.nan, 0.0)), "element [0, 0] = nan"),
    ("negative", lambda p: np.save(p, -np.ones((10, 8))), "whole numbers"),
    ("too many steps", lambda p: np.save(p, np.zeros((5000, 8), np.uint8)), "at most"),
    ("not npy", lambda p: p.write_text("junk"), "not a .npy file"),
]


@pytest.mark.parametrize("name,write,msg", SPIKES, ids=[s[0] for s in SPIKES])
def test_bad_input_spikes(tmp_path, capsys, nir_graph, name, write, msg):
    p = tmp_path / "x.npy"
    write(p)
    line = fails(capsys, "infer", "--nir", nir_graph, "--input", p, "-q", must=(p, msg))
    if "not a .npy" in msg:
        assert "input spike file" in line


def test_missing_input_spikes(tmp_path, capsys, nir_graph):
    fails(capsys, "infer", "--nir", nir_graph, "--input", tmp_path / "none.npy", must=(tmp_path / "none.npy", "not found"))


# ---------------------------------------------------------------- measured CSVs (cards fit)
PD = ("# pd\ncell,cycle,branch,pulse,g_us\n"
      + "".join(f"0,0,P,{i},{2 + i}\n" for i in range(5))
      + "".join(f"0,0,D,{i},{6 - i}\n" for i in range(5)))
RET = "cell,level,time_s,g_us\n" + "".join(f"{c},{c},{t},{5 + c - 0.1 * k}\n" for k, t in enumerate((0, 10, 100, 1000))
                                            for c in (0, 1))
END = "cell,pulses,g_high_us,g_low_us\n" + "".join(f"0,{n},20,2\n" for n in (100, 1000, 10000, 100000))

FITS = [
    ("missing column", "pd.csv", PD.replace("g_us", "g"), "line 2", "lacks column(s) g_us"),
    ("wrong header", "pd.csv", PD.replace("cell,cycle,branch,pulse,g_us\n", ""), "line 2, column 1", "header line missing"),
    ("non-numeric", "pd.csv", PD.replace("0,0,P,2,4", "0,0,P,2,abc"), "line 5, column 5 (g_us)", "not a number"),
    ("NaN cell", "pd.csv", PD.replace("0,0,P,2,4", "0,0,P,2,nan"), "line 5, column 5 (g_us)", "not finite"),
    ("negative", "pd.csv", PD.replace("0,0,P,2,4", "0,0,P,2,-4"), "line 5, column 5 (g_us)", "negative"),
    ("bad branch", "pd.csv", PD.replace("0,0,P,2,4", "0,0,Q,2,4"), "line 5, column 3 (branch)", "not P, D or H"),
    ("short row", "pd.csv", PD.replace("0,0,P,2,4", "0,0,P,2"), "line 5", "4 fields, the header has 5"),
    ("repeated pulse", "pd.csv", PD.replace("0,0,P,3,5", "0,0,P,2,5"), "line 6, column 4 (pulse)", "repeats line 5"),
    ("pulse gap", "pd.csv", PD.replace("0,0,P,3,5\n", ""), "column pulse", "without gaps"),
    ("one branch", "pd.csv", "".join(l + "\n" for l in PD.splitlines() if ",D," not in l), "column branch", "both P and D"),
    ("empty file", "pd.csv", "", "line 1", "empty file"),
    ("header only", "pd.csv", "cell,cycle,branch,pulse,g_us\n", "line 2", "no data rows"),
    ("duplicate column", "pd.csv", PD.replace("cell,cycle", "cell,cell"), "line 2, column 2", "duplicate column"),
    ("time goes back", "retention.csv", RET.replace("0,0,100,", "0,0,1,"), "column 3 (time_s)", "goes back"),
    ("too few times", "retention.csv", "".join(RET.splitlines(True)[:5]), "column time_s", "at least 3"),
    ("pulses go back", "endurance.csv", END.replace("0,10000,", "0,10,"), "line 4, column 2 (pulses)", "goes back"),
    ("few checkpoints", "endurance.csv", "".join(END.splitlines(True)[:3]), "column pulses", "at least 3"),
    ("bad metadata", "neuron.csv", "# step_ns = fast\ninput,rate_hz\n0,0\n1,5\n", "step_ns", "not a number"),
    ("binary", "pd.csv", b"\xff\xfe\x00\x01", "pd.csv", "not UTF-8"),
]


@pytest.mark.parametrize("name,fname,content,field,msg", FITS, ids=[f[0] for f in FITS])
def test_bad_measured_csv_keeps_the_old_card(tmp_path, capsys, name, fname, content, field, msg):
    f = tmp_path / fname
    f.write_bytes(content) if isinstance(content, bytes) else f.write_text(content)
    out = tmp_path / "out.toml"
    out.write_text("# a card fitted earlier\n")
    fails(capsys, "cards", "fit", "--data", tmp_path, "-o", out, must=(f, field, msg))
    assert out.read_text() == "# a card fitted earlier\n", "a failed fit must not touch the output card"
    assert not out.with_suffix(".png").exists() and not list(tmp_path.glob("*.tmp"))


def test_good_csvs_still_fit(tmp_path, capsys):
    """The checks reject only bad files: the small files above, unmodified, fit."""
    for name, text in (("pd.csv", PD), ("retention.csv", RET), ("endurance.csv", END)):
        (tmp_path / name).write_text(text)
    assert main(["cards", "fit", "--data", str(tmp_path), "-o", str(tmp_path / "c.toml"), "-q"]) == 0, \
        capsys.readouterr().err
    cards.load(tmp_path / "c.toml")


def test_debug_shows_the_traceback(tmp_path, capsys):
    p = _card(tmp_path, SPEC.replace("c2c = 0.005", "c2c = 0.9"))
    assert main(["cards", "validate", str(p), "--debug"]) == 1
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.parametrize("spec,backend,must", [
    ("bogus", "emulator", ("--faults", "bogus")),
    ("corrupt=x", "emulator", ("--faults",)),
    ("flip=0.1", "emulator", ("--faults", "flip")),
    ("corrupt=0.01", "model", ("--faults", "need a link")),
])
def test_bad_fault_spec(capsys, tmp_path, spec, backend, must):
    out = tmp_path / "run"
    fails(capsys, "train", "--app", "digits", "--backend", backend, "--faults", spec, "--out", str(out), must=must)
    assert not out.exists()


def test_labels_and_values_out_of_range_fail_before_the_run_folder(tmp_path, capsys):
    """Issue 21, point 6: a uint64 label >= 2^63 (it wrapped negative), a CSV label of
    1e30 (an internal error) and features near 1e300 (they trained to accuracy 0,
    exit 0) are refused up front, naming the value, and leave no run folder."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    y = (np.arange(40) % 2).astype(np.uint64)
    y[3] = 2**63 + 5
    np.savez(tmp_path / "big.npz", X=X, y=y)
    fails(capsys, "train", "--data", tmp_path / "big.npz", "--out", tmp_path / "o1",
          must=("big.npz: y:", "label 9223372036854775813 at sample 3 is out of range"))
    rows = "".join(f"{a},{b},{k % 2 if k != 4 else '1e30'}\n" for k, (a, b) in enumerate(rng.normal(size=(40, 2))))
    (tmp_path / "big.csv").write_text("a,b,label\n" + rows)
    fails(capsys, "train", "--data", tmp_path / "big.csv", "--out", tmp_path / "o2",
          must=("big.csv: line 6, column label:", "'1e30'", "at most 2147483647"))
    np.savez(tmp_path / "huge.npz", X=X * 1e300, y=np.arange(40) % 2)
    fails(capsys, "train", "--data", tmp_path / "huge.npz", "--out", tmp_path / "o3",
          must=("huge.npz: X:", "too large", "rescale"))
    assert not any((tmp_path / o).exists() for o in ("o1", "o2", "o3"))


def test_smaller_reliability_defects(tmp_path, capsys):
    """Issue 21, point 9: options given with --resume were silently ignored; a device
    or deeply nested TOML as a card hung or crashed; --stuck 1 blamed the card."""
    run = tmp_path / "run"
    assert main(["train", "--app", "digits", "--train-limit", "30", "--test-limit", "10", "--epochs", "1",
                 "--out", str(run), "-q"]) == 0
    capsys.readouterr()
    fails(capsys, "train", "--resume", run, "--epochs", "3", "--seed", "2",
          must=("--resume:", "only --port and --faults may change", "--seed", "--epochs"))
    fails(capsys, "cards", "validate", "/dev/zero", must=("/dev/zero", "not a regular file"))
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 50000 + "]" * 50000 + "\n")
    fails(capsys, "cards", "validate", deep, must=("deep.toml", "nested too deeply"))
    fails(capsys, "train", "--app", "digits", "--stuck", "1", "--out", tmp_path / "s",
          must=("--stuck 1:", "no working cell"))
    assert not (tmp_path / "s").exists()
