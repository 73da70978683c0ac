"""The working folder of an inline function trial: the spec's folder, as a worker process's trial has it
(``executor.worker``), and the caller's own given back when the trial ends, however it ends.

The README promises function trials the spec's folder as their working directory. Inline trials ran in whatever
folder the process was in: a notebook that had moved on (``os.chdir``) resumed an experiment reading another
folder's data, silently, and a YAML spec run from elsewhere failed every trial on its relative paths.

The working folder is the process's, not a thread's. So while any inline trial runs, the folder is held: trials of
other threads in the same folder share it (two TunedSearchCV fits under joblib's threading backend), and one in
another folder waits until the trials holding it have ended, instead of running in the folder the other entered
last. A run nested in a trial, in the same thread (a TunedSearchCV fit inside an objective), enters its own
folder at once, without waiting (two threads doing so would wait on each other), and gives the outer trial's
back. When the last trial ends, the folder the process was in before the first one comes back.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_turns = threading.Condition()
_held: dict[int, list[str]] = {}  # thread -> the folders of the inline trials it runs, innermost last
_before: list[str | None] = [None]  # the process's folder before the first of them (None: it had been deleted)


class FolderUnusable(OSError):
    """The spec's folder cannot be entered (deleted, moved, no permission): the trial fails saying so."""


@contextmanager
def in_spec_folder(folder: str | None) -> Iterator[None]:
    """Run the body in ``folder`` (None: where the process is), then go back.

    Raises:
        FolderUnusable: ``folder`` cannot be entered; nothing was changed.
    """
    if folder is None:
        yield
        return
    me = threading.get_ident()
    with _turns:
        # a thread holding a folder already (a run nested in its trial) never waits: two such threads, each
        # waiting for the other to leave, would wait for ever; the nested run enters its folder at once
        _turns.wait_for(lambda: me in _held or all(stack[-1] == folder for thread, stack in _held.items()
                                                   if thread != me))
        first = not _held
        if first:
            _before[0] = _current()
        try:
            os.chdir(folder)
        except OSError as e:
            raise FolderUnusable(e.errno, e.strerror, folder) from None
        _held.setdefault(me, []).append(folder)
    try:
        yield
    finally:
        with _turns:
            stack = _held[me]
            stack.pop()
            if not stack:
                del _held[me]
            # the outer trial's folder (a nested run's), another thread's (the same one), else the caller's
            back = stack[-1] if stack else next((s[-1] for s in _held.values()), _before[0])
            if back is not None:
                try:
                    os.chdir(back)
                except OSError:  # deleted meanwhile: stay where the trial was
                    pass
            _turns.notify_all()


def _current() -> str | None:
    try:
        return os.getcwd()
    except OSError:  # the process's folder was deleted under it: nowhere to come back to
        return None
