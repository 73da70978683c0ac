"""How many steps a scheduler saved: the steps trials ran against running each of them to the end.

What "the end" is comes from the evidence, not only from the spec: the longest completed trial's last step, and
``max_resource`` only while no trial has completed. A ``max_resource`` of 5 for trials that report 20 steps read
``145 of 50 steps (-190% saved)``, one of 200 read ``93% saved`` for the same run; both now read 145 of 200. A
trial without a single report is left out (its steps are unknown, and a command whose lines the run could not
read ran unchecked): it was counted as a full run, ``200 of 200 steps`` for a run that reported nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tunesmith.records import TrialRecord, TrialState

# How far the completed trials' length may stray from the declared max_resource before a run and `show` say so: an
# off-by-one loop (steps 0..n-1 are n steps, see steps_run) is not "well before or after" it.
LENGTH_TOLERANCE = 0.1


@dataclass(frozen=True, slots=True)
class ResourceSummary:
    """Steps used by the completed and pruned trials that reported, against each of them run to the end.

    Attributes:
        trials: completed and pruned trials with reports, counted.
        steps_used: the steps they ran, summed (:func:`steps_run`).
        steps_full: what running each of them to the end would have cost: ``full_length`` steps each, or its own
            steps where it ran longer (so nothing is ever saved below zero).
        full_length: a run to the end: the longest completed trial's steps; while none has completed,
            ``max_resource`` or the longest trial's steps, whichever is more (0 with neither).
        max_resource: the scheduler's declared ``max_resource``; None for one without (median).
        observed_length: the longest completed trial's steps; None while no completed trial reported.
        unreported: completed and pruned trials without a report, left out (their steps are unknown).
        observed_trial: the number of the completed trial ``observed_length`` is from.
    """

    trials: int
    steps_used: int
    steps_full: int
    full_length: int
    max_resource: int | None
    observed_length: int | None
    unreported: int = 0
    observed_trial: int | None = None

    @property
    def fraction_used(self) -> float:
        return self.steps_used / self.steps_full if self.steps_full else 1.0

    @property
    def fraction_saved(self) -> float:
        return 1.0 - self.fraction_used

    @property
    def length_mismatch(self) -> bool:
        """Whether completed trials end well before or after the declared ``max_resource``."""
        return length_mismatch(self.max_resource, self.observed_length)

    def length_warning(self, scheduler: str) -> str | None:
        """What to say when completed trials end well before or after ``max_resource``; None when they do not."""
        if not self.length_mismatch:
            return None
        assert self.max_resource is not None and self.observed_length is not None and self.observed_trial is not None
        return length_mismatch_warning(scheduler, self.max_resource, self.observed_length, self.observed_trial)

    def to_json(self) -> dict[str, float | int | bool | str | None]:
        return {"trials": self.trials, "steps_used": self.steps_used, "steps_full": self.steps_full,
                "full_length": self.full_length,
                "length_from": "completed trials" if self.observed_length is not None else "no trial completed yet",
                "max_resource": self.max_resource, "observed_length": self.observed_length,
                "length_mismatch": self.length_mismatch, "unreported": self.unreported,
                "fraction_used": round(self.fraction_used, 4), "fraction_saved": round(self.fraction_saved, 4)}


@dataclass(slots=True)
class ResourceTally:
    """The counts behind a :class:`ResourceSummary`, fed one finished trial at a time: the live metrics add each
    trial as it finishes, ``show`` all of them at once, and both read the same figures.

    Attributes:
        max_resource: the scheduler's declared ``max_resource``; None for one without.
    """

    max_resource: int | None = None
    steps: list[int] = field(default_factory=list)  # of each counted trial
    longest_completed: int | None = None
    longest_completed_number: int | None = None
    unreported: int = 0

    def add(self, trial: TrialRecord) -> None:
        """Count ``trial`` if it completed or was pruned (failed, running and interrupted ones say nothing about
        what the scheduler saved)."""
        if trial.state not in (TrialState.COMPLETED, TrialState.PRUNED):
            return
        if not trial.intermediate:
            self.unreported += 1
            return
        steps = steps_run(trial)
        self.steps.append(steps)
        if trial.state is TrialState.COMPLETED and (self.longest_completed is None or steps > self.longest_completed):
            self.longest_completed, self.longest_completed_number = steps, trial.number

    def summary(self) -> ResourceSummary:
        length = (self.longest_completed if self.longest_completed is not None
                  else max([self.max_resource or 0, *self.steps]))
        return ResourceSummary(len(self.steps), sum(self.steps), sum(max(length, s) for s in self.steps), length,
                               self.max_resource, self.longest_completed, self.unreported,
                               self.longest_completed_number)


def resource_summary(trials: Iterable[TrialRecord], max_resource: int | None = None) -> ResourceSummary:
    """Total steps executed over finished trials against running each to the end.

    Args:
        trials: an experiment's trials, in any state.
        max_resource: the scheduler's declared full length (ASHA, Hyperband, PBT); None for the median rule.

    Returns:
        The summary; with nothing counted, zeros and ``fraction_used == 1.0``.
    """
    tally = ResourceTally(max_resource)
    for trial in trials:
        tally.add(trial)
    return tally.summary()


def length_mismatch(max_resource: int | None, observed: int | None) -> bool:
    """Whether trials that complete after ``observed`` steps end well before or after ``max_resource``."""
    if max_resource is None or observed is None:
        return False
    return abs(observed - max_resource) > max(1.0, LENGTH_TOLERANCE * max_resource)


def length_mismatch_warning(scheduler: str, max_resource: int, observed: int, trial: int) -> str:
    """What the run and ``show`` say when completed trials end well before or after ``max_resource``."""
    how = "short of" if observed < max_resource else "past"
    effect = (f"its checks above step {observed} are never reached" if observed < max_resource
              else f"a trial runs on unchecked from step {max_resource} to its end")
    return (f"scheduler.max_resource is {max_resource}, but trial {trial} completed after {observed} steps, well "
            f"{how} it: the {scheduler} scheduler lays out its checks for trials of {max_resource} steps, so {effect}; "
            f"set scheduler.max_resource to the steps a trial runs ({observed}). The steps saved are counted against "
            f"the {observed} steps trials really run")


def steps_run(trial: TrialRecord) -> int:
    """The steps a trial with reports ran: its highest step (a step is the resource reached, as for rungs), one more
    when it counts from step 0. A loop over ``range(n)`` reporting its epoch reports 0..n-1 and has run n epochs,
    as one reporting ``epoch + 1`` (1..n) has: both cost n against ``max_resource``."""
    steps = [r.step for r in trial.intermediate]
    return max(steps) + (min(steps) == 0)
