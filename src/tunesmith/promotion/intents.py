"""A change of a registered model's champion, recorded in the store before it is made.

A promotion that registers a version, and a rollback, write their intent (``promotion_started``,
``rollback_started``) to the experiment's event log before they touch the registry, and their outcome after
(``promoted`` or ``promotion_abandoned``; ``rolled_back`` or ``rollback_abandoned``). Intent and outcome carry the
same token (payload ``intent``), and so does the registry: the version a promotion registers (tag
``tunesmith.promotion``) and the version a rollback demotes (tag ``tunesmith.rollback``). An intent without an
outcome is a change under way, or one killed partway; the registry then says how far it got
(:mod:`tunesmith.promotion.settling`), and until it has been read, ``delete`` counts it as a possible champion.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tunesmith import audit
from tunesmith.audit import AuditKind
from tunesmith.clock import Clock
from tunesmith.records import ExperimentRecord
from tunesmith.redaction import redact

if TYPE_CHECKING:
    from tunesmith.storage.base import TrialStore


class Change(enum.Enum):
    """What an intent is of, with the kinds of its events."""

    PROMOTION = "promotion"
    ROLLBACK = "rollback"

    @property
    def started(self) -> AuditKind:
        return AuditKind.PROMOTION_STARTED if self is Change.PROMOTION else AuditKind.ROLLBACK_STARTED

    @property
    def done(self) -> AuditKind:
        return AuditKind.PROMOTED if self is Change.PROMOTION else AuditKind.ROLLED_BACK

    @property
    def abandoned(self) -> AuditKind:
        return AuditKind.PROMOTION_ABANDONED if self is Change.PROMOTION else AuditKind.ROLLBACK_ABANDONED


_STARTED: dict[str, Change] = {c.started: c for c in Change}
_OUTCOMES: frozenset[str] = frozenset({k for c in Change for k in (c.done, c.abandoned)})


@dataclass(frozen=True)
class Intent:
    """An intent as recorded: ``detail`` is its event's payload (``champion_before`` for a promotion,
    ``from_version`` and ``to_version`` for a rollback; the actor, the reason); ``registry`` the registry's URI as
    recorded (redacted: a password in it is not kept)."""

    change: Change
    experiment: ExperimentRecord
    at: float
    token: str
    model_name: str
    registry: str
    trial: int | None
    detail: Mapping[str, Any]

    @property
    def reason(self) -> str | None:
        return self.detail.get("reason")


def begin(store: TrialStore, experiment: ExperimentRecord, change: Change, clock: Clock, model_name: str,
          registry_uri: str, trial: int | None = None, detail: Mapping[str, Any] | None = None,
          reason: str | None = None) -> Intent:
    """Record the intent of ``change`` of ``model_name`` on ``experiment``, before anything in the registry moves."""
    token = uuid.uuid4().hex
    payload = {"model_name": model_name, "intent": token, "registry": redact(registry_uri), **(detail or {})}
    at = clock.now()
    audit.record(store, experiment.id, change.started, clock, trial, payload, reason)
    return Intent(change, experiment, at, token, model_name, payload["registry"], trial,
                  {**payload, "reason": reason})


def record_outcome(store: TrialStore, intent: Intent, kind: AuditKind, clock: Clock,
                   detail: Mapping[str, Any] | None = None) -> None:
    """Record ``intent``'s outcome (``kind``, one of its change's), with its token, registry, trial and reason."""
    audit.record(store, intent.experiment.id, kind, clock, intent.trial,
                 {"model_name": intent.model_name, **(detail or {}), "intent": intent.token,
                  "registry": intent.registry}, intent.reason)


def unsettled(store: TrialStore, experiments: Iterable[ExperimentRecord] | None = None,
              model_name: str | None = None) -> list[Intent]:
    """The intents without an outcome in ``experiments``' event logs (every live experiment's when None), of
    ``model_name`` (of any model when None), oldest first."""
    found = []
    # one read of these kinds for every experiment, not every event of each experiment (its trials' among them)
    logs = store.events_of_kinds({*_STARTED, *_OUTCOMES})
    for experiment in store.experiments() if experiments is None else experiments:
        events = logs.get(experiment.id, [])
        done = {e.payload.get("intent") for e in events if e.kind in _OUTCOMES}
        for e in events:
            change = _STARTED.get(e.kind)
            token = e.payload.get("intent")
            if change is None or not token or token in done:
                continue
            if model_name is not None and e.payload.get("model_name") != model_name:
                continue
            found.append(Intent(change, experiment, e.at, str(token), str(e.payload.get("model_name")),
                                str(e.payload.get("registry") or ""), e.trial_number, dict(e.payload)))
    return sorted(found, key=lambda i: i.at)


__all__ = ["Change", "Intent", "begin", "record_outcome", "unsettled"]
