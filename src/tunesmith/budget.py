"""Budget accounting: when may another trial start, and when is the run over."""

from __future__ import annotations

from tunesmith.records import Direction, TrialRecord, TrialState
from tunesmith.spec.model import Budget


class BudgetTracker:
    """Args:
        budget: the spec's budget.
        direction: the (first) objective's direction, for ``target`` and ``patience``.
        started: monotonic time this run started.
        elapsed_before: seconds spent by earlier runs of this experiment (resume).
    """

    def __init__(self, budget: Budget, direction: Direction, started: float, elapsed_before: float = 0.0) -> None:
        self.budget = budget
        self.direction = direction
        self.started = started
        self.elapsed_before = elapsed_before
        self.best: float | None = None
        self.since_improvement = 0
        self.finished = 0

    def observe(self, trial: TrialRecord) -> None:
        """Count a trial that reached a final state (in number order where known)."""
        if not trial.state.counts_against_budget():
            return
        self.finished += 1
        value = trial.values[0] if trial.state is TrialState.COMPLETED and trial.values else None
        if value is not None and (self.best is None or self.direction.better(value, self.best)):
            self.best = value
            self.since_improvement = 0
        else:
            self.since_improvement += 1

    def may_start(self, allocated: int, now: float) -> bool:
        """Whether a new trial number may be allocated (``allocated`` numbers are taken already)."""
        return self.stop_reason(now) is None and (self.budget.trials is None or allocated < self.budget.trials)

    def stop_reason(self, now: float) -> str | None:
        """Why no further trial should start, or None."""
        b = self.budget
        if b.trials is not None and self.finished >= b.trials:
            return f"trial budget of {b.trials} reached"
        if b.wall_time is not None and self.elapsed_before + now - self.started >= b.wall_time:
            return f"wall-time budget of {b.wall_time:g}s reached"
        if b.target is not None and self.best is not None and not self.direction.better(b.target, self.best):
            return f"target {b.target:g} reached (best {self.best:g})"
        if b.patience is not None and self.since_improvement >= b.patience:
            return f"no improvement in {b.patience} trials"
        return None
