"""Re-tuning an experiment on new data: a new experiment, linked to the old one, warm-started from it.

The new experiment's spec is the old one with the new data (``task.data.path``, made absolute from the
caller's folder, so ``--data new.csv`` means the file where the user stands), a new name (``NAME-retune-K``
from the lineage's root), a seed derived from the old one, and a smaller trial budget (``--trials``, else
``drift.retune.trials``, else half the lineage's first tuning's budget). Lineage is recorded on both sides as experiment
attributes: ``lineage`` on the new one (parent, root, generation, data), ``retunes`` on the parent; the warm
start (see :mod:`tunesmith.strategy.warm_start`: k old good configurations re-evaluated first, by default
spread over the old best quarter; the other old trials as the prior mean of ``bo``'s GP, or replayed re-based,
or not at all, by ``drift.retune.prior``) is recorded as ``warm_start`` and applied by the runner.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from tunesmith.clock import Clock, SystemClock
from tunesmith.evaluation.context import trial_folders
from tunesmith.errors import ExperimentExists, ExperimentNotFound, SpecError, UserInputError
from tunesmith.events import RunListener
from tunesmith.records import ExperimentRecord, TrialState
from tunesmith.seeding import derive_seed
from tunesmith.selection import eligible, ranked
from tunesmith.space import SearchSpace
from tunesmith.spec.drift_config import DriftConfig
from tunesmith.spec.loader import spec_from_dict
from tunesmith.spec.model import ExperimentSpec
from tunesmith.strategy.options import inherited_options
from tunesmith.strategy.unit_cube import UnitCube
from tunesmith.strategy.warm_start import PriorMode, PriorTrial, WarmStart, config_key
from tunesmith.suggestions import listed

if TYPE_CHECKING:
    from tunesmith.runner import Plan, RunResult, Runner
    from tunesmith.storage.sql import SQLStore


@dataclass(frozen=True)
class RetunePlan:
    """The new experiment's spec and the attributes recorded with it (lineage, warm start); ``prepared``: the
    spec as :func:`tunesmith.runner.prepare` checked and filled it (by :func:`checked_retune_plan`), run as is."""

    spec: ExperimentSpec
    attributes: dict[str, Any]
    parent: str
    prepared: Plan | None = None


def lineage_root(record: ExperimentRecord) -> str:
    """The first tuning of ``record``'s lineage: the name its re-tunes are named from, ``record``'s own for one."""
    return str((record.attributes.get("lineage") or {}).get("root", record.name))


def plan_retune(store: SQLStore, name: str, data: str | os.PathLike[str] | None, *, trials: int | None = None,
                new_name: str | None = None, top_k: int | None = None, warm: bool = True,
                prior: str | None = None, spread: bool | None = None,
                cwd: str | os.PathLike[str] | None = None,
                data_columns: Mapping[str, list[Any]] | None = None) -> RetunePlan:
    """What :func:`retune` would record and run; writes nothing. ``data_columns``: ``data``'s columns as a caller
    already read them (:func:`tunesmith.tasks.read_columns`), so that a cycle reads its new rows once; None: read
    here. An interactively defined trial function is refused at the boundary, once, before this is called
    (:func:`retune`, the cycle's input check: :func:`refuse_interactive_trial`).

    Raises:
        UserInputError: no such experiment, no completed trial, missing data, a taken name.
    """
    parent = store.experiment(name)
    # read as recorded (no scikit-learn lookups, seconds of imports): the new spec, built from it below, is checked in
    # full, its scorer and classes included, before anything is recorded; the new rows are checked first
    spec = spec_from_dict(parent.spec, recorded=True)
    cfg = spec.drift or DriftConfig()
    lineage = parent.attributes.get("lineage") or {}
    root = lineage_root(parent)
    taken = store.experiment_names()
    folder = os.path.dirname(spec.workdir or ".tunesmith/x")   # a re-tune's trial folders go beside the parent's

    def used(candidate: str) -> bool:  # recorded, or its trial folders left behind (a deleted re-tune's)
        return candidate in taken or bool(trial_folders(os.path.join(cwd or os.getcwd(), folder, candidate)))

    if new_name is None:
        k = 1
        while used(f"{root}-retune-{k}"):
            k += 1
        new_name = f"{root}-retune-{k}"
    elif new_name in taken:
        raise UserInputError(f"--name: experiment {new_name!r} already exists; choose another name")
    elif used(new_name):
        raise UserInputError(f"--name: {os.path.join(folder, new_name)} already holds trial folders of an experiment "
                             "this store does not have (a deleted one?); choose another name")
    history = store.trials(parent.id)
    from tunesmith.summary import exclude_unstable_of

    best_first = ranked(eligible(history, exclude_unstable_of(parent)), spec.objectives)
    if warm and not best_first:
        raise UserInputError(f"experiment {name!r} has no completed trial to start from; run it (or `tunesmith "
                             "resume` it) first, or re-tune with --cold")
    update: dict[str, Any] = {"name": new_name, "seed": derive_seed(spec.seed or 0, "retune", new_name) % 2**32,
                              "workdir": os.path.join(folder, new_name)}
    data_path = None
    if data is not None:
        # symlinks resolved: a path re-pointed at each day's file (latest.csv -> rows/2026-12-06.csv) records the file
        # the rows are in, which later cycles compare with, not the link the next day's rows come through
        data_path = os.path.realpath(os.path.join(cwd or os.getcwd(), os.fspath(data)))
        if not os.path.isfile(data_path):
            from tunesmith.tasks.data import not_a_file

            raise UserInputError(f"--data: {not_a_file(data_path if os.fspath(data) else '')}")  # '': unset variable
    if spec.task is not None:
        if data_path is None:
            raise UserInputError("--data: a task experiment is re-tuned on new rows; give the file (CSV or Parquet)")
        if spec.task.data.path is None:
            raise UserInputError(f"--data: experiment {name!r} tunes on bundled or generated data "
                                 f"({spec.task.data.sklearn or 'generate'}), not a file: a re-tune needs a task "
                                 "whose data is a file with a target column")
        features, ignored = _new_rows_fit(parent, spec, data_path, data_columns)
        task_data = spec.task.data.model_copy(update={"path": data_path, "features": features})
        update["task"] = spec.task.model_copy(update={"data": task_data})
    elif data_path is not None and spec.trial is not None:
        # trial code reads its own data: the new file reaches it as an environment variable
        update["trial"] = spec.trial.model_copy(update={"env": {**spec.trial.env, "TUNESMITH_DATA": data_path}})
    first_budget = _first_tuning_budget(store, parent, spec)
    budget = trials or cfg.retune.trials or max(1, (first_budget or 20) // 2)
    update["budget"] = spec.budget.model_copy(update={"trials": budget})
    try:
        new_spec = spec_from_dict({**spec.to_json(), **{k: _json(v) for k, v in update.items()}})
    except SpecError as e:
        if e.path != "name":
            raise
        raise UserInputError(f"--name: {e.message}") from None  # the user typed it as --name, not in a spec
    k_first = cfg.retune.top_k if top_k is None else top_k
    attributes: dict[str, Any] = {"lineage": {
        "parent": parent.name, "root": root, "generation": int(lineage.get("generation", 0)) + 1,
        "reason": "retune", "data": data_path, "warm": warm,
        "parent_data_fingerprint": parent.attributes.get("data_fingerprint")}}
    if spec.task is None and data_path is not None:  # what trial code was tuned on: a drift check's reference
        from tunesmith.digests import file_digest

        attributes["lineage"]["data_digest"] = file_digest(data_path)
    if spec.task is not None and ignored:
        attributes["lineage"]["ignored_columns"] = ignored
    if warm:
        mode = PriorMode(prior or cfg.retune.prior)
        spread_first = cfg.retune.spread if spread is None else spread
        attributes["warm_start"] = warm_start_from(parent, best_first, k_first, mode,
                                                   spec.search_space if spread_first else None).to_json()
    return RetunePlan(new_spec, attributes, parent.name)


def _first_tuning_budget(store: SQLStore, parent: ExperimentRecord, spec: ExperimentSpec) -> int | None:
    """The trial budget of the lineage's first tuning, which a re-tune's default halves: halving the parent's own
    shrank each generation of a `watch` (20, 10, 5, 2, 1 trials). Read off the root's spec (`delete` keeps a
    parent while it has re-tunes); the parent's where the root is gone all the same (a store older than that rule)."""
    root = lineage_root(parent)
    if root == parent.name:
        return spec.budget.trials
    try:
        return spec_from_dict(store.experiment(root).spec).budget.trials
    except ExperimentNotFound:
        return spec.budget.trials


