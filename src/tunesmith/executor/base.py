"""The Executor protocol: run trial jobs somewhere, report what happens.

Call order: ``start()``; then repeatedly ``free_slots()`` / ``next_job_waits()`` / ``submit(job)`` and
``poll(timeout)``; ``prune(number)`` to ask a running trial to stop early (a scheduler's decision; the trial ends
PRUNED); ``stop(number, kind)`` to end one now; ``close(grace)`` once at the end. An executor may call
``report_hook(number, report)`` synchronously, as a report happens, instead of returning it from ``poll`` (the
inline executor must: its trial runs inside ``poll``, and a prune decision has to reach it before it returns). Every
submitted job produces exactly one ``AttemptEnded`` from ``poll``, and zero or more ``TrialReported`` before it. An
executor that accepts a job before it can begin it (the Ray executor's prefetch queues it behind a running trial; a
new Ray actor has to come up first) says so beforehand (``next_job_waits()``: the runner records the trial queued,
not running) and reports ``AttemptStarted`` when it begins: the attempt runs from then, not from its submission. The
others begin a job as it is submitted, say so, and never send one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tunesmith.evaluation.job import TrialJob
from tunesmith.records import FailureKind, Outcome, Report


@dataclass(frozen=True, slots=True)
class TrialReported:
    number: int
    report: Report


@dataclass(frozen=True, slots=True)
class AttemptStarted:
    """A submitted attempt began only now (``at``: the wall-clock time, as the coordinator's ``Clock.now()``)."""

    number: int
    attempt: int
    at: float


@dataclass(frozen=True, slots=True)
class AttemptEnded:
    number: int
    attempt: int
    outcome: Outcome


ExecutorEvent = TrialReported | AttemptStarted | AttemptEnded


class Executor(Protocol):
    def start(self) -> None:
        """Acquire resources (start workers). Called once before the first submit."""
        ...

    def free_slots(self) -> int:
        """How many more jobs can run right now."""
        ...

    def next_job_waits(self) -> bool:
        """Whether a job submitted now would wait before it begins (its ``AttemptStarted`` then says when it does).
        Asked after ``free_slots() > 0`` and before the ``submit`` it is about: nothing changes in between."""
        ...

    def submit(self, job: TrialJob) -> None:
        """Start ``job``; only called when ``free_slots() > 0``."""
        ...

    def poll(self, timeout: float) -> list[ExecutorEvent]:
        """Events since the last poll, waiting up to ``timeout`` seconds for the first one.

        Raises:
            TunesmithError: what stops the run (``ClusterLost``; ``WorkdirError``: a trial's folder refused its log,
                a full disk). That trial's attempt never ends (the runner's stop records it interrupted); events not
                returned yet come from ``close``.
        """
        ...

    def prune(self, number: int, step: int | None = None) -> None:
        """Ask running trial ``number`` to stop early (``trial.should_prune()`` turns True; a command gets SIGTERM);
        ``step``: the report the scheduler decided on, which the trial's log names (None: its last report)."""
        ...

    def stop(self, number: int, kind: FailureKind, reason: str | None = None) -> None:
        """End running trial ``number`` now; its AttemptEnded carries a failure of ``kind`` (and ``reason``)."""
        ...

    def close(self, grace: float) -> list[ExecutorEvent]:
        """Let running trials finish for up to ``grace`` seconds, stop the rest (INTERRUPTED), release everything.

        Returns the events of the trials that ended meanwhile.
        """
        ...
