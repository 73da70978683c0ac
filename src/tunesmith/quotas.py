"""Quota keys: what a run counts against, and the keys an operator may limit.

A run's keys are ``user:<name>`` (the coordinator's user), ``tag:<k>=<v>`` for each of its spec's tags and
``experiment:<id>`` (``executor.max_concurrent``). A trial starts only when every key of its run that has a limit
has a free slot; limits on ``user:`` and ``tag:`` keys live in the store (``tunesmith quota set``), the
experiment's comes from its spec. The slots themselves are leases in the store (executor/leases.py).

No SQLAlchemy here: the runner and the CLI's argument checks import it without loading a store.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tunesmith.errors import QuotaError

MAX_LIMIT = 1_000_000
_KEY_FORMS = "user:NAME (e.g. user:alice) or tag:KEY=VALUE (e.g. tag:team=vision)"
_NAME_RULE = ("a NAME or KEY may hold any character but whitespace and '=', and ':' only inside it (e.g. user:ålice, "
              "tag:team=vision)")


def parse_quota_key(text: str) -> str:
    """An operator's quota key, checked and normalised (``user:alice``, ``tag:team=vision``).

    Raises:
        QuotaError: any other form, naming the accepted ones.
    """
    kind, sep, rest = text.strip().partition(":")
    tag, eq, value = rest.partition("=")
    if sep and kind == "user" and rest:
        fault = _name_fault(rest)
        if fault is None:
            return f"user:{rest}"
        raise QuotaError(f"quota key: the NAME of user:NAME {fault}; {_NAME_RULE}; got {text!r}")
    if sep and kind == "tag" and eq and tag:
        fault = _name_fault(tag)
        if fault is not None:
            raise QuotaError(f"quota key: the KEY of tag:KEY=VALUE {fault}; {_NAME_RULE}; got {text!r}")
        if value.strip() == value and value:
            return f"tag:{tag}={value}"
    if sep and kind == "experiment":
        raise QuotaError(f"quota key: {text!r}: an experiment's own limit is its spec's executor.max_concurrent, "
                         f"not a store quota; use {_KEY_FORMS}")
    raise QuotaError(f"quota key: must be {_KEY_FORMS}; got {text!r}")


def _name_fault(name: str) -> str | None:
    """What keeps ``name`` (a quota key's user NAME or tag KEY) from being one, or None: a run's keys hold no
    whitespace, and '=' and ':' part a key."""
    space = next((ch for ch in name if ch.isspace()), None)
    if space is not None:
        return f"holds whitespace ({space!r})"
    if "=" in name:
        return "holds '='"
    if name.startswith(":") or name.endswith(":"):
        return f"{'starts' if name.startswith(':') else 'ends'} with ':'"
    return None


def parse_quota_limit(value: int | str) -> int:
    """The most trials that may run at once under a key: a whole number from 1 (as the command line gives it).

    Raises:
        QuotaError: not a whole number, below 1 or absurdly large; to lift a limit, `quota remove` it.
    """
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise QuotaError(f"quota limit: must be a whole number from 1 to {MAX_LIMIT} (the most trials running "
                             f"at once); got {value!r}") from None
    if not 1 <= value <= MAX_LIMIT:
        raise QuotaError(f"quota limit: must be a whole number from 1 to {MAX_LIMIT} (to lift a limit, "
                         f"use `tunesmith quota remove KEY`); got {value}")
    return value


def coordinator_user(env: Mapping[str, str]) -> str:
    """Who runs this coordinator, for ``user:`` quotas: ``$TUNESMITH_USER``, else the OS login name."""
    named = env.get("TUNESMITH_USER", "").strip()
    if named:
        return named
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry
        return "unknown"


def run_quota_keys(user: str, tags: Mapping[str, str], experiment_id: int,
                   max_concurrent: int | None) -> dict[str, int | None]:
    """The keys a run's trials count against, each with the limit the run itself brings (None: the store's, if any)."""
    keys: dict[str, int | None] = {f"user:{user}": None}
    for k, v in sorted(tags.items()):
        keys[f"tag:{k}={v}"] = None
    keys[f"experiment:{experiment_id}"] = max_concurrent
    return keys


@dataclass(frozen=True, slots=True)
class QuotaWait:
    """A run waiting for a free slot: the full key, its limit, the slots in use then, since when (epoch seconds)."""

    key: str
    limit: int | None
    in_use: int
    since: float


def open_quota_wait(events: Sequence[Any]) -> QuotaWait | None:
    """The wait a run is in now, read from its events (``quota_wait`` not yet followed by ``quota_wait_ended``,
    and the run not stopped since); None when it is not waiting."""
    wait: QuotaWait | None = None
    for e in events:
        wait = quota_wait_after(wait, e)
    return wait


def quota_wait_after(wait: QuotaWait | None, event: Any) -> QuotaWait | None:
    """The wait a run is in after ``event``, ``wait`` the one it was in before: :func:`open_quota_wait`'s rule one
    event at a time, for a reader that takes the log in parts (the metrics, every few seconds)."""
    if event.kind == "quota_wait":
        p = event.payload
        return QuotaWait(str(p.get("key")), p.get("limit"), int(p.get("in_use", 0)), event.at)
    if event.kind == "quota_wait_ended" or (event.kind.startswith("run_") and event.kind != "run_running"):
        return None
    return wait


__all__ = ["QuotaWait", "coordinator_user", "open_quota_wait", "parse_quota_key", "parse_quota_limit",
           "quota_wait_after", "run_quota_keys"]
