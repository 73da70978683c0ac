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
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tunesmith.coordinators import LEASE_RENEW_EVERY, LEASE_TTL, Heartbeat
from tunesmith.errors import TemporaryFailure, TunesmithError
from tunesmith.lease_holders import holder_alive, holder_here, lease_owner_id

if TYPE_CHECKING:
    from tunesmith.storage.sql import SQLStore

WAIT_POLL_S = 0.25  # a holder that waits asks again this often: its place in the queue is kept (WAIT_TICKET_S)


class LineageBusy(TemporaryFailure):
    """Another cycle holds the lineage: exit 75, try again once it has ended."""


def guard_key(root: str) -> str:
    return f"cycle:{root}"


class LineageHold:
    """A cycle's hold on its lineage, as renewals find it: :meth:`check` before what two cycles must not both do.
    ``took_over``: the holder (and since when) whose hold this one took over, its cycle having ended without giving
    it back (killed outright, its host lost: the lease of a process gone, or one that lapsed); None: none."""

    def __init__(self, root: str, took_over: tuple[str, float] | None = None) -> None:
        self.root = root
        self.took_over = took_over
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
    # read before taking it: a lease left by a cycle that never gave it back, which taking the key then clears
    left = [(holder, since) for holder, since, lapses in store.slot_holders(guard_key(root), 0.0)
            if lapses <= time.time() or not holder_alive(holder)]
    hold = LineageHold(root, left[0] if left else None)
    # no experiment id: a first tuning's root is not recorded yet (the column takes none, for `quota list` only)
    with key_held(store, guard_key(root), None, lambda: LineageBusy(_busy_said(store, root)), lapsed=hold.lapsed):
        yield hold


@contextmanager
def key_held(store: SQLStore, key: str, experiment_id: int | None, busy: Callable[[], TemporaryFailure],
             wait_s: float = 0.0, waiting: Callable[[], None] | None = None,
             lapsed: threading.Event | None = None) -> Iterator[threading.Event]:
    """Hold the one slot of quota key ``key`` (a lease in the store, limit one) for the block, renewed from a thread
    of its own and given back at the end; the block gets the event a renewal sets if the lease was gone (``lapsed``).
    The lineage guard's lease, and `promote`'s per registered model (:mod:`tunesmith.promotion.model_lock`).

    ``wait_s``: how long to wait for a holder to give it back (in the store's queue for the key: first come, first
    served), ``waiting`` called once as the wait begins; then refused with ``busy()``.
    """
    holder = lease_owner_id()
    deadline = time.monotonic() + wait_s
    told = False
    try:
        while (grant := store.acquire_slot(holder, experiment_id, {key: 1}, time.time(),  # type: ignore[arg-type]
                                           LEASE_TTL)).lease is None:
            if time.monotonic() >= deadline:
                raise busy()
            if waiting is not None and not told:
                waiting()
                told = True
            time.sleep(min(WAIT_POLL_S, max(deadline - time.monotonic(), 0.0)))
    except BaseException:
        with suppress(TunesmithError):
            store.leave_slot_queue(holder)  # refused (or interrupted), it waits for no slot: owed none
        raise
    lease, gone = grant.lease, lapsed if lapsed is not None else threading.Event()

    def renew() -> str | None:
        if store.hold_slots(holder, [lease], time.time(), LEASE_TTL):  # gone: it lapsed, its slot free to take
            gone.set()
        return None

    beat = Heartbeat(renew, LEASE_RENEW_EVERY)
    beat.start()
    try:
        yield gone
    finally:
        beat.stop()
        # keeping none: the lease is given back; a store that fails now must not hide the block's own error, and
        # a lease not given back lapses by itself, LEASE_TTL after its last renewal
        with suppress(TunesmithError):
            store.hold_slots(holder, [], time.time(), LEASE_TTL)


def held_by(store: SQLStore, key: str, doing: str) -> tuple[str, str] | None:
    """Who holds ``key`` now, and what to do where it is gone: ``("pid N on this host, since T", "")`` or
    ``("coordinator H, since T", "; if that DOING is gone ... tunesmith quota release H")``; None where nobody
    does (given back between a refusal and this read)."""
    holders = store.slot_holders(key, time.time())
    if not holders:
        return None
    holder, since, lapses = holders[0]
    if holder_here(holder):  # alive (a dead one here was taken over): its pid means something here
        return f"pid {holder.split(':')[1]} on this host, since {utc(since)}", ""
    # a pid on another host means nothing here; a holder SIGKILLed there holds the key until its lease lapses
    return (f"coordinator {holder}, since {utc(since)}",
            f"; if that {doing} is gone (killed, its host down), its hold lapses by itself at {utc(lapses)}, "
            f"{LEASE_TTL:.0f} s after its last renewal, or give it back now: tunesmith quota release {holder}")


def _busy_said(store: SQLStore, root: str) -> str:
    held = held_by(store, guard_key(root), "cycle")
    if held is None:
        return (f"another cycle on lineage {root!r} was ending as this one started; run it again (exit 75: try "
                "again later)")
    return (f"another cycle is running on lineage {root!r} ({held[0]}); one cycle per lineage at a time: run this "
            "one again once it has ended (exit 75: try again later)") + held[1]


def utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
