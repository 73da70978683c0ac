"""TunedSearchCV: a drop-in for GridSearchCV / RandomizedSearchCV on the tunesmith engine."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import loguniform, norm, randint, uniform
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.datasets import load_iris, make_classification
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedKFold
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

import tunesmith
from tunesmith.sklearn import TunedSearchCV, to_space
from tunesmith.space.domains import Categorical, Float, Int

X, y = load_iris(return_X_y=True)
X = (X - X.mean(axis=0)) / X.std(axis=0)  # scaled once: these tests are about the search, not leakage


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread() -> Any:
    """BLAS and OpenMP on one thread in this process: on these tiny fits OpenBLAS's second thread only spins
    (a LogisticRegression fit on iris measured 71 ms of CPU with two threads, 5 ms with one), and nothing here is
    about threads in the fits themselves (n_jobs workers are processes, which set their own limits)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(autouse=True)
def _in_a_folder_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A search given storage= keeps its trial folders in .tunesmith/NAME of the current folder, as a run does: a
    test's own, not the checkout's (where the next session's store, a new one, would find them and refuse)."""
    monkeypatch.chdir(tmp_path)


def test_grid_strategy_matches_gridsearchcv() -> None:
    grid = {"C": [0.01, 0.1, 1.0, 10.0], "fit_intercept": [True, False]}
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    ours = TunedSearchCV(LogisticRegression(max_iter=1000), grid, n_iter=8, strategy="grid", cv=cv,
                         random_state=0).fit(X, y)
    ref = GridSearchCV(LogisticRegression(max_iter=1000), grid, cv=cv).fit(X, y)
    mine = {tuple(sorted(p.items())): s for p, s in zip(ours.cv_results_["params"], ours.cv_results_["mean_test_score"],
                                                         strict=True)}
    theirs = {tuple(sorted(p.items())): s for p, s in zip(ref.cv_results_["params"], ref.cv_results_["mean_test_score"],
                                                          strict=True)}
    assert mine.keys() == theirs.keys()
    assert all(mine[k] == pytest.approx(theirs[k]) for k in mine)
    assert ours.best_score_ == pytest.approx(ref.best_score_)
    assert ours.score(X, y) == pytest.approx(ref.score(X, y))
    assert set(ref.cv_results_) <= set(ours.cv_results_) | {"param_C", "param_fit_intercept"}
    assert ours.cv_results_["rank_test_score"][ours.best_index_] == 1
    np.testing.assert_array_equal(ours.predict(X), ours.best_estimator_.predict(X))
    assert ours.predict_proba(X).shape == (150, 3) and list(ours.classes_) == [0, 1, 2]
    assert ours.n_features_in_ == 4 and ours.n_splits_ == 3 and ours.refit_time_ > 0


def test_several_metrics_with_refit_naming_one_match_gridsearchcv() -> None:
    """README called TunedSearchCV a drop-in for GridSearchCV, but scoring={...} with refit="name" was refused."""
    grid = {"max_depth": [1, 2, 3, 4], "criterion": ["gini", "entropy"]}
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    scoring = {"acc": "accuracy", "f1": "f1_macro"}

    def both(**kw: Any) -> tuple[Any, Any]:
        ours = TunedSearchCV(DecisionTreeClassifier(random_state=0), grid, n_iter=8, strategy="grid", cv=cv,
                             random_state=0, **kw).fit(X, y)
        return ours, GridSearchCV(DecisionTreeClassifier(random_state=0), grid, cv=cv, **kw).fit(X, y)

    ours, ref = both(scoring=scoring, refit="f1", return_train_score=True)
    assert set(ref.cv_results_) <= set(ours.cv_results_)
    assert ours.multimetric_ and ref.multimetric_ and set(ours.scorer_) == {"acc", "f1"}

    def by_params(search: Any, key: str) -> dict[tuple[Any, ...], Any]:
        return {tuple(sorted(p.items())): v for p, v in zip(search.cv_results_["params"], search.cv_results_[key],
                                                             strict=True)}

    for key in ("mean_test_acc", "mean_test_f1", "std_test_f1", "split2_test_acc", "mean_train_f1", "rank_test_acc",
                "rank_test_f1"):
        mine, theirs = by_params(ours, key), by_params(ref, key)
        assert mine.keys() == theirs.keys() and all(mine[k] == pytest.approx(theirs[k]) for k in mine), key
    assert ours.best_score_ == pytest.approx(ref.best_score_)
    assert ours.best_score_ == pytest.approx(ours.cv_results_["mean_test_f1"][ours.best_index_])
    assert ours.cv_results_["rank_test_f1"][ours.best_index_] == 1
    assert ours.score(X, y) == pytest.approx(ref.score(X, y))  # the refit metric, f1_macro
    assert ours.best_params_ in [p for p, r in zip(ref.cv_results_["params"], ref.cv_results_["rank_test_f1"],
                                                   strict=True) if r == 1]
    ours, ref = both(scoring=["accuracy", "f1_macro"], refit=False)
    for attribute in ("best_index_", "best_params_", "best_score_", "best_estimator_"):
        assert not hasattr(ours, attribute) and not hasattr(ref, attribute), attribute
    assert {"mean_test_accuracy", "rank_test_f1_macro"} <= set(ours.cv_results_)
    with pytest.raises(ValueError) as theirs_error:
        GridSearchCV(DecisionTreeClassifier(), grid, scoring=scoring, refit="auc").fit(X, y)
    with pytest.raises(ValueError) as ours_error:
        TunedSearchCV(DecisionTreeClassifier(), grid, scoring=scoring, refit="auc").fit(X, y)
    assert str(ours_error.value) == str(theirs_error.value) and "'auc' was passed" in str(ours_error.value)


def test_scipy_distributions_and_object_choices_map_to_tunesmith_domains() -> None:
    domains, decoders = to_space({"a": loguniform(1e-3, 1e2), "b": randint(2, 9), "c": uniform(0.5, 2.0),
                                  "d": [(10,), (10, 10)], "e": tunesmith.Float(0, 1), "f": np.array([1, 2])})
    assert domains["a"] == Float(1e-3, 1e2, log=True)
    assert domains["b"] == Int(2, 8)
    assert domains["c"] == Float(0.5, 2.5)
    assert domains["d"] == Categorical([0, 1]) and decoders["d"] == [(10,), (10, 10)]
    assert domains["e"] == Float(0, 1) and domains["f"] == Categorical([1, 2])
    with pytest.raises(ValueError, match="no tunesmith equivalent"):
        to_space({"a": norm(0, 1)})


def test_optunas_distributions_map_one_to_one_onto_tunesmith_domains() -> None:
    """An OptunaSearchCV user's param_distributions (FloatDistribution(1e-3, 1e3, log=True), ...) were refused:
    "expected a list of values, a scipy.stats distribution or a tunesmith domain"; their fields are tunesmith's."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    domains, decoders = to_space({"C": FloatDistribution(1e-3, 1e3, log=True), "s": FloatDistribution(0, 1, step=0.25),
                                  "n": IntDistribution(1, 100, step=3), "m": IntDistribution(1, 64, log=True),
                                  "k": CategoricalDistribution(["linear", "rbf", None])})
    assert domains["C"] == Float(1e-3, 1e3, log=True) and domains["s"] == Float(0, 1, step=0.25)
    assert domains["n"] == Int(1, 100, step=3) and domains["m"] == Int(1, 64, log=True)
    assert domains["k"] == Categorical(["linear", "rbf", None]) and decoders == {}
    drawn = TunedSearchCV(LogisticRegression(max_iter=1000), {"C": FloatDistribution(1e-2, 1e2, log=True)}, n_iter=3,
                          cv=3, random_state=0).fit(X, y)
    assert all(1e-2 <= p["C"] <= 1e2 for p in drawn.cv_results_["params"])


def test_a_distribution_that_makes_no_space_is_a_value_error_as_documented() -> None:
    """to_space documents ValueError; a bad domain raised pydantic's ValidationError (a ValueError) until SpaceError
    took its place, and SpaceError was no ValueError: `except ValueError` around to_space let it through."""
    from tunesmith.errors import SpaceError

    with pytest.raises(ValueError, match="low and high must be finite numbers") as raised:
        to_space({"a": uniform(1.0, 0.0)})  # scale 0: no interval
    assert isinstance(raised.value, SpaceError)


def test_randomized_search_with_distributions_is_seeded() -> None:
    space = {"C": loguniform(1e-2, 1e2), "class_weight": [None, "balanced"]}

    def run() -> Any:
        return TunedSearchCV(LogisticRegression(max_iter=1000), space, n_iter=5, strategy="tpe", cv=3,
                             random_state=3).fit(X, y)

    a, b = run(), run()
    assert a.cv_results_["params"] == b.cv_results_["params"]
    assert all(1e-2 <= p["C"] <= 1e2 for p in a.cv_results_["params"])
    assert 0.9 < a.best_score_ <= 1


def test_groups_reach_the_splitter_and_refit_false_keeps_no_estimator() -> None:
    groups = np.arange(150) % 5
    s = TunedSearchCV(Ridge(), {"alpha": [0.1, 10.0]}, n_iter=2, cv=GroupKFold(5), refit=False).fit(X, y,
                                                                                                     groups=groups)
    assert s.n_splits_ == 5 and not hasattr(s, "best_estimator_")
    assert s.best_params_ in ({"alpha": 0.1}, {"alpha": 10.0})
    with pytest.raises(AttributeError, match="refit=False"):
        s.predict(X)


def test_failed_fits_score_error_score_or_raise() -> None:
    grid = {"C": [1.0, -1.0]}  # C=-1 is rejected by LogisticRegression
    with pytest.warns(FitFailedWarning, match="1 of the 2 configurations failed"):
        s = TunedSearchCV(LogisticRegression(max_iter=1000), grid, n_iter=2, strategy="grid", cv=3).fit(X, y)
    scores = dict(zip([p["C"] for p in s.cv_results_["params"]], s.cv_results_["mean_test_score"], strict=True))
    assert np.isnan(scores[-1.0]) and scores[1.0] > 0.9 and s.best_params_ == {"C": 1.0}
    with pytest.raises(ValueError, match="C"):
        TunedSearchCV(LogisticRegression(max_iter=1000), grid, n_iter=2, strategy="grid", cv=3,
                      error_score="raise").fit(X, y)


def test_a_parameter_the_estimator_does_not_take_is_refused_before_any_fit(tmp_path: Path) -> None:
    """{'CC': ...} ran the whole search, every configuration failing in set_params, and only then raised 'All the 6
    configurations failed to fit'."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    search = TunedSearchCV(LogisticRegression(max_iter=1000), {"CC": [0.1, 1.0, 10.0]}, n_iter=6, cv=3,
                           storage=url, name="typo")
    with pytest.raises(ValueError) as info:
        search.fit(X, y)
    assert str(info.value).startswith("param_distributions['CC']: invalid parameter 'CC' for estimator "
                                      "LogisticRegression; did you mean 'C'? valid parameters: C, class_weight, ")
    assert not (tmp_path / "store.db").exists(), "refused before the experiment was recorded"


