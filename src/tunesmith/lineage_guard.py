"""One cycle per lineage at a time: `tunesmith cycle` (and each cycle of `watch`) holds its lineage while it runs.

Two cycles on one lineage at once both read the same champion, both re-tuned and both promoted: the second
promotion moved aliases the first had just set, and each recorded a champion before it that was no longer so. The
guard is a lease in the store, so it holds across hosts (PostgreSQL) as on one: a quota slot (the store's
``slot_leases``, the same leases that limit trials) under the key ``cycle:ROOT`` with a limit of one, renewed
from a thread of its own (:class:`tunesmith.coordinators.Heartbeat`) and given back at the end. A holder SIGKILLed
on this host is taken over at once (its process is gone: :func:`tunesmith.lease_holders.holder_alive`); one on
another host once its lease lapses, ``LEASE_TTL`` after its last renewal, or once someone who knows it gone gives
its hold back (`tunesmith quota release HOLDER`, which the refusal names).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tunesmith.coordinators import LEASE_RENEW_EVERY, LEASE_TTL, Heartbeat
from tunesmith.errors import TemporaryFailure, TunesmithError
from tunesmith.lease_holders import holder_here, lease_owner_id

if TYPE_CHECKING:
    from tunesmith.storage.sql import SQLStore


class LineageBusy(TemporaryFailure):
    """Another cycle holds the lineage: exit 75, try again once it has ended."""


def guard_key(root: str) -> str:
    return f"cycle:{root}"


class LineageHold:
    """A cycle's hold on its lineage, as renewals find it: :meth:`check` before what two cycles must not both do."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.lapsed = threading.Event()  # set by the renewing thread: the lease was gone at a renewal

    def check(self) -> None:
        """Raises LineageBusy where the hold lapsed: the store did not answer the renewals for ``LEASE_TTL`` (a lock,
        a suspended machine, a network outage), and another cycle may have taken the lineage since."""
        if self.lapsed.is_set():
            raise LineageBusy(f"this cycle's hold on lineage {self.root!r} lapsed (the store did not renew it for "
                              f"{LEASE_TTL:.0f} s) and another cycle may hold it now: nothing is promoted; run the "
                              "cycle again (exit 75: try again later)")


@contextmanager
def lineage_held(store: SQLStore, root: str) -> Iterator[LineageHold]:
    """Hold lineage ``root`` for the block, or refuse; the block gets the hold, to :meth:`LineageHold.check`.

    Wall-clock time, not the cycle's clock: the lease is judged by other processes, on other hosts.

    Raises:
        LineageBusy: another live cycle holds it, named by host, pid and since when.
    """
    holder, key = lease_owner_id(), guard_key(root)
    # no experiment id: a first tuning's root is not recorded yet (the column takes none, for `quota list` only)
    grant = store.acquire_slot(holder, None, {key: 1}, time.time(), LEASE_TTL)  # type: ignore[arg-type]
    if grant.lease is None:
        store.leave_slot_queue(holder)  # refused, it exits: it waits for no slot
        raise LineageBusy(_busy_said(store, root, key))
    lease, hold = grant.lease, LineageHold(root)

    def renew() -> str | None:
        if store.hold_slots(holder, [lease], time.time(), LEASE_TTL):  # gone: it lapsed, its slot free to take
            hold.lapsed.set()
        return None

    beat = Heartbeat(renew, LEASE_RENEW_EVERY)
    beat.start()
    try:
        yield hold
    finally:
        beat.stop()
        # keeping none: the lease is given back; a store that fails now must not hide the block's own error, and
        # a lease not given back lapses by itself, LEASE_TTL after its last renewal
        with suppress(TunesmithError):
            store.hold_slots(holder, [], time.time(), LEASE_TTL)


def _busy_said(store: SQLStore, root: str, key: str) -> str:
    now = time.time()
    holders = store.slot_holders(key, now)
    if not holders:  # given back between the refusal and this read
        return (f"another cycle on lineage {root!r} was ending as this one started; run it again (exit 75: try "
                "again later)")
    holder, since, lapses = holders[0]
    said = (f"another cycle is running on lineage {root!r} (%s, since {_utc(since)}); one cycle per lineage at a "
            "time: run this one again once it has ended (exit 75: try again later)")
    if holder_here(holder):  # alive (a dead one here was taken over): its pid means something here
        return said % f"pid {holder.split(':')[1]} on this host"
    # a pid on another host means nothing here; a holder SIGKILLed there holds the lineage until its lease lapses
    return (said % f"coordinator {holder}") + (
        f"; if that cycle is gone (killed, its host down), its hold lapses by itself at {_utc(lapses)}, "
        f"{LEASE_TTL:.0f} s after its last renewal, or give it back now: tunesmith quota release {holder}")


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
