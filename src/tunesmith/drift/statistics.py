"""Per-column drift tests between a reference sample and a current one (scipy only).

Numeric columns: the population stability index over the reference's quantile bins, and the two-sample
Kolmogorov-Smirnov test, on the values present; and their missing share, as a category of its own would be
(:class:`MissingShare`: PSI over the two shares, missing and present, and the chi-square test of the 2 x 2 table),
so that a feature arriving nine in ten empty is not judged by the few values left. Categorical columns: PSI over
the categories (a missing value is one) and the chi-square test of the 2 x k table of counts. A column drifted
when the shift is both significant and large: its p-value falls below ``alpha / tests`` (Bonferroni over the
columns tested together, so a wide table does not raise false alarms by sheer number of tests) and its PSI
reaches ``psi``. The p-value alone would flag trivial shifts in a large sample; the PSI alone is noisy in a small
one (its expectation between two samples of one distribution grows like bins / rows).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from tunesmith.suggestions import listed

_EPS = 1e-4  # PSI floor for an empty bin: ln(0) is undefined, and a tiny share is what an empty bin estimates


class ColumnKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


class ColumnRole(StrEnum):
    FEATURE = "feature"
    TARGET = "target"



def _share(count: int, rows: int) -> str:
    share = count / max(rows, 1)
    return f"{share:.1%}" if 0 < share < 0.01 else f"{share:.0%}"


@dataclass(frozen=True)
class MissingShare:
    """A numeric column's missing values (NaN, an empty cell, ``NA``...) out of its rows, on either side, tested as
    a categorical column's missing level is: drifted when the shift in the share is both significant (chi-square of
    the 2 x 2 table below the column's ``alpha``) and large (PSI over the two shares reaching ``psi``), or when every
    new value is missing while the reference had some (nothing is left to compare, and a model sees only its
    imputer's fill)."""

    reference: int
    reference_rows: int
    current: int
    current_rows: int
    p_value: float
    psi: float

    @classmethod
    def tested(cls, reference: np.ndarray, current: np.ndarray) -> MissingShare:
        from scipy.stats import chi2_contingency

        r, c = int(np.isnan(reference).sum()), int(np.isnan(current).sum())
        table = np.asarray([[r, len(reference) - r], [c, len(current) - c]], dtype=float)
        p = 1.0
        if table.sum(axis=0).all():  # a column of zeros (none missing, or all, on both sides): nothing moved
            p = float(chi2_contingency(table).pvalue)
        shares = table / np.maximum(table.sum(axis=1, keepdims=True), 1)
        return cls(r, len(reference), c, len(current), p, _psi(shares[0], shares[1]))

    @property
    def all_missing(self) -> bool:
        return self.current == self.current_rows > 0 and self.reference < self.reference_rows

    def drifted(self, alpha: float, psi: float) -> bool:
        return self.all_missing or (self.psi >= psi and self.p_value < alpha)

    def reason(self, alpha: float, psi: float) -> str:
        before = f"{_share(self.reference, self.reference_rows)} before"
        if self.all_missing:
            return f"all {self.current} values missing, {before}"
        return (f"{self.current} of {self.current_rows} values missing ({_share(self.current, self.current_rows)}), "
                f"{before}: chi2 p {self.p_value:.2e} < {alpha:.2e} and PSI {self.psi:.3f} >= {psi:g}")

    def to_json(self, alpha: float, psi: float) -> dict[str, Any]:
        return {"reference": self.reference, "reference_rows": self.reference_rows, "current": self.current,
                "current_rows": self.current_rows, "p_value": self.p_value, "psi": self.psi,
                "drifted": self.drifted(alpha, psi)}


@dataclass(frozen=True)
class ColumnDrift:
    """One column's tests. ``p_value`` is the KS (numeric) or chi-square (categorical) p-value, unadjusted; NaN when
    a side has no value to test (a numeric column arriving all empty: ``missing`` says so). ``reference_rows`` and
    ``current_rows``: the values tested (a numeric column's present ones)."""

    name: str
    role: ColumnRole
    kind: ColumnKind
    test: str                 # "ks" or "chi2"
    statistic: float
    p_value: float
    psi: float
    alpha_adjusted: float
    psi_threshold: float
    reference_rows: int
    current_rows: int
    missing: MissingShare | None = None     # a numeric column's (a categorical one counts missing as a level)
    new_levels: tuple[str, ...] = ()        # a categorical column's levels the reference never had, most rows first

    @property
    def values_drifted(self) -> bool:
        return self.psi >= self.psi_threshold and self.p_value < self.alpha_adjusted

    @property
    def missing_drifted(self) -> bool:
        return self.missing is not None and self.missing.drifted(self.alpha_adjusted, self.psi_threshold)

    @property
    def drifted(self) -> bool:
        return self.values_drifted or self.missing_drifted

    @property
    def reason(self) -> str:
        said = []
        if self.missing is not None and self.missing_drifted:
            said.append(self.missing.reason(self.alpha_adjusted, self.psi_threshold))
        if self.values_drifted:
            said.append(f"{self.test} p {self.p_value:.2e} < {self.alpha_adjusted:.2e} and PSI {self.psi:.3f} >= "
                        f"{self.psi_threshold:g}")
            if self.new_levels:
                said.append(f"new level(s) {listed([repr(v) for v in self.new_levels], 3)}")
        return "; ".join(said)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role.value, "kind": self.kind.value, "test": self.test,
                "statistic": _finite(self.statistic), "p_value": _finite(self.p_value), "psi": _finite(self.psi),
                "alpha_adjusted": self.alpha_adjusted, "psi_threshold": self.psi_threshold,
                "reference_rows": self.reference_rows, "current_rows": self.current_rows,
                "missing": (self.missing.to_json(self.alpha_adjusted, self.psi_threshold)
                            if self.missing is not None else None),
                "new_levels": list(self.new_levels), "drifted": self.drifted, "reason": self.reason}


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def population_stability_index(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """PSI of two numeric samples over the reference's quantile bins (NaNs dropped): sum (c - r) ln(c / r)."""
    ref = reference[~np.isnan(reference)]
    cur = current[~np.isnan(current)]
    if len(ref) == 0 or len(cur) == 0:
        return math.nan
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    r = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1) / len(ref)
    c = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1) / len(cur)
    return _psi(r, c)


