"""On a real local Ray cluster (the session's, see tests/ray_fixtures.py): the median rule, Hyperband and PBT run
unchanged; trials are priced from what they measured in their actor; a queued (prefetched) attempt starts when
the one ahead of it ends, counts its timeout from then, and is cancelled cleanly when stopped before it starts.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import tunesmith
from tunesmith.evaluation.job import TrialJob
from tunesmith.executor.base import AttemptEnded
from tunesmith.records import FailureKind, Outcome, TrialState
from tunesmith.scheduler import build_scheduler
from tunesmith.seeding import derive_seed
from tunesmith.spec.loader import spec_from_dict

from test_cost_budget import COSTLY, DOLLAR_PER_CPU_SECOND
from test_pbt_runs import GATED_TRAINER
from test_scheduling_runs import CURVES

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]  # one worker runs every Ray test: see ray_fixtures.py

TIMED = """
import os, time

def timed(config, trial):
    started = time.time()
    time.sleep(config["seconds"])
    if config.get("marker"):
        open(config["marker"], "w").close()
    return {"loss": config["seconds"], "started": started, "ended": time.time(), "pid": float(os.getpid())}

def reporting(config, trial):
    for step in range(1, int(config["seconds"] * 10) + 1):
        time.sleep(0.1)
        trial.report(step, 0.5)
    return 0.5
