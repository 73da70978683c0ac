"""Drift checks: an experiment's task data (or a reference file) against new rows.

For a built-in task the reference is the experiment's own data (read again from its spec; a file whose content no
longer matches the fingerprint of the rows it was tuned on is refused, not compared: overwritten by new rows, it
would hide any drift), or ``--reference`` read as that data is; the columns are its features and its label, and
the champion (the best eligible trial) is refit on the development rows and scored on the new rows. For trial-code
experiments tunesmith has no model: two files are compared column by column, the reference being ``--reference``
or, for a re-tune, the file it was tuned on (``retune --data``, recorded in its lineage), which is what its champion
learned from.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tunesmith.digests import file_digest
from tunesmith.drift.report import ChampionCheck, DriftReport, ReferenceSource
from tunesmith.drift.statistics import ColumnDrift, ColumnRole, categorical_drift, numeric_drift
from tunesmith.errors import SpecError, UserInputError
from tunesmith.records import ExperimentRecord, TrialRecord
from tunesmith.spec.drift_config import DriftConfig
from tunesmith.spec.loader import spec_from_dict
from tunesmith.suggestions import listed

if TYPE_CHECKING:
    from tunesmith.spec.task_config import DataConfig

_MISSING = {"", "na", "nan", "null", "none", "n/a"}


def drift_config_of(experiment: ExperimentRecord) -> DriftConfig:
    """The stored spec's ``drift:`` section, or the defaults."""
    return spec_from_dict(experiment.spec, recorded=True).drift or DriftConfig()


@dataclass(frozen=True, slots=True)
class ServedTrial:
    """The trial a registered model serves, as the caller found it (the registry's champion version, or the store's
    audit trail of promotions): the drift check scores it, not the experiment's best, which need not be what is
    served (`tunesmith promote --trial N`). ``said``: which model and version, for the report; ``metrics``: the
    scores recorded when it was promoted (its holdout's, ``holdout_<metric>``, is the baseline)."""

    trial: int
    said: str
    metrics: Mapping[str, float] = field(default_factory=dict)


