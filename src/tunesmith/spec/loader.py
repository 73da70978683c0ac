"""Load a spec from YAML (safely) or a dict, and turn validation errors into one message with a field path."""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tunesmith.errors import SpecError, quoted
from tunesmith.spec.model import ExperimentSpec, check_new_spec
from tunesmith.spec.scheduler_config import SCHEDULER_NAMES
from tunesmith.spec.task_config import RECORDED_SPEC
from tunesmith.suggestions import closest, nearby_file

NAME_RULE = "use ASCII letters, digits, '_', '.' or '-' (starting with a letter or digit, at most 128)"  # NAME_PATTERN
_DOMAIN_TAGS = ("float", "int", "categorical")
# the domain types of Optuna (its distributions, suggest_* methods) and of the libraries it grew beside, as tunesmith
# writes them: an Optuna user's `type: loguniform` is a float on a log scale, which no spelling rule finds
_OTHER_TYPES = {
    "uniform": "float", "loguniform": "float, with log: true", "discrete_uniform": "float, with step: ...",
    "quniform": "float, with step: ...", "int_uniform": "int", "intuniform": "int", "randint": "int",
    "int_loguniform": "int, with log: true", "intloguniform": "int, with log: true",
    "lograndint": "int, with log: true",
    "choice": "categorical",
}
# Optuna's words for a key tunesmith has elsewhere or under another name (suggestions.ALIASES, MISPLACED_KEYS say
# where): a ported study holds several, all named in one message (see _with_optuna_words_after)
_OPTUNA_KEYS = frozenset({"study_name", "direction", "directions", "sampler", "pruner", "n_trials", "timeout",
                          "n_jobs", "q", "user_attrs"})
_UNKNOWN_TYPE = re.compile(r"^unknown type '(.+?)'")
_CHOICE_TYPES = ("float", "int", "str", "bool")  # the members of ParamValue's union, as pydantic names them
# StrictModel's message for a key no field declares; the key belongs in the path.
_UNKNOWN_KEY = re.compile(r"^unknown key (['\"])(.+?)\1")


def load_spec(path: str | os.PathLike[str], **overrides: Any) -> ExperimentSpec:
    """Read and validate a YAML spec file given anew: :func:`read_spec_file`, then the checks a new spec passes
    (:func:`tunesmith.spec.model.check_new_spec`).

    Args:
        path: the spec file.
        **overrides: top-level keys replacing the file's (``name``, ``storage``...); ``None`` values are ignored.

    Raises:
        SpecError: one message naming the field and the fix.
    """
    spec = read_spec_file(path, **overrides)
    check_new_spec(spec)
    return spec


