"""`tunesmith report`: one self-contained HTML file, from a real run and from 10,000 stored trials."""

from __future__ import annotations

import json
import os
import random
import re
import time
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("plotly", reason="the report needs plotly: pip install 'tunesmith[report]'")

SECTIONS = ("Optimisation history", "Parallel coordinates", "Parameter importance", "Slice plots",
            "Intermediate values", "Pareto front", "Worker timeline", "Failures", "Holdout / CV gap")

MIXED = '''
def mixed(config, trial):
    if config["x"] > 0.85:
        raise ValueError("x too large")
    for step in range(1, 6):
        trial.report(step, (config["x"] - 0.3) ** 2 + 1.0 / step)
        if trial.should_prune():
            return
    return {"loss": (config["x"] - 0.3) ** 2 + (0.1 if config["kind"] == "b" else 0.0),
            "size": config["x"] * 10}
'''


def _plots(document: str) -> int:
    return len(re.findall(r"Plotly\.newPlot\(", document))


def _run(project, spec_file: str) -> None:
    """Tune the project's ``spec_file`` in this process: no CLI process to start for what is only set-up."""
    import tunesmith

    assert tunesmith.run(project.root / spec_file, storage=project.storage).status.value == "completed"


def _report_in_process(name: str) -> None:
    """`tunesmith report NAME -o NAME.html` in this process (helpers.cli_in_process, the command's own code), for
    tests about what the report draws; the command as a subprocess (its start, its exit codes, its errors) is
    test_report_of_a_real_run_has_every_section_and_needs_no_network's and the tests after it (each `report`
    subprocess costs ~2.5 s of CPU: it imports plotly and scikit-learn)."""
    from helpers import cli_in_process

    code, out, err = cli_in_process("report", name, "-o", f"{name}.html")
    assert code == 0, f"{out}\n{err}"
    assert "Traceback" not in out + err


def assert_self_contained(document: str) -> None:
    assert document.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script[^>]+src=", document)        # plotly.js is inline
    assert not re.search(r"<link[^>]+href=", document)
    assert "cdn.plot.ly" not in document.split("</script>", 1)[1]  # nothing after the library points outside


@pytest.mark.slow
def test_report_of_a_real_run_has_every_section_and_needs_no_network(project):
    project.write("mixed.py", MIXED)
    project.write_spec(project.spec(
        "rep", trial={"function": "mixed:mixed"}, budget={"trials": 24}, scheduler="median",
        space={"x": {"type": "float", "low": 0.0, "high": 1.0},
               "kind": {"type": "categorical", "choices": ["a", "b"]}}))
    _run(project, "rep.yaml")  # set-up: the report of it is what is checked
    missing = project.cli("report", "rep", "-o", "no/such/folder/rep.html")
    assert missing.returncode == 2 and "--output" in missing.stderr and "Traceback" not in missing.stderr
    r = project.cli("report", "rep", "-o", "rep.html")
    assert r.returncode == 0, r.stderr
    document = (project.root / "rep.html").read_text()
    assert_self_contained(document)
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in document
    assert "Permutation importance on a random-forest surrogate" in document
    trials = project.trials("rep")
    states = {t["state"] for t in trials}
    assert "failed" in states
    # history, parallel, importance, slices, curves, timeline: six plots (one objective: no Pareto front; several
    # objectives with reports stop the run in Optuna's adapter today, so the front is checked on stored trials below)
    assert _plots(document) == 6
    assert "One objective: no trade-off to show" in document
    failed = [t for t in trials if t["state"] == "failed"]
    assert f"{len(failed)} failed trials by reason" in document and "x too large" in document
    assert "Not a built-in task" in document


BC_TASK = {
    "name": "bc",
    "objective": {"metric": "roc_auc", "direction": "maximize"},
    "task": {"estimator": {"sklearn.linear_model.LogisticRegression": {"max_iter": 2000}},
             "pipeline": ["sklearn.preprocessing.StandardScaler"], "data": {"sklearn": "breast_cancer"},
             "cv": {"kind": "stratified", "folds": 3}, "holdout": {"fraction": 0.25}, "scoring": "roc_auc",
             "latency": {"rows": 5}, "nested": {"outer_folds": 2, "trials": 2}, "unstable_spread": 0.006},
    "space": {"logisticregression__C": {"type": "float", "low": 0.001, "high": 10, "log": True}},
    "budget": {"trials": 4}, "executor": {"kind": "inline"}, "seed": 0,
}


