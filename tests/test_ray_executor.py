"""The Ray executor on a real local Ray cluster: one cluster for the whole session (it takes ~5 s to start here).

The runs join it with ``address: auto``-style reuse: a Ray already initialized in the process is used as is.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tunesmith
from tunesmith.errors import SpecError
from tunesmith.records import FailureKind, TrialState
from tunesmith.spec.loader import spec_from_dict
from tunesmith.spec.model import check_new_spec

from helpers import alive
from test_checkpoints import RESUMING
from test_pbt_runs import GATE_PREAMBLE
from test_scheduling_runs import CURVES as SCHEDULED_CURVES

pytestmark = pytest.mark.xdist_group("ray")  # one worker runs every Ray test: see ray_fixtures.py

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
def test_a_trial_over_its_memory_limit_is_killed(ray_cluster, project, capfd):
    project.write("curves.py", CURVES)
    spec = project.spec(name="ray-memory", trial={"function": "curves:hog"}, budget={"trials": 1},
                        executor=_ray(1, memory_limit="500MiB", retries=0))
    result = tunesmith.run(spec, storage=project.storage)
    (trial,) = result.trials
    assert trial.failure_kind is FailureKind.MEMORY, trial.error
    assert "exceeded memory_limit 500 MiB" in trial.error
    time.sleep(2)  # (Ray's driver prints its error messages from a thread)
    assert "A worker died" not in "".join(capfd.readouterr()), "a kill tunesmith ordered is no crash to Ray"


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


def test_a_bad_report_line_of_a_ray_trial_is_a_run_warning(ray_cluster, project):
    """The note of a report line left out comes back with the attempt's answer from its Ray worker."""
    from tunesmith.events import RunListener

    class Warnings(RunListener):
        def __init__(self) -> None:
            self.said: list[str] = []

        def warning(self, message: str) -> None:
            self.said.append(message)

    project.write("bad_step.py", "import json\nprint(json.dumps({'step': 0.5, 'loss': 0.4}))\n"
                                 "print(json.dumps({'loss': 0.2}))\n")
    spec = project.spec(name="ray-note", trial={"command": f"{sys.executable} {{spec_dir}}/bad_step.py"},
                        budget={"trials": 1}, executor=_ray(1, retries=0))
    warnings = Warnings()
    result = tunesmith.run(spec, storage=project.storage, listener=warnings)
    assert result.trials[0].state is TrialState.COMPLETED
    assert [w for w in warnings.said if "report line" in w] == [
        'trial 0: a report line was ignored, {"step": 0.5, "loss": 0.4}: its "step" must be a whole number >= 0, as '
        'in {"step": 3, "loss": 0.4}; later ignored lines of this trial are not told']


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


def test_a_retry_on_ray_restates_its_checkpoints_reports_without_waiting_for_a_ruling(ray_cluster, project):
    """Its Ray worker killed at epoch 3 (lost, retried), attempt 2 continues from the checkpoint of epoch 3 and
    restates epochs 1-3 through the mailbox: recorded for attempt 2 (its curve whole), and, under a scheduler,
    posted without waiting for a ruling that never comes."""
    project.write("resuming.py", RESUMING)
    spec = project.spec(name="ray-restated", trial={"function": "resuming:objective"}, budget={"trials": 1},
                        executor=_ray(1, retries=1, retry_backoff=0.1), scheduler={"name": "median"})
    (trial,) = tunesmith.run(spec, storage=project.storage).trials
    assert (trial.state, trial.attempts) == (TrialState.COMPLETED, 2), trial.error
    assert trial.duration_s is not None and trial.duration_s < 10, "a restated report waits for no ruling"
    with sqlite3.connect(project.db) as conn:
        rows = conn.execute("SELECT attempt, step FROM trial_reports ORDER BY id").fetchall()
    assert [step for attempt, step in rows if attempt == 2] == [1, 2, 3, 4, 5, 6], rows



def test_a_full_shared_workdir_on_ray_stops_the_run_as_on_the_process_executor(ray_cluster, project, tmp_path):
    """Review B L4: the workdir that the coordinator and its Ray workers share (this machine, or the same path on
    every node) on a 300 KiB tmpfs, filled by three trials' logs: the next trial's log refused a write, its attempt
    read `crashed`, and it was retried into the same disk, every retry failing the same way. Now the run stops as on
    the process executor, naming the disk and the log: that trial recorded interrupted (not retried); `resume`
    continues once there is room."""
    from faults.test_coordinator_faults import LOUD, tmpfs
    from tunesmith.errors import WorkdirError

    with tmpfs(tmp_path / "wdfs", "300k") as mount:
        project.write("loud.py", LOUD)
        workdir = mount / "wd"
        spec = project.spec(name="ray-wdfull", trial={"function": "loud:objective"}, budget={"trials": 8},
                            workdir=str(workdir), executor=_ray(1, retries=2, retry_backoff=0.1))
        with pytest.raises(WorkdirError, match=r"trial (\d+)'s log could not be written in workdir") as stopped:
            tunesmith.run(spec, storage=project.storage)
        number = int(str(stopped.value).split("'s log", 1)[0].rsplit(" ", 1)[-1])
        log = workdir / f"trial-{number:05d}" / "trial.log"
        assert f"No space left on device (writing {log}); the run stopped" in str(stopped.value), stopped.value
        trials = tunesmith.open_experiment("ray-wdfull", storage=project.storage).trials
        states = [t.state for t in trials]
        assert number >= 1 and states[:number] == [TrialState.COMPLETED] * number, states
        assert states[number:] and set(states[number:]) == {TrialState.INTERRUPTED}, states
        assert all(t.attempts == 1 for t in trials), "not retried into the same disk"
        subprocess.run(["mount", "-o", "remount,size=20m", str(mount)], check=True)
        resumed = tunesmith.resume("ray-wdfull", storage=project.storage)
        assert [t.state for t in resumed.trials] == [TrialState.COMPLETED] * 8

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
    for address in ("127.0.0.1:99999", "ray://head:0"):
        with pytest.raises(SpecError, match=r"executor.address: port \d+ is not a TCP port \(1 to 65535\)"):
            spec_from_dict(project.spec(executor={"kind": "ray", "address": address}))
    spec = spec_from_dict(project.spec(executor={"kind": "ray", "address": "ray://head:10001", "resources_per_trial":
                                                 {"cpu": 0.5, "gpu": 0.25, "memory": "1GiB", "custom": {"TPU": 1}}}))
    assert spec.executor.resources_per_trial.memory == 2**30
    with pytest.raises(SpecError, match=r"executor.memory_limit: must be at least 32MiB \(as on kind: process, .* on "
                                        r"Ray the limit counts what the trial adds to its Ray worker\); got 16MiB"):
        check_new_spec(spec_from_dict(project.spec(executor={"kind": "ray", "memory_limit": "16MiB"})))


