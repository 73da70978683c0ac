"""Which experiment holds a registered model's champion, as the store's own audit trail tells it, without MLflow.

Every promotion tunesmith makes is recorded on the promoted experiment (``promoted`` with the version registered;
``promotion_already_champion`` with the version that stayed), and every rollback on the demoted (or else the
restored) experiment (``rolled_back`` with the version restored). Replayed in the order recorded, across the
store's experiments, they say where alias ``champion`` of each model pointed when tunesmith last moved it.

A deleted experiment's promotions and rollbacks are replayed too, from the store's record of its deletion: a
champion registered from it (deleted with ``--even-if-champion``) is still its, not an older one's.

What the trail cannot know: an alias moved in MLflow by hand, or by a tunesmith using another store, and the events
of an experiment deleted by a tunesmith that kept no record of deletions. ``tunesmith delete`` asks this (it needs
no MLflow, and a store is all it has); the cycle, which talks to the registry anyway, asks the registry, and a
promotion (``promote``'s, a cycle's) asks the trail only where the registry holds no champion at all: one the trail
says the model has is a registry that moved (:func:`refuse_a_registry_without_its_champion`).

Nor can it know the outcome of a promotion or rollback killed partway (its intent recorded, its outcome not):
``delete`` settles those it can against the registry first (:mod:`tunesmith.promotion.settling`), and counts the
rest as a possible champion.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tunesmith.audit import AuditKind
from tunesmith.errors import UserInputError
from tunesmith.records import ExperimentRecord

if TYPE_CHECKING:
    from tunesmith.storage.base import Event, TrialStore
    from tunesmith.tracking.model_registry import ModelRegistry, ModelVersion

_CHAMPION_MOVES = frozenset({AuditKind.PROMOTED, AuditKind.PROMOTION_ALREADY_CHAMPION, AuditKind.ROLLED_BACK})
_INTENTS = frozenset({AuditKind.PROMOTION_STARTED, AuditKind.ROLLBACK_STARTED})


@dataclass(frozen=True)
class RecordedChampion:
    """Model ``model_name``'s champion as the audit trail last set it: ``version``, registered from ``experiment``
    (None: a version this store has no promotion of) and its ``trial``."""

    model_name: str
    version: str
    experiment: str | None
    trial: int | None
    # the holdout scores recorded at its promotion (``holdout_<metric>``); empty where none were (an older tunesmith)
    metrics: Mapping[str, float] = field(default_factory=dict)


# Where a move was recorded: a live experiment (by id) or a deleted one (by its record's id: SQLite may give a deleted
# experiment's id to a later one)
_Source = tuple[bool, int]


def champions_held(store: TrialStore, experiment: ExperimentRecord) -> list[RecordedChampion]:
    """The models whose champion, by the audit trail, is a trial of ``experiment``; by model name.

    Only an experiment that was ever made a champion has its models' trails replayed (every experiment's
    promotions and rollbacks read in one query, and the moves kept of deleted ones): for the others this reads one
    experiment's events."""
    own = store.events(experiment.id)
    models = {str(e.payload.get("model_name")) for e in own
              if e.kind in (AuditKind.PROMOTED, AuditKind.PROMOTION_ALREADY_CHAMPION) and e.payload.get("model_name")}
    if not models:
        return []
    champions = _replay(_recorded_moves(store), models)
    return [champion for _, (champion, source) in sorted(champions.items()) if source == (False, experiment.id)]


def recorded_champion(store: TrialStore, model_name: str, registry: str | None = None) -> RecordedChampion | None:
    """``model_name``'s champion as the store's audit trail last set it (None: no promotion of it is recorded);
    with ``registry`` (a redacted URI), in that registry, by the moves recorded there or recorded before moves
    named their registry (any registry, for all the trail knows). Reads every experiment's events."""
    moves = _recorded_moves(store)
    if registry is not None:
        moves = [move for move in moves if move[3] in (None, registry)]
    found = _replay(moves, {model_name}).get(model_name)
    return found[0] if found is not None else None


