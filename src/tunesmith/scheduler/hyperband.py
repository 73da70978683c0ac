"""Hyperband (Li et al. 2018) as several ASHA brackets (Li et al. 2020, section 3), as Optuna's ``HyperbandPruner``.

Bracket ``i`` is :class:`~tunesmith.scheduler.asha.ASHAScheduler` with ``min_early_stopping_rate = i``: bracket 0
stops most aggressively, the last one (when ``max_resource / min_resource`` is a power of eta) never stops.
Each bracket keeps its own rungs; trials of one bracket never compete with another's.

Bracket assignment is **weighted by bracket budget**, as in Hyperband's Algorithm 1: bracket ``i`` (``s = S - 1 -
i`` for ``S`` available brackets) gets a share ``ceil(S * eta**s / (s + 1))``, the number of configurations
Hyperband starts in it, so aggressive brackets get more trials. A trial's bracket is a pure function of the
experiment seed and its number (a CRC32 of both, reduced modulo the total share, as Optuna does with the study
name): it never depends on arrival order, so it is the same after ``resume``, and a grid strategy's periodic
numbering cannot line up with a round-robin pattern.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from functools import cached_property

from tunesmith.records import Direction, Report, TrialRecord
from tunesmith.scheduler.asha import ASHAScheduler
from tunesmith.scheduler.base import Decision
from tunesmith.spec.scheduler_config import bracket_count


class HyperbandScheduler:
    """Several ASHA brackets; each trial belongs to one, chosen from its number.

    Args:
        direction: whether lower or higher intermediate values are better.
        max_resource: the step at which a trial is fully trained.
        min_resource: the step of bracket 0's first rung.
        reduction_factor: eta.
        brackets: how many brackets to use, most aggressive first; None for all of them.
        seed: the experiment seed; with a trial's number it decides the trial's bracket.
    """

    def __init__(self, direction: Direction, max_resource: int, min_resource: int = 1, reduction_factor: int = 3,
                 brackets: int | None = None, seed: int = 0) -> None:
        self.direction = direction
        self.max_resource = max_resource
        self.min_resource = min_resource
        self.reduction_factor = reduction_factor
        self.brackets = brackets
        self.seed = seed

    # -- derived state -------------------------------------------------------------------------------------
    @cached_property
    def _available(self) -> int:
        return bracket_count(self.min_resource, self.max_resource, self.reduction_factor)

    @cached_property
    def bracket_schedulers(self) -> tuple[ASHAScheduler, ...]:
        used = self.brackets if self.brackets is not None else self._available
        return tuple(ASHAScheduler(self.direction, self.max_resource, self.min_resource, self.reduction_factor, i)
                     for i in range(used))

    @cached_property
    def shares(self) -> tuple[int, ...]:
        """Each bracket's weight: the configurations Hyperband's Algorithm 1 starts in it."""
        eta, total = self.reduction_factor, self._available
        # s counts down from the most aggressive bracket; a subset of brackets keeps the full set's weights.
        return tuple(math.ceil(total * eta ** (total - 1 - i) / (total - i))
                     for i in range(len(self.bracket_schedulers)))

    # -- the protocol --------------------------------------------------------------------------------------
    def replay(self, history: Sequence[TrialRecord]) -> None:
        for trial in history:
            self._of(trial.number).on_finish(trial)

    def on_report(self, number: int, report: Report) -> Decision:
        return self._of(number).on_report(number, report)

    def note(self, number: int, report: Report) -> None:
        self._of(number).note(number, report)

    def on_finish(self, trial: TrialRecord) -> None:
        self._of(trial.number).on_finish(trial)

    # -- introspection -------------------------------------------------------------------------------------
    def bracket_of(self, number: int) -> int:
        """The bracket of trial ``number``: deterministic in (seed, number), weighted by :attr:`shares`."""
        slot = zlib.crc32(f"{self.seed}:{number}".encode()) % sum(self.shares)
        for bracket, share in enumerate(self.shares):
            if slot < share:
                return bracket
            slot -= share
        raise AssertionError("unreachable: slot < sum(shares)")

    def rung_of(self, number: int) -> int | None:
        """The index of the highest rung of its bracket that trial ``number`` reached; None before the first."""
        return self._of(number).rung_of(number)

    def _of(self, number: int) -> ASHAScheduler:
        return self.bracket_schedulers[self.bracket_of(number)]
