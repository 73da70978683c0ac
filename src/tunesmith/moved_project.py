"""A recorded experiment whose project moved: its spec's folder is gone from where the store says it is.

A store records each experiment's spec with its folder (``base_dir``: where the trial code, the task data and
relative paths are found) and its ``workdir`` (the trial folders) as absolute paths, as they were when it ran.
Restored or copied elsewhere with its project (another folder, another machine), the store still names the old
paths. The fix that moves nothing in the store, and keeps every recorded path true (trial logs, checkpoints, the
models ``promote`` registers): the project back where it was, or a symbolic link there to where it is now.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path


def spec_folder_gone(base_dir: str | None, found_in_project: str) -> str | None:
    """Why the spec's folder ``base_dir`` cannot serve, with the fix; None while it exists (or none is recorded).

    Args:
        base_dir: the spec's folder, as the store recorded it.
        found_in_project: a path, relative to the project, that the project holds (the trial code's file, the
            workdir): when the current folder holds it too, it is likely the project moved, and the fix links it.
    """
    if not base_dir or os.path.isdir(base_dir):
        return None
    here = os.getcwd()
    moved_here = os.path.exists(os.path.join(here, found_in_project)) and os.path.abspath(base_dir) != here
    target = shlex.quote(here) if moved_here else "PROJECT_FOLDER_NOW"
    parent = os.path.dirname(os.path.abspath(base_dir))
    make_parent = "" if os.path.isdir(parent) else f"mkdir -p {shlex.quote(parent)} && "
    now = "" if moved_here else " (PROJECT_FOLDER_NOW: where the project is now)"
    return (f"the spec's folder {base_dir} no longer exists: the project, or its store, was moved or restored "
            "elsewhere, and a store keeps an experiment's spec folder and workdir as the absolute paths it ran at; put "
            f"the project back at {base_dir}, or link it there from where it is now: "
            f"{make_parent}ln -s {target} {shlex.quote(base_dir)}{now}")



def workdir_left_behind(base_dir: str | None, workdir: str | None) -> str | None:
    """Why a recorded experiment cannot go on from here, with the fix: its workdir lay in its spec's folder, which is
    gone (the trial folders moved with the project; going on would make the old workdir anew, without them, and
    re-run interrupted trials from their start); None otherwise."""
    if not base_dir or not workdir or not Path(workdir).is_relative_to(base_dir):
        return None
    gone = spec_folder_gone(base_dir, os.path.relpath(workdir, base_dir))
    return gone and f"its trial folders are in its recorded workdir {workdir}, in its spec's folder, and {gone}"
