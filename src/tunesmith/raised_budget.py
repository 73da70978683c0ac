"""Giving a recorded experiment more trials (`tunesmith resume NAME --trials N`, ``tunesmith.resume(trials=N)``):
Optuna's second ``study.optimize(n_trials=...)`` on a loaded study. `run` refuses a spec under a recorded name, and
`resume` runs the recorded spec, whose budget a finished experiment has reached; so the recorded ``budget.trials``
is raised, with a ``budget_raised`` event in the same transaction (the audit trail says who raised it, from what to
what), and the resume that follows continues with the trials already run (the strategy replays them)."""

from __future__ import annotations

import os
from typing import Any

from tunesmith.audit import AuditKind, actor, time_spent
from tunesmith.budget import EVERY_CONFIGURATION_PROPOSED
from tunesmith.clock import Clock
from tunesmith.errors import LeaseHeld, UserInputError
from tunesmith.spec.model import MOST_TRIALS
from tunesmith.storage.base import TrialStore
from tunesmith.storage.sql import resume_command


def raise_budget_to_resume(store: TrialStore, url: str, name: str, trials: int | None, clock: Clock,
                           join: bool = False, field: str = "--trials") -> None:
    """Before a resume (`resume NAME --trials N`, ``tunesmith.resume(trials=N)``): record ``trials`` as experiment
    ``name``'s trial budget (nothing to do for None, or for the budget it has: the same command twice resumes
    twice). Unless ``join``, an experiment another coordinator runs is refused first, with nothing written: the
    resume that follows would be refused, and the running coordinator keeps the budget it started with.
    ``url``: the store's, as the refusal's hint names it; ``field``: what the caller gave ``trials`` as
    (``--trials``, ``trials=``), as the refusals name it.

    Raises:
        LeaseHeld: another live coordinator holds the experiment (not ``join``); UserInputError: the experiment was
            stopped by what more trials do not lift (its wall time, a strategy with nothing left), or see
            :func:`raise_trial_budget`.
    """
    if trials is None:
        return
    experiment = store.experiment(name)
    if not join and (holder := store.lease_holder(experiment.id, clock.now())) is not None:
        again = resume_command(name, url, os.environ, trials=trials)
        raise LeaseHeld(f"experiment {name!r} is being run by another coordinator ({holder}), so its trial budget was "
                        f"not raised; wait for it to finish or stop it, then `{again}`")
    check_more_trials_can_run(store, name, field)
    raise_trial_budget(store, name, trials, clock, field)


def check_more_trials_can_run(store: TrialStore, name: str, field: str = "--trials") -> None:
    """Refuse to raise the trial budget of an experiment that a raise would not let run a trial: its wall-time
    budget is spent (the resume stopped at once, having recorded the raise, and exited 0), or its last run's
    strategy had proposed every configuration (a grid walked to its end).

    Raises:
        UserInputError: at ``field``, naming what stopped it and what to do instead.
    """
    experiment = store.experiment(name)
    events = store.events(experiment.id)
    wall_time = (experiment.spec.get("budget") or {}).get("wall_time")
    if wall_time is not None and (spent := time_spent(events)) >= wall_time:
        raise UserInputError(f"{field}: experiment {name!r} was stopped by its wall-time budget of {wall_time:g}s "
                             f"(budget.wall_time; its runs spent {spent:.0f}s): {field} does not lift it, so the "
                             "resume would run no trial. Its trials are kept; to tune on with more time, print its "
                             f"spec (`tunesmith spec {name} > more.yaml`), raise budget.wall_time there and run it "
                             "under a new name (`tunesmith run more.yaml --name NEW`)")
    ended = [e for e in events if e.kind == AuditKind.RUN_ENDED]
    if ended and ended[-1].payload.get("reason") == EVERY_CONFIGURATION_PROPOSED:
        raise UserInputError(f"{field}: experiment {name!r} was stopped because its strategy has proposed every "
                             f"configuration of its space (a grid walked to its end): {field} gives it nothing more "
                             f"to run. To try other configurations, widen the space in its spec (`tunesmith spec "
                             f"{name} > more.yaml`) and run it under a new name (`tunesmith run more.yaml --name NEW`)")


def raise_trial_budget(store: TrialStore, name: str, trials: int, clock: Clock, field: str = "--trials") -> None:
    """Record ``trials`` as experiment ``name``'s trial budget, in place of a smaller one (the same: nothing to do).

    Raises:
        UserInputError: at ``field`` (``--trials``, ``trials=``): less than the recorded budget, or the recorded
            spec has no trial limit, or past the most a store counts; ExperimentNotFound: no such experiment.
    """
    experiment = store.experiment(name)
    if not 0 < trials <= MOST_TRIALS:
        raise UserInputError(f"{field}: a trial budget is a whole number from 1 to {MOST_TRIALS}; got {trials}")
    if (experiment.spec.get("budget") or {}).get("trials") == trials:
        return  # (read outside the change: two such commands at once may both find it lower; the second is refused)

    def raised(spec: dict[str, Any]) -> tuple[dict[str, Any], str, dict[str, Any]]:
        budget = dict(spec.get("budget") or {})
        recorded = budget.get("trials")
        if recorded is None:
            raise UserInputError(f"{field}: experiment {name!r} has no trial limit (budget.trials: null), so there "
                                 f"is none to raise; resume it without {field}")
        if trials <= recorded:
            raise UserInputError(f"{field}: experiment {name!r} has a trial budget of {recorded} already; {field} "
                                 f"only raises it: give at least {recorded} (equal: just resumes)")
        budget["trials"] = trials
        return {**spec, "budget": budget}, AuditKind.BUDGET_RAISED, {"old": recorded, "new": trials,
                                                                     "actor": actor(), "reason": None}

    store.change_spec(experiment.id, raised, clock.now())
