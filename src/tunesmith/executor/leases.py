"""Quota slots as leases in the store: a trial starts only when every quota key of its run has a free slot.

An Executor wrapped around the real one. Before the runner records and submits a trial it asks ``free_slots()``;
this wrapper answers by taking one slot from the store (``acquire_slot``: atomic across coordinators on any
machine), and hands that slot to the job ``submit`` brings. A slot is released once the runner has recorded the
attempt's end (at the next call after the ``AttemptEnded``), so the recorded [started_at, finished_at] of a trial
always lies inside its lease. A background thread renews this coordinator's leases every ``ttl / 4`` seconds, also
while an inline trial or a slow strategy holds the main thread; a coordinator that dies stops renewing and its
slots come free ``ttl`` seconds later, or at once for a coordinator on the same host (its process is gone).

While a key is full the wrapper asks again every ``recheck`` seconds, and says so once per wait: a ``quota_wait``
event in the store (``tunesmith show``) and one line through ``announce`` (the live display), then
``quota_wait_ended`` when the run stops wanting slots (its workers are full, it has nothing to start, or it ends).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tunesmith.clock import Clock
from tunesmith.errors import StorageError
from tunesmith.evaluation.job import TrialJob
from tunesmith.executor.base import AttemptEnded, Executor, ExecutorEvent
from tunesmith.records import FailureKind, SlotGrant


class SlotLedger(Protocol):
    """What the wrapper needs of the store (storage.base.TrialStore has these)."""

    def acquire_slot(self, holder: str, experiment_id: int, keys: Mapping[str, int | None], now: float,
                     ttl: float, release: Collection[str] = ()) -> SlotGrant: ...

    def hold_slots(self, holder: str, keep: Collection[str], now: float, ttl: float) -> set[str]: ...

    def release_slots(self, holder: str) -> list[str]: ...

    def record_event(self, experiment_id: int, kind: str, now: float, trial_number: int | None = None,
                     detail: Mapping[str, Any] | None = None) -> None: ...

    def set_attributes(self, experiment_id: int, updates: Mapping[str, Any], now: float) -> None: ...


@dataclass(frozen=True)
class QuotaScope:
    """Who asks for slots, for which run: built by the runner, read by the executor factory.

    Args:
        ledger: the store.
        experiment_id: the run's experiment.
        holder: this coordinator (``lease_owner_id``).
        user: the coordinator's user (quotas.coordinator_user).
        announce: shows a line to whoever watches the run (the listener's ``warning``).
    """

    ledger: SlotLedger
    experiment_id: int
    holder: str
    user: str
    announce: Callable[[str], None] = lambda _line: None


class LeasedSlots:
    """Args:
        inner: the executor that runs the trials.
        scope: the store, the experiment, this coordinator.
        keys: the run's quota keys, each with the run's own limit or None (quotas.run_quota_keys).
        clock: stamps leases and paces the rechecks.
        ttl: seconds a lease lives without renewal.
        recheck: seconds between asks while a key is full (or the runner had nothing to start).
        limits_refresh: while no key of the run is limited, seconds between reads of the store's limits (a limit
            set meanwhile reaches this run within that time).
    """

    def __init__(self, inner: Executor, scope: QuotaScope, keys: Mapping[str, int | None], clock: Clock,
                 ttl: float = 10.0, recheck: float = 0.25, limits_refresh: float = 1.0) -> None:
        self.inner = inner
        self.scope = scope
        self.keys = keys
        self.clock = clock
        self.ttl = ttl
        self.recheck = recheck
        self.limits_refresh = limits_refresh
        self._lock = threading.Lock()           # lease state and writes: the renewer and the loop never interleave
        self._reserved: SlotGrant | None = None  # a slot taken by free_slots() for the next submit
        self._running: dict[int, str | None] = {}  # trial number -> its lease (None: no key was limited)
        self._ended: list[str] = []             # leases of ended attempts, given back at the next call
        self._quiet_until = 0.0
        self._unlimited_until = 0.0             # until then, no quota applies (a limit set later waits for it)
        self._waiting: tuple[str, float] | None = None  # (full key, since) while waiting
        self._released_all = False              # nothing of this coordinator's is left in the store
        self._stop_renewing = threading.Event()
        self._renewer: threading.Thread | None = None

    def start(self) -> None:
        # the user whose quota the run counts against (the coordinator that started it last; each joined
        # coordinator counts against its own user's)
        self.scope.ledger.set_attributes(self.scope.experiment_id, {"user": self.scope.user}, self.clock.now())
        self.inner.start()
        self._renewer = threading.Thread(target=self._renew_loop, name="tunesmith-quota-leases", daemon=True)
        self._renewer.start()

    def free_slots(self) -> int:
        workers = self.inner.free_slots()
        if workers <= 0:
            return 0
        if self._reserved is not None:
            return 1
        mono = self.clock.monotonic()
        if mono < self._quiet_until:
            self._release_ended()
            return 0
        if mono < self._unlimited_until and not self._ended:
            self._reserved = SlotGrant(None)  # nothing limits this run, as of a moment ago
            return 1
        s = self.scope
        with self._lock:  # the ended attempts' slots go back in the same transaction
            grant = s.ledger.acquire_slot(s.holder, s.experiment_id, self.keys, self.clock.now(), self.ttl,
                                          release=self._ended)
            self._ended = []
            self._reserved = grant if grant.granted else None
            self._released_all = self._released_all and grant.lease is None
        if grant.granted and grant.lease is None:  # no key limited: ask the store again in a while, not per trial
            self._unlimited_until = mono + self.limits_refresh
        if not grant.granted:
            self._quiet_until = mono + self.recheck
            self._wait_began(grant)
            return 0
        if workers == 1:  # this slot fills the last free worker: the run no longer waits on a quota
            self._wait_ended()
        return 1

    def next_job_waits(self) -> bool:
        return self.inner.next_job_waits()

    def submit(self, job: TrialJob) -> None:
        with self._lock:
            grant, self._reserved = self._reserved, None
            if grant is not None:  # in the same step: the renewer never sees the slot as neither reserved nor in use
                self._running[job.number] = grant.lease
        if grant is None:  # the protocol: submit only after free_slots() > 0, which reserved it
            raise RuntimeError("submit without a free slot")
        try:
            self.inner.submit(job)
        except BaseException:
            with self._lock:
                self._running.pop(job.number, None)
            self._give_back(grant.lease)
            raise

    def poll(self, timeout: float) -> list[ExecutorEvent]:
        if self._reserved is not None:  # the runner had nothing to start: give the slot back to the others
            with self._lock:
                grant, self._reserved = self._reserved, None
            self._give_back(grant.lease)
            self._quiet_until = self.clock.monotonic() + self.recheck
            self._wait_ended()
        self._release_ended()
        began = time.monotonic()
        events = self._ended_attempts(self.inner.poll(timeout))
        if not events and not self._running and self._waiting is not None:
            # nothing runs here to wait on (an inline executor returns at once): wait out the recheck instead
            time.sleep(max(0.0, min(timeout, self.recheck) - (time.monotonic() - began)))
        return events

    def prune(self, number: int, step: int | None = None) -> None:
        self.inner.prune(number, step)

    def stop(self, number: int, kind: FailureKind, reason: str | None = None) -> None:
        self.inner.stop(number, kind, reason)

    def close(self, grace: float) -> list[ExecutorEvent]:
        try:
            return self._ended_attempts(self.inner.close(grace))
        finally:
            self._stop_renewing.set()
            if self._renewer is not None:
                self._renewer.join(timeout=5)
            with self._lock:
                self._running.clear()
                self._reserved = None
            # every slot of this coordinator, and its tickets: one left queued would make `quota list` show a waiter,
            # and refuse the next asker, till it lapsed (the store is failing: the leases lapse by themselves, TTL)
            with contextlib.suppress(StorageError):
                self.scope.ledger.release_slots(self.scope.holder)
            with contextlib.suppress(StorageError):
                # the run wants no more slots: a wait still open ends here (its trials may have ended together, in
                # one poll, leaving a slot taken for a trial the runner had no more of, and no poll to give it back)
                self._wait_ended()

    # -- leases ------------------------------------------------------------------------------------------------
    def _ended_attempts(self, events: list[ExecutorEvent]) -> list[ExecutorEvent]:
        with self._lock:
            for e in events:
                if isinstance(e, AttemptEnded) and e.number in self._running:
                    lease = self._running.pop(e.number)
                    if lease is not None:
                        self._ended.append(lease)
                    self._quiet_until = 0.0  # the runner may start something now
        return events

    def _give_back(self, lease: str | None) -> None:
        if lease is not None:
            with self._lock:
                self._ended.append(lease)
            self._release_ended()

    def _release_ended(self) -> None:
        if self._ended:
            self._hold()

    def _hold(self) -> None:
        """Renew the slots in use, release the rest; record the ones that lapsed (given to another run)."""
        s = self.scope
        with self._lock:
            keep = {n: lease for n, lease in self._running.items() if lease is not None}
            if self._reserved is not None and self._reserved.lease is not None:
                keep[-1] = self._reserved.lease
            if not keep and not self._ended and self._released_all:
                return
            lapsed = s.ledger.hold_slots(s.holder, set(keep.values()), self.clock.now(), self.ttl)
            self._ended = []
            self._released_all = not keep
        if lapsed:
            numbers = sorted(n for n, lease in keep.items() if lease in lapsed and n >= 0)
            s.ledger.record_event(s.experiment_id, "quota_lease_lapsed", self.clock.now(),
                                  detail={"trials": numbers, "ttl_s": self.ttl})

    def _renew_loop(self) -> None:
        while not self._stop_renewing.wait(self.ttl / 4):
            try:
                self._hold()
            except StorageError:
                pass  # try again next time; leases lapse only after a whole TTL without a renewal

    # A wait lasts from the first refusal until the run stops wanting slots (its workers are full, or it has
    # nothing to start): one pair of events per wait, however often the store is asked meanwhile.
    def _wait_began(self, grant: SlotGrant) -> None:
        if self._waiting is not None and self._waiting[0] == grant.full_key:
            return
        s, now = self.scope, self.clock.now()
        self._waiting = (str(grant.full_key), now)
        s.ledger.record_event(s.experiment_id, "quota_wait", now,
                              detail={"key": grant.full_key, "limit": grant.limit, "in_use": grant.in_use,
                                      "user": s.user, "holder": s.holder})
        if not str(grant.full_key).startswith("experiment:"):  # the spec's own max_concurrent is no surprise
            s.announce(f"waiting for a free slot of quota {grant.full_key} ({grant.in_use} of {grant.limit} in "
                       "use); trials start as slots free (`tunesmith quota list` shows the limits)")

    def _wait_ended(self) -> None:
        if self._waiting is None:
            return
        (key, since), self._waiting = self._waiting, None
        now = self.clock.now()
        self.scope.ledger.record_event(self.scope.experiment_id, "quota_wait_ended", now,
                                       detail={"key": key, "waited_s": round(now - since, 3)})
