"""What a coordinator that may start no trial says when it stops while its peers have, or had, the last ones."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest


def _experiment(project, name: str, **overrides):  # type: ignore[no-untyped-def]
    from tunesmith.runner import prepare
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage import SQLStore

    spec = spec_from_dict(project.spec(name=name, executor={"kind": "inline"}, base_dir=str(project.root),
                                       workdir=str(project.root / "work"), **overrides))
    store = SQLStore(project.storage)
    plan = prepare(spec)
    exp = store.create_experiment(spec.name, plan.spec.to_json(), plan.decision.name, "", time.time())
    return store, exp, str(project.root / "work" / "trial-{number}" / "trial.log")


@pytest.mark.parametrize("store", ["default", "other"])
def test_a_joiner_whose_lead_was_interrupted_says_its_trials_are_left_not_running(project, store):
    """A lead with two trials was interrupted (Ctrl-C: both recorded interrupted) while a `--join`-er ran the third
    and last trial of the budget. The joiner said "2 still running with other coordinators", recorded it as the
    reason the experiment completed, and `show` repeated it: nobody ran them. It now says they are left, and how to
    run them. In a store `resume NAME` would not open (``other``), that command names it: it found no experiment."""
    from tunesmith.events import RunListener
    from tunesmith.records import TrialState
    from tunesmith.runner import resume_experiment
    from tunesmith.storage import SQLStore

    where = store
    store, exp, logs = _experiment(project, "left", budget={"trials": 3})
    if where == "other":  # the same records, in a store `resume left` would not open
        store.close()
        (project.root / "tunesmith.db").rename(project.root / "other.db")
        store = SQLStore(f"sqlite:///{project.root / 'other.db'}")
    lead = [store.new_trial(exp.id, {"x": x}, 1, time.time(), logs, owner="h:1:lead") for x in (0.1, 0.2)]

    class LeadInterrupted(RunListener):  # the lead is Ctrl-C'd while the joiner runs its trial
        def trial_started(self, trial):  # type: ignore[no-untyped-def]
            for rec in lead:
                assert rec is not None
                store.save_trial(exp.id, replace(rec, state=TrialState.INTERRUPTED), "trial_interrupted", time.time())

    try:
        result = resume_experiment("left", store, LeadInterrupted(), join=True)
        assert [t.state for t in store.trials(exp.id)] == [TrialState.INTERRUPTED] * 2 + [TrialState.COMPLETED]
    finally:
        store.close()
    assert "still running" not in result.stop_reason, result.stop_reason
    named = f" --storage sqlite:///{project.root / 'other.db'}" if where == "other" else ""
    assert result.stop_reason == ("trial budget of 3 reached: every trial is taken, 2 interrupted or lost and run by "
                                  f"nobody: `tunesmith resume left{named}` runs them again"), result.stop_reason


def test_a_joiner_waiting_for_the_first_cost_says_so_not_that_the_trial_budget_is_taken(project):
    """With a trial budget and a money budget, a `--join`-er may start no trial while its lead's first trial runs (its
    cost is not known yet): it said "trial budget of 100 reached: every trial is taken, 100 still running with
    other coordinators". It says the cost budget is why, and the one trial running elsewhere."""
    from tunesmith.records import TrialState
    from tunesmith.runner import resume_experiment

    store, exp, logs = _experiment(project, "priced", budget={"trials": 100, "cost": 10},
                                   cost={"cpu_hour": 1.0})
    store.new_trial(exp.id, {"x": 0.1}, 1, time.time(), logs, owner="h:1:lead")   # the lead's first, running
    try:
        result = resume_experiment("priced", store, join=True)
        assert [t.state for t in store.trials(exp.id)] == [TrialState.RUNNING], "the joiner started none"
    finally:
        store.close()
    assert result.stop_reason == ("cost budget of 10: trials start one at a time until one's cost is known, 1 still "
                                  "running with other coordinators"), result.stop_reason

