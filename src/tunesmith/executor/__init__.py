"""Executors: where trials run. ``process`` (isolated, default) and ``inline`` (debugging)."""

from tunesmith.executor.base import AttemptEnded, Executor, ExecutorEvent, TrialReported

__all__ = ["AttemptEnded", "Executor", "ExecutorEvent", "TrialReported"]