def _new_rows_fit(parent: ExperimentRecord, spec: ExperimentSpec, data_path: str,
                  columns: Mapping[str, list[Any]] | None) -> tuple[list[str], list[str]]:
    """The parent's feature columns as found in the new file (its order), and the file's other columns; the file
    read once (``columns``: as the caller read it), before anything is recorded.

    Raises:
        UserInputError: the file is missing, unreadable or empty, lacks a feature, label, group or time column,
            (a classifier's) holds one class only, or has a missing value the pipeline cannot take.
    """
    from tunesmith.tasks import read_columns
    from tunesmith.tasks.pipeline import refuse_missing_values

    assert spec.task is not None
    columns = columns if columns is not None else read_columns(data_path, "--data")
    name = os.path.basename(data_path)
    kept = _same_columns(parent, spec, list(columns), name)
    _two_classes(spec, columns[str(spec.task.data.target)], name)
    _refuse_new_labels(spec, columns[str(spec.task.data.target)], name)
    refuse_missing_values(spec.task, spec.base_dir, dict(columns), kept[0], name)
    return kept


def _two_classes(spec: ExperimentSpec, labels: list[Any], name: str) -> None:
    """A classifier re-tuned on rows of one class fails every trial (its folds cannot be scored): refused, naming
    ``--data`` (the folds' own check, on the rows after the holdout, would name ``task.cv``)."""
    from tunesmith.tasks.pipeline import is_classifier_task
    from tunesmith.tasks.splits import label_classes

    assert spec.task is not None
    classes, _ = label_classes(labels)
    if len(classes) < 2 and is_classifier_task(spec.task, spec.base_dir):
        raise UserInputError(f"--data: every row of {name} has the same value in the label column "
                             f"{spec.task.data.target!r} ({next(iter(classes), '')!r}): a classifier needs rows of at "
                             "least two classes; give new rows that include the other class(es)")


