"""A real Prometheus (Debian's package) scrapes a running experiment's --metrics-port and answers queries for
its success rate and best value over its HTTP API; the shipped rules load into it and evaluate without error.
Where Prometheus is missing, this skips naming the package (test_monitoring_metrics.py still parses the live
endpoint with prometheus_client's parser)."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.helpers import start_cli, stop_processes, wait_for

pytest.importorskip("prometheus_client", reason="needs prometheus-client: pip install 'tunesmith[metrics]'")

ALERTS = Path(__file__).resolve().parents[1] / "deploy" / "monitoring" / "alerts.yml"
STEADY = '''
import time

def steady(config, trial):
    time.sleep(0.3)
    if config["x"] > 0.9:
        raise ValueError("x too large")
    return (config["x"] - 0.3) ** 2
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _query(base: str, promql: str) -> list[dict]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    body = json.loads(urllib.request.urlopen(url, timeout=5).read())
    assert body["status"] == "success", body
    return body["data"]["result"]


@pytest.mark.slow
def test_prometheus_scrapes_a_running_experiment(project):
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.skip("prometheus not found: install the Debian package 'prometheus' (apt-get install -y prometheus)")
    project.write("steady.py", STEADY)
    project.write_spec(project.spec("scraped", trial={"function": "steady:steady"}, budget={"trials": 200}))
    run = start_cli(project, "run", "scraped.yaml", "--metrics-port", "0", "--quiet")  # quiet: pipes never fill
    prom = None
    try:
        line = run.stderr.readline()
        assert line.startswith("metrics: serving http://127.0.0.1:"), line
        target = urllib.parse.urlparse(line.split()[-1]).netloc
        shutil.copy(ALERTS, project.root / "alerts.yml")
        (project.root / "prometheus.yml").write_text(json.dumps({  # JSON is YAML
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": ["alerts.yml"],
            "scrape_configs": [{"job_name": "tunesmith", "static_configs": [{"targets": [target]}]}]}))
        web = f"127.0.0.1:{_free_port()}"
        prom = subprocess.Popen([prometheus, f"--config.file={project.root / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={project.root / 'tsdb'}", f"--web.listen-address={web}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://{web}"
        success_rate = ('sum(tunesmith_trials_finished_total{experiment="scraped",state="completed"}) '
                        '/ sum(tunesmith_trials_finished_total{experiment="scraped"})')

        def answered():
            try:
                rate = _query(base, success_rate)
                best = _query(base, 'tunesmith_best_value{experiment="scraped",metric="loss"}')
            except OSError:  # Prometheus still starting
                return None
            return rate and best and (rate, best)

        rate, best = wait_for(answered, timeout=40, interval=0.5)
        assert 0.0 < float(rate[0]["value"][1]) <= 1.0
        assert 0.0 <= float(best[0]["value"][1]) < 0.49  # (x - 0.3)^2 of some completed trial with x <= 0.9
        assert best[0]["metric"]["direction"] == "minimize" and best[0]["metric"]["job"] == "tunesmith"
        assert _query(base, 'up{job="tunesmith"}')[0]["value"][1] == "1"
        rules = json.loads(urllib.request.urlopen(f"{base}/api/v1/rules", timeout=5).read())["data"]["groups"]
        evaluated = [r for g in rules for r in g["rules"]]
        shipped = sum(len(g["rules"]) for g in yaml.safe_load(ALERTS.read_text())["groups"])
        assert len(evaluated) == shipped and all(r["health"] != "err" for r in evaluated), evaluated
    finally:
        stop_processes(run, prom, sig=signal.SIGTERM)
