"""tunesmith's strategies, driven in-process through ``decide`` + ``build_strategy`` (the runner's own path)."""

from __future__ import annotations

import time
from typing import Any

from tunesmith.records import Direction, TrialState
from tunesmith.space import SearchSpace
from tunesmith.strategy import build_strategy, decide


class TrialClock:
    """The strategy's clock. With ``nominal`` seconds it counts that much per evaluation on top of real time: a
    synthetic function or a table look-up stands for a trial that trains a model, and a strategy that keeps its
    own cost in proportion to the trials' (``bo``) must see a trial's cost, not a microsecond. Without it, real
    time (scikit-learn tasks, whose fits are the trials)."""

    def __init__(self, nominal: float | None) -> None:
        self.nominal = nominal or 0.0
        self.evaluations = 0

    def __call__(self) -> float:
        return time.perf_counter() + self.evaluations * self.nominal


class TunesmithSession:
    def __init__(self, space: SearchSpace, seed: int, budget: int, batch: int, strategy: str,
                 trial_seconds: float | None = None) -> None:
        # workers = the batch size: what `auto` and constant liar are told in a parallel run
        self.clock = TrialClock(trial_seconds)
        self.decision = decide(strategy, {}, space, budget, 1, batch)
        self.strategy = build_strategy(self.decision, space, [Direction.MINIMIZE], seed, batch, clock=self.clock)

    def ask(self) -> tuple[Any, dict[str, Any]] | None:
        proposal = self.strategy.ask()
        return None if proposal is None else (proposal.token, dict(proposal.params))

    def tell(self, handle: Any, loss: float) -> None:
        self.clock.evaluations += 1
        self.strategy.tell(handle, TrialState.COMPLETED, [loss])


def make(space: SearchSpace, seed: int, budget: int, batch: int, strategy: str,
         trial_seconds: float | None = None) -> TunesmithSession:
    return TunesmithSession(space, seed, budget, batch, strategy, trial_seconds)


def resolved(space: SearchSpace, budget: int, batch: int, strategy: str) -> tuple[str, dict[str, Any], str]:
    """What a tunesmith strategy name resolves to (``auto``'s pick), without building it."""
    d = decide(strategy, {}, space, budget, 1, batch)
    return d.name, dict(d.options), d.reason
