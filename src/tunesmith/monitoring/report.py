"""The HTML report of one experiment: a single self-contained file (plotly.js inlined, nothing fetched).

The only module that imports plotly. Sections: optimisation history with the running best, parallel
coordinates, parameter importance, slice plots, intermediate-value curves (pruned trials marked), the Pareto
front (several objectives), the worker timeline, the failures table, and for built-in tasks what the task measured
(fold scores and spread, the unstable flag, latency, size, the holdout and nested estimates) and the holdout / CV gap.

Readable from 10 to 10,000+ trials: each plot draws at most ``max_points`` trials (the best ones and a seeded
uniform sample of the rest; the running best is computed on every trial), curves at most ``max_curves``.

Parameter importance is **permutation importance on a random-forest surrogate** (scikit-learn): a forest is
fitted to the completed trials' first objective from their parameters (categoricals as codes, an inactive
conditional parameter as -1), and each parameter's importance is how much the forest's R^2 drops when that
column is shuffled. It says what the surrogate relies on, not a causal effect; fANOVA is not used.
"""

from __future__ import annotations

import contextlib
import html
import math
import os
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith.extras import install_extra
from tunesmith.output_file import special_kind, written_path
from tunesmith.records import ExperimentRecord, ObjectiveSpec, TrialRecord, TrialState
from tunesmith.constraints import Constraint
from tunesmith.selection import Selection, ranked, selectable
from tunesmith.spec.loader import spec_from_dict
from tunesmith.storage.base import TrialStore
from tunesmith.summary import (
    best_text, evaluation_lines, exclude_unstable_of, experiment_summary, gap_text, holdout_lines, objectives_of,
    selection_of,
)

MAX_POINTS = 2000
MAX_CURVES = 150
MAX_SLICES = 12
MAX_TIMELINE = 1500
MAX_FAILURE_ROWS = 50
MAX_EVALUATION_ROWS = 25
IMPORTANCE_TRIALS = 1000
LOG_AXIS_SPAN = 1e3   # values all positive and max / min above this: a linear axis would squash all but the largest
# Slice points, darker for later trials: the dark end of plotly's "Blues", whose light end is white (the first trials
# vanished on the white plot); the lightest, at this opacity, keeps WCAG's 3:1 contrast for graphics against white.
SLICE_COLOURS = ["rgb(33,113,181)", "rgb(8,81,156)", "rgb(8,48,107)"]
SLICE_OPACITY = 0.8
STATE_COLOURS = {"completed": "#1f77b4", "pruned": "#ff7f0e", "failed": "#d62728", "running": "#2ca02c",
                 "queued": "#9467bd", "lost": "#7f7f7f", "interrupted": "#bcbd22"}


def require_plotly() -> Any:
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise UserInputError(f"the report needs plotly: {install_extra('report')}") from None
    return go


def _drawn_as_text(figure: Any) -> Any:
    """A figure's JSON (or part of it) with each string's ``&``, ``<`` and ``>`` as HTML entities, which plotly shows
    as the characters written.

    plotly draws `<a href>`, `<b>` and `<br>` in titles, axis labels, ticks, legends and hover text (links to any
    http(s) URL), and a figure shows names from the spec (parameters, choices, metrics): a parameter named
    `<a href="https://...">` was a link in the report. Every string of the figure is passed through, not only
    those known to come from the spec, so a figure added later cannot forget one; none of tunesmith's own is markup.
    """
    if isinstance(figure, str):
        return html.escape(figure, quote=False)
    if isinstance(figure, dict):
        return {k: _drawn_as_text(v) for k, v in figure.items()}
    if isinstance(figure, list | tuple):
        return [_drawn_as_text(v) for v in figure]
    if getattr(getattr(figure, "dtype", None), "kind", "") in ("O", "U"):  # a numpy array of strings
        return _drawn_as_text(figure.tolist())
    return figure


@dataclass(frozen=True)
class Section:
    title: str
    note: str
    figure: Any = None      # a plotly Figure, or None for an HTML-only section
    body_html: str = ""


