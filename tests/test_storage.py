"""The store on SQLite and PostgreSQL: the contract suite, migrations, concurrency, errors."""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from tunesmith.errors import StorageError, StoreUnavailable
from tunesmith.records import TrialState
from tunesmith.storage import SQLStore, StoreUpgraded
from tunesmith.storage.schema import HEAD_REVISION
from tunesmith.testing import store_contract


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.mark.parametrize("check", store_contract.CHECKS, ids=lambda c: c.__name__)
def test_contract(store_url, check):
    store = SQLStore(store_url)
    try:
        check(store)
    finally:
        store.close()


def test_schema_is_created_by_alembic_at_head(store_url):
    store = SQLStore(store_url)
    store.experiments()
    store.close()
    engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD_REVISION
        assert {"experiments", "trials", "trial_reports", "events"} <= set(inspect(conn).get_table_names())
    engine.dispose()


def _alembic_config(conn: Any = None) -> Any:
    """tunesmith's migrations, run on ``conn`` when given."""
    from alembic.config import Config

    import tunesmith.storage.sql as sql

    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(os.path.dirname(sql.__file__), "migrations"))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def _upgrade(conn: Any, revision: str) -> None:
    """Make the store behind ``conn`` as tunesmith at ``revision`` made it."""
    from alembic import command

    command.upgrade(_alembic_config(conn), revision)


def test_alembic_head_matches_the_code():
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(_alembic_config()).get_current_head() == HEAD_REVISION


def _sqlite_schema(path: Any) -> dict[str, Any]:
    """Every table of the SQLite file at ``path`` as SQLite describes it: columns (name, type, not null, default,
    primary key), indexes (name, unique, origin, columns) and foreign keys; and the revision it is stamped with."""
    with sqlite3.connect(path) as conn:
        tables = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        schema: dict[str, Any] = {"revision": conn.execute("SELECT version_num FROM alembic_version").fetchall()}
        for table in tables:
            indexes = [(name, unique, origin, [c[2] for c in conn.execute(f"PRAGMA index_info('{name}')")])
                       for _, name, unique, origin, _ in conn.execute(f"PRAGMA index_list('{table}')")]
            schema[table] = {
                "columns": [tuple(c[1:]) for c in conn.execute(f"PRAGMA table_info('{table}')")],
                "indexes": sorted(indexes),
                "foreign_keys": sorted(tuple(k[2:]) for k in conn.execute(f"PRAGMA foreign_key_list('{table}')")),
            }
    return schema


def test_a_new_sqlite_store_has_the_schema_alembics_migrations_make(tmp_path):
    """A brand-new SQLite store is created from the tables in schema.py and stamped at the head, not migrated by
    Alembic from nothing (a third of a CPU-second per new store): the two are the same schema, table by table."""
    store = SQLStore(f"sqlite:///{tmp_path / 'direct.db'}")
    store.experiments()
    store.close()
    engine = create_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    with engine.begin() as conn:
        _upgrade(conn, "head")
    engine.dispose()
    direct, migrated = _sqlite_schema(tmp_path / "direct.db"), _sqlite_schema(tmp_path / "migrated.db")
    assert direct == migrated
    assert direct["revision"] == [(HEAD_REVISION,)] and len(direct) == 1 + 10  # the revision, the stamp, 9 tables


