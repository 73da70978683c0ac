"""``tunesmith promote`` and ``tunesmith rollback``: gated, recorded, reversible changes of the serving model.

promote: select the trial, gather its evidence (for a task: refit on every development row and score the holdout),
run every gate, and only when all pass register a new version and move alias ``champion`` to it (the old champion
gets ``previous``); a trial that is the champion already registers nothing (a second version of the same model
would make ``previous`` the champion itself). A rollback is sticky: a trial whose model was rolled back fails gate
``rolled_back`` unless asked for with ``even_if_rolled_back``. Every attempt writes a report and an audit event,
whatever the decision. Promotions and rollbacks of one model take turns (:mod:`tunesmith.promotion.model_lock`).

Killed partway, neither leaves a state the next command misreads: a promotion records its intent in the store
before it touches the registry (:mod:`tunesmith.promotion.intents`), a rollback marks the version it demotes before
it moves an alias (:mod:`tunesmith.promotion.rolling_back`), and each settles what an interrupted one of its model
left before it acts (:mod:`tunesmith.promotion.settling`).
"""

from __future__ import annotations

import enum
import math
import os
import shlex
from collections.abc import Callable, Collection
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import yaml

from tunesmith import audit
from tunesmith.tracking.destination import missing_sqlite_file
from tunesmith.clock import Clock
from tunesmith.errors import SpecError, UserInputError
from tunesmith.promotion.bootstrap import paired_bootstrap
from tunesmith.promotion.candidate import select_trial
from tunesmith.promotion.champions import refuse_a_registry_without_its_champion, store_flag
from tunesmith.promotion.intents import Change, begin
from tunesmith.promotion.model_lock import check_champion_unmoved, model_held
from tunesmith.promotion.gates import Candidate, ChampionComparison, GateResult, Verdict, rolled_back_gate, run_gates
from tunesmith.promotion.report import check_report_dir, write_report
from tunesmith.promotion.rollbacks import from_audit_trail, from_registry
from tunesmith.promotion.rolling_back import RollbackOutcome, roll_back
from tunesmith.promotion.settling import settle
from tunesmith.promotion.tuned_data import refuse_changed_data
from tunesmith.promotion.version_tags import (CREATED_AT_TAG, EXPERIMENT_TAG, PREVIOUS_CHAMPION_TAG, PROMOTION_TAG,
                                              TRIAL_TAG, of_experiment)
from tunesmith.records import Direction, ExperimentRecord, TrialRecord, TrialState
from tunesmith.seeding import derive_seed
from tunesmith.suggestions import closest, listed
from tunesmith.spec.loader import safe_load_checked, spec_from_dict
from tunesmith.spec.model import ExperimentSpec
from tunesmith.spec.promotion_config import PromotionConfig

if TYPE_CHECKING:
    from tunesmith.promotion.rollback_hold import Hold
    from tunesmith.storage.base import TrialStore
    from tunesmith.tracking.model_registry import ModelRegistry, ModelVersion

METRIC_TAG = "tunesmith.metric."


class Decision(enum.StrEnum):
    PROMOTED = "promoted"
    ALREADY_CHAMPION = "already the champion"   # every gate passed; the trial is behind alias champion already
    REJECTED = "rejected"
    DRY_RUN_PASSED = "dry run: every gate passed"
    # known only when beat_champion read the registry (a dry run reaches MLflow for nothing else)
    DRY_RUN_ALREADY_CHAMPION = "dry run: already the champion"
    DRY_RUN_REJECTED = "dry run: rejected"

    @property
    def audit_kind(self) -> audit.AuditKind:
        """The event the decision is recorded as: a dry run, whatever it found, is one kind."""
        return _AUDIT_KINDS.get(self, audit.AuditKind.PROMOTION_DRY_RUN)


_AUDIT_KINDS = {Decision.PROMOTED: audit.AuditKind.PROMOTED, Decision.ALREADY_CHAMPION:
                audit.AuditKind.PROMOTION_ALREADY_CHAMPION, Decision.REJECTED: audit.AuditKind.PROMOTION_REJECTED}


@dataclass(frozen=True)
class PromotionOutcome:
    decision: Decision
    experiment: str
    model_name: str
    trial: int
    gates: tuple[GateResult, ...]
    version: str | None
    previous_champion: str | None
    report_json: Path
    report_md: Path
    champion_before: str | None = None
    notes: tuple[str, ...] = ()   # what the command should say beside the gates (a model registered from a copy)

    @property
    def rejected(self) -> bool:
        return any(not g.passed for g in self.gates)


def load_policy(spec: ExperimentSpec, policy_file: str | None) -> PromotionConfig:
    """The spec's ``promotion:`` gates, its ``policy:`` file's, then ``policy_file``'s (later ones win)."""
    layers = _policy_layers(spec, policy_file)
    policy = layers[0][1]
    for _, extra in layers[1:]:
        policy = policy.merged(extra)
    return policy


