"""Kinds of the warnings a plan or a run says, for a caller to filter on, as Python's warnings are by category.

A warning reaches the listeners as the str of its words (:meth:`tunesmith.events.RunListener.warning`). One of a
kind here is an instance of the kind's class, still that str: a listener that knows no kinds shows it as ever, and
one that says some warnings in terms of its own (TunedSearchCV) leaves them out by ``isinstance``, not by their
words, which may change.
"""

from __future__ import annotations


class RunWarning(str):
    """A warning of a kind a caller may filter on: the kinds below are its subclasses."""

    __slots__ = ()


class GridLargerThanBudget(RunWarning):
    """A grid walked in order that has more configurations than ``budget.trials``: its trials fill one corner."""

    __slots__ = ()
