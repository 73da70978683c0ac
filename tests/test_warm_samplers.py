"""How Optuna's samplers take a re-tune's parent trials under ``drift.retune.prior: transfer``: cmaes starts from
the parent's good region (Warm Starting CMA-ES), as usual where that cannot apply; TPE takes them as re-based
observations; NSGA-II takes them, re-based, as its first population; a re-tune with ``bo`` as its GP's prior
mean."""

from __future__ import annotations

import math

import numpy as np

from tunesmith.constraints import Constraint
from tunesmith.records import Direction, ParamValue, TrialState
from tunesmith.space import Categorical, Float, SearchSpace
from tunesmith.strategy import StrategyDecision, build_strategy
from tunesmith.strategy.optuna_adapter import WARM_CMAES_MIN_TRIALS
from tunesmith.strategy.warm_start import PriorMode, PriorTrial, WarmStart, WarmStartedStrategy

SPACE = SearchSpace.from_domains({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})
OLD_BEST, NEW_BEST = (0.85, 0.15), (0.8, 0.2)


def bowl(centre: tuple[float, float]) -> object:
    return lambda p: (p["x"] - centre[0]) ** 2 + (p["y"] - centre[1]) ** 2


def parent_trials(n: int) -> tuple[PriorTrial, ...]:
    rng = np.random.default_rng(7)
    loss = bowl(OLD_BEST)
    points = [{"x": float(a), "y": float(b)} for a, b in rng.uniform(size=(n, 2))]
    return tuple(PriorTrial(p, (loss(p),)) for p in points)  # type: ignore[operator]


def proposals(mode: PriorMode, prior: tuple[PriorTrial, ...], count: int, space: SearchSpace = SPACE,
              seed: int = 0) -> list[dict[str, ParamValue]]:
    """The first ``count`` proposals of a cmaes re-tune that re-evaluates the parent's best first."""
    inner = build_strategy(StrategyDecision("cmaes", {}, ""), space, [Direction.MINIMIZE], seed, 1)
    best = min(prior, key=lambda t: t.values[0]).params
    strategy = WarmStartedStrategy(inner, WarmStart("old", first=(best,), prior=prior, mode=mode))
    strategy.replay([])
    loss = bowl(NEW_BEST)
    out = []
    for _ in range(count):
        proposal = strategy.ask()
        assert proposal is not None
        out.append(proposal.params)
        strategy.tell(proposal.token, TrialState.COMPLETED, [loss(proposal.params)])  # type: ignore[operator]
    return out


def distance_to_new_best(params: dict[str, ParamValue]) -> float:
    return math.dist((float(params["x"]), float(params["y"])), NEW_BEST)


def test_the_first_generation_is_drawn_around_the_parents_good_region_not_the_centre() -> None:
    prior = parent_trials(40)
    # trial 0 is the re-evaluated old best; the next six (CMA-ES's population in 2-D) its first generation
    warm = proposals(PriorMode.TRANSFER, prior, 7)[1:]
    cold = proposals(PriorMode.NONE, prior, 7)[1:]
    warm_mean = float(np.mean([distance_to_new_best(p) for p in warm]))
    cold_mean = float(np.mean([distance_to_new_best(p) for p in cold]))
    assert warm_mean < 0.5 * cold_mean, (warm_mean, cold_mean)
    assert warm_mean < 0.2


def test_with_too_few_parent_trials_or_a_conditional_space_cmaes_starts_as_usual() -> None:
    few = parent_trials(WARM_CMAES_MIN_TRIALS - 1)
    assert proposals(PriorMode.TRANSFER, few, 8) == proposals(PriorMode.NONE, few, 8)

    conditional = SearchSpace.from_domains({
        "x": Float(0.0, 1.0), "y": Float(0.0, 1.0), "kind": Categorical(["a", "b"]),
        "z": Float(0.0, 1.0, when={"kind": "b"}),
    })
    prior = tuple(PriorTrial({**t.params, "kind": "a"} if i % 2 else {**t.params, "kind": "b", "z": 0.5}, t.values)
                  for i, t in enumerate(parent_trials(40)))
    assert (proposals(PriorMode.TRANSFER, prior, 8, conditional)
            == proposals(PriorMode.NONE, prior, 8, conditional))