"""


def _ray(workers: int = 2, **extra: Any) -> dict[str, Any]:
    return {"kind": "ray", "address": "auto", "workers": workers, **extra}


def test_the_median_rule_prunes_on_ray(ray_cluster, project):
    project.write("curves.py", CURVES)
    spec = project.spec(name="ray-median", trial={"function": "curves:objective"}, budget={"trials": 10},
                        executor=_ray(), scheduler={"name": "median", "warmup_steps": 2, "min_trials": 3})
    result = tunesmith.run(spec, storage=project.storage)
    pruned = [t for t in result.trials if t.state is TrialState.PRUNED]
    completed = [t for t in result.trials if t.state is TrialState.COMPLETED]
    assert pruned and completed and len(pruned) + len(completed) == 10
    for t in pruned:  # (one may be stopped at its last step, when the 3 trials the rule needs end late)
        assert t.intermediate[-1].step >= 2, "stopped once the warm-up was over"
        assert t.values == (t.intermediate[-1].value,)
    assert any(t.intermediate[-1].step < 27 for t in pruned), "the rule saved steps"
    assert all(len(t.intermediate) == 27 for t in completed), "every report crossed to the coordinator"


def test_hyperband_brackets_run_to_their_ends_on_ray(ray_cluster, project):
    project.write("curves.py", CURVES)
    scheduler = {"name": "hyperband", "min_resource": 1, "max_resource": 27, "reduction_factor": 3}
    spec = project.spec(name="ray-hyperband", trial={"function": "curves:objective"}, budget={"trials": 14},
                        executor=_ray(), scheduler=scheduler)
    result = tunesmith.run(spec, storage=project.storage)
    assert all(t.state in (TrialState.COMPLETED, TrialState.PRUNED) for t in result.trials)
    parsed = spec_from_dict(spec)
    hyperband: Any = build_scheduler(parsed.scheduler, parsed.objectives[0].direction,
                                     derive_seed(1, "scheduler"), space=parsed.search_space)
    rungs = [b.rung_steps for b in hyperband.bracket_schedulers]
    brackets = {t.number: hyperband.bracket_of(t.number) for t in result.trials}
    assert len(set(brackets.values())) >= 2, "trials ran in several brackets"
    for t in result.trials:
        steps = rungs[brackets[t.number]]
        if t.state is TrialState.PRUNED:
            # stopped at one of its own bracket's rungs (the report that decided it is its last one)
            assert t.intermediate[-1].step in steps, (t.number, steps, t.intermediate[-1])
        else:
            assert t.intermediate[-1].step == 27
    assert any(t.state is TrialState.PRUNED for t in result.trials)
    assert 0 < result.summary()["scheduler"]["resources"]["fraction_used"] < 1


def test_pbt_exploits_on_ray_and_the_child_starts_from_the_parents_checkpoint(ray_cluster, project):
    # The gated trainer (see test_pbt_runs): Ray's actors can come up seconds apart on a loaded 2-core box, and
    # trials that each ran alone left nothing to exploit (a CI run under load saw no child at all, with steps of
    # 0.25 s), so each first-generation trial waits until four have started (or 30 s have passed).
    project.write("trainer.py", GATED_TRAINER.format(gate=str(project.root / "gate")))
    spec = project.spec(
        name="ray-pbt", objective={"metric": "score", "direction": "maximize"},
        space={"lr": {"type": "float", "low": 0.01, "high": 1.0, "log": True}},
        trial={"function": "trainer:objective"}, budget={"trials": 12},
        executor=_ray(4, resources_per_trial={"cpu": 0.5}),
        scheduler={"name": "pbt", "population_size": 4, "perturbation_interval": 2, "quantile_fraction": 0.25,
                   "max_resource": 8})
    tunesmith.run(spec, storage=project.storage)
    trials = project.trials("ray-pbt")
    by_number = {t["number"]: t for t in trials}
    children = [t for t in trials if "lineage" in t]
    assert children, "PBT started trials from others"
    assert [t for t in trials if t["state"] == "pruned"], "the bottom of the population was stopped"
    for child in children:
        lineage = child["lineage"]
        assert lineage["params_before"] == by_number[lineage["parent"]]["params"]
        if child["state"] == "completed":
            assert child["metrics"]["started_from"] >= lineage["step"] >= 2, "it resumed from the parent's checkpoint"
    assert any(c["state"] == "completed" and c["metrics"]["started_from"] >= 2 for c in children)


def test_ray_trials_are_charged_for_what_they_used_killed_ones_too(ray_cluster, project):
    project.write("costly.py", COSTLY)
    space = {"cpu": {"type": "categorical", "choices": [0.4]}, "mb": {"type": "categorical", "choices": [120]}}
    spec = project.spec(name="ray-priced", space=space, trial={"function": "costly:burn"}, budget={"trials": 1},
                        cost={"cpu_hour": DOLLAR_PER_CPU_SECOND}, executor=_ray(1))
    ok = tunesmith.run(spec, storage=project.storage).trials[0]
    assert ok.state is TrialState.COMPLETED
    assert 0.35 <= ok.metrics["cpu_s"] <= 1.5                  # the burn, plus the actor's own small overhead
    assert ok.metrics["peak_memory_mb"] >= 120                 # the block was resident
    assert ok.metrics["cost"] == pytest.approx(ok.metrics["cpu_s"], abs=1e-3)

    # killed by an order it obeys (a Python loop lets the actor's watcher in): charged what it had burnt then (how
    # much CPU it got depends on the machine's load). Its measurement is its last word: posted to the mailbox before
    # its process ends, then waited for by the coordinator. An actor slower than KILL_GRACE (2 s) to obey is killed
    # with ray.kill first and its cost is unknown, by design: on a heavily loaded machine this part failed so. The
    # wait here is generous (30 s each), so what is checked is that an obeying actor's last word arrives and is
    # charged, not that it arrives within 2 s; it still arrives in milliseconds here, so the run is no slower.
    from tunesmith.executor import ray as ray_executor

    with pytest.MonkeyPatch.context() as patience:
        patience.setattr(ray_executor, "KILL_GRACE", 30.0)
        patience.setattr(ray_executor, "LAST_WORDS_TIMEOUT", 30.0)
        killed = tunesmith.run({**spec, "name": "ray-priced-timeout", "trial": {"function": "costly:forever"},
                                "executor": _ray(1, trial_timeout="1s", retries=0)}, storage=project.storage).trials[0]
    assert killed.failure_kind is FailureKind.TIMEOUT
    assert "cost_unknown" not in killed.metrics, "the actor's last measurement did not arrive (a loaded machine?)"
    # it burnt for its 1 s timeout, but how much CPU that got depends on the load (0.08 s seen on a machine at load
    # 8): charged something, measured by the actor, not nothing
    assert killed.metrics["cpu_s"] > 0.0
    assert killed.metrics["cost"] == pytest.approx(killed.metrics["cpu_s"], abs=1e-3)

    # one that holds the GIL in C code cannot be told: its actor is killed with ray.kill, nothing measured arrives,
    # and its cost is unknown, not 0
    project.write("stuck.py", """
        def objective(config, trial):
            return sum(range(10**13))   # one C call: the actor's other threads never get the GIL
    """)
    stuck = tunesmith.run({**spec, "name": "ray-priced-stuck", "trial": {"function": "stuck:objective"},
                           "executor": _ray(1, trial_timeout="1s", retries=0)}, storage=project.storage).trials[0]
    assert stuck.failure_kind is FailureKind.TIMEOUT
    assert "cpu_s" not in stuck.metrics and "peak_memory_mb" not in stuck.metrics, stuck.metrics
    assert "cost" not in stuck.metrics and stuck.metrics["cost_unknown"] == 1.0, stuck.metrics


# -- prefetch, on the executor itself --------------------------------------------------------------------------
class _Jobs:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "timed.py").write_text(TIMED)

    def job(self, number: int, seconds: float, **kwargs: Any) -> TrialJob:
        workdir = self.root / f"trial-{number}"
        workdir.mkdir(exist_ok=True)
        params: dict[str, Any] = {"seconds": seconds}
        if kwargs.pop("marker", False):
            params["marker"] = str(workdir / "ran")
        return TrialJob("exp", number, 1, params, 7, str(workdir), str(workdir / "trial.log"), ("loss",),
                        function="timed:timed", base_dir=str(self.root), **kwargs)


def _ended(ex: Any, count: int, limit: float = 60.0) -> dict[int, Outcome]:
    ended: dict[int, Outcome] = {}
    deadline = time.monotonic() + limit
    while len(ended) < count and time.monotonic() < deadline:
        for ev in ex.poll(0.2):
            if isinstance(ev, AttemptEnded):
                ended[ev.number] = ev.outcome
    assert len(ended) == count, ended
    return ended


@pytest.fixture
def prefetching(ray_cluster, tmp_path):
    """A one-actor Ray executor that has run one short trial (so it prefetches), and the jobs' factory."""
    from tunesmith.executor.ray import RayExecutor

    ex = RayExecutor(1, address="auto")
    ex.start()
    jobs = _Jobs(tmp_path)
    try:
        assert ex.free_slots() == 1, "nothing is known about trial durations yet: no queue place"
        ex.submit(jobs.job(0, 0.01))
        assert _ended(ex, 1)[0].failure is None
        yield ex, jobs
    finally:
        ex.close(0)


