"""Reads for the fault/interrupt tests: `tunesmith show|trials NAME --json` run in this process.

A CLI subprocess costs about 0.6 s of CPU (Python start-up and imports) for what is, in these tests, a reading of
the store after the command under test ran as a real subprocess. The same command (tunesmith.cli's own `app`, the
same store code and JSON) runs here instead (helpers.cli_json_in_process).
"""

from __future__ import annotations

from typing import Any

from helpers import cli_json_in_process


def read_json(*args: str, storage: str | None = None) -> Any:
    """What `tunesmith ARGS --json [--storage STORAGE]` prints, parsed; it must exit 0."""
    return cli_json_in_process(*args, *(["--storage", storage] if storage else []))


def show_json(name: str, storage: str | None = None) -> dict[str, Any]:
    return read_json("show", name, storage=storage)


def trials_json(name: str, storage: str | None = None) -> list[dict[str, Any]]:
    return read_json("trials", name, storage=storage)
