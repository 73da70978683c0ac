"""``tunesmith rollback``'s steps, in an order where a kill between any two leaves a state the next command reads.

1. the store: ``rollback_started`` (on the experiment of the version demoted, else of the one restored, where the
   store has one; :mod:`tunesmith.promotion.intents`);
2. the version demoted: tags ``tunesmith.rollback`` (the token), ``tunesmith.rolled_back_to``,
   ``tunesmith.rolled_back_at``, then ``tunesmith.rolled_back`` (the reason). That is the sticky mark gate
   ``rolled_back`` reads, so it is there before any alias moves; from here on the rollback is finished, never
   abandoned;
3. alias ``champion`` to the version restored;
4. alias ``previous`` to the champion before that one (its tag ``tunesmith.previous_champion``), or removed;
5. the store: ``rolled_back``.

Killed after 1, the registry is as it was: the next command records the rollback abandoned. Killed after 2, 3 or 4,
the next ``rollback`` (or ``promote``) finishes it (:func:`finish`: steps 3 to 5, each only where the aliases show it
not done) and says so, instead of rolling back the model it restored: ``previous`` naming the champion itself, the
state after 3, was taken for a rollback "from v1 to v1" that marked the good model. Without a store (or with one that
has neither version's experiment) there are no steps 1 and 5, and the registry alone shows a rollback cut short
(:func:`cut_short`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tunesmith.audit import AuditKind
from tunesmith.clock import Clock
from tunesmith.errors import UserInputError
from tunesmith.promotion.intents import Change, Intent, begin, record_outcome
from tunesmith.promotion.rollbacks import (
    ROLLBACK_HOLDS_TAG,
    ROLLBACK_TAG,
    ROLLED_BACK_AT_TAG,
    ROLLED_BACK_TAG,
    ROLLED_BACK_TO_TAG,
)
from tunesmith.promotion.version_tags import EXPERIMENT_TAG, PREVIOUS_CHAMPION_TAG, of_experiment
from tunesmith.records import ExperimentRecord
from tunesmith.redaction import redact

if TYPE_CHECKING:
    from tunesmith.storage.base import TrialStore
    from tunesmith.tracking.model_registry import ModelRegistry, ModelVersion

CHAMPION, PREVIOUS = "champion", "previous"


@dataclass(frozen=True)
class RollbackOutcome:
    """``champion`` moved from ``from_version`` to ``to_version``; ``previous`` is what alias previous names now.
    ``finished_interrupted``: this command finished a rollback cut short (for ``reason``) rather than starting one;
    ``notes``: what else it settled first."""

    model_name: str
    from_version: str
    to_version: str
    previous: str | None
    finished_interrupted: bool = False
    reason: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mark:
    """A rollback as the version it demotes records it (step 2): ``at`` None where the tag cannot be read."""

    model_name: str
    from_version: str
    to_version: str
    token: str
    reason: str
    at: float | None


def mark_of(version: ModelVersion) -> Mark | None:
    """The whole mark ``version`` carries (the reason, written last, included), else None."""
    tags = version.tags
    if ROLLED_BACK_TAG not in tags or not tags.get(ROLLBACK_TAG) or not tags.get(ROLLED_BACK_TO_TAG):
        return None
    try:
        at: float | None = float(tags.get(ROLLED_BACK_AT_TAG, ""))
    except ValueError:
        at = None
    return Mark(version.name, version.version, tags[ROLLED_BACK_TO_TAG], tags[ROLLBACK_TAG], tags[ROLLED_BACK_TAG],
                at)


def roll_back(store: TrialStore | None, registry: ModelRegistry, model_name: str, clock: Clock,
              reason: str) -> RollbackOutcome:
    """Steps 1 to 5 for ``model_name``'s champion, whose model is held (:mod:`tunesmith.promotion.model_lock`) and
    which has nothing cut short to finish (:mod:`tunesmith.promotion.settling`).

    Raises:
        UserInputError: no champion, no ``previous``, or ``previous`` the champion itself.
    """
    current = registry.by_alias(model_name, CHAMPION)
    if current is None:
        raise UserInputError(f"model {model_name!r} has no champion at {redact(registry.uri)}; nothing to roll back")
    previous = registry.by_alias(model_name, PREVIOUS)
    if previous is None:
        raise UserInputError(f"model {model_name!r}: champion v{current.version} has no earlier champion to roll back "
                             "to (alias `previous` is not set)")
    if previous.version == current.version:  # no mark of a rollback cut short explains it (settled before this)
        raise UserInputError(
            f"model {model_name!r}: alias `previous` names the champion itself (version {current.version}), so there "
            "is nothing to roll back to, and no version carries the mark of a rollback cut short (an older "
            "tunesmith's, or aliases set by hand); point `previous` at the version to go back to (MLflow's "
            "set_registered_model_alias), then roll back, or promote the model to serve")
    audited = audited_on(store, (current, previous)) if store is not None else None
    intent = begin(store, audited, Change.ROLLBACK, clock, model_name, registry.uri, None, {
        "from_version": current.version, "to_version": previous.version}, reason) \
        if store is not None and audited is not None else None
    token = intent.token if intent is not None else uuid.uuid4().hex
    at = clock.now()
    # the reason last: with it the mark is whole (mark_of), and gate rolled_back refuses the demoted trial
    for key, value in ((ROLLBACK_TAG, token), (ROLLED_BACK_TO_TAG, previous.version), (ROLLED_BACK_AT_TAG, repr(at)),
                       (ROLLBACK_HOLDS_TAG, "1"), (ROLLED_BACK_TAG, reason)):
        registry.set_tag(model_name, current.version, key, value)
    return finish(store, registry, Mark(model_name, current.version, previous.version, token, reason, at), clock,
                  intent)


def finish(store: TrialStore | None, registry: ModelRegistry, mark: Mark, clock: Clock, intent: Intent | None,
           interrupted: bool = False) -> RollbackOutcome:
    """Steps 3 to 5 of ``mark``'s rollback, each where the aliases show it not done; ``intent``: its record in
    ``store`` (None: nothing to record); ``interrupted``: this finishes one cut short. Aliases moved elsewhere since
    (by hand, by a promote with another store) are left as they are."""
    name = mark.model_name
    champion, previous = (_version(registry.by_alias(name, alias)) for alias in (CHAMPION, PREVIOUS))
    if champion == mark.from_version:
        registry.set_alias(name, CHAMPION, mark.to_version)
        champion = mark.to_version
    if champion == mark.to_version and previous == mark.to_version:  # `previous` was the version restored: it moves on
        earlier = registry.version(name, mark.to_version).tags.get(PREVIOUS_CHAMPION_TAG)
        previous = earlier if earlier not in (None, "", mark.to_version, mark.from_version) else None
        if previous is not None:
            registry.set_alias(name, PREVIOUS, previous)
        else:
            registry.delete_alias(name, PREVIOUS)
    if store is not None and intent is not None:
        record_outcome(store, intent, AuditKind.ROLLED_BACK, clock, {
            "from_version": mark.from_version, "to_version": mark.to_version,
            **({"finished_after_interruption": True} if interrupted else {})})
    return RollbackOutcome(name, mark.from_version, mark.to_version, previous, interrupted, mark.reason)


def cut_short(registry: ModelRegistry, model_name: str) -> Mark | None:
    """A rollback the registry alone shows cut short after its mark: a marked champion whose ``previous`` is the
    version it restores (killed before step 3), or ``previous`` the champion itself, which a marked version restores
    (before step 4). Both states have a ``previous``: without one, the champion is not read."""
    previous = registry.by_alias(model_name, PREVIOUS)
    champion = registry.by_alias(model_name, CHAMPION) if previous is not None else None
    if previous is None or champion is None:
        return None
    mark = mark_of(champion)
    if mark is not None and mark.to_version == previous.version:
        return mark
    if previous.version != champion.version:
        return None
    marks = [m for v in registry.versions(model_name) if (m := mark_of(v)) is not None
             and m.to_version == champion.version]
    return max(marks, key=lambda m: (m.at or 0.0, int(m.from_version))) if marks else None


def audited_on(store: TrialStore, versions: Sequence[ModelVersion]) -> ExperimentRecord | None:
    """The experiment a rollback of ``versions`` (the demoted, then the restored) is recorded on: the first whose
    experiment the store has (another store's, or a deleted one of that name, is not this one's)."""
    for version in versions:
        name = version.tags.get(EXPERIMENT_TAG)
        if not name:
            continue
        try:
            experiment = store.experiment(name)
        except UserInputError:
            continue
        if of_experiment(version, experiment):
            return experiment
    return None


def _version(version: ModelVersion | None) -> str | None:
    return version.version if version is not None else None


__all__ = ["Mark", "RollbackOutcome", "audited_on", "cut_short", "finish", "mark_of", "roll_back"]
