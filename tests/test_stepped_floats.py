"""A float parameter with a ``step`` reaches the trial code, the store and the CLI's output on its declared grid:
``low + k * step`` as the user wrote it (0.3), not the floating-point sum (0.30000000000000004), whichever strategy
proposed it; a resumed run still goes on as an uninterrupted one."""

from __future__ import annotations

import pytest

GRID = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
SPACE = {"dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.1},
         "units": {"type": "int", "low": 8, "high": 64, "log": True}}


@pytest.mark.parametrize("strategy", ["random", "tpe", "bo"])
def test_the_trial_function_and_the_record_get_values_on_the_declared_grid(project, strategy):
    project.write("seen.py", """
        def objective(config, trial):
            with open("seen.txt", "a") as f:
                f.write(repr(config["dropout"]) + "\\n")
            return (config["dropout"] - 0.3) ** 2 + abs(config["units"] - 20) / 100
    """)
    spec = project.write_spec(project.spec(name="stepped", strategy=strategy, budget={"trials": 24}, seed=0,
                                           executor={"kind": "inline"}, space=SPACE,
                                           trial={"function": "seen:objective"}))
    project.cli("run", str(spec), "--quiet", check=True)
    seen = (project.root / "seen.txt").read_text().split()
    assert "0.3" in seen and set(seen) <= {repr(v) for v in GRID}, seen
    trials = project.trials("stepped")
    assert len(trials) == 24
    assert {t["params"]["dropout"] for t in trials} <= set(GRID), [t["params"] for t in trials]
    assert all(isinstance(t["params"]["units"], int) and 8 <= t["params"]["units"] <= 64 for t in trials)


def test_a_resumed_bo_run_on_a_stepped_float_goes_on_as_an_uninterrupted_one(project):
    """bo's model is rebuilt from the record (the clean values): it proposes what the uninterrupted run, which
    learnt from its own proposals, did."""
    from tunesmith.events import RunListener
    from tunesmith.runner import resume_experiment, run_experiment
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage import SQLStore

    space = {"x": SPACE["dropout"], "units": SPACE["units"]}  # the project's objectives:quadratic reads x

    def spec(name):
        return spec_from_dict(project.spec(name=name, strategy="bo", budget={"trials": 16}, seed=4, space=space,
                                           executor={"kind": "inline"}, base_dir=str(project.root)))

    store = SQLStore(project.storage)
    whole_run = run_experiment(spec("whole"), store)
    assert [t.state.value for t in whole_run.trials] == ["completed"] * 16
    whole = [dict(t.params) for t in whole_run.trials]
    runners = []

    class StopAfterTen(RunListener):
        def trial_finished(self, trial, best):
            if trial.number == 9:
                runners[0].request_stop()

    cut = run_experiment(spec("cut"), store, StopAfterTen(), on_runner=runners.append)
    assert len(cut.trials) == 10, "the premise: the first run was stopped part-way, so the resume proposes"
    resumed = [dict(t.params) for t in resume_experiment("cut", store).trials]
    store.close()
    assert resumed == whole
    assert {p["x"] for p in whole} <= set(GRID), whole


@pytest.mark.parametrize("strategy", ["random", "tpe"])
def test_an_optuna_study_rebuilt_from_the_record_holds_what_the_live_study_held(strategy):
    """Optuna's study keeps its own stepped float (0.30000000000000004) for the trials it proposed; the record has
    the declared 0.3. A resume or a rebased warm start replays the record: the replayed study must be the live one,
    value for value, or the sampler learns from points it never proposed."""
    from tunesmith.records import Direction, TrialRecord, TrialState
    from tunesmith.space import Float, Int, SearchSpace
    from tunesmith.strategy.optuna_adapter import OptunaStrategy

    space = SearchSpace.from_domains({"x": Float(0.0, 0.5, step=0.1), "units": Int(8, 64, log=True)})
    live = OptunaStrategy(strategy, space, [Direction.MINIMIZE], 2, {})
    recorded = []
    for number in range(20):
        proposal = live.ask()
        assert proposal is not None
        value = (proposal.params["x"] - 0.3) ** 2
        live.tell(proposal.token, TrialState.COMPLETED, (value,))
        recorded.append(TrialRecord(number, TrialState.COMPLETED, proposal.params, seed=0, values=(value,)))
    assert 0.3 in {t.params["x"] for t in recorded}, "the record has the declared value"
    replayed = OptunaStrategy(strategy, space, [Direction.MINIMIZE], 2, {})
    replayed.replay(recorded)
    assert [t.params for t in replayed.study.trials] == [t.params for t in live.study.trials]
