"""What differs between two experiment specs as tunesmith reads them: `tunesmith diff`, and `run` on a name the
store has recorded already.

Specs are compared after validation, in the form an experiment stores (:meth:`ExperimentSpec.to_json`): whatever the
model fills in or normalises is no difference (``log: false`` written or left out, ``wall_time: 5m`` or ``300s``, an
objective as a mapping or a list of one, ``strategy: tpe`` or ``{name: tpe}``). On top of that: a condition's value
is a list of one (``when: {kernel: poly}`` is ``[poly]``), and a condition's values, ``constraints`` and
``executor.retry_on`` are compared as sets. Durations are compared in seconds, sizes in bytes, as stored.

Not compared: ``base_dir``, the folder a spec was read from (a relative trial or data path is compared as written;
the same text in two folders may name other code). Against a recorded experiment, a spec file that leaves out
``seed`` or ``workdir`` does not differ there: the run filled them in (a fresh seed, ``.tunesmith/NAME``), and
running the file would fill them in again (the rule `cycle` applies to a spec file of a recorded experiment). Nor
where it leaves out a key a store migration wrote into the recorded spec, or a field whose default changed since
(:func:`filled_like`): the file the experiment was run from, unchanged, is no edit.
"""

from __future__ import annotations

import enum
import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import yaml

from tunesmith.errors import ExperimentExists, SpecError, TunesmithError, UserInputError
from tunesmith.redaction import REDACTED, redact_texts, secret_name, secrets_of
from tunesmith.space.containment import Containment, SpaceContainment, compare_spaces
from tunesmith.spec.loader import read_spec_file, spec_from_dict
from tunesmith.spec.model import ExperimentSpec
from tunesmith.spec.writer import domain_as_written

if TYPE_CHECKING:
    from tunesmith.spec.task_config import TaskConfig
    from tunesmith.storage.sql import SQLStore

# Sections in the order their differences are listed: the space decides whether old trials are comparable, the
# objectives and constraints what their values mean; then what bounds and runs the search; then the rest.
_SECTION_ORDER = (("space",), ("objective", "constraints", "select"), ("budget", "executor"))
_UNORDERED = ("constraints", "executor.retry_on")  # lists whose order means nothing (and a `when`'s values)
SPEC_FILE_SUFFIXES = (".yaml", ".yml")


