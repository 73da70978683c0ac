"""Evaluation: how one trial attempt runs (function or command) and what its result means."""

from tunesmith.evaluation.attempt import run_attempt
from tunesmith.evaluation.context import TrialContext, TrialPruned
from tunesmith.evaluation.job import TrialJob
from tunesmith.evaluation.results import normalize_result

__all__ = ["TrialContext", "TrialJob", "TrialPruned", "normalize_result", "run_attempt"]
