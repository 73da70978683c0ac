"""The TrialStore contract: every store implementation must pass these checks.

Use from a test: ``run_store_contract(make_store)`` where ``make_store()`` returns a fresh, empty store; or call
the individual ``check_*`` functions to see which one fails.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tunesmith.audit import AuditKind
from tunesmith.errors import ExperimentExists, ExperimentNotFound
from tunesmith.records import FailureKind, Report, RunStatus, TrialRecord, TrialState
from tunesmith.storage.base import TrialStore

SPEC = {"name": "contract", "objective": [{"metric": "loss", "direction": "minimize"}],
        "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}}, "trial": {"function": "m:f"}}


def check_experiments(store: TrialStore) -> None:
    e = store.create_experiment("contract", SPEC, "tpe", "because", now=100.0)
    assert e.name == "contract" and e.status is RunStatus.CREATED and e.strategy == "tpe"
    assert dict(e.spec) == SPEC, "the spec must round-trip exactly"
    try:
        store.create_experiment("contract", SPEC, "tpe", "again", now=101.0)
    except ExperimentExists as err:
        assert "tunesmith resume contract" in str(err)
    else:
        raise AssertionError("a duplicate name must raise ExperimentExists")
    try:
        store.experiment("nope")
    except ExperimentNotFound as err:
        assert "contract" in str(err), "the message lists the experiments that exist"
    else:
        raise AssertionError("an unknown name must raise ExperimentNotFound")
    store.set_status(e.id, RunStatus.RUNNING, now=102.0, detail={"resumed": False})
    assert store.experiment("contract").status is RunStatus.RUNNING
    assert [x.name for x in store.experiments()] == ["contract"]
    assert store.experiment_names() == {"contract"}
    kinds = [ev.kind for ev in store.events(e.id)]
    assert kinds == ["experiment_created", "run_running"]


def check_trials(store: TrialStore) -> None:
    e = store.create_experiment("trials", SPEC, "random", "", now=1.0)
    logs = "/logs/{number:03d}.log"
    t0 = store.new_trial(e.id, {"x": 0.5}, experiment_seed=7, now=2.0, log_path_template=logs)
    t1 = store.new_trial(e.id, {"x": 0.25, "flag": None}, experiment_seed=7, now=3.0, log_path_template=logs)
    assert t0 is not None and t1 is not None
    assert (t0.number, t1.number) == (0, 1)
    assert t0.state is TrialState.RUNNING and t0.attempts == 1 and t0.log_path == "/logs/000.log"
    assert t0.seed != t1.seed, "trial seeds derive from the experiment seed and the number"
    store.add_report(e.id, 0, 1, Report(0, 0.9), now=4.0)
    store.add_report(e.id, 0, 1, Report(1, 0.7), now=5.0)
    store.add_report(e.id, 0, 1, Report(2**63 - 1, 0.6), now=5.5)  # trial.report's largest step (PostgreSQL: 64-bit)
    done = replace(t0, state=TrialState.COMPLETED, values=(0.123456789012345,), metrics={"extra": 2.5},
                   finished_at=6.0, duration_s=4.0)
    store.save_trial(e.id, done, "trial_completed", now=6.0)
    failed = replace(t1, state=TrialState.FAILED, error="exception: ValueError: no", failure_kind=FailureKind.EXCEPTION,
                     finished_at=7.0, duration_s=1.0)
    store.save_trial(e.id, failed, "trial_failed", now=7.0)
    got = store.trials(e.id)
    assert [t.number for t in got] == [0, 1]
    assert got[0].values == (0.123456789012345,), "values keep full float precision"
    assert got[0].metrics == {"extra": 2.5}
    assert got[0].intermediate == (Report(0, 0.9), Report(1, 0.7), Report(2**63 - 1, 0.6))
    assert got[1].params == {"x": 0.25, "flag": None}
    assert got[1].state is TrialState.FAILED and got[1].failure_kind is FailureKind.EXCEPTION
    assert got[1].error == "exception: ValueError: no"
    # A retried attempt: the trial shows the latest attempt's reports; earlier ones stay stored.
    retry = replace(got[0], state=TrialState.RUNNING, attempts=2)
    store.save_trial(e.id, retry, "trial_retry_started", now=8.0)
    store.add_report(e.id, 0, 2, Report(0, 0.5), now=9.0)
    assert store.trials(e.id)[0].intermediate == (Report(0, 0.5),)
    events = store.events(e.id)
    assert [ev.kind for ev in events] == ["experiment_created", "trial_started", "trial_started", "trial_completed",
                                          "trial_failed", "trial_retry_started"]
    assert events[4].payload["error"] == "exception: ValueError: no"
    assert store.events(e.id, since_id=events[-2].id)[0].kind == "trial_retry_started"
    # One that continued from a checkpoint (its first report at step 1): step 0 is the attempt before it's.
    store.save_trial(e.id, replace(retry, attempts=3), "trial_retry_started", now=9.5)
    store.add_report(e.id, 0, 3, Report(1, 0.4), now=9.6)
    assert store.trials(e.id)[0].intermediate == (Report(0, 0.5), Report(1, 0.4))
    # A diverged training's reports: NaN and infinities are stored as they are (SQLite has no NaN of its own).
    for step, value in ((2, math.inf), (3, -math.inf), (4, math.nan)):
        store.add_report(e.id, 0, 3, Report(step, value), now=9.7)
    diverged = store.trials(e.id)[0].intermediate[2:]
    assert [(r.step, str(r.value)) for r in diverged] == [(2, "inf"), (3, "-inf"), (4, "nan")], diverged
    store.new_trial(e.id, {"x": 0.75}, experiment_seed=7, now=10.0, log_path_template="/logs/{number:03d}.log")
    empty = store.create_experiment("no trials yet", SPEC, "random", "", now=11.0)
    other = store.create_experiment("one trial", SPEC, "random", "", now=12.0)
    store.new_trial(other.id, {"x": 0.5}, experiment_seed=7, now=13.0, log_path_template="/logs/{number:03d}.log")
    counts = store.trial_counts()
    assert counts[e.id] == {TrialState.RUNNING: 2, TrialState.FAILED: 1}, counts
    assert counts[other.id] == {TrialState.RUNNING: 1}, "counted per experiment"
    assert empty.id not in counts, "an experiment without trials has no entry"
    assert store.trial_counts_of(e.id) == counts[e.id], "one experiment's own count, as the count of all says"
    assert store.trial_counts_of(other.id) == {TrialState.RUNNING: 1}, "no other experiment's trials counted"
    assert store.trial_counts_of(empty.id) == {}
    waits = store.new_trial(other.id, {"x": 0.6}, experiment_seed=7, now=14.0, log_path_template="{number}",
                            queued=True)  # its executor holds it until a worker takes it
    assert waits is not None and waits.state is TrialState.QUEUED
    assert store.trials(other.id, [waits.number])[0].state is TrialState.QUEUED
    assert [(ev.kind, ev.trial_number) for ev in store.events(other.id)][-1] == ("trial_queued", waits.number)


def check_lease(store: TrialStore) -> None:
    e = store.create_experiment("lease", SPEC, "random", "", now=1.0)
    assert store.acquire_lease(e.id, "otherhost:1:a", now=10.0, ttl=60.0) is None
    assert store.acquire_lease(e.id, "otherhost:1:a", now=20.0, ttl=60.0) is None, "the holder renews"
    assert store.acquire_lease(e.id, "otherhost:2:b", now=30.0, ttl=60.0) == "otherhost:1:a"
    assert store.acquire_lease(e.id, "otherhost:2:b", now=81.0, ttl=60.0) is None, "an expired lease is taken over"
    store.release_lease(e.id, "otherhost:2:b")
    assert store.acquire_lease(e.id, "otherhost:3:c", now=82.0, ttl=60.0) is None


def check_renew_lease(store: TrialStore) -> None:
    """A renewal extends its holder's lease, even lapsed; it never takes back one released or taken over."""
    e = store.create_experiment("renewed", SPEC, "random", "", now=1.0)
    assert store.acquire_lease(e.id, "otherhost:1:a", now=10.0, ttl=60.0) is None
    assert store.renew_lease(e.id, "otherhost:1:a", now=100.0, ttl=60.0) is None, "lapsed, nobody took it: renewed"
    assert store.lease_holder(e.id, now=150.0) == "otherhost:1:a"
    assert store.renew_lease(e.id, "otherhost:1:a", now=20.0, ttl=60.0) is None, "a late beat"
    assert store.lease_holder(e.id, now=150.0) == "otherhost:1:a", "a late beat never moves the expiry back"
    store.release_lease(e.id, "otherhost:1:a")
    assert store.renew_lease(e.id, "otherhost:1:a", now=151.0, ttl=60.0) is None
    assert store.lease_holder(e.id, now=152.0) is None, "a beat after the release took the lease back"
    assert store.acquire_lease(e.id, "otherhost:2:b", now=153.0, ttl=60.0) is None
    assert store.renew_lease(e.id, "otherhost:1:a", now=154.0, ttl=60.0) == "otherhost:2:b", "taken over: told who"
    assert store.lease_holder(e.id, now=155.0) == "otherhost:2:b"


