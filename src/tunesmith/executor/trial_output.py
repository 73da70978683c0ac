"""Where an inline trial's output goes: the thread that runs it writes to its trial.log, every other thread to the
process's own streams; and a ``breakpoint()`` in it talks to the user, not to the log.

Why not ``contextlib.redirect_stdout``: it swaps ``sys.stdout`` for the whole process. Two inline runs in threads
(two TunedSearchCV fits under joblib's threading backend) each saved what the other had set: one run's output
went into the other's log, and the last to finish "restored" a log closed by then, so every later ``print`` in
the process raised. So while any inline trial runs, ``sys.stdout`` and ``sys.stderr`` are proxies, put in by the
first trial to start and taken out by the last to end, that write to the calling thread's trial log, or to the
stream that was there before for a thread running none (the notebook's own, the coordinator's heartbeat). Threads
that a trial starts itself run none: their output goes to the process's streams.

pdb writes its prompt to ``sys.stdout``: in a trial that was its log, while pdb read the real stdin, and the user
saw a hung run. While an inline trial runs, ``sys.breakpointhook`` opens pdb on the process's streams for the
trial's thread. A hook someone else set (an IDE's debugger) or ``PYTHONBREAKPOINT`` is obeyed as before.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any, TextIO

_lock = threading.Lock()  # guards _installed: trials in several threads start and end at once
_routes = threading.local()  # .logs: this thread's trial logs, innermost last; None there means the process's


def _thread_logs() -> list[TextIO | None]:
    logs: list[TextIO | None] | None = getattr(_routes, "logs", None)
    if logs is None:
        logs = _routes.logs = []
    return logs


def _thread_log() -> TextIO | None:
    """The log of the trial this thread runs; None for a thread running none, or in a debugger's session."""
    logs = _thread_logs()
    return logs[-1] if logs else None


class ThreadRoutedStream:
    """Stands for ``sys.stdout`` or ``sys.stderr``: writes to the calling thread's trial log, else to ``outside``
    (the stream that was there before). Whatever else is asked (``fileno``, ``encoding``, ``isatty``) is the
    chosen stream's.

    ``outside`` may be None: a process without the stream (pythonw, a daemon started with fd 1 closed), where
    ``print`` and ``warnings`` write nothing. Other threads' writes then go nowhere, as they would without the
    proxy (writing to None raised AttributeError in every thread that printed or warned while a trial ran).
    """

    def __init__(self, outside: TextIO | None) -> None:
        self.outside = outside

    def _stream(self) -> TextIO | None:
        log = _thread_log()
        return self.outside if log is None else log

    def write(self, text: str) -> int:
        stream = self._stream()
        return len(text) if stream is None else stream.write(text)

    def writelines(self, lines: Iterable[str]) -> None:
        stream = self._stream()
        if stream is not None:
            stream.writelines(lines)

    def flush(self) -> None:
        stream = self._stream()
        if stream is not None:
            stream.flush()

    def __getattr__(self, name: str) -> Any:
        if name == "outside":  # not set yet (a copy being made): no recursion through _stream
            raise AttributeError(name)
        return getattr(self._stream(), name)


def current_stream(stream: TextIO) -> TextIO | None:
    """What ``stream`` (``sys.stdout``, say) writes to from this thread now: for a stream kept to write to later
    from a trial's thread (a search's verbose lines), which a proxy would send to that trial's log. None where the
    process has no such stream."""
    return stream._stream() if isinstance(stream, ThreadRoutedStream) else stream


def _breakpoint(*args: Any, **kwargs: Any) -> None:
    """``sys.breakpointhook`` while inline trials run (put in only over the default hook, PYTHONBREAKPOINT unset):
    what the default hook does, ``pdb.set_trace()``, with the pdb sessions of a trial's thread on the process's
    streams. Another hook calling the hook it stands in for would stop the debugger in this function's frame, not
    in the one that called ``breakpoint()``."""
    if os.environ.get("PYTHONBREAKPOINT"):  # set since the hook went in: obeyed, though a frame deeper
        return sys.__breakpointhook__(*args, **kwargs)
    return _debug(sys._getframe(1), *args, in_trial=_thread_log() is not None, **kwargs)


def _debug(frame: FrameType, *, in_trial: bool, header: str | None = None, **kwargs: Any) -> None:
    """``pdb.set_trace(header=...)`` called in ``frame``; in a trial's thread, a pdb whose sessions talk on the
    process's streams (the trial's own output around them still goes to its log)."""
    import pdb  # here: only a breakpoint needs it, and it loads a dozen modules

    class TrialPdb(pdb.Pdb):
        def interaction(self, frame: FrameType | None, traceback: TracebackType | None) -> None:
            with _process_streams():
                super().interaction(frame, traceback)

    # nosigint: pdb's own Ctrl-C handler, set at `continue`, would take Ctrl-C from the run (where it stops it)
    debugger = TrialPdb(nosigint=True) if in_trial else pdb.Pdb()
    if header is not None:
        with _process_streams():
            debugger.message(header)
    debugger.set_trace(frame, **kwargs)


@contextmanager
def _process_streams() -> Iterator[None]:
    """This thread writes to the process's streams in the block, even in a trial."""
    logs = _thread_logs()
    logs.append(None)
    try:
        yield
    finally:
        logs.pop()


class _Installed:
    """The proxies and the hook in place while inline trials run, and what was there before them."""

    def __init__(self) -> None:
        self.users = 0
        self.stdout = ThreadRoutedStream(sys.stdout)
        self.stderr = ThreadRoutedStream(sys.stderr)
        sys.stdout, sys.stderr = self.stdout, self.stderr  # type: ignore[assignment]
        # a hook someone set (an IDE's debugger) or PYTHONBREAKPOINT is theirs, and left alone
        self.hook = sys.breakpointhook is sys.__breakpointhook__ and not os.environ.get("PYTHONBREAKPOINT")
        if self.hook:
            sys.breakpointhook = _breakpoint

    def remove(self) -> None:
        """Put back what was there before, each only where it is still ours (a notebook kernel may have set its
        own streams meanwhile)."""
        if sys.stdout is self.stdout:
            sys.stdout = self.stdout.outside
        if sys.stderr is self.stderr:
            sys.stderr = self.stderr.outside
        if self.hook and sys.breakpointhook is _breakpoint:
            sys.breakpointhook = sys.__breakpointhook__


_installed: _Installed | None = None


@contextmanager
def trial_output_to(log: TextIO) -> Iterator[None]:
    """This thread's output goes to ``log`` in the block, and ``breakpoint()`` opens pdb on the process's streams."""
    global _installed
    with _lock:
        installed = _installed = _installed or _Installed()
        installed.users += 1
    logs = _thread_logs()
    logs.append(log)
    try:
        yield
    finally:
        logs.pop()
        with _lock:
            installed.users -= 1
            if installed.users == 0:
                installed.remove()
                _installed = None
