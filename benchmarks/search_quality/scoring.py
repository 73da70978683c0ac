"""Scores of one run against the random-search reference.

- *normalized* (the suite's score): ``100 * (R - best) / (R - opt)`` with ``R`` the median best loss of random search
  at the same budget and ``opt`` the optimum: 100 = the optimum, 0 = typical random search, negative = worse.
- *Bayesmark* (its own definition, as on the NeurIPS 2020 BBO challenge board): the run's best-so-far at each of the
  16 batch ends, normalized the same way against random search at that point of the budget, clipped at 1 (no
  penalty beyond "as bad as random"), averaged over the 16 points, as ``100 * (1 - mean)``. It rewards finding good
  values early, not only at the end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

CHECKPOINTS = 16


def normalized(best: float, rand_median: float, opt: float) -> float:
    span = rand_median - opt
    if span <= 1e-12 * max(1.0, abs(opt)):
        return math.nan  # random search already finds the optimum at this budget: the problem cannot rank
    return 100.0 * (rand_median - best) / span


def bayesmark(true_losses: Sequence[float], median_best: Sequence[float], opt: float, budget: int) -> float:
    if not true_losses:
        return math.nan
    best_so_far = np.minimum.accumulate(np.asarray(true_losses, dtype=float))
    losses = []
    for t in range(1, CHECKPOINTS + 1):
        n = budget * t // CHECKPOINTS
        b = best_so_far[min(n, len(best_so_far)) - 1]
        span = median_best[n - 1] - opt
        if span <= 1e-12 * max(1.0, abs(opt)):
            return math.nan
        losses.append(min(1.0, (b - opt) / span))
    return 100.0 * (1.0 - float(np.mean(losses)))