def build_report(experiment: ExperimentRecord, trials: Sequence[TrialRecord], max_points: int = MAX_POINTS,
                 generated_at: float | None = None, refresh_s: int | None = None,
                 summary: Mapping[str, Any] | None = None, resume: str = "") -> str:
    """The report as one HTML document.

    Args:
        max_points: most trials drawn per plot.
        generated_at: the time printed in the header (seconds since the epoch); None prints none.
        refresh_s: when set, the page reloads itself every so many seconds (the live dashboard).
        summary: `show`'s JSON of the experiment (:func:`tunesmith.summary.shown_experiment`'s), where the caller read
            the store: the header then says what `show` says of the run (nothing runs it, it waits on a quota slot,
            why it stopped); else the summary of ``experiment`` and ``trials`` alone.
        resume: the command that continues the run, named when ``summary`` says nothing runs it.
    """
    go = require_plotly()
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    objectives = objectives_of(experiment)
    spec = spec_from_dict(experiment.spec, recorded=True)
    constraints = spec.constraints
    # parameters sampled on a log scale are drawn on log axes
    log_params = frozenset(n for n, d in spec.space.items() if getattr(d, "log", False))
    # what selection may pick (within the constraints, stable where the task asks): the running best and the front
    candidates = selectable(trials, objectives, constraints, exclude_unstable_of(experiment))
    # the trial the spec's `select` policy picks, what `show` names and `promote` ships (show's own function)
    selection = selection_of(experiment, trials)
    rng = random.Random(0)
    summary = summary if summary is not None else experiment_summary(experiment, trials)
    sections = [
        _history(go, trials, objectives, max_points, rng, candidates, constraints, selection),
        _parallel(go, trials, objectives, max_points, rng, log_params),
        _importance(go, trials, objectives),
        _slices(go, trials, objectives, max_points, rng, log_params),
        _curves(go, trials, rng),
        _pareto(go, trials, objectives, constraints, candidates, max_points, rng, selection),
        _timeline(go, trials, generated_at if _runs_now(summary) else None),
        _failures(trials),
        *([_evaluation(candidates, objectives, summary, selection)] if summary.get("task") else []),
        _holdout_gap(go, summary),
    ]
    parts = []
    for i, s in enumerate(sections):
        inner = s.body_html
        if s.figure is not None:
            s.figure.update_layout(template="plotly_white", margin={"l": 60, "r": 20, "t": 30, "b": 50})
            inner += pio.to_html(_drawn_as_text(s.figure.to_plotly_json()), validate=False, include_plotlyjs=False,
                                 full_html=False, div_id=f"plot-{i}", config={"displaylogo": False, "responsive": True})
        parts.append(f'<section><h2>{html.escape(s.title)}</h2><p class="note">{html.escape(s.note)}</p>'
                     f'{inner}</section>')
    counts = ", ".join(f"{k} {v}" for k, v in summary["trials"].items() if v) or "no trials"
    when = (f" · generated {datetime.fromtimestamp(generated_at, UTC):%Y-%m-%d %H:%M:%S} UTC"
            if generated_at is not None else "")
    refresh = f'<meta http-equiv="refresh" content="{int(refresh_s)}">' if refresh_s else ""
    return (
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\">" + refresh +
        f"<title>tunesmith · {html.escape(experiment.name)}</title><style>{_CSS}</style>"
        f"<script>{get_plotlyjs()}</script></head><body>"
        f"<h1>{html.escape(experiment.name)}</h1>"
        f"<p class=\"meta\">status {html.escape(_status_text(summary))} · strategy "
        f"{html.escape(str(experiment.strategy))} · {html.escape(counts)} · failure rate "
        f"{summary['failure_rate']:.0%}{when}</p>" + _standing_html(summary, resume)
        + _choice_html(summary, selection) + "".join(parts) + "</body></html>"
    )


def stored_report(store: TrialStore, experiment: ExperimentRecord, trials: Sequence[TrialRecord], now: float,
                  generated_at: float | None, refresh_s: int | None = None) -> str:
    """:func:`build_report` with what `show` reads of the run from the store, judged at ``now``: whether anything
    still runs it, a quota wait, why it stopped. A killed run, still recorded running, said `status running`."""
    from tunesmith.storage.sql import SQLStore, resume_hint
    from tunesmith.summary import shown_experiment

    summary = shown_experiment(store, experiment, trials, now).summary
    resume = (resume_hint(store, experiment.name) if isinstance(store, SQLStore)
              else f"tunesmith resume {experiment.name}")
    return build_report(experiment, trials, generated_at=generated_at, refresh_s=refresh_s, summary=summary,
                        resume=resume)


