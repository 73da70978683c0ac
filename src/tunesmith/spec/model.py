"""The experiment spec: what to tune, how to search, how to run, within what budget.

One model serves YAML and Python. Validation happens here, once; later layers trust a spec they are given.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import sys
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, PrivateAttr, field_validator, model_validator

from tunesmith.errors import SpecError, quoted
from tunesmith.evaluation.command import BUILTIN_PLACEHOLDERS, check_dollar_placeholders
from tunesmith.records import Direction, FailureKind, ObjectiveSpec
from tunesmith.redaction import REDACTED, redact
from tunesmith.space.domains import Domain
from tunesmith.space.search_space import SearchSpace
from tunesmith.space.written_config import check_on_grid, read_written_config
from tunesmith.constraints import Constraint
from tunesmith.cost import Prices
from tunesmith.spec.cost_config import CostConfig
from tunesmith.spec.drift_config import DriftConfig
from tunesmith.spec.scheduler_config import SCHEDULER_NAMES, NoSchedulerConfig, SchedulerChoice
from tunesmith.spec.selection_config import SelectConfig, parse_constraints
from tunesmith.spec.promotion_config import PromotionConfig
from tunesmith.spec.task_config import (RECORDED_SPEC, TASK_MEASURED, TaskConfig, check_features_distinct,
                                        check_groups_with_time, check_task_space, check_time_ordered_folds_unshuffled)
from tunesmith.spec.tracking_config import TrackingConfig
from tunesmith.spec.units import parse_duration, parse_size
from tunesmith.strict_model import OneOrMore, StrictFloat, StrictInt, StrictModel
from tunesmith.suggestions import closest, storage_url_fix
from tunesmith.terminal_text import CONTROL_CHARACTERS

Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
# The module part of the reference stored for a trial function that no process can import (a notebook's, a lambda):
# it runs inline, in the process that was handed it, and is handed it again to resume.
INTERACTIVE = "<interactive>"
# The trial function of every tunesmith.sklearn.TunedSearchCV experiment: it cross-validates the estimator on the
# data that fit() was given, which live only in that process (never in the store), so no later process can re-run it
# unless the caller hands over a function that does its work (resume / reproduce with trial=).
SKLEARN_SEARCH_TRIAL = "tunesmith.sklearn:_objective"
STRATEGIES = ("auto", "random", "grid", "qmc", "tpe", "cmaes", "gp", "nsga2", "bo")
# the devices a trial sees: the executor's assignment where it makes one, never trial.env's (see trial_env)
DEVICES_VARIABLE = "CUDA_VISIBLE_DEVICES"


class Objective(StrictModel):
    """A metric to optimise and its direction."""

    metric: str = Field(min_length=1)
    direction: Direction

    def to_record(self) -> ObjectiveSpec:
        return ObjectiveSpec(self.metric, self.direction)


MOST_TRIALS = 1_000_000_000


class Budget(StrictModel):
    """When to stop. Whatever limit is reached first ends the run."""

    # (bounded: a trial number past SQLite's 64-bit integers was recorded, then failed the run with a traceback)
    trials: StrictInt | None = Field(default=100, gt=0, le=MOST_TRIALS, description="trials that reach a final state")
    wall_time: Duration | None = Field(default=None, description="time since the run started")
    target: StrictFloat | None = Field(default=None, allow_inf_nan=False,
                                       description="stop once the best value reaches this")
    patience: StrictInt | None = Field(default=None, gt=0, le=MOST_TRIALS,
                                       description="stop after this many trials without improvement")
    max_failure_rate: StrictFloat | None = Field(default=None, ge=0, le=1,
                                                 description="stop the run when more than this share of finished "
                                                             "trials failed (0: at the first failure)")
    failure_rate_min_trials: StrictInt = Field(default=5, ge=1,
                                               description="finished trials before max_failure_rate applies")
    cost: StrictFloat | None = Field(default=None, gt=0, description="money: no trial starts that would take the "
                                                                    "projected spend over this (needs the spec's "
                                                                    "cost section)")

    @model_validator(mode="after")
    def _a_time_or_money_budget_alone_has_no_trial_cap(self) -> Budget:
        # `budget: {wall_time: 1h}` is Optuna's optimize(timeout=3600): run until the time is up. The default of 100
        # trials stopped a cheap objective after a second, at a number the user never wrote; 100 stays the default
        # where no time or money limit is given. (A recorded spec keeps its trials, null included: see to_json.)
        # Set after validation, so `trials` stays out of model_fields_set: a file that leaves it out takes the
        # recorded one (filled_like: a spec recorded when this meant 100 trials is its file's still)
        if "trials" not in self.model_fields_set and (self.wall_time is not None or self.cost is not None):
            object.__setattr__(self, "trials", None)
        return self

    def ends_without_target(self, strategy: str) -> bool:
        """Whether a limit other than ``target`` (which may never be reached) ends the run: trials, wall_time,
        patience or cost, or the ``strategy`` grid, which ends with its last configuration."""
        return any(v is not None for v in (self.trials, self.wall_time, self.patience, self.cost)) \
            or strategy == "grid"


class RayResources(StrictModel):
    """What one trial reserves on a Ray cluster (``executor.resources_per_trial``, kind ray only)."""

    cpu: StrictFloat = Field(default=1.0, ge=0, description="Ray CPUs per trial")
    gpu: StrictFloat = Field(default=0.0, ge=0, description="Ray GPUs per trial; a fraction shares a GPU")
    memory: Size | None = Field(default=None, description="memory Ray reserves per trial (scheduling only)")
    custom: dict[str, StrictFloat] = Field(default_factory=dict, description="custom Ray resources, e.g. {TPU: 1}")


class Executor(StrictModel):
    """Where and how trials run."""

    kind: Literal["process", "inline", "ray"] = "process"
    workers: StrictInt = Field(default=1, ge=1, le=1024)
    trial_timeout: Duration | None = None
    memory_limit: Size | None = None
    retries: StrictInt = Field(default=1, ge=0, le=100, description="extra attempts for failures in retry_on")
    retry_on: Annotated[tuple[FailureKind, ...], OneOrMore] = (
        FailureKind.CRASHED, FailureKind.MEMORY, FailureKind.LOST)
    retry_backoff: Duration = Field(default=1.0, description="wait before the first retry; doubles each time")
    heartbeat_timeout: Duration = Field(default=60.0, description="a silent worker's trial is lost after this")
    grace_period: Duration = Field(default=30.0, description="how long running trials may finish after Ctrl-C")
    max_trials_per_worker: StrictInt | None = Field(default=None, ge=1, description="recycle a worker after this many")
    address: str | None = Field(default=None, description="kind ray: local (a private cluster), auto, ray://host:10001")
    resources_per_trial: RayResources | None = Field(default=None, description="kind ray: what one trial reserves")
    prefetch: bool | None = Field(default=None, description=(
        "kind ray: queue the next trial behind each running one while trials are short (under 5 s), so it starts "
        "the instant the previous ends; on by default, off under PBT; false turns it off"))
    max_concurrent: StrictInt | None = Field(default=None, ge=1, le=100_000, description=(
        "trials of this experiment running at once, across every coordinator running it (resume --join)"))
    slot_lease_ttl: Duration = Field(default=10.0, ge=1.0, le=3600.0, description=(
        "seconds a trial's quota slot outlives its coordinator: a killed coordinator's slots free after this (at "
        "once for coordinators on its host)"))
    gpus: list[int] | Literal["all"] | None = Field(default=None, description="kind process: local GPUs to share out")
    gpu_per_trial: StrictFloat = Field(default=1.0, gt=0, le=64,
                                       description="kind process: GPUs per trial; 0.5 shares one")

    def gpus_per_trial(self) -> float:
        """The GPUs this executor assigns each trial (a fraction where trials share one); 0 where it assigns none."""
        if self.kind == "process" and self.gpus is not None:
            return self.gpu_per_trial
        if self.kind == "ray" and self.resources_per_trial is not None:
            return self.resources_per_trial.gpu
        return 0.0

    @field_validator("gpus", mode="before")
    @classmethod
    def _gpus_form(cls, v: Any) -> Any:
        if v is None or v == "all" or (isinstance(v, list | tuple) and all(type(g) is int for g in v)):
            return v  # pydantic's own message for the others names its union's branch: executor.gpus.list[int]
        raise SpecError("executor.gpus", f"must be all or a list of GPU indices (gpus: [0, 1]); got {quoted(v)}")

    @model_validator(mode="after")
    def _gpu_fields(self) -> Executor:
        if self.kind != "process" and (self.gpus is not None or self.gpu_per_trial != 1.0):
            hint = "resources_per_trial: {gpu: 1}" if self.kind == "ray" else "kind: process"
            raise SpecError("executor.gpus", f"applies to kind: process only (kind is {self.kind}); use {hint}")
        if isinstance(self.gpus, list) and (not self.gpus or len(set(self.gpus)) != len(self.gpus)
                                            or min(self.gpus) < 0):
            raise SpecError("executor.gpus", f"must be all or a list of distinct GPU indices >= 0; got {self.gpus}")
        if self.gpu_per_trial > 1 and self.gpu_per_trial != int(self.gpu_per_trial):
            raise SpecError("executor.gpu_per_trial", "must be a whole number of GPUs, or a fraction below 1 to "
                            f"share one; got {self.gpu_per_trial}")
        if self.gpu_per_trial < 1 and abs(1 / self.gpu_per_trial - round(1 / self.gpu_per_trial)) > 1e-6:
            # 0.4 would put 2 trials on a GPU, each really holding (and charged for) half of it, not 0.4
            share = 1 / max(1, int(1 / self.gpu_per_trial))
            raise SpecError("executor.gpu_per_trial", "a share of one GPU must be 1/n (0.5, 0.25, 0.2, ...), the "
                            f"share each of n trials on a GPU has; got {self.gpu_per_trial} (did you mean {share:g}?)")
        return self

    @model_validator(mode="after")
    def _ray_fields(self) -> Executor:
        if self.kind != "ray":
            for name in ("address", "resources_per_trial", "prefetch"):
                if getattr(self, name) is not None:
                    raise SpecError(f"executor.{name}", f"applies to kind: ray only (kind is {self.kind}); "
                                    f"remove {name} or set kind: ray")
        elif self.address is not None and not (self.address in ("local", "auto") or re.fullmatch(
                r"(ray://)?[A-Za-z0-9_.\[\]:-]+:\d+", self.address)):
            raise SpecError("executor.address", "must be local (a private cluster for this run), auto (the "
                            f"cluster this machine belongs to) or host:port / ray://host:10001; got {self.address!r}")
        elif self.address is not None and self.address not in ("local", "auto"):
            port = int(self.address.rpartition(":")[2])
            if not 1 <= port <= 65535:  # else `run` probes it, finds nothing, and says "retry later" (exit 75)
                raise SpecError("executor.address", f"port {port} is not a TCP port (1 to 65535); got "
                                f"{self.address!r}")
        return self


class TrialRef(StrictModel):
    """The code a trial runs: a Python function or a shell command."""

    function: str | None = None
    command: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    cwd: Literal["spec_dir", "trial_dir"] = Field(
        default="spec_dir", description="where a command runs: the spec's folder, or the trial's own folder")

    # The function itself, where it was handed over in this process: an interactive one, which cannot be imported
    # (the stored spec says only ``<interactive>:name``), or an importable one, which an inline run calls as it is
    # (a worker imports it by the reference stored). Never stored.
    _given: Callable[..., Any] | None = PrivateAttr(default=None)

    @field_validator("function")
    @classmethod
    def _function_form(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[^:\s]+:[A-Za-z_][A-Za-z0-9_.]*", v) and not (
                v.startswith(INTERACTIVE + ":") and not re.search(r"\s", v)):
            raise ValueError(f"must look like 'module:function' or 'path/to/file.py:function'; got {v!r}")
        return v

    @property
    def interactive(self) -> bool:
        """A function no process can import: defined in a notebook, on standard input, a lambda, or a method bound
        to an object (:func:`is_interactive`)."""
        return self.function is not None and self.function.startswith(INTERACTIVE + ":")

    def with_function(self, fn: Callable[..., Any]) -> TrialRef:
        """This reference with its interactive function handed over again (to resume the experiment); for a
        TunedSearchCV search, any function that does its trials' work (its own estimator and data are gone).

        Raises:
            SpecError: at ``trial``: the experiment's function is imported by reference, or has another name.
        """
        if not callable(fn) or isinstance(fn, type):
            raise SpecError("trial", f"must be the trial function; got {fn!r}")
        if self.function == SKLEARN_SEARCH_TRIAL:
            copy = self.model_copy()
            copy._given = fn
            return copy
        if self.function is not None and not self.interactive:  # `module:function`: an inline run calls it as it is
            given = None if is_interactive(fn) else function_reference(fn)
            if given != self.function:
                raise SpecError("trial", f"the experiment runs {self.function!r}; got "
                                f"{given or _interactive_name(fn)!r} (pass that function, or leave out trial= to "
                                "have it imported by its reference)")
            copy = self.model_copy()
            copy._given = fn
            return copy
        if not self.interactive:
            raise SpecError("trial", f"the experiment's trial is {self.command!r}, a command; leave out trial=")
        name, given = self.function_name, _interactive_name(fn)
        if given != name:
            raise SpecError("trial", f"the experiment ran the function {name!r}; got {given!r} (pass the function it "
                            "ran, under its name, or start a new experiment for another one)")
        copy = self.model_copy()
        copy._given = fn
        return copy

    def given_function(self, experiment: str) -> Callable[..., Any] | None:
        """The function to call in this process (inline): an interactive one; an importable one handed over (as
        itself: a copy imported again would not hold what the caller set on its module); None for a function found
        by reference.

        Raises:
            SpecError: at ``trial.function``: interactive, and not handed over in this process (a CLI resume or
                reproduce), saying how to hand it over.
        """
        if not self.interactive:
            return self._given  # None but for an importable function handed over (or a TunedSearchCV search's)
        if self._given is None:
            shown = self.shown_name
            raise SpecError("trial.function", f"experiment {experiment!r} runs the trial function "
                            f"{self.function_name!r}, defined interactively (a notebook, standard input, python -c, "
                            "a lambda or a method of an object), which no process can import again: hand it over from "
                            f"Python, where it is defined: tunesmith.resume({experiment!r}, trial={shown}) or "
                            f"tunesmith.reproduce_trial({experiment!r}, NUMBER, trial={shown})")
        return self._given

    def check_handed_over(self) -> None:
        """In a spec given anew, an interactive function is the function itself (``trial=objective``): its name
        alone, as a spec's ``model_dump()`` or a spec file writes it, has nothing to run, and no recorded experiment
        to hand the function over to.

        Raises:
            SpecError: at ``trial.function``, naming the fix for a Python spec and for a spec file.
        """
        if self.interactive and self._given is None:
            raise SpecError("trial.function", f"{self.function!r} is only the name of a function defined "
                            "interactively, which only the process that defined it has: pass the function itself, "
                            f"trial={self.shown_name} (a spec's model_dump() keeps its name only), or, in a spec file, "
                            "name one that a process can import: 'module:function' or 'path/to/file.py:function'")

    @property
    def function_name(self) -> str:
        """The function's name in its reference (``objective`` of ``<interactive>:objective``)."""
        return (self.function or "").partition(":")[2]

    @property
    def shown_name(self) -> str:
        """The function's name as a hint writes it in ``trial=...``; a lambda's is no name to write."""
        return "your_function" if self.function_name == "<lambda>" else self.function_name

    @model_validator(mode="after")
    def _exactly_one(self) -> TrialRef:
        if (self.function is None) == (self.command is None):
            raise ValueError("give exactly one of `function` ('module:function') or `command` ('python train.py ...')")
        if self.command is not None and not self.command.strip():
            raise ValueError("command must not be empty")
        if self.function is not None and self.cwd != "spec_dir":
            raise SpecError("trial.cwd", "applies to command trials; a function trial runs in the spec's folder and "
                            f"finds its own folder as trial.workdir (remove cwd); got {self.cwd!r}")
        return self


