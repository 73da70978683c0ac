"""Repeated or earlier steps in real runs: a step must increase; the report breaking the rule is ignored (not
recorded, not given to the scheduler or the strategy), said once per trial, and Optuna's own warning never reaches
the user. A function trial through worker processes and a command trial, as a user runs them (`run --quiet`)."""

from __future__ import annotations

from pathlib import Path

import pytest

STEPS = [1, 2, 2, 3, 1, 5, 4, 6]

FUNCTION = f"""
def objective(config, trial):
    for step in {STEPS}:
        trial.report(step, config["x"] + step)
        if trial.should_prune():
            break
    return config["x"]
"""

COMMAND = f"""
import json, sys
x = float(sys.argv[1])
for step in {STEPS}:
    print(json.dumps({{"step": step, "loss": x + step}}), flush=True)
print(json.dumps({{"loss": x}}))
"""

NOTE = ("a report at step 2 was ignored: a trial's steps must increase, and step 2 was reported before it (the first "
        "value at a step counts: the scheduler and the strategy used it); later repeated or earlier steps of this "
        "trial are ignored without a word")


@pytest.mark.parametrize("trial", [{"function": "steps:objective"}, {"command": "python {spec_dir}/steps.py {x}"}],
                         ids=["function", "command"])
def test_a_repeated_or_earlier_step_is_ignored_and_said_once_per_trial(project, trial):
    """stderr had ~20 lines of Optuna's `UserWarning: The reported value is ignored because this step=2 is already
    reported`, under --quiet; trials --json kept all 8 reports while the strategy used the first at each step."""
    project.write("steps.py", FUNCTION if "function" in trial else COMMAND)
    spec = project.write_spec(project.spec(name="steps", trial=trial, budget={"trials": 2},
                                           scheduler={"name": "median"},  # under its min_trials (5): none is stopped
                                           executor={"kind": "process", "workers": 2}))
    run = project.cli("run", str(spec), "--quiet", check=True)
    assert "UserWarning" not in run.stderr and "optuna" not in run.stderr, run.stderr
    assert sorted(run.stderr.splitlines()) == [f"warning: trial {n}: {NOTE}" for n in (0, 1)], run.stderr
    for t in project.trials("steps"):
        assert t["state"] == "completed", t
        x = t["params"]["x"]
        assert t["intermediate"] == [[s, x + s] for s in (1, 2, 3, 5, 6)], t["intermediate"]
        assert Path(t["log_path"]).read_text().count("tunesmith: a report at step") == 1, t["log_path"]


RESTARTS = """
import os, signal

def objective(config, trial):
    steps = [0, 1, 2, 3] if trial.attempt == 1 else [0, 1, 2]
    for step in steps:
        trial.report(step, config["x"] + step + (10 if trial.attempt == 1 else 0))
    if trial.attempt == 1:
        os.kill(os.getpid(), signal.SIGKILL)  # the worker dies mid-training: retried as `crashed`
    return config["x"]
"""


def test_a_retry_that_starts_its_steps_over_is_not_an_ignored_report_nor_a_warning_from_optuna(project):
    """Attempt 1 reports steps 0-3 and dies; attempt 2 starts over at step 0 and reports 0-2. Each attempt's steps
    increase, so nothing is ignored or said, and its curve is attempt 2's. Optuna's trial still has attempt 1's
    steps 0-3: the strategy must not report 0-2 to it again, which Optuna ignores with a raw UserWarning each."""
    project.write("restarts.py", RESTARTS)
    spec = project.write_spec(project.spec(name="restarts", trial={"function": "restarts:objective"},
                                           budget={"trials": 2}, scheduler={"name": "median"},
                                           executor={"kind": "process", "workers": 2, "retries": 1,
                                                     "retry_backoff": 0.1}))
    run = project.cli("run", str(spec), "--quiet", check=True)
    assert "UserWarning" not in run.stderr and "optuna" not in run.stderr, run.stderr
    assert "was ignored" not in run.stderr, run.stderr
    for t in project.trials("restarts"):
        assert (t["state"], t["attempts"]) == ("completed", 2), t
        x = t["params"]["x"]
        assert t["intermediate"] == [[s, x + s] for s in (0, 1, 2)], t["intermediate"]
        assert "tunesmith: a report at step" not in Path(t["log_path"]).read_text(), t["log_path"]
