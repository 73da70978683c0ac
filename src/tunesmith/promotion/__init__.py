"""Promotion: from the best trial to the serving model, through gates that are checked, recorded and reversible.

    promote(store, name, model_name, clock, trial_number=None, policy_file=None, dry_run=False, ...)
        -> PromotionOutcome      (tunesmith.promotion.promote)
    rollback(store, model_name, clock, uri, reason) -> RollbackOutcome

Gates live in :mod:`tunesmith.promotion.gates`, the report in :mod:`tunesmith.promotion.report`, the choice of
trial in :mod:`tunesmith.promotion.candidate`, whether a trial's model was rolled back in
:mod:`tunesmith.promotion.rollbacks`. MLflow is reached only through :mod:`tunesmith.tracking`. A promotion or
rollback killed partway: its intent in the store (:mod:`tunesmith.promotion.intents`), the rollback's steps
(:mod:`tunesmith.promotion.rolling_back`), and what the next command settles (:mod:`tunesmith.promotion.settling`).
"""