@pytest.fixture
def two_idle_actors(ray_cluster, tmp_path):
    """A two-actor Ray executor whose actors are both up and idle, each having run a short trial (numbers 10 and 11:
    so it prefetches), and the jobs' factory."""
    from tunesmith.executor.ray import RayExecutor

    ex = RayExecutor(2, address="auto")
    ex.start()
    jobs = _Jobs(tmp_path)
    try:
        ex.submit(jobs.job(10, 0.01))
        ex.submit(jobs.job(11, 0.01))
        _ended(ex, 2)
        yield ex, jobs
    finally:
        ex.close(0)


def test_a_queued_attempt_starts_when_the_one_ahead_ends_and_counts_its_timeout_from_then(prefetching):
    ex, jobs = prefetching
    ex.submit(jobs.job(1, 1.5))
    assert ex.free_slots() == 1, "a place in the queue behind the running trial"
    ex.submit(jobs.job(2, 0.3, timeout=1.0))  # waits ~1.5 s: a timeout counted from here would kill it
    assert ex.free_slots() == 0
    ended = _ended(ex, 2)
    first, second = ended[1], ended[2]
    assert first.failure is None and second.failure is None, (first, second)
    assert second.metrics["pid"] == first.metrics["pid"], "both ran in the one actor"
    assert second.metrics["started"] >= first.metrics["ended"], "one after the other"
    assert second.metrics["started"] - first.metrics["ended"] < 0.5, "without waiting for the coordinator"


