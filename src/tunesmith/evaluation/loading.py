"""Resolve a trial function reference (``module:function`` or ``/path/file.py:function``)."""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tunesmith.errors import SpecError

_cache: dict[tuple[str, str | None], Callable[..., Any]] = {}
# The user's files being imported right now. A function looked up meanwhile means the file's top level runs an
# experiment (a script without `if __name__ == "__main__":`), which every worker's import would run again.
_importing: list[Path] = []


def _check_call(fn: Callable[..., Any], name: str) -> None:
    """``fn`` accepts ``(config, trial)``: an Optuna-style ``objective(trial)`` failed every trial with a TypeError
    pointing into tunesmith, after `validate` had passed it."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin or extension callable: nothing to read
        return
    try:
        signature.bind(None, None)
    except TypeError:
        raise SpecError("trial.function", f"{name}{signature} cannot be called as {name}(config, trial), which is how "
                        f"tunesmith calls it: define def {name}(config, trial) and read the parameters from config "
                        "(config['x']), not trial.suggest_*") from None


def resolve_function(ref: str, base_dir: str | None) -> Callable[..., Any]:
    """The callable named by ``ref``; ``base_dir`` (the spec's folder) is importable.

    Raises:
        SpecError: at ``trial.function``, saying what could not be found and where it was looked for.
    """
    if _importing:
        raise SpecError("trial.function", f"importing {str(_importing[-1])!r} runs an experiment: tunesmith imports "
                        "the file to find the trial function (here and in each worker process), so put the run under "
                        "`if __name__ == \"__main__\":`")
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
            module = sys.modules.get(name)
            if module is None:
                spec = importlib.util.spec_from_file_location(name, path)
                assert spec is not None and spec.loader is not None
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                _importing.append(path)
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[name]  # half a module: the next look-up imports the file afresh
                    raise
                finally:
                    _importing.pop()
        else:
            module = importlib.import_module(module_part)
    except SpecError:
        raise
    except ModuleNotFoundError as e:
        if module_part.endswith(".py") or (e.name and e.name != module_part
                                           and not module_part.startswith(e.name + ".")):
            shown = Path(module_part).stem if module_part.endswith(".py") else module_part
            raise SpecError("trial.function", f"importing {shown!r} failed: it imports {e.name!r}, which is not "
                            f"installed in the Python tunesmith runs in ({sys.prefix}); install it there") from None
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
    _check_call(obj, attr_path.rpartition(".")[2])
    _cache[key] = obj
    return obj