def test_a_new_sqlite_store_is_made_without_importing_alembic(tmp_path):
    """Every `tunesmith run` on a new store (most of the suite's) imported Alembic and ran each migration: a third of
    a CPU-second. An older store still is migrated by Alembic (the tests above)."""
    script = ("import sys; from tunesmith.storage import SQLStore; "
              f"SQLStore('sqlite:///{tmp_path / 'new.db'}').experiments(); print('alembic' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False", proc.stdout + proc.stderr


def test_sqlite_uses_wal(tmp_path):
    store = SQLStore(f"sqlite:///{tmp_path / 'w.db'}")
    store.experiments()
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    store.close()


def test_unreachable_store_is_a_clear_error(tmp_path):
    with pytest.raises(StorageError, match="does not exist"):
        SQLStore(f"sqlite:///{tmp_path / 'missing-folder' / 'x.db'}").experiments()
    with pytest.raises(StorageError, match="not a database URL"):
        SQLStore("not a url").experiments()
    with pytest.raises(StoreUnavailable, match="no database server answers at 127.0.0.1:1"):
        SQLStore("postgresql+psycopg://nobody@127.0.0.1:1/none").experiments()


def test_read_only_store_refuses_writes_and_keeps_data(tmp_path):
    path = tmp_path / "ro.db"
    store = SQLStore(f"sqlite:///{path}")
    exp = store.create_experiment("kept", store_contract.SPEC, "random", "", now=1.0)
    store.new_trial(exp.id, {"x": 0.5}, experiment_seed=1, now=2.0, log_path_template="{number}")
    store.close()
    os.chmod(path, 0o444)
    try:
        ro = SQLStore(f"sqlite:///{path}")
        if os.geteuid() == 0:
            # root ignores file modes; make the database itself refuse writes instead
            ro = SQLStore(f"sqlite:///file:{path}?mode=ro&uri=true")
        with pytest.raises(StorageError, match="cannot record"):
            ro.new_trial(exp.id, {"x": 0.1}, experiment_seed=1, now=3.0, log_path_template="{number}")
        assert [t.params for t in ro.trials(exp.id)] == [{"x": 0.5}]
        ro.close()
    finally:
        os.chmod(path, 0o644)


WRITER = textwrap.dedent("""
    import sys, time
    from tunesmith.storage import SQLStore
    store = SQLStore(sys.argv[1])
    exp = store.experiment("shared")
    for i in range(int(sys.argv[2])):
        store.new_trial(exp.id, {"x": i / 100}, experiment_seed=0, now=time.time(), log_path_template="{number}")
""")


@pytest.mark.parametrize("writers,per_writer", [(4, 25)])
def test_concurrent_writers_never_duplicate_numbers(store_url, tmp_path, writers, per_writer):
    store = SQLStore(store_url)
    exp = store.create_experiment("shared", store_contract.SPEC, "random", "", now=time.time())
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    procs = [subprocess.Popen([sys.executable, str(script), store_url, str(per_writer)]) for _ in range(writers)]
    assert [p.wait(timeout=120) for p in procs] == [0] * writers
    numbers = [t.number for t in store.trials(exp.id)]
    assert sorted(numbers) == list(range(writers * per_writer))
    assert all(t.state is TrialState.RUNNING for t in store.trials(exp.id))
    store.close()


OPENER = textwrap.dedent("""
    import sys
    from tunesmith.storage import SQLStore
    store = SQLStore(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()  # the go: every opener is imported and waiting, so they open the store together
    store.experiments()   # the first use creates the schema
    store.close()
""")


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_coordinators_opening_one_new_store_at_once_all_open_it(backend, request, tmp_path):
    """Coordinators started together on a new store each found no schema and created it: some of them failed with
    "table alembic_version already exists" (SQLite) or a duplicate pg_type (PostgreSQL). The creation is
    serialised: each one opens the store, and it is at the head revision."""
    script = tmp_path / "opener.py"
    script.write_text(OPENER)
    server = request.getfixturevalue("postgres_server") if backend == "postgres" else ""
    for attempt in range(3):  # a race: unserialised, the first round already lost it in every try here
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / f'new-{attempt}.db'}"
        else:
            admin = create_engine(server, isolation_level="AUTOCOMMIT")
            name = f"tunesmith_test_{os.getpid()}_{attempt}_{int(time.time() * 1000) % 10**6}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            url = make_url(server).set(database=name).render_as_string(hide_password=False)
        try:
            openers = [subprocess.Popen([sys.executable, str(script), url], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
            for p in openers:
                assert p.stdout is not None and p.stdout.readline() == "ready\n", p.communicate(timeout=60)[1]
            for p in openers:
                assert p.stdin is not None
                p.stdin.write("go\n")
                p.stdin.flush()
            failed = [err for p in openers for _, err in [p.communicate(timeout=120)] if p.returncode != 0]
            assert not failed, f"round {attempt}: " + "\n".join(e.strip().splitlines()[-1] for e in failed)
            engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
            with engine.connect() as conn:
                assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD_REVISION
            engine.dispose()
        finally:
            if backend == "postgres":
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


def test_sqlite_file_is_readable_by_plain_sqlite(tmp_path):
    """The record is not locked into tunesmith: any SQLite client reads it."""
    path = tmp_path / "plain.db"
    store = SQLStore(f"sqlite:///{path}")
    store.create_experiment("plain", store_contract.SPEC, "random", "", now=1.0)
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name, status FROM experiments").fetchall() == [("plain", "created")]


def test_a_store_at_an_older_revision_is_migrated_with_its_data(store_url):
    """A store written by tunesmith at revision 0001 opens under the current code: upgraded, nothing lost."""
    engine = create_engine(store_url)
    with engine.connect() as conn:
        _upgrade(conn, "0001")
        conn.execute(text("INSERT INTO experiments (name, spec, status, created_at, updated_at, next_number) "
                          "VALUES ('old', '{\"name\": \"old\"}', 'completed', 1.0, 2.0, 1)"))
        exp_id = conn.execute(text("SELECT id FROM experiments WHERE name = 'old'")).scalar()
        conn.execute(text("INSERT INTO trials (experiment_id, number, state, params, seed, \"values\", metrics, "
                          "attempts) VALUES (:e, 0, 'completed', '{\"x\": 0.5}', 7, '[0.25]', '{}', 1)"), {"e": exp_id})
        conn.commit()
    engine.dispose()
    store = SQLStore(store_url)
    with pytest.warns(StoreUpgraded, match="from schema revision '0001'"):  # the Python API says it upgraded it
        exp = store.experiment("old")
    assert exp.attributes == {} and exp.status.value == "completed"
    [trial] = store.trials(exp.id)
    assert (trial.params, trial.values, trial.seed, trial.owner) == ({"x": 0.5}, (0.25,), 7, None)
    store.set_attributes(exp.id, {"fingerprint": {"rows": 10}}, now=3.0)
    assert store.experiment("old").attributes == {"fingerprint": {"rows": 10}}
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD_REVISION
    store.close()


def test_a_store_made_at_revision_0003_gains_coordinator_beats_and_keeps_its_lead(store_url):
    """A store of the schema before coordinators beat for themselves (0003), with a run in progress: it upgrades to
    the head, keeps its experiment, lease, trial and quota, and the lead it names, which never beats for itself (an
    older tunesmith), is still at work by its lease; a coordinator's beat is then recorded."""
    from tunesmith.coordinators import at_work

    engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://"))
    now = time.time()
    with engine.connect() as conn:
        _upgrade(conn, "0003")
        conn.execute(text("INSERT INTO experiments (name, spec, status, created_at, updated_at, next_number, "
                          "lease_owner, lease_expires_at) VALUES ('running', '{\"name\": \"running\"}', 'running', "
                          ":t, :t, 1, 'elsewhere.invalid:7:ab12', :until)"), {"t": now - 10, "until": now + 100})
        exp_id = conn.execute(text("SELECT id FROM experiments WHERE name = 'running'")).scalar()
        conn.execute(text("INSERT INTO trials (experiment_id, number, state, params, seed, metrics, attempts, "
                          "started_at, heartbeat_at, owner) VALUES (:e, 0, 'running', '{\"x\": 0.5}', 7, '{}', 1, "
                          ":t, :t, 'elsewhere.invalid:7:ab12')"), {"e": exp_id, "t": now - 10})
        conn.execute(text("INSERT INTO quota_limits (quota_key, max_running, updated_at) VALUES ('user:ann', 2, 1.0)"))
        conn.commit()
    engine.dispose()
    store = SQLStore(store_url, on_upgrade=lambda said: None)  # (the API's warning: the test of revision 0001)
    try:
        exp = store.experiment("running")
        [trial] = store.trials(exp.id)
        assert (trial.state, trial.owner) == (TrialState.RUNNING, "elsewhere.invalid:7:ab12")
        assert store.lease_holder(exp.id, now) == "elsewhere.invalid:7:ab12"
        assert [(q.key, q.limit) for q in store.quotas(now)] == [("user:ann", 2)]
        assert store.coordinator_beats(exp.id) == {}
        assert at_work(store, exp.id, now + 90) == ["elsewhere.invalid:7:ab12"], "no beats of its own: its lease"
        store.heartbeat(exp.id, [0], now, owner="elsewhere.invalid:8:cd34")
        assert store.coordinator_beats(exp.id) == {"elsewhere.invalid:8:cd34": now}
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD_REVISION
    finally:
        store.close()


def test_a_store_made_at_revision_0004_gains_deletion_records_and_keeps_its_run(store_url):
    """A store of the schema before deletions were recorded (0004), with a run in progress and a finished experiment
    that was promoted: it upgrades to the head and keeps both (the lead still at work by its lease and beat); no
    deletion is recorded yet, and deleting the finished one keeps its promotion, who deleted it and its trials."""
    from tunesmith.audit import AuditKind
    from tunesmith.coordinators import at_work
    from tunesmith.deletion import delete_experiment

    engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://"))
    now = time.time()
    lead = "elsewhere.invalid:7:ab12"
    with engine.connect() as conn:
        _upgrade(conn, "0004")
        for name, status in (("running", "running"), ("done", "completed")):
            conn.execute(text("INSERT INTO experiments (name, spec, status, created_at, updated_at, next_number, "
                              "lease_owner, lease_expires_at) VALUES (:n, '{}', :s, :t, :t, 1, :o, :until)"),
                         {"n": name, "s": status, "t": now - 10, "o": lead if status == "running" else None,
                          "until": now + 100 if status == "running" else None})
        ids = dict(conn.execute(text("SELECT name, id FROM experiments")).all())
        for name, state in (("running", "running"), ("done", "completed")):
            conn.execute(text("INSERT INTO trials (experiment_id, number, state, params, seed, metrics, attempts, "
                              "started_at, heartbeat_at, owner) VALUES (:e, 0, :s, '{\"x\": 0.5}', 7, '{}', 1, :t, "
                              ":t, :o)"), {"e": ids[name], "s": state, "o": lead,
                                           "t": now - 10 if state == "running" else now - 3600})  # done an hour ago
        conn.execute(text("INSERT INTO coordinator_beats (experiment_id, owner, beat_at) VALUES (:e, :o, :t)"),
                     {"e": ids["running"], "o": lead, "t": now - 1})
        conn.execute(text("INSERT INTO events (experiment_id, trial_number, kind, at, payload) VALUES (:e, 0, "
                          "'promoted', :t, '{\"model_name\": \"m\", \"version\": \"1\"}')"),
                     {"e": ids["done"], "t": now - 5})
        conn.commit()
    engine.dispose()
    store = SQLStore(store_url, on_upgrade=lambda said: None)  # (the API's warning: the test of revision 0001)
    try:
        exp = store.experiment("running")
        assert [(t.state, t.owner) for t in store.trials(exp.id)] == [(TrialState.RUNNING, lead)]
        assert store.lease_holder(exp.id, now) == lead and at_work(store, exp.id, now) == [lead]
        assert store.coordinator_beats(exp.id) == {lead: now - 1}
        assert store.deleted_experiments() == []
        # its promotion makes it the champion's experiment: deleting it needs the override (checked at deletion)
        kept = delete_experiment(store, store.experiment("done"), now, "made at 0004", even_if_champion=True)
        assert (kept.name, kept.experiment_id, kept.trials, kept.detail["reason"]) == ("done", ids["done"], 1,
                                                                                        "made at 0004")
        assert [(e.kind, e.trial_number, dict(e.payload)) for e in kept.kept_events] == [
            (AuditKind.PROMOTED, 0, {"model_name": "m", "version": "1"})]
        assert store.deleted_experiments("done") == [kept]
        assert [e.name for e in store.experiments()] == ["running"] and store.lease_holder(exp.id, now) == lead
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD_REVISION
    finally:
        store.close()


def test_a_deletion_that_fails_keeps_no_record_of_it_and_removes_nothing(store_url):
    """The record of a deletion and the deletion are one transaction: a deletion the database refuses halfway (here a
    trigger on the experiments table; a lost connection or a full disk alike) leaves the experiment, its trials and
    events as they were and no record saying it was deleted; once the database allows it, both happen."""
    from tunesmith.audit import KEPT_AFTER_DELETION, AuditKind

    store = SQLStore(store_url)
    try:
        exp = store.create_experiment("kept whole", store_contract.SPEC, "random", "", now=1.0)
        store.new_trial(exp.id, {"x": 0.1}, experiment_seed=1, now=2.0, log_path_template="{number}")
        store.record_event(exp.id, AuditKind.PROMOTED, 3.0, 0, {"model_name": "m", "version": "1"})
        events_before = store.events(exp.id)
        with store.engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.execute(text("CREATE TRIGGER refuse_delete BEFORE DELETE ON experiments "
                                  "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"))
            else:
                conn.execute(text("CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS "
                                  "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"))
                conn.execute(text("CREATE TRIGGER refuse_delete BEFORE DELETE ON experiments FOR EACH ROW "
                                  "EXECUTE FUNCTION refuse_delete()"))
        with pytest.raises(StorageError, match="refused by the test"):
            store.delete_experiment(exp, 4.0, KEPT_AFTER_DELETION, {"reason": "x"})
        assert store.deleted_experiments() == []
        assert store.events(exp.id) == events_before and len(store.trials(exp.id)) == 1
        with store.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER refuse_delete" + ("" if conn.dialect.name == "sqlite"
                                                              else " ON experiments")))
        kept = store.delete_experiment(exp, 5.0, KEPT_AFTER_DELETION, {"reason": "x"})
        assert store.deleted_experiments() == [kept] and store.experiment_names() == set()
        assert kept.kept_events == tuple(e for e in events_before if e.kind == AuditKind.PROMOTED)
    finally:
        store.close()


