"""The SQL store: SQLite (embedded default, WAL) and PostgreSQL (psycopg 3), one code path.

Trial numbers come from an atomic ``UPDATE ... RETURNING`` on the experiment's counter, so several writers never
hand out the same number. Each public method is one transaction, but ``add_report``: intermediate reports are held and
written many at once, before the next transaction (storage/held_reports.py).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import logging
import os
import shlex
import threading
import uuid
import warnings
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection, bindparam, case, create_engine, delete, event, func, insert, inspect, or_, select, text, union, update,
)
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from tunesmith.audit import status_kind
from tunesmith.errors import (
    ExperimentExists, ExperimentNotFound, LeaseHeld, StorageConfigError, StorageError, StoreNotFound,
)
from tunesmith.extras import install_extra
from tunesmith.lease_holders import holder_alive
from tunesmith.records import (
    ExperimentRecord, FailureKind, ParamValue, QuotaUsage, Report, RunStatus, SlotGrant, TrialRecord, TrialState,
    continued_curve,
)
from tunesmith.seeding import derive_seed
from tunesmith.storage.base import DeletedExperiment, Event, begins_an_attempt
from tunesmith.storage.damage import damaged_file, damaged_store_error
from tunesmith.storage.held_reports import HeldReports
from tunesmith.storage.opening import (
    Contents, Survey, as_read_only_media_allows, engine_for, engine_url, foreign_store_error, newer_store_error,
    opening_error, read_store_url, refuse_unless_usable, refuse_url_without_database, schema_change_refused,
    written_by_newer_tunesmith,
)
from tunesmith.storage.schema import (
    HEAD_REVISION, alembic_version, coordinator_beats, deleted_experiments, events, experiments, metadata, quota_limits,
    quota_waiters, slot_leases, trial_reports, trials,
)
from tunesmith.storage.upgrades import StoreUpgraded, upgrade_refused, upgrade_said
from tunesmith.redaction import redact
from tunesmith.suggestions import closest

DEFAULT_URL = "sqlite:///tunesmith.db"
WAIT_TICKET_S = 2.0  # a waiter re-asks every quarter second; one silent this long has stopped waiting
# How long a statement waits for a lock another session holds before it fails (SQLite's busy timeout, PostgreSQL's
# lock_timeout): a store write is a short transaction, so a wait this long is a stuck lock. PostgreSQL waits
# forever by default: a heartbeat so stuck would fail nothing and renew nothing; failing, it is told.
LOCK_WAIT_S = 30


def resolve_url(explicit: str | None, spec_storage: str | None, env: Mapping[str, str]) -> str:
    """Where the store lives: ``--storage``, else the spec's ``storage:``, else ``TUNESMITH_STORAGE``, else
    ./tunesmith.db."""
    return explicit or spec_storage or env.get("TUNESMITH_STORAGE") or DEFAULT_URL


def url_origin(explicit: str | None, spec_storage: str | None, env: Mapping[str, str]) -> str:
    """Where :func:`resolve_url` found the URL, as errors about it name it: ``--storage``, the spec's ``storage``,
    ``TUNESMITH_STORAGE``, or ``storage`` for the default."""
    if explicit:
        return "--storage"
    if spec_storage:
        return "storage"
    return "TUNESMITH_STORAGE" if env.get("TUNESMITH_STORAGE") else "storage"


def describe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # (no URL, or a port that is no number: the opening says so)
        return redact(url)


def store_to_name(url: str, env: Mapping[str, str]) -> str | None:
    """The store at ``url`` as a resume hint names it (``--storage``, ``storage=``), password hidden: None where a
    resume given no store, from the same folder with ``env``, would open it anyway; else it would open another (a run
    given a store, or a spec's ``storage:``). The user puts the password back, or sets ``TUNESMITH_STORAGE``."""
    return None if url == resolve_url(None, None, env) else describe_url(url)


def resume_command(name: str, url: str, env: Mapping[str, str], join: bool = False, trials: int | None = None,
                   wall_time: float | None = None) -> str:
    """``tunesmith resume NAME`` as a hint prints it, for the experiment ``name`` in the store at ``url``: with
    ``--storage URL`` where :func:`store_to_name` says so (and ``--trials N``, ``--wall-time Ss`` to raise its
    budgets)."""
    words = ["tunesmith", "resume", name] + (["--join"] if join else []) + (["--trials", str(trials)] if trials else [])
    words += ["--wall-time", f"{wall_time:g}s"] if wall_time else []
    if (named := store_to_name(url, env)) is not None:
        words += ["--storage", named]
    return shlex.join(words)


def resume_hint(store: SQLStore, name: str, join: bool = False) -> str:
    """:func:`resume_command` for the experiment ``name`` in ``store``, as this process's environment opens stores."""
    return resume_command(name, store.url, os.environ, join)


def _live_holder(holder: str | None, expires: float | None, now: float) -> str | None:
    """The experiment lease's holder if it still holds it at ``now``: unexpired, and not known dead."""
    if holder and expires is not None and expires > now and holder_alive(holder):
        return str(holder)
    return None


class SQLStore:
    """Args:
        url: a SQLAlchemy URL (``sqlite:///path.db``, ``postgresql+psycopg://user@host/db``).
        sqlite_synchronous: SQLite's ``synchronous`` pragma: NORMAL (the default) survives a crash of any
            process; FULL also survives power loss, at the cost of an fsync per commit.
        create: create the store (the SQLite file, the schema in an empty database) when there is none; False for
            commands that only read or continue (``show``, ``resume``...), which then fail with StoreNotFound
            instead of leaving an empty store. Either way a database holding another application's tables is
            refused (storage/opening.py).
        origin: where ``url`` came from (``--storage``, ``TUNESMITH_STORAGE``...), to name in errors about it.
        on_upgrade: told, in a sentence for people, when opening the store upgraded an older tunesmith's schema
            (which every tunesmith that knows only older revisions then refuses); the CLI says it on stderr. None:
            a :class:`~tunesmith.storage.upgrades.StoreUpgraded` warning.
        upgrade: whether opening may upgrade an older tunesmith's schema; False refuses the store instead
            (StorageConfigError), as the CLI does under ``TUNESMITH_MIGRATE=never`` (storage/upgrades.py).
    """

    def __init__(self, url: str, sqlite_synchronous: str = "NORMAL", create: bool = True,
                 origin: str = "storage", on_upgrade: Callable[[str], None] | None = None,
                 upgrade: bool = True) -> None:
        self.url = url
        self.sqlite_synchronous = sqlite_synchronous
        self.create = create
        self.origin = origin
        self.on_upgrade = on_upgrade
        self.upgrade = upgrade
        self._engine: Engine | None = None
        self._slot_engine: Engine | None = None
        self._one_at_a_time: threading.RLock | None = None  # in-memory SQLite: its one connection's turns
        self._held = HeldReports(self._write_held_when_due)  # reports added, not yet written

    # -- connection and schema ------------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = self._connect()
        return self._engine

    def _connect(self) -> Engine:
        if self.url != self.url.strip():  # `TUNESMITH_STORAGE="sqlite:///t.db "` made a file named `t.db `
            end = "end" if self.url[-1:].isspace() else "start"
            raise StorageConfigError(f"{self.origin}: {describe_url(self.url)!r} has white space at its {end}, which "
                                     f"would name another file or database; remove it")
        url = read_store_url(self.url, self.origin)
        refuse_url_without_database(url, describe_url(self.url), self.origin)
        url = engine_url(url)
        is_sqlite = url.get_backend_name() == "sqlite"
        if is_sqlite and url.database and url.database != ":memory:" and not url.database.startswith("file:"):
            folder = Path(url.database).resolve().parent
            if not self.create and not Path(url.database).exists():
                raise StoreNotFound(f"no store at {url.database!r} (nothing has run here yet); run an "
                                         "experiment first, or point --storage / TUNESMITH_STORAGE at the store")
            if not folder.is_dir():
                raise StorageConfigError(
                    f"{self.origin}: the folder {str(folder)!r} for the SQLite file does not exist")
            if not self.create:
                url = as_read_only_media_allows(url)  # an archive, a snapshot: read as it is
        try:
            kwargs: dict[str, Any] = {}
            if is_sqlite:
                kwargs["connect_args"] = {"timeout": LOCK_WAIT_S}
                if _in_memory(url):
                    # Each connection to sqlite:// is a database of its own: the threads that beat (Heartbeat, the
                    # quota renewer) wrote to empty ones and failed, unseen. All share the one connection, one
                    # transaction at a time.
                    kwargs["connect_args"]["check_same_thread"] = False
                    kwargs["poolclass"] = StaticPool
                    self._one_at_a_time = threading.RLock()
            else:
                kwargs["pool_pre_ping"] = True
            engine = engine_for(url, describe_url(self.url), self.origin, **kwargs)
            if url.get_backend_name() == "postgresql":
                _postgres_lock_timeout(engine)
        except NoSuchModuleError:
            raise StorageConfigError(
                f"{self.origin}: no database dialect {url.drivername!r}; got {describe_url(self.url)!r} "
                "(try sqlite:///tunesmith.db or postgresql://user@host/dbname)") from None
        except ModuleNotFoundError as e:
            raise StorageConfigError(f"{self.origin}: the driver for {url.drivername} is not installed ({e.name}); "
                                     f"{_driver_fix(url)}") from None
        refuse_unless_usable(engine, describe_url(self.url), self.origin, self.create)  # before any schema change
        if is_sqlite and url.query.get("immutable") != "1":  # (read as it is: nothing to set)
            _sqlite_pragmas(engine, self.sqlite_synchronous)

        try:
            with engine.connect() as conn:
                self._migrate(conn)
        except SQLAlchemyError as e:  # (a search_path naming no schema is the URL's mistake: opening_error says so)
            engine.dispose()
            raise opening_error(e, url, describe_url(self.url), self.origin) from None
        except BaseException:
            engine.dispose()  # refused (a newer tunesmith's store): no connection left open behind the error
            raise
        return engine

    def _migrate(self, conn: Connection) -> None:
        """Bring the schema to the head revision (a no-op, one query, when it already is), telling ``on_upgrade`` of
        an upgrade.

        Several coordinators may open one new store at the same instant: the upgrade runs under a store-wide lock
        (_schema_lock), and whoever gets it second reads the revision again and finds nothing left to do, instead of
        creating tables that now exist ("table alembic_version already exists").

        Raises:
            StorageConfigError: this user may not make the change (a read-only medium or role; see
                :func:`schema_change_refused`), this store may not (``upgrade`` False: :func:`upgrade_refused`), or
                the store is not one this tunesmith can upgrade.
        """
        try:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except SQLAlchemyError:
            current = None  # nothing created yet
        conn.rollback()  # no snapshot held into the lock's wait
        if current == HEAD_REVISION:
            return
        if current is not None and not self.upgrade:  # (a newer tunesmith's was refused as it was surveyed)
            raise upgrade_refused(describe_url(self.url), self.origin, current, HEAD_REVISION)
        try:
            upgraded_from = self._migrate_under_lock(conn)
        except SQLAlchemyError as e:
            refused = schema_change_refused(e, conn.engine.url, describe_url(self.url), self.origin, current)
            if refused is None:
                raise
            raise refused from None
        if upgraded_from is None:
            return
        said = upgrade_said(describe_url(self.url), upgraded_from, HEAD_REVISION)
        if self.on_upgrade is not None:
            self.on_upgrade(said)
        else:  # the Python API: a team's store upgraded one way by a notebook's "read" is no silent matter
            warnings.warn(said, StoreUpgraded, stacklevel=2)

    def _migrate_under_lock(self, conn: Connection) -> str | None:
        """:meth:`_migrate`'s change, under the schema lock: the revision it upgraded from, None where it made a new
        schema or found the head (made meanwhile)."""
        with _schema_lock(conn):
            found = _schema_revision(conn)
            if found == HEAD_REVISION:
                return None  # made meanwhile, by the coordinator that held the lock before us
            if found is None and conn.dialect.name == "sqlite" and not inspect(conn).get_table_names():
                create_at_head(conn)  # a brand-new file: no Alembic (a third of a CPU-second to import and run)
                return None
            from tunesmith.storage.revisions import packaged_revisions

            if found is not None and found not in packaged_revisions():
                # a newer tunesmith (or another application) changed it since it was surveyed: Alembic would fail, a
                # traceback, on a revision it cannot locate
                if written_by_newer_tunesmith(found):
                    raise newer_store_error(describe_url(self.url), self.origin, found)
                tables = tuple(sorted(inspect(conn).get_table_names()))
                raise foreign_store_error(describe_url(self.url), self.origin,
                                          Survey(Contents.OTHER_APPLICATION, found, tables), conn.dialect.name)
            upgrade_with_alembic(conn)
            return found

    @contextmanager
    def _tx(self, what: str, held_first: bool = True) -> Iterator[Connection]:
        if held_first:  # what this transaction reads or writes comes after every report added
            self._write_held_reports(what)
        engine = self.engine  # (connected first: that sets _one_at_a_time)
        try:
            with self._one_at_a_time or contextlib.nullcontext(), engine.begin() as conn:
                yield conn
        except (ExperimentExists, ExperimentNotFound):
            raise
        except IntegrityError:
            raise
        except SQLAlchemyError as e:
            raise self._failed(what, e) from None

    def _failed(self, what: str, e: SQLAlchemyError) -> StorageError:
        doing = f"cannot {what} in the store at {describe_url(self.url)}"
        if (damaged := damaged_file(_reason(e), make_url(self.url))) is not None:
            return damaged_store_error(doing, _reason(e), damaged)
        return StorageError(f"{doing}: {_reason(e)}")

    def _write_held_reports(self, what: str) -> None:
        """Write the held reports in one statement and transaction of their own, committed before transaction
        ``what`` begins (a thread writing them meanwhile is waited for). A failure is raised as ``what``'s, the
        reports held again, to be written by the next transaction.

        A transaction of their own rather than a part of ``what``'s: one that fails for reasons of its own (an
        experiment that exists, a lease held) takes no reports with it, and ``writing`` is held for this short write
        alone, not through ``what``'s waits for locks (a heartbeat's can last LOCK_WAIT_S)."""
        with self._held.writing:
            rows = self._held.take()
            if not rows:
                return  # (nothing opened: a store only read, or closed, stays so)
            try:
                engine = self.engine  # (connected first: that sets _one_at_a_time)
                with self._one_at_a_time or contextlib.nullcontext(), engine.begin() as conn:
                    conn.execute(_INSERT_REPORT, rows)
            except IntegrityError:
                # a report whose trial is gone (its experiment deleted by another process: the insert's trial id is
                # NULL) can never be written; held again, it failed every later transaction of the store
                return
            except BaseException as e:
                self._held.put_back(rows)
                if isinstance(e, SQLAlchemyError):
                    raise self._failed(what, e) from None
                raise

    def _write_held_when_due(self) -> None:
        """The timer's write (held_reports.py), from a thread that has nobody to tell of a failure: the reports stay
        held, and the next transaction, writing them first, fails in the thread that tells it."""
        with contextlib.suppress(StorageError):
            self._write_held_reports(_RECORD_REPORTS)

    def _write_held_at_end(self) -> None:
        """Write what is held as the store's use ends (it is closed, or its connections given back). Not raised:
        closing runs in ``finally`` blocks and as a command ends, where it would hide the error that stopped the run.
        A run's own last transactions wrote its reports, so only a store failing already still holds any here; they
        stay held, for the store used again."""
        self._held.cancel_timer()
        with contextlib.suppress(StorageError):
            self._write_held_reports(_RECORD_REPORTS)

    @contextmanager
    def _serial_tx(self, what: str) -> Iterator[Connection]:
        """A transaction that reads and then writes what it read, serialised against every other such writer's
        (quota slots counted and taken, attributes changed).

        SQLite: ``BEGIN IMMEDIATE`` (the write lock first, so two read-then-writes never interleave; a deferred
        transaction reads unlocked, and ``FOR UPDATE`` means nothing there), on an engine of its own whose
        connections leave transaction control to us. PostgreSQL: the caller locks what it reads (an advisory lock
        per quota key, ``FOR UPDATE`` on a row).
        """
        if self.engine.dialect.name != "sqlite" or self._one_at_a_time is not None:  # in memory: nobody else's
            with self._tx(what) as conn:
                yield conn
            return
        if self._slot_engine is None:
            slot_engine = create_engine(self.engine.url, connect_args={"timeout": LOCK_WAIT_S})
            _sqlite_pragmas(slot_engine, self.sqlite_synchronous)

            @event.listens_for(slot_engine, "connect")
            def _no_implicit_begin(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None  # the driver's own BEGIN would be a deferred one

            @event.listens_for(slot_engine, "begin")
            def _begin_immediate(conn: Connection) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

            self._slot_engine = slot_engine
        self._write_held_reports(what)  # (on the engine of the other transactions: as _tx does)
        try:
            with self._slot_engine.begin() as conn:
                yield conn
        except SQLAlchemyError as e:
            raise self._failed(what, e) from None

    def release_connections(self) -> None:
        """Give back every connection while the store goes unused for long (`watch` between cycles): the next use
        opens it again, surveyed as at first, so a server that stopped answering meanwhile is told as such
        (StoreUnavailable), and no idle connection is held for a day. An in-memory database is kept: it lives in its
        one connection."""
        if self._engine is not None and not (self._engine.dialect.name == "sqlite" and _in_memory(self._engine.url)):
            self.close()  # (which writes what is held)
        else:
            self._write_held_at_end()

    def close(self) -> None:
        self._write_held_at_end()
        if self._slot_engine is not None:
            self._slot_engine.dispose()
            self._slot_engine = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- experiments --------------------------------------------------------------------------------------------
    def create_experiment(self, name: str, spec: Mapping[str, Any], strategy: str, strategy_reason: str,
                          now: float) -> ExperimentRecord:
        try:
            with self._tx("record the experiment") as conn:
                exp_id = conn.execute(insert(experiments).values(
                    name=name, spec=json.dumps(spec), status=RunStatus.CREATED.value, strategy=strategy,
                    strategy_reason=strategy_reason, created_at=now, updated_at=now, next_number=0,
                ).returning(experiments.c.id)).scalar_one()
                payload = json.dumps({"strategy": strategy, "reason": strategy_reason})
                conn.execute(insert(events).values(experiment_id=exp_id, kind="experiment_created", at=now,
                                                   payload=payload))
        except IntegrityError:
            raise ExperimentExists(
                f"an experiment named {name!r} already exists in {describe_url(self.url)}; "
                f"continue it with `{resume_command(name, self.url, os.environ)}` (which runs the spec recorded then, "
                "not this one), or "
                "choose another name (--name)", name, describe_url(self.url)
            ) from None
        return self.experiment(name)

    def holds_experiment(self, name: str) -> bool:
        """Whether experiment ``name`` is recorded, read without writing the held reports first: for what a command
        says after a write failed (a full disk), where writing them would fail the read too."""
        try:
            with self._tx("read the experiment", held_first=False) as conn:
                return conn.execute(select(experiments.c.id).where(experiments.c.name == name)).first() is not None
        except StorageError:
            return False

    def experiment(self, name: str) -> ExperimentRecord:
        with self._tx("read the experiment") as conn:
            row = conn.execute(select(experiments).where(experiments.c.name == name)).mappings().first()
        if row is None:
            known = [e.name for e in self.experiments()]
            deleted = self.deleted_experiments(name)
            # the list stops at ten: a typo's target may be past it. A deleted experiment's exact name is no typo: a
            # loosely similar name is no likelier meant than any other
            close = closest(name, known, loose=not deleted)
            listed = ", ".join(known[:10]) + (f" and {len(known) - 10} more (tunesmith ls)" if len(known) > 10 else "")
            hint = ((f"; did you mean {close!r}? Experiments here: {listed}" if close
                     else f"; experiments here: {listed}") if known else "; the store has no experiments yet")
            if deleted:  # its audit trail is kept: say where to read it
                when = datetime.datetime.fromtimestamp(deleted[-1].deleted_at, datetime.UTC).strftime("%Y-%m-%d %H:%M")
                hint = (f" (deleted {when} UTC; its audit trail: tunesmith audit {name})"
                        + (f"; did you mean {close!r}?" if close else ""))
            raise ExperimentNotFound(f"no experiment named {name!r} in {describe_url(self.url)}{hint}")
        return _experiment(row)

    def experiments(self) -> list[ExperimentRecord]:
        with self._tx("list experiments") as conn:
            rows = conn.execute(select(experiments).order_by(experiments.c.id)).mappings().all()
        return [_experiment(r) for r in rows]

    def experiment_names(self) -> set[str]:
        """The names of the store's experiments, in one read of the names alone (not their specs and attributes)."""
        with self._tx("list experiments") as conn:
            return set(conn.execute(select(experiments.c.name)).scalars())

    def set_status(self, experiment_id: int, status: RunStatus, now: float,
                   detail: Mapping[str, Any] | None = None) -> None:
        with self._tx("update the experiment status") as conn:
            conn.execute(update(experiments).where(experiments.c.id == experiment_id)
                         .values(status=status.value, updated_at=now))
            conn.execute(insert(events).values(experiment_id=experiment_id, kind=status_kind(status), at=now,
                                               payload=json.dumps(dict(detail or {}))))

    def set_attributes(self, experiment_id: int, updates: Mapping[str, Any], now: float) -> None:
        """Merge ``updates`` into the experiment's attributes (see :meth:`change_attributes`)."""
        self.change_attributes(experiment_id, lambda _current: updates, now)

    def change_attributes(self, experiment_id: int, change: Callable[[Mapping[str, Any]], Mapping[str, Any]],
                          now: float) -> None:
        """Merge ``change(current attributes)`` into the experiment's attributes: read, change, write in one
        transaction that holds the write lock from the read on (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: the row
        locked by ``FOR UPDATE``), so two writers of one list (two re-tunes naming themselves on their parent)
        never both read it before either wrote it."""
        with self._serial_tx("record experiment attributes") as conn:
            current = conn.execute(select(experiments.c.attributes).where(experiments.c.id == experiment_id)
                                   .with_for_update()).scalar_one()
            attributes = json.loads(current or "{}")
            updates = change(attributes)
            merged = {**attributes, **updates}
            conn.execute(update(experiments).where(experiments.c.id == experiment_id)
                         .values(attributes=json.dumps(merged), updated_at=now))
            conn.execute(insert(events).values(experiment_id=experiment_id, kind="attributes_set", at=now,
                                               payload=json.dumps({"keys": sorted(updates)})))

    def change_spec(self, experiment_id: int, change: Callable[[dict[str, Any]], tuple[dict[str, Any], str,
                                                                                      Mapping[str, Any]]],
                    now: float) -> None:
        """Replace the experiment's recorded spec with ``change(recorded spec)``'s, which also gives the kind and
        detail of the event that says so, written in the same transaction (read, change, write under the write lock,
        as :meth:`change_attributes`): the spec and the audit trail never disagree. ``change`` may raise to refuse,
        and nothing is written."""
        with self._serial_tx("change the recorded spec") as conn:
            current = conn.execute(select(experiments.c.spec).where(experiments.c.id == experiment_id)
                                   .with_for_update()).scalar_one()
            spec, kind, detail = change(json.loads(current))
            conn.execute(update(experiments).where(experiments.c.id == experiment_id)
                         .values(spec=json.dumps(spec), updated_at=now))
            conn.execute(insert(events).values(experiment_id=experiment_id, kind=kind, at=now,
                                               payload=json.dumps(dict(detail))))

    def finished_since(self, experiment_id: int, since_event: int,
                       skip: Collection[int] = ()) -> tuple[list[TrialRecord], int]:
        """Trials that reached a final state after event ``since_event``, other than those in ``skip`` (the
        caller's own), and the newest event id. Cooperating coordinators use it to learn each other's results.
        """
        with self._tx("read recent results") as conn:
            rows = conn.execute(select(events.c.id, events.c.trial_number).where(
                events.c.experiment_id == experiment_id, events.c.id > since_event,
                events.c.kind.in_(("trial_completed", "trial_failed", "trial_pruned")))
                .order_by(events.c.id)).all()
            last = conn.execute(select(func.max(events.c.id)).where(events.c.experiment_id == experiment_id)).scalar()
        numbers = {n for _, n in rows} - set(skip)
        if not numbers:
            return [], max(since_event, last or 0)
        found = [t for t in self.trials(experiment_id, numbers) if t.state.is_finished()]
        return found, max(since_event, last or 0)

    def unfinished_trials(self, experiment_id: int, skip: Collection[int] = ()) -> list[TrialRecord]:
        """The trials running or queued now, other than those in ``skip`` (the caller's own), whoever runs them, without
        their reports: a coordinator tells its strategy of its peers' as pending, and re-runs those whose coordinator
        is gone."""
        # one read, and not their reports: this runs before every proposal and every sync, and what it is for needs
        # params, owner, attempt and beat (a peer's long learning curves were read each time)
        with self._tx("read running trials") as conn:
            rows = conn.execute(select(trials).where(
                trials.c.experiment_id == experiment_id,
                trials.c.state.in_((TrialState.RUNNING.value, TrialState.QUEUED.value))
            ).order_by(trials.c.number)).mappings().all()
        return [_trial(r, ()) for r in rows if r["number"] not in skip]

    def mark_lost(self, experiment_id: int, trial: TrialRecord, now: float) -> TrialRecord | None:
        """Record ``trial`` (lost) unless it changed since it was read: still running or queued, by the same owner,
        in the same attempt, with no beat since. None when another coordinator reclaimed it first (only one of them
        re-runs it), or its coordinator beat meanwhile. An attempt that never began (queued for a worker) is taken
        back (see the protocol): its record is returned with one attempt less."""
        with self._tx("record a lost trial") as conn:
            taken = conn.execute(_UPDATE_TRIAL.where(
                trials.c.state.in_((TrialState.RUNNING.value, TrialState.QUEUED.value)),
                trials.c.owner.is_not_distinct_from(trial.owner), trials.c.attempts == trial.attempts,
                trials.c.heartbeat_at.is_not_distinct_from(trial.heartbeat_at)),  # no beat landed since it was read
                {"b_eid": experiment_id, "b_num": trial.number, **_trial_row(trial), "heartbeat_at": now}).rowcount
            if not taken:
                return None
            # read after the write: its row is locked (PostgreSQL), the store is (SQLite), so no writer can begin the
            # attempt in between (each records its beginning with a change to the row)
            told = conn.execute(select(events.c.kind, events.c.payload).where(
                events.c.experiment_id == experiment_id, events.c.trial_number == trial.number,
                events.c.kind.in_(("trial_started", "trial_rerun", "trial_retry_started")))).all()
            began = any(begins_an_attempt(kind, said) and said.get("attempt", trial.attempts) == trial.attempts
                        for kind, said in ((kind, json.loads(payload or "{}")) for kind, payload in told))
            lost = trial if began else replace(trial, attempts=trial.attempts - 1)
            if not began:
                conn.execute(_UPDATE_TRIAL.values(attempts=lost.attempts),
                             {"b_eid": experiment_id, "b_num": trial.number})
            conn.execute(_INSERT_EVENT, {"experiment_id": experiment_id, "kind": "trial_lost", "at": now,
                                         "trial_number": trial.number, "payload": json.dumps(
                                             {"state": trial.state.value, "attempt": trial.attempts,
                                              **({} if began else {"began": False}), "error": trial.error})})
        return lost

    def take_for_rerun(self, experiment_id: int, was: TrialRecord, again: TrialRecord, event: str,
                       now: float) -> bool:
        """Record ``again``, the next attempt of ``was`` (lost, interrupted, or waiting for its retry), unless the
        trial changed since ``was`` was read: another state, or another attempt. False when another coordinator
        took it first (only one of them re-runs it; each record would overwrite the other's)."""
        return self.save_trial_unless_changed(experiment_id, was, again, event, now)

    def save_trial_unless_changed(self, experiment_id: int, was: TrialRecord, trial: TrialRecord, event: str,
                                  now: float, detail: Mapping[str, Any] | None = None) -> bool:
        """Record ``trial`` and append ``event`` unless the trial's state or attempt is no longer ``was``'s: another
        coordinator took it over meanwhile (a retry found abandoned and re-run), and its record is left alone."""
        with self._tx("record the trial") as conn:
            taken = conn.execute(_UPDATE_TRIAL.where(trials.c.state == was.state.value,
                                                     trials.c.attempts == was.attempts,
                                                     # (a lost attempt that never began is taken back, and its re-run
                                                     # is the same attempt again: another owner's)
                                                     trials.c.owner.is_not_distinct_from(was.owner)),
                                 {"b_eid": experiment_id, "b_num": trial.number, **_trial_row(trial),
                                  "heartbeat_at": now}).rowcount
            if taken:
                conn.execute(_INSERT_EVENT, {"experiment_id": experiment_id, "kind": event, "at": now,
                                             "trial_number": trial.number, "payload": json.dumps(
                                                 {"state": trial.state.value, "attempt": trial.attempts,
                                                  **(detail or {}),
                                                  **({"error": trial.error} if trial.error else {})})})
        return bool(taken)

    def record_event(self, experiment_id: int, kind: str, now: float, trial_number: int | None = None,
                     detail: Mapping[str, Any] | None = None) -> None:
        with self._tx("record an event") as conn:
            conn.execute(insert(events).values(experiment_id=experiment_id, kind=kind, at=now,
                                               trial_number=trial_number, payload=json.dumps(dict(detail or {}))))

    def acquire_lease(self, experiment_id: int, owner: str, now: float, ttl: float) -> str | None:
        with self._tx("take the experiment's lease") as conn:
            row = conn.execute(select(experiments.c.lease_owner, experiments.c.lease_expires_at)
                               .where(experiments.c.id == experiment_id).with_for_update()).first()
            if row is None:
                return "nobody (the experiment is gone)"
            holder = _live_holder(*row, now)
            if holder is not None and holder != owner:
                return holder
            conn.execute(update(experiments).where(experiments.c.id == experiment_id)
                         .values(lease_owner=owner, lease_expires_at=now + ttl))
        return None

    def renew_lease(self, experiment_id: int, owner: str, now: float, ttl: float) -> str | None:
        mine = (experiments.c.id == experiment_id) & (experiments.c.lease_owner == owner)  # released: owner NULL
        with self._tx("renew the experiment's lease") as conn:
            if conn.execute(update(experiments).where(mine).values(lease_expires_at=case(
                    (experiments.c.lease_expires_at > now + ttl, experiments.c.lease_expires_at),
                    else_=now + ttl))).rowcount:
                return None  # (a beat late out of a stalled store never moves a later renewal's expiry back)
            return conn.execute(select(experiments.c.lease_owner).where(experiments.c.id == experiment_id)).scalar()

    def lease_holder(self, experiment_id: int, now: float) -> str | None:
        with self._tx("read the experiment's lease") as conn:
            row = conn.execute(select(experiments.c.lease_owner, experiments.c.lease_expires_at)
                               .where(experiments.c.id == experiment_id)).first()
        return None if row is None else _live_holder(*row, now)

    def release_lease(self, experiment_id: int, owner: str) -> None:
        with self._tx("release the experiment's lease") as conn:
            conn.execute(update(experiments)
                         .where(experiments.c.id == experiment_id, experiments.c.lease_owner == owner)
                         .values(lease_owner=None, lease_expires_at=None))

    # -- quota slots -------------------------------------------------------------------------------------------
    def acquire_slot(self, holder: str, experiment_id: int, keys: Mapping[str, int | None], now: float,
                     ttl: float, release: Collection[str] = ()) -> SlotGrant:
        """Take one run slot under every limited key in ``keys``, or none: refused when one has no free slot.

        A key's limit is the smaller of the store's (``quota_limits``) and the caller's (``keys[k]``, None for
        none); a lease row is written per limited key (none at all when no key is limited: the grant's lease is
        None). Only unexpired leases count (``hold_slots`` never renews an expired one, so a lapsed slot given to
        someone else is not taken back); when a key is full, the leases and tickets of holders on this host whose
        process is gone are deleted first (a SIGKILLed coordinator's slots need not wait out the TTL).
        ``release``: the holder's leases to give back first, in the same transaction (the slot of the attempt that
        just ended).
        """
        ordered = sorted(keys)
        if not release and not any(v is not None for v in keys.values()):
            with self._tx("read the quotas") as conn:  # no write lock for a run that nothing limits
                if not conn.execute(_QUOTA_LIMITS, {"b_keys": ordered}).first():
                    return SlotGrant(None)
        with self._serial_tx("take a quota slot") as conn:
            if release:
                conn.execute(delete(slot_leases).where(slot_leases.c.holder == holder,
                                                       slot_leases.c.lease.in_(list(release))))
            stored = dict(conn.execute(_QUOTA_LIMITS, {"b_keys": ordered}).all())
            limits = {k: min(v for v in (keys[k], stored.get(k)) if v is not None)
                      for k in ordered if keys[k] is not None or k in stored}
            if not limits:
                return SlotGrant(None)
            if conn.dialect.name == "postgresql":  # in key order: two coordinators never wait on each other in a cycle
                for key in limits:
                    conn.execute(_ADVISORY_LOCK, {"k": f"tunesmith.quota:{key}"})
            limited = list(limits)
            params = {"b_keys": limited, "b_now": now, "b_holder": holder}
            full = _first_full(conn, limits, params)
            if full is not None and _drop_dead_holders(conn, params):  # only a refusal pays for the liveness check
                full = _first_full(conn, limits, params)
            if full is not None:
                key, in_use = full
                self._queue_waiter(conn, holder, key, now)
                conn.execute(_DELETE_EXPIRED, params)  # dead coordinators' leases and tickets, tidied off
                conn.execute(_DELETE_EXPIRED_TICKETS, params)  # the fast path (each coordinator's id is new)
                return SlotGrant(None, full_key=key, limit=limits[key], in_use=in_use)
            lease = uuid.uuid4().hex
            conn.execute(insert(slot_leases), [
                {"lease": lease, "quota_key": k, "holder": holder, "experiment_id": experiment_id,
                 "acquired_at": now, "expires_at": now + ttl} for k in limited])
            conn.execute(_LEAVE_QUEUE, params)
        return SlotGrant(lease)

    @staticmethod
    def _queue_waiter(conn: Connection, holder: str, key: str, now: float) -> None:
        """Join the queue for ``key``, or stay in it (keeping one's place) for another WAIT_TICKET_S."""
        kept = conn.execute(update(quota_waiters).where(quota_waiters.c.quota_key == key,
                                                        quota_waiters.c.holder == holder,
                                                        quota_waiters.c.expires_at > now)
                            .values(expires_at=now + WAIT_TICKET_S)).rowcount
        if not kept:
            conn.execute(delete(quota_waiters).where(quota_waiters.c.quota_key == key,
                                                     quota_waiters.c.holder == holder))
            conn.execute(insert(quota_waiters).values(quota_key=key, holder=holder, since=now,
                                                      expires_at=now + WAIT_TICKET_S))

    def hold_slots(self, holder: str, keep: Collection[str], now: float, ttl: float) -> set[str]:
        """Renew ``holder``'s leases in ``keep`` until ``now + ttl`` and release its others.

        Returns the leases of ``keep`` that are gone: they lapsed and their slots were given to another run.
        """
        keep = list(keep)
        mine = slot_leases.c.holder == holder
        with self._tx("renew quota slots") as conn:  # a lapsed lease is gone for good: its slot may be someone's
            conn.execute(delete(slot_leases).where(mine, or_(slot_leases.c.lease.not_in(keep),
                                                             slot_leases.c.expires_at <= now)))
            if not keep:
                return set()
            conn.execute(update(slot_leases).where(mine, slot_leases.c.lease.in_(keep)).values(expires_at=now + ttl))
            present = set(conn.execute(select(slot_leases.c.lease).where(mine, slot_leases.c.lease.in_(keep)))
                          .scalars())
        return set(keep) - present

    def slot_holders(self, key: str, now: float) -> list[tuple[str, float, float]]:
        """Who holds an unexpired lease on quota key ``key`` at ``now``, since when and until when (its expiry, unless
        renewed), oldest first: what a refusal names (`acquire_slot` says only that the key is full)."""
        with self._tx("read a key's slot holders") as conn:
            rows = conn.execute(select(slot_leases.c.holder, slot_leases.c.acquired_at, slot_leases.c.expires_at)
                                .where(slot_leases.c.quota_key == key, slot_leases.c.expires_at > now)
                                .order_by(slot_leases.c.acquired_at)).all()
        return [(str(h), float(t), float(x)) for h, t, x in rows]

    def release_slots(self, holder: str) -> list[str]:
        """Give back every slot ``holder`` holds, and its places in the queues, as if its leases had lapsed: for a
        coordinator known gone that cannot give them back itself (SIGKILLed on a host that is down). Returns the
        quota keys it held, sorted; none where it held nothing."""
        with self._tx("release a coordinator's slots") as conn:
            keys = conn.execute(select(slot_leases.c.quota_key).where(slot_leases.c.holder == holder)
                                .distinct()).scalars().all()
            conn.execute(delete(slot_leases).where(slot_leases.c.holder == holder))
            conn.execute(_LEAVE_QUEUE, {"b_holder": holder})
        return sorted(str(k) for k in keys)

    def leave_slot_queue(self, holder: str) -> None:
        """Take ``holder``'s waiting tickets back: one refused a slot that will not ask again (a cycle refused its
        lineage exits) would otherwise be owed the next free slot for WAIT_TICKET_S, and refuse whoever asks then."""
        with self._tx("leave the quota queue") as conn:
            conn.execute(_LEAVE_QUEUE, {"b_holder": holder})

    def set_quota(self, key: str, max_running: int, now: float) -> None:
        """Limit ``key`` (already checked: quotas.parse_quota_key) to ``max_running`` trials at once, store-wide."""
        with self._tx("set the quota") as conn:
            conn.execute(delete(quota_limits).where(quota_limits.c.quota_key == key))
            conn.execute(insert(quota_limits).values(quota_key=key, max_running=max_running, updated_at=now))

    def remove_quota(self, key: str) -> bool:
        """Lift the limit on ``key``; False when it had none."""
        with self._tx("remove the quota") as conn:
            return bool(conn.execute(delete(quota_limits).where(quota_limits.c.quota_key == key)).rowcount)

    def quotas(self, now: float) -> list[QuotaUsage]:
        """Every limited key, and every key with live leases: its live leases and waiting coordinators now; by key."""
        with self._tx("list quotas") as conn:
            limits = dict(conn.execute(select(quota_limits.c.quota_key, quota_limits.c.max_running)).all())
            in_use: dict[str, int] = dict(conn.execute(
                select(slot_leases.c.quota_key, func.count()).where(slot_leases.c.expires_at > now)
                .group_by(slot_leases.c.quota_key)).all())
            waiting: dict[str, int] = dict(conn.execute(
                select(quota_waiters.c.quota_key, func.count()).where(quota_waiters.c.expires_at > now)
                .group_by(quota_waiters.c.quota_key)).all())
        return [QuotaUsage(k, limits.get(k), in_use.get(k, 0), waiting.get(k, 0))
                for k in sorted(set(limits) | set(in_use))]

    def delete_experiment(self, experiment: ExperimentRecord, now: float, keep: Collection[str],
                          detail: Mapping[str, Any]) -> DeletedExperiment:
        """Remove the experiment's records, and keep its record of deletion (``detail``, its trial count, its events
        of the kinds in ``keep``), in one transaction: a deletion is never left unrecorded, nor recorded undone.

        ``experiment`` is the record as read before the deletion's checks and prompt, maybe minutes ago: the row
        deleted is the one with its id, name and creation time. SQLite gives a deleted experiment's id to the next
        one made, and a deletion by id alone removed that one, unchecked, and recorded it under the stale name.

        The experiment's row is locked before its events are read (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: ``FOR
        UPDATE``, which an event's insert, checking its foreign key, waits for): an event recorded meanwhile (a
        promotion) is either kept or refused, never deleted unkept.

        Raises:
            ExperimentNotFound: it is gone already (deleted by another process), whatever now has its id.
            LeaseHeld: a coordinator took its lease since it was checked (``tunesmith resume`` during the prompt).
        """
        experiment_id = experiment.id
        with self._serial_tx("delete the experiment") as conn:
            row = conn.execute(select(experiments.c.name, experiments.c.lease_owner, experiments.c.lease_expires_at)
                               .where(experiments.c.id == experiment_id, experiments.c.name == experiment.name,
                                      experiments.c.created_at == experiment.created_at)
                               .with_for_update()).first()
            if row is None:
                raise ExperimentNotFound(f"experiment {experiment.name!r} is no longer in {describe_url(self.url)} "
                                         "(deleted meanwhile, by another process); nothing was deleted")
            name, lead = row[0], _live_holder(row[1], row[2], now)
            if lead is not None:
                raise LeaseHeld(f"experiment {name!r} is being run by coordinator {lead} (it started after the "
                                "checks); stop it first (Ctrl-C, or SIGTERM to that process), then delete it")
            count = conn.execute(select(func.count()).select_from(trials)
                                 .where(trials.c.experiment_id == experiment_id)).scalar_one()
            kept = tuple(_event(r) for r in conn.execute(
                select(events).where(events.c.experiment_id == experiment_id, events.c.kind.in_(sorted(keep)))
                .order_by(events.c.id)).mappings())
            record_id = conn.execute(insert(deleted_experiments).values(
                experiment_id=experiment_id, name=name, deleted_at=now, trials=count, detail=json.dumps(dict(detail)),
                kept_events=json.dumps([_event_json(e) for e in kept])
            ).returning(deleted_experiments.c.id)).scalar_one()
            trial_ids = select(trials.c.id).where(trials.c.experiment_id == experiment_id)
            conn.execute(delete(trial_reports).where(trial_reports.c.trial_id.in_(trial_ids)))
            conn.execute(delete(trials).where(trials.c.experiment_id == experiment_id))
            conn.execute(delete(coordinator_beats).where(coordinator_beats.c.experiment_id == experiment_id))
            conn.execute(delete(events).where(events.c.experiment_id == experiment_id))
            conn.execute(delete(experiments).where(experiments.c.id == experiment_id))
        return DeletedExperiment(record_id, experiment_id, name, now, count, dict(detail), kept)

    @property
    def reuses_event_ids(self) -> bool:
        """SQLite gives the highest ids again once they are deleted (no AUTOINCREMENT); PostgreSQL's sequences never
        give one twice."""
        return make_url(self.url).get_backend_name() == "sqlite"

    def deleted_experiments(self, name: str | None = None) -> list[DeletedExperiment]:
        query = select(deleted_experiments).order_by(deleted_experiments.c.id)
        if name is not None:
            query = query.where(deleted_experiments.c.name == name)
        with self._tx("read deleted experiments") as conn:
            rows = conn.execute(query).mappings().all()
        return [DeletedExperiment(r["id"], r["experiment_id"], r["name"], r["deleted_at"], r["trials"],
                                  json.loads(r["detail"] or "{}"),
                                  tuple(Event(e["id"], e["kind"], e["at"], e["trial"], e["payload"])
                                        for e in json.loads(r["kept_events"] or "[]")))
                for r in rows]

    # -- trials -------------------------------------------------------------------------------------------------
    # The per-trial statements are built once and run with parameters: building them per call cost more than
    # SQLite's own work (benchmarks/RESULTS.md).
    def new_trial(self, experiment_id: int, params: Mapping[str, ParamValue], experiment_seed: int, now: float,
                  log_path_template: str, owner: str | None = None, limit: int | None = None,
                  queued: bool = False) -> TrialRecord | None:
        with self._tx("record a new trial") as conn:
            number = conn.execute(_NEXT_NUMBER, {"b_eid": experiment_id, "b_limit": limit if limit is not None
                                                 else _NO_LIMIT}).scalar()
            if number is None:
                return None  # the trial budget is allocated (by this coordinator or cooperating ones)
            number -= 1
            state = TrialState.QUEUED if queued else TrialState.RUNNING
            record = TrialRecord(number=number, state=state, params=dict(params),
                                 seed=derive_seed(experiment_seed, number), attempts=1, started_at=now,
                                 log_path=log_path_template.format(number=number), owner=owner, heartbeat_at=now)
            conn.execute(_INSERT_TRIAL, {"experiment_id": experiment_id, **_trial_row(record), "heartbeat_at": now})
            conn.execute(_INSERT_EVENT, {"experiment_id": experiment_id, "at": now, "trial_number": number,
                                         "kind": "trial_queued" if queued else "trial_started",
                                         "payload": '{"attempt": 1}'})
        return record

    def save_trial(self, experiment_id: int, trial: TrialRecord, event: str, now: float,
                   detail: Mapping[str, Any] | None = None) -> None:
        payload = {"state": trial.state.value, "attempt": trial.attempts, **(detail or {})}
        if trial.error:
            payload["error"] = trial.error
        with self._tx("record the trial") as conn:
            conn.execute(_UPDATE_TRIAL, {"b_eid": experiment_id, "b_num": trial.number, **_trial_row(trial),
                                         "heartbeat_at": now})
            conn.execute(_INSERT_EVENT, {"experiment_id": experiment_id, "kind": event, "at": now,
                                         "trial_number": trial.number, "payload": json.dumps(payload)})

    def heartbeat(self, experiment_id: int, numbers: list[int], now: float, owner: str | None = None) -> None:
        """Mark running trials alive (another coordinator can tell a live trial from an orphan), and ``owner``, the
        coordinator beating for them (its peers can tell it at work, trials running or not). With an owner, only
        the trials it still runs: one a peer re-ran while it stalled is the peer's to keep alive."""
        if not numbers and owner is None:
            return
        with self._tx("record trial heartbeats") as conn:
            if numbers:
                named = [trials.c.experiment_id == experiment_id, trials.c.number.in_(numbers)]
                if owner is not None:
                    named.append(trials.c.owner == owner)
                conn.execute(update(trials).where(*named).values(heartbeat_at=now))
            if owner is not None:  # only its own thread writes a coordinator's row: no two inserts race for it
                mine = (coordinator_beats.c.experiment_id == experiment_id) & (coordinator_beats.c.owner == owner)
                if not conn.execute(update(coordinator_beats).where(mine).values(beat_at=now)).rowcount:
                    conn.execute(insert(coordinator_beats).values(experiment_id=experiment_id, owner=owner,
                                                                  beat_at=now))

    def coordinator_beats(self, experiment_id: int) -> dict[str, float]:
        """Each coordinator's last beat on the experiment (``heartbeat`` with an owner), by coordinator."""
        with self._tx("read coordinators' beats") as conn:
            return dict(conn.execute(select(coordinator_beats.c.owner, coordinator_beats.c.beat_at)
                                     .where(coordinator_beats.c.experiment_id == experiment_id)).all())

    def trial_owner_beats(self, experiment_id: int) -> dict[str, float]:
        """Each trial owner's latest trial beat on the experiment, by owner, in one query (not the trials read)."""
        with self._tx("read the trials' beats") as conn:
            return dict(conn.execute(select(trials.c.owner, func.max(trials.c.heartbeat_at))
                                     .where(trials.c.experiment_id == experiment_id, trials.c.owner.is_not(None),
                                            trials.c.heartbeat_at.is_not(None))
                                     .group_by(trials.c.owner)).all())

    def forget_coordinator(self, experiment_id: int, owner: str) -> None:
        with self._tx("delete a coordinator's beats") as conn:
            conn.execute(delete(coordinator_beats).where(coordinator_beats.c.experiment_id == experiment_id,
                                                         coordinator_beats.c.owner == owner))

    def add_report(self, experiment_id: int, number: int, attempt: int, report: Report, now: float) -> None:
        """Hold the report, written with others (storage/held_reports.py): a transaction per report cost a trial
        reporting every batch more than its training. Any later transaction of this store sees it."""
        row = {"b_eid": experiment_id, "b_num": number, "attempt": attempt, "step": report.step, "value": report.value,
               "at": now}
        if self._held.add(row):
            self._write_held_reports(_RECORD_REPORTS)

    def trials(self, experiment_id: int, numbers: Collection[int] | None = None,
               curves: bool = True) -> list[TrialRecord]:
        batches: list[list[int] | None] = [None]
        if numbers is not None:  # a number no column holds is no trial (`reproduce NAME 10**23` overflowed SQLite's)
            named = sorted({n for n in numbers if -(2**63) <= n < 2**63})
            # read so many at a time: PostgreSQL takes 65,535 parameters a statement (`trials --state completed
            # --json` of a long run names most of its trials)
            batches = [named[i:i + _NUMBERS_A_READ] for i in range(0, len(named), _NUMBERS_A_READ)]
        found: list[TrialRecord] = []
        with self._tx("read trials") as conn:
            for batch in batches:  # (in number order, each ordered by number)
                found += _read_trials(conn, experiment_id, batch, curves)
        return found

    def last_report_id(self, experiment_id: int) -> int:
        # bounded to the running trials' reports, through the (trial_id, step) index: the experiment's own, joined,
        # read every report it had (on PostgreSQL the whole table's, hash-joined), 0.2-0.5 s at a million reports
        running = select(trials.c.id).where(trials.c.experiment_id == experiment_id,
                                            trials.c.state == TrialState.RUNNING.value)
        with self._tx("read the latest report") as conn:
            last = conn.execute(select(func.max(trial_reports.c.id))
                                .where(trial_reports.c.trial_id.in_(running.scalar_subquery()))).scalar()
        return int(last or 0)

    def trial_counts(self) -> dict[int, dict[TrialState, int]]:
        with self._tx("count trials") as conn:
            rows = conn.execute(select(trials.c.experiment_id, trials.c.state, func.count())
                                .group_by(trials.c.experiment_id, trials.c.state)).all()
        counts: dict[int, dict[TrialState, int]] = {}
        for exp_id, state, n in rows:
            counts.setdefault(exp_id, {})[TrialState(state)] = n
        return counts

    def trial_counts_of(self, experiment_id: int) -> dict[TrialState, int]:
        with self._tx("count trials") as conn:  # through the (experiment_id, state) index
            rows = conn.execute(select(trials.c.state, func.count()).where(trials.c.experiment_id == experiment_id)
                                .group_by(trials.c.state)).all()
        return {TrialState(state): n for state, n in rows}

    def events(self, experiment_id: int, since_id: int = 0) -> list[Event]:
        with self._tx("read events") as conn:
            rows = conn.execute(select(events).where(events.c.experiment_id == experiment_id, events.c.id > since_id)
                                .order_by(events.c.id)).mappings().all()
        return [_event(r) for r in rows]

    def events_of_kinds(self, kinds: Collection[str]) -> dict[int, list[Event]]:
        with self._tx("read events") as conn:
            rows = conn.execute(select(events).where(events.c.kind.in_(sorted(kinds)))
                                .order_by(events.c.id)).mappings().all()
        found: dict[int, list[Event]] = {}
        for r in rows:
            found.setdefault(r["experiment_id"], []).append(_event(r))
        return found


_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))")
_QUOTA_LIMITS = select(quota_limits.c.quota_key, quota_limits.c.max_running).where(
    quota_limits.c.quota_key.in_(bindparam("b_keys", expanding=True)))
