"""The TrialStore protocol: the durable record of experiments, trials and events.

Every method is one transaction: when it returns, what it wrote survives a crash of this process. Writers
call it *before* acting on a state change (a trial is recorded RUNNING before its job is submitted).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tunesmith.records import (
    ExperimentRecord, ParamValue, Report, RunStatus, SlotGrant, TrialRecord, TrialState,
)


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    kind: str
    at: float
    trial_number: int | None
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class DeletedExperiment:
    """What the store keeps of an experiment ``tunesmith delete`` removed: which one (``name``, ``experiment_id``),
    when, how many ``trials`` it had, ``detail`` (the actor and the reason, as an audit event's), and
    ``kept_events``: its events of the kinds kept (promotions and rollbacks), oldest first, as they were recorded.
    ``id`` is the record's own, unique in the store (an experiment id may be given again on SQLite)."""

    id: int
    experiment_id: int
    name: str
    deleted_at: float
    trials: int
    detail: Mapping[str, Any]
    kept_events: tuple[Event, ...]


def begins_an_attempt(kind: str, payload: Mapping[str, Any]) -> bool:
    """Whether an event (of ``kind``, with ``payload``) says that an attempt of its trial began: ``trial_started``
    (a new trial recorded running, or an attempt queued for a worker beginning), or a re-run or retry recorded
    running. One recorded queued (``trial_queued``; a re-run or retry recorded ``queued``) begins at its
    ``trial_started``, if ever. Each names its attempt (``payload["attempt"]``)."""
    return kind == "trial_started" or (kind in ("trial_rerun", "trial_retry_started")
                                       and payload.get("state") == TrialState.RUNNING.value)


class TrialStore(Protocol):
    def create_experiment(self, name: str, spec: Mapping[str, Any], strategy: str, strategy_reason: str,
                          now: float) -> ExperimentRecord:
        """Record a new experiment. Raises ExperimentExists when the name is taken."""
        ...

    def experiment(self, name: str) -> ExperimentRecord:
        """The experiment called ``name``. Raises ExperimentNotFound."""
        ...

    def experiments(self) -> list[ExperimentRecord]:
        ...

    def experiment_names(self) -> set[str]:
        """The names of the experiments in the store (whether one exists, which names are taken)."""
        ...

    def set_status(self, experiment_id: int, status: RunStatus, now: float,
                   detail: Mapping[str, Any] | None = None) -> None:
        """Change the run status and log it as an event."""
        ...

    def acquire_lease(self, experiment_id: int, owner: str, now: float, ttl: float) -> str | None:
        """Take (or renew) the coordinator lease; None on success, else the current holder."""
        ...

    def renew_lease(self, experiment_id: int, owner: str, now: float, ttl: float) -> str | None:
        """Extend ``owner``'s lease to ``now + ttl`` (never shortening it) while ``owner`` still holds it, lapsed or
        not; a released lease is never taken back (a late beat, stuck in a locked store, would otherwise hold it
        again after its run ended). None when renewed or released; else who took it over.
        """
        ...

    def release_lease(self, experiment_id: int, owner: str) -> None:
        ...

    def lease_holder(self, experiment_id: int, now: float) -> str | None:
        """Who holds the coordinator lease at ``now`` (unexpired, not known dead), or None; writes nothing.

        A coordinator that joined (and holds no lease) asks it to learn whether a lead is still running.
        """
        ...

    def acquire_slot(self, holder: str, experiment_id: int, keys: Mapping[str, int | None], now: float,
                     ttl: float, release: Collection[str] = ()) -> SlotGrant:
        """Take one run slot under every quota key in ``keys`` (each with the caller's own limit, or None), atomically
        across coordinators on any machine, or none when a limited key is full; first give back ``release`` (the
        holder's leases of attempts that ended). The slot's leases expire at ``now + ttl`` unless renewed with
        ``hold_slots``; a grant under no limit at all holds no lease (``lease`` None). Called before a trial's
        attempt is recorded and submitted.
        """
        ...

    def hold_slots(self, holder: str, keep: Collection[str], now: float, ttl: float) -> set[str]:
        """Renew ``holder``'s leases in ``keep``, release its others; returns those of ``keep`` that lapsed."""
        ...

    def leave_slot_queue(self, holder: str) -> None:
        """Take back ``holder``'s places in the quota queues: it will not ask for a slot again."""
        ...

    def release_slots(self, holder: str) -> list[str]:
        """Give back every slot ``holder`` holds and its places in the quota queues, in one change: a coordinator
        that ends, or one known gone (`quota release`). Returns the quota keys it held, sorted."""
        ...

    def new_trial(self, experiment_id: int, params: Mapping[str, ParamValue], experiment_seed: int, now: float,
                  log_path_template: str, owner: str | None = None, limit: int | None = None,
                  queued: bool = False) -> TrialRecord | None:
        """Allocate the next trial number and record the trial RUNNING (attempt 1), run by ``owner``; with
        ``queued``, QUEUED (its executor holds it until a worker takes it: a ``trial_queued`` event, not
        ``trial_started``, which the runner records as it begins).

        The trial's seed derives from ``experiment_seed`` and its number; ``log_path_template`` has ``{number}``.
        Returns None, allocating nothing, when ``limit`` numbers are already taken (the trial budget).
        """
        ...

    def save_trial(self, experiment_id: int, trial: TrialRecord, event: str, now: float,
                   detail: Mapping[str, Any] | None = None) -> None:
        """Write the whole trial record and append ``event`` for it."""
        ...

    def set_attributes(self, experiment_id: int, updates: Mapping[str, Any], now: float) -> None:
        """Merge ``updates`` into the experiment's attributes (data fingerprint, holdout scores...)."""
        ...

    def change_attributes(self, experiment_id: int, change: Callable[[Mapping[str, Any]], Mapping[str, Any]],
                          now: float) -> None:
        """Merge ``change(attributes as they are)`` into the experiment's attributes, atomically: no other writer's
        change lands between the read and the write (a list appended to by two processes keeps both entries)."""
        ...

    def change_spec(self, experiment_id: int,
                    change: Callable[[dict[str, Any]], tuple[dict[str, Any], str, Mapping[str, Any]]],
                    now: float) -> None:
        """Replace the recorded spec with ``change(recorded spec)``'s spec, and append an event of its kind and
        detail, atomically (`resume --trials`: the spec and the audit trail never disagree); ``change`` may raise,
        and then nothing is written."""
        ...

    def finished_since(self, experiment_id: int, since_event: int,
                       skip: Collection[int] = ()) -> tuple[list[TrialRecord], int]:
        """Trials (not in ``skip``) that reached a final state after event ``since_event``; the newest event id."""
        ...

    def unfinished_trials(self, experiment_id: int, skip: Collection[int] = ()) -> list[TrialRecord]:
        """The trials running or queued now, whoever runs them, other than those in ``skip``; without their reports."""
        ...

    def mark_lost(self, experiment_id: int, trial: TrialRecord, now: float) -> TrialRecord | None:
        """Record ``trial`` (lost) unless it is no longer running or queued by the same owner in the same attempt
        (another coordinator reclaimed it first). Returns the record as recorded, None where it did not record it.

        An attempt that never began (queued for a worker: no event since says it began, :func:`begins_an_attempt`)
        is taken back: the record's ``attempts`` is one less, and the ``trial_lost`` event says ``began: false``.
        It never ran, so its re-run (``attempts + 1``) is the same attempt again, neither a retry nor a lost attempt.
        """
        ...

    def take_for_rerun(self, experiment_id: int, was: TrialRecord, again: TrialRecord, event: str,
                       now: float) -> bool:
        """Record ``again`` (the next attempt of ``was``) and append ``event``, unless the trial's state, attempt or
        owner is no longer ``was``'s (another coordinator took it first); whether it did."""
        ...

    def save_trial_unless_changed(self, experiment_id: int, was: TrialRecord, trial: TrialRecord, event: str,
                                  now: float, detail: Mapping[str, Any] | None = None) -> bool:
        """Record ``trial`` and append ``event`` (with ``detail``) unless the trial's state, attempt or owner is no
        longer ``was``'s (another coordinator took it over); whether it did."""
        ...

    def heartbeat(self, experiment_id: int, numbers: list[int], now: float, owner: str | None = None) -> None:
        """Mark these running trials alive at ``now`` (with an ``owner``, those it runs), and ``owner``, the
        coordinator that beats for them."""
        ...

    def coordinator_beats(self, experiment_id: int) -> dict[str, float]:
        """Each coordinator's last beat on the experiment, by coordinator (``heartbeat`` with an owner)."""
        ...

    def trial_owner_beats(self, experiment_id: int) -> dict[str, float]:
        """Each trial owner's latest trial beat on the experiment (the newest ``heartbeat_at`` of the trials it owns:
        set as a trial is recorded, saved or beaten), by owner; owners of no beaten trial left out. When a coordinator
        was last heard from through its trials, read without reading the trials (``delete``'s check of a long run)."""
        ...

    def forget_coordinator(self, experiment_id: int, owner: str) -> None:
        """Delete coordinator ``owner``'s beats on the experiment (it left, and beats no more): each run, resume
        and ``--join`` beats as a new coordinator, and its row would otherwise stay as long as the experiment."""
        ...

    def add_report(self, experiment_id: int, number: int, attempt: int, report: Report, now: float) -> None:
        """Record attempt ``attempt``'s report. It may be held and written with later ones (a trial may report
        every batch), but every later call on this store sees it, other processes within about a second, and
        ``close`` writes what is held."""
        ...

    def trials(self, experiment_id: int, numbers: Collection[int] | None = None,
               curves: bool = True) -> list[TrialRecord]:
        """All trials (or those ``numbers``), by number, with their intermediate reports: the latest attempt's,
        after an earlier attempt's at the steps before the latest attempt's first (a retry continued from a
        checkpoint); all attempts' reports stay stored. Without ``curves``, none (``intermediate`` empty) and the
        reports not read: for a reader that shows no curve (a summary, a table, who is at work), as a long run's
        reports are most of what it stores."""
        ...

    def last_report_id(self, experiment_id: int) -> int:
        """The id of the latest intermediate report of the experiment's running trials, 0 when they have none: it
        grows with every report recorded (as ``add_report`` says when they are seen), so a reader polling a run (the
        dashboard) learns that a curve changed, which no event tells, with one small read instead of reading the
        curves. Only running trials report; one that finishes records an event, which such a reader sees anyway."""
        ...

    def trial_counts(self) -> dict[int, dict[TrialState, int]]:
        """Trials per state for every experiment, by experiment id, in one read (for listings)."""
        ...

    def trial_counts_of(self, experiment_id: int) -> dict[TrialState, int]:
        """The experiment's trials per state (those with none left out), in one read of its own trials only: a
        run that counts its trials (a resume, a budget's stop) reads none of a large store's other experiments."""
        ...

    def events(self, experiment_id: int, since_id: int = 0) -> list[Event]:
        ...

    def events_of_kinds(self, kinds: Collection[str]) -> dict[int, list[Event]]:
        """Every live experiment's events of ``kinds``, by experiment id (those with none left out), each oldest
        first, in one read: the promotions and rollbacks of every experiment without reading their trials' events,
        one query per experiment."""
        ...

    def record_event(self, experiment_id: int, kind: str, now: float, trial_number: int | None = None,
                     detail: Mapping[str, Any] | None = None) -> None:
        ...

    def delete_experiment(self, experiment: ExperimentRecord, now: float, keep: Collection[str],
                          detail: Mapping[str, Any]) -> DeletedExperiment:
        """Remove the experiment's records and, in the same transaction, keep its record of deletion: ``detail``
        (who, why), its trial count and its events of the kinds in ``keep``. Raises ExperimentNotFound when it is
        gone already (the experiment with its id, name and creation time: a later one may have been given its id),
        LeaseHeld when a coordinator holds its lease."""
        ...

    def deleted_experiments(self, name: str | None = None) -> list[DeletedExperiment]:
        """The records of deleted experiments (those named ``name``), in the order they were deleted."""
        ...

    @property
    def reuses_event_ids(self) -> bool:
        """Whether an event's id may be given again once its event is deleted (with its experiment): then ids do not
        order a deleted experiment's events among later ones."""
        ...

    def close(self) -> None:
        ...


__all__ = ["DeletedExperiment", "Event", "TrialStore"]
