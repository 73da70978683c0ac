"""What a drift check found: per-column tests, the champion's score on the new data, the verdict; as JSON and
as a table."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tunesmith.drift.statistics import ColumnDrift, ColumnRole
from tunesmith.suggestions import first_few, listed


@dataclass(frozen=True)
class ChampionCheck:
    """The champion's configuration refit on the development rows and scored on the new rows, against the score it
    was recorded with (the holdout's, else its cross-validated score). ``drop`` is the relative loss of quality
    (positive: worse), whatever the metric's direction. The champion is the trial a registered model serves where
    that is known (``which`` says so), else the experiment's best (the one its holdout scored)."""

    trial: int
    params: dict[str, Any]
    metric: str
    direction: str
    baseline: float
    # "holdout" (recorded when the run ended), "promotion" (the holdout score recorded when it was promoted) or "cv"
    baseline_source: str
    current: float
    rows: int
    max_drop: float
    which: str = "the experiment's best trial"   # why this trial was scored

    @property
    def drop(self) -> float:
        worse = self.baseline - self.current if self.direction == "maximize" else self.current - self.baseline
        return worse / max(abs(self.baseline), 1e-12)

    @property
    def degraded(self) -> bool:
        return self.drop > self.max_drop

    def to_json(self) -> dict[str, Any]:
        return {"trial": self.trial, "params": self.params, "metric": self.metric, "direction": self.direction,
                "baseline": self.baseline, "baseline_source": self.baseline_source, "current": self.current,
                "rows": self.rows, "relative_drop": self.drop, "max_drop": self.max_drop,
                "degraded": self.degraded, "which": self.which}


class ReferenceSource(StrEnum):
    """Where the rows the new ones were compared with came from."""

    GIVEN = "given"            # --reference
    TUNED_ON = "tuned_on"      # the file a (trial-code) re-tune was tuned on, recorded in its lineage
    TASK = "task"              # the experiment's task data (its spec's task.data)


@dataclass(frozen=True)
class DriftReport:
    experiment: str | None
    reference: str
    data: str
    reference_rows: int
    current_rows: int
    columns: tuple[ColumnDrift, ...]
    thresholds: dict[str, Any]
    champion: ChampionCheck | None = None
    champion_skipped: str | None = None      # why there is no champion check
    notes: tuple[str, ...] = field(default=())
    reference_from: ReferenceSource = ReferenceSource.GIVEN

    @property
    def reference_said(self) -> str:
        """The reference in words: which file, and why that one."""
        if self.reference_from is ReferenceSource.TUNED_ON:
            return f"{self.reference}, the data {self.experiment} was tuned on"
        if self.reference_from is ReferenceSource.TASK:
            return f"{self.reference}, the task data of {self.experiment}"
        return f"{self.reference} (--reference)"

    @property
    def drifted_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.drifted]

    @property
    def reasons(self) -> list[str]:
        out = [f"{c.role.value} {c.name}: {c.reason}" for c in self.columns if c.drifted]
        if self.champion is not None and self.champion.degraded:
            ch = self.champion
            out.append(f"champion (trial {ch.trial}) {ch.metric} {ch.current:.4f} on the new data against "
                       f"{ch.baseline:.4f} "
                       f"({ch.baseline_source}): {ch.drop:.1%} worse, more than {ch.max_drop:.0%}")
        return out

    def shortened_reasons(self, limit: int = 5) -> list[str]:
        """The first ``limit`` reasons, then "and N more" when there are others (a one-line summary's)."""
        return first_few(self.reasons, limit)

    @property
    def drifted(self) -> bool:
        return bool(self.reasons)

    @property
    def target_drifted(self) -> bool:
        return any(c.drifted for c in self.columns if c.role is ColumnRole.TARGET)

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment, "reference": self.reference,
            "reference_from": self.reference_from.value, "data": self.data,
            "rows": {"reference": self.reference_rows, "current": self.current_rows},
            "drift": self.drifted, "reasons": self.reasons, "drifted_columns": self.drifted_columns,
            "target_drift": self.target_drifted,
            "thresholds": self.thresholds,
            "columns": [c.to_json() for c in self.columns],
            "champion": self.champion.to_json() if self.champion else None,
            "champion_skipped": self.champion_skipped,
            "notes": list(self.notes),
        }


def print_report(console: Any, report: DriftReport) -> None:
    """The report as a rich table and a verdict line."""
    from rich.table import Table

    from tunesmith.terminal_text import escape  # column names are the data's

    table = Table(title=escape(f"drift: {report.data} against {report.reference_said} "
                               f"({report.current_rows} vs {report.reference_rows} rows)"))
    for col in ("column", "role", "kind", "test", "statistic", "p-value", "PSI", "missing", "drift"):
        table.add_column(col)
    for c in report.columns:
        table.add_row(escape(c.name), c.role.value, c.kind.value, c.test, _number(c.statistic, ".3f"),
                      _number(c.p_value, ".2e"), _number(c.psi, ".3f"), _missing_said(c),
                      "[red]yes[/]" if c.drifted else "no")
    console.print(table)
    if report.champion is not None:
        ch = report.champion
        console.print(f"champion (trial {ch.trial}, {escape(ch.which)}) {ch.metric}: {ch.current:.4f} on {ch.rows} "
                      "new rows, "
                      f"{ch.baseline:.4f} recorded ({ch.baseline_source}); change {-ch.drop:+.1%}"
                      f"{' [red]degraded[/]' if ch.degraded else ''}")
    elif report.champion_skipped:
        console.print(f"champion check skipped: {escape(report.champion_skipped)}")
    for note in report.notes:
        console.print(f"[yellow]note[/]: {escape(note)}")
    if report.drifted:
        cols = report.drifted_columns
        named = listed(cols, 6)
        verdict = [f"{len(cols)} of {len(report.columns)} column(s) ({named})"] if cols else []
        if report.champion is not None and report.champion.degraded:
            verdict.append(f"the champion's {report.champion.metric} is {report.champion.drop:.1%} worse")
        console.print("[red bold]drift[/]: " + escape("; ".join(verdict)) + " (reasons in --json)")
    else:
        console.print("[green]no drift[/] beyond the thresholds")


def _number(x: float, spec: str) -> str:
    """A table cell: ``-`` where there was nothing to test (no value left on one side), not ``nan``."""
    return format(x, spec) if math.isfinite(x) else "-"


def _missing_said(c: ColumnDrift) -> str:
    """A numeric column's missing share, before -> now; blank when none is missing (a categorical column's missing
    values are one of its levels)."""
    m = c.missing
    if m is None or not (m.reference or m.current):
        return ""
    return f"{m.reference / max(m.reference_rows, 1):.0%} -> {m.current / max(m.current_rows, 1):.0%}"