class DifferenceKind(enum.StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True)
class SpecDifference:
    """One field that differs, by its dotted path (``space.C.high``). ``old`` and ``new`` are the values as the spec
    stores them (JSON: numbers, strings, lists, mappings); None on the side that lacks the field."""

    path: str
    kind: DifferenceKind
    old: Any
    new: Any

    @property
    def line(self) -> str:
        """``space.C.high: 1000.0 -> 100.0``, ``space.tol: added {type: float, ...}``, ``space.gamma: removed``."""
        if self.kind is DifferenceKind.ADDED:
            return f"{self.path}: added {shown(self.new)}"
        if self.kind is DifferenceKind.REMOVED:
            return f"{self.path}: removed" + ("" if isinstance(self.old, dict) else f" (was {shown(self.old)})")
        if self.old == self.new:  # different as recorded, the same as shown: a secret in it changed
            return f"{self.path}: changed (value hidden)"
        return f"{self.path}: {shown(self.old)} -> {shown(self.new)}{self._default_changed()}"

    def _default_changed(self) -> str:
        """`` (false was its default until 2026-12-04, true since)`` where the old value is a default of then and the
        new one the default of now: a changed default, not (only) someone's edit."""
        changed = next((c for c in CHANGED_DEFAULTS if c.path == self.path), None)
        if changed is None or not (_same(self.old, changed.before) and _same(self.new, changed.now)):
            return ""
        return (f" ({shown(changed.before)} was its default until {changed.until}, {shown(changed.now)} since"
                f"{changed.where})")

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind.value, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class SpecComparison:
    """Two specs compared: how each was named (a spec file, or a recorded experiment), what differs (the space
    first), and whether every point of the old space is a point of the new one."""

    old: str
    new: str
    differences: tuple[SpecDifference, ...]
    space: SpaceContainment

    @property
    def space_changed(self) -> bool:
        return any(d.path.startswith("space.") for d in self.differences)

    def space_line(self) -> str:
        """One sentence on whether the trials of ``old`` are points of ``new``'s space, said only where shown (see
        :mod:`tunesmith.space.containment`)."""
        fit = f"trials of {self.old} are points of {self.new}'s space"
        if not self.space_changed:
            return f"the space is the same: {fit}"
        containment = self.space.containment
        if containment is Containment.EQUAL:
            return f"the space is declared otherwise but holds the same points: {fit}"
        if containment is Containment.WITHIN:
            return f"the space grew: {fit}"
        if containment is Containment.NOT_WITHIN:
            witness = ", ".join(f"{k}={shown(v)}" for k, v in (self.space.witness or {}).items())
            # a point of the old space, not a recorded trial: "one with x=1.0" read as a trial that no trial was
            return (f"the space changed: not every point of {self.old}'s space is one of {self.new}'s, so its "
                    f"trials may not be (a point with {witness or 'no parameters'} is not: "
                    f"{self.space.refused_because})")
        return (f"the space changed; whether every trial of {self.old} is a point of {self.new}'s space is not "
                "decided (its conditions combine in ways this check does not follow)")

    def to_json(self) -> dict[str, Any]:
        return {"old": self.old, "new": self.new, "same": not self.differences,
                "differences": [d.to_json() for d in self.differences],
                "space": {"changed": self.space_changed,
                          "old_trials_fit": True if not self.space_changed else self.space.containment.old_points_fit,
                          "says": self.space_line(),
                          "witness": dict(self.space.witness) if self.space.witness is not None else None}}


def compare(old: ExperimentSpec, new: ExperimentSpec, old_name: str, new_name: str) -> SpecComparison:
    """``old`` against ``new`` (named ``old_name`` and ``new_name`` in what is said)."""
    return SpecComparison(old_name, new_name, spec_differences(old, new),
                          compare_spaces(old.search_space, new.search_space))


def spec_differences(old: ExperimentSpec, new: ExperimentSpec) -> tuple[SpecDifference, ...]:
    """Every field where ``new`` differs from ``old``, the space's first, then objectives and constraints, then
    budget and executor, then the rest (each group in the spec's order of fields)."""
    a, b = _normalised(old), _normalised(new)
    found: list[SpecDifference] = []
    for key in _keys(a, b):
        if key == "objective":
            _objectives(a.get(key, []), b.get(key, []), found)
        else:
            _walk(key, a.get(key, _ABSENT), b.get(key, _ABSENT), found)
    # what differs is printed (and named in run's and cycle's refusals) as `tunesmith spec` shows a spec: secret-named
    # trial.env values and a URL's password as ***, compared above as they are
    secrets = sorted({*_env_secrets(old), *_env_secrets(new)}, key=len, reverse=True)  # a longer one first
    hidden = [replace(d, old=_hidden(d.path, d.old, secrets), new=_hidden(d.path, d.new, secrets)) for d in found]
    return tuple(sorted(hidden, key=lambda d: _section_rank(d.path)))


def _env_secrets(spec: ExperimentSpec) -> list[str]:
    return secrets_of({}, spec.trial.env) if spec.trial is not None else []  # (secrets_of: the secret-named ones)


def _hidden(path: str, value: Any, secrets: list[str]) -> Any:
    if value is not None and path.startswith("trial.env.") and secret_name(path.removeprefix("trial.env.")):
        return REDACTED  # (also a value too short for the list of secrets)
    return redact_texts(value, secrets)


