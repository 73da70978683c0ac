"""Several coordinators on one experiment (a lead and ``resume --join``-ers): who is still at work on it, and how
one leaves it so that the last one out, and only it, records the experiment's status.

A coordinator other than the asking one is *at work* while it has not recorded that it left (a ``coordinator_*``
event naming it), its process is not known dead (:func:`tunesmith.lease_holders.holder_alive`), and either the
store has heard from it within ``stale_after`` seconds (it holds the experiment's lease, or a trial it owns was
saved or beat that recently, or it announced itself, its ``run_running`` event, that recently) or it is a live
process on this host (something may hold up the loop that renews its lease: a slow proposal; an inline trial no
longer does, its executor keeps the lease and the trial's heartbeat fresh while it runs). So a joiner
between two trials (one just finished, the next not yet started; one waiting out a retry's back-off) is at work,
not only one whose trial is running at the moment asked.

Leaving: a coordinator records that it leaves *before* it asks who is still at work. Of two leaving at once, each
wrote before it read, so at least one of them sees the other gone and records the status: an experiment is never
left ``running`` by coordinators that all left, nor marked ``interrupted`` under a coordinator still at work.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tunesmith.audit import AuditKind
from tunesmith.lease_holders import holder_alive, holder_here
from tunesmith.quotas import open_quota_wait
from tunesmith.records import ExperimentRecord, RunStatus, TrialRecord

if TYPE_CHECKING:
    from tunesmith.storage.base import Event, TrialStore

LEFT_PREFIX = "coordinator_"   # coordinator_done, coordinator_interrupted, coordinator_failed
LEASE_RENEW_EVERY = 20.0       # how often a coordinator renews its lease and beats for its running trials
STALE_AFTER = 3 * LEASE_RENEW_EVERY  # a trial whose coordinator has not beaten for this long is abandoned


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
    for e in store.events(experiment_id) if events is None else events:
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
    machine went away): `show`'s ``abandoned`` and `ls`'s ``running (abandoned)``, one rule for both. A run waiting
    on a quota slot is not abandoned."""
    if experiment.status is not RunStatus.RUNNING:
        return False
    events = store.events(experiment.id) if events is None else events
    if open_quota_wait(events) is not None:
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