def _refuse_new_labels(spec: ExperimentSpec, labels: list[Any], name: str) -> None:
    """A classifier's new rows whose label holds values the experiment's data never had would tune a model that
    answers with other labels (``0/1`` recoded as ``benign/malignant``): what serves the champion gets outputs it
    never had, and the two models' scores compare nothing (a cycle promoted such a re-tune, its ROC AUC against
    the champion's on labels the champion never saw). Refused: other labels are another experiment. The labels are
    compared as the loader reads them: ``1`` and ``1.0`` are one label, ``1`` and ``one`` two.

    Raises:
        UserInputError: naming ``--data``, the new values, and the fix.
    """
    from tunesmith.tasks import load_dataset
    from tunesmith.tasks.pipeline import is_classifier_task

    assert spec.task is not None
    if not is_classifier_task(spec.task, spec.base_dir):
        return  # a regression target takes any number
    try:
        had_labels = load_dataset(spec.task.data, spec.base_dir).y.tolist()
    except SpecError:  # the experiment's file is gone: promote's beat_champion gate still finds a champion that
        return         # cannot score the new labels
    unseen = unseen_labels(had_labels, labels)
    if unseen:
        had = listed(sorted({str(v) for v in had_labels}), 10)
        raise UserInputError(f"--data: {name}'s label column {spec.task.data.target!r} has value(s) "
                             f"{listed(unseen, 10)} the experiment's data never had (it had {had}): a re-tune "
                             "replaces the model with one giving the same outputs; map the labels back to the "
                             "experiment's, or tune a new experiment on these rows (`tunesmith run` with a spec of "
                             "another name)")


def unseen_labels(had: list[Any], new: list[Any]) -> list[str]:
    """The distinct labels of ``new`` that ``had`` lacks, as written, sorted. Both sides compare by one kind of key:
    numbers where every label of both is one (``1`` and ``1.0`` are one label), else text, a whole number written
    without its ``.0`` (a file whose labels are ``a, 1, 2`` is read as text, one of ``1, 2`` as numbers: they share
    ``1`` and ``2``)."""
    def number(v: Any) -> float | None:
        try:
            return float(v)
        except (TypeError, ValueError):
            return None

    numeric = all(number(v) is not None for v in (*had, *new))

    def key(v: Any) -> object:
        if numeric:
            return number(v)
        n = number(v)
        return str(int(n)) if n is not None and n.is_integer() and not isinstance(v, str) else str(v)

    known = {key(v) for v in had}
    return sorted({str(v) for v in new if key(v) not in known})