def write_report(store: TrialStore, name: str, path: str, generated_at: float | None = None) -> int:
    """Write experiment ``name``'s report to ``path``; returns the number of trials it covers.

    Raises:
        ExperimentNotFound: no such experiment.
        UserInputError: the folder of ``path`` does not exist, ``path`` is a folder, or it cannot be written.

    A symlink's file is written (the link kept); a FIFO or a device (``-o /dev/stdout``) is written into.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserInputError(f"--output: folder {folder} does not exist (create it or write the report elsewhere)")
    if os.path.isdir(path):
        raise UserInputError(f"--output: {path!r} is a folder; name the file to write, e.g. "
                             f"{os.path.join(path, 'report.html')}")
    experiment = store.experiment(name)
    trials = store.trials(experiment.id)
    now = time.time() if generated_at is None else generated_at
    document = stored_report(store, experiment, trials, now, generated_at)
    target = written_path(path)
    into = special_kind(target) is not None   # a FIFO, /dev/stdout: written into, never replaced with a file
    partial = target if into else target + ".partial"  # else written whole, then swapped in: no half report left
    try:
        with open(partial, "w", encoding="utf-8") as f:
            f.write(document)
        if not into:
            os.replace(partial, target)
    except OSError as e:
        if not into:
            with contextlib.suppress(OSError):
                os.remove(partial)
        raise UserInputError(f"--output: cannot write {path!r}: {e.strerror or e}") from None
    return len(trials)


def _runs_now(summary: Mapping[str, Any]) -> bool:
    """Whether something runs the experiment now: recorded running, and not abandoned (a killed run's trials stay
    recorded running, and ran on to no time at all)."""
    return summary["status"] == "running" and not summary.get("abandoned")


def _status_text(summary: Mapping[str, Any]) -> str:
    """The status as `ls` says it: ``running (abandoned)`` when nothing runs it, ``completed (every trial failed)``."""
    return summary.get("status_said", summary["status"]) + (" (abandoned)" if summary.get("abandoned") else "")


def _standing_html(summary: Mapping[str, Any], resume: str) -> str:
    """`show`'s lines on the run itself, in its words: why it stopped, the quota slot it waits for, or that no
    coordinator runs it any more (and the command that continues it). Times in UTC, as the header's."""
    lines = []
    if "stop_reason" in summary:
        lines.append(f"stopped: {summary['stop_reason']}")
    if wait := summary.get("quota_wait"):
        lines.append(f"waiting on quota {wait['key']}: {wait['in_use']} of {wait['limit']} slots in use since "
                     f"{datetime.fromtimestamp(wait['since'], UTC):%Y-%m-%d %H:%M:%S} UTC (see `tunesmith quota list`)")
    if summary.get("abandoned"):
        lines.append(f"no live coordinator runs {summary['name']} (it was killed, or its machine went away); "
                     f"continue it with: {resume}")
    return "".join(f'<p class="run">{html.escape(line)}</p>' for line in lines)


def _choice_html(summary: Mapping[str, Any], selection: Selection | None) -> str:
    """The best trial and the selected one, in `show`'s words: `best` is qualified as the first objective's when the
    spec's ``select`` policy picks another trial, and the selected line is the one promotion acts on."""
    best = summary["best"]
    lines = []
    if best:
        first = (f" by {summary['objectives'][0]['metric']} (the first objective)"
                 if selection is not None and selection.trial.number != best["number"] else "")
        lines.append(html.escape(best_text(best, first)))
    if selection is not None:
        lines.append(f"<strong>selected</strong> {html.escape(_selected_text(selection))}")
    elif summary.get("selected"):   # trials completed, none the policy may pick
        sel = summary["selected"]
        why = f"({sel['policy']}): no trial: {sel['reason']}"
        lines.append(f"<strong>selected</strong> {html.escape(why)}")
    elif not best:
        lines.append("no completed trial")
    return "".join(f'<p class="choice">{line}</p>' for line in lines)


def _selected_text(selection: Selection) -> str:
    """After the word `selected`, as `show` prints it."""
    return (f"({selection.policy}): trial {selection.trial.number} (what `tunesmith promote` ships): "
            f"{selection.reason}")


def _selected_label(selection: Selection) -> str:
    return f"selected ({selection.policy}): trial {selection.trial.number}"


def _spans_decades(values: Sequence[float]) -> bool:
    """Whether values read better on a log axis: all positive, the largest over LOG_AXIS_SPAN times the smallest."""
    return bool(values) and min(values) > 0 and max(values) / min(values) > LOG_AXIS_SPAN


# -- sections -----------------------------------------------------------------------------------------------
def _completed(trials: Sequence[TrialRecord]) -> list[TrialRecord]:
    return [t for t in trials if t.state is TrialState.COMPLETED and t.values is not None
            and all(math.isfinite(v) for v in t.values)]


def _sample(items: Sequence[TrialRecord], limit: int, rng: random.Random,
            keep: Sequence[TrialRecord] = ()) -> list[TrialRecord]:
    """At most ``limit`` trials: ``keep`` (the best, the front) and a uniform sample of the rest, by number."""
    if len(items) <= limit:
        return list(items)
    kept = {t.number for t in keep}
    rest = [t for t in items if t.number not in kept]
    chosen = list(keep)[:limit] + rng.sample(rest, max(0, limit - len(kept)))
    return sorted(chosen, key=lambda t: t.number)


def _best_k(done: Sequence[TrialRecord], objective: ObjectiveSpec, k: int) -> list[TrialRecord]:
    sign = 1 if objective.direction.value == "minimize" else -1
    return sorted(done, key=lambda t: sign * t.values[0])[:k]  # type: ignore[index]


def _subsampled_note(shown: int, total: int) -> str:
    return f" Showing {shown} of {total} trials (the best and a uniform sample)." if shown < total else ""


