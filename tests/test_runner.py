"""The tuning loop end to end: strategies, budgets, retries, reproducibility, and the Python API."""

from __future__ import annotations

import math
import sys

import pytest

import tunesmith
from tunesmith.errors import ExperimentExists, SpecError
from tunesmith.records import TrialState
from tunesmith.strategy.optuna_adapter import torch_available

MIXED_SPACE = {
    "x": {"type": "float", "low": 0.0, "high": 1.0},
    "lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
    "n": {"type": "int", "low": 1, "high": 64, "log": True},
    "k": {"type": "int", "low": 0, "high": 10, "step": 2},
    "kind": {"type": "categorical", "choices": ["a", "b"]},
    "a_val": {"type": "float", "low": 0.0, "high": 1.0, "when": {"kind": "a"}},
    "b_val": {"type": "float", "low": 0.0, "high": 1.0, "when": {"kind": "b"}},
}


def params_sequence(result):
    return [t.params for t in sorted(result.trials, key=lambda t: t.number)]


@pytest.mark.parametrize("strategy", ["random", "qmc", "tpe", "cmaes", "bo", "auto"])
def test_each_strategy_runs_a_conditional_space(project, strategy):
    spec = project.spec(name=f"s-{strategy}", space=MIXED_SPACE, strategy=strategy,
                        trial={"function": "objectives:conditional"}, budget={"trials": 12},
                        executor={"kind": "inline"})
    result = tunesmith.run(spec, storage=project.storage)
    assert [t.state for t in result.trials] == [TrialState.COMPLETED] * 12
    space = tunesmith.ExperimentSpec.model_validate(spec).search_space
    for t in result.trials:
        assert space.validate_params(t.params) == t.params  # in range, and only the active parameters
        assert ("a_val" in t.params) == (t.params["kind"] == "a")
        assert ("b_val" in t.params) == (t.params["kind"] == "b")


def test_grid_covers_the_grid_once_and_stops(project):
    space = {"kind": {"type": "categorical", "choices": ["a", "b"]},
             "a_val": {"type": "float", "low": 0.0, "high": 1.0, "step": 0.5, "when": {"kind": "a"}},
             "b_val": {"type": "int", "low": 1, "high": 2, "when": {"kind": "b"}}}
    spec = project.spec(name="grid", space=space, strategy="grid", trial={"function": "objectives:conditional"},
                        budget={"trials": 100}, executor={"kind": "inline"})
    result = tunesmith.run(spec, storage=project.storage)
    seen = sorted(tuple(sorted(t.params.items())) for t in result.trials)
    assert len(seen) == 5 == len(set(seen))  # 3 values of a_val + 2 of b_val
    assert "every configuration" in result.stop_reason


def test_auto_picks_grid_when_the_grid_fits(project):
    spec = project.spec(name="auto-grid", space={"c": {"type": "categorical", "choices": [1, 2, 3]}},
                        strategy="auto", budget={"trials": 10}, trial={"function": "objectives:noop"},
                        executor={"kind": "inline"})
    result = tunesmith.run(spec, storage=project.storage)
    assert result.experiment.strategy == "grid"
    assert "fits in the budget" in result.experiment.strategy_reason
    assert len(result.trials) == 3


def test_nsga2_and_pareto_front_with_two_objectives(project):
    spec = project.spec(name="mo", objective=[{"metric": "f1", "direction": "minimize"},
                                              {"metric": "f2", "direction": "minimize"}],
                        strategy="nsga2", trial={"function": "objectives:two_objectives"}, budget={"trials": 20},
                        executor={"kind": "inline"})
    result = tunesmith.run(spec, storage=project.storage)
    front = result.pareto
    assert front, "some trial is Pareto-optimal"
    for t in front:  # on this problem every x in [0, 1] is Pareto-optimal, and nothing else is
        assert 0.0 <= t.params["x"] <= 1.0
    summary = result.summary()
    assert {p["number"] for p in summary["pareto"]} == {t.number for t in front}
    assert set(summary["best"]["values"]) == {"f1", "f2"}
    # with a constraint, the front is of the trials that satisfy it, as `show` says: it held every trial's
    constrained = tunesmith.run({**spec, "name": "mo-c", "constraints": ["f1 <= 0.25"]}, storage=project.storage)
    assert constrained.pareto and all(t.values[0] <= 0.25 for t in constrained.pareto)
    assert [t.number for t in constrained.pareto] == [p["number"] for p in constrained.summary()["pareto"]]
    nobody = tunesmith.open_experiment("mo-c", storage=project.storage)  # (read back: the same answer)
    assert [t.number for t in nobody.pareto] == [t.number for t in constrained.pareto]
    impossible = tunesmith.run({**spec, "name": "mo-none", "constraints": ["f1 <= -1"]}, storage=project.storage)
    assert impossible.pareto == [] and impossible.summary()["pareto"] == []


@pytest.mark.skipif(not torch_available(), reason="the gp strategy needs torch (pip install 'tunesmith[gp]')")
def test_gp_strategy(project):
    spec = project.spec(name="gp", strategy="gp", budget={"trials": 12}, executor={"kind": "inline"})
    assert len(tunesmith.run(spec, storage=project.storage).trials) == 12


def test_gp_without_torch_is_a_spec_error(project):
    if torch_available():
        pytest.skip("torch is installed")
    with pytest.raises(SpecError, match=r"pip install -e '\.\[gp\]'"):
        tunesmith.run(project.spec(name="gp", strategy="gp"), storage=project.storage)


@pytest.mark.parametrize("kind,workers", [("inline", 1), ("process", 1)])
def test_same_seed_same_sequence(project, kind, workers):
    def go(name, seed):
        spec = project.spec(name=name, space=MIXED_SPACE, strategy="tpe", seed=seed,
                            trial={"function": "objectives:conditional"}, budget={"trials": 14},
                            executor={"kind": kind, "workers": workers})
        return params_sequence(tunesmith.run(spec, storage=project.storage))

    first, again, other = go("a", 3), go("b", 3), go("c", 4)
    assert first == again
    assert first != other


