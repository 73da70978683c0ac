"""Executors: where trials run. ``process`` (isolated, default), ``inline`` (debugging), ``ray`` (a Ray cluster)."""

from tunesmith.executor.base import AttemptEnded, Executor, ExecutorEvent, TrialReported

__all__ = ["AttemptEnded", "Executor", "ExecutorEvent", "TrialReported"]
