"""The store's schema revision: the newest this package ships (read from its Alembic migrations, no database
opened) and the one a given store is at (read, never created or migrated)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from tunesmith.errors import StorageConfigError, StorageError, StoreNotFound
from tunesmith.suggestions import storage_url_fix

MIGRATIONS = Path(__file__).parent / "migrations"


def packaged_head_revision() -> str:
    """The head of the migrations shipped in this package: the schema a store is brought to on first use."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    if head is None:  # a broken installation, not a user's mistake
        raise StorageError(f"no Alembic migrations found in {MIGRATIONS}")
    return head


def store_revision(url: str) -> str | None:
    """The schema revision of the store at ``url``; None when it holds no tunesmith schema yet.

    Raises:
        StorageConfigError: ``url`` is not a database URL or names no dialect.
        StoreNotFound: a SQLite file that does not exist (it is not created).
        StorageError: the store cannot be read.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageConfigError(f"storage: {url!r} is not a database URL {storage_url_fix(url)}") from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if (parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:"
            and not parsed.database.startswith("file:") and not Path(parsed.database).exists()):
        raise StoreNotFound(f"no store at {parsed.database!r}")
    try:
        engine = create_engine(parsed)
    except (NoSuchModuleError, ModuleNotFoundError) as e:
        raise StorageConfigError(f"storage: no driver for {parsed.drivername!r} ({e})") from None
    try:
        with engine.connect() as conn:
            try:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            except SQLAlchemyError:
                return None  # no alembic_version table: nothing has been created here
    except SQLAlchemyError as e:
        raise StorageError(f"cannot read the store at {parsed.render_as_string(hide_password=True)}: "
                           f"{type(e).__name__}") from None
    finally:
        engine.dispose()
