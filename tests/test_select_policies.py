"""Constraints and selection policies: one trial picked from the feasible Pareto front, with the reason."""

from __future__ import annotations

import random

import pytest

import tunesmith
from tunesmith.constraints import Constraint
from tunesmith.records import Direction, ObjectiveSpec, TrialRecord, TrialState
from tunesmith.selection import pareto_front, select_trial
from tunesmith.spec.selection_config import SelectConfig

ACC = ObjectiveSpec("accuracy", Direction.MAXIMIZE)
LAT = ObjectiveSpec("latency_ms", Direction.MINIMIZE)
SIZE = ObjectiveSpec("size_mb", Direction.MINIMIZE)


def trial(number: int, accuracy: float, latency: float, state: TrialState = TrialState.COMPLETED,
          **metrics: float) -> TrialRecord:
    return TrialRecord(number=number, state=state, params={}, seed=0, metrics=metrics,
                       values=(accuracy, latency) if state is TrialState.COMPLETED else None)


# A hand-built front (accuracy up, latency down), plus dominated and broken trials:
#   #0 (0.70,  1)  #1 (0.85,  3)  #2 (0.90, 10)  #3 (0.92, 30)  #4 (0.93, 80) on the front;
#   #5 (0.80,  5) dominated by #1; #6 failed; #7 (0.95, 2) on no front because it lacks the cost metric.
FRONT = [trial(0, 0.70, 1, cost=0.01), trial(1, 0.85, 3, cost=0.03), trial(2, 0.90, 10, cost=0.04),
         trial(3, 0.92, 30, cost=0.2), trial(4, 0.93, 80, cost=0.5), trial(5, 0.80, 5, cost=0.01),
         trial(6, 0, 0, state=TrialState.FAILED, cost=0.02), trial(7, 0.95, 2)]
COST_CAP = Constraint.parse("cost <= 1")


def pick(policy, constraints=(COST_CAP,), trials=FRONT):
    return select_trial(trials, [ACC, LAT], constraints, policy)


def test_the_feasible_front_excludes_dominated_failed_and_metric_less_trials():
    s = pick("best")
    assert [t.number for t in s.front] == [4, 3, 2, 1, 0]  # best accuracy first
    assert s.feasible_trials == 6  # #0-#5; #7 lacks `cost`, so it counts as infeasible
    assert "6 of 7 completed trials feasible (cost <= 1), 5 on their Pareto front" in s.reason
    assert pick("best", constraints=()).trial.number == 7  # without the constraint #7 dominates


def test_best_takes_the_first_objective():
    s = pick("best")
    assert (s.trial.number, s.policy) == (4, "best") and s.reason.startswith("best accuracy (maximize)")


def test_knee_takes_the_point_of_diminishing_returns():
    # scaled to the front (0 best): #0 (1, 0), #1 (0.35, 0.03), #2 (0.13, 0.11), #3 (0.04, 0.37), #4 (0, 1);
    # below the line x + y = 1 by 0, 0.63, 0.76, 0.59, 0: #2
    s = pick("knee")
    assert s.trial.number == 2 and s.reason.startswith("knee: farthest")


def test_knee_on_three_objectives_is_nearest_the_ideal_point():
    ts = [TrialRecord(number=i, state=TrialState.COMPLETED, params={}, seed=0, values=v) for i, v in
          enumerate([(0.9, 50, 10), (0.7, 1, 1), (0.88, 5, 3), (0.5, 2, 0.5)])]
    s = select_trial(ts, [ACC, LAT, SIZE], (), "knee")
    assert s.trial.number == 2 and "ideal point" in s.reason


def test_weights_trade_objectives_on_the_scaled_front():
    latency_heavy = pick(SelectConfig(weights={"accuracy": 1, "latency_ms": 40}))  # #0: 1; #1: 0.35 + 1.01
    accuracy_heavy = pick(SelectConfig(weights={"accuracy": 10, "latency_ms": 1}))
    assert latency_heavy.trial.number == 0
    assert accuracy_heavy.trial.number == 3  # 10 x (0.01/0.23) + 29/79 beats #4's 0 + 1 and #2's 1.3 + 0.11
    assert "weights accuracy=10, latency_ms=1" in accuracy_heavy.reason


def test_lexicographic_follows_the_given_order():
    s = pick(SelectConfig(lexicographic=("latency_ms", "accuracy")))
    assert s.trial.number == 0 and s.reason.startswith("lexicographic on latency_ms, accuracy")
    ties = [trial(0, 0.8, 5), trial(1, 0.9, 5), trial(2, 0.7, 1)]
    assert select_trial(ties, [ACC, LAT], (), SelectConfig(lexicographic=("accuracy",))).trial.number == 1