def check_experiment(experiment: ExperimentRecord, trials: Sequence[TrialRecord], data: str | os.PathLike[str],
                     reference: str | os.PathLike[str] | None = None,
                     data_columns: Mapping[str, list[Any]] | None = None,
                     tuned: TunedOn | None = None,
                     tuned_fingerprint: Mapping[str, Any] | None = None,
                     served: ServedTrial | None = None) -> DriftReport:
    """Test ``data`` for drift against what ``experiment`` was tuned on.

    Args:
        experiment: the stored experiment (its spec gives the thresholds, the task and the data).
        trials: its trials (the champion is the best eligible one).
        data: the new rows (CSV or Parquet).
        reference: a reference file instead of the experiment's data (its task data, or the file a re-tune was
            tuned on); required for a trial-code experiment that holds no data (one never re-tuned on a file).
        data_columns: ``data``'s columns as the caller already read them (``tunesmith.tasks.read_columns``), so
            that a cycle reads its new rows once; None: read here.
        tuned: :func:`tuned_on` of a trial-code ``experiment`` as the caller already found it, so that a cycle
            hashes the file a re-tune was tuned on once; None: found here (cheap when it is None: no file is read).
        tuned_fingerprint: a task experiment's latest data fingerprint (its data changed mid-experiment: the last
            ``data_changed`` event's); None: the one recorded when it started.
        served: the trial a registered model serves (scored against the holdout score recorded at its promotion);
            None: the experiment's best trial, the one its holdout scored.

    Raises:
        UserInputError: a missing or unreadable file, missing columns, too few rows, no reference to compare, a
            task's own file that no longer holds the rows the experiment was tuned on (without ``reference``).
    """
    from tunesmith.summary import best_of, why_holdout_undefined

    data = _resolved_once(data)
    spec = spec_from_dict(experiment.spec, recorded=True)
    cfg = spec.drift or DriftConfig()
    if spec.task is None:
        tuned = tuned or tuned_on(experiment)
        if reference is None:
            if tuned is None:
                raise no_reference(experiment.name)
            if not tuned.usable:
                raise UserInputError(f"--reference: {tuned.note(experiment.name)}; give the rows it was tuned on: "
                                     "--reference R")
            return _check_tuned_on(experiment.name, tuned, data, cfg, data_columns)
        report = check_files(reference, data, cfg, target=cfg.target, experiment=experiment.name,
                             data_columns=data_columns)
        if tuned is not None and (_resolved(tuned.path) != report.reference or not tuned.usable):
            said = tuned.note(experiment.name) if not tuned.usable else f"{experiment.name} was tuned on {tuned.path}"
            report = replace(report, notes=(*report.notes, f"{said}; compared with --reference as given"))
        return report
    from tunesmith.tasks import fingerprint, fingerprint_changes, load_dataset, reference_columns, rows_like
    from tunesmith.tasks.pipeline import refuse_missing_values

    task, base_dir = spec.task, spec.base_dir
    recorded: Mapping[str, Any] | None = (tuned_fingerprint if tuned_fingerprint is not None
                                          else experiment.attributes.get("data_fingerprint"))
    gone = _own_file_gone(spec)
    if gone and reference is None:
        raise UserInputError(f"--reference: {gone}, the data experiment {experiment.name!r} was tuned on, no longer "
                             "exists (moved, archived, or this store was copied from another machine); give the rows "
                             "it was tuned on: --reference R")
    now = fingerprint(task, base_dir) if recorded and not gone else {}
    changes = [f"{gone} no longer exists"] if gone else fingerprint_changes(dict(recorded), now) if recorded else []
    notes = []
    if reference is None:
        if changes:
            rows = f"{(recorded or {}).get('n_rows')} rows then, {now.get('n_rows')} now"  # (said even when equal)
            raise _changed_since(experiment.name, spec, [rows, *(c for c in changes if not c.startswith("n_rows "))])
        ref_data = task.data
    else:
        ref_data = _given_reference(task.data, reference)
        if changes:  # the champion is refit on the rows it was tuned on, as given, not on the file as it is now
            task = task.model_copy(update={"data": ref_data})
            notes.append(f"the experiment's data changed since it ran ({'; '.join(changes)}); the champion is refit "
                         "on --reference as given")
    try:
        ref_ds = load_dataset(ref_data, base_dir)
        ref_raw = reference_columns(ref_data, base_dir)
    except SpecError as e:
        if reference is None:
            raise
        raise UserInputError(f"--reference: {e.message}") from None
    new = rows_like(task.data, base_dir, data, columns=data_columns)
    _enough_rows(len(new.X), cfg)
    refuse_missing_values(task, base_dir, new.raw, list(ref_ds.feature_names), os.path.basename(str(data)))
    columns = list(ref_ds.feature_names) + ([new.target] if new.y is not None else [])
    tested = _test_columns(ref_raw, new.raw, columns, new.target if new.y is not None else None, cfg)
    known = {*ref_ds.feature_names, new.target, task.data.groups, task.data.time}
    untested = [c for c in new.raw if c not in known]
    if untested:  # said, so that nobody reads "no drift" as covering them
        notes.append(f"{os.path.basename(str(data))} column(s) {listed(untested, 10)} are not among the "
                     "experiment's features: not tested")
    champion, skipped = None, None
    best = best_of(experiment, trials)
    if new.y is None:
        skipped = f"{os.path.basename(str(data))} has no label column {new.target!r}"
    elif best is None:
        skipped = "the experiment has no completed trial"
    elif served is not None and (chosen := _served_trial(trials, served)) is None:
        skipped = (f"trial {served.trial}, {served.said}, is not a completed trial of {experiment.name} in this "
                   "store; the champion cannot be scored")
    elif served is not None:
        assert chosen is not None
        champion, skipped = _champion(experiment, spec.model_copy(update={"task": task}), chosen, new.X, new.y, cfg,
                                      ref_ds.y, os.path.basename(str(data)), served)
    else:
        recorded_trial = (experiment.attributes.get("holdout") or {}).get("trial")
        best = next((t for t in trials if t.number == recorded_trial), best)  # the champion the holdout scored
        if (why := why_holdout_undefined(experiment.attributes.get("holdout"), task.metric_name)) is not None:
            notes.append(f"the holdout {task.metric_name} recorded for trial {recorded_trial} is undefined (nan): "
                         f"{why}; the champion is compared with its CV score instead")
        champion, skipped = _champion(experiment, spec.model_copy(update={"task": task}), best, new.X, new.y, cfg,
                                      ref_ds.y, os.path.basename(str(data)))
    reference_name = _resolved(ref_ds.source) if ref_data.path is not None else ref_ds.source  # (sklearn:NAME...)
    return DriftReport(experiment.name, reference_name, _resolved(data), ref_ds.n_rows, len(new.X), tuple(tested),
                       _thresholds(cfg), champion, skipped, tuple(notes),
                       ReferenceSource.TASK if reference is None else ReferenceSource.GIVEN)


