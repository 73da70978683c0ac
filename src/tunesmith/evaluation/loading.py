"""Resolve a trial function reference (``module:function`` or ``/path/file.py:function``)."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from tunesmith.digests import file_digest
from tunesmith.errors import SpecError
from tunesmith.import_path import folder_importable, import_failure
from tunesmith.moved_project import spec_folder_gone
from tunesmith.suggestions import closest, nearby_file

# (reference, spec folder) -> the function found, with the digest of the file it was read from (None: a module
# imported by name, which Python keeps as first imported). Checked on each look-up (a trial's), so that a file
# edited since (a notebook's second run) is read again; a digest, not mtime and size: an edit that keeps the size
# within one tick of the kernel's file clock (a few ms) keeps both.
_cache: dict[tuple[str, str | None], tuple[str | None, Callable[..., Any]]] = {}
# Trial-code module (by its name in sys.modules) -> the digest of the file it was executed from.
_executed_from: dict[str, str | None] = {}
# The trial code this thread of control is importing right now (importing runs a file's top-level code). A
# context variable, not a global: another thread's run must not be refused while one imports.
_importing: ContextVar[tuple[str, ...]] = ContextVar("tunesmith_importing_trial_code", default=())


@contextmanager
def _importing_trial_code(what: str) -> Iterator[None]:
    token = _importing.set((*_importing.get(), what))
    try:
        yield
    finally:
        _importing.reset(token)


def refuse_a_run_started_by_an_import() -> None:
    """Raise when called while trial code is being imported: that code starts an experiment at its top level,
    so every worker that imports it to find the function would start the experiment again.

    Raises:
        SpecError: at ``trial.function``, naming the file and the fix (the ``__main__`` guard).
    """
    importing = _importing.get()
    if importing:
        raise SpecError("trial.function", f"{importing[-1]!r} starts an experiment when it is imported (as each "
                        "trial's worker imports it to find the function); put that code under "
                        "`if __name__ == \"__main__\":`")


def check_trial_function(ref: str, base_dir: str | None, imported_by_workers: bool,
                         given: Callable[..., Any] | None = None) -> None:
    """Find the trial function before anything is recorded, as a trial will; ``given``: the function itself, handed
    over in this process (an interactive one, which runs inline), whose call is checked instead.

    When the function lives in the script this process runs, this process uses it as it is; but workers (the
    process executor, Ray) import that script to find it, which runs its top level again. With
    ``imported_by_workers`` the script is then also imported here, afresh, as a worker will: a script that starts
    its experiment at the top level (the README's Python example without its ``__main__`` guard) is refused by
    :func:`refuse_a_run_started_by_an_import`, and one that cannot be imported on its own (relative imports of a
    ``python -m`` run) says why, instead of failing every trial.

    Raises:
        SpecError: at ``trial.function``.
    """
    if given is not None:
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
    local = Path(base_dir or ".") / (module_part.replace(".", "/") + ".py")
    if base_dir and not module_part.endswith(".py") and "." not in module_part and local.is_file():
        return str(local)
    return module_part


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
    return "tunesmith_user_" + path.stem + "_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]


def _exec_file(path: Path, name: str, shown: str) -> Any:
    """Import the file at ``path`` as module ``name`` (its top-level code runs, under the import guard)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    _executed_from[name] = _digest(path)  # before it runs: an edit made meanwhile is read next time
    sys.modules[name] = module
    try:
        with _importing_trial_code(str(path)):
            spec.loader.exec_module(module)
    except BaseException as e:
        if sys.modules.get(name) is module:
            del sys.modules[name]   # a later look imports it afresh rather than finding half a module
        if isinstance(e, SpecError) or not isinstance(e, Exception | SystemExit):  # a Ctrl-C stays one
            raise
        raise _import_failure(e, shown, near=path) from None
    return module


def _import_failure(e: BaseException, module_part: str, where: str = "", near: Path | None = None,
                    spec_dir: str | None = None) -> SpecError:
    """What importing the trial code ``module_part`` (the file ``near``, where known) raised, said for the user: a
    package it imports that this Python lacks is named as such (not as the file not being found), and a module
    beside the file that is not on the path as that (not as a package to install)."""
    if isinstance(e, ModuleNotFoundError):
        shown = Path(module_part).stem if module_part.endswith(".py") else module_part
        missing = (e.name or "").partition(".")[0]
        if near is not None and missing and ((near.parent / f"{missing}.py").is_file()
                                             or (near.parent / missing).is_dir()):
            return SpecError("trial.function", f"importing {shown!r} failed: it imports {missing!r}, which lies beside "
                             f"it in {str(near.parent)!r} but is not on the Python path (the spec's folder is); add "
                             "that folder to PYTHONPATH, or import it by its path from the spec's folder")
        if module_part.endswith(".py") or (e.name and e.name != module_part
                                           and not module_part.startswith(e.name + ".")):
            return SpecError("trial.function", f"importing {shown!r} failed: it imports {e.name!r}, which is not "
                             f"installed in the Python tunesmith runs in ({sys.prefix}); install it there")
        nearby = (_nearby_file(Path(spec_dir) / f"{module_part}.py", module=True)
                  if spec_dir and "." not in module_part else "")
        return SpecError("trial.function", f"cannot import {module_part!r}: {e}{where}{nearby}")
    return SpecError("trial.function", import_failure(module_part, e))


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
            name = _file_module_name(origin)
            module = sys.modules.get(name)
            if module is None or _executed_from.get(name) != _digest(origin):  # edited since it was executed
                module = _exec_file(origin, name, module_part)
        else:
            with _importing_trial_code(module_part):
                module = importlib.import_module(module_part)
    except SpecError:
        raise
    except (Exception, SystemExit) as e:  # the user's module raised (or exited) while importing, or is not there
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