class StrategyChoice(StrictModel):
    """A search strategy by name, with options passed to it."""

    name: str = "auto"
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_short_forms(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"name": data}
        if isinstance(data, Mapping) and not isinstance(data, dict):
            data = dict(data)  # any mapping (a MappingProxyType, a config library's) reads as a dict does
        if isinstance(data, dict) and "options" not in data:
            if "name" not in data:
                _refuse_a_misplaced_name(data)
            options = {k: v for k, v in data.items() if k != "name"}
            return {"name": data.get("name", "auto"), "options": options}
        if not isinstance(data, dict | StrategyChoice):
            raise ValueError(f"must be a strategy name ({', '.join(STRATEGIES)}) or a mapping with `name`, e.g. "
                             f"{{name: tpe, n_startup_trials: 5}}; got {quoted(data)}")
        return data

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v.lower() in SCHEDULER_NAMES and v.lower() != "none":  # early stopping, which runs beside a strategy
            raise ValueError(f"unknown strategy {v!r}; that is a scheduler: write scheduler: {{name: {v.lower()}, "
                             f"...}} beside a strategy (tpe, random, ...)")
        if v not in STRATEGIES:
            close = closest(v, STRATEGIES)
            hint = f"did you mean {close!r}? " if close else ""
            raise ValueError(f"unknown strategy {v!r}; {hint}choose one of {', '.join(STRATEGIES)} (got {v!r})")
        return v


