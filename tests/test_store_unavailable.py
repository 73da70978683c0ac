"""A store whose database server does not answer (a closed port: a server restarting, a network outage) is a
passing failure, exit 75 (sysexits' EX_TEMPFAIL: "retry later"), as a lost Ray cluster is, for every command that
opens a store; what retrying would not fix (no such database, a host name that does not resolve) stays bad input,
exit 2. Each case through the real CLI in a subprocess, against a real closed port or a real PostgreSQL server."""

from __future__ import annotations

import socket
import subprocess

import pytest
from sqlalchemy.engine import make_url


def _closed_port() -> int:
    with socket.socket() as s:  # a port nothing listens on: bound, then let go
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unavailable_line(proc: subprocess.CompletedProcess[str]) -> str:
    """Exit 75, no traceback, one line `error: ...` on stderr: that line's message."""
    where = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 75 and "Traceback" not in proc.stdout + proc.stderr, where
    [line] = proc.stderr.splitlines()
    assert line.startswith("error: "), where
    return line.removeprefix("error: ")


def _no_server_message(origin: str, given: str, port: int) -> str:
    return (f"{origin}: {given}: no database server answers at 127.0.0.1:{port} (Connection refused); worth "
            "retrying later (a server restarting, a network outage); if it persists, check the host and port in the "
            "URL (a wrong port looks the same as a server that is down) and that the server is running")


@pytest.fixture
def closed(project) -> tuple[str, int]:
    """A PostgreSQL URL at a port on 127.0.0.1 where nothing listens, and the port."""
    pytest.importorskip("psycopg")
    port = _closed_port()
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/tunesmith", port


COMMANDS = [("ls",), ("show", "exp"), ("trials", "exp"), ("resume", "exp"), ("audit", "exp"), ("delete", "exp", "--yes"),
            ("metrics", "exp"), ("report", "exp"), ("reproduce", "exp", "0"), ("quota", "list"), ("version",),
            ("drift", "exp", "--data", "new.csv"), ("retune", "exp", "--data", "new.csv")]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_a_read_or_continue_command_exits_75_saying_the_server_does_not_answer(project, closed, args):
    """It exited 2, bad input: a scheduler (Airflow, Argo, a CI retry loop) reads that as "do not retry", where a
    restarting server only needs a retry later."""
    url, port = closed
    message = _unavailable_line(project.cli(*args, "--storage", url))
    assert message == _no_server_message("--storage", url, port)


@pytest.mark.parametrize("driver", ["postgresql", "postgresql+psycopg2"])
def test_run_exits_75_from_an_unanswering_store_and_records_nothing(project, driver):
    """The URL as the user gave it, from TUNESMITH_STORAGE (a psycopg2 URL, copied from another tool, is opened
    with psycopg 3 as postgresql:// is): the message names where it came from; no store, no trial folder."""
    pytest.importorskip("psycopg")
    port = _closed_port()
    given = f"{driver}://postgres@127.0.0.1:{port}/tunesmith"
    spec = project.write_spec(project.spec(budget={"trials": 2}, executor={"kind": "inline"}))
    before = sorted(p.name for p in project.root.iterdir())
    message = _unavailable_line(project.cli("run", str(spec), "-q", env={"TUNESMITH_STORAGE": given}))
    assert message == _no_server_message("TUNESMITH_STORAGE", given, port)
    assert sorted(p.name for p in project.root.iterdir()) == before  # no tunesmith.db, no .tunesmith/exp


def test_the_python_api_raises_store_unavailable_a_storage_error_not_bad_input(closed):
    import tunesmith
    from tunesmith.errors import StorageConfigError, UserInputError

    url, port = closed
    with pytest.raises(tunesmith.StoreUnavailable, match=f"no database server answers at 127.0.0.1:{port}") as caught:
        tunesmith.open_experiment("exp", storage=url)
    assert isinstance(caught.value, tunesmith.StorageError)
    assert not isinstance(caught.value, UserInputError | StorageConfigError)


# -- what a retry would not fix stays bad input (exit 2) ------------------------------------------------------


@pytest.mark.postgres
def test_a_database_that_does_not_exist_on_a_running_server_is_still_bad_input(project, postgres_server):
    server = make_url(postgres_server)
    host, port, user = server.host, server.port or 5432, server.username or "postgres"
    given = server.set(database="tunesmith_no_such_database").render_as_string(hide_password=False)
    proc = project.cli("ls", "--storage", given)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip() == (
        f"error: --storage: database 'tunesmith_no_such_database' does not exist on {host}:{port}; create it first "
        f"(CREATE DATABASE tunesmith_no_such_database; or createdb -h {host} -p {port} -U {user} "
        "tunesmith_no_such_database)")


def test_a_host_name_that_does_not_resolve_is_still_bad_input(project):
    """A misspelt host is the usual cause (.invalid never resolves: RFC 2606); a DNS server that is down is rarer,
    and a retry loop would hide the typo for as long as it retries."""
    pytest.importorskip("psycopg")
    given = "postgresql://postgres@tunesmith-no-such-host.invalid:5432/tunesmith"
    proc = project.cli("ls", "--storage", given)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip() == (f"error: --storage: {given}: the host 'tunesmith-no-such-host.invalid' is not "
                                   "known; check the host name in the URL")
