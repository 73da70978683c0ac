"""`tunesmith delete` of the experiment a registered model's champion came from is refused (exit 2, naming the
model, the version and the fix), by the store's audit trail alone: the delete runs without MLflow. Deleted, the
champion's experiment left every later `tunesmith cycle --model-name` failing (exit 2, "roll back or promote").
Promotions and the rollback go through a real file-based MLflow registry."""

from __future__ import annotations

from typing import Any

from tests.test_promotion import tuned_with_models
from tunesmith.clock import SystemClock
from tunesmith.promotion.promote import promote, rollback


def test_deleting_the_champions_experiment_is_refused_until_the_champion_moves(
        project: Any, mlflow_uri: str, without_mlflow: dict[str, str]) -> None:
    store = tuned_with_models(project, "a", mlflow_uri, 2)
    tuned_with_models(project, "b", mlflow_uri, 2)
    assert promote(store, "a", "m", SystemClock()).version == "1"

    refused = project.cli("delete", "a", "--yes", env=without_mlflow)  # delete needs no mlflow extra
    assert refused.returncode == 2, refused.stdout + refused.stderr
    said = refused.stderr + refused.stdout
    assert "model 'm' (version 1" in said and "tunesmith rollback m" in said and "tunesmith promote" in said, said
    assert "Traceback" not in said
    assert "a" in {e.name for e in store.experiments()}

    assert promote(store, "b", "m", SystemClock()).version == "2"   # b's trial is the champion now, a's previous
    assert project.cli("delete", "b", "--yes", env=without_mlflow).returncode == 2
    rollback(store, "m", SystemClock(), mlflow_uri, "drift")       # a's again (recorded on b, the demoted one)
    assert project.cli("delete", "a", "--yes", env=without_mlflow).returncode == 2
    gone = project.cli("delete", "b", "--yes", env=without_mlflow)  # no longer the champion: deleted
    assert gone.returncode == 0, gone.stdout + gone.stderr
    # b's events (the rollback among them) went with it: a's promotion still says it holds the champion
    assert project.cli("delete", "a", "--yes", env=without_mlflow).returncode == 2
    forced = project.cli("delete", "a", "--yes", "--even-if-champion", env=without_mlflow)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert [e.name for e in store.experiments()] == []


def test_an_experiment_never_promoted_is_deleted_as_before(project: Any, mlflow_uri: str,
                                                            without_mlflow: dict[str, str]) -> None:
    """Another experiment of the store holding a champion does not stop the deletion of one that never did."""
    store = tuned_with_models(project, "a", mlflow_uri, 2)
    tuned_with_models(project, "c", mlflow_uri, 2)
    promote(store, "a", "m", SystemClock())
    done = project.cli("delete", "c", "--yes", env=without_mlflow)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [e.name for e in store.experiments()] == ["a"]