def filled_like(declared: ExperimentSpec, recorded: ExperimentSpec) -> ExperimentSpec:
    """``declared`` (a spec file's) with what a run fills in where the file leaves it out, ``seed`` and ``workdir``,
    as ``recorded``'s run filled them in; a relative ``workdir`` from the current folder, as a run records it. And
    where the file leaves out a field whose default has changed (:data:`CHANGED_DEFAULTS`), or one the store's
    migrations write (:data:`WRITTEN_BY_MIGRATIONS`), the recorded value: a file written then, unchanged, is no
    edit."""
    for changed in CHANGED_DEFAULTS:
        declared = _recorded_where_left_out(declared, recorded, changed.path.split("."))
    update: dict[str, Any] = {}
    if declared.seed is None:
        update["seed"] = recorded.seed
    if declared.workdir is None:
        update["workdir"] = recorded.workdir
    elif not os.path.isabs(declared.workdir):
        update["workdir"] = os.path.abspath(declared.workdir)
    if declared.task is not None and recorded.task is not None:
        update["task"] = _recorded_rules_like(declared.task, recorded.task)
    return declared.model_copy(update=update)


@dataclass(frozen=True)
class ChangedDefault:
    """A field whose default changed: a spec recorded before holds the default of then, and the file it was run from,
    which leaves the field out, reads as the default of now."""

    path: str      # the dotted field path, as differences name it
    before: Any    # the default until ``until``, as the spec stores it
    now: Any
    until: str     # the date of the release that changed it
    where: str = ""  # a condition on the change, said after the date


CHANGED_DEFAULTS = (
    # `resume --trials` also raises a recorded budget the file still leaves out: taken whatever its value
    ChangedDefault("budget.trials", 100, None, "2026-12-07", " (with a wall_time or cost alone)"),
    ChangedDefault("drift.retune.spread", False, True, "2026-12-04"),
)


def _recorded_where_left_out(declared: Any, recorded: Any, path: list[str]) -> Any:
    """``declared`` (a spec model) with the field at ``path`` as ``recorded`` has it where the file that ``declared``
    was read from leaves it out; as it is where either lacks a section on the way (a section the file leaves out
    while the recorded spec has it is an edit)."""
    head, *rest = path
    if not rest:
        return declared if head in declared.model_fields_set else \
            declared.model_copy(update={head: getattr(recorded, head)})
    mine, theirs = getattr(declared, head), getattr(recorded, head)
    if mine is None or theirs is None:
        return declared
    return declared.model_copy(update={head: _recorded_where_left_out(mine, theirs, rest)})


WRITTEN_BY_MIGRATIONS = {"cv": ("cut_at", "refit"), "holdout": ("fraction_of", "draw"), "data": ("time_as",)}
"""The task's keys the store's migrations write into experiments recorded before a rule changed, by section: 0006
``holdout.fraction_of: groups`` (a grouped holdout counted groups) and 0006 or 0009 ``cv.refit: all_rows`` (a
time-ordered model to ship was fit on every development row and scored on the whole holdout); 0008 ``cv.cut_at:
rows``, ``holdout.draw: random`` and ``data.time_as: codes``."""


def _recorded_rules_like(declared: TaskConfig, recorded: TaskConfig) -> TaskConfig:
    """``declared`` with the keys of :data:`WRITTEN_BY_MIGRATIONS` as ``recorded`` says where the file leaves them
    out: a migration wrote the rule an experiment recorded before ran by, and a file written then, unchanged, is no
    edit."""
    update: dict[str, Any] = {}
    for section, keys in WRITTEN_BY_MIGRATIONS.items():
        mine, theirs = getattr(declared, section), getattr(recorded, section)
        if mine is None or theirs is None:
            continue
        kept = {k: getattr(theirs, k) for k in keys
                if k not in mine.model_fields_set and getattr(theirs, k) is not None}
        if kept:
            update[section] = mine.model_copy(update=kept)
    return declared.model_copy(update=update)


def names_a_file(side: str) -> bool:
    """A side of `tunesmith diff` is a spec file when it is a file that exists or ends in .yaml or .yml; else the
    name of a recorded experiment (a folder named like one, `churn/` beside experiment churn, is no spec)."""
    return os.path.isfile(side) or side.lower().endswith(SPEC_FILE_SUFFIXES)


