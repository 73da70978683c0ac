"""The fault-injection suite. Each test may add rows to the reliability table (docs/reliability.md).

Set ``TUNESMITH_FAULT_REPORT=path.jsonl`` to collect the rows; ``python tests/faults/report.py`` runs the suite
that way and rewrites the table.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest


@pytest.fixture
def fault_log(request: pytest.FixtureRequest):
    """``fault_log(area=..., fault=..., outcome=..., injected=1, recovered=0, lost=0)`` appends one table row."""
    path = os.environ.get("TUNESMITH_FAULT_REPORT")

    def log(**row: Any) -> None:
        if path:
            row.setdefault("test", request.node.nodeid)
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")

    return log
