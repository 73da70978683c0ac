"""Process-tree facts from /proc (Linux): memory of a trial's session, and killing all of it.

Each worker leads its own session, so "the trial" is every process in that session, however deep.
"""

from __future__ import annotations

import os
import signal

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _session_members(sid: int) -> list[tuple[int, int]]:
    """(pid, rss_bytes) of every live process whose session id is ``sid``."""
    members: list[tuple[int, int]] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return members
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rfind(b")") + 2:].split()
        if len(rest) > 21 and int(rest[3]) == sid:
            members.append((int(entry), int(rest[21]) * _PAGE))
    return members


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