def read_spec_file(path: str | os.PathLike[str], *, import_classes: bool = True, **overrides: Any) -> ExperimentSpec:
    """Read and validate a YAML spec file as a recorded spec is validated (:func:`spec_from_dict`), without the
    checks for a spec given anew: for a file that may name an experiment already recorded (``tunesmith cycle
    spec.yaml``), which stays usable as it was recorded. Its caller runs ``check_new_spec`` when it names none.

    Args:
        path: the spec file.
        import_classes: look up a task's classes (which imports them, and their modules run) and its scorer; False
            reads the file as a recorded spec is read (`validate --schema-only`: no code the spec names is run).
        **overrides: top-level keys replacing the file's (``name``, ``storage``...); ``None`` values are ignored.

    Raises:
        SpecError: one message naming the field and the fix.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("", f"spec file {str(p)!r} does not exist{_folder_looked_in(p)}{_other_spec_file_hint(p)}"
                        ) from None
    except UnicodeDecodeError as e:  # a file saved as UTF-16 (PowerShell's `>`) or Latin-1, or no text at all
        raise _not_text(p, e) from None
    except OSError as e:
        raise SpecError("", f"cannot read spec file {str(p)!r}: {e.strerror}") from None
    if p.suffix == ".py":  # YAML reads `def f(config, trial):` as a key: an unknown key named like the code
        raise SpecError("", f"{p.name} is Python code, not a spec: give a YAML spec whose trial names it, e.g. "
                            f"trial: {{function: '{p.stem}:objective'}} (the module {p.stem!r}, its function)")
    try:
        data, node = _parse(text)
    except NestedTooDeeply as e:
        raise SpecError("", f"{p.name} is nested too deeply at line {e.mark.line + 1}, column {e.mark.column + 1}: "
                            f"{e.problem}") from None
    except AliasesExpandTooFar as e:
        raise SpecError("", f"{p.name} repeats too much through aliases at line {e.mark.line + 1}, column "
                            f"{e.mark.column + 1}: {e.problem}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise SpecError("", f"YAML syntax error in {p.name}{where}: {problem}{syntax_fix(e, text)}") from None
    for fault in (key_written_twice(node), boolean_key(data, node), _not_indented(node)):
        if fault is not None:
            raise SpecError(*fault)
    if data is None:  # nothing but blanks and comments
        raise SpecError("", f"{p.name} is empty (or holds only comments): a spec is a mapping of keys, e.g. name: "
                            "quick, objective: {metric: loss, direction: minimize}, space: {...}, trial: {...} "
                            "(see examples/quickstart.yaml)")
    if not isinstance(data, dict):
        raise SpecError("", f"{p.name} must hold a mapping of keys (name, objective, space, ...); "
                            f"got {type(data).__name__}")
    data.update({k: v for k, v in overrides.items() if v is not None})
    data.setdefault("base_dir", str(p.resolve().parent))
    spec = spec_from_dict(data, recorded=not import_classes)
    spec._yaml_faults = yaml_11_faults(node)
    return spec


def _not_text(p: Path, e: UnicodeDecodeError) -> SpecError:
    """The error for a spec file that is not UTF-8: a SQLite database (the store, given in the spec's place) says
    so, where re-encoding it was the advice; other bytes are text in another encoding, to save as UTF-8."""
    from tunesmith.database_url import SQLITE_HEADER

    if e.object[:len(SQLITE_HEADER)] == SQLITE_HEADER:
        return SpecError("", f"{p.name} is a SQLite database (a tunesmith store?), not a spec: give the YAML spec "
                             f"file; to read the store, tunesmith ls --storage sqlite:///{p}")
    return SpecError("", f"{p.name} is not UTF-8 text (byte {e.object[e.start]:#04x} at position {e.start}); "
                         "save it as UTF-8")


def _folder_looked_in(missing: Path) -> str:
    """`` in /home/ana/proj`` for a spec file named relative to the current folder: which folder that was is not in
    the name as typed (a path from a shell's other tab, a cron job's home folder); an absolute name says it."""
    return "" if missing.is_absolute() else f" in {os.path.dirname(os.path.abspath(missing))}"


def _other_spec_file_hint(missing: Path) -> str:
    """``; did you mean 'c.yaml'?`` for a missing spec file whose folder holds a YAML file of a name like it
    (``c.yml`` for ``c.yaml``, ``sepc.yaml``), spelt as the missing one was (its folder included); else ``""``."""
    close = nearby_file(missing, (".yaml", ".yml"))
    return f"; did you mean {str(missing.with_name(close))!r}?" if close else ""


def safe_load_checked(text: str) -> tuple[Any, tuple[str, str] | None]:
    """``yaml.safe_load(text)``, parsed once, and the first key written twice in it (see :func:`key_written_twice`).

    Raises:
        yaml.YAMLError: not valid YAML.
    """
    data, node = _parse(text)
    return data, key_written_twice(node)


def _parse(text: str) -> tuple[Any, yaml.Node | None]:
    """``yaml.safe_load(text)`` and the node it was constructed from (for what only the text says: how a value
    was written).

    Raises:
        NestedTooDeeply: lists and mappings nested more than MAX_NESTING levels deep (aliases' expanded).
        AliasesExpandTooFar: aliases that repeat more than MAX_ALIASED in all.
        yaml.YAMLError: not valid YAML.
    """
    loader = _SpecLoader(text)
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()


# A spec's deepest value is a handful of levels down (space.P.when.Q.0). PyYAML composes a node by recursion, a
# few frames a level: about 450 levels ran Python out of stack, a RecursionError traceback and not a message.
MAX_NESTING = 100


class NestedTooDeeply(yaml.MarkedYAMLError):
    """Lists and mappings nested more than :data:`MAX_NESTING` levels deep, first at ``mark``."""

    def __init__(self, mark: yaml.Mark) -> None:
        super().__init__(problem=f"more than {MAX_NESTING} lists and mappings inside each other; a spec needs a few "
                                 "levels: flatten it (or quote it, if it is text)", problem_mark=mark)
        self.mark = mark


# What aliases (*name) may repeat, in nodes plus characters of text, beyond what is written: a spec's `<<: *defaults`
# repeats a few hundred. PyYAML shares an aliased node, so nine aliases of nine aliases ... load in no time, but each
# walk of the values (a message quoting one, the spec recorded as JSON) expands them: a 600-byte spec of nested
# aliases was 387 million strings, 3.4 GB and a MemoryError in the message quoting them.
MAX_ALIASED = 1_000_000


class AliasesExpandTooFar(yaml.MarkedYAMLError):
    """Aliases that repeat more than :data:`MAX_ALIASED` nodes and characters in all, first past it at ``mark``."""

    def __init__(self, mark: yaml.Mark) -> None:
        super().__init__(problem=f"its aliases (*name) repeat more than {MAX_ALIASED:,} values and characters in all "
                                 "(aliases of aliases multiply); a spec repeats a few small parts: write the values "
                                 "out, or alias each part once", problem_mark=mark)
        self.mark = mark


class _SpecLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses nesting deeper than :data:`MAX_NESTING` before Python's stack runs out, and
    aliases that repeat more than :data:`MAX_ALIASED` (nesting through aliases counted as written out), and leaves
    the nodes as written: the checks read them after (:func:`key_written_twice`, :func:`yaml_11_faults`)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases: list[tuple[yaml.Mark, int, yaml.Node]] = []  # each alias: where, how deep, the node named

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self._depth >= MAX_NESTING:
            raise NestedTooDeeply(self.peek_event().start_mark)
        alias = self.peek_event() if self.check_event(yaml.AliasEvent) else None
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if alias is not None and node is not None:
            self._aliases.append((alias.start_mark, self._depth, node))
        return node

    def compose_document(self) -> yaml.Node | None:
        node = super().compose_document()
        # Counted once all is composed: an alias of a mapping it is inside of (`&a [*a]`) names it half-composed.
        expanded: dict[int, tuple[int, int]] = {}
        aliased = 0
        for mark, depth, named in self._aliases:  # in the order written: the aliases inside one counted before it
            height, size = _written_out(named, expanded, set())
            if depth + height > MAX_NESTING:
                raise NestedTooDeeply(mark)
            aliased += size
            if aliased > MAX_ALIASED:
                raise AliasesExpandTooFar(mark)
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        return yaml.constructor.BaseConstructor.construct_mapping(self, _merged(node, frozenset()), deep=deep)


def _written_out(node: yaml.Node, expanded: dict[int, tuple[int, int]], open_: set[int]) -> tuple[int, int]:
    """``node`` written out, the aliases in it repeated: its height in lists and mappings, and its nodes plus
    characters of text; ``expanded`` keeps each node's. An alias of a node it is inside of (``&a [*a]``, which Python
    holds as a list inside itself) counts one: written out, it has no end."""
    if id(node) in expanded:
        return expanded[id(node)]
    if isinstance(node, yaml.ScalarNode):
        return 1, 1 + len(node.value)
    if id(node) in open_:
        return 1, 1
    open_.add(id(node))
    parts = [_written_out(child, expanded, open_) for item in node.value
             for child in (item if isinstance(item, tuple) else (item,))]
    open_.discard(id(node))
    expanded[id(node)] = 1 + max((height for height, _ in parts), default=0), 1 + sum(size for _, size in parts)
    return expanded[id(node)]


def _merged(node: yaml.MappingNode, merging: frozenset[int]) -> yaml.MappingNode:
    """A copy of ``node`` with what its merge keys (``<<: *base``, ``<<: [*a, *b]``) merge in place of them, by YAML
    1.1's rules: a key written in the mapping wins over a merged one, and an earlier merge over a later one.

    PyYAML's own flattening rewrites the node in place, which the checks read after (a key merged in and written
    again, the way to override it, looked like a key written twice); and PyYAML 6.0.4 tells merged keys apart by the
    identity of their text, so that of two merges the earlier won for a key of one letter and the later for a longer
    one. ``merging``: the mappings whose merges led here (one merging itself has no meaning in YAML).

    Raises:
        yaml.constructor.ConstructorError: a merge of something that is not a mapping, or of the mapping itself.
    """
    if not isinstance(node, yaml.MappingNode):
        return node  # BaseConstructor says what it expected
    inner = merging | {id(node)}
    merged: dict[object, tuple[yaml.Node, yaml.Node]] = {}
    written = []
    for key, value in node.value:
        if key.tag != _MERGE:
            if key.tag == "tag:yaml.org,2002:value":  # `=`: YAML 1.1's value key, which PyYAML reads as text
                key = yaml.ScalarNode("tag:yaml.org,2002:str", key.value, key.start_mark, key.end_mark, key.style)
            written.append((key, value))
            continue
        for source in value.value if isinstance(value, yaml.SequenceNode) else [value]:
            if not isinstance(source, yaml.MappingNode) or id(source) in inner:
                what = "the mapping itself" if id(source) in inner else source.id
                raise yaml.constructor.ConstructorError("while constructing a mapping", node.start_mark, "expected a "
                                                        f"mapping or list of mappings for merging, but found {what}",
                                                        source.start_mark)
            for pair in _merged(source, inner).value:
                merged.setdefault(_resolved(pair[0]) if isinstance(pair[0], yaml.ScalarNode) else id(pair[0]), pair)
    return yaml.MappingNode(node.tag, [*merged.values(), *written], node.start_mark, node.end_mark, node.flow_style)


def key_written_twice(node: yaml.Node | None, path: str = "", seen_nodes: set[int] | None = None,
                       ) -> tuple[str, str] | None:
    """The first mapping key written twice, as (field path, message): YAML keeps the last one and drops the other
    without a word (a copied parameter line not renamed loses a parameter)."""
    seen_nodes = set() if seen_nodes is None else seen_nodes
    if id(node) in seen_nodes:  # an alias of a node already walked (or a recursive one)
        return None
    seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[object, int] = {}
        for key, value in node.value:
            if key.tag == _MERGE:  # `<<: *defaults` merges (two of them are allowed): its keys may be written again
                if (found := key_written_twice(value, path, seen_nodes)) is not None:
                    return found  # within the mapping merged (one written here: `<<: {low: 0, low: 1}`)
                continue
            # the key as YAML resolves it (`1` and "1" differ; `yes` and `true` are one key)
            name = _resolved(key) if isinstance(key, yaml.ScalarNode) else None
            text = key.value if isinstance(key, yaml.ScalarNode) else None
            where = f"{path}.{text}" if path else str(text)
            if name is not None and name in seen:
                first, again = seen[name], key.start_mark.line + 1
                lines = f"lines {first} and {again}" if first != again else f"both on line {first}"
                return where, f"written twice ({lines}); YAML would keep only the last: rename or remove one"
            if name is not None:
                seen[name] = key.start_mark.line + 1
            if (found := key_written_twice(value, where, seen_nodes)) is not None:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            if (found := key_written_twice(item, f"{path}.{i}", seen_nodes)) is not None:
                return found
    return None


def _resolved(key: yaml.ScalarNode) -> object:
    try:
        value = yaml.SafeLoader("").construct_object(key)
    except yaml.YAMLError:
        return ("text", key.value)
    return (type(value).__name__, value) if isinstance(value, bool) else value


_BOOL = "tag:yaml.org,2002:bool"
_TRUE_WORDS = ("yes", "true", "on")  # YAML 1.1's spellings of true; no, false and off are false
_MERGE = "tag:yaml.org,2002:merge"
# The sections a spec writes as a mapping: one written empty and followed by keys no spec has lost its indentation.
_SECTIONS = ("objective", "space", "strategy", "scheduler", "budget", "executor", "trial", "task", "tags", "cost",
             "select", "tracking", "promotion", "drift")
_DOMAIN_KEYS = ("type", "low", "high", "log", "step", "choices", "when")


def _scalars(node: yaml.Node | None, parts: tuple[str, ...] = (), seen: set[int] | None = None,
             ) -> Iterator[tuple[tuple[str, ...], yaml.ScalarNode, bool]]:
    """Every scalar under ``node``, in the order written: its path (keys as written, list indices) and whether it
    is a mapping's key (its path then ends with itself). A merged mapping (``<<: *defaults``) is walked where it is
    merged; an alias already walked is not walked again."""
    seen = set() if seen is None else seen
    if node is None or id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.ScalarNode):
        yield parts, node, False
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.tag == _MERGE:
                for merged in value.value if isinstance(value, yaml.SequenceNode) else [value]:
                    yield from _scalars(merged, parts, seen)
                continue
            if isinstance(key, yaml.ScalarNode):
                yield (*parts, key.value), key, True
                yield from _scalars(value, (*parts, key.value), seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _scalars(item, (*parts, str(i)), seen)


def boolean_key(data: Any, node: yaml.Node | None = None) -> tuple[str, str] | None:
    """The first key of ``data``, at any depth, that YAML read as a boolean (``on:``, ``yes:``), as (field path,
    message): every key of a spec is text (a top-level one was a TypeError, keywords must be strings; a nested one
    pydantic's "valid string" at ``space.1``). ``node``, the YAML ``data`` was read from, names the key as written
    (``on``, where a mapping from Python has only True). The one check, and wording, of a file's keys, a mapping's
    (:func:`spec_from_dict`) and keywords' (:func:`format_validation_error`)."""
    found = _first_boolean_key(data, ())
    if found is None:
        return None
    written = next((scalar.value for parts, scalar, is_key in _scalars(node) if is_key and scalar.tag == _BOOL
                    and parts[:-1] == found[:-1] and (scalar.value.lower() in _TRUE_WORDS) == (found[-1] == "True")),
                   None)
    key = written or found[-1]
    quoted = f": '{written}'" if written else ""
    return ".".join((*found[:-1], key)), (f"a key must be text; got {key}, which YAML read as a boolean (quote it as "
                                          f"you wrote it{quoted})")


def _first_boolean_key(data: Any, parts: tuple[str, ...], seen: set[int] | None = None) -> tuple[str, ...] | None:
    """The path of the first boolean key in ``data``, in the order written (a key, then what it holds); a structure
    YAML made recursive with an alias is walked once."""
    seen = set() if seen is None else seen
    if not isinstance(data, Mapping | list | tuple) or id(data) in seen:
        return None
    seen.add(id(data))
    items: Iterable[tuple[object, Any]] = data.items() if isinstance(data, Mapping) else enumerate(data)
    for key, value in items:
        if isinstance(key, bool):
            return (*parts, str(key))
        found = _first_boolean_key(value, (*parts, str(key)), seen)
        if found is not None:
            return found
    return None


def _not_indented(node: yaml.Node | None) -> tuple[str, str] | None:
    """The first key written below an empty section (``space:``) at the section's own indentation, where it was
    meant inside it, as (field path, message): YAML reads the section as empty and the key as one beside it. Said
    where that key is no key of the mapping it landed in: a spec's top level (no spec key), or a parameter's
    (``type``, ``low``...: a domain's keys, under ``space:`` beside an empty parameter)."""
    if not isinstance(node, yaml.MappingNode):
        return None
    pairs = [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)]
    found = _key_after_an_empty_one(pairs, lambda prev, key: prev in _SECTIONS
                                    and key not in ExperimentSpec.model_fields)
    if found is not None:
        return found
    space = next((v for k, v in pairs if k.value == "space" and isinstance(v, yaml.MappingNode)), None)
    if space is not None:
        inner = [(k, v) for k, v in space.value if isinstance(k, yaml.ScalarNode)]
        found = _key_after_an_empty_one(inner, lambda prev, key: key in _DOMAIN_KEYS, "space.")
    return found


