"""The audit trail: who did what, when, from where, and why, appended to the store's event log.

Audit entries are ordinary store events (append-only: the store offers no update or delete of an event) whose
detail carries the actor: OS user, host, the command line (credentials redacted) and the reason given. Deleting an
experiment removes its events; the store keeps a record of the deletion (who, when, its trial count) with its
promotion and rollback events (``KEPT_AFTER_DELETION``), and the trail lists those as it listed them before, then
the deletion itself.
"""

from __future__ import annotations

import enum
import getpass
import socket
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tunesmith.clock import Clock
from tunesmith.events import RunListener
from tunesmith.records import ExperimentRecord, RunStatus, TrialRecord
from tunesmith.redaction import redact

if TYPE_CHECKING:
    from tunesmith.storage.base import DeletedExperiment, Event, TrialStore

class AuditKind(enum.StrEnum):
    """Every audited action, as the kind of its store event: the one list the audit trail, the wall-time budget,
    `tunesmith promote` and the promotion metrics derive theirs from (a kind added here is audited at once, and
    outside the run's time unless it is one of ``DURING_RUN``). Every writer of one of these kinds writes the
    member, never its string (tests/test_audit.py checks the source)."""

    RUN_STARTED = "run_started"
    RUN_RESUMED = "run_resumed"
    RUN_ENDED = "run_ended"
    # the store's own status events (run_<status>, see status_kind), which carry no actor. run_running is where a
    # run's time starts and is not itself audited: run_started or run_resumed, recorded with it, say who
    RUN_RUNNING = "run_running"
    RUN_COMPLETED = "run_completed"
    RUN_INTERRUPTED = "run_interrupted"
    RUN_FAILED = "run_failed"
    # A change of a model's champion is recorded before the registry is touched (its intent, ``*_started``) and
    # after (its outcome: promoted or promotion_abandoned; rolled_back or rollback_abandoned); an intent without an
    # outcome is one under way or killed partway, which the next promote, rollback, delete or audit settles
    # (tunesmith.promotion.settling)
    PROMOTION_STARTED = "promotion_started"
    PROMOTED = "promoted"
    PROMOTION_ABANDONED = "promotion_abandoned"
    PROMOTION_ALREADY_CHAMPION = "promotion_already_champion"
    PROMOTION_REJECTED = "promotion_rejected"
    PROMOTION_DRY_RUN = "promotion_dry_run"
    ROLLBACK_STARTED = "rollback_started"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_ABANDONED = "rollback_abandoned"
    # `tunesmith release MODEL`: the hold a rollback put on its cycles lifted (tunesmith.promotion.rollback_hold)
    ROLLBACK_RELEASED = "rollback_released"
    TRACKING_EXPORTED = "tracking_exported"
    TRACKING_FAILED = "tracking_failed"
    TRIAL_REPRODUCED = "trial_reproduced"
    # `tunesmith resume NAME --trials N`: the recorded spec's budget.trials raised (detail: old, new)
    BUDGET_RAISED = "budget_raised"
    # `tunesmith delete`: kept in the store's record of the deletion, not in the experiment's events (gone with it)
    DELETED = "deleted"


AUDITED = frozenset(AuditKind) - {AuditKind.RUN_RUNNING}
# A run's own record: every other audited action is recorded after (or apart from) a run's loop, and never counts as
# time the run spent (wall_time budget)
DURING_RUN = frozenset({AuditKind.RUN_STARTED, AuditKind.RUN_RESUMED, AuditKind.RUN_RUNNING, AuditKind.RUN_COMPLETED,
                        AuditKind.RUN_INTERRUPTED, AuditKind.RUN_FAILED})
_STATUS_KINDS = {RunStatus.RUNNING: AuditKind.RUN_RUNNING, RunStatus.COMPLETED: AuditKind.RUN_COMPLETED,
                 RunStatus.INTERRUPTED: AuditKind.RUN_INTERRUPTED, RunStatus.FAILED: AuditKind.RUN_FAILED}
