"""What `auto` spends choosing the next configuration, against the trials it serves (issue #6's cost target).

    python -m benchmarks.suggestion_cost [--trials 220] [--seeds 3] [--markdown benchmarks/RESULTS.md]

The target: at 200 trials, `auto` spends at most 10% of the fastest scikit-learn task's trial time on a proposal.
The fastest task of the search-quality suite's full grid is `linear-iris-acc` (logistic regression on iris,
3-fold CV, about 3 ms a trial here). Each optimizer runs that task for real, one trial at a time, and the table
reports, over trials 191-210: the median trial (the CV fit) and the median proposal cost (``ask`` plus ``tell``),
and their ratio. A second row per tunesmith strategy runs the same loop on a 1-second trial (a nominal clock, no
sleeping), which shows what the GP costs when nothing holds it back. Needs ``pip install -e .[bench]``.
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

import numpy as np  # noqa: E402

from benchmarks.results_file import environment, write_section  # noqa: E402
from benchmarks.search_quality.optimizers import OPTIMIZERS  # noqa: E402
from benchmarks.search_quality.problems import sklearn_problem  # noqa: E402

START, END = "<!-- suggestion-cost:start -->", "<!-- suggestion-cost:end -->"
WINDOW = (190, 210)   # trial indices (0-based) whose costs are reported: "at 200 trials"
ROWS = [("ts-auto", None), ("ts-auto", 1.0), ("optuna-tpe", None), ("optuna-gp", None)]


@dataclass(frozen=True)
class Measured:
    trial: float          # median trial (the CV fit) over the window, seconds
    propose: float        # median ask + tell over the window
    propose_mean: float
    strategy: str         # what the optimizer ran (auto's pick)


def measure(optimizer: str, nominal: float | None, trials: int, seed: int) -> Measured:
    problem = sklearn_problem("linear", "iris", "acc", 3)
    opt = OPTIMIZERS[optimizer]
    session = opt.make(problem.space, seed, trials, 1, nominal)
    rng = np.random.default_rng(seed)
    trial_s, propose_s = [], []
    for _ in range(trials):
        t0 = time.perf_counter()
        handle, params = session.ask()  # type: ignore[misc]
        t1 = time.perf_counter()
        loss, _ = problem.evaluate(problem.space.validate_params(params), rng)
        t2 = time.perf_counter()
        session.tell(handle, loss)
        t3 = time.perf_counter()
        trial_s.append(t2 - t1)
        propose_s.append((t1 - t0) + (t3 - t2))
    lo, hi = WINDOW
    return Measured(statistics.median(trial_s[lo:hi]), statistics.median(propose_s[lo:hi]),
                    statistics.mean(propose_s[lo:hi]), getattr(getattr(session, "decision", None), "name", optimizer))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=220)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args(argv)
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
    command = "python -m benchmarks.suggestion_cost " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
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