def _refuse_a_misplaced_name(data: dict[str, Any]) -> None:
    """A strategy mapping without ``name`` is ``auto``'s options, which it has none of; when a key is a misspelt
    ``name`` or a strategy's own name (``{tpe: {...}}``), say that, not that auto takes no options."""
    for key in data:
        if str(key).lower() in STRATEGIES:
            raise ValueError(f"unknown key {key!r}; name the strategy with `name` and put its options beside it: "
                             f"{{name: {str(key).lower()}, <option>: ...}}")
        if closest(str(key), ["name"]):
            raise ValueError(f"unknown key {key!r}; did you mean 'name'?")


def check_storage_url(url: str) -> None:
    """Raise ValueError unless ``url`` is a SQLAlchemy URL with a known dialect (the store is not opened)."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from tunesmith.database_url import read_database_url

    fix = storage_url_fix(url)
    try:
        parsed = read_database_url(url)  # (a port that is no number, or out of range: its own ValueError)
    except ArgumentError:
        raise ValueError(f"not a database URL; got {url!r} {fix}") from None
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        raise ValueError(f"no database dialect {parsed.drivername!r}; got {url!r} {fix}") from None


def _objective_list(value: Any) -> Any:
    if isinstance(value, list | tuple) and not value:  # pydantic said: Tuple should have at least 1 item ...
        raise SpecError("objective", "give the metric to optimise and its direction, e.g. objective: {metric: loss, "
                                     f"direction: minimize}} (or a list of them); got {list(value)}")
    items = list(value) if isinstance(value, list | tuple) else [value]
    for i, item in enumerate(items):
        if isinstance(item, str):  # the metric's name alone: pydantic said "input should be a valid tuple"
            where = f"objective.{i}" if isinstance(value, list | tuple) else "objective"
            from sklearn.metrics import get_scorer_names   # only on this error: a scorer's direction is known

            direction = "maximize}" if item in get_scorer_names() else "minimize} (or maximize)"
            raise SpecError(where, f"give the metric and its direction: {{metric: {item}, direction: {direction}; "
                            f"got {item!r}")
    return [value] if isinstance(value, dict | Objective) else value


def _tag_value(value: Any) -> Any:
    """A tag's value is one string: a list or mapping got pydantic's own "Input should be a valid string", and an
    empty one (``team:`` with nothing after it) no fix. A number or boolean is left to the loader's "quote it"."""
    if value is None:
        raise ValueError("got no value; give it one, e.g. team: vision, or leave the key out")
    if isinstance(value, list | tuple):
        one = ", ".join(map(str, value)) if all(isinstance(v, str | int | float) for v in value) else "a, b"
        raise ValueError(f"a tag's value is one string; got {quoted(value)} (join them in one, {quoted(one)}, or "
                         "give each its own tag)")
    if isinstance(value, dict):
        raise ValueError(f"a tag's value is one string; got {quoted(value)} (give each key its own tag)")
    return value


