"""Schedulers in real runs: trials report per epoch, the scheduler stops some, stops are recorded as pruned."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import tunesmith
from helpers import cli_in_process
from tunesmith.records import TrialState

CURVES = """
import math, time

def objective(config, trial):
    # A saturating learning curve whose ceiling is set by x: small x learns to a low loss.
    value = None
    for epoch in range(1, 28):
        value = config["x"] + 1.0 / epoch
        trial.report(epoch, value)
        if trial.should_prune():
            return value
    return value
"""

COMMAND = """
import json, sys, time
x = float(sys.argv[1])
for epoch in range(1, 10):
    print(json.dumps({"step": epoch, "loss": x + 1.0 / epoch}), flush=True)
    time.sleep(0.05)
print(json.dumps({"loss": x + 1.0 / 9}))
"""


@pytest.mark.parametrize("kind,workers", [("inline", 1), ("process", 2)])
@pytest.mark.parametrize("scheduler", [
    {"name": "asha", "min_resource": 1, "max_resource": 27, "reduction_factor": 3},
    {"name": "hyperband", "min_resource": 1, "max_resource": 27, "reduction_factor": 3},
    {"name": "median", "warmup_steps": 2, "min_trials": 3},
])
def test_schedulers_prune_in_real_runs(project, kind, workers, scheduler):
    project.write("curves.py", CURVES)
    spec = project.spec(name="sched", trial={"function": "curves:objective"}, budget={"trials": 24},
                        strategy="random", scheduler=scheduler, executor={"kind": kind, "workers": workers})
    result = tunesmith.run(spec, storage=project.storage)
    pruned = [t for t in result.trials if t.state is TrialState.PRUNED]
    completed = [t for t in result.trials if t.state is TrialState.COMPLETED]
    assert pruned and completed
    for t in pruned:
        last = t.intermediate[-1]
        if scheduler["name"] == "median":
            # median rules on every report, the last one included (it knows no final step): with two workers a
            # trial can finish its 27th epoch below the median of what the others reported there (seen once in a
            # full run); ASHA's and Hyperband's top rung is completion, so they never stop a trial at its end
            assert last.step >= scheduler["warmup_steps"], "pruned only once the warm-up is over"
        else:
            assert last.step < 27, "a pruned trial stopped before the end"
        assert t.values == (last.value,), "its value is the last value it reported"
        # its log says who stopped it, where and why (it ended mid-curve without a word)
        assert (f"tunesmith: stopped early after its report at step {last.step} by the {scheduler['name']} scheduler "
                "(") in Path(t.log_path).read_text(), t.log_path
    summary = result.summary()
    assert summary["trials"]["pruned"] == len(pruned)
    resources = summary["scheduler"]["resources"]
    assert 0 < resources["fraction_used"] < 1
    # the best trial is among those that ran to the end, and the scheduler did not throw the best x away
    assert result.best.state is TrialState.COMPLETED
    best_x = min(t.params["x"] for t in result.trials)
    assert result.best.params["x"] - best_x < 0.2


@pytest.mark.parametrize("kind,workers", [("inline", 1), ("process", 2)])
def test_a_ported_objective_raising_optunas_trial_pruned_is_pruned_not_failed(project, kind, workers):
    """Optuna's idiom `if trial.should_prune(): raise optuna.TrialPruned()`, kept in a port, recorded the stopped
    trials as failed (`exception: TrialPruned`): they counted in the failure rate and the strategy saw failures."""
    project.write("curves.py", CURVES.replace("import math, time", "import math, time, optuna")
                  .replace("            return value\n", "            raise optuna.TrialPruned()\n"))
    spec = project.spec(name="optuna-pruned", trial={"function": "curves:objective"}, budget={"trials": 12},
                        strategy="random", scheduler={"name": "median", "warmup_steps": 2, "min_trials": 3},
                        executor={"kind": kind, "workers": workers})
    result = tunesmith.run(spec, storage=project.storage)
    states = [t.state for t in result.trials]
    assert TrialState.FAILED not in states and TrialState.PRUNED in states, [t.error for t in result.trials]
    for t in result.trials:
        if t.state is TrialState.PRUNED:
            assert t.values == (t.intermediate[-1].value,)
            assert "tunesmith: stopped early after its report" in Path(t.log_path).read_text()


def test_asha_saves_most_of_the_epochs(project):
    project.write("curves.py", CURVES)
    spec = project.spec(name="asha", trial={"function": "curves:objective"}, budget={"trials": 27},
                        strategy="random", executor={"kind": "inline"},
                        scheduler={"name": "asha", "min_resource": 1, "max_resource": 27, "reduction_factor": 3})
    result = tunesmith.run(spec, storage=project.storage)
    assert result.summary()["scheduler"]["resources"]["fraction_used"] < 0.35


def test_a_command_trial_is_stopped_by_the_scheduler(project):
    project.write("train.py", COMMAND)
    spec = project.spec(name="cmd-sched", trial={"command": "python {spec_dir}/train.py {x}"}, budget={"trials": 8},
                        strategy="random", executor={"kind": "process", "workers": 2},
                        scheduler={"name": "asha", "min_resource": 1, "max_resource": 9, "reduction_factor": 3})
    tunesmith.run(spec, storage=project.storage)  # set-up in this process (the trials' commands still run apart)
    trials = project.trials("cmd-sched")
    pruned = [t for t in trials if t["state"] == "pruned"]
    assert pruned, trials
    for t in pruned:
        assert t["steps"] < 9 and t["values"]["loss"] == t["intermediate"][-1][1]
        # the log said nothing of the SIGTERM: the command's output just stopped
        assert Path(t["log_path"]).read_text().splitlines()[-1] == (
            f"tunesmith: stopped early after its report at step {t['steps']} by the asha scheduler (its value at a rung "
            "was not in the top 1/3 of the trials that reached it); the command got SIGTERM"), t["log_path"]
    shown = project.cli("show", "cmd-sched", check=True).stdout
    assert "scheduler asha" in shown and "saved" in shown


def test_asha_rungs_survive_resume(project):
    """Interrupt an ASHA run (SIGKILL), resume it: the finished trials' reports rebuild the rungs."""
    import signal

    from helpers import count_states, start_cli, wait_for

    project.write("curves.py", CURVES.replace("trial.report(epoch, value)",
                                              "trial.report(epoch, value); time.sleep(0.01)"))
    spec = project.write_spec(project.spec(name="resumed", trial={"function": "curves:objective"},
                                           budget={"trials": 18}, strategy="random",
                                           executor={"kind": "process", "workers": 2},
                                           scheduler={"name": "asha", "max_resource": 27}))
    proc = start_cli(project, "run", str(spec), "--quiet")
    wait_for(lambda: sum(count_states(project, "resumed").get(s, 0) for s in ("completed", "pruned")) >= 6)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    assert project.cli("resume", "resumed", "--quiet").returncode == 0
    trials = project.trials("resumed")
    assert len(trials) == 18 and {t["state"] for t in trials} <= {"completed", "pruned"}
    shown = project.show("resumed")
    assert shown["trials"]["pruned"] >= 6, "the resumed part still prunes against the rungs"


