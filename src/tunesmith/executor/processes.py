"""Process-tree facts from /proc (Linux): memory of a trial's session, and killing all of it.

Each worker leads its own session, so "the trial" is every process in that session, however deep. A trial inside a
Ray worker (which leads no session of its own) is that worker's descendants instead.
"""

from __future__ import annotations

import os
import signal

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _processes() -> list[tuple[int, int, int, int]]:
    """(pid, parent pid, session id, rss_bytes) of every live process."""
    found: list[tuple[int, int, int, int]] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rfind(b")") + 2:].split()
        if len(rest) > 21:
            found.append((int(entry), int(rest[1]), int(rest[3]), int(rest[21]) * _PAGE))
    return found


def _session_members(sid: int) -> list[tuple[int, int]]:
    """(pid, rss_bytes) of every live process whose session id is ``sid``."""
    return [(pid, rss) for pid, _, session, rss in _processes() if session == sid]


def session_rss(sid: int) -> int:
    """Resident memory, in bytes, of all processes in session ``sid``."""
    return sum(rss for _, rss in _session_members(sid))


def kill_session(sid: int) -> None:
    """SIGKILL every process of session ``sid``, however its members regrouped; the caller, if a member, last."""
    me = os.getpid()
    for pid, _ in _session_members(sid):
        if pid != me:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    try:
        os.killpg(sid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _children_map() -> dict[int, list[tuple[int, int]]]:
    """parent pid -> [(pid, rss_bytes)] of every live process."""
    children: dict[int, list[tuple[int, int]]] = {}
    for pid, parent, _, rss in _processes():
        children.setdefault(parent, []).append((pid, rss))
    return children


def descendants(pid: int) -> list[tuple[int, int]]:
    """(pid, rss_bytes) of every live descendant of ``pid``, however deep (a process that shares no session with
    its parent, such as a trial inside a Ray worker, is still found through its parent links)."""
    children = _children_map()
    found: list[tuple[int, int]] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def tree_rss(pid: int) -> int:
    """Resident memory, in bytes, of ``pid`` and all its descendants."""
    own = 0
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            own = int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        pass
    return own + sum(rss for _, rss in descendants(pid))


def kill_descendants(pid: int) -> None:
    """SIGKILL every descendant of ``pid`` (not ``pid`` itself)."""
    for child, _ in descendants(pid):
        try:
            os.kill(child, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
