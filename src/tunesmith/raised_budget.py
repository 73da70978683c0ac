"""Giving a recorded experiment more trials or more time (`tunesmith resume NAME --trials N --wall-time D`,
``tunesmith.resume(trials=N, wall_time=D)``): Optuna's second ``study.optimize(n_trials=..., timeout=...)`` on a
loaded study. `run` refuses a spec under a recorded name, and `resume` runs the recorded spec, whose budget a
finished experiment has reached; so the recorded ``budget.trials`` (or ``budget.wall_time``) is raised, with a
``budget_raised`` event in the same transaction (the audit trail says who raised it, which budget, from what to
what), and the resume that follows continues with the trials already run (the strategy replays them)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Any

from tunesmith.audit import AuditKind, actor, time_spent
from tunesmith.budget import RunStop
from tunesmith.clock import Clock
from tunesmith.errors import LeaseHeld, UserInputError
from tunesmith.spec.diff import SpecDifference, filled_like, spec_differences
from tunesmith.spec.model import MOST_TRIALS, ExperimentSpec
from tunesmith.spec.units import parse_duration
from tunesmith.storage.base import Event, ExperimentRecord, TrialStore
from tunesmith.storage.sql import resume_command


def raise_budget_to_resume(store: TrialStore, url: str, name: str, trials: int | None, clock: Clock,
                           join: bool = False, field: str = "--trials", wall_time: float | str | None = None,
                           wall_field: str = "--wall-time") -> None:
    """Before a resume (`resume NAME --trials N --wall-time D`, ``tunesmith.resume(trials=N, wall_time=D)``):
    record ``trials`` as experiment ``name``'s trial budget and ``wall_time`` (seconds, or a duration as the spec
    writes one: ``2h``) as its wall-time budget, in
    one change (nothing to do for None, or for the budget it has: the same command twice resumes twice). Unless
    ``join``, an experiment another coordinator runs is refused first, with nothing written: the resume that follows
    would be refused, and the running coordinator keeps the budget it started with. ``url``: the store's, as the
    refusal's hint names it; ``field``, ``wall_field``: what the caller gave ``trials`` and ``wall_time`` as
    (``--trials``, ``trials=``; ``--wall-time``, ``wall_time=``), as the refusals name them.

    Raises:
        LeaseHeld: another live coordinator holds the experiment (not ``join``); UserInputError: the experiment was
            stopped by what the raise does not lift (its wall time, its trial budget for ``wall_time`` alone, a
            strategy with nothing left), or see
            :func:`raise_recorded_budget`.
    """
    if trials is None and wall_time is None:
        return
    if isinstance(wall_time, str):
        try:
            wall_time = parse_duration(wall_time)
        except ValueError as e:
            raise UserInputError(f"{wall_field}: {e}") from None
    experiment = store.experiment(name)
    if not join and (holder := store.lease_holder(experiment.id, clock.now())) is not None:
        again = resume_command(name, url, os.environ, trials=trials, wall_time=wall_time)
        raise LeaseHeld(f"experiment {name!r} is being run by another coordinator ({holder}), so its budget was "
                        f"not raised; wait for it to finish or stop it, then `{again}`")
    if trials is None:
        check_trial_budget_left(store, experiment, field, wall_field)
    check_more_trials_can_run(store, experiment, field if trials is not None else wall_field, wall_time, wall_field)
    raise_recorded_budget(store, experiment, trials, wall_time, clock, field, wall_field)


def check_trial_budget_left(store: TrialStore, experiment: ExperimentRecord, field: str = "--trials",
                            wall_field: str = "--wall-time") -> None:
    """Refuse more wall time alone (``wall_field``) for ``experiment`` whose recorded trial budget its finished
    trials have reached: the resume would run no trial (it recorded the raise and exited 0). One its wall time
    stopped has trials left to run, and is let through.

    Raises:
        UserInputError: at ``wall_field``, naming the trial budget and ``field`` N as the fix.
    """
    budget = (experiment.spec.get("budget") or {}).get("trials")
    if budget is None:
        return
    finished = sum(n for state, n in store.trial_counts_of(experiment.id).items() if state.counts_against_budget())
    if finished >= budget:
        given = f"{field}N" if field.endswith("=") else f"{field} N"  # trials=N (Python), --trials N
        raise UserInputError(f"{wall_field}: experiment {experiment.name!r} was stopped by its trial budget of "
                             f"{budget} (budget.trials; {finished} trials finished): {wall_field} does not lift it, "
                             f"so the resume would run no trial. Its trials are kept; to tune on, raise the trial "
                             f"budget with {given} (N more than {budget}), beside {wall_field} where its time is to "
                             "be raised too")


def check_more_trials_can_run(store: TrialStore, experiment: ExperimentRecord, field: str = "--trials",
                              wall_time: float | None = None, wall_field: str = "--wall-time") -> None:
    """Refuse to raise the budget of ``experiment`` (as read for this command) that the raise would not let run a
    trial: its wall-time budget
    (``wall_time`` where that raises it) is spent (the resume stopped at once, having recorded the raise, and exited
    0), or its last run's strategy had proposed every configuration (a grid walked to its end).

    Raises:
        UserInputError: at ``field`` (or ``wall_field``, for a ``wall_time`` still spent), naming what stopped it
            and what to do instead.
    """
    name, events = experiment.name, store.events(experiment.id)
    recorded = (experiment.spec.get("budget") or {}).get("wall_time")
    if recorded is not None and wall_time is not None and wall_time > recorded:
        if (spent := time_spent(events)) >= wall_time:
            raise UserInputError(f"{wall_field}: experiment {name!r} has spent {spent:.1f}s of its runs' time "
                                 f"already, so a wall-time budget of {wall_time:g}s would run no trial: give more "
                                 f"than {spent:.1f}s")
    elif recorded is not None and (wall_time is None or wall_time == recorded) \
            and (spent := time_spent(events)) >= recorded:  # (a wall_time below it: refused by the raise)
        raise UserInputError(f"{field}: experiment {name!r} was stopped by its wall-time budget of {recorded:g}s "
                             f"(budget.wall_time; its runs spent {spent:.0f}s): {field} does not lift it, so the "
                             f"resume would run no trial. Its trials are kept; to tune on with more time, raise the "
                             f"wall-time budget with {wall_field} D (D more than the {spent:.0f}s spent, as "
                             f"budget.wall_time is written: 30s, 10m, 1h30m)")
    ended = [e for e in events if e.kind == AuditKind.RUN_ENDED]
    if ended and _every_configuration_proposed(ended[-1]):
        raise UserInputError(f"{field}: experiment {name!r} was stopped because its strategy has proposed every "
                             f"configuration of its space (a grid walked to its end): {field} gives it nothing more "
                             f"to run. To try other configurations, widen the space in its spec (`tunesmith spec "
                             f"{name} > more.yaml`) and run it under a new name (`tunesmith run more.yaml --name NEW`)")


def raise_recorded_budget(store: TrialStore, experiment: ExperimentRecord, trials: int | None,
                          wall_time: float | None, clock: Clock, field: str = "--trials",
                          wall_field: str = "--wall-time") -> None:
    """Record ``trials`` as ``experiment``'s trial budget and ``wall_time`` (seconds) as its wall-time budget,
    each in place of a smaller one (None, or the same: that one left as it is), in one change with one
    ``budget_raised`` event: its detail's ``budget`` names the budgets raised, ``old`` and ``new`` their values.

    Raises:
        UserInputError: at ``field`` (``--trials``, ``trials=``) or ``wall_field`` (``--wall-time``,
            ``wall_time=``): less than the recorded budget, or the recorded spec has no such limit, or past the
            most a store counts.
    """
    name = experiment.name
    if trials is not None and not 0 < trials <= MOST_TRIALS:
        raise UserInputError(f"{field}: a trial budget is a whole number from 1 to {MOST_TRIALS}; got {trials}")
    if wall_time is not None and not 0 < wall_time < math.inf:
        raise UserInputError(f"{wall_field}: a wall-time budget is a positive duration; got {wall_time!r}")
    asked = {key: value for key, value in (("trials", trials), ("wall_time", wall_time)) if value is not None}
    recorded_budget = experiment.spec.get("budget") or {}
    if all(recorded_budget.get(key) == value for key, value in asked.items()):
        return  # (read outside the change: two such commands at once may both find it lower; the second is refused)
    flags = {"trials": field, "wall_time": wall_field}

    def raised(spec: dict[str, Any]) -> tuple[dict[str, Any], str, dict[str, Any]]:
        budget = dict(spec.get("budget") or {})
        old: dict[str, float] = {}
        new: dict[str, float] = {}
        for key, value in asked.items():
            flag, recorded = flags[key], budget.get(key)
            if recorded is None:
                limit = "trial limit (budget.trials: null)" if key == "trials" else \
                    "wall-time limit (budget.wall_time: null)"
                raise UserInputError(f"{flag}: experiment {name!r} has no {limit}, so there is none to raise; "
                                     f"resume it without {flag}")
            if value < recorded:
                what = "a trial budget" if key == "trials" else "a wall-time budget"
                raise UserInputError(f"{flag}: experiment {name!r} has {what} of {_shown(key, recorded)} already; "
                                     f"{flag} only raises it: give at least {_shown(key, recorded)} (equal: just "
                                     "resumes)")
            if value > recorded:
                old[key], new[key], budget[key] = recorded, value, value
        return {**spec, "budget": budget}, AuditKind.BUDGET_RAISED, {"budget": list(new), "old": old, "new": new,
                                                                     "actor": actor(), "reason": None}

    store.change_spec(experiment.id, raised, clock.now())


def edits_of_recorded_spec(store: TrialStore, experiment: ExperimentRecord, recorded: ExperimentSpec,
                           declared: ExperimentSpec) -> tuple[SpecDifference, ...]:
    """Where the spec file ``declared`` differs from ``experiment``'s ``recorded`` spec by an edit (`cycle SPEC`
    refuses it, `run SPEC` names it): `tunesmith diff`'s differences, less what a run fills in where the file leaves
    it out (seed, workdir) and less a budget the file says as it was before `resume --trials/--wall-time` raised it
    (:func:`said_before_raises`). Reads only the experiment's ``budget_raised`` events, not its trials' many."""
    raises = store.events_of_kinds({AuditKind.BUDGET_RAISED}).get(experiment.id, [])
    before = budgets_before_raises(raises)
    return tuple(d for d in spec_differences(recorded, filled_like(declared, recorded))
                 if not said_before_raises(d.path, d.new, before))


def budgets_before_raises(events: Iterable[Event]) -> dict[str, float]:
    """Each budget ``budget_raised`` events raised (``trials``, ``wall_time``), as it was before the first of them
    raised it: what the spec file the experiment was started from says. (An event of an older tunesmith holds the
    trial budget's plain numbers: ``{"old": 4, "new": 9}``.)"""
    before: dict[str, float] = {}
    for event in events:
        if event.kind != AuditKind.BUDGET_RAISED:
            continue
        old = event.payload.get("old")
        if isinstance(old, dict):
            for key in event.payload.get("budget") or old:
                if isinstance(old.get(key), int | float):
                    before.setdefault(key, old[key])
        elif isinstance(old, int):
            before.setdefault("trials", old)
    return before


def said_before_raises(path: str, written: Any, before: dict[str, float]) -> bool:
    """Whether a spec file's ``written`` value at ``path`` (``budget.trials``) is the one a resume's raise replaced
    first (:func:`budgets_before_raises`): no edit, as the file the cycles run from stays theirs after a raise, which
    is not made by editing it. Any other value there is an edit."""
    key = path.removeprefix("budget.")
    return path.startswith("budget.") and key in before and isinstance(written, int | float) \
        and not isinstance(written, bool) and written == before[key]


# What a run whose strategy had nothing left to propose gave as its reason, before its run_ended event kept the stop's
# kind: such an event is known by it (kept as it was recorded, whatever the runner says now)
_REASON_BEFORE_STOP_KINDS = "the strategy has proposed every configuration"


def _every_configuration_proposed(ended: Event) -> bool:
    """Whether a ``run_ended`` event is of a run whose strategy had proposed every configuration."""
    if "stop" in ended.payload:
        return bool(ended.payload["stop"] == RunStop.EVERY_CONFIGURATION_PROPOSED)
    return bool(ended.payload.get("reason") == _REASON_BEFORE_STOP_KINDS)


def _shown(key: str, value: float) -> str:
    """A budget's value as a refusal says it: a wall time in seconds, a trial count as it is."""
    return f"{value:g}s" if key == "wall_time" else f"{value:g}"