def _policy_layers(spec: ExperimentSpec, policy_file: str | None) -> list[tuple[str, PromotionConfig]]:
    """Each source of gates with the field path its keys are named by: ``promotion`` (the spec's section), then
    ``policy file PATH:`` for its ``policy:`` file and ``policy_file``."""
    layers = [("promotion.", spec.promotion or PromotionConfig())]
    for path in _policy_files(spec, policy_file)[0]:
        try:
            data, twice = safe_load_checked(Path(path).read_text(encoding="utf-8"))
            data = data or {}
        except OSError as e:
            raise UserInputError(f"policy file {path!r} cannot be read: {e.strerror}") from None
        except yaml.YAMLError as e:
            raise UserInputError(f"policy file {path!r} is not valid YAML: {e}") from None
        if twice is not None:  # YAML would keep one and drop the other gate without a word
            raise SpecError(f"policy file {path}: {twice[0]}", twice[1])
        if not isinstance(data, dict):
            raise UserInputError(f"policy file {path!r} must hold a mapping of gates (min, max, safe_ranges, ...)")
        if "promotion" in data and len(data) == 1:
            data = data["promotion"] or {}
        data.pop("policy", None)
        from pydantic import ValidationError

        try:
            extra = PromotionConfig.model_validate(data)
        except ValidationError as e:
            from tunesmith.spec.loader import format_validation_error

            err = format_validation_error(e, data)
            raise SpecError(f"policy file {path}: {err.path}", err.message) from None
        layers.append((f"policy file {path}: ", extra))
    return layers


def _policy_files(spec: ExperimentSpec, policy_file: str | None) -> tuple[list[str], str | None]:
    """The policy files to read, in order: the spec's ``policy:`` file (from the spec's recorded folder), then
    ``policy_file``; and a note where ``policy_file`` stands in for the spec's, which no longer exists there (the
    checkout or the store moved: the folder is recorded as it was; merged after it, ``--policy`` could not stand in).

    Raises:
        UserInputError: the spec's file does not exist and no ``policy_file`` is given.
    """
    recorded = spec.promotion.policy if spec.promotion is not None else None
    if not recorded:
        return [policy_file] if policy_file else [], None
    path = str(Path(spec.base_dir or ".") / recorded)
    if os.path.exists(path):
        return [path, *([policy_file] if policy_file else [])], None
    if policy_file:
        return [policy_file], f"the spec's policy file {path!r} does not exist; --policy {policy_file} stands in for it"
    raise UserInputError(f"promotion.policy: the spec's policy file {path!r} does not exist; put it back there, or "
                         "(the checkout or the store moved) give it where it is now: `tunesmith promote --policy PATH` "
                         "stands in for it")


def check_policy_metrics(spec: ExperimentSpec, policy_file: str | None, trials: list[TrialRecord],
                         expected: Collection[str] = ()) -> None:
    """Each metric the promotion policy names (``beat_champion.metric``, the ``min`` and ``max`` gates') is one the
    experiment records, checked before anything runs. A misspelt ``beat_champion.metric`` passed every first
    promotion (no champion yet: nothing to beat) and failed every later one; a misspelt gate rejected every trial
    (exit 3: a model rejected, to a CI job, where its policy had a typo). A metric some trial records, though not
    the one judged, is the gate's to fail. ``expected``: metrics its trials will record, beside those ``trials``
    did (a cycle checks before its first tuning).

    Raises:
        SpecError: naming the field (in the spec or the policy file that set it) and the likeliest metric.
    """
    layers = _policy_layers(spec, policy_file)
    named = [(f"{where}{bound}.{metric}", metric) for where, layer in layers for bound in ("min", "max")
             for metric in getattr(layer, bound)]
    # the last layer that sets it: a later `beat_champion: null` turns it off
    where, cfg = next(((w, c.beat_champion) for w, c in reversed(layers)
                       if c.beat_champion is not None or "beat_champion" in c.model_fields_set), ("", None))
    if cfg is not None:
        named.insert(0, (f"{where}beat_champion.metric", cfg.metric))
    likely = [o.metric for o in spec.objectives]
    if spec.task is not None and spec.task.holdout is not None:
        likely += [f"holdout_{spec.task.metric_name}", "holdout_rows"]
    recorded = {k for t in trials if t.state is TrialState.COMPLETED for k in _recorded_metrics(spec, t)}
    for field, metric in named:
        if metric in likely or metric in recorded or metric in expected:
            continue
        close = closest(metric, likely) or closest(metric, recorded)
        raise SpecError(field, f"{metric!r} is not a metric this experiment records ({', '.join(likely)} or a "
                               "metric its trials report)" + (f"; did you mean {close!r}?" if close else ""))


