"""The Python API: run, resume and read experiments without the CLI."""

from __future__ import annotations

import copy
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunesmith.errors import ExperimentExists, TunesmithError
from tunesmith.evaluation.loading import refuse_a_run_started_by_an_import
from tunesmith.events import RunListener
from tunesmith.records import ExperimentRecord, RunStatus, TrialRecord, TrialState
from tunesmith.selection import Selection
from tunesmith.spec.loader import load_spec, spec_from_dict
from tunesmith.spec.model import ExperimentSpec, check_new_spec
from tunesmith.storage.sql import SQLStore, in_memory, resolve_url
from tunesmith.storage.upgrades import upgrades_allowed
from tunesmith.summary import (
    best_of, experiment_summary, front_of, objectives_of, selection_of, shown_experiment,
)

if TYPE_CHECKING:
    import pandas as pd

    from tunesmith.reproduce import ReproduceOutcome


@dataclass(frozen=True)
class ExperimentResult:
    """An experiment as recorded: its trials, the best one, the Pareto front. ``stop_reason``: why this run
    stopped (:func:`run`, :func:`resume`), or why its last run did (:func:`open_experiment`)."""

    experiment: ExperimentRecord
    trials: list[TrialRecord]
    stop_reason: str | None = None
    # what `tunesmith show --json` printed when this was read: it needs the event log and the store, which a
    # result outlives (None: a result built by hand, whose summary() has only what the records say)
    shown: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.experiment.name

    @property
    def status(self) -> RunStatus:
        return self.experiment.status

    @property
    def best(self) -> TrialRecord | None:
        """The best trial under the spec's selection rules (its constraints; a task may exclude unstable ones)."""
        return best_of(self.experiment, self.trials)

    @property
    def attributes(self) -> dict[str, Any]:
        """Facts recorded beside the experiment: ``holdout``, ``nested``, ``data_fingerprint`` for tasks."""
        return dict(self.experiment.attributes)

    @property
    def selected(self) -> Selection | None:
        """The trial the spec's ``select`` policy picks from the feasible Pareto front, with the reason (the same
        choice as ``tunesmith show``); None when no completed trial satisfies the constraints."""
        return selection_of(self.experiment, self.trials)

    @property
    def pareto(self) -> list[TrialRecord]:
        """The Pareto front `tunesmith show` reports: of the completed trials that satisfy the constraints (the
        stable ones, for a task that excludes unstable ones); none where no trial satisfies them."""
        spec = spec_from_dict(self.experiment.spec, recorded=True)
        return front_of(self.trials, spec.objectives, spec.constraints, self.selected)

    def __repr__(self) -> str:
        # a line, as a notebook cell ending in `tunesmith.run(...)` prints it: the dataclass's own held every trial
        # and the whole spec (137 KB for 300 trials); the fields hold them still
        counts = Counter(t.state for t in self.trials)
        states = {state.value: counts[state] for state in TrialState if counts[state]}
        best, shown = self.best, "None"
        if best is not None and best.values is not None:
            metrics = (o.metric for o in objectives_of(self.experiment))
            shown = f"#{best.number} {dict(zip(metrics, best.values, strict=False))} at {best.params}"  # never raises
        return f"ExperimentResult(name={self.name!r}, status={self.status.value!r}, trials={states}, best={shown})"

    def to_dataframe(self) -> pd.DataFrame:
        """The trials as a pandas DataFrame, one row per trial, as Optuna's ``study.trials_dataframe()``: number,
        state, value(s), ``params_<name>`` (NaN where inactive), ``metrics_<name>``, attempts, start, end, duration
        (:func:`tunesmith.trial_frame.trials_dataframe`). pandas is not installed with tunesmith: ImportError."""
        from tunesmith.trial_frame import trials_dataframe

        return trials_dataframe(self.experiment, self.trials)

    def summary(self) -> dict[str, Any]:
        """The same JSON as `tunesmith show NAME --json` printed when the result was read (its non-finite numbers
        are floats here, strings there: see :mod:`tunesmith.json_output`)."""
        if self.shown is None:
            return experiment_summary(self.experiment, self.trials)
        return copy.deepcopy(self.shown)  # the caller's to change; the result is frozen


