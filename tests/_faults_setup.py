"""Reads for the fault/interrupt tests: `tunesmith show|trials NAME --json` run in this process.

A CLI subprocess costs about 0.6 s of CPU (Python start-up and imports) for what is, in these tests, a reading of
the store after the command under test ran as a real subprocess. The same command (tunesmith.cli's own `app`, the
same store code and JSON) runs here instead; each store it opens is closed once it has answered.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from typing import Any


def read_json(*args: str, storage: str | None = None) -> Any:
    """What `tunesmith ARGS --json [--storage STORAGE]` prints, parsed; it must exit 0."""
    import tunesmith.cli as cli

    opened: list[Any] = []
    real_store = cli._store

    def tracked(*a: Any, **k: Any) -> Any:
        store = real_store(*a, **k)
        opened.append(store)
        return store

    argv = [*args, "--json", *(["--storage", storage] if storage else [])]
    buf = io.StringIO()
    cli._store = tracked
    try:
        with redirect_stdout(buf):
            code = cli.app(argv, standalone_mode=False)
    finally:
        cli._store = real_store
        for store in opened:
            store.close()
    assert code in (None, 0), (argv, code, buf.getvalue())
    return json.loads(buf.getvalue())


def show_json(name: str, storage: str | None = None) -> dict[str, Any]:
    return read_json("show", name, storage=storage)


def trials_json(name: str, storage: str | None = None) -> list[dict[str, Any]]:
    return read_json("trials", name, storage=storage)
