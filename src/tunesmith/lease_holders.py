"""Who holds a lease or runs a trial: a coordinator's ``host:pid:random`` name, and whether it is still alive.

Backend-neutral (the runner and every store use it) and outside the storage package, whose import loads
SQLAlchemy: the runner imports it at start-up without loading a store."""

from __future__ import annotations

import os
import socket


def lease_owner_id() -> str:
    """``host:pid:random`` naming this coordinator."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


def holder_alive(holder: str) -> bool:
    """A holder on this host whose process is gone does not hold anything (its lease died with it); a holder on
    another host is taken to be alive (its lease's expiry decides)."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
