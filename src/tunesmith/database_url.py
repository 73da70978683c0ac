"""A database URL read as SQLAlchemy reads it, with its host and port checked as a driver needs them, before any
connection: one reading for every field that takes one (the spec's ``storage``, ``--storage``, ``TUNESMITH_STORAGE``,
a tracking URI). What cannot be read is said in tunesmith's words: SQLAlchemy's were Python's (``invalid literal for
int() with base 10: 'notaport'``), and a port out of range reached the driver, whose refusal read as a failing store.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # SQLAlchemy loads when a URL is read, not when the spec's model is imported
    from sqlalchemy.engine import URL

HIGHEST_PORT = 65535
SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file (one given as a spec)
# The host and port of a URL as SQLAlchemy splits it: after the scheme and any user:password@, up to / or ?.
_HOST_AND_PORT = re.compile(r"[\w+]+://(?:[^:/]*(?::[^@]*)?@)?(?P<host_and_port>[^/?]*)")
_EXAMPLE = "postgresql://user@host:5432/dbname"


def read_database_url(given: str) -> URL:
    """``given`` as SQLAlchemy reads it, its port one a server can listen on.

    Raises:
        sqlalchemy.exc.ArgumentError: ``given`` is no URL at all (as SQLAlchemy says it).
        ValueError: its host or port cannot be read, or its port is out of range; the message says which and the
            fix, without the field (the caller names it).
    """
    from sqlalchemy.engine import make_url

    try:
        url = make_url(given)
    except ValueError:  # (not ArgumentError: SQLAlchemy read a URL, and failed on its port)
        raise ValueError(_address_fault(given)) from None
    if url.port is not None and not 1 <= url.port <= HIGHEST_PORT:
        raise ValueError(f"the port {url.port} is out of range: a port is a number from 1 to {HIGHEST_PORT} "
                         f"(PostgreSQL's is 5432), e.g. {_EXAMPLE}")
    return url


def _address_fault(given: str) -> str:
    """What keeps SQLAlchemy from reading the host and port of ``given``."""
    found = _HOST_AND_PORT.match(given)
    host_and_port = found["host_and_port"] if found else ""
    if "[" in host_and_port and "]" not in host_and_port:
        return f"the IPv6 host {host_and_port!r} opens '[' and never closes it; write it in brackets, e.g. " \
               "postgresql://user@[::1]:5432/dbname"
    port = host_and_port.rpartition("]")[2].partition(":")[2]
    if not port:
        return f"nothing follows the ':' after the host; give the port, e.g. {_EXAMPLE}, or drop the ':' for the " \
               "default"
    return f"the port {port!r} is not a number; write it as one from 1 to {HIGHEST_PORT}, e.g. {_EXAMPLE}, or " \
           "leave it out for the default"


__all__ = ["HIGHEST_PORT", "SQLITE_HEADER", "read_database_url"]
