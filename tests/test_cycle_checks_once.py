"""A cycle does each check once: the interactive-trial refusal at its input check (the re-tune's plan asked again),
and the lineage walk reads the store's experiment names once, not every experiment's record per re-tune named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import tunesmith.retune
from tests.test_cycle import SPEC
from tunesmith.cycle import CycleOutcome, PromotionVerdict, lineage_head, run_cycle
from tunesmith.runner import run_experiment
from tunesmith.spec.loader import load_spec
from tunesmith.storage.sql import SQLStore
from tunesmith.testing.drift_data import shifted_split


@pytest.mark.slow
def test_a_drifted_cycle_checks_the_trial_function_once_and_walks_the_lineage_on_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shifted_split(tmp_path)
    (tmp_path / "bc.yaml").write_text(yaml.safe_dump(SPEC))
    store = SQLStore(f"sqlite:///{tmp_path / 'tunesmith.db'}")
    run_experiment(load_spec(tmp_path / "bc.yaml"), store)
    checked: list[str] = []
    real = tunesmith.retune.refuse_interactive_trial

    def counting(name: str, spec: Any) -> None:
        checked.append(name)
        real(name, spec)

    monkeypatch.setattr(tunesmith.retune, "refuse_interactive_trial", counting)
    report = run_cycle(store, "bc", "shifted.csv", promote=lambda s, e, m: PromotionVerdict(True, {}))
    assert report.outcome is CycleOutcome.PROMOTED, report
    assert checked == ["bc"], checked

    full_reads: list[int] = []
    listed = store.experiments
    monkeypatch.setattr(store, "experiments", lambda: full_reads.append(1) or listed())
    assert lineage_head(store, "bc").name == "bc-retune-1" and full_reads == []


@pytest.mark.slow
def test_a_cycle_on_a_trial_code_retune_hashes_the_file_it_was_tuned_on_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The refusal without --reference, the drift check and the check's report each hashed the file the champion
    was re-tuned on (three reads of a file that may be gigabytes); with --reference given, two."""
    import tunesmith.drift.check
    from tunesmith.retune import retune

    monkeypatch.chdir(tmp_path)
    shifted_split(tmp_path)
    (tmp_path / "tc_objective.py").write_text("def f(config, trial):\n    return {'loss': (config['x'] - 0.3) ** 2}\n")
    (tmp_path / "tc.yaml").write_text(yaml.safe_dump({
        "name": "tc", "objective": {"metric": "loss", "direction": "minimize"},
        "trial": {"function": "tc_objective:f"}, "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "budget": {"trials": 2}, "executor": {"kind": "inline"}, "seed": 0}))
    (tmp_path / "new.csv").write_bytes((tmp_path / "shifted.csv").read_bytes())
    store = SQLStore(f"sqlite:///{tmp_path / 'tunesmith.db'}")
    run_experiment(load_spec(tmp_path / "tc.yaml"), store)
    retune(store, "tc", "new.csv", trials=2)
    hashed: list[str] = []
    real = tunesmith.drift.check.file_digest

    def counting(path: Any) -> str:
        hashed.append(str(path))
        return real(path)

    monkeypatch.setattr(tunesmith.drift.check, "file_digest", counting)
    report = run_cycle(store, "tc", "shifted.csv")
    assert report.checked == "tc-retune-1" and report.outcome is CycleOutcome.NO_DRIFT, report.to_json()
    assert hashed == [str((tmp_path / "new.csv").resolve())], hashed
    hashed.clear()
    given = run_cycle(store, "tc.yaml", "shifted.csv", reference="reference.csv")
    assert given.checked == "tc-retune-1" and given.outcome is CycleOutcome.NO_DRIFT, given.to_json()
    assert len(hashed) == 1, hashed