def test_report_of_a_task_shows_what_the_task_measured_as_show_says_it(project):
    """The report of a task had only the holdout / CV gap: none of the fold scores and their spread, the unstable
    flag, the measured latency and model size, or the nested estimate that `show` prints."""
    project.write_spec(BC_TASK)
    _run(project, "bc.yaml")  # set-up: the report of it is what is checked
    _report_in_process("bc")
    document = (project.root / "bc.html").read_text()
    assert "<h2>Evaluation</h2>" in document, "no section on what the task measured"
    section = document.split("<h2>Evaluation</h2>", 1)[1].split("</section>", 1)[0]
    shown, trials = project.show("bc"), project.trials("bc")
    cv = shown["task"]["selected_cv"]
    folds = [round(f, 4) for f in cv["folds"]]
    assert (f"cv (stratified) of trial {cv['trial']}: roc_auc {cv['mean']:.4f} ± {cv['std']:.4f} over 3 folds "
            f"{folds}") in section, section
    assert cv["unstable"] and f"the selected trial {cv['trial']} is flagged unstable: its fold spread" in section
    assert f"p95 {cv['latency_p95_ms']:.3f} ms per row; model size {cv['model_size_bytes'] / 1024:.1f} KiB" in section
    holdout = shown["holdout"]
    assert f"holdout roc_auc of trial {holdout['trial']} (the model promote ships" in section
    assert f"{holdout['holdout_roc_auc']:.4f} on 143 rows" in section and f"its cv {cv['mean']:.4f}" in section
    assert (f"nested CV estimate of the whole tuning procedure: {shown['nested']['nested_roc_auc']:.4f} ± "
            f"{shown['nested']['nested_roc_auc_std']:.4f}") in section
    # the trials table: each trial's fold spread, latency, size and flag, where the task recorded them
    for title in ("roc_auc (CV mean)", "fold std", "latency p95 (ms)", "model size (KiB)", "unstable"):
        assert f"<th>{title}</th>" in section, title
    for t in trials:
        m = t["metrics"]
        mark = "*" if t["number"] == cv["trial"] else ""
        row = (f"<tr><td>{mark}{t['number']}</td><td>{t['values']['roc_auc']:.4f}</td><td>{m['roc_auc_std']:.4f}</td>"
               f"<td>{m['latency_p95_ms']:.3f}</td><td>{m['model_size_bytes'] / 1024:.1f}</td>"
               f"<td>{m['fit_time_s']:.3f}</td><td>{'yes' if m['unstable'] else ''}</td></tr>")
        assert row in section, (row, section)


def test_an_output_that_is_a_folder_or_unwritable_is_bad_input(project):
    """`report NAME -o reports` (an existing folder) ended in IsADirectoryError's traceback, exit 1."""
    project.write_spec(project.spec("rep", executor={"kind": "inline"}, budget={"trials": 2}))
    _run(project, "rep.yaml")  # set-up: the report of it is what is checked
    (project.root / "reports").mkdir()
    folder = project.cli("report", "rep", "-o", "reports")
    assert "Traceback" not in folder.stdout + folder.stderr
    assert (folder.returncode, folder.stdout) == (2, ""), folder.stderr
    assert folder.stderr.splitlines() == ["error: --output: 'reports' is a folder; name the file to write, e.g. "
                                          "reports/report.html"]
    if os.path.isdir("/sys"):  # sysfs refuses new files even to root
        denied = project.cli("report", "rep", "-o", "/sys/rep.html")
        assert "Traceback" not in denied.stdout + denied.stderr
        assert denied.returncode == 2, denied.stderr
        assert denied.stderr.splitlines() == ["error: --output: cannot write '/sys/rep.html': Permission denied"]
    assert list((project.root / "reports").iterdir()) == []


def test_an_output_that_is_a_fifo_or_a_symlink_is_written_through_not_replaced(project):
    """The report was written beside the path and renamed over it: a FIFO (or, as root, /dev/stdout or /dev/null)
    became a 4.8 MB plain file, and a symlink was replaced, its target left as it was."""
    import threading

    from helpers import cli_in_process

    project.write_spec(project.spec("rep", executor={"kind": "inline"}, budget={"trials": 2}))
    _run(project, "rep.yaml")  # set-up: where the report goes is what is checked
    os.mkfifo(project.root / "pipe")
    read: list[bytes] = []
    reader = threading.Thread(target=lambda: read.append((project.root / "pipe").read_bytes()), daemon=True)
    reader.start()
    to_fifo = project.cli("report", "rep", "-o", "pipe")
    reader.join(10)
    assert to_fifo.returncode == 0, to_fifo.stderr
    assert (project.root / "pipe").is_fifo(), "the FIFO is still a FIFO"
    assert read and read[0].startswith(b"<!DOCTYPE html>") and read[0].rstrip().endswith(b"</html>")
    (project.root / "kept").mkdir()
    (project.root / "latest.html").symlink_to("kept/rep.html")
    code, _, err = cli_in_process("report", "rep", "-o", "latest.html")
    assert code == 0, err
    assert (project.root / "latest.html").is_symlink(), "the link is kept"
    assert (project.root / "kept" / "rep.html").read_text().startswith("<!DOCTYPE html>"), "its file written"
    assert sorted(p.name for p in project.root.iterdir() if p.name.endswith(".partial")) == []


@pytest.mark.slow
def test_report_of_ten_thousand_trials_is_bounded(project):
    """10,000 stored trials (two objectives, curves, failures) give a report in seconds, each plot subsampled."""
    store_synthetic_trials(project, "big", 10_000)

    began = time.monotonic()
    r = project.cli("report", "big", "-o", "big.html", timeout=120)
    elapsed = time.monotonic() - began
    assert r.returncode == 0, r.stderr
    document = (project.root / "big.html").read_text()
    assert_self_contained(document)
    assert _plots(document) == 7
    assert "Showing 2000 of 6533 trials" in document  # 10,000 - 200 failed - 3,267 pruned completed ones
    assert "Showing 150 of 2000 trials" in document    # intermediate curves
    assert "Fitted on 1000 of 6533 completed trials" in document
    assert "Showing the last 1500 of 10000 trials" in document
    assert "200 failed trials by reason; the last 50 listed" in document
    assert len(document) < 12_000_000
    print(f"report of 10,000 trials: {elapsed:.1f} s (CLI start included), {len(document) / 1e6:.1f} MB")


