"""A cycle's re-tune whose promotion failed (the registry down) or never ran (the cycle killed after the re-tune) is
offered by the next cycle, before a drift check against the old champion would start a second re-tune of it; one a
gate rejected is not. Run in this process against a real MLflow database (sqlite), the registry's fault injected
into MLflow's client; the CLI's side of a cycle is tested in tests/test_cycle_sre.py."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_cycle import SPEC
from tunesmith.cycle import CycleReport, run_cycle
from tunesmith.storage.sql import SQLStore
from tunesmith.testing.drift_data import shifted_split


@pytest.fixture
def folder(tmp_path: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """shifted.csv (drifted) and reference.csv, an empty registry in mlflow.db (the spec's default: no tracking:
    section); the working directory."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.chdir(tmp_path)
    shifted_split(tmp_path)
    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    return tmp_path


def champion_bc(folder: Path, promotion: dict[str, Any]) -> SQLStore:
    """Experiment ``bc`` tuned on reference.csv (the set-up, in this process) and promoted by hand as model
    ``clf``'s champion; its store, opened."""
    from tunesmith.clock import SystemClock
    from tunesmith.promotion.promote import Decision, promote
    from tunesmith.runner import run_experiment
    from tunesmith.spec.loader import load_spec

    (folder / "bc.yaml").write_text(yaml.safe_dump({**SPEC, "promotion": promotion}))
    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    run_experiment(load_spec(folder / "bc.yaml"), store)
    assert promote(store, "bc", "clf", SystemClock()).decision is Decision.PROMOTED
    return store


PASSING = {"min": {"holdout_roc_auc": 0.5}}
# nothing to beat at bc's promotion; a re-tune must beat bc by 0.5 of ROC AUC, which none does
REJECTING_RETUNES = {"beat_champion": {"metric": "roc_auc", "margin": 0.5, "resamples": 50}}


def refuse_registration(patched: pytest.MonkeyPatch) -> None:
    """MLflow's registration meets a server that refuses the connection, as MLflow raises it (its request's
    ConnectionError, chained), until ``patched`` is undone: the champion is read (the server went down after), the
    new version is not created."""
    import mlflow.tracking
    import requests
    from mlflow.exceptions import MlflowException

    def refused(*args: Any, **kwargs: Any) -> Any:
        try:
            raise requests.ConnectionError("HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded "
                                           "(Connection refused)")
        except requests.ConnectionError as e:
            raise MlflowException("API request to endpoint /api/2.0/mlflow/model-versions/create failed") from e

    patched.setattr(mlflow.tracking.MlflowClient, "create_model_version", refused)


def _steps(report: CycleReport) -> list[tuple[str, str]]:
    return [(s.name, s.status.value) for s in report.steps]


def _champion_tag() -> str:
    import mlflow

    # absolute: MLflow keeps one engine per URI text for the whole process, and a relative one made here would be
    # every later in-process test's `sqlite:///mlflow.db`, whatever its folder
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{Path('mlflow.db').resolve()}")
    return str(client.get_model_version_by_alias("clf", "champion").tags["tunesmith.experiment"])


