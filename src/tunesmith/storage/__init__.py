"""Storage: the durable record (SQLite by default, PostgreSQL when shared).

The SQL store's names load on first use (PEP 562): the protocol in :mod:`tunesmith.storage.base` is imported by
modules every command loads, and SQLAlchemy alone is about 0.25 s of CPU at each CLI start, which a command that
stops at bad input never needs.
"""

from typing import TYPE_CHECKING, Any

from tunesmith.storage.base import Event, TrialStore

if TYPE_CHECKING:
    from tunesmith.storage.sql import DEFAULT_URL, SQLStore, resolve_url
    from tunesmith.storage.upgrades import StoreUpgraded

__all__ = ["DEFAULT_URL", "Event", "SQLStore", "StoreUpgraded", "TrialStore", "resolve_url"]


def __getattr__(name: str) -> Any:
    if name in ("DEFAULT_URL", "SQLStore", "resolve_url"):
        from tunesmith.storage import sql

        return getattr(sql, name)
    if name == "StoreUpgraded":
        from tunesmith.storage.upgrades import StoreUpgraded

        return StoreUpgraded
    raise AttributeError(f"module 'tunesmith.storage' has no attribute {name!r}")
