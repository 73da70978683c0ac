"""Drift checks: has the data moved away from what an experiment was tuned on, and does its champion suffer?

``check_experiment(experiment, trials, data)`` -> :class:`DriftReport`; ``check_files(reference, data)`` for
two files (a trial-code experiment's: ``--reference``, or the file a re-tune of it was tuned on). Per column:
PSI and Kolmogorov-Smirnov (numeric), PSI and chi-square (categorical), with the label tested as target drift;
for built-in tasks the champion is refit and scored on the new rows. scipy only:
Evidently 0.7.23 requires 26 packages (pandas, pyarrow, plotly, nltk, statsmodels, a web server...) for the
same three tests.
"""

from tunesmith.drift.check import (ServedTrial, TunedOn, check_experiment, check_files, check_stored, drift_config_of,
                                   file_digest, tuned_on)
from tunesmith.drift.report import ChampionCheck, DriftReport, ReferenceSource, print_report
from tunesmith.drift.statistics import ColumnDrift, ColumnKind, ColumnRole, population_stability_index

__all__ = [
    "ChampionCheck", "ColumnDrift", "ColumnKind", "ColumnRole", "DriftReport", "ReferenceSource", "ServedTrial",
    "TunedOn",
    "check_experiment", "check_files", "check_stored", "drift_config_of", "file_digest", "population_stability_index",
    "print_report", "tuned_on",
]