def store_synthetic_trials(project, name: str, n: int) -> None:
    """``n`` trials of a two-objective experiment written straight into the project's store (one transaction):
    every 50th failed, every 3rd pruned, every 5th with a learning curve, on one coordinator."""
    from sqlalchemy import insert, select

    from tunesmith.runner import prepare
    from tunesmith.spec.loader import load_spec
    from tunesmith.storage.schema import trial_reports, trials
    from tunesmith.storage.sql import SQLStore

    spec_path = project.write_spec(project.spec(
        name, budget={"trials": n}, space={"x": {"type": "float", "low": 0.0, "high": 1.0},
                                                 "y": {"type": "int", "low": 1, "high": 50},
                                                 "opt": {"type": "categorical", "choices": ["sgd", "adam"]}},
        objective=[{"metric": "loss", "direction": "minimize"}, {"metric": "latency", "direction": "minimize"}]))
    spec = prepare(load_spec(spec_path)).spec
    store = SQLStore(project.storage, create=True)
    exp = store.create_experiment(name, spec.to_json(), "random", "synthetic", 1_700_000_000.0)
    rng = random.Random(7)
    rows, curves, t0 = [], {}, 1_700_000_000.0
    for i in range(n):
        x, y, opt = rng.random(), rng.randint(1, 50), rng.choice(["sgd", "adam"])
        state = "failed" if i % 50 == 0 else "pruned" if i % 3 == 0 else "completed"
        loss = (x - 0.3) ** 2 + y / 500 + (0.05 if opt == "sgd" else 0.0)
        start = t0 + i * 0.5 + rng.random() * 0.2
        rows.append({"experiment_id": exp.id, "number": i, "state": state, "params": json.dumps(
            {"x": x, "y": y, "opt": opt}), "seed": i, "attempts": 1, "metrics": "{}",
            "values": None if state == "failed" else json.dumps([loss, y * (1.1 - x)]),
            "error": "exception: ValueError: boom" if state == "failed" else None,
            "failure_kind": "exception" if state == "failed" else None,
            "started_at": start, "finished_at": start + 0.9, "duration_s": 0.9, "owner": "host:1:a"})
        if i % 5 == 0:
            curves[i] = [loss + 1.0 / s for s in range(1, 3 if state == "pruned" else 9)]
    with store.engine.begin() as conn:
        conn.execute(insert(trials), rows)
        ids = dict(conn.execute(select(trials.c.number, trials.c.id).where(trials.c.experiment_id == exp.id)).all())
        conn.execute(insert(trial_reports), [{"trial_id": ids[i], "attempt": 1, "step": s, "value": v, "at": t0}
                                             for i, curve in curves.items() for s, v in enumerate(curve, start=1)])
    store.close()


def _task_experiment(tmp_path, example, holdout, changes=None, objective=None):
    import yaml

    from tunesmith.records import ExperimentRecord, RunStatus
    from tunesmith.spec.loader import spec_from_dict

    spec = yaml.safe_load((Path(__file__).resolve().parents[1] / "examples" / example).read_text())
    spec["task"].update(changes or {})
    spec["objective"] = objective or spec["objective"]
    stored = spec_from_dict({**spec, "base_dir": str(tmp_path)}).to_json()
    return ExperimentRecord(1, "task", stored, RunStatus.COMPLETED, 0.0, 0.0, "random", "test",
                            attributes={"holdout": holdout})


def _task_trials(params, scores):
    from tunesmith.records import TrialRecord, TrialState

    return [TrialRecord(i, TrialState.COMPLETED, params, i, values=(v,), metrics={"std": 0.02}, started_at=float(i),
                        finished_at=i + 1.0, duration_s=1.0) for i, v in enumerate(scores)]


@pytest.mark.parametrize(("holdout", "gap", "verdict"), [(0.41, "+0.0500", "optimistic"),
                                                        (0.50, "-0.0400", "pessimistic")])
def test_holdout_gap_of_a_maximised_metric_is_cv_minus_holdout(tmp_path, holdout, gap, verdict):
    """The gap compares the holdout with the CV score of the trial scored on it (trial 1 here, not the best by CV,
    trial 2), and is positive when CV looked better: the walkthrough's CV 0.8917 against holdout 0.9223 was called
    a gap of +0.0306 "how optimistic the CV figure is" when CV had been pessimistic."""
    from tunesmith.monitoring.report import build_report
    from tunesmith.summary import experiment_summary

    exp = _task_experiment(tmp_path, "task-kfold.yaml", {"trial": 1, "holdout_r2": holdout, "holdout_rows": 89})
    trials = _task_trials({"ridge__alpha": 1.0, "polynomialfeatures__degree": 1}, [0.45, 0.46, 0.47])
    document = build_report(exp, trials)
    assert "holdout (never seen by the search)" in document and "CV (kfold) of trial 1" in document
    assert f"gap {gap} (r2, higher is better; positive: CV looked better than the holdout): the CV figure " \
           f"was {verdict}" in document
    assert experiment_summary(exp, trials)["cv_optimism"]["gap"] == pytest.approx(float(gap))


@pytest.mark.parametrize(("fold_std", "verdict"), [
    (0.08, "within the spread of the fold scores (std 0.0800): no sign that the CV figure was optimistic"),
    (0.02, "the CV figure was optimistic (2.5 times the std of the fold scores, 0.0200)")])
