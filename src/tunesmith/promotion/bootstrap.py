"""A paired bootstrap over holdout rows: is the candidate really better than the champion, or just lucky?"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PairedInterval:
    candidate: float          # each model's score on all rows
    champion: float
    improvement: float        # candidate - champion, signed so that > 0 is better
    low: float                # one-sided lower bound at ``confidence``
    high: float               # the matching upper quantile (for the report)
    resamples: int
    rows: int
    redrawn: int = 0          # resamples drawn again: the metric was undefined on them (one class only, for ROC AUC)


def paired_bootstrap(score: Callable[[Any, np.ndarray, np.ndarray], float], candidate: Any, champion: Any,
                     X: np.ndarray, y: np.ndarray, maximize: bool, confidence: float, resamples: int,
                     seed: int, champion_X: np.ndarray | None = None) -> PairedInterval:
    """Resample the rows with replacement ``resamples`` times; score both models on the same resample each time.
    ``champion_X``: the same rows as the champion's experiment encodes them (None: as ``X``), row for row.

    A resample on which the scorer fails or gives no number (one class only, for ROC AUC) is drawn again, at most
    10x as many tries; how many were is ``redrawn``. Their UndefinedMetricWarning is not shown (hundreds of times on a
    small holdout, said as the refit's); any other warning is.

    Raises:
        ValueError: no resample could be scored.
    """
    sign = 1.0 if maximize else -1.0
    Xc = X if champion_X is None else champion_X
    cand_all, champ_all = score(candidate, X, y), score(champion, Xc, y)
    rng = np.random.default_rng(seed)
    diffs: list[float] = []
    tries = 0
    n = len(y)
    from sklearn.exceptions import UndefinedMetricWarning

    with warnings.catch_warnings():
        # only the redrawn resamples' own warning: every other (a scorer's, another thread's) is still said
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        while len(diffs) < resamples and tries < 10 * resamples:
            tries += 1
            idx = rng.integers(0, n, n)
            try:
                d = sign * (score(candidate, X[idx], y[idx]) - score(champion, Xc[idx], y[idx]))
            except ValueError:
                continue
            if np.isfinite(d):
                diffs.append(float(d))
    if not diffs:
        raise ValueError(f"the metric is undefined on every one of {tries} resamples of the {n} holdout rows "
                         "(one class only, say)")
    arr = np.asarray(diffs)
    return PairedInterval(cand_all, champ_all, sign * (cand_all - champ_all),
                          float(np.quantile(arr, 1 - confidence)), float(np.quantile(arr, confidence)),
                          len(diffs), n, tries - len(diffs))
