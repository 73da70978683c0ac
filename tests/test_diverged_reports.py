"""A diverged trial (its loss grows until it is NaN or inf) in real runs: a result, not an error, one rule for a
function trial and a command trial. Under a scheduler it is stopped at once, pruned, with its log saying why;
without one it goes on and its final value decides. The NaN is recorded in ``intermediate`` either way."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import tunesmith

# x > 1 multiplies the loss each epoch: at 1e5 it passes 1e12 at epoch 3 and reads NaN (or inf) from there
DIVERGING = """
def objective(config, trial):
    loss = 1.0
    for epoch in range(1, 7):
        loss *= config["x"]
        trial.report(epoch, loss if loss < 1e12 else float(config["broken"]))
        if trial.should_prune():
            return loss
    return 0.5 if loss >= 1e12 else loss
"""

DIVERGING_COMMAND = """
import json, sys
x, broken = float(sys.argv[1]), sys.argv[2]
loss = 1.0
for epoch in range(1, 7):
    loss *= x
    print(json.dumps({"step": epoch, "loss": loss if loss < 1e12 else float(broken)}), flush=True)
print(json.dumps({"loss": 0.5 if loss >= 1e12 else loss}))
"""

SPACE = {"x": {"type": "categorical", "choices": [0.5, 0.9, 1e5]},
         "broken": {"type": "categorical", "choices": ["nan", "inf"]}}
MEDIAN = {"name": "median", "warmup_steps": 5, "min_trials": 50}  # its own rule stops nothing before step 5


def _check_diverged_trials_were_pruned(project, name: str, how: str) -> None:
    trials = project.trials(name)
    diverged = [t for t in trials if t["params"]["x"] == 1e5]
    assert diverged and len(diverged) < len(trials), trials
    assert {t["params"]["broken"] for t in diverged} == {"nan", "inf"}, diverged  # both kinds of divergence
    for t in trials:
        if t["params"]["x"] != 1e5:
            assert t["state"] == "completed" and t["error"] is None, t
            continue
        shown = t["params"]["broken"]  # "nan" or "inf", as trials --json writes every non-finite number
        assert (t["state"], t["error"], t["steps"]) == ("pruned", None, 3), t
        assert t["intermediate"] == [[1, 1e5], [2, 1e10], [3, shown]], t
        assert t["values"] == {"loss": shown}, t
        assert Path(t["log_path"]).read_text().splitlines()[-1] == (
            f"tunesmith: stopped early after its report at step 3 by the median scheduler: its value {shown} is not a "
            f"finite number, the training diverged (a scheduler stops such a trial at once); {how}"), t["log_path"]
    show = project.show(name)
    assert show["trials"]["failed"] == 0 and show["failure_rate"] == 0, show["trials"]


def test_a_function_trial_reporting_nan_or_inf_is_pruned_by_the_scheduler_not_failed(project):
    """It failed with 'exception: trial.report: value must be a finite number; got nan': 5 of 10 trials failed,
    feeding max_failure_rate and the failure alerts, for a result early stopping exists for."""
    project.write("diverging.py", DIVERGING)
    spec = project.spec(name="fn", trial={"function": "diverging:objective"}, space=SPACE, strategy="grid",
                        budget={"trials": 6}, scheduler=MEDIAN, executor={"kind": "process", "workers": 2})
    tunesmith.run(spec, storage=project.storage)
    _check_diverged_trials_were_pruned(project, "fn", "trial.should_prune() turned true")


def test_a_command_trial_printing_nan_or_infinity_is_pruned_by_the_scheduler_as_a_function_trial(project):
    """Its NaN line was ignored with a warning, and the trial completed with whatever it printed last."""
    project.write("diverging_command.py", DIVERGING_COMMAND)
    spec = project.spec(name="cmd", trial={"command": "python {spec_dir}/diverging_command.py {x} {broken}"},
                        space=SPACE, strategy="grid", budget={"trials": 6}, scheduler=MEDIAN,
                        executor={"kind": "process", "workers": 2})
    tunesmith.run(spec, storage=project.storage)
    _check_diverged_trials_were_pruned(project, "cmd", "the command got SIGTERM")


def test_without_a_scheduler_a_nan_report_is_recorded_and_the_trial_goes_on_to_its_final_value(project):
    project.write("diverging.py", DIVERGING)
    spec = project.spec(name="none", trial={"function": "diverging:objective"},
                        space={"x": {"type": "categorical", "choices": [1e5]},
                               "broken": {"type": "categorical", "choices": ["nan"]}},
                        budget={"trials": 1}, executor={"kind": "inline"})
    result = tunesmith.run(spec, storage=project.storage)
    (trial,) = result.trials
    assert trial.state.value == "completed" and trial.values == (0.5,), trial
    assert [r.step for r in trial.intermediate] == [1, 2, 3, 4, 5, 6]
    assert all(math.isnan(r.value) for r in trial.intermediate[2:]), trial.intermediate  # read back from the store
    (shown,) = project.trials("none")
    assert shown["intermediate"][2:] == [[3, "nan"], [4, "nan"], [5, "nan"], [6, "nan"]]


@pytest.mark.parametrize("scheduler", [
    {"name": "asha", "min_resource": 4, "max_resource": 6},
    {"name": "hyperband", "min_resource": 4, "max_resource": 6},
    {"name": "pbt", "perturbation_interval": 5, "population_size": 2},
])
def test_every_scheduler_stops_a_diverged_trial_at_once(project, scheduler):
    """Before their first rung or ranking (step 4 and 5): ASHA stopped a NaN only at a rung, PBT ranked it last."""
    project.write("diverging.py", DIVERGING)
    spec = project.spec(name="s", trial={"function": "diverging:objective"},
                        space={"x": {"type": "categorical", "choices": [1e5]},
                               "broken": {"type": "categorical", "choices": ["nan"]}},
                        budget={"trials": 1}, scheduler=scheduler, executor={"kind": "inline"})
    (trial,) = tunesmith.run(spec, storage=project.storage).trials
    assert trial.state.value == "pruned" and trial.intermediate[-1].step == 3, trial
