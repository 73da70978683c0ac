"""Gate beat_champion on a holdout too small for its margin: a daily file of ~280 rows leaves 57 holdout rows, on
which the 90% paired-bootstrap interval is wider than deploy/models/churn.yaml's margin of -0.01, so a re-tune that
scored higher than the champion was rejected (`lower 90% bound of the improvement -0.02028 < margin -0.01 over
champion v1 (holdout_roc_auc: 0.9662 vs 0.9584)`) with nothing saying why. The rejection now says how many holdout
rows would let an improvement that large pass."""

from __future__ import annotations

from tunesmith.promotion.gates import ChampionComparison, champion_gate
from tunesmith.spec.promotion_config import PromotionConfig

POLICY = PromotionConfig.model_validate({"beat_champion": {"metric": "roc_auc", "margin": -0.01, "confidence": 0.9,
                                                           "resamples": 300}})


def _judged(improvement: float, low: float, rows: int | None = 57) -> str:
    result = champion_gate(POLICY, ChampionComparison("1", "holdout_roc_auc", 0.9662, 0.9662 - improvement,
                                                      improvement, low, improvement + 0.02, "paired bootstrap",
                                                      rows=rows))
    assert not result.passed, result
    return result.message


def test_a_rejection_by_the_interval_alone_names_the_rows_it_would_need() -> None:
    said = _judged(0.0078, -0.02028)
    assert "on 57 holdout rows the 90% interval reaches 0.02808 below it" in said, said
    assert "about 142 holdout rows would let an improvement this large pass" in said, said


def test_no_row_count_is_promised_where_the_improvement_itself_misses_the_margin() -> None:
    assert "holdout rows would" not in _judged(-0.02, -0.05)
    assert "holdout rows would" not in _judged(0.0078, -0.02028, rows=None)   # recorded values: no bootstrap
