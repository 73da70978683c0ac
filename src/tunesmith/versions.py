"""What a bug report needs first: the versions of tunesmith, Python, the libraries it runs on, and the store's
schema revision (``tunesmith --version``, ``tunesmith version --json``)."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

# distribution name -> key in the report
LIBRARIES = {"optuna": "optuna", "scikit-learn": "scikit-learn", "SQLAlchemy": "sqlalchemy", "alembic": "alembic",
             "numpy": "numpy", "pydantic": "pydantic"}


def tunesmith_version() -> str:
    """The installed distribution's version; "unknown" when running from a source tree that was never installed."""
    return _distribution_version("tunesmith") or "unknown"


def versions(storage_url: str | None = None, origin: str = "storage") -> dict[str, Any]:
    """Versions of tunesmith, Python and the core libraries; the schema revision this package migrates stores to;
    with ``storage_url``, also the revision that store is at (read, never migrated); ``origin`` names where that
    URL came from, in errors.

    Raises:
        StorageError: ``storage_url`` was given and the store cannot be read (StoreNotFound when it is missing).
    """
    from tunesmith.storage.revisions import packaged_head_revision, store_revision

    report: dict[str, Any] = {"tunesmith": tunesmith_version(), "python": platform.python_version(),
                              "platform": platform.platform()}
    for dist, key in LIBRARIES.items():
        report[key] = _distribution_version(dist)
    report["schema_revision"] = packaged_head_revision()
    if storage_url is not None:
        from tunesmith.storage.sql import describe_url

        report["store"] = {"url": describe_url(storage_url), "schema_revision": store_revision(storage_url, origin)}
    return report


def _distribution_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
