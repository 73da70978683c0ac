"""The shipped alert rules and dashboards: valid PromQL (promtool), alerts that fire when they should, and
queries that use only metrics tunesmith exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tunesmith.monitoring.metrics import METRIC_NAMES, TuningMetrics

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "monitoring"
PROMETHEUS_BUILTINS = {"up"}
# each rule file with its promtool unit tests: alerts.yml for every set-up, alerts-port.yml for --metrics-port only
RULE_FILES = {"alerts.yml": "alerts_test.yml", "alerts-port.yml": "alerts_port_test.yml"}


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not found: install the Debian package 'prometheus' (apt-get install -y prometheus)")
    return path


def _rule_exprs() -> list[str]:
    groups = [g for f in RULE_FILES for g in yaml.safe_load((DEPLOY / f).read_text())["groups"]]
    return [r["expr"] for g in groups for r in g["rules"]]


def _recorded() -> set[str]:
    groups = yaml.safe_load((DEPLOY / "alerts.yml").read_text())["groups"]
    return {r["record"] for g in groups for r in g["rules"] if "record" in r}


def _dashboards() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((DEPLOY / "dashboards").glob("*.json"))}


def _dashboard_exprs() -> list[str]:
    exprs = []
    for d in _dashboards().values():
        for p in d["panels"]:
            exprs += [t["expr"] for t in p.get("targets", [])]
        for v in d["templating"]["list"]:
            if v.get("definition"):
                exprs.append(v["definition"].removeprefix("label_values(").split(",")[0])
    return exprs


def _grafana_to_promql(expr: str) -> str:
    """Grafana's variables replaced by what they stand for, so promtool can parse the query."""
    return expr.replace("$experiment", ".*").replace("$__range", "6h").replace("$__interval", "1m")


@pytest.mark.parametrize("rules, tests", RULE_FILES.items())
def test_rules_pass_promtool_check_and_unit_tests(rules, tests):
    promtool = _promtool()
    check = subprocess.run([promtool, "check", "rules", str(DEPLOY / rules)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run([promtool, "test", "rules", str(DEPLOY / "tests" / tests)],
                          capture_output=True, text=True, timeout=60)
    assert unit.returncode == 0, unit.stdout + unit.stderr


def test_alerts_are_split_into_page_and_ticket():
    groups = yaml.safe_load((DEPLOY / "alerts.yml").read_text())["groups"]
    alerts = {r["alert"]: r["labels"]["severity"] for g in groups for r in g["rules"] if "alert" in r}
    assert set(alerts.values()) == {"page", "ticket"}
    assert {"TunesmithFailureRateHigh", "TunesmithExperimentStalled", "TunesmithBudgetBurnRateHigh",
            "TunesmithNoProgress"} <= set(alerts)


def test_dashboard_queries_are_valid_promql(tmp_path):
    """promtool parses every dashboard query (as a recording rule), so a typo fails here, not in Grafana."""
    promtool = _promtool()
    rules = {"groups": [{"name": "dashboards", "rules": [
        {"record": f"dashboard:query_{i}", "expr": _grafana_to_promql(e)} for i, e in enumerate(_dashboard_exprs())]}]}
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump(rules))
    check = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_every_queried_metric_is_exported():
    used = set()
    for expr in _rule_exprs() + _dashboard_exprs():
        for name in re.findall(r"\b(tunesmith_[a-z_]+|experiment:[a-z_:0-9]+)", expr):
            used.add(re.sub(r"_(bucket|sum|count)$", "", name) if name.endswith(("_bucket", "_sum", "_count"))
                     and name.startswith("tunesmith_trial_duration") else name)
    unknown = used - set(METRIC_NAMES) - _recorded() - PROMETHEUS_BUILTINS
    assert not unknown, f"queried but not exported: {sorted(unknown)}"
    assert len(used & set(METRIC_NAMES)) >= 15  # the dashboards really use the metrics


def test_metric_names_list_is_what_the_registry_exports():
    exported = set()
    for family in TuningMetrics().registry.collect():
        exported.add(family.name + "_total" if family.type == "counter" else family.name)
    assert exported == set(METRIC_NAMES)


def test_dashboards_are_grafana_json_with_the_three_audiences():
    boards = _dashboards()
    assert set(boards) == {"executive", "oncall", "debug"}
    for d in boards.values():
        assert d["uid"].startswith("tunesmith-") and d["panels"]
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids))
        assert {v["name"] for v in d["templating"]["list"]} == {"datasource", "experiment"}