def recorded_registry(store: TrialStore, model_name: str) -> str | None:
    """The registry (its URI as recorded: redacted) of the last promotion of ``model_name`` this store recorded, the
    one `tunesmith rollback` defaults to; None where none is recorded, or its URI had a password (redacted, it cannot
    be used)."""
    from tunesmith.redaction import REDACTED

    last = next((move[3] for move in reversed(_recorded_moves(store)) if move[0].kind == AuditKind.PROMOTED
                 and move[0].payload.get("model_name") == model_name and move[3]), None)
    return None if last is None or REDACTED in last else str(last)


# A move recorded, with its experiment's name, where it was recorded and its registry (None: not known)
_Move = tuple["Event", str, _Source, str | None]


def _recorded_moves(store: TrialStore) -> list[_Move]:
    """Every promotion and rollback the store recorded, its live experiments' and its deleted ones' (kept events),
    in the order recorded, each with its registry: its own record of it, else its intent's (a move recorded before
    moves named their registry, a promotion's intent named it already)."""
    read = store.events_of_kinds(_CHAMPION_MOVES | _INTENTS)   # one read, not each experiment's every event
    logs = [(e, exp.name, (False, exp.id)) for exp in store.experiments() for e in read.get(exp.id, [])]
    logs.extend((e, d.name, (True, d.id)) for d in store.deleted_experiments() for e in d.kept_events)
    intended = {e.payload.get("intent"): e.payload.get("registry") for e, _, _ in logs
                if e.kind in _INTENTS and e.payload.get("intent")}
    moves = [(e, name, where, e.payload.get("registry") or intended.get(e.payload.get("intent")) or None)
             for e, name, where in logs if e.kind in _CHAMPION_MOVES]
    # Replayed in the order recorded: by event id (kept events keep theirs) where the store never gives an id again,
    # since hosts' clocks differ; by time where it may (SQLite gives the highest ids again once they are deleted,
    # and its one file is one host's clock), ties by id. One key for all: ids and times may disagree.
    if store.reuses_event_ids:
        moves.sort(key=lambda move: (move[0].at, move[0].id))
    else:
        moves.sort(key=lambda move: move[0].id)
    return moves


def _replay(moves: list[_Move], models: set[str]) -> dict[str, tuple[RecordedChampion, _Source | None]]:
    champion: dict[str, tuple[RecordedChampion, _Source | None]] = {}
    # (model, version) -> (experiment, trial, where recorded, holdout scores)
    registered: dict[tuple[str, str], tuple[str | None, int | None, _Source | None, Mapping[str, float]]] = {}
    for event, name, where, _ in moves:
        model = str(event.payload.get("model_name"))
        if model not in models:
            continue
        if event.kind == AuditKind.ROLLED_BACK:
            version = event.payload.get("to_version")
            if version is None:
                continue
            source = registered.get((model, str(version)), (None, None, None, {}))
        else:  # promoted: the version registered; already the champion: the version that stayed
            version = event.payload.get("version") if event.kind == AuditKind.PROMOTED \
                else event.payload.get("champion_before")
            if version is None:
                continue
            known = registered.get((model, str(version)))   # already the champion: as it was promoted
            scores = event.payload.get("holdout") or (known[3] if known is not None else {})
            source = (name, event.trial_number, where, dict(scores))
            registered[(model, str(version))] = source
        champion[model] = (RecordedChampion(model, str(version), source[0], source[1], source[3]), source[2])
    return champion


