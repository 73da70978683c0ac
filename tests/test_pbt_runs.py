"""PBT in a real run: bottom trials stop, children continue from a top trial's checkpoint with perturbed params."""

from __future__ import annotations

import json

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


def test_pbt_exploits_and_children_inherit_checkpoints(project):
    project.write("trainer.py", TRAINER)
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


def test_pbt_mutations_that_do_not_fit_the_space_are_rejected_before_anything_runs(project):
    spec = project.spec(name="bad-pbt", scheduler={"name": "pbt", "mutations": {"lr": {"resample": True}}})
    proc = project.cli("run", str(project.write_spec(spec)))
    assert proc.returncode == 2
    assert "scheduler.mutations.lr" in proc.stderr and "Traceback" not in proc.stderr
    assert not project.db.exists()
