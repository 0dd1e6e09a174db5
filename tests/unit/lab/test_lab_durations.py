"""The lab's lane planning: durations from the committed seed, overridden by this checkout's runs."""

from __future__ import annotations

import json

from lab import pytest_plugin as P


def test_the_seed_plans_a_fresh_clone_and_the_last_run_overrides_it(tmp_path, monkeypatch):
    seed, local = tmp_path / "seed.json", tmp_path / "state" / "durations.json"
    seed.write_text(json.dumps({"a.py::t1": 800, "b.py::t2": 5}))
    monkeypatch.setattr(P, "SEED_DURATIONS_FILE", seed)
    monkeypatch.setattr(P, "DURATIONS_FILE", local)
    assert P._load_durations() == {"a.py::t1": 800.0, "b.py::t2": 5.0}
    local.parent.mkdir()
    local.write_text(json.dumps({"a.py::t1": 300}))
    assert P._load_durations() == {"a.py::t1": 300.0, "b.py::t2": 5.0}


def test_a_broken_durations_file_counts_as_none(tmp_path, monkeypatch):
    for text in ("{not json", "[1, 2]", '{"a": "slow"}'):
        (tmp_path / "seed.json").write_text(text)
        monkeypatch.setattr(P, "SEED_DURATIONS_FILE", tmp_path / "seed.json")
        monkeypatch.setattr(P, "DURATIONS_FILE", tmp_path / "none.json")
        assert P._load_durations() == {}


def test_saving_keeps_this_checkouts_figures_apart_from_the_seed(tmp_path, monkeypatch):
    seed, local = tmp_path / "seed.json", tmp_path / "durations.json"
    seed.write_text(json.dumps({"seed.py::t": 9}))
    monkeypatch.setattr(P, "SEED_DURATIONS_FILE", seed)
    monkeypatch.setattr(P, "DURATIONS_FILE", local)
    job = P.Job("j", ["x.py::t"], 1.0)
    job.outcomes["x.py::t"] = P.Outcome("passed", duration=12.5)
    P._save_durations([job])
    assert json.loads(local.read_text()) == {"x.py::t": 12.5}
