"""The no-op objective used by ``benchmarks/overhead.py``: it does nothing, so what a run costs is overhead.

It lives in an importable module because the process executor imports it in each worker
(``trial: {function: "noop_objective:objective"}`` with ``base_dir`` set to this folder).
"""

from __future__ import annotations

from typing import Any


def objective(config: dict[str, Any], trial: Any = None) -> float:
    """Return the parameter itself: a valid value, no work."""
    return float(config["x"])
