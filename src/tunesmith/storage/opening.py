"""Opening the store a URL names: what the database there holds, found out before anything is created or upgraded
in it, and what a failure to reach it means.

A database holds a tunesmith store (at a revision this package knows, or a newer one), nothing, tables of others
beside which a store may be made (a team's shared database), or another application's schema that a store would
collide with (an ``alembic_version`` of its own, as MLflow's, or tables named as tunesmith's). Only a command that
creates a store (``run``) may make one: a read-only command finds "no store here", and a database whose schema
would collide, or an SQLite file holding others' tables (one application's file: a mistyped path), is refused by
every command, unwritten (Alembic would otherwise be asked to upgrade MLflow's
``alembic_version``).

A failure to reach the database the URL names (an unknown host, role or database, a refused login, a file that is
not SQLite) is the URL's mistake: an input error (exit 2) naming the fix. No server answering at its host and port
(refused, timed out, no route), or no name server answering for its host (the resolver's "temporary failure", not its
"no such name"), is :class:`StoreUnavailable` (exit 75, "retry later"): a server or name server restarting or a
network outage passes, and a scheduler told "bad input" never retries; a wrong port looks the same, and the message
says so. A database reached and recognised that then fails (locked, out of connections, a disk error) is a store
failure. A schema that this user may not make or upgrade (an older tunesmith's store on read-only media, or read by a
SELECT-only role; a role that may not create tables) is the user's to fix, exit 2, naming the revisions and the fix.
"""

from __future__ import annotations

import enum
import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import ArgumentError, SAWarning, SQLAlchemyError

from tunesmith.database_url import read_database_url
from tunesmith.errors import StorageConfigError, StorageError, StoreNotFound, StoreUnavailable
from tunesmith.extras import update_tunesmith
from tunesmith.redaction import redact
from tunesmith.storage.damage import damaged_file, damaged_store_error
from tunesmith.storage.schema import HEAD_REVISION, metadata
from tunesmith.suggestions import listed, storage_url_fix

# tunesmith's tables (a schema left unfinished holds some of them), and those every revision has had: at a revision
# this package does not ship, the mark of a store a newer tunesmith wrote, whatever its revision id looks like.
TUNESMITH_TABLES = frozenset({"alembic_version", *metadata.tables})
CORE_TABLES = frozenset({"experiments", "trials", "trial_reports", "events"})
TABLES_NAMED = 6  # a refusal lists this many of the tables it found


class Contents(enum.Enum):
    EMPTY = "empty"                          # no tables (or only an unfinished tunesmith schema, no revision yet)
    BESIDE_OTHERS = "beside others"          # others' tables, none named as tunesmith's, no alembic_version
    TUNESMITH_STORE = "tunesmith store"      # at a revision this package ships: opened, upgraded when older
    NEWER_TUNESMITH_STORE = "newer store"    # written by a later tunesmith: this one cannot read it
    OTHER_APPLICATION = "other application"  # tables or an alembic_version that are not tunesmith's


@dataclass(frozen=True, slots=True)
class Survey:
    """What a database holds: ``revision`` is its ``alembic_version`` (None without one), ``tables`` its tables."""

    contents: Contents
    revision: str | None
    tables: tuple[str, ...]


# Seconds a PostgreSQL connection may take to open, unless the URL (?connect_timeout=N), PGCONNECT_TIMEOUT or a
# connection service says. libpq's own default is to wait for ever: a host that drops packets held a command for the
# kernel's TCP timeout (about two minutes) before it could say the server does not answer (exit 75).
CONNECT_TIMEOUT_S = 10


def read_store_url(given: str, origin: str) -> URL:
    """``given``, the store's URL from ``origin`` (``--storage``, ``TUNESMITH_STORAGE``, the spec's ``storage``),
    read before anything connects.

    Raises:
        StorageConfigError: it is not a database URL, or its host or port cannot be used (naming ``origin``).
    """
    try:
        return read_database_url(given)
    except ArgumentError:
        raise StorageConfigError(f"{origin}: {given!r} is not a database URL {storage_url_fix(given)}") from None
    except ValueError as e:
        raise StorageConfigError(f"{origin}: {redact(given)}: {e}") from None


