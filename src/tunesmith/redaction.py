"""Secrets never leave tunesmith in what it records or exports.

Two kinds are redacted: environment variables whose names look like credentials (``*TOKEN*``, ``*PASSWORD*``,
``*SECRET*``, ``*KEY*``, ``*CREDENTIAL*``...) and the user-info part of URLs (``postgresql://user:pw@host`` ->
``postgresql://user:***@host``), including URLs inside a longer text such as a command line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

REDACTED = "***"
_SECRET_NAME = re.compile(r"(TOKEN|PASSWORD|PASSWD|PWD|SECRET|KEY|CREDENTIAL|AUTH|PRIVATE)", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")
_ASSIGNMENT = re.compile(r"(?P<name>\b[A-Za-z_][A-Za-z0-9_]*)=(?P<value>\S+)")


def secret_name(name: str) -> bool:
    """True when a variable called ``name`` probably holds a credential."""
    return bool(_SECRET_NAME.search(name))


def redact_text(text: str) -> str:
    """``text`` with URL passwords and ``NAME=value`` assignments of secret-looking names replaced."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)
    return _ASSIGNMENT.sub(lambda m: f"{m['name']}={REDACTED}" if secret_name(m["name"]) else m[0], text)


def redact_env(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``env`` with secret-looking variables' values replaced and URL credentials removed."""
    return {k: REDACTED if secret_name(k) else redact_text(v) for k, v in env.items()}
