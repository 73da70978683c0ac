"""One promotion (or rollback) of a registered model at a time: what moves its aliases judges the champion it moves.

Two `tunesmith promote` of one model name at once both read "no champion yet", both passed beat_champion with
nothing to beat, and both registered: the second moved alias ``champion`` to its version with no ``previous``, so
the first was displaced silently (``rollback`` could not go back to it) and the two were never compared. A manual
promote beside a scheduled ``cycle`` can do the same.

Two guards:

- a lease in the store (:func:`tunesmith.lineage_guard.key_held`, the lineage guard's: a quota slot of key
  ``promote:MODEL`` with limit one, renewed from a thread, given back at the end) held from reading the champion to
  recording the outcome; a second promote waits for it (at most ``WAIT_S``), then is refused with exit 75 naming the
  holder. A cycle's promote step takes it too: the cycle's own hold is another key (``cycle:ROOT``), so it never
  waits on itself. The refit comes before it: the lease is held for the comparison and the registration only.
- right before registering, the champion is read from the registry again: one that changed since it was judged
  (a promote with another store, sharing the registry; a hold that lapsed) refuses with exit 75, registering
  nothing and moving no alias (what it refused is not a decision: no report, no audit event, as any exit 75).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from tunesmith.coordinators import LEASE_TTL
from tunesmith.errors import TemporaryFailure

if TYPE_CHECKING:
    from tunesmith.storage.base import TrialStore

# As long as a lease not renewed takes to lapse: a promote killed on another host is waited out, not refused
# (a promotion holds it for seconds: the champion's bootstrap comparison and the registration)
WAIT_S = LEASE_TTL


class PromotionBusy(TemporaryFailure):
    """Another promotion or rollback of the model held it for longer than ``WAIT_S``: exit 75."""


class ChampionMoved(TemporaryFailure):
    """The champion changed between the judging and the registering: nothing registered, exit 75."""


def lock_key(model_name: str) -> str:
    """``promote:MODEL``; a name too long for the store's key column (255 characters) is cut, with a digest of it."""
    key = f"promote:{model_name}"
    if len(key) <= 255:
        return key
    import hashlib

    return f"{key[:200]}...{hashlib.sha256(model_name.encode()).hexdigest()[:16]}"


@contextmanager
def model_held(store: TrialStore, model_name: str, experiment_id: int | None, doing: str,
               waiting: Callable[[str], None] | None = None, wait_s: float | None = None) -> Iterator[None]:
    """Hold ``model_name`` for the block (``doing``: "promotion" or "rollback", as a refusal names it), waiting at
    most ``wait_s`` (default ``WAIT_S``) for another holder; ``waiting`` is told once, with who holds it, as the
    wait begins.

    Raises:
        PromotionBusy: still held after ``WAIT_S``, naming the holder.
    """
    from tunesmith.lineage_guard import held_by, key_held

    key = lock_key(model_name)

    def holder() -> str:
        held = held_by(store, key, "promotion or rollback")  # type: ignore[arg-type]
        return held[0] if held is not None else "it has just ended"

    def busy() -> PromotionBusy:
        held = held_by(store, key, "promotion or rollback")  # type: ignore[arg-type]
        who, then = held if held is not None else ("it was ending as this one gave up", "")
        return PromotionBusy(f"another promotion or rollback of model {model_name!r} is under way ({who}) and held "
                             f"it for longer than this {doing} waits ({WAIT_S:.0f} s); one at a time per model: run "
                             f"this one again once it has ended (exit 75: try again later){then}")

    said = (lambda: waiting(f"waiting for another promotion or rollback of model {model_name!r} ({holder()}) to "
                            f"end, at most {WAIT_S:.0f} s")) if waiting is not None else None
    wait = WAIT_S if wait_s is None else wait_s   # read as called: tests shorten the module's WAIT_S
    with key_held(store, key, experiment_id, busy, wait, said):  # type: ignore[arg-type]
        yield


def check_champion_unmoved(model_name: str, judged: str | None, now: str | None) -> None:
    """Refuse where the registry's champion (``now``: its version, None for none) is not the one judged against.

    Raises:
        ChampionMoved: naming both; nothing is registered.
    """
    if now != judged:
        raise ChampionMoved(
            f"the champion of model {model_name!r} changed while this promotion was judged (version "
            f"{judged or '(none)'} then, {now or '(none)'} now: another promotion or rollback moved it, one with "
            "another store or whose hold lapsed); nothing is registered and no alias moved: run it again, to judge "
            "it against the new champion (exit 75: try again later)")


__all__ = ["ChampionMoved", "PromotionBusy", "WAIT_S", "check_champion_unmoved", "lock_key", "model_held"]