def _key_after_an_empty_one(pairs: list[tuple[yaml.ScalarNode, yaml.Node]], misplaced: Callable[[str, str], bool],
                            prefix: str = "") -> tuple[str, str] | None:
    for (prev, value), (key, _) in pairwise(pairs):
        empty = isinstance(value, yaml.ScalarNode) and value.tag == "tag:yaml.org,2002:null" and not value.value
        if empty and misplaced(prev.value, key.value) and key.start_mark.column == prev.start_mark.column:
            return f"{prefix}{key.value}", (f"unknown key {key.value!r}, written below {prev.value}: (line "
                                            f"{prev.start_mark.line + 1}), which is empty: indent it under "
                                            f"{prev.value}:, by two spaces")
    return None


def yaml_11_faults(node: yaml.Node | None) -> tuple[tuple[str, str], ...]:
    """What YAML 1.1 read as another value than a new user meant, as (field path, message) each, for the checks of a
    spec given anew (:func:`tunesmith.spec.model.check_new_spec`; a recorded experiment's spec file stays usable as
    it was recorded): a categorical choice or a ``when`` value written yes, no, on or off (YAML 1.1 booleans: the
    trial got True for ``yes``, and False for Norway's ``NO``), and a number written with colons (``1:30``: base 60,
    90, where a duration of an hour and a half was meant)."""
    faults = []
    for parts, scalar, is_key in _scalars(node):
        if is_key or scalar.style is not None:
            continue
        where = ".".join(parts)
        if scalar.tag == _BOOL and scalar.value.lower() not in ("true", "false") and _choice_or_condition(parts):
            meant = "true" if scalar.value.lower() in ("yes", "on") else "false"
            faults.append((where, f"YAML 1.1 reads an unquoted {scalar.value} as the boolean {meant}: quote it for "
                                  f"the text ('{scalar.value}'), or write {meant} for the boolean"))
        elif scalar.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float") and ":" in scalar.value:
            number = yaml.SafeLoader("").construct_object(scalar)
            faults.append((where, f"YAML 1.1 reads {scalar.value} as the base-60 number {number:g}: for a duration "
                                  f"write its units (1m30s, 1h30m), for text quote it ('{scalar.value}')"))
    return tuple(faults)