def test_trial_seeds_derive_from_the_experiment_seed(project):
    a = tunesmith.run(project.spec(name="a", seed=5), storage=project.storage)
    b = tunesmith.run(project.spec(name="b", seed=5), storage=project.storage)
    assert [t.seed for t in a.trials] == [t.seed for t in b.trials]
    assert len({t.seed for t in a.trials}) == len(a.trials)


def test_parallel_proposals_are_spread_apart():
    """With 8 proposals outstanding (8 busy workers), the default TPE (constant liar) spreads them out; without
    the liar they crowd around the incumbent. Measured over seeds on a 2-D quadratic."""
    import statistics

    from tunesmith.records import Direction
    from tunesmith.space import Float, SearchSpace
    from tunesmith.strategy import StrategyDecision, build_strategy

    space = SearchSpace.from_domains({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})

    def spread(options, seed):
        s = build_strategy(StrategyDecision("tpe", options, ""), space, [Direction.MINIMIZE], seed, workers=8)
        for _ in range(16):
            p = s.ask()
            s.tell(p.token, TrialState.COMPLETED, [(p.params["x"] - 0.3) ** 2 + (p.params["y"] - 0.6) ** 2])
        batch = [s.ask().params for _ in range(8)]
        return statistics.mean(math.dist((a["x"], a["y"]), (b["x"], b["y"]))
                               for i, a in enumerate(batch) for b in batch[i + 1:])

    default = statistics.mean(spread({}, seed) for seed in range(8))
    no_liar = statistics.mean(spread({"constant_liar": False}, seed) for seed in range(8))
    assert default > 1.5 * no_liar, (default, no_liar)


def test_budget_target_stops_early(project):
    spec = project.spec(name="target", strategy="tpe", budget={"trials": 200, "target": 0.01},
                        executor={"kind": "inline"})
    result = tunesmith.run(spec, storage=project.storage)
    assert result.best.values[0] <= 0.01
    assert len(result.trials) < 200
    assert "target" in result.stop_reason


def test_budget_patience_stops(project):
    spec = project.spec(name="patience", space={"c": {"type": "categorical", "choices": [1, 2]}},
                        strategy="random", trial={"function": "objectives:noop"},
                        budget={"trials": 500, "patience": 5}, executor={"kind": "inline"})
    result = tunesmith.run(spec, storage=project.storage)
    assert len(result.trials) == 6  # the first sets the best; five more without improvement
    assert "no improvement in 5 trials" in result.stop_reason


def test_budget_wall_time(project, monkeypatch):
    monkeypatch.setenv("SLOW_SECONDS", "0.3")
    spec = project.spec(name="wall", trial={"function": "objectives:slow"}, budget={"trials": 100, "wall_time": 1},
                        executor={"kind": "process", "workers": 1})
    result = tunesmith.run(spec, storage=project.storage)
    assert 1 <= len(result.trials) <= 6
    assert "wall-time" in result.stop_reason


def test_a_wall_time_alone_runs_until_the_time_is_up_not_100_trials(project):
    """`budget: {wall_time: 2s}` (Optuna's optimize(timeout=2)) stopped a cheap objective at the default 100 trials,
    "trial budget of 100 reached", a number the user never wrote (review R5). Written out, `trials` still caps it."""
    spec = project.write_spec(project.spec(name="timed", trial={"function": "objectives:noop"},
                                           budget={"wall_time": "2s"}, executor={"kind": "inline"}))
    proc = project.cli("run", str(spec), "--quiet")
    assert proc.returncode == 0, proc.stderr
    timed = project.trials("timed")
    assert len(timed) > 100, len(timed)
    assert "wall-time budget of 2s reached" in project.cli("show", "timed").stdout
    capped = tunesmith.run(project.spec(name="capped", trial={"function": "objectives:noop"},
                                        budget={"wall_time": "2s", "trials": 100}, executor={"kind": "inline"}),
                           storage=project.storage)
    assert len(capped.trials) == 100 and "trial budget of 100" in capped.stop_reason


def test_failures_are_results_and_the_run_goes_on(project):
    project.write("flaky.py", """
        def objective(config, trial):
            if trial.number % 3 == 0:
                return float("nan")
            if trial.number % 3 == 1:
                raise RuntimeError("boom")
            return config["x"]
    """)
    spec = project.spec(name="flaky", trial={"function": "flaky:objective"}, budget={"trials": 9})
    result = tunesmith.run(spec, storage=project.storage)
    states = [t.state for t in result.trials]
    assert states.count(TrialState.FAILED) == 6 and states.count(TrialState.COMPLETED) == 3
    nan = result.trials[0]
    assert nan.failure_kind.value == "invalid_result" and "nan" in nan.error
    boom = result.trials[1]
    assert boom.failure_kind.value == "exception" and "RuntimeError: boom" in boom.error
    assert boom.attempts == 1, "a deterministic user error is not retried"
    assert result.summary()["failure_rate"] == pytest.approx(6 / 9, abs=1e-4)


def test_infrastructure_failures_are_retried(project):
    project.write("crash_once.py", """
        import os, signal
        def objective(config, trial):
            if trial.attempt == 1:
                os.kill(os.getpid(), signal.SIGKILL)
            return config["x"]
    """)
    spec = project.spec(name="retry", trial={"function": "crash_once:objective"}, budget={"trials": 3},
                        executor={"kind": "process", "workers": 1, "retries": 1, "retry_backoff": 0.05})
    result = tunesmith.run(spec, storage=project.storage)
    assert [t.state for t in result.trials] == [TrialState.COMPLETED] * 3
    assert [t.attempts for t in result.trials] == [2, 2, 2]
    from tunesmith.storage import SQLStore

    store = SQLStore(project.storage)
    retries = [e for e in store.events(result.experiment.id) if e.kind == "trial_retry"]
    store.close()
    assert [e.trial_number for e in retries] == [0, 1, 2], "each first attempt is on record"
    assert all(e.payload["error"].startswith("crashed:") and "SIGKILL" in e.payload["error"] for e in retries)


