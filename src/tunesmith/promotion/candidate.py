"""Which trial a promotion judges: the one asked for, else the best that selection may pick.

The one call into selection for promotion lives here, so a selection policy can be swapped in one place.
"""

from __future__ import annotations

from collections.abc import Sequence

from tunesmith.errors import UserInputError
from tunesmith.records import TrialRecord, TrialState
from tunesmith.selection import best_eligible
from tunesmith.spec.model import ExperimentSpec


def select_trial(spec: ExperimentSpec, trials: Sequence[TrialRecord], number: int | None) -> TrialRecord:
    """Trial ``number`` (it must have completed), else the best eligible trial.

    Raises:
        UserInputError: no such trial, it did not complete, or no trial completed.
    """
    if number is not None:
        found = next((t for t in trials if t.number == number), None)
        if found is None:
            raise UserInputError(f"--trial: experiment {spec.name!r} has no trial {number} (trials 0-{len(trials) - 1})")
        if found.state is not TrialState.COMPLETED:
            raise UserInputError(f"--trial: trial {number} is {found.state.value}; only a completed trial can be promoted")
        return found
    exclude_unstable = spec.task.exclude_unstable if spec.task is not None else False
    best = best_eligible(trials, spec.objectives, exclude_unstable)
    if best is None:
        raise UserInputError(f"experiment {spec.name!r} has no completed (eligible) trial to promote")
    return best
