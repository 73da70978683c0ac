"""Several coordinators on one experiment (a lead and ``resume --join``-ers): who is still at work on it, and how
one leaves it so that the last one out, and only it, records the experiment's status.

A coordinator other than the asking one is *at work* while it has not recorded that it left (a ``coordinator_*``
event naming it), its process is not known dead (:func:`tunesmith.lease_holders.holder_alive`), and either the
store has heard from it within ``stale_after`` seconds (it holds the experiment's lease, or a trial it owns was
saved or beat that recently, it announced itself, its ``run_running`` event, that recently, or, queued for a
quota slot, it asked for one that recently) or it is a live process on this host (something may hold up the loop
that renews its lease: a slow proposal; an inline trial no longer does, its executor keeps the lease and the
trial's heartbeat fresh while it runs). So a joiner
between two trials (one just finished, the next not yet started; one waiting out a retry's back-off) is at work,
not only one whose trial is running at the moment asked.

Leaving: a coordinator records that it leaves *before* it asks who is still at work. Of two leaving at once, each
wrote before it read, so at least one of them sees the other gone and records the status: an experiment is never
left ``running`` by coordinators that all left, nor marked ``interrupted`` under a coordinator still at work.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from tunesmith.audit import AuditKind
from tunesmith.lease_holders import holder_alive, holder_here
from tunesmith.records import ExperimentRecord, RunStatus, TrialRecord

if TYPE_CHECKING:
    from tunesmith.storage.base import Event, TrialStore

LEFT_PREFIX = "coordinator_"   # coordinator_done, coordinator_interrupted, coordinator_failed
# How often a coordinator renews its lease and beats for its running and retry-waiting trials: from a thread of its
# own (Heartbeat), so a beat says its process lives, whatever holds up its loop.
LEASE_RENEW_EVERY = 5.0
# A remote coordinator's death is known only by its silence (one on this host at once, by its pid). Not shorter:
# a joiner with no trial running writes nothing to the store (its liveness is its run_running event, its trials'
# beats and, waiting for a quota slot, its asks), so a joiner between trials for longer than this (a slow start) would count as gone; and a
# lease as short as a store's lock wait (SQLite: 30 s) could lapse under a live lead.
STALE_AFTER = 60.0   # a trial whose coordinator has not beaten for this long is abandoned
LEASE_TTL = 120.0    # a lease not renewed for as long lapses: a killed remote lead is at work until then


def abandoned(trial: TrialRecord, now: float, stale_after: float) -> bool:
    """A running or queued trial nobody runs any more: its coordinator is dead (same host) or silent too long."""
    if trial.owner is None or not holder_alive(trial.owner):
        return True
    return trial.heartbeat_at is None or now - trial.heartbeat_at > stale_after


def peers_at_work(store: TrialStore, experiment_id: int, me: str, now: float, stale_after: float,
                  events: Sequence[Event] | None = None, trials: Sequence[TrialRecord] | None = None) -> list[str]:
    """The coordinators other than ``me`` still at work on the experiment (see the module docstring), by name.
    ``events``, ``trials``: the experiment's, when the caller has just read them (``show``); else read here."""
    heard: dict[str, float] = {}
    left: set[str] = set()
    waited: set[str] = set()
    for e in store.events(experiment_id) if events is None else events:
        if e.kind == "quota_wait" and isinstance(e.payload.get("holder"), str):
            waited.add(e.payload["holder"])
        owner = e.payload.get("owner")
        if not isinstance(owner, str):
            continue
        if e.kind.startswith(LEFT_PREFIX):
            left.add(owner)
        elif e.kind == AuditKind.RUN_RUNNING:
            heard[owner] = max(heard.get(owner, e.at), e.at)
    for t in store.trials(experiment_id) if trials is None else trials:
        if t.owner is not None and t.heartbeat_at is not None:
            heard[t.owner] = max(heard.get(t.owner, t.heartbeat_at), t.heartbeat_at)
    # one waiting for a quota slot (a joiner with no trial running writes nothing else) re-asks for it many times a
    # second: heard from then (asked only of a run that ever waited)
    for holder, asked in store.slot_waiters_asked(waited - left).items():
        heard[holder] = max(heard.get(holder, asked), asked)
    lead = store.lease_holder(experiment_id, now)  # unexpired, and not known dead
    if lead is not None:
        heard[lead] = now
    else:  # a lapsed lease's holder, however long ago: at work only if it lives here (see above)
        lapsed = store.lease_holder(experiment_id, -math.inf)
        if lapsed is not None:
            heard.setdefault(lapsed, -math.inf)
    return sorted(owner for owner, at in heard.items() if owner != me and owner not in left and holder_alive(owner)
                  and (now - at <= stale_after or holder_here(owner)))


def at_work(store: TrialStore, experiment_id: int, now: float, stale_after: float = STALE_AFTER,
            events: Sequence[Event] | None = None, trials: Sequence[TrialRecord] | None = None) -> list[str]:
    """The coordinators at work on the experiment, asked from outside any of them (``show``, ``delete``)."""
    return peers_at_work(store, experiment_id, "", now, stale_after, events, trials)


def run_abandoned(store: TrialStore, experiment: ExperimentRecord, now: float, events: Sequence[Event] | None = None,
                  trials: Sequence[TrialRecord] | None = None) -> bool:
    """Whether an experiment recorded as running has nothing running it (its coordinators were killed, or their
    machine went away): `show`'s ``abandoned``, `ls`'s ``running (abandoned)`` and what a cycle resumes, one rule
    for all. A run waiting on a quota slot is at work while its coordinator lives and asks for one (see
    :func:`peers_at_work`); one killed during the wait is abandoned, though its wait was never recorded as ended."""
    if experiment.status is not RunStatus.RUNNING:
        return False
    return not at_work(store, experiment.id, now, events=events, trials=trials)


def leave(store: TrialStore, experiment_id: int, me: str, status: RunStatus, reason: str, now: float,
          stale_after: float) -> bool:
    """Record that coordinator ``me`` leaves the experiment, having ended its run as ``status`` for ``reason``; when
    no other coordinator is at work on it, record ``status`` as the experiment's. Returns whether it did."""
    done = status is RunStatus.COMPLETED
    store.record_event(experiment_id, f"{LEFT_PREFIX}done" if done else f"{LEFT_PREFIX}{status.value}", now,
                       detail={"owner": me, "reason": reason})
    if peers_at_work(store, experiment_id, me, now, stale_after):
        return False  # theirs to finish: the last one out records the experiment's status
    store.set_status(experiment_id, status, now, {"reason": reason})
    return True


class Heartbeat:
    """Calls ``beat`` (the runner's lease renewal and trial heartbeat) every ``every`` seconds from a daemon thread,
    from :meth:`start` until :meth:`stop`.

    Why a thread: a beat then says the coordinator's process lives, which is what its peers judge (is it at work,
    are its trials abandoned), and a loop held up (a slow proposal, a large checkpoint copied, a store write waiting
    for a lock, the holdout refit after the trials) does not make it look dead. That is what lets ``STALE_AFTER``
    be seconds rather than a minute. A beat that raises is left for the next one: the loop's own keep-alive and
    its writes report a failing store.
    """

    def __init__(self, beat: Callable[[], None], every: float) -> None:
        self.beat = beat
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tunesmith-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """No beat after this returns (the lease released next must stay released), unless one is stuck in the
        store longer than ``STALE_AFTER``: what it renews then lapses by itself."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STALE_AFTER)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - see the class docstring
                pass