def check_coordinator_beats(store: TrialStore) -> None:
    """A coordinator's beat is kept per experiment, the last one, until it is forgotten (it left); beating for no
    trial still counts."""
    e = store.create_experiment("beating", SPEC, "random", "", now=1.0)
    other = store.create_experiment("beating too", SPEC, "random", "", now=1.0)
    assert store.coordinator_beats(e.id) == {}
    store.heartbeat(e.id, [], now=10.0, owner="otherhost:1:a")
    store.heartbeat(e.id, [], now=11.0, owner="otherhost:2:b")
    store.heartbeat(e.id, [], now=15.0, owner="otherhost:1:a")
    store.heartbeat(other.id, [], now=16.0, owner="otherhost:1:a")
    store.heartbeat(e.id, [], now=17.0)   # no owner: nobody's beat
    assert store.coordinator_beats(e.id) == {"otherhost:1:a": 15.0, "otherhost:2:b": 11.0}
    store.forget_coordinator(e.id, "otherhost:1:a")   # it left: its row goes, its beats elsewhere stay
    store.forget_coordinator(e.id, "otherhost:3:c")   # never beat: nothing to delete, no error
    assert store.coordinator_beats(e.id) == {"otherhost:2:b": 11.0}
    assert store.coordinator_beats(other.id) == {"otherhost:1:a": 16.0}
    store.delete_experiment(e, 20.0, (), {})
    assert store.coordinator_beats(other.id) == {"otherhost:1:a": 16.0}


