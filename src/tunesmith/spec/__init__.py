"""The experiment spec: a declared, validated, storable description of a tuning job."""

from tunesmith.spec.loader import load_spec, spec_from_dict
from tunesmith.spec.model import Budget, Executor, ExperimentSpec, Objective, StrategyChoice, TrialRef

__all__ = ["Budget", "Executor", "ExperimentSpec", "Objective", "StrategyChoice", "TrialRef", "load_spec",
           "spec_from_dict"]