def _choice_or_condition(parts: tuple[str, ...]) -> bool:
    """Whether the value at ``parts`` is a categorical choice (``space.P.choices.I``) or a ``when`` value
    (``space.P.when.Q``, ``space.P.when.Q.I``)."""
    return len(parts) >= 4 and parts[0] == "space" and (
        (parts[2] == "choices" and len(parts) == 4) or (parts[2] == "when" and len(parts) in (4, 5)))


def syntax_fix(error: yaml.YAMLError, text: str) -> str:
    """``; <the fix>`` for the YAML syntax errors a new spec meets most (a tab, a line indented as no key above it,
    a value holding ': ', a colon without its space), where the text shows which; else ``""``."""
    problem = getattr(error, "problem", None) or ""
    mark, context = getattr(error, "problem_mark", None), getattr(error, "context_mark", None)
    if mark is None:
        return ""
    lines = text.splitlines()
    if "'\\t'" in problem:
        return "; YAML indents with spaces only: replace the tab with spaces"
    if mark.line >= len(lines):
        return ""
    line = lines[mark.line]
    indent = len(line) - len(line.lstrip(" "))
    if problem.startswith("expected <block end>") and context is not None and context.column != mark.column:
        return (f"; line {mark.line + 1} is indented {indent} spaces, which lines up with no key above it: line it up "
                "with the keys it belongs beside")
    if problem.startswith("expected '<document start>'") and mark.line > 0:
        return "; the first key is indented: start each top-level key at the start of its line"
    if problem == "mapping values are not allowed here":
        key, sep, value = line.partition(": ")
        if sep and len(key) < mark.column and re.fullmatch(r"\s*(- )?[^\s{}\[\],#'\"]+", key):
            # a second ': ' on a block key's line: the value holds one
            quote = '"' if "'" in value else "'"
            return f"; quote a value holding ': ', as in {key.strip()}: {quote}{value.strip()}{quote}"
        above = next((i for i in range(mark.line - 1, -1, -1) if lines[i].strip()
                      and not lines[i].lstrip().startswith("#")), None)
        if above is None:
            return ""
        before = lines[above]
        if ": " not in before and re.match(r"\s*[^\s:#'\"]+:[^\s:/]", before):
            fixed = before.strip().replace(":", ": ", 1)
            return f"; line {above + 1} needs a space after its colon: {fixed}"
        if indent > len(before) - len(before.lstrip(" ")):
            return (f"; line {mark.line + 1} is indented further than line {above + 1} ({before.strip()}), whose key "
                    "already has a value: line it up with that key")
    return ""