def _served_trial(trials: Sequence[TrialRecord], served: ServedTrial) -> TrialRecord | None:
    """The completed trial ``served`` names, if the experiment has it."""
    from tunesmith.records import TrialState

    return next((t for t in trials if t.number == served.trial and t.state is TrialState.COMPLETED
                 and t.values), None)


def _given_reference(data: DataConfig, reference: str | os.PathLike[str]) -> DataConfig:
    """A task's data read from ``--reference`` instead: the same label, features, groups and time columns, so the
    label is tested as the target and the champion scored, as against the task's own file."""
    from tunesmith.tasks.data import not_a_file

    path = os.path.abspath(os.fspath(reference))  # ("" would be the working folder)
    if not os.fspath(reference) or not os.path.isfile(path):
        raise UserInputError(f"--reference: {not_a_file(path if os.fspath(reference) else '')}")
    return data.model_copy(update={"path": path, "sklearn": None, "generate": None,
                                   "target": data.target or "target"})


def _own_file_gone(spec: Any) -> str | None:
    """The task's own data file (resolved from the spec's folder) where it no longer exists, else None: a missing
    file is the extreme case of a changed one, which ``--reference`` stands in for."""
    path = spec.task.data.path
    if path is None:
        return None
    shown = _resolved(path if os.path.isabs(path) else os.path.join(spec.base_dir or ".", path))
    return None if os.path.exists(shown) else shown


def _changed_since(name: str, spec: Any, changes: Sequence[str]) -> UserInputError:
    """The refusal of a drift check whose reference, the experiment's own file, no longer holds the rows it was
    tuned on (``changes``: from its recorded fingerprint): overwritten by new rows (`cycle --data latest.csv`, the
    same path each day), compared with them it would find no drift, ever."""
    path = spec.task.data.path
    shown = _resolved(path if os.path.isabs(path) else os.path.join(spec.base_dir or ".", path))
    return UserInputError(f"--reference: {shown} is no longer the data experiment {name!r} was tuned on "
                          f"({'; '.join(changes)}), so it cannot serve as the reference (compared with new rows "
                          "written over it, it finds no drift); keep each batch of rows under its own name "
                          "(data/2026-12-06.csv, not one overwritten latest.csv), or give the rows it was tuned on: "
                          "--reference R")


@dataclass(frozen=True, slots=True)
class TunedOn:
    """The file a re-tune of trial code was tuned on (its lineage's ``data``: ``retune --data``, absolute), and
    whether it may serve as the re-tune's drift reference: it is there and holds the bytes it held then
    (``verified``: their digest was recorded then and matches; a re-tune recorded before digests were kept is
    taken as it is, unverified). A file overwritten since (`cycle --data latest.csv`, the same path each day) holds
    the new rows, and compared with them would never show drift again."""

    path: str
    usable: bool
    verified: bool
    why_not: str = ""   # when not usable: what became of it

    def note(self, name: str) -> str:
        return f"{name} was tuned on {self.path}, which {self.why_not}"


def tuned_on(experiment: ExperimentRecord) -> TunedOn | None:
    """What became of the file re-tune ``experiment`` was tuned on; None: not a re-tune, or one re-tuned without a
    file (trial code reading its own data)."""
    lineage = experiment.attributes.get("lineage") or {}
    if not lineage.get("data"):
        return None
    path, recorded = str(lineage["data"]), lineage.get("data_digest")
    if not os.path.isfile(path):
        return TunedOn(path, usable=False, verified=False, why_not="is no longer there")
    if recorded is None:
        return TunedOn(path, usable=True, verified=False)
    if file_digest(path) != recorded:
        return TunedOn(path, usable=False, verified=False, why_not="has changed since (its bytes differ from those "
                                                                   "it re-tuned on: overwritten by newer rows?)")
    return TunedOn(path, usable=True, verified=True)