RecordedSpec = Callable[[str, str | None], Mapping[str, Any]]
"""Reads an experiment's stored spec from the store: ``(name, a spec file's storage: or None)``. Raises
ExperimentNotFound (and the store's own errors) as the store does."""


def compare_named(old: str, new: str, recorded_spec: RecordedSpec) -> SpecComparison:
    """`tunesmith diff OLD NEW`: each side a spec file (:func:`names_a_file`), or an experiment whose stored spec
    ``recorded_spec`` reads (only then: two files open no store). A file is validated as `cycle` reads the file of a
    recorded experiment (:func:`read_spec_file`): its schema, not the checks a spec given anew passes, which the spec
    of an experiment recorded before them fails (`tunesmith spec NAME`'s own output too); its trial code is not
    imported, nor its data read: a diff compares what specs declare. The store is the one a spec file among the
    sides names (``storage:``), as for `run`, unless the caller's says otherwise.

    Raises:
        UserInputError: naming the side: its file's first schema problem (`validate`'s message), or no such
            experiment (with a did-you-mean among the store's).
    """
    files = {side: _read_file(side) for side in (old, new) if names_a_file(side)}
    spec_storage = next((s.storage for s in files.values() if s.storage is not None), None)
    specs = {side: files[side] if side in files else _read_recorded(side, recorded_spec, spec_storage)
             for side in (old, new)}
    a, b = specs[old], specs[new]
    if old in files and new not in files:
        a = filled_like(a, b)
    elif new in files and old not in files:
        b = filled_like(b, a)
    return compare(a, b, old, new)


def _read_file(path: str) -> ExperimentSpec:
    try:
        return read_spec_file(path)
    except SpecError as e:
        raise UserInputError(f"{path}: {e}") from None


def _read_recorded(name: str, recorded_spec: RecordedSpec, spec_storage: str | None) -> ExperimentSpec:
    try:
        stored = recorded_spec(name, spec_storage)
    except UserInputError as e:  # no such experiment, or no store: it may have been meant as a file
        raise UserInputError(f"{name}: {e} (and no spec file of that name is here: a spec file is a file that exists "
                             "or ends in .yaml or .yml)") from None
    try:
        return spec_from_dict(stored, recorded=True)
    except SpecError as e:  # recorded by a tunesmith that wrote what this one no longer reads
        raise UserInputError(f"{name}: its recorded spec does not load in this version of tunesmith: {e}") from None


def differences_told(differences: tuple[SpecDifference, ...], most: int = 3) -> str:
    """The first ``most`` differences in one line (``space.C.high: 1000.0 -> 100.0; budget.trials: 40 -> 80``),
    and how many more there are."""
    told = "; ".join(d.line for d in differences[:most])
    return told + (f" (and {len(differences) - most} more)" if len(differences) > most else "")


