"""Turn whatever a trial returned into values and metrics, or a readable reason why not."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from typing import Any

from tunesmith.records import Failure, FailureKind
from tunesmith.suggestions import closest


MEASURED_LATER = math.nan
"""The value of an objective the executor measures (a priced run's ``cost``, ``cpu_s``) that the trial did not
return: filled in as the attempt is priced (:func:`tunesmith.cost.priced`), which fails the attempt if it cannot."""


def normalize_result(raw: Any, metrics: Sequence[str],
                     measured: Collection[str] = ()) -> tuple[tuple[float, ...], dict[str, float]] | Failure:
    """Values in objective order plus extra numeric metrics; or a Failure(INVALID_RESULT) saying what was wrong.

    A number is the value of a single objective. A mapping must hold every objective metric as a finite number;
    its other numeric keys are kept as metrics. An objective in ``measured`` (one the executor adds to the trial's
    metrics) need not be returned: its value is :data:`MEASURED_LATER` until the executor's measure fills it in.
    """
    own = [m for m in metrics if m not in measured]
    if _is_number(raw):
        if len(own) != 1:
            return _invalid(f"returned a single number but the experiment has {len(metrics)} objectives; "
                            f"return a dict with keys {', '.join(metrics)}")
        value = _to_float(raw)
        if value is None:
            return _invalid(f"returned {_short(raw)}, which does not convert to a float")
        if not math.isfinite(value):
            return _invalid(f"returned {value} for {own[0]!r}")
        return tuple(value if m == own[0] else MEASURED_LATER for m in metrics), {}
    if isinstance(raw, dict):
        values: list[float] = []
        for m in metrics:
            if m not in raw and m in measured:
                values.append(MEASURED_LATER)
                continue
            if m not in raw:
                keys = ", ".join(map(repr, raw)) or "none"
                close = closest(m, [str(k) for k in raw if k not in metrics])
                hint = (f"; it returned {close!r}, a misspelling? return it as {m!r}, or set the objective's metric "
                        f"to {close!r}" if close else "")
                return _invalid(f"the result has no {m!r} (the objective metric){hint}; keys returned: {keys}")
            v = _to_float(raw[m])
            if v is None:
                return _invalid(f"{m!r} is {_short(raw[m])}, not a number")
            if not math.isfinite(v):
                return _invalid(f"{m!r} is {v}")
            values.append(v)
        extra = {str(k): f for k, v in raw.items() if k not in metrics and (f := _to_float(v)) is not None}
        return tuple(values), extra
    if raw is None:
        return _invalid("returned None; return a number or a dict of metrics")
    if isinstance(raw, tuple | list) and len(metrics) > 1:  # Optuna's way: `return acc, latency`
        return _invalid(f"returned {type(raw).__name__} {_short(raw)}; with {len(metrics)} objectives return a dict "
                        f"with keys {', '.join(metrics)} (e.g. {{{', '.join(f'{m!r}: ...' for m in metrics)}}})")
    return _invalid(f"returned {type(raw).__name__} {_short(raw)}; return a number or a dict of metrics")


def unkept_extras(raw: Any, metrics: Sequence[str]) -> list[str]:
    """The keys of a returned dict that are no objective and no number (a model path, a flag, a list: Optuna's
    user_attrs, ported): :func:`normalize_result` keeps none of them."""
    if not isinstance(raw, dict):
        return []
    return [str(k) for k, v in raw.items() if k not in metrics and _to_float(v) is None]


_UNKEPT_SAID = " are not numbers, so they are not kept"


def unkept_note(keys: Sequence[str]) -> str:
    """The trial's note naming the ``keys`` of its result that were not kept (:func:`unkept_extras`)."""
    return (f"its result's {', '.join(map(repr, keys))}{_UNKEPT_SAID} (a returned dict's other keys are kept as "
            "metrics only where numeric: a string, a bool or a list is not)")


class TrialNotes:
    """The trials' notes as the run's warnings: each trial's own, named by its number, but a note of unkept keys
    once per run (every trial of an objective returns the same keys: the trials' logs have it each time)."""

    def __init__(self) -> None:
        self._said: set[str] = set()

    def say(self, number: int, notes: Sequence[str], warn: Callable[[str], None]) -> None:
        """Say trial ``number``'s ``notes`` (its attempt's that ended it) through ``warn``, but those said already."""
        for note in notes:
            if _UNKEPT_SAID in note:
                if note in self._said:
                    continue
                self._said.add(note)
            warn(f"trial {number}: {note}")


def _is_number(v: Any) -> bool:
    # numpy's bool scalar is no subclass of bool, but a flag is no score either way
    if isinstance(v, bool) or type(v).__name__ in ("bool", "bool_"):
        return False
    if isinstance(v, int | float):
        return True
    # numpy scalars and similar: anything with __float__ that is not a string or container
    return hasattr(v, "__float__") and not isinstance(v, str | bytes) and getattr(v, "shape", ()) == ()


def _to_float(v: Any) -> float | None:
    """``float(v)`` for a number, else None; an int beyond float range is +-inf (float() raises for it)."""
    if not _is_number(v):
        return None
    try:
        return float(v)
    except OverflowError:
        return (math.inf if v > 0 else -math.inf) if isinstance(v, int) else None
    except (TypeError, ValueError):
        return None


def _invalid(message: str) -> Failure:
    return Failure(FailureKind.INVALID_RESULT, message)


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."