def test_the_not_on_path_guess_is_not_made_for_trials_on_a_remote_cluster(project):
    """The guess that a command's program is missing (`/bin/sh: trian: not found`) reads this machine's PATH. With
    the trials on a cluster named by executor.address, they run on its nodes, whose PATH this machine cannot see:
    no guess. On this machine (a private cluster, the process executor) the guess is made as before."""
    from tunesmith.runner import prepare

    def warnings(**executor: str) -> tuple[str, ...]:
        return prepare(spec_from_dict(project.spec(trial={"command": "nosuchprog --x {x}"}, executor=executor))).warnings

    missing = "trial.command runs 'nosuchprog', which is not on PATH on this machine"
    for address in ("10.0.0.5:6379", "ray://head:10001", "auto"):
        assert missing not in warnings(kind="ray", address=address), address
    assert missing in warnings(kind="ray", address="local")
    assert missing in warnings(kind="ray")
    assert missing in warnings(kind="process")
    project.write("run.sh", "echo '{\"loss\": 1}'\n")  # a script beside the spec: the same path on every node
    assert "which is not executable" in " ".join(prepare(spec_from_dict(project.spec(
        trial={"command": "./run.sh {x}"}, executor={"kind": "ray", "address": "ray://head:10001"}))).warnings)


def test_validate_warns_of_resources_a_private_cluster_will_likely_lack(project, monkeypatch):
    """No Ray started: a GPU asked of a private cluster where CUDA_VISIBLE_DEVICES hides every device, and a custom
    resource, are named by validate (`run` refuses them as Ray counts them); a joined cluster is not guessed at."""
    from tunesmith.runner import prepare

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")

    def warnings(**executor) -> str:
        return " ".join(prepare(spec_from_dict(project.spec(executor={"kind": "ray", **executor}))).warnings)

    assert "executor.resources_per_trial.gpu is 0.5, but this machine shows no NVIDIA GPU" in warnings(
        resources_per_trial={"cpu": 1, "gpu": 0.5})
    assert "executor.resources_per_trial.custom asks for foo: a private Ray cluster" in warnings(
        address="local", resources_per_trial={"custom": {"foo": 1}})
    assert "resources_per_trial" not in warnings(address="auto", resources_per_trial={"gpu": 0.5, "custom": {"a": 1}})
    assert "resources_per_trial" not in warnings(resources_per_trial={"cpu": 2})


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
    # ahead of the PYTHONPATH the tests run under (which may be what makes this checkout's tunesmith the one imported)
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(tmp_path / "noray"), os.environ.get("PYTHONPATH")) if p)}
    proc = project.cli("run", str(path), "--quiet", env=env)
    assert proc.returncode == 2, proc.stderr
    assert "needs Ray: pip install -e '.[ray]' in tunesmith's checkout (the ray extra)" in proc.stderr
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
def test_resources_no_node_can_give_are_refused_before_any_trial(project):
    """`gpu: 0.5` (the README's example) on a private cluster of a machine without a GPU: no actor could ever start;
    the run is refused at the field (exit 2), not left waiting in silence for ever, and the experiment is failed."""
    pytest.importorskip("ray", reason="the Ray executor tests need Ray: pip install 'tunesmith[ray]'")
    project.write("curves.py", CURVES)
    spec = project.spec(name="ray-gpu", trial={"function": "curves:where"}, budget={"trials": 2},
                        executor={"kind": "ray", "address": "local", "workers": 1,
                                  "resources_per_trial": {"cpu": 1, "gpu": 0.5}})
    proc = project.cli("run", str(project.write_spec(spec)), "--quiet", timeout=90,
                       env={"RAY_AUTH_MODE": "", "HOME": str(project.root), "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 2, proc.stderr
    assert "executor.resources_per_trial.gpu: no node of the run's private Ray cluster" in proc.stderr, proc.stderr
    assert "(CPU 1, GPU 0.5)" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert _status(project, "ray-gpu") == "failed"
    assert project.trials("ray-gpu") == [], "no trial was started"


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
    # those left running re-ran as attempt 2; those queued (prefetched behind a running one, never begun) as 1
    assert len([t for t in trials if t["attempts"] == 2]) == before.get("running", 0), (before, trials)
    assert all(t["attempts"] <= 2 for t in trials)


# -- the cluster itself going away ---------------------------------------------------------------------------------
class RayHead:
    """A Ray head started with ``ray start --head --block`` in a session of its own, so that killing its process
    group takes the whole cluster down (GCS, raylet, workers) the way a lost head machine does. ``ray stop --force``
    is not used: it stops every Ray cluster of this user on the machine, other runs' included."""

    def __init__(self, port: int, cpus: int = 2, join: bool = False, hide: Path | None = None) -> None:
        """``join``: a second node of the cluster at ``port``; ``hide``: that node sees an empty folder there (a
        tmpfs mounted over it in a mount namespace of its own), as a machine without the coordinator's disk."""
        import shlex
        import tempfile

        self.port = port
        self.temp_dir = None if join else tempfile.mkdtemp(prefix="ts-head-", dir="/tmp")  # short: unix sockets
        env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
        ray_cli = Path(sys.executable).parent / "ray"
        where = [f"--address=127.0.0.1:{port}"] if join else [
            "--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={self.temp_dir}"]
        command = [str(ray_cli), "start", *where, f"--num-cpus={cpus}", "--node-ip-address=127.0.0.1",
                   "--object-store-memory=100000000", "--block"]
        if hide is not None:
            command = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                       f"mount -t tmpfs none {shlex.quote(str(hide))} && exec {shlex.join(command)}"]
        self.proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        lines = []
        for line in self.proc.stdout:  # `ray start --block` says when the node is up, then keeps quiet
            lines.append(line)
            if "Ray runtime started" in line:
                break
        else:
            raise AssertionError("the Ray head did not start:\n" + "".join(lines))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        if self.temp_dir is not None:
            import shutil

            shutil.rmtree(self.temp_dir, ignore_errors=True)


class StoppableRayHead:
    """A Ray head started as `ray start --head` starts it (daemonized, no ``--block``: nothing watches its processes),
    in a session of its own, so that :meth:`stop` can do what `ray stop` does to this cluster alone: SIGTERM to the
    raylet and every other process of it, the GCS last once they are gone. (`ray stop` itself stops every Ray
    cluster of this user on the machine, the session's test cluster included.)"""

    def __init__(self, port: int, cpus: int = 2) -> None:
        import tempfile

        self.port = port
        self.temp_dir = tempfile.mkdtemp(prefix="ts-head-", dir="/tmp")  # short: unix sockets
        env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
        started = subprocess.run([str(Path(sys.executable).parent / "ray"), "start", "--head", f"--port={port}",
                                  "--include-dashboard=false", f"--temp-dir={self.temp_dir}", f"--num-cpus={cpus}",
                                  "--node-ip-address=127.0.0.1", "--object-store-memory=100000000"],
                                 env=env, capture_output=True, text=True, start_new_session=True, timeout=120)
        self.session = self._session()
        assert started.returncode == 0 and self.session is not None, started.stdout + started.stderr

    def _session(self) -> int | None:
        for pid in self._pids():  # the GCS of our port: its session holds the whole cluster
            if f"--gcs_server_port={self.port}" in self._cmdline(pid):
                return os.getsid(pid)
        return None

    @staticmethod
    def _pids() -> list[int]:
        return [int(p) for p in os.listdir("/proc") if p.isdigit()]

    @staticmethod
    def _cmdline(pid: int) -> str:
        try:
            return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
        except OSError:
            return ""

    def _members(self) -> list[int]:
        members = []
        for pid in self._pids():
            try:
                if os.getsid(pid) == self.session:
                    members.append(pid)
            except OSError:
                pass
        return members

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self, force: bool = False) -> None:
        """`ray stop`: the GCS last, after the rest has ended (or 10 s); ``force``: SIGKILL to all at once."""
        gcs = [p for p in self._members() if "gcs_server" in self._cmdline(p)]
        for pid in self._members() if force else [p for p in self._members() if p not in gcs]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL if force else signal.SIGTERM)
        deadline = time.monotonic() + 10
        while set(self._members()) - set(gcs) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in gcs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def kill(self) -> None:
        for pid in self._members():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        import shutil

        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _status(project, name: str) -> str | None:
    import sqlite3

    with sqlite3.connect(project.db) as conn:
        row = conn.execute("SELECT status FROM experiments WHERE name = ?", (name,)).fetchone()
    return row[0] if row else None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_on_a_cluster_of_its_own(project, monkeypatch, head_type, name, naps, trials):  # type: ignore[no-untyped-def]
    """A Ray cluster of the test's own (``head_type`` at a free port) and `tunesmith run` of ``naps.py``'s ``nap`` on
    it, 2 workers: the port, the heads (for the caller's ``finally`` to kill, new ones appended) and the process."""
    pytest.importorskip("ray", reason="the Ray executor tests need Ray: pip install 'tunesmith[ray]'")
    from helpers import start_cli

    project.write("naps.py", naps)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    port = _free_port()
    heads = [head_type(port)]
    try:
        spec = project.spec(name=name, trial={"function": "naps:nap"}, budget={"trials": trials},
                            executor=_ray(2, address=heads[0].address))
        return port, heads, start_cli(project, "run", str(project.write_spec(spec)), "--quiet")
    except BaseException:
        heads[0].kill()
        raise