def test_new_trial_respects_the_budget_limit(store_url):
    store = SQLStore(store_url)
    exp = store.create_experiment("limited", store_contract.SPEC, "random", "", now=1.0)
    got = [store.new_trial(exp.id, {"x": 0.1}, 0, 2.0, "{number}", owner="h:1:a", limit=3) for _ in range(5)]
    assert [t.number if t else None for t in got] == [0, 1, 2, None, None]
    assert store.trials(exp.id)[0].owner == "h:1:a"
    store.close()


@pytest.mark.postgres
def test_a_beat_waiting_on_a_postgres_row_lock_fails_after_the_lock_timeout_and_is_told(postgres_url, monkeypatch):
    """PostgreSQL waits for a lock forever by default: a beat behind another session's ``SELECT ... FOR UPDATE``
    of the experiment's row failed nothing and renewed nothing (told only as "waited"), and never ended.
    tunesmith's connections give up after ``LOCK_WAIT_S`` (30 s, as SQLite's busy timeout; 1 s here), so the beat
    fails and its failure is told; a lock_timeout the URL sets is kept."""
    import tunesmith.storage.sql as sql
    from tests.helpers import wait_for
    from tunesmith.coordinators import Heartbeat

    url = postgres_url.replace("postgresql://", "postgresql+psycopg://")
    for address, expected in ((url, "30s"), (f"{url}?options=-c%20lock_timeout%3D5min", "5min")):
        store = SQLStore(address)
        with store.engine.connect() as conn:
            assert conn.execute(text("SHOW lock_timeout")).scalar() == expected, address
        store.close()
    monkeypatch.setattr(sql, "LOCK_WAIT_S", 1)
    store = SQLStore(url)
    exp = store.create_experiment("locked", store_contract.SPEC, "random", "", now=time.time())

    def beat() -> None:  # what the runner's beat does: renew the lease, beat for itself
        store.renew_lease(exp.id, "otherhost:1:a", time.time(), 120.0)
        store.heartbeat(exp.id, [], time.time(), "otherhost:1:a")

    heartbeat = Heartbeat(beat, every=0.05)
    holder = create_engine(url)
    told: list[str] = []
    try:
        with holder.connect() as other:  # holds the row lock until its transaction ends
            other.execute(text("SELECT id FROM experiments WHERE id = :id FOR UPDATE"), {"id": exp.id})
            heartbeat.start()
            wait_for(lambda: told.extend(heartbeat.untold()) or any("failed in a row" in m for m in told), 30)
            other.rollback()
    finally:
        heartbeat.stop()
        store.close()
        holder.dispose()
    failed = [m for m in told if "failed in a row" in m]
    assert "StorageError" in failed[0] and "lock timeout" in failed[0], failed


