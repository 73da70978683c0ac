"""A metric the spec names that the trials never report is said during the run, once, with the did-you-mean."""

from __future__ import annotations

LATENCY = '''
def objective(config, trial):
    return {"loss": (config["x"] - 0.3) ** 2, "latency": 10.0}
'''


def test_a_misspelt_constraint_metric_is_said_during_the_run(project) -> None:
    """The walkthrough: `constraints: ["latncy <= 18"]` for trials reporting `latency` ended with only "No completed
    trial satisfies the constraints." and exit code 0; `show --json` alone knew why."""
    project.write("lat.py", LATENCY)
    spec = project.spec(name="typo", budget={"trials": 3}, constraints=["latncy <= 18"],
                        trial={"function": "lat:objective"}, executor={"kind": "inline"})
    run = project.cli("run", str(project.write_spec(spec)), "--quiet")
    assert run.returncode == 0, (run.stdout, run.stderr)
    said = " ".join(run.stderr.split())
    assert said.count("without reporting 'latncy'") == 1, said
    assert "constraint 'latncy <= 18'" in said and "did you mean 'latency'?" in said, said


def test_a_constraint_on_a_reported_metric_or_an_objective_says_nothing(project) -> None:
    project.write("lat.py", LATENCY)
    spec = project.spec(name="fine", budget={"trials": 2}, constraints=["latency <= 18", "loss <= 1"],
                        trial={"function": "lat:objective"}, executor={"kind": "inline"})
    run = project.cli("run", str(project.write_spec(spec)), "--quiet")
    assert run.returncode == 0 and "without reporting" not in run.stderr, run.stderr


def test_a_failed_trial_lacking_the_metric_says_nothing(project) -> None:
    """A trial that failed may have stopped before reporting anything: only a completed one shows a wrong name."""
    spec = project.spec(name="failing", budget={"trials": 2}, constraints=["latency <= 18"],
                        trial={"function": "objectives:raises"}, executor={"kind": "inline"})
    run = project.cli("run", str(project.write_spec(spec)), "--quiet")
    assert "without reporting" not in run.stderr, run.stderr


def test_a_cost_metric_not_reported_under_resource_prices_says_the_trial_was_priced_by_them(project) -> None:
    """With `cost: {metric: dollars, cpu_hour: 1}` a trial that reports no `dollars` is priced from its measured
    resources; the warning said its cost was unknown."""
    project.write("lat.py", LATENCY)
    spec = project.spec(name="priced", budget={"trials": 2}, cost={"metric": "dollars", "cpu_hour": 1.0},
                        trial={"function": "lat:objective"}, executor={"kind": "inline"})
    run = project.cli("run", str(project.write_spec(spec)), "--quiet")
    assert run.returncode == 0, run.stderr
    said = " ".join(run.stderr.split())
    assert "without reporting 'dollars', the cost metric (cost.metric): its cost is priced from its measured " \
           "resources instead" in said, said
