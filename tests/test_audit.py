"""The audit trail: runs and later actions recorded with their actor; they never count as the run's time."""

from __future__ import annotations

import json
import time

import pytest

import tunesmith
from tunesmith.audit import time_spent
from tunesmith.storage.sql import SQLStore


def test_runs_are_audited_with_actor_and_listed_by_the_cli(project):
    spec = project.write_spec(project.spec("audited", executor={"kind": "inline"}, budget={"trials": 2}))
    tunesmith.run(spec, storage=project.storage)
    rows = json.loads(project.cli("audit", "audited", "--json", check=True).stdout)
    kinds = [r["kind"] for r in rows]
    assert kinds.index("run_started") < kinds.index("run_completed") < kinds.index("run_ended")
    started = next(r for r in rows if r["kind"] == "run_started")
    ended = next(r for r in rows if r["kind"] == "run_ended")
    assert started["detail"]["actor"]["user"] and started["detail"]["actor"]["host"]
    assert ended["detail"]["status"] == "completed" and "budget" in ended["detail"]["reason"]
    env = SQLStore(project.storage, create=False).experiment("audited").attributes["environment"]
    assert env["python"] and "optuna" in env["packages"] and env["cpu_count"] >= 1
    text = project.cli("audit", check=True).stdout
    assert "audited run_started" in text and "by " in text
    # an unknown name is bad input: with --json the object `drift --json` and `cycle --json` give (it printed nothing)
    refused = project.cli("audit", "nosuch", "--json")
    assert refused.returncode == 2 and "nosuch" in refused.stderr, refused.stderr
    said = json.loads(refused.stdout)
    assert said["outcome"] == "bad_input" and said["exit_code"] == 2 and "nosuch" in said["error"], said