def test_a_given_store_keeps_the_experiment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    s = TunedSearchCV(Ridge(), {"alpha": tunesmith.Float(0.01, 10, log=True)}, n_iter=3, cv=3, storage=url,
                      name="ridge-search", random_state=0).fit(X, y)
    recorded = tunesmith.open_experiment("ridge-search", storage=url)
    assert len(recorded.trials) == 3 and s.experiment_name_ == "ridge-search"
    assert recorded.best is not None and recorded.best.values == (s.best_score_,)
    assert all(len(t.intermediate) == 3 for t in recorded.trials)  # one report per fold


def test_a_scheduler_prunes_poor_configurations_after_their_first_folds() -> None:
    Xc, yc = make_classification(300, 10, random_state=0)
    s = TunedSearchCV(LogisticRegression(max_iter=1000), {"C": loguniform(1e-6, 1e2)}, n_iter=12, cv=5,
                      strategy="random", scheduler={"name": "median", "warmup_steps": 0, "min_trials": 2},
                      random_state=0).fit(Xc, yc)
    states = set(s.cv_results_["state"])
    assert {"completed", "pruned"} <= states  # pruned configurations score NaN and rank last
    assert s.best_score_ == max(v for v in s.cv_results_["mean_test_score"] if not np.isnan(v))


def _expected_failures(estimator: Any) -> dict[str, str]:
    return {
        # As for GridSearchCV in scikit-learn's own suite: the warning is raised by the inner estimator's fit in
        # cross-validation, where the search does not re-emit it.
        "check_supervised_y_2d": "DataConversionWarning is raised by the inner fits, not caught by the search",
    }


@parametrize_with_checks(
    [TunedSearchCV(Ridge(), {"alpha": [0.1, 1.0]}, n_iter=2, cv=2, error_score="raise"),
     TunedSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [1, 3]}, n_iter=2, cv=2,
                   error_score="raise")],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_estimator_checks(estimator: Any, check: Any) -> None:
    with warnings.catch_warnings():
        # numpy casts NaN to int inside scikit-learn's own array-API shim during check_estimators_nan_inf
        warnings.filterwarnings("ignore", "invalid value encountered in cast", RuntimeWarning)
        check(estimator)


def test_only_the_best_estimators_own_methods_are_offered() -> None:
    regressor = TunedSearchCV(Ridge(), {"alpha": [0.1, 1.0]}, n_iter=2, cv=2, random_state=0)
    assert hasattr(regressor, "predict") and not hasattr(regressor, "predict_proba")
    regressor.fit(X, y.astype(float))
    assert regressor.predict(X).shape == (150,)
    assert not hasattr(regressor, "transform") and not hasattr(regressor, "decision_function")
    classifier = TunedSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, n_iter=2, cv=2, random_state=0,
                               refit=False).fit(X, y)
    with pytest.raises(AttributeError, match="refit=False; predict_proba is available only after refitting"):
        classifier.predict_proba(X)


