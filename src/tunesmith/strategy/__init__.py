"""Search strategies behind one protocol: random, grid, qmc, tpe, cmaes, gp, nsga2, bo and `auto`."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from tunesmith.constraints import Constraint
from tunesmith.errors import SpecError
from tunesmith.records import Direction
from tunesmith.space import SearchSpace
from tunesmith.strategy.auto import choose
from tunesmith.strategy.base import Proposal, Strategy, StrategyDecision
from tunesmith.strategy.enqueued import enqueue_warnings
from tunesmith.strategy.grid import GridStrategy, grid_warnings
from tunesmith.strategy.options import OptionRule, check_option_values, reject_unknown_options

__all__ = ["Proposal", "Strategy", "StrategyDecision", "build_strategy", "decide", "enqueue_warnings", "trials_planned"]

_GRID_OPTIONS = {"points": OptionRule(int, "values per float parameter", low=1), "shuffle": OptionRule()}
_BO_OPTIONS = ("overhead", "overhead_floor", "cost_aware", "cost_budget", "cooling_trials")
# Strategies that model one objective: Optuna's CMA-ES raises at its first proposal on a study of several
_ONE_OBJECTIVE = ("bo", "cmaes")


def decide(name: str, options: dict[str, Any], space: SearchSpace, trials: int | None, objectives: int,
           workers: int, early_stopping: bool = False, constrained: bool = False) -> StrategyDecision:
    """Resolve ``auto`` and check the named strategy with its options against the spec, as the run will build it
    (an Optuna sampler is built, then dropped), so that what the run would refuse is refused before anything is
    recorded. The decision's warnings are the spec's (a deprecated option, a grid larger than the budget)."""
    if "seed" in options:  # Optuna's TPESampler(seed=...), ported: tunesmith seeds the strategy from the spec's seed
        raise SpecError("strategy.seed", f"the experiment's seed seeds its strategy: write it at the top level, "
                                         f"seed: {options['seed']!r}, not under strategy")
    if name == "auto":
        if options:
            raise SpecError(f"strategy.{next(iter(options))}",
                            "`auto` takes no options; name a strategy to set options")
        return choose(space, trials, objectives, workers, early_stopping, constrained)
    if name == "grid":
        reject_unknown_options(name, options, tuple(_GRID_OPTIONS))
        check_option_values(options, _GRID_OPTIONS)
        return StrategyDecision("grid", dict(options), "chosen in the spec",
                                grid_warnings(space, options.get("points", 5), options.get("shuffle", False), trials))
    if name == "bo":
        reject_unknown_options(name, options, _BO_OPTIONS)
        overhead = options.get("overhead", 0.1)
        if isinstance(overhead, bool) or not isinstance(overhead, int | float) or not 0 < overhead <= 10:
            raise SpecError("strategy.overhead", f"must be a number in (0, 10] (a fraction of a trial's duration); "
                                                 f"got {overhead!r}")
        floor = options.get("overhead_floor", 0.05)
        if isinstance(floor, bool) or not isinstance(floor, int | float) or not 0 <= floor <= 60:
            raise SpecError("strategy.overhead_floor", f"must be a number of seconds in [0, 60] (what a proposal may "
                                                       f"always cost; 0 = the overhead ratio alone); got {floor!r}")
        _refuse_several_objectives(name, objectives)
        return StrategyDecision("bo", _cost_cooling_options(options, trials), "chosen in the spec")
    from tunesmith.strategy import optuna_adapter

    said = optuna_adapter.check_options(name, options, space)  # (gp without torch: refused there)
    _refuse_several_objectives(name, objectives)
    return StrategyDecision(name, dict(options), "chosen in the spec", said)


def _refuse_several_objectives(name: str, objectives: int) -> None:
    if objectives > 1 and name in _ONE_OBJECTIVE:
        raise SpecError("strategy.name", f"the {name} strategy optimises one objective; use tpe or nsga2 for several")


def _cost_cooling_options(options: dict[str, Any], trials: int | None) -> dict[str, Any]:
    """``bo``'s cost-aware options checked; without a budget to cool over, alpha cools over the trial budget."""
    if not isinstance(options.get("cost_aware", False), bool):
        raise SpecError("strategy.cost_aware", f"must be true or false (cost-cooled expected improvement); "
                                               f"got {options['cost_aware']!r}")
    budget = options.get("cost_budget")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int | float) or not budget > 0):
        raise SpecError("strategy.cost_budget", f"must be a number > 0 (the total cost, in the cost signal's units, "
                                                f"over which cost-aware search cools to plain EI); got {budget!r}")
    cooling = options.get("cooling_trials")
    if cooling is not None and (isinstance(cooling, bool) or not isinstance(cooling, int) or cooling < 1):
        raise SpecError("strategy.cooling_trials", f"must be an int >= 1 (trials over which cost-aware search "
                                                   f"cools to plain EI); got {cooling!r}")
    if (budget is not None or cooling is not None) and not options.get("cost_aware", False):
        key = "cost_budget" if budget is not None else "cooling_trials"
        raise SpecError(f"strategy.{key}", "only acts with cost_aware: true; add it or remove this option")
    out = dict(options)
    if out.get("cost_aware") and budget is None and cooling is None and trials is not None:
        out["cooling_trials"] = trials
    return out


