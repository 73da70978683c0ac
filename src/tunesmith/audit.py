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
from tunesmith.events import RunListener
from tunesmith.records import ExperimentRecord, TrialRecord
from tunesmith.redaction import redact

if TYPE_CHECKING:
    from tunesmith.storage.base import Event, TrialStore

AUDITED = ("run_started", "run_resumed", "run_ended", "run_completed", "run_interrupted", "run_failed", "promoted",
           "promotion_already_champion", "promotion_rejected", "promotion_dry_run", "rolled_back", "tracking_exported",
           "tracking_failed", "trial_reproduced")

# Actions recorded after (or apart from) a run's loop: they never count as time the run spent (wall_time budget).
OUTSIDE_RUN_TIME = frozenset({"run_ended", "promoted", "promotion_already_champion", "promotion_rejected",
                              "promotion_dry_run", "rolled_back", "tracking_exported", "tracking_failed",
                              "trial_reproduced"})


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


def entries(events: list[Event]) -> list[dict[str, Any]]:
    """The audited events among ``events``, as JSON-able rows (oldest first)."""
    return [{"id": e.id, "at": e.at, "kind": e.kind, "trial": e.trial_number, "detail": dict(e.payload)}
            for e in events if e.kind in AUDITED or "actor" in e.payload]


class AuditListener(RunListener):
    """Records who started (or resumed) a run and how it ended, with the actor, in the experiment's event log; and
    the environment of its first run (Python, platform, packages, git commit, CPU/GPU) in its attributes."""

    records_the_run = True  # the audit trail is part of the record: a store that cannot take it stops the run

    def __init__(self, store: TrialStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def run_started(self, experiment: ExperimentRecord, history: list[TrialRecord], resumed: bool,
                    total_trials: int | None) -> None:
        record(self.store, experiment.id, "run_resumed" if resumed else "run_started", self.clock,
               detail={"trials_before": len(history)})
        if "environment" not in experiment.attributes:  # what the experiment first ran on
            from tunesmith.environment import capture

            self.store.set_attributes(experiment.id, {"environment": capture(experiment.spec.get("base_dir"))},
                                      self.clock.now())

    def run_finished(self, experiment: ExperimentRecord, trials: list[TrialRecord], stop_reason: str) -> None:
        record(self.store, experiment.id, "run_ended", self.clock, detail={"status": experiment.status.value},
               reason=stop_reason)
