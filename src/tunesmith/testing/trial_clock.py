"""A clock for strategies that weigh their own cost against the trials' (``bo``), when the trials are stand-ins."""

from __future__ import annotations

import time


class TrialClock:
    """Real time plus ``trial_seconds`` for every finished trial (advance ``finished`` as each ends).

    A synthetic function or a table look-up stands for a trial that trains a model: a strategy timed with this
    clock sees each such evaluation take ``trial_seconds``, while its own work is still timed for real.
    """

    def __init__(self, trial_seconds: float) -> None:
        self.trial_seconds = trial_seconds
        self.finished = 0

    def __call__(self) -> float:
        return time.perf_counter() + self.finished * self.trial_seconds