def check_trials_without_curves(store: TrialStore) -> None:
    """``trials(curves=False)`` is ``trials()`` with every ``intermediate`` empty, for all trials or those named."""
    e = store.create_experiment("no curves", SPEC, "random", "", now=1.0)
    for x in (0.1, 0.2, 0.3):
        t = store.new_trial(e.id, {"x": x}, experiment_seed=7, now=2.0, log_path_template="{number}", owner="h:1:a")
        assert t is not None
        store.add_report(e.id, t.number, 1, Report(1, x), now=3.0)
        if t.number != 2:
            store.save_trial(e.id, replace(t, state=TrialState.COMPLETED, values=(x,), metrics={"m": x},
                                           finished_at=4.0, duration_s=2.0), "trial_completed", now=4.0)
    full = store.trials(e.id)
    assert [len(t.intermediate) for t in full] == [1, 1, 1]
    assert store.trials(e.id, curves=False) == [replace(t, intermediate=()) for t in full]
    assert store.trials(e.id, [2, 0], curves=False) == [replace(full[0], intermediate=()),
                                                        replace(full[2], intermediate=())]
    assert store.trials(e.id, [1])[0].intermediate == full[1].intermediate, "named trials keep their curves"


def check_trials_named_by_many_numbers(store: TrialStore) -> None:
    """Trials named by more numbers than one statement takes parameters (PostgreSQL: 65,535), as `trials --state
    completed --json` of a long run names most of its trials: found all the same, by number, each once."""
    e = store.create_experiment("many numbers", SPEC, "random", "", now=1.0)
    for x in (0.1, 0.2, 0.3):
        store.new_trial(e.id, {"x": x}, experiment_seed=7, now=2.0, log_path_template="{number}")
    assert [t.number for t in store.trials(e.id, range(70_000, -70_000, -1))] == [0, 1, 2]
    assert [t.number for t in store.trials(e.id, [2, 0, 2], curves=False)] == [0, 2]


def check_trial_owner_beats(store: TrialStore) -> None:
    """Each owner's latest trial beat (a trial recorded, saved or beaten), by owner, of this experiment's trials."""
    e = store.create_experiment("owners' beats", SPEC, "random", "", now=1.0)
    other = store.create_experiment("owners' beats too", SPEC, "random", "", now=1.0)
    assert store.trial_owner_beats(e.id) == {}
    a = store.new_trial(e.id, {"x": 0.1}, experiment_seed=7, now=2.0, log_path_template="{number}", owner="h:1:a")
    b = store.new_trial(e.id, {"x": 0.2}, experiment_seed=7, now=3.0, log_path_template="{number}", owner="h:1:a")
    c = store.new_trial(e.id, {"x": 0.3}, experiment_seed=7, now=4.0, log_path_template="{number}", owner="h:2:b")
    store.new_trial(e.id, {"x": 0.4}, experiment_seed=7, now=9.0, log_path_template="{number}")   # nobody's
    store.new_trial(other.id, {"x": 0.5}, experiment_seed=7, now=20.0, log_path_template="{number}", owner="h:2:b")
    assert a is not None and b is not None and c is not None
    assert store.trial_owner_beats(e.id) == {"h:1:a": 3.0, "h:2:b": 4.0}
    store.heartbeat(e.id, [a.number], now=6.0, owner="h:1:a")
    store.save_trial(e.id, replace(c, state=TrialState.COMPLETED, values=(0.3,)), "trial_completed", now=7.0)
    assert store.trial_owner_beats(e.id) == {"h:1:a": 6.0, "h:2:b": 7.0}
    assert store.trial_owner_beats(other.id) == {"h:2:b": 20.0}