_DELETE_EXPIRED = delete(slot_leases).where(slot_leases.c.quota_key.in_(bindparam("b_keys", expanding=True)),
                                            slot_leases.c.expires_at <= bindparam("b_now"))
_DELETE_EXPIRED_TICKETS = delete(quota_waiters).where(
    quota_waiters.c.quota_key.in_(bindparam("b_keys", expanding=True)),
    quota_waiters.c.expires_at <= bindparam("b_now"))
_LEASES_IN_USE = (select(slot_leases.c.quota_key, func.count())
                  .where(slot_leases.c.quota_key.in_(bindparam("b_keys", expanding=True)),
                         slot_leases.c.expires_at > bindparam("b_now"))
                  .group_by(slot_leases.c.quota_key))
# Others' live tickets on a key older than this holder's own (all of them when it has none): slots owed first.
_MINE = quota_waiters.alias("mine")
_WAITERS_AHEAD = (
    select(quota_waiters.c.quota_key, func.count())
    .where(quota_waiters.c.quota_key.in_(bindparam("b_keys", expanding=True)),
           quota_waiters.c.holder != bindparam("b_holder"), quota_waiters.c.expires_at > bindparam("b_now"),
           quota_waiters.c.since < func.coalesce(
               select(_MINE.c.since).where(_MINE.c.quota_key == quota_waiters.c.quota_key,
                                           _MINE.c.holder == bindparam("b_holder"),
                                           _MINE.c.expires_at > bindparam("b_now")).scalar_subquery(),
               bindparam("b_now") + 1.0))
    .group_by(quota_waiters.c.quota_key))
