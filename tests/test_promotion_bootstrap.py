"""The paired bootstrap beat_champion judges by (tunesmith.promotion.bootstrap), on real scikit-learn models."""

from __future__ import annotations

import warnings


def test_bootstrap_resamples_with_one_class_are_redrawn_silently_and_counted():
    """A 22-row holdout with few negatives: every resample of one class warned (UndefinedMetricWarning, 284 times),
    said as "while refitting for promotion"; the bootstrap redraws them by design. Counted, not warned."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import get_scorer

    from tunesmith.promotion.bootstrap import paired_bootstrap

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + rng.normal(scale=0.5, size=200) > 0).astype(int)
    a, b = LogisticRegression().fit(X, y), LogisticRegression(C=0.01).fit(X, y)
    Xh, yh = X[:12], np.array([1] * 11 + [0])  # one negative: about a third of the resamples miss it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ci = paired_bootstrap(get_scorer("roc_auc"), a, b, Xh, yh, True, 0.9, 200, 0)
    assert [str(w.message) for w in caught] == []
    assert ci.resamples == 200 and 40 < ci.redrawn < 160, ci


def test_bootstrap_hides_only_the_undefined_metric_warnings_of_its_resamples():
    """Every other warning while it runs is still shown (a filter of "ignore" for all hid the model lock's heartbeat
    thread's, a scorer's DeprecationWarning, ConvergenceWarning, process-wide)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import get_scorer

    from tunesmith.promotion.bootstrap import paired_bootstrap

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + rng.normal(scale=0.5, size=200) > 0).astype(int)
    a, b = LogisticRegression().fit(X, y), LogisticRegression(C=0.01).fit(X, y)
    roc_auc = get_scorer("roc_auc")

    def scored(model, X, y):
        warnings.warn("this scorer's option is deprecated", DeprecationWarning, stacklevel=2)
        return roc_auc(model, X, y)

    Xh, yh = X[:12], np.array([1] * 11 + [0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ci = paired_bootstrap(scored, a, b, Xh, yh, True, 0.9, 50, 0)
    said = {(w.category.__name__, str(w.message)) for w in caught}
    assert said == {("DeprecationWarning", "this scorer's option is deprecated")}
    assert len(caught) >= 2 + 2 * ci.resamples   # the whole holdout's two scores, and each resample's
    assert ci.redrawn > 0   # resamples of one class were there to warn, and did not
