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


def test_a_joiner_re_runs_the_trials_of_a_peer_killed_on_this_host_before_it_finishes(project, monkeypatch):
    """A lead SIGKILLed on this host while a joiner ran: the joiner finished the budget and recorded the experiment
    completed, with the lead's trial `running` for ever (a new user's walk). A peer gone on this host is known at
    once by its pid: the joiner reclaims its trials at its next sync, and before it finishes, and re-runs them."""
    import socket
    import subprocess
    import sys
    import time

    from tunesmith.lease_holders import lease_owner_id
    from tunesmith.records import RunStatus, TrialState
    from tunesmith.runner import prepare, resume_experiment
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage import SQLStore

    project.write("peerkill.py", """
        import os, signal

        def objective(config, trial):
            try:  # the peer dies while this joiner runs its first trial (inline: the peer is this process's child)
                os.kill(int(os.environ["PEER_PID"]), signal.SIGKILL)
                os.waitpid(int(os.environ["PEER_PID"]), 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            return {"loss": (config["x"] - 0.5) ** 2}
    """)
    peer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        monkeypatch.setenv("PEER_PID", str(peer.pid))
        host, _, tag = lease_owner_id().split(":")
        assert host == socket.gethostname()
        owner = f"{host}:{peer.pid}:{tag}"  # the peer's name, as its coordinator would record it
        spec = spec_from_dict(project.spec(name="orphaned", trial={"function": "peerkill:objective"},
                                           budget={"trials": 4}, executor={"kind": "inline"},
                                           base_dir=str(project.root), workdir=str(project.root / "work")))
        store = SQLStore(project.storage)
        plan = prepare(spec)
        exp = store.create_experiment(spec.name, plan.spec.to_json(), plan.decision.name, "", 0.0)
        now = time.time()  # the peer beat just now: only its death makes its trial abandoned
        store.new_trial(exp.id, {"x": 0.1}, 1, now, str(project.root / "work" / "t{number}.log"), owner=owner)
        store.set_status(exp.id, RunStatus.RUNNING, now, {"owner": owner})

        runners: list = []
        result = resume_experiment("orphaned", store, join=True, on_runner=runners.append)
    finally:
        peer.kill()
        peer.wait()
    trials = store.trials(exp.id)
    store.close()
    assert [t.state for t in trials] == [TrialState.COMPLETED] * 4, [(t.number, t.state) for t in trials]
    assert trials[0].attempts == 2 and trials[0].params == {"x": 0.1}, "the peer's trial was re-run as it was"
    assert result.experiment.status is RunStatus.COMPLETED
    # the peer's trial, pending in the strategy while the peer ran it, ended with its re-run (not pending for ever)
    assert runners[0]._strategy._live == {}


def test_a_dead_peers_trial_is_reclaimed_by_one_coordinator_only(project):
    """Two coordinators find the same trial abandoned at once: the store records it lost for the first only, so
    only one of them re-runs it."""
    from tunesmith.coordinators import STALE_AFTER, reclaim_abandoned
    from tunesmith.records import TrialState
    from tunesmith.runner import prepare
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage import SQLStore

    spec = spec_from_dict(project.spec(name="shared", base_dir=str(project.root)))
    store = SQLStore(project.storage)
    plan = prepare(spec)
    exp = store.create_experiment(spec.name, plan.spec.to_json(), plan.decision.name, "", 0.0)
    store.new_trial(exp.id, {"x": 0.1}, 1, 0.0, "t{number}.log", owner="elsewhere:1:gone")  # silent since 0.0
    seen = store.unfinished_trials(exp.id)  # what both read before either wrote
    first = reclaim_abandoned(store, exp.id, seen, 1000.0, STALE_AFTER)
    second = reclaim_abandoned(store, exp.id, seen, 1000.0, STALE_AFTER)
    assert [t.number for t in first] == [0] and second == []
    assert store.trials(exp.id)[0].state is TrialState.LOST and store.unfinished_trials(exp.id) == []
    assert [e.kind for e in store.events(exp.id)].count("trial_lost") == 1
    store.close()


