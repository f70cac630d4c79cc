"""Resuming a session (issue 21, points 1-3): an interrupted epoch's figures,
the run folder's lock, a cut-off journal tail and a checkpoint that disagrees
with its journal. The model backend: the session is killed from a hook between
samples (the journal is then as a kill would leave it), and resumed in a new
Session as `spikeboard train --resume` does."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from spikeboard.errors import ConfigError
from spikeboard.session import Session, SessionConfig

KW = dict(app="digits", seed=5, train_limit=120, test_limit=30, epochs=2, checkpoint_every=25)


class Killed(Exception):
    pass


def _kill_at(n):
    def hook(s, applied):
        if applied == n:
            raise Killed(f"killed after {n} samples")
    return {"after_sample": hook}


def _uninterrupted(tmp_path):
    s = Session.create(SessionConfig.of(**KW), tmp_path / "clean", quiet=True)
    return s.dir, s.run()


def _killed(tmp_path, name, at):
    s = Session.create(SessionConfig.of(**KW), tmp_path / name, quiet=True, hooks=_kill_at(at))
    with pytest.raises(Killed):
        s.run()
    return s.dir


def _lines(d, name):
    return [json.loads(ln) for ln in (d / name).read_text().splitlines()]


def _same_figures(a, b):
    assert _lines(a, "metrics.jsonl") == _lines(b, "metrics.jsonl")
    assert json.loads((a / "energy.json").read_text()) == json.loads((b / "energy.json").read_text())
    for f in ("conductance.npy", "counters.json", "predictions.npy", "final.img"):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    ra, rb = json.loads((a / "result.json").read_text()), json.loads((b / "result.json").read_text())
    assert {k: v for k, v in ra.items() if k != "run"} == {k: v for k, v in rb.items() if k != "run"}


@pytest.mark.parametrize("at", [37, 160])          # inside epoch 0 (after checkpoint 25), inside epoch 1
def test_resume_inside_an_epoch_gives_the_uninterrupted_figures(tmp_path, at):
    clean, r = _uninterrupted(tmp_path)
    d = _killed(tmp_path, "killed", at)
    Session.open(d, quiet=True).run(resume=True)
    _same_figures(d, clean)
    m = _lines(d, "metrics.jsonl")
    assert [x["train_samples"] for x in m] == [120, 120]


def test_second_writer_is_refused_with_the_holders_pid(tmp_path):
    seen = {}

    def hook(s, applied):
        if applied == 10:
            with pytest.raises(ConfigError, match=r"in use by another spikeboard session \(pid \d+\)") as e:
                Session.open(s.dir, quiet=True).run(resume=True)
            seen["msg"] = str(e.value)
    s = Session.create(SessionConfig.of(**{**KW, "epochs": 1}), tmp_path / "run", quiet=True,
                       hooks={"after_sample": hook})
    s.run()
    assert str(s.dir) in seen["msg"]
    Session.open(s.dir, quiet=True).run(resume=True)        # released once the first session ended


def test_cut_off_journal_tail_is_repaired_on_every_resume(tmp_path):
    clean, _ = _uninterrupted(tmp_path)
    d = _killed(tmp_path, "killed", 30)
    with open(d / "journal.jsonl", "a") as f:
        f.write('{"type": "sample", "epoch": 0, "po')          # a write cut by the kill
    s = Session.open(d, quiet=True, hooks=_kill_at(70))
    with pytest.raises(Killed):
        s.run(resume=True)
    with open(d / "journal.jsonl", "a") as f:
        f.write('{"type": "chec')
    Session.open(d, quiet=True).run(resume=True)
    assert all(ln.startswith("{") and ln.endswith("}") for ln in (d / "journal.jsonl").read_text().splitlines())
    _same_figures(d, clean)


def test_checkpoint_that_disagrees_with_the_journal_is_named(tmp_path):
    d = _killed(tmp_path, "killed", 60)
    ck = sorted((d / "checkpoints").glob("*.img"))
    assert [c.name for c in ck][-2:] == ["00000025.img", "00000050.img"]
    shutil.copy(ck[-2], ck[-1])                                 # the newest image is an older state
    with pytest.raises(ConfigError, match=r"00000050\.img: the image differs from the one the journal recorded"):
        Session.open(d, quiet=True).run(resume=True)


def test_resume_writes_no_record_twice(tmp_path):
    d = _killed(tmp_path, "killed", 37)
    Session.open(d, quiet=True).run(resume=True)
    j = _lines(d, "journal.jsonl")
    samples = [(r["epoch"], r["pos"]) for r in j if r["type"] == "sample"]
    assert len(samples) == len(set(samples)) == 240
    assert [r["epoch"] for r in j if r["type"] == "epoch"] == [0, 1]
    assert np.load(d / "conductance.npy").shape == (1, 32, 32)


# ---------------------------------------------------------------- run folders that cannot lie (point 4)
def _tampered(tmp_path, name, change):
    d = _killed(tmp_path, name, 60)
    change(d)
    return d


def _flip_bit(f, at=100):
    b = bytearray(f.read_bytes())
    b[at] ^= 0x10
    f.write_bytes(bytes(b))


def _edit_lines(d, edit):
    f = d / "journal.jsonl"
    lines = f.read_text().splitlines()
    f.write_text("\n".join(edit(lines)) + "\n")


def _samples_at(lines):
    return [k for k, ln in enumerate(lines) if '"type": "sample"' in ln]


def _set_seed(d, seed):
    f = d / "config.json"
    doc = json.loads(f.read_text())
    doc["config"]["chip"]["seed"] = seed
    f.write_text(json.dumps(doc))


TAMPERING = {
    "checkpoint bit": (lambda d: _flip_bit(d / "checkpoints" / "00000050.img"),
                       r"00000050\.img: the image differs from the one the journal recorded"),
    "sample line duplicated": (lambda d: _edit_lines(d, lambda ls: ls[:_samples_at(ls)[40] + 1] + ls[_samples_at(ls)[40]:]),
                               r"journal\.jsonl: line \d+: the record does not follow the one before it"),
    "sample line deleted": (lambda d: _edit_lines(d, lambda ls: [ln for k, ln in enumerate(ls) if k != _samples_at(ls)[30]]),
                            r"journal\.jsonl: line \d+: the record does not follow the one before it"),
    "sample line edited": (lambda d: _edit_lines(d, lambda ls: [ln.replace('"predicted": ', '"predicted": 1') if k == _samples_at(ls)[5]
                                                                else ln for k, ln in enumerate(ls)]),
                           r"journal\.jsonl: line \d+: the record does not follow"),
    "card edited": (lambda d: (d / "card.toml").write_text((d / "card.toml").read_text().replace("c2c = 0.005", "c2c = 0.006")),
                    r"card\.toml: changed since the session began"),
    "seed changed": (lambda d: _set_seed(d, 6), r"config\.json: the configuration differs"),
}


@pytest.mark.parametrize("what", list(TAMPERING))
def test_tampered_run_folder_is_refused_naming_the_file(tmp_path, what):
    change, msg = TAMPERING[what]
    d = _tampered(tmp_path, "run", change)
    with pytest.raises(ConfigError, match=msg):
        Session.open(d, quiet=True).run(resume=True)


def test_untampered_folder_still_resumes_after_the_checks(tmp_path):
    clean, _ = _uninterrupted(tmp_path)
    d = _tampered(tmp_path, "run", lambda d: None)
    Session.open(d, quiet=True).run(resume=True)
    _same_figures(d, clean)
