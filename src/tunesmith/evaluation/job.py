"""A TrialJob: everything a worker needs to run one attempt of one trial, as plain JSON-able data.

Jobs cross process boundaries as JSON (never pickle), so a worker can be any process that speaks the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from tunesmith.records import ParamValue


@dataclass(frozen=True, slots=True)
class TrialJob:
    experiment: str
    number: int
    attempt: int
    params: dict[str, ParamValue]
    seed: int
    workdir: str                      # the trial's own folder; created before the job is submitted
    log_path: str
    metrics: tuple[str, ...]          # objective metric names, in order
    function: str | None = None       # "module:function" or "/path/file.py:function"
    command: str | None = None        # already rendered: placeholders substituted
    env: dict[str, str] = field(default_factory=dict)
    base_dir: str | None = None       # the spec's folder: importable, and the function trial's cwd
    timeout: float | None = None
    memory_limit: int | None = None
    task: dict[str, Any] | None = None  # a built-in scikit-learn task (the spec's task section, as JSON)
    sync_reports: bool = False        # each report waits for the scheduler's decision (only when one is active)
    command_cwd: str | None = None    # where a command runs (trial.cwd: trial_dir); None: base_dir, the spec's folder
    cost: dict[str, Any] | None = None  # prices (tunesmith.cost.Prices as JSON): measure resources, price them
    scheduler: str | None = None      # the spec's scheduler (none included), named in the log when it stops the trial
    stop_rule: str | None = None      # why that scheduler stops a trial, in words; None: nothing stops it early

    def to_json(self) -> dict[str, Any]:
        # Field by field rather than dataclasses.asdict, whose deep copy cost a measurable share per trial.
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["metrics"] = list(self.metrics)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TrialJob:
        return cls(**{**d, "metrics": tuple(d["metrics"])})