_AGGREGATION = re.compile(r"\b(sum|max|min|count|avg)\s*(?:by\s*\([^)]*\)\s*)?\(")
_SERIES = re.compile(r"(?<![\w:])tunesmith_[a-z_]+")


def _innermost_aggregation(expr: str, at: int) -> str | None:
    """The aggregation operator whose argument most closely encloses position ``at`` of ``expr``, if any."""
    found: tuple[int, str] | None = None
    for m in _AGGREGATION.finditer(expr):
        opened, depth = m.end() - 1, 0
        for i in range(opened, len(expr)):
            depth += {"(": 1, ")": -1}.get(expr[i], 0)
            if depth == 0:
                break
        if opened < at < i and (found is None or opened > found[0]):
            found = (opened, m.group(1))
    return None if found is None else found[1]


def test_no_query_adds_up_the_coordinators_of_one_experiment():
    """Every coordinator of an experiment (a lead and its `resume --join`-ers) exports the whole experiment's figures,
    as `tunesmith metrics` does: summed across them, as the dashboards did, an 8-trial run showed 12 trials finished
    (the trial budget 150% used) and its workers' utilisation doubled. Each series is first reduced over
    coordinators by max (min for a minimised best value), per experiment; only then summed over states or reasons."""
    for expr in _rule_exprs() + _dashboard_exprs():
        if _SERIES.fullmatch(expr):
            continue  # a template variable's label_values()
        for m in _SERIES.finditer(expr):
            assert _innermost_aggregation(expr, m.start()) in ("max", "min"), (m.group(), expr)


# Gauges that can go down: a coordinator that left keeps exporting what it last saw (its textfile stays), so the max
# over every coordinator is a stale figure once the ones still running say less.
GO_DOWN = ("tunesmith_trials_since_best", "tunesmith_cost_per_trial", "tunesmith_resource_saved_ratio",
           "tunesmith_reproducibility_index")


def test_dashboards_read_gauges_that_can_go_down_from_the_coordinators_still_running(tmp_path):
    """Taken `max by (experiment)` over coordinators, a joiner that left with 30 trials since the best showed 30 on
    the on-call board after the lead, still running, found a new best (3 since), and its slots (the lead's and its
    own, as it last saw them) halved the lead's utilisation. Each panel is evaluated by promtool on a running lead,
    a joiner that left with higher figures, and an experiment every coordinator left (its last figure still shows)."""
    promtool = _promtool()
    queries = {name: [e for e in _dashboard_exprs() if name in e] for name in GO_DOWN}
    assert all(queries.values()), queries
    utilization = [t["expr"] for p in _dashboards()["oncall"]["panels"] if p["title"] == "Worker utilization"
                   for t in p["targets"]]  # (by its title: the stall panel reads tunesmith_workers_busy too)
    assert len(utilization) == 1, utilization
    series = []
    for name, (lead, joiner, done) in {**{n: (3, 30, 7) for n in GO_DOWN}, "tunesmith_workers": (2, 6, 2),
                                       "tunesmith_workers_busy": (2, 0, 0)}.items():
        series += [{"series": f'{name}{{experiment="joined",instance="lead"}}', "values": f"{lead}x10"},
                   {"series": f'{name}{{experiment="joined",instance="joiner"}}', "values": f"{joiner}x10"},
                   {"series": f'{name}{{experiment="done",instance="lead"}}', "values": f"{done}x10"}]
    series += [{"series": f'tunesmith_experiment_running{{experiment="{e}",instance="{i}"}}', "values": f"{r}x10"}
                for e, i, r in (("joined", "lead", 1), ("joined", "joiner", 0), ("done", "lead", 0))]
    tests = [{"expr": _grafana_to_promql(e), "eval_time": "5m",
              "exp_samples": [{"labels": '{experiment="done"}', "value": 7}, {"labels": '{experiment="joined"}',
                                                                                "value": 3}]}
             for name in GO_DOWN for e in queries[name]]
    # utilisation is of the slots at work: none once every coordinator left
    tests.append({"expr": _grafana_to_promql(utilization[0]), "eval_time": "5m",
                  "exp_samples": [{"labels": '{experiment="joined"}', "value": 1}]})
    (tmp_path / "none.yml").write_text("groups: []\n")
    path = tmp_path / "dashboards_test.yml"
    path.write_text(yaml.safe_dump({"rule_files": ["none.yml"], "evaluation_interval": "1m", "tests": [
        {"interval": "1m", "input_series": series, "promql_expr_test": tests}]}))
    unit = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert unit.returncode == 0, unit.stdout + unit.stderr