def _psi(r: np.ndarray, c: np.ndarray) -> float:
    r = np.maximum(r, _EPS)
    c = np.maximum(c, _EPS)
    return float(np.sum((c - r) * np.log(c / r)))


def numeric_drift(name: str, role: ColumnRole, reference: np.ndarray, current: np.ndarray, *, bins: int,
                  psi: float, alpha: float) -> ColumnDrift:
    from scipy.stats import ks_2samp

    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    missing = MissingShare.tested(ref, cur)
    ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if len(ref) and len(cur):
        result = ks_2samp(ref, cur)
        stat, p = float(result.statistic), float(result.pvalue)
    else:  # untestable, not "the same" (p 1.0): the missing share says what happened
        stat, p = math.nan, math.nan
    return ColumnDrift(name, role, ColumnKind.NUMERIC, "ks", stat, p,
                       population_stability_index(ref, cur, bins), alpha, psi, len(ref), len(cur), missing)


def categorical_drift(name: str, role: ColumnRole, reference: Sequence[Any], current: Sequence[Any], *,
                      psi: float, alpha: float) -> ColumnDrift:
    """Chi-square test of homogeneity over the categories of either sample (a missing value is a category)."""
    from scipy.stats import chi2_contingency

    ref = [_category(v) for v in reference]
    cur = [_category(v) for v in current]
    levels = sorted(set(ref) | set(cur))
    r = np.asarray([ref.count(v) for v in levels], dtype=float)
    c = np.asarray([cur.count(v) for v in levels], dtype=float)
    if len(levels) < 2 or not len(ref) or not len(cur):
        stat, p = 0.0, 1.0
    else:
        result = chi2_contingency(np.vstack([r, c]))
        stat, p = float(result.statistic), float(result.pvalue)
    share_r = r / max(len(ref), 1)
    share_c = c / max(len(cur), 1)
    new = sorted((v for v, n_ref in zip(levels, r, strict=True) if not n_ref), key=cur.count, reverse=True)
    return ColumnDrift(name, role, ColumnKind.CATEGORICAL, "chi2", stat, p, _psi(share_r, share_c), alpha, psi,
                       len(ref), len(cur), new_levels=tuple(new))


def _category(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "<missing>"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))  # 1.0 from one file and "1" from another are the same category
    s = str(v).strip()
    try:
        f = float(s)
    except ValueError:
        return s
    return str(int(f)) if f.is_integer() else s