def check_model_name(model_name: str) -> None:
    """MLflow's rule for registered model names, checked before any work (MLflow raised it at registration, after
    every gate had run).

    Raises:
        UserInputError: a name MLflow refuses.
    """
    if not model_name.strip() or any(c in model_name for c in "/:") or model_name == "." or model_name.startswith(".."):
        raise UserInputError(f"--model-name: {model_name!r} is not a name MLflow accepts; use a non-empty name "
                             "without '/' or ':' (e.g. team-wine)")


def promote(store: TrialStore, name: str, model_name: str, clock: Clock, trial_number: int | None = None,
            policy_file: str | None = None, dry_run: bool = False, tracking_uri: str | None = None,
            report_dir: str | None = None, reason: str | None = None, even_if_rolled_back: bool = False,
            waiting: Callable[[str], None] | None = None) -> PromotionOutcome:
    """Judge a trial of experiment ``name`` by every gate; register and promote it only when all pass. A trial
    whose model was rolled back from ``model_name`` fails gate ``rolled_back`` unless ``even_if_rolled_back``.
    ``waiting``: told once, with who holds it, where another promotion of the model is under way and this one waits.

    Raises:
        UserInputError: unknown experiment or trial, a bad model name, ``report_dir`` or policy file (a metric
            the experiment does not record, named by ``beat_champion`` or a gate; the spec's file gone and no
            ``policy_file`` to stand in), a trial with no model to register, a champion whose files
            ``beat_champion`` cannot read, MLflow not installed (exit 2).
        PromotionBusy: another promotion or rollback of ``model_name`` held it for longer than it waits (exit 75).
        ChampionMoved: the registry's champion changed while this one was judged; nothing registered (exit 75).
    """
    check_model_name(model_name)
    check_report_dir(report_dir)
    experiment = store.experiment(name)
    # read as recorded first (no scikit-learn lookups, seconds of imports): a mistyped policy, --trial or registry is
    # refused without them; then in full, before the refit, so that a scorer or class gone since is reported
    spec = spec_from_dict(experiment.spec, recorded=True)
    policy = load_policy(spec, policy_file)
    registry_needed = not dry_run or policy.beat_champion is not None
    if registry_needed:  # before the refit and the gates, not after them
        from tunesmith.tracking import check_registry_installed

        check_registry_installed("--model-name", f"registering {model_name!r}" if not dry_run
                                 else "beat_champion (reading the champion)")
    trials = store.trials(experiment.id)
    check_policy_metrics(spec, policy_file, trials)
    trial = select_trial(spec, trials, trial_number)
    handed = _handed_over(spec, experiment, trials, trial, tracking_uri, registry_needed)  # none: bad input
    notes = tuple(n for n in (_policy_files(spec, policy_file)[1], handed.note if handed else None) if n)
    spec = spec_from_dict(experiment.spec)
    objective = spec.objectives[0]
    maximize = objective.direction is Direction.MAXIMIZE
    metrics = _recorded_metrics(spec, trial)
    refuse_changed_data(store, experiment, spec)   # refit on other rows than it was tuned on, it shipped unsaid
    model, trusted, holdout = _task_model(spec, trial)
    metrics.update(holdout.scores)
    candidate = Candidate(name, trial.number, dict(trial.params), metrics, dict(spec.tags), objective.metric, maximize,
                          tuple(spec.space))

    # One promotion of a model at a time, from reading its champion to recording the outcome (the refit, above,
    # is outside): two at once both judged against the same champion, and the second displaced the first's
    # version unseen (tunesmith.promotion.model_lock). A dry run moves nothing: it holds nothing.
    with nullcontext() if dry_run else model_held(store, model_name, experiment.id, "promotion", waiting):
        # The registry (and MLflow) is reached only when needed: to beat the champion, or to register (and then
        # whether the trial's model was rolled back is asked first).
        registry: ModelRegistry | None = None
        champion: ModelVersion | None = None
        comparison = None
        if policy.beat_champion is not None or not dry_run:
            registry = _registry(spec, tracking_uri)
            # refused first: settled against a moved or replaced registry, an interrupted promotion that served was
            # recorded abandoned, and a killed first one then got past the refusal (no promotion recorded)
            champion = registry.by_alias(model_name, "champion")
            refuse_a_registry_without_its_champion(store, model_name, registry, champion, tracking_uri is not None,
                                                   name, _promote_again(store, name, model_name, trial_number,
                                                                        policy_file))
            if not dry_run:  # held: a promotion or rollback of the model killed partway is settled before judging
                settled = settle(store, registry, model_name, clock)
                notes += tuple(s.said for s in settled)
                if settled:  # settling may have moved it (nothing settled: the champion judged is the one read)
                    champion = registry.by_alias(model_name, "champion")
        if policy.beat_champion is not None:
            assert registry is not None
            comparison = (ChampionComparison(champion.version, is_candidate=True)
                          if _is_trial(champion, experiment, trial)
                          else _compare(policy, registry, champion, candidate, model, holdout, store, spec))
        gates = run_gates(policy, candidate, comparison)
        # `--trial N`: selection picks none; judged as the gates are, on what ships (its own latency and size)
        if broken := [c for c in spec.constraints if not c.satisfied(metrics)]:
            said = "; ".join(f"{c} ({c.metric} {metrics.get(c.metric, 'not reported')})" for c in broken)
            gates.append(GateResult("constraints", Verdict.FAILED, f"trial {trial.number} breaks the spec's "
                                    f"constraints: {said}", {"broken": [str(c) for c in broken]}))
        demoted = (from_registry(store, experiment, model_name, [v for v in registry.versions(model_name)
                                                                 if _is_trial(v, experiment, trial)])
                   if registry is not None else from_audit_trail(store, experiment, model_name, trial.number))
        if demoted is not None:
            gates.append(rolled_back_gate(trial.number, demoted, even_if_rolled_back))
        passed = all(g.passed for g in gates)

        version: ModelVersion | None = None
        intent: str | None = None
        already = passed and _is_trial(champion, experiment, trial)
        if passed and not dry_run and not already:
            assert registry is not None
            source, run_id = _logged_model(spec, experiment, trials, trial, registry, model, trusted, handed,
                                           tracking_uri)
            # read again as the aliases are about to move (the model logged, seconds after the champion was judged):
            # a champion moved by a promote with another store sharing this registry is not displaced unjudged
            moved = registry.by_alias(model_name, "champion")
            check_champion_unmoved(model_name, champion.version if champion else None,
                                   moved.version if moved else None)
            # the store first: killed in the registry's steps, the promotion is found (and settled) by its intent
            intent = begin(store, experiment, Change.PROMOTION, clock, model_name, registry.uri, trial.number, {
                "champion_before": champion.version if champion else None,
                **({"even_if_rolled_back": True} if even_if_rolled_back and demoted is not None else {})}, reason).token
            version = _register(registry, model_name, source, run_id, _version_tags(experiment, trial, metrics,
                                                                                    champion, intent), champion)
        decision = (Decision.ALREADY_CHAMPION if already else Decision.PROMOTED if passed else Decision.REJECTED) \
            if not dry_run else (Decision.DRY_RUN_ALREADY_CHAMPION if already else Decision.DRY_RUN_PASSED if passed
                                 else Decision.DRY_RUN_REJECTED)
        now = clock.now()
        data: dict[str, Any] = {
            "experiment": name, "trial": trial.number, "model_name": model_name, "decision": decision.value,
            "at": now, "version": version.version if version else None,
            "previous_champion": champion.version if (version and champion) else None,
            "champion_before": champion.version if champion else None,
            "params": dict(trial.params), "metrics": metrics, "policy": policy.model_dump(mode="json"),
            "actor": audit.actor(), "reason": reason, **({"notes": list(notes)} if notes else {}),
        }
        folder = Path(report_dir) if report_dir else Path(spec.workdir or ".") / "promotions"
        json_path, md_path = write_report(folder, data, gates)
        audit.record(store, experiment.id, decision.audit_kind, clock, trial.number, {
            "model_name": model_name, "version": data["version"], "champion_before": data["champion_before"],
            "failed_gates": [g.gate for g in gates if not g.passed], "report": str(json_path),
            # its holdout scores as judged here: what a drift check of the model it registers compares with
            **({"holdout": {k: v for k, v in metrics.items() if k.startswith("holdout_")}}
               if decision is Decision.PROMOTED else {}),
            **({"even_if_rolled_back": True} if any(g.gate == "rolled_back" and g.passed for g in gates) else {}),
            # the registry the champion is in: another registry's first promotion is not "the registry moved"
            **({"registry": _safe(registry.uri)} if registry is not None else {}),
            **({"intent": intent} if intent else {})}, reason)
        return PromotionOutcome(decision, name, model_name, trial.number, tuple(gates), data["version"],
                                data["previous_champion"], json_path, md_path, data["champion_before"], notes)


