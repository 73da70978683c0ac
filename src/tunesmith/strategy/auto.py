"""`auto`: pick a strategy from the space, the budget, the objectives and the parallelism, and say why.

The rules are deliberately few and each one states its reason; the search-quality benchmark in
``benchmarks/`` is what may change them.
"""

from __future__ import annotations

from tunesmith.space import Categorical, Float, SearchSpace
from tunesmith.strategy.base import StrategyDecision

GRID_FLOAT_POINTS = 5
NSGA2_MIN_TRIALS = 200


def choose(space: SearchSpace, trials: int | None, objectives: int, workers: int) -> StrategyDecision:
    """The strategy `auto` runs for this experiment."""
    finite = all(not isinstance(d, Float) or d.step is not None for d in space.domains.values())
    if finite and trials is not None:
        size = space.grid_size(GRID_FLOAT_POINTS)
        if size <= trials:
            return StrategyDecision("grid", {}, f"the whole grid ({size} configurations) fits in the budget of {trials} trials")
    if objectives > 1:
        if trials is not None and trials >= NSGA2_MIN_TRIALS:
            return StrategyDecision("nsga2", {}, f"{objectives} objectives and {trials} trials: enough generations for NSGA-II")
        return StrategyDecision("tpe", {}, f"{objectives} objectives on a small budget: multi-objective TPE")
    parts = ["multivariate TPE"]
    if space.is_conditional:
        parts.append("grouped for the conditional parameters")
    if workers > 1:
        parts.append(f"constant liar keeps {workers} parallel proposals apart")
    if all(isinstance(d, Categorical) for d in space.domains.values()):
        parts.append("all-categorical space")
    return StrategyDecision("tpe", {}, "; ".join(parts))