def build_strategy(decision: StrategyDecision, space: SearchSpace, directions: Sequence[Direction], seed: int,
                   workers: int, clock: Callable[[], float] = time.perf_counter,
                   constraints: Sequence[Constraint] = (), objective_metrics: Sequence[str] = (),
                   design_seed: int | None = None, trials_recorded: int = 0,
                   say: Callable[[str], None] = lambda _said: None) -> Strategy:
    """The strategy object for a decision. ``clock`` times trials for strategies that keep their own cost in
    proportion to the trials' (``bo``). ``constraints`` reach the Optuna samplers (TPE, NSGA-II and GP search
    the feasible region); the others ignore them and selection enforces them. ``design_seed`` seeds a
    low-discrepancy design (qmc, bo's start-up), else ``seed`` does (see ``seeding.design_seed``); the design goes on
    past the points that ``trials_recorded`` trials (every number taken before: lost and running ones too) took.
    ``say``: what the run should tell as it goes (``bo``: that its cost guard acted, so the sequence now depends on
    timing, not on the seed alone)."""
    if decision.name == "grid":
        opts: dict[str, Any] = dict(decision.options)
        return GridStrategy(space, points=opts.get("points", 5), shuffle=opts.get("shuffle", False), seed=seed)
    if decision.name == "bo":
        from tunesmith.strategy.bayes import (DEFAULT_COOLING_TRIALS, DEFAULT_OVERHEAD, DEFAULT_OVERHEAD_FLOOR,
                                              BayesStrategy)

        overhead = float(decision.options.get("overhead", DEFAULT_OVERHEAD))  # type: ignore[arg-type]
        floor = float(decision.options.get("overhead_floor", DEFAULT_OVERHEAD_FLOOR))  # type: ignore[arg-type]
        budget = decision.options.get("cost_budget")
        return BayesStrategy(space, directions[0], seed, overhead=overhead, clock=clock, overhead_floor=floor,
                             design_seed=design_seed, trials_recorded=trials_recorded, say=say,
                             cost_aware=bool(decision.options.get("cost_aware", False)),
                             cost_budget=None if budget is None else float(budget),  # type: ignore[arg-type]
                             cooling_trials=int(decision.options.get("cooling_trials",  # type: ignore[call-overload]
                                                                     DEFAULT_COOLING_TRIALS)))
    from tunesmith.strategy import optuna_adapter

    # A recorded spec (resume, join) was checked by the tunesmith of its day: what Optuna cannot build or run from
    # it is refused here, before the run writes a status or an event, rather than at its first proposal
    _refuse_several_objectives(decision.name, len(directions))
    options = optuna_adapter.sampler_options(decision.name, decision.options, space)
    optuna_adapter.build_sampler(decision.name, decision.options, options, seed)
    return optuna_adapter.OptunaStrategy(decision.name, space, directions, seed, options, constraints,
                                         objective_metrics, design_seed=design_seed if decision.name == "qmc" else None,
                                         trials_recorded=trials_recorded)


def trials_planned(budget_trials: int | None, strategy: Strategy) -> int | None:
    """How many trials the run will hold at most, as its progress counts them: the trial budget, or the grid's size
    where that is smaller (a grid of 2 under a budget of 100 showed 2/100 when it was done). A wrapped strategy (a
    warm start re-evaluates configurations off the grid) has no size of its own, and the budget stands."""
    size: int | None = getattr(strategy, "size", None)
    if size is None:
        return budget_trials
    return size if budget_trials is None else min(budget_trials, size)