@pytest.mark.slow
def test_the_cluster_going_away_stops_the_run_and_resume_finishes_on_a_new_cluster(project, monkeypatch):
    """The head of the cluster a run joined is killed mid-run: the run stops within seconds with exit code 75 and
    one message, its running trials recorded with the reason; `resume` on a new cluster (same address) runs exactly
    those again and completes the budget. Two clusters start (~5 s each here): the slowest test of this file."""
    from helpers import count_states, wait_for

    naps = ("import os, time\ndef nap(config, trial):\n"
            "    open(os.path.join(str(trial.workdir), 'pid'), 'w').write(str(os.getpid()))\n"
            "    time.sleep(1.0)\n    return config['x']\n")
    port, heads, proc = _run_on_a_cluster_of_its_own(project, monkeypatch, RayHead, "ray-gone", naps, 8)
    try:
        def midway() -> bool:
            assert proc.poll() is None, f"the run ended early: {proc.communicate()}"
            counts = count_states(project, "ray-gone")
            return counts.get("completed", 0) >= 2 and counts.get("running", 0) >= 1

        wait_for(midway, timeout=90)
        heads[0].kill()
        killed = time.monotonic()
        _, stderr = proc.communicate(timeout=60)  # no hang: the coordinator notices, records and exits
        stopped_after = time.monotonic() - killed
        assert proc.returncode == 75, stderr
        assert "the Ray cluster went away" in stderr and "tunesmith resume ray-gone" in stderr, stderr
        assert "Traceback" not in stderr
        assert stopped_after < 15, f"the coordinator exited {stopped_after:.1f}s after the loss"
        assert _status(project, "ray-gone") == "failed"
        before = {t["number"]: t for t in project.trials("ray-gone")}
        cut = [t for t in before.values() if t["state"] == "interrupted"]
        assert cut, before
        assert all("Ray cluster went away" in t["error"] for t in cut)
        assert not [t for t in before.values() if t["state"] in ("running", "queued")], "every attempt was recorded"
        for t in cut:  # its Ray worker went with the cluster: nothing of the run is left behind
            pid_file = Path(t["log_path"]).parent / "pid"
            assert not pid_file.exists() or not alive(int(pid_file.read_text())), f"trial {t['number']}'s worker lives"

        heads.append(RayHead(port))  # a new cluster where the old one was: the spec's address holds
        started = time.monotonic()
        resumed = project.cli("resume", "ray-gone", "--quiet", timeout=120)
        resume_s = time.monotonic() - started
    finally:
        for head in heads:
            head.kill()
    assert resumed.returncode == 0, resumed.stderr
    after = project.trials("ray-gone")
    assert [t["number"] for t in after] == list(range(8)), "no trial counted twice, none missing"
    assert all(t["state"] == "completed" for t in after)
    assert project.show("ray-gone")["status"] == "completed"
    for t in after:
        was = before[t["number"]] if t["number"] in before else None
        if was is not None and was["state"] == "completed":
            assert t["attempts"] == was["attempts"] and t["values"] == was["values"], "a finished trial did not re-run"
        if was is not None and was["state"] == "interrupted":
            assert t["attempts"] == was["attempts"] + 1, "a trial cut by the loss ran again"
    print(f"the coordinator exited {stopped_after:.1f}s after the cluster's loss; resume took {resume_s:.1f}s")


