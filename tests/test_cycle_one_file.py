"""One cycle, one file: `--data` given as a symlink that is re-pointed while a cycle runs (`watch` users re-point
it at each day's file) is resolved once, as the cycle starts, and every step reads and records that file.

The link is moved from inside a step the cycle calls (the drift check, the champion's refit, the re-tune's run),
not by a timer: the walk moved it while the cycle held its lineage, and one cycle judged 2026-12-06's rows, named
2026-12-05's file as the one that drifted and re-tuned (and promoted) on it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_cycle import SPEC
from tunesmith.cycle import run_cycle
from tunesmith.runner import run_experiment
from tunesmith.spec.loader import load_spec
from tunesmith.storage.sql import SQLStore
from tunesmith.testing.drift_data import shifted_split


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """bc tuned on reference.csv; new_rows.csv a link to shifted.csv (drifted); same.csv a copy of reference.csv
    (no drift), where the link is moved to mid-cycle."""
    monkeypatch.chdir(tmp_path)
    shifted_split(tmp_path)
    shutil.copy(tmp_path / "reference.csv", tmp_path / "same.csv")
    (tmp_path / "bc.yaml").write_text(yaml.safe_dump(SPEC))
    os.symlink("shifted.csv", tmp_path / "new_rows.csv")
    return tmp_path


def _repoint(folder: Path) -> None:
    """The day's re-point, as `ln -sfn same.csv new_rows.csv` makes it."""
    os.symlink("same.csv", folder / "new_rows.tmp")
    os.replace(folder / "new_rows.tmp", folder / "new_rows.csv")


def _repointed_by(module: Any, name: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``module.name`` re-points the link as it is called, then does what it did: the move lands inside that step."""
    step = getattr(module, name)

    def moved_first(*args: Any, **kwargs: Any) -> Any:
        _repoint(folder)
        return step(*args, **kwargs)

    monkeypatch.setattr(module, name, moved_first)


@pytest.fixture
def store(folder: Path) -> Iterator[SQLStore]:
    """bc tuned on reference.csv, its store open."""
    opened = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    try:
        run_experiment(load_spec(folder / "bc.yaml"), opened)
        yield opened
    finally:
        opened.close()


@pytest.mark.slow
def test_a_link_repointed_during_a_cycle_leaves_every_step_on_the_file_it_named_at_the_start(
        folder: Path, store: SQLStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import tunesmith.drift
    from tunesmith.digests import file_digest

    _repointed_by(tunesmith.drift, "check_stored", folder, monkeypatch)  # as the drift check starts
    report = run_cycle(store, "bc", "new_rows.csv")
    shifted = str((folder / "shifted.csv").resolve())
    as_json = report.to_json()
    assert as_json["data"] == shifted, as_json
    drift = next(s for s in report.steps if s.name == "drift")
    assert drift.detail["data"] == shifted and drift.detail["drift"] is True, drift.detail
    assert "shifted.csv" in drift.why, drift.why   # the line names the file checked
    retune = store.experiment("bc-retune-1")
    assert retune.attributes["lineage"]["data"] == shifted, retune.attributes["lineage"]
    assert retune.attributes["data_fingerprint"]["content_hash"] == file_digest(shifted)
    recorded = [e.payload for e in store.events(store.experiment("bc").id) if e.kind == "cycle_drift"]
    assert recorded[-1]["detail"]["data"] == shifted, recorded


@pytest.mark.slow
def test_drift_reports_the_file_it_read_when_the_link_moves_during_the_champions_refit(
        folder: Path, store: SQLStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import tunesmith.drift.check
    from tunesmith.drift import check_stored

    _repointed_by(tunesmith.drift.check, "_champion", folder, monkeypatch)
    report = check_stored(store, "bc", "new_rows.csv")
    assert report.data == str((folder / "shifted.csv").resolve()) and report.drifted, report.to_json()


@pytest.mark.slow
def test_retune_runs_on_the_file_the_link_named_when_it_was_planned(
        folder: Path, store: SQLStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """`tunesmith retune` resolves --data once, in its plan: the run reads the file planned, not the link again."""
    import tunesmith.retune
    from tunesmith.digests import file_digest

    _repointed_by(tunesmith.retune, "run_retune_plan", folder, monkeypatch)
    tunesmith.retune.retune(store, "bc", "new_rows.csv", trials=1)
    retune = store.experiment("bc-retune-1")
    shifted = str((folder / "shifted.csv").resolve())
    assert retune.attributes["lineage"]["data"] == shifted
    assert retune.attributes["data_fingerprint"]["content_hash"] == file_digest(shifted)
