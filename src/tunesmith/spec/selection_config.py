"""The spec's ``constraints`` and ``select`` sections: which trials are acceptable, and how one is picked."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from tunesmith.constraints import Constraint
from tunesmith.errors import quoted
from tunesmith.strict_model import OneOrMore, StrictFloat, StrictModel
from tunesmith.suggestions import closest

POLICIES = ("best", "knee", "weights", "lexicographic", "constraint_first")


def parse_constraints(value: Any) -> Any:
    """A list of ``"metric <= value"`` strings (or one string) -> Constraint records; ValueError names the entry."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise ValueError(f"must be a list of 'metric <= number' / 'metric >= number' strings; got {quoted(value)}")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, Constraint):
            out.append(item)
            continue
        try:
            out.append(Constraint.parse(item))
        except ValueError as e:
            raise ValueError(f"entry {i}: {e}") from None
    return tuple(out)


class SelectConfig(StrictModel):
    """How one trial is picked from the feasible Pareto front.

    ``policy``: best (the first objective), knee (the front's point of diminishing returns), weights (a weighted
    sum of the objectives, each scaled to the front's range), lexicographic (objectives in the given order),
    constraint_first (the feasible trial with the most slack on the constraints, ties by the first objective).
    Short forms: ``select: knee``, ``select: {weights: {accuracy: 1, latency_p95_ms: 0.5}}``,
    ``select: {lexicographic: [latency_p95_ms, accuracy]}``.
    """

    policy: str = "best"
    weights: dict[str, StrictFloat] = Field(default_factory=dict)
    lexicographic: Annotated[tuple[str, ...], OneOrMore] = ()

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"policy": data}
        if isinstance(data, dict) and "policy" not in data:
            if "weights" in data:
                return {"policy": "weights", **data}
            if "lexicographic" in data:
                return {"policy": "lexicographic", **data}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> SelectConfig:
        if self.policy not in POLICIES:
            close = closest(self.policy, POLICIES)
            hint = f"did you mean {close!r}? " if close else ""
            raise ValueError(f"unknown policy {self.policy!r}; {hint}choose one of {', '.join(POLICIES)}")
        if self.policy == "weights" and not self.weights:
            raise ValueError("policy weights needs weights: {metric: weight, ...} naming objectives")
        if self.policy == "lexicographic" and not self.lexicographic:
            raise ValueError("policy lexicographic needs lexicographic: [metric, ...] naming objectives in order")
        if any(w < 0 for w in self.weights.values()):
            raise ValueError("weights must be >= 0 (the direction comes from each objective)")
        return self