@pytest.mark.slow
def test_ray_stop_on_the_joined_cluster_stops_the_run_cleanly_and_resume_finishes(project, monkeypatch):
    """`ray stop` ends the raylet (and with it the run's actors, its mailbox among them) seconds before the GCS: the
    head's port still answers as the mailbox dies. The run stops as for a lost cluster (exit 75, one message, its
    running trials interrupted, the experiment failed), not with Ray's ActorDiedError, a traceback and an experiment
    left running; `resume` on a new cluster finishes it."""
    from helpers import count_states, wait_for

    naps = ("import time\ndef nap(config, trial):\n    for s in range(3):\n"
            "        time.sleep(0.2)\n        trial.report(s + 1, config['x'])\n    return config['x']\n")
    port, heads, proc = _run_on_a_cluster_of_its_own(project, monkeypatch, StoppableRayHead, "ray-stopped", naps, 10)
    try:
        wait_for(lambda: proc.poll() is not None or count_states(project, "ray-stopped").get("completed", 0) >= 2,
                 timeout=90)
        heads[0].stop()
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 75, stderr
        assert "the Ray cluster went away" in stderr and "tunesmith resume ray-stopped" in stderr, stderr
        assert "Traceback" not in stderr, stderr
        assert _status(project, "ray-stopped") == "failed"
        states = count_states(project, "ray-stopped")
        assert states.get("interrupted", 0) >= 1 and not states.get("running") and not states.get("queued"), states
        heads.append(StoppableRayHead(port))
        resumed = project.cli("resume", "ray-stopped", "--quiet", timeout=120)
    finally:
        for head in heads:
            head.kill()
    assert resumed.returncode == 0, resumed.stderr
    assert project.show("ray-stopped")["status"] == "completed"
    assert [t["state"] for t in project.trials("ray-stopped")] == ["completed"] * 10


