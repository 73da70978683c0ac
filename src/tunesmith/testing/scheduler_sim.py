"""A simulated executor for schedulers: tabulated learning curves, a fake clock, no processes and no sleep.

``simulate(scheduler, curves, workers=3)`` runs trial ``i`` on the i-th curve. Each free worker takes the next
trial in number order; a trial reports its curve's points one by one, ``seconds_per_step`` simulated seconds per
step, and ends COMPLETED after its last point, PRUNED ``lag`` reports after its first ``STOP`` (a trial notices
a stop at its next report, or later), or FAILED after the point ``fail_after``. Events are ordered by time, then
trial number, so a run is exactly reproducible; interleaving across trials is what workers > 1 buys.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field

from tunesmith.clock import FakeClock
from tunesmith.records import FailureKind, Report, TrialRecord, TrialState
from tunesmith.scheduler.base import Decision, Scheduler, stops


@dataclass(frozen=True, slots=True)
class Curve:
    """A tabulated learning curve: the reports a trial would make if it ran to the end.

    Attributes:
        reports: in the order the trial makes them.
        seconds_per_step: simulated time per step (a slow configuration takes longer per epoch).
        fail_after: index of the report after which the trial fails, or None.
    """

    reports: tuple[Report, ...]
    seconds_per_step: float = 1.0
    fail_after: int | None = None

    @classmethod
    def of(cls, values: Sequence[float], steps: Sequence[int] | None = None, seconds_per_step: float = 1.0,
           fail_after: int | None = None) -> Curve:
        """A curve from values at ``steps`` (default 1, 2, 3, ...)."""
        steps = list(steps) if steps is not None else list(range(1, len(values) + 1))
        reports = tuple(Report(s, float(v)) for s, v in zip(steps, values, strict=True))
        return cls(reports, seconds_per_step, fail_after)


@dataclass(frozen=True, slots=True)
class Decided:
    """One ``on_report`` call and its answer."""

    time: float
    number: int
    step: int
    decision: Decision


@dataclass(frozen=True, slots=True)
class SimulationResult:
    decisions: tuple[Decided, ...]
    trials: tuple[TrialRecord, ...]  # final records, in the order the trials ended

    def decisions_of(self, number: int) -> tuple[Decided, ...]:
        return tuple(d for d in self.decisions if d.number == number)

    def by_number(self) -> dict[int, TrialRecord]:
        return {t.number: t for t in self.trials}


@dataclass(slots=True)
class _Live:
    number: int
    curve: Curve
    started_at: float
    next_index: int = 0
    stop_in: int | None = None  # reports left before a stopped trial notices
    reports: list[Report] = field(default_factory=list)


def simulate(scheduler: Scheduler, curves: Sequence[Curve], workers: int = 1, *, first_number: int = 0,
             lag: int = 0, tell_after_stop: bool = True, clock: FakeClock | None = None) -> SimulationResult:
    """Run ``curves`` as trials ``first_number``, ``first_number + 1``, ... through ``scheduler``.

    Args:
        scheduler: receives ``on_report`` and ``on_finish`` calls (not ``replay``: call it before, if needed).
        curves: one per trial.
        workers: trials running at once.
        first_number: the number of the first trial (to continue a run after a simulated resume).
        lag: reports a stopped trial still makes before it stops.
        tell_after_stop: pass those reports to the scheduler too (False: as the runner, which stops asking once
            it has requested a prune; they are then seen only in the final record).
        clock: simulated time; a fresh FakeClock by default.

    Returns:
        Every decision, and each trial's final record.
    """
    clock = clock or FakeClock()
    start = clock.monotonic()
    pending = list(enumerate(curves, start=first_number))[::-1]
    events: list[tuple[float, int]] = []
    live: dict[int, _Live] = {}
    decisions: list[Decided] = []
    finished: list[TrialRecord] = []

    def launch(now: float) -> None:
        number, curve = pending.pop()
        live[number] = _Live(number, curve, clock.now())
        heapq.heappush(events, (now + _delay(curve, 0), number))

    for _ in range(min(workers, len(pending))):
        launch(start)
    while events:
        when, number = heapq.heappop(events)
        clock.advance(when - clock.monotonic())
        trial = live[number]
        report = trial.curve.reports[trial.next_index]
        trial.reports.append(report)
        if trial.stop_in is not None and not tell_after_stop:
            decision = Decision.STOP
        else:
            decision = Decision.STOP if stops(scheduler, number, report) else Decision.CONTINUE  # as the runner
            decisions.append(Decided(when - start, number, report.step, decision))
        if decision is Decision.STOP and trial.stop_in is None:
            trial.stop_in = lag
        state = _ending(trial)
        if state is None:
            if trial.stop_in is not None:
                trial.stop_in -= 1
            trial.next_index += 1
            heapq.heappush(events, (when + _delay(trial.curve, trial.next_index), number))
            continue
        record = _record(trial, state, clock.now())
        del live[number]
        scheduler.on_finish(record)
        finished.append(record)
        if pending:
            launch(when)
    return SimulationResult(tuple(decisions), tuple(finished))


def _delay(curve: Curve, index: int) -> float:
    previous = curve.reports[index - 1].step if index > 0 else 0
    return max(curve.reports[index].step - previous, 0) * curve.seconds_per_step


def _ending(trial: _Live) -> TrialState | None:
    if trial.curve.fail_after is not None and trial.next_index >= trial.curve.fail_after:
        return TrialState.FAILED
    if trial.stop_in == 0:
        return TrialState.PRUNED
    if trial.next_index == len(trial.curve.reports) - 1:
        return TrialState.COMPLETED
    return None


def _record(trial: _Live, state: TrialState, now: float) -> TrialRecord:
    last = trial.reports[-1].value
    failed = state is TrialState.FAILED
    return TrialRecord(
        number=trial.number, state=state, params={"curve": trial.number}, seed=trial.number,
        values=None if failed else (last,), intermediate=tuple(trial.reports), attempts=1,
        error="simulated failure" if failed else None, failure_kind=FailureKind.EXCEPTION if failed else None,
        started_at=trial.started_at, finished_at=now, duration_s=now - trial.started_at,
    )