def test_parent_trials_outside_the_new_space_are_left_out_not_an_error() -> None:
    narrower = SearchSpace.from_domains({"x": Float(0.0, 0.9), "y": Float(0.0, 1.0)})
    prior = parent_trials(60)
    assert any(t.params["x"] > 0.9 for t in prior)
    inside = tuple(t for t in prior if t.params["x"] <= 0.9)
    assert proposals(PriorMode.TRANSFER, prior, 8, narrower) == proposals(PriorMode.TRANSFER, inside, 8, narrower)
    assert proposals(PriorMode.TRANSFER, inside, 8, narrower) != proposals(PriorMode.NONE, inside, 8, narrower)


def tpe_retune(constraints: tuple[Constraint, ...] = ()) -> WarmStartedStrategy:
    inner = build_strategy(StrategyDecision("tpe", {}, ""), SPACE, [Direction.MINIMIZE], 0, 1, constraints=constraints)
    prior = parent_trials(20)
    best = min(prior, key=lambda t: t.values[0]).params
    strategy = WarmStartedStrategy(inner, WarmStart("old", first=(best,), prior=prior, mode=PriorMode.TRANSFER))
    strategy.replay([])
    proposal = strategy.ask()
    assert proposal is not None and proposal.params == best
    strategy.tell(proposal.token, TrialState.COMPLETED, [bowl(OLD_BEST)(best) + 0.25])  # type: ignore[operator]
    return strategy


def test_a_tpe_retune_replays_the_parent_trials_shifted_once_its_reevaluations_end() -> None:
    strategy = tpe_retune()
    assert strategy.taken_as is PriorMode.REBASED and strategy.shift is not None
    assert abs(strategy.shift[0] - 0.25) < 1e-12
    study = strategy.inner.study  # type: ignore[attr-defined]
    assert len(study.trials) == 20   # the re-evaluation and the 19 other parent trials, re-based
    assert min(t.value for t in study.trials) >= 0.25


def test_a_constrained_tpe_retune_gets_the_reevaluations_only() -> None:
    # the parent's records hold no constraint metrics: replayed, every one would count as infeasible
    strategy = tpe_retune((Constraint.parse("latency_ms <= 10"),))
    assert strategy.taken_as is PriorMode.NONE and strategy.shift is None
    assert len(strategy.inner.study.trials) == 1  # type: ignore[attr-defined]


def nsga2_retune(constraints: tuple[Constraint, ...] = ()) -> WarmStartedStrategy:
    """An nsga2 re-tune (two objectives, population 4) of 20 parent trials that re-evaluates their best first."""
    inner = build_strategy(StrategyDecision("nsga2", {"population_size": 4}, ""), SPACE,
                           [Direction.MINIMIZE, Direction.MINIMIZE], 0, 1, constraints=constraints)
    first, second = bowl(OLD_BEST), bowl(NEW_BEST)
    prior = tuple(PriorTrial(t.params, (first(t.params), second(t.params)))  # type: ignore[operator]
                  for t in parent_trials(20))
    best = min(prior, key=lambda t: t.values).params
    strategy = WarmStartedStrategy(inner, WarmStart("old", first=(best,), prior=prior, mode=PriorMode.TRANSFER))
    strategy.replay([])
    proposal = strategy.ask()
    assert proposal is not None and proposal.params == best
    old_values = next(t.values for t in prior if t.params == best)
    strategy.tell(proposal.token, TrialState.COMPLETED, [old_values[0] + 0.25, old_values[1] + 0.5])
    return strategy


