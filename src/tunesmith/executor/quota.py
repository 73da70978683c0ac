"""``executor.max_concurrent``: at most N trials of one experiment run at once, across every coordinator running it.

An Executor wrapped around the real one: it offers fewer free slots while the store shows the experiment's running
trials at the cap. The store is read at most every ``refresh`` seconds; between reads, this coordinator's own
submits and ends adjust the count. Coordinators that joined the run (``resume --join``) each read the store, so a
brief overshoot is possible while two of them start a trial within one refresh (no lease per slot is taken).
"""

from __future__ import annotations

from collections.abc import Callable

from tunesmith.clock import Clock
from tunesmith.evaluation.job import TrialJob
from tunesmith.executor.base import AttemptEnded, Executor, ExecutorEvent
from tunesmith.records import FailureKind


class ConcurrencyCap:
    """Args:
        inner: the executor that runs the trials.
        limit: the most trials of the experiment running at once.
        running: how many of the experiment's trials the store shows running (all coordinators' together).
        clock: times the store reads.
        refresh: seconds between store reads.
    """

    def __init__(self, inner: Executor, limit: int, running: Callable[[], int], clock: Clock,
                 refresh: float = 0.5) -> None:
        self.inner = inner
        self.limit = limit
        self.running = running
        self.clock = clock
        self.refresh = refresh
        self._count = 0
        self._read_at: float | None = None

    def start(self) -> None:
        self.inner.start()

    def free_slots(self) -> int:
        now = self.clock.monotonic()
        if self._read_at is None or now - self._read_at >= self.refresh:
            self._count, self._read_at = self.running(), now
        return max(0, min(self.inner.free_slots(), self.limit - self._count))

    def submit(self, job: TrialJob) -> None:
        self.inner.submit(job)
        self._count += 1

    def poll(self, timeout: float) -> list[ExecutorEvent]:
        return self._ended(self.inner.poll(timeout))

    def prune(self, number: int) -> None:
        self.inner.prune(number)

    def stop(self, number: int, kind: FailureKind, reason: str | None = None) -> None:
        self.inner.stop(number, kind, reason)

    def close(self, grace: float) -> list[ExecutorEvent]:
        return self._ended(self.inner.close(grace))

    def _ended(self, events: list[ExecutorEvent]) -> list[ExecutorEvent]:
        self._count -= sum(1 for e in events if isinstance(e, AttemptEnded))
        return events
