"""``bo`` with ``cost_aware``: cost-cooled expected improvement (issue #16 item 5): its options are checked, it
prefers the cheap region early (cost from the ``cost`` metric, or from the trials' durations), and it cools to
plain EI as the budget is spent."""

from __future__ import annotations

import math
import statistics

import pytest

import tunesmith
from tunesmith.records import Direction, TrialState
from tunesmith.space import Float, SearchSpace
from tunesmith.strategy import build_strategy, decide
from tunesmith.strategy.bayes import BayesStrategy

# The loss ignores x; the cost grows 150-fold with it. Plain EI has no reason to avoid large x.
SPACE = SearchSpace.from_domains({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})


def loss(params: dict) -> float:
    return (params["y"] - 0.37) ** 2


def cost(params: dict) -> float:
    return math.exp(5.0 * params["x"])


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def proposals_x(cost_aware: bool, seed: int, as_metric: bool, trials: int = 10, **options) -> list[float]:
    """x of the model-based proposals (after the start-up design) in a run where each trial takes ``cost``."""
    clock = FakeClock()
    strategy = BayesStrategy(SPACE, Direction.MINIMIZE, seed, clock=clock, cost_clock=lambda: 0.0,
                             cost_aware=cost_aware, **options)
    xs = []
    for _ in range(trials):
        p = strategy.ask()
        c = cost(p.params)
        clock.now += c if not as_metric else 1.0
        metrics = {"loss": loss(p.params), "cost": c} if as_metric else {"loss": loss(p.params)}
        strategy.tell(p.token, TrialState.COMPLETED, [loss(p.params)], metrics)
        if strategy.last_mode == "model":
            xs.append(float(p.params["x"]))
    return xs


def test_options_are_checked_with_the_field_named():
    for options, field in (({"cost_aware": "yes"}, "strategy.cost_aware"),
                           ({"cost_aware": True, "cost_budget": 0}, "strategy.cost_budget"),
                           ({"cost_aware": True, "cost_budget": "25$"}, "strategy.cost_budget"),
                           ({"cost_aware": True, "cooling_trials": 0}, "strategy.cooling_trials"),
                           ({"cost_aware": True, "cooling_trials": 2.5}, "strategy.cooling_trials"),
                           ({"cost_budget": 10}, "strategy.cost_budget"),          # without cost_aware
                           ({"cost_aware": True, "cost_weight": 1}, "strategy.cost_weight")):
        with pytest.raises(tunesmith.SpecError, match=field):
            decide("bo", options, SPACE, 40, 1, 1)
    # without a cost budget it cools over the trial budget
    decision = decide("bo", {"cost_aware": True}, SPACE, 40, 1, 1)
    assert decision.options == {"cost_aware": True, "cooling_trials": 40}
    strategy = build_strategy(decision, SPACE, [Direction.MINIMIZE], 0, 1)
    assert isinstance(strategy, BayesStrategy) and strategy.cost_aware and strategy.cooling_trials == 40
    strategy = build_strategy(decide("bo", {"cost_aware": True, "cost_budget": 25}, SPACE, 40, 1, 1), SPACE,
                              [Direction.MINIMIZE], 0, 1)
    assert isinstance(strategy, BayesStrategy) and strategy.cost_budget == 25.0
    plain = build_strategy(decide("bo", {}, SPACE, 40, 1, 1), SPACE, [Direction.MINIMIZE], 0, 1)
    assert isinstance(plain, BayesStrategy) and not plain.cost_aware
    assert decide("auto", {}, SPACE, 40, 1, 1).options == {}       # auto leaves it off (benchmarks/RESULTS.md)


@pytest.mark.parametrize("as_metric", [True, False], ids=["cost-metric", "duration"])
def test_early_proposals_favour_the_cheap_region(as_metric):
    aware, plain = [], []
    for seed in range(3):
        aware += proposals_x(True, seed, as_metric, cooling_trials=200)
        plain += proposals_x(False, seed, as_metric)
    assert len(aware) == len(plain) == 15          # the first five model-based proposals of three seeds
    # cost e^(5x): the cost-aware proposals sit at the cheap end; plain EI spreads over the whole range. (Later,
    # once EI near the cheap incumbents is exhausted by many nats, even cost-cooled EI goes where it is dear:
    # the penalty is at most log(150) = 5 nats.)
    assert statistics.mean(aware) < 0.1 and statistics.mean(plain) > 0.2
    assert statistics.mean(cost({"x": x}) for x in aware) < 0.5 * statistics.mean(cost({"x": x}) for x in plain)


