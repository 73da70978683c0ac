"""What a person watching a run sees: a live progress bar, then a table of the best trials (Rich); the progress
of a long command (`export mlflow`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.console import Console
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn,
)
from rich.table import Table

from tunesmith.budget import failure_way
from tunesmith.cost import money
from tunesmith.evaluation.output_tail import reason_without_output
from tunesmith.events import RunListener, say_on_stderr
from tunesmith.records import ExperimentRecord, Failure, ObjectiveSpec, TrialRecord, TrialState
from tunesmith.selection import completed, ranked, select_trial, selectable
from tunesmith.spec.loader import spec_from_dict
from tunesmith.summary import best_of, holdout_lines, objectives_of, scheduler_without_reports, task_summary
from tunesmith.terminal_text import escape

FAILURE_LINES = 10
"""Failed trials a run's display gives a line each; later ones are counted on the progress line and summed up by
reason at the run's end (one line each flooded the terminal: 394 above an 800-trial run's bar)."""
FAILURE_GROUPS = 3
"""Reasons the end-of-run summary names, the most common first."""


class ProgressDisplay(RunListener):
    """Trials done / total, failures, best so far; a line for each of the first failures so reasons are not lost,
    the rest summed up by reason at the end (:class:`FailureTally`).

    Warnings go to ``warnings`` (stderr), not to the progress's console: what the user should know must not go
    where the output goes (`run > log`, a reader of stdout that left after `| head -1`). While the progress is
    live on a terminal Rich routes stderr above its bar, so a watched run shows them in place."""

    def __init__(self, console: Console, warnings: Console | None = None) -> None:
        self.console = console
        self.warnings = warnings if warnings is not None else Console(stderr=True, highlight=False)
        self._progress: Progress | None = None
        self._lines: PlainProgress | None = None  # instead of the live bar, where it cannot be drawn
        self._task: TaskID | None = None
        self._failed = 0
        self._failures = FailureTally()  # this run's: a resumed run's history is in `trials --state failed`
        self._name = ""
        self._pruned: int | None = None  # counted only under a scheduler: without one no trial is ever stopped
        self._best = "-"
        self._objectives: tuple[ObjectiveSpec, ...] = ()

    def run_started(self, experiment: ExperimentRecord, history: list[TrialRecord], resumed: bool,
                    total_trials: int | None) -> None:
        self._objectives = objectives_of(experiment)
        self._name = experiment.name
        verb = "Resuming" if resumed else "Running"
        self.console.print(f"[bold]{verb}[/] {experiment.name}: strategy [cyan]{experiment.strategy}[/] "
                           f"({experiment.strategy_reason})")
        done = sum(1 for t in history if t.state.is_finished())
        self._failed = sum(1 for t in history if t.state is TrialState.FAILED)
        scheduled = (experiment.spec.get("scheduler") or {}).get("name", "none") != "none"
        self._pruned = sum(1 for t in history if t.state is TrialState.PRUNED) if scheduled else None
        # a resumed run's best so far is in its history: without it the line said `best -` until a new trial
        # finished, and for ever when none was left to run
        self._best = _best_text(best_of(experiment, history))
        if not live_display_possible(self.console):
            self._lines = PlainProgress(self.console, total_trials, done)
            return
        self._progress = Progress(
            SpinnerColumn(), TextColumn("[bold]trials"), BarColumn(), MofNCompleteColumn(),
            TextColumn("failed [red]{task.fields[failed]}[/]"),
            *([TextColumn("pruned [yellow]{task.fields[pruned]}[/]")] if scheduled else []),
            TextColumn("best [green]{task.fields[best]}[/]"), TimeElapsedColumn(), console=self.console,
            transient=False,
        )
        self._task = self._progress.add_task("trials", total=total_trials, completed=done, failed=self._failed,
                                             pruned=self._pruned, best=self._best)
        self._progress.start()

    def warning(self, message: str) -> None:
        self.warnings.print(f"[yellow]warning[/]: {escape(message)}")  # (it may quote a trial's output)

    def trial_retrying(self, trial: TrialRecord, failure: Failure, delay_s: float) -> None:
        self.console.print(f"  trial {trial.number} attempt {trial.attempts} failed ({escape(str(failure))}); "
                           f"retrying in {delay_s:g}s")

    def trial_finished(self, trial: TrialRecord, best: TrialRecord | None) -> None:
        if trial.state is TrialState.FAILED:
            self._failed += 1
            self._tell_failure(trial)
        if trial.state is TrialState.PRUNED and self._pruned is not None:
            self._pruned += 1
        if best is not None and best.values is not None:
            self._best = _best_text(best)
        if self._progress is not None and self._task is not None:
            advance = 1 if trial.state.is_finished() else 0
            self._progress.update(self._task, advance=advance, failed=self._failed, pruned=self._pruned,
                                  best=self._best)
        if self._lines is not None and trial.state.is_finished():
            pruned = "" if self._pruned is None else f", pruned {self._pruned}"
            self._lines.advance(f"failed {self._failed}{pruned}, best {self._best}")

    def _tell_failure(self, trial: TrialRecord) -> None:
        self._failures.add(trial)
        if self._failures.count <= FAILURE_LINES:
            # escaped: the reason quotes the trial's stderr, which rich would otherwise read as markup
            self.console.print(f"  [red]trial {trial.number} failed[/]: {escape(trial.error or '')}", soft_wrap=True)
        elif self._failures.count == FAILURE_LINES + 1:
            where = "counted on the progress line" if self._lines is None else "summed up when the run ends"
            self.console.print(f"  further failures are {where}; `tunesmith trials {escape(self._name)} --state "
                               "failed` lists them", soft_wrap=True)

    def run_stopping(self, reason: str) -> None:
        if reason.startswith("interrupted") and (self._progress is not None or self._lines is not None):
            self.console.print(f"[yellow]{reason}[/]: letting running trials finish (Ctrl-C again to stop now)")

    def run_finished(self, experiment: ExperimentRecord, trials: list[TrialRecord], stop_reason: str) -> None:
        if self._progress is not None:
            self._progress.stop()
        if self._failures.count > FAILURE_LINES:  # (fewer were each told in full)
            for line in self._failures.summary(experiment.name):
                self.console.print(escape(line), soft_wrap=True)
        print_best_table(self.console, experiment, trials)
        if experiment.spec.get("task"):  # the holdout and nested estimate it has just computed, as `show` says them
            for line in holdout_lines(task_summary(experiment, trials)):
                self.console.print(escape(line), soft_wrap=True)
        if (unfed := scheduler_without_reports(experiment, trials)) is not None:
            self.console.print(f"[yellow]warning[/]: {escape(unfed)}")
        self.console.print(escape(stopped_line(trials, stop_reason)))  # last: which limit ended the run

    def stopped_watching(self) -> None:
        if self._progress is not None:
            progress, self._progress = self._progress, None
            progress.stop()  # gives stdout and stderr back and shows the cursor, even when its last render fails


def live_display_possible(console: Console) -> bool:
    """Whether Rich can draw its live bar on ``console``: not in a Jupyter kernel without ipywidgets, where it
    draws nothing and warns 'install "ipywidgets" for Jupyter support' at every refresh (about once a trial, each
    warning an output kept in the notebook)."""
    if not console.is_jupyter:
        return True
    try:  # what Rich's live display imports in Jupyter
        from IPython.display import display  # noqa: F401
        from ipywidgets import Output  # noqa: F401
    except ImportError:
        return False
    return True


class PlainProgress:
    """The progress as plain lines where no live bar can be drawn: ``trials 12/40: ...`` at each tenth of the run
    (a run whose total is not known: at 10, 20, 40, 80, ... trials), few enough to keep in a notebook."""

    def __init__(self, console: Console, total: int | None, done: int) -> None:
        self.console = console
        self.total = total
        self.done = done
        self._every = max(1, -(-total // 10)) if total else None
        self._next = done + self._every if self._every else max(10, 2 * done)

    def advance(self, state: str) -> None:
        """One more trial finished; ``state``: what the line says after the count."""
        self.done += 1
        if self.done < self._next and self.done != self.total:
            return
        self._next = self.done + self._every if self._every else 2 * self.done
        of = f"/{self.total}" if self.total else ""
        self.console.print(f"trials {self.done}{of}: {escape(state)}", soft_wrap=True, highlight=False)


class FailureReport(RunListener):
    """A run with no display (the Python API's default) says on stderr, as it says its warnings, what the display
    says of failed trials: each of the first FAILURE_LINES with its reason, the rest summed up by reason at the end,
    and then why the run stopped. Without it a notebook whose every trial failed saw nothing at all, and the
    fail-fast reason only as an AttributeError on ``result.best``. A run where nothing failed says nothing."""

    def __init__(self) -> None:
        self._failures = FailureTally()  # this run's
        self._name = ""

    def run_started(self, experiment: ExperimentRecord, history: list[TrialRecord], resumed: bool,
                    total_trials: int | None) -> None:
        self._name = experiment.name

    def trial_finished(self, trial: TrialRecord, best: TrialRecord | None) -> None:
        if trial.state is not TrialState.FAILED:
            return
        self._failures.add(trial)
        if self._failures.count <= FAILURE_LINES:
            say_on_stderr(f"trial {trial.number} failed: {trial.error or ''}")
        elif self._failures.count == FAILURE_LINES + 1:
            say_on_stderr(f"further failures are summed up when the run ends; `tunesmith trials {self._name} "
                          "--state failed` lists them")

    def run_finished(self, experiment: ExperimentRecord, trials: list[TrialRecord], stop_reason: str) -> None:
        if self._failures.count == 0:
            return
        if self._failures.count > FAILURE_LINES:  # (fewer were each told in full)
            for line in self._failures.summary(experiment.name):
                say_on_stderr(line)
        say_on_stderr(stopped_line(trials, stop_reason))


def stopped_line(trials: Sequence[TrialRecord], stop_reason: str) -> str:
    """A run's last line: which limit ended it, and what its trials cost where it was not the cost budget."""
    costs = [t.metrics["cost"] for t in trials if "cost" in t.metrics]
    spent = f" (spent {money(sum(costs))})" if costs and not stop_reason.startswith("cost budget") else ""
    return f"Stopped: {stop_reason}{spent}."


class CountingProgress:
    """A progress line "N of M ``what``" on ``console`` where that is a terminal, called with (N, M) at each step
    and closed at the end; elsewhere (a log, a pipe) nothing: a line a step would flood it, and the command's own
    last line says how it went."""

    def __init__(self, console: Console, what: str) -> None:
        self.console = console
        self.what = what
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __call__(self, done: int, total: int) -> None:
        if not self.console.is_terminal:
            return
        if self._progress is None:  # started at the first step, whose total it shows (known only then)
            self._progress = Progress(SpinnerColumn(), TextColumn(f"{{task.completed}} of {{task.total}} "
                                                                  f"{escape(self.what)}"), BarColumn(),
                                      TimeElapsedColumn(), console=self.console)
            self._task = self._progress.add_task(self.what, total=total)
            self._progress.start()
        assert self._task is not None
        self._progress.update(self._task, completed=done, total=total)

    def close(self) -> None:
        if self._progress is not None:
            progress, self._progress = self._progress, None
            progress.stop()


class FailureTally:
    """A run's failed trials grouped by the way they failed (:func:`~tunesmith.budget.failure_way`, fail fast's rule:
    the same exception at the same line, whatever values its message quotes), each group told by its first trial's
    reason."""

    def __init__(self) -> None:
        self.count = 0
        self._groups: dict[str, tuple[int, TrialRecord]] = {}  # the way -> (trials failed so, the first of them)

    def add(self, trial: TrialRecord) -> None:
        self.count += 1
        way = failure_way(trial)
        seen, first = self._groups.get(way, (0, trial))
        self._groups[way] = (seen + 1, first)

    def summary(self, name: str) -> list[str]:
        """A heading, then a line for each of the FAILURE_GROUPS commonest ways, then what is left."""
        ranked = sorted(self._groups.values(), key=lambda group: (-group[0], group[1].number))
        lines = [f"{self.count} trials failed in this run, by reason:"]
        for seen, first in ranked[:FAILURE_GROUPS]:
            lines.append(f"  {seen} like trial {first.number}: {reason_without_output(first.error or '')}")
        if rest := ranked[FAILURE_GROUPS:]:
            lines.append(f"  {sum(seen for seen, _ in rest)} more, {len(rest)} other way(s): `tunesmith trials "
                         f"{name} --state failed` lists them")
        return lines


def _best_text(best: TrialRecord | None) -> str:
    """The progress line's best: its values and number, or ``-`` before any trial may be picked."""
    if best is None or best.values is None:
        return "-"
    return ", ".join(f"{v:.6g}" for v in best.values) + f" (#{best.number})"


def print_best_table(console: Console, experiment: ExperimentRecord, trials: Sequence[TrialRecord],
                     limit: int = 5, front_limit: int | None = 10, served: Mapping[int, str] | None = None) -> None:
    """The best trials by the objective (one objective), or the feasible Pareto front (several: the top few by
    the first objective would list dominated trials and leave out the one ``select`` picks). The trial the
    spec's ``select`` policy picks, what `tunesmith promote` ships without ``--trial``, is marked ``*``; a trial a
    registered model serves (``served``: trial number -> ``model M version V``; a promotion may have shipped another
    than the selected one) ``c``, and listed too. Lists ``limit`` trials, or ``front_limit`` members of a front
    (None: all of it)."""
    spec = spec_from_dict(experiment.spec, recorded=True)
    objectives = spec.objectives
    # the trials selection may pick: one that breaks a constraint (or, if the task says so, is flagged unstable) is
    # not among the best, whatever its values
    exclude_unstable = spec.task is not None and spec.task.exclude_unstable
    selection = select_trial(trials, objectives, spec.constraints, spec.select, exclude_unstable)
    if selection is None:
        rules = " and ".join((["satisfies the constraints"] if spec.constraints else [])
                             + (["is stable (the task excludes unstable ones)"] if exclude_unstable else []))
        console.print(f"[red]No completed trial {rules}.[/]" if completed(trials)
                      else "[red]No trial completed.[/]")
        return
    feasible_only = f" satisfying {', '.join(map(str, spec.constraints))}" if spec.constraints else ""
    several = len(objectives) > 1
    pool = list(selection.front) if several else ranked(selectable(trials, objectives, spec.constraints,
                                                                   exclude_unstable), objectives)
    most = front_limit if several else limit
    shown = pool if most is None else pool[:most]
    if selection.trial.number not in {t.number for t in shown}:  # the shipped trial is always listed, last
        shown = [*shown[:-1], selection.trial]
    served = served or {}
    for number in sorted(served):   # and the served ones (a promotion of another trial than the selected one)
        if number not in {t.number for t in shown}:
            shown += [t for t in trials if t.number == number and t.values is not None]
    if several:
        title = (f"Pareto front of {experiment.name}{feasible_only} ({len(pool)} trials no other beats on every "
                 f"objective, by {objectives[0].metric}")
    else:
        title = f"Best trials of {experiment.name}{feasible_only} (by {objectives[0].metric}"
    serving = "; ".join(f"{label} serves trial {number}" for number, label in sorted(served.items()))
    if any(number != selection.trial.number for number in served):
        title += (f"; * selected by `select: {selection.policy}`, what `tunesmith promote` ships without --trial; "
                  f"c: served, {serving})")
    else:
        title += (f"; * selected by `select: {selection.policy}`, what `tunesmith promote` ships"
                  f"{'; ' + serving if serving else ''})")
    # a line of its own: as the table's title it wrapped to the table's width, a few words a line for a narrow one
    console.print(f"[italic]{escape(title)}[/]")
    # metrics, parameter names and choices are the spec's, escaped: read as markup, a choice
    # `[link=https://...]docs[/link]` was a link in the operator's terminal
    table = Table()
    table.add_column("#", justify="right")
    for o in objectives:
        table.add_column(f"{escape(o.metric)} ({'max' if o.direction.value == 'maximize' else 'min'})",
                         justify="right")
    table.add_column("params")
    table.add_column("time", justify="right")
    for t in shown:
        assert t.values is not None
        params = escape(", ".join(f"{k}={_fmt(v)}" for k, v in t.params.items()))
        mark = ("*" if t.number == selection.trial.number else "") + ("c" if t.number in served else "")
        table.add_row(f"{mark}{t.number}", *(f"{v:.6g}" for v in t.values), params,
                      f"{t.duration_s:.2f}s" if t.duration_s is not None else "")
    console.print(table)
    if several and len(shown) < len(pool):
        console.print(f"{len(pool) - len(shown)} more on the front: tunesmith show {experiment.name}")


def _fmt(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
