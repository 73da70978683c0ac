"""Search quality: tunesmith's strategies (``auto`` first) beside peer optimizers, same problems, budgets, seeds.

    python -m benchmarks.search_quality [--groups synthetic,tabular,sklearn] [--seeds 5] [--regimes sequential,batch]
        [--sklearn-tasks reduced|all|knn-breast_cancer-acc,...] [--folds 3] [--jobs 2] [--markdown benchmarks/RESULTS.md]

Regimes: *sequential* = 48 trials one at a time; *batch* = 16 batches of 8 (Bayesmark's shape): 8 proposals are
asked for before any is told, which is what parallel workers do (tunesmith: ``ask()`` 8 times, then ``tell`` 8 times;
its strategies are built with ``workers=8``). Both tell tunesmith that a synthetic or tabular trial stands for a 1 s
one. *realclock* (not run unless named: ``--regimes realclock``) = 40 trials one at a time, every problem timed for
real, as a user's inline run of a cheap function or a recorded table is; its tables go to their own RESULTS.md
section. Every run of every optimizer on a problem uses the same seeds; the
random-search reference is cached in ``random_baseline.json`` (see ``baseline.py``); every run's losses go to
``runs/latest.jsonl`` (``--resume`` reuses the runs found there). Needs ``pip install -e .[bench]``; optimizers whose
library is missing are listed as skipped, with the reason.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one thread per worker process
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import IO, Any  # noqa: E402

from benchmarks.search_quality import baseline, report  # noqa: E402
from benchmarks.search_quality.optimizers import OPTIMIZERS  # noqa: E402
from benchmarks.search_quality.problems import REDUCED_SKLEARN, Problem, all_sklearn_tasks, build_suite  # noqa: E402
from benchmarks.search_quality.runner import REGIMES, RunResult, run_one  # noqa: E402

HERE = Path(__file__).resolve().parent
RUNS = HERE / "runs" / "latest.jsonl"
# Runs that are the same computation as another row: run once, reported under both names.
SAME_AS = {"ts-gp": ("optuna-gp", "tunesmith's gp strategy is Optuna's GPSampler with the same seed and defaults "
                                  "(it only silences the independent-sampling warning)")}
# skopt: ask(n_points=8) refits the GP 8 times per batch, 80-260 s a run here. tunesmith grid: its proposals do not
# depend on the regime (a fixed enumeration), so the batch rows would repeat the sequential ones on a larger budget.
DEFAULT_EXCLUDE = ("skopt-gp@batch", "ts-grid@batch")

_SUITE: dict[str, Problem] = {}


def _init_worker(names: list[str], folds: int, tasks: list[tuple[str, str, str]], groups: list[str]) -> None:
    import logging
    import signal

    # Pool.terminate() ends its workers with SIGTERM. A worker forked from a process with a SIGTERM handler of its
    # own (Ray's driver sets one; the test suite runs this in such a process) inherited it and never died, and the
    # pool's join waited for ever
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    import optuna

    import tunesmith.strategy.optuna_adapter  # noqa: F401  (sets optuna's verbosity; we lower it further)

    optuna.logging.set_verbosity(logging.ERROR)
    import warnings

    warnings.simplefilter("ignore")
    for p in build_suite(groups, tasks, folds):
        _SUITE[p.name] = p


def _work(job: tuple[str, str, int, str]) -> dict[str, Any]:
    problem, opt, seed, regime = job
    return run_one(_SUITE[problem], opt, seed, REGIMES[regime]).to_json()


def _cost(job: tuple[str, str, int, str], suite: dict[str, Problem]) -> float:
    _, opt, _, regime = job
    c = {"skopt-gp": 15.0, "optuna-gp": 5.0, "ts-gp": 5.0, "nevergrad-ngopt": 1.0}.get(opt, 0.5)
    c *= 2.5 if regime == "batch" else 1.0
    return c + (2.0 if suite[job[0]].group == "sklearn" else 0.0)


def _open_runs(path: Path, mode: str) -> IO[str]:
    """A runs file; one ending in ``.gz`` is gzip-compressed (how a set's runs are kept in the repository)."""
    if path.suffix == ".gz":
        return gzip.open(path, mode, encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def _read_runs(path: Path) -> tuple[list[str], bool]:
    """The complete lines of a runs file, and whether it was cut short. A gzip member gets its end marker only when
    the file is closed, so the runs appended by a process that was killed are readable up to the last flush."""
    lines: list[str] = []
    with _open_runs(path, "rt") as f:
        try:
            for line in f:
                lines.append(line)
        except EOFError:
            return [line for line in lines if line.endswith("\n")], True
    return lines, False


def parse_tasks(spec: str) -> list[tuple[str, str, str]]:
    if spec == "reduced":
        return list(REDUCED_SKLEARN)
    if spec == "all":
        return all_sklearn_tasks()
    return [tuple(t.split("-")) for t in spec.split(",") if t]  # type: ignore[misc]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groups", default="synthetic,tabular,sklearn")
    ap.add_argument("--sklearn-tasks", default="reduced", help="reduced | all | model-dataset-metric,...")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds are FIRST .. FIRST + SEEDS - 1")
    ap.add_argument("--runs", type=Path, default=RUNS, help=f"where runs are kept (default {RUNS.relative_to(HERE.parents[1])})")
    ap.add_argument("--regimes", default="sequential,batch")
    ap.add_argument("--optimizers", default=",".join(OPTIMIZERS), help="ids, comma-separated")
    ap.add_argument("--exclude", action="append", default=None,
                    help=f"OPTIMIZER@REGIME pairs not to run (default: {', '.join(DEFAULT_EXCLUDE)})")
    ap.add_argument("--problems", default="", help="only these problem names (comma-separated)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--baseline-runs", type=int, default=200)
    ap.add_argument("--pool-runs", type=int, default=5, help="scikit-learn baseline pool = this x 128 configurations")
    ap.add_argument("--baseline-budget", type=int, default=128, help="random-search curves up to this many trials")
    ap.add_argument("--resume", action="store_true", help="reuse the runs already in runs/latest.jsonl")
    ap.add_argument("--report-only", action="store_true", help="no new runs: tables from runs/latest.jsonl")
    ap.add_argument("--markdown", type=Path, default=None, help="write the section into this file (between markers)")
    ap.add_argument("--note", default="")
    args = ap.parse_args(argv)

    groups = [g for g in args.groups.split(",") if g]
    tasks = parse_tasks(args.sklearn_tasks)
    suite = {p.name: p for p in build_suite(groups, tasks, args.folds)}
    if args.problems:
        keep = set(args.problems.split(","))
        suite = {k: v for k, v in suite.items() if k in keep}
    regimes = [REGIMES[r] for r in args.regimes.split(",") if r]
    excluded = set(args.exclude if args.exclude is not None else DEFAULT_EXCLUDE)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    runs_file: Path = args.runs

    wanted = [o for o in args.optimizers.split(",") if o]
    skipped = {o: OPTIMIZERS[o].missing() for o in wanted if OPTIMIZERS[o].missing()}
    if "smac-hpo" in wanted and "smac-hpo" not in skipped:
        skipped["smac-hpo"] = "adapter not written (SMAC3 does not install from wheels here)"
    runnable = [o for o in wanted if o not in skipped]
    print(f"problems: {len(suite)} ({', '.join(groups)}); optimizers: {', '.join(runnable)}; seeds: {len(seeds)}; "
          f"regimes: {', '.join(r.name for r in regimes)}", flush=True)
    for o, why in skipped.items():
        print(f"  skipped {o}: {why}", flush=True)

    t0 = time.time()
    base = baseline.get(list(suite.values()), max(args.baseline_budget, *(r.budget for r in regimes)), args.baseline_runs, args.pool_runs,
                        log=lambda m: print(m, flush=True))
    print(f"baseline ready ({time.time() - t0:.0f} s)", flush=True)

    # `auto` resolves per problem and regime; where it resolves to another row's strategy with no options of its
    # own (tpe, grid), that row's runs are its runs: the same strategy, the same seed, the same proposals.
    from benchmarks.search_quality.optimizers.tunesmith_ import resolved

    auto_pick: dict[tuple[str, str], tuple[str, str]] = {}
    for p in suite.values():
        for r in regimes:
            name, options, reason = resolved(p.space, r.budget, r.batch, "auto")
            auto_pick[(p.name, r.name)] = (name if not options else f"{name} {options}", reason)

    jobs: list[tuple[str, str, int, str]] = []
    aliases: dict[tuple[str, str, int, str], tuple[str, str, int, str]] = {}
    for p in suite.values():
        for r in regimes:
            for o in runnable:
                if f"{o}@{r.name}" in excluded:
                    continue
                for s in seeds:
                    job = (p.name, o, s, r.name)
                    target = None
                    if o == "ts-auto" and auto_pick[(p.name, r.name)][0] in {x[3:] for x in runnable if x.startswith("ts-")}:
                        target = f"ts-{auto_pick[(p.name, r.name)][0]}"
                    elif o in SAME_AS and SAME_AS[o][0] in runnable and f"{SAME_AS[o][0]}@{r.name}" not in excluded:
                        target = SAME_AS[o][0]
                    if target and target != o:
                        aliases[job] = (p.name, target, s, r.name)
                    else:
                        jobs.append(job)

    runs_file.parent.mkdir(exist_ok=True)
    done: dict[tuple[str, str, int, str], dict[str, Any]] = {}
    if (args.resume or args.report_only) and runs_file.exists():
        lines, cut_short = _read_runs(runs_file)
        for line in lines:
            d = json.loads(line)
            done[(d["problem"], d["optimizer"], d["seed"], d["regime"])] = d
        if cut_short and not args.report_only:
            # Rewritten as one clean member: runs appended after a member cut short by a kill could not be read.
            with _open_runs(runs_file, "wt") as f:
                f.writelines(lines)
    elif runs_file.exists() and runs_file.suffix == ".gz":
        print(f"error: --runs {runs_file} holds kept runs: pass --resume to add to it or --report-only to redraw "
              "its tables (it is not overwritten)", file=sys.stderr)
        return 2
    elif runs_file.exists():
        runs_file.unlink()
    todo = [] if args.report_only else [j for j in jobs if j not in done]
    todo.sort(key=lambda j: -_cost(j, suite))
    print(f"runs: {len(jobs)} ({len(todo)} to do, {len(aliases)} shared with an identical row)", flush=True)
    t1 = time.time()
    if todo:
        ctx = mp.get_context("fork")
        with _open_runs(runs_file, "at") as out, ctx.Pool(args.jobs, _init_worker,
                                              (list(suite), args.folds, tasks, groups)) as pool:
            for i, d in enumerate(pool.imap_unordered(_work, todo, chunksize=1), 1):
                done[(d["problem"], d["optimizer"], d["seed"], d["regime"])] = d
                out.write(json.dumps(d) + "\n")
                out.flush()
                if d["error"]:
                    print(f"  CRASH {d['optimizer']} on {d['problem']} seed {d['seed']} {d['regime']}: {d['error']}",
                          flush=True)
                if i % 50 == 0 or i == len(todo):
                    print(f"  {i}/{len(todo)} runs, {time.time() - t1:.0f} s", flush=True)
    results = []
    for job in jobs:
        if job in done:
            results.append(RunResult(**done[job]))
    for job, target in aliases.items():
        if target in done:
            results.append(RunResult(**{**done[target], "optimizer": job[1]}))
    compute_s = time.time() - t1
    no_optimum = [n for n, p in suite.items() if p.known_optimum() is None]
    baseline.record_best_seen({n: min(min(r.true_losses) for r in results if r.problem == n and r.true_losses)
                               for n in no_optimum if any(r.problem == n and r.true_losses for r in results)})

    command = "python -m benchmarks.search_quality " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    meta = runs_file.with_suffix(".meta.json")
    if args.report_only and meta.exists():  # the tables come from an earlier run: show that run's command and time
        m = json.loads(meta.read_text())
        command, compute_s = f"{m['command']}` (tables redrawn with `{command}`)", m["compute_s"]
    elif not args.report_only:
        prior = json.loads(meta.read_text())["compute_s"] if args.resume and meta.exists() else 0.0
        compute_s += prior
        meta.write_text(json.dumps({"command": command, "compute_s": compute_s}) + "\n")
    section = report.build(
        suite=suite, regimes=regimes, seeds=seeds, results=results, base=base, optimizers=runnable,
        skipped=skipped, excluded=sorted(excluded), aliases={o: SAME_AS[o] for o in SAME_AS if o in runnable},
        auto_pick=auto_pick, command=command, compute_s=compute_s, note=args.note, folds=args.folds, jobs=args.jobs)
    print(section.text)
    if args.markdown:
        report.write_markdown(args.markdown, section.markdown, section.marker)
        print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
