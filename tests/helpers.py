"""Helpers for tests that drive the CLI as a separate process and watch the store and the processes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time


def start_cli(project, *args: str, storage: str | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "TUNESMITH_STORAGE": storage or project.storage, "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "tunesmith.cli", *args], cwd=project.root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


STATES_SQL = ("SELECT t.state, COUNT(*) FROM trials t JOIN experiments e ON e.id = t.experiment_id "
              "WHERE e.name = :name GROUP BY t.state")


def count_states(project, name: str, storage: str | None = None) -> dict[str, int]:
    """Trials of experiment ``name`` by state, read straight from the store (SQLite file or any URL)."""
    if storage is None or storage.startswith("sqlite"):
        if not project.db.exists():
            return {}
        with sqlite3.connect(project.db) as conn:
            return dict(conn.execute(STATES_SQL.replace(":name", "?"), (name,)).fetchall())
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    engine = create_engine(storage)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(text(STATES_SQL), {"name": name}).all())
    except SQLAlchemyError:
        return {}
    finally:
        engine.dispose()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except sqlite3.OperationalError:  # the schema is being created
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out waiting")


def worker_pids(project) -> list[int]:
    """Live tunesmith workers whose working directory is this project (trials chdir to the spec folder)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if b"tunesmith.executor.worker" in cmd and cwd == str(project.root):
            pids.append(int(entry))
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def settles(predicate, timeout: float = 5.0) -> bool:
    """Whether ``predicate()`` turns true within ``timeout`` seconds (polled every 50 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


# The contract, verbatim: these keys must keep working.
CONTRACT_YAML = """\
name: svc-wine
objective: {metric: accuracy, direction: maximize}
space:
  C:      {type: float, low: 0.001, high: 1000, log: true}
  kernel: {type: categorical, choices: [rbf, linear]}
  gamma:  {type: float, low: 0.0001, high: 1.0, log: true, when: {kernel: rbf}}
  layers: {type: int, low: 1, high: 4}
strategy: tpe
budget: {trials: 50, wall_time: 10m}
executor: {kind: process, workers: 2, trial_timeout: 60s, memory_limit: 2GiB, retries: 1}
trial: {function: "mymodule:objective"}
seed: 0
"""


def stop_processes(*procs: subprocess.Popen[str] | None, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
    """Signal every process still running, then reap each (killing one that outlasts ``timeout``)."""
    for p in procs:
        if p is not None and p.poll() is None:
            p.send_signal(sig)
    for p in procs:
        if p is not None:
            try:
                p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()


def one_error_line(proc: subprocess.CompletedProcess[str], code: int) -> str:
    """Exit ``code``, no traceback, one line `error: ...` on stderr: that line's message."""
    where = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == code and "Traceback" not in proc.stdout + proc.stderr, where
    [line] = proc.stderr.splitlines()
    assert line.startswith("error: "), where
    return line.removeprefix("error: ")


def cli_in_process(*args: str) -> tuple[int, str, str]:
    """`tunesmith ARGS` run in this process (tunesmith.cli.main, the command's own code and output): its exit code,
    stdout and stderr. For reading a store back, where the command is not what the test is about: a subprocess costs
    about 0.6 s of CPU, mostly start-up. The stores it opened are closed as it returns (the CLI's own rule)."""
    import contextlib
    import io

    from tunesmith import cli
    from tunesmith.cli import main

    # the consoles took their width once, when this process first imported the CLI: a subprocess takes COLUMNS
    # (or PIPED_WIDTH, writing to a pipe) as it starts, so each call here does too (else lines wrapped by import order)
    for console in (cli.out, cli.err):
        console.width = int(os.environ.get("COLUMNS") or cli.PIPED_WIDTH)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exited:
            code = exited.code if isinstance(exited.code, int) else (0 if exited.code is None else 1)
        else:
            code = 0
    return code, out.getvalue(), err.getvalue()


def completed_in_process(cwd, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """:func:`cli_in_process` from folder ``cwd`` with ``env`` set, as subprocess.run gives a command's result: for
    the later commands of a test whose first, the one it is about, ran as a real subprocess."""
    import pytest

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        code, out, err = cli_in_process(*args)
    return subprocess.CompletedProcess(list(args), code, out, err)


def cli_in_folder(cwd, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """:func:`completed_in_process` from folder ``cwd`` on that folder's store (``tunesmith.db``), 200 columns wide,
    with ``env`` set too: what a test's CLI subprocess started there runs, in this process (each saves a start-up
    importing scikit-learn and MLflow, 2-5 CPU-s)."""
    return completed_in_process(cwd, *args, env={"TUNESMITH_STORAGE": f"sqlite:///{cwd / 'tunesmith.db'}",
                                                 "COLUMNS": "200", **(env or {})})


def cli_json_in_process(*args: str) -> object:
    """What `tunesmith ARGS --json` prints, parsed, run in this process (:func:`cli_in_process`); it must exit 0."""
    import json

    code, out, err = cli_in_process(*args, "--json")
    assert code == 0, f"tunesmith {' '.join(args)} --json exited {code}\n{out}\n{err}"
    return json.loads(out)


def tune_in_process(spec, db) -> None:  # type: ignore[no-untyped-def]
    """`tunesmith run SPEC` from the spec's folder, in this process, into the SQLite store at path ``db``: a test's
    set-up (no CLI start-up, scikit-learn imported already); the store is closed after, the folder given back."""
    from tunesmith.runner import run_experiment
    from tunesmith.spec.loader import load_spec
    from tunesmith.storage.sql import SQLStore

    cwd = os.getcwd()
    os.chdir(spec.parent)  # the run's workdir (.tunesmith/NAME) goes here, as `run` from this folder puts it
    store = SQLStore(f"sqlite:///{db}")
    try:
        run_experiment(load_spec(spec), store)
    finally:
        store.close()
        os.chdir(cwd)


def migrate_to(conn, revision: str) -> None:  # type: ignore[no-untyped-def]
    """The store behind connection ``conn`` brought to schema ``revision`` by tunesmith's own migrations: a store as
    an older tunesmith left it."""
    from alembic import command
    from alembic.config import Config

    from tunesmith.storage.revisions import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    command.upgrade(config, revision)



def specs_migrated_from(revision: str, url: str, specs: list[dict]) -> dict[str, dict]:  # type: ignore[type-arg]
    """The stored specs, by name, of a completed experiment of each of ``specs``, recorded (as given) in a store at
    ``url`` as a tunesmith of schema ``revision`` left it, once this tunesmith has opened (migrated) it."""
    import json

    from sqlalchemy import create_engine, text

    from tunesmith.storage import SQLStore

    engine = create_engine(url)
    with engine.begin() as conn:
        migrate_to(conn, revision)
        for spec in specs:
            conn.execute(text("INSERT INTO experiments (name, spec, status, created_at, updated_at, next_number) "
                              "VALUES (:n, :s, 'completed', 1.0, 2.0, 0)"), {"n": spec["name"], "s": json.dumps(spec)})
    engine.dispose()
    said: list[str] = []
    store = SQLStore(url, on_upgrade=said.append)
    try:
        migrated = {spec["name"]: store.experiment(spec["name"]).spec for spec in specs}
        assert said, "the store was not upgraded"
        return migrated
    finally:
        store.close()