def test_the_cluster_watch_tells_a_gone_head_from_a_quiet_one():
    """No Ray: a listening socket stands for a live head, a closed port for a dead one, a fake clock for time."""
    import socket

    from tunesmith.clock import FakeClock
    from tunesmith.executor.cluster_watch import ClusterWatch, HeadAddress

    clock = FakeClock()
    with socket.socket() as live:
        live.bind(("127.0.0.1", 0))
        live.listen()
        watch = ClusterWatch(HeadAddress("127.0.0.1", live.getsockname()[1]), clock, silence=2.0, grace=2.0)
        clock.advance(10)
        assert watch.gone() is None, "a quiet cluster whose head answers is alive"
        assert watch.unreachable_for() == 0.0
        clock.advance(60)
        assert "nothing of the run's answered for 70s" in watch.gone(), "a head that answers but a run that does not"
    dead = HeadAddress("127.0.0.1", _free_port())  # nothing listens there
    watch = ClusterWatch(dead, clock, silence=2.0, grace=2.0)
    clock.advance(1)
    assert watch.gone() is None and watch.unreachable_for() == 0.0, "not probed while the cluster keeps answering"
    watch.suspect()  # an actor died
    assert watch.gone() is None, "one failed probe is not yet a lost cluster"
    clock.advance(1)
    watch.heard()  # the mailbox answered after all
    clock.advance(1.5)
    assert watch.gone() is None and watch.unreachable_for() == 0.0
    clock.advance(1)  # silent for 2.5 s: probed, unreachable
    assert watch.gone() is None
    clock.advance(2)
    assert watch.gone() == f"the Ray cluster went away: its head at {dead} has not answered for 2.0s"
    assert HeadAddress.parse("ray://head.example:10001") == HeadAddress("head.example", 10001)
    assert HeadAddress.parse("auto") is None


# A first-generation trial waits at a gate (a folder the far node sees) until both have started, or 30 s: under
# load Ray's actors came up seconds apart, each trial ran alone, and PBT had nothing to copy (a full run saw no child).
PBT_TRAINER = GATE_PREAMBLE + """

def objective(config, trial):
    state = trial.load_checkpoint()
    if state is None:
        wait_at_gate(2)
        state = {{"step": 0, "score": 0.0}}
    started, score = state["step"], state["score"]
    for step in range(started + 1, 9):
        score += config["lr"]
        trial.save_checkpoint({{"step": step, "score": score}})   # before report: a child copies this
        trial.report(step, score)
        time.sleep(0.1)
        if trial.should_prune():
            break
    seen = os.path.exists(os.path.join(os.path.dirname(str(trial.workdir)), "coordinator-only"))
    return {{"score": score, "started_from": started, "saw_coordinator_files": float(seen)}}
"""


def _can_hide_folders() -> bool:
    try:
        return subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.slow
def test_pbt_children_on_a_node_without_the_coordinators_files_get_their_parents_checkpoint(project, monkeypatch):
    """A real two-node cluster: the head (the coordinator's machine) has no CPUs, so every trial runs on the second
    node, which sees an empty folder where the coordinator keeps the trial folders. Checkpoints travel through Ray:
    PBT's children resume from their parents' latest checkpoints, and each trial's last checkpoint lands in the
    coordinator's trial folder."""
    pytest.importorskip("ray", reason="the Ray executor tests need Ray: pip install 'tunesmith[ray]'")
    if not _can_hide_folders():
        pytest.skip("needs unprivileged user and mount namespaces (unshare -rm) to give a node its own filesystem")
    project.write("trainer.py", PBT_TRAINER.format(gate=str(project.root / "gate")))
    runs = project.root / "runs"
    runs.mkdir()
    (runs / "coordinator-only").touch()
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    port = _free_port()
    head = RayHead(port, cpus=0)
    try:
        far = RayHead(port, join=True, hide=runs)
        try:
            spec = project.spec(
                name="ray-pbt-far", objective={"metric": "score", "direction": "maximize"},
                space={"lr": {"type": "float", "low": 0.01, "high": 1.0, "log": True}},
                trial={"function": "trainer:objective"}, budget={"trials": 8}, workdir=str(runs),
                executor=_ray(2, address=head.address),
                scheduler={"name": "pbt", "population_size": 2, "perturbation_interval": 2,
                           "quantile_fraction": 0.5, "max_resource": 8})
            started = time.monotonic()
            proc = project.cli("run", str(project.write_spec(spec)), "--quiet", timeout=180)
            run_s = time.monotonic() - started
        finally:
            far.kill()
    finally:
        head.kill()
    assert proc.returncode == 0, proc.stderr
    trials = project.trials("ray-pbt-far")
    assert all(t["metrics"]["saw_coordinator_files"] == 0.0 for t in trials if t["state"] == "completed"), \
        "the trials ran where the coordinator's files are not"
    children = [t for t in trials if "lineage" in t]
    assert children, "PBT started trials from others"
    resumed = [t for t in children if t["state"] == "completed"]
    assert resumed
    for child in resumed:
        assert child["metrics"]["started_from"] >= child["lineage"]["step"] >= 2, "it resumed from the parent's checkpoint"
    for t in trials:  # each trial's checkpoint came back into the coordinator's trial folder
        state = json.loads((Path(t["log_path"]).parent / "checkpoint" / "state.json").read_text())
        assert state["step"] == t["intermediate"][-1][0], t["number"]
    print(f"PBT on the far node: {len(trials)} trials, {len(children)} children, run took {run_s:.1f}s")


