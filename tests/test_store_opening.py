"""Opening the store a URL names (storage/opening.py), through the real CLI: another application's database is
refused unwritten, read-only commands never create a schema, `run` creates one only in an empty database, an older
tunesmith store is still upgraded, and a wrong URL is bad input (exit 2) naming its fix (no server answering at
its port is a passing failure, exit 75: tests/test_store_unavailable.py)."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from helpers import STATES_SQL, one_error_line

from tunesmith.errors import StorageConfigError, StoreNotFound
from tunesmith.storage import SQLStore
from tunesmith.storage.schema import HEAD_REVISION

READ_ONLY = [("ls",), ("show", "exp"), ("trials", "exp"), ("resume", "exp")]
FOREIGN_FIX = "nothing was written to it. Give tunesmith a store of its own: a new SQLite file"


def _one_line_input_error(proc: subprocess.CompletedProcess[str]) -> str:
    return one_error_line(proc, 2)


# -- each command in a process of its own, started cheaply -----------------------------------------------------
# A `python -m tunesmith.cli` process spends ~0.8 CPU-s starting the interpreter and importing tunesmith, SQLAlchemy,
# Alembic and pydantic before the command's first line; these tests run ~100 commands. A server process does that
# once per module and forks each command from itself: every command still runs in a process of its own (the CLI's
# main() as the `tunesmith` script calls it, its own exit status, descriptors 0-2, environment, folder and a normal
# interpreter exit), from the same state each time; only the imports that precede it are shared.
# test_a_forked_command_says_what_its_own_interpreter_says checks it against `python -m tunesmith.cli`.
FORK_SERVER = r'''
import gc, json, os, sys

import tunesmith.cli
for module in ("tunesmith.storage.sql", "tunesmith.storage.opening", "tunesmith.coordinators", "tunesmith.runner",
               "tunesmith.spec.loader", "tunesmith.audit", "tunesmith.deletion", "alembic.command", "alembic.config",
               "sqlalchemy.dialects.sqlite", "sqlalchemy.dialects.postgresql", "sqlite3"):
    __import__(module)  # what the commands import as they start: imported once, here
gc.freeze()  # the imported objects stay out of each command's collections (and exit): its pages stay shared
for line in sys.stdin:
    request = json.loads(line)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        break
    os.write(1, f"{pid}\n".encode())
    os.write(1, f"{os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])}\n".encode())
else:
    raise SystemExit(0)
os.chdir(request["cwd"])
os.environ.clear()
os.environ.update(request["env"])
for fd, path in ((0, os.devnull), (1, request["stdout"]), (2, request["stderr"])):
    opened = os.open(path, os.O_RDONLY if fd == 0 else os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(opened, fd)
    os.close(opened)
sys.argv = ["tunesmith", *request["args"]]
tunesmith.cli.main(request["args"])  # its SystemExit ends this process as the command's own would
'''


class CommandServer:
    """``run(cwd, env, *args)``: `tunesmith ARGS` in a process of its own, forked from the server (FORK_SERVER)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {**os.environ, "COLUMNS": "200"}  # as Project.cli gives every command (Rich reads it at import)
        self.server = subprocess.Popen([sys.executable, "-c", FORK_SERVER], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, env=self.env, cwd=folder, text=True)
        self.calls = 0

    def run(self, cwd: Path, env: dict[str, str], *args: str,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        # what the interpreter reads as it starts (sys.path, flags) is the server's: a command asking for other
        # values needs a fresh interpreter (Project.cli)
        started = {k: v for k, v in env.items() if k.startswith("PYTHON")}
        assert started == {k: v for k, v in self.env.items() if k.startswith("PYTHON")}, started
        assert self.server.stdin is not None and self.server.stdout is not None
        self.calls += 1
        out, err = self.folder / f"{self.calls}.out", self.folder / f"{self.calls}.err"
        self.server.stdin.write(json.dumps({"args": list(args), "cwd": str(cwd), "env": env, "stdout": str(out),
                                            "stderr": str(err)}) + "\n")
        self.server.stdin.flush()
        pid = int(self.server.stdout.readline())
        if not select.select([self.server.stdout], [], [], timeout)[0]:
            os.kill(pid, signal.SIGKILL)
            self.server.stdout.readline()
            raise subprocess.TimeoutExpired(["tunesmith", *args], timeout)
        code = int(self.server.stdout.readline())
        return subprocess.CompletedProcess(["tunesmith", *args], code, out.read_text(), err.read_text())

    def close(self) -> None:
        assert self.server.stdin is not None and self.server.stdout is not None
        self.server.stdin.close()  # the server's loop ends
        self.server.wait(60)
        self.server.stdout.close()


@pytest.fixture(scope="module")
def command_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CommandServer]:
    server = CommandServer(tmp_path_factory.mktemp("commands"))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def cli(project, command_server: CommandServer):  # type: ignore[no-untyped-def]
    """``cli(*args, env=None, check=False)``: Project.cli's `tunesmith ARGS` in the project folder (its environment:
    TUNESMITH_STORAGE, COLUMNS, then ``env``), each command in a process of its own (:class:`CommandServer`)."""
    def run(*args: str, env: dict[str, str] | None = None, check: bool = False) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "TUNESMITH_STORAGE": project.storage, "COLUMNS": "200", **(env or {})}
        proc = command_server.run(project.root, full_env, *args)
        if check and proc.returncode != 0:
            raise AssertionError(f"tunesmith {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run


def test_a_forked_command_says_what_its_own_interpreter_says(project, cli):
    """The server's commands against `python -m tunesmith.cli`: the same exit code, stdout and stderr, byte for byte,
    for refusals (one by an environment variable read as the command runs), a read of an empty database, and a run
    that makes its store (each its own), which the commands then list alike."""
    (project.root / "other.db").touch()
    spec = project.write_spec(project.spec(budget={"trials": 2}, executor={"kind": "inline"}))
    for args, env in [(("ls", "--storage", "sqlite:///exp.yaml"), None),
                      (("show", "exp", "--storage", "sqlite:///other.db"), None),
                      (("version", "--storage", "sqlite:///other.db"), None),
                      (("trials", "exp"), {"TUNESMITH_STORAGE": "sqlite:///nope.db"})]:
        forked, real = cli(*args, env=env), project.cli(*args, env=env)
        assert (forked.returncode, forked.stdout, forked.stderr) == (real.returncode, real.stdout, real.stderr), args
    said = []
    for run, store in ((cli, "forked.db"), (project.cli, "real.db")):
        shutil.rmtree(project.root / ".tunesmith", ignore_errors=True)  # the trials' folders: each run its own
        done = run("run", str(spec), "-q", "--storage", f"sqlite:///{store}")
        said.append((done.returncode, done.stdout, done.stderr))
        with sqlite3.connect(project.root / store) as conn:
            assert conn.execute(STATES_SQL.replace(":name", "?"), ("exp",)).fetchall() == [("completed", 2)], said
    assert said[0] == said[1] and said[0][0] == 0, said


def _sqlite_tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def _execute(url: str, *statements: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


def _upgrade_to(url: str, revision: str) -> None:
    """A store as an older tunesmith left it: the schema at ``revision``, one experiment in it."""
    from helpers import migrate_to

    engine = create_engine(url)
    with engine.connect() as conn:
        migrate_to(conn, revision)
        conn.execute(text("INSERT INTO experiments (name, spec, status, created_at, updated_at, next_number) "
                          "VALUES ('old', '{\"name\": \"old\"}', 'completed', 1.0, 2.0, 0)"))
        conn.commit()
    engine.dispose()


def _revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


# -- another application's database ------------------------------------------------------------------------


def test_an_mlflow_database_is_refused_by_every_command_and_left_byte_for_byte(project, cli, request):
    """`ls --storage sqlite:///mlflow.db` crashed in Alembic ("Can't locate revision identified by
    'dc11669786a5'"), exit 1; `run` the same. The file is MLflow's, made by MLflow itself."""
    pytest.importorskip("mlflow")
    db = project.root / "mlflow.db"
    # made by MLflow's own client (MlflowClient(URI).search_experiments(), once per session: mlflow_fixtures.py)
    shutil.copy(request.getfixturevalue("mlflow_template"), db)
    revision = sqlite3.connect(db).execute("SELECT version_num FROM alembic_version").fetchone()[0]
    before = db.read_bytes()
    spec = project.write_spec(project.spec())
    for args in [*READ_ONLY, ("run", str(spec)), ("quota", "set", "user:me", "2")]:
        message = _one_line_input_error(cli(*args, "--storage", f"sqlite:///{db}"))
        assert message.startswith(f"--storage: sqlite:///{db} is not a tunesmith store: it holds another "
                                  f"application's schema (alembic_version {revision!r}): "), message
        assert message.endswith(FOREIGN_FIX), message
    assert db.read_bytes() == before
    assert not Path(f"{db}-wal").exists()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request, tmp_path) -> str:
    """The URL of a new, empty database (an empty SQLite file; a fresh PostgreSQL database)."""
    if request.param == "sqlite":
        (tmp_path / "other.db").touch()
        return f"sqlite:///{tmp_path / 'other.db'}"
    return request.getfixturevalue("postgres_url")


def test_a_database_holding_others_tables_gets_a_store_from_run_only_and_one_that_collides_is_refused(
        project, cli, database):
    """`ls --storage sqlite:///other.db` added tunesmith's tables beside the `users` it held: a read-only command
    finds no store there and writes nothing. `run` makes its store beside others' tables (a team's shared
    database), leaving them as they were; a table bearing one of tunesmith's names would collide: refused."""
    _execute(database, "CREATE TABLE users (id INTEGER)", "INSERT INTO users VALUES (7)")
    shown = make_url(database).render_as_string(hide_password=True)
    spec = project.write_spec(project.spec(budget={"trials": 2}, executor={"kind": "inline"}))
    if database.startswith("sqlite"):  # one application's file: a mistyped --storage, refused by every command
        for args in [*READ_ONLY, ("run", str(spec)), ("version",)]:  # `version` called it an empty store, exit 0
            message = _one_line_input_error(cli(*args, "--storage", database))
            assert message == (f"--storage: {shown} is not a tunesmith store: it holds another application's "
                               f"tables: 1 table(s) (users); {FOREIGN_FIX}")
        assert _tables(database) == {"users"}
        return
    for args in READ_ONLY:
        message = _one_line_input_error(cli(*args, "--storage", database))
        assert message == (f"no tunesmith store at {shown} (the database holds other tables, no tunesmith store: "
                           "nothing has run here yet); run an experiment first, or point --storage / "
                           "TUNESMITH_STORAGE at the store")
    assert _tables(database) == {"users"}
    cli("run", str(spec), "--storage", database, "-q", check=True)
    assert _revision(database) == HEAD_REVISION and "users" in _tables(database)
    _execute(database, "DROP TABLE users")
    cli("delete", "exp", "--yes", "--storage", database, check=True)

    _execute(database, *[f"DROP TABLE {t}" for t in _dependents_first(_tables(database))],
             "CREATE TABLE users (id INTEGER)", "CREATE VIEW trials AS SELECT id FROM users")  # someone's `trials`
    own = ("a new SQLite file, another database, or a schema of its own in this one (a URL ending "
           "?options=-csearch_path%3Dtunesmith, after CREATE SCHEMA tunesmith;)")
    for args in [("ls",), ("run", str(spec))]:
        message = _one_line_input_error(cli(*args, "--storage", database))
        assert message == (f"--storage: {shown} is not a tunesmith store: it holds another application's tables: "
                           "2 table(s) (trials, users), and trials bears the name of one of tunesmith's tables, so a "
                           "store cannot be made beside them; nothing was written to it. Give tunesmith a store of its "
                           f"own: {own}")
    assert _tables(database) == {"users"}  # (and its view)


@pytest.mark.postgres
def test_the_refusal_of_a_shared_database_names_the_table_that_collides(project, cli, postgres_url):
    """A team's database holding `app_users` takes a store beside it; one holding `app_users` and `trials` was refused
    with "holds another application's tables: 2 table(s) (app_users, trials)", which named the table it objected to
    no more than the one it did not: the refusal names the colliding table, even past the tables it lists."""
    others = [f"app_table_{i:02d}" for i in range(8)]  # listed first, and more than a refusal lists
    _execute(postgres_url, *[f"CREATE TABLE {t} (id INTEGER)" for t in ["app_users", *others, "trials"]])
    shown = make_url(postgres_url).render_as_string(hide_password=True)
    spec = project.write_spec(project.spec(budget={"trials": 1}, executor={"kind": "inline"}))
    for args in [("ls",), ("run", str(spec))]:
        message = _one_line_input_error(cli(*args, "--storage", postgres_url))
        assert message.startswith(f"--storage: {shown} is not a tunesmith store: it holds another application's "
                                  "tables: 10 table(s) (app_table_00, "), message
        assert "app_table_05, and 4 more), and trials bears" in message, "a shortened list says how much it left out"
        assert ", and trials bears the name of one of tunesmith's tables, so a store cannot be made beside them; " \
               "nothing was written to it. Give tunesmith a store of its own: a new SQLite file, another database, " \
               "or a schema of its own in this one (a URL ending ?options=-csearch_path%3Dtunesmith, after CREATE " \
               "SCHEMA tunesmith;)" in message, message
    assert _tables(postgres_url) == {"app_users", *others, "trials"}


def _dependents_first(tables: set[str]) -> list[str]:
    from tunesmith.storage.schema import metadata

    order = [t.name for t in reversed(metadata.sorted_tables)]
    return [t for t in order if t in tables] + sorted(tables - set(order))


def test_read_only_commands_find_no_store_in_an_empty_database_and_create_none(project, cli, database):
    shown = make_url(database).render_as_string(hide_password=True)
    for args in READ_ONLY:
        message = _one_line_input_error(cli(*args, "--storage", database))
        assert message == (f"no tunesmith store at {shown} (the database is empty: nothing has run here yet); run "
                           "an experiment first, or point --storage / TUNESMITH_STORAGE at the store")
    assert _tables(database) == set()
    version = cli("version", "--storage", database)
    assert version.returncode == 0 and f"store {shown}: schema revision none (no tunesmith store here yet)" in \
        version.stdout, version.stdout
    assert _tables(database) == set()
    # `run` makes its store there, and the read-only commands then find it
    spec = project.write_spec(project.spec(budget={"trials": 2}, executor={"kind": "inline"}))
    cli("run", str(spec), "--storage", database, "-q", check=True)
    assert _revision(database) == HEAD_REVISION
    listed = cli("ls", "--storage", database, check=True)
    assert "exp" in listed.stdout


def test_the_python_store_refuses_a_foreign_database_and_reads_no_empty_one(database):
    _execute(database, "CREATE TABLE alembic_version (version_num VARCHAR(32))",
             "INSERT INTO alembic_version VALUES ('dc11669786a5')")  # another Alembic application's schema
    for create in (True, False):
        with pytest.raises(StorageConfigError, match="is not a tunesmith store"):
            SQLStore(database, create=create).experiments()
    _execute(database, "DROP TABLE alembic_version")
    with pytest.raises(StoreNotFound, match="the database is empty"):
        SQLStore(database, create=False).experiments()
    assert _tables(database) == set()


@pytest.mark.parametrize("revision", ["0001", "0002"])
def test_a_store_an_older_tunesmith_made_is_still_upgraded_by_a_read_only_command(project, cli, database, revision):
    """Every command upgraded an older store before; it still does (it is tunesmith's, at a known revision), and now
    says so in one line on stderr: from then on every tunesmith that knows only older revisions is refused by it, and a
    team sharing the store learnt that from their refusals. The line says it is one way, and what the releases that
    cannot refuse it in one line print instead (a walk's SRE met their 110-line traceback, not the refusal). The next
    command, finding it upgraded, says nothing."""
    _upgrade_to(database, revision)
    listed = cli("ls", "--storage", database, check=True)
    assert "old" in listed.stdout
    assert _revision(database) == HEAD_REVISION
    shown = make_url(database).render_as_string(hide_password=True)
    assert listed.stderr.splitlines() == [f"warning: {_upgrade_said(shown, revision)}"], listed.stderr
    assert cli("ls", "--storage", database, check=True).stderr == ""


def test_the_upgrade_is_said_as_a_json_line_under_log_format_json(project, cli):
    """`run --log-format json` writes only JSON lines on stderr (a log shipper reads them): the upgrade's too."""
    _upgrade_to(project.storage, "0004")
    spec = project.write_spec(project.spec("new", budget={"trials": 1}, executor={"kind": "inline"}))
    done = cli("run", str(spec), "--log-format", "json", check=True)
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    said = [line["message"] for line in lines if line["event"] == "warning"]
    assert said == [_upgrade_said(project.storage, "0004")], done.stderr


def _upgrade_said(shown: str, revision: str) -> str:
    return (f"upgraded the store at {shown} from schema revision {revision!r} to {HEAD_REVISION!r}, one way (to go "
            "back, restore a backup taken before it): update every tunesmith that shares it (git pull, then pip "
            "install -e . in tunesmith's checkout); an older one refuses it, and one of schema revision 0003 or "
            f"before (a release before 2026-12-06) fails with \"Can't locate revision identified by "
            f"'{HEAD_REVISION}'\"")


@pytest.fixture
def login_role(postgres_url: str) -> Iterator[tuple[str, str]]:
    """A login role of its own, granted nothing yet, and the URL of the test's database as that role: dropped at the
    end with what was granted to it."""
    import uuid

    role = f"tunesmith_role_{uuid.uuid4().hex[:8]}"
    _execute(postgres_url, f"CREATE ROLE {role} LOGIN")
    try:
        yield role, make_url(postgres_url).set(username=role, password=None).render_as_string(hide_password=False)
    finally:
        _execute(postgres_url, f"DROP OWNED BY {role}")
        _execute(postgres_url, f"DROP ROLE {role}")


@pytest.mark.postgres
def test_an_older_store_a_select_only_role_cannot_upgrade_is_refused_naming_its_revision_and_the_fix(
        project, cli, postgres_url, login_role):
    """A dashboard's role granted SELECT on a store an older tunesmith wrote (0004): every command that reads tried to
    upgrade it first and said only `cannot open the store at URL: permission denied for schema public`, exit 1, until
    someone who may write opened it. One line now names its revision, the one this tunesmith needs and the fix, exit
    2, and nothing is written."""
    role, as_role = login_role
    _upgrade_to(postgres_url, "0004")
    _execute(postgres_url, f"GRANT USAGE ON SCHEMA public TO {role}",
             f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    rows, shown = _rows(postgres_url), make_url(as_role).render_as_string(hide_password=True)
    for args in [("ls",), ("show", "old"), ("trials", "old"), ("report", "old", "-o", "r.html"), ("audit", "old")]:
        message = _one_line_input_error(cli(*args, "--storage", as_role))
        assert message == (
            f"--storage: the store at {shown} is at schema revision '0004', older than the {HEAD_REVISION!r} this "
            f"tunesmith needs: it must be upgraded before it can be read, and the role {role!r} may not change its "
            "tables (permission denied for schema public); open it once as a role that may (the owner of its "
            "tables), or read it with the tunesmith that wrote it (one whose `tunesmith version` says schema "
            "revision 0004); nothing was written to it"), args
    assert _rows(postgres_url) == rows and _revision(postgres_url) == "0004"


@pytest.mark.postgres
def test_a_role_that_may_not_create_tables_is_told_to_be_granted_that_or_given_a_schema_of_its_own(
        project, cli, postgres_url, login_role):
    """`run` as a role without CREATE in the database's schema (PostgreSQL 15's default for public) said only `cannot
    open the store at URL: permission denied for schema public`, exit 1: bad input, as a refused login is, with the
    fix (exit 2). The second fix it names works."""
    role, as_role = login_role
    _execute(postgres_url, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")  # (PostgreSQL 14 and older granted it)
    shown = make_url(as_role).render_as_string(hide_password=True)
    spec = project.write_spec(project.spec(budget={"trials": 2}, executor={"kind": "inline"}))
    message = _one_line_input_error(cli("run", str(spec), "-q", "--storage", as_role))
    assert message == (
        f"--storage: {shown}: the role {role!r} may not create tables in the schema 'public' (permission denied for "
        f"schema public), so no store can be made there; grant it that (GRANT CREATE ON SCHEMA public TO {role}; as "
        f"the database's owner), or give it a schema of its own (CREATE SCHEMA tunesmith AUTHORIZATION {role}; and a "
        "URL ending ?options=-csearch_path%3Dtunesmith); nothing was written to it")
    assert _tables(postgres_url) == set()
    _execute(postgres_url, f"CREATE SCHEMA tunesmith AUTHORIZATION {role}")
    cli("run", str(spec), "-q", "--storage", f"{as_role}?options=-csearch_path%3Dtunesmith", check=True)


@pytest.mark.postgres
def test_a_read_only_role_given_default_privileges_reads_the_tables_a_later_upgrade_adds(project, cli, postgres_url,
                                                                                         login_role):
    """README, Storage: SELECT ON ALL TABLES grants the tables there are, not those a later migration adds (0005's
    deleted_experiments: `audit` as that role said `permission denied for table deleted_experiments`, exit 1, once
    the owner upgraded the store). With ALTER DEFAULT PRIVILEGES as README says, the role reads those too."""
    role, as_role = login_role
    owner = make_url(postgres_url).username or "postgres"
    _upgrade_to(postgres_url, "0004")
    _execute(postgres_url, f"GRANT USAGE ON SCHEMA public TO {role}",
             f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}",
             f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT SELECT ON TABLES TO {role}")
    cli("ls", "--storage", postgres_url, check=True)  # the owner's command upgrades it
    assert _revision(postgres_url) == HEAD_REVISION
    for args in [("audit", "old"), ("ls",)]:
        cli(*args, "--storage", as_role, check=True)


def _rows(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table in the database at ``url``, by table: what a refused command must leave as it was."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {t: sorted(map(tuple, conn.execute(text(f'SELECT * FROM "{t}"'))), key=repr)
                    for t in sorted(inspect(conn).get_table_names())}
    finally:
        engine.dispose()


def test_every_revision_tunesmith_ships_is_numbered_in_four_digits_one_after_another():
    """What tells a newer tunesmith's store from another application's: tunesmith numbers its revisions 0001, 0002,
    ... (never Alembic's random hex ids), so a store at a 4-digit revision above the newest was upgraded by a later
    tunesmith, and any other id not shipped here is not tunesmith's."""
    from tunesmith.storage.revisions import packaged_head_revision, packaged_revisions

    assert sorted(packaged_revisions()) == [f"{n:04d}" for n in range(1, len(packaged_revisions()) + 1)]
    assert packaged_head_revision() == HEAD_REVISION == max(packaged_revisions())


@pytest.mark.parametrize("revision", ["0099", f"{int(HEAD_REVISION) + 1:04d}"])
def test_a_store_a_newer_tunesmith_made_is_refused_and_its_revision_reported(project, cli, database, revision):
    """A store a newer tunesmith upgraded, at a revision this one does not ship: every command refuses it in one line,
    exit 2, naming its revision, this tunesmith's newest and the fix, and writes nothing."""
    _upgrade_to(database, "head")
    _execute(database, f"UPDATE alembic_version SET version_num = '{revision}'")
    shown = make_url(database).render_as_string(hide_password=True)
    spec = project.write_spec(project.spec("new"))
    rows, files = _rows(database), sorted(project.root.rglob("*"))
    sqlite_bytes = Path(make_url(database).database or "").read_bytes() if database.startswith("sqlite") else None
    for args in [("show", "old"), ("run", str(spec)), ("ls",), ("trials", "old"), ("audit", "old"),
                 ("resume", "old"), ("delete", "old", "--yes")]:
        message = _one_line_input_error(cli(*args, "--storage", database))
        assert message == (f"--storage: the store at {shown} was written by a newer tunesmith (schema revision "
                           f"{revision!r}; this one knows up to {HEAD_REVISION!r}); update tunesmith to open it "
                           "(git pull, then pip install -e . in tunesmith's checkout); nothing was written to it"), args
    assert _rows(database) == rows and sorted(project.root.rglob("*")) == files
    if sqlite_bytes is not None:
        assert Path(make_url(database).database or "").read_bytes() == sqlite_bytes
    version = cli("version", "--storage", database, check=True)
    assert f"store {shown}: schema revision {revision}" in version.stdout
    assert _revision(database) == revision


@pytest.mark.parametrize("revision", ["f3a9c2e1b7d4", "v3.2.0.a", "0000"])  # Alembic's kind of id, Optuna's, none
def test_tunesmith_tables_at_a_revision_outside_its_chain_are_another_applications_store(project, cli, database,
                                                                                          revision):
    """Another Alembic-managed application with tables named experiments, trials, trial_reports and events, at a
    revision id tunesmith never had: not a store a newer tunesmith wrote ("pip install -U tunesmith" would not help),
    another application's, refused by every command with the fix that helps; nothing is written."""
    _upgrade_to(database, "head")
    _execute(database, f"UPDATE alembic_version SET version_num = '{revision}'")
    shown = make_url(database).render_as_string(hide_password=True)
    rows = _rows(database)
    for args in [("show", "old"), ("run", str(project.write_spec(project.spec("new")))), ("ls",),
                 ("delete", "old", "--yes")]:
        message = _one_line_input_error(cli(*args, "--storage", database))
        assert message.startswith(f"--storage: {shown} is not a tunesmith store: it holds another application's "
                                  f"schema (alembic_version {revision!r}): "), (args, message)
        assert "nothing was written to it. Give tunesmith a store of its own: " in message, (args, message)
    assert _rows(database) == rows and _revision(database) == revision


def test_a_store_upgraded_by_a_newer_tunesmith_after_it_was_surveyed_is_refused_not_a_traceback(database,
                                                                                                 monkeypatch):
    """A newer tunesmith may upgrade the store between this one's survey and its own upgrade (two coordinators
    starting at once): the revision read under the schema lock is checked too, where Alembic raised "Can't locate
    revision" (a traceback, exit 1)."""
    from tunesmith.storage import sql

    _upgrade_to(database, "0004")
    _execute(database, "UPDATE alembic_version SET version_num = '0099'")
    monkeypatch.setattr(sql, "refuse_unless_usable", lambda *args: None)  # surveyed before the newer one came
    with pytest.raises(StorageConfigError, match="written by a newer tunesmith \\(schema revision '0099'"):
        SQLStore(database, create=False).experiments()
    assert _revision(database) == "0099"
    _execute(database, "UPDATE alembic_version SET version_num = 'f3a9c2e1b7d4'")  # another application, meanwhile
    with pytest.raises(StorageConfigError, match="is not a tunesmith store: it holds another application's schema "
                                                 "\\(alembic_version 'f3a9c2e1b7d4'\\)"):
        SQLStore(database, create=False).experiments()
    assert _revision(database) == "f3a9c2e1b7d4"


# -- a URL that names no database this user can reach ---------------------------------------------------------


@pytest.mark.postgres
def test_a_postgresql_url_without_a_database_name_is_refused_before_connecting(project, cli, postgres_server):
    """`ls --storage postgresql://postgres@127.0.0.1:5432/` made tunesmith's tables in the shared `postgres`."""
    server = make_url(postgres_server)
    default_database = server.set(database=server.username or "postgres").render_as_string(hide_password=False)
    before = _tables(default_database)
    bare = server._replace(drivername="postgresql", database=None).render_as_string(hide_password=False)
    spec = project.write_spec(project.spec())
    for given in (bare, bare + "/"):
        for args in [("ls",), ("run", str(spec))]:
            message = _one_line_input_error(cli(*args, "--storage", given))
            shown = make_url(given).render_as_string(hide_password=True)
            assert message == (f"--storage: {shown} names no database (the server would use the shared database "
                               f"{server.username or 'postgres'!r}); name one, e.g. "
                               f"{make_url(given).set(database='tunesmith').render_as_string(hide_password=True)} "
                               "(create it first: CREATE DATABASE tunesmith;)")
    assert _tables(default_database) == before


def test_a_postgresql_url_naming_its_database_the_libpq_way_is_not_refused(monkeypatch):
    """libpq names a database in the query (?dbname=, ?service=) or the environment (PGDATABASE, PGSERVICE)."""
    from tunesmith.storage.opening import refuse_url_without_database

    for given in ("postgresql://u@h/?dbname=team", "postgresql://u@h/?service=tuning"):
        refuse_url_without_database(make_url(given), given, "--storage")
    bare = make_url("postgresql://u@h/")
    with pytest.raises(StorageConfigError, match="names no database"):
        refuse_url_without_database(bare, "postgresql://u@h/", "--storage")
    monkeypatch.setenv("PGDATABASE", "team")
    refuse_url_without_database(bare, "postgresql://u@h/", "--storage")


@pytest.mark.postgres
def test_a_role_that_does_not_exist_is_bad_input_naming_the_fix(project, cli, postgres_server):
    server = make_url(postgres_server)
    url = server.set(drivername="postgresql", username="tunesmith_no_such_role", password=None, database="db")
    host, port = server.host, server.port or 5432
    given = url.render_as_string(hide_password=False)
    message = _one_line_input_error(cli("ls", "--storage", given))
    assert message == (f"--storage: {given}: the role 'tunesmith_no_such_role' does not exist on the server at "
                       f"{host}:{port}; use an existing one (postgresql://USER@{host}:{port}/db), or create it "
                       "(CREATE ROLE tunesmith_no_such_role LOGIN;)")


@pytest.mark.postgres
def test_an_option_of_the_url_the_server_or_driver_refuses_is_bad_input(project, cli, postgres_url):
    """?sslmode=bogus, ?connect_timeout=abc, ?foo=bar, and a search_path naming no schema (the fix tunesmith names
    for a team's database) were `storage error: cannot open the store`, exit 1, naming no origin."""
    for query, said in (("sslmode=bogus", 'invalid sslmode value: "bogus"'),
                        ("connect_timeout=abc", "bad value for connect_timeout"),
                        ("foo=bar", 'invalid connection option "foo"')):
        given = f"{postgres_url}?{query}"
        message = _one_line_input_error(cli("ls", "--storage", given))
        assert message.startswith(f"--storage: {make_url(given).render_as_string(hide_password=True)}: an option "
                                  "of the URL was refused ("), message
        assert said in message and "check its query string" in message, message
    spec = project.write_spec(project.spec(budget={"trials": 1}, executor={"kind": "inline"}))
    no_schema = f"{postgres_url}?options=-csearch_path%3Dtunesmith_nowhere"
    message = _one_line_input_error(cli("run", str(spec), "--storage", no_schema, "-q"))
    assert "the URL's search_path names no schema that exists" in message and "CREATE SCHEMA" in message, message


@pytest.mark.postgres
def test_a_psycopg2_url_opens_the_store_with_psycopg(project, cli, postgres_url):
    """The hint said pip install 'tunesmith[postgres]' (psycopg 3), which never fixed a psycopg2 URL."""
    given = make_url(postgres_url).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    spec = project.write_spec(project.spec(budget={"trials": 1}, executor={"kind": "inline"}))
    cli("run", str(spec), "--storage", given, "-q", check=True)
    assert "exp" in cli("ls", "--storage", given, check=True).stdout


def test_another_postgresql_driver_not_installed_is_told_to_use_postgresql_url(project, cli):
    pytest.importorskip("psycopg")
    try:
        import pg8000  # noqa: F401
        pytest.skip("pg8000 is installed here")
    except ImportError:
        pass
    message = _one_line_input_error(cli("ls", "--storage", "postgresql+pg8000://u@127.0.0.1/x"))
    assert message == ("--storage: the driver for postgresql+pg8000 is not installed (pg8000); tunesmith opens "
                       "PostgreSQL with psycopg 3: use postgresql:// (or postgresql+psycopg://)")


def test_a_file_that_is_not_a_sqlite_database_is_bad_input_and_left_alone(project, cli):
    spec = project.write_spec(project.spec(), "s.yaml")
    before = spec.read_bytes()
    for args in [("ls",), ("run", str(spec))]:
        message = _one_line_input_error(cli(*args, "--storage", "sqlite:///s.yaml"))
        assert message == ("--storage: sqlite:///s.yaml: 's.yaml' is not a SQLite database (file is not a database); "
                           "point it at tunesmith's store (sqlite:///tunesmith.db) or at a new file")
    assert spec.read_bytes() == before


def test_an_in_memory_store_is_refused_by_every_command(project, cli):
    """`run --storage sqlite://` ran every trial, exited 0 and kept nothing: an in-memory database lives as long as
    one command. Refused wherever the URL came from (the flag, the environment, the spec), nothing run."""
    spec = project.write_spec(project.spec(budget={"trials": 1}, executor={"kind": "inline"}), "s.yaml")
    fix = ("is an in-memory database, which lives only as long as one command: nothing recorded there outlives it; "
           "give a file, e.g. sqlite:///tunesmith.db")
    for args, env, said in [(("run", str(spec), "--storage", "sqlite://"), None, f"--storage: sqlite:// {fix}"),
                            (("ls",), {"TUNESMITH_STORAGE": "sqlite:///:memory:"},
                             f"TUNESMITH_STORAGE: sqlite:///:memory: {fix}"),
                            (("cycle", str(spec), "--data", "s.yaml", "--storage", "sqlite://"), None,
                             f"--storage: sqlite:// {fix}")]:
        assert _one_line_input_error(cli(*args, env=env)) == said, args
    memory_spec = project.write_spec(project.spec(budget={"trials": 1}, storage="sqlite://"), "m.yaml")
    assert _one_line_input_error(cli("run", str(memory_spec), env={"TUNESMITH_STORAGE": ""})).startswith(
        "storage: sqlite:// is an in-memory database"), "the spec's own storage:"
    assert not (project.root / ".tunesmith").exists(), "nothing ran"


# -- where the URL came from --------------------------------------------------------------------------------


def test_a_bad_url_names_where_it_came_from(project, cli):
    """A bad $TUNESMITH_STORAGE was reported as `storage:`, naming no variable; `--storage` and the spec's
    `storage:` each name themselves."""
    env = {"TUNESMITH_STORAGE": "sqlite:/nope/x.db"}
    fix = "(try sqlite:////nope/x.db for the file /nope/x.db, or sqlite:///nope/x.db for nope/x.db in this folder)"
    message = _one_line_input_error(cli("ls", env=env))
    assert message == f"TUNESMITH_STORAGE: 'sqlite:/nope/x.db' is not a database URL {fix}"
    message = _one_line_input_error(cli("ls", "--storage", "sqlite:/nope/x.db", env=env))
    assert message == f"--storage: 'sqlite:/nope/x.db' is not a database URL {fix}"
    spaced = _one_line_input_error(cli("ls", env={"TUNESMITH_STORAGE": "sqlite:///tunesmith.db "}))
    assert spaced == ("TUNESMITH_STORAGE: 'sqlite:///tunesmith.db ' has white space at its end, which would name "
                      "another file or database; remove it"), "a file named `tunesmith.db ` was made"
    assert not (project.root / "tunesmith.db ").exists()
    (project.root / "notes.txt").write_text("not a database")
    spec = project.write_spec(project.spec(storage="sqlite:///notes.txt"))
    message = _one_line_input_error(cli("run", str(spec), env=env))
    assert message.startswith("storage: sqlite:///notes.txt: 'notes.txt' is not a SQLite database"), message



@pytest.mark.parametrize("given", [
    "postgresql://postgres@db/tunesmith?service=tunesmith",  # the service file may set connect_timeout
    "postgresql+pg8000://postgres@db/tunesmith",  # another driver, which may not accept connect_timeout
])
def test_engine_url_adds_no_connect_timeout_where_a_service_or_another_driver_decides(given):
    """A URL parameter beats the service file's: a default added to a URL naming a service hid the timeout the
    service file set. And only psycopg is known to take connect_timeout."""
    from sqlalchemy.engine import make_url

    from tunesmith.storage.opening import engine_url

    assert "connect_timeout" not in engine_url(make_url(given)).query


def test_engine_url_adds_no_connect_timeout_where_pgservice_names_the_service(monkeypatch):
    from sqlalchemy.engine import make_url

    from tunesmith.storage.opening import CONNECT_TIMEOUT_S, engine_url

    given = make_url("postgresql://postgres@db/tunesmith")
    assert engine_url(given).query["connect_timeout"] == str(CONNECT_TIMEOUT_S)  # the default, without a service
    monkeypatch.setenv("PGSERVICE", "tunesmith")
    assert "connect_timeout" not in engine_url(given).query


@pytest.mark.parametrize(("address", "given_by", "fault"), [
    ("127.0.0.1:notaport", "--storage", "the port 'notaport' is not a number; write it as one from 1 to 65535"),
    ("[::1", "TUNESMITH_STORAGE", "the IPv6 host '[::1' opens '[' and never closes it; write it in brackets"),
    ("127.0.0.1:99999", "storage", "the port 99999 is out of range: a port is a number from 1 to 65535"),
])
def test_a_url_whose_host_or_port_cannot_be_read_is_bad_input_naming_where_it_came_from(project, cli, address,
                                                                                        given_by, fault):
    """A port that is no number, or an IPv6 host never closed, was a traceback (ValueError: invalid literal for
    int()) from every store command; out of range, the driver's refusal read as a failing store (exit 1)."""
    url = f"postgresql://postgres:hunter2@{address}/x"
    spec = project.write_spec(project.spec(**({"storage": url} if given_by == "storage" else {})), "s.yaml")
    args = {"--storage": ("ls", "--storage", url), "TUNESMITH_STORAGE": ("ls",), "storage": ("validate", str(spec))}
    env = {"TUNESMITH_STORAGE": url if given_by == "TUNESMITH_STORAGE" else ""}
    message = _one_line_input_error(cli(*args[given_by], env=env))
    assert message.startswith(f"{given_by}: ") and fault in message, message
    assert "hunter2" not in message or given_by == "storage", "a flag's or variable's password is not shown"
    if given_by == "storage":
        message = _one_line_input_error(cli("run", str(spec), env=env))
        assert message.startswith("storage: ") and fault in message, message


def test_an_option_a_sqlite_url_would_have_ignored_is_bad_input_not_a_library_warning(project, cli):
    """`?mode=xx` printed SQLAlchemy's SAWarning with a source line, and the store opened ignoring it: `?mode=ro`
    (without uri=true) opened it for writing."""
    store = SQLStore(project.storage)
    assert store.experiments() == []  # (made: an empty store)
    store.close()
    proc = cli("ls", "--storage", f"{project.storage}?mode=ro")
    message = _one_line_input_error(proc)
    assert message.startswith(f"--storage: {project.storage}?mode=ro: SQLite's driver takes no option 'mode'"), message
    assert "uri=true" in message and "SAWarning" not in proc.stderr
    as_uri = f"sqlite:///file:{project.db}?mode=xx&uri=true"  # an option SQLite refuses: exit 1, a failing store
    message = _one_line_input_error(cli("ls", "--storage", as_uri))
    assert message.startswith("--storage: ") and "SQLite refused an option of the URL (no such access mode: xx)" \
        in message, message


def test_validate_refuses_the_in_memory_storage_run_refuses(project, cli):
    """`validate` said valid for a spec whose `storage: sqlite://` `run` then refused (a walk)."""
    memory_spec = project.write_spec(project.spec(budget={"trials": 1}, storage="sqlite:///:memory:"), "m.yaml")
    message = _one_line_input_error(cli("validate", str(memory_spec)))
    assert message.startswith("storage: sqlite:///:memory: is an in-memory database"), message


def test_psycopgs_own_warning_of_a_lost_pipeline_is_not_printed_beside_tunesmiths_error() -> None:
    """A PostgreSQL connection killed mid-write had psycopg log "error ignored terminating <psycopg.Pipeline [BAD]>"
    as a warning, which Python's last-resort handler printed on stderr before tunesmith's own line. Run in a child:
    this process's logging may have handlers of pytest's."""
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-c", (
        "import logging; from sqlalchemy.engine import make_url; "
        "from tunesmith.storage.opening import engine_url; "
        "engine_url(make_url('postgresql://postgres@127.0.0.1/db')); "
        "logging.getLogger('psycopg').warning('error ignored terminating <psycopg.Pipeline [BAD]>')")],
        capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    assert "Pipeline" not in child.stderr, child.stderr


def test_an_optuna_study_database_is_named_as_optunas(project, cli, tmp_path):
    """`ls --storage sqlite:///optuna.db` on a study Optuna wrote said only "another application's schema
    (alembic_version 'v3.2.0.a'): 13 table(s) ...": a tool built on Optuna can say whose it is, and what to do."""
    import optuna

    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(study_name="ported", storage=url).optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    before = Path(tmp_path / "optuna.db").read_bytes()
    message = _one_line_input_error(cli("ls", "--storage", url))
    assert message.startswith(f"--storage: {url} is not a tunesmith store: it is an Optuna study database "
                              "(alembic_version "), message
    assert ("tunesmith cannot read or import an Optuna study: declare its space in a spec and run it anew "
            "(docs/from-optuna.md); nothing was written to it") in message, message
    assert Path(tmp_path / "optuna.db").read_bytes() == before