def _promote_again(store: TrialStore, name: str, model_name: str, trial_number: int | None,
                   policy_file: str | None) -> str:
    """The promote that was run, as a refusal's fix repeats it (``--tracking-uri`` added there): with the trial and
    the policy it named, which copied without them would promote the selected trial under the spec's policy, and
    the store (:func:`~tunesmith.promotion.champions.store_flag`), without which it opened another."""
    words = ["tunesmith", "promote", name, "-m", model_name]
    words += ["--trial", str(trial_number)] if trial_number is not None else []
    words += ["--policy", policy_file] if policy_file is not None else []
    words += store_flag(store)
    return shlex.join(words)


def model_registry_uri(store: TrialStore | None, model_name: str, given: str | None, cwd: str) -> tuple[str, str]:
    """The registry a command that names only a model (`rollback`, `release`) acts on, and where that came from (for
    its messages): ``given`` (``--tracking-uri``); else the registry this store's last promotion of ``model_name``
    recorded (the spec's tracking.mlflow.uri, which `promote` and `cycle` use: the on-call engineer who rolls back
    with only that set had to look it up); else ``$MLFLOW_TRACKING_URI``; else ``sqlite:///mlflow.db`` in ``cwd``."""
    from tunesmith.promotion.champions import recorded_registry
    from tunesmith.tracking import registry_uri

    if given:
        return registry_uri(given, cwd), "--tracking-uri"
    recorded = recorded_registry(store, model_name) if store is not None else None
    if recorded is not None:
        return recorded, f"the registry this store's last promotion of {model_name!r} recorded ({recorded})"
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return registry_uri(None, cwd), "MLFLOW_TRACKING_URI"
    return registry_uri(None, cwd), "--tracking-uri (not given: the default, sqlite:///mlflow.db in this folder)"


