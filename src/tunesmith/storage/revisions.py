"""The store's schema revision: the newest this package ships (read from its Alembic migrations, no database
opened) and the one a given store is at (read, never created or migrated)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.exc import NoSuchModuleError

from tunesmith.errors import StorageConfigError, StorageError, StoreNotFound
from tunesmith.storage.opening import (
    Contents, as_read_only_media_allows, engine_for, engine_url, foreign_store_error, read_store_url,
    refuse_url_without_database, survey,
)

MIGRATIONS = Path(__file__).parent / "migrations"


def packaged_head_revision() -> str:
    """The head of the migrations shipped in this package: the schema a store is brought to on first use."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    if head is None:  # a broken installation, not a user's mistake
        raise StorageError(f"no Alembic migrations found in {MIGRATIONS}")
    return head


def packaged_revisions() -> frozenset[str]:
    """Every revision of the migrations shipped in this package: the schemas a tunesmith store may be at."""
    from alembic.script import ScriptDirectory

    return frozenset(s.revision for s in ScriptDirectory(str(MIGRATIONS)).walk_revisions())


def store_revision(url: str, origin: str = "storage") -> str | None:
    """The schema revision of the store at ``url``; None when it holds no tunesmith schema yet (an empty database).
    A store written by a newer tunesmith reports its revision.

    Raises:
        StorageConfigError: ``url`` is not a database URL, names no dialect or no PostgreSQL database, cannot be
            reached as it says, or holds another application's tables.
        StoreNotFound: a SQLite file that does not exist (it is not created).
        StorageError: the store cannot be read.
    """
    parsed = read_store_url(url, origin)
    from tunesmith.storage.sql import describe_url

    shown = describe_url(url)
    refuse_url_without_database(parsed, shown, origin)
    parsed = engine_url(parsed)
    if (parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:"
            and not parsed.database.startswith("file:") and not Path(parsed.database).exists()):
        raise StoreNotFound(f"no store at {parsed.database!r}")
    parsed = as_read_only_media_allows(parsed)
    try:
        engine = engine_for(parsed, shown, origin)
    except (NoSuchModuleError, ModuleNotFoundError) as e:
        raise StorageConfigError(f"{origin}: no driver for {parsed.drivername!r} ({e})") from None
    try:
        found = survey(engine, shown, origin)
    finally:
        engine.dispose()
    backend = parsed.get_backend_name()
    sqlite_beside_others = found.contents is Contents.BESIDE_OTHERS and backend == "sqlite"  # one application's file
    if found.contents is Contents.OTHER_APPLICATION or sqlite_beside_others:
        raise foreign_store_error(shown, origin, found, backend)  # as every command that opens it says
    return found.revision
