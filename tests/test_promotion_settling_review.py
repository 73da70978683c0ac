"""Settling an interrupted promotion against a registry that is not the one it ran against, or one moved on since
(review A: H1, H2).

A promotion killed after moving alias ``champion`` is recorded by the next command as it finds the registry. Found
moved (its SQLite file gone) it was recorded abandoned, and a killed *first* promotion then got past the
registry-moved refusal and registered into a new, empty database at the old path (H1). Found rolled back since by a
rollback without this store, its version was recorded as never served and the rollback's sticky mark was read past
(H2). Each test runs the real code against a real MLflow registry (SQLite) and a real store.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests._promotion_setup import tuned_with_models
from tests.conftest import Project
from tests.test_promotion_interrupted import _aliases, _tags, _trail, killed_at
from tunesmith.clock import SystemClock
from tunesmith.errors import UserInputError
from tunesmith.promotion.promote import promote, rollback
from tunesmith.storage.sql import SQLStore


def _moved(mlflow_uri: str) -> str:
    """Moves the registry's SQLite file into a sibling folder; its new URI."""
    old = Path(mlflow_uri[len("sqlite:///"):])
    (old.parent / "moved").mkdir()
    shutil.move(old, old.parent / "moved" / "mlflow.db")
    return f"sqlite:///{old.parent / 'moved' / 'mlflow.db'}"


def _kinds(project: Project) -> list[tuple[str, int | None, str | None]]:
    return [(r["kind"], r["trial"], r["detail"].get("version")) for r in _trail(project, "a")]


def test_a_killed_first_promotion_whose_registry_then_moved_is_refused_and_settled_where_it_moved(
        project: Project, mlflow_uri: str) -> None:
    store = tuned_with_models(project, "a", mlflow_uri, 2)
    with killed_at("set_alias", lambda name, alias, version: alias == "champion"):
        promote(store, "a", "m", SystemClock(), trial_number=0)
    moved = _moved(mlflow_uri)

    with pytest.raises(UserInputError, match="no MLflow database at") as refused:
        promote(store, "a", "m", SystemClock(), trial_number=1)
    assert "--tracking-uri URI" in str(refused.value)
    assert not Path(mlflow_uri[len("sqlite:///"):]).exists()   # nothing registered into a new, empty database
    assert _kinds(project) == [("promotion_started", 0, None)]   # left unsettled, not recorded abandoned

    out = promote(store, "a", "m", SystemClock(), trial_number=0, tracking_uri=moved)
    assert out.decision.value == "already the champion"
    assert [k for k, _, _ in _kinds(project)][:2] == ["promotion_started", "promoted"]


def test_a_killed_second_promotion_whose_registry_then_moved_is_recorded_promoted_where_it_moved(
        project: Project, mlflow_uri: str) -> None:
    store = tuned_with_models(project, "a", mlflow_uri, 2)
    promote(store, "a", "m", SystemClock(), trial_number=0)
    with killed_at("set_alias", lambda name, alias, version: alias == "champion"):
        promote(store, "a", "m", SystemClock(), trial_number=1)
    moved = _moved(mlflow_uri)

    with pytest.raises(UserInputError, match="no MLflow database at"):
        promote(store, "a", "m", SystemClock(), trial_number=1)
    assert "promotion_abandoned" not in [k for k, _, _ in _kinds(project)]

    out = promote(store, "a", "m", SystemClock(), trial_number=1, tracking_uri=moved)
    assert out.decision.value == "already the champion"
    assert _aliases(moved, "m") == {"champion": 2, "previous": 1}   # `previous` set: a rollback can go back
    kinds = _kinds(project)
    assert ("promoted", 1, "2") in kinds and "promotion_abandoned" not in [k for k, _, _ in kinds]


def _second_promotion_rolled_back_without_this_store(project: Project, mlflow_uri: str, killed: bool) -> SQLStore:
    """Trial 0 promoted, then trial 1 (``killed``: after both aliases moved, its outcome not recorded), then a
    rollback by someone without this store, from trial 1's version 2 to version 1; the store."""
    store = tuned_with_models(project, "a", mlflow_uri, 2)
    promote(store, "a", "m", SystemClock(), trial_number=0)
    if killed:
        with killed_at("set_alias", lambda name, alias, version: alias == "previous"):
            promote(store, "a", "m", SystemClock(), trial_number=1)
    else:
        promote(store, "a", "m", SystemClock(), trial_number=1)
    rollback(None, "m", SystemClock(), mlflow_uri, "drift")
    assert _aliases(mlflow_uri, "m")["champion"] == 1
    return store


