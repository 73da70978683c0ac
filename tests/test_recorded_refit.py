"""A time-ordered experiment recorded before the model to ship was fit as the folds were keeps the refit it was
recorded with (an SRE's in-place upgrade, walk X F5). Since 0006's release the model is fit on the latest
``cv.window`` development rows and scored from ``cv.gap`` rows into the holdout; before, it was fit on every
development row and scored on the whole holdout, and that is the model the recorded holdout figure (`show`, the drift
baseline) is of. After the upgrade `promote` shipped and judged another model than that figure's, and `drift`
compared the new one's score with the old one's figure."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import completed_in_process, migrate_to
from sqlalchemy import create_engine, text

ROWS, FRACTION, GAP, WINDOW = 200, 0.2, 5, 60
HOLDOUT = math.ceil(FRACTION * ROWS)  # 40 rows, cut at row counts as then


def _sales(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Daily rows with a trend the features do not explain: a model fit on all the past and one fit on its latest
    window predict the holdout differently."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(ROWS, 2))
    y = 0.05 * np.arange(ROWS) + 2 * X[:, 0] - X[:, 1] + rng.normal(scale=0.5, size=ROWS)
    (folder / "sales.csv").write_text("day,x1,x2,y\n" + "".join(
        f"{d},{a:.6f},{b:.6f},{t:.6f}\n" for d, (a, b), t in zip(range(ROWS), X, y, strict=True)))
    written = np.loadtxt(folder / "sales.csv", delimiter=",", skiprows=1)  # the values as tunesmith reads them
    return written[:, 1:3], written[:, 3]


def _spec(folder: Path, name: str, cv: dict[str, Any], holdout: bool = True) -> dict[str, Any]:
    """The spec as a release of 2026-12-05 stored it (every cv key written; no cut_at, no refit)."""
    return {"name": name, "objective": [{"metric": "neg_mean_absolute_error", "direction": "maximize"}],
            "task": {"estimator": {"path": "sklearn.linear_model.Ridge", "params": {}},
                     "data": {"path": "sales.csv", "target": "y", "time": "day"},
                     "cv": {"kind": "timeseries", "folds": 3, "repeats": 3, "shuffle": True, "seed": 0, **cv},
                     **({"holdout": {"fraction": FRACTION, "seed": 0}} if holdout else {}),
                     "scoring": "neg_mean_absolute_error", "latency": None},
            "space": {"ridge__alpha": {"type": "float", "low": 0.01, "high": 10.0, "log": True}},
            "budget": {"trials": 1}, "executor": {"kind": "inline"}, "seed": 0,
            "workdir": str(folder / ".tunesmith" / name), "base_dir": str(folder)}


SLIDING = {"gap": GAP, "expanding": False, "window": WINDOW}


def _store_at(revision: str, folder: Path, recorded: list[tuple[dict[str, Any], float | None]]) -> str:
    """A store as a tunesmith of schema ``revision`` left it: each spec's experiment completed, its one trial
    (ridge__alpha 1.0) and, where given, the holdout figure recorded on that many rows."""
    from tunesmith.spec.loader import spec_from_dict
    from tunesmith.tasks import fingerprint

    _sales(folder)
    url = f"sqlite:///{folder / 'tunesmith.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        migrate_to(conn, revision)
        for spec, rows in recorded:
            task = spec_from_dict(spec, recorded=True).task
            assert task is not None
            attributes: dict[str, Any] = {"data_fingerprint": fingerprint(task, str(folder))}
            if rows is not None:
                attributes["holdout"] = {"trial": 0, "params": {"ridge__alpha": 1.0}, "holdout_rows": float(rows),
                                         "holdout_neg_mean_absolute_error": _old_refit_score(folder)}
            conn.execute(text("INSERT INTO experiments (name, spec, status, created_at, updated_at, next_number, "
                              "attributes) VALUES (:n, :s, 'completed', 1.0, 2.0, 1, :a)"),
                         {"n": spec["name"], "s": json.dumps(spec), "a": json.dumps(attributes)})
            conn.execute(text("INSERT INTO trials (experiment_id, number, state, params, seed, \"values\", metrics, "
                              "attempts, started_at, finished_at) SELECT id, 0, 'completed', :p, 7, '[-1.0]', :m, 1, "
                              "1.0, 2.0 FROM experiments WHERE name = :n"),
                         {"n": spec["name"], "p": json.dumps({"ridge__alpha": 1.0}),
                          "m": json.dumps({"neg_mean_absolute_error": -1.0})})
    engine.dispose()
    return url


def _old_refit(folder: Path) -> Any:
    """The model to ship as releases before 0006's fit it: Ridge on every development row."""
    from sklearn.linear_model import Ridge

    X, y = _sales(folder)
    return Ridge(alpha=1.0).fit(X[:-HOLDOUT], y[:-HOLDOUT])


def _old_refit_score(folder: Path) -> float:
    """Its holdout figure, scored on every holdout row."""
    X, y = _sales(folder)
    return -float(np.mean(np.abs(_old_refit(folder).predict(X[-HOLDOUT:]) - y[-HOLDOUT:])))


