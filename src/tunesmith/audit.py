"""The audit trail: who did what, when, from where, and why, appended to the store's event log.

Audit entries are ordinary store events (append-only: the store offers no update or delete of an event) whose
detail carries the actor: OS user, host, the command line (credentials redacted) and the reason given.
"""

from __future__ import annotations

import getpass
import socket
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tunesmith.clock import Clock
from tunesmith.redaction import redact_text

if TYPE_CHECKING:
    from tunesmith.storage.base import Event, TrialStore

AUDITED = ("run_created", "run_running", "run_completed", "run_interrupted", "run_failed", "promoted",
           "promotion_rejected", "promotion_dry_run", "rolled_back", "tracking_exported", "tracking_failed")


def actor() -> dict[str, str]:
    """The OS user, the host and the command line (redacted) of this process."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    return {"user": user, "host": socket.gethostname(), "command": redact_text(" ".join(sys.argv))}


def record(store: TrialStore, experiment_id: int, kind: str, clock: Clock, trial: int | None = None,
           detail: Mapping[str, Any] | None = None, reason: str | None = None) -> None:
    """Append an audited action (``kind``) with its actor and reason to experiment ``experiment_id``'s log."""
    store.record_event(experiment_id, kind, clock.now(), trial, {**(detail or {}), "actor": actor(),
                                                                  "reason": reason})


def entries(events: list[Event]) -> list[dict[str, Any]]:
    """The audited events among ``events``, as JSON-able rows (oldest first)."""
    return [{"id": e.id, "at": e.at, "kind": e.kind, "trial": e.trial_number, "detail": dict(e.payload)}
            for e in events if e.kind in AUDITED or "actor" in e.payload]
