"""Which trial a promotion judges: the one asked for, else the one the spec's ``select:`` policy picks from the
feasible Pareto front (the same choice `tunesmith show` reports as ``selected``).
"""

from __future__ import annotations

from collections.abc import Sequence

from tunesmith.errors import UserInputError
from tunesmith.records import TrialRecord, TrialState
from tunesmith.selection import select_trial as select_by_policy
from tunesmith.selection import unrecorded_constraint
from tunesmith.spec.model import ExperimentSpec


def select_trial(spec: ExperimentSpec, trials: Sequence[TrialRecord], number: int | None) -> TrialRecord:
    """Trial ``number`` (it must have completed), else the trial the spec's selection policy picks.

    Raises:
        UserInputError: no such trial, it did not complete, or no trial completed.
    """
    if number is not None:
        found = next((t for t in trials if t.number == number), None)
        if found is None:
            raise UserInputError(f"--trial: experiment {spec.name!r} has no trial {number} "
                                 f"(trials 0-{len(trials) - 1})")
        if found.state is not TrialState.COMPLETED:
            raise UserInputError(f"--trial: trial {number} is {found.state.value}; "
                                 "only a completed trial can be promoted")
        return found
    exclude_unstable = spec.task.exclude_unstable if spec.task is not None else False
    selection = select_by_policy(trials, spec.objectives, spec.constraints, spec.select, exclude_unstable)
    if selection is None:
        done = [t for t in trials if t.state is TrialState.COMPLETED]
        raise UserInputError(f"experiment {spec.name!r} has no completed trial that is eligible and meets its "
                             "constraints, so there is nothing to promote"
                             + unrecorded_constraint(done, spec.objectives, spec.constraints))
    return selection.trial