def _trial_ref(value: Any) -> Any:
    """Accept a Python callable in the Python API: stored as an importable reference, or, for one no process can
    import, as ``<interactive>:name``; either way with the function kept beside it in this process, which an inline
    run calls (workers import it by the reference)."""
    if callable(value) and not isinstance(value, type):
        if not is_interactive(value):
            ref = TrialRef(function=function_reference(value))
            ref._given = value
            return ref
        ref = TrialRef(function=f"{INTERACTIVE}:{_interactive_name(value)}")
        ref._given = value
        return ref
    if isinstance(value, str):
        return {"function": value} if ":" in value and " " not in value else {"command": value}
    return value


def is_interactive(fn: Callable[..., Any]) -> bool:
    """Whether no other process can import ``fn``: a lambda or nested function, one defined in ``__main__``
    without a file of its own (a notebook cell, `python -c`, standard input, the REPL), or a method bound to an
    object (a worker could import its class, never the object and what it holds on ``self``)."""
    if inspect.ismethod(fn) and not isinstance(fn.__self__, type):  # (bound to a class, it imports as it is found)
        return True
    qualname = getattr(fn, "__qualname__", "")
    module = getattr(fn, "__module__", None)
    if not qualname or "<" in qualname or module is None:
        return True
    if module != "__main__":
        return False
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)  # a notebook's __main__ has none
    try:
        source = inspect.getsourcefile(fn)  # `python -c` and stdin give '<string>', '<stdin>'; Jupyter a cell's name
    except TypeError:
        return True
    return main_file is None or source is None or not os.path.isfile(source)


def _interactive_name(fn: Callable[..., Any]) -> str:
    """The name an interactive function is stored under: its own (``objective``, ``<lambda>``)."""
    return str(getattr(fn, "__name__", None) or type(fn).__name__)


def function_reference(fn: Callable[..., Any]) -> str:
    """``module:function`` for a module-level function; ``/abs/file.py:function`` for one defined in a script
    (never an interactive one: :func:`is_interactive`)."""
    qualname = fn.__qualname__
    if fn.__module__ == "__main__":
        source = inspect.getsourcefile(fn)
        assert source is not None
        return f"{os.path.abspath(source)}:{qualname}"
    return f"{fn.__module__}:{qualname}"


# What only worker processes give: an interactive function given with one of these is not moved inline unasked.
_TRIAL_OR_TASK = ("give exactly one of `trial` (your code: {function: ...} or {command: ...}) or `task` (a built-in "
                  "scikit-learn task)")
_WORKER_SETTINGS = ("trial_timeout", "memory_limit", "gpus", "max_trials_per_worker")


# Clustering scorers: never what a tuned classifier or regressor meant (f1_score is not rand_score).
_CLUSTERING_SCORERS = frozenset({
    "adjusted_mutual_info_score", "adjusted_rand_score", "completeness_score", "fowlkes_mallows_score",
    "homogeneity_score", "mutual_info_score", "normalized_mutual_info_score", "rand_score", "v_measure_score"})
# Business metrics: a scoring mapping ({precision_at_recall: 0.8}), never a scorer name.
_BUSINESS_METRICS = frozenset({"precision_at_recall", "recall_at_precision", "cost"})


def _likely_scorer(metric: str, names: list[str]) -> str | None:
    """The scorer a near-miss metric name most likely meant: the metric function's name (``f1_score``), the
    loss's negated scorer (``log_loss``), else the closest name; None for a business metric or nothing close."""
    if metric in _BUSINESS_METRICS:
        return None
    bare = metric.removesuffix("_score")
    for candidate in (bare, f"neg_{metric}", f"neg_{bare}"):
        if candidate in names:
            return candidate
    return closest(metric, [n for n in names if n not in _CLUSTERING_SCORERS])


