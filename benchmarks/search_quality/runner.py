"""One run: one optimizer on one problem with one seed, in one regime (sequential or batch)."""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from benchmarks.search_quality.optimizers import OPTIMIZERS
from benchmarks.search_quality.problems import Problem


@dataclass(frozen=True)
class Regime:
    name: str       # sequential | batch | realclock
    batches: int
    batch: int
    # True: every problem is timed for real (no nominal trial time told to tunesmith), as a user's cheap function,
    # recorded table or fast model is; the run is then what `executor: {kind: inline}` does, one trial at a time.
    real_clock: bool = False

    @property
    def budget(self) -> int:
        return self.batches * self.batch


REGIMES = {"sequential": Regime("sequential", 48, 1), "batch": Regime("batch", 16, 8),
           "realclock": Regime("realclock", 40, 1, real_clock=True)}


@dataclass
class RunResult:
    problem: str
    optimizer: str
    seed: int
    regime: str
    true_losses: list[float]     # in evaluation order (what the score counts)
    observed_best: float
    suggest_s: float             # time inside ask() and tell(), all trials together
    wall_s: float
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def eval_rng(problem: str, seed: int) -> np.random.Generator:
    """The tabular problems' noise: one stream per (problem, seed), the same for every optimizer."""
    return np.random.default_rng([seed, sum(map(ord, problem))])


def run_one(problem: Problem, optimizer_id: str, seed: int, regime: Regime) -> RunResult:
    opt = OPTIMIZERS[optimizer_id]
    rng = eval_rng(problem.name, seed)
    true: list[float] = []
    observed_best = float("inf")
    suggest = 0.0
    start = time.perf_counter()
    try:
        t0 = time.perf_counter()
        trial_seconds = None if regime.real_clock else problem.trial_seconds
        session = opt.make(problem.space, seed, regime.budget, regime.batch, trial_seconds)
        suggest += time.perf_counter() - t0
        for _ in range(regime.batches):
            handles = []
            for _ in range(regime.batch):
                t0 = time.perf_counter()
                got = session.ask()
                suggest += time.perf_counter() - t0
                if got is None:  # a finished grid
                    break
                handles.append(got)
            if not handles:
                break
            for handle, params in handles:
                params = problem.space.validate_params(params)  # an adapter bug fails loudly, not silently
                obs, tru = problem.evaluate(params, rng)
                t0 = time.perf_counter()
                session.tell(handle, obs)
                suggest += time.perf_counter() - t0
                true.append(tru)
                observed_best = min(observed_best, obs)
            if len(handles) < regime.batch:
                break
        error = None
    except Exception as e:  # reported in the tables as a crash, never silently scored
        error = f"{type(e).__name__}: {e} | {traceback.format_exc(limit=-2).strip().splitlines()[-3]}"
    return RunResult(problem.name, optimizer_id, seed, regime.name, true, observed_best, suggest,
                     time.perf_counter() - start, error)
