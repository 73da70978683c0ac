"""Structured logs: one JSON object per run event, one per line, for log shippers (``--log-format json``).

Every line has ``timestamp`` (seconds since the epoch), ``time`` (ISO 8601, UTC), ``event`` and ``experiment``;
trial events add ``trial``, ``attempt`` and ``state``; an event with a why adds ``reason`` (a failure's kind and
message, a retry, why the run stopped); a line whose point is a text for people (``warning``, and the command's
``run_exit``) has it in ``message``. The fields of each event are listed in the README, *Structured logs*: a log
shipper's contract, so a field is added, never renamed or dropped (a ``warning`` keeps its text in ``reason`` too,
and a finished trial its ``values`` list beside ``values_by_metric``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TextIO

from tunesmith.clock import Clock, SystemClock
from tunesmith.events import RunListener
from tunesmith.json_output import strict_json
from tunesmith.records import ExperimentRecord, Failure, ObjectiveSpec, TrialRecord


class JsonLogListener(RunListener):
    """Writes each event as it happens and flushes, so a killed run loses no line it had reached. ``experiment``:
    the name its lines carry before the run starts (the metrics server's address, a warning)."""

    def __init__(self, stream: TextIO, clock: Clock | None = None, experiment: str = "") -> None:
        self.stream = stream
        self.clock = clock or SystemClock()
        self._experiment = experiment
        self._objectives: tuple[ObjectiveSpec, ...] = ()  # the run's, in the spec's order: what names the values

    def metrics_serving(self, url: str) -> None:
        """The metrics server listens at ``url`` (said as the run starts, before its own line)."""
        self._write("metrics_serving", url=url)

    def run_started(self, experiment: ExperimentRecord, history: list[TrialRecord], resumed: bool,
                    total_trials: int | None) -> None:
        from tunesmith.summary import objectives_of

        self._experiment = experiment.name
        self._objectives = objectives_of(experiment)
        self._write("run_resumed" if resumed else "run_started", strategy=experiment.strategy,
                    strategy_reason=experiment.strategy_reason, total_trials=total_trials,
                    finished_before=sum(1 for t in history if t.state.is_finished()))

    def warning(self, message: str) -> None:
        self._write("warning", message=message, reason=message)  # (reason: what the first shippers read)

    def trial_started(self, trial: TrialRecord) -> None:
        self._write("trial_started", **_trial(trial), params=dict(trial.params))

    def trial_retrying(self, trial: TrialRecord, failure: Failure, delay_s: float) -> None:
        self._write("trial_retrying", **_trial(trial), reason=str(failure), failure_kind=failure.kind.value,
                    delay_s=delay_s)

    def trial_finished(self, trial: TrialRecord, best: TrialRecord | None) -> None:
        named = trial.value_map(self._objectives) if len(trial.values or ()) == len(self._objectives) else None
        self._write("trial_finished", **_trial(trial), reason=trial.error,
                    failure_kind=trial.failure_kind.value if trial.failure_kind else None,
                    values=list(trial.values) if trial.values is not None else None, values_by_metric=named,
                    duration_s=trial.duration_s, best_trial=best.number if best is not None else None)

    def run_stopping(self, reason: str) -> None:
        self._write("run_stopping", reason=reason)

    def run_finished(self, experiment: ExperimentRecord, trials: list[TrialRecord], stop_reason: str) -> None:
        self._write("run_finished", state=experiment.status.value, reason=stop_reason,
                    finished=sum(1 for t in trials if t.state.is_finished()))

    def _write(self, event: str, **fields: Any) -> None:
        self.stream.write(event_line(event, self._experiment, self.clock.now(), **fields))
        self.stream.flush()


def event_line(event: str, experiment: str | None, now: float, **fields: Any) -> str:
    """One line of the log, its newline included: also what the command writes outside a run's events (a spec's
    warnings before the run starts, the error or exit that ends it), so every line on stderr is one object."""
    line = {"timestamp": round(now, 6), "time": datetime.fromtimestamp(now, UTC).isoformat(), "event": event,
            "experiment": experiment, **fields}
    return strict_json(line, default=str, separators=(",", ":")) + "\n"


def _trial(t: TrialRecord) -> dict[str, Any]:
    return {"trial": t.number, "attempt": t.attempts, "state": t.state.value}