def test_retries_exhausted_leave_a_failed_trial(project):
    spec = project.spec(name="segv", trial={"function": "objectives:segfault"}, budget={"trials": 2},
                        executor={"kind": "process", "workers": 1, "retries": 2, "retry_backoff": 0.01})
    result = tunesmith.run(spec, storage=project.storage)
    assert [t.attempts for t in result.trials] == [3, 3]
    assert all(t.failure_kind.value == "crashed" and "SIGSEGV" in t.error for t in result.trials)


def test_python_api_with_objects_and_a_function(project, monkeypatch):
    # this project's objectives.py, whatever the runner's sys.path (`pytest` has no '' on it; `python -m pytest` has)
    monkeypatch.syspath_prepend(str(project.root))
    monkeypatch.setitem(sys.modules, "objectives", None)  # so that the test's end puts back what was there, or nothing
    del sys.modules["objectives"]                         # (delitem of an absent module would undo nothing)
    from objectives import quadratic

    spec = tunesmith.ExperimentSpec(
        name="py", objective={"metric": "loss", "direction": "minimize"},
        space={"x": tunesmith.Float(0.0, 1.0)}, trial=quadratic, budget={"trials": 8}, seed=0,
        executor={"kind": "process", "workers": 2},
    )
    result = tunesmith.run(spec, storage=project.storage)
    assert result.status.value == "completed"
    assert math.isclose(result.best.values[0], (result.best.params["x"] - 0.3) ** 2)
    again = tunesmith.open_experiment("py", storage=project.storage)
    assert [t.params for t in again.trials] == [t.params for t in result.trials]
    with pytest.raises(ExperimentExists) as exists:  # it named the CLI's flag, (--name), which Python has not
        tunesmith.run(spec, storage=project.storage)
    assert "--name" not in str(exists.value) and "tunesmith resume" not in str(exists.value)
    assert str(exists.value).endswith("; continue it with tunesmith.resume('py') (which runs the spec recorded then, "
                                      "not this one), or give the spec another name (its `name`)")
    # another store than resume('py') alone would open (TUNESMITH_STORAGE's here): it is named, as the CLI's hint
    # names --storage (the hint alone led to "no store there ... point --storage at the store", the CLI's words)
    elsewhere = f"sqlite:///{project.root}/elsewhere.db"
    spec = spec.model_copy(update={"workdir": str(project.root / "elsewhere")})  # its own trial folders too
    tunesmith.run(spec, storage=elsewhere)
    with pytest.raises(ExperimentExists) as exists:
        tunesmith.run(spec, storage=elsewhere)
    assert f"continue it with tunesmith.resume('py', storage={elsewhere!r}) (which runs" in str(exists.value)


def test_intermediate_values_are_recorded(project):
    spec = project.spec(name="rep", trial={"function": "objectives:reporting"}, budget={"trials": 2})
    result = tunesmith.run(spec, storage=project.storage)
    for t in result.trials:
        assert [(r.step, r.value) for r in t.intermediate] == [(s, t.params["x"] * s) for s in range(5)]


def test_a_resumed_unscrambled_qmc_goes_on_with_the_sequence():
    """QMC with scramble: false ignores the seed, so a resumed run's new seed changed nothing: its fresh study
    drew from the sequence's first point again and proposed the first run's configurations under new numbers."""
    from tunesmith.records import Direction, TrialRecord
    from tunesmith.space import Float, SearchSpace
    from tunesmith.strategy.optuna_adapter import OptunaStrategy, sampler_options

    space = SearchSpace.from_domains({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})
    options = sampler_options("qmc", {"scramble": False}, space)

    def proposals(strategy, count, first):
        made = []
        for number in range(first, first + count):
            proposal = strategy.ask()
            strategy.tell(proposal.token, TrialState.COMPLETED, (proposal.params["x"],))
            made.append(TrialRecord(number, TrialState.COMPLETED, proposal.params, 0, values=(proposal.params["x"],)))
        return made

    first_run = proposals(OptunaStrategy("qmc", space, [Direction.MINIMIZE], 1, dict(options)), 6, 0)
    resumed = OptunaStrategy("qmc", space, [Direction.MINIMIZE], 2, dict(options), trials_recorded=len(first_run))
    resumed.replay(first_run)
    after = proposals(resumed, 6, 6)
    seen = {tuple(sorted(t.params.items())) for t in first_run}
    assert not seen & {tuple(sorted(t.params.items())) for t in after}, "a resumed run re-proposed the first run's"


def test_a_resumed_qmc_after_only_failed_trials_proposes_none_of_them():
    """QMC's first trial, and every parameter outside its search space (all of them while no trial completed or
    was pruned: the space is inferred from those), comes from its independent sampler. That sampler took the
    design seed (the first run's) with the rest, so a resumed run whose history had only failed trials proposed
    the first run's trial 0 again."""
    from tunesmith.records import Direction, TrialRecord
    from tunesmith.space import Float, SearchSpace
    from tunesmith.strategy import build_strategy, decide

    space = SearchSpace.from_domains({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})
    decision = decide("qmc", {}, space, 10, 1, 1)
    first = build_strategy(decision, space, [Direction.MINIMIZE], 11, 1, design_seed=11)
    history = []
    for number in range(3):
        proposal = first.ask()
        first.tell(proposal.token, TrialState.FAILED, None)
        history.append(TrialRecord(number, TrialState.FAILED, proposal.params, 0))
    resumed = build_strategy(decision, space, [Direction.MINIMIZE], 22, 1, design_seed=11, trials_recorded=len(history))
    resumed.replay(history)
    proposed = [resumed.ask().params for _ in range(3)]
    assert not [p for p in proposed if p in [t.params for t in history]], (proposed, history)