def rollback(store: TrialStore | None, model_name: str, clock: Clock, uri: str, reason: str,
             field: str = "--tracking-uri") -> RollbackOutcome:
    """Move ``champion`` back to ``previous``; ``previous`` moves to the champion before that (or goes). Where a
    rollback of the model was cut short (killed after marking the version it demotes), this finishes that one
    instead, and says so (``finished_interrupted``); what else an interrupted promotion or rollback left is settled
    first (``notes``).

    ``field``: where ``uri`` came from (:func:`model_registry_uri`), as its refusal names it.

    Raises:
        UserInputError: no MLflow database at a ``sqlite:///`` ``uri``, no champion, no earlier champion to go back
            to, or ``previous`` the champion itself with no rollback to finish; MLflow not installed.
        PromotionBusy: a promotion of ``model_name`` held it for longer than a rollback waits (exit 75).
    """
    registry = registry_of(uri, field, "rollback", f"moving {model_name}'s alias champion back")
    # one at a time with the model's promotions, as they are with each other: a rollback between a promote's reading
    # of the champion and its registering was undone unseen (the new version's `previous`: the version rolled back
    # from); a rollback without a store, auditing nowhere, holds nothing: a promote's re-read guards against it
    with nullcontext() if store is None else model_held(store, model_name, None, "rollback"):
        settled = settle(store, registry, model_name, clock)
        notes = tuple(s.said for s in settled if s.rollback is None)
        finished = next((s.rollback for s in settled if s.rollback is not None), None)
        outcome = finished if finished is not None else roll_back(store, registry, model_name, clock, reason)
        return replace(outcome, notes=notes)


def registry_of(uri: str, field: str, command: str, doing: str) -> ModelRegistry:
    """The registry at ``uri`` (``field``: where it came from) for ``command`` (``doing`` what), refused where MLflow
    is not installed or a ``sqlite:///`` ``uri`` names no database (MLflow would create an empty one).

    Raises:
        UserInputError: naming ``field`` (the flag only where it was given) and the fix.
    """
    from tunesmith.tracking import check_registry_installed

    check_registry_installed(command, doing)
    from tunesmith.tracking.model_registry import ModelRegistry

    if (database := missing_sqlite_file(uri)) is not None:  # MLflow would create an empty one
        raise UserInputError(f"{field}: no MLflow database at {database}; pass the URI the model was registered at "
                             "(the spec's tracking.mlflow.uri), e.g. --tracking-uri sqlite:////path/to/mlflow.db")
    return ModelRegistry(uri)


def release_hold(store: TrialStore | None, model_name: str, clock: Clock, uri: str, reason: str,
                 field: str = "--tracking-uri") -> Hold | None:
    """`tunesmith release`: lift the hold a rollback put on ``model_name``'s cycles
    (:mod:`tunesmith.promotion.rollback_hold`); the hold released, or None where there was none.

    Raises:
        UserInputError: as :func:`registry_of`.
        PromotionBusy: a promotion or rollback of ``model_name`` held it for longer than this waits (exit 75).
    """
    from tunesmith.promotion.rollback_hold import release

    registry = registry_of(uri, field, "release", f"reading {model_name}'s rollbacks")
    with nullcontext() if store is None else model_held(store, model_name, None, "release"):
        return release(store, registry, model_name, clock, reason)


# -- evidence ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Holdout:
    scores: dict[str, float]  # and the shipped model's latency and size, which replace the trial's
    X: Any = None
    y: Any = None
    scorer: Any = None


def _recorded_metrics(spec: ExperimentSpec, trial: TrialRecord) -> dict[str, float]:
    out = {k: float(v) for k, v in trial.metrics.items() if isinstance(v, int | float) and math.isfinite(v)}
    out.update(trial.value_map(spec.objectives) or {})
    return out


