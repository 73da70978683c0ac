"""A real covariate and concept shift on bundled data, for drift and re-tune tests and benchmarks.

scikit-learn's breast_cancer rows are ordered by ``mean radius`` (with seeded jitter, so the halves overlap):
the first half is what a model was tuned on; the second half has larger tumours (a moved feature
distribution), another class balance (target drift) and 15% of its labels flipped, which moves the best
regularisation of a logistic regression (C about 0.1 on the first half, about 0.03 on the second, by log loss).
An i.i.d. split of the same size draws both halves from one random permutation of the same rows.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

FLIP_SHARE = 0.15


def _rows() -> tuple[np.ndarray, np.ndarray, list[str]]:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    names = [n.replace(" ", "_") for n in bunch.feature_names]
    return np.asarray(bunch.data, dtype=float), np.asarray(bunch.target, dtype=int), names


def write_csv(path: Path, X: np.ndarray, y: np.ndarray, names: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([*names, "label"])
        for row, label in zip(X, y, strict=True):
            w.writerow([*(f"{v:.6g}" for v in row), int(label)])
    return path


def shifted_split(folder: Path, seed: int = 0, flip_share: float = FLIP_SHARE) -> tuple[Path, Path]:
    """``reference.csv`` (smaller tumours) and ``shifted.csv`` (larger tumours, ``flip_share`` of the labels
    flipped; 0 leaves a covariate shift only) in ``folder``."""
    X, y, names = _rows()
    rng = np.random.default_rng(seed)
    order = np.argsort(X[:, 0] + rng.normal(0.0, 2.0, len(y)))
    half = len(y) // 2
    a, b = order[:half], order[half:]
    y_b = y[b].copy()
    flip = rng.random(len(b)) < flip_share
    y_b[flip] = 1 - y_b[flip]
    folder.mkdir(parents=True, exist_ok=True)
    return (write_csv(folder / "reference.csv", X[a], y[a], names),
            write_csv(folder / "shifted.csv", X[b], y_b, names))


def iid_split(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """``iid_reference.csv`` and ``iid_current.csv``: one random permutation cut in two halves of the same sizes."""
    X, y, names = _rows()
    order = np.random.default_rng(seed).permutation(len(y))
    half = len(y) // 2
    a, b = order[:half], order[half:]
    folder.mkdir(parents=True, exist_ok=True)
    return (write_csv(folder / "iid_reference.csv", X[a], y[a], names),
            write_csv(folder / "iid_current.csv", X[b], y[b], names))