@pytest.mark.parametrize("strategy", ["bo", "qmc"])
def test_a_resumed_run_goes_on_with_the_first_runs_design(project, strategy):
    """bo's Sobol start-up design and QMC's sequence: a resumed run proposes the points an uninterrupted run would
    have, not a new scrambled design's (its spread lost against the first run's points) nor the first points again."""
    from tunesmith.events import RunListener
    from tunesmith.runner import resume_experiment, run_experiment
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage import SQLStore

    def spec(name):
        return spec_from_dict(project.spec(name=name, strategy=strategy, budget={"trials": 5}, seed=3,
                                           executor={"kind": "inline"}, base_dir=str(project.root)))

    store = SQLStore(project.storage)
    whole = [dict(t.params) for t in run_experiment(spec("whole"), store).trials]
    runners = []

    class StopAfterThree(RunListener):
        def trial_finished(self, trial, best):
            if trial.number == 2:
                runners[0].request_stop()

    cut = run_experiment(spec("cut"), store, StopAfterThree(), on_runner=runners.append)
    assert len(cut.trials) == 3
    resumed = [dict(t.params) for t in resume_experiment("cut", store).trials]
    assert resumed[:3] == whole[:3] and resumed[3:] == whole[3:], (resumed, whole)
    store.close()


@pytest.mark.parametrize("executor,lost", [({"kind": "inline"}, [3]), ({"kind": "process", "workers": 2}, [2, 3])],
                         ids=["inline-one-lost", "process-two-lost"])
@pytest.mark.parametrize("strategy", ["bo", "qmc"])
def test_a_run_killed_mid_trial_resumes_without_redrawing_the_lost_trials_design_points(project, strategy, executor,
                                                                                         lost):
    """The coordinator is SIGKILLed while the last trials run (trial 3 inline: the trial kills its own process;
    with two workers trial 2 is still running when trial 3 kills its worker's parent), so the last trials on record
    are running ones, lost. bo's start-up here is 5 Sobol points, and the lost trials hold some of them. Resume re-runs them with their own configurations, and must not hand the design points
    they took to new trials: the design (bo's Sobol start-up, QMC's sequence) goes on past every trial number on
    record, not past the finished trials only (the next new trials were given the lost trials' points again)."""
    import json

    project.write("die_once.py", """
        import os, pathlib, signal, time
        def objective(config, trial):
            marker = pathlib.Path(f"first-run-trial-{trial.number}")
            if marker.exists():  # the first run only
                action = marker.read_text()
                marker.unlink()
                if action == "kill-self":  # an inline trial runs in the coordinator
                    os.kill(os.getpid(), signal.SIGKILL)
                if action == "kill-parent":  # a worker's parent is the coordinator
                    os.kill(os.getppid(), signal.SIGKILL)
                time.sleep(60)  # running when the coordinator dies (its worker then ends it)
            return (config["x"] - 0.3) ** 2 + (config["y"] - 0.6) ** 2
    """)
    for number in lost:
        action = "hang" if number != lost[-1] else "kill-self" if executor["kind"] == "inline" else "kill-parent"
        (project.root / f"first-run-trial-{number}").write_text(action)
    spec = project.write_spec(project.spec(
        name="killed", strategy=strategy, budget={"trials": 8}, seed=5, executor=executor,
        space={"x": {"type": "float", "low": 0.0, "high": 1.0}, "y": {"type": "float", "low": 0.0, "high": 1.0}},
        trial={"function": "die_once:objective"}))
    killed = project.cli("run", str(spec), "--quiet")
    assert killed.returncode == -9, (killed.returncode, killed.stderr)
    before = {t["number"]: t for t in project.trials("killed")}
    assert [before[n]["state"] for n in sorted(before)] == ["completed"] * lost[0] + ["running"] * len(lost)
    from tunesmith.runner import resume_experiment  # in this process: the resume, not its CLI, is the subject
    from tunesmith.storage import SQLStore

    store = SQLStore(project.storage, create=False)
    try:
        assert resume_experiment("killed", store).status.value == "completed"
    finally:
        store.close()
    trials = project.trials("killed")
    assert [t["state"] for t in trials] == ["completed"] * 8
    for number in lost:
        assert trials[number]["params"] == before[number]["params"] and trials[number]["attempts"] == 2, \
            "a lost trial re-ran as it was"
    configurations = [json.dumps(t["params"], sort_keys=True) for t in trials]
    assert len(set(configurations)) == 8, f"a resumed trial redrew an earlier one's design point: {configurations}"


def test_the_python_api_says_the_plan_s_warnings_as_tunesmith_run_does(project, capsys):
    """`tunesmith run` prints what its checks warn of before the run starts (a grid larger than the budget); the
    Python API dropped them: run() prepared the plan inside run_experiment and never said its warnings. Now a
    listener that shows warnings gets them, and stderr does when none does."""
    from tunesmith.events import RunListener

    class Warned(RunListener):
        def __init__(self) -> None:
            self.said: list[str] = []

        def warning(self, message: str) -> None:
            self.said.append(message)

    space = {"x": {"type": "float", "low": 0.0, "high": 1.0, "step": 0.01}}
    spec = project.spec(name="grid-warned", space=space, strategy="grid", budget={"trials": 2},
                        trial={"function": "objectives:noop"}, executor={"kind": "inline"})
    tunesmith.run(spec, storage=project.storage)
    assert "grid with 101 configurations, more than budget.trials (2)" in capsys.readouterr().err
    listener = Warned()
    tunesmith.run({**spec, "name": "grid-heard"}, storage=project.storage, listener=listener)
    assert any("grid with 101 configurations" in w for w in listener.said)
    assert "grid with 101" not in capsys.readouterr().err


