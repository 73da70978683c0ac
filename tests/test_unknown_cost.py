"""A measurement that never arrived is unknown, not zero: left out of the metrics, and a cost that needs it is
marked unknown; the money budget projects such a trial at the expected cost and `show` counts it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tunesmith.budget import BudgetTracker, spend_summary
from tunesmith.cost import Prices, ResourceUsage, cost_metrics
from tunesmith.records import Direction, TrialRecord, TrialState
from tunesmith.spec.model import Budget

UNMEASURED = ResourceUsage(cpu_s=None, peak_memory_mb=None, duration_s=3600.0, gpus=2)


def _trial(number: int, metrics: dict[str, float]) -> TrialRecord:
    return TrialRecord(number=number, state=TrialState.FAILED, params={}, seed=0, metrics=metrics,
                       started_at=0.0, finished_at=1.0)


def test_a_cost_that_needs_an_unmeasured_quantity_is_unknown() -> None:
    metrics = cost_metrics(Prices(cpu_hour=1.0), UNMEASURED, {})
    assert metrics == {"gpus": 2.0, "cost_unknown": 1.0}, "no cpu_s, peak_memory_mb or cost of 0"
    assert cost_metrics(Prices(memory_gb_hour=1.0), UNMEASURED, {}) == {"gpus": 2.0, "cost_unknown": 1.0}


def test_a_cost_that_needs_no_unmeasured_quantity_is_still_priced() -> None:
    assert cost_metrics(Prices(gpu_hour=1.5), UNMEASURED, {})["cost"] == pytest.approx(3.0)  # 2 GPUs x 1 h
    assert cost_metrics(Prices(cpu_hour=1.0, metric="dollars"), UNMEASURED, {"dollars": 0.7})["cost"] == 0.7


def test_the_budget_projects_a_trial_of_unknown_cost_at_the_expected_cost() -> None:
    tracker = BudgetTracker(Budget(trials=None, cost=10.0), Direction.MINIMIZE, started=0.0)
    for i, c in enumerate([2.0, 2.0, 2.0]):
        tracker.observe(_trial(i, {"cost": c}))
    tracker.observe(_trial(3, {"cost_unknown": 1.0}))
    assert tracker.spent == 6.0 and tracker.expected_cost() == 2.0
    assert tracker.projected_spend() == 8.0, "the unknown one counts at the median, not as free"
    assert tracker.may_start(4, 0.0)       # 8 + 2 = 10 <= 10: one more
    assert not tracker.may_start(5, 0.0)   # with it running, 10 + 2 > 10
    reason = tracker.cost_stop()
    assert reason is not None and "1 running trial(s) and 1 of unknown cost" in reason, reason


def test_show_counts_the_trials_of_unknown_cost() -> None:
    trials = [_trial(0, {"cost": 1.5}), _trial(1, {"cost_unknown": 1.0}), _trial(2, {})]
    summary = spend_summary(trials, Budget(trials=3), hours=1.0, finished=True).to_json()
    assert (summary["spent"], summary["trials_priced"], summary["trials_cost_unknown"]) == (1.5, 1, 1)
    # the projection counts the unknown one at the median cost, as the run's budget does (it said 1.5: free)
    assert summary["projected_total"] == 3.0
    trials = [_trial(0, {"cost": 2.0}), _trial(1, {"cost": 2.0}), _trial(2, {"cost_unknown": 1.0})]
    running = spend_summary(trials, Budget(trials=5), hours=1.0, finished=False).to_json()
    assert running["projected_total"] == 10.0  # 4 spent + 2 for the unknown one + 2 x 2 for the trials still allowed


def test_a_completed_trial_that_never_reports_its_cost_metric_is_of_unknown_cost_not_free(project) -> None:
    """`cost: {metric: dollars}` with trials that never report `dollars` (a misnamed metric) priced every trial at
    0: `show` said `spent 0` and a money budget never stopped anything. A failed trial still costs nothing."""
    measured = ResourceUsage(cpu_s=1.0, peak_memory_mb=10.0, duration_s=1.0)
    assert cost_metrics(Prices(metric="dollars"), measured, {}, failed=False)["cost_unknown"] == 1.0
    assert cost_metrics(Prices(metric="dollars"), measured, {}, failed=True)["cost"] == 0.0
    assert cost_metrics(Prices(cpu_hour=3600.0, metric="dollars"), measured, {}, failed=False)["cost"] == 1.0
    spec = project.spec(name="dollars", budget={"trials": 2}, cost={"metric": "dollars"}, executor={"kind": "inline"})
    project.cli("run", str(project.write_spec(spec)), "--quiet", check=True)
    assert all("cost" not in t["metrics"] and t["metrics"]["cost_unknown"] == 1.0 for t in project.trials("dollars"))
    shown = " ".join(project.cli("show", "dollars", check=True).stdout.split())
    assert "spent 0 over 0 trials (and 2 of unknown cost: completed without reporting 'dollars')" in shown, shown


DOLLAR = '''
def objective(config, trial):
    return {"loss": (config["x"] - 0.3) ** 2, "dollar": 2.0}
'''


def test_a_money_budget_stops_the_run_at_the_first_trial_that_never_reports_its_cost(project) -> None:
    """The walkthrough: `cost: {metric: dollars}`, trials returning `dollar`, `budget: {trials: 20, cost: 7}` ran all
    20 trials (40 spent against a cap of 7) with exit code 0 and no word; `show` said why afterwards. The run now
    warns at the first trial, with the did-you-mean, and stops as failed: the cap cannot be kept on unpriced trials."""
    project.write("dollar.py", DOLLAR)
    spec = project.spec(name="capped", budget={"trials": 20, "cost": 7}, cost={"metric": "dollars"},
                        trial={"function": "dollar:objective"}, executor={"kind": "process", "workers": 2})
    run = project.cli("run", str(project.write_spec(spec)), "--quiet")
    said = " ".join(run.stderr.split())
    assert run.returncode == 1, (run.stdout, run.stderr)
    assert "trial 0 completed without reporting 'dollars', the cost metric" in said, said
    assert "did you mean 'dollar'?" in said and "budget.cost 7" in said and "cannot be kept" in said, said
    assert len(project.trials("capped")) == 1, "trials start one at a time until a cost is known: one was run"
    assert project.show("capped")["status"] == "failed"


def test_an_unreported_cost_metric_is_said_once_while_the_run_goes_on(project) -> None:
    """Without a money budget nothing is overspent: the run completes, and says once which metric was missing."""
    project.write("dollar.py", DOLLAR)
    spec = project.spec(name="uncapped", budget={"trials": 3}, cost={"metric": "dollars"},
                        trial={"function": "dollar:objective"}, executor={"kind": "inline"})
    run = project.cli("run", str(project.write_spec(spec)), "--quiet")
    assert run.returncode == 0, (run.stdout, run.stderr)
    assert run.stderr.count("without reporting 'dollars'") == 1, run.stderr
    assert "did you mean 'dollar'?" in run.stderr


def test_the_budget_stops_on_this_runs_unpriced_trial_not_on_a_replayed_one() -> None:
    tracker = BudgetTracker(Budget(trials=None, cost=10.0), Direction.MINIMIZE, started=0.0, cost_metric="dollars")
    done = TrialRecord(number=0, state=TrialState.COMPLETED, params={}, seed=0, values=(1.0,),
                       metrics={"dollar": 2.0, "cost_unknown": 1.0}, started_at=0.0, finished_at=1.0)
    tracker.observe(done, replayed=True)
    assert tracker.failure_stop() is None, "history is projected, as before; this run is judged on its own trials"
    tracker.observe(_trial(1, {"cost_unknown": 1.0}))
    assert tracker.failure_stop() is None, "a failed attempt whose measurement never arrived is no misnamed metric"
    tracker.observe(replace(done, number=2))
    reason = tracker.stop_reason(0.0)
    assert reason is not None and "trial 2 completed without reporting 'dollars'" in reason, reason
    assert "did you mean 'dollar'?" in reason and not tracker.may_start(3, 0.0)