def test_a_trial_whose_coordinator_is_at_work_is_not_reclaimed_however_old_its_beat(project):
    """Reclaiming ran every 2 s by the trials' beats alone: a lead holding an unexpired lease, or a live process on
    this host, whose beats had stalled 61 s (suspended; a store lock waited out twice) had its trials re-run beside
    it, which then ran twice. The rule is peers_at_work's; and a beat landing after the read stops the claim."""
    from tunesmith.coordinators import LEASE_TTL, STALE_AFTER, reclaim_abandoned
    from tunesmith.lease_holders import lease_owner_id
    from tunesmith.runner import prepare
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage import SQLStore

    spec = spec_from_dict(project.spec(name="stalled", base_dir=str(project.root)))
    store = SQLStore(project.storage)
    plan = prepare(spec)
    exp = store.create_experiment(spec.name, plan.spec.to_json(), plan.decision.name, "", 0.0)
    lead, here = "elsewhere.invalid:1:lead", lease_owner_id()   # a remote lease holder; this live process
    assert store.acquire_lease(exp.id, lead, 0.0, LEASE_TTL) is None
    store.new_trial(exp.id, {"x": 0.1}, 1, 0.0, "t{number}.log", owner=lead)
    store.new_trial(exp.id, {"x": 0.2}, 1, 0.0, "t{number}.log", owner=here)
    silent = STALE_AFTER + 1   # both beats 61 s old; the lease runs until 120 s
    assert reclaim_abandoned(store, exp.id, store.unfinished_trials(exp.id), silent, STALE_AFTER) == []
    lapsed = LEASE_TTL + 1     # the lease lapsed: the remote lead's trial is abandoned; the live local one is not
    assert [t.number for t in reclaim_abandoned(store, exp.id, store.unfinished_trials(exp.id), lapsed,
                                                STALE_AFTER)] == [0]
    store.new_trial(exp.id, {"x": 0.3}, 1, 0.0, "t{number}.log", owner="elsewhere.invalid:2:joiner")
    seen = store.unfinished_trials(exp.id)
    store.heartbeat(exp.id, [2], lapsed, "elsewhere.invalid:2:joiner")   # it beat after the read
    assert reclaim_abandoned(store, exp.id, seen, lapsed, STALE_AFTER) == []
    store.close()


class _Workers:
    """An executor with ``slots`` free workers that takes trials and runs none: the test decides when each ends."""

    def __init__(self, slots: int) -> None:
        self.slots, self.submitted = slots, []

    def free_slots(self) -> int:
        return self.slots

    def next_job_waits(self) -> bool:
        return False

    def submit(self, job) -> None:
        self.slots -= 1
        self.submitted.append(job.number)


def test_a_lost_trial_is_re_run_by_one_coordinator_only(project):
    """A trial recorded lost waited in its claimer's queue for a free worker; a coordinator starting meanwhile
    (`resume --join`) took it from the record to re-run too, and both ran it, each record overwriting the other's.
    Taking a lost trial for its re-run is a claim (still lost, same attempt): one coordinator re-runs it, the other
    moves on to a new trial."""
    from dataclasses import replace

    from tunesmith.clock import SystemClock
    from tunesmith.records import FailureKind, TrialState
    from tunesmith.runner import Runner, prepare
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage import SQLStore

    spec = spec_from_dict(project.spec(name="lostonce", budget={"trials": 6}, executor={"kind": "inline"},
                                       base_dir=str(project.root), workdir=str(project.root / "work")))
    store = SQLStore(project.storage)
    plan = prepare(spec)
    exp = store.create_experiment(spec.name, plan.spec.to_json(), plan.decision.name, "", 0.0)
    rec = store.new_trial(exp.id, {"x": 0.1}, 1, 0.0, str(project.root / "work" / "t{number}.log"), owner="gone")
    store.save_trial(exp.id, replace(rec, state=TrialState.LOST, failure_kind=FailureKind.LOST), "trial_lost", 1.0)
    first = Runner(store, exp, plan, None, SystemClock(), executor=_Workers(0))  # type: ignore[arg-type]
    second = Runner(store, exp, plan, None, SystemClock(), executor=_Workers(1), join=True)  # type: ignore[arg-type]
    first._setup(resumed=True)   # trial 0 waits in its queue for a free worker
    second._setup(resumed=True)  # a joiner starting meanwhile reads it lost too
    second._dispatch(0.0, None)
    first.executor.slots = 1  # type: ignore[attr-defined]
    first._dispatch(0.0, None)
    assert second.executor.submitted == [0]  # type: ignore[attr-defined]
    moved_on = first.executor.submitted  # type: ignore[attr-defined]
    assert moved_on == [1], "the coordinator that lost the claim moves on to a new trial"
    trial = store.trials(exp.id, [0])[0]
    assert trial.attempts == 2 and trial.owner == second._owner and trial.state is TrialState.RUNNING
    assert [e.kind for e in store.events(exp.id)].count("trial_rerun") == 1
    store.close()