def test_a_stale_delete_never_deletes_the_experiment_that_took_its_id(store_url):
    """`tunesmith delete X` reads X before its checks and its prompt (minutes): another process may delete X
    meanwhile, and a third create Y, which SQLite gives X's id (no AUTOINCREMENT; on PostgreSQL a sequence reset, as
    after a restore, does the same). The stale deletion raised nothing and deleted Y, unchecked, recorded under X's
    name; now it finds X gone and leaves Y and its trials as they were."""
    from tunesmith.audit import KEPT_AFTER_DELETION
    from tunesmith.deletion import delete_experiment
    from tunesmith.errors import ExperimentNotFound

    a, b, c = SQLStore(store_url), SQLStore(store_url), SQLStore(store_url)
    try:
        a.create_experiment("keep", store_contract.SPEC, "random", "", now=1.0)
        x = a.create_experiment("X", store_contract.SPEC, "random", "", now=2.0)
        stale = b.experiment("X")  # process B: `tunesmith delete X`, waiting at its prompt
        delete_experiment(a, a.experiment("X"), 3.0, "process A")
        if c.engine.dialect.name == "postgresql":
            with c.engine.begin() as conn:
                conn.execute(text("SELECT setval(pg_get_serial_sequence('experiments', 'id'), :last)"),
                             {"last": x.id - 1})
        y = c.create_experiment("Y", store_contract.SPEC, "random", "", now=4.0)
        c.new_trial(y.id, {"x": 0.1}, experiment_seed=1, now=5.0, log_path_template="{number}")
        assert y.id == stale.id  # the id given again: what makes a deletion by id alone wrong
        with pytest.raises(ExperimentNotFound, match="'X' is no longer in"):
            delete_experiment(b, stale, 6.0, "process B")
        with pytest.raises(ExperimentNotFound):
            b.delete_experiment(stale, 6.0, KEPT_AFTER_DELETION, {})
        assert c.experiment_names() == {"keep", "Y"} and len(c.trials(y.id)) == 1
        assert [d.name for d in c.deleted_experiments()] == ["X"]
    finally:
        for store in (a, b, c):
            store.close()


