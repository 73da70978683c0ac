"""The tags tunesmith writes on a model version it registers, and what they tell: the experiment and trial it came
from, the champion it replaced, and the promotion that registered it (the rollback's tags are
:mod:`tunesmith.promotion.rollbacks`')."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunesmith.records import ExperimentRecord

if TYPE_CHECKING:
    from tunesmith.tracking.model_registry import ModelVersion

EXPERIMENT_TAG = "tunesmith.experiment"
CREATED_AT_TAG = "tunesmith.created_at"  # with tunesmith.experiment, which experiment (as the MLflow tracker tags runs)
TRIAL_TAG = "tunesmith.trial"
PREVIOUS_CHAMPION_TAG = "tunesmith.previous_champion"
# the token of the promotion_started event whose promotion registered it: how an interrupted one finds its version
PROMOTION_TAG = "tunesmith.promotion"
# on a version whose promotion was interrupted before alias champion moved to it: why. It never served, and is no
# trial's model (its rollbacks read past it)
ABANDONED_TAG = "tunesmith.abandoned"


def of_experiment(version: ModelVersion, experiment: ExperimentRecord) -> bool:
    """Whether ``version`` was registered from ``experiment``: its name, and when it was created where the version
    says (versions registered by an older tunesmith do not). The name alone is not the experiment: stores sharing a
    registry, or a name deleted and run again, have other experiments by it."""
    return version.tags.get(EXPERIMENT_TAG) == experiment.name \
        and version.tags.get(CREATED_AT_TAG) in (None, repr(experiment.created_at))


__all__ = ["ABANDONED_TAG", "CREATED_AT_TAG", "EXPERIMENT_TAG", "PREVIOUS_CHAMPION_TAG", "PROMOTION_TAG", "TRIAL_TAG",
           "of_experiment"]
