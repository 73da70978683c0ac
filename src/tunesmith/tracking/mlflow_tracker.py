"""Mirror an experiment into MLflow: one parent run per experiment, one nested child run per trial.

This module and :mod:`tunesmith.tracking.model_registry` are the only ones importing ``mlflow``, and only when a
tracker is used. Everything goes through :class:`mlflow.MlflowClient` with explicit run ids (no "active run"
state), so a background thread can log while the main thread tunes.

Runs are found again by their tags (``tunesmith.experiment``, ``tunesmith.created_at``, ``tunesmith.trial``), so
writing the same experiment twice creates no second run: a trial whose ``tunesmith.synced`` tag already says what
the store says is skipped. The store stays the source of truth; MLflow is a view of it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunesmith.errors import UserInputError
from tunesmith.extras import install_extra
from tunesmith.records import ExperimentRecord, RunStatus, TrialRecord, TrialState
from tunesmith.redaction import redact, spec_secrets_hidden

if TYPE_CHECKING:
    from sqlalchemy.exc import SQLAlchemyError

MODEL_FOLDER = "model"          # a trial's model (trial.save_model, or a command trial's model/ folder)
_RUN_STATUS = {TrialState.COMPLETED: "FINISHED", TrialState.PRUNED: "KILLED", TrialState.FAILED: "FAILED",
               TrialState.RUNNING: "RUNNING", TrialState.QUEUED: "SCHEDULED", TrialState.LOST: "KILLED",
               TrialState.INTERRUPTED: "KILLED"}
_EXPERIMENT_STATUS = {RunStatus.COMPLETED: "FINISHED", RunStatus.FAILED: "FAILED", RunStatus.INTERRUPTED: "KILLED",
                      RunStatus.RUNNING: "RUNNING", RunStatus.CREATED: "SCHEDULED"}


class TrackingUnavailable(UserInputError):
    """The MLflow extra is not installed."""


def import_mlflow() -> Any:
    """``mlflow``, or one clear message naming the extra."""
    # A tracking server that is down must fail a request in seconds, not after MLflow's default of 7 retries with
    # backoff: tracking gives up and `tunesmith export mlflow` retries later. A user's own setting wins.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    try:
        import mlflow
    except ImportError:
        raise TrackingUnavailable(f"MLflow is not installed; {install_extra('mlflow')}") from None
    # MLflow's SQL store uses a loader strategy SQLAlchemy 2.1 deprecates; harmless, and not ours to fix.
    warnings.filterwarnings("ignore", message=".*noload.* loader strategy is deprecated")
    warnings.filterwarnings("ignore", message=".*Any type hint is inferred as AnyType")  # MLflow's own, on import
    _quiet_info_logging()
    return mlflow


def _quiet_info_logging() -> None:
    """MLflow's and alembic's INFO lines ("Creating initial MLflow database tables...", "Updating database tables",
    migration steps) raised to WARNING: printed by MLflow's own stderr handler between tunesmith's lines (`cycle
    -m`, `promote` on a new tracking database), they read as tunesmith's output and say nothing to act on. Their
    warnings and errors still show. A level chosen otherwise is kept: MLFLOW_LOGGING_LEVEL (MLflow reads it as it is
    imported), or a logger set to anything but INFO (MLflow's default) or unset."""
    if os.environ.get("MLFLOW_LOGGING_LEVEL"):
        return
    for name in ("mlflow", "alembic"):
        logger = logging.getLogger(name)
        if logger.level in (logging.NOTSET, logging.INFO):
            logger.setLevel(logging.WARNING)


def mlflow_client(uri: str, field: str) -> Any:
    """MLflow's client for ``uri`` (tracking and registry), from ``field`` (``--tracking-uri``...), once the URI is
    known not to name a tunesmith store (MLflow migrates its schema into the database on this first touch). What
    MLflow, or the database driver under it, raises for a URI it cannot use is bad input naming ``field``, not a
    traceback.

    Raises:
        UserInputError: the URI names a tunesmith store, or MLflow cannot use it.
        StoreUnavailable: no database server answers at its host and port (exit 75, as for the store's).
    """
    from tunesmith.tracking.destination import refuse_unusable_uri

    refuse_unusable_uri(uri, field)
    mlflow = import_mlflow()
    from mlflow.exceptions import MlflowException
    from mlflow.tracking.registry import UnsupportedModelRegistryStoreURIException
    from sqlalchemy.exc import SQLAlchemyError

    shown = redact(uri)
    try:
        return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    except UnsupportedModelRegistryStoreURIException:
        raise UserInputError(f"{field}: {shown}: no MLflow store takes this scheme (MLflow's own: sqlite, "
                             "postgresql, mysql, mssql, http, https, databricks; another is a plugin's, not installed "
                             f"here); use a database, e.g. sqlite:///mlflow.db, or a tracking server's http(s):// "
                             "address") from None
    except MlflowException as e:
        raise UserInputError(f"{field}: MLflow cannot use {shown}: {_first_sentence(e.message)}; use a database, "
                             "e.g. sqlite:///mlflow.db, or a tracking server's http(s):// address") from None
    except ModuleNotFoundError as e:
        raise UserInputError(f"{field}: {shown}: MLflow needs the Python module {e.name!r} for it, which is not "
                             "installed; install it, or use sqlite:///mlflow.db") from None
    except SQLAlchemyError as e:
        raise _database_error(e, uri, shown, field) from None


def _database_error(e: SQLAlchemyError, uri: str, shown: str, field: str) -> Exception:
    """What MLflow's database failing to open means, as the store's opening says it of the store's (a host that
    does not exist, a refused login, no server answering: exit 75); ``e`` itself where that is a failing store."""
    from sqlalchemy.engine import make_url

    from tunesmith.errors import TemporaryFailure
    from tunesmith.storage.opening import opening_error

    said = opening_error(e, make_url(uri), shown, field)
    return said if isinstance(said, UserInputError | TemporaryFailure) else e


def _first_sentence(text: str) -> str:
    return text.strip().split(". ")[0].rstrip(".")


def resolve_uri(uri: str | None, base_dir: str | None) -> str:
    """The tracking URI with a relative ``sqlite:///`` path made absolute against ``base_dir`` (default URI:
    MLflow's own, ``sqlite:///mlflow.db``)."""
    uri = uri or "sqlite:///mlflow.db"
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/") and uri[len(prefix):] != ":memory:":
        uri = prefix + os.path.abspath(os.path.join(base_dir or ".", uri[len(prefix):]))
    return uri


def artifact_root_for(uri: str) -> str | None:
    """Where a new MLflow experiment keeps artifacts: beside a SQLite database; the server decides otherwise."""
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):]).parent.joinpath("mlartifacts").as_uri()
    return None


