"""The ``drift:`` section of a spec: when new data counts as drifted, and how a triggered re-tune runs.

Every key has a default, so a spec without the section still gets ``tunesmith drift`` with these thresholds::

    drift:
      psi: 0.1             # a column drifted when its population stability index reaches this ...
      alpha: 0.01          # ... and its KS / chi-square p-value is below alpha / (features tested)
      bins: 10             # PSI bins (quantiles of the reference)
      max_score_drop: 0.05 # the champion's score on the new data may be this fraction worse than its holdout score
      categorical_levels: 10   # an integer column with at most this many distinct values is tested as categorical
      target: label        # function-trial experiments: the label column of --reference / --data (optional)
      retune: {trials: 20, top_k: 5, prior: transfer}   # what `retune` / `cycle` run (transfer | rebased | none)
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.strict_model import StrictFloat, StrictInt, StrictModel


class RetuneConfig(StrictModel):
    """A warm-started re-tune: its trial budget and how many prior best configurations run first."""

    trials: StrictInt | None = Field(default=None, gt=0, description="default: half the original trial budget")
    top_k: StrictInt = Field(default=5, ge=0, le=100, description="prior best configurations re-evaluated first")
    prior: Literal["transfer", "rebased", "none"] = Field(
        default="transfer", description="transfer: the old trials are the prior mean of bo's GP, re-scaled on the "
        "new trials; cmaes: its first generation drawn from their best 10%; tpe (one objective, no constraints): "
        "as rebased; other strategies: as none. none: only the top k carry over; rebased: the other old trials "
        "are also replayed, shifted onto the new data's level (for bo measured worse, see benchmarks/RESULTS.md)")
    spread: bool = Field(default=True, description="re-evaluate the old best and then the old good configurations "
                         "farthest apart, instead of the top k (see tunesmith.retune.warm_start_from); false: the "
                         "top k (measured no better, see benchmarks/RESULTS.md)")


class DriftConfig(StrictModel):
    """Thresholds of ``tunesmith drift`` (see the module docstring for the meaning of each)."""

    psi: StrictFloat = Field(default=0.1, gt=0)
    alpha: StrictFloat = Field(default=0.01, gt=0, lt=1)
    bins: StrictInt = Field(default=10, ge=2, le=100)
    max_score_drop: StrictFloat = Field(default=0.05, ge=0)
    categorical_levels: StrictInt = Field(default=10, ge=0, le=1000)
    min_rows: StrictInt = Field(default=20, ge=2, description="fewer new rows than this is bad input, not evidence")
    target: str | None = None
    retune: RetuneConfig = Field(default_factory=RetuneConfig)
