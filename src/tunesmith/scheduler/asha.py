"""Asynchronous successive halving (ASHA, Li et al. 2020, "A System for Massively Parallel Hyperparameter Tuning").

Rungs lie at steps ``min_resource * eta ** (min_early_stopping_rate + k)`` below ``max_resource``. When a trial
first reports at or past a rung's step, that report's value is recorded in the rung and the trial goes on only
if it is among the best ``max(1, n // eta)`` of the ``n`` values the rung holds at that moment (itself
included; ties go on). Nothing ever waits for a rung to fill: the first trials at a rung are judged against the
few peers there, which is what makes ASHA asynchronous. This is the rule of Optuna's ``SuccessiveHalvingPruner``
and Ray Tune's ``ASHAScheduler``; Li et al.'s paused-and-later-promoted trials need checkpointing, which trials
here do not offer, so a trial is judged once per rung, on arrival.

The rungs are a pure function of the trials' reports: a trial's value at a rung is its first report at or past
the rung's step, recorded whatever the decision (a stopped trial may report once more before it notices, and
that report is a true measurement). ``replay`` and ``on_finish`` therefore rebuild a finished trial's entries
from its recorded reports, so a resumed experiment holds exactly the rungs an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

from tunesmith.records import Direction, Report, TrialRecord, TrialState
from tunesmith.records import diverged
from tunesmith.scheduler.base import Decision
from tunesmith.spec.scheduler_config import rung_steps

# Trials whose values stay in the rungs once they end. A failed trial's numbers describe a broken run, not a
# configuration; an interrupted or lost one is re-run from scratch on resume and reports again.
_KEPT = (TrialState.COMPLETED, TrialState.PRUNED)


@dataclass(frozen=True, slots=True)
class Rung:
    """One rung as a record: its step and the value each trial had there, by trial number."""

    step: int
    values: Mapping[int, float] = field(default_factory=dict)


@dataclass(slots=True)
class _Progress:
    """Where one running trial stands: the first rung it has not passed, and whether it was told to stop."""

    next_rung: int = 0
    stopped: bool = False


class ASHAScheduler:
    """Asynchronous successive halving over the first objective's intermediate values.

    Args:
        direction: whether lower or higher intermediate values are better.
        max_resource: the step at which a trial is fully trained; rungs lie strictly below it.
        min_resource: the step of the first rung (before ``min_early_stopping_rate``).
        reduction_factor: eta; at each rung about one trial in eta goes on.
        min_early_stopping_rate: lowest rungs to skip; Hyperband's bracket index.
    """

    def __init__(self, direction: Direction, max_resource: int, min_resource: int = 1, reduction_factor: int = 3,
                 min_early_stopping_rate: int = 0) -> None:
        self.direction = direction
        self.max_resource = max_resource
        self.min_resource = min_resource
        self.reduction_factor = reduction_factor
        self.min_early_stopping_rate = min_early_stopping_rate

    # -- derived state -------------------------------------------------------------------------------------
    @cached_property
    def rung_steps(self) -> tuple[int, ...]:
        return rung_steps(self.min_resource, self.max_resource, self.reduction_factor, self.min_early_stopping_rate)

    @cached_property
    def _rungs(self) -> list[dict[int, float]]:
        return [{} for _ in self.rung_steps]

    @cached_property
    def _running(self) -> dict[int, _Progress]:
        return {}

    # -- the protocol --------------------------------------------------------------------------------------
    def replay(self, history: Sequence[TrialRecord]) -> None:
        """Rebuild the rungs from finished trials (completed and pruned; failed ones are ignored)."""
        for trial in history:
            self.on_finish(trial)

    def on_report(self, number: int, report: Report) -> Decision:
        """Record ``report`` in every rung it reaches first for this trial; stop the trial if it falls short at one.
        A value that is not a finite number is never ranked (the trial is stopped at once anyway:
        :func:`tunesmith.scheduler.base.stops`).

        A stop is final: later reports of the same trial get ``STOP`` again.
        """
        progress = self._running.setdefault(number, _Progress())
        decision = Decision.STOP if progress.stopped else Decision.CONTINUE
        for rung, value in self._reached(progress, report):
            if diverged(report):
                decision = Decision.STOP  # an unrankable value cannot earn a promotion (as Optuna)
                continue
            self._rungs[rung][number] = value
            if decision is Decision.CONTINUE and not self._promotable(rung, value):
                decision = Decision.STOP
        progress.stopped = decision is Decision.STOP
        return decision

    def note(self, number: int, report: Report) -> None:
        """Record a restated ``report`` (ruled on when first reported) in the rungs it reaches first for this trial,
        unranked: after a resume the rungs then hold the trial's earlier values, as an uninterrupted run's do, and
        its first own report fills the rungs past them only. A report this scheduler saw before adds nothing."""
        progress = self._running.setdefault(number, _Progress())
        for rung, value in self._reached(progress, report):
            if not diverged(report):
                self._rungs[rung][number] = value

    def on_finish(self, trial: TrialRecord) -> None:
        """Settle the trial's rung entries from its recorded reports; drop them unless it completed or was pruned."""
        self._running.pop(trial.number, None)
        for rung in self._rungs:
            rung.pop(trial.number, None)
        if trial.state not in _KEPT:
            return
        # Re-derived from the record rather than kept from on_report: a retried trial's record holds its last
        # attempt's reports only, and replay after a resume sees exactly that record.
        progress = _Progress()
        for report in trial.intermediate:
            for index, value in self._reached(progress, report):
                if not diverged(report):
                    self._rungs[index][trial.number] = value

    # -- introspection -------------------------------------------------------------------------------------
    def rungs(self) -> tuple[Rung, ...]:
        """The rungs as records, values ordered by trial number (equal for equal histories)."""
        return tuple(Rung(step, MappingProxyType(dict(sorted(values.items()))))
                     for step, values in zip(self.rung_steps, self._rungs, strict=True))

    def rung_of(self, number: int) -> int | None:
        """The index of the highest rung holding a value of trial ``number``; None before its first rung."""
        reached = [i for i, rung in enumerate(self._rungs) if number in rung]
        return reached[-1] if reached else None

    # -- the rule ------------------------------------------------------------------------------------------
    def _reached(self, progress: _Progress, report: Report) -> Iterator[tuple[int, float]]:
        """The rungs ``report`` is the first at or past (several when a report skips over rungs), advancing."""
        while progress.next_rung < len(self.rung_steps) and report.step >= self.rung_steps[progress.next_rung]:
            yield progress.next_rung, report.value
            progress.next_rung += 1

    def _promotable(self, rung: int, value: float) -> bool:
        """True when ``value`` is among the best ``max(1, n // eta)`` of the ``n`` values at ``rung``."""
        values = sorted(self._rungs[rung].values(), reverse=self.direction is Direction.MAXIMIZE)
        # max(1, ...): the first eta - 1 arrivals cannot wait for peers, so the best so far goes on (as Optuna).
        keep = max(1, len(values) // self.reduction_factor)
        return not self.direction.better(values[keep - 1], value)