@dataclass(frozen=True)
class SyncResult:
    parent_run_id: str
    written: int      # trial runs created or updated
    unchanged: int    # trial runs already up to date
    left: int = 0     # trials not looked at: the sync was asked to stop before them (the parent run ended KILLED)

    @property
    def stopped(self) -> bool:
        return self.left > 0


class MlflowTracker:
    """Writes tunesmith records into one MLflow experiment (created on first use)."""

    def __init__(self, uri: str, experiment_name: str, field: str = "tracking.mlflow.uri") -> None:
        self.uri = uri
        self.experiment_name = experiment_name
        self.field = field  # where the URI came from (--tracking-uri...), for errors about it
        self._client: Any = None
        self._experiment_id: str | None = None
        self._children: dict[str, dict[int, tuple[str, str]]] = {}  # parent run -> trial -> (run id, synced)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = mlflow_client(self.uri, self.field)
        return self._client

    def experiment_id(self) -> str:
        if self._experiment_id is None:
            found = self.client.get_experiment_by_name(self.experiment_name)
            if found is not None:
                self._experiment_id = str(found.experiment_id)
            else:
                self._experiment_id = str(self.client.create_experiment(
                    self.experiment_name, artifact_location=artifact_root_for(self.uri)))
        return self._experiment_id

    def _terminated(self, run_id: str, status: str, end_time: int | None = None) -> None:
        """End run ``run_id`` with ``status``. On a tracking server MLflow prints the run's and the experiment's
        addresses as it does ("View run ... at: http://..."), on stdout: `cycle --json` and `watch --json` printed
        them before their JSON, which no longer parsed. They go to stderr, where a person still sees them. (stdout is
        swapped for the call: a tracker works in one thread of its process, the command's or the writer process's.)"""
        with contextlib.redirect_stdout(sys.stderr):
            self.client.set_terminated(run_id, status=status, end_time=end_time)

    # -- the parent run ----------------------------------------------------------------------------------------
    def parent_run(self, experiment: ExperimentRecord, environment: Mapping[str, Any] | None = None) -> str:
        """The experiment's parent run id: found by its tags, else created with the spec, strategy, seed, data
        fingerprint and environment."""
        filter_string = (f"tags.`tunesmith.experiment` = '{_quote(experiment.name)}' AND "
                         f"tags.`tunesmith.created_at` = '{experiment.created_at!r}' AND "
                         "tags.`tunesmith.kind` = 'experiment'")
        runs = self.client.search_runs([self.experiment_id()], filter_string=filter_string, max_results=1)
        if runs:
            return str(runs[0].info.run_id)
        spec, shown = experiment.spec, spec_secrets_hidden(experiment.spec)  # (shown: the spec and its tags exported)
        fingerprint = experiment.attributes.get("data_fingerprint") or {}
        tags = {"tunesmith.experiment": experiment.name, "tunesmith.created_at": repr(experiment.created_at),
                "tunesmith.kind": "experiment", "tunesmith.strategy": experiment.strategy or "",
                "tunesmith.strategy_reason": (experiment.strategy_reason or "")[:4900],
                "tunesmith.seed": str(spec.get("seed")),
                **{f"tunesmith.tag.{k}": redact(str(v)) for k, v in (shown.get("tags") or {}).items()}}
        if fingerprint.get("content_hash"):
            tags["tunesmith.data_hash"] = str(fingerprint["content_hash"])
        run = self.client.create_run(self.experiment_id(), run_name=experiment.name, tags=tags,
                                     start_time=int(experiment.created_at * 1000))
        run_id = str(run.info.run_id)
        from mlflow.entities import Param

        params = [Param("strategy", experiment.strategy or ""), Param("seed", str(spec.get("seed"))),
                  Param("objective", json.dumps(spec.get("objective"))),
                  Param("budget", json.dumps(spec.get("budget")))]
        self.client.log_batch(run_id, params=params)
        self.client.log_dict(run_id, shown, "tunesmith/spec.json")
        if fingerprint:
            self.client.log_dict(run_id, dict(fingerprint), "tunesmith/data_fingerprint.json")
        if environment:
            self.client.log_dict(run_id, dict(environment), "tunesmith/environment.json")
        return run_id

    def finish_parent(self, run_id: str, experiment: ExperimentRecord, best: TrialRecord | None) -> None:
        """The run's end: status, best values, holdout and nested scores as the parent's metrics."""
        from mlflow.entities import Metric, RunTag

        now = int(experiment.updated_at * 1000)
        metrics = []
        objectives = [o["metric"] for o in _objectives(experiment.spec)]
        if best is not None and best.values is not None:
            metrics += [Metric(f"best_{m}", v, now, 0) for m, v in zip(objectives, best.values, strict=True)
                        if math.isfinite(v)]
        for section in ("holdout", "nested"):
            for k, v in (experiment.attributes.get(section) or {}).items():
                if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                    metrics.append(Metric(k if k.startswith(section) else f"{section}_{k}", float(v), now, 0))
        tags = [RunTag("tunesmith.status", experiment.status.value)]
        if best is not None:
            tags.append(RunTag("tunesmith.best_trial", str(best.number)))
        self.client.log_batch(run_id, metrics=metrics, tags=tags)
        status = _EXPERIMENT_STATUS[experiment.status]
        if status != "RUNNING":
            self._terminated(run_id, status, now)

    # -- child runs ----------------------------------------------------------------------------------------------
    def child_runs(self, parent_run_id: str) -> dict[int, tuple[str, str]]:
        """Trial number -> (run id, synced marker) of the parent's children (read once, then kept up to date)."""
        if parent_run_id not in self._children:
            found: dict[int, tuple[str, str]] = {}
            token = None
            while True:
                page = self.client.search_runs([self.experiment_id()],
                                               filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
                                               max_results=1000, page_token=token)
                for run in page:
                    number = run.data.tags.get("tunesmith.trial")
                    if number is not None:
                        found[int(number)] = (str(run.info.run_id), run.data.tags.get("tunesmith.synced", ""))
                token = page.token
                if not token:
                    break
            self._children[parent_run_id] = found
        return self._children[parent_run_id]

    def sync_trial(self, parent_run_id: str, experiment: ExperimentRecord, trial: TrialRecord) -> bool:
        """Create or update the trial's child run; False when it already says what the store says."""
        from mlflow.entities import Metric, Param, RunTag

        children = self.child_runs(parent_run_id)
        marker = synced_marker(trial)
        known = children.get(trial.number)
        if known is not None and known[1] == marker:
            return False
        tags = {"mlflow.parentRunId": parent_run_id, "tunesmith.experiment": experiment.name,
                "tunesmith.created_at": repr(experiment.created_at), "tunesmith.kind": "trial",
                "tunesmith.trial": str(trial.number)}
        if known is None:
            start = int((trial.started_at or experiment.created_at) * 1000)
            run_name = f"{experiment.name}-trial-{trial.number}"
            run_id = str(self.client.create_run(self.experiment_id(), run_name=run_name, tags=tags,
                                                start_time=start).info.run_id)
        else:
            run_id = known[0]
        at = int((trial.finished_at or trial.started_at or experiment.created_at) * 1000)
        metrics = [Metric(k, float(v), at, 0) for k, v in _final_metrics(experiment, trial).items()]
        first = _objectives(experiment.spec)[0]["metric"]
        metrics += [Metric(f"intermediate/{first}", r.value, at, r.step) for r in trial.intermediate
                    if math.isfinite(r.value)]
        params = [Param(k, _param_text(v)) for k, v in trial.params.items()]
        run_tags = [RunTag("tunesmith.state", trial.state.value), RunTag("tunesmith.seed", str(trial.seed)),
                    RunTag("tunesmith.attempts", str(trial.attempts)),
                    RunTag("tunesmith.failure", redact(trial.error or "")[:4900]),
                    RunTag("tunesmith.failure_kind", trial.failure_kind.value if trial.failure_kind else "")]
        for i in range(0, max(len(metrics), 1), 900):  # MLflow takes at most 1000 metrics per batch
            self.client.log_batch(run_id, metrics=metrics[i:i + 900], params=params if i == 0 else [],
                                  tags=run_tags if i == 0 else [])
        if trial.log_path and os.path.isfile(trial.log_path):
            self.client.log_artifact(run_id, trial.log_path, "tunesmith")
        model_dir = Path(trial.log_path or "").parent / MODEL_FOLDER
        if trial.log_path and model_dir.is_dir() and any(model_dir.iterdir()):
            self.client.log_artifacts(run_id, str(model_dir), MODEL_FOLDER)
        status = _RUN_STATUS[trial.state]
        if trial.state.is_finished() or status == "KILLED":
            self._terminated(run_id, status, at)
        self.client.set_tag(run_id, "tunesmith.synced", marker)  # last: a half-written run is redone next time
        children[trial.number] = (run_id, marker)
        return True

    def sync(self, experiment: ExperimentRecord, trials: list[TrialRecord], best: TrialRecord | None,
             environment: Mapping[str, Any] | None = None, *, on_trial: Callable[[int], None] = lambda done: None,
             stopping: Callable[[], bool] = lambda: False) -> SyncResult:
        """Bring MLflow up to the store: the parent run, every trial, the end of the run. ``on_trial(done)`` is
        told after each trial. ``stopping()``, asked before each, ends the sync there (``stopped``), and a
        KeyboardInterrupt ends it at once: either way the parent run ends KILLED, not left RUNNING, and a later
        sync finds it by its tags, writes what is missing and ends it as the experiment ended."""
        parent = self.parent_run(experiment, environment)
        written = done = 0
        try:
            for trial in trials:
                if stopping():
                    self._terminated(parent, "KILLED")
                    return SyncResult(parent, written, done - written, left=len(trials) - done)
                written += self.sync_trial(parent, experiment, trial)
                done += 1
                on_trial(done)
        except KeyboardInterrupt:
            self._terminated(parent, "KILLED")
            raise
        self.finish_parent(parent, experiment, best)
        return SyncResult(parent, written, done - written)

    def trial_run_id(self, experiment: ExperimentRecord, number: int) -> str | None:
        parent = self.parent_run(experiment)
        known = self.child_runs(parent).get(number)
        return known[0] if known else None


def synced_marker(trial: TrialRecord) -> str:
    """What a child run last received: a run whose marker matches the store needs no write."""
    return f"{trial.state.value}|{trial.attempts}|{len(trial.intermediate)}|{trial.finished_at!r}"


def _objectives(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    obj = spec.get("objective")
    return list(obj) if isinstance(obj, list | tuple) else [obj]  # type: ignore[list-item]


def _final_metrics(experiment: ExperimentRecord, trial: TrialRecord) -> dict[str, float]:
    out = {k: float(v) for k, v in trial.metrics.items()
           if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}
    if trial.values is not None:
        for o, v in zip(_objectives(experiment.spec), trial.values, strict=False):
            if math.isfinite(v):
                out[o["metric"]] = float(v)
    if trial.duration_s is not None:
        out["duration_s"] = float(trial.duration_s)
    return out


def _param_text(v: object) -> str:
    return json.dumps(v) if v is None or isinstance(v, bool) else str(v)


def _quote(text: str) -> str:
    return text.replace("'", "\\'")