def _history(go: Any, trials: Sequence[TrialRecord], objectives: Sequence[ObjectiveSpec], limit: int,
             rng: random.Random, candidates: Sequence[TrialRecord], constraints: Sequence[Constraint],
             selection: Selection | None) -> Section:
    """Every completed trial as a point; the running best over ``candidates`` (what selection may pick: within the
    constraints, and stable where the task asks), so it ends at show's best; the selected trial starred."""
    done = sorted(_completed(trials), key=lambda t: t.number)
    allowed = {t.number for t in candidates}
    o = objectives[0]
    if not done:
        return Section("Optimisation history", "No completed trial yet.")
    shown = _sample(done, limit, rng, _best_k(done, o, 50))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[t.number for t in shown], y=[t.values[0] for t in shown],  # type: ignore[index]
                             mode="markers", name=o.metric, marker={"size": 5, "opacity": 0.6}))
    xs, ys, best = [], [], None
    for t in done:  # every trial: the running best never skips an improvement
        v = t.values[0]  # type: ignore[index]
        if t.number in allowed and (best is None or o.direction.better(v, best)):
            best = v
            xs.append(t.number)
            ys.append(v)
    several = len(objectives) > 1   # then the best by the first objective is not what selection picks
    if best is not None:
        xs.append(done[-1].number)
        ys.append(best)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"shape": "hv", "width": 2},
                                 name=f"running best by {o.metric}" if several else "running best"))
    if selection is not None:
        chosen = selection.trial
        fig.add_trace(_selected_marker(go, selection, [chosen.number], chosen.values[0]))  # type: ignore[index]
    log_y = _spans_decades([t.values[0] for t in done])  # type: ignore[index]
    fig.update_layout(xaxis_title="trial", yaxis_title=f"{o.metric} ({o.direction.value}"
                      f"{', log scale' if log_y else ''})", height=380)
    if log_y:
        fig.update_yaxes(type="log")
    among = f" among the trials satisfying {', '.join(str(c) for c in constraints)}" if constraints else ""
    so_far = f"the best {o.metric} so far (the first of {len(objectives)} objectives)" if several else "the best so far"
    star = (f" The star marks trial {selection.trial.number}, the one `select: {selection.policy}` picks, what "
            "`tunesmith promote` ships." if selection is not None else "")
    return Section("Optimisation history", f"Completed trials' {o.metric} by trial number, and {so_far}"
                   f"{among}.{star}" + _subsampled_note(len(shown), len(done)), fig)


def _selected_marker(go: Any, selection: Selection, x: list[float], y: float) -> Any:
    return go.Scatter(x=x, y=[y], mode="markers", name=_selected_label(selection),
                      marker={"symbol": "star", "size": 16, "color": "#ffbf00", "line": {"color": "#222", "width": 1}},
                      text=[f"trial {selection.trial.number}"])


def _param_names(trials: Sequence[TrialRecord]) -> list[str]:
    return list(dict.fromkeys(k for t in trials for k in t.params))


def _encode(trials: Sequence[TrialRecord], names: Sequence[str]) -> tuple[list[list[float]], dict[str, list[str]]]:
    """Numbers per parameter: numeric values as they are, categoricals as codes, inactive as -1 (and the labels)."""
    categories: dict[str, list[str]] = {}
    for n in names:
        values = [t.params[n] for t in trials if n in t.params]
        if any(isinstance(v, str | bool) or v is None for v in values):
            categories[n] = sorted({str(v) for v in values})
    rows = []
    for t in trials:
        row = []
        for n in names:
            if n not in t.params:
                row.append(-1.0)
            elif n in categories:
                row.append(float(categories[n].index(str(t.params[n]))))
            else:
                row.append(float(t.params[n]))  # type: ignore[arg-type]
        rows.append(row)
    return rows, categories


def _parallel(go: Any, trials: Sequence[TrialRecord], objectives: Sequence[ObjectiveSpec], limit: int,
              rng: random.Random, log_params: frozenset[str]) -> Section:
    done = _completed(trials)
    names = _param_names(done)
    if not done or not names:
        return Section("Parallel coordinates", "No completed trial yet.")
    shown = _sample(done, min(limit, 1000), rng, _best_k(done, objectives[0], 20))
    rows, categories = _encode(shown, names)
    dims = []
    for j, n in enumerate(names):
        d: dict[str, Any] = {"label": n, "values": [r[j] for r in rows]}
        if n in categories:
            d["tickvals"] = list(range(len(categories[n])))
            d["ticktext"] = categories[n]
        elif n in log_params and any(n in t.params for t in shown):
            d = _log_dimension(n, [t.params.get(n) for t in shown])
        dims.append(d)
    values = [t.values[0] for t in shown]  # type: ignore[index]
    dims.append({"label": objectives[0].metric, "values": values})
    fig = go.Figure(go.Parcoords(line={"color": values, "colorscale": "Viridis", "showscale": True,
                                       "reversescale": objectives[0].direction.value == "maximize"},
                                 dimensions=dims, domain={"y": [0, 0.88]}))  # room above for the axis labels
    fig.update_layout(height=420)
    logs = [n for n in names if n in log_params]
    on_log = f" {', '.join(logs)} on a log scale (ticks at powers of ten)." if logs else ""
    return Section("Parallel coordinates", "Each line is a completed trial, coloured by the first objective "
                   "(inactive conditional parameters at -1, or below the lowest tick on a log scale)." + on_log
                   + _subsampled_note(len(shown), len(done)), fig)