class ExperimentSpec(StrictModel):
    """A complete, declared experiment. See the README's spec reference.

    Raises:
        SpecError: from the constructor as from the YAML loader: one message with the field path.
    """

    internal_keys: ClassVar[frozenset[str]] = frozenset({"base_dir"})  # the loader sets it

    def __init__(self, **data: Any) -> None:
        from pydantic import ValidationError

        try:
            super().__init__(**data)
        except ValidationError as e:
            from tunesmith.spec.loader import format_validation_error

            raise format_validation_error(e, data) from None

    name: str = Field(pattern=NAME_PATTERN)
    description: str | None = None
    objective: Annotated[tuple[Objective, ...], BeforeValidator(_objective_list)] = Field(min_length=1)
    space: dict[str, Domain]
    strategy: StrategyChoice = Field(default_factory=StrategyChoice)
    scheduler: SchedulerChoice = Field(default_factory=NoSchedulerConfig)
    budget: Budget = Field(default_factory=Budget)
    executor: Executor = Field(default_factory=Executor)
    trial: Annotated[TrialRef | None, BeforeValidator(_trial_ref)] = None
    task: TaskConfig | None = Field(default=None, description="a built-in scikit-learn task instead of trial code")
    seed: StrictInt | None = Field(default=None, ge=0, lt=2**32)
    storage: str | None = None
    workdir: str | None = None
    base_dir: str | None = Field(default=None, description="folder the spec was loaded from (set by the loader)")
    tags: dict[str, Annotated[str, BeforeValidator(_tag_value)]] = Field(default_factory=dict)
    cost: CostConfig | None = Field(default=None, description="prices of measured resources, or the cost metric")
    constraints: Annotated[tuple[Constraint, ...], BeforeValidator(parse_constraints),
                           PlainSerializer(lambda cs: [str(c) for c in cs])] = ()
    select: SelectConfig = Field(default_factory=SelectConfig)
    # Known configurations run first, in order (Optuna's study.enqueue_trial): top-level, not a strategy option,
    # since every strategy takes them (through Strategy.adopt, as a re-tune's re-evaluations)
    enqueue: tuple[dict[str, Any], ...] = Field(
        default=(), description="configurations to evaluate first, in order, counted in the trial budget")
    tracking: TrackingConfig | None = Field(default=None, description="mirror the run to MLflow (extra: mlflow)")
    promotion: PromotionConfig | None = Field(default=None, description="gates of `tunesmith promote`")
    drift: DriftConfig | None = Field(default=None, description="drift thresholds and re-tune budget (tunesmith drift)")

    # What the YAML text of a spec file says that its values do not (a choice written `yes`, read True), as (field
    # path, message): refused by check_new_spec, not when the file is that of an experiment already recorded
    # (`tunesmith cycle spec.yaml`), which stays usable as recorded. Set by the loader; empty for any other spec.
    _yaml_faults: tuple[tuple[str, str], ...] = PrivateAttr(default=())

    @model_validator(mode="before")
    @classmethod
    def _an_interactive_function_runs_inline(cls, data: Any) -> Any:
        # A function only this process has (a notebook's) can run only here: where the executor section leaves the
        # kind to its default and asks nothing only worker processes give, that is inline, as Optuna's optimize()
        # calls the objective in-process. A kind or setting given for processes is refused in _cross_checks.
        if not isinstance(data, dict) or not callable(data.get("trial")) or not is_interactive(data["trial"]):
            return data
        executor = data.get("executor")
        if executor is None:
            return {**data, "executor": {"kind": "inline"}}
        given = (dict(executor) if isinstance(executor, Mapping) else executor.model_dump(exclude_unset=True)
                 if isinstance(executor, Executor) else None)
        if given is None or "kind" in given or any(k in given for k in _WORKER_SETTINGS) \
                or given.get("workers", 1) != 1:
            return data
        return {**data, "executor": {**given, "kind": "inline"}}

    @model_validator(mode="before")
    @classmethod
    def _scoring_defaults_to_the_objective(cls, data: Any) -> Any:
        # A task optimises its scoring, so the two must name one metric; a spec that names it once, in the
        # objective (what a user writes first), means that scorer. Only a scikit-learn scorer name is taken: a
        # business metric needs its own `scoring:` mapping, and anything else keeps the "required" message.
        if not isinstance(data, dict) or not isinstance(data.get("task"), dict) or "scoring" in data["task"]:
            return data
        objective = data.get("objective")
        many = isinstance(objective, list | tuple)
        first = (objective[0] if objective else None) if many else objective
        metric = first.get("metric") if isinstance(first, dict) else getattr(first, "metric", None)
        if isinstance(metric, str):
            from sklearn.metrics import get_scorer_names

            names = get_scorer_names()
            if metric in names:
                return {**data, "task": {**data["task"], "scoring": metric}}
            likely = _likely_scorer(metric, names)
            if likely:  # a near-miss of a scorer: say so here rather than "task.scoring: required"
                raise SpecError("objective.0.metric" if many else "objective.metric",
                                f"{metric!r} is not a scikit-learn scorer; did you mean {likely!r}? (a task optimises "
                                f"its scoring, and scorers are maximised: {{metric: {likely}, direction: maximize}}; "
                                "or give task.scoring)")
        return data

    @model_validator(mode="before")
    @classmethod
    def _not_trial_and_task(cls, data: Any) -> Any:
        # Before the fields: a task given beside a trial was told what the task lacks (task.scoring) first, and the
        # spec's real mistake only once that was added. (Neither given is told in _cross_checks.)
        if isinstance(data, dict) and data.get("trial") is not None and data.get("task") is not None:
            raise ValueError(_TRIAL_OR_TASK)
        return data

    @field_validator("storage")
    @classmethod
    def _storage_url(cls, v: str | None) -> str | None:
        if v is not None:
            check_storage_url(v)
        return v

    @field_validator("objective")
    @classmethod
    def _distinct_metrics(cls, v: tuple[Objective, ...]) -> tuple[Objective, ...]:
        names = [o.metric for o in v]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup:
            raise ValueError(f"metric {dup!r} appears twice; each objective needs its own metric")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> ExperimentSpec:
        space = SearchSpace.from_domains(self.space)  # raises SpaceError with the field path
        # complete for its active parameters, each in its domain; kept as the trial will be recorded (`n: 1` for a
        # float is 1.0), or a resume's queue keys miss the record's and a configuration already run runs again.
        # (Off a float's grid is check_new_spec's: a recorded experiment with one ran it, and stays readable.)
        object.__setattr__(self, "enqueue", tuple(read_written_config(space, config, f"enqueue[{i}]")
                                                  for i, config in enumerate(self.enqueue)))
        if (self.trial is None) == (self.task is None):
            raise ValueError(_TRIAL_OR_TASK)
        if self.task is not None:
            if not RECORDED_SPEC.get():  # checked when it was recorded; imports the classes (see spec_from_dict)
                check_task_space(self.task, list(self.space), base_dir=self.base_dir)
            _check_task_extra_objectives(self)
            o = self.objective[0]
            if o.metric != self.task.metric_name or o.direction.value != self.task.direction:
                raise SpecError("objective", f"a task optimises its scoring: use {{metric: {self.task.metric_name}, "
                                f"direction: {self.task.direction}}}; got {{metric: {o.metric}, direction: "
                                f"{o.direction.value}}}")
        if self.trial is not None and self.trial.interactive and self.executor.kind != "inline":
            if isinstance(partial := self.trial._given, functools.partial):  # Optuna's way to pass data in
                raise SpecError("trial", "the trial function is a functools.partial of "
                                f"{_interactive_name(partial.func)!r}, an object worker processes cannot import by "
                                f"name (executor.kind {self.executor.kind}); run it in this process with executor: "
                                "{kind: inline} (one trial at a time, without workers, trial_timeout or "
                                "memory_limit), or pass the module-level function itself and give it its data another "
                                "way: load the data at the module's top level, or read a path set in trial.env")
            raise SpecError("trial", f"the trial function {self.trial.function_name!r} is defined interactively (a "
                            "notebook, python -c, standard input, the REPL, a lambda, or a method bound to an object), "
                            f"so the worker processes of executor.kind {self.executor.kind} cannot import it; run it "
                            "in this process with executor: {kind: inline} (one trial at a time, without workers, "
                            "trial_timeout or memory_limit), or move it into a .py file as a module-level function "
                            "(in a notebook: %%writefile objective.py, then from objective import objective) and pass "
                            "that function, or 'objective.py:objective'")
        if self.budget.cost is not None and self.cost is None:
            raise SpecError("budget.cost", "a money budget needs prices: add a cost section, e.g. cost: "
                            "{cpu_hour: 0.04, memory_gb_hour: 0.005} or cost: {metric: dollars}")
        _check_select(self)
        if self.budget.target is not None and len(self.objective) > 1:
            raise ValueError("budget.target applies to one objective; remove it or use a single objective")
        if self.budget.target is None and not self.budget.ends_without_target(self.strategy.name):
            raise SpecError("budget", "needs a limit that ends the run: trials, wall_time, cost or patience (or "
                            "strategy: grid, which ends with its last configuration)")
        return self

    def with_trial_function(self, fn: Callable[..., Any]) -> ExperimentSpec:
        """This (stored) spec with its interactive trial function handed over again, to resume or reproduce it.

        Raises:
            SpecError: at ``trial``: the experiment runs a task, or a function it imports by reference, or another.
        """
        if self.trial is None:
            raise SpecError("trial", "the experiment runs a built-in task, not a trial function; leave out trial=")
        return self.model_copy(update={"trial": self.trial.with_function(fn)})

    @property
    def objectives(self) -> tuple[ObjectiveSpec, ...]:
        return tuple(o.to_record() for o in self.objective)

    @property
    def search_space(self) -> SearchSpace:
        return SearchSpace.from_domains(self.space)

    def trial_env(self) -> dict[str, str]:
        """``trial.env`` as a trial gets it: without CUDA_VISIBLE_DEVICES where the executor assigns each trial its
        devices (``executor.gpus``, Ray's ``resources_per_trial.gpu``). The assignment wins, for a command as for a
        function, and the devices a trial records are those it ran on (a command's own value put every trial on
        one device, each recorded on another)."""
        env = dict(self.trial.env) if self.trial is not None else {}
        if self.executor.gpus_per_trial():
            env.pop(DEVICES_VARIABLE, None)
        return env

    def prices(self) -> Prices | None:
        """What each trial is priced at (None without a cost section): the cost section, with the GPUs a trial is
        charged for: ``cost.gpus``, else those a command trial's trial.env names in CUDA_VISIBLE_DEVICES, else the
        executor's share. A command starts with trial.env (but the devices the executor assigns: ``trial_env``); a
        function trial gets all of it but CUDA_VISIBLE_DEVICES (its worker's devices are the executor's), so there
        it is not counted."""
        if self.cost is None:
            return None
        seen = self.trial_env() if self.trial is not None and self.trial.command is not None else {}
        return self.cost.prices(seen, self.executor.gpus_per_trial())

    def to_json(self) -> dict[str, Any]:
        """The spec as stored with the experiment (re-loadable with ``ExperimentSpec.model_validate``)."""
        data = self.model_dump(mode="json", exclude_none=True)
        if self.budget.trials is None:
            data["budget"]["trials"] = None  # "no trial limit" must survive: dropping it would restore the default
        if not self.constraints:
            data.pop("constraints", None)
        if not self.enqueue:
            data.pop("enqueue", None)
        if self.select == SelectConfig():
            data.pop("select", None)  # specs without these sections are stored as before
        if self.storage is not None:
            # no password in the record: the store holding it is the one its reader already reached (nothing opens
            # a store by a recorded spec's storage:), and whoever may read that store need not learn it
            data["storage"] = redact(self.storage)
        return data


