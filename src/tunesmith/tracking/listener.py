"""Live tracking: a RunListener that hands records to a background thread, which writes them to MLflow.

The tuning loop only puts records on a queue (microseconds); a thread hands them to the MLflow writer, a process of
its own (:mod:`tunesmith.tracking.tracker_process`), so MLflow's CPU work does not hold the loop's GIL either.
MLflow being slow or down therefore neither fails nor slows the loop: the thread stops trying at the first error,
the end of the run waits at most ``flush_timeout`` seconds for it, and what was not written is recorded as a
``tracking_failed`` event in the store, to be written later by ``tunesmith export mlflow NAME`` (which writes only
what is missing). After the timeout the worker drops what is still queued and ends with the request it is in.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tunesmith.audit import AuditKind
from tunesmith.clock import Clock
from tunesmith.events import RunListener
from tunesmith.records import ExperimentRecord, TrialRecord
from tunesmith.selection import best_trial

if TYPE_CHECKING:  # the storage package loads SQLAlchemy
    from tunesmith.storage.base import TrialStore

_STOP = object()


class TrackingListener(RunListener):
    """Mirrors a run into a tracker (:class:`~tunesmith.tracking.mlflow_tracker.MlflowTracker`) off the hot path.

    Args:
        make_tracker: builds the tracker; called in the worker thread, so importing MLflow costs the loop nothing.
        store, clock: where failures are recorded (from the caller's thread only).
        flush_timeout: how long ``run_finished`` waits for the queue to drain.
        environment: recorded on the parent run.

    A failure is told to the user through the fan-out that calls this listener (see ``warn_through``), as every
    listener's is: whichever listener shows warnings shows it, else stderr.
    """

    def __init__(self, make_tracker: Callable[[], Any], store: TrialStore, clock: Clock, flush_timeout: float,
                 environment: Callable[[], dict[str, Any]] | None = None) -> None:
        self.make_tracker = make_tracker
        self.store = store
        self.clock = clock
        self.flush_timeout = flush_timeout
        self.environment = environment
        self.warn: Callable[[str], None] | None = None
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._error: str | None = None
        self._skipped = 0
        self._written = 0
        self._abandoned = False
        self._experiment: ExperimentRecord | None = None

    def warn_through(self, warn: Callable[[str], None]) -> None:
        self.warn = warn

    # -- hooks (the loop's thread) ----------------------------------------------------------------------------
    def run_started(self, experiment: ExperimentRecord, history: list[TrialRecord], resumed: bool,
                    total_trials: int | None) -> None:
        self._experiment = experiment
        # A daemon: it only feeds the writer process, which finishes a write under way on its own at exit.
        self._thread = threading.Thread(target=self._work, name="tunesmith-tracking", daemon=True)
        self._thread.start()
        self._queue.put(("start", experiment, list(history)))

    def trial_finished(self, trial: TrialRecord, best: TrialRecord | None) -> None:
        self._queue.put(("trial", trial))

    def run_finished(self, experiment: ExperimentRecord, trials: list[TrialRecord], stop_reason: str) -> None:
        if self._thread is None:
            return
        self._queue.put(("finish", experiment, list(trials)))
        self._queue.put(_STOP)
        self._thread.join(self.flush_timeout)
        self._abandoned = True
        error = self._error
        if self._thread.is_alive() and error is None:
            error = f"MLflow did not answer within {self.flush_timeout:g}s"
        if error is not None:
            detail = {"error": error, "written": self._written, "retry": f"tunesmith export mlflow {experiment.name}"}
            self.store.record_event(experiment.id, AuditKind.TRACKING_FAILED, self.clock.now(), detail=detail)
            if self.warn is not None:
                self.warn(f"MLflow tracking failed ({error}); the store has every result: "
                          f"`tunesmith export mlflow {experiment.name}` writes what is missing")

    # -- the worker thread --------------------------------------------------------------------------------------
    def _work(self) -> None:
        tracker: Any = None
        parent: str | None = None
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._error is not None or self._abandoned:
                self._skipped += 1
                continue
            try:
                if tracker is None:
                    tracker = self.make_tracker()
                kind = item[0]
                if kind == "start":
                    env = self.environment() if self.environment else None
                    parent = tracker.parent_run(item[1], env)
                    for t in item[2]:
                        self._written += tracker.sync_trial(parent, item[1], t)
                elif kind == "trial" and parent is not None and self._experiment is not None:
                    self._written += tracker.sync_trial(parent, self._experiment, item[1])
                elif kind == "finish" and parent is not None:
                    experiment, trials = item[1], item[2]
                    for t in trials:  # trials not seen live (a join's peers, a retry's last state)
                        self._written += tracker.sync_trial(parent, experiment, t)
                    objectives = _objective_specs(experiment)
                    tracker.finish_parent(parent, experiment, best_trial(trials, objectives))
            except BaseException as e:  # noqa: BLE001 - tracking must never take the run down
                self._error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:500]


def _objective_specs(experiment: ExperimentRecord) -> tuple[Any, ...]:
    from tunesmith.spec.loader import spec_from_dict

    return spec_from_dict(experiment.spec, recorded=True).objectives