def test_a_holdout_gap_is_read_against_the_spread_of_the_fold_scores(tmp_path, fold_std, verdict):
    """A gap of +0.05 where the trial's own folds scored 0.08 apart (std) is noise, not an optimistic CV: walk S read
    "the CV figure was optimistic" on a gap a quarter of the fold spread. The verdict says which, in `show`'s and the
    report's words, and the summary keeps the yardstick."""
    from tunesmith.monitoring.report import build_report
    from tunesmith.records import TrialRecord, TrialState
    from tunesmith.summary import experiment_summary

    exp = _task_experiment(tmp_path, "task-kfold.yaml", {"trial": 0, "holdout_r2": 0.41, "holdout_rows": 89})
    trials = [TrialRecord(0, TrialState.COMPLETED, {"ridge__alpha": 1.0, "polynomialfeatures__degree": 1}, 0,
                          values=(0.46,), metrics={"r2_std": fold_std}, started_at=0.0, finished_at=1.0,
                          duration_s=1.0)]
    assert f"gap +0.0500 (r2, higher is better; positive: CV looked better than the holdout): {verdict}" \
        in build_report(exp, trials)
    assert experiment_summary(exp, trials)["cv_optimism"]["fold_std"] == fold_std


def test_holdout_gap_of_a_minimised_metric_is_holdout_minus_cv(tmp_path):
    """A cost (lower is better) that is higher on the holdout than in CV: CV was optimistic, the gap positive."""
    from tunesmith.monitoring.report import build_report

    exp = _task_experiment(tmp_path, "task-stratified.yaml", {"trial": 0, "holdout_cost": 0.30, "holdout_rows": 114},
                           {"scoring": {"cost": [[0, 1], [5, 0]]}, "unstable_spread": None},
                           {"metric": "cost", "direction": "minimize"})
    trials = _task_trials({"selectkbest__k": 10, "logisticregression__C": 1.0,
                           "logisticregression__class_weight": None, "simpleimputer__strategy": "mean"}, [0.25, 0.28])
    document = build_report(exp, trials)
    assert "gap +0.0500 (cost, lower is better; positive: CV looked better than the holdout): the CV figure was " \
           "optimistic" in document


def test_the_pareto_front_drawn_is_that_of_the_trials_satisfying_the_constraints(project):
    """`show` printed the feasible front and selection picked from it, while the report drew the front of every
    completed trial: with `f2 <= 0.3` its front was made of trials show never listed."""
    import tunesmith

    spec = project.spec(name="front", objective=[{"metric": "f1", "direction": "minimize"},
                                                 {"metric": "f2", "direction": "minimize"}],
                        trial={"function": "objectives:two_objectives"}, strategy="grid", budget={"trials": 11},
                        constraints=["f2 <= 0.3"], executor={"kind": "inline"})
    spec["strategy"] = {"name": "grid", "points": 11}  # x = 0, 0.1, ..., 1: f1 = x^2, f2 = (x - 1)^2
    tunesmith.run(spec, storage=project.storage)
    shown = sorted(p["number"] for p in project.show("front")["pareto"])
    _report_in_process("front")
    section = (project.root / "front.html").read_text().split("<h2>Pareto front</h2>", 1)[1].split("</section>")[0]
    drawn = json.loads(re.search(r'"name":"Pareto front","text":(\[[^\]]*\])', section).group(1))
    assert sorted(int(t.split()[1]) for t in drawn) == shown and shown, (drawn, shown)
    assert '"name":"breaks a constraint"' in section
    assert "non-dominated trials of the 6 (of 11 completed) that satisfy f2 &lt;= 0.3" in section


def test_the_running_best_follows_the_trials_satisfying_the_constraints(project):
    """With `f2 <= 0.3` the best f1 (x = 0) breaks the constraint; show's best is x = 0.5 (f1 0.25), and the
    history's running best ended at 0, a value no selectable trial has."""
    import tunesmith

    spec = project.spec(name="hist", objective={"metric": "f1", "direction": "minimize"},
                        trial={"function": "objectives:two_objectives"}, budget={"trials": 11},
                        constraints=["f2 <= 0.3"], executor={"kind": "inline"})
    spec["strategy"] = {"name": "grid", "points": 11}  # x = 0, 0.1, ..., 1: f1 = x^2, f2 = (x - 1)^2
    tunesmith.run(spec, storage=project.storage)
    assert project.show("hist")["best"]["values"] == {"f1": pytest.approx(0.25)}
    _report_in_process("hist")
    section = (project.root / "hist.html").read_text().split("<h2>Optimisation history</h2>", 1)[1].split("</section>")[0]
    ys = json.loads(re.search(r'"name":"running best","x":\[[^\]]*\],"y":(\[[^\]]*\])', section).group(1))
    assert ys[-1] == pytest.approx(0.25) and min(ys) == pytest.approx(0.25), ys
    assert "satisfying f2 &lt;= 0.3" in section


def test_the_evaluation_table_ranks_the_trials_show_ranks(tmp_path):
    """The Evaluation table says it follows `show`'s, but it ranked every completed trial: one flagged unstable,
    which a task that excludes them never selects and `show` never lists, headed it."""
    import yaml

    from tunesmith.monitoring.report import build_report
    from tunesmith.records import ExperimentRecord, RunStatus, TrialRecord, TrialState
    from tunesmith.spec.loader import spec_from_dict
    from tunesmith.summary import selection_of

    spec = yaml.safe_load((Path(__file__).resolve().parents[1] / "examples" / "task-kfold.yaml").read_text())
    spec["objective"] = {"metric": "r2", "direction": "maximize"}
    spec["task"]["exclude_unstable"] = True
    stored = spec_from_dict({**spec, "base_dir": str(tmp_path)}).to_json()
    exp = ExperimentRecord(1, "ev", stored, RunStatus.COMPLETED, 0.0, 0.0, "random", "test")
    points = [(0.50, True), (0.45, False), (0.48, False)]  # trial 0 is the best r2, and unstable
    trials = [TrialRecord(i, TrialState.COMPLETED, {"ridge__alpha": 1.0, "polynomialfeatures__degree": 1}, i,
                          values=(r2,), metrics={"unstable": float(unstable)}, started_at=float(i),
                          finished_at=i + 1.0, duration_s=1.0) for i, (r2, unstable) in enumerate(points)]
    chosen = selection_of(exp, trials)
    assert chosen is not None and chosen.trial.number == 2
    section = build_report(exp, trials).split("<h2>Evaluation</h2>", 1)[1].split("</section>")[0]
    listed = re.findall(r"<tr><td>\*?(\d+)</td>", section)
    assert listed == ["2", "1"], (listed, section)
    assert "the best 2 of 2 trials selection may pick by r2" in section, section


