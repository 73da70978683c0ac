"""The processes that keep a command trial's output open after the command itself exited, and stopping them.

A command that starts a background process (``sleep 30 &``, a server, a daemon) without sending its output
elsewhere hands it the ends of the trial's stdout and stderr pipes, so they never reach their end while it lives: the
trial waited for it (a timeout, or for ever). The holders are found as the kernel knows them, by the pipes' inode in
``/proc/PID/fd`` (Linux), whatever session or process group they moved to; elsewhere none is found.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable
from typing import IO, Any


def stop_holders(streams: Iterable[IO[Any] | None]) -> list[str]:
    """SIGKILL every other process that holds an end of the pipes this process reads as ``streams``.

    Returns:
        ``pid N: name`` of each process stopped, by pid.
    """
    pipes = set()
    for stream in streams:
        if stream is None:
            continue
        try:
            pipes.add(f"pipe:[{os.fstat(stream.fileno()).st_ino}]")
        except (OSError, ValueError):  # closed already
            continue
    stopped = []
    for pid in _holders(pipes) if pipes else []:
        name = _name(pid)  # before it dies: once reaped, it has none
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
        stopped.append(f"pid {pid}: {name}")
    return stopped


def _holders(pipes: set[str]) -> list[int]:
    """The processes other than this one with a descriptor on one of ``pipes`` (``pipe:[INODE]``), by pid."""
    me, found = os.getpid(), []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            descriptors = os.listdir(f"/proc/{entry}/fd")
        except OSError:  # gone, or another user's
            continue
        for fd in descriptors:
            try:
                if os.readlink(f"/proc/{entry}/fd/{fd}") in pipes:
                    found.append(int(entry))
                    break
            except OSError:
                continue
    return sorted(found)


def _name(pid: int) -> str:
    """The command name of ``pid`` (``sleep``), else ``?``."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip() or "?"
    except OSError:
        return "?"