OUTSIDE_RUN_TIME = AUDITED - DURING_RUN
# Written when a dead coordinator's trials are reclaimed (the store's mark_lost), stamped with the reclaimer's clock:
# a resume hours after a SIGKILL records them just before its own run_running, so they are no time of the dead run
RECLAIMED_LATER = frozenset({"trial_lost"})
# The promotion decisions, by the outcome label the metrics count them under (tunesmith_promotions_total)
PROMOTION_OUTCOMES: dict[str, str] = {AuditKind.PROMOTED: "promoted",
                                      AuditKind.PROMOTION_ALREADY_CHAMPION: "already_champion",
                                      AuditKind.PROMOTION_REJECTED: "rejected",
                                      AuditKind.PROMOTION_DRY_RUN: "dry_run"}


# What a deleted experiment's record keeps of its events: the promotions and rollbacks, which explain a registered
# model's champion (promotion/champions.py replays them), with their intents and abandonments
KEPT_AFTER_DELETION = frozenset({*PROMOTION_OUTCOMES, AuditKind.ROLLED_BACK, AuditKind.PROMOTION_STARTED,
                                 AuditKind.PROMOTION_ABANDONED, AuditKind.ROLLBACK_STARTED,
                                 AuditKind.ROLLBACK_ABANDONED})


def status_kind(status: RunStatus) -> AuditKind:
    """The kind of the event the store records when an experiment reaches ``status`` (never ``created``: an
    experiment starts there, with its ``experiment_created`` event)."""
    return _STATUS_KINDS[status]


def actor() -> dict[str, str]:
    """The OS user, the host and the command line (redacted) of this process."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    return {"user": user, "host": socket.gethostname(), "command": redact(" ".join(sys.argv))}


def record(store: TrialStore, experiment_id: int, kind: str, clock: Clock, trial: int | None = None,
           detail: Mapping[str, Any] | None = None, reason: str | None = None) -> None:
    """Append an audited action (``kind``) with its actor and reason to experiment ``experiment_id``'s log."""
    store.record_event(experiment_id, kind, clock.now(), trial, {**(detail or {}), "actor": actor(),
                                                                  "reason": reason})


def time_spent(events: Sequence[Event]) -> float:
    """Seconds the runs in an experiment's event log spent (the wall-time budget a resume starts from): each from
    its ``run_running`` event to its last event (a killed run ends there), the actions outside a run's time, and a
    later reclaim's marks (:data:`RECLAIMED_LATER`), skipped."""
    total, start, last = 0.0, None, None
    for ev in events:
        if ev.kind in OUTSIDE_RUN_TIME or ev.kind in RECLAIMED_LATER:
            continue  # an export or a promotion days later, a resume's reclaim: not time the run spent
        if ev.kind == AuditKind.RUN_RUNNING:
            if start is not None and last is not None:
                total += last - start
            start = ev.at
        last = ev.at
    if start is not None and last is not None:
        total += last - start
    return total


# A cycle's steps (cycle_drift, cycle_retune, ...: tunesmith.cycle records them on the lineage's root): in the trail,
# so that a cycle that found no drift, and changed nothing, still shows that it ran and what it found
CYCLE_STEP_PREFIX = "cycle_"


def entries(events: Sequence[Event]) -> list[dict[str, Any]]:
    """The audited events among ``events``, and a cycle's steps, as JSON-able rows (oldest first)."""
    return [{"id": e.id, "at": e.at, "kind": e.kind, "trial": e.trial_number, "detail": dict(e.payload)}
            for e in events if e.kind in AUDITED or "actor" in e.payload or e.kind.startswith(CYCLE_STEP_PREFIX)]


def deletion_entries(deleted: DeletedExperiment) -> list[dict[str, Any]]:
    """A deleted experiment's kept events, then its deletion (kind ``deleted``: who, why, how many trials, how many
    events were kept), as JSON-able rows like :func:`entries`'."""
    done = {"id": None, "at": deleted.deleted_at, "kind": AuditKind.DELETED.value, "trial": None,
            "detail": {**deleted.detail, "trials": deleted.trials, "kept_events": len(deleted.kept_events)}}
    return [*entries(deleted.kept_events), done]