def test_the_pareto_front_leaves_out_the_trials_a_task_excludes_as_unstable(tmp_path):
    """show's front and selection skip trials flagged unstable when the task excludes them; the report's front did
    not (it applied the constraints only)."""
    import yaml

    from tunesmith.monitoring.report import build_report
    from tunesmith.records import ExperimentRecord, RunStatus, TrialRecord, TrialState
    from tunesmith.spec.loader import spec_from_dict
    from tunesmith.summary import selection_of

    spec = yaml.safe_load((Path(__file__).resolve().parents[1] / "examples" / "task-kfold.yaml").read_text())
    spec["objective"] = [{"metric": "r2", "direction": "maximize"}, {"metric": "latency_p50_ms", "direction": "minimize"}]
    spec["task"]["exclude_unstable"] = True
    stored = spec_from_dict({**spec, "base_dir": str(tmp_path)}).to_json()
    exp = ExperimentRecord(1, "mo", stored, RunStatus.COMPLETED, 0.0, 0.0, "random", "test")
    points = [(0.50, 1.0, True), (0.45, 0.5, False), (0.48, 2.0, False)]  # trial 0 dominates 2 but is unstable
    trials = [TrialRecord(i, TrialState.COMPLETED, {"ridge__alpha": 1.0, "polynomialfeatures__degree": 1}, i,
                          values=(r2, lat), metrics={"unstable": float(unstable)}, started_at=float(i),
                          finished_at=i + 1.0, duration_s=1.0) for i, (r2, lat, unstable) in enumerate(points)]
    chosen = selection_of(exp, trials)
    assert chosen is not None and sorted(t.number for t in chosen.front) == [1, 2]
    section = build_report(exp, trials).split("<h2>Pareto front</h2>", 1)[1].split("</section>")[0]
    drawn = json.loads(re.search(r'"name":"Pareto front","text":(\[[^\]]*\])', section).group(1))
    assert sorted(int(t.split()[1]) for t in drawn) == [1, 2], drawn


def test_the_python_apis_best_is_shows_best_under_constraints(project):
    """Study.best (and the cycle's and the drift check's best) ignored the constraints: with `f2 <= 0.3` it named
    x = 0, which breaks it, while show named x = 0.5."""
    import tunesmith

    spec = project.spec(name="apibest", objective={"metric": "f1", "direction": "minimize"},
                        trial={"function": "objectives:two_objectives"}, budget={"trials": 11},
                        constraints=["f2 <= 0.3"], executor={"kind": "inline"})
    spec["strategy"] = {"name": "grid", "points": 11}  # x = 0, 0.1, ..., 1: f1 = x^2, f2 = (x - 1)^2
    result = tunesmith.run(spec, storage=project.storage)
    assert result.best is not None and result.best.number == project.show("apibest")["best"]["number"]
    assert result.best.params["x"] == pytest.approx(0.5)


