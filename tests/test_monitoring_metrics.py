"""Prometheus metrics and JSON logs of real runs: the textfile, `tunesmith metrics`, the live endpoint."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request

import pytest

from tests.helpers import start_cli, wait_for

prom_parser = pytest.importorskip("prometheus_client.parser", reason="needs prometheus-client: "
                                  "pip install 'tunesmith[metrics]'")

FLAKY = '''
def flaky(config, trial):
    if config["x"] > 0.7:
        raise ValueError("too big")
    for step in range(1, 4):
        trial.report(step, config["x"] * step)
    return {"loss": (config["x"] - 0.3) ** 2, "cost": 0.25}
'''


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels (parsed by prometheus_client's parser)."""
    out = {}
    for family in prom_parser.text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(parsed, name: str, **labels: str) -> float:
    return parsed[(name, tuple(sorted(labels.items())))]


def test_run_writes_textfile_json_logs_and_metrics_command_agrees(project):
    project.write("flaky.py", FLAKY)
    project.write_spec(project.spec("m", trial={"function": "flaky:flaky"}, budget={"trials": 10}))
    run = project.cli("run", "m.yaml", "--metrics-file", "m.prom", "--log-format", "json")
    assert run.returncode == 0, run.stderr

    # JSON logs: every stderr line is one object; each trial starts and finishes once, with its state
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.strip()]
    assert all({"timestamp", "time", "event", "experiment"} <= set(e) for e in lines)
    finished = {e["trial"]: e for e in lines if e["event"] == "trial_finished"}
    trials = project.trials("m")
    assert sorted(finished) == [t["number"] for t in trials]
    for t in trials:
        assert finished[t["number"]]["state"] == t["state"]
        if t["state"] == "failed":
            assert "too big" in finished[t["number"]]["reason"]
    assert [e["event"] for e in lines][-1] == "run_finished"
    assert "Best trials" not in run.stdout  # the human display is replaced, not mixed in

    # the textfile, parsed, against the store
    parsed = samples((project.root / "m.prom").read_text())
    failed = sum(t["state"] == "failed" for t in trials)
    completed = sum(t["state"] == "completed" for t in trials)
    assert 0 < failed < 10
    assert value(parsed, "tunesmith_trials_finished_total", experiment="m", state="completed") == completed
    assert value(parsed, "tunesmith_trials_finished_total", experiment="m", state="failed") == failed
    assert value(parsed, "tunesmith_trial_failures_total", experiment="m", reason="exception") == failed
    assert value(parsed, "tunesmith_trial_duration_seconds_count", experiment="m", state="completed") == completed
    best = project.show("m")["best"]
    assert value(parsed, "tunesmith_best_value", experiment="m", metric="loss",
                 direction="minimize") == pytest.approx(best["values"]["loss"])
    assert value(parsed, "tunesmith_cost_total", experiment="m") == pytest.approx(0.25 * completed)
    assert value(parsed, "tunesmith_cost_per_trial", experiment="m") == pytest.approx(0.25)
    assert value(parsed, "tunesmith_experiment_running", experiment="m") == 0
    assert value(parsed, "tunesmith_workers", experiment="m") == 2
    assert value(parsed, "tunesmith_budget_trials", experiment="m") == 10
    assert not [k for k in parsed if any(label == "trial" for label, _ in k[1])]  # never a per-trial label

    # `tunesmith metrics` computes the same figures from the store alone
    from_store = samples(project.cli("metrics", "m", check=True).stdout)
    assert from_store == parsed


def test_metrics_port_in_use_fails_before_recording(project):
    project.write_spec(project.spec("busy"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        r = project.cli("run", "busy.yaml", "--metrics-port", str(s.getsockname()[1]))
    assert r.returncode == 2
    assert "--metrics-port" in r.stderr and "Traceback" not in r.stderr
    assert "busy" not in project.cli("ls").stdout


def test_metrics_file_in_missing_folder_is_an_input_error(project):
    project.write_spec(project.spec("nofolder"))
    r = project.cli("run", "nofolder.yaml", "--metrics-file", "no/such/dir/m.prom")
    assert r.returncode == 2 and "--metrics-file" in r.stderr


def test_live_endpoint_serves_a_running_experiment(project, monkeypatch):
    """Mid-run: both workers busy and the experiment running; the server goes away with the run."""
    monkeypatch.setenv("SLOW_SECONDS", "1.5")
    project.write_spec(project.spec("live", trial={"function": "objectives:slow"}, budget={"trials": 3},
                                    executor={"kind": "process", "workers": 2}))
    proc = start_cli(project, "run", "live.yaml", "--metrics-port", "0", "--log-format", "json")
    try:
        url = json.loads(proc.stderr.readline())["url"]

        def busy():
            parsed = samples(urllib.request.urlopen(url, timeout=5).read().decode())
            return parsed.get(("tunesmith_workers_busy", (("experiment", "live"),)), 0) == 2 and parsed

        parsed = wait_for(busy, timeout=30)
        assert value(parsed, "tunesmith_experiment_running", experiment="live") == 1
        assert value(parsed, "tunesmith_trials_started_total", experiment="live") == 2
        assert proc.wait(timeout=60) == 0
        with pytest.raises(OSError):
            urllib.request.urlopen(url, timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_import_tunesmith_loads_neither_prometheus_nor_plotly():
    code = ("import sys, tunesmith, tunesmith.cli, tunesmith.monitoring, tunesmith.monitoring.observers; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('prometheus_client', 'plotly')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