_LEAVE_QUEUE = delete(quota_waiters).where(quota_waiters.c.holder == bindparam("b_holder"))
# Others holding or waiting for a slot of these keys now: the ones a refusal checks for liveness.
_OTHER_HOLDERS = union(
    select(slot_leases.c.holder).where(slot_leases.c.quota_key.in_(bindparam("b_keys", expanding=True)),
                                       slot_leases.c.holder != bindparam("b_holder"),
                                       slot_leases.c.expires_at > bindparam("b_now")),
    select(quota_waiters.c.holder).where(quota_waiters.c.quota_key.in_(bindparam("b_keys", expanding=True)),
                                         quota_waiters.c.holder != bindparam("b_holder"),
                                         quota_waiters.c.expires_at > bindparam("b_now")))
_NUMBERS_A_READ = 10_000  # trial numbers named in one statement (PostgreSQL takes 65,535 parameters)
_NO_LIMIT = 2**31 - 1
_NEXT_NUMBER = (update(experiments)
                .where(experiments.c.id == bindparam("b_eid"), experiments.c.next_number < bindparam("b_limit"))
                .values(next_number=experiments.c.next_number + 1).returning(experiments.c.next_number))
_INSERT_TRIAL = insert(trials)
_INSERT_EVENT = insert(events)
_UPDATE_TRIAL = update(trials).where(trials.c.experiment_id == bindparam("b_eid"),
                                     trials.c.number == bindparam("b_num"))