def test_the_live_display_counts_the_trials_a_scheduler_stopped(project):
    """The progress line said `15/15 failed 0` of a run whose scheduler stopped 8 of 15: a stopped trial counted
    as done, and nothing said how many were stopped until `show`. A run without a scheduler has no such count."""
    project.write("curves.py", CURVES)
    spec = project.spec(name="counted", trial={"function": "curves:objective"}, budget={"trials": 12},
                        strategy="random", executor={"kind": "inline"},
                        scheduler={"name": "asha", "min_resource": 1, "max_resource": 27, "reduction_factor": 3})
    run = project.cli("run", str(project.write_spec(spec)), check=True)
    pruned = project.show("counted")["trials"]["pruned"]
    assert pruned > 0 and f"12/12 failed 0 pruned {pruned} best" in run.stdout, run.stdout
    plain = project.cli("run", str(project.write_spec(project.spec(name="plain", executor={"kind": "inline"}))),
                        check=True)
    assert "failed 0 best" in plain.stdout and "pruned" not in plain.stdout


IGNORES_STOPS = """
def objective(config, trial):
    for epoch in range(1, 28):
        trial.report(epoch, config["x"] + 1.0 / epoch)   # never asks trial.should_prune()
    return config["x"]
"""


def test_show_says_when_pruned_trials_ran_on_because_the_code_ignores_should_prune(project):
    """A function that reports but never checks trial.should_prune() cannot be stopped from outside: the run said
    `pruned 7` and show `0% saved`, and nothing said why."""
    project.write("ignores.py", IGNORES_STOPS)
    spec = project.spec(name="ignored", trial={"function": "ignores:objective"}, budget={"trials": 9},
                        strategy="random", executor={"kind": "inline"},
                        scheduler={"name": "asha", "min_resource": 1, "max_resource": 27, "reduction_factor": 3})
    tunesmith.run(spec, storage=project.storage)  # the runs are set-up here (show is the subject): in this process
    shown = project.show("ignored")
    pruned = sorted(t["number"] for t in project.trials("ignored") if t["state"] == "pruned")
    assert pruned and shown["scheduler"]["ran_past_their_stop"] == pruned
    text = " ".join(project.cli("show", "ignored", check=True).stdout.split())
    assert (f"{len(pruned)} pruned trial(s) ran on past the step they were stopped at (trial "
            f"{', '.join(map(str, pruned[:5]))}") in text
    assert "check trial.should_prune() after each report and return when it is true" in text
    # trials that return when told to stop are not named
    project.write("curves.py", CURVES)
    tunesmith.run({**spec, "name": "heeded", "trial": {"function": "curves:objective"}}, storage=project.storage)
    assert "ran_past_their_stop" not in project.show("heeded")["scheduler"]


