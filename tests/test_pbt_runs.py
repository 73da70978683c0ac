"""PBT in a real run: bottom trials stop, children continue from a top trial's checkpoint with perturbed params."""

from __future__ import annotations

import json
import re
import shlex
import sys
from dataclasses import replace

import pytest

TRAINER = """
import time

def objective(config, trial):
    state = trial.load_checkpoint() or {"step": 0, "score": 0.0}
    started, score = state["step"], state["score"]
    for step in range(started + 1, 9):
        score += config["lr"]
        trial.save_checkpoint({"step": step, "score": score})   # before report: a child copies this
        trial.report(step, score)
        time.sleep(0.05)
        if trial.should_prune():
            break
    return {"score": score, "started_from": started}
"""

# PBT acts only on trials that overlap: a bottom trial is replaced by a copy of a top one still running beside it.
# On a loaded 2-core machine four worker processes can start seconds apart, each trial then running alone (a full
# run once saw no exploit at all), so this trainer holds a fresh trial at a gate until the first population has
# started (or 30 s have passed) and makes the low-lr trials, the bottom of each ranking, report later.
GATE_PREAMBLE = """
import os
import time

GATE = {gate!r}


def wait_at_gate(population):  # until `population` trials have started here, or 30 s have passed
    os.makedirs(GATE, exist_ok=True)
    open(os.path.join(GATE, str(os.getpid()) + "-" + str(time.monotonic_ns())), "w").close()
    waited = time.monotonic()
    while len(os.listdir(GATE)) < population and time.monotonic() - waited < 30:
        time.sleep(0.02)
"""
GATED_TRAINER = GATE_PREAMBLE + """

def objective(config, trial):
    state = trial.load_checkpoint()
    if state is None:
        wait_at_gate(4)
        state = {{"step": 0, "score": 0.0}}
    started, score = state["step"], state["score"]
    for step in range(started + 1, 9):
        score += config["lr"]
        trial.save_checkpoint({{"step": step, "score": score}})   # before report: a child copies this
        time.sleep(0.05 if config["lr"] > 0.1 else 0.15)
        trial.report(step, score)
        if trial.should_prune():
            break
    return {{"score": score, "started_from": started}}
"""


