"""The tuning loop, and the one place that wires the layers together.

spec -> space -> strategy -> executor -> store -> selection, with listeners watching. ``prepare`` checks a spec
completely without writing anything (``tunesmith validate``); ``run_experiment`` records and runs a new
experiment; ``resume_experiment`` continues one from the store after any stop, a SIGKILL included.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunesmith.budget import EVERY_CONFIGURATION_PROPOSED, BudgetTracker, with_unrun
from tunesmith.clock import Clock, SystemClock
from tunesmith.errors import LeaseHeld, StorageError, TunesmithError
from tunesmith.evaluation.command import check_placeholders, command_warnings
from tunesmith.evaluation.job_factory import trial_job
from tunesmith.evaluation.loading import check_trial_function
from tunesmith.evaluation.results import TrialNotes
from tunesmith.audit import AuditListener, time_spent
from tunesmith.events import Listeners, RunListener
from tunesmith.executor.base import AttemptEnded, AttemptStarted, Executor, ExecutorEvent, TrialReported
from tunesmith.executor.factory import QuotaScope, build_executor, executor_warnings, trials_run_here
from tunesmith.coordinators import (LEASE_TAKEN_OVER, LEASE_TTL, STALE_AFTER, Heartbeat, PeerTrials,
                                    dropped_as_taken_over, leave, reclaim_abandoned)
from tunesmith.lease_holders import lease_owner_id
from tunesmith.quotas import coordinator_user
from tunesmith.records import (ExperimentRecord, Failure, FailureKind, Lineage, Outcome, Report, RunStatus,
                               TrialRecord, TrialState, continued_curve)
from tunesmith.evaluation.context import (PARENT_CHECKPOINT, TRIAL_FOLDER, check_fresh_workdir, check_resumed_workdir,
                                          copy_latest_checkpoint, default_workdir, make_trial_folder)
from tunesmith.scheduler import Exploit, NoScheduler, Scheduler, SchedulerEvidence, build_scheduler, stops
from tunesmith.seeding import derive_seed, design_seed, fresh_seed, strategy_seed
from tunesmith.selection import SelectionRule, trial_metrics
from tunesmith.space import SearchSpace
from tunesmith.reproduce import stored_spec
from tunesmith.spec.model import ExperimentSpec
from tunesmith.spec.scheduler_config import NoSchedulerConfig
from tunesmith.strategy import Strategy, StrategyDecision, build_strategy, decide, enqueue_warnings, trials_planned
from tunesmith.tracking import attach_tracking, check_tracking_installed
from tunesmith.unreported_metrics import UnreportedMetrics
from tunesmith.strategy.warm_start import warm_started

if TYPE_CHECKING:  # the store (and SQLAlchemy) loads only when something runs: `validate` stays fast
    from tunesmith.storage.sql import SQLStore

SYNC_EVERY = 2.0            # how often a coordinator reads what its peers finished, and tells what its beats found
POLL_INTERVAL = 0.2


@dataclass(frozen=True)
class Plan:
    """A fully checked experiment, ready to record and run. Producing one writes nothing."""

    spec: ExperimentSpec          # with seed, workdir and base_dir filled in (what gets stored)
    space: SearchSpace
    decision: StrategyDecision
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunResult:
    experiment: ExperimentRecord
    trials: list[TrialRecord]
    stop_reason: str
    status: RunStatus  # how this coordinator's run ended: the experiment's status, unless others still run it


def prepare(spec: ExperimentSpec, decision: StrategyDecision | None = None, stored: bool = False,
            import_code: bool = True) -> Plan:
    """Check everything a spec implies beyond its schema: the strategy and its options, the trial code.
    ``stored``: the spec of a recorded experiment (resume, reproduce), which ran before; checks added since may
    not refuse it. ``import_code`` False: all but the code the spec names (`validate --schema-only`).

    Raises:
        SpecError: naming the field and the fix.
    """
    spec = spec.model_copy(update={"base_dir": os.path.abspath(spec.base_dir or ".")})
    space = spec.search_space
    if decision is None:
        decision = decide(spec.strategy.name, dict(spec.strategy.options), space, spec.budget.trials,
                          len(spec.objective), spec.executor.workers, constrained=bool(spec.constraints),
                          early_stopping=not isinstance(spec.scheduler, NoSchedulerConfig))
    warnings: list[str] = list(decision.warnings)  # (a recorded decision has none: its spec ran before)
    if spec.task is not None and import_code:  # (a task's check imports its classes: their modules run)
        from tunesmith.tasks import prepare as prepare_task

        warnings += prepare_task(spec.task, spec.base_dir, new=not stored, tuned=spec.space).warnings  # or fails
    elif spec.trial is not None and spec.trial.function is not None and import_code:
        check_trial_function(spec.trial.function, spec.base_dir, imported_by_workers=spec.executor.kind != "inline",
                             given=spec.trial.given_function(spec.name))
    elif spec.trial is not None and spec.trial.command is not None:
        check_placeholders(spec.trial.command, space.names, stored=stored)
    warnings += command_warnings(spec.trial.command, spec.trial.cwd, spec.base_dir, spec.trial.env,
                                 trials_run_here(spec.executor), space) if spec.trial else []
    warnings += executor_warnings(spec) + enqueue_warnings(spec.enqueue, spec.budget.trials)
    if spec.executor.kind == "ray":  # a missing extra is bad input before anything is recorded, not at the start
        from tunesmith.executor.ray import import_ray
        import_ray()
    if not stored:  # a recorded experiment still resumes and reproduces (its tracking fails as an event, as before)
        check_tracking_installed(spec)
    _scheduler_for(spec, space)  # a scheduler that does not fit the space (PBT's mutations) fails here, not mid-run
    workdir = os.path.abspath(spec.workdir or default_workdir(spec.name))
    filled = spec.model_copy(update={"seed": spec.seed if spec.seed is not None else fresh_seed(), "workdir": workdir})
    return Plan(filled, space, decision, tuple(warnings))


def run_experiment(spec: ExperimentSpec | Plan, store: SQLStore, listener: RunListener | None = None,
                   clock: Clock | None = None, on_runner: Callable[[Runner], None] | None = None,
                   attributes: dict[str, Any] | None = None) -> RunResult:
    """Record a new experiment from ``spec`` or its prepared plan (``attributes``: a re-tune's lineage, warm start).

    Raises:
        SpecError: the spec is invalid (nothing was recorded).
        ExperimentExists: the name is taken in this store.
    """
    clock, plan = clock or SystemClock(), spec if isinstance(spec, Plan) else prepare(spec)
    check_fresh_workdir(plan.spec.workdir or ".", plan.spec.name, store.experiments)
    experiment = store.create_experiment(plan.spec.name, plan.spec.to_json(), plan.decision.name,
                                         plan.decision.reason, clock.now())
    if plan.spec.task is not None:
        from tunesmith.tasks import fingerprint

        store.set_attributes(experiment.id, {"data_fingerprint": fingerprint(plan.spec.task, plan.spec.base_dir)},
                             clock.now())
    if attributes:
        store.set_attributes(experiment.id, attributes, clock.now())
        experiment = store.experiment(plan.spec.name)
    runner = Runner(store, experiment, plan, listener, clock, scheduler=_scheduler_for(plan.spec, plan.space))
    if on_runner:
        on_runner(runner)
    return runner.run(resumed=False)


def resume_experiment(name: str, store: SQLStore, listener: RunListener | None = None, clock: Clock | None = None,
                      on_runner: Callable[[Runner], None] | None = None, join: bool = False,
                      trial: Callable[..., Any] | None = None) -> RunResult:
    """Continue an experiment from its record: lost trials re-run, finished ones are replayed, the budget holds.
    ``trial``: its interactive trial function, handed over again (the record names it, no process can import it)."""
    clock, experiment = clock or SystemClock(), store.experiment(name)
    spec = stored_spec(experiment, trial, "resumed")  # (a TunedSearchCV search is refused: its data are gone)
    stored = StrategyDecision(experiment.strategy or spec.strategy.name,
                              dict(spec.strategy.options) if spec.strategy.name != "auto" else {},
                              experiment.strategy_reason or "")
    plan = prepare(spec, decision=stored, stored=True)  # and no new trial may take a folder of one not recorded:
    check_resumed_workdir(plan.spec.workdir or ".", name, lambda: store.trial_counts_of(experiment.id))
    runner = Runner(store, experiment, plan, listener, clock, scheduler=_scheduler_for(plan.spec, plan.space),
                    join=join)
    if spec.task is not None:  # (warned through the run's fan-out: a listener failing on it is dropped there, once)
        from tunesmith.data_history import record_data_change

        record_data_change(store, experiment, spec, clock.now(), runner.listener.warning)
    if on_runner:
        on_runner(runner)
    return runner.run(resumed=True)


@dataclass
class _Running:
    record: TrialRecord
    token: int
    reports: list[Report] = field(default_factory=list)
    prune_requested: bool = False


class Runner:
    """Runs one experiment's loop. Use :func:`run_experiment` / :func:`resume_experiment` to build one."""

    def __init__(self, store: SQLStore, experiment: ExperimentRecord, plan: Plan, listener: RunListener | None,
                 clock: Clock, executor: Executor | None = None, scheduler: Scheduler | None = None,
                 join: bool = False) -> None:
        self.store, self.experiment, self.plan, self.spec = store, experiment, plan, plan.spec
        watching = Listeners(AuditListener(store, clock), UnreportedMetrics.of(plan.spec),
                             SchedulerEvidence.of(plan.spec, store), listener or RunListener())
        self.listener = attach_tracking(plan.spec, store, clock, watching)  # + MLflow
        self.clock = clock
        self._owner = lease_owner_id()
        self.executor = executor or build_executor(self.spec, clock, report_hook=self._record_report, quota=QuotaScope(
            store, experiment.id, self._owner, coordinator_user(os.environ), announce=self.listener.warning))
        self.scheduler: Scheduler = scheduler or NoScheduler()
        self._stop_requested: str | None = None
        self.join, self._immediate, self._notes = join, False, TrialNotes()
        self._running: dict[int, _Running] = {}
        self._retry_queue: list[tuple[float, TrialRecord, int]] = []  # (when, trial, strategy token)
        self._heartbeat, self._peers = Heartbeat(self._keep_alive), PeerTrials()  # (the peers' trials: see _sync)

    def request_stop(self, reason: str = "interrupted", immediate: bool = False) -> None:
        """Stop dispatching; running trials get the grace period unless ``immediate``. Safe from a signal handler."""
        self._stop_requested = self._stop_requested or reason
        self._immediate = self._immediate or immediate

    # -- the loop ---------------------------------------------------------------------------------------------
    def run(self, resumed: bool) -> RunResult:
        from tunesmith.storage.sql import resume_hint  # (the store is open: SQLAlchemy is loaded)

        exp_id = self.experiment.id
        if not self.join:
            holder = self.store.acquire_lease(exp_id, self._owner, self.clock.now(), LEASE_TTL)
            if holder is not None:
                name = self.spec.name
                raise LeaseHeld(f"experiment {name!r} is being run by another coordinator ({holder}); wait for it "
                                f"to finish or stop it, then `{resume_hint(self.store, name)}`; or add trials to it "
                                f"from here with `{resume_hint(self.store, name, join=True)}`")
        try:  # the beat starts inside: a Ctrl-C in its start() left it renewing the lease for the process's life
            self._heartbeat.start()  # (the loop tells what it found; its own writes stop a run on a failing store)
            return self._run(resumed)
        finally:
            self._heartbeat.stop()
            with contextlib.suppress(StorageError):  # a failing store: the run's error is reported; the lease lapses
                self.store.release_lease(exp_id, self._owner)  # (none to release for a joiner: nothing happens)
                self.store.forget_coordinator(exp_id, self._owner)  # it left (leave()); no beat re-adds its row now
            self._tell_heartbeat()  # what beats found in the shutdown (the grace period, the refit, leave)

    def _run(self, resumed: bool) -> RunResult:
        self._setup(resumed)
        stop_reason, error = "", None  # type: str, BaseException | None
        try:
            stop_reason = self._loop()
        except KeyboardInterrupt as e:  # a second Ctrl-C during an inline trial
            stop_reason, error = "interrupted", e
        except BaseException as e:
            stop_reason, error = f"stopped by an error: {type(e).__name__}: {e}", e
            raise
        finally:
            self._tell_heartbeat()  # what the last beats found, the loop ended before its next sync told it
            self.listener.run_stopping(stop_reason)
            try:
                self._shutdown(stop_reason, error)
            except Exception:
                if error is None:
                    raise  # else the error that stopped the run is the one to report
        trials = self.store.trials(self.experiment.id)
        if self.spec.task is not None and error is None and not self._stop_requested:
            self._evaluate_task_after_run(trials)
        self.experiment = self.store.experiment(self.spec.name)
        self.listener.run_finished(self.experiment, trials, stop_reason)
        return RunResult(self.experiment, trials, stop_reason, self._ended_as)

    # -- one run, step by step -----------------------------------------------------------------------------------
    def _setup(self, resumed: bool) -> None:
        """Read the record, decide what re-runs, rebuild the strategy, scheduler and budget from history."""
        spec, store, clock, exp_id = self.spec, self.store, self.clock, self.experiment.id
        history = store.trials(exp_id)
        earlier = [t for t in history if t.state in (TrialState.LOST, TrialState.INTERRUPTED)]  # and a gone peer's:
        self._reruns: deque[TrialRecord] = deque(sorted(
            [*earlier, *reclaim_abandoned(store, exp_id, history, clock.now(), STALE_AFTER)], key=lambda t: t.number))
        finished = [t for t in history if t.state.is_finished()]
        self._strategy: Strategy = warm_started(build_strategy(
            self.plan.decision, self.plan.space, [o.direction for o in spec.objectives],
            strategy_seed(spec.seed or 0, len(history), self._owner if self.join else None), spec.executor.workers,
            clock=clock.monotonic, constraints=spec.constraints, objective_metrics=[o.metric for o in spec.objectives],
            design_seed=design_seed(spec.seed or 0, self.join), trials_recorded=len(history),
            say=self.listener.warning), self.experiment.attributes.get("warm_start"), spec.enqueue)
        self._strategy.replay(finished)
        warm, taken = self.experiment.attributes.get("warm_start") or {}, getattr(self._strategy, "taken_as", None)
        if taken is not None and warm.get("taken_as") != taken.value:  # how the strategy took the prior, for `show`
            store.set_attributes(exp_id, {"warm_start": {**warm, "taken_as": taken.value}}, clock.now())
        self.scheduler.replay(finished)
        elapsed_before = time_spent(store.events(exp_id)) if resumed else 0.0
        self._budget = BudgetTracker.of(spec, clock.monotonic(), elapsed_before)
        for t in finished:  # the budget keeps the best so far (show's best), which the listeners are told too
            self._budget.observe(t, replayed=True)
        self._allocated = len(history)           # trial numbers taken, as far as this coordinator knows
        self._allocation_closed = False          # the store refused a number: the trial budget is allocated
        self._exhausted = False                  # the strategy has nothing left to propose (a finished grid)
        self._mine: set[int] = set()             # trial numbers run here, or already learnt from peers
        self._seen_event = store.finished_since(exp_id, 0)[1]
        self._params_of = {t.number: dict(t.params) for t in history}
        self._log_template = os.path.join(spec.workdir or ".", TRIAL_FOLDER, "trial.log")
        self._propose = getattr(self.scheduler, "propose", None)  # hooks of proposing schedulers (PBT)
        self._on_start = getattr(self.scheduler, "on_start", None)
        store.set_status(exp_id, RunStatus.RUNNING, clock.now(),  # the owner: a peer tells it at work until it leaves
                         {"resumed": resumed, "reruns": len(self._reruns), "owner": self._owner})
        self.experiment = store.experiment(spec.name)
        self.listener.run_started(self.experiment, history, resumed, trials_planned(spec.budget.trials, self._strategy))

    def _loop(self) -> str:
        """Start the executor, then dispatch and collect until the budget, strategy or user says stop; returns why."""
        from tunesmith.storage.sql import resume_hint

        self.executor.start()  # inside _run's try: a start that fails (no cluster) is shut down and recorded too
        last_sync = self.clock.monotonic()
        while True:
            mono = self.clock.monotonic()
            if mono - last_sync >= SYNC_EVERY:
                self._sync()
                last_sync = mono
            if self._stop_requested:
                return self._stop_requested
            budget_stop = self._budget.stop_reason(mono)
            self._dispatch(mono, budget_stop)
            if not self._running and not self._retry_queue:
                if self._exhausted:
                    self._sync()  # (as below: a grid's configuration a dead peer held is re-run here, not lost)
                    if not self._reruns:
                        return EVERY_CONFIGURATION_PROPOSED
                if budget_stop is not None:
                    return with_unrun(budget_stop, len(self._reruns))
                if not self._reruns and (self._allocation_closed or not self._budget.may_start(self._allocated, mono)):
                    self._sync()  # a peer gone since the last sync: its trials are re-run here, not left running
                    if not self._reruns:
                        return self._budget.taken_stop(mono, self.store.trial_counts_of(self.experiment.id),
                                                       resume_hint(self.store, self.experiment.name))  # (for nobody's)
            timeout = POLL_INTERVAL
            if self._retry_queue and not self._running:
                timeout = min(POLL_INTERVAL, max(0.0, min(r[0] for r in self._retry_queue) - mono))  # (a stop: now)
            for ev in self.executor.poll(timeout):
                self._handle(ev)

    def _keep_alive(self) -> str | None:
        """Heartbeat's beat, the only one (it beats whatever holds up the loop); returns what to tell the user."""
        store, exp_id, now = self.store, self.experiment.id, self.clock.now()
        holder = None if self.join else store.renew_lease(exp_id, self._owner, now, LEASE_TTL)
        self.join = self.join or holder is not None  # ours lapsed (a stalled store) and was taken: go on as a joiner
        store.heartbeat(exp_id, [*self._running, *(r[1].number for r in list(self._retry_queue))], now, self._owner)
        return holder and LEASE_TAKEN_OVER.format(holder=holder)

    def _tell_heartbeat(self) -> None:  # here, in the loop's thread: an inline trial's output goes to its log
        for line in self._heartbeat.untold():
            self.listener.warning(line)

    def _sync(self) -> None:
        """Tell what the heartbeat found; learn what cooperating coordinators finished (a failing store raises)."""
        self._tell_heartbeat()
        running = self.store.unfinished_trials(self.experiment.id, skip=self._mine)  # read first: PeerTrials.ended
        others, self._seen_event = self.store.finished_since(self.experiment.id, self._seen_event, skip=self._mine)
        others += self._peers.ended(self.store, self.experiment.id, self._strategy, running, others)
        self._reruns.extend(reclaim_abandoned(self.store, self.experiment.id, running, self.clock.now(), STALE_AFTER))
        if others:
            self._peers.tell_finished(self._strategy, others, self.spec.objectives)  # those told pending: their ends
            self.scheduler.replay(others)
            for t in others:
                self._mine.add(t.number)
                self._budget.observe(t, replayed=True)

    def _dispatch(self, mono: float, budget_stop: str | None) -> None:
        """Fill free workers: due retries first, then re-runs of lost trials, then new trials."""
        while self.executor.free_slots() > 0:
            ready = [r for r in self._retry_queue if r[0] <= mono]
            if ready:
                self._retry_queue.remove(ready[0])
                self._rerun(ready[0][1], ready[0][2], "trial_retry_started")
            elif self._reruns and budget_stop is None:
                self._rerun(self._reruns.popleft(), None, "trial_rerun")
            elif (not self._exhausted and not self._allocation_closed
                  and self._budget.may_start(self._allocated, mono)):
                if not self._start_new_trial():
                    return
            else:
                return

    def _start_new_trial(self) -> bool:
        """Ask the scheduler (PBT), else the strategy, for a configuration and launch it; False when none."""
        exploit = self._propose() if self._propose is not None else None
        self._peers.tell_running(self.store, self.experiment.id, self._strategy, self._mine)  # not theirs again
        proposal = self._strategy.adopt(dict(exploit.params)) if exploit else self._strategy.ask()
        if proposal is None:
            self._exhausted = True
            return False
        new = self.store.new_trial(self.experiment.id, proposal.params, self.spec.seed or 0, self.clock.now(),
                                   self._log_template, owner=self._owner, limit=self.spec.budget.trials,
                                   queued=self.executor.next_job_waits())  # (then AttemptStarted starts it)
        if new is None:  # cooperating coordinators took the rest of the budget
            self._strategy.tell(proposal.token, TrialState.FAILED, None)
            self._allocation_closed = True
            return False
        self._allocated += 1
        self._launch(new, proposal.token, exploit, new_trial=True)
        return True

    def _launch(self, rec: TrialRecord, token: int, exploit: Exploit | None = None, new_trial: bool = False) -> None:
        self._running[rec.number] = _Running(rec, token)  # first: a folder not made stops the run, which interrupts it
        trial_dir = make_trial_folder(rec, self.spec.workdir or ".", new_trial)
        if exploit is not None:  # (a PBT child: its parent's checkpoint, in its folder)
            self._inherit(rec, exploit)
        job = trial_job(self.spec, self.plan.space.names, rec, trial_dir)
        if self._on_start is not None:
            self._on_start(rec)
        self._mine.add(rec.number)
        self._params_of[rec.number] = dict(rec.params)
        self.executor.submit(job)  # a queued one waits for a worker (Ray's prefetch): its AttemptStarted starts it
        (self.listener.trial_started if rec.state is TrialState.RUNNING else self.listener.trial_queued)(rec)

    def _rerun(self, rec: TrialRecord, token: int | None, event: str) -> None:  # (token: a retry's own)
        again = replace(rec, state=TrialState.QUEUED if self.executor.next_job_waits() else TrialState.RUNNING,
                        attempts=rec.attempts + 1, started_at=self.clock.now(), finished_at=None, owner=self._owner)
        if not self.store.take_for_rerun(self.experiment.id, rec, again, event, self.clock.now()):
            return self._peers.runs_elsewhere(rec.number, token, self._mine)  # another took it first: it runs it
        self._launch(again, self._peers.token_to_rerun(self._strategy, rec) if token is None else token)

    def _inherit(self, rec: TrialRecord, exploit: Exploit) -> None:
        """A trial PBT started from another: copy the parent's checkpoint, record the lineage."""
        copied = copy_latest_checkpoint(Path(self._log_template.format(number=exploit.parent)).parent,
                                        Path(rec.log_path or "").parent / PARENT_CHECKPOINT)
        lineage = Lineage(exploit.parent, exploit.step, self._params_of.get(exploit.parent), exploit.params, copied)
        self.store.record_event(self.experiment.id, "trial_exploited", self.clock.now(), rec.number, lineage.to_json())
        self.listener.trial_exploited(rec, lineage)

    def _handle(self, ev: ExecutorEvent) -> None:
        if isinstance(ev, TrialReported):
            self._record_report(ev.number, ev.report)
        elif isinstance(ev, AttemptEnded) and (rt := self._running.pop(ev.number, None)) is not None:
            self._finish(rt, ev.outcome)
        elif isinstance(ev, AttemptStarted) and (rt := self._running.get(ev.number)) is not None:  # waited (prefetch)
            was, rt.record = rt.record, replace(rt.record, state=TrialState.RUNNING, started_at=ev.at)
            if not self.store.save_trial_unless_changed(self.experiment.id, was, rt.record, "trial_started", ev.at):
                return dropped_as_taken_over(self.listener, self._mine, self._running.pop(ev.number).record.number)
            self.listener.trial_started(rt.record)

    def _record_report(self, number: int, report: Report) -> None:
        """Store a report, tell the strategy; ask the scheduler if the trial goes on (a restated one: only noted)."""
        rt = self._running.get(number)
        if rt is None:
            return
        rt.reports.append(report)
        self.store.add_report(self.experiment.id, number, rt.record.attempts, report, self.clock.now())
        self._strategy.report(rt.token, report)
        if not rt.prune_requested and stops(self.scheduler, number, report):
            rt.prune_requested = True
            self.store.record_event(self.experiment.id, "trial_prune_requested", self.clock.now(), number,
                                    {"step": report.step})
            self.executor.prune(number, report.step)

    def _finish(self, rt: _Running, outcome: Outcome) -> None:
        """An attempt ended: queue a retry for a fault worth retrying, else record the trial's final state."""
        spec, rec, failure, now = self.spec, rt.record, outcome.failure, self.clock.now()
        exp_id, curve = self.experiment.id, continued_curve(rec.intermediate, rt.reports)
        if (failure is not None and failure.kind in spec.executor.retry_on
                and rec.attempts <= spec.executor.retries and self._stop_requested is None):
            delay = spec.executor.retry_backoff * 2 ** (rec.attempts - 1)
            queued = replace(rec, state=TrialState.QUEUED, error=str(failure), failure_kind=failure.kind,
                             duration_s=outcome.duration_s, intermediate=curve)
            if not self.store.save_trial_unless_changed(exp_id, rec, queued, "trial_retry", now, {"delay_s": delay}):
                return dropped_as_taken_over(self.listener, self._mine, rec.number)
            self._retry_queue.append((self.clock.monotonic() + delay, queued, rt.token))
            return self.listener.trial_retrying(queued, failure, delay)
        final = replace(rec, state=outcome.state, values=outcome.values, metrics=dict(outcome.metrics),
                        error=str(failure) if failure else None, failure_kind=failure.kind if failure else None,
                        finished_at=now, duration_s=outcome.duration_s, intermediate=curve)
        if not self.store.save_trial_unless_changed(exp_id, rec, final, f"trial_{final.state.value}", now):
            return dropped_as_taken_over(self.listener, self._mine, rec.number)  # a peer re-ran it: its record stays
        self._notes.say(rec.number, outcome.notes, self.listener.warning)  # the ending attempt's (its log has them)
        if final.state is not TrialState.INTERRUPTED:
            self._strategy.tell(rt.token, final.state, final.values, trial_metrics(final, spec.objectives))
            self.scheduler.on_finish(final)
            self._budget.observe(final, raised_at=failure.raised_at if failure else None)
        self.listener.trial_finished(final, self._budget.best_trial)

    def _evaluate_task_after_run(self, trials: list[TrialRecord]) -> None:
        """The holdout score of the best configuration (refit on every development row) and, if asked, the nested
        estimate. Recorded beside the experiment, never told to the strategy: the search never sees the holdout."""
        from tunesmith.tasks import after_run_estimates

        task, spec = self.spec.task, self.spec
        assert task is not None
        rule = SelectionRule(spec.objectives, spec.constraints, spec.select, task.exclude_unstable)
        results, said = after_run_estimates(task, self.plan.space, trials, rule, spec.seed or 0, spec.base_dir,
                                            spec.prices(), spec.enqueue)
        for warning in said:
            self.listener.warning(f"while refitting for the holdout / nested estimate: {warning}")
        if results:
            self.store.set_attributes(self.experiment.id, results, self.clock.now())

    def _shutdown(self, stop_reason: str, error: BaseException | None) -> None:
        """Give running trials the grace period (unless told to hurry), interrupt the rest, record the status."""
        store, clock, exp_id = self.store, self.clock, self.experiment.id
        reason = "interrupted by the user before it finished"
        if error is None:
            grace, grace_ends = self.spec.executor.grace_period, clock.monotonic() + self.spec.executor.grace_period
            try:
                while self._running and not self._immediate and clock.monotonic() < grace_ends:
                    for ev in self.executor.poll(POLL_INTERVAL):
                        self._handle(ev)
            except TunesmithError as e:  # the executor failed in the grace period (its Ray cluster went away)
                self._shutdown(f"stopped by an error: {type(e).__name__}: {e}", e)  # still stop, close and record
                raise
            if self._running and not self._immediate:
                reason = f"still running when the {grace:g}s grace period ended"
        elif not isinstance(error, KeyboardInterrupt):
            reason = "its run stopped on an error before it finished"
        for number in list(self._running):
            self.executor.stop(number, FailureKind.INTERRUPTED, reason)
        for ev in self.executor.close(0.0):
            self._handle(ev)
        for rt in list(self._running.values()):
            self._finish(rt, Outcome(failure=Failure(FailureKind.INTERRUPTED, reason)))
        self._running.clear()
        for _, rec, _token in self._retry_queue:  # unless another coordinator took it over meanwhile: it runs it
            store.save_trial_unless_changed(exp_id, rec, replace(rec, state=TrialState.INTERRUPTED),
                                            "trial_interrupted", clock.now())
        self._ended_as = status = (RunStatus.INTERRUPTED if self._stop_requested or isinstance(error, KeyboardInterrupt)
                                   else RunStatus.FAILED if error is not None or self._budget.failure_stop() is not None
                                   else RunStatus.COMPLETED)
        # coordinators still at work: one's stop or failure is not the experiment's; the last one out records it
        leave(store, exp_id, self._owner, status, stop_reason, clock.now(), STALE_AFTER)


def _scheduler_for(spec: ExperimentSpec, space: SearchSpace) -> Scheduler:
    """The spec's scheduler; its seed derives from the experiment's, so a resume assigns the same brackets."""
    return build_scheduler(spec.scheduler, spec.objectives[0].direction, derive_seed(spec.seed or 0, "scheduler"),
                           space=space)