def _check_select(spec: ExperimentSpec) -> None:
    """``select`` may only name objectives (weights, lexicographic order)."""
    names = [o.metric for o in spec.objective]
    for key, named in (("weights", list(spec.select.weights)), ("lexicographic", list(spec.select.lexicographic))):
        for metric in named:
            if metric not in names:
                close = closest(metric, names)
                hint = f"did you mean {close!r}? " if close else ""
                raise SpecError(f"select.{key}", f"{metric!r} is not an objective; {hint}objectives: "
                                                 f"{', '.join(names)}")


def check_new_spec(spec: ExperimentSpec) -> None:
    """The checks a spec given anew (a file, a mapping or a spec passed to the Python API) passes and a stored spec
    skips, so that an experiment recorded before them stays readable and resumable."""
    if spec._yaml_faults:
        raise SpecError(*spec._yaml_faults[0])
    check_no_hidden_values(spec)
    check_target_not_the_only_limit(spec)
    if spec.trial is not None:
        spec.trial.check_handed_over()
    spec.search_space.check_names()
    for i, config in enumerate(spec.enqueue):
        check_on_grid(spec.search_space, config, f"enqueue[{i}]")
    check_tag_text(spec.tags)
    check_command_parameter_names(spec)
    check_safe_ranges(spec)
    check_memory_limit(spec.executor)
    check_scheduler_objectives(spec)
    if spec.task is not None:
        check_groups_with_time(spec.task)
        check_features_distinct(spec.task)
        check_time_ordered_folds_unshuffled(spec.task)
        check_task_constraint_metrics(spec)
    check_nested_strategy(spec)
    spec.search_space.check_conditions_can_hold()
    if spec.trial is not None and spec.trial.command is not None:
        check_dollar_placeholders(spec.trial.command, list(spec.space))


def check_target_not_the_only_limit(spec: ExperimentSpec) -> None:
    """Refuse a budget whose only limit is a target: never reached, the run went on for ever. (A new spec's check:
    an experiment recorded with one stays resumable.)

    Raises:
        SpecError: at ``budget.target``, naming the limits to add.
    """
    if spec.budget.target is not None and not spec.budget.ends_without_target(spec.strategy.name):
        raise SpecError("budget.target", "a target may never be reached, so it cannot be the only limit: add "
                        "trials, wall_time, cost or patience")


