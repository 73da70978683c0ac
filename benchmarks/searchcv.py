"""TunedSearchCV against GridSearchCV, RandomizedSearchCV and Optuna's OptunaSearchCV.

Same estimator, data, folds and number of configurations (so the same number of fits) for every search, on
three tasks; for each: the best CV score, the score of the refit best estimator on a holdout no search saw, and
the wall time, as means over seeds.

    python benchmarks/searchcv.py [--n-iter 20] [--seeds 3] [--markdown benchmarks/RESULTS.md]

OptunaSearchCV needs ``pip install optuna-integration`` (in the ``bench`` extra); without it, that row is
skipped with a note. Run with ``OMP_NUM_THREADS=1`` (the script sets it for itself): multithreaded BLAS on a
busy 2-core machine makes fit times swing 10x and would drown the comparison.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from scipy.stats import loguniform, randint  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_digits, load_wine  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, StratifiedKFold, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

import tunesmith  # noqa: E402
from results_file import write_section  # noqa: E402
from tunesmith.sklearn import TunedSearchCV  # noqa: E402

BEGIN, END = "<!-- searchcv:start -->", "<!-- searchcv:end -->"


@dataclass(frozen=True)
class Task:
    name: str
    load: Callable[[], tuple[np.ndarray, np.ndarray]]
    estimator: Callable[[], Any]
    grid: Callable[[int], dict[str, list[Any]]]   # a grid of about n configurations
    dist: dict[str, Any]                          # scipy distributions (Randomized, Tuned)
    optuna: Callable[[], dict[str, Any]]          # Optuna distributions
    scoring: str


def _lr_grid(n: int) -> dict[str, list[Any]]:
    return {"logisticregression__C": list(np.logspace(-3, 2, n))}


def _svc_grid(n: int) -> dict[str, list[Any]]:
    side = max(2, int(round(n ** 0.5)))
    return {"svc__C": list(np.logspace(-1, 3, side)), "svc__gamma": list(np.logspace(-4, -1, side))}


def _rf_grid(n: int) -> dict[str, list[Any]]:
    return {"n_estimators": [20, 60], "max_depth": [2, 4, 8, None][: max(1, n // 4)], "min_samples_leaf": [1, 4]}


def _optuna_lr() -> dict[str, Any]:
    from optuna.distributions import FloatDistribution
    return {"logisticregression__C": FloatDistribution(1e-3, 1e2, log=True)}


def _optuna_svc() -> dict[str, Any]:
    from optuna.distributions import FloatDistribution
    return {"svc__C": FloatDistribution(1e-1, 1e3, log=True), "svc__gamma": FloatDistribution(1e-4, 1e-1, log=True)}


def _optuna_rf() -> dict[str, Any]:
    from optuna.distributions import IntDistribution
    return {"n_estimators": IntDistribution(20, 100), "max_depth": IntDistribution(2, 12),
            "min_samples_leaf": IntDistribution(1, 8)}


TASKS = [
    Task("breast_cancer / LogisticRegression (C)", lambda: load_breast_cancer(return_X_y=True),
         lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)), _lr_grid,
         {"logisticregression__C": loguniform(1e-3, 1e2)}, _optuna_lr, "roc_auc"),
    Task("digits / SVC (C, gamma)", lambda: load_digits(return_X_y=True),
         lambda: make_pipeline(StandardScaler(), SVC()), _svc_grid,
         {"svc__C": loguniform(1e-1, 1e3), "svc__gamma": loguniform(1e-4, 1e-1)}, _optuna_svc, "accuracy"),
    Task("wine / RandomForest (3 params)", lambda: load_wine(return_X_y=True),
         lambda: RandomForestClassifier(random_state=0), _rf_grid,
         {"n_estimators": randint(20, 101), "max_depth": randint(2, 13), "min_samples_leaf": randint(1, 9)},
         _optuna_rf, "accuracy"),
]


def searches(task: Task, n: int, seed: int, cv: Any) -> list[tuple[str, Callable[[], Any]]]:
    grid = task.grid(n)
    out: list[tuple[str, Callable[[], Any]]] = [
        ("GridSearchCV", lambda: GridSearchCV(task.estimator(), grid, cv=cv, scoring=task.scoring)),
        ("RandomizedSearchCV", lambda: RandomizedSearchCV(task.estimator(), task.dist, n_iter=n, cv=cv,
                                                          scoring=task.scoring, random_state=seed)),
        ("TunedSearchCV (auto)", lambda: TunedSearchCV(task.estimator(), task.dist, n_iter=n, cv=cv,
                                                       scoring=task.scoring, random_state=seed)),
        ("TunedSearchCV (grid)", lambda: TunedSearchCV(task.estimator(), grid, n_iter=10**6, cv=cv,
                                                       scoring=task.scoring, strategy="grid", random_state=seed)),
    ]
    try:
        from optuna_integration import OptunaSearchCV

        out.append(("OptunaSearchCV (TPE)", lambda: OptunaSearchCV(
            task.estimator(), task.optuna(), n_trials=n, cv=cv, scoring=task.scoring, random_state=seed)))
    except ImportError:
        print("OptunaSearchCV skipped: pip install optuna-integration")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-iter", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--markdown", type=Path, help="write the table into this file between its markers")
    args = parser.parse_args()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    for task in TASKS:
        X, y = task.load()
        results: dict[str, list[tuple[float, float, float, int]]] = {}
        for seed in range(args.seeds):
            X_dev, X_hold, y_dev, y_hold = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
            cv = StratifiedKFold(5, shuffle=True, random_state=seed)
            for name, make in searches(task, args.n_iter, seed, cv):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # the peers' experimental-feature warnings
                    search = make()
                    started = time.perf_counter()
                    search.fit(X_dev, y_dev)
                    wall = time.perf_counter() - started
                # configurations evaluated (OptunaSearchCV keeps its trials, not cv_results_["params"])
                fits = len(search.trials_) if hasattr(search, "trials_") else len(search.cv_results_["params"])
                results.setdefault(name, []).append((search.best_score_, search.score(X_hold, y_hold), wall, fits))
        for name, rs in results.items():
            cvs, holds, walls, fits = zip(*rs, strict=True)
            rows.append((task.name, name, statistics.mean(cvs), statistics.mean(holds), statistics.mean(walls),
                         round(statistics.mean(fits))))
            print(f"{task.name:<40}{name:<24}{rows[-1][2]:>9.4f}{rows[-1][3]:>9.4f}{rows[-1][4]:>8.2f}s"
                  f"{rows[-1][5]:>5} configs")
    table = render(rows, args)
    print(table)
    if args.markdown:
        write_section(args.markdown, f"{BEGIN}\n{table}{END}\n", BEGIN, END)


def render(rows: list[tuple[str, str, float, float, float, int]], args: argparse.Namespace) -> str:
    import scipy

    lines = [
        "## TunedSearchCV against scikit-learn's and Optuna's search CVs",
        "",
        f"Command: `python benchmarks/searchcv.py --n-iter {args.n_iter} --seeds {args.seeds} --markdown "
        f"benchmarks/RESULTS.md`. Machine: {os.cpu_count()} cores, Python {platform.python_version()}, tunesmith "
        f"{tunesmith.__version__}, scikit-learn {sklearn.__version__}, optuna {optuna_version()}, scipy "
        f"{scipy.__version__}; BLAS limited to one thread for every search alike. Each search gets the same "
        "estimator, data, 5 stratified folds and number of configurations (GridSearchCV: the grid nearest that "
        f"size); {args.seeds} seeds (the seed sets the holdout split, the folds and the searches' own "
        "randomness); the holdout (25%) is never seen by any search. Means over seeds.",
        "",
        "| task | search | configs | best CV | holdout | wall (s) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for task, name, cv, hold, wall, fits in rows:
        lines.append(f"| {task} | {name} | {fits} | {cv:.4f} | {hold:.4f} | {wall:.2f} |")
    return "\n".join(lines) + "\n"


def optuna_version() -> str:
    import optuna

    return optuna.__version__


if __name__ == "__main__":
    main()