_RECORD_REPORTS = "record intermediate values"
_INSERT_REPORT = insert(trial_reports).values(trial_id=select(trials.c.id).where(
    trials.c.experiment_id == bindparam("b_eid"), trials.c.number == bindparam("b_num")).scalar_subquery())


def _first_full(conn: Connection, limits: Mapping[str, int], params: Mapping[str, Any]) -> tuple[str, int] | None:
    """The first key (in key order) with no slot free for this holder, and its live leases; None when all have one.

    Others' older waiting tickets count as taken: those slots are owed to them first."""
    in_use: dict[str, int] = dict(conn.execute(_LEASES_IN_USE, params).all())
    ahead: dict[str, int] = dict(conn.execute(_WAITERS_AHEAD, params).all())
    for key, limit in limits.items():
        if in_use.get(key, 0) + ahead.get(key, 0) >= limit:
            return key, in_use.get(key, 0)
    return None


def _drop_dead_holders(conn: Connection, params: Mapping[str, Any]) -> bool:
    """Delete every lease and ticket of the coordinators on these keys that are known dead (on this host, their
    process is gone: holder_alive), so their slots come free now rather than at their leases' expiry; True if any.
    A holder on another host is left to its leases' expiry."""
    dead = [h for h in conn.execute(_OTHER_HOLDERS, params).scalars() if not holder_alive(h)]
    if not dead:
        return False
    conn.execute(delete(slot_leases).where(slot_leases.c.holder.in_(dead)))
    conn.execute(delete(quota_waiters).where(quota_waiters.c.holder.in_(dead)))
    return True