def new_task_rows(spec: ExperimentSpec, data: str | os.PathLike[str]) -> dict[str, list[Any]] | None:
    """The columns of a task experiment's new rows (``data``), read once for every step of a cycle that looks at
    them (:func:`refuse_labels_of_one_class`, the drift check, :func:`plan_retune`); None when the experiment's
    data is not a file (trial code reads its own; bundled data takes no new rows): each step reads what it needs.

    Raises:
        UserInputError: naming ``--data``: a missing or unreadable file.
    """
    from tunesmith.tasks import read_columns

    if spec.task is None or spec.task.data.path is None:
        return None
    return read_columns(os.path.abspath(data) if os.fspath(data) else "", "--data")  # "": said as empty, not "."


def refuse_labels_of_one_class(spec: ExperimentSpec, data: str | os.PathLike[str],
                               columns: Mapping[str, list[Any]] | None) -> None:
    """What a cycle checks of its new rows (``columns``: :func:`new_task_rows`) before it tunes or records
    anything: a classifier task's rows whose label holds one class are refused, as :func:`plan_retune` would
    refuse them later.

    Rows without the label column pass (a drift check takes them; the re-tune's plan refuses them).

    Raises:
        UserInputError: naming ``--data``: one class in the label column.
    """
    if spec.task is None or columns is None:
        return
    labels = columns.get(str(spec.task.data.target))
    if labels is not None:
        _two_classes(spec, labels, os.path.basename(os.fspath(data)))


def _same_columns(parent: ExperimentRecord, spec: ExperimentSpec, columns: list[str],
                  name: str) -> tuple[list[str], list[str]]:
    """The parent's feature columns as found in the new file's ``columns`` (its order), and its other columns.

    A re-tune tunes the same model on new rows: the features are pinned to the parent's (a column the new file
    adds, an id say, must not become a feature unnoticed), and a feature or label column the file lacks is
    bad input, named as ``--data`` (it used to be tuned without it, or reported as ``task.data.*``).

    Raises:
        UserInputError: the file lacks a feature, label, group or time column.
    """
    from tunesmith.tasks import read_header

    assert spec.task is not None
    data = spec.task.data
    roles = {"label": data.target, "groups": data.groups, "time": data.time}
    for role, column in roles.items():
        if column is not None and column not in columns:
            raise UserInputError(f"--data: {name} has no {role} column {column!r}, which the experiment's data "
                                 f"has; its columns: {listed(columns)}")
    recorded = (parent.attributes.get("data_fingerprint") or {}).get("columns")
    if data.features is not None:
        wanted = list(data.features)
    elif recorded:
        wanted = [c for c in recorded if c not in roles.values()]
    else:  # a record older than data fingerprints: the old file's features are its header's other columns
        assert data.path is not None
        path = data.path if os.path.isabs(data.path) else os.path.join(spec.base_dir or ".", data.path)
        wanted = [c for c in read_header(path, "task.data.path") if c not in roles.values()]
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise UserInputError(f"--data: {name} lacks the experiment's feature column(s) {listed(missing, 10)}; "
                             f"its columns: {listed(columns)}")
    kept = set(wanted)
    return ([c for c in columns if c in kept],
            [c for c in columns if c not in kept and c not in roles.values()])


def _json(value: Any) -> Any:
    return value.model_dump(mode="json", exclude_none=True) if hasattr(value, "model_dump") else value


