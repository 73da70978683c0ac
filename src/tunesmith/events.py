"""What the runner tells its listeners: the progress display, JSON logs, metrics, MLflow tracking, the audit trail.

Listeners observe; they never change the run. Every hook has a no-op default, so a listener implements only
what it needs. :class:`Listeners` fans a hook out and keeps an observer that fails (a closed pipe, a terminal that
went away, a bug) from stopping or abandoning the run: see there.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from tunesmith.records import ExperimentRecord, Failure, Lineage, TrialRecord
from tunesmith.terminal_text import visible_controls


class RunListener:
    """Base class with no-op hooks. Call order: run_started, then trial_* in any order, then run_finished.

    ``records_the_run``: True for a listener that writes part of the run's record to the store (the audit trail).
    Its failure is the store's and stops the run like any store failure; every other listener only watches.
    """

    records_the_run = False

    def run_started(self, experiment: ExperimentRecord, history: list[TrialRecord], resumed: bool,
                    total_trials: int | None) -> None:
        pass

    def trial_started(self, trial: TrialRecord) -> None:
        pass

    def trial_queued(self, trial: TrialRecord) -> None:
        """The trial's next attempt went to an executor that holds it until it can begin (behind a running trial
        on Ray, or until its actor is up): recorded ``queued``; ``trial_started`` follows as it begins."""

    def trial_exploited(self, trial: TrialRecord, lineage: Lineage) -> None:
        """A scheduler (PBT) started ``trial`` from another trial's checkpoint; ``trial_started`` follows."""

    def warning(self, message: str) -> None:
        """Something the user should know that does not stop the run (the data changed since the last run)."""

    def trial_retrying(self, trial: TrialRecord, failure: Failure, delay_s: float) -> None:
        pass

    def trial_finished(self, trial: TrialRecord, best: TrialRecord | None) -> None:
        pass

    def run_stopping(self, reason: str) -> None:
        pass

    def promotion_decided(self, experiment: str, outcome: str) -> None:
        """A promotion gate decided (``outcome``: promoted, rejected, ...); for the metrics' promotion counts."""

    def run_finished(self, experiment: ExperimentRecord, trials: list[TrialRecord], stop_reason: str) -> None:
        pass

    def warn_through(self, warn: Callable[[str], None]) -> None:
        """Told by each :class:`Listeners` that takes this listener in, the outermost (the one the runner calls)
        last. A listener with something to say from inside a hook (a file it cannot write) says it with ``warn``:
        it reaches every listener still watching, whichever shows warnings, as the runner's own warnings do."""

    def stopped_watching(self) -> None:
        """One of this listener's hooks raised and :class:`Listeners` dropped it: no hook comes after this one.
        Release what it holds (the progress display's live bar, which redirects stdout and hides the cursor)."""


class Listeners(RunListener):
    """Fan a hook out to several listeners, each in turn; a watching listener that fails does not reach the run.

    A listener whose hook raises (an ``Exception``, or the ``SystemExit`` Rich raises on a broken pipe; never a
    ``KeyboardInterrupt``) is told ``stopped_watching``, is reported once, as a warning naming it and the error, and is
    not called again: the run goes on, and records how it ended, without it. It is dropped rather than retried because
    the fan-out cannot tell a transient error from a lasting one (a closed pipe or a terminal that went away fails every
    later write), and a listener that failed halfway through a hook has missed events, so what it showed later would be
    wrong. A listener that can ride out transient errors handles them itself, as MLflow tracking does (it records
    ``tracking_failed`` and never raises from a hook). A listener with ``records_the_run`` (the audit trail) is not
    isolated: its error propagates to the runner.

    Every warning (the runner's, a listener's through ``warn_through``, this report) goes to the listeners that
    show warnings (implement ``warning``); when none does, it goes to stderr: ``--quiet`` or a library call
    without a display silences the progress, not what the user should know, and a progress display or JSON log
    that failed leaves its warnings there. Nested fan-outs are flattened, so one fan-out sees every listener and
    tells the others of one that failed.
    """

    def __init__(self, *listeners: RunListener) -> None:
        flat: list[RunListener] = []
        for x in listeners:
            flat.extend(x.listeners if isinstance(x, Listeners) else (x,))
        self.listeners: tuple[RunListener, ...] = tuple(flat)
        self.dropped: list[RunListener] = []
        for x in self.listeners:
            x.warn_through(self.warning)

    def run_started(self, *a: Any, **k: Any) -> None:
        self._each("run_started", a, k)

    def warning(self, message: str) -> None:
        self._each("warning", (message,), {})
        if not any(x not in self.dropped and type(x).warning is not RunListener.warning for x in self.listeners):
            say_on_stderr(f"warning: {message}")  # nobody shows it, or whoever did failed on it (reported above)

    def trial_started(self, *a: Any, **k: Any) -> None:
        self._each("trial_started", a, k)

    def trial_queued(self, *a: Any, **k: Any) -> None:
        self._each("trial_queued", a, k)

    def trial_exploited(self, *a: Any, **k: Any) -> None:
        self._each("trial_exploited", a, k)

    def trial_retrying(self, *a: Any, **k: Any) -> None:
        self._each("trial_retrying", a, k)

    def trial_finished(self, *a: Any, **k: Any) -> None:
        self._each("trial_finished", a, k)

    def run_stopping(self, *a: Any, **k: Any) -> None:
        self._each("run_stopping", a, k)

    def run_finished(self, *a: Any, **k: Any) -> None:
        self._each("run_finished", a, k)

    def promotion_decided(self, *a: Any, **k: Any) -> None:
        self._each("promotion_decided", a, k)

    def _each(self, hook: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        for x in self.listeners:
            if x in self.dropped:
                continue
            try:
                getattr(x, hook)(*args, **kwargs)
            except (Exception, SystemExit) as e:
                if x.records_the_run:
                    raise
                self._drop(x, hook, e)

    def _drop(self, failed: RunListener, hook: str, error: BaseException) -> None:
        self.dropped.append(failed)
        try:
            failed.stopped_watching()  # first: a live display still holding stdout and stderr lets them go
        except (Exception, SystemExit):
            pass  # it failed once already; the report below is what matters
        cause = error.__context__ if isinstance(error, SystemExit) and error.__context__ is not None else error
        detail = f"{type(cause).__name__}: {cause}".splitlines()[0][:300]  # Rich exits on a broken pipe: say so
        # a listener failing on this warning is dropped (and reported) in turn
        self.warning(f"{type(failed).__name__} stopped watching this run: its {hook} raised {detail}; "
                     "the run goes on without it")


def say_on_stderr(line: str) -> None:
    """``line`` on the process's stderr, as it is when said (a notebook's, a redirected one), for a run with no
    display to show it (a warning here; a failed trial: :class:`tunesmith.console.FailureReport`), its control
    characters made visible: it may quote a trial's output (an escape sequence would clear the screen)."""
    try:
        print(visible_controls(line), file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass  # stderr is the pipe that closed, or is closed: nobody is left to tell
