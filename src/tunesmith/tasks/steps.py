"""Pipeline steps tunesmith ships, for ``task.pipeline``: scikit-learn transformers in the ``tunesmith.`` namespace.

A step of the user's own (``mysteps.OneHot`` beside the spec) runs in a task, but the model holding it cannot be
promoted: the registry stores models in the skops format and loads back only types of an allow-list of modules
(:data:`tunesmith.tracking.model_registry.TRUSTED_MODULES`), which holds ``tunesmith.`` and not the user's. Nor can
a ``ColumnTransformer`` be written in a spec (its transformers are estimator objects). So what a tabular task needs
and scikit-learn cannot give from YAML is here: :class:`OneHotText`, a one-hot encoding of the text columns that
tunesmith reads as level codes (:mod:`tunesmith.tasks.data`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from tunesmith.errors import SpecError
from tunesmith.suggestions import closest

if TYPE_CHECKING:
    from tunesmith.tasks.data import Dataset


class OneHotText(TransformerMixin, BaseEstimator):
    """One-hot encode some columns (by default every text column of the task's data) and pass the others through.

    tunesmith reads a text feature column as the codes of its sorted distinct values (a missing value: NaN), and a
    linear model takes those codes for a quantity. This step gives each level a 0/1 column of its own, as
    scikit-learn's ``OneHotEncoder`` does (a missing value is a level of its own). A level the training rows never had
    (one only the holdout or new rows hold) is, by default, no known level: all its columns 0. With
    ``handle_unknown: error`` it raises instead, as ``OneHotEncoder`` does by default.

    The output holds the encoded columns' 0/1 columns first (in the order of ``columns``, each column's levels in
    code order), then the other columns in their order, as a ``ColumnTransformer`` with ``remainder='passthrough'``.

    Args:
        columns: the columns to encode, as positions among the rows' columns (0 the first feature) or, in a task,
            names of its feature columns; None (the default): every text column of the task's data. A task turns
            names and None into positions as it builds the pipeline (:func:`bind_text_columns`); outside a task, give
            positions (or names, fitting a pandas DataFrame).
        handle_unknown: as ``OneHotEncoder``'s: ``ignore`` (the default here: an unknown level is all zeros),
            ``error`` (it raises, naming the column), ``infrequent_if_exist`` (as ``ignore``: no level is made
            infrequent here), ``warn`` (as ``ignore``, with a warning).
        feature_names: the rows' column names, for messages (a task sets its features'); None: positions.
    """

    def __init__(self, columns: Sequence[int | str] | None = None, handle_unknown: str = "ignore",
                 feature_names: Sequence[str] | None = None) -> None:
        self.columns = columns
        self.handle_unknown = handle_unknown
        self.feature_names = feature_names

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # a missing value is a level of its own; in the other columns, passed on
        return tags

    def fit(self, X: Any, y: Any = None) -> OneHotText:
        from sklearn.preprocessing import OneHotEncoder
        from sklearn.utils.validation import validate_data

        names = [str(c) for c in getattr(X, "columns", [])]  # a DataFrame's, for columns given by name
        X = validate_data(self, X, dtype=float, ensure_all_finite="allow-nan")
        positions = self._positions(X.shape[1], names)
        self.encoded_ = positions
        self.passed_ = np.asarray([j for j in range(X.shape[1]) if j not in set(positions.tolist())], dtype=int)
        self.encoder_ = OneHotEncoder(handle_unknown=self.handle_unknown, sparse_output=False, dtype=float)
        self.encoder_.fit(X[:, positions])
        return self

    def transform(self, X: Any) -> np.ndarray:
        from sklearn.utils.validation import check_is_fitted, validate_data

        check_is_fitted(self, "encoder_")
        X = validate_data(self, X, dtype=float, ensure_all_finite="allow-nan", reset=False)
        if self.handle_unknown == "error":
            self._refuse_unknown_levels(X)
        return np.hstack([self.encoder_.transform(X[:, self.encoded_]), X[:, self.passed_]])

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "encoder_")
        if input_features is None:
            input_features = getattr(self, "feature_names_in_", [f"x{j}" for j in range(self.n_features_in_)])
        names = np.asarray(input_features, dtype=object)
        if len(names) != self.n_features_in_:
            raise ValueError(f"input_features holds {len(names)} names; the rows had {self.n_features_in_} columns")
        return np.concatenate([self.encoder_.get_feature_names_out(names[self.encoded_]), names[self.passed_]])

    def _refuse_unknown_levels(self, X: np.ndarray) -> None:
        """OneHotEncoder's own error named a level by its code and the column by its place among the encoded ones
        (``unknown categories [np.float64(4.0)] in column 0``): here the column's name, where one is known."""
        for k, position in enumerate(self.encoded_):
            known = self.encoder_.categories_[k]
            values = X[:, position]
            unknown = ~np.isin(values, known) & ~(np.isnan(values) & np.isnan(known).any())
            if unknown.any():
                names = getattr(self, "feature_names", None) or getattr(self, "feature_names_in_", None)
                column = repr(str(names[position])) if names is not None else str(int(position))
                code = values[np.flatnonzero(unknown)[0]]
                raise ValueError(
                    f"OneHotText: column {column} holds a level the rows it was fit on never had: code {code:g} (the "
                    f"level's place among the column's sorted text values), an unknown category, which handle_unknown:"
                    f" error refuses ({int(unknown.sum())} such row(s)); in cross-validation a level few rows hold can "
                    "be missing from a fold's training rows: handle_unknown: ignore encodes it as no known level")

    def _positions(self, width: int, names: list[str]) -> np.ndarray:
        """``columns`` as positions among ``width`` columns (a name: among ``names``, a DataFrame's columns).

        Raises:
            ValueError: no columns given, a name that is none of ``names``, a position out of range.
        """
        if self.columns is None:
            raise ValueError("OneHotText was given no columns: a task names its text columns, elsewhere give "
                             "columns=[positions]")
        positions = []
        for c in self.columns:
            if isinstance(c, str):
                if c not in names:
                    raise ValueError(f"OneHotText: no column named {c!r} in the rows given"
                                     f"{'' if names else ' (they have no column names: give positions)'}")
                positions.append(names.index(c))
            elif not -width <= int(c) < width:
                raise ValueError(f"OneHotText: column {c} is out of range for rows of {width} columns")
            else:
                positions.append(int(c) % width)
        return np.asarray(sorted(set(positions), key=positions.index), dtype=int)


