"""Shared fixtures: a project folder with a spec and trial code, a store, the CLI as a real subprocess.

PostgreSQL: tests marked ``postgres`` use ``TUNESMITH_TEST_POSTGRES_URL`` (a server URL; a database is created
and dropped per test session) or 127.0.0.1:5432 as user postgres; they skip, saying so, when none answers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

# One thread per numeric library in every process of the suite (this one, its CLIs and their workers), set before
# numpy loads: two pytest workers on two cores, each library's threads one per CPU, and OpenBLAS's spinning threads
# made scikit-learn fits cost up to 14 times the CPU (an iris LogisticRegression: 71 ms of CPU, 5 ms on one thread).
# Set here, the product's own sharing among trial workers (tests/test_thread_share.py) sees a user's choice and
# leaves it; a variable already set outside the suite is kept.
for _threads in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                 "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C as a terminal delivers it, whatever shell started the suite. A shell that ignores SIGINT (`trap ''
    INT`; a script's background job, `nohup make test &` in one) hands the ignoring on to every process it starts,
    through exec: the CLI under test then rightly keeps it ignored (stop_signals: the launcher's choice), so a
    test's Ctrl-C never arrived and the test hung to its timeout. Handled here (Python's own handler), SIGINT is
    reset to its default at each exec, so the processes the tests start take Ctrl-C as from a terminal, and the
    tests that send it to this very process get their KeyboardInterrupt."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # The same for SIGHUP under `nohup make test`: the CLIs the tests hang up on inherited the ignoring, and nine
    # SIGHUP tests failed (two waited 60 s each). A handler that does nothing keeps this process deaf to a hang-up,
    # as nohup asked, and is reset to the default at each exec, so the processes under test hear theirs.
    if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
        signal.signal(signal.SIGHUP, lambda signum, frame: None)


# Trial functions used across tests; written into each test's project folder as `objectives.py`.
OBJECTIVES = '''
import math, os, signal, time

def quadratic(config, trial):
    x = config["x"]
    return (x - 0.3) ** 2

def with_metrics(config, trial):
    return {"loss": (config["x"] - 0.3) ** 2, "extra": 1.5}

def conditional(config, trial):
    if config["kind"] == "a":
        return config["a_val"]
    return config["b_val"] / 10

def reporting(config, trial):
    for step in range(5):
        trial.report(step, config["x"] * step)
    return config["x"]

def two_objectives(config, trial):
    x = config["x"]
    return {"f1": x ** 2, "f2": (x - 1) ** 2}

def slow(config, trial):
    time.sleep(float(os.environ.get("SLOW_SECONDS", "30")))
    return 1.0

def raises(config, trial):
    raise ValueError("bad config " + str(config["x"]))

def returns_nan(config, trial):
    return float("nan")

def segfault(config, trial):
    os.kill(os.getpid(), signal.SIGSEGV)

def noop(config, trial):
    return 0.0
'''


@dataclass
class Project:
    """A temporary project folder: ``objectives.py``, specs written on demand, a SQLite store."""

    root: Path

    @property
    def db(self) -> Path:
        return self.root / "tunesmith.db"

    @property
    def storage(self) -> str:
        return f"sqlite:///{self.db}"

    def spec(self, name: str = "exp", **overrides: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "name": name,
            "objective": {"metric": "loss", "direction": "minimize"},
            "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
            "strategy": "random",
            "budget": {"trials": 6},
            "executor": {"kind": "process", "workers": 2},
            "trial": {"function": "objectives:quadratic"},
            "seed": 1,
        }
        spec.update(overrides)
        return spec

    def write_spec(self, spec: dict[str, Any], filename: str | None = None) -> Path:
        path = self.root / (filename or f"{spec.get('name', 'spec')}.yaml")
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return path

    def write(self, relpath: str, text: str) -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def cli(self, *args: str, timeout: float = 120, env: dict[str, str] | None = None,
            check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run `tunesmith ARGS` as a user would, in the project folder."""
        full_env = {**os.environ, "TUNESMITH_STORAGE": self.storage, "COLUMNS": "200", **(env or {})}
        proc = subprocess.run([sys.executable, "-m", "tunesmith.cli", *args], cwd=self.root, env=full_env,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"tunesmith {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    # Read-backs: `show`/`trials --json` run in this process (helpers.cli_json_in_process), the command's own code,
    # where a subprocess costs ~0.6 s of CPU; tests about the commands themselves call cli().
    def show(self, name: str) -> dict[str, Any]:
        from helpers import cli_json_in_process

        return cli_json_in_process("show", name, "--storage", self.storage)  # type: ignore[return-value]

    def trials(self, name: str) -> list[dict[str, Any]]:
        from helpers import cli_json_in_process

        return cli_json_in_process("trials", name, "--storage", self.storage)  # type: ignore[return-value]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    (tmp_path / "objectives.py").write_text(OBJECTIVES)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TUNESMITH_STORAGE", f"sqlite:///{tmp_path / 'tunesmith.db'}")
    return Project(tmp_path)


def _postgres_server_url() -> str:
    return os.environ.get("TUNESMITH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """A reachable PostgreSQL server URL, or skip naming what is missing."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("PostgreSQL tests need psycopg: pip install 'tunesmith[postgres]'")
    from sqlalchemy import create_engine, text

    url = _postgres_server_url()
    try:
        engine = create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"no PostgreSQL server at {url} ({type(e).__name__}); "
                    "set TUNESMITH_TEST_POSTGRES_URL to a server URL to run these tests")
    return url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"tunesmith_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def fault_log(request: pytest.FixtureRequest):
    """``fault_log(area=..., fault=..., outcome=..., injected=1, recovered=0, lost=0)`` appends one row to the
    reliability table when ``TUNESMITH_FAULT_REPORT`` names a file (see tests/faults/report.py)."""
    path = os.environ.get("TUNESMITH_FAULT_REPORT")

    def log(**row: Any) -> None:
        if path:
            row.setdefault("test", request.node.nodeid)
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")

    return log


# MLflow (the mlflow extra): a migrated SQLite tracking database per test; see tests/mlflow_fixtures.py
from tests.mlflow_fixtures import mlflow_server, mlflow_template, mlflow_uri, without_mlflow  # noqa: E402, F401

# Ray (the ray extra): one local cluster while the Ray tests run; see tests/ray_fixtures.py
from tests.ray_fixtures import after_test as _after_a_ray_test  # noqa: E402
from tests.ray_fixtures import ray_cluster  # noqa: E402, F401


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    _after_a_ray_test(item, nextitem)