def test_a_searched_pipeline_step_takes_its_own_parameters(tmp_path: Path) -> None:
    """scikit-learn's "swap a pipeline step" search: the step's own parameters belong to the searched values (the
    pipeline as given holds "passthrough", which takes none); walk2's name check refused it before any fit."""
    from sklearn.decomposition import NMF, PCA
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler
    from sklearn.svm import LinearSVC

    pipe = Pipeline([("scale", MinMaxScaler(clip=True)), ("reduce_dim", "passthrough"), ("classify", LinearSVC())])
    grid = {"reduce_dim": [PCA(), NMF(max_iter=5000, tol=1e-3)], "reduce_dim__n_components": [2, 3], "classify__C": [1, 10]}
    search = TunedSearchCV(pipe, grid, n_iter=8, cv=3, strategy="grid", random_state=0).fit(X, y)
    assert {type(p["reduce_dim"]).__name__ for p in search.cv_results_["params"]} == {"PCA", "NMF"}
    assert search.best_params_["reduce_dim__n_components"] in (2, 3)
    typo = dict(grid, reduce_dim__n_componets=[2])
    with pytest.raises(ValueError, match=r"param_distributions\['reduce_dim__n_componets'\]: invalid parameter "
                                         r"'n_componets' for NMF, PCA \(the values of 'reduce_dim'\); did you mean "
                                         r"'n_components'\?"):
        TunedSearchCV(pipe, typo, n_iter=2, cv=3, storage=f"sqlite:///{tmp_path / 's.db'}").fit(X, y)


# -- drop-in for GridSearchCV / RandomizedSearchCV: what a user's script passes ---------------------------------

def test_a_callable_refit_picks_the_index_it_returns_as_gridsearchcv() -> None:
    """refit=callable was taken as refit=True: best_index_ was the best rank's (2), not the callable's 0."""
    grid = {"max_depth": [1, 2, 3]}

    def first(results: dict[str, Any]) -> int:
        return 0

    ours = TunedSearchCV(DecisionTreeClassifier(random_state=0), grid, strategy="grid", cv=3, refit=first).fit(X, y)
    ref = GridSearchCV(DecisionTreeClassifier(random_state=0), grid, cv=3, refit=first).fit(X, y)
    assert ours.best_index_ == ref.best_index_ == 0
    assert ours.best_params_ == ours.cv_results_["params"][0]
    assert ours.best_estimator_.get_params()["max_depth"] == ours.best_params_["max_depth"]
    assert not hasattr(ours, "best_score_") and not hasattr(ref, "best_score_")


def test_a_grid_is_searched_whole_when_n_iter_is_left_out_and_a_smaller_n_iter_says_so() -> None:
    """As a drop-in for GridSearchCV, a 24-point grid was searched at 10 of its points (n_iter's default), silently."""
    grid = {"max_depth": [1, 2, 3, 4, 5, None], "min_samples_leaf": [1, 2, 4, 8]}
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    ours = TunedSearchCV(DecisionTreeClassifier(random_state=0), grid, cv=cv, random_state=0).fit(X, y)
    ref = GridSearchCV(DecisionTreeClassifier(random_state=0), grid, cv=cv).fit(X, y)
    key = lambda p: tuple(sorted(p.items(), key=str))  # noqa: E731
    mine = {key(p): s for p, s in zip(ours.cv_results_["params"], ours.cv_results_["mean_test_score"], strict=True)}
    theirs = {key(p): s for p, s in zip(ref.cv_results_["params"], ref.cv_results_["mean_test_score"], strict=True)}
    assert len(ours.cv_results_["params"]) == 24 and mine.keys() == theirs.keys()
    assert all(mine[k] == pytest.approx(theirs[k]) for k in mine)
    assert ours.best_score_ == pytest.approx(ref.best_score_)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        part = TunedSearchCV(DecisionTreeClassifier(random_state=0), grid, n_iter=5, cv=3, random_state=0).fit(X, y)
    said = [str(w.message) for w in caught if "n_iter" in str(w.message)]
    assert said == ["n_iter=5 evaluates 5 of the grid's 24 points; leave n_iter out (or give n_iter=24) to search the "
                    "whole grid, as GridSearchCV does"]
    assert len(part.cv_results_["params"]) == 5
    drawn = TunedSearchCV(LogisticRegression(max_iter=1000), {"C": loguniform(1e-2, 1e2)}, cv=3,
                          random_state=0).fit(X, y)
    assert len(drawn.cv_results_["params"]) == 10  # a distribution has no grid: RandomizedSearchCV's default


