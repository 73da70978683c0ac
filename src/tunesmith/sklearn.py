"""``TunedSearchCV``: a drop-in for GridSearchCV / RandomizedSearchCV that runs on the tunesmith engine.

    from scipy.stats import loguniform
    from tunesmith.sklearn import TunedSearchCV
    search = TunedSearchCV(LogisticRegression(max_iter=500), {"C": loguniform(1e-3, 1e3), "penalty": ["l2", None]},
                           n_iter=30, strategy="tpe", random_state=0).fit(X, y)
    search.best_params_, search.best_score_, search.predict(X_new)

The search is a real tunesmith experiment (``tunesmith.run``): the strategy proposes configurations, each trial
cross-validates one, every state change is recorded in the store. Reports go to the strategy fold by fold, so a
``scheduler`` can stop a poor configuration after its first folds.
"""

from __future__ import annotations

import contextvars
import sys
import numbers
import os
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, check_random_state, indexable

from tunesmith.events import RunListener
from tunesmith.executor.trial_output import current_stream
from tunesmith.records import ParamValue, TrialRecord, TrialState
from tunesmith.spec.model import SKLEARN_SEARCH_TRIAL
from tunesmith.space.domains import Categorical, Float, Int, _Domain
from tunesmith.suggestions import closest
from tunesmith.warning_kinds import GridLargerThanBudget

__all__ = ["TunedSearchCV", "to_space"]

_OBJECTIVE = SKLEARN_SEARCH_TRIAL


@dataclass
class _Search:
    """One ``fit``'s state, for the objective: the estimator and data cannot travel as JSON."""

    estimator: Any
    X: Any
    y: Any
    groups: Any
    splits: list[tuple[np.ndarray, np.ndarray]]
    scorer: Any                  # one scorer, or a dict name -> scorer (multi-metric)
    names: list[str] | None      # the metrics' names: ["score"] for one scorer, as cv_results_ names them; None
                                 # for a callable until its first scores say (one number, or a dict of them)
    refit: Any                   # TunedSearchCV's refit: a str names the metric to optimise among several
    fit_params: dict[str, Any]
    space: _Space                # how a configuration reads back as the estimator's parameters
    error_score: Any
    return_train_score: bool
    n_jobs: int | None           # None or 1: the folds one by one (a scheduler can stop after any); else at once
    pre_dispatch: Any
    verbose: int
    out: Any                     # verbose's stream: fit()'s standard output (a trial's own goes to its log), as
    #                              this thread has it (not a proxy that another thread's inline trial put in)
    errors: list[BaseException] = field(default_factory=list)


# The inline executor runs every trial in the thread that called tunesmith.run, so a context variable set in
# fit() is what the objective sees; concurrent fits in other threads (or asyncio tasks) each see their own.
_ACTIVE: contextvars.ContextVar[_Search] = contextvars.ContextVar("tunesmith_sklearn_search")


def _objective(config: dict[str, ParamValue], trial: Any) -> dict[str, float]:
    """The trial function of every TunedSearchCV experiment: cross-validate one configuration."""
    from sklearn.model_selection import cross_validate

    from tunesmith.evaluation.context import TrialPruned

    s = _ACTIVE.get()
    params = s.space.decode(config)
    scores: dict[str, list[float]] = {}
    out: dict[str, float] = {}
    fit_times, score_times = [], []
    one_by_one = s.n_jobs in (None, 1)
    # n_jobs: the folds of this configuration fit at once in joblib workers (cross_validate's n_jobs); a scheduler
    # still sees them fold by fold, but can no longer spare the later folds' fits.
    batches = [[split] for split in s.splits] if one_by_one else [s.splits]
    i = 0
    for batch in batches:
        # the values cloned, as scikit-learn's _fit_and_score does: an estimator among them (a pipeline step
        # searched) is the user's own object, which set_params("clf__C") would otherwise change in place
        est = clone(s.estimator).set_params(**clone(params, safe=False))
        try:
            r = cross_validate(est, s.X, s.y, groups=s.groups, cv=batch, scoring=s.scorer, params=s.fit_params,
                               error_score="raise", return_train_score=s.return_train_score,
                               n_jobs=None if one_by_one else s.n_jobs, pre_dispatch=s.pre_dispatch)
        except Exception as e:
            error = _named_by_the_estimator(e)
            s.errors.append(error)
            raise error from None
        if s.names is None:  # a callable scoring: its first scores say whether it returns one number or a dict
            s.names = [key[len("test_"):] for key in r if key.startswith("test_")]
        objective = _objective_metric(s.names, s.refit)
        for j in range(len(batch)):
            for name in s.names:  # cross_validate says test_score for one scorer, test_<name> for several
                scores.setdefault(name, []).append(float(r[f"test_{name}"][j]))
                out[f"split{i}_test_{name}"] = scores[name][-1]
                if s.return_train_score:
                    out[f"split{i}_train_{name}"] = float(r[f"train_{name}"][j])
            fit_times.append(float(r["fit_time"][j]))
            score_times.append(float(r["score_time"][j]))
            if s.verbose >= 3:
                print(f"[CV {i + 1}/{len(s.splits)}] trial {trial.number} {params}; "
                      f"{objective}={scores[objective][-1]:.3f}", file=s.out, flush=True)
            trial.report(i, float(np.mean(scores[objective])))
            i += 1
            if trial.should_prune():
                if s.verbose >= 2:
                    print(f"[trial {trial.number}] PRUNED after {i} of {len(s.splits)} folds {params}", file=s.out,
                          flush=True)
                raise TrialPruned()
    if s.verbose >= 2:
        print(f"[trial {trial.number}] END {params}; mean {objective}={np.mean(scores[objective]):.3f} "
              f"fit time={np.sum(fit_times):.2f}s", file=s.out, flush=True)
    for name in scores:
        out[f"mean_test_{name}"], out[f"std_test_{name}"] = float(np.mean(scores[name])), float(np.std(scores[name]))
    out.update(score=float(np.mean(scores[objective])),
               mean_fit_time=float(np.mean(fit_times)), std_fit_time=float(np.std(fit_times)),
               mean_score_time=float(np.mean(score_times)), std_score_time=float(np.std(score_times)))
    return out


