"""The champion a drift check scores is the trial the registry serves, not the experiment's best: `tunesmith promote
--trial N` ships another trial than the best one (the README's own walk-through does), and the cycle, `tunesmith
drift` and `tunesmith show` went on judging (and marking) the best one. Against a real MLflow database (sqlite)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from helpers import cli_in_folder

from tests.test_cycle import SPEC
from tunesmith.storage.sql import SQLStore
from tunesmith.testing.drift_data import shifted_split


@pytest.fixture
def folder(tmp_path: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.chdir(tmp_path)
    shifted_split(tmp_path)
    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    (tmp_path / "bc.yaml").write_text(yaml.safe_dump({**SPEC, "promotion": {"min": {"holdout_roc_auc": 0.5}}}))
    return tmp_path


def _not_the_best_promoted(folder: Path) -> tuple[SQLStore, int, int]:
    """bc tuned, and a trial that is not its best promoted by hand as model clf's champion: the store, that trial
    and the best one."""
    from tunesmith.clock import SystemClock
    from tunesmith.promotion.promote import Decision, promote
    from tunesmith.records import TrialState
    from tunesmith.runner import run_experiment
    from tunesmith.spec.loader import load_spec
    from tunesmith.summary import best_of

    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    run_experiment(load_spec(folder / "bc.yaml"), store)
    exp = store.experiment("bc")
    trials = store.trials(exp.id)
    best = best_of(exp, trials)
    assert best is not None
    other = next(t.number for t in trials if t.state is TrialState.COMPLETED and t.number != best.number)
    assert promote(store, "bc", "clf", SystemClock(), trial_number=other).decision is Decision.PROMOTED
    return store, other, best.number


@pytest.mark.slow
def test_the_cycle_drift_and_show_judge_the_trial_the_registry_serves(folder: Path) -> None:
    from tunesmith.cycle import run_cycle

    store, served, best = _not_the_best_promoted(folder)
    try:
        report = run_cycle(store, "bc", "reference.csv", model_name="clf")
        drift = next(s for s in report.steps if s.name == "drift")
        champion = drift.detail["champion"]
        assert champion["trial"] == served and champion["baseline_source"] == "promotion", champion
        assert "version 1" in champion["which"] and "'clf'" in champion["which"], champion
        promoted = [e.payload for e in store.events(store.experiment("bc").id) if e.kind == "promoted"]
        assert champion["baseline"] == pytest.approx(promoted[-1]["holdout"]["holdout_roc_auc"]), promoted
    finally:
        store.close()
    # `tunesmith drift bc` (the deploy DAG's report) names no model: the store's audit trail says what is served
    proc = cli_in_folder(folder, "drift", "bc", "--data", "reference.csv", "--json")
    assert proc.returncode == 0, proc.stderr
    champion = json.loads(proc.stdout)["champion"]
    assert champion["trial"] == served and "audit trail" in champion["which"], champion
    shown = cli_in_folder(folder, "show", "bc")
    assert shown.returncode == 0, shown.stderr
    assert f"served: model 'clf' version 1 is trial {served}" in shown.stdout, shown.stdout
    assert f"of trial {best} (the model promote ships without --trial; model clf serves trial {served}," \
        in shown.stdout, shown.stdout
    assert "what `tunesmith promote` ships without --trial; c: served, model clf version 1 serves trial" \
        in shown.stdout, shown.stdout
    assert f"\u2502 c{served} \u2502" in shown.stdout and f"\u2502 *{best} \u2502" in shown.stdout, shown.stdout
    as_json = json.loads(cli_in_folder(folder, "show", "bc", "--json").stdout)
    assert as_json["served"] == [{"model_name": "clf", "version": "1", "trial": served}], as_json.get("served")
