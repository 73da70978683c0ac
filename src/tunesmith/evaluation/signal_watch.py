"""Whether a KeyboardInterrupt in a trial came from a signal or from the trial itself.

Python raises KeyboardInterrupt for SIGINT (its default handler: Ctrl-C, `kill -INT`), and tunesmith's stop
handlers raise it inside an inline trial at a second Ctrl-C, SIGTERM or SIGHUP: those stop the run, or end the
worker as the signal's. A trial may also raise KeyboardInterrupt itself (a library giving up, a `raise` left in):
that is the trial's exception and fails the trial alone. Caught, the two look the same, so while a trial runs each
stop signal with a Python handler is watched: its handler is wrapped to note the signal, then does what it did.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from tunesmith.stop_signals import STOP_SIGNALS

_Handler = Callable[[int, FrameType | None], Any]


@dataclass
class SignalsSeen:
    """What a watch saw: ``watched`` is false where signals could not be watched (a thread other than the main
    one), and then a KeyboardInterrupt must be taken for a signal's, as it was before there was a watch."""

    watched: bool = False
    arrived: list[str] = field(default_factory=list)

    def interrupt_is_theirs(self) -> bool:
        """Whether a KeyboardInterrupt raised in the watch is the signals' (or may be: not watched), not the
        trial's own."""
        return not self.watched or bool(self.arrived)


@contextmanager
def signals_watched() -> Iterator[SignalsSeen]:
    """Note every stop signal that arrives in the block; each still does what its handler did."""
    seen = SignalsSeen()
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield seen
        return
    wrapped: dict[signal.Signals, tuple[_Handler, _Handler]] = {}  # signal: (its handler, the one noting it)
    try:
        for signum in STOP_SIGNALS:
            handler = signal.getsignal(signum)
            if not callable(handler):  # SIG_DFL, SIG_IGN: no KeyboardInterrupt comes of it
                continue

            def noting(number: int, frame: FrameType | None, handler: _Handler = handler) -> Any:
                seen.arrived.append(signal.Signals(number).name)
                return handler(number, frame)

            signal.signal(signum, noting)
            wrapped[signum] = (handler, noting)
        seen.watched = True
    except (ValueError, OSError):  # no handlers may be set here (an embedded interpreter): not watched
        pass
    try:
        yield seen
    finally:
        for watched, (before, ours) in wrapped.items():
            if signal.getsignal(watched) is ours:  # a handler the trial set for itself stays
                signal.signal(watched, before)
