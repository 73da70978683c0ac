"""The processes that keep a command trial's output open after the command itself exited, and stopping them.

A command that starts a background process (``sleep 30 &``, a server, a daemon) without sending its output
elsewhere hands it the ends of the trial's stdout and stderr pipes, so they never reach their end while it lives: the
trial waited for it (a timeout, or for ever). The holders are found as the kernel knows them, by the pipes' inode in
``/proc/PID/fd`` (Linux); elsewhere none is found.

Only the trial's own are stopped: the holders still in the session the command ran in. The command is started in
the session of the process that runs it (a worker's own session, or the terminal's for the inline executor: a
Ctrl-C reaches it), and what it starts stays there unless it leaves with setsid. One that left is a daemon that
others may use (an ssh ControlPersist master that git or rsync started, a server other trials share): it is named,
never stopped. The trial ends all the same, as its reader closes its ends of the pipes.

A command stopped while it runs (pruned) is stopped with everything under it (:func:`stop_tree`): the shell passes
no signal on, so ``cd src && python train.py``'s program would get none and run to its end.
"""

from __future__ import annotations

import os
import select
import signal
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

STOP_GRACE_S = 1.0  # after SIGTERM, how long a holder has to end before SIGKILL


@dataclass(frozen=True)
class Holders:
    """The holders of a trial's output pipes, each as ``pid N: name``."""

    stopped: tuple[str, ...]  # the trial's own: in the command's session, signalled and now ended
    left: tuple[str, ...]     # in another session (setsid): not tunesmith's to stop


def pipe_inode(fd: int) -> int:
    """The inode of the pipe open as ``fd``: how ``/proc/PID/fd`` names it (``pipe:[INODE]``)."""
    return os.fstat(fd).st_ino


def stop_holders(inodes: Collection[int], session: int, grace: float = STOP_GRACE_S) -> Holders:
    """Stop the processes of ``session`` other than this one that hold an end of the pipes ``inodes``: SIGTERM,
    then SIGKILL for those still there ``grace`` seconds later. Holders in another session are left as they are.

    A holder is signalled through a pidfd (Linux 5.3+) opened before it is checked once more, so a PID reused since
    ``/proc`` was read is never signalled. Where there is no pidfd, the PID is signalled as read: a process that
    ended in the few microseconds since, its PID taken at once by a new one, would get the signal instead.
    """
    pipes = {f"pipe:[{inode}]" for inode in inodes}
    stopped: list[str] = []
    left: list[str] = []
    signalled: list[tuple[int, int | None]] = []  # (pid, its pidfd or None)
    for pid in _holders(pipes):
        name = f"pid {pid}: {_name(pid)}"  # before it ends: once reaped, it has none
        try:
            ours = os.getsid(pid) == session
        except OSError:  # ended already
            continue
        if not ours:
            left.append(name)
            continue
        try:
            pidfd = pidfd_of(pid)
        except ProcessLookupError:  # ended already
            continue
        if pidfd is not None and not _holds(pid, pipes):  # ended, its PID maybe another's now: not ours
            os.close(pidfd)
            continue
        if signal_through(pid, pidfd, signal.SIGTERM):
            signalled.append((pid, pidfd))
            stopped.append(name)
        elif pidfd is not None:
            os.close(pidfd)
    _wait_then_kill(signalled, grace, lambda pid, pidfd: _ended(pid, pidfd, pipes))
    return Holders(tuple(stopped), tuple(left))


def stop_tree(pid: int, grace: float) -> None:
    """SIGTERM to ``pid`` and every process under it, then SIGKILL to those of them still there ``grace`` seconds
    later (and to any they started meanwhile). Each is signalled through a pidfd opened as the tree is read, so a
    PID reused since is never signalled; where there is none, as read."""
    from tunesmith.executor.processes import descendants

    signalled = terminate_each([pid, *(child for child, _ in descendants(pid))])
    _wait_then_kill(signalled, grace, has_exited, lambda: [(child, None) for child, _ in descendants(pid)
                                                        if child not in {m for m, _ in signalled}])