def spec_from_dict(data: Mapping[str, Any], *, recorded: bool = False) -> ExperimentSpec:
    """Validate a spec given as a mapping (a parsed YAML document, or a stored spec).

    ``recorded``: ``data`` is an experiment's stored spec, validated in full when it was recorded, and the caller
    only reads it (shows, reports, compares): its scorer name and its task's classes are not looked up again, which
    imports scikit-learn (about a second of start-up in `show`, `ls`, `drift`, ...). Callers that go on to run or
    refit the spec (resume, cycle, reproduce) leave it False, so that a class or scorer that is gone since is
    reported up front; `retune` reads its parent's as recorded and checks the new experiment's spec, built from it,
    in full once the new rows are checked, before anything is recorded, and `promote` reads it in full once the
    policy and the trial are (a mistyped --data or --trial is refused without importing scikit-learn)."""
    fault = boolean_key(data)
    if fault is not None:
        raise SpecError(*fault)
    key = next((k for k in data if not isinstance(k, str)), None)
    if key is not None:  # a TypeError (keywords must be strings) from ExperimentSpec's __init__, not a field's error
        raise SpecError(str(key), f"a key must be text; got {key!r}")
    token = RECORDED_SPEC.set(recorded)  # not pydantic's context: ExperimentSpec's own __init__ drops it
    try:
        return ExperimentSpec.model_validate(dict(data))
    except ValidationError as e:
        raise format_validation_error(e, data) from None
    except SpecError as e:  # ExperimentSpec's __init__ formats its ValidationError
        raise _with_optuna_words_after(e, data) from None
    finally:
        RECORDED_SPEC.reset(token)