def check_trial_beats_are_the_owners(store: TrialStore) -> None:
    """A coordinator's beat keeps alive only the trials it runs: one it stalled on, which a peer has re-run since,
    is the peer's to keep alive (else, were the peer to die, the stalled one's beats would hide that trial from
    the next reclaim until its own attempt ended); a beat with no owner keeps any trial named alive."""
    e = store.create_experiment("trial beats", SPEC, "random", "", now=1.0)
    mine = store.new_trial(e.id, {"x": 0.1}, experiment_seed=7, now=2.0, log_path_template="t{number}.log",
                           owner="h:1:a")
    taken = store.new_trial(e.id, {"x": 0.2}, experiment_seed=7, now=2.0, log_path_template="t{number}.log",
                            owner="h:1:a")
    assert mine is not None and taken is not None
    assert store.save_trial_unless_changed(e.id, taken, replace(taken, attempts=2, owner="h:2:b"), "trial_started",
                                           now=3.0), "a peer re-runs it"
    store.heartbeat(e.id, [mine.number, taken.number], now=10.0, owner="h:1:a")
    beats = {t.number: t.heartbeat_at for t in store.trials(e.id)}
    assert beats == {mine.number: 10.0, taken.number: 3.0}, "a beat kept alive a trial another coordinator runs"
    store.heartbeat(e.id, [taken.number], now=11.0, owner="h:2:b")
    store.heartbeat(e.id, [mine.number], now=12.0)
    assert {t.number: t.heartbeat_at for t in store.trials(e.id)} == {mine.number: 12.0, taken.number: 11.0}


def check_unfinished_and_lost(store: TrialStore) -> None:
    """The running and queued trials of an experiment, without their reports and less those skipped; a trial is
    recorded lost only while it is as it was read (owner, attempt, beat), so one claimer wins; and taken to re-run
    only while it is still as read (state, attempt), so one coordinator re-runs it."""
    e = store.create_experiment("unfinished", SPEC, "random", "", now=1.0)
    logs = "t{number}.log"
    a = store.new_trial(e.id, {"x": 0.1}, experiment_seed=7, now=2.0, log_path_template=logs, owner="h:1:a")
    b = store.new_trial(e.id, {"x": 0.2}, experiment_seed=7, now=2.0, log_path_template=logs, owner="h:2:b")
    assert a is not None and b is not None
    store.add_report(e.id, a.number, 1, Report(1, 0.5), now=3.0)
    seen = store.unfinished_trials(e.id)
    assert [t.number for t in seen] == [a.number, b.number] and all(t.intermediate == () for t in seen)
    assert [t.number for t in store.unfinished_trials(e.id, skip={a.number})] == [b.number]
    lost = replace(seen[0], state=TrialState.LOST)
    assert store.mark_lost(e.id, lost, now=100.0) and not store.mark_lost(e.id, lost, now=101.0), "one claimer"
    store.heartbeat(e.id, [b.number], now=50.0, owner="h:2:b")   # b beat after `seen` was read
    assert not store.mark_lost(e.id, replace(seen[1], state=TrialState.LOST), now=100.0)
    assert [t.number for t in store.unfinished_trials(e.id)] == [b.number]
    was = store.trials(e.id, [a.number])[0]   # lost: two coordinators take it to re-run, one wins
    again = replace(was, state=TrialState.RUNNING, attempts=was.attempts + 1, owner="h:3:c")
    assert store.take_for_rerun(e.id, was, again, "trial_rerun", now=110.0)
    assert not store.take_for_rerun(e.id, was, replace(again, owner="h:4:d"), "trial_rerun", now=111.0)
    assert store.trials(e.id, [a.number])[0].owner == "h:3:c"
    assert [ev.kind for ev in store.events(e.id)].count("trial_rerun") == 1
    # a retry's first coordinator stopping records it interrupted only while nobody took it over
    assert not store.save_trial_unless_changed(e.id, was, replace(was, state=TrialState.INTERRUPTED),
                                               "trial_interrupted", now=120.0)
    taken = store.trials(e.id, [a.number])[0]
    assert (taken.state, taken.attempts, taken.owner) == (TrialState.RUNNING, 2, "h:3:c")
    assert store.save_trial_unless_changed(e.id, taken, replace(taken, state=TrialState.INTERRUPTED),
                                           "trial_interrupted", now=121.0)
    assert store.trials(e.id, [a.number])[0].state is TrialState.INTERRUPTED
    assert [ev.kind for ev in store.events(e.id)].count("trial_interrupted") == 1


