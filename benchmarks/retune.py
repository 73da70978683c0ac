"""Warm-started against cold re-tunes on shifted data: trials needed to reach 99% of the cold search's final score.

For each seed: an experiment is tuned on the first half of breast_cancer (ordered by tumour size; see
tunesmith.testing.drift_data) with a logistic regression (C) after SelectKBest (k); then the same experiment is
re-tuned on the shifted second half twice, with the same trial budget and the same strategy: once warm-started
(`tunesmith retune`: the top-k prior configurations re-evaluated first; with --prior rebased the other old trials
are replayed re-based too)
and once cold (`tunesmith retune --cold`: the same new experiment, no warm start). The score is log loss
(cross-validated on the new rows; lower is better), so "99% of the cold search's final score" means a best-so-far
loss at most cold_final / 0.99.

    python benchmarks/retune.py --seeds 5 --base-trials 30 --trials 20 [--markdown benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tunesmith.events import RunListener
from tunesmith.retune import retune
from tunesmith.runner import run_experiment
from tunesmith.spec.loader import load_spec
from tunesmith.storage.sql import SQLStore
from tunesmith.testing.drift_data import shifted_split



def markers(flip: float, prior: str) -> tuple[str, str]:
    """One block of RESULTS.md per label-flip share (concept or covariate-only shift) and warm-start prior."""
    tag = f"retune-flip{flip:g}" + ("" if prior == "rebased" else f"-prior-{prior}")
    return (f"<!-- {tag}:start (written by benchmarks/retune.py; edits inside are overwritten) -->",
            f"<!-- {tag}:end -->")


def spec(seed: int, trials: int, strategy: str) -> dict[str, object]:
    return {
        "name": "bc",
        "objective": {"metric": "neg_log_loss", "direction": "maximize"},
        "task": {"estimator": {"sklearn.linear_model.LogisticRegression": {"max_iter": 5000}},
                 "pipeline": ["sklearn.preprocessing.StandardScaler", "sklearn.feature_selection.SelectKBest"],
                 "data": {"path": "reference.csv", "target": "label"}, "cv": {"kind": "stratified", "folds": 3},
                 "holdout": {"fraction": 0.2}, "scoring": "neg_log_loss", "latency": None},
        "space": {"logisticregression__C": {"type": "float", "low": 0.0001, "high": 100.0, "log": True},
                  "selectkbest__k": {"type": "int", "low": 1, "high": 30}},
        "strategy": strategy, "budget": {"trials": trials}, "executor": {"kind": "inline"}, "seed": seed,
    }


def losses(result: object) -> list[float]:
    """Best-so-far log loss after each trial, in trial order (a failed trial keeps the best so far)."""
    out, best = [], float("inf")
    for t in sorted(result.trials, key=lambda t: t.number):  # type: ignore[attr-defined]
        if t.values:
            best = min(best, -t.values[0])
        out.append(best)
    return out


def trials_to_reach(curve: list[float], threshold: float) -> int | None:
    return next((i + 1 for i, v in enumerate(curve) if v <= threshold), None)


def one_seed(seed: int, base_trials: int, trials: int, top_k: int, strategy: str,
             flip: float, prior: str = "none") -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shifted_split(folder, flip_share=flip)
        (folder / "bc.yaml").write_text(yaml.safe_dump(spec(seed, base_trials, strategy)))
        store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            run_experiment(load_spec(folder / "bc.yaml"), store, RunListener())
            warm = retune(store, "bc", "shifted.csv", trials=trials, top_k=top_k, new_name="warm", prior=prior)
            cold = retune(store, "bc", "shifted.csv", trials=trials, warm=False, new_name="cold")
        finally:
            os.chdir(cwd)
    w, c = losses(warm), losses(cold)
    threshold = c[-1] / 0.99
    return {"seed": seed, "cold_final": c[-1], "warm_final": w[-1], "warm_first": w[0],
            "cold_n": trials_to_reach(c, threshold), "warm_n": trials_to_reach(w, threshold), "trials": trials,
            "warm_curve": [round(v, 4) for v in w], "cold_curve": [round(v, 4) for v in c],
            "warm_params": [dict(t.params) for t in sorted(warm.trials, key=lambda t: t.number)][:8]}


def table(rows: list[dict[str, object]], args: argparse.Namespace, seconds: float) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    import optuna
    import sklearn

    start, end = markers(args.flip, args.prior)
    kind = (f"{args.flip:.0%} of the second half's labels flipped" if args.flip else
            "covariate shift only, no label flipped")
    lines = [start, f"## Re-tuning after drift: warm start against a cold start, {kind} (`benchmarks/retune.py`)",
             "",
             f"- Command: `python benchmarks/retune.py --seeds {args.seeds} --base-trials {args.base_trials} "
             f"--trials {args.trials} --top-k {args.top_k} --strategy {args.strategy} --flip {args.flip:g} "
             f"--prior {args.prior} "
             "--markdown benchmarks/RESULTS.md`",
             f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; tunesmith at commit {commit}; "
             f"{seconds:.0f} s",
             f"- Machine: {os.cpu_count()} CPUs, {platform.platform()}; load average at start "
             f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())} (shared with other engineers' runs)",
             f"- Python {platform.python_version()}; scikit-learn {sklearn.__version__}, optuna {optuna.__version__}",
             "",
             "Data: `tunesmith.testing.drift_data.shifted_split` (breast_cancer ordered by tumour size: the second "
             f"half has larger tumours and another class balance; {kind}). Each seed tunes `bc` on the first half "
             f"({args.base_trials} trials), then re-tunes it on the second half twice with {args.trials} trials "
             f"each and the same strategy ({args.strategy}): warm (top {args.top_k} re-evaluated first; "
             + ("the other old trials replayed re-based" if args.prior == "rebased" else "no other old trial "
                "replayed") + ") and cold. Score: 3-fold CV log loss on the new rows' development part "
             "(lower is better). *to 99%*: trials until the best-so-far loss is within cold_final / 0.99.", "",
             "| seed | cold final loss | warm final loss | warm loss after 1 trial | cold: trials to 99% | "
             "warm: trials to 99% |", "|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['seed']} | {r['cold_final']:.4f} | {r['warm_final']:.4f} | {r['warm_first']:.4f} | "
                     f"{r['cold_n']} | {r['warm_n'] if r['warm_n'] is not None else 'not reached'} |")
    cold_n = [int(r["cold_n"]) for r in rows]  # type: ignore[call-overload]
    warm_n = [int(r["warm_n"]) if r["warm_n"] is not None else args.trials + 1 for r in rows]  # type: ignore[call-overload]
    ratio = statistics.median(warm_n) / statistics.median(cold_n)
    lines += ["", f"Median trials to 99% of the cold final score: warm {statistics.median(warm_n):g}, cold "
              f"{statistics.median(cold_n):g} (ratio {ratio:.2f}; target: at most 0.5, "
              f"{'met' if ratio <= 0.5 else 'not met'}); mean warm {statistics.mean(warm_n):.1f}, cold "
              f"{statistics.mean(cold_n):.1f}. Warm reached it in {sum(r['warm_n'] is not None for r in rows)} of "
              f"{len(rows)} seeds (a seed where it never did counts as {args.trials + 1}). Final loss, mean over "
              f"seeds: warm {statistics.mean(float(r['warm_final']) for r in rows):.4f}, cold "  # type: ignore[arg-type]
              f"{statistics.mean(float(r['cold_final']) for r in rows):.4f}.", end]  # type: ignore[arg-type]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--base-trials", type=int, default=30)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--strategy", default="auto")
    parser.add_argument("--flip", type=float, default=0.15, help="share of the second half's labels flipped")
    parser.add_argument("--prior", choices=("rebased", "none"), default="none",
                        help="warm start: replay the other old trials re-based, or only re-evaluate the top k")
    parser.add_argument("--markdown", help="write the table into this file between its markers")
    args = parser.parse_args()
    started = time.monotonic()
    rows = []
    for seed in range(args.seeds):
        rows.append(one_seed(seed, args.base_trials, args.trials, args.top_k, args.strategy, args.flip, args.prior))
        print(rows[-1], file=sys.stderr, flush=True)
    text = table(rows, args, time.monotonic() - started)
    print(text)
    if args.markdown:
        path = Path(args.markdown)
        old = path.read_text()
        start, end = markers(args.flip, args.prior)
        if start in old:
            text = old[:old.index(start)] + text + old[old.index(end) + len(end):]
        else:
            text = old.rstrip("\n") + "\n\n" + text + "\n"
        path.write_text(text)


if __name__ == "__main__":
    main()