def _with_optuna_words_after(error: SpecError, data: Mapping[str, Any]) -> SpecError:
    """``error``, where it is about one of Optuna's words (``n_trials``, ``type: loguniform``), with every further
    one the spec holds (``; also sampler: ...``): a ported study holds several, and naming one a validate took one
    validate each. Found by validating again with each one found taken out, so each is said as when alone; the
    first mistake of another kind ends the search (said by the next validate, once these are fixed)."""
    said, rest = [error], copy.deepcopy(dict(data))
    if not _take_out_optuna_word(rest, error):
        return error
    while True:
        try:
            ExperimentSpec.model_validate(rest)
        except SpecError as e:
            found = e
        else:
            break
        if str(found) in map(str, said) or not _take_out_optuna_word(rest, found):  # another kind of mistake
            break
        said.append(found)
    if len(said) == 1:
        return error
    also = "".join(f"; also {e}" for e in said[1:])
    return SpecError(error.path, f"{error.message}{also}")


def _take_out_optuna_word(data: dict[str, Any], error: SpecError) -> bool:
    """Take the Optuna word ``error`` names out of ``data`` (a key removed; an Optuna domain type replaced by
    tunesmith's); False, changing nothing, where ``error`` is about anything else or its place is not found."""
    *where, last = error.path.split(".") if error.path else [""]
    if (key := _UNKNOWN_KEY.match(error.message)) is not None:
        held, word = _given_at(data, tuple(where)), key.group(2)
        if word.lower() in _OPTUNA_KEYS and last == word and isinstance(held, dict) and word in held:
            del held[word]
            return True
    elif (tag := _UNKNOWN_TYPE.match(error.message)) is not None and tag.group(1).lower() in _OTHER_TYPES:
        domain = _given_at(data, (*where, last))
        if isinstance(domain, dict):
            domain["type"] = _OTHER_TYPES[tag.group(1).lower()].split(",")[0]
            return True
    return False


