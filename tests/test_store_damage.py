"""A damaged SQLite store (storage/damage.py), through the real CLI: a `cp` of a live store can be one (a page a
WAL checkpoint was rewriting). Every command said `cannot read trials ...: database disk image is malformed`, and
`resume` added "once the store takes writes again, continue with: tunesmith resume ...", which never comes true of a
damaged file. Each now names the file as damaged and the fix, exit 1, with no resume to offer."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import tunesmith


def _finished_store(project, name: str) -> Path:
    """A store holding experiment ``exp`` run to its end (set-up: what is read back is what is checked), its -wal
    folded into the file as the run closed it: a copy of the file alone is all of it."""
    tunesmith.run(project.spec(executor={"kind": "inline"}, budget={"trials": 3}),
                  storage=f"sqlite:///{project.root / name}")
    assert not (project.root / f"{name}-wal").exists()
    return project.root / name


def _overwrite_first_page_of(path: Path, table: str) -> None:
    """Garbage over the first page of ``table``'s b-tree, as a copy torn by a checkpoint leaves a page."""
    with sqlite3.connect(path) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        [root] = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    conn.close()
    with path.open("r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xff" * 16)


def _storage_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    where = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, where
    [line] = proc.stderr.splitlines()
    assert line.startswith("storage error: "), where
    return line.removeprefix("storage error: ")


def test_a_damaged_store_is_named_damaged_with_its_fix_and_no_resume_is_offered(project):
    db = _finished_store(project, "copy.db")
    _overwrite_first_page_of(db, "trials")
    url = f"sqlite:///{db}"
    fix = (f"the SQLite file {str(db)!r} is damaged (database disk image is malformed): a copy taken with cp while a "
           "run wrote to it, or a disk fault; no retry or resume mends it. Restore the store from a backup made with "
           f"SQLite's .backup (not a cp), or salvage what it still holds into a new file: sqlite3 {db} .recover | "
           "sqlite3 salvaged.db")
    for args in [("show", "exp"), ("trials", "exp"), ("resume", "exp", "-q")]:
        message = _storage_error_line(project.cli(*args, "--storage", url))
        assert message.startswith(f"cannot read trials in the store at {url}: "), (args, message)
        assert message.endswith(fix), (args, message)
        assert "takes writes again" not in message, (args, message)


def test_a_file_beginning_as_sqlite_that_sqlite_cannot_read_is_damaged_not_another_kind_of_file(project):
    """SQLite's "file is not a database" of a file with an SQLite header (its page size torn) is damage, a store
    failure (exit 1) with the fix; of a file that never was SQLite, it stays the mistyped path it was (exit 2:
    tests/test_store_opening.py, test_a_file_that_is_not_a_sqlite_database_is_bad_input_and_left_alone)."""
    db = _finished_store(project, "torn.db")
    with db.open("r+b") as f:
        f.seek(16)  # the header's page size: 3 is no power of two
        f.write(b"\x00\x03")
    message = _storage_error_line(project.cli("ls", "--storage", f"sqlite:///{db}"))
    assert message.startswith(f"cannot open the store at sqlite:///{db}: the SQLite file {str(db)!r} is damaged (file "
                              "is not a database): "), message
