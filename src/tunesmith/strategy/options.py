"""The options a named strategy takes: an unknown one is refused once, at the spec, with a did-you-mean."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tunesmith.errors import SpecError
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
