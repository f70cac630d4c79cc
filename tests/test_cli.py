"""The CLI end to end: outputs parsed from --json; every bad input exits 1
with a one-line message naming the problem and no traceback."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .backends import emulator_backend

SB = [sys.executable, "-m", "spikeboard.cli"]


def sb(*args, cwd=None, ok=True):
    r = subprocess.run(SB + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=600)
    if ok:
        assert r.returncode == 0, r.stderr
    return r


def js(r) -> dict:
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_help_of_every_command():
    r = sb("--help")
    for cmd in ("info", "train", "infer", "program", "report", "emulate", "flash", "bench", "cards"):
        assert cmd in r.stdout
        h = sb(cmd, "--help")
        assert "usage:" in h.stdout and len(h.stdout) > 200


def test_train_infer_report_on_model(tmp_path):
    run = tmp_path / "run"
    r = js(sb("train", "--app", "digits", "--epochs", "1", "--train-limit", "300", "--test-limit", "120",
              "--out", run, "--json", "-q"))
    assert r["schema_version"] == 1 and r["mode"] == "train"
    assert 0.0 <= r["accuracy"] <= 1.0 and r["baseline_accuracy"] > 0.8
    assert set(r["tops_per_w"]) == {"neuron", "synaptic", "mac"}
    assert set(r["energy_fj"]) >= {"neuron", "synapse_read", "synapse_potentiation", "synapse_depression", "interface"}
    assert r["accuracy"] > 0.3                       # well above chance (0.1) after one short epoch
    for f in ("config.json", "card.toml", "journal.jsonl", "metrics.jsonl", "conductance.npy", "counters.json",
              "energy.json", "log.txt", "report.html", "accuracy.png", "raster.png", "conductance.png", "energy.png"):
        assert (run / f).exists(), f
    journal = [json.loads(l) for l in (run / "journal.jsonl").read_text().splitlines()]
    ids = [j["sample_id"] for j in journal if j["type"] == "sample"]
    assert len(ids) == 300 and len(set(ids)) == 300
    # inference with the trained weights gives the training run's final accuracy
    i = js(sb("infer", "--app", "digits", "--test-limit", "120", "--run", run, "--out", tmp_path / "inf", "--json", "-q"))
    assert i["accuracy"] == r["accuracy"]
    (run / "report.html").unlink()
    rep = js(sb("report", run, "--json"))
    assert Path(rep["report"]).exists() and rep["accuracy"] == r["accuracy"]


def test_resume_of_a_finished_or_interrupted_run_continues_the_journal(tmp_path):
    run = tmp_path / "run"
    full = js(sb("train", "--app", "digits", "--epochs", "2", "--train-limit", "120", "--test-limit", "60",
                 "--checkpoint-every", "25", "--out", run, "--json", "-q"))
    g_full = np.load(run / "conductance.npy")
    # cut the journal as if the host died after 150 samples, drop the later metrics and checkpoints
    lines = (run / "journal.jsonl").read_text().splitlines()
    keep, n = [], 0
    for l in lines:
        rec = json.loads(l)
        if rec["type"] == "sample":
            n += 1
            if n > 150:
                break
        if rec["type"] == "checkpoint" and rec["applied"] > 150:
            continue
        keep.append(l)
    (run / "journal.jsonl").write_text("\n".join(keep) + "\n")
    m = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text(m[0] + "\n")
    (run / "conductance.npy").unlink()
    res = js(sb("train", "--resume", run, "--json", "-q"))
    assert np.array_equal(np.load(run / "conductance.npy"), g_full)
    assert res["accuracy"] == full["accuracy"]
    ids = [json.loads(l)["sample_id"] for l in (run / "journal.jsonl").read_text().splitlines()
           if json.loads(l)["type"] == "sample"]
    assert len(ids) == 240 and len(set(ids)) == 240


def test_program_a_weight_file(tmp_path):
    w = np.random.default_rng(0).uniform(-0.9, 0.9, (32, 10))   # headroom for the cells' window spread
    np.save(tmp_path / "w.npy", w)
    r = js(sb("program", tmp_path / "w.npy", "--card", "ecram-linear", "--json"))
    assert r["cells"] == 1024 and r["failed"] == 0 and r["rms_error_codes"] < r["tolerance"]


def test_info_cards_json():
    r = js(sb("info", "--card", "rram-nonlinear", "--geometry", "16x16x3", "--json"))
    assert r["info"]["rows"] == 16 and r["info"]["layers"] == 3
    c = js(sb("cards", "list", "--json"))
    assert {"spec", "rram-nonlinear", "ecram-linear"} <= set(c["cards"])


def test_layout_option_chooses_the_chip_layout():
    """--layout (chip group): the spec card single-ended by default, paired columns on request;
    every command states it."""
    card = js(sb("info", "--json"))["layout"]
    assert card["neurons"] == 32 and card["differential"] == [False] and card["meets_neuron_target"]
    diff = js(sb("info", "--layout", "differential", "--json"))["layout"]
    assert diff["neurons"] == 16 and diff["differential"] == [True] and not diff["meets_neuron_target"]
    assert "FAILS" in diff["text"]
    deep = js(sb("info", "--geometry", "16x16x3", "--layout", "single-ended", "--json"))["layout"]
    assert deep["total_neurons"] == 48 and deep["meets_neuron_target"]


def test_json_fields_of_the_small_commands(tmp_path):
    """The --json form of each result: schema_version, command, its fields and the text."""
    show = js(sb("cards", "show", "spec", "--json"))
    assert show["schema_version"] == 1 and show["command"] == "cards"
    assert {"card", "data", "linearity", "symmetry", "text"} <= set(show) and show["card"] == "spec"
    v = js(sb("cards", "validate", "spec", "rram-nonlinear", "--json"))
    assert v["valid"] == ["spec", "rram-nonlinear"] and v["text"] == "spec: valid\nrram-nonlinear: valid"
    ch = js(sb("characterize", "--scheme", "yield", "--out-dir", tmp_path / "ch", "--json", "-q"))
    assert {"card", "backend", "results", "layout", "text"} <= set(ch) and ch["backend"] == "model"
    assert set(ch["results"]) == {"yield"}
    plain = sb("cards", "validate", "spec")
    assert plain.stdout == "spec: valid\n"


BAD = [
    (["train", "--app", "nosuchapp"], "unknown application 'nosuchapp'"),
    (["train"], "give --app NAME or --data FILE"),
    (["train", "--app", "digits", "--card", "nosuch"], "no device card named 'nosuch'"),
    (["train", "--app", "digits", "--card", "/nonexistent/card.toml"], "card file not found"),
    (["train", "--data", "/nonexistent/data.npz"], "data file not found"),
    (["train", "--app", "digits", "--stuck", "1.5"], "--stuck 1.5"),
    (["train", "--app", "digits", "--epochs", "0"], "--epochs 0"),
    (["train", "--resume", "/nonexistent/run"], "not a run folder"),
    (["info", "--backend", "serial"], "--backend serial needs --port"),
    (["info", "--backend", "serial", "--port", "socket://127.0.0.1:1"], "cannot open socket://127.0.0.1:1"),
    (["report", "/nonexistent/run"], "no such run folder"),
    (["program", "/nonexistent/w.npy"], "weight file not found"),
    (["flash", "--board", "noboard", "--build-only"], "no board 'noboard'"),
    (["cards", "validate", "/nonexistent.toml"], "card file not found"),
    (["info", "--layout", "diagonal"], "invalid choice: 'diagonal'"),
    (["info", "--seed", "-1"], "--seed -1"),
    (["characterize", "--scheme", "yield", "--tiled", "65x20"], "--tiled 65x20: characterization measures one"),
    (["spec", "--tiled", "65x20"], "drop --tiled"),
]


@pytest.mark.parametrize("args,msg", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_arguments_exit_1_with_a_message(args, msg):
    r = sb(*args, ok=False)
    assert r.returncode == 1, r.stderr
    assert msg in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) <= 2


def test_bad_files_name_the_problem(tmp_path):
    card = tmp_path / "broken.toml"
    card.write_text("[card]\nname = 'x'\n[synapse]\ng_full_us = 'ten'\n")
    r = sb("info", "--card", card, ok=False)
    assert r.returncode == 1 and "synapse.g_full_us" in r.stderr and "must be float" in r.stderr
    card.write_text("[card\nname=")
    r = sb("info", "--card", card, ok=False)
    assert r.returncode == 1 and "broken TOML" in r.stderr
    np.savez(tmp_path / "nan.npz", X=np.array([[1.0, np.nan]] * 8), y=np.arange(8) % 2)
    r = sb("train", "--data", tmp_path / "nan.npz", ok=False)
    assert r.returncode == 1 and "NaN" in r.stderr and "nan.npz" in r.stderr
    np.savez(tmp_path / "nolabels.npz", X=np.ones((8, 3)))
    r = sb("train", "--data", tmp_path / "nolabels.npz", ok=False)
    assert r.returncode == 1 and "missing array(s) y" in r.stderr
    (tmp_path / "bad.csv").write_text("a,b,label\n1,2,0\n3,x,1\n")
    r = sb("train", "--data", tmp_path / "bad.csv", ok=False)
    assert r.returncode == 1 and "line 3, column b" in r.stderr
    np.save(tmp_path / "w.npy", np.ones((40, 10)))
    r = sb("program", tmp_path / "w.npy", ok=False)
    assert r.returncode == 1 and "float weights must be (rows <= 32" in r.stderr


@pytest.mark.emulator
def test_short_train_and_infer_on_the_emulator(tmp_path):
    emulator_backend().close()   # skips with the reason when QEMU or the firmware is missing
    run = tmp_path / "emu"
    r = js(sb("train", "--app", "digits", "--backend", "emulator", "--epochs", "1", "--train-limit", "60",
              "--test-limit", "30", "--out", run, "--json", "-q"))
    m = js(sb("train", "--app", "digits", "--backend", "model", "--epochs", "1", "--train-limit", "60",
              "--test-limit", "30", "--out", tmp_path / "model", "--json", "-q"))
    assert r["board"] == "netduinoplus2"
    assert r["accuracy"] == m["accuracy"] and r["counters"] == m["counters"]
    assert np.array_equal(np.load(run / "conductance.npy"), np.load(tmp_path / "model" / "conductance.npy"))
    i = js(sb("infer", "--app", "digits", "--backend", "emulator", "--test-limit", "30", "--run", run,
              "--out", tmp_path / "emu-inf", "--json", "-q"))
    assert i["accuracy"] == r["accuracy"]


def test_apps_tiled_reports_both_layers():
    r = js(sb("apps", "tiled", "--app", "digits", "--test-limit", "150", "--compare", "--json"))
    full, one = r["runs"]
    assert (full["rows"], full["tiles"], one["tiles"]) == (65, 3, 1)
    assert full["accuracy"] > 0.85 and full["pj_per_inference"] > one["pj_per_inference"] > 0
    r = js(sb("apps", "tiled", "--app", "digits", "--insitu", "--epochs", "2", "--test-limit", "150", "--json"))
    assert r["runs"][0]["mode"] == "in situ" and r["runs"][0]["accuracy"] > 0.85
    bad = sb("apps", "tiled", "--app", "spoken-digits", ok=False)
    assert bad.returncode != 0 and "table apps" in bad.stderr
