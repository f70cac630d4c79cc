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


#: files that differ by design: the log tells the resume; the report and result name their folder
OWN = {"log.txt", "report.html", "result.json", ".lock"}


def _same_figures(a, b):
    """Every file of the run folder byte-equal to the uninterrupted run's (journal,
    checkpoints, metrics, energy, counters, conductances, predictions, figures), but OWN."""
    files = sorted(str(f.relative_to(a)) for f in a.rglob("*") if f.is_file())
    assert files == sorted(str(f.relative_to(b)) for f in b.rglob("*") if f.is_file())
    for f in files:
        if f == "metrics.jsonl":        # over a link, each epoch also records the traffic the link saw
            strip = lambda d: [{k: v for k, v in m.items() if k != "link"} for m in _lines(d, f)]  # noqa: E731
            assert strip(a) == strip(b), f
        elif f not in OWN:
            assert (a / f).read_bytes() == (b / f).read_bytes(), f
    ra, rb = json.loads((a / "result.json").read_text()), json.loads((b / "result.json").read_text())
    mine = {"run", "link"}           # its folder; over a link, the traffic the last process saw
    assert {k: v for k, v in ra.items() if k not in mine} == {k: v for k, v in rb.items() if k not in mine}


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


# ---------------------------------------------------------------- kills anywhere, both backends
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_REFERENCE: dict[str, object] = {}


def _reference(tmp_path_factory, backend, **kw):
    key = f"{backend}{sorted(kw.items())}"
    if key not in _REFERENCE:
        d = tmp_path_factory.mktemp("clean")
        Session.create(SessionConfig.of(**{**KW, **kw}, backend=backend), d / "run", quiet=True).run()
        _REFERENCE[key] = d / "run"
    return _REFERENCE[key]


def _kill_and_resume(d, backend, at, **kw):
    s = Session.create(SessionConfig.of(**{**KW, **kw}, backend=backend), d, quiet=True, hooks=_kill_at(at))
    with pytest.raises(Killed):
        s.run()
    Session.open(d, quiet=True).run(resume=True)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(at=st.integers(1, 239))
def test_a_kill_at_any_sample_resumes_to_the_same_folder_model(tmp_path_factory, at):
    clean = _reference(tmp_path_factory, "model")
    d = tmp_path_factory.mktemp("killed") / "run"
    _kill_and_resume(d, "model", at)
    _same_figures(d, clean)


@pytest.mark.emulator
@pytest.mark.parametrize("at", [13, 47])   # epoch 0 before checkpoint 25 (replay from 0); epoch 1 after it
def test_a_kill_on_the_emulated_board_resumes_to_the_same_folder(tmp_path_factory, at):
    from tests.backends import emulator_backend

    emulator_backend().close()                    # skips with the reason when QEMU or the firmware is missing
    kw = dict(train_limit=30, test_limit=8)
    clean = _reference(tmp_path_factory, "emulator", **kw)
    d = tmp_path_factory.mktemp("killed") / "run"
    _kill_and_resume(d, "emulator", at, **kw)
    _same_figures(d, clean)
