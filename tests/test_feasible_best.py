"""The best so far is the best trial selection may pick (``show``'s best) wherever a run or its metrics use it:
``budget.target``, ``budget.patience`` and the Prometheus best series ignored the spec's constraints, so an
infeasible trial stopped a run, kept it going, or was exported as the best."""

from __future__ import annotations

import pytest

from tests.helpers import count_states, start_cli, stop_processes, wait_for

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


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    parser = pytest.importorskip("prometheus_client.parser", reason="needs prometheus-client")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in parser.text_string_to_metric_families(text) for s in family.samples}


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
    assert any(t["values"] and t["values"]["loss"] < 0.3 for t in project.trials("tgt")), \
        "the premise: an infeasible trial below the target came up, which ended the run before the fix"


def test_patience_is_measured_against_the_best_feasible_trial(project):
    """Infeasible trials that beat the best feasible one reset the patience counter (a run stopped after 15
    trials though its best feasible trial was trial 1): the run stops `patience` trials after show's best."""
    _sized_spec(project, "pat", {"trials": 40, "patience": 5})
    run = project.cli("run", "pat.yaml")
    assert run.returncode == 0, run.stderr
    shown = project.show("pat")
    assert "no improvement in 5 trials" in " ".join(run.stdout.split())
    assert shown["total_trials"] == shown["best"]["number"] + 1 + 5


def test_metrics_export_the_best_that_show_reports(project):
    """`tunesmith_best_value` was the best loss of any trial (an infeasible one), and trials since best counted
    from it; both now follow show's best, during the run (the textfile) and from the store (`metrics`)."""
    _sized_spec(project, "met", {"trials": 10})
    run = project.cli("run", "met.yaml", "-q", "--metrics-file", "met.prom")
    assert run.returncode == 0, run.stderr
    shown = project.show("met")
    best, total = shown["best"], shown["total_trials"]
    for text in ((project.root / "met.prom").read_text(), project.cli("metrics", "met", check=True).stdout):
        parsed = _samples(text)
        at = (("experiment", "met"),)
        assert parsed[("tunesmith_best_value", (("direction", "minimize"), ("experiment", "met"),
                                                ("metric", "loss")))] == pytest.approx(best["values"]["loss"])
        assert parsed[("tunesmith_trials_since_best", at)] == total - best["number"] - 1
        # the best updated when show's best trial finished, that long after the experiment was created
        updated, to_best = (parsed[(f"tunesmith_{m}", at)] for m in ("best_updated_timestamp_seconds",
                                                                      "time_to_best_seconds"))
        assert updated - to_best == pytest.approx(shown["created_at"])


def test_no_best_value_is_exported_when_no_trial_is_feasible(project):
    """With no feasible trial `show` has no best, and the best value series is absent (not an infeasible value)."""
    _sized_spec(project, "none", {"trials": 4}, constraints=("size_kb <= -1",))
    run = project.cli("run", "none.yaml", "-q", "--metrics-file", "none.prom")
    assert run.returncode == 0, run.stderr
    assert project.show("none")["best"] is None
    for text in ((project.root / "none.prom").read_text(), project.cli("metrics", "none", check=True).stdout):
        names = {name for name, _ in _samples(text)}
        assert not names & {"tunesmith_best_value", "tunesmith_time_to_best_seconds",
                            "tunesmith_best_updated_timestamp_seconds"}
        assert _samples(text)[("tunesmith_trials_since_best", (("experiment", "none"),))] == 4


def test_metrics_of_a_killed_run_say_nothing_runs_it_as_show_does(project, monkeypatch):
    """After a SIGKILLed `run`, `metrics` said running 1 and two workers busy while `show` said abandoned."""
    monkeypatch.setenv("SLOW_SECONDS", "30")
    project.write_spec(project.spec("gone", trial={"function": "objectives:slow"}, budget={"trials": 4}))
    run = start_cli(project, "run", "gone.yaml", "-q")
    try:
        wait_for(lambda: count_states(project, "gone").get("running", 0) >= 2, timeout=60)
        run.kill()
        run.wait(timeout=30)
    finally:
        stop_processes(run)
    assert project.show("gone")["abandoned"] is True
    parsed = _samples(project.cli("metrics", "gone", check=True).stdout)
    at = (("experiment", "gone"),)
    assert parsed[("tunesmith_experiment_running", at)] == 0
    assert parsed[("tunesmith_workers_busy", at)] == 0
