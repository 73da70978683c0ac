"""Upgrading a store an older tunesmith wrote: what is said when it happens, and how a host keeps from doing it.

An upgrade is one way. From then on a tunesmith that knows only older revisions cannot open the store: releases from
2026-12-06 on refuse it in one line, older ones (schema revision 0003, and 0004 before the refusal came) fail with
Alembic's traceback, "Can't locate revision identified by '0009'". Nothing in tunesmith takes a store back down: a
backup taken before the upgrade does (README, Storage; docs/upgrading.md).

Any command that opens a store upgrades it, `ls` and a scrape's `metrics` included, so the first host updated upgrades
a store every other host shares. ``TUNESMITH_MIGRATE=never`` keeps a host from it (:func:`upgrades_allowed`, read by
the CLI and the Python API, passed to :class:`~tunesmith.storage.sql.SQLStore` as ``upgrade``): such a command is
refused instead (:func:`upgrade_refused`), and `tunesmith store upgrade` (:func:`upgrade_on_purpose`) upgrades it
when the team is ready.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from tunesmith.errors import UpgradeRefused, UserInputError
from tunesmith.extras import update_tunesmith

if TYPE_CHECKING:
    from tunesmith.storage.sql import SQLStore

MIGRATE_VARIABLE = "TUNESMITH_MIGRATE"


class StoreUpgraded(UserWarning):
    """The Python API opened a store an older tunesmith wrote and upgraded it (one way: see the module docstring).
    ``SQLStore(url, on_upgrade=...)`` takes the sentence instead; ``upgrade=False`` refuses to upgrade."""


def upgrades_allowed(environ: Mapping[str, str]) -> bool:
    """Whether a command may upgrade an older tunesmith's store as it opens it: ``TUNESMITH_MIGRATE`` unset, empty or
    ``auto``; not under ``never``.

    Raises:
        UserInputError: another value, naming the variable and the two it takes.
    """
    value = environ.get(MIGRATE_VARIABLE, "").strip()
    if value in ("", "auto"):
        return True
    if value == "never":
        return False
    raise UserInputError(f"{MIGRATE_VARIABLE}: {value!r} is not auto or never; leave it unset (auto: a command "
                         "upgrades an older tunesmith's store as it opens it) or set never (such a command is refused, "
                         "and `tunesmith store upgrade` upgrades the store on purpose)")


def upgrade_said(shown: str, old: str, new: str) -> str:
    """The one line an upgrade of the store at ``shown`` from revision ``old`` to ``new`` is told in: who it locks
    out, what they see, and that there is no way back but a backup."""
    return (f"upgraded the store at {shown} from schema revision {old!r} to {new!r}, one way (to go back, restore a "
            f"backup taken before it): update every tunesmith that shares it ({update_tunesmith()}); an older one "
            f"refuses it, and one of schema revision 0003 or before (a release before 2026-12-06) fails with "
            f"\"Can't locate revision identified by '{new}'\"")


def upgrade_refused(shown: str, origin: str, revision: str, head: str) -> UpgradeRefused:
    """The refusal of a store at the older ``revision`` by a host told never to upgrade one."""
    return UpgradeRefused(
        f"{origin}: the store at {shown} is at schema revision {revision!r}, older than the {head!r} this tunesmith "
        f"needs, and {MIGRATE_VARIABLE}=never keeps this host from upgrading it (a tunesmith that knows only older "
        "revisions could no longer open it); once every host sharing it runs this release, back it up and run "
        "`tunesmith store upgrade`, or read it with the tunesmith that wrote it (one whose `tunesmith version` says "
        f"schema revision {revision}); nothing was written to it")


def upgrade_on_purpose(store: SQLStore) -> str:
    """`tunesmith store upgrade`: open ``store``, upgrading it whatever ``TUNESMITH_MIGRATE`` says, and say what
    happened in one line (:func:`upgrade_said`, or that it is at this tunesmith's revision already).

    Raises:
        StorageError: as opening the store raises (StoreNotFound where there is none: nothing is made).
    """
    from tunesmith.storage.schema import HEAD_REVISION
    from tunesmith.storage.sql import describe_url

    said: list[str] = []
    store.upgrade, store.on_upgrade = True, said.append
    store.engine  # noqa: B018 - opening is what upgrades it
    return said[0] if said else (f"the store at {describe_url(store.url)} is at schema revision {HEAD_REVISION!r}, "
                                 "this tunesmith's: nothing to upgrade")