def _task_model(spec: ExperimentSpec, trial: TrialRecord) -> tuple[Any, list[str] | None, _Holdout]:
    """For a task: the model to ship (:func:`tunesmith.tasks.refit`), the types it needs trusted to be stored (None
    where skops is not installed: :func:`_refuse_unstorable`), its holdout score and its own latency and
    size. A trial measured those on its last fold's model, fit on fewer rows: a model whose size grows with its rows
    (k-NN, support vectors, forests) passed ``max: {model_size_bytes: 100000}`` at 58 KB and shipped at 115 KB. The
    gates judge what ships: these replace the trial's."""
    if spec.task is None:
        return None, None, _Holdout({})
    from tunesmith.tasks import measure_model, prepare, refit

    model = refit(spec.task, dict(trial.params), trial.seed, spec.base_dir)
    trusted = _refuse_unstorable(model)   # as registering it would, after every gate had passed (and a dry run said so)
    prep = prepare(spec.task, spec.base_dir)
    rows = prep.holdout_idx if len(prep.holdout_idx) else prep.refit_idx  # timed on rows it predicts in production
    X, y = prep.dataset.X[prep.holdout_idx], prep.dataset.y[prep.holdout_idx]
    try:
        measured = measure_model(model, prep.dataset.X[rows], spec.task.latency) \
            if spec.task.latency is not None else {}
        if spec.task.holdout is None:
            return model, trusted, _Holdout(measured)
        score = prep.scorer(model, X, y)
    except ValueError as e:  # scikit-learn's refusal of the rows is the answer; any other error is a defect, raised
        said = (str(e).strip().splitlines() or [""])[0]
        hint = ("; a step refuses rows unlike the development rows (a text level only the holdout holds, with a "
                "OneHotEncoder's handle_unknown='error'): make it accept them (handle_unknown: ignore), or fix the "
                "data" if "unknown categor" in said.lower() else "")
        raise UserInputError(
            f"task.pipeline: trial {trial.number}'s model, refit on the development rows, cannot score the holdout "
            f"({len(y)} rows): {type(e).__name__}: {said}{hint}; nothing was done") from None
    name = spec.task.metric_name
    scores = {f"holdout_{name}": score, "holdout_rows": float(len(y)), **measured}
    return model, trusted, _Holdout(scores, X, y, prep.scorer)


def _refuse_unstorable(model: Any) -> list[str] | None:
    """A model the registry would refuse to store (a class of the user's own in its pipeline), refused before the
    gates: a dry run said "every gate passed" for it, and the promote then refused it. Not judged where skops, which
    stores it, is not installed (a dry run without the registry's extra). Returns the types it needs trusted, handed
    to :meth:`ModelRegistry.log_sklearn` (checking serializes the whole model: done once).

    Raises:
        UserInputError: the registry's own words (exit 2).
    """
    import importlib.util

    if importlib.util.find_spec("skops") is None:
        return None
    from tunesmith.tracking.model_registry import UntrustedModel, check_storable

    try:
        return check_storable(model)
    except UntrustedModel as e:
        raise UserInputError(f"task.estimator: {e}") from None


