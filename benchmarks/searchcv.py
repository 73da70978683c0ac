"""TunedSearchCV against GridSearchCV, RandomizedSearchCV and Optuna's OptunaSearchCV.

Same estimator, data, folds and number of configurations for every search; prints the best CV score, the score
of the refit best estimator on a holdout the searches never saw, and the wall time.

    python benchmarks/searchcv.py [--n-iter 20] [--seed 0]

OptunaSearchCV needs ``pip install optuna-integration`` (a benchmark-only dependency); without it, that row
is skipped with a note.
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import numpy as np
from scipy.stats import loguniform
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tunesmith.sklearn import TunedSearchCV


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-iter", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    X, y = load_breast_cancer(return_X_y=True)
    X_dev, X_hold, y_dev, y_hold = train_test_split(X, y, test_size=0.25, stratify=y, random_state=args.seed)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    cv = StratifiedKFold(5, shuffle=True, random_state=args.seed)
    n = args.n_iter
    grid_c = list(np.logspace(-3, 2, n))
    dist = {"logisticregression__C": loguniform(1e-3, 1e2)}
    searches: list[tuple[str, Any]] = [
        ("GridSearchCV", lambda: GridSearchCV(pipe, {"logisticregression__C": grid_c}, cv=cv, scoring="roc_auc")),
        ("RandomizedSearchCV", lambda: RandomizedSearchCV(pipe, dist, n_iter=n, cv=cv, scoring="roc_auc",
                                                          random_state=args.seed)),
        ("TunedSearchCV (tpe)", lambda: TunedSearchCV(pipe, dist, n_iter=n, cv=cv, scoring="roc_auc",
                                                      strategy="tpe", random_state=args.seed)),
        ("TunedSearchCV (grid)", lambda: TunedSearchCV(pipe, {"logisticregression__C": grid_c}, n_iter=n, cv=cv,
                                                       scoring="roc_auc", strategy="grid", random_state=args.seed)),
    ]
    try:
        import optuna
        from optuna.distributions import FloatDistribution
        from optuna_integration import OptunaSearchCV

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        searches.append(("OptunaSearchCV (tpe)", lambda: OptunaSearchCV(
            pipe, {"logisticregression__C": FloatDistribution(1e-3, 1e2, log=True)}, n_trials=n, cv=cv,
            scoring="roc_auc", random_state=args.seed)))
    except ImportError:
        print("OptunaSearchCV skipped: pip install optuna-integration")
    print(f"breast_cancer, LogisticRegression C, {n} configurations x 5 folds, roc_auc\n")
    print(f"{'search':<24}{'best CV':>10}{'holdout':>10}{'wall s':>9}")
    for name, make in searches:
        search = make()
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-feature warnings of the peers
            search.fit(X_dev, y_dev)
        wall = time.perf_counter() - started
        print(f"{name:<24}{search.best_score_:>10.4f}{search.score(X_hold, y_hold):>10.4f}{wall:>9.2f}")


if __name__ == "__main__":
    main()