def _stored_cv(url: str) -> dict[str, dict[str, Any]]:
    from tunesmith.storage import SQLStore

    store = SQLStore(url, on_upgrade=lambda said: None)  # (the Python API's warning: test_upgrade_in_place.py)
    try:
        return {e.name: e.spec["task"]["cv"] for e in store.experiments()}
    finally:
        store.close()


@pytest.mark.slow
def test_promote_and_drift_judge_the_model_an_old_store_recorded_the_holdout_of(tmp_path: Path) -> None:
    """A store at revision 0005 (before the rule): upgraded, the sliding-window experiment with a gap says
    ``cv.refit: all_rows``; `promote --dry-run` scores the model fit on every development row on all 40 holdout rows
    (the recorded figure, not 35 rows of a 60-row window's model), and `drift` scores that model on the new rows.
    An expanding window without a gap (fit alike by both rules) and a task without a holdout are left as they were."""
    X, y = _sales(tmp_path)
    url = _store_at("0005", tmp_path, [(_spec(tmp_path, "ts", SLIDING), HOLDOUT),
                                       (_spec(tmp_path, "expanding", {"gap": 0, "expanding": True}), HOLDOUT),
                                       (_spec(tmp_path, "unheld", SLIDING, holdout=False), None)])
    stored = _stored_cv(url)
    assert stored["ts"].get("refit") == "all_rows", stored
    assert "refit" not in stored["expanding"] and "refit" not in stored["unheld"], stored

    promote = completed_in_process(tmp_path, "promote", "ts", "-m", "ts", "--dry-run", "--report-dir",
                                   str(tmp_path), "--storage", url)
    assert promote.returncode == 0, promote
    [report] = [json.loads(p.read_text()) for p in tmp_path.glob("*-ts-trial0.json")]
    assert report["metrics"]["holdout_rows"] == HOLDOUT, report["metrics"]
    assert report["metrics"]["holdout_neg_mean_absolute_error"] == pytest.approx(_old_refit_score(tmp_path),
                                                                                 rel=1e-9)

    drift = completed_in_process(tmp_path, "drift", "ts", "--data", "sales.csv", "--json", "--storage", url)
    assert drift.returncode == 0, drift
    champion = json.loads(drift.stdout)["champion"]
    assert champion["baseline"] == pytest.approx(_old_refit_score(tmp_path), rel=1e-9)
    current = -float(np.mean(np.abs(_old_refit(tmp_path).predict(X) - y)))
    assert champion["current"] == pytest.approx(current, rel=1e-9), "drift scored another model than its baseline's"


def test_a_store_upgraded_past_0006_before_gets_the_old_refit_where_its_recorded_holdout_tells(tmp_path: Path) -> None:
    """A store that passed 0006 when it wrote no ``cv.refit`` (at 0008: cut at row counts) holds experiments of both
    rules. The one whose recorded holdout figure was scored on the whole holdout (40 rows) gets ``cv.refit:
    all_rows`` from 0009; the one scored from the gap on (35 rows: the rule of now) does not; nor does one without a
    gap, whose holdout rows are the same under both rules (nothing recorded tells)."""
    rows_cut = {**SLIDING, "cut_at": "rows"}
    url = _store_at("0008", tmp_path, [
        (_spec(tmp_path, "before", rows_cut), HOLDOUT), (_spec(tmp_path, "after", rows_cut), HOLDOUT - GAP),
        (_spec(tmp_path, "gapless", {**rows_cut, "gap": 0}), HOLDOUT), (_spec(tmp_path, "unscored", rows_cut), None)])
    stored = _stored_cv(url)
    assert {name: cv.get("refit") for name, cv in stored.items()} == {
        "before": "all_rows", "after": None, "gapless": None, "unscored": None}


def test_a_spec_given_anew_may_ask_for_the_old_refit_and_only_for_time_ordered_data(tmp_path: Path) -> None:
    from tunesmith.errors import SpecError
    from tunesmith.spec.loader import spec_from_dict
    from tunesmith.tasks import prepare

    _sales(tmp_path)
    spec = _spec(tmp_path, "ts", SLIDING)
    new = prepare(spec_from_dict(spec).task, str(tmp_path), new=True)
    assert (len(new.refit_idx), len(new.holdout_idx)) == (WINDOW, HOLDOUT - GAP)
    spec["task"]["cv"]["refit"] = "all_rows"
    old = prepare(spec_from_dict(spec).task, str(tmp_path), new=True)
    assert (len(old.refit_idx), len(old.holdout_idx)) == (ROWS - HOLDOUT, HOLDOUT)
    untimed = {**spec["task"], "data": {"sklearn": "diabetes"}, "cv": {"refit": "all_rows"}}
    with pytest.raises(SpecError, match="cv.refit says how a time-ordered model to ship is fit"):
        spec_from_dict({**spec, "task": untimed})