def test_constraint_first_keeps_the_widest_margin():
    tight = (Constraint.parse("latency_ms <= 40"), Constraint.parse("accuracy >= 0.8"), COST_CAP)
    s = pick("constraint_first", constraints=tight)
    # margin on the tightest constraint, as a share of its bound: #1 0.05/0.8, #2 0.1/0.8, #3 0.12/0.8
    # (#0 misses the accuracy floor, #4 the latency cap)
    assert s.trial.number == 3 and s.reason.startswith("constraint_first")
    assert pick("constraint_first", constraints=()).reason.startswith("no constraints")


def test_no_feasible_trial_selects_nothing():
    assert pick("best", constraints=(Constraint.parse("latency_ms <= 0.5"),)) is None


@pytest.mark.parametrize("policy", ["best", "knee", "constraint_first",
                                    SelectConfig(weights={"accuracy": 1, "latency_ms": 1}),
                                    SelectConfig(lexicographic=("latency_ms",))])
def test_the_selected_trial_never_violates_a_constraint(policy):
    rng = random.Random(11)
    for _ in range(200):
        trials = []
        for i in range(rng.randint(1, 25)):
            metrics = {"size_mb": rng.uniform(0, 100)} if rng.random() < 0.9 else {}
            state = rng.choice([TrialState.COMPLETED] * 4 + [TrialState.FAILED, TrialState.PRUNED])
            trials.append(trial(i, rng.random(), rng.uniform(0, 50), state=state, **metrics))
        constraints = (Constraint("size_mb", "<=", rng.uniform(0, 100)), Constraint("latency_ms", "<=", 30.0),
                       Constraint("accuracy", ">=", rng.uniform(0, 0.5)))
        s = select_trial(trials, [ACC, LAT], constraints, policy)
        ok = [t for t in trials if t.state is TrialState.COMPLETED and "size_mb" in t.metrics
              and t.metrics["size_mb"] <= constraints[0].bound and t.values[1] <= 30
              and t.values[0] >= constraints[2].bound]
        if not ok:
            assert s is None
            continue
        assert s is not None and s.trial in ok
        assert s.trial in pareto_front(ok, [ACC, LAT])


def test_constraint_and_select_specs_fail_with_the_field(project):
    bad = {"constraints": ["latency_ms < 20"]}
    path = project.write_spec(project.spec(name="bad-constraint", **bad))
    proc = project.cli("validate", str(path))
    assert proc.returncode == 2 and "constraints" in proc.stderr and "metric <= number" in proc.stderr
    path = project.write_spec(project.spec(name="bad-select", select={"weights": {"acc": 1}}))
    proc = project.cli("validate", str(path))
    assert proc.returncode == 2 and "select.weights" in proc.stderr and "'acc' is not an objective" in proc.stderr
    assert "Traceback" not in proc.stderr
    two = [{"metric": "accuracy", "direction": "maximize"}, {"metric": "latency", "direction": "minimize"}]
    path = project.write_spec(project.spec(name="typo", objective=two, strategy="nsga2",
                                           select={"weights": {"acuracy": 1}}))
    proc = project.cli("validate", str(path))  # a misspelt objective gets the did-you-mean other fields get
    assert proc.returncode == 2 and "'acuracy' is not an objective; did you mean 'accuracy'?" in proc.stderr, \
        proc.stderr


def test_optuna_samplers_see_the_constraints():
    from tunesmith.space import Float, SearchSpace
    from tunesmith.strategy import StrategyDecision, build_strategy

    space = SearchSpace.from_domains({"x": Float(0.0, 1.0)})
    cons = (Constraint.parse("size_mb <= 10"), Constraint.parse("loss <= 0.5"))
    s = build_strategy(StrategyDecision("tpe", {}, ""), space, [Direction.MINIMIZE], 0, 1, constraints=cons,
                       objective_metrics=["loss"])
    p = s.ask()
    s.tell(p.token, TrialState.COMPLETED, [0.7], {"size_mb": 4.0, "loss": 0.7})
    q = s.ask()
    s.tell(q.token, TrialState.COMPLETED, [0.1], {})  # no size_mb reported: infeasible
    told = s.study.trials  # type: ignore[attr-defined]
    assert told[0].constraints == {"size_mb <= 10": -6.0, "loss <= 0.5": pytest.approx(0.2)}
    assert told[1].constraints["size_mb <= 10"] > 1e9
    replayed = build_strategy(StrategyDecision("nsga2", {}, ""), space, [Direction.MINIMIZE, Direction.MINIMIZE],
                              0, 1, constraints=cons, objective_metrics=["loss", "size_mb"])
    replayed.replay([TrialRecord(number=0, state=TrialState.COMPLETED, params={"x": 0.5}, seed=0,
                                 values=(0.2, 30.0))])
    assert replayed.study.trials[0].constraints == {"size_mb <= 10": 20.0,  # type: ignore[attr-defined]
                                                   "loss <= 0.5": pytest.approx(-0.3)}


