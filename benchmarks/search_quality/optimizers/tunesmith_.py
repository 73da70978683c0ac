"""tunesmith's strategies, driven in-process through ``decide`` + ``build_strategy`` (the runner's own path)."""

from __future__ import annotations

from typing import Any

from tunesmith.records import Direction, TrialState
from tunesmith.space import SearchSpace
from tunesmith.strategy import build_strategy, decide
from tunesmith.testing.trial_clock import TrialClock


class TunesmithSession:
    def __init__(self, space: SearchSpace, seed: int, budget: int, batch: int, strategy: str,
                 trial_seconds: float | None = None) -> None:
        # workers = the batch size: what `auto` and constant liar are told in a parallel run. The clock: a synthetic
        # function or table look-up stands for a trial of `trial_seconds`; None = real time (scikit-learn fits).
        self.clock = TrialClock(trial_seconds or 0.0)
        self.decision = decide(strategy, {}, space, budget, 1, batch)
        self.strategy = build_strategy(self.decision, space, [Direction.MINIMIZE], seed, batch, clock=self.clock)

    def ask(self) -> tuple[Any, dict[str, Any]] | None:
        proposal = self.strategy.ask()
        return None if proposal is None else (proposal.token, dict(proposal.params))

    def tell(self, handle: Any, loss: float) -> None:
        self.clock.finished += 1
        self.strategy.tell(handle, TrialState.COMPLETED, [loss])


def make(space: SearchSpace, seed: int, budget: int, batch: int, strategy: str,
         trial_seconds: float | None = None) -> TunesmithSession:
    return TunesmithSession(space, seed, budget, batch, strategy, trial_seconds)


def resolved(space: SearchSpace, budget: int, batch: int, strategy: str) -> tuple[str, dict[str, Any], str]:
    """What a tunesmith strategy name resolves to (``auto``'s pick), without building it."""
    d = decide(strategy, {}, space, budget, 1, batch)
    return d.name, dict(d.options), d.reason
