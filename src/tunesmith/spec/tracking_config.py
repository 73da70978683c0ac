"""The ``tracking:`` section of a spec: where a run is mirrored for people to look at (MLflow).

Example::

    tracking:
      mlflow: {uri: sqlite:///mlflow.db, experiment: churn-tuning}

A relative ``sqlite:///`` path is read from the spec's folder (as data paths are), so ``run``, ``resume``,
``export`` and ``promote`` find the same database wherever they are started. Without ``uri``: MLflow's own
default, ``sqlite:///mlflow.db``, in the spec's folder. Without ``experiment``: the tunesmith experiment's name.
"""

from __future__ import annotations

import os
import re

from pydantic import Field, field_validator

from tunesmith.strict_model import StrictFloat, StrictModel
from tunesmith.suggestions import closest

# The schemes MLflow 3's own tracking stores take (a database's with a driver too: postgresql+psycopg). Another
# scheme may be a plugin's, and is left to MLflow; one a letter away from these is a typo (htp://), refused here,
# where MLflow refused it only after every trial had run, as a warning.
MLFLOW_SCHEMES = ("http", "https", "databricks", "databricks-uc", "uc", "sqlite", "postgresql", "mysql", "mssql")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


class MlflowTrackingConfig(StrictModel):
    uri: str | None = Field(default=None, description="MLflow tracking URI (default sqlite:///mlflow.db)")

    @field_validator("uri")
    @classmethod
    def _a_store_mlflow_takes(cls, uri: str | None) -> str | None:
        if uri is not None and (fault := mlflow_store_fault(uri)):
            raise ValueError(fault)
        return uri
    experiment: str | None = Field(default=None, description="MLflow experiment name (default: the spec's name)")
    flush_timeout: StrictFloat = Field(default=60.0, ge=0, description="seconds the end of a run waits for the export")


def mlflow_store_fault(uri: str) -> str | None:
    """Why MLflow would refuse ``uri`` (a spec's ``tracking.mlflow.uri``, ``--tracking-uri``), said before it runs;
    None where it may take it."""
    found = _SCHEME.match(uri)
    if found:
        scheme = found[1].lower().partition("+")[0]
    else:  # a path, a file: URI, or a scheme's name alone (databricks: the default profile)
        scheme = "file" if uri.startswith("file:") else uri.lower() if uri.lower() in MLFLOW_SCHEMES else ""
    if scheme in ("", "file") and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() not in ("true", "1"):
        database = uri if scheme == "" and uri.endswith((".db", ".sqlite", ".sqlite3")) else "mlflow.db"
        return ("a folder is MLflow's file store, which MLflow 3 refuses (maintenance mode): use a database, e.g. "
                f"sqlite:///{database} (read from the spec's folder), or a tracking server's http(s):// address; or "
                "set MLFLOW_ALLOW_FILE_STORE=true where tunesmith runs")
    if scheme not in ("", "file", *MLFLOW_SCHEMES) and (close := closest(scheme, MLFLOW_SCHEMES, loose=False)):
        return f"no MLflow store has the scheme {scheme}://; did you mean {close}://?"
    return None


class TrackingConfig(StrictModel):
    mlflow: MlflowTrackingConfig = Field(default_factory=MlflowTrackingConfig)
