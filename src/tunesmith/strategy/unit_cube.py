"""A search space as points of the unit cube, for model-based strategies (the Gaussian process in ``bayes``).

Each Float and Int takes one column in [0, 1], on a log scale where the domain says ``log``; an Int or a stepped
Float is relaxed to a real there and rounded on the way back. Each Categorical takes one column per choice
(one-hot). An inactive conditional parameter encodes as 0.5 (numeric) or all zeros (categorical), so configurations
that differ only in parameters they do not use are the same point.

``snap`` maps any point of the cube to the encoding of the configuration it decodes to, so a model scores the
configuration that would actually run, not a fractional int between two.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from tunesmith.records import ParamValue
from tunesmith.space import Categorical, Float, Int, SearchSpace


@dataclass(frozen=True, slots=True)
class _Numeric:
    name: str
    column: int
    low: float           # on the encoded scale (log when ``log``)
    high: float
    bounds: tuple[float, float]   # the domain's own low and high (exp(log(low)) can fall just below low)
    log: bool
    step: float | None   # on the natural scale; None for a continuous Float
    integer: bool

    def natural(self, x: np.ndarray) -> np.ndarray:
        """Natural-scale values of unit-cube coordinates, rounded to the domain's grid, within bounds."""
        x = np.clip(x, 0.0, 1.0)
        v = self.low + x * (self.high - self.low)
        if self.log:
            v = np.exp(v)
        lo, hi = self.bounds
        v = np.where(x >= 1.0, hi, np.where(x <= 0.0, lo, v))  # the bounds themselves, not a rounding error off
        if self.step is not None:
            v = lo + np.round((v - lo) / self.step) * self.step
        elif self.integer:
            v = np.round(v)
        return np.clip(v, lo, hi)

    def unit(self, v: np.ndarray) -> np.ndarray:
        e = np.log(v) if self.log else v
        return (e - self.low) / (self.high - self.low)


@dataclass(frozen=True, slots=True)
class _OneHot:
    name: str
    column: int
    choices: tuple[ParamValue, ...]


class UnitCube:
    """Encode configurations of ``space`` as rows of a matrix in [0, 1]^dims, and decode rows back."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self._numeric: list[_Numeric] = []
        self._onehot: list[_OneHot] = []
        column = 0
        for name in space.names:
            dom = space.domains[name]
            if isinstance(dom, Categorical):
                self._onehot.append(_OneHot(name, column, tuple(dom.choices)))
                column += len(dom.choices)
                continue
            assert isinstance(dom, Float | Int)
            lo, hi = (math.log(dom.low), math.log(dom.high)) if dom.log else (float(dom.low), float(dom.high))
            step = float(dom.step) if dom.step is not None and not (isinstance(dom, Int) and dom.step == 1) else None
            self._numeric.append(_Numeric(name, column, lo, hi, (float(dom.low), float(dom.high)), dom.log, step,
                                          isinstance(dom, Int)))
            column += 1
        self.dims = column

    @property
    def numeric_columns(self) -> list[int]:
        return [n.column for n in self._numeric]

    @property
    def categorical_blocks(self) -> list[tuple[int, int]]:
        """(first column, number of choices) for each categorical parameter."""
        return [(c.column, len(c.choices)) for c in self._onehot]

    def encode(self, params: Mapping[str, ParamValue]) -> np.ndarray:
        x = np.zeros(self.dims)
        for n in self._numeric:
            value = params.get(n.name)
            x[n.column] = (0.5 if value is None or isinstance(value, str | bool)
                           else float(n.unit(np.asarray(float(value)))))
        for c in self._onehot:
            if c.name in params:
                for i, choice in enumerate(c.choices):
                    if params[c.name] == choice and type(params[c.name]) is type(choice):
                        x[c.column + i] = 1.0
        return x

    def decode(self, x: np.ndarray) -> dict[str, ParamValue]:
        """The configuration a point stands for (inactive parameters left out)."""
        values: dict[str, ParamValue] = {}
        for n in self._numeric:
            v = float(n.natural(np.asarray([x[n.column]]))[0])
            values[n.name] = int(v) if n.integer else v
        for c in self._onehot:
            values[c.name] = c.choices[int(np.argmax(x[c.column:c.column + len(c.choices)]))]
        return self.space.sample_active(lambda name, dom: values[name])

    def snap(self, x: np.ndarray) -> np.ndarray:
        """Rows of ``x`` moved to the encodings of the configurations they decode to (vectorised)."""
        out = np.array(x, dtype=float, copy=True)
        for n in self._numeric:
            if n.step is not None or n.integer:
                out[:, n.column] = n.unit(n.natural(out[:, n.column]))
            else:
                out[:, n.column] = np.clip(out[:, n.column], 0.0, 1.0)
        for c in self._onehot:
            block = out[:, c.column:c.column + len(c.choices)]
            hot = np.argmax(block, axis=1)
            block[:] = 0.0
            block[np.arange(len(out)), hot] = 1.0
        if self.space.is_conditional:
            out = np.vstack([self.encode(self.decode(row)) for row in out])
        return out

    def random(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """``count`` uniformly random configurations, encoded."""
        x = rng.random((count, self.dims))
        for c in self._onehot:
            x[:, c.column:c.column + len(c.choices)] = 0.0
            x[np.arange(count), c.column + rng.integers(len(c.choices), size=count)] = 1.0
        return self.snap(x)