HANDLE_UNKNOWN = ("ignore", "error", "infrequent_if_exist", "warn")  # OneHotEncoder's, scikit-learn 1.6 on


def bind_text_columns(pipe: Any, data: Dataset, wheres: Sequence[str]) -> None:
    """Set each :class:`OneHotText` step of ``pipe`` (a task's built pipeline; ``wheres``: its steps' spec fields)
    to positions among ``data``'s features: its names turned into positions, None into every text column's.

    Raises:
        SpecError: at ``<step>``: it is not the pipeline's first step. At ``<step>.params.columns``: a name that is
            no feature (with the closest), a position out of range, no text column to encode.
    """
    features = list(data.feature_names)
    for i, ((_, step), where) in enumerate(zip(pipe.steps, wheres, strict=True)):
        if isinstance(step, OneHotText):
            if i:  # its columns are positions in the data: a step before it may drop or reorder them
                raise SpecError(where, "tunesmith.tasks.steps.OneHotText must be task.pipeline's first step: it "
                                       "reads the task's data's own columns (their positions), which a step before "
                                       f"it ({type(pipe.steps[0][1]).__name__}) may drop or reorder; move it first "
                                       "(a missing value is a level of its own, so it needs no imputer before it)")
            if step.handle_unknown not in HANDLE_UNKNOWN:  # OneHotEncoder would refuse it at every trial's fit
                raise SpecError(f"{where}.params.handle_unknown", f"must be one of {', '.join(HANDLE_UNKNOWN)}; got "
                                                                  f"{step.handle_unknown!r}")
            step.set_params(columns=_positions_of(step.columns, features, data.column_types, f"{where}.params.columns"),
                            feature_names=features)


def _positions_of(columns: Sequence[int | str] | None, features: list[str], types: dict[str, str],
                  field: str) -> list[int]:
    if columns is None:
        text = [j for j, name in enumerate(features) if types.get(name) == "string"]
        if not text:
            raise SpecError(field, f"no feature column is text ({', '.join(features[:8])}"
                                   f"{', ...' if len(features) > 8 else ''} are all numbers), so OneHotText has "
                                   "nothing to encode: name the columns to encode (columns: [name, ...]), or drop "
                                   "the step")
        return text
    if isinstance(columns, str | int) or not isinstance(columns, Sequence):
        raise SpecError(field, f"must be a list of feature columns (names or positions); got {columns!r}")
    out = []
    for i, c in enumerate(columns):
        if isinstance(c, str):
            if c not in features:
                close = closest(c, features)
                raise SpecError(f"{field}.{i}", f"{c!r} is not a feature column of the task's data"
                                                f"{f'; did you mean {close!r}?' if close else ''} (features: "
                                                f"{', '.join(features[:8])}{', ...' if len(features) > 8 else ''})")
            out.append(features.index(c))
        elif isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < len(features):
            raise SpecError(f"{field}.{i}", f"must be a feature column's name or its position, 0 to "
                                            f"{len(features) - 1}; got {c!r}")
        else:
            out.append(c)
    return out
