"""A search space's grid addressed by position: the k-th configuration of :meth:`SearchSpace.iter_grid`'s order,
computed alone, and the grid's exact size, without listing the grid or any parameter's values (a grid of 10^9
configurations, or an int of 0..10^9, is never a list).

The order is iter_grid's: parameters in the space's order, the last one changing fastest, an inactive parameter
skipped. Unconditional, that is mixed radix. Conditional, how many configurations follow a choice depends on the
values given so far, but only on those of parameters that condition a later one, and of those only on which
``when`` value they are (one matching none deactivates its children as an absent parent does): so the counts are
kept per (position, those values), a handful of entries. Parameters that no chain of conditions links are
independent, and the configurations that follow a position are the product of each linked group's: twenty
``use_x`` flags declared before the twenty values they switch on are twenty groups of a few entries each, not 2^20
combinations of flags.

What stays costly: a parameter conditioned on many parents declared before it (one child of twenty flags) is counted
per combination of their ``when`` values given so far. :attr:`GridIndex.counts_bound` bounds that before anything is
counted, and :func:`grid_size` counts such a grid by walking it, no further than ``COUNTED_UP_TO``.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from itertools import islice

from tunesmith.records import ParamValue
from tunesmith.space.search_space import SearchSpace, is_one_of, values_in_grid

# Per parent, in its slot: the grid position of its value where that value is one a `when` names, else None
# (absent, inactive, not yet given, or a value no condition names: to a child all of these are one).
_State = tuple[int | None, ...]

COUNTED_UP_TO = 100_000  # grid_size keeps no more counts, and walks no more configurations, than this


@dataclass(frozen=True)
class _Linked:
    """Parameters linked by conditions (a parent, its children, theirs...): their positions in the space's order,
    ascending, and for each of them the slots of the parents that it or a later one of them is conditioned on (what
    the configurations that follow there depend on)."""

    positions: tuple[int, ...]
    needed: tuple[tuple[int, ...], ...]


class GridIndex:
    """The grid of ``space`` with ``float_points`` values per float without a step.

    Attributes:
        size: how many configurations the grid holds (exact, whatever its size), counted at its first use.
        counts_bound: at most this many counts are kept to count the grid (each a few steps), known before any is.
    """

    def __init__(self, space: SearchSpace, float_points: int) -> None:
        self._space = space
        self._points = float_points
        order = space.order
        self._counts = [values_in_grid(space.domains[n], float_points) for n in order]
        parents = sorted({p for n in order for p in space.domains[n].when or {}}, key=order.index)
        self._slot = {p: i for i, p in enumerate(parents)}
        # a parent's grid positions whose value some `when` names, ascending; and for each (child, parent) those of
        # them that activate the child
        self._named: dict[str, list[int]] = {}
        self._activating: dict[tuple[str, str], frozenset[int]] = {}
        for parent in parents:
            domain = space.domains[parent]
            conditions = {n: space.domains[n].when[parent] for n in order  # type: ignore[index]
                          if parent in (space.domains[n].when or {})}
            named = {k for allowed in conditions.values() for v in (allowed if isinstance(allowed, list) else [allowed])
                     if (k := domain.grid_position(v, float_points)) is not None}
            self._named[parent] = sorted(named)
            for child, allowed in conditions.items():
                self._activating[child, parent] = frozenset(
                    k for k in named if is_one_of(domain.grid_point(k, float_points), allowed))
        self._groups = _linked_groups(space, self._slot)
        self._group_of = {i: g for g, group in enumerate(self._groups) for i in group.positions}
        # the product of the values of the parameters no condition links, from each position on
        self._unlinked_after = [1] * (len(order) + 1)
        for i in reversed(range(len(order))):
            self._unlinked_after[i] = self._unlinked_after[i + 1] * (1 if i in self._group_of else self._counts[i])
        self._memo: dict[tuple[int, int, _State], int] = {}
        # a count is kept per (linked position, the `when` values, or none, of the parents it needs given before it)
        given_at = [order.index(p) for p in parents]  # by slot
        self.counts_bound = sum(math.prod(len(self._named[parents[s]]) + 1 for s in needed if given_at[s] < j)
                                for group in self._groups
                                for j, needed in zip(group.positions, group.needed, strict=True))

    @cached_property
    def size(self) -> int:
        start: _State = (None,) * len(self._slot)
        size = self._unlinked_after[0]
        for g in range(len(self._groups)):
            size *= self._following_in(g, 0, start)
        return size

    def point(self, k: int) -> dict[str, ParamValue]:
        """The grid's configuration at position ``k`` (0 <= k < size) of iter_grid's order: at each parameter, the
        value whose block of following configurations holds ``k``, and ``k`` within that block."""
        if not 0 <= k < self.size:
            raise IndexError(f"grid position {k} is outside 0..{self.size - 1}")
        state: _State = (None,) * len(self._slot)
        # each linked group's completions from the position reached; the product of them all
        groups = [self._following_in(g, 0, state) for g in range(len(self._groups))]
        together = self.size // self._unlinked_after[0]
        config: dict[str, ParamValue] = {}
        for i, name in enumerate(self._space.order):
            g = self._group_of.get(i)
            if g is None:
                position, k = divmod(k, self._unlinked_after[i + 1] * together)
            elif not self._active(name, state):
                continue  # its group's completions are those of the parameters after it
            else:
                others = self._unlinked_after[i + 1] * (together // groups[g])
                position, k, state, after = self._choose(g, i, name, state, k, others)
                together = together // groups[g] * after
                groups[g] = after
            config[name] = self._space.domains[name].grid_point(position, self._points)
        return config

    def _choose(self, g: int, i: int, name: str, state: _State, k: int,
                others: int) -> tuple[int, int, _State, int]:
        """(the value's grid position, what is left of ``k`` past it, the state after it, its group's completions
        after it) for the active parameter at position ``i`` of group ``g``; ``others``: the completions of the
        parameters after it outside its group. The values' blocks, in grid order, are passed over whole."""
        if name not in self._slot:  # every value is followed by as many configurations
            after = self._following_in(g, i + 1, state)
            return *divmod(k, others * after), state, after
        unnamed = self._given(state, name, None)
        after_unnamed = self._following_in(g, i + 1, unnamed)
        each = others * after_unnamed  # the configurations after each value no condition names
        start = 0
        for position in [*self._named[name], self._counts[i]]:
            if k < (position - start) * each:
                return start + k // each, k % each, unnamed, after_unnamed
            k -= (position - start) * each
            if position == self._counts[i]:
                break
            named = self._given(state, name, position)
            after = self._following_in(g, i + 1, named)
            if k < others * after:
                return position, k, named, after
            k -= others * after
            start = position + 1
        raise AssertionError("a grid position within size always falls in one value's block")  # pragma: no cover

    def _following_in(self, g: int, i: int, state: _State) -> int:
        """How many ways the parameters of linked group ``g`` at position ``i`` or after complete ``state``."""
        group = self._groups[g]
        at = bisect_left(group.positions, i)
        if at == len(group.positions):
            return 1
        j = group.positions[at]
        key = (g, j, tuple(state[s] for s in group.needed[at]))
        memo = self._memo.get(key)
        if memo is not None:
            return memo
        name = self._space.order[j]
        if not self._active(name, state):
            count = self._following_in(g, j + 1, state)
        elif name not in self._slot:
            count = self._counts[j] * self._following_in(g, j + 1, state)
        else:
            named = self._named[name]
            count = (self._counts[j] - len(named)) * self._following_in(g, j + 1, self._given(state, name, None))
            count += sum(self._following_in(g, j + 1, self._given(state, name, k)) for k in named)
        self._memo[key] = count
        return count

    def _active(self, name: str, state: _State) -> bool:
        when: Mapping[str, object] = self._space.domains[name].when or {}
        return all((k := state[self._slot[p]]) is not None and k in self._activating[name, p] for p in when)

    def _given(self, state: _State, name: str, position: int | None) -> _State:
        slot = self._slot[name]
        return (*state[:slot], position, *state[slot + 1:])


