"""The did-you-mean of every "unknown name" message: one rule for which known name a misspelt one meant.

The rule, first match wins, letters compared without case:

1. the same word in another case (``TPE`` is ``tpe``);
2. the name difflib rates closest, when it is a near-exact match, a ratio of at least 0.8 (``lr_`` is ``lr``, not
   ``lr_decay``; ``exp-21`` is ``exp-2``, not ``exp-12``): one stray or missing letter is the likeliest typo;
3. the start of exactly one name, at least three letters long (``min`` is ``minimize``: too short for difflib);
4. the same letters in another order (``lgo`` is ``log``, though difflib rates ``low`` nearer);
5. the name difflib rates closest, at a ratio of at least 0.6 (its default, which every message used).

Rule 3 comes before rule 4 for a short word: ``tar`` is ``target``, not ``art``.

Before the rule: a well-known other word for a choice (``ALIASES``: ``cmd`` is ``command``, ``bayes`` is ``bo``)
is that choice, where it is one; spelling alone led ``cmd`` to ``cwd`` and ``bayes`` to ``cmaes``. And a choice
the writer already gave (``given``: the other keys of the same mapping) is never suggested: ``loq`` beside ``low``
meant ``log``; nor is rule 5's loose likeness, where the word is near a choice given by rules 1-4: ``sede`` beside
``seed`` is that key written again, not ``scheduler``. A key that is right but in the wrong mapping (``workers``
at the top level) is no typo at all: ``misplaced`` names the section it belongs under (``MISPLACED_KEYS``), its
name there where that differs (Optuna's ``n_trials`` is ``budget.trials``), and how it is written there.

``closest`` returns a name as the choices spell it: each caller words its own hint around it, since the hint sits
in sentences of different shapes. ``misplaced`` returns its whole hint (``it belongs under executor: write ...``),
which its one caller (an unknown key's message, strict_model) appends as it is.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Collection, Iterable
from pathlib import Path

CUTOFF = 0.6
"""The least difflib ratio at which a name is suggested."""

NEAR_EXACT = 0.8
"""A difflib ratio at which its match beats the prefix and reordered-letters rules: ``lr_`` against ``lr`` is 0.8."""

_SHORTEST_PREFIX = 3
"""A shorter start (``m``, ``ma``) is the start of too many words to mean one."""


ALIASES: dict[str, str] = {
    "cmd": "command",        # trial.command
    "bayes": "bo",           # strategy: Bayesian optimisation
    "bayesian": "bo",
    "bayes_opt": "bo",
    "gp-bo": "bo",
    "gp_bo": "bo",
    # Optuna's words (a ported study), where tunesmith's name is at the same place
    "study_name": "name",
    "pruner": "scheduler",
    "sampler": "strategy",
    "timeout": "wall_time",        # budget: optimize(timeout=...)
    "successive_halving": "asha",  # SuccessiveHalvingPruner: ASHA is its asynchronous form
    "percentile": "median",        # PercentilePruner: median is its 50th percentile
    "q": "step",                   # a domain: the discretisation of quniform, suggest_discrete_uniform(q=...)
    "user_attrs": "tags",          # study.user_attrs (set_user_attr): text about the experiment, kept with it
    # the usual names of regression metrics, where scikit-learn's scorer (maximised, so an error negated) is a choice
    "rmse": "neg_root_mean_squared_error",
    "neg_rmse": "neg_root_mean_squared_error",
    "mae": "neg_mean_absolute_error",
    "neg_mae": "neg_mean_absolute_error",
    "mse": "neg_mean_squared_error",
    "neg_mse": "neg_mean_squared_error",
    "mape": "neg_mean_absolute_percentage_error",
    "rmsle": "neg_root_mean_squared_log_error",
    "msle": "neg_mean_squared_log_error",
    "medae": "neg_median_absolute_error",
    "r2_score": "r2",
    "rsquared": "r2",
    "r_squared": "r2",
}
"""Words people write for a name tunesmith spells otherwise (lowercase): suggested first, where that name is a
choice."""

MISPLACED_KEYS: dict[str, str] = {
    "workers": "executor",
    "trial_timeout": "executor",
    "memory_limit": "executor",
    "retries": "executor",
    "cwd": "trial",
    "command": "trial",
    "function": "trial",
    "trials": "budget",            # beside `trial`, no second `trial` written
    "wall_time": "budget",
    "metric": "objective",
    "direction": "objective",
    "directions": "objective",
    # Optuna's words (a ported study), under another name there
    "n_trials": "budget.trials",
    "timeout": "budget.wall_time",
    "n_jobs": "executor.workers",
}
"""Keys that belong under a section (``executor.workers``), or under another name there (``n_trials`` is
``budget.trials``): given in a mapping that does not take them but holds that section (the spec's top level), the
hint names the section, not the nearest spelling here."""

_WRITTEN = {"directions": "objective as a list, one {metric: ..., direction: ...} an objective"}
"""How a misplaced key is written in its section, where that is not ``section: {key: ...}``."""


def misplaced(key: str, accepted: Iterable[str]) -> str | None:
    """Where ``key`` belongs and how it is written there (``it belongs under executor: write executor: {workers:
    ...}``), when the mapping whose ``accepted`` keys these are holds that section; else None."""
    place = MISPLACED_KEYS.get(key.lower())
    if place is None:
        return None
    section, _, name = place.partition(".")
    if section not in set(accepted):
        return None
    written = _WRITTEN.get(key.lower(), f"{section}: {{{name or key.lower()}: ...}}")  # keys are lower case
    return f"it belongs under {section}{f' as {name}' if name else ''}: write {written}"


def closest(word: str, choices: Iterable[str], given: Iterable[str] = (), loose: bool = True) -> str | None:
    """The choice ``word`` most likely meant, by the module's rule; None when no choice is close or there are none.
    ``given``: choices the writer already has beside ``word`` (the same mapping's other keys), never suggested; and
    where ``word`` is near one of them by rules 1-4 (``sede`` beside ``seed``), rule 5's loose likeness to another
    (``scheduler``, 0.62) is no meaning of it: None (the caller may name the one given: ``closest(word, given,
    loose=False)``). ``loose``: False leaves out rule 5, for choices as unlike each other as commands (``select`` is
    0.67 like ``delete``: a typo of neither)."""
    taken = {g.lower(): g for g in given}
    by_lower: dict[str, str] = {}
    for choice in choices:
        if choice.lower() not in taken:  # two choices differing only in case: the first is suggested
            by_lower.setdefault(choice.lower(), choice)
    typed = word.lower()
    if not typed or not by_lower:
        return None
    if ALIASES.get(typed) in by_lower:
        return by_lower[ALIASES[typed]]
    near, likeness = _near(typed, by_lower)
    if near is not None or not loose or likeness is None or _near(typed, taken)[0] is not None:
        return near
    return likeness


def _near(typed: str, by_lower: dict[str, str]) -> tuple[str | None, str | None]:
    """The choice of ``by_lower`` (choices by their lower case) that lower-case ``typed`` meant by rules 1-4, and
    the one rule 5 would name (difflib's closest at CUTOFF); either None."""
    if typed in by_lower:
        return by_lower[typed], None
    # one difflib scan serves rules 2 and 5: its best pick at CUTOFF is its pick at NEAR_EXACT whenever its ratio
    # reaches that (the ratio as get_close_matches computes it: the choice as `a`, the word as `b`)
    close = difflib.get_close_matches(typed, list(by_lower), n=1, cutoff=CUTOFF)
    likeness = by_lower[close[0]] if close else None
    if close and difflib.SequenceMatcher(None, close[0], typed).ratio() >= NEAR_EXACT:
        return likeness, None
    if len(typed) >= _SHORTEST_PREFIX:
        started = [choice for lower, choice in by_lower.items() if lower.startswith(typed)]
        if len(started) == 1:
            return started[0], None
    letters = sorted(typed)
    return next((choice for lower, choice in by_lower.items() if sorted(lower) == letters), None), likeness


def nearby_file(missing: Path, suffixes: Collection[str] = (), stem: bool = False) -> str | None:
    """The file in ``missing``'s folder whose name is most like ``missing``'s, by :func:`closest` (with ``suffixes``,
    among those only; ``stem``: returned without its suffix); None when nothing is close or the folder is not there
    either. For "does not exist; did you mean ...?" hints.

    Names are compared without their suffixes: the ``.yaml`` two names share made any short one look like any other
    (``exp.yaml`` was 0.6 like ``nothere.yaml``). Of files of the stem meant, the one of ``missing``'s suffix is
    named (``train.py`` beside ``train.sh`` for ``trian.py``); ``c.yaml`` is still ``c.yml``'s."""
    try:
        files = [f for f in missing.parent.iterdir() if f.is_file() and (not suffixes or f.suffix in suffixes)]
    except OSError:
        return None
    by_stem: dict[str, str] = {}
    for f in sorted(files, key=lambda f: (f.suffix != missing.suffix, f.name)):
        by_stem.setdefault(f.stem, f.name)
    close = closest(missing.stem, sorted(by_stem))
    return None if close is None else close if stem else by_stem[close]


__all__ = ["ALIASES", "CUTOFF", "MISPLACED_KEYS", "NEAR_EXACT", "closest", "misplaced", "nearby_file",
           "storage_url_fix"]


def storage_url_fix(given: str) -> str:
    """The fix a message about a storage value that is not a database URL suggests: the SQLite URL of the path
    given when it reads as a file path (``proj/tunesmith.db`` is ``sqlite:///proj/tunesmith.db``; a fixed
    ``sqlite:///tunesmith.db`` dropped the folder), else the two URL forms."""
    colonless = re.match(r"(sqlite|postgresql(?:\+\w+)?)//+", given)  # `sqlite//x.db`: the colon missing
    if colonless:
        rest = given[colonless.end():]
        return f"(try sqlite:///{rest})" if colonless.group(1) == "sqlite" else f"(try {colonless.group(1)}://{rest})"
    scheme = re.match(r"(sqlite|postgresql(?:\+\w+)?):(/?)(?!/)", given)  # slashes missing after the scheme
    if scheme and scheme.group(1) == "sqlite":
        file = os.path.expanduser(given[scheme.end():])
        if scheme.group(2):  # sqlite:/nope/x.db: the file /nope/x.db, or nope/x.db here with two slashes lost
            return f"(try sqlite:////{file} for the file /{file}, or sqlite:///{file} for {file} in this folder)"
        return f"(try sqlite:///{file})"
    if scheme:  # postgresql:user@host/db
        return f"(try {scheme.group(1)}://{given[scheme.end():]})"
    if "://" not in given and "@" in given:   # user@host/dbname: a server, not a file
        return f"(try postgresql://{given})"
    path = "://" not in given and ("/" in given or given.endswith((".db", ".sqlite", ".sqlite3")))
    if path:   # SQLAlchemy expands no ~ in a URL
        return f"(try sqlite:///{os.path.expanduser(given)})"
    return "(try sqlite:///tunesmith.db or postgresql://user@host/dbname)"


def first_few(items: Iterable[object], limit: int) -> list[str]:
    """The first ``limit`` of ``items``, then "and N more" for the rest: a shortened list says that it is one."""
    shown = [str(item) for item in items]
    if len(shown) <= limit:
        return shown
    return [*shown[:limit], f"and {len(shown) - limit} more"]


def listed(names: Iterable[object], limit: int = 40) -> str:
    """:func:`first_few` joined by commas, up to 40 by default (a file's columns cut at 20 without a word hid the
    label column a user was looking for)."""
    return ", ".join(first_few(names, limit))