def test_a_scheduler_that_got_no_reports_says_why(project):
    """A command whose step lines lack the objective's metric ({"step": 1, "los": ...}) reports nothing: the
    scheduler never acted (pruned 0, 0% saved) and nothing said why."""
    project.write("train.py", COMMAND.replace('"loss": x + 1.0 / epoch', '"los": x + 1.0 / epoch'))
    spec = project.spec(name="unfed", trial={"command": "python {spec_dir}/train.py {x}"}, budget={"trials": 3},
                        strategy="random", executor={"kind": "process", "workers": 1},
                        scheduler={"name": "asha", "min_resource": 1, "max_resource": 9, "reduction_factor": 3})
    warning = ('warning: no trial reported an intermediate value, so the asha scheduler had nothing to stop trials '
               'on: a function trial calls trial.report(step, value); a command prints a JSON line with an integer '
               '"step" and "loss" (or "value"), e.g. {"step": 3, "loss": 0.42}')
    run = project.cli("run", str(project.write_spec(spec)), check=True)
    assert warning in " ".join(run.stdout.split()), run.stdout
    shown = " ".join(project.cli("show", "unfed", check=True).stdout.split())
    assert warning in shown
    # steps no trial reported are not counted as run: this read `27 of 27 steps (100% ...)`
    assert "scheduler asha: no steps counted (no finished trial reported one); pruned 0" in shown, shown
    resources = project.show("unfed")["scheduler"]["resources"]
    assert (resources["steps_used"], resources["steps_full"], resources["unreported"]) == (0, 0, 3)
    exposition = _cli_out("metrics", "unfed")  # read back in this process: run's and show's words are the subject
    assert 'tunesmith_resource_steps_used{experiment="unfed"} 0.0' in exposition
    project.write("train.py", COMMAND)
    # its step lines fixed, no warning: run and show in this process (the subprocesses above said the warning)
    heard = _cli_out("run", str(project.write_spec({**spec, "name": "heard"})))
    assert "no trial reported" not in heard + _cli_out("show", "heard")
    assert "scheduler asha:" in " ".join(_cli_out("show", "heard").split())  # the words looked in are there


TWENTY_STEPS = """
def objective(config, trial):
    value = None
    for epoch in range(1, 21):
        value = config["x"] + 1.0 / epoch
        trial.report(epoch, value)
        if trial.should_prune():
            return value
    return value
"""


