"""A store whose database server does not answer (a closed port: a server restarting, a network outage) is a
passing failure, exit 75 (sysexits' EX_TEMPFAIL: "retry later"), as a lost Ray cluster is, for every command that
opens a store, and so is a name server that does not answer now; what retrying would not fix (no such database, a
host name that does not exist) stays bad input, exit 2. Each case through the real CLI in a subprocess, against a real
closed port or a real PostgreSQL server, but a resolver's wording, given to `opening_error` as the driver says it."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url

from helpers import completed_in_process, one_error_line

from tests.test_cycle import SPEC as CYCLE_SPEC


def _closed_port() -> int:
    with socket.socket() as s:  # a port nothing listens on: bound, then let go
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unavailable_line(proc: subprocess.CompletedProcess[str]) -> str:
    return one_error_line(proc, 75)


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
            ("drift", "exp", "--data", "new.csv"), ("retune", "exp", "--data", "new.csv"), ("dashboard", "exp"),
            ("quota", "set", "tag:a=b", "1"), ("quota", "remove", "tag:a=b"), ("export", "mlflow", "exp"),
            ("promote", "exp", "-m", "m", "--dry-run"), ("rollback", "m", "--reason", "x")]
# a process each for a few commands of different kinds (a read, a write, one that resumes a run, the model
# registry's, a re-tune, the quota table's); the others run the command's code in this process (its exit code from
# main: helpers.completed_in_process), where a process would cost ~0.8 s of CPU, mostly start-up, for the same code
SUBPROCESS_COMMANDS = {("ls",), ("resume", "exp"), ("delete", "exp", "--yes"), ("promote", "exp", "-m", "m", "--dry-run"),
                       ("retune", "exp", "--data", "new.csv"), ("quota", "set", "tag:a=b", "1")}
assert SUBPROCESS_COMMANDS <= set(COMMANDS)


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: "-".join(a[:2]))
def test_every_command_that_opens_a_store_exits_75_saying_the_server_does_not_answer(project, closed, args):
    """It exited 2, bad input: a scheduler (Airflow, Argo, a CI retry loop) reads that as "do not retry", where a
    restarting server only needs a retry later."""
    url, port = closed
    if args in SUBPROCESS_COMMANDS:
        proc = project.cli(*args, "--storage", url)
    else:
        proc = completed_in_process(project.root, *args, "--storage", url, env={"COLUMNS": "200"})
    message = _unavailable_line(proc)
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


def _cycle_folder(root: Path) -> Path:
    from tunesmith.testing.drift_data import shifted_split

    shifted_split(root)
    (root / "bc.yaml").write_text(yaml.safe_dump(CYCLE_SPEC))
    return root


@pytest.mark.parametrize("command", ["cycle", "watch"])
def test_cycle_and_watch_json_say_unavailable_with_exit_code_75(project, closed, command):
    """`cycle --json` printed a `bad_input` object, exit_code 2: a CI step that parses it (or uploads --json-out
    `if: always()`) read a wrong address. `watch` stops too when the store does not answer at its first cycle: an
    address never seen to work may be the typo it looks like (a later cycle's is reported, and watch goes on)."""
    url, port = closed
    _cycle_folder(project.root)
    json_out = ("--json-out", "cycle.json") if command == "cycle" else ()
    proc = project.cli(command, "bc.yaml", "--data", "reference.csv", "--storage", url, "--json", *json_out)
    message = _unavailable_line(proc)
    assert message == _no_server_message("--storage", url, port)
    if command == "watch":  # one JSON line per cycle
        assert len(proc.stdout.splitlines()) == 1, proc.stdout
    report = json.loads(proc.stdout)
    assert report == {"root": None, "checked": None, "champion": None, "champion_from": None,
                      "outcome": "unavailable", "exit_code": 75, "steps": [], "target": "bc.yaml", "error": message,
                      "stopped_by": None}
    if command == "cycle":
        assert json.loads((project.root / "cycle.json").read_text()) == report
    assert not (project.root / ".tunesmith").exists()  # nothing tuned


def test_the_python_api_raises_store_unavailable_a_storage_error_not_bad_input(closed):
    import tunesmith
    from tunesmith.errors import StorageConfigError, UserInputError

    url, port = closed
    with pytest.raises(tunesmith.StoreUnavailable, match=f"no database server answers at 127.0.0.1:{port}") as caught:
        tunesmith.open_experiment("exp", storage=url)
    assert isinstance(caught.value, tunesmith.StorageError)
    assert not isinstance(caught.value, UserInputError | StorageConfigError)


@pytest.mark.postgres
def test_a_server_with_no_connection_slot_left_exits_75(project, postgres_server):
    """A server whose connection slots are all taken (here: a role allowed none, the same FATAL "too many
    connections" as a full server) answered "cannot open the store", exit 1; it passes as other clients leave."""
    import uuid

    from sqlalchemy import create_engine, text

    role = f"tunesmith_full_{uuid.uuid4().hex[:8]}"
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0"))
    try:
        server = make_url(postgres_server)
        given = server.set(username=role, password=None).render_as_string(hide_password=False)
        message = _unavailable_line(project.cli("ls", "--storage", given))
        assert message == (f"--storage: {given}: the database server at {server.host}:{server.port or 5432} takes "
                           f'no connection now (too many connections for role "{role}"); worth retrying later'), message
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


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
    """A misspelt host is the usual cause (.invalid never resolves: RFC 2606): the resolver says no such name, and a
    retry loop would hide the typo for as long as it retries (a name server not answering is exit 75, below)."""
    pytest.importorskip("psycopg")
    given = "postgresql://postgres@tunesmith-no-such-host.invalid:5432/tunesmith"
    proc = project.cli("ls", "--storage", given)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip() == (f"error: --storage: {given}: the host 'tunesmith-no-such-host.invalid' is not "
                                   "known; check the host name in the URL")


# -- a store that goes away while `watch` waits ------------------------------------------------------------


class _Relay:
    """A TCP relay on 127.0.0.1 to a PostgreSQL server, which can be shut (its port closed, its connections cut,
    as a server going down looks to a client) and opened again on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = _closed_port()
        self._listener: socket.socket | None = None
        self._links: list[socket.socket] = []
        self.open()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def shut(self) -> None:
        assert self._listener is not None
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes its accept(), which a close alone leaves listening
        except OSError:
            pass
        self._listener.close()
        self._listener = None
        for link in self._links:
            try:
                link.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            link.close()
        self._links.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # shut
                return
            server = socket.create_connection(self.target)
            self._links += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.mark.postgres
def test_watch_reports_a_cycle_the_store_did_not_answer_for_and_goes_on(tmp_path, monkeypatch, postgres_url):
    """A store that went down while watch slept (a day, by default) ended it: a long-running watch is not started
    again by a scheduler's retry. The cycle is reported (outcome unavailable, exit code 75) and the next one runs."""
    from tunesmith.cycle import CycleOutcome, watch
    from tunesmith.runner import run_experiment
    from tunesmith.spec.loader import load_spec
    from tunesmith.storage.sql import SQLStore

    monkeypatch.chdir(_cycle_folder(tmp_path))
    server = make_url(postgres_url)
    relay = _Relay(server.host or "127.0.0.1", server.port or 5432)
    url = server.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    store = SQLStore(url)
    try:
        run_experiment(load_spec(tmp_path / "bc.yaml"), store)
        waits: list[float] = []

        def sleep(seconds: float) -> None:  # the server goes down after the first cycle, up after the second
            waits.append(seconds)
            relay.shut() if len(waits) == 1 else relay.open()

        reports = watch(store, "bc", "reference.csv", 0.0, cycles=3, sleep=sleep)
    finally:
        store.close()
        relay.shut()
    assert [r.outcome for r in reports] == [CycleOutcome.NO_DRIFT, CycleOutcome.UNAVAILABLE, CycleOutcome.NO_DRIFT]
    down = reports[1]
    assert down.exit_code == 75 and down.steps == () and down.root == "bc"
    assert f"no database server answers at 127.0.0.1:{relay.port}" in down.to_json()["error"]


def test_a_server_that_never_answers_gives_up_after_the_connect_timeout_and_exits_75(project):
    """libpq waits for ever by default: a host that takes the connection and never speaks (or drops packets) held
    a command for the kernel's TCP timeout, minutes, before it could say anything. tunesmith's engine now gives up
    after CONNECT_TIMEOUT_S unless the URL or PGCONNECT_TIMEOUT sets a timeout."""
    import time

    from tunesmith.storage.opening import CONNECT_TIMEOUT_S

    pytest.importorskip("psycopg")
    with socket.socket() as mute:  # the kernel completes the handshake; nobody ever answers the startup message
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)
        port = mute.getsockname()[1]
        started = time.monotonic()
        proc = project.cli("ls", "--storage", f"postgresql://postgres@127.0.0.1:{port}/tunesmith", timeout=120)
        took = time.monotonic() - started
    message = _unavailable_line(proc)
    assert f"no database server answers at 127.0.0.1:{port}" in message and "retrying later" in message, message
    assert CONNECT_TIMEOUT_S <= took < CONNECT_TIMEOUT_S + 15, took