def test_a_grid_strategy_given_fewer_iterations_than_points_says_so_once_in_the_estimators_terms() -> None:
    """strategy="grid", n_iter=5, a 24-point grid: the run's own warning (`strategy is grid with 24 configurations,
    more than budget.trials (5)`) names spec fields the estimator does not have, and is left out by its kind; the
    estimator's n_iter warning says it instead."""
    grid = {"max_depth": [1, 2, 3, 4, 5, None], "min_samples_leaf": [1, 2, 4, 8]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        TunedSearchCV(DecisionTreeClassifier(random_state=0), grid, n_iter=5, strategy="grid", cv=3,
                      random_state=0).fit(X, y)
    said = [str(w.message) for w in caught if "grid" in str(w.message)]
    assert said == ["n_iter=5 evaluates 5 of the grid's 24 points; leave n_iter out (or give n_iter=24) to search the "
                    "whole grid, as GridSearchCV does"]


def test_a_named_search_can_be_fitted_again_and_cloned_in_nested_cross_validation(tmp_path: Path) -> None:
    """A second fit raised ExperimentExists; inside cross_val_score the second fold's error became a NaN score."""
    from sklearn.model_selection import cross_val_score

    url = f"sqlite:///{tmp_path / 'store.db'}"
    search = TunedSearchCV(LogisticRegression(max_iter=1000), {"C": [0.1, 1.0, 10.0]}, cv=3, storage=url,
                           name="lr-search")
    assert search.fit(X, y).experiment_name_ == "lr-search"
    assert search.fit(X, y).experiment_name_ == "lr-search-2"
    nested = TunedSearchCV(LogisticRegression(max_iter=1000), {"C": [0.1, 1.0]}, cv=3, storage=url, name="nested")
    scores = cross_val_score(nested, X, y, cv=2, error_score="raise")
    assert scores.shape == (2,) and not np.isnan(scores).any()
    for name, trials in (("lr-search", 3), ("lr-search-2", 3), ("nested", 2), ("nested-2", 2)):
        assert len(tunesmith.open_experiment(name, storage=url).trials) == trials, name


class _PidRecordingLogisticRegression(LogisticRegression):
    """Writes the id of the process that fits it to a file in ``folder``: which processes the folds fit in."""

    def __init__(self, folder: str = "", C: float = 1.0, max_iter: int = 1000) -> None:
        super().__init__(C=C, max_iter=max_iter)
        self.folder = folder

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Any:
        import os

        if self.folder:
            (Path(self.folder) / f"{os.getpid()}-{id(X)}").touch()
        return super().fit(X, y, sample_weight)


def test_n_jobs_verbose_and_pre_dispatch_are_accepted_and_do_what_they_say(capsys: pytest.CaptureFixture[str],
                                                                           tmp_path: Path) -> None:
    """n_jobs= and verbose= raised TypeError (unexpected keyword), crashing GridSearchCV scripts; the test could
    not fail if n_jobs were ignored: the folds' fits are now seen in more than one process."""
    import os

    grid = {"C": [0.1, 1.0, 10.0]}
    one = TunedSearchCV(LogisticRegression(max_iter=1000), grid, cv=3).fit(X, y)
    capsys.readouterr()
    par = TunedSearchCV(_PidRecordingLogisticRegression(str(tmp_path)), grid, cv=3, n_jobs=2,
                        pre_dispatch="2*n_jobs", verbose=3, return_train_score=True, error_score=0.0).fit(X, y)
    out = capsys.readouterr().out
    fold_pids = {int(f.name.split("-")[0]) for f in tmp_path.iterdir()} - {os.getpid()}  # the refit runs here
    assert len(fold_pids) > 1, f"the folds fit in {fold_pids}: not in parallel workers"
    np.testing.assert_allclose(par.cv_results_["mean_test_score"], one.cv_results_["mean_test_score"])
    assert par.cv_results_["params"] == one.cv_results_["params"] and "mean_train_score" in par.cv_results_
    assert "Fitting 3 folds for each of 3 candidates, totalling 9 fits" in out
    assert out.count("[CV 1/3]") == 3 and out.count("END {'C': ") == 3
    TunedSearchCV(LogisticRegression(max_iter=1000), grid, cv=3, verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert "totalling 9 fits" in out and "END" not in out
    with pytest.raises(ValueError, match="n_jobs must be None or a nonzero int"):
        TunedSearchCV(LogisticRegression(), grid, n_jobs=0).fit(X, y)


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_an_invalid_estimator_parameter_is_named_as_the_estimators_own(n_jobs: int | None) -> None:
    """error_score='raise' with C=-1 said "The 'C' parameter of cross_validate must be ...", GridSearchCV names
    LogisticRegression."""
    from sklearn.utils._param_validation import InvalidParameterError

    grid = {"C": [-1.0]}
    with pytest.raises(InvalidParameterError) as theirs:
        GridSearchCV(LogisticRegression(), grid, cv=3, error_score="raise").fit(X, y)
    with pytest.raises(InvalidParameterError) as ours:
        TunedSearchCV(LogisticRegression(), grid, cv=3, error_score="raise", n_jobs=n_jobs).fit(X, y)
    assert "The 'C' parameter of LogisticRegression must be" in str(theirs.value)
    assert str(ours.value) == str(theirs.value)


def test_reproduce_refuses_a_search_without_recording_a_failed_reproduction(tmp_path: Path) -> None:
    """`tunesmith reproduce` failed on LookupError (the search's context variable) and recorded a failed
    reproduction, taking the reproducibility index to 0%."""
    import os
    import subprocess
    import sys

    from tunesmith.storage.sql import SQLStore

    url = f"sqlite:///{tmp_path / 'store.db'}"
    TunedSearchCV(LogisticRegression(max_iter=1000), {"C": [0.1, 1.0]}, cv=3, storage=url, name="lr").fit(X, y)
    src = str(Path(tunesmith.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "tunesmith", "reproduce", "lr", "0", "--storage", url],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "TunedSearchCV" in done.stderr and "re-run" in done.stderr and "Traceback" not in done.stderr
    store = SQLStore(url)
    try:
        kinds = [e.kind for e in store.events(store.experiment("lr").id)]
    finally:
        store.close()
    assert "trial_reproduced" not in kinds and kinds


def test_a_random_state_object_seeds_the_search_as_scikit_learn_accepts_it() -> None:
    """random_state=np.random.RandomState(0), which RandomizedSearchCV takes, failed in numpy's seeding (TypeError)."""
    space = {"C": loguniform(1e-2, 1e2)}

    def run() -> Any:
        return TunedSearchCV(LogisticRegression(max_iter=1000), space, n_iter=3, cv=3,
                             random_state=np.random.RandomState(0)).fit(X, y)

    assert run().cv_results_["params"] == run().cv_results_["params"]


def test_a_configuration_the_scheduler_stopped_never_wins_and_scores_nan() -> None:
    """Under error_score=0 a stopped configuration scored 0.0, which beat every finished one under a neg_* scorer:
    the search picked a stopped alpha with best_score_ 0.0."""
    from sklearn.datasets import load_diabetes

    grid = {"alpha": [1e-3, 1e-2, 1e-1, 1, 10, 100, 1e3, 1e4]}
    s = TunedSearchCV(Ridge(), grid, cv=5, scoring="neg_mean_squared_error",
                      scheduler={"name": "median", "warmup_steps": 0, "min_trials": 2}, error_score=0,
                      random_state=0).fit(*load_diabetes(return_X_y=True))
    r = s.cv_results_
    pruned = r["state"] == "pruned"
    assert pruned.any() and (r["state"][s.best_index_] == "completed")
    assert np.isnan(r["mean_test_score"][pruned]).all() and np.isnan(r["split0_test_score"][pruned]).all()
    assert (r["rank_test_score"][pruned] > r["rank_test_score"][~pruned].max()).all()
    assert s.best_score_ == max(r["mean_test_score"][~pruned]) < 0


class _InterruptedRidge(Ridge):
    """Sends this process SIGINT (a Ctrl-C) when fitted with alpha=10."""

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Any:
        import os
        import signal

        if self.alpha == 10:
            os.kill(os.getpid(), signal.SIGINT)
        return super().fit(X, y, sample_weight)


def test_ctrl_c_during_fit_raises_keyboard_interrupt_after_recording_what_ran(tmp_path: Path) -> None:
    """fit swallowed Ctrl-C: the run stopped as interrupted, and fit refit the best of what had run and returned."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    search = TunedSearchCV(_InterruptedRidge(), {"alpha": [0.1, 1, 10, 100]}, cv=3, storage=url, name="ctrl-c")
    with pytest.raises(KeyboardInterrupt):
        search.fit(X, y)
    assert not hasattr(search, "best_params_") and not hasattr(search, "best_estimator_")
    states = [t.state.value for t in tunesmith.open_experiment("ctrl-c", storage=url).trials]
    assert states[:2] == ["completed", "completed"] and "interrupted" in states


def test_resuming_a_search_is_refused_up_front_and_records_nothing(tmp_path: Path) -> None:
    """`tunesmith resume` re-ran tunesmith.sklearn:_objective with no data: every remaining trial failed on
    LookupError and was recorded failed."""
    import os
    import subprocess
    import sys

    from tunesmith.errors import UserInputError

    url = f"sqlite:///{tmp_path / 'store.db'}"
    try:
        TunedSearchCV(_InterruptedRidge(), {"alpha": [0.1, 1, 10, 100]}, cv=3, storage=url, name="cut").fit(X, y)
    except KeyboardInterrupt:
        pass
    before = [(t.number, t.state) for t in tunesmith.open_experiment("cut", storage=url).trials]
    src = str(Path(tunesmith.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "tunesmith", "resume", "cut", "--storage", url],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "TunedSearchCV" in done.stderr and "fit" in done.stderr and "Traceback" not in done.stderr
    with pytest.raises(UserInputError, match="TunedSearchCV"):
        tunesmith.resume("cut", storage=url)
    assert [(t.number, t.state) for t in tunesmith.open_experiment("cut", storage=url).trials] == before


class _Pair(RegressorMixin, BaseEstimator):
    """Predicts a + b: with y = 1 (a, b) = (0, 1) and (1, 0) tie."""

    def __init__(self, a: int = 0, b: int = 0) -> None:
        self.a, self.b = a, b

    def fit(self, X: Any, y: Any) -> _Pair:
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X: Any) -> Any:
        return np.full(len(X), float(self.a + self.b))


def test_a_grid_walks_its_names_sorted_as_parametergrid_so_rows_and_ties_match_gridsearchcv() -> None:
    """The walk followed the dict's order (b before a): the rows came in another order and a tie picked another
    best_params_ than GridSearchCV's."""
    grid = {"b": [0, 1], "a": [0, 1]}
    Xp, yp = np.zeros((12, 1)), np.ones(12)
    ours = TunedSearchCV(_Pair(), grid, cv=3, scoring="neg_mean_squared_error").fit(Xp, yp)
    ref = GridSearchCV(_Pair(), grid, cv=3, scoring="neg_mean_squared_error").fit(Xp, yp)
    assert ours.cv_results_["params"] == ref.cv_results_["params"]
    assert ours.best_params_ == ref.best_params_ == {"a": 0, "b": 1}
    np.testing.assert_array_equal(ours.cv_results_["rank_test_score"], ref.cv_results_["rank_test_score"])


def test_n_iter_left_out_with_a_drawing_strategy_runs_ten_trials_as_randomizedsearchcv() -> None:
    """strategy='random' on a 24-point grid ran 24 trials (repeated draws), though None means the whole grid only
    where the grid is walked."""
    grid = {"max_depth": [1, 2, 3, 4, 5, None], "min_samples_leaf": [1, 2, 4, 8]}
    drawn = TunedSearchCV(DecisionTreeClassifier(random_state=0), grid, cv=3, strategy="random",
                          random_state=0).fit(X, y)
    assert len(drawn.cv_results_["params"]) == 10
    walked = TunedSearchCV(DecisionTreeClassifier(random_state=0), grid, cv=3, strategy="grid").fit(X, y)
    assert len(walked.cv_results_["params"]) == 24


def test_a_search_reproduces_from_python_with_a_function_handed_over(tmp_path: Path) -> None:
    """reproduce refused a TunedSearchCV experiment even where the caller handed over trial=fn (it checked before
    applying it, and with_function refused the search's function as one found by reference)."""
    from sklearn.model_selection import cross_val_score

    url = f"sqlite:///{tmp_path / 'store.db'}"
    TunedSearchCV(LogisticRegression(max_iter=1000), {"C": [0.1, 1.0]}, cv=3, storage=url, name="lr").fit(X, y)

    def objective(config: dict[str, Any], trial: Any) -> dict[str, float]:
        return {"score": float(cross_val_score(LogisticRegression(max_iter=1000, C=config["C"]), X, y, cv=3).mean())}

    outcome = tunesmith.reproduce_trial("lr", 1, storage=url, trial=objective)
    assert outcome.error is None and outcome.matched, outcome


# -- a GridSearchCV user's call as written: param_grid=, a list of grids, any scoring scikit-learn takes -----------

# Two grids sharing kernel and C with other values each, and gamma in the second only: a configuration mixing them
# (gamma beside kernel="linear", C=100 with "linear") belongs to neither.
_SVC_GRIDS = [{"kernel": ["linear"], "C": [1, 10]}, {"kernel": ["rbf"], "C": [1, 100], "gamma": [1e-2, 1e-3]}]


def _same_masked_column(ours: Any, theirs: Any) -> None:
    np.testing.assert_array_equal(np.ma.getmaskarray(ours), np.ma.getmaskarray(theirs))
    assert ours.compressed().tolist() == theirs.compressed().tolist()


def test_param_grid_is_param_distributions_under_gridsearchcvs_name() -> None:
    """TunedSearchCV(est, param_grid={...}), a GridSearchCV user's call, was a TypeError (unexpected keyword)."""
    from sklearn.base import clone

    grid = {"C": [0.1, 1.0, 10.0]}
    ours = TunedSearchCV(LogisticRegression(max_iter=1000), param_grid=grid, cv=3)
    assert ours.get_params()["param_grid"] is grid and ours.get_params()["param_distributions"] is None
    copy = clone(ours)
    assert copy.param_grid == grid and copy.param_distributions is None
    assert clone(ours).set_params(param_grid={"C": [1.0]}).get_params()["param_grid"] == {"C": [1.0]}
    ours.fit(X, y)
    ref = GridSearchCV(LogisticRegression(max_iter=1000), param_grid=grid, cv=3).fit(X, y)
    assert ours.cv_results_["params"] == ref.cv_results_["params"]  # the whole grid (n_iter left out), in order
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"], ref.cv_results_["mean_test_score"])
    assert ours.best_params_ == ref.best_params_ and set(ours.cv_results_) - {"state"} == set(ref.cv_results_)


def test_param_grid_with_param_distributions_or_neither_is_a_type_error_naming_both() -> None:
    with pytest.raises(TypeError, match=r"takes param_distributions or param_grid \(its alias, GridSearchCV's name\), "
                                        "not both"):
        TunedSearchCV(Ridge(), {"alpha": [1.0]}, param_grid={"alpha": [1.0]}).fit(X, y)
    with pytest.raises(TypeError, match=r"param_distributions=\{...\} \(RandomizedSearchCV's name\) or "
                                        r"param_grid=\{...\}"):
        TunedSearchCV(Ridge()).fit(X, y)
    with pytest.raises(ValueError, match=r"^param_grid\[1\]\['gama'\]: invalid parameter 'gama' for estimator SVC; "
                                         "did you mean 'gamma'"):
        TunedSearchCV(SVC(), param_grid=[{"C": [1]}, {"gama": [1]}]).fit(X, y)


def test_a_list_of_grids_is_searched_whole_as_gridsearchcv_with_absent_parameters_masked() -> None:
    """A list of several grids was refused: "a list of several grids is not supported"."""
    from sklearn.base import clone

    ours = TunedSearchCV(SVC(), param_grid=_SVC_GRIDS, cv=3).fit(X, y)
    ref = GridSearchCV(SVC(), param_grid=_SVC_GRIDS, cv=3).fit(X, y)
    assert ours.cv_results_["params"] == ref.cv_results_["params"]  # grid after grid, each as ParameterGrid walks
    assert set(ours.cv_results_) - {"state"} == set(ref.cv_results_)
    for column in ("param_C", "param_kernel", "param_gamma"):
        _same_masked_column(ours.cv_results_[column], ref.cv_results_[column])
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"], ref.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(ours.cv_results_["rank_test_score"], ref.cv_results_["rank_test_score"])
    assert ours.best_params_ == ref.best_params_  # tied with a point of the second grid: the first, as theirs
    assert clone(SVC()).set_params(**ours.best_params_).get_params()["kernel"] == ours.best_params_["kernel"]


@pytest.mark.parametrize("strategy", ["random", "tpe"])
def test_a_drawing_strategy_proposes_only_points_of_one_of_the_grids(strategy: str) -> None:
    """Each parameter is active only in the grids that give it (C in [1, 10] with "linear", in [1, 100] with
    "rbf"), so no draw mixes two grids."""
    from sklearn.model_selection import ParameterGrid

    points = list(ParameterGrid(_SVC_GRIDS))
    search = TunedSearchCV(SVC(), _SVC_GRIDS, n_iter=8, cv=3, strategy=strategy, random_state=0).fit(X, y)
    params = search.cv_results_["params"]
    assert len(params) == 8 and [p for p in params if p not in points] == []
    assert {p["kernel"] for p in params} == {"linear", "rbf"} and search.best_params_ in points


def test_a_list_of_grids_of_distributions_lays_out_results_as_randomizedsearchcv() -> None:
    """n_iter left out draws 10, as RandomizedSearchCV; gamma is masked exactly where kernel is "linear"."""
    from sklearn.model_selection import RandomizedSearchCV

    grids = [{"kernel": ["linear"], "C": loguniform(1e-2, 1e2)},
             {"kernel": ["rbf"], "C": loguniform(1e-2, 1e2), "gamma": loguniform(1e-4, 1e-1)}]
    ours = TunedSearchCV(SVC(), grids, cv=3, strategy="random", random_state=0).fit(X, y)
    ref = RandomizedSearchCV(SVC(), grids, cv=3, random_state=0).fit(X, y)
    assert len(ours.cv_results_["params"]) == len(ref.cv_results_["params"]) == 10
    assert set(ours.cv_results_) - {"state"} == set(ref.cv_results_)
    for search in (ours, ref):
        results = search.cv_results_
        linear = np.asarray([p["kernel"] == "linear" for p in results["params"]])
        assert 0 < linear.sum() < 10
        np.testing.assert_array_equal(np.ma.getmaskarray(results["param_gamma"]), linear)
        assert not np.ma.getmaskarray(results["param_C"]).any()
        assert all(set(p) == ({"C", "kernel"} if p["kernel"] == "linear" else {"C", "gamma", "kernel"})
                   for p in results["params"])
    assert all(1e-2 <= p["C"] <= 1e2 for p in ours.cv_results_["params"])
    assert SVC().set_params(**ours.best_params_).fit(X, y).score(X, y) > 0.9


def test_several_grids_map_to_one_conditional_space() -> None:
    domains, decoders = to_space([{"a": [1, 2], "b": [(1,), (2,)]}, {"a": [1, 2], "c": [3]}, {"a": [5]}])
    assert domains == {"__grid": Categorical([0, 1, 2]), "a": Categorical([1, 2], when={"__grid": [0, 1]}),
                       "a@grid2": Categorical([5], when={"__grid": 2}), "b": Categorical([0, 1], when={"__grid": 0}),
                       "c": Categorical([3], when={"__grid": 1})}
    assert decoders == {"b": [(1,), (2,)]}
    shared, _ = to_space([{"a": [1, 2]}, {"a": [1, 2], "c": [3]}])
    assert shared["a"].when is None  # in every grid alike: no condition
    with pytest.raises(ValueError, match=r"^param_distributions\[1\]\['b'\]: a domain with `when` inside a list of "
                                         "several grids"):
        to_space([{"a": [1]}, {"a": [2], "b": Float(0, 1, when={"a": 2})}])
    with pytest.raises(ValueError, match="the list of grids is empty"):
        to_space([])


def _acc_and_f1(estimator: Any, X: Any, y: Any) -> dict[str, float]:
    """scikit-learn's multi-metric callable: one call, a dict of metrics."""
    from sklearn.metrics import accuracy_score, f1_score

    predicted = estimator.predict(X)
    return {"acc": accuracy_score(y, predicted), "f1m": f1_score(y, predicted, average="macro")}


def test_a_scoring_callable_returning_a_dict_is_multi_metric_as_in_gridsearchcv() -> None:
    """Every configuration failed (KeyError 'test_score'), then fit raised 'All the 3 configurations failed'."""
    grid = {"C": [0.01, 0.1, 1.0]}

    def both(grid: Any, **kw: Any) -> tuple[Any, Any]:
        return (TunedSearchCV(LogisticRegression(max_iter=1000), grid, cv=3, scoring=_acc_and_f1, **kw).fit(X, y),
                GridSearchCV(LogisticRegression(max_iter=1000), grid, cv=3, scoring=_acc_and_f1, **kw).fit(X, y))

    ours, ref = both(grid, refit="f1m")
    assert ours.multimetric_ and ref.multimetric_ and ours.scorer_ is ref.scorer_ is _acc_and_f1
    assert set(ours.cv_results_) - {"state"} == set(ref.cv_results_)
    for key in ("mean_test_acc", "mean_test_f1m", "std_test_f1m", "split1_test_acc", "rank_test_f1m"):
        np.testing.assert_allclose(ours.cv_results_[key], ref.cv_results_[key], err_msg=key)
    assert ours.best_index_ == ref.best_index_ and ours.best_score_ == pytest.approx(ref.best_score_)
    assert ours.score(X, y) == pytest.approx(ref.score(X, y))  # the refit metric, f1m
    ours, ref = both({"C": [1.0]}, refit=False)
    assert not hasattr(ours, "best_params_") and not hasattr(ref, "best_params_")
    with pytest.raises(ValueError) as theirs:
        both({"C": [1.0]})  # refit=True names no metric of the dict: GridSearchCV's error, after its search
    with pytest.raises(ValueError) as mine:
        TunedSearchCV(LogisticRegression(max_iter=1000), {"C": [1.0]}, cv=3, scoring=_acc_and_f1).fit(X, y)
    assert str(mine.value) == str(theirs.value) and "True was passed" in str(mine.value)


def test_a_dict_of_names_make_scorers_and_plain_callables_matches_gridsearchcv() -> None:
    """Worked before (through scikit-learn's private _check_multimetric_scoring): kept working on its public
    check_scoring. A plain callable alone is one metric, "score"."""
    from sklearn.metrics import accuracy_score, f1_score, make_scorer

    def plain(estimator: Any, X: Any, y: Any) -> float:
        return float(accuracy_score(y, estimator.predict(X)))

    grid = {"C": [0.01, 1.0]}
    scoring = {"acc": "accuracy", "f1m": make_scorer(f1_score, average="macro"), "plain": plain}
    ours = TunedSearchCV(LogisticRegression(max_iter=1000), grid, cv=3, scoring=scoring, refit="f1m").fit(X, y)
    ref = GridSearchCV(LogisticRegression(max_iter=1000), grid, cv=3, scoring=scoring, refit="f1m").fit(X, y)
    assert set(ours.scorer_) == set(ref.scorer_) == {"acc", "f1m", "plain"}
    assert set(ours.cv_results_) - {"state"} == set(ref.cv_results_)
    for key in ("mean_test_acc", "mean_test_f1m", "mean_test_plain", "rank_test_f1m"):
        np.testing.assert_allclose(ours.cv_results_[key], ref.cv_results_[key], err_msg=key)
    assert ours.best_score_ == pytest.approx(ref.best_score_) and ours.score(X, y) == pytest.approx(ref.score(X, y))
    single = TunedSearchCV(LogisticRegression(max_iter=1000), {"C": [1.0]}, cv=3, scoring=plain).fit(X, y)
    assert not single.multimetric_ and single.best_score_ == pytest.approx(single.cv_results_["mean_test_score"][0])


def test_estimators_in_the_grids_are_cloned_before_set_params_as_gridsearchcv() -> None:
    """The user's estimators inside the grids were set_params'd in place (left with the last C tried), and
    best_estimator_ was one of them, fitted in place; GridSearchCV clones parameter values first."""
    from sklearn.pipeline import Pipeline

    def search(cls: Any) -> tuple[Any, Any, Any]:
        lr, svc = LogisticRegression(max_iter=1000), SVC()
        grid = [{"clf": [lr], "clf__C": [1.0, 0.01]}, {"clf": [svc], "clf__C": [1.0, 100.0]}]
        return cls(Pipeline([("clf", lr)]), param_grid=grid, cv=3).fit(X, y), lr, svc

    (ours, lr, svc), (ref, ref_lr, ref_svc) = search(TunedSearchCV), search(GridSearchCV)
    assert (lr.C, svc.C) == (ref_lr.C, ref_svc.C) == (1.0, 1.0)
    assert not hasattr(lr, "coef_") and not hasattr(svc, "support_")  # neither fitted in place
    best = ours.best_estimator_.named_steps["clf"]
    assert best is not lr and best is not svc and best.C == ours.best_params_["clf__C"]
    assert ours.best_index_ == ref.best_index_ and ours.best_params_["clf__C"] == ref.best_params_["clf__C"]
    assert [p["clf"] for p in ours.cv_results_["params"]] == [lr, lr, svc, svc]  # the user's own, unchanged
    assert [p["clf"].C for p in ref.cv_results_["params"]] == [p["clf"].C for p in ours.cv_results_["params"]]
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"], ref.cv_results_["mean_test_score"])


def _score_in_a_dict(estimator: Any, X: Any, y: Any) -> dict[str, float]:
    from sklearn.metrics import accuracy_score

    return {"score": float(accuracy_score(y, estimator.predict(X)))}


def test_score_of_a_scoring_callable_returning_a_score_dict_is_its_score() -> None:
    """score() did float(dict): a TypeError, in cross_val_score of the search too."""
    from sklearn.model_selection import cross_val_score

    grid = {"C": [0.01, 1.0]}
    ours = TunedSearchCV(LogisticRegression(max_iter=1000), grid, cv=3, scoring=_score_in_a_dict).fit(X, y)
    ref = GridSearchCV(LogisticRegression(max_iter=1000), grid, cv=3, scoring=_score_in_a_dict,
                       refit="score").fit(X, y)  # a dict is several metrics to GridSearchCV: refit names "score"
    assert not ours.multimetric_ and ours.best_params_ == ref.best_params_
    assert isinstance(ours.score(X, y), float) and ours.score(X, y) == pytest.approx(ref.score(X, y))
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    mine = cross_val_score(TunedSearchCV(LogisticRegression(max_iter=1000), grid, cv=3, scoring=_score_in_a_dict),
                           X, y, cv=cv)
    theirs = cross_val_score(GridSearchCV(LogisticRegression(max_iter=1000), grid, cv=3, scoring=_score_in_a_dict,
                                          refit="score"), X, y, cv=cv)
    np.testing.assert_allclose(mine, theirs)


def test_an_empty_grid_in_a_list_is_the_estimators_defaults_as_one_candidate_as_gridsearchcv() -> None:
    """[{}, {...}] was refused ("must be a non-empty mapping"); GridSearchCV takes {} as one candidate, no
    parameters set."""
    grid: list[dict[str, Any]] = [{}, {"C": [0.01, 10.0]}]
    ours = TunedSearchCV(LogisticRegression(max_iter=1000, C=0.1), param_grid=grid, cv=3).fit(X, y)
    ref = GridSearchCV(LogisticRegression(max_iter=1000, C=0.1), param_grid=grid, cv=3).fit(X, y)
    assert ours.cv_results_["params"] == ref.cv_results_["params"] == [{}, {"C": 0.01}, {"C": 10.0}]
    np.testing.assert_array_equal(ours.cv_results_["param_C"].mask, ref.cv_results_["param_C"].mask)
    assert ours.cv_results_["param_C"].mask.tolist() == [True, False, False]
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"], ref.cv_results_["mean_test_score"])
    assert ours.best_params_ == ref.best_params_ and ours.best_index_ == ref.best_index_
    drawn = TunedSearchCV(LogisticRegression(max_iter=1000, C=0.1), param_grid=[{}, {"C": loguniform(1e-2, 1e2)}],
                          n_iter=6, strategy="random", random_state=0, cv=3).fit(X, y)
    assert all(p == {} or set(p) == {"C"} for p in drawn.cv_results_["params"])


def test_a_grid_search_cut_short_warns_once_in_its_own_terms_and_run_warnings_are_python_warnings(
        capsys: pytest.CaptureFixture[str]) -> None:
    """n_iter below the grid's size: TunedSearchCV warns naming n_iter; the run's plan warning said it again on
    stderr naming `shuffle: true` and `budget.trials`, fields the estimator does not have. Now the estimator's
    warning alone, and what a run warns of reaches the caller as a Python warning (filterable), not a stderr line."""
    import warnings as python_warnings

    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from tunesmith.sklearn import TunedSearchCV

    X, y = load_iris(return_X_y=True)
    search = TunedSearchCV(LogisticRegression(max_iter=200), param_grid={"C": [0.1, 1.0, 10.0], "tol": [1e-4, 1e-3]},
                           n_iter=2, strategy="grid", cv=2)
    with python_warnings.catch_warnings(record=True) as caught:
        python_warnings.simplefilter("always")
        search.fit(X, y)
    said = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert [s for s in said if "grid" in s] == [
        "n_iter=2 evaluates 2 of the grid's 6 points; leave n_iter out (or give n_iter=6) to search the whole grid, "
        "as GridSearchCV does"], said
    assert "budget.trials" not in capsys.readouterr().err


class _FlakyClassifier(ClassifierMixin, BaseEstimator):
    """Fails to fit for a == 3; counts every fit it is asked for, in this process (the folds fit one by one)."""

    fits: list[int] = []

    def __init__(self, a: int = 1) -> None:
        self.a = a

    def fit(self, X: Any, y: Any) -> Any:
        type(self).fits.append(self.a)
        if self.a == 3:
            raise RuntimeError(f"bad a={self.a}")
        self.classes_ = np.unique(y)
        return self

    def predict(self, X: Any) -> Any:
        return np.full(len(X), self.classes_[0])


def test_error_score_raise_stops_the_search_at_the_first_failed_fit_as_gridsearchcv(tmp_path: Path) -> None:
    """error_score="raise" ran the whole search (46 fits where the first configuration failed), then raised."""
    grid = {"a": list(range(10))}
    _FlakyClassifier.fits = []
    with pytest.raises(RuntimeError, match="bad a=3"):
        GridSearchCV(_FlakyClassifier(), grid, cv=5, error_score="raise").fit(X, y)
    theirs, _FlakyClassifier.fits = _FlakyClassifier.fits, []
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with pytest.raises(RuntimeError, match="bad a=3"):
        TunedSearchCV(_FlakyClassifier(), grid, cv=5, error_score="raise", storage=url, name="flaky").fit(X, y)
    assert _FlakyClassifier.fits == theirs == [0] * 5 + [1] * 5 + [2] * 5 + [3]
    recorded = tunesmith.open_experiment("flaky", storage=url)
    assert recorded.status.value == "failed" and "bad a=3" in (recorded.stop_reason or "")
    assert [t.state.value for t in recorded.trials] == ["completed"] * 3 + ["failed"]


class _TakesAnything(ClassifierMixin, BaseEstimator):
    """Fits at once whatever its parameters are: these tests are about the layout of cv_results_."""

    def __init__(self, num: Any = 1.0, whole: Any = 1, mixed: Any = 1, word: Any = "x", maybe: Any = None,
                 flag: Any = True, pair: Any = (0, 0), step: Any = None) -> None:
        self.num, self.whole, self.mixed, self.word = num, whole, mixed, word
        self.maybe, self.flag, self.pair, self.step = maybe, flag, pair, step

    def fit(self, X: Any, y: Any) -> Any:
        self.classes_ = np.unique(y)
        return self

    def predict(self, X: Any) -> Any:
        return np.full(len(X), self.classes_[0])


@pytest.mark.parametrize("grid", [
    {"num": [0.1, 1.0, 10.0], "whole": [1, 2], "word": ["a", "b"]},
    {"mixed": [1, 2.5], "maybe": [None, 1.0], "flag": [True, False]},
    {"word": ["a", None], "pair": [(1, 2), (3, 4)], "step": [Ridge(), None]},
    [{"num": [0.1, 1.0], "word": ["a"]}, {"whole": [3, 4], "word": ["b"]}, {}],
], ids=["numbers-and-strings", "mixed-none-bool", "objects", "several-grids"])
def test_param_columns_have_gridsearchcvs_dtypes(grid: Any) -> None:
    """Every param_<name> column was object dtype; scikit-learn 1.9's param_C is float64 (np.log10 of it failed)."""
    ours = TunedSearchCV(_TakesAnything(), param_grid=grid, cv=2).fit(X, y).cv_results_
    theirs = GridSearchCV(_TakesAnything(), param_grid=grid, cv=2).fit(X, y).cv_results_
    columns = [k for k in theirs if k.startswith("param_")]
    assert columns == [k for k in ours if k.startswith("param_")]
    for column in columns:
        assert ours[column].dtype == theirs[column].dtype, column
        _same_masked_column(ours[column], theirs[column])


def test_param_columns_of_distributions_are_numeric_as_randomizedsearchcvs() -> None:
    from sklearn.model_selection import RandomizedSearchCV

    grid = {"num": loguniform(1e-2, 1e2), "whole": randint(1, 5)}
    ours = TunedSearchCV(_TakesAnything(), grid, n_iter=4, cv=2, random_state=0).fit(X, y).cv_results_
    theirs = RandomizedSearchCV(_TakesAnything(), grid, n_iter=4, cv=2, random_state=0).fit(X, y).cv_results_
    assert (ours["param_num"].dtype, ours["param_whole"].dtype) == (theirs["param_num"].dtype,
                                                                    theirs["param_whole"].dtype)
    assert ours["param_num"].dtype == np.float64 and np.isfinite(np.log10(ours["param_num"])).all()


class _ReadsARelativeFile(ClassifierMixin, BaseEstimator):
    """An estimator that reads a file by a relative path as it fits (a vocabulary, a lookup table): GridSearchCV fits
    it in the caller's folder."""

    def __init__(self, C: float = 1.0) -> None:
        self.C = C

    def fit(self, X: Any, y: Any) -> _ReadsARelativeFile:
        self.offset_ = float(Path("offset.txt").read_text())
        self.classes_ = np.unique(y)
        return self

    def predict(self, X: Any) -> Any:
        return np.full(len(X), self.classes_[0])


def test_a_search_fits_in_the_callers_folder_not_in_its_temporary_one(tmp_path: Path) -> None:
    """Inline function trials run in their spec's folder: the search's was its temporary folder, so an estimator
    reading a relative path failed every fit there."""
    (tmp_path / "offset.txt").write_text("0.5")
    search = TunedSearchCV(_ReadsARelativeFile(), {"C": [0.1, 1.0]}, cv=3, error_score="raise").fit(X, y)
    assert [t.state.value for t in search.trials_] == ["completed", "completed"]
    assert search.best_estimator_.offset_ == 0.5


def test_a_search_kept_in_a_store_keeps_its_trial_logs(tmp_path: Path) -> None:
    """With storage= the experiment outlives fit, but its workdir was the search's temporary folder: the store's
    log paths named a folder removed when fit returned. It is .tunesmith/NAME in the current folder, as a run's."""
    url = f"sqlite:///{tmp_path / 'searches.db'}"
    TunedSearchCV(LogisticRegression(max_iter=1000), {"C": [0.1, 1.0]}, cv=3, storage=url, name="lr").fit(X, y)
    recorded = tunesmith.open_experiment("lr", storage=url)
    assert recorded.experiment.spec["workdir"] == str(tmp_path / ".tunesmith" / "lr")
    assert all(Path(str(t.log_path)).is_file() for t in recorded.trials)


def test_a_search_fail_fast_stopped_says_how_many_of_the_configurations_ran() -> None:
    """A 6-point grid whose scorer always raises: fail fast stops it after the first 5, and fit said 'All the 5
    configurations failed', as if the grid had 5."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def bad(estimator: Any, X: Any, y: Any) -> float:
        raise ValueError("scorer broke")

    grid = {"svc__C": [0.1, 1, 10], "svc__kernel": ["linear", "rbf"]}
    with pytest.raises(ValueError) as info:
        TunedSearchCV(make_pipeline(StandardScaler(), SVC()), grid, cv=3, scoring=bad).fit(X, y)
    assert str(info.value).startswith("the search stopped after the first 5 of 6 configurations failed the same "
                                      "way; the first error: exception: ValueError: scorer broke"), info.value
    with pytest.raises(ValueError) as info:  # a grid that ran whole still says all of it
        TunedSearchCV(make_pipeline(StandardScaler(), SVC()), {"svc__C": [0.1, 1]}, cv=3, scoring=bad).fit(X, y)
    assert str(info.value).startswith("All the 2 configurations failed to fit; the first error: "), info.value
