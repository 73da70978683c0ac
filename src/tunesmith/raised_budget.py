"""Giving a recorded experiment more trials (`tunesmith resume NAME --trials N`, ``tunesmith.resume(trials=N)``):
Optuna's second ``study.optimize(n_trials=...)`` on a loaded study. `run` refuses a spec under a recorded name, and
`resume` runs the recorded spec, whose budget a finished experiment has reached; so the recorded ``budget.trials``
is raised, with a ``budget_raised`` event in the same transaction (the audit trail says who raised it, from what to
what), and the resume that follows continues with the trials already run (the strategy replays them)."""

from __future__ import annotations

from typing import Any

from tunesmith.audit import AuditKind, actor
from tunesmith.clock import Clock
from tunesmith.errors import UserInputError
from tunesmith.spec.model import MOST_TRIALS
from tunesmith.storage.sql import SQLStore


def raise_trial_budget(store: SQLStore, name: str, trials: int, clock: Clock) -> None:
    """Record ``trials`` as experiment ``name``'s trial budget, in place of a smaller one.

    Raises:
        UserInputError: at ``--trials``: not more than the recorded budget, or the recorded spec has no trial
            limit, or past the most a store counts; ExperimentNotFound: no such experiment.
    """
    experiment = store.experiment(name)
    if not 0 < trials <= MOST_TRIALS:
        raise UserInputError(f"--trials: a trial budget is a whole number from 1 to {MOST_TRIALS}; got {trials}")

    def raised(spec: dict[str, Any]) -> tuple[dict[str, Any], str, dict[str, Any]]:
        budget = dict(spec.get("budget") or {})
        recorded = budget.get("trials")
        if recorded is None:
            raise UserInputError(f"--trials: experiment {name!r} has no trial limit (budget.trials: null), so there "
                                 "is none to raise; resume it without --trials")
        if trials <= recorded:
            raise UserInputError(f"--trials: experiment {name!r} has a trial budget of {recorded} already; --trials "
                                 f"only raises it: give more than {recorded}")
        budget["trials"] = trials
        return {**spec, "budget": budget}, AuditKind.BUDGET_RAISED, {"old": recorded, "new": trials,
                                                                     "actor": actor(), "reason": None}

    store.change_spec(experiment.id, raised, clock.now())
