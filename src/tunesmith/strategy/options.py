"""The options a named strategy takes: an unknown one is refused once, at the spec, with a did-you-mean; a value out
of its range is refused there too, with the field, what is accepted and what was received.

The ranges of the Optuna samplers' options are Optuna 5's own (its constructors' checks and docstrings), and where
Optuna checks nothing, what was seen to fail: a value it takes at construction and trips over at the first proposal,
after the experiment is recorded, or treats as another (a negative count as 0, a negative step size as 1e-8)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from tunesmith.errors import SpecError, quoted
from tunesmith.suggestions import closest


def reject_unknown_options(name: str, options: dict[str, Any], accepted: Sequence[str]) -> None:
    """Raise SpecError at the first option the named strategy does not take, with a did-you-mean."""
    for key in options:
        if key not in accepted:
            if not accepted:
                raise SpecError(f"strategy.{key}", f"the {name} strategy takes no options; remove {key!r}")
            close = closest(key, accepted, given=[k for k in options if k in accepted])  # options written beside it
            hint = f"did you mean {close!r}? " if close else ""
            raise SpecError(f"strategy.{key}", f"not an option of the {name} strategy; {hint}accepted: "
                                               f"{', '.join(accepted)}")


@dataclass(frozen=True)
class OptionRule:
    """What one option accepts: true/false (``kind`` bool), an int or a number between ``low`` and ``high`` (each
    excluded where ``open_low`` / ``open_high``), or one of ``choices``; ``what`` says what the option is. ``nullable``:
    null as well, where Optuna's default is None (null is then that default; tpe's multivariate, which tunesmith sets
    true, says what its null means). ``whole_float``: an int written as a float (5.0), where Optuna only compares a
    count with it (``len(trials) < n_startup_trials``): 5.0 is 5; a count it uses as one (a size, a slice) fails
    mid-run as a float."""

    kind: type = bool
    what: str = ""
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    choices: tuple[str, ...] = ()
    nullable: bool = False
    whole_float: bool = False

    def check(self, key: str, value: Any) -> None:
        """Raise SpecError naming ``strategy.<key>`` unless ``value`` is accepted."""
        if value is None and self.nullable:
            return
        if self.choices:
            if value not in self.choices:
                close = closest(str(value), self.choices) if isinstance(value, str) else None
                hint = f" (did you mean {close!r}?)" if close else ""
                raise SpecError(f"strategy.{key}", f"must be one of {' or '.join(map(repr, self.choices))}; got "
                                                   f"{quoted(value)}{hint}")
            return
        if self._accepts(value):
            return
        if self.kind is bool:
            accepted = "true, false or null" if self.nullable else "true or false"
        else:
            accepted = " ".join(filter(None, ("an int" if self.kind is int else "a number", self._range())))
        about = f" ({self.what})" if self.what else ""
        raise SpecError(f"strategy.{key}", f"must be {accepted}{about}; got {quoted(value)}")

    def _accepts(self, value: Any) -> bool:
        if self.kind is bool:
            return isinstance(value, bool)
        whole = self.whole_float and isinstance(value, float) and value.is_integer()
        if isinstance(value, bool) or not (whole or isinstance(value, int if self.kind is int else int | float)):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return self.high is None or (value < self.high if self.open_high else value <= self.high)

    def _range(self) -> str:
        if self.low is None:
            return ""
        if self.high is None:
            return f"{'>' if self.open_low else '>='} {self.low:g}"
        return f"in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}{')' if self.open_high else ']'}"


def check_option_values(options: dict[str, Any], rules: dict[str, OptionRule]) -> None:
    """Raise SpecError at the first option whose value its rule refuses (options without a rule pass)."""
    for key, value in options.items():
        if key in rules:
            rules[key].check(key, value)


# True while the options checked are inherited from a recorded experiment (see inherited_options)
_INHERITED: ContextVar[bool] = ContextVar("INHERITED_OPTIONS", default=False)


@contextmanager
def inherited_options() -> Iterator[None]:
    """Within it, the sampler options checked are a recorded experiment's, which a re-tune inherits from its parent:
    the ranges of :data:`SAMPLER_OPTIONS` are not applied to them, as they are not on resume (a spec given anew is
    held to them; one recorded before them, ``popsize: 3``, stays re-tunable), and what Optuna refuses building the
    sampler still fails. A context, as :data:`tunesmith.spec.task_config.RECORDED_SPEC` is: the options reach the
    check through ``runner.prepare`` and ``strategy.decide``, whose other callers give specs anew."""
    token = _INHERITED.set(True)
    try:
        yield
    finally:
        _INHERITED.reset(token)


def check_sampler_option_values(name: str, options: dict[str, Any]) -> None:
    """The values of an Optuna sampler's options against :data:`SAMPLER_OPTIONS` (:func:`check_option_values`),
    unless they are inherited from a recorded experiment (:func:`inherited_options`)."""
    if not _INHERITED.get():
        check_option_values(options, SAMPLER_OPTIONS.get(name, {}))


_STARTUP = "the trials drawn at random before {} models the rest"
_OR_NULL = OptionRule(nullable=True)  # true, false or null (Optuna's default, None)

# Every option of Optuna 5's samplers that a spec may set (tunesmith reserves the seed and the callables), each with
# its rule; tests/test_strategy_checks.py fails when a sampler's signature has an option without one, or one whose
# default is None without a rule that takes null.
SAMPLER_OPTIONS: dict[str, dict[str, OptionRule]] = {
    "tpe": {
        "n_startup_trials": OptionRule(int, _STARTUP.format("TPE"), low=0, whole_float=True),
        "n_ei_candidates": OptionRule(int, "the candidates TPE scores for each proposal", low=1),
        # Optuna refuses < 0 mid-run
        "prior_weight": OptionRule(float, "the weight of TPE's prior", low=0, nullable=True),
        "multivariate": OptionRule(bool, "null: Optuna's choice by the number of objectives", nullable=True),
        "group": OptionRule(), "constant_liar": OptionRule(), "consider_prior": _OR_NULL,
        "consider_magic_clip": _OR_NULL, "consider_endpoints": _OR_NULL, "warn_independent_sampling": _OR_NULL,
    },
    "qmc": {
        "qmc_type": OptionRule(str, choices=("sobol", "halton")),
        "scramble": OptionRule(), "warn_asynchronous_seeding": OptionRule(), "warn_independent_sampling": OptionRule(),
    },
    "cmaes": {
        "n_startup_trials": OptionRule(int, _STARTUP.format("CMA-ES"), low=0, whole_float=True),
        # Optuna clips any sigma0 to at least 1e-8: a negative one ran as a search that never moved
        "sigma0": OptionRule(float, "CMA-ES's initial step size, in the space scaled to [0, 1]", low=0, open_low=True,
                             nullable=True),
        # popsize 1 fails the cmaes library's assertion at the first generation; 2 and 3 divide by zero (warnings)
        "popsize": OptionRule(int, "CMA-ES's population; below 4 the cmaes library's learning rates divide by zero",
                              low=4, nullable=True),
        "consider_pruned_trials": OptionRule(), "use_separable_cma": OptionRule(), "with_margin": OptionRule(),
        "lr_adapt": OptionRule(), "warn_independent_sampling": OptionRule(),
        # deprecated in Optuna 4.4 and ignored since (its FutureWarning says so, as a warning of the spec)
        "restart_strategy": OptionRule(str, choices=("ipop", "bipop"), nullable=True), "inc_popsize": OptionRule(int),
    },
    "gp": {
        "n_startup_trials": OptionRule(int, _STARTUP.format("the Gaussian process"), low=0, whole_float=True),
        "deterministic_objective": OptionRule(), "warn_independent_sampling": OptionRule(),
    },
    "nsga2": {
        "population_size": OptionRule(int, "the trials of each NSGA-II generation, bred from pairs of parents", low=2),
        "mutation_prob": OptionRule(float, "the probability of mutating each parameter of a child", low=0, high=1,
                                    nullable=True),
        "crossover_prob": OptionRule(float, "the probability that a child is bred by crossover", low=0, high=1),
        "swapping_prob": OptionRule(float, "the probability of swapping each parameter in a crossover", low=0, high=1),
    },
}
