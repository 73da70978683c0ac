"""MLflow for tests: a real SQLite-backed tracking store in a temp folder, no server.

MLflow builds its schema on the first touch of a database (seconds, many more on a loaded machine), so one
migrated database is made per test session and each test gets a fresh copy.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def require_mlflow() -> None:
    try:
        import mlflow  # noqa: F401
        import skops  # noqa: F401
    except ImportError:
        pytest.skip("MLflow tests need the mlflow extra: pip install 'tunesmith[mlflow]'")


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_mlflow()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()  # creates and migrates the schema
    return db


@pytest.fixture
def mlflow_uri(mlflow_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, migrated MLflow database for one test: ``sqlite:////abs/path/mlflow.db``."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    target = tmp_path / "mlflow.db"
    shutil.copy(mlflow_template, target)
    return f"sqlite:///{target}"
