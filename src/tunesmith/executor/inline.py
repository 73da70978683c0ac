"""The inline executor: trials run in the coordinator's own process, one at a time. For debugging.

No isolation: a crash in the trial takes the run down, and timeouts and memory limits are not enforced
(the runner warns when the spec sets them). A trial holds the coordinator's loop while it runs; the lease and the
trial's heartbeat are kept fresh meanwhile by the coordinator's own heartbeat thread (coordinators.Heartbeat),
which beats whatever holds up its loop.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from tunesmith.cost import priced

from tunesmith.evaluation.attempt import run_attempt
from tunesmith.evaluation.job import TrialJob
from tunesmith.evaluation.unwritable_folder import FolderUnwritable, refused_writes, workdir_error
from tunesmith.executor.base import AttemptEnded, ExecutorEvent, TrialReported
from tunesmith.executor.processes import own_cpu_seconds, own_peak_memory, reset_own_peak_memory
from tunesmith.executor.trial_output import trial_output_to
from tunesmith.executor.working_folder import FolderUnusable, in_spec_folder
from tunesmith.records import Failure, FailureKind, Outcome, Report


class InlineExecutor:
    """Args:
        report_hook: called with (number, report) as each report happens, so a prune decision can reach the
            running trial; without it reports come back from ``poll`` after the trial.
        function: the trial function itself, called for every job: one handed over interactively (a notebook's,
            a lambda), which its reference cannot import; None finds each job's by its reference.
    """

    def __init__(self, report_hook: Callable[[int, Report], None] | None = None,
                 function: Callable[..., Any] | None = None) -> None:
        self.report_hook = report_hook
        self.function = function
        self._events: deque[ExecutorEvent] = deque()
        self._pending: deque[TrialJob] = deque()
        self._prune: dict[int, int | None] = {}  # trials to stop, each with the step the stop was decided at

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
            # this thread's output only: another thread's inline run may share the process (trial_output)
            unwritable = None
            # a function trial in the spec's folder, as a worker's (a command has its own cwd; a task its base_dir)
            folder = job.base_dir if job.function is not None else None
            try:
                with refused_writes(job.log_path) as ending, open(job.log_path, "a", encoding="utf-8") as log, \
                        trial_output_to(log), in_spec_folder(folder):
                    outcome = ending.outcome = run_attempt(job, log, lambda r: self._on_report(job.number, r),
                                                           lambda: job.number in self._prune, self.function,
                                                           decided_step=lambda: self._prune.get(job.number))
            except FolderUnusable as e:
                outcome = Outcome(failure=Failure(FailureKind.EXCEPTION, f"the trial runs in the spec's folder "
                                                  f"{folder}, which cannot be entered: {e.strerror}"))
            except FolderUnwritable as e:  # (the trial stays running for the runner, whose stop interrupts it)
                if e.outcome is None:
                    raise workdir_error(job.number, job.workdir, e.reason) from None
                outcome, unwritable = e.outcome, workdir_error(job.number, job.workdir, e.reason)
            self._prune.pop(job.number, None)
            outcome = priced(job, outcome, own_cpu_seconds() - cpu_before, own_peak_memory())
            self._events.append(AttemptEnded(job.number, job.attempt, outcome))
            if unwritable is not None:  # its log cut short at its end: recorded by the stop, which polls (close())
                raise unwritable
        events = list(self._events)
        self._events.clear()
        return events

    def _on_report(self, number: int, report: Report) -> None:
        if self.report_hook is not None:
            self.report_hook(number, report)
        else:
            self._events.append(TrialReported(number, report))

    def prune(self, number: int, step: int | None = None) -> None:
        self._prune.setdefault(number, step)

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

