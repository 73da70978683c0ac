"""Giving a recorded experiment more trials (`tunesmith resume NAME --trials N`, ``tunesmith.resume(trials=N)``):
Optuna's second ``study.optimize(n_trials=...)`` on a loaded study. `run` refuses a spec under a recorded name, and
`resume` runs the recorded spec, whose budget a finished experiment has reached; so the recorded ``budget.trials``
is raised, with a ``budget_raised`` event in the same transaction (the audit trail says who raised it, from what to
what), and the resume that follows continues with the trials already run (the strategy replays them)."""

from __future__ import annotations

import os
from typing import Any

from tunesmith.audit import AuditKind, actor
from tunesmith.clock import Clock
from tunesmith.errors import LeaseHeld, UserInputError
from tunesmith.spec.model import MOST_TRIALS
from tunesmith.storage.base import TrialStore
from tunesmith.storage.sql import resume_command


def raise_budget_to_resume(store: TrialStore, url: str, name: str, trials: int | None, clock: Clock,
                           join: bool = False) -> None:
    """Before a resume (`resume NAME --trials N`, ``tunesmith.resume(trials=N)``): record ``trials`` as experiment
    ``name``'s trial budget (nothing to do for None, or for the budget it has: the same command twice resumes
    twice). Unless ``join``, an experiment another coordinator runs is refused first, with nothing written: the
    resume that follows would be refused, and the running coordinator keeps the budget it started with.
    ``url``: the store's, as the refusal's hint names it.

    Raises:
        LeaseHeld: another live coordinator holds the experiment (not ``join``); UserInputError: see
            :func:`raise_trial_budget`.
    """
    if trials is None:
        return
    experiment = store.experiment(name)
    if not join and (holder := store.lease_holder(experiment.id, clock.now())) is not None:
        again = resume_command(name, url, os.environ, trials=trials)
        raise LeaseHeld(f"experiment {name!r} is being run by another coordinator ({holder}), so its trial budget was "
                        f"not raised; wait for it to finish or stop it, then `{again}`")
    raise_trial_budget(store, name, trials, clock)


def raise_trial_budget(store: TrialStore, name: str, trials: int, clock: Clock) -> None:
    """Record ``trials`` as experiment ``name``'s trial budget, in place of a smaller one (the same: nothing to do).

    Raises:
        UserInputError: at ``--trials``: less than the recorded budget, or the recorded spec has no trial
            limit, or past the most a store counts; ExperimentNotFound: no such experiment.
    """
    experiment = store.experiment(name)
    if not 0 < trials <= MOST_TRIALS:
        raise UserInputError(f"--trials: a trial budget is a whole number from 1 to {MOST_TRIALS}; got {trials}")
    if (experiment.spec.get("budget") or {}).get("trials") == trials:
        return  # (read outside the change: two such commands at once may both find it lower; the second is refused)

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
