"""The median stopping rule (Golovin et al. 2017, "Google Vizier"), in the form of Optuna's ``MedianPruner``.

At a check step ``s``, a trial is stopped when its best value so far is strictly worse than the median of the
values that *completed* trials had at ``s``. Checks start at ``warmup_steps`` and recur every ``interval_steps``;
a trial whose reports skip over a check step is checked at its first report past it. A completed trial's value at
``s`` is its last report at or before ``s``, provided it went on to report at or past ``s`` (so trials that
report on different grids of steps still compare; with reports at every step this is Optuna's exact-step rule).
At least ``min_trials`` completed trials must have a value at ``s``, otherwise the trial goes on.

Steps are step numbers, as the trial reports them, and ``warmup_steps`` is one too: the first check is at step
``warmup_steps`` itself, exactly Optuna 5's ``n_warmup_steps`` ("the earliest a trial can be pruned is at step ==
n_warmup_steps"; Optuna 1.x said "until the trial exceeds the given number of step" and checked ``step <=
n_warmup_steps``, one step later: that wording no longer holds). tunesmith's schedulers read a step as the
training done so far (ASHA's rungs, ``show``'s steps used, a trial's ``steps``): report step ``k`` after ``k``
epochs. A loop that reports from 0 instead (``for epoch in
range(n): trial.report(epoch, ...)``) is first judged at its ``warmup_steps + 1``-th report and its steps read one
less than the epochs it ran; report ``epoch + 1`` to count epochs done. Tested against the installed Optuna's
``MedianPruner``, for reports from 0 and from 1.

Only completed trials form the median: pruned trials are the poor ones and would drag it down, failed ones
describe a broken run. The state is therefore exactly the completed trials' reports, which ``replay`` restores.

A report that is not a finite number is never a trial's best (its trial is stopped at once, even before
``warmup_steps``, by :func:`tunesmith.scheduler.base.stops`).
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from tunesmith.records import Direction, Report, TrialRecord, TrialState
from tunesmith.records import diverged
from tunesmith.scheduler.base import Decision


@dataclass(frozen=True, slots=True)
class _Curve:
    """A completed trial's reports, ordered by step (a repeated step keeps its last value)."""

    steps: tuple[int, ...]
    values: tuple[float, ...]

    @classmethod
    def of(cls, reports: Sequence[Report]) -> _Curve:
        by_step = {r.step: r.value for r in reports if not diverged(r)}
        steps = tuple(sorted(by_step))
        return cls(steps, tuple(by_step[s] for s in steps))

    def at(self, step: int) -> float | None:
        """The last value at or before ``step``, if the trial reached ``step``; else None."""
        if not self.steps or self.steps[-1] < step:
            return None
        i = bisect.bisect_right(self.steps, step) - 1
        return self.values[i] if i >= 0 else None


@dataclass(slots=True)
class _Progress:
    """A running trial: its best value and highest step so far, and whether it was told to stop."""

    best: float | None = None
    max_step: int = -1
    stopped: bool = False


class MedianScheduler:
    """Stops a trial whose best intermediate value is worse than the completed trials' median at that step.

    Args:
        direction: whether lower or higher intermediate values are better.
        warmup_steps: the step of the first check: no trial is stopped at a step below it (Optuna's
            ``n_warmup_steps``).
        min_trials: completed trials that must have a value at a step before it is judged.
        interval_steps: steps between checks, counted from ``warmup_steps`` (checks at ``warmup_steps + k *
            interval_steps``).
    """

    def __init__(self, direction: Direction, warmup_steps: int = 0, min_trials: int = 5,
                 interval_steps: int = 1) -> None:
        self.direction = direction
        self.warmup_steps = warmup_steps
        self.min_trials = min_trials
        self.interval_steps = interval_steps

    @cached_property
    def _completed(self) -> dict[int, _Curve]:
        return {}

    @cached_property
    def _running(self) -> dict[int, _Progress]:
        return {}

    # -- the protocol --------------------------------------------------------------------------------------
    def replay(self, history: Sequence[TrialRecord]) -> None:
        for trial in history:
            self.on_finish(trial)

    def on_report(self, number: int, report: Report) -> Decision:
        progress = self._running.setdefault(number, _Progress())
        previous_max = self._record(progress, report)
        if progress.stopped:
            return Decision.STOP
        if progress.best is None or not self._is_check(report.step, previous_max):
            return Decision.CONTINUE
        peers = [v for curve in self._completed.values() if (v := curve.at(report.step)) is not None]
        if len(peers) < self.min_trials:
            return Decision.CONTINUE
        if self.direction.better(statistics.median(peers), progress.best):
            progress.stopped = True
            return Decision.STOP
        return Decision.CONTINUE

    def note(self, number: int, report: Report) -> None:
        """A restated ``report`` (ruled on when first reported) counts towards the trial's best and steps, unjudged:
        after a resume, its first own report is judged on its best so far, as in an uninterrupted run."""
        self._record(self._running.setdefault(number, _Progress()), report)

    def on_finish(self, trial: TrialRecord) -> None:
        self._running.pop(trial.number, None)
        if trial.state is TrialState.COMPLETED:
            self._completed[trial.number] = _Curve.of(trial.intermediate)
        else:
            self._completed.pop(trial.number, None)

    # -- the rule ------------------------------------------------------------------------------------------
    def _record(self, progress: _Progress, report: Report) -> int:
        """Take ``report`` into the trial's best and highest step; returns the highest step before it."""
        previous_max = progress.max_step
        progress.max_step = max(previous_max, report.step)
        if not diverged(report) and (progress.best is None or self.direction.better(report.value, progress.best)):
            progress.best = report.value
        return previous_max

    def _is_check(self, step: int, previous_max: int) -> bool:
        """True for the first report at or past a check step (``warmup + k * interval``) not yet checked."""
        if step < self.warmup_steps:
            return False
        check = self.warmup_steps + (step - self.warmup_steps) // self.interval_steps * self.interval_steps
        # An earlier report at or past `check` already had this check (or a retried attempt is re-covering
        # ground its first attempt passed).
        return previous_max < check