def check_lost_before_it_began(store: TrialStore) -> None:
    """A trial lost while its attempt was only queued for a worker (a ``trial_queued`` event, or a re-run recorded
    queued, and no ``trial_started`` since) is recorded lost with that attempt taken back: it never ran, so its
    re-run is the same attempt again, not a retry. One whose attempt began (running; waiting out a retry's back-off
    after it ran) keeps its attempt. A write made as of the taken-back attempt by its old owner is refused."""
    e = store.create_experiment("lost before it began", SPEC, "random", "", now=1.0)

    def new(x: float, queued: bool) -> TrialRecord:
        made = store.new_trial(e.id, {"x": x}, experiment_seed=7, now=2.0, log_path_template="t{number}.log",
                               owner="h:1:a", queued=queued)
        assert made is not None
        return made

    waiting, began, running, backoff, requeued = (new(0.1, True), new(0.2, True), new(0.3, False), new(0.4, False),
                                                  new(0.5, False))
    assert store.save_trial_unless_changed(e.id, began, replace(began, state=TrialState.RUNNING, started_at=3.0),
                                           "trial_started", now=3.0)
    for ran in (backoff, requeued):   # began, crashed: waits out its retry's back-off
        crashed = replace(ran, state=TrialState.QUEUED, error="crashed: boom", failure_kind=FailureKind.CRASHED)
        assert store.save_trial_unless_changed(e.id, ran, crashed, "trial_retry", now=3.0)
    waits = store.trials(e.id, [requeued.number])[0]   # its retry, then submitted queued for a worker
    assert store.take_for_rerun(e.id, waits, replace(waits, attempts=2), "trial_retry_started", now=4.0)
    lost = {t.number: store.mark_lost(e.id, replace(t, state=TrialState.LOST), now=10.0)
            for t in store.unfinished_trials(e.id)}
    assert {n: r.attempts if r is not None else None for n, r in lost.items()} == {
        waiting.number: 0, began.number: 1, running.number: 1, backoff.number: 1, requeued.number: 1}
    assert all(r is not None and r.state is TrialState.LOST for r in lost.values())
    assert {t.number: (t.state, t.attempts) for t in store.trials(e.id)} == {
        n: (TrialState.LOST, r.attempts) for n, r in lost.items() if r is not None}, "recorded as returned"
    told = {ev.trial_number: ev.payload for ev in store.events(e.id) if ev.kind == "trial_lost"}
    assert {n: (p["attempt"], p.get("began", True)) for n, p in told.items()} == {
        waiting.number: (1, False), began.number: (1, True), running.number: (1, True), backoff.number: (1, True),
        requeued.number: (2, False)}, "the event names the attempt lost, and whether it began"
    gone = store.trials(e.id, [waiting.number])[0]
    again = replace(gone, state=TrialState.QUEUED, attempts=1, owner="h:2:b")   # the re-run: attempt 1 again
    assert store.take_for_rerun(e.id, gone, again, "trial_rerun", now=11.0)
    # its first owner, stalled meanwhile, hears its own queued attempt 1 begin: same state and attempt, not its own
    assert not store.save_trial_unless_changed(e.id, waiting, replace(waiting, state=TrialState.RUNNING),
                                               "trial_started", now=12.0), "written over another owner's attempt"
    assert store.trials(e.id, [waiting.number])[0].owner == "h:2:b"


def check_lease_holder(store: TrialStore) -> None:
    e = store.create_experiment("lease holder", SPEC, "random", "", now=1.0)
    assert store.lease_holder(e.id, now=5.0) is None, "nobody holds a new experiment's lease"
    assert store.acquire_lease(e.id, "otherhost:1:a", now=10.0, ttl=60.0) is None
    assert store.lease_holder(e.id, now=30.0) == "otherhost:1:a"
    assert store.lease_holder(e.id, now=70.0) is None, "an expired lease is held by nobody"
    assert store.acquire_lease(e.id, "otherhost:2:b", now=71.0, ttl=60.0) is None
    assert store.lease_holder(e.id, now=72.0) == "otherhost:2:b"
    store.release_lease(e.id, "otherhost:2:b")
    assert store.lease_holder(e.id, now=73.0) is None, "a released lease is held by nobody"


