"""The best so far is the best trial selection may pick (``show``'s best) wherever a run or its metrics use it:
``budget.target``, ``budget.patience`` and the Prometheus best series ignored the spec's constraints, so an
infeasible trial stopped a run, kept it going, or was exported as the best."""

from __future__ import annotations

# feasible (size_kb <= 500) means x >= 0.5, so a feasible loss is never below 0.5
SIZED = '''
def objective(config, trial):
    x = config["x"]
    return {"loss": x, "size_kb": 1000 * (1 - x)}
'''


def _sized_spec(project, name: str, budget: dict, strategy: str = "random", seed: int = 4,
                constraints: tuple[str, ...] = ("size_kb <= 500",)) -> None:
    project.write("sized.py", SIZED)
    project.write_spec(project.spec(name, constraints=list(constraints), strategy=strategy, budget=budget,
                                    executor={"kind": "inline"}, trial={"function": "sized:objective"}, seed=seed))


def test_target_counts_only_trials_that_satisfy_the_constraints(project):
    """An infeasible trial below the target ended the run after 1 of 40 trials ("target 0.3 reached (best
    0.283754)") while `show` had no best at all; no feasible loss can reach 0.3, so the whole budget runs."""
    _sized_spec(project, "tgt", {"trials": 40, "target": 0.3}, strategy="tpe", seed=99)
    run = project.cli("run", "tgt.yaml")
    assert run.returncode == 0, run.stderr
    shown = project.show("tgt")
    assert shown["total_trials"] == 40, run.stdout
    assert "target 0.3 reached" not in run.stdout
    assert shown["best"] is not None and shown["best"]["values"]["loss"] >= 0.5


def test_patience_is_measured_against_the_best_feasible_trial(project):
    """Infeasible trials that beat the best feasible one reset the patience counter (a run stopped after 15
    trials though its best feasible trial was trial 1): the run stops `patience` trials after show's best."""
    _sized_spec(project, "pat", {"trials": 40, "patience": 5})
    run = project.cli("run", "pat.yaml")
    assert run.returncode == 0, run.stderr
    shown = project.show("pat")
    assert "no improvement in 5 trials" in " ".join(run.stdout.split())
    assert shown["total_trials"] == shown["best"]["number"] + 1 + 5
