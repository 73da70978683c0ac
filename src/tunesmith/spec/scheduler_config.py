"""The ``scheduler:`` section of a spec: which early-stopping rule runs, with what resources.

A discriminated union on ``name``::

    scheduler: none                                   # the default: every trial runs to its end
    scheduler: median                                 # the median rule with its defaults
    scheduler: {name: median, warmup_steps: 5, min_trials: 5, interval_steps: 1}
    scheduler: {name: asha, min_resource: 1, max_resource: 27, reduction_factor: 3}
    scheduler: {name: hyperband, min_resource: 1, max_resource: 27, reduction_factor: 3, brackets: 2}
    scheduler: {name: pbt, population_size: 8, perturbation_interval: 4, max_resource: 27,
                mutations: {lr: {factors: [0.5, 2.0]}, optimizer: {resample: true}, depth: {keep: true}}}

A *step* is the resource a trial has consumed (an epoch, an iteration); steps are ints >= 0. ``max_resource`` is
the step at which a trial is fully trained; rungs lie strictly below it.

The rung arithmetic (:func:`rung_steps`, :func:`bracket_count`) lives here, in the earlier layer, so that the
spec validates with exactly the numbers the schedulers later use.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from tunesmith.errors import quoted
from tunesmith.records import ParamValue
from tunesmith.strict_model import StrictModel
from tunesmith.suggestions import closest

SCHEDULER_NAMES = ("none", "median", "asha", "hyperband", "pbt")
# Names whose sections have a required field, so the bare string cannot stand for them.
_NEEDS_MAPPING = {"asha": "{name: asha, max_resource: 27}", "hyperband": "{name: hyperband, max_resource: 27}"}

# Strict ints: YAML `true` or "27" for a step count is a typo, not a number.
_StrictInt = Annotated[int, Field(strict=True)]


def rung_steps(min_resource: int, max_resource: int, reduction_factor: int,
               min_early_stopping_rate: int = 0) -> tuple[int, ...]:
    """The steps at which successive halving decides: ``min_resource * eta ** (rate + k)`` below ``max_resource``.

    Integer arithmetic on purpose: ``math.log`` of an exact power can land just under the integer.

    Args:
        min_resource: the first rung's step when ``min_early_stopping_rate`` is 0.
        max_resource: the step at which a trial is fully trained; no rung at or past it.
        reduction_factor: eta, the ratio between consecutive rungs.
        min_early_stopping_rate: how many of the lowest rungs to skip (Hyperband's bracket index).

    Returns:
        The rung steps in increasing order; empty when even the first lies at or past ``max_resource``.
    """
    steps = []
    step = min_resource * reduction_factor**min_early_stopping_rate
    while step < max_resource:
        steps.append(step)
        step *= reduction_factor
    return tuple(steps)


def bracket_count(min_resource: int, max_resource: int, reduction_factor: int) -> int:
    """Hyperband's ``s_max + 1``: ``floor(log_eta(max_resource / min_resource)) + 1``, in integers."""
    count, step = 0, min_resource
    while step <= max_resource:
        count += 1
        step *= reduction_factor
    return count


class NoSchedulerConfig(StrictModel):
    """``scheduler: none``: every trial runs until it returns."""

    name: Literal["none"] = "none"

    @property
    def stop_rule(self) -> None:
        """Nothing stops a trial early."""
        return None


class MedianConfig(StrictModel):
    """The median stopping rule (Golovin et al. 2017, as Optuna's ``MedianPruner``).

    A trial is stopped at a check step when its best value so far is worse than the median of the values that
    completed trials had at that step. Checks are at steps ``warmup_steps + k * interval_steps``: the first at step
    ``warmup_steps`` itself, as Optuna's ``n_warmup_steps`` (a loop reporting from step 0 is first judged at its
    ``warmup_steps + 1``-th report).
    """

    name: Literal["median"] = "median"
    warmup_steps: _StrictInt = Field(
        default=0, ge=0, description="the step of the first check: no trial is stopped at a step below it")
    min_trials: _StrictInt = Field(
        default=5, ge=1, description="completed trials that must have reached a step before it is judged")
    interval_steps: _StrictInt = Field(default=1, ge=1, description="steps between checks, counted from warmup")

    @property
    def stop_rule(self) -> str:
        """Why this rule stops a trial, in words (a stopped trial's log says it)."""
        return "its best value so far was worse than the median of the completed trials' values at that step"


class ASHAConfig(StrictModel):
    """Asynchronous successive halving (Li et al. 2020): keep the top ``1/reduction_factor`` at each rung."""

    name: Literal["asha"] = "asha"
    min_resource: _StrictInt = Field(default=1, ge=1, description="the step of the first rung")
    max_resource: _StrictInt = Field(ge=1, description="the step at which a trial is fully trained")
    reduction_factor: _StrictInt = Field(default=3, ge=2, description="eta: one in eta trials goes on at a rung")
    min_early_stopping_rate: _StrictInt = Field(default=0, ge=0, description="lowest rungs to skip")

    @property
    def stop_rule(self) -> str:
        """Why ASHA stops a trial, in words (a stopped trial's log says it)."""
        return f"its value at a rung was not in the top 1/{self.reduction_factor} of the trials that reached it"

    # Cross-field checks are field validators (fields validate in declaration order, so the earlier ones are in
    # info.data) rather than a model validator: the error's path then names the field to fix.
    @field_validator("max_resource")
    @classmethod
    def _above_min(cls, v: int, info: ValidationInfo) -> int:
        return _check_max_resource(v, info)

    @field_validator("min_early_stopping_rate")
    @classmethod
    def _leaves_a_rung(cls, v: int, info: ValidationInfo) -> int:
        low, high, eta = (info.data.get(k) for k in ("min_resource", "max_resource", "reduction_factor"))
        if low is None or high is None or eta is None:
            return v  # an earlier field failed; that error is the one to report
        if not rung_steps(low, high, eta, v):
            highest = len(rung_steps(low, high, eta)) - 1
            raise ValueError(
                f"must leave a rung below max_resource={high}, but the first rung would be at step "
                f"{low * eta**v}; got {v} (use at most {highest})")
        return v


class HyperbandConfig(StrictModel):
    """Hyperband (Li et al. 2018) run as several ASHA brackets (Li et al. 2020), as Optuna's ``HyperbandPruner``.

    Bracket ``i`` is ASHA with ``min_early_stopping_rate = i``; bracket 0 stops most aggressively.
    """

    name: Literal["hyperband"] = "hyperband"
    min_resource: _StrictInt = Field(default=1, ge=1, description="the step of bracket 0's first rung")
    max_resource: _StrictInt = Field(ge=1, description="the step at which a trial is fully trained")
    reduction_factor: _StrictInt = Field(default=3, ge=2, description="eta: one in eta trials goes on at a rung")
    brackets: _StrictInt | None = Field(
        default=None, ge=1, description="how many brackets, most aggressive first; default: all of them")

    @field_validator("max_resource")
    @classmethod
    def _above_min(cls, v: int, info: ValidationInfo) -> int:
        return _check_max_resource(v, info)

    @field_validator("brackets")
    @classmethod
    def _bracket_range(cls, v: int | None, info: ValidationInfo) -> int | None:
        low, high, eta = (info.data.get(k) for k in ("min_resource", "max_resource", "reduction_factor"))
        if v is None or low is None or high is None or eta is None:
            return v
        available = bracket_count(low, high, eta)
        if v > available:
            raise ValueError(
                f"must be <= {available}, the brackets that min_resource={low}, max_resource={high} and "
                f"reduction_factor={eta} allow (floor(log_eta(max_resource / min_resource)) + 1); got {v} "
                "(lower it, or raise max_resource)")
        return v

    @property
    def available_brackets(self) -> int:
        return bracket_count(self.min_resource, self.max_resource, self.reduction_factor)

    @property
    def bracket_total(self) -> int:
        """The number of brackets in use."""
        return self.brackets if self.brackets is not None else self.available_brackets

    @property
    def stop_rule(self) -> str:
        """Why Hyperband stops a trial, in words (a stopped trial's log says it)."""
        return (f"its value at a rung was not in the top 1/{self.reduction_factor} of the trials of its bracket "
                "that reached it")


# Positive, finite floats: a perturbation factor of 0, a negative one or inf would leave the domain or its sign.
_Factor = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
_StrictFloat = Annotated[float, Field(strict=True)]


class Mutation(StrictModel):
    """How PBT explores one parameter when it copies a trial: exactly one of the four keys.

    - ``{resample: true}``: draw a fresh value from the parameter's domain at every exploit.
    - ``{factors: [a, b]}``: a numeric parameter moves by one of these factors (instead of the section's
      ``perturbation_factors``), or is resampled with ``resample_probability``.
    - ``{choices: [...]}``: the parameter moves to a neighbour in this list, or to any entry of it with
      ``resample_probability``; the values must lie in the parameter's domain.
    - ``{keep: true}``: never changed (a parameter a checkpoint cannot survive changing: the architecture).

    Which parameters exist, and whether the values fit their domains, is checked against the search space by
    :func:`tunesmith.scheduler.build_scheduler`.
    """

    resample: Literal[True] | None = None
    factors: list[_Factor] | None = Field(default=None, min_length=1)
    choices: list[ParamValue] | None = Field(default=None, min_length=1)
    keep: Literal[True] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Mutation:
        given = [k for k in ("resample", "factors", "choices", "keep") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of resample: true, factors: [a, b], choices: [...] or keep: true; got "
                + (", ".join(given) if given else "none of them"))
        return self


class PBTConfig(StrictModel):
    """Population-based training (Jaderberg et al. 2017), as Ray Tune's ``PopulationBasedTraining``, on trials.

    Every ``perturbation_interval`` steps a trial is ranked among the population's values at that step; one in
    the bottom ``quantile_fraction`` is stopped and replaced by a new trial that continues from the checkpoint of
    a top-quantile trial with perturbed parameters. Trials must save checkpoints (``trial.save_checkpoint``) and
    resume from ``trial.load_checkpoint()``.
    """

    name: Literal["pbt"] = "pbt"
    population_size: _StrictInt = Field(
        default=8, ge=2, description="how many of the latest trials at a step a trial is ranked among")
    perturbation_interval: _StrictInt = Field(default=4, ge=1, description="steps between rankings")
    quantile_fraction: _StrictFloat = Field(
        default=0.25, gt=0, le=0.5, description="the bottom fraction is replaced by copies of the top fraction")
    resample_probability: _StrictFloat = Field(
        default=0.25, ge=0, le=1, description="chance that a parameter is redrawn from its domain, not perturbed")
    perturbation_factors: list[_Factor] = Field(
        default_factory=lambda: [0.8, 1.2], min_length=1, description="a numeric parameter moves by one of these")
    max_resource: _StrictInt | None = Field(
        default=None, ge=1, description="the step at which a trial is fully trained; not ranked at or past it")
    mutations: dict[str, Mutation] = Field(
        default_factory=dict, description="per-parameter exploration; other parameters get the defaults")

    @field_validator("max_resource")
    @classmethod
    def _past_an_interval(cls, v: int | None, info: ValidationInfo) -> int | None:
        interval = info.data.get("perturbation_interval")
        if v is not None and interval is not None and v <= interval:
            raise ValueError(
                f"must be > perturbation_interval={interval}, or no trial is ever ranked; got {v} "
                "(lower perturbation_interval, or raise max_resource)")
        return v

    @property
    def stop_rule(self) -> str:
        """Why PBT stops a trial, in words (a stopped trial's log says it)."""
        return (f"it ranked in the bottom {self.quantile_fraction:.0%} of the population at a multiple of "
                f"perturbation_interval ({self.perturbation_interval}); a perturbed copy of a top trial replaces it")


def _check_max_resource(v: int, info: ValidationInfo) -> int:
    low = info.data.get("min_resource")
    if low is not None and v <= low:
        raise ValueError(
            f"must be > min_resource={low}; got {v} (max_resource is the step at which a trial is fully trained, "
            "min_resource the first rung)")
    return v


def _short_forms(value: Any) -> Any:
    """``none`` / ``median`` as bare strings, ``null`` as none; a clear message for unknown or missing names.

    The name is checked here, before pydantic's tagged union, so a typo gets a did-you-mean naming schedulers
    (the union's own message would be generic).
    """
    if value is None:
        return {"name": "none"}
    if isinstance(value, StrictModel):
        return value
    if isinstance(value, str):
        _check_name(value, value)
        if value in _NEEDS_MAPPING:
            raise ValueError(
                f"`scheduler: {value}` needs max_resource; write {_NEEDS_MAPPING[value]} (got {quoted(value)})")
        return {"name": value}
    if isinstance(value, dict):
        if "name" not in value:
            raise ValueError(f"missing `name`; use one of {', '.join(SCHEDULER_NAMES)} (got {quoted(value)})")
        _check_name(value["name"], value)
        return value
    raise ValueError(
        f"must be a scheduler name ({', '.join(SCHEDULER_NAMES)}) or a mapping with `name`; got {quoted(value)}")


def _check_name(name: Any, got: Any) -> None:
    if name in SCHEDULER_NAMES:
        return
    close = closest(name, SCHEDULER_NAMES) if isinstance(name, str) else None
    hint = f"did you mean {close!r}? " if close else ""
    raise ValueError(f"unknown scheduler {quoted(name)}; {hint}choose one of {', '.join(SCHEDULER_NAMES)} "
                     f"(got {quoted(got)})")


SchedulerConfig = NoSchedulerConfig | MedianConfig | ASHAConfig | HyperbandConfig | PBTConfig

SchedulerChoice = Annotated[
    NoSchedulerConfig | MedianConfig | ASHAConfig | HyperbandConfig | PBTConfig,
    Field(discriminator="name"),
    BeforeValidator(_short_forms),
]
"""The spec field type: ``scheduler: SchedulerChoice = Field(default_factory=NoSchedulerConfig)``."""

__all__ = [
    "ASHAConfig",
    "HyperbandConfig",
    "MedianConfig",
    "Mutation",
    "NoSchedulerConfig",
    "PBTConfig",
    "SCHEDULER_NAMES",
    "SchedulerChoice",
    "SchedulerConfig",
    "bracket_count",
    "rung_steps",
]
