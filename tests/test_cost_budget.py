"""Cost model and money budget: measured resources priced per trial, a cap on the projected spend, `show`'s money."""

from __future__ import annotations

import statistics

import pytest

import tunesmith
from tunesmith.budget import BudgetTracker, spend_summary
from tunesmith.cost import Prices, ResourceUsage, cost_metrics
from tunesmith.records import Direction, TrialRecord, TrialState
from tunesmith.spec.model import Budget

COSTLY = '''
import time

def burn(config, trial):
    """Burns config['cpu'] CPU seconds holding config['mb'] MiB; fails after burning when asked to."""
    block = bytearray(int(config.get("mb", 0) * 2**20))
    for i in range(0, len(block), 4096):
        block[i] = 1   # touch every page: resident, not just reserved
    start = time.process_time()
    while time.process_time() - start < config["cpu"]:
        pass
    if config.get("fail"):
        raise RuntimeError("failed after spending")
    return {"loss": config["cpu"], "dollars": 1.0 + config["cpu"]}

def forever(config, trial):
    while True:
        pass
'''

DOLLAR_PER_CPU_SECOND = 3600.0


def finished(number: int, cost: float | None, state: TrialState = TrialState.COMPLETED) -> TrialRecord:
    metrics = {} if cost is None else {"cost": cost}
    return TrialRecord(number=number, state=state, params={}, seed=0, metrics=metrics,
                       values=(1.0,) if state is TrialState.COMPLETED else None, started_at=100.0 + number,
                       finished_at=101.0 + number)


def test_prices_apply_to_cpu_gpu_and_memory_hours():
    prices = Prices(cpu_hour=0.04, gpu_hour=2.5, memory_gb_hour=0.005, gpus=2)
    usage = ResourceUsage(cpu_s=1800, peak_memory_mb=4096, duration_s=7200, gpus=2)
    expected = 0.04 * 0.5 + 2.5 * 2 * 2 + 0.005 * 4 * 2
    assert prices.price(usage) == pytest.approx(expected)
    metrics = cost_metrics(prices, usage, {})
    assert metrics == {"cpu_s": 1800, "peak_memory_mb": 4096, "gpus": 2.0, "cost": pytest.approx(expected)}
    # a reported cost wins over the prices; without it (a trial that failed first) the prices apply
    by_metric = Prices(cpu_hour=0.04, metric="dollars")
    assert cost_metrics(by_metric, usage, {"dollars": 3.0})["cost"] == 3.0
    assert cost_metrics(by_metric, usage, {})["cost"] == pytest.approx(0.02)


def test_gpus_default_to_those_the_trial_environment_assigns():
    from tunesmith.spec.cost_config import CostConfig

    assert CostConfig(gpu_hour=1).prices({"CUDA_VISIBLE_DEVICES": "0,3"}).gpus == 2
    assert CostConfig(gpu_hour=1).prices({}).gpus == 0
    assert CostConfig(gpu_hour=1, gpus=4).prices({"CUDA_VISIBLE_DEVICES": "0"}).gpus == 4


def test_gpus_the_executor_assigns_are_charged(project, monkeypatch):
    from tunesmith.spec.loader import spec_from_dict

    def executor_gpus(**executor):
        return spec_from_dict(project.spec(executor=executor)).executor.gpus_per_trial()

    assert executor_gpus(kind="process", gpus=[0, 1], gpu_per_trial=0.5) == 0.5
    assert executor_gpus(kind="process", gpus="all", gpu_per_trial=2) == 2
    assert executor_gpus(kind="process", workers=2) == 0, "gpu_per_trial alone assigns nothing"
    assert executor_gpus(kind="ray", resources_per_trial={"gpu": 0.25}) == 0.25
    # end to end: two workers sharing GPU 0 are each charged half of it for their wall time
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # the coordinator's allocation, whatever this machine has
    monkeypatch.setenv("SLOW_SECONDS", "0.3")
    spec = project.spec(name="gpu-priced", budget={"trials": 2}, cost={"gpu_hour": 3600.0},
                        trial={"function": "objectives:slow"},
                        executor={"kind": "process", "workers": 2, "gpus": [0], "gpu_per_trial": 0.5})
    for t in tunesmith.run(spec, storage=project.storage).trials:
        assert t.state is TrialState.COMPLETED
        assert t.metrics["gpus"] == 0.5
        # a dollar per GPU-second: half a GPU for the 0.3 s the trial ran, within its recorded start and end
        assert 0.5 * 0.3 <= t.metrics["cost"] <= 0.5 * (t.finished_at - t.started_at) + 0.01, t.metrics