def test_resume_with_more_trials_gives_a_finished_experiment_more_informed_by_those_it_has(project):
    """A finished experiment could not be given more trials: `run` with a raised budget was refused, pointing at
    `resume`, which stopped at once at the recorded budget (review R3). `resume NAME --trials N` raises it (an
    audited `budget_raised`), and the strategy goes on from the trials it has: a grid walked in order proposes its
    5th and 6th configurations, not its first two again."""
    import json

    grid = {"c": {"type": "categorical", "choices": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]}}
    written = project.spec(name="more", space=grid, strategy="grid", budget={"trials": 4},
                           trial={"function": "objectives:noop"}, executor={"kind": "inline"})
    path = project.write_spec(written)
    assert project.cli("run", str(path), "--quiet").returncode == 0
    assert [t["number"] for t in project.trials("more")] == [0, 1, 2, 3]
    raised = project.write_spec({**written, "budget": {"trials": 6}}, "more6.yaml")
    refused = project.cli("run", str(raised), "--quiet")
    assert refused.returncode == 2 and "`tunesmith resume more --trials 6`" in refused.stderr, refused.stderr

    lower = project.cli("resume", "more", "--trials", "3", "--quiet")
    assert lower.returncode == 2 and "Traceback" not in lower.stderr
    assert "--trials: experiment 'more' has a trial budget of 4 already" in lower.stderr, lower.stderr
    assert "give at least 4 (equal: just resumes)" in lower.stderr, lower.stderr
    same = project.cli("resume", "more", "--trials", "4", "--quiet")  # the budget it has: a plain resume
    assert same.returncode == 0 and len(project.trials("more")) == 4, same.stderr
    proc = project.cli("resume", "more", "--trials", "6", "--quiet")
    assert proc.returncode == 0, proc.stderr
    trials = project.trials("more")
    assert [t["number"] for t in trials] == [0, 1, 2, 3, 4, 5]
    assert [t["params"]["c"] for t in trials] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    audit = project.cli("audit", "more", "--json")
    assert audit.returncode == 0, audit.stderr
    [event] = [e for e in json.loads(audit.stdout) if e["kind"] == "budget_raised"]
    assert (event["detail"]["budget"], event["detail"]["old"], event["detail"]["new"]) == (
        ["trials"], {"trials": 4}, {"trials": 6}), event


def test_resume_with_fewer_trials_from_python_names_the_argument_not_the_cli_flag(project):
    """`tunesmith.resume(NAME, trials=2)` raised `UserInputError: --trials: ...`, a flag the caller never used."""
    import tunesmith
    from tunesmith.errors import UserInputError

    path = project.write_spec(project.spec(name="pyd", budget={"trials": 3}, trial={"function": "objectives:noop"},
                                           executor={"kind": "inline"}))
    tunesmith.run(str(path), storage=project.storage)
    with pytest.raises(UserInputError) as refused:
        tunesmith.resume("pyd", trials=2, storage=project.storage)
    assert str(refused.value).startswith("trials=: ") and "--trials" not in str(refused.value), refused.value
    assert "give at least 3 (equal: just resumes)" in str(refused.value), refused.value


@pytest.mark.parametrize("budget", [{"trials": 50, "wall_time": "1s"}, {"trials": None, "wall_time": "1s"}])
def test_resume_with_more_trials_after_a_wall_time_stop_is_refused_saying_the_wall_time_stops_it(project, budget):
    """`resume NAME --trials N` on an experiment its wall time stopped recorded the raise, ran nothing and exited 0;
    with the wall time alone it said "resume it without --trials", which runs nothing either. Refused (exit 2)
    naming budget.wall_time, with nothing written."""
    import json

    path = project.write_spec(project.spec(name="wt", budget=budget, executor={"kind": "inline"},
                                           trial={"function": "objectives:slow", "env": {"SLOW_SECONDS": "0.4"}}))
    assert project.cli("run", str(path), "--quiet").returncode == 0
    before = len(project.trials("wt"))
    proc = project.cli("resume", "wt", "--trials", "60", "--quiet")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "stopped by its wall-time budget of 1s" in proc.stderr and "budget.wall_time" in proc.stderr, proc.stderr
    assert "without --trials" not in proc.stderr and "--wall-time D" in proc.stderr, proc.stderr
    audit = json.loads(project.cli("audit", "wt", "--json").stdout)
    assert not [e for e in audit if e["kind"] == "budget_raised"] and len(project.trials("wt")) == before


def test_resume_with_more_wall_time_gives_a_run_its_wall_time_stopped_more_trials(project):
    """A run its wall time stopped could not be given more time: `resume --trials` runs nothing (refused above),
    and there was no `--wall-time` (walk-t 6; Optuna's second `optimize(timeout=...)`). `resume NAME --wall-time D`
    raises the recorded wall-time budget, audited as `budget_raised` naming it; with --trials, both in one change."""
    import json

    import tunesmith
    from tunesmith.errors import UserInputError

    path = project.write_spec(project.spec(name="wt", budget={"trials": 50, "wall_time": "1s"},
                                           executor={"kind": "inline"},
                                           trial={"function": "objectives:slow", "env": {"SLOW_SECONDS": "0.3"}}))
    assert project.cli("run", str(path), "--quiet").returncode == 0
    first = len(project.trials("wt"))
    for flag, said in (("0.5s", "has a wall-time budget of 1s already; --wall-time only raises it"),
                       ("soon", "--wall-time: ")):
        refused = project.cli("resume", "wt", "--wall-time", flag, "--quiet")
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
        assert said in refused.stderr, (flag, refused.stderr)
    proc = project.cli("resume", "wt", "--wall-time", "3s", "--quiet")
    assert proc.returncode == 0, proc.stderr
    second = len(project.trials("wt"))
    assert second > first + 1, (first, second)
    assert project.cli("resume", "wt", "--trials", "60", "--wall-time", "5s", "--quiet").returncode == 0
    third = len(project.trials("wt"))
    assert third > second, (second, third)
    with pytest.raises(UserInputError, match="^wall_time=: "):
        tunesmith.resume("wt", wall_time="ten minutes", storage=project.storage)
    tunesmith.resume("wt", wall_time=6.5, storage=project.storage)
    audit = json.loads(project.cli("audit", "wt", "--json").stdout)
    assert [(e["detail"]["budget"], e["detail"]["old"], e["detail"]["new"]) for e in audit
            if e["kind"] == "budget_raised"] == [
        (["wall_time"], {"wall_time": 1.0}, {"wall_time": 3.0}),
        (["trials", "wall_time"], {"trials": 50, "wall_time": 3.0}, {"trials": 60, "wall_time": 5.0}),
        (["wall_time"], {"wall_time": 5.0}, {"wall_time": 6.5})]