def warm_start_from(parent: ExperimentRecord, best_first: list[Any], top_k: int,
                    mode: PriorMode = PriorMode.TRANSFER, spread_over: SearchSpace | None = None) -> WarmStart:
    """``top_k`` distinct configurations to re-evaluate, and (unless ``mode`` is none) every completed trial as a
    prior.

    The configurations are the best ``top_k``; with ``spread_over`` (the space), the best one and then, one at a
    time, the configuration of the old best quarter farthest from those already chosen: the old best ones
    usually sit side by side, and when the optimum has moved, ``top_k`` near-copies of one configuration teach
    the new search one thing ``top_k`` times. Near-copies are still taken when the quarter holds nothing else (a
    converged old run): stopping at them, so the model proposes sooner, was measured later more often than sooner
    (``benchmarks/retune.py``, arm ``ranked+distinct``, 2026-12-05: 42 seed pairs against 32)."""
    configs: dict[str, dict[str, Any]] = {}  # by configuration key: a lookup, not a scan of the list per trial
    for t in best_first:
        configs.setdefault(config_key(t.params), dict(t.params))
        if spread_over is None and len(configs) >= top_k:
            break  # only the best top_k are used
    distinct = list(configs.values())
    if spread_over is None or top_k <= 1 or len(distinct) <= top_k:
        first = distinct[:top_k]
    else:
        cube = UnitCube(spread_over)
        pool = distinct[:max(top_k, len(distinct) // 4)]
        encoded = np.vstack([cube.encode(p) for p in pool])
        chosen = [0]
        while len(chosen) < top_k:
            gaps = np.min(np.linalg.norm(encoded[:, None, :] - encoded[None, chosen, :], axis=2), axis=1)
            gaps[chosen] = -1.0
            chosen.append(int(np.argmax(gaps)))
        first = [pool[i] for i in chosen]
    prior = tuple(PriorTrial(dict(t.params), tuple(t.values)) for t in best_first
                  if mode is not PriorMode.NONE and t.state is TrialState.COMPLETED and t.values)
    return WarmStart(parent.name, tuple(first), prior, mode)


def retune(store: SQLStore, name: str, data: str | os.PathLike[str] | None, *, trials: int | None = None,
           new_name: str | None = None, top_k: int | None = None, warm: bool = True, prior: str | None = None,
           spread: bool | None = None, listener: RunListener | None = None, clock: Clock | None = None,
           on_runner: Callable[[Runner], None] | None = None) -> RunResult:
    """Record and run a re-tune of experiment ``name`` on ``data`` (see :func:`plan_retune`)."""
    refuse_interactive_trial(name, spec_from_dict(store.experiment(name).spec, recorded=True))
    plan = checked_retune_plan(store, name, data, trials=trials, new_name=new_name, top_k=top_k, warm=warm,
                               prior=prior, spread=spread)
    return run_retune_plan(store, plan, listener, clock, on_runner)


def refuse_deleting_a_parent(store: SQLStore, experiment: ExperimentRecord) -> None:
    """``tunesmith delete`` of an experiment that has re-tunes in the store: refused. Deleted, it left its re-tunes
    naming a parent that is gone and its parent naming it, and the next cycle checked the root again.

    Raises:
        UserInputError: naming the re-tunes and the commands that delete them first.
    """
    existing = store.experiment_names()
    children = [c for c in experiment.attributes.get("retunes", []) if c in existing]
    if children:
        first = "; ".join(f"tunesmith delete {c} --yes" for c in reversed(children))  # a re-tune's own ones first
        raise UserInputError(f"experiment {experiment.name!r} has re-tune(s) {', '.join(children)}, whose lineage "
                             f"goes through it; delete them first ({first}), then {experiment.name!r}")


def forget_retune(store: SQLStore, experiment: ExperimentRecord, now: float) -> None:
    """Before re-tune ``experiment`` is deleted: its parent stops naming it (``show`` said "re-tuned as" a deleted
    experiment). Its trial folders stay, so :func:`plan_retune` does not give its name again."""
    parent = (experiment.attributes.get("lineage") or {}).get("parent")
    if not parent or parent not in store.experiment_names():
        return
    record = store.experiment(str(parent))
    if experiment.name in record.attributes.get("retunes", []):
        _unname(store, record.id, experiment.name, now)


def refuse_interactive_trial(name: str, spec: ExperimentSpec) -> None:
    """A re-tune records a new experiment, to which no Python call hands an interactive trial function over.

    Raises:
        UserInputError: ``name`` runs a function defined interactively, saying what to do instead.
    """
    if spec.trial is not None and spec.trial.interactive:
        raise UserInputError(f"{name!r} runs a trial function defined interactively ({spec.trial.function}), which a "
                             "re-tune cannot import: put the function in a .py file, run the experiment from a spec "
                             "naming it (trial: {function: 'module:name'}), then re-tune that experiment")


def checked_retune_plan(store: SQLStore, name: str, data: str | os.PathLike[str] | None,
                        **options: Any) -> RetunePlan:
    """:func:`plan_retune`, and its spec prepared (kept in the plan, which runs it): the new data loads, splits and
    fits the task. Every refusal of the re-tune happens here, before anything is recorded (a cycle calls it before
    it records its drift step), but the interactive trial function, which its callers refuse first.

    Raises:
        UserInputError, SpecError: what :func:`plan_retune` and :func:`tunesmith.runner.prepare` refuse.
    """
    from tunesmith.runner import prepare
    from tunesmith.tracking import check_tracking_destination

    plan = plan_retune(store, name, data, **options)
    check_tracking_destination(plan.spec, store.url)  # as `run` does: MLflow's tables would break the store
    try:
        with inherited_options():  # the parent's strategy options, checked as a resume checks them
            return replace(plan, prepared=prepare(plan.spec))
    except SpecError as e:  # the parent's holdout and folds ran on its rows: what fails now is the new rows
        if plan.spec.task is None or data is None or not e.path.startswith(("task.holdout", "task.cv")):
            raise
        too_few = _too_few_rows(plan.spec, os.path.basename(os.fspath(data)))
        if too_few is None:  # enough rows, but not of every class (its own message names the class)
            raise
        raise too_few from None


def _too_few_rows(spec: ExperimentSpec, name: str) -> UserInputError | None:
    """The refusal of new rows too few for the re-tune's holdout and folds, naming ``--data`` (not the spec's
    ``task.holdout.fraction``, which was fine for the parent, with scikit-learn's words) and about how many rows
    the experiment's splits need (each class in the holdout and in every fold); None when there are that many."""
    import math

    from tunesmith.tasks import load_dataset
    from tunesmith.tasks.pipeline import is_classifier_task

    assert spec.task is not None
    ds = load_dataset(spec.task.data, spec.base_dir)
    classes = len(np.unique(ds.y)) if is_classifier_task(spec.task, spec.base_dir) else 1
    fraction = spec.task.holdout.fraction if spec.task.holdout is not None else 0.0
    folds = spec.task.cv.folds
    need = next(n for n in range(1, 10**7) if math.ceil(fraction * n) >= (classes if fraction else 0)
                and n - math.ceil(fraction * n) >= folds * classes)
    held = f"holds out {fraction:g} of the rows (at least one per class) and " if fraction else ""
    per = f" with each of its {classes} classes in every fold" if classes > 1 else ""
    groups = f" (and enough {spec.task.data.groups!r} groups)" if spec.task.data.groups else ""
    if ds.n_rows >= need:
        return None
    return UserInputError(f"--data: {name} has {ds.n_rows} rows, too few to re-tune on: the experiment {held}splits "
                          f"the rest into {folds} folds{per}; give at least {need} rows{groups}, more when the "
                          "classes are unbalanced")


def run_retune_plan(store: SQLStore, plan: RetunePlan, listener: RunListener | None = None,
                    clock: Clock | None = None, on_runner: Callable[[Runner], None] | None = None) -> RunResult:
    """Record and run a re-tune planned by :func:`checked_retune_plan`."""
    from tunesmith.runner import run_experiment

    clock = clock or SystemClock()
    parent = store.experiment(plan.parent)
    name = plan.spec.name
    # named before it runs: a run killed outright (SIGKILL, a lost machine) records nothing after, and the next
    # cycle finds an abandoned re-tune to resume by its parent's list (a name with no experiment is skipped there)
    # (once: a name left by a re-tune killed before it was recorded is taken again, not listed twice). Appended in
    # the store's transaction, not read here and written whole: another re-tune of the parent naming itself
    # meanwhile (two cycles at once) kept its name only if it wrote last
    listed: list[bool] = []

    def name_it(attributes: Mapping[str, Any]) -> dict[str, Any]:
        before = list(attributes.get("retunes", []))
        listed.append(name in before)
        return {"retunes": [*(n for n in before if n != name), name]}

    store.change_attributes(parent.id, name_it, clock.now())
    taken = False
    try:
        return run_experiment(plan.prepared or plan.spec, store, listener, clock, on_runner,
                              attributes=plan.attributes)
    except ExperimentExists:  # another re-tune of the parent took the name meanwhile (two cycles at once): its
        taken = True          # entry in the list, and its `retuned` event to record
        raise
    finally:  # the parent names its re-tune even when the run was interrupted (it can be resumed)
        if not taken and name in store.experiment_names():
            store.record_event(parent.id, "retuned", clock.now(), detail={
                "child": name, "data": plan.attributes["lineage"]["data"]})
        elif not taken and not listed[-1]:  # refused before it was recorded: nothing to name (only this name is
            _unname(store, parent.id, name, clock.now())  # taken back)


def _unname(store: SQLStore, parent_id: int, child: str, now: float) -> None:
    """The parent's list of re-tunes without ``child``, changed in one store transaction (see run_retune_plan)."""
    store.change_attributes(parent_id, lambda attributes: {
        "retunes": [n for n in attributes.get("retunes", []) if n != child]}, now)
