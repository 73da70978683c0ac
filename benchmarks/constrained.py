"""Constrained search: which strategy should `auto` run for one objective with ``constraints:``?

tunesmith's ``bo`` models the objective alone: the constraints only filter selection, so it spends trials in the
infeasible region. Optuna's TPE (its default sampler, Optuna's constraints_func) and GPSampler model which
configurations are feasible. Each strategy runs through tunesmith end to end (``tunesmith.api.run``, inline
executor, SQLite store in a temporary folder), one trial at a time, on three problems whose optimum lies on a
constraint's boundary (losses minimised over [0, 1]^d):

- ``edge2``: loss = x0 + 0.1 (x1 - 0.5)^2, subject to g = x0 >= 0.6 (optimum 0.6).
- ``disc2``: loss = (x0 - 0.2)^2 + (x1 - 0.2)^2, subject to g = x0 + x1 >= 1 (optimum 0.18).
- ``sum4``: loss = sum (x_i - 0.3)^2 over 4 dimensions, subject to g = sum x_i >= 2 (optimum 0.16).

The score is the regret of the best feasible trial after the budget, as the run's result picks it
(``ExperimentResult.best``: the spec's constraints, as `tunesmith show` and promotion apply them), minus the
optimum (no feasible trial: infinite), per seed; lower is better.

Usage::

    python benchmarks/constrained.py --seeds 10 --trials 40
    python benchmarks/constrained.py --seeds 1 --trials 5 --strategies random   # does it still run
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import environment  # noqa: E402

OBJECTIVES = '''
def edge2(config, trial):
    x0, x1 = config["x0"], config["x1"]
    return {"loss": x0 + 0.1 * (x1 - 0.5) ** 2, "g": x0}


def disc2(config, trial):
    x0, x1 = config["x0"], config["x1"]
    return {"loss": (x0 - 0.2) ** 2 + (x1 - 0.2) ** 2, "g": x0 + x1}


def sum4(config, trial):
    xs = [config[f"x{i}"] for i in range(4)]
    return {"loss": sum((v - 0.3) ** 2 for v in xs), "g": sum(xs)}
'''
PROBLEMS = {"edge2": (2, 0.6, 0.6), "disc2": (2, 1.0, 0.18), "sum4": (4, 2.0, 0.16)}  # dims, bound on g, optimum


def regret(problem: str, strategy: str, seed: int, trials: int, folder: Path) -> float:
    from tunesmith import api

    dims, bound, optimum = PROBLEMS[problem]
    spec = {"name": f"{problem}-{strategy}-{seed}", "objective": {"metric": "loss", "direction": "minimize"},
            "space": {f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(dims)},
            "strategy": strategy, "constraints": [f"g >= {bound}"], "budget": {"trials": trials},
            "executor": {"kind": "inline"}, "trial": {"function": f"objectives:{problem}"}, "seed": seed}
    result = api.run(spec, storage=f"sqlite:///{folder / 'constrained.db'}")
    best = result.best  # the library's own judgement of feasibility and best: what a user of the run is given
    return best.values[0] - optimum if best is not None and best.values else math.inf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--strategies", default="bo,tpe,gp")
    args = parser.parse_args()
    env = environment(["tunesmith", "optuna", "numpy", "scipy", "torch"])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "objectives.py").write_text(OBJECTIVES)
        os.chdir(folder)
        sys.path.insert(0, str(folder))
        rows = []
        for problem in PROBLEMS:
            for strategy in args.strategies.split(","):
                started = time.process_time()
                regrets = [regret(problem, strategy, seed, args.trials, folder) for seed in range(args.seeds)]
                cpu = (time.process_time() - started) / (args.seeds * args.trials)
                finite = [r for r in regrets if math.isfinite(r)]
                rows.append((problem, strategy, statistics.median(regrets),
                             statistics.mean(finite) if finite else math.inf, len(regrets) - len(finite), cpu))
    print(f"- Command: `python benchmarks/{Path(__file__).name} {shlex.join(sys.argv[1:])}`")
    print(f"- {args.seeds} seeds x {args.trials} trials; {env['code']}; {env['machine']}; {env['python']}; "
          f"{env['versions']}; load {env['load']}; {env['date']}")
    print()
    print("| problem | strategy | median regret | mean regret | seeds with no feasible trial | CPU-s per trial |")
    print("|---|---|---:|---:|---:|---:|")
    for problem, strategy, median, mean, none, cpu in rows:
        print(f"| {problem} | {strategy} | {median:.4f} | {mean:.4f} | {none} | {cpu:.3f} |")


if __name__ == "__main__":
    main()