# A registered model's story: its promotions (and their intents, rejections, dry runs), rollbacks and releases.
# `audit ROOT` lists them for the lineage's re-tunes too, where they are recorded (on the promoted, the demoted one)
MODEL_CHANGES = frozenset({*KEPT_AFTER_DELETION, AuditKind.ROLLBACK_RELEASED})


def lineage_retunes(store: TrialStore, root: ExperimentRecord) -> list[ExperimentRecord]:
    """The live re-tunes of lineage ``root`` (re-tunes of re-tunes too); none where ``root`` is itself a re-tune."""
    if (root.attributes.get("lineage") or {}).get("root", root.name) != root.name:
        return []
    return [e for e in store.experiments()
            if e.name != root.name and (e.attributes.get("lineage") or {}).get("root") == root.name]


def trail(store: TrialStore, name: str | None = None) -> list[dict[str, Any]]:
    """The audit trail of experiment ``name`` (every experiment's when None), oldest first: each row one audited
    action with its ``experiment`` (name), ``experiment_id`` and whether that experiment was ``deleted`` since (a
    name deleted and run again has rows of each). A name with only deleted records lists those. The root of a
    lineage lists its re-tunes' promotions and rollbacks too (:data:`MODEL_CHANGES`): a cycle records its steps on the
    root, the model changes it makes on the re-tunes, and `audit ROOT` showed no rollback after two.

    Raises:
        ExperimentNotFound: no experiment, live or deleted, is called ``name``.
    """
    from tunesmith.errors import ExperimentNotFound

    deleted = store.deleted_experiments(name)
    try:
        live = [store.experiment(name)] if name is not None else store.experiments()
    except ExperimentNotFound:
        if not deleted:
            raise
        live = []
    rows = [{"experiment": e.name, "experiment_id": e.id, "deleted": False, **row}
            for e in live for row in entries(store.events(e.id))]
    if name is not None and live:
        rows += [{"experiment": e.name, "experiment_id": e.id, "deleted": False, **row}
                 for e in lineage_retunes(store, live[0]) for row in entries(store.events(e.id))
                 if row["kind"] in MODEL_CHANGES]
    rows += [{"experiment": d.name, "experiment_id": d.experiment_id, "deleted": True, **row}
             for d in deleted for row in deletion_entries(d)]
    rows.sort(key=lambda r: r["at"])
    return rows


class AuditListener(RunListener):
    """Records who started (or resumed) a run and how it ended, with the actor, in the experiment's event log; and
    the environment of its first run (Python, platform, packages, git commit, CPU/GPU) in its attributes."""

    records_the_run = True  # the audit trail is part of the record: a store that cannot take it stops the run

    def __init__(self, store: TrialStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def run_started(self, experiment: ExperimentRecord, history: list[TrialRecord], resumed: bool,
                    total_trials: int | None) -> None:
        record(self.store, experiment.id, AuditKind.RUN_RESUMED if resumed else AuditKind.RUN_STARTED, self.clock,
               detail={"trials_before": len(history)})
        if "environment" not in experiment.attributes:  # what the experiment first ran on
            from tunesmith.environment import capture

            self.store.set_attributes(experiment.id, {"environment": capture(experiment.spec.get("base_dir"))},
                                      self.clock.now())

    def run_finished(self, experiment: ExperimentRecord, trials: list[TrialRecord], stop_reason: str) -> None:
        from tunesmith.budget import run_stop  # (the budget's rules load the spec's models: only a run needs them)

        stop = run_stop(stop_reason)
        record(self.store, experiment.id, AuditKind.RUN_ENDED, self.clock, detail={
            "status": experiment.status.value, **({"stop": stop.value} if stop is not None else {})},
               reason=stop_reason)

