"""What live MLflow tracking costs the tuning loop: the same run without tracking and with it, side by side.

    python benchmarks/tracking_overhead.py [--trials 60] [--trial-ms 0 20] [--repeats 2] [--executor inline]

Each row runs ``--trials`` trials of a trial that sleeps ``--trial-ms`` milliseconds (plus an intermediate report
per trial), in a fresh interpreter and folder, once without a ``tracking:`` section and once with live tracking to
a fresh SQLite MLflow database (``sqlite:///mlflow.db``, no server). Rows alternate, so load from elsewhere hits
both alike. MLflow is imported before the clock starts in both rows and its database schema is created beforehand
(its first use builds ~50 migrations, a one-time cost of an MLflow database, not of tracking).

Columns: per-trial loop time (from the run's ``run_running`` event to its ``run_completed`` event, divided by the
trials: what the tuning loop pays), the ratio to no tracking, the extra wait at the end of the run for the
tracker to finish writing (the flush), and the trial runs found in MLflow afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap

CHILD = textwrap.dedent('''
    import json, sys, time
    import mlflow  # imported before the clock in both rows
    import tunesmith
    from tunesmith.storage.sql import SQLStore
    t0 = time.perf_counter()
    result = tunesmith.run(sys.argv[1], storage="sqlite:///ts.db")
    total = time.perf_counter() - t0
    store = SQLStore("sqlite:///ts.db", create=False)
    events = store.events(result.experiment.id)
    start = next(e.at for e in events if e.kind == "run_running")
    end = next(e.at for e in events if e.kind == "run_completed")
    print(json.dumps({"loop_s": end - start, "total_s": total, "end_at": end, "trials": len(result.trials),
                      "failed_events": sum(e.kind == "tracking_failed" for e in events)}))
''')

OBJECTIVE = textwrap.dedent('''
    import time
    def objective(config, trial):
        trial.report(0, config["x"])
        ms = float(__import__("os").environ.get("TRIAL_MS", "0"))
        if ms:
            time.sleep(ms / 1000)
        return (config["x"] - 0.3) ** 2
''')


def run_once(trials: int, trial_ms: float, tracked: bool, executor: str) -> dict:
    folder = tempfile.mkdtemp(prefix="ts-tracking-bench-")
    try:
        with open(os.path.join(folder, "bench_objective.py"), "w") as f:
            f.write(OBJECTIVE)
        spec = {"name": "bench", "objective": {"metric": "loss", "direction": "minimize"},
                "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}}, "strategy": "random",
                "budget": {"trials": trials}, "executor": {"kind": executor, "workers": 1},
                "trial": {"function": "bench_objective:objective"}, "seed": 0}
        env = {**os.environ, "TRIAL_MS": str(trial_ms), "MLFLOW_DISABLE_TELEMETRY": "true"}
        if tracked:
            spec["tracking"] = {"mlflow": {"uri": "sqlite:///mlflow.db", "flush_timeout": 600}}
            subprocess.run([sys.executable, "-c", "import mlflow; mlflow.MlflowClient('sqlite:///mlflow.db')"
                            ".search_experiments()"], cwd=folder, env=env, check=True, capture_output=True)
        with open(os.path.join(folder, "bench.yaml"), "w") as f:
            json.dump(spec, f)  # JSON is YAML
        proc = subprocess.run([sys.executable, "-c", CHILD, "bench.yaml"], cwd=folder, env=env, capture_output=True,
                              text=True, check=True)
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        row["mlflow_trial_runs"] = 0
        if tracked:
            with sqlite3.connect(os.path.join(folder, "mlflow.db")) as conn:
                row["mlflow_trial_runs"] = conn.execute(
                    "SELECT COUNT(*) FROM tags WHERE key = 'tunesmith.kind' AND value = 'trial'").fetchone()[0]
        return row
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--trial-ms", type=float, nargs="+", default=[0.0, 20.0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--executor", default="inline", choices=["inline", "process"])
    args = ap.parse_args()
    import mlflow

    import tunesmith

    print(f"tunesmith {tunesmith.__version__}, mlflow {mlflow.__version__}, python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {args.trials} trials, executor "
          f"{args.executor}, {args.repeats} repeats (median)")
    print("| trial | tracking | per-trial loop ms | ratio | end-of-run flush s | MLflow trial runs |")
    print("|---|---|---|---|---|---|")
    for ms in args.trial_ms:
        rows: dict[bool, list[dict]] = {False: [], True: []}
        for _ in range(args.repeats):
            for tracked in (False, True):
                rows[tracked].append(run_once(args.trials, ms, tracked, args.executor))
        base = statistics.median(r["loop_s"] for r in rows[False]) / args.trials
        for tracked in (False, True):
            per = statistics.median(r["loop_s"] for r in rows[tracked]) / args.trials
            flush = statistics.median(r["total_s"] - r["loop_s"] for r in rows[tracked]) - (
                statistics.median(r["total_s"] - r["loop_s"] for r in rows[False]))
            print(f"| {ms:g} ms | {'live MLflow' if tracked else 'off'} | {per * 1000:.2f} | {per / base:.2f}x | "
                  f"{flush if tracked else 0:.2f} | {rows[tracked][-1]['mlflow_trial_runs']} |")


if __name__ == "__main__":
    main()
