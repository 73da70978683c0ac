"""The Ray executor on a real local Ray cluster: one cluster for the whole session (it takes ~5 s to start here).

The runs join it with ``address: auto``-style reuse: a Ray already initialized in the process is used as is.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tunesmith
from tunesmith.errors import SpecError
from tunesmith.records import FailureKind, TrialState
from tunesmith.spec.loader import spec_from_dict

from helpers import alive
from test_scheduling_runs import CURVES as SCHEDULED_CURVES

CURVES = SCHEDULED_CURVES + """
import os
import signal

def sleepy(config, trial):
    time.sleep(30)
    return 1.0

def die_once(config, trial):
    # The first attempt writes its Ray worker's pid and waits to be killed; the retry finds the file and finishes.
    marker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "markers", f"trial-{trial.number}")
    if not os.path.exists(marker):
        with open(marker + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(marker + ".tmp", marker)
        time.sleep(60)
    return config["x"]

def hog(config, trial):
    block = bytearray(700 * 2**20)  # touched: resident
    for i in range(0, len(block), 4096):
        block[i] = 1
    time.sleep(30)
    return 1.0

def where(config, trial):
    return {"loss": config["x"], "pid": float(os.getpid())}
"""


def _ray(workers: int = 2, **extra):
    return {"kind": "ray", "address": "auto", "workers": workers, **extra}


def test_a_small_run_completes_on_ray(ray_cluster, project):
    project.write("curves.py", CURVES)
    spec = project.spec(name="ray-small", trial={"function": "curves:where"}, budget={"trials": 6},
                        executor=_ray())
    result = tunesmith.run(spec, storage=project.storage)
    assert [t.state for t in result.trials] == [TrialState.COMPLETED] * 6
    pids = {t.metrics["pid"] for t in result.trials}
    assert os.getpid() not in pids, "trials ran in Ray workers, not in the coordinator"
    assert ray_cluster.is_initialized(), "a Ray the caller started is left running"


@pytest.mark.slow
def test_asha_prunes_on_ray(ray_cluster, project):
    project.write("curves.py", CURVES)
    spec = project.spec(name="ray-asha", trial={"function": "curves:objective"}, budget={"trials": 12},
                        strategy="random", executor=_ray(),
                        scheduler={"name": "asha", "min_resource": 1, "max_resource": 27, "reduction_factor": 3})
    result = tunesmith.run(spec, storage=project.storage)
    pruned = [t for t in result.trials if t.state is TrialState.PRUNED]
    completed = [t for t in result.trials if t.state is TrialState.COMPLETED]
    assert pruned and completed
    for t in pruned:
        assert t.intermediate[-1].step < 27, "a pruned trial stopped before the end"
        assert t.values == (t.intermediate[-1].value,)
    assert all(len(t.intermediate) == 27 for t in completed), "every report crossed to the coordinator"


@pytest.mark.slow
def test_a_trial_exceeding_its_timeout_is_killed(ray_cluster, project):
    project.write("curves.py", CURVES)
    spec = project.spec(name="ray-timeout", trial={"function": "curves:sleepy"}, budget={"trials": 1},
                        executor=_ray(1, trial_timeout="1s", retries=0))
    started = time.monotonic()
    result = tunesmith.run(spec, storage=project.storage)
    assert time.monotonic() - started < 15
    (trial,) = result.trials
    assert trial.state is TrialState.FAILED
    assert trial.failure_kind is FailureKind.TIMEOUT
    assert "trial_timeout of 1.0s" in trial.error


@pytest.mark.slow
def test_a_trial_over_its_memory_limit_is_killed(ray_cluster, project):
    project.write("curves.py", CURVES)
    spec = project.spec(name="ray-memory", trial={"function": "curves:hog"}, budget={"trials": 1},
                        executor=_ray(1, memory_limit="500MiB", retries=0))
    result = tunesmith.run(spec, storage=project.storage)
    (trial,) = result.trials
    assert trial.failure_kind is FailureKind.MEMORY, trial.error
    assert "exceeded memory_limit 500 MiB" in trial.error


@pytest.mark.slow
def test_a_command_trial_is_killed_with_its_ray_task(ray_cluster, project):
    """A stop reaches the user's process: the command's whole tree dies with the task, nothing is orphaned."""
    project.write("child.py", "import os, time\nopen(os.environ['PIDFILE'], 'w').write(str(os.getpid()))\n"
                              "time.sleep(60)\n")
    pidfile = project.root / "child.pid"
    spec = project.spec(name="ray-cmd", trial={"command": f"{sys.executable} {{spec_dir}}/child.py",
                                               "env": {"PIDFILE": str(pidfile)}},
                        budget={"trials": 1}, executor=_ray(1, trial_timeout="2s", retries=0))
    result = tunesmith.run(spec, storage=project.storage)
    assert result.trials[0].failure_kind is FailureKind.TIMEOUT
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid), "the command's process was killed with its trial"


@pytest.mark.slow
def test_a_ray_worker_killed_mid_trial_is_lost_then_retried(ray_cluster, project):
    project.write("curves.py", CURVES)
    markers = project.root / "markers"
    markers.mkdir()
    spec = project.spec(name="ray-lost", trial={"function": "curves:die_once"}, budget={"trials": 1},
                        executor=_ray(1, retries=1, retry_backoff=0.1))
    killer = subprocess.Popen([sys.executable, "-c", _KILLER, str(markers / "trial-0")])
    try:
        result = tunesmith.run(spec, storage=project.storage)
    finally:
        killer.kill()
        killer.wait()
    (trial,) = result.trials
    assert trial.state is TrialState.COMPLETED, trial.error
    assert trial.attempts == 2
    attempts = project.cli("trials", "ray-lost", "--json", check=True).stdout
    assert "lost" in attempts and "Ray worker running the trial was lost" in attempts


_KILLER = """
import os, signal, sys, time
path = sys.argv[1]
deadline = time.monotonic() + 60
while not os.path.exists(path) and time.monotonic() < deadline:
    time.sleep(0.05)
os.kill(int(open(path).read()), signal.SIGKILL)
"""


def test_ray_fields_are_validated(project):
    with pytest.raises(SpecError, match=r"executor.address: applies to kind: ray only"):
        spec_from_dict(project.spec(executor={"kind": "process", "address": "auto"}))
    with pytest.raises(SpecError, match=r"executor.address: must be local .* got 'nowhere'"):
        spec_from_dict(project.spec(executor={"kind": "ray", "address": "nowhere"}))
    spec = spec_from_dict(project.spec(executor={"kind": "ray", "address": "ray://head:10001", "resources_per_trial":
                                                 {"cpu": 0.5, "gpu": 0.25, "memory": "1GiB", "custom": {"TPU": 1}}}))
    assert spec.executor.resources_per_trial.memory == 2**30


def test_import_tunesmith_and_a_process_spec_load_no_ray(project):
    code = ("import sys, tunesmith\nfrom tunesmith.spec.loader import spec_from_dict\n"
            "spec_from_dict({'name': 'x', 'objective': {'metric': 'loss', 'direction': 'minimize'},"
            " 'space': {'x': {'type': 'float', 'low': 0, 'high': 1}}, 'trial': {'function': 'a:b'},"
            " 'executor': {'kind': 'ray', 'address': 'auto'}})\n"
            "assert 'ray' not in sys.modules, 'ray imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(project.root))


def test_without_ray_kind_ray_names_the_extra(project, tmp_path):
    """A Python where `import ray` fails: the run stops with one message naming the extra."""
    (tmp_path / "noray").mkdir()
    (tmp_path / "noray" / "ray.py").write_text("raise ImportError('no ray here')\n")
    spec = project.spec(name="noray", executor=_ray())
    path = project.write_spec(spec)
    env = {"PYTHONPATH": str(tmp_path / "noray")}
    proc = project.cli("run", str(path), "--quiet", env=env)
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'tunesmith[ray]'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_address_local_starts_a_private_cluster_and_stops_it(project):
    """Through the CLI, as a user runs it: the run's own cluster comes up, runs the trials, and goes away."""
    pytest.importorskip("ray", reason="the Ray executor tests need Ray: pip install 'tunesmith[ray]'")
    project.write("curves.py", CURVES)
    spec = project.spec(name="ray-local", trial={"function": "curves:where"}, budget={"trials": 2},
                        executor={"kind": "ray", "address": "local", "workers": 2})
    proc = project.cli("run", str(project.write_spec(spec)), "--quiet",
                       env={"RAY_AUTH_MODE": "", "HOME": str(project.root)})
    assert proc.returncode == 0, proc.stderr
    trials = project.trials("ray-local")
    assert [t["state"] for t in trials] == ["completed", "completed"]
    for t in trials:
        assert not alive(int(t["metrics"]["pid"])), "the private cluster's workers stopped with the run"
    assert not (project.root / ".ray" / "auth_token").exists(), "token auth stayed off for the private cluster"


@pytest.mark.slow
def test_coordinator_sigkilled_on_ray_then_resume_finishes_every_trial_exactly_once(ray_cluster, project,
                                                                                   monkeypatch):
    """The coordinator (a CLI process joined to the session's cluster) dies; Ray ends its actors; resume finishes."""
    from helpers import count_states, start_cli, wait_for

    project.write("naps.py", "import time\ndef nap(config, trial):\n    time.sleep(0.4)\n    return config['x']\n")
    address = ray_cluster.get_runtime_context().gcs_address
    spec = project.spec(name="ray-killed", trial={"function": "naps:nap"}, budget={"trials": 8},
                        executor=_ray(2, address=address))
    path = project.write_spec(spec)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # the CLI joins the session's cluster, which has no token
    proc = start_cli(project, "run", str(path), "--quiet")
    wait_for(lambda: count_states(project, "ray-killed").get("completed", 0) >= 2 and
             count_states(project, "ray-killed").get("running", 0) >= 1, timeout=60)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    before = count_states(project, "ray-killed")
    resumed = project.cli("resume", "ray-killed", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    shown = project.show("ray-killed")
    assert shown["status"] == "completed"
    assert shown["trials"]["completed"] == 8
    trials = project.trials("ray-killed")
    assert [t["number"] for t in trials] == list(range(8))
    assert len([t for t in trials if t["attempts"] == 2]) == before["running"], "exactly those left running re-ran"