# -- a name server that does not answer now is passing; a name that does not exist is not --------------------


def _opening_error(driver_message: str):  # type: ignore[no-untyped-def]
    """What opening a store raises for a real OperationalError carrying ``driver_message`` (a resolver's EAI_AGAIN
    cannot be produced here: it needs a name server that fails to answer)."""
    psycopg = pytest.importorskip("psycopg")
    from sqlalchemy.exc import OperationalError

    from tunesmith.storage.opening import opening_error

    given = "postgresql://postgres@db.internal:5432/tunesmith"
    error = OperationalError("connect", None, psycopg.OperationalError(driver_message))
    return given, opening_error(error, make_url(given), given, "--storage")


# EAI_AGAIN as each resolver words it, after psycopg's preamble (it resolves the host itself) or libpq's
TRANSIENT_DNS = [
    "failed to resolve host 'db.internal': [Errno -3] Temporary failure in name resolution",  # glibc
    'could not translate host name "db.internal" to address: Temporary failure in name resolution',  # glibc, libpq
    "failed to resolve host 'db.internal': [Errno -3] Try again",  # musl (Alpine images)
    'could not translate host name "db.internal" to address: Try again',  # musl, libpq
    "failed to resolve host 'db.internal': [Errno 2] temporary failure in name resolution",  # macOS
    "failed to resolve host 'db.internal': [Errno 11002] getaddrinfo failed",  # Windows' WSATRY_AGAIN
    'could not translate host name "db.internal" to address: This is usually a temporary error during hostname '
    "resolution and means that the local server did not receive a response from an authoritative server.",  # Windows
]