def format_validation_error(error: ValidationError, data: Mapping[str, Any]) -> SpecError:
    """The first problem in ``error`` as a SpecError: field path, what is wrong, what was received."""
    first = error.errors(include_url=False)[0]
    raised = (first.get("ctx") or {}).get("error")
    if isinstance(raised, SpecError):
        # a SpaceError from a validator (the space's cross-checks): a ValueError, as to_space documents, so pydantic
        # wrapped it; it names its own field path and fix
        return raised
    kind = first["type"]
    msg: str = first["msg"]
    got = first.get("input")
    loc = first["loc"]
    if loc and loc[-1] == "[key]" and isinstance(got, bool) and (fault := boolean_key(data)) is not None:
        return SpecError(*fault)  # keywords to ExperimentSpec, or a policy file: not through spec_from_dict
    if loc and loc[-1] == 0 and isinstance(_given_at(data, loc[:-1]), str):
        loc = loc[:-1]  # one name written alone where a list is expected (retry_on: crash): no item 0 was written
    path = _path(loc, data)
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    elif msg.startswith("Assertion failed, "):
        msg = msg[len("Assertion failed, "):]
    if kind == "union_tag_not_found":
        msg = "missing `type`; use one of float, int, categorical"
    elif kind == "union_tag_invalid":
        tag = first.get("ctx", {}).get("tag")
        close = closest(str(tag), _DOMAIN_TAGS)
        other = _OTHER_TYPES.get(str(tag).lower())
        hint = f"write type: {other}; " if other else f"did you mean {close!r}? " if close else ""
        msg = f"unknown type {quoted(tag)}; {hint}use one of float, int, categorical"
    elif kind == "missing":
        msg = "this field is required" + _MISSING_FIX.get(re.sub(r"^objective\.\d+\.", "objective.", path),
                                                          _scheduler_field_fix(path, data))
    elif kind in ("enum", "literal_error"):
        expected = first.get("ctx", {}).get("expected", "")
        options = [s.strip().strip("'") for s in expected.replace(" or ", ",").split(",") if s.strip()]
        close = closest(str(got), options) if isinstance(got, str | int | float) else None  # not a list's str
        hint = f" (did you mean {close!r}?)" if close else ""
        msg = f"must be one of {expected}; got {quoted(got)}{hint}"
    elif kind == "extra_forbidden":
        msg = "unknown key"
    elif kind == "model_attributes_type" and len(first["loc"]) == 2 and first["loc"][0] == "space":
        msg = (f"give a domain: {{type: categorical, choices: [...]}} for a list of values, {{type: float, low, high}} "
               f"or {{type: int, low, high}}; got {quoted(got)}")
    elif "choices" in first["loc"][:-2] and first["loc"][-1] in _CHOICE_TYPES:  # no member of the union fits
        path = _path(first["loc"][:-1], data)
        one = "-".join(map(str, got)) if isinstance(got, list) and all(isinstance(v, str | int | float) for v in got) \
            else "a-b"
        msg = (f"a choice must be a string, a number, a boolean or null; got {quoted(got)} (write it as a string, "
               f"such as {quoted(one)}, and split it in the trial code)")
    elif kind == "int_from_float":
        msg = f"must be a whole number; got {quoted(got)}"
    elif kind in ("int_parsing", "int_type") and isinstance(got, str) and _whole_number(got) is not None \
            and not _plain_number(got):
        # YAML 1.1 reads 1e3 (no dot) as text; a float field takes it, an int field does not
        msg = f"must be a whole number; got {quoted(got)}, which YAML reads as text: write {_whole_number(got)}"
    elif kind in ("tuple_type", "list_type"):  # a tuple is how a list is held, never what a spec writes
        msg = f"must be a list, written [a, b]; got {quoted(got)}"
    elif kind in ("too_short", "too_long") and msg.startswith("Tuple "):
        msg = f"list {msg[len('Tuple '):]}; got {quoted(list(got) if isinstance(got, tuple) else got)}"
    elif kind == "string_pattern_mismatch" and path == "name":
        msg = f"{NAME_RULE}; got {quoted(got)}"
    elif "got" not in msg and kind not in ("model_type", "dict_type") and not isinstance(got, dict | list):
        msg = f"{msg[0].lower()}{msg[1:]}; got {quoted(got)}"
        if kind == "string_type" and isinstance(got, bool):   # `prod: yes`
            msg += " (quote it as you wrote it: YAML read it as a boolean)"
        elif kind == "string_type" and isinstance(got, int):  # `build: 3`
            msg += f" (quote it: '{got}')"
        elif kind == "string_type" and isinstance(got, float):  # `release: 1.10` is 1.1 once read
            msg += " (quote it as you wrote it: YAML read it as a number)"
        elif kind in ("int_type", "float_type") and isinstance(got, str) and _plain_number(got):  # `trials: '5'`
            msg += f" (write the number without quotes: {got.strip()})"
        elif kind in ("int_type", "float_type") and isinstance(got, bool):  # `trials: true`, `low: no`
            msg += " (YAML reads true, false, yes, no, on and off as booleans: write a number)"
    elif kind in ("model_type", "dict_type"):  # pydantic's message names the model class, which no user wrote
        example = _MAPPING_EXAMPLE.get(re.sub(r"\.[^.]+$", ".*", path) if path.startswith("scheduler.mutations.")
                                       else path, "{key: value, ...}")
        msg = f"must be a mapping, e.g. {example}; got {quoted(got)}"
    if (key := _UNKNOWN_KEY.match(msg)) is not None:
        path = f"{path}.{key.group(2)}" if path else key.group(2)  # point at the offending key, not its parent
    return SpecError(path or "spec", msg)


