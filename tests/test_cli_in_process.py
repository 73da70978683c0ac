"""The CLI's commands run in-process (``tunesmith.cli.main``, as a program or a notebook may call them) leave
nothing of their store open behind them."""

from __future__ import annotations

import gc

import pytest

import tunesmith


def _each_closes_its_store(project, name: str, commands: list[list[str]]) -> None:  # type: ignore[no-untyped-def]
    """Record and run experiment ``name`` (2 inline trials), then run each of ``commands`` in this process with the
    garbage collector off: the store's -wal file must be gone after each, which only the command's own close does."""
    from tunesmith.cli import main

    spec = project.write_spec(project.spec(name=name, executor={"kind": "inline"}, budget={"trials": 2}))
    tunesmith.run(spec, storage=project.storage)
    gc.collect()
    assert not project.db.with_name(project.db.name + "-wal").exists(), "the premise: the run closed its store"
    gc.disable()  # what is left open stays open: only the command's own closing can close it
    try:
        for command in commands:
            try:
                main([*command, "--storage", project.storage])
            except SystemExit as exited:
                assert exited.code in (None, 0), command
            assert not project.db.with_name(project.db.name + "-wal").exists(), f"{command}: its store is open"
    finally:
        gc.enable()


def test_a_command_run_in_process_closes_the_stores_it_opened(project):
    """`main(["show", ...])` returned with the command's store still open: its SQLite connections, and the store's
    -wal and -shm files, lived on until the garbage collector freed them (a test comparing the store byte for byte
    after an in-process `show` saw them). The command closes what it opened as it ends."""
    _each_closes_its_store(project, "closed", [["show", "closed", "--json"], ["trials", "closed", "--json"], ["ls"]])


@pytest.mark.parametrize("command", [["cycle", "cycled"], ["watch", "cycled", "--cycles", "1"]], ids=["cycle", "watch"])
def test_cycle_and_watch_run_in_process_close_the_store_they_opened(project, command):
    """`cycle` opened its store by the cycle's own rule (a spec file's `storage:` counts), not through the CLI's,
    and returned with it open: the store's -wal file outlived the command, as `show`'s did before. (`watch` gives
    its connections back after each cycle anyway; it closes its store as `cycle` does.)"""
    from tunesmith.testing.drift_data import shifted_split

    shifted_split(project.root)
    reference = str(project.root / "reference.csv")
    _each_closes_its_store(project, "cycled", [[*command, "--data", reference, "--reference", reference, "--json"]])