@pytest.mark.parametrize("max_resource", [5, 200, 20])
def test_steps_saved_are_counted_against_the_trials_real_length_and_a_wrong_max_resource_is_told(project,
                                                                                                max_resource):
    """Trials of 20 steps under ASHA with `max_resource: 5` showed `145 of 50 steps (290% ...; -190% saved)`, and
    neither the run nor show said the field did not fit the trials. Completed trials that run past max_resource are
    the end of a run; short of it, max_resource is (a trial may stop itself early), and completed trials that agree
    on a length no trial got near are told."""
    project.write("twenty.py", TWENTY_STEPS)
    trials_run = 18  # enough for three to complete under ASHA
    name = f"len{max_resource}"
    spec = project.spec(name=name, trial={"function": "twenty:objective"}, budget={"trials": trials_run}, strategy="random",
                        executor={"kind": "inline"},
                        scheduler={"name": "asha", "min_resource": 1, "max_resource": max_resource,
                                   "reduction_factor": 3})
    run = project.cli("run", str(project.write_spec(spec)), "--quiet", check=True)
    trials = project.trials(name)
    assert max(t["steps"] for t in trials) == 20 and any(t["state"] == "pruned" for t in trials)
    completed = sum(t["state"] == "completed" for t in trials)
    resources = project.show(name)["scheduler"]["resources"]
    used, end = sum(t["steps"] for t in trials), max(max_resource, 20)
    assert (resources["steps_used"], resources["steps_full"]) == (used, trials_run * end)
    assert resources["full_length"] == end
    assert resources["fraction_saved"] == round(1 - used / (trials_run * end), 4) > 0
    shown = " ".join(project.cli("show", name, check=True).stdout.split())
    # digits only: no saving below zero, nor above what was saved
    assert re.search(rf"scheduler asha: {used} of {trials_run * end} steps \(\d+% of running every trial to its end, {end} "
                     rf"steps; {round(100 * (1 - used / (trials_run * end)))}% saved\)", shown), shown
    exposition = _cli_out("metrics", name)  # read back in this process: run's and show's words are the subject
    gauge = re.search(rf'tunesmith_resource_saved_ratio\{{experiment="{name}"\}} (\S+)', exposition)
    assert gauge and float(gauge.group(1)) == pytest.approx(resources["fraction_saved"], abs=1e-4)
    said = " ".join(run.stderr.split())
    if max_resource == 20:
        assert "scheduler.max_resource" not in said + shown
        return
    assert completed >= 3, trials  # every completed trial ends at 20: they agree
    def warning(count: str) -> re.Pattern[str]:
        who = (r"trial \d+ completed after 20 steps, well past it" if max_resource == 5
               else rf"{count} completed trials \(trial \d+ first\) ended after 20 steps and no trial got near it")
        return re.compile(rf"scheduler\.max_resource is {max_resource}, but {who}: .*set scheduler\.max_resource to "
                          rf"the steps a trial runs \(20\)")

    # the run says it once, as soon as it can (2 completed trials, every one so far, agree); show, all of them
    assert len(warning(r"\d+").findall(said)) == 1, said  # once in the run, not once per trial
    assert warning(str(completed)).search(shown), shown


# Each trial runs as many steps as its `epochs` (enqueued: 10, 10, 30), or 10 where it has none: a tuned length,
# short configurations finishing first. Each trial is better than those before it at every step, so none is stopped
# early.
TUNED_LENGTH = """
def objective(config, trial):
    steps = config.get("epochs", 10)
    for step in range(1, steps + 1):
        trial.report(step, 1.0 / (1 + trial.number))
    return 1.0 / (1 + trial.number)
"""


@pytest.mark.parametrize("length", ["epochs", "batch_size"])
def test_a_tuned_length_is_not_told_to_lower_max_resource_but_a_parameter_of_that_high_is_not_one(project, length):
    """`epochs: {type: int, low: 5, high: 30, step: 5}` under `hyperband, max_resource: 30`: the two first completed
    trials ran 10 steps, and the run advised `set scheduler.max_resource to the steps a trial runs (10)`, wrong for
    the 30-step trial that followed (review R4). But an int parameter whose high is max_resource is not the length
    for that alone: `batch_size` with high 30, trials that all ran 10 steps, and nothing was said (review-d 14). The
    trials say it: each ran its own value of the parameter."""
    project.write("tuned_length.py", TUNED_LENGTH)
    values = [10, 10, 30] if length == "epochs" else [16, 8, 30]
    spec = project.spec(name="tuned", space={length: {"type": "int", "low": 5, "high": 30}},
                        enqueue=[{length: v} for v in values],
                        trial={"function": "tuned_length:objective"}, budget={"trials": 3}, strategy="random",
                        executor={"kind": "inline"}, scheduler={"name": "hyperband", "max_resource": 30})
    run = project.cli("run", str(project.write_spec(spec)), check=True)
    steps = [10, 10, 30] if length == "epochs" else [10, 10, 10]
    assert [(t["state"], t["steps"]) for t in project.trials("tuned")] == [("completed", s) for s in steps]
    said = run.stderr + project.cli("show", "tuned", check=True).stdout
    if length == "epochs":
        assert "max_resource" not in said, said
    else:
        assert "set scheduler.max_resource to the steps a trial runs (10)" in " ".join(said.split()), said


def _cli_out(*args: str) -> str:
    """`tunesmith ARGS` in this process (the command's own code, on the project's store from TUNESMITH_STORAGE):
    its stdout, exit 0 required."""
    code, out, err = cli_in_process(*args)
    assert code == 0, f"tunesmith {' '.join(args)} exited {code}\n{out}\n{err}"
    return out