def test_resume_with_more_wall_time_alone_after_a_trial_budget_stop_is_refused_naming_trials(project):
    """`resume NAME --wall-time D` alone on an experiment its trial budget stopped recorded the raise, ran nothing
    and exited 0: the user asked for more time and silently got nothing. Refused (exit 2) naming budget.trials and
    `--trials N`, with nothing written; from Python, as `wall_time=` and `trials=N`."""
    import json

    import tunesmith
    from tunesmith.errors import UserInputError

    path = project.write_spec(project.spec(name="tb", budget={"trials": 2, "wall_time": "1h"},
                                           trial={"function": "objectives:noop"}, executor={"kind": "inline"}))
    assert project.cli("run", str(path), "--quiet").returncode == 0
    proc = project.cli("resume", "tb", "--wall-time", "2h", "--quiet")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "--wall-time: experiment 'tb' was stopped by its trial budget of 2 (budget.trials" in proc.stderr, \
        proc.stderr
    assert "--trials N" in proc.stderr, proc.stderr
    with pytest.raises(UserInputError) as refused:
        tunesmith.resume("tb", wall_time="2h", storage=project.storage)
    assert str(refused.value).startswith("wall_time=: ") and "trials=N" in str(refused.value), refused.value
    audit = json.loads(project.cli("audit", "tb", "--json").stdout)
    assert not [e for e in audit if e["kind"] == "budget_raised"] and len(project.trials("tb")) == 2
    assert project.cli("resume", "tb", "--trials", "3", "--wall-time", "2h", "--quiet").returncode == 0
    assert len(project.trials("tb")) == 3


def test_resume_with_more_trials_after_a_grid_ran_out_is_refused_saying_so(project):
    """An exhausted grid ends the run before its trial budget; `resume --trials N` then recorded the raise and ran
    nothing, exit 0. Refused (exit 2) with nothing written."""
    grid = {"c": {"type": "categorical", "choices": [0.0, 0.5, 1.0]}}
    path = project.write_spec(project.spec(name="walked", space=grid, strategy="grid", budget={"trials": 10},
                                           trial={"function": "objectives:noop"}, executor={"kind": "inline"}))
    assert project.cli("run", str(path), "--quiet").returncode == 0
    proc = project.cli("resume", "walked", "--trials", "20", "--quiet")
    assert proc.returncode == 2 and "every configuration" in proc.stderr, proc.stderr
    audit = project.cli("audit", "walked", "--json")
    assert "budget_raised" not in audit.stdout and len(project.trials("walked")) == 3, audit.stdout


def test_a_grid_run_out_is_known_by_its_stop_kind_and_an_older_record_by_its_reason(project):
    """Whether `resume --trials` is refused for a grid run out hung on the last run_ended reason equalling a sentence
    (review engine, item 6): rewording it would stop the refusal for every record. The event keeps the stop's kind
    (``stop``), which is compared; an event recorded before, with its reason alone, is still known by it."""
    import json
    import time

    from tunesmith.audit import AuditKind
    from tunesmith.storage import SQLStore

    grid = {"c": {"type": "categorical", "choices": [0.0, 1.0]}}
    for name in ("walked", "older"):
        path = project.write_spec(project.spec(name=name, space=grid, strategy="grid", budget={"trials": 10},
                                               trial={"function": "objectives:noop"}, executor={"kind": "inline"}))
        assert project.cli("run", str(path), "--quiet").returncode == 0
    audit = json.loads(project.cli("audit", "walked", "--json").stdout)
    assert [e["detail"].get("stop") for e in audit if e["kind"] == "run_ended"] == ["every_configuration_proposed"]
    store = SQLStore(project.storage, create=False)
    store.record_event(store.experiment("older").id, AuditKind.RUN_ENDED, time.time(), detail={
        "status": "completed", "actor": "ann", "reason": "the strategy has proposed every configuration"})
    store.close()
    proc = project.cli("resume", "older", "--trials", "20", "--quiet")
    assert proc.returncode == 2 and "every configuration" in proc.stderr, proc.stderr


def test_resume_with_more_trials_is_refused_before_raising_while_another_coordinator_runs_it_and_repeats(project):
    """`resume NAME --trials N` raised the budget (and audited it) before the resume met the live lease holder and
    was refused; the same command again then exited 2 ("a trial budget of N already"). Now a held experiment is
    refused with nothing written, and --trials N equal to the recorded budget is a plain resume (review D, item 4)."""
    import json
    import time

    from tunesmith.lease_holders import lease_owner_id
    from tunesmith.runner import LEASE_TTL
    from tunesmith.storage import SQLStore

    path = project.write_spec(project.spec(name="held", budget={"trials": 2}, trial={"function": "objectives:noop"},
                                           executor={"kind": "inline"}))
    assert project.cli("run", str(path), "--quiet").returncode == 0
    store = SQLStore(project.storage, create=False)
    exp_id = store.experiment("held").id
    holder = lease_owner_id()  # this test's process: alive
    assert store.acquire_lease(exp_id, holder, time.time(), LEASE_TTL) is None
    try:
        refused = project.cli("resume", "held", "--trials", "3", "--quiet")
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
        assert "being run by another coordinator" in refused.stderr and "--trials 3" in refused.stderr, refused.stderr
        assert store.experiment("held").spec["budget"]["trials"] == 2, "nothing raised"
    finally:
        store.release_lease(exp_id, holder)
        store.close()
    for _ in range(2):  # the same command twice: raised once, then the budget it has
        proc = project.cli("resume", "held", "--trials", "3", "--quiet")
        assert proc.returncode == 0, proc.stderr
    assert len(project.trials("held")) == 3
    audit = json.loads(project.cli("audit", "held", "--json").stdout)
    assert [(e["detail"]["old"], e["detail"]["new"]) for e in audit if e["kind"] == "budget_raised"] == [
        ({"trials": 2}, {"trials": 3})]