def upgrade_with_alembic(conn: Connection) -> None:
    """Run the packaged migrations on ``conn`` from its revision (none: an empty database) to the head."""
    # Alembic narrates its import and each step at INFO; a trial module that called logging.basicConfig() when the
    # spec was checked would print that narration under the user's progress bar.
    alembic_log = logging.getLogger("alembic")
    level = alembic_log.level
    alembic_log.setLevel(max(level, logging.WARNING))
    try:
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    finally:
        alembic_log.setLevel(level)


def create_at_head(conn: Connection) -> None:
    """Create the head schema on ``conn``, a database with no tables, and stamp it with the head revision, as
    :func:`upgrade_with_alembic` would leave it (tests/test_storage.py compares the two, table by table)."""
    metadata.create_all(conn)
    alembic_version.create(conn)
    conn.execute(insert(alembic_version).values(version_num=HEAD_REVISION))


def _schema_revision(conn: Connection) -> str | None:
    """The store's schema revision; None before anything was created (no ``alembic_version`` table yet). Asked
    without an error for a missing table, which would end the transaction that holds the schema lock."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


@contextmanager
def _schema_lock(conn: Connection) -> Iterator[None]:
    """Hold the store's schema lock on ``conn`` for the block, which runs in one transaction, committed at its end.

    SQLite: the database's write lock (``BEGIN IMMEDIATE``, waiting up to the connection's timeout), with the
    driver's own transaction handling off so that Alembic's DDL runs inside it (pysqlite would otherwise commit
    before each CREATE): an upgrade is then all or nothing there too. PostgreSQL: an advisory lock for the
    transaction."""
    sqlite: Any = conn.connection.dbapi_connection if conn.dialect.name == "sqlite" else None
    isolation = sqlite.isolation_level if sqlite is not None else None
    try:
        if sqlite is not None:
            sqlite.isolation_level = None
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:  # waiting out another's upgrade (a large store's can take minutes) is no stuck lock: no lock_timeout
            conn.exec_driver_sql("SET LOCAL lock_timeout = 0")
            conn.execute(_ADVISORY_LOCK, {"k": "tunesmith.schema"})
        yield
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        if sqlite is not None:
            sqlite.isolation_level = isolation


def in_memory(url: str) -> bool:
    """Whether ``url`` names an in-memory SQLite database, which lives as long as the process (a URL that is none:
    False, the store's own opening says what is wrong with it)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return False
    return parsed.get_backend_name() == "sqlite" and _in_memory(parsed)


def refuse_in_memory(url: str, origin: str) -> None:
    """Refuse an in-memory SQLite store for a command: it lives as long as the process, so a `tunesmith run` on it
    recorded every trial and kept none, without a word. (The Python API takes one, for a throwaway run.)"""
    if in_memory(url):
        raise StorageConfigError(f"{origin}: {url} is an in-memory database, which lives only as long as one command: "
                                 "nothing recorded there outlives it; give a file, e.g. sqlite:///tunesmith.db")


def _in_memory(url: URL) -> bool:
    """A SQLite URL naming an in-memory database (``sqlite://``, ``sqlite:///:memory:``, a ``mode=memory`` URI)."""
    return not url.database or url.database == ":memory:" or url.query.get("mode") == "memory"


def _sqlite_pragmas(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()


def _postgres_lock_timeout(engine: Engine) -> None:
    """Each connection waits ``LOCK_WAIT_S`` at most for a lock, unless the server, the role, the database or
    the URL (``?options=-c lock_timeout=...``) set a lock_timeout already: theirs is kept."""
    @event.listens_for(engine, "connect")
    def _lock_timeout(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute("SHOW lock_timeout")
            if cur.fetchone()[0] == "0":
                cur.execute(f"SET lock_timeout = '{LOCK_WAIT_S}s'")
        dbapi_conn.commit()  # a session setting: set outside the pool's rollback, which would undo it


def _read_trials(conn: Connection, experiment_id: int, numbers: list[int] | None,
                 curves: bool) -> list[TrialRecord]:
    """The experiment's trials (those ``numbers``), by number, with their curves or without (``SQLStore.trials``)."""
    where = [trials.c.experiment_id == experiment_id]
    if numbers is not None:
        where.append(trials.c.number.in_(numbers))
    rows = conn.execute(select(trials).where(*where).order_by(trials.c.number)).mappings().all()
    # the reports are most of what a long run stores (100 a trial: ~95% of a full read's time and memory)
    reports = conn.execute(
        select(trial_reports.c.trial_id, trial_reports.c.attempt, trial_reports.c.step, trial_reports.c.value)
        .join(trials, trials.c.id == trial_reports.c.trial_id)
        .where(*where, trial_reports.c.attempt <= trials.c.attempts)
        .order_by(trial_reports.c.id)
    ).all() if curves else []
    by_trial: dict[int, dict[int, list[Report]]] = {}
    for trial_id, attempt, step, value in reports:
        by_trial.setdefault(trial_id, {}).setdefault(attempt, []).append(Report(step, value))
    return [_trial(r, _curve(by_trial.get(r["id"], {}))) for r in rows]


def _curve(by_attempt: dict[int, list[Report]]) -> tuple[Report, ...]:
    """A trial's learning curve from its attempts' reports, attempt after attempt (see ``continued_curve``)."""
    return functools.reduce(continued_curve, (by_attempt[a] for a in sorted(by_attempt)), ())


def _trial_row(t: TrialRecord) -> dict[str, Any]:
    return {
        "number": t.number, "state": t.state.value, "params": json.dumps(dict(t.params)), "seed": t.seed,
        "values": json.dumps(list(t.values)) if t.values is not None else None,
        "metrics": json.dumps(dict(t.metrics)), "attempts": t.attempts, "error": t.error,
        "failure_kind": t.failure_kind.value if t.failure_kind else None, "log_path": t.log_path,
        "started_at": t.started_at, "finished_at": t.finished_at, "duration_s": t.duration_s, "owner": t.owner,
    }


def _trial(r: Any, reports: Sequence[Report]) -> TrialRecord:
    return TrialRecord(
        number=r["number"], state=TrialState(r["state"]), params=json.loads(r["params"]), seed=r["seed"],
        values=tuple(json.loads(r["values"])) if r["values"] is not None else None,
        metrics=json.loads(r["metrics"]), intermediate=tuple(reports), attempts=r["attempts"], error=r["error"],
        failure_kind=FailureKind(r["failure_kind"]) if r["failure_kind"] else None, log_path=r["log_path"],
        started_at=r["started_at"], finished_at=r["finished_at"], duration_s=r["duration_s"], owner=r["owner"],
        heartbeat_at=r["heartbeat_at"],
    )


def _event(r: Any) -> Event:
    return Event(r["id"], r["kind"], r["at"], r["trial_number"], json.loads(r["payload"]))


def _event_json(e: Event) -> dict[str, Any]:
    return {"id": e.id, "kind": e.kind, "at": e.at, "trial": e.trial_number, "payload": dict(e.payload)}


def _experiment(r: Any) -> ExperimentRecord:
    return ExperimentRecord(
        id=r["id"], name=r["name"], spec=json.loads(r["spec"]), status=RunStatus(r["status"]),
        created_at=r["created_at"], updated_at=r["updated_at"], strategy=r["strategy"],
        strategy_reason=r["strategy_reason"], attributes=json.loads(r["attributes"] or "{}"),
    )


def _driver_fix(url: URL) -> str:
    """How to get the missing driver of ``url``: tunesmith opens PostgreSQL with psycopg 3 alone."""
    if url.get_backend_name() == "postgresql" and url.drivername != "postgresql+psycopg":
        return "tunesmith opens PostgreSQL with psycopg 3: use postgresql:// (or postgresql+psycopg://)"
    if url.get_backend_name() == "postgresql":
        return f"for PostgreSQL: {install_extra('postgres')}"
    return f"install the Python driver {url.drivername} needs, or use sqlite:/// or postgresql://"


def _reason(e: SQLAlchemyError) -> str:
    orig = getattr(e, "orig", None)
    reason = str(orig or e).strip().splitlines()[0]
    if "attempt to write a readonly database" in reason:  # (read-only media: the store opens, to be read)
        reason += " (the SQLite file is on a read-only file system, or not writable by this user: it can be read, " \
                  "not changed; copy it somewhere writable to change it)"
    return reason
