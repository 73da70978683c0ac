"""The ``tracking:`` section of a spec: where a run is mirrored for people to look at (MLflow).

Example::

    tracking:
      mlflow: {uri: sqlite:///mlflow.db, experiment: churn-tuning}

A relative ``sqlite:///`` path is read from the spec's folder (as data paths are), so ``run``, ``resume``,
``export`` and ``promote`` find the same database wherever they are started. Without ``uri``: MLflow's own
default, ``sqlite:///mlflow.db``, in the spec's folder. Without ``experiment``: the tunesmith experiment's name.
"""

from __future__ import annotations

from pydantic import Field

from tunesmith.strict_model import StrictFloat, StrictModel


class MlflowTrackingConfig(StrictModel):
    uri: str | None = Field(default=None, description="MLflow tracking URI (default sqlite:///mlflow.db)")
    experiment: str | None = Field(default=None, description="MLflow experiment name (default: the spec's name)")
    flush_timeout: StrictFloat = Field(default=60.0, ge=0, description="seconds the end of a run waits for the export")


class TrackingConfig(StrictModel):
    mlflow: MlflowTrackingConfig = Field(default_factory=MlflowTrackingConfig)
