"""A rollback holds the model's cycles until `tunesmith release`: the walk rolled back a re-tune a cycle had promoted
on an inverted label feed, and the next scheduled cycle on the same rows re-tuned and promoted an equivalent model
half a minute later, saying nothing of the rollback. Against a real MLflow database (sqlite), in this process."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import completed_in_process

from tests.test_cycle import SPEC
from tunesmith.cycle import CycleOutcome, CycleReport, run_cycle
from tunesmith.storage.sql import SQLStore
from tunesmith.testing.drift_data import shifted_split


@pytest.fixture
def folder(tmp_path: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    shifted_split(tmp_path)
    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    (tmp_path / "bc.yaml").write_text(yaml.safe_dump({**SPEC, "promotion": {"min": {"holdout_roc_auc": 0.5}}}))
    (tmp_path / "elsewhere").mkdir()
    return tmp_path


def _steps(report: CycleReport) -> list[tuple[str, str]]:
    return [(s.name, s.status.value) for s in report.steps]


def _champion(folder: Path) -> str:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    return str(client.get_model_version_by_alias("clf", "champion").version)


def _cli(folder: Path, *args: str) -> Any:
    """`tunesmith ARGS` run from another folder than the registry's, with no MLFLOW_TRACKING_URI: only the store's
    record of the model's promotions says where its registry is."""
    return completed_in_process(folder / "elsewhere", *args, env={
        "TUNESMITH_STORAGE": f"sqlite:///{folder / 'tunesmith.db'}", "COLUMNS": "200"})


@pytest.mark.slow
def test_a_rollback_holds_the_cycles_until_released(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tunesmith.retune
    from tunesmith.clock import SystemClock
    from tunesmith.promotion.promote import Decision, promote, rollback
    from tunesmith.runner import run_experiment
    from tunesmith.spec.loader import load_spec

    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    try:
        run_experiment(load_spec(folder / "bc.yaml"), store)
        assert promote(store, "bc", "clf", SystemClock()).decision is Decision.PROMOTED   # v1
        assert run_cycle(store, "bc", "shifted.csv", model_name="clf").outcome is CycleOutcome.PROMOTED  # v2
        rolled = _cli(folder, "rollback", "clf", "--reason", "label feed inverted (INC-42)")
        # the registry is the one the store's promotions recorded (the walk: "--tracking-uri: no MLflow database at
        # ./mlflow.db", a flag nobody gave)
        assert rolled.returncode == 0, rolled.stderr
        assert "champion v2 -> v1" in rolled.stdout and "held: cycles with --model-name clf" in rolled.stdout
        assert "the registry this store's last promotion of 'clf' recorded" in rolled.stderr, rolled.stderr
        assert _champion(folder) == "1"

        held = run_cycle(store, "bc", "shifted.csv", model_name="clf")   # the scheduler's re-run of the day
        assert held.outcome is CycleOutcome.HELD and held.exit_code == 0, held.to_json()
        assert _steps(held) == [("drift", "done"), ("retune", "skipped"), ("promote", "skipped")], held.to_json()
        said = held.steps[1].why
        assert "rolled back from version 2 to 1" in said and "INC-42" in said and "tunesmith release clf" in said
        assert held.steps[1].detail["held_by_rollback"]["from_version"] == "2"
        assert "bc-retune-2" not in store.experiment_names() and _champion(folder) == "1"
        recorded = [e.payload for e in store.events(store.experiment("bc").id) if e.kind == "cycle_retune"]
        assert "held" in recorded[-1]["why"], recorded[-1]   # in the audit trail

        # `audit ROOT` lists the lineage's model changes, recorded on its re-tunes (the walk: no rollback listed)
        trail = _cli(folder, "audit", "bc")
        assert " bc-retune-1 promoted trial " in trail.stdout and " bc-retune-1 rolled_back " in trail.stdout, trail
        assert " bc cycle_retune skipped " in trail.stdout, trail.stdout
        released = _cli(folder, "release", "clf", "--reason", "feed fixed")
        assert released.returncode == 0 and "released clf" in released.stdout, released.stderr
        assert [e.payload["reason"] for e in store.events(store.experiment("bc").id)
                if e.kind == "rollback_released"] == ["feed fixed"]
        again = _cli(folder, "release", "clf", "--reason", "twice")
        assert again.returncode == 0 and "not held" in again.stdout, again.stderr

        after = run_cycle(store, "bc", "shifted.csv", model_name="clf")
        assert after.outcome is CycleOutcome.PROMOTED and _champion(folder) == "3", after.to_json()

        # rolled back while a cycle re-tunes: its promote step does not promote over the rollback
        run_plan = tunesmith.retune.run_retune_plan

        def rolled_back_meanwhile(*args: Any, **kwargs: Any) -> Any:
            result = run_plan(*args, **kwargs)
            rollback(store, "clf", SystemClock(), f"sqlite:///{folder / 'mlflow.db'}", "rolled back mid-cycle")
            return result

        monkeypatch.setattr(tunesmith.retune, "run_retune_plan", rolled_back_meanwhile)
        mid = run_cycle(store, "bc", "reference.csv", model_name="clf")
        assert mid.outcome is CycleOutcome.HELD, mid.to_json()
        assert _steps(mid) == [("drift", "done"), ("retune", "done"), ("promote", "skipped")], mid.to_json()
        assert mid.steps[-1].detail["held"] is True and _champion(folder) == "1"
    finally:
        store.close()


class _Versions:
    """The registry's versions of one model, as hold_of reads them."""

    def __init__(self, *versions: Any) -> None:
        self._versions = versions

    def versions(self, name: str) -> list[Any]:
        return list(self._versions)


def test_a_rollback_an_older_release_made_holds_nothing() -> None:
    """Review Y: a rollback made months ago, by a release with no hold, whose version is served still: after the
    upgrade every cycle reported drift and neither re-tuned nor promoted, exit 0, no alert. Only a rollback this
    release made (its mark has tunesmith.rollback_holds) holds."""
    from tunesmith.promotion.rollback_hold import hold_of
    from tunesmith.tracking.model_registry import ModelVersion

    old_mark = {"tunesmith.rollback": "t1", "tunesmith.rolled_back_to": "1", "tunesmith.rolled_back_at": "1.0",
                "tunesmith.rolled_back": "bad feed"}
    champion = ModelVersion("clf", "1", None, "models:/clf/1")
    older = _Versions(champion, ModelVersion("clf", "2", None, "models:/clf/2", old_mark))
    assert hold_of(older, "clf", champion) is None  # type: ignore[arg-type]
    newer = _Versions(champion, ModelVersion("clf", "2", None, "models:/clf/2",
                                             {**old_mark, "tunesmith.rollback_holds": "1"}))
    held = hold_of(newer, "clf", champion)  # type: ignore[arg-type]
    assert held is not None and held.mark.from_version == "2"
