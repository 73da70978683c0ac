"""Resolve a trial function reference (``module:function`` or ``/path/file.py:function``), and load the user's
modules that lie in a spec's folder (its trial code, a task's pipeline classes: ``mysteps.Clip``) by their file.

A module beside the spec is loaded from its path under a name of its own (not its plain name, which Python keeps as
first imported: two folders' ``mysteps.py`` in one process, a notebook or a test run, would share the first), and
executed again when its file changed (its digest).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from types import ModuleType
from typing import Any

from tunesmith.digests import file_digest
from tunesmith.errors import SpecError, TunesmithError
from tunesmith.import_path import folder_importable, import_failure
from tunesmith.moved_project import spec_folder_gone
from tunesmith.suggestions import closest, nearby_file

# (reference, spec folder) -> the function found, with the digest of the file it was read from (None: a module
# imported by name, which Python keeps as first imported). Checked on each look-up (a trial's), so that a file
# edited since (a notebook's second run) is read again; a digest, not mtime and size: an edit that keeps the size
# within one tick of the kernel's file clock (a few ms) keeps both.
_cache: dict[tuple[str, str | None], tuple[str | None, Callable[..., Any]]] = {}
# A module loaded from its file (by its name in sys.modules) -> the digest of the file it was executed from.
_executed_from: dict[str, str | None] = {}
# The user's code this thread of control is importing right now (importing runs a file's top-level code), each
# with the spec field that names it. A context variable, not a global: another thread's run must not be refused
# while one imports.
_importing: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("tunesmith_importing_trial_code", default=())


@contextmanager
def _importing_trial_code(what: str, field: str = "trial.function") -> Iterator[None]:
    token = _importing.set((*_importing.get(), (what, field)))
    try:
        yield
    finally:
        _importing.reset(token)


def refuse_a_run_started_by_an_import() -> None:
    """Raise when called while the user's code is being imported (trial code, a task's pipeline classes): that code
    starts an experiment at its top level, so every worker that imports it would start the experiment again.

    Raises:
        SpecError: at the field that names the code (``trial.function``), naming the file and the fix (the
            ``__main__`` guard).
    """
    importing = _importing.get()
    if importing:
        what, field = importing[-1]
        raise SpecError(field, f"{what!r} starts an experiment when it is imported (as each trial's worker imports "
                        "it); put that code under `if __name__ == \"__main__\":`")


def check_trial_function(ref: str, base_dir: str | None, imported_by_workers: bool,
                         given: Callable[..., Any] | None = None) -> None:
    """Find the trial function before anything is recorded, as a trial will; ``given``: the function itself, handed
    over in this process, which an inline run calls: its call is checked instead (importing its module again would
    run its top-level code a second time, in a copy the run does not use).

    When the function lives in the script this process runs, this process uses it as it is; but workers (the
    process executor, Ray) import that script to find it, which runs its top level again. With
    ``imported_by_workers`` the script is then also imported here, afresh, as a worker will: a script that starts
    its experiment at the top level (the README's Python example without its ``__main__`` guard) is refused by
    :func:`refuse_a_run_started_by_an_import`, and one that cannot be imported on its own (relative imports of a
    ``python -m`` run) says why, instead of failing every trial.

    Raises:
        SpecError: at ``trial.function``.
    """
    if given is not None and not imported_by_workers:
        _check_call(given, ref.rpartition(":")[2])
        return
    with folder_importable(base_dir):  # the running script's import below imports what lies beside the spec too
        resolve_function(ref, base_dir)
        module_part = _module_part(ref, base_dir)
        origin = _origin(module_part, base_dir)
        if not imported_by_workers or origin is None or _running_script(origin) is None:
            return
        name = _file_module_name(origin)
        try:
            _exec_file(origin, name, module_part)
        finally:
            sys.modules.pop(name, None)   # this process keeps using __main__'s function


def _running_script(path: Path) -> Any:
    """The ``__main__`` module when ``path`` is the script this process runs: its function is used as it is,
    never imported a second time (which would run the script's top-level code again)."""
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    if main_file is not None and Path(main_file).resolve() == path.resolve():
        return main
    return None


def _module_part(ref: str, base_dir: str | None) -> str:
    """The module half of ``ref``; a module that lives in the spec's folder is named by its file: two projects
    with an `objectives.py` each (one notebook, one test session) must not share the first one imported."""
    module_part = ref.rpartition(":")[0]
    local = _file_beside_spec(module_part, base_dir)
    return module_part if local is None else str(local)


def _file_beside_spec(module: str, base_dir: str | os.PathLike[str] | None) -> Path | None:
    """The file in the spec's folder that module ``module`` names (``objectives.py`` for ``objectives``), where there
    is one: a module of one name, not a package's."""
    if not base_dir or module.endswith(".py") or "." in module:
        return None
    local = Path(base_dir) / (module + ".py")
    return local if local.is_file() else None


def module_beside_spec(module: str, base_dir: str | os.PathLike[str] | None, field: str) -> ModuleType | None:
    """Module ``module`` where it is a file in the spec's folder ``base_dir`` (``mysteps`` for ``mysteps.py``: a
    task's pipeline class ``mysteps.Clip``), loaded by its file as trial code is (see the module docstring); None
    where there is no such file (the caller imports it by name: an installed module).

    Raises:
        SpecError: at ``field``, what importing it raised.
        TunesmithError: tunesmith's own, which the module's code met (a store whose server does not answer).
    """
    local = _file_beside_spec(module, base_dir)
    return None if local is None else _module_from_file(local, module, field)


def _origin(module_part: str, base_dir: str | None) -> Path | None:
    """The file ``module_part`` is loaded from, where that is known without importing it."""
    if module_part.endswith(".py"):
        return Path(module_part) if Path(module_part).is_absolute() else Path(base_dir or ".") / module_part
    parent = module_part.rpartition(".")[0]
    if parent and parent not in sys.modules:
        return None  # finding it would import its package, top-level code and all: the guarded import does that
    try:
        found = importlib.util.find_spec(module_part)
    except (ImportError, ValueError):
        return None
    return Path(found.origin) if found is not None and found.origin and found.has_location else None


def _file_module_name(path: Path) -> str:
    """The name of the module loaded from the file at ``path``: unique to the path, and ending in the file's own
    name, as the types defined there are told (``tunesmith_user_1a2b3c4d_mysteps.Clip``: an allow-list refusing
    them, a pickling error)."""
    return "tunesmith_user_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8] + "_" + path.stem


def _module_from_file(path: Path, shown: str, field: str) -> ModuleType:
    """The module loaded from the file at ``path``, executed (again) unless it was from the file as it is now."""
    name = _file_module_name(path)
    module = sys.modules.get(name)
    if module is None or _executed_from.get(name) != _digest(path):  # edited since it was executed
        module = _exec_file(path, name, shown, field)
    return module


def _exec_file(path: Path, name: str, shown: str, field: str = "trial.function") -> ModuleType:
    """Import the file at ``path`` as module ``name`` (its top-level code runs, under the import guard)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    _executed_from[name] = _digest(path)  # before it runs: an edit made meanwhile is read next time
    sys.modules[name] = module
    try:
        with _importing_trial_code(str(path), field):
            spec.loader.exec_module(module)
    except BaseException as e:
        if sys.modules.get(name) is module:
            del sys.modules[name]   # a later look imports it afresh rather than finding half a module
        # tunesmith's own error the code met (a store whose server does not answer) keeps its exit code; a Ctrl-C
        # stays one
        if isinstance(e, TunesmithError) or not isinstance(e, Exception | SystemExit):
            raise
        raise _import_failure(e, shown, near=path, field=field) from None
    return module


def _import_failure(e: BaseException, module_part: str, where: str = "", near: Path | None = None,
                    spec_dir: str | None = None, field: str = "trial.function") -> SpecError:
    """What importing the user's code ``module_part`` (the file ``near``, where known) raised, said at ``field``: a
    package it imports that this Python lacks is named as such (not as the file not being found), and a module
    beside the file that is not on the path as that (not as a package to install)."""
    if isinstance(e, ModuleNotFoundError):
        shown = Path(module_part).stem if module_part.endswith(".py") else module_part
        missing = (e.name or "").partition(".")[0]
        if near is not None and missing and ((near.parent / f"{missing}.py").is_file()
                                             or (near.parent / missing).is_dir()):
            return SpecError(field, f"importing {shown!r} failed: it imports {missing!r}, which lies beside "
                             f"it in {str(near.parent)!r} but is not on the Python path (the spec's folder is); add "
                             "that folder to PYTHONPATH, or import it by its path from the spec's folder")
        if module_part.endswith(".py") or (e.name and e.name != module_part
                                           and not module_part.startswith(e.name + ".")):
            return SpecError(field, f"importing {shown!r} failed: it imports {e.name!r}, which is not "
                             f"installed in the Python tunesmith runs in ({sys.prefix}); install it there")
        nearby = (_nearby_file(Path(spec_dir) / f"{module_part}.py", module=True)
                  if spec_dir and "." not in module_part else "")
        return SpecError(field, f"cannot import {module_part!r}: {e}{where}{nearby}")
    return SpecError(field, import_failure(module_part, e))


def _nearby_file(missing: Path, module: bool = False) -> str:
    """``; did you mean 'train.py'?`` (``'train'`` for a ``module``) for a misspelt name, from the ``.py`` files in
    the folder it names."""
    close = nearby_file(missing, (".py",), stem=module)
    return f"; did you mean {close!r}?" if close else ""


def _check_call(fn: Callable[..., Any], name: str) -> None:
    """``fn`` accepts ``(config, trial)``: an Optuna-style ``objective(trial)`` failed every trial with a TypeError
    pointing into tunesmith, after `validate` had passed it."""
    try:
        signature = inspect.signature(fn)
        # what is called: a functools.wraps decorator's own signature (it may supply arguments to the one inside)
        outer = inspect.signature(fn, follow_wrapped=False)
    except (TypeError, ValueError):  # a builtin or extension callable: nothing to read
        return
    if not any(_binds(candidate) for candidate in (outer, signature)):
        raise SpecError("trial.function", f"{name}{signature} cannot be called as {name}(config, trial), which is how "
                        f"tunesmith calls it: define def {name}(config, trial) and read the parameters from config "
                        "(config['x']), not trial.suggest_*")


def _binds(signature: inspect.Signature) -> bool:
    try:
        signature.bind(None, None)
    except TypeError:
        return False
    return True


def resolve_function(ref: str, base_dir: str | None) -> Callable[..., Any]:
    """The callable named by ``ref``; ``base_dir`` (the spec's folder) is importable while it is imported, and
    taken off the path after (a trial has it there again while it runs: evaluation.attempt).

    Raises:
        SpecError: at ``trial.function``, saying what could not be found and where it was looked for.
    """
    key = (ref, base_dir)
    module_part = _module_part(ref, base_dir)
    digest = _digest(_origin(module_part, base_dir)) if module_part.endswith(".py") else None
    cached = _cache.get(key)
    if cached is not None and cached[0] == digest:
        return cached[1]
    with folder_importable(base_dir):
        function = _function_named(ref, base_dir)
    _cache[key] = (digest, function)
    return function


def _file_in_project(ref: str) -> str:
    """The file, relative to the spec's folder, that holds ``ref``'s module where it lives beside the spec."""
    module_part = ref.rpartition(":")[0]
    if module_part.endswith(".py"):
        return Path(module_part).name if Path(module_part).is_absolute() else module_part
    return module_part.replace(".", "/") + ".py"


def _digest(path: Path | None) -> str | None:
    """The digest of the trial-code file at ``path``; None where it cannot be read (found missing on import)."""
    try:
        return file_digest(path) if path is not None else None
    except OSError:
        return None


def _function_named(ref: str, base_dir: str | None) -> Callable[..., Any]:
    attr_path = ref.rpartition(":")[2]
    gone = spec_folder_gone(base_dir, _file_in_project(ref))  # (a recorded spec's, whose project moved)
    where = (f" (searched the Python path; {gone})" if gone else
             f" (searched the spec's folder {base_dir} and the Python path)" if base_dir else "")
    module_part = _module_part(ref, base_dir)
    origin = _origin(module_part, base_dir)
    module = _running_script(origin) if origin is not None else None
    try:
        if module is not None:
            pass
        elif module_part.endswith(".py"):
            assert origin is not None
            if not origin.is_file():
                raise SpecError("trial.function", f"file {str(origin)!r} does not exist"
                                + (f": {gone}" if gone else _nearby_file(origin)))
            module = _module_from_file(origin, module_part, "trial.function")
        else:
            with _importing_trial_code(module_part):
                module = importlib.import_module(module_part)
    except SpecError:
        raise
    # the user's module raised (or exited) while importing, or is not there; tunesmith's own error it met too (a
    # task's pipeline class passes that on: module_beside_spec)
    except (Exception, SystemExit) as e:
        raise _import_failure(e, module_part, where, origin, base_dir) from None
    obj: Any = module
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n, None))]
            close = closest(part, names)
            hint = f"; did you mean {close!r}?" if close else (f"; it has {', '.join(names[:8])}" if names else "")
            shown = Path(module_part).stem if module_part.endswith(".py") else module_part
            raise SpecError("trial.function", f"{shown!r} has no function {part!r}{hint}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise SpecError("trial.function", f"{ref!r} is not callable")
    _check_call(obj, attr_path.rpartition(".")[2])
    return obj