def test_a_trial_is_charged_for_the_gpus_its_trial_env_names_only_where_it_sees_them(project, monkeypatch):
    """trial.env's CUDA_VISIBLE_DEVICES reaches a command's environment only (a function trial's devices are its
    worker's), yet a function trial was charged for the GPUs it named (2 GPU-hours an hour, of GPUs never given)."""
    import json
    import sys

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)  # no allocation inherited from the machine
    seen = """
        import json, os
        def visible():
            return len([d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()])
        def objective(config, trial):
            return {"loss": config["x"], "visible": float(visible())}
        if __name__ == "__main__":
            print(json.dumps({"loss": 0.5, "visible": float(visible())}))
    """
    project.write("seen.py", seen)
    env = {"CUDA_VISIBLE_DEVICES": "0,1"}
    for name, trial in (("function", {"function": "seen:objective", "env": env}),
                        ("command", {"command": f"{json.dumps(sys.executable)} seen.py", "env": env})):
        spec = project.spec(name=name, budget={"trials": 1}, cost={"gpu_hour": 1.0}, trial=trial,
                            executor={"kind": "process", "workers": 1})
        (t,) = tunesmith.run(spec, storage=project.storage).trials
        assert t.state is TrialState.COMPLETED, t.error
        assert t.metrics.get("gpus", 0.0) == t.metrics["visible"] == (2 if name == "command" else 0), (name, t.metrics)


def test_show_says_what_a_trial_is_priced_at(project, monkeypatch):
    """`show` gave the total spent and nothing of why: not the prices, nor how many GPUs each trial is charged for
    (a gpu_hour with no GPU assigned charges nothing, and said nothing)."""
    shared = project.spec(name="shared-gpu", budget={"trials": 2}, cost={"gpu_hour": 3600.0, "cpu_hour": 0.04},
                          executor={"kind": "process", "workers": 2, "gpus": [0], "gpu_per_trial": 0.5})
    unassigned = project.spec(name="no-gpu", budget={"trials": 1}, cost={"gpu_hour": 2.5, "metric": "dollars"},
                              executor={"kind": "inline"})
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # the coordinator's allocation, whatever this machine has
    for spec in (shared, unassigned):  # set-up in this process: show is the subject
        result = tunesmith.run(project.write_spec(spec), storage=project.storage)
        assert result.experiment.status.value == "completed", result.stop_reason
    assert project.show("shared-gpu")["cost"]["prices"] == {
        "cpu_hour": 0.04, "gpu_hour": 3600.0, "memory_gb_hour": 0.0, "gpus": 0.5, "metric": None}
    shown = project.cli("show", "shared-gpu", check=True).stdout
    assert "priced at: cpu_hour 0.04, gpu_hour 3600 x 0.5 GPU per trial" in shown, shown
    shown = project.cli("show", "no-gpu", check=True).stdout
    assert "priced at: the trial's own metric 'dollars' (else gpu_hour 2.5 x 0 GPU per trial)" in shown, shown


@pytest.mark.slow
def test_process_trials_are_charged_for_what_they_used_failed_and_killed_ones_too(project):
    project.write("costly.py", COSTLY)
    space = {"cpu": {"type": "categorical", "choices": [0.4]}, "mb": {"type": "categorical", "choices": [120]},
             "fail": {"type": "categorical", "choices": [False]}}
    spec = project.spec(name="priced", space=space, trial={"function": "costly:burn"}, budget={"trials": 1},
                        cost={"cpu_hour": DOLLAR_PER_CPU_SECOND}, executor={"kind": "process", "workers": 1})
    ok = tunesmith.run(spec, storage=project.storage).trials[0]
    assert ok.state is TrialState.COMPLETED
    assert 0.35 <= ok.metrics["cpu_s"] <= 1.5                  # the burn, plus the worker's own small overhead
    assert ok.metrics["peak_memory_mb"] >= 120                 # the block was resident
    assert ok.metrics["cost"] == pytest.approx(ok.metrics["cpu_s"], abs=1e-3)  # $1 per CPU-second

    failing = {**space, "fail": {"type": "categorical", "choices": [True]}}
    bad = tunesmith.run({**spec, "name": "priced-fail", "space": failing}, storage=project.storage).trials[0]
    assert bad.state is TrialState.FAILED and bad.metrics["cost"] >= 0.35  # it failed after spending

    killed = tunesmith.run({**spec, "name": "priced-timeout", "trial": {"function": "costly:forever"},
                            "executor": {"kind": "process", "trial_timeout": "1s", "retries": 0}},
                           storage=project.storage).trials[0]
    assert killed.state is TrialState.FAILED and "trial_timeout" in (killed.error or "")
    # charged up to its last sample (how much CPU it got in its second depends on the machine's load)
    assert killed.metrics["cpu_s"] >= 0.1 and killed.metrics["cost"] == pytest.approx(killed.metrics["cpu_s"], abs=1e-3)
    rows = {r["number"]: r for r in project.trials("priced")}
    assert rows[0]["metrics"]["cost"] == pytest.approx(ok.metrics["cost"])  # and in `trials --json`