def test_checkpoints_travel_as_plain_archives_capped_and_checked(tmp_path):
    """No Ray: what crosses between nodes. A whole folder swaps in (no stale file survives), the cap holds, and an
    archive that reaches outside the checkpoint folders, or holds a link, is refused before anything is written."""
    import io
    import tarfile

    from tunesmith.executor.checkpoint_shipping import (
        CheckpointTooLarge, NodeLocalFolder, pack, unpack,
    )

    there = tmp_path / "coordinator" / "trial-00001"
    (there / "checkpoint" / "weights").mkdir(parents=True)
    (there / "checkpoint" / "weights" / "w.bin").write_bytes(b"\0" * 1000)
    (there / "checkpoint-parent").mkdir()
    (there / "checkpoint-parent" / "state.json").write_text('{"step": 4}')
    (there / "trial.log").write_text("not a checkpoint")
    archive = pack(there, ("checkpoint", "checkpoint-parent"), limit=10_000)
    here = tmp_path / "node" / "trial-00001"
    (here / "checkpoint").mkdir(parents=True)
    (here / "checkpoint" / "stale.json").write_text("{}")
    assert unpack(archive, here) == ["checkpoint", "checkpoint-parent"]
    assert (here / "checkpoint" / "weights" / "w.bin").read_bytes() == b"\0" * 1000
    assert not (here / "checkpoint" / "stale.json").exists(), "the checkpoint swapped in whole"
    assert (here / "checkpoint-parent" / "state.json").read_text() == '{"step": 4}'
    assert not (here / "trial.log").exists() and sorted(p.name for p in here.iterdir()) == [
        "checkpoint", "checkpoint-parent"]
    assert pack(there, ("model",), limit=10) is None
    with pytest.raises(CheckpointTooLarge, match=r"holds 1000 bytes, over the 999 bytes a checkpoint may carry through Ray"):
        pack(there, ("checkpoint",), limit=999)

    def hostile(name: str, kind: bytes = tarfile.REGTYPE) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.SYMTYPE:
                info.linkname = "/etc/passwd"
            tar.addfile(info, io.BytesIO(b""))
        return buffer.getvalue()

    for bad in (hostile("checkpoint/../../escape"), hostile("/etc/x"), hostile("elsewhere/x"),
                hostile("checkpoint/link", tarfile.SYMTYPE)):
        with pytest.raises(ValueError, match="unexpected entry in a checkpoint archive"):
            unpack(bad, here)
    assert (here / "checkpoint" / "weights" / "w.bin").exists(), "a refused archive changed nothing"
    assert not (tmp_path / "node" / "escape").exists()

    fresh = tmp_path / "far" / "trial-00002"
    assert NodeLocalFolder.applies(fresh)
    local = NodeLocalFolder(fresh, limit=2000)
    local.receive(archive)
    assert NodeLocalFolder.applies(fresh), "a folder this node made stays node-local for later attempts"
    assert local.changed() == (None, None), "what arrived is not sent back"
    local_ckpt = fresh / "checkpoint"
    new = fresh / "checkpoint.new"
    new.mkdir()
    (new / "state.json").write_text('{"step": 5}')
    import shutil

    shutil.rmtree(local_ckpt)
    new.rename(local_ckpt)
    sent, note = local.changed()
    assert note is None and unpack(sent, tmp_path / "back") == ["checkpoint"]
    assert local.changed() == (None, None)
    shutil.rmtree(local_ckpt)
    (fresh / "big").mkdir()
    (fresh / "big" / "w.bin").write_bytes(b"\0" * 5000)
    (fresh / "big").rename(local_ckpt)
    sent, note = local.changed()
    assert sent is None and "over the" in note
    assert not NodeLocalFolder.applies(there), "the coordinator's own folder is not node-local"


def test_a_checkpoint_over_the_cap_stays_behind_with_a_warning(tmp_path, caplog):
    """The coordinator's side of the cap, without a cluster: nothing is packed, the warning names trial and sizes."""
    from tunesmith.evaluation.job import TrialJob
    from tunesmith.executor.ray import RayExecutor, _Lane

    folder = tmp_path / "trial-00003"
    (folder / "checkpoint-parent").mkdir(parents=True)
    (folder / "checkpoint-parent" / "w.bin").write_bytes(b"\0" * 4096)
    job = TrialJob(experiment="e", number=3, attempt=1, params={}, seed=0, workdir=str(folder),
                   log_path=str(folder / "trial.log"), metrics=("loss",), function="m:f")
    executor = RayExecutor(workers=1, address="auto", checkpoint_limit=1024)  # (a private cluster ships nothing)
    executor._origin = "head-node"
    lane = _Lane(actor=None, id=1, ready=None)
    with caplog.at_level("WARNING", logger="tunesmith.executor.ray"):
        shipment = executor._shipment(job, lane)
        executor._arrived(job, None, "checkpoint holds 2.0 MiB, over the 1.0 MiB a checkpoint may carry through Ray")
    assert shipment == {"origin": "head-node", "files": None, "limit": 1024}
    assert "trial 3: " in caplog.records[0].getMessage()
    assert "holds 4096 bytes, over the 1024 bytes a checkpoint may carry through Ray" in caplog.records[0].getMessage()
    assert "starts without its checkpoint" in caplog.records[0].getMessage()
    assert "its checkpoint stayed on its node" in caplog.records[1].getMessage()
    lane.node = "head-node"
    assert executor._shipment(job, lane) is None, "an actor beside the coordinator needs nothing shipped"


