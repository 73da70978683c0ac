"""Where tracking writes: an MLflow URI checked before MLflow is given it (nothing here imports MLflow).

MLflow creates and migrates its schema in the database a URI names on its first touch. A URI naming a tunesmith store
(``sqlite:///tunesmith.db`` for ``sqlite:///mlflow.db``: the two files lie side by side) had MLflow's tables written
into the store, after which it could record and delete nothing ("foreign key mismatch"). Such a URI is refused,
unwritten: the store's own database (the URL of the store a command uses, made yet or not), or any database that
holds a tunesmith store, recognised as the store's opening recognises one (:func:`tunesmith.storage.opening.survey`).
A URI MLflow cannot take at all (a path it reads as its refused file store, a port that is no number, a file that is
not SQLite) is refused here too, in one line naming the field it came from, rather than in MLflow's traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import URL

from tunesmith.database_url import SQLITE_HEADER, read_database_url
from tunesmith.errors import StorageError, StoreUnavailable, UserInputError
from tunesmith.redaction import redact

# The schemes of the databases MLflow keeps its records in: a URI with another scheme names a server (http) or a
# plugin's store, which is no tunesmith store.
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def refuse_unusable_uri(uri: str, field: str, store_url: str | None = None, reach_servers: bool = True) -> None:
    """Refuse ``uri`` (from ``field``: ``--tracking-uri``, ``tracking.mlflow.uri``...) where MLflow cannot take it,
    or where it names a tunesmith store: the store at ``store_url`` (the one the command uses), or a database that
    holds one. Cheap: an SQLite file is read only where it exists; a database on a server is looked into only when
    ``reach_servers`` (just before MLflow would connect to it anyway), never by ``validate``.

    Raises:
        UserInputError: naming ``field``, what is wrong and the fix.
        StoreUnavailable: ``reach_servers``, and no database server answers at the URI's host and port (exit 75).
    """
    from tunesmith.spec.tracking_config import mlflow_store_fault

    shown = redact(uri)
    if fault := mlflow_store_fault(uri):
        raise UserInputError(f"{field}: {fault}")
    url = _database_url(uri, field)
    if url is None:
        return  # a tracking server or a plugin's store: MLflow says what it makes of it
    if store_url is not None and _same_database(url, store_url):
        raise _a_store_error(url, shown, field)
    if url.get_backend_name() == "sqlite":
        if _sqlite_store_here(url, shown, field):
            raise _a_store_error(url, shown, field)
    elif reach_servers and _holds_a_store(url, shown, field):
        raise _a_store_error(url, shown, field)


def missing_sqlite_file(uri: str) -> str | None:
    """The file a ``sqlite:///`` URI names where no such file exists (None: it exists, or the URI names no file:
    another scheme, in memory, a ``file:`` URI form this does not read). MLflow creates it, and the folders above it,
    on its first touch: reading a registry there would make an empty one."""
    from sqlalchemy.exc import ArgumentError

    if not uri.lower().startswith("sqlite:"):
        return None
    try:
        database = read_database_url(uri).database
    except (ArgumentError, ValueError):  # MLflow's client refuses it, naming the field
        return None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return None if os.path.exists(database) else database


def _database_url(uri: str, field: str) -> URL | None:
    """``uri`` read as a database URL (as a store's is: its port, its host), where its scheme names a database
    (None where it does not)."""
    from tunesmith.storage.opening import read_store_url

    scheme = uri.partition("://")[0].partition("+")[0].lower() if "://" in uri else ""
    return read_store_url(uri, field) if scheme in DATABASE_SCHEMES else None


def _sqlite_store_here(url: URL, shown: str, field: str) -> bool:
    """Whether the SQLite file ``url`` names holds a tunesmith store (False: none there yet, in memory, or a URI
    form this does not read). A file that is no SQLite database is refused: MLflow failed on it in a traceback."""
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        return False
    path = Path(url.database)
    try:
        with path.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except OSError:
        return False  # missing (MLflow makes it), a folder, unreadable: MLflow says so
    if header and header != SQLITE_HEADER:
        raise UserInputError(f"{field}: {shown}: {str(path)!r} is not a SQLite database; point it at MLflow's "
                             "database (e.g. sqlite:///mlflow.db) or at a new file")
    return bool(header) and _holds_a_store(url.set(query={}), shown, field)  # (its options do not change the file)


def _holds_a_store(url: URL, shown: str, field: str) -> bool:
    """Whether the database at ``url`` holds a tunesmith store, as the store's opening reads it; False where it
    cannot be read (no driver, a database MLflow would create): MLflow, reaching it next, says what it makes of it.

    Raises:
        StoreUnavailable: no server answers at its host and port: exit 75 now, where MLflow retried for minutes.
    """
    from tunesmith.storage.opening import Contents, engine_for, engine_url, survey

    try:
        engine = engine_for(engine_url(url), shown, field)
    except (ImportError, StorageError):
        return False
    try:
        found = survey(engine, shown, field)
    except StoreUnavailable:
        raise
    except StorageError:
        return False
    finally:
        engine.dispose()
    return found.contents in (Contents.TUNESMITH_STORE, Contents.NEWER_TUNESMITH_STORE)


def _same_database(url: URL, store_url: str) -> bool:
    """Whether ``url`` names the database of the store at ``store_url``: the same SQLite file, or the same database
    (and search_path) on the same server."""
    from sqlalchemy.exc import ArgumentError

    try:
        store = read_database_url(store_url)
    except (ArgumentError, ValueError):  # refused where the store is opened
        return False
    if store.get_backend_name() != url.get_backend_name():
        return False
    if url.get_backend_name() == "sqlite":
        files = [u.database for u in (url, store)]
        return all(f and f != ":memory:" for f in files) and len({os.path.realpath(str(f)) for f in files}) == 1
    return _server_address(url) == _server_address(store)


def _server_address(url: URL) -> tuple[object, ...]:
    return (url.host or "localhost").lower(), url.port, url.database, url.query.get("options")


def _a_store_error(url: URL, shown: str, field: str) -> UserInputError:
    own = "another file, e.g. sqlite:///mlflow.db" if url.get_backend_name() == "sqlite" else \
        "a database of its own (CREATE DATABASE mlflow;), or a file, e.g. sqlite:///mlflow.db"
    return UserInputError(f"{field}: {shown} is a tunesmith store, not an MLflow one: MLflow would write its own "
                          f"tables into it and break the store; nothing was written to it. Give MLflow {own}")


__all__ = ["DATABASE_SCHEMES", "missing_sqlite_file", "refuse_unusable_uri"]