def _check_tuned_on(name: str, tuned: TunedOn, data: str | os.PathLike[str], cfg: DriftConfig,
                    data_columns: Mapping[str, list[Any]] | None) -> DriftReport:
    """:func:`check_files` against the file re-tune ``name`` was tuned on, its default reference."""
    try:
        report = check_files(tuned.path, data, cfg, target=cfg.target, experiment=name, data_columns=data_columns)
    except SpecError as e:
        if e.path != "--reference":
            raise
        raise UserInputError(f"--reference: {name} was tuned on {tuned.path}, the reference when none is given, and "
                             f"it cannot be read ({e.message}); give the rows it was tuned on: --reference R") from None
    unverified = () if tuned.verified else (f"{tuned.path} is taken as the rows {name} was tuned on: its digest was "
                                            "not recorded then (a re-tune by an earlier tunesmith), so a file "
                                            "overwritten since would go unnoticed",)
    return replace(report, reference_from=ReferenceSource.TUNED_ON, notes=(*report.notes, *unverified))


def no_reference(experiment: str) -> UserInputError:
    """The refusal of a drift check on a trial-code experiment given no ``--reference`` and holding no file of its
    own (a re-tune's is the file it was tuned on)."""
    return UserInputError(f"--reference: experiment {experiment!r} runs trial code and is not a re-tune on a file, "
                          "so tunesmith holds no data of its own; give the data it was tuned on: --reference R "
                          "--data C")


def check_files(reference: str | os.PathLike[str], data: str | os.PathLike[str], cfg: DriftConfig | None = None,
                target: str | None = None, experiment: str | None = None,
                data_columns: Mapping[str, list[Any]] | None = None) -> DriftReport:
    """Compare two files column by column: every column of the reference must be in ``data`` (``data_columns``:
    its columns as already read; None: read here)."""
    from tunesmith.tasks import read_columns

    cfg = cfg or DriftConfig()
    data = _resolved_once(data)
    ref = read_columns(reference, "--reference")
    cur = data_columns if data_columns is not None else read_columns(data, "--data")
    missing = [c for c in ref if c not in cur]
    if missing:
        raise UserInputError(f"--data: {os.path.basename(str(data))} lacks the reference's column(s) "
                             f"{listed(missing, 10)}")
    if target is not None and target not in ref:
        raise SpecError("drift.target", f"no column {target!r} in {os.path.basename(str(reference))}; columns: "
                                        f"{listed(ref)}")
    n_cur = len(next(iter(cur.values())))
    _enough_rows(n_cur, cfg)
    tested = _test_columns(ref, cur, list(ref), target, cfg)
    return DriftReport(experiment, _resolved(reference), _resolved(data), len(next(iter(ref.values()))), n_cur,
                       tuple(tested), _thresholds(cfg))


def _resolved(path: str | os.PathLike[str]) -> str:
    """A file as the report names it: absolute, symlinks resolved, whether it was typed relative or came from the
    spec (the report outlives the folder it was made in)."""
    return str(Path(path).resolve())


def _resolved_once(data: str | os.PathLike[str]) -> str | os.PathLike[str]:
    """``--data`` resolved as the check starts, and read and reported as that file: a link re-pointed at each day's
    rows (``ln -sfn rows/2026-12-06.csv new_rows.csv``) and moved during the check (the champion's refit takes
    seconds) was read as one day's file and reported as the next's. A path that names no file stays as typed, for
    the refusal to name it so (empty: said as unset, not ".")."""
    return _resolved(data) if os.fspath(data) and os.path.exists(data) else data


def _enough_rows(n: int, cfg: DriftConfig) -> None:
    if n < cfg.min_rows:
        raise UserInputError(f"--data: {n} row(s); a drift check needs at least drift.min_rows = {cfg.min_rows}")


def _thresholds(cfg: DriftConfig) -> dict[str, Any]:
    return {"psi": cfg.psi, "alpha": cfg.alpha, "bins": cfg.bins, "max_score_drop": cfg.max_score_drop,
            "categorical_levels": cfg.categorical_levels}


def _test_columns(ref: Mapping[str, list[Any]], cur: Mapping[str, list[Any]], names: Sequence[str],
                  target: str | None, cfg: DriftConfig) -> list[ColumnDrift]:
    """Each named column's tests; features share one Bonferroni correction, the label is tested on its own."""
    features = [n for n in names if n != target]
    out = []
    for name in names:
        role = ColumnRole.TARGET if name == target else ColumnRole.FEATURE
        alpha = cfg.alpha if role is ColumnRole.TARGET else cfg.alpha / max(len(features), 1)
        ref_num = _floats(ref[name])
        if ref_num is None or _few_levels(ref_num, cfg.categorical_levels):
            out.append(categorical_drift(name, role, ref[name], cur[name], psi=cfg.psi, alpha=alpha))
            continue
        cur_num = _floats(cur[name])
        if cur_num is None:
            raise UserInputError(f"--data: column {name!r} holds text where the reference holds numbers")
        out.append(numeric_drift(name, role, ref_num, cur_num, bins=cfg.bins, psi=cfg.psi, alpha=alpha))
    return out