def visible_text(document: str) -> str:
    """What a reader of the page sees outside the plots: tags, scripts and styles dropped, entities decoded."""
    import html

    text = re.sub(r"<(script|style)\b.*?</\1>", " ", document, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", text)))


def figure_of(document: str, title: str) -> tuple[list[dict], dict]:
    """The data and layout plotly draws in the section titled ``title``."""
    section = document.split(f"<h2>{title}</h2>", 1)[1].split("</section>", 1)[0]
    decoder = json.JSONDecoder()
    rest = section[section.index("Plotly.newPlot("):]
    rest = rest[rest.index('",') + 2:].lstrip()
    data, end = decoder.raw_decode(rest)
    layout, _ = decoder.raw_decode(rest[end:].lstrip(", \n"))
    return data, layout


def test_the_report_names_the_trial_select_picks_as_show_does(project):
    """With `select: knee` the header said `best: trial 0` (the best f1) while show said `selected (knee): trial
    5`, what promote ships; neither plot marked the selected trial."""
    import tunesmith

    spec = project.spec(name="knee", objective=[{"metric": "f1", "direction": "minimize"},
                                                {"metric": "f2", "direction": "minimize"}],
                        trial={"function": "objectives:two_objectives"}, budget={"trials": 11},
                        executor={"kind": "inline"}, select={"policy": "knee"})
    spec["strategy"] = {"name": "grid", "points": 11}  # x = 0, 0.1, ..., 1: f1 = x^2, f2 = (x - 1)^2
    tunesmith.run(spec, storage=project.storage)
    shown = project.show("knee")
    selected, best = shown["selected"], shown["best"]
    assert selected["number"] != best["number"]  # the knee (x = 0.5) is not the best f1 (x = 0)
    _report_in_process("knee")
    document = (project.root / "knee.html").read_text()
    text = visible_text(document)
    assert (f"selected (knee): trial {selected['number']} (what `tunesmith promote` ships): "
            f"{selected['reason']}") in text
    assert f"best: trial {best['number']}" not in text
    assert f"best by f1 (the first objective): trial {best['number']}" in text
    trial = next(t for t in project.trials("knee") if t["number"] == selected["number"])
    values = [trial["values"]["f1"], trial["values"]["f2"]]
    label = f"selected (knee): trial {selected['number']}"
    pareto, _ = figure_of(document, "Pareto front")
    marked = [d for d in pareto if d.get("name") == label]
    assert [[d["x"][0], d["y"][0]] for d in marked] == [pytest.approx(values)], [d.get("name") for d in pareto]
    history, _ = figure_of(document, "Optimisation history")
    marked = [d for d in history if d.get("name") == label]
    assert [[d["x"][0], d["y"][0]] for d in marked] == [[selected["number"], pytest.approx(values[0])]]
    # the history's running best is that of the first objective, and says so
    assert "running best by f1" in {d.get("name") for d in history}


LOG_OBJECTIVE = '''
def objective(config, trial):
    return config["lr"] ** 2 * config["width"]
'''


def test_log_scale_parameters_and_objectives_spanning_decades_are_drawn_on_log_axes(project):
    """`lr` sampled on a log scale from 1e-5 to 1 was drawn on linear axes (slice and parallel coordinates: every
    value piled up at the left edge), and a loss spanning 1e-10 to 1 on a linear history axis."""
    import math

    project.write("logobj.py", LOG_OBJECTIVE)
    project.write_spec(project.spec(
        "logs", trial={"function": "logobj:objective"}, budget={"trials": 20}, executor={"kind": "inline"},
        space={"lr": {"type": "float", "low": 1e-5, "high": 1.0, "log": True},
               "width": {"type": "int", "low": 1, "high": 8}}))
    _run(project, "logs.yaml")  # set-up: the report of it is what is checked
    _report_in_process("logs")
    document = (project.root / "logs.html").read_text()
    lrs = {t["number"]: t["params"]["lr"] for t in project.trials("logs")}
    assert max(lrs.values()) / min(lrs.values()) > 100  # the sample spans decades: a linear axis squashes it

    data, layout = figure_of(document, "Slice plots")
    titles = [a["text"] for a in layout["annotations"]]
    assert titles == ["lr (log scale)", "width"]
    assert layout["xaxis"].get("type") == "log" and layout["xaxis2"].get("type") != "log"

    data, _ = figure_of(document, "Parallel coordinates")
    dims = {d["label"]: d for d in data[0]["dimensions"]}
    assert set(dims) == {"lr (log scale)", "width", "loss"}
    assert sorted(dims["lr (log scale)"]["values"]) == pytest.approx(sorted(math.log10(v) for v in lrs.values()))
    lo, hi = math.log10(min(lrs.values())), math.log10(max(lrs.values()))
    ticks = dict(zip(dims["lr (log scale)"]["tickvals"], dims["lr (log scale)"]["ticktext"], strict=True))
    powers = {k: f"{10.0 ** k:g}" for k in range(math.ceil(lo), math.floor(hi) + 1)}  # 1e-05, 0.0001, ..., 1
    assert {k: v for k, v in ticks.items() if k in powers} == powers and len(powers) >= 2
    assert min(ticks) <= lo + 0.25 and max(ticks) >= hi - 0.25  # the axis is drawn out to the ends
    assert "tickvals" not in dims["width"]

    data, layout = figure_of(document, "Optimisation history")
    assert layout["yaxis"].get("type") == "log"
    assert layout["yaxis"]["title"]["text"] == "loss (minimize, log scale)"


@pytest.mark.parametrize("values", [(0.2, 0.3, 0.5), (0.0, 1e-8, 1.0), (1e-4, 0.01, 0.05)])
def test_history_stays_linear_unless_every_value_is_positive_and_spans_three_decades(tmp_path, values):
    from tunesmith.monitoring.report import build_report
    from tunesmith.records import ExperimentRecord, RunStatus, TrialRecord, TrialState
    from tunesmith.spec.loader import spec_from_dict

    spec = {"name": "lin", "objective": {"metric": "loss", "direction": "minimize"},
            "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}}, "trial": {"function": "objectives:quadratic"},
            "base_dir": str(tmp_path)}
    exp = ExperimentRecord(1, "lin", spec_from_dict(spec).to_json(), RunStatus.COMPLETED, 0.0, 0.0, "random", "test")
    trials = [TrialRecord(i, TrialState.COMPLETED, {"x": 0.1 * i}, i, values=(v,), started_at=float(i),
                          finished_at=i + 1.0, duration_s=1.0) for i, v in enumerate(values)]
    _, layout = figure_of(build_report(exp, trials), "Optimisation history")
    assert layout["yaxis"].get("type") != "log"
    assert layout["yaxis"]["title"]["text"] == "loss (minimize)"


def _stored_spec(tmp_path, objective=None):
    from tunesmith.spec.loader import spec_from_dict

    spec = {"name": "drawn", "objective": objective or {"metric": "loss", "direction": "minimize"},
            "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}}, "trial": {"function": "objectives:quadratic"},
            "base_dir": str(tmp_path)}
    return spec_from_dict(spec).to_json()


@pytest.mark.parametrize("earlier_attempt_s", [None, 5.0], ids=["first_attempt", "retried"])
@pytest.mark.parametrize(("status", "end"), [("running", 60.0), ("interrupted", 50.0)])
def test_a_running_trial_is_drawn_to_the_reports_time_and_keeps_its_lane(tmp_path, status, end, earlier_attempt_s):
    """A running trial (no finish, no duration yet) was drawn 1 ms long, and its lane was free 1 ms after it
    started: the trial started next was drawn on the same row, over it. It runs on to the report's time while its
    run is recorded running; one left running by a run that ended is drawn to its last beat. A retried one keeps its
    earlier attempt's duration in the record, which is not this attempt's."""
    from tunesmith.monitoring.report import build_report
    from tunesmith.records import ExperimentRecord, RunStatus, TrialRecord, TrialState

    exp = ExperimentRecord(1, "drawn", _stored_spec(tmp_path), RunStatus(status), 0.0, 0.0, "random", "test")
    trials = [TrialRecord(0, TrialState.RUNNING, {"x": 0.1}, 0, started_at=100.0, owner="h:1:a", heartbeat_at=150.0,
                          duration_s=earlier_attempt_s),
              TrialRecord(1, TrialState.COMPLETED, {"x": 0.2}, 1, values=(0.5,), started_at=110.0, finished_at=120.0,
                          duration_s=10.0, owner="h:1:a")]
    data, _ = figure_of(build_report(exp, trials, generated_at=160.0), "Worker timeline")
    bars = {d["name"]: list(zip(d["y"], d["base"], d["x"], strict=True)) for d in data}
    assert bars == {"running": [("worker 1", 0.0, end)], "completed": [("worker 2", 10.0, 10.0)]}, bars


def _point_colours(marker: dict) -> list[tuple[float, float, float]]:
    """Each point's colour as drawn on the white plot: its place on the colour scale, then the marker's opacity."""
    from plotly.colors import find_intermediate_color, get_colorscale, hex_to_rgb, unlabel_rgb

    scale = marker["colorscale"]
    scale = get_colorscale(scale) if isinstance(scale, str) else scale
    stops = [(float(p), hex_to_rgb(c) if c.startswith("#") else unlabel_rgb(c)) for p, c in scale]
    numbers = marker["color"]
    lo, hi = marker.get("cmin", min(numbers)), marker.get("cmax", max(numbers))
    alpha = marker.get("opacity", 1.0)
    out = []
    for n in numbers:
        at = (n - lo) / (hi - lo) if hi > lo else 0.0
        (p0, c0), (p1, c1) = next((a, b) for a, b in zip(stops, stops[1:], strict=False) if at <= b[0])
        rgb = find_intermediate_color(c0, c1, (at - p0) / (p1 - p0), colortype="tuple")
        out.append(tuple(alpha * v + (1 - alpha) * 255 for v in rgb))
    return out


def _contrast_with_white(rgb: tuple[float, float, float]) -> float:
    """WCAG 2.1's contrast ratio of ``rgb`` (0-255) against white."""
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (v / 255 for v in rgb)]
    luminance = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    return 1.05 / (luminance + 0.05)


