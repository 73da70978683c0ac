"""Warnings a library (scikit-learn, numpy) raises while the coordinator itself fits a model: the holdout refit and
nested estimate after a run, the refit that `promote` (and so `cycle`) ships. A trial's own warnings go to its log;
these went raw to the console (file, line, the ``warnings.warn(`` source line), once per place, even under `run -q`.
Captured here, they are said once each, one line, as the run's warnings (`run`) or the command's (`promote`,
`cycle`). The filters in force are kept: what Python would not have shown is not shown either.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def captured() -> Iterator[list[str]]:
    """Record the warnings raised inside; on leaving, the list yielded holds each distinct one as
    ``"Category: first line of the message"`` (with ``(N times)`` when repeated), in the order first raised."""
    said: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        try:
            yield said
        finally:
            counts: dict[str, int] = {}
            for w in caught:
                lines = str(w.message).strip().splitlines() or [""]
                text = f"{w.category.__name__}: {lines[0]}"
                counts[text] = counts.get(text, 0) + 1
            said.extend(text if n == 1 else f"{text} ({n} times)" for text, n in counts.items())


def explained(estimates: dict[str, Any], said: list[str]) -> dict[str, Any]:
    """The after-run ``estimates`` to record, with ``why_undefined`` (the warnings ``said`` while refitting and
    scoring) on a holdout whose score is undefined (NaN: one class only in the holdout, one row for R^2): shown
    without them it is a bare ``nan``, and the warnings were said once, by the run, and lost."""
    holdout = estimates.get("holdout")
    if not holdout or not said or all(math.isfinite(v) for k, v in holdout.items()
                                      if k.startswith("holdout_") and isinstance(v, float)):
        return estimates
    return {**estimates, "holdout": {**holdout, "why_undefined": list(said)}}
