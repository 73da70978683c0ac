"""The audit trail: runs and later actions recorded with their actor; they never count as the run's time."""

from __future__ import annotations

import json

import tunesmith
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


def test_actions_after_a_run_do_not_count_as_its_time(project):
    from tunesmith.audit import run_time_before

    tunesmith.run(project.write_spec(project.spec("timed", executor={"kind": "inline"}, budget={"trials": 2})),
                  storage=project.storage)
    store = SQLStore(project.storage, create=False)
    exp = store.experiment("timed")
    before = run_time_before(store, exp.id)
    store.record_event(exp.id, "tracking_exported", exp.updated_at + 86400.0)  # an export a day later
    store.record_event(exp.id, "promoted", exp.updated_at + 2 * 86400.0)
    assert run_time_before(store, exp.id) == before < 60


def test_the_command_line_is_recorded_without_credentials(monkeypatch):
    import sys

    from tunesmith.audit import actor

    monkeypatch.setattr(sys, "argv", ["tunesmith", "run", "s.yaml", "-s", "postgresql://bob:hunter2@db/x"])
    assert actor()["command"] == "tunesmith run s.yaml -s postgresql://bob:***@db/x"


def test_every_audited_kind_is_listed_kept_out_of_the_runs_time_and_promotions_are_counted(project):
    """audit.AuditKind is the one list: each kind recorded after a run is in `tunesmith audit` and not in the run's
    time; each promotion decision is recorded as an audited kind that the metrics count under an outcome label."""
    from tunesmith.audit import AUDITED, DURING_RUN, PROMOTION_OUTCOMES, AuditKind
    from tunesmith.monitoring.metrics import metrics_from_store
    from tunesmith.promotion.promote import Decision
    from tunesmith.audit import run_time_before

    tunesmith.run(project.write_spec(project.spec("kinds", executor={"kind": "inline"}, budget={"trials": 2})),
                  storage=project.storage)
    store = SQLStore(project.storage, create=False)
    exp = store.experiment("kinds")
    before = run_time_before(store, exp.id)
    later = [k for k in AuditKind if k not in DURING_RUN]
    for day, kind in enumerate(later, start=1):  # each a day after the run
        # without record()'s actor, which lists any event: only AuditKind's membership in AUDITED lists it
        store.record_event(exp.id, kind, exp.updated_at + day * 86400.0)
    assert run_time_before(store, exp.id) == before < 60
    listed = {r["kind"] for r in json.loads(project.cli("audit", "kinds", "--json", check=True).stdout)}
    assert set(later) <= listed and "run_started" in listed

    promotion_kinds = {d.audit_kind for d in Decision}
    assert promotion_kinds <= AUDITED and promotion_kinds == set(PROMOTION_OUTCOMES)  # none forgotten, none dead
    exposition = metrics_from_store(store, "kinds").decode()
    for kind in promotion_kinds:
        assert f'tunesmith_promotions_total{{experiment="kinds",outcome="{PROMOTION_OUTCOMES[kind]}"}} 1.0' \
            in exposition, kind