def check_change_spec(store: TrialStore) -> None:
    """A spec change is written with its event, in one piece; a change that raises writes neither."""
    e = store.create_experiment("spec change", SPEC, "random", "", now=1.0)

    def raised(spec: dict[str, Any]) -> tuple[dict[str, Any], str, dict[str, Any]]:
        return {**spec, "budget": {"trials": 9}}, AuditKind.BUDGET_RAISED, {"old": 4, "new": 9}

    def refused(spec: dict[str, Any]) -> tuple[dict[str, Any], str, dict[str, Any]]:
        raise ValueError("refused")

    store.change_spec(e.id, raised, now=2.0)
    assert store.experiment("spec change").spec == {**SPEC, "budget": {"trials": 9}}
    events = store.events(e.id)
    assert [dict(ev.payload) for ev in events if ev.kind == AuditKind.BUDGET_RAISED] == [{"old": 4, "new": 9}]
    try:
        store.change_spec(e.id, refused, now=3.0)
    except ValueError:
        pass
    else:
        raise AssertionError("a change that raises is raised to the caller")
    assert store.events(e.id) == events, "a refused change writes no event"
    assert store.experiment("spec change").spec == {**SPEC, "budget": {"trials": 9}}, "nor the spec"


def check_delete(store: TrialStore) -> None:
    """A deletion removes the experiment's records and keeps, with it, who deleted it, its trial count and its events
    of the kinds asked for (as they were); a name deleted twice keeps both records."""
    e = store.create_experiment("gone", SPEC, "random", "", now=1.0)
    t = store.new_trial(e.id, {"x": 0.1}, experiment_seed=1, now=2.0, log_path_template="{number}")
    assert t is not None
    store.add_report(e.id, t.number, 1, Report(0, 1.0), now=3.0)
    store.record_event(e.id, AuditKind.PROMOTED, 3.5, t.number, {"model_name": "m", "version": "1"})
    keep = store.create_experiment("kept", SPEC, "random", "", now=4.0)
    store.new_trial(keep.id, {"x": 0.2}, experiment_seed=1, now=5.0, log_path_template="{number}")
    store.record_event(keep.id, AuditKind.PROMOTED, 5.5, 0, {"model_name": "m", "version": "2"})
    promoted = [ev for ev in store.events(e.id) if ev.kind == AuditKind.PROMOTED]
    record = store.delete_experiment(e, 6.0, {AuditKind.PROMOTED, AuditKind.ROLLED_BACK}, {"actor": {"user": "ann"}})
    assert [x.name for x in store.experiments()] == ["kept"]
    assert len(store.trials(keep.id)) == 1
    assert (record.name, record.experiment_id, record.deleted_at, record.trials) == ("gone", e.id, 6.0, 1)
    assert record.kept_events == tuple(promoted) and record.detail == {"actor": {"user": "ann"}}
    assert store.deleted_experiments() == [record] == store.deleted_experiments("gone")
    assert store.deleted_experiments("kept") == []
    try:
        store.delete_experiment(e, 7.0, (), {})
        raise AssertionError("deleting an experiment already deleted must raise ExperimentNotFound")
    except ExperimentNotFound:
        pass
    again = store.create_experiment("gone", SPEC, "random", "", now=8.0)
    second = store.delete_experiment(again, 9.0, {AuditKind.PROMOTED}, {})
    assert store.deleted_experiments("gone") == [record, second] and second.kept_events == () and second.trials == 0
    assert [ev.kind for ev in store.events(keep.id)].count(AuditKind.PROMOTED) == 1, "another experiment's events stay"