def test_alpha_cools_from_one_to_zero_as_the_cost_budget_is_spent():
    clock = FakeClock()
    strategy = BayesStrategy(SPACE, Direction.MINIMIZE, 0, clock=clock, cost_clock=lambda: 0.0, cost_aware=True,
                             cost_budget=1000.0)
    alphas, spent = [], 0.0
    while spent < 1200.0:
        p = strategy.ask()
        if strategy.last_mode == "model":
            alphas.append(strategy.last_alpha)
        c = cost(p.params)
        spent += c
        strategy.tell(p.token, TrialState.COMPLETED, [loss(p.params)], {"cost": c})
    assert alphas[0] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(alphas, alphas[1:], strict=False))   # never warms up again
    assert alphas[-1] == 0.0                                                 # spent: plain EI


def test_replay_restores_the_cost_model_from_the_record():
    from tunesmith.records import TrialRecord

    history = [TrialRecord(number=i, params={"x": x, "y": y}, state=TrialState.COMPLETED, seed=i,
                           values=(loss({"y": y}),),
                           metrics={"cost": cost({"x": x})})
               for i, (x, y) in enumerate([(0.1, 0.2), (0.9, 0.5), (0.5, 0.8), (0.3, 0.35), (0.7, 0.1), (0.2, 0.6)])]
    strategy = BayesStrategy(SPACE, Direction.MINIMIZE, 0, cost_clock=lambda: 0.0, cost_aware=True)
    strategy.replay(history)
    assert strategy._costs == [cost(t.params) for t in history]
    p = strategy.ask()
    assert strategy.last_mode == "model" and strategy.last_alpha > 0.8 and p.params["x"] < 0.2


def test_a_bad_option_in_a_spec_is_one_clear_error(project):
    project.write_spec(project.spec(name="c", strategy={"name": "bo", "cost_aware": "often"}))
    proc = project.cli("validate", "c.yaml")
    assert proc.returncode == 2, proc.stderr
    assert "strategy.cost_aware" in proc.stderr and "true or false" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_priced_run_with_cost_aware_bo_completes(project):
    spec = project.spec(name="priced", strategy={"name": "bo", "cost_aware": True}, budget={"trials": 9},
                        executor={"kind": "inline"}, cost={"cpu_hour": 0.04})
    result = tunesmith.run(spec, storage=project.storage)
    assert result.experiment.strategy == "bo"
    assert [t.state for t in result.trials] == [TrialState.COMPLETED] * 9
    assert all("cost" in t.metrics for t in result.trials)      # the signal the cost model learns from


def test_a_trial_of_unknown_cost_adds_nothing_to_the_cost_signal():
    """A priced trial whose measurement never arrived (``cost_unknown``) has no ``cost``: its seconds must not join
    the dollars, neither when told nor when replayed (60 s among costs of 0.01 ended the cooling at once)."""
    from tunesmith.records import TrialRecord

    clock = FakeClock()
    strategy = BayesStrategy(SPACE, Direction.MINIMIZE, 0, clock=clock, cost_clock=lambda: 0.0, cost_aware=True,
                             cost_budget=1.0)
    for metrics in ({"cost": 0.01}, {"cost": 0.01}, {"cost_unknown": 1.0}):
        p = strategy.ask()
        clock.now += 60.0
        strategy.tell(p.token, TrialState.COMPLETED, [loss(p.params)], metrics)
    assert strategy._costs == [0.01, 0.01]
    replayed = BayesStrategy(SPACE, Direction.MINIMIZE, 0, cost_clock=lambda: 0.0, cost_aware=True, cost_budget=1.0)
    replayed.replay([TrialRecord(number=i, params={"x": 0.5, "y": 0.5}, state=TrialState.COMPLETED, seed=i,
                                 values=(0.1,), metrics=m, started_at=0.0, finished_at=60.0)
                     for i, m in enumerate(({"cost": 0.01}, {"cost_unknown": 1.0}))])
    assert replayed._costs == [0.01]
    # an unpriced run's signal is still its trials' durations
    unpriced = BayesStrategy(SPACE, Direction.MINIMIZE, 0, clock=clock, cost_clock=lambda: 0.0, cost_aware=True)
    p = unpriced.ask()
    clock.now += 2.5
    unpriced.tell(p.token, TrialState.COMPLETED, [loss(p.params)], {})
    assert unpriced._costs == [2.5]