def test_a_queued_attempt_stopped_before_it_starts_never_runs_and_spares_the_one_ahead(prefetching):
    ex, jobs = prefetching
    ex.submit(jobs.job(1, 1.0))
    ex.submit(jobs.job(2, 0.0, marker=True))
    ex.stop(2, FailureKind.INTERRUPTED, "stopped while queued")
    ended = _ended(ex, 2)
    assert ended[1].failure is None, "the attempt ahead ran on"
    assert ended[2].failure is not None and ended[2].failure.kind is FailureKind.INTERRUPTED
    assert ended[2].failure.message == "stopped while queued"
    assert not (jobs.root / "trial-2" / "ran").exists(), "the stopped attempt never ran"
    ex.submit(jobs.job(3, 0.0))
    third = _ended(ex, 1)[3]
    assert third.failure is None, third
    assert third.metrics["pid"] == ended[1].metrics["pid"], "its actor was not killed"


def test_an_attempt_queued_behind_a_killed_one_runs_on_the_new_actor(prefetching):
    ex, jobs = prefetching
    ex.submit(jobs.job(1, 30.0))
    ex.submit(jobs.job(2, 0.0))
    time.sleep(0.5)
    ex.stop(1, FailureKind.INTERRUPTED, "killed")
    ended = _ended(ex, 2)
    assert ended[1].failure is not None and ended[1].failure.kind is FailureKind.INTERRUPTED
    assert ended[2].failure is None, "it had not started: it moved to the slot's new actor, no retry spent"


def test_without_prefetch_free_slots_are_the_idle_actors(ray_cluster, tmp_path):
    from tunesmith.executor.ray import RayExecutor

    ex = RayExecutor(1, address="auto", prefetch=False)
    ex.start()
    jobs = _Jobs(tmp_path)
    try:
        ex.submit(jobs.job(0, 0.01))
        _ended(ex, 1)
        ex.submit(jobs.job(1, 0.2))
        assert ex.free_slots() == 0
        _ended(ex, 1)
    finally:
        ex.close(0)


def test_prefetch_is_a_ray_option_and_off_under_pbt(project):
    from tunesmith.executor.factory import QuotaScope, build_executor
    from tunesmith.clock import SystemClock
    from tunesmith.errors import SpecError

    def executor(**spec: Any) -> Any:
        quota = QuotaScope(ledger=None, experiment_id=1, holder="test", user="test")  # type: ignore[arg-type]
        return build_executor(spec_from_dict(project.spec(**spec)), SystemClock(), lambda n, r: None, quota).inner

    assert executor(executor=_ray()).prefetch is True
    assert executor(executor=_ray(prefetch=False)).prefetch is False
    assert executor(executor=_ray(), scheduler={"name": "pbt"}).prefetch is False
    with pytest.raises(SpecError, match="executor.prefetch"):
        spec_from_dict(project.spec(executor={"kind": "process", "prefetch": False}))


def test_an_idle_actor_takes_the_attempt_queued_behind_a_long_one(two_idle_actors):
    """The end of a run: one actor is idle while an attempt waits behind a long one on the other. It is asked back
    and runs at once on the idle actor, and only there."""
    ex, jobs = two_idle_actors
    ex.submit(jobs.job(2, 2.0))      # the first idle actor
    ex.submit(jobs.job(3, 0.2))      # the other
    ex.submit(jobs.job(4, 0.0, marker=True))  # queued behind the one that started first: the 2 s one
    ended = _ended(ex, 3)
    assert all(o.failure is None for o in ended.values()), ended
    assert ended[4].metrics["pid"] == ended[3].metrics["pid"] != ended[2].metrics["pid"]
    assert ended[4].metrics["started"] < ended[2].metrics["ended"] - 1.0, "it did not wait for the long one"