def test_a_run_pointed_at_no_cluster_says_so_at_once(project):
    """ray.init would wait minutes for a head that is not there; the run says so in seconds, exit code 75, and is
    recorded as failed (not left `running` until a resume), its reason naming the address."""
    pytest.importorskip("ray", reason="the Ray executor tests need Ray: pip install 'tunesmith[ray]'")
    address = f"127.0.0.1:{_free_port()}"
    spec = project.spec(name="ray-nowhere", executor=_ray(1, address=address))
    started = time.monotonic()
    proc = project.cli("run", str(project.write_spec(spec)), "--quiet", timeout=60)
    assert proc.returncode == 75, proc.stderr
    assert f"no Ray cluster answers at {address}" in proc.stderr and "Traceback" not in proc.stderr
    assert "tunesmith resume ray-nowhere" in proc.stderr, proc.stderr
    assert time.monotonic() - started < 30
    assert _status(project, "ray-nowhere") == "failed"
    with sqlite3.connect(project.db) as conn:
        ended = [json.loads(p) for (p,) in conn.execute("SELECT payload FROM events WHERE kind = 'run_failed'")]
    assert len(ended) == 1 and address in ended[0]["reason"], ended
    assert project.trials("ray-nowhere") == [], "no trial was started"


def _ray_daemons() -> set[int]:
    """The pids of every Ray cluster's GCS and raylet on this machine (``auto`` joins any GCS it finds)."""
    found = set()
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        with contextlib.suppress(OSError):
            if any(name in Path(f"/proc/{pid}/cmdline").read_bytes() for name in (b"gcs_server", b"raylet")):
                found.add(pid)
    return found


def test_address_auto_with_no_cluster_running_says_so_and_starts_none(project, tmp_path):
    """`address: auto` where no cluster runs (a resume before the new `ray start`): Ray's ConnectionError, not a
    RayError, was a traceback (exit 1, which a scheduler does not retry), and close() then called ray.kill, whose
    auto-init started a local cluster and wrote ~/.ray/auth_token. Now: one line, exit 75, no Ray started."""
    ray = pytest.importorskip("ray", reason="the Ray executor tests need Ray: pip install 'tunesmith[ray]'")
    if ray.is_initialized():
        ray.shutdown()  # the session's test cluster, which `auto` would join (the next test that needs it restarts it)
    deadline = time.monotonic() + 10
    while _ray_daemons() and time.monotonic() < deadline:
        time.sleep(0.2)
    if _ray_daemons():
        pytest.skip("a Ray cluster runs on this machine (another user's?): address auto would join it")
    home, ray_tmp = tmp_path / "home", tmp_path / "ray-tmp"  # ray_tmp: no stale ray_current_cluster to follow
    home.mkdir()
    ray_tmp.mkdir()
    spec = project.spec(name="ray-auto-none", executor=_ray(1, address="auto"))
    proc = project.cli("run", str(project.write_spec(spec)), "--quiet", timeout=90,
                       env={"RAY_ADDRESS": "", "RAY_AUTH_MODE": "", "HOME": str(home), "RAY_TMPDIR": str(ray_tmp)})
    assert proc.returncode == 75, proc.stderr
    assert "no Ray cluster answers at auto (executor.address)" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and "ConnectionError" not in proc.stderr, proc.stderr
    assert "tunesmith resume ray-auto-none" in proc.stderr, proc.stderr
    assert not (home / ".ray" / "auth_token").exists(), "no Ray cluster was started (token auth writes this)"
    assert list(ray_tmp.iterdir()) == [], "no Ray session was started"
    assert not _ray_daemons(), "no Ray process is left"
    assert _status(project, "ray-auto-none") == "failed"
    # `auto` is RAY_ADDRESS where that is set, and Ray waited minutes for a head not there: probed first, as a named
    # address is
    address = f"127.0.0.1:{_free_port()}"
    resumed = project.cli("resume", "ray-auto-none", "--quiet", timeout=60,
                          env={"RAY_ADDRESS": address, "HOME": str(home), "RAY_TMPDIR": str(ray_tmp)})
    assert resumed.returncode == 75, resumed.stderr
    assert f"no Ray cluster answers at {address} (RAY_ADDRESS, for executor.address: auto)" in resumed.stderr
    assert not (home / ".ray" / "auth_token").exists() and list(ray_tmp.iterdir()) == []


