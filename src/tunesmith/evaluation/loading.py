"""Resolve a trial function reference (``module:function`` or ``/path/file.py:function``)."""

from __future__ import annotations

import ast
import difflib
import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tunesmith.errors import SpecError

_cache: dict[tuple[str, str | None], Callable[..., Any]] = {}
# The user files being imported right now (a trial function's file runs its top-level code when imported).
_importing: list[Path] = []


def refuse_a_run_started_by_an_import() -> None:
    """Raise when called while a trial function's file is being imported: that file starts an experiment at its
    top level, so every worker that loads the function would start it again.

    Raises:
        SpecError: at ``trial.function``, naming the file and the fix (the ``__main__`` guard).
    """
    if _importing:
        raise SpecError("trial.function", f"{str(_importing[-1])!r} starts an experiment when it is imported (as "
                        "each trial's worker imports it to find the function); put that code under "
                        "`if __name__ == \"__main__\":`")


def refuse_an_unguarded_script(ref: str | None, base_dir: str | None) -> None:
    """Raise before anything is recorded when the trial function lives in the script this process runs and that
    script starts the experiment at its top level: each worker imports the script to find the function, which
    runs that top level again (the guard above then fails every trial). What Python's multiprocessing asks of a
    script too; the README's first Python example, saved as a file, met it.

    Raises:
        SpecError: at ``trial.function``, naming the line and the fix.
    """
    module_part = (ref or "").rpartition(":")[0]
    if not module_part.endswith(".py"):
        return
    path = Path(module_part) if Path(module_part).is_absolute() else Path(base_dir or ".") / module_part
    if not path.is_file() or _running_script(path) is None:
        return
    line = _unguarded_run_call(path.read_text(encoding="utf-8", errors="replace"))
    if line is not None:
        raise SpecError("trial.function", f"{path.name}, line {line}, starts the experiment at the script's top "
                        "level, and each trial's worker imports the script to find the function (running that "
                        "line again); put it under `if __name__ == \"__main__\":`, or use executor: {kind: inline}")


def _unguarded_run_call(source: str) -> int | None:
    """The line of a top-level ``tunesmith.run(...)`` / ``resume(...)`` call outside ``if __name__ == "__main__"``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    imported = {alias.asname or alias.name for node in tree.body if isinstance(node, ast.ImportFrom)
                and node.module == "tunesmith" for alias in node.names if alias.name in ("run", "resume")}

    def starts_a_run(call: ast.Call) -> bool:
        f = call.func
        return ((isinstance(f, ast.Attribute) and f.attr in ("run", "resume") and isinstance(f.value, ast.Name)
                 and f.value.id == "tunesmith") or (isinstance(f, ast.Name) and f.id in imported))

    def main_guard(node: ast.stmt) -> bool:
        return isinstance(node, ast.If) and "__name__" in ast.unparse(node.test) and "__main__" in ast.unparse(node.test)

    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) or main_guard(stmt):
            continue
        for node in ast.walk(stmt):
            if isinstance(node, ast.Call) and starts_a_run(node):
                return node.lineno
    return None


def _running_script(path: Path) -> Any:
    """The ``__main__`` module when ``path`` is the script this process runs: its function is used as it is,
    never imported a second time (which would run the script's top-level code again)."""
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    if main_file is not None and Path(main_file).resolve() == path.resolve():
        return main
    return None


def resolve_function(ref: str, base_dir: str | None) -> Callable[..., Any]:
    """The callable named by ``ref``; ``base_dir`` (the spec's folder) is importable.

    Raises:
        SpecError: at ``trial.function``, saying what could not be found and where it was looked for.
    """
    key = (ref, base_dir)
    if key in _cache:
        return _cache[key]
    module_part, _, attr_path = ref.rpartition(":")
    if base_dir and base_dir not in sys.path:
        sys.path.insert(0, base_dir)
    where = f" (searched the spec's folder {base_dir} and the Python path)" if base_dir else ""
    local = Path(base_dir or ".") / (module_part.replace(".", "/") + ".py")
    if base_dir and not module_part.endswith(".py") and "." not in module_part and local.is_file():
        # A module that lives in the spec's folder is loaded from that very file: two projects with an
        # `objectives.py` each (one notebook, one test session) must not share the first one imported.
        module_part = str(local)
    try:
        if module_part.endswith(".py"):
            path = Path(module_part) if Path(module_part).is_absolute() else Path(base_dir or ".") / module_part
            if not path.is_file():
                raise SpecError("trial.function", f"file {str(path)!r} does not exist")
            name = "tunesmith_user_" + path.stem + "_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
            module = _running_script(path) or sys.modules.get(name)
            if module is None:
                spec = importlib.util.spec_from_file_location(name, path)
                assert spec is not None and spec.loader is not None
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                _importing.append(path)
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[name]   # a later look imports it afresh rather than finding half a module
                    raise
                finally:
                    _importing.pop()
        else:
            module = importlib.import_module(module_part)
    except SpecError:
        raise
    except ModuleNotFoundError as e:
        raise SpecError("trial.function", f"cannot import {module_part!r}: {e}{where}") from None
    except Exception as e:  # the user's module raised while importing
        raise SpecError("trial.function", f"importing {module_part!r} raised {type(e).__name__}: {e}") from None
    obj: Any = module
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n, None))]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else (f"; it has {', '.join(names[:8])}" if names else "")
            shown = Path(module_part).stem if module_part.endswith(".py") else module_part
            raise SpecError("trial.function", f"{shown!r} has no function {part!r}{hint}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise SpecError("trial.function", f"{ref!r} is not callable")
    _cache[key] = obj
    return obj
