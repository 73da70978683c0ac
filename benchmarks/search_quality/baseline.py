"""The random-search reference of the score, cached in ``random_baseline.json`` beside this file.

For each problem: the median, over many random-search runs, of the best (true) loss found within the first n
trials, for every n up to the largest budget. Cheap problems (synthetic, tabular) run ``runs`` independent
random-search runs. The scikit-learn problems, where each evaluation is a cross-validation, evaluate a pool of
``pool_runs x max budget`` i.i.d. random configurations once and draw ``runs`` runs from it, each a random
subset without replacement: every such run is a random search, but the runs share points.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.search_quality.optimizers.common import sample_random
from benchmarks.search_quality.problems import Problem
from benchmarks.search_quality.runner import eval_rng

CACHE = Path(__file__).resolve().parent / "random_baseline.json"
BASE_SEED = 10_000  # random-search baseline seeds never overlap the benchmark's seeds (0, 1, ...)


def fingerprint(problem: Problem) -> str:
    text = json.dumps([problem.name, problem.note, problem.space.to_json()], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load() -> dict[str, Any]:
    return json.loads(CACHE.read_text()) if CACHE.exists() else {}


def save(cache: dict[str, Any]) -> None:
    CACHE.write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n")


def compute(problem: Problem, max_budget: int, runs: int, pool_runs: int) -> dict[str, Any]:
    if problem.group == "sklearn":
        rng = np.random.default_rng(BASE_SEED)
        ev = eval_rng(problem.name, BASE_SEED)
        pool = np.array([problem.evaluate(sample_random(problem.space, rng), ev)[1]
                         for _ in range(pool_runs * max_budget)])
        curves = np.array([np.minimum.accumulate(pool[rng.permutation(len(pool))[:max_budget]]) for _ in range(runs)])
        method = f"{runs} runs drawn without replacement from a pool of {len(pool)} random configurations"
        best_seen = float(pool.min())
    else:
        curves_l = []
        for r in range(runs):
            rng = np.random.default_rng(BASE_SEED + r)
            ev = eval_rng(problem.name, BASE_SEED + r)
            losses = [problem.evaluate(sample_random(problem.space, rng), ev)[1] for _ in range(max_budget)]
            curves_l.append(np.minimum.accumulate(losses))
        curves = np.array(curves_l)
        method = f"{runs} independent random-search runs"
        best_seen = float(curves[:, -1].min())
    return {"fingerprint": fingerprint(problem), "runs": runs, "method": method,
            "median_best": [float(v) for v in np.median(curves, axis=0)], "best_seen": best_seen}


def get(problems: list[Problem], max_budget: int, runs: int, pool_runs: int, log: Any = print) -> dict[str, Any]:
    """Baselines for these problems, from the cache where it matches, else computed and cached."""
    cache = load()
    changed = False
    for p in problems:
        entry = cache.get(p.name)
        if (entry and entry["fingerprint"] == fingerprint(p) and len(entry["median_best"]) >= max_budget
                and entry["runs"] >= runs):
            continue
        log(f"  random baseline for {p.name} ...")
        cache[p.name] = compute(p, max_budget, runs, pool_runs)
        changed = True
        save(cache)
    if changed:
        save(cache)
    return {p.name: cache[p.name] for p in problems}


def record_best_seen(best: dict[str, float]) -> None:
    """Lower the cached best-ever-seen loss of problems without a known optimum (scikit-learn)."""
    cache = load()
    for name, v in best.items():
        if name in cache and v < cache[name]["best_seen"]:
            cache[name]["best_seen"] = v
    save(cache)
