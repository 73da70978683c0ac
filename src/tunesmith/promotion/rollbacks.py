"""Whether a candidate's own model was rolled back: a rollback is sticky, so ``promote`` refuses that trial (gate
``rolled_back``) until asked for with ``--even-if-rolled-back``.

"Its own model" is the trial's (same experiment, same trial) as last registered to the model name: promoted again
since (with the flag), the rollback no longer stands against it. A re-tune is a new experiment, so its trials are
other models, whatever their params.

Two sources, one answer: the registry (the version's ``tunesmith.rolled_back`` tag, which a rollback writes whatever
store it ran with), and, where nothing reads the registry (a ``--dry-run`` without ``beat_champion``), the store's
audit trail (the experiment's ``promoted`` and ``rolled_back`` events).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tunesmith.audit import AuditKind
from tunesmith.promotion.gates import RolledBack
from tunesmith.promotion.version_tags import ABANDONED_TAG
from tunesmith.records import ExperimentRecord

if TYPE_CHECKING:
    from tunesmith.storage.base import Event, TrialStore
    from tunesmith.tracking.model_registry import ModelVersion

ROLLED_BACK_TAG = "tunesmith.rolled_back"  # on a version rollback demoted: the reason
ROLLED_BACK_AT_TAG = "tunesmith.rolled_back_at"  # and when (seconds since the epoch)
ROLLED_BACK_TO_TAG = "tunesmith.rolled_back_to"  # and the version it restored
ROLLBACK_TAG = "tunesmith.rollback"  # and the rollback's token (its rollback_started event's, where a store has one)
ROLLBACK_HOLDS_TAG = "tunesmith.rollback_holds"  # "1": a rollback of a release that holds the cycles (rollback_hold)


def from_registry(store: TrialStore, experiment: ExperimentRecord, model_name: str,
                  trial_versions: Sequence[ModelVersion]) -> RolledBack | None:
    """The rollback of the last of ``trial_versions`` (the trial's versions of ``model_name``, oldest first), if it
    was rolled back. When: its tag, else (a rollback by an older tunesmith) the store's ``rolled_back`` event. A
    version whose promotion was interrupted before it became champion (tag ``tunesmith.abandoned``) never served:
    read past, or a ``--even-if-rolled-back`` killed after registering lifted the rollback for good. A rollback mark
    wins over that tag: a version rolled back served (settled by an older tunesmith, it was tagged both)."""
    trial_versions = [v for v in trial_versions if ABANDONED_TAG not in v.tags or ROLLED_BACK_TAG in v.tags]
    if not trial_versions or (reason := trial_versions[-1].tags.get(ROLLED_BACK_TAG)) is None:
        return None
    version = trial_versions[-1].version
    at = trial_versions[-1].tags.get(ROLLED_BACK_AT_TAG)
    if at is None:
        event = next((e for e in reversed(store.events(experiment.id)) if _demoted(e, model_name) == version), None)
        return RolledBack(model_name, version, reason, event.at if event is not None else None)
    try:
        return RolledBack(model_name, version, reason, float(at))
    except ValueError:  # a tag edited by hand: the rollback still stands
        return RolledBack(model_name, version, reason, None)


def from_audit_trail(store: TrialStore, experiment: ExperimentRecord, model_name: str,
                     trial: int) -> RolledBack | None:
    """The same, from the experiment's events: the version last promoted from ``trial``, if a rollback demoted it
    afterwards (a rollback run with another store is not in this one's trail; the registry knows it)."""
    latest: tuple[str, Event | None] | None = None
    for event in store.events(experiment.id):
        if (event.kind == AuditKind.PROMOTED and event.payload.get("model_name") == model_name
                and event.trial_number == trial and event.payload.get("version")):
            latest = (str(event.payload["version"]), None)
        elif latest is not None and _demoted(event, model_name) == latest[0]:
            latest = (latest[0], event)
    if latest is None or latest[1] is None:
        return None
    return RolledBack(model_name, latest[0], str(latest[1].payload.get("reason") or ""), latest[1].at)


def _demoted(event: Event, model_name: str) -> str | None:
    """The version a ``rolled_back`` event of ``model_name`` demoted (None: another event)."""
    if event.kind != AuditKind.ROLLED_BACK or event.payload.get("model_name") != model_name:
        return None
    return str(event.payload.get("from_version"))


__all__ = ["ROLLBACK_TAG", "ROLLED_BACK_AT_TAG", "ROLLED_BACK_TAG", "ROLLED_BACK_TO_TAG", "from_audit_trail",
           "from_registry"]