def test_a_retry_another_coordinator_took_over_is_left_to_it(project):
    """A trial waiting out its retry's back-off was found abandoned (its coordinator's beats stalled) and re-run by
    another coordinator; when the back-off ended, its own coordinator re-ran it as well. It now moves on, and its
    strategy learns the trial's outcome from the one that ran it."""
    from dataclasses import replace

    from tunesmith.clock import SystemClock
    from tunesmith.records import Failure, FailureKind, Outcome, TrialState
    from tunesmith.runner import Runner, prepare
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage import SQLStore

    spec = spec_from_dict(project.spec(name="retried", budget={"trials": 6}, executor={"kind": "inline"},
                                       base_dir=str(project.root), workdir=str(project.root / "work")))
    store = SQLStore(project.storage)
    plan = prepare(spec)
    exp = store.create_experiment(spec.name, plan.spec.to_json(), plan.decision.name, "", 0.0)
    runner = Runner(store, exp, plan, None, SystemClock(), executor=_Workers(1))  # type: ignore[arg-type]
    runner._setup(resumed=True)
    runner._dispatch(0.0, None)
    runner._finish(runner._running.pop(0), Outcome(failure=Failure(FailureKind.CRASHED, "killed")))
    assert [t.state for t in store.trials(exp.id)] == [TrialState.QUEUED]  # its retry waits out the back-off
    waiting = store.trials(exp.id)[0]
    assert store.mark_lost(exp.id, replace(waiting, state=TrialState.LOST), 10.0)   # another coordinator's claim
    lost = store.trials(exp.id)[0]
    assert store.take_for_rerun(exp.id, lost, replace(lost, state=TrialState.RUNNING, attempts=2, owner="other"),
                                "trial_rerun", 11.0)
    store.save_trial(exp.id, replace(store.trials(exp.id, [0])[0], state=TrialState.COMPLETED, values=(0.5,),
                                     finished_at=12.0, duration_s=1.0), "trial_completed", 12.0)
    runner._sync()  # (trial 0 is still its own here: its end is not a peer's)
    runner.executor.slots = 1  # type: ignore[attr-defined]
    runner._dispatch(1e9, None)  # the back-off is over
    submitted = runner.executor.submitted  # type: ignore[attr-defined]
    assert submitted == [0, 1], "the retry is left to the other; a new trial instead"
    assert store.trials(exp.id, [0])[0].owner == "other"
    runner._sync()
    assert len(runner._strategy._live) == 1, "trial 0's outcome reached the strategy: only trial 1 is pending"
    assert runner._budget.finished == 1, "and its budget counts it"
    store.close()


def test_a_retry_another_coordinator_took_over_is_not_recorded_interrupted_by_its_first(project):
    """A coordinator stopping recorded every retry still waiting out its back-off interrupted, unconditionally: one
    another coordinator had taken over meanwhile (found abandoned, re-run: running, attempt 2) was overwritten as
    interrupted at attempt 1, and a coordinator joining then re-ran it beside the one running it. The write is
    now conditional, as the take-over is (same state and attempt): the other's record is left as it is."""
    from dataclasses import replace

    from tunesmith.clock import SystemClock
    from tunesmith.records import Failure, FailureKind, Outcome, TrialState
    from tunesmith.runner import Runner, prepare
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage import SQLStore

    class Closing(_Workers):
        def close(self, timeout: float) -> list:  # type: ignore[type-arg]
            return []

    spec = spec_from_dict(project.spec(name="retrytaken", budget={"trials": 6},
                                       executor={"kind": "inline", "retry_backoff": 60},
                                       base_dir=str(project.root), workdir=str(project.root / "work")))
    store = SQLStore(project.storage)
    plan = prepare(spec)
    exp = store.create_experiment(spec.name, plan.spec.to_json(), plan.decision.name, "", 0.0)
    runner = Runner(store, exp, plan, None, SystemClock(), executor=Closing(1))  # type: ignore[arg-type]
    runner._setup(resumed=True)
    runner._dispatch(0.0, None)
    runner._finish(runner._running.pop(0), Outcome(failure=Failure(FailureKind.CRASHED, "killed")))
    assert len(runner._retry_queue) == 1 and [t.state for t in store.trials(exp.id)] == [TrialState.QUEUED]
    waiting = store.trials(exp.id)[0]
    assert store.mark_lost(exp.id, replace(waiting, state=TrialState.LOST), 10.0)   # another coordinator's claim
    lost = store.trials(exp.id)[0]
    assert store.take_for_rerun(exp.id, lost, replace(lost, state=TrialState.RUNNING, attempts=2, owner="peer"),
                                "trial_rerun", 11.0)
    runner._shutdown("interrupted by the user", KeyboardInterrupt())
    trial = store.trials(exp.id, [0])[0]
    assert (trial.state.value, trial.attempts, trial.owner) == ("running", 2, "peer"), "the peer's record changed"
    assert "trial_interrupted" not in [e.kind for e in store.events(exp.id)]
    store.close()
