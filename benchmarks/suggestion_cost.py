"""What `auto` spends choosing the next configuration, against the trials it serves (issue #6's cost target).

    python -m benchmarks.suggestion_cost [--trials 220] [--seeds 3] [--markdown benchmarks/RESULTS.md]
    python -m benchmarks.suggestion_cost --counts 40,1000 [--seeds 3] [--markdown benchmarks/RESULTS.md]

The target: at 200 trials, `auto` spends at most 10% of the fastest scikit-learn task's trial time on a proposal.
The fastest task of the search-quality suite's full grid is `linear-iris-acc` (logistic regression on iris,
3-fold CV, about 3 ms a trial here). Each optimizer runs that task for real, one trial at a time, and the table
reports, over trials 191-210: the median trial (the CV fit) and the median proposal cost (``ask`` plus ``tell``),
and their ratio. A second row per tunesmith strategy runs the same loop on a 1-second trial (a nominal clock, no
sleeping), which shows what the GP costs when nothing holds it back. Needs ``pip install -e .[bench]``.

``--counts 40,1000`` (issue #19) measures instead what a run of each length costs per trial on a function timed for
real (``hartmann6``, 6 floats, microseconds a trial; what the search-quality suite's real-clock regime runs):
`auto` (`bo` with its 50 ms floor) beside Optuna's default TPESampler, one fresh run per count and seed. It reports
the mean proposal cost over the whole run (``ask`` + ``tell``, so the total the run spent choosing), the median and
the largest over its last 20 trials, and the run's wall time. It writes its own section of RESULTS.md.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks.results_file import environment, write_section  # noqa: E402
from benchmarks.search_quality.optimizers import OPTIMIZERS  # noqa: E402
from benchmarks.search_quality.problems import sklearn_problem  # noqa: E402

START, END = "<!-- suggestion-cost:start -->", "<!-- suggestion-cost:end -->"
WINDOW = (190, 210)   # trial indices (0-based) whose costs are reported: "at 200 trials"
ROWS = [("ts-auto", None), ("ts-auto", 1.0), ("optuna-tpe", None), ("optuna-gp", None)]
COUNTS_START, COUNTS_END = "<!-- suggestion-cost-counts:start -->", "<!-- suggestion-cost-counts:end -->"
COUNT_ROWS = ("ts-auto", "optuna-tpe")
LAST = 20   # the trials at the end of a run whose costs are read as "at N trials"


@dataclass(frozen=True)
class Measured:
    trial: float          # median trial (the CV fit) over the window, seconds
    propose: float        # median ask + tell over the window
    propose_mean: float
    strategy: str         # what the optimizer ran (auto's pick)


def _timed_loop(session: Any, problem: Any, rng: np.random.Generator,
                trials: int) -> tuple[list[float], list[float], list[float]]:
    """Each trial's evaluation time, proposal cost (``ask`` + ``tell``, wall) and its CPU time, one at a time."""
    trial_s, propose_s, cpu_s = [], [], []
    for _ in range(trials):
        c0, t0 = time.process_time(), time.perf_counter()
        handle, params = session.ask()
        c1, t1 = time.process_time(), time.perf_counter()
        loss, _ = problem.evaluate(problem.space.validate_params(params), rng)
        c2, t2 = time.process_time(), time.perf_counter()
        session.tell(handle, loss)
        c3, t3 = time.process_time(), time.perf_counter()
        trial_s.append(t2 - t1)
        propose_s.append((t1 - t0) + (t3 - t2))
        cpu_s.append((c1 - c0) + (c3 - c2))
    return trial_s, propose_s, cpu_s


def measure(optimizer: str, nominal: float | None, trials: int, seed: int) -> Measured:
    problem = sklearn_problem("linear", "iris", "acc", 3)
    opt = OPTIMIZERS[optimizer]
    session = opt.make(problem.space, seed, trials, 1, nominal)
    trial_s, propose_s, _ = _timed_loop(session, problem, np.random.default_rng(seed), trials)
    lo, hi = WINDOW
    return Measured(statistics.median(trial_s[lo:hi]), statistics.median(propose_s[lo:hi]),
                    statistics.mean(propose_s[lo:hi]), getattr(getattr(session, "decision", None), "name", optimizer))


@dataclass(frozen=True)
class RunCost:
    mean: float           # mean ask + tell over the whole run (making the optimizer included), seconds
    cpu: float            # the same in CPU seconds of this process
    last_median: float    # median over the last LAST trials
    last_max: float
    trial: float          # median evaluation time
    wall: float           # the whole run


def measure_run(optimizer: str, trials: int, seed: int) -> RunCost:
    """One run of ``trials`` on ``hartmann6`` timed for real (no nominal clock), one trial at a time."""
    from benchmarks.search_quality.problems import synthetic_problems

    problem = next(p for p in synthetic_problems() if p.name == "hartmann6")
    started = time.perf_counter()
    session = OPTIMIZERS[optimizer].make(problem.space, seed, trials, 1, None)
    made = time.perf_counter() - started
    trial_s, costs, cpu = _timed_loop(session, problem, np.random.default_rng(seed), trials)
    costs[0] += made
    last = costs[-LAST:]
    return RunCost(statistics.mean(costs), statistics.mean(cpu), statistics.median(last), max(last), statistics.median(trial_s),
                   time.perf_counter() - started)


