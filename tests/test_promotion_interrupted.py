"""A `promote` or `rollback` killed between its steps leaves a state the next command reads right (walk N, findings
1 and 2).

A promotion records its intent (`promotion_started`) in the store before it touches the registry and its outcome
after; a rollback marks the version it demotes (tag `tunesmith.rolled_back`) before it moves an alias. The next
`promote`, `rollback`, `delete` or `audit` settles what a killed one left: a promotion whose alias moved is recorded
`promoted`, one whose alias never moved `promotion_abandoned`; a marked rollback is finished, not done again to the
model it restored.

Each kill point is reached by the real code against a real MLflow registry (SQLite) and a real store: the registry
method of that step raises, right after (or before) its real call, an exception no `except Exception` handles, as a
SIGKILL there would stop the command; one test SIGKILLs a `tunesmith promote` process for real.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest

from tests._promotion_setup import tuned_with_models
from tests.conftest import Project
from tests.helpers import cli_in_process
from tunesmith.clock import SystemClock
from tunesmith.errors import UserInputError
from tunesmith.promotion.promote import promote, rollback
from tunesmith.storage.sql import SQLStore


class Killed(BaseException):
    """Stands for a SIGKILL at that point: nothing after it in the command runs."""


@contextmanager
def killed_at(method: str, when: Callable[..., bool] = lambda *args: True, before: bool = False) -> Iterator[None]:
    """``ModelRegistry.<method>`` raises Killed right after its real call (``before``: instead of it) where
    ``when(*args)`` holds."""
    from tunesmith.tracking.model_registry import ModelRegistry

    real = getattr(ModelRegistry, method)

    def step(self: Any, *args: Any, **kwargs: Any) -> Any:
        if before and when(*args):
            raise Killed(method)
        out = real(self, *args, **kwargs)
        if when(*args):
            raise Killed(method)
        return out

    with mock.patch.object(ModelRegistry, method, step), pytest.raises(Killed):
        yield


def _client(mlflow_uri: str) -> Any:
    import mlflow

    return mlflow.MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)


def _aliases(mlflow_uri: str, model: str) -> dict[str, int]:
    return dict(_client(mlflow_uri).get_registered_model(model).aliases)


def _tags(mlflow_uri: str, model: str, version: str) -> dict[str, str]:
    return dict(_client(mlflow_uri).get_model_version(model, version).tags)


def _trail(project: Project, name: str) -> list[dict[str, Any]]:
    code, out, err = cli_in_process("audit", name, "--json", "--storage", project.storage)
    assert code == 0, out + err
    return [r for r in json.loads(out) if r["kind"].startswith(("promot", "rollback", "rolled_back"))]


# -- promote ------------------------------------------------------------------------------------------------------
KILLED_PROMOTE = """
import os, runpy, signal, sys
from tunesmith.tracking.model_registry import ModelRegistry

real = ModelRegistry.set_alias

def set_alias(self, name, alias, version):
    real(self, name, alias, version)
    if alias == "champion":   # the alias moved; the store has recorded no outcome yet
        os.kill(os.getpid(), signal.SIGKILL)

ModelRegistry.set_alias = set_alias
sys.argv = ["tunesmith", *sys.argv[1:]]
runpy.run_module("tunesmith.cli", run_name="__main__")
"""


def test_a_promote_sigkilled_after_moving_the_alias_still_stops_delete_and_is_recorded_by_the_next_command(
        project: Project, mlflow_uri: str, without_mlflow: dict[str, str]) -> None:
    """The walk's repro: `promote` SIGKILLed between the alias move and its audit event left the registry serving
    trial 0's model and the store without a trace; `delete` (which reads the store alone) then removed the champion's
    experiment, exit 0."""
    tuned_with_models(project, "a", mlflow_uri, 2)
    killed = subprocess.run([sys.executable, "-c", KILLED_PROMOTE, "promote", "a", "--model-name", "m", "--trial", "0",
                             "--tracking-uri", mlflow_uri], cwd=project.root, capture_output=True, text=True,
                            env={**os.environ, "TUNESMITH_STORAGE": project.storage}, timeout=240)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    assert _aliases(mlflow_uri, "m") == {"champion": 1}

    # without MLflow the outcome cannot be read: the intent counts as a possible champion
    refused = project.cli("delete", "a", "--yes", env=without_mlflow)
    said = refused.stdout + refused.stderr
    assert refused.returncode == 2 and "Traceback" not in said, said
    assert "promotion of model 'm' (trial 0 of experiment 'a', begun " in said and "was interrupted" in said
    assert "--even-if-champion" in said and "tunesmith audit a" in said
    assert "a" in {e.name for e in SQLStore(project.storage, create=False).experiments()}

    # `audit`, which reaches the registry, settles it: the alias moved, so the promotion is recorded as done
    trail = _trail(project, "a")
    assert [(r["kind"], r["trial"]) for r in trail] == [("promotion_started", 0), ("promoted", 0)], trail
    started, promoted = trail
    assert started["detail"]["model_name"] == "m" and started["detail"]["actor"]["user"]
    assert promoted["detail"]["version"] == "1" and promoted["detail"]["completed_after_interruption"] is True
    assert promoted["detail"]["intent"] == started["detail"]["intent"]
    refused = project.cli("delete", "a", "--yes", env=without_mlflow)
    assert refused.returncode == 2 and "holds the champion of model 'm' (version 1" in refused.stderr, refused.stderr


STOPPED_PROMOTE = """
import os, runpy, signal, sys
from tunesmith.tracking.model_registry import ModelRegistry

