"""Random search: uniform (log-uniform on log scales), numpy only. Also what the score's baseline runs."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.search_quality.optimizers.common import sample_random
from tunesmith.space import SearchSpace


class RandomSession:
    def __init__(self, space: SearchSpace, seed: int) -> None:
        self.space = space
        self.rng = np.random.default_rng(seed)

    def ask(self) -> tuple[Any, dict[str, Any]]:
        return None, sample_random(self.space, self.rng)

    def tell(self, handle: Any, loss: float) -> None:
        pass


def make(space: SearchSpace, seed: int, budget: int, batch: int) -> RandomSession:
    return RandomSession(space, seed)
