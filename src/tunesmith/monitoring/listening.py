"""Why a server of tunesmith's cannot listen (`run --metrics-port`'s /metrics, `dashboard`'s page), said in one way
for both: the option at fault named first, with the fix for it."""

from __future__ import annotations

import errno
import socket

from tunesmith.errors import UserInputError


def cannot_listen(addr: str, port: int, error: OSError, *, port_option: str, addr_option: str) -> UserInputError:
    """The refusal of ``addr:port``, which ``error`` says cannot be bound: the address's fault where no interface of
    this machine has it (a name that does not resolve, another machine's address), else the port's (in use, or
    privileged), which another port, or another address, may cure."""
    why = error.strerror or error
    if isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL:
        return UserInputError(f"{addr_option}: cannot listen on {addr}:{port} ({why}); give an address of this "
                              "machine (127.0.0.1, or 0.0.0.0 for all of them)")
    return UserInputError(f"{port_option}: cannot listen on {addr}:{port} ({why}); choose another port (0 picks a "
                          f"free one) or {addr_option}")