def test_inline_trials_are_measured_too(project):
    project.write("costly.py", COSTLY)
    spec = project.spec(name="inline-priced", space={"cpu": {"type": "categorical", "choices": [0.2]}},
                        trial={"function": "costly:burn"}, budget={"trials": 1},
                        cost={"cpu_hour": DOLLAR_PER_CPU_SECOND}, executor={"kind": "inline"})
    t = tunesmith.run(spec, storage=project.storage).trials[0]
    assert 0.18 <= t.metrics["cpu_s"] <= 1.0 and t.metrics["cost"] == pytest.approx(t.metrics["cpu_s"], abs=1e-3)
    assert t.metrics["peak_memory_mb"] > 0


@pytest.mark.parametrize("executor", ["inline", "process"])
def test_the_measured_cost_can_be_an_objective_the_trial_does_not_return(project, executor):
    """The README: cost figures are ordinary metrics, usable as objectives. Every trial of `objective: [loss, cost]`
    failed 'the result has no cost (the objective metric)', its cost measured and recorded beside the failure."""
    project.write("costly.py", COSTLY)
    space = {"cpu": {"type": "categorical", "choices": [0.05, 0.3]}}
    spec = project.spec(name=f"cost-objective-{executor}", space=space, trial={"function": "costly:burn"},
                        objective=[{"metric": "loss", "direction": "minimize"},
                                   {"metric": "cost", "direction": "minimize"}],
                        strategy={"name": "grid"}, budget={"trials": 2},
                        cost={"cpu_hour": DOLLAR_PER_CPU_SECOND}, executor={"kind": executor})
    trials = tunesmith.run(spec, storage=project.storage).trials
    assert [t.state for t in trials] == [TrialState.COMPLETED] * 2, [t.error for t in trials]
    for t in trials:
        loss, cost = t.values
        assert loss == t.params["cpu"] and cost == t.metrics["cost"]  # the measured cost, as its metric says
        assert cost == pytest.approx(t.metrics["cpu_s"], abs=1e-3) and cost >= 0.9 * t.params["cpu"]


def test_a_trial_returning_a_tuple_for_several_objectives_is_told_to_return_a_dict():
    """`return acc, latency` (Optuna's way) was told to 'return a number or a dict of metrics': no number can hold two
    objectives."""
    from tunesmith.evaluation.results import normalize_result

    failure = normalize_result((0.9, 12.0), ("acc", "lat"))
    assert not isinstance(failure, tuple)
    assert failure.message == ("returned tuple (0.9, 12.0); with 2 objectives return a dict with keys acc, lat "
                               "(e.g. {'acc': ..., 'lat': ...})")


def test_the_tracker_projects_running_trials_at_the_median_cost():
    tracker = BudgetTracker(Budget(trials=None, cost=10.0), Direction.MINIMIZE, started=0.0)
    assert tracker.may_start(0, 0.0)              # nothing known: the first trial may start ...
    assert not tracker.may_start(1, 0.0)          # ... alone, until its cost is known
    for i, c in enumerate([1.0, 3.0, 2.0]):
        tracker.observe(finished(i, c))
    assert tracker.spent == 6.0 and tracker.expected_cost() == 2.0
    assert tracker.may_start(3, 0.0)              # none running: 6 + 2 = 8 <= 10
    assert tracker.projected_spend() == 6.0
    assert tracker.may_start(4, 0.0)              # one running: 6 + 2 + 2 = 10 <= 10
    assert tracker.projected_spend() == 8.0
    assert tracker.stop_reason(0.0) is None
    assert not tracker.may_start(5, 0.0)          # two running: 6 + 4 + 2 = 12 > 10
    assert tracker.projected_spend() == 10.0 and tracker.running() == 2
    reason = tracker.stop_reason(0.0)
    assert reason is not None and "2 running" in reason and "would exceed" in reason
    tracker.observe(finished(3, 0.5))             # the running ones came in cheap: room again
    tracker.observe(finished(4, 0.5))
    assert tracker.spent == 7.0 and tracker.expected_cost() == 1.0 and tracker.may_start(5, 0.0)