@pytest.mark.slow
def test_show_prints_the_front_and_the_selected_trial(project):
    spec = project.spec(name="mo", objective=[{"metric": "f1", "direction": "minimize"},
                                              {"metric": "f2", "direction": "minimize"}],
                        trial={"function": "objectives:two_objectives"}, budget={"trials": 12},
                        constraints=["f1 <= 0.5"], select="knee", executor={"kind": "inline"})
    result = tunesmith.run(spec, storage=project.storage)
    summary = project.show("mo")
    sel = summary["selected"]
    assert sel["policy"] == "knee" and sel["number"] == result.selected.trial.number
    chosen = next(t for t in result.trials if t.number == sel["number"])
    assert chosen.values[0] <= 0.5 and sel["reason"]
    assert all(p["values"]["f1"] <= 0.5 for p in summary["pareto"])
    assert summary["constraints"] == ["f1 <= 0.5"]
    text = project.cli("show", "mo", check=True).stdout
    assert f"selected (knee): trial {sel['number']}" in text and "Pareto front of mo" in " ".join(text.split())


def test_a_constraint_on_a_metric_no_trial_records_says_so(project):
    """A typo in a constraint's metric made every trial infeasible; show said only 'no completed trial satisfies the
    constraints', which reads as a search that found nothing good."""
    spec = project.spec(name="typo", trial={"function": "objectives:with_metrics"}, budget={"trials": 3},
                        constraints=["loss <= 10", "extar <= 2"], executor={"kind": "inline"})
    tunesmith.run(spec, storage=project.storage)
    reason = ("no completed trial satisfies the constraints: none of the 3 records 'extar' (constraint 'extar <= "
              "2'); did you mean 'extra'?")
    assert project.show("typo")["selected"] == {"number": None, "policy": "best", "reason": reason}
    assert f"selected (best): no trial: {reason}" in " ".join(project.cli("show", "typo", check=True).stdout.split())
    promote = project.cli("promote", "typo", "--model-name", "m", "--dry-run")
    assert promote.returncode == 2 and "Traceback" not in promote.stderr
    assert ("nothing to promote: none of the 3 records 'extar' (constraint 'extar <= 2'); did you mean 'extra'?"
            in " ".join(promote.stderr.split()))


def test_a_task_may_take_what_it_measures_as_further_objectives():
    from tunesmith.errors import SpecError

    base = {"name": "rf", "space": {"n_estimators": {"type": "int", "low": 2, "high": 50}},
            "task": {"estimator": "sklearn.ensemble.RandomForestClassifier", "data": {"sklearn": "iris"},
                     "scoring": "accuracy"}}
    two = tunesmith.ExperimentSpec(**base, objective=[{"metric": "accuracy", "direction": "maximize"},
                                                      {"metric": "latency_p95_ms", "direction": "minimize"}])
    assert [o.metric for o in two.objectives] == ["accuracy", "latency_p95_ms"]
    with pytest.raises(SpecError) as e:
        tunesmith.ExperimentSpec(**base, objective=[{"metric": "accuracy", "direction": "maximize"},
                                                    {"metric": "f1", "direction": "maximize"}])
    assert e.value.path == "objective.1" and "latency_p95_ms" in e.value.message


def test_a_money_budget_alone_is_a_budget():
    spec = tunesmith.ExperimentSpec(name="m", objective={"metric": "loss", "direction": "minimize"},
                                    space={"x": {"type": "float", "low": 0, "high": 1}}, trial="m:f",
                                    budget={"trials": None, "cost": 5}, cost={"cpu_hour": 1})
    assert spec.budget.cost == 5 and spec.budget.trials is None


def test_knee_of_a_front_without_a_bend_is_nearest_the_ideal_point():
    concave = [trial(0, 0.9, 10), trial(1, 0.85, 9.5), trial(2, 0.5, 1)]  # #1 lies above the extremes' line
    s = select_trial(concave, [ACC, LAT], (), "knee")
    assert s.trial.number == 1 and "no member below the line" in s.reason