def _floats(values: Sequence[Any]) -> np.ndarray | None:
    """The values as floats (missing: NaN), or None when any is text."""
    out = np.empty(len(values), dtype=float)
    for i, v in enumerate(values):
        if isinstance(v, str):
            if v.strip().lower() in _MISSING:
                out[i] = math.nan
                continue
            try:
                out[i] = float(v)
            except ValueError:
                return None
        elif v is None:
            out[i] = math.nan
        else:
            try:
                out[i] = float(v)
            except (TypeError, ValueError):
                return None
    return out


def _few_levels(values: np.ndarray, levels: int) -> bool:
    """Integers with few distinct values are categories (a weekday, a flag): a chi-square test suits them."""
    finite = values[~np.isnan(values)]
    return bool(len(finite)) and bool(np.all(np.mod(finite, 1) == 0)) and len(np.unique(finite)) <= levels


def _champion(experiment: ExperimentRecord, spec: Any, best: TrialRecord, X: np.ndarray, y: np.ndarray,
              cfg: DriftConfig, reference_y: np.ndarray, file_name: str,
              served: ServedTrial | None = None) -> tuple[ChampionCheck | None, str | None]:
    """The champion's check, or why there is none: labels the model never saw, a score the new rows leave
    undefined (one class only, for ROC AUC) are reasons, not a NaN in the verdict nor a traceback. ``best``: the
    trial scored, ``served`` where it is a registered model's (its baseline: the holdout score recorded at its
    promotion, else the experiment's holdout of that trial, else its CV score)."""
    import warnings

    from tunesmith.tasks import score_new_rows
    from tunesmith.tasks.pipeline import is_classifier_task

    task = spec.task
    metric = task.metric_name
    if is_classifier_task(task):
        known = {str(v) for v in np.unique(reference_y)}
        unseen = sorted({str(v) for v in np.unique(y)} - known)
        if unseen:
            return None, (f"{file_name}'s label has value(s) {', '.join(unseen[:5])} the experiment's data never had "
                          f"(it had {', '.join(sorted(known)[:5])}); the champion cannot score them")
    holdout = experiment.attributes.get("holdout") or {}
    if holdout.get("trial") != best.number:
        holdout = {}
    at_promotion = (served.metrics if served is not None else {}).get(f"holdout_{metric}")
    if at_promotion is not None and math.isfinite(float(at_promotion)):
        baseline, source = float(at_promotion), "promotion"
    elif f"holdout_{metric}" in holdout and math.isfinite(float(holdout[f"holdout_{metric}"])):
        baseline, source = float(holdout[f"holdout_{metric}"]), "holdout"
    else:
        assert best.values is not None
        baseline, source = float(best.values[0]), "cv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's UndefinedMetricWarning: said below, in words
        try:
            current = score_new_rows(task, dict(best.params), best.seed, X, y, spec.base_dir)
        except ValueError as e:
            return None, f"the champion's {metric} cannot be computed on {file_name}: {e}"
    if not math.isfinite(current):
        classes = len(np.unique(y))
        why = f" ({file_name} holds {classes} class)" if classes < 2 else ""
        return None, f"the champion's {metric} is undefined on {file_name}{why}"
    which = served.said if served is not None else "the experiment's best trial, which its holdout scored"
    return ChampionCheck(best.number, dict(best.params), metric, task.direction, baseline, source, current, len(X),
                         cfg.max_score_drop, which), None


def check_stored(store: Any, name: str, data: str | os.PathLike[str],
                 reference: str | os.PathLike[str] | None = None,
                 data_columns: Mapping[str, list[Any]] | None = None, tuned: TunedOn | None = None,
                 served: ServedTrial | None = None) -> DriftReport:
    """:func:`check_experiment` for the experiment called ``name`` in ``store`` (a TrialStore)."""
    from tunesmith.data_history import data_epochs

    experiment = store.experiment(name)
    epochs = data_epochs(experiment.attributes, store.events(experiment.id), ())
    # the rows its last trials ran on; {}: a change recorded before events kept fingerprints, which cannot be checked
    latest = (epochs[-1].fingerprint or {}) if epochs else None
    return check_experiment(experiment, store.trials(experiment.id), data, reference, data_columns, tuned, latest,
                            served)