def test_a_deletion_checked_before_a_coordinator_started_is_refused_by_its_lease(store_url):
    """`tunesmith delete X` checks that no coordinator is at work, then waits at its prompt: a `resume X` started
    meanwhile takes the lease, and the deletion, after the prompt, is refused (LeaseHeld) and removes nothing; the
    store refuses it too, inside its transaction, to a caller that skipped the re-check."""
    from tunesmith.audit import KEPT_AFTER_DELETION
    from tunesmith.deletion import delete_experiment, refuse_deleting
    from tunesmith.errors import LeaseHeld

    store = SQLStore(store_url)
    try:
        exp = store.create_experiment("X", store_contract.SPEC, "random", "", now=1.0)
        now = time.time()
        refuse_deleting(store, exp, now)  # nobody at work: the prompt is shown
        lead = "elsewhere.invalid:7:ab12"
        assert store.acquire_lease(exp.id, lead, now, ttl=600.0) is None
        with pytest.raises(LeaseHeld, match="being run by"):
            delete_experiment(store, exp, now + 1, "after the prompt")
        with pytest.raises(LeaseHeld, match=lead):
            store.delete_experiment(exp, now + 1, KEPT_AFTER_DELETION, {})
        assert store.experiment_names() == {"X"} and store.deleted_experiments() == []
    finally:
        store.close()


def test_a_deletion_checked_before_a_retune_was_recorded_is_refused_after_the_prompt(store_url):
    """`tunesmith delete X` checks that X has no re-tunes, then waits at its prompt: a `tunesmith cycle` re-tunes X
    meanwhile (names the re-tune on X, records it). Only the coordinator check was repeated, on the record read
    before the prompt: X was deleted and its re-tune named a parent that no longer existed. Now the checks run
    again on a fresh read, and the deletion is refused and removes nothing."""
    from tunesmith.deletion import delete_experiment, refuse_deleting
    from tunesmith.errors import UserInputError

    store = SQLStore(store_url)
    try:
        exp = store.create_experiment("X", store_contract.SPEC, "random", "", now=1.0)
        refuse_deleting(store, exp, time.time())  # no re-tunes yet: the prompt is shown
        # the cycle's re-tune, as run_retune_plan records it: named on the parent, then its own experiment
        store.change_attributes(exp.id, lambda attributes: {"retunes": ["X-r1"]}, 2.0)
        store.create_experiment("X-r1", store_contract.SPEC, "random", "", now=3.0)
        with pytest.raises(UserInputError, match="has re-tune"):
            delete_experiment(store, exp, time.time(), "after the prompt")
        assert store.experiment_names() == {"X", "X-r1"} and store.deleted_experiments() == []
    finally:
        store.close()


def test_a_refused_deletion_of_a_retune_leaves_its_parent_naming_it(store_url):
    """The re-tune's parent forgot it before the store's own checks: a stale `tunesmith delete R` (R deleted and
    re-tuned again under its name during the prompt) was refused by the store, but R's parent no longer named the
    R that exists. A refused deletion now changes nothing; one that goes through still unnames it."""
    from tunesmith.deletion import delete_experiment
    from tunesmith.errors import ExperimentNotFound

    store = SQLStore(store_url)
    lineage = {"lineage": {"parent": "P", "root": "P", "generation": 1}}
    try:
        parent = store.create_experiment("P", store_contract.SPEC, "random", "", now=1.0)
        store.change_attributes(parent.id, lambda attributes: {"retunes": ["R"]}, 1.5)
        first = store.create_experiment("R", store_contract.SPEC, "random", "", now=2.0)
        store.change_attributes(first.id, lambda attributes: lineage, 2.5)
        stale = store.experiment("R")  # `tunesmith delete R`, waiting at its prompt
        delete_experiment(store, store.experiment("R"), 3.0, "another process")
        assert store.experiment("P").attributes.get("retunes") == []
        store.change_attributes(parent.id, lambda attributes: {"retunes": ["R"]}, 4.0)  # re-tuned again as R
        again = store.create_experiment("R", store_contract.SPEC, "random", "", now=5.0)
        store.change_attributes(again.id, lambda attributes: lineage, 5.5)
        with pytest.raises(ExperimentNotFound, match="'R' is no longer in"):
            delete_experiment(store, stale, 6.0, "after the prompt")
        assert store.experiment("P").attributes["retunes"] == ["R"] and "R" in store.experiment_names()
    finally:
        store.close()