def shown(value: Any) -> str:
    """A stored value as YAML writes it in flow style, on one line (``{type: float, low: 0.1}``, ``'1'``)."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=2**31, allow_unicode=True)
    return text.removesuffix("\n").removesuffix("\n...").strip()


class _Absent:
    """A field one side lacks (to_json leaves None out)."""


_ABSENT: Any = _Absent()


def _normalised(spec: ExperimentSpec) -> dict[str, Any]:
    data = spec.to_json()
    data.pop("base_dir", None)
    for name, domain in data.get("space", {}).items():
        data["space"][name] = domain = domain_as_written(domain)
        if "when" in domain:
            domain["when"] = {parent: allowed if isinstance(allowed, list) else [allowed]
                              for parent, allowed in domain["when"].items()}
    return data


def _keys(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    return [*a, *(k for k in b if k not in a)]


def _objectives(old: list[Any], new: list[Any], found: list[SpecDifference]) -> None:
    """Objectives by position: ``objective.direction`` where each side has one (as one is written, a mapping),
    ``objective.1.metric`` where either has several."""
    single = len(old) == len(new) == 1
    for i in range(max(len(old), len(new))):
        path = "objective" if single else f"objective.{i}"
        _walk(path, old[i] if i < len(old) else _ABSENT, new[i] if i < len(new) else _ABSENT, found)


def _walk(path: str, old: Any, new: Any, found: list[SpecDifference]) -> None:
    if old is _ABSENT and new is _ABSENT:
        return
    if old is _ABSENT:
        found.append(SpecDifference(path, DifferenceKind.ADDED, None, new))
    elif new is _ABSENT:
        found.append(SpecDifference(path, DifferenceKind.REMOVED, old, None))
    elif isinstance(old, dict) and isinstance(new, dict) and not _replaced_whole(path, old, new):
        for key in _keys(old, new):
            _walk(f"{path}.{key}", old.get(key, _ABSENT), new.get(key, _ABSENT), found)
    elif not _same(old, new, unordered=path in _UNORDERED or (path.startswith("space.") and ".when." in path)):
        found.append(SpecDifference(path, DifferenceKind.CHANGED, old, new))


def _replaced_whole(path: str, old: dict[str, Any], new: dict[str, Any]) -> bool:
    """A parameter whose type changed, a scheduler by another name: another thing, whose fields mean other things
    (one difference for the whole, not one per field)."""
    section, _, rest = path.partition(".")
    if section == "space" and rest and "." not in rest:
        return bool(old.get("type") != new.get("type"))
    return path == "scheduler" and old.get("name") != new.get("name")


def _same(a: Any, b: Any, unordered: bool = False) -> bool:
    """Equal values of equal types (1, 1.0 and true are three choices); ``unordered``: two lists as sets."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        if unordered:
            return len(a) == len(b) and all(any(_same(x, y) for y in b) for x in a) \
                and all(any(_same(y, x) for x in a) for y in b)
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _section_rank(path: str) -> int:
    section = path.partition(".")[0]
    return next((i for i, group in enumerate(_SECTION_ORDER) if section in group), len(_SECTION_ORDER))


def exists_saying_what_differs(exists: ExperimentExists, store: SQLStore, declared: ExperimentSpec) -> ExperimentExists:
    """``exists`` (`run` under a name the store has), with the first differences between the recorded spec and
    ``declared`` (the spec as given, seed and workdir not filled in) added: `tunesmith resume` runs the recorded one,
    and what it would not run is why that matters. ``exists`` as it was where they are the same, or the recorded spec
    cannot be read."""
    from tunesmith.raised_budget import edits_of_recorded_spec
    from tunesmith.storage.sql import describe_url, resolve_url, resume_command

    try:
        experiment = store.experiment(declared.name)
        recorded = spec_from_dict(experiment.spec, recorded=True)
        differences = edits_of_recorded_spec(store, experiment, recorded, declared)  # less `resume`'s raises
    except TunesmithError:  # deleted meanwhile, written by a tunesmith this one cannot read, a store gone
        return exists
    if not differences:
        return exists
    # `diff NAME SPEC` opens the store that SPEC's storage: names, else the default: --storage where that is another
    elsewhere = [] if store.url == resolve_url(None, declared.storage, os.environ) else [
        "--storage", describe_url(store.url)]
    told = differences_told(differences)
    if [d.path for d in differences] == ["budget.trials"] and _raised(differences[0]):
        more = differences[0].new
        command = resume_command(declared.name, store.url, os.environ, trials=more)
        return ExperimentExists(f"an experiment named {declared.name!r} already exists in {describe_url(store.url)} "
                                f"with a trial budget of {differences[0].old}; give it more trials, informed by those "
                                f"it has, with `{command}`, or choose another name (--name)", exists.name,
                                exists.store, differences=told)
    return ExperimentExists(f"{exists}. Its recorded spec differs from this one: {told} (`"
                            f"{shlex.join(['tunesmith', 'diff', declared.name, 'SPEC', *elsewhere])}` lists every "
                            "difference)", exists.name, exists.store, differences=told)


def _raised(difference: SpecDifference) -> bool:
    """Whether ``difference`` (at budget.trials) gives a larger trial limit: what `resume --trials` records."""
    return isinstance(difference.old, int) and isinstance(difference.new, int) and difference.new > difference.old