@pytest.mark.parametrize("driver_message", TRANSIENT_DNS)
def test_a_name_server_that_does_not_answer_now_is_store_unavailable_exit_75(driver_message):
    """"Temporary failure in name resolution" was an unknown host, exit 2: a CoreDNS restart at cycle time ended a
    week-long `watch` for good, and no scheduler retries exit 2."""
    from tunesmith.errors import StoreUnavailable, UserInputError

    given, error = _opening_error(driver_message)
    assert isinstance(error, StoreUnavailable) and not isinstance(error, UserInputError), error
    assert str(error).startswith(f"--storage: {given}: the host 'db.internal' could not be looked up now ("), error
    assert str(error).endswith("worth retrying later (a name server restarting, a network outage); if it persists, "
                               "check the host name in the URL and this machine's name servers"), error


@pytest.mark.parametrize("driver_message", [
    "failed to resolve host 'db.internal': [Errno -2] Name or service not known",
    'could not translate host name "db.internal" to address: Name or service not known',
    "failed to resolve host 'db.internal': [Errno -2] Name does not resolve",  # musl
    "failed to resolve host 'db.internal': [Errno 8] nodename nor servname provided, or not known",  # macOS
    "failed to resolve host 'db.internal': [Errno 11001] getaddrinfo failed",  # Windows' WSAHOST_NOT_FOUND
    "failed to resolve host 'db.internal': [Errno -5] No address associated with hostname",
    "failed to resolve host 'db.internal': [Errno -4] Non-recoverable failure in name resolution",
])
def test_a_name_that_does_not_resolve_stays_bad_input(driver_message):
    from tunesmith.errors import StorageConfigError

    given, error = _opening_error(driver_message)
    assert isinstance(error, StorageConfigError), error
    assert str(error) == f"--storage: {given}: the host 'db.internal' is not known; check the host name in the URL"


# -- an `unavailable` cycle's report: one shape, and what watch says next -------------------------------------

def _fake_cycles(tmp_path: Path, down: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI (its code and output in this process, from ``tmp_path``: helpers.completed_in_process), its
    cycles a fake whose cycles numbered in ``down`` (e.g. "2,3"; numbered from 1) raise StoreUnavailable. What is
    tested is how cycle and watch report such a cycle, not the process (run as one, each cost ~0.6 CPU-s of
    start-up); the stores' real failures are the processes above."""
    from tunesmith import cycle
    from tunesmith.errors import StoreUnavailable

    failing, done = {int(n) for n in down.split(",")}, []

    def run_cycle(store, target, data, **options):  # type: ignore[no-untyped-def]
        done.append(target)
        if len(done) in failing:
            raise StoreUnavailable("--storage: postgresql://db/x: no database server answers at db:5432 "
                                   f"(cycle {len(done)})")
        return cycle.CycleReport("bc", "bc", "bc", cycle.CycleOutcome.NO_DRIFT,
                                 (cycle.CycleStep("drift", cycle.StepStatus.DONE, "no drift"),))

    class Store:
        def release_connections(self) -> None:
            pass

        def close(self) -> None:  # as the command ends
            pass

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cycle, "_target_store", lambda storage, target, *paths: (Store(), None))  # --data, --reference
        patch.setattr(cycle, "run_cycle", run_cycle)
        return completed_in_process(tmp_path, *args, env={"COLUMNS": "200"})


