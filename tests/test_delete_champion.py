"""`tunesmith delete` of the experiment a registered model's champion came from is refused (exit 2, naming the
model, the version and the fix), by the store's audit trail alone: the delete runs without MLflow. Deleted, the
champion's experiment left every later `tunesmith cycle --model-name` failing (exit 2, "roll back or promote").
Promotions and the rollback go through a real file-based MLflow registry."""

from __future__ import annotations

from typing import Any

from tests._promotion_setup import tuned_with_models
from tests.helpers import cli_json_in_process
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


def test_a_deleted_champions_promotions_stay_in_the_audit_trail_and_still_explain_the_champion(
        project: Any, mlflow_uri: str, without_mlflow: dict[str, str]) -> None:
    """`tunesmith delete --even-if-champion` removed the experiment's events and recorded no deletion: `tunesmith
    audit b` then said there was no experiment b, while the registry served b's model, and the trail replayed without
    b's promotion named a, promoted before it, the champion (deleting a was refused). The deletion keeps who deleted
    b, when, why, its trial count and its promotions, in `audit` and in the champion's replay."""
    import json

    store = tuned_with_models(project, "a", mlflow_uri, 2)
    tuned_with_models(project, "b", mlflow_uri, 3)
    assert promote(store, "a", "m", SystemClock()).version == "1"
    promoted_b = promote(store, "b", "m", SystemClock(), reason="better")
    assert promoted_b.version == "2"
    b_id = store.experiment("b").id

    gone = project.cli("delete", "b", "--yes", "--even-if-champion", "--reason", "disk full", env=without_mlflow)
    assert gone.returncode == 0, gone.stdout + gone.stderr
    # its promotion, and the intent recorded before it (tunesmith.promotion.intents)
    assert "deleted b (2 promotion/rollback event(s) kept in its audit trail)" in gone.stdout

    rows = json.loads(project.cli("audit", "b", "--json", check=True, env=without_mlflow).stdout)
    assert [(r["experiment"], r["experiment_id"], r["deleted"], r["kind"]) for r in rows] == [
        ("b", b_id, True, "promotion_started"), ("b", b_id, True, "promoted"), ("b", b_id, True, "deleted")]
    _, promoted, deleted = rows
    assert (promoted["trial"], promoted["detail"]["version"], promoted["detail"]["reason"]) == (
        promoted_b.trial, "2", "better")
    actor = deleted["detail"]["actor"]
    assert actor["user"] and actor["host"] and "delete b" in actor["command"]
    assert (deleted["detail"]["reason"], deleted["detail"]["trials"], deleted["detail"]["kept_events"]) == (
        "disk full", 3, 2)
    text = project.cli("audit", "b", check=True, env=without_mlflow).stdout
    assert f"b (deleted, id {b_id}) promoted trial {promoted_b.trial} by " in text, text
    assert f"b (deleted, id {b_id}) deleted by {actor['user']}@{actor['host']} reason: disk full" in text, text
    everything = [(r["experiment"], r["kind"]) for r in cli_json_in_process("audit", "--storage", project.storage)]
    assert ("a", "promoted") in everything and everything[-2:] == [("b", "promoted"), ("b", "deleted")]

    # by the trail, b's version 2 is the champion still: a, whose version 1 it replaced, is deleted without ado
    done = project.cli("delete", "a", "--yes", env=without_mlflow)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {d.name for d in store.deleted_experiments()} == {"a", "b"}


def test_a_champion_promoted_while_the_delete_prompt_waits_is_still_refused(project: Any, mlflow_uri: str) -> None:
    """`tunesmith delete a` checks its champions, then waits at its prompt: `tunesmith promote a` meanwhile made a
    the champion. After the prompt, only the coordinator check ran again: a was deleted under the registry's
    champion. The checks run again on a fresh read; --even-if-champion still deletes it."""
    import time

    import pytest

    from tunesmith.deletion import delete_experiment, refuse_deleting
    from tunesmith.errors import UserInputError

    store = tuned_with_models(project, "a", mlflow_uri, 2)
    stale = store.experiment("a")
    refuse_deleting(store, stale, time.time())  # not a champion yet: the prompt is shown
    assert promote(store, "a", "m", SystemClock()).version == "1"
    with pytest.raises(UserInputError, match="holds the champion of model 'm'"):
        delete_experiment(store, stale, time.time(), "after the prompt")
    assert "a" in {e.name for e in store.experiments()}
    delete_experiment(store, stale, time.time(), "moved outside tunesmith", even_if_champion=True)
    assert [e.name for e in store.experiments()] == []


def test_another_experiments_interrupted_promotion_does_not_stop_a_delete_and_a_rollback_to_its_version_does(
        project: Any, mlflow_uri: str, without_mlflow: dict[str, str]) -> None:
    """Deleting a, whose version 1 b's replaced, was refused while c's promotion of the model was interrupted and
    not settled (the registry not readable from the delete): whatever became of it, c's promotion made c's version
    the champion or left b's; a's it cannot. A rollback recorded on b back to a's version can: that still refuses."""
    from tests.helpers import cli_in_process
    from tests.test_promotion_interrupted import killed_at
    from tunesmith.promotion.intents import unsettled

    store = tuned_with_models(project, "a", mlflow_uri, 2)
    tuned_with_models(project, "b", mlflow_uri, 2)
    tuned_with_models(project, "c", mlflow_uri, 2)
    assert promote(store, "a", "m", SystemClock()).version == "1"
    assert promote(store, "b", "m", SystemClock()).version == "2"
    with killed_at("set_tag", before=True):   # b's version 2 back to a's 1, killed before marking: intent on b
        rollback(store, "m", SystemClock(), mlflow_uri, "drift")
    refused = project.cli("delete", "a", "--yes", env=without_mlflow)
    said = " ".join(refused.stderr.split())
    assert refused.returncode == 2 and "the rollback of model 'm' from version 2 to 1" in said, said
    assert "`tunesmith audit b` does" in said, said  # where it is recorded: `audit a` settled nothing of b's
    code, out, err = cli_in_process("audit", "b", "--storage", project.storage)  # settled: abandoned (nothing moved)
    assert code == 0, out + err
    kinds = [e.kind for e in store.events(store.experiment("b").id)]
    assert unsettled(store, model_name="m") == [] and kinds[-1] == "rollback_abandoned", kinds

    with killed_at("register", before=True):  # c's promotion, killed before registering: intent on c
        promote(store, "c", "m", SystemClock())
    done = project.cli("delete", "a", "--yes", env=without_mlflow)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [e.name for e in store.experiments()] == ["b", "c"]
