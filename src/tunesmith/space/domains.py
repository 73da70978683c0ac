"""Parameter domains: Float, Int, Categorical.

These are the spec's parameter models and the public Python API at once (``tunesmith.Float(0.001, 1000, log=True)``),
so a space declared in YAML and one declared in Python are the same objects. Cross-parameter checks (``when``)
live in :mod:`tunesmith.space.search_space`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, ValidationError, model_validator

from tunesmith.errors import SpaceError
from tunesmith.records import ParamValue
from tunesmith.strict_model import StrictFloat, StrictInt, StrictModel

_Init = TypeVar("_Init", bound=Callable[..., None])


def _python_api_only(init: _Init) -> _Init:
    """Mark a domain's ``__init__`` as pydantic marks its own: a spec's domains (validated with the spec) are then
    built without it, so their errors stay pydantic's, which the spec loader turns into ``space.<name>`` paths."""
    setattr(init, "__pydantic_base_init__", True)  # noqa: B010 - what pydantic sets on BaseModel.__init__
    return init


# The widest an int parameter's bounds may be, a 64-bit integer's: the samplers draw ints through floats, so past it
# a bound is no setting (2**63 was an OverflowError counting the grid, 10**400 one in the sampler mid-run).
INT_BOUND = 2**63 - 1
_IntBound = Annotated[StrictInt, Field(ge=-INT_BOUND, le=INT_BOUND)]

# A condition: parent parameter name -> the value (or any of the values) that activates this parameter.
When = dict[str, ParamValue | list[ParamValue]]


class _Domain(StrictModel):

    when: When | None = Field(default=None, description="activate only when these parameters have these values")

    @_python_api_only
    def __init__(self, **kw: Any) -> None:
        """A domain built in Python (``tunesmith.Float(1, 0)``): bad arguments raise SpaceError, the error every
        other bad input gets, at the class and field (``Float.low``), never pydantic's ValidationError. A spec
        file's domains are validated with the spec, not through here, and keep their ``space.<name>`` paths."""
        try:
            super().__init__(**kw)
        except ValidationError as e:
            from tunesmith.spec.loader import format_validation_error  # the spec imports the domains: import late

            error = format_validation_error(e, kw)
            at = type(self).__name__ if error.path == "spec" else f"{type(self).__name__}.{error.path}"
            raise SpaceError(at, error.message) from None

    def contains(self, value: Any) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError


class Float(_Domain):
    """A real-valued parameter in [low, high]; ``log`` samples on a log scale; ``step`` discretises."""

    type: Literal["float"] = "float"
    low: StrictFloat
    high: StrictFloat
    log: bool = False
    step: StrictFloat | None = None

    @_python_api_only
    def __init__(self, low: float | None = None, high: float | None = None, /, **kw: Any) -> None:
        if low is not None:
            kw["low"] = low
        if high is not None:
            kw["high"] = high
        super().__init__(**kw)

    @model_validator(mode="after")
    def _check(self) -> Float:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"low and high must be finite numbers; got low={self.low}, high={self.high}")
        if self.low >= self.high:
            raise ValueError(f"low must be < high; got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"low must be > 0 when log is true; got low={self.low} (use log: false or a positive low)")
        if self.step is not None:
            if self.log:
                raise ValueError("step and log cannot be combined; drop one of them")
            if self.step <= 0:
                raise ValueError(f"step must be > 0; got {self.step}")
            n = (self.high - self.low) / self.step
            if abs(n - round(n)) > 1e-8 * max(1.0, n):
                raise ValueError(
                    f"high - low must be a multiple of step; got low={self.low}, high={self.high}, step={self.step} "
                    f"({_step_fix(self.low, self.high, self.step, math.floor(n))})"
                )
        return self

    def contains(self, value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool) and self.low <= value <= self.high

    def on_grid(self, value: float) -> float:
        """The declared value nearest ``value``: with a ``step``, the grid point ``low + k * step`` as the user wrote
        it (0.3, where the sum is 0.30000000000000004), within [low, high]; without one, ``value`` itself."""
        if self.step is None:
            return value
        return self._point(round((value - self.low) / self.step), self.step)

    def is_on_grid(self, value: float) -> bool:
        """Whether ``value`` is the grid point :meth:`on_grid` puts it on, up to the floating-point error of a sum
        (``low + k * step``, 0.30000000000000004 for 0.3: within a hundred-millionth of a step per step from low):
        always without a step. A value outside [low, high] is not (on_grid keeps its points within them)."""
        if self.step is None:
            return True
        return abs(value - self.on_grid(value)) <= 1e-8 * max(self.step, abs(value - self.low))

    def _point(self, k: int, step: float) -> float:
        # Rounded to the decimals low and step are written with: their sum has no more (1e6 + 3 * 0.1 too).
        digits = max(_decimals(self.low), _decimals(step))
        return min(max(round(self.low + k * step, digits), self.low), self.high)

    def grid(self, points: int) -> list[float]:
        return [self.grid_point(k, points) for k in range(self._grid_count(points))]

    def _grid_count(self, points: int) -> int:
        return points if self.step is None else int(round((self.high - self.low) / self.step)) + 1

    def grid_point(self, k: int, points: int) -> float:
        """``grid(points)[k]``, computed alone: a grid of 10^9 points is never listed."""
        # Rounding error must not carry a point outside [low, high] (exp(log(10)) > 10): the ends are the bounds
        # themselves, and stepped points are clamped.
        if self.step is not None:
            return self._point(k, self.step)
        if k == 0:
            return self.low
        if k == points - 1:
            return self.high
        if self.log:
            a, b = math.log(self.low), math.log(self.high)
            return math.exp(a + (b - a) * k / (points - 1))
        return self.low + (self.high - self.low) * k / (points - 1)

    def grid_position(self, value: ParamValue, points: int) -> int | None:
        """The k where ``grid(points)[k]`` is ``value`` (equal, and of its type: a condition's test), else None.
        Found near the k the value's place in [low, high] estimates, then checked against the point itself."""
        if type(value) is not float or not self.low <= value <= self.high:
            return None
        count = self._grid_count(points)
        if self.step is not None:
            estimate = round((value - self.low) / self.step)
        elif count == 1:
            estimate = 0
        elif self.log:
            a, b = math.log(self.low), math.log(self.high)
            estimate = round((math.log(value) - a) / (b - a) * (count - 1))
        else:
            estimate = round((value - self.low) / (self.high - self.low) * (count - 1))
        return _found_near(self, value, points, estimate, count)


def _found_near(domain: Float, value: float, points: int, estimate: int, count: int) -> int | None:
    """The k within one of ``estimate`` whose grid point is ``value``: an estimate's rounding error is far below
    one point's spacing."""
    for k in (estimate, estimate - 1, estimate + 1):
        if 0 <= k < count and domain.grid_point(k, points) == value:
            return k
    return None


def _step_fix(low: float, high: float, step: float, steps: int) -> str:
    """The fix for a range that is no whole number of steps: the high below it that is (``steps`` of them), or,
    where not one step fits (``low: 0, high: 1, step: 2``, whose high would be low), a step that fits or the high one
    step up."""
    if steps >= 1:
        return f"try high={low + steps * step:g}"
    return f"step is larger than high - low: try step={high - low:g}, or high={low + step:g}"


def _decimals(x: float) -> int:
    """Digits after the point in the shortest form of ``x`` (0.1: 1, 2.5e-07: 8, 100.0: 1, 1e+20: 0)."""
    exponent = Decimal(repr(x)).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


class Int(_Domain):
    """An integer parameter in [low, high] (both included); ``log`` and ``step`` as for Float."""

    type: Literal["int"] = "int"
    low: _IntBound
    high: _IntBound
    log: bool = False
    step: StrictInt = 1

    @_python_api_only
    def __init__(self, low: int | None = None, high: int | None = None, /, **kw: Any) -> None:
        if low is not None:
            kw["low"] = low
        if high is not None:
            kw["high"] = high
        super().__init__(**kw)

    @model_validator(mode="after")
    def _check(self) -> Int:
        if self.low >= self.high:
            raise ValueError(f"low must be < high; got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"low must be >= 1 when log is true; got low={self.low} (use log: false or low: 1)")
        if self.step < 1:
            raise ValueError(f"step must be >= 1; got {self.step}")
        if self.log and self.step != 1:
            raise ValueError("step and log cannot be combined; drop one of them")
        if (self.high - self.low) % self.step:
            raise ValueError(
                f"high - low must be a multiple of step; got low={self.low}, high={self.high}, step={self.step} "
                f"({_step_fix(self.low, self.high, self.step, (self.high - self.low) // self.step)})"
            )
        return self

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
            and (value - self.low) % self.step == 0
        )

    def grid(self, points: int) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))

    def grid_point(self, k: int, points: int) -> int:
        """``grid(points)[k]``, computed alone."""
        return self.low + k * self.step

    def grid_position(self, value: ParamValue, points: int) -> int | None:
        """The k where ``grid(points)[k]`` is ``value`` (equal, and of its type: a condition's test), else None."""
        return (value - self.low) // self.step if type(value) is int and self.contains(value) else None


class Categorical(_Domain):
    """One of a list of choices (strings, numbers, booleans or null)."""

    type: Literal["categorical"] = "categorical"
    choices: list[ParamValue]

    @_python_api_only
    def __init__(self, choices: list[ParamValue] | None = None, /, **kw: Any) -> None:
        if choices is not None:
            kw["choices"] = list(choices)
        super().__init__(**kw)

    @model_validator(mode="after")
    def _check(self) -> Categorical:
        if not self.choices:
            raise ValueError("choices must not be empty; list at least one value")
        seen: list[ParamValue] = []
        for c in self.choices:
            if any(c == s and type(c) is type(s) for s in seen):
                raise ValueError(f"choices must be unique; {c!r} appears twice")
            seen.append(c)
        return self

    def contains(self, value: Any) -> bool:
        return any(value == c and type(value) is type(c) for c in self.choices)

    def grid(self, points: int) -> list[ParamValue]:
        return list(self.choices)

    def grid_point(self, k: int, points: int) -> ParamValue:
        """``grid(points)[k]``, computed alone."""
        return self.choices[k]

    def grid_position(self, value: ParamValue, points: int) -> int | None:
        """The k where ``grid(points)[k]`` is ``value`` (equal, and of its type: a condition's test), else None."""
        return next((k for k, c in enumerate(self.choices) if c == value and type(c) is type(value)), None)


Domain = Annotated[Float | Int | Categorical, Field(discriminator="type")]