real = ModelRegistry.set_alias

def set_alias(self, name, alias, version):
    if alias == "champion":   # registered, its intent recorded, the model held: the alias not moved yet
        os.kill(os.getpid(), signal.SIGSTOP)
    real(self, name, alias, version)

ModelRegistry.set_alias = set_alias
sys.argv = ["tunesmith", *sys.argv[1:]]
runpy.run_module("tunesmith.cli", run_name="__main__")
"""


def _stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def test_audit_and_delete_during_a_promote_under_way_leave_it_alone(project: Project, mlflow_uri: str) -> None:
    """A `promote` paused between registering its version and moving the alias (its intent recorded, its process
    alive and holding the model): `audit` and `delete` of its experiment, which settle interrupted promotions, must
    not record it abandoned (nor tag its version so) under the promote; resumed, it completes as promoted."""
    import time

    tuned_with_models(project, "a", mlflow_uri, 2)
    promoting = subprocess.Popen([sys.executable, "-c", STOPPED_PROMOTE, "promote", "a", "--model-name", "m",
                                  "--trial", "0", "--tracking-uri", mlflow_uri], cwd=project.root,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env={**os.environ, "TUNESMITH_STORAGE": project.storage})
    try:
        deadline = time.monotonic() + 240
        while not _stopped(promoting.pid):
            assert promoting.poll() is None and time.monotonic() < deadline, promoting.communicate()
            time.sleep(0.2)
        assert [r["kind"] for r in _trail(project, "a")] == ["promotion_started"]  # not settled under it
        code, out, err = cli_in_process("delete", "a", "--yes", "--storage", project.storage)
        assert code == 2 and "holds it now (it may be this one, under way)" in " ".join(err.split()), out + err
        assert "tunesmith.abandoned" not in _tags(mlflow_uri, "m", "1") and not _aliases(mlflow_uri, "m")
    finally:
        os.kill(promoting.pid, signal.SIGCONT)
        out, err = promoting.communicate(timeout=240)
    assert promoting.returncode == 0 and "version 1" in out, out + err
    assert [(r["kind"], r["trial"]) for r in _trail(project, "a")] == [("promotion_started", 0), ("promoted", 0)]
    assert _aliases(mlflow_uri, "m") == {"champion": 1}


@pytest.mark.parametrize("kill, settled", [
    (dict(method="register", before=True), "promotion_abandoned"),          # nothing registered yet
    (dict(method="register"), "promotion_abandoned"),                       # a version, no alias on it
    (dict(method="set_alias", when=lambda name, alias, version: alias == "champion"), "promoted"),
    (dict(method="set_alias", when=lambda name, alias, version: alias == "previous"), "promoted"),
], ids=["before-registering", "after-registering", "after-the-champion-alias", "after-the-previous-alias"])
def test_each_kill_point_of_a_promote_is_settled_by_the_next_promote(project: Project, mlflow_uri: str,
                                                                      kill: dict[str, Any], settled: str) -> None:
    store = tuned_with_models(project, "a", mlflow_uri, 2)
    assert promote(store, "a", "m", SystemClock(), trial_number=0).version == "1"
    with killed_at(**kill):
        promote(store, "a", "m", SystemClock(), trial_number=1, reason="better")

    again = promote(store, "a", "m", SystemClock(), trial_number=1)
    kinds = [(r["kind"], r["trial"]) for r in _trail(project, "a")]
    assert kinds[:4] == [("promotion_started", 0), ("promoted", 0), ("promotion_started", 1), (settled, 1)], kinds
    started, outcome = _trail(project, "a")[2:4]
    assert outcome["detail"]["intent"] == started["detail"]["intent"] and outcome["detail"]["reason"] == "better"
    if settled == "promoted":  # the interrupted one is recorded, its `previous` set; this one finds it the champion
        assert outcome["detail"]["version"] == "2" and outcome["detail"]["champion_before"] == "1"
        assert again.decision.value == "already the champion" and again.notes, again
        assert "interrupted" in again.notes[0] and "recorded as promoted" in again.notes[0]
        assert _aliases(mlflow_uri, "m") == {"champion": 2, "previous": 1}
        # and a rollback goes back to trial 0's version (with no `previous`, it had nowhere to go)
        assert rollback(store, "m", SystemClock(), mlflow_uri, "drift").to_version == "1"
    else:
        orphan = outcome["detail"].get("version")
        assert orphan == (None if kill.get("before") else "2"), outcome
        if orphan:
            assert "alias champion never moved" in _tags(mlflow_uri, "m", orphan)["tunesmith.abandoned"]
        assert again.decision.value == "promoted" and again.previous_champion == "1"
        assert kinds[4:] == [("promotion_started", 1), ("promoted", 1)], kinds
        assert _aliases(mlflow_uri, "m") == {"champion": int(again.version or 0), "previous": 1}


def test_a_version_an_interrupted_promotion_registered_does_not_lift_a_rollback(project: Project,
                                                                                 mlflow_uri: str) -> None:
    """`promote --even-if-rolled-back` killed after registering left the rolled-back trial's newest version
    untagged: a plain `promote` of that trial then passed gate rolled_back and shipped it again."""
    store = tuned_with_models(project, "a", mlflow_uri, 2)
    promote(store, "a", "m", SystemClock(), trial_number=0)
    promote(store, "a", "m", SystemClock(), trial_number=1)
    rollback(store, "m", SystemClock(), mlflow_uri, "drift")           # version 2 (trial 1) rolled back
    with killed_at("register"):
        promote(store, "a", "m", SystemClock(), trial_number=1, even_if_rolled_back=True)
    plain = promote(store, "a", "m", SystemClock(), trial_number=1)
    assert plain.rejected and [g.gate for g in plain.gates if not g.passed] == ["rolled_back"], plain.gates
    assert _aliases(mlflow_uri, "m") == {"champion": 1}


def test_delete_settles_an_interrupted_promotion_it_can_read_and_deletes_one_that_never_moved_the_alias(
        project: Project, mlflow_uri: str) -> None:
    store = tuned_with_models(project, "a", mlflow_uri, 2)
    with killed_at("register", before=True):
        promote(store, "a", "m", SystemClock(), trial_number=0)
    code, out, err = cli_in_process("delete", "a", "--yes", "--storage", project.storage)
    assert code == 0, out + err
    kept = store.deleted_experiments("a")[0].kept_events
    assert [e.kind for e in kept] == ["promotion_started", "promotion_abandoned"]


# -- rollback -----------------------------------------------------------------------------------------------------
ROLLBACK_KILLS = {
    "before-marking": dict(method="set_tag", before=True),
    "after-marking": dict(method="set_tag", when=lambda name, version, key, value: key == "tunesmith.rolled_back"),
    "after-the-champion-alias": dict(method="set_alias", when=lambda name, alias, version: alias == "champion"),
    "after-the-previous-alias": dict(method="delete_alias"),
}


@pytest.mark.parametrize("kill", ROLLBACK_KILLS.values(), ids=ROLLBACK_KILLS.keys())
def test_a_rollback_killed_at_each_step_is_finished_by_running_it_again(project: Project, mlflow_uri: str,
                                                                        kill: dict[str, Any]) -> None:
    """The walk's repro: `rollback` killed after moving `champion` left champion == previous == v1; run again it
    printed 'v1 -> v1', tagged v1 (the good model, serving) rolled back and recorded that, while v2, rolled back for
    drift, had no tag (and a plain promote shipped it again)."""
    store = tuned_with_models(project, "a", mlflow_uri, 2)
    promote(store, "a", "m", SystemClock(), trial_number=0)
    promote(store, "a", "m", SystemClock(), trial_number=1)
    with killed_at(**kill):
        rollback(store, "m", SystemClock(), mlflow_uri, "drift")
    # the sticky mark is there before any alias moves: whatever the kill left, trial 1's model is marked
    assert ("tunesmith.rolled_back" in _tags(mlflow_uri, "m", "2")) is not kill.get("before", False)

    again = rollback(store, "m", SystemClock(), mlflow_uri, "again")
    assert (again.from_version, again.to_version, again.previous) == ("2", "1", None)
    assert again.finished_interrupted is (not kill.get("before")), again
    assert _aliases(mlflow_uri, "m") == {"champion": 1}
    assert _tags(mlflow_uri, "m", "2")["tunesmith.rolled_back"] == ("again" if kill.get("before") else "drift")
    assert "tunesmith.rolled_back" not in _tags(mlflow_uri, "m", "1")
    rolled = [r for r in _trail(project, "a") if r["kind"] == "rolled_back"]
    assert [(r["detail"]["from_version"], r["detail"]["to_version"]) for r in rolled] == [("2", "1")], rolled
    kinds = [r["kind"] for r in _trail(project, "a") if r["kind"].startswith("rollback")]
    assert kinds == (["rollback_started", "rollback_abandoned", "rollback_started"] if kill.get("before")
                     else ["rollback_started"]), kinds
    assert promote(store, "a", "m", SystemClock(), trial_number=1).rejected       # gate rolled_back
    with pytest.raises(UserInputError, match="no earlier champion"):
        rollback(store, "m", SystemClock(), mlflow_uri, "a third time")


def test_a_rollback_without_a_store_killed_after_the_champion_alias_is_finished_and_tags_nothing_else(
        project: Project, mlflow_uri: str) -> None:
    store = tuned_with_models(project, "a", mlflow_uri, 2)
    promote(store, "a", "m", SystemClock(), trial_number=0)
    promote(store, "a", "m", SystemClock(), trial_number=1)
    with killed_at("set_alias", lambda name, alias, version: alias == "champion"):
        rollback(None, "m", SystemClock(), mlflow_uri, "drift")
    assert _aliases(mlflow_uri, "m") == {"champion": 1, "previous": 1}
    # run again (with a store now, which has no record of it: the registry's marks alone say what was cut short)
    code, out, err = cli_in_process("rollback", "m", "--reason", "again", "--tracking-uri", mlflow_uri,
                                    "--storage", project.storage)
    assert code == 0, out + err
    finished, held = out.strip().splitlines()
    assert finished == ("finished the interrupted rollback of m (reason: drift); nothing more was rolled back: "
                        "champion v2 -> v1; no earlier champion left"), out
    assert held.startswith("held: cycles with --model-name m "), out   # the rollback holds the cycles
    assert _aliases(mlflow_uri, "m") == {"champion": 1}
    assert "tunesmith.rolled_back" not in _tags(mlflow_uri, "m", "1")


def test_a_promote_after_a_rollback_killed_before_its_alias_moved_finishes_the_rollback_first(
        project: Project, mlflow_uri: str) -> None:
    store = tuned_with_models(project, "a", mlflow_uri, 3)
    for trial in (0, 1):
        promote(store, "a", "m", SystemClock(), trial_number=trial)
    with killed_at("set_tag", lambda name, version, key, value: key == "tunesmith.rolled_back"):
        rollback(store, "m", SystemClock(), mlflow_uri, "drift")
    assert _aliases(mlflow_uri, "m") == {"champion": 2, "previous": 1}   # marked, not moved
    third = promote(store, "a", "m", SystemClock(), trial_number=2)
    # the rollback was finished (v1 champion again, recorded), then trial 2 judged against v1: never v2 as `previous`
    assert (third.version, third.champion_before, third.previous_champion) == ("3", "1", "1"), third
    assert any("rollback of model 'm' from version 2 to 1" in n and "cut short" in n for n in third.notes), third.notes
    assert _aliases(mlflow_uri, "m") == {"champion": 3, "previous": 1}
    kinds = [r["kind"] for r in _trail(project, "a")]
    assert kinds[-4:] == ["rollback_started", "rolled_back", "promotion_started", "promoted"], kinds


def test_a_rollback_where_previous_is_the_champion_itself_is_refused(project: Project, mlflow_uri: str) -> None:
    """Aliases an older tunesmith's interrupted rollback left (or set by hand), no mark to finish: refused, not
    'v1 -> v1'."""
    store = tuned_with_models(project, "a", mlflow_uri, 2)
    promote(store, "a", "m", SystemClock(), trial_number=0)
    promote(store, "a", "m", SystemClock(), trial_number=1)
    _client(mlflow_uri).set_registered_model_alias("m", "champion", "1")   # previous -> 1 already
    with pytest.raises(UserInputError, match=r"alias `previous` names the champion itself \(version 1\)"):
        rollback(store, "m", SystemClock(), mlflow_uri, "drift")
    assert "tunesmith.rolled_back" not in _tags(mlflow_uri, "m", "1")
    assert not [r for r in _trail(project, "a") if r["kind"].startswith(("rollback", "rolled_back"))]
