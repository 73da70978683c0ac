"""One promotion of a registered model at a time (tunesmith.promotion.model_lock).

Two `tunesmith promote` of one model at once both printed `pass beat_champion: no champion yet`, exit 0: the first
registered version 1 as champion, the second version 2 as champion with no `previous`, so version 1 was displaced
unseen and `rollback` could not go back to it. The promotes here are real CLI processes on real SQLite stores and a
real MLflow registry; a barrier in each (its first read of the champion waits for the other's, or for the other to
be queued for the model's lease) makes the overlap certain, whatever the scheduling.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests._promotion_setup import tuned_with_models
from tests.conftest import Project
from tests.helpers import cli_in_process, one_error_line
from tunesmith.clock import SystemClock

# `tunesmith ARGS` with a barrier at the first read of the champion (ModelRegistry.by_alias(_, "champion")): it
# touches BARRIER/ME, then waits (at most 60 s) for what BARRIER_WAITS names: "peer" (BARRIER/OTHER exists, or the
# other promote is queued in STORE for the model's lease) or "champion" (the registry has a champion: the other
# promote has registered). Later reads are not held.
WITH_BARRIER = """
import os, runpy, sqlite3, sys, time
from pathlib import Path
from tunesmith.tracking.model_registry import ModelRegistry

barrier, me, other, waits = (os.environ[k] for k in ("BARRIER", "ME", "OTHER", "BARRIER_WAITS"))
read = ModelRegistry.by_alias
first = []

def arrived(registry, name):
    if waits == "champion":
        return read(registry, name, "champion") is not None
    if (Path(barrier) / other).exists():
        return True
    with sqlite3.connect(os.environ["STORE"]) as conn:   # the other waits for the lease this one holds
        return conn.execute("SELECT count(*) FROM quota_waiters WHERE quota_key = ? AND expires_at > ?",
                            ("promote:" + name, time.time())).fetchone()[0] > 0

def by_alias(self, name, alias):
    found = read(self, name, alias)
    if alias == "champion" and not first:
        first.append(found)
        (Path(barrier) / me).touch()
        deadline = time.time() + 60
        while not arrived(self, name) and time.time() < deadline:
            time.sleep(0.05)
    return found