def _log_dimension(name: str, values: Sequence[Any]) -> dict[str, Any]:
    """A parcoords axis (plotly has no log one) of log10 of the values, its ticks at powers of ten labelled with the
    values; a trial where the parameter is inactive sits a decade below the lowest, ticked `inactive`."""
    logs = [math.log10(v) for v in values if v is not None]   # a log domain's values are > 0; one at least is set
    lo, hi = min(logs), max(logs)
    powers: list[float] = list(range(math.ceil(lo), math.floor(hi) + 1))
    # plotly draws the axis between its outer ticks only: the ends are ticked too, unless a power of ten is close
    ends = [e for e in (lo, hi) if all(abs(e - k) > 0.25 for k in powers)]
    ticks = sorted([*powers, *ends])
    text = [f"{10.0 ** k:g}" if k in powers else f"{10.0 ** k:.2g}" for k in ticks]
    inactive = math.floor(lo) - 1
    if any(v is None for v in values):
        ticks, text = [inactive, *ticks], ["inactive", *text]
    return {"label": f"{name} (log scale)", "values": [inactive if v is None else math.log10(v) for v in values],
            "tickvals": ticks, "ticktext": text}


def _importance(go: Any, trials: Sequence[TrialRecord], objectives: Sequence[ObjectiveSpec]) -> Section:
    title = "Parameter importance"
    method = ("Permutation importance on a random-forest surrogate (scikit-learn): the drop in the forest's R² "
              f"on {objectives[0].metric} when one parameter's column is shuffled. What the surrogate relies on, "
              "not a causal effect.")
    done = _completed(trials)
    names = _param_names(done)
    if len(done) < 8 or not names:
        return Section(title, method + " Needs at least 8 completed trials.")
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    sample = done if len(done) <= IMPORTANCE_TRIALS else random.Random(1).sample(done, IMPORTANCE_TRIALS)
    x, _ = _encode(sample, names)
    y = [t.values[0] for t in sample]  # type: ignore[index]
    forest = RandomForestRegressor(n_estimators=50, min_samples_leaf=2, random_state=0, n_jobs=1).fit(x, y)
    result = permutation_importance(forest, x, y, n_repeats=5, random_state=0, n_jobs=1)
    order = sorted(range(len(names)), key=lambda j: result.importances_mean[j])
    fig = go.Figure(go.Bar(x=[max(0.0, float(result.importances_mean[j])) for j in order],
                           y=[names[j] for j in order], orientation="h",
                           error_x={"type": "data", "array": [float(result.importances_std[j]) for j in order]}))
    fig.update_layout(xaxis_title="drop in R² when shuffled", height=max(220, 40 * len(names) + 80))
    note = method + (f" Fitted on {len(sample)} of {len(done)} completed trials." if len(sample) < len(done) else "")
    return Section(title, note, fig)


