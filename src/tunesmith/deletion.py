"""``tunesmith delete``: what refuses deleting an experiment, and the deletion itself (trial folders stay on disk).

The deletion keeps a record in the store, in its own transaction: who deleted the experiment, when, why, how many
trials it had, and its promotion and rollback events (``audit.KEPT_AFTER_DELETION``), so that the audit trail still
explains a champion registered from it (``tunesmith audit NAME``).

Refused, before anything is asked or removed: an experiment a coordinator is at work on (each would die on its
next write, records gone from under it), one with re-tunes (their lineage goes through it), and one a registered
model's champion came from (the registry would serve a model the store no longer records); checked again, on a fresh
read, after the prompt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunesmith.errors import LeaseHeld
from tunesmith.records import ExperimentRecord

if TYPE_CHECKING:
    from tunesmith.storage.base import DeletedExperiment
    from tunesmith.storage.sql import SQLStore


def refuse_deleting(store: SQLStore, experiment: ExperimentRecord, now: float, *,
                    even_if_champion: bool = False) -> None:
    """Every reason not to delete ``experiment``, checked before anything is removed.

    ``even_if_champion``: the store's audit trail says it holds a champion, and the registry's alias was moved
    outside tunesmith (which the trail cannot know): delete it all the same.

    Raises:
        LeaseHeld: a coordinator is at work on it (the lead, or a joiner, which holds no lease).
        UserInputError: it has re-tunes, or holds a registered model's champion.
    """
    from tunesmith.promotion.champions import refuse_deleting_a_champion
    from tunesmith.retune import refuse_deleting_a_parent

    refuse_while_at_work(store, experiment, now)
    refuse_deleting_a_parent(store, experiment)
    if not even_if_champion:
        refuse_deleting_a_champion(store, experiment)


def refuse_while_at_work(store: SQLStore, experiment: ExperimentRecord, now: float) -> None:
    """Raises LeaseHeld: a coordinator is at work on ``experiment`` (the lead, or a joiner, which holds no lease)."""
    from tunesmith.coordinators import at_work

    running = at_work(store, experiment.id, now)
    if running:
        raise LeaseHeld(f"experiment {experiment.name!r} is being run by {len(running)} coordinator(s) "
                        f"({', '.join(running)}); stop them first (Ctrl-C, or SIGTERM to those processes), then "
                        "delete it")


def delete_experiment(store: SQLStore, experiment: ExperimentRecord, now: float, reason: str | None = None, *,
                      even_if_champion: bool = False) -> DeletedExperiment:
    """Remove ``experiment``'s records and keep its record of deletion, with this process's actor and ``reason``;
    a re-tune's parent stops naming it. Returns the record kept.

    ``experiment`` may have been read minutes ago (before a prompt): every check of :func:`refuse_deleting` runs
    again on a fresh read (a coordinator started, a ``tunesmith cycle`` re-tuned it, a champion was promoted from it
    meanwhile), and the store deletes it only if it is still that experiment (not a later one given its id or
    name). The parent forgets its re-tune only once the store has deleted it: a refused deletion changes nothing.

    Raises:
        LeaseHeld: a coordinator is at work on it now.
        UserInputError: it has re-tunes, or holds a registered model's champion, now.
        ExperimentNotFound: it was deleted meanwhile.
    """
    from tunesmith.audit import KEPT_AFTER_DELETION, actor
    from tunesmith.errors import ExperimentNotFound
    from tunesmith.retune import forget_retune

    try:
        fresh = store.experiment(experiment.name)
    except ExperimentNotFound:
        fresh = experiment  # the store's deletion says it is gone, in its own words
    if (fresh.id, fresh.created_at) == (experiment.id, experiment.created_at):
        refuse_deleting(store, fresh, now, even_if_champion=even_if_champion)
    deleted = store.delete_experiment(experiment, now, KEPT_AFTER_DELETION, {"actor": actor(), "reason": reason})
    forget_retune(store, experiment, now)
    return deleted


__all__ = ["delete_experiment", "refuse_deleting"]
