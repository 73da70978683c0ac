"""Process-tree facts from /proc (Linux): memory of a trial's processes, and killing all of them.

Each worker leads its own session, so "the trial" is every process in that session, however deep, and every
descendant of one of them that left it (``setsid``, ``start_new_session=True``: a data loader's server, a launcher's
child), found through its parent links while its parent lives. Counted by session alone, a 600 MiB child in a session
of its own passed ``memory_limit`` unmeasured and outlived the trial's timeout and its coordinator. One whose parent
ended is the init process's child, a daemon (an ssh ControlPersist master): no longer the trial's, and left alone.
A trial inside a Ray worker (which leads no session of its own) is that worker's descendants instead.
"""

from __future__ import annotations

import os
import signal

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _processes() -> list[tuple[int, int, int, int, int]]:
    """(pid, parent pid, session id, rss_bytes, cpu_ticks) of every live process; cpu_ticks counts the process's
    own user + system time and that of the children it has waited for."""
    found: list[tuple[int, int, int, int, int]] = []
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
            found.append((int(entry), int(rest[1]), int(rest[3]), int(rest[21]) * _PAGE,
                          sum(int(x) for x in rest[11:15])))
    return found


def _session_members(sid: int) -> list[tuple[int, int, int, int, int]]:
    """As :func:`_processes`, those of session ``sid`` and the live descendants of theirs that left it."""
    processes = _processes()
    children: dict[int, list[tuple[int, int, int, int, int]]] = {}
    for p in processes:
        children.setdefault(p[1], []).append(p)
    found = {p[0]: p for p in processes if p[2] == sid}
    todo = list(found)
    while todo:
        for child in children.get(todo.pop(), []):
            if child[0] not in found:
                found[child[0]] = child
                todo.append(child[0])
    return list(found.values())


def session_usage(sid: int) -> tuple[int, float]:
    """(resident bytes, CPU seconds so far) of all processes of session ``sid`` (see the module docstring)."""
    members = _session_members(sid)
    return sum(p[3] for p in members), sum(p[4] for p in members) / _TICKS


def session_rss(sid: int) -> int:
    """Resident memory, in bytes, of all processes of session ``sid`` (see the module docstring)."""
    return session_usage(sid)[0]


def kill_session(sid: int) -> None:
    """SIGKILL every process of session ``sid`` (see the module docstring), however its members regrouped; the
    caller, if a member, last."""
    _signal_members(sid, signal.SIGKILL, spared=os.getpid())
    try:
        os.killpg(sid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def terminate_session(sid: int) -> list[tuple[int, int | None]]:
    """SIGTERM every process of session ``sid`` (see the module docstring) but its leader, ``sid`` itself: a
    command trial's processes, which may save their state then, while the worker that runs them lives on to say
    how the command ended. Returns those signalled, (pid, pidfd or None), for :func:`kill_signalled`: a child that
    left the session is the init process's once the command exits, and no later look at the session finds it."""
    from tunesmith.evaluation.output_holders import terminate_each

    return terminate_each(pid for pid, *_ in _session_members(sid) if pid != sid)


def ended(signalled: list[tuple[int, int | None]]) -> bool:
    """Whether every one of ``signalled`` (:func:`terminate_session`'s) has exited."""
    from tunesmith.evaluation.output_holders import has_exited

    return all(has_exited(pid, pidfd) for pid, pidfd in signalled)


def kill_signalled(signalled: list[tuple[int, int | None]]) -> None:
    """SIGKILL those of ``signalled`` (:func:`terminate_session`'s) still there, and close their pidfds."""
    from tunesmith.evaluation.output_holders import has_exited, signal_through

    for pid, pidfd in signalled:
        if not has_exited(pid, pidfd):
            signal_through(pid, pidfd, signal.SIGKILL)
        if pidfd is not None:
            os.close(pidfd)


def _signal_members(sid: int, sig: int, spared: int) -> None:
    for pid, *_ in _session_members(sid):
        if pid != spared:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass


def _children_map() -> dict[int, list[tuple[int, int]]]:
    """parent pid -> [(pid, rss_bytes)] of every live process."""
    children: dict[int, list[tuple[int, int]]] = {}
    for pid, parent, _, rss, _ in _processes():
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


def own_cpu_seconds() -> float:
    """User + system CPU seconds of this process (all its threads) and of the children it has waited for."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def reset_own_peak_memory() -> None:
    """Reset this process's peak resident memory (VmHWM), so the next reading covers what runs from now on."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass  # not Linux >= 4.0: the peak then covers the whole process's life


def own_peak_memory() -> int:
    """This process's peak resident memory in bytes since the last reset (VmHWM), else since it started."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
