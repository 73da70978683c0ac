"""How many steps a scheduler saved: steps executed against running every trial to ``max_resource``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tunesmith.records import TrialRecord, TrialState


@dataclass(frozen=True, slots=True)
class ResourceSummary:
    """Steps used by completed and pruned trials, against ``trials * max_resource``.

    Attributes:
        trials: completed and pruned trials counted.
        steps_used: the steps they ran, summed (:func:`steps_run`).
        steps_full: ``trials * max_resource``: what running all of them to the end would have cost.
        max_resource: the full length of a trial, given or observed.
    """

    trials: int
    steps_used: int
    steps_full: int
    max_resource: int

    @property
    def fraction_used(self) -> float:
        return self.steps_used / self.steps_full if self.steps_full else 1.0

    @property
    def fraction_saved(self) -> float:
        return 1.0 - self.fraction_used

    def to_json(self) -> dict[str, float | int]:
        return {"trials": self.trials, "steps_used": self.steps_used, "steps_full": self.steps_full,
                "max_resource": self.max_resource, "fraction_used": round(self.fraction_used, 4),
                "fraction_saved": round(self.fraction_saved, 4)}


def resource_summary(trials: Sequence[TrialRecord], max_resource: int | None = None) -> ResourceSummary:
    """Total steps executed over finished trials against running each to ``max_resource``.

    Failed, running and interrupted trials are left out: they say nothing about what the scheduler saved. A
    completed trial without reports is counted as a full run.

    Args:
        trials: an experiment's trials, in any state.
        max_resource: the full length of a trial (the ASHA / Hyperband ``max_resource``); None to use the
            highest step a completed trial reached (for the median rule, which has no declared length).

    Returns:
        The summary; with nothing counted, zeros and ``fraction_used == 1.0``.
    """
    counted = [t for t in trials if t.state in (TrialState.COMPLETED, TrialState.PRUNED)]
    if max_resource is None:
        lengths = [steps_run(t) for t in counted if t.state is TrialState.COMPLETED and t.intermediate]
        max_resource = max(lengths, default=0)
    used = sum(steps_run(t) if t.intermediate else max_resource for t in counted)
    return ResourceSummary(len(counted), used, len(counted) * max_resource, max_resource)


def steps_run(trial: TrialRecord) -> int:
    """The steps a trial with reports ran: its highest step (a step is the resource reached, as for rungs), one more
    when it counts from step 0. A loop over ``range(n)`` reporting its epoch reports 0..n-1 and has run n epochs,
    as one reporting ``epoch + 1`` (1..n) has: both cost n against ``max_resource``."""
    steps = [r.step for r in trial.intermediate]
    return max(steps) + (min(steps) == 0)
