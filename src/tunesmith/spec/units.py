"""Human units in specs: durations (``90s``, ``10m``, ``1h30m``) and memory sizes (``2GiB``, ``512MB``)."""

from __future__ import annotations

import math

import re

from tunesmith.errors import quoted

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}


_NUMBER = re.compile(r"\d+(?:\.\d+)?")
# the accepted forms, said by every refusal
_DURATION_FORMS = "expected a duration like 90s, 10m, 1h30m or 2d (units: ms, s, m, h, d; a bare number is seconds)"


def parse_duration(value: object) -> float:
    """Seconds from a number (seconds), a number written as text (``"90"``: seconds, as ``90`` is) or a string like
    ``90s``, ``10m``, ``1h30m``, ``500ms``, ``2d``.

    Raises:
        ValueError: with the accepted forms, when the value is not a positive duration.
    """
    if isinstance(value, bool):
        raise ValueError(f"{_DURATION_FORMS}; got {quoted(value)}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        pos, seconds = 0, 0.0
        for m in _DURATION.finditer(text):
            if m.start() != pos:
                break
            seconds += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
            pos = m.end()
        if pos != len(text) or not text:
            raise ValueError(f"{_DURATION_FORMS}; got {quoted(value)}")
    else:
        raise ValueError(f"{_DURATION_FORMS}; got {quoted(value)}")
    if not 0 < seconds < math.inf:  # nan passed `seconds <= 0`, and a nan trial_timeout timed nothing out
        raise ValueError(f"must be a finite positive duration; got {quoted(value)}")
    return seconds


def parse_size(value: object) -> int:
    """Bytes from a number (bytes) or a string like ``2GiB``, ``512MiB``, ``1GB``."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size like 512MiB or 2GiB; got {quoted(value)}")
    if isinstance(value, int | float):
        size = int(value)
    elif isinstance(value, str) and (m := _SIZE.match(value)):
        size = int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()])
    else:
        raise ValueError(f"expected a size like 512MiB or 2GiB; got {quoted(value)}")
    if size <= 0:
        raise ValueError(f"must be a positive size; got {quoted(value)}")
    return size


def format_duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"