def _as_spec(spec: ExperimentSpec | Mapping[str, Any] | str | os.PathLike[str]) -> ExperimentSpec:
    """A spec given anew, checked as a spec file is (``load_spec``): the checks that stored specs skip, so that an
    experiment recorded before them stays readable, apply to a mapping and an ExperimentSpec here."""
    if isinstance(spec, str | os.PathLike) and Path(spec).suffix in (".yaml", ".yml"):
        return load_spec(spec)
    if isinstance(spec, Mapping):
        spec = spec_from_dict(spec)
    elif not isinstance(spec, ExperimentSpec):
        raise TypeError(f"spec must be an ExperimentSpec, a mapping or a path to a YAML file; got {spec!r}")
    check_new_spec(spec)
    return spec


def run(spec: ExperimentSpec | Mapping[str, Any] | str | os.PathLike[str], storage: str | None = None,
        progress: bool = False, listener: RunListener | None = None) -> ExperimentResult:
    """Record and run a new experiment; returns when its budget is spent.

    Args:
        spec: an ExperimentSpec, a mapping in the YAML shape, or the path of a YAML spec.
        storage: a SQLAlchemy URL; default: the spec's ``storage``, ``$TUNESMITH_STORAGE``, ./tunesmith.db.
        progress: show the live progress display. Without it, and without ``listener``, failed trials and why
            the run stopped are said on stderr, as the run's warnings are (a run where nothing failed prints
            nothing).
        listener: receives run events.

    Raises:
        SpecError: invalid spec; nothing is recorded.
        ExperimentExists: the name is taken in this store (use :func:`resume`).
    """
    from tunesmith.events import Listeners
    from tunesmith.reproduce import trial_source_recorded
    from tunesmith.runner import prepare, run_experiment
    from tunesmith.spec.diff import exists_saying_what_differs
    from tunesmith.stop_signals import ctrl_c_noted_until_the_run_starts
    from tunesmith.tracking import check_tracking_destination

    refuse_a_run_started_by_an_import()
    s = _as_spec(spec)
    plan = prepare(s)
    url = resolve_url(storage, s.storage, os.environ)
    if in_memory(url) and s.workdir is None:  # a throwaway run: its folders, as its store, are not kept for a resume
        # (in .tunesmith/NAME, they refused the same cell run again: trial folders of an experiment no store has)
        plan = replace(plan, spec=plan.spec.model_copy(
            update={"workdir": tempfile.mkdtemp(prefix=f"tunesmith-{s.name}-")}))
    shown = _listener(progress, listener)
    watching = Listeners(*([shown] if shown is not None else []))
    for w in plan.warnings:  # what `tunesmith run` prints before it starts (a listener's, else stderr's)
        watching.warning(w)
    store = SQLStore(url, upgrade=upgrades_allowed(os.environ))  # (TUNESMITH_MIGRATE=never, as for the CLI)
    try:
        check_tracking_destination(plan.spec, store.url)  # before the store is made: MLflow's tables would break it
        with ctrl_c_noted_until_the_run_starts() as interrupt:
            r = run_experiment(plan, store, Listeners(watching, interrupt), on_runner=interrupt.reaches,
                               attributes=trial_source_recorded(plan.spec) or None)
        return _result(store, r.experiment, r.trials, r.stop_reason)
    except ExperimentExists as e:  # the store's message names the CLI's way out (--name, `tunesmith resume`)
        if e.name is None:
            raise
        e = exists_saying_what_differs(e, store, s)
        raise ExperimentExists(
            f"an experiment named {e.name!r} already exists in {e.store}; continue it with "
            f"{_resume_call(e.name or s.name, store)} (which runs the spec recorded then, not this one), or give "
            "the spec another name (its `name`)" + (f". Its recorded spec differs from this one: {e.differences}"
                                           if e.differences else "") + _function_edited(store, e.name or s.name, s),
            e.name, e.store, e.differences) from None
    finally:
        store.close()