def grid_size(space: SearchSpace, float_points: int) -> int | None:
    """How many configurations the grid of ``space`` holds, exact; ``None`` for more than ``COUNTED_UP_TO`` where
    counting them exactly would keep more than ``COUNTED_UP_TO`` counts (:attr:`GridIndex.counts_bound`). Such a
    grid is walked instead, no further than ``COUNTED_UP_TO`` configurations, and not at all where one parameter's
    values alone pass it (iter_grid lists them; every parameter is active somewhere: a spec's conditions must be
    able to hold)."""
    grid = GridIndex(space, float_points)
    if grid.counts_bound <= COUNTED_UP_TO:
        return grid.size
    if max(values_in_grid(d, float_points) for d in space.domains.values()) > COUNTED_UP_TO:
        return None
    walked = sum(1 for _ in islice(space.iter_grid(float_points), COUNTED_UP_TO + 1))
    return walked if walked <= COUNTED_UP_TO else None


def _linked_groups(space: SearchSpace, slot: Mapping[str, int]) -> list[_Linked]:
    """The groups of parameters that conditions link (each with a condition in it): a union-find over the links."""
    order = space.order
    root = {n: n for n in order}

    def find(n: str) -> str:
        while root[n] != n:
            root[n] = root[root[n]]
            n = root[n]
        return n

    for child in order:
        for parent in space.domains[child].when or {}:
            root[find(child)] = find(parent)
    members: dict[str, list[int]] = {}
    for i, name in enumerate(order):
        if name in slot or space.domains[name].when:
            members.setdefault(find(name), []).append(i)
    groups = []
    for positions in members.values():
        needed = [tuple(sorted({slot[p] for i in positions[at:] for p in space.domains[order[i]].when or {}}))
                  for at in range(len(positions))]
        groups.append(_Linked(tuple(positions), tuple(needed)))
    return groups
