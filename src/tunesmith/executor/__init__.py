"""Executors: where trials run. ``process`` (isolated, default), ``inline`` (debugging), ``ray`` (a Ray cluster)."""

from tunesmith.executor.base import AttemptEnded, AttemptStarted, Executor, ExecutorEvent, TrialReported

__all__ = ["AttemptEnded", "AttemptStarted", "Executor", "ExecutorEvent", "TrialReported"]