def test_an_actor_runs_an_attempt_it_gave_back_when_it_is_sent_there_again(ray_cluster, tmp_path):
    """A queued attempt given back (asked to yield) moves: as the one ahead ends, its actor may be the idle one it
    moves to. Sent there again, it runs. The actor refused it again (its give-back outlived the call it answered),
    the coordinator moved it there again, and a full run hung with the attempt bouncing ~700 times a second."""
    from tunesmith.executor.ray import Mailbox, TrialRunner

    mailbox = ray_cluster.remote(Mailbox).options(num_cpus=0, max_concurrency=1000).remote()
    runner = ray_cluster.remote(TrialRunner).options(num_cpus=0, max_concurrency=2).remote(mailbox, 1)
    jobs = _Jobs(tmp_path)
    try:
        ray_cluster.get(runner.ready.remote())
        # 3 s ahead: the order to yield must reach the actor before that trial ends, on a loaded machine too (at
        # 1 s, a full suite beside helpers' tests once began trial 2 first, and it was not given back)
        ahead = runner.run.remote(jobs.job(1, 3.0).to_json(), 1)
        queued = jobs.job(2, 0.0, marker=True)
        behind = runner.run.remote(queued.to_json(), 2)
        ray_cluster.get(mailbox.order.remote(2, 1, "yield", 1))
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + 10
        while not any(e["ev"] == "yielded" for e in events) and time.monotonic() < deadline:
            events += ray_cluster.get(mailbox.take.remote(0.5))
        assert [(e["number"], e["given_back"]) for e in events if e["ev"] == "yielded"] == [(2, True)], events
        assert "outcome" in ray_cluster.get(ahead)
        assert ray_cluster.get(behind) == {"started": False, "given_back": True}
        assert not (jobs.root / "trial-2" / "ran").exists()
        again = ray_cluster.get(runner.run.remote(queued.to_json(), 3), timeout=30)
        assert "outcome" in again, ("refused again: it would be moved here again, for ever", again)
        assert (jobs.root / "trial-2" / "ran").exists()
    finally:
        ray_cluster.kill(runner)
        ray_cluster.kill(mailbox)


def test_an_attempt_given_back_goes_to_the_idle_actor_not_back_to_its_own_and_is_announced_once(
        ray_cluster, two_idle_actors):
    """Trial 2 waits behind a 1 s trial on actor A while B runs a short one; it is asked back (as an idle actor
    would have it) and A gives it back. By the time the coordinator moves it, the trial ahead of it on A has ended
    too, and both actors are idle: it goes to B, not back to A (the ask and the give-back were a round trip for
    nothing, and B stayed idle). A's answer came first: the coordinator took 2 to begin on A then, but only A's
    answer to the ask says whether it did, so it is announced once, as it begins on B."""
    from tunesmith.executor.base import AttemptStarted

    ex, jobs = two_idle_actors   # both actors up and idle; trials are short: prefetch is on
    ex.submit(jobs.job(0, 1.0))   # actor A
    ex.submit(jobs.job(1, 0.3))   # actor B
    ex.submit(jobs.job(2, 0.0, marker=True))  # queued behind 0, on A
    queued = ex._running[2]
    assert queued.slot == ex._running[0].slot != ex._running[1].slot
    queued.yielding = True  # what _rebalance does for an idle actor; here with both still busy, to order events
    ray_cluster.get(ex._mailbox.order.remote(2, 1, "yield", queued.lane))
    ray_cluster.wait([ex._running[0].ref, ex._running[1].ref, queued.ref], num_returns=3, timeout=30)
    time.sleep(0.5)  # (A's "yielded" post, sent as it gave 2 back, is in the mailbox)
    ex._answered({ex._running[0].ref, ex._running[1].ref})  # 0 and 1 ended, read before the mailbox is
    events = ex._flush()
    deadline = time.monotonic() + 30
    while not any(isinstance(e, AttemptEnded) and e.number == 2 for e in events) and time.monotonic() < deadline:
        events += ex.poll(0.2)
    ended = {e.number: e.outcome for e in events if isinstance(e, AttemptEnded)}
    assert all(o.failure is None for o in ended.values()), ended
    assert ended[2].metrics["pid"] == ended[1].metrics["pid"] != ended[0].metrics["pid"], \
        "sent back to the actor that gave it back"
    starts = [e for e in events if isinstance(e, AttemptStarted) and e.number == 2]
    assert len(starts) == 1, ("announced as it began on A, where it never ran", starts)
    assert starts[0].at <= ended[2].metrics["started"] + 0.5