def terminate_each(pids: Iterable[int]) -> list[tuple[int, int | None]]:
    """SIGTERM each of ``pids``, through a pidfd opened first (a PID reused since is never signalled again; where
    there is none, as read); those signalled, (pid, pidfd or None), the pidfds left open for their SIGKILL."""
    signalled: list[tuple[int, int | None]] = []
    for pid in pids:
        try:
            pidfd = pidfd_of(pid)
        except ProcessLookupError:
            continue
        if signal_through(pid, pidfd, signal.SIGTERM):
            signalled.append((pid, pidfd))
        elif pidfd is not None:
            os.close(pidfd)
    return signalled


def _wait_then_kill(signalled: list[tuple[int, int | None]], grace: float, ended: Callable[[int, int | None], bool],
                    stragglers: Callable[[], list[tuple[int, int | None]]] = list) -> None:
    """Wait up to ``grace`` seconds for the ``signalled`` processes (pid, pidfd) to end; SIGKILL those still there,
    and then ``stragglers()`` too (what they started meanwhile); close the pidfds."""
    deadline = time.monotonic() + grace
    waiting = list(signalled)
    while waiting and time.monotonic() < deadline:
        time.sleep(0.02)
        waiting = [(pid, pidfd) for pid, pidfd in waiting if not ended(pid, pidfd)]
    for pid, pidfd in [*waiting, *(stragglers() if waiting else [])]:
        signal_through(pid, pidfd, signal.SIGKILL)
    for _, pidfd in signalled:
        if pidfd is not None:
            os.close(pidfd)


def has_exited(pid: int, pidfd: int | None) -> bool:
    """Whether ``pid`` has exited (a zombie not yet reaped has): its pidfd is readable; without one, /proc says."""
    if pidfd is not None:
        return _readable(pidfd)
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return True
    return stat[stat.rfind(b")") + 2:][:1] in (b"Z", b"X")


def pidfd_of(pid: int) -> int | None:
    """A pidfd for ``pid``, or None where there is none (Linux before 5.3, not Linux).

    Raises:
        ProcessLookupError: ``pid`` has ended.
    """
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        raise
    except (AttributeError, OSError):
        return None


def signal_through(pid: int, pidfd: int | None, signum: int) -> bool:
    """Send ``signum``, through ``pidfd`` where there is one; whether it was sent (the process was still there)."""
    try:
        if pidfd is not None:
            signal.pidfd_send_signal(pidfd, signum)
        else:
            os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _ended(pid: int, pidfd: int | None, pipes: set[str]) -> bool:
    """Whether a signalled holder has ended: its pidfd is readable once it has; without one, it no longer holds the
    pipes (an ended process, a zombie too, holds no descriptor)."""
    if pidfd is not None:
        return _readable(pidfd)
    return not _holds(pid, pipes)


def _readable(pidfd: int) -> bool:
    """A pidfd is readable once its process has exited."""
    readable = select.poll()
    readable.register(pidfd, select.POLLIN)
    return bool(readable.poll(0))


def _holders(pipes: set[str]) -> list[int]:
    """The processes other than this one with a descriptor on one of ``pipes`` (``pipe:[INODE]``), by pid."""
    me = os.getpid()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    return sorted(int(e) for e in entries if e.isdigit() and int(e) != me and _holds(int(e), pipes))


def _holds(pid: int, pipes: set[str]) -> bool:
    """Whether ``pid`` has a descriptor on one of ``pipes``; False if it is gone or another user's."""
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in descriptors:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in pipes:
                return True
        except OSError:
            continue
    return False


def _name(pid: int) -> str:
    """The command name of ``pid`` (``sleep``), else ``?``."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip() or "?"
    except OSError:
        return "?"