def _named_by_the_estimator(error: BaseException) -> BaseException:
    """The estimator's own error, as GridSearchCV raises it: scikit-learn's ``validate_params`` around
    cross_validate re-words an invalid-parameter error raised inside it as cross_validate's ("The 'C' parameter of
    cross_validate must be ..."), keeping the estimator's own one (naming LogisticRegression) as its cause."""
    from sklearn.utils._param_validation import InvalidParameterError

    while isinstance(error, InvalidParameterError) and isinstance(error.__cause__, InvalidParameterError):
        error = error.__cause__
    return error


def _grid_size(domains: Mapping[str, _Domain]) -> int | None:
    """The number of points of a space of lists of values (a GridSearchCV grid); None where it is not one (a
    distribution, a range, a conditional parameter)."""
    size = 1
    for domain in domains.values():
        if not isinstance(domain, Categorical) or domain.when is not None:
            return None
        size *= len(domain.choices)
    return size


def _scorers(estimator: Any, scoring: Any) -> tuple[Any, list[str] | None]:
    """(scorer, names) as GridSearchCV reads ``scoring``: one name or None -> one scorer named "score"; a list,
    tuple or set of names, or a dict name -> scorer name or callable -> a dict of scorers; a callable -> itself,
    with names None: it may return one number ("score") or a dict name -> number (several metrics), which only
    its first scores say, as GridSearchCV finds out. Validated by scikit-learn's public check_scoring, the check
    GridSearchCV makes, so the errors are its."""
    from sklearn.metrics import check_scoring

    if isinstance(scoring, list | tuple | set | dict):
        check_scoring(estimator, scoring)  # the whole: no names, repeated names, a non-str key, ...
        names = list(scoring)
        values = scoring if isinstance(scoring, dict) else {name: name for name in names}
        return {name: check_scoring(estimator, values[name]) for name in names}, names
    if callable(scoring):
        return check_scoring(estimator, scoring), None
    return check_scoring(estimator, scoring), ["score"]


def _objective_metric(names: list[str], refit: Any) -> str:
    """The metric the search optimises: the one ``refit`` names, else the first (refit False or a callable with
    several metrics, as documented; "score" with one)."""
    return refit if isinstance(refit, str) and refit in names else names[0]


def _check_refit_names_a_metric(refit: Any, names: list[str]) -> None:
    if refit is not False and not callable(refit) and not (isinstance(refit, str) and refit in names):
        raise ValueError(  # scikit-learn's words (BaseSearchCV._check_refit_for_multimetric)
            "For multi-metric scoring, the parameter refit must be set to a scorer key or a callable to refit an "
            "estimator with the best parameter setting on the whole data and make the best_* attributes "
            f"available for that metric. If this is not needed, refit should be set to False explicitly. "
            f"{refit!r} was passed.")


def _rank(means: np.ndarray) -> np.ndarray:
    """scikit-learn's ranking of mean test scores: 1 the best, ties share the lowest rank, NaN ranked last."""
    from scipy.stats import rankdata

    if np.isnan(means).all():
        return np.ones_like(means, dtype=np.int32)
    filled = np.where(np.isnan(means), np.nanmin(means) - 1, means)
    return np.asarray(rankdata(-filled, method="min"), dtype=np.int32)


def _param_columns(params: list[dict[str, Any]]) -> dict[str, np.ma.MaskedArray]:
    """``cv_results_``'s ``param_<name>`` columns, laid out as scikit-learn (>= 1.5) lays them out: one per name, in
    the order the candidates first name them, masked where a candidate has no such parameter (its grid does not
    name it), of the dtype numpy gives the values (float64, int64, bool: ``np.log10(cv_results_["param_C"])``
    works) unless they are strings, sequences or of mixed kinds (object)."""
    given: dict[str, dict[int, Any]] = {}
    for i, p in enumerate(params):
        for name, value in p.items():
            given.setdefault(name, {})[i] = value
    columns = {}
    for name, values in given.items():
        try:
            inferred = np.array(list(values.values()))
        except ValueError:  # sequences of different lengths
            dtype = np.dtype(object)
        else:  # as scikit-learn: strings, and values that are sequences (a 2-d array), stay Python objects
            dtype = inferred.dtype if inferred.dtype.kind != "U" and inferred.ndim == 1 else np.dtype(object)
        column = np.ma.MaskedArray(np.empty(len(params), dtype=dtype), mask=True)
        for i, value in values.items():
            column[i] = value  # (unmasks it)
        columns[f"param_{name}"] = column
    return columns


