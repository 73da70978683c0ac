"""Tracking: the experiment and its trials mirrored into MLflow, live and as a backfill.

The API for the runner and the CLI (nothing here imports MLflow; the tracker does, when it first writes)::

    check_tracking_installed(spec)
        Raises TrackingUnavailable (bad input) when the spec has a ``tracking:`` section and MLflow is missing.

    check_tracking_destination(spec, store_url)
        Raises UserInputError when the spec's tracking URI names the store (or another tunesmith store).

    check_registry_installed(field, what)
        Raises TrackingUnavailable (bad input) when MLflow, whose model registry ``what`` needs, is missing.

    attach_tracking(spec, store, clock, listener) -> RunListener
        ``listener`` plus, when the spec has ``tracking: {mlflow: ...}``, a TrackingListener that writes the run
        to MLflow from a background thread. Without that section, ``listener`` itself: MLflow never loads.

    export_mlflow(store, name, clock, uri=None, *, on_trial, stopping) -> SyncResult
        Backfill: write what MLflow lacks of experiment ``name`` (idempotent), and record it as an event; told
        after each trial, it stops before the next one when ``stopping()`` says so.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from tunesmith.clock import Clock
from tunesmith.events import Listeners, RunListener
from tunesmith.extras import install_extra

if TYPE_CHECKING:
    from tunesmith.spec.model import ExperimentSpec
    from tunesmith.storage.base import TrialStore
    from tunesmith.tracking.mlflow_tracker import MlflowTracker, SyncResult


def tracker_for(spec: ExperimentSpec, uri: str | None = None) -> MlflowTracker:
    """The spec's MLflow tracker: ``uri`` (``--tracking-uri``), else the spec's ``tracking.mlflow.uri``, both read
    from the spec's folder; else ``$MLFLOW_TRACKING_URI``, as MLflow's own client and ``rollback`` read it, from the
    current folder; else ``sqlite:///mlflow.db`` in the spec's folder. Its ``field`` names where the URI came from,
    for errors about it."""
    from tunesmith.tracking.mlflow_tracker import MlflowTracker

    cfg = spec.tracking.mlflow if spec.tracking is not None else None
    given = uri or (cfg.uri if cfg else None)
    field = "--tracking-uri" if uri else "tracking.mlflow.uri" if given or not os.environ.get(
        "MLFLOW_TRACKING_URI") else "MLFLOW_TRACKING_URI"
    return MlflowTracker(registry_uri(given, spec.base_dir), (cfg.experiment if cfg else None) or spec.name, field)


def check_tracking_destination(spec: ExperimentSpec, store_url: str) -> None:
    """Refuse, before a run records anything (``run``, ``validate``; ``retune``, ``cycle`` and ``watch``, whose runs
    are tracked where their spec says), the spec's tracking URI where it names the store at ``store_url`` (made yet
    or not) or an SQLite file holding a tunesmith store: MLflow would write its tables into it. A database on a
    server is not reached here; the tracker looks into it before MLflow would.

    Raises:
        UserInputError: naming the field the URI came from and the fix.
    """
    if spec.tracking is None:
        return
    from tunesmith.tracking.destination import refuse_unusable_uri

    tracker = tracker_for(spec)
    refuse_unusable_uri(tracker.uri, tracker.field, store_url, reach_servers=False)


def registry_uri(given: str | None, base_dir: str | None) -> str:
    """The MLflow URI to use: ``given`` (a flag, a spec's field), read from ``base_dir``; else
    ``$MLFLOW_TRACKING_URI``, as MLflow's own client reads it, from the current folder; else
    ``sqlite:///mlflow.db`` in ``base_dir``. The one rule of ``promote``, ``rollback``, ``cycle`` and tracking."""
    from tunesmith.tracking.mlflow_tracker import resolve_uri

    from_env = None if given else os.environ.get("MLFLOW_TRACKING_URI") or None
    return resolve_uri(from_env, os.getcwd()) if from_env else resolve_uri(given, base_dir)


def check_tracking_installed(spec: ExperimentSpec) -> None:
    """Refuse a ``tracking:`` section when MLflow is not installed: bad input before anything is recorded, rather
    than a ``tracking_failed`` event once every trial has run. MLflow is looked up, not imported: importing it
    takes seconds, and the writer process does that.

    Raises:
        TrackingUnavailable: naming the section and the extra.
    """
    if spec.tracking is not None:
        _require_mlflow("tracking.mlflow: mirroring the run to MLflow needs MLflow, which is not installed",
                        " (or remove the tracking: section)")


def check_registry_installed(field: str, what: str) -> None:
    """Refuse, before any work, what would reach MLflow's model registry (promote, rollback, a cycle's promote
    step) when MLflow is not installed: it used to end in ``ModuleNotFoundError`` once the gates (or a cycle's
    re-tune) had run. Looked up, not imported (see :func:`check_tracking_installed`).

    Raises:
        TrackingUnavailable: naming ``field``, ``what`` needs the registry, and the extra.
    """
    _require_mlflow(f"{field}: {what} needs MLflow's model registry, and MLflow is not installed")


def _require_mlflow(problem: str, alternative: str = "") -> None:
    """Raise TrackingUnavailable saying ``problem``, the extra to install, then ``alternative``, where MLflow is not
    installed (looked up, not imported)."""
    if importlib.util.find_spec("mlflow") is None:
        from tunesmith.tracking.mlflow_tracker import TrackingUnavailable

        raise TrackingUnavailable(f"{problem}: {install_extra('mlflow')}{alternative}")


def attach_tracking(spec: ExperimentSpec, store: TrialStore, clock: Clock, listener: RunListener) -> RunListener:
    """``listener``, plus live MLflow tracking when the spec asks for it."""
    if spec.tracking is None:
        return listener
    from tunesmith.environment import capture
    from tunesmith.tracking.listener import TrackingListener

    from tunesmith.tracking.tracker_process import TrackerProcess

    def writer() -> TrackerProcess:
        tracker = tracker_for(spec)  # resolves the URI and the experiment name; MLflow loads in the child only
        return TrackerProcess(tracker.uri, tracker.experiment_name, tracker.field)

    tracking = TrackingListener(writer, store, clock, spec.tracking.mlflow.flush_timeout,
                                environment=lambda: capture(spec.base_dir))
    return Listeners(listener, tracking)  # which tells tracking where its warnings go (warn_through)


def export_mlflow(store: TrialStore, name: str, clock: Clock, uri: str | None = None, *,
                  on_trial: Callable[[int, int], None] = lambda done, total: None,
                  stopping: Callable[[], bool] = lambda: False) -> SyncResult:
    """Write experiment ``name`` to MLflow (only what is missing there) and record a ``tracking_exported`` event.
    ``on_trial(done, total)`` is told after each trial; ``stopping()``, asked before each, ends the export there
    (the result's ``left``: the trials not looked at; the event records it, and a later export continues).

    Raises:
        ExperimentNotFound: no such experiment.
        TrackingUnavailable: the MLflow extra is not installed.
    """
    from tunesmith.environment import capture
    from tunesmith.selection import best_trial
    from tunesmith.spec.loader import spec_from_dict

    experiment = store.experiment(name)
    spec = spec_from_dict(experiment.spec, recorded=True)
    tracker = tracker_for(spec, uri)
    trials = store.trials(experiment.id)
    result = tracker.sync(experiment, trials, best_trial(trials, spec.objectives), capture(spec.base_dir),
                          on_trial=lambda done: on_trial(done, len(trials)), stopping=stopping)
    from tunesmith import audit

    audit.record(store, experiment.id, audit.AuditKind.TRACKING_EXPORTED, clock, detail={
        "uri": _redacted(tracker.uri), "parent_run_id": result.parent_run_id, "written": result.written,
        "unchanged": result.unchanged, "left": result.left})
    return result


def _redacted(uri: str) -> str:
    from tunesmith.redaction import redact

    return redact(uri)


__all__ = ["attach_tracking", "check_registry_installed", "check_tracking_destination", "check_tracking_installed",
           "export_mlflow", "tracker_for"]
