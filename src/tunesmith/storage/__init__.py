"""Storage: the durable record (SQLite by default, PostgreSQL when shared)."""

from tunesmith.storage.base import Event, TrialStore
from tunesmith.storage.sql import DEFAULT_URL, SQLStore, resolve_url

__all__ = ["DEFAULT_URL", "Event", "SQLStore", "TrialStore", "resolve_url"]