# Promotions in the order recorded, each (experiment, version, at): `at` disagrees with the order (hosts' clocks)
_PROMOTIONS_AT_ODDS_WITH_THEIR_ORDER = {
    "the deleted one's clock ahead": [("first", "1", 10.0), ("deleted", "3", 30.0), ("second", "2", 20.0)],
    "the first one's clock ahead": [("first", "1", 30.0), ("deleted", "3", 20.0), ("second", "2", 10.0)],
}


@pytest.mark.parametrize("order", sorted(_PROMOTIONS_AT_ODDS_WITH_THEIR_ORDER))
def test_the_champion_is_replayed_in_the_order_promotions_were_recorded_deleted_ones_too(store_url, order):
    """Promotions of live experiments and of a deleted one (kept in its record of deletion), whose times disagree
    with the order they were recorded in (coordinators on hosts whose clocks differ). The replay merged the live
    ones, sorted by event id, with the deleted one's by time: neither order, and the champion named could be any.
    PostgreSQL's event ids are never given again (the kept events keep theirs): the last recorded is the champion.
    SQLite gives a deleted event's id again, so its replay goes by time, all of it: the latest is the champion."""
    from tunesmith.audit import KEPT_AFTER_DELETION, AuditKind
    from tunesmith.promotion.champions import champions_held

    store = SQLStore(store_url)
    try:
        made = {name: store.create_experiment(name, store_contract.SPEC, "random", "", now=1.0)
                for name in ("first", "deleted", "second")}
        promotions = _PROMOTIONS_AT_ODDS_WITH_THEIR_ORDER[order]
        for name, version, at in promotions:
            store.record_event(made[name].id, AuditKind.PROMOTED, at, 0, {"model_name": "m", "version": version})
        recorded = [e.id for e in store.events(made["deleted"].id) if e.kind == AuditKind.PROMOTED]
        store.delete_experiment(made["deleted"], 40.0, KEPT_AFTER_DELETION, {})
        assert [e.id for e in store.deleted_experiments()[0].kept_events] == recorded  # kept with their ids
        by_ids = store.engine.dialect.name == "postgresql"
        champion = promotions[-1] if by_ids else max(promotions, key=lambda p: p[2])
        held = {name: [(c.model_name, c.version, c.experiment) for c in champions_held(store, made[name])]
                for name in ("first", "second")}
        assert held == {name: [("m", champion[1], name)] if name == champion[0] else [] for name in held}
    finally:
        store.close()


def test_an_unknown_name_lists_ten_experiments_and_counts_the_rest_and_a_deleted_one_suggests_no_loose_match(tmp_path):
    """A store of eleven experiments listed ten under 'experiments here', the eleventh silently missing; and a
    deleted experiment's exact name was offered a loosely similar one ('bob-exp' -> 'orph-exp'), though a name typed
    exactly as it once was is no typo."""
    from tunesmith.audit import KEPT_AFTER_DELETION
    from tunesmith.errors import ExperimentNotFound

    store = SQLStore(f"sqlite:///{tmp_path / 'ts.db'}")
    try:
        for i in range(11):
            store.create_experiment(f"e{i:02d}", store_contract.SPEC, "random", "", now=1.0 + i)
        with pytest.raises(ExperimentNotFound, match=r"experiments here: e00, .*, e09 and 1 more \(tunesmith ls\)$"):
            store.experiment("nosuch")
        store.create_experiment("orph-exp", store_contract.SPEC, "random", "", now=20.0)
        store.delete_experiment(store.create_experiment("bob-exp", store_contract.SPEC, "random", "", now=21.0),
                                22.0, KEPT_AFTER_DELETION, {})
        with pytest.raises(ExperimentNotFound) as gone:
            store.experiment("bob-exp")
        assert "its audit trail: tunesmith audit bob-exp" in str(gone.value)
        assert "did you mean" not in str(gone.value)
    finally:
        store.close()


CLI = f"{shlex.quote(sys.executable)} -m tunesmith.cli"  # in a shell script run by _in_a_mount_namespace


def _in_a_mount_namespace(project, script: str, what: str) -> None:
    """Run ``script`` (sh) in the project folder inside a user and mount namespace of its own (``unshare -rm``: it
    may mount without root, and its mounts end with it); skip where that is not allowed, saying ``what`` needed it."""
    import shutil

    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip(f"needs unshare -rm (a user and mount namespace) to {what} without root")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=180,
                          cwd=project.root, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr


def test_a_store_on_a_read_only_file_system_is_read_and_a_write_refused_saying_why(project, tmp_path):
    """An archived store on read-only media (a snapshot, a read-only volume): ls, show, trials and version all said
    `cannot open the SQLite file (unable to open database file); check that it is a file this user may read and
    write`: SQLite in WAL mode writes its -shm file beside the store even to read it."""
    import tunesmith

    archive = tmp_path / "archive"
    archive.mkdir()
    tunesmith.run(project.spec("kept", executor={"kind": "inline"}, budget={"trials": 2}),
                  storage=f"sqlite:///{archive / 'tunesmith.db'}")  # set-up: reading it back is what is checked
    url = f"sqlite:///{archive / 'tunesmith.db'}"
    _in_a_mount_namespace(project, f"mount --bind {archive} {archive} && mount -o remount,ro,bind {archive} && "
                                   f"{CLI} show kept --json --storage {url} > show.json && "
                                   f"{CLI} version --json --storage {url} > version.json && "
                                   f"{{ {CLI} delete kept --yes --storage {url} 2> delete.err; echo $? > delete.code; }}",
                          "mount a folder read-only")
    assert json.loads((project.root / "show.json").read_text())["trials"]["completed"] == 2
    assert json.loads((project.root / "version.json").read_text())["store"]["schema_revision"]
    assert (project.root / "delete.code").read_text().strip() == "1"
    said = " ".join((project.root / "delete.err").read_text().split())
    assert "attempt to write a readonly database (the SQLite file is on a read-only file system" in said, said
    assert tunesmith.open_experiment("kept", storage=url).trials, "nothing was deleted"


def test_an_older_store_on_a_read_only_file_system_is_refused_naming_its_revision_and_the_fix(project, tmp_path):
    """An archive an older tunesmith wrote (schema 0004) on read-only media: every command tried to upgrade it
    before reading it and said only `cannot open the store at URL: attempt to write a readonly database`, exit 1,
    though README said such an archive is read as it is. One line now names its revision, the one this tunesmith
    needs and the fix, exit 2; the archive is left as it was."""
    archive = tmp_path / "archive"
    archive.mkdir()
    db = archive / "tunesmith.db"
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")  # as tunesmith leaves its files
        _upgrade(conn, "0004")
        conn.execute(text("INSERT INTO experiments (name, spec, status, created_at, updated_at, next_number) "
                          "VALUES ('old', '{\"name\": \"old\"}', 'completed', 1.0, 2.0, 0)"))
        conn.commit()
    engine.dispose()
    before, url = db.read_bytes(), f"sqlite:///{db}"
    commands = {"ls": "ls", "show": "show old", "trials": "trials old", "report": "report old -o r.html"}
    _in_a_mount_namespace(project, f"mount --bind {archive} {archive} && mount -o remount,ro,bind {archive}" + "".join(
        f" && {{ {CLI} {args} --storage {url} 2> {n}.err; echo $? > {n}.code; }}" for n, args in commands.items()),
        "mount a folder read-only")
    for n in commands:
        said = (project.root / f"{n}.err").read_text()
        assert (project.root / f"{n}.code").read_text().strip() == "2", (n, said)
        assert said.splitlines() == [
            f"error: --storage: the store at {url} is at schema revision '0004', older than the {HEAD_REVISION!r} "
            "this tunesmith needs: it must be upgraded before it can be read, and this user cannot write to it "
            "(attempt to write a readonly database); copy it somewhere writable and open the copy (it is upgraded "
            "there), or read it with the tunesmith that wrote it (one whose `tunesmith version` says schema "
            f"revision 0004), as sqlite:///file:{db}?immutable=1&uri=true on this read-only medium; nothing was "
            "written to it"], (n, said)
    assert db.read_bytes() == before and sorted(p.name for p in archive.iterdir()) == ["tunesmith.db"]


FILLS_ITS_DISK = """
import os


def objective(config, trial):
    folder = os.environ["FULL_DIR"]
    if os.path.exists(os.path.join(folder, "armed")):  # fill the store's file system, as another writer would
        try:
            with open(os.path.join(folder, "filler"), "wb") as out:
                while True:
                    out.write(b"x" * 65536)
        except OSError:
            pass
    return config["x"]
"""


def test_a_store_whose_disk_fills_mid_run_ends_it_saying_how_to_resume_and_resume_finishes(project):
    """A full disk mid-run said `storage error: cannot record the trial unless another coordinator took it ...` (the
    name of a transaction, not words for a user) and nothing of how to go on once the space was freed. The store is
    on a 4 MiB tmpfs of its own (a mount namespace: no root needed), which the trial fills."""
    project.write("fills.py", FILLS_ITS_DISK)
    project.write_spec(project.spec("full", trial={"function": "fills:objective"}, executor={"kind": "inline"},
                                    budget={"trials": 4}, strategy="random"))
    disk = project.root / "disk"
    disk.mkdir()
    url = f"sqlite:///{disk / 't.db'}"
    _in_a_mount_namespace(project, f"mount -t tmpfs -o size=4m tmpfs {disk} && export FULL_DIR={disk} && "
                                   f"{CLI} run full.yaml -q --name made --storage {url} && touch {disk}/armed && "
                                   f"{{ {CLI} run full.yaml -q --storage {url} 2> run.err; echo $? > run.code; }} && "
                                   f"rm {disk}/filler {disk}/armed && {CLI} resume full -q --storage {url} && "
                                   f"{CLI} show full --json --storage {url} > show.json", "mount a small tmpfs")
    assert (project.root / "run.code").read_text().strip() == "1"
    said = " ".join((project.root / "run.err").read_text().split())
    assert said.startswith(f"storage error: cannot record the trial in the store at {url}: database or disk is full; "
                           "what was recorded before it is kept: once the store takes writes again, continue with: "
                           f"tunesmith resume full --storage {url}"), said
    assert json.loads((project.root / "show.json").read_text())["trials"]["completed"] == 4, "the hint's resume"


