"""One place computes a file's digest (tunesmith.digests): a task's data fingerprint and the file a trial-code
re-tune was tuned on each streamed their own SHA-256, sharing no code. The digests recorded before still match:
the fingerprint pinned in test_data_read_once, and the lineage's data_digest of a real re-tune."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import tunesmith.digests
from tests.test_data_read_once import CSV, RECORDED
from tunesmith.drift import file_digest, tuned_on
from tunesmith.runner import run_experiment
from tunesmith.spec.loader import load_spec
from tunesmith.spec.task_config import DataConfig
from tunesmith.storage.sql import SQLStore
from tunesmith.tasks.data import _cache, load_dataset


def test_the_data_fingerprint_and_the_retune_digest_are_one_computation(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _cache.clear()
    path = tmp_path / "d.csv"
    path.write_bytes(CSV)
    digested: list[str] = []
    real = tunesmith.digests.HashingReader.digest

    def counting(self: Any) -> str:
        digested.append(real(self))
        return digested[-1]

    monkeypatch.setattr(tunesmith.digests.HashingReader, "digest", counting)
    assert load_dataset(DataConfig(path=str(path), target="label")).content_hash == RECORDED["content_hash"]
    assert file_digest(path) == RECORDED["content_hash"]
    assert digested == [RECORDED["content_hash"]] * 2, "both went through the one hashing reader"
    assert tunesmith.digests.bytes_digest(CSV) == RECORDED["content_hash"]  # a Parquet file's bytes, held whole


@pytest.mark.slow
def test_a_retune_recorded_digest_still_matches_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tunesmith.retune import retune

    monkeypatch.chdir(tmp_path)
    (tmp_path / "tc_objective.py").write_text("def f(config, trial):\n    return {'loss': (config['x'] - 0.3) ** 2}\n")
    (tmp_path / "tc.yaml").write_text(yaml.safe_dump({
        "name": "tc", "objective": {"metric": "loss", "direction": "minimize"},
        "trial": {"function": "tc_objective:f"}, "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "budget": {"trials": 1}, "executor": {"kind": "inline"}, "seed": 0}))
    (tmp_path / "new.csv").write_bytes(CSV)
    store = SQLStore(f"sqlite:///{tmp_path / 'tunesmith.db'}")
    run_experiment(load_spec(tmp_path / "tc.yaml"), store)
    retune(store, "tc", "new.csv", trials=1)
    child = store.experiment("tc-retune-1")
    assert child.attributes["lineage"]["data_digest"] == RECORDED["content_hash"]
    found = tuned_on(child)
    assert found is not None and found.usable and found.verified