def check_no_hidden_values(spec: ExperimentSpec) -> None:
    """Refuse the *** that `tunesmith spec` prints for a hidden value, as a trial.env value, the storage URL's
    password, or in a command, a tracking URI or a data path: the printed spec, run again, ran the trial with
    API_TOKEN='***' and connected with *** as the password, without a word.

    Raises:
        SpecError: at ``trial.env.<key>``, ``storage``, ``trial.command``, ``tracking.mlflow.uri`` or
            ``task.data.path``, saying how to get the value back.
    """
    for key, value in (spec.trial.env if spec.trial is not None else {}).items():
        if value == REDACTED or _url_password(value) == REDACTED:
            raise SpecError(f"trial.env.{key}", f"is {REDACTED}, the placeholder `tunesmith spec` prints for a hidden "
                                                "value: put the value back, or print the spec with `tunesmith spec "
                                                "NAME --show-secrets`")
    if spec.storage is not None and _url_password(spec.storage) == REDACTED:
        raise SpecError("storage", f"the password is {REDACTED}, the placeholder `tunesmith spec` prints (the record "
                                   "keeps no password): put the password back, or delete the storage: line and give "
                                   "--storage or TUNESMITH_STORAGE")
    # The texts that are run or connected to: a *** in a command went to the shell unquoted, which globbed it into
    # the folder's file names. Free text (description, tags) may hold one harmlessly, and is not checked.
    executed = {"trial.command": spec.trial.command if spec.trial is not None else None,
                "tracking.mlflow.uri": spec.tracking.mlflow.uri if spec.tracking is not None else None,
                "task.data.path": spec.task.data.path if spec.task is not None else None}
    for field, text in executed.items():
        if text is not None and REDACTED in text:
            raise SpecError(field, f"holds {REDACTED}, the placeholder `tunesmith spec` prints for a hidden value "
                                   f"({quoted(text)}): put the value back, or print the spec with `tunesmith spec "
                                   "NAME --show-secrets`")


def _url_password(text: str) -> str | None:
    try:
        return urllib.parse.urlsplit(text).password if "://" in text else None
    except ValueError:  # (a port that is no number: not a URL whose password anyone reads)
        return None


# A control character (C0, DEL, C1): none is in a tag as typed, and a tag becomes a quota key (`tag:team=vision`), text
# a store keeps; PostgreSQL keeps no NUL, and every run and resume of an experiment tagged with one failed on the store.
_CONTROL_CHARACTER = re.compile(f"[{CONTROL_CHARACTERS}]")


def check_tag_text(tags: Mapping[str, str]) -> None:
    """Refuse a tag key or value holding a control character (a NUL, a newline, an escape).

    Raises:
        SpecError: at ``tags.<key>`` (``tags`` for a key that holds one), naming the character and where.
    """
    for key, value in tags.items():
        if (found := _CONTROL_CHARACTER.search(key)) is not None:
            raise SpecError("tags", f"the key {quoted(key)} holds the control character {found.group()!r} at "
                                    f"position {found.start()}; a tag is plain text: remove it")
        if (found := _CONTROL_CHARACTER.search(value)) is not None:
            raise SpecError(f"tags.{key}", f"holds the control character {found.group()!r} at position "
                                           f"{found.start()} ({quoted(value)}); a tag is plain text: remove it")


# What each built-in placeholder of a command stands for (evaluation.command.render_command).
_BUILTIN_MEANING = {"args": "every active parameter as --name value", "trial_dir": "the trial's own folder",
                    "spec_dir": "the spec's folder", "seed": "the trial's seed", "number": "the trial's number"}
# What sh reads in a word written unquoted, as {args} writes a parameter's name (--name): a separator, a redirection,
# an expansion, a quote, a glob; and the braces of a placeholder.
_SHELL_SPECIAL = frozenset(";&|<>()$`\\\"'*?[]{}")


def check_command_parameter_names(spec: ExperimentSpec) -> None:
    """The names a command trial's parameters may not have (here, where the trial is known to be a command; the
    space refuses only an empty name). A function or task trial gets its parameters as a mapping, where any text is
    a name (``config["learning rate"]``). ``{args}`` passes each parameter as one option, ``--name value``: a name
    holding whitespace was several words (``--x y``), one starting with '-' another option (``----evil``), and a
    name holding what the shell reads (``;``, ``$``, a quote...) was written unquoted (``--a;b``). A parameter
    named as a built-in placeholder (``seed``, ``trial_dir``, ``args``...) took its place without a word:
    ``{seed}`` rendered the parameter, not the trial's seed, ``{trial_dir}`` no longer the trial's folder, and
    ``{args}`` no longer every parameter. Refused in a spec given anew; a recorded experiment resumes as it ran.

    Raises:
        SpecError: at ``space.<name>``, naming the fix.
    """
    if spec.trial is None or spec.trial.command is None:
        return
    for name in spec.space:
        if any(c.isspace() for c in name):
            raise SpecError(f"space.{name}", f"a parameter's name must not hold whitespace ({{args}} would pass it "
                                             f"as --{name}, several words); write {'_'.join(name.split())!r}")
        if name.startswith("-"):
            fixed = name.lstrip("-")
            fix = f"write {fixed!r}" if fixed else "start it with a letter, such as lr"
            raise SpecError(f"space.{name}", f"a parameter's name must not start with '-' ({{args}} would pass it "
                                             f"as --{name}); {fix}")
        if name in BUILTIN_PLACEHOLDERS:
            raise SpecError(f"space.{name}", f"{{{name}}} is a built-in placeholder of trial.command "
                            f"({_BUILTIN_MEANING.get(name, 'set by tunesmith')}), which a parameter named {name!r} "
                            f"would silently replace; rename the parameter, such as {name}_param, and its placeholder")
        special = [c for c in name if c in _SHELL_SPECIAL]
        if special:
            fixed = "".join("_" if c in _SHELL_SPECIAL else c for c in name)
            raise SpecError(f"space.{name}", f"{{args}} writes a parameter's name unquoted (--{name}), and the shell "
                            f"reads {special[0]!r} in it; write {fixed!r}")


MIN_MEMORY_LIMIT = 32 * 2**20
"""The smallest ``executor.memory_limit``: a worker process alone holds about 20 MiB before its trial imports
anything, and the limit counts the worker with its trial. Below it no trial fits, yet only the trials that live
until the first sample (4 a second) were killed: a worker's first trial, slow with its imports, failed for memory
and the quicker ones after it completed with a recorded peak above the limit."""


