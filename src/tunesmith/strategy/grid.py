"""Grid search: every configuration of a finite grid, conditions respected, each proposed once."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence

from tunesmith.records import ParamValue, Report, TrialRecord, TrialState
from tunesmith.space import SearchSpace
from tunesmith.strategy.base import Proposal


class GridStrategy:
    """Args:
        space: the search space.
        points: values per float parameter without a step (ints and categoricals use all their values).
        shuffle: visit the grid in a seeded random order (better when the budget is smaller than the grid).
        seed: seed for ``shuffle``.
    """

    def __init__(self, space: SearchSpace, points: int = 5, shuffle: bool = False, seed: int = 0) -> None:
        self.space = space
        self.points = points
        self.shuffle = shuffle
        self.seed = seed
        self._queue: list[dict[str, ParamValue]] | None = None
        self._tokens = 0

    def _pending(self) -> list[dict[str, ParamValue]]:
        if self._queue is None:
            grid = list(self.space.iter_grid(self.points))
            if self.shuffle:
                random.Random(self.seed).shuffle(grid)
            self._queue = grid[::-1]  # pop() from the end keeps the declared order
        return self._queue

    def replay(self, history: Sequence[TrialRecord]) -> None:
        seen = {_key(t.params) for t in history}
        self._queue = [p for p in self._pending() if _key(p) not in seen]

    def ask(self) -> Proposal | None:
        queue = self._pending()
        if not queue:
            return None
        self._tokens += 1
        return Proposal(self._tokens, queue.pop())

    def adopt(self, params: dict[str, ParamValue]) -> Proposal:
        key = _key(params)
        self._queue = [p for p in self._pending() if _key(p) != key]
        self._tokens += 1
        return Proposal(self._tokens, dict(params))

    def report(self, token: int, report: Report) -> None:
        pass

    def tell(self, token: int, state: TrialState, values: Sequence[float] | None,
             metrics: Mapping[str, float] | None = None) -> None:
        pass


def _key(params: dict[str, ParamValue] | object) -> str:
    return json.dumps(params, sort_keys=True, default=str)
