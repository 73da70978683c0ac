"""A SQLite store that moved with its project folder: the paths its experiments recorded under the old folder are
read under the new one.

An experiment records absolute paths: the folder its spec was read from (``base_dir``: where a relative data path is
read and the trial's module imported), its ``workdir`` (trial folders, saved models), a re-tune's data file, each
trial's log. A project folder moved or copied elsewhere (a CI checkout, a copy to a server) takes its store along,
and those paths named the old place: gone there, every command that re-read them failed; still there (a copy), a
command read the old folder's data and code, and wrote its trials into it, without a word.

Each experiment records where its store file was (``store_path``). A store now at NEW/tunesmith.db that recorded an
experiment at OLD/tunesmith.db moved from folder OLD to folder NEW: the experiment's paths under OLD are read under
NEW (said once per move, :meth:`FolderMove.said`); paths elsewhere are read as recorded. Nothing is written back.
An experiment recorded before ``store_path`` was kept says only its spec's folder: when that folder is gone, or
holds another store file of this one's name that recorded the same experiment (this one is its copy), the store is
taken to have been in it (the default layout, ``./tunesmith.db`` beside the spec).

What is read at the new place is checked as anywhere: a task's data against the fingerprint recorded when the
experiment started (`drift` refuses changed data, `resume` and `reproduce` say what changed).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.records import ExperimentRecord

STORE_PATH = "store_path"  # the experiment attribute: the store file's absolute path when the experiment was recorded


@dataclass(frozen=True, slots=True)
class FolderMove:
    """The store's folder, ``old`` when the experiment was recorded, ``new`` now (absolute, symlinks resolved)."""

    old: str
    new: str
    guessed: bool = False  # True: from the spec's folder (no store_path recorded): gone, or holding the original store
    copied: bool = False   # (guessed) the spec's folder still holds a store of this one's name: this is a copy

    def path(self, recorded: str) -> str:
        """``recorded`` under ``new`` when it is ``old`` or under it (and not already under ``new``, which a copy
        into a subfolder of the old folder is); else as recorded."""
        if recorded == self.old:
            return self.new
        inside_new = recorded == self.new or recorded.startswith(self.new.rstrip(os.sep) + os.sep)
        if recorded.startswith(self.old.rstrip(os.sep) + os.sep) and not inside_new:
            return os.path.join(self.new, os.path.relpath(recorded, self.old))
        return recorded

    def value(self, recorded: Any) -> Any:
        """``recorded`` (a spec, attributes: JSON) with each absolute path under ``old`` moved to ``new``. A string
        is a path only when absolute: a relative one is read against ``base_dir``, which moves."""
        if isinstance(recorded, str):
            return self.path(recorded) if os.path.isabs(recorded) else recorded
        if isinstance(recorded, Mapping):
            return {key: self.value(v) for key, v in recorded.items()}
        if isinstance(recorded, list):
            return [self.value(v) for v in recorded]
        return recorded

    def said(self) -> str:
        """The note a command gives when it reads an experiment's paths at the new place."""
        why = (f"the store was in {self.old} when it was recorded" if not self.guessed
               else f"the spec's folder {self.old} recorded with it holds another store of this name (this one is a "
                    "copy)" if self.copied else f"the spec's folder {self.old} recorded with it is gone")
        return (f"the store moved: {why}; the paths recorded under {self.old} are read under {self.new}, where the "
                "store is now")


def folder_move(experiment: ExperimentRecord, store_file: str | None) -> FolderMove | None:
    """How ``experiment``'s recorded paths map to where its store is now (``store_file``, absolute; None for a store
    that is no file: a server's, an in-memory one); None when they stand as recorded."""
    if store_file is None:
        return None
    now = os.path.dirname(store_file)
    recorded = experiment.attributes.get(STORE_PATH)
    if isinstance(recorded, str):
        then = os.path.dirname(recorded)
        at_root = then == os.path.dirname(then)  # (a store at / would move every absolute path)
        return FolderMove(then, now) if then != now and not at_root else None
    base_dir = experiment.spec.get("base_dir")
    if not isinstance(base_dir, str) or not os.path.isabs(base_dir) or base_dir == now:
        return None
    if not os.path.isdir(base_dir):
        return FolderMove(base_dir, now, guessed=True)
    beside_spec = os.path.join(base_dir, os.path.basename(store_file))
    if (os.path.isfile(beside_spec) and not os.path.samefile(beside_spec, store_file)
            and _recorded_in(beside_spec, experiment)):  # this store is a copy of that one
        return FolderMove(base_dir, now, guessed=True, copied=True)
    return None


def _recorded_in(store_file: str, experiment: ExperimentRecord) -> bool:
    """Whether the SQLite file ``store_file`` recorded ``experiment`` too (its name, at the same instant): a store
    beside the spec that is another one (``--storage`` named a shared store, the spec's folder has its own) did not."""
    try:
        with contextlib.closing(sqlite3.connect(f"{Path(store_file).as_uri()}?mode=ro", uri=True, timeout=1)) as db:
            row = db.execute("SELECT created_at FROM experiments WHERE name = ?", (experiment.name,)).fetchone()
    except sqlite3.Error:  # not a store, locked, unreadable: no evidence of a copy
        return False
    return row is not None and row[0] == experiment.created_at
