"""The fault-injection suite. Tests add rows to the reliability table (docs/reliability.md) with the
``fault_log`` fixture from tests/conftest.py; ``python tests/faults/report.py`` runs them and rewrites the table.
"""

import pytest


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage(request, project):
    """Each store-touching fault test runs on SQLite and, where a server answers, on PostgreSQL."""
    if request.param == "sqlite":
        return project.storage
    return request.getfixturevalue("postgres_url")
