"""Constraints on trial metrics (``p95_latency_ms <= 20``): parsed once from the spec, checked everywhere.

A trial that lacks the constrained metric (it failed, or never reported it) counts as infeasible.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

_FORM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*(<=|>=)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True, slots=True)
class Constraint:
    metric: str
    op: Literal["<=", ">="]
    bound: float

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """``"metric <= value"`` or ``"metric >= value"``; raises ValueError saying the accepted form."""
        m = _FORM.match(text) if isinstance(text, str) else None
        if m is None:
            raise ValueError(f"must look like 'metric <= number' or 'metric >= number'; got {text!r}")
        return cls(m.group(1), m.group(2), float(m.group(3)))  # type: ignore[arg-type]

    def violation(self, metrics: Mapping[str, float]) -> float:
        """How far ``metrics`` are outside the bound: <= 0 when satisfied, +inf when the metric is missing."""
        value = metrics.get(self.metric)
        if value is None or not isinstance(value, int | float) or math.isnan(value):
            return math.inf
        return float(value) - self.bound if self.op == "<=" else self.bound - float(value)

    def satisfied(self, metrics: Mapping[str, float]) -> bool:
        return self.violation(metrics) <= 0

    def __str__(self) -> str:
        bound = repr(self.bound)
        return f"{self.metric} {self.op} {bound[:-2] if bound.endswith('.0') else bound}"


def feasible(metrics: Mapping[str, float], constraints: Sequence[Constraint]) -> bool:
    return all(c.satisfied(metrics) for c in constraints)
