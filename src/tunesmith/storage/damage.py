"""An SQLite store that SQLite finds damaged, and what mends it.

A plain ``cp`` of a store while a run writes to it copies a file that a WAL checkpoint is rewriting: the copy may
read as an empty store (its newest pages still in ``-wal``), as an older one, or as a damaged one, which SQLite says
as "database disk image is malformed" (SQLITE_CORRUPT), or "file is not a database" (SQLITE_NOTADB) of a file that
still begins as an SQLite file does. A disk fault reads the same. No retry mends it, nor ``resume``: the message
names the file and the fix (a backup made with SQLite's ``.backup``, or what ``.recover`` salvages).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from urllib.parse import unquote, urlparse

from sqlalchemy.engine import URL

from tunesmith.errors import StoreDamaged

SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file
_CORRUPT = re.compile(r"database disk image is malformed|malformed database schema")
_NOT_A_DATABASE = re.compile(r"file is not a database")


def sqlite_file(url: URL) -> Path | None:
    """The file of the SQLite store at ``url`` (a ``file:`` URI's path too); None for another backend or an in-memory
    database."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        database = unquote(urlparse(database).path)
    return Path(database) if database else None


def damaged_file(reason: str, url: URL) -> Path | None:
    """The file of the store at ``url`` if SQLite's ``reason`` for a failure there says it is damaged: corrupt, or
    "not a database" though it begins as an SQLite file does (one that does not is no SQLite file at all, which
    :func:`tunesmith.storage.opening.opening_error` says); else None."""
    path = sqlite_file(url)
    if path is None:
        return None
    if _CORRUPT.search(reason):
        return path
    if _NOT_A_DATABASE.search(reason):
        try:
            with path.open("rb") as f:
                return path if f.read(len(SQLITE_HEADER)) == SQLITE_HEADER else None
        except OSError:
            return None
    return None


def damaged_store_error(doing: str, reason: str, path: Path) -> StoreDamaged:
    """The error for the damaged SQLite file at ``path``, met while ``doing`` (``cannot read trials in the store at
    URL``): SQLite's ``reason`` and the fix, without a resume to offer."""
    file = shlex.quote(str(path))
    return StoreDamaged(
        f"{doing}: the SQLite file {str(path)!r} is damaged ({reason.strip().splitlines()[0]}): a copy taken with cp "
        "while a run wrote to it, or a disk fault; no retry or resume mends it. Restore the store from a backup "
        f"made with SQLite's .backup (not a cp), or salvage what it still holds into a new file: sqlite3 {file} "
        ".recover | sqlite3 salvaged.db")


__all__ = ["SQLITE_HEADER", "damaged_file", "damaged_store_error", "sqlite_file"]
