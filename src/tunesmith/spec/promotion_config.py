"""The ``promotion:`` section of a spec (and the ``--policy`` file): the gates a trial must pass to be promoted.

Example::

    promotion:
      min: {holdout_accuracy: 0.9}                 # any recorded metric: trial metrics, holdout_*, latency, size
      max: {latency_p95_ms: 5, model_size_bytes: 2000000}
      beat_champion: {metric: accuracy, margin: 0.0, confidence: 0.95}
      max_fold_spread: 0.05
      safe_ranges: {C: [0.01, 100], kernel: {choices: [rbf, linear]}}
      require_tags: [owner, ticket]                # or {owner: ml-platform}
      policy: platform-policy.yaml                 # a file with the same keys; its gates add to these

A policy file has the same keys (without ``policy``). Where both name the same metric or parameter, the policy
file wins: it is what a platform team maintains.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from tunesmith.errors import quoted
from tunesmith.strict_model import StrictFloat, StrictInt, StrictModel


class BeatChampion(StrictModel):
    """The candidate must beat the model holding alias ``champion`` on ``metric`` by at least ``margin``.

    For a task with a holdout both models are scored on the same holdout rows and the gate uses the lower end of a
    one-sided paired bootstrap interval of the improvement at ``confidence``; otherwise the improvement is the
    difference of the recorded values.
    """

    metric: str = Field(min_length=1)
    margin: StrictFloat = 0.0
    confidence: StrictFloat = Field(default=0.95, ge=0.5, lt=1.0)
    resamples: StrictInt = Field(default=1000, ge=50, le=100_000)


class SafeRange(StrictModel):
    """Allowed values of one parameter: ``[low, high]`` (both included) or ``{choices: [...]}``."""

    low: StrictFloat | None = None
    high: StrictFloat | None = None
    choices: tuple[Any, ...] | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        if isinstance(data, list | tuple):
            if len(data) != 2:
                raise ValueError(f"a range is [low, high]; got {quoted(list(data))} (use {{choices: [...]}} for a set)")
            return {"low": data[0], "high": data[1]}
        return data

    @model_validator(mode="after")
    def _one_form(self) -> SafeRange:
        if self.choices is None and self.low is None and self.high is None:
            raise ValueError("give [low, high], {low, high} or {choices: [...]}")
        if self.choices is not None and (self.low is not None or self.high is not None):
            raise ValueError("give either a range or choices, not both")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low must be <= high; got [{self.low}, {self.high}]")
        return self


class PromotionConfig(StrictModel):
    """Every gate is optional; a promotion with no gate at all is allowed (and its report says so)."""

    min: dict[str, StrictFloat] = Field(default_factory=dict)
    max: dict[str, StrictFloat] = Field(default_factory=dict)
    beat_champion: BeatChampion | None = None
    max_fold_spread: StrictFloat | None = Field(default=None, ge=0)
    safe_ranges: dict[str, SafeRange] = Field(default_factory=dict)
    require_tags: dict[str, str | None] = Field(default_factory=dict)
    policy: str | None = Field(default=None, description="a policy file (YAML) with more gates")

    @field_validator("require_tags", mode="before")
    @classmethod
    def _tags_as_mapping(cls, v: Any) -> Any:
        if isinstance(v, list | tuple):
            return {str(k): None for k in v}
        return v

    def merged(self, other: PromotionConfig) -> PromotionConfig:
        """These gates with ``other``'s added (``other`` wins where both set the same key; its ``beat_champion:
        null`` turns the gate off: a champion whose files are lost cannot be compared with)."""
        return PromotionConfig(
            min={**self.min, **other.min}, max={**self.max, **other.max},
            beat_champion=other.beat_champion if "beat_champion" in other.model_fields_set else self.beat_champion,
            max_fold_spread=other.max_fold_spread if other.max_fold_spread is not None else self.max_fold_spread,
            safe_ranges={**self.safe_ranges, **other.safe_ranges},
            require_tags={**self.require_tags, **other.require_tags},
        )