def test_an_attempt_asked_back_after_it_began_stays_and_is_announced_once_its_actor_says_so(ray_cluster,
                                                                                           prefetching):
    """The other answer to an ask: trial 2 began on its actor as the one ahead ended, before the ask reached it. The
    coordinator, holding the ask open, announces the start only once the actor refuses (it stays, not asked again),
    with the time the coordinator first took it to begin."""
    from tunesmith.executor.base import AttemptStarted

    ex, jobs = prefetching
    ex.submit(jobs.job(1, 0.2))
    ex.submit(jobs.job(2, 1.5))  # queued behind 1
    ahead, queued = ex._running[1], ex._running[2]
    ray_cluster.wait([ahead.ref], timeout=30)
    time.sleep(0.3)  # 2 began on the actor
    queued.yielding = True
    ray_cluster.get(ex._mailbox.order.remote(2, 1, "yield", queued.lane))
    ex._answered({ahead.ref})  # the coordinator takes 2 to begin now, its ask still open
    events = ex._flush()
    assert not [e for e in events if isinstance(e, AttemptStarted)], "announced before the actor answered"
    told: dict[int, float] = {}  # when the coordinator told 2's start, by wall clock
    deadline = time.monotonic() + 30
    while not any(isinstance(e, AttemptEnded) and e.number == 2 for e in events) and time.monotonic() < deadline:
        polled = ex.poll(0.2)
        told.update((id(e), time.time()) for e in polled if isinstance(e, AttemptStarted))
        events += polled
    ended = {e.number: e.outcome for e in events if isinstance(e, AttemptEnded)}
    assert ended[2].failure is None and ended[2].metrics["pid"] == ended[1].metrics["pid"], ended
    starts = [e for e in events if isinstance(e, AttemptStarted) and e.number == 2]
    assert len(starts) == 1 and abs(starts[0].at - ended[2].metrics["started"]) < 1.0, starts
    assert told[id(starts[0])] < ended[2].metrics["ended"] - 0.5, "told as the actor refused, not at its end"
    assert queued.stays, "it is not asked again"


def test_a_prefetched_trial_is_queued_until_its_actor_begins_it_then_recorded_running_from_then(ray_cluster,
                                                                                                 project):
    """One worker, prefetch on: once a trial has ended, the next two are submitted together, the second queued
    behind the first in the one actor. While it waits there it is QUEUED in the store and the busy gauge does not
    count it (watched from another thread during the run); it is recorded running, and counted busy, from when it
    began there, not from its submission: its [started_at, finished_at] is about its own sleep, not both. (The
    coordinator learns a start within a call's latency: the bounds leave a loaded machine a second.)"""
    import threading

    from tunesmith.monitoring.metrics import TuningMetrics
    from tunesmith.monitoring.observers import MetricsListener
    from tunesmith.storage.sql import SQLStore

    project.write("timed.py", TIMED)
    seconds, name = 2.0, "ray-prefetch-start"
    space = {"seconds": {"type": "categorical", "choices": [seconds]}}
    spec = project.spec(name=name, space=space, trial={"function": "timed:timed"}, budget={"trials": 3},
                        executor=_ray(1))
    metrics = TuningMetrics()
    seen: list[tuple[float, dict[int, TrialState], float | None]] = []  # (when, each trial's stored state, busy)
    done = threading.Event()

    def watch() -> None:
        store = SQLStore(project.storage, create=False)
        try:
            exp_id = store.experiment(name).id
            while not done.is_set():
                at = time.time()  # (before the reads: a sample's states are from after it)
                states = {t.number: t.state for t in store.trials(exp_id)}
                busy = metrics.registry.get_sample_value("tunesmith_workers_busy", {"experiment": name})
                seen.append((at, states, busy))
                time.sleep(0.05)
        finally:
            store.close()

    watcher = threading.Thread(target=watch, daemon=True)

    class Watched(MetricsListener):
        def run_started(self, *args: Any) -> None:
            super().run_started(*args)
            watcher.start()  # once the run has opened its store (a reader racing its first open breaks it)

    try:
        trials = sorted(tunesmith.run(spec, storage=project.storage, listener=Watched(metrics)).trials,
                        key=lambda t: t.number)
    finally:
        done.set()
        if watcher.is_alive():
            watcher.join(10)
    assert [t.state for t in trials] == [TrialState.COMPLETED] * 3, trials
    first, queued = trials[1], trials[2]
    assert queued.metrics["started"] >= first.metrics["ended"], "it was queued behind trial 1 in the one actor"
    store = SQLStore(project.storage, create=False)
    try:   # its submission (its first event) came a trial's length before it began: it really was queued
        events = [e for e in store.events(store.experiment(name).id) if e.trial_number == queued.number]
    finally:
        store.close()
    submitted = events[0].at
    assert queued.started_at - submitted > seconds - 1.0, (submitted, queued)
    waiting = [(states.get(queued.number), busy) for at, states, busy in seen
               if submitted + 0.2 < at < queued.metrics["started"] - 0.2]
    assert len(waiting) > 10, ("watched while it waited in the queue", len(waiting), len(seen))
    assert {state for state, _ in waiting} == {TrialState.QUEUED}, ("running in the store while queued", waiting)
    assert {busy for _, busy in waiting} == {1.0}, ("the busy gauge counted the queued trial", waiting)
    assert any(states.get(queued.number) is TrialState.RUNNING and busy == 1.0 for at, states, busy in seen
               if queued.metrics["started"] < at < queued.metrics["ended"]), "running (and busy) once it began"
    assert [(e.kind, e.at) for e in events[:2]] == [("trial_queued", submitted), ("trial_started", queued.started_at)]
    for t in trials:
        assert t.duration_s == pytest.approx(seconds, abs=0.5), t
        assert t.started_at is not None and t.finished_at is not None
        assert abs(t.metrics["started"] - t.started_at) < 1.0, ("recorded running from before its actor began it", t)
        assert t.finished_at - t.started_at < seconds + 1.0, ("its recorded span holds its wait in the queue", t)


