"""The "continue with: tunesmith resume ..." hints work as printed, from the folder the run was started in, with
the store the run used (``--storage``, or the spec's ``storage:``) named when `resume NAME` would not find it."""

from __future__ import annotations

import os
import shlex
import signal
import sqlite3
import subprocess
import sys

import pytest
from helpers import stop_processes, wait_for


def _env_without_storage() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "TUNESMITH_STORAGE"} | {"COLUMNS": "200"}


def _run_the_hint(project, stderr: str) -> subprocess.CompletedProcess[str]:
    """The command after "Continue with: ", run as printed (tunesmith being this interpreter's module)."""
    line = next(ln for ln in stderr.splitlines() if "Continue with: " in ln)
    words = shlex.split(line.split("Continue with: ", 1)[1])
    assert words[:2] == ["tunesmith", "resume"], line
    return subprocess.run([sys.executable, "-m", "tunesmith.cli", *words[1:], "--quiet"], cwd=project.root,
                          env=_env_without_storage(), capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("where", ["--storage", "spec"])
def test_the_interrupted_runs_hint_names_a_store_resume_would_not_find(project, where):
    project.write("held.py", """
        import os, time
        def objective(config, trial):
            if not os.path.exists("released"):
                time.sleep(60)
            return config["x"]
    """)
    extra = {"storage": "sqlite:///runs.db"} if where == "spec" else {}
    spec = project.write_spec(project.spec(name="walka-hint", trial={"function": "held:objective"},
                                           budget={"trials": 2}, executor={"kind": "process", "grace_period": 0.5},
                                           **extra))
    args = ["--storage", "sqlite:///runs.db"] if where == "--storage" else []
    proc = subprocess.Popen([sys.executable, "-m", "tunesmith.cli", "run", str(spec), "-q", *args],
                            cwd=project.root, env=_env_without_storage(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: _running(project.root / "runs.db"))
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        stop_processes(proc)
    assert proc.returncode == 130, stderr
    assert "--storage sqlite:///runs.db" in stderr, stderr
    (project.root / "released").write_text("")
    resumed = _run_the_hint(project, stderr)
    assert resumed.returncode == 0, resumed.stderr


def _running(db) -> bool:
    if not db.exists():
        return False
    with sqlite3.connect(db) as conn:
        try:
            return bool(conn.execute("SELECT COUNT(*) FROM trials WHERE state = 'running'").fetchone()[0])
        except sqlite3.OperationalError:
            return False


def test_resume_command_names_only_a_store_resume_would_not_find_and_hides_its_password():
    from tunesmith.storage.sql import DEFAULT_URL, resume_command

    assert resume_command("a", DEFAULT_URL, {}) == "tunesmith resume a"
    assert resume_command("a", "sqlite:///x.db", {"TUNESMITH_STORAGE": "sqlite:///x.db"}) == "tunesmith resume a"
    assert resume_command("a", DEFAULT_URL, {"TUNESMITH_STORAGE": "sqlite:///x.db"}) == (
        f"tunesmith resume a --storage {DEFAULT_URL}")
    hint = resume_command("a", "postgresql://me:hunter22@db.internal/tuning", {}, join=True)
    assert "hunter22" not in hint
    assert hint == "tunesmith resume a --join --storage 'postgresql://me:***@db.internal/tuning'"


def test_another_coordinators_lease_error_names_the_store_in_both_commands_it_offers(project):
    """`resume NAME --storage other.db` while another coordinator held the experiment said "then `tunesmith resume`;
    or ... `tunesmith resume --join`": no name, and no `--storage`, so neither command reached the experiment. Both
    are now the full command for that store, and the plain one works once the lease is given back."""
    import time

    from tunesmith.lease_holders import lease_owner_id
    from tunesmith.runner import prepare
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage import SQLStore

    env = _env_without_storage()
    spec = spec_from_dict(project.spec(name="held-lease", budget={"trials": 2}, executor={"kind": "inline"},
                                       base_dir=str(project.root)))
    store = SQLStore(f"sqlite:///{project.root / 'other.db'}")
    owner = lease_owner_id()  # this test's own process: alive, so the lease is held
    try:
        plan = prepare(spec)
        exp = store.create_experiment(spec.name, plan.spec.to_json(), plan.decision.name, "", time.time())
        assert store.acquire_lease(exp.id, owner, time.time(), 600) is None
        held = subprocess.run([sys.executable, "-m", "tunesmith.cli", "resume", "held-lease", "--storage",
                               "sqlite:///other.db", "-q"], cwd=project.root, env=env, capture_output=True,
                              text=True, timeout=120)
        assert held.returncode == 2, held.stderr
        said = " ".join(held.stderr.split())
        assert "`tunesmith resume held-lease --storage sqlite:///other.db`" in said, said
        assert "`tunesmith resume held-lease --join --storage sqlite:///other.db`" in said, said
        store.release_lease(exp.id, owner)
    finally:
        store.close()
    hint = said.split("then `", 1)[1].split("`", 1)[0]
    resumed = subprocess.run([sys.executable, "-m", "tunesmith.cli", *shlex.split(hint)[1:], "-q"],
                             cwd=project.root, env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
