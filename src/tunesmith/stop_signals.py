"""The signals that stop a run: Ctrl-C (SIGINT), SIGTERM (a scheduler, `kill`) and SIGHUP (the terminal closed,
an ssh session ended without `nohup`), where the platform has it. Each records the run as interrupted (exit 130),
so `tunesmith resume` continues it; without a handler SIGHUP killed the coordinator and left the run `running`.
A command with no run to stop (`dashboard`) takes each as Ctrl-C (:func:`stop_signals_interrupt`): exit 130 too,
one code for a stop asked by signal, whatever the command. `cycle` and `watch` note one outside a tuning run
(:func:`stop_signals_deferred`) and stop once the step under way has ended, not in the middle of a promotion.

A signal ignored when tunesmith starts stays ignored: `nohup tunesmith run ... &` ignores SIGHUP so that the run
outlives the ssh session, and a shell starts `cmd &` with SIGINT ignored (Python itself leaves it so).

After SIGHUP the outputs that were a terminal and no longer are (it hung up) go to the null device: a write to a
terminal that hung up fails (EIO), and the progress display's next line would have stopped the run before it
recorded how it ended.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from tunesmith.events import RunListener

if TYPE_CHECKING:
    from tunesmith.runner import Runner

STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))  # Windows: no SIGHUP


def install_signal_handlers(runner: Runner, noted: StopRequest | None = None) -> None:
    """First stop signal: stop gracefully. Second: stop now (still leaving the store consistent), unless it is
    SIGHUP again: the shell and the kernel can each send one for the same hangup.

    ``noted``: the command's own request (:func:`stop_signals_deferred`, `cycle` and `watch`) is told the first
    signal too: one that lands in the run's tail (its shutdown grace, its holdout refit), after its loop ended,
    reached only a runner that no longer stops anything, and the cycle went on as if none came."""
    stopping = {"requested": False}
    terminals = [fd for fd in (1, 2) if os.isatty(fd)]  # asked now: a terminal that hung up no longer says it is one

    def handler(signum: int, _frame: object) -> None:
        hangup = signum == getattr(signal, "SIGHUP", None)
        name = signal.Signals(signum).name
        if noted is not None and noted.signal is None:
            noted.signal = name
        if not stopping["requested"]:
            stopping["requested"] = True
            runner.request_stop(f"interrupted by {name}")
        elif not hangup:
            runner.request_stop(f"interrupted by {name}", immediate=True)
            if runner.spec.executor.kind == "inline":
                raise KeyboardInterrupt
        if hangup:  # after the stop request, which a failure here must not lose
            _hung_up_to_null_device(terminals)

    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is signal.SIG_IGN:  # the launcher's choice (nohup, a background job)
            continue
        signal.signal(signum, handler)


def _hung_up_to_null_device(terminals: list[int]) -> None:
    """Point those of ``terminals`` that hung up at the null device, so what is written to them afterwards is
    dropped, not an error. A terminal still there (`kill -HUP` by hand) keeps the run's last lines."""
    hung_up = [fd for fd in terminals if not os.isatty(fd)]
    if not hung_up:
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            for fd in hung_up:
                os.dup2(null, fd)
        finally:
            os.close(null)
    except OSError:
        pass  # no descriptor left, say: a write to the dead terminal may then fail, but the stop is requested


@contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """While it lasts, SIGTERM and SIGHUP interrupt the main thread as Ctrl-C does (KeyboardInterrupt), for a
    command that has nothing to record as it stops: `dashboard` was killed by SIGTERM (exit 143, its socket never
    closed) where `run` exits 130 on the same signal. Signals ignored at start stay ignored (``nohup``)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    with handlers_restored():
        for signum in STOP_SIGNALS:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                signal.signal(signum, interrupt)
        yield


class StopRequest:
    """What :func:`stop_signals_deferred` noted: ``signal``, the name of the first stop signal (None: none yet);
    ``at_once``, set by the caller while nothing is half done (a wait), when a signal interrupts at once."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self.at_once = False


@contextmanager
def stop_signals_deferred() -> Iterator[StopRequest]:
    """While it lasts, a stop signal is noted (``request.signal``), not raised, so the step under way ends whole (a
    promotion between registering a version, moving its aliases and writing its audit event was cut in half); the
    caller stops at its next boundary. It interrupts at once (KeyboardInterrupt) while ``request.at_once`` is set, and
    when a signal was already noted (asked twice: stop now), unless both are SIGHUP (the shell and the kernel can
    each send one for the same hangup). A tuning run installs its own handlers meanwhile (restored after it).
    Signals ignored at start stay ignored (``nohup``)."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    terminals = [fd for fd in (1, 2) if os.isatty(fd)]

    def note(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if signum == getattr(signal, "SIGHUP", None):  # the report still to print must not fail on a dead terminal
            _hung_up_to_null_device(terminals)
        if request.at_once or (request.signal is not None and not name == request.signal == "SIGHUP"):
            raise KeyboardInterrupt  # (at once: ``signal`` stays None, the caller tells a wait from a step)
        request.signal = name

    with handlers_restored():
        for signum in STOP_SIGNALS:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                signal.signal(signum, note)
        yield request


@contextmanager
def handlers_restored() -> Iterator[None]:
    """The stop signals' handlers as they were before a run (whose runner's handlers must not outlive it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


class SetupInterrupt(RunListener):
    """A Ctrl-C noted while a Python API run sets up (:func:`ctrl_c_noted_until_the_run_starts`); hand
    :meth:`reaches` to the run as its ``on_runner``, and this to it as a listener."""

    def __init__(self) -> None:
        self.noted = False
        self.runner: Runner | None = None
        self.restore: Any = None  # puts Python's handler back: where one of this was installed

    def reaches(self, runner: Runner) -> None:
        self.runner = runner
        if self.noted:
            runner.request_stop()

    def run_started(self, *_args: Any, **_kwargs: Any) -> None:
        if self.restore is not None:
            self.restore()


@contextmanager
def ctrl_c_noted_until_the_run_starts() -> Iterator[SetupInterrupt]:
    """For the Python API, which installs no handler of its own: a Ctrl-C while its run sets up (the store's lease,
    the strategy's build and its imports, scipy's for bo: a second or two in a fresh notebook kernel) raised
    KeyboardInterrupt out of the call and left the experiment ``created``. It is noted instead, and stops the run as
    it starts: recorded as interrupted, the call returns it so, as it does for a Ctrl-C once trials run. From the
    run's start (``run_started``) Python's own handler is back, and a Ctrl-C stops an inline trial at once. A second
    Ctrl-C meanwhile interrupts at once. Only in the main thread, and only over Python's default handler (one a
    debugger or the application installed is left alone)."""
    interrupt = SetupInterrupt()
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield interrupt
        return

    def restore() -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        interrupt.restore = None

    def note(_signum: int, _frame: object) -> None:
        if interrupt.noted:  # asked twice: now
            restore()
            raise KeyboardInterrupt
        interrupt.noted = True
        if interrupt.runner is not None:
            interrupt.runner.request_stop()

    signal.signal(signal.SIGINT, note)
    interrupt.restore = restore
    try:
        yield interrupt
    finally:
        if interrupt.restore is not None:
            restore()