def test_a_slow_mailbox_as_an_attempt_dies_loses_no_other_attempts_report(ray_cluster, tmp_path, monkeypatch):
    """An attempt whose actor died ends with its last words read from the mailbox, waited for LAST_WORDS_TIMEOUT.
    A mailbox slower than that (a heavily loaded machine; here a timeout of 0) must not drop the answer still on
    its way: it holds the other attempts' events. It dropped it, so another trial's report was lost and that trial,
    whose actor said how many it had sent, waited for the missing one for ever."""
    from tunesmith.executor import ray as ray_executor
    from tunesmith.executor.base import TrialReported

    ex = ray_executor.RayExecutor(2, address="auto", prefetch=False)
    ex.start()
    jobs = _Jobs(tmp_path)
    try:
        ex.submit(jobs.job(0, 0.01))
        ex.submit(jobs.job(1, 0.01))
        _ended(ex, 2)  # both actors are up
        monkeypatch.setattr(ray_executor, "LAST_WORDS_TIMEOUT", 0.0)
        ex.submit(jobs.job(2, 30.0))
        reporter = jobs.job(3, 2.0)  # reports every 0.1 s for 2 s: the mailbox's answer on its way holds one
        ex.submit(TrialJob(**{**{f: getattr(reporter, f) for f in reporter.__dataclass_fields__},
                              "function": "timed:reporting"}))
        events: list[Any] = []
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            events += ex.poll(0.1)
        ex.stop(2, FailureKind.INTERRUPTED, "killed")  # its actor ends while the reporter reports
        deadline = time.monotonic() + 20.0
        while len([e for e in events if isinstance(e, AttemptEnded)]) < 2 and time.monotonic() < deadline:
            events += ex.poll(0.2)
        ended = {e.number: e.outcome for e in events if isinstance(e, AttemptEnded)}
        assert ended.get(2) is not None and ended[2].failure is not None, ended
        assert [e.report.step for e in events if isinstance(e, TrialReported) and e.number == 3] == list(range(1, 21))
        assert 3 in ended and ended[3].failure is None, ("the reporter never ended: its report was lost", ended)
    finally:
        ex.close(0)