def engine_url(url: URL) -> URL:
    """``url`` as tunesmith's engine connects to it. PostgreSQL's driver is psycopg 3: ``postgresql://``
    (SQLAlchemy's default there is psycopg2) and ``postgresql+psycopg2://`` (a URL copied from another tool) are the
    same address to psycopg; and a psycopg connection gives up after ``CONNECT_TIMEOUT_S`` unless the user set a
    timeout, or may have: a URL naming a connection service (``?service=``, or PGSERVICE) gets no default, since a
    URL parameter would override the service file's ``connect_timeout`` (its file is not read here to find out).
    Another driver (pg8000) is left as given: it may not take ``connect_timeout``."""
    if url.drivername in ("postgresql", "postgresql+psycopg2"):
        url = url.set(drivername="postgresql+psycopg")
    timeout_set = "connect_timeout" in url.query or os.environ.get("PGCONNECT_TIMEOUT")
    service_may_set = "service" in url.query or os.environ.get("PGSERVICE")
    if url.drivername == "postgresql+psycopg" and not timeout_set and not service_may_set:
        url = url.update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT_S)})
    if url.drivername == "postgresql+psycopg":
        # psycopg logs a connection lost inside a pipeline ("error ignored terminating <psycopg.Pipeline [BAD]>")
        # as a warning: with no handler of its own, Python's last resort printed it before tunesmith's one line
        # saying the same. A handler of the application's (logging configured at the root) still gets it.
        logging.getLogger("psycopg").addHandler(_QUIET)
    return url


_QUIET = logging.NullHandler()  # (one instance: addHandler adds it once however many engines are made)