def refuse_deleting_a_champion(store: TrialStore, experiment: ExperimentRecord) -> None:
    """``tunesmith delete`` of the experiment a registered model's champion came from: refused. Deleted, the
    registry served a model whose experiment the store no longer had, and every later ``tunesmith cycle
    --model-name`` stopped (exit 2) until someone rolled back or promoted. So is one that may be: a promotion or
    rollback of a model it was promoted to (or began promoting to), interrupted, whose outcome the registry could
    not be asked for here.

    Raises:
        UserInputError: naming each model, its version, and the commands that move the champion first; or the
            interrupted change, why it is not settled, and how to settle it.
    """
    _refuse_while_unsettled(store, experiment)
    held = champions_held(store, experiment)
    if not held:
        return
    which = ", ".join(f"model {c.model_name!r} (version {c.version}" + (f", trial {c.trial})" if c.trial is not None
                                                                         else ")") for c in held)
    model = held[0].model_name
    raise UserInputError(
        f"experiment {experiment.name!r} holds the champion of {which}, by the store's audit trail: deleted, the "
        f"registry would serve a model whose experiment this store no longer records, and `tunesmith cycle "
        f"--model-name {model}` would refuse to run. Move the champion first: promote another experiment's trial "
        f"(tunesmith promote OTHER --model-name {model}) or roll back (tunesmith rollback {model} --reason ...); "
        f"if the registry's alias was already moved outside tunesmith, delete with --even-if-champion")


def refuse_a_registry_without_its_champion(store: TrialStore, model_name: str, registry: ModelRegistry,
                                           champion: ModelVersion | None, named: bool, experiment: str,
                                           again: str) -> None:
    """A promotion's registry (``promote``'s, a cycle's) that holds no champion of ``model_name`` (``champion``: as
    read from it, None) while this store's audit trail records one: refused before anything is registered there.
    Promoted into as "no champion yet", it became a second registry of the model beside the one that holds its
    champion (its version 1 again, ``beat_champion`` passed with nothing to beat), and a cycle checked the lineage's
    head, not the champion. Refused where:

    - its SQLite file does not exist (the registry moved, was restored elsewhere, or deleted): MLflow would create
      an empty one there (:meth:`ModelRegistry.by_alias` reads none);
    - it holds no champion of the model, unless the registry was ``named`` on the command line (``--tracking-uri``:
      a new registry, or one restored without the model, on purpose): a new tracking server at the spec's URI, a
      moved database's old path made anew by a run's live tracking.

    With no promotion of the model recorded, a first promotion makes the registry, and the model in it.
    ``experiment``: the one being promoted (or the cycle's root), for ``export mlflow``; ``again``: the command that
    was run, without ``--tracking-uri`` (``tunesmith promote NAME -m M``), for the fix.

    Raises:
        UserInputError: naming the URI, the field it came from, the champion the trail records, and the fixes.
    """
    missing = registry.missing_database()
    if champion is not None or (named and missing is None):
        return
    from tunesmith.redaction import redact

    shown = redact(registry.uri)
    # a champion recorded in another registry does not make this one "moved": a different URI is a different
    # registry, chosen on purpose (a prod server beside a staging one, a model started over elsewhere)
    recorded = recorded_champion(store, model_name, shown)
    if recorded is not None:
        where = (f"{recorded.experiment} trial {recorded.trial}; `tunesmith audit {recorded.experiment}` lists its "
                 "promotions" if recorded.experiment is not None else "registered by another store")
        trail = (f"this store recorded promotions of model {model_name!r} (its champion by the audit trail: version "
                 f"{recorded.version}, {where})")
    else:
        # a first promotion killed after moving the alias recorded no `promoted`: its intent, against this URI, is
        # the promotion recorded where the registry's file is gone (it moved, and may serve it there). A registry
        # that is there is asked by the settling that follows: a promotion that failed before it registered
        # anything (the registry down) is abandoned there, and offered again
        from tunesmith.promotion.intents import Change, unsettled

        begun = None if missing is None else next((i for i in unsettled(store, model_name=model_name)
                                                   if i.change is Change.PROMOTION and i.registry == shown), None)
        if begun is None:
            return
        trail = (f"this store recorded a promotion of model {model_name!r} into it (experiment "
                 f"{begun.experiment.name} trial {begun.trial}) that was interrupted, its outcome not recorded")
    moved = (f"If it moved, give its new URI: {again} --tracking-uri URI"
             f"{' (or set MLFLOW_TRACKING_URI to it)' if registry.field == 'MLFLOW_TRACKING_URI' else ''}")
    if missing is not None:
        export = shlex.join(["tunesmith", "export", "mlflow", experiment, *store_flag(store)])
        raise UserInputError(
            f"{registry.field}: {shown}: no MLflow database at {missing}, yet {trail}: the registry was moved or "
            f"deleted, and MLflow would make an empty one there and register {model_name!r} anew beside the registry "
            f"that holds its champion; nothing was done. {moved}. To start {model_name!r} afresh at {missing} on "
            f"purpose, make the database first: {export} --tracking-uri {shown}; then "
            f"name it: {again} --tracking-uri {shown}")
    raise UserInputError(
        f"{registry.field}: {shown} holds no champion of model {model_name!r}, yet {trail}: it is another registry "
        f"(a new server, a database restored without the model, a moved database's old path made anew), and "
        f"promoting into it would register {model_name!r} beside the registry that holds its champion; nothing was "
        f"done. {moved}. To register {model_name!r} afresh in this one on purpose, name it: {again} --tracking-uri "
        f"{shown}")