def test_a_failed_or_pruned_trial_counts_what_it_cost():
    tracker = BudgetTracker(Budget(trials=None, cost=5.0), Direction.MINIMIZE, started=0.0)
    tracker.observe(finished(0, 2.0, TrialState.FAILED))
    tracker.observe(finished(1, 2.5, TrialState.PRUNED))
    assert tracker.spent == 4.5
    reason = tracker.stop_reason(0.0)
    assert reason is not None and reason.startswith("cost budget of 5 reached")


def test_spend_summary_burn_rate_and_projection():
    trials = [finished(i, 0.5) for i in range(4)]  # $2 over trials started at 100..103, the last ended at 104
    hours = (104.0 - 100.0) / 3600
    running = spend_summary(trials, Budget(trials=10), hours, finished=False)
    assert running.spent == 2.0 and running.burn_per_hour == pytest.approx(2.0 / hours)
    assert running.projected_total == pytest.approx(2.0 + 0.5 * 6)    # 6 more trials at the mean cost
    capped = spend_summary(trials, Budget(trials=10, cost=3.0), hours, finished=False)
    assert capped.projected_total == 3.0                               # a money cap bounds the projection
    done = spend_summary(trials, Budget(trials=10), hours, finished=True)
    assert done.projected_total == 2.0


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_a_money_budget_stops_within_one_trial_of_the_cap(project, workers):
    project.write("costly.py", COSTLY)
    space = {"cpu": {"type": "float", "low": 0.0, "high": 0.02}}
    spec = project.spec(name=f"capped-{workers}", space=space, trial={"function": "costly:burn"},
                        budget={"trials": 200, "cost": 10}, cost={"metric": "dollars"},
                        executor={"kind": "process" if workers > 1 else "inline", "workers": workers})
    result = tunesmith.run(spec, storage=project.storage)
    costs = [t.metrics["cost"] for t in result.trials]
    spent, most = sum(costs), max(costs)
    assert 10 - most < spent <= 10 + most * 0.05   # stopped before the cap, with less than one trial left
    assert len(costs) < 200 and result.status.value == "completed"
    assert result.stop_reason.startswith("cost budget of 10 reached")
    store_reason = project.show(f"capped-{workers}")
    assert store_reason["cost"]["spent"] == pytest.approx(spent)
    assert store_reason["cost"]["projected_total"] == pytest.approx(spent)  # finished: what it spent
    from tunesmith.storage.sql import SQLStore

    store = SQLStore(project.storage)
    try:
        exp = store.experiment(f"capped-{workers}")
        recorded = [e.payload.get("reason") for e in store.events(exp.id) if e.kind == "run_completed"]
    finally:
        store.close()
    assert recorded == [result.stop_reason]
    text = project.cli("show", f"capped-{workers}", check=True).stdout
    assert "cost: spent" in text and "burn rate" in text and "projected total" in text
    assert statistics.median(costs) > 1.0


def test_a_money_budget_without_prices_is_refused(project):
    spec = project.spec(name="no-prices", budget={"trials": 5, "cost": 3})
    path = project.write_spec(spec)
    proc = project.cli("validate", str(path))
    assert proc.returncode == 2 and "budget.cost" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_the_run_s_last_line_names_the_limit_that_ended_it(project):
    project.write("costly.py", COSTLY)
    spec = project.spec(name="last-line", space={"cpu": {"type": "categorical", "choices": [0.0]}},
                        trial={"function": "costly:burn"}, budget={"trials": 50, "cost": 3.5},
                        cost={"metric": "dollars"}, executor={"kind": "inline"})
    proc = project.cli("run", str(project.write_spec(spec)), check=True)
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("Stopped: cost budget of 3.5 reached: spent 3;"), last  # 3 trials of $1
    assert len(project.trials("last-line")) == 3


def test_a_resumed_run_counts_what_earlier_runs_spent(project):
    project.write("costly.py", COSTLY)
    spec = project.spec(name="resumed", space={"cpu": {"type": "categorical", "choices": [0.0]}},
                        trial={"function": "costly:burn"}, budget={"trials": 50, "cost": 3.5},
                        cost={"metric": "dollars"}, executor={"kind": "inline"})
    first = tunesmith.run(spec, storage=project.storage)
    again = tunesmith.resume("resumed", storage=project.storage)
    assert len(first.trials) == len(again.trials) == 3  # $3 spent before: no fourth trial fits under $3.5
    assert again.stop_reason.startswith("cost budget of 3.5 reached: spent 3;")
