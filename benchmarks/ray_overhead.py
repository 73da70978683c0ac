"""tunesmith on Ray vs tunesmith's process executor vs Ray Tune, 2 workers, same run; and Ray's cold start.

    python benchmarks/ray_overhead.py [--trials 200] [--sleep-trials 60] [--markdown benchmarks/RESULTS.md]

Each row runs in a fresh interpreter of its own with a fresh temporary folder and SQLite store. Rows:

    noop     the no-op objective (``benchmarks/noop_objective.py``), ``--trials`` trials: per-trial time is the run's
             wall time (store, workers, every trial, closing) divided by the trials.
    sleep    trials that sleep 20-200 ms (a 1:10 spread, uniform; 110 ms on average), ``--sleep-trials`` trials:
             utilization = the trials' own sleep / (2 workers x the run's wall time).

Executors: ``process`` (2 workers); ``ray`` (2 workers) on a local cluster started *before* the clock starts, so the
row shows the per-trial cost, not the cluster's start (measured separately: ``cold start``, the time of
``RayExecutor(address="local").start()`` + its ``close()`` in a fresh interpreter, ``import ray`` excluded);
``ray-tune``: Ray Tune's default function trainable (``tune.Tuner(fn, tune_config=TuneConfig(num_samples=N,
max_concurrent_trials=2))``, random search, on the same pre-started cluster) when ``ray[tune]`` is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from results_file import environment, write_section

BENCH_DIR = Path(__file__).resolve().parent
MARK_START = "<!-- ray-overhead:start (written by benchmarks/ray_overhead.py; edits inside are overwritten) -->"
MARK_END = "<!-- ray-overhead:end -->"
SLEEP_LOW, SLEEP_HIGH = 0.02, 0.2
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}

SLEEPER = """
import random, time

def objective(config, trial=None):
    time.sleep(config["s"])
    return config["s"]
