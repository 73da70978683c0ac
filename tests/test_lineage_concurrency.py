"""Two re-tunes of one parent at once (two cycles on one lineage, a cycle and a hand-run `retune`): each names itself
in the parent's list of re-tunes, and neither name is lost. Real threads, each with its own store on one SQLite
file, running the real re-tunes."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tunesmith.events import RunListener
from tunesmith.records import ExperimentRecord
from tunesmith.retune import checked_retune_plan, run_retune_plan
from tunesmith.runner import run_experiment
from tunesmith.spec.loader import spec_from_dict
from tunesmith.storage.sql import SQLStore


class ReadsTheParentTogether(SQLStore):
    """A store whose first read of ``parent`` returns only once the other writer has read it too: the interleaving
    (both read the list, then both write) in which the writer that wrote first lost its name."""

    def __init__(self, url: str, parent: str, together: threading.Barrier) -> None:
        super().__init__(url)
        self.parent = parent
        self.together = together
        self.waited = False

    def experiment(self, name: str) -> ExperimentRecord:
        record = super().experiment(name)
        if name == self.parent and not self.waited:
            self.waited = True
            self.together.wait(timeout=120)
        return record


@pytest.fixture
def parent(project: Any) -> str:
    store = SQLStore(project.storage)
    spec = spec_from_dict(project.spec("lin", executor={"kind": "inline"}, budget={"trials": 4},
                                       base_dir=str(project.root), workdir=str(project.root / ".tunesmith" / "lin")))
    run_experiment(spec, store, RunListener())
    store.close()
    return "lin"


def test_two_retunes_of_one_parent_at_once_both_stay_named(project: Any, parent: str) -> None:
    planning = SQLStore(project.storage)
    plans = [checked_retune_plan(planning, parent, None, trials=1, new_name=f"lin-retune-{w}", top_k=1)
             for w in ("a", "b")]
    planning.close()
    together = threading.Barrier(2)
    failures: list[BaseException] = []

    def retune(plan: Any) -> None:
        store = ReadsTheParentTogether(project.storage, parent, together)
        try:
            run_retune_plan(store, plan, RunListener())
        except BaseException as e:  # noqa: BLE001 - reported by the test below
            failures.append(e)
        finally:
            store.close()

    threads = [threading.Thread(target=retune, args=(plan,)) for plan in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not failures, failures
    store = SQLStore(project.storage)
    assert sorted(store.experiment(parent).attributes["retunes"]) == ["lin-retune-a", "lin-retune-b"]
    assert {e.name for e in store.experiments()} == {"lin", "lin-retune-a", "lin-retune-b"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_concurrent_attribute_changes_lose_none(store_url: str) -> None:
    """The store's own read-change-write, from several threads with their own connections: every append kept (a
    deferred SQLite transaction read unlocked, so two appends could read the same list)."""
    setup = SQLStore(store_url)
    exp = setup.create_experiment("lin", {}, "random", "", 1.0)
    setup.close()
    start = threading.Barrier(3)
    failures: list[BaseException] = []

    def append(worker: int) -> None:
        store = SQLStore(store_url)
        try:
            start.wait(timeout=60)
            for i in range(15):
                store.change_attributes(exp.id, lambda a, i=i: {"seen": [*a.get("seen", []), f"{worker}-{i}"]},
                                        float(i))
        except BaseException as e:  # noqa: BLE001
            failures.append(e)
        finally:
            store.close()

    threads = [threading.Thread(target=append, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not failures, failures
    reader = SQLStore(store_url)
    seen = reader.experiment("lin").attributes["seen"]
    reader.close()
    assert sorted(seen) == sorted(f"{w}-{i}" for w in range(3) for i in range(15))


def test_a_refused_retune_takes_back_only_its_own_name(project: Any, parent: str) -> None:
    """A re-tune refused before it was recorded (trial folders of another experiment in its work folder) takes its
    name off the parent's list, and only its name: writing back the list as it had read it dropped a re-tune that
    named itself meanwhile."""
    store = SQLStore(project.storage)
    plan = checked_retune_plan(store, parent, None, trials=1, new_name="lin-retune-x", top_k=1)
    assert plan.spec.workdir is not None
    Path(plan.spec.workdir, "trial-00000").mkdir(parents=True)  # left by a deleted experiment of that name
    exp = store.experiment(parent)

    class NamedMeanwhile(SQLStore):
        """Another re-tune names itself on the parent while this one checks its work folder."""

        def experiments(self) -> list[ExperimentRecord]:
            if not getattr(self, "done", False):
                self.done = True
                named = store.experiment(parent).attributes.get("retunes", [])
                store.set_attributes(exp.id, {"retunes": [*named, "lin-retune-y"]}, 1.0)
            return super().experiments()

    from tunesmith.errors import SpecError

    with pytest.raises(SpecError, match="trial-00000"):
        run_retune_plan(NamedMeanwhile(project.storage), plan, RunListener())
    assert store.experiment(parent).attributes["retunes"] == ["lin-retune-y"]


def test_a_retune_whose_name_another_took_meanwhile_leaves_that_ones_record_alone(project: Any,
                                                                                 parent: str) -> None:
    """Two re-tunes that chose one name (planned at once): the one refused (ExperimentExists) neither names the
    other's experiment as its own (a `retuned` event) nor takes the name off the parent's list."""
    from tunesmith.errors import ExperimentExists

    store = SQLStore(project.storage)
    plan = checked_retune_plan(store, parent, None, trials=1, new_name="lin-retune-1", top_k=1)
    other = checked_retune_plan(store, parent, None, trials=1, new_name="lin-retune-1", top_k=1)
    exp = store.experiment(parent)

    class TheOtherRanFirst(SQLStore):
        def create_experiment(self, *args: Any, **kwargs: Any) -> ExperimentRecord:
            run_retune_plan(SQLStore(project.storage), other, RunListener())  # the other cycle, in between
            return super().create_experiment(*args, **kwargs)

    with pytest.raises(ExperimentExists):
        run_retune_plan(TheOtherRanFirst(project.storage), plan, RunListener())
    assert store.experiment(parent).attributes["retunes"] == ["lin-retune-1"]
    named = [e.payload["child"] for e in store.events(exp.id) if e.kind == "retuned"]
    assert named == ["lin-retune-1"], named  # the other's one event, not a second from the refused one
    assert store.experiment("lin-retune-1").status.value == "completed"