def store_flag(store: TrialStore) -> list[str]:
    """``--storage URL`` for a command a fix repeats, where :func:`~tunesmith.storage.sql.store_to_name` says the
    plain command would open another store; none for a store that is not SQL (it has no URL to give)."""
    from tunesmith.storage.sql import SQLStore, store_to_name

    named = store_to_name(store.url, os.environ) if isinstance(store, SQLStore) else None
    return ["--storage", named] if named is not None else []


def _refuse_while_unsettled(store: TrialStore, experiment: ExperimentRecord) -> None:
    """Settle what interrupted promotions and rollbacks of ``experiment``'s models left, where that can be; refuse
    while one is left that may have made it the champion (killed after moving an alias, the registry may serve its
    model: only the registry says): its own, or a rollback (recorded on the demoted experiment) to a version it
    registered. Another experiment's promotion made that one's version the champion or left the champion as it was:
    it refused deleting an experiment it could not concern."""
    own = store.events(experiment.id)
    models = {str(e.payload["model_name"]) for e in own if e.kind in _OF_A_MODEL and e.payload.get("model_name")}
    if not models:
        return
    from tunesmith.clock import SystemClock
    from tunesmith.promotion.intents import Change
    from tunesmith.promotion.settling import settle_where_reachable

    registered = {(str(e.payload.get("model_name")), str(e.payload.get(key))) for e in own
                  for kind, key in ((AuditKind.PROMOTED, "version"), (AuditKind.PROMOTION_ALREADY_CHAMPION,
                                                                       "champion_before")) if e.kind == kind}
    # its events are stamped now, as every audit event
    left = [u for u in settle_where_reachable(store, SystemClock(), models)
            if u.intent.experiment.id == experiment.id or (
                u.intent.change is Change.ROLLBACK
                and (u.intent.model_name, str(u.intent.detail.get("to_version"))) in registered)]
    if left:
        on = left[0].intent.experiment.name   # `audit` settles the intents recorded on the experiment it is given
        raise UserInputError(
            f"experiment {experiment.name!r} may hold a registered model's champion: {left[0].said}. Settle it where "
            f"the registry can be read: `tunesmith audit {on}` does, as does the model's next promote or rollback; "
            "then delete. If the registry is known to serve another experiment's model, delete with "
            "--even-if-champion")


# A model's events: one named in them may have been (or be becoming) its champion
_OF_A_MODEL = frozenset({AuditKind.PROMOTED, AuditKind.PROMOTION_ALREADY_CHAMPION, AuditKind.PROMOTION_STARTED,
                         AuditKind.ROLLED_BACK, AuditKind.ROLLBACK_STARTED})


__all__ = ["RecordedChampion", "champions_held", "recorded_champion", "recorded_registry",
           "refuse_a_registry_without_its_champion",
           "store_flag",
           "refuse_deleting_a_champion"]