def _slices(go: Any, trials: Sequence[TrialRecord], objectives: Sequence[ObjectiveSpec], limit: int,
            rng: random.Random, log_params: frozenset[str]) -> Section:
    from plotly.subplots import make_subplots

    done = _completed(trials)
    names = _param_names(done)[:MAX_SLICES]
    if not done or not names:
        return Section("Slice plots", "No completed trial yet.")
    shown = _sample(done, limit, rng, _best_k(done, objectives[0], 20))
    cols = min(3, len(names))
    nrows = math.ceil(len(names) / cols)
    fig = make_subplots(rows=nrows, cols=cols,
                        subplot_titles=[f"{n} (log scale)" if n in log_params else n for n in names])
    for i, n in enumerate(names):
        having = [t for t in shown if n in t.params]
        fig.add_trace(go.Scatter(x=[_axis_value(t.params[n]) for t in having],
                                 y=[t.values[0] for t in having], mode="markers",  # type: ignore[index]
                                 marker={"size": 4, "opacity": SLICE_OPACITY, "color": [t.number for t in having],
                                         "colorscale": SLICE_COLOURS}, name=n, showlegend=False),
                      row=i // cols + 1, col=i % cols + 1)
        if n in log_params:
            fig.update_xaxes(type="log", row=i // cols + 1, col=i % cols + 1)
    fig.update_layout(height=280 * nrows)
    log_y = _spans_decades([t.values[0] for t in shown])  # type: ignore[index]
    if log_y:
        fig.update_yaxes(type="log")
    return Section("Slice plots", f"{objectives[0].metric} against each parameter (darker: later trials)"
                   + (f"; {objectives[0].metric} on a log scale" if log_y else "") + "."
                   + _subsampled_note(len(shown), len(done)), fig)


def _axis_value(v: Any) -> Any:
    return str(v) if isinstance(v, bool) or v is None else v


def _curves(go: Any, trials: Sequence[TrialRecord], rng: random.Random) -> Section:
    reporting = [t for t in trials if t.intermediate]
    if not reporting:
        return Section("Intermediate values", "No trial reported intermediate values.")
    shown = reporting if len(reporting) <= MAX_CURVES else sorted(rng.sample(reporting, MAX_CURVES),
                                                                   key=lambda t: t.number)
    fig = go.Figure()
    for state in (TrialState.COMPLETED, TrialState.PRUNED, TrialState.FAILED, TrialState.RUNNING):
        group = [t for t in shown if t.state is state]
        if not group:
            continue
        xs: list[float | None] = []
        ys: list[float | None] = []
        for t in group:  # one trace per state, trials separated by gaps: thousands of traces would crawl
            xs += [r.step for r in t.intermediate] + [None]
            ys += [r.value for r in t.intermediate] + [None]
        colour = STATE_COLOURS[state.value]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=state.value, line={"color": colour, "width": 1},
                                 opacity=0.6, connectgaps=False))
        if state is TrialState.PRUNED:
            fig.add_trace(go.Scatter(x=[t.intermediate[-1].step for t in group],
                                     y=[t.intermediate[-1].value for t in group], mode="markers",
                                     marker={"symbol": "x", "size": 8, "color": colour}, name="pruned here"))
    fig.update_layout(xaxis_title="step", yaxis_title="reported value", height=380)
    note = "Each line is a trial's reports; a cross marks where a pruned trial was stopped."
    if len(shown) < len(reporting):
        note += f" Showing {len(shown)} of {len(reporting)} trials (a uniform sample)."
    return Section("Intermediate values", note, fig)


def _pareto(go: Any, trials: Sequence[TrialRecord], objectives: Sequence[ObjectiveSpec],
            constraints: Sequence[Constraint], candidates: Sequence[TrialRecord], limit: int,
            rng: random.Random, selection: Selection | None) -> Section:
    if len(objectives) < 2:
        return Section("Pareto front", "One objective: no trade-off to show.")
    done = _completed(trials)
    ok = {t.number for t in candidates}
    # the front `show` prints and selection picks from: of the trials selection may pick
    front = list(selection.front) if selection is not None else []
    front_numbers = {t.number for t in front}
    shown = _sample(done, limit, rng, front)
    a, b = objectives[0], objectives[1]
    fig = go.Figure()
    rest = [t for t in shown if t.number not in front_numbers and t.number in ok]
    fig.add_trace(go.Scatter(x=[t.values[0] for t in rest], y=[t.values[1] for t in rest],  # type: ignore[index]
                             mode="markers", name="dominated", marker={"color": "#bbbbbb", "size": 5}))
    broken = [t for t in shown if t.number not in ok]
    if broken:
        fig.add_trace(go.Scatter(x=[t.values[0] for t in broken],  # type: ignore[index]
                                 y=[t.values[1] for t in broken],  # type: ignore[index]
                                 mode="markers", name="breaks a constraint" if constraints else "flagged unstable",
                                 marker={"color": "#f4a261", "size": 6, "symbol": "x"},
                                 text=[f"trial {t.number}" for t in broken]))
    ordered = sorted(front, key=lambda t: t.values[0])  # type: ignore[index]
    # a line only where the front is a trade-off curve: projected from 3+ objectives its members zig-zag
    fig.add_trace(go.Scatter(x=[t.values[0] for t in ordered], y=[t.values[1] for t in ordered],  # type: ignore[index]
                             mode="lines+markers" if len(objectives) == 2 else "markers", name="Pareto front",
                             marker={"color": "#d62728", "size": 8}, text=[f"trial {t.number}" for t in ordered]))
    if selection is not None:
        chosen = selection.trial.values
        fig.add_trace(_selected_marker(go, selection, [chosen[0]], chosen[1]))  # type: ignore[index]
    fig.update_layout(xaxis_title=f"{a.metric} ({a.direction.value})", yaxis_title=f"{b.metric} ({b.direction.value})",
                      height=420)
    extra = (f" Showing the first two of {len(objectives)} objectives: the front's members as points, which "
             "projected draw no trade-off curve." if len(objectives) > 2 else "")
    of = (f"the {len(ok)} (of {len(done)} completed) that satisfy {', '.join(map(str, constraints))}" if constraints
          else f"the {len(ok)} (of {len(done)} completed) not flagged unstable" if len(ok) < len(done)
          else f"{len(done)} completed")
    star = (f" The star marks trial {selection.trial.number}, the one `select: {selection.policy}` picks, what "
            "`tunesmith promote` ships." if selection is not None else "")
    return Section("Pareto front", f"{len(front)} non-dominated trials of {of}." + star + extra
                   + _subsampled_note(len(shown), len(done)), fig)