def _function_edited(store: SQLStore, name: str, spec: ExperimentSpec) -> str:
    """``. The trial function 'objective' has changed ...`` for the exists message, where the recorded experiment
    ran an interactive function whose source differs from the one handed over now (a notebook's cell edited)."""
    from tunesmith.reproduce import trial_function_changed

    if spec.trial is None or not spec.trial.interactive:
        return ""
    try:
        attributes = store.experiment(name).attributes
    except TunesmithError:  # deleted meanwhile
        return ""
    changed = trial_function_changed(attributes, spec.trial.given_function(spec.name))
    return f". The {changed.removeprefix('the ')}: a resume scores its new trials with this code" if changed else ""


def _resume_call(name: str, store: SQLStore) -> str:
    """``tunesmith.resume(NAME)`` as a hint writes it: with ``storage=`` where the CLI's hint has ``--storage``, and
    ``trial=`` where the record names a function defined interactively, which a resume without it refuses."""
    from tunesmith.storage.sql import store_to_name

    named = store_to_name(store.url, os.environ)
    try:
        recorded = spec_from_dict(store.experiment(name).spec, recorded=True).trial
    except TunesmithError:  # deleted meanwhile, or written by a tunesmith this one cannot read: no trial= to add
        recorded = None
    handed = recorded.shown_name if recorded is not None and recorded.interactive else None
    return (f"tunesmith.resume({name!r}{'' if named is None else f', storage={named!r}'}"
            f"{'' if handed is None else f', trial={handed}'})")


def resume(name: str, storage: str | None = None, progress: bool = False,
           listener: RunListener | None = None, join: bool = False,
           trial: Callable[..., Any] | None = None, trials: int | None = None,
           wall_time: float | str | None = None) -> ExperimentResult:
    """Continue an interrupted or crashed experiment; ``join=True`` works beside coordinators already running it.

    Args:
        trial: the trial function of an experiment started with one defined interactively (in a notebook, on
            standard input, a lambda): its record names it (``<interactive>:objective``) but no process can import
            it, so it is handed over again, under the same name. Or the importable function of the recorded
            reference (``mytrial:objective``), which inline trials then call as it is, instead of importing it.
        trials: raise the recorded trial budget to this first (a ``budget_raised`` event in the audit trail), to
            give a finished experiment more trials, informed by those it has.
        wall_time: raise the recorded wall-time budget to this first (seconds, or a duration as the spec writes it:
            ``"10m"``), as ``trials`` does the trial budget; given with ``trials``, both in one change.

    Raises:
        SpecError: an interactive experiment's function not handed over (or under another name), or a function
            other than the recorded reference's handed over (or one to an experiment that runs a command or task).
        UserInputError: ``trials`` (``wall_time``) less than the recorded budget, or the experiment has no such
            limit; more trials for an experiment its wall time stopped, without more ``wall_time``; more
            ``wall_time`` alone for one its trial budget stopped, without more ``trials``.
        LeaseHeld: another coordinator runs the experiment (without ``join``): nothing was raised.
    """
    from tunesmith.clock import SystemClock
    from tunesmith.events import Listeners
    from tunesmith.raised_budget import raise_budget_to_resume
    from tunesmith.reproduce import trial_function_changed
    from tunesmith.runner import resume_experiment
    from tunesmith.stop_signals import ctrl_c_noted_until_the_run_starts

    refuse_a_run_started_by_an_import()
    with _existing_store(storage) as store:
        raise_budget_to_resume(store, store.url, name, trials, SystemClock(), join, field="trials=",
                               wall_time=wall_time, wall_field="wall_time=")
        shown = _listener(progress, listener)
        watching = Listeners(*([shown] if shown else []))
        if trial is not None and (changed := trial_function_changed(store.experiment(name).attributes, trial)):
            watching.warning(f"{changed}: the trials run now are scored by the new code, beside the earlier ones; "
                             "give the spec another name to run the new code as an experiment of its own")
        with ctrl_c_noted_until_the_run_starts() as interrupt:
            r = resume_experiment(name, store, Listeners(watching, interrupt), join=join, trial=trial,
                                  on_runner=interrupt.reaches)
        return _result(store, r.experiment, r.trials, r.stop_reason)


