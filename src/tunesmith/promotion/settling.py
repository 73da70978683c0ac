"""Settling what a promotion or rollback killed partway left: the store's intents without an outcome
(:mod:`tunesmith.promotion.intents`), read against the registry, and a rollback the registry alone shows cut short.

- a promotion whose version (tag ``tunesmith.promotion``) holds alias ``champion`` (or ``previous``: moved on since)
  happened: ``previous`` is set where the kill came first, and ``promoted`` is recorded, with
  ``completed_after_interruption``. Otherwise it never served: ``promotion_abandoned`` (a version it registered is
  tagged ``tunesmith.abandoned``, which its trial's rollbacks read past).
- a rollback whose demoted version carries its whole mark is finished (:func:`rolling_back.finish`); one that never
  marked it is ``rollback_abandoned``.

Only while the model is held (:mod:`tunesmith.promotion.model_lock`): an intent without an outcome may be a change
under way. ``promote`` and ``rollback`` settle their model, held, before they act; ``delete`` and ``audit`` settle
what they can (the model free, MLflow installed, the registry reachable) and leave the rest, which ``delete`` counts
as a possible champion.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tunesmith.tracking.destination import missing_sqlite_file
from tunesmith.audit import AuditKind
from tunesmith.clock import Clock
from tunesmith.promotion.intents import Change, Intent, record_outcome, unsettled
from tunesmith.promotion.model_lock import model_held
from tunesmith.promotion.rolling_back import RollbackOutcome, cut_short, finish, mark_of
from tunesmith.promotion.rollbacks import ROLLED_BACK_TAG, ROLLED_BACK_TO_TAG
from tunesmith.promotion.version_tags import ABANDONED_TAG, PREVIOUS_CHAMPION_TAG, PROMOTION_TAG
from tunesmith.redaction import REDACTED, redact

if TYPE_CHECKING:
    from tunesmith.storage.base import TrialStore
    from tunesmith.tracking.model_registry import ModelRegistry, ModelVersion


@dataclass(frozen=True)
class Settled:
    """What settling did, said in one line; ``rollback``: the rollback it finished."""

    said: str
    rollback: RollbackOutcome | None = None


@dataclass(frozen=True)
class Unsettled:
    """An intent left without an outcome, and why it could not be settled."""

    intent: Intent
    why: str

    @property
    def said(self) -> str:
        return (f"{_described(self.intent)} was interrupted, or is under way, and its outcome is not recorded: "
                f"{self.why}")


def settle(store: TrialStore | None, registry: ModelRegistry, model_name: str, clock: Clock) -> list[Settled]:
    """Settle every intent of ``model_name`` in ``store``, in the order recorded (the trail replays them so), then a
    rollback ``registry`` alone shows cut short. The caller holds the model.

    An intent recorded against another registry (another URI, or this one spelt otherwise) is settled against that
    one where it can be read from here, and else left for a command that can (``delete`` counts it meanwhile).
    """
    done = []
    if store is not None:
        for intent in unsettled(store, model_name=model_name):
            here = intent.registry == redact(registry.uri)
            # a registry whose SQLite file is gone is not the one the change ran against (moved, or deleted): read
            # as empty, a promotion that served was recorded abandoned. Left, as one that cannot be read; but where
            # it moved to (this registry, named after the refusal) holds the version the token tags, it is that one
            moved = not here and missing_sqlite_file(intent.registry) is not None
            recorded = (registry if registry.missing_database() is None else None) if here or moved \
                else _recorded_registry(intent.registry)
            if recorded is None:
                continue
            try:
                settled = (_settle_promotion(store, recorded, intent, clock, moved) if intent.change is Change.PROMOTION
                           else _settle_rollback(store, recorded, intent, clock, moved))
            except Exception:
                if here:
                    raise
                continue  # another registry, not answering now: left, as one that cannot be read
            if settled is not None:
                done.append(settled)
    mark = cut_short(registry, model_name)
    if mark is not None:  # run without a store, or with one that has neither version's experiment: nothing to record
        outcome = finish(None, registry, mark, clock, None, interrupted=True)
        done.append(Settled(f"a rollback of model {model_name!r} from version {mark.from_version} to "
                            f"{mark.to_version} ({_when(mark.at) or 'begun at a time its tag does not say'}) was "
                            f"cut short after marking version {mark.from_version}; finished", outcome))
    return done


def settle_where_reachable(store: TrialStore, clock: Clock, models: Collection[str]) -> list[Unsettled]:
    """Settle the intents without an outcome (in every live experiment) of ``models`` that can be: the model free
    now (one held may be under way: it is not waited for), MLflow installed, the recorded registry reachable.
    Returns those left, each with why."""
    def of_models(intents: list[Intent]) -> list[Intent]:
        return [i for i in intents if i.model_name in models]

    pending = of_models(unsettled(store))
    if not pending:
        return []
    why: dict[str, str] = {}
    for model_name in sorted({i.model_name for i in pending}):
        readable = next((i.registry for i in pending if i.model_name == model_name and _unreadable(i.registry) is None),
                        None)
        problem = _settled_now(store, readable, model_name, clock) if readable is not None else None
        if problem is not None:
            why[model_name] = problem
    return [Unsettled(i, _unreadable(i.registry) or why.get(i.model_name) or f"the registry at {i.registry} did not "
                      "answer") for i in of_models(unsettled(store))]


def settled_trail(store: TrialStore, name: str | None, clock: Clock) -> tuple[list[dict[str, Any]], list[Unsettled]]:
    """``tunesmith audit``: the audit trail of experiment ``name`` (every one's when None), after settling what
    its interrupted promotions and rollbacks left where that can be (:func:`settle_where_reachable`); and what is left.

    Raises:
        ExperimentNotFound: no experiment, live or deleted, is called ``name``.
    """
    from tunesmith.audit import lineage_retunes, trail
    from tunesmith.errors import ExperimentNotFound

    try:
        live = [store.experiment(name)] if name is not None else None
    except ExperimentNotFound:
        live = []   # deleted only: trail says so, or that there is none
    if live:  # a lineage root's trail lists its re-tunes' promotions and rollbacks: settled as its own are
        live += lineage_retunes(store, live[0])
    models = {i.model_name for i in unsettled(store, live)} if live != [] else set()
    left = settle_where_reachable(store, clock, models) if models else []
    return trail(store, name), left


def _settled_now(store: TrialStore, registry_uri: str, model_name: str, clock: Clock) -> str | None:
    """Settle ``model_name``'s intents at ``registry_uri`` if the model is free; None done, else why not."""
    from tunesmith.errors import TunesmithError
    from tunesmith.promotion.model_lock import PromotionBusy
    from tunesmith.tracking.model_registry import ModelRegistry

    try:
        with model_held(store, model_name, None, "settling", wait_s=0.0):
            settle(store, ModelRegistry(registry_uri), model_name, clock)
    except PromotionBusy:
        return "a promotion or rollback of the model holds it now (it may be this one, under way)"
    except TunesmithError as e:
        return f"settling it against the registry at {redact(registry_uri)} failed ({e})"
    except Exception as e:  # noqa: BLE001 - MLflow's own errors: left unsettled, which is what is safe
        return f"settling it against the registry at {redact(registry_uri)} failed ({type(e).__name__}: {e})"
    return None


def _recorded_registry(registry_uri: str) -> ModelRegistry | None:
    """The registry an intent recorded, where it can be read from here."""
    from tunesmith.tracking.model_registry import ModelRegistry

    return ModelRegistry(registry_uri) if _unreadable(registry_uri) is None else None


def _unreadable(registry_uri: str) -> str | None:
    """Why the registry an intent recorded cannot be read from here (None: it may be)."""
    import importlib.util

    from tunesmith.extras import install_extra

    if not registry_uri:
        return "it recorded no registry"
    if REDACTED in registry_uri:
        return (f"its registry's URI ({registry_uri}) held a password, which the store does not keep; `tunesmith "
                "promote` or `tunesmith rollback --tracking-uri URI` of the model settles it")
    if importlib.util.find_spec("mlflow") is None:
        return f"reading the registry needs MLflow, which is not installed: {install_extra('mlflow')}"
    if (missing := missing_sqlite_file(registry_uri)) is not None:
        return f"there is no MLflow database at {missing}, where it was recorded"
    return None


def _settle_promotion(store: TrialStore, registry: ModelRegistry, intent: Intent, clock: Clock,
                      moved: bool = False) -> Settled | None:
    """The promotion's outcome as ``registry`` shows it; None (left unsettled) where the registry may not be the one
    it ran against: it holds no version of the model while the promotion replaced a champion of it, or (``moved``:
    the intent recorded a SQLite file gone since) no version the intent's token tags."""
    name = intent.model_name
    versions = registry.versions(name)
    before = intent.detail.get("champion_before")
    if not versions and before:   # a new server at the same address, a database replaced: not this one's to say
        return None
    registered = [v for v in versions if v.tags.get(PROMOTION_TAG) == intent.token]
    if moved and not registered:
        return None
    version = registered[-1].version if registered else None
    # both aliases at once, and an error raised (never read as "alias never moved": abandoned is for good)
    aliases = registry.aliases(name)
    champion, previous = aliases.get("champion"), aliases.get("previous")
    if version is not None and (version in (champion, previous) or _served(version, registered[-1], versions)):
        if champion == version and before and previous != before:  # killed between the two aliases
            registry.set_alias(name, "previous", str(before))
        record_outcome(store, intent, AuditKind.PROMOTED, clock, {
            "version": version, "champion_before": before, "failed_gates": [], "report": None,
            "completed_after_interruption": True,
            **({"even_if_rolled_back": True} if intent.detail.get("even_if_rolled_back") else {})})
        return Settled(f"{_described(intent)} was interrupted after alias champion moved to version {version}; "
                       "recorded as promoted now")
    why = ("nothing was registered" if version is None
           else f"version {version} was registered, but alias champion never moved to it")
    if version is not None:
        registry.set_tag(name, version, ABANDONED_TAG, f"its promotion was interrupted: {why}")
    record_outcome(store, intent, AuditKind.PROMOTION_ABANDONED, clock, {"version": version, "why": why})
    return Settled(f"{_described(intent)} was interrupted before it took effect ({why}); recorded as abandoned")


def _served(version: str, registered: ModelVersion, versions: list[ModelVersion]) -> bool:
    """Whether ``version``, in neither alias now, was champion once: a rollback marked it (one without this store,
    or an alias moved by hand, since), or a later promotion replaced it, or a rollback restored it."""
    return ROLLED_BACK_TAG in registered.tags or any(
        version in (v.tags.get(PREVIOUS_CHAMPION_TAG), v.tags.get(ROLLED_BACK_TO_TAG)) for v in versions
        if v.version != version)


def _settle_rollback(store: TrialStore, registry: ModelRegistry, intent: Intent, clock: Clock,
                     moved: bool = False) -> Settled | None:
    """The rollback's outcome as ``registry`` shows it; None (left) where ``moved`` and no version carries its mark."""
    name, demoted = intent.model_name, str(intent.detail.get("from_version"))
    mark = next((m for v in registry.versions(name) if v.version == demoted and (m := mark_of(v)) is not None
                 and m.token == intent.token), None)
    if mark is None and moved:
        return None
    if mark is not None:
        outcome = finish(store, registry, mark, clock, intent, interrupted=True)
        return Settled(f"{_described(intent)} was cut short after marking version {demoted}; finished", outcome)
    why = f"version {demoted} was never marked: the registry is as it was"
    record_outcome(store, intent, AuditKind.ROLLBACK_ABANDONED, clock, {
        "from_version": demoted, "to_version": intent.detail.get("to_version"), "why": why})
    return Settled(f"{_described(intent)} was interrupted before it took effect ({why}); recorded as abandoned")


def _described(intent: Intent) -> str:
    actor = intent.detail.get("actor") or {}
    begun = ", ".join(w for w in (_when(intent.at), f"by {actor.get('user')}@{actor.get('host')}" if actor else "")
                      if w)
    if intent.change is Change.PROMOTION:
        return (f"the promotion of model {intent.model_name!r} (trial {intent.trial} of experiment "
                f"{intent.experiment.name!r}, {begun})")
    return (f"the rollback of model {intent.model_name!r} from version {intent.detail.get('from_version')} to "
            f"{intent.detail.get('to_version')} ({begun})")


def _when(at: float | None) -> str:
    return "" if at is None else \
        f"begun {datetime.datetime.fromtimestamp(at, datetime.UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}"


__all__ = ["Settled", "Unsettled", "settle", "settle_where_reachable", "settled_trail"]