def _timeline(go: Any, trials: Sequence[TrialRecord], now: float | None) -> Section:
    """Which trial ran where and when. The store keeps the coordinator (owner) of each trial, not the worker
    slot, so lanes are rebuilt per coordinator: each trial takes the first lane free when it started. A running
    trial runs until ``now`` (the report's time; None where nothing runs it any more, or no time is known: until its
    coordinator's last beat for it), and keeps its lane that long."""
    timed = sorted((t for t in trials if t.started_at is not None), key=lambda t: (t.started_at, t.number))
    if not timed:
        return Section("Worker timeline", "No trial has started yet.")
    total = len(timed)
    timed = timed[-MAX_TIMELINE:]
    lanes: dict[str, list[float]] = {}
    rows: dict[str, list[Any]] = {s.value: [] for s in TrialState}
    origin = timed[0].started_at or 0.0
    owners = sorted({t.owner or "coordinator" for t in timed})
    for t in timed:
        owner = t.owner or "coordinator"
        start = t.started_at or 0.0
        end = _end_drawn(t, now)
        free = lanes.setdefault(owner, [])
        lane = next((i for i, busy_until in enumerate(free) if busy_until <= start), None)
        if lane is None:
            lane = len(free)
            free.append(end)
        else:
            free[lane] = end
        label = f"{owners.index(owner) + 1}:{lane + 1}" if len(owners) > 1 else f"worker {lane + 1}"
        rows[t.state.value].append((label, start - origin, max(end - start, 1e-3), t.number))
    fig = go.Figure()
    for state, items in rows.items():
        if items:
            fig.add_trace(go.Bar(y=[i[0] for i in items], base=[i[1] for i in items], x=[i[2] for i in items],
                                 orientation="h", name=state, marker={"color": STATE_COLOURS[state]},
                                 hovertext=[f"trial {i[3]}" for i in items], hoverinfo="text+x"))
    n_lanes = sum(len(v) for v in lanes.values())
    fig.update_layout(barmode="overlay", xaxis_title="seconds since the first trial shown",
                      height=min(900, 120 + 28 * n_lanes), yaxis={"categoryorder": "category descending"})
    note = ("Each bar is a trial from start to finish, on the worker lane it took (rebuilt from start and finish "
            "times per coordinator); a running trial's bar ends at " + ("the time of this report." if now is not None
                                                                       else "its last heartbeat."))
    if len(timed) < total:
        note += f" Showing the last {len(timed)} of {total} trials."
    return Section("Worker timeline", note, fig)


def _end_drawn(t: TrialRecord, now: float | None) -> float:
    """Where a trial's bar ends: its finish; while it runs, ``now`` (its duration is not known yet); with no ``now``,
    or a trial that ended with no finish recorded (lost, interrupted), when its coordinator last beat for it."""
    start = t.started_at or 0.0
    if t.finished_at is not None:
        return t.finished_at
    if t.state is TrialState.RUNNING:  # before duration_s: a retried trial's is its earlier attempt's
        return max(now if now is not None else t.heartbeat_at or start, start)
    if t.duration_s is not None:
        return start + t.duration_s
    return max(t.heartbeat_at or start, start)


def _failures(trials: Sequence[TrialRecord]) -> Section:
    failed = [t for t in trials if t.state is TrialState.FAILED]
    if not failed:
        return Section("Failures", "No trial failed.")
    by_kind: dict[str, int] = {}
    for t in failed:
        kind = t.failure_kind.value if t.failure_kind else "unknown"
        by_kind[kind] = by_kind.get(kind, 0) + 1
    kinds = "".join(f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in sorted(by_kind.items()))
    rows = "".join(
        f"<tr><td>{t.number}</td><td>{html.escape(t.failure_kind.value if t.failure_kind else 'unknown')}</td>"
        f"<td>{t.attempts}</td><td>{html.escape((t.error or '')[:300])}</td>"
        f"<td>{html.escape(_short(dict(t.params)))}</td></tr>"
        for t in failed[-MAX_FAILURE_ROWS:])
    body = (f"<table><tr><th>reason</th><th>trials</th></tr>{kinds}</table>"
            f"<table><tr><th>#</th><th>reason</th><th>attempts</th><th>error</th><th>params</th></tr>{rows}</table>")
    note = f"{len(failed)} failed trials by reason" + (f"; the last {MAX_FAILURE_ROWS} listed." if len(failed) >
                                                        MAX_FAILURE_ROWS else ".")
    return Section("Failures", note, body_html=body)


