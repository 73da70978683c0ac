"""A spec's folder on Python's import path (``sys.path``) for a while, and off it after.

Trial code and a task's pipeline classes may live beside the spec (``train:objective`` for ``train.py``,
``mysteps.Clip``). The folder is put on the path while that code is imported, while a trial runs (a function may
import its helpers when called) and while a task's pipeline is fit outside a trial (the holdout refit), and taken
off after. Left there for good, an in-process caller (the Python API, ``cli.main`` called in-process, `tunesmith
validate A B`) kept one spec's folder ahead of the next spec's modules.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar

# The folders put on the path here, each with the number of blocks holding it: nested blocks (a trial's import
# inside its attempt) and blocks in other threads (two runs of one folder through the Python API) share it, and the
# folder leaves with the last of them, not the first.
_held: dict[str, int] = {}
_lock = threading.Lock()
# The folders made importable inside a :func:`folders_noted` block, in this thread of control.
_noted: ContextVar[set[str] | None] = ContextVar("tunesmith_folders_made_importable", default=None)


@contextmanager
def folder_importable(path: str | os.PathLike[str] | None) -> Iterator[None]:
    """The folder ``path`` importable inside the block: put first on ``sys.path`` unless it is on it already, and
    taken off when the last block holding it ends. A folder that was on the path before (``PYTHONPATH=.``,
    ``python -m``) is the caller's and stays. ``None`` or ``""``: nothing to do."""
    folder = os.fspath(path) if path else None
    if not folder:
        yield
        return
    if (noted := _noted.get()) is not None:
        noted.add(folder)
    with _lock:
        held = folder in _held or folder not in sys.path
        if held:
            if folder not in _held:
                sys.path.insert(0, folder)
            _held[folder] = _held.get(folder, 0) + 1
    try:
        yield
    finally:
        if held:
            with _lock:
                _held[folder] -= 1
                if not _held[folder]:
                    del _held[folder]
                    with suppress(ValueError):  # the code run in the block took it off itself
                        sys.path.remove(folder)


@contextmanager
def folders_noted() -> Iterator[set[str]]:
    """The set of folders :func:`folder_importable` makes importable inside the block, in this thread of control,
    filled as it goes: where a check imported code from (`tunesmith validate` unloads it before the next spec)."""
    noted: set[str] = set()
    token = _noted.set(noted)
    try:
        yield noted
    finally:
        _noted.reset(token)


def import_failure(module: str, error: BaseException) -> str:
    """What importing the user's ``module`` (trial code, a task's pipeline class) raised, said as its field's error:
    an exception by its kind and words (a SyntaxError's own words name the file and line); a ``sys.exit()`` by the
    call and its fix, since left alone it ended tunesmith itself (`tunesmith validate A B` at A, B never checked)."""
    if isinstance(error, SystemExit):
        return (f"importing {module!r} called sys.exit({error.code!r}) at its top level; code that ends the program "
                "belongs under `if __name__ == \"__main__\":`")
    return f"importing {module!r} raised {type(error).__name__}: {error}"