def test_every_slice_point_stands_out_from_the_white_plot(tmp_path):
    """"Blues" starts at white and the points were half transparent: the first trials were white on white (trial 0
    of five could not be seen). WCAG's 3:1 for graphics against the background, the earliest trial included."""
    from tunesmith.monitoring.report import build_report
    from tunesmith.records import ExperimentRecord, RunStatus, TrialRecord, TrialState

    exp = ExperimentRecord(1, "drawn", _stored_spec(tmp_path), RunStatus.COMPLETED, 0.0, 0.0, "random", "test")
    trials = [TrialRecord(i, TrialState.COMPLETED, {"x": x}, i, values=(x,), started_at=float(i), finished_at=i + 1.0,
                          duration_s=1.0) for i, x in enumerate((0.368, 0.95, 0.73, 0.6, 0.16))]
    data, _ = figure_of(build_report(exp, trials), "Slice plots")
    assert data[0]["marker"]["color"] == [0, 1, 2, 3, 4]
    contrasts = [_contrast_with_white(c) for c in _point_colours(data[0]["marker"])]
    assert min(contrasts) >= 3.0, contrasts
    assert contrasts == sorted(contrasts) and contrasts[-1] > contrasts[0] + 2, "darker: later trials"


@pytest.mark.parametrize(("objectives", "mode"), [(2, "lines+markers"), (3, "markers")])
def test_the_pareto_front_is_a_line_with_two_objectives_only(tmp_path, objectives, mode):
    """With three objectives the front's members, projected on the first two, were joined by a line in order of the
    first: a zig-zag that drew a trade-off curve that is not there."""
    from tunesmith.monitoring.report import build_report
    from tunesmith.records import ExperimentRecord, RunStatus, TrialRecord, TrialState

    metrics = [{"metric": m, "direction": "minimize"} for m in ("a", "b", "c")[:objectives]]
    exp = ExperimentRecord(1, "drawn", _stored_spec(tmp_path, metrics), RunStatus.COMPLETED, 0.0, 0.0, "random",
                           "test")
    points = [(0.1, 0.9, 0.5), (0.2, 0.3, 0.9), (0.3, 0.8, 0.1), (0.5, 0.2, 0.4)]  # every one on the 3-D front
    trials = [TrialRecord(i, TrialState.COMPLETED, {"x": p[0]}, i, values=p[:objectives], started_at=float(i),
                          finished_at=i + 1.0, duration_s=1.0) for i, p in enumerate(points)]
    data, _ = figure_of(build_report(exp, trials), "Pareto front")
    front = next(d for d in data if d["name"] == "Pareto front")
    assert front["mode"] == mode
    assert len(front["x"]) == (4 if objectives == 3 else 3)  # (0.3, 0.8) is dominated in two objectives


