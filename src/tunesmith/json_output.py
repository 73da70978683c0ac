"""JSON as tunesmith prints it (every ``--json``): strict, so any parser reads it.

JSON has no NaN or infinity, and ``json.dumps`` writes them as the bare ``NaN`` and ``Infinity`` that only Python's
parser accepts. A trial's metric may be either, so a non-finite float is written as its string, ``"nan"``,
``"inf"`` or ``"-inf"``: the convention of ``tunesmith trials --json`` (``TrialRecord.to_json``).
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite_json(value: Any) -> Any:
    """``value`` with every non-finite float, at any depth of its dicts, lists and tuples, as its string."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):  # a key too: json writes a float key as its text, `Infinity` for an infinite one
        return {finite_json(k): finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value


def strict_json(value: Any, **dumps_options: Any) -> str:
    """``json.dumps`` of ``value`` as strict JSON (``allow_nan=False`` holds: nothing non-finite is left)."""
    return json.dumps(finite_json(value), allow_nan=False, **dumps_options)
