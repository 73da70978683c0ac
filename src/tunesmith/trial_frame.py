"""An experiment's trials as a pandas DataFrame, as Optuna's ``study.trials_dataframe()`` gives them
(:meth:`tunesmith.api.ExperimentResult.to_dataframe`): without it a porter shelled out to ``tunesmith trials NAME
--csv`` and read that back.

pandas is no dependency of tunesmith: it is imported when a frame is asked for, and its absence is said then.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tunesmith.records import ExperimentRecord, TrialRecord
from tunesmith.summary import objectives_of

if TYPE_CHECKING:
    import pandas as pd


def trials_dataframe(experiment: ExperimentRecord, trials: Sequence[TrialRecord]) -> pd.DataFrame:
    """One row per trial, in ``trials``' order, with Optuna's column names where Optuna has the column:
    ``number``, ``state``, ``value`` (one objective) or ``values_<metric>`` (each of several, in the spec's order),
    ``params_<name>`` (NaN where inactive), ``metrics_<name>`` (what the trial reported; NaN where it did not),
    ``attempts``, ``datetime_start`` and ``datetime_complete`` (UTC timestamps; NaT where none), ``duration`` (a
    Timedelta: the trial's own run time, as ``trials --json``'s ``duration_s``), ``seed``, ``error``. A pruned
    trial's value is its last report, as the store and ``trials --csv`` have it, where Optuna leaves it empty:
    ``df[df.state == "completed"]`` for the best.

    Raises:
        ImportError: pandas is not installed, naming ``pip install pandas``.
    """
    try:
        import pandas as pd
    except ImportError as e:
        raise ImportError("ExperimentResult.to_dataframe() needs pandas, which tunesmith does not install: "
                          "pip install pandas (or read the trials as CSV: "
                          "`tunesmith trials NAME --csv`)") from e
    objectives = objectives_of(experiment)
    single = len(objectives) == 1
    params = list(dict.fromkeys(k for t in trials for k in t.params))
    metrics = list(dict.fromkeys(k for t in trials for k in t.metrics))
    columns: dict[str, list[Any]] = {"number": [t.number for t in trials], "state": [t.state.value for t in trials]}
    for i, o in enumerate(objectives):
        columns["value" if single else f"values_{o.metric}"] = [
            math.nan if t.values is None else t.values[i] for t in trials]
    for p in params:  # an inactive parameter is absent from the record; None is a choice made (null)
        columns[f"params_{p}"] = [t.params[p] if p in t.params else math.nan for t in trials]
    for m in metrics:
        columns[f"metrics_{m}"] = [t.metrics.get(m, math.nan) for t in trials]
    columns["attempts"] = [t.attempts for t in trials]
    columns["datetime_start"] = list(pd.to_datetime([t.started_at for t in trials], unit="s", utc=True))
    columns["datetime_complete"] = list(pd.to_datetime([t.finished_at for t in trials], unit="s", utc=True))
    columns["duration"] = list(pd.to_timedelta([t.duration_s for t in trials], unit="s"))
    columns["seed"] = [t.seed for t in trials]
    columns["error"] = [t.error for t in trials]
    return pd.DataFrame(columns)
