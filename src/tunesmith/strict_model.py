"""The base of every spec model: frozen, and unknown keys fail with a did-you-mean; and its number types."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from tunesmith.suggestions import closest, misplaced


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    # fields tunesmith fills in itself (the spec's folder): accepted, never offered to a writer as a key to use
    internal_keys: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = set(cls.model_fields)
            for key in data:
                if isinstance(key, str) and key not in known:
                    if (place := misplaced(key, known)) is not None:
                        raise ValueError(f"unknown key {key!r}; {place}")
                    # the valid keys written beside it are never suggested
                    offered, given = sorted(known - cls.internal_keys), [k for k in data if k in known]
                    close = closest(key, offered, given=given)
                    twin = None if close else closest(key, given, loose=False)  # `sede` beside `seed`
                    hint = (f"; did you mean {close!r}?" if close else
                            f"; did you mean {twin!r}? (written already: keep one)" if twin else
                            f"; accepted keys: {', '.join(offered)}")
                    raise ValueError(f"unknown key {key!r}{hint}")
        return data



# A number in a spec is a number: YAML `true` for a trial count, or a quoted "5", is a typo, not 1 or 5 (pydantic's
# lax int and float took both). Refused with pydantic's own error types, so the loader says "input should be a valid
# integer; got True", as it says for the scheduler's strict step counts. Anything else is left to pydantic's lax
# validation: an int where a float is expected (low: 1), a whole float for an int (5.0), NumPy numbers from Python.
# The one text a float field takes is a number with an exponent (1e-4, 1.0e5): YAML 1.1 reads those as text when
# written plainly, and they are what a learning rate is written as (quoted, it cannot be told from plain).
_EXPONENT = re.compile(r"[-+]?(\.\d+|\d+(\.\d*)?)[eE][-+]?\d+")


def _no_bool_or_text_int(value: Any) -> Any:
    if isinstance(value, bool) or _number_text(value):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value  # other text: pydantic's own "unable to parse string as an integer"


def exponent_text_as_float(value: Any) -> Any:
    """``value`` as a float field reads text: a number with an exponent (``1e-4``) the float; anything else as is."""
    if isinstance(value, str) and _EXPONENT.fullmatch(value.strip()):
        return float(value)
    return value


def _no_bool_or_text_float(value: Any) -> Any:
    value = exponent_text_as_float(value)
    if isinstance(value, bool) or _number_text(value):
        raise PydanticCustomError("float_type", "Input should be a valid number")
    return value  # other text: pydantic's own "unable to parse string as a number"


def _number_text(value: Any) -> bool:
    """Whether ``value`` is text that pydantic's lax int or float would have read as a number ("5", "0.5", "inf")."""
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


StrictInt = Annotated[int, BeforeValidator(_no_bool_or_text_int)]
"""An int field of a spec: refuses booleans and text."""
StrictFloat = Annotated[float, BeforeValidator(_no_bool_or_text_float)]
"""A float field of a spec: refuses booleans and text (but an exponent form, ``1e-4``, which YAML 1.1 reads as
text); takes an int."""


def _one_as_a_list(value: Any) -> Any:
    """One name where a list of them is expected (``retry_on: crashed``) is the list of that one, as a single
    constraint is (``constraints: "latency_ms <= 20"``): pydantic said "input should be a valid tuple"."""
    return [value] if isinstance(value, str) else value


OneOrMore = BeforeValidator(_one_as_a_list)
"""Annotate a field holding a list of names (``Annotated[tuple[FailureKind, ...], OneOrMore]``) to take one name
alone as the list of it."""
