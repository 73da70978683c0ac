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
        self.run_finished = 0   # this run only: a resumed run is judged on its own failures, not the ones
        self.run_failed = 0     # that made the user stop and fix the code
        self.last_error: str | None = None

    def observe(self, trial: TrialRecord, replayed: bool = False) -> None:
        """Count a trial that reached a final state; ``replayed`` for one finished by an earlier run."""
        if not trial.state.counts_against_budget():
            return
        self.finished += 1
        if not replayed:
            self.run_finished += 1
            if trial.state is TrialState.FAILED:
                self.run_failed += 1
                self.last_error = trial.error
        value = trial.values[0] if trial.state is TrialState.COMPLETED and trial.values else None
        if value is not None and (self.best is None or self.direction.better(value, self.best)):
            self.best = value
            self.since_improvement = 0
        else:
            self.since_improvement += 1

    def may_start(self, allocated: int, now: float) -> bool:
        """Whether a new trial number may be allocated (``allocated`` numbers are taken already)."""
        return self.stop_reason(now) is None and (self.budget.trials is None or allocated < self.budget.trials)

    def failure_stop(self) -> str | None:
        """Why the run should stop as failed (too many trials failing), or None."""
        b = self.budget
        if b.max_failure_rate is None or self.run_finished < b.failure_rate_min_trials:
            return None
        rate = self.run_failed / self.run_finished
        if rate <= b.max_failure_rate:
            return None
        return (f"{self.run_failed} of {self.run_finished} finished trials failed ({rate:.0%} > max_failure_rate "
                f"{b.max_failure_rate:.0%}); the last error: {self.last_error}")

    def stop_reason(self, now: float) -> str | None:
        """Why no further trial should start, or None."""
        b = self.budget
        failing = self.failure_stop()
        if failing is not None:
            return failing
        if b.trials is not None and self.finished >= b.trials:
            return f"trial budget of {b.trials} reached"
        if b.wall_time is not None and self.elapsed_before + now - self.started >= b.wall_time:
            return f"wall-time budget of {b.wall_time:g}s reached"
        if b.target is not None and self.best is not None and not self.direction.better(b.target, self.best):
            return f"target {b.target:g} reached (best {self.best:g})"
        if b.patience is not None and self.since_improvement >= b.patience:
            return f"no improvement in {b.patience} trials"
        return None