def _compare(policy: PromotionConfig, registry: ModelRegistry | None, champion: ModelVersion | None,
             candidate: Candidate, model: Any, holdout: _Holdout, store: TrialStore,
             spec: ExperimentSpec) -> ChampionComparison:
    """The candidate against the champion: both scored on the candidate's holdout rows, each encoded as its own
    experiment encodes them (:mod:`tunesmith.promotion.champion_rows`); else their recorded values."""
    cfg = policy.beat_champion
    assert cfg is not None
    if champion is None or registry is None:
        return ChampionComparison(None)
    metric = cfg.metric
    holdout_metric = f"holdout_{candidate.metric}"
    if model is not None and holdout.X is not None and metric in (candidate.metric, holdout_metric):
        from tunesmith.tracking.model_registry import ModelFilesUnreadable, UntrustedModel

        try:
            champion_model = registry.load_sklearn(champion)
        except UntrustedModel as e:
            return ChampionComparison(champion.version, holdout_metric, problem=str(e))
        except ModelFilesUnreadable as e:  # not the candidate's fault (a verdict): the champion's files are the fix
            raise UserInputError(
                f"beat_champion: the champion, {champion.name} version {champion.version}, cannot be read from "
                f"{_safe(champion.source)} ({e}), so the candidate cannot be compared with it; restore its files "
                "there (an MLflow database restored without its artifact folder, or moved with it: a version keeps "
                "the source it was registered with), or promote without this gate: --policy FILE holding "
                "`beat_champion: null`") from None
        from tunesmith.promotion.champion_rows import CannotCompare, champion_holdout

        try:
            champion_X = champion_holdout(store, champion, spec, holdout.X)
        except CannotCompare as e:
            return ChampionComparison(champion.version, holdout_metric, problem=str(e))
        if unseen := _labels_never_seen(champion_model, holdout.y):
            return ChampionComparison(champion.version, holdout_metric, problem=(
                f"the candidate's holdout has label(s) {listed(unseen, 10)}, which the champion was never "
                f"trained on (its labels: {listed(champion_model.classes_, 10)}): the two "
                "models answer with different labels and their scores compare nothing; register the candidate "
                "under another model name, or relabel its data as the champion's"))
        try:
            ci = paired_bootstrap(holdout.scorer, model, champion_model, holdout.X, holdout.y, candidate.maximize,
                                  cfg.confidence, cfg.resamples, derive_seed(0, "beat_champion", candidate.trial),
                                  champion_X)
        except Exception as e:  # noqa: BLE001 - a champion that cannot score these rows is evidence, not a crash
            return ChampionComparison(champion.version, holdout_metric,
                                      problem="the champion cannot be scored on this holdout "
                                              f"({type(e).__name__}: {e})")
        redrawn = (f"; {ci.redrawn} of {ci.resamples + ci.redrawn} resamples left {holdout_metric} undefined (one "
                   "class only, say) and were drawn again" if ci.redrawn else "")
        return ChampionComparison(champion.version, holdout_metric, ci.candidate, ci.champion, ci.improvement,
                                  ci.low, ci.high, f"paired bootstrap, {ci.resamples} resamples of {ci.rows} "
                                  f"holdout rows, both models scored on the same rows{redrawn}", rows=ci.rows)
    mine = candidate.metrics.get(metric)
    theirs = champion.tags.get(METRIC_TAG + metric)
    if mine is None or theirs is None:
        return ChampionComparison(champion.version, metric, mine, None, problem=(
            f"{metric} is not recorded for the {'candidate' if mine is None else 'champion'}"))
    theirs_f = float(theirs)
    improvement = (mine - theirs_f) if candidate.maximize else (theirs_f - mine)
    return ChampionComparison(champion.version, metric, mine, theirs_f, improvement,
                              method="recorded values (no holdout to score both models on)")


def _labels_never_seen(champion_model: Any, y: Any) -> list[str]:
    """The holdout labels a classifier champion has no class for (none for a regressor). It still "scores" them:
    recoded labels (0/1 as malignant/benign) gave a ROC AUC of 0.003 from its probability of class 1, and the
    candidate beat it by +0.98."""
    import numpy as np

    classes = getattr(champion_model, "classes_", None)
    if classes is None:
        return []
    known = set(np.asarray(classes).tolist())
    return sorted({str(v) for v in np.unique(np.asarray(y)).tolist() if v not in known})


# -- registering ------------------------------------------------------------------------------------------------
def _is_trial(version: ModelVersion | None, experiment: ExperimentRecord,
              trial: TrialRecord) -> TypeGuard[ModelVersion]:
    """Whether registered ``version`` is this trial's model (the tags ``_register`` wrote). The name alone is not
    the experiment: stores sharing a registry, or a name deleted and run again, have other experiments by it; when
    it was created tells them apart, as the MLflow tracker finds an experiment's run. A version registered without
    that tag (by an older tunesmith) is known by the name and the trial alone, as rollback does: taken for another
    trial's, the champion was compared with itself, or registered again."""
    return version is not None and of_experiment(version, experiment) \
        and version.tags.get(TRIAL_TAG) == str(trial.number)


def _registry(spec: ExperimentSpec, tracking_uri: str | None) -> ModelRegistry:
    from tunesmith.tracking import tracker_for
    from tunesmith.tracking.model_registry import ModelRegistry

    tracker = tracker_for(spec, tracking_uri)
    return ModelRegistry(tracker.uri, tracker.field)


@dataclass(frozen=True)
class _HandedOver:
    """Where a function or command trial's model is registered from."""

    source: str               # its folder (uploaded when registered), or the artifact URI of its MLflow run's copy
    logged: bool = False      # the copy: registered as it is
    note: str | None = None   # said by the command: why the copy