def _scalar(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _check_parameter_names(estimator: Any, names: Mapping[str, Any], decoders: Mapping[str, list[Any]],
                            where: str) -> None:
    """A name the estimator does not take would fail every configuration at fit time, after the whole search; it
    is refused before the first fit, as scikit-learn's set_params words it, with a did-you-mean.

    A name inside a searched step (``reduce_dim__n_components`` beside ``reduce_dim: [PCA(), NMF()]``, the
    "swap a pipeline step" search of scikit-learn's docs) belongs to the step's values, not to the estimator as
    given (whose step may be "passthrough"): it is checked against them, and passes if one of them takes it.
    """
    for name in names:
        step = next((p for p in _prefixes(name) if p in names), None)
        if step is None:
            known, owner = list(estimator.get_params(deep=True)), f"estimator {type(estimator).__name__}"
            bad = name
        else:
            values = [v for v in decoders.get(step, []) if hasattr(v, "get_params")]
            if not values:  # no estimator among the step's values: scikit-learn says what it says at fit time
                continue
            bad = name[len(step) + 2:]
            known = sorted({k for v in values for k in v.get_params(deep=True)})
            owner = f"{', '.join(sorted({type(v).__name__ for v in values}))} (the values of {step!r})"
        if bad not in known:
            close = closest(bad, known)
            hint = f"did you mean {close!r}? " if close else ""
            raise ValueError(f"{where}[{name!r}]: invalid parameter {bad!r} for {owner}; "
                             f"{hint}valid parameters: {', '.join(sorted(known))}")


def _prefixes(name: str) -> list[str]:
    """``a__b__c`` -> ``["a__b", "a"]``: the steps a nested name lies in, innermost first."""
    parts = name.split("__")
    return ["__".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]


# The hidden categorical that picks one of several grids. No estimator parameter can have this name (scikit-learn
# splits parameter names at "__", and an empty step name is none), so it never meets one of the user's.
_GRID = "__grid"


@dataclass(frozen=True)
class _Space:
    """The space tunesmith searches, and how a configuration of it reads back as the estimator's parameters."""

    domains: dict[str, _Domain]
    decoders: dict[str, list[Any]]  # space name -> the values a by-index parameter stands for
    names: dict[str, str]  # space name -> the estimator's parameter (``C@grid1`` -> ``C``); absent: the same
    grids: list[tuple[str, dict[str, _Domain], dict[str, list[Any]]]]  # (where, domains, decoders), each as given
    grid_size: int | None  # the points of a grid of lists (of all the grids together); None where it is not one

    def decode(self, config: Mapping[str, ParamValue]) -> dict[str, Any]:
        """A configuration of the space as the estimator's parameters: no hidden grid choice, names as given."""
        return {self.names.get(k, k): self.decoders[k][v] if k in self.decoders else v  # type: ignore[index]
                for k, v in config.items() if k != _GRID}


def to_space(param_distributions: Any) -> tuple[dict[str, _Domain], dict[str, list[Any]]]:
    """A tunesmith space from GridSearchCV / RandomizedSearchCV style parameters.

    Accepts tunesmith domains as they are; a list of values becomes a Categorical (values that are not plain
    scalars, such as estimators or tuples, are searched by their index and decoded back); scipy.stats
    ``loguniform(a, b)`` becomes ``Float(a, b, log=True)``, ``randint(a, b)`` ``Int(a, b - 1)``,
    ``uniform(loc, scale)`` ``Float(loc, loc + scale)``.

    A list of several grids becomes a conditional space: a hidden categorical ``__grid`` (0, 1, ...: which grid)
    and each parameter active, through ``when``, in the grids that name it. A parameter that two grids give
    different values (or distributions) is one space parameter per different domain, ``C`` and ``C@grid1``.

    Returns:
        (domains, decoders): ``decoders[name][i]`` is the value a by-index parameter stands for.

    Raises:
        ValueError: an empty list or mapping, a distribution with no tunesmith equivalent, a domain with ``when``
            inside a list of several grids.
    """
    space = _space_of(param_distributions, "param_distributions")
    return space.domains, space.decoders


def _space_of(given: Any, argument: str) -> _Space:
    """The space of ``param_distributions`` / ``param_grid`` (``argument``, as errors name it): one grid, or a list
    of grids (GridSearchCV's and RandomizedSearchCV's list of dicts)."""
    if isinstance(given, Sequence) and not isinstance(given, str | bytes):
        if not given:
            raise ValueError(f"{argument}: the list of grids is empty; give a mapping name -> values, or a list of "
                             "them")
        if len(given) > 1:
            # an empty grid among several is one candidate, the estimator as given (GridSearchCV's {}): the hidden
            # grid choice picks it, and no parameter is active there
            grids = [(f"{argument}[{i}]", *_one_grid(grid, f"{argument}[{i}]", empty=True))
                     for i, grid in enumerate(given)]
            return _several(grids, argument)
        given = given[0]
    domains, decoders = _one_grid(given, argument)
    grid_size = _grid_size(domains)
    if grid_size is not None:  # walked in ParameterGrid's order (names sorted): GridSearchCV's rows and tie-breaks
        domains = dict(sorted(domains.items()))
    return _Space(domains, decoders, {}, [(argument, domains, decoders)], grid_size)


def _several(grids: list[tuple[str, dict[str, _Domain], dict[str, list[Any]]]], argument: str) -> _Space:
    """One conditional space for several grids: a hidden categorical picks the grid, and each parameter is active
    in the grids that name it, so every configuration is a point of one of them (never a mix of two).

    A parameter the grids give different values is one space parameter per different domain (each active in its
    own grids), which the configurations decode back to the parameter's own name. The names are declared sorted
    after the hidden one, so a walk visits grid after grid, each as ParameterGrid does (names sorted).
    """
    # space name -> (the estimator's parameter, its domain, its decoder, the grids that give it this domain)
    entries: dict[str, tuple[str, _Domain, list[Any] | None, list[int]]] = {}
    for i, (where, domains, decoders) in enumerate(grids):
        for name, domain in domains.items():
            if domain.when is not None:
                raise ValueError(f"{where}[{name!r}]: a domain with `when` inside a list of several grids; each grid "
                                 f"is a condition of its own: drop `when` and give {name!r} only in the grids "
                                 f"where it applies")
            decoder = decoders.get(name)
            key = next((k for k, (n, d, dec, _) in entries.items()
                        if n == name and _same_domain(d, dec, domain, decoder)), None)
            if key is None:
                key = name if name not in entries else f"{name}@grid{i}"
                entries[key] = (name, domain, decoder, [])
            entries[key][3].append(i)
    space: dict[str, _Domain] = {_GRID: Categorical(list(range(len(grids))))}
    for key in sorted(entries, key=lambda k: (entries[k][0], entries[k][3][0])):
        name, domain, _, in_grids = entries[key]
        when = None if len(in_grids) == len(grids) else {_GRID: in_grids if len(in_grids) > 1 else in_grids[0]}
        space[key] = domain.model_copy(update={"when": when})
    sizes = [_grid_size(domains) for _, domains, _ in grids]
    return _Space(space, {k: e[2] for k, e in entries.items() if e[2] is not None},
                  {k: e[0] for k, e in entries.items() if k != e[0]}, grids,
                  None if None in sizes else sum(s for s in sizes if s is not None))


def _same_domain(a: _Domain, a_values: list[Any] | None, b: _Domain, b_values: list[Any] | None) -> bool:
    """Whether two grids give a parameter the same domain: the same type and values (1 and 1.0, or True and 1, are
    not the same choice) and, for by-index values (estimators, tuples), the very same objects."""
    import json

    if json.dumps(a.model_dump(), sort_keys=True) != json.dumps(b.model_dump(), sort_keys=True):
        return False
    if a_values is None or b_values is None:
        return a_values is b_values
    return len(a_values) == len(b_values) and all(v is w for v, w in zip(a_values, b_values, strict=True))


def _one_grid(grid: Any, where: str, empty: bool = False) -> tuple[dict[str, _Domain], dict[str, list[Any]]]:
    """(domains, decoders) of one mapping name -> values / distribution / domain; ``where`` names it in errors.
    ``empty``: an empty mapping is allowed (one grid of several: the estimator's defaults as one candidate)."""
    if not isinstance(grid, Mapping) or not (grid or empty):
        raise ValueError(f"{where} must be a non-empty mapping of name -> values; got {grid!r}")
    domains: dict[str, _Domain] = {}
    decoders: dict[str, list[Any]] = {}
    for name, spec in grid.items():
        spec = _from_optuna(spec)
        if isinstance(spec, _Domain):
            domains[name] = spec
        elif hasattr(spec, "rvs") and hasattr(spec, "dist"):
            domains[name] = _from_scipy(f"{where}[{name!r}]", spec)
        elif isinstance(spec, Sequence | np.ndarray) and not isinstance(spec, str | bytes):
            values = [_scalar(v) for v in spec]
            if not values:
                raise ValueError(f"{where}[{name!r}]: the list of values is empty")
            plain = all(v is None or isinstance(v, bool | int | float | str) for v in values)
            distinct = plain and all(sum(1 for w in values if w == v and type(w) is type(v)) == 1 for v in values)
            if distinct:
                domains[name] = Categorical(values)
            else:
                domains[name] = Categorical(list(range(len(values))))
                decoders[name] = values
        else:
            raise ValueError(f"{where}[{name!r}]: expected a list of values, a scipy.stats distribution, a "
                             f"tunesmith domain (tunesmith.Float(...)) or an Optuna distribution; got {spec!r}")
    return domains, decoders


def _from_optuna(spec: Any) -> Any:
    """An Optuna distribution (an OptunaSearchCV user's param_distributions) as what it is here: a Float or an Int
    of the same fields, a categorical's choices as a list of values; anything else as it is. Optuna's classes are
    taken where the caller's import put them: no optuna loaded, no such object."""
    distributions = sys.modules.get("optuna.distributions")
    if distributions is None:
        return spec
    if isinstance(spec, distributions.FloatDistribution):
        return Float(spec.low, spec.high, log=spec.log, step=spec.step)
    if isinstance(spec, distributions.IntDistribution):
        return Int(spec.low, spec.high, log=spec.log, step=spec.step)
    if isinstance(spec, distributions.CategoricalDistribution):
        return list(spec.choices)
    return spec


def _from_scipy(where: str, dist: Any) -> _Domain:
    kind = dist.dist.name
    low, high = (float(x) for x in dist.support())
    if kind in ("loguniform", "reciprocal"):
        return Float(low, high, log=True)
    if kind == "randint":
        return Int(int(low), int(high))
    if kind == "uniform":
        return Float(low, high)
    raise ValueError(f"{where}: scipy.stats.{kind} has no tunesmith equivalent; use loguniform, randint, uniform, "
                     "a list of values or a tunesmith domain")


def _estimator_has(attr: str) -> Any:
    def check(self: TunedSearchCV) -> bool:
        est = self.best_estimator_ if hasattr(self, "best_estimator_") else self.estimator
        getattr(est, attr)  # raises AttributeError, which available_if turns into "not available"
        return True

    return check


def _delegated(method: str) -> Any:
    """``method`` of the refit best estimator, offered only when the estimator has it (as BaseSearchCV does)."""

    def call(self: TunedSearchCV, X: Any) -> Any:
        self._check_refit(method)
        return getattr(self.best_estimator_, method)(X)

    call.__name__ = call.__qualname__ = method
    call.__doc__ = f"``{method}`` of the best estimator, refit on the whole data."
    return available_if(_estimator_has(method))(call)


class TunedSearchCV(MetaEstimatorMixin, BaseEstimator):
    """Hyperparameter search over an estimator's parameters, run as a tunesmith experiment.

    Why the inline executor: the estimator and the data are Python objects, and a tunesmith trial job crosses
    to a worker process as JSON (never pickle), so they cannot travel to one. Trials therefore run in the calling
    process, one at a time: the objective, a module-level function of this module, finds this fit's estimator,
    data, folds and scorer in a per-fit context variable (so concurrent searches in different threads do not mix).
    For parallel, isolated trials use a spec with a ``task:`` section, which workers load from the data's path.

    Args:
        estimator: the estimator (or pipeline) to tune; cloned for every fit.
        param_distributions: name -> list of values (GridSearchCV style), scipy.stats distribution
            (loguniform, randint, uniform) or tunesmith domain (``tunesmith.Float(1e-3, 1e3, log=True)``); or a
            list of such grids, as GridSearchCV and RandomizedSearchCV take: every configuration is a point of one
            of them (a hidden categorical ``__grid`` in the experiment's records picks the grid; a parameter that
            grids give different values is recorded as ``C``, ``C@grid1``, ...), and ``cv_results_`` masks
            ``param_<name>`` where the configuration's grid has no ``name``, as scikit-learn does. An empty grid
            ``{}`` in the list is one candidate, the estimator as given (its ``params`` ``{}``), as in GridSearchCV.
        param_grid: GridSearchCV's name for the same argument: give one of the two. What is searched, and how,
            follows from the values, ``n_iter`` and ``strategy`` alike under either name.
        n_iter: trials to run (a grid strategy stops earlier when its grid is exhausted). None (the default): the
            whole grid (of a list of grids: all of them) where every parameter is a list of values and
            ``strategy`` is ``auto`` or ``grid`` (as GridSearchCV: the grid is walked, grid after grid, its names
            sorted as ParameterGrid sorts them, so the rows of ``cv_results_`` and the pick among tied scores match
            GridSearchCV's), else 10 (as RandomizedSearchCV; ``random``, ``tpe``, ... draw, and may draw a point
            twice). An ``n_iter`` smaller than such a grid warns once.
        scoring: a scikit-learn scorer name or callable; None: the estimator's ``score``. Several metrics, as in
            GridSearchCV: a list of scorer names, a dict name -> scorer name or callable ``(estimator, X, y) ->
            float``, or a callable returning a dict name -> score; ``cv_results_`` then has ``mean_test_<name>``,
            ``rank_test_<name>``, ... for each, and ``refit`` names the one the search optimises and ``best_*``
            report (the first one is optimised under ``refit=False``).
        cv: as in GridSearchCV (an int, a splitter, an iterable of splits); None: 5 folds, stratified for
            classifiers. The folds are the same for every trial.
        refit: refit the best configuration on all of ``X`` (``best_estimator_``): True, or with several metrics
            the name of the one that picks it; False: no refit (with several metrics, no ``best_*`` either); a
            callable: ``refit(cv_results_)`` returns ``best_index_`` (no ``best_score_``).
        strategy: a tunesmith strategy: ``auto``, ``random``, ``grid``, ``tpe``, ``qmc``, ``cmaes``, ``gp``.
        scheduler: a tunesmith scheduler (``"median"``, ``{"name": "asha", ...}``): stops configurations whose
            first folds are poor; None: every configuration runs every fold. A stopped configuration's test scores
            are NaN in ``cv_results_`` (it ranks last, as scikit-learn ranks NaN) and it is never ``best_*``.
        random_state: the experiment's seed (an int); None: a fresh one.
        storage: a SQLAlchemy URL to keep the experiment in; None: a temporary SQLite store, removed after fit.
        name: the experiment's name; None: a fresh unique name per fit. Every fit records a new experiment (an
            estimator can be fitted again, and cloned, as in nested cross-validation): the first one under
            ``name``, a later one under ``name-2``, ``name-3``, ... where the name is taken; ``experiment_name_``
            says which.
        error_score: the score of a configuration whose fit fails; not of one the ``scheduler`` stopped (NaN).
            ``"raise"``: the first failed fit stops the search and its error is raised, as GridSearchCV raises it
            (the experiment is recorded ``failed``, with the trials that ran).
        return_train_score: also record training scores in ``cv_results_``.
        n_jobs: None or 1: the folds of a configuration fit one after another; else (``-1``: every CPU) they fit
            at once in scikit-learn's joblib workers (``cross_validate``'s ``n_jobs``). Trials (configurations)
            run one at a time either way (see above why); a ``scheduler`` then still stops a configuration on its
            first folds' scores, but cannot spare their fits.
        pre_dispatch: as in GridSearchCV, for those joblib workers.
        verbose: 0: quiet; >= 1: the number of fits to run; >= 2: a line per configuration (its mean score);
            >= 3: a line per fold (its score). Printed on standard output, as GridSearchCV does.

    Attributes:
        cv_results_, best_index_, best_params_, best_score_, best_estimator_, refit_time_, scorer_, n_splits_,
        multimetric_, experiment_name_, trials_ (tunesmith's TrialRecords), classes_,
        n_features_in_.
    """

    # Learned in fit (scikit-learn's convention: trailing underscore), declared here for type checkers.
    best_estimator_: Any
    best_params_: dict[str, Any]
    best_score_: float
    best_index_: int
    scorer_: Any
    cv_results_: dict[str, Any]
    multimetric_: bool
    n_splits_: int
    refit_time_: float
    experiment_name_: str
    trials_: list[TrialRecord]
    feature_names_in_: np.ndarray

    def __init__(self, estimator: Any, param_distributions: Any = None, *, param_grid: Any = None,
                 n_iter: int | None = None, scoring: Any = None,
                 n_jobs: int | None = None, cv: Any = None,
                 refit: bool | str | Callable[[dict[str, Any]], int] = True, strategy: str = "auto",
                 scheduler: Any = None, random_state: int | None = None, storage: str | None = None,
                 name: str | None = None, verbose: int = 0, pre_dispatch: int | str = "2*n_jobs",
                 error_score: Any = np.nan, return_train_score: bool = False) -> None:
        self.estimator = estimator
        self.param_distributions = param_distributions
        self.param_grid = param_grid
        self.n_iter = n_iter
        self.scoring = scoring
        self.cv = cv
        self.refit = refit
        self.strategy = strategy
        self.scheduler = scheduler
        self.random_state = random_state
        self.storage = storage
        self.name = name
        self.error_score = error_score
        self.return_train_score = return_train_score
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.pre_dispatch = pre_dispatch

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import get_tags

        tags = super().__sklearn_tags__()
        sub = get_tags(self.estimator)
        tags.estimator_type = sub.estimator_type
        tags.classifier_tags = sub.classifier_tags
        tags.regressor_tags = sub.regressor_tags
        tags.input_tags.pairwise = sub.input_tags.pairwise
        tags.input_tags.sparse = sub.input_tags.sparse
        tags.input_tags.allow_nan = sub.input_tags.allow_nan  # the data goes to the estimator as it is
        return tags

    @property
    def _estimator_type(self) -> Any:
        return getattr(self.estimator, "_estimator_type", None)

    # -- fit -------------------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, *, groups: Any = None, **fit_params: Any) -> TunedSearchCV:
        """Run the search (a tunesmith experiment), then refit the best configuration on all of X.

        Raises:
            KeyboardInterrupt: Ctrl-C during the search (as GridSearchCV), once the store has recorded what ran.
        """
        from sklearn.exceptions import FitFailedWarning
        from sklearn.model_selection import check_cv

        if self.n_iter is not None and (isinstance(self.n_iter, bool) or not isinstance(self.n_iter, numbers.Integral)
                                        or self.n_iter < 1):
            raise ValueError(f"n_iter must be an int >= 1 or None (the whole grid); got {self.n_iter!r}")
        if self.n_jobs is not None and (isinstance(self.n_jobs, bool) or not isinstance(self.n_jobs, numbers.Integral)
                                        or self.n_jobs == 0):
            raise ValueError(f"n_jobs must be None or a nonzero int (-1: every CPU); got {self.n_jobs!r}")
        if not isinstance(self.verbose, numbers.Integral) or self.verbose < 0:
            raise ValueError(f"verbose must be an int >= 0 (or a bool); got {self.verbose!r}")
        if isinstance(self.pre_dispatch, bool) or not isinstance(self.pre_dispatch, numbers.Integral | str):
            raise ValueError(f"pre_dispatch must be an int or a str such as '2*n_jobs'; got {self.pre_dispatch!r}")
        if not (self.error_score == "raise" or isinstance(self.error_score, numbers.Number)):
            raise ValueError(f"error_score must be 'raise' or a number; got {self.error_score!r}")
        scorer, names = _scorers(self.estimator, self.scoring)
        if isinstance(scorer, dict):
            _check_refit_names_a_metric(self.refit, list(scorer))
        X, y, groups = indexable(X, y, groups)
        space = _space_of(*self._parameters_to_search())
        for where, domains, decoders in space.grids:
            _check_parameter_names(self.estimator, domains, decoders, where)
        n_trials, strategy = self._trials_and_strategy(space.grid_size)
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        splits = [(np.asarray(tr), np.asarray(te)) for tr, te in cv.split(X, y, groups)]
        seed = self.random_state
        if seed is not None and not isinstance(seed, numbers.Integral):
            seed = int(check_random_state(seed).randint(2**31))  # a RandomState, as scikit-learn takes, draws one
        state = _Search(clone(self.estimator), X, y, groups, splits, scorer, names, self.refit, dict(fit_params),
                        space, self.error_score, self.return_train_score, self.n_jobs, self.pre_dispatch,
                        int(self.verbose), current_stream(sys.stdout))
        if self.verbose >= 1:
            print(f"Fitting {len(splits)} folds for each of {n_trials} candidates, totalling "
                  f"{len(splits) * n_trials} fits", flush=True)
        with tempfile.TemporaryDirectory(prefix="tunesmith-search-") as tmp:
            spec = {
                "objective": {"metric": "score", "direction": "maximize"},
                "space": space.domains,
                "strategy": strategy,
                # "raise": the first failed fit stops the search, as GridSearchCV raises at it (the budget's own
                # failure rule, so the run stops as failed with its trials recorded, not at the end of the budget)
                "budget": {"trials": n_trials, **({"max_failure_rate": 0.0, "failure_rate_min_trials": 1}
                                                  if self.error_score == "raise" else {})},
                "executor": {"kind": "inline", "retries": 0},
                "trial": _OBJECTIVE,
                "seed": seed,
                # kept with the store: its trials' logs (a failed fit's whole traceback) in .tunesmith/NAME, as a run's
                **({} if self.storage else {"workdir": tmp}),
                # the fits run in the caller's folder, as GridSearchCV's (an inline trial runs in its spec's folder)
                "base_dir": os.getcwd(),
            }
            if self.scheduler is not None:
                spec["scheduler"] = self.scheduler
            token = _ACTIVE.set(state)
            try:
                result, name = self._run(spec, self.storage or f"sqlite:///{tmp}/tunesmith.db")
            finally:
                _ACTIVE.reset(token)
        if (result.stop_reason or "").startswith("interrupted"):
            # Ctrl-C (or SIGTERM): tunesmith.run recorded what ran and stopped the run as interrupted; GridSearchCV
            # lets the KeyboardInterrupt through, so fit does too instead of refitting the best of a partial search.
            raise KeyboardInterrupt(f"TunedSearchCV.fit: interrupted; experiment {name!r} records the trials that "
                                    "ran, fit the search again to run it whole")
        trials = sorted(result.trials, key=lambda t: t.number)
        if self.error_score == "raise" and state.errors:
            raise state.errors[0]
        # A callable scoring's metrics are known from its first scores (["score"] where every fit failed): a dict
        # of them makes the search multi-metric, and refit must name one of them, as GridSearchCV checks after
        # its search. (A dict whose one key is "score" reads as one metric here, where GridSearchCV says several.)
        names = state.names or ["score"]
        multimetric = isinstance(scorer, dict) or names != ["score"]
        if multimetric and not isinstance(scorer, dict):
            _check_refit_names_a_metric(self.refit, names)
        refit_metric = _objective_metric(names, self.refit)
        self.experiment_name_ = name
        self.trials_ = trials
        self.n_splits_ = len(splits)
        self.scorer_ = scorer
        self.multimetric_ = multimetric
        self.cv_results_ = self._results(trials, space, len(splits), names)
        failed = [t for t in trials if t.state is TrialState.FAILED]
        if failed and len(failed) == len(trials) < n_trials:  # fail fast: the one rule that stops such a search
            raise ValueError(f"the search stopped after the first {len(trials)} of {n_trials} configurations failed "
                             f"the same way; the first error: {failed[0].error}")
        if failed and len(failed) == len(trials):
            raise ValueError(f"All the {len(trials)} configurations failed to fit; the first error: {failed[0].error}")
        if failed:
            warnings.warn(f"{len(failed)} of the {len(trials)} configurations failed to fit and score "
                          f"{self.error_score}; the first error: {failed[0].error}", FitFailedWarning, stacklevel=2)
        if self.refit or not multimetric:  # as GridSearchCV: several metrics and refit=False leave no best_*
            self.best_index_ = self._best_index(refit_metric)
            if not callable(self.refit):
                self.best_score_ = float(self.cv_results_[f"mean_test_{refit_metric}"][self.best_index_])
            self.best_params_ = self.cv_results_["params"][self.best_index_]
        if self.refit:
            # cloned values (as GridSearchCV): best_params_ keeps the user's own objects, unfitted and unchanged
            self.best_estimator_ = clone(self.estimator).set_params(**clone(self.best_params_, safe=False))
            started = time.perf_counter()
            self.best_estimator_.fit(X, y, **fit_params)
            self.refit_time_ = time.perf_counter() - started
            if hasattr(self.best_estimator_, "feature_names_in_"):
                self.feature_names_in_ = self.best_estimator_.feature_names_in_
        return self

    def _parameters_to_search(self) -> tuple[Any, str]:
        """(the parameters to search, the argument that gave them): ``param_grid`` is GridSearchCV's name for
        ``param_distributions`` (RandomizedSearchCV's); exactly one of the two is given."""
        if self.param_distributions is not None and self.param_grid is not None:
            raise TypeError("TunedSearchCV takes param_distributions or param_grid (its alias, GridSearchCV's name), "
                            "not both; give the parameters to search in one of them")
        if self.param_grid is not None:
            return self.param_grid, "param_grid"
        if self.param_distributions is None:
            raise TypeError("TunedSearchCV needs the parameters to search: give param_distributions={...} "
                            "(RandomizedSearchCV's name) or param_grid={...} (GridSearchCV's)")
        return self.param_distributions, "param_distributions"

    def _trials_and_strategy(self, grid_size: int | None) -> tuple[int, str]:
        """(trials, strategy): GridSearchCV's whole grid where n_iter is left out and the space is a grid walked
        (strategy auto or grid); RandomizedSearchCV's 10 where it is not (a distribution, or a strategy that draws);
        n_iter where given, saying so where it leaves grid points out."""
        if self.n_iter is None:
            if grid_size is None or self.strategy not in ("auto", "grid"):
                return 10, self.strategy  # a strategy that draws (random, tpe, ...): RandomizedSearchCV's 10
            return grid_size, "grid"
        if grid_size is not None and self.n_iter < grid_size:
            warnings.warn(f"n_iter={self.n_iter} evaluates {self.n_iter} of the grid's {grid_size} points; leave "
                          f"n_iter out (or give n_iter={grid_size}) to search the whole grid, as GridSearchCV does",
                          UserWarning, stacklevel=3)
        return int(self.n_iter), self.strategy

    def _run(self, spec: dict[str, Any], storage: str) -> tuple[Any, str]:
        """Run ``spec`` as a new experiment: under ``name``, or ``name-2``, ``name-3``, ... where it is taken (a
        second fit, a clone's fit in nested cross-validation); a fresh unique name where none is given."""
        import tunesmith
        from tunesmith.errors import ExperimentExists

        said = _WarningsAsPython()
        if self.name is None:
            name = f"tunedsearchcv-{uuid.uuid4().hex[:12]}"
            return tunesmith.run({**spec, "name": name}, storage=storage, listener=said), name
        for n in range(1, 10_000):
            name = self.name if n == 1 else f"{self.name}-{n}"
            try:
                return tunesmith.run({**spec, "name": name}, storage=storage, listener=said), name
            except ExperimentExists as e:
                if e.name != name:
                    raise
        raise ValueError(f"name: {self.name!r} and its 9999 suffixed forms are taken in {storage}; give another name")

    def _best_index(self, refit_metric: str) -> int:
        if not callable(self.refit):
            # a configuration the scheduler stopped scores NaN and ranks last; it is never the best, even where every
            # finished one failed and scored NaN too (then the first finished one, as scikit-learn takes the first)
            ranks = np.where(self.cv_results_["state"] == TrialState.PRUNED.value, np.iinfo(np.int32).max,
                             self.cv_results_[f"rank_test_{refit_metric}"])
            return int(ranks.argmin())
        best = self.refit(self.cv_results_)
        if not isinstance(best, numbers.Integral):
            raise TypeError("best_index_ returned is not an integer")
        if best < 0 or best >= len(self.cv_results_["params"]):
            raise IndexError("best_index_ index out of range")
        return int(best)

    def _results(self, trials: list[Any], space: _Space, n_splits: int, names: list[str]) -> dict[str, Any]:
        params = [space.decode(t.params) for t in trials]
        out: dict[str, Any] = {}

        def column(key: str, failed: float) -> np.ndarray:
            """``key`` of each completed trial; ``failed`` for a failed fit; NaN for one the scheduler stopped (its
            later folds never ran: error_score is a failed fit's score, and a stopped one scored as 0 could win)."""
            return np.asarray([float(t.metrics.get(key, failed)) if t.state is TrialState.COMPLETED
                               else failed if t.state is TrialState.FAILED else np.nan for t in trials])

        err = np.nan if self.error_score == "raise" else float(self.error_score)
        for key in ("mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time"):
            out[key] = column(key, np.nan)
        out.update(_param_columns(params))
        out["params"] = params
        for name in names:  # "score" for one scorer
            for i in range(n_splits):
                out[f"split{i}_test_{name}"] = column(f"split{i}_test_{name}", err)
            out[f"mean_test_{name}"] = column(f"mean_test_{name}", err)
            out[f"std_test_{name}"] = column(f"std_test_{name}", np.nan)
            out[f"rank_test_{name}"] = _rank(out[f"mean_test_{name}"])
            if self.return_train_score:
                for i in range(n_splits):
                    out[f"split{i}_train_{name}"] = column(f"split{i}_train_{name}", err)
                train = np.stack([out[f"split{i}_train_{name}"] for i in range(n_splits)])
                out[f"mean_train_{name}"] = train.mean(axis=0)
                out[f"std_train_{name}"] = train.std(axis=0)
        out["state"] = np.asarray([t.state.value for t in trials])
        return out

    # -- the refit estimator ---------------------------------------------------------------------------------
    def _check_refit(self, method: str) -> None:
        if not self.refit:
            raise AttributeError(f"This TunedSearchCV instance was initialized with refit=False; {method} is "
                                 "available only after refitting on the best parameters")
        check_is_fitted(self)

    def score(self, X: Any, y: Any = None, **params: Any) -> float:
        """The ``scoring`` of the refit best estimator on (X, y); with several metrics, the ``refit`` one."""
        self._check_refit("score")
        if not self.multimetric_:
            score = self.scorer_(self.best_estimator_, X, y, **params)
            # a callable returning {"score": v} is one metric, "score" (see fit), and scores v
            return float(score["score"] if isinstance(score, Mapping) else score)
        if callable(self.refit):
            raise TypeError("score needs refit to name one of the metrics of scoring; refit is a callable")
        if isinstance(self.scorer_, Mapping):
            return float(self.scorer_[self.refit](self.best_estimator_, X, y, **params))
        return float(self.scorer_(self.best_estimator_, X, y, **params)[self.refit])  # a callable returning a dict

    predict = _delegated("predict")
    predict_proba = _delegated("predict_proba")
    predict_log_proba = _delegated("predict_log_proba")
    decision_function = _delegated("decision_function")
    score_samples = _delegated("score_samples")
    transform = _delegated("transform")
    inverse_transform = _delegated("inverse_transform")

    @property
    def classes_(self) -> Any:
        self._check_refit("classes_")
        return self.best_estimator_.classes_

    @property
    def n_features_in_(self) -> int:
        try:
            check_is_fitted(self)
        except Exception as e:
            raise AttributeError(f"{type(self).__name__} object has no attribute 'n_features_in_'") from e
        return int(self.best_estimator_.n_features_in_)


class _WarningsAsPython(RunListener):
    """A search's warnings as scikit-learn's are said: Python warnings (a caller filters or records them), not
    lines on stderr. A grid larger than the budget is left out, by its kind: :meth:`TunedSearchCV._budget` says it
    in the estimator's terms (n_iter, the grid's points), where the run's warning names spec fields it does not have."""

    def warning(self, message: str) -> None:
        if not isinstance(message, GridLargerThanBudget):
            warnings.warn(message, UserWarning, stacklevel=2)