def _short(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


# what a task measured of each trial, beside its CV mean: (column title, metric, how a cell shows it)
_MEASURED_COLUMNS = (("fold std", "{metric}_std", "{:.4f}"), ("latency p95 (ms)", "latency_p95_ms", "{:.3f}"),
                     ("model size (KiB)", "model_size_bytes", "{:.1f}"), ("fit (s)", "fit_time_s", "{:.3f}"))


def _evaluation(candidates: Sequence[TrialRecord], objectives: Sequence[ObjectiveSpec], summary: Mapping[str, Any],
                selection: Selection | None) -> Section:
    """What a built-in task measured, in `show`'s words (the selected trial's fold scores and spread, its unstable
    flag, latency and size; the holdout beside the CV score; the nested estimate), then the best trials' fold
    spread, unstable flag, latency and size, the columns a task recorded. The best of ``candidates``, the trials
    selection may pick (within the constraints, stable where the task asks), as `show`'s table ranks them."""
    task = summary["task"]
    metric = task["metric"]
    lines = [*evaluation_lines(summary), *holdout_lines(summary)]
    said = "".join(f'<p class="choice">{html.escape(line)}</p>' for line in lines)
    done = ranked(candidates, objectives)
    shown = done[:MAX_EVALUATION_ROWS]
    if selection is not None and selection.trial.number not in {t.number for t in shown}:
        shown = [*shown[:-1], selection.trial]  # the shipped trial is always listed, last (as `show`'s table)
    if not shown:
        return Section("Evaluation", "No completed trial selection may pick yet.", body_html=said)

    def measured(t: TrialRecord) -> dict[str, float]:
        return {**t.metrics, **(t.value_map(tuple(objectives)) or {})}  # latency may be an objective

    columns = [(title, key.format(metric=metric), fmt) for title, key, fmt in _MEASURED_COLUMNS
               if any(key.format(metric=metric) in measured(t) for t in shown)]
    flags = task.get("unstable_spread") is not None or any("unstable" in t.metrics for t in shown)
    head = (f"<tr><th>#</th><th>{html.escape(metric)} (CV mean)</th>"
            + "".join(f"<th>{html.escape(title)}</th>" for title, _, _ in columns)
            + ("<th>unstable</th>" if flags else "") + "</tr>")
    rows = []
    for t in shown:
        m = measured(t)
        mark = "*" if selection is not None and t.number == selection.trial.number else ""
        cells = [f"{mark}{t.number}", _cell_of(m.get(metric), "{:.4f}"),
                 *(_cell_of(m[key] / 1024 if key == "model_size_bytes" and key in m else m.get(key), fmt)
                   for _, key, fmt in columns)]
        if flags:
            cells.append("yes" if m.get("unstable") else "")
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    note = (f"The task's cross-validation of the selected trial, its holdout score and nested estimate, as `tunesmith "
            f"show` says them; then the best {len(shown)} of {len(done)} trials selection may pick by "
            f"{objectives[0].metric}"
            + (" (* the selected trial, what `tunesmith promote` ships)" if selection is not None else "") + ".")
    return Section("Evaluation", note, body_html=said + f"<table>{head}{''.join(rows)}</table>")


def _cell_of(value: float | None, fmt: str) -> str:
    return "" if value is None else fmt.format(value)


def _holdout_gap(go: Any, summary: Mapping[str, Any]) -> Section:
    title = "Holdout / CV gap"
    task = summary.get("task")
    if not task:
        return Section(title, "Not a built-in task: no holdout to compare with.")
    metric, best = task["metric"], summary["best"]
    # the CV score set beside the holdout is that of the trial scored on it (selection's pick, which with several
    # objectives or a select policy is not the best by the first objective)
    optimism = summary.get("cv_optimism")
    bars: dict[str, float] = {}
    if optimism is not None:
        bars[f"CV ({task['cv']}) of trial {optimism['trial']}"] = optimism["cv"]
        if optimism["gap"] is not None:  # an undefined (NaN) score has no bar: the note says why
            bars["holdout (never seen by the search)"] = optimism["holdout"]
    elif best and metric in (best["values"] or {}):
        bars[f"CV ({task['cv']}) of the best trial"] = best["values"][metric]
    nested = summary.get("nested") or {}
    if f"nested_{metric}" in nested:
        bars["nested CV estimate"] = nested[f"nested_{metric}"]
    if len(bars) < 2 and optimism is not None and optimism["gap"] is None:
        return Section(title, f"Only the CV score: {gap_text(optimism).rstrip('.')}.")  # a warning ends in one
    if len(bars) < 2:
        return Section(title, "The task has no holdout or nested estimate recorded (yet): only the CV score.")
    fig = go.Figure(go.Bar(x=list(bars), y=list(bars.values()), text=[f"{v:.4f}" for v in bars.values()],
                           textposition="auto"))
    fig.update_layout(yaxis_title=metric, height=340)
    note = "The CV score the search optimised against scores it never saw"
    if optimism is not None:
        note += "; " + gap_text(optimism)
    return Section(title, note.rstrip(".") + ".", fig)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 4px; } h2 { margin-top: 32px; border-bottom: 1px solid #ddd; }
.meta, .note { color: #555; font-size: 14px; }
.run { color: #8a5a00; font-size: 14px; margin: 2px 0; }
.choice { margin: 2px 0; font-size: 14px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
"""
