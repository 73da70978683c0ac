"""The SRE walkthrough of `cycle` / `watch`: each case through the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tunesmith.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=240, env={**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{cwd / 'tunesmith.db'}",
                                            "COLUMNS": "200", **(env or {})})


@pytest.mark.parametrize("command", ["cycle", "watch"])
def test_a_bad_store_url_names_where_it_came_from(tmp_path: Path, command: str) -> None:
    """`cycle` said "storage: postgresql://..." (read as the spec's key) for a URL from TUNESMITH_STORAGE."""
    (tmp_path / "d.csv").write_text("a,b\n1,2\n")
    for env, origin in (({"TUNESMITH_STORAGE": "nosuchdialect://x/y"}, "TUNESMITH_STORAGE"), ({}, "--storage")):
        extra = ("--storage", "nosuchdialect://x/y") if origin == "--storage" else ()
        proc = _cli(tmp_path, command, "churn", "--data", "d.csv", *extra, env=env)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith(f"error: {origin}: "), proc.stderr
