"""The base of every spec model: frozen, and unknown keys fail with a did-you-mean."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

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
                    if (section := misplaced(key, known)) is not None:
                        raise ValueError(f"unknown key {key!r}; it belongs under {section}: write {section}: "
                                         f"{{{key.lower()}: ...}}")  # as the section spells it (keys are lower case)
                    # the valid keys written beside it are never suggested
                    offered = sorted(known - cls.internal_keys)
                    close = closest(key, offered, given=[k for k in data if k in known])
                    hint = f"; did you mean {close!r}?" if close else f"; accepted keys: {', '.join(offered)}"
                    raise ValueError(f"unknown key {key!r}{hint}")
        return data