def reproduce_trial(name: str, number: int, storage: str | None = None, rtol: float = 1e-6,
                    trial: Callable[..., Any] | None = None) -> ReproduceOutcome:
    """Run trial ``number`` again with its recorded parameters and seed, and compare each objective with the
    record within ``rtol`` (what `tunesmith reproduce` does); ``trial`` as for :func:`resume`."""
    from tunesmith.clock import SystemClock
    from tunesmith.reproduce import reproduce

    with _existing_store(storage) as store:
        return reproduce(store, name, number, SystemClock(), rtol, trial_function=trial)


def open_experiment(name: str, storage: str | None = None) -> ExperimentResult:
    """Read an experiment's record (no run)."""
    with _existing_store(storage) as store:
        exp = store.experiment(name)
        return _result(store, exp, store.trials(exp.id), None)


@contextmanager
def _existing_store(storage: str | None) -> Iterator[SQLStore]:
    """The store ``storage`` names (else ``$TUNESMITH_STORAGE``, else ./tunesmith.db), which must exist; closed
    after. Its "not found" errors are said as a Python caller fixes them, with ``storage=`` and the absolute path
    searched (the store's own messages name the CLI's ``--storage``, and a SQLite path relative to the current
    folder, which a notebook may have left since)."""
    from tunesmith.errors import ExperimentNotFound, StoreNotFound
    from tunesmith.storage.sql import describe_url

    store = SQLStore(resolve_url(storage, None, os.environ), create=False, upgrade=upgrades_allowed(os.environ))
    try:
        yield store
    except StoreNotFound:
        path = _sqlite_file(store.url)
        if path is None:
            raise
        raise StoreNotFound(f"no store at {path!r} (nothing has run here yet); run an experiment first, or pass "
                            "storage= naming the store (storage='sqlite:////abs/path/tunesmith.db'), or set "
                            "TUNESMITH_STORAGE") from None
    except ExperimentNotFound as e:
        said, shown, path = str(e), describe_url(store.url), _sqlite_file(store.url)
        if path is not None and path not in shown:
            said = said.replace(f" in {shown}", f" in {shown} ({path})", 1)
        if said.startswith("no experiment named") and "(deleted " not in said:
            said += "; pass storage= to read another store"
        raise ExperimentNotFound(said) from None
    finally:
        store.close()


def _sqlite_file(url: str) -> str | None:
    """The absolute path of a SQLite store's file; None for another database, or SQLite in memory."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return str(Path(database).resolve())


def _result(store: SQLStore, experiment: ExperimentRecord, trials: Sequence[TrialRecord],
            stop_reason: str | None) -> ExperimentResult:
    """The result, with what `show` prints of it; without a run's own ``stop_reason``, the recorded one."""
    shown = shown_experiment(store, experiment, trials, time.time()).summary
    return ExperimentResult(experiment, list(trials), stop_reason or shown.get("stop_reason"), shown)


def _listener(progress: bool, listener: RunListener | None) -> RunListener | None:
    """What watches the run: the progress display; without it, the caller's listener, or, with neither, a report
    of failed trials and why the run stopped on stderr, where its warnings go too (TunedSearchCV's listener, and any
    other given, is told each trial and says what it will)."""
    if not progress:
        if listener is not None:
            return listener
        from tunesmith.console import FailureReport

        return FailureReport()
    from rich.console import Console

    from tunesmith.console import ProgressDisplay
    from tunesmith.events import Listeners

    display = ProgressDisplay(Console())
    return Listeners(display, listener) if listener else display
