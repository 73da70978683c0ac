"""In-process set-up and read-back for the CLI-input tests: the commands a test is about stay real subprocesses;
recording a small experiment beforehand, and reading back `show`/`trials`/`ls --json` afterwards, run in this
process (each subprocess is ~0.6-1 s of CPU, mostly start-up); `show`/`trials --json` read-backs are the project
fixture's own (Project.show, Project.trials)."""

from __future__ import annotations

from typing import Any

import tunesmith
from helpers import cli_in_process


def seed_store(project: Any) -> None:
    """Record and run a small experiment `exp` (2 inline trials), as `tunesmith run good.yaml` would, in-process."""
    good = project.write_spec(project.spec(executor={"kind": "inline"}, budget={"trials": 2}), "good.yaml")
    result = tunesmith.run(good, storage=project.storage)
    assert [t.state.value for t in result.trials] == ["completed", "completed"]


def cli_quiet(project: Any, *args: str, check: bool = True) -> str:
    """`tunesmith ARGS` in this process, on the project's store, for set-up or read-back: its stdout (exit 0
    required unless not ``check``)."""
    code, out, err = cli_in_process(*args, "--storage", project.storage)
    assert code == 0 or not check, f"tunesmith {' '.join(args)} exited {code}\n{out}\n{err}"
    return out