def test_the_environment_records_each_packages_version_as_importlib_metadata_reads_it(monkeypatch):
    """The versions are read off each package's Version header (importlib.metadata.version parsed the whole
    metadata file, long description included, for 11 packages on every run): the same versions, without that."""
    from importlib import metadata

    from tunesmith.environment import PACKAGES, capture

    expected = {}
    for name in PACKAGES:
        try:
            expected[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    assert expected["tunesmith"] and expected["optuna"]

    def parsed(self):  # type: ignore[no-untyped-def]
        raise AssertionError("the whole metadata file was parsed")

    monkeypatch.setattr(metadata.Distribution, "metadata", property(parsed))
    assert capture(None)["packages"] == expected
    from tunesmith.environment import package_version

    with pytest.raises(metadata.PackageNotFoundError):
        package_version("no-such-package-here")


def test_actions_after_a_run_do_not_count_as_its_time(project):
    from tunesmith.audit import time_spent

    tunesmith.run(project.write_spec(project.spec("timed", executor={"kind": "inline"}, budget={"trials": 2})),
                  storage=project.storage)
    store = SQLStore(project.storage, create=False)
    exp = store.experiment("timed")
    before = time_spent(store.events(exp.id))
    store.record_event(exp.id, "tracking_exported", exp.updated_at + 86400.0)  # an export a day later
    store.record_event(exp.id, "promoted", exp.updated_at + 2 * 86400.0)
    assert time_spent(store.events(exp.id)) == before < 60


def test_the_command_line_is_recorded_without_credentials(monkeypatch):
    import sys

    from tunesmith.audit import actor

    monkeypatch.setattr(sys, "argv", ["tunesmith", "run", "s.yaml", "-s", "postgresql://bob:hunter2@db/x"])
    assert actor()["command"] == "tunesmith run s.yaml -s postgresql://bob:***@db/x"


def test_every_audited_kind_is_listed_kept_out_of_the_runs_time_and_promotions_are_counted(project):
    """audit.AuditKind is the one list: each kind recorded after a run is in `tunesmith audit` and not in the run's
    time; each promotion decision is recorded as an audited kind that the metrics count under an outcome label."""
    from tunesmith.audit import AUDITED, DURING_RUN, PROMOTION_OUTCOMES, AuditKind, time_spent
    from tunesmith.monitoring.metrics import metrics_from_store
    from tunesmith.promotion.promote import Decision

    tunesmith.run(project.write_spec(project.spec("kinds", executor={"kind": "inline"}, budget={"trials": 2})),
                  storage=project.storage)
    store = SQLStore(project.storage, create=False)
    exp = store.experiment("kinds")
    before = time_spent(store.events(exp.id))
    later = [k for k in AuditKind if k not in DURING_RUN]
    for day, kind in enumerate(later, start=1):  # each a day after the run
        # without record()'s actor, which lists any event: only AuditKind's membership in AUDITED lists it
        store.record_event(exp.id, kind, exp.updated_at + day * 86400.0)
    assert time_spent(store.events(exp.id)) == before < 60
    listed = {r["kind"] for r in json.loads(project.cli("audit", "kinds", "--json", check=True).stdout)}
    assert set(later) <= listed and "run_started" in listed

    promotion_kinds = {d.audit_kind for d in Decision}
    assert promotion_kinds <= AUDITED and promotion_kinds == set(PROMOTION_OUTCOMES)  # none forgotten, none dead
    exposition = metrics_from_store(store, "kinds", time.time()).decode()
    for kind in promotion_kinds:
        assert f'tunesmith_promotions_total{{experiment="kinds",outcome="{PROMOTION_OUTCOMES[kind]}"}} 1.0' \
            in exposition, kind


def _kinds_written_as_strings(source: str) -> list[tuple[int, str]]:
    """(line, text) of each event kind in ``source`` written as a string that spells an AuditKind or one of its
    families (``run_``, ``promotion_``, ``tracking_``): the kind argument of ``record_event`` and ``audit.record``, a
    ``kind=`` keyword (a row of the events table), a ``"kind"`` key (a row as parameters), a name it is kept in."""
    import ast
    from collections import Counter

    from tunesmith.audit import AuditKind

    spelled = {k.value for k in AuditKind}
    families = tuple(f"{w}_" for w, n in Counter(v.split("_")[0] for v in spelled).items() if n > 1)

    def as_string(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in spelled:
            return node.value
        if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            lead = str(node.values[0].value)
            return ast.unparse(node) if lead.startswith(families) else None
        return None

    found = []
    module = ast.parse(source)
    for node in ast.walk(module):
        kinds: list[ast.AST] = []
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            position = {"record_event": 1, "record": 2}.get(name)
            if position is not None and len(node.args) > position:
                kinds.append(node.args[position])
            kinds += [k.value for k in node.keywords if k.arg == "kind"]
        elif isinstance(node, ast.Dict):
            kinds += [v for k, v in zip(node.keys, node.values, strict=True)
                      if isinstance(k, ast.Constant) and k.value == "kind"]
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None and node in module.body:
            kinds.append(node.value)  # a kind kept in a name (EVENT = "trial_reproduced") and written from it
        found += [(n.lineno, text) for n in kinds if (text := as_string(n)) is not None]
    return sorted(found)


def test_every_writer_of_an_audited_kind_writes_the_enum_not_a_string():
    """A kind spelled as a string beside the one list (`"tracking_failed"`, `f"run_{status.value}"`) is left behind
    when a kind is renamed or added there, and `tunesmith audit`, the run's time and the metrics stop seeing it."""
    from pathlib import Path

    import tunesmith as package

    # the check itself catches both spellings
    assert _kinds_written_as_strings('store.record_event(1, "tracking_failed", now)\n'
                                     'audit.record(store, 1, "promoted", clock)\n'
                                     'insert(events).values(kind=f"run_{status.value}")\n'
                                     'EVENT = "trial_reproduced"\n') == [
        (1, "tracking_failed"), (2, "promoted"), (3, "f'run_{status.value}'"), (4, "trial_reproduced")]
    root = Path(package.__file__).parent
    offenders = {str(path.relative_to(root)): found for path in sorted(root.rglob("*.py"))
                 if path != root / "audit.py" and (found := _kinds_written_as_strings(path.read_text()))}
    assert offenders == {}


def test_each_status_a_run_reaches_is_recorded_as_its_kind(project):
    from tunesmith.audit import AuditKind, status_kind
    from tunesmith.clock import SystemClock
    from tunesmith.records import RunStatus

    store = SQLStore(project.storage)
    exp = store.create_experiment("statuses", {}, "random", "test", SystemClock().now())
    reached = [s for s in RunStatus if s is not RunStatus.CREATED]  # CREATED is where an experiment starts
    for at, status in enumerate(reached, start=1):
        store.set_status(exp.id, status, exp.created_at + at)
    kinds = [e.kind for e in store.events(exp.id)][1:]  # after experiment_created
    assert kinds == [status_kind(s) for s in reached] and all(isinstance(status_kind(s), AuditKind) for s in reached)


def test_the_time_between_a_killed_run_and_its_resume_is_not_charged_to_the_wall_time_budget(project):
    """A SIGKILLed run ends at its last event; the resume, minutes later, marks its running trials lost (events
    stamped then). Those events are the resume's bookkeeping, not the dead run's time: counting them charged the
    downtime to the wall-time budget, and a resume after a long enough gap stopped at once, its lost trials never
    re-run (seen: 3 s of a 20 s budget used, a resume 25 s later started nothing)."""
    from tunesmith.runner import resume_experiment

    project.write("die_once.py", """
        import os, pathlib, signal
        def objective(config, trial):
            if trial.number == 1 and not pathlib.Path("killed-once").exists():
                pathlib.Path("killed-once").touch()
                os.kill(os.getpid(), signal.SIGKILL)  # inline: the trial runs in the coordinator
            return config["x"]
    """)
    spec = project.write_spec(project.spec("downtime", executor={"kind": "inline"}, strategy="random",
                                           budget={"trials": 3, "wall_time": "600s"},
                                           trial={"function": "die_once:objective"}))
    assert project.cli("run", str(spec), "--quiet").returncode == -9
    store = SQLStore(project.storage, create=False)
    try:
        exp = store.experiment("downtime")
        spent_when_killed = time_spent(store.events(exp.id))
        time.sleep(2.5)  # the downtime
        result = resume_experiment("downtime", store)
        assert result.status.value == "completed"
        events = store.events(exp.id)
        second_run = [i for i, e in enumerate(events) if e.kind == "run_running"][1]
        assert [e.kind for e in events[second_run - 1:second_run]] == ["trial_lost"], "the resume reclaimed trial 1"
        assert time_spent(events[:second_run]) == pytest.approx(spent_when_killed, abs=1e-6), \
            "the killed run's time ends at its own last event"
        assert [t.state.value for t in store.trials(exp.id)] == ["completed"] * 3
    finally:
        store.close()


def test_a_budget_stop_that_leaves_lost_trials_unrun_says_so(project):
    """Lost trials re-run only while the budget allows; a resume whose wall time the killed run had spent stops at
    once, and its reason names the trial left lost, not a bare budget line under a completed status."""
    from tunesmith.budget import with_unrun
    from tunesmith.runner import resume_experiment

    project.write("spend_then_die.py", """
        import os, pathlib, signal, time
        def objective(config, trial):
            first_run = not pathlib.Path(f"ran-{trial.number}").exists()
            pathlib.Path(f"ran-{trial.number}").touch()
            if trial.number == 0:
                time.sleep(1.3)  # finishes past the 1 s budget: the killed run's time is spent
            elif first_run:
                time.sleep(2.5)
                os.kill(os.getppid(), signal.SIGKILL)  # the coordinator, while this trial still runs
                time.sleep(60)
            return config["x"]
    """)
    spec = project.write_spec(project.spec("spent", executor={"kind": "process", "workers": 2},
                                           budget={"trials": 4, "wall_time": "1s"},
                                           trial={"function": "spend_then_die:objective"}))
    assert project.cli("run", str(spec), "--quiet").returncode == -9
    store = SQLStore(project.storage, create=False)
    try:
        result = resume_experiment("spent", store)
        assert result.stop_reason == "wall-time budget of 1s reached, so 1 lost or interrupted trial was not re-run"
        assert [t.state.value for t in store.trials(store.experiment("spent").id)] == ["completed", "lost"]
    finally:
        store.close()
    assert with_unrun("wall-time budget of 20s reached", 0) == "wall-time budget of 20s reached"
    assert with_unrun("target 0.1 reached (best 0.05)", 2).endswith(", so 2 lost or interrupted trials were not re-run")
