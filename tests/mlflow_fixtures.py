"""MLflow for tests: a real SQLite-backed tracking store in a temp folder, no server.

MLflow builds its schema on the first touch of a database (seconds, many more on a loaded machine), so one
migrated database is made per test session and each test gets a fresh copy.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def mlflow_server(mlflow_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow tracking server (`mlflow server`, HTTP on 127.0.0.1, artifacts proxied) over a copy of the
    migrated database, for what MLflow does only through its REST store (it prints each ended run's address on
    stdout); its address, ``http://127.0.0.1:PORT``. Started once per session: 10-40 s on this box."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    shutil.copy(mlflow_template, folder / "mlflow.db")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    log = (folder / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
         "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    address = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while not _answers(f"{address}/health"):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(folder / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield address
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # its own session: the server and the workers it started
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(30)
        log.close()


def _answers(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _without(package: str) -> str:
    """sitecustomize code, loaded at interpreter start (site imports sitecustomize from PYTHONPATH): the path finder
    no longer finds ``package``, so importing it raises ModuleNotFoundError and importlib.util.find_spec is None for
    it, as where it is not installed."""
    return f"""
import sys
from importlib.machinery import PathFinder


class _PathFinderWithout(PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        return None if name.partition(".")[0] == {package!r} else super().find_spec(name, path, target)


sys.meta_path[sys.meta_path.index(PathFinder)] = _PathFinderWithout
"""


WITHOUT_MLFLOW = _without("mlflow")


def without_torch(folder: Path, then: str = "") -> dict[str, str]:
    """Environment variables for a subprocess that runs as the mlflow extra installed without the gp extra's torch
    (which is installed here, for the gp strategy's tests): ``PYTHONPATH`` with ``folder``, whose ``sitecustomize``
    hides torch, then runs ``then`` (a fault to inject). A process that promotes imports skops, which walks
    scikit-learn's packages as it loads; scikit-learn's torch wrapper among them imports torch: 1.5-2.5 CPU-s a
    process for a package no cycle uses."""
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(_without("torch") + then)
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)}


@pytest.fixture(scope="session")
def without_mlflow(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment variables for a subprocess that runs as if the mlflow extra were not installed (MLflow is
    installed here): ``PYTHONPATH`` with a folder whose ``sitecustomize`` hides it."""
    hider = tmp_path_factory.mktemp("without-mlflow")
    (hider / "sitecustomize.py").write_text(WITHOUT_MLFLOW)
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(hider), os.environ.get("PYTHONPATH")) if p)}
    check = subprocess.run([sys.executable, "-c", "import importlib.util; print(importlib.util.find_spec('mlflow'))"],
                           env={**os.environ, **env}, capture_output=True, text=True, check=True)
    assert check.stdout.strip() == "None"  # the simulation holds
    return env
