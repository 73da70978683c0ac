"""The did-you-mean of every "unknown name" message: one rule for which known name a misspelt one meant.

The rule, first match wins, letters compared without case:

1. the same word in another case (``TPE`` is ``tpe``);
2. the name difflib rates closest, when it is a near-exact match, a ratio of at least 0.8 (``lr_`` is ``lr``, not
   ``lr_decay``; ``exp-21`` is ``exp-2``, not ``exp-12``): one stray or missing letter is the likeliest typo;
3. the start of exactly one name, at least three letters long (``min`` is ``minimize``: too short for difflib);
4. the same letters in another order (``lgo`` is ``log``, though difflib rates ``low`` nearer);
5. the name difflib rates closest, at a ratio of at least 0.6 (its default, which every message used).

Rule 3 comes before rule 4 for a short word: ``tar`` is ``target``, not ``art``.

A name is returned as the choices spell it. Each caller words its own hint around it, since the hint sits in
sentences of different shapes.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

CUTOFF = 0.6
"""The least difflib ratio at which a name is suggested."""

NEAR_EXACT = 0.8
"""A difflib ratio at which its match beats the prefix and reordered-letters rules: ``lr_`` against ``lr`` is 0.8."""

_SHORTEST_PREFIX = 3
"""A shorter start (``m``, ``ma``) is the start of too many words to mean one."""


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` most likely meant, by the module's rule; None when no choice is close or there are none."""
    by_lower: dict[str, str] = {}
    for choice in choices:
        by_lower.setdefault(choice.lower(), choice)  # two choices differing only in case: the first is suggested
    typed = word.lower()
    if not typed or not by_lower:
        return None
    if typed in by_lower:
        return by_lower[typed]
    near = difflib.get_close_matches(typed, list(by_lower), n=1, cutoff=NEAR_EXACT)
    if near:
        return by_lower[near[0]]
    if len(typed) >= _SHORTEST_PREFIX:
        started = [choice for lower, choice in by_lower.items() if lower.startswith(typed)]
        if len(started) == 1:
            return started[0]
    letters = sorted(typed)
    for lower, choice in by_lower.items():
        if sorted(lower) == letters:
            return choice
    close = difflib.get_close_matches(typed, list(by_lower), n=1, cutoff=CUTOFF)
    return by_lower[close[0]] if close else None


__all__ = ["CUTOFF", "NEAR_EXACT", "closest"]