@pytest.mark.slow
def test_a_retune_whose_promotion_failed_is_offered_by_the_next_cycles_not_tuned_again(
        folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry down at the promote step (exit 75): the next cycle found the old champion registered, found drift
    against its data again and re-tuned a second time (hours, on a real job), never offering the re-tune it had.
    Now it offers that re-tune's promotion first, each cycle until decided (`watch` loops the cycle: the same)."""
    from tunesmith.cycle import watch

    store = champion_bc(folder, PASSING)
    with monkeypatch.context() as down:
        refuse_registration(down)
        failed = run_cycle(store, "bc", "shifted.csv", model_name="clf")
        assert failed.exit_code == 75 and _steps(failed) == [("drift", "done"), ("retune", "done"),
                                                             ("promote", "failed")], failed.to_json()
        # `watch` loops the cycle: its first still finds the registry down, it is back by the second
        still, back, again = watch(store, "bc", "shifted.csv", 60.0, cycles=3, model_name="clf",
                                   sleep=lambda seconds: down.undo())
    assert still.exit_code == 75 and _steps(still) == [("promote", "failed")], still.to_json()
    said = still.steps[0].why
    assert "bc-retune-1, an earlier cycle's re-tune never promoted nor rejected" in said, said
    assert "no MLflow tracking server answers" in said, said
    assert still.steps[0].detail["experiment"] == "bc-retune-1" and still.steps[0].detail["offered_again"] is True
    assert still.checked is None and still.champion == "bc" and still.champion_from == "registry", still.to_json()
    assert back.exit_code == 0 and back.outcome.value == "promoted", back.to_json()
    # promoted, then today's rows checked against it: no drift (it was tuned on them), no second re-tune
    assert _steps(back) == [("promote", "done"), ("drift", "done"), ("retune", "skipped"),
                            ("promote", "skipped")], back.to_json()
    assert back.steps[0].detail["offered_again"] is True and back.steps[0].detail["experiment"] == "bc-retune-1"
    assert back.checked == back.champion == "bc-retune-1" and back.champion_from == "registry", back.to_json()
    assert [e.name for e in store.experiments()] == ["bc", "bc-retune-1"] and _champion_tag() == "bc-retune-1"
    promoted = [e.payload for e in store.events(store.experiment("bc-retune-1").id) if e.kind == "promoted"]
    assert [p["reason"] for p in promoted] == ["tunesmith cycle: drift re-tune, offered again"], promoted
    # decided: not offered again
    assert _steps(again) == [("drift", "done"), ("retune", "skipped"), ("promote", "skipped")], again.to_json()
    recorded = [e.payload["status"] for e in store.events(store.experiment("bc").id) if e.kind == "cycle_promote"]
    assert recorded == ["failed", "failed", "done", "skipped", "skipped"], recorded  # each offer audited as a step

@pytest.mark.slow
def test_a_retune_a_gate_rejected_is_not_offered_again(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A re-tune was judged when a gate rejected it: the next cycle checks the champion again rather than offering
    the rejected one (it is no undecided re-tune); on the same rows it does not re-tune them a second time (the walk:
    two full re-tunes, the same best trial rejected by the same gate), on other rows, or forced, it re-tunes."""
    store = champion_bc(folder, REJECTING_RETUNES)
    rejected = run_cycle(store, "bc", "shifted.csv", model_name="clf")
    assert rejected.exit_code == 3 and _steps(rejected)[-1] == ("promote", "rejected"), rejected.to_json()
    again = run_cycle(store, "bc", "shifted.csv", model_name="clf")
    assert _steps(again) == [("drift", "done"), ("retune", "skipped"), ("promote", "skipped")], again.to_json()
    assert again.exit_code == 3 and again.steps[1].detail["rejected_before"] == "bc-retune-1", again.to_json()
    assert "bc-retune-2" not in store.experiment_names()
    forced = run_cycle(store, "bc", "shifted.csv", model_name="clf", force_retune=True)
    assert _steps(forced) == [("drift", "done"), ("retune", "done"), ("promote", "rejected")], forced.to_json()
    assert forced.steps[-1].detail["experiment"] == "bc-retune-2" and forced.checked == "bc", forced.to_json()


@pytest.mark.slow
def test_a_retune_whose_cycle_died_before_promoting_it_is_offered_and_once_rejected_the_cycle_goes_on(
        folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cycle died between its re-tune and the promote step (killed: no promote step recorded). The next cycle
    offers that re-tune; a gate rejects it, so it is marked as a cycle's rejected re-tune is, and the cycle goes on as
    it would have: drift against the champion still registered; on the very rows the rejected re-tune was tuned on,
    it does not re-tune them again (the walk: a second re-tune in the same cycle, rejected by the same gate)."""
    import tunesmith.cycle

    store = champion_bc(folder, REJECTING_RETUNES)

    def killed(*args: Any, **kwargs: Any) -> Any:
        raise SystemExit(137)   # not an Exception: nothing is recorded after it, as after a SIGKILL

    with monkeypatch.context() as patched, pytest.raises(SystemExit):
        patched.setattr(tunesmith.cycle, "promote_step", killed)
        run_cycle(store, "bc", "shifted.csv", model_name="clf")
    kinds = [e.kind for e in store.events(store.experiment("bc").id) if e.kind.startswith("cycle_")]
    assert kinds == ["cycle_drift", "cycle_retune"], kinds
    report = run_cycle(store, "bc", "shifted.csv", model_name="clf")
    assert _steps(report) == [("promote", "rejected"), ("drift", "done"), ("retune", "skipped"),
                              ("promote", "skipped")], report.to_json()
    assert report.steps[0].detail["experiment"] == "bc-retune-1" and report.steps[0].detail["offered_again"] is True
    assert "bc-retune-1, an earlier cycle's re-tune" in report.steps[0].why and "beat_champion" in report.steps[0].why
    assert report.exit_code == 3 and report.checked == report.champion == "bc", report.to_json()
    assert store.experiment("bc-retune-1").attributes["rejected"] is True
    assert report.steps[2].detail["rejected_before"] == "bc-retune-1" and "bc-retune-2" not in store.experiment_names()


def test_which_retune_is_undecided_is_read_from_the_store(tmp_path: Path) -> None:
    """The rules, on recorded experiments and events (no tuning): the champion's newest re-tune, made by a cycle,
    completed with a completed trial, whose promotion no cycle, `tunesmith promote` or gate decided."""
    from tunesmith.audit import AuditKind
    from tunesmith.cycle import CycleStep, StepStatus, _undecided_retune
    from tunesmith.records import RunStatus, TrialState

    store = SQLStore(f"sqlite:///{tmp_path / 'tunesmith.db'}")

    def experiment(name: str, parent: str | None = None, status: RunStatus = RunStatus.COMPLETED,
                   trial: TrialState = TrialState.COMPLETED, at: float = 0.0) -> Any:
        created = store.create_experiment(name, {}, "random", "", at)
        store.set_status(created.id, status, 1.0)
        first = store.new_trial(created.id, {}, 0, 1.0, "log")
        assert first is not None
        store.save_trial(created.id, replace(first, state=trial, values=(1.0,)), "trial_ended", 2.0)
        if parent is not None:
            store.set_attributes(created.id, {"lineage": {"parent": parent, "root": "bc"}}, 2.0)
            parents = store.experiment(parent)
            store.set_attributes(parents.id, {"retunes": [*parents.attributes.get("retunes", []), name]}, 2.0)
        return store.experiment(name)

    def step(name: str, status: StepStatus, child: str, at: float = 3.0, **detail: Any) -> None:
        store.record_event(store.experiment("bc").id, f"cycle_{name}", at,
                           detail=CycleStep(name, status, "", {"experiment": child, **detail}).to_json())

    def offered(registered: str | None = "bc") -> str | None:
        found = _undecided_retune(store, store.experiment("bc"), store.experiment(registered) if registered else None)
        return found.name if found is not None else None

    try:
        experiment("bc")
        experiment("bc-retune-1", "bc")
        assert offered() is None, "a hand-run re-tune: its owner's to promote"
        step("retune", StepStatus.DONE, "bc-retune-1")
        assert offered() == "bc-retune-1", "a cycle's, whose promotion never ran (the cycle killed)"
        step("promote", StepStatus.FAILED, "bc-retune-1")
        assert offered() == offered(None) == "bc-retune-1", "failed: offered again (nothing registered: the head)"
        store.record_event(store.experiment("bc-retune-1").id, AuditKind.PROMOTION_DRY_RUN, 4.0)
        assert offered() == "bc-retune-1", "a dry run decides nothing"
        for decided in (AuditKind.PROMOTION_REJECTED, AuditKind.PROMOTED, AuditKind.PROMOTION_ALREADY_CHAMPION):
            experiment(f"bc-retune-{decided}", "bc")
            step("retune", StepStatus.DONE, f"bc-retune-{decided}")
            assert offered() == f"bc-retune-{decided}", "the newest"
            store.record_event(store.experiment(f"bc-retune-{decided}").id, decided, 4.0)  # `tunesmith promote`
            assert offered() is None, f"{decided} by hand; and the older one is history"
        for status in (StepStatus.DONE, StepStatus.REJECTED):   # a cycle's promote step (the seam records no audit)
            experiment(f"bc-retune-{status}", "bc")
            step("retune", StepStatus.DONE, f"bc-retune-{status}")
            step("promote", status, f"bc-retune-{status}")
            assert offered() is None, status
        rejected = experiment("bc-retune-marked", "bc")
        step("retune", StepStatus.DONE, rejected.name)
        store.set_attributes(rejected.id, {"rejected": True}, 4.0)
        assert offered() is None, "marked rejected by a cycle"
        resumed = experiment("bc-retune-resumed", "bc")
        step("retune", StepStatus.INTERRUPTED, resumed.name)
        assert offered() == resumed.name, "a cycle left it interrupted, `tunesmith resume` finished it"
        step("promote", StepStatus.DONE, resumed.name)
        for name, status, trial in (("bc-retune-stopped", RunStatus.INTERRUPTED, TrialState.COMPLETED),
                                    ("bc-retune-all-failed", RunStatus.COMPLETED, TrialState.FAILED)):
            experiment(name, "bc", status, trial)
            step("retune", StepStatus.DONE, name)
            assert offered() is None, name
        assert offered("bc-retune-stopped") is None, "a champion with no re-tune"
        # a name used again after `tunesmith delete`: the deleted one's steps, recorded before this one was made,
        # are not this one's
        again = experiment("bc-retune-again", "bc", at=10.0)
        step("promote", StepStatus.REJECTED, again.name, at=9.0)
        step("retune", StepStatus.DONE, again.name, at=11.0)
        assert offered() == again.name, "a namesake's rejection decides nothing of this one"
        step("promote", StepStatus.FAILED, again.name, at=12.0, temporary=True)
        assert offered() == again.name, "failed for a while (the registry down): offered again"
        step("promote", StepStatus.FAILED, again.name, at=13.0, temporary=False)
        assert offered() is None, "failed for good: decided, so the lineage goes on to its drift check"
    finally:
        store.close()


@pytest.mark.slow
def test_a_retune_whose_promotion_failed_for_good_is_not_offered_again(
        folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a promotion that failed for a while (the registry down, exit 75) is offered again: one that failed for
    good (here MLflow's own error, exit 1; in life a refit whose rotated data file is gone) would fail each cycle,
    and the lineage would never be checked for drift again. The next cycle goes on as before offers were made."""
    import mlflow.tracking

    store = champion_bc(folder, PASSING)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the model's files are gone")

    with monkeypatch.context() as patched:
        patched.setattr(mlflow.tracking.MlflowClient, "create_model_version", broken)
        failed = run_cycle(store, "bc", "shifted.csv", model_name="clf")
    assert failed.exit_code == 1 and _steps(failed) == [("drift", "done"), ("retune", "done"),
                                                        ("promote", "failed")], failed.to_json()
    assert failed.steps[-1].detail["experiment"] == "bc-retune-1" and failed.steps[-1].detail["temporary"] is False
    after = run_cycle(store, "bc", "shifted.csv", model_name="clf")
    assert _steps(after)[:2] == [("drift", "done"), ("retune", "done")], after.to_json()  # not offered: tuned anew
    assert after.steps[1].detail["experiment"] == "bc-retune-2", after.to_json()