def _plain_number(text: str) -> bool:
    """Whether ``text`` is a number that YAML reads as one when written without quotes (``5``, ``0.5``)."""
    try:
        return type(yaml.safe_load(text)) in (int, float)
    except yaml.YAMLError:
        return False


def _given_at(data: Any, loc: tuple[Any, ...]) -> Any:
    """What ``data`` holds at pydantic's ``loc`` (None where its keys do not lead anywhere: a union's tag)."""
    for part in loc:
        if isinstance(data, Mapping) and part in data:
            data = data[part]
        elif isinstance(data, list | tuple) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def _whole_number(text: str) -> int | None:
    """``1e3`` as 1000; None for text that is no whole number."""
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() else None


# What a section written as a plain value (`budget: 50`, `executor: process`) should look like.
_MAPPING_EXAMPLE = {
    "space": "space: {lr: {type: float, low: 0.0001, high: 0.1, log: true}}",
    "budget": "budget: {trials: 50}",
    "executor": "executor: {kind: process, workers: 2}",
    "trial": "trial: {function: \"objective.py:objective\"} or trial: {command: \"python train.py {args}\"}",
    "tags": "tags: {team: vision}",
    "cost": "cost: {cpu_hour: 0.04} or cost: {metric: dollars}",
    "task.holdout": "holdout: {fraction: 0.2}",
    "task.cv": "cv: {kind: stratified, folds: 5}",
    "task.nested": "nested: {outer_folds: 3, trials: 10}",
    "scheduler.mutations.*": "{resample: true}, {factors: [0.8, 1.2]}, {choices: [...]} or {keep: true}",
}


# What to write, for the required fields a new spec most often lacks.
_MISSING_FIX = {
    "name": ": name the experiment, e.g. name: churn (ASCII letters, digits, '_', '.', '-')",
    "objective": ": e.g. objective: {metric: roc_auc, direction: maximize}",
    "objective.direction": ": minimize or maximize, e.g. {metric: loss, direction: minimize}",
    "objective.metric": ": the name of the number to optimise, e.g. {metric: loss, direction: minimize}",
    "space": ": declare what to tune, e.g. space: {lr: {type: float, low: 0.0001, high: 0.1, log: true}}",
    "task.scoring": (": the scikit-learn scorer the folds compute, e.g. scoring: roc_auc (or set the objective's "
                     "metric to a scorer name: the task then optimises it); a business metric is a mapping, e.g. "
                     "scoring: {precision_at_recall: 0.8}"),
    "task.estimator": ": e.g. estimator: sklearn.linear_model.LogisticRegression",
    "task.data": ": e.g. data: {path: rows.csv, target: label} or data: {sklearn: breast_cancer}",
}


def _scheduler_field_fix(path: str, data: Mapping[str, Any]) -> str:
    """``: the step at which a trial is fully trained, e.g. scheduler: {name: asha, max_resource: 27}`` for
    ``scheduler: {name: asha}``, as ``scheduler: asha`` is told; else ``""``."""
    scheduler = data.get("scheduler")
    if path != "scheduler.max_resource" or not isinstance(scheduler, Mapping):
        return ""
    given = ", ".join(f"{k}: {v}" for k, v in scheduler.items() if isinstance(v, str | int | float))
    return (f": the step at which a trial is fully trained (its last epoch or iteration), e.g. "
            f"scheduler: {{{given + ', ' if given else ''}max_resource: 27}}")


def _path(loc: tuple[Any, ...], data: Mapping[str, Any]) -> str:
    parts: list[str] = []
    items = list(loc)
    for i, item in enumerate(items):
        if i == 2 and items[0] == "space" and item in _DOMAIN_TAGS:
            continue  # the discriminated union's tag, not a user-visible key
        if i == 1 and items[0] == "scheduler" and item in SCHEDULER_NAMES:
            continue  # likewise for the scheduler section
        if i == 1 and items[0] == "objective" and item == 0 and isinstance(data.get("objective"), dict):
            continue  # a single objective was written as a mapping, not a list
        if isinstance(item, str) and item.startswith("function-") or item in ("constrained-str", "[key]"):
            continue
        parts.append(str(item))
    return ".".join(parts)