ModelRegistry.by_alias = by_alias
sys.argv = ["tunesmith", *sys.argv[1:]]
runpy.run_module("tunesmith.cli", run_name="__main__")
"""


def _promote(project: Project, store: Path, me: str, other: str, waits: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{store}", "COLUMNS": "200", "BARRIER": str(project.root),
           "ME": me, "OTHER": other, "BARRIER_WAITS": waits, "STORE": str(store)}
    return subprocess.Popen([sys.executable, "-c", WITH_BARRIER, "promote", *args], cwd=project.root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _done(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    out, err = proc.communicate(timeout=240)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _registry(mlflow_uri: str):  # type: ignore[no-untyped-def]
    import mlflow

    return mlflow.MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)


def _promotions(store: Path, name: str) -> list[dict]:
    code, out, err = cli_in_process("audit", name, "--json", "--storage", f"sqlite:///{store}")
    assert code == 0, out + err
    return [e for e in json.loads(out) if e["kind"].startswith("promot")]


def test_two_promotes_of_one_model_at_once_take_turns_and_the_second_is_judged_against_the_first(
        project: Project, mlflow_uri: str) -> None:
    tuned_with_models(project, "race", mlflow_uri, 2)
    a = _promote(project, project.db, "a", "b", "peer", "race", "--model-name", "race", "--trial", "0")
    b = _promote(project, project.db, "b", "a", "peer", "race", "--model-name", "race", "--trial", "1")
    done = [_done(a), _done(b)]
    assert [p.returncode for p in done] == [0, 0], [p.stdout + p.stderr for p in done]
    client = _registry(mlflow_uri)
    # before: {'champion': '2'} (no previous: version 1 displaced, never compared with)
    assert client.get_registered_model("race").aliases == {"champion": 2, "previous": 1}
    assert client.get_model_version("race", "2").tags["tunesmith.previous_champion"] == "1"
    said = [e["detail"]["champion_before"] for e in _promotions(project.db, "race") if e["kind"] == "promoted"]
    assert sorted(said, key=str) == ["1", None], said  # the second judged the first's version as the champion
    second = next(p for p in done if "previous -> 1" in p.stdout)
    assert "waiting for another promotion or rollback of model 'race' (pid " in second.stderr, second.stderr
    assert not client.get_registered_model("race").aliases.keys() - {"champion", "previous"}
    shutil.rmtree(project.root / ".tunesmith", ignore_errors=True)


def test_a_promote_with_another_store_whose_champion_moved_while_it_judged_registers_nothing(
        project: Project, mlflow_uri: str) -> None:
    """Two stores sharing one registry hold no lease in common: the champion is read again before the registering,
    and one that changed since it was judged is refused (exit 75), nothing registered, nothing audited."""
    stores = [project.root / f"team-{t}.db" for t in "ab"]
    for store in stores:
        tuned_with_models(project, "shared", mlflow_uri, 2, f"sqlite:///{store}",
                          workdir=str(project.root / store.stem))
    before = _promotions(stores[1], "shared")
    first = _promote(project, stores[0], "a", "b", "peer", "shared", "--model-name", "shared-model")
    # b reads "no champion" once a has, then goes on only once a has registered
    late = _promote(project, stores[1], "b", "a", "champion", "shared", "--model-name", "shared-model")
    first_done, late_done = _done(first), _done(late)
    assert first_done.returncode == 0 and "version 1" in first_done.stdout, first_done.stdout + first_done.stderr
    said = one_error_line(late_done, 75)
    assert "the champion of model 'shared-model' changed while this promotion was judged (version (none) then, " \
           "1 now" in said and "nothing is registered and no alias moved: run it again" in said, said
    client = _registry(mlflow_uri)
    assert client.get_registered_model("shared-model").aliases == {"champion": 1}
    assert [str(v.version) for v in client.search_model_versions("name='shared-model'")] == ["1"]
    assert _promotions(stores[1], "shared") == before  # no promotion recorded that did not happen
    shutil.rmtree(project.root / ".tunesmith", ignore_errors=True)


def test_a_promote_or_rollback_waits_a_bounded_time_then_exits_75_naming_the_holder(
        project: Project, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tunesmith.promotion.model_lock import PromotionBusy, model_held
    from tunesmith.promotion.promote import promote, rollback

    store = tuned_with_models(project, "held", mlflow_uri, 2)
    assert promote(store, "held", "held-model", SystemClock(), trial_number=0).version == "1"
    assert promote(store, "held", "held-model", SystemClock(), trial_number=1).version == "2"
    monkeypatch.setattr("tunesmith.promotion.model_lock.WAIT_S", 0.5)
    monkeypatch.setenv("TUNESMITH_STORAGE", project.storage)
    events = len(_promotions(project.db, "held"))
    with model_held(store, "held-model", None, "promotion"):  # as a promotion under way holds it
        started = time.monotonic()
        code, out, err = cli_in_process("promote", "held", "--model-name", "held-model", "--trial", "0")
        assert 0.5 <= time.monotonic() - started < 30
        assert code == 75 and f"another promotion or rollback of model 'held-model' is under way (pid {os.getpid()} " \
            "on this host, since " in err and "(exit 75: try again later)" in err, (out, err)
        with pytest.raises(PromotionBusy, match="longer than this rollback waits"):
            rollback(store, "held-model", SystemClock(), mlflow_uri, "bad model")
        dry = promote(store, "held", "held-model", SystemClock(), trial_number=0, dry_run=True)  # moves nothing
        assert dry.decision.value == "dry run: every gate passed"
    assert len(_promotions(project.db, "held")) == events + 1  # the dry run's event alone
    assert _registry(mlflow_uri).get_registered_model("held-model").aliases == {"champion": 2, "previous": 1}
    # given back at the end of the block: the rollback runs at once
    assert rollback(store, "held-model", SystemClock(), mlflow_uri, "bad model").to_version == "1"
    shutil.rmtree(project.root / ".tunesmith", ignore_errors=True)