@pytest.mark.slow
def test_sigterm_to_a_coordinator_on_ray_is_a_graceful_stop(project, monkeypatch):
    """ray.init put its own SIGTERM handler (sys.exit) in place of the coordinator's, and its core worker a C++ one
    that logs `*** SIGTERM received` and may abort: a scheduler's SIGTERM ended the run with exit 15, 1 or 134, the
    running trials cut at once or the experiment left `running`. Now as on the process executor: exit 130, the
    running trials finish within grace_period, the experiment is interrupted, the private cluster goes."""
    pytest.importorskip("ray", reason="the Ray executor tests need Ray: pip install 'tunesmith[ray]'")
    from helpers import count_states, start_cli, wait_for

    project.write("steps.py", "import os, time\ndef objective(config, trial):\n    for step in range(8):\n"
                              "        time.sleep(0.25)\n        trial.report(step + 1, config['x'])\n"
                              "    return {'loss': config['x'], 'pid': float(os.getpid())}\n")
    spec = project.spec(name="ray-term", trial={"function": "steps:objective"}, budget={"trials": 12},
                        executor={"kind": "ray", "address": "local", "workers": 2, "prefetch": False})
    monkeypatch.setenv("HOME", str(project.root))
    before = _ray_daemons()
    proc = start_cli(project, "run", str(project.write_spec(spec)), "--quiet")
    try:
        wait_for(lambda: proc.poll() is not None or (count_states(project, "ray-term").get("completed", 0) >= 1
                                                     and count_states(project, "ray-term").get("running", 0) >= 1),
                 timeout=120)
        running = {t["number"] for t in project.trials("ray-term") if t["state"] == "running"}
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert "tunesmith resume ray-term" in stderr, stderr
    assert "SIGTERM received" not in stderr and "Traceback" not in stderr, stderr
    shown = project.show("ray-term")
    assert (shown["status"], shown["stop_reason"]) == ("interrupted", "interrupted by SIGTERM")
    trials = {t["number"]: t for t in project.trials("ray-term")}
    assert running and all(trials[n]["state"] == "completed" for n in running), "they finished within grace_period"
    assert len(trials) < 12 and not [t for t in trials.values() if t["state"] in ("running", "queued")]
    deadline = time.monotonic() + 10
    # this run's daemons: another worker's test may start a cluster meanwhile (their HOME is not this project)
    while _its_daemons(before, project.root) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _its_daemons(before, project.root), "the private cluster stopped with the run"
    assert not [t for t in trials.values() if alive(int(t["metrics"]["pid"]))], "its workers too"


def _its_daemons(before: set[int], home: Path) -> set[int]:
    """The Ray daemons started since ``before`` whose environment has HOME ``home`` (the run's, inherited)."""
    mine = set()
    for pid in _ray_daemons() - before:
        with contextlib.suppress(OSError):
            if f"HOME={home}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                mine.add(pid)
    return mine


def test_memory_limit_on_ray_counts_the_trial_not_its_ray_worker(ray_cluster, project):
    """The Ray worker that runs a trial holds ~130 MiB of its own (Ray's runtime) before any trial: a memory_limit of
    96 MiB, which a trial of ~20 MiB meets on the process executor, killed every Ray trial at its first sample, and
    `cost` charged Ray's memory as the trial's. Both now count what the trial adds to its worker (and its children)."""
    project.write("tiny.py", "import time\ndef objective(config, trial):\n    time.sleep(0.6)\n"
                             "    return config['x']\n")
    spec = project.spec(name="ray-96", trial={"function": "tiny:objective"}, budget={"trials": 2},
                        executor=_ray(1, memory_limit="96MiB", retries=0), cost={"memory_gb_hour": 1.0})
    result = tunesmith.run(spec, storage=project.storage)
    assert [t.state for t in result.trials] == [TrialState.COMPLETED] * 2, [t.error for t in result.trials]
    for t in result.trials:
        assert 0 <= t.metrics["peak_memory_mb"] < 48, t.metrics  # the trial's, not Ray's ~130 MiB


def test_a_trial_tunesmith_kills_on_ray_is_no_unexpected_worker_death(ray_cluster, project, capfd):
    """A kill tunesmith orders (a timeout here; a memory breach ends the same way) ended its actor's process with
    os._exit, which Ray takes for a crash: the driver printed Ray's ~900-character "(raylet) A worker died or was
    killed ... by an unexpected system error ... OOM killer ... ray stop --force" for each. The actor now ends by
    ray.kill of itself, an intended exit, about which Ray says nothing."""
    project.write("curves.py", CURVES)
    spec = project.spec(name="ray-quiet-kill", trial={"function": "curves:sleepy"}, budget={"trials": 2},
                        executor=_ray(1, trial_timeout="1s", retries=0))
    result = tunesmith.run(spec, storage=project.storage)
    assert [t.failure_kind for t in result.trials] == [FailureKind.TIMEOUT] * 2, [t.error for t in result.trials]
    time.sleep(2)  # Ray's driver prints its error messages from a thread, as they come
    out, err = capfd.readouterr()
    assert "A worker died" not in out + err and "unexpected system error" not in out + err, out + err


def test_settings_that_do_not_apply_on_ray_are_warned_about(project):
    """heartbeat_timeout and max_trials_per_worker (the process executor's) were taken in silence on kind: ray, where
    they do nothing: a user counting on the heartbeat to catch a hung trial was not told. They are warned about, as
    inline's unenforceable settings are, at validate and run (prepare gives both their warnings); the defaults, and
    a stored spec that holds them, are not."""
    from tunesmith.runner import prepare

    def warnings(**executor) -> list[str]:
        return [w for w in prepare(spec_from_dict(project.spec(executor=executor))).warnings if "executor.kind" in w]

    assert warnings(kind="ray", heartbeat_timeout="5s", max_trials_per_worker=2) == [
        "executor.kind is ray: heartbeat_timeout, max_trials_per_worker do not apply there (Ray detects a dead worker "
        "itself, and an actor runs trials until it dies or is killed): a hung trial is caught only by trial_timeout"]
    assert warnings(kind="ray", max_trials_per_worker=2)[0].startswith(
        "executor.kind is ray: max_trials_per_worker does not apply there")
    assert warnings(kind="ray") == [] and warnings(kind="ray", heartbeat_timeout="60s") == []
    assert warnings(kind="process", heartbeat_timeout="5s", max_trials_per_worker=2) == []
    proc = project.cli("validate", str(project.write_spec(project.spec(
        executor={"kind": "ray", "heartbeat_timeout": "5s"}))))
    assert proc.returncode == 0 and "heartbeat_timeout does not apply there" in " ".join(proc.stderr.split()), proc