def test_intermediate_reports_of_a_multi_objective_trial_do_not_reach_optuna():
    from tunesmith.records import Report
    from tunesmith.space import Float, SearchSpace
    from tunesmith.strategy import StrategyDecision, build_strategy

    space = SearchSpace.from_domains({"x": Float(0.0, 1.0)})
    s = build_strategy(StrategyDecision("tpe", {}, ""), space, [Direction.MAXIMIZE, Direction.MINIMIZE], 0, 1)
    p = s.ask()
    s.report(p.token, Report(0, 0.5))  # a task reports each fold; Optuna raises for several objectives
    s.tell(p.token, TrialState.COMPLETED, [0.9, 3.0])
    assert s.study.trials[0].values == [0.9, 3.0]  # type: ignore[attr-defined]


def test_the_best_trials_shown_during_and_after_a_run_satisfy_the_constraints(project):
    """The table of best trials (`run`'s and `show`'s) and the live display's best so far ranked every completed
    trial: the top row, and the best so far, broke the constraint while `show` said `best:` was another trial."""
    project.write("sized.py", '''
        def objective(config, trial):
            return {"loss": (config["x"] - 0.3) ** 2, "size": config["x"]}
    ''')
    # a grid of x = 0, 0.25, 0.5, 0.75, 1: the lowest loss (x=0.25) is too small; x=0.5 is the best feasible
    path = project.write_spec(project.spec(name="sized", trial={"function": "sized:objective"}, strategy="grid",
                                           budget={"trials": 5}, constraints=["size >= 0.5"],
                                           executor={"kind": "inline"}))
    run = project.cli("run", str(path), check=True)
    assert "best 0.04 (#" in run.stdout and "best 0.0025" not in run.stdout
    for out in (run.stdout, project.cli("show", "sized", check=True).stdout):
        rows = [line for line in out.splitlines() if "x=" in line]
        assert rows and "x=0.5" in rows[0] and not any("x=0.25" in r or "x=0.0" in r for r in rows), out
        assert "Best trials of sized satisfying size >= 0.5" in out
    assert project.show("sized")["best"]["params"] == {"x": 0.5}


def test_the_table_of_several_objectives_is_the_front_with_the_selected_trial_marked(project):
    """With two objectives the table (`run`'s and `show`'s) was the top 5 by the first: it listed dominated trials
    and left out front members, the knee's pick among them; `show` printed `best: trial 8` beside `selected (knee):
    trial 6` without saying which one `promote` ships."""
    project.write("twin.py", '''
        def objective(config, trial):
            # k=slow matches k=fast's accuracy at 10 ms more: every slow trial is dominated
            x = config["x"]
            return {"acc": x ** 0.25, "ms": x + (10 if config["k"] == "slow" else 0)}
    ''')
    path = project.write_spec(project.spec(
        name="twin", trial={"function": "twin:objective"}, strategy="grid", budget={"trials": 10},
        objective=[{"metric": "acc", "direction": "maximize"}, {"metric": "ms", "direction": "minimize"}],
        space={"x": {"type": "int", "low": 0, "high": 4}, "k": {"type": "categorical", "choices": ["fast", "slow"]}},
        select="knee", executor={"kind": "inline"}))
    run = project.cli("run", str(path), check=True)
    summary = project.show("twin")
    front = {p["number"] for p in summary["pareto"]}
    selected, best = summary["selected"]["number"], summary["best"]["number"]
    assert len(front) == 5 and selected in front and selected != best
    shown = project.cli("show", "twin", check=True).stdout
    for out in (run.stdout, shown):
        rows = [line for line in out.splitlines() if "x=" in line and "│" in line]  # the table's rows
        cells = [r.split("│")[1].strip() for r in rows]
        assert {int(c.lstrip("*")) for c in cells} == front and not any("k=slow" in r for r in rows), out
        assert [c for c in cells if c.startswith("*")] == [f"*{selected}"], out
        assert "Pareto front of twin" in " ".join(out.split())
    flat = " ".join(shown.split())
    assert f"best by acc (the first objective): trial {best}" in flat
    assert f"selected (knee): trial {selected} (what `tunesmith promote` ships)" in flat


def test_a_misspelt_policy_gets_a_did_you_mean(project) -> None:
    """`select: kne` named the policies without the one meant, where strategies and schedulers say it."""
    proc = project.cli("validate", str(project.write_spec(project.spec(name="kne", select="kne"))))
    said = " ".join(proc.stderr.split())
    assert proc.returncode == 2 and "unknown policy 'kne'; did you mean 'knee'? choose one of best, knee" in said, said