def check_events_of_kinds(store: TrialStore) -> None:
    """The events of the kinds asked for, of every live experiment, by experiment, oldest first, as ``events`` reads
    them; an experiment with none of them, and a deleted one, left out."""
    a = store.create_experiment("a", SPEC, "random", "", now=1.0)
    b = store.create_experiment("b", SPEC, "random", "", now=1.0)
    none = store.create_experiment("none", SPEC, "random", "", now=1.0)
    gone = store.create_experiment("gone", SPEC, "random", "", now=1.0)
    for exp, at in ((a, 2.0), (b, 3.0), (a, 4.0), (gone, 5.0)):
        store.record_event(exp.id, AuditKind.PROMOTION_STARTED, at, 0, {"model_name": "m", "intent": str(at)})
        store.record_event(exp.id, "trial_started", at, 0)
        store.record_event(exp.id, AuditKind.PROMOTED, at + 0.5, 0, {"model_name": "m", "version": str(at)})
    store.record_event(none.id, "trial_started", 6.0, 0)
    store.delete_experiment(gone, 7.0, (), {})
    kinds = {AuditKind.PROMOTION_STARTED, AuditKind.PROMOTED}
    found = store.events_of_kinds(kinds)
    assert sorted(found) == sorted([a.id, b.id]), found
    for exp in (a, b):
        assert found[exp.id] == [e for e in store.events(exp.id) if e.kind in kinds], (exp.name, found[exp.id])
    assert [e.payload.get("version") for e in found[a.id]] == [None, "2.0", None, "4.0"]
    assert store.events_of_kinds(()) == {} and store.events_of_kinds({"cycle_step_none"}) == {}


def check_attributes_and_results_since(store: TrialStore) -> None:
    e = store.create_experiment("sync", SPEC, "random", "", now=1.0)
    assert store.experiment("sync").attributes == {}
    store.set_attributes(e.id, {"a": 1}, now=2.0)
    store.set_attributes(e.id, {"b": {"c": [1, 2]}}, now=3.0)
    assert store.experiment("sync").attributes == {"a": 1, "b": {"c": [1, 2]}}, "attributes merge"
    store.change_attributes(e.id, lambda current: {"b": {"c": [*current["b"]["c"], 3]}}, now=3.5)
    assert store.experiment("sync").attributes == {"a": 1, "b": {"c": [1, 2, 3]}}, "a change sees the attributes"
    found, mark = store.finished_since(e.id, 0)
    assert found == []
    t0 = store.new_trial(e.id, {"x": 0.1}, experiment_seed=1, now=4.0, log_path_template="{number}", owner="h:1:a")
    t1 = store.new_trial(e.id, {"x": 0.2}, experiment_seed=1, now=4.0, log_path_template="{number}", owner="h:2:b")
    assert t0 is not None and t1 is not None
    assert (t0.owner, t1.owner) == ("h:1:a", "h:2:b")
    store.save_trial(e.id, replace(t1, state=TrialState.COMPLETED, values=(0.5,)), "trial_completed", now=5.0)
    found, mark2 = store.finished_since(e.id, mark)
    assert [t.number for t in found] == [1] and mark2 > mark
    assert store.finished_since(e.id, mark2) == ([], mark2), "nothing new since the last mark"
    assert store.finished_since(e.id, mark, skip={1}) == ([], mark2), "the caller's own trials are skipped"
    assert [t.number for t in store.trials(e.id, numbers=[1])] == [1]


def check_slots(store: TrialStore) -> None:
    e = store.create_experiment("slots", SPEC, "random", "", now=1.0)
    keys = {"user:ann": None, f"experiment:{e.id}": 2}
    a = store.acquire_slot("h:1:a", e.id, keys, now=10.0, ttl=5.0)
    b = store.acquire_slot("h:2:b", e.id, keys, now=10.0, ttl=5.0)
    assert a.granted and b.granted and a.lease != b.lease
    full = store.acquire_slot("h:2:b", e.id, keys, now=11.0, ttl=5.0)
    assert (full.granted, full.full_key, full.limit, full.in_use) == (False, f"experiment:{e.id}", 2, 2)
    assert store.acquire_slot("h:3:c", e.id, {"user:ann": None}, now=11.0, ttl=5.0).granted, "an unlimited key"
    assert store.acquire_slot("h:2:b", e.id, {**keys, f"experiment:{e.id}": 3}, now=11.0, ttl=5.0).granted
    assert store.hold_slots("h:2:b", [], now=12.0, ttl=5.0) == set(), "h:2:b releases both of its slots"
    assert store.acquire_slot("h:2:b", e.id, keys, now=12.0, ttl=5.0).granted, "a released slot is free again"
    assert not store.acquire_slot("h:4:d", e.id, keys, now=14.0, ttl=5.0).granted
    assert store.hold_slots("h:1:a", [str(a.lease)], now=14.0, ttl=5.0) == set(), "renewed until 19"
    assert store.acquire_slot("h:4:d", e.id, keys, now=17.5, ttl=5.0).granted, "h:2:b's lapsed at 17"
    assert store.hold_slots("h:2:b", ["gone-lease"], now=18.0, ttl=5.0) == {"gone-lease"}
    assert not store.acquire_slot("h:4:d", e.id, keys, now=18.5, ttl=5.0).granted, "a's renewal holds"
    assert store.hold_slots("h:1:a", [], now=18.8, ttl=5.0) == set(), "a's trial ended: one slot is free"
    assert not store.acquire_slot("h:1:a", e.id, keys, now=18.9, ttl=5.0).granted, "d has waited longer"
    d = store.acquire_slot("h:4:d", e.id, keys, now=19.0, ttl=5.0)
    assert d.granted, "the slot went to the waiter"
    assert store.release_slots("h:1:a") == [], "a holds no slot; its ticket (refused at 18.9) goes"
    assert not store.acquire_slot("h:5:e", e.id, keys, now=19.1, ttl=5.0).granted, "d holds both: e waits"
    assert store.hold_slots("h:4:d", [str(d.lease)], now=19.2, ttl=5.0) == set(), "one slot free, owed to e"
    assert not store.acquire_slot("h:6:f", e.id, keys, now=19.3, ttl=5.0).granted, "e has waited longer"
    store.leave_slot_queue("h:5:e")  # e will not ask again: owed nothing
    assert store.acquire_slot("h:6:f", e.id, keys, now=19.4, ttl=5.0).granted, "f is next in the queue"
    assert not store.acquire_slot("h:7:g", e.id, keys, now=19.5, ttl=5.0).granted, "d and f hold both: g waits"
    assert f"experiment:{e.id}" in store.release_slots("h:4:d"), "the keys d held"
    assert store.release_slots("h:4:d") == [], "nothing left to give back"
    assert not store.acquire_slot("h:8:h", e.id, keys, now=19.6, ttl=5.0).granted, "d's slot is owed to g"
    assert store.release_slots("h:7:g") == [], "g holds no slot; its ticket goes"
    assert store.acquire_slot("h:8:h", e.id, keys, now=19.7, ttl=5.0).granted, "d's slot, owed to no one"

