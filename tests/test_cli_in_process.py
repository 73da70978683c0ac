"""The CLI's commands run in-process (``tunesmith.cli.main``, as a program or a notebook may call them) leave
nothing of their store open behind them."""

from __future__ import annotations

import gc

import tunesmith


def test_a_command_run_in_process_closes_the_stores_it_opened(project):
    """`main(["show", ...])` returned with the command's store still open: its SQLite connections, and the store's
    -wal and -shm files, lived on until the garbage collector freed them (a test comparing the store byte for byte
    after an in-process `show` saw them). The command closes what it opened as it ends."""
    from tunesmith.cli import main

    spec = project.write_spec(project.spec(name="closed", executor={"kind": "inline"}, budget={"trials": 2}))
    tunesmith.run(spec, storage=project.storage)
    gc.collect()
    assert not project.db.with_name(project.db.name + "-wal").exists(), "the premise: the run closed its store"
    gc.disable()  # what is left open stays open: only the command's own closing can close it
    try:
        for command in (["show", "closed", "--json"], ["trials", "closed", "--json"], ["ls"]):
            try:
                main([*command, "--storage", project.storage])
            except SystemExit as exited:
                assert exited.code in (None, 0), command
            assert not project.db.with_name(project.db.name + "-wal").exists(), f"{command}: its store is open"
    finally:
        gc.enable()