"""


def _init_ray() -> Any:
    os.environ.update(RAY_ENV)
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             object_store_memory=256 * 2**20)
    return ray


def _sleeps(n: int) -> list[float]:
    rng = random.Random(7)
    return [rng.uniform(SLEEP_LOW, SLEEP_HIGH) for _ in range(n)]


def measure(executor: str, kind: str, trials: int) -> dict[str, Any]:
    """One row, in this (fresh) interpreter."""
    folder = tempfile.mkdtemp(prefix=f"ray-overhead-{executor}-{kind}-")
    ray = _init_ray() if executor != "process" else None
    try:
        if executor == "ray-tune":
            return _measure_tune(kind, trials, folder)
        return _measure_tunesmith(executor, kind, trials, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if ray is not None:
            ray.shutdown()


def _measure_tunesmith(executor: str, kind: str, trials: int, folder: str) -> dict[str, Any]:
    import tunesmith
    import tunesmith.executor.process
    import tunesmith.runner
    import tunesmith.strategy.optuna_adapter  # noqa: F401 - imported before the clock starts

    if executor == "ray":
        import tunesmith.executor.ray  # noqa: F401
    sleeps = _sleeps(trials)
    if kind == "noop":
        shutil.copy(BENCH_DIR / "noop_objective.py", folder)
        space: dict[str, Any] = {"x": {"type": "float", "low": 0.0, "high": 1.0}}
        function = "noop_objective:objective"
    else:
        Path(folder, "sleeper.py").write_text(SLEEPER)
        space = {"s": {"type": "categorical", "choices": sleeps}}
        function = "sleeper:objective"
    spec = {"name": "bench", "objective": {"metric": "loss", "direction": "minimize"}, "space": space,
            "strategy": "random", "seed": 1, "budget": {"trials": trials}, "trial": {"function": function},
            "executor": {"kind": executor, "workers": 2, **({"address": "auto"} if executor == "ray" else {})}}
    storage = f"sqlite:///{folder}/bench.db"
    os.chdir(folder)  # a spec given as a mapping lives in the current folder
    started = time.perf_counter()
    result = tunesmith.run(spec, storage=storage)
    wall = time.perf_counter() - started
    done = sorted((t for t in result.trials if t.state.value == "completed"), key=lambda t: t.finished_at or 0.0)
    slept = sum(float(t.params["s"]) for t in done) if kind == "sleep" else 0.0
    # Steady state: from the first trial's end to the last's, so the start (workers, imports) and close are out.
    window = (done[-1].finished_at or 0.0) - (done[0].finished_at or 0.0)
    steady_slept = sum(float(t.params["s"]) for t in done[1:]) if kind == "sleep" else 0.0
    return {"wall": wall, "trials": len(done), "slept": slept, "steady_s": window / max(1, len(done) - 1),
            "steady_util": steady_slept / (2 * window) if window > 0 and kind == "sleep" else None}


def _measure_tune(kind: str, trials: int, folder: str) -> dict[str, Any]:
    from ray import tune

    sleeps = _sleeps(trials)

    def noop(config: dict[str, Any]) -> dict[str, float]:
        return {"loss": config["x"]}

    def sleeper(config: dict[str, Any]) -> dict[str, float]:
        time.sleep(config["s"])
        return {"loss": config["s"]}

    space = {"x": tune.uniform(0, 1)} if kind == "noop" else {"s": tune.choice(sleeps)}
    tuner = tune.Tuner(noop if kind == "noop" else sleeper, param_space=space,
                       tune_config=tune.TuneConfig(num_samples=trials, max_concurrent_trials=2, metric="loss",
                                                   mode="min"),
                       run_config=tune.RunConfig(storage_path=folder, verbose=0))
    started = time.perf_counter()
    grid = tuner.fit()
    wall = time.perf_counter() - started
    done = [r for r in grid if r.error is None]
    slept = sum(r.config["s"] for r in done) if kind == "sleep" else 0.0
    return {"wall": wall, "trials": len(done), "slept": slept, "steady_s": None, "steady_util": None}


def measure_cold_start() -> dict[str, Any]:
    import ray  # noqa: F401 - its import is not part of the cluster's start

    from tunesmith.executor.ray import RayExecutor

    executor = RayExecutor(2, address="local")
    started = time.perf_counter()
    executor.start()
    up = time.perf_counter() - started
    executor.close(0)
    return {"start": up, "start_and_stop": time.perf_counter() - started}


def _child(args: list[str]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH_DIR), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env,
                         timeout=1800)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"row {args} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return json.loads(lines[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--sleep-trials", type=int, default=60)
    p.add_argument("--tune-trials", type=int, default=30, help="Ray Tune rows (about 2 s a trial here)")
    p.add_argument("--cold-starts", type=int, default=3)
    p.add_argument("--no-tune", action="store_true", help="skip the Ray Tune rows")
    p.add_argument("--markdown", help="write the table into this file (between this benchmark's markers)")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        if a.child[0] == "cold":
            print(json.dumps(measure_cold_start()))
        else:
            print(json.dumps(measure(a.child[0], a.child[1], int(a.child[2]))))
        return
    executors = ["process", "ray"]
    try:
        import ray.tune  # noqa: F401
        if not a.no_tune:
            executors.append("ray-tune")
    except ImportError:
        print("ray[tune] is not installed: no Ray Tune rows", file=sys.stderr)
    rows = []
    for kind, n in (("noop", a.trials), ("sleep", a.sleep_trials)):
        for ex in executors:
            r = _child([ex, kind, str(min(n, a.tune_trials) if ex == "ray-tune" else n)])
            per_ms = 1000 * r["wall"] / max(1, r["trials"])
            util = r["slept"] / (2 * r["wall"]) if kind == "sleep" else None
            rows.append((kind, ex, r["trials"], r["wall"], per_ms, util, r["steady_s"], r["steady_util"]))
            print(rows[-1], file=sys.stderr, flush=True)
    colds = [_child(["cold"]) for _ in range(a.cold_starts)]
    lines = ["| trials | executor (2 workers) | trials done | wall s | per trial ms (wall / trials) | utilization "
             "| steady: ms between trial ends | steady utilization |", "|---|---|---|---|---|---|---|---|"]
    for kind, ex, n, wall, per_ms, util, steady_s, steady_util in rows:
        label = {"noop": "no-op", "sleep": f"sleep {int(SLEEP_LOW * 1000)}-{int(SLEEP_HIGH * 1000)} ms"}[kind]
        name = {"process": "tunesmith process", "ray": "tunesmith on Ray (cluster up)",
                "ray-tune": "Ray Tune function trainable (cluster up)"}[ex]
        lines.append(f"| {label} | {name} | {n} | {wall:.2f} | {per_ms:.1f} | "
                     f"{'' if util is None else f'{100 * util:.1f}%'} | "
                     f"{'n/a' if steady_s is None else f'{1000 * steady_s:.1f}'} | "
                     f"{'' if steady_util is None else f'{100 * steady_util:.1f}%'} |")
    cold = ", ".join(f"{c['start']:.1f}" for c in colds)
    stop = ", ".join(f"{c['start_and_stop'] - c['start']:.1f}" for c in colds)
    lines += ["", f"Cold start of `executor: {{kind: ray, address: local}}` (private cluster up + mailbox actor, "
                  f"`import ray` excluded), {len(colds)} runs: {cold} s; its stop: {stop} s."]
    table = "\n".join(lines)
    print(table)
    if a.markdown:
        env = environment(["tunesmith", "ray"])
        section = "\n".join([
            MARK_START, "## Ray executor overhead (issue 14)", "",
            "`python benchmarks/ray_overhead.py " + " ".join(sys.argv[1:]) + "`", "",
            *(f"- {k}: {v}" for k, v in env.items()), "", table, "", MARK_END])
        write_section(Path(a.markdown), section, MARK_START, MARK_END)


if __name__ == "__main__":
    main()
