"""What a bug report needs first: the versions of tunesmith, Python, the libraries it runs on, and the store's
schema revision (``tunesmith --version``, ``tunesmith version --json``)."""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

# distribution name -> key in the report
LIBRARIES = {"optuna": "optuna", "scikit-learn": "scikit-learn", "SQLAlchemy": "sqlalchemy", "alembic": "alembic",
             "numpy": "numpy", "pydantic": "pydantic"}


def tunesmith_version() -> str:
    """The installed distribution's version; "unknown" when running from a source tree that was never installed."""
    return _distribution_version("tunesmith") or "unknown"


def tunesmith_commit() -> str | None:
    """The git commit this tunesmith runs from, `` (modified)`` after it where tracked files differ from it: the
    checkout it is imported from (an editable install, ``pip install -e .``), else the commit pip recorded for an
    install from a git URL; None for any other install. Every release says ``0.1.0``: the commit tells them apart.
    Runs git (three short commands), so only `tunesmith version` asks, never an import."""
    from tunesmith.environment import git_state

    package = Path(__file__).resolve().parent
    state = git_state(str(package), tracking="__init__.py")
    if state is not None:
        return state["commit"] + (" (modified)" if state["dirty"] else "")
    try:  # PEP 610: pip install git+https://...@REF records the commit it built
        recorded = json.loads(metadata.distribution("tunesmith").read_text("direct_url.json") or "{}")
    except (metadata.PackageNotFoundError, ValueError):
        return None
    commit = (recorded.get("vcs_info") or {}).get("commit_id") if isinstance(recorded, dict) else None
    return commit if isinstance(commit, str) else None


def versions(storage_url: str | None = None, origin: str = "storage") -> dict[str, Any]:
    """Versions of tunesmith (and the git commit it runs from: :func:`tunesmith_commit`), Python and the core
    libraries; the schema revision this package migrates stores to; with ``storage_url``, also the revision that
    store is at (read, never migrated); ``origin`` names where that URL came from, in errors.

    Raises:
        StorageError: ``storage_url`` was given and the store cannot be read (StoreNotFound when it is missing).
    """
    from tunesmith.storage.revisions import packaged_head_revision, store_revision

    report: dict[str, Any] = {"tunesmith": tunesmith_version(), "tunesmith_commit": tunesmith_commit(),
                              "python": platform.python_version(), "platform": platform.platform()}
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