def test_an_unavailable_cycle_has_one_json_shape_at_the_first_cycle_in_cycle_and_at_a_later_watch_cycle(tmp_path):
    """At the first cycle (and in `cycle`) the object had `target` and no `stopped_by`; at a later watch cycle,
    `stopped_by` and no `target`: a parser written against one broke on the other."""
    first = _fake_cycles(tmp_path, "1", "cycle", "bc.yaml", "--data", "d.csv", "--json")
    at_first_watch = _fake_cycles(tmp_path, "1", "watch", "bc.yaml", "--data", "d.csv", "--json")
    later = _fake_cycles(tmp_path, "2", "watch", "bc.yaml", "--data", "d.csv", "--json", "--cycles", "2",
                         "--every", "100ms")
    assert first.returncode == at_first_watch.returncode == later.returncode == 75, (first, at_first_watch, later)
    reports = [json.loads(first.stdout), json.loads(at_first_watch.stdout), json.loads(later.stdout.splitlines()[1])]
    keys = ["root", "checked", "champion", "champion_from", "outcome", "exit_code", "steps", "target", "error",
            "stopped_by"]
    for report in reports:
        assert sorted(report) == sorted(keys), report
        assert report["outcome"] == "unavailable" and report["exit_code"] == 75 and report["steps"] == [], report
        assert report["target"] == "bc.yaml" and report["stopped_by"] is None and report["checked"] is None, report
    assert [r["root"] for r in reports] == [None, None, "bc"]  # a later cycle knows the lineage it watches


@pytest.mark.parametrize(("down", "cycles", "goes_on"), [("2", "2", False), ("2", "3", True)])
def test_watch_says_the_next_cycle_tries_again_only_when_one_follows(tmp_path, down, cycles, goes_on):
    """With --cycles N an unavailable last cycle said "watch goes on: the next cycle tries again", then exited 75."""
    proc = _fake_cycles(tmp_path, down, "watch", "bc", "--data", "d.csv", "--cycles", cycles, "--every", "100ms")
    assert proc.returncode == (0 if goes_on else 75), proc.stderr
    [line] = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert line.startswith("error: --storage: postgresql://db/x: no database server answers at db:5432 (cycle 2)")
    assert ("watch goes on: the next cycle tries again (--every 100ms)" in line) is goes_on, line


class _Mute:
    """A port on 127.0.0.1 that takes connections (the kernel completes the handshake) and never answers; it times
    how long each connection was held open by the client, from its accept to the client's giving up (its close)."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self.held: list[float] = []  # seconds, one per connection the client closed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        import time

        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            accepted = time.monotonic()
            with conn:
                conn.settimeout(None)
                try:
                    while conn.recv(4096):  # the client's first message; then nothing until it gives up
                        pass
                except OSError:
                    pass
            self.held.append(time.monotonic() - accepted)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()


@pytest.mark.parametrize("set_by", ["url", "PGCONNECT_TIMEOUT"])
def test_a_connect_timeout_the_user_sets_replaces_the_default(project, set_by):
    """?connect_timeout=2 in the URL, or PGCONNECT_TIMEOUT=2: exit 75 after about 2 s, not CONNECT_TIMEOUT_S. The
    wait is timed by the silent server itself, from taking the connection to the client's closing it, so the
    command's own start-up (which a loaded machine stretches to seconds) is not in it, and needs no second command
    to measure it apart."""
    from tunesmith.storage.opening import CONNECT_TIMEOUT_S

    pytest.importorskip("psycopg")
    query = "?connect_timeout=2" if set_by == "url" else ""
    env = {"PGCONNECT_TIMEOUT": "2"} if set_by == "PGCONNECT_TIMEOUT" else {}
    mute = _Mute()
    try:
        proc = project.cli("ls", "--storage", f"postgresql://postgres@127.0.0.1:{mute.port}/tunesmith{query}",
                           env=env, timeout=60)
    finally:
        mute.close()
    assert f"no database server answers at 127.0.0.1:{mute.port}" in _unavailable_line(proc)
    assert mute.held and 2 <= sum(mute.held) < CONNECT_TIMEOUT_S - 3, mute.held