def test_raising_a_budget_to_resume_reads_the_experiment_once(project, monkeypatch):
    """`resume NAME --trials N --wall-time D` read the experiment three times before the resume did (the lease check,
    the can-more-run check, the raise; review engine, item 5): once, and the raise still recorded."""
    from tunesmith.clock import SystemClock
    from tunesmith.raised_budget import raise_budget_to_resume
    from tunesmith.storage import SQLStore

    path = project.write_spec(project.spec(name="read-once", budget={"trials": 1, "wall_time": "1h"},
                                           trial={"function": "objectives:noop"}, executor={"kind": "inline"}))
    assert project.cli("run", str(path), "--quiet").returncode == 0
    store = SQLStore(project.storage, create=False)
    reads: list[str] = []
    read = store.experiment
    monkeypatch.setattr(store, "experiment", lambda name: (reads.append(name), read(name))[1])
    raise_budget_to_resume(store, store.url, "read-once", 2, SystemClock(), wall_time=7200.0)
    assert reads == ["read-once"]
    budget = read("read-once").spec["budget"]
    assert (budget["trials"], budget["wall_time"]) == (2, 7200.0), budget
    store.close()


def test_enqueued_configurations_are_evaluated_first_in_order_and_counted_in_the_budget(project):
    """No way to evaluate known configurations first (Optuna's study.enqueue_trial; review R6): the spec's
    `enqueue` runs them first, in order, as trials of the budget; the strategy goes on after them."""
    space = {"x": {"type": "float", "low": 0.0, "high": 1.0},
             "kind": {"type": "categorical", "choices": ["a", "b"]},
             "depth": {"type": "int", "low": 1, "high": 5, "when": {"kind": "b"}}}
    known = [{"x": 0.25, "kind": "a"}, {"x": 0.75, "kind": "b", "depth": 3}]
    path = project.write_spec(project.spec(name="known", space=space, enqueue=known, budget={"trials": 4},
                                           trial={"function": "objectives:noop"}, executor={"kind": "inline"}))
    proc = project.cli("run", str(path), "--quiet")
    assert proc.returncode == 0, proc.stderr
    trials = project.trials("known")
    assert [t["params"] for t in trials[:2]] == known and len(trials) == 4