def test_active_experiments_leave_out_a_textfile_whose_coordinator_is_gone(tmp_path):
    """A killed coordinator's textfile says running 1 for as long as it stays: the executive board counted it among
    the active experiments for good. Its exposition time stands still, a live one's moves on; a textfile of an
    earlier tunesmith, without that time, still counts."""
    promtool = _promtool()
    (active,) = [e for e in _dashboard_exprs() if e.startswith("count(")]
    series = [{"series": f'tunesmith_experiment_running{{experiment="{e}"}}', "values": "1x20"}
              for e in ("killed", "live", "older")]
    series += [{"series": 'tunesmith_exposition_timestamp_seconds{experiment="killed"}', "values": "0+60x5 300x15"},
               {"series": 'tunesmith_exposition_timestamp_seconds{experiment="live"}', "values": "0+60x20"}]
    (tmp_path / "none.yml").write_text("groups: []\n")
    path = tmp_path / "active_test.yml"
    path.write_text(yaml.safe_dump({"rule_files": ["none.yml"], "evaluation_interval": "1m", "tests": [
        {"interval": "1m", "input_series": series, "promql_expr_test": [
            {"expr": _grafana_to_promql(active), "eval_time": "4m", "exp_samples": [{"labels": "{}", "value": 3}]},
            {"expr": _grafana_to_promql(active), "eval_time": "15m", "exp_samples": [{"labels": "{}", "value": 2}]},
        ]}]}))
    unit = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert unit.returncode == 0, unit.stdout + unit.stderr


def test_the_stall_panel_leaves_out_a_run_waiting_for_a_quota_slot_as_the_stall_alert_does(tmp_path):
    """The on-call board's stall panel counted a run waiting for a quota slot (the slots are other runs': policy,
    not a stall) as stalled, for as long as it waited, where TunesmithExperimentStalled leaves it alone. Evaluated by
    promtool: a run waiting with no trial of its own running is left out; one whose trial runs while it waits for
    more (that trial may hang), and a run not waiting, are shown."""
    promtool = _promtool()
    (stall,) = [e for e in _dashboard_exprs() if "tunesmith_last_activity_timestamp_seconds" in e]
    series = []
    for experiment, waiting, busy in (("waiting", 1, 0), ("waiting_running_one", 1, 1), ("stalled", 0, 1)):
        series += [{"series": f'tunesmith_last_activity_timestamp_seconds{{experiment="{experiment}"}}',
                    "values": "0x50"},
                   {"series": f'tunesmith_exposition_timestamp_seconds{{experiment="{experiment}"}}',
                    "values": "0+60x50"},
                   {"series": f'tunesmith_experiment_running{{experiment="{experiment}"}}', "values": "1x50"},
                   {"series": f'tunesmith_quota_waiting{{experiment="{experiment}"}}', "values": f"{waiting}x50"},
                   {"series": f'tunesmith_workers_busy{{experiment="{experiment}"}}', "values": f"{busy}x50"}]
    (tmp_path / "none.yml").write_text("groups: []\n")
    path = tmp_path / "stall_test.yml"
    path.write_text(yaml.safe_dump({"rule_files": ["none.yml"], "evaluation_interval": "1m", "tests": [
        {"interval": "1m", "input_series": series, "promql_expr_test": [
            {"expr": _grafana_to_promql(stall), "eval_time": "40m",
             "exp_samples": [{"labels": '{experiment="stalled"}', "value": 2400},
                             {"labels": '{experiment="waiting_running_one"}', "value": 2400}]}]}]}))
    unit = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert unit.returncode == 0, unit.stdout + unit.stderr
