"""The base of every spec model: frozen, and unknown keys fail with a did-you-mean."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = set(cls.model_fields)
            for key in data:
                if isinstance(key, str) and key not in known:
                    close = _closest(key, sorted(known))
                    hint = f"; did you mean {close!r}?" if close else f"; accepted keys: {', '.join(sorted(known))}"
                    raise ValueError(f"unknown key {key!r}{hint}")
        return data


def _closest(key: str, known: list[str]) -> str | None:
    """The key meant: one with the same letters first (``lgo`` is ``log`` typed out of order, though difflib
    rates ``low`` as close), else the closest by difflib."""
    same_letters = [k for k in known if sorted(k) == sorted(key)]
    if same_letters:
        return same_letters[0]
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return close[0] if close else None