def counts_section(counts: list[int], seeds: int, command: str) -> str:
    rows = []
    for n in counts:
        for optimizer in COUNT_ROWS:
            if OPTIMIZERS[optimizer].missing():
                continue
            runs = [measure_run(optimizer, n, seed) for seed in range(seeds)]
            label = OPTIMIZERS[optimizer].label
            row = (n, label, statistics.mean(r.mean for r in runs), statistics.mean(r.cpu for r in runs),
                   statistics.median(r.last_median for r in runs), max(r.last_max for r in runs),
                   statistics.median(r.trial for r in runs), statistics.mean(r.wall for r in runs))
            rows.append(row)
            print(f"{n:5d} trials  {label:32s} per trial {row[2] * 1e3:7.2f} ms (CPU {row[3] * 1e3:7.2f} ms)  last "
                  f"{LAST}: median {row[4] * 1e3:7.2f} ms max {row[5] * 1e3:7.2f} ms  run {row[7]:.1f} s", flush=True)
    env = environment(["tunesmith", "optuna", "numpy", "scipy"])
    lines = [
        COUNTS_START, "## Suggestion cost per trial at 40 and 1,000 trials, real clock (`benchmarks/suggestion_cost.py --counts`)",
        "", f"- Command: `{command}`", f"- Date: {env['date']}; tunesmith at {env['code']}",
        f"- Machine: {env['machine']}; load average at the end {env['load']}; one BLAS thread",
        f"- Python {env['python']}; {env['versions']}",
        f"- Problem: `hartmann6` (6 floats) timed for real, one trial at a time; seeds 0-{seeds - 1}, one fresh run "
        f"per count and seed. *Per trial* = the run's whole `ask` + `tell` wall time / trials (mean over seeds), "
        "*CPU* the same in CPU time of the process (what load on a shared machine does not inflate); "
        f"*last {LAST}* = median and largest `ask` + `tell` over the run's last {LAST} trials (median, max over "
        "seeds). `auto` resolves to `bo`: a proposal may always cost 50 ms of CPU (`overhead_floor`), above that "
        "10% of the median trial (here: microseconds) as a credit; its GP sees at most 300 trials.", "",
        f"| trials | optimizer | per trial | per trial, CPU | last {LAST}, median | last {LAST}, max | trial (median) "
        "| run wall time |", "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for n, label, mean, cpu, median_last, max_last, trial, wall in rows:
        lines.append(f"| {n} | {label} | {mean * 1e3:.1f} ms | {cpu * 1e3:.1f} ms | {median_last * 1e3:.1f} ms | "
                     f"{max_last * 1e3:.1f} ms | {trial * 1e6:.0f} µs | {wall:.1f} s |")
    return "\n".join([*lines, "", COUNTS_END]) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=220)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--markdown", type=Path, default=None)
    ap.add_argument("--counts", default="", help="run lengths, e.g. 40,1000: the real-clock per-trial table instead")
    args = ap.parse_args(argv)
    command = "python -m benchmarks.suggestion_cost " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    if args.counts:
        warnings.simplefilter("ignore")
        section = counts_section([int(c) for c in args.counts.split(",")], args.seeds, command)
        if args.markdown:
            write_section(args.markdown, section, COUNTS_START, COUNTS_END)
            print(f"wrote {args.markdown}")
        return 0
    if args.trials < WINDOW[1]:
        ap.error(f"--trials must be at least {WINDOW[1]}: costs are read over trials {WINDOW[0] + 1}-{WINDOW[1]}")
    warnings.simplefilter("ignore")
    rows = []
    for optimizer, nominal in ROWS:
        if OPTIMIZERS[optimizer].missing():
            continue
        runs = [measure(optimizer, nominal, args.trials, seed) for seed in range(args.seeds)]
        trial = statistics.median(r.trial for r in runs)
        propose = statistics.median(r.propose for r in runs)
        mean = statistics.mean(r.propose_mean for r in runs)
        label = OPTIMIZERS[optimizer].label + (f" → {runs[0].strategy}" if optimizer == "ts-auto" else "")
        clock = "1 s nominal trial" if nominal else "real trial"
        rows.append((label, clock, trial, propose, mean, propose / trial if not nominal else propose / nominal))
        print(f"{label:45s} {clock:18s} trial {trial * 1e3:7.2f} ms  proposal median {propose * 1e3:7.2f} ms "
              f"mean {mean * 1e3:7.2f} ms  ratio {rows[-1][5]:.1%}", flush=True)
    env = environment(["tunesmith", "optuna", "scikit-learn", "numpy", "scipy", "torch"])
    lines = [
        START, "## Suggestion cost at 200 trials (`benchmarks/suggestion_cost.py`)", "",
        f"- Command: `{command}`", f"- Date: {env['date']}; tunesmith at {env['code']}",
        f"- Machine: {env['machine']}; load average at the end {env['load']}; one BLAS thread",
        f"- Python {env['python']}; {env['versions']}",
        f"- Task: `linear-iris-acc` (the fastest of the search-quality suite's scikit-learn grid), 3-fold CV, one "
        f"trial at a time, {args.trials} trials, seeds 0-{args.seeds - 1}; medians over trials 191-210, then over "
        "seeds. *Proposal* = `ask` + `tell`. *Ratio* = proposal / trial (for the nominal rows, / 1 s).", "",
        "| optimizer | trial | trial time | proposal, median | proposal, mean | ratio |", "|---|---|---:|---:|---:|---:|",
    ]
    for label, clock, trial, propose, mean, ratio in rows:
        shown_trial = "1 s (nominal)" if clock.startswith("1 s") else f"{trial * 1e3:.2f} ms"
        lines.append(f"| {label} | {clock} | {shown_trial} | {propose * 1e3:.2f} ms | {mean * 1e3:.2f} ms | "
                     f"{ratio:.1%} |")
    lines += ["", END]
    section = "\n".join(lines) + "\n"
    if args.markdown:
        write_section(args.markdown, section, START, END)
        print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