def test_pbt_exploits_and_children_inherit_checkpoints(project):
    project.write("trainer.py", GATED_TRAINER.format(gate=str(project.root / "gate")))
    spec = project.spec(
        name="pbt", objective={"metric": "score", "direction": "maximize"},
        space={"lr": {"type": "float", "low": 0.01, "high": 1.0, "log": True}}, strategy="random",
        trial={"function": "trainer:objective"}, budget={"trials": 16},
        executor={"kind": "process", "workers": 4},
        scheduler={"name": "pbt", "population_size": 4, "perturbation_interval": 2, "quantile_fraction": 0.25,
                   "max_resource": 8},
    )
    proc = project.cli("run", str(project.write_spec(spec)), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "from scratch" not in proc.stderr, "children that resumed are not said to have started over"
    trials = project.trials("pbt")
    children = [t for t in trials if "lineage" in t]
    assert children, "PBT started trials from others"
    by_number = {t["number"]: t for t in trials}
    for child in children:
        lineage = child["lineage"]
        parent = by_number[lineage["parent"]]
        assert lineage["params_before"] == parent["params"]
        assert lineage["params_after"] == child["params"]
        assert 0.01 <= child["params"]["lr"] <= 1.0
        if child["state"] == "completed":
            # the parent's latest checkpoint when the child launched: at least the step PBT decided at
            assert child["metrics"]["started_from"] >= lineage["step"] >= 2, "it resumed from the parent's checkpoint"
            if child["metrics"]["started_from"] < 8:  # else the parent had finished: nothing left to train
                assert child["steps"] == 8
    stopped = [t for t in trials if t["state"] == "pruned"]
    assert stopped, "the bottom of the population was stopped"
    shown = json.loads(project.cli("show", "pbt", "--json", check=True).stdout)
    assert shown["best"]["values"]["score"] > 0
    assert "restarted_children" not in shown["scheduler"]


# GATED_TRAINER as a command: the checkpoint contract of the README's Checkpoints section, by its variables.
GATED_COMMAND = GATE_PREAMBLE + """
import json, sys

own, parent = os.environ["TUNESMITH_CHECKPOINT_DIR"], os.environ["TUNESMITH_PARENT_CHECKPOINT_DIR"]
lr = float(sys.argv[1])
state = None
for folder in (own, parent):  # a retry's own checkpoint first, else a PBT child's copy of its parent's
    if os.path.exists(os.path.join(folder, "state.json")):
        with open(os.path.join(folder, "state.json")) as f:
            state = json.load(f)
        break
if state is None:
    wait_at_gate(4)
    state = {{"step": 0, "score": 0.0}}
started, score = state["step"], state["score"]
for step in range(started + 1, 9):
    score += lr
    os.makedirs(own, exist_ok=True)  # saved before the report, each file whole: a child copies the folder
    with open(os.path.join(own, "state.json.tmp"), "w") as f:
        json.dump({{"step": step, "score": score}}, f)
    os.replace(os.path.join(own, "state.json.tmp"), os.path.join(own, "state.json"))
    time.sleep(0.05 if lr > 0.1 else 0.15)
    print(json.dumps({{"step": step, "score": score}}), flush=True)
print(json.dumps({{"score": score, "started_from": started}}))
"""


def test_pbt_children_of_a_command_continue_from_the_checkpoint_folder_it_names(project):
    """A command had no documented way to checkpoint for PBT: one that saved in its trial folder, as the docs said,
    had every child start from scratch. $TUNESMITH_CHECKPOINT_DIR is the folder PBT copies into a child's
    $TUNESMITH_PARENT_CHECKPOINT_DIR."""
    project.write("trainer.py", GATED_COMMAND.format(gate=str(project.root / "gate")))
    spec = project.spec(
        name="pbt-cmd", objective={"metric": "score", "direction": "maximize"},
        space={"lr": {"type": "float", "low": 0.01, "high": 1.0, "log": True}}, strategy="random",
        trial={"command": f"{shlex.quote(sys.executable)} trainer.py {{lr}}"}, budget={"trials": 16},
        executor={"kind": "process", "workers": 4},
        scheduler={"name": "pbt", "population_size": 4, "perturbation_interval": 2, "quantile_fraction": 0.25,
                   "max_resource": 8},
    )
    proc = project.cli("run", str(project.write_spec(spec)), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "from scratch" not in proc.stderr, proc.stderr
    children = [t for t in project.trials("pbt-cmd") if "lineage" in t]
    assert children, "PBT started trials from others"
    for child in children:
        if not child["intermediate"]:  # its parent's checkpoint was at the last step: nothing left to train
            assert child["state"] == "completed", child
            assert child["metrics"]["started_from"] == 8 >= child["lineage"]["step"], child
            continue
        assert child["intermediate"][0][0] > child["lineage"]["step"] // 2, "it resumed from the parent's checkpoint"
        if child["state"] == "completed":
            assert child["metrics"]["started_from"] >= child["lineage"]["step"] >= 2


def test_pbt_mutations_that_do_not_fit_the_space_are_rejected_before_anything_runs(project):
    spec = project.spec(name="bad-pbt", scheduler={"name": "pbt", "mutations": {"lr": {"resample": True}}})
    proc = project.cli("run", str(project.write_spec(spec)))
    assert proc.returncode == 2
    assert "scheduler.mutations.lr" in proc.stderr and "Traceback" not in proc.stderr
    assert not project.db.exists()


def test_pbt_with_one_trial_at_a_time_is_warned_about(project):
    """With workers: 1 no other trial runs beside a lagging one, so PBT never has a parent to copy: a run of 12
    trials stopped none and said nothing (`pruned 0`, 100% of the steps)."""
    project.write("trainer.py", TRAINER)
    base = project.spec(name="pbt1", objective={"metric": "score", "direction": "maximize"},
                        space={"lr": {"type": "float", "low": 0.01, "high": 1.0, "log": True}},
                        trial={"function": "trainer:objective"},
                        scheduler={"name": "pbt", "population_size": 4, "perturbation_interval": 2, "max_resource": 8})
    for executor, why in [({"workers": 1}, "workers: 1"), ({"kind": "inline"}, "kind: inline"),
                          ({"workers": 4, "max_concurrent": 1}, "max_concurrent: 1")]:
        proc = project.cli("validate", str(project.write_spec({**base, "executor": executor})))
        assert proc.returncode == 0, proc.stderr
        assert (f"warning: scheduler is pbt, but executor {why} runs one trial at a time: PBT replaces a trial only "
                "with a copy of one still running beside it, so it would never act; set executor.workers close to "
                "scheduler.population_size (4)") in " ".join(proc.stderr.split()), proc.stderr
    assert project.cli("validate", str(project.write_spec({**base, "executor": {"workers": 4}}))).stderr == ""


# GATED_TRAINER, but never resuming from trial.load_checkpoint(): each child starts at step 1 again.
FORGETFUL_TRAINER = GATE_PREAMBLE + """

def objective(config, trial):
    wait_at_gate(4)
    score = 0.0
    for step in range(1, 9):
        score += config["lr"]
        if {saves}:
            trial.save_checkpoint({{"step": step, "score": score}})
        time.sleep(0.05 if config["lr"] > 0.1 else 0.15)
        trial.report(step, score)
        if trial.should_prune():
            break
    return score
"""


@pytest.mark.parametrize("saves", [True, False], ids=["saves-never-loads", "neither"])
def test_pbt_children_that_train_from_scratch_are_told(project, saves):
    """Trial code that never calls load_checkpoint() restarted every child from step 1 (lineage said step 5, 18,
    10), and neither the run nor show said so; show still counted PBT's savings."""
    project.write("trainer.py", FORGETFUL_TRAINER.format(gate=str(project.root / "gate"), saves=saves))
    spec = project.spec(
        name="forgets", objective={"metric": "score", "direction": "maximize"},
        space={"lr": {"type": "float", "low": 0.01, "high": 1.0, "log": True}}, strategy="random",
        trial={"function": "trainer:objective"}, budget={"trials": 16}, executor={"kind": "process", "workers": 4},
        scheduler={"name": "pbt", "population_size": 4, "perturbation_interval": 2, "quantile_fraction": 0.25,
                   "max_resource": 8})
    proc = project.cli("run", str(project.write_spec(spec)), "--quiet")
    assert proc.returncode == 0, proc.stderr
    children = [t for t in project.trials("forgets") if "lineage" in t]
    assert children, "PBT started trials from others"
    assert all(c["intermediate"][0][0] == 1 and c["lineage"]["step"] >= 2 for c in children)
    said = " ".join(proc.stderr.split())
    fix = ("the trial code does not resume from trial.load_checkpoint()" if saves
           else "the parent saved no checkpoint to copy: call trial.save_checkpoint(state) before each report, and "
                "start from what trial.load_checkpoint() returns")
    assert said.count("trained from scratch") == 1, said  # once in the run, not once per child
    assert re.search(r"trial \d+ was started by PBT from trial \d+'s checkpoint at step \d+, but its first report "
                     r"is at step 1: it trained from scratch", said), said
    assert fix in said and "see the README's Early stopping section, PBT" in said, said
    shown = json.loads(project.cli("show", "forgets", "--json", check=True).stdout)
    assert [c["trial"] for c in shown["scheduler"]["restarted_children"]] == sorted(c["number"] for c in children)
    text = " ".join(project.cli("show", "forgets", check=True).stdout.split())
    assert f"{len(children)} trials PBT started" in text or (len(children) == 1 and "trained from scratch" in text)
    assert fix in text and "the steps saved above count the trials PBT stopped, not what it gained" in text, text


def test_a_child_started_before_an_interruption_and_run_again_after_a_resume_is_told(project):
    """The run's warning knew only the children PBT started in this run: a child exploited before an interruption
    and re-run on resume trained from scratch without a word (its lineage is in the store's events). Written to a
    real store as the runner writes it."""
    from dataclasses import replace

    from tunesmith.records import Lineage, Report, TrialState
    from tunesmith.scheduler import SchedulerEvidence
    from tunesmith.spec.loader import load_spec
    from tunesmith.storage.sql import SQLStore

    spec = load_spec(project.write_spec(project.spec(
        "resumed", objective={"metric": "score", "direction": "maximize"}, trial={"function": "trainer:objective"},
        scheduler={"name": "pbt", "population_size": 4, "perturbation_interval": 2, "max_resource": 8})))
    store = SQLStore(project.storage, create=True)
    exp = store.create_experiment("resumed", spec.to_json(), "random", "test", 1000.0)
    parent = store.new_trial(exp.id, {"x": 0.5}, 0, 1001.0, "t{number}/trial.log")
    child = store.new_trial(exp.id, {"x": 0.6}, 0, 1002.0, "t{number}/trial.log")
    assert parent is not None and child is not None
    lineage = Lineage(parent.number, 6, {"x": 0.5}, {"x": 0.6}, checkpoint_copied=True)
    store.record_event(exp.id, "trial_exploited", 1002.0, child.number, lineage.to_json())
    store.save_trial(exp.id, replace(child, state=TrialState.INTERRUPTED), "trial_interrupted", 1003.0)

    said: list[str] = []
    evidence = SchedulerEvidence.of(spec, store)  # the resumed run's, as the runner builds it
    evidence.warn_through(said.append)
    evidence.run_started(store.experiment("resumed"), store.trials(exp.id), resumed=True, total_trials=8)
    rerun = replace(child, state=TrialState.COMPLETED, values=(1.0,),
                    intermediate=tuple(Report(s, 0.1 * s) for s in range(1, 9)))
    evidence.trial_finished(rerun, None)
    store.close()
    assert len(said) == 1 and said[0].startswith(
        f"trial {child.number} was started by PBT from trial {parent.number}'s checkpoint at step 6, but its first "
        "report is at step 1: it trained from scratch"), said


@pytest.mark.parametrize("copied", [True, False])
def test_a_command_child_that_trained_from_scratch_is_told_the_commands_fix(project, copied):
    """The warning told a command trial to call trial.save_checkpoint() and trial.load_checkpoint(), which only a
    function has: a command is told the folders to write and read."""
    from tunesmith.records import Lineage, Report, TrialRecord, TrialState
    from tunesmith.scheduler import SchedulerEvidence
    from tunesmith.spec import spec_from_dict

    said: list[str] = []
    evidence = SchedulerEvidence.of(spec_from_dict(project.spec(
        "cmd-pbt", trial={"command": "python3 train.py {x}"},
        scheduler={"name": "pbt", "population_size": 4, "perturbation_interval": 2, "max_resource": 8})))
    evidence.warn_through(said.append)
    child = TrialRecord(1, TrialState.RUNNING, {"x": 0.6}, 7)
    evidence.trial_exploited(child, Lineage(0, 6, {"x": 0.5}, {"x": 0.6}, checkpoint_copied=copied))
    evidence.trial_finished(replace(child, state=TrialState.COMPLETED, values=(1.0,),
                                    intermediate=tuple(Report(s, 0.1 * s) for s in range(1, 9))), None)
    assert len(said) == 1 and "trained from scratch" in said[0], said
    assert "trial.save_checkpoint" not in said[0] and "trial.load_checkpoint" not in said[0], said[0]
    assert "$TUNESMITH_PARENT_CHECKPOINT_DIR" in said[0], said[0]
    if not copied:
        assert "the parent saved no checkpoint to copy: write it in $TUNESMITH_CHECKPOINT_DIR" in said[0], said[0]
