"""`auto`: pick a strategy from the space, the budget, the objectives and the parallelism, and say why.

The rules are deliberately few and each one states its reason; the search-quality benchmark in
``benchmarks/search_quality`` is what may change them (see benchmarks/RESULTS.md):

1. a grid that fits in the trial budget: run all of it (its exact size, a conditional grid's included, counted
   without walking it: grid_size; one costly to count, a parameter conditioned on many parents, is searched by the
   rules below past 100,000 configurations). A float without a step has no grid of its own (a grid would cut it to
   5 values): with one, the space is searched by the rules below, and the reason says so where the 5-value grid
   would have fitted;
2. several objectives: NSGA-II on large budgets, multi-objective TPE on small ones;
3. one objective, no constraints and no early stopping: ``bo``, tunesmith's own Gaussian process (numpy and
   scipy, no torch), which beat TPE on the suite's smooth, integer, conditional and tabular problems (its encoding
   gives an inactive parameter a constant, which Optuna's GPSampler does not, and which is why that sampler fails
   on conditional spaces);
4. with early stopping, or with constraints: multivariate TPE, grouped for conditional spaces. TPE learns from
   the intermediate values of stopped trials (``bo``'s GP sees final values only), and models which
   configurations satisfy the constraints (Optuna's constraints_func), where ``bo`` models the objective alone and
   spends trials in the infeasible region (benchmarks/RESULTS.md, "Constrained search").

``bo``'s ``cost_aware`` option (cost-cooled EI) is never turned on here, a ``cost:`` section or a money budget
notwithstanding: at equal spent cost it did not beat plain ``bo`` on the recorded benchmarks
(benchmarks/RESULTS.md, "Cost-aware search").
"""

from __future__ import annotations

from tunesmith.space import Categorical, Float, SearchSpace
from tunesmith.space.grid_index import grid_size
from tunesmith.strategy.base import StrategyDecision

GRID_FLOAT_POINTS = 5
NSGA2_MIN_TRIALS = 200


def choose(space: SearchSpace, trials: int | None, objectives: int, workers: int,
           early_stopping: bool = False, constrained: bool = False) -> StrategyDecision:
    """The strategy `auto` runs for this experiment.

    ``early_stopping``: a scheduler stops trials early. TPE then learns from the stopped trials' intermediate
    values; the GP of ``bo`` sees only final values and would take every stopped trial for a failure.
    ``constrained``: the spec declares constraints, which TPE models and ``bo`` does not.
    """
    unstepped = [n for n, d in space.domains.items() if isinstance(d, Float) and d.step is None]
    passed_over = ""
    if trials is not None and not unstepped:
        size = grid_size(space, GRID_FLOAT_POINTS)
        if size is not None and size <= trials:
            return StrategyDecision("grid", {},
                                    f"the whole grid ({size} configurations) fits in the budget of {trials} trials")
    elif trials is not None:
        passed_over = _grid_passed_over(space, unstepped, trials)
    decision = _searched(space, trials, objectives, workers, early_stopping, constrained)
    return StrategyDecision(decision.name, decision.options, decision.reason + passed_over)


def _grid_passed_over(space: SearchSpace, unstepped: list[str], trials: int) -> str:
    """Why a grid that would fit the budget is not run (its floats without a step), or ``""`` where it would not fit
    or counting it would be costly (:func:`grid_size`: more than ``COUNTED_UP_TO`` configurations, for a parameter
    conditioned on many parents)."""
    size = grid_size(space, GRID_FLOAT_POINTS)
    if size is None or size > trials:
        return ""
    one = len(unstepped) == 1
    return (f"; not the grid: its {size} configurations fit the budget, but {' and '.join(unstepped)} "
            f"{'is a float' if one else 'are floats'} without a step, which a grid cuts to {GRID_FLOAT_POINTS} values "
            f"(give {'it' if one else 'them'} a step for auto to run the whole grid)")


def _searched(space: SearchSpace, trials: int | None, objectives: int, workers: int,
              early_stopping: bool, constrained: bool) -> StrategyDecision:
    """Rules 2 to 4: the strategy for a space not run as a whole grid."""
    if objectives > 1:
        if trials is not None and trials >= NSGA2_MIN_TRIALS:
            return StrategyDecision("nsga2", {},
                                    f"{objectives} objectives and {trials} trials: enough generations for NSGA-II")
        return StrategyDecision("tpe", {}, f"{objectives} objectives on a small budget: multi-objective TPE")
    if not early_stopping and not constrained:
        parts = ["Gaussian-process Bayesian optimisation (bo): one objective"]
        if space.is_conditional:
            parts.append("inactive conditional parameters encoded as constants")
        if workers > 1:
            parts.append(f"a constant liar keeps {workers} parallel proposals apart")
        parts.append("a proposal may cost 50 ms, above that 10% of a trial's")
        return StrategyDecision("bo", {}, "; ".join(parts))
    parts = ["multivariate TPE"]
    if space.is_conditional:
        parts.append("grouped for the conditional parameters")
    if early_stopping:
        parts.append("it learns from the intermediate values of trials stopped early")
    if constrained:
        parts.append("it models which configurations satisfy the constraints (bo would not)")
    if workers > 1:
        parts.append(f"constant liar keeps {workers} parallel proposals apart")
    if all(isinstance(d, Categorical) for d in space.domains.values()):
        parts.append("all-categorical space")
    return StrategyDecision("tpe", {}, "; ".join(parts))
