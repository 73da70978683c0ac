"""A coordinator leaving an experiment: what it leaves in the store, and what its last beats found."""

from __future__ import annotations

import threading

import pytest

from tests.helpers import wait_for
from tunesmith.errors import StorageError


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage(request, project):
    if request.param == "sqlite":
        return project.storage
    return request.getfixturevalue("postgres_url")


def test_a_run_and_its_resume_leave_no_beats_row_of_their_own(project, storage, monkeypatch):
    """Each run, resume and `--join` beats as a new coordinator (a row of the store's coordinator_beats); the rows
    were deleted only with the experiment, so a long-lived experiment resumed by a cycle piled them up."""
    import tunesmith.runner as runner_module
    from tunesmith.coordinators import Heartbeat
    from tunesmith.events import RunListener
    from tunesmith.runner import Runner, resume_experiment, run_experiment
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage import SQLStore

    monkeypatch.setattr(runner_module, "Heartbeat", lambda beat: Heartbeat(beat, 0.05))
    store = SQLStore(storage)
    runners: list[Runner] = []
    beating: list[str] = []

    class SeesItsBeat(RunListener):  # the row exists while the run goes on (a beat comes every 0.05 s)
        def trial_finished(self, trial, best):  # type: ignore[no-untyped-def]
            runner = runners[-1]
            beating.append(wait_for(lambda: runner._owner in store.coordinator_beats(runner.experiment.id)
                                    and runner._owner, timeout=60))
            if len(runners) == 1:
                runner.request_stop()  # the first run is interrupted after its first trial; the resume runs the rest

    spec = spec_from_dict(project.spec(name="tidy", executor={"kind": "inline"}, budget={"trials": 2},
                                       base_dir=str(project.root)))
    try:
        run_experiment(spec, store, SeesItsBeat(), on_runner=runners.append)
        exp_id = store.experiment("tidy").id
        assert store.coordinator_beats(exp_id) == {}, "the interrupted run left its beats' row"
        assert store.experiment("tidy").status.value == "interrupted"
        resume_experiment("tidy", store, SeesItsBeat(), on_runner=runners.append)
        assert store.coordinator_beats(exp_id) == {}, "the resume left its beats' row"
        assert store.experiment("tidy").status.value == "completed"
    finally:
        store.close()
    assert len(set(beating)) == 2 and set(beating) == {r._owner for r in runners}


@pytest.mark.parametrize("shown", [True, False], ids=["to the listeners", "to stderr"])
def test_heartbeats_failing_during_the_shutdown_are_told(project, monkeypatch, capsys, shown):
    """The loop tells what the beats found, the last time before the shutdown: beats failing in the grace period,
    the holdout refit or `leave` (waiting on a locked store) were never told. They are, once, after the heartbeat
    stopped: to the listeners that show warnings, else to stderr."""
    import tunesmith.runner as runner_module
    from tunesmith.coordinators import Heartbeat
    from tunesmith.events import RunListener
    from tunesmith.runner import run_experiment
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage import SQLStore

    monkeypatch.setattr(runner_module, "Heartbeat", lambda beat: Heartbeat(beat, 0.05))
    store = SQLStore(project.storage)
    beat, leave = store.heartbeat, runner_module.leave
    failing, failed = threading.Event(), threading.Event()

    def heartbeat(*args, **kwargs):  # type: ignore[no-untyped-def]
        if failing.is_set():
            failed.set()
            raise StorageError("database is locked")
        return beat(*args, **kwargs)

    def slow_leave(*args, **kwargs):  # type: ignore[no-untyped-def]
        failing.set()   # from here on the beats fail, and leave waits for one to (as on a locked store)
        assert failed.wait(60)
        return leave(*args, **kwargs)

    monkeypatch.setattr(store, "heartbeat", heartbeat)
    monkeypatch.setattr(runner_module, "leave", slow_leave)
    warnings: list[str] = []

    class Warnings(RunListener):
        def warning(self, message: str) -> None:
            warnings.append(message)

    spec = spec_from_dict(project.spec(name="late", executor={"kind": "inline"}, budget={"trials": 2},
                                       base_dir=str(project.root)))
    try:
        result = run_experiment(spec, store, Warnings() if shown else None)
    finally:
        store.close()
    assert result.experiment.status.value == "completed"
    told = warnings if shown else [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    told = [m for m in told if "heartbeat" in m]
    assert len(told) == 1, told
    assert "failed in a row" in told[0] and "StorageError: database is locked" in told[0], told