def _killed_run(project):
    """Experiment ``killed`` recorded running, as a coordinator SIGKILLed on this host leaves it: trial 0 completed,
    trials 1 and 2 running by the dead coordinator, last beaten at 1_000_050."""
    import subprocess
    import sys

    from tunesmith.records import RunStatus, TrialState
    from tunesmith.spec.loader import spec_from_dict
    from tunesmith.storage.sql import SQLStore

    gone = subprocess.run([sys.executable, "-c", "from tunesmith.lease_holders import lease_owner_id; "
                           "print(lease_owner_id())"], capture_output=True, text=True, check=True,
                          env=os.environ).stdout.strip()  # a coordinator of this host whose process has ended
    store = SQLStore(project.storage)
    t0 = 1_000_000.0
    stored = spec_from_dict({**project.spec("killed"), "base_dir": str(project.root)}).to_json()
    exp = store.create_experiment("killed", stored, "random", "", t0)
    store.set_status(exp.id, RunStatus.RUNNING, t0, {"owner": gone})
    for number in range(3):
        trial = store.new_trial(exp.id, {"x": 0.1 * number}, 1, t0 + 10 * number, "{number}", owner=gone)
        assert trial is not None
        if number == 0:
            store.save_trial(exp.id, replace(trial, state=TrialState.COMPLETED, values=(0.2,), finished_at=t0 + 15,
                                             duration_s=15.0), "trial_completed", t0 + 15)
    store.heartbeat(exp.id, [1, 2], t0 + 50, gone)
    return store


def test_the_report_of_a_killed_run_says_nothing_runs_it_as_show_does(project):
    """The report of a run whose coordinator was SIGKILLed said `status running · running 2`, where `show` and
    `ls` say nothing runs it, and drew its running trials 1 ms long."""
    from tunesmith.monitoring.report import write_report

    store = _killed_run(project)
    try:
        assert project.show("killed").get("abandoned") is True
        write_report(store, "killed", "killed.html", generated_at=1_003_600.0)  # an hour after the kill
    finally:
        store.close()
    document = (project.root / "killed.html").read_text()
    text = visible_text(document)
    assert "status running (abandoned) · strategy random · running 2, completed 1" in text, text[:600]
    assert ("no live coordinator runs killed (it was killed, or its machine went away); continue it with: "
            "tunesmith resume killed") in text, text[:800]
    data, _ = figure_of(document, "Worker timeline")
    running = next(d for d in data if d["name"] == "running")
    # drawn to their last beat, when they were last known to run: not on to the report's time, an hour later
    assert [b + w for b, w in zip(running["base"], running["x"], strict=True)] == [50.0, 50.0], running


def test_the_report_of_a_run_waiting_on_a_quota_says_so_as_show_does(project):
    from datetime import UTC, datetime

    from tests.test_abandoned_quota_wait import _waiting_run
    from tunesmith.monitoring.report import write_report

    store = _waiting_run(project, "far-host:2:joiner")  # a live waiter on another machine
    try:
        wait = project.show("w")["quota_wait"]
        write_report(store, "w", "w.html", generated_at=time.time())
    finally:
        store.close()
    text = visible_text((project.root / "w.html").read_text())
    since = datetime.fromtimestamp(wait["since"], UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert (f"waiting on quota tag:team=a: 1 of 1 slots in use since {since} UTC (see `tunesmith quota list`)"
            in text), text[:800]
    assert "status running ·" in text and "abandoned" not in text


LINK_NAME = '<a href="https://evil.example/login">click for docs</a>'
MARKED_UP = '''
def objective(config, trial):
    return {"<b>loss</b>": config["x"] + config['<a href="https://evil.example/login">click for docs</a>']}
'''


def test_names_from_the_spec_reach_plotly_as_text_not_as_its_html(project):
    """plotly draws `<a href>`, `<b>` and `<br>` in titles, axis labels, ticks and hover text: a parameter named
    `<a href="https://...">` was a link in the report an SRE opens (the JSON escapes `<` as `\\u003c`, which plotly
    reads back as `<`). Every string a figure draws has its `<` and `>` as `&lt;` and `&gt;`, shown as written."""
    project.write("marked.py", MARKED_UP)
    project.write_spec(project.spec(
        "marked", trial={"function": "marked:objective"}, budget={"trials": 10}, executor={"kind": "inline"},
        objective={"metric": "<b>loss</b>", "direction": "minimize"},
        space={"x": {"type": "float", "low": 0.0, "high": 1.0}, LINK_NAME: {"type": "float", "low": 0.0, "high": 1.0},
               "kind": {"type": "categorical", "choices": ["<br>", "<i>b</i>"]}}))
    _run(project, "marked.yaml")
    _report_in_process("marked")
    document = (project.root / "marked.html").read_text()
    drawn = document.split("</script>", 1)[1]  # after plotly.js itself
    for tag in ("<a href", "<b>", "<br>", "<i>"):
        assert tag not in drawn and json.dumps(tag)[1:-1].replace("<", "\\u003c").replace(">", "\\u003e") not in drawn
    _, layout = figure_of(document, "Slice plots")
    assert '&lt;a href="https://evil.example/login"&gt;click for docs&lt;/a&gt;' in [
        a["text"] for a in layout["annotations"]]
    data, _ = figure_of(document, "Parallel coordinates")
    assert "&lt;b&gt;loss&lt;/b&gt;" in [d["label"] for d in data[0]["dimensions"]]
