"""`tunesmith delete` at its confirmation prompt, on a real terminal (a pty): what happens when the experiment
changes while the prompt waits."""

from __future__ import annotations

import os
import time
from pathlib import Path

import yaml


def test_delete_missing_ok_succeeds_when_another_process_deleted_it_during_the_prompt(tmp_path: Path) -> None:
    """`delete X --missing-ok` read X, asked, and another process deleted X while the prompt waited: the answer
    'y' then failed with 'no longer in the store', exit 2, though --missing-ok asks for success when X is gone."""
    import fcntl
    import pty
    import select
    import subprocess
    import sys
    import termios

    url = f"sqlite:///{tmp_path / 'tunesmith.db'}"
    (tmp_path / "gone_objective.py").write_text("def f(config, trial):\n    return {'loss': config['x']}\n")
    spec = {"name": "gone", "objective": {"metric": "loss", "direction": "minimize"},
            "trial": {"function": "gone_objective:f"}, "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
            "budget": {"trials": 1}, "executor": {"kind": "inline"}}
    (tmp_path / "gone.yaml").write_text(yaml.safe_dump(spec))
    env = {**os.environ, "TUNESMITH_STORAGE": url}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tunesmith.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120, check=False)

    assert cli("run", "gone.yaml", "--quiet").returncode == 0
    master, terminal = pty.openpty()

    def take_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([sys.executable, "-m", "tunesmith.cli", "delete", "gone", "--missing-ok"], cwd=tmp_path,
                            env=env, stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True,
                            preexec_fn=take_terminal)
    os.close(terminal)
    shown = b""
    try:
        deadline = time.monotonic() + 60
        while b"Delete experiment" not in shown and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                shown += os.read(master, 4096)
        assert b"Delete experiment 'gone'" in shown, shown
        other = cli("delete", "gone", "--yes")  # another process, while the prompt waits
        assert other.returncode == 0, other.stderr
        os.write(master, b"y\n")
        assert proc.wait(timeout=60) == 0
        while select.select([master], [], [], 0.1)[0]:
            try:
                shown += os.read(master, 4096)
            except OSError:  # the terminal's other end closed
                break
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert b"error" not in shown.lower(), shown