def test_a_resumed_run_does_not_evaluate_again_an_enqueued_configuration_written_with_an_int_for_a_float(project):
    """`enqueue: [{n: 1}]` for a float `n` was kept as written while the trial was recorded as `n: 1.0`: on resume
    the queue's key missed the record's and the completed configuration ran again (review D, item 1)."""
    space = {"x": {"type": "float", "low": 0.0, "high": 1.0}, "n": {"type": "float", "low": 0.0, "high": 5.0}}
    known = [{"x": 0.25, "n": 1}, {"x": 0.5, "n": 2}, {"x": 0.75, "n": 3}]
    path = project.write_spec(project.spec(name="ints", space=space, enqueue=known, budget={"trials": 1},
                                           trial={"function": "objectives:noop"}, executor={"kind": "inline"}))
    assert project.cli("run", str(path), "--quiet").returncode == 0
    proc = project.cli("resume", "ints", "--trials", "3", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert [t["params"] for t in project.trials("ints")] == [{"x": 0.25, "n": 1.0}, {"x": 0.5, "n": 2.0},
                                                              {"x": 0.75, "n": 3.0}]


def test_a_run_killed_in_its_enqueued_list_resumes_each_configuration_once(project):
    """The coordinator is SIGKILLed in trial 1 of the enqueued list. On resume trial 1 re-runs with its own
    configuration, and the queue must not hand that configuration out again (it did: trial 2 was trial 1's
    configuration a second time, review D, item 2); the rest of the list follows, then the strategy."""
    import json

    project.write("die_once.py", """
        import os, pathlib, signal
        def objective(config, trial):
            marker = pathlib.Path(f"first-run-trial-{trial.number}")
            if marker.exists():
                marker.unlink()
                os.kill(os.getpid(), signal.SIGKILL)  # an inline trial runs in the coordinator
            return config["x"]
    """)
    (project.root / "first-run-trial-1").write_text("kill-self")
    known = [{"x": 0.25}, {"x": 0.5}, {"x": 0.75}]
    path = project.write_spec(project.spec(name="listed", enqueue=known, budget={"trials": 5}, seed=2,
                                           trial={"function": "die_once:objective"}, executor={"kind": "inline"}))
    killed = project.cli("run", str(path), "--quiet")
    assert killed.returncode == -9, (killed.returncode, killed.stderr)
    assert [t["state"] for t in project.trials("listed")] == ["completed", "running"]
    proc = project.cli("resume", "listed", "--quiet")
    assert proc.returncode == 0, proc.stderr
    trials = project.trials("listed")
    assert [t["params"] for t in trials[:3]] == known and trials[1]["attempts"] == 2
    configurations = [json.dumps(t["params"], sort_keys=True) for t in trials]
    assert len(trials) == 5 and len(set(configurations)) == 5, configurations


def test_an_enqueued_configuration_a_peer_runs_is_taken_off_the_queue():
    """Under --join a peer's running trials reach the strategy through adopt: each coordinator ran the whole
    enqueue list, since adopt left the peer's configuration in the queue (review D, item 2)."""
    from tunesmith.space import Categorical, SearchSpace
    from tunesmith.strategy.enqueued import EnqueuedFirst
    from tunesmith.strategy.grid import GridStrategy

    space = SearchSpace.from_domains({"x": Categorical([0.0, 0.25, 0.5, 0.75])})
    strategy = EnqueuedFirst(GridStrategy(space), [{"x": 0.25}, {"x": 0.5}])
    strategy.adopt({"x": 0.25})  # the peer's
    assert strategy.ask().params == {"x": 0.5}
    assert strategy.ask().params not in ({"x": 0.25}, {"x": 0.5})


@pytest.mark.parametrize(("config", "said"), [
    ({"x": 1.5, "kind": "a"}, "enqueue[0].x: value 1.5 is outside the domain"),
    ({"kind": "b", "x": 0.5}, "enqueue[0].depth: missing a value for this active parameter"),
    ({"kind": "a", "x": 0.5, "depth": 2}, "enqueue[0].depth: not an active parameter"),
])
def test_an_enqueued_configuration_outside_the_space_is_refused_naming_it(project, config, said):
    space = {"x": {"type": "float", "low": 0.0, "high": 1.0},
             "kind": {"type": "categorical", "choices": ["a", "b"]},
             "depth": {"type": "int", "low": 1, "high": 5, "when": {"kind": "b"}}}
    path = project.write_spec(project.spec(name="bad", space=space, enqueue=[config]))
    proc = project.cli("validate", str(path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert said in proc.stderr, proc.stderr


SLIPS_SPACE = {"x": {"type": "float", "low": 1.0e-4, "high": 2.0, "log": True},
               "n": {"type": "int", "low": 1, "high": 10},
               "c": {"type": "categorical", "choices": ["a", "b"]},
               "f": {"type": "categorical", "choices": [0.5, 1.0]}}


def test_an_enqueued_value_is_read_as_the_spec_reads_numbers(project):
    """`x: 1e-3` (YAML 1.1 reads it as text) was refused as "outside the domain [0.0001, 2.0]", though `low: 1e-4`
    is taken; a whole float for an int and an int for a float choice are taken too, as the spec's own fields do."""
    from tunesmith.spec import spec_from_dict

    config = {"x": "1e-3", "n": 3.0, "c": "a", "f": 1}
    proc = project.cli("validate", str(project.write_spec(project.spec(name="slips", space=SLIPS_SPACE,
                                                                        enqueue=[config]))))
    assert proc.returncode == 0, proc.stderr
    spec = spec_from_dict(project.spec(name="slips", space=SLIPS_SPACE, enqueue=[config]))
    assert spec.enqueue == ({"x": 0.001, "n": 3, "c": "a", "f": 1.0},)
    assert [type(v) for v in spec.enqueue[0].values()] == [float, int, str, float]


@pytest.mark.parametrize(("slip", "said"), [
    ({"x": "1"}, "enqueue[0].x: must be a number; got '1' (text: write it unquoted)"),
    ({"x": True}, "enqueue[0].x: must be a number; got True"),
    ({"n": 3.5}, "enqueue[0].n: must be a whole number; got 3.5"),
    ({"n": "3"}, "enqueue[0].n: must be a whole number; got '3' (text: write it unquoted)"),
    ({"c": False}, "enqueue[0].c: must be one of the choices ['a', 'b']; got False (YAML reads an unquoted yes, no, "
                   "on, off, true or false as a boolean: quote it)"),
    ({"f": "0.5"}, "enqueue[0].f: must be one of the choices [0.5, 1.0]; got '0.5' (text: write it unquoted)"),
])
def test_an_enqueued_value_of_the_wrong_type_is_refused_saying_what_was_expected(project, slip, said):
    config = {"x": 0.1, "n": 3, "c": "a", "f": 0.5, **slip}
    proc = project.cli("validate", str(project.write_spec(project.spec(name="slip", space=SLIPS_SPACE,
                                                                       enqueue=[config]))))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"error: {said}" in " ".join(proc.stderr.split()), proc.stderr


def test_more_enqueued_configurations_than_the_trial_budget_are_warned_of_naming_how_many(project):
    """Five configurations under a budget of 3: the run evaluated three and stopped, the other two dropped without
    a word (the grid larger than the budget is warned of)."""
    known = [{"x": 0.1}, {"x": 0.2}, {"x": 0.3}, {"x": 0.4}, {"x": 0.5}]
    path = project.write_spec(project.spec(name="many", enqueue=known, budget={"trials": 3}))
    warned = ("enqueue holds 5 configurations, more than budget.trials (3): the last 2 will not run; raise "
              "budget.trials to 5")
    for command in ("validate", "run"):
        proc = project.cli(command, str(path))
        assert proc.returncode == 0, proc.stderr
        assert warned in " ".join(proc.stderr.split()), (command, proc.stderr)
    fits = project.cli("validate", str(project.write_spec(project.spec(name="fits", enqueue=known[:3],
                                                                       budget={"trials": 3}))))
    assert fits.returncode == 0 and "enqueue holds" not in fits.stderr, fits.stderr


def test_an_enqueued_float_off_its_step_grid_is_refused_as_an_int_is(project):
    space = {"x": {"type": "float", "low": 0.0, "high": 2.0, "step": 0.5}}
    proc = project.cli("validate", str(project.write_spec(project.spec(name="offgrid", space=space,
                                                                       enqueue=[{"x": 0.25}]))))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert ("error: enqueue[0].x: value 0.25 is not on its grid (low 0, step 0.5): the nearest points are 0.0 and 0.5"
            in " ".join(proc.stderr.split())), proc.stderr
    on = project.cli("validate", str(project.write_spec(project.spec(name="ongrid", space=space,
                                                                     enqueue=[{"x": 1.5}]))))
    assert on.returncode == 0, on.stderr
