"""The Prometheus metrics of a tuning run, declared once; the only module that imports prometheus_client.

One :class:`TuningMetrics` owns its own ``CollectorRegistry`` (never the process-global one), so two runs in
one process, or a run and a test, never share series. Labels are bounded: the experiment, and the trial
state, failure reason, objective metric or promotion outcome where one applies; never a trial number.

The same accumulation serves the live run (a listener feeds it trial by trial) and ``tunesmith metrics NAME``
(:func:`metrics_from_store` replays the stored trials through it), so the two never disagree on a definition.

Definitions worth stating:
- best value: per objective metric, the value of ``show``'s best trial, the best trial selection may pick
  (within the spec's constraints; not flagged unstable when the task excludes those), told by the runner with each
  finished trial and replayed with the same :class:`~tunesmith.selection.RunningBest`. With no such trial there
  is no best series at all (nor time to best, nor when it was updated). Time to best is from the experiment's
  creation to the finish of that trial; trials since best count the trials finished since it became the best
  (every finished trial while there is none);
- running: 1 while a live coordinator runs the experiment (``show``'s notion: a run recorded running whose
  coordinators were killed is ``abandoned``, 0 here, and its trials recorded running are not busy workers);
- resources saved (early stopping only): ``1 - steps run / steps had every counted trial run to the end``, the
  end being ``max_resource`` or the completed trials' last step past it (see scheduler.resources), and trials
  without reports left out: the same figure as ``tunesmith show`` (scheduler.resources.ResourceTally);
- reproducibility index (built-in tasks only): the fraction of completed trials whose fold spread stayed under
  the task's threshold (not flagged ``unstable``): how far a configuration's score can be trusted to repeat;
- cost (once a cost model records a trial metric ``cost``): cumulative cost and cost per trial;
- trials started counts attempts that began: one queued for a worker (Ray's prefetch, an actor coming up) counts
  as it begins, not as it is submitted; the queue length is the trials recorded ``queued``, waiting for a retry
  or for a worker (``show``'s ``queued`` count of a running experiment);
- quota waiting: 1 while a live coordinator runs the experiment and its events say it waits for a free slot of a
  quota (``show``'s ``quota_wait``, read from the store's ``quota_wait`` events): policy holding the run back, which
  the shipped rules do not call a stall or idle workers. A wait's start and end count as activity (a run that
  waited an hour and then started a trial has not been stalled for an hour);
- exposition time: when this exposition was made (served, written, printed), so that a textfile that says running
  but is no longer rewritten tells of a coordinator that died without a word (SIGKILL, the OOM killer, a lost node).

Several coordinators on one experiment (``resume --join``): every exposition is the whole experiment's, as the
store records it, whoever ran its trials. A coordinator counts its own trials as the runner tells them and its
peers' as it reads them from the store (:meth:`TuningMetrics.catch_up`), each attempt once, whichever told it
first; one that starts (``run``, ``resume``, a joiner) starts from the store's figures, as ``tunesmith metrics``
does. So they agree, and a dashboard takes the ``max`` over coordinators, never the sum. The exceptions: running
and the run's start are the exposing coordinator's (``tunesmith metrics``: any coordinator's, the latest start);
workers are the slots of the coordinators at work (the spec's ``executor.workers`` each; 0 while none is), busy
and queued the trials they run or hold (a coordinator that left reads 0 for all three, as for running). A coordinator
that left keeps the rest of its last figures (a textfile stays): a gauge that can go down (trials since best, cost
per trial, resources saved, reproducibility index) is read from the coordinators still running.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_right, insort
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tunesmith.audit import PROMOTION_OUTCOMES, AuditKind
from tunesmith.coordinators import STALE_AFTER, abandoned, at_work
from tunesmith.errors import UserInputError
from tunesmith.extras import install_extra
from tunesmith.monitoring.listening import cannot_listen
from tunesmith.quotas import QuotaWait, quota_wait_after
from tunesmith.records import ExperimentRecord, FailureKind, ObjectiveSpec, TrialRecord, TrialState
from tunesmith.scheduler.resources import ResourceTally
from tunesmith.selection import RunningBest
from tunesmith.storage.base import Event, TrialStore, begins_an_attempt
from tunesmith.summary import reads_curves

# Trials run from milliseconds (benchmarks) to hours (deep learning): buckets cover both.
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0,
                    21600.0, math.inf)
COST_METRIC = "cost"
# the events that record a trial's final state (a finished trial's record is then read for its figures)
FINISHED_EVENTS = frozenset(f"trial_{s.value}" for s in (TrialState.COMPLETED, TrialState.PRUNED, TrialState.FAILED))

# Every series this module exports, without the _bucket/_sum/_count suffixes; the shipped dashboards and alert
# rules may use only these (a test checks it).
SHUTDOWN_POLL_S = 0.05  # how soon the /metrics server notices a shutdown

METRIC_NAMES = (
    "tunesmith_experiment_running", "tunesmith_run_started_timestamp_seconds",
    "tunesmith_trials_started_total", "tunesmith_trials_finished_total", "tunesmith_trial_failures_total",
    "tunesmith_trial_retries_total", "tunesmith_trial_duration_seconds",
    "tunesmith_best_value", "tunesmith_time_to_best_seconds", "tunesmith_best_updated_timestamp_seconds",
    "tunesmith_trials_since_best", "tunesmith_last_trial_finished_timestamp_seconds",
    "tunesmith_last_activity_timestamp_seconds",
    "tunesmith_resource_steps_used", "tunesmith_resource_saved_ratio",
    "tunesmith_workers", "tunesmith_workers_busy", "tunesmith_queue_length",
    "tunesmith_budget_trials", "tunesmith_budget_wall_time_seconds", "tunesmith_reproducibility_index",
    "tunesmith_promotions_total", "tunesmith_cost_total", "tunesmith_cost_per_trial",
    "tunesmith_quota_waiting", "tunesmith_exposition_timestamp_seconds",
)


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise UserInputError(f"metrics need prometheus-client: {install_extra('metrics')}") from None
    return prometheus_client


class TuningMetrics:
    """The metrics of one experiment's run, in a registry of their own.

    Call :meth:`experiment_seen` first, then the trial hooks in the order things happen.

    Args:
        now: what the exposition's own timestamp reads (the wall clock; a fixed time for ``tunesmith metrics``).
    """

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self.now = now
        prom = _prometheus()
        prom.disable_created_metrics()  # *_created series only clutter a textfile and every dashboard query
        self.registry = prom.CollectorRegistry(auto_describe=True)
        r, e = self.registry, ["experiment"]
        self.running = prom.Gauge("tunesmith_experiment_running", "1 while a coordinator runs the experiment", e,
                                  registry=r)
        self.run_started = prom.Gauge("tunesmith_run_started_timestamp_seconds", "When the current run started", e,
                                      registry=r)
        self.started = prom.Counter("tunesmith_trials_started", "Trial attempts started (retries included)", e,
                                    registry=r)
        self.finished = prom.Counter("tunesmith_trials_finished", "Trials that reached a final state, by state",
                                     [*e, "state"], registry=r)
        self.failures = prom.Counter("tunesmith_trial_failures", "Failed trials by reason", [*e, "reason"],
                                     registry=r)
        self.retries = prom.Counter("tunesmith_trial_retries", "Attempts that failed and were retried, by reason",
                                    [*e, "reason"], registry=r)
        self.duration = prom.Histogram("tunesmith_trial_duration_seconds", "Wall time of finished trials",
                                       [*e, "state"], buckets=DURATION_BUCKETS, registry=r)
        self.best = prom.Gauge("tunesmith_best_value", "Per objective metric, the value of the best trial selection "
                               "may pick (show's best: within the constraints); absent while there is none",
                               [*e, "metric", "direction"], registry=r)
        self.time_to_best = prom.Gauge("tunesmith_time_to_best_seconds",
                                       "From the experiment's creation to the finish of the trial that set the best", e,
                                       registry=r)
        self.best_updated = prom.Gauge("tunesmith_best_updated_timestamp_seconds", "When the best last improved", e,
                                       registry=r)
        self.since_best = prom.Gauge("tunesmith_trials_since_best", "Trials finished since the best last improved", e,
                                     registry=r)
        self.last_finished = prom.Gauge("tunesmith_last_trial_finished_timestamp_seconds",
                                        "When the last trial reached a final state", e, registry=r)
        self.last_activity = prom.Gauge("tunesmith_last_activity_timestamp_seconds", "When the run started, a "
                                        "trial last finished or a quota wait began or ended, whichever is later "
                                        "(what a stall alert watches)", e, registry=r)
        self.steps_used = prom.Gauge("tunesmith_resource_steps_used", "Steps run by completed and pruned trials "
                                     "that reported (early stopping only)", e, registry=r)
        self.saved = prom.Gauge("tunesmith_resource_saved_ratio", "Fraction of steps early stopping saved against "
                                "running every counted trial to the end (the longest completed trial's length)", e,
                                registry=r)
        self.workers = prom.Gauge("tunesmith_workers", "Worker slots of the coordinators at work (the spec's workers "
                                  "each)", e, registry=r)
        self.busy = prom.Gauge("tunesmith_workers_busy", "Workers running a trial", e, registry=r)
        self.queue = prom.Gauge("tunesmith_queue_length", "Trials waiting to begin: for a retry, or queued for a "
                                "worker", e, registry=r)
        self.budget_trials = prom.Gauge("tunesmith_budget_trials", "The trial budget", e, registry=r)
        self.budget_wall = prom.Gauge("tunesmith_budget_wall_time_seconds", "The wall-time budget", e, registry=r)
        self.reproducibility = prom.Gauge("tunesmith_reproducibility_index", "Completed trials not flagged unstable "
                                          "(built-in tasks)", e, registry=r)
        self.promotions = prom.Counter("tunesmith_promotions", "Promotion decisions by outcome", [*e, "outcome"],
                                       registry=r)
        self.cost = prom.Counter("tunesmith_cost", "Cumulative cost of finished trials (trial metric 'cost')", e,
                                 registry=r)
        self.cost_per_trial = prom.Gauge("tunesmith_cost_per_trial", "Mean cost of the trials that recorded one", e,
                                         registry=r)
        self.quota_waiting = prom.Gauge("tunesmith_quota_waiting", "1 while the run waits for a free slot of a quota "
                                        "(tunesmith show names it): policy, not a stall", e, registry=r)
        self.exposed_at = prom.Gauge("tunesmith_exposition_timestamp_seconds", "When this exposition was made "
                                     "(served, written or printed): a textfile saying running whose time stands "
                                     "still lost its coordinator", e, registry=r)
        self._prom = prom
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._name = ""
        self._objectives: tuple[ObjectiveSpec, ...] = ()
        self._ranking = RunningBest(())   # replaced in experiment_seen by the spec's selection rule
        self._created_at = 0.0
        self._best: TrialRecord | None = None
        self._since_best = 0
        self._finished_count = 0
        self._last_activity = 0.0
        self._resources = ResourceTally()  # show's figures, counted one finished trial at a time
        self._early_stopping = False
        self._completed = 0
        self._unstable = 0
        self._is_task = False
        self._costed = 0
        self._cost_sum = 0.0
        self._busy: set[int] = set()     # the trials the hooks told of as running or queued
        self._queued: set[int] = set()
        self._told: set[int] = set()     # every trial a hook told of: whether it runs here is the hooks' to say
        self._others_busy: frozenset[int] = frozenset()   # the others the store records running or queued
        self._others_queued: frozenset[int] = frozenset()
        self._counted: set[tuple[str, int, int]] = set()  # (what, trial or event, attempt): counted once
        self._finish_times: list[float] = []  # sorted: the trials since best go by when trials finished
        self._workers_each = 0
        self._coordinators = 1
        self._live = False
        self._quota_wait: QuotaWait | None = None  # the wait the store's events say the run is in (show's rule)

    # -- what the run tells ------------------------------------------------------------------------------------
    def experiment_seen(self, experiment: ExperimentRecord, running: bool, started_at: float | None = None) -> None:
        """The experiment's static facts (workers, budgets, objectives) and whether a coordinator runs it now."""
        from tunesmith.spec.loader import spec_from_dict

        spec = spec_from_dict(experiment.spec, recorded=True)
        self._name = n = experiment.name
        self._objectives = spec.objectives
        self._created_at = experiment.created_at
        self._is_task = spec.task is not None
        self._ranking = RunningBest(spec.objectives, (), spec.constraints,
                                    bool(spec.task and spec.task.exclude_unstable))
        self._early_stopping = spec.scheduler.name != "none"
        self._resources.max_resource = getattr(spec.scheduler, "max_resource", None)
        self._live = running
        self._at(self.running, n).set(1 if running else 0)
        if started_at is not None:
            self._at(self.run_started, n).set(started_at)
            self._last_activity = max(self._last_activity, started_at)
            self._at(self.last_activity, n).set(self._last_activity)
        self._workers_each = spec.executor.workers
        self._at(self.workers, n).set(spec.executor.workers if running else 0)
        if spec.budget.trials is not None:
            self._at(self.budget_trials, n).set(spec.budget.trials)
        if spec.budget.wall_time is not None:
            self._at(self.budget_wall, n).set(float(spec.budget.wall_time))
        self._at(self.started, n)  # present at zero from the start, so rate() and ratios have a series to work on
        for s in (TrialState.COMPLETED, TrialState.PRUNED, TrialState.FAILED):
            self._at(self.finished, n, s.value)
        self._at(self.busy, n).set(0)
        self._at(self.queue, n).set(0)
        self._at(self.quota_waiting, n).set(0)
        self._at(self.exposed_at, n).set_function(self.now)

    def trial_started(self, trial: TrialRecord) -> None:
        self._began(trial.number, trial.attempts)
        self._told.add(trial.number)
        self._queued.discard(trial.number)
        self._busy.add(trial.number)
        self._occupancy()

    def trial_queued(self, trial: TrialRecord) -> None:
        """Its attempt waits for a worker: not started (``trial_started`` counts it as it begins), queued."""
        self._told.add(trial.number)
        self._busy.discard(trial.number)
        self._queued.add(trial.number)
        self._occupancy()

    def trial_retrying(self, trial: TrialRecord) -> None:
        self._retried(trial.number, trial.attempts, _reason(trial))
        self._told.add(trial.number)
        self._busy.discard(trial.number)
        self._queued.add(trial.number)
        self._occupancy()

    def trial_finished(self, trial: TrialRecord) -> None:
        """``trial`` reached a final state (or was interrupted or lost). Counted once, whether the runner told it
        or the store did (:meth:`catch_up`); the best is worked out here, with show's rule, over every trial
        counted (the runner's best knows its peers' trials only as of its last sync)."""
        n, state = self._name, trial.state
        self._busy.discard(trial.number)
        self._queued.discard(trial.number)
        self._occupancy()
        if state is TrialState.INTERRUPTED or state is TrialState.LOST:
            return  # it runs again on resume: not an outcome
        if not self._first(("ended", trial.number, trial.attempts)):
            return
        self._at(self.finished, n, state.value).inc()
        if trial.duration_s is not None:
            self._at(self.duration, n, state.value).observe(trial.duration_s)
        if trial.finished_at is not None:
            insort(self._finish_times, trial.finished_at)
            self._at(self.last_finished, n).set(self._finish_times[-1])  # (a peer's may be told after a later one)
            self._last_activity = max(self._last_activity, trial.finished_at)
            self._at(self.last_activity, n).set(self._last_activity)
        if state is TrialState.FAILED:
            self._at(self.failures, n, _reason(trial)).inc()
        cost = trial.metrics.get(COST_METRIC)
        if cost is not None and math.isfinite(cost) and cost >= 0:
            self._costed += 1
            self._cost_sum += cost
            self._at(self.cost, n).inc(cost)
            self._at(self.cost_per_trial, n).set(self._cost_sum / self._costed)
        self._count_resources(trial)
        self._count_best(trial)

    def catch_up(self, events: Iterable[Event], trials: Iterable[TrialRecord], now: float | None = None,
                 coordinators: int = 1) -> None:
        """Count what the store records, whoever did it: this coordinator's trials are told by the hooks as well,
        and each attempt counts once, whichever told it first.

        Args:
            events: the store's events not given before: attempts that began, retries, promotions. Read before
                ``trials``, so that a trial that finished in between is read finished (its event comes next time).
            trials: the records of the trials those events say finished (every finished trial, the first time), and
                of every trial running or queued now: those the hooks never told of are other coordinators' work,
                busy or queued while the experiment runs, unless abandoned at ``now`` (their coordinator gone).
            coordinators: how many coordinators are at work on it (each has the spec's workers); at least one.
        """
        n = self._name
        for e in events:
            self._quota_wait = quota_wait_after(self._quota_wait, e)
            if e.kind in _QUOTA_WAIT_EVENTS:
                self._last_activity = max(self._last_activity, e.at)
                self._at(self.last_activity, n).set(self._last_activity)
            if e.kind in PROMOTION_OUTCOMES:
                if self._first(("promotion", e.id, 0)):
                    self._at(self.promotions, n, PROMOTION_OUTCOMES[e.kind]).inc()
                continue
            if e.trial_number is None:
                continue
            attempt = e.payload.get("attempt")
            attempt = attempt if isinstance(attempt, int) else -e.id  # (an old store's event: counted once anyway)
            if begins_an_attempt(e.kind, e.payload):
                self._began(e.trial_number, attempt)
            elif e.kind == "trial_retry":
                self._retried(e.trial_number, attempt, _reason_named(e.payload.get("error")))
        trials = list(trials)
        for t in sorted(trials, key=lambda t: (t.finished_at if t.finished_at is not None else math.inf, t.number)):
            if t.state.is_finished():
                self.trial_finished(t)
        others = [t for t in trials if self._live and t.number not in self._told
                  and (now is None or t.owner is None or not abandoned(t, now, STALE_AFTER))]
        self._others_busy = frozenset(t.number for t in others if t.state is TrialState.RUNNING)
        self._others_queued = frozenset(t.number for t in others if t.state is TrialState.QUEUED)
        self._coordinators = max(1, coordinators)
        self._occupancy()

    def replay(self, experiment: ExperimentRecord, trials: Iterable[TrialRecord],
               events: Sequence[Event] | None = None, running: bool | None = None, started_at: float | None = None,
               now: float | None = None, coordinators: int = 1) -> None:
        """Feed an experiment's stored trials and events through the metrics (what a run starts from, and what
        ``tunesmith metrics`` prints): :meth:`experiment_seen`, then :meth:`catch_up`.

        Args:
            events: the store's events of it, read before ``trials``: the attempts that began (a record's
                ``attempts`` also counts those submitted queued for a worker that never began, stopped before they
                started, which the live count never counted), the retries, the promotions. Without them, every
                attempt a record counts began.
            running: whether a coordinator runs it now; by default, whether its recorded status says so. When not,
                trials recorded running or queued are nobody's work (an abandoned run's): not busy, not queued.
        """
        running = experiment.status.value == "running" if running is None else running
        self.experiment_seen(experiment, running, started_at)
        trials = list(trials)
        if events is None:
            for t in trials:
                for attempt in range(1, t.attempts + 1):
                    self._began(t.number, attempt)
        self.catch_up(events or (), trials, now, coordinators)

    def promotion_decided(self, outcome: str) -> None:
        self._at(self.promotions, self._name, outcome).inc()

    def run_finished(self) -> None:
        """The exposing coordinator left the run: it has no worker slot at work, nothing busy or queued, nor is it
        running. The rest of what it last read stays: the counters and the gauges that only grow, which ``max``
        over coordinators reads past; a gauge that can go down (trials since best) is to be read from the
        coordinators still running (the shipped rules and dashboards do)."""
        self._live = False
        self._busy.clear()
        self._queued.clear()
        self._others_busy = self._others_queued = frozenset()
        self._occupancy()
        self._at(self.running, self._name).set(0)

    # -- what it exposes ----------------------------------------------------------------------------------------
    def exposition(self) -> bytes:
        """The text exposition format (what /metrics serves)."""
        return bytes(self._prom.generate_latest(self.registry))

    def write_textfile(self, path: str) -> None:
        """Write the exposition for node_exporter's textfile collector: a temporary file renamed over ``path``."""
        self._prom.write_to_textfile(path, self.registry)

    def serve(self, addr: str, port: int) -> Any:
        """Serve /metrics from a daemon thread; returns the server (``shutdown()`` and ``server_close()`` it).

        Raises:
            UserInputError: the address cannot be bound (in use, not local).
        """
        import threading
        from wsgiref.simple_server import WSGIRequestHandler, make_server

        from prometheus_client.exposition import ThreadingWSGIServer, make_wsgi_app

        class QuietHandler(WSGIRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  scrapes are not news
                pass

        try:
            server = make_server(addr, port, make_wsgi_app(self.registry), ThreadingWSGIServer,
                                 handler_class=QuietHandler)
        except OSError as e:
            raise cannot_listen(addr, port, e, port_option="--metrics-port", addr_option="--metrics-addr") from None
        # prometheus_client's own start_http_server polls for shutdown every 0.5 s, which every run then waited
        # at its end (0.4 ms a trial over 1,000 no-op trials); 50 ms costs nothing while idle
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_S}, daemon=True,
                         name="tunesmith-metrics").start()
        return server

    # -- accounting ---------------------------------------------------------------------------------------------
    def _at(self, metric: Any, *labels: str) -> Any:
        """The metric's child for these label values, looked up once: ``labels()`` itself dominated the per-trial
        cost (argument checks and a lock on every call)."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def _first(self, key: tuple[str, int, int]) -> bool:
        """Whether ``key`` is counted for the first time (and now counted)."""
        if key in self._counted:
            return False
        self._counted.add(key)
        return True

    def _began(self, number: int, attempt: int) -> None:
        if self._first(("began", number, attempt)):
            self._at(self.started, self._name).inc()

    def _retried(self, number: int, attempt: int, reason: str) -> None:
        if self._first(("retried", number, attempt)):
            self._at(self.retries, self._name, reason).inc()

    def _occupancy(self) -> None:
        self._at(self.busy, self._name).set(len(self._busy | self._others_busy))  # (the others: none told here)
        self._at(self.queue, self._name).set(len(self._queued | self._others_queued))
        # a coordinator that left has no slot at work: the slots it last saw, kept in its textfile, would be the max
        # over coordinators beside one running alone (its utilisation read halved)
        self._at(self.workers, self._name).set(self._workers_each * self._coordinators if self._live else 0)
        self._at(self.quota_waiting, self._name).set(1 if self._live and self._quota_wait is not None else 0)

    def _count_resources(self, trial: TrialRecord) -> None:
        if not self._early_stopping or trial.state not in (TrialState.COMPLETED, TrialState.PRUNED):
            return
        self._resources.add(trial)
        summary = self._resources.summary()
        self._at(self.steps_used, self._name).set(summary.steps_used)
        self._at(self.saved, self._name).set(summary.fraction_saved)  # 0 with nothing counted

    def _count_best(self, trial: TrialRecord) -> None:
        n = self._name
        if trial.state is TrialState.COMPLETED and trial.values is not None:
            self._completed += 1
            self._unstable += bool(trial.metrics.get("unstable"))
            if self._is_task:
                self._at(self.reproducibility, n).set(1 - self._unstable / self._completed)
        best = self._ranking.offer(trial)
        if best is not None and (self._best is None or best.number != self._best.number):
            self._best = best
            for objective, value in zip(self._objectives, best.values or (), strict=False):
                if math.isfinite(value):
                    self._at(self.best, n, objective.metric, objective.direction.value).set(value)
            if best.finished_at is not None:
                self._at(self.best_updated, n).set(best.finished_at)
                self._at(self.time_to_best, n).set(max(0.0, best.finished_at - self._created_at))
        self._finished_count += 1
        if best is None:
            self._since_best = self._finished_count
        elif best.finished_at is not None:  # those that finished after it, in whatever order they were told
            self._since_best = len(self._finish_times) - bisect_right(self._finish_times, best.finished_at)
        else:
            self._since_best = 0 if best is trial else self._since_best + 1
        self._at(self.since_best, n).set(self._since_best)


def _reason(trial: TrialRecord) -> str:
    """The failure kind, a bounded label value (the message itself would explode cardinality)."""
    return trial.failure_kind.value if trial.failure_kind is not None else _reason_named(trial.error)


def _reason_named(error: object) -> str:
    """The failure kind an error message starts with (``timeout: ...``), or ``unknown``."""
    head = str(error or "").split(":", 1)[0]
    return head if head in _REASONS else "unknown"


_REASONS = frozenset(k.value for k in FailureKind)


# a quota wait's start and end: the run is alive and held back by policy (executor/leases.py records them)
_QUOTA_WAIT_EVENTS = frozenset({"quota_wait", "quota_wait_ended"})


def textfile_in_use(path: str, now: float, within: float) -> str | None:
    """The experiment whose live coordinator keeps the textfile at ``path`` current, as another run is about to write
    it: the file says that experiment is running, and was made within ``within`` seconds of ``now``. None where no
    such file is there (none, one that cannot be read or parsed, a run that ended, one without the exposition time).
    """
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        families = list(text_string_to_metric_families(text))
    except (OSError, ValueError):  # (UnicodeDecodeError is a ValueError)
        return None
    running: dict[str, float] = {}
    made: dict[str, float] = {}
    for family in families:
        for sample in family.samples:
            if sample.name in ("tunesmith_experiment_running", "tunesmith_exposition_timestamp_seconds"):
                into = running if sample.name == "tunesmith_experiment_running" else made
                into[sample.labels.get("experiment", "")] = sample.value
    return next((name for name, value in running.items()
                 if value == 1 and name in made and now - made[name] <= within), None)


def metrics_from_store(store: TrialStore, name: str, now: float) -> bytes:
    """The exposition for experiment ``name`` computed from the store alone (no coordinator needed), at time
    ``now``: a run recorded running that no live coordinator runs (``show``'s ``abandoned``) is not running, and
    the workers are those of the coordinators at work on it.

    Raises:
        ExperimentNotFound: no such experiment.
    """
    experiment = store.experiment(name)
    metrics = TuningMetrics(now=lambda: now)  # (its exposition made at ``now``)
    events = store.events(experiment.id)
    # after the events, as a coordinator reads them (see catch_up); the curves only for early stopping's figures
    trials = store.trials(experiment.id, curves=reads_curves(experiment))
    runs = [e.at for e in events if e.kind == AuditKind.RUN_RUNNING]
    working = at_work(store, experiment.id, now, events=events, trials=trials) \
        if experiment.status.value == "running" else []  # (none: run_abandoned's rule)
    metrics.replay(experiment, trials, events, running=bool(working), started_at=runs[-1] if runs else None, now=now,
                   coordinators=len(working))
    return metrics.exposition()


__all__ = ["FINISHED_EVENTS", "METRIC_NAMES", "TuningMetrics", "metrics_from_store", "textfile_in_use"]