def test_an_nsga2_retune_draws_its_first_parents_from_the_parent_trials_rebased() -> None:
    # Optuna's NSGA-II counts a trial in a population only by the generation stamp its sampler left: replayed
    # unstamped, the parent's trials were never parents, and the re-tune's first trials were random ones
    strategy = nsga2_retune()
    assert strategy.taken_as is PriorMode.REBASED and strategy.shift == (0.25, 0.5)
    child = strategy.ask()   # 19 replayed trials fill generation 0 (population 4): this is generation 1's
    assert child is not None
    study = strategy.inner.study  # type: ignore[attr-defined]
    sampler = study.sampler
    assert sampler.get_trial_generation(study, study.trials[child.token]) == 1
    parents = sampler.get_parent_population(study, 1)
    replayed = [t for t in study.trials[1:20]]   # trial 0 is the re-evaluation
    assert len(parents) == 4 and all(p in replayed for p in parents)
    front = sorted(p.values for p in parents)
    assert front[0][0] >= 0.25 and front[0][1] >= 0.5   # re-based onto the new level


def test_a_resumed_nsga2_retune_stamps_its_trials_with_the_generations_the_first_run_did() -> None:
    """On a resume the run's own trials were replayed first and the parent's after them, as if the parent's had come
    last: the trials asked after the re-evaluation went into generation 0 beside them (the first run: generation 1,
    the parent's trials having filled generation 0), every later generation one trial block too early."""
    from tunesmith.records import TrialRecord
    from tunesmith.strategy.optuna_adapter import _GENERATION_KEY

    first, second = bowl(NEW_BEST), bowl(OLD_BEST)
    strategy = nsga2_retune()
    own = [TrialRecord(number=0, state=TrialState.COMPLETED, params=strategy.warm.first[0], seed=0,
                       values=(0.0, 0.0))]   # (the re-evaluation's values: any, stamps are what is compared)
    for number in range(1, 9):
        proposal = strategy.ask()
        assert proposal is not None
        values = (first(proposal.params), second(proposal.params))  # type: ignore[operator]
        strategy.tell(proposal.token, TrialState.COMPLETED, list(values))
        own.append(TrialRecord(number=number, state=TrialState.COMPLETED, params=proposal.params, seed=0,
                               values=values))
    study = strategy.inner.study  # type: ignore[attr-defined]
    stamps = [t.system_attrs.get(_GENERATION_KEY) for t in study.trials]
    ran = [stamps[0], *stamps[20:]]          # the re-evaluation, then the 19 parent trials, then the new trials
    # the premise: Optuna's own stamps (the re-evaluation, asked with its parameters set, got none)
    assert ran == [None, 1, 1, 1, 1, 2, 2, 2, 2], ran

    inner = build_strategy(StrategyDecision("nsga2", {"population_size": 4}, ""), SPACE,
                           [Direction.MINIMIZE, Direction.MINIMIZE], 1, 1)
    resumed = WarmStartedStrategy(inner, strategy.warm)
    resumed.replay(own)
    parents = [p.params for p in strategy.warm.prior]   # (the re-evaluation's among them)
    replayed = [t.system_attrs.get(_GENERATION_KEY)
                for t in inner.study.trials if t.params not in parents]  # type: ignore[attr-defined]
    assert replayed == ran[1:], replayed


def test_a_constrained_nsga2_retune_gets_the_reevaluations_only() -> None:
    strategy = nsga2_retune((Constraint.parse("latency_ms <= 10"),))
    assert strategy.taken_as is PriorMode.NONE and strategy.shift is None
    assert len(strategy.inner.study.trials) == 1  # type: ignore[attr-defined]


def test_bo_takes_the_parent_trials_into_its_model() -> None:
    inner = build_strategy(StrategyDecision("bo", {}, ""), SPACE, [Direction.MINIMIZE], 0, 1)
    strategy = WarmStartedStrategy(inner, WarmStart("old", first=(), prior=parent_trials(12), mode=PriorMode.TRANSFER))
    strategy.replay([])
    assert strategy.taken_as is PriorMode.TRANSFER
    assert inner._transfer is not None  # type: ignore[attr-defined]  # the old landscape, the GP's prior mean