def check_scheduler_objectives(spec: ExperimentSpec) -> None:
    """A scheduler ranks trials on the first objective's intermediate values: with several objectives it stopped
    trials of the Pareto front (sparse models, behind on accuracy) for being behind on that one alone, recording no
    values for them. Refused in a spec given anew; an experiment recorded with one resumes as it ran."""
    if spec.scheduler.name == "none" or len(spec.objective) < 2:
        return
    first, other = spec.objective[0].metric, spec.objective[1].metric
    raise SpecError("scheduler", f"early stopping ranks trials on one objective ({first}'s intermediate values); "
                                 f"with {len(spec.objective)} objectives it would stop trials of the Pareto front for "
                                 f"being behind on {first} alone, and a stopped trial has no values: remove the "
                                 f"scheduler, or tune {first} alone and bound the others with constraints "
                                 f"(constraints: ['{other} <= ...'])")


def check_memory_limit(ex: Executor) -> None:
    """A ``memory_limit`` no trial can stay under is refused (new specs only: a stored one is warned about, see
    ``executor_warnings``, so its experiment stays resumable). Only where it is enforced: ``inline`` runs no worker
    process and ignores ``memory_limit`` (``executor_warnings`` says so). On Ray, where the limit counts the trial's
    memory above its Ray worker's idle memory, the same floor keeps a spec valid on one executor valid on the other."""
    n = ex.memory_limit
    if ex.kind != "inline" and n is not None and n < MIN_MEMORY_LIMIT:
        fix = f"a size without a unit is bytes: write {n}MiB, 2GiB, ..." if n < 2**20 else "write 512MiB, 2GiB, ..."
        got = f"{n} bytes" if n < 2**20 else f"{n / 2**20:g}MiB"
        why = ("a worker process alone holds about 20 MiB before the trial imports anything" if ex.kind == "process"
               else "as on kind: process, whose worker alone holds about 20 MiB; on Ray the limit counts what the "
                    "trial adds to its Ray worker")
        raise SpecError("executor.memory_limit", f"must be at least 32MiB ({why}); got {got}; {fix}")


def check_nested_strategy(spec: ExperimentSpec) -> None:
    """``task.nested.strategy`` runs each inner search on the spec's objectives (see ``tasks.nested``): a name no
    strategy has, or one that cannot take them (``bo`` with two objectives), is refused here, not after the run."""
    if spec.task is None or spec.task.nested is None:
        return
    from tunesmith.strategy import decide

    nested = spec.task.nested
    if nested.strategy not in STRATEGIES:
        close = closest(nested.strategy, STRATEGIES)
        hint = f"did you mean {close!r}? " if close else ""
        raise SpecError("task.nested.strategy", f"unknown strategy {nested.strategy!r}; {hint}choose one of "
                                                f"{', '.join(STRATEGIES)}")
    try:
        decide(nested.strategy, {}, spec.search_space, nested.trials, len(spec.objective), 1)
    except SpecError as e:
        raise SpecError("task.nested.strategy", e.message) from None


def check_safe_ranges(spec: ExperimentSpec) -> None:
    """``promotion.safe_ranges`` may only name parameters: a typo'd name fenced nothing (found at promote, after the
    whole run). Checked on a spec file as it is loaded, not on stored specs: an experiment recorded before this
    check stays readable (its promote fails that gate instead)."""
    if spec.promotion is None:
        return
    names = list(spec.space)
    for name in spec.promotion.safe_ranges:
        if name not in names:
            close = closest(name, names)
            hint = f"did you mean {close!r}? " if close else ""
            raise SpecError(f"promotion.safe_ranges.{name}", f"names no parameter of the space; {hint}parameters: "
                            f"{', '.join(names)}")


# a task's wall-clock measurements: they vary from run to run (machine load, caches), so a re-run is not expected to
# give them again (`tunesmith reproduce` does not compare them); the model's size is deterministic
TASK_TIMINGS = ("latency_p50_ms", "latency_p95_ms", "latency_batch_ms", "fit_time_s")


def check_task_constraint_metrics(spec: ExperimentSpec) -> None:
    """A task's trials record metrics known before any runs: a constraint naming another one (the README's own
    example said ``p95_latency_ms`` for ``latency_p95_ms``) left every trial infeasible, nothing selected and no
    holdout scored, at exit 0. A function or command trial reports what it likes: its names are warned about as
    the run goes (:mod:`tunesmith.unreported_metrics`)."""
    from tunesmith.cost import COST_METRICS_ADDED, executor_added

    assert spec.task is not None
    known = tuple(dict.fromkeys((*spec.task.recorded_metrics, *(o.metric for o in spec.objective))))
    for i, constraint in enumerate(spec.constraints):
        if constraint.metric in known or executor_added(constraint.metric):
            continue
        close = closest(constraint.metric, [*known, *sorted(COST_METRICS_ADDED)])
        hint = f"did you mean {close!r}? " if close else ""
        raise SpecError(f"constraints.{i}", f"{constraint.metric!r} is no metric this task records; {hint}a task "
                                            f"records {', '.join(n for n in known if not n.startswith('fold_'))}, "
                                            "fold_<i>, and cpu_s, peak_memory_mb (and cost with cost: prices)"
                                            + _one_scorer_note(spec, constraint.metric, "constrain"))


def _one_scorer_note(spec: ExperimentSpec, metric: str, verb: str) -> str:
    """What to do about a quality metric a task does not record: it records one scorer, so neither a further
    objective nor a constraint can name another (each message used to send the user to the other)."""
    from sklearn.metrics import get_scorer_names  # only on the error path

    assert spec.task is not None
    if metric not in get_scorer_names():
        return ""
    return (f"; a task scores its folds with one scorer, task.scoring ({spec.task.metric_name}): to {verb} "
            f"{metric} too, write a trial function (trial: {{function: module:name}}) that computes each metric on "
            "its folds and returns them all")


def _check_task_extra_objectives(spec: ExperimentSpec) -> None:
    """A task's first objective is its scoring; further ones may be what it measures (latency, size)."""
    assert spec.task is not None
    for i, o in enumerate(spec.objective[1:], start=1):
        allowed = (*TASK_MEASURED, "fit_time_s") if spec.task.latency is not None else ("fit_time_s",)
        if o.metric not in allowed:
            # a constraint may name what the task records (roc_auc_std); another scorer it does not record
            recorded = o.metric in spec.task.recorded_metrics
            raise SpecError(f"objective.{i}", f"a task's further objectives are what it measures: one of "
                            f"{', '.join(allowed)}; got {o.metric!r}"
                            + (" (or put it in constraints)" if recorded
                               else _one_scorer_note(spec, o.metric, "optimise")))