def test_a_killed_promotion_rolled_back_since_without_this_store_served_and_its_rollback_stands(
        project: Project, mlflow_uri: str) -> None:
    store = _second_promotion_rolled_back_without_this_store(project, mlflow_uri, killed=True)
    again = promote(store, "a", "m", SystemClock(), trial_number=1)
    assert again.decision.value == "rejected" and again.version is None
    assert [g.gate for g in again.gates if not g.passed] == ["rolled_back"]
    assert "tunesmith.abandoned" not in _tags(mlflow_uri, "m", "2")
    kinds = _kinds(project)
    assert ("promoted", 1, "2") in kinds and "promotion_abandoned" not in [k for k, _, _ in kinds]


def test_a_version_the_rollback_mark_was_written_on_is_a_rollback_even_where_it_was_tagged_abandoned(
        project: Project, mlflow_uri: str) -> None:
    # a store settled (by an older tunesmith) before this one knew better: the version carries both tags
    store = _second_promotion_rolled_back_without_this_store(project, mlflow_uri, killed=False)
    from tests.test_promotion_interrupted import _client

    _client(mlflow_uri).set_model_version_tag("m", "2", "tunesmith.abandoned", "its promotion was interrupted")
    again = promote(store, "a", "m", SystemClock(), trial_number=1)
    assert [g.gate for g in again.gates if not g.passed] == ["rolled_back"]


def test_a_registry_that_cannot_be_read_now_is_not_read_as_holding_no_champion(tmp_path: Path) -> None:
    # a cycle's live run writing to the same mlflow.db holds it locked: MLflow says TEMPORARILY_UNAVAILABLE after
    # 20 s, which was read as "alias never moved" and the serving champion's promotion recorded abandoned (M2)
    import sqlite3
    from concurrent.futures import ThreadPoolExecutor

    from tests.test_promotion_interrupted import _client
    from tunesmith.errors import RegistryUnavailable
    from tunesmith.tracking.model_registry import ModelRegistry

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _client(uri).create_registered_model("m")
    registry = ModelRegistry(uri)
    assert registry.by_alias("m", "champion") is None and registry.by_alias("other", "champion") is None
    assert registry.aliases("m") == {} and registry.aliases("other") == {}
    lock = sqlite3.connect(tmp_path / "mlflow.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        with ThreadPoolExecutor(2) as pool:
            reads = [pool.submit(registry.by_alias, "m", "champion"), pool.submit(registry.aliases, "m")]
            for read in reads:
                with pytest.raises(RegistryUnavailable, match="worth retrying"):
                    read.result()
    finally:
        lock.execute("ROLLBACK")


class _CountedReads(SQLStore):
    """A real SQLite store that counts its reads of one experiment's whole event log."""

    whole_logs_read = 0

    def events(self, experiment_id: int, since_id: int = 0):  # type: ignore[no-untyped-def]
        self.whole_logs_read += 1
        return super().events(experiment_id, since_id)


def test_the_audit_trail_of_promotions_is_read_in_one_query_not_each_experiments_every_event(tmp_path: Path) -> None:
    """Review A M1: every promote, rollback and first promotion's refusal read every event of every experiment
    (their trials' among them), one query per experiment: seconds on a store of hundreds of experiments."""
    from tunesmith.audit import AuditKind
    from tunesmith.promotion.champions import champions_held, recorded_champion
    from tunesmith.promotion.intents import unsettled
    from tunesmith.testing.store_contract import SPEC

    store = _CountedReads(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        made = [store.create_experiment(f"e{i}", SPEC, "random", "", now=1.0) for i in range(30)]
        for i, exp in enumerate(made):
            store.record_event(exp.id, "trial_started", 2.0 + i, 0)
        store.record_event(made[3].id, AuditKind.PROMOTION_STARTED, 50.0, 0,
                           {"model_name": "m", "intent": "t1", "registry": "sqlite:///a.db"})
        store.record_event(made[3].id, AuditKind.PROMOTED, 51.0, 0,
                           {"model_name": "m", "version": "1", "intent": "t1"})
        store.record_event(made[7].id, AuditKind.PROMOTION_STARTED, 52.0, 1,
                           {"model_name": "m", "intent": "t2", "registry": "sqlite:///a.db"})
        store.whole_logs_read = 0
        [left] = unsettled(store, model_name="m")
        assert (left.experiment.name, left.token, left.registry) == ("e7", "t2", "sqlite:///a.db")
        champion = recorded_champion(store, "m", "sqlite:///a.db")
        assert champion is not None and (champion.experiment, champion.version) == ("e3", "1")
        assert recorded_champion(store, "m", "sqlite:///b.db") is None  # the promoted event's registry, its intent's
        assert store.whole_logs_read == 0
        assert [c.version for c in champions_held(store, made[3])] == ["1"] and store.whole_logs_read == 1  # its own
    finally:
        store.close()
