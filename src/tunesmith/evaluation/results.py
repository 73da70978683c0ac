"""Turn whatever a trial returned into values and metrics, or a readable reason why not."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from tunesmith.records import Failure, FailureKind


def normalize_result(raw: Any, metrics: Sequence[str]) -> tuple[tuple[float, ...], dict[str, float]] | Failure:
    """Values in objective order plus extra numeric metrics; or a Failure(INVALID_RESULT) saying what was wrong.

    A number is the value of a single objective. A mapping must hold every objective metric as a finite number;
    its other numeric keys are kept as metrics.
    """
    if _is_number(raw):
        if len(metrics) != 1:
            return _invalid(f"returned a single number but the experiment has {len(metrics)} objectives; "
                            f"return a dict with keys {', '.join(metrics)}")
        value = float(raw)
        if not math.isfinite(value):
            return _invalid(f"returned {value} for {metrics[0]!r}")
        return (value,), {}
    if isinstance(raw, dict):
        values: list[float] = []
        for m in metrics:
            if m not in raw:
                keys = ", ".join(map(repr, raw)) or "none"
                return _invalid(f"the result has no {m!r} (the objective metric); keys returned: {keys}")
            v = raw[m]
            if not _is_number(v):
                return _invalid(f"{m!r} is {v!r}, not a number")
            if not math.isfinite(float(v)):
                return _invalid(f"{m!r} is {float(v)}")
            values.append(float(v))
        extra = {str(k): float(v) for k, v in raw.items() if k not in metrics and _is_number(v)}
        return tuple(values), extra
    if raw is None:
        return _invalid("returned None; return a number or a dict of metrics")
    return _invalid(f"returned {type(raw).__name__} {_short(raw)}; return a number or a dict of metrics")


def _is_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int | float):
        return True
    # numpy scalars and similar: anything with __float__ that is not a string or container
    return hasattr(v, "__float__") and not isinstance(v, str | bytes) and getattr(v, "shape", ()) == ()


def _invalid(message: str) -> Failure:
    return Failure(FailureKind.INVALID_RESULT, message)


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."