def _handed_over(spec: ExperimentSpec, experiment: ExperimentRecord, trials: list[TrialRecord], trial: TrialRecord,
                 tracking_uri: str | None, registry_needed: bool) -> _HandedOver | None:
    """The model a trial that is no task's handed over (None for a task: promote refits it): its ``model/`` folder,
    else the copy tracking logged on its MLflow run, looked for where the spec tracks or the registry is reached
    anyway (``registry_needed``: its URI's errors come first, as they did). A folder gone (a store copied to
    another machine, a trial folder cleaned) was taken for a trial that had handed over none, a gate's verdict
    (exit 3: a cycle never offers a rejected re-tune again), while its run held a copy.

    Raises:
        UserInputError: no folder and no copy, naming the folder and the fix.
    """
    from tunesmith.tracking.mlflow_tracker import MODEL_FOLDER

    if spec.task is not None:
        return None
    folder = _model_folder(trial, MODEL_FOLDER)
    if folder is not None:
        return _HandedOver(str(folder))
    expected = Path(trial.log_path).parent / MODEL_FOLDER if trial.log_path else None
    looked = spec.tracking is not None or registry_needed
    if looked:
        from tunesmith.tracking import tracker_for
        from tunesmith.tracking.model_registry import ModelRegistry

        tracker = tracker_for(spec, tracking_uri)
        copy = ModelRegistry(tracker.uri, tracker.field).logged_folder(tracker.experiment_name, {
            "tunesmith.experiment": experiment.name, "tunesmith.created_at": repr(experiment.created_at),
            "tunesmith.kind": "trial", "tunesmith.trial": str(trial.number)}, MODEL_FOLDER)
        if copy is not None:
            return _HandedOver(copy, True, f"trial {trial.number}'s model folder {expected} is gone; registering the "
                                           "copy its MLflow run holds")
    others = [t.number for t in trials if t.state is TrialState.COMPLETED and t.number != trial.number
              and _model_folder(t, MODEL_FOLDER) is not None]
    where = f"its model folder {expected} is missing" if expected else "it recorded no trial folder"
    raise UserInputError(
        f"trial {trial.number} has no model to register: {where}"
        f"{' and its MLflow run holds no copy' if looked else ''} (a function trial hands one "
        "over with trial.save_model(path), a command trial writes {trial_dir}/model); if it saved one, restore the "
        "folder (a store copied or moved without its trial folders)"
        + (f", or promote a trial that has one: --trial {listed(others, 10)}" if others else ""))


def _model_folder(trial: TrialRecord, name: str) -> Path | None:
    """The trial's model folder ``name`` (trial.save_model's, or a command trial's model/), when it holds files."""
    folder = Path(trial.log_path).parent / name if trial.log_path else None
    return folder if folder is not None and folder.is_dir() and any(folder.iterdir()) else None


def _logged_model(spec: ExperimentSpec, experiment: ExperimentRecord, trials: list[TrialRecord], trial: TrialRecord,
                  registry: ModelRegistry, model: Any, trusted: list[str] | None, handed: _HandedOver | None,
                  tracking_uri: str | None) -> tuple[str, str]:
    """The model to register, logged on the trial's MLflow run (nothing in the registry moves): its source and the
    run's id. ``trusted``: the types :func:`_refuse_unstorable` found it needs (it refused a model needing others)."""
    from tunesmith.selection import best_trial
    from tunesmith.tracking import tracker_for

    tracker = tracker_for(spec, tracking_uri)
    tracker.sync(experiment, trials, best_trial(trials, spec.objectives))  # the trial's run exists (idempotent)
    run_id = tracker.trial_run_id(experiment, trial.number)
    assert run_id is not None
    if model is not None:
        from tunesmith.tasks import prepare

        assert spec.task is not None
        prep = prepare(spec.task, spec.base_dir)
        source = registry.log_sklearn(run_id, model, prep.dataset.X[prep.dev_idx[:5]], "registered-model", trusted)
    else:
        assert handed is not None
        # the copy tracking logged on this very run is registered where it is; a folder is uploaded beside it
        source = handed.source if handed.logged else registry.log_folder(run_id, handed.source, "registered-model")
    return source, run_id


def _version_tags(experiment: ExperimentRecord, trial: TrialRecord, metrics: dict[str, float],
                  champion: ModelVersion | None, intent: str) -> dict[str, str]:
    tags = {EXPERIMENT_TAG: experiment.name, CREATED_AT_TAG: repr(experiment.created_at),
            TRIAL_TAG: str(trial.number), PROMOTION_TAG: intent,
            **{METRIC_TAG + k: repr(v) for k, v in metrics.items()}}
    if champion is not None:
        tags[PREVIOUS_CHAMPION_TAG] = champion.version
    return tags


def _register(registry: ModelRegistry, model_name: str, source: str, run_id: str, tags: dict[str, str],
              champion: ModelVersion | None) -> ModelVersion:
    """The registry's steps, the promotion's intent recorded: a version, alias ``champion`` on it, then ``previous``
    on the champion it replaces (killed between any two, :mod:`tunesmith.promotion.settling` reads which)."""
    version = registry.register(model_name, source, run_id, tags)
    registry.set_alias(model_name, "champion", version.version)
    if champion is not None:
        registry.set_alias(model_name, "previous", champion.version)
    return version


def _safe(uri: str) -> str:
    from tunesmith.redaction import redact

    return redact(uri)