def check_last_report_id(store: TrialStore) -> None:
    """An experiment's latest report id is that of its running trials' latest report (one held too), and only of
    its own: it grows with every report they record, so a reader (the dashboard) learns that a curve changed from it
    without reading the curves; a trial that finishes takes its reports out of it (its event tells the reader)."""
    e = store.create_experiment("reports", SPEC, "random", "", now=1.0)
    other = store.create_experiment("other reports", SPEC, "random", "", now=1.0)
    assert store.last_report_id(e.id) == 0, "no report yet"
    t = store.new_trial(e.id, {"x": 0.1}, experiment_seed=1, now=2.0, log_path_template="{number}")
    u = store.new_trial(other.id, {"x": 0.2}, experiment_seed=1, now=2.0, log_path_template="{number}")
    assert t is not None and u is not None
    store.add_report(e.id, t.number, 1, Report(1, 0.9), now=3.0)
    first = store.last_report_id(e.id)
    assert first > 0, "a held report is seen by a later call"
    store.add_report(other.id, u.number, 1, Report(1, 0.5), now=4.0)
    assert store.last_report_id(e.id) == first, "another experiment's report is not this one's"
    store.add_report(e.id, t.number, 1, Report(2, 0.8), now=5.0)
    kept = store.last_report_id(e.id)
    assert kept > first
    assert store.last_report_id(other.id) > 0
    v = store.new_trial(e.id, {"x": 0.3}, experiment_seed=1, now=6.0, log_path_template="{number}")
    assert v is not None
    store.add_report(e.id, v.number, 1, Report(1, 0.7), now=7.0)
    assert store.last_report_id(e.id) > kept
    store.save_trial(e.id, replace(v, state=TrialState.COMPLETED, values=(0.7,)), "trial_completed", now=8.0)
    assert store.last_report_id(e.id) == kept, "a finished trial's reports are left out: the running one's remain"
    store.save_trial(e.id, replace(t, state=TrialState.COMPLETED, values=(0.8,)), "trial_completed", now=9.0)
    assert store.last_report_id(e.id) == 0, "no trial runs"

CHECKS: tuple[Callable[[TrialStore], None], ...] = (
    check_experiments, check_trials, check_trials_without_curves, check_trials_named_by_many_numbers, check_lease,
    check_renew_lease, check_coordinator_beats, check_trial_owner_beats, check_trial_beats_are_the_owners,
    check_unfinished_and_lost, check_lost_before_it_began, check_lease_holder, check_change_spec, check_delete,
    check_events_of_kinds, check_attributes_and_results_since, check_slots, check_last_report_id)


def run_store_contract(make_store: Callable[[], TrialStore]) -> None:
    for check in CHECKS:
        store = make_store()
        try:
            check(store)
        finally:
            store.close()
