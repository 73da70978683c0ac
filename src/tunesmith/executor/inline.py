"""The inline executor: trials run in the coordinator's own process, one at a time. For debugging.

No isolation: a crash in the trial takes the run down, and timeouts and memory limits are not enforced
(the runner warns when the spec sets them). While a trial runs it holds the coordinator's loop, which renews the
lease and beats for running trials between polls; a thread of the executor's own does that meanwhile, or a trial
longer than the staleness limit would look abandoned to a joining coordinator, which would re-run it. A beat
that fails is told after the trial, from the loop's thread, once its result is queued; a store still down then
stops the run when the runner saves that result or beats next.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tunesmith.cost import priced

from tunesmith.evaluation.attempt import run_attempt
from tunesmith.evaluation.job import TrialJob
from tunesmith.executor.base import AttemptEnded, ExecutorEvent, TrialReported
from tunesmith.executor.processes import own_cpu_seconds, own_peak_memory, reset_own_peak_memory
from tunesmith.records import Failure, FailureKind, Outcome, Report

@dataclass
class _Beats:
    """The keep-alive calls that failed during one trial: written by the keep-alive thread, read after it ended."""

    failed: int = 0
    last: Exception | None = None


class InlineExecutor:
    """Args:
        report_hook: called with (number, report) as each report happens, so a prune decision can reach the
            running trial; without it reports come back from ``poll`` after the trial.
        keep_alive: called every ``keep_alive_every`` seconds from another thread while a trial runs (the
            runner's lease renewal and heartbeat); a call that raises is left for the next one.
        warn: shows a line to whoever watches the run (the listener's ``warning``): after a trial whose keep-alive
            failed (never raised: the trial's result is handed over first; a store still down stops the run when
            the runner saves it).
        function: the trial function itself, called for every job: one handed over interactively (a notebook's,
            a lambda), which its reference cannot import; None finds each job's by its reference.
    """

    def __init__(self, report_hook: Callable[[int, Report], None] | None = None,
                 keep_alive: Callable[[], None] | None = None, keep_alive_every: float = 20.0,
                 warn: Callable[[str], None] | None = None, function: Callable[..., Any] | None = None) -> None:
        self.report_hook = report_hook
        self.function = function
        self.keep_alive = keep_alive
        self.keep_alive_every = keep_alive_every
        self.warn = warn
        self._events: deque[ExecutorEvent] = deque()
        self._pending: deque[TrialJob] = deque()
        self._prune: set[int] = set()

    def start(self) -> None:
        pass

    def free_slots(self) -> int:
        return 0 if self._pending else 1

    def next_job_waits(self) -> bool:
        return False  # it runs in the next poll, the coordinator's very next step: recorded running from submission

    def submit(self, job: TrialJob) -> None:
        self._pending.append(job)

    def poll(self, timeout: float) -> list[ExecutorEvent]:
        if self._pending:
            job = self._pending.popleft()
            if job.cost is not None:
                reset_own_peak_memory()
            cpu_before = own_cpu_seconds()
            with open(job.log_path, "a", encoding="utf-8") as log, \
                    contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), self._kept_alive() as beats:
                outcome = run_attempt(job, log, lambda r: self._on_report(job.number, r),
                                      lambda: job.number in self._prune, self.function)
            self._tell_failed_beats(job.number, beats)  # once the trial's output no longer goes to its log
            self._prune.discard(job.number)
            outcome = priced(job, outcome, own_cpu_seconds() - cpu_before, own_peak_memory())
            self._events.append(AttemptEnded(job.number, job.attempt, outcome))
        events = list(self._events)
        self._events.clear()
        return events

    @contextlib.contextmanager
    def _kept_alive(self) -> Iterator[_Beats]:
        """Call ``keep_alive`` every ``keep_alive_every`` seconds until the block ends (and not after it); the
        failed calls are counted in what it yields, to be read once the block has ended."""
        beats = _Beats()
        keep_alive = self.keep_alive
        if keep_alive is None:
            yield beats
            return
        ended = threading.Event()

        def beat() -> None:
            while not ended.wait(self.keep_alive_every):
                try:
                    keep_alive()
                except Exception as e:  # noqa: BLE001 - told after the trial; a dead thread would beat no more
                    beats.failed, beats.last = beats.failed + 1, e

        beater = threading.Thread(target=beat, name="tunesmith-inline-keep-alive", daemon=True)
        beater.start()
        try:
            yield beats
        finally:
            ended.set()
            beater.join()

    def _tell_failed_beats(self, number: int, beats: _Beats) -> None:
        last = beats.last
        if last is None:
            return
        # Told, never raised: the trial has ended and its result must reach the runner first. If the store is still
        # down, saving that result and the loop's own keep-alive raise, and stop the run as they would anyway.
        if self.warn is not None:
            self.warn(f"trial {number}: {beats.failed} keep-alive beat(s) failed while it ran inline (last: "
                      f"{type(last).__name__}: {last}); a trial not beaten for three of them looks abandoned to a "
                      "joining coordinator")

    def _on_report(self, number: int, report: Report) -> None:
        if self.report_hook is not None:
            self.report_hook(number, report)
        else:
            self._events.append(TrialReported(number, report))

    def prune(self, number: int) -> None:
        self._prune.add(number)

    def stop(self, number: int, kind: FailureKind, reason: str | None = None) -> None:
        for job in list(self._pending):
            if job.number == number:
                self._pending.remove(job)
                stopped = Outcome(failure=Failure(kind, reason or "stopped"))
                self._events.append(AttemptEnded(number, job.attempt, stopped))

    def close(self, grace: float) -> list[ExecutorEvent]:
        for job in list(self._pending):
            self.stop(job.number, FailureKind.INTERRUPTED)
        return self.poll(0)