# -- intermediate reports: held, and written many in one statement ---------------------------------------------------
MANY_REPORTS = """
def objective(config, trial):
    for step in range(1, 1001):
        trial.report(step, config["x"] / step)
    return config["x"]
"""


def test_a_trial_of_1000_reports_writes_them_in_a_few_statements_all_recorded_in_order(project):
    """Each report was a store transaction of its own, paid inside the trial: 20,000 reports added 7-13 s to the
    trial and its duration_s (walk J, item 2). Inline trials: the coordinator is this process, its statements are
    counted here."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from tests.helpers import tune_in_process
    from tunesmith.records import Report

    project.write("many.py", MANY_REPORTS)
    spec = project.write_spec(project.spec("many", trial={"function": "many:objective"}, executor={"kind": "inline"},
                                           budget={"trials": 2}))
    writes: list[int] = []  # the rows each statement writing reports wrote

    def count(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().startswith("INSERT INTO trial_reports"):
            writes.append(len(parameters) if executemany else 1)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        tune_in_process(spec, project.db)
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert sum(writes) == 2000 and len(writes) <= 20, f"{len(writes)} statements wrote 2,000 reports"
    store = SQLStore(project.storage, create=False)
    try:
        for t in store.trials(store.experiment("many").id):
            assert t.intermediate == tuple(Report(s, t.params["x"] / s) for s in range(1, 1001)), t.number
    finally:
        store.close()


def _trial_to_report_on(store: SQLStore) -> tuple[int, int]:
    e = store.create_experiment("held", {"name": "held"}, "random", "", now=1.0)
    t = store.new_trial(e.id, {"x": 0.5}, experiment_seed=7, now=2.0, log_path_template="{number}")
    assert t is not None
    return e.id, t.number


def test_reports_a_write_failed_to_store_are_kept_for_the_next_and_its_transaction_says_why(store_url):
    """Held reports are written as the next transaction begins: one that fails them fails as that transaction, and
    keeps them, in order, for the next."""
    from sqlalchemy import event
    from sqlalchemy.exc import OperationalError

    from tunesmith.records import Report

    store = SQLStore(store_url)
    try:
        exp_id, number = _trial_to_report_on(store)

        def refuse(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
            if statement.lstrip().startswith("INSERT INTO trial_reports"):
                raise OperationalError(statement, parameters, Exception("disk I/O error"))

        event.listen(store.engine, "before_cursor_execute", refuse)
        for step in range(3):
            store.add_report(exp_id, number, 1, Report(step, step / 10), now=3.0)
        with pytest.raises(StorageError, match=r"^cannot read trials in the store at .*: disk I/O error$"):
            store.trials(exp_id)
        event.remove(store.engine, "before_cursor_execute", refuse)
        store.add_report(exp_id, number, 1, Report(3, 0.3), now=4.0)
        assert store.trials(exp_id)[0].intermediate == tuple(Report(s, s / 10) for s in range(4))
    finally:
        store.close()


def test_a_held_report_whose_trial_was_deleted_meanwhile_does_not_fail_the_stores_later_transactions(store_url):
    """Another process deleted the experiment while a report of its trial was held: the report can never be written
    (its trial id is NULL), and held again it failed every later transaction of the store, on any experiment."""
    from tunesmith.records import Report

    store, other = SQLStore(store_url), SQLStore(store_url)
    try:
        exp_id, number = _trial_to_report_on(store)
        kept = store.create_experiment("kept", {"name": "kept"}, "random", "", now=1.0)
        store.add_report(exp_id, number, 1, Report(0, 0.5), now=3.0)
        other.delete_experiment(other.experiment("held"), now=4.0, keep=(), detail={})
        assert store.trials(kept.id) == [] and [e.name for e in store.experiments()] == ["kept"]
    finally:
        store.close()
        other.close()


def test_held_reports_reach_readers_within_a_second_and_are_written_as_the_store_closes(store_url):
    """A trial that reports now and then: its last report is not held until the next one (a reader, `show` or the
    dashboard in another process, sees it within about a second), and closing the store writes what it holds."""
    from tests.helpers import settles
    from tunesmith.records import Report

    writer, reader = SQLStore(store_url), SQLStore(store_url)
    try:
        exp_id, number = _trial_to_report_on(writer)
        writer.add_report(exp_id, number, 1, Report(0, 0.5), now=3.0)
        assert settles(lambda: reader.trials(exp_id)[0].intermediate == (Report(0, 0.5),), timeout=2.0)
        writer.add_report(exp_id, number, 1, Report(1, 0.25), now=4.0)
        writer.close()
        assert reader.trials(exp_id)[0].intermediate == (Report(0, 0.5), Report(1, 0.25))
    finally:
        writer.close()
        reader.close()
