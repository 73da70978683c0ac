"""Who holds a lease or runs a trial: a coordinator's ``host:pid:tag`` name, and whether it is still alive.

Backend-neutral (the runner and every store use it) and outside the storage package, whose import loads
SQLAlchemy: the runner imports it at start-up without loading a store."""

from __future__ import annotations

import functools
import os
import socket


@functools.cache  # a process never changes namespace; holder_alive runs per holder, per trial
def _pid_namespace() -> str:
    """This process's PID namespace (Linux: the inode of /proc/self/ns/pid), '' where there is none to read.

    Why: containers that share the host's network (docker --network host, Kubernetes hostNetwork) share its host
    name but not its process ids; a pid that is free here may be a live coordinator in the next container."""
    try:
        link = os.readlink("/proc/self/ns/pid")   # "pid:[4026531836]"
    except OSError:
        return ""
    return "".join(ch for ch in link if ch.isdigit())


def lease_owner_id() -> str:
    """``host:pid:tag`` naming this coordinator; ``tag`` is ``NAMESPACE.random`` where the PID namespace can be
    read, else ``random``."""
    namespace = _pid_namespace()
    tag = os.urandom(3).hex()
    return f"{socket.gethostname()}:{os.getpid()}:{namespace + '.' if namespace else ''}{tag}"


def holder_here(holder: str) -> bool:
    """The holder is a process on this host, in this PID namespace: whether it is alive can be known, not assumed."""
    return _pid_here(holder) is not None


def holder_alive(holder: str) -> bool:
    """A holder on this host, in this PID namespace, whose process is gone does not hold anything (its lease died
    with it); a holder on another host, or in another PID namespace (or of unknown namespace while ours is known),
    is taken to be alive (its lease's expiry decides)."""
    pid = _pid_here(holder)
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    return not _exited_unreaped(pid)


def _exited_unreaped(pid: int) -> bool:
    """A process that has exited but whose parent has not reaped it yet (a zombie: a SIGKILLed coordinator under a
    supervisor that waits late). ``kill(pid, 0)`` still finds it, yet it runs nothing and holds nothing: its trials
    stayed running until someone ran `resume`. Read off Linux's /proc; elsewhere not known, so not assumed."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()  # (the command name may hold spaces and parentheses)
    except OSError:
        return False
    return fields[:1] == ["Z"]


def _pid_here(holder: str) -> int | None:
    """The process id of a ``host:pid:tag`` holder on this host, in this PID namespace; None for any other."""
    host, _, rest = holder.partition(":")
    pid_text, _, tag = rest.partition(":")
    namespace, dot, _ = tag.partition(".")
    here = host == socket.gethostname() and pid_text.isdigit() and (namespace if dot else "") == _pid_namespace()
    return int(pid_text) if here else None