def engine_for(url: URL, shown: str, origin: str, **kwargs: Any) -> Engine:
    """``create_engine(url, **kwargs)``, refusing a SQLite URL's option that its driver would ignore: SQLAlchemy
    warned (an SAWarning, with a line of tunesmith's source) and opened the file without it, so ``?mode=ro`` (without
    ``uri=true``) opened it for writing.

    Raises:
        StorageConfigError: naming ``origin``, the option and the fix.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=_IGNORED_OPTIONS.pattern, category=SAWarning)
        try:
            return create_engine(url, **kwargs)
        except SAWarning as e:
            found = _IGNORED_OPTIONS.search(str(e))
            options = found[1] if found else "in its query string"
            raise StorageConfigError(
                f"{origin}: {shown}: SQLite's driver takes no option {options} (it would be ignored); remove it, or "
                "for one of SQLite's own URI options name the file as a URI and add uri=true (e.g. "
                "sqlite:///file:tunesmith.db?mode=ro&uri=true)") from None


# SQLAlchemy's warning for a SQLite URL's query string argument its driver does not take (and ignores)
_IGNORED_OPTIONS = re.compile(r"Query string argument\(s\) (.*?) are not accepted")


def as_read_only_media_allows(url: URL) -> URL:
    """``url``, or for an SQLite file on a file system mounted read-only (an archive, a snapshot, a read-only
    volume) the file opened as immutable: SQLite in WAL mode writes its -shm file beside the store even to read it,
    which read-only media refuse ("unable to open database file"); an immutable file is read as it is, which only a
    file nobody can write may be. A write to it is refused by SQLite ("attempt to write a readonly database")."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database.startswith("file:"):
        return url
    path = Path(url.database).resolve()
    try:
        read_only = bool(os.statvfs(path.parent).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # (no folder: said later; no statvfs: not POSIX)
        return url
    if not read_only:
        return url
    return url.set(database=f"file:{path}", query={**url.query, "immutable": "1", "uri": "true"})


def refuse_url_without_database(url: URL, shown: str, origin: str) -> None:
    """A PostgreSQL URL must name its database: without one the server picks the shared database named after the
    user (``postgres``), where a store does not belong."""
    named_elsewhere = "dbname" in url.query or "service" in url.query or os.environ.get("PGDATABASE") or \
        os.environ.get("PGSERVICE")  # libpq's own ways of naming it
    if url.get_backend_name() == "postgresql" and not url.database and not named_elsewhere:
        user = url.username or "postgres"
        raise StorageConfigError(
            f"{origin}: {shown} names no database (the server would use the shared database {user!r}); name one, "
            f"e.g. {url.set(database='tunesmith').render_as_string(hide_password=True)} (create it first: CREATE "
            "DATABASE tunesmith;)")


def survey(engine: Engine, shown: str, origin: str) -> Survey:
    """Read what the database behind ``engine`` holds; writes nothing.

    Raises:
        StorageConfigError: the database cannot be reached as the URL says (see :func:`opening_error`).
        StoreUnavailable: no server answers at the URL's host and port.
        StorageError: it was reached but could not be read.
    """
    try:
        with engine.connect() as conn:
            found = inspect(conn)  # views too: one named as a tunesmith table collides as a table would
            tables = tuple(sorted({*found.get_table_names(), *found.get_view_names()}))
            revision = (conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
                        if "alembic_version" in tables else None)
    except SQLAlchemyError as e:
        raise opening_error(e, engine.url, shown, origin) from None
    return Survey(_contents(revision, tables), revision, tables)


def refuse_unless_usable(engine: Engine, shown: str, origin: str, create: bool) -> None:
    """Refuse, writing nothing, a database that holds no tunesmith store this package can open: another
    application's, a newer tunesmith's, or (unless ``create``) an empty one. Called before the schema is created
    or upgraded; the connection it used is given back closed, so that later ones get the store's own settings
    (SQLite's WAL pragma, which would rewrite a foreign file's header)."""
    try:
        found = survey(engine, shown, origin)
    finally:
        engine.dispose()
    sqlite = engine.url.get_backend_name() == "sqlite"
    if found.contents is Contents.OTHER_APPLICATION or (found.contents is Contents.BESIDE_OTHERS and sqlite):
        # an SQLite file is one application's: others' tables there mean a mistyped --storage, not a shared server
        raise foreign_store_error(shown, origin, found, engine.url.get_backend_name())
    if found.contents is Contents.NEWER_TUNESMITH_STORE:
        raise newer_store_error(shown, origin, found.revision)
    if found.contents in (Contents.EMPTY, Contents.BESIDE_OTHERS) and not create:
        what = "is empty" if found.contents is Contents.EMPTY else "holds other tables, no tunesmith store"
        raise StoreNotFound(f"no tunesmith store at {shown} (the database {what}: nothing has run here yet); "
                            "run an experiment first, or point --storage / TUNESMITH_STORAGE at the store")


def foreign_store_error(shown: str, origin: str, found: Survey, backend: str) -> StorageConfigError:
    """The refusal of a database that holds another application's tables (``found``), on ``backend``."""
    own = ("a new SQLite file, another database, or a schema of its own in this one (a URL ending "
           "?options=-csearch_path%3Dtunesmith, after CREATE SCHEMA tunesmith;)"
           if backend == "postgresql" else "a new SQLite file")
    return StorageConfigError(f"{origin}: {shown} is not a tunesmith store: {holds(found)}{_colliding(found)}; "
                              f"nothing was written to it. Give tunesmith a store of its own: {own}")


def _colliding(found: Survey) -> str:
    """Which of the tables of another application's (no ``alembic_version`` of its own) bear tunesmith's names: what
    keeps a store from being made beside them, though it may be past the tables a refusal lists."""
    clash = sorted(set(found.tables) & TUNESMITH_TABLES) if found.revision is None else []
    if not clash:
        return ""
    named = (f"{clash[0]} bears the name of one of tunesmith's tables" if len(clash) == 1
             else f"{', '.join(clash)} bear the names of tunesmith's tables")
    return f", and {named}, so a store cannot be made beside them"


def written_by_newer_tunesmith(revision: str) -> bool:
    """Whether a schema at ``revision`` (one this package does not ship) is a later tunesmith's: tunesmith numbers
    its revisions 0001, 0002, ... (tests/test_store_opening.py holds it to that), so a later one is a 4-digit id
    above this package's newest. Any other id (Alembic's hex kind, another numbering, a 4-digit one tunesmith never
    had) is another application's: updating tunesmith would not open it."""
    from tunesmith.storage.revisions import packaged_head_revision

    return _OUR_NUMBERING.fullmatch(revision) is not None and revision > packaged_head_revision()


_OUR_NUMBERING = re.compile(r"\d{4}")


def newer_store_error(shown: str, origin: str, revision: str | None) -> StorageConfigError:
    """The refusal of a store at a schema revision this tunesmith does not ship: a later one upgraded it."""
    from tunesmith.storage.revisions import packaged_head_revision

    return StorageConfigError(
        f"{origin}: the store at {shown} was written by a newer tunesmith (schema revision {revision!r}; this one "
        f"knows up to {packaged_head_revision()!r}); update tunesmith to open it ({update_tunesmith()}); "
        "nothing was written to it")


_OPTUNA_TABLES = frozenset({"studies", "study_directions", "trials", "alembic_version"})
"""Tables every Optuna RDB storage has (Optuna 3 to 5): a database holding them all is an Optuna study's."""


def holds(found: Survey) -> str:
    """What a database that is not a tunesmith store holds, for the refusal."""
    tables = f"{len(found.tables)} table(s) ({listed(found.tables, TABLES_NAMED)})"
    if _OPTUNA_TABLES <= set(found.tables):  # a ported study's database, given as the store
        return (f"it is an Optuna study database (alembic_version {found.revision!r}; {tables}); tunesmith cannot "
                "read or import an Optuna study: declare its space in a spec and run it anew (docs/from-optuna.md)")
    schema = (f"another application's schema (alembic_version {found.revision!r})" if found.revision is not None
              else "another application's tables")
    return f"it holds {schema}: {tables}"


def _contents(revision: str | None, tables: tuple[str, ...]) -> Contents:
    if revision is None:
        if set(tables) <= TUNESMITH_TABLES:
            return Contents.EMPTY
        # others' tables: a store fits beside them unless one of them bears a tunesmith table's name
        return Contents.OTHER_APPLICATION if set(tables) & TUNESMITH_TABLES else Contents.BESIDE_OTHERS
    if revision == HEAD_REVISION:  # the usual store: no need to import Alembic (a quarter second of start-up)
        return Contents.TUNESMITH_STORE
    from tunesmith.storage.revisions import packaged_revisions

    if revision in packaged_revisions():
        return Contents.TUNESMITH_STORE
    if CORE_TABLES <= set(tables) and written_by_newer_tunesmith(revision):  # our tables, a later revision
        return Contents.NEWER_TUNESMITH_STORE
    return Contents.OTHER_APPLICATION


# A failure to open, by its driver's message: what is wrong with the URL, and the fix.
_ROLE = re.compile(r'role "([^"]*)" does not exist')
_LOGIN = re.compile(r"password authentication failed|no password supplied|authentication failed")
_DATABASE = re.compile(r'database "([^"]*)" does not exist')
_NO_SERVER = re.compile(r"Connection refused|timeout expired|timed out|No route to host|Network is unreachable")
# A server that answers but takes no connection now: its connection slots are all taken, or it is starting up,
# shutting down or recovering. As passing as one that does not answer (exit 75).
_SERVER_BUSY = re.compile(r"too many clients|too many connections|remaining connection slots|"
                          r"the database system is (starting up|shutting down|in recovery mode|not yet accepting)")
# A name server that did not answer now: the resolver's EAI_AGAIN, transient by definition (a CoreDNS restart, a
# network outage), so exit 75, unlike a name it says does not exist. Its wording by C library, after psycopg's
# "failed to resolve host 'H': [Errno N] " (psycopg 3 resolves the host itself) or libpq's "could not translate host
# name "H" to address: ": glibc's and the BSDs' (macOS) "Temporary failure in name resolution", musl's (Alpine
# images) "Try again", Windows' WSATRY_AGAIN (Python's "[Errno 11002] getaddrinfo failed", libpq's own sentence).
_NAME_SERVER_SILENT = re.compile(r"temporary failure in name resolution|temporary error during hostname resolution|"
                                 r"(could not translate host name|failed to resolve host).*: (\[Errno -?\d+\] )?"
                                 r"Try again$|failed to resolve host.*\[Errno 11002\]", re.IGNORECASE | re.MULTILINE)
# A host name the resolver says does not exist stays the URL's mistake (exit 2): a misspelt host is the usual cause,
# and a scheduler retrying it would hide the typo for as long as it retries. Checked after _NAME_SERVER_SILENT.
_NO_HOST = re.compile(r"could not translate host name|Name or service not known|failed to resolve host|"
                      r"nodename nor servname")
# An option of the URL's query string that the driver or the server refuses (?sslmode=bogus, ?connect_timeout=abc,
# ?foo=bar, ?sslmode=require to a server without SSL): the URL's mistake, like a wrong name.
_BAD_OPTION = re.compile(r"invalid sslmode value|bad value for|invalid connection option|invalid URI query|"
                         r"invalid integer value|server does not support SSL, but SSL was required|"
                         r"unrecognized configuration parameter|invalid value for parameter")
# A search_path (?options=-csearch_path%3D...) naming no schema that exists: tables have nowhere to go.
_NO_SCHEMA = re.compile(r"no schema has been selected to create in")
# An option of a SQLite URI (sqlite:///file:x.db?mode=xx&uri=true) that SQLite refuses: the URL's mistake too.
_BAD_SQLITE_OPTION = re.compile(r"no such (access mode|cache mode|vfs)|invalid uri authority")
_NOT_SQLITE = re.compile(r"file is not a database")
_NO_FILE_ACCESS = re.compile(r"unable to open database file")


def opening_error(e: SQLAlchemyError, url: URL, shown: str, origin: str) -> StorageError:
    """The error to raise for ``e``, met opening the database at ``url`` (``shown``: as the user gave it, no
    password): a StorageConfigError when the URL does not name a database this user can reach, StoreUnavailable when
    no server answers at its host and port (or no name server answers for its host), or one answers but takes no
    connection now (all its slots taken, starting up, shutting down)."""
    reason = str(getattr(e, "orig", None) or e).strip()
    first = reason.splitlines()[0] if reason else type(e).__name__
    host, port, user = url.host or "localhost", url.port or 5432, url.username or "postgres"
    if m := _ROLE.search(reason):
        return StorageConfigError(
            f"{origin}: {shown}: the role {m.group(1)!r} does not exist on the server at {host}:{port}; use an "
            f"existing one (postgresql://USER@{host}:{port}/{url.database or 'DBNAME'}), or create it (CREATE ROLE "
            f"{m.group(1)} LOGIN;)")
    if _LOGIN.search(reason):
        return StorageConfigError(
            f"{origin}: {shown}: the server at {host}:{port} refused the login of {user!r} "
            f"({_own_words(reason, _DRIVER_PREAMBLE)}); check the user and password in the URL "
            "(postgresql://USER:PASSWORD@host/db), or the server's pg_hba.conf")
    if m := _DATABASE.search(reason):
        return StorageConfigError(
            f"{origin}: database {m.group(1)!r} does not exist on {host}:{port}; create it first (CREATE DATABASE "
            f"{m.group(1)}; or createdb -h {host} -p {port} -U {user} {m.group(1)})")
    if _NAME_SERVER_SILENT.search(reason):
        return StoreUnavailable(
            f"{origin}: {shown}: the host {host!r} could not be looked up now "
            f"({_own_words(reason, _RESOLVER_PREAMBLE)}); worth retrying later (a name server restarting, a network "
            "outage); if it persists, check the host name in the URL and this machine's name servers")
    if _NO_HOST.search(reason):
        return StorageConfigError(f"{origin}: {shown}: the host {host!r} is not known; check the host name in the URL")
    if _NO_SERVER.search(reason):
        return StoreUnavailable(
            f"{origin}: {shown}: no database server answers at {host}:{port} "
            f"({_own_words(reason, _DRIVER_PREAMBLE)}); worth retrying later (a server restarting, a network "
            "outage); if it persists, check the host and port in the URL (a wrong port looks the same as a server "
            "that is down) and that the server is running")
    if _SERVER_BUSY.search(reason):
        return StoreUnavailable(
            f"{origin}: {shown}: the database server at {host}:{port} takes no connection now "
            f"({_own_words(reason, _DRIVER_PREAMBLE)}); worth retrying later")
    if _BAD_OPTION.search(reason):
        return StorageConfigError(
            f"{origin}: {shown}: an option of the URL was refused ({_own_words(reason, _DRIVER_PREAMBLE)}); check "
            "its query string (?sslmode=, ?connect_timeout=, ?options=...) against PostgreSQL's connection "
            "parameters")
    if _NO_SCHEMA.search(reason):
        return StorageConfigError(
            f"{origin}: {shown}: the URL's search_path names no schema that exists on {host}:{port}; create it first "
            "(CREATE SCHEMA tunesmith;) or drop ?options=-csearch_path... from the URL")
    if _BAD_SQLITE_OPTION.search(reason):
        return StorageConfigError(
            f"{origin}: {shown}: SQLite refused an option of the URL ({first}); check its query string against "
            "SQLite's URI parameters (mode=ro, rw, rwc or memory; cache=shared or private)")
    if (damaged := damaged_file(reason, url)) is not None:  # a store, torn: before "is not a SQLite database"
        return damaged_store_error(f"cannot open the store at {shown}", reason, damaged)
    if _NOT_SQLITE.search(reason):
        return StorageConfigError(
            f"{origin}: {shown}: {url.database!r} is not a SQLite database (file is not a database); point it at "
            "tunesmith's store (sqlite:///tunesmith.db) or at a new file")
    if _NO_FILE_ACCESS.search(reason):
        return StorageConfigError(
            f"{origin}: {shown}: cannot open the SQLite file {url.database!r} (unable to open database file); check "
            "that it is a file this user may read and write")
    return StorageError(f"cannot open the store at {shown}: {first}")


# A write the database refused this user as the schema was made or upgraded: an SQLite file or medium that is
# read-only, a PostgreSQL role without the privilege (CREATE in the schema; ownership of a table, to ALTER it), a
# read-only transaction (a standby). What was read before (the survey) this user could read.
_MAY_NOT_WRITE = re.compile(r"attempt to write a readonly database|permission denied for|must be owner of|"
                            r"read-only transaction")
_MAY_NOT_CREATE_IN = re.compile(r'permission denied for schema "?([^"\s]+)')


def schema_change_refused(e: SQLAlchemyError, url: URL, shown: str, origin: str,
                          revision: str | None) -> StorageConfigError | None:
    """The error to raise for ``e``, a write refused as the store's schema was upgraded from ``revision`` (an older
    tunesmith's: a read command upgrades it first) or made in an empty database (``revision`` None): the revisions
    and the fix, naming the role; None for any other failure. Nothing was written: the change is one transaction."""
    reason = _own_words(str(getattr(e, "orig", None) or e), _DRIVER_PREAMBLE)
    if not _MAY_NOT_WRITE.search(reason):
        return None
    sqlite = url.get_backend_name() == "sqlite"
    role = url.username
    if revision is not None:
        named = f"the role {role!r}" if role else "the role the URL logs in as"
        who = "this user cannot write to it" if sqlite else f"{named} may not change its tables"
        fix = ("copy it somewhere writable and open the copy (it is upgraded there)" if sqlite else
               "open it once as a role that may (the owner of its tables)")
        # a tunesmith of that revision may not know read-only media (it made SQLite's -shm file there, and failed):
        # the URL of the file opened as it is works with any
        as_it_is = (f", as sqlite:///{url.database}?immutable=1&uri=true on this read-only medium"
                    if sqlite and url.query.get("immutable") == "1" else "")
        return StorageConfigError(
            f"{origin}: the store at {shown} is at schema revision {revision!r}, older than the {HEAD_REVISION!r} "
            f"this tunesmith needs: it must be upgraded before it can be read, and {who} ({reason}); {fix}, or read "
            f"it with the tunesmith that wrote it (one whose `tunesmith version` says schema revision {revision})"
            f"{as_it_is}; nothing was written to it")
    if sqlite:
        return StorageConfigError(f"{origin}: {shown}: this user cannot write to the SQLite file ({reason}), so no "
                                  "store can be made in it; give a file in a folder this user may write")
    if (m := _MAY_NOT_CREATE_IN.search(reason)) is None:
        return None
    schema, grantee = m.group(1), role or "ROLE"
    return StorageConfigError(
        f"{origin}: {shown}: the role {grantee!r} may not create tables in the schema {schema!r} ({reason}), so no "
        f"store can be made there; grant it that (GRANT CREATE ON SCHEMA {schema} TO {grantee}; as the database's "
        f"owner), or give it a schema of its own (CREATE SCHEMA tunesmith AUTHORIZATION {grantee}; and a URL ending "
        "?options=-csearch_path%3Dtunesmith); nothing was written to it")


# The preambles psycopg and libpq put before the words of the resolver, and of the driver or server, naming the host
# that the messages name themselves.
_RESOLVER_PREAMBLE = re.compile(r"^(could not translate host name .* to address|failed to resolve host .*?): "
                                r"(\[Errno -?\d+\] )?")
_DRIVER_PREAMBLE = re.compile(r"^.* failed: (FATAL:\s*)?")


def _own_words(reason: str, preamble: re.Pattern[str]) -> str:
    """The first line of ``reason`` without ``preamble``: the words of the layer that failed."""
    words = reason.strip().splitlines()[0].strip()
    return preamble.sub("", words) or words


__all__ = ["CORE_TABLES", "Contents", "Survey", "TUNESMITH_TABLES", "engine_for", "engine_url", "foreign_store_error",
           "holds", "newer_store_error", "opening_error", "read_store_url", "refuse_unless_usable",
           "refuse_url_without_database", "schema_change_refused", "survey", "written_by_newer_tunesmith"]
