"""The Executor protocol: run trial jobs somewhere, report what happens.

Call order: ``start()``; then repeatedly ``free_slots()`` / ``submit(job)`` and ``poll(timeout)``; ``stop(number)``
to end one running trial (a scheduler's decision, or the user's); ``close(grace)`` once at the end. Every
submitted job produces exactly one ``AttemptEnded`` from ``poll``, and zero or more ``TrialReported`` before it.
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
class AttemptEnded:
    number: int
    attempt: int
    outcome: Outcome


ExecutorEvent = TrialReported | AttemptEnded


class Executor(Protocol):
    def start(self) -> None:
        """Acquire resources (start workers). Called once before the first submit."""
        ...

    def free_slots(self) -> int:
        """How many more jobs can run right now."""
        ...

    def submit(self, job: TrialJob) -> None:
        """Start ``job``; only called when ``free_slots() > 0``."""
        ...

    def poll(self, timeout: float) -> list[ExecutorEvent]:
        """Events since the last poll, waiting up to ``timeout`` seconds for the first one."""
        ...

    def stop(self, number: int, kind: FailureKind) -> None:
        """End running trial ``number`` now; its AttemptEnded carries a failure of ``kind``."""
        ...

    def close(self, grace: float) -> list[ExecutorEvent]:
        """Let running trials finish for up to ``grace`` seconds, stop the rest (INTERRUPTED), release everything.

        Returns the events of the trials that ended meanwhile.
        """
        ...
